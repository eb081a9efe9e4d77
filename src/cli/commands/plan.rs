//! `weir plan`: show what apply would change; optionally save the plan.

use crate::cli::workspace::{self, Workspace};
use crate::cli::{PlanArgs, output};
use crate::plan::Plan;
use crate::plan::planner::{PlanInput, PlanOptions};
use crate::render::{Format, View, render_view};
use crate::state::State;
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

/// Makes a plan against `prior`, the state read under the lock, which the caller holds until
/// it is done with the plan (saved, or applied). The plan's configuration hash is keyed with
/// the state's key (a throwaway one without a keyed state): the raw hash covers the secrets.
pub fn make_plan(
    dir: &Path,
    ws: &mut Workspace,
    prior: Option<&State>,
    opts: &PlanOptions,
) -> Result<Plan, String> {
    let key = match prior {
        Some(state) if !state.key.is_empty() => state.key.clone(),
        _ => State::new().key,
    };
    let rt = workspace::runtime()?;
    let input = PlanInput {
        // The desired instances move into the plan.
        desired: std::mem::take(&mut ws.instances),
        outputs: &ws.model.outputs,
        prior,
        config_hash: crate::plan::file::config_digest(&key, &ws.config_hash),
        git_commit: workspace::git_commit(dir),
    };
    rt.block_on(crate::plan::planner::plan(input, &ws.providers, opts))
        .map(|mut plan| {
            plan.deployment = Some(ws.model.deployment.name.clone());
            plan
        })
        .map_err(|errors| {
            let text: Vec<String> = errors.iter().map(|e| ws.model.redactor.redact(e)).collect();
            format!("cannot make the plan:\n  {}", text.join("\n  "))
        })
}

/// How `weir plan` prints the plan and what its exit code tells.
pub struct Printed {
    pub format: Format,
    pub view: View,
    /// `--detailed-exitcode`: exit 2 when the plan has changes.
    pub detailed_exitcode: bool,
}

pub fn run(
    dir: &Path,
    args: &PlanArgs,
    out: Option<&Path>,
    printed: &Printed,
    destroy: bool,
    color: bool,
) -> Result<ExitCode, String> {
    let mut ws = workspace::open(dir, &args.vars, color)?;
    let timeout = workspace::lock_timeout(&args.lock_timeout)?;
    // Held until the plan is saved: the plan is made against exactly the state it names.
    let mut lock = ws
        .backend
        .lock("plan", timeout)
        .map_err(|e| e.to_string())?;
    let prior = match out {
        // A saved plan is sealed with the state's key: the state gets one (an empty state of
        // serial 0 is created when there is none yet).
        Some(_) => Some(lock.read_keyed().map_err(|e| e.to_string())?),
        None => lock.read().map_err(|e| e.to_string())?,
    };
    let options = args.options(destroy);
    let plan = make_plan(dir, &mut ws, prior.as_ref(), &options)?;
    let text = render_view(
        &plan,
        printed.format,
        output::stdout_color(color),
        printed.view,
    );
    output::print_stdout(&ws.model.redactor.redact(&text));
    if let (Some(path), Some(state)) = (out, &prior) {
        crate::plan::file::save(&plan, &options, &state.key, path)?;
        eprintln!(
            "Saved the plan to {}. Apply exactly this plan with: weir apply {}",
            path.display(),
            path.display()
        );
    }
    drop(lock);
    Ok(if printed.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
