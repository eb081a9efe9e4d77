#![recursion_limit = "256"]

//! The rendered files, read by PyYAML (`yaml.safe_load`), the reader Mage uses.
//!
//! Uses the Python of the Mage test environment (mage-ai depends on PyYAML): `WEIR_TEST_MAGE`
//! names its `mage` executable, else `<repo>/.test-deps/mage-venv`. `scripts/test-deps.sh`
//! installs it; without it the test fails saying so.

use std::process::Command;

use serde_json::{Value, json};
use weir_provider_mage::MageProvider;
use weir_provider_sdk::{Provider, ResourceRef};

const LOADER: &str = r#"
import datetime, json, sys, yaml

def conv(v):
    if isinstance(v, datetime.datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, datetime.date):
        return {"$date": v.isoformat()}
    if isinstance(v, dict):
        return {str(k): conv(x) for k, x in v.items()}
    if isinstance(v, list):
        return [conv(x) for x in v]
    return v

out = {}
for path in sys.argv[1:]:
    with open(path) as f:
        out[path] = conv(yaml.safe_load(f.read()))
print(json.dumps(out))
"#;

fn tricky_strings() -> Value {
    json!({
        "yes": "yes", "no": "No", "on": "on", "null": "null", "tilde": "~", "empty": "",
        "octal": "0123", "float": "1e3", "inf": ".inf", "sexagesimal": "12:30",
        "date": "2026-01-01", "datetime": "2026-11-29 05:00:00",
        "braces": "{pipeline_uuid} {{x}}", "dash": "- item", "hash": "# not a comment",
        "colon": "key: value", "quote": "it's \"quoted\"", "trailing": "space ",
        "multiline": "line 1\nline 2\n", "tab": "a\tb", "bell": "a\u{7}b",
        "unicode": "é ü 日本 🚀", "backslash": "C:\\path", "star": "*ref", "amp": "&anchor",
        "bang": "!tag", "percent": "%YAML", "at": "@daily", "backtick": "`x`",
        "pipe": "| x", "gt": "> x", "question": "? x", "comma": "a, b", "bracket": "[a]",
        "number": 42, "real": 1.5, "negative": -3, "bool": false, "nothing": null,
        "list": ["yes", 1, "2"], "nested": {"deep": {"0777": "0777"}}
    })
}

fn resource(address: &str, type_name: &str, attributes: Value) -> ResourceRef {
    ResourceRef {
        address: address.to_string(),
        type_name: type_name.to_string(),
        attributes,
        sensitive_paths: Vec::new(),
    }
}

/// The Python that Mage itself runs with.
fn mage_python() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = match std::env::var_os("WEIR_TEST_MAGE") {
        Some(mage) => std::path::PathBuf::from(mage).with_file_name("python"),
        None => repo.join(".test-deps/mage-venv/bin/python"),
    };
    assert!(
        python.exists(),
        "no Python with PyYAML at {}: run scripts/test-deps.sh (it installs mage-ai, which brings PyYAML)",
        python.display()
    );
    python
}

#[tokio::test]
async fn needs_pyyaml_reads_rendered_files_as_mage_would() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let provider = MageProvider::new(dir.path().to_path_buf());
    let strings = tricky_strings();

    let project = resource(
        "mage_project.main",
        "mage_project",
        json!({"project_dir": "p", "project_uuid": "12345678901234567890123456789012",
               "remote_variables_dir": "gs://b/variables", "logging": {"bucket": "b", "prefix": "0123"}}),
    );
    let pipeline = resource(
        "mage_pipeline.orders",
        "mage_pipeline",
        json!({"project_dir": "p", "uuid": "orders", "name": "yes", "description": "line 1\nline 2",
               "tags": ["on", "2026-01-01"], "variables": strings,
               "notification_config": {"message_templates": {"failure": {"title": "{pipeline_uuid}: failed", "summary": "{error}"}}},
               "blocks": [{"uuid": "load", "type": "data_loader", "upstream_blocks": [], "downstream_blocks": [],
                           "configuration": {"dynamic": true}}]}),
    );
    let triggers = resource(
        "mage_triggers.orders",
        "mage_triggers",
        json!({"project_dir": "p", "pipeline": "orders", "triggers": [
            {"name": "nightly", "schedule_type": "time", "schedule_interval": "0 3 * * *",
             "start_time": "2026-11-29T05:00:00Z", "status": "active", "variables": strings,
             "sla": 7200, "settings": {"skip_if_previous_running": true, "allow_blocks_to_fail": false,
             "timeout": 10800, "pipeline_run_limit": 1}, "description": "no",
             "token": "12345678901234567890123456789012", "last_enabled_at": "2026-11-29T05:00:01.250Z"},
            {"name": "on", "schedule_type": "api", "schedule_interval": null, "start_time": null,
             "status": "inactive", "settings": {"skip_if_previous_running": false, "allow_blocks_to_fail": false,
             "timeout": null, "pipeline_run_limit": null}, "token": "1e100000000000000000000000000000"}
        ], "retired": []}),
    );
    for r in [&project, &pipeline, &triggers] {
        if let Err(e) = provider.create(r, &weir_provider_sdk::Cancel::new()).await {
            panic!("create {}: {e}", r.address);
        }
    }

    let root = dir.path().join("p");
    let files = [
        root.join("metadata.yaml"),
        root.join("pipelines/orders/metadata.yaml"),
        root.join("pipelines/orders/triggers.yaml"),
    ];
    let output = Command::new(mage_python())
        .arg("-c")
        .arg(LOADER)
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); install Python 3 and PyYAML (pip install pyyaml)")
        });
    assert!(
        output.status.success(),
        "PyYAML could not load the files (is PyYAML installed? pip install pyyaml): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("loader output is not JSON: {e}"));
    let get = |i: usize| loaded[files[i].display().to_string()].clone();

    let metadata = get(0);
    assert_eq!(
        metadata["project_uuid"],
        json!("12345678901234567890123456789012")
    );
    assert_eq!(metadata["help_improve_mage"], json!(false));
    assert_eq!(
        metadata["logging_config"]["destination_config"]["prefix"],
        json!("0123")
    );

    let pipe = get(1);
    assert_eq!(pipe["name"], json!("yes"));
    assert_eq!(pipe["description"], json!("line 1\nline 2"));
    assert_eq!(pipe["tags"], json!(["on", "2026-01-01"]));
    assert_eq!(pipe["variables"], strings);
    assert_eq!(
        pipe["notification_config"]["message_templates"]["failure"]["title"],
        json!("{pipeline_uuid}: failed")
    );
    assert_eq!(pipe["blocks"][0]["configuration"], json!({"dynamic": true}));

    let trig = get(2);
    let nightly = &trig["triggers"][0];
    assert_eq!(nightly["schedule_interval"], json!("0 3 * * *"));
    assert_eq!(
        nightly["start_time"],
        json!({"$datetime": "2026-11-29T05:00:00+00:00"})
    );
    assert_eq!(
        nightly["last_enabled_at"],
        json!({"$datetime": "2026-11-29T05:00:01.250000+00:00"})
    );
    assert_eq!(nightly["variables"], strings);
    assert_eq!(nightly["description"], json!("no"));
    assert_eq!(nightly["token"], json!("12345678901234567890123456789012"));
    assert_eq!(
        nightly["settings"],
        json!({"skip_if_previous_running": true, "allow_blocks_to_fail": false, "pipeline_run_limit": 1, "timeout": 10800})
    );
    let api = &trig["triggers"][1];
    assert_eq!(api["name"], json!("on"));
    assert_eq!(api["schedule_interval"], Value::Null);
    assert_eq!(api["start_time"], Value::Null);
    assert_eq!(api["token"], json!("1e100000000000000000000000000000"));
    // Exactly the keys Mage's Trigger dataclass knows (none of its required ones missing).
    for t in trig["triggers"].as_array().cloned().unwrap_or_default() {
        let keys: Vec<String> = t
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for key in ["name", "schedule_type", "schedule_interval", "start_time"] {
            assert!(keys.iter().any(|k| k == key), "missing {key}");
        }
        for key in &keys {
            assert!(
                [
                    "name",
                    "schedule_type",
                    "schedule_interval",
                    "start_time",
                    "status",
                    "variables",
                    "sla",
                    "settings",
                    "description",
                    "token",
                    "last_enabled_at",
                    "envs"
                ]
                .contains(&key.as_str()),
                "unknown key {key}"
            );
        }
    }
}
