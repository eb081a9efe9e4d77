//! weir writes a Mage project, then the REAL mage-ai (from PyPI) runs it: `mage run` for a
//! linear pipeline, and `mage start` plus API triggers for dynamic blocks, conditions,
//! callbacks and schedules. Needs mage-ai: `scripts/test-deps.sh` installs it (the test fails,
//! saying so, when it is missing).

#[path = "support/mage.rs"]
mod mage;

#[path = "support/cli.rs"]
mod cli;

use cli::{apply as weir_apply, copy_config};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// After Mage ran, nothing weir owns changed.
fn weir_plan_is_clean(dir: &std::path::Path) {
    let (code, out) = cli::plan_exit(dir);
    assert_eq!(
        code, 0,
        "weir plan after Mage ran should show no changes:\n{out}"
    );
}

#[test]
fn mage_runs_the_local_example_weir_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_config(&mage::repo_root().join("examples/local"), tmp.path());
    weir_apply(&dir);
    let project = dir.join("mage_project");
    let data_dir = tmp.path().join("mage-data");
    let output = tmp.path().join("orders.json");
    let out = mage::run_pipeline_with_vars(
        &project,
        "orders_summary",
        &data_dir,
        &json!({"output_path": output.to_str().unwrap()}),
    );
    let log = mage::assert_success(&out);
    assert!(log.contains("Pipeline run completed"), "{log}");
    assert_eq!(
        mage::read_json_file(&output),
        Some(json!({"customers": {"ada": 19.75, "grace": 45.0}, "revenue": 64.75}))
    );
    // Mage changed nothing weir owns.
    weir_plan_is_clean(&dir);
}

#[test]
fn mage_scheduler_runs_dynamic_blocks_conditions_callbacks_and_schedules() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_config(
        &mage::repo_root().join("tests/fixtures/e2e_scheduler"),
        tmp.path(),
    );
    weir_apply(&dir);
    let project = dir.join("mage_project");
    let gated_triggers = project.join("pipelines/gated/triggers.yaml");
    let triggers_before = std::fs::read(&gated_triggers).unwrap();
    let data_dir = tmp.path().join("mage-data");
    let server = mage::MageServer::start(&project, &data_dir);

    // The schedules weir wrote reach Mage's database.
    let nightly = server.wait_for_schedule("gated", "gated_nightly", Duration::from_secs(90));
    assert_eq!(nightly["schedule_type"], "time");
    assert_eq!(nightly["schedule_interval"], "0 3 * * *");
    assert_eq!(nightly["status"], "active");
    let fanout = server.wait_for_schedule("fanout", "fanout_api", Duration::from_secs(60));
    let gated = server.wait_for_schedule("gated", "gated_api", Duration::from_secs(60));

    // A dynamic block fans out, its children's outputs are reduced.
    let out_file = tmp.path().join("fanout.json");
    let run = server.trigger_run(
        fanout["id"].as_i64().unwrap(),
        fanout["token"].as_str().unwrap(),
        json!({"output_path": out_file.to_str().unwrap()}),
    );
    let run = server.wait_for_run(
        "fanout",
        run["id"].as_i64().unwrap(),
        Duration::from_secs(300),
    );
    assert_eq!(run["status"], "completed", "{run}\n{}", server.log_tail(60));
    assert_eq!(
        mage::read_json_file(&out_file),
        Some(json!({"squares": [1, 4, 9], "total": 14}))
    );

    // A condition that returns False stops the gated block; the run still completes.
    let skipped_file = tmp.path().join("skipped.json");
    let run = server.trigger_run(
        gated["id"].as_i64().unwrap(),
        gated["token"].as_str().unwrap(),
        json!({"enabled": false, "output_path": skipped_file.to_str().unwrap()}),
    );
    let run = server.wait_for_run(
        "gated",
        run["id"].as_i64().unwrap(),
        Duration::from_secs(300),
    );
    assert_eq!(run["status"], "completed", "{run}\n{}", server.log_tail(60));
    let statuses = mage::block_statuses(&run);
    assert!(
        statuses
            .iter()
            .any(|(b, s)| b == "export" && s == "condition_failed"),
        "{statuses:?}"
    );
    assert!(!skipped_file.exists());

    // When it returns True the block runs, and the callback after it.
    let done_file = tmp.path().join("exported.json");
    let run = server.trigger_run(
        gated["id"].as_i64().unwrap(),
        gated["token"].as_str().unwrap(),
        json!({"enabled": true, "output_path": done_file.to_str().unwrap()}),
    );
    let run = server.wait_for_run(
        "gated",
        run["id"].as_i64().unwrap(),
        Duration::from_secs(300),
    );
    assert_eq!(run["status"], "completed", "{run}\n{}", server.log_tail(60));
    assert_eq!(mage::read_json_file(&done_file), Some(json!({"rows": 3})));
    let marker = PathBuf::from(format!("{}.done", done_file.display()));
    for _ in 0..60 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        marker.exists(),
        "the callback ran after the export\n{}",
        server.log_tail(60)
    );
    server.stop();

    // Mage did not rewrite the triggers weir wrote, and nothing weir owns changed.
    assert_eq!(
        std::fs::read(&gated_triggers).unwrap(),
        triggers_before,
        "Mage rewrote triggers.yaml"
    );
    weir_plan_is_clean(&dir);
}
