//! The second stage: the typed domain model. Every block of the language becomes a value here,
//! with its defaults applied and every semantic check of the language (docs/language.md) run. Nothing after this
//! stage sees HCL; nothing here needs the network or credentials (`weir validate`).

mod code;
mod deployment;
mod notification;
mod output;
mod pipeline;
mod schedule;
pub mod values;

use crate::config::{Config, LoadOptions};
use crate::diagnostics::{Diagnostic, Diagnostics, Location};
use crate::redact::Redactor;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use deployment::image_risks;
pub use notification::{Channel, Event, Message, Notification};
pub use pipeline::{
    AddOn, Block, BlockType, Concurrency, Language, OnLimit, Pipeline, RetryPolicy, code_file,
};
pub use schedule::{Schedule, ScheduleType};

/// A validated configuration.
#[derive(Debug)]
pub struct Configuration {
    pub dir: PathBuf,
    pub settings: Settings,
    pub deployment: Deployment,
    pub profiles: Vec<ResourceProfile>,
    pub pipelines: Vec<Pipeline>,
    pub schedules: Vec<Schedule>,
    pub notifications: Vec<Notification>,
    pub outputs: Vec<Output>,
    /// Every secret of this configuration, to scrub from anything printed.
    pub redactor: Redactor,
    /// A hash of every input (files, variable values), to bind saved plans to.
    pub hash: String,
}

impl Configuration {
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    pub fn profile(&self, name: &str) -> Option<&ResourceProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// The `weir { ... }` block.
#[derive(Debug, Clone)]
pub struct Settings {
    pub required_version: Option<String>,
    pub backend: Backend,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// The state file, below the configuration directory.
    Local {
        path: weir_provider_sdk::fs::RelPath,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gcp,
    Local,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Gcp => "gcp",
            Target::Local => "local",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub target: Target,
    pub project_dir: Option<String>,
    pub project: Option<String>,
    pub region: Option<String>,
    pub image: String,
    pub mage_version: String,
    pub labels: BTreeMap<String, String>,
    pub webserver: Webserver,
    pub scheduler: Scheduler,
    pub database: Database,
    pub storage: Option<Storage>,
    /// `lifecycle { prevent_destroy }`: `true` unless set, for `gcp` (its database and bucket);
    /// `false` unless set, for `local` (its Mage project).
    pub prevent_destroy: bool,
    /// `runtime { }`: whether the weir runtime ships with the project, and whether an image
    /// with a Mage version it was not tested with may run it.
    pub runtime: Runtime,
    /// Where its secrets are (its own attributes and those of `storage`).
    pub sensitive: crate::config::eval::Sensitivity,
}

/// The weir runtime (a Python package shipped in the Mage project, see `docs/runtime.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    /// `enabled`, default true: blocks with a profile run on its Cloud Run job, and
    /// notification templates get the runtime's placeholders.
    pub enabled: bool,
    /// `allow_untested_mage`, default false: deploy an image whose Mage version the runtime was
    /// not tested with (the runtime still checks Mage's internals when it starts).
    pub allow_untested_mage: bool,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            enabled: true,
            allow_untested_mage: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webserver {
    pub cpu: u32,
    pub memory_mib: u64,
    pub min_instances: u32,
    pub max_instances: u32,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    pub machine_type: String,
    pub zone: Option<String>,
    pub disk_size_gb: u32,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub tier: String,
    pub version: String,
    pub disk_size_gb: u32,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub bucket: String,
    pub location: String,
    /// How many code releases of a `gcp` deployment the bucket keeps (`keep_releases`).
    pub keep_releases: u32,
}

/// A Cloud Run job that blocks run on.
#[derive(Debug, Clone)]
pub struct ResourceProfile {
    pub name: String,
    pub cpu: u32,
    pub memory_mib: u64,
    pub region: String,
    pub timeout_secs: u64,
    pub max_retries: u32,
    pub env: BTreeMap<String, String>,
    pub env_sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub value: Json,
    pub description: String,
    pub sensitive: bool,
    /// The value is only known after apply.
    pub unknown: bool,
    /// Where the value is read once it is known: an attribute of a resource (lowering knows
    /// which resource holds, e.g., the web server's URL).
    pub from: Option<OutputSource>,
}

/// An attribute of a resource that an output shows: known once that resource is applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputSource {
    /// The resource's address, e.g. `google_cloud_run_v2_service.webserver`.
    pub address: String,
    /// The attribute's path in the resource's attributes, e.g. `["uri"]`.
    pub path: Vec<String>,
}

/// Loads and validates a configuration: the whole of `weir validate`.
pub fn load(opts: &LoadOptions) -> (Option<Configuration>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let config = crate::config::load(opts, &mut diags);
    let model = config.as_ref().and_then(|c| build(c, opts, &mut diags));
    if let Some(config) = &config {
        diags.redact(&config.redactor);
        diags = crate::config::mask_secrets(diags, &config.secrets);
    }
    diags.sort();
    let model = if diags.has_errors() { None } else { model };
    (model, diags)
}

/// Builds the model from a loaded configuration.
fn build(config: &Config, opts: &LoadOptions, diags: &mut Diagnostics) -> Option<Configuration> {
    let settings = deployment::settings(config, diags);
    let deployment = deployment::deployment(config, diags);
    let profiles = deployment::profiles(config, deployment.as_ref(), diags);
    let mut pipelines = pipeline::pipelines(config, &profiles, diags);
    let schedules = schedule::schedules(config, &pipelines, diags);
    let runtime = deployment.as_ref().map(|d| d.runtime).unwrap_or_default();
    let notifications = notification::notifications(config, &pipelines, runtime.enabled, diags);
    let outputs = output::outputs(config, deployment.as_ref(), diags);

    // A profile no block uses is a warning; so is one that blocks use on the local target, where
    // it has no effect. The second is a remark on the whole deployment, not a mistake of its
    // own: it is given once the configuration is otherwise valid, not on top of its errors.
    let local = deployment
        .as_ref()
        .is_some_and(|d| d.target == Target::Local);
    let no_errors = !diags.has_errors();
    for (profile, loc) in &profiles {
        let users: Vec<String> = pipelines
            .iter()
            .flat_map(|p| {
                let pipeline = (p.profile.as_deref() == Some(profile.name.as_str()))
                    .then(|| format!("pipeline `{}`", p.name));
                let blocks = p
                    .blocks
                    .iter()
                    .filter(|b| b.profile.as_deref() == Some(profile.name.as_str()))
                    .map(|b| format!("block `{}.{}`", p.name, b.uuid));
                pipeline.into_iter().chain(blocks)
            })
            .collect();
        if local && no_errors && !users.is_empty() {
            diags.push(
                Diagnostic::warning(format!(
                    "resource profile `{}` has no effect on the local target",
                    profile.name
                ))
                .at(loc)
                .help(format!(
                    "Mage runs every block of a local project in its own processes; the `profile` of {} is ignored. It applies once the deployment has `target = \"gcp\"`",
                    users.join(", ")
                )),
            );
        }
        if !local && !runtime.enabled && no_errors && !users.is_empty() {
            diags.push(
                Diagnostic::warning(format!(
                    "resource profile `{}` has no effect without the weir runtime",
                    profile.name
                ))
                .at(loc)
                .help(format!(
                    "the runtime runs a block with a profile on the profile's Cloud Run job; with `runtime {{ enabled = false }}` Mage runs {} in the scheduler. Remove `enabled = false` from the deployment's `runtime` block, or the profile",
                    users.join(", ")
                )),
            );
        }
        if users.is_empty() {
            diags.push(
                Diagnostic::warning(format!(
                    "resource profile `{}` is not used by any block",
                    profile.name
                ))
                .at(loc)
                .help(format!(
                    "set `profile = resource_profile.{}` on a block or pipeline, or remove the profile (it is a Cloud Run job that costs nothing idle, but clutters the deployment)",
                    profile.name
                )),
            );
        }
    }
    // Blocks inherit the pipeline's profile.
    for p in &mut pipelines {
        for b in &mut p.blocks {
            if b.profile.is_none() {
                b.profile = p.profile.clone();
            }
        }
    }

    let deployment = deployment?;
    let settings = settings?;
    Some(Configuration {
        dir: config.dir.clone(),
        settings,
        deployment,
        profiles: profiles.into_iter().map(|(p, _)| p).collect(),
        pipelines,
        schedules,
        notifications,
        outputs,
        redactor: config.redactor.clone(),
        hash: input_hash(config, opts),
    })
}

/// A hash of the configuration files, the code they read and the variable inputs.
fn input_hash(config: &Config, opts: &LoadOptions) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in &config.files {
        h.update(f.file.display_path.as_bytes());
        h.update([0]);
        h.update(f.file.text.as_bytes());
        h.update([0]);
    }
    for v in &opts.vars {
        h.update(v.as_bytes());
        h.update([0]);
    }
    for (k, v) in &opts.env {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
        h.update([0]);
    }
    for p in &opts.var_files {
        // A FIFO (`--var-file <(...)`) was read once already; opening it again would wait for
        // another writer.
        if std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && let Ok(bytes) = std::fs::read(p)
        {
            h.update(&bytes);
        }
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An error at a value that failed a check. The check's message may quote the value: when the
/// value derives from a secret, the error says what is wrong without it ("the value
/// (sensitive) is not a duration"), so that no diagnostic can echo a secret, even a derived
/// one the redactor does not know.
pub(crate) fn value_error<T>(
    value: &crate::config::body::Spanned<T>,
    message: impl Into<String>,
    expected: &str,
) -> Diagnostic {
    if value.sensitive {
        return Diagnostic::error(format!("the value (sensitive) is not {expected}"))
            .at(&value.loc)
            .help(format!(
                "the value is computed from a sensitive variable, so weir does not show it: check that the variable's value gives {expected}"
            ));
    }
    Diagnostic::error(message).at(&value.loc)
}

/// Reports an error about something missing from the whole configuration, at line 1 of the
/// first file.
fn missing_everywhere(config: &Config, message: String, help: &str) -> Diagnostic {
    Diagnostic::error(message)
        .at_opt(config.start().as_ref())
        .help(help.to_string())
}

/// Checks a name label against Mage's uuid rule: `^[a-z][a-z0-9_]*$`.
fn check_uuid(kind: &str, name: &str, loc: &Location, diags: &mut Diagnostics) -> bool {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter".to_string())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
            .map(|c| {
                format!("it contains `{c}`; only lowercase letters, digits and `_` are allowed")
            })
    };
    match why {
        Some(why) => {
            let suggestion: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            diags.push(
                Diagnostic::error(format!("`{name}` is not a valid {kind} name: {why}"))
                    .at(loc)
                    .help(format!(
                        "{kind} names become Mage uuids and file names; try \"{}\"",
                        suggestion.trim_start_matches(|c: char| !c.is_ascii_lowercase())
                    )),
            );
            false
        }
        None => true,
    }
}
