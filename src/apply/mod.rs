//! The fifth stage: execute a plan. Changes run as a graph walk on tokio: at most
//! `parallelism` provider calls at once, dependents after their dependencies, deletes before
//! the deletion of what they depended on. Every finished operation is recorded in state at once
//! (a journal line), so a crash loses nothing that was done and a re-run converges. A failure
//! stops the failed change's dependents; independent branches finish. A create or update that
//! fails after its object came to exist records the object (the provider returns its
//! attributes with the error), so nothing is orphaned. Each operation runs once: retries are
//! the provider's. Ctrl-C (SIGINT) or SIGTERM (what CI systems send to cancel a job) stops
//! starting new operations and raises the operations' cancel signal: those in flight stop
//! waiting, return what they know, and state records it.

pub mod reporter;

use crate::plan::sensitive::{get_path, marker, seal};
use crate::plan::{Action, Change, Plan};
use crate::providers::Providers;
use crate::state::{OutputState, Recorded, ResourceState, State, StateSession, output_address};
use reporter::{Event, Reporter};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use weir_provider_sdk::{Cancel, ProviderError, ResourceRef, contains_sensitive_marker};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Stops the apply as Ctrl-C or SIGTERM do, for a caller that embeds it.
    pub stop: Cancel,
}

impl ApplyOptions {
    pub fn new(parallelism: usize) -> ApplyOptions {
        ApplyOptions {
            parallelism,
            stop: Cancel::new(),
        }
    }
}

/// How an apply ended.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    pub done: Vec<(String, Action)>,
    pub failed: Vec<(String, Action, String)>,
    pub skipped: Vec<(String, String)>,
    pub interrupted: bool,
    /// The signal that interrupted the apply (2 for SIGINT, 15 for SIGTERM), if one did.
    pub signal: Option<i32>,
    pub state_error: Option<String>,
}

impl ApplyOutcome {
    pub fn success(&self) -> bool {
        self.failed.is_empty()
            && !self.interrupted
            && self.state_error.is_none()
            && self.skipped.is_empty()
    }
}

/// Which operations must finish before which: edges from prerequisite to dependent.
fn operation_order(changes: &[&Change], state: &State) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.as_str(), i))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        match c.action {
            Action::Delete => {
                // Delete before deleting (or replacing) what it depended on.
                for dep in &c.dependencies {
                    if let Some(&j) = index.get(dep.as_str())
                        && matches!(changes[j].action, Action::Delete | Action::Replace)
                    {
                        after[i].push(j);
                    }
                }
            }
            _ => {
                for dep in &c.dependencies {
                    if let Some(&j) = index.get(dep.as_str())
                        && changes[j].action != Action::Delete
                    {
                        after[j].push(i);
                    }
                }
                // Whatever depended on an object being deleted first stops depending on it.
                if let Some(prior) = state.resources.get(&c.address) {
                    for dep in &prior.dependencies {
                        if let Some(&j) = index.get(dep.as_str())
                            && changes[j].action == Action::Delete
                        {
                            after[i].push(j);
                        }
                    }
                }
            }
        }
    }
    after
}

/// What one change did: its error, if it failed, and what state must record.
struct Ran {
    error: Option<String>,
    /// `Some(Some(attributes))`: the object as it now is; `Some(None)`: it is gone; `None`:
    /// nothing changed that state must know.
    record: Option<Option<Value>>,
}

impl Ran {
    fn failed(error: String) -> Ran {
        Ran {
            error: Some(error),
            record: None,
        }
    }

    /// The outcome of a create or update: a failure that left the object behind records it,
    /// so that it is never orphaned and the next run updates it instead of creating another.
    fn written(result: Result<Value, ProviderError>) -> Ran {
        match result {
            Ok(attributes) => Ran {
                error: None,
                record: Some(Some(attributes)),
            },
            Err(e) => {
                let kept = e.existing.is_some();
                Ran {
                    error: Some(if kept {
                        format!(
                            "{e} (the object exists: state records it, and the next apply updates it)"
                        )
                    } else {
                        e.to_string()
                    }),
                    record: e.existing.map(|attributes| Some(*attributes)),
                }
            }
        }
    }
}

/// Runs one change against its provider, once: retrying is the provider's decision (it knows
/// which calls may be repeated). `cancel` is raised when weir is asked to stop.
async fn run_change(
    providers: Arc<Providers>,
    change: Change,
    prior: Option<ResourceState>,
    cancel: Cancel,
) -> Ran {
    let provider = match providers.get(&change.provider) {
        Ok(p) => Arc::clone(p),
        Err(e) => return Ran::failed(e),
    };
    let desired = ResourceRef {
        address: change.address.clone(),
        type_name: change.type_name.clone(),
        attributes: change.after.clone().unwrap_or(Value::Null),
        sensitive_paths: change.after_sensitive.clone(),
    };
    let existing = prior.as_ref().map(|p| ResourceRef {
        address: change.address.clone(),
        type_name: change.type_name.clone(),
        attributes: p.attributes.clone(),
        sensitive_paths: p.sensitive_paths.clone(),
    });
    match change.action {
        Action::NoOp => Ran {
            error: None,
            record: None,
        },
        Action::Create => Ran::written(provider.create(&desired, &cancel).await),
        Action::Update => {
            let before = prior
                .map(|p| p.attributes)
                .or(change.before.clone())
                .unwrap_or(Value::Null);
            Ran::written(provider.update(&before, &desired, &cancel).await)
        }
        Action::Replace => {
            if let Some(existing) = &existing
                && let Err(e) = provider.delete(existing, &cancel).await
            {
                return Ran::failed(e.to_string());
            }
            // The old object is gone: state forgets it unless the new one exists.
            let mut ran = Ran::written(provider.create(&desired, &cancel).await);
            ran.record.get_or_insert(None);
            ran
        }
        Action::Delete => match &existing {
            Some(existing) => match provider.delete(existing, &cancel).await {
                Ok(()) => Ran {
                    error: None,
                    record: Some(None),
                },
                Err(e) => Ran::failed(e.to_string()),
            },
            None => Ran {
                error: None,
                record: Some(None),
            },
        },
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM: what a user or a CI system sends to stop an apply.
/// Both are caught from [`StopSignals::listen`] on, so neither kills weir mid-apply.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // Registration fails only without tokio's signal driver; that signal then keeps
            // its default action.
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves when one of the signals arrives, with its number.
    async fn recv(&mut self) -> i32 {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.interrupt) => libc::SIGINT,
                _ = next(&mut self.terminate) => libc::SIGTERM,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            2
        }
    }
}

/// What state records for a finished change: its new attributes, secrets replaced by their
/// keyed digests (state, journal included, holds none in clear), or its removal.
fn record_for(change: &Change, attributes: Option<Value>, state: &State) -> Recorded {
    match attributes {
        Some(mut attributes) => {
            seal(
                &mut attributes,
                &change.after_sensitive,
                &state.key,
                &change.address,
            );
            let mut private = json!({});
            record_prevent_destroy(&mut private, change.prevent_destroy);
            Recorded::Set {
                address: change.address.clone(),
                resource: ResourceState {
                    resource_type: change.type_name.clone(),
                    provider: change.provider.clone(),
                    attributes,
                    sensitive_paths: change.after_sensitive.clone(),
                    dependencies: change.dependencies.clone(),
                    private,
                },
            }
        }
        None => Recorded::Remove {
            address: change.address.clone(),
        },
    }
}

/// What state keeps of a resource's lifecycle, in its `private` object: `prevent_destroy` is
/// recorded, so that removing the resource's configuration cannot destroy it.
fn record_prevent_destroy(private: &mut Value, prevent_destroy: bool) {
    if !private.is_object() {
        *private = json!({});
    }
    if let Value::Object(map) = private {
        if prevent_destroy {
            map.insert("prevent_destroy".into(), Value::Bool(true));
        } else {
            map.remove("prevent_destroy");
        }
    }
}

/// The records of the resources whose `prevent_destroy` changes and nothing else: state only.
fn lifecycle_records(plan: &Plan, state: &State) -> Vec<Recorded> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::NoOp && c.lifecycle_changed)
        .filter_map(|c| {
            let mut resource = state.resources.get(&c.address)?.clone();
            record_prevent_destroy(&mut resource.private, c.prevent_destroy);
            Some(Recorded::Set {
                address: c.address.clone(),
                resource,
            })
        })
        .collect()
}

pub async fn apply(
    plan: &Plan,
    providers: Arc<Providers>,
    lock: &mut dyn StateSession,
    state: &mut State,
    opts: &ApplyOptions,
    reporter: &dyn Reporter,
) -> ApplyOutcome {
    let mut outcome = ApplyOutcome::default();
    let mut changed = false;
    // The key of the digests that stand for secrets in state (a state written before weir had
    // one gets it now, saved before anything is recorded with it).
    if state.ensure_key() {
        state.bump();
        if let Err(e) = lock.persist(state) {
            outcome.state_error = Some(e.to_string());
        }
    }
    // Providers record this lineage as the owner of what they create; a crash must not
    // recover the state under another one.
    if let Err(e) = providers.configure(Some(&state.lineage)).await {
        outcome
            .failed
            .push(("provider configuration".into(), Action::NoOp, e));
        return outcome;
    }
    if let Err(e) = lock.begin(state) {
        outcome.state_error = Some(e.to_string());
        return outcome;
    }
    let lifecycle = lifecycle_records(plan, state);
    if !lifecycle.is_empty() {
        if let Err(e) = lock.record_batch(&lifecycle) {
            outcome.state_error = Some(e.to_string());
        }
        for record in &lifecycle {
            state.apply_change(record);
        }
        changed = true;
    }
    let changes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    let after = operation_order(&changes, state);
    let mut waiting_on: Vec<usize> = vec![0; changes.len()];
    for list in &after {
        for &j in list {
            waiting_on[j] += 1;
        }
    }
    let mut ready: VecDeque<usize> = (0..changes.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut blocked = vec![false; changes.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut signals = StopSignals::listen();
    // Raised on a stop (a signal, or the caller's `opts.stop`): operations in flight stop
    // waiting and report what exists.
    let cancel = Cancel::new();
    reporter.event(Event::Begin {
        total: changes.len(),
    });

    loop {
        // A stop raised by the caller while the last operations were finishing.
        if opts.stop.is_cancelled() && !outcome.interrupted {
            outcome.interrupted = true;
            cancel.cancel();
            reporter.event(Event::Interrupted {
                in_flight: tasks.len(),
            });
        }
        while !outcome.interrupted && tasks.len() < opts.parallelism.max(1) {
            let Some(i) = ready.pop_front() else { break };
            if blocked[i] {
                continue;
            }
            let change = changes[i].clone();
            reporter.event(Event::Started {
                address: &change.address,
                action: change.action,
            });
            let prior = state.resources.get(&change.address).cloned();
            let providers = Arc::clone(&providers);
            let cancel = cancel.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let ran = run_change(providers, change, prior, cancel).await;
                (i, ran, started.elapsed())
            });
        }
        if tasks.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            signal = async {
                tokio::select! {
                    signal = signals.recv() => Some(signal),
                    _ = opts.stop.cancelled() => None,
                }
            }, if !outcome.interrupted => {
                outcome.interrupted = true;
                outcome.signal = signal;
                cancel.cancel();
                reporter.event(Event::Interrupted { in_flight: tasks.len() });
                continue;
            }
        };
        let Some(first) = joined else { break };
        // Operations that finished together are recorded with one fsync.
        let mut finished = vec![first];
        while let Some(more) = tasks.try_join_next() {
            finished.push(more);
        }
        let mut results = Vec::with_capacity(finished.len());
        for joined in finished {
            match joined {
                Ok(v) => results.push(v),
                Err(e) => outcome.state_error = Some(format!("an operation task failed: {e}")),
            }
        }
        let records: Vec<Recorded> = results
            .iter_mut()
            .filter_map(|(i, ran, _)| {
                let attributes = ran.record.take()?;
                Some(record_for(changes[*i], attributes, state))
            })
            .collect();
        if let Err(e) = lock.record_batch(&records) {
            outcome.state_error = Some(e.to_string());
        }
        for record in &records {
            state.apply_change(record);
            changed = true;
        }
        for (i, ran, elapsed) in results {
            let change = changes[i];
            match ran.error {
                None => {
                    outcome.done.push((change.address.clone(), change.action));
                    reporter.event(Event::Finished {
                        address: &change.address,
                        action: change.action,
                        elapsed,
                    });
                    for &j in &after[i] {
                        waiting_on[j] -= 1;
                        if waiting_on[j] == 0 {
                            ready.push_back(j);
                        }
                    }
                }
                Some(message) => {
                    reporter.event(Event::Failed {
                        address: &change.address,
                        action: change.action,
                        error: &message,
                    });
                    outcome
                        .failed
                        .push((change.address.clone(), change.action, message));
                    // Everything downstream of a failure is skipped.
                    let mut stack: Vec<usize> = after[i].clone();
                    while let Some(j) = stack.pop() {
                        if !blocked[j] {
                            blocked[j] = true;
                            outcome
                                .skipped
                                .push((changes[j].address.clone(), change.address.clone()));
                            reporter.event(Event::Skipped {
                                address: &changes[j].address,
                                because: &change.address,
                            });
                            stack.extend(after[j].iter().copied());
                        }
                    }
                }
            }
        }
    }
    if outcome.interrupted {
        for (i, c) in changes.iter().enumerate() {
            let finished = outcome.done.iter().any(|(a, _)| *a == c.address)
                || outcome.failed.iter().any(|(a, _, _)| *a == c.address);
            if !finished && !blocked[i] {
                outcome
                    .skipped
                    .push((c.address.clone(), "interrupt".into()));
            }
        }
    }

    // Outputs change only when the resources they describe were applied.
    if outcome.failed.is_empty() && !outcome.interrupted {
        for o in &plan.outputs {
            // A value known only after apply is read from the resource it comes from, now
            // recorded (a secret there is recorded only as its digest: never an output's value).
            let known = o
                .from
                .as_ref()
                .filter(|_| o.after.is_none())
                .and_then(|source| {
                    let value = get_path(
                        &state.resources.get(&source.address)?.attributes,
                        &source.path,
                    )?;
                    (!value.is_null() && !contains_sensitive_marker(value)).then(|| value.clone())
                });
            match (&o.action, known.as_ref().or(o.after.as_ref())) {
                (Action::Delete, _) => {
                    changed |= state.outputs.remove(&o.name).is_some();
                }
                (_, Some(value)) => {
                    let value = if o.sensitive {
                        marker(&state.key, &output_address(&o.name), &[], value)
                    } else {
                        value.clone()
                    };
                    let new = OutputState {
                        value,
                        sensitive: o.sensitive,
                    };
                    if state.outputs.get(&o.name) != Some(&new) {
                        state.outputs.insert(o.name.clone(), new);
                        changed = true;
                    }
                }
                _ => {}
            }
        }
    }
    if changed {
        state.bump();
        if let Err(e) = lock.persist(state) {
            outcome.state_error = Some(e.to_string());
        }
    }
    reporter.event(Event::End);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_attributes_hold_secrets_only_as_keyed_digests() {
        let state = State::new();
        let change = Change {
            address: "mage_triggers.orders".into(),
            type_name: "mage_triggers".into(),
            name: "orders".into(),
            provider: "mage".into(),
            action: Action::Create,
            before: None,
            after: None,
            after_unknown: Vec::new(),
            replace_paths: Vec::new(),
            before_sensitive: Vec::new(),
            after_sensitive: vec![vec!["triggers".into(), "*".into(), "token".into()]],
            reason: None,
            notes: Vec::new(),
            dependencies: Vec::new(),
            prevent_destroy: false,
            lifecycle_changed: false,
        };
        let attributes = json!({"pipeline": "orders", "triggers": [
            {"name": "a", "token": "t0k3n0aaaaaaaaaa"}, {"name": "b", "token": "t0k3n0bbbbbbbbbb"}]});
        let recorded = record_for(&change, Some(attributes.clone()), &state);
        // What the journal line holds.
        let line = serde_json::to_string(&recorded).unwrap();
        assert!(
            !line.contains("t0k3n0aaaaaaaaaa") && !line.contains("t0k3n0bbbbbbbbbb"),
            "{line}"
        );
        let Recorded::Set { resource, .. } = recorded else {
            panic!("a set");
        };
        assert_eq!(resource.attributes["pipeline"], "orders");
        let mut revealed = resource.attributes.clone();
        crate::plan::sensitive::reveal(&mut revealed, &attributes, &state.key, &change.address);
        assert_eq!(revealed, attributes);
    }
}
