//! The ownership manifest: which files (and directories) in a project weir wrote.
//!
//! `<project_dir>/.weir/manifest.json`:
//!
//! ```json
//! {"version": 1, "lineage": "6f1c2f3e-…",
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
//! quadratic. A torn last line (a crash mid-append: the line has no newline yet) is ignored;
//! the claim it held was not yet followed by a write. Any other line that cannot be read is an
//! error naming the journal: without it weir cannot tell which files are its own.
//!
//! `lineage` (left out while nothing claimed the project) is the lineage of the weir state
//! that owns the project: the first claim records it, and a provider working for another
//! state (another configuration, or one whose state was lost) is refused before it reads,
//! writes or deletes anything.
//!
//! The rules (a persistent disk mounted over a Mage project once overwrote users' code with Mage's defaults; weir must never do that):
//! - weir writes a file only if nothing is at its path or the file is in the manifest; otherwise
//!   it refuses and names the file;
//! - the claim is recorded (atomically) **before** the file is written, so a crash between the
//!   two leaves a claim on a missing file, and the next run simply writes it;
//! - weir deletes only files in the manifest whose owner is the resource being deleted, then
//!   drops them from the manifest, then removes the directories it created if they are empty.
//!
//! The provider keeps one open [`Project`] per project directory, behind a lock held around
//! each of these operations. A project is first loaded read-only (a plan changes nothing);
//! the first write or delete reloads it, folds the journal into `manifest.json` and removes
//! the temporary files a killed run left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_provider_sdk::ProviderError;

use crate::error::io_error;
use crate::fsio::{self, FsError, Kind, RelPath, Root};

/// The manifest's location inside a project.
pub(crate) const MANIFEST_DIR: &str = ".weir";
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
pub(crate) const JOURNAL_FILE: &str = "manifest.journal";
const MANIFEST_VERSION: u32 = 1;

/// One file weir wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    /// SHA-256 of the content weir last wrote (or was about to write); left out for a file
    /// that holds a secret, since a digest of it would let anyone who can read the manifest
    /// check a guessed secret offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The address of the resource that owns the file.
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    /// The lineage of the weir state that owns the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dirs: BTreeSet<String>,
}

impl Manifest {
    fn empty() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            lineage: None,
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lineage: Option<String>,
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
            JournalEntry::Claim {
                file,
                entry,
                dirs,
                lineage,
            } => {
                self.files.insert(file, entry);
                self.dirs.extend(dirs);
                if lineage.is_some() {
                    self.lineage = lineage;
                }
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
    path: PathBuf,
    /// The open project directory; `None` while it does not exist.
    root: Option<Root>,
    manifest: Manifest,
    /// Whether the manifest was reloaded for writing (journal folded, leftovers removed).
    writable: bool,
    /// The journal, open for appending once something was recorded.
    journal: Option<fs::File>,
}

fn fs_error(action: &str, target: &Path) -> impl Fn(FsError) -> ProviderError {
    move |e| e.to_provider(action, target)
}

impl Project {
    /// Loads a project read-only: its manifest with the journal of an earlier run replayed in
    /// memory. Nothing on disk changes. A project directory that is a link (or not a
    /// directory) is an error.
    pub(crate) fn load(path: PathBuf) -> Result<Project, ProviderError> {
        let root = Root::open(&path, false).map_err(fs_error("open the Mage project", &path))?;
        let manifest = match &root {
            Some(root) => read_manifest(root)?.0,
            None => Manifest::empty(),
        };
        Ok(Project {
            path,
            root,
            manifest,
            writable: false,
            journal: None,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the project ready for writes, once: reloads the manifest (another run may have
    /// changed it since it was loaded), folds the journal into `manifest.json`, and removes
    /// the temporary files a killed run left where weir writes.
    fn prepare_writes(&mut self) -> Result<(), ProviderError> {
        if self.writable {
            return Ok(());
        }
        self.root =
            Root::open(&self.path, false).map_err(fs_error("open the Mage project", &self.path))?;
        let Some(root) = &self.root else {
            self.manifest = Manifest::empty();
            self.writable = true;
            return Ok(());
        };
        let (manifest, had_journal) = read_manifest(root)?;
        if had_journal {
            save(root, &manifest)?;
            let journal = fsio::weir_file(JOURNAL_FILE);
            root.remove_file(&journal).map_err(fs_error(
                "remove weir's manifest journal",
                &journal.under(&self.path),
            ))?;
        }
        // Temporary files are only ever made next to a file weir claimed (the claim is
        // durable before the write starts) or next to the manifest.
        let mut dirs: BTreeSet<&str> = BTreeSet::from(["", MANIFEST_DIR]);
        dirs.extend(
            manifest
                .files
                .keys()
                .map(|k| k.rsplit_once('/').map_or("", |(d, _)| d)),
        );
        root.remove_stale_temps(dirs.iter().copied())
            .map_err(fs_error("clean up weir's temporary files in", &self.path))?;
        self.manifest = manifest;
        self.writable = true;
        Ok(())
    }

    /// The project directory, created when missing.
    fn root_created(&mut self) -> Result<&Root, ProviderError> {
        if self.root.is_none() {
            self.root = Root::open(&self.path, true)
                .map_err(fs_error("create the Mage project", &self.path))?;
        }
        self.root.as_ref().ok_or_else(|| {
            ProviderError::permanent(format!("could not create {}", self.path.display()))
        })
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.path.join(MANIFEST_DIR).join(MANIFEST_FILE)
    }

    /// Refuses a project that another weir state owns.
    pub(crate) fn check_owner(&self, lineage: Option<&str>) -> Result<(), ProviderError> {
        match &self.manifest.lineage {
            Some(owner) if Some(owner.as_str()) != lineage => {
                let ours = match lineage {
                    Some(ours) => format!("this configuration's state has lineage {ours}"),
                    None => "this configuration has no state yet".to_string(),
                };
                Err(ProviderError::conflict(format!(
                    "the Mage project {} belongs to another weir state (lineage {owner}, recorded in {}); {ours}. Two configurations deploying to one project would overwrite and delete each other's files",
                    self.path.display(),
                    self.manifest_path().display()
                ))
                .with_help("give this configuration a `project_dir` of its own; to move the project to this configuration, run `weir destroy` with the configuration that owns it first"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses what writing `rel` would refuse: a file weir does not own, a link or anything
    /// but a regular file in the way. Changes nothing.
    pub(crate) fn check_writable(&self, rel: &RelPath) -> Result<(), ProviderError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let full = rel.under(&self.path);
        let kind = root.kind(rel).map_err(fs_error("write", &full))?;
        let claimed = self.manifest.files.contains_key(&rel.key());
        match kind {
            None => Ok(()),
            Some(Kind::File) if claimed => Ok(()),
            Some(Kind::Symlink) => Err(FsError::Symlink(full.clone()).to_provider("write", &full)),
            Some(Kind::Dir) if claimed => Err(ProviderError::permanent(format!(
                "cannot write {}: a directory is in the way",
                full.display()
            ))
            .with_help("move the directory away, then run weir again")),
            Some(Kind::Other(kind)) => Err(FsError::NotFile(full.clone(), kind).to_provider("write", &full)),
            Some(_) => Err(ProviderError::conflict(format!(
                "refusing to write {}: the file exists and weir does not own it (it is not in weir's manifest {})",
                full.display(),
                self.manifest_path().display()
            ))
            .with_help(
                "move it away, or delete it if it is not needed, then run weir again; weir never writes over a file it did not create",
            )),
        }
    }

    /// The bytes of the file at `rel`; `None` when it is missing.
    pub(crate) fn read(&self, rel: &RelPath) -> Result<Option<Vec<u8>>, ProviderError> {
        match &self.root {
            None => Ok(None),
            Some(root) => root
                .read(rel)
                .map_err(fs_error("read", &rel.under(&self.path))),
        }
    }

    /// Appends one change to the journal and makes it durable.
    fn record(&mut self, entry: JournalEntry) -> Result<(), ProviderError> {
        let rel = fsio::weir_file(JOURNAL_FILE);
        let path = rel.under(&self.path);
        if self.journal.is_none() {
            let file = self
                .root_created()?
                .open_append(&rel, fsio::MODE_PUBLIC)
                .map_err(fs_error("open weir's manifest journal", &path))?;
            self.journal = Some(file);
        }
        let mut line = serde_json::to_vec(&entry).map_err(|e| {
            ProviderError::permanent(format!("could not encode weir's manifest: {e}"))
        })?;
        line.push(b'\n');
        let Some(file) = self.journal.as_mut() else {
            return Ok(());
        };
        std::io::Write::write_all(file, &line)
            .and_then(|_| file.sync_data())
            .map_err(|e| io_error("write weir's manifest journal", &path, &e))?;
        self.manifest.apply(entry);
        Ok(())
    }

    /// Writes `content` to `rel` on behalf of `owner` (a resource of the state with
    /// `lineage`), with permissions `mode`, following the ownership rules.
    pub(crate) fn write_owned(
        &mut self,
        rel: &RelPath,
        content: &[u8],
        owner: &str,
        lineage: Option<&str>,
        mode: u32,
    ) -> Result<(), ProviderError> {
        self.prepare_writes()?;
        self.check_owner(lineage)?;
        self.check_writable(rel)?;
        let key = rel.key();
        let full = rel.under(&self.path);

        // Claim the directories weir is about to create and the file itself, durably, before
        // writing the file.
        let new_dirs: Vec<String> =
            match &self.root {
                None => rel.ancestor_keys(),
                Some(root) => {
                    let mut missing = Vec::new();
                    for dir_key in rel.ancestor_keys() {
                        let dir = RelPath::from_key(&dir_key);
                        match root.kind(&dir).map_err(fs_error("write", &full))? {
                            Some(Kind::Dir) => {}
                            Some(Kind::Symlink) => {
                                return Err(FsError::Symlink(dir.under(&self.path))
                                    .to_provider("write", &full));
                            }
                            Some(_) => {
                                return Err(FsError::NotDir(dir.under(&self.path))
                                    .to_provider("write", &full));
                            }
                            None => missing.push(dir_key),
                        }
                    }
                    missing
                }
            };
        let new_dirs: Vec<String> = new_dirs
            .into_iter()
            .filter(|d| !self.manifest.dirs.contains(d))
            .collect();
        let entry = FileEntry {
            sha256: (mode != fsio::MODE_PRIVATE).then(|| fsio::sha256_hex(content)),
            owner: owner.to_string(),
        };
        let claim_lineage = lineage.filter(|l| self.manifest.lineage.as_deref() != Some(*l));
        if self.manifest.files.get(&key) != Some(&entry)
            || !new_dirs.is_empty()
            || claim_lineage.is_some()
        {
            self.record(JournalEntry::Claim {
                file: key,
                entry,
                dirs: new_dirs,
                lineage: claim_lineage.map(str::to_string),
            })?;
        }
        let mut created = Vec::new();
        self.root_created()?
            .write_atomic(rel, content, mode, &mut created)
            .map_err(fs_error("write", &full))
    }

    /// Deletes `rel` if the manifest says `owner` owns it; leaves anything else alone.
    pub(crate) fn delete_owned(
        &mut self,
        rel: &RelPath,
        owner: &str,
        lineage: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.prepare_writes()?;
        self.check_owner(lineage)?;
        let key = rel.key();
        let full = rel.under(&self.path);
        match self.manifest.files.get(&key) {
            // Not weir's (or owned by another resource): never touched.
            None => return Ok(()),
            Some(entry) if entry.owner != owner => return Ok(()),
            Some(_) => {}
        }
        let Some(root) = &self.root else {
            return Ok(());
        };
        root.remove_file(rel).map_err(|e| match e {
            FsError::NotFile(_, "directory") => ProviderError::permanent(format!(
                "cannot delete {}: it is now a directory, which weir did not create",
                full.display()
            ))
            .with_help("move the directory away, then run weir again"),
            other => other.to_provider("delete", &full),
        })?;
        // Remove the directories weir created, innermost first, while they are empty.
        let mut removed_dirs = Vec::new();
        for dir_key in rel.ancestor_keys().into_iter().rev() {
            if !self.manifest.dirs.contains(&dir_key) {
                break;
            }
            if root.remove_empty_dir(&dir_key) {
                removed_dirs.push(dir_key);
            } else {
                // Not empty (someone else's files are in it) or not removable: keep it.
                break;
            }
        }
        self.record(JournalEntry::Release {
            file: key,
            dirs: removed_dirs,
        })?;
        if self.manifest.is_empty() {
            // Nothing of weir's is left: no manifest either (and no `.weir/` if it is empty).
            self.journal = None;
            if let Some(root) = &self.root {
                let journal = fsio::weir_file(JOURNAL_FILE);
                root.remove_file(&journal).map_err(fs_error(
                    "remove weir's manifest journal",
                    &journal.under(&self.path),
                ))?;
                save(root, &Manifest::empty())?;
            }
            self.manifest = Manifest::empty();
        }
        Ok(())
    }
}

/// Reads the manifest with the journal replayed on top, and whether there was a journal. A
/// missing manifest is empty. An unreadable one stops everything: without it weir cannot tell
/// its files from the user's.
fn read_manifest(root: &Root) -> Result<(Manifest, bool), ProviderError> {
    let rel = fsio::weir_file(MANIFEST_FILE);
    let path = rel.under(root.path());
    let mut manifest = match root
        .read(&rel)
        .map_err(fs_error("read weir's manifest", &path))?
    {
        None => Manifest::empty(),
        Some(text) => parse_manifest(&text, &path)?,
    };
    let rel = fsio::weir_file(JOURNAL_FILE);
    let journal = rel.under(root.path());
    let bytes = root
        .read(&rel)
        .map_err(fs_error("read weir's manifest journal", &journal))?;
    let Some(bytes) = bytes else {
        return Ok((manifest, false));
    };
    for entry in parse_journal(&bytes, &journal)? {
        manifest.apply(entry);
    }
    Ok((manifest, true))
}

fn parse_manifest(text: &[u8], path: &Path) -> Result<Manifest, ProviderError> {
    let manifest: Manifest = serde_json::from_slice(text).map_err(|e| {
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

/// The entries of a journal. Each entry is written as one line with its newline in a single
/// append, so only a last line without a newline can be torn by a crash: that one is ignored
/// when it does not parse. Any other line that does not parse is damage, and an error.
fn parse_journal(bytes: &[u8], path: &Path) -> Result<Vec<JournalEntry>, ProviderError> {
    let mut entries = Vec::new();
    let mut lines = bytes.split(|b| *b == b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break;
        }
        match serde_json::from_slice::<JournalEntry>(line) {
            Ok(entry) => entries.push(entry),
            // The last line has no newline: a crash mid-append; that claim never led to a write.
            Err(_) if last => {}
            Err(e) => {
                return Err(ProviderError::permanent(format!(
                    "weir's manifest journal {} is damaged at line {}: {e}; without it weir cannot tell which files in the project it owns",
                    path.display(),
                    i + 1
                ))
                .with_help("restore the project's .weir directory, or move the project's files away and let weir write them again"));
            }
        }
    }
    Ok(entries)
}

/// Writes the manifest atomically; removes it, and `.weir/` if that ends up empty, when it
/// records nothing.
fn save(root: &Root, manifest: &Manifest) -> Result<(), ProviderError> {
    let rel = fsio::weir_file(MANIFEST_FILE);
    let path = rel.under(root.path());
    if manifest.is_empty() {
        root.remove_file(&rel)
            .map_err(fs_error("remove weir's manifest", &path))?;
        // Only removes the directory when nothing else is in it.
        root.remove_empty_dir(MANIFEST_DIR);
        root.sync();
        return Ok(());
    }
    let mut text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| ProviderError::permanent(format!("could not encode weir's manifest: {e}")))?;
    text.push(b'\n');
    root.write_atomic(&rel, &text, fsio::MODE_PUBLIC, &mut Vec::new())
        .map_err(fs_error("write weir's manifest", &path))
}
