//! The command line: argument parsing and dispatch to one module per command. Commands wire
//! options to the stages; they hold no logic of their own.

mod commands;
mod output;
mod workspace;

use crate::diagnostics::Diagnostic;
use crate::render::{Format, Marker, View};

pub use commands::validate::DiagnosticsFormat;

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
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
    #[arg(
        short = 'C',
        long = "chdir",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
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

/// Options of every command that plans.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Read the live objects before planning; `--refresh=false` trusts the state instead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub refresh: bool,
    /// At most this many provider operations at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Plan only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Replace this resource even if it did not change (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// Wait this long for the state lock (e.g. 30s, 5m) instead of failing at once.
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the configuration: syntax, types, references, and every rule of the language.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
        /// How to print the diagnostics: `github` prints one GitHub Actions workflow command
        /// (`::error file=…,line=…::message`) per diagnostic, which GitHub shows as annotations.
        #[arg(long, value_enum, default_value = "text")]
        format: DiagnosticsFormat,
        /// Same as `--format json`.
        #[arg(long, conflicts_with = "format")]
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
    /// Show what apply would change.
    Plan {
        #[command(flatten)]
        args: PlanArgs,
        /// Save the plan to FILE, for `weir apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How to print the plan.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Text and Markdown: the summary and one line per changed address, no diffs.
        #[arg(long)]
        compact: bool,
        /// Markdown: head the plan with the drift marker (`<!-- weir:drift deployment=NAME -->`)
        /// instead of the pull-request one, for the body of a drift issue.
        #[arg(long)]
        drift_marker: bool,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan to destroy everything this configuration manages.
        #[arg(long)]
        destroy: bool,
    },
    /// Apply a saved plan, or make a plan, show it, ask, and apply it.
    Apply {
        /// A plan saved with `weir plan --out FILE`: apply exactly that.
        plan: Option<PathBuf>,
        #[command(flatten)]
        args: PlanArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Destroy everything this configuration manages.
    Destroy {
        #[command(flatten)]
        args: PlanArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Render a saved plan.
    Show {
        /// The plan file.
        plan: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Same as `--format json`.
        #[arg(long)]
        json: bool,
        /// Text and Markdown: the summary and one line per changed address, no diffs.
        #[arg(long)]
        compact: bool,
    },
    /// Print the outputs recorded by the last apply.
    Output {
        /// One output: its value alone.
        name: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[arg(long)]
        json: bool,
    },
    /// Inspect or edit the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Remove a state lock left by a weir that cannot release it (gcs backend), by its lock id.
    ForceUnlock {
        /// The lock id, as the error that refused the lock names it.
        id: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Point a gcp deployment's code release back at the previous release (or RELEASE),
    /// shown as a plan and asked first.
    Rollback {
        /// The release to point at (an id from the bucket's `releases/`); the one before the
        /// current release when not given.
        release: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
        /// Wait this long for the state lock (e.g. 30s, 5m) instead of failing at once.
        #[arg(long, default_value = "0s", value_name = "DURATION")]
        lock_timeout: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Print the resource dependency graph in DOT.
    Graph {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List the addresses in state.
    List {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show one resource's recorded attributes (secrets masked).
    Show {
        address: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Forget resources without touching the objects.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[arg(long, default_value = "0s", value_name = "DURATION")]
        lock_timeout: String,
    },
}

/// The stack of the thread that runs a command. Depth limits keep the parser, the evaluator
/// and the renderer far from the default 8 MiB; this is the margin behind them.
const STACK_SIZE: usize = 64 * 1024 * 1024;

/// Runs the command line. Exit codes: 0 success, 1 any error (a usage error too), 2 only for
/// `plan --detailed-exitcode` with changes. A panic still exits 101, so bugs stay visible.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let code = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("main".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, || run(&cli));
        match thread {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => run(&cli),
        }
    });
    if output::stdout_failed() {
        ExitCode::from(1)
    } else {
        code
    }
}

/// Parses the arguments. clap exits 2 on a usage error, which `--detailed-exitcode` means
/// "changes": a typo in CI would read as a plan to review. Usage errors exit 1 here, and
/// Terraform's single-dash spelling of a long option (`-out`, `-var`, `-auto-approve`)
/// gets a "did you mean". `--help` and `--version` print and exit 0.
fn parse(args: &[OsString]) -> Result<Cli, ExitCode> {
    let err = match Cli::try_parse_from(args) {
        Ok(cli) => return Ok(cli),
        Err(err) => err,
    };
    if !err.use_stderr() {
        output::print_stdout(&err.render().to_string());
        return Err(ExitCode::SUCCESS);
    }
    let color = output::use_color(args.iter().any(|a| a == "--no-color"));
    match single_dash_long_option(args) {
        Some(given) => eprintln!(
            "{}",
            Diagnostic::error(format!(
                "unknown option `{}`",
                given.split('=').next().unwrap_or(&given)
            ))
            .help(format!(
                "did you mean `-{given}`? weir spells long options with two dashes"
            ))
            .render(color)
            .trim_end()
        ),
        None => {
            let rendered = if color {
                err.render().ansi().to_string()
            } else {
                err.render().to_string()
            };
            eprint!("{rendered}");
        }
    }
    Err(ExitCode::from(1))
}

/// The first argument (before `--`) that is a long option of some command written with one
/// dash, e.g. `-out=plan.bin` or `-auto-approve`.
fn single_dash_long_option(args: &[OsString]) -> Option<String> {
    fn long_names(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            out.extend(
                arg.get_long_and_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(String::from),
            );
        }
        for sub in cmd.get_subcommands() {
            long_names(sub, out);
        }
    }
    let mut longs = Vec::new();
    long_names(&Cli::command(), &mut longs);
    args.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .find(|a| {
            a.strip_prefix('-')
                .filter(|rest| !rest.starts_with('-'))
                .map(|rest| rest.split('=').next().unwrap_or(rest))
                .is_some_and(|name| name.len() > 1 && longs.iter().any(|l| l == name))
        })
        .map(|a| a.into_owned())
}

fn run(cli: &Cli) -> ExitCode {
    let color = output::use_color(cli.no_color);
    let result = match &cli.command {
        Command::Validate { vars, format, json } => {
            let format = if *json {
                DiagnosticsFormat::Json
            } else {
                *format
            };
            commands::validate::run(&cli.dir, vars, format, color)
        }
        Command::Fmt { check, diff } => commands::fmt::run(&cli.dir, *check, *diff, color),
        Command::Plan {
            args,
            out,
            format,
            compact,
            drift_marker,
            detailed_exitcode,
            destroy,
        } => commands::plan::run(
            &cli.dir,
            args,
            out.as_deref(),
            &commands::plan::Printed {
                format: *format,
                view: View {
                    compact: *compact,
                    marker: if *drift_marker {
                        Marker::Drift
                    } else {
                        Marker::Plan
                    },
                },
                detailed_exitcode: *detailed_exitcode,
            },
            *destroy,
            color,
        ),
        Command::Apply {
            plan,
            args,
            auto_approve,
        } => commands::apply::run(&cli.dir, args, plan.as_deref(), *auto_approve, false, color),
        Command::Destroy { args, auto_approve } => {
            commands::apply::run(&cli.dir, args, None, *auto_approve, true, color)
        }
        Command::Show {
            plan,
            format,
            json,
            compact,
        } => commands::show::run(
            plan,
            if *json { Format::Json } else { *format },
            View {
                compact: *compact,
                marker: Marker::Plan,
            },
            color,
        ),
        Command::Output { name, vars, json } => {
            commands::state::outputs(&cli.dir, vars, name.as_deref(), *json, color)
        }
        Command::State(StateCommand::List { vars }) => commands::state::list(&cli.dir, vars, color),
        Command::State(StateCommand::Show { address, vars }) => {
            commands::state::show(&cli.dir, vars, address, color)
        }
        Command::State(StateCommand::Rm {
            addresses,
            vars,
            lock_timeout,
        }) => commands::state::rm(&cli.dir, vars, addresses, lock_timeout, color),
        Command::ForceUnlock { id, vars } => {
            commands::state::force_unlock(&cli.dir, vars, id, color)
        }
        Command::Rollback {
            release,
            vars,
            lock_timeout,
            auto_approve,
        } => commands::rollback::run(
            &cli.dir,
            vars,
            release.as_deref(),
            lock_timeout,
            *auto_approve,
            color,
        ),
        Command::Graph { vars } => commands::state::graph(&cli.dir, vars, color),
        Command::Version => {
            output::print_stdout(&format!("weir {}\n", env!("CARGO_PKG_VERSION")));
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if !err.is_empty() {
                output::error(&err, color);
            }
            ExitCode::from(1)
        }
    }
}
