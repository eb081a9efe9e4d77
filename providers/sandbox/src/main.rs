//! `weir-sandbox`: serves the sandbox on a local address until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::time::Duration;
use weir_sandbox::Catalog;
use weir_sandbox::run_jobs::Behaviour;
use weir_sandbox::server::Sandbox;

/// A local stand-in for the Google Cloud APIs weir calls, holding every request to Google's own
/// discovery documents. Point `WEIR_GOOGLE_ENDPOINT` at the address it prints.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// The directory of Google's discovery documents (`googleapiclient/discovery_cache/documents`
    /// of the PyPI package google-api-python-client; `scripts/test-deps.sh` installs it).
    #[arg(long, env = "WEIR_TEST_DISCOVERY_DIR", value_name = "DIR")]
    documents: PathBuf,
    /// Append every exchange to FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// How long each long-running operation takes before it is done, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    operation_delay_ms: u64,
    /// Milliseconds added to every answer.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// The share of requests (0 to 1) answered 429 or 503 instead of being served.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = share)]
    unavailable_rate: f64,
    /// The seed of the random choice of the 429/503 answers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Serve Cloud Storage by forwarding to the storage emulator (fake-gcs-server) at URL,
    /// `http://host:port`; point `STORAGE_EMULATOR_HOST` at the sandbox then.
    #[arg(long, value_name = "URL", value_parser = http_base)]
    storage_upstream: Option<String>,
    /// Run each Cloud Run job execution's container command, and the `weir-container` of a
    /// scheduler VM, as a local process, with the container's environment (secrets resolved
    /// from the sandbox's own Secret Manager). Whoever can call the sandbox then runs commands
    /// on this machine: keep it on a loopback address.
    #[arg(long)]
    run_processes: bool,
    /// Environment the container image would give the processes started (`PATH` with a local
    /// Mage, `WEIR_IMAGE_ENTRYPOINT`, ...); the container's own environment wins. Repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = name_value)]
    process_env: Vec<(String, String)>,
    /// The directory the processes started see a Cloud SQL volume's mount path as (processes
    /// share this machine's file system): put each instance's socket in DIR/<connection name>/.
    #[arg(long, value_name = "DIR")]
    cloudsql_dir: Option<PathBuf>,
    /// Give each process started a working directory under DIR (kept, with its output in
    /// `output.log`) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    process_dir: Option<PathBuf>,
}

/// `NAME=VALUE`, with a name an environment can hold.
fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value))
            if !name.is_empty() && !name.contains('\0') && !value.contains('\0') =>
        {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// An `http://host:port` base URL.
fn http_base(text: &str) -> Result<String, String> {
    let authority = text.strip_prefix("http://").unwrap_or("");
    match authority.trim_end_matches('/') {
        a if !a.is_empty() && !a.contains('/') => Ok(text.trim_end_matches('/').to_owned()),
        _ => Err(format!("{text:?} is not an http://host:port URL")),
    }
}

/// A share: a number from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

/// Ctrl-C or SIGTERM: the sandbox then stops, and the processes it started with it.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let catalog = match Catalog::load_dir(&args.documents) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("weir-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("weir-sandbox: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("weir-sandbox: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("weir-sandbox: listening on http://{addr}"),
            Err(e) => eprintln!("weir-sandbox: listening (address unknown: {e})"),
        }
        let mut sandbox = Sandbox::new(catalog).behaviour(Behaviour {
            operation_delay: Duration::from_millis(args.operation_delay_ms),
            latency: Duration::from_millis(args.latency_ms),
            unavailable_rate: args.unavailable_rate,
            seed: args.seed,
            ..Behaviour::default()
        });
        sandbox.record = args.record;
        sandbox = sandbox.run_processes(args.run_processes);
        for (name, value) in &args.process_env {
            sandbox = sandbox.process_env(name, value);
        }
        if let Some(dir) = args.cloudsql_dir {
            sandbox = sandbox.cloudsql_dir(dir);
        }
        if let Some(dir) = args.process_dir {
            sandbox = sandbox.process_dir(dir);
        }
        if let Some(upstream) = &args.storage_upstream {
            sandbox = sandbox.storage_upstream(upstream);
        }
        sandbox.serve(listener, stop_signal()).await;
        ExitCode::SUCCESS
    })
}
