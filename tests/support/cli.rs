//! Driving the built `weir` binary from tests, the way a user does.
#![allow(dead_code)] // Each test file uses its own subset.

use assert_cmd::Command;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// `weir -C dir --no-color …`, with no `CI` (so progress is plain lines because stderr is piped).
pub fn weir(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("weir").unwrap();
    cmd.arg("-C")
        .arg(dir)
        .arg("--no-color")
        .env("NO_COLOR", "1")
        .env_remove("CI");
    cmd
}

/// Runs `cmd`, which must succeed (else the test fails with what it printed); what it printed,
/// stdout then stderr.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir failed:\n{printed}");
    printed
}

pub fn apply(dir: &Path) {
    succeed(weir(dir).args(["apply", "--auto-approve"]));
}

/// The exit code of `weir plan --detailed-exitcode` and everything it printed.
pub fn plan_exit(dir: &Path) -> (i32, String) {
    let out = weir(dir)
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A copy of a configuration directory, without what weir or Mage wrote into it.
pub fn copy_config(from: &Path, tmp: &Path) -> PathBuf {
    let dir = tmp.join("config");
    copy_dir(from, &dir);
    dir
}

/// A copy of `from` at `to`, without what weir or Mage wrote into it (`mage_project`, `.weir`,
/// `out`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "mage_project" || name == ".weir" || name == "out" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A configuration of `n` pipelines (a loader, and with `full` a transformer and a schedule
/// each), big enough that an apply takes a moment.
pub fn many_pipelines(n: usize, full: bool) -> String {
    let mut hcl = String::from(
        "deployment \"big\" {\n  target      = \"local\"\n  project_dir = \"mage_project\"\n  image       = \"mageai/mageai:0.9.80\"\n}\n",
    );
    for i in 0..n {
        hcl.push_str(&format!(
            "pipeline \"p{i}\" {{\n  block \"load_{i}\" {{\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return {i}\\n\"\n  }}\n"
        ));
        if full {
            hcl.push_str(&format!(
                "  block \"t_{i}\" {{\n    type     = \"transformer\"\n    upstream = [block.load_{i}]\n    code     = \"@transformer\\ndef t(x, *a, **k):\\n    return x + 1\\n\"\n  }}\n}}\nschedule \"s{i}\" {{\n  pipeline = pipeline.p{i}\n  cron     = \"0 3 * * *\"\n}}\n"
            ));
        } else {
            hcl.push_str("}\n");
        }
    }
    hcl
}

/// Starts `weir apply --auto-approve` and returns once `created` operations have finished,
/// with the process still running and the rest of its stderr to read.
pub fn start_apply(
    dir: &Path,
    parallelism: usize,
    created: usize,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("weir"))
        .args([
            "--no-color",
            "apply",
            "--auto-approve",
            "--parallelism",
            &parallelism.to_string(),
            "-C",
        ])
        .arg(dir)
        .env_remove("CI")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut finished = 0;
    let mut line = String::new();
    while finished < created && reader.read_line(&mut line).unwrap() > 0 {
        if line.contains(": created") {
            finished += 1;
        }
        line.clear();
    }
    assert_eq!(finished, created, "the apply should have reported progress");
    (child, reader)
}

/// Sends `signal` (`"INT"` as Ctrl-C does, `"TERM"` as CI does on cancel) to an apply of 300
/// resources once 20 are done, and checks that it stops the way weir promises: what is in flight
/// finishes, state is saved, the lock released, "Interrupted", exit 128 + the signal's number
/// (130, 143), as a shell reports a process ended by it; then that a second apply
/// completes the work and a plan finds nothing left.
pub fn interrupt_apply_then_converge(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("main.hcl"), many_pipelines(150, false)).unwrap();
    let (mut child, mut reader) = start_apply(dir, 1, 20);
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let exit = child.wait().unwrap();
    let number = match signal {
        "INT" => 2,
        "TERM" => 15,
        other => panic!("no exit code known for SIG{other}"),
    };
    assert_eq!(
        exit.code(),
        Some(128 + number),
        "an apply stopped by SIG{signal} exits 128 + {number} (not killed by the signal):\n{rest}"
    );
    assert!(rest.contains("Interrupted"), "{rest}");
    // State was saved (the journal folded into state.json) and the lock released.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".weir/state.json")).unwrap())
            .unwrap();
    let recorded = state["resources"].as_object().unwrap().len();
    assert!((20..301).contains(&recorded), "{recorded}");
    assert!(!dir.join(".weir/state.json.lock.info").exists());
    apply(dir);
    assert_eq!(plan_exit(dir).0, 0);
}
