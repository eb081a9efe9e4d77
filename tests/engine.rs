//! The engine (plan, apply, state, saved plans) against an in-memory provider.

#[path = "support/memory.rs"]
mod memory;

use memory::MemoryProvider;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use weir::apply::reporter::{Event, Reporter};
use weir::apply::{ApplyOptions, apply};
use weir::lower::ResourceInstance;
use weir::plan::file::config_digest;
use weir::plan::planner::{PlanInput, PlanOptions, plan};
use weir::plan::{Action, Plan, Reason};
use weir::providers::Providers;
use weir::state::{LocalBackend, State, default_path};

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}

fn thing(name: &str, kind: &str, value: &str, deps: &[&str]) -> ResourceInstance {
    let mut r = ResourceInstance::new(
        "thing",
        name,
        "memory",
        json!({"kind": kind, "value": value}),
    );
    for d in deps {
        r = r.depends_on(&format!("thing.{d}"));
    }
    r
}

struct Setup {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
    provider: Arc<MemoryProvider>,
    providers: Arc<Providers>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::open(dir.path(), &default_path()).unwrap();
    let provider = Arc::new(MemoryProvider::default());
    let providers = Arc::new(Providers::new(vec![
        provider.clone() as Arc<dyn weir_provider_sdk::Provider>
    ]));
    Setup {
        _dir: dir,
        backend,
        provider,
        providers,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Setup {
    fn plan_with(&self, desired: &[ResourceInstance], opts: PlanOptions) -> Plan {
        let state = self.backend.read_unlocked().unwrap();
        let input = PlanInput {
            desired: desired.to_vec(),
            outputs: &[],
            prior: state.as_ref(),
            // What `weir plan` records: the fingerprint keyed with the state's key.
            config_hash: state
                .as_ref()
                .map_or("hash".into(), |s| config_digest(&s.key, "hash")),
            git_commit: None,
        };
        rt().block_on(plan(input, &self.providers, &opts)).unwrap()
    }

    fn plan(&self, desired: &[ResourceInstance]) -> Plan {
        self.plan_with(desired, PlanOptions::default())
    }

    fn apply(&self, plan: &Plan) -> weir::apply::ApplyOutcome {
        let mut lock = self.backend.lock("apply", Duration::ZERO).unwrap();
        let mut state = lock.read().unwrap().unwrap_or_default();
        rt().block_on(apply(
            plan,
            self.providers.clone(),
            &mut lock,
            &mut state,
            &ApplyOptions::new(4),
            &Quiet,
        ))
    }

    fn state(&self) -> State {
        self.backend.read_unlocked().unwrap().unwrap()
    }
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes
        .iter()
        .map(|c| (c.address.clone(), c.action))
        .collect()
}

#[test]
fn create_then_no_changes() {
    let s = setup();
    let desired = vec![thing("a", "k", "1", &[]), thing("b", "k", "2", &["a"])];
    let p = s.plan(&desired);
    assert_eq!(p.summary().add, 2);
    assert!(
        p.change("thing.a")
            .unwrap()
            .after_unknown
            .contains(&vec!["id".to_string()])
    );
    let outcome = s.apply(&p);
    assert!(outcome.success(), "{outcome:?}");
    assert!(s.provider.position("create thing.a") < s.provider.position("create thing.b"));
    let state = s.state();
    assert_eq!(state.serial, 1);
    assert_eq!(state.resources["thing.b"].dependencies, vec!["thing.a"]);
    assert_eq!(state.resources["thing.a"].attributes["id"], "id-thing.a");

    let again = s.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));
    // A no-op apply writes nothing: the serial stays.
    s.apply(&again);
    assert_eq!(s.state().serial, 1);
}

#[test]
fn update_replace_and_delete_in_the_right_order() {
    let s = setup();
    s.apply(&s.plan(&[
        thing("a", "k", "1", &[]),
        thing("b", "k", "1", &["a"]),
        thing("c", "k", "1", &["b"]),
    ]));
    // a: value changes (update); b: kind changes (replace); c: removed (delete).
    let desired = vec![thing("a", "k", "2", &[]), thing("b", "other", "1", &["a"])];
    let p = s.plan(&desired);
    let a = p.change("thing.a").unwrap();
    assert_eq!(a.action, Action::Update);
    let b = p.change("thing.b").unwrap();
    assert_eq!(b.action, Action::Replace);
    assert_eq!(b.reason, Some(Reason::ReplaceBecauseCannotUpdate));
    assert_eq!(b.replace_paths, vec![vec!["kind".to_string()]]);
    let c = p.change("thing.c").unwrap();
    assert_eq!(c.action, Action::Delete);
    assert_eq!(c.reason, Some(Reason::DeleteBecauseNoResourceConfig));
    assert!(s.apply(&p).success());
    // c depended on b: it is deleted before b is replaced (deleted and created again).
    assert!(s.provider.position("delete thing.c") < s.provider.position("delete thing.b"));
    let calls = s.provider.calls();
    assert!(
        s.provider.position("update thing.a") < s.provider.position("create thing.b"),
        "{calls:?}"
    );
    // The id chosen at create is kept by an update, and a replaced object gets a new one.
    let state = s.state();
    assert_eq!(state.resources["thing.a"].attributes["id"], "id-thing.a");
    assert!(!state.resources.contains_key("thing.c"));
    assert!(!s.plan(&desired).has_changes());
}

#[test]
fn a_failure_skips_dependents_and_keeps_what_finished() {
    let s = setup();
    s.provider.fail.lock().unwrap().insert("thing.b".into());
    let desired = vec![
        thing("a", "k", "1", &[]),
        thing("b", "k", "1", &["a"]),
        thing("c", "k", "1", &["b"]),
        thing("independent", "k", "1", &[]),
    ];
    let outcome = s.apply(&s.plan(&desired));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(
        outcome.skipped,
        vec![("thing.c".to_string(), "thing.b".to_string())]
    );
    let state = s.state();
    assert!(state.resources.contains_key("thing.a"));
    assert!(state.resources.contains_key("thing.independent"));
    assert!(!state.resources.contains_key("thing.b"));
    // Once the cause is gone, a re-run completes only what is missing.
    s.provider.fail.lock().unwrap().clear();
    let p = s.plan(&desired);
    assert_eq!(p.summary().add, 2);
    assert!(s.apply(&p).success());
    assert!(!s.plan(&desired).has_changes());
}

#[test]
fn drift_is_reported_and_repaired() {
    let s = setup();
    let desired = vec![thing("a", "k", "1", &[]), thing("b", "k", "1", &[])];
    s.apply(&s.plan(&desired));
    s.provider
        .objects
        .lock()
        .unwrap()
        .get_mut("thing.a")
        .unwrap()["value"] = json!("changed by hand");
    s.provider.objects.lock().unwrap().remove("thing.b");
    let p = s.plan(&desired);
    assert_eq!(p.drift.len(), 2);
    assert_eq!(p.change("thing.a").unwrap().action, Action::Update);
    let b = p.change("thing.b").unwrap();
    assert_eq!(b.action, Action::Create);
    assert_eq!(b.reason, Some(Reason::CreateBecauseDeletedOutside));
    // Without refresh, weir trusts state and sees nothing.
    let quiet = s.plan_with(
        &desired,
        PlanOptions {
            refresh: false,
            ..Default::default()
        },
    );
    assert!(!quiet.has_changes() && quiet.drift.is_empty());
}

#[test]
fn target_and_replace() {
    let s = setup();
    let desired = vec![
        thing("a", "k", "1", &[]),
        thing("b", "k", "1", &["a"]),
        thing("c", "k", "1", &[]),
    ];
    let p = s.plan_with(
        &desired,
        PlanOptions {
            targets: vec!["thing.b".into()],
            ..Default::default()
        },
    );
    let mut addresses: Vec<String> = p.changes.iter().map(|c| c.address.clone()).collect();
    addresses.sort();
    assert_eq!(
        addresses,
        vec!["thing.a", "thing.b"],
        "a target brings its dependencies, nothing else"
    );
    s.apply(&s.plan(&desired));
    let p = s.plan_with(
        &desired,
        PlanOptions {
            replace: vec!["thing.c".into()],
            ..Default::default()
        },
    );
    let c = p.change("thing.c").unwrap();
    assert_eq!(
        (c.action, c.reason),
        (Action::Replace, Some(Reason::ReplaceByRequest))
    );
    let state = s.backend.read_unlocked().unwrap();
    let input = PlanInput {
        desired: desired.clone(),
        outputs: &[],
        prior: state.as_ref(),
        config_hash: String::new(),
        git_commit: None,
    };
    let bad = PlanOptions {
        targets: vec!["thing.nope".into()],
        ..Default::default()
    };
    let err = rt().block_on(plan(input, &s.providers, &bad)).unwrap_err();
    assert!(err[0].contains("thing.nope"), "{err:?}");
}

impl Setup {
    /// The state with its key, as `weir plan --out` makes sure there is one.
    fn keyed_state(&self) -> State {
        self.backend
            .lock("plan", Duration::ZERO)
            .unwrap()
            .read_keyed()
            .unwrap()
    }

    /// Saves `plan` (made with default options) and loads it back.
    fn save_and_load(&self, plan: &Plan) -> weir::plan::file::PlanFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.weir");
        let key = self.state().key;
        weir::plan::file::save(plan, &PlanOptions::default(), &key, &path).unwrap();
        weir::plan::file::load(&path).unwrap()
    }
}

#[test]
fn saved_plans_are_bound_to_the_state() {
    let s = setup();
    let desired = vec![thing("a", "k", "1", &[])];
    // No state yet: saving a plan makes an empty state (serial 0) that holds the key.
    let empty = s.keyed_state();
    assert_eq!(empty.serial, 0);
    let first = s.plan(&desired);
    assert_eq!(first.lineage.as_deref(), Some(empty.lineage.as_str()));
    let saved = s.save_and_load(&first);
    assert!(saved.check_fresh(Some(&s.state()), "hash").is_ok());
    assert!(
        saved
            .check_fresh(Some(&s.state()), "other")
            .unwrap_err()
            .contains("configuration")
    );
    assert!(
        saved
            .check_fresh(None, "hash")
            .unwrap_err()
            .contains("no longer exists")
    );
    s.apply(&first);
    // Applied once: the state moved on, so the same plan is refused.
    let err = saved.check_fresh(Some(&s.state()), "hash").unwrap_err();
    assert!(err.contains("stale"), "{err}");

    // A plan made at serial 1 is stale after another apply.
    let second = s.save_and_load(&s.plan(&[thing("a", "k", "2", &[])]));
    assert!(second.check_fresh(Some(&s.state()), "hash").is_ok());
    s.apply(&s.plan(&[thing("a", "k", "3", &[])]));
    let err = second.check_fresh(Some(&s.state()), "hash").unwrap_err();
    assert!(err.contains("stale"), "{err}");
    let mut other = s.state();
    other.lineage = "another".into();
    assert!(
        second
            .check_fresh(Some(&other), "hash")
            .unwrap_err()
            .contains("another state")
    );
    // A copy of the state with another key did not seal this plan.
    let third = s.save_and_load(&s.plan(&[thing("a", "k", "4", &[])]));
    let mut rekeyed = s.state();
    rekeyed.key = State::new().key;
    let err = third.check_fresh(Some(&rekeyed), "hash").unwrap_err();
    assert!(err.contains("seal"), "{err}");
}

#[test]
fn applying_a_saved_plan_requires_the_configuration_to_plan_the_same() {
    let s = setup();
    s.keyed_state();
    let desired = vec![thing("a", "k", "1", &[]), thing("b", "k", "2", &["a"])];
    let saved = s.save_and_load(&s.plan(&desired));
    let key = s.state().key;
    saved.check_same(&s.plan(&desired), &key).unwrap();

    // Another value, another resource, another dependency: each named by address and path.
    let err = saved
        .check_same(
            &s.plan(&[thing("a", "k", "9", &[]), thing("b", "k", "2", &["a"])]),
            &key,
        )
        .unwrap_err();
    assert!(err.contains("thing.a: `value` differs"), "{err}");
    let err = saved
        .check_same(
            &s.plan(&[
                thing("a", "k", "1", &[]),
                thing("b", "k", "2", &["a"]),
                thing("c", "k", "3", &[]),
            ]),
            &key,
        )
        .unwrap_err();
    assert!(err.contains("thing.c: not in the plan file"), "{err}");
    let err = saved
        .check_same(
            &s.plan(&[thing("a", "k", "1", &[]), thing("b", "k", "2", &[])]),
            &key,
        )
        .unwrap_err();
    assert!(err.contains("thing.b: its dependencies differ"), "{err}");
    let err = saved
        .check_same(
            &s.plan_with(
                &desired,
                PlanOptions {
                    destroy: true,
                    ..PlanOptions::default()
                },
            ),
            &key,
        )
        .unwrap_err();
    assert!(err.contains("destroy"), "{err}");
}

#[test]
fn saved_plans_hold_no_secret_and_no_unkeyed_digest_of_one() {
    let s = setup();
    s.keyed_state();
    let secret = "hooks.example.com/T000/SECRET-TOKEN";
    let desired = vec![thing("a", "k", secret, &[]).sensitive(&["value"])];
    let p = s.plan(&desired);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.weir");
    let key = s.state().key;
    weir::plan::file::save(&p, &PlanOptions::default(), &key, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(secret), "the saved plan leaks the secret");
    assert!(!text.contains("salt"), "no salt beside a hash: {text}");
    assert!(!text.contains(&key), "the state's key stays in the state");
    use sha2::Digest;
    for form in [secret.to_string(), format!("\"{secret}\"")] {
        let digest: String = sha2::Sha256::digest(form.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&digest), "an unkeyed digest of the secret");
    }
    let saved = weir::plan::file::load(&path).unwrap();
    saved.check_same(&s.plan(&desired), &key).unwrap();
    // A different secret at apply time is refused, naming where, never what.
    let other = "another secret value";
    let changed = vec![thing("a", "k", other, &[]).sensitive(&["value"])];
    let err = saved.check_same(&s.plan(&changed), &key).unwrap_err();
    assert!(
        err.contains("thing.a: the sensitive value `value` differs"),
        "{err}"
    );
    assert!(!err.contains(secret) && !err.contains(other), "{err}");
}

#[test]
fn a_crash_mid_apply_leaves_state_a_rerun_completes() {
    let s = setup();
    let desired: Vec<ResourceInstance> = (0..50)
        .map(|i| thing(&format!("t{i}"), "k", "1", &[]))
        .collect();
    // Simulate a crash: record a few operations in the journal and drop the lock without
    // persisting (what a killed process leaves).
    {
        let mut lock = s.backend.lock("apply", Duration::ZERO).unwrap();
        let p = s.plan(&desired);
        let mut state = State::new();
        for c in p.changes.iter().take(10) {
            let attributes = rt().block_on(
                s.provider
                    .create_for_test(&c.address, c.after.clone().unwrap()),
            );
            let record = weir::state::Recorded::Set {
                address: c.address.clone(),
                resource: weir::state::ResourceState::new("thing", "memory", attributes),
            };
            lock.record(record.clone()).unwrap();
            state.apply_change(&record);
        }
        drop(lock);
    }
    let state = s.backend.read_unlocked().unwrap().unwrap();
    assert_eq!(state.resources.len(), 10);
    let p = s.plan(&desired);
    assert_eq!(p.summary().add, 40, "only what was not done is planned");
    assert!(s.apply(&p).success());
    assert_eq!(s.provider.objects.lock().unwrap().len(), 50);
    assert!(!s.plan(&desired).has_changes());
}

trait CreateForTest {
    async fn create_for_test(
        &self,
        address: &str,
        attributes: serde_json::Value,
    ) -> serde_json::Value;
}

impl CreateForTest for MemoryProvider {
    async fn create_for_test(
        &self,
        address: &str,
        attributes: serde_json::Value,
    ) -> serde_json::Value {
        use weir_provider_sdk::Provider;
        self.create(
            &weir_provider_sdk::ResourceRef {
                address: address.into(),
                type_name: "thing".into(),
                attributes,
                sensitive_paths: Vec::new(),
            },
            &weir_provider_sdk::Cancel::new(),
        )
        .await
        .unwrap()
    }
}

#[test]
fn providers_are_configured_with_the_state_lineage_before_they_read() {
    let s = setup();
    let config = weir_provider_sdk::ProviderConfig {
        project: Some("acme-dev".into()),
        region: Some("europe-west1".into()),
        ..Default::default()
    };
    let providers = Arc::new(
        Providers::new(vec![
            s.provider.clone() as Arc<dyn weir_provider_sdk::Provider>
        ])
        .with_config(config.clone()),
    );
    let s = Setup { providers, ..s };
    let desired = vec![thing("a", "k", "1", &[])];
    s.apply(&s.plan(&desired));
    let lineage = s.state().lineage;
    s.plan(&desired);
    let configs = s.provider.configs.lock().unwrap().clone();
    let lineages: Vec<Option<&str>> = configs.iter().map(|c| c.state_lineage.as_deref()).collect();
    // The first plan has no state; apply and the next plan work for the state's lineage.
    assert_eq!(
        lineages,
        [None, Some(lineage.as_str()), Some(lineage.as_str())]
    );
    assert!(
        configs
            .iter()
            .all(|c| c.project == config.project && c.region == config.region)
    );
    // The second plan configures, then reads.
    let calls = s.provider.calls();
    assert!(
        calls.ends_with(&["configure".into(), "read".into()]),
        "{calls:?}"
    );
}

#[test]
fn a_create_that_fails_after_the_object_exists_records_it_and_the_rerun_adopts_it() {
    let s = setup();
    s.provider
        .fail_after_create
        .lock()
        .unwrap()
        .insert("thing.a".into());
    let desired = vec![thing("a", "k", "1", &[]), thing("b", "k", "1", &["a"])];
    let outcome = s.apply(&s.plan(&desired));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 1);
    assert!(
        outcome.failed[0].2.contains("state records it"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.skipped,
        [("thing.b".to_string(), "thing.a".to_string())]
    );
    // The half-made object is in state, with what only the create could know.
    let recorded = &s.state().resources["thing.a"];
    assert_eq!(recorded.attributes["id"], "id-thing.a");
    assert_eq!(recorded.attributes["value"], serde_json::Value::Null);
    // The next run updates it (a second create would be refused as a conflict).
    s.provider.fail_after_create.lock().unwrap().clear();
    let p = s.plan(&desired);
    assert_eq!(
        actions(&p),
        [
            ("thing.a".to_string(), Action::Update),
            ("thing.b".to_string(), Action::Create)
        ]
    );
    let outcome = s.apply(&p);
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(
        s.provider
            .calls()
            .iter()
            .filter(|c| *c == "create thing.a")
            .count(),
        1
    );
    assert!(!s.plan(&desired).has_changes());
}

#[test]
fn a_stop_cancels_waiting_operations_and_records_what_exists() {
    let s = setup();
    s.provider.hang.lock().unwrap().insert("thing.slow".into());
    let desired = vec![
        thing("slow", "k", "1", &[]),
        thing("after_slow", "k", "1", &["slow"]),
        thing("quick", "k", "1", &[]),
    ];
    let p = s.plan(&desired);
    let opts = ApplyOptions::new(4);
    let stop = opts.stop.clone();
    let mut lock = s.backend.lock("apply", Duration::ZERO).unwrap();
    let mut state = lock.read().unwrap().unwrap_or_default();
    let provider = s.provider.clone();
    let outcome = rt().block_on(async {
        let applying = apply(
            &p,
            s.providers.clone(),
            &mut lock,
            &mut state,
            &opts,
            &Quiet,
        );
        let stopping = async {
            // Stop once the slow create is waiting and the quick one is done.
            while !(provider.calls().contains(&"create thing.slow".to_string())
                && provider.objects.lock().unwrap().contains_key("thing.quick"))
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.cancel();
        };
        let (outcome, ()) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(applying, stopping)
        })
        .await
        .expect("apply stopped waiting when told to stop");
        outcome
    });
    drop(lock);
    assert!(outcome.interrupted);
    assert!(
        outcome
            .failed
            .iter()
            .any(|(a, _, e)| a == "thing.slow" && e.contains("stopped waiting")),
        "{outcome:?}"
    );
    let state = s.state();
    assert_eq!(
        state.resources["thing.slow"].attributes["id"],
        "id-thing.slow"
    );
    assert!(state.resources.contains_key("thing.quick"));
    assert!(!state.resources.contains_key("thing.after_slow"));
    // The next run goes on from what was recorded: no second create of the slow object.
    s.provider.hang.lock().unwrap().clear();
    let p = s.plan(&desired);
    let changes: Vec<_> = actions(&p)
        .into_iter()
        .filter(|(_, a)| a.is_change())
        .collect();
    assert_eq!(changes, [("thing.after_slow".to_string(), Action::Create)]);
    assert!(s.apply(&p).success());
    assert!(!s.plan(&desired).has_changes());
}

#[test]
fn outputs_of_values_known_after_apply_are_recorded_from_what_create_returned() {
    let s = setup();
    let desired = vec![thing("web", "k", "1", &[])];
    let outputs = [weir::model::Output {
        name: "webserver_url".into(),
        value: serde_json::Value::Null,
        description: String::new(),
        sensitive: false,
        unknown: true,
        from: Some(weir::model::OutputSource {
            address: "thing.web".into(),
            path: vec!["url".into()],
        }),
    }];
    let plan_outputs = |desired: &[ResourceInstance]| {
        let state = s.backend.read_unlocked().unwrap();
        let input = PlanInput {
            desired: desired.to_vec(),
            outputs: &outputs,
            prior: state.as_ref(),
            config_hash: state
                .as_ref()
                .map_or("hash".into(), |s| config_digest(&s.key, "hash")),
            git_commit: None,
        };
        rt().block_on(plan(input, &s.providers, &PlanOptions::default()))
            .unwrap()
    };
    let first = plan_outputs(&desired);
    assert!(first.outputs[0].unknown && first.outputs[0].after.is_none());
    let text = weir::render::text::render_text(&first, false);
    assert!(
        text.contains("webserver_url = (known after apply)"),
        "{text}"
    );
    assert!(s.apply(&first).success());
    // The URL the create returned is in state, and the output shows it.
    let state = s.state();
    assert_eq!(
        state.resources["thing.web"].attributes["url"],
        "https://thing.web.example"
    );
    assert_eq!(
        state.outputs["webserver_url"].value,
        "https://thing.web.example"
    );
    // Known from state from now on: nothing to do.
    let again = plan_outputs(&desired);
    assert!(!again.has_changes(), "{:?}", again.outputs);
    assert_eq!(
        again.outputs[0].after,
        Some(json!("https://thing.web.example"))
    );
    // A replacement makes it unknown again.
    let replaced = plan_outputs(&[thing("web", "other", "1", &[])]);
    assert!(replaced.outputs[0].unknown);
}

fn protected(mut r: ResourceInstance) -> ResourceInstance {
    r.prevent_destroy = true;
    r
}

/// The planner's errors for `desired` against the state, as one text.
fn plan_error(s: &Setup, desired: &[ResourceInstance], opts: PlanOptions) -> String {
    let state = s.backend.read_unlocked().unwrap();
    let input = PlanInput {
        desired: desired.to_vec(),
        outputs: &[],
        prior: state.as_ref(),
        config_hash: "hash".into(),
        git_commit: None,
    };
    match rt().block_on(plan(input, &s.providers, &opts)) {
        Ok(p) => panic!("the plan should fail: {:?}", actions(&p)),
        Err(errors) => errors.join("\n"),
    }
}

#[test]
fn apply_records_prevent_destroy_in_state() {
    let s = setup();
    s.apply(&s.plan(&[
        protected(thing("a", "k", "1", &[])),
        thing("b", "k", "1", &[]),
    ]));
    let state = s.state();
    assert_eq!(state.resources["thing.a"].private["prevent_destroy"], true);
    assert!(
        state.resources["thing.b"]
            .private
            .get("prevent_destroy")
            .is_none()
    );
}

#[test]
fn destroy_keeps_protected_resources_and_what_they_depend_on_and_says_so() {
    let s = setup();
    let desired = vec![
        thing("base", "k", "1", &[]),
        protected(thing("a", "k", "1", &["base"])),
        protected(thing("b", "k", "1", &[])),
        thing("c", "k", "1", &["a"]),
    ];
    s.apply(&s.plan(&desired));
    let destroy = PlanOptions {
        destroy: true,
        ..PlanOptions::default()
    };
    let plan = s.plan_with(&desired, destroy);
    let deleted: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.address.as_str())
        .collect();
    // `c` needs `a`, not the other way round: it goes; `base` is what `a` needs: it stays.
    assert_eq!(deleted, vec!["thing.c"]);
    let note = plan.notes.iter().find(|n| n.contains("kept")).unwrap();
    assert!(
        note.contains(
            "kept, protected by `lifecycle { prevent_destroy = true }`: thing.a, thing.b"
        ),
        "{note}"
    );
    assert!(
        note.contains("kept because they need them: thing.base"),
        "{note}"
    );
    assert!(note.contains("prevent_destroy = false"), "{note}");
    s.apply(&plan);
    let calls = s.provider.calls();
    let deletes: Vec<&String> = calls.iter().filter(|c| c.starts_with("delete")).collect();
    assert_eq!(deletes, vec!["delete thing.c"], "{calls:?}");
}

#[test]
fn what_lives_inside_a_replaced_resource_is_replaced_with_it() {
    let s = setup();
    let part = |name: &str, value: &str, deps: &[&str]| {
        let mut r = ResourceInstance::new("part", name, "memory", json!({"value": value}));
        for d in deps {
            r = r.depends_on(d);
        }
        r
    };
    let desired = vec![
        thing("a", "k", "1", &[]),
        thing("b", "k", "1", &[]),
        part("inside", "1", &["thing.a"]),
        part("beside", "1", &["thing.b"]),
        part("deeper", "1", &["part.inside", "thing.a"]),
    ];
    s.apply(&s.plan(&desired));
    // `thing.a` gets a new kind: a new object, and what lives in it with it.
    let mut changed = desired.clone();
    changed[0] = thing("a", "other", "1", &[]);
    let plan = s.plan(&changed);
    let action = |a: &str| plan.change(a).unwrap().action;
    assert_eq!(action("thing.a"), Action::Replace);
    assert_eq!(action("part.inside"), Action::Replace);
    assert_eq!(action("part.deeper"), Action::Replace);
    assert_eq!(action("part.beside"), Action::NoOp);
    assert_eq!(action("thing.b"), Action::NoOp);
    let inside = plan.change("part.inside").unwrap();
    assert_eq!(inside.reason, Some(Reason::ReplaceByTriggers));
    assert!(
        inside
            .notes
            .iter()
            .any(|n| n.contains("replaced with thing.a")),
        "{:?}",
        inside.notes
    );
    s.apply(&plan);
    assert!(!s.plan(&changed).has_changes());
}

#[test]
fn replacing_a_protected_resource_is_refused() {
    let s = setup();
    s.apply(&s.plan(&[protected(thing("a", "k", "1", &[]))]));
    let error = plan_error(
        &s,
        &[protected(thing("a", "other", "1", &[]))],
        PlanOptions::default(),
    );
    assert!(error.contains("thing.a would be replaced"), "{error}");
    assert!(error.contains("prevent_destroy = false"), "{error}");
    assert!(error.contains("weir apply"), "{error}");
    // An update in place destroys nothing.
    let p = s.plan(&[protected(thing("a", "k", "2", &[]))]);
    assert_eq!(p.change("thing.a").unwrap().action, Action::Update);
}

#[test]
fn removing_a_protected_resource_from_the_configuration_is_refused() {
    let s = setup();
    s.apply(&s.plan(&[
        protected(thing("a", "k", "1", &[])),
        thing("b", "k", "1", &[]),
    ]));
    // Its configuration is gone: what state recorded protects it.
    let error = plan_error(&s, &[thing("b", "k", "1", &[])], PlanOptions::default());
    assert!(error.contains("thing.a would be destroyed"), "{error}");
    assert!(error.contains("prevent_destroy = false"), "{error}");
}

#[test]
fn prevent_destroy_set_to_false_is_recorded_by_apply_then_removal_and_destroy_work() {
    let s = setup();
    s.apply(&s.plan(&[
        protected(thing("a", "k", "1", &[])),
        thing("b", "k", "1", &[]),
    ]));
    let serial = s.state().serial;
    // Only the lifecycle changes: the plan says so, and apply records it in state only.
    let unprotected = vec![thing("a", "k", "1", &[]), thing("b", "k", "1", &[])];
    let p = s.plan(&unprotected);
    assert!(p.has_changes());
    let a = p.change("thing.a").unwrap();
    assert_eq!(a.action, Action::NoOp);
    assert!(a.lifecycle_changed);
    assert!(!p.change("thing.b").unwrap().lifecycle_changed);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("thing.a") && n.contains("prevent_destroy")),
        "{:?}",
        p.notes
    );
    assert!(s.apply(&p).success());
    let state = s.state();
    assert!(state.serial > serial);
    assert!(
        state.resources["thing.a"]
            .private
            .get("prevent_destroy")
            .is_none()
    );
    assert!(s.provider.calls().iter().all(|c| !c.starts_with("update")));
    assert!(!s.plan(&unprotected).has_changes());
    // Now its removal from the configuration, then destroy, go through.
    let p = s.plan(&[thing("b", "k", "1", &[])]);
    assert_eq!(p.change("thing.a").unwrap().action, Action::Delete);
    assert!(s.apply(&p).success());
    let p = s.plan_with(
        &[thing("b", "k", "1", &[])],
        PlanOptions {
            destroy: true,
            ..PlanOptions::default()
        },
    );
    assert!(s.apply(&p).success());
    assert!(s.state().resources.is_empty());
}

fn server(location: &str, tier: &str, size: &str, networks: &[&str]) -> ResourceInstance {
    let interfaces: Vec<_> = networks
        .iter()
        .map(|n| json!({"network": n, "name": format!("nic-{n}")}))
        .collect();
    ResourceInstance::new(
        "server",
        "s",
        "memory",
        json!({
            "location": location,
            "settings": {"tier": tier, "size": size},
            "interfaces": interfaces,
        }),
    )
}

#[test]
fn a_change_under_a_nested_force_new_path_is_a_replace_naming_that_path() {
    let s = setup();
    s.apply(&s.plan(&[server("eu", "small", "10", &["default"])]));
    let p = s.plan(&[server("eu", "large", "10", &["default"])]);
    let c = p.change("server.s").unwrap();
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.reason, Some(Reason::ReplaceBecauseCannotUpdate));
    assert_eq!(c.replace_paths, vec![vec!["settings", "tier"]]);
    let text = weir::render::render(&p, weir::render::Format::Text, false);
    let tier = text.lines().find(|l| l.contains("tier")).unwrap();
    assert!(tier.contains("# forces replacement"), "{text}");
    // A `*` segment matches every index.
    let p = s.plan(&[server("eu", "small", "10", &["other"])]);
    let c = p.change("server.s").unwrap();
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.replace_paths, vec![vec!["interfaces", "0", "network"]]);
    // The JSON plan shows the nested path.
    let json = weir::render::json::render_json(&p);
    let change = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "server.s")
        .unwrap();
    assert_eq!(
        change["change"]["replace_paths"],
        json!([["interfaces", 0, "network"]])
    );
}

#[test]
fn a_change_elsewhere_in_an_object_with_a_nested_force_new_path_is_an_update() {
    let s = setup();
    s.apply(&s.plan(&[server("eu", "small", "10", &["default"])]));
    let p = s.plan(&[server("eu", "small", "20", &["default"])]);
    let c = p.change("server.s").unwrap();
    assert_eq!(c.action, Action::Update);
    assert!(c.replace_paths.is_empty());
    // So is a change beside the force-new key inside a list element.
    let mut renamed = server("eu", "small", "10", &["default"]);
    renamed.attributes["interfaces"][0]["name"] = json!("eth0");
    let p = s.plan(&[renamed]);
    assert_eq!(p.change("server.s").unwrap().action, Action::Update);
}
