//! The quickstart's scheduler VM (`google_compute_instance.scheduler`) planned and applied
//! through the Google provider against the sandbox's Compute Engine. Its attributes hold no
//! reference to other resources (the service account's email is derived from the deployment),
//! so it is applied alone.

use super::*;
use serde_json::Value;

const VM: &str = "google_compute_instance";

/// The scheduler VM lowered from the configuration in `dir`, and the provider configuration
/// for `endpoint`.
fn scheduler(
    dir: &Path,
    endpoint: &str,
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (vm, config) = lowered(dir, &[("WEIR_GOOGLE_ENDPOINT", endpoint)], &[VM]);
    assert_eq!(vm.len(), 1, "the quickstart has one scheduler VM");
    (vm, config)
}

fn attr<'a>(vm: &'a [ResourceInstance], key: &str) -> &'a str {
    vm[0].attributes[key].as_str().unwrap()
}

/// The compute calls of the record whose path ends in `/<verb>`, answered 200, in order.
fn verbs(file: &Path) -> Vec<String> {
    record::read(file)
        .unwrap()
        .iter()
        .filter(|e| e.service == "compute.googleapis.com" && e.method == "POST")
        .filter(|e| e.status == 200 && e.path.contains("/instances/"))
        .map(|e| e.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_scheduler_vm_is_created_resized_by_stop_and_start_updated_in_place_replaced_across_zones_and_deleted()
 {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = scheduler(&dir, &sandbox.url());
    let address = format!("{VM}.scheduler");
    let engine = Engine::new(config);

    let first = engine.plan(&desired);
    assert_eq!(actions(&first), vec![(address.clone(), Action::Create)]);
    let outcome = engine.apply(&first);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let recorded = engine.state().resources[&address].attributes.clone();
    assert!(recorded["id"].is_string(), "{recorded}");
    assert_eq!(recorded["status"], json!("RUNNING"));
    assert!(
        recorded
            .pointer("/networkInterfaces/0/accessConfigs/0/natIP")
            .is_some_and(Value::is_string),
        "{recorded}"
    );
    let id = recorded["id"].clone();

    // Right after apply, nothing to change.
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", again.changes);

    // A bigger machine: in place, the VM stopped, changed and started again.
    let zone = attr(&desired, "zone").to_owned();
    let mut bigger = desired.clone();
    bigger[0].attributes["machineType"] = json!(format!("zones/{zone}/machineTypes/e2-small"));
    let update = engine.plan(&bigger);
    assert_eq!(actions(&update), vec![(address.clone(), Action::Update)]);
    let before = verbs(&file).len();
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        verbs(&file)[before..],
        ["stop", "setMachineType", "start"],
        "the machine type changes on the stopped VM"
    );
    let resized = &engine.state().resources[&address].attributes;
    assert_eq!(resized["id"], id, "the same VM");
    assert_eq!(resized["status"], json!("RUNNING"));
    assert!(!engine.plan(&bigger).has_changes());

    // The startup script: in place, with the metadata's fingerprint, the VM left running.
    let mut scripted = bigger.clone();
    scripted[0].attributes["metadata"]["items"][0]["value"] = json!("#!/bin/bash\necho changed\n");
    let update = engine.plan(&scripted);
    assert_eq!(actions(&update), vec![(address.clone(), Action::Update)]);
    let before = verbs(&file).len();
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(verbs(&file)[before..], ["setMetadata"]);
    assert!(!engine.plan(&scripted).has_changes());

    // Another service account: in place on the stopped VM too.
    let mut reassigned = scripted.clone();
    let account = &mut reassigned[0].attributes["serviceAccounts"][0];
    account["email"] = json!(format!(
        "other@{}.iam.gserviceaccount.com",
        attr(&desired, "project")
    ));
    account["scopes"] = json!(["https://www.googleapis.com/auth/devstorage.read_only"]);
    let update = engine.plan(&reassigned);
    assert_eq!(actions(&update), vec![(address.clone(), Action::Update)]);
    let before = verbs(&file).len();
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        verbs(&file)[before..],
        ["stop", "setServiceAccount", "start"]
    );
    assert!(!engine.plan(&reassigned).has_changes());
    let scripted = reassigned;

    // Another boot image, disk type or network: a new VM (planned only).
    for (pointer, value) in [
        (
            "/disks/0/initializeParams/sourceImage",
            "projects/cos-cloud/global/images/family/cos-beta",
        ),
        (
            "/disks/0/initializeParams/diskType",
            &*format!("zones/{zone}/diskTypes/pd-balanced"),
        ),
        ("/networkInterfaces/0/network", "global/networks/other"),
    ] {
        let mut changed = scripted.clone();
        *changed[0].attributes.pointer_mut(pointer).unwrap() = json!(value);
        assert_eq!(
            actions(&engine.plan(&changed)),
            vec![(address.clone(), Action::Replace)],
            "{pointer}"
        );
    }

    // Another zone: a new VM.
    let mut moved = scripted.clone();
    let other = "us-central1-b";
    let a = &mut moved[0].attributes;
    a["zone"] = json!(other);
    a["machineType"] = json!(format!("zones/{other}/machineTypes/e2-small"));
    a["disks"][0]["initializeParams"]["diskType"] =
        json!(format!("zones/{other}/diskTypes/pd-standard"));
    let replace = engine.plan(&moved);
    assert_eq!(actions(&replace), vec![(address.clone(), Action::Replace)]);
    let outcome = engine.apply(&replace);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let replaced = &engine.state().resources[&address].attributes;
    assert_ne!(replaced["id"], id, "a new VM");
    assert_eq!(replaced["zone"], json!(other));
    assert!(!engine.plan(&moved).has_changes());

    // Gone from the configuration: deleted.
    let delete = engine.plan(&[]);
    assert_eq!(actions(&delete), vec![(address.clone(), Action::Delete)]);
    assert!(engine.apply(&delete).success());
    assert!(engine.state().resources.is_empty());
    assert!(!engine.plan(&[]).has_changes());

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    let deletes = exchanges
        .iter()
        .filter(|e| e.method == "DELETE" && e.status == 200)
        .count();
    assert_eq!(deletes, 2, "the replaced VM and the last one");
    assert_record_valid(&file);
}

#[test]
fn an_insert_retried_after_a_lost_answer_reuses_its_request_id_and_makes_one_vm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    let mut lost_answers = 0;
    for seed in 1..=4 {
        let file = tmp.path().join(format!("record-{seed}.jsonl"));
        let sandbox = start(
            Some(file.clone()),
            Behaviour {
                unavailable_rate: 0.3,
                seed,
                ..Behaviour::default()
            },
        );
        let (desired, config) = scheduler(&dir, &sandbox.url());
        let engine = Engine::new(config);
        engine.converge(&desired, &format!("seed {seed}"));
        drop(sandbox);
        let inserts: Vec<_> = record::read(&file)
            .unwrap()
            .into_iter()
            .filter(|e| e.method == "POST" && e.path.ends_with("/instances"))
            .collect();
        let ids: HashSet<&str> = inserts
            .iter()
            .flat_map(|e| e.query.iter())
            .filter(|(k, _)| k == "requestId")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "seed {seed}: every attempt carries one request id"
        );
        assert!(
            inserts.iter().all(|e| e.status != 409),
            "seed {seed}: a retry met the VM its first attempt made"
        );
        // The sandbox makes the VM before it answers 503: the answer was lost, not the insert.
        lost_answers += inserts.iter().filter(|e| e.status == 503).count();
        assert_record_valid(&file);
    }
    assert!(
        lost_answers > 0,
        "no insert's answer was lost: the test proves nothing"
    );
}

#[test]
fn a_vm_left_by_a_lost_state_is_adopted_and_a_strangers_vm_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(None, Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = scheduler(&dir, &sandbox.url());
    let address = format!("{VM}.scheduler");
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());
    let id = first.state().resources[&address].attributes["id"].clone();

    // The state is lost: the create meets the VM (409), which weir made for this deployment.
    let second = Engine::new(config.clone());
    let outcome = second.apply(&second.plan(&desired));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        second.state().resources[&address].attributes["id"],
        id,
        "the same VM, adopted"
    );
    assert!(!second.plan(&desired).has_changes());

    // A VM of that name that another deployment made is not taken over.
    let mut strangers = desired.clone();
    let name = format!("{}-x", attr(&desired, "name"));
    strangers[0].attributes["name"] = json!(name);
    strangers[0].attributes["labels"]["weir-deployment"] = json!("someone-else");
    let other = Engine::new(config.clone());
    assert!(other.apply(&other.plan(&strangers)).success());
    let mut ours = strangers.clone();
    ours[0].attributes["labels"] = desired[0].attributes["labels"].clone();
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&ours));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(
        failed.contains("already exists and weir did not create it"),
        "{failed}"
    );
    let recorded = third.backend.read_unlocked().unwrap();
    assert!(
        recorded.is_none_or(|s| !s.resources.contains_key(&address)),
        "the stranger's VM is not recorded as ours"
    );
}

#[test]
fn an_insert_whose_operation_ends_in_error_is_a_failure_with_the_vm_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    // The VM's name derives from the deployment: learn it with any endpoint.
    let (desired, _) = scheduler(&dir, "http://127.0.0.1:9");
    let sandbox = start(
        None,
        Behaviour {
            operation_delay: Duration::from_millis(300),
            failing_instances: HashSet::from([attr(&desired, "name").to_owned()]),
            ..Behaviour::default()
        },
    );
    let (desired, config) = scheduler(&dir, &sandbox.url());
    let address = format!("{VM}.scheduler");
    let engine = Engine::new(config);
    let outcome = engine.apply(&engine.plan(&desired));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    let (failed, action, message) = &outcome.failed[0];
    assert_eq!(
        (failed.as_str(), *action),
        (address.as_str(), Action::Create)
    );
    assert!(
        message.contains("does not have enough resources"),
        "{message}"
    );
    // What exists is recorded, so the next run does not create it again.
    let recorded = &engine.state().resources[&address].attributes;
    assert!(recorded["id"].is_string(), "{recorded}");
    let next = engine.plan(&desired);
    assert!(
        actions(&next).iter().all(|(_, a)| *a != Action::Create),
        "{:?}",
        actions(&next)
    );
}

/// One raw POST of `body` to Compute in the sandbox, as another client would send it; the
/// answer's status.
fn post(sandbox: &Running, path: &str, body: &Value) -> u16 {
    call(
        sandbox,
        "compute.googleapis.com",
        "POST",
        path,
        Some(body.clone()),
    )
    .0
}

#[test]
fn metadata_changed_by_someone_else_during_an_update_is_read_again_and_the_update_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(
        Some(file.clone()),
        Behaviour {
            operation_delay: Duration::from_secs(2),
            ..Behaviour::default()
        },
    );
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = scheduler(&dir, &sandbox.url());
    let engine = Engine::new(config);
    assert!(engine.apply(&engine.plan(&desired)).success());

    // New labels and a new script: weir reads the VM, sets the labels (an operation of two
    // seconds), then sets the metadata with the fingerprint it read. Meanwhile another client
    // changes the metadata, so that fingerprint is stale.
    let mut changed = desired.clone();
    changed[0].attributes["labels"]["owner"] = json!("scheduling");
    changed[0].attributes["metadata"]["items"][0]["value"] = json!("#!/bin/bash\necho weir\n");
    let update = engine.plan(&changed);
    assert_eq!(
        actions(&update),
        vec![(format!("{VM}.scheduler"), Action::Update)]
    );
    let path = format!(
        "/compute/v1/projects/{}/zones/{}/instances/{}",
        attr(&desired, "project"),
        attr(&desired, "zone"),
        attr(&desired, "name")
    );
    let live = get(&sandbox, "compute.googleapis.com", &path);
    let someone = std::thread::scope(|s| {
        let someone = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let body = json!({"fingerprint": live["metadata"]["fingerprint"],
                "items": [{"key": "startup-script", "value": "#!/bin/bash\necho someone\n"}]});
            post(&sandbox, &format!("{path}/setMetadata"), &body)
        });
        let outcome = engine.apply(&update);
        assert!(outcome.success(), "{:?}", outcome.failed);
        someone.join().unwrap()
    });
    assert_eq!(someone, 200, "the other client's change went through");
    let stale = count(&file, |e| {
        e.path.ends_with("/setMetadata") && e.status == 412
    });
    assert_eq!(stale, 1, "weir's stale fingerprint was refused once");
    let live = get(&sandbox, "compute.googleapis.com", &path);
    assert_eq!(
        live["metadata"]["items"][0]["value"],
        json!("#!/bin/bash\necho weir\n")
    );
    assert!(!engine.plan(&changed).has_changes());
}

/// The compute POSTs of the record answered 200, as `<collection>/<verb>` (`disks/resize`,
/// `instances/setMetadata`), in order.
fn writes(file: &Path) -> Vec<String> {
    record::read(file)
        .unwrap()
        .iter()
        .filter(|e| e.service == "compute.googleapis.com" && e.method == "POST")
        .filter(|e| e.status == 200 && !e.path.contains("/operations/"))
        .map(|e| {
            let parts: Vec<&str> = e.path.rsplit('/').collect();
            format!("{}/{}", parts.get(2).unwrap_or(&""), parts[0])
        })
        .collect()
}

fn attr_path(dotted: &str) -> Vec<String> {
    dotted.split('.').map(str::to_owned).collect()
}

#[test]
fn a_larger_boot_disk_grows_in_place_and_a_smaller_one_or_other_scheduling_is_a_new_vm() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = scheduler(&dir, &sandbox.url());
    let address = format!("{VM}.scheduler");
    let engine = Engine::new(config);
    assert!(engine.apply(&engine.plan(&desired)).success());
    let id = engine.state().resources[&address].attributes["id"].clone();
    let size = |vm: &[ResourceInstance]| -> u64 {
        vm[0].attributes["disks"][0]["initializeParams"]["diskSizeGb"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let with_size = |vm: &[ResourceInstance], gb: u64| {
        let mut vm = vm.to_vec();
        vm[0].attributes["disks"][0]["initializeParams"]["diskSizeGb"] = json!(gb.to_string());
        vm
    };

    // A larger disk, with a new script: in place, the disk grown first, the VM kept.
    let mut grown = with_size(&desired, size(&desired) + 20);
    grown[0].attributes["metadata"]["items"][0]["value"] = json!("#!/bin/bash\necho grown\n");
    let update = engine.plan(&grown);
    assert_eq!(actions(&update), vec![(address.clone(), Action::Update)]);
    assert!(update.changes[0].replace_paths.is_empty());
    let before = writes(&file).len();
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        writes(&file)[before..],
        ["disks/resize", "instances/setMetadata"]
    );
    let recorded = &engine.state().resources[&address].attributes;
    assert_eq!(recorded["id"], id, "the same VM");
    assert_eq!(
        recorded["disks"][0]["initializeParams"]["diskSizeGb"],
        json!((size(&desired) + 20).to_string())
    );
    let again = engine.plan(&grown);
    assert!(!again.has_changes(), "{:?}", again.changes);

    // Another scheduling: a new VM (planned only), the scheduling shown as forcing it.
    let mut spot = grown.clone();
    spot[0].attributes["scheduling"]["automaticRestart"] = json!(false);
    let replace = engine.plan(&spot);
    assert_eq!(actions(&replace), vec![(address.clone(), Action::Replace)]);
    assert_eq!(
        replace.changes[0].replace_paths,
        vec![attr_path("scheduling")]
    );

    // A smaller disk: a new VM, the size shown as forcing it.
    let shrunk = with_size(&grown, size(&desired));
    let replace = engine.plan(&shrunk);
    assert_eq!(actions(&replace), vec![(address.clone(), Action::Replace)]);
    assert_eq!(
        replace.changes[0].replace_paths,
        vec![attr_path("disks.0.initializeParams.diskSizeGb")]
    );
    let text = weir::render::text::render_text(&replace, false);
    assert!(text.contains("# forces replacement"), "{text}");
    let before = writes(&file).len();
    let outcome = engine.apply(&replace);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(
        !writes(&file)[before..].contains(&"disks/resize".to_owned()),
        "no shrink is ever sent"
    );
    let recorded = &engine.state().resources[&address].attributes;
    assert_ne!(recorded["id"], id, "a new VM");
    assert!(!engine.plan(&shrunk).has_changes());

    drop(sandbox);
    assert_record_valid(&file);
}
