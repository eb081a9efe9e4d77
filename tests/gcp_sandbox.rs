//! The first vertical slice of the gcp target, applied for real: the Cloud Run jobs lowered from
//! `examples/quickstart`'s resource profiles, planned and applied by the engine through the
//! Google provider against the sandbox (in-process), every exchange held to Google's discovery
//! documents; and its Secret Manager secrets and versions the same way. Only those are applied
//! (the rest of the quickstart is not yet), so their dependencies on the other resources are
//! dropped here.
//!
//! The discovery documents come from `scripts/test-deps.sh` (`WEIR_TEST_DISCOVERY_DIR`); without
//! them these tests fail saying so.

use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use weir::apply::reporter::{Event, Reporter};
use weir::apply::{ApplyOptions, ApplyOutcome, apply};
use weir::lower::ResourceInstance;
use weir::plan::planner::{PlanInput, PlanOptions, plan};
use weir::plan::{Action, Plan};
use weir::providers::Providers;
use weir::state::{LocalBackend, State, default_path};
use weir_sandbox::record;
use weir_sandbox::run_jobs::Behaviour;
use weir_sandbox::server::{Running, Sandbox};

const JOB: &str = "google_cloud_run_v2_job";

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}

#[path = "support/gcp.rs"]
mod cloud;
use cloud::catalog;

/// The quickstart in a temp dir, optionally with `edit` applied to its profiles.
fn quickstart(tmp: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let dir = tmp.join("quickstart");
    copy_dir(&src, &dir);
    let profiles = dir.join("profiles.hcl");
    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(&profiles, edit(text)).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The Cloud Run jobs lowered from the configuration in `dir`, without their dependencies on
/// the rest of the deployment, and the provider configuration pointing at `endpoint`.
fn jobs(dir: &Path, endpoint: &str) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (jobs, config) = lowered(dir, &[("WEIR_GOOGLE_ENDPOINT", endpoint)], &[JOB]);
    assert_eq!(jobs.len(), 2, "the quickstart has two resource profiles");
    (jobs, config)
}

/// The instances of `types` lowered from the configuration in `dir`, with their dependencies
/// on one another only, and the provider configuration read from `env`
/// (e.g. `WEIR_GOOGLE_ENDPOINT`, `STORAGE_EMULATOR_HOST`).
fn lowered(
    dir: &Path,
    env: &[(&str, &str)],
    types: &[&str],
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (model, diags) = weir::model::load(&weir::config::LoadOptions::new(dir));
    let mut model = model.unwrap_or_else(|| panic!("{diags:?}"));
    let instances = weir::lower::lower(&mut model).unwrap_or_else(|d| panic!("{d:?}"));
    let picked: Vec<ResourceInstance> = instances
        .into_iter()
        .filter(|i| types.contains(&i.type_name.as_str()))
        .collect();
    let addresses: HashSet<String> = picked.iter().map(|i| i.address.clone()).collect();
    let picked = picked
        .into_iter()
        .map(|mut i| {
            i.dependencies.retain(|d| addresses.contains(d));
            i
        })
        .collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = weir::providers::provider_config(&model, &move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    (picked, config)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A state directory and the Google provider configured for the sandbox.
struct Engine {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
    providers: Arc<Providers>,
}

impl Engine {
    fn new(config: weir_provider_sdk::ProviderConfig) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::open(dir.path(), &default_path()).unwrap();
        let providers = Arc::new(
            Providers::new(vec![Arc::new(weir_provider_google::GoogleProvider::new())
                as Arc<dyn weir_provider_sdk::Provider>])
            .with_config(config),
        );
        Engine {
            _dir: dir,
            backend,
            providers,
        }
    }

    fn plan(&self, desired: &[ResourceInstance]) -> Plan {
        self.try_plan(desired, &[]).unwrap()
    }

    /// The plan of `desired` with `outputs`, or the planner's refusal.
    fn try_plan(
        &self,
        desired: &[ResourceInstance],
        outputs: &[weir::model::Output],
    ) -> Result<Plan, Vec<String>> {
        let state = self.backend.read_unlocked().unwrap();
        let input = PlanInput {
            desired: desired.to_vec(),
            outputs,
            prior: state.as_ref(),
            config_hash: state.as_ref().map_or("hash".into(), |s| {
                weir::plan::file::config_digest(&s.key, "hash")
            }),
            git_commit: None,
        };
        rt().block_on(plan(input, &self.providers, &PlanOptions::default()))
    }

    fn apply(&self, plan: &Plan) -> ApplyOutcome {
        self.apply_with(plan, &ApplyOptions::new(4))
    }

    fn apply_with(&self, plan: &Plan, options: &ApplyOptions) -> ApplyOutcome {
        let mut lock = self.backend.lock("apply", Duration::ZERO).unwrap();
        let mut state = lock.read().unwrap().unwrap_or_default();
        rt().block_on(apply(
            plan,
            self.providers.clone(),
            &mut lock,
            &mut state,
            options,
            &Quiet,
        ))
    }

    /// Applies the plan of `desired` and holds it to succeed and leave nothing to change
    /// (`context` says which run, in the messages).
    fn converge(&self, desired: &[ResourceInstance], context: &str) {
        let outcome = self.apply(&self.plan(desired));
        assert!(outcome.success(), "{context}: {:?}", outcome.failed);
        let again = self.plan(desired);
        assert!(!again.has_changes(), "{context}: {:?}", actions(&again));
    }

    /// Applies the plan of `desired` (from no state: every instance a create), and holds the
    /// apply to succeed.
    fn create_all(&self, desired: &[ResourceInstance]) {
        let first = self.plan(desired);
        let created = actions(&first);
        assert_eq!(created.len(), desired.len(), "{created:?}");
        assert!(
            created.iter().all(|(_, a)| *a == Action::Create),
            "{created:?}"
        );
        let outcome = self.apply(&first);
        assert!(outcome.success(), "{:?}", outcome.failed);
    }

    /// Applies the plan of `desired` and raises the stop 700 ms in, while the sandbox's
    /// operations run: holds the stop to end the wait at once and the apply to fail.
    fn apply_stopped(&self, desired: &[ResourceInstance]) {
        let options = ApplyOptions::new(4);
        let stop = options.stop.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            stop.cancel();
        });
        let started = std::time::Instant::now();
        let outcome = self.apply_with(&self.plan(desired), &options);
        stopper.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stop did not end the wait"
        );
        assert!(!outcome.success());
    }

    fn state(&self) -> State {
        self.backend.read_unlocked().unwrap().unwrap()
    }
}

/// The plan's changes, by address.
fn actions(plan: &Plan) -> Vec<(String, Action)> {
    let mut actions: Vec<(String, Action)> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.address.clone(), c.action))
        .collect();
    actions.sort_by(|a, b| a.0.cmp(&b.0));
    actions
}

fn start(record: Option<PathBuf>, behaviour: Behaviour) -> Running {
    let mut sandbox = Sandbox::new(catalog()).behaviour(behaviour);
    sandbox.record = record;
    sandbox.spawn("127.0.0.1:0".parse().unwrap()).unwrap()
}

#[test]
fn quickstart_jobs_are_created_updated_in_place_and_deleted_against_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = jobs(&dir, &sandbox.url());
    let engine = Engine::new(config);

    let first = engine.plan(&desired);
    assert_eq!(
        actions(&first),
        vec![
            (format!("{JOB}.highmem"), Action::Create),
            (format!("{JOB}.standard"), Action::Create)
        ]
    );
    let outcome = engine.apply(&first);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let state = engine.state();
    let standard = &state.resources[&format!("{JOB}.standard")].attributes;
    assert!(standard["uid"].is_string(), "{standard}");
    assert!(standard["etag"].is_string(), "{standard}");
    assert_eq!(standard["generation"], json!("1"));

    // Right after apply, nothing to change.
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));

    // One profile's memory: an in-place update of that job only.
    let edited = quickstart(&tmp.path().join("edited"), |t| {
        t.replacen("memory      = \"2Gi\"", "memory      = \"4Gi\"", 1)
    });
    let (bigger, _) = jobs(&edited, &sandbox.url());
    let update = engine.plan(&bigger);
    assert_eq!(
        actions(&update),
        vec![(format!("{JOB}.standard"), Action::Update)]
    );
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let standard = &engine.state().resources[&format!("{JOB}.standard")].attributes;
    assert_eq!(standard["generation"], json!("2"));
    assert_eq!(
        standard
            .pointer("/template/template/containers/0/resources/limits/memory")
            .unwrap(),
        &json!("4Gi")
    );
    assert!(!engine.plan(&bigger).has_changes());

    // A profile gone: its job is deleted.
    let fewer: Vec<ResourceInstance> = bigger
        .iter()
        .filter(|i| i.name != "highmem")
        .cloned()
        .collect();
    let delete = engine.plan(&fewer);
    assert_eq!(
        actions(&delete),
        vec![(format!("{JOB}.highmem"), Action::Delete)]
    );
    assert!(engine.apply(&delete).success());
    assert!(!engine.plan(&fewer).has_changes());
    assert!(
        !engine
            .state()
            .resources
            .contains_key(&format!("{JOB}.highmem"))
    );

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    let methods: HashSet<(String, u16)> = exchanges
        .iter()
        .map(|e| (e.method.clone(), e.status))
        .collect();
    for seen in [("POST", 200), ("GET", 200), ("PATCH", 200), ("DELETE", 200)] {
        assert!(
            methods.contains(&(seen.0.to_owned(), seen.1)),
            "no {seen:?} in {methods:?}"
        );
    }
    assert_record_valid(&file);
}

#[test]
fn a_job_left_by_a_lost_state_is_adopted_a_stale_etag_is_read_again_and_a_stranger_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = jobs(&dir, &sandbox.url());

    // A first state creates both jobs; a second one, starting afresh, meets them (409): they
    // carry weir's labels for this deployment, so it adopts them.
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());
    let uid = first.state().resources[&format!("{JOB}.standard")].attributes["uid"].clone();
    let second = Engine::new(config.clone());
    let outcome = second.apply(&second.plan(&desired));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        second.state().resources[&format!("{JOB}.standard")].attributes["uid"],
        uid,
        "the same job, adopted"
    );
    assert!(!second.plan(&desired).has_changes());

    // The adoption changed the jobs' etags: the first state's are stale. Its update is refused
    // (412), reads the job again and succeeds with the new etag.
    let mut bigger = desired.clone();
    for job in &mut bigger {
        job.attributes["template"]["template"]["maxRetries"] = json!(7);
    }
    let update = first.plan(&bigger);
    assert_eq!(actions(&update).len(), 2, "{:?}", actions(&update));
    let outcome = first.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!first.plan(&bigger).has_changes());
    let refused = count(&file, |e| e.method == "PATCH" && e.status == 412);
    assert_eq!(
        refused, 2,
        "each stale update was refused once, then retried"
    );

    // A job of the same name that another deployment made is not taken over.
    let mut strangers = desired.clone();
    for s in &mut strangers {
        s.attributes["name"] = json!(format!("{}-x", s.attributes["name"].as_str().unwrap()));
        s.attributes["labels"]["weir-deployment"] = json!("someone-else");
    }
    let other = Engine::new(config.clone());
    assert!(other.apply(&other.plan(&strangers)).success());
    let mut ours = strangers.clone();
    for s in &mut ours {
        s.attributes["labels"] = desired[0].attributes["labels"].clone();
    }
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&ours));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 2, "{:?}", outcome.failed);
    for (_, _, message) in &outcome.failed {
        assert!(
            message.contains("already exists and weir did not create it"),
            "{message}"
        );
    }
}

#[test]
fn an_operation_that_ends_in_error_is_a_failure_with_the_job_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    // The job names derive from the deployment: learn them with any endpoint.
    let (desired, _) = jobs(&dir, "http://127.0.0.1:9");
    let highmem = desired.iter().find(|i| i.name == "highmem").unwrap();
    let failing = highmem.attributes["name"].as_str().unwrap().to_owned();
    let sandbox = start(
        None,
        Behaviour {
            operation_delay: Duration::from_millis(300),
            failing_jobs: HashSet::from([failing]),
            ..Behaviour::default()
        },
    );
    let (desired, config) = jobs(&dir, &sandbox.url());
    let engine = Engine::new(config);
    let outcome = engine.apply(&engine.plan(&desired));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    let (address, action, message) = &outcome.failed[0];
    assert_eq!(
        (address.as_str(), *action),
        (&*format!("{JOB}.highmem"), Action::Create)
    );
    assert!(message.contains("failed"), "{message}");
    let state = engine.state();
    // What exists is recorded, so the next run does not create it again.
    let recorded = &state.resources[&format!("{JOB}.highmem")].attributes;
    assert!(recorded["uid"].is_string(), "{recorded}");
    assert!(state.resources.contains_key(&format!("{JOB}.standard")));
    let next = engine.plan(&desired);
    assert!(
        actions(&next).iter().all(|(_, a)| *a != Action::Create),
        "{:?}",
        actions(&next)
    );
}

#[test]
fn with_a_fifth_of_calls_throttled_or_failing_and_added_latency_the_jobs_still_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    for seed in 1..=3 {
        let file = tmp.path().join(format!("record-{seed}.jsonl"));
        let sandbox = start(
            Some(file.clone()),
            Behaviour {
                latency: Duration::from_millis(5),
                unavailable_rate: 0.2,
                seed,
                ..Behaviour::default()
            },
        );
        let (desired, config) = jobs(&dir, &sandbox.url());
        let engine = Engine::new(config);
        engine.converge(&desired, &format!("seed {seed}"));
        let fewer = &desired[..1];
        engine.converge(fewer, &format!("seed {seed}"));
        drop(sandbox);
        assert!(
            count(&file, is_fault) > 0,
            "seed {seed}: no fault was injected"
        );
        assert_record_valid(&file);
    }
}

#[test]
fn a_stop_while_operations_run_records_the_jobs_and_the_next_run_does_not_create_them_again() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(
        None,
        Behaviour {
            operation_delay: Duration::from_secs(60),
            ..Behaviour::default()
        },
    );
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = jobs(&dir, &sandbox.url());
    let engine = Engine::new(config);
    engine.apply_stopped(&desired);
    let state = engine.state();
    for job in ["standard", "highmem"] {
        let recorded = &state.resources[&format!("{JOB}.{job}")].attributes;
        assert!(recorded["uid"].is_string(), "{job}: {recorded}");
    }
    let next = engine.plan(&desired);
    assert!(!next.has_changes(), "{:?}", actions(&next));
}

const SECRET: &str = "google_secret_manager_secret";
const SECRET_VERSION: &str = "google_secret_manager_secret_version";

/// The Secret Manager secrets and versions lowered from the configuration in `dir`, keeping
/// only their dependencies on one another, and the provider configuration for `endpoint`.
fn secrets(
    dir: &Path,
    endpoint: &str,
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    lowered(
        dir,
        &[("WEIR_GOOGLE_ENDPOINT", endpoint)],
        &[SECRET, SECRET_VERSION],
    )
}

/// One raw call to the sandbox, as a client outside weir makes it: the status and body.
fn call(
    sandbox: &Running,
    host: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(sandbox.addr()).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}")),
    )
}

/// One raw GET to the sandbox, as a client outside weir makes it; the body of its 200.
fn get(sandbox: &Running, host: &str, path: &str) -> serde_json::Value {
    let (status, body) = call(sandbox, host, "GET", path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// How many exchanges of the sandbox's record `file` are `which`.
fn count(file: &Path, which: impl Fn(&record::Exchange) -> bool) -> usize {
    record::read(file)
        .unwrap()
        .iter()
        .filter(|e| which(e))
        .count()
}

/// Whether the sandbox's answer is one of the faults it injects (429 or 503).
fn is_fault(e: &record::Exchange) -> bool {
    e.status == 429 || e.status == 503
}

/// Holds every exchange of the record `file` to Google's discovery documents.
fn assert_record_valid(file: &Path) {
    let report = record::validate_file(file, &catalog());
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn quickstart_secrets_and_versions_are_created_unchanged_on_replan_kept_out_of_the_record_and_deleted()
 {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = secrets(&dir, &sandbox.url());
    let project = config.project.clone().unwrap();
    let engine = Engine::new(config);
    for name in ["db_password", "db_url", "notification_data_alerts"] {
        for t in [SECRET, SECRET_VERSION] {
            let address = format!("{t}.{name}");
            assert!(
                desired.iter().any(|i| i.address == address),
                "{address} is not lowered"
            );
        }
    }

    engine.create_all(&desired);

    // Right after apply, nothing to change: not even the generated password.
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));
    let state = engine.state();
    let password_version = &state.resources[&format!("{SECRET_VERSION}.db_password")].attributes;
    assert_eq!(password_version["state"], json!("ENABLED"));
    let version_name = password_version["name"].as_str().unwrap().to_owned();
    assert!(state.resources[&format!("{SECRET}.db_password")].attributes["etag"].is_string());

    // The values, as a reader of the secrets sees them.
    let host = "secretmanager.googleapis.com";
    let access = |id: &str| {
        let answer = get(
            &sandbox,
            host,
            &format!("/v1/projects/{project}/secrets/{id}/versions/latest:access"),
        );
        let data = answer["payload"]["data"].as_str().unwrap().to_owned();
        String::from_utf8(b64.decode(&data).unwrap()).unwrap()
    };
    let secret_id = |name: &str| {
        state.resources[&format!("{SECRET}.{name}")].attributes["secretId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let password = access(&secret_id("db_password"));
    assert_eq!(password.len(), 32);
    let url = access(&secret_id("db_url"));
    assert!(
        url.contains(&format!(":{password}@")),
        "the URL is built from the password"
    );
    assert!(!url.contains("{password}"));
    let settings = access(&secret_id("notification_data_alerts"));
    assert!(settings.contains("slack"), "{settings}");

    // A second apply changes nothing either: the password is chosen once.
    let outcome = engine.apply(&again);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(access(&secret_id("db_password")), password);

    // A label changed: the secret is updated in place, its version untouched.
    let mut relabelled = desired.clone();
    for i in &mut relabelled {
        if i.address == format!("{SECRET}.db_url") {
            i.attributes["labels"]["rotated-by"] = json!("weir-test");
        }
    }
    let update = engine.plan(&relabelled);
    assert_eq!(
        actions(&update),
        vec![(format!("{SECRET}.db_url"), Action::Update)]
    );
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let db_url = &engine.state().resources[&format!("{SECRET}.db_url")].attributes;
    assert_eq!(db_url["labels"]["rotated-by"], json!("weir-test"));
    assert!(!engine.plan(&relabelled).has_changes());
    assert_eq!(access(&secret_id("db_url")), url);

    // Delete everything: the secrets are gone, the versions destroyed.
    let delete = engine.plan(&[]);
    let deleted = actions(&delete);
    assert_eq!(deleted.len(), desired.len(), "{deleted:?}");
    assert!(
        deleted.iter().all(|(_, a)| *a == Action::Delete),
        "{deleted:?}"
    );
    let outcome = engine.apply(&delete);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(engine.state().resources.is_empty());
    assert!(!engine.plan(&[]).has_changes());

    drop(sandbox);
    let text = std::fs::read_to_string(&file).unwrap();
    let state_text = serde_json::to_string(&state).unwrap();
    for secret in [&password, &url, &settings] {
        for form in [secret.clone(), b64.encode(secret.as_bytes())] {
            assert!(!text.contains(&form), "a secret value is in the record");
            assert!(
                !state_text.contains(&form),
                "a secret value is in the state"
            );
        }
    }
    let exchanges = record::read(&file).unwrap();
    let seen: HashSet<(String, String, u16)> = exchanges
        .iter()
        .filter(|e| e.service == host)
        .map(|e| {
            let tail = e.path.rsplit(':').next().unwrap_or_default().to_owned();
            (e.method.clone(), tail, e.status)
        })
        .collect();
    for want in ["addVersion", "access", "destroy"] {
        assert!(
            seen.iter()
                .any(|(m, t, s)| (m == "POST" || m == "GET") && t == want && *s == 200),
            "no {want} in {seen:?}"
        );
    }
    assert!(
        exchanges
            .iter()
            .any(|e| e.method == "DELETE" && e.status == 200 && e.service == host)
    );
    assert!(
        exchanges.iter().any(|e| e.method == "GET"
            && e.path == format!("/v1/{version_name}")
            && e.status == 200)
    );
    assert_record_valid(&file);
}

#[test]
fn a_secret_left_by_a_lost_state_is_adopted_and_a_strangers_secret_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(None, Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = secrets(&dir, &sandbox.url());
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());

    // The state is lost: the secrets weir made for this deployment are adopted.
    let second = Engine::new(config.clone());
    second.converge(&desired, "");

    // Another deployment's secret of the same id is not touched.
    let stranger: Vec<ResourceInstance> = desired
        .iter()
        .filter(|i| i.address == format!("{SECRET}.db_password"))
        .cloned()
        .map(|mut i| {
            i.attributes["labels"]["weir-deployment"] = json!("someone-else");
            i
        })
        .collect();
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&stranger));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(
        failed.contains("already exists and weir did not create it"),
        "{failed}"
    );
}
#[path = "gcp_sandbox/auth.rs"]
mod auth;
#[path = "gcp_sandbox/compute.rs"]
mod compute;
#[path = "gcp_sandbox/iam.rs"]
mod iam;
#[path = "gcp_sandbox/release.rs"]
mod release;
#[path = "gcp_sandbox/run_service.rs"]
mod run_service;
#[path = "gcp_sandbox/sql.rs"]
mod sql;
#[path = "gcp_sandbox/storage.rs"]
mod storage;
