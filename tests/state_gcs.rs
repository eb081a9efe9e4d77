//! The `gcs` state backend against a real `fake-gcs-server` on 127.0.0.1: the lock object and
//! its lease, compare-and-swap writes of the state object, and `weir` processes contending for
//! one state. `STORAGE_EMULATOR_HOST` points weir straight at the emulator.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/gcp.rs"]
mod gcp;

use gcp::{FakeGcs, http, http_get};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weir::state::gcs::{FLUSH_EVERY, GcsBackend, LEASE_VAR};
use weir::state::{Recorded, ResourceState, State, StateBackend, StateError};

const BUCKET: &str = "weir-state";

/// The emulator with the state bucket in it.
fn emulator() -> FakeGcs {
    let gcs = FakeGcs::start();
    gcs.create_bucket(BUCKET);
    gcs
}

fn backend(gcs: &FakeGcs, prefix: &str, lease: &str) -> GcsBackend {
    let url = gcs.url.clone();
    let lease = lease.to_string();
    GcsBackend::open(BUCKET, prefix, &move |name| match name {
        "STORAGE_EMULATOR_HOST" => Some(url.clone()),
        LEASE_VAR => Some(lease.clone()),
        _ => None,
    })
    .unwrap()
}

/// An object's content and generation, read past weir.
fn object(gcs: &FakeGcs, name: &str) -> Option<(Value, u64)> {
    let path = format!("/storage/v1/b/{BUCKET}/o/{}", name.replace('/', "%2F"));
    let (status, meta) = http_get(&gcs.url, &path)?;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{meta}");
    let meta: Value = serde_json::from_str(&meta).unwrap();
    let generation = meta["generation"].as_str().unwrap().parse().unwrap();
    let (_, body) = http_get(&gcs.url, &format!("{path}?alt=media")).unwrap();
    Some((serde_json::from_str(&body).unwrap(), generation))
}

/// Writes an object past weir and its lock (a plain media upload).
fn overwrite(gcs: &FakeGcs, name: &str, body: &str) {
    let (status, answer) = http(
        &gcs.url,
        "POST",
        &format!("/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name}"),
        None,
        Some(body),
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");
}

fn resource(n: usize) -> ResourceState {
    ResourceState::new("mage_pipeline", "mage", serde_json::json!({ "n": n }))
}

/// A configuration of `n` pipelines on the local target, its state in the emulator.
fn config(dir: &Path, n: usize, prefix: &str) {
    let backend = format!(
        "weir {{\n  backend \"gcs\" {{\n    bucket = \"{BUCKET}\"\n    prefix = \"{prefix}\"\n  }}\n}}\n"
    );
    std::fs::write(
        dir.join("main.hcl"),
        backend + &cli::many_pipelines(n, false),
    )
    .unwrap();
}

fn weir(gcs: &FakeGcs, dir: &Path, lease: &str) -> assert_cmd::Command {
    let mut cmd = cli::weir(dir);
    cmd.env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env(LEASE_VAR, lease);
    cmd
}

fn weir_process(gcs: &FakeGcs, dir: &Path, lease: &str, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("weir"))
        .arg("-C")
        .arg(dir)
        .arg("--no-color")
        .args(args)
        .env_remove("CI")
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env(LEASE_VAR, lease)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn serial(gcs: &FakeGcs, prefix: &str) -> u64 {
    object(gcs, &format!("{prefix}/state.json")).unwrap().0["serial"]
        .as_u64()
        .unwrap()
}

#[test]
fn lock_object_is_created_once_names_its_holder_and_is_removed_on_release() {
    let gcs = emulator();
    let b = backend(&gcs, "env/prod", "60s");
    let held = b.lock("apply", Duration::ZERO).unwrap();
    let (lock, generation) = object(&gcs, "env/prod/state.lock").unwrap();
    assert_eq!(lock["id"], held.info().id.as_str());
    assert_eq!(lock["operation"], "apply");
    assert!(lock["expires"].is_string(), "{lock}");
    assert!(generation > 0);

    let t = Instant::now();
    let err = b.lock("plan", Duration::ZERO).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "no wait without --lock-timeout"
    );
    let msg = err.to_string();
    for part in [
        held.info().id.as_str(),
        held.info().who.as_str(),
        "`weir apply`",
        "lease until",
        "--lock-timeout",
        "gs://weir-state/env/prod/state.json",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    held.unlock().unwrap();
    assert!(object(&gcs, "env/prod/state.lock").is_none());
    b.lock("plan", Duration::ZERO).unwrap();
}

#[test]
fn a_held_lock_is_renewed_past_its_lease_and_a_waiter_gets_it_on_release() {
    let gcs = emulator();
    let b = backend(&gcs, "", "2s");
    let held = b.lock("apply", Duration::ZERO).unwrap();
    let (_, first) = object(&gcs, "state.lock").unwrap();
    // Twice the lease: the holder renews it, so it never looks expired.
    std::thread::sleep(Duration::from_secs(4));
    let err = b.lock("plan", Duration::ZERO).unwrap_err();
    assert!(matches!(err, StateError::LockHeld { .. }), "{err}");
    let (_, renewed) = object(&gcs, "state.lock").unwrap();
    assert!(renewed > first, "the lease was renewed");

    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let t = Instant::now();
    let l = b.lock("plan", Duration::from_secs(30)).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    releaser.join().unwrap();
    assert_eq!(
        object(&gcs, "state.lock").unwrap().0["id"],
        l.info().id.as_str()
    );
}

/// Two contenders, 50 times: each takes the lock (waiting for the other), reads, adds its
/// resource and writes. No update is lost and every write that changed something adds one to
/// the serial.
#[test]
fn fifty_rounds_of_two_contending_writers_lose_no_update() {
    let gcs = emulator();
    let rounds = 50;
    for round in 0..rounds {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let b = backend(&gcs, "race", "60s");
                std::thread::spawn(move || {
                    let mut s = b.lock("apply", Duration::from_secs(60)).unwrap();
                    let mut state = s.read().unwrap().unwrap_or_default();
                    state
                        .resources
                        .insert(format!("r.w{w}_{round}"), resource(round));
                    state.bump();
                    s.persist(&state).unwrap();
                    s.unlock().unwrap();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
    }
    let (state, _) = object(&gcs, "race/state.json").unwrap();
    assert_eq!(state["serial"], 2 * rounds as u64);
    assert_eq!(state["resources"].as_object().unwrap().len(), 2 * rounds);
    assert!(object(&gcs, "race/state.lock").is_none());
}

#[test]
fn a_state_written_by_someone_else_between_read_and_write_is_reported_not_overwritten() {
    let gcs = emulator();
    let b = backend(&gcs, "p", "60s");
    let mut s = b.lock("apply", Duration::ZERO).unwrap();
    let mut state = s.read().unwrap().unwrap_or_default();
    state.bump();
    s.persist(&state).unwrap();
    let mine = s.read().unwrap().unwrap();

    // Someone writes the state without the lock.
    let mut theirs = mine.clone();
    theirs.serial = 7;
    theirs.resources.insert("r.theirs".into(), resource(7));
    overwrite(&gcs, "p/state.json", &theirs.to_json());

    let mut next = mine.clone();
    next.resources.insert("r.mine".into(), resource(1));
    next.bump();
    let err = s.persist(&next).unwrap_err();
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [
        "gs://weir-state/p/state.json",
        "written by someone else",
        "serial 7",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    let (kept, _) = object(&gcs, "p/state.json").unwrap();
    assert_eq!(kept["serial"], 7, "their state is kept");
    assert!(kept["resources"]["r.theirs"].is_object());

    // A state created by someone else after this session found none is refused too.
    let fresh = backend(&gcs, "q", "60s");
    let mut s = fresh.lock("apply", Duration::ZERO).unwrap();
    assert_eq!(s.read().unwrap(), None);
    overwrite(&gcs, "q/state.json", &State::new().to_json());
    let err = s.persist(&State::new()).unwrap_err();
    assert!(err.to_string().contains("absent when read"), "{err}");
}

/// Records are written together every few seconds, not one upload each, and without waiting
/// for the next operation to finish.
#[test]
fn progress_is_written_every_few_seconds_not_once_per_record() {
    let gcs = emulator();
    let b = backend(&gcs, "", "60s");
    let mut s = b.lock("apply", Duration::ZERO).unwrap();
    let mut state = s.read().unwrap().unwrap_or_default();
    state.bump();
    s.persist(&state).unwrap();
    let (_, written) = object(&gcs, "state.json").unwrap();
    s.begin(&state).unwrap();
    for n in 0..200 {
        s.record_batch(&[Recorded::Set {
            address: format!("r.n{n}"),
            resource: resource(n),
        }])
        .unwrap();
    }
    assert_eq!(
        object(&gcs, "state.json").unwrap().1,
        written,
        "no upload yet"
    );
    // Nothing else happens: the session writes them on its own within a few seconds.
    let t = Instant::now();
    let (progress, generation) = loop {
        let (progress, generation) = object(&gcs, "state.json").unwrap();
        if generation != written || t.elapsed() > 3 * FLUSH_EVERY {
            break (progress, generation);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(generation > written, "written within {:?}", 3 * FLUSH_EVERY);
    assert!(t.elapsed() <= 3 * FLUSH_EVERY);
    assert_eq!(progress["resources"].as_object().unwrap().len(), 200);
    assert_eq!(progress["serial"], state.serial + 1);
    // The next records after a write wait for the next one.
    s.record_batch(&[Recorded::Remove {
        address: "r.n0".into(),
    }])
    .unwrap();
    assert_eq!(object(&gcs, "state.json").unwrap().1, generation);
    // Unlocking writes what is left.
    s.unlock().unwrap();
    let (last, _) = object(&gcs, "state.json").unwrap();
    assert_eq!(last["resources"].as_object().unwrap().len(), 199);
}

/// A session whose lease ran out and whose lock another weir took over writes nothing more,
/// says so, and leaves the new holder's lock in place.
#[test]
fn a_session_whose_lock_was_taken_over_stops_writing_and_keeps_the_new_lock() {
    let gcs = emulator();
    let b = backend(&gcs, "over", "3s");
    let mut s = b.lock("apply", Duration::ZERO).unwrap();
    let state = s.read().unwrap().unwrap_or_default();
    s.begin(&state).unwrap();
    // Another weir writes its own lock over this one (as a takeover after expiry would).
    let mut other = s.info().clone();
    other.id = "the-new-holder".into();
    overwrite(
        &gcs,
        "over/state.lock",
        &serde_json::to_string(&other).unwrap(),
    );
    // The next renewal (every second) finds the lock is no longer this session's.
    std::thread::sleep(Duration::from_millis(2500));
    let mut next = state.clone();
    next.bump();
    let err = s.persist(&next).unwrap_err();
    assert!(matches!(err, StateError::LockLost { .. }), "{err:?}");
    assert!(err.to_string().contains("took it over"), "{err}");
    s.unlock().unwrap();
    let (lock, _) = object(&gcs, "over/state.lock").unwrap();
    assert_eq!(lock["id"], "the-new-holder");
}

/// The CLI: while one weir holds the lock, another is refused at once naming it, or waits with
/// --lock-timeout and then applies against the new state.
#[test]
fn a_second_weir_is_refused_naming_the_holder_or_waits_with_lock_timeout() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    config(tmp.path(), 3, "cli");
    let b = backend(&gcs, "cli", "60s");
    let held = b.lock("apply", Duration::ZERO).unwrap();
    let out = weir(&gcs, tmp.path(), "60s")
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&held.info().id), "{stderr}");
    assert!(stderr.contains("--lock-timeout"), "{stderr}");
    assert!(object(&gcs, "cli/state.json").is_none(), "nothing applied");

    let waiter = weir_process(
        &gcs,
        tmp.path(),
        "60s",
        &["apply", "--auto-approve", "--lock-timeout=60s"],
    );
    std::thread::sleep(Duration::from_secs(1));
    held.unlock().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(serial(&gcs, "cli"), 1);
    // Reading commands read the bucket too (without the lock).
    let out = weir(&gcs, tmp.path(), "60s")
        .args(["state", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("mage_pipeline.p2"), "{listed}");
    let (code, text) = {
        let out = weir(&gcs, tmp.path(), "60s")
            .args(["plan", "--detailed-exitcode"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert_eq!(code, Some(0), "{text}");
}

/// Two `weir apply` started together, 50 rounds, each round changing one block's code: in
/// even rounds both wait (`--lock-timeout`) and both finish, the second finding nothing left to
/// do; in odd rounds the second does not wait, and either finds nothing to do or fails naming
/// the holder. Either way no update is lost and the serial grows by exactly one per round.
#[test]
fn applies_started_together_serialise_and_the_serial_counts_the_applies_that_changed() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    let rounds = 50;
    let mut refused = 0;
    for round in 0..rounds {
        let changing = format!(
            "pipeline \"changing\" {{\n  block \"load\" {{\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return {round}\\n\"\n  }}\n}}\n"
        );
        config(tmp.path(), 2, "together");
        let main = tmp.path().join("main.hcl");
        let text = std::fs::read_to_string(&main).unwrap() + &changing;
        std::fs::write(&main, text).unwrap();
        let wait = if round % 2 == 0 {
            "--lock-timeout=60s"
        } else {
            "--lock-timeout=0s"
        };
        let both: Vec<Child> = ["--lock-timeout=60s", wait]
            .iter()
            .map(|timeout| {
                weir_process(
                    &gcs,
                    tmp.path(),
                    "60s",
                    &["apply", "--auto-approve", timeout],
                )
            })
            .collect();
        for (i, child) in both.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                continue;
            }
            assert!(
                i == 1 && round % 2 == 1 && stderr.contains("locked by"),
                "round {round}, apply {i}: {stderr}"
            );
            assert!(stderr.contains("--lock-timeout"), "{stderr}");
            refused += 1;
        }
        assert_eq!(serial(&gcs, "together"), round as u64 + 1, "round {round}");
    }
    eprintln!(
        "{refused} of {} non-waiting applies were refused",
        rounds / 2
    );
    let (state, _) = object(&gcs, "together/state.json").unwrap();
    // The last round's code is what state records (in the block's resource).
    let recorded = state["resources"].to_string();
    assert!(
        recorded.contains(&format!("return {}", rounds - 1)),
        "{recorded}"
    );
    assert!(object(&gcs, "together/state.lock").is_none());
}

/// A weir killed (SIGKILL) while holding the lock: before its lease expires the next one is
/// refused naming it; after, the next one takes over, says whose lock it was, and converges.
#[test]
fn a_killed_holder_blocks_until_its_lease_expires_then_is_taken_over() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    config(tmp.path(), 150, "killed");
    let lease = "4s";
    let mut child = weir_process(
        &gcs,
        tmp.path(),
        lease,
        &["apply", "--auto-approve", "--parallelism", "2"],
    );
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut created = 0;
    while created < 20 && reader.read_line(&mut line).unwrap() > 0 {
        created += usize::from(line.contains(": created"));
        line.clear();
    }
    assert_eq!(created, 20, "the apply reported progress");
    let (lock, _) = object(&gcs, "killed/state.lock").expect("the apply holds the lock");
    child.kill().unwrap();
    let killed_at = Instant::now();
    child.wait().unwrap();

    let out = weir(&gcs, tmp.path(), lease)
        .args(["plan"])
        .output()
        .unwrap();
    assert!(
        killed_at.elapsed() < Duration::from_secs(3),
        "checked before expiry"
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(lock["id"].as_str().unwrap()), "{stderr}");
    assert!(stderr.contains("lease until"), "{stderr}");

    std::thread::sleep(Duration::from_secs(5).saturating_sub(killed_at.elapsed()));
    let out = weir(&gcs, tmp.path(), lease)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("took it over"), "{stderr}");
    assert!(stderr.contains(lock["id"].as_str().unwrap()), "{stderr}");
    let out = weir(&gcs, tmp.path(), lease)
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(object(&gcs, "killed/state.lock").is_none(), "released");
}

#[test]
fn force_unlock_removes_only_the_named_lock() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    config(tmp.path(), 1, "stuck");
    let b = backend(&gcs, "stuck", "60s");
    let held = b.lock("apply", Duration::ZERO).unwrap();
    let id = held.info().id.clone();
    // The holder dies without releasing (its renewals stop with it).
    std::mem::forget(held);

    let out = weir(&gcs, tmp.path(), "60s")
        .args(["force-unlock", "not-the-id"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&id) && stderr.contains("not-the-id"),
        "{stderr}"
    );
    assert!(object(&gcs, "stuck/state.lock").is_some());

    let out = weir(&gcs, tmp.path(), "60s")
        .args(["force-unlock", &id])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
    assert!(object(&gcs, "stuck/state.lock").is_none());
    cli::succeed(weir(&gcs, tmp.path(), "60s").args(["apply", "--auto-approve"]));
}

/// A proxy in front of the emulator that forwards every request but, for the requests whose
/// first line contains `matching` and whose rank among those is in `lose` (from 0), closes the
/// connection instead of passing the answer on: a write that was applied but whose answer was
/// lost.
struct LosingProxy {
    url: String,
    /// The first line of every request, in the order they came.
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LosingProxy {
    fn start(upstream: &str, matching: &'static str, lose: &'static [usize]) -> LosingProxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.strip_prefix("http://").unwrap().to_string();
        let seen = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let upstream = upstream.clone();
                let seen = seen.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    // One request: its head, then Content-Length bytes of body.
                    let mut request = Vec::new();
                    let mut byte = [0u8; 1];
                    while !request.ends_with(b"\r\n\r\n") {
                        match client.read(&mut byte) {
                            Ok(1) => request.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&request).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if client.read_exact(&mut body).is_err() {
                        return;
                    }
                    // Forward on a connection of its own, closed after the answer.
                    let head = head.replacen("\r\n", "\r\nconnection: close\r\n", 1);
                    let head: String = head
                        .split("\r\n")
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection: keep"))
                        .collect::<Vec<_>>()
                        .join("\r\n");
                    let mut up = std::net::TcpStream::connect(&upstream).unwrap();
                    up.write_all(head.as_bytes()).unwrap();
                    up.write_all(&body).unwrap();
                    let mut answer = Vec::new();
                    up.read_to_end(&mut answer).unwrap();
                    let first = head.lines().next().unwrap_or_default();
                    log.lock().unwrap().push(first.to_string());
                    if first.contains(matching)
                        && lose.contains(&seen.fetch_add(1, Ordering::SeqCst))
                    {
                        return; // Drops the client connection: the answer is lost.
                    }
                    // One answer per connection: the emulator closed its side, so does the proxy.
                    let _ = client.write_all(&answer);
                });
            }
        });
        LosingProxy { url, requests }
    }
}

/// A lock create and a state write that were applied but whose answers were lost are sent
/// again; their precondition then fails, and weir recognises its own write instead of
/// reporting itself as the holder or as someone else's update.
#[test]
fn writes_applied_but_whose_answers_were_lost_are_recognised_as_our_own() {
    let gcs = emulator();
    // The first lock create and the first state write (the third upload, after the repeated
    // lock create).
    let proxy = LosingProxy::start(&gcs.url, "POST /upload/", &[0, 2]);
    let url = proxy.url.clone();
    let b = GcsBackend::open(BUCKET, "lossy", &move |name| {
        (name == "STORAGE_EMULATOR_HOST").then(|| url.clone())
    })
    .unwrap();
    // The first upload (the lock create) is applied, its answer lost.
    let mut s = b.lock("apply", Duration::ZERO).unwrap();
    let (lock, _) = object(&gcs, "lossy/state.lock").unwrap();
    assert_eq!(lock["id"], s.info().id.as_str());
    assert_eq!(s.read().unwrap(), None);
    // The second (the state write) too.
    let mut state = State::new();
    state.bump();
    s.persist(&state).unwrap();
    assert_eq!(object(&gcs, "lossy/state.json").unwrap().0["serial"], 1);
    // And the session goes on from the generation it wrote.
    state.bump();
    s.persist(&state).unwrap();
    s.unlock().unwrap();
    assert_eq!(serial(&gcs, "lossy"), 2);
    assert!(object(&gcs, "lossy/state.lock").is_none());
}

/// A plan with nothing to change reads one object whatever the size of the configuration, and
/// the lock costs one create and one delete, conditioned on the lock's generation.
#[test]
fn a_no_change_plan_reads_one_object_and_releases_the_lock_at_its_generation() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    config(tmp.path(), 40, "count");
    cli::succeed(weir(&gcs, tmp.path(), "60s").args(["apply", "--auto-approve"]));

    let proxy = LosingProxy::start(&gcs.url, "nothing", &[]);
    let out = cli::weir(tmp.path())
        .env("STORAGE_EMULATOR_HOST", &proxy.url)
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = proxy.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(
        requests[0].starts_with("POST /upload/storage/v1/b/weir-state/o?")
            && requests[0].contains("uploadType=multipart")
            && requests[0].contains("ifGenerationMatch=0"),
        "{requests:#?}"
    );
    assert!(
        requests[1].starts_with("GET /storage/v1/b/weir-state/o/count%2Fstate.json?alt=media"),
        "{requests:#?}"
    );
    let delete = &requests[2];
    assert!(
        delete
            .starts_with("DELETE /storage/v1/b/weir-state/o/count%2Fstate.lock?ifGenerationMatch="),
        "{requests:#?}"
    );
    let generation: u64 = delete
        .split("ifGenerationMatch=")
        .nth(1)
        .and_then(|rest| rest.split([' ', '&']).next())
        .and_then(|g| g.parse().ok())
        .unwrap();
    assert!(generation > 0, "{delete}");
}

/// A state object that is not a state is an error naming its `gs://` location, line and column.
#[test]
fn a_corrupt_state_object_is_an_error_naming_its_location_line_and_column() {
    let gcs = emulator();
    let tmp = tempfile::tempdir().unwrap();
    config(tmp.path(), 1, "bad");
    overwrite(
        &gcs,
        "bad%2Fstate.json",
        "{\n  \"version\": 1,\n  \"serial\": oops\n}\n",
    );
    let out = weir(&gcs, tmp.path(), "60s")
        .args(["plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("state gs://weir-state/bad/state.json is corrupt")
            && stderr.contains("line 3 column"),
        "{stderr}"
    );
    assert!(
        object(&gcs, "bad/state.lock").is_none(),
        "the lock is released"
    );
}
