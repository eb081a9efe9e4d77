//! The command line: argument parsing and dispatch to one module per command. Commands wire
//! options to the stages; they hold no logic of their own.

mod commands;
mod output;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "weir",
    version,
    about = "Plan and apply Mage pipelines and the Google Cloud infrastructure they run on",
    long_about = None
)]
pub struct Cli {
    /// The configuration directory.
    #[arg(short = 'C', long = "chdir", global = true, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,

    /// Never print colour (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Where variable values come from.
#[derive(Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; later wins).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file of `name = value` lines (repeatable, in order).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the configuration: syntax, types, references, and every rule of the language.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
        /// Print the diagnostics as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite the configuration files in the canonical format.
    Fmt {
        /// Change nothing; exit 1 and name the files that are not formatted.
        #[arg(long)]
        check: bool,
        /// Show the changes as a diff.
        #[arg(long)]
        diff: bool,
    },
    /// Print the version.
    Version,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = output::use_color(cli.no_color);
    let result = match &cli.command {
        Command::Validate { vars, json } => commands::validate::run(&cli.dir, vars, *json, color),
        Command::Fmt { check, diff } => commands::fmt::run(&cli.dir, *check, *diff, color),
        Command::Version => {
            println!("weir {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            output::error(&err, color);
            ExitCode::from(1)
        }
    }
}
