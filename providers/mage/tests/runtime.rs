//! The weir runtime (the Python package in `providers/mage/runtime/`, shipped as
//! `weir_provider_mage::runtime::FILES`) inside the real Mage: notification variables through
//! Mage's own sender, the version gate, the internals check, and the profile executor against a
//! local HTTP server standing in for Cloud Run.
//!
//! Uses the Python of the Mage test environment: `WEIR_TEST_MAGE` names its `mage` executable,
//! else `<repo>/.test-deps/mage-venv`. `scripts/test-deps.sh` installs it; without it the tests
//! fail saying so. Each test is one or two Python processes (Mage's imports take seconds).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};
use weir_provider_mage::runtime::{CONFIG_FILE, DIR, FILES};

// ---------------------------------------------------------------------------------------------
// Python, the runtime's files, and local HTTP servers
// ---------------------------------------------------------------------------------------------

fn python() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = match std::env::var_os("WEIR_TEST_MAGE") {
        Some(mage) => PathBuf::from(mage).with_file_name("python"),
        None => repo.join(".test-deps/mage-venv/bin/python"),
    };
    assert!(
        python.exists(),
        "no Python with mage-ai at {}: run scripts/test-deps.sh (it installs mage-ai 0.9.80 in \
         .test-deps/mage-venv), then `source .test-deps/env.sh`",
        python.display()
    );
    python
}

/// Writes the runtime's files and `config` as its `runtime.json` into `<root>/weir`; returns
/// that folder (what goes on `PYTHONPATH`).
fn runtime_dir(root: &Path, config: &Value) -> PathBuf {
    let dir = root.join(DIR);
    for (path, text) in FILES {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
    }
    std::fs::write(dir.join(CONFIG_FILE), config.to_string()).unwrap();
    dir
}

fn config(extra: Value) -> Value {
    let mut config = json!({
        "format": 1,
        "deployment": "prod",
        "target": "local",
        "tested_mage_versions": ["0.9.80"],
        "allow_untested_mage": false,
        "blocks": {},
        "sensitive_variables": {},
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// Runs `script` with the runtime's folder on `PYTHONPATH`, `WEIR_RUNTIME=1` when `enabled`.
fn run_python(
    root: &Path,
    weir: &Path,
    enabled: bool,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let file = root.join(format!("script-{}.py", args.len()));
    std::fs::write(&file, script).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(&file)
        .args(args)
        .current_dir(root)
        .env("PYTHONPATH", weir)
        .env("MAGE_DATA_DIR", root.join("mage_data"))
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("MAGE_DATABASE_CONNECTION_URL")
        .env_remove("DEFAULT_EXECUTOR_TYPE")
        .env_remove("WEIR_GOOGLE_ENDPOINT")
        .env_remove("ENV");
    if enabled {
        cmd.env("WEIR_RUNTIME", "1");
    } else {
        cmd.env_remove("WEIR_RUNTIME");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python().display()))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON the script printed on its `WEIR-RESULT ` line.
fn result(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WEIR-RESULT "))
        .unwrap_or_else(|| panic!("the script printed no result:\n{}", text(out)));
    serde_json::from_str(line).unwrap()
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

type Handler = dyn Fn(&Request, usize) -> (u16, String) + Send + Sync;

/// A local HTTP server that records every request and answers with `handler(request, index)`.
struct Stub {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    fn start(handler: Box<Handler>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let index = {
                    let mut all = recorded.lock().unwrap();
                    all.push(request.clone());
                    all.len() - 1
                };
                let (status, body) = handler(&request, index);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Stub { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

/// Sends a failure alert through Mage's own `NotificationSender`, with a real
/// `NotificationConfig` whose Slack webhook is argv[1], for a pipeline run (stand-in objects with
/// the attributes Mage's models have) that started at 00:00:00 and ended at 00:03:07.
const SEND_FAILURE_ALERT: &str = r#"
import datetime, json, sys
from types import SimpleNamespace as NS
from mage_ai.orchestration.notification.config import NotificationConfig
from mage_ai.orchestration.notification.sender import NotificationSender

template = (
    "pipeline_name={pipeline_name} run_id={run_id} started_at={started_at} "
    "finished_at={finished_at} duration={duration} variables={variables} "
    "completed_blocks={completed_blocks} failed_blocks={failed_blocks} "
    "pipeline_uuid={pipeline_uuid} error={error}"
)
config = NotificationConfig.load(config=dict(
    alert_on=["trigger_failure"],
    slack_config=dict(webhook_url=sys.argv[1]),
    message_templates=dict(failure=dict(title="run {run_id} failed", details=template)),
))
utc = datetime.timezone.utc
block_runs = [
    NS(id=3, block_uuid="export", status="upstream_failed"),
    NS(id=1, block_uuid="load", status="completed"),
    NS(id=2, block_uuid="transform", status="failed"),
]
pipeline_run = NS(
    id=7,
    execution_date=datetime.datetime(2026, 1, 1, tzinfo=utc),
    pipeline_schedule=NS(id=4, name="nightly", description=None),
    started_at=datetime.datetime(2026, 1, 1, 0, 0, 0),
    completed_at=datetime.datetime(2026, 1, 1, 0, 3, 7, 500000, tzinfo=utc),
    block_runs=block_runs,
    get_variables=lambda: {
        "multiplier": 7, "api_token": "s3cr3t-value", "execution_date": "2026-01-01",
        "execution_partition": "4/20260101", "event": {}, "interval_seconds": 60, "env": "prod",
        "ds": "2026-01-01", "hr": "00", "pipeline_run_id": 7, "trigger_name": "nightly",
    },
)
pipeline = NS(uuid="orders", name="Orders")
NotificationSender(config).send_pipeline_run_failure_message(
    pipeline=pipeline, pipeline_run=pipeline_run, error="Failed blocks: transform.",
)
print("WEIR-RESULT " + json.dumps({"sent": True}))
"#;

fn slack_receiver() -> Stub {
    Stub::start(Box::new(|_, _| (200, "ok".to_owned())))
}

/// With `WEIR_RUNTIME=1` the alert carries the eight variables; without it, the same template
/// raises `KeyError` inside Mage (so the first half holds only because of the runtime).
#[test]
fn notification_templates_render_the_eight_weir_variables_through_mages_sender_and_fail_without_the_runtime()
 {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(
        tmp.path(),
        &config(json!({"sensitive_variables": {"orders": ["api_token"]}})),
    );
    let (with_runtime, without_runtime) = (slack_receiver(), slack_receiver());
    let without = thread::spawn({
        let (root, weir) = (tmp.path().join("without"), weir.clone());
        let webhook = format!("{}/hook", without_runtime.url());
        move || {
            std::fs::create_dir_all(&root).unwrap();
            run_python(&root, &weir, false, SEND_FAILURE_ALERT, &[&webhook], &[])
        }
    });
    let webhook = format!("{}/hook", with_runtime.url());
    let out = run_python(
        tmp.path(),
        &weir,
        true,
        SEND_FAILURE_ALERT,
        &[&webhook],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let requests = with_runtime.requests();
    assert_eq!(requests.len(), 1, "one Slack message: {requests:?}");
    let payload: Value = serde_json::from_str(&requests[0].body).unwrap();
    let message = payload["blocks"][2]["text"]["text"].as_str().unwrap();
    assert_eq!(
        message,
        "pipeline_name=Orders run_id=7 started_at=2026-01-01T00:00:00Z \
         finished_at=2026-01-01T00:03:07Z duration=3m07s \
         variables={\"api_token\": \"(sensitive)\", \"multiplier\": 7} \
         completed_blocks=load failed_blocks=transform \
         pipeline_uuid=orders error=Failed blocks: transform."
    );
    assert_eq!(payload["blocks"][0]["text"]["text"], "run 7 failed");
    assert!(
        !requests[0].body.contains("s3cr3t") && !text(&out).contains("s3cr3t"),
        "the sensitive value leaked"
    );

    let out = without.join().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("KeyError: 'run_id'") || stderr.contains("KeyError: 'pipeline_name'"),
        "{}",
        text(&out)
    );
    assert!(without_runtime.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Version gate and internals
// ---------------------------------------------------------------------------------------------

/// Imports both modules the runtime patches, twice each, and reports what happened.
const IMPORT_PATCHED_MODULES: &str = r#"
import importlib, json
out = {}
for name in ["mage_ai.orchestration.notification.sender",
             "mage_ai.data_preparation.executors.executor_factory"]:
    attempts = []
    for _ in range(2):
        try:
            module = importlib.import_module(name)
            attempts.append({"patched": getattr(module, "_weir_patched", False)})
        except Exception as e:
            attempts.append({"error": type(e).__name__, "message": str(e)})
    out[name] = attempts
print("WEIR-RESULT " + json.dumps(out))
"#;

#[test]
fn an_untested_mage_version_stops_the_import_of_the_patched_modules_with_the_message() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(
        tmp.path(),
        &config(json!({"tested_mage_versions": ["0.0.1"]})),
    );
    let out = run_python(tmp.path(), &weir, true, IMPORT_PATCHED_MODULES, &[], &[]);
    let result = result(&out);
    for (module, attempts) in result.as_object().unwrap() {
        for attempt in attempts.as_array().unwrap() {
            assert_eq!(attempt["error"], "WeirRuntimeError", "{module}: {attempt}");
            let message = attempt["message"].as_str().unwrap();
            for needle in [
                "Mage 0.9.80 is installed",
                "tested only with Mage 0.0.1",
                "allow_untested_mage = true",
                "runtime { enabled = false }",
            ] {
                assert!(message.contains(needle), "{needle:?} not in {message}");
            }
        }
    }
}

#[test]
fn allow_untested_mage_lets_an_untested_version_through() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(
        tmp.path(),
        &config(json!({"tested_mage_versions": ["0.0.1"], "allow_untested_mage": true})),
    );
    let out = run_python(tmp.path(), &weir, true, IMPORT_PATCHED_MODULES, &[], &[]);
    let result = result(&out);
    for (module, attempts) in result.as_object().unwrap() {
        assert_eq!(
            attempts,
            &json!([{"patched": true}, {"patched": true}]),
            "{module}"
        );
    }
}

/// Runs the runtime's checks against stand-ins for Mage's objects that lack what it patches or
/// take other parameters.
const CHECK_INTERNALS: &str = r#"
import json, types
from weir_runtime import compat, notifications, profiles

out = {}
def attempt(name, f):
    try:
        f()
        out[name] = "passed"
    except compat.WeirRuntimeError as e:
        out[name] = str(e)

class Factory:
    @classmethod
    def get_block_executor(cls, pipeline, block_uuid, block_run_id=None,
                           execution_partition=None, executor_type=None):
        pass
class Executor:
    def __init__(self, pipeline, block_uuid, execution_partition=None, block_run_id=None):
        pass
    def _run_commands(self, block_run_id=None, global_vars=None, pipeline_run_id=None, **kw):
        pass
class BlockRun:
    query = None
    class BlockRunStatus:
        FAILED = "failed"
class ExecutorWithoutRunCommands:
    def __init__(self, pipeline, block_uuid, execution_partition=None, block_run_id=None):
        pass
class RenamedFactory:
    @classmethod
    def get_block_executor(cls, pipeline, uuid, block_run_id=None):
        pass
class BlockRunWithoutQuery:
    class BlockRunStatus:
        FAILED = "failed"

attempt("stand_ins_like_mage", lambda: profiles.check_internals("0.9.80", Factory, Executor, BlockRun))
attempt("missing_run_commands",
        lambda: profiles.check_internals("0.9.80", Factory, ExecutorWithoutRunCommands, BlockRun))
attempt("other_parameters",
        lambda: profiles.check_internals("0.9.80", RenamedFactory, Executor, BlockRun))
attempt("missing_query",
        lambda: profiles.check_internals("0.9.80", Factory, Executor, BlockRunWithoutQuery))
sender_module = types.ModuleType("mage_ai.orchestration.notification.sender")
sender_module.NotificationSender = type("NotificationSender", (), {})
attempt("sender_without_interpolate_vars", lambda: notifications.patch(sender_module))
print("WEIR-RESULT " + json.dumps(out))
"#;

#[test]
fn a_missing_or_changed_mage_internal_is_an_error_naming_the_mage_version_and_what_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(tmp.path(), &config(json!({})));
    let out = run_python(tmp.path(), &weir, false, CHECK_INTERNALS, &[], &[]);
    let result = result(&out);
    assert_eq!(result["stand_ins_like_mage"], "passed", "{result}");
    let differs = "Mage 0.9.80 differs from the Mage the weir runtime was tested with";
    for (case, needle) in [
        (
            "missing_run_commands",
            "`BlockExecutor._run_commands` is missing",
        ),
        (
            "other_parameters",
            "`ExecutorFactory.get_block_executor` takes (pipeline, uuid, block_run_id) where \
             the runtime needs (pipeline, block_uuid, block_run_id, execution_partition, \
             executor_type, ...)",
        ),
        ("missing_query", "`BlockRun.query` is missing"),
        (
            "sender_without_interpolate_vars",
            "`NotificationSender._NotificationSender__interpolate_vars` is missing",
        ),
    ] {
        let message = result[case].as_str().unwrap();
        assert!(message.contains(differs), "{case}: {message}");
        assert!(
            message.contains(needle),
            "{case}: {needle:?} not in {message}"
        );
        assert!(
            message.contains("runtime { enabled = false }"),
            "{case}: {message}"
        );
    }
}

/// The `:run` POST against a fake session: which failures are tried again.
const RUN_RETRIES: &str = r#"
import json
import requests, urllib3
from weir_runtime import cloud_run

class Answer:
    def __init__(self, status):
        self.status_code = status
        self.headers = {}
    def json(self):
        return {"name": "projects/p/locations/l/operations/o", "done": False}

def connection_refused():
    reason = urllib3.exceptions.NewConnectionError(None, "refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))

class Session:
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.posts = 0
    def post(self, url, **kw):
        self.posts += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return Answer(outcome)

out = {}
for case, outcomes in {
    "refused_then_ok": [connection_refused(), 200],
    "connect_timeout_then_ok": [requests.exceptions.ConnectTimeout("t"), 200],
    "throttled_then_ok": [429, 200],
    "server_error": [500, 200],
    "unavailable": [503, 200],
    "read_timeout": [requests.exceptions.ReadTimeout("t"), 200],
    "reset_after_sending": [requests.exceptions.ConnectionError("reset"), 200],
}.items():
    session = Session(outcomes)
    client = cloud_run.Client(endpoint="http://sandbox", session=session, sleep=lambda s: None)
    try:
        client.run_job("projects/p/locations/l/jobs/j", ["mage", "run"])
        out[case] = {"posts": session.posts, "ok": True}
    except cloud_run.CloudRunError as e:
        out[case] = {"posts": session.posts, "error": str(e)}
print("WEIR-RESULT " + json.dumps(out))
"#;

#[test]
fn a_job_run_is_posted_again_only_when_cloud_run_cannot_have_started_it() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(tmp.path(), &config(json!({})));
    let out = run_python(tmp.path(), &weir, false, RUN_RETRIES, &[], &[]);
    let result = result(&out);
    for case in [
        "refused_then_ok",
        "connect_timeout_then_ok",
        "throttled_then_ok",
    ] {
        assert_eq!(result[case], json!({"posts": 2, "ok": true}), "{case}");
    }
    for case in [
        "server_error",
        "unavailable",
        "read_timeout",
        "reset_after_sending",
    ] {
        assert_eq!(result[case]["posts"], 1, "{case}: {result}");
        let error = result[case]["error"].as_str().unwrap();
        assert!(
            error.contains("an execution may have started"),
            "{case}: {error}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The profile executor
// ---------------------------------------------------------------------------------------------

/// A Mage project with the pipeline `etl`: `load` → `transform`.
fn write_project(root: &Path) -> PathBuf {
    let project = root.join("project");
    let files = [
        (
            "metadata.yaml",
            "project_uuid: 5c1d0b6e9a8f4f0e8c2b7d6a5e4f3a21\n",
        ),
        (
            "pipelines/etl/metadata.yaml",
            "uuid: etl\nname: etl\ntype: python\nblocks:\n\
             - uuid: load\n  type: data_loader\n  language: python\n  upstream_blocks: []\n  \
             downstream_blocks: [transform]\n\
             - uuid: transform\n  type: transformer\n  language: python\n  \
             upstream_blocks: [load]\n  downstream_blocks: []\n",
        ),
        ("pipelines/__init__.py", ""),
        ("pipelines/etl/__init__.py", ""),
        (
            "data_loaders/load.py",
            "@data_loader\ndef load(*args, **kwargs):\n    return [1, 2, 3]\n",
        ),
        (
            "transformers/transform.py",
            "@transformer\ndef transform(data, *args, **kwargs):\n    return [x * 2 for x in data]\n",
        ),
    ];
    for (path, text) in files {
        let file = project.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    project
}

/// In a Mage database (sqlite, migrated as Mage does): asks Mage's `ExecutorFactory` for the
/// executors of the pipeline's blocks, then executes two block runs of `transform` (each in a
/// pipeline run of its own), with the scheduler's real failure callback.
const EXECUTE_BLOCK_RUNS: &str = r#"
import json, logging, sys
from mage_ai.settings.repo import set_repo_path
set_repo_path(sys.argv[1])
from mage_ai.orchestration.db.database_manager import database_manager
from mage_ai.orchestration.db import db_connection
database_manager.run_migrations(log_level=logging.ERROR)
db_connection.start_session(force=True)
from mage_ai.data_preparation.executors.executor_factory import ExecutorFactory
from mage_ai.data_preparation.models.pipeline import Pipeline
from mage_ai.orchestration.db.models.schedules import BlockRun, PipelineRun, PipelineSchedule
from mage_ai.orchestration.pipeline_scheduler_original import PipelineScheduler

pipeline = Pipeline.get("etl")
schedule = PipelineSchedule.create(name="t", pipeline_uuid="etl")
out = {
    "load": type(ExecutorFactory.get_block_executor(pipeline, "load")).__name__,
    "forced": type(ExecutorFactory.get_block_executor(
        pipeline, "transform", executor_type="local_python")).__name__,
    "runs": [],
}
for _ in range(3):
    run = PipelineRun.create(
        pipeline_schedule_id=schedule.id, pipeline_uuid="etl",
        status=PipelineRun.PipelineRunStatus.RUNNING,
    )
    block_run = BlockRun.get(pipeline_run_id=run.id, block_uuid="transform")
    block_run.update(status=BlockRun.BlockRunStatus.RUNNING)
    executor = ExecutorFactory.get_block_executor(
        pipeline, "transform", block_run_id=block_run.id,
        execution_partition=run.execution_partition,
    )
    outcome = executor.execute(
        block_run_id=block_run.id, pipeline_run_id=run.id, global_vars=run.get_variables(),
        on_failure=PipelineScheduler(run).on_block_failure,
    )
    block_run.refresh()
    out["runs"].append(dict(
        executor=type(executor).__name__, outcome=outcome, block_run_id=block_run.id,
        pipeline_run_id=run.id, partition=run.execution_partition,
        status=str(block_run.status.value),
    ))
print("WEIR-RESULT " + json.dumps(out))
"#;

const JOB: &str = "projects/p/locations/us-central1/jobs/etl-big";

/// Cloud Run: a `:run` answers a running operation; reading it answers it done, with the
/// execution succeeded for the first run and failed for the second. The third `:run` is
/// refused (403).
fn cloud_run_stub() -> Stub {
    let runs = Arc::new(Mutex::new(0usize));
    Stub::start(Box::new(move |request, _| {
        let operations = "/v2/projects/p/locations/us-central1/operations/";
        if request.method == "POST" && request.path == format!("/v2/{JOB}:run") {
            let mut runs = runs.lock().unwrap();
            *runs += 1;
            if *runs == 3 {
                let denied = json!({"error": {"code": 403, "message": "Permission 'run.jobs.runWithOverrides' denied", "status": "PERMISSION_DENIED"}});
                return (403, denied.to_string());
            }
            let op = json!({"name": format!("{}run-{runs}", &operations[4..]), "done": false,
                            "metadata": {"name": format!("{JOB}/executions/e{runs}")}});
            (200, op.to_string())
        } else if let Some(op) = request.path.strip_prefix(operations) {
            let succeeded = op == "run-1";
            let execution = json!({
                "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                "name": format!("{JOB}/executions/{op}"),
                "taskCount": 1,
                (if succeeded { "succeededCount" } else { "failedCount" }): 1,
            });
            let op = json!({"name": &request.path[4..], "done": true, "response": execution});
            (200, op.to_string())
        } else {
            (
                404,
                json!({"error": {"code": 404, "message": "not here"}}).to_string(),
            )
        }
    }))
}

#[test]
fn a_profiled_block_run_runs_its_job_with_mages_command_and_a_failed_or_refused_run_fails_it() {
    let tmp = tempfile::tempdir().unwrap();
    let project = write_project(tmp.path());
    let weir = runtime_dir(
        tmp.path(),
        &config(json!({
            "target": "gcp",
            "blocks": {"etl": {"transform": {"profile": "big", "job": JOB, "timeout_seconds": 60}}},
        })),
    );
    let cloud_run = cloud_run_stub();
    let project_arg = project.to_str().unwrap();
    let out = run_python(
        tmp.path(),
        &weir,
        true,
        EXECUTE_BLOCK_RUNS,
        &[project_arg],
        &[("WEIR_GOOGLE_ENDPOINT", &cloud_run.url())],
    );
    let result = result(&out);

    // Blocks without a profile, and the job's own `mage run --executor-type local_python`, stay
    // with Mage's executor.
    assert_eq!(result["load"], "BlockExecutor", "{}", text(&out));
    assert_eq!(result["forced"], "BlockExecutor");

    let runs = result["runs"].as_array().unwrap();
    let posts: Vec<Request> = cloud_run
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(
        posts.len(),
        3,
        "one :run per block run, none again: {posts:?}"
    );
    for (run, post) in runs.iter().zip(&posts) {
        assert_eq!(run["executor"], "WeirJobBlockExecutor");
        assert_eq!(post.path, format!("/v2/{JOB}:run"));
        assert_eq!(post.headers["host"], "run.googleapis.com");
        assert_eq!(post.headers["authorization"], "Bearer weir-sandbox");
        let body: Value = serde_json::from_str(&post.body).unwrap();
        let args = json!([
            "mage",
            "run",
            project_arg,
            "etl",
            "--block-uuid",
            "transform",
            "--executor-type",
            "local_python",
            "--execution-partition",
            run["partition"],
            "--block-run-id",
            run["block_run_id"].to_string(),
            "--pipeline-run-id",
            run["pipeline_run_id"].to_string(),
        ]);
        assert_eq!(
            body,
            json!({"overrides": {"containerOverrides": [{"args": args}]}})
        );
    }
    // Every other request read an operation: no job was created, changed or deleted.
    for request in cloud_run.requests() {
        assert!(
            request.method == "POST"
                || (request.method == "GET" && request.path.contains("/operations/run-")),
            "{request:?}"
        );
    }

    // The succeeded execution leaves the block run's status to `mage run` in the job; the
    // failed one marks it failed through the scheduler's callback.
    assert_eq!(runs[0]["outcome"]["succeeded"], true, "{}", text(&out));
    assert_eq!(runs[0]["status"], "running");
    assert_eq!(runs[1]["outcome"]["succeeded"], false);
    assert_eq!(runs[1]["status"], "failed", "{}", text(&out));
    // A refused `:run` fails the block run too, saying why.
    assert_eq!(runs[2]["status"], "failed", "{}", text(&out));
    let why = runs[2]["outcome"]["outcome"].as_str().unwrap();
    assert!(
        why.contains("HTTP 403: Permission 'run.jobs.runWithOverrides' denied"),
        "{why}"
    );
}

/// The variables for runs in other states: long, not started, still going, a database error.
const VARIABLES_OF_OTHER_RUNS: &str = r#"
import datetime, json
from types import SimpleNamespace as NS
from weir_runtime import config, notifications

utc = datetime.timezone.utc
settings = config.parse({"format": 1, "deployment": "d", "target": "local",
                         "tested_mage_versions": ["0.9.80"]})
def at(h, m, s):
    return datetime.datetime(2026, 1, 1, h, m, s, tzinfo=utc)
def failing():
    raise RuntimeError("database is gone")
def run(started, completed, block_runs=(), variables=lambda: {}):
    return NS(id=9, started_at=started, completed_at=completed, block_runs=list(block_runs),
              get_variables=variables)
now = at(5, 0, 0)
pipeline = NS(uuid="p", name=None)
out = {
    "long": notifications.template_variables(settings, pipeline, run(at(1, 0, 0), at(2, 2, 3)), now),
    "seconds": notifications.template_variables(settings, pipeline, run(at(1, 0, 0), at(1, 0, 42)), now),
    "not_started": notifications.template_variables(settings, pipeline, run(None, None), now),
    "still_going": notifications.template_variables(settings, pipeline, run(at(4, 59, 0), None), now),
    "database_error": notifications.template_variables(
        settings, pipeline, run(at(1, 0, 0), at(1, 0, 1), variables=failing), now),
}
print("WEIR-RESULT " + json.dumps(out))
"#;

#[test]
fn run_variables_read_hours_unstarted_and_unfinished_runs_and_survive_a_database_error() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(tmp.path(), &config(json!({})));
    let out = run_python(tmp.path(), &weir, false, VARIABLES_OF_OTHER_RUNS, &[], &[]);
    let result = result(&out);
    assert_eq!(result["long"]["duration"], "1h02m03s");
    assert_eq!(
        result["long"]["pipeline_name"], "p",
        "a pipeline without a name shows its uuid"
    );
    assert_eq!(result["long"]["completed_blocks"], "none");
    assert_eq!(result["long"]["failed_blocks"], "none");
    assert_eq!(result["seconds"]["duration"], "42s");
    assert_eq!(result["not_started"]["started_at"], "unknown");
    assert_eq!(result["not_started"]["duration"], "unknown");
    assert_eq!(result["still_going"]["finished_at"], "2026-01-01T05:00:00Z");
    assert_eq!(result["still_going"]["duration"], "1m00s");
    assert_eq!(result["database_error"]["variables"], "unknown");
    assert_eq!(result["database_error"]["duration"], "1s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notification variable `variables`: RuntimeError: database is gone"),
        "{}",
        text(&out)
    );
}

/// Without `WEIR_GOOGLE_ENDPOINT`: the calls go to Cloud Run with the metadata server's token
/// (a fake session records them).
const GOOGLE_WITH_METADATA_TOKEN: &str = r#"
import json
from weir_runtime import cloud_run

class Answer:
    def __init__(self, body):
        self.status_code = 200
        self.headers = {}
        self.body = body
    def json(self):
        return self.body

class Session:
    def __init__(self):
        self.calls = []
    def get(self, url, headers=None, **kw):
        self.calls.append(["GET", url, headers])
        if url == cloud_run.METADATA_TOKEN_URL:
            return Answer({"access_token": "token-from-metadata", "expires_in": 3599})
        return Answer({"name": url.split("/v2/")[1], "done": True,
                       "response": {"name": "e", "taskCount": 1, "succeededCount": 1}})
    def post(self, url, json=None, headers=None, **kw):
        self.calls.append(["POST", url, headers])
        return Answer({"name": "projects/p/locations/l/operations/o", "done": False})

session = Session()
client = cloud_run.Client(endpoint="", session=session, sleep=lambda s: None)
operation = client.run_job("projects/p/locations/l/jobs/j", ["mage", "run"])
done = client.wait(operation, client.clock() + 60)
print("WEIR-RESULT " + json.dumps({"calls": session.calls,
                                   "outcome": cloud_run.execution_outcome(done)}))
"#;

#[test]
fn without_an_endpoint_calls_go_to_cloud_run_with_the_metadata_servers_token() {
    let tmp = tempfile::tempdir().unwrap();
    let weir = runtime_dir(tmp.path(), &config(json!({})));
    let out = run_python(
        tmp.path(),
        &weir,
        false,
        GOOGLE_WITH_METADATA_TOKEN,
        &[],
        &[],
    );
    let result = result(&out);
    let token = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
    let bearer = json!({"Authorization": "Bearer token-from-metadata"});
    assert_eq!(
        result["calls"],
        json!([
            ["GET", token, {"Metadata-Flavor": "Google"}],
            ["POST", "https://run.googleapis.com/v2/projects/p/locations/l/jobs/j:run", bearer],
            ["GET", "https://run.googleapis.com/v2/projects/p/locations/l/operations/o", bearer],
        ]),
        "the token is fetched once and reused"
    );
    assert_eq!(result["outcome"], json!([true, "e succeeded"]));
}
