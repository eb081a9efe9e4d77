//! Hardening tests: see `tests/hardening.rs`. Saved plans that cannot be tampered with, the
//! state lock held from plan to apply, signals, the state's files kept inside the
//! configuration directory.

use crate::cli::{self, apply, plan_exit, weir};
use std::path::{Path, PathBuf};

/// SIGTERM (what CI sends to cancel a job) stops an apply the way Ctrl-C does: what is in
/// flight finishes, state is saved, the lock released, a clean message, exit 143.
#[test]
fn sigterm_is_handled_like_ctrl_c() {
    cli::interrupt_apply_then_converge("TERM");
}

/// A copy of examples/local in a temp dir.
fn example() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local"),
        tmp.path(),
    );
    (tmp, dir)
}

/// `weir plan --out FILE` (with extra environment), which must succeed.
fn plan_out(dir: &Path, file: &Path, env: &[(&str, &str)]) {
    let mut cmd = weir(dir);
    cmd.args(["plan", "--out"]).arg(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `weir apply FILE`: the exit code and stderr.
fn apply_file(dir: &Path, file: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = weir(dir);
    cmd.arg("apply").arg(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far an attacker goes after editing a plan file's body.
#[derive(Clone, Copy, PartialEq)]
enum Cover {
    /// Nothing: the header still holds the old checksum.
    Nothing,
    /// Recomputes the SHA-256 checksum in the header.
    Checksum,
    /// Recomputes the checksum and the seal, with the key stolen from the state file.
    ChecksumAndSeal,
}

/// Edits the body of the plan file at `file` with `edit`, then covers the tracks as `cover` says.
fn tamper(file: &Path, dir: &Path, edit: impl Fn(&str) -> String, cover: Cover) {
    use hmac::{KeyInit, Mac};
    use sha2::Digest;
    let text = std::fs::read_to_string(file).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let new_body = edit(body);
    assert_ne!(new_body, body, "the edit changed nothing");
    let mut header: serde_json::Value = serde_json::from_str(header).unwrap();
    if cover == Cover::ChecksumAndSeal {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(".weir/state.json")).unwrap())
                .unwrap();
        let key = state["key"].as_str().unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        for part in [b"seal".as_slice(), new_body.as_bytes()] {
            mac.update(part);
            mac.update(&[0]);
        }
        header["seal"] = hex(&mac.finalize().into_bytes()).into();
    }
    if cover != Cover::Nothing {
        // The checksum covers the seal and the body.
        let seal = header["seal"].as_str().unwrap().to_string();
        let summed = format!("{seal}\n{new_body}");
        header["sha256"] = hex(&sha2::Sha256::digest(summed.as_bytes())).into();
    }
    std::fs::write(
        file,
        format!("{}\n{new_body}", serde_json::to_string(&header).unwrap()),
    )
    .unwrap();
}

/// Applies a tampered copy of a fresh plan under each `Cover` and checks each is refused with
/// the expected reason, and that nothing was written.
fn refused_at_every_layer(edit: impl Fn(&str) -> String, replan_says: &[&str]) {
    let (tmp, dir) = example();
    let plan = tmp.path().join("plan.weir");
    plan_out(&dir, &plan, &[]);
    let pristine = std::fs::read(&plan).unwrap();
    // A sealed plan that does not match the re-plan is refused as stale (exit 3).
    for (cover, says, exit) in [
        (Cover::Nothing, vec!["modified or damaged", "checksum"], 1),
        (Cover::Checksum, vec!["seal"], 1),
        (Cover::ChecksumAndSeal, replan_says.to_vec(), 3),
    ] {
        std::fs::write(&plan, &pristine).unwrap();
        tamper(&plan, &dir, &edit, cover);
        let (code, stderr) = apply_file(&dir, &plan, &[]);
        assert_eq!(code, exit, "a tampered plan is refused:\n{stderr}");
        for s in says {
            assert!(stderr.contains(s), "{s:?} missing from:\n{stderr}");
        }
        assert!(
            !dir.join("mage_project").exists(),
            "a refused plan writes nothing"
        );
    }
    // The untouched plan still applies.
    std::fs::write(&plan, &pristine).unwrap();
    let (code, stderr) = apply_file(&dir, &plan, &[]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_saved_plan_with_edited_code_is_refused() {
    refused_at_every_layer(
        |body| {
            body.replace(
                "return args[0]['n'] ** 2",
                "return __import__('os').getcwd()",
            )
        },
        &["mage_block.", "`code` differs", "make a new plan"],
    );
}

#[test]
fn a_saved_plan_with_another_project_dir_is_refused() {
    refused_at_every_layer(
        |body| {
            body.replace(
                "\"project_dir\": \"mage_project\"",
                "\"project_dir\": \"/tmp\"",
            )
        },
        &["`project_dir` differs"],
    );
}

#[test]
fn a_saved_plan_with_another_block_path_is_refused() {
    refused_at_every_layer(
        |body| {
            body.replace(
                "\"path\": \"transformers/square.py\"",
                "\"path\": \"../../outside.py\"",
            )
        },
        &["`path` differs"],
    );
}

#[test]
fn a_saved_plan_that_plans_more_or_less_is_refused() {
    // An attacker who stole the key turns the plan into a destroy plan of nothing, or drops a
    // change: the re-plan does not match.
    refused_at_every_layer(
        |body| body.replacen("\"destroy\": false", "\"destroy\": true", 1),
        &["destroy"],
    );
}

#[test]
fn a_flipped_byte_in_a_saved_plan_is_refused() {
    let (tmp, dir) = example();
    let plan = tmp.path().join("plan.weir");
    plan_out(&dir, &plan, &[]);
    let pristine = std::fs::read(&plan).unwrap();
    let header_len = pristine.iter().position(|&b| b == b'\n').unwrap() + 1;
    // Every byte of the header, and bytes spread over the body (whitespace included).
    let positions: Vec<usize> = (0..header_len)
        .chain((header_len..pristine.len()).step_by(pristine.len() / 60))
        .collect();
    for &i in &positions {
        let mut flipped = pristine.clone();
        flipped[i] ^= 0x01;
        std::fs::write(&plan, &flipped).unwrap();
        let out = weir(&dir).arg("show").arg(&plan).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "byte {i} flipped: shown anyway\n{stderr}"
        );
        assert!(
            ["modified or damaged", "not a weir plan", "format version"]
                .iter()
                .any(|s| stderr.contains(s)),
            "byte {i}: {stderr}"
        );
    }
    // And apply says so too, and writes nothing.
    let mut flipped = pristine.clone();
    let i = header_len + (pristine.len() - header_len) / 2;
    flipped[i] ^= 0x01;
    std::fs::write(&plan, &flipped).unwrap();
    let (code, stderr) = apply_file(&dir, &plan, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("checksum"), "{stderr}");
    assert!(!dir.join("mage_project").exists());
}

/// The plan file holds no secret and nothing a reader could check a guessed secret against:
/// two plans of the same configuration and secret for two states share no digest (an unkeyed
/// digest of anything would be the same in both). A secret changed after the plan is refused.
#[test]
fn a_saved_plan_holds_no_secret_and_no_unkeyed_digest() {
    let secret = "https://hooks.slack.com/services/T0/B0/very-secret-token";
    let env = [("WEIR_VAR_hook", secret)];
    let notify = "variable \"hook\" {\n  type      = string\n  sensitive = true\n}\n\nnotification \"ops\" {\n  channel     = \"slack\"\n  webhook_url = var.hook\n}\n";
    let mut digests = Vec::new();
    let mut plans = Vec::new();
    for _ in 0..2 {
        let (tmp, dir) = example();
        std::fs::write(dir.join("notify.hcl"), notify).unwrap();
        let plan = tmp.path().join("plan.weir");
        plan_out(&dir, &plan, &env);
        let text = std::fs::read_to_string(&plan).unwrap();
        assert!(
            !text.contains("very-secret-token"),
            "the secret is in the plan"
        );
        assert!(!text.contains("salt"), "a salt beside a hash");
        // The project's uuid is derived from the deployment's name alone (the same in both).
        let found: std::collections::BTreeSet<String> = text
            .lines()
            .filter(|l| !l.contains("\"project_uuid\""))
            .flat_map(|l| l.split(|c: char| !c.is_ascii_hexdigit()))
            .filter(|w| w.len() >= 16)
            .map(str::to_string)
            .collect();
        digests.push(found);
        plans.push((tmp, dir, plan));
    }
    let shared: Vec<&String> = digests[0].intersection(&digests[1]).collect();
    assert!(
        shared.is_empty(),
        "the same digest in plans for two states (unkeyed): {shared:?}"
    );
    // Applying with another secret than the one planned is refused, without quoting either.
    let (_tmp, dir, plan) = &plans[0];
    let (code, stderr) = apply_file(
        dir,
        plan,
        &[(
            "WEIR_VAR_hook",
            "https://hooks.slack.com/services/T0/B0/other-token",
        )],
    );
    assert_eq!(code, 3, "stale: the variables changed\n{stderr}");
    assert!(
        !stderr.contains("very-secret-token") && !stderr.contains("other-token"),
        "{stderr}"
    );
    assert!(!dir.join("mage_project").exists());
    let (code, stderr) = apply_file(dir, plan, &env);
    assert_eq!(code, 0, "{stderr}");
}

/// `weir apply` or `weir destroy` (no saved plan) started with its standard input piped,
/// returned once it waits at its question.
fn at_prompt(dir: &Path, command: &str) -> std::process::Child {
    use std::io::Read;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("weir"))
        .args(["--no-color", command, "-C"])
        .arg(dir)
        .env_remove("CI")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The question has no newline: read byte by byte until it is there.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("Only 'yes' will be accepted") {
        let n = stderr.read(&mut byte).unwrap();
        assert_eq!(
            n,
            1,
            "apply ended before asking:\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

fn answer(child: &mut std::process::Child, text: &str) {
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
}

/// Two applies on one directory, the first held at its `yes` prompt after planning on empty
/// state: the second fails at once naming the holder, or (with --lock-timeout) waits and then
/// plans against what the first applied. Neither applies a stale plan over the other's work.
#[test]
fn a_second_apply_never_overtakes_one_waiting_at_its_prompt() {
    let (_tmp, dir) = example();
    let block = dir.join("blocks/summarize_orders.py");
    let v1 = std::fs::read_to_string(&block).unwrap();
    let mut first = at_prompt(&dir, "apply");

    // The configuration changes while the first waits; a second apply is refused at once.
    std::fs::write(&block, format!("{v1}\n# v2\n")).unwrap();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.id())) && stderr.contains("weir apply"),
        "the holder is named:\n{stderr}"
    );
    assert!(stderr.contains("--lock-timeout"), "{stderr}");
    assert!(
        !dir.join("mage_project").exists(),
        "the second applied nothing"
    );

    // A third waits for the lock, then plans against the state the first leaves.
    let third = std::process::Command::new(assert_cmd::cargo::cargo_bin("weir"))
        .args([
            "--no-color",
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "60s",
            "-C",
        ])
        .arg(&dir)
        .env_remove("CI")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    answer(&mut first, "yes\n");
    assert!(first.wait().unwrap().success(), "the first apply completes");
    let third = third.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&third.stdout).to_string()
        + &String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success(), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change"),
        "the third planned on top of the first's apply:\n{out}"
    );
    let written =
        std::fs::read_to_string(dir.join("mage_project/transformers/summarize_orders.py")).unwrap();
    assert!(written.contains("# v2"), "the newest configuration won");
    assert_eq!(plan_exit(&dir).0, 0);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".weir/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["serial"], 2, "two applies, one after the other");
}

/// `weir destroy` waiting at its question holds the lock too.
#[test]
fn an_apply_never_overtakes_a_destroy_waiting_at_its_prompt() {
    let (_tmp, dir) = example();
    apply(&dir);
    let mut destroy = at_prompt(&dir, "destroy");
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("weir destroy"), "{stderr}");
    answer(&mut destroy, "no\n");
    let _ = destroy.wait();
}

/// A journal under `.weir/` replaced by a link to a file elsewhere is refused by name, and the
/// file it points at is neither read, truncated nor written.
#[cfg(unix)]
#[test]
fn a_symlinked_state_journal_is_refused_and_its_target_untouched() {
    let (tmp, dir) = example();
    apply(&dir);
    let target = tmp.path().join("precious.txt");
    std::fs::write(&target, "precious\n").unwrap();
    let journal = dir.join(".weir/state.json.journal");
    let _ = std::fs::remove_file(&journal);
    std::os::unix::fs::symlink(&target, &journal).unwrap();
    let block = dir.join("blocks/summarize_orders.py");
    let text = std::fs::read_to_string(&block).unwrap();
    std::fs::write(&block, format!("{text}\n# changed\n")).unwrap();
    let out = weir(&dir)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("state.json.journal") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
}

/// `main.hcl` of `dir` with a `weir { backend "local" { path = … } }` block in front (the
/// `path` attribute is on line 3, column 5).
fn with_state_path(dir: &Path, path: &str) {
    let main = dir.join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    let block = format!("weir {{\n  backend \"local\" {{\n    path = {path:?}\n  }}\n}}\n\n");
    std::fs::write(&main, block + &text).unwrap();
}

/// A folder on the way to the state (`path = "states/prod/state.json"`) replaced by a link to
/// a folder outside the configuration: plan and apply are refused naming the link, and
/// nothing is read or written through it.
#[cfg(unix)]
#[test]
fn a_symlinked_folder_on_the_way_to_the_state_is_refused() {
    let (tmp, dir) = example();
    with_state_path(&dir, "states/prod/state.json");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("prod")).unwrap();
    std::fs::write(outside.join("prod/notes.txt"), "theirs\n").unwrap();
    let link = dir.join("states");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["state", "list"],
    ] {
        let out = weir(&dir).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is a symbolic link", link.display())),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(cli::files_under(&outside), ["prod/notes.txt"]);
    assert!(
        !dir.join("mage_project").exists(),
        "applied without a state"
    );
    // With a real folder there, the same configuration applies.
    std::fs::remove_file(&link).unwrap();
    apply(&dir);
    assert!(dir.join("states/prod/state.json").is_file());
}

/// A state `path` that leaves the configuration directory (`..`, absolute) is an error at its
/// line and column, from `validate` on, and nothing is written there.
#[test]
fn a_state_path_outside_the_configuration_directory_is_refused() {
    let (tmp, dir) = example();
    let original = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    let absolute = tmp.path().join("elsewhere/state.json");
    for path in [
        "../state.json",
        "states/../../state.json",
        absolute.to_str().unwrap(),
    ] {
        std::fs::write(dir.join("main.hcl"), &original).unwrap();
        with_state_path(&dir, path);
        for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
            let out = weir(&dir).args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{path} {args:?}: {stderr}");
            assert!(stderr.contains("main.hcl:3:"), "{path} {args:?}: {stderr}");
            assert!(
                stderr.contains("inside the configuration directory"),
                "{path} {args:?}: {stderr}"
            );
        }
    }
    assert!(!tmp.path().join("state.json").exists());
    assert!(!tmp.path().join("elsewhere").exists());
    assert!(!dir.join("mage_project").exists());
}
