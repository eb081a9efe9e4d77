//! `weir validate`: load and check the configuration; print every diagnostic.

use crate::cli::{VarArgs, output};
use crate::config::LoadOptions;
use crate::diagnostics::{Diagnostic, Severity};
use std::path::Path;
use std::process::ExitCode;

/// How `weir validate` prints its diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DiagnosticsFormat {
    /// For a terminal: the line, underlined, and what would be right (on stderr).
    #[default]
    Text,
    /// A JSON array.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`), shown as annotations.
    Github,
}

pub fn load_options(dir: &Path, vars: &VarArgs) -> LoadOptions {
    let mut opts = LoadOptions::new(dir);
    opts.vars = vars.vars.clone();
    opts.var_files = vars.var_files.clone();
    opts
}

pub fn run(
    dir: &Path,
    vars: &VarArgs,
    format: DiagnosticsFormat,
    color: bool,
) -> Result<ExitCode, String> {
    let (model, diags) = crate::model::load(&load_options(dir, vars));
    match format {
        DiagnosticsFormat::Json => {
            let items: Vec<_> = diags.iter().map(|d| d.to_json()).collect();
            let text = serde_json::to_string_pretty(&items).map_err(|e| e.to_string())?;
            output::print_stdout(&format!("{text}\n"));
        }
        DiagnosticsFormat::Github => {
            let cwd = std::env::current_dir().ok();
            let text: String = diags
                .iter()
                .map(|d| github_command(d, cwd.as_deref()))
                .collect();
            output::print_stdout(&text);
        }
        DiagnosticsFormat::Text => {
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
    }
    Ok(if diags.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One diagnostic as a GitHub Actions workflow command, newline included:
/// `::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=weir validate::MESSAGE`.
/// The file is relative to `cwd` (GitHub resolves it from the repository root, where the
/// workflow runs). The help follows the message on a line of its own. Everything is escaped
/// as GitHub's runner unescapes it, so no message can end the command early or start another.
fn github_command(d: &Diagnostic, cwd: Option<&Path>) -> String {
    let json = d.to_json();
    let command = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut properties = Vec::new();
    if let Some(file) = json.file {
        let path = Path::new(file);
        let relative = cwd
            .filter(|_| path.is_absolute())
            .and_then(|cwd| path.strip_prefix(cwd).ok())
            .unwrap_or(path);
        properties.push(format!(
            "file={}",
            escape_property(&relative.to_string_lossy())
        ));
    }
    for (name, value) in [
        ("line", json.line),
        ("col", json.column),
        ("endLine", json.end_line),
        ("endColumn", json.end_column),
    ] {
        if let Some(value) = value {
            properties.push(format!("{name}={value}"));
        }
    }
    properties.push("title=weir validate".into());
    let mut message = json.message.into_owned();
    if let Some(help) = json.help {
        message.push_str("\nhelp: ");
        message.push_str(&help);
    }
    format!(
        "::{command} {}::{}\n",
        properties.join(","),
        escape_data(&message)
    )
}

/// The escaping of a workflow command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The escaping of a workflow command's property value: a message's, and `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Location, SourceFile};

    #[test]
    fn github_commands_escape_the_message_and_the_properties() {
        let file = SourceFile::new("dir:a,b/main.hcl", "x = 1\ny = 100%\n");
        let d = Diagnostic::error("100% wrong,\r\nreally: yes")
            .at(&Location { file, span: 6..14 })
            .help("write `y = 1`");
        assert_eq!(
            github_command(&d, None),
            "::error file=dir%3Aa%2Cb/main.hcl,line=2,col=1,endLine=2,endColumn=9,title=weir validate::100%25 wrong,%0D%0Areally: yes%0Ahelp: write `y = 1`\n"
        );
    }

    #[test]
    fn github_commands_name_warnings_and_diagnostics_without_a_place() {
        let d = Diagnostic::warning("no pipelines");
        assert_eq!(
            github_command(&d, None),
            "::warning title=weir validate::no pipelines\n"
        );
    }

    #[test]
    fn github_commands_give_files_relative_to_the_working_directory() {
        let file = SourceFile::new("/repo/infra/main.hcl", "x = 1\n");
        let d = Diagnostic::error("bad").at(&Location { file, span: 0..1 });
        assert!(
            github_command(&d, Some(Path::new("/repo")))
                .starts_with("::error file=infra/main.hcl,line=1,col=1,")
        );
    }
}
