//! `weir state list | show ADDR | rm ADDR`, `weir force-unlock ID`, `weir output`, `weir graph`.

use crate::cli::workspace::{self, REPORTED};
use crate::cli::{VarArgs, output};
use crate::plan::sensitive::mask;
use std::path::Path;
use std::process::ExitCode;

pub fn list(dir: &Path, vars: &VarArgs, color: bool) -> Result<ExitCode, String> {
    let backend = workspace::backend_only(dir, vars, color)?;
    let state = backend.read_unlocked().map_err(|e| e.to_string())?;
    let mut text = String::new();
    for address in state.iter().flat_map(|s| s.resources.keys()) {
        text.push_str(address);
        text.push('\n');
    }
    output::print_stdout(&text);
    Ok(ExitCode::SUCCESS)
}

pub fn show(dir: &Path, vars: &VarArgs, address: &str, color: bool) -> Result<ExitCode, String> {
    let backend = workspace::backend_only(dir, vars, color)?;
    let state = backend.read_unlocked().map_err(|e| e.to_string())?;
    let Some(r) = state.as_ref().and_then(|s| s.resources.get(address)) else {
        return Err(format!(
            "no resource `{address}` in state (see `weir state list`)"
        ));
    };
    let shown = serde_json::json!({
        "address": address,
        "type": r.resource_type,
        "provider": r.provider,
        "attributes": mask(&r.attributes, &r.sensitive_paths),
        "dependencies": r.dependencies,
    });
    output::print_stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn rm(
    dir: &Path,
    vars: &VarArgs,
    addresses: &[String],
    lock_timeout: &str,
    color: bool,
) -> Result<ExitCode, String> {
    let backend = workspace::backend_only(dir, vars, color)?;
    let mut lock = backend
        .lock("state rm", workspace::lock_timeout(lock_timeout)?)
        .map_err(|e| e.to_string())?;
    let Some(mut state) = lock.read().map_err(|e| e.to_string())? else {
        return Err("there is no state yet".into());
    };
    for address in addresses {
        if state.resources.remove(address).is_none() {
            return Err(format!(
                "no resource `{address}` in state (see `weir state list`)"
            ));
        }
    }
    state.bump();
    lock.persist(&state).map_err(|e| e.to_string())?;
    for address in addresses {
        eprintln!(
            "Removed {address} from state. The object itself is untouched; weir no longer manages it."
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn force_unlock(dir: &Path, vars: &VarArgs, id: &str, color: bool) -> Result<ExitCode, String> {
    let backend = workspace::backend_only(dir, vars, color)?;
    let holder = backend.force_unlock(id).map_err(|e| e.to_string())?;
    eprintln!(
        "Removed the lock on {} held by {}.",
        backend.location(),
        holder.describe()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn outputs(
    dir: &Path,
    vars: &VarArgs,
    name: Option<&str>,
    json: bool,
    color: bool,
) -> Result<ExitCode, String> {
    let backend = workspace::backend_only(dir, vars, color)?;
    let state = backend
        .read_unlocked()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if let Some(name) = name {
        let Some(o) = state.outputs.get(name) else {
            return Err(format!(
                "no output `{name}` (outputs are recorded by weir apply)"
            ));
        };
        // Asking for one output by name is how scripts read it: print the value itself, except
        // a secret, which weir never prints.
        let text = match &o.value {
            _ if o.sensitive => crate::redact::SENSITIVE.to_string(),
            serde_json::Value::String(s) if !json => s.clone(),
            v => v.to_string(),
        };
        output::print_stdout(&format!("{text}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        let map: serde_json::Map<String, serde_json::Value> = state
            .outputs
            .iter()
            .map(|(k, o)| {
                let value = if o.sensitive {
                    serde_json::Value::String(crate::redact::SENSITIVE.into())
                } else {
                    o.value.clone()
                };
                (
                    k.clone(),
                    serde_json::json!({"value": value, "sensitive": o.sensitive}),
                )
            })
            .collect();
        output::print_stdout(&format!("{}\n", serde_json::Value::Object(map)));
    } else {
        let mut text = String::new();
        for (k, o) in &state.outputs {
            let value = if o.sensitive {
                crate::redact::SENSITIVE.to_string()
            } else {
                o.value.to_string()
            };
            text.push_str(&format!("{k} = {value}\n"));
        }
        output::print_stdout(&text);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn graph(dir: &Path, vars: &VarArgs, color: bool) -> Result<ExitCode, String> {
    let ws = workspace::open(dir, vars, color)?;
    let g = crate::graph::ResourceGraph::from_instances(&ws.instances)?;
    output::print_stdout(&g.to_dot());
    let _ = REPORTED;
    Ok(ExitCode::SUCCESS)
}
