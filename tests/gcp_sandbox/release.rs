//! Code releases of a gcp deployment against a real `fake-gcs-server`: content-addressed
//! objects, one manifest per release, the pointer switched last, rollback and pruning.

use super::cloud::{FakeGcs, http};
use std::collections::BTreeMap;
use weir::release::ReleaseStore;

const BUCKET: &str = "mage-releases";
const PREFIX: &str = "weir/releases-test";

fn emulator() -> FakeGcs {
    let gcs = FakeGcs::start();
    gcs.create_bucket(BUCKET);
    gcs
}

fn store(gcs: &FakeGcs) -> ReleaseStore {
    let url = gcs.url.clone();
    ReleaseStore::open(BUCKET, PREFIX, &move |name| {
        (name == "STORAGE_EMULATOR_HOST").then(|| url.clone())
    })
    .unwrap()
}

/// The names of the objects under `under`, read past weir.
fn objects(gcs: &FakeGcs, under: &str) -> Vec<String> {
    let path = format!(
        "/storage/v1/b/{BUCKET}/o?prefix={}",
        format!("{PREFIX}/{under}").replace('/', "%2F")
    );
    let (status, body) = http(&gcs.url, "GET", &path, None, None).unwrap();
    assert_eq!(status, 200, "{body}");
    let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = listing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn project(blocks: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::from([
        (
            "metadata.yaml".to_string(),
            b"project_uuid: demo\n".to_vec(),
        ),
        (
            "pipelines/orders/metadata.yaml".to_string(),
            b"uuid: orders\n".to_vec(),
        ),
    ]);
    for (name, code) in blocks {
        files.insert(format!("data_loaders/{name}.py"), code.as_bytes().to_vec());
    }
    files
}

#[test]
fn a_release_uploads_each_content_once_and_points_at_its_manifest() {
    let gcs = emulator();
    let store = store(&gcs);
    // Two files with the same content: one object.
    let files = project(&[("load", "x = 1\n"), ("again", "x = 1\n")]);
    let published = store.publish(&files, 10).unwrap();
    assert_eq!(published.uploaded, 3);
    assert_eq!(objects(&gcs, "objects/").len(), 3);
    assert_eq!(objects(&gcs, "releases/").len(), 1);
    let (current, _) = store.current().unwrap();
    assert_eq!(current.unwrap().id, published.release);
    assert_eq!(store.fetch(&published.release).unwrap(), files);
}

#[test]
fn changing_one_block_uploads_one_object_and_switches_the_pointer() {
    let gcs = emulator();
    let store = store(&gcs);
    let first = store
        .publish(&project(&[("load", "x = 1\n"), ("clean", "y = 2\n")]), 10)
        .unwrap();
    let changed = project(&[("load", "x = 2\n"), ("clean", "y = 2\n")]);
    let second = store.publish(&changed, 10).unwrap();
    assert_eq!(second.uploaded, 1);
    assert_eq!(second.previous.as_deref(), Some(first.release.as_str()));
    assert_ne!(second.release, first.release);
    let (current, _) = store.current().unwrap();
    assert_eq!(current.unwrap().id, second.release);
    assert_eq!(store.fetch(&second.release).unwrap(), changed);
}

#[test]
fn a_release_with_no_change_uploads_nothing_and_reads_two_objects() {
    let gcs = emulator();
    let files = project(&(0..200).map(|_| ("b", "")).collect::<Vec<_>>());
    let mut many = files.clone();
    for i in 0..200 {
        many.insert(
            format!("transformers/t{i}.py"),
            format!("t = {i}\n").into_bytes(),
        );
    }
    let first = store(&gcs).publish(&many, 10).unwrap();
    let before = objects(&gcs, "");
    let again = store(&gcs);
    let published = again.publish(&many, 10).unwrap();
    assert_eq!(published.uploaded, 0);
    assert_eq!(published.release, first.release);
    // The pointer and one manifest, whatever the number of files.
    assert_eq!(again.requests(), 2);
    assert_eq!(objects(&gcs, ""), before);
}

#[test]
fn rollback_points_back_at_the_previous_release_and_its_files() {
    let gcs = emulator();
    let store = store(&gcs);
    let old_files = project(&[("load", "x = 1\n")]);
    let old = store.publish(&old_files, 10).unwrap();
    let new = store.publish(&project(&[("load", "x = 2\n")]), 10).unwrap();
    let (target, current, generation) = store.rollback_target(None).unwrap();
    assert_eq!(target.id, old.release);
    assert_eq!(current.unwrap().id, new.release);
    store.roll_back(&target, generation).unwrap();
    let (pointed, _) = store.current().unwrap();
    let pointed = pointed.unwrap();
    assert_eq!(pointed.id, old.release);
    assert_eq!(store.fetch(&pointed.id).unwrap(), old_files);
    // A named release, and one that is not there.
    let (target, _, generation) = store.rollback_target(Some(&new.release)).unwrap();
    store.roll_back(&target, generation).unwrap();
    assert_eq!(store.current().unwrap().0.unwrap().id, new.release);
    let missing = store.rollback_target(Some("20200101T000000000Z-00000000"));
    assert!(missing.unwrap_err().to_string().contains("no release"));
    assert!(store.rollback_target(Some("../state")).is_err());
}

#[test]
fn a_pointer_switched_by_someone_else_is_not_overwritten() {
    let gcs = emulator();
    let store = store(&gcs);
    store.publish(&project(&[("load", "x = 1\n")]), 10).unwrap();
    store.publish(&project(&[("load", "x = 2\n")]), 10).unwrap();
    let (target, _, generation) = store.rollback_target(None).unwrap();
    // Another weir publishes in between.
    store.publish(&project(&[("load", "x = 3\n")]), 10).unwrap();
    let err = store
        .roll_back(&target, generation)
        .unwrap_err()
        .to_string();
    assert!(err.contains("someone else switched"), "{err}");
}

#[test]
fn releases_beyond_the_number_to_keep_are_removed_with_their_objects() {
    let gcs = emulator();
    let store = store(&gcs);
    let mut ids = Vec::new();
    for i in 0..5 {
        let files = project(&[("load", &format!("x = {i}\n"))]);
        ids.push(store.publish(&files, 3).unwrap().release);
    }
    assert_eq!(store.releases().unwrap(), ids[2..].to_vec());
    // Two shared files and one block per kept release.
    assert_eq!(objects(&gcs, "objects/").len(), 2 + 3);
    for id in &ids[2..] {
        store.fetch(id).unwrap();
    }
}

/// The engine with the release provider only, its state in a temp dir.
fn release_engine(config: weir_provider_sdk::ProviderConfig) -> super::Engine {
    let dir = tempfile::tempdir().unwrap();
    let backend = super::LocalBackend::open(dir.path(), &super::default_path()).unwrap();
    let providers = std::sync::Arc::new(
        super::Providers::new(vec![
            std::sync::Arc::new(weir::release::ReleaseProvider::default())
                as std::sync::Arc<dyn weir_provider_sdk::Provider>,
        ])
        .with_config(config),
    );
    super::Engine {
        _dir: dir,
        backend,
        providers,
    }
}

/// The quickstart's bucket in the emulator, and the release lowered from `dir`.
fn quickstart_release(
    gcs: &FakeGcs,
    dir: &std::path::Path,
) -> (
    Vec<weir::lower::ResourceInstance>,
    weir_provider_sdk::ProviderConfig,
) {
    super::lowered(
        dir,
        &[("STORAGE_EMULATOR_HOST", &gcs.url)],
        &[weir::release::TYPE],
    )
}

const QUICKSTART_BUCKET: &str = "acme-data-prod-mage";

fn quickstart_store(gcs: &FakeGcs) -> ReleaseStore {
    let url = gcs.url.clone();
    ReleaseStore::open(QUICKSTART_BUCKET, "code", &move |name| {
        (name == "STORAGE_EMULATOR_HOST").then(|| url.clone())
    })
    .unwrap()
}

fn quickstart_objects(gcs: &FakeGcs) -> Vec<String> {
    let (status, body) = http(
        &gcs.url,
        "GET",
        &format!("/storage/v1/b/{QUICKSTART_BUCKET}/o?prefix=code%2Fobjects%2F"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
    listing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn applying_the_quickstart_publishes_its_project_and_a_block_change_uploads_one_file() {
    let gcs = FakeGcs::start();
    gcs.create_bucket(QUICKSTART_BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let dir = super::quickstart(tmp.path(), |t| t);
    let (desired, config) = quickstart_release(&gcs, &dir);
    assert_eq!(desired.len(), 1);
    let engine = release_engine(config);

    let plan = engine.plan(&desired);
    assert_eq!(
        super::actions(&plan),
        [("weir_release.prod".to_string(), weir::plan::Action::Create)]
    );
    let outcome = engine.apply(&plan);
    assert!(outcome.success(), "{:?}", outcome.failed);
    let state = engine.state();
    let recorded = &state.resources["weir_release.prod"].attributes;
    assert!(
        recorded.get("content").is_none(),
        "state keeps no file content"
    );
    let store = quickstart_store(&gcs);
    let (current, _) = store.current().unwrap();
    let current = current.unwrap();
    assert_eq!(recorded["release"], current.id.as_str());
    let contents = desired[0].attributes["content"].as_object().unwrap();
    let published = store.fetch(&current.id).unwrap();
    assert_eq!(published.len(), contents.len());
    for (path, text) in contents {
        assert_eq!(published[path], text.as_str().unwrap().as_bytes(), "{path}");
    }
    let objects = quickstart_objects(&gcs);

    // Nothing changed: nothing to do, nothing uploaded.
    let again = engine.plan(&desired);
    assert!(
        super::actions(&again).is_empty(),
        "{:?}",
        super::actions(&again)
    );
    let outcome = engine.apply(&again);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(quickstart_objects(&gcs), objects);
    assert_eq!(store.current().unwrap().0.unwrap().id, current.id);

    // One block's code changes: the plan carries that file alone, apply uploads one object.
    let block = dir.join("blocks/load_orders.py");
    let code = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, format!("{code}\n# changed\n")).unwrap();
    let (desired, _) = quickstart_release(&gcs, &dir);
    let plan = engine.plan(&desired);
    assert_eq!(
        super::actions(&plan),
        [("weir_release.prod".to_string(), weir::plan::Action::Update)]
    );
    let change = plan
        .changes
        .iter()
        .find(|c| c.address == "weir_release.prod")
        .unwrap();
    let planned = change.after.as_ref().unwrap()["content"]
        .as_object()
        .unwrap();
    assert_eq!(
        planned.keys().collect::<Vec<_>>(),
        ["data_loaders/load_orders.py"]
    );
    // Shown as a diff: the old text read by its hash, for that file only.
    let before = change.before.as_ref().unwrap()["content"]
        .as_object()
        .unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before["data_loaders/load_orders.py"], code.as_str());
    let shown = weir::render::render(&plan, weir::render::Format::Text, false);
    assert!(shown.contains("+ # changed"), "{shown}");
    let outcome = engine.apply(&plan);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(quickstart_objects(&gcs).len(), objects.len() + 1);
    let (now, _) = store.current().unwrap();
    let now = now.unwrap();
    assert_ne!(now.id, current.id);
    assert_eq!(
        store.fetch(&now.id).unwrap()["data_loaders/load_orders.py"],
        format!("{code}\n# changed\n").as_bytes()
    );
}

#[test]
fn the_container_fetch_program_gets_exactly_the_pointed_release() {
    let gcs = emulator();
    let store = store(&gcs);
    let old = project(&[("load", "x = 1\n"), ("clean", "y = 2\n")]);
    store.publish(&old, 10).unwrap();
    let files = project(&[("load", "x = 2\n")]);
    store.publish(&files, 10).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("default_repo");
    // A file of an earlier container run is not kept.
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("stale.py"), "old").unwrap();
    let program = weir::lower::FETCH_RELEASE;
    let output = std::process::Command::new("python3")
        .args(["-c", program])
        .env("WEIR_RELEASE_BUCKET", BUCKET)
        .env("WEIR_RELEASE_PREFIX", PREFIX)
        .env("WEIR_RELEASE_DIR", &dest)
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        // The program then runs the image's entry point with its arguments: here, `true`.
        .env("WEIR_IMAGE_ENTRYPOINT", "true")
        .output()
        .expect("python3 runs (the Mage image has it; so must the test machine)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut fetched = BTreeMap::new();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(&dest)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                fetched.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    assert_eq!(fetched, files);
}

/// The release provider with its state where `weir` run in `dir` reads it.
fn engine_in(dir: &std::path::Path, config: weir_provider_sdk::ProviderConfig) -> super::Engine {
    let mut engine = release_engine(config);
    engine.backend = super::LocalBackend::open(dir, &super::default_path()).unwrap();
    engine
}

fn weir_rollback(
    gcs: &FakeGcs,
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("weir"))
        .arg("rollback")
        .args(args)
        .current_dir(dir)
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap()
}

#[test]
fn weir_rollback_shows_a_plan_asks_and_points_back_at_the_previous_release() {
    let gcs = FakeGcs::start();
    gcs.create_bucket(QUICKSTART_BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let dir = super::quickstart(tmp.path(), |t| t);
    let (desired, config) = quickstart_release(&gcs, &dir);
    let engine = engine_in(&dir, config);
    assert!(engine.apply(&engine.plan(&desired)).success());
    let store = quickstart_store(&gcs);
    let first = store.current().unwrap().0.unwrap();
    let block = dir.join("blocks/load_orders.py");
    let code = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, format!("{code}\n# changed\n")).unwrap();
    let (desired, _) = quickstart_release(&gcs, &dir);
    assert!(engine.apply(&engine.plan(&desired)).success());
    let second = store.current().unwrap().0.unwrap();
    assert_ne!(first.id, second.id);

    // Shown as a plan and asked: anything but `yes` changes nothing.
    let refused = weir_rollback(&gcs, &dir, &[], "no\n");
    let shown = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success());
    assert!(
        shown.contains(&format!("release: {} -> {}", second.id, first.id)),
        "{shown}"
    );
    assert!(shown.contains("~ data_loaders/load_orders.py"), "{shown}");
    assert!(
        shown.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{shown}"
    );
    assert_eq!(store.current().unwrap().0.unwrap().id, second.id);

    let done = weir_rollback(&gcs, &dir, &["--auto-approve"], "");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(store.current().unwrap().0.unwrap().id, first.id);
    let recorded = &engine.state().resources["weir_release.prod"].attributes;
    assert_eq!(recorded["release"], first.id.as_str());
    // A plan now shows the configuration's release to publish again.
    assert_eq!(
        super::actions(&engine.plan(&desired)),
        [("weir_release.prod".to_string(), weir::plan::Action::Update)]
    );

    // A named release, and names that are not releases.
    let named = weir_rollback(&gcs, &dir, &[&second.id, "--auto-approve"], "");
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    assert_eq!(store.current().unwrap().0.unwrap().id, second.id);
    let bad = weir_rollback(&gcs, &dir, &["../state", "--auto-approve"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a release id"));
    assert_eq!(store.current().unwrap().0.unwrap().id, second.id);
}
