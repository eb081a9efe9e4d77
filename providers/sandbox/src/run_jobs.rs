//! Cloud Run Admin v2 jobs and services with state:
//! `projects.locations.{jobs,services}.{create,get,list,patch,delete}` and
//! `projects.locations.operations.{get,wait}`, kept in memory.
//!
//! As Google does: every write answers a long-running Operation (`name`, `done`, `metadata`,
//! then `response` or `error`) that finishes after [`Behaviour::operation_delay`]; the job's
//! output-only fields (`uid`, `etag`, `generation`, `createTime`, `updateTime`, `creator`,
//! `lastModifier`, `reconciling`, `terminalCondition`, …) are filled in; the etag changes on
//! every write; a service gets what Cloud Run adds ([`serve`]: its `uri`, revisions, traffic,
//! conditions, the defaults of its template); no field that holds its default is answered, as
//! proto3's JSON leaves them out (`maxRetries: 0`, `minInstanceCount: 0`, `false`, empty
//! lists); a duplicate create is 409 `ALREADY_EXISTS`, a missing job 404 `NOT_FOUND`, and
//! a stale etag (in the patch body or the delete's `etag` parameter) 412 `FAILED_PRECONDITION`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::validate::Request;

/// The identity the sandbox reports as the caller (`creator`, `lastModifier`).
const CALLER: &str = "weir-sandbox@sandbox.invalid";
/// The `@type` of a job inside an operation's `metadata` and `response`.
const JOB_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Job";
/// The `@type` of a service inside an operation's `metadata` and `response`.
const SERVICE_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Service";

/// How the sandbox behaves beyond answering correctly (fault injection).
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// How long an operation runs before it is `done` (0: done at once).
    pub operation_delay: Duration,
    /// Ids of Cloud Run jobs and services whose create leaves the object behind but ends its
    /// operation in error (as one whose reconciliation fails does; a service so made has no
    /// ready revision).
    pub failing_jobs: HashSet<String>,
    /// Cloud SQL instance names whose create leaves the instance `FAILED` and ends its operation
    /// `DONE` with an error.
    pub failing_sql_instances: HashSet<String>,
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
    /// Jobs and services by full name (`projects/p/locations/l/jobs/j`,
    /// `projects/p/locations/l/services/s`).
    objects: BTreeMap<String, Value>,
    operations: HashMap<String, Operation>,
    /// Counts writes: etags, uids and operation names come from it.
    writes: u64,
    /// Chooses the injected faults ([`Behaviour::unavailable_rate`]).
    rng: Option<fastrand::Rng>,
    /// Until when a written job is `reconciling` (its operation not done yet).
    reconciling: HashMap<String, Instant>,
}

struct Operation {
    /// The job or service as it was when the operation started (`metadata`).
    job: Value,
    /// Its `@type`.
    type_url: &'static str,
    ready_at: Instant,
    /// The operation's `error` once done, if it fails.
    error: Option<Value>,
}

/// What tells a Cloud Run job from a service in the API.
struct Kind {
    /// The collection under `projects/<p>/locations/<l>`.
    collection: &'static str,
    /// The create method's query parameter naming the new object.
    id_parameter: &'static str,
    /// The `@type` of the object inside an operation's `metadata` and `response`.
    type_url: &'static str,
    /// Whether the object is a service (served at a URL, with revisions and traffic).
    service: bool,
}

const JOB: Kind = Kind {
    collection: "jobs",
    id_parameter: "jobId",
    type_url: JOB_TYPE,
    service: false,
};

const SERVICE: Kind = Kind {
    collection: "services",
    id_parameter: "serviceId",
    type_url: SERVICE_TYPE,
    service: true,
};

/// The answer to a request to Cloud Run that the documents accepted as `method_id`, or `None`
/// when the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    behaviour: &Behaviour,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let name = request.path.strip_prefix("/v2/")?.to_owned();
    let query = |key: &str| request.query_value(key);
    let validate_only = query("validateOnly") == Some("true");
    let (collection, verb) = method_id
        .strip_prefix("run.projects.locations.")?
        .split_once('.')?;
    let kind = match collection {
        "jobs" => &JOB,
        "services" => &SERVICE,
        "operations" => {
            return Some(match verb {
                "get" => match store.operations.get(&name) {
                    Some(op) => (200, op.to_json(&name)),
                    None => not_found(&name),
                },
                // Google's wait is best effort and "may return the latest state before the
                // specified timeout (including immediately)": the sandbox answers at once.
                "wait" => {
                    let name = name.strip_suffix(":wait")?;
                    match store.operations.get(name) {
                        Some(op) => (200, op.to_json(name)),
                        None => not_found(name),
                    }
                }
                _ => return None,
            });
        }
        _ => return None,
    };
    let separator = format!("/{}/", kind.collection);
    Some(match verb {
        "create" => {
            let parent = name.strip_suffix(&format!("/{}", kind.collection))?;
            let id = query(kind.id_parameter).unwrap_or_default();
            let full = format!("{parent}{separator}{id}");
            if store.objects.contains_key(&full) {
                return Some(error(
                    409,
                    "ALREADY_EXISTS",
                    format!("Resource '{id}' already exists."),
                ));
            }
            let mut object = request.body.clone().unwrap_or_else(|| json!({}));
            let n = store.next();
            let now = timestamp();
            let failing = behaviour.failing_jobs.contains(id);
            if let Some(fields) = object.as_object_mut() {
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
            if kind.service {
                serve(&mut object, &full, 1, n, failing, &now);
            }
            omit_defaults(&mut object);
            let failure = failing.then(|| {
                json!({"code": 9, "message": format!("Resource '{id}' failed to become ready (the sandbox was told to fail it).")})
            });
            if !validate_only {
                store.objects.insert(full, object.clone());
            }
            store.operation(behaviour, kind, parent, n, object, failure)
        }
        "get" => match store.objects.get(&name) {
            Some(object) => (200, store.as_seen(object)),
            None => not_found(&name),
        },
        "list" => {
            let prefix = format!("{name}/");
            let objects: Vec<Value> = store
                .objects
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| store.as_seen(v))
                .collect();
            (
                200,
                if objects.is_empty() {
                    json!({})
                } else {
                    json!({ kind.collection: objects })
                },
            )
        }
        "patch" => {
            let Some(current) = store.objects.get(&name).cloned() else {
                return Some(not_found(&name));
            };
            let body = request.body.clone().unwrap_or_else(|| json!({}));
            if let Some(sent) = body.get("etag").and_then(Value::as_str)
                && Some(sent) != current.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(&name));
            }
            let n = store.next();
            let mut object = body;
            let generation = current
                .get("generation")
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let now = timestamp();
            if let (Some(fields), Some(old)) = (object.as_object_mut(), current.as_object()) {
                // Output-only fields are the service's: what the client sent of them is ignored.
                for key in ["uid", "createTime", "creator", "launchStage"] {
                    if let Some(v) = old.get(key) {
                        fields.insert(key.into(), v.clone());
                    }
                }
                fields.insert("name".into(), json!(name));
                fields.insert("generation".into(), json!(generation.to_string()));
                fields.insert("observedGeneration".into(), json!(generation.to_string()));
                fields.insert("etag".into(), json!(etag(n)));
                fields.insert("updateTime".into(), json!(now));
                fields.insert("lastModifier".into(), json!(CALLER));
                fields.insert("reconciling".into(), json!(false));
                fields.insert("terminalCondition".into(), ready(false, &now));
            }
            if kind.service {
                serve(&mut object, &name, generation, n, false, &now);
            }
            omit_defaults(&mut object);
            if !validate_only {
                store.objects.insert(name.clone(), object.clone());
            }
            let parent = name.rsplit_once(&separator)?.0.to_owned();
            store.operation(behaviour, kind, &parent, n, object, None)
        }
        "delete" => {
            let Some(current) = store.objects.get(&name) else {
                return Some(not_found(&name));
            };
            if let Some(sent) = query("etag")
                && Some(sent) != current.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(&name));
            }
            let mut object = current.clone();
            object["deleteTime"] = json!(timestamp());
            if !validate_only {
                store.objects.remove(&name);
            }
            let n = store.next();
            let parent = name.rsplit_once(&separator)?.0.to_owned();
            store.operation(behaviour, kind, &parent, n, object, None)
        }
        _ => return None,
    })
}

/// Fills in what Cloud Run adds to a service it has written (generation `generation`, write
/// `n`): the defaults of the fields left out, its URL, its revisions and traffic, its
/// conditions.
fn serve(service: &mut Value, full: &str, generation: u64, n: u64, failing: bool, now: &str) {
    let Some(fields) = service.as_object_mut() else {
        return;
    };
    fields
        .entry("ingress")
        .or_insert_with(|| json!("INGRESS_TRAFFIC_ALL"));
    let latest = json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]);
    if fields
        .get("traffic")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        fields.insert("traffic".into(), latest.clone());
    }
    let template = fields
        .entry("template")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(template) = template {
        template.entry("timeout").or_insert_with(|| json!("300s"));
        let scaling = template.entry("scaling").or_insert_with(|| json!({}));
        if scaling.get("maxInstanceCount").is_none() {
            scaling["maxInstanceCount"] = json!(100);
        }
        let containers = template
            .entry("containers")
            .or_insert_with(|| json!([{}]))
            .as_array_mut();
        let mut fractional = false;
        for c in containers.into_iter().flatten() {
            let Some(c) = c.as_object_mut() else { continue };
            c.entry("resources").or_insert_with(
                || json!({"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": true}),
            );
            fractional |= c
                .get("resources")
                .and_then(|r| r.pointer("/limits/cpu"))
                .and_then(Value::as_str)
                .is_some_and(|cpu| cpu.ends_with('m') && cpu != "1000m");
            let ports = c
                .entry("ports")
                .or_insert_with(|| json!([{"containerPort": 8080}]));
            for port in ports.as_array_mut().into_iter().flatten() {
                if port.get("name").is_none() {
                    port["name"] = json!("http1");
                }
            }
        }
        template
            .entry("maxInstanceRequestConcurrency")
            .or_insert_with(|| json!(if fractional { 1 } else { 80 }));
    }
    let id = full.rsplit('/').next().unwrap_or(full).to_owned();
    let project = full.split('/').nth(1).unwrap_or_default();
    let region = full.split('/').nth(3).unwrap_or_default();
    let uri = format!(
        "https://{id}-{}-{}.a.run.app",
        project_hash(project),
        region_code(region)
    );
    let revision = format!("{full}/revisions/{id}-{generation:05}-{}", short(n));
    fields.insert("uri".into(), json!(uri));
    fields.insert("urls".into(), json!([uri]));
    fields.insert("latestCreatedRevision".into(), json!(revision));
    let mut conditions = vec![
        json!({"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}),
    ];
    if failing {
        fields.remove("latestReadyRevision");
        fields.insert("trafficStatuses".into(), json!([]));
    } else {
        fields.insert("latestReadyRevision".into(), json!(revision));
        fields.insert("trafficStatuses".into(), latest);
        conditions.push(json!({"type": "RoutesReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}));
    }
    fields.insert("conditions".into(), json!(conditions));
}

/// Leaves out the fields of `message` that hold their default (`false`, `0`, `""`, empty
/// lists and messages), as proto3's JSON mapping does; map fields (`labels`, `annotations`)
/// keep their entries.
fn omit_defaults(message: &mut Value) {
    match message {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                if key != "labels" && key != "annotations" {
                    omit_defaults(v);
                }
            }
            fields.retain(|_, v| match v {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Null => false,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(omit_defaults),
        _ => {}
    }
}

/// A stable 10-character lower-case code for `project`, as Cloud Run puts in its URLs.
fn project_hash(project: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in project.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| {
            let digit = (h >> (i * 6)) % 36;
            char::from_digit(digit as u32, 36).unwrap_or('a')
        })
        .collect()
}

/// The region's code in Cloud Run URLs: the first letter of each part (`us-central1` → `uc`).
fn region_code(region: &str) -> String {
    region
        .split('-')
        .filter_map(|part| part.chars().next())
        .collect()
}

/// A revision's 3-character suffix, from the write that made it.
fn short(n: u64) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    (0..3)
        .map(|i| char::from(letters[((n / 26u64.pow(i)) % 26) as usize]))
        .collect()
}

impl Store {
    /// The job `projects/p/locations/l/jobs/j`, if kept.
    pub(crate) fn job(&self, name: &str) -> Option<Value> {
        self.objects
            .get(name)
            .filter(|_| name.contains("/jobs/"))
            .cloned()
    }

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

    /// Starts an operation on `job` (a job or a service, as `kind` says) under `parent`
    /// (`projects/p/locations/l`) and answers it.
    fn operation(
        &mut self,
        behaviour: &Behaviour,
        kind: &Kind,
        parent: &str,
        n: u64,
        job: Value,
        error: Option<Value>,
    ) -> (u16, Value) {
        let name = format!("{parent}/operations/{}", uid(n));
        let op = Operation {
            job,
            type_url: kind.type_url,
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
        job["@type"] = json!(self.type_url);
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

/// Google's error answer: `code` with its canonical `status` (`NOT_FOUND`, …) and `message`.
pub(crate) fn error(code: u16, status: &str, message: String) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_gets_its_url_revision_traffic_and_defaults_and_leaves_zero_fields_out() {
        let full = "projects/acme/locations/us-central1/services/web";
        let mut service = json!({
            "labels": {"empty": ""},
            "invokerIamDisabled": false,
            "template": {
                "scaling": {"minInstanceCount": 0, "maxInstanceCount": 1},
                "containers": [{"image": "i", "ports": [{"containerPort": 6789}]}],
            },
        });
        serve(&mut service, full, 3, 7, false, "2026-01-01T00:00:00Z");
        omit_defaults(&mut service);
        let uri = service["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("https://web-") && uri.ends_with("-uc.a.run.app"),
            "{uri}"
        );
        assert_eq!(uri.len(), "https://web-".len() + 10 + "-uc.a.run.app".len());
        let revision = service["latestReadyRevision"].as_str().unwrap();
        assert!(
            revision.starts_with(&format!("{full}/revisions/web-00003-")),
            "{revision}"
        );
        assert_eq!(
            service["latestCreatedRevision"],
            service["latestReadyRevision"]
        );
        assert_eq!(service["ingress"], "INGRESS_TRAFFIC_ALL");
        assert_eq!(service["traffic"][0]["percent"], 100);
        assert_eq!(service["template"]["maxInstanceRequestConcurrency"], 80);
        assert_eq!(
            service["template"]["scaling"],
            json!({"maxInstanceCount": 1})
        );
        assert_eq!(
            service["template"]["containers"][0]["ports"],
            json!([{"name": "http1", "containerPort": 6789}])
        );
        assert!(service.get("invokerIamDisabled").is_none());
        // A map keeps its entries, empty values included.
        assert_eq!(service["labels"], json!({"empty": ""}));

        // One that fails to become ready has no ready revision and serves no traffic.
        let mut failed = json!({});
        serve(&mut failed, full, 1, 1, true, "2026-01-01T00:00:00Z");
        omit_defaults(&mut failed);
        assert!(failed.get("latestReadyRevision").is_none());
        assert!(failed.get("trafficStatuses").is_none());
        assert!(failed["latestCreatedRevision"].is_string());
    }

    #[test]
    fn region_codes_and_project_hashes_are_stable() {
        assert_eq!(region_code("us-central1"), "uc");
        assert_eq!(region_code("europe-west1"), "ew");
        assert_eq!(project_hash("acme"), project_hash("acme"));
        assert_ne!(project_hash("acme"), project_hash("acme-2"));
    }
}
