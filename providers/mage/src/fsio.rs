//! The Mage project's files, reached through [`weir_provider_sdk::fs`]: every path below the
//! project directory is opened without following a link (see there), and weir's own
//! `.weir/` folder (the manifest and its journal) is out of reach of rendered paths.

use sha2::{Digest, Sha256};

pub(crate) use weir_provider_sdk::fs::{FsError, Kind, MODE_PRIVATE, MODE_PUBLIC, RelPath, Root};

/// The lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A path a resource names inside the project (a block's code file): relative, and never
/// inside weir's own `.weir/` directory.
pub(crate) fn project_file(raw: &str) -> Result<RelPath, String> {
    let rel = RelPath::parse(raw)?;
    if rel.key() == ".weir" || rel.key().starts_with(".weir/") {
        return Err(format!("`{raw}` is inside weir's own `.weir/` directory"));
    }
    Ok(rel)
}

/// A file of weir's own `.weir/` directory in the project.
pub(crate) fn weir_file(name: &str) -> RelPath {
    RelPath::from_key(&format!(".weir/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_files_stay_out_of_weirs_folder() {
        assert!(project_file("data_loaders/load.py").is_ok());
        assert!(project_file(".weir/manifest.json").is_err());
        assert!(project_file("./.weir").is_err());
        assert!(project_file("../x.py").is_err());
        assert_eq!(weir_file("manifest.json").key(), ".weir/manifest.json");
    }

    #[test]
    fn sha() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
