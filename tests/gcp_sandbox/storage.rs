//! Cloud Storage through the sandbox's storage front, in front of a real `fake-gcs-server`:
//! the quickstart's bucket planned and applied by the engine (`STORAGE_EMULATOR_HOST` pointing
//! at the front), and the front itself seen from a raw HTTP client (bucket IAM policies,
//! uploads and downloads byte for byte), every exchange held to Google's discovery documents.
//!
//! The emulator comes from `scripts/test-deps.sh` (`WEIR_TEST_FAKE_GCS`); without it these tests
//! fail saying so.

use super::*;
use std::net::SocketAddr;

const BUCKET: &str = "google_storage_bucket";
/// The quickstart's bucket.
const ADDRESS: &str = "google_storage_bucket.prod";

use crate::cloud::FakeGcs;

/// The emulator and the sandbox in front of it, recording to `record` when given.
fn front(record: Option<PathBuf>) -> (FakeGcs, Running) {
    front_with(record, Behaviour::default())
}

fn front_with(record: Option<PathBuf>, behaviour: Behaviour) -> (FakeGcs, Running) {
    let gcs = FakeGcs::start();
    let mut sandbox = Sandbox::new(catalog())
        .behaviour(behaviour)
        .storage_upstream(&gcs.url);
    sandbox.record = record;
    let running = sandbox.spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    (gcs, running)
}

/// The quickstart's bucket and the provider configuration pointing Cloud Storage at `front`.
fn bucket(
    dir: &Path,
    front: &Running,
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    let (desired, config) = lowered(dir, &[("STORAGE_EMULATOR_HOST", &front.url())], &[BUCKET]);
    assert_eq!(desired.len(), 1, "the quickstart has one bucket");
    assert_eq!(desired[0].address, ADDRESS);
    (desired, config)
}

fn edited(
    desired: &[ResourceInstance],
    edit: impl Fn(&mut ResourceInstance),
) -> Vec<ResourceInstance> {
    let mut out = desired.to_vec();
    out.iter_mut().for_each(edit);
    out
}

/// One raw HTTP/1.1 exchange with `addr`: the status and the body, byte for byte.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, answer[split + 4..].to_vec())
}

fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let headers: &[(&str, &str)] = match body {
        Some(_) => &[("Content-Type", "application/json")],
        None => &[],
    };
    let (status, answer) = http(addr, method, path, headers, text.as_bytes());
    let value = match answer.is_empty() {
        true => serde_json::Value::Null,
        false => serde_json::from_slice(&answer)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer))),
    };
    (status, value)
}

/// The record `file` valid, of Cloud Storage calls only, with no answer but injected faults.
fn assert_storage_record_valid(file: &Path) {
    assert_record_valid(file);
    let exchanges = record::read(file).unwrap();
    assert!(!exchanges.is_empty());
    let service = "storage.googleapis.com";
    assert!(exchanges.iter().all(|e| e.service == service));
    // Only injected faults: an answer the sandbox could not give would be a 500 or a 502.
    let broken: Vec<_> = exchanges
        .iter()
        .filter(|e| e.status >= 500 && e.status != 503)
        .collect();
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn quickstart_bucket_is_created_unchanged_on_replan_relabelled_in_place_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let (_gcs, sandbox) = front(Some(file.clone()));
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = bucket(&dir, &sandbox);
    let name = desired[0].attributes["name"].as_str().unwrap().to_owned();
    assert!(
        desired[0].prevent_destroy,
        "the bucket is protected by default"
    );
    let engine = Engine::new(config);

    let first = engine.plan(&desired);
    assert_eq!(actions(&first), vec![(ADDRESS.into(), Action::Create)]);
    let outcome = engine.apply(&first);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));

    // What Google would answer, though the emulator drops these fields.
    let (status, live) = http_json(
        sandbox.addr(),
        "GET",
        &format!("/storage/v1/b/{name}"),
        None,
    );
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["location"], json!("US-CENTRAL1"));
    assert_eq!(live["labels"]["managed-by"], json!("weir"));
    assert_eq!(
        live["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"],
        json!(true)
    );
    assert_eq!(
        live["iamConfiguration"]["publicAccessPrevention"],
        json!("enforced")
    );
    assert_eq!(live["metageneration"], json!("1"));
    let recorded = &engine.state().resources[ADDRESS].attributes;
    assert_eq!(recorded["etag"], live["etag"]);

    // A label changed and one removed: an update in place, and the removed one is gone.
    let relabelled = edited(&desired, |i| {
        let labels = i.attributes["labels"].as_object_mut().unwrap();
        labels.insert("team".into(), json!("platform"));
        labels.remove("environment");
    });
    let update = engine.plan(&relabelled);
    assert_eq!(actions(&update), vec![(ADDRESS.into(), Action::Update)]);
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!engine.plan(&relabelled).has_changes());
    let (_, live) = http_json(
        sandbox.addr(),
        "GET",
        &format!("/storage/v1/b/{name}"),
        None,
    );
    assert_eq!(live["labels"]["team"], json!("platform"));
    assert!(live["labels"].get("environment").is_none(), "{live}");
    assert_eq!(live["metageneration"], json!("2"));

    // A new location is a replacement, which prevent_destroy refuses, naming the bucket.
    let moved = edited(&relabelled, |i| i.attributes["location"] = json!("EU"));
    let refused = engine.try_plan(&moved, &[]).unwrap_err().join("\n");
    assert!(
        refused.contains(ADDRESS) && refused.contains("replaced"),
        "{refused}"
    );
    assert!(refused.contains("prevent_destroy"), "{refused}");

    // Allowed, recorded, then deleted.
    let allowed = edited(&relabelled, |i| i.prevent_destroy = false);
    assert!(engine.apply(&engine.plan(&allowed)).success());
    let delete = engine.plan(&[]);
    assert_eq!(actions(&delete), vec![(ADDRESS.into(), Action::Delete)]);
    let outcome = engine.apply(&delete);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(engine.state().resources.is_empty());
    let (status, _) = http_json(
        sandbox.addr(),
        "GET",
        &format!("/storage/v1/b/{name}"),
        None,
    );
    assert_eq!(status, 404);

    drop(sandbox);
    assert_storage_record_valid(&file);
    let exchanges = record::read(&file).unwrap();
    let patch = exchanges
        .iter()
        .find(|e| e.method == "PATCH")
        .expect("a PATCH in the record");
    assert!(
        patch
            .query
            .iter()
            .any(|(k, v)| k == "ifMetagenerationMatch" && v == "1"),
        "{patch:?}"
    );
}

#[test]
fn with_a_fifth_of_storage_calls_throttled_or_failing_the_bucket_still_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    let mut faults = 0;
    for seed in 1..=3 {
        let file = tmp.path().join(format!("record-{seed}.jsonl"));
        let behaviour = Behaviour {
            latency: Duration::from_millis(5),
            unavailable_rate: 0.2,
            seed,
            ..Behaviour::default()
        };
        let (_gcs, sandbox) = front_with(Some(file.clone()), behaviour);
        let (desired, config) = bucket(&dir, &sandbox);
        let desired = edited(&desired, |i| i.prevent_destroy = false);
        let engine = Engine::new(config);
        engine.converge(&desired, &format!("seed {seed}"));
        let relabelled = edited(&desired, |i| {
            i.attributes["labels"]["team"] = json!("platform")
        });
        engine.converge(&relabelled, &format!("seed {seed}"));
        let outcome = engine.apply(&engine.plan(&[]));
        assert!(outcome.success(), "seed {seed}: {:?}", outcome.failed);
        drop(sandbox);
        faults += count(&file, is_fault);
        assert_storage_record_valid(&file);
    }
    assert!(faults > 0, "no fault was injected");
}

#[test]
fn a_bucket_changed_behind_weirs_back_between_plan_and_apply_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gcs, sandbox) = front(None);
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = bucket(&dir, &sandbox);
    let name = desired[0].attributes["name"].as_str().unwrap().to_owned();
    let engine = Engine::new(config);
    assert!(engine.apply(&engine.plan(&desired)).success());

    let relabelled = edited(&desired, |i| {
        i.attributes["labels"]["team"] = json!("platform")
    });
    let update = engine.plan(&relabelled);
    // Someone else patches the bucket now: weir's metageneration is stale.
    let (status, _) = http_json(
        sandbox.addr(),
        "PATCH",
        &format!("/storage/v1/b/{name}"),
        Some(&json!({"labels": {"owner": "someone"}})),
    );
    assert_eq!(status, 200);
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let (_, live) = http_json(
        sandbox.addr(),
        "GET",
        &format!("/storage/v1/b/{name}"),
        None,
    );
    assert_eq!(live["labels"]["team"], json!("platform"));
    assert_eq!(live["metageneration"], json!("3"));
    // A stale precondition is refused as Google does.
    let (status, answer) = http_json(
        sandbox.addr(),
        "PATCH",
        &format!("/storage/v1/b/{name}?ifMetagenerationMatch=1"),
        Some(&json!({"labels": {"x": "y"}})),
    );
    assert_eq!(status, 412, "{answer}");
}

#[test]
fn a_bucket_left_by_a_lost_state_is_adopted_and_a_strangers_bucket_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gcs, sandbox) = front(None);
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = bucket(&dir, &sandbox);
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());

    // The state is lost: the bucket weir made for this deployment is adopted, and brought to
    // the configuration.
    let relabelled = edited(&desired, |i| {
        i.attributes["labels"]["team"] = json!("platform")
    });
    let second = Engine::new(config.clone());
    second.converge(&relabelled, "");
    assert_eq!(
        second.state().resources[ADDRESS].attributes["labels"]["team"],
        json!("platform")
    );

    // Another deployment's bucket of the same name is not touched.
    let stranger = edited(&desired, |i| {
        i.attributes["labels"]["weir-deployment"] = json!("someone-else")
    });
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&stranger));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(
        failed.contains("already exists and weir did not create it"),
        "{failed}"
    );
    let state = third.backend.read_unlocked().unwrap();
    assert!(state.is_none_or(|s| s.resources.is_empty()));
}

#[test]
fn deleting_a_bucket_that_holds_objects_is_refused_clearly_and_it_stays_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gcs, sandbox) = front(None);
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = bucket(&dir, &sandbox);
    let desired = edited(&desired, |i| i.prevent_destroy = false);
    let name = desired[0].attributes["name"].as_str().unwrap().to_owned();
    let engine = Engine::new(config);
    assert!(engine.apply(&engine.plan(&desired)).success());
    let (status, _) = http(
        sandbox.addr(),
        "POST",
        &format!("/upload/storage/v1/b/{name}/o?uploadType=media&name=logs%2F1.txt"),
        &[("Content-Type", "text/plain")],
        b"a log line",
    );
    assert_eq!(status, 200);

    let outcome = engine.apply(&engine.plan(&[]));
    assert!(!outcome.success());
    let failed = format!("{:?}", outcome.failed);
    assert!(failed.contains(ADDRESS), "{failed}");
    assert!(
        failed.contains(&format!("the bucket {name} is not empty")),
        "{failed}"
    );
    assert!(engine.state().resources.contains_key(ADDRESS));
    let (status, _) = http_json(
        sandbox.addr(),
        "GET",
        &format!("/storage/v1/b/{name}"),
        None,
    );
    assert_eq!(status, 200);
}

#[test]
fn bucket_iam_policies_are_kept_by_the_front_with_etags() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let (_gcs, sandbox) = front(Some(file.clone()));
    let addr = sandbox.addr();
    let (status, _) = http_json(
        addr,
        "POST",
        "/storage/v1/b?project=acme",
        Some(&json!({"name": "policies", "location": "eu"})),
    );
    assert_eq!(status, 200);
    let (status, policy) = http_json(addr, "GET", "/storage/v1/b/policies/iam", None);
    assert_eq!(status, 200, "{policy}");
    assert_eq!(policy["resourceId"], json!("projects/_/buckets/policies"));
    let owners = &policy["bindings"][0];
    assert_eq!(owners["role"], json!("roles/storage.legacyBucketOwner"));
    assert!(
        owners["members"]
            .as_array()
            .unwrap()
            .contains(&json!("projectOwner:acme"))
    );
    let etag = policy["etag"].as_str().unwrap().to_owned();

    let mut wanted = policy.clone();
    wanted["bindings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "roles/storage.objectUser", "members": ["serviceAccount:web@acme.iam.gserviceaccount.com"]}));
    let (status, set) = http_json(addr, "PUT", "/storage/v1/b/policies/iam", Some(&wanted));
    assert_eq!(status, 200, "{set}");
    assert_ne!(set["etag"], json!(etag), "the etag changes on every write");
    let (_, read) = http_json(addr, "GET", "/storage/v1/b/policies/iam", None);
    assert_eq!(read, set);
    assert_eq!(read["bindings"].as_array().unwrap().len(), 3);

    // The old etag is stale now.
    let (status, refused) = http_json(addr, "PUT", "/storage/v1/b/policies/iam", Some(&wanted));
    assert_eq!(status, 412, "{refused}");
    // No policy without a bucket; an unknown field is Google's 400.
    let (status, _) = http_json(addr, "GET", "/storage/v1/b/nowhere/iam", None);
    assert_eq!(status, 404);
    let (status, refused) = http_json(
        addr,
        "PUT",
        "/storage/v1/b/policies/iam",
        Some(&json!({"bindings": [], "owner": "me"})),
    );
    assert_eq!(status, 400, "{refused}");
    // The bucket keeps its location and counts the policy change.
    let (_, bucket) = http_json(addr, "GET", "/storage/v1/b/policies", None);
    assert_eq!(bucket["location"], json!("EU"));
    assert_eq!(bucket["locationType"], json!("multi-region"));
    assert_eq!(bucket["metageneration"], json!("2"));

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    assert!(
        exchanges
            .iter()
            .any(|e| e.method == "PUT" && e.path.ends_with("/iam") && e.status == 200)
    );
    let refused: Vec<_> = exchanges.iter().filter(|e| e.status == 400).collect();
    assert_eq!(refused.len(), 1);
    // The record holds the refused request too: validating it names exactly that one.
    let problems = record::validate_file(&file, &catalog()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].problem.contains("owner"), "{problems:?}");
}

#[test]
fn uploads_and_downloads_pass_through_the_front_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let (gcs, sandbox) = front(Some(file.clone()));
    let addr = sandbox.addr();
    let (status, _) = http_json(
        addr,
        "POST",
        "/storage/v1/b?project=acme",
        Some(&json!({"name": "releases"})),
    );
    assert_eq!(status, 200);

    // Bytes that are not UTF-8, and bytes that look like JSON (spaces, a link of the emulator)
    // but must not be parsed or rewritten.
    let binary: Vec<u8> = (0..=255u8).chain([0, 13, 10, 13, 10]).collect();
    let json_like = format!("{{ \"selfLink\" :  \"{}/storage/v1/b/x\" }}\n", gcs.url);
    let (status, object) = http(
        addr,
        "POST",
        "/upload/storage/v1/b/releases/o?uploadType=media&name=bin%2Fweir",
        &[("Content-Type", "application/octet-stream")],
        &binary,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&object));
    let object: serde_json::Value = serde_json::from_slice(&object).unwrap();
    assert_eq!(object["size"], json!("261"));
    assert!(
        object["mediaLink"]
            .as_str()
            .unwrap()
            .starts_with(&sandbox.url()),
        "links lead back to the front: {object}"
    );

    let boundary = "weir-boundary";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{{\"name\": \"manifest.json\", \"contentType\": \"application/json\"}}\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(json_like.as_bytes());
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, answer) = http(
        addr,
        "POST",
        "/upload/storage/v1/b/releases/o?uploadType=multipart",
        &[(
            "Content-Type",
            &format!("multipart/related; boundary={boundary}"),
        )],
        &multipart,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));

    for (path, want) in [
        (
            "/download/storage/v1/b/releases/o/bin%2Fweir?alt=media",
            &binary,
        ),
        ("/storage/v1/b/releases/o/bin%2Fweir?alt=media", &binary),
        (
            "/download/storage/v1/b/releases/o/manifest.json?alt=media",
            &json_like.clone().into_bytes(),
        ),
    ] {
        let (status, got) = http(addr, "GET", path, &[], b"");
        assert_eq!(status, 200, "{path}");
        assert_eq!(&got, want, "{path}");
    }

    drop(sandbox);
    assert_storage_record_valid(&file);
    let exchanges = record::read(&file).unwrap();
    let multipart = exchanges
        .iter()
        .find(|e| e.query.iter().any(|(_, v)| v == "multipart"))
        .unwrap();
    assert_eq!(
        multipart.body,
        Some(json!({"name": "manifest.json", "contentType": "application/json"})),
        "the record holds the metadata, not the media"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("selfLink\\\" :"),
        "media is not in the record"
    );
}

#[test]
fn without_an_emulator_storage_calls_are_refused_naming_the_flag_and_bad_multipart_is_a_400() {
    let sandbox = start(None, Behaviour::default());
    let (status, answer) = http_json(sandbox.addr(), "GET", "/storage/v1/b/acme-mage", None);
    assert_eq!(status, 501, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("--storage-upstream"), "{message}");
    // A multipart upload whose parts do not follow its boundary: Google's 400, not a guess.
    let (status, answer) = http(
        sandbox.addr(),
        "POST",
        "/upload/storage/v1/b/acme-mage/o?uploadType=multipart",
        &[("Content-Type", "multipart/related; boundary=one")],
        b"--other\r\n\r\n{}\r\n--other--",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
}
