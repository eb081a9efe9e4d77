//! The `gcs` backend: state as one object in a Cloud Storage bucket, locked by a second object
//! with a lease.
//!
//! - `<prefix>/state.json` holds the state document. Every write is a multipart upload
//!   conditioned on the generation this session read (`ifGenerationMatch`; 0 when there was no
//!   object), so a write made by anyone else in between is detected and reported
//!   ([`StateError::Conflict`]), never overwritten.
//! - `<prefix>/state.lock` is the lock: created with `ifGenerationMatch=0` (exactly one of two
//!   contenders wins), holding a [`LockInfo`] with a lease (`expires`). The holder renews the
//!   lease from a background thread every third of its length, each renewal conditioned on the
//!   lock's generation; release deletes it conditioned the same way. A lock whose lease has
//!   expired (its holder was killed, or lost its connection) is taken over by a conditional
//!   write on its generation, saying whose it was; `weir force-unlock ID` removes one by hand.
//! - During an apply, finished operations are applied to a copy of the state in memory, which
//!   is written once [`FLUSH_EVERY`] has passed since the previous write (by the next finished
//!   operation or by the background thread, whichever comes first), and the whole state at the
//!   end: not one upload per resource.
//!
//! Requests use the Cloud Storage JSON API over reqwest, authenticated with Application Default
//! Credentials as the Google provider is, or sent without credentials to `STORAGE_EMULATOR_HOST`
//! when it is set. They run on a small runtime of this backend's own, so the engine calls the
//! backend synchronously from wherever it is.

use super::store::{StateBackend, StateSession};
use super::{LockInfo, Recorded, State, StateError};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The environment variable setting the lock's lease (a duration such as `60s` or `5m`).
pub const LEASE_VAR: &str = "WEIR_STATE_LOCK_LEASE";
/// The lease when [`LEASE_VAR`] is unset: long enough that a slow renewal never loses the lock,
/// short enough that a killed CI job does not hold up the next one for long.
const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How often the progress of an apply is written, at most.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// How often a waiting lock retries.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How long one request may take in all (a large state takes a while to upload).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a request may wait for the connection or for the next bytes of its answer: well
/// under the default lease, so that a renewal stuck on the network is tried again in time.
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times a request is sent at most (see [`Client::send`]).
const ATTEMPTS: u32 = 4;
/// Where Cloud Storage is when no emulator is named.
const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";

type Headers = Box<
    dyn Fn() -> Pin<
            Box<dyn Future<Output = Result<HeaderMap, weir_provider_sdk::ProviderError>> + Send>,
        > + Send
        + Sync,
>;

/// The state of one configuration in a bucket.
pub struct GcsBackend {
    client: Arc<Client>,
    state_name: String,
    lock_name: String,
    lease: Duration,
}

impl std::fmt::Debug for GcsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsBackend")
            .field("base", &self.client.base)
            .field("bucket", &self.client.bucket)
            .field("state", &self.state_name)
            .field("lease", &self.lease)
            .finish()
    }
}

impl GcsBackend {
    /// The backend of `backend "gcs" { bucket, prefix }`, reading the environment through
    /// `env`: `STORAGE_EMULATOR_HOST`, the places of Application Default Credentials, and
    /// [`LEASE_VAR`]. Nothing is sent before the first read or lock.
    pub fn open(
        bucket: &str,
        prefix: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GcsBackend, String> {
        let lease = match env(LEASE_VAR).filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_LEASE,
            Some(text) => match crate::model::values::parse_duration(text.trim()) {
                Ok(secs) if secs >= 1 => Duration::from_secs(secs),
                Ok(_) => return Err(format!("{LEASE_VAR}: the lease must be at least 1s")),
                Err(e) => return Err(format!("{LEASE_VAR}: {e}")),
            },
        };
        let client = Client::open(bucket, env)?;
        let prefix = prefix.trim_matches('/');
        let name = |leaf: &str| match prefix {
            "" => leaf.to_string(),
            p => format!("{p}/{leaf}"),
        };
        Ok(GcsBackend {
            client: Arc::new(client),
            state_name: name("state.json"),
            lock_name: name("state.lock"),
            lease,
        })
    }

    /// How long a lock lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn read_state(&self) -> Result<(Option<State>, u64), StateError> {
        match self.client.get(&self.state_name, "read state object")? {
            None => Ok((None, 0)),
            Some((bytes, generation)) => {
                let location = self.client.location(&self.state_name);
                let state = State::parse_at(&bytes, &location)?;
                Ok((Some(state), generation))
            }
        }
    }

    /// The lock object's holder and generation, `None` when unlocked. A lock object that is
    /// not a [`LockInfo`] is reported as held by an unknown holder.
    fn read_lock(&self) -> Result<Option<(Option<LockInfo>, u64)>, StateError> {
        Ok(self
            .client
            .get(&self.lock_name, "read lock object")?
            .map(|(bytes, generation)| (serde_json::from_slice(&bytes).ok(), generation)))
    }

    fn new_info(&self, operation: &str) -> LockInfo {
        let mut info = LockInfo::new(operation);
        info.ci_run = ci_run(&|name| std::env::var(name).ok());
        info.expires = Some(expiry(self.lease));
        info
    }
}

/// Until when a lease taken now lasts.
fn expiry(lease: Duration) -> String {
    let until = chrono::Utc::now()
        + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
    until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether `info`'s lease has run out by this machine's clock. A lock without a lease, or with
/// an unreadable one, never expires (`weir force-unlock` removes it).
fn expired(info: &LockInfo) -> bool {
    info.expires
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_some_and(|until| until < chrono::Utc::now())
}

/// The CI run this process belongs to, from the variables the usual CI systems set.
pub fn ci_run(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    [
        "CI_JOB_URL",
        "BUILDKITE_BUILD_URL",
        "CIRCLE_BUILD_URL",
        "BUILD_URL",
    ]
    .iter()
    .find_map(|name| var(name))
}

impl StateBackend for GcsBackend {
    fn location(&self) -> String {
        self.client.location(&self.state_name)
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
    ) -> Result<Box<dyn StateSession>, StateError> {
        let start = Instant::now();
        let info = self.new_info(operation);
        let body = json_body(&info, &self.lock_name)?;
        loop {
            // Create it if there is none: exactly one of two contenders gets generation 1.
            if let Put::Written(generation) =
                self.client
                    .put(&self.lock_name, &body, 0, "create lock object")?
            {
                return Ok(Box::new(GcsSession::start(self, info, generation)));
            }
            match self.read_lock()? {
                // Released in between: try again at once.
                None => continue,
                // Our own create or takeover, applied although its answer was lost.
                Some((Some(holder), generation)) if holder.id == info.id => {
                    return Ok(Box::new(GcsSession::start(self, info, generation)));
                }
                Some((Some(holder), generation)) if expired(&holder) => {
                    let put = self.client.put(
                        &self.lock_name,
                        &body,
                        generation,
                        "take over lock object",
                    )?;
                    if let Put::Written(generation) = put {
                        eprintln!(
                            "weir: the lock on {} was held by {}, whose lease expired (it \
                             stopped renewing it: killed, or cut off); took it over",
                            self.location(),
                            holder.describe()
                        );
                        return Ok(Box::new(GcsSession::start(self, info, generation)));
                    }
                    // Someone else took it over first: it is held again.
                }
                Some((holder, _)) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(StateError::LockHeld {
                            location: self.location(),
                            info_location: self.client.location(&self.lock_name),
                            holder: holder.map(Box::new),
                            waited: if timeout.is_zero() {
                                Duration::ZERO
                            } else {
                                waited
                            },
                        });
                    }
                    std::thread::sleep(RETRY_EVERY.min(timeout - waited));
                }
            }
        }
    }

    fn read_unlocked(&self) -> Result<Option<State>, StateError> {
        self.read_state().map(|(state, _)| state)
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        let refuse = |message: String| StateError::ForceUnlock {
            location: self.location(),
            message,
        };
        match self.read_lock()? {
            None => Err(refuse("it is not locked".into())),
            Some((None, _)) => Err(refuse(format!(
                "the lock object {} is not a weir lock; remove it with gcloud storage rm if \
                 no weir is running",
                self.client.location(&self.lock_name)
            ))),
            Some((Some(holder), _)) if holder.id != id => Err(refuse(format!(
                "it is locked by {}, not by lock id {id}",
                holder.describe()
            ))),
            Some((Some(holder), generation)) => {
                if self
                    .client
                    .delete(&self.lock_name, generation, "remove lock object")?
                {
                    Ok(holder)
                } else {
                    Err(refuse(
                        "the lock changed while it was being removed; look again".into(),
                    ))
                }
            }
        }
    }
}

/// `value` as the JSON body of the object at `location`.
pub(crate) fn json_body<T: serde::Serialize>(
    value: &T,
    location: &str,
) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec_pretty(value).map_err(|source| StateError::Encode {
        path: location.into(),
        source,
    })
}

/// The lock on a gcs state, and the reads and writes made under it.
pub struct GcsSession {
    writer: StateWriter,
    lock_name: String,
    info: LockInfo,
    /// The lock object's generation, which the renewals move on.
    lock_generation: Arc<Mutex<u64>>,
    /// What this thread and the background thread share about the state object.
    progress: Arc<Mutex<Progress>>,
    /// The thread that renews the lease and writes progress, and how to stop it.
    background: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    released: bool,
}

/// The state object as this session knows it.
struct Progress {
    /// Its generation as last read or written (0: there was none; `None`: not read yet).
    generation: Option<u64>,
    /// The state of [`StateSession::begin`] with this session's records applied.
    pending: Option<State>,
    /// Whether `pending` holds records not yet written.
    dirty: bool,
    last_write: Instant,
}

/// Writes the state object for one session, from its thread or its background thread.
#[derive(Clone)]
struct StateWriter {
    client: Arc<Client>,
    name: String,
    /// Why the lock was lost, once a renewal found it taken over: nothing is written after.
    lost: Arc<Mutex<Option<String>>>,
}

/// The data behind `mutex`, even if a thread panicked while holding it (every update of the
/// data it guards is a single assignment).
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl StateWriter {
    fn location(&self) -> String {
        self.client.location(&self.name)
    }

    fn check_lost(&self) -> Result<(), StateError> {
        match locked(&self.lost).clone() {
            Some(message) => Err(StateError::LockLost {
                location: self.location(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// Writes `state` conditioned on the generation last seen.
    fn write(&self, progress: &mut Progress, state: &State) -> Result<(), StateError> {
        self.check_lost()?;
        let sealed = state.sealed();
        let body = sealed.to_json();
        let read = progress.generation.unwrap_or(0);
        let put = self
            .client
            .put(&self.name, body.as_bytes(), read, "write state object")?;
        let now = match put {
            Put::Written(generation) => {
                progress.generation = Some(generation);
                progress.last_write = Instant::now();
                return Ok(());
            }
            Put::PreconditionFailed => match self.client.get(&self.name, "read state object") {
                // This very write, applied although its answer was lost (then repeated).
                Ok(Some((bytes, generation))) if bytes == body.as_bytes() => {
                    progress.generation = Some(generation);
                    progress.last_write = Instant::now();
                    return Ok(());
                }
                Ok(Some((bytes, generation))) => {
                    match serde_json::from_slice::<serde_json::Value>(&bytes) {
                        Ok(v) => format!(
                            "generation {generation}, serial {}",
                            v["serial"].as_u64().map_or("?".into(), |s| s.to_string())
                        ),
                        Err(_) => format!("generation {generation}"),
                    }
                }
                Ok(None) => "deleted".into(),
                Err(_) => "unreadable".into(),
            },
        };
        let then = match read {
            0 => "absent".to_string(),
            g => format!("generation {g}"),
        };
        Err(StateError::Conflict {
            location: self.location(),
            detail: format!("it was {then} when read, it is now {now}"),
        })
    }

    /// Writes the records not yet written.
    fn flush(&self, progress: &mut Progress) -> Result<(), StateError> {
        let Some(pending) = &progress.pending else {
            return Ok(());
        };
        // The records of a session make one new serial, as the engine's final write will.
        let mut state = pending.clone();
        state.bump();
        self.write(progress, &state)?;
        progress.dirty = false;
        Ok(())
    }
}

/// Renews the lease of the lock described by `info` (its `expires` moved on); `false` when the
/// lock is no longer ours (or, never in practice, its description cannot be encoded: the lease
/// then runs out, which is safe).
fn renew(
    client: &Client,
    name: &str,
    info: &mut LockInfo,
    lease: Duration,
    generation: &Mutex<u64>,
) -> bool {
    info.expires = Some(expiry(lease));
    let current = *locked(generation);
    let Ok(body) = json_body(info, name) else {
        return false;
    };
    match client.put(name, &body, current, "renew lock object") {
        Ok(Put::Written(next)) => *locked(generation) = next,
        // This very renewal, applied although its answer was lost.
        Ok(Put::PreconditionFailed)
            if let Ok(Some((bytes, next))) = client.get(name, "read lock object")
                && serde_json::from_slice::<LockInfo>(&bytes).is_ok_and(|now| now == *info) =>
        {
            *locked(generation) = next
        }
        Ok(Put::PreconditionFailed) => return false,
        // Transient: the lease outlasts the next two attempts.
        Err(_) => {}
    }
    true
}

impl GcsSession {
    fn start(backend: &GcsBackend, info: LockInfo, generation: u64) -> GcsSession {
        let lock_generation = Arc::new(Mutex::new(generation));
        let writer = StateWriter {
            client: backend.client.clone(),
            name: backend.state_name.clone(),
            lost: Arc::new(Mutex::new(None)),
        };
        let progress = Arc::new(Mutex::new(Progress {
            generation: None,
            pending: None,
            dirty: false,
            last_write: Instant::now(),
        }));
        let (stop, stopped) = mpsc::channel::<()>();
        let background = {
            let writer = writer.clone();
            let name = backend.lock_name.clone();
            let lease = backend.lease;
            let generation = lock_generation.clone();
            let progress = progress.clone();
            let mut info = info.clone();
            let tick = FLUSH_EVERY.min(lease / 3);
            std::thread::Builder::new()
                .name("weir-lock-renewal".into())
                .spawn(move || {
                    let mut renew_at = Instant::now() + lease / 3;
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                        if Instant::now() >= renew_at {
                            renew_at = Instant::now() + lease / 3;
                            if !renew(&writer.client, &name, &mut info, lease, &generation) {
                                *locked(&writer.lost) = Some(
                                    "another weir took it over (this one's lease had expired)"
                                        .into(),
                                );
                                return;
                            }
                        }
                        // Progress finished a while ago and not written since: write it now,
                        // not only when the next operation finishes.
                        let mut progress = locked(&progress);
                        if progress.dirty
                            && progress.last_write.elapsed() >= FLUSH_EVERY
                            && let Err(StateError::Conflict { .. }) = writer.flush(&mut progress)
                        {
                            // Reported by the session's next write, which fails the same.
                            progress.dirty = false;
                        }
                    }
                })
                .ok()
                .map(|handle| (stop, handle))
        };
        GcsSession {
            writer,
            lock_name: backend.lock_name.clone(),
            info,
            lock_generation,
            progress,
            background,
            released: false,
        }
    }

    fn location(&self) -> String {
        self.writer.location()
    }

    fn check_lost(&self) -> Result<(), StateError> {
        if self.background.is_none() && !self.released {
            return Err(StateError::LockLost {
                location: self.location(),
                message: "the thread that renews its lease could not be started".into(),
            });
        }
        self.writer.check_lost()
    }

    fn release(&mut self) -> Result<(), StateError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        if let Some((stop, handle)) = self.background.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        if locked(&self.writer.lost).is_some() {
            // Not ours any more: the new holder's lock must stay.
            return Ok(());
        }
        // Progress not yet written (the engine writes at the end; this is for an early exit).
        let flushed = {
            let mut progress = locked(&self.progress);
            match progress.dirty {
                true => self.writer.flush(&mut progress),
                false => Ok(()),
            }
        };
        let generation = *locked(&self.lock_generation);
        let removed =
            match self
                .writer
                .client
                .delete(&self.lock_name, generation, "remove lock object")?
            {
                true => Ok(()),
                false => Err(StateError::LockLost {
                    location: self.location(),
                    message: "another weir took it over before this one released it".into(),
                }),
            };
        flushed.and(removed)
    }
}

impl StateSession for GcsSession {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn read(&mut self) -> Result<Option<State>, StateError> {
        self.check_lost()?;
        let client = &self.writer.client;
        let (state, generation) = match client.get(&self.writer.name, "read state object")? {
            None => (None, 0),
            Some((bytes, generation)) => {
                (Some(State::parse_at(&bytes, &self.location())?), generation)
            }
        };
        locked(&self.progress).generation = Some(generation);
        Ok(state)
    }

    fn begin(&mut self, state: &State) -> Result<(), StateError> {
        self.check_lost()?;
        let mut progress = locked(&self.progress);
        // What the providers create is marked with the state's lineage: if this weir dies before
        // its first progress write, the next must find that lineage (and the key) in the bucket.
        if progress.generation.unwrap_or(0) == 0 {
            self.writer.write(&mut progress, state)?;
        }
        progress.pending = Some(state.clone());
        progress.dirty = false;
        progress.last_write = Instant::now();
        Ok(())
    }

    fn record_batch(&mut self, changes: &[Recorded]) -> Result<(), StateError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.check_lost()?;
        let mut progress = locked(&self.progress);
        let Some(pending) = &mut progress.pending else {
            return Err(StateError::Remote {
                action: "record progress in",
                location: self.location(),
                message: "no state to record on (internal error: begin was not called)".into(),
            });
        };
        for change in changes {
            pending.apply_change(change);
        }
        progress.dirty = true;
        if progress.last_write.elapsed() >= FLUSH_EVERY {
            self.writer.flush(&mut progress)?;
        }
        Ok(())
    }

    fn persist(&mut self, state: &State) -> Result<(), StateError> {
        self.check_lost()?;
        let mut progress = locked(&self.progress);
        self.writer.write(&mut progress, state)?;
        if progress.pending.is_some() {
            progress.pending = Some(state.clone());
        }
        progress.dirty = false;
        Ok(())
    }

    fn unlock(mut self: Box<Self>) -> Result<(), StateError> {
        self.release()
    }
}

impl Drop for GcsSession {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// What a conditional upload did.
pub(crate) enum Put {
    /// Written; the object's new generation.
    Written(u64),
    /// The object's generation was not the one required (412).
    PreconditionFailed,
}

/// The few Cloud Storage JSON API calls the backend (and code releases) make.
pub(crate) struct Client {
    /// `https://storage.googleapis.com`, or the emulator's base URL.
    base: String,
    bucket: String,
    http: reqwest::Client,
    /// `None` for an emulator.
    auth: Option<Headers>,
    /// The runtime the requests run on, and what shuts it down with the client.
    handle: tokio::runtime::Handle,
    _rt: OwnRuntime,
    /// How many requests were sent (each attempt counts).
    requests: std::sync::atomic::AtomicUsize,
}

/// A runtime that is shut down in the background when dropped: dropping a runtime blocks,
/// which is not allowed inside another runtime (the client may be dropped in one).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Client {
    /// A client of `bucket`, reading the environment through `env`: `STORAGE_EMULATOR_HOST`
    /// and the places of Application Default Credentials. Nothing is sent yet.
    pub(crate) fn open(
        bucket: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Client, String> {
        let (credentials, endpoints) = crate::providers::google_access(env)?;
        Client::with_access(bucket, credentials, endpoints)
    }

    /// A client of `bucket` with these credentials, at Cloud Storage or at the emulator that
    /// `endpoints.storage` names.
    pub(crate) fn with_access(
        bucket: &str,
        credentials: weir_provider_sdk::CredentialsSource,
        endpoints: weir_provider_sdk::Endpoints,
    ) -> Result<Client, String> {
        // Also installs the TLS crypto provider that reqwest is built to use.
        let tokens = weir_provider_google::adc_headers(credentials);
        let (base, auth): (String, Option<Headers>) = match endpoints.storage {
            Some(emulator) => (emulator, None),
            None => (GOOGLE_STORAGE.to_string(), Some(Box::new(move || tokens()))),
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(STALL_TIMEOUT)
            .read_timeout(STALL_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot set up Cloud Storage requests: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("weir-gcs")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Cloud Storage runtime: {e}"))?;
        Ok(Client {
            base,
            bucket: bucket.to_string(),
            http,
            auth,
            handle: rt.handle().clone(),
            _rt: OwnRuntime(Some(rt)),
            requests: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub(crate) fn location(&self, name: &str) -> String {
        format!("gs://{}/{name}", self.bucket)
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(&self.bucket),
            encode(name)
        )
    }

    /// Runs `fut` on this client's runtime, from a thread that may itself be in a runtime.
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        // A multi-thread runtime: its workers drive the requests while this thread waits.
        let rt = &self.handle;
        if tokio::runtime::Handle::try_current().is_err() {
            return rt.block_on(fut);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| rt.block_on(fut))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Sends `request`, again after a pause when Cloud Storage asks to (429, 5xx) or the
    /// request failed on the way. Every call the backend makes may be repeated: reads and
    /// deletes are idempotent, and a conditional upload whose first try was applied fails its
    /// precondition the second time, which the callers recognise as their own write.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
        let mut pause = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            let this = request
                .try_clone()
                .ok_or("the request cannot be repeated")?;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let this = match &self.auth {
                None => this,
                Some(auth) => this.headers(auth().await.map_err(|e| e.to_string())?),
            };
            match this.send().await {
                Ok(response) if attempt < ATTEMPTS && retryable(response.status()) => {}
                Ok(response) => return Ok(response),
                // Not sent, or its answer lost: either way it can be sent again.
                Err(e) if attempt < ATTEMPTS && !e.is_builder() => {}
                Err(e) => return Err(describe_reqwest(&e)),
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    pub(crate) fn failure(&self, action: &'static str, name: &str, message: String) -> StateError {
        StateError::Remote {
            action,
            location: self.location(name),
            message,
        }
    }

    /// The object's content and generation; `None` when there is none.
    pub(crate) fn get(
        &self,
        name: &str,
        action: &'static str,
    ) -> Result<Option<(Vec<u8>, u64)>, StateError> {
        self.run(async {
            let response = self
                .send(
                    self.http
                        .get(self.object_url(name))
                        .query(&[("alt", "media")]),
                )
                .await?;
            match response.status() {
                StatusCode::NOT_FOUND => return Ok(None),
                s if !s.is_success() => return Err(status_error(response).await),
                _ => {}
            }
            let generation = response
                .headers()
                .get("x-goog-generation")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or("the answer has no x-goog-generation header")?;
            let bytes = response.bytes().await.map_err(|e| describe_reqwest(&e))?;
            Ok(Some((bytes.to_vec(), generation)))
        })
        .map_err(|message: String| self.failure(action, name, message))
    }

    /// Uploads `body` as `name` if the object's generation is `generation` (0: if there is no
    /// such object). A multipart upload: the emulator enforces preconditions only there.
    pub(crate) fn put(
        &self,
        name: &str,
        body: &[u8],
        generation: u64,
        action: &'static str,
    ) -> Result<Put, StateError> {
        let boundary = format!("weir-{}", uuid::Uuid::new_v4().simple());
        let metadata = serde_json::json!({"name": name, "contentType": "application/json"});
        let mut payload = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
             --{boundary}\r\nContent-Type: application/json\r\n\r\n"
        )
        .into_bytes();
        payload.extend_from_slice(body);
        payload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.run(async {
            let url = format!(
                "{}/upload/storage/v1/b/{}/o",
                self.base,
                encode(&self.bucket)
            );
            let request = self
                .http
                .post(url)
                .query(&[
                    ("uploadType", "multipart".to_string()),
                    ("ifGenerationMatch", generation.to_string()),
                ])
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/related; boundary={boundary}"),
                )
                .body(payload);
            let response = self.send(request).await?;
            match response.status() {
                StatusCode::PRECONDITION_FAILED => return Ok(Put::PreconditionFailed),
                s if !s.is_success() => return Err(status_error(response).await),
                _ => {}
            }
            let object: serde_json::Value =
                response.json().await.map_err(|e| describe_reqwest(&e))?;
            generation_of(&object)
                .map(Put::Written)
                .ok_or_else(|| "the answer names no generation".to_string())
        })
        .map_err(|message| self.failure(action, name, message))
    }

    /// Deletes the object if its generation is `generation`; `false` when it is not (412). An
    /// object already gone counts as deleted.
    pub(crate) fn delete(
        &self,
        name: &str,
        generation: u64,
        action: &'static str,
    ) -> Result<bool, StateError> {
        self.run(async {
            let request = self
                .http
                .delete(self.object_url(name))
                .query(&[("ifGenerationMatch", generation.to_string())]);
            let response = self.send(request).await?;
            match response.status() {
                StatusCode::PRECONDITION_FAILED => Ok(false),
                StatusCode::NOT_FOUND => Ok(true),
                s if s.is_success() => Ok(true),
                _ => Err(status_error(response).await),
            }
        })
        .map_err(|message| self.failure(action, name, message))
    }

    /// How many requests this client has sent (each attempt counts).
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The names and generations of the objects whose name starts with `prefix`, every page.
    pub(crate) fn list(
        &self,
        prefix: &str,
        action: &'static str,
    ) -> Result<Vec<(String, u64)>, StateError> {
        self.run(async {
            let mut found = Vec::new();
            let mut page: Option<String> = None;
            loop {
                let mut query = vec![("prefix", prefix.to_string())];
                if let Some(token) = &page {
                    query.push(("pageToken", token.clone()));
                }
                let url = format!("{}/storage/v1/b/{}/o", self.base, encode(&self.bucket));
                let response = self.send(self.http.get(url).query(&query)).await?;
                // No bucket: nothing in it.
                if response.status() == StatusCode::NOT_FOUND {
                    return Ok(found);
                }
                if !response.status().is_success() {
                    return Err(status_error(response).await);
                }
                let listing: serde_json::Value =
                    response.json().await.map_err(|e| describe_reqwest(&e))?;
                for item in listing["items"].as_array().into_iter().flatten() {
                    if let (Some(name), Some(generation)) =
                        (item["name"].as_str(), generation_of(item))
                    {
                        found.push((name.to_string(), generation));
                    }
                }
                match listing["nextPageToken"].as_str() {
                    Some(token) if !token.is_empty() => page = Some(token.to_string()),
                    _ => return Ok(found),
                }
            }
        })
        .map_err(|message| self.failure(action, prefix, message))
    }
}

/// Whether Cloud Storage asks for the request to be sent again.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// An object resource's generation (an int64, which the JSON API writes as a string).
fn generation_of(object: &serde_json::Value) -> Option<u64> {
    match &object["generation"] {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

/// An unexpected answer: its status and Google's message, when it has one.
async fn status_error(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(300).collect());
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
            "{status}: {message} (the credentials need storage.objects.get, create and delete \
             on the bucket)"
        ),
        _ => format!("{status}: {message}"),
    }
}

/// A transport error with its causes (reqwest's own message is often just "error sending
/// request").
fn describe_reqwest(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment (an object name keeps its `/` as `%2F`).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_encoded_as_one_segment() {
        assert_eq!(encode("env/prod state.json"), "env%2Fprod%20state.json");
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn ci_run_names_the_github_run() {
        let env = |name: &str| match name {
            "GITHUB_SERVER_URL" => Some("https://github.com".to_string()),
            "GITHUB_REPOSITORY" => Some("acme/data".to_string()),
            "GITHUB_RUN_ID" => Some("42".to_string()),
            "CI_JOB_URL" => Some("https://gitlab.example/job/1".to_string()),
            _ => None,
        };
        assert_eq!(
            ci_run(&env).as_deref(),
            Some("https://github.com/acme/data/actions/runs/42")
        );
        let gitlab = |name: &str| (name == "CI_JOB_URL").then(|| "https://gl/job/1".to_string());
        assert_eq!(ci_run(&gitlab).as_deref(), Some("https://gl/job/1"));
        assert_eq!(ci_run(&|_| None), None);
    }

    #[test]
    fn a_lease_in_the_past_is_expired_and_none_never_is() {
        let mut info = LockInfo::new("apply");
        assert!(!expired(&info));
        info.expires = Some("2020-01-01T00:00:00Z".into());
        assert!(expired(&info));
        info.expires = Some(expiry(Duration::from_secs(60)));
        assert!(!expired(&info));
    }

    #[test]
    fn generation_is_read_from_a_string_or_a_number() {
        assert_eq!(
            generation_of(&serde_json::json!({"generation": "17"})),
            Some(17)
        );
        assert_eq!(
            generation_of(&serde_json::json!({"generation": 18})),
            Some(18)
        );
        assert_eq!(generation_of(&serde_json::json!({})), None);
    }
}
