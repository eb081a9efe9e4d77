//! `weir fmt`: rewrite every `*.hcl` file of the configuration directory canonically.

use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path, check: bool, diff: bool, color: bool) -> Result<ExitCode, String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "cannot read the configuration directory `{}`: {e}",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    entries.sort();
    let mut unformatted = Vec::new();
    let mut failed = false;
    for path in entries {
        let name = path
            .file_name()
            .map(|n| Path::new(n).to_path_buf())
            .unwrap_or_default();
        let display = crate::config::display_path(dir, &name);
        // As validate reads it: not through a link, not a FIFO.
        let text = crate::config::files::read_inside(dir, &name)
            .map_err(|e| format!("`{display}` {e}"))
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| format!("`{display}` is not valid UTF-8 text"))
            })?;
        let formatted = match crate::format::format_source(&text) {
            Ok(f) => f,
            Err(_) => {
                // Report the syntax error the same way validate does.
                let file = crate::diagnostics::SourceFile::new(display.clone(), text);
                let mut diags = crate::diagnostics::Diagnostics::new();
                crate::config::parse(&file, &mut diags);
                crate::cli::output::print_diagnostics(&diags, color);
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted.push(display.clone());
        if diff {
            let d = similar::TextDiff::from_lines(&text, &formatted);
            crate::cli::output::print_stdout(
                &d.unified_diff().header(&display, &display).to_string(),
            );
        }
        if !check {
            write_atomically(&path, &formatted)
                .map_err(|e| format!("cannot write `{display}`: {e}"))?;
        }
    }
    for f in &unformatted {
        if check {
            eprintln!("{f}: not formatted");
        } else if !diff {
            crate::cli::output::print_stdout(&format!("{f}\n"));
        }
    }
    Ok(if failed || (check && !unformatted.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
