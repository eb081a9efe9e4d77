//! Proves the Mage test harness (tests/support/mage.rs) against the REAL mage-ai, using the hand-written project
//! in tests/fixtures/mage_handmade. Needs mage-ai: run `scripts/test-deps.sh` once (or `scripts/test.sh`).

#[path = "support/mage.rs"]
mod mage;

use std::time::{Duration, Instant};

use serde_json::json;

/// Copies the fixture project into a fresh temp dir; returns (tempdir guard, project path, data dir).
fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let project = mage::copy_project(&mage::fixture("mage_handmade"), tmp.path());
    let data_dir = tmp.path().join("mage-data");
    (tmp, project, data_dir)
}

#[test]
fn mage_run_linear_pipeline_outputs_data() {
    let (tmp, project, data_dir) = setup();
    let out_file = tmp.path().join("linear-out.json");

    let t = Instant::now();
    let out = mage::run_pipeline_with_vars(
        &project,
        "linear",
        &data_dir,
        &json!({ "output_path": out_file.to_str().unwrap(), "multiplier": 3 }),
    );
    let log = mage::assert_success(&out);
    eprintln!("mage run linear took {:?}", t.elapsed());
    assert!(
        log.contains("Pipeline run completed"),
        "unexpected mage run output:\n{log}"
    );

    // Recommended check: the exporter wrote the result to the path passed as a runtime variable.
    let written = mage::read_json_file(&out_file).expect("exporter wrote output_path");
    assert_eq!(
        written,
        json!({ "values": [3, 6, 9], "sum": 18, "multiplier": 3 })
    );

    // Mage's own stored block outputs (no partition for `mage run`).
    assert_eq!(
        mage::block_output(&data_dir, &project, "linear", "load_numbers"),
        Some(json!({ "values": [1, 2, 3] }))
    );
    assert_eq!(
        mage::block_output(&data_dir, &project, "linear", "export_numbers"),
        Some(written)
    );
    assert!(
        mage::project_data_dir(&data_dir, &project)
            .join("mage-ai.db")
            .exists(),
        "sqlite DB is per data dir"
    );

    // Without runtime vars the pipeline's own `variables` apply (multiplier: 2) and nothing is written.
    let out = mage::run_pipeline(&project, "linear", &data_dir);
    mage::assert_success(&out);
    assert_eq!(
        mage::block_output(&data_dir, &project, "linear", "export_numbers"),
        Some(json!({ "values": [2, 4, 6], "sum": 12, "multiplier": 2 }))
    );
}

#[test]
fn mage_server_api_trigger_runs_dynamic_pipeline() {
    let (tmp, project, data_dir) = setup();
    let triggers_yaml = project.join("pipelines/fanout/triggers.yaml");
    let triggers_before = std::fs::read(&triggers_yaml).unwrap();
    let out_file = tmp.path().join("fanout-out.json");

    let t = Instant::now();
    let server = mage::MageServer::start(&project, &data_dir);
    eprintln!(
        "mage start: /api/status up after {:?} on port {}",
        t.elapsed(),
        server.port
    );

    let status = server.get("/api/status");
    eprintln!("status: {status}");

    let t = Instant::now();
    let schedule = server.wait_for_schedule("fanout", "api_fanout", Duration::from_secs(60));
    eprintln!("trigger synced after {:?}: {schedule}", t.elapsed());
    assert_eq!(schedule["schedule_type"], "api");
    assert_eq!(schedule["status"], "active");
    assert_eq!(schedule["token"], "0123456789abcdef0123456789abcdef");
    let schedule_id = schedule["id"].as_i64().expect("schedule id");

    let t = Instant::now();
    let run = server.trigger_run(
        schedule_id,
        "0123456789abcdef0123456789abcdef",
        json!({ "factor": 100, "output_path": out_file.to_str().unwrap() }),
    );
    let run_id = run["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run id in {run}"));
    let run = server.wait_for_run("fanout", run_id, Duration::from_secs(240));
    eprintln!(
        "dynamic run {run_id} finished after {:?}: {:?}",
        t.elapsed(),
        mage::block_statuses(&run)
    );
    assert_eq!(
        run["status"],
        "completed",
        "run: {}\nlog:\n{}",
        run,
        server.log_tail(80)
    );

    let statuses = mage::block_statuses(&run);
    for child in [
        "scale_item:item_1",
        "scale_item:item_2",
        "scale_item:item_3",
    ] {
        assert!(
            statuses.iter().any(|(b, s)| b == child && s == "completed"),
            "dynamic child {child} missing/not completed: {statuses:?}"
        );
    }

    // API payload variables override the trigger's (factor: 10) and the pipeline's (factor: 1).
    let expected = json!({
        "items": [
            { "id": 1, "scaled": 100 },
            { "id": 2, "scaled": 200 },
            { "id": 3, "scaled": 300 }
        ],
        "total": 600,
        "factor": 100
    });
    assert_eq!(mage::read_json_file(&out_file), Some(expected.clone()));
    assert_eq!(server.block_output("fanout", "combine"), Some(expected));
    // Stored outputs: the dynamic parent's output_0 is the item list; children are stored per index.
    assert_eq!(
        server.block_output("fanout", "fan_out"),
        Some(json!([{ "id": 1, "value": 1 }, { "id": 2, "value": 2 }, { "id": 3, "value": 3 }]))
    );
    assert_eq!(
        server.dynamic_child_outputs("fanout", "scale_item"),
        vec![
            json!({ "id": 1, "scaled": 100 }),
            json!({ "id": 2, "scaled": 200 }),
            json!({ "id": 3, "scaled": 300 })
        ]
    );

    // With `last_enabled_at` preset, Mage does not rewrite triggers.yaml (it only rewrites the file to fill that field in).
    assert_eq!(
        std::fs::read(&triggers_yaml).unwrap(),
        triggers_before,
        "Mage rewrote triggers.yaml"
    );

    let t = Instant::now();
    server.stop();
    eprintln!("server stopped in {:?}", t.elapsed());
}
