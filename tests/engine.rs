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
            &ApplyOptions { parallelism: 4 },
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
        self.create(&weir_provider_sdk::ResourceRef {
            address: address.into(),
            type_name: "thing".into(),
            attributes,
            sensitive_paths: Vec::new(),
        })
        .await
        .unwrap()
    }
}
