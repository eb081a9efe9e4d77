//! The state store boundary: what the engine and the commands need from wherever state lives.
//!
//! A [`StateBackend`] is where one configuration's state lives (a file, an object in Cloud
//! Storage). Every operation that may change state first takes the lock ([`StateBackend::lock`]),
//! which gives a [`StateSession`]: reads under it remember the version they read, and writes are
//! conditioned on it, so a write that would overwrite a version this session never saw is
//! refused ([`super::StateError::Conflict`]) instead of losing someone else's update.
//!
//! The lineage and serial rules ([`super::State::bump`]) are the engine's, not the store's: a
//! store keeps bytes and versions. The traits are synchronous: the local backend does file I/O
//! that is as fast as the journal's fsync, and the gcs backend runs its requests on a runtime
//! of its own ([`super::gcs`]), so the engine needs no async boundary here.

use super::{LockInfo, Recorded, State, StateError};
use std::time::Duration;

/// Where a configuration's state lives.
pub trait StateBackend: Send + Sync {
    /// Where the state is, for messages: a path, or `gs://bucket/prefix/state.json`.
    fn location(&self) -> String;

    /// Takes the state lock for `operation` (e.g. `"apply"`). With a zero `timeout`, a lock held
    /// by someone else fails at once with [`StateError::LockHeld`] naming the holder; otherwise
    /// weir retries until `timeout` has passed.
    fn lock(&self, operation: &str, timeout: Duration)
    -> Result<Box<dyn StateSession>, StateError>;

    /// The current state without taking the lock (for `state list`, `output`): a consistent
    /// version, possibly about to be replaced.
    fn read_unlocked(&self) -> Result<Option<State>, StateError>;

    /// Removes a lock left by a holder that cannot release it, when its id is `id`; returns who
    /// held it.
    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError>;
}

/// The state lock, held until dropped or [`StateSession::unlock`]ed, and the reads and writes
/// made under it.
pub trait StateSession: Send {
    /// What this lock recorded about its holder.
    fn info(&self) -> &LockInfo;

    /// The current state (`None` when there is none yet); its version is remembered for the
    /// next write.
    fn read(&mut self) -> Result<Option<State>, StateError>;

    /// Tells the session which state the records of this session apply to, before anything is
    /// done: a backend that cannot otherwise recover the state's lineage and key after a crash
    /// writes the state now if it does not exist yet.
    fn begin(&mut self, state: &State) -> Result<(), StateError>;

    /// Records finished operations on top of the state given to [`StateSession::begin`]. How
    /// soon they are durable is the backend's: at once on disk, every few seconds in a bucket.
    fn record_batch(&mut self, changes: &[Recorded]) -> Result<(), StateError>;

    /// Writes the whole state, conditioned on the version last read or written by this
    /// session. `state` is written as given: call [`State::bump`] first when it changed.
    fn persist(&mut self, state: &State) -> Result<(), StateError>;

    /// Releases the lock now, reporting a failure (dropping the session does the same but
    /// ignores errors).
    fn unlock(self: Box<Self>) -> Result<(), StateError>;

    /// The current state, given a key ([`State::key`]) when it has none: an empty state of
    /// serial 0 is created when there is no state yet, and a state without a key gets one (a
    /// change: its serial goes up). What a saved plan is sealed with and bound to.
    fn read_keyed(&mut self) -> Result<State, StateError> {
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
}

/// Names the holder, never the state (which may hold sealed secrets and their key).
impl std::fmt::Debug for dyn StateSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSession")
            .field("lock", self.info())
            .finish()
    }
}
