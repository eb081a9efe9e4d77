//! Containers started as local processes: the stand-in for a container image and its volumes.
//!
//! When the sandbox runs processes ([`crate::server::Sandbox::run_processes`]), a Cloud Run job
//! execution ([`crate::executions`]) and a scheduler VM's `weir-container` ([`crate::compute`])
//! start their container's `command` + `args` here, as a local process in a process group of
//! its own. The local machine stands in for the image:
//! - the environment is `PATH` (the sandbox's own), then what the image would provide
//!   ([`ImageStandIn::env`], `--process-env`), then the container's `env`, each later one
//!   winning; `secretKeyRef` values are read from the sandbox's Secret Manager;
//! - a Cloud SQL volume (`cloudSqlInstance`) mounted at `mountPath` M is seen at
//!   [`ImageStandIn::cloudsql_dir`] (`--cloudsql-dir`): processes share the host's file system,
//!   so the sandbox rewrites the path M (where a path starts: at the start of a value or after
//!   `=`, `:`, `@`, `,`, a space or a quote) into that directory in the process's environment
//!   values and arguments;
//! - the working directory is a directory of its own (a temporary one, or one under
//!   [`ImageStandIn::process_dir`], `--process-dir`, which is kept), holding `output.log`, the
//!   process's stdout and stderr.
//!
//! Stopping a process kills its whole process group and every process it started.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use serde_json::Value;

/// Reads a secret version's payload (`projects/p/secrets/s/versions/v`), if it exists.
pub(crate) type Secrets<'a> = &'a dyn Fn(&str) -> Option<Vec<u8>>;

/// The file, in a process's directory, that holds its stdout and stderr.
pub const LOG_FILE: &str = "output.log";

/// What a container image would give the processes the sandbox starts.
#[derive(Clone, Debug, Default)]
pub struct ImageStandIn {
    /// Environment the image provides (`NAME`, `VALUE`), in order; the container's own wins.
    pub env: Vec<(String, String)>,
    /// Where a Cloud SQL volume's mount path is seen (the instances' sockets go under it).
    pub cloudsql_dir: Option<PathBuf>,
    /// Where each process gets its own directory (kept); a temporary one otherwise.
    pub process_dir: Option<PathBuf>,
}

/// What starting processes needs: the image stand-in and the Secret Manager to read.
pub(crate) struct Launcher<'a> {
    pub stand_in: &'a ImageStandIn,
    pub secrets: Secrets<'a>,
}

/// One container to start, in Cloud Run's shapes.
pub(crate) struct ContainerSpec<'a> {
    /// The container: `command`, `args`, `env`, `volumeMounts`.
    pub container: &'a Value,
    /// The volumes its mounts name (`[{"name", "cloudSqlInstance": {...}}]`).
    pub volumes: Option<&'a Value>,
    /// Arguments that replace the container's `args`.
    pub args: Option<Vec<String>>,
    /// Environment entries that win over the container's `env` (a run's overrides).
    pub env_overrides: Option<&'a Value>,
    /// The project whose secrets a `secretKeyRef` with a bare secret id names.
    pub project: &'a str,
    /// A name for the process's directory (an execution's id, an instance's name).
    pub label: &'a str,
}

/// The directory a process works in.
enum WorkDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Temporary(dir) => dir.path(),
            WorkDir::Kept(path) => path,
        }
    }
}

/// A process the sandbox started; dropping it kills it and everything it started.
pub struct LocalProcess {
    child: Option<Child>,
    dir: WorkDir,
}

impl LocalProcess {
    /// The process's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file holding the process's stdout and stderr.
    pub fn log(&self) -> PathBuf {
        self.dir().join(LOG_FILE)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its exit status, once it has ended.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    /// Kills the process, its process group, and every process it started (some leave the
    /// group, as a Jupyter kernel started in a session of its own does).
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pid) = i32::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        // Descendants first, found while the tree is whole: killed processes reparent.
        let descendants = descendants(pid);
        // SAFETY: killpg and kill only send signals; no memory is shared.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
            for d in descendants {
                libc::kill(d, libc::SIGKILL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes descending from `root` (Linux's `/proc`; nothing elsewhere).
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if !found.contains(&child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// Whether the process `pid` exists and is not a zombie (Linux's `/proc`).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The strings of a JSON array (others skipped).
pub(crate) fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// `text` with the path `mount` replaced by `dir` wherever a path starts with it.
fn rewrite_mount(text: &str, mount: &str, dir: &str) -> String {
    let mount = mount.trim_end_matches('/');
    if mount.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut at_start = true;
    while let Some(i) = rest.find(mount) {
        let before = if i == 0 {
            (!at_start).then(|| out.chars().last()).flatten()
        } else {
            rest[..i].chars().last()
        };
        let after = rest[i + mount.len()..].chars().next();
        let starts_path = before.is_none_or(|c| "=:@, \"'".contains(c));
        let ends_component = after.is_none_or(|c| c == '/');
        out.push_str(&rest[..i]);
        out.push_str(if starts_path && ends_component {
            dir
        } else {
            mount
        });
        rest = &rest[i + mount.len()..];
        at_start = false;
    }
    out.push_str(rest);
    out
}

/// A name safe as one path component.
fn component(label: &str) -> String {
    let name: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => "process".to_owned(),
        n => n.to_owned(),
    }
}

impl Launcher<'_> {
    /// Starts the container as a local process, or says why it cannot.
    pub(crate) fn start(&self, spec: &ContainerSpec) -> Result<LocalProcess, String> {
        let container = spec.container;
        let mut line = strings(container.get("command"));
        line.extend(
            spec.args
                .clone()
                .unwrap_or_else(|| strings(container.get("args"))),
        );
        // The mount paths of the container's Cloud SQL volumes.
        let mounts: Vec<String> = match &self.stand_in.cloudsql_dir {
            None => Vec::new(),
            Some(_) => container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|m| {
                    let name = m.get("name");
                    spec.volumes
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|v| v.get("name") == name && v.get("cloudSqlInstance").is_some())
                })
                .filter_map(|m| m.get("mountPath").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
        };
        let seen_at = |text: &str| -> String {
            let dir = match &self.stand_in.cloudsql_dir {
                Some(dir) => dir.to_string_lossy().into_owned(),
                None => return text.to_owned(),
            };
            mounts
                .iter()
                .fold(text.to_owned(), |t, m| rewrite_mount(&t, m, &dir))
        };
        let line: Vec<String> = line.iter().map(|a| seen_at(a)).collect();
        let (program, args) = line
            .split_first()
            .ok_or("the container has no command or args to run")?;

        let mut env: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(path) = std::env::var_os("PATH") {
            use std::os::unix::ffi::OsStringExt;
            env.push(("PATH".into(), path.into_vec()));
        }
        for (name, value) in &self.stand_in.env {
            env.push((name.clone(), value.clone().into_bytes()));
        }
        let entries = container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                spec.env_overrides
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
        for var in entries {
            let Some(key) = var.get("name").and_then(Value::as_str) else {
                continue;
            };
            let value = match var.pointer("/valueSource/secretKeyRef") {
                Some(reference) => self.secret(reference, spec.project, key)?,
                None => var
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec(),
            };
            env.push((key.to_owned(), value));
        }

        let dir = match &self.stand_in.process_dir {
            Some(parent) => {
                let dir = parent.join(component(spec.label));
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!(
                        "the process directory {} cannot be made: {e}",
                        dir.display()
                    )
                })?;
                WorkDir::Kept(dir)
            }
            None => WorkDir::Temporary(
                tempfile::Builder::new()
                    .prefix("weir-sandbox-process-")
                    .tempdir()
                    .map_err(|e| format!("no temporary directory for the process: {e}"))?,
            ),
        };
        let log_path = dir.path().join(LOG_FILE);
        let log = File::create(&log_path).map_err(|e| {
            format!(
                "the process's log {} cannot be made: {e}",
                log_path.display()
            )
        })?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("the process's log {}: {e}", log_path.display()))?;

        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        {
            use std::os::unix::ffi::OsStringExt;
            use std::os::unix::process::CommandExt;
            command.process_group(0);
            for (name, value) in env {
                let value = match String::from_utf8(value) {
                    Ok(text) => seen_at(&text).into_bytes(),
                    Err(e) => e.into_bytes(),
                };
                command.env(name, std::ffi::OsString::from_vec(value));
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("the container's command {program:?} cannot start: {e}"))?;
        Ok(LocalProcess {
            child: Some(child),
            dir,
        })
    }

    /// The payload of the secret version a `secretKeyRef` names.
    fn secret(&self, reference: &Value, project: &str, key: &str) -> Result<Vec<u8>, String> {
        let secret = reference
            .get("secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = reference
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("latest");
        let full = if secret.starts_with("projects/") {
            format!("{secret}/versions/{version}")
        } else {
            format!("projects/{project}/secrets/{secret}/versions/{version}")
        };
        (self.secrets)(&full).ok_or_else(|| {
            format!(
                "the secret version {full} for environment variable {key} does not exist or has no payload"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    #[test]
    fn a_mount_path_is_rewritten_only_where_a_path_starts() {
        let r = |t: &str| rewrite_mount(t, "/cloudsql", "/tmp/sql");
        assert_eq!(r("/cloudsql"), "/tmp/sql");
        assert_eq!(r("/cloudsql/p:r:i"), "/tmp/sql/p:r:i");
        assert_eq!(
            r("postgresql://mage:pw@/mage?host=/cloudsql/p:r:i"),
            "postgresql://mage:pw@/mage?host=/tmp/sql/p:r:i"
        );
        assert_eq!(
            r("--dir=/cloudsql/x /cloudsql"),
            "--dir=/tmp/sql/x /tmp/sql"
        );
        assert_eq!(r("/a/cloudsql/x"), "/a/cloudsql/x");
        assert_eq!(r("/cloudsqlx"), "/cloudsqlx");
        assert_eq!(r("PATH=/bin:/cloudsql/bin"), "PATH=/bin:/tmp/sql/bin");
    }

    fn wait(process: &mut LocalProcess) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = process.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "it never ended"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_image_env_is_overridden_by_the_container_and_mounts_are_seen_at_the_stand_in() {
        let dir = tempfile::tempdir().unwrap();
        let stand_in = ImageStandIn {
            env: vec![
                ("FROM_IMAGE".into(), "image".into()),
                ("BOTH".into(), "image".into()),
            ],
            cloudsql_dir: Some(dir.path().join("sql")),
            process_dir: Some(dir.path().join("processes")),
        };
        let secrets = |name: &str| {
            (name == "projects/acme/secrets/url/versions/latest")
                .then(|| b"postgresql://u:pw@/db?host=/cloudsql/acme:r:i".to_vec())
        };
        let launcher = Launcher {
            stand_in: &stand_in,
            secrets: &secrets,
        };
        let container = json!({
            "command": ["sh", "-c"],
            "args": ["exit 9"],
            "env": [
                {"name": "BOTH", "value": "container"},
                {"name": "URL", "valueSource": {"secretKeyRef": {"secret": "url", "version": "latest"}}},
            ],
            "volumeMounts": [{"name": "cloudsql", "mountPath": "/cloudsql"}],
        });
        let volumes =
            json!([{"name": "cloudsql", "cloudSqlInstance": {"instances": ["acme:r:i"]}}]);
        let sql = dir.path().join("sql").display().to_string();
        let script = format!(
            "test \"$FROM_IMAGE\" = image && test \"$BOTH\" = container \
             && test \"$URL\" = \"postgresql://u:pw@/db?host={sql}/acme:r:i\" \
             && test \"$1\" = {sql}/x && test \"$(pwd)\" = {}/processes/exec-1 && echo ran",
            dir.path().display()
        );
        let spec = ContainerSpec {
            container: &container,
            volumes: Some(&volumes),
            args: Some(vec![script, "sh".into(), "/cloudsql/x".into()]),
            env_overrides: None,
            project: "acme",
            label: "exec/1",
        };
        let mut process = launcher.start(&spec).unwrap();
        assert!(
            wait(&mut process).success(),
            "{}",
            std::fs::read_to_string(process.log()).unwrap()
        );
        assert_eq!(std::fs::read_to_string(process.log()).unwrap(), "ran\n");

        // Without the volume, nothing is rewritten; the container's args are used.
        let spec = ContainerSpec {
            volumes: None,
            args: None,
            label: "exec-2",
            ..spec
        };
        let mut process = launcher.start(&spec).unwrap();
        assert_eq!(wait(&mut process).code(), Some(9));
    }

    #[test]
    fn stopping_kills_the_group_and_processes_that_left_it() {
        let stand_in = ImageStandIn::default();
        let secrets = |_: &str| None;
        let launcher = Launcher {
            stand_in: &stand_in,
            secrets: &secrets,
        };
        let container = json!({
            "command": ["sh", "-c", "sleep 300 & setsid sleep 301 & echo started; wait"],
        });
        let spec = ContainerSpec {
            container: &container,
            volumes: None,
            args: None,
            env_overrides: None,
            project: "acme",
            label: "group",
        };
        let mut process = launcher.start(&spec).unwrap();
        let log = process.log();
        let started = Instant::now();
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let pid = i32::try_from(process.child.as_ref().unwrap().id()).unwrap();
        let tree = descendants(pid);
        assert_eq!(tree.len(), 2, "{tree:?}");
        process.stop();
        std::thread::sleep(Duration::from_millis(200));
        for pid in tree {
            assert!(!running(pid as u32), "process {pid} is still alive");
        }
    }
}
