//! Cloud Run v2 job executions: `projects.locations.jobs.run` and
//! `projects.locations.jobs.executions.{get,list}`, kept in memory.
//!
//! A run answers a long-running operation whose `metadata` (and, once done, `response`) is the
//! `Execution`. When the sandbox runs processes ([`crate::server::Sandbox::run_processes`]), the
//! execution starts the job's first container `command` + `args` (the run's overridden args win)
//! as a local process (see [`crate::processes`]: the image's stand-in environment, then the job's
//! `env`, then the run's; `secretKeyRef`s resolved from the sandbox's own Secret Manager store;
//! Cloud SQL volumes seen at the stand-in directory); its exit code is the execution's outcome. Otherwise the execution succeeds once the operation delay has passed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::processes::{ContainerSpec, Launcher, LocalProcess, strings};
use crate::run_jobs::{Behaviour, error};
use crate::validate::Request;

const EXECUTION_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Execution";

/// The executions the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Executions by full name (`projects/p/locations/l/jobs/j/executions/e`).
    executions: BTreeMap<String, Execution>,
    /// Operation name → execution name.
    operations: HashMap<String, String>,
    runs: u64,
}

struct Execution {
    /// What does not change as it runs.
    body: Value,
    /// The process, while it runs.
    child: Option<LocalProcess>,
    /// Without a process: when the execution is over.
    ready_at: Instant,
    /// Once over: whether it succeeded, why not, and when it ended.
    outcome: Option<(bool, String, String)>,
    /// When the process is killed and the execution failed (the run's or the task's `timeout`).
    deadline: Option<Instant>,
}

/// A proto3 JSON duration of whole or fractional seconds (`"600s"`, `"1.5s"`).
fn duration(text: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(text.strip_suffix('s')?.parse().ok()?).ok()
}

/// The answer to `run.projects.locations.jobs.run`, `…jobs.executions.{get,list}`, or an
/// operation this module started; `None` for anything else.
pub(crate) fn answer(
    store: &mut Store,
    job: &dyn Fn(&str) -> Option<Value>,
    launcher: Option<&Launcher>,
    behaviour: &Behaviour,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let name = request.path.strip_prefix("/v2/")?;
    match method_id {
        "run.projects.locations.jobs.run" => {
            let job_name = name.strip_suffix(":run")?;
            let Some(job) = job(job_name) else {
                return Some(error(
                    404,
                    "NOT_FOUND",
                    format!("Resource '{job_name}' was not found"),
                ));
            };
            Some(store.run(job_name, &job, request.body.as_ref(), launcher, behaviour))
        }
        "run.projects.locations.jobs.executions.get" => {
            Some(match store.executions.get_mut(name) {
                Some(e) => (200, e.current()),
                None => error(404, "NOT_FOUND", format!("Resource '{name}' was not found")),
            })
        }
        "run.projects.locations.jobs.executions.list" => {
            let prefix = format!("{name}/");
            let executions: Vec<Value> = store
                .executions
                .range_mut(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, e)| e.current())
                .collect();
            Some((
                200,
                if executions.is_empty() {
                    json!({})
                } else {
                    json!({ "executions": executions })
                },
            ))
        }
        "run.projects.locations.operations.get" | "run.projects.locations.operations.wait" => {
            let op = name.strip_suffix(":wait").unwrap_or(name);
            let execution = store.operations.get(op)?.clone();
            let e = store.executions.get_mut(&execution)?;
            Some((200, e.operation(op)))
        }
        _ => None,
    }
}

impl Store {
    fn run(
        &mut self,
        job_name: &str,
        job: &Value,
        body: Option<&Value>,
        launcher: Option<&Launcher>,
        behaviour: &Behaviour,
    ) -> (u16, Value) {
        self.runs += 1;
        let n = self.runs;
        let id = format!("{}-{n:05}", job_name.rsplit('/').next().unwrap_or_default());
        let name = format!("{job_name}/executions/{id}");
        let now = timestamp();
        let overrides = body.and_then(|b| b.get("overrides"));
        let task_count = overrides
            .and_then(|o| o.get("taskCount"))
            .and_then(Value::as_i64)
            .or_else(|| job.pointer("/template/taskCount").and_then(Value::as_i64))
            .unwrap_or(1);
        let mut body = json!({
            "name": name,
            "uid": format!("{:08x}-0000-4000-9000-{n:012x}", std::process::id()),
            "job": job_name.rsplit('/').next().unwrap_or_default(),
            "generation": "1",
            "observedGeneration": "1",
            "createTime": now,
            "startTime": now,
            "launchStage": "GA",
            "taskCount": task_count,
            "parallelism": job.pointer("/template/parallelism").cloned().unwrap_or(json!(task_count)),
            "etag": format!("\"execution-{n}\""),
        });
        if let Some(template) = job.pointer("/template/template") {
            body["template"] = template.clone();
        }
        let mut execution = Execution {
            body,
            child: None,
            ready_at: Instant::now() + behaviour.operation_delay,
            outcome: None,
            deadline: overrides
                .and_then(|o| o.get("timeout"))
                .or_else(|| job.pointer("/template/template/timeout"))
                .and_then(Value::as_str)
                .and_then(duration)
                .map(|d| Instant::now() + d),
        };
        if let Some(launcher) = launcher {
            match start(launcher, job_name, &id, job, overrides) {
                Ok(child) => execution.child = Some(child),
                Err(why) => execution.outcome = Some((false, why, timestamp())),
            }
        }
        let parent = job_name.rsplit_once("/jobs/").map_or(job_name, |(p, _)| p);
        let op = format!(
            "{parent}/operations/execution-{:08x}-{n}",
            std::process::id()
        );
        let answer = execution.operation(&op);
        self.executions.insert(name.clone(), execution);
        self.operations.insert(op, name);
        (200, answer)
    }
}

/// Starts the job's first container as a local process, or says why it cannot.
fn start(
    launcher: &Launcher,
    job_name: &str,
    execution_id: &str,
    job: &Value,
    overrides: Option<&Value>,
) -> Result<LocalProcess, String> {
    let container = job
        .pointer("/template/template/containers/0")
        .ok_or("the job has no container")?;
    let over = overrides
        .and_then(|o| o.get("containerOverrides"))
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let args = match over {
        Some(o) if o.get("args").is_some() || o.get("clearArgs") == Some(&json!(true)) => {
            Some(strings(o.get("args")))
        }
        _ => None,
    };
    let project = job_name.split('/').nth(1).unwrap_or_default();
    launcher.start(&ContainerSpec {
        container,
        volumes: job.pointer("/template/template/volumes"),
        args,
        env_overrides: over.and_then(|o| o.get("env")),
        project,
        label: execution_id,
    })
}

impl Execution {
    /// Notes the outcome if the execution has just ended.
    fn refresh(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => {
                    let ok = status.success();
                    let why = match status.code() {
                        Some(code) => format!("the task's process exited with code {code}"),
                        None => "the task's process was killed by a signal".to_owned(),
                    };
                    self.outcome = Some((ok, why, timestamp()));
                    self.child = None;
                }
                Ok(None) if self.deadline.is_some_and(|d| Instant::now() >= d) => {
                    child.stop();
                    self.child = None;
                    let why = "the task's process ran past its timeout and was killed".to_owned();
                    self.outcome = Some((false, why, timestamp()));
                }
                Ok(None) => {}
                Err(e) => {
                    self.outcome = Some((
                        false,
                        format!("the task's process is lost: {e}"),
                        timestamp(),
                    ))
                }
            },
            None if Instant::now() >= self.ready_at => {
                self.outcome = Some((true, "the execution completed".to_owned(), timestamp()))
            }
            None => {}
        }
    }

    /// The execution as a read sees it now.
    fn current(&mut self) -> Value {
        self.refresh();
        let mut e = self.body.clone();
        let tasks = e["taskCount"].as_i64().unwrap_or(1);
        match &self.outcome {
            None => {
                e["runningCount"] = json!(tasks);
                e["reconciling"] = json!(true);
            }
            Some((ok, why, at)) => {
                e["completionTime"] = json!(at);
                e["updateTime"] = json!(at);
                e[if *ok { "succeededCount" } else { "failedCount" }] = json!(tasks);
                let state = if *ok {
                    "CONDITION_SUCCEEDED"
                } else {
                    "CONDITION_FAILED"
                };
                e["conditions"] = json!([
                    {"type": "Completed", "state": state, "message": why, "lastTransitionTime": at},
                ]);
            }
        }
        e
    }

    fn operation(&mut self, name: &str) -> Value {
        let mut execution = self.current();
        execution["@type"] = json!(EXECUTION_TYPE);
        let done = self.outcome.is_some();
        let mut op = json!({"name": name, "metadata": execution, "done": done});
        if done {
            op["response"] = execution;
        }
        op
    }
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
pub(crate) mod tests {

    use std::net::SocketAddr;
    use std::time::Duration;

    use serde_json::{Value, json};

    use crate::discovery::{Catalog, documents_dir_for_tests};
    use crate::record;
    use crate::server::{Running, Sandbox};

    const JOBS: &str = "/v2/projects/acme/locations/us-central1/jobs";
    const SECRET_VALUE: &str = "s3cret-token-value";

    pub(crate) fn catalog() -> Catalog {
        let dir = documents_dir_for_tests().unwrap_or_else(|e| panic!("{e}"));
        Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
    }

    fn start(record: std::path::PathBuf, run_processes: bool) -> Running {
        Sandbox::new(catalog())
            .record(record)
            .run_processes(run_processes)
            .spawn("127.0.0.1:0".parse().unwrap())
            .unwrap()
    }

    /// One HTTP/1.1 exchange over a fresh connection: (status, JSON body); a null body sends
    /// none.
    pub(crate) fn call(
        addr: SocketAddr,
        host: &str,
        method: &str,
        target: &str,
        body: &Value,
    ) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        crate::tests::served::call(addr, host, method, target, &body)
    }

    fn run(addr: SocketAddr, id: &str, command: &str, overrides: Value) -> Value {
        let job = json!({"template": {"template": {"containers": [{
            "image": "us-docker.pkg.dev/acme/weir/etl:1",
            "command": ["sh", "-c"],
            "args": [command],
            "env": [
                {"name": "PLAIN", "value": "token-value"},
                {"name": "TOKEN", "valueSource": {"secretKeyRef": {"secret": "token", "version": "latest"}}},
            ],
        }]}}});
        let (status, answer) = call(
            addr,
            "run.googleapis.com",
            "POST",
            &format!("{JOBS}?jobId={id}"),
            &job,
        );
        assert_eq!(status, 200, "{answer}");
        let (status, mut op) = call(
            addr,
            "run.googleapis.com",
            "POST",
            &format!("{JOBS}/{id}:run"),
            &overrides,
        );
        assert_eq!(status, 200, "{op}");
        let name = op["name"].as_str().unwrap().to_owned();
        for _ in 0..200 {
            if op["done"] == json!(true) {
                let execution = op["response"].clone();
                let (status, got) = call(
                    addr,
                    "run.googleapis.com",
                    "GET",
                    &format!("/v2/{}", execution["name"].as_str().unwrap()),
                    &Value::Null,
                );
                assert_eq!(status, 200, "{got}");
                assert_eq!(got["conditions"], execution["conditions"]);
                return execution;
            }
            std::thread::sleep(Duration::from_millis(50));
            let (status, next) = call(
                addr,
                "run.googleapis.com",
                "GET",
                &format!("/v2/{name}"),
                &Value::Null,
            );
            assert_eq!(status, 200, "{next}");
            op = next;
        }
        panic!("the execution of {command} never ended: {op}");
    }

    fn add_secret(addr: SocketAddr) {
        use base64::Engine as _;
        let host = "secretmanager.googleapis.com";
        let (status, answer) = call(
            addr,
            host,
            "POST",
            "/v1/projects/acme/secrets?secretId=token",
            &json!({"replication": {"automatic": {}}}),
        );
        assert_eq!(status, 200, "{answer}");
        let data = base64::engine::general_purpose::STANDARD.encode(SECRET_VALUE);
        let (status, answer) = call(
            addr,
            host,
            "POST",
            "/v1/projects/acme/secrets/token:addVersion",
            &json!({"payload": {"data": data}}),
        );
        assert_eq!(status, 200, "{answer}");
    }

    fn succeeded(execution: &Value) -> bool {
        match (
            execution.get("succeededCount"),
            execution.get("failedCount"),
        ) {
            (Some(n), None) if n == 1 => true,
            (None, Some(n)) if n == 1 => false,
            _ => panic!("an ended execution has one outcome: {execution}"),
        }
    }

    #[test]
    fn job_processes_run_with_their_exit_code_overridden_args_and_secret_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record.jsonl");
        let sandbox = start(file.clone(), true);
        let addr = sandbox.addr();
        add_secret(addr);

        assert!(succeeded(&run(addr, "ok", "exit 0", json!({}))));
        let failed = run(addr, "fails", "exit 3", json!({}));
        assert!(!succeeded(&failed));
        assert_eq!(failed["conditions"][0]["state"], "CONDITION_FAILED");
        assert!(
            failed["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("code 3"),
            "{failed}"
        );
        assert!(failed["completionTime"].is_string());

        // The run's args win over the job's.
        let overrides = json!({"overrides": {"containerOverrides": [{"args": ["exit 0"]}]}});
        assert!(succeeded(&run(addr, "overridden", "exit 5", overrides)));

        // Plain values and secretKeyRef values reach the process's environment.
        // (The expected value is built in the shell so that the job itself does not hold it.)
        let check = "test \"$PLAIN\" = token-value && test \"$TOKEN\" = \"s3cret-$PLAIN\"";
        assert!(succeeded(&run(addr, "env", check, json!({}))));
        let wrong = "test \"$TOKEN\" = something-else";
        assert!(!succeeded(&run(addr, "env-wrong", wrong, json!({}))));

        // A process still running at its timeout is killed and the execution fails.
        let timeout = json!({"overrides": {"timeout": "0.5s"}});
        let late = run(addr, "late", "sleep 30", timeout);
        assert!(!succeeded(&late));
        assert!(
            late["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("timeout"),
            "{late}"
        );

        let (status, list) = call(
            addr,
            "run.googleapis.com",
            "GET",
            &format!("{JOBS}/ok/executions"),
            &Value::Null,
        );
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["executions"].as_array().unwrap().len(), 1, "{list}");

        drop(sandbox);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(":run"), "{text}");
        assert!(
            !text.contains(SECRET_VALUE),
            "the secret is in the record:\n{text}"
        );
        record::validate_file(&file, &catalog()).unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[test]
    fn a_missing_secret_fails_the_execution_and_without_processes_it_just_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = start(dir.path().join("with.jsonl"), true);
        let failed = run(sandbox.addr(), "no-secret", "exit 0", json!({}));
        assert!(!succeeded(&failed));
        assert!(
            failed["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("secrets/token"),
            "{failed}"
        );

        let file = dir.path().join("without.jsonl");
        let sandbox = start(file.clone(), false);
        assert!(succeeded(&run(
            sandbox.addr(),
            "not-run",
            "exit 3",
            json!({})
        )));
        drop(sandbox);
        record::validate_file(&file, &catalog()).unwrap_or_else(|e| panic!("{e:?}"));
    }
}
