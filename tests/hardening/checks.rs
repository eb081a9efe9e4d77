//! Hardening tests: see `tests/hardening.rs`. What `validate` catches before `plan` or apply
//! would, and configuration files read without following links out of the directory. The
//! checks that need no file system tricks are cases of the bad-input corpus (`tests/corpus/`).

use crate::cli;
use std::path::Path;
use std::time::Duration;

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

/// `weir validate`: exit code and everything printed. A hang fails the test (the process is
/// killed after a minute and has no exit code).
fn validate(dir: &Path) -> (i32, String) {
    let out = cli::weir(dir)
        .arg("validate")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
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
fn a_gcp_deployment_validates_cleanly_and_plans() {
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
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning"), "{out}");
    // And plan shows it (exit 2: changes), with no credentials.
    let (code, out) = cli::plan_exit(dir.path());
    assert_eq!(code, 2, "{out}");
}

/// A file outside the configuration directory that a link inside it could point at: it stands
/// for a credentials file of the CI machine.
const SECRET: &str = "SECRET-CREDENTIALS-OF-THE-CI-MACHINE";

fn outside_file(tmp: &Path) -> std::path::PathBuf {
    let path = tmp.join("outside").join("credentials.py");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!("@data_loader\ndef load(*a, **k):\n    return '{SECRET}'\n"),
    )
    .unwrap();
    path
}

const PIPELINE_WITH_SOURCE: &str = r#"pipeline "etl" {
  block "load" {
    type   = "data_loader"
    source = "blocks/load.py"
  }
}
"#;

/// Validate fails with `message` at `location`, and neither validate nor plan prints the
/// secret.
fn assert_refused(dir: &Path, location: &str, message: &str) {
    let (code, out) = validate(dir);
    assert_eq!(code, 1, "validate must fail:\n{out}");
    assert!(
        out.contains(&format!("{location}: error: ")) && out.contains(message),
        "expected `{location}: error: … {message}`, got:\n{out}"
    );
    assert!(!out.contains(SECRET), "validate printed the secret:\n{out}");
    let (code, out) = cli::plan_exit(dir);
    assert_eq!(code, 1, "plan must fail:\n{out}");
    assert!(!out.contains(SECRET), "plan printed the secret:\n{out}");
}

#[cfg(unix)]
#[test]
fn symlinked_block_source_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = outside_file(tmp.path());
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(dir.join("blocks")).unwrap();
    std::fs::write(dir.join("main.hcl"), LOCAL).unwrap();
    std::fs::write(dir.join("pipelines.hcl"), PIPELINE_WITH_SOURCE).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("blocks/load.py")).unwrap();
    assert_refused(
        &dir,
        "pipelines.hcl:4:14",
        "blocks/load.py` is a symbolic link",
    );
}

#[cfg(unix)]
#[test]
fn block_source_in_a_symlinked_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = outside_file(tmp.path());
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::rename(&target, target.with_file_name("load.py")).unwrap();
    std::fs::write(dir.join("main.hcl"), LOCAL).unwrap();
    std::fs::write(dir.join("pipelines.hcl"), PIPELINE_WITH_SOURCE).unwrap();
    std::os::unix::fs::symlink(target.parent().unwrap(), dir.join("blocks")).unwrap();
    assert_refused(
        &dir,
        "pipelines.hcl:4:14",
        "goes through the symbolic link `blocks`",
    );
}

#[cfg(unix)]
#[test]
fn symlinked_hcl_and_tfvars_files_are_refused() {
    for name in ["extra.hcl", "secrets.auto.tfvars"] {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("credentials");
        std::fs::write(&target, format!("token = \"{SECRET}\"\n")).unwrap();
        let dir = tmp.path().join("config");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.hcl"), LOCAL).unwrap();
        std::fs::write(
            dir.join("pipelines.hcl"),
            "pipeline \"etl\" {\n  block \"load\" {\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"\n  }\n}\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(&target, dir.join(name)).unwrap();
        let (code, out) = validate(&dir);
        assert_eq!(code, 1, "{name}: validate must fail:\n{out}");
        assert!(
            out.contains(&format!("{name}` is a symbolic link")),
            "{name}: {out}"
        );
        assert!(!out.contains(SECRET), "{name}: printed the secret:\n{out}");
    }
}

#[cfg(unix)]
#[test]
fn file_function_through_a_symlink_is_refused() {
    for call in [
        "file(\"notes/creds.txt\")",
        "templatefile(\"notes/creds.txt\", {})",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let target = outside_file(tmp.path());
        let dir = tmp.path().join("config");
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(
            dir.join("main.hcl"),
            format!("{LOCAL}\nlocals {{\n  creds = {call}\n}}\n"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&target, dir.join("notes/creds.txt")).unwrap();
        let (code, out) = validate(&dir);
        assert_eq!(code, 1, "{call}: validate must fail:\n{out}");
        assert!(
            out.contains("main.hcl:8:11: error: ") && out.contains("creds.txt is a symbolic link"),
            "{call}: {out}"
        );
        assert!(!out.contains(SECRET), "{call}: printed the secret:\n{out}");
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

#[cfg(unix)]
#[test]
fn fifo_where_a_file_is_expected_is_an_error_not_a_hang() {
    // A block's code, a configuration file, a variables file and a `file()` path.
    for (fifo, location, message) in [
        (
            "blocks/load.py",
            "pipelines.hcl:4:14",
            "blocks/load.py` is a FIFO, not a regular file",
        ),
        ("extra.hcl", "", "extra.hcl` is a FIFO, not a regular file"),
        (
            "x.auto.tfvars",
            "",
            "x.auto.tfvars` is a FIFO, not a regular file",
        ),
        (
            "notes/creds.txt",
            "main.hcl:8:11",
            "creds.txt is a FIFO, not a regular file",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("blocks")).unwrap();
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        let locals = if fifo.starts_with("notes") {
            "\nlocals {\n  creds = file(\"notes/creds.txt\")\n}\n"
        } else {
            ""
        };
        std::fs::write(dir.join("main.hcl"), format!("{LOCAL}{locals}")).unwrap();
        let pipeline = if fifo.starts_with("blocks") {
            PIPELINE_WITH_SOURCE.to_string()
        } else {
            PIPELINE_WITH_SOURCE.replace(
                "source = \"blocks/load.py\"",
                "code   = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"",
            )
        };
        std::fs::write(dir.join("pipelines.hcl"), pipeline).unwrap();
        mkfifo(&dir.join(fifo));
        let (code, out) = validate(dir);
        assert_eq!(code, 1, "{fifo}: validate must fail, not hang:\n{out}");
        // Whole files have no line to point at.
        let at = if location.is_empty() {
            "error: ".to_string()
        } else {
            format!("{location}: error: ")
        };
        assert!(
            out.contains(&at) && out.contains(message),
            "{fifo}: expected `{at}… {message}`, got:\n{out}"
        );
    }
}

#[cfg(unix)]
#[test]
fn symlinked_project_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.hcl"), LOCAL).unwrap();
    std::fs::write(
        dir.join("pipelines.hcl"),
        PIPELINE_WITH_SOURCE.replace(
            "source = \"blocks/load.py\"",
            "code   = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"",
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("mage_project")).unwrap();
    let (code, out) = validate(&dir);
    assert_eq!(code, 1, "validate must fail:\n{out}");
    assert!(
        out.contains("main.hcl:3:17: error: `project_dir` must name a directory of its own: the path is a symbolic link"),
        "{out}"
    );
    // Nothing is written through the link.
    let _ = cli::weir(&dir)
        .args(["apply", "--auto-approve"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn fmt_does_not_read_a_symlinked_hcl_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("credentials.hcl");
    // Unformatted, so `--diff` would print it.
    std::fs::write(&target, format!("token    =    \"{SECRET}\"\n")).unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.hcl"), LOCAL).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("extra.hcl")).unwrap();
    let out = cli::weir(&dir)
        .args(["fmt", "--diff"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("extra.hcl` is a symbolic link"), "{text}");
    assert!(!text.contains(SECRET), "fmt printed the secret:\n{text}");
}

#[cfg(unix)]
#[test]
fn fifo_var_file_is_read_once_and_not_waited_on_again() {
    // `--var-file` is wherever the user says, a named pipe included: weir reads it once (its
    // writer then is gone) and must not open it again.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        format!("{LOCAL}\nvariable \"team\" {{\n  type = string\n}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines.hcl"),
        PIPELINE_WITH_SOURCE.replace(
            "source = \"blocks/load.py\"",
            "code   = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"",
        ),
    )
    .unwrap();
    let fifo = tmp.path().join("vars.tfvars");
    mkfifo(&fifo);
    let writer = fifo.clone();
    // Not joined: if weir never opened the pipe, the writer would wait forever.
    std::thread::spawn(move || std::fs::write(writer, "team = \"data\"\n"));
    let out = cli::weir(&dir)
        .arg("validate")
        .arg("--var-file")
        .arg(&fifo)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "validate must not hang:\n{text}"
    );
}
