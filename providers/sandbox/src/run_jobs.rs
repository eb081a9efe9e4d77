//! Cloud Run Admin v2 jobs with state: `projects.locations.jobs.{create,get,list,patch,delete}`
//! and `projects.locations.operations.{get,wait}`, kept in memory.
//!
//! As Google does: every write answers a long-running Operation (`name`, `done`, `metadata`,
//! then `response` or `error`) that finishes after [`Behaviour::operation_delay`]; the job's
//! output-only fields (`uid`, `etag`, `generation`, `createTime`, `updateTime`, `creator`,
//! `lastModifier`, `reconciling`, `terminalCondition`, …) are filled in; the etag changes on
//! every write; a duplicate create is 409 `ALREADY_EXISTS`, a missing job 404 `NOT_FOUND`, and
//! a stale etag (in the patch body or the delete's `etag` parameter) 412 `FAILED_PRECONDITION`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::validate::Request;

/// The identity the sandbox reports as the caller (`creator`, `lastModifier`).
const CALLER: &str = "weir-sandbox@sandbox.invalid";
/// The `@type` of a job inside an operation's `metadata` and `response`.
const JOB_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Job";

/// How the sandbox behaves beyond answering correctly (fault injection).
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// How long an operation runs before it is `done` (0: done at once).
    pub operation_delay: Duration,
    /// Job ids whose create leaves the job behind but ends its operation in error (as a job
    /// whose reconciliation fails does).
    pub failing_jobs: HashSet<String>,
    /// Compute Engine VM names whose insert leaves the VM behind but ends its operation in error.
    pub failing_instances: HashSet<String>,
    /// Added to every answer.
    pub latency: Duration,
    /// The share (0 to 1) of requests to a served method answered, before anything is done,
    /// 429 `RESOURCE_EXHAUSTED` (with `Retry-After: 0`) or 503 `UNAVAILABLE`, half each.
    pub unavailable_rate: f64,
    /// The seed of the random choice of those answers, so a failing run can be repeated.
    pub seed: u64,
}

/// The throttling or outage answer a request gets instead of being served, if any.
pub(crate) fn fault(store: &mut Store, behaviour: &Behaviour) -> Option<(u16, Value)> {
    if behaviour.unavailable_rate <= 0.0 {
        return None;
    }
    let rng = store
        .rng
        .get_or_insert_with(|| fastrand::Rng::with_seed(behaviour.seed));
    if rng.f64() >= behaviour.unavailable_rate {
        return None;
    }
    Some(if rng.bool() {
        error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded (the sandbox throttles this request on purpose).".into(),
        )
    } else {
        error(
            503,
            "UNAVAILABLE",
            "The service is currently unavailable (the sandbox fails this request on purpose)."
                .into(),
        )
    })
}

/// The jobs and operations the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Jobs by full name (`projects/p/locations/l/jobs/j`).
    jobs: BTreeMap<String, Value>,
    operations: HashMap<String, Operation>,
    /// Counts writes: etags, uids and operation names come from it.
    writes: u64,
    /// Chooses the injected faults ([`Behaviour::unavailable_rate`]).
    rng: Option<fastrand::Rng>,
    /// Until when a written job is `reconciling` (its operation not done yet).
    reconciling: HashMap<String, Instant>,
}

struct Operation {
    /// The job as it was when the operation started (`metadata`).
    job: Value,
    ready_at: Instant,
    /// The operation's `error` once done, if it fails.
    error: Option<Value>,
}

/// The answer to a request to Cloud Run that the documents accepted as `method_id`, or `None`
/// when the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    behaviour: &Behaviour,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let name = request.path.strip_prefix("/v2/")?.to_owned();
    let query = |key: &str| {
        request
            .query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let validate_only = query("validateOnly") == Some("true");
    Some(match method_id {
        "run.projects.locations.jobs.create" => {
            let parent = name.strip_suffix("/jobs")?;
            let id = query("jobId").unwrap_or_default();
            let full = format!("{parent}/jobs/{id}");
            if store.jobs.contains_key(&full) {
                return Some(error(
                    409,
                    "ALREADY_EXISTS",
                    format!("Resource '{id}' already exists."),
                ));
            }
            let mut job = request.body.clone().unwrap_or_else(|| json!({}));
            let n = store.next();
            let now = timestamp();
            let failing = behaviour.failing_jobs.contains(id);
            if let Some(fields) = job.as_object_mut() {
                fields.insert("name".into(), json!(full));
                fields.insert("uid".into(), json!(uid(n)));
                fields.insert("generation".into(), json!("1"));
                fields.insert("observedGeneration".into(), json!("1"));
                fields.insert("etag".into(), json!(etag(n)));
                fields.insert("createTime".into(), json!(now));
                fields.insert("updateTime".into(), json!(now));
                fields.insert("creator".into(), json!(CALLER));
                fields.insert("lastModifier".into(), json!(CALLER));
                fields.insert("reconciling".into(), json!(false));
                fields.entry("launchStage").or_insert_with(|| json!("GA"));
                fields.insert("terminalCondition".into(), ready(failing, &now));
            }
            let failure = failing.then(|| {
                json!({"code": 9, "message": format!("Job '{id}' failed to become ready (the sandbox was told to fail it).")})
            });
            if !validate_only {
                store.jobs.insert(full, job.clone());
            }
            store.operation(behaviour, parent, n, job, failure)
        }
        "run.projects.locations.jobs.get" => match store.jobs.get(&name) {
            Some(job) => (200, store.as_seen(job)),
            None => not_found(&name),
        },
        "run.projects.locations.jobs.list" => {
            let parent = name.strip_suffix("/jobs")?;
            let prefix = format!("{parent}/jobs/");
            let jobs: Vec<Value> = store
                .jobs
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| store.as_seen(v))
                .collect();
            (
                200,
                if jobs.is_empty() {
                    json!({})
                } else {
                    json!({"jobs": jobs})
                },
            )
        }
        "run.projects.locations.jobs.patch" => {
            let Some(current) = store.jobs.get(&name).cloned() else {
                return Some(not_found(&name));
            };
            let body = request.body.clone().unwrap_or_else(|| json!({}));
            if let Some(sent) = body.get("etag").and_then(Value::as_str)
                && Some(sent) != current.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(&name));
            }
            let n = store.next();
            let mut job = body;
            let generation = current
                .get("generation")
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            if let (Some(fields), Some(old)) = (job.as_object_mut(), current.as_object()) {
                // Output-only fields are the service's: what the client sent of them is ignored.
                for key in ["uid", "createTime", "creator", "launchStage"] {
                    if let Some(v) = old.get(key) {
                        fields.insert(key.into(), v.clone());
                    }
                }
                let now = timestamp();
                fields.insert("name".into(), json!(name));
                fields.insert("generation".into(), json!(generation.to_string()));
                fields.insert("observedGeneration".into(), json!(generation.to_string()));
                fields.insert("etag".into(), json!(etag(n)));
                fields.insert("updateTime".into(), json!(now));
                fields.insert("lastModifier".into(), json!(CALLER));
                fields.insert("reconciling".into(), json!(false));
                fields.insert("terminalCondition".into(), ready(false, &now));
            }
            if !validate_only {
                store.jobs.insert(name.clone(), job.clone());
            }
            let parent = name.rsplit_once("/jobs/")?.0.to_owned();
            store.operation(behaviour, &parent, n, job, None)
        }
        "run.projects.locations.jobs.delete" => {
            let Some(current) = store.jobs.get(&name) else {
                return Some(not_found(&name));
            };
            if let Some(sent) = query("etag")
                && Some(sent) != current.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(&name));
            }
            let mut job = current.clone();
            job["deleteTime"] = json!(timestamp());
            if !validate_only {
                store.jobs.remove(&name);
            }
            let n = store.next();
            let parent = name.rsplit_once("/jobs/")?.0.to_owned();
            store.operation(behaviour, &parent, n, job, None)
        }
        "run.projects.locations.operations.get" => match store.operations.get(&name) {
            Some(op) => (200, op.to_json(&name)),
            None => not_found(&name),
        },
        // Google's wait is best effort and "may return the latest state before the specified
        // timeout (including immediately)": the sandbox answers at once.
        "run.projects.locations.operations.wait" => {
            let name = name.strip_suffix(":wait")?;
            match store.operations.get(name) {
                Some(op) => (200, op.to_json(name)),
                None => not_found(name),
            }
        }
        _ => return None,
    })
}

impl Store {
    fn next(&mut self) -> u64 {
        self.writes += 1;
        self.writes
    }

    /// The job as a read sees it now: `reconciling` while its last write's operation runs.
    fn as_seen(&self, job: &Value) -> Value {
        let mut job = job.clone();
        let name = job.get("name").and_then(Value::as_str).unwrap_or_default();
        let busy = self
            .reconciling
            .get(name)
            .is_some_and(|until| Instant::now() < *until);
        job["reconciling"] = json!(busy);
        job
    }

    /// Starts an operation on `job` under `parent` (`projects/p/locations/l`) and answers it.
    fn operation(
        &mut self,
        behaviour: &Behaviour,
        parent: &str,
        n: u64,
        job: Value,
        error: Option<Value>,
    ) -> (u16, Value) {
        let name = format!("{parent}/operations/{}", uid(n));
        let op = Operation {
            job,
            ready_at: Instant::now() + behaviour.operation_delay,
            error,
        };
        if let Some(job) = op.job.get("name").and_then(Value::as_str) {
            self.reconciling.insert(job.to_owned(), op.ready_at);
        }
        let answer = op.to_json(&name);
        self.operations.insert(name, op);
        (200, answer)
    }
}

impl Operation {
    fn to_json(&self, name: &str) -> Value {
        let mut job = self.job.clone();
        job["@type"] = json!(JOB_TYPE);
        let done = Instant::now() >= self.ready_at;
        let mut op = json!({"name": name, "metadata": job, "done": done});
        if done {
            match &self.error {
                Some(error) => op["error"] = error.clone(),
                None => op["response"] = job,
            }
        }
        op
    }
}

/// The job's `terminalCondition`.
fn ready(failed: bool, now: &str) -> Value {
    let state = if failed {
        "CONDITION_FAILED"
    } else {
        "CONDITION_SUCCEEDED"
    };
    json!({"type": "Ready", "state": state, "lastTransitionTime": now})
}

fn uid(n: u64) -> String {
    // Shaped like Google's (a UUID), unique per sandbox run and write.
    let run = std::process::id();
    format!("{run:08x}-0000-4000-8000-{n:012x}")
}

fn etag(n: u64) -> String {
    format!("\"sandbox-{n}\"")
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn not_found(name: &str) -> (u16, Value) {
    error(404, "NOT_FOUND", format!("Resource '{name}' was not found"))
}

fn stale_etag(name: &str) -> (u16, Value) {
    error(
        412,
        "FAILED_PRECONDITION",
        format!("The etag sent for '{name}' does not match its current etag: read it again."),
    )
}

fn error(code: u16, status: &str, message: String) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}
