//! `weir apply [PLAN]` and `weir destroy`: execute a plan, saved or made now.

use crate::apply::reporter::{PlainReporter, Reporter, TerminalReporter};
use crate::apply::{ApplyOptions, apply};
use crate::cli::workspace::{self};
use crate::cli::{PlanArgs, output};
use crate::plan::Plan;
use crate::plan::file::STALE;
use crate::render::{Format, render};
use crate::state::{State, StateSession};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    dir: &Path,
    args: &PlanArgs,
    plan_file: Option<&Path>,
    auto_approve: bool,
    destroy: bool,
    color: bool,
) -> Result<ExitCode, String> {
    let saved = plan_file
        .map(|path| crate::plan::file::load(path).map(|file| (path, file)))
        .transpose()?;
    let mut ws = workspace::open(dir, &args.vars, color)?;
    let timeout = workspace::lock_timeout(&args.lock_timeout)?;
    // The lock is held from the plan to the end of the apply (while the question waits for its
    // answer, too): no other weir can change the state in between and leave this one applying
    // a stale plan over it.
    let mut lock = ws
        .backend
        .lock(if destroy { "destroy" } else { "apply" }, timeout)
        .map_err(|e| e.to_string())?;
    let prior = lock.read().map_err(|e| e.to_string())?;
    let plan = match saved {
        Some((path, file)) => {
            let cannot = |why: String| format!("cannot apply {}: {why}", path.display());
            let state = file.check_bound(prior.as_ref()).map_err(cannot)?;
            if let Err(why) = file.check_current(state, &ws.config_hash) {
                return Ok(stale(&why));
            }
            // Plan again from the configuration, against the same state, with the same options:
            // what runs is derived from the configuration, and only when it is the saved plan.
            let options = file.options.to_options(args.parallelism.max(1));
            let fresh =
                crate::cli::commands::plan::make_plan(dir, &mut ws, prior.as_ref(), &options)?;
            if let Err(why) = file.check_same(&fresh, &state.key) {
                return Ok(stale(&ws.model.redactor.redact(&format!("{STALE} {why}"))));
            }
            fresh
        }
        None => {
            let plan = crate::cli::commands::plan::make_plan(
                dir,
                &mut ws,
                prior.as_ref(),
                &args.options(destroy),
            )?;
            output::print_stdout(&ws.model.redactor.redact(&render(
                &plan,
                Format::Text,
                output::stdout_color(color),
            )));
            if !plan.has_changes() {
                return Ok(ExitCode::SUCCESS);
            }
            if !auto_approve && !confirm(destroy)? {
                eprintln!("{} cancelled.", if destroy { "Destroy" } else { "Apply" });
                return Ok(ExitCode::from(1));
            }
            plan
        }
    };
    execute(
        dir,
        &ws,
        &plan,
        args,
        lock,
        prior.unwrap_or_default(),
        color,
    )
}

/// Exit code of an apply that refused a stale saved plan: CI tells it from other failures, to
/// say "plan again" rather than "something broke".
pub const STALE_EXIT: u8 = 3;

/// Reports a stale saved plan, as the line `the saved plan is stale: …` (what CI looks for),
/// and gives its exit code. The lock is released as the caller returns.
fn stale(why: &str) -> ExitCode {
    eprintln!("{why}");
    ExitCode::from(STALE_EXIT)
}

fn confirm(destroy: bool) -> Result<bool, String> {
    let question = if destroy {
        "Do you really want to destroy everything this configuration manages? Only 'yes' will be accepted: "
    } else {
        "Do you want to perform these actions? Only 'yes' will be accepted: "
    };
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}

fn execute(
    dir: &Path,
    ws: &workspace::Workspace,
    plan: &Plan,
    args: &PlanArgs,
    mut lock: Box<dyn StateSession>,
    mut state: State,
    color: bool,
) -> Result<ExitCode, String> {
    let reporter: Box<dyn Reporter> =
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Box::new(TerminalReporter::new(ws.model.redactor.clone()))
        } else {
            Box::new(PlainReporter {
                redactor: ws.model.redactor.clone(),
            })
        };
    let rt = workspace::runtime()?;
    let opts = ApplyOptions::new(args.parallelism.max(1));
    let outcome = rt.block_on(apply(
        plan,
        ws.providers.clone(),
        lock.as_mut(),
        &mut state,
        &opts,
        reporter.as_ref(),
    ));
    let count = |a: crate::plan::Action| outcome.done.iter().filter(|(_, x)| *x == a).count();
    use crate::plan::Action::*;
    // As Terraform words it: a destroy counts only what it destroyed.
    let (what, summary) = if plan.destroy {
        ("Destroy", format!("{} destroyed.", count(Delete)))
    } else {
        (
            "Apply",
            format!(
                "{} added, {} changed, {} replaced, {} destroyed.",
                count(Create),
                count(Update),
                count(Replace),
                count(Delete)
            ),
        )
    };
    if let Some(e) = &outcome.state_error {
        output::error(&format!("saving state failed: {e}"), color);
    }
    if outcome.success() {
        eprintln!("{what} complete! Resources: {summary}");
        if !plan.destroy {
            print_local_runtime_hint(dir, ws);
        }
        print_outputs(&state, color);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("\n{what} incomplete. Resources: {summary}");
        for (address, _, error) in &outcome.failed {
            eprintln!("  failed:  {address}: {}", ws.model.redactor.redact(error));
        }
        for (address, because) in &outcome.skipped {
            eprintln!("  skipped: {address} (after {because})");
        }
        if outcome.interrupted {
            eprintln!(
                "Interrupted: state holds everything that finished; run weir apply again to complete."
            );
            // As a shell reports a process ended by a signal (SIGTERM: 143), so that CI sees a
            // cancelled job; the lock is released all the same (on return).
            if let Some(signal) = outcome.signal.and_then(|s| u8::try_from(128 + s).ok()) {
                return Ok(ExitCode::from(signal));
            }
        } else {
            eprintln!(
                "State holds everything that finished; fix the cause and run weir apply again."
            );
        }
        Ok(ExitCode::from(1))
    }
}

/// How to start Mage on a local project with the weir runtime, which Mage loads only when its
/// processes are started with it (`docs/runtime.md`); paths as seen from where weir runs
/// (`dir` is the configuration directory, `-C`).
fn print_local_runtime_hint(dir: &Path, ws: &workspace::Workspace) {
    let d = &ws.model.deployment;
    if d.target != crate::model::Target::Local || !d.runtime.enabled {
        return;
    }
    let project_dir = d.project_dir.as_deref().unwrap_or("mage_project");
    let project = if dir == Path::new(".") {
        Path::new(project_dir).to_path_buf()
    } else {
        dir.join(project_dir)
    };
    let project = project.display();
    let line = format!(
        "Start Mage with the weir runtime: WEIR_RUNTIME=1 PYTHONPATH={project}/{runtime} mage start {project}",
        runtime = weir_provider_mage::runtime::DIR
    );
    eprintln!("{}", ws.model.redactor.redact(&line));
}

fn print_outputs(state: &crate::state::State, _color: bool) {
    if state.outputs.is_empty() {
        return;
    }
    let mut text = String::from("\nOutputs:\n\n");
    for (name, o) in &state.outputs {
        let value = if o.sensitive {
            crate::redact::SENSITIVE.to_string()
        } else {
            o.value.to_string()
        };
        text.push_str(&format!("{name} = {value}\n"));
    }
    output::print_stdout(&text);
}
