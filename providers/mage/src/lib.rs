//! weir's Mage provider for the `local` target: it writes a Mage (mage-ai) project directory and
//! reads it back.
//!
//! [`MageProvider::new`] takes the configuration directory; every resource's `project_dir` is
//! relative to it unless it is absolute. The project must be a directory of its own: not the
//! configuration directory nor one that contains it, and not a symbolic link. The provider sees only resource attributes (JSON made
//! by weir's lowering); their shapes are the contract, documented below. `read` returns exactly
//! these shapes, with defaults filled in, so that a file Mage rewrote (other key order, other
//! quoting, keys it adds with their default values) reads back equal.
//!
//! # Resource types
//!
//! ## `mage_project` → `<project_dir>/metadata.yaml`
//!
//! ```json
//! {"project_dir": "mage_project", "project_uuid": "32 hex chars",
//!  "remote_variables_dir": "gs://bucket/variables" | null,
//!  "logging": {"bucket": "...", "prefix": "..."} | null,
//!  "image": "mageai/mageai:0.9.80" | null, "mage_version": "0.9.80" | null}
//! ```
//!
//! Rendered with `project_type: standalone`, `help_improve_mage: false`, and, when `logging`
//! is set, `logging_config: {type: gcs, level: INFO, destination_config: {bucket, prefix}}`.
//! An empty `project_uuid` is kept from the prior state or generated at apply. Values may not
//! contain Jinja delimiters: Mage renders this file through Jinja. Keys weir does not manage are
//! ignored on read. `image` and `mage_version` (what runs the project) are not written to the
//! file: read returns the recorded ones, so only the configuration changes them. Replaced when
//! `project_dir` changes.
//!
//! ## `mage_pipeline` → `<project_dir>/pipelines/<uuid>/metadata.yaml`
//!
//! ```json
//! {"project_dir": "...", "uuid": "orders", "name": "orders", "description": "", "tags": [],
//!  "variables": {},
//!  "concurrency_config": null | {"block_run_limit": 2, "pipeline_run_limit": 1,
//!                                "on_pipeline_run_limit_reached": "wait"},
//!  "notification_config": null | {Mage's notification_config, rendered as is},
//!  "blocks": [{"uuid": "load", "type": "data_loader", "language": "python",
//!              "upstream_blocks": [], "downstream_blocks": ["split"],
//!              "configuration": {"dynamic": true, "reduce_output": false},
//!              "retry_config": {"retries": 2, "delay": 5, "max_delay": 60,
//!                               "exponential_backoff": true} | null,
//!              "timeout": 3600 | null}],
//!  "conditionals": [the same block shape, "type": "conditional"],
//!  "callbacks": [the same block shape, "type": "callback"]}
//! ```
//!
//! `notification_config` may only use the keys Mage's `NotificationConfig` knows (an unknown
//! one raises `TypeError` in Mage at every run). `concurrency_config` keys that are null are
//! left out (an empty one is `null`; it may also
//! carry Mage's `pipeline_run_limit_all_triggers`); an empty `notification_config` is `null`.
//! `configuration` always has `dynamic` and `reduce_output` (false when unset, and left out of
//! the YAML when false); other configuration keys pass through. `retry_config` keys missing on
//! read get Mage's defaults (0, 5, 60, true). The pipeline is rendered with `type: python` and
//! both `upstream_blocks` and `downstream_blocks` as given. Replaced when `project_dir` or
//! `uuid` changes.
//!
//! ## `mage_block` → one code file, `<project_dir>/<path>`
//!
//! ```json
//! {"project_dir": "...", "path": "data_loaders/load.py", "code": "...file contents..."}
//! ```
//!
//! Lowering computes `path` with Mage's rules (`<type>s/<uuid>.py`, `custom/` singular, `.sql`
//! for SQL). The path must be relative, inside a folder, outside `pipelines/` and `.weir/`.
//! `code` reads back as the file's bytes as UTF-8. Replaced when `project_dir` or `path`
//! changes.
//!
//! ## `mage_file` → one file of the weir runtime, `<project_dir>/weir/…`
//!
//! ```json
//! {"project_dir": "...", "path": "weir/runtime.json", "code": "...file contents..."}
//! ```
//!
//! The same shape as `mage_block`; the path must be inside `weir/` (and a block's may not be),
//! see [`runtime`]. Replaced when `project_dir` or `path` changes.
//!
//! ## `mage_triggers` → `<project_dir>/pipelines/<pipeline>/triggers.yaml`
//!
//! ```json
//! {"project_dir": "...", "pipeline": "orders",
//!  "triggers": [{"name": "nightly", "schedule_type": "time", "schedule_interval": "0 3 * * *",
//!                "start_time": "2026-11-29T05:00:00Z" | null, "status": "active",
//!                "variables": {}, "sla": 7200 | null,
//!                "settings": {"skip_if_previous_running": false, "allow_blocks_to_fail": false,
//!                             "timeout": 10800 | null, "pipeline_run_limit": 1 | null},
//!                "description": null, "token": null, "last_enabled_at": null}],
//!  "retired": []}
//! ```
//!
//! Datetimes are RFC 3339 in UTC (`2026-11-29T05:00:00Z`, fractional seconds only when there
//! are some); in the YAML they are plain timestamps the way `yaml.safe_dump` writes them
//! (`2026-11-29 05:00:00+00:00`), which PyYAML loads as datetimes. `settings` may also carry
//! Mage's `create_initial_pipeline_run`, `landing_time_enabled` and `timeout_status` (present
//! only when not the default), and a trigger may carry `envs` (present only when not empty).
//! The YAML holds every key Mage requires (`name`, `schedule_type`, `schedule_interval` —
//! always double-quoted — and `start_time`, null allowed), no key Mage does not know, settings
//! without nulls, and `last_enabled_at` and `token`, so that Mage does not rewrite the file.
//!
//! [`Provider::plan`] for `mage_triggers`: a time trigger without `start_time`, an active
//! trigger without `last_enabled_at` and any trigger without `token` keep the prior value
//! (`last_enabled_at` only while the trigger stays active, a new cron included), or are
//! reported unknown (`["triggers", "<i>", "start_time"]`) and chosen at apply (now, to the
//! second; a random 32-hex token). A trigger in the prior state but not in the desired one is
//! carried over as `inactive`, its name listed in `retired`, with a note: Mage never deletes a
//! trigger that disappears from `triggers.yaml`. Replaced when `project_dir` or `pipeline`
//! changes.
//!
//! # Ownership: the manifest
//!
//! weir never writes over or deletes a file it does not own. Each project keeps
//! `<project_dir>/.weir/manifest.json`:
//!
//! ```json
//! {"version": 1, "lineage": "6f1c2f3e-…",
//!  "files": {"data_loaders/load.py": {"sha256": "…", "owner": "mage_block.load"}},
//!  "dirs": ["data_loaders"]}
//! ```
//!
//! - Writing a file that exists and is not in the manifest fails with a permanent error that
//!   names the file. A file in the manifest is weir's: an update overwrites it even if someone
//!   changed it (`read` reports the drift), and its owner becomes the writing resource.
//! - The claim is saved (temp file, fsync, rename) before the file is written (temp file,
//!   fsync, rename); a crash in between leaves a claim on a missing file, and the next run
//!   writes it.
//! - Delete removes a file only if the manifest says the deleted resource owns it, then drops it
//!   from the manifest, then removes the directories weir created (`dirs`, an addition to the
//!   `version`/`files` shape, left out when empty) that end up empty.
//! - The manifest records the lineage of the weir state that owns the project (told by the
//!   engine through [`Provider::configure`]); the first claim records it. Another
//!   state (a second configuration pointed at the same `project_dir`, or a lost state) is
//!   refused at plan, read, write and delete, with an error naming the owner's lineage.
//! - [`Provider::plan`] refuses what apply would: a file that exists and weir does not own, a
//!   link, FIFO or directory where the file goes, a project of another state.
//! - Nothing is ever reached through a symbolic link: every path is opened from the project
//!   directory's descriptor one component at a time with `O_NOFOLLOW`, and only regular files
//!   are read or replaced (a FIFO or device is an error, never a hang).
//! - A file whose content holds a secret (a sensitive path of the resource has a value, or
//!   an API trigger token) is written with mode 0600, every other one 0644; the manifest keeps
//!   no digest of it.
//! - Temporary files (`.weir-tmp-*`) a killed run left next to weir's files are removed the
//!   next time the project is opened for writing (regular files only, never through links).
//! - Updates of the manifest are serialized by a lock inside the provider. Each claim or
//!   release is one fsynced line appended to `.weir/manifest.journal`, folded into
//!   `manifest.json` when the project is next opened, so an apply stays linear in the number
//!   of files.
//!
//! # Read
//!
//! A missing file reads as `Ok(None)`. A file that exists but cannot be understood (not YAML,
//! the wrong shape, a trigger Mage would skip) reads as its identifying attributes plus
//! `"unparseable": "<reason>"`, which differs from any desired value, so the plan shows an
//! update that rewrites it. I/O errors are permanent errors naming the path (interruptions and
//! time-outs are retryable), and so are a symbolic link or anything but a regular file on the
//! way: reading never follows a link.

mod attrs;
mod block;
mod error;
mod fsio;
mod manifest;
mod pipeline;
mod project;
pub mod runtime;
mod triggers;
mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use weir_provider_sdk::retry::{Idempotency, RetryPolicy, retry};
use weir_provider_sdk::{
    Cancel, PlannedValue, Provider, ProviderConfig, ProviderError, ResourceRef, ResourceSchema,
    contains_sensitive_marker,
};

use crate::attrs::{str_attr, unparseable};
use crate::block::BlockAttrs;
use crate::error::bad_attributes;
use crate::fsio::{MODE_PRIVATE, MODE_PUBLIC, RelPath};
use crate::manifest::Project;
use crate::pipeline::PipelineAttrs;
use crate::project::ProjectAttrs;
use crate::triggers::TriggersAttrs;

/// The provider's name in state.
pub const PROVIDER_NAME: &str = "mage";

/// The Mage provider for the `local` target: writes and reads Mage project directories.
#[derive(Clone)]
pub struct MageProvider {
    inner: Arc<Inner>,
}

struct Inner {
    base_dir: PathBuf,
    /// The lineage of the weir state this provider works for (`None`: no state yet); see
    /// [`MageProvider::set_state_lineage`].
    lineage: Mutex<Option<String>>,
    /// Every project this provider touched, with its manifest in memory. The lock serializes
    /// each claim or release (and the file write that follows it).
    projects: Mutex<HashMap<PathBuf, Project>>,
}

impl MageProvider {
    /// A provider whose relative `project_dir`s are resolved against `base_dir` (the
    /// configuration directory).
    pub fn new(base_dir: PathBuf) -> MageProvider {
        MageProvider {
            inner: Arc::new(Inner {
                base_dir,
                lineage: Mutex::new(None),
                projects: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The directory relative `project_dir`s are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.inner.base_dir
    }

    /// Tells the provider which weir state it works for (what [`Provider::configure`] takes
    /// from [`ProviderConfig::state_lineage`]): the state's lineage, or `None` while no state
    /// exists yet.
    pub fn set_state_lineage(&self, lineage: Option<&str>) {
        *self
            .inner
            .lineage
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = lineage.map(str::to_string);
    }
}

/// A write or delete that failed on an interrupted or timed-out file operation is repeated:
/// each one converges from whatever the last attempt left (the manifest claims first, files are
/// replaced whole).
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        deadline: None,
    }
}

/// Runs blocking file work off the async executor when there is a tokio runtime.
async fn blocking<T, F>(work: F) -> Result<T, ProviderError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(work).await.map_err(|e| {
            ProviderError::permanent(format!("internal error in the mage provider: {e}"))
        }),
        Err(_) => Ok(work()),
    }
}

fn unknown_type(type_name: &str) -> ProviderError {
    ProviderError::permanent(format!(
        "the mage provider does not manage resources of type `{type_name}`"
    ))
}

/// The file a resource of this provider writes, rendered without touching a disk: its path
/// inside the project and its content. For a project shipped elsewhere than a local directory
/// (a `gcp` deployment's code release). Triggers are rendered as planned, without what only
/// apply chooses (`start_time` and `last_enabled_at` left to Mage, no API token), so that the
/// same configuration always renders the same bytes.
pub fn render_file(type_name: &str, attributes: &Value) -> Result<(String, Vec<u8>), String> {
    let (rel, bytes) = match type_name {
        project::TYPE => {
            let attrs = ProjectAttrs::from_value(attributes)?;
            ("metadata.yaml".to_string(), attrs.render()?.into_bytes())
        }
        pipeline::TYPE => {
            let attrs = PipelineAttrs::from_value(attributes)?;
            (attrs.rel_path()?.key(), attrs.render()?.into_bytes())
        }
        block::TYPE | block::FILE_TYPE => {
            let attrs = BlockAttrs::from_value(type_name, attributes)?;
            (
                block::path_of(type_name, &attrs.path)?.key(),
                attrs.code.into_bytes(),
            )
        }
        triggers::TYPE => {
            let attrs = TriggersAttrs::from_value(&triggers::without_token_digests(attributes))?;
            (attrs.rel_path()?.key(), attrs.render()?.into_bytes())
        }
        other => return Err(format!("`{other}` is not a Mage file")),
    };
    Ok((rel, bytes))
}

fn render_error(address: &str, detail: String) -> ProviderError {
    ProviderError::permanent(format!(
        "{address}: could not render the Mage file: {detail}"
    ))
}

impl Inner {
    /// The project directory of `project_dir`: relative to the configuration directory unless
    /// absolute. It must be a directory of its own: not the configuration directory (where
    /// weir keeps its state in `.weir/`, the same name as the project's manifest folder) nor
    /// one that contains it.
    fn project_root(&self, project_dir: &str) -> Result<PathBuf, ProviderError> {
        let root = lexical(&self.base_dir.join(project_dir));
        let base = lexical(&self.base_dir);
        if base.starts_with(&root) {
            let what = if root == base {
                "is the configuration directory itself"
            } else {
                "contains the configuration directory"
            };
            return Err(ProviderError::permanent(format!(
                "project_dir `{project_dir}` ({}) {what}; the Mage project must be a directory of its own",
                root.display()
            ))
            .with_help("set `project_dir` to a folder for the Mage project alone, e.g. `mage_project`"));
        }
        Ok(root)
    }

    fn lineage(&self) -> Option<String> {
        self.lineage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes the rendered file of `resource`, whose attributes are now `value` (returned), with
    /// permissions for its owner only when it holds a secret.
    fn write(
        &self,
        resource: &ResourceRef,
        project_dir: &str,
        rel: &RelPath,
        content: &[u8],
        value: Value,
    ) -> Result<Value, ProviderError> {
        let owner = resource.address.as_str();
        // A value from state holds keyed digests where its secrets were: never a file's content.
        if contains_sensitive_marker(&value) {
            return Err(ProviderError::permanent(format!(
                "{owner}: a sensitive value is known only by its digest in state, and weir cannot write it to {}",
                rel.key()
            ))
            .with_help("run weir plan (or apply) with refresh, so that weir reads the value from the project"));
        }
        let mode = file_mode(&value, &resource.sensitive_paths);
        let lineage = self.lineage();
        self.with_project(project_dir, |project| {
            project.write_owned(rel, content, owner, lineage.as_deref(), mode)
        })?;
        Ok(value)
    }

    /// Runs `work` on the project (loading it on first use), under the projects lock.
    fn with_project<T>(
        &self,
        project_dir: &str,
        work: impl FnOnce(&mut Project) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let root = self.project_root(project_dir)?;
        let mut projects = self.projects.lock().unwrap_or_else(PoisonError::into_inner);
        let project = match projects.entry(root.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Project::load(root)?),
        };
        work(project)
    }

    /// Creates or updates: renders the file from the attributes, writes it, returns the
    /// attributes as they now are.
    fn apply(&self, resource: &ResourceRef, prior: Option<&Value>) -> Result<Value, ProviderError> {
        let address = resource.address.as_str();
        let type_name = resource.type_name.as_str();
        let bad = |e: String| bad_attributes(address, type_name, e);
        match type_name {
            project::TYPE => {
                let mut attrs = ProjectAttrs::from_value(&resource.attributes).map_err(bad)?;
                if attrs.project_uuid.is_empty() {
                    attrs.project_uuid = prior_project_uuid(prior, &attrs.project_dir)
                        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
                }
                let text = attrs.render().map_err(|e| render_error(address, e))?;
                let rel = RelPath::from_segments(&["metadata.yaml"]).map_err(bad)?;
                let value = attrs.to_value();
                self.write(resource, &attrs.project_dir, &rel, text.as_bytes(), value)
            }
            pipeline::TYPE => {
                let attrs = PipelineAttrs::from_value(&resource.attributes).map_err(bad)?;
                let rel = attrs.rel_path().map_err(bad)?;
                let text = attrs.render().map_err(|e| render_error(address, e))?;
                let value = attrs.to_value().map_err(|e| render_error(address, e))?;
                self.write(resource, &attrs.project_dir, &rel, text.as_bytes(), value)
            }
            block::TYPE | block::FILE_TYPE => {
                let attrs = BlockAttrs::from_value(&resource.type_name, &resource.attributes)
                    .map_err(bad)?;
                let rel = block::path_of(&resource.type_name, &attrs.path).map_err(bad)?;
                let value = attrs.to_value();
                self.write(
                    resource,
                    &attrs.project_dir,
                    &rel,
                    attrs.code.as_bytes(),
                    value,
                )
            }
            triggers::TYPE => {
                let desired = TriggersAttrs::from_value(&triggers::without_token_digests(
                    &resource.attributes,
                ))
                .map_err(bad)?;
                let mut attrs = triggers::plan(prior, desired).attrs;
                if attrs.triggers.iter().any(|t| t.token.is_none()) {
                    self.keep_live_tokens(&mut attrs)?;
                }
                attrs.fill_at_apply(chrono::Utc::now());
                let rel = attrs.rel_path().map_err(bad)?;
                let text = attrs.render().map_err(|e| render_error(address, e))?;
                let value = attrs.to_value().map_err(|e| render_error(address, e))?;
                self.write(resource, &attrs.project_dir, &rel, text.as_bytes(), value)
            }
            other => Err(unknown_type(other)),
        }
    }

    /// Gives each trigger without a token the one its live `triggers.yaml` has
    /// ([`triggers::keep_live_tokens`]); a missing or unreadable file leaves it without.
    fn keep_live_tokens(&self, attrs: &mut TriggersAttrs) -> Result<(), ProviderError> {
        let rel = attrs
            .rel_path()
            .map_err(|e| bad_attributes("", triggers::TYPE, e))?;
        let lineage = self.lineage();
        let bytes = self.with_project(&attrs.project_dir, |project| {
            project.check_owner(lineage.as_deref())?;
            project.read(&rel)
        })?;
        if let Some(text) = bytes.and_then(|b| String::from_utf8(b).ok())
            && let Ok(live) =
                triggers::parse(&attrs.project_dir, &attrs.pipeline, &text, &Value::Null)
        {
            triggers::keep_live_tokens(attrs, &live);
        }
        Ok(())
    }

    /// Where a resource's file is, from its recorded attributes.
    fn location(&self, resource: &ResourceRef) -> Result<(String, RelPath), ProviderError> {
        location(&resource.address, &resource.type_name, &resource.attributes)
    }
}

/// Where a resource's file is: its `project_dir` and its path inside the project.
fn location(
    address: &str,
    type_name: &str,
    attrs: &Value,
) -> Result<(String, RelPath), ProviderError> {
    {
        let bad = |e: String| bad_attributes(address, type_name, e);
        let field = |name: &str| {
            str_attr(attrs, name)
                .map(str::to_string)
                .ok_or_else(|| bad(format!("`{name}` is missing or not a string")))
        };
        let project_dir = field("project_dir")?;
        let rel = match type_name {
            project::TYPE => RelPath::from_segments(&["metadata.yaml"]).map_err(bad)?,
            pipeline::TYPE => pipeline::path_for(&field("uuid")?).map_err(bad)?,
            block::TYPE | block::FILE_TYPE => {
                block::path_of(type_name, &field("path")?).map_err(bad)?
            }
            triggers::TYPE => triggers::path_for(&field("pipeline")?).map_err(bad)?,
            other => return Err(unknown_type(other)),
        };
        Ok((project_dir, rel))
    }
}

impl Inner {
    fn read_one(&self, resource: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let (project_dir, rel) = self.location(resource)?;
        let lineage = self.lineage();
        let (full, bytes) = self.with_project(&project_dir, |project| {
            project.check_owner(lineage.as_deref())?;
            Ok((rel.under(project.path()), project.read(&rel)?))
        })?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let attrs = &resource.attributes;
        let field = |name: &str| str_attr(attrs, name).unwrap_or_default().to_string();
        let type_name = resource.type_name.as_str();
        if type_name == block::TYPE || type_name == block::FILE_TYPE {
            return Ok(Some(block::parse(&project_dir, &field("path"), bytes)));
        }
        // Most files are exactly as weir last wrote them: when the recorded attributes render
        // to these very bytes, they are what a parse would return, without the cost of parsing
        // YAML (the bulk of a no-change plan).
        if let Some((rendered, canonical)) = render_recorded(type_name, attrs)
            && rendered.as_bytes() == bytes.as_slice()
        {
            return Ok(Some(canonical));
        }
        let parsed = match String::from_utf8(bytes) {
            Err(e) => Err(format!("the file is not valid UTF-8: {}", e.utf8_error())),
            Ok(text) => match type_name {
                project::TYPE => project::parse(&project_dir, &text, attrs),
                pipeline::TYPE => pipeline::parse(&project_dir, &field("uuid"), &text),
                triggers::TYPE => triggers::parse(&project_dir, &field("pipeline"), &text, attrs),
                other => return Err(unknown_type(other)),
            },
        };
        Ok(Some(parsed.unwrap_or_else(|reason| {
            let mut identity = vec![("project_dir", project_dir.clone())];
            match type_name {
                pipeline::TYPE => identity.push(("uuid", field("uuid"))),
                triggers::TYPE => identity.push(("pipeline", field("pipeline"))),
                _ => {}
            }
            unparseable(&identity, format!("{}: {reason}", full.display()))
        })))
    }

    fn delete(&self, resource: &ResourceRef) -> Result<(), ProviderError> {
        let (project_dir, rel) = self.location(resource)?;
        let lineage = self.lineage();
        self.with_project(&project_dir, |project| {
            project.delete_owned(&rel, &resource.address, lineage.as_deref())
        })
    }
}

/// The file the recorded attributes of a resource render to, and those attributes in canonical
/// form; `None` when they do not decode (then the file is parsed as usual).
fn render_recorded(type_name: &str, attrs: &Value) -> Option<(String, Value)> {
    match type_name {
        project::TYPE => {
            let a = ProjectAttrs::from_value(attrs).ok()?;
            Some((a.render().ok()?, a.to_value()))
        }
        pipeline::TYPE => {
            let a = PipelineAttrs::from_value(attrs).ok()?;
            Some((a.render().ok()?, a.to_value().ok()?))
        }
        triggers::TYPE => {
            let a = TriggersAttrs::from_value(attrs).ok()?;
            Some((a.render().ok()?, a.to_value().ok()?))
        }
        _ => None,
    }
}

/// The permissions of a file rendered from `value`: owner-only when it holds a secret (a
/// sensitive path with a value, or an API trigger token: anyone holding one can start the
/// pipeline), readable by anyone otherwise (Mage may run as another user).
fn file_mode(value: &Value, sensitive_paths: &[Vec<String>]) -> u32 {
    let token = vec!["triggers".to_string(), "*".to_string(), "token".to_string()];
    let holds_secret = sensitive_paths
        .iter()
        .chain(std::iter::once(&token))
        .any(|path| has_value_at(value, path));
    if holds_secret {
        MODE_PRIVATE
    } else {
        MODE_PUBLIC
    }
}

/// Whether something other than null or an empty value is at `path` (`*` matches every
/// element or key).
fn has_value_at(value: &Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return match value {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        };
    };
    match value {
        Value::Object(map) if first == "*" => map.values().any(|v| has_value_at(v, rest)),
        Value::Object(map) => map.get(first).is_some_and(|v| has_value_at(v, rest)),
        Value::Array(items) if first == "*" => items.iter().any(|v| has_value_at(v, rest)),
        Value::Array(items) => first
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .is_some_and(|v| has_value_at(v, rest)),
        _ => false,
    }
}

/// `path` with `.` and `..` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn prior_project_uuid(prior: Option<&Value>, project_dir: &str) -> Option<String> {
    let prior = prior?;
    if str_attr(prior, "project_dir") != Some(project_dir) {
        return None;
    }
    str_attr(prior, "project_uuid")
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

/// The value `plan` promises for a resource (see [`Provider::plan`]).
fn plan_value(
    type_name: &str,
    prior: Option<&Value>,
    desired: Value,
) -> Result<PlannedValue, ProviderError> {
    {
        let bad = |e: String| bad_attributes("", type_name, e);
        match type_name {
            project::TYPE => {
                let mut attrs = ProjectAttrs::from_value(&desired).map_err(bad)?;
                let mut unknown = Vec::new();
                if attrs.project_uuid.is_empty() {
                    match prior_project_uuid(prior, &attrs.project_dir) {
                        Some(uuid) => attrs.project_uuid = uuid,
                        None => unknown.push(vec!["project_uuid".to_string()]),
                    }
                }
                Ok(PlannedValue {
                    value: attrs.to_value(),
                    unknown,
                    notes: Vec::new(),
                    replace: Vec::new(),
                })
            }
            pipeline::TYPE => {
                let attrs = PipelineAttrs::from_value(&desired).map_err(bad)?;
                Ok(PlannedValue::known(attrs.to_value().map_err(bad)?))
            }
            block::TYPE | block::FILE_TYPE => {
                let attrs = BlockAttrs::from_value(type_name, &desired).map_err(bad)?;
                Ok(PlannedValue::known(attrs.to_value()))
            }
            triggers::TYPE => {
                let attrs = TriggersAttrs::from_value(&desired).map_err(bad)?;
                let mut planned = triggers::plan(prior, attrs);
                let mut value = planned.attrs.to_value().map_err(bad)?;
                triggers::keep_token_digests(prior, &mut value, &mut planned.unknown);
                Ok(PlannedValue {
                    value,
                    unknown: planned.unknown,
                    notes: planned.notes,
                    replace: Vec::new(),
                })
            }
            other => Err(unknown_type(other)),
        }
    }
}

#[async_trait]
impl Provider for MageProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn schemas(&self) -> Vec<ResourceSchema> {
        vec![
            ResourceSchema::new(
                project::TYPE,
                "A Mage project's metadata.yaml (remote variables, GCS logging)",
            )
            .force_new("project_dir")
            .attribute("project_uuid")
            .attribute("remote_variables_dir")
            .attribute("logging")
            .attribute("image")
            .attribute("mage_version"),
            ResourceSchema::new(
                pipeline::TYPE,
                "A Mage pipeline: pipelines/<uuid>/metadata.yaml (blocks, conditionals, callbacks)",
            )
            .force_new("project_dir")
            .force_new("uuid")
            .attribute("name")
            .attribute("description")
            .attribute("tags")
            .attribute("variables")
            .attribute("concurrency_config")
            .attribute("notification_config")
            .attribute("blocks")
            .attribute("conditionals")
            .attribute("callbacks"),
            ResourceSchema::new(block::TYPE, "A Mage block's code file")
                .force_new("project_dir")
                .force_new("path")
                .attribute("code"),
            ResourceSchema::new(
                block::FILE_TYPE,
                "A file of the weir runtime, under weir/ in the Mage project",
            )
            .force_new("project_dir")
            .force_new("path")
            .attribute("code"),
            ResourceSchema::new(
                triggers::TYPE,
                "A Mage pipeline's triggers: pipelines/<pipeline>/triggers.yaml",
            )
            .force_new("project_dir")
            .force_new("pipeline")
            .attribute("triggers")
            .computed("retired"),
        ]
    }

    fn delete_notes(&self, type_name: &str) -> Vec<String> {
        if type_name == triggers::TYPE {
            vec!["Mage never deletes a trigger from its database when triggers.yaml goes away: delete this pipeline's triggers in Mage's UI or API".to_string()]
        } else {
            Vec::new()
        }
    }

    async fn configure(&self, config: &ProviderConfig) -> Result<(), ProviderError> {
        self.set_state_lineage(config.state_lineage.as_deref());
        Ok(())
    }

    /// Plans the value, then checks what apply would refuse (a project of another state, a
    /// file weir does not own, a link in the way), so that the plan fails instead of apply.
    fn plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        let planned = plan_value(type_name, prior, desired)?;
        let (project_dir, rel) = location("", type_name, &planned.value)?;
        let lineage = self.inner.lineage();
        self.inner.with_project(&project_dir, |project| {
            project.check_owner(lineage.as_deref())?;
            project.check_writable(&rel)
        })?;
        Ok(planned)
    }

    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
        let inner = Arc::clone(&self.inner);
        let owned = resources.to_vec();
        let count = owned.len();
        match blocking(move || owned.iter().map(|r| inner.read_one(r)).collect::<Vec<_>>()).await {
            Ok(results) => results,
            Err(e) => (0..count).map(|_| Err(e.clone())).collect(),
        }
    }

    async fn create(
        &self,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        retry(&retry_policy(), Idempotency::Idempotent, cancel, |_| {
            let inner = Arc::clone(&self.inner);
            let resource = resource.clone();
            async move { blocking(move || inner.apply(&resource, None)).await? }
        })
        .await
    }

    async fn update(
        &self,
        prior: &Value,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        retry(&retry_policy(), Idempotency::Idempotent, cancel, |_| {
            let inner = Arc::clone(&self.inner);
            let resource = resource.clone();
            let prior = prior.clone();
            async move { blocking(move || inner.apply(&resource, Some(&prior))).await? }
        })
        .await
    }

    async fn delete(&self, resource: &ResourceRef, cancel: &Cancel) -> Result<(), ProviderError> {
        retry(&retry_policy(), Idempotency::Idempotent, cancel, |_| {
            let inner = Arc::clone(&self.inner);
            let resource = resource.clone();
            async move { blocking(move || inner.delete(&resource)).await? }
        })
        .await
    }
}
