//! `lifecycle { prevent_destroy }` on a `local` deployment, driving the built binary: it
//! protects the Mage project (`mage_project.<deployment>`) from `weir destroy`, from a
//! replacement and from the removal of its configuration, and setting it to `false` then
//! applying lets each of them through.

#[path = "support/cli.rs"]
mod cli;

use cli::{apply, plan_exit, weir};
use std::path::{Path, PathBuf};

const DEPLOYMENT: &str = r#"deployment "laptop" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}"#;

/// A copy of examples/local whose deployment has `lifecycle { prevent_destroy = … }`.
fn example(prevent_destroy: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local"),
        tmp.path(),
    );
    set_deployment(
        &dir,
        &deployment("laptop", "mage_project", Some(prevent_destroy)),
    );
    (tmp, dir)
}

fn deployment(name: &str, project_dir: &str, prevent_destroy: Option<bool>) -> String {
    let lifecycle = prevent_destroy
        .map(|p| format!("\n  lifecycle {{\n    prevent_destroy = {p}\n  }}"))
        .unwrap_or_default();
    DEPLOYMENT
        .replace("\"laptop\"", &format!("\"{name}\""))
        .replace("\"mage_project\"", &format!("\"{project_dir}\""))
        .replace("\n}", &format!("{lifecycle}\n}}"))
}

fn set_deployment(dir: &Path, block: &str) {
    let main = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    assert!(main.contains(DEPLOYMENT), "examples/local changed:\n{main}");
    let main = main.replace(DEPLOYMENT, block);
    // Later edits replace the block written here.
    std::fs::write(dir.join("main.hcl"), main).unwrap();
    std::fs::write(dir.join(".deployment"), block).unwrap();
}

fn change_deployment(dir: &Path, block: &str) {
    let main = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    let old = std::fs::read_to_string(dir.join(".deployment")).unwrap();
    std::fs::write(dir.join("main.hcl"), main.replace(&old, block)).unwrap();
    std::fs::write(dir.join(".deployment"), block).unwrap();
}

/// Runs weir with `args`: (success, stdout and stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = weir(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn assert_refused_naming_the_project(ok: bool, out: &str, what: &str) {
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("mage_project.laptop would be {what}")),
        "{out}"
    );
    assert!(out.contains("prevent_destroy = false"), "{out}");
    assert!(out.contains("weir apply"), "{out}");
}

#[test]
fn destroy_keeps_a_protected_project_and_says_so() {
    let (_tmp, dir) = example(true);
    apply(&dir);
    let (ok, out) = run(&dir, &["plan", "--destroy"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "kept, protected by `lifecycle { prevent_destroy = true }`: mage_project.laptop"
        ),
        "{out}"
    );
    assert!(out.contains("prevent_destroy = false"), "{out}");
    assert!(
        !out.contains("mage_project.laptop will be destroyed"),
        "{out}"
    );
    let (ok, out) = run(&dir, &["destroy", "--auto-approve"]);
    assert!(ok, "{out}");
    assert!(out.contains("kept, protected by"), "{out}");
    assert!(dir.join("mage_project/metadata.yaml").is_file());
    let state = std::fs::read_to_string(dir.join(".weir/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let left: Vec<&String> = state["resources"].as_object().unwrap().keys().collect();
    assert_eq!(left, vec!["mage_project.laptop"], "{state}");
    // Nothing else is left to destroy, and the project stays protected.
    let (ok, out) = run(&dir, &["destroy", "--auto-approve"]);
    assert!(ok, "{out}");
    assert!(dir.join("mage_project/metadata.yaml").is_file());
}

#[test]
fn replacing_a_protected_project_is_refused() {
    let (_tmp, dir) = example(true);
    apply(&dir);
    // `project_dir` cannot change in place.
    change_deployment(&dir, &deployment("laptop", "elsewhere", Some(true)));
    let (ok, out) = run(&dir, &["plan"]);
    assert_refused_naming_the_project(ok, &out, "replaced");
    change_deployment(&dir, &deployment("laptop", "mage_project", Some(true)));
    let (ok, out) = run(&dir, &["plan", "--replace", "mage_project.laptop"]);
    assert_refused_naming_the_project(ok, &out, "replaced");
    assert!(dir.join("mage_project/metadata.yaml").is_file());
}

#[test]
fn removing_a_protected_project_from_the_configuration_is_refused() {
    let (_tmp, dir) = example(true);
    apply(&dir);
    // Renamed, without a lifecycle block: `mage_project.laptop` is no longer configured, and
    // what state recorded still protects it.
    change_deployment(&dir, &deployment("desk", "desk_project", None));
    let (ok, out) = run(&dir, &["plan"]);
    assert_refused_naming_the_project(ok, &out, "destroyed");
    let (ok, out) = run(&dir, &["apply", "--auto-approve"]);
    assert_refused_naming_the_project(ok, &out, "destroyed");
    assert!(dir.join("mage_project/metadata.yaml").is_file());
}

#[test]
fn prevent_destroy_false_then_apply_lets_destroy_through() {
    let (_tmp, dir) = example(true);
    apply(&dir);
    change_deployment(&dir, &deployment("laptop", "mage_project", Some(false)));
    // Nothing but the lifecycle changes: a change of state only, shown and applied.
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("mage_project.laptop: prevent_destroy changes from true to false"),
        "{out}"
    );
    apply(&dir);
    let state = std::fs::read_to_string(dir.join(".weir/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let project = &state["resources"]["mage_project.laptop"];
    assert!(project.is_object(), "{state}");
    assert!(
        project["private"].get("prevent_destroy").is_none(),
        "{state}"
    );
    let (code, out) = plan_exit(&dir);
    assert_eq!(code, 0, "{out}");

    // The configuration may now go, the recorded protection with it.
    change_deployment(&dir, &deployment("laptop", "mage_project", None));
    let (ok, out) = run(&dir, &["destroy", "--auto-approve"]);
    assert!(ok, "{out}");
    assert!(out.contains("Destroy complete!"), "{out}");
    assert!(!dir.join("mage_project/metadata.yaml").exists());
}
