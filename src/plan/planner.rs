//! Making a plan: refresh what state knows (concurrently, in batches), report drift, and diff
//! the desired instances against what exists.

use super::action::Action;
use super::change::{Change, Drift, Reason};
use super::plan::{OutputChange, Plan};
use super::sensitive::{expand, expand_keeping_patterns, get_path, marker, reveal};
use crate::graph::ResourceGraph;
use crate::lower::ResourceInstance;
use crate::model::{Output, OutputSource};
use crate::providers::Providers;
use crate::state::State;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use weir_provider_sdk::{
    AttrPath, IdleCost, IdleCostChange, ResourceRef, contains_sensitive_marker,
};

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Read the live objects before diffing (`--refresh=false` trusts state instead).
    pub refresh: bool,
    /// At most this many provider calls at once.
    pub parallelism: usize,
    /// Plan only these addresses and what they depend on.
    pub targets: Vec<String>,
    /// Replace these even if unchanged.
    pub replace: Vec<String>,
    /// Plan to destroy everything.
    pub destroy: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            refresh: true,
            parallelism: 10,
            targets: Vec::new(),
            replace: Vec::new(),
            destroy: false,
        }
    }
}

/// What the plan is made from.
pub struct PlanInput<'a> {
    /// Taken by value: each instance's attributes move into its change.
    pub desired: Vec<ResourceInstance>,
    pub outputs: &'a [Output],
    pub prior: Option<&'a State>,
    pub config_hash: String,
    pub git_commit: Option<String>,
}

/// How many resources one provider read call covers.
const READ_BATCH: usize = 500;

/// Reads the live objects behind every resource in state, grouped by provider, in batches,
/// at most `parallelism` batches at once. Returns address → live value (`None`: gone).
pub async fn refresh(
    prior: &State,
    providers: &Providers,
    parallelism: usize,
) -> Result<HashMap<String, Option<Value>>, Vec<String>> {
    let mut by_provider: BTreeMap<&str, Vec<ResourceRef>> = BTreeMap::new();
    for (address, r) in &prior.resources {
        by_provider
            .entry(r.provider.as_str())
            .or_default()
            .push(ResourceRef {
                address: address.clone(),
                type_name: r.resource_type.clone(),
                attributes: r.attributes.clone(),
                sensitive_paths: r.sensitive_paths.clone(),
            });
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut errors = Vec::new();
    for (name, refs) in by_provider {
        let provider = match providers.get(name) {
            Ok(p) => Arc::clone(p),
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut refs = refs.into_iter().peekable();
        while refs.peek().is_some() {
            let chunk: Vec<ResourceRef> = refs.by_ref().take(READ_BATCH).collect();
            let provider = Arc::clone(&provider);
            let semaphore = Arc::clone(&semaphore);
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let results = provider.read(&chunk).await;
                (chunk, results)
            });
        }
    }
    let mut live = HashMap::with_capacity(prior.resources.len());
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((chunk, results)) = joined else {
            errors.push("a refresh task failed unexpectedly".to_string());
            continue;
        };
        // The state's attributes in the chunk are dropped here, as soon as they are read.
        for (r, result) in chunk.into_iter().zip(results) {
            match result {
                Ok(value) => {
                    live.insert(r.address, value);
                }
                Err(e) => failed.push((r.address, e.to_string())),
            }
        }
    }
    // Sorted, so that the address named first does not depend on which read finished first.
    failed.sort();
    errors.extend(grouped("reading", failed));
    if errors.is_empty() {
        Ok(live)
    } else {
        Err(errors)
    }
}

/// "`verb` `address`: `message`" for each failure, with the addresses that failed with the
/// same message counted into one line (e.g. a whole project refused), so that one cause is
/// reported once, not once per resource.
fn grouped(verb: &str, failures: Vec<(String, String)>) -> Vec<String> {
    let mut order: Vec<(String, String, usize)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (address, message) in failures {
        match index.get(&message) {
            Some(&i) => order[i].2 += 1,
            None => {
                index.insert(message.clone(), order.len());
                order.push((address, message, 0));
            }
        }
    }
    order
        .into_iter()
        .map(|(address, message, more)| match more {
            0 => format!("{verb} {address}: {message}"),
            n => format!("{verb} {address} (and {n} more): {message}"),
        })
        .collect()
}

/// Whether two values are equal outside the paths only known after apply.
fn same_known(a: &Value, b: &Value, unknown: &[AttrPath]) -> bool {
    if unknown.is_empty() {
        return a == b;
    }
    without_paths(a, unknown) == without_paths(b, unknown)
}

/// Sets every path in `paths` to null, so values only known after apply compare equal.
fn without_paths(value: &Value, paths: &[AttrPath]) -> Value {
    let mut out = value.clone();
    for path in paths {
        let mut cursor = &mut out;
        for (i, key) in path.iter().enumerate() {
            let next = match cursor {
                Value::Object(map) => map.get_mut(key.as_str()),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            };
            match next {
                Some(v) if i + 1 == path.len() => {
                    *v = Value::Null;
                    break;
                }
                Some(v) => cursor = v,
                None => break,
            }
        }
    }
    out
}

pub async fn plan(
    input: PlanInput<'_>,
    providers: &Providers,
    opts: &PlanOptions,
) -> Result<Plan, Vec<String>> {
    let empty = State::new();
    let prior = input.prior.unwrap_or(&empty);
    providers
        .configure(input.prior.map(|s| s.lineage.as_str()))
        .await
        .map_err(|e| vec![e])?;
    let live = if opts.refresh {
        refresh(prior, providers, opts.parallelism).await?
    } else {
        prior
            .resources
            .iter()
            .map(|(a, r)| (a.clone(), Some(r.attributes.clone())))
            .collect()
    };

    let mut errors = Vec::new();
    // Where each address is declared: the order plans list what the graph does not order
    // (deletes, drift).
    let declared: HashMap<String, usize> = input
        .desired
        .iter()
        .enumerate()
        .map(|(i, d)| (d.address.clone(), i))
        .collect();
    let by_declaration = |a: &str| declared.get(a).copied().unwrap_or(usize::MAX);
    // Targets name configuration blocks as well as resources: resolved against the whole
    // configuration, also when everything is to be destroyed.
    let targets = resolve_targets(&opts.targets, &input.desired, prior, &mut errors);
    // `weir destroy` protects what the configuration protects; a resource the configuration no
    // longer has, what state recorded for it.
    let configured_protection: HashMap<String, bool> = input
        .desired
        .iter()
        .map(|d| (d.address.clone(), d.prevent_destroy))
        .collect();
    // Protected resources this plan would destroy: (address, "replaced" or "destroyed").
    let mut protected: Vec<(String, &str)> = Vec::new();
    let mut lifecycle_notes = Vec::new();
    let desired: Vec<ResourceInstance> = if opts.destroy {
        Vec::new()
    } else {
        input.desired
    };
    let graph = ResourceGraph::from_instances(&desired).map_err(|e| vec![e])?;
    let order = graph.order();
    let desired_count = desired.len();
    let mut by_address: HashMap<String, ResourceInstance> = desired
        .into_iter()
        .map(|i| (i.address.clone(), i))
        .collect();
    let in_config: HashSet<String> = by_address.keys().cloned().collect();

    // Which addresses this plan may touch: the targets and what they depend on.
    let selected: Option<HashSet<String>> = targets.map(|targets| {
        let mut set = HashSet::new();
        for t in targets {
            set.extend(graph.ancestors(&t));
            set.insert(t);
        }
        set
    });
    let wanted = |address: &str| selected.as_ref().is_none_or(|s| s.contains(address));
    for r in &opts.replace {
        if by_address.contains_key(r.as_str()) {
            continue;
        }
        let mut parts: Vec<&str> = by_address
            .values()
            .filter(|i| i.lowered_from.contains(r))
            .map(|i| i.address.as_str())
            .collect();
        if !parts.is_empty() {
            parts.sort_by_key(|a| by_declaration(a));
            errors.push(format!(
                "--replace {r}: a configuration block, not a resource; --replace takes the resources it is made of: {}",
                parts.join(", ")
            ));
        } else {
            errors.push(unknown_address(
                "--replace",
                r,
                "no such resource in the configuration",
                "--replace takes a resource address as the plan shows it (`mage_pipeline.orders`)",
                by_address.keys().map(String::as_str),
            ));
        }
    }

    // Drift: what changed outside weir since the last apply.
    let mut drift = Vec::new();
    if opts.refresh {
        for (address, r) in &prior.resources {
            let now = live.get(address).and_then(Option::as_ref);
            // State holds secrets as keyed digests: compared through them.
            let revealed = match now {
                Some(now) if contains_sensitive_marker(&r.attributes) => {
                    let mut before = r.attributes.clone();
                    reveal(&mut before, now, &prior.key, address);
                    Some(before)
                }
                _ => None,
            };
            let before = revealed.as_ref().unwrap_or(&r.attributes);
            if now != Some(before) {
                let now = now.cloned();
                drift.push(Drift {
                    address: address.clone(),
                    type_name: r.resource_type.clone(),
                    name: name_of(address, &r.resource_type),
                    provider: r.provider.clone(),
                    before: before.clone(),
                    after: now,
                    sensitive: r.sensitive_paths.clone(),
                });
            }
        }
        // State lists addresses alphabetically; a stable sort keeps that among the undeclared.
        drift.sort_by_key(|d| by_declaration(&d.address));
    }

    // Each live value moves into the change that shows it.
    let mut live = live;
    let mut changes = Vec::with_capacity(desired_count + prior.resources.len());
    let mut next_runs = HashMap::new();
    let mut failed_plans = Vec::new();
    // Replaced so far, by type: what lives inside them is replaced with them (the graph's
    // order plans a resource after what it depends on).
    let mut replaced: HashMap<String, String> = HashMap::new();
    for address in order {
        let Some(mut instance) = by_address.remove(&address) else {
            continue;
        };
        if !wanted(&address) {
            continue;
        }
        let provider = match providers.get(&instance.provider) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let schema = providers.schema(&instance.type_name);
        let in_state = prior.resources.get(&address);
        let mut current = live.remove(&address).flatten();
        let planned = match provider.plan(
            &instance.type_name,
            current.as_ref(),
            std::mem::take(&mut instance.attributes),
        ) {
            Ok(p) => p,
            Err(e) => {
                failed_plans.push((address.clone(), e.to_string()));
                continue;
            }
        };
        // Without refresh, the current value is state's, its secrets keyed digests: where the
        // planned value is the same secret, it compares (and shows) as unchanged.
        if let Some(now) = current.as_mut()
            && contains_sensitive_marker(now)
        {
            reveal(now, &planned.value, &prior.key, &address);
        }
        // Concrete paths, so that the saved plan and state name each secret (e.g. the token of
        // every trigger, retired ones the provider carried over too), and the wildcards kept for
        // what is not there yet (a trigger added outside weir, seen at the next refresh).
        let mut after_sensitive =
            expand_keeping_patterns(&instance.sensitive_paths, &planned.value);
        if let Some(s) = schema {
            after_sensitive.extend(
                s.attributes
                    .iter()
                    .filter(|a| a.sensitive)
                    .map(|a| a.path()),
            );
        }
        let before_sensitive = in_state
            .map(|r| r.sensitive_paths.clone())
            .unwrap_or_default();
        let mut container_notes = Vec::new();
        let (action, reason, replace_paths) = match &current {
            None => (
                Action::Create,
                in_state.map(|_| Reason::CreateBecauseDeletedOutside),
                Vec::new(),
            ),
            Some(now) => {
                let mut force = schema
                    .map(|s| forcing_paths(&s.force_new_paths(), now, &planned.value))
                    .unwrap_or_default();
                // What the provider, seeing the prior value, says cannot change in place.
                for path in &planned.replace {
                    if !force.contains(path)
                        && get_path(now, path) != get_path(&planned.value, path)
                    {
                        force.push(path.clone());
                    }
                }
                // The replaced resource this one lives in, if any.
                let container = schema.and_then(|s| {
                    instance.dependencies.iter().find(|d| {
                        replaced
                            .get(d.as_str())
                            .is_some_and(|t| s.lives_in.contains(t))
                    })
                });
                if opts.replace.contains(&address) {
                    (Action::Replace, Some(Reason::ReplaceByRequest), force)
                } else if let Some(container) = container {
                    container_notes.push(format!(
                        "replaced with {container}, which it lives in: the new one starts without it"
                    ));
                    (Action::Replace, Some(Reason::ReplaceByTriggers), force)
                } else if same_known(now, &planned.value, &planned.unknown) {
                    (Action::NoOp, None, Vec::new())
                } else if !force.is_empty() {
                    (
                        Action::Replace,
                        Some(Reason::ReplaceBecauseCannotUpdate),
                        force,
                    )
                } else {
                    (Action::Update, None, Vec::new())
                }
            }
        };
        if action == Action::Update
            && let Some(now) = current.as_mut()
        {
            provider
                .show_before(&instance.type_name, now, &planned.value)
                .await;
        }
        if action == Action::Replace {
            replaced.insert(address.clone(), instance.type_name.clone());
            if instance.prevent_destroy {
                protected.push((address.clone(), "replaced"));
            }
        }
        let recorded = in_state.is_some_and(recorded_protection);
        let lifecycle_changed = in_state.is_some() && recorded != instance.prevent_destroy;
        if lifecycle_changed && action == Action::NoOp {
            lifecycle_notes.push(format!(
                "{address}: prevent_destroy changes from {recorded} to {}; apply records it in state (the resource itself does not change)",
                instance.prevent_destroy
            ));
        }
        let mut notes = std::mem::take(&mut container_notes);
        if action.is_change() {
            notes.extend(instance_notes(&instance, &mut next_runs));
            notes.extend(planned.notes.iter().cloned());
        }
        changes.push(Change {
            address: address.clone(),
            type_name: instance.type_name.clone(),
            name: instance.name.clone(),
            provider: instance.provider.clone(),
            action,
            before: current,
            after: Some(planned.value),
            after_unknown: planned.unknown,
            replace_paths,
            before_sensitive,
            after_sensitive,
            reason,
            notes,
            dependencies: instance.dependencies.clone(),
            prevent_destroy: instance.prevent_destroy,
            lifecycle_changed,
        });
    }

    // Resources in state that the configuration no longer has (or all of them, to destroy),
    // those still declared in declaration order.
    let mut gone: Vec<(&String, &crate::state::ResourceState)> = prior
        .resources
        .iter()
        .filter(|(address, _)| !in_config.contains(address.as_str()) && wanted(address))
        .collect();
    gone.sort_by_key(|(address, _)| by_declaration(address));
    let is_protected = |address: &String, r: &crate::state::ResourceState| {
        configured_protection
            .get(address)
            .copied()
            .unwrap_or_else(|| recorded_protection(r))
    };
    // `weir destroy` keeps what `prevent_destroy` protects, with what it depends on, and says
    // so; any other plan that would delete a protected resource is refused below.
    let kept = if opts.destroy {
        kept_by_protection(prior, |a, r| is_protected(a, r))
    } else {
        BTreeSet::new()
    };
    if !kept.is_empty() {
        lifecycle_notes.push(kept_note(prior, &kept, |a, r| is_protected(a, r)));
    }
    for (address, r) in gone {
        if kept.contains(address.as_str()) {
            continue;
        }
        if is_protected(address, r) {
            protected.push((address.clone(), "destroyed"));
        }
        let current = live.remove(address).flatten();
        // What the provider says about deleting such an object.
        let notes = providers
            .get(&r.provider)
            .map(|p| p.delete_notes(&r.resource_type))
            .unwrap_or_default();
        changes.push(Change {
            address: address.clone(),
            type_name: r.resource_type.clone(),
            name: name_of(address, &r.resource_type),
            provider: r.provider.clone(),
            // Already gone: nothing to delete, but state must forget it.
            action: Action::Delete,
            before: current.or_else(|| Some(r.attributes.clone())),
            after: None,
            after_unknown: Vec::new(),
            replace_paths: Vec::new(),
            before_sensitive: r.sensitive_paths.clone(),
            after_sensitive: Vec::new(),
            reason: Some(if opts.destroy {
                Reason::DeleteBecauseDestroyRequested
            } else {
                Reason::DeleteBecauseNoResourceConfig
            }),
            notes,
            dependencies: r.dependencies.clone(),
            prevent_destroy: false,
            lifecycle_changed: false,
        });
    }
    if !protected.is_empty() {
        errors.push(protected_error(&protected));
    }

    let outputs = plan_outputs(input.outputs, prior, &changes, opts.destroy);
    let idle_cost = idle_cost(&changes, providers);
    if let Some(cost) = &idle_cost {
        lifecycle_notes.push(idle_cost_note(cost));
    }
    errors.extend(grouped("planning", failed_plans));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Plan {
        weir_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: input.prior.map(|s| s.lineage.clone()),
        serial: input.prior.map(|s| s.serial),
        config_hash: input.config_hash,
        git_commit: input.git_commit,
        destroy: opts.destroy,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        changes,
        drift,
        outputs,
        notes: lifecycle_notes,
        idle_cost,
        // Named by the caller, who knows the configuration.
        deployment: None,
    })
}

/// What the deployment costs when idle now and once the plan is applied, from the providers
/// that price their resources; `None` when none does.
fn idle_cost(changes: &[Change], providers: &Providers) -> Option<IdleCostChange> {
    let side = |after: bool| -> Option<IdleCost> {
        let mut by_provider: BTreeMap<&str, Vec<ResourceRef>> = BTreeMap::new();
        let priced = |c: &Change| {
            providers
                .get(&c.provider)
                .is_ok_and(|p| p.prices(&c.type_name))
        };
        for c in changes.iter().filter(|c| priced(c)) {
            let (value, sensitive) = if after {
                (c.after.as_ref(), &c.after_sensitive)
            } else {
                (c.before.as_ref(), &c.before_sensitive)
            };
            if let Some(value) = value {
                by_provider
                    .entry(&c.provider)
                    .or_default()
                    .push(ResourceRef {
                        address: c.address.clone(),
                        type_name: c.type_name.clone(),
                        attributes: value.clone(),
                        sensitive_paths: sensitive.clone(),
                    });
            }
        }
        let mut total: Option<IdleCost> = None;
        for (name, resources) in by_provider {
            let priced = providers
                .get(name)
                .ok()
                .and_then(|p| p.idle_cost(&resources));
            if let Some(priced) = priced {
                total.get_or_insert_with(IdleCost::default).merge(priced);
            }
        }
        total
    };
    let change = IdleCostChange {
        before: side(false),
        after: side(true),
    };
    (change.before.is_some() || change.after.is_some()).then_some(change)
}

/// The plan's note on the idle cost: the totals, the parts after the plan, and what keeps
/// the deployment from scaling to zero.
fn idle_cost_note(cost: &IdleCostChange) -> String {
    let mut note = cost.headline();
    if let Some(after) = &cost.after {
        note.push_str(&format!("\nafter: {}", after.parts()));
        for warning in &after.warnings {
            note.push_str(&format!("\nwarning: {warning}"));
        }
    }
    note
}

/// What a destroy keeps: the resources in state that `protected` says are protected, and
/// everything they depend on (so that what stays still works).
fn kept_by_protection(
    prior: &State,
    protected: impl Fn(&String, &crate::state::ResourceState) -> bool,
) -> BTreeSet<&str> {
    let mut kept = BTreeSet::new();
    let mut todo: Vec<&str> = prior
        .resources
        .iter()
        .filter(|(a, r)| protected(a, r))
        .map(|(a, _)| a.as_str())
        .collect();
    while let Some(address) = todo.pop() {
        if !kept.insert(address) {
            continue;
        }
        if let Some(r) = prior.resources.get(address) {
            todo.extend(
                r.dependencies
                    .iter()
                    .map(String::as_str)
                    .filter(|d| prior.resources.contains_key(*d)),
            );
        }
    }
    kept
}

/// The note of a destroy that keeps protected resources: which, and how to delete them too.
fn kept_note(
    prior: &State,
    kept: &BTreeSet<&str>,
    protected: impl Fn(&String, &crate::state::ResourceState) -> bool,
) -> String {
    let (mut guarded, mut needed) = (Vec::new(), Vec::new());
    for address in kept {
        match prior.resources.get_key_value(*address) {
            Some((a, r)) if protected(a, r) => guarded.push(*address),
            _ => needed.push(*address),
        }
    }
    let mut note = format!(
        "kept, protected by `lifecycle {{ prevent_destroy = true }}`: {}",
        guarded.join(", ")
    );
    if !needed.is_empty() {
        note.push_str(&format!(
            "; kept because they need them: {}",
            needed.join(", ")
        ));
    }
    note.push_str(
        "\nto delete them too, set `prevent_destroy = false` in the deployment's `lifecycle` block, run `weir apply` (it records the new setting), then `weir destroy` again",
    );
    note
}

/// Whether state records the resource as protected by `lifecycle { prevent_destroy }`.
fn recorded_protection(r: &crate::state::ResourceState) -> bool {
    r.private.get("prevent_destroy") == Some(&Value::Bool(true))
}

/// The error of a plan that would destroy resources protected by `prevent_destroy`: every one
/// of them, and how to allow it.
fn protected_error(protected: &[(String, &str)]) -> String {
    let list: Vec<String> = protected
        .iter()
        .map(|(address, what)| format!("  - {address} would be {what}"))
        .collect();
    format!(
        "this plan would destroy {} protected by `lifecycle {{ prevent_destroy = true }}`:\n{}\n  to allow it, set `prevent_destroy = false` in the deployment's `lifecycle` block (put the block back if it was removed), run `weir apply` (it records the new setting), then run this again",
        if protected.len() == 1 {
            "a resource".to_string()
        } else {
            format!("{} resources", protected.len())
        },
        list.join("\n")
    )
}

/// The concrete paths, among the force-new `patterns` (`*` for any index or key), where
/// `now` and `planned` differ: a change at any of them is a replacement.
fn forcing_paths(patterns: &[AttrPath], now: &Value, planned: &Value) -> Vec<AttrPath> {
    let mut out: Vec<AttrPath> = Vec::new();
    for path in expand(patterns, now)
        .into_iter()
        .chain(expand(patterns, planned))
    {
        if !out.contains(&path) && get_path(now, &path) != get_path(planned, &path) {
            out.push(path);
        }
    }
    out
}

fn instance_notes(
    instance: &ResourceInstance,
    runs: &mut HashMap<String, Vec<String>>,
) -> Vec<String> {
    let now = chrono::Utc::now();
    instance
        .notes
        .iter()
        .filter_map(|n| n.text(now, runs))
        .collect()
}

/// The resource addresses `--target` names: a resource in the configuration or the state, or
/// a configuration block (`pipeline.orders`, `schedule.nightly`, `notification.ops`,
/// `deployment.dev`), which stands for every resource lowered from it. `None` without targets;
/// each unknown one is an error with the nearest known address.
fn resolve_targets(
    targets: &[String],
    desired: &[ResourceInstance],
    prior: &State,
    errors: &mut Vec<String>,
) -> Option<Vec<String>> {
    if targets.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for t in targets {
        let from_block: Vec<&ResourceInstance> = desired
            .iter()
            .filter(|i| i.lowered_from.iter().any(|a| a == t))
            .collect();
        if !from_block.is_empty() {
            out.extend(from_block.into_iter().map(|i| i.address.clone()));
        } else if desired.iter().any(|i| i.address == *t) || prior.resources.contains_key(t) {
            out.push(t.clone());
        } else {
            let blocks: std::collections::BTreeSet<&str> = desired
                .iter()
                .flat_map(|i| i.lowered_from.iter().map(String::as_str))
                .collect();
            let known = blocks
                .into_iter()
                .chain(desired.iter().map(|i| i.address.as_str()))
                .chain(prior.resources.keys().map(String::as_str));
            errors.push(unknown_address(
                "--target",
                t,
                "no such resource or configuration block",
                "a target is a resource (`mage_pipeline.orders`) or a configuration block (`pipeline.orders`, `schedule.nightly`, `notification.ops`, `deployment.dev`)",
                known,
            ));
        }
    }
    Some(out)
}

/// `--target ADDR: no such …`, with the nearest of `known` when one is close, else `hint`.
fn unknown_address<'a>(
    flag: &str,
    address: &str,
    what: &str,
    hint: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    match crate::diagnostics::suggest(address, known) {
        Some(s) => format!("{flag} {address}: {what}; did you mean `{s}`?"),
        None => format!("{flag} {address}: {what}; {hint}"),
    }
}

fn name_of(address: &str, type_name: &str) -> String {
    address
        .strip_prefix(type_name)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(address)
        .to_string()
}

/// The value of an output read from a resource attribute, when the plan knows it: the resource
/// stays (a created or replaced object gets its values at apply), and the attribute is not
/// among those known only after apply.
fn known_from(source: &OutputSource, changes: &[Change]) -> Option<Value> {
    let change = changes.iter().find(|c| {
        c.address == source.address && matches!(c.action, Action::NoOp | Action::Update)
    })?;
    let overlaps = |p: &AttrPath| {
        let n = p.len().min(source.path.len());
        p[..n] == source.path[..n]
    };
    if change.after_unknown.iter().any(overlaps) {
        return None;
    }
    get_path(change.after.as_ref()?, &source.path)
        .filter(|v| !v.is_null() && !contains_sensitive_marker(v))
        .cloned()
}

fn plan_outputs(
    outputs: &[Output],
    prior: &State,
    changes: &[Change],
    destroy: bool,
) -> Vec<OutputChange> {
    let mut out = Vec::new();
    if !destroy {
        for o in outputs {
            // Known now when the resource it comes from is known.
            let resolved = o
                .from
                .as_ref()
                .filter(|_| o.unknown)
                .and_then(|source| known_from(source, changes));
            let o = &match resolved {
                Some(value) => Output {
                    value,
                    unknown: false,
                    ..o.clone()
                },
                None => o.clone(),
            };
            let before = prior.outputs.get(&o.name).map(|s| {
                // A secret is in state as its keyed digest: the same secret compares equal.
                let address = crate::state::output_address(&o.name);
                match &o.value {
                    v if o.sensitive
                        && !o.unknown
                        && marker(&prior.key, &address, &[], v) == s.value =>
                    {
                        v.clone()
                    }
                    _ => s.value.clone(),
                }
            });
            let after = if o.unknown {
                None
            } else {
                Some(o.value.clone())
            };
            let action = match &before {
                None => Action::Create,
                Some(b) if !o.unknown && Some(b) == after.as_ref() => Action::NoOp,
                Some(_) => Action::Update,
            };
            out.push(OutputChange {
                name: o.name.clone(),
                action,
                before,
                after,
                sensitive: o.sensitive,
                unknown: o.unknown,
                from: o.from.clone(),
            });
        }
    }
    for (name, s) in &prior.outputs {
        if destroy || !outputs.iter().any(|o| o.name == *name) {
            out.push(OutputChange {
                name: name.clone(),
                action: Action::Delete,
                before: Some(s.value.clone()),
                after: None,
                sensitive: s.sensitive,
                unknown: false,
                from: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_provider_sdk::{Cancel, PlannedValue, Provider, ProviderError, ResourceSchema};

    fn paths(list: &[&str]) -> Vec<AttrPath> {
        list.iter()
            .map(|p| p.split('.').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn force_new_paths_compare_nested_values_on_both_sides() {
        let patterns = paths(&["location", "settings.tier", "nics.*.network"]);
        let now = json!({"location": "eu", "settings": {"tier": "a", "size": 1},
            "nics": [{"network": "n0", "name": "x"}]});
        // Elsewhere in the same objects: nothing forces a replacement.
        let planned = json!({"location": "eu", "settings": {"tier": "a", "size": 2},
            "nics": [{"network": "n0", "name": "y"}]});
        assert!(forcing_paths(&patterns, &now, &planned).is_empty());
        // An element added, a nested key removed: the paths of either side count.
        let planned = json!({"location": "eu", "settings": {"size": 1},
            "nics": [{"network": "n0", "name": "x"}, {"network": "n1"}]});
        assert_eq!(
            forcing_paths(&patterns, &now, &planned),
            paths(&["settings.tier", "nics.1.network"])
        );
        // A whole object gone: every path under it that had a value.
        let planned = json!({"location": "us"});
        assert_eq!(
            forcing_paths(&patterns, &now, &planned),
            paths(&["location", "settings.tier", "nics.0.network"])
        );
    }

    /// A disk whose size may grow in place but not shrink: the provider asks for replacement
    /// when the planned size is below the prior one.
    struct Disks;

    #[async_trait::async_trait]
    impl Provider for Disks {
        fn name(&self) -> &str {
            "disks"
        }
        fn schemas(&self) -> Vec<ResourceSchema> {
            vec![ResourceSchema::new("disk", "a disk").attribute("size")]
        }
        fn plan(
            &self,
            _: &str,
            prior: Option<&Value>,
            desired: Value,
        ) -> Result<PlannedValue, ProviderError> {
            let size = |v: &Value| v.get("size").and_then(Value::as_u64);
            let shrinks = prior.is_some_and(|p| size(&desired) < size(p));
            let mut planned = PlannedValue::known(desired);
            if shrinks {
                planned.replace.push(vec!["size".to_string()]);
            }
            Ok(planned)
        }
        async fn read(&self, r: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
            r.iter().map(|r| Ok(Some(r.attributes.clone()))).collect()
        }
        async fn create(&self, r: &ResourceRef, _: &Cancel) -> Result<Value, ProviderError> {
            Ok(r.attributes.clone())
        }
        async fn update(
            &self,
            _: &Value,
            r: &ResourceRef,
            _: &Cancel,
        ) -> Result<Value, ProviderError> {
            Ok(r.attributes.clone())
        }
        async fn delete(&self, _: &ResourceRef, _: &Cancel) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    /// The plan of the disk `disk.d`, recorded at size 20, configured at `size`.
    fn plan_disk(size: u64, prevent_destroy: bool) -> Result<Plan, Vec<String>> {
        let mut prior = State::new();
        prior.resources.insert(
            "disk.d".into(),
            crate::state::ResourceState::new("disk", "disks", json!({"size": 20})),
        );
        let desired = vec![ResourceInstance {
            address: "disk.d".into(),
            type_name: "disk".into(),
            name: "d".into(),
            provider: "disks".into(),
            attributes: json!({"size": size}),
            dependencies: Vec::new(),
            sensitive_paths: Vec::new(),
            prevent_destroy,
            notes: Vec::new(),
            lowered_from: Vec::new(),
        }];
        let providers = Providers::new(vec![Arc::new(Disks)]);
        let input = PlanInput {
            desired,
            outputs: &[],
            prior: Some(&prior),
            config_hash: String::new(),
            git_commit: None,
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(plan(input, &providers, &PlanOptions::default()))
    }

    #[test]
    fn a_change_the_provider_judges_irreversible_in_place_is_a_replacement() {
        let grow = plan_disk(30, false).unwrap();
        assert_eq!(grow.changes[0].action, Action::Update);
        assert!(grow.changes[0].replace_paths.is_empty());
        let shrink = plan_disk(10, false).unwrap();
        assert_eq!(shrink.changes[0].action, Action::Replace);
        assert_eq!(shrink.changes[0].replace_paths, paths(&["size"]));
        assert_eq!(
            shrink.changes[0].reason,
            Some(Reason::ReplaceBecauseCannotUpdate)
        );
        // `prevent_destroy` stops it like any other replacement.
        let errors = plan_disk(10, true).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("disk.d would be replaced")),
            "{errors:?}"
        );
        assert_eq!(
            plan_disk(20, false).unwrap().changes[0].action,
            Action::NoOp
        );
    }
}
