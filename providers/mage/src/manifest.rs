//! The ownership manifest: which files (and directories) in a project weir wrote.
//!
//! `<project_dir>/.weir/manifest.json`:
//!
//! ```json
//! {"version": 1,
//!  "files": {"pipelines/orders/metadata.yaml": {"sha256": "…", "owner": "mage_pipeline.orders"}},
//!  "dirs": ["pipelines", "pipelines/orders"]}
//! ```
//!
//! `dirs` (left out when empty) lists the directories weir created, so that it removes them
//! when they end up empty and never removes one it did not create.
//!
//! The rules (problem P1 in DESIGN.md: a shared disk once overwrote users' code):
//! - weir writes a file only if nothing is at its path or the file is in the manifest; otherwise
//!   it refuses and names the file;
//! - the claim is recorded (atomically) **before** the file is written, so a crash between the
//!   two leaves a claim on a missing file, and the next run simply writes it;
//! - weir deletes only files in the manifest whose owner is the resource being deleted, then
//!   drops them from the manifest, then removes the directories it created if they are empty.
//!
//! Callers hold the provider's manifest lock around each of these operations.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir_provider_sdk::ProviderError;

use crate::error::io_error;
use crate::fsio::{self, RelPath};

/// The manifest's location inside a project.
pub(crate) const MANIFEST_DIR: &str = ".weir";
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
const MANIFEST_VERSION: u32 = 1;

/// One file weir wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    /// SHA-256 of the content weir last wrote (or was about to write).
    pub sha256: String,
    /// The address of the resource that owns the file.
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dirs: BTreeSet<String>,
}

impl Manifest {
    fn empty() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}

/// A Mage project directory and its manifest.
pub(crate) struct Project {
    root: PathBuf,
}

impl Project {
    pub(crate) fn new(root: PathBuf) -> Project {
        Project { root }
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_DIR).join(MANIFEST_FILE)
    }

    /// Reads the manifest; a missing one is empty. An unreadable one stops everything: without
    /// it weir cannot tell its files from the user's.
    pub(crate) fn load(&self) -> Result<Manifest, ProviderError> {
        let path = self.manifest_path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::empty()),
            Err(e) => return Err(io_error("read weir's manifest", &path, &e)),
        };
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
            ProviderError::permanent(format!(
                "weir's manifest {} is not valid: {e}; without it weir cannot tell which files in the project it owns",
                path.display()
            ))
            .with_help("restore the file (e.g. from version control), or move the project's files away and let weir write them again")
        })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(ProviderError::permanent(format!(
                "weir's manifest {} has version {}, but this weir understands version {MANIFEST_VERSION}",
                path.display(),
                manifest.version
            ))
            .with_help("use the weir version that wrote this project"));
        }
        Ok(manifest)
    }

    /// Writes the manifest atomically (temp file + fsync + rename); removes it, and `.weir/` if
    /// that ends up empty, when it records nothing.
    fn save(&self, manifest: &Manifest) -> Result<(), ProviderError> {
        let path = self.manifest_path();
        let dir = self.root.join(MANIFEST_DIR);
        if manifest.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("remove weir's manifest", &path, &e)),
            }
            // Only removes the directory when nothing else is in it.
            let _ = fs::remove_dir(&dir);
            fsio::sync_dir(&self.root);
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, &e))?;
        let mut text = serde_json::to_vec_pretty(manifest).map_err(|e| {
            ProviderError::permanent(format!("could not encode weir's manifest: {e}"))
        })?;
        text.push(b'\n');
        fsio::write_atomic(&path, &text).map_err(|e| io_error("write weir's manifest", &path, &e))
    }

    /// Writes `content` to `rel` on behalf of `owner`, following the ownership rules.
    pub(crate) fn write_owned(
        &self,
        rel: &RelPath,
        content: &[u8],
        owner: &str,
    ) -> Result<(), ProviderError> {
        let key = rel.key();
        let full = rel.under(&self.root);
        let mut manifest = self.load()?;

        let claimed = manifest.files.contains_key(&key);
        if !claimed && fsio::exists(&full).map_err(|e| io_error("inspect", &full, &e))? {
            return Err(ProviderError::permanent(format!(
                "refusing to write {}: the file exists and weir does not own it (it is not in weir's manifest {})",
                full.display(),
                self.manifest_path().display()
            ))
            .with_help(
                "move it away, or delete it if it is not needed, then run weir again; weir never writes over a file it did not create",
            ));
        }
        if claimed && fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
            return Err(ProviderError::permanent(format!(
                "cannot write {}: a directory is in the way",
                full.display()
            ))
            .with_help("move the directory away, then run weir again"));
        }

        // Claim the directories weir is about to create, the file itself, then save the claim.
        let mut changed = false;
        for dir_key in rel.ancestor_keys() {
            let dir = fsio::dir_under(&self.root, &dir_key);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() && dir.is_dir() => {}
                Ok(_) => {
                    return Err(ProviderError::permanent(format!(
                        "cannot write {}: {} is not a directory",
                        full.display(),
                        dir.display()
                    ))
                    .with_help("move it away, then run weir again"));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    changed |= manifest.dirs.insert(dir_key);
                }
                Err(e) => return Err(io_error("inspect", &dir, &e)),
            }
        }
        let entry = FileEntry {
            sha256: fsio::sha256_hex(content),
            owner: owner.to_string(),
        };
        if manifest.files.get(&key) != Some(&entry) {
            manifest.files.insert(key, entry);
            changed = true;
        }
        if changed {
            fs::create_dir_all(&self.root)
                .map_err(|e| io_error("create directory", &self.root, &e))?;
            self.save(&manifest)?;
        }

        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error("create directory", parent, &e))?;
        }
        fsio::write_atomic(&full, content).map_err(|e| io_error("write", &full, &e))
    }

    /// Deletes `rel` if the manifest says `owner` owns it; leaves anything else alone.
    pub(crate) fn delete_owned(&self, rel: &RelPath, owner: &str) -> Result<(), ProviderError> {
        let key = rel.key();
        let full = rel.under(&self.root);
        let mut manifest = self.load()?;
        match manifest.files.get(&key) {
            // Not weir's (or owned by another resource): never touched.
            None => return Ok(()),
            Some(entry) if entry.owner != owner => return Ok(()),
            Some(_) => {}
        }
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_dir() => {
                return Err(ProviderError::permanent(format!(
                    "cannot delete {}: it is now a directory, which weir did not create",
                    full.display()
                ))
                .with_help("move the directory away, then run weir again"));
            }
            Ok(_) => match fs::remove_file(&full) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("delete", &full, &e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("inspect", &full, &e)),
        }
        if let Some(parent) = full.parent() {
            fsio::sync_dir(parent);
        }
        manifest.files.remove(&key);

        // Remove the directories weir created, innermost first, while they are empty.
        for dir_key in rel.ancestor_keys().into_iter().rev() {
            if !manifest.dirs.contains(&dir_key) {
                break;
            }
            let dir = fsio::dir_under(&self.root, &dir_key);
            match fs::remove_dir(&dir) {
                Ok(()) => {
                    manifest.dirs.remove(&dir_key);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    manifest.dirs.remove(&dir_key);
                }
                // Not empty (someone else's files are in it) or not removable: keep it.
                Err(_) => break,
            }
        }
        self.save(&manifest)
    }
}
