//! Small file-system helpers: atomic writes, hashing, relative paths inside a project.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// The lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, written and
/// fsynced, then renamed over `path`, then the directory fsynced. A reader (or a crash) sees
/// either the old content or the new one, never half of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".weir-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates files readable by the owner only; Mage (often another user in a
        // container) must be able to read the project.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Fsyncs a directory so that a rename or a removal inside it is durable. Best effort: some
/// file systems do not support it, and the data itself is already safe.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Whether something (a file, a directory, a symlink, even a dangling one) is at `path`.
pub(crate) fn exists(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A path inside a Mage project, relative to its root, made only of normal components and
/// written with `/` (the key used in the manifest), e.g. `pipelines/orders/metadata.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelPath {
    parts: Vec<String>,
}

impl RelPath {
    /// Parses a relative path; refuses absolute paths, `..`, `.`, empty paths, non-UTF-8 and
    /// anything inside weir's own `.weir/` directory.
    pub(crate) fn parse(raw: &str) -> Result<RelPath, String> {
        if raw.is_empty() {
            return Err("the path is empty".to_string());
        }
        if raw.contains('\\') {
            return Err(format!(
                "`{raw}` contains a backslash; use `/` between folders"
            ));
        }
        let mut parts = Vec::new();
        for component in Path::new(raw).components() {
            match component {
                Component::Normal(part) => match part.to_str() {
                    Some(part) => parts.push(part.to_string()),
                    None => return Err(format!("`{raw}` is not valid UTF-8")),
                },
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!("`{raw}` leaves the project directory (`..`)"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "`{raw}` is absolute; it must be relative to the project directory"
                    ));
                }
            }
        }
        match parts.first() {
            None => return Err(format!("`{raw}` names no file")),
            Some(first) if first == ".weir" => {
                return Err(format!("`{raw}` is inside weir's own `.weir/` directory"));
            }
            Some(_) => {}
        }
        Ok(RelPath { parts })
    }

    /// `segments` joined with `/`; each must be a single normal path component.
    pub(crate) fn from_segments(segments: &[&str]) -> Result<RelPath, String> {
        for segment in segments {
            if segment.is_empty()
                || *segment == "."
                || *segment == ".."
                || segment.contains('/')
                || segment.contains('\\')
            {
                return Err(format!(
                    "`{segment}` cannot be used as a folder or file name (it must be one non-empty path component)"
                ));
            }
        }
        RelPath::parse(&segments.join("/"))
    }

    /// The manifest key: the components joined with `/`.
    pub(crate) fn key(&self) -> String {
        self.parts.join("/")
    }

    /// The path under `root`.
    pub(crate) fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for part in &self.parts {
            path.push(part);
        }
        path
    }

    /// The keys of the directories that contain this path, outermost first
    /// (`pipelines`, `pipelines/orders` for `pipelines/orders/metadata.yaml`).
    pub(crate) fn ancestor_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut key = String::new();
        for part in self.parts.iter().take(self.parts.len().saturating_sub(1)) {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
            keys.push(key.clone());
        }
        keys
    }
}

/// The directory `key` (a manifest directory key) under `root`.
pub(crate) fn dir_under(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        path.push(part);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let p = RelPath::parse("data_loaders/load.py").map_err(|e| e.to_string());
        assert_eq!(
            p.as_ref().map(RelPath::key),
            Ok("data_loaders/load.py".to_string())
        );
        assert_eq!(
            RelPath::parse("./pipelines/orders/metadata.yaml")
                .map(|p| p.ancestor_keys())
                .ok(),
            Some(vec![
                "pipelines".to_string(),
                "pipelines/orders".to_string()
            ])
        );
        assert!(RelPath::parse("../etc/passwd").is_err());
        assert!(RelPath::parse("/etc/passwd").is_err());
        assert!(RelPath::parse("").is_err());
        assert!(RelPath::parse(".").is_err());
        assert!(RelPath::parse(".weir/manifest.json").is_err());
        assert!(RelPath::from_segments(&["pipelines", "a/b", "x"]).is_err());
        assert!(RelPath::from_segments(&["pipelines", "..", "x"]).is_err());
    }

    #[test]
    fn sha() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
