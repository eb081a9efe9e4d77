//! `weir-sandbox`: serves the sandbox on a local address until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use weir_sandbox::Catalog;
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
        let mut sandbox = Sandbox::new(catalog);
        sandbox.record = args.record;
        sandbox
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        ExitCode::SUCCESS
    })
}
