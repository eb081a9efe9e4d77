//! The quickstart's web server (a Cloud Run v2 service) and the APIs it enables (Service Usage),
//! applied against the sandbox. The service's desired value references no other resource's
//! computed attribute (its service account e-mail and Cloud SQL connection name derive from
//! the deployment's names), so it is applied alone, without its dependencies.

use super::*;
use weir::model::Output;

const SERVICE: &str = "google_cloud_run_v2_service";
const WEB: &str = "google_cloud_run_v2_service.webserver";
const API: &str = "google_project_service";

/// The web server lowered from the configuration in `dir`, for `endpoint`.
fn web(dir: &Path, endpoint: &str) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (web, config) = lowered(dir, &[("WEIR_GOOGLE_ENDPOINT", endpoint)], &[SERVICE]);
    assert_eq!(web.len(), 1, "the quickstart has one web server");
    assert_eq!(web[0].address, WEB);
    (web, config)
}

/// The configuration's outputs that come from the web server, as lowering points them.
fn web_outputs(dir: &Path) -> Vec<Output> {
    let (model, diags) = weir::model::load(&weir::config::LoadOptions::new(dir));
    let mut model = model.unwrap_or_else(|| panic!("{diags:?}"));
    weir::lower::lower(&mut model).unwrap_or_else(|d| panic!("{d:?}"));
    let outputs: Vec<Output> = model
        .outputs
        .into_iter()
        .filter(|o| o.from.as_ref().is_some_and(|f| f.address == WEB))
        .collect();
    assert_eq!(
        outputs.len(),
        1,
        "the quickstart shows the web server's URL"
    );
    outputs
}

fn attributes(engine: &Engine, address: &str) -> serde_json::Value {
    engine.state().resources[address].attributes.clone()
}

#[test]
fn the_web_server_is_created_with_its_url_recorded_and_shown_updated_in_place_replaced_and_deleted()
{
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = web(&dir, &sandbox.url());
    let outputs = web_outputs(&dir);
    let engine = Engine::new(config);

    let first = engine.try_plan(&desired, &outputs).unwrap();
    assert_eq!(actions(&first), vec![(WEB.to_owned(), Action::Create)]);
    let outcome = engine.apply(&first);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let web = attributes(&engine, WEB);
    let name = web["name"].as_str().unwrap().to_owned();
    let uri = web["uri"].as_str().unwrap_or_else(|| panic!("{web}"));
    assert!(
        uri.starts_with(&format!("https://{name}-")) && uri.ends_with("-uc.a.run.app"),
        "{uri}"
    );
    for output_only in ["uid", "etag", "latestReadyRevision"] {
        assert!(web[output_only].is_string(), "{output_only}: {web}");
    }
    assert_eq!(web["generation"], json!("1"));
    // The URL is what the deployment's output shows.
    let shown = &engine.state().outputs[&outputs[0].name];
    assert_eq!(shown.value, json!(uri));

    // Right after apply, nothing to change, though the API filled in defaults and left out
    // the zero minimum of instances.
    let again = engine.try_plan(&desired, &outputs).unwrap();
    assert!(!again.has_changes(), "{:?}", actions(&again));

    // More memory and one warm instance: an update in place, a new revision.
    let mut bigger = desired.clone();
    bigger[0].attributes["template"]["scaling"]["minInstanceCount"] = json!(1);
    bigger[0].attributes["template"]["containers"][0]["resources"]["limits"]["memory"] =
        json!("4096Mi");
    let update = engine.try_plan(&bigger, &outputs).unwrap();
    assert_eq!(actions(&update), vec![(WEB.to_owned(), Action::Update)]);
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let updated = attributes(&engine, WEB);
    assert_eq!(updated["generation"], json!("2"));
    assert_eq!(updated["uri"], json!(uri), "the URL stays");
    assert_ne!(updated["latestReadyRevision"], web["latestReadyRevision"]);
    assert_eq!(
        updated.pointer("/template/containers/0/resources/limits/memory"),
        Some(&json!("4Gi"))
    );
    assert!(!engine.try_plan(&bigger, &outputs).unwrap().has_changes());

    // Another name, or another region: a new service.
    let mut renamed = bigger.clone();
    renamed[0].attributes["name"] = json!(format!("{name}-2"));
    let replace = engine.try_plan(&renamed, &outputs).unwrap();
    assert_eq!(actions(&replace), vec![(WEB.to_owned(), Action::Replace)]);
    let mut moved = bigger.clone();
    moved[0].attributes["location"] = json!("europe-west1");
    let replace = engine.try_plan(&moved, &outputs).unwrap();
    assert_eq!(actions(&replace), vec![(WEB.to_owned(), Action::Replace)]);
    let outcome = engine.apply(&replace);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let moved_uri = attributes(&engine, WEB)["uri"].as_str().unwrap().to_owned();
    assert!(moved_uri.ends_with("-ew.a.run.app"), "{moved_uri}");
    assert_eq!(
        engine.state().outputs[&outputs[0].name].value,
        json!(moved_uri)
    );
    assert!(!engine.try_plan(&moved, &outputs).unwrap().has_changes());

    // No web server: deleted.
    let delete = engine.plan(&[]);
    assert_eq!(actions(&delete), vec![(WEB.to_owned(), Action::Delete)]);
    assert!(engine.apply(&delete).success());
    assert!(engine.state().resources.is_empty());

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    let services = |method: &str| {
        exchanges
            .iter()
            .filter(|e| e.method == method && e.status == 200 && e.path.contains("/services"))
            .count()
    };
    // Created twice (first, then in the new region), patched once, deleted twice (the old
    // region's on replace, then the last).
    assert_eq!(
        (services("POST"), services("PATCH"), services("DELETE")),
        (2, 1, 2)
    );
    assert_record_valid(&file);
}

#[test]
fn a_web_server_left_by_a_lost_state_is_adopted_a_stale_etag_is_read_again_and_a_strangers_is_a_conflict()
 {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = web(&dir, &sandbox.url());

    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());
    let uid = attributes(&first, WEB)["uid"].clone();
    // The state is lost: the service weir made for this deployment is adopted.
    let second = Engine::new(config.clone());
    let outcome = second.apply(&second.plan(&desired));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(attributes(&second, WEB)["uid"], uid, "the same service");
    assert!(!second.plan(&desired).has_changes());

    // The adoption changed the etag: the first state's update is refused once (412), reads
    // the service again and goes through.
    let mut warm = desired.clone();
    warm[0].attributes["template"]["scaling"]["minInstanceCount"] = json!(1);
    first.converge(&warm, "");
    let refused = count(&file, |e| e.method == "PATCH" && e.status == 412);
    assert_eq!(refused, 1);

    // Another deployment's service of the same name is not taken over.
    let mut theirs = desired.clone();
    theirs[0].attributes["name"] = json!("someone-elses-web");
    theirs[0].attributes["labels"]["weir-deployment"] = json!("someone-else");
    let other = Engine::new(config.clone());
    assert!(other.apply(&other.plan(&theirs)).success());
    let mut ours = theirs.clone();
    ours[0].attributes["labels"] = desired[0].attributes["labels"].clone();
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&ours));
    assert!(!outcome.success());
    let (address, _, message) = &outcome.failed[0];
    assert_eq!(address, WEB);
    assert!(
        message.contains("the Cloud Run service")
            && message.contains("already exists and weir did not create it"),
        "{message}"
    );
    let state = third.backend.read_unlocked().unwrap();
    assert!(state.as_ref().is_none_or(|s| s.resources.is_empty()));
}

#[test]
fn a_web_server_whose_operation_fails_is_a_failure_with_the_service_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    // The service's name derives from the deployment: learn it with any endpoint.
    let (desired, _) = web(&dir, "http://127.0.0.1:9");
    let failing = desired[0].attributes["name"].as_str().unwrap().to_owned();
    let sandbox = start(
        None,
        Behaviour {
            operation_delay: Duration::from_millis(300),
            failing_jobs: HashSet::from([failing]),
            ..Behaviour::default()
        },
    );
    let (desired, config) = web(&dir, &sandbox.url());
    let engine = Engine::new(config);
    let outcome = engine.apply(&engine.plan(&desired));
    assert!(!outcome.success());
    let (address, action, message) = &outcome.failed[0];
    assert_eq!((address.as_str(), *action), (WEB, Action::Create));
    assert!(message.contains("failed to become ready"), "{message}");
    // What exists is recorded (it has a URL but no ready revision), so the next run updates
    // it instead of creating it again.
    let recorded = attributes(&engine, WEB);
    assert!(recorded["uid"].is_string(), "{recorded}");
    assert!(recorded["uri"].is_string(), "{recorded}");
    assert!(recorded.get("latestReadyRevision").is_none(), "{recorded}");
    let next = engine.plan(&desired);
    assert_eq!(actions(&next), vec![(WEB.to_owned(), Action::Update)]);
    let outcome = engine.apply(&next);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(attributes(&engine, WEB)["latestReadyRevision"].is_string());
    assert!(!engine.plan(&desired).has_changes());
}

#[test]
fn the_apis_are_enabled_unchanged_on_replan_and_left_enabled_when_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(
        Some(file.clone()),
        Behaviour {
            operation_delay: Duration::from_millis(200),
            ..Behaviour::default()
        },
    );
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = lowered(&dir, &[("WEIR_GOOGLE_ENDPOINT", &sandbox.url())], &[API]);
    let project = config.project.clone().unwrap();
    assert!(desired.len() >= 5, "{desired:?}");
    let run = format!("{API}.run");
    assert!(desired.iter().any(|i| i.address == run));
    let engine = Engine::new(config.clone());
    let host = "serviceusage.googleapis.com";
    let state_of = |api: &str| {
        get(
            &sandbox,
            host,
            &format!("/v1/projects/{project}/services/{api}"),
        )["state"]
            .clone()
    };
    assert_eq!(state_of("run.googleapis.com"), json!("DISABLED"));

    let first = engine.plan(&desired);
    assert_eq!(actions(&first).len(), desired.len());
    assert!(actions(&first).iter().all(|(_, a)| *a == Action::Create));
    let outcome = engine.apply(&first);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(state_of("run.googleapis.com"), json!("ENABLED"));
    assert_eq!(
        attributes(&engine, &run),
        json!({"project": project, "service": "run.googleapis.com"})
    );
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));

    // A lost state enables them again: enabling an enabled API is a no-op.
    let second = Engine::new(config);
    second.converge(&desired, "");

    // Removing one from the configuration forgets it, leaves it enabled, and the plan says so.
    let fewer: Vec<ResourceInstance> = desired
        .iter()
        .filter(|i| i.address != run)
        .cloned()
        .collect();
    let delete = engine.plan(&fewer);
    assert_eq!(actions(&delete), vec![(run.clone(), Action::Delete)]);
    let change = delete.changes.iter().find(|c| c.address == run).unwrap();
    assert!(
        change.notes.iter().any(|n| n.contains("stays enabled")),
        "{:?}",
        change.notes
    );
    let outcome = engine.apply(&delete);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!engine.state().resources.contains_key(&run));
    assert!(!engine.plan(&fewer).has_changes());
    assert_eq!(state_of("run.googleapis.com"), json!("ENABLED"));

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    assert!(
        !exchanges.iter().any(|e| e.path.ends_with(":disable")),
        "weir disabled an API"
    );
    assert!(
        exchanges
            .iter()
            .any(|e| e.path.starts_with("/v1/operations/") && e.status == 200),
        "no operation was polled"
    );
    assert_record_valid(&file);
}

#[test]
fn with_a_fifth_of_calls_throttled_or_failing_the_web_server_and_the_apis_still_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    for seed in 1..=2 {
        let file = tmp.path().join(format!("record-{seed}.jsonl"));
        let sandbox = start(
            Some(file.clone()),
            Behaviour {
                unavailable_rate: 0.2,
                operation_delay: Duration::from_millis(50),
                seed,
                ..Behaviour::default()
            },
        );
        let (desired, config) = lowered(
            &dir,
            &[("WEIR_GOOGLE_ENDPOINT", &sandbox.url())],
            &[SERVICE, API],
        );
        let engine = Engine::new(config);
        engine.converge(&desired, &format!("seed {seed}"));
        drop(sandbox);
        // Which calls get the faults depends on the order the concurrent calls arrive in:
        // over the whole apply (some 30 calls), at least one.
        assert!(
            count(&file, is_fault) > 0,
            "seed {seed}: no fault was injected"
        );
        assert_record_valid(&file);
    }
}
