//! The local backend: a state file (by default `<config dir>/.weir/state.json`) plus sidecars.
//!
//! | file                  | what                                                              |
//! |-----------------------|-------------------------------------------------------------------|
//! | `<state>`             | the state document, replaced by [`StateLock::persist`]            |
//! | `<state>.journal`     | changes recorded since the last persist, one JSON line each       |
//! | `<state>.lock`        | empty; holds the OS lock (see [`super::lock`])                    |
//! | `<state>.lock.info`   | who holds the lock                                                |
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
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// A state stored in a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    path: PathBuf,
}

impl LocalBackend {
    /// A backend for the state file at `path` (conventionally `<config dir>/.weir/state.json`).
    /// Nothing is touched until the backend is used; the directory is created when missing by
    /// [`LocalBackend::lock`] (and by [`StateLock::persist`]).
    pub fn new(path: PathBuf) -> Self {
        LocalBackend { path }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<state>.journal`: changes recorded since the last persist.
    pub fn journal_path(&self) -> PathBuf {
        sibling(&self.path, ".journal")
    }

    /// `<state>.lock`: the file the OS lock is taken on.
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// `<state>.lock.info`: who holds the lock.
    pub fn lock_info_path(&self) -> PathBuf {
        sibling(&self.path, ".lock.info")
    }

    /// Reads the state (with the journal replayed) without taking the lock, for read-only
    /// commands such as `weir state list`. `None` when there is no state yet.
    pub fn read_unlocked(&self) -> Result<Option<State>, StateError> {
        read_state(&self.path, &self.journal_path())
    }

    pub(crate) fn dir(&self) -> PathBuf {
        parent_dir(&self.path)
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether the state's directory exists, refusing a symbolic link or anything but a directory
/// there: weir never reads or writes its state through a link.
pub(crate) fn check_dir(dir: &Path) -> Result<bool, StateError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(StateError::io(
            "use state directory",
            dir,
            io::Error::other(
                "it is a symbolic link, and weir never follows links in its state directory: replace it with a real directory",
            ),
        )),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(StateError::io(
            "use state directory",
            dir,
            io::Error::other("it is not a directory"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StateError::io("use state directory", dir, e)),
    }
}

/// Creates `dir` (and its parents) when missing; refuses a link or a non-directory there.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if check_dir(dir)? {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| StateError::io("create directory", dir, e))?;
    // Make the new directory entry durable (best effort: the parent may not be ours).
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// Opens a file of the state backend without following a symbolic link (`O_NOFOLLOW`) and
/// without blocking on a FIFO (`O_NONBLOCK`), and refuses anything but a regular file: a link
/// planted there must not make weir read, truncate or write another file, and a FIFO or device
/// must be an error, not a hang.
pub(crate) fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) => {
            let link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if link { symlink_error() } else { e });
        }
    };
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(file)
    } else {
        Err(io::Error::other(format!(
            "it is a {}, not a regular file",
            weir_provider_sdk::fs::describe(&meta)
        )))
    }
}

fn symlink_error() -> io::Error {
    io::Error::other(
        "it is a symbolic link, and weir never follows links in its state directory: remove the link",
    )
}

/// Refuses a path where the backend will put a file by renaming (state, lock info) when
/// something other than a regular file is there.
pub(crate) fn check_replaceable(path: &Path, action: &'static str) -> Result<(), StateError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StateError::io(action, path, symlink_error())),
        Ok(m) if !m.is_file() => Err(StateError::io(
            action,
            path,
            io::Error::other(format!(
                "it is a {}, not a regular file",
                weir_provider_sdk::fs::describe(&m)
            )),
        )),
        _ => Ok(()),
    }
}

/// fsync of a directory, so that a rename or a new file in it survives a crash.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows cannot open a directory as a file; NTFS journals metadata itself.
    Ok(())
}

/// The contents of a file of the backend, `None` when it does not exist (see [`open_regular`]).
pub(crate) fn read_optional(
    path: &Path,
    action: &'static str,
) -> Result<Option<Vec<u8>>, StateError> {
    let mut file = match open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io(action, path, e)),
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| StateError::io(action, path, e))?;
    Ok(Some(bytes))
}

/// Reads the state file with the journal replayed on top (see the module docs).
pub(crate) fn read_state(
    state_path: &Path,
    journal_path: &Path,
) -> Result<Option<State>, StateError> {
    if !check_dir(&parent_dir(state_path))? {
        return Ok(None);
    }
    // The journal first: see "Reading" in the module docs.
    let journal = read_optional(journal_path, "read state journal")?;
    let state = read_optional(state_path, "read state file")?
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
fn read_state_head(state_path: &Path) -> Result<Option<StateHead>, StateError> {
    #[derive(Deserialize)]
    struct Head {
        version: u64,
        lineage: String,
        serial: u64,
    }
    let Some(bytes) = read_optional(state_path, "read state file")? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Head>(&bytes) {
        Ok(h) if h.version == u64::from(super::STATE_VERSION) => Ok(Some(StateHead {
            lineage: h.lineage,
            serial: h.serial,
        })),
        // Anything else: the full parse gives the precise error.
        _ => State::parse(&bytes, state_path).map(|s| {
            Some(StateHead {
                lineage: s.lineage,
                serial: s.serial,
            })
        }),
    }
}

/// Writes `state` to `path` atomically: a temp file in the same directory, fsync, rename over
/// `path`, fsync of the directory. Readers see the old or the new file, never a mix.
pub(crate) fn write_state_atomic(path: &Path, state: &State) -> Result<(), StateError> {
    // Secrets still in clear (a state written by an older weir) are written as keyed digests.
    let mut sealed = None;
    if !state.key.is_empty() && state.holds_clear_secrets() {
        let mut copy = state.clone();
        copy.seal_secrets();
        sealed = Some(copy);
    }
    let state = sealed.as_ref().unwrap_or(state);
    let dir = parent_dir(path);
    ensure_dir(&dir)?;
    check_replaceable(path, "replace state file")?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_string());
    // tempfile creates the file with mode 0600: state may hold secrets.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| StateError::io("create a temporary file in", &dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        serde_json::to_writer_pretty(&mut w, state).map_err(|e| {
            if e.is_io() {
                StateError::io("write", &tmp_path, io::Error::other(e))
            } else {
                StateError::Encode {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        w.write_all(b"\n")
            .and_then(|()| w.flush())
            .map_err(|e| StateError::io("write", &tmp_path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| StateError::io("fsync", &tmp_path, e))?;
    #[cfg(test)]
    if tests::FAIL_BEFORE_RENAME.with(std::cell::Cell::take) {
        return Err(StateError::io(
            "replace state file",
            path,
            io::Error::other("injected failure"),
        ));
    }
    tmp.persist(path)
        .map_err(|e| StateError::io("replace state file", path, e.error))?;
    sync_dir(&dir).map_err(|e| StateError::io("fsync directory", &dir, e))?;
    Ok(())
}

fn open_journal(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600); // like the state file: entries may hold secrets
    }
    open_regular(path, &mut options)
}

/// The writing side of the journal, owned by a [`StateLock`].
#[derive(Debug)]
pub(crate) struct JournalWriter {
    path: PathBuf,
    state_path: PathBuf,
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
            path: backend.journal_path(),
            state_path: backend.path().to_path_buf(),
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
            let created = file.is_none() && !self.path.exists();
            let mut f = match file.take() {
                Some(f) => f,
                None => open_journal(&self.path)
                    .map_err(|e| StateError::io("open state journal", &self.path, e))?,
            };
            let mut line = serde_json::to_vec(header).expect("journal header serialises");
            line.push(b'\n');
            f.set_len(0)
                .and_then(|()| f.write_all(&line))
                .and_then(|()| f.sync_data())
                .map_err(|e| StateError::io("write state journal", &self.path, e))?;
            if created {
                let dir = parent_dir(&self.path);
                sync_dir(&dir).map_err(|e| StateError::io("fsync directory", &dir, e))?;
            }
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
        let bytes = read_optional(&self.path, "read state journal")?.unwrap_or_default();
        let head = read_state_head(&self.state_path)?;
        if let Some((header, header_end)) = scan_header(&bytes, &self.path)?
            && !is_blank(&bytes[header_end..])
            && applies(head.as_ref(), &header, &self.path, &self.state_path)?
        {
            let (_, valid_len) = scan_entries(&bytes, header_end, &self.path)?;
            let file = open_journal(&self.path)
                .map_err(|e| StateError::io("open state journal", &self.path, e))?;
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
            Mode::Pending { file: None, .. } | Mode::Unknown => {
                match open_regular(&self.path, OpenOptions::new().write(true)) {
                    Ok(f) => Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(StateError::io("open state journal", &self.path, e)),
                }
            }
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
mod tests {
    use super::super::lock::StateLock;
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn backend(dir: &tempfile::TempDir) -> LocalBackend {
        LocalBackend::new(dir.path().join(".weir").join("state.json"))
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
        let b = LocalBackend::new(PathBuf::from("/c/.weir/state.json"));
        assert_eq!(b.journal_path(), Path::new("/c/.weir/state.json.journal"));
        assert_eq!(b.lock_path(), Path::new("/c/.weir/state.json.lock"));
        assert_eq!(
            b.lock_info_path(),
            Path::new("/c/.weir/state.json.lock.info")
        );
        assert_eq!(LocalBackend::new("state.json".into()).dir(), Path::new("."));
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
        let names: Vec<String> = fs::read_dir(b.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "temp files left: {names:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(b.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "state file is private: {mode:o}");
        }
    }

    thread_local! {
        /// Makes the next [`write_state_atomic`] on this thread fail after writing and fsyncing
        /// the temporary file, just before the rename (a full disk, an I/O error): a failure no
        /// file permission can simulate when the tests run as root.
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
        let names: Vec<String> = fs::read_dir(b.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "the temporary file is removed: {names:?}"
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
        write_state_atomic(b.path(), &fresh).unwrap(); // rename happened, truncate did not
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
        write_state_atomic(b.path(), &s).unwrap();
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
