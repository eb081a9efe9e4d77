//! `weir apply [PLAN]` and `weir destroy`: execute a plan, saved or made now.

use crate::apply::reporter::{PlainReporter, Reporter, TerminalReporter};
use crate::apply::{ApplyOptions, apply};
use crate::cli::workspace::{self};
use crate::cli::{PlanArgs, output};
use crate::plan::Plan;
use crate::render::{Format, render};
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
    let mut ws = workspace::open(dir, &args.vars, color)?;
    let timeout = workspace::lock_timeout(&args.lock_timeout)?;
    let plan = match plan_file {
        Some(path) => {
            let file = crate::plan::file::load(path)?;
            let lock = ws
                .backend
                .lock("apply", timeout)
                .map_err(|e| e.to_string())?;
            let state = lock.read().map_err(|e| e.to_string())?;
            file.check_fresh(state.as_ref(), &ws.config_hash)
                .map_err(|why| format!("cannot apply {}: {why}", path.display()))?;
            drop(lock);
            file.restore(&ws.instances)?
        }
        None => {
            let plan = crate::cli::commands::plan::make_plan(
                dir,
                &mut ws,
                args,
                destroy,
                if destroy { "destroy" } else { "apply" },
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
    execute(&ws, &plan, args, timeout, color)
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
    ws: &workspace::Workspace,
    plan: &Plan,
    args: &PlanArgs,
    timeout: std::time::Duration,
    color: bool,
) -> Result<ExitCode, String> {
    let mut lock = ws
        .backend
        .lock("apply", timeout)
        .map_err(|e| e.to_string())?;
    let mut state = lock.read().map_err(|e| e.to_string())?.unwrap_or_default();
    // A plan made now was made against this state; a saved one was checked above, under the
    // lock, and nothing can have changed since unless another weir raced in between.
    if plan.lineage.as_ref().is_some_and(|l| *l != state.lineage)
        || plan.serial.is_some_and(|s| s != state.serial)
    {
        return Err("the state changed while the plan was being approved: make a new plan".into());
    }
    let reporter: Box<dyn Reporter> =
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Box::new(TerminalReporter::new(ws.model.redactor.clone()))
        } else {
            Box::new(PlainReporter {
                redactor: ws.model.redactor.clone(),
            })
        };
    let rt = workspace::runtime()?;
    let opts = ApplyOptions {
        parallelism: args.parallelism.max(1),
    };
    let outcome = rt.block_on(apply(
        plan,
        ws.providers.clone(),
        &mut lock,
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
        } else {
            eprintln!(
                "State holds everything that finished; fix the cause and run weir apply again."
            );
        }
        Ok(ExitCode::from(1))
    }
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
