//! The Mage provider driven through the `Provider` trait, the way weir's engine drives it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;
use weir_provider_mage::MageProvider;
use weir_provider_sdk::{ErrorKind, PlannedValue, Provider, ResourceRef};

fn setup() -> (TempDir, MageProvider) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let provider = MageProvider::new(dir.path().to_path_buf());
    (dir, provider)
}

fn resource(address: &str, type_name: &str, attributes: Value) -> ResourceRef {
    ResourceRef {
        address: address.to_string(),
        type_name: type_name.to_string(),
        attributes,
        sensitive_paths: Vec::new(),
    }
}

fn project_path(dir: &TempDir, rel: &str) -> PathBuf {
    dir.path().join("mage_project").join(rel)
}

fn read_text(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn write_text(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The manifest as it stands: `manifest.json` with the journal of this run's claims and
/// releases replayed on top (the provider folds the journal in when it next opens the project).
fn manifest(dir: &TempDir) -> Value {
    let path = project_path(dir, ".weir/manifest.json");
    let mut m: Value = if path.exists() {
        serde_json::from_str(&read_text(&path))
            .unwrap_or_else(|e| panic!("manifest is not JSON: {e}"))
    } else {
        json!({"version": 1, "files": {}})
    };
    let journal = project_path(dir, ".weir/manifest.journal");
    if journal.exists() {
        for line in read_text(&journal).lines() {
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("journal line is not JSON: {e}"));
            let file = entry["file"].as_str().unwrap_or_default().to_string();
            let dirs: Vec<Value> = entry["dirs"].as_array().cloned().unwrap_or_default();
            if entry["op"] == "claim" {
                m["files"][file.as_str()] = entry["entry"].clone();
                let list = m
                    .as_object_mut()
                    .unwrap()
                    .entry("dirs")
                    .or_insert(json!([]));
                for d in dirs {
                    if !list.as_array().unwrap().contains(&d) {
                        list.as_array_mut().unwrap().push(d);
                    }
                }
                let mut sorted: Vec<Value> = list.as_array().unwrap().clone();
                sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                *list = Value::Array(sorted);
            } else {
                m["files"].as_object_mut().unwrap().remove(&file);
                if let Some(list) = m.get_mut("dirs").and_then(Value::as_array_mut) {
                    list.retain(|d| !dirs.contains(d));
                }
            }
        }
    }
    if m.get("dirs")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        m.as_object_mut().unwrap().remove("dirs");
    }
    m
}

fn plan(provider: &MageProvider, r: &ResourceRef, prior: Option<&Value>) -> PlannedValue {
    match provider.plan(&r.type_name, prior, r.attributes.clone()) {
        Ok(planned) => planned,
        Err(e) => panic!("plan of {} failed: {e}", r.address),
    }
}

async fn create(provider: &MageProvider, r: &ResourceRef) -> Value {
    match provider.create(r, &weir_provider_sdk::Cancel::new()).await {
        Ok(value) => value,
        Err(e) => panic!("create of {} failed: {e}", r.address),
    }
}

async fn read_one(provider: &MageProvider, r: &ResourceRef) -> Option<Value> {
    let mut results = provider.read(std::slice::from_ref(r)).await;
    assert_eq!(results.len(), 1);
    match results.remove(0) {
        Ok(value) => value,
        Err(e) => panic!("read of {} failed: {e}", r.address),
    }
}

/// plan → create (with the planned value, as the engine does) → read; returns
/// (planned, created, read).
async fn plan_create_read(provider: &MageProvider, r: &ResourceRef) -> (Value, Value, Value) {
    let planned = plan(provider, r, None);
    let applied = resource(&r.address, &r.type_name, planned.value.clone());
    let created = create(provider, &applied).await;
    let read = read_one(provider, &applied).await;
    let Some(read) = read else {
        panic!("{} reads as missing right after create", r.address);
    };
    (planned.value, created, read)
}

fn project_attrs() -> Value {
    json!({
        "project_dir": "mage_project",
        "project_uuid": "0123456789abcdef0123456789abcdef",
        "remote_variables_dir": "gs://acme-mage/variables",
        "logging": {"bucket": "acme-mage", "prefix": "logs"},
        "image": "mageai/mageai:0.9.80",
        "mage_version": "0.9.80"
    })
}

fn block(uuid: &str, kind: &str, up: &[&str], down: &[&str]) -> Value {
    json!({
        "uuid": uuid, "type": kind, "language": "python",
        "upstream_blocks": up, "downstream_blocks": down,
        "configuration": {"dynamic": false, "reduce_output": false},
        "retry_config": null, "timeout": null
    })
}

/// A pipeline with a dynamic block, a reducer, a conditional and a callback.
fn pipeline_attrs() -> Value {
    let mut load = block("load", "data_loader", &[], &["enrich"]);
    load["configuration"]["dynamic"] = json!(true);
    let mut enrich = block("enrich", "transformer", &["load"], &["export"]);
    enrich["configuration"]["reduce_output"] = json!(true);
    enrich["retry_config"] =
        json!({"retries": 2, "delay": 5, "max_delay": 60, "exponential_backoff": true});
    let mut export = block("export", "data_exporter", &["enrich"], &[]);
    export["timeout"] = json!(3600);
    json!({
        "project_dir": "mage_project",
        "uuid": "orders",
        "name": "orders",
        "description": "Daily orders",
        "tags": ["daily"],
        "variables": {"source": "shopify", "full_refresh": false, "batch": "0123"},
        "concurrency_config": {"block_run_limit": 2, "pipeline_run_limit": 1, "on_pipeline_run_limit_reached": "wait"},
        "notification_config": {
            "alert_on": ["trigger_failure"],
            "slack_config": {"webhook_url": "https://hooks.slack.com/services/T/B/X"},
            "message_templates": {"failure": {"title": "{pipeline_uuid} failed", "summary": "Error: {error}"}}
        },
        "blocks": [load, enrich, export],
        "conditionals": [block("weekdays", "conditional", &["export"], &[])],
        "callbacks": [block("notify", "callback", &["load", "export"], &[])]
    })
}

fn triggers_attrs(triggers: Value) -> Value {
    json!({"project_dir": "mage_project", "pipeline": "orders", "triggers": triggers, "retired": []})
}

fn nightly() -> Value {
    json!({
        "name": "nightly", "schedule_type": "time", "schedule_interval": "0 3 * * *",
        "start_time": null, "status": "active", "variables": {"full_refresh": false}, "sla": 7200,
        "settings": {"skip_if_previous_running": true, "allow_blocks_to_fail": false, "timeout": 10800, "pipeline_run_limit": null},
        "description": null, "token": null, "last_enabled_at": null
    })
}

fn on_demand() -> Value {
    json!({
        "name": "on_demand", "schedule_type": "api", "schedule_interval": null,
        "start_time": null, "status": "active", "variables": {}, "sla": null,
        "settings": {"skip_if_previous_running": false, "allow_blocks_to_fail": false, "timeout": null, "pipeline_run_limit": null},
        "description": "Run from CI", "token": null, "last_enabled_at": null
    })
}

// ---------------------------------------------------------------------------------------------
// Round trips

/// The image and its Mage version are not in `metadata.yaml` (Mage has no such key): they read
/// back as recorded, also when the file was rewritten by someone else, so only the
/// configuration changes them.
#[tokio::test]
async fn project_image_and_mage_version_read_back_as_recorded() {
    let (dir, provider) = setup();
    let r = resource("mage_project.main", "mage_project", project_attrs());
    let (_, created, _) = plan_create_read(&provider, &r).await;
    let path = project_path(&dir, "metadata.yaml");
    assert!(!read_text(&path).contains("0.9.80"));
    // Rewritten by Mage (other key order, a key of its own): parsed, not the fast path.
    std::fs::write(
        &path,
        "help_improve_mage: false\nproject_type: standalone\nproject_uuid: 0123456789abcdef0123456789abcdef\nremote_variables_dir: gs://acme-mage/variables\nlogging_config:\n  type: gcs\n  level: INFO\n  destination_config:\n    bucket: acme-mage\n    prefix: logs\nfeatures: {}\n",
    )
    .unwrap();
    let recorded = resource("mage_project.main", "mage_project", created.clone());
    assert_eq!(read_one(&provider, &recorded).await, Some(created));
}

#[tokio::test]
async fn project_round_trip_and_rendered_yaml() {
    let (dir, provider) = setup();
    let r = resource("mage_project.main", "mage_project", project_attrs());
    let (planned, created, read) = plan_create_read(&provider, &r).await;
    assert_eq!(planned, project_attrs());
    assert_eq!(created, planned);
    assert_eq!(read, planned);
    assert_eq!(
        read_text(&project_path(&dir, "metadata.yaml")),
        "project_uuid: 0123456789abcdef0123456789abcdef
project_type: standalone
help_improve_mage: false
remote_variables_dir: gs://acme-mage/variables
logging_config:
  type: gcs
  level: INFO
  destination_config:
    bucket: acme-mage
    prefix: logs
"
    );

    // Without storage: no remote variables, no logging config.
    let mut bare = project_attrs();
    bare["remote_variables_dir"] = Value::Null;
    bare["logging"] = Value::Null;
    let bare = resource("mage_project.main", "mage_project", bare);
    let updated = provider
        .update(&created, &bare, &weir_provider_sdk::Cancel::new())
        .await;
    assert_eq!(updated.as_ref().ok(), Some(&bare.attributes));
    assert_eq!(
        read_text(&project_path(&dir, "metadata.yaml")),
        "project_uuid: 0123456789abcdef0123456789abcdef\nproject_type: standalone\nhelp_improve_mage: false\n"
    );
    assert_eq!(
        read_one(&provider, &bare).await,
        Some(bare.attributes.clone())
    );
}

#[tokio::test]
async fn project_keys_added_by_mage_are_not_drift() {
    let (dir, provider) = setup();
    let r = resource("mage_project.main", "mage_project", project_attrs());
    let (_, created, _) = plan_create_read(&provider, &r).await;
    // Mage (or a user) adds keys and reorders; weir ignores what it does not manage.
    write_text(
        &project_path(&dir, "metadata.yaml"),
        "help_improve_mage: false
logging_config:
  destination_config: {bucket: acme-mage, prefix: logs}
  level: INFO
  type: gcs
project_type: standalone
project_uuid: 0123456789abcdef0123456789abcdef
remote_variables_dir: gs://acme-mage/variables
variables_dir: ~/.mage_data
features: {add_new_block_v2: true}
",
    );
    assert_eq!(read_one(&provider, &r).await, Some(created));
}

#[tokio::test]
async fn project_uuid_is_generated_once_and_kept() {
    let (_dir, provider) = setup();
    let mut attrs = project_attrs();
    attrs["project_uuid"] = json!("");
    let r = resource("mage_project.main", "mage_project", attrs);
    let planned = plan(&provider, &r, None);
    assert_eq!(planned.unknown, vec![vec!["project_uuid".to_string()]]);
    let created = create(
        &provider,
        &resource(&r.address, &r.type_name, planned.value),
    )
    .await;
    let uuid = created["project_uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(uuid.len(), 32);
    assert!(uuid.chars().all(|c| c.is_ascii_hexdigit()));
    let again = plan(&provider, &r, Some(&created));
    assert!(again.unknown.is_empty());
    assert_eq!(again.value, created);
}

#[tokio::test]
async fn pipeline_round_trip_and_rendered_yaml() {
    let (dir, provider) = setup();
    let r = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    let (planned, created, read) = plan_create_read(&provider, &r).await;
    assert_eq!(planned, pipeline_attrs());
    assert_eq!(created, planned);
    assert_eq!(read, planned);
    assert_eq!(
        read_text(&project_path(&dir, "pipelines/orders/metadata.yaml")),
        r#"uuid: orders
name: orders
description: Daily orders
type: python
tags:
- daily
blocks:
- uuid: load
  type: data_loader
  language: python
  upstream_blocks: []
  downstream_blocks:
  - enrich
  configuration:
    dynamic: true
- uuid: enrich
  type: transformer
  language: python
  upstream_blocks:
  - load
  downstream_blocks:
  - export
  configuration:
    reduce_output: true
  retry_config:
    retries: 2
    delay: 5
    max_delay: 60
    exponential_backoff: true
- uuid: export
  type: data_exporter
  language: python
  upstream_blocks:
  - enrich
  downstream_blocks: []
  timeout: 3600
conditionals:
- uuid: weekdays
  type: conditional
  language: python
  upstream_blocks:
  - export
  downstream_blocks: []
callbacks:
- uuid: notify
  type: callback
  language: python
  upstream_blocks:
  - load
  - export
  downstream_blocks: []
variables:
  source: shopify
  full_refresh: false
  batch: "0123"
concurrency_config:
  block_run_limit: 2
  pipeline_run_limit: 1
  on_pipeline_run_limit_reached: wait
notification_config:
  alert_on:
  - trigger_failure
  slack_config:
    webhook_url: https://hooks.slack.com/services/T/B/X
  message_templates:
    failure:
      title: "{pipeline_uuid} failed"
      summary: "Error: {error}"
"#
    );
}

#[tokio::test]
async fn pipeline_rewritten_by_mage_ui_reads_back_equal() {
    let (dir, provider) = setup();
    let r = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    let (_, created, _) = plan_create_read(&provider, &r).await;
    // The notebook UI dumps full block dicts (status, color, name, executor settings) in
    // another key order and flow style; false configuration keys and defaults are spelled out.
    write_text(
        &project_path(&dir, "pipelines/orders/metadata.yaml"),
        r#"blocks:
- {all_upstream_blocks_executed: true, color: null, configuration: {dynamic: true, reduce_output: false}, downstream_blocks: [enrich], executor_config: null, executor_type: local_python, has_callback: false, name: load, language: python, retry_config: null, status: executed, timeout: null, type: data_loader, upstream_blocks: [], uuid: load}
- {configuration: {reduce_output: true}, downstream_blocks: [export], name: enrich, retry_config: {retries: 2}, status: not_executed, type: transformer, upstream_blocks: [load], uuid: enrich}
- {downstream_blocks: [], name: export, status: updated, timeout: 3600, type: data_exporter, upstream_blocks: [enrich], uuid: export}
cache_block_output_in_memory: false
callbacks:
- {downstream_blocks: [], name: notify, type: callback, upstream_blocks: [load, export], uuid: notify}
concurrency_config: {block_run_limit: 2, on_pipeline_run_limit_reached: wait, pipeline_run_limit: 1}
conditionals:
- {configuration: {}, downstream_blocks: [], type: conditional, upstream_blocks: [export], uuid: weekdays}
created_at: '2026-11-29 05:00:00.000000+00:00'
data_integration: null
description: Daily orders
executor_config: {}
executor_count: 1
executor_type: null
extensions: {}
name: orders
notification_config:
  alert_on: [trigger_failure]
  message_templates:
    failure: {summary: 'Error: {error}', title: '{pipeline_uuid} failed'}
  slack_config: {webhook_url: 'https://hooks.slack.com/services/T/B/X'}
retry_config: {}
run_pipeline_in_one_process: false
settings: {triggers: null}
spark_config: {}
tags: [daily]
type: python
updated_at: '2026-11-29 06:00:00'
uuid: orders
variables: {batch: '0123', full_refresh: false, source: shopify}
variables_dir: /home/src/mage_data/default_repo
widgets: []
"#,
    );
    let read = read_one(&provider, &r).await;
    // Key order inside maps does not matter to the engine's comparison of JSON values.
    assert_eq!(read, Some(created));
}

#[tokio::test]
async fn strings_that_look_like_other_things_round_trip() {
    let (_dir, provider) = setup();
    let mut attrs = pipeline_attrs();
    attrs["description"] = json!("line 1\nline 2\n");
    attrs["tags"] = json!([
        "yes",
        "no",
        "on",
        "null",
        "~",
        "",
        "0123",
        "1e3",
        "12:30",
        "2026-01-01"
    ]);
    attrs["variables"] = json!({
        "date": "2026-11-29 05:00:00", "braces": "{x} {{y}}", "dash": "- a", "hash": "# b",
        "colon": "k: v", "quotes": "it's \"q\"", "trailing": "s ", "tab": "a\tb",
        "bell": "a\u{7}b", "unicode": "é 日本 🚀", "backslash": "C:\\x", "star": "*r",
        "at": "@daily", "n": 1, "f": 1.5, "neg": -2, "b": true, "nil": null,
        "list": ["yes", 1, "2"], "nested": {"0777": "0777"}
    });
    let r = resource("mage_pipeline.orders", "mage_pipeline", attrs);
    let (planned, _, read) = plan_create_read(&provider, &r).await;
    assert_eq!(read, planned);
    assert_eq!(planned, r.attributes);
}

#[tokio::test]
async fn block_round_trip() {
    let (dir, provider) = setup();
    let code = "@data_loader\ndef load(*args, **kwargs):\n    return [[1, 2, 3]]\n";
    let r = resource(
        "mage_block.orders_load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": code}),
    );
    let (planned, created, read) = plan_create_read(&provider, &r).await;
    assert_eq!(planned, r.attributes);
    assert_eq!(created, planned);
    assert_eq!(read, planned);
    assert_eq!(read_text(&project_path(&dir, "data_loaders/load.py")), code);

    // An edit on disk is drift, shown by read, and overwritten by update.
    write_text(
        &project_path(&dir, "data_loaders/load.py"),
        "print('edited')\n",
    );
    let drifted = read_one(&provider, &r).await;
    assert_eq!(
        drifted.as_ref().map(|v| v["code"].clone()),
        Some(json!("print('edited')\n"))
    );
    let updated = provider
        .update(&created, &r, &weir_provider_sdk::Cancel::new())
        .await;
    assert_eq!(updated.ok(), Some(r.attributes.clone()));
    assert_eq!(read_text(&project_path(&dir, "data_loaders/load.py")), code);
}

#[tokio::test]
async fn triggers_round_trip_and_rendered_yaml() {
    let (dir, provider) = setup();
    let mut fixed = nightly();
    fixed["start_time"] = json!("2026-11-29T05:00:00Z");
    fixed["token"] = json!("0123456789abcdef0123456789abcdef");
    fixed["last_enabled_at"] = json!("2026-11-29T05:00:00Z");
    let mut api = on_demand();
    api["token"] = json!("12345678901234567890123456789012");
    api["last_enabled_at"] = json!("2026-11-29T05:00:01.500Z");
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([fixed, api])),
    );
    let (planned, created, read) = plan_create_read(&provider, &r).await;
    assert_eq!(planned, r.attributes);
    assert_eq!(created, planned);
    assert_eq!(read, planned);
    assert_eq!(
        read_text(&project_path(&dir, "pipelines/orders/triggers.yaml")),
        r#"triggers:
- name: nightly
  schedule_type: time
  schedule_interval: "0 3 * * *"
  start_time: 2026-11-29 05:00:00+00:00
  status: active
  variables:
    full_refresh: false
  sla: 7200
  settings:
    skip_if_previous_running: true
    allow_blocks_to_fail: false
    timeout: 10800
  token: 0123456789abcdef0123456789abcdef
  last_enabled_at: 2026-11-29 05:00:00+00:00
- name: on_demand
  schedule_type: api
  schedule_interval: null
  start_time: null
  status: active
  settings:
    skip_if_previous_running: false
    allow_blocks_to_fail: false
  description: Run from CI
  token: "12345678901234567890123456789012"
  last_enabled_at: 2026-11-29 05:00:01.500+00:00
"#
    );
}

#[tokio::test]
async fn triggers_rewritten_by_mage_read_back_equal() {
    let (dir, provider) = setup();
    let mut fixed = nightly();
    fixed["start_time"] = json!("2026-11-29T05:00:00Z");
    fixed["token"] = json!("0123456789abcdef0123456789abcdef");
    fixed["last_enabled_at"] = json!("2026-11-29T05:00:00Z");
    let mut api = on_demand();
    api["token"] = json!("12345678901234567890123456789012");
    api["last_enabled_at"] = json!("2026-11-29T05:00:01.123456Z");
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([fixed, api])),
    );
    let (_, created, _) = plan_create_read(&provider, &r).await;

    // What `yaml.safe_dump` writes after Mage updated a trigger: sorted keys, single quotes,
    // the added defaults (`envs: []`, `pipeline_uuid`, `sla: null`, `variables: {}`,
    // `description: null`), datetimes in Python's spelling, and the triggers reordered.
    write_text(
        &project_path(&dir, "pipelines/orders/triggers.yaml"),
        "triggers:
- description: Run from CI
  envs: []
  last_enabled_at: 2026-11-29 05:00:01.123456+00:00
  name: on_demand
  pipeline_uuid: orders
  schedule_interval: null
  schedule_type: api
  settings: {}
  sla: null
  start_time: null
  status: active
  token: '12345678901234567890123456789012'
  variables: {}
- description: null
  envs: []
  last_enabled_at: 2026-11-29 05:00:00+00:00
  name: nightly
  pipeline_uuid: orders
  schedule_interval: 0 3 * * *
  schedule_type: time
  settings:
    allow_blocks_to_fail: false
    create_initial_pipeline_run: false
    skip_if_previous_running: true
    timeout: 10800
  sla: 7200
  start_time: 2026-11-29 05:00:00
  status: active
  token: 0123456789abcdef0123456789abcdef
  variables:
    full_refresh: false
",
    );
    assert_eq!(read_one(&provider, &r).await, Some(created.clone()));

    // A real change made in Mage's UI is a difference.
    let text = read_text(&project_path(&dir, "pipelines/orders/triggers.yaml"));
    write_text(
        &project_path(&dir, "pipelines/orders/triggers.yaml"),
        &text.replace(
            "status: active\n  token: '1234",
            "status: inactive\n  token: '1234",
        ),
    );
    let read = read_one(&provider, &r).await;
    assert_eq!(
        read.as_ref().map(|v| v["triggers"][1]["status"].clone()),
        Some(json!("inactive"))
    );
}

#[tokio::test]
async fn triggers_mage_would_skip_read_as_unparseable() {
    let (dir, provider) = setup();
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly()])),
    );
    let (_, created, _) = plan_create_read(&provider, &r).await;
    let path = project_path(&dir, "pipelines/orders/triggers.yaml");
    let text = read_text(&path);

    write_text(
        &path,
        &text.replace("  status: active\n", "  status: active\n  colour: red\n"),
    );
    let read = read_one(&provider, &r).await.unwrap_or_default();
    let reason = read["unparseable"].as_str().unwrap_or_default();
    assert!(reason.contains("`colour`"), "{reason}");
    assert_eq!(read["pipeline"], json!("orders"));
    assert_ne!(read, created);

    write_text(&path, "triggers: [\n");
    let read = read_one(&provider, &r).await.unwrap_or_default();
    assert!(
        read["unparseable"]
            .as_str()
            .is_some_and(|r| r.contains("triggers.yaml"))
    );

    // Update repairs it: the file is weir's.
    let updated = provider
        .update(
            &created,
            &resource(&r.address, &r.type_name, created.clone()),
            &weir_provider_sdk::Cancel::new(),
        )
        .await;
    assert_eq!(updated.ok(), Some(created.clone()));
    assert_eq!(read_one(&provider, &r).await, Some(created));
}

#[tokio::test]
async fn missing_files_read_as_none() {
    let (_dir, provider) = setup();
    let resources = vec![
        resource("mage_project.main", "mage_project", project_attrs()),
        resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs()),
        resource(
            "mage_block.x",
            "mage_block",
            json!({"project_dir": "mage_project", "path": "data_loaders/x.py", "code": ""}),
        ),
        resource(
            "mage_triggers.orders",
            "mage_triggers",
            triggers_attrs(json!([])),
        ),
    ];
    let results = provider.read(&resources).await;
    assert_eq!(results.len(), 4);
    for result in results {
        assert_eq!(result, Ok(None));
    }
}

#[tokio::test]
async fn unparseable_pipeline_is_a_difference_not_an_error() {
    let (dir, provider) = setup();
    let r = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    let (_, created, _) = plan_create_read(&provider, &r).await;
    write_text(
        &project_path(&dir, "pipelines/orders/metadata.yaml"),
        "blocks: {oops\n",
    );
    let read = read_one(&provider, &r).await.unwrap_or_default();
    assert!(read["unparseable"].is_string(), "{read}");
    assert_eq!(read["uuid"], json!("orders"));
    assert_eq!(read["project_dir"], json!("mage_project"));
    assert_ne!(read, created);
}

// ---------------------------------------------------------------------------------------------
// Ownership

#[tokio::test]
async fn refuses_to_overwrite_a_file_it_does_not_own() {
    let (dir, provider) = setup();
    let user_file = project_path(&dir, "data_loaders/load.py");
    write_text(&user_file, "# the user's own loader\n");
    let r = resource(
        "mage_block.orders_load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": "print(1)\n"}),
    );
    let err = match provider.create(&r, &weir_provider_sdk::Cancel::new()).await {
        Ok(value) => panic!("create over a user file succeeded: {value}"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains(&user_file.display().to_string()),
        "the message names the file: {}",
        err.message
    );
    assert!(err.message.contains("does not own"), "{}", err.message);
    assert!(
        err.help
            .as_deref()
            .is_some_and(|h| h.contains("move it away"))
    );
    assert_eq!(read_text(&user_file), "# the user's own loader\n");
    // Nothing was claimed.
    assert!(!project_path(&dir, ".weir/manifest.json").exists());

    // The same for the project metadata.yaml Mage's `mage init` wrote.
    let mage_init = project_path(&dir, "metadata.yaml");
    write_text(&mage_init, "project_uuid: abc\nhelp_improve_mage: true\n");
    let err = provider
        .create(
            &resource("mage_project.main", "mage_project", project_attrs()),
            &weir_provider_sdk::Cancel::new(),
        )
        .await
        .err();
    assert!(err.is_some_and(|e| e.message.contains(&mage_init.display().to_string())));
    assert_eq!(
        read_text(&mage_init),
        "project_uuid: abc\nhelp_improve_mage: true\n"
    );
}

#[tokio::test]
async fn records_files_in_the_manifest() {
    let (dir, provider) = setup();
    let code = "print(1)\n";
    create(
        &provider,
        &resource(
            "mage_block.orders_load",
            "mage_block",
            json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": code}),
        ),
    )
    .await;
    assert_eq!(
        manifest(&dir),
        json!({
            "version": 1,
            "files": {"data_loaders/load.py": {
                "sha256": "cc42155088fca5730758db72b2a5bca33112a941dfaa2d43098ec422ce4ea213",
                "owner": "mage_block.orders_load"
            }},
            "dirs": ["data_loaders"]
        })
    );
}

#[tokio::test]
async fn delete_removes_only_owned_files() {
    let (dir, provider) = setup();
    let pipeline = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    let triggers = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly()])),
    );
    let load = resource(
        "mage_block.orders_load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": "x = 1\n"}),
    );
    let export = resource(
        "mage_block.orders_export",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_exporters/export.py", "code": "x = 2\n"}),
    );
    for r in [&pipeline, &triggers, &load, &export] {
        create(&provider, r).await;
    }
    // The user keeps a file of their own next to weir's.
    let user_file = project_path(&dir, "data_loaders/mine.py");
    write_text(&user_file, "# mine\n");
    let user_note = project_path(&dir, "pipelines/orders/NOTES.md");
    write_text(&user_note, "# notes\n");

    for r in [&load, &export, &triggers, &pipeline] {
        assert_eq!(
            provider.delete(r, &weir_provider_sdk::Cancel::new()).await,
            Ok(())
        );
    }
    assert!(!project_path(&dir, "data_loaders/load.py").exists());
    assert!(!project_path(&dir, "pipelines/orders/metadata.yaml").exists());
    assert!(!project_path(&dir, "pipelines/orders/triggers.yaml").exists());
    assert_eq!(read_text(&user_file), "# mine\n");
    assert_eq!(read_text(&user_note), "# notes\n");
    // Directories weir created are removed when empty, kept when the user's files are in them.
    assert!(!project_path(&dir, "data_exporters").exists());
    assert!(project_path(&dir, "data_loaders").is_dir());
    assert!(project_path(&dir, "pipelines/orders").is_dir());
    let m = manifest(&dir);
    assert_eq!(m["files"], json!({}));
    assert_eq!(
        m["dirs"],
        json!(["data_loaders", "pipelines", "pipelines/orders"])
    );

    // Deleting again (already gone) succeeds and touches nothing.
    assert_eq!(
        provider
            .delete(&load, &weir_provider_sdk::Cancel::new())
            .await,
        Ok(())
    );
    assert_eq!(read_text(&user_file), "# mine\n");

    // Once the user's files are gone, the next delete in the project tidies up.
    fs::remove_file(&user_file).unwrap_or_else(|e| panic!("{e}"));
    fs::remove_file(&user_note).unwrap_or_else(|e| panic!("{e}"));
    create(&provider, &load).await;
    assert_eq!(
        provider
            .delete(&load, &weir_provider_sdk::Cancel::new())
            .await,
        Ok(())
    );
    assert!(!project_path(&dir, "data_loaders").exists());
}

#[tokio::test]
async fn delete_leaves_a_file_that_is_not_in_the_manifest() {
    let (dir, provider) = setup();
    let user_file = project_path(&dir, "data_loaders/load.py");
    write_text(&user_file, "# the user's\n");
    let r = resource(
        "mage_block.orders_load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": "x\n"}),
    );
    assert_eq!(
        provider.delete(&r, &weir_provider_sdk::Cancel::new()).await,
        Ok(())
    );
    assert_eq!(read_text(&user_file), "# the user's\n");
}

#[tokio::test]
async fn delete_all_removes_the_empty_manifest() {
    let (dir, provider) = setup();
    let r = resource("mage_project.main", "mage_project", project_attrs());
    create(&provider, &r).await;
    assert_eq!(
        provider.delete(&r, &weir_provider_sdk::Cancel::new()).await,
        Ok(())
    );
    assert!(!project_path(&dir, "metadata.yaml").exists());
    assert!(!project_path(&dir, ".weir").exists());
    assert!(project_path(&dir, "").is_dir());
}

#[tokio::test]
async fn a_crash_between_claim_and_write_is_completed_by_the_next_run() {
    let (dir, provider) = setup();
    // The manifest claims a file that was never written (weir stopped between the two).
    write_text(
        &project_path(&dir, ".weir/manifest.json"),
        r#"{"version": 1, "files": {"pipelines/orders/metadata.yaml": {"sha256": "00", "owner": "mage_pipeline.orders"}}, "dirs": ["pipelines", "pipelines/orders"]}"#,
    );
    let r = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    let created = create(&provider, &r).await;
    assert_eq!(read_one(&provider, &r).await, Some(created));
    let m = manifest(&dir);
    assert_eq!(
        m["files"]["pipelines/orders/metadata.yaml"]["owner"],
        json!("mage_pipeline.orders")
    );
    assert_ne!(
        m["files"]["pipelines/orders/metadata.yaml"]["sha256"],
        json!("00")
    );
}

#[tokio::test]
async fn an_unreadable_manifest_stops_writes() {
    let (dir, provider) = setup();
    write_text(&project_path(&dir, ".weir/manifest.json"), "{not json");
    let r = resource(
        "mage_block.orders_load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/load.py", "code": "x\n"}),
    );
    let err = provider
        .create(&r, &weir_provider_sdk::Cancel::new())
        .await
        .err();
    assert!(err.is_some_and(|e| e.kind == ErrorKind::Permanent && e.message.contains("manifest")));
    assert!(!project_path(&dir, "data_loaders/load.py").exists());
}

#[tokio::test]
async fn concurrent_creates_all_land_in_the_manifest() {
    let (dir, provider) = setup();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let provider = provider.clone();
        tasks.push(tokio::spawn(async move {
            let r = resource(
                &format!("mage_block.b{i}"),
                "mage_block",
                json!({"project_dir": "mage_project", "path": format!("transformers/b{i}.py"), "code": format!("x = {i}\n")}),
            );
            provider.create(&r, &weir_provider_sdk::Cancel::new()).await
        }));
    }
    for task in tasks {
        match task.await {
            Ok(result) => assert!(result.is_ok(), "{result:?}"),
            Err(e) => panic!("task failed: {e}"),
        }
    }
    let files = manifest(&dir)["files"].as_object().map(|f| f.len());
    assert_eq!(files, Some(24));
}

#[tokio::test]
async fn absolute_project_dirs_and_bad_paths() {
    let (dir, provider) = setup();
    let elsewhere = dir.path().join("elsewhere");
    let r = resource(
        "mage_block.b",
        "mage_block",
        json!({"project_dir": elsewhere.display().to_string(), "path": "custom/b.py", "code": "x\n"}),
    );
    create(&provider, &r).await;
    assert_eq!(read_text(&elsewhere.join("custom/b.py")), "x\n");

    for path in [
        "../escape.py",
        "/etc/passwd",
        "b.py",
        ".weir/manifest.json",
        "pipelines/orders/metadata.yaml",
    ] {
        let r = resource(
            "mage_block.bad",
            "mage_block",
            json!({"project_dir": "mage_project", "path": path, "code": "x\n"}),
        );
        let err = provider
            .create(&r, &weir_provider_sdk::Cancel::new())
            .await
            .err();
        assert!(
            err.is_some_and(|e| e.kind == ErrorKind::Permanent),
            "{path} was accepted"
        );
        assert!(
            provider
                .plan("mage_block", None, r.attributes.clone())
                .is_err()
        );
    }
    assert!(!dir.path().join("escape.py").exists());
}

// ---------------------------------------------------------------------------------------------
// Planning triggers

#[tokio::test]
async fn first_plan_marks_computed_trigger_values_unknown_and_apply_fills_them() {
    let (_dir, provider) = setup();
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly(), on_demand()])),
    );
    let planned = plan(&provider, &r, None);
    let path = |i: &str, leaf: &str| vec!["triggers".to_string(), i.to_string(), leaf.to_string()];
    assert_eq!(
        planned.unknown,
        vec![
            path("0", "start_time"),
            path("0", "last_enabled_at"),
            path("0", "token"),
            path("1", "last_enabled_at"),
            path("1", "token"),
        ]
    );
    assert!(planned.notes.is_empty());
    assert_eq!(planned.value["triggers"][0]["start_time"], Value::Null);
    // An api trigger has no start time.
    assert_eq!(planned.value["triggers"][1]["start_time"], Value::Null);

    let before = chrono::Utc::now();
    let created = create(
        &provider,
        &resource(&r.address, &r.type_name, planned.value),
    )
    .await;
    let start = created["triggers"][0]["start_time"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let parsed = chrono::DateTime::parse_from_rfc3339(&start)
        .unwrap_or_else(|e| panic!("start_time {start:?}: {e}"));
    assert!(
        start.ends_with('Z') && !start.contains('.'),
        "rounded to the second: {start}"
    );
    assert!((parsed.timestamp() - before.timestamp()).abs() <= 5);
    assert_eq!(created["triggers"][0]["last_enabled_at"], json!(start));
    for i in 0..2 {
        let token = created["triggers"][i]["token"].as_str().unwrap_or_default();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(
        created["triggers"][0]["token"],
        created["triggers"][1]["token"]
    );
    assert_eq!(created["triggers"][1]["start_time"], Value::Null);
    assert_eq!(read_one(&provider, &r).await, Some(created));
}

#[tokio::test]
async fn plan_keeps_start_time_token_and_last_enabled_at_from_prior() {
    let (_dir, provider) = setup();
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly(), on_demand()])),
    );
    let first = plan(&provider, &r, None);
    let created = create(&provider, &resource(&r.address, &r.type_name, first.value)).await;

    // Same configuration again: nothing unknown, the planned value is what is in state.
    let again = plan(&provider, &r, Some(&created));
    assert!(again.unknown.is_empty(), "{:?}", again.unknown);
    assert!(again.notes.is_empty());
    assert_eq!(again.value, created);

    // A new cron keeps start_time, token and last_enabled_at (Mage stamps a new one itself).
    let mut changed = nightly();
    changed["schedule_interval"] = json!("30 4 * * *");
    let r2 = resource(
        &r.address,
        &r.type_name,
        triggers_attrs(json!([changed, on_demand()])),
    );
    let planned = plan(&provider, &r2, Some(&created));
    assert_eq!(
        planned.value["triggers"][0]["start_time"],
        created["triggers"][0]["start_time"]
    );
    assert_eq!(
        planned.value["triggers"][0]["token"],
        created["triggers"][0]["token"]
    );
    assert_eq!(
        planned.value["triggers"][0]["last_enabled_at"],
        created["triggers"][0]["last_enabled_at"]
    );
    assert!(planned.unknown.is_empty(), "{:?}", planned.unknown);
    let updated = provider
        .update(
            &created,
            &resource(&r.address, &r.type_name, planned.value),
            &weir_provider_sdk::Cancel::new(),
        )
        .await;
    let updated = updated.unwrap_or_else(|e| panic!("update failed: {e}"));
    assert_eq!(
        updated["triggers"][0]["token"],
        created["triggers"][0]["token"]
    );
    assert_eq!(
        updated["triggers"][0]["last_enabled_at"],
        created["triggers"][0]["last_enabled_at"]
    );
}

#[tokio::test]
async fn removed_schedules_are_retired_as_inactive_with_a_note() {
    let (dir, provider) = setup();
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly(), on_demand()])),
    );
    let first = plan(&provider, &r, None);
    let created = create(&provider, &resource(&r.address, &r.type_name, first.value)).await;

    // `nightly` is removed from the configuration.
    let r2 = resource(
        &r.address,
        &r.type_name,
        triggers_attrs(json!([on_demand()])),
    );
    let planned = plan(&provider, &r2, Some(&created));
    assert_eq!(planned.value["retired"], json!(["nightly"]));
    let triggers = planned.value["triggers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[0]["name"], json!("on_demand"));
    let mut expected = created["triggers"][0].clone();
    expected["status"] = json!("inactive");
    assert_eq!(triggers[1], expected);
    assert_eq!(planned.notes.len(), 1);
    assert!(planned.notes[0].starts_with("schedule `nightly` was removed from the configuration;"));
    assert!(
        planned.notes[0]
            .contains("Mage never deletes a trigger when it disappears from triggers.yaml")
    );
    assert!(planned.notes[0].contains("inactive"));
    assert!(planned.unknown.is_empty());

    let updated = provider
        .update(
            &created,
            &resource(&r.address, &r.type_name, planned.value.clone()),
            &weir_provider_sdk::Cancel::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("update failed: {e}"));
    assert_eq!(updated, planned.value);
    let text = read_text(&project_path(&dir, "pipelines/orders/triggers.yaml"));
    assert!(
        text.contains("- name: nightly\n  schedule_type: time\n  schedule_interval: \"0 3 * * *\"")
    );
    assert!(text.contains("  status: inactive\n"));
    // Read is given the attributes in state, as the engine does.
    let in_state = resource(&r.address, &r.type_name, updated.clone());
    assert_eq!(read_one(&provider, &in_state).await, Some(updated.clone()));

    // The next plan still carries it, and says so again.
    let later = plan(&provider, &r2, Some(&updated));
    assert_eq!(later.value, updated);
    assert_eq!(later.notes.len(), 1);
    assert!(
        later.notes[0]
            .starts_with("schedule `nightly` was removed from the configuration earlier;")
    );

    // Putting the schedule back makes it active again, with its old token.
    let back = plan(&provider, &r, Some(&updated));
    assert_eq!(back.value["retired"], json!([]));
    assert_eq!(back.value["triggers"][0]["status"], json!("active"));
    assert_eq!(
        back.value["triggers"][0]["token"],
        created["triggers"][0]["token"]
    );
    assert!(back.notes.is_empty());
}

#[tokio::test]
async fn invalid_trigger_attributes_are_refused() {
    let (_dir, provider) = setup();
    let mut bad_status = nightly();
    bad_status["status"] = json!("paused");
    let mut unknown_setting = nightly();
    unknown_setting["settings"]["retries"] = json!(3);
    let mut bad_time = nightly();
    bad_time["start_time"] = json!("next tuesday");
    for triggers in [
        json!([bad_status]),
        json!([unknown_setting]),
        json!([bad_time]),
        json!([nightly(), nightly()]),
    ] {
        let result = provider.plan("mage_triggers", None, triggers_attrs(triggers.clone()));
        assert!(result.is_err(), "accepted {triggers}");
    }
}

#[test]
fn invalid_pipeline_attributes_are_refused() {
    let provider = MageProvider::new(PathBuf::from("."));
    let mut unknown_key = pipeline_attrs();
    unknown_key["notification_config"]["pagerduty_config"] = json!({"key": "x"});
    let mut unknown_event = pipeline_attrs();
    unknown_event["notification_config"]["message_templates"]["started"] = json!({"title": "x"});
    let mut bad_uuid = pipeline_attrs();
    bad_uuid["uuid"] = json!("../orders");
    let mut extra_block_key = pipeline_attrs();
    extra_block_key["blocks"][0]["colour"] = json!("red");
    for (what, attrs) in [
        ("pagerduty_config", unknown_key),
        ("started", unknown_event),
        ("../orders", bad_uuid),
        ("colour", extra_block_key),
    ] {
        match provider.plan("mage_pipeline", None, attrs) {
            Ok(_) => panic!("accepted {what}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Permanent);
                assert!(e.message.contains(what), "{what}: {}", e.message);
            }
        }
    }
}

#[test]
fn schemas_name_the_replacing_attributes() {
    let provider = MageProvider::new(PathBuf::from("."));
    assert_eq!(provider.name(), "mage");
    let schemas = provider.schemas();
    let force_new = |t: &str| -> Vec<String> {
        schemas
            .iter()
            .find(|s| s.type_name == t)
            .map(|s| s.force_new_attributes().map(str::to_string).collect())
            .unwrap_or_default()
    };
    assert_eq!(force_new("mage_project"), ["project_dir"]);
    assert_eq!(force_new("mage_pipeline"), ["project_dir", "uuid"]);
    assert_eq!(force_new("mage_block"), ["project_dir", "path"]);
    assert_eq!(force_new("mage_triggers"), ["project_dir", "pipeline"]);
}

#[tokio::test]
async fn a_journal_left_by_a_killed_run_is_folded_in_by_the_next() {
    let (dir, provider) = setup();
    let r = resource("mage_pipeline.orders", "mage_pipeline", pipeline_attrs());
    create(&provider, &r).await;
    drop(provider);
    // What a killed run leaves: the claims in the journal (here with a torn last line),
    // manifest.json not yet rewritten.
    let journal = project_path(&dir, ".weir/manifest.journal");
    assert!(
        journal.exists(),
        "claims go to the journal, not a rewrite of the manifest"
    );
    let mut text = read_text(&journal);
    text.push_str("{\"op\":\"claim\",\"file\":\"data_loaders/x.py\",\"ent");
    write_text(&journal, &text);
    // A user file where the torn claim pointed stays the user's.
    write_text(&project_path(&dir, "data_loaders/x.py"), "# mine\n");

    let provider = MageProvider::new(dir.path().to_path_buf());
    let again = resource(
        "mage_block.x",
        "mage_block",
        json!({"project_dir": "mage_project", "path": "data_loaders/x.py", "code": "x\n"}),
    );
    let refused = provider
        .create(&again, &weir_provider_sdk::Cancel::new())
        .await;
    assert!(
        refused.is_err(),
        "the torn claim did not make the user's file weir's"
    );
    assert_eq!(
        read_text(&project_path(&dir, "data_loaders/x.py")),
        "# mine\n"
    );
    // The folded manifest owns the pipeline file, and deleting it works.
    let on_disk: Value =
        serde_json::from_str(&read_text(&project_path(&dir, ".weir/manifest.json"))).unwrap();
    assert_eq!(
        on_disk["files"]["pipelines/orders/metadata.yaml"]["owner"],
        json!("mage_pipeline.orders")
    );
    provider
        .delete(&r, &weir_provider_sdk::Cancel::new())
        .await
        .unwrap();
    assert!(!project_path(&dir, "pipelines/orders/metadata.yaml").exists());
}

/// A trigger's token as state keeps it: a keyed digest, never the token.
fn token_digest() -> Value {
    json!({"__weir_sensitive__": "hmac-sha256:00ff"})
}

/// State keeps a token only as a keyed digest: planned from state alone, a trigger keeps the
/// digest (the plan shows the token unchanged), and apply writes the token the live file has,
/// never the digest; a new token only where the file has none.
#[tokio::test]
async fn tokens_known_only_by_their_digest_are_taken_from_the_live_file() {
    let (dir, provider) = setup();
    let r = resource(
        "mage_triggers.orders",
        "mage_triggers",
        triggers_attrs(json!([nightly(), on_demand()])),
    );
    let (_, created, _) = plan_create_read(&provider, &r).await;
    let yaml = project_path(&dir, "pipelines/orders/triggers.yaml");
    let tokens =
        |v: &Value| -> Vec<Value> { (0..2).map(|i| v["triggers"][i]["token"].clone()).collect() };
    let live_tokens = tokens(&created);
    // What state records.
    let mut sealed = created.clone();
    for i in 0..2 {
        sealed["triggers"][i]["token"] = token_digest();
    }
    // A changed cron, planned from state alone (`--refresh=false`).
    let mut changed = nightly();
    changed["schedule_interval"] = json!("0 4 * * *");
    let desired = triggers_attrs(json!([changed, on_demand()]));
    let planned = plan(
        &provider,
        &resource("mage_triggers.orders", "mage_triggers", desired),
        Some(&sealed),
    );
    assert_eq!(tokens(&planned.value), vec![token_digest(), token_digest()]);
    assert!(
        !planned
            .unknown
            .iter()
            .any(|p| p.last().is_some_and(|l| l == "token")),
        "{:?}",
        planned.unknown
    );
    let applied = resource("mage_triggers.orders", "mage_triggers", planned.value);
    let updated = match provider
        .update(&sealed, &applied, &weir_provider_sdk::Cancel::new())
        .await
    {
        Ok(v) => v,
        Err(e) => panic!("update failed: {e}"),
    };
    assert_eq!(tokens(&updated), live_tokens);
    let text = read_text(&yaml);
    assert!(text.contains("0 4 * * *"), "{text}");
    assert!(!text.contains("__weir_sensitive__"), "{text}");
    for t in &live_tokens {
        assert!(text.contains(t.as_str().unwrap_or("?")), "{text}");
    }

    // Without the file, a new token (never the digest).
    fs::remove_file(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let updated = match provider
        .update(&sealed, &applied, &weir_provider_sdk::Cancel::new())
        .await
    {
        Ok(v) => v,
        Err(e) => panic!("update failed: {e}"),
    };
    for (new, old) in tokens(&updated).iter().zip(&live_tokens) {
        assert!(new.is_string() && new != old, "{new} {old}");
    }
    assert!(!read_text(&yaml).contains("__weir_sensitive__"));
}

/// Any other value known only by its digest is refused, never written.
#[tokio::test]
async fn a_value_known_only_by_its_digest_is_never_written() {
    let (dir, provider) = setup();
    let mut attrs = pipeline_attrs();
    attrs["variables"]["source"] = token_digest();
    let r = resource("mage_pipeline.orders", "mage_pipeline", attrs);
    let err = match provider.create(&r, &weir_provider_sdk::Cancel::new()).await {
        Ok(v) => panic!("a digest was written: {v}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("digest"), "{err}");
    assert!(!project_path(&dir, "pipelines/orders/metadata.yaml").exists());
}
