//! Locking the local state, and the operations allowed while holding the lock.
//!
//! The lock is an OS file lock (`File::try_lock`: `flock` on Linux, `LockFileEx` on Windows) on
//! `<state>.lock`, a separate file because state writes replace the state file by rename. The OS
//! releases it when the process dies, so a killed weir never leaves a stuck lock: the next run
//! simply overwrites the stale `<state>.lock.info`. That info file (JSON [`LockInfo`]) names the
//! holder, so that a refused lock can say who holds it.
//!
//! The lock is per open file, not per process: a second [`LocalBackend::lock`] in the same
//! process conflicts with the first, as another process would.
//!
//! `<state>.lock` itself is never deleted: deleting it while another process waits on the old
//! file would let two processes each hold "the" lock.

use super::local::{
    JournalWriter, LocalBackend, Recorded, fs_error, read_state, write_state_atomic,
};
use super::store::{StateBackend, StateSession};
use super::{State, StateError, WEIR_VERSION};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, TryLockError};
use std::time::{Duration, Instant};
use weir_provider_sdk::fs::{MODE_PRIVATE, MODE_PUBLIC};

/// How often a waiting [`LocalBackend::lock`] retries.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Who holds a lock: the content of `<state>.lock.info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A UUID v4, unique per acquisition.
    pub id: String,
    /// The command holding the lock, e.g. `"apply"`.
    pub operation: String,
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// When the lock was taken (RFC 3339, UTC).
    pub created: String,
    /// The weir version holding the lock.
    pub version: String,
    /// The CI run holding the lock, when the usual CI variables name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
    /// Until when the lock is held unless its holder renews it (RFC 3339, UTC): a leased lock
    /// (gcs). A local lock has none: the OS releases it when its holder dies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl LockInfo {
    pub(crate) fn new(operation: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            who: who(),
            pid: std::process::id(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            version: WEIR_VERSION.to_string(),
            ci_run: None,
            expires: None,
        }
    }

    /// The holder, as error messages name it.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} (pid {}, running `weir {}`, since {}, weir {}, lock id {}",
            self.who, self.pid, self.operation, self.created, self.version, self.id
        );
        if let Some(run) = &self.ci_run {
            text.push_str(&format!(", CI run {run}"));
        }
        if let Some(expires) = &self.expires {
            text.push_str(&format!(", lease until {expires}"));
        }
        text.push(')');
        text
    }
}

/// `user@host`, from the environment and the kernel (no libc needed).
fn who() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        })
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{host}")
}

impl LocalBackend {
    /// Takes the state lock for `operation` (e.g. `"apply"`), creating the state's directory
    /// when missing.
    ///
    /// When another process (or another `StateLock` in this process) holds it: with a zero
    /// `timeout`, fails at once with [`StateError::LockHeld`], naming the holder and
    /// `--lock-timeout`; otherwise retries every 200 ms until `timeout` has passed. Blocks the
    /// calling thread while waiting (from async code, call it via `spawn_blocking`).
    pub fn lock(&self, operation: &str, timeout: Duration) -> Result<StateLock, StateError> {
        let lock_path = self.lock_path();
        let file = self
            .open_file(&self.lock_file(), MODE_PUBLIC, true, "open lock file")?
            .ok_or_else(|| {
                StateError::io(
                    "open lock file",
                    &lock_path,
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(StateError::LockHeld {
                            location: self.path().display().to_string(),
                            info_location: self.lock_info_path().display().to_string(),
                            holder: self.lock_holder().map(Box::new),
                            waited: if timeout.is_zero() {
                                Duration::ZERO
                            } else {
                                waited
                            },
                        });
                    }
                    std::thread::sleep(RETRY_EVERY.min(timeout - waited));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(StateError::io("lock", &lock_path, e));
                }
            }
        }
        // Only the lock holder writes temporary files here: any left now are a killed weir's
        // (a full copy of the state, secrets included). Best effort: one that cannot be
        // removed stays.
        let _ = self.root().remove_stale_temps([self.dir_key().as_str()]);
        let info = LockInfo::new(operation);
        // On error `file` is dropped here, which releases the OS lock.
        self.write_lock_info(&info)?;
        Ok(StateLock {
            journal: JournalWriter::new(self),
            backend: self.clone(),
            file,
            info,
            released: false,
        })
    }

    /// Who holds (or last held) the lock, from `<state>.lock.info`; `None` when the file is
    /// missing or unreadable. A stale file may remain after a killed weir: it only means
    /// something while the lock is actually held.
    pub fn lock_holder(&self) -> Option<LockInfo> {
        let bytes = self
            .read_file(&self.lock_info(), "read lock info file")
            .ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the info file atomically (a waiting process may read it at any moment).
    fn write_lock_info(&self, info: &LockInfo) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(info).map_err(|e| {
            StateError::io(
                "write lock info file",
                &self.lock_info_path(),
                std::io::Error::other(e),
            )
        })?;
        self.root()
            .write_atomic(&self.lock_info(), &json, MODE_PRIVATE, &mut Vec::new())
            .map_err(|err| fs_error("write lock info file", &self.lock_info_path(), err))
    }
}

/// The state lock, held until dropped (or [`StateLock::unlock`]). All reads and writes of an
/// operation that changes state go through it.
#[derive(Debug)]
pub struct StateLock {
    backend: LocalBackend,
    file: File,
    info: LockInfo,
    journal: JournalWriter,
    released: bool,
}

impl StateLock {
    /// What this lock recorded in `<state>.lock.info`.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The backend this lock belongs to.
    pub fn backend(&self) -> &LocalBackend {
        &self.backend
    }

    /// The current state: the state file with the journal replayed on top (its serial one
    /// higher than the file's when the journal held entries). `None` when there is no state yet.
    pub fn read(&self) -> Result<Option<State>, StateError> {
        read_state(&self.backend)
    }

    /// The current state, given a key ([`State::key`]) when it has none: an empty state of
    /// serial 0 is created when there is no state yet, and a state without a key gets one (a
    /// change: its serial goes up). What a saved plan is sealed with and bound to.
    pub fn read_keyed(&mut self) -> Result<State, StateError> {
        let Some(mut state) = self.read()? else {
            let state = State::new();
            self.persist(&state)?;
            return Ok(state);
        };
        if state.ensure_key() {
            state.bump();
            self.persist(&state)?;
        }
        Ok(state)
    }

    /// Records one finished operation durably: appends a line to the journal and fsyncs it
    /// (O(1), whatever the size of the state). The in-memory state is the caller's to update
    /// (e.g. with [`State::apply_change`]).
    ///
    /// The first record of a session validates the journal against the state file (the same
    /// checks as [`StateLock::read`]) and continues a crashed run's journal if there is one.
    /// If a record fails, the entry may or may not be on disk; later records still work.
    pub fn record(&mut self, change: Recorded) -> Result<(), StateError> {
        self.journal.record(std::slice::from_ref(&change))
    }

    /// Tells the lock which state the records of this session apply to, so that a journal
    /// begun before a new state is first persisted recovers with its lineage and key.
    pub fn begin(&mut self, state: &State) {
        self.journal.new_lineage = Some(state.lineage.clone());
        self.journal.new_key = Some(state.key.clone()).filter(|k| !k.is_empty());
    }

    /// Like [`StateLock::record`] for several changes at once, with a single fsync (group
    /// commit: e.g. every operation that finished while the previous fsync ran). An empty
    /// batch writes nothing.
    pub fn record_batch(&mut self, changes: &[Recorded]) -> Result<(), StateError> {
        self.journal.record(changes)
    }

    /// Writes the whole state atomically (temp file in the same directory, write, fsync, rename,
    /// fsync of the directory), then empties the journal. `state` is written as given: call
    /// [`State::bump`] first when it changed. Records after a persist start a new journal on
    /// top of this state.
    pub fn persist(&mut self, state: &State) -> Result<(), StateError> {
        write_state_atomic(&self.backend, state)?;
        self.journal.reset(state)
    }

    /// Releases the lock now, reporting a failure to remove the info file (dropping the lock
    /// does the same but ignores errors).
    pub fn unlock(mut self) -> Result<(), StateError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), StateError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        // Remove the info file while still holding the lock, so it never names a later holder.
        let removed = self
            .backend
            .root()
            .remove_file(&self.backend.lock_info())
            .map_err(|err| fs_error("remove lock info file", &self.backend.lock_info_path(), err));
        let unlocked = self
            .file
            .unlock()
            .map_err(|e| StateError::io("unlock", &self.backend.lock_path(), e));
        removed.and(unlocked)
    }
}

impl StateBackend for LocalBackend {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
    ) -> Result<Box<dyn StateSession>, StateError> {
        LocalBackend::lock(self, operation, timeout).map(|l| Box::new(l) as Box<dyn StateSession>)
    }

    fn read_unlocked(&self) -> Result<Option<State>, StateError> {
        LocalBackend::read_unlocked(self)
    }

    fn force_unlock(&self, _id: &str) -> Result<LockInfo, StateError> {
        Err(StateError::ForceUnlock {
            location: self.location(),
            message: "the local backend's lock is an operating system lock, released when its \
                      holder exits or is killed: there is nothing to force-unlock"
                .into(),
        })
    }
}

impl StateSession for StateLock {
    fn info(&self) -> &LockInfo {
        StateLock::info(self)
    }

    fn read(&mut self) -> Result<Option<State>, StateError> {
        StateLock::read(self)
    }

    fn begin(&mut self, state: &State) -> Result<(), StateError> {
        // The journal records the lineage and key itself.
        StateLock::begin(self, state);
        Ok(())
    }

    fn record_batch(&mut self, changes: &[Recorded]) -> Result<(), StateError> {
        StateLock::record_batch(self, changes)
    }

    fn persist(&mut self, state: &State) -> Result<(), StateError> {
        StateLock::persist(self, state)
    }

    fn unlock(self: Box<Self>) -> Result<(), StateError> {
        StateLock::unlock(*self)
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::state::local::tests::backend;

    #[test]
    fn lock_writes_and_removes_info() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let l = b.lock("apply", Duration::ZERO).unwrap();
        let info = b.lock_holder().unwrap();
        assert_eq!(&info, l.info());
        assert_eq!(info.operation, "apply");
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.version, WEIR_VERSION);
        assert!(info.who.contains('@'), "{}", info.who);
        assert!(
            chrono::DateTime::parse_from_rfc3339(&info.created).is_ok(),
            "{}",
            info.created
        );
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(b.lock_info_path()).unwrap()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["id", "operation", "who", "pid", "created", "version"]
        );
        drop(l);
        assert!(!b.lock_info_path().exists(), "info file removed on drop");
        assert!(b.lock_path().exists(), "the lock file itself stays");
        // Explicit unlock, then relock.
        let l = b.lock("plan", Duration::ZERO).unwrap();
        l.unlock().unwrap();
        assert!(!b.lock_info_path().exists());
        b.lock("plan", Duration::ZERO).unwrap();
    }

    #[test]
    fn held_lock_fails_at_once_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let held = b.lock("apply", Duration::ZERO).unwrap();
        // A second handle in the same process conflicts (flock is per open file description).
        let other = backend(&dir);
        let t = Instant::now();
        let err = other.lock("plan", Duration::ZERO).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "zero timeout does not wait"
        );
        let msg = err.to_string();
        eprintln!("{msg}");
        match &err {
            StateError::LockHeld { holder, waited, .. } => {
                assert_eq!(holder.as_deref(), Some(held.info()));
                assert_eq!(*waited, Duration::ZERO);
            }
            e => panic!("{e:?}"),
        }
        let info = held.info();
        for part in [
            &info.who,
            &format!("pid {}", info.pid),
            "apply",
            &info.created,
            "--lock-timeout",
            &b.path().display().to_string(),
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg}");
        }
        // The holder's info file is untouched by the failed attempt.
        assert_eq!(b.lock_holder().as_ref(), Some(held.info()));
        drop(held);
        other.lock("plan", Duration::ZERO).unwrap();
    }

    #[test]
    fn lock_with_timeout_waits_for_release() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let held = b.lock("apply", Duration::ZERO).unwrap();
        let t = Instant::now();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            drop(held);
        });
        let l = b.lock("plan", Duration::from_secs(10)).unwrap();
        let waited = t.elapsed();
        releaser.join().unwrap();
        assert!(waited >= Duration::from_millis(450), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert_eq!(b.lock_holder().as_ref(), Some(l.info()));
        assert_eq!(l.info().operation, "plan");
    }

    #[test]
    fn lock_timeout_expires() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        let _held = b.lock("apply", Duration::ZERO).unwrap();
        let t = Instant::now();
        let err = b.lock("plan", Duration::from_millis(500)).unwrap_err();
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_millis(1500), "{waited:?}");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains("gave up after waiting") && msg.contains("--lock-timeout"),
            "{msg}"
        );
    }

    #[test]
    fn stale_info_file_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        fs::create_dir_all(b.dir()).unwrap();
        fs::write(
            b.lock_info_path(),
            r#"{"id":"dead","operation":"apply","who":"ghost@box","pid":1,"created":"2020-01-01T00:00:00Z","version":"0.0.1"}"#,
        )
        .unwrap();
        let l = b.lock("apply", Duration::ZERO).unwrap();
        assert_eq!(b.lock_holder().as_ref(), Some(l.info()));
        assert_ne!(l.info().id, "dead");
    }

    /// Another process holds the lock with util-linux `flock` (same `flock(2)` lock as std on
    /// Linux); killing it releases the lock, as a killed weir would.
    #[cfg(target_os = "linux")]
    #[test]
    fn lock_across_processes() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        if Command::new("flock").arg("--version").output().is_err() {
            eprintln!("flock(1) not available: skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        fs::create_dir_all(b.dir()).unwrap();
        let lock_path: PathBuf = b.lock_path();
        // The shell takes the lock on fd 9 and then *becomes* sleep, so killing the child's pid
        // kills the only process holding the file.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>>"$1"; flock -n 9 || exit 3; echo locked; exec sleep 30"#)
            .arg("sh")
            .arg(&lock_path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");

        let err = b.lock("apply", Duration::ZERO).unwrap_err();
        match &err {
            // flock(1) writes no info file.
            StateError::LockHeld { holder: None, .. } => {}
            e => panic!("{e:?}"),
        }
        assert!(err.to_string().contains("another process"), "{err}");

        let err = b.lock("apply", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, StateError::LockHeld { .. }));

        let pid = child.id();
        let t = Instant::now();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        });
        let l = b.lock("apply", Duration::from_secs(10)).unwrap();
        killer.join().unwrap();
        let _ = child.wait();
        assert!(t.elapsed() >= Duration::from_millis(350));
        assert_eq!(b.lock_holder().as_ref(), Some(l.info()));

        // And the other way round: while we hold it, flock -n in another process fails.
        let status = Command::new("flock")
            .arg("-n")
            .arg(&lock_path)
            .arg("true")
            .status()
            .unwrap();
        assert!(!status.success(), "flock(1) got a lock we hold");
        drop(l);
        let status = Command::new("flock")
            .arg("-n")
            .arg(&lock_path)
            .arg("true")
            .status()
            .unwrap();
        assert!(status.success(), "lock not released on drop");
    }

    /// A weir killed while writing the state leaves its temporary file (a full copy of the
    /// state); the next lock removes it, and nothing else.
    #[test]
    fn leftover_temporary_files_are_removed_at_the_next_lock() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(&dir);
        fs::create_dir_all(b.dir()).unwrap();
        let leftovers = [".weir-tmp-0123abcd", ".weir-tmp-4567ef01"];
        for name in leftovers {
            fs::write(b.dir().join(name), "{\"secret\": 1}").unwrap();
        }
        let kept = ["state.json.tmp", "weir-tmp-x", ".state.json.notes"];
        for name in kept {
            fs::write(b.dir().join(name), "mine").unwrap();
        }
        // Only in the state's directory.
        fs::write(dir.path().join(".weir-tmp-elsewhere"), "mine").unwrap();
        #[cfg(unix)]
        {
            let target = dir.path().join("target.txt");
            fs::write(&target, "x").unwrap();
            std::os::unix::fs::symlink(&target, b.dir().join(".weir-tmp-link")).unwrap();
        }
        let _l = b.lock("apply", Duration::ZERO).unwrap();
        for name in leftovers {
            assert!(!b.dir().join(name).exists(), "{name} left behind");
        }
        for name in kept {
            assert!(b.dir().join(name).exists(), "{name} removed");
        }
        assert!(dir.path().join(".weir-tmp-elsewhere").exists());
        #[cfg(unix)]
        assert!(
            fs::symlink_metadata(b.dir().join(".weir-tmp-link")).is_ok(),
            "a link is not ours to remove"
        );
    }
}
