//! State and code in Cloud Storage at scale: the quickstart with 1,000 more pipelines (one block
//! each), its state in a `gcs` backend and its code in a release, both in a real
//! `fake-gcs-server` behind the sandbox's storage front (every other Google API in the
//! sandbox). Runs the `weir` binary: an apply from nothing, then a no-change plan, and prints
//! the wall time and the requests each made, by API (the goal: a no-change plan reads O(1)
//! objects for all pipelines, not one per file).
//!
//! Prints numbers, asserts no time. `cargo bench --bench gcp_releases`;
//! `WEIR_BENCH_PIPELINES` (default 1000) changes the size. Needs the test dependencies
//! (`scripts/test-deps.sh`).

#[path = "../tests/support/gcp.rs"]
mod gcp;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use weir_sandbox::record;
use weir_sandbox::run_jobs::Behaviour;

const STATE_BUCKET: &str = "weir-bench-state";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("the quickstart") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("a copy");
        }
    }
}

/// The quickstart with its state in the bucket and `n` more pipelines.
fn configuration(dir: &Path, n: u64) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        dir,
    );
    let main = dir.join("main.hcl");
    let text = std::fs::read_to_string(&main).expect("main.hcl");
    let text = text.replacen(
        "weir {\n",
        &format!("weir {{\n  backend \"gcs\" {{\n    bucket = \"{STATE_BUCKET}\"\n    prefix = \"bench\"\n  }}\n"),
        1,
    );
    std::fs::write(&main, text).expect("main.hcl");
    let mut hcl = String::new();
    for i in 0..n {
        hcl.push_str(&format!(
            "pipeline \"bench_{i}\" {{\n  block \"load_{i}\" {{\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return {i}\\n\"\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.join("bench.hcl"), hcl).expect("bench.hcl");
}

/// The exchanges recorded after the first `skip`, counted by API.
fn requests(file: &Path, skip: usize) -> (usize, BTreeMap<String, usize>) {
    let exchanges = record::read(file).unwrap_or_default();
    let mut by_api = BTreeMap::new();
    for e in exchanges.iter().skip(skip) {
        *by_api.entry(e.service.clone()).or_insert(0) += 1;
    }
    (exchanges.len(), by_api)
}

fn run(cloud: &gcp::Cloud, dir: &Path, args: &[&str]) -> (f64, i32) {
    let started = Instant::now();
    let out = cloud
        .weir_process(dir)
        .args(args)
        .output()
        .expect("weir runs");
    let wall = started.elapsed().as_secs_f64();
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && code != 2 {
        panic!(
            "weir {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (wall, code)
}

fn main() {
    let n = std::env::var("WEIR_BENCH_PIPELINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cloud = gcp::Cloud::start(Behaviour::default());
    // The state's bucket, made beforehand as a team would.
    let (status, body) = gcp::http(
        &cloud.sandbox.url(),
        "POST",
        "/storage/v1/b?project=acme-data-prod",
        None,
        Some(&format!("{{\"name\": \"{STATE_BUCKET}\"}}")),
    )
    .expect("the storage front answers");
    assert_eq!(status, 200, "{body}");
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("config");
    configuration(&dir, n);

    let (before, _) = requests(&cloud.record, 0);
    let (apply_wall, code) = run(&cloud, &dir, &["apply", "--auto-approve"]);
    assert_eq!(code, 0);
    let (after_apply, apply_by_api) = requests(&cloud.record, before);
    let (plan_wall, code) = run(&cloud, &dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "the plan after apply is not empty");
    let (_, plan_by_api) = requests(&cloud.record, after_apply);

    let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    println!(
        "gcp with state and code in Cloud Storage: the quickstart and {n} more pipelines (one block each)"
    );
    println!(
        "apply --auto-approve:   wall {apply_wall:>6.2} s   {} requests {apply_by_api:?}",
        total(&apply_by_api)
    );
    println!(
        "no-change plan:         wall {plan_wall:>6.2} s   {} requests {plan_by_api:?}",
        total(&plan_by_api)
    );
}
