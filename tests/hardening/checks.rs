//! Hardening tests: see `tests/hardening.rs`. What `validate` catches before `plan` or apply
//! would, and configuration files read without following links out of the directory. The
//! checks that need no file system tricks are cases of the bad-input corpus (`tests/corpus/`).

use crate::cli;
use std::path::Path;

/// A configuration directory holding `files` (path, content).
fn config(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = tmp.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    tmp
}

/// `weir validate`: exit code and everything printed.
fn validate(dir: &Path) -> (i32, String) {
    let out = cli::weir(dir).arg("validate").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

const LOCAL: &str = r#"deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
"#;

#[test]
fn validate_warns_that_a_gcp_deployment_cannot_be_planned() {
    let dir = config(&[(
        "main.hcl",
        r#"deployment "prod" {
  target  = "gcp"
  project = "my-project-123"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "my-project-123-mage"
  }
}

pipeline "etl" {
  block "load" {
    type = "data_loader"
    code = "@data_loader\ndef load(*a, **k):\n    return 1\n"
  }
}
"#,
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "a warning is not an error:\n{out}");
    assert!(
        out.contains("main.hcl:2:13: warning: this build of weir can validate a `gcp` deployment, but cannot plan or apply it yet"),
        "{out}"
    );
    // And plan refuses it, as the warning says.
    let (code, out) = cli::plan_exit(dir.path());
    assert_eq!(code, 1, "{out}");
}
