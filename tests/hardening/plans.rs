//! Hardening tests: see `tests/hardening.rs`. Saved plans that cannot be tampered with, the
//! state lock held from plan to apply, signals.

use crate::cli::{apply, many_pipelines, plan_exit, start_apply};

/// SIGTERM (what CI sends to cancel a job) stops an apply the way Ctrl-C does: what is in
/// flight finishes, state is saved, the lock released, a clean message, exit 1.
#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("main.hcl"), many_pipelines(150, false)).unwrap();
    let (mut child, mut reader) = start_apply(dir, 1, 20);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(
        exit.code(),
        Some(1),
        "a terminated apply exits 1 (not killed by the signal):\n{rest}"
    );
    assert!(rest.contains("Interrupted"), "{rest}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".weir/state.json")).unwrap())
            .unwrap();
    let recorded = state["resources"].as_object().unwrap().len();
    assert!((20..301).contains(&recorded), "{recorded}");
    assert!(!dir.join(".weir/state.json.lock.info").exists());
    apply(dir);
    assert_eq!(plan_exit(dir).0, 0);
}
