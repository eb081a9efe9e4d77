//! Hardening tests: see `tests/hardening.rs`. What a reviewer sees in a plan: every change that
//! matters (the Mage version), nothing that does not (`last_enabled_at` on a cron change), in
//! declaration order, drift first, and words that say what is happening.

use crate::cli::{apply, copy_config, plan_exit, weir};
use std::path::{Path, PathBuf};

fn example() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local"),
        tmp.path(),
    );
    (tmp, dir)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = weir(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The addresses of the `# ADDRESS will be …` headers of a text plan, in order.
fn text_addresses(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|l| l.trim_start().strip_prefix("# "))
        .filter(|l| l.contains(" will be ") || l.contains(" must be "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The resources of `examples/local`, in the order its files declare them (`main.hcl`, then
/// `pipelines.hcl`, then `schedules.hcl`; each pipeline's blocks before the pipeline that
/// uses them, its triggers after it).
const DECLARED_AFTER_RUNTIME: &[&str] = &[
    "mage_block.orders_summary.load_orders",
    "mage_block.orders_summary.summarize_orders",
    "mage_block.orders_summary.write_json",
    "mage_pipeline.orders_summary",
    "mage_triggers.orders_summary",
    "mage_block.squares.split_numbers",
    "mage_block.squares.square",
    "mage_block.squares.sum_squares",
    "mage_block.squares.log_total",
    "mage_pipeline.squares",
    "mage_triggers.squares",
];

/// The project's resources: the project, then the weir runtime's files (declared by the
/// deployment too), then [`DECLARED_AFTER_RUNTIME`].
fn deployment_resources() -> Vec<String> {
    let runtime = weir_provider_mage::runtime::FILES
        .iter()
        .map(|(path, _)| *path)
        .chain([weir_provider_mage::runtime::CONFIG_FILE])
        .map(|path| format!("mage_file.{}", path.replace('/', ".")));
    std::iter::once("mage_project.laptop".to_string())
        .chain(runtime)
        .collect()
}

fn declared() -> Vec<String> {
    deployment_resources()
        .into_iter()
        .chain(DECLARED_AFTER_RUNTIME.iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn changing_the_mage_image_version_is_a_planned_change() {
    let (_tmp, dir) = example();
    apply(&dir);
    // The runtime refuses a Mage it was not tested with unless told to allow it.
    edit(
        &dir.join("main.hcl"),
        "\"mageai/mageai:0.9.80\"",
        "\"mageai/mageai:0.9.76\"\n  runtime {\n    allow_untested_mage = true\n  }",
    );
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "a new Mage version is a change:\n{out}");
    assert!(
        out.contains("# mage_project.laptop will be updated in place"),
        "{out}"
    );
    assert!(
        out.contains(r#"~ mage_version = "0.9.80" -> "0.9.76""#),
        "{out}"
    );
    assert!(
        out.contains(r#"~ image        = "mageai/mageai:0.9.80" -> "mageai/mageai:0.9.76""#),
        "{out}"
    );
    // The version is outside what weir is tested with: the plan itself and validate say so.
    let (_, plan, _) = run(&dir, &["plan"]);
    assert!(
        plan.contains(
            "# note: Mage 0.9.76 is not a version weir is tested with (tested with mage-ai 0.9.80)"
        ),
        "{plan}"
    );
    let (code, _, err) = run(&dir, &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning") && err.contains("tested with mage-ai 0.9.80"),
        "{err}"
    );
    // Applying records the new version: the next plan is clean.
    apply(&dir);
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_tested_mage_version_does_not_warn() {
    let (_tmp, dir) = example();
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines().any(|l| {
            let l = l.trim();
            l.starts_with("+ mage_version ") && l.ends_with(r#"= "0.9.80""#)
        }),
        "the plan shows the version:\n{out}"
    );
    // No note about the version (the runtime's own files, shown in full, may say "tested with").
    assert!(
        !out.lines()
            .any(|l| l.contains("# note:") && l.contains("tested with")),
        "{out}"
    );
}

#[test]
fn an_unpinned_image_is_noted_in_the_plan() {
    let (_tmp, dir) = example();
    edit(
        &dir.join("main.hcl"),
        "image       = \"mageai/mageai:0.9.80\"",
        "image       = \"mageai/mageai:latest\"\n  mage_version = \"0.9.80\"",
    );
    let (code, out, err) = run(&dir, &["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("# note: image `mageai/mageai:latest` is not pinned to a version"),
        "{out}"
    );
}

#[test]
fn resources_print_in_declaration_order_in_every_format() {
    let (_tmp, dir) = example();
    let (code, text, err) = run(&dir, &["plan"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(text_addresses(&text), declared(), "{text}");

    let (code, md, err) = run(&dir, &["plan", "--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    let md_addresses: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("<details><summary><code>"))
        .filter_map(|l| l.split('<').next())
        .collect();
    assert_eq!(md_addresses, declared(), "{md}");

    let (code, json, err) = run(&dir, &["plan", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let json_addresses: Vec<&str> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(json_addresses, declared());
}

#[test]
fn destroy_lists_resources_in_declaration_order() {
    let (_tmp, dir) = example();
    apply(&dir);
    let (code, text, err) = run(&dir, &["plan", "--destroy"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(text_addresses(&text), declared(), "{text}");
}

#[test]
fn a_new_cron_does_not_show_last_enabled_at_changing() {
    let (_tmp, dir) = example();
    apply(&dir);
    edit(&dir.join("schedules.hcl"), "*/15 * * * *", "*/30 * * * *");
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(r#"~ schedule_interval = "*/15 * * * *" -> "*/30 * * * *""#),
        "{out}"
    );
    assert!(!out.contains("last_enabled_at"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{out}"
    );
}

#[test]
fn next_runs_note_honours_the_schedule_start() {
    let (_tmp, dir) = example();
    edit(
        &dir.join("schedules.hcl"),
        "cron            = \"*/15 * * * *\"",
        "cron            = \"0 3 * * *\"\n  start           = \"2099-06-01T12:00:00Z\"",
    );
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    let note = out
        .lines()
        .find(|l| l.contains("schedule `orders_every_15_minutes`"))
        .unwrap_or_else(|| panic!("no next-runs note:\n{out}"));
    assert!(
        note.contains("2099-06-02 03:00 UTC, 2099-06-03 03:00 UTC, 2099-06-04 03:00 UTC"),
        "{note}"
    );
    assert!(note.contains("starts 2099-06-01T12:00:00Z"), "{note}");
}

#[test]
fn destroy_says_destroy_complete_and_why_each_resource_goes() {
    let (_tmp, dir) = example();
    apply(&dir);
    let (code, json, err) = run(&dir, &["plan", "--destroy", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let changes = doc["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), declared().len(), "{json}");
    for c in changes {
        assert_eq!(
            c["action_reason"], "delete_because_destroy_requested",
            "{c}"
        );
    }
    let (code, out, err) = run(&dir, &["destroy", "--auto-approve"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("no longer in the configuration"), "{out}");
    assert!(out.contains("# (because destroy was requested)"), "{out}");
    let destroyed = format!(
        "Destroy complete! Resources: {} destroyed.",
        declared().len()
    );
    assert!(err.contains(&destroyed), "{err}");
    assert!(!err.contains("Apply complete"), "{err}");
}

#[test]
fn a_saved_destroy_plan_says_destroy_complete() {
    let (_tmp, dir) = example();
    apply(&dir);
    let (code, _, err) = run(&dir, &["plan", "--destroy", "--out", "destroy.weir"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&dir, &["apply", "destroy.weir"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Destroy complete!"), "{err}");
}

#[test]
fn target_accepts_configuration_addresses() {
    let (_tmp, dir) = example();
    let planned = |target: &str| {
        let (code, out, err) = run(&dir, &["plan", "--target", target]);
        assert_eq!(code, 0, "--target {target}: {err}");
        text_addresses(&out)
    };
    // A pipeline: its blocks, the pipeline, its triggers, and the project they need.
    assert_eq!(
        planned("pipeline.squares"),
        [
            "mage_project.laptop",
            "mage_block.squares.split_numbers",
            "mage_block.squares.square",
            "mage_block.squares.sum_squares",
            "mage_block.squares.log_total",
            "mage_pipeline.squares",
            "mage_triggers.squares",
        ]
    );
    // A schedule: its pipeline's triggers and what they depend on.
    let schedule = planned("schedule.orders_every_15_minutes");
    assert_eq!(schedule.last().unwrap(), "mage_triggers.orders_summary");
    assert!(
        !schedule.iter().any(|a| a.contains("squares")),
        "{schedule:?}"
    );
    assert_eq!(planned("deployment.laptop"), deployment_resources());
    // Resource addresses still work.
    assert_eq!(planned("mage_project.laptop"), ["mage_project.laptop"]);
}

#[test]
fn target_accepts_a_notification_address() {
    let (_tmp, dir) = example();
    std::fs::write(
        dir.join("notifications.hcl"),
        "notification \"ops\" {\n  channel     = \"slack\"\n  webhook_url = \"https://hooks.slack.com/services/T0/B0/x\"\n  on          = [\"failure\"]\n  pipelines   = [pipeline.squares]\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(&dir, &["plan", "--target", "notification.ops"]);
    assert_eq!(code, 0, "{err}");
    let planned = text_addresses(&out);
    assert!(
        planned.contains(&"mage_pipeline.squares".to_string()),
        "{planned:?}"
    );
    assert!(
        !planned.iter().any(|a| a.contains("orders_summary")),
        "{planned:?}"
    );
}

#[test]
fn a_mistyped_target_gets_a_did_you_mean() {
    let (_tmp, dir) = example();
    for (typo, meant) in [
        ("pipeline.squarez", "pipeline.squares"),
        (
            "schedule.orders_every_15_minute",
            "schedule.orders_every_15_minutes",
        ),
        ("mage_pipeline.squarez", "mage_pipeline.squares"),
    ] {
        let (code, _, err) = run(&dir, &["plan", "--target", typo]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("--target {typo}")), "{err}");
        assert!(err.contains(&format!("did you mean `{meant}`?")), "{err}");
    }
}

#[test]
fn markdown_shows_drift_before_the_planned_changes() {
    let (_tmp, dir) = example();
    apply(&dir);
    // Changed outside weir: a block file edited by hand.
    let block = dir.join("mage_project/transformers/square.py");
    let mut code = std::fs::read_to_string(&block).unwrap();
    code.push_str("# edited by hand\n");
    std::fs::write(&block, code).unwrap();
    // And a change in the configuration.
    edit(&dir.join("schedules.hcl"), "*/15 * * * *", "*/30 * * * *");
    let (code, md, err) = run(&dir, &["plan", "--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    let drift = md
        .find("Changed outside weir")
        .unwrap_or_else(|| panic!("no drift:\n{md}"));
    let changes = md
        .find("Update in place")
        .unwrap_or_else(|| panic!("no update:\n{md}"));
    assert!(drift < changes, "{md}");
}

#[test]
fn replace_of_a_configuration_block_names_its_resources() {
    let (_tmp, dir) = example();
    let (code, _, err) = run(&dir, &["plan", "--replace", "pipeline.squares"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--replace pipeline.squares: a configuration block, not a resource; --replace takes the resources it is made of: mage_block.squares.split_numbers, mage_block.squares.square, mage_block.squares.sum_squares, mage_block.squares.log_total, mage_pipeline.squares, mage_triggers.squares"),
        "{err}"
    );
    let (code, _, err) = run(&dir, &["plan", "--replace", "mage_pipeline.squarez"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("did you mean `mage_pipeline.squares`?"),
        "{err}"
    );
}
