//! The quickstart's Cloud SQL instance, database and user, applied through the Google provider
//! against the sandbox, with the database password's Secret Manager secret and version (the
//! user takes its password from there) applied first through the existing Secret Manager
//! support. The other secrets of the quickstart are left out.

use super::*;
use weir_sandbox::sql::SqlPasswords;

const INSTANCE: &str = "google_sql_database_instance";
const DATABASE: &str = "google_sql_database";
const USER: &str = "google_sql_user";
const SQL_HOST: &str = "sqladmin.googleapis.com";

/// The quickstart in `tmp`, with `lifecycle { prevent_destroy }` as `protected` says.
fn quickstart_protected(tmp: &Path, protected: bool) -> PathBuf {
    let dir = quickstart(tmp, |t| t);
    let main = dir.join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    assert!(
        text.contains("prevent_destroy = true"),
        "the quickstart changed"
    );
    let text = text.replace(
        "prevent_destroy = true",
        &format!("prevent_destroy = {protected}"),
    );
    std::fs::write(&main, text).unwrap();
    dir
}

/// The Cloud SQL instance, database and user lowered from `dir`, and the database password's
/// secret and version, for `endpoint`.
fn database(
    dir: &Path,
    endpoint: &str,
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (mut desired, config) = lowered(
        dir,
        &[("WEIR_GOOGLE_ENDPOINT", endpoint)],
        &[INSTANCE, DATABASE, USER, SECRET, SECRET_VERSION],
    );
    desired.retain(|i| i.type_name.starts_with("google_sql") || i.name == "db_password");
    assert_eq!(desired.len(), 5, "{:?}", addresses(&desired));
    (desired, config)
}

fn addresses(instances: &[ResourceInstance]) -> Vec<String> {
    instances.iter().map(|i| i.address.clone()).collect()
}

fn find<'a>(instances: &'a mut [ResourceInstance], type_name: &str) -> &'a mut ResourceInstance {
    instances
        .iter_mut()
        .find(|i| i.type_name == type_name)
        .unwrap()
}

/// A sandbox, and the view of the passwords it gave Cloud SQL users.
fn start_sql(record: Option<PathBuf>, behaviour: Behaviour) -> (Running, SqlPasswords) {
    let mut sandbox = Sandbox::new(catalog()).behaviour(behaviour);
    sandbox.record = record;
    let passwords = sandbox.sql_passwords();
    (
        sandbox.spawn("127.0.0.1:0".parse().unwrap()).unwrap(),
        passwords,
    )
}

#[test]
fn quickstart_database_is_created_unchanged_on_replan_resized_in_place_and_deleted_its_password_only_in_cloud_sql()
 {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let (sandbox, passwords) = start_sql(Some(file.clone()), Behaviour::default());
    let dir = quickstart_protected(tmp.path(), false);
    let (mut desired, config) = database(&dir, &sandbox.url());
    let project = config.project.clone().unwrap();
    let engine = Engine::new(config);
    let instance_name = find(&mut desired, INSTANCE).attributes["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_name = find(&mut desired, USER).attributes["name"]
        .as_str()
        .unwrap()
        .to_owned();

    engine.create_all(&desired);
    let state = engine.state();
    let instance = &state.resources[&format!("{INSTANCE}.prod")].attributes;
    assert_eq!(
        instance["connectionName"],
        json!(format!("{project}:us-central1:{instance_name}"))
    );
    assert_eq!(instance["state"], json!("RUNNABLE"));
    assert_eq!(instance["settings"]["settingsVersion"], json!("1"));
    assert!(
        instance["ipAddresses"][0]["ipAddress"].is_string(),
        "{instance}"
    );
    assert!(instance["serviceAccountEmailAddress"].is_string());
    let user = &state.resources[&format!("{USER}.{user_name}")].attributes;
    assert!(user["passwordSecret"].is_string(), "{user}");

    // Right after apply, nothing to change.
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));

    // The user's password is the generated one, read from Secret Manager.
    let secret = state.resources[&format!("{SECRET}.db_password")].attributes["secretId"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(
        &sandbox,
        "secretmanager.googleapis.com",
        &format!("/v1/projects/{project}/secrets/{secret}/versions/latest:access"),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let generated = String::from_utf8(
        b64.decode(answer["payload"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let password = passwords
        .get(&project, &instance_name, &user_name)
        .expect("the user reached Cloud SQL");
    assert_eq!(password.len(), 32);
    assert_eq!(password, generated);

    // A bigger tier: the instance is patched in place, nothing else changes.
    let mut bigger = desired.clone();
    find(&mut bigger, INSTANCE).attributes["settings"]["tier"] = json!("db-g1-small");
    let update = engine.plan(&bigger);
    assert_eq!(
        actions(&update),
        vec![(format!("{INSTANCE}.prod"), Action::Update)]
    );
    let plan_json = serde_json::to_string(&update).unwrap();
    let saved = tmp.path().join("plan.json");
    weir::plan::file::save(&update, &PlanOptions::default(), &state.key, &saved).unwrap();
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let instance = &engine.state().resources[&format!("{INSTANCE}.prod")].attributes;
    assert_eq!(instance["settings"]["tier"], json!("db-g1-small"));
    assert_eq!(instance["settings"]["settingsVersion"], json!("2"));
    let live = get(
        &sandbox,
        SQL_HOST,
        &format!("/v1/projects/{project}/instances/{instance_name}"),
    );
    assert_eq!(live["settings"]["tier"], json!("db-g1-small"));
    assert!(!engine.plan(&bigger).has_changes());

    // A region change replaces the instance (prevent_destroy is off here).
    let mut moved = bigger.clone();
    find(&mut moved, INSTANCE).attributes["region"] = json!("us-east1");
    let replace = engine.plan(&moved);
    assert!(
        actions(&replace).contains(&(format!("{INSTANCE}.prod"), Action::Replace)),
        "{:?}",
        actions(&replace)
    );

    // Everything removed: user, database, instance deleted, in that order.
    let state_text = serde_json::to_string(&engine.state()).unwrap();
    let delete = engine.plan(&[]);
    assert_eq!(actions(&delete).len(), 5, "{:?}", actions(&delete));
    let outcome = engine.apply(&delete);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(engine.state().resources.is_empty());
    assert!(
        passwords
            .get(&project, &instance_name, &user_name)
            .is_none()
    );

    drop(sandbox);
    let record_text = std::fs::read_to_string(&file).unwrap();
    let saved_text = std::fs::read_to_string(&saved).unwrap();
    for (what, text) in [
        ("the record", &record_text),
        ("the state", &state_text),
        ("the plan", &plan_json),
        ("the saved plan", &saved_text),
    ] {
        for form in [password.clone(), b64.encode(password.as_bytes())] {
            assert!(!text.contains(&form), "the password is in {what}");
        }
    }
    let exchanges = record::read(&file).unwrap();
    let sql: HashSet<(String, u16)> = exchanges
        .iter()
        .filter(|e| e.service == SQL_HOST)
        .map(|e| (e.method.clone(), e.status))
        .collect();
    for seen in [("POST", 200), ("GET", 200), ("PATCH", 200), ("DELETE", 200)] {
        assert!(
            sql.contains(&(seen.0.to_owned(), seen.1)),
            "no {seen:?} in {sql:?}"
        );
    }
    let users_insert = exchanges
        .iter()
        .find(|e| e.method == "POST" && e.path.ends_with("/users"))
        .expect("the user was inserted");
    assert_eq!(
        users_insert.body.as_ref().unwrap()["password"],
        json!("REDACTED")
    );
    assert_record_valid(&file);
}

#[test]
fn a_region_change_of_the_protected_instance_is_refused_by_the_plan_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, _) = start_sql(None, Behaviour::default());
    let dir = quickstart_protected(tmp.path(), true);
    let (mut desired, config) = database(&dir, &sandbox.url());
    assert!(
        find(&mut desired, INSTANCE).prevent_destroy,
        "on by default"
    );
    let engine = Engine::new(config);
    let outcome = engine.apply(&engine.plan(&desired));
    assert!(outcome.success(), "{:?}", outcome.failed);
    let instance = &engine.state().resources[&format!("{INSTANCE}.prod")].attributes;
    assert_eq!(
        instance["settings"]["deletionProtectionEnabled"],
        json!(true)
    );

    let mut moved = desired.clone();
    find(&mut moved, INSTANCE).attributes["region"] = json!("us-east1");
    let refused = engine.try_plan(&moved, &[]).unwrap_err().join("\n");
    assert!(refused.contains(&format!("{INSTANCE}.prod")), "{refused}");
    assert!(refused.contains("prevent_destroy = false"), "{refused}");

    // The instance is untouched, and a delete that got past the engine would still be refused
    // by the provider, its deletion protection being on.
    let removed = engine.try_plan(&[], &[]).unwrap_err().join("\n");
    assert!(removed.contains(&format!("{INSTANCE}.prod")), "{removed}");
    let mut unprotected = desired.clone();
    for i in &mut unprotected {
        i.prevent_destroy = false;
    }
    let record_only = engine.plan(&unprotected);
    assert!(
        actions(&record_only).is_empty(),
        "{:?}",
        actions(&record_only)
    );
    let outcome = engine.apply(&record_only);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let outcome = engine.apply(&engine.plan(&[]));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(failed.contains("deletion protection on"), "{failed}");
    assert!(
        engine
            .state()
            .resources
            .contains_key(&format!("{INSTANCE}.prod"))
    );
}

#[test]
fn a_database_left_by_a_lost_state_is_adopted_and_a_strangers_instance_or_database_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let (sandbox, passwords) = start_sql(Some(file.clone()), Behaviour::default());
    let dir = quickstart_protected(tmp.path(), false);
    let (mut desired, config) = database(&dir, &sandbox.url());
    let project = config.project.clone().unwrap();
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());
    let instance_name = find(&mut desired, INSTANCE).attributes["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_name = find(&mut desired, USER).attributes["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = passwords.get(&project, &instance_name, &user_name).unwrap();

    // The state is lost: the instance, database and user weir made are adopted; the password
    // is generated again and the user given it.
    let second = Engine::new(config.clone());
    second.converge(&desired, "");
    let after = passwords.get(&project, &instance_name, &user_name).unwrap();
    assert_ne!(before, after, "the user has the new version's password");
    assert_eq!(
        second.state().resources[&format!("{INSTANCE}.prod")].attributes["settings"]["settingsVersion"],
        json!("2"),
        "the adopted instance was brought to the desired settings"
    );

    // The adoption raised the instance's settings version: the first state's is stale. Its
    // update is refused (412), reads the instance again and succeeds with the current version.
    let mut bigger = desired.clone();
    find(&mut bigger, INSTANCE).attributes["settings"]["tier"] = json!("db-g1-small");
    let update = first.plan(&bigger);
    assert_eq!(
        actions(&update),
        vec![(format!("{INSTANCE}.prod"), Action::Update)]
    );
    let outcome = first.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!first.plan(&bigger).has_changes());
    let refused = count(&file, |e| e.method == "PATCH" && e.status == 412);
    assert_eq!(
        refused, 1,
        "the stale update was refused once, then retried"
    );

    // An instance of that name made for another deployment is not taken over.
    let third = Engine::new(config.clone());
    let mut stranger = vec![find(&mut desired, INSTANCE).clone()];
    stranger[0].attributes["name"] = json!("someone-elses-db");
    stranger[0].attributes["settings"]["userLabels"]["weir-deployment"] = json!("someone-else");
    assert!(third.apply(&third.plan(&stranger)).success());
    let mut ours = stranger.clone();
    ours[0].attributes["settings"]["userLabels"] =
        find(&mut desired, INSTANCE).attributes["settings"]["userLabels"].clone();
    let fourth = Engine::new(config.clone());
    let outcome = fourth.apply(&fourth.plan(&ours));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(
        failed.contains("already exists and weir did not create it"),
        "{failed}"
    );

    // A database already in an instance weir does not manage is not taken over either.
    let mut unlabelled = stranger.clone();
    unlabelled[0].attributes["name"] = json!("not-weirs-db");
    unlabelled[0].attributes["settings"]["userLabels"] = json!({});
    let mut db = find(&mut desired, DATABASE).clone();
    db.attributes["instance"] = json!("not-weirs-db");
    let fifth = Engine::new(config.clone());
    let outcome = fifth.apply(&fifth.plan(&[unlabelled[0].clone(), db.clone()]));
    assert!(outcome.success(), "{:?}", outcome.failed);
    db.dependencies.clear();
    let sixth = Engine::new(config);
    let outcome = sixth.apply(&sixth.plan(&[db]));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(failed.contains("which weir did not create"), "{failed}");
}

#[test]
fn an_instance_whose_operation_ends_in_error_is_a_failure_with_the_instance_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart_protected(tmp.path(), false);
    // The instance's name derives from the deployment: learn it with any endpoint.
    let (mut desired, _) = database(&dir, "http://127.0.0.1:9");
    let failing = find(&mut desired, INSTANCE).attributes["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (sandbox, _) = start_sql(
        None,
        Behaviour {
            operation_delay: Duration::from_millis(300),
            failing_sql_instances: HashSet::from([failing]),
            ..Behaviour::default()
        },
    );
    let (desired, config) = database(&dir, &sandbox.url());
    let engine = Engine::new(config);
    let outcome = engine.apply(&engine.plan(&desired));
    assert!(!outcome.success());
    let (address, action, message) = &outcome.failed[0];
    assert_eq!(
        (address.as_str(), *action),
        (&*format!("{INSTANCE}.prod"), Action::Create)
    );
    assert!(message.contains("could not be created"), "{message}");
    let state = engine.state();
    let recorded = &state.resources[&format!("{INSTANCE}.prod")].attributes;
    assert_eq!(recorded["state"], json!("FAILED"), "{recorded}");
    let next = engine.plan(&desired);
    assert!(
        !actions(&next).contains(&(format!("{INSTANCE}.prod"), Action::Create)),
        "{:?}",
        actions(&next)
    );
}

#[test]
fn a_stop_while_the_instance_is_created_records_it_and_the_next_run_does_not_create_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, _) = start_sql(
        None,
        Behaviour {
            operation_delay: Duration::from_secs(60),
            ..Behaviour::default()
        },
    );
    let dir = quickstart_protected(tmp.path(), false);
    let (desired, config) = database(&dir, &sandbox.url());
    let instance_only: Vec<ResourceInstance> = desired
        .iter()
        .filter(|i| i.type_name == INSTANCE)
        .cloned()
        .collect();
    let engine = Engine::new(config);
    engine.apply_stopped(&instance_only);
    let recorded = &engine.state().resources[&format!("{INSTANCE}.prod")].attributes;
    assert_eq!(recorded["state"], json!("PENDING_CREATE"), "{recorded}");
    let next = engine.plan(&instance_only);
    assert!(!next.has_changes(), "{:?}", actions(&next));
}
