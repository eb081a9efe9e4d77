//! `weir rollback [RELEASE]`: points a gcp deployment's code release back at the previous (or
//! the named) release. Shown as a plan first, asked like apply, with the state lock held from
//! the reading of the pointer to the recording of the new one.

use crate::cli::workspace;
use crate::cli::{VarArgs, output};
use crate::release::{Manifest, ReleaseStore};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    dir: &Path,
    vars: &VarArgs,
    release: Option<&str>,
    lock_timeout: &str,
    auto_approve: bool,
    color: bool,
) -> Result<ExitCode, String> {
    if let Some(id) = release {
        crate::release::valid_id(id)?;
    }
    let ws = workspace::open(dir, vars, color)?;
    let address = format!("{}.{}", crate::release::TYPE, ws.model.deployment.name);
    let mut lock = ws
        .backend
        .lock("rollback", workspace::lock_timeout(lock_timeout)?)
        .map_err(|e| e.to_string())?;
    let mut state = lock.read().map_err(|e| e.to_string())?.unwrap_or_default();
    let Some(recorded) = state.resources.get(&address) else {
        return Err(format!(
            "`{address}` is not in state: there is no code release to roll back (only a gcp deployment has one, after its first apply)"
        ));
    };
    let text = |name: &str| {
        recorded.attributes[name]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let store = ReleaseStore::open(&text("bucket"), &text("prefix"), &|name| {
        std::env::var(name).ok()
    })?;
    let (target, current, generation) =
        store.rollback_target(release).map_err(|e| e.to_string())?;
    let shown = describe(&address, current.as_ref(), &target);
    output::print_stdout(&ws.model.redactor.redact(&shown));
    if current.as_ref().is_some_and(|c| c.id == target.id) {
        eprintln!("No changes: `{}` is the current release.", target.id);
        return Ok(ExitCode::SUCCESS);
    }
    if !auto_approve && !confirm()? {
        eprintln!("Rollback cancelled.");
        return Ok(ExitCode::from(1));
    }
    store
        .roll_back(&target, generation)
        .map_err(|e| e.to_string())?;
    if let Some(r) = state.resources.get_mut(&address)
        && let serde_json::Value::Object(attrs) = &mut r.attributes
    {
        attrs.insert("files".into(), serde_json::json!(target.files));
        attrs.insert("release".into(), serde_json::json!(target.id));
    }
    state.bump();
    lock.persist(&state).map_err(|e| e.to_string())?;
    eprintln!(
        "Rollback complete: {address} points at release `{}`. Containers started from now on run it, the scheduler VM restarts Mage on it within a minute; the next `weir apply` publishes the configuration's project again.",
        target.id
    );
    Ok(ExitCode::SUCCESS)
}

/// The rollback as a plan: the pointer's change and the files it changes.
fn describe(address: &str, current: Option<&Manifest>, target: &Manifest) -> String {
    let from = current.map_or("(none)", |c| c.id.as_str());
    let mut text = format!(
        "weir will roll back the code release:\n\n  ~ {address}\n      release: {from} -> {}\n",
        target.id
    );
    let empty = Default::default();
    let old = current.map_or(&empty, |c| &c.files);
    for (path, entry) in &target.files {
        match old.get(path) {
            None => text.push_str(&format!("      + {path}\n")),
            Some(e) if e != entry => text.push_str(&format!("      ~ {path}\n")),
            Some(_) => {}
        }
    }
    for path in old.keys().filter(|p| !target.files.contains_key(*p)) {
        text.push_str(&format!("      - {path}\n"));
    }
    text.push_str("\nPlan: 0 to add, 1 to change, 0 to destroy.\n");
    text
}

fn confirm() -> Result<bool, String> {
    eprint!("Do you want to perform these actions? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}
