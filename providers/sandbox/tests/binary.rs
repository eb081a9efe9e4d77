//! The `weir-sandbox` binary: its flags for processes reach the containers it starts, and
//! `SIGTERM` stops it with them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One HTTP/1.1 exchange over a fresh connection: (status, JSON body).
fn call(addr: &str, host: &str, method: &str, target: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(json).unwrap())
}

/// The sandbox's process, killed if the test fails before it stops it.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_gives_containers_the_image_env_the_cloudsql_dir_a_process_dir_and_stops_them_on_sigterm()
 {
    let documents = std::env::var("WEIR_TEST_DISCOVERY_DIR").unwrap_or_else(|_| {
        panic!("WEIR_TEST_DISCOVERY_DIR is not set: run `scripts/test-deps.sh` and `source .test-deps/env.sh`")
    });
    let dir = tempfile::tempdir().unwrap();
    let processes = dir.path().join("processes");
    let sql = dir.path().join("sql");
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_weir-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--documents", &documents])
        .arg("--run-processes")
        .args([
            "--process-env",
            "FROM_IMAGE=image",
            "--process-env",
            "BOTH=image",
        ])
        .arg("--cloudsql-dir")
        .arg(&sql)
        .arg("--process-dir")
        .arg(&processes)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = sandbox.stdout.take().unwrap();
    let mut sandbox = Guard(sandbox);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("weir-sandbox: listening on http://")
        .unwrap_or_else(|| panic!("the sandbox said {line:?}"))
        .to_owned();

    // The container prints what it sees, then runs until it is stopped.
    let container = json!({
        "command": ["sh", "-c", "echo \"$FROM_IMAGE $BOTH $1 $$\"; exec sleep 300", "sh", "/cloudsql/p:r:i"],
        "env": [{"name": "BOTH", "value": "container"}],
        "volumeMounts": [{"name": "cloudsql", "mountPath": "/cloudsql"}],
        "volumes": [{"name": "cloudsql", "cloudSqlInstance": {"instances": ["p:r:i"]}}],
    });
    let vm = json!({
        "name": "vm", "machineType": "zones/us-central1-a/machineTypes/e2-micro",
        "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"diskSizeGb": "10"}}],
        "networkInterfaces": [{"network": "global/networks/default"}],
        "metadata": {"items": [{"key": "weir-container", "value": container.to_string()}]},
    });
    let (status, answer) = call(
        &addr,
        "compute.googleapis.com",
        "POST",
        "/compute/v1/projects/acme/zones/us-central1-a/instances",
        &vm,
    );
    assert_eq!(status, 200, "{answer}");
    let mut output = String::new();
    wait_for("the container's output", || {
        let dirs: Vec<_> = std::fs::read_dir(&processes)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        output = dirs
            .iter()
            .find(|d| d.file_name().unwrap().to_string_lossy().starts_with("vm-"))
            .and_then(|d| std::fs::read_to_string(d.join("output.log")).ok())
            .unwrap_or_default();
        output.ends_with('\n')
    });
    let words: Vec<&str> = output.split_whitespace().collect();
    let expected_mount = format!("{}/p:r:i", sql.display());
    assert_eq!(
        words[..3],
        ["image", "container", &expected_mount],
        "{output}"
    );
    let pid = words[3];
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // SAFETY: kill only sends a signal to the child this test started.
    unsafe {
        libc::kill(sandbox.0.id() as i32, libc::SIGTERM);
    }
    let status = sandbox.0.wait().unwrap();
    assert!(status.success(), "the sandbox ended with {status}");
    wait_for("the container's end", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    });
}
