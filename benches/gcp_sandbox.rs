//! The gcp target at scale against the sandbox, with latency L added to every call: the
//! quickstart with 200 resource profiles (one Cloud Run job each).
//!
//! - **apply** from nothing: its wall time against the dependency graph's critical path, the
//!   longest chain of resources where each counts for the time its own operation took (so the
//!   ratio says how well apply overlaps independent work; 1.0 is the best possible), and
//!   against the larger of that and the total work divided by the parallelism (what no
//!   schedule with that many operations at once can beat);
//! - **no-change plan**: its wall time against N·L/P, N resources read with L each, P at once
//!   (the Google provider reads 8 at a time).
//!
//! Prints numbers, asserts no time. `cargo bench --bench gcp_sandbox`; the latency, operation
//! time and apply parallelism can be set with `WEIR_BENCH_LATENCY_MS` (default 50),
//! `WEIR_BENCH_OPERATION_MS` (default 200), `WEIR_BENCH_PARALLELISM` (default 10, as
//! `--parallelism`) and `WEIR_BENCH_PROFILES` (default 200). Needs the test dependencies
//! (`scripts/test-deps.sh`): Google's discovery documents and fake-gcs-server.

#[path = "../tests/support/gcp.rs"]
mod gcp;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir::apply::reporter::{Event, Reporter};
use weir::apply::{ApplyOptions, apply};
use weir::plan::Action;
use weir::plan::planner::{PlanInput, PlanOptions, plan};
use weir::providers::Providers;
use weir::state::{LocalBackend, default_path};
use weir_sandbox::run_jobs::Behaviour;

/// How long each resource's own operation took, from the apply's events.
#[derive(Default)]
struct Timings(Mutex<HashMap<String, Duration>>);

impl Reporter for Timings {
    fn event(&self, event: Event<'_>) {
        if let Event::Finished {
            address, elapsed, ..
        } = event
            && let Ok(mut t) = self.0.lock()
        {
            t.insert(address.to_owned(), elapsed);
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The quickstart with `profiles` resource profiles in all.
fn configuration(dir: &Path, profiles: u64) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_dir(&src, dir);
    let mut extra = String::new();
    for i in 2..profiles {
        extra.push_str(&format!(
            "\nresource_profile \"bench_{i}\" {{\n  cpu     = 1\n  memory  = \"2Gi\"\n  timeout = \"30m\"\n}}\n"
        ));
    }
    let path = dir.join("profiles.hcl");
    let text = std::fs::read_to_string(&path).expect("profiles.hcl");
    std::fs::write(&path, text + &extra).expect("write profiles.hcl");
}

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

/// The longest chain of `durations` through `dependencies`.
fn critical_path(
    durations: &HashMap<String, Duration>,
    dependencies: &HashMap<String, Vec<String>>,
) -> Duration {
    fn longest(
        address: &str,
        durations: &HashMap<String, Duration>,
        dependencies: &HashMap<String, Vec<String>>,
        memo: &mut HashMap<String, Duration>,
    ) -> Duration {
        if let Some(d) = memo.get(address) {
            return *d;
        }
        let before = dependencies
            .get(address)
            .into_iter()
            .flatten()
            .filter(|d| durations.contains_key(*d))
            .map(|d| longest(d, durations, dependencies, memo))
            .max()
            .unwrap_or_default();
        let total = before + durations.get(address).copied().unwrap_or_default();
        memo.insert(address.to_owned(), total);
        total
    }
    let mut memo = HashMap::new();
    durations
        .keys()
        .map(|a| longest(a, durations, dependencies, &mut memo))
        .max()
        .unwrap_or_default()
}

fn main() {
    let latency = Duration::from_millis(env_number("WEIR_BENCH_LATENCY_MS", 50));
    let operation = Duration::from_millis(env_number("WEIR_BENCH_OPERATION_MS", 200));
    let parallelism = env_number("WEIR_BENCH_PARALLELISM", 10) as usize;
    let profiles = env_number("WEIR_BENCH_PROFILES", 200);
    let read_parallelism = 8.0;

    let cloud = gcp::Cloud::start(Behaviour {
        latency,
        operation_delay: operation,
        ..Behaviour::default()
    });
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("config");
    configuration(&dir, profiles);
    let (model, diags) = weir::model::load(&weir::config::LoadOptions::new(&dir));
    let mut model = model.unwrap_or_else(|| panic!("{diags:?}"));
    let desired = weir::lower::lower(&mut model).unwrap_or_else(|d| panic!("{d:?}"));
    let url = cloud.sandbox.url();
    let config = weir::providers::provider_config(&model, &|name| match name {
        "WEIR_GOOGLE_ENDPOINT" | "STORAGE_EMULATOR_HOST" => Some(url.clone()),
        _ => None,
    })
    .expect("the provider configuration");
    let providers = Arc::new(Providers::for_config(&dir, config));
    let backend = LocalBackend::open(tmp.path(), &default_path()).expect("the state backend");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let make_plan = |refresh: bool| {
        let state = backend.read_unlocked().expect("the state");
        let input = PlanInput {
            desired: desired.clone(),
            outputs: &[],
            prior: state.as_ref(),
            config_hash: state.as_ref().map_or("hash".into(), |s| {
                weir::plan::file::config_digest(&s.key, "hash")
            }),
            git_commit: None,
        };
        let options = PlanOptions {
            refresh,
            ..PlanOptions::default()
        };
        runtime
            .block_on(plan(input, &providers, &options))
            .unwrap_or_else(|e| panic!("{}", e.join("\n")))
    };

    // Apply from nothing.
    let first = make_plan(true);
    let n = first.changes.len();
    let timings = Timings::default();
    let mut lock = backend
        .lock("apply", Duration::ZERO)
        .expect("the state lock");
    let mut state = lock.read().expect("the state").unwrap_or_default();
    let started = Instant::now();
    let outcome = runtime.block_on(apply(
        &first,
        providers.clone(),
        &mut lock,
        &mut state,
        &ApplyOptions::new(parallelism),
        &timings,
    ));
    let apply_wall = started.elapsed();
    drop(lock);
    assert!(
        outcome.failed.is_empty(),
        "the apply failed: {:?}",
        outcome.failed
    );
    let durations = timings.0.into_inner().expect("the timings");
    let dependencies: HashMap<String, Vec<String>> = first
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.address.clone(), c.dependencies.clone()))
        .collect();
    let path = critical_path(&durations, &dependencies);
    // With at most `parallelism` operations at once, no schedule beats the total work spread
    // over them either.
    let work: Duration = durations.values().sum();
    let bound = path.max(work / parallelism as u32);

    // A no-change plan: every resource read once.
    let before = exchanges(&cloud);
    let started = Instant::now();
    let again = make_plan(true);
    let plan_wall = started.elapsed();
    let calls = exchanges(&cloud) - before;
    assert!(!again.has_changes(), "the plan after apply is not empty");
    let read_bound = latency.mul_f64(n as f64 / read_parallelism);

    println!(
        "gcp sandbox: {profiles} profiles, {n} resources, latency L = {} ms, operations {} ms, apply parallelism {parallelism}",
        latency.as_millis(),
        operation.as_millis()
    );
    println!(
        "apply:            wall {:>7.2} s   critical path {:>7.2} s   ratio {:.2}   (work / parallelism {:.2} s; ratio to the larger {:.2})",
        apply_wall.as_secs_f64(),
        path.as_secs_f64(),
        apply_wall.as_secs_f64() / path.as_secs_f64(),
        (work / parallelism as u32).as_secs_f64(),
        apply_wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "no-change plan:   wall {:>7.2} s   N·L/P {:>7.2} s   ratio {:.2}   ({calls} calls for {n} resources)",
        plan_wall.as_secs_f64(),
        read_bound.as_secs_f64(),
        plan_wall.as_secs_f64() / read_bound.as_secs_f64()
    );
}

/// How many exchanges the sandbox has recorded.
fn exchanges(cloud: &gcp::Cloud) -> usize {
    std::fs::read_to_string(&cloud.record)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}
