//! `weir plan`: show what apply would change; optionally save the plan.

use crate::cli::workspace::{self, Workspace};
use crate::cli::{PlanArgs, output};
use crate::plan::Plan;
use crate::plan::planner::{PlanInput, PlanOptions};
use crate::render::{Format, render};
use std::path::Path;
use std::process::ExitCode;

impl PlanArgs {
    pub fn options(&self, destroy: bool) -> PlanOptions {
        PlanOptions {
            refresh: self.refresh,
            parallelism: self.parallelism.max(1),
            targets: self.targets.clone(),
            replace: self.replace.clone(),
            destroy,
        }
    }
}

/// Locks state, reads it, and makes a plan. The lock is released before returning.
pub fn make_plan(
    dir: &Path,
    ws: &mut Workspace,
    args: &PlanArgs,
    destroy: bool,
    operation: &str,
) -> Result<Plan, String> {
    let timeout = workspace::lock_timeout(&args.lock_timeout)?;
    let lock = ws
        .backend
        .lock(operation, timeout)
        .map_err(|e| e.to_string())?;
    let prior = lock.read().map_err(|e| e.to_string())?;
    let rt = workspace::runtime()?;
    let input = PlanInput {
        // The desired instances move into the plan.
        desired: std::mem::take(&mut ws.instances),
        outputs: &ws.model.outputs,
        prior: prior.as_ref(),
        config_hash: ws.config_hash.clone(),
        git_commit: workspace::git_commit(dir),
    };
    let plan = rt
        .block_on(crate::plan::planner::plan(
            input,
            &ws.providers,
            &args.options(destroy),
        ))
        .map_err(|errors| {
            let text: Vec<String> = errors.iter().map(|e| ws.model.redactor.redact(e)).collect();
            format!("cannot make the plan:\n  {}", text.join("\n  "))
        })?;
    drop(lock);
    Ok(plan)
}

pub fn run(
    dir: &Path,
    args: &PlanArgs,
    out: Option<&Path>,
    format: Format,
    detailed: bool,
    destroy: bool,
    color: bool,
) -> Result<ExitCode, String> {
    let mut ws = workspace::open(dir, &args.vars, color)?;
    let plan = make_plan(dir, &mut ws, args, destroy, "plan")?;
    let text = render(&plan, format, output::stdout_color(color));
    output::print_stdout(&ws.model.redactor.redact(&text));
    if let Some(path) = out {
        crate::plan::file::save(&plan, path)?;
        eprintln!(
            "Saved the plan to {}. Apply exactly this plan with: weir apply {}",
            path.display(),
            path.display()
        );
    }
    Ok(if detailed && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
