//! What the stateful commands share: load and check the configuration, lower it, open its state
//! backend and providers. Problems come back as one message; warnings are printed here.

use crate::cli::{VarArgs, output};
use crate::lower::ResourceInstance;
use crate::model::{Backend, Configuration};
use crate::providers::Providers;
use crate::state::gcs::GcsBackend;
use crate::state::{LocalBackend, StateBackend, default_path};
use std::path::Path;
use std::sync::Arc;

pub struct Workspace {
    pub model: Configuration,
    /// What saved plans are bound to: `lower::fingerprint`.
    pub config_hash: String,
    pub instances: Vec<ResourceInstance>,
    pub backend: Box<dyn StateBackend>,
    pub providers: Arc<Providers>,
}

/// An error already reported to the user (diagnostics were printed).
pub const REPORTED: &str = "";

pub fn open(dir: &Path, vars: &VarArgs, color: bool) -> Result<Workspace, String> {
    let opts = crate::cli::commands::validate::load_options(dir, vars);
    let (model, diags) = crate::model::load(&opts);
    if !diags.is_empty() {
        output::print_diagnostics(&diags, color);
    }
    let Some(mut model) = model else {
        return Err(REPORTED.into());
    };
    let instances = match crate::lower::lower(&mut model) {
        Ok(i) => i,
        Err(diags) => {
            output::print_diagnostics(&diags, color);
            return Err(REPORTED.into());
        }
    };
    let backend = backend_for(dir, &model)?;
    let config = crate::providers::provider_config(&model, &|name| std::env::var(name).ok())?;
    let providers = Arc::new(Providers::for_config(dir, config));
    let config_hash = crate::lower::fingerprint(&model, &instances);
    Ok(Workspace {
        model,
        config_hash,
        instances,
        backend,
        providers,
    })
}

pub fn backend_for(dir: &Path, model: &Configuration) -> Result<Box<dyn StateBackend>, String> {
    match &model.settings.backend {
        Backend::Local { path } => LocalBackend::open(dir, path)
            .map(|b| Box::new(b) as Box<dyn StateBackend>)
            .map_err(|e| e.to_string()),
        Backend::Gcs { bucket, prefix } => {
            GcsBackend::open(bucket, prefix, &|name| std::env::var(name).ok())
                .map(|b| Box::new(b) as Box<dyn StateBackend>)
        }
    }
}

/// The state backend of a directory without evaluating the whole configuration (for `state`,
/// `output` and `force-unlock`): the default path unless a `backend` block says otherwise.
pub fn backend_only(
    dir: &Path,
    vars: &VarArgs,
    color: bool,
) -> Result<Box<dyn StateBackend>, String> {
    let default = || {
        LocalBackend::open(dir, &default_path())
            .map(|b| Box::new(b) as Box<dyn StateBackend>)
            .map_err(|e| e.to_string())
    };
    let opts = crate::cli::commands::validate::load_options(dir, vars);
    let (model, diags) = crate::model::load(&opts);
    match model {
        Some(model) => backend_for(dir, &model),
        None if diags.has_errors() && !dir.join(".weir/state.json").exists() => {
            output::print_diagnostics(&diags, color);
            Err(REPORTED.into())
        }
        None => default(),
    }
}

/// The git commit of the configuration directory, when it is in a git repository.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    crate::model::values::parse_duration(text)
        .map(std::time::Duration::from_secs)
        .map_err(|e| format!("--lock-timeout: {e}"))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
