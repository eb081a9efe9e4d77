//! The first vertical slice of the gcp target, applied for real: the Cloud Run jobs lowered from
//! `examples/quickstart`'s resource profiles, planned and applied by the engine through the
//! Google provider against the sandbox (in-process), every exchange held to Google's discovery
//! documents. Only the jobs are applied (the rest of the quickstart is not yet), so the jobs'
//! dependencies on the other resources are dropped here.
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
use weir_sandbox::discovery::{Catalog, documents_dir_for_tests};
use weir_sandbox::record;
use weir_sandbox::run_jobs::Behaviour;
use weir_sandbox::server::{Running, Sandbox};

const JOB: &str = "google_cloud_run_v2_job";

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}

fn catalog() -> Catalog {
    let dir = documents_dir_for_tests().unwrap_or_else(|e| {
        panic!("{e}\n(run `scripts/test-deps.sh` once to install Google's discovery documents)")
    });
    Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

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
    let (model, diags) = weir::model::load(&weir::config::LoadOptions::new(dir));
    let mut model = model.unwrap_or_else(|| panic!("{diags:?}"));
    let instances = weir::lower::lower(&mut model).unwrap_or_else(|d| panic!("{d:?}"));
    let jobs: Vec<ResourceInstance> = instances
        .into_iter()
        .filter(|i| i.type_name == JOB)
        .map(|mut i| {
            i.dependencies.clear();
            i
        })
        .collect();
    assert_eq!(jobs.len(), 2, "the quickstart has two resource profiles");
    let given = endpoint.to_owned();
    let config = weir::providers::provider_config(&model, &move |name| {
        (name == "WEIR_GOOGLE_ENDPOINT").then(|| given.clone())
    })
    .unwrap();
    assert_eq!(config.endpoints.google.as_deref(), Some(endpoint));
    (jobs, config)
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
        let state = self.backend.read_unlocked().unwrap();
        let input = PlanInput {
            desired: desired.to_vec(),
            outputs: &[],
            prior: state.as_ref(),
            config_hash: state.as_ref().map_or("hash".into(), |s| {
                weir::plan::file::config_digest(&s.key, "hash")
            }),
            git_commit: None,
        };
        rt().block_on(plan(input, &self.providers, &PlanOptions::default()))
            .unwrap()
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
    let report = record::validate_file(&file, &catalog());
    assert!(report.is_ok(), "{report:?}");
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
    let refused = record::read(&file)
        .unwrap()
        .iter()
        .filter(|e| e.method == "PATCH" && e.status == 412)
        .count();
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
        let outcome = engine.apply(&engine.plan(&desired));
        assert!(outcome.success(), "seed {seed}: {:?}", outcome.failed);
        assert!(!engine.plan(&desired).has_changes(), "seed {seed}");
        let fewer = &desired[..1];
        let outcome = engine.apply(&engine.plan(fewer));
        assert!(outcome.success(), "seed {seed}: {:?}", outcome.failed);
        assert!(!engine.plan(fewer).has_changes(), "seed {seed}");
        drop(sandbox);
        let statuses: Vec<u16> = record::read(&file)
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert!(
            statuses.iter().any(|s| *s == 429 || *s == 503),
            "seed {seed}: no fault was injected: {statuses:?}"
        );
        let report = record::validate_file(&file, &catalog());
        assert!(report.is_ok(), "{report:?}");
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
    let options = ApplyOptions::new(4);
    let stop = options.stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        stop.cancel();
    });
    let started = std::time::Instant::now();
    let outcome = engine.apply_with(&engine.plan(&desired), &options);
    stopper.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the stop did not end the wait"
    );
    assert!(!outcome.success());
    let state = engine.state();
    for job in ["standard", "highmem"] {
        let recorded = &state.resources[&format!("{JOB}.{job}")].attributes;
        assert!(recorded["uid"].is_string(), "{job}: {recorded}");
    }
    let next = engine.plan(&desired);
    assert!(!next.has_changes(), "{:?}", actions(&next));
}
