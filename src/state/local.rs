//! The local backend: a state file (by default `<config dir>/.weir/state.json`) plus sidecars.
//!
//! | file                  | what                                                              |
//! |-----------------------|-------------------------------------------------------------------|
//! | `<state>`             | the state document, replaced by [`StateLock::persist`]            |
//! | `<state>.journal`     | changes recorded since the last persist, one JSON line each       |
//! | `<state>.lock`        | empty; holds the OS lock (see [`super::lock`])                    |
//! | `<state>.lock.info`   | who holds the lock                                                |
//! | `.weir-tmp-*`         | a state or lock info being written (removed at the next lock)     |
//!
//! The state's path is below the configuration directory, and every one of these files is
//! reached from that directory's descriptor without following a link
//! ([`weir_provider_sdk::fs::Root`]); writes are atomic ([`Root::write_atomic`]).
//!
//! # Why a journal
//!
//! Apply must record every finished operation as soon as it happens (a crash must not forget a
//! created object), but rewriting a multi-MB state file per resource is quadratic — Terraform's
//! local backend does exactly that. So [`StateLock::record`] appends one
//! line to the journal and fsyncs it (O(1) per operation), and [`StateLock::persist`] writes
//! the whole state once (temp file + fsync + rename + fsync of the directory) and then empties
//! the journal.
//!
//! The journal's first line is a header naming the state it applies on top of:
//! `{"weir_journal":1,"lineage":"…","serial":41}` (`serial` is `null` when no state file existed
//! yet; the lineage is then the one a recovered state will get). Each further line is a
//! [`Recorded`] change: `{"op":"set","address":"…","resource":{…}}` or
//! `{"op":"remove","address":"…"}`.
//!
//! # Reading
//!
//! A read returns the state file with the journal replayed on top (Set overwrites, Remove
//! removes, so replay is idempotent). When the journal held entries the returned state's
//! `serial` is the file's plus one: a crashed apply changed the state. Rules, journal header
//! against state file:
//! - same lineage and serial: replay;
//! - header serial lower than the file's: the journal is stale (a crash between the rename of a
//!   persist and the truncation of the journal) and is ignored; likewise a `null`-serial journal
//!   when a state file exists;
//! - different lineage, a higher serial, or a serial but no state file: an error naming both files.
//!
//! A torn last line (crash mid-write) is ignored, and is cut off before the next append; a bad
//! line anywhere else is an error with its line number.
//!
//! The journal is read *before* the state file, so a lock-free read
//! ([`LocalBackend::read_unlocked`]) racing a persist sees either the old state with its journal
//! or the new state with a stale (ignored) or new journal — provided, as the serial rules
//! require, persisted states that changed carry a higher serial.

#[cfg(doc)]
use super::StateLock;
use super::{ResourceState, State, StateError};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_provider_sdk::fs::{FsError, MODE_PRIVATE, RelPath, Root};

/// One change to a resource, as recorded in the journal by [`StateLock::record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived values; boxing would only cost an allocation
pub enum Recorded {
    /// The resource at `address` now is `resource` (created, updated, imported, refreshed).
    Set {
        address: String,
        resource: ResourceState,
    },
    /// The resource at `address` no longer exists (deleted, or forgotten).
    Remove { address: String },
}

/// Where the state is kept when no `backend "local"` block says otherwise, below the
/// configuration directory.
pub fn default_path() -> RelPath {
    RelPath::from_key(".weir/state.json")
}

/// A state stored in a local file below the configuration directory.
///
/// Every file of the backend (state, journal, lock, lock information, temporary files) is
/// reached from the configuration directory's own descriptor, one component at a time,
/// without following a link ([`weir_provider_sdk::fs`]): a folder on the way to the state or
/// one of its files replaced by a symbolic link is refused with an error naming it, never
/// read, written or deleted through.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// The configuration directory, open.
    root: Arc<Root>,
    /// The state file, below `root`.
    state: RelPath,
    /// The state file's path, for messages.
    path: PathBuf,
}

impl LocalBackend {
    /// A backend for the state file at `state` below the configuration directory
    /// `config_dir` (conventionally `.weir/state.json`), which is opened now: everything
    /// below it is reached through it. Nothing else is touched until the backend is used;
    /// the state's directory is created when missing by [`LocalBackend::lock`] (and by
    /// [`StateLock::persist`]).
    pub fn open(config_dir: &Path, state: &RelPath) -> Result<Self, StateError> {
        let action = "open the configuration directory";
        let root = match Root::open_trusted(config_dir) {
            Ok(Some(root)) => root,
            Ok(None) => {
                return Err(StateError::io(
                    action,
                    config_dir,
                    io::ErrorKind::NotFound.into(),
                ));
            }
            Err(err) => return Err(fs_error(action, config_dir, err)),
        };
        Ok(LocalBackend {
            path: state.under(root.path()),
            root: Arc::new(root),
            state: state.clone(),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<state>.journal`: changes recorded since the last persist.
    pub fn journal_path(&self) -> PathBuf {
        self.journal().under(self.root.path())
    }

    /// `<state>.lock`: the file the OS lock is taken on.
    pub fn lock_path(&self) -> PathBuf {
        self.lock_file().under(self.root.path())
    }

    /// `<state>.lock.info`: who holds the lock.
    pub fn lock_info_path(&self) -> PathBuf {
        self.lock_info().under(self.root.path())
    }

    /// Reads the state (with the journal replayed) without taking the lock, for read-only
    /// commands such as `weir state list`. `None` when there is no state yet.
    pub fn read_unlocked(&self) -> Result<Option<State>, StateError> {
        read_state(self)
    }

    /// The directory of the state file.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> PathBuf {
        self.state.ancestor_keys().last().map_or_else(
            || self.root.path().to_path_buf(),
            |key| RelPath::from_key(key).under(self.root.path()),
        )
    }

    /// The state file with `suffix` appended to its name, below the configuration directory.
    fn sibling(&self, suffix: &str) -> RelPath {
        RelPath::from_key(&format!("{}{suffix}", self.state.key()))
    }

    pub(crate) fn journal(&self) -> RelPath {
        self.sibling(".journal")
    }

    pub(crate) fn lock_file(&self) -> RelPath {
        self.sibling(".lock")
    }

    pub(crate) fn lock_info(&self) -> RelPath {
        self.sibling(".lock.info")
    }

    /// Opens the journal for appending, creating it (mode 0600, like the state file: entries
    /// may hold secrets) when missing.
    fn open_journal(&self) -> Result<File, StateError> {
        self.root
            .open_append(&self.journal(), MODE_PRIVATE)
            .map_err(|err| fs_error("open state journal", &self.journal_path(), err))
    }

    /// The configuration directory, open.
    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    /// The key of the state's directory for [`Root::remove_stale_temps`] (`""`: the
    /// configuration directory itself).
    pub(crate) fn dir_key(&self) -> String {
        self.state.ancestor_keys().pop().unwrap_or_default()
    }

    /// The contents of the backend's file `rel`, `None` when it does not exist.
    pub(crate) fn read_file(
        &self,
        rel: &RelPath,
        action: &'static str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let full = rel.under(self.root.path());
        self.root
            .read(rel)
            .map_err(|err| fs_error(action, &full, err))
    }

    /// Opens the backend's file `rel` read-write (created with `mode` when missing and
    /// `create` is set; else `None` when missing).
    pub(crate) fn open_file(
        &self,
        rel: &RelPath,
        mode: u32,
        create: bool,
        action: &'static str,
    ) -> Result<Option<File>, StateError> {
        let full = rel.under(self.root.path());
        self.root
            .open_rw(rel, mode, create)
            .map_err(|err| fs_error(action, &full, err))
    }
}

/// The error of `action` on the backend's file `target`, from the shared file access: names
/// the path that is wrong (the file itself, or a folder on the way to it).
pub(crate) fn fs_error(action: &'static str, target: &Path, err: FsError) -> StateError {
    let why = match err {
        FsError::Io(path, source) if path == target => {
            return StateError::io(action, target, source);
        }
        FsError::Io(path, source) => format!("{}: {source}", path.display()),
        FsError::Symlink(path) => format!(
            "{} is a symbolic link, and weir never follows links below the configuration directory (one could point anywhere): replace it with a real {}",
            if path == target {
                "it".to_string()
            } else {
                path.display().to_string()
            },
            if path == target { "file" } else { "directory" }
        ),
        FsError::NotDir(path) => format!("{} is not a directory", path.display()),
        FsError::NotFile(path, kind) if path == target => {
            format!("it is a {kind}, not a regular file")
        }
        FsError::NotFile(path, kind) => {
            format!("{} is a {kind}, not a regular file", path.display())
        }
    };
    StateError::io(action, target, io::Error::other(why))
}

/// Reads the state file with the journal replayed on top (see the module docs).
pub(crate) fn read_state(backend: &LocalBackend) -> Result<Option<State>, StateError> {
    let state_path = backend.path();
    let journal_path = backend.journal_path();
    let journal_path = journal_path.as_path();
    // The journal first: see "Reading" in the module docs.
    let journal = backend.read_file(&backend.journal(), "read state journal")?;
    let state = backend
        .read_file(&backend.state, "read state file")?
        .map(|bytes| State::parse(&bytes, state_path))
        .transpose()?;
    let Some(journal) = journal else {
        return Ok(state);
    };
    let Some((header, header_end)) = scan_header(&journal, journal_path)? else {
        return Ok(state);
    };
    if is_blank(&journal[header_end..]) {
        return Ok(state); // a header alone records nothing
    }
    let head = state.as_ref().map(|s| StateHead {
        lineage: s.lineage.clone(),
        serial: s.serial,
    });
    if !applies(head.as_ref(), &header, journal_path, state_path)? {
        return Ok(state);
    }
    let (entries, _) = scan_entries(&journal, header_end, journal_path)?;
    if entries.is_empty() {
        return Ok(state);
    }
    let mut state = state.unwrap_or_else(|| {
        let mut fresh = State::with_lineage(header.lineage.clone());
        fresh.key = header.key.clone().unwrap_or_default();
        fresh
    });
    for change in &entries {
        state.apply_change(change);
    }
    state.serial += 1;
    Ok(Some(state))
}

/// The journal's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct JournalHeader {
    weir_journal: u64,
    lineage: String,
    /// The serial of the state file the journal applies on top of; `None`: no state file.
    serial: Option<u64>,
    /// Without a state file: the new state's key ([`State::key`]), which keyed the digests of
    /// the secrets recorded below, so that a run killed before its first persist recovers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

const JOURNAL_VERSION: u64 = 1;

/// The fields of a state file that decide whether a journal applies to it.
#[derive(Debug)]
struct StateHead {
    lineage: String,
    serial: u64,
}

/// The header and the offset just past it; `None` when the journal is empty or its header torn.
fn scan_header(bytes: &[u8], path: &Path) -> Result<Option<(JournalHeader, usize)>, StateError> {
    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
        return Ok(None); // empty, or a header torn by a crash: nothing was recorded
    };
    let line = &bytes[..nl];
    let rest_is_empty = is_blank(&bytes[nl + 1..]);
    match serde_json::from_slice::<JournalHeader>(line) {
        Ok(h) if h.weir_journal == JOURNAL_VERSION => Ok(Some((h, nl + 1))),
        Ok(h) => Err(StateError::JournalUnsupportedVersion {
            path: path.to_path_buf(),
            version: h.weir_journal,
        }),
        Err(_) if rest_is_empty => Ok(None),
        Err(err) => {
            #[derive(Deserialize)]
            struct VersionOnly {
                weir_journal: u64,
            }
            match serde_json::from_slice::<VersionOnly>(line) {
                Ok(v) if v.weir_journal != JOURNAL_VERSION => {
                    Err(StateError::JournalUnsupportedVersion {
                        path: path.to_path_buf(),
                        version: v.weir_journal,
                    })
                }
                _ => Err(StateError::JournalCorrupt {
                    path: path.to_path_buf(),
                    line: 1,
                    source: err,
                }),
            }
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The entries after the header, and the length of the journal up to the last good line (a torn
/// last line is left out of both).
fn scan_entries(
    bytes: &[u8],
    start: usize,
    path: &Path,
) -> Result<(Vec<Recorded>, usize), StateError> {
    let mut entries = Vec::new();
    let mut pos = start;
    let mut line_no = 1; // the header
    while pos < bytes.len() {
        line_no += 1;
        let Some(len) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            break; // unterminated: torn by a crash mid-write
        };
        let line = &bytes[pos..pos + len];
        let next = pos + len + 1;
        if is_blank(line) {
            pos = next;
            continue;
        }
        match serde_json::from_slice::<Recorded>(line) {
            Ok(change) => entries.push(change),
            Err(_) if is_blank(&bytes[next..]) => break, // torn last line
            Err(err) => {
                return Err(StateError::JournalCorrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    source: err,
                });
            }
        }
        pos = next;
    }
    Ok((entries, pos))
}

/// Whether a journal with `header` applies on top of the state file whose head is `state`
/// (`None`: no state file). Errors when they contradict each other.
fn applies(
    state: Option<&StateHead>,
    header: &JournalHeader,
    journal_path: &Path,
    state_path: &Path,
) -> Result<bool, StateError> {
    match (header.serial, state) {
        // Started before any state existed: applies until the first persist creates one.
        (None, None) => Ok(true),
        (None, Some(_)) => Ok(false),
        (Some(serial), None) => Err(StateError::JournalMismatch {
            journal: journal_path.to_path_buf(),
            journal_serial: serial,
            state: state_path.to_path_buf(),
            state_serial: None,
        }),
        (Some(serial), Some(head)) => {
            if head.lineage != header.lineage {
                Err(StateError::JournalLineageMismatch {
                    journal: journal_path.to_path_buf(),
                    journal_lineage: header.lineage.clone(),
                    state: state_path.to_path_buf(),
                    state_lineage: head.lineage.clone(),
                })
            } else if serial == head.serial {
                Ok(true)
            } else if serial < head.serial {
                Ok(false) // stale: already folded into the state file
            } else {
                Err(StateError::JournalMismatch {
                    journal: journal_path.to_path_buf(),
                    journal_serial: serial,
                    state: state_path.to_path_buf(),
                    state_serial: Some(head.serial),
                })
            }
        }
    }
}

/// Reads just the lineage and serial of the state file (cheaply: the rest is skipped).
fn read_state_head(backend: &LocalBackend) -> Result<Option<StateHead>, StateError> {
    #[derive(Deserialize)]
    struct Head {
        version: u64,
        lineage: String,
        serial: u64,
    }
    let Some(bytes) = backend.read_file(&backend.state, "read state file")? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Head>(&bytes) {
        Ok(h) if h.version == u64::from(super::STATE_VERSION) => Ok(Some(StateHead {
            lineage: h.lineage,
            serial: h.serial,
        })),
        // Anything else: the full parse gives the precise error.
        _ => State::parse(&bytes, backend.path()).map(|s| {
            Some(StateHead {
                lineage: s.lineage,
                serial: s.serial,
            })
        }),
    }
}

/// Writes `state` to the backend's state file atomically (see [`Root::write_atomic`]): a
/// temporary file in the same directory, fsync, rename over the state file, fsync of the
/// directory. Readers see the old or the new file, never a mix.
pub(crate) fn write_state_atomic(backend: &LocalBackend, state: &State) -> Result<(), StateError> {
    // Secrets still in clear (a state written by an older weir) are written as keyed digests.
    let sealed = state.sealed();
    let state = sealed.as_ref();
    // Mode 0600: state may hold secrets (sealed, and the key that seals them).
    backend
        .root
        .write_atomic_with(&backend.state, MODE_PRIVATE, &mut Vec::new(), |file| {
            let mut w = BufWriter::with_capacity(1 << 16, file);
            serde_json::to_writer_pretty(&mut w, state)?;
            w.write_all(b"\n")?;
            w.flush()?;
            #[cfg(test)]
            if tests::FAIL_BEFORE_RENAME.with(std::cell::Cell::take) {
                return Err(io::Error::other("injected failure"));
            }
            Ok(())
        })
        .map_err(|err| fs_error("replace state file", backend.path(), err))
}

/// The writing side of the journal, owned by a [`StateLock`].
#[derive(Debug)]
pub(crate) struct JournalWriter {
    backend: LocalBackend,
    /// The journal's path, for messages.
    path: PathBuf,
    mode: Mode,
    buf: Vec<u8>,
    /// The lineage of the new state being applied when there is no state file yet: a journal
    /// started then carries it, so that a run killed before its first persist recovers the
    /// same lineage (providers record it as the owner of what they create).
    pub(crate) new_lineage: Option<String>,
    /// The key of that new state, carried by such a journal the same way.
    pub(crate) new_key: Option<String>,
}

#[derive(Debug)]
enum Mode {
    /// Not looked at yet: the first record validates what is on disk.
    Unknown,
    /// The journal is empty (or to be emptied); `header` is written before the next entry.
    Pending {
        header: JournalHeader,
        file: Option<File>,
    },
    /// Open for appending; the header is in place.
    Open { file: File },
}

impl JournalWriter {
    pub(crate) fn new(backend: &LocalBackend) -> Self {
        JournalWriter {
            backend: backend.clone(),
            path: backend.journal_path(),
            mode: Mode::Unknown,
            buf: Vec::with_capacity(4096),
            new_lineage: None,
            new_key: None,
        }
    }

    /// Appends changes, one line each, and fsyncs once.
    pub(crate) fn record(&mut self, changes: &[Recorded]) -> Result<(), StateError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for change in changes {
            serde_json::to_writer(&mut self.buf, change).map_err(|e| StateError::Encode {
                path: self.path.clone(),
                source: e,
            })?;
            self.buf.push(b'\n');
        }
        let result = self.append();
        if result.is_err() {
            // A failed write may have left a torn line; the next record re-validates the
            // journal, which cuts it off.
            self.mode = Mode::Unknown;
        }
        result
    }

    fn append(&mut self) -> Result<(), StateError> {
        if matches!(self.mode, Mode::Unknown) {
            self.mode = self.prepare()?;
        }
        if let Mode::Pending { header, file } = &mut self.mode {
            let mut f = match file.take() {
                Some(f) => f,
                None => self.backend.open_journal()?,
            };
            let mut line = serde_json::to_vec(header).map_err(|e| {
                StateError::io("write state journal", &self.path, std::io::Error::other(e))
            })?;
            line.push(b'\n');
            f.set_len(0)
                .and_then(|()| f.write_all(&line))
                .and_then(|()| f.sync_data())
                .map_err(|e| StateError::io("write state journal", &self.path, e))?;
            self.mode = Mode::Open { file: f };
        }
        let Mode::Open { file } = &mut self.mode else {
            unreachable!("journal is open after preparing it");
        };
        file.write_all(&self.buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| StateError::io("write state journal", &self.path, e))
    }

    /// Decides, from what is on disk, whether to append to the existing journal (a crashed run's
    /// entries that the state file does not have yet) or to start a new one.
    fn prepare(&self) -> Result<Mode, StateError> {
        let bytes = self
            .backend
            .read_file(&self.backend.journal(), "read state journal")?
            .unwrap_or_default();
        let head = read_state_head(&self.backend)?;
        let state_path = self.backend.path();
        if let Some((header, header_end)) = scan_header(&bytes, &self.path)?
            && !is_blank(&bytes[header_end..])
            && applies(head.as_ref(), &header, &self.path, state_path)?
        {
            let (_, valid_len) = scan_entries(&bytes, header_end, &self.path)?;
            let file = self.backend.open_journal()?;
            if valid_len < bytes.len() {
                // Cut off a torn last line so the next entry does not land after it.
                file.set_len(valid_len as u64)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| StateError::io("truncate state journal", &self.path, e))?;
            }
            return Ok(Mode::Open { file });
        }
        let header = match head {
            Some(head) => JournalHeader {
                weir_journal: JOURNAL_VERSION,
                lineage: head.lineage,
                serial: Some(head.serial),
                key: None,
            },
            None => JournalHeader {
                weir_journal: JOURNAL_VERSION,
                lineage: self
                    .new_lineage
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                serial: None,
                key: self.new_key.clone(),
            },
        };
        Ok(Mode::Pending { header, file: None })
    }

    /// After `state` was persisted: empties the journal; the next record starts a new one on
    /// top of `state`.
    pub(crate) fn reset(&mut self, state: &State) -> Result<(), StateError> {
        let file = match std::mem::replace(&mut self.mode, Mode::Unknown) {
            Mode::Open { file }
            | Mode::Pending {
                file: Some(file), ..
            } => Some(file),
            Mode::Pending { file: None, .. } | Mode::Unknown => self.backend.open_file(
                &self.backend.journal(),
                MODE_PRIVATE,
                false,
                "open state journal",
            )?,
        };
        if let Some(f) = &file {
            f.set_len(0)
                .and_then(|()| f.sync_data())
                .map_err(|e| StateError::io("truncate state journal", &self.path, e))?;
        }
        self.mode = Mode::Pending {
            header: JournalHeader {
                weir_journal: JOURNAL_VERSION,
                lineage: state.lineage.clone(),
                serial: Some(state.serial),
                key: None,
            },
            file,
        };
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::lock::StateLock;
    use super::*;
    use serde_json::json;
    use std::fs::{self, OpenOptions};
    use std::time::Duration;
    use weir_provider_sdk::fs::TEMP_PREFIX;

    /// The backend of the configuration directory `dir` with the default state path.
    pub(crate) fn backend(dir: &tempfile::TempDir) -> LocalBackend {
        LocalBackend::open(dir.path(), &default_path()).unwrap()
    }

    fn backend_at(dir: &tempfile::TempDir, state: &str) -> LocalBackend {
        LocalBackend::open(dir.path(), &RelPath::parse(state).unwrap()).unwrap()
    }

    /// The names in the state's directory that are weir's temporary files.
    fn temp_files(b: &LocalBackend) -> Vec<String> {
        fs::read_dir(b.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    fn lock(b: &LocalBackend) -> StateLock {
        b.lock("apply", Duration::ZERO).unwrap()
    }

    fn res(n: u64) -> ResourceState {
        let mut r = ResourceState::new(
            "mage_block",
            "mage",
            json!({"name": format!("b{n}"), "n": n}),
        );
        r.dependencies = vec![format!("mage_pipeline.p{}", n / 10)];
        r
    }

    fn set(addr: &str, n: u64) -> Recorded {
        Recorded::Set {
            address: addr.to_string(),
            resource: res(n),
        }
    }

    fn state_with(serial: u64, addrs: &[&str]) -> State {
        let mut s = State::new();
        for (i, a) in addrs.iter().enumerate() {
            s.resources.insert(a.to_string(), res(i as u64));
        }
        s.serial = serial;
        s
    }

    #[test]
    fn no_state_yet() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        assert_eq!(b.read_unlocked().unwrap(), None);
        assert!(!b.dir().exists(), "a read creates nothing");
        let l = lock(&b);
        assert!(b.dir().is_dir(), "lock creates the .weir directory");
        assert_eq!(l.read().unwrap(), None);
    }

    #[test]
    fn sidecar_paths() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        let b = backend(&dir);
        assert_eq!(b.path(), c.join(".weir/state.json"));
        assert_eq!(b.journal_path(), c.join(".weir/state.json.journal"));
        assert_eq!(b.lock_path(), c.join(".weir/state.json.lock"));
        assert_eq!(b.lock_info_path(), c.join(".weir/state.json.lock.info"));
        assert_eq!(b.dir(), c.join(".weir"));
        let top = backend_at(&dir, "state.json");
        assert_eq!((top.dir(), top.dir_key()), (c.to_path_buf(), String::new()));
        let deep = backend_at(&dir, "./states/prod/s.json");
        assert_eq!(deep.path(), c.join("states/prod/s.json"));
        assert_eq!(deep.dir_key(), "states/prod");
    }

    #[test]
    fn persist_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let mut l = lock(&b);
        let mut s = state_with(1, &["a.a", "b.b"]);
        l.persist(&s).unwrap();
        assert_eq!(l.read().unwrap().as_ref(), Some(&s));
        assert_eq!(b.read_unlocked().unwrap().as_ref(), Some(&s));
        let text = fs::read_to_string(b.path()).unwrap();
        assert_eq!(text, s.to_json());

        // Overwrite; no temp files are left behind.
        s.resources.remove("a.a");
        s.bump();
        l.persist(&s).unwrap();
        assert_eq!(l.read().unwrap().as_ref(), Some(&s));
        assert_eq!(temp_files(&b), Vec::<String>::new(), "temp files left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(b.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "state file is private: {mode:o}");
        }
    }

    thread_local! {
        /// Makes the next [`write_state_atomic`] on this thread fail after writing the whole
        /// temporary file, before its rename (a full disk, an I/O error): a failure no file
        /// permission can simulate when the tests run as root.
        pub(super) static FAIL_BEFORE_RENAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn clear_secrets_of_an_older_state_are_sealed_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        // As an older weir wrote it: secrets in clear.
        let mut old = State::new();
        let mut r = ResourceState::new(
            "mage_pipeline",
            "mage",
            serde_json::json!({"name": "etl", "variables": {"key": "s3cr3t-value", "region": "eu"}}),
        );
        r.sensitive_paths = vec![vec!["variables".into(), "key".into()]];
        old.resources.insert("mage_pipeline.etl".into(), r);
        old.outputs.insert(
            "key".into(),
            crate::state::OutputState {
                value: serde_json::json!("s3cr3t-value"),
                sensitive: true,
            },
        );
        fs::create_dir_all(b.path().parent().unwrap()).unwrap();
        fs::write(b.path(), old.to_json()).unwrap();
        let mut l = lock(&b);
        let read = l.read().unwrap().unwrap();
        assert_eq!(read, old, "an older state loads as it is");
        l.persist(&read).unwrap();
        let text = fs::read_to_string(b.path()).unwrap();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("\"region\": \"eu\""), "{text}");
        let sealed = State::parse(text.as_bytes(), b.path()).unwrap();
        let mut revealed = sealed.resources["mage_pipeline.etl"].attributes.clone();
        crate::plan::sensitive::reveal(
            &mut revealed,
            &old.resources["mage_pipeline.etl"].attributes,
            &old.key,
            "mage_pipeline.etl",
        );
        assert_eq!(revealed, old.resources["mage_pipeline.etl"].attributes);
    }

    #[test]
    fn failed_persist_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let mut l = lock(&b);
        let s = state_with(1, &["a.a"]);
        l.persist(&s).unwrap();
        let mut s2 = state_with(2, &["b.b"]);
        s2.lineage = s.lineage.clone();
        FAIL_BEFORE_RENAME.with(|f| f.set(true));
        let err = l.persist(&s2).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(
            err.to_string().contains(&b.path().display().to_string()),
            "the error names the state file: {err}"
        );
        assert_eq!(
            b.read_unlocked().unwrap(),
            Some(s.clone()),
            "old state kept"
        );
        assert_eq!(fs::read_to_string(b.path()).unwrap(), s.to_json());
        assert_eq!(
            temp_files(&b),
            Vec::<String>::new(),
            "the temporary file is removed"
        );
        // The next persist works.
        l.persist(&s2).unwrap();
        assert_eq!(b.read_unlocked().unwrap(), Some(s2));
    }

    #[test]
    fn journal_replay_bumps_serial() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let base = state_with(5, &["old.gone", "old.kept"]);
        {
            let mut l = lock(&b);
            l.persist(&base).unwrap();
            l.record(set("new.one", 1)).unwrap();
            l.record(set("new.two", 2)).unwrap();
            l.record(Recorded::Remove {
                address: "old.gone".into(),
            })
            .unwrap();
            l.record(set("new.one", 11)).unwrap(); // overwrite
            // read under the lock sees the journal too
            let s = l.read().unwrap().unwrap();
            assert_eq!(s.serial, 6);
            // "crash": drop without persisting
        }
        let s = b.read_unlocked().unwrap().unwrap();
        assert_eq!(s.lineage, base.lineage);
        assert_eq!(s.serial, 6, "replayed journal bumps serial once");
        let addrs: Vec<&str> = s.resources.keys().map(String::as_str).collect();
        assert_eq!(addrs, ["new.one", "new.two", "old.kept"]);
        assert_eq!(s.resources["new.one"], res(11));

        // A new session appends to the pending journal, then folds it in.
        let mut l = lock(&b);
        let mut s = l.read().unwrap().unwrap();
        l.record(set("new.three", 3)).unwrap();
        s.apply_change(&set("new.three", 3));
        let again = l.read().unwrap().unwrap();
        assert_eq!(again, s, "replay on top of a re-opened journal");
        s.bump();
        l.persist(&s).unwrap();
        assert_eq!(
            fs::metadata(b.journal_path()).unwrap().len(),
            0,
            "journal truncated"
        );
        assert_eq!(l.read().unwrap().unwrap(), s);
        assert_eq!(s.serial, 7);

        // Records after a persist start a fresh journal on top of the new serial.
        l.record(Recorded::Remove {
            address: "new.two".into(),
        })
        .unwrap();
        let after = b.read_unlocked().unwrap().unwrap();
        assert_eq!(after.serial, 8);
        assert!(!after.resources.contains_key("new.two"));
        let header = fs::read_to_string(b.journal_path()).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(header.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            json!({"weir_journal": 1, "lineage": s.lineage, "serial": 7})
        );
    }

    #[test]
    fn empty_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let mut l = lock(&b);
        l.record_batch(&[]).unwrap();
        assert!(!b.journal_path().exists());
        l.record_batch(&[set("a.a", 1), set("b.b", 2)]).unwrap();
        let s = l.read().unwrap().unwrap();
        assert_eq!((s.serial, s.resources.len()), (1, 2));
    }

    #[test]
    fn journal_without_state_recovers_a_fresh_state() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let new = State::new();
        {
            let mut l = lock(&b);
            assert_eq!(l.read().unwrap(), None);
            l.begin(&new);
            l.record(set("a.a", 1)).unwrap();
        }
        let s1 = b.read_unlocked().unwrap().unwrap();
        let s2 = b.read_unlocked().unwrap().unwrap();
        assert_eq!(s1, s2, "recovered lineage is stable");
        assert_eq!(s1.lineage, new.lineage);
        assert_eq!(
            s1.key, new.key,
            "the key of the recorded digests is recovered"
        );
        assert_eq!(s1.serial, 1);
        assert_eq!(s1.resources.len(), 1);

        // The first persist makes the (null-serial) journal stale even with a new lineage.
        let mut l = lock(&b);
        let mut fresh = State::new();
        fresh.resources.insert("z.z".into(), res(9));
        fresh.bump();
        write_state_atomic(&b, &fresh).unwrap(); // rename happened, truncate did not
        assert_eq!(l.read().unwrap().unwrap(), fresh);
        l.record(set("y.y", 2)).unwrap(); // the stale journal is replaced, not appended to
        let s = l.read().unwrap().unwrap();
        assert_eq!(s.serial, 2);
        assert_eq!(s.resources.keys().collect::<Vec<_>>(), ["y.y", "z.z"]);
    }

    #[test]
    fn stale_journal_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let mut l = lock(&b);
        let mut s = state_with(3, &["a.a"]);
        l.persist(&s).unwrap();
        l.record(set("b.b", 1)).unwrap();
        // Crash between rename and journal truncation of the next persist:
        s.apply_change(&set("b.b", 1));
        s.resources.insert("b.b".into(), res(7)); // changed again, not recorded
        s.bump();
        write_state_atomic(&b, &s).unwrap();
        drop(l);
        assert_eq!(
            b.read_unlocked().unwrap().unwrap(),
            s,
            "not replayed over a newer state"
        );
        // The next session replaces the stale journal rather than appending to it.
        let mut l = lock(&b);
        l.record(set("c.c", 2)).unwrap();
        let got = l.read().unwrap().unwrap();
        assert_eq!(got.serial, 5);
        assert_eq!(got.resources["b.b"], res(7));
        assert!(got.resources.contains_key("c.c"));
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let base = state_with(1, &[]);
        {
            let mut l = lock(&b);
            l.persist(&base).unwrap();
            l.record(set("a.a", 1)).unwrap();
            l.record(set("b.b", 2)).unwrap();
        }
        // Crash mid-write of a third line.
        let full = serde_json::to_string(&set("c.c", 3)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(b.journal_path())
            .unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        let s = b.read_unlocked().unwrap().unwrap();
        assert_eq!(s.resources.keys().collect::<Vec<_>>(), ["a.a", "b.b"]);
        assert_eq!(s.serial, 2);

        // Also a terminated-but-garbage last line (zeros from a crash) is torn.
        let mut f = OpenOptions::new()
            .append(true)
            .open(b.journal_path())
            .unwrap();
        f.write_all(b"\0\0\0\n").unwrap();
        drop(f);
        assert_eq!(b.read_unlocked().unwrap().unwrap(), s);

        // The next session's first record cuts the torn tail off before appending.
        let mut l = lock(&b);
        l.record(set("d.d", 4)).unwrap();
        let s = l.read().unwrap().unwrap();
        assert_eq!(
            s.resources.keys().collect::<Vec<_>>(),
            ["a.a", "b.b", "d.d"]
        );

        // A header torn by a crash: nothing recorded.
        drop(l);
        fs::write(b.journal_path(), b"{\"weir_journal\":1,\"lin").unwrap();
        assert_eq!(b.read_unlocked().unwrap().unwrap(), base);
    }

    #[test]
    fn torn_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        {
            let mut l = lock(&b);
            l.persist(&state_with(1, &[])).unwrap();
            l.record(set("a.a", 1)).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(b.journal_path())
            .unwrap();
        f.write_all(b"{\"op\":\"set\",\"addr\n").unwrap();
        f.write_all(format!("{}\n", serde_json::to_string(&set("b.b", 2)).unwrap()).as_bytes())
            .unwrap();
        drop(f);
        let err = b.read_unlocked().unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, StateError::JournalCorrupt { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            msg.contains(&b.journal_path().display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("line 3"), "{msg}");
        // A record refuses to append to it, too.
        let mut l = lock(&b);
        assert!(matches!(
            l.record(set("c.c", 3)),
            Err(StateError::JournalCorrupt { .. })
        ));
    }

    #[test]
    fn journal_of_another_lineage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        {
            let mut l = lock(&b);
            l.persist(&state_with(4, &[])).unwrap();
            l.record(set("a.a", 1)).unwrap();
        }
        // Someone replaces state.json with an unrelated state of the same serial.
        let other = state_with(4, &[]);
        fs::write(b.path(), other.to_json()).unwrap();
        let err = b.read_unlocked().unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, StateError::JournalLineageMismatch { .. }),
            "{err:?}"
        );
        assert!(
            msg.contains(&b.journal_path().display().to_string()),
            "{msg}"
        );
        assert!(msg.contains(&b.path().display().to_string()), "{msg}");
        assert!(msg.contains(&other.lineage), "{msg}");

        // A restored older state of the same lineage (journal ahead) is also an error.
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let mut s = state_with(4, &[]);
        {
            let mut l = lock(&b);
            l.persist(&s).unwrap();
            l.record(set("a.a", 1)).unwrap();
        }
        s.serial = 3;
        fs::write(b.path(), s.to_json()).unwrap();
        let err = b.read_unlocked().unwrap_err();
        assert!(matches!(err, StateError::JournalMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("serial 4"), "{err}");
        // And a deleted state file.
        fs::remove_file(b.path()).unwrap();
        let err = b.read_unlocked().unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn header_only_journal_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let s = state_with(2, &["a.a"]);
        fs::create_dir_all(b.dir()).unwrap();
        fs::write(b.path(), s.to_json()).unwrap();
        // Crash after the header was written, before the first entry; and the state was then
        // replaced by an unrelated one: nothing was recorded, so nothing conflicts.
        fs::write(
            b.journal_path(),
            "{\"weir_journal\":1,\"lineage\":\"other\",\"serial\":9}\n",
        )
        .unwrap();
        assert_eq!(b.read_unlocked().unwrap().unwrap(), s);
        let mut l = lock(&b);
        l.record(set("b.b", 1)).unwrap();
        assert_eq!(l.read().unwrap().unwrap().serial, 3);
    }

    #[test]
    fn corrupt_state_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        fs::create_dir_all(b.dir()).unwrap();
        fs::write(
            b.path(),
            "{\n  \"version\": 1,\n  \"lineage\": \"x\",\n  \"serial\": 1,\n}",
        )
        .unwrap();
        let err = b.read_unlocked().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&b.path().display().to_string()), "{msg}");
        assert!(msg.contains("line 5 column 1"), "{msg}");
        let l = lock(&b);
        assert!(matches!(l.read(), Err(StateError::Corrupt { .. })));
        // record validates the state file as well (it needs its lineage and serial)
        let mut l = l;
        assert!(matches!(
            l.record(set("a.a", 1)),
            Err(StateError::Corrupt { .. })
        ));
        // Truncated file (e.g. copied while written by something else).
        fs::write(b.path(), &state_with(1, &["a.a"]).to_json()[..40]).unwrap();
        let msg = b.read_unlocked().unwrap_err().to_string();
        assert!(msg.contains("EOF while parsing"), "{msg}");
    }

    /// A file outside the state directory that a planted link points at.
    #[cfg(unix)]
    fn outside(dir: &tempfile::TempDir, content: &str) -> PathBuf {
        let path = dir.path().join("outside.txt");
        fs::write(&path, content).unwrap();
        path
    }

    #[cfg(unix)]
    fn assert_refuses_link(err: StateError, path: &Path) {
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("symbolic link"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_state_file_is_neither_read_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let content = state_with(3, &["x.x"]).to_json();
        let target = outside(&dir, &content);
        fs::create_dir_all(b.dir()).unwrap();
        std::os::unix::fs::symlink(&target, b.path()).unwrap();
        assert_refuses_link(b.read_unlocked().unwrap_err(), b.path());
        let mut l = lock(&b);
        assert_refuses_link(l.read().unwrap_err(), b.path());
        assert_refuses_link(l.persist(&state_with(4, &[])).unwrap_err(), b.path());
        assert!(
            fs::symlink_metadata(b.path())
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), content,);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_journal_is_neither_read_nor_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        {
            let mut l = lock(&b);
            l.persist(&state_with(1, &[])).unwrap();
        }
        let target = outside(&dir, "precious\n");
        std::os::unix::fs::symlink(&target, b.journal_path()).unwrap();
        assert_refuses_link(b.read_unlocked().unwrap_err(), &b.journal_path());
        let mut l = lock(&b);
        assert_refuses_link(l.record(set("a.a", 1)).unwrap_err(), &b.journal_path());
        let mut s = state_with(1, &[]);
        s.bump();
        // persist: the state file is written, then the journal cannot be emptied through the link.
        let _ = l.persist(&s);
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_lock_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        fs::create_dir_all(b.dir()).unwrap();
        let target = outside(&dir, "precious\n");
        std::os::unix::fs::symlink(&target, b.lock_path()).unwrap();
        assert_refuses_link(b.lock("apply", Duration::ZERO).unwrap_err(), &b.lock_path());
        fs::remove_file(b.lock_path()).unwrap();
        std::os::unix::fs::symlink(&target, b.lock_info_path()).unwrap();
        assert_refuses_link(
            b.lock("apply", Duration::ZERO).unwrap_err(),
            &b.lock_info_path(),
        );
        assert_eq!(b.lock_holder(), None, "the link is not read either");
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_state_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join("state.json"), state_with(2, &[]).to_json()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, b.dir()).unwrap();
        assert_refuses_link(b.read_unlocked().unwrap_err(), &b.dir());
        assert_refuses_link(b.lock("apply", Duration::ZERO).unwrap_err(), &b.dir());
        let names: Vec<_> = fs::read_dir(&elsewhere).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing was written through the link");
    }

    /// `path = "states/prod/state.json"` with `states` swapped for a link to a folder outside:
    /// every use of the backend is refused naming `states`, and nothing is read, written or
    /// created outside.
    #[cfg(unix)]
    #[test]
    fn symlinked_folder_on_the_way_to_the_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let prod = outside.path().join("prod");
        fs::create_dir(&prod).unwrap();
        let theirs = state_with(7, &["x.x"]).to_json();
        fs::write(prod.join("state.json"), &theirs).unwrap();
        fs::write(prod.join(".weir-tmp-theirs"), "theirs").unwrap();
        let b = backend_at(&dir, "states/prod/state.json");
        let link = dir.path().join("states");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();

        assert_refuses_link(b.read_unlocked().unwrap_err(), &link);
        assert_refuses_link(b.lock("apply", Duration::ZERO).unwrap_err(), &link);
        assert_eq!(b.lock_holder(), None);
        // Swapped after the lock was taken: the next write is refused all the same.
        fs::remove_file(&link).unwrap();
        let mut l = lock(&b);
        fs::rename(dir.path().join("states"), dir.path().join("ours")).unwrap();
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        assert_refuses_link(l.persist(&state_with(1, &[])).unwrap_err(), &link);
        assert_refuses_link(l.record(set("a.a", 1)).unwrap_err(), &link);
        assert_refuses_link(l.read().unwrap_err(), &link);
        drop(l);

        let mut names: Vec<String> = fs::read_dir(&prod)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".weir-tmp-theirs", "state.json"], "written outside");
        assert_eq!(fs::read_to_string(prod.join("state.json")).unwrap(), theirs);
    }

    /// A FIFO where the state file, the journal or the lock file is expected is an error at
    /// once, never a read or a write that blocks forever.
    #[cfg(unix)]
    #[test]
    fn fifo_instead_of_a_state_file_is_an_error_not_a_hang() {
        for which in ["state", "journal", "lock"] {
            let dir = tempfile::tempdir().unwrap();
            let b = backend(&dir);
            fs::create_dir_all(b.dir()).unwrap();
            if which != "state" {
                let mut l = lock(&b);
                l.persist(&state_with(1, &[])).unwrap();
            }
            let path = match which {
                "state" => b.path().to_path_buf(),
                "journal" => b.journal_path(),
                _ => b.lock_path(),
            };
            let _ = fs::remove_file(&path);
            let status = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo (coreutils) is needed for this test");
            assert!(status.success());
            let (tx, rx) = std::sync::mpsc::channel();
            let b2 = b.clone();
            std::thread::spawn(move || {
                let read = b2.read_unlocked().map(|_| ()).map_err(|e| e.to_string());
                let locked = b2
                    .lock("apply", Duration::ZERO)
                    .and_then(|mut l| l.record(set("a.a", 1)))
                    .map_err(|e| e.to_string());
                let _ = tx.send((read, locked));
            });
            let (read, locked) = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("a FIFO as the {which} file hangs weir"));
            let errors: Vec<String> = [read, locked].into_iter().filter_map(Result::err).collect();
            assert!(!errors.is_empty(), "{which}: a FIFO was accepted");
            for e in &errors {
                assert!(e.contains("FIFO"), "{which}: {e}");
                assert!(e.contains(&path.display().to_string()), "{which}: {e}");
            }
        }
    }
}
