//! `weir plan` of the quickstart (`target = "gcp"`) end to end: with no state and no
//! credentials it shows every Google resource, in every format, with no secret in any of them;
//! applying it is refused clearly, since this build cannot call Google Cloud.

#[path = "support/cli.rs"]
mod cli;

use cli::weir;
use std::path::{Path, PathBuf};

/// A copy of examples/quickstart in a temp dir.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        tmp.path(),
    );
    (tmp, dir)
}

/// `weir plan` with no credentials to find: no Google variable, no gcloud configuration, no
/// metadata server.
fn plan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = weir(dir)
        .arg("plan")
        .args(args)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("WEIR_GOOGLE_ENDPOINT")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env_remove("CLOUDSDK_CONFIG")
        .env("HOME", &home)
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The quickstart's default Slack webhook (a sensitive variable).
const WEBHOOK: &str = "https://hooks.slack.com/services/T000/B000/XXXX";

/// Every Google resource type the quickstart needs.
const TYPES: &[&str] = &[
    "google_project_service",
    "google_service_account",
    "google_project_iam_member",
    "google_service_account_iam_member",
    "google_secret_manager_secret",
    "google_secret_manager_secret_version",
    "google_secret_manager_secret_iam_member",
    "google_storage_bucket",
    "google_storage_bucket_iam_member",
    "google_sql_database_instance",
    "google_sql_database",
    "google_sql_user",
    "google_cloud_run_v2_service",
    "google_cloud_run_v2_job",
    "google_compute_instance",
];

#[test]
fn quickstart_plan_shows_every_google_resource_without_credentials() {
    let (_tmp, dir) = quickstart();
    let (code, out, err) = plan(&dir, &["--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}{err}");
    for t in TYPES {
        assert!(
            out.contains(&format!("resource \"{t}\"")),
            "no {t} in:\n{out}"
        );
    }
    assert!(
        out.contains("uri") && out.contains("(known after apply)"),
        "{out}"
    );
    assert!(out.contains("estimated idle cost: $"), "{out}");
    assert!(
        out.contains("+ webserver_url = (known after apply)"),
        "{out}"
    );
    assert!(!err.contains("cannot plan"), "{err}");
    assert!(err.contains("cannot apply it yet"), "{err}");
    assert!(!out.contains(WEBHOOK) && !err.contains(WEBHOOK));
    assert!(!out.contains("hooks.slack.com"), "{out}");
}

#[test]
fn quickstart_plan_in_json_markdown_and_a_saved_plan_holds_no_secret() {
    let (_tmp, dir) = quickstart();
    let (code, out, err) = plan(&dir, &["--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let changes = json["resource_changes"].as_array().unwrap();
    for t in TYPES {
        assert!(changes.iter().any(|c| c["type"] == *t), "no {t}");
    }
    // The web server's URL and the generated password are known only after apply.
    let change = |address: &str| {
        changes
            .iter()
            .find(|c| c["address"] == address)
            .unwrap_or_else(|| panic!("no {address}"))["change"]
            .clone()
    };
    assert_eq!(
        change("google_cloud_run_v2_service.webserver")["after_unknown"]["uri"],
        true
    );
    assert_eq!(
        change("google_secret_manager_secret_version.db_password")["after_unknown"]["payload"]["data"],
        true
    );
    assert!(!out.contains("hooks.slack.com"), "{out}");

    let (code, out, err) = plan(&dir, &["--format", "markdown"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("google_cloud_run_v2_service.webserver"),
        "{out}"
    );
    assert!(!out.contains("hooks.slack.com"), "{out}");

    let saved = dir.join("plan.bin");
    let (code, out, err) = plan(&dir, &["--out", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let saved = std::fs::read(saved).unwrap();
    let saved = String::from_utf8_lossy(&saved);
    assert!(saved.contains("google_compute_instance"));
    assert!(!saved.contains("hooks.slack.com"));
}

#[test]
fn applying_a_gcp_deployment_is_refused_as_not_yet_possible() {
    let (_tmp, dir) = quickstart();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .env("HOME", dir.join("home"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot call Google Cloud yet"), "{text}");
    assert!(!text.contains("hooks.slack.com"), "{text}");
}
