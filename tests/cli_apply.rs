//! `weir plan` / `apply` / `show` / `state` / `output` end to end on the local target, driving
//! the built binary the way a user does. (The tests that then run the real Mage on what weir
//! wrote are in `mage_e2e.rs`.)

#[path = "support/cli.rs"]
mod cli;

use cli::{apply, files_under, many_pipelines, plan_exit, start_apply, weir};
use std::path::{Path, PathBuf};

/// A copy of examples/local in a temp dir.
fn example() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local"),
        tmp.path(),
    );
    (tmp, dir)
}

/// Removes from schedules.hcl every schedule block that mentions `text`.
fn remove_schedules(dir: &Path, text: &str) {
    let schedules = std::fs::read_to_string(dir.join("schedules.hcl")).unwrap();
    let kept: Vec<&str> = schedules
        .split("\n\n")
        .filter(|s| !s.contains(text))
        .collect();
    std::fs::write(dir.join("schedules.hcl"), kept.join("\n\n")).unwrap();
}

#[test]
fn apply_then_plan_is_clean_and_edits_show_as_diffs() {
    let (_tmp, dir) = example();
    apply(&dir);
    let project = dir.join("mage_project");
    assert!(project.join("metadata.yaml").exists());
    assert!(
        project
            .join("pipelines/orders_summary/metadata.yaml")
            .exists()
    );
    assert!(
        project
            .join("pipelines/orders_summary/triggers.yaml")
            .exists()
    );

    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 0, "a plan right after apply has no changes:\n{out}");
    assert!(out.contains("No changes"), "{out}");

    // Editing block code is a change, shown as a code diff.
    let block = dir.join("blocks/summarize_orders.py");
    let code_text = std::fs::read_to_string(&block).unwrap();
    std::fs::write(
        &block,
        format!("{code_text}\n# reviewed by the data team\n"),
    )
    .unwrap();
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("+ # reviewed by the data team"),
        "the code diff is shown:\n{out}"
    );
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{out}"
    );
    apply(&dir);
    assert_eq!(plan_exit(&dir).0, 0);
}

#[test]
fn files_weir_does_not_own_are_never_touched() {
    let (_tmp, dir) = example();
    apply(&dir);
    let project = dir.join("mage_project");
    // A user's file inside the project, next to weir's.
    std::fs::write(project.join("transformers/my_notes.py"), "# mine\n").unwrap();
    std::fs::write(project.join("io_config.yaml"), "version: 0.1.1\n").unwrap();
    let before = files_under(&project);

    // Remove one pipeline from the configuration: its files go, nothing else.
    let pipelines = std::fs::read_to_string(dir.join("pipelines.hcl")).unwrap();
    let squares_start = pipelines
        .find("pipeline \"squares\"")
        .expect("the example has a squares pipeline");
    std::fs::write(dir.join("pipelines.hcl"), &pipelines[..squares_start]).unwrap();
    remove_schedules(&dir, "pipeline.squares");
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("mage_pipeline.squares will be destroyed"),
        "{out}"
    );
    apply(&dir);
    let after = files_under(&project);
    let removed: Vec<&String> = before.iter().filter(|f| !after.contains(f)).collect();
    assert!(
        removed.iter().all(|f| f.contains("squares")
            || f.contains("square")
            || f.contains("split_numbers")
            || f.contains("log_total")),
        "only the pipeline's files were removed: {removed:?}"
    );
    assert!(!project.join("pipelines/squares").exists());
    assert_eq!(
        std::fs::read_to_string(project.join("transformers/my_notes.py")).unwrap(),
        "# mine\n"
    );
    assert!(project.join("io_config.yaml").exists());
    assert!(
        project
            .join("pipelines/orders_summary/metadata.yaml")
            .exists()
    );

    // A user file where weir wants to write: refused, named, untouched.
    let pipelines = std::fs::read_to_string(dir.join("pipelines.hcl")).unwrap();
    std::fs::write(
        dir.join("pipelines.hcl"),
        format!("{pipelines}\npipeline \"extra\" {{\n  block \"my_notes\" {{\n    type = \"transformer\"\n    code = \"@transformer\\ndef f(*a, **k):\\n    return 1\\n\"\n  }}\n}}\n"),
    )
    .unwrap();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("transformers/my_notes.py"),
        "the refusal names the file:\n{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("transformers/my_notes.py")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn saved_plans_are_applied_exactly_once_and_never_stale() {
    let (tmp, dir) = example();
    let plan_file = tmp.path().join("first.weir");
    cli::succeed(weir(&dir).args(["plan", "--out"]).arg(&plan_file));
    let out = weir(&dir).arg("apply").arg(&plan_file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Twice: refused, as stale.
    let out = weir(&dir).arg("apply").arg(&plan_file).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make a new plan"));

    // A plan made, then another apply, then the plan: stale.
    let block = dir.join("blocks/load_orders.py");
    let text = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, format!("{text}\n# one\n")).unwrap();
    let second = tmp.path().join("second.weir");
    assert!(
        weir(&dir)
            .args(["plan", "--out"])
            .arg(&second)
            .output()
            .unwrap()
            .status
            .success()
    );
    apply(&dir);
    let out = weir(&dir).arg("apply").arg(&second).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stale"), "{stderr}");

    // A plan whose configuration changed afterwards is refused too.
    let third = tmp.path().join("third.weir");
    std::fs::write(&block, format!("{text}\n# two\n")).unwrap();
    assert!(
        weir(&dir)
            .args(["plan", "--out"])
            .arg(&third)
            .output()
            .unwrap()
            .status
            .success()
    );
    std::fs::write(&block, format!("{text}\n# three\n")).unwrap();
    let out = weir(&dir).arg("apply").arg(&third).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configuration"));

    // `show` renders a saved plan.
    let out = weir(&dir).args(["show"]).arg(&third).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Plan: 0 to add, 1 to change"));
}

#[test]
fn state_commands_and_outputs() {
    let (_tmp, dir) = example();
    apply(&dir);
    let out = weir(&dir).args(["state", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines().any(|l| l == "mage_pipeline.orders_summary"),
        "{list}"
    );
    let out = weir(&dir)
        .args(["state", "show", "mage_pipeline.orders_summary"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"type\": \"mage_pipeline\""));
    let out = weir(&dir)
        .args(["state", "show", "mage_pipeline.nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Removing from state forgets without deleting: the next plan wants to create it again,
    // and the provider refuses to overwrite a file it no longer owns? No: the manifest still
    // owns it, so the create simply takes it over.
    let out = weir(&dir)
        .args(["state", "rm", "mage_triggers.orders_summary"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("mage_project/pipelines/orders_summary/triggers.yaml")
            .exists()
    );
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    apply(&dir);
    assert_eq!(plan_exit(&dir).0, 0);
    let out = weir(&dir).args(["graph"]).output().unwrap();
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("\"mage_triggers.orders_summary\" -> \"mage_pipeline.orders_summary\""),
        "{dot}"
    );
}

#[test]
fn a_second_weir_waits_for_or_is_refused_the_lock() {
    let (_tmp, dir) = example();
    apply(&dir);
    // Hold the lock from another process: `flock` keeps the lock file locked while it sleeps.
    let lock = dir.join(".weir/state.json.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (util-linux) is needed for this test: apt-get install util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = weir(&dir).args(["plan"]).output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lock"), "{stderr}");
    assert!(stderr.contains("--lock-timeout"), "{stderr}");
}

#[test]
fn killing_weir_mid_apply_then_applying_again_converges() {
    // Enough pipelines that the apply takes a moment.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("main.hcl"), many_pipelines(150, true)).unwrap();
    // Kill it (SIGKILL) once some operations have finished.
    let (mut child, _stderr) = start_apply(dir, 2, 60);
    child.kill().unwrap();
    child.wait().unwrap();

    // The state records what was done; the lock died with the process.
    let out = weir(dir).args(["state", "list"]).output().unwrap();
    let recorded = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(
        recorded >= 60,
        "state holds the finished operations ({recorded})"
    );
    assert!(recorded < 600, "the apply was interrupted");

    apply(dir);
    let (code, out) = plan_exit(dir);
    assert_eq!(code, 0, "converged:\n{out}");
    let out = weir(dir).args(["state", "list"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        // The project, the runtime's files, four files per pipeline.
        1 + weir_provider_mage::runtime::FILES.len() + 1 + 150 * 4
    );
    let files = files_under(&dir.join("mage_project"));
    assert_eq!(
        files
            .iter()
            .filter(|f| f.ends_with("triggers.yaml"))
            .count(),
        150
    );
    // Two blocks per pipeline (and the runtime's own Python files, under `weir/`).
    let blocks = files
        .iter()
        .filter(|f| f.ends_with(".py") && !f.starts_with("weir/"));
    assert_eq!(blocks.count(), 300);
    // Each trigger exactly once.
    let triggers =
        std::fs::read_to_string(dir.join("mage_project/pipelines/p7/triggers.yaml")).unwrap();
    assert_eq!(triggers.matches("name:").count(), 1, "{triggers}");
}

#[test]
fn plan_formats_and_secrets() {
    let (_tmp, dir) = example();
    let secret = "https://hooks.slack.com/services/T0/B0/very-secret-token";
    std::fs::write(
        dir.join("notify.hcl"),
        "variable \"hook\" {\n  type      = string\n  sensitive = true\n}\n\nnotification \"ops\" {\n  channel     = \"slack\"\n  webhook_url = var.hook\n}\n",
    )
    .unwrap();
    for format in ["text", "json", "markdown"] {
        let out = weir(&dir)
            .args(["plan", "--format", format])
            .env("WEIR_VAR_hook", secret)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !all.contains("very-secret-token"),
            "{format} leaks the secret"
        );
        assert!(
            all.contains("(sensitive)"),
            "{format} shows where the secret is"
        );
    }
    let out = weir(&dir)
        .args(["plan", "--format", "json"])
        .env("WEIR_VAR_hook", secret)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["format_version"], "1.2");
    assert!(
        json["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["address"] == "mage_pipeline.orders_summary")
    );

    let tmp2 = tempfile::tempdir().unwrap();
    let plan_file = tmp2.path().join("p.weir");
    let out = weir(&dir)
        .args(["plan", "--out"])
        .arg(&plan_file)
        .env("WEIR_VAR_hook", secret)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !std::fs::read_to_string(&plan_file)
            .unwrap()
            .contains("very-secret-token")
    );
    cli::succeed(
        weir(&dir)
            .arg("apply")
            .arg(&plan_file)
            .env("WEIR_VAR_hook", secret),
    );
    // The secret reached the Mage project (Mage needs it), and nothing else.
    let pipeline =
        std::fs::read_to_string(dir.join("mage_project/pipelines/orders_summary/metadata.yaml"))
            .unwrap();
    assert!(pipeline.contains("very-secret-token"));
    let state = std::fs::read_to_string(dir.join(".weir/state.json")).unwrap();
    assert!(state.contains("sensitive_paths"));
}

#[test]
fn a_second_weir_waits_with_lock_timeout() {
    let (_tmp, dir) = example();
    apply(&dir);
    let lock = dir.join(".weir/state.json.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1"])
        .spawn()
        .expect("flock (util-linux) is needed for this test: apt-get install util-linux");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = weir(&dir)
        .args(["plan", "--lock-timeout", "20s"])
        .output()
        .unwrap();
    let _ = holder.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ctrl_c_finishes_what_is_in_flight_and_saves_state() {
    cli::interrupt_apply_then_converge("INT");
}

/// What a CI runner sends to cancel a job: the apply finishes what is in flight, saves state,
/// releases the lock and exits 143; the next apply completes the work.
#[test]
fn sigterm_during_apply_saves_state_releases_the_lock_and_exits_143() {
    cli::interrupt_apply_then_converge("TERM");
}

/// A sensitive variable used by a pipeline, for the tests that check no output shows it.
const SECRET_PIPELINE: &str = "variable \"token\" {\n  type      = string\n  sensitive = true\n  default   = \"s3cr3t-ci-value\"\n}\n\npipeline \"secretive\" {\n  variables = { token = var.token }\n  block \"load_s\" {\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"\n  }\n}\n";

/// The stdout and stderr of `weir ARGS` in `dir`, and its exit code; neither shows the secret.
fn run_hiding_the_secret(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = weir(dir).args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains("s3cr3t-ci-value") && !stderr.contains("s3cr3t-ci-value"),
        "weir {args:?} shows the secret:\n{stdout}\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// A saved plan that the state moved on from is refused with exit 3 and a first line that
/// says so; nothing is written and the lock is released, so the next plan runs at once.
#[test]
fn a_stale_saved_plan_exits_3_with_the_message_and_releases_the_lock() {
    let (tmp, dir) = example();
    std::fs::write(dir.join("secret.hcl"), SECRET_PIPELINE).unwrap();
    let plan_file = tmp.path().join("reviewed.weir");
    let plan_path = plan_file.to_str().unwrap();
    let (code, _, stderr) = run_hiding_the_secret(&dir, &["plan", "--out", plan_path]);
    assert_eq!(code, 0, "{stderr}");
    // Another change is applied first (another pull request merged).
    let block = dir.join("blocks/load_orders.py");
    let text = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, format!("{text}\n# merged first\n")).unwrap();
    apply(&dir);
    std::fs::write(&block, &text).unwrap();
    let before = files_under(&dir.join("mage_project"));
    let (code, stdout, stderr) = run_hiding_the_secret(&dir, &["apply", plan_path]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with(
            "the saved plan is stale: it was made at state serial 0, the state is now at serial 1"
        ),
        "{stderr}"
    );
    assert_eq!(files_under(&dir.join("mage_project")), before);
    assert!(!dir.join(".weir/state.json.lock.info").exists());
    let (code, _, stderr) = run_hiding_the_secret(&dir, &["plan", "--lock-timeout", "0s"]);
    assert_eq!(code, 0, "the lock was released:\n{stderr}");

    // A configuration changed since the plan: stale too. A plan for another state is not
    // stale but wrong: exit 1.
    let (code, _, stderr) = run_hiding_the_secret(&dir, &["plan", "--out", plan_path]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(&block, format!("{text}\n# pushed after the review\n")).unwrap();
    let (code, _, stderr) = run_hiding_the_secret(&dir, &["apply", plan_path]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("the saved plan is stale: the configuration or its variables changed"),
        "{stderr}"
    );
    let (other_tmp, other) = example();
    let (code, _, stderr) = run_hiding_the_secret(&other, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run_hiding_the_secret(&other, &["apply", plan_path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another state"), "{stderr}");
    drop(other_tmp);
}

/// The Markdown plan's first line is the marker naming the deployment (the drift marker with
/// `--drift-marker`); with `--out` the same run saves the plan, whose `show` has the marker too.
#[test]
fn markdown_plans_start_with_the_marker_and_out_saves_the_plan_in_the_same_run() {
    let (tmp, dir) = example();
    std::fs::write(dir.join("secret.hcl"), SECRET_PIPELINE).unwrap();
    let plan_file = tmp.path().join("pr.weir");
    let plan_path = plan_file.to_str().unwrap();
    let (code, md, stderr) = run_hiding_the_secret(
        &dir,
        &[
            "plan",
            "--format",
            "markdown",
            "--out",
            plan_path,
            "--detailed-exitcode",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        md.starts_with("<!-- weir:plan deployment=laptop -->\n### weir plan\n"),
        "{md}"
    );
    assert!(plan_file.exists());
    for args in [
        vec!["show", "--format", "markdown", plan_path],
        vec!["show", "--format", "markdown", "--compact", plan_path],
    ] {
        let (code, shown, stderr) = run_hiding_the_secret(&dir, &args);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            shown.lines().next(),
            Some("<!-- weir:plan deployment=laptop -->"),
            "{args:?}"
        );
    }
    let (code, drift, stderr) =
        run_hiding_the_secret(&dir, &["plan", "--format", "markdown", "--drift-marker"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        drift.lines().next(),
        Some("<!-- weir:drift deployment=laptop -->")
    );
    assert!(!drift.contains("weir:plan"));
}

/// `--compact` on a plan of 2,000 resources: every address once, grouped by action, no
/// diffs, and a fraction of the whole plan's size, in text and in Markdown.
#[test]
fn compact_plans_of_two_thousand_resources_are_small_and_list_every_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("main.hcl"), many_pipelines(666, false)).unwrap();
    std::fs::write(dir.join("secret.hcl"), SECRET_PIPELINE).unwrap();
    let (code, json, stderr) = run_hiding_the_secret(dir, &["plan", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let addresses: Vec<String> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert!(addresses.len() >= 2_000, "{}", addresses.len());

    let (code, whole, _) = run_hiding_the_secret(dir, &["plan"]);
    assert_eq!(code, 0);
    let (code, text, stderr) = run_hiding_the_secret(dir, &["plan", "--compact"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.starts_with(&format!(
            "Plan: {} to add, 0 to change, 0 to replace, 0 to destroy.\n",
            addresses.len()
        )),
        "{}",
        &text[..200]
    );
    assert!(
        text.len() * 10 < whole.len(),
        "{} vs {}",
        text.len(),
        whole.len()
    );
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  + "))
        .collect();
    assert_eq!(listed, addresses);

    let (code, md, stderr) =
        run_hiding_the_secret(dir, &["plan", "--compact", "--format", "markdown"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(md.chars().count() < 65_536, "{}", md.len());
    assert!(
        !md.contains("```") && !md.contains("[!NOTE]"),
        "{}",
        &md[..500]
    );
    let listed: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("- `")?.strip_suffix('`'))
        .collect();
    assert_eq!(listed, addresses);
}

#[test]
fn a_removed_schedule_stays_inactive_and_the_plan_says_why() {
    let (_tmp, dir) = example();
    apply(&dir);
    let triggers = dir.join("mage_project/pipelines/orders_summary/triggers.yaml");
    let before = std::fs::read_to_string(&triggers).unwrap();
    assert!(before.contains("orders_every_15_minutes"), "{before}");
    assert!(
        before.contains("last_enabled_at"),
        "preset so Mage does not rewrite the file:\n{before}"
    );
    remove_schedules(&dir, "orders_every_15_minutes");
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("Mage never deletes a trigger"),
        "the plan explains:\n{out}"
    );
    apply(&dir);
    let after = std::fs::read_to_string(&triggers).unwrap();
    assert!(after.contains("orders_every_15_minutes"), "{after}");
    assert!(after.contains("status: inactive"), "{after}");
    assert_eq!(plan_exit(&dir).0, 0);
}

#[test]
fn markdown_plan_for_a_pull_request() {
    let (_tmp, dir) = example();
    let out = weir(&dir)
        .args(["plan", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    // The example's 12 resources and the weir runtime's files.
    let count = 12 + weir_provider_mage::runtime::FILES.len() + 1;
    assert!(
        md.contains(&format!(
            "**Plan: {count} to add, 0 to change, 0 to replace, 0 to destroy.**"
        )),
        "{md}"
    );
    assert!(md.contains("<details>"), "{md}");
    assert!(md.len() < 65_536);
}

#[test]
fn apply_asks_for_yes() {
    let (_tmp, dir) = example();
    let out = weir(&dir)
        .arg("apply")
        .write_stdin("no\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Apply cancelled"));
    assert!(!dir.join("mage_project").exists(), "nothing was written");
    cli::succeed(weir(&dir).arg("apply").write_stdin("yes\n"));
    assert!(dir.join("mage_project/metadata.yaml").exists());
}

#[test]
fn outputs_are_recorded_and_secrets_never_printed() {
    let (_tmp, dir) = example();
    std::fs::write(
        dir.join("outputs.hcl"),
        "variable \"token\" {\n  type      = string\n  sensitive = true\n  default   = \"s3cr3t-output-value\"\n}\n\noutput \"project\" {\n  value = deployment.laptop.project_dir\n}\n\noutput \"token\" {\n  value     = var.token\n  sensitive = true\n}\n",
    )
    .unwrap();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(all.contains("project = \"mage_project\""), "{all}");
    assert!(!all.contains("s3cr3t-output-value"), "{all}");
    let out = weir(&dir).args(["output", "project"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mage_project\n");
    for args in [
        vec!["output"],
        vec!["output", "token"],
        vec!["output", "--json"],
    ] {
        let out = weir(&dir).args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("(sensitive)") && !text.contains("s3cr3t-output-value"),
            "{args:?}: {text}"
        );
    }
    assert_eq!(plan_exit(&dir).0, 0);
}

#[test]
fn apply_says_how_to_start_mage_with_the_runtime_from_where_weir_ran() {
    let (_tmp, dir) = example();
    // From the configuration directory: the project's own relative path.
    let out = assert_cmd::Command::cargo_bin("weir")
        .unwrap()
        .args(["apply", "--auto-approve", "--no-color"])
        .current_dir(&dir)
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Start Mage with the weir runtime: WEIR_RUNTIME=1 PYTHONPATH=mage_project/weir mage start mage_project"),
        "{err}"
    );
    // With `-C`: the paths from where weir ran (the runtime, removed, is written again).
    std::fs::remove_dir_all(dir.join("mage_project/weir")).unwrap();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let project = dir.join("mage_project");
    assert!(
        err.contains(&format!(
            "WEIR_RUNTIME=1 PYTHONPATH={}/weir mage start {}",
            project.display(),
            project.display()
        )),
        "{err}"
    );
}
