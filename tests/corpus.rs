//! The corpus of invalid configurations. `tests/corpus/<case>/` holds the `*.hcl` files of one
//! configuration (and any `blocks/*.py`, `*.auto.tfvars` or template it reads) that is wrong in
//! exactly one way, and `expected.txt`: the diagnostics `weir validate` must report for it, one
//! per line, as `Diagnostic::short()` prints them (`FILE:LINE:COL: error: message`) with FILE
//! relative to the case directory. Where a message quotes an absolute path inside the case
//! directory, that directory is written `$CASE`.
//!
//! One mistake must give exactly one diagnostic (more would be a cascade). A case with only
//! warnings must still load; a case with an error must not. Case names start with the section
//! of the language reference (docs/language.md) they check (`weir_`, `variable_`, `locals_`, `deployment_`, `profile_`,
//! `pipeline_`/`block_`/`code_`/…, `schedule_`, `notification_`, `function_`, `output_`) or
//! with the kind of syntax or schema error (`syntax_`, `unknown_`, `wrong_type_`, …).
//!
//! A case may also hold `help.txt`: text, one piece per line, that must appear in the help of
//! one of its diagnostics (e.g. the "did you mean" suggestion, which `short()` does not show).
//!
//! Every case is checked and every mismatch is reported at once, each with a diff.
//!
//! To (re)write the expected files from what weir reports now, run
//!
//! ```text
//! WEIR_BLESS=1 cargo test --test corpus
//! ```
//!
//! and review the changes to `expected.txt` files before committing them: blessing accepts
//! whatever weir says, right or wrong.

use std::path::{Path, PathBuf};
use weir::config::LoadOptions;

/// At least this many cases: the corpus covers every check of the language.
const MIN_CASES: usize = 70;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// What a case reports: the short diagnostics, relative to the case directory, and whether the
/// configuration was accepted.
struct Outcome {
    lines: Vec<String>,
    helps: Vec<String>,
    errors: usize,
    accepted: bool,
}

fn run_case(dir: &Path) -> Outcome {
    let opts = LoadOptions {
        dir: dir.to_path_buf(),
        vars: Vec::new(),
        var_files: Vec::new(),
        // Not the machine's WEIR_VAR_* variables: cases must not depend on who runs them.
        env: Vec::new(),
    };
    let (model, diags) = weir::model::load(&opts);
    let dir_text = dir.display().to_string();
    let prefix = format!("{dir_text}{}", std::path::MAIN_SEPARATOR);
    let lines = diags
        .iter()
        .map(|d| {
            let short = d.short();
            let short = short.strip_prefix(&prefix).unwrap_or(&short).to_string();
            short.replace(&dir_text, "$CASE")
        })
        .collect();
    let helps = diags.iter().filter_map(|d| d.help.clone()).collect();
    Outcome {
        lines,
        helps,
        errors: diags.error_count(),
        accepted: model.is_some(),
    }
}

#[test]
fn corpus() {
    let bless = std::env::var_os("WEIR_BLESS").is_some_and(|v| v == "1");
    let dirs = case_dirs();
    let mut failures: Vec<String> = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let outcome = run_case(dir);
        let actual = outcome.lines.join("\n");

        if outcome.lines.is_empty() {
            failures.push(format!(
                "{name}: weir reports nothing, but every case must produce at least one error or warning"
            ));
            continue;
        }
        // A case is wrong in one way; more than one diagnostic is a cascade (or a case that
        // tests two things).
        if outcome.lines.len() > 1 {
            failures.push(format!(
                "{name}: one mistake should give one diagnostic, weir reports {}:\n{actual}",
                outcome.lines.len()
            ));
        }
        if outcome.errors > 0 && outcome.accepted {
            failures.push(format!(
                "{name}: weir reports errors but still returns a configuration"
            ));
        }
        if outcome.errors == 0 && !outcome.accepted {
            failures.push(format!(
                "{name}: weir reports only warnings but returns no configuration"
            ));
        }

        if let Ok(wanted) = std::fs::read_to_string(dir.join("help.txt")) {
            for piece in wanted.lines().filter(|l| !l.trim().is_empty()) {
                if !outcome.helps.iter().any(|h| h.contains(piece)) {
                    failures.push(format!(
                        "{name}: no diagnostic's help contains `{piece}`; the helps are:\n{}",
                        outcome.helps.join("\n---\n")
                    ));
                }
            }
        }

        let expected_path = dir.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).expect("write expected.txt");
            continue;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(text) => text,
            Err(_) => {
                failures.push(format!(
                    "{name}: no expected.txt (write one, or run with WEIR_BLESS=1 and review it); weir reports:\n{actual}"
                ));
                continue;
            }
        };
        let expected = expected.trim_end_matches('\n').replace("\r\n", "\n");
        if expected != actual {
            let (expected, actual) = (format!("{expected}\n"), format!("{actual}\n"));
            let diff = similar::TextDiff::from_lines(expected.as_str(), actual.as_str())
                .unified_diff()
                .header("expected.txt", "weir")
                .to_string();
            failures.push(format!("{name}: diagnostics differ\n{diff}"));
        }
    }
    assert!(
        dirs.len() >= MIN_CASES,
        "the corpus has {} cases, fewer than {MIN_CASES}",
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases fail:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

/// A case directory holds configuration files and `expected.txt`, nothing that weir would
/// silently ignore by mistake (e.g. `main.hlc`).
#[test]
fn corpus_cases_are_well_formed() {
    let mut problems = Vec::new();
    for dir in case_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut has_hcl = false;
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            let known = file == "expected.txt"
                || file == "help.txt"
                || file.ends_with(".hcl")
                || file.ends_with(".tmpl")
                || file.ends_with(".auto.tfvars")
                || (path.is_dir() && file == "blocks");
            has_hcl |= file.ends_with(".hcl");
            if !known {
                problems.push(format!("{name}: unexpected file `{file}`"));
            }
        }
        if !has_hcl {
            problems.push(format!("{name}: no `*.hcl` file"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
