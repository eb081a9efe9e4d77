//! The state journal under load: 5,000 finished operations recorded one fsync each, then in
//! batches of 50 (one fsync per batch), replayed by a read, and folded into the state file by a
//! persist. Prints timings; run by `scripts/bench.sh` (or `cargo bench --bench state_journal`).

use serde_json::json;
use std::time::{Duration, Instant};
use weir::state::{LocalBackend, Recorded, ResourceState, State, default_path};

fn resource(n: u64) -> ResourceState {
    let mut r = ResourceState::new(
        "mage_block",
        "mage",
        json!({"name": format!("b{n}"), "n": n}),
    );
    r.dependencies = vec![format!("mage_pipeline.p{}", n / 10)];
    r
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = LocalBackend::open(dir.path(), &default_path()).expect("the state backend");
    let mut lock = backend
        .lock("apply", Duration::ZERO)
        .expect("the state lock");
    let mut state = State::new();
    let n = 5_000u64;

    let t = Instant::now();
    for i in 0..n {
        let change = Recorded::Set {
            address: format!("mage_block.b{i:05}"),
            resource: resource(i),
        };
        state.apply_change(&change);
        lock.record(change).expect("record");
    }
    let recorded = t.elapsed();

    let t = Instant::now();
    let replayed = lock.read().expect("read").expect("a state");
    let read_journal = t.elapsed();
    assert_eq!(replayed.resources, state.resources);
    state.lineage = replayed.lineage.clone();
    state.bump();

    let t = Instant::now();
    lock.persist(&state).expect("persist");
    let persisted = t.elapsed();
    let t = Instant::now();
    let back = lock.read().expect("read").expect("a state");
    let read = t.elapsed();
    assert_eq!(back, state);
    let size = std::fs::metadata(backend.path()).expect("state file").len();

    let changes: Vec<Recorded> = state
        .resources
        .iter()
        .map(|(a, r)| Recorded::Set {
            address: a.clone(),
            resource: r.clone(),
        })
        .collect();
    let t = Instant::now();
    for chunk in changes.chunks(50) {
        lock.record_batch(chunk).expect("record a batch");
    }
    let batched = t.elapsed();

    println!("state journal, {n} records:");
    println!(
        "  fsync each:        {recorded:?} ({:?}/record)",
        recorded / n as u32
    );
    println!(
        "  batches of 50:     {batched:?} ({:?}/record)",
        batched / n as u32
    );
    println!("  read with replay:  {read_journal:?}");
    println!("  persist {size} bytes: {persisted:?}");
    println!("  read:              {read:?}");
}
