//! `weir validate`: load and check the configuration; print every diagnostic.

use crate::cli::{VarArgs, output};
use crate::config::LoadOptions;
use std::path::Path;
use std::process::ExitCode;

pub fn load_options(dir: &Path, vars: &VarArgs) -> LoadOptions {
    let mut opts = LoadOptions::new(dir);
    opts.vars = vars.vars.clone();
    opts.var_files = vars.var_files.clone();
    opts
}

pub fn run(dir: &Path, vars: &VarArgs, json: bool, color: bool) -> Result<ExitCode, String> {
    let (model, diags) = crate::model::load(&load_options(dir, vars));
    if json {
        let items: Vec<_> = diags.iter().map(|d| d.to_json()).collect();
        let text = serde_json::to_string_pretty(&items).map_err(|e| e.to_string())?;
        output::print_stdout(&format!("{text}\n"));
    } else {
        output::print_diagnostics(&diags, color);
        if let Some(model) = &model {
            eprintln!(
                "The configuration is valid: {} pipeline{}, {} schedule{}, {} resource profile{}.",
                model.pipelines.len(),
                if model.pipelines.len() == 1 { "" } else { "s" },
                model.schedules.len(),
                if model.schedules.len() == 1 { "" } else { "s" },
                model.profiles.len(),
                if model.profiles.len() == 1 { "" } else { "s" },
            );
        }
    }
    Ok(if diags.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
