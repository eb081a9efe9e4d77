//! State: what weir believes exists, as of the last apply.
//!
//! The format is one JSON document:
//!
//! ```json
//! { "version": 1, "lineage": "uuid", "serial": 42, "weir_version": "0.1.0", "key": "hex",
//!   "resources": { "<address>": { "type": "...", "provider": "mage", "attributes": {},
//!                  "sensitive_paths": [["a", "b"]], "dependencies": ["<direct deps only>"],
//!                  "private": {} } },
//!   "outputs": { "name": { "value": "...", "sensitive": false } } }
//! ```
//!
//! - `resources` and `outputs` are sorted maps, so the file is stable and diffs well.
//! - `dependencies` holds *direct* dependencies only (Terraform stores transitive ones, which
//!   makes a chain of N resources cost N²).
//! - No secret is stored in clear: the value at each of a resource's `sensitive_paths`, and a
//!   sensitive output's value, is a marker `{"__weir_sensitive__": "hmac-sha256:<hex>"}` keyed
//!   with `key` ([`State::seal_secrets`]); what is compared against state compares through it.
//! - `lineage` is fixed when the state is created ([`State::new`]); `serial` is increased by the
//!   caller ([`State::bump`]) on every write that changed something, never on a no-op.
//!
//! Backends ([`store::StateBackend`]): [`local::LocalBackend`] (a file, locked with
//! [`lock::StateLock`], with a per-operation journal so that apply records each finished
//! operation in O(1)) and [`gcs::GcsBackend`] (an object in Cloud Storage, written
//! compare-and-swap, with a leased lock object).

pub mod gcs;
pub mod local;
pub mod lock;
pub mod store;

use crate::plan::sensitive::{holds_clear_secret, seal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use local::{LocalBackend, Recorded, default_path};
pub use lock::{LockInfo, StateLock};
pub use store::{StateBackend, StateSession};

/// The only state format version this weir reads and writes.
pub const STATE_VERSION: u32 = 1;

/// The version of weir, recorded in state and lock files.
pub const WEIR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The whole state of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; always [`STATE_VERSION`] once parsed.
    pub version: u32,
    /// Fixed when the state is created (a UUID v4); two states with different lineages are
    /// unrelated, whatever their serials.
    pub lineage: String,
    /// Increased on every write that changed something.
    pub serial: u64,
    /// The weir that last wrote this state.
    pub weir_version: String,
    /// A random secret (256 bits, hex) that never leaves the state: it seals saved plans made
    /// against this state and keys the digests of their secrets ([`crate::plan::file`]), so a
    /// plan file can be neither forged nor used to check a guessed secret offline; it also keys
    /// the digests that stand for secrets in the state itself ([`State::seal_secrets`]). Empty
    /// in a state written before weir had it: `weir plan --out` and `weir apply` add one.
    #[serde(default)]
    pub key: String,
    /// Every managed resource, by address.
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    /// Root outputs, by name.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputState>,
}

/// One managed resource as of its last successful operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The resource type, e.g. `mage_pipeline`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The provider's name (`"mage"`, `"google"`).
    pub provider: String,
    /// The attributes the provider returned.
    #[serde(default = "empty_object")]
    pub attributes: Value,
    /// Paths inside `attributes` whose values are secret (same shape as the provider SDK's
    /// `AttrPath`: array indices written as decimal strings).
    #[serde(default)]
    pub sensitive_paths: Vec<Vec<String>>,
    /// Addresses of the resources this one *directly* depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Provider-private data, opaque to the engine.
    #[serde(default = "empty_object")]
    pub private: Value,
}

/// One root output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
}

/// The address a sensitive output's digest is keyed to (the one a saved plan uses too).
pub fn output_address(name: &str) -> String {
    format!("output.{name}")
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ResourceState {
    /// A resource with the given type, provider and attributes, and nothing else.
    pub fn new(
        resource_type: impl Into<String>,
        provider: impl Into<String>,
        attributes: Value,
    ) -> Self {
        ResourceState {
            resource_type: resource_type.into(),
            provider: provider.into(),
            attributes,
            sensitive_paths: Vec::new(),
            dependencies: Vec::new(),
            private: empty_object(),
        }
    }
}

impl Default for State {
    /// Same as [`State::new`]: a fresh lineage.
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// An empty state with a fresh lineage (UUID v4), a fresh key and serial 0.
    pub fn new() -> Self {
        let mut state = State::with_lineage(uuid::Uuid::new_v4().to_string());
        state.ensure_key();
        state
    }

    /// Gives the state a fresh [`State::key`] when it has none; says whether it did (the state
    /// then changed and must be persisted).
    pub fn ensure_key(&mut self) -> bool {
        if !self.key.is_empty() {
            return false;
        }
        // Two UUID v4s: 244 bits from the operating system's random source.
        self.key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        true
    }

    pub(crate) fn with_lineage(lineage: String) -> Self {
        State {
            version: STATE_VERSION,
            lineage,
            serial: 0,
            weir_version: WEIR_VERSION.to_string(),
            key: String::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Replaces every secret the state holds in clear (at a resource's `sensitive_paths`, a
    /// sensitive output's value) by its keyed digest ([`crate::plan::sensitive::seal`]): state
    /// written by an older weir, or a value recorded before this. Says whether anything changed.
    /// Without a key (see [`State::ensure_key`]) nothing can be sealed.
    pub fn seal_secrets(&mut self) -> bool {
        if self.key.is_empty() {
            return false;
        }
        let mut changed = false;
        for (address, r) in &mut self.resources {
            changed |= seal(&mut r.attributes, &r.sensitive_paths, &self.key, address);
        }
        for (name, o) in &mut self.outputs {
            if o.sensitive {
                changed |= seal(
                    &mut o.value,
                    &[Vec::new()],
                    &self.key,
                    &output_address(name),
                );
            }
        }
        changed
    }

    /// The state as it is written: itself, or a copy with the secrets it still holds in clear
    /// (a state written by an older weir) replaced by their keyed digests.
    pub fn sealed(&self) -> std::borrow::Cow<'_, State> {
        if self.key.is_empty() || !self.holds_clear_secrets() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut copy = self.clone();
        copy.seal_secrets();
        std::borrow::Cow::Owned(copy)
    }

    /// Whether [`State::seal_secrets`] has anything to replace.
    pub fn holds_clear_secrets(&self) -> bool {
        self.resources
            .values()
            .any(|r| holds_clear_secret(&r.attributes, &r.sensitive_paths))
            || self
                .outputs
                .values()
                .any(|o| o.sensitive && holds_clear_secret(&o.value, &[Vec::new()]))
    }

    /// Marks the state as changed: increases `serial` and records this weir's version.
    /// Call it once before persisting a state that changed; never for a no-op.
    pub fn bump(&mut self) {
        self.serial += 1;
        self.weir_version = WEIR_VERSION.to_string();
    }

    /// Applies one recorded change (what journal replay does): `Set` inserts or overwrites,
    /// `Remove` removes (and is a no-op when the address is absent).
    pub fn apply_change(&mut self, change: &Recorded) {
        match change {
            Recorded::Set { address, resource } => {
                self.resources.insert(address.clone(), resource.clone());
            }
            Recorded::Remove { address } => {
                self.resources.remove(address);
            }
        }
    }

    /// Parses a state document read from the file `source`. See [`State::parse_at`].
    pub fn parse(bytes: &[u8], source: &Path) -> Result<State, StateError> {
        State::parse_at(bytes, &source.display().to_string())
    }

    /// Parses a state document. `location` names where it came from (a path, a `gs://` URL),
    /// for error messages. Errors: [`StateError::UnsupportedVersion`] for another format
    /// version, [`StateError::Corrupt`] (with serde_json's line and column) for anything else
    /// wrong.
    pub fn parse_at(bytes: &[u8], location: &str) -> Result<State, StateError> {
        match serde_json::from_slice::<State>(bytes) {
            Ok(state) if state.version == STATE_VERSION => Ok(state),
            Ok(state) => Err(StateError::UnsupportedVersion {
                location: location.to_string(),
                version: u64::from(state.version),
            }),
            Err(err) => {
                // A document of another version may not have our shape at all: report the
                // version rather than a confusing missing-field error.
                #[derive(Deserialize)]
                struct VersionOnly {
                    version: u64,
                }
                match serde_json::from_slice::<VersionOnly>(bytes) {
                    Ok(v) if v.version != u64::from(STATE_VERSION) => {
                        Err(StateError::UnsupportedVersion {
                            location: location.to_string(),
                            version: v.version,
                        })
                    }
                    _ => Err(StateError::Corrupt {
                        location: location.to_string(),
                        source: err,
                    }),
                }
            }
        }
    }

    /// The state as pretty-printed JSON (with a trailing newline), as the local backend
    /// writes it.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("state serialises to JSON");
        out.push('\n');
        out
    }
}

/// Everything that can go wrong reading, writing or locking state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "read state file", "create directory".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state {location} is corrupt: {source}")]
    Corrupt {
        /// Where the state is: a path, or a `gs://` URL.
        location: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "state {location} has format version {version}, but this weir ({}) only understands \
         version {STATE_VERSION}; use the weir that wrote it or a newer one",
        WEIR_VERSION
    )]
    UnsupportedVersion { location: String, version: u64 },

    #[error("cannot encode state for {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "state journal {path} is corrupt at line {line}: {source} (only a torn last line, \
         left by a crash, is ignored)"
    )]
    JournalCorrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "state journal {path} has format version {version}, but this weir ({}) only \
         understands version 1",
        WEIR_VERSION
    )]
    JournalUnsupportedVersion { path: PathBuf, version: u64 },

    #[error(
        "state journal {journal} belongs to lineage {journal_lineage}, but state file {state} \
         has lineage {state_lineage}: they are not the same state (was one of them replaced?); \
         move the journal away if the state file is the right one"
    )]
    JournalLineageMismatch {
        journal: PathBuf,
        journal_lineage: String,
        state: PathBuf,
        state_lineage: String,
    },

    #[error(
        "state journal {journal} records changes on top of serial {journal_serial} of state file \
         {state}, but {}; was the state file deleted, replaced or restored from a backup? \
         move the journal away if the state file is the right one",
        match state_serial {
            Some(serial) => format!("that file has serial {serial}"),
            None => "that file does not exist".to_string(),
        }
    )]
    JournalMismatch {
        journal: PathBuf,
        journal_serial: u64,
        state: PathBuf,
        state_serial: Option<u64>,
    },

    #[error("{}", lock_held_message(.location, .info_location, .holder.as_deref(), *.waited))]
    LockHeld {
        /// Where the state is.
        location: String,
        /// Where the lock information was read to name the holder.
        info_location: String,
        /// Who holds the lock, when its information could be read.
        holder: Option<Box<LockInfo>>,
        /// How long we waited (zero: did not wait).
        waited: Duration,
    },

    #[error("cannot {action} {location}: {message}")]
    Remote {
        /// What was being done, e.g. "read state object".
        action: &'static str,
        location: String,
        message: String,
    },

    #[error(
        "state {location} was written by someone else since this weir read it ({detail}); it \
         was not overwritten. Another weir wrote it without the lock, or took the lock over \
         after this one's lease expired: run weir plan again to see the current state"
    )]
    Conflict { location: String, detail: String },

    #[error(
        "the lock on state {location} was lost: {message}; nothing more is written to state \
         (run weir apply again: it reconciles what was done from the provider)"
    )]
    LockLost { location: String, message: String },

    #[error("cannot force-unlock {location}: {message}")]
    ForceUnlock { location: String, message: String },
}

fn lock_held_message(
    location: &str,
    info_location: &str,
    holder: Option<&LockInfo>,
    waited: Duration,
) -> String {
    let who = match holder {
        Some(h) => format!("locked by {}", h.describe()),
        None => {
            format!("locked by another process (no readable lock information in {info_location})")
        }
    };
    if waited.is_zero() {
        format!(
            "state {location} is {who}; wait for it to finish and retry, or pass --lock-timeout \
             (e.g. --lock-timeout=5m) to wait for the lock"
        )
    } else {
        let waited = if waited < Duration::from_secs(1) {
            format!("{}ms", waited.as_millis())
        } else {
            format!("{:.1}s", waited.as_secs_f64())
        };
        format!(
            "state {location} is {who}; gave up after waiting {waited} for the lock (--lock-timeout)"
        )
    }
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> State {
        let mut state = State::new();
        let mut r = ResourceState::new(
            "mage_pipeline",
            "mage",
            json!({"name": "etl", "blocks": [{"code": "x"}], "token": "s3cr3t"}),
        );
        r.sensitive_paths = vec![
            vec!["token".into()],
            vec!["blocks".into(), "0".into(), "code".into()],
        ];
        r.dependencies = vec!["google_storage_bucket.raw".into()];
        r.private = json!({"etag": "abc"});
        state.resources.insert("mage_pipeline.etl".into(), r);
        state.resources.insert(
            "google_storage_bucket.raw".into(),
            ResourceState::new("google_storage_bucket", "google", json!({"name": "raw"})),
        );
        state.outputs.insert(
            "url".into(),
            OutputState {
                value: json!("https://x"),
                sensitive: false,
            },
        );
        state.bump();
        state
    }

    #[test]
    fn new_state_has_fresh_lineage() {
        let a = State::new();
        let b = State::new();
        assert_eq!(a.version, 1);
        assert_eq!(a.serial, 0);
        assert_eq!(a.weir_version, WEIR_VERSION);
        assert_ne!(a.lineage, b.lineage);
        assert_eq!(a.key.len(), 64);
        assert_ne!(a.key, b.key);
        let uuid = uuid::Uuid::parse_str(&a.lineage).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }

    #[test]
    fn round_trip() {
        let state = sample();
        let text = state.to_json();
        let back = State::parse(text.as_bytes(), Path::new("x.json")).unwrap();
        assert_eq!(back, state);
        // Field order and names are the documented format.
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "version",
                "lineage",
                "serial",
                "weir_version",
                "key",
                "resources",
                "outputs"
            ]
        );
        let r = &v["resources"]["mage_pipeline.etl"];
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "type",
                "provider",
                "attributes",
                "sensitive_paths",
                "dependencies",
                "private"
            ]
        );
        assert_eq!(r["type"], "mage_pipeline");
        assert_eq!(
            r["sensitive_paths"],
            json!([["token"], ["blocks", "0", "code"]])
        );
        // BTreeMap: resources sorted by address.
        let addrs: Vec<&String> = v["resources"].as_object().unwrap().keys().collect();
        assert_eq!(addrs, ["google_storage_bucket.raw", "mage_pipeline.etl"]);
        assert_eq!(
            v["outputs"]["url"],
            json!({"value": "https://x", "sensitive": false})
        );
    }

    #[test]
    fn optional_fields_default() {
        let text = r#"{"version":1,"lineage":"l","serial":3,"weir_version":"0.0.1",
            "resources":{"a.b":{"type":"t","provider":"p"}}}"#;
        let s = State::parse(text.as_bytes(), Path::new("s.json")).unwrap();
        let r = &s.resources["a.b"];
        assert_eq!(r.attributes, json!({}));
        assert_eq!(r.private, json!({}));
        assert!(r.dependencies.is_empty() && r.sensitive_paths.is_empty());
        assert!(s.outputs.is_empty());
    }

    #[test]
    fn bump_increments_serial() {
        let mut s = State::new();
        s.weir_version = "0.0.0".into();
        s.bump();
        s.bump();
        assert_eq!(s.serial, 2);
        assert_eq!(s.weir_version, WEIR_VERSION);
    }

    #[test]
    fn unknown_version_is_a_clear_error() {
        let text = r#"{"version": 7, "something": "else"}"#;
        let err = State::parse(text.as_bytes(), Path::new("/p/state.json")).unwrap_err();
        assert!(
            matches!(err, StateError::UnsupportedVersion { version: 7, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/p/state.json") && msg.contains("version 7"),
            "{msg}"
        );

        let text = State::new()
            .to_json()
            .replace("\"version\": 1", "\"version\": 2");
        let err = State::parse(text.as_bytes(), Path::new("s")).unwrap_err();
        assert!(
            matches!(err, StateError::UnsupportedVersion { version: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_document_names_file_line_and_column() {
        let text = "{\n  \"version\": 1,\n  \"lineage\": \"x\",\n  \"serial\": oops\n}";
        let err = State::parse(text.as_bytes(), Path::new("/p/state.json")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StateError::Corrupt { .. }));
        assert!(msg.contains("/p/state.json"), "{msg}");
        assert!(msg.contains("line 4 column"), "{msg}");

        let err = State::parse(b"", Path::new("/p/state.json")).unwrap_err();
        assert!(err.to_string().contains("EOF"), "{err}");
        let err = State::parse(br#"{"version":1,"lineage":"x"}"#, Path::new("s")).unwrap_err();
        assert!(err.to_string().contains("missing field `serial`"), "{err}");
    }

    #[test]
    fn apply_change_is_idempotent() {
        let mut s = sample();
        let r = ResourceState::new("t", "p", json!({"a": 1}));
        let set = Recorded::Set {
            address: "t.x".into(),
            resource: r.clone(),
        };
        s.apply_change(&set);
        s.apply_change(&set);
        assert_eq!(s.resources["t.x"], r);
        let rm = Recorded::Remove {
            address: "t.x".into(),
        };
        s.apply_change(&rm);
        s.apply_change(&rm);
        assert!(!s.resources.contains_key("t.x"));
    }
}
