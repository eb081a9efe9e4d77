//! Code releases of a gcp deployment against a real `fake-gcs-server`: content-addressed
//! objects, one manifest per release, the pointer switched last, rollback and pruning.

use super::cloud::{FakeGcs, http};
use std::collections::BTreeMap;
use weir::release::ReleaseStore;

const BUCKET: &str = "mage-releases";
const PREFIX: &str = "weir/releases-test";

fn emulator() -> FakeGcs {
    let gcs = FakeGcs::start();
    let (status, body) = http(
        &gcs.url,
        "POST",
        "/storage/v1/b?project=test",
        None,
        Some(&format!(r#"{{"name":"{BUCKET}"}}"#)),
    )
    .expect("the emulator answers");
    assert_eq!(status, 200, "create bucket: {body}");
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
