//! A whole Google Cloud on this machine, for tests that drive the `weir` binary against it:
//! the sandbox (in this test process) for every API but Cloud Storage, and a real
//! `fake-gcs-server` behind the sandbox's storage front for Cloud Storage. Every exchange is
//! recorded, and the record is checked against Google's discovery documents.
//!
//! The emulator and the documents come from `scripts/test-deps.sh`; without them these tests
//! fail saying how to install them.
#![allow(dead_code)] // Each test file uses its own subset.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_sandbox::discovery::{Catalog, documents_dir_for_tests};
use weir_sandbox::record;
use weir_sandbox::run_jobs::Behaviour;
use weir_sandbox::server::{Running, Sandbox};

/// The variable naming the `fake-gcs-server` binary (`scripts/test-deps.sh` sets it).
const FAKE_GCS_VAR: &str = "WEIR_TEST_FAKE_GCS";

pub fn catalog() -> Catalog {
    let dir = documents_dir_for_tests().unwrap_or_else(|e| {
        panic!("{e}\n(run `scripts/test-deps.sh` once to install Google's discovery documents)")
    });
    Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The `fake-gcs-server` binary: `$WEIR_TEST_FAKE_GCS`, else where `scripts/test-deps.sh`
/// puts it.
fn fake_gcs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(FAKE_GCS_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{FAKE_GCS_VAR}={} is not a file: run `scripts/test-deps.sh` to install fake-gcs-server",
            path.display()
        );
        return path;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = repo.join(".test-deps/env.sh");
    let text = std::fs::read_to_string(&env).unwrap_or_default();
    let found = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {FAKE_GCS_VAR}=")))
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server is not installed: {FAKE_GCS_VAR} is not set and {} names none.\n\
             Install the test dependencies once with `scripts/test-deps.sh`, then `source .test-deps/env.sh`",
            env.display()
        )
    })
}

/// A `fake-gcs-server` on 127.0.0.1, in memory, stopped when dropped.
pub struct FakeGcs {
    child: Child,
    pub url: String,
}

impl FakeGcs {
    pub fn start() -> FakeGcs {
        let binary = fake_gcs_binary();
        // The emulator takes a port number, not 0: take a free one and hand it over (retried
        // when another process grabs it first).
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap();
            let mut child = Command::new(&binary)
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                ])
                .args(["-port", &port.to_string(), "-log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if http_get(&url, "/storage/v1/b?project=p").is_some() {
                    return FakeGcs { child, url };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("fake-gcs-server did not start ({})", binary.display());
    }

    /// Creates the bucket `name` in the emulator.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = http(
            &self.url,
            "POST",
            "/storage/v1/b?project=test",
            None,
            Some(&format!(r#"{{"name":"{name}"}}"#)),
        )
        .expect("the emulator answers");
        assert_eq!(status, 200, "create bucket {name}: {body}");
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP GET; the status and body, `None` when nothing answered.
pub fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    http(base, "GET", path, None, None)
}

/// One plain HTTP/1.1 exchange with `base` (`http://host:port`), with `host` as the Host
/// header when given (how the sandbox tells the APIs apart).
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    host: Option<&str>,
    body: Option<&str>,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let authority = base.strip_prefix("http://")?;
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        host.unwrap_or(authority),
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let (head, rest) = answer.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        text = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The sandbox and the storage emulator behind it, with the record of every exchange.
pub struct Cloud {
    pub sandbox: Running,
    pub storage: FakeGcs,
    pub record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cloud {
    pub fn start(behaviour: Behaviour) -> Cloud {
        Cloud::start_with(behaviour, 0, |sandbox| sandbox)
    }

    /// [`Cloud::start`] on `port` (0: any free one), with the sandbox set up further by
    /// `configure` (processes, their environment).
    pub fn start_with(
        behaviour: Behaviour,
        port: u16,
        configure: impl FnOnce(Sandbox) -> Sandbox,
    ) -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.jsonl");
        let storage = FakeGcs::start();
        let sandbox = Sandbox::new(catalog())
            .behaviour(behaviour)
            .record(record.clone())
            .storage_upstream(&storage.url);
        let sandbox = configure(sandbox)
            .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap_or_else(|e| panic!("the sandbox cannot listen on port {port}: {e}"));
        Cloud {
            sandbox,
            storage,
            record,
            _dir: dir,
        }
    }

    /// `weir -C dir --no-color …` against this cloud: the sandbox for Google's APIs and for
    /// Cloud Storage (its front passes to the emulator), no credentials anywhere.
    pub fn weir(&self, dir: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("weir").unwrap();
        self.env(cmd.arg("-C").arg(dir).arg("--no-color"));
        cmd
    }

    /// The same as a `std::process::Command`, to be killed.
    pub fn weir_process(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("weir"));
        cmd.arg("-C").arg(dir).arg("--no-color");
        self.env_std(&mut cmd);
        cmd
    }

    fn env<'c>(&self, cmd: &'c mut assert_cmd::Command) -> &'c mut assert_cmd::Command {
        cmd.env("WEIR_GOOGLE_ENDPOINT", self.sandbox.url())
            .env("STORAGE_EMULATOR_HOST", self.sandbox.url())
            .env("NO_COLOR", "1")
            .env("HOME", self._dir.path().join("home"))
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("CI")
    }

    fn env_std(&self, cmd: &mut Command) {
        cmd.env("WEIR_GOOGLE_ENDPOINT", self.sandbox.url())
            .env("STORAGE_EMULATOR_HOST", self.sandbox.url())
            .env("NO_COLOR", "1")
            .env("HOME", self._dir.path().join("home"))
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("CI");
    }

    /// A GET of one of Google's APIs through the sandbox (`host` names the API; `None` for
    /// Cloud Storage, which the sandbox tells by its path); the parsed answer. Injected
    /// throttling and outages are waited out, as a client would.
    pub fn get(&self, host: impl Into<Option<&'static str>>, path: &str) -> serde_json::Value {
        let host = host.into();
        let base = self.sandbox.url();
        for _ in 0..50 {
            let (status, body) = http(&base, "GET", path, host, None)
                .unwrap_or_else(|| panic!("the sandbox did not answer GET {path}"));
            if status == 429 || status == 503 {
                continue;
            }
            assert_eq!(status, 200, "GET {host:?} {path}: {body}");
            return serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        }
        panic!("GET {path}: still throttled after 50 tries")
    }

    /// Every object of the quickstart's kinds that exists in `project` (zone and region as
    /// the quickstart has them), by kind and name: what a check for orphans and duplicates
    /// compares with state.
    pub fn inventory(&self, project: &str, region: &str, zone: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut collect = |kind: &str, answer: serde_json::Value, list: &str, field: &str| {
            for item in answer[list].as_array().cloned().unwrap_or_default() {
                let name = item[field].as_str().unwrap_or_default();
                let short = name.rsplit('/').next().unwrap_or(name);
                assert!(
                    out.insert(format!("{kind}:{short}")),
                    "{kind} {short} listed twice"
                );
            }
        };
        let run = format!("/v2/projects/{project}/locations/{region}");
        collect(
            "job",
            self.get("run.googleapis.com", &format!("{run}/jobs")),
            "jobs",
            "name",
        );
        collect(
            "service",
            self.get("run.googleapis.com", &format!("{run}/services")),
            "services",
            "name",
        );
        collect(
            "sql",
            self.get(
                "sqladmin.googleapis.com",
                &format!("/v1/projects/{project}/instances"),
            ),
            "items",
            "name",
        );
        collect(
            "secret",
            self.get(
                "secretmanager.googleapis.com",
                &format!("/v1/projects/{project}/secrets"),
            ),
            "secrets",
            "name",
        );
        collect(
            "sa",
            self.get(
                "iam.googleapis.com",
                &format!("/v1/projects/{project}/serviceAccounts"),
            ),
            "accounts",
            "email",
        );
        collect(
            "bucket",
            self.get(None, &format!("/storage/v1/b?project={project}")),
            "items",
            "name",
        );
        for vm in self.inventory_vms(project, zone) {
            assert!(out.insert(vm.clone()), "{vm} listed twice");
        }
        out
    }

    /// The VMs in `zone`, as `vm:<name>`.
    pub fn inventory_vms(&self, project: &str, zone: &str) -> Vec<String> {
        let answer = self.get(
            "compute.googleapis.com",
            &format!("/compute/v1/projects/{project}/zones/{zone}/instances"),
        );
        answer["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|vm| format!("vm:{}", vm["name"].as_str().unwrap_or_default()))
            .collect()
    }

    /// Checks every exchange recorded so far against the discovery documents.
    pub fn assert_record_valid(&self) -> usize {
        let report = record::validate_file(&self.record, &catalog()).unwrap_or_else(|problems| {
            panic!(
                "{} recorded exchanges break Google's documents:\n{}",
                problems.len(),
                problems
                    .iter()
                    .take(20)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        report.exchanges
    }
}
