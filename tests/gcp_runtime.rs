//! The whole `gcp` architecture on one machine, with real parts only: the real mage-ai 0.9.80,
//! a real PostgreSQL standing in for Cloud SQL, `fake-gcs-server` behind the sandbox's storage
//! front, the sandbox with processes on (the scheduler VM's container and each profile job's
//! execution run as local processes), and the `weir` binary.

#[path = "support/gcp.rs"]
mod gcp;
#[path = "support/mage.rs"]
mod mage;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/webhook.rs"]
mod webhook;

use std::process::Command;

use postgres::Postgres;
use webhook::Webhook;

/// The Python of the mage venv (it has psycopg2, as the Mage image does).
fn mage_python() -> std::path::PathBuf {
    mage::mage_bin().with_file_name("python")
}

#[test]
fn postgres_serves_a_database_on_its_unix_socket_only() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("acme:us-central1:db");
    let db = Postgres::start(&sockets, 5432, &[("mage", "mage")]);
    assert!(sockets.join(".s.PGSQL.5432").exists());
    let url = format!("postgresql://mage@/mage?host={}", sockets.display());
    let check = "import sys, psycopg2\n\
                 c = psycopg2.connect(sys.argv[1])\n\
                 cur = c.cursor()\n\
                 cur.execute('select current_user, current_database(), inet_server_port()')\n\
                 print(cur.fetchone())";
    let out = Command::new(mage_python())
        .args(["-c", check, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        db.log()
    );
    // No TCP: the server has no port of its own.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "('mage', 'mage', None)"
    );
    let socket = sockets.join(".s.PGSQL.5432");
    drop(db);
    assert!(!socket.exists(), "the server still runs after drop");
}

// ---------------------------------------------------------------------------------------------
// The end to end
// ---------------------------------------------------------------------------------------------

const PROJECT: &str = "acme-e2e";
const PIPELINE: &str = "orders";
/// The block with a profile.
const MIDDLE: &str = "transform";
/// The profile's pre-created Cloud Run job (`mage-<deployment>-<profile>`).
const JOB: &str = "mage-e2e-heavy";
/// The scheduler VM (`mage-<deployment>-scheduler`).
const VM: &str = "mage-e2e-scheduler";
/// The Cloud SQL instance's connection name: its socket's folder under `--cloudsql-dir`.
const CONNECTION: &str = "acme-e2e:us-central1:mage-e2e-db";

const MAIN_HCL: &str = r#"
variable "webhook" {
  type      = string
  sensitive = true
}

deployment "e2e" {
  target  = "gcp"
  project = "acme-e2e"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  webserver {
    cpu    = 1
    memory = "2Gi"
  }
  scheduler {
    machine_type = "e2-micro"
    zone         = "us-central1-a"
  }
  database {
    tier    = "db-f1-micro"
    version = "POSTGRES_16"
  }
  storage {
    bucket   = "acme-e2e-mage"
    location = "us-central1"
  }
}

resource_profile "heavy" {
  cpu     = 2
  memory  = "4Gi"
  timeout = "10m"
}

pipeline "orders" {
  variables = {
    fail = false
  }

  block "load" {
    type   = "data_loader"
    source = "blocks/load.py"
  }
  block "transform" {
    type     = "transformer"
    source   = "blocks/transform.py"
    upstream = [block.load]
    profile  = resource_profile.heavy
  }
  block "export" {
    type     = "data_exporter"
    source   = "blocks/export.py"
    upstream = [block.transform]
  }
}

schedule "on_demand" {
  pipeline = pipeline.orders
  type     = "api"
}

notification "alerts" {
  channel     = "slack"
  webhook_url = var.webhook
  on          = ["failure"]
  pipelines   = [pipeline.orders]

  message "failure" {
    title   = "{pipeline_name} failed"
    summary = "run {run_id} took {duration}; variables {variables}; failed: {failed_blocks}; completed: {completed_blocks}"
    details = "run {run_id} took {duration}; variables {variables}; failed: {failed_blocks}; completed: {completed_blocks}"
  }
}
"#;

const LOAD_PY: &str = r#"import os

if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load(*args, **kwargs):
    return {'n': 3, 'pid': os.getpid()}
"#;

/// The middle block: says where it ran (its process and working directory), or fails when
/// the run's variable `fail` is set.
const TRANSFORM_PY: &str = r#"import os

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(data, *args, **kwargs):
    if kwargs.get('fail'):
        raise ValueError('the run asked the transform to fail')
    return {'n': data['n'] * 2, 'pid': os.getpid(), 'cwd': os.getcwd(), 'loader_pid': data['pid']}
"#;

const EXPORT_PY: &str = r#"if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export(data, *args, **kwargs):
    return {'n': data['n'] + 1}
"#;

/// Stands in for the Mage image's `/app/run_app.sh`: with arguments (a job's block run), runs
/// them; without, `mage start` on the release. On the VM, Mage runs as the scheduler
/// (`INSTANCE_TYPE=scheduler`, which serves only `/api/status`); here the same process also
/// serves Mage's API, standing in for the web server (a Cloud Run service, which the sandbox
/// does not run), so that the test needs one Mage. The release's `weir` folder on
/// `PYTHONPATH` is made absolute: the release is fetched to a relative `WEIR_RELEASE_DIR`, one
/// per process, as each container has a file system of its own.
const RUN_APP_SH: &str = r#"#!/bin/sh
set -e
absolute=""
old_ifs=$IFS
IFS=:
for entry in ${PYTHONPATH:-}; do
  case "$entry" in
    /*) ;;
    *) entry="$PWD/$entry" ;;
  esac
  absolute="${absolute:+$absolute:}$entry"
done
IFS=$old_ifs
export PYTHONPATH="$absolute"
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
INSTANCE_TYPE=server_and_scheduler exec mage start "$PWD/$WEIR_RELEASE_DIR" --host 127.0.0.1 --port "$WEIR_TEST_MAGE_PORT"
"#;

/// The text of the first message `webhook` got (every string of its JSON, one a line), waiting
/// up to `timeout` for it.
fn first_message(webhook: &Webhook, timeout: std::time::Duration) -> Option<String> {
    let body = webhook.first_body(timeout)?;
    let json: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the webhook got no JSON ({e}): {body}"));
    let mut text = Vec::new();
    strings_of(&json, &mut text);
    Some(text.join("\n"))
}

fn strings_of(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| strings_of(v, out)),
        _ => {}
    }
}

/// The exchanges the sandbox recorded, from line `from` on.
fn exchanges(record: &std::path::Path, from: usize) -> Vec<serde_json::Value> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn record_len(record: &std::path::Path) -> usize {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .count()
}

/// The `:run` calls recorded, and any Cloud Run job created or deleted.
fn job_calls(exchanges: &[serde_json::Value]) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut runs = Vec::new();
    let mut lifecycle = Vec::new();
    for e in exchanges {
        if e["service"] != "run.googleapis.com" {
            continue;
        }
        let path = e["path"].as_str().unwrap_or_default();
        let method = e["method"].as_str().unwrap_or_default();
        if method == "POST" && path.ends_with(":run") {
            runs.push(e.clone());
        } else if (method == "POST" && path.ends_with("/jobs"))
            || (method == "DELETE" && path.contains("/jobs/"))
        {
            lifecycle.push(format!("{method} {path}"));
        }
    }
    (runs, lifecycle)
}

/// The text of the logs of every process the sandbox started (for a failure's message).
fn process_logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for entry in entries {
        let log = std::fs::read_to_string(entry.join(sandbox_log_file())).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        out.push_str(&format!(
            "--- {} (last 60 lines) ---\n{tail}\n",
            entry.display()
        ));
    }
    out
}

fn sandbox_log_file() -> &'static str {
    weir_sandbox::processes::LOG_FILE
}

/// Prints every process's log if the test panics.
struct ShowLogsOnPanic(std::path::PathBuf);

impl Drop for ShowLogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", process_logs(&self.0));
        }
    }
}

/// Whether `text` is a duration as the runtime writes it: `42s`, `3m07s`, `1h02m03s`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let unit = rest[digits..].chars().next();
        if digits == 0 || !matches!(unit, Some('h' | 'm' | 's')) {
            return false;
        }
        rest = &rest[digits + 1..];
        parts += 1;
    }
    parts > 0 && text.ends_with('s')
}

#[test]
fn the_whole_gcp_architecture_runs_on_one_machine_profile_blocks_on_their_job_and_alerts_with_the_new_placeholders()
 {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let lap = |what: &str| eprintln!("[e2e {:>6.1}s] {what}", started.elapsed().as_secs_f64());
    mage::kill_orphaned_mage_processes();

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let processes = root.join("processes");
    let _logs = ShowLogsOnPanic(processes.clone());
    let data_dir = root.join("mage-data");
    for dir in [&processes, &data_dir, &root.join("home")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let entrypoint = root.join("run_app.sh");
    std::fs::write(&entrypoint, RUN_APP_SH).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&entrypoint, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // PostgreSQL standing in for Cloud SQL, its socket where the Cloud SQL volume is seen.
    let sql_dir = root.join("sql");
    let db = Postgres::start(&sql_dir.join(CONNECTION), 5432, &[("mage", "mage")]);
    lap("PostgreSQL is up");

    let receiver = Webhook::start();
    let mage_port = mage::free_port();
    let sandbox_port = mage::free_port();
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let mage_bin_dir = mage::mage_bin().parent().unwrap().to_owned();
    let tag = format!("{}:gcp-runtime", std::process::id());
    let mut containers = None;
    let cloud = gcp::Cloud::start_with(
        weir_sandbox::run_jobs::Behaviour::default(),
        sandbox_port,
        |sandbox| {
            let path = format!("{}:/usr/local/bin:/usr/bin:/bin", mage_bin_dir.display());
            let home = root.join("home");
            let env: [(&str, &str); 11] = [
                ("PATH", &path),
                ("HOME", home.to_str().unwrap()),
                ("WEIR_IMAGE_ENTRYPOINT", entrypoint.to_str().unwrap()),
                ("WEIR_RELEASE_DIR", "release"),
                ("MAGE_DATA_DIR", data_dir.to_str().unwrap()),
                ("STORAGE_EMULATOR_HOST", &sandbox_url),
                ("WEIR_GOOGLE_ENDPOINT", &sandbox_url),
                ("REQUIRE_USER_AUTHENTICATION", "0"),
                ("WEIR_TEST_MAGE_PORT", &mage_port.to_string()),
                ("WEIR_TEST_MAGE_OWNER", &tag),
                ("PYTHONUNBUFFERED", "1"),
            ];
            let sandbox = env
                .iter()
                .fold(sandbox, |s, (name, value)| s.process_env(name, value))
                .run_processes(true)
                .cloudsql_dir(sql_dir.clone())
                .process_dir(processes.clone());
            containers = Some(sandbox.vm_containers());
            sandbox
        },
    );
    lap("the sandbox and fake-gcs-server are up");

    // `weir apply` creates everything, the code release included, and the scheduler VM.
    let config = root.join("config");
    std::fs::create_dir_all(config.join("blocks")).unwrap();
    std::fs::write(config.join("main.hcl"), MAIN_HCL).unwrap();
    for (name, code) in [
        ("load.py", LOAD_PY),
        ("transform.py", TRANSFORM_PY),
        ("export.py", EXPORT_PY),
    ] {
        std::fs::write(config.join("blocks").join(name), code).unwrap();
    }
    let out = cloud
        .weir(&config)
        .args(["apply", "--auto-approve"])
        .env("WEIR_VAR_webhook", &receiver.url)
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir apply failed:\n{printed}");
    assert!(
        !printed.contains(&receiver.url),
        "the webhook is in apply's output:\n{printed}"
    );
    lap("weir apply is done");

    // The sandbox started the VM's container: it fetched the release and started Mage.
    let containers = containers.unwrap();
    let state = containers
        .state(VM)
        .unwrap_or_else(|| panic!("the sandbox runs no container for the VM {VM}"));
    let scheduler_dir = state.log.parent().unwrap().to_owned();
    let release = scheduler_dir.join("release");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(status) = containers.state(VM).and_then(|s| s.exited) {
            panic!("the scheduler's container ended ({status}) before Mage answered");
        }
        if mage::http_request(mage_port, "GET", "/api/status", None, &[])
            .is_ok_and(|r| r.status == 200)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Mage did not answer /api/status within 240 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let server = mage::MageServer::attach(
        mage_port,
        &release,
        &data_dir,
        &state.log,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("the scheduler's Mage did not come up: {e}"));
    assert!(
        release.join("weir/runtime.json").is_file(),
        "the release has no weir runtime"
    );
    lap("Mage is up (the scheduler VM's container)");

    let schedule = server.wait_for_schedule(PIPELINE, "on_demand", Duration::from_secs(60));
    let id = schedule["id"].as_i64().unwrap();
    let token = schedule["token"].as_str().unwrap().to_owned();
    lap("the API trigger is in Mage");

    // A run: the middle block runs as one execution of its profile's job, in its own process.
    let mark = record_len(&cloud.record);
    let run = server.trigger_run(id, &token, serde_json::json!({"label": "ok"}));
    let run_id = run["id"].as_i64().unwrap();
    let done = server.wait_for_run(PIPELINE, run_id, Duration::from_secs(300));
    lap("the first run ended");
    assert_eq!(
        done["status"],
        "completed",
        "{:?}\n{}",
        mage::block_statuses(&done),
        server.log_tail(80)
    );
    let (runs, lifecycle) = job_calls(&exchanges(&cloud.record, mark));
    assert!(
        lifecycle.is_empty(),
        "jobs were created or deleted during the run: {lifecycle:?}"
    );
    assert_eq!(runs.len(), 1, "one :run for one profile block: {runs:#?}");
    let path = runs[0]["path"].as_str().unwrap();
    assert_eq!(
        path,
        format!("/v2/projects/{PROJECT}/locations/us-central1/jobs/{JOB}:run")
    );
    let args: Vec<String> = runs[0]["body"]["overrides"]["containerOverrides"][0]["args"]
        .as_array()
        .unwrap_or_else(|| panic!("the :run has no args override: {}", runs[0]))
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[..2], ["mage", "run"], "{args:?}");
    assert_eq!(args[2], release.display().to_string(), "{args:?}");
    assert_eq!(args[3], PIPELINE, "{args:?}");
    let block_at = args
        .iter()
        .position(|a| a == "--block-uuid")
        .unwrap_or_else(|| panic!("{args:?}"));
    assert_eq!(args[block_at + 1], MIDDLE, "{args:?}");
    assert!(runs[0]["status"] == 200, "{}", runs[0]);

    let middle = done["block_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_uuid"] == MIDDLE)
        .unwrap_or_else(|| panic!("no block run of {MIDDLE}: {done}"))
        .clone();
    // Mage shows the block's output (a dict, as a one-row table): it ran in the execution's
    // process, in the execution's directory, not in the scheduler's process.
    let outputs = server.get(&format!("/api/block_runs/{}/outputs", middle["id"]));
    let sample = &outputs["outputs"][0]["sample_data"];
    let columns = sample["columns"].as_array().cloned().unwrap_or_default();
    let row = sample["rows"][0].as_array().cloned().unwrap_or_default();
    let field = |name: &str| {
        let at = columns.iter().position(|c| c == name);
        at.and_then(|i| row.get(i).cloned())
            .unwrap_or_else(|| panic!("the output has no {name}: {outputs}"))
    };
    assert_eq!(field("n"), 6, "{outputs}");
    let cwd = field("cwd");
    let cwd = std::path::Path::new(cwd.as_str().unwrap());
    assert_eq!(cwd.parent(), Some(processes.as_path()), "{outputs}");
    assert!(
        cwd.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("{JOB}-")),
        "the middle block did not run in its job's execution: {outputs}"
    );
    assert_ne!(field("pid"), field("loader_pid"), "{outputs}");
    lap("the run is checked");

    // The same pipeline with the middle block failing: the run fails and Slack hears of it.
    let mark = record_len(&cloud.record);
    let run = server.trigger_run(
        id,
        &token,
        serde_json::json!({"fail": true, "label": "boom"}),
    );
    let run_id = run["id"].as_i64().unwrap();
    let failed = server.wait_for_run(PIPELINE, run_id, Duration::from_secs(300));
    lap("the failing run ended");
    assert_eq!(
        failed["status"],
        "failed",
        "{:?}",
        mage::block_statuses(&failed)
    );
    let (runs, lifecycle) = job_calls(&exchanges(&cloud.record, mark));
    assert!(lifecycle.is_empty(), "{lifecycle:?}");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let message = first_message(&receiver, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "no notification reached the webhook\n{}",
            server.log_tail(80)
        )
    });
    lap("the notification arrived");
    eprintln!("[e2e] the alert's text:\n{message}");
    assert!(message.contains(&format!("{PIPELINE} failed")), "{message}");
    assert!(
        message.contains(&format!("run {run_id} took ")),
        "{message}"
    );
    let duration = message
        .split("took ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default();
    assert!(
        is_duration(duration),
        "{duration:?} is no duration: {message}"
    );
    for variable in [r#""fail": true"#, r#""label": "boom""#] {
        assert!(
            message.contains(variable),
            "{variable} is not in: {message}"
        );
    }
    assert!(message.contains(&format!("failed: {MIDDLE};")), "{message}");
    assert!(message.contains("completed: load"), "{message}");

    drop(server);
    // Every exchange, the runtime's and Mage's included, holds to Google's documents.
    cloud.assert_record_valid();
    drop(cloud);
    // The sandbox stopped the scheduler's container with it.
    assert!(
        mage::http_request(mage_port, "GET", "/api/status", None, &[]).is_err(),
        "Mage still answers after the sandbox stopped"
    );
    drop(db);
    lap("stopped");
}
