//! The weir runtime on the local target, end to end: `weir apply` writes a Mage project with the
//! runtime, the REAL Mage scheduler (`mage start` with `WEIR_RUNTIME=1` and the project's
//! `weir/` on `PYTHONPATH`) runs a pipeline whose middle block fails, and the Slack alert it
//! sends to a local HTTP receiver carries the runtime's template variables. Needs mage-ai:
//! `scripts/test-deps.sh` installs it (the test fails, saying so, when it is missing).

#[path = "support/mage.rs"]
mod mage;

#[path = "support/cli.rs"]
mod cli;

#[path = "support/webhook.rs"]
mod webhook;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

const CONFIG: &str = r#"
deployment "local" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}

variable "slack_webhook" {
  type      = string
  sensitive = true
}

variable "api_token" {
  type      = string
  sensitive = true
  default   = "s3cr3t-token-value"
}

pipeline "orders" {
  variables = {
    multiplier = 2
    api_token  = var.api_token
  }

  block "load" {
    type   = "data_loader"
    source = "blocks/load.py"
  }

  block "transform" {
    type     = "transformer"
    source   = "blocks/transform.py"
    upstream = [block.load]
  }

  block "export" {
    type     = "data_exporter"
    source   = "blocks/export.py"
    upstream = [block.transform]
  }
}

schedule "orders_api" {
  pipeline = pipeline.orders
  type     = "api"
}

notification "alerts" {
  channel     = "slack"
  webhook_url = var.slack_webhook
  on          = ["failure"]
  pipelines   = [pipeline.orders]

  message "failure" {
    title   = "{pipeline_name} failed"
    details = "run {run_id} took {duration} ({started_at} to {finished_at}); variables {variables}; completed: {completed_blocks}; failed: {failed_blocks}"
  }
}
"#;

const BLOCKS: &[(&str, &str)] = &[
    (
        "blocks/load.py",
        "@data_loader\ndef load(*args, **kwargs):\n    return [1, 2, 3]\n",
    ),
    (
        "blocks/transform.py",
        "@transformer\ndef transform(data, *args, **kwargs):\n    raise ValueError('the middle block fails')\n",
    ),
    (
        "blocks/export.py",
        "@data_exporter\ndef export(data, *args, **kwargs):\n    pass\n",
    ),
];

fn write_config(dir: &Path) {
    std::fs::create_dir_all(dir.join("blocks")).unwrap();
    std::fs::write(dir.join("main.hcl"), CONFIG).unwrap();
    for (path, text) in BLOCKS {
        std::fs::write(dir.join(path), text).unwrap();
    }
}

#[test]
fn a_failing_run_under_mage_start_alerts_with_the_runtimes_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    write_config(&dir);
    let receiver = webhook::Webhook::start();
    let webhook = receiver.url.clone();

    let out = cli::weir(&dir)
        .args(["apply", "--auto-approve", "--var"])
        .arg(format!("slack_webhook={webhook}"))
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "apply failed:\n{printed}");
    // The paths as seen from where weir ran (`-C <dir>`).
    let project = dir.join("mage_project");
    assert!(
        printed.contains(&format!(
            "Start Mage with the weir runtime: WEIR_RUNTIME=1 PYTHONPATH={}/weir mage start {}",
            project.display(),
            project.display()
        )),
        "{printed}"
    );
    let runtime = project.join("weir");
    assert!(
        runtime.join("sitecustomize.py").is_file() && runtime.join("runtime.json").is_file(),
        "apply wrote no runtime into the project:\n{printed}"
    );

    let data_dir = tmp.path().join("mage-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let server = mage::MageServer::start_with_env(
        &project,
        &data_dir,
        &[
            ("WEIR_RUNTIME", "1"),
            ("PYTHONPATH", runtime.to_str().unwrap()),
        ],
    );
    let schedule = server.wait_for_schedule("orders", "orders_api", Duration::from_secs(90));
    let run = server.trigger_run(
        schedule["id"].as_i64().unwrap(),
        schedule["token"].as_str().unwrap(),
        json!({"multiplier": 7, "region": "eu"}),
    );
    let run_id = run["id"].as_i64().unwrap();
    let run = server.wait_for_run("orders", run_id, Duration::from_secs(180));
    assert_eq!(run["status"], "failed", "{run}");

    // The alert is sent right after the run is marked failed.
    let body = receiver
        .first_body(Duration::from_secs(60))
        .unwrap_or_else(|| {
            panic!(
                "no alert reached the receiver\n--- server log (tail) ---\n{}",
                server.log_tail(80)
            )
        });
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["blocks"][0]["text"]["text"], "orders failed");
    let text = payload["blocks"][2]["text"]["text"].as_str().unwrap();
    let prefix = format!("run {run_id} took ");
    let duration = text
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once(' '))
        .map(|(d, _)| d)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        duration.ends_with('s')
            && duration[..duration.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric()),
        "duration {duration:?} in {text}"
    );
    for needle in [
        r#"variables {"api_token": "(sensitive)", "multiplier": 7, "region": "eu"}"#,
        "completed: load;",
        "failed: transform",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert!(
        !body.contains("s3cr3t"),
        "the sensitive value leaked: {body}"
    );

    // What Python and Mage wrote next to the runtime (byte code) is no drift.
    drop(server);
    let out = cli::weir(&dir)
        .args(["plan", "--detailed-exitcode", "--var"])
        .arg(format!("slack_webhook={webhook}"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "weir plan after Mage ran should show no changes:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
