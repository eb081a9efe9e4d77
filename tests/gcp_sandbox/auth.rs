//! Authentication to Google end to end, through the engine: a plan with no state needs no
//! credentials, an apply that needs them and finds none stops naming every place it looked, and
//! calls to the sandbox never look for any.

use super::*;

/// A `host:port` on 127.0.0.1 where nothing listens.
fn nobody() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn applying_with_no_credentials_anywhere_stops_naming_every_place_tried_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let metadata = nobody();
    let (desired, config) = lowered(
        &dir,
        &[
            ("HOME", home.to_str().unwrap()),
            ("GCE_METADATA_HOST", &metadata),
        ],
        &[JOB],
    );
    let engine = Engine::new(config);
    // No state: the plan calls nothing, so it needs no credentials.
    let plan = engine.plan(&desired);
    assert_eq!(actions(&plan).len(), 2, "{:?}", actions(&plan));

    let outcome = engine.apply(&plan);
    assert!(outcome.done.is_empty(), "{:?}", outcome.done);
    assert_eq!(outcome.failed.len(), 2, "{:?}", outcome.failed);
    let gcloud_file = home.join(".config/gcloud/application_default_credentials.json");
    for (address, _, error) in &outcome.failed {
        let places = [
            "no Google credentials found".to_owned(),
            "1. GOOGLE_APPLICATION_CREDENTIALS: not set".to_owned(),
            format!(
                "2. gcloud's application default credentials: {} does not exist",
                gcloud_file.display()
            ),
            format!("3. the metadata server of Google Cloud: http://{metadata} did not answer"),
            "gcloud auth application-default login".to_owned(),
            "google-github-actions/auth".to_owned(),
        ];
        for place in places {
            assert!(error.contains(&place), "{address}: no `{place}` in {error}");
        }
    }
}

#[test]
fn calls_to_the_sandbox_never_look_for_credentials_not_even_a_named_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(None, Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    // A credentials file that would stop any lookup at once.
    let broken = tmp.path().join("credentials.json");
    std::fs::write(&broken, "not a credentials file").unwrap();
    let (desired, config) = lowered(
        &dir,
        &[
            ("WEIR_GOOGLE_ENDPOINT", &sandbox.url()),
            ("GOOGLE_APPLICATION_CREDENTIALS", broken.to_str().unwrap()),
        ],
        &[JOB],
    );
    let engine = Engine::new(config);
    engine.converge(&desired, "");
}
