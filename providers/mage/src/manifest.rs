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
//! Changes are appended to `<project_dir>/.weir/manifest.journal`, one fsynced JSON line per
//! claim or release, and folded into `manifest.json` the next time the project is opened:
//! rewriting a manifest of thousands of files for each file written would make an apply
//! quadratic. A torn last line (a crash mid-append) is ignored; the claim it held was not yet
//! followed by a write.
//!
//! The rules (problem P1 in DESIGN.md: a shared disk once overwrote users' code):
//! - weir writes a file only if nothing is at its path or the file is in the manifest; otherwise
//!   it refuses and names the file;
//! - the claim is recorded (atomically) **before** the file is written, so a crash between the
//!   two leaves a claim on a missing file, and the next run simply writes it;
//! - weir deletes only files in the manifest whose owner is the resource being deleted, then
//!   drops them from the manifest, then removes the directories it created if they are empty.
//!
//! The provider keeps one open [`Project`] per project directory, behind a lock held around
//! each of these operations.

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
pub(crate) const JOURNAL_FILE: &str = "manifest.journal";
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

/// One change to the manifest, as a journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
enum JournalEntry {
    Claim {
        file: String,
        entry: FileEntry,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dirs: Vec<String>,
    },
    Release {
        file: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dirs: Vec<String>,
    },
}

impl Manifest {
    fn apply(&mut self, entry: JournalEntry) {
        match entry {
            JournalEntry::Claim { file, entry, dirs } => {
                self.files.insert(file, entry);
                self.dirs.extend(dirs);
            }
            JournalEntry::Release { file, dirs } => {
                self.files.remove(&file);
                for d in dirs {
                    self.dirs.remove(&d);
                }
            }
        }
    }
}

/// A Mage project directory and its manifest, loaded once and kept in memory.
pub(crate) struct Project {
    root: PathBuf,
    manifest: Manifest,
    /// The journal, open for appending once something was recorded.
    journal: Option<fs::File>,
}

impl Project {
    /// Opens a project: reads the manifest, folds a journal left by an earlier run into it.
    pub(crate) fn open(root: PathBuf) -> Result<Project, ProviderError> {
        let mut project = Project {
            root,
            manifest: Manifest::empty(),
            journal: None,
        };
        project.manifest = project.load()?;
        let journal = project.journal_path();
        match fs::read(&journal) {
            Ok(bytes) if !bytes.is_empty() => {
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    match serde_json::from_str::<JournalEntry>(line) {
                        Ok(entry) => project.manifest.apply(entry),
                        // A crash mid-append leaves a torn last line: that claim never led to a write.
                        Err(_) if i + 1 == lines.len() => {}
                        Err(e) => {
                            return Err(ProviderError::permanent(format!(
                                "weir's manifest journal {} is damaged at line {}: {e}",
                                journal.display(),
                                i + 1
                            ))
                            .with_help("restore the project's .weir directory, or move the project's files away and let weir write them again"));
                        }
                    }
                }
                let manifest = project.manifest.clone();
                project.save(&manifest)?;
                match fs::remove_file(&journal) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("remove weir's manifest journal", &journal, &e)),
                }
            }
            Ok(_) => {
                let _ = fs::remove_file(&journal);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("read weir's manifest journal", &journal, &e)),
        }
        Ok(project)
    }

    fn journal_path(&self) -> PathBuf {
        self.root.join(MANIFEST_DIR).join(JOURNAL_FILE)
    }

    /// Appends one change to the journal and makes it durable.
    fn record(&mut self, entry: JournalEntry) -> Result<(), ProviderError> {
        let path = self.journal_path();
        if self.journal.is_none() {
            let dir = self.root.join(MANIFEST_DIR);
            fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, &e))?;
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error("open weir's manifest journal", &path, &e))?;
            fsio::sync_dir(&dir);
            self.journal = Some(file);
        }
        let mut line = serde_json::to_vec(&entry).map_err(|e| {
            ProviderError::permanent(format!("could not encode weir's manifest: {e}"))
        })?;
        line.push(b'\n');
        let Some(file) = self.journal.as_mut() else {
            return Ok(());
        };
        io::Write::write_all(file, &line)
            .and_then(|_| file.sync_data())
            .map_err(|e| io_error("write weir's manifest journal", &path, &e))?;
        self.manifest.apply(entry);
        Ok(())
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
        &mut self,
        rel: &RelPath,
        content: &[u8],
        owner: &str,
    ) -> Result<(), ProviderError> {
        let key = rel.key();
        let full = rel.under(&self.root);
        let manifest = &self.manifest;

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

        // Claim the directories weir is about to create and the file itself, durably, before
        // writing the file.
        let mut new_dirs = Vec::new();
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
                    if !manifest.dirs.contains(&dir_key) {
                        new_dirs.push(dir_key);
                    }
                }
                Err(e) => return Err(io_error("inspect", &dir, &e)),
            }
        }
        let entry = FileEntry {
            sha256: fsio::sha256_hex(content),
            owner: owner.to_string(),
        };
        if manifest.files.get(&key) != Some(&entry) || !new_dirs.is_empty() {
            fs::create_dir_all(&self.root)
                .map_err(|e| io_error("create directory", &self.root, &e))?;
            self.record(JournalEntry::Claim {
                file: key,
                entry,
                dirs: new_dirs,
            })?;
        }

        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error("create directory", parent, &e))?;
        }
        fsio::write_atomic(&full, content).map_err(|e| io_error("write", &full, &e))
    }

    /// Deletes `rel` if the manifest says `owner` owns it; leaves anything else alone.
    pub(crate) fn delete_owned(&mut self, rel: &RelPath, owner: &str) -> Result<(), ProviderError> {
        let key = rel.key();
        let full = rel.under(&self.root);
        match self.manifest.files.get(&key) {
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
        // Remove the directories weir created, innermost first, while they are empty.
        let mut removed_dirs = Vec::new();
        for dir_key in rel.ancestor_keys().into_iter().rev() {
            if !self.manifest.dirs.contains(&dir_key) {
                break;
            }
            let dir = fsio::dir_under(&self.root, &dir_key);
            match fs::remove_dir(&dir) {
                Ok(()) => removed_dirs.push(dir_key),
                Err(e) if e.kind() == io::ErrorKind::NotFound => removed_dirs.push(dir_key),
                // Not empty (someone else's files are in it) or not removable: keep it.
                Err(_) => break,
            }
        }
        self.record(JournalEntry::Release {
            file: key,
            dirs: removed_dirs,
        })?;
        if self.manifest.is_empty() {
            // Nothing of weir's is left: no manifest either (and no `.weir/` if it is empty).
            self.journal = None;
            let journal = self.journal_path();
            let _ = fs::remove_file(&journal);
            let manifest = self.manifest.clone();
            self.save(&manifest)?;
        }
        Ok(())
    }
}
