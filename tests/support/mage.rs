//! Test support: run the REAL mage-ai (from PyPI) on project directories.
//!
//! Include it from an integration test with
//! ```ignore
//! #[path = "support/mage.rs"]
//! mod mage;
//! ```
//! Only `std`, `serde_json` and `tempfile` are used; everything is blocking.
//!
//! Mage is installed by `scripts/test-deps.sh` (a venv under `<repo>/.test-deps/mage-venv`), or found via
//! the env var `WEIR_TEST_MAGE`. When it is missing, every helper PANICS with the install hint: a missing
//! dependency is a test failure, never a silent skip.
//!
//! Two ways to execute a pipeline (timings measured on the 2-core CI box, mage-ai 0.9.80):
//! * [`run_pipeline`] / [`run_pipeline_with_vars`]: `mage run <project> <pipeline>` (~7 s for 3 blocks, up to
//!   20 s when the box is busy). Notebook-style: it ignores conditionals/callbacks and CRASHES on dynamic blocks
//!   (Mage 0.9.80's `mage run` executes blocks in order, notebook-style). Exit code 1 when a block fails.
//! * [`MageServer`]: `mage start` + API trigger — the real scheduler semantics (dynamic blocks, reduce,
//!   conditionals, callbacks, retries). [`MageServer::start`] returns after `/api/status` answers AND the DB
//!   migrations are done (11-15 s idle, ~25 s busy). A `triggers.yaml` trigger is in the DB ~1-10 s later
//!   ([`MageServer::wait_for_schedule`]); a 3-item fan-out + reduce run takes ~48 s (~10 s per scheduler tick).
//!   Authentication is disabled (`REQUIRE_USER_AUTHENTICATION=0`), so no session or API key is needed.
//!   Dropping the server kills its process group, then any stray process carrying its tag (the Jupyter kernel
//!   runs in its own session); servers left by a SIGKILLed test binary are killed by the next start/run.
//!   At most `WEIR_TEST_MAGE_SERVERS` (default 2) servers run at once across all test processes.
//!
//! Checking the data that came out — RECOMMENDED: let the exporter block write a JSON file to a path given in a
//! runtime variable (e.g. `output_path`, passed via [`run_pipeline_with_vars`] or the API-trigger variables), then
//! [`read_json_file`] / [`wait_for_json_file`] it. That does not depend on Mage's internal storage layout.
//! [`block_output`] / [`dynamic_child_outputs`] read Mage's own stored outputs (`output_0/data.json`) and work for
//! any JSON-serialisable block result too (not DataFrames: those are parquet).
//!
//! Every Mage process gets `MAGE_DATA_DIR=<data_dir>`: the sqlite DB, logs and block outputs then live under
//! `<data_dir>/<project folder name>/` (`mage-ai.db`, `pipelines/<p>/.variables/`, `pipelines/<p>/.logs/`,
//! `.cache/`) — use a fresh temp dir per test. Copy fixtures to a temp dir first ([`copy_project`]); Mage writes
//! into the project (`mage start` creates `.ssh_tunnel/`; it rewrites `triggers.yaml` unless active triggers have
//! `last_enabled_at`, and `metadata.yaml` if it lacks `project_uuid`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The API key that Mage's own web frontend sends (hard-coded in Mage). Harmless to send even with authentication disabled.
pub const MAGE_API_KEY: &str = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2";

/// How long `mage run` may take before the harness kills it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `mage start` may take to answer `GET /api/status`.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Env var put on every Mage process the harness starts: `<test process pid>:<unique n>`. Used to find and kill
/// processes that escaped the process group (and leftovers of a test binary that was SIGKILLed).
const TAG_VAR: &str = "WEIR_TEST_MAGE_OWNER";

// ---------------------------------------------------------------------------------------------------------------
// Locating things
// ---------------------------------------------------------------------------------------------------------------

/// The repository root (the `weir` package's manifest dir).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(name)
}

/// The `mage` executable: `$WEIR_TEST_MAGE`, else `<repo>/.test-deps/mage-venv/bin/mage`
/// (`$WEIR_TEST_DEPS/mage-venv/bin/mage` if `WEIR_TEST_DEPS` is set). Panics with install instructions when missing.
pub fn mage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_TEST_MAGE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return p;
        }
        panic!(
            "WEIR_TEST_MAGE={} is not an executable file.\n\
             Install the test dependencies with `scripts/test-deps.sh` (then `source .test-deps/env.sh`), \
             or unset WEIR_TEST_MAGE to use <repo>/.test-deps/mage-venv/bin/mage.",
            p.display()
        );
    }
    let deps = std::env::var_os("WEIR_TEST_DEPS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".test-deps"));
    let p = deps.join("mage-venv").join("bin").join("mage");
    if is_executable(&p) {
        return p;
    }
    panic!(
        "mage-ai is not installed: {} does not exist and WEIR_TEST_MAGE is not set.\n\
         These tests run the real Mage. Install it (once, ~3 min) with:\n    {}/scripts/test-deps.sh\n\
         or run the whole suite with scripts/test.sh (which installs it first).",
        p.display(),
        repo_root().display()
    );
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------------------

/// Copies the project directory `src` to `<dest_parent>/<src folder name>` and returns that path.
/// The folder name is kept because Mage uses it (data lands under `<data_dir>/<folder name>/`).
pub fn copy_project(src: &Path, dest_parent: &Path) -> PathBuf {
    let name = src.file_name().expect("project path has a folder name");
    let dest = dest_parent.join(name);
    copy_dir(src, &dest);
    dest
}

/// Recursively copies a directory (files and dirs; symlinks are followed).
pub fn copy_dir(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap_or_else(|e| panic!("mkdir {}: {e}", dest.display()));
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("read_dir {}: {e}", src.display())) {
        let entry = entry.unwrap();
        let from = entry.path();
        let to = dest.join(entry.file_name());
        if from.is_dir() {
            copy_dir(&from, &to);
        } else {
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
        }
    }
}

/// Reads and parses a JSON file; `None` if it does not exist. Panics on invalid JSON.
pub fn read_json_file(path: &Path) -> Option<Value> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON ({e}):\n{text}", path.display())),
    )
}

/// Polls until `path` exists and holds valid JSON (blocks should write it atomically: tmp file + rename).
pub fn wait_for_json_file(path: &Path, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not appear (with valid JSON) within {timeout:?}",
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Where Mage keeps everything of `project` when run with `MAGE_DATA_DIR=data_dir`:
/// `<data_dir>/<project folder name>` (holds `mage-ai.db` and `pipelines/<p>/.variables|.logs`).
pub fn project_data_dir(data_dir: &Path, project: &Path) -> PathBuf {
    data_dir.join(project.file_name().expect("project path has a folder name"))
}

/// Mage's stored output of `block` in its most recent run of `pipeline`: parses
/// `<data_dir>/<project name>/pipelines/<pipeline>/.variables/[<partition>/]<block>/output_0/data.json`.
///
/// * `mage run` stores outputs without a partition (`.variables/<block>/output_0/`); each run overwrites them.
/// * Scheduler runs store them under the partition `<schedule_id>/<YYYYMMDDTHHMMSS_micro>` (the run's
///   `variables.execution_partition`); the newest matching directory (by modification time) wins.
/// * A dynamic block's `output_0` is its item list (`output_1` the metadata list). The outputs of the children of
///   a dynamic block are NOT stored under `<block>/output_0` but under `<block>/<index>/output_0`: read them with
///   [`dynamic_child_outputs`]. A reduced result is not stored anywhere; read the downstream block instead.
///
/// Mage unwraps a 1-element output list, so the value returned is what the block returned (a dict/list/number).
/// Returns `None` if no such output exists. DataFrames are stored as parquet, not JSON: not supported here.
pub fn block_output(data_dir: &Path, project: &Path, pipeline: &str, block: &str) -> Option<Value> {
    let dir = newest_block_dir(
        data_dir,
        project,
        pipeline,
        block,
        Path::new("output_0/data.json"),
    )?;
    read_json_file(&dir.join("output_0").join("data.json"))
}

/// Outputs of the dynamic children of `block` (a block downstream of a dynamic block) in the newest scheduler run,
/// ordered by child index: `.variables/<schedule_id>/<timestamp>/<block>/<index>/output_0/data.json`.
/// (The block-run uuids are `<block>:<metadata block_uuid>`, but the storage uses the 0-based index.)
/// Empty if there are none.
pub fn dynamic_child_outputs(
    data_dir: &Path,
    project: &Path,
    pipeline: &str,
    block: &str,
) -> Vec<Value> {
    let Some(dir) = newest_block_dir(
        data_dir,
        project,
        pipeline,
        block,
        Path::new("0/output_0/data.json"),
    ) else {
        return Vec::new();
    };
    let mut children: Vec<(u64, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u64>().ok()?, e.path())))
        .collect();
    children.sort();
    children
        .into_iter()
        .filter_map(|(_, p)| read_json_file(&p.join("output_0").join("data.json")))
        .collect()
}

/// The newest `<...>/.variables/[<schedule_id>/<timestamp>/]<block>` directory that contains `marker`.
fn newest_block_dir(
    data_dir: &Path,
    project: &Path,
    pipeline: &str,
    block: &str,
    marker: &Path,
) -> Option<PathBuf> {
    let vars = project_data_dir(data_dir, project)
        .join("pipelines")
        .join(pipeline)
        .join(".variables");
    // Candidates: .variables/<block> (mage run) and .variables/<schedule_id>/<timestamp>/<block> (scheduler).
    let mut candidates = vec![vars.join(block)];
    for sched in fs::read_dir(&vars).into_iter().flatten().flatten() {
        if sched
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u64>().is_ok())
        {
            for part in fs::read_dir(sched.path()).into_iter().flatten().flatten() {
                candidates.push(part.path().join(block));
            }
        }
    }
    candidates
        .into_iter()
        .filter_map(|dir| {
            let mtime = fs::metadata(dir.join(marker)).ok()?.modified().ok()?;
            Some((mtime, dir))
        })
        .max_by_key(|(mtime, _)| *mtime)
        .map(|(_, dir)| dir)
}

// ---------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: plain libc kill(2); no memory is shared.
    unsafe { kill(pid, sig) == 0 }
}

static NEXT_TAG: AtomicU64 = AtomicU64::new(0);

fn new_tag() -> String {
    format!(
        "{}:{}",
        std::process::id(),
        NEXT_TAG.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `mage` command with an isolated data dir, in its own process group, tagged for cleanup.
fn mage_command<I, S>(args: I, data_dir: &Path, tag: &str) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    fs::create_dir_all(data_dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", data_dir.display()));
    let data_dir = std::path::absolute(data_dir).expect("absolute data dir");
    let mut cmd = Command::new(mage_bin());
    cmd.args(args)
        .env("MAGE_DATA_DIR", &data_dir)
        .env(TAG_VAR, tag)
        .env("PYTHONUNBUFFERED", "1")
        // Never let an outer environment point Mage at a shared DB or a remote executor.
        .env_remove("MAGE_DATABASE_CONNECTION_URL")
        .env_remove("DEFAULT_EXECUTOR_TYPE")
        .env_remove("ENV")
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

/// Kills the process group `pgid` (TERM, then KILL after `grace`), reaps `child`, then kills any stray process
/// still carrying `tag` (Linux `/proc` scan).
fn kill_tree(child: &mut Child, tag: &str, grace: Duration) {
    let pgid = child.id() as i32;
    if signal(-pgid, SIGTERM) {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let _ = child.try_wait(); // reap the leader so it does not count as alive
            if !signal(-pgid, 0) || tagged_pids(|t| t == tag).is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        signal(-pgid, SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    // Processes that left the group (e.g. a Jupyter kernel started with start_new_session) but carry our tag.
    for _ in 0..50 {
        let pids = tagged_pids(|t| t == tag);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            signal(pid, SIGKILL);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// PIDs of live (non-zombie) processes whose environment has `WEIR_TEST_MAGE_OWNER=<t>` with `pred(t)`.
/// Linux only; elsewhere returns nothing.
fn tagged_pids(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    let prefix = format!("{TAG_VAR}=");
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let Ok(environ) = fs::read(e.path().join("environ")) else {
            continue;
        };
        let hit = environ
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .any(|kv| kv.strip_prefix(&prefix).is_some_and(&pred));
        if hit && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Kills Mage processes left behind by earlier test binaries that died without running destructors
/// (their owner pid in the tag is gone).
pub fn kill_orphaned_mage_processes() {
    let me = std::process::id();
    let stale = tagged_pids(|t| {
        let owner: u32 = t
            .split(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        owner != me && !Path::new(&format!("/proc/{owner}")).exists()
    });
    for pid in stale {
        signal(pid, SIGKILL);
    }
}

/// Spawns `cmd`, collects stdout/stderr, and kills the whole process group if it exceeds `timeout`.
fn run_with_timeout(mut cmd: Command, tag: &str, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("failed to spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            kill_tree(&mut child, tag, Duration::from_secs(5));
            let stdout = t_out.join().unwrap_or_default();
            let stderr = t_err.join().unwrap_or_default();
            panic!(
                "{cmd:?} timed out after {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    // The pipeline may have left helpers behind (in the group or not); stop them so pipes close and nothing lingers.
    if signal(-(child.id() as i32), 0) {
        signal(-(child.id() as i32), SIGKILL);
    }
    for pid in tagged_pids(|t| t == tag) {
        signal(pid, SIGKILL);
    }
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// `mage run`
// ---------------------------------------------------------------------------------------------------------------

/// `mage run <project> <pipeline>` with `MAGE_DATA_DIR=<data_dir>`. Returns the raw output; see [`assert_success`].
/// Runs blocks notebook-style (no dynamic blocks, no conditionals/callbacks). Exit code 1 when a block fails.
pub fn run_pipeline(project: &Path, pipeline: &str, data_dir: &Path) -> Output {
    run_pipeline_args(project, pipeline, data_dir, &[])
}

/// Like [`run_pipeline`], with `--runtime-vars <json>` (they override the pipeline's `variables`; blocks get
/// them as kwargs).
pub fn run_pipeline_with_vars(
    project: &Path,
    pipeline: &str,
    data_dir: &Path,
    vars: &Value,
) -> Output {
    run_pipeline_args(
        project,
        pipeline,
        data_dir,
        &["--runtime-vars".to_string(), vars.to_string()],
    )
}

/// `mage run <project> <pipeline> <extra args...>` (e.g. `--block-uuid X`, `--test`).
pub fn run_pipeline_args(
    project: &Path,
    pipeline: &str,
    data_dir: &Path,
    extra: &[String],
) -> Output {
    let tag = new_tag();
    let mut args: Vec<&OsStr> = vec![OsStr::new("run"), project.as_os_str(), OsStr::new(pipeline)];
    args.extend(extra.iter().map(OsStr::new));
    let cmd = mage_command(args, data_dir, &tag);
    run_with_timeout(cmd, &tag, RUN_TIMEOUT)
}

/// Panics (showing stdout and stderr) unless `out` exited 0. Returns stdout + stderr as one string.
pub fn assert_success(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mage failed with {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    format!("{stdout}{stderr}")
}

// ---------------------------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 client (127.0.0.1 only)
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One request to `127.0.0.1:<port>` with `Connection: close`. `body` is sent as `application/json`.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\
         User-Agent: weir-test-harness\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() || matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(payload.as_bytes())?;
    stream.flush()?;
    // Do NOT half-close the socket (shutdown(Write)): Tornado treats that as a client disconnect and drops the
    // response of slow handlers.
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "malformed HTTP response: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(500)])
            ),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        body = dechunk(&body)?;
    } else if let Some(len) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A free TCP port on 127.0.0.1 (bind :0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------------------------
// `mage start`
// ---------------------------------------------------------------------------------------------------------------

/// A running `mage start` (web server + scheduler) on 127.0.0.1, with authentication disabled
/// (`REQUIRE_USER_AUTHENTICATION=0`: no session needed). Dropping it kills the whole process tree.
pub struct MageServer {
    child: Option<Child>,
    // Dropped after `Drop::drop` has stopped the server, which frees the slot.
    _slot: ServerSlot,
    tag: String,
    pub port: u16,
    pub project: PathBuf,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

impl MageServer {
    /// Starts `mage start <project> --host 127.0.0.1 --port <free port>` with `MAGE_DATA_DIR=<data_dir>` and waits
    /// (up to [`START_TIMEOUT`]) for `GET /api/status` to answer 200. The server log goes to
    /// `<data_dir>/mage-server-<port>.log`.
    pub fn start(project: &Path, data_dir: &Path) -> MageServer {
        Self::start_with_env(project, data_dir, &[])
    }

    /// [`MageServer::start`] with extra environment variables for the server (e.g. `DYNAMIC_BLOCKS_VERSION`).
    pub fn start_with_env(project: &Path, data_dir: &Path, env: &[(&str, &str)]) -> MageServer {
        kill_orphaned_mage_processes();
        let mut slot = Some(ServerSlot::acquire());
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log_path = data_dir.join(format!("mage-server-{port}.log"));
            let tag = new_tag();
            let mut cmd = mage_command(
                [
                    OsStr::new("start"),
                    project.as_os_str(),
                    OsStr::new("--host"),
                    OsStr::new("127.0.0.1"),
                    OsStr::new("--port"),
                    OsStr::new(&port.to_string()),
                ],
                data_dir,
                &tag,
            );
            let log = fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
            cmd.env("REQUIRE_USER_AUTHENTICATION", "0")
                .env("MAGE_PUBLIC_HOST", format!("http://127.0.0.1:{port}"))
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("failed to spawn {cmd:?}: {e}"));
            let mut server = MageServer {
                child: Some(child),
                _slot: slot.take().unwrap_or_else(ServerSlot::acquire),
                tag,
                port,
                project: project.to_path_buf(),
                data_dir: data_dir.to_path_buf(),
                log_path,
            };
            match server.wait_until_up(START_TIMEOUT) {
                Ok(()) => return server,
                Err(reason) => {
                    last_log = server.log();
                    drop(server);
                    // A port race (someone grabbed the port between free_port() and bind) is worth a retry.
                    if last_log.contains("Address already in use") && attempt < 2 {
                        continue;
                    }
                    panic!("mage start failed: {reason}\n--- server log ---\n{last_log}");
                }
            }
        }
        panic!("mage start failed 3 times (port in use)\n--- server log ---\n{last_log}");
    }

    /// A Mage server that something else started (the sandbox's scheduler VM) on `port`, with
    /// its log at `log_path`: the same helpers, nothing to stop. Waits as [`MageServer::start`]
    /// does.
    pub fn attach(
        port: u16,
        project: &Path,
        data_dir: &Path,
        log_path: &Path,
        timeout: Duration,
    ) -> Result<MageServer, String> {
        let mut server = MageServer {
            child: None,
            _slot: ServerSlot::acquire(),
            tag: String::new(),
            port,
            project: project.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
        };
        server.wait_until_up(timeout)?;
        Ok(server)
    }

    /// Waits for `GET /api/status` = 200, then until DB-backed endpoints answer without error: the scheduler
    /// subprocess runs the alembic migrations of a fresh DB *after* the web server already answers (~3-5 s more),
    /// and queries fail with `no such column` meanwhile.
    fn wait_until_up(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut stage = "GET /api/status";
        let mut last_err = String::new();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().unwrap()
            {
                return Err(format!("mage exited early with {status}"));
            }
            if stage == "GET /api/status" {
                if let Ok(r) = http_request(self.port, "GET", "/api/status", None, &[])
                    && r.status == 200
                {
                    stage = "DB endpoints";
                    continue;
                }
            } else {
                let ok = [
                    "/api/pipeline_schedules?_limit=1",
                    "/api/pipeline_runs?_limit=1",
                    "/api/block_runs?_limit=1",
                ]
                .iter()
                .map(|p| self.try_request_json("GET", p, None))
                .find_map(Result::err);
                match ok {
                    None => return Ok(()),
                    Some(e) => last_err = e,
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{stage} not ready within {timeout:?} (last error: {last_err})"
                ));
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` lines of the server log (for panic messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Raw request with the API key header. Does not check the status.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
        http_request(
            self.port,
            method,
            path,
            body,
            &[("X-API-KEY", MAGE_API_KEY)],
        )
        .unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}\n--- server log (tail) ---\n{}",
                self.log_tail(60)
            )
        })
    }

    /// Request that must answer 2xx with a JSON body without a top-level `error` (Mage reports most errors as
    /// HTTP 200 + `{"error": {...}}`). Returns the JSON, or a description of what went wrong.
    pub fn try_request_json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let r = http_request(
            self.port,
            method,
            path,
            body,
            &[("X-API-KEY", MAGE_API_KEY)],
        )
        .map_err(|e| format!("{method} {path}: {e}"))?;
        match r.json() {
            Some(v)
                if (200..300).contains(&r.status) && v.get("error").is_none_or(Value::is_null) =>
            {
                Ok(v)
            }
            _ => {
                let text = r.text();
                Err(format!(
                    "{method} {path} -> HTTP {}: {}",
                    r.status,
                    &text[..text.len().min(2000)]
                ))
            }
        }
    }

    /// [`try_request_json`](Self::try_request_json) that panics (with the server log tail) on failure.
    pub fn request_json(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.try_request_json(method, path, body)
            .unwrap_or_else(|e| panic!("{e}\n--- server log (tail) ---\n{}", self.log_tail(60)))
    }

    pub fn get(&self, path: &str) -> Value {
        self.request_json("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        self.request_json("POST", path, Some(body))
    }

    /// The triggers of `pipeline` as stored in Mage's DB (`GET /api/pipelines/<p>/pipeline_schedules`).
    /// Triggers from `triggers.yaml` only appear after the scheduler synced them (~every 10 s).
    pub fn schedules(&self, pipeline: &str) -> Vec<Value> {
        let v = self.get(&format!("/api/pipelines/{pipeline}/pipeline_schedules"));
        v["pipeline_schedules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls [`schedules`](Self::schedules) until a trigger named `name` exists; returns it (has `id`, `token`, ...).
    /// Transient API errors while polling are tolerated until the timeout.
    pub fn wait_for_schedule(&self, pipeline: &str, name: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last_err = String::new();
        loop {
            match self.try_request_json(
                "GET",
                &format!("/api/pipelines/{pipeline}/pipeline_schedules"),
                None,
            ) {
                Ok(v) => {
                    let list = v["pipeline_schedules"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if let Some(s) = list.into_iter().find(|s| s["name"] == name) {
                        return s;
                    }
                }
                Err(e) => last_err = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "trigger {name:?} of pipeline {pipeline:?} did not appear within {timeout:?} \
                     (last API error: {last_err})\n--- server log (tail) ---\n{}",
                    self.log_tail(80)
                );
            }
            thread::sleep(Duration::from_millis(1000));
        }
    }

    /// Fires an API trigger: `POST /api/pipeline_schedules/<id>/pipeline_runs/<token>` with
    /// `{"pipeline_run": {"variables": variables}}`. Returns the created `pipeline_run` object (has `id`).
    pub fn trigger_run(&self, schedule_id: i64, token: &str, variables: Value) -> Value {
        let v = self.post(
            &format!("/api/pipeline_schedules/{schedule_id}/pipeline_runs/{token}"),
            &json!({ "pipeline_run": { "variables": variables } }),
        );
        v.get("pipeline_run").cloned().unwrap_or(v)
    }

    /// Runs of `pipeline`, newest first, each with its `block_runs` (`GET /api/pipeline_runs?pipeline_uuid=...`).
    pub fn pipeline_runs(&self, pipeline: &str) -> Vec<Value> {
        let v = self.get(&format!(
            "/api/pipeline_runs?pipeline_uuid={pipeline}&_limit=100"
        ));
        v["pipeline_runs"].as_array().cloned().unwrap_or_default()
    }

    /// One run by id (`GET /api/pipeline_runs/<id>`).
    pub fn pipeline_run(&self, run_id: i64) -> Value {
        self.get(&format!("/api/pipeline_runs/{run_id}"))["pipeline_run"].clone()
    }

    /// Block runs of a pipeline run (`GET /api/block_runs?pipeline_run_id=<id>`), incl. dynamic children
    /// (`block_uuid` like `scale_item:item_1`).
    pub fn block_runs(&self, run_id: i64) -> Vec<Value> {
        let v = self.get(&format!(
            "/api/block_runs?pipeline_run_id={run_id}&_limit=1000"
        ));
        v["block_runs"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until run `run_id` of `pipeline` reaches `completed`, `failed` or `cancelled`; returns that run
    /// with `block_runs` set to the full list from [`block_runs`](Self::block_runs). Panics on timeout.
    /// Transient API errors while polling are tolerated until the timeout.
    pub fn wait_for_run(&self, pipeline: &str, run_id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        let mut last_err = String::new();
        loop {
            let path = format!("/api/pipeline_runs?pipeline_uuid={pipeline}&_limit=100");
            match self.try_request_json("GET", &path, None) {
                Ok(v) => {
                    let runs = v["pipeline_runs"].as_array().cloned().unwrap_or_default();
                    if let Some(run) = runs.into_iter().find(|r| r["id"].as_i64() == Some(run_id)) {
                        let status = run["status"].as_str().unwrap_or("").to_string();
                        last = run;
                        if matches!(status.as_str(), "completed" | "failed" | "cancelled") {
                            last["block_runs"] = Value::Array(self.block_runs(run_id));
                            return last;
                        }
                    }
                }
                Err(e) => last_err = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "pipeline run {run_id} of {pipeline:?} did not finish within {timeout:?} (last API error: \
                     {last_err}); last state:\n{}\n--- server log (tail) ---\n{}",
                    serde_json::to_string_pretty(&last).unwrap(),
                    self.log_tail(80)
                );
            }
            thread::sleep(Duration::from_millis(1000));
        }
    }

    /// [`block_output`] for this server's project and data dir.
    pub fn block_output(&self, pipeline: &str, block: &str) -> Option<Value> {
        block_output(&self.data_dir, &self.project, pipeline, block)
    }

    /// [`dynamic_child_outputs`] for this server's project and data dir.
    pub fn dynamic_child_outputs(&self, pipeline: &str, block: &str) -> Vec<Value> {
        dynamic_child_outputs(&self.data_dir, &self.project, pipeline, block)
    }

    /// Stops the server now (same as dropping it).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(&mut child, &self.tag, Duration::from_secs(10));
        }
    }
}

impl Drop for MageServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A cross-process limit on concurrently running Mage servers (each is 3 Python processes + a kernel and needs
/// ~15 s of CPU to boot; the CI box has 2 cores). `cargo test` runs test binaries one after another but the tests
/// inside a binary in parallel, and several binaries may use Mage. The limit is `WEIR_TEST_MAGE_SERVERS`
/// (default 2); slots are lock files in `$TMPDIR/weir-test-mage-slots/`, released by the OS even if the test
/// process dies.
struct ServerSlot {
    _file: fs::File,
}

impl ServerSlot {
    fn acquire() -> ServerSlot {
        let n: usize = std::env::var("WEIR_TEST_MAGE_SERVERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2)
            .max(1);
        let dir = std::env::temp_dir().join("weir-test-mage-slots");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let timeout = Duration::from_secs(900);
        let deadline = Instant::now() + timeout;
        loop {
            for i in 0..n {
                let path = dir.join(format!("slot-{i}"));
                let file = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                if file.try_lock().is_ok() {
                    return ServerSlot { _file: file };
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no free Mage server slot within {timeout:?} ({n} slots in {}; WEIR_TEST_MAGE_SERVERS)",
                    dir.display()
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Short summary of a run's block statuses (`block_uuid=status`, sorted) for assertion messages.
pub fn block_statuses(run: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = run["block_runs"]
        .as_array()
        .map(|brs| {
            brs.iter()
                .map(|b| {
                    (
                        b["block_uuid"].as_str().unwrap_or("?").to_string(),
                        b["status"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
