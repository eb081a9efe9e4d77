//! Hardening tests: see `tests/hardening.rs`. weir never writes, reads or deletes outside what
//! it owns: links inside the project, `project_dir` that is not a directory of its own, a
//! second configuration on the same project, a file that is not weir's, files with secrets.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

#[allow(unused_imports)]
use crate::cli;

const DEPLOYMENT: &str = r#"deployment "dev" {
  target      = "local"
  project_dir = "PROJECT_DIR"
  image       = "mageai/mageai:0.9.80"
}
"#;

const PIPELINE: &str = r#"
pipeline "orders" {
  block "load_orders" {
    type = "data_loader"
    code = "@data_loader\ndef load(*a, **k):\n    return CODE\n"
  }
}
"#;

/// A configuration directory `tmp/name` with one pipeline deployed to `project_dir`.
fn config(tmp: &Path, name: &str, project_dir: &str, code: &str) -> PathBuf {
    let dir = tmp.join(name);
    fs::create_dir_all(&dir).unwrap();
    let hcl = DEPLOYMENT.replace("PROJECT_DIR", project_dir) + &PIPELINE.replace("CODE", code);
    fs::write(dir.join("main.hcl"), hcl).unwrap();
    dir
}

/// Runs weir; returns whether it succeeded and everything it printed.
fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = cli::weir(dir).args(args).output().unwrap();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "weir {args:?} exited with {code:?}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn refused(dir: &Path, args: &[&str], naming: &Path) -> String {
    let (ok, text) = run(dir, args);
    assert!(!ok, "weir {args:?} should have refused:\n{text}");
    assert!(
        text.contains(&naming.display().to_string()),
        "weir {args:?} should name {}:\n{text}",
        naming.display()
    );
    text
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn symlinked_pipeline_folder_is_refused_by_apply_and_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "mage_project", "1");
    cli::apply(&dir);
    // The pipeline folder is replaced by a link to a folder outside the project.
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("metadata.yaml"), "precious\n").unwrap();
    fs::write(outside.join("triggers.yaml"), "precious\n").unwrap();
    let folder = dir.join("mage_project/pipelines/orders");
    fs::remove_dir_all(&folder).unwrap();
    symlink(&outside, &folder).unwrap();
    // A change to apply, so that apply would write.
    let dir = config(tmp.path(), "config", "mage_project", "2");

    let text = refused(&dir, &["apply", "--auto-approve"], &folder);
    assert!(text.contains("symbolic link"), "{text}");
    refused(&dir, &["destroy", "--auto-approve"], &folder);
    assert_eq!(read(&outside.join("metadata.yaml")), "precious\n");
    assert_eq!(read(&outside.join("triggers.yaml")), "precious\n");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 2);
}

#[test]
fn symlinked_block_file_is_not_read_into_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "mage_project", "1");
    cli::apply(&dir);
    let secret = tmp.path().join("secret.txt");
    fs::write(&secret, "hunter2-password\n").unwrap();
    let file = dir.join("mage_project/data_loaders/load_orders.py");
    fs::remove_file(&file).unwrap();
    symlink(&secret, &file).unwrap();

    let text = refused(&dir, &["plan"], &file);
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(read(&secret), "hunter2-password\n");
}

#[test]
fn project_dir_that_is_the_configuration_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "./", "1");
    let (ok, text) = run(&dir, &["apply", "--auto-approve"]);
    assert!(!ok, "{text}");
    assert!(text.contains("directory of its own"), "{text}");
    assert!(!dir.join("data_loaders").exists());
    assert!(!dir.join("pipelines").exists());
}

#[test]
fn second_configuration_on_the_same_project_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let first = config(tmp.path(), "first", "project", "1");
    cli::apply(&first);
    let state: serde_json::Value =
        serde_json::from_str(&read(&first.join(".weir/state.json"))).unwrap();
    let lineage = state["lineage"].as_str().unwrap().to_string();

    // Another configuration, with its own state, pointed at the same project. (`project_dir`
    // must be inside the configuration directory, so the other configuration is this one
    // with another state file and other code.)
    let owner_hcl = read(&first.join("main.hcl"));
    let second_hcl = r#"weir {
  backend "local" {
    path = ".weir/second.json"
  }
}

"#
    .to_string()
        + &owner_hcl.replace("return 1", "return 2");
    fs::write(first.join("main.hcl"), second_hcl).unwrap();
    let project = first.join("project");
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let text = refused(&first, args, &project);
        // One cause, reported once (not once per resource of the project).
        assert_eq!(text.matches(&lineage).count(), 1, "{text}");
    }
    let code = project.join("data_loaders/load_orders.py");
    assert!(read(&code).contains("return 1"));
    let (ok, text) = run(&first, &["destroy", "--auto-approve"]);
    assert!(
        ok,
        "nothing in the second state, so nothing to destroy: {text}"
    );
    assert!(
        code.exists(),
        "the second state's destroy deleted the first's file"
    );

    // The owner still plans without changes, and destroys.
    fs::write(first.join("main.hcl"), owner_hcl).unwrap();
    assert_eq!(cli::plan_exit(&first).0, 0);
    let (ok, text) = run(&first, &["destroy", "--auto-approve"]);
    assert!(ok, "{text}");
    assert!(!code.exists());
}

#[test]
fn existing_file_that_is_not_weirs_fails_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "mage_project", "1");
    let file = dir.join("mage_project/data_loaders/load_orders.py");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "# the user's own loader\n").unwrap();

    let text = refused(&dir, &["plan"], &file);
    assert!(text.contains("move it away"), "{text}");
    assert_eq!(read(&file), "# the user's own loader\n");
    assert!(!dir.join("mage_project/.weir").exists());
}

#[test]
fn rendered_files_holding_secrets_are_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "mage_project", "1");
    let mut hcl = read(&dir.join("main.hcl"));
    hcl.push_str(
        r#"
notification "alerts" {
  channel     = "slack"
  webhook_url = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
  on          = ["failure"]
  pipelines   = [pipeline.orders]
}

schedule "on_demand" {
  pipeline = pipeline.orders
  type     = "api"
}
"#,
    );
    fs::write(dir.join("main.hcl"), hcl).unwrap();
    cli::apply(&dir);
    let mode = |rel: &str| {
        fs::metadata(dir.join("mage_project").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("pipelines/orders/metadata.yaml"), 0o600);
    assert_eq!(mode("pipelines/orders/triggers.yaml"), 0o600);
    assert_eq!(mode("data_loaders/load_orders.py"), 0o644);
    assert_eq!(mode("metadata.yaml"), 0o644);
}

#[test]
fn damaged_manifest_journal_stops_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config(tmp.path(), "config", "mage_project", "1");
    cli::apply(&dir);
    // The claims of the apply are in the journal until the project is next opened; a journal
    // that cannot be read (not a torn last line: this one ends with a newline) is damage.
    let journal = dir.join("mage_project/.weir/manifest.journal");
    assert!(journal.exists());
    fs::write(&journal, "{\"op\": \"claim\", \"file\": 42}\n").unwrap();

    let text = refused(&dir, &["destroy", "--auto-approve"], &journal);
    assert!(text.contains("damaged"), "{text}");
    assert!(
        dir.join("mage_project/data_loaders/load_orders.py")
            .exists()
    );
}
