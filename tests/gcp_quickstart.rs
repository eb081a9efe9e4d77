//! The whole quickstart on the `gcp` target, applied by the `weir` binary as a user runs it,
//! against the sandbox (every Google API but Cloud Storage) and a real `fake-gcs-server`
//! behind the sandbox's storage front, with no Google account and no credentials:
//! - the lifecycle: apply creates everything, a re-plan is empty, one profile's memory is an
//!   in-place update of its job only, the scheduler's zone is a replacement, destroy removes
//!   everything but what `prevent_destroy` protects and says so;
//! - faults: throttling and outages on a fifth of the calls, an operation that fails, and
//!   `SIGKILL` at random points, after which a re-run converges with no orphan and no duplicate;
//! - no secret in any output, plan format, plan file or state show;
//! - every exchange recorded is valid against Google's discovery documents.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/gcp.rs"]
mod gcp;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gcp::Cloud;
use serde_json::Value;
use weir_sandbox::run_jobs::Behaviour;

const PROJECT: &str = "acme-data-prod";
const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";
/// The quickstart's default Slack webhook (a sensitive variable).
const WEBHOOK: &str = "https://hooks.slack.com/services/T000/B000/XXXX";

/// A copy of examples/quickstart in a temp dir.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        tmp.path(),
    );
    (tmp, dir)
}

/// Runs weir against `cloud`: the exit code and everything it printed.
fn run(cloud: &Cloud, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = cloud.weir(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn apply(cloud: &Cloud, dir: &Path) -> String {
    let (code, out) = run(cloud, dir, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "apply failed:\n{out}");
    out
}

/// The plan's changes other than no-ops, as (address, actions), from `plan --format json`.
fn changes(cloud: &Cloud, dir: &Path) -> Vec<(String, Vec<String>)> {
    let out = cloud
        .weir(dir)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut changes: Vec<(String, Vec<String>)> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let actions = c["change"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            (c["address"].as_str().unwrap().to_owned(), actions)
        })
        .filter(|(_, actions): &(String, Vec<String>)| actions != &["no-op"])
        .collect();
    changes.sort();
    changes
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// What the quickstart makes, by kind and name, in the sandbox.
fn everything(zone: &str) -> BTreeSet<String> {
    [
        "job:mage-prod-standard".to_owned(),
        "job:mage-prod-highmem".to_owned(),
        "service:mage-prod-web".to_owned(),
        "vm:mage-prod-scheduler".to_owned(),
        "sql:mage-prod-db".to_owned(),
        "secret:mage-prod-db-password".to_owned(),
        "secret:mage-prod-db-url".to_owned(),
        "secret:mage-prod-notification-data-alerts".to_owned(),
        "secret:mage-prod-notification-report-ready".to_owned(),
        format!("sa:mage-prod-web@{PROJECT}.iam.gserviceaccount.com"),
        format!("sa:mage-prod-sched@{PROJECT}.iam.gserviceaccount.com"),
        format!("sa:mage-prod-job@{PROJECT}.iam.gserviceaccount.com"),
        "bucket:acme-data-prod-mage".to_owned(),
    ]
    .into_iter()
    .map(|k| {
        if zone != ZONE && k.starts_with("vm:") {
            format!("{k}@{zone}")
        } else {
            k
        }
    })
    .collect()
}

/// The sandbox's objects, with the VM's zone told when it is not the quickstart's.
fn inventory(cloud: &Cloud) -> BTreeSet<String> {
    let mut found = cloud.inventory(PROJECT, REGION, ZONE);
    let other = format!("{REGION}-b");
    for vm in cloud.inventory_vms(PROJECT, &other) {
        found.insert(format!("{vm}@{other}"));
    }
    found
}

/// The database password weir generated, as the sandbox's Secret Manager holds it.
fn database_password(cloud: &Cloud) -> String {
    let version = cloud.get(
        "secretmanager.googleapis.com",
        &format!("/v1/projects/{PROJECT}/secrets/mage-prod-db-password/versions/latest:access"),
    );
    let data = version["payload"]["data"].as_str().unwrap();
    let bytes = base64_decode(data);
    String::from_utf8(bytes).unwrap()
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[test]
fn the_quickstart_is_created_updated_in_place_replaced_and_destroyed_but_for_what_is_protected() {
    let cloud = Cloud::start(Behaviour::default());
    let (_tmp, dir) = quickstart();

    let out = apply(&cloud, &dir);
    assert!(out.contains("Apply complete! Resources: 46 added"), "{out}");
    assert_eq!(inventory(&cloud), everything(ZONE));
    let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a plan right after apply is empty:\n{out}");
    let (code, out) = run(&cloud, &dir, &["output", "webserver_url"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("https://mage-prod-web-"), "{out}");

    // One profile's memory: that job, in place.
    edit(
        &dir,
        "profiles.hcl",
        "memory      = \"2Gi\"",
        "memory      = \"4Gi\"",
    );
    assert_eq!(
        changes(&cloud, &dir),
        vec![(
            "google_cloud_run_v2_job.standard".to_owned(),
            vec!["update".to_owned()]
        )]
    );
    apply(&cloud, &dir);
    let job = cloud.get(
        "run.googleapis.com",
        &format!("/v2/projects/{PROJECT}/locations/{REGION}/jobs/mage-prod-standard"),
    );
    assert_eq!(
        job["template"]["template"]["containers"][0]["resources"]["limits"]["memory"],
        "4Gi"
    );

    // The scheduler's zone: a new VM.
    edit(
        &dir,
        "main.hcl",
        "zone         = \"${var.region}-a\"",
        "zone         = \"${var.region}-b\"",
    );
    let planned = changes(&cloud, &dir);
    assert!(
        planned.contains(&(
            "google_compute_instance.scheduler".to_owned(),
            vec!["delete".to_owned(), "create".to_owned()]
        )),
        "{planned:?}"
    );
    assert!(
        planned
            .iter()
            .all(|(address, _)| address == "google_compute_instance.scheduler"),
        "only the VM changes: {planned:?}"
    );
    apply(&cloud, &dir);
    let moved = format!("{REGION}-b");
    assert_eq!(inventory(&cloud), everything(&moved));
    let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");

    // Destroy: everything but the database and the bucket, and it says so.
    let (code, out) = run(&cloud, &dir, &["destroy", "--auto-approve"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kept, protected by"), "{out}");
    assert!(out.contains("google_sql_database_instance.prod"), "{out}");
    assert!(out.contains("google_storage_bucket.prod"), "{out}");
    let left = inventory(&cloud);
    assert_eq!(
        left,
        BTreeSet::from([
            "sql:mage-prod-db".to_owned(),
            "bucket:acme-data-prod-mage".to_owned()
        ])
    );
    cloud.assert_record_valid();
}

#[test]
fn no_secret_reaches_any_output_plan_file_or_state_and_containers_get_them_by_reference() {
    let cloud = Cloud::start(Behaviour::default());
    let (_tmp, dir) = quickstart();
    let mut seen = apply(&cloud, &dir);
    let password = database_password(&cloud);
    assert!(password.len() >= 16, "a generated password");

    // A change that touches the secrets' consumers, planned in every format and saved.
    edit(&dir, "main.hcl", "max_instances = 1", "max_instances = 2");
    let saved = dir.join("change.plan");
    let saved = saved.to_str().unwrap();
    for args in [
        vec!["plan"],
        vec!["plan", "--format", "json"],
        vec!["plan", "--format", "markdown"],
        vec!["plan", "--out", saved],
        vec!["show", saved],
        vec![
            "state",
            "show",
            "google_secret_manager_secret_version.db_password",
        ],
        vec!["state", "show", "google_sql_user.mage"],
        vec!["state", "list"],
        vec!["output"],
    ] {
        let (code, out) = run(&cloud, &dir, &args);
        assert_eq!(code, 0, "{args:?}: {out}");
        seen.push_str(&out);
    }
    seen.push_str(&apply(&cloud, &dir));
    for file in ["change.plan", ".weir/state.json"] {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(dir.join(file)).unwrap(),
        ));
    }
    assert!(!seen.contains(&password), "the database password was shown");
    assert!(!seen.contains(WEBHOOK), "the webhook URL was shown");
    assert!(
        !seen.contains("hooks.slack.com"),
        "the webhook URL was shown"
    );

    // The containers get them from Secret Manager, never as plain values.
    let service = cloud.get(
        "run.googleapis.com",
        &format!("/v2/projects/{PROJECT}/locations/{REGION}/services/mage-prod-web"),
    );
    let env = service["template"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    for var in [
        "MAGE_DATABASE_CONNECTION_URL",
        "WEIR_NOTIFICATION_DATA_ALERTS",
    ] {
        let e = env.iter().find(|e| e["name"] == var).unwrap();
        assert!(e.get("value").is_none(), "{var} is a plain value");
        assert!(
            e["valueSource"]["secretKeyRef"]["secret"].is_string(),
            "{e}"
        );
    }
    let everything = serde_json::to_string(&service).unwrap();
    assert!(!everything.contains(&password));
    assert!(!everything.contains("hooks.slack.com"));
    cloud.assert_record_valid();
}

#[test]
fn with_a_fifth_of_calls_throttled_or_failing_and_added_latency_apply_succeeds_every_time() {
    for seed in [1, 2] {
        let cloud = Cloud::start(Behaviour {
            unavailable_rate: 0.2,
            latency: Duration::from_millis(5),
            operation_delay: Duration::from_millis(50),
            seed,
            ..Behaviour::default()
        });
        let (_tmp, dir) = quickstart();
        let out = apply(&cloud, &dir);
        assert!(
            out.contains("Apply complete! Resources: 46 added"),
            "seed {seed}: {out}"
        );
        let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "seed {seed}: {out}");
        assert_eq!(inventory(&cloud), everything(ZONE), "seed {seed}");
        cloud.assert_record_valid();
    }
}

#[test]
fn an_operation_that_fails_stops_its_branch_the_rest_is_recorded_and_a_rerun_finishes() {
    let cloud = Cloud::start(Behaviour {
        failing_jobs: ["mage-prod-highmem".to_owned()].into(),
        ..Behaviour::default()
    });
    let (_tmp, dir) = quickstart();
    let (code, out) = run(&cloud, &dir, &["apply", "--auto-approve"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("google_cloud_run_v2_job.highmem"), "{out}");
    // Everything else was created and recorded, the failed job too (it exists).
    let (code, listed) = run(&cloud, &dir, &["state", "list"]);
    assert_eq!(code, 0, "{listed}");
    assert!(
        listed.contains("google_cloud_run_v2_service.webserver"),
        "{listed}"
    );
    assert!(
        listed.contains("google_cloud_run_v2_job.highmem"),
        "{listed}"
    );
    // The re-run finishes what is left, and then there is nothing to do.
    apply(&cloud, &dir);
    let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(inventory(&cloud), everything(ZONE));
    cloud.assert_record_valid();
}

#[test]
fn sigkill_at_random_points_of_apply_then_apply_again_converges_with_no_orphan_or_duplicate() {
    let cloud = Cloud::start(Behaviour {
        operation_delay: Duration::from_millis(150),
        latency: Duration::from_millis(5),
        ..Behaviour::default()
    });
    let (_tmp, dir) = quickstart();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..3 {
        let mut child = cloud
            .weir_process(&dir)
            .args(["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(100..1500)));
        // SIGKILL: no handler runs, nothing is flushed on the way out.
        let _ = child.kill();
        let _ = child.wait();
    }
    apply(&cloud, &dir);
    let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    // Exactly what the configuration declares exists: no duplicate, no orphan.
    assert_eq!(inventory(&cloud), everything(ZONE));
    cloud.assert_record_valid();
}

/// Issue 8's "either target": the quickstart's state in Cloud Storage (the commented-out
/// backend of its `main.hcl`), its resources in the sandbox.
#[test]
fn the_quickstart_keeps_its_state_in_a_gcs_backend() {
    let cloud = Cloud::start(Behaviour::default());
    let (_tmp, dir) = quickstart();
    cloud.storage.create_bucket("acme-weir-state");
    edit(
        &dir,
        "main.hcl",
        "  # backend \"gcs\" {\n  #   bucket = \"acme-weir-state\"\n  #   prefix = \"mage/prod\"\n  # }",
        "  backend \"gcs\" {\n    bucket = \"acme-weir-state\"\n    prefix = \"mage/prod\"\n  }",
    );

    let out = apply(&cloud, &dir);
    assert!(out.contains("Apply complete! Resources: 46 added"), "{out}");
    assert!(!dir.join(".weir/state.json").exists());
    let listed = cloud.get(None, "/storage/v1/b/acme-weir-state/o?prefix=mage/prod/");
    let names: Vec<&str> = listed["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"mage/prod/state.json"), "{names:?}");
    // Unlocked after the apply.
    assert!(!names.iter().any(|n| n.ends_with(".lock")), "{names:?}");
    let (code, out) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a plan right after apply is empty:\n{out}");
    let (code, out) = run(&cloud, &dir, &["state", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("google_compute_instance.scheduler"), "{out}");
    assert!(!out.contains(WEBHOOK), "{out}");
}
