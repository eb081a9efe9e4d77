//! `weir show FILE`: render a saved plan.

use crate::cli::output;
use crate::render::{Format, View, render_view};
use std::path::Path;
use std::process::ExitCode;

pub fn run(file: &Path, format: Format, view: View, color: bool) -> Result<ExitCode, String> {
    let saved = crate::plan::file::load(file)?;
    // The saved plan is already masked.
    output::print_stdout(&render_view(
        &saved.plan,
        format,
        output::stdout_color(color),
        view,
    ));
    Ok(ExitCode::SUCCESS)
}
