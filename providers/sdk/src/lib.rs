//! The boundary between weir's engine and its providers.
//!
//! A provider manages resources of a few types. It sees only resource *attributes* (JSON values
//! produced by the engine's lowering stage), never weir's domain model or configuration. The
//! engine asks it to:
//! - describe each resource type ([`ResourceSchema`]): which attributes force a replacement,
//!   which are computed by the provider, which are sensitive;
//! - adjust a desired value against the prior one before diffing ([`Provider::plan`]), e.g. to
//!   keep a value chosen at first apply;
//! - read the live objects, in batches ([`Provider::read`]);
//! - create, update and delete objects.
//!
//! Before anything else the engine calls [`Provider::configure`] with a [`ProviderConfig`].
//! Errors have a kind ([`ErrorKind`]); an error from a create or update that leaves an object
//! behind carries its attributes ([`ProviderError::existing`]), which the engine records.
//! Create, update and delete get a [`Cancel`] signal, raised when the user stops weir.
//! Retries are the provider's own business ([`retry`]).

mod cancel;
mod config;
pub mod cost;
pub mod fs;
pub mod retry;

pub use cancel::Cancel;
pub use config::{CredentialsSource, Endpoints, ProviderConfig};
pub use cost::{CostItem, IdleCost, IdleCostChange};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A path to a value inside a resource's attributes, e.g. `["webhook_url"]` or
/// `["blocks", "0", "code"]`. Array indices are written as decimal strings.
pub type AttrPath = Vec<String>;

/// The key of the object that stands for a sensitive value in state: `{"__weir_sensitive__":
/// "hmac-sha256:<hex>"}`, a digest keyed with a secret that never leaves the state. State holds
/// no secret in clear, so a prior value (from state, e.g. with `--refresh=false`) may carry
/// such markers where its secrets were: a provider must never write one into a live object;
/// it takes the real value from the live object instead, or chooses a new one.
pub const SENSITIVE_MARKER: &str = "__weir_sensitive__";

/// Whether `value` is a [`SENSITIVE_MARKER`] object.
pub fn is_sensitive_marker(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.len() == 1
        && map.get(SENSITIVE_MARKER).is_some_and(Value::is_string))
}

/// Whether `value` holds a [`SENSITIVE_MARKER`] object anywhere.
pub fn contains_sensitive_marker(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            is_sensitive_marker(value) || map.values().any(contains_sensitive_marker)
        }
        Value::Array(items) => items.iter().any(contains_sensitive_marker),
        _ => false,
    }
}

/// What the engine knows about one attribute of a resource type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttributeSchema {
    /// A top-level attribute (`location`) or a path to a nested one, dotted, with `*` for any
    /// array index or object key (`settings.tier`, `networkInterfaces.*.network`).
    pub name: String,
    /// Changing the value at this path cannot be done in place: the object is replaced.
    #[serde(default)]
    pub force_new: bool,
    /// The provider fills this attribute in (at plan or at apply); the configuration does not.
    #[serde(default)]
    pub computed: bool,
    /// Never shown in any output.
    #[serde(default)]
    pub sensitive: bool,
}

impl AttributeSchema {
    /// The attribute's path: its name split at the dots.
    pub fn path(&self) -> AttrPath {
        self.name.split('.').map(str::to_string).collect()
    }
}

/// The schema of one resource type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceSchema {
    pub type_name: String,
    pub description: String,
    pub attributes: Vec<AttributeSchema>,
    /// The types of resource this one lives inside (a database in its instance, a version in
    /// its secret, a member in a policy that belongs to a bucket): when a resource of one of
    /// these types that this one depends on is replaced, the new one starts without it, so
    /// this one is replaced too.
    #[serde(default)]
    pub lives_in: Vec<String>,
}

impl ResourceSchema {
    pub fn new(type_name: &str, description: &str) -> Self {
        ResourceSchema {
            type_name: type_name.to_string(),
            description: description.to_string(),
            attributes: Vec::new(),
            lives_in: Vec::new(),
        }
    }

    /// Says that this resource lives inside the resource of type `type_name` it depends on
    /// (see [`ResourceSchema::lives_in`]).
    pub fn lives_in(mut self, type_name: &str) -> Self {
        self.lives_in.push(type_name.to_string());
        self
    }

    pub fn attribute(mut self, name: &str) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.to_string(),
            ..Default::default()
        });
        self
    }

    /// `name` may be a dotted path with `*` segments (see [`AttributeSchema::name`]).
    pub fn force_new(mut self, name: &str) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.to_string(),
            force_new: true,
            ..Default::default()
        });
        self
    }

    pub fn computed(mut self, name: &str) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.to_string(),
            computed: true,
            ..Default::default()
        });
        self
    }

    pub fn sensitive(mut self, name: &str) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.to_string(),
            sensitive: true,
            ..Default::default()
        });
        self
    }

    pub fn get(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The attributes (names or dotted paths) whose change forces a replacement.
    pub fn force_new_attributes(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|a| a.force_new)
            .map(|a| a.name.as_str())
    }

    /// The paths whose change forces a replacement (`*` segments not expanded).
    pub fn force_new_paths(&self) -> Vec<AttrPath> {
        self.attributes
            .iter()
            .filter(|a| a.force_new)
            .map(AttributeSchema::path)
            .collect()
    }
}

/// One resource as the provider sees it: its address (for messages), type and attributes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceRef {
    pub address: String,
    pub type_name: String,
    pub attributes: Value,
    /// The paths of `attributes` that hold secrets (a `*` segment matches every index or
    /// key), so that the provider keeps what holds them private (e.g. a file only its owner
    /// can read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_paths: Vec<AttrPath>,
}

/// The outcome of [`Provider::plan`]: the value that apply will produce, as far as it is known,
/// and the attributes only known after apply.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedValue {
    pub value: Value,
    /// Paths whose value is only known after apply (shown as "(known after apply)").
    pub unknown: Vec<AttrPath>,
    /// Notes the plan shows next to this resource (e.g. "Mage never deletes a trigger").
    pub notes: Vec<String>,
    /// Paths whose change, as the provider judges it with the prior value in hand, needs a
    /// new object (e.g. a disk that shrinks, where growing it is done in place): the engine
    /// treats them like the schema's force-new attributes. Empty without a prior value.
    pub replace: Vec<AttrPath>,
}

impl PlannedValue {
    pub fn known(value: Value) -> Self {
        PlannedValue {
            value,
            unknown: Vec::new(),
            notes: Vec::new(),
            replace: Vec::new(),
        }
    }
}

/// What kind of failure an error is: what the engine and a retry loop may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The object is not there (HTTP 404).
    NotFound,
    /// The object already exists, or another change got there first (HTTP 409).
    Conflict,
    /// The object changed since it was read: its etag or fingerprint no longer matches (HTTP
    /// 412). Read it again and retry.
    PreconditionFailed,
    /// Throttling, a timeout, a 5xx: the same call may succeed later.
    Retryable,
    /// Bad input, missing permission, a refusal: retrying will not help.
    Permanent,
    /// The operation stopped waiting because weir was asked to stop ([`Cancel`]); it may
    /// still finish on the target.
    Cancelled,
}

/// An error from a provider operation.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    /// What the user could do about it.
    pub help: Option<String>,
    /// The object's attributes when a create or update failed (or was cancelled) after the
    /// object came to exist: the engine records them in state, so that the object is never
    /// orphaned and the next run updates it instead of creating it again. Never shown. (Boxed:
    /// rare, and it keeps every `Result` small.)
    pub existing: Option<Box<Value>>,
    /// How long the target asked to wait before the next attempt (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The target says it did not act on the request at all (throttled before it was carried
    /// out: Google's 429 `RESOURCE_EXHAUSTED`, or a connection refused before it was sent), so
    /// even a call that is not idempotent may be sent again.
    pub unprocessed: bool,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
            help: None,
            existing: None,
            retry_after: None,
            unprocessed: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::Permanent, message)
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::Retryable, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::Conflict, message)
    }

    pub fn precondition_failed(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::PreconditionFailed, message)
    }

    pub fn cancelled(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorKind::Cancelled, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Says that the object exists despite the error, with these attributes.
    pub fn with_existing(mut self, attributes: Value) -> Self {
        self.existing = Some(Box::new(attributes));
        self
    }

    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Says that the target did not act on the request (see [`ProviderError::unprocessed`]).
    pub fn with_unprocessed(mut self) -> Self {
        self.unprocessed = true;
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }

    /// The same error, saying that retries gave up after `attempts` attempts.
    pub(crate) fn gave_up(mut self, attempts: u32) -> Self {
        self.message = format!("{} (gave up after {attempts} attempts)", self.message);
        self
    }
}

/// Leaves out the attributes of [`ProviderError::existing`], which may hold secrets.
impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("help", &self.help)
            .field("existing", &self.existing.as_ref().map(|_| "<attributes>"))
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// The interface every provider implements.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider's name as recorded in state (`"mage"`, `"google"`).
    fn name(&self) -> &str;

    /// The schemas of every resource type this provider manages.
    fn schemas(&self) -> Vec<ResourceSchema>;

    /// Takes the configuration of this run, before the provider plans, reads or applies (and
    /// again when it changes, e.g. once apply has created the state). It must not need
    /// credentials: a plan with no prior state calls nothing else. An error stops the run. The
    /// default ignores the configuration.
    async fn configure(&self, _config: &ProviderConfig) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Adjusts the desired attributes of a resource given its prior attributes (from state),
    /// before the engine diffs them: fill in computed values that are kept once chosen, carry
    /// over what must survive, mark what is known only after apply. The default keeps the
    /// desired value as it is.
    fn plan(
        &self,
        _type_name: &str,
        _prior: Option<&Value>,
        desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        Ok(PlannedValue::known(desired))
    }

    /// Adds to `live` (a resource's refreshed value) what a plan should show of it next to
    /// `planned`, read only for what changes: e.g. the old text of the files a release changes,
    /// which the live value names only by hash. The plan decides on the live value as read;
    /// this is for showing the change. The default adds nothing.
    async fn show_before(&self, _type_name: &str, _live: &mut Value, _planned: &Value) {}

    /// What `resources` (all of this provider's resources in a deployment, with their
    /// attributes as planned or recorded) cost in a month when idle, `None` when the provider
    /// prices none of them. The plan shows it before and after the change. The default prices
    /// nothing.
    fn idle_cost(&self, _resources: &[ResourceRef]) -> Option<IdleCost> {
        None
    }

    /// Whether [`Provider::idle_cost`] prices resources of `type_name`: the plan hands it
    /// only those (copying every resource's attributes for a provider that prices none would
    /// cost a large plan time for nothing). The default prices none.
    fn prices(&self, _type_name: &str) -> bool {
        false
    }

    /// What a plan that deletes a resource of this type should say (e.g. that the target
    /// keeps something the deletion cannot reach). The default says nothing.
    fn delete_notes(&self, _type_name: &str) -> Vec<String> {
        Vec::new()
    }

    /// Reads the live objects behind `resources` (their attributes are the ones last recorded in
    /// state). Returns one entry per resource, in order: `Ok(None)` when the object is gone.
    /// Providers read in batches where the target can list.
    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>>;

    /// Creates the object and returns its attributes as they now are, values known only after
    /// apply included. When it fails after the object came to exist (a long operation that
    /// timed out or failed, a cancel), the error carries the object's attributes
    /// ([`ProviderError::with_existing`]). A provider waiting on the target stops waiting when
    /// `cancel` is raised. The engine calls it once: a retry is the provider's decision
    /// ([`retry`]).
    async fn create(&self, resource: &ResourceRef, cancel: &Cancel)
    -> Result<Value, ProviderError>;

    /// Updates the object in place from `prior` to `resource.attributes`; errors and `cancel`
    /// as for [`Provider::create`].
    async fn update(
        &self,
        prior: &Value,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError>;

    /// Deletes the object; `resource.attributes` are the last recorded ones. Deleting an object
    /// that is already gone is a success.
    async fn delete(&self, resource: &ResourceRef, cancel: &Cancel) -> Result<(), ProviderError>;
}
