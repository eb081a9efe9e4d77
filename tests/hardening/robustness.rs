//! Hardening tests: see `tests/hardening.rs`.
//!
//! No input makes weir panic (exit 101), abort (134, a stack overflow) or exhaust memory: every
//! run here is limited to 2 GiB of address space, so a blow-up fails the test instead of
//! swapping the machine. Exit codes are 0, 1, or 2 for `plan --detailed-exitcode` only.

use crate::cli;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const DEPLOYMENT: &str = r#"deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
"#;

/// A configuration directory whose `main.hcl` is a deployment followed by `rest`.
fn config(rest: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("main.hcl"), format!("{DEPLOYMENT}{rest}")).unwrap();
    tmp
}

/// `weir -C dir --no-color ARGS` under a 2 GiB address-space limit (`ulimit -v`, in KiB).
fn limited(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_weir"))
        .arg("-C")
        .arg(dir)
        .arg("--no-color")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CI");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    limited(dir, args).output().unwrap()
}

/// Exit code 1 (bad input) with no panic or overflow message; returns stderr.
fn assert_refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, got {:?}:\n{}",
        out.status,
        tail(&stderr)
    );
    assert_no_crash_message(&stderr);
    stderr
}

fn assert_no_crash_message(stderr: &str) {
    for crash in ["panicked", "overflowed its stack", "memory allocation"] {
        assert!(!stderr.contains(crash), "{crash}:\n{}", tail(stderr));
    }
}

fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(3000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[test]
fn an_error_past_column_65535_is_shown_as_an_excerpt_of_its_line() {
    let padding = "x".repeat(70_000);
    let dir = config(&format!("locals {{\n  a = \"{padding}\" + nope\n}}\n"));
    let stderr = assert_refused(&run(dir.path(), &["validate"]));
    assert!(
        stderr.contains("main.hcl:7:70012: error: unknown name `nope`"),
        "{}",
        tail(&stderr)
    );
    // The snippet shows the error with a little of the line around it, not 70,000 characters.
    assert!(stderr.contains("\" + nope"), "{}", tail(&stderr));
    assert!(stderr.len() < 4_000, "{} bytes of output", stderr.len());
}

#[test]
fn a_chain_of_twenty_thousand_locals_does_not_overflow_the_stack() {
    // Declared last link first, so ordering them follows the whole chain from the first.
    let mut locals = String::from("locals {\n");
    for i in (1..20_000).rev() {
        locals.push_str(&format!("  l{i} = local.l{}\n", i - 1));
    }
    locals.push_str("  l0 = 1\n}\n");
    let out = run(config(&locals).path(), &["validate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}:\n{}", out.status, tail(&stderr));
    assert!(stderr.contains("The configuration is valid"), "{stderr}");
}

#[test]
fn locals_nesting_lists_are_refused_at_the_depth_limit() {
    let mut locals = String::from("locals {\n  l0 = 1\n");
    for i in 1..10_000 {
        locals.push_str(&format!("  l{i} = [local.l{}]\n", i - 1));
    }
    locals.push_str("}\n");
    let stderr = assert_refused(&run(config(&locals).path(), &["validate"]));
    assert!(
        stderr.contains(
            "error: local value `l64` nests lists, maps or objects more than 64 levels deep"
        ),
        "{}",
        tail(&stderr)
    );
    // Reported once: the locals built on it are skipped quietly.
    assert!(stderr.contains("1 error, 0 warnings"), "{}", tail(&stderr));
}

#[test]
fn locals_that_double_a_string_are_refused_at_the_size_limit() {
    let mut locals = String::from("locals {\n  l0 = \"abcdefgh\"\n");
    for i in 1..64 {
        let prev = i - 1;
        locals.push_str(&format!(
            "  l{i} = \"${{local.l{prev}}}${{local.l{prev}}}\"\n"
        ));
    }
    locals.push_str("}\n");
    let stderr = assert_refused(&run(config(&locals).path(), &["validate"]));
    assert!(
        stderr.contains("takes the local values past 64 MiB in all"),
        "{}",
        tail(&stderr)
    );
}

#[test]
fn deep_nesting_in_the_source_is_a_syntax_error() {
    const DEPTH: usize = 100_000;
    let shapes = [
        (
            "brackets",
            format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)),
        ),
        (
            "parentheses",
            format!("{}1{}", "(".repeat(DEPTH), ")".repeat(DEPTH)),
        ),
        (
            "objects",
            format!("{}1{}", "{a = ".repeat(DEPTH), "}".repeat(DEPTH)),
        ),
        (
            "templates",
            format!("{}1{}", "\"${".repeat(DEPTH), "}\"".repeat(DEPTH)),
        ),
        (
            "calls",
            format!("{}\"a\"{}", "upper(".repeat(DEPTH), ")".repeat(DEPTH)),
        ),
        ("conditionals", format!("{}1", "true ? 1 : ".repeat(DEPTH))),
        ("negations", format!("{}true", "!".repeat(DEPTH))),
        ("sums", format!("1{}", " + 1".repeat(DEPTH))),
    ];
    for (what, expr) in shapes {
        let dir = config(&format!("locals {{\n  a = {expr}\n}}\n"));
        let stderr = assert_refused(&run(dir.path(), &["validate"]));
        assert!(
            stderr.contains("main.hcl:7:") && stderr.contains("error: syntax error"),
            "{what}: {}",
            tail(&stderr)
        );
    }
    let blocks = format!("{}{}", "pipeline {\n".repeat(DEPTH), "}\n".repeat(DEPTH));
    let stderr = assert_refused(&run(config(&blocks).path(), &["validate"]));
    assert!(
        stderr.contains("nesting depth"),
        "blocks: {}",
        tail(&stderr)
    );
}

/// Reads one byte of the child's stdout or stderr and closes it, as `| head -c1` does; the
/// output is larger than a pipe's buffer, so the child writes into a closed pipe.
fn close_after_one_byte(mut cmd: Command, stdout: bool) -> Output {
    if stdout {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    let mut byte = [0u8];
    if stdout {
        child.stdout.take().unwrap().read_exact(&mut byte).unwrap();
    } else {
        child.stderr.take().unwrap().read_exact(&mut byte).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A configuration with 3,000 errors: far more output than a pipe holds.
fn many_errors() -> tempfile::TempDir {
    let names: Vec<String> = (0..3000).map(|i| format!("  a{i} = nope{i}\n")).collect();
    config(&format!("locals {{\n{}}}\n", names.concat()))
}

#[test]
fn validate_json_into_a_closed_pipe_ends_quietly_with_its_exit_code() {
    let dir = many_errors();
    let out = close_after_one_byte(limited(dir.path(), &["validate", "--json"]), true);
    // The configuration is invalid: 1, whether or not anyone read the output.
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn validate_into_a_closed_stderr_ends_quietly_with_its_exit_code() {
    let dir = many_errors();
    let out = close_after_one_byte(limited(dir.path(), &["validate"]), false);
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
}

#[test]
fn usage_errors_exit_1_not_the_2_of_detailed_exitcode() {
    let dir = config("");
    for args in [
        &["plan", "--bogus"][..],
        &["plan", "--detailed-exitcode", "--out"],
        &["frobnicate"],
        &[],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "weir {args:?}: {:?}",
            out.status
        );
        assert_no_crash_message(&String::from_utf8_lossy(&out.stderr));
    }
    for args in [&["--help"][..], &["plan", "--help"], &["--version"]] {
        let out = run(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "weir {args:?}: {:?}",
            out.status
        );
        assert!(!out.stdout.is_empty(), "weir {args:?} printed nothing");
    }
}

#[test]
fn terraform_single_dash_options_get_a_did_you_mean() {
    let dir = config("");
    for (given, suggested) in [
        (&["plan", "-out=plan.bin"][..], "--out=plan.bin"),
        (&["plan", "-out", "plan.bin"], "--out"),
        (&["plan", "-var", "a=b"], "--var"),
        (&["plan", "-var-file=dev.tfvars"], "--var-file=dev.tfvars"),
        (&["apply", "-auto-approve"], "--auto-approve"),
        (
            &["plan", "-target=pipeline.orders"],
            "--target=pipeline.orders",
        ),
        (&["plan", "-replace", "pipeline.orders"], "--replace"),
        (&["plan", "-detailed-exitcode"], "--detailed-exitcode"),
        (&["plan", "-lock-timeout=5m"], "--lock-timeout=5m"),
        (&["plan", "-refresh=false"], "--refresh=false"),
    ] {
        let out = run(dir.path(), given);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "weir {given:?}: {stderr}");
        assert!(
            stderr.contains(&format!("did you mean `{suggested}`?")),
            "weir {given:?}: {stderr}"
        );
    }
}

#[test]
fn unknown_names_among_twenty_thousand_locals_are_reported_in_linear_time() {
    // Each unknown name was compared with every declared one for a "did you mean": 400 million
    // comparisons here, minutes of work. The comparisons now have a budget per load.
    let mut locals = String::from("locals {\n");
    for i in 0..20_000 {
        locals.push_str(&format!("  l{i} = local.m{i}\n"));
    }
    locals.push_str("}\n");
    let dir = config(&locals);
    let status = finishes_within(limited(dir.path(), &["validate", "--json"]), 120);
    assert_eq!(status.code(), Some(1), "{status:?}");
}

#[test]
fn thousands_of_errors_on_one_long_line_are_reported_in_linear_time() {
    // Columns count characters: counting from the start of a 2 MB line for each of 10,000
    // errors on it, several times per error, took minutes.
    let items: Vec<String> = (0..10_000)
        .map(|i| format!("\"{}\", nope{i}", "é".repeat(100)))
        .collect();
    let dir = config(&format!("locals {{\n  a = [{}]\n}}\n", items.join(", ")));
    let status = finishes_within(limited(dir.path(), &["validate"]), 60);
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// Runs `cmd` (its output discarded) and waits at most `seconds` for it.
fn finishes_within(mut cmd: Command, seconds: u64) -> std::process::ExitStatus {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn apply_with_its_stderr_closed_completes_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    let dir = cli::copy_config(&example, tmp.path());
    // A pipe whose reading end is already closed: every progress line fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = limited(&dir, &["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
    let (code, output) = cli::plan_exit(&dir);
    assert_eq!(code, 0, "the apply did not complete:\n{output}");
}
