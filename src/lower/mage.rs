//! Lowering to the Mage provider's resources: the project file, one pipeline file, one code
//! file per block and one triggers file per pipeline. The attribute shapes are the Mage
//! provider's contract (see `providers/mage`).

use super::ResourceInstance;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{
    AddOn, Block, Channel, Configuration, Event, Notification, OnLimit, Pipeline, RetryPolicy,
    Schedule,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use weir_provider_sdk::AttrPath;

const PROVIDER: &str = "mage";

pub(super) fn lower_local(model: &Configuration) -> Result<Vec<ResourceInstance>, Diagnostics> {
    let d = &model.deployment;
    let project_dir = d
        .project_dir
        .clone()
        .unwrap_or_else(|| "mage_project".into());
    let mut out = Vec::new();
    let mut diags = Diagnostics::new();

    let project_address = format!("mage_project.{}", d.name);
    // The image and its Mage version are attributes of the project, so that an upgrade (or a
    // downgrade) is a change a reviewer sees, with what weir knows about the version.
    let mut project = ResourceInstance::new(
        "mage_project",
        &d.name,
        PROVIDER,
        json!({
            "project_dir": project_dir,
            "project_uuid": project_uuid(&d.name),
            "remote_variables_dir": d.storage.as_ref().map(|s| format!("gs://{}/variables", s.bucket)),
            "logging": d.storage.as_ref().map(|s| json!({"bucket": s.bucket, "prefix": "logs"})),
            "image": d.image,
            "mage_version": d.mage_version,
        }),
    )
    .lowered_from(&format!("deployment.{}", d.name));
    // The project is what a `local` deployment's `lifecycle { prevent_destroy }` protects: it
    // stands for the whole Mage project directory (pipelines, blocks, triggers are its parts).
    project.prevent_destroy = d.prevent_destroy;
    project.notes.extend(
        crate::model::image_risks(&d.image, &d.mage_version)
            .into_iter()
            .map(super::Note::Text),
    );
    out.push(project);
    if d.runtime.enabled {
        out.extend(runtime_files(model, &project_dir, &project_address));
    }

    // Mage keeps block code by type and uuid, shared by every pipeline: blocks of several
    // pipelines that land in one file become one resource. (The model already refuses two
    // different codes for one file; the check below keeps lowering safe on its own.)
    // Path → (owner, code, index of its instance in `out`).
    let mut files: BTreeMap<String, (String, String, usize)> = BTreeMap::new();
    for p in &model.pipelines {
        let pipeline_address = format!("mage_pipeline.{}", p.name);
        let mut pipeline = ResourceInstance::new(
            "mage_pipeline",
            &p.name,
            PROVIDER,
            pipeline_attributes(model, p, &project_dir),
        )
        .depends_on(&project_address)
        .lowered_from(&format!("pipeline.{}", p.name));
        for n in notifications_for(model, p) {
            pipeline = pipeline.lowered_from(&format!("notification.{}", n.name));
        }
        pipeline.sensitive_paths.extend(pipeline_secrets(p));
        pipeline
            .sensitive_paths
            .extend(notification_secrets(model, p));
        let code_files = p
            .blocks
            .iter()
            .map(|b| {
                (
                    b.uuid.as_str(),
                    crate::model::code_file(b.kind.folder(), &b.uuid, b.language),
                    &b.code,
                    &b.sensitive,
                )
            })
            .chain(p.conditions.iter().map(|c| {
                (
                    c.uuid.as_str(),
                    crate::model::code_file("conditionals", &c.uuid, c.language),
                    &c.code,
                    &c.sensitive,
                )
            }))
            .chain(p.callbacks.iter().map(|c| {
                (
                    c.uuid.as_str(),
                    crate::model::code_file("callbacks", &c.uuid, c.language),
                    &c.code,
                    &c.sensitive,
                )
            }));
        for (uuid, path, code, secrets) in code_files {
            let owner = format!("{}.{uuid}", p.name);
            let code_secrets = code_file_secrets(secrets);
            if let Some((other, other_code, index)) = files.get(&path) {
                // The same code, shared: a secret in either copy makes the file's code secret.
                out[*index].sensitive_paths.extend(code_secrets);
                if other_code != code {
                    diags.push(
                        Diagnostic::error(format!(
                            "blocks `{other}` and `{owner}` would both be written to `{path}` with different code"
                        ))
                        .help("Mage keeps block code by type and uuid, shared by all pipelines: give one of the blocks another name"),
                    );
                } else {
                    pipeline = pipeline.depends_on(&format!("mage_block.{other}"));
                }
                continue;
            }
            files.insert(path.clone(), (owner.clone(), code.clone(), out.len()));
            let mut block = ResourceInstance::new(
                "mage_block",
                &owner,
                PROVIDER,
                json!({"project_dir": project_dir, "path": path, "code": code}),
            )
            .depends_on(&project_address)
            .lowered_from(&format!("pipeline.{}", p.name));
            block.sensitive_paths.extend(code_secrets);
            pipeline = pipeline.depends_on(&block.address);
            out.push(block);
        }
        let schedules: Vec<&Schedule> = model
            .schedules
            .iter()
            .filter(|s| s.pipeline == p.name)
            .collect();
        let mut triggers = ResourceInstance::new(
            "mage_triggers",
            &p.name,
            PROVIDER,
            json!({
                "project_dir": project_dir,
                "pipeline": p.name,
                "triggers": schedules.iter().map(|s| trigger(s)).collect::<Vec<_>>(),
                "retired": [],
            }),
        )
        .depends_on(&pipeline_address)
        .lowered_from(&format!("pipeline.{}", p.name));
        for s in &schedules {
            triggers = triggers.lowered_from(&format!("schedule.{}", s.name));
            // Run times from a secret cron expression or start would tell it: no note then.
            let secret_timing = s.sensitive.has("cron") || s.sensitive.has("start");
            if let Some(cron) = s.cron.as_ref().filter(|_| !secret_timing) {
                triggers.notes.push(super::Note::NextRuns {
                    schedule: s.name.clone(),
                    cron: cron.clone(),
                    start: s.start.clone(),
                });
            }
        }
        // An API trigger's token is all it takes to start runs (retired triggers included).
        triggers = triggers.sensitive(&["triggers", "*", "token"]);
        for (i, s) in schedules.iter().enumerate() {
            triggers.sensitive_paths.extend(trigger_secrets(s, i));
        }
        out.push(pipeline);
        out.push(triggers);
    }
    if diags.has_errors() {
        return Err(diags);
    }
    deployment_secrets(d, &mut out);
    Ok(out)
}

/// The weir runtime's files (`weir/…`, see `weir_provider_mage::runtime`) and its configuration
/// `weir/runtime.json`: which blocks run on which Cloud Run job, which run variables are
/// secret, the Mage versions the runtime was tested with.
fn runtime_files(
    model: &Configuration,
    project_dir: &str,
    project_address: &str,
) -> Vec<ResourceInstance> {
    use weir_provider_mage::runtime;
    let d = &model.deployment;
    let config = runtime_config(model);
    let text = serde_json::to_string_pretty(&config).unwrap_or_default() + "\n";
    runtime::FILES
        .iter()
        .map(|(path, code)| (path.to_string(), code.to_string()))
        .chain([(runtime::CONFIG_FILE.to_string(), text)])
        .map(|(path, code)| {
            ResourceInstance::new(
                "mage_file",
                &path.replace('/', "."),
                PROVIDER,
                json!({
                    "project_dir": project_dir,
                    "path": format!("{}/{path}", runtime::DIR),
                    "code": code,
                }),
            )
            .depends_on(project_address)
            .lowered_from(&format!("deployment.{}", d.name))
        })
        .collect()
}

/// `weir/runtime.json`: the runtime's configuration (its format is documented in
/// `docs/runtime.md`).
fn runtime_config(model: &Configuration) -> Value {
    let d = &model.deployment;
    let gcp = d.target == crate::model::Target::Gcp;
    let mut blocks = Map::new();
    let mut sensitive_variables = Map::new();
    for p in &model.pipelines {
        let mut jobs = Map::new();
        for b in p.blocks.iter().filter(|_| gcp) {
            let Some(profile) = b.profile.as_ref().or(p.profile.as_ref()) else {
                continue;
            };
            let Some(profile) = model.profiles.iter().find(|x| &x.name == profile) else {
                continue;
            };
            jobs.insert(
                b.uuid.clone(),
                json!({
                    "profile": profile.name,
                    "job": super::gcp::job_path(d, profile),
                    "timeout_seconds": profile.timeout_secs,
                }),
            );
        }
        if !jobs.is_empty() {
            blocks.insert(p.name.clone(), Value::Object(jobs));
        }
        let secret: std::collections::BTreeSet<String> = secret_keys(&p.sensitive, &p.variables)
            .chain(
                model
                    .schedules
                    .iter()
                    .filter(|s| s.pipeline == p.name)
                    .flat_map(|s| secret_keys(&s.sensitive, &s.variables)),
            )
            .collect();
        if !secret.is_empty() {
            sensitive_variables.insert(p.name.clone(), json!(secret));
        }
    }
    json!({
        "format": 1,
        "deployment": d.name,
        "target": if gcp { "gcp" } else { "local" },
        "tested_mage_versions": weir_provider_mage::runtime::TESTED_MAGE_VERSIONS,
        "allow_untested_mage": d.runtime.allow_untested_mage,
        "blocks": blocks,
        "sensitive_variables": sensitive_variables,
    })
}

/// The keys of `variables` that hold a secret: those a sensitive path of `variables` starts
/// with, or every key when the whole map is secret.
fn secret_keys<'a>(
    sensitive: &'a crate::config::eval::Sensitivity,
    variables: &'a Map<String, Value>,
) -> impl Iterator<Item = String> + 'a {
    sensitive
        .iter()
        .filter(|(attr, _)| *attr == "variables")
        .flat_map(move |(_, paths)| {
            let whole = paths.is_empty() || paths.iter().any(|p| p.is_empty());
            let keys: Vec<String> = if whole {
                variables.keys().cloned().collect()
            } else {
                paths.iter().filter_map(|p| p.first().cloned()).collect()
            };
            keys
        })
}

/// Marks where a deployment's secrets land: `project_dir` in every resource; in the project,
/// the storage bucket and the attributes named after the deployment's.
fn deployment_secrets(d: &crate::model::Deployment, out: &mut [ResourceInstance]) {
    for instance in out.iter_mut() {
        let project = instance.type_name == "mage_project";
        let mut paths: Vec<AttrPath> = Vec::new();
        for (attr, _) in d.sensitive.iter() {
            let lands: &[&str] = match attr {
                "project_dir" => &["project_dir"],
                _ if !project => &[],
                "storage.bucket" => &["remote_variables_dir", "logging"],
                // The Mage version is read from the image's tag.
                "image" => &["image", "mage_version"],
                other => &[other],
            };
            paths.extend(
                lands
                    .iter()
                    .filter(|a| instance.attributes.get(**a).is_some())
                    .map(|a| path(&[a])),
            );
        }
        instance.sensitive_paths.extend(paths);
    }
}

/// A stable project uuid derived from the deployment's name: `mage start` writes a random one
/// into the project file when it is missing, which would show up as drift.
fn project_uuid(deployment: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("weir:deployment:{deployment}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// `base` followed by each path in `inner`.
fn under(base: &[&str], inner: &[AttrPath]) -> Vec<AttrPath> {
    inner
        .iter()
        .map(|p| {
            base.iter()
                .map(|s| s.to_string())
                .chain(p.iter().cloned())
                .collect()
        })
        .collect()
}

/// Where a pipeline's secrets land in its `mage_pipeline` attributes: the pipeline's own
/// attributes, and those of its blocks and add-ons. An attribute whose place is not known
/// here masks the whole element it belongs to (the block, or the whole pipeline), so that a
/// new attribute cannot show a secret before lowering learns where it lands.
fn pipeline_secrets(p: &Pipeline) -> Vec<AttrPath> {
    let mut out = Vec::new();
    for (attr, inner) in p.sensitive.iter() {
        out.extend(match attr {
            // Collections keep their shape: a secret inside masks only its element.
            "tags" | "variables" => under(&[attr], inner),
            "description" => vec![path(&["description"])],
            _ => match attr.split_once('.') {
                Some(("retry", field)) => vec![path(&["blocks", "*", "retry_config", field])],
                Some(("concurrency", field)) => vec![path(&[
                    "concurrency_config",
                    match field {
                        "on_limit" => "on_pipeline_run_limit_reached",
                        other => other,
                    },
                ])],
                _ => vec![Vec::new()],
            },
        });
    }
    for (i, b) in p.blocks.iter().enumerate() {
        let i = i.to_string();
        for (attr, _) in b.sensitive.iter() {
            out.push(match attr.split_once('.') {
                _ if matches!(attr, "code" | "source") => continue,
                Some(("retry", field)) => path(&["blocks", &i, "retry_config", field]),
                None if matches!(attr, "type" | "language" | "timeout") => {
                    path(&["blocks", &i, attr])
                }
                None if matches!(attr, "dynamic" | "reduce_output") => {
                    path(&["blocks", &i, "configuration", attr])
                }
                _ => path(&["blocks", &i]),
            });
        }
    }
    for (list, add_ons) in [("conditionals", &p.conditions), ("callbacks", &p.callbacks)] {
        for (i, a) in add_ons.iter().enumerate() {
            if a.sensitive
                .iter()
                .any(|(attr, _)| !matches!(attr, "code" | "source"))
            {
                out.push(path(&[list, &i.to_string()]));
            }
        }
    }
    out
}

/// The secrets of a `mage_block`: its code when the code derives from a secret, its path when
/// its type or language (the file's folder and extension) does.
fn code_file_secrets(secrets: &crate::config::eval::Sensitivity) -> Vec<AttrPath> {
    let mut out = Vec::new();
    for (attr, _) in secrets.iter() {
        match attr {
            "code" | "source" => out.push(path(&["code"])),
            "type" | "language" => out.push(path(&["path"])),
            // The others are kept in the pipeline's attributes only.
            _ => {}
        }
    }
    out
}

/// Where a schedule's secrets land in its pipeline's `mage_triggers` attributes (`index`: its
/// place in `triggers`).
fn trigger_secrets(s: &Schedule, index: usize) -> Vec<AttrPath> {
    let i = index.to_string();
    let mut out = Vec::new();
    for (attr, inner) in s.sensitive.iter() {
        let at = |rest: &[&str]| {
            let mut p = path(&["triggers", &i]);
            p.extend(rest.iter().map(|s| s.to_string()));
            p
        };
        match attr {
            "variables" => out.extend(under(&["triggers", &i, "variables"], inner)),
            "cron" => out.push(at(&["schedule_interval"])),
            "start" => out.push(at(&["start_time"])),
            "sla" => out.push(at(&["sla"])),
            "type" => out.push(at(&["schedule_type"])),
            "active" => out.push(at(&["status"])),
            "timeout" => out.push(at(&["settings", "timeout"])),
            "skip_if_running" => out.push(at(&["settings", "skip_if_previous_running"])),
            "allow_blocks_to_fail" => out.push(at(&["settings", "allow_blocks_to_fail"])),
            "max_concurrent_runs" => out.push(at(&["settings", "pipeline_run_limit"])),
            _ => out.push(at(&[])),
        }
    }
    out
}

fn path(segments: &[&str]) -> AttrPath {
    segments.iter().map(|s| s.to_string()).collect()
}

fn retry_config(r: &RetryPolicy) -> Value {
    if r.retries == 0 {
        return Value::Null;
    }
    json!({
        "retries": r.retries,
        "delay": r.delay_secs,
        "max_delay": r.max_delay_secs,
        "exponential_backoff": r.exponential_backoff,
    })
}

fn block_entry(p: &Pipeline, b: &Block) -> Value {
    let downstream: Vec<&str> = p
        .blocks
        .iter()
        .filter(|other| other.upstream.contains(&b.uuid))
        .map(|other| other.uuid.as_str())
        .collect();
    json!({
        "uuid": b.uuid,
        "type": b.kind.as_str(),
        "language": b.language.as_str(),
        "upstream_blocks": b.upstream,
        "downstream_blocks": downstream,
        "configuration": {"dynamic": b.dynamic, "reduce_output": b.reduce_output},
        "retry_config": retry_config(&b.retry),
        "timeout": b.timeout_secs,
    })
}

fn add_on_entry(a: &AddOn, kind: &str) -> Value {
    json!({
        "uuid": a.uuid,
        "type": kind,
        "language": a.language.as_str(),
        "upstream_blocks": a.blocks,
        "downstream_blocks": [],
        "configuration": {"dynamic": false, "reduce_output": false},
        "retry_config": null,
        "timeout": null,
    })
}

fn pipeline_attributes(model: &Configuration, p: &Pipeline, project_dir: &str) -> Value {
    let concurrency = p.concurrency.as_ref().map(|c| {
        let mut m = Map::new();
        if let Some(n) = c.block_run_limit {
            m.insert("block_run_limit".into(), n.into());
        }
        if let Some(n) = c.pipeline_run_limit {
            m.insert("pipeline_run_limit".into(), n.into());
        }
        m.insert(
            "on_pipeline_run_limit_reached".into(),
            match c.on_limit {
                OnLimit::Wait => "wait",
                OnLimit::Skip => "skip",
            }
            .into(),
        );
        Value::Object(m)
    });
    json!({
        "project_dir": project_dir,
        "uuid": p.name,
        "name": p.name,
        "description": p.description,
        "tags": p.tags,
        "variables": p.variables,
        "concurrency_config": concurrency,
        "notification_config": notification_config(model, p),
        "blocks": p.blocks.iter().map(|b| block_entry(p, b)).collect::<Vec<_>>(),
        "conditionals": p.conditions.iter().map(|c| add_on_entry(c, "conditional")).collect::<Vec<_>>(),
        "callbacks": p.callbacks.iter().map(|c| add_on_entry(c, "callback")).collect::<Vec<_>>(),
    })
}

/// The notifications that apply to a pipeline.
fn notifications_for<'a>(
    model: &'a Configuration,
    p: &'a Pipeline,
) -> impl Iterator<Item = &'a Notification> + 'a {
    model
        .notifications
        .iter()
        .filter(move |n| match &n.pipelines {
            None => true,
            Some(list) => list.contains(&p.name),
        })
}

/// Mage's name for an event's message template.
fn template_key(event: Event) -> &'static str {
    match event {
        Event::Failure => "failure",
        Event::Success => "success",
        Event::SlaMissed => "passed_sla",
    }
}

fn channel_key(c: Channel) -> String {
    format!("{}_config", c.as_str())
}

/// Mage's `notification_config` for one pipeline: the channels of every notification that
/// applies to it, the union of their events, and their message templates.
fn notification_config(model: &Configuration, p: &Pipeline) -> Value {
    let mut config = Map::new();
    let mut alert_on: Vec<&str> = Vec::new();
    let mut templates = Map::new();
    for n in notifications_for(model, p) {
        config.insert(channel_key(n.channel), Value::Object(n.settings.clone()));
        for e in &n.on {
            let name = match e {
                Event::Failure => "trigger_failure",
                Event::Success => "trigger_success",
                Event::SlaMissed => "trigger_passed_sla",
            };
            if !alert_on.contains(&name) {
                alert_on.push(name);
            }
        }
        for (event, message) in &n.messages {
            let key = template_key(*event);
            let mut m = Map::new();
            for (field, value) in [
                ("title", &message.title),
                ("summary", &message.summary),
                ("details", &message.details),
            ] {
                if let Some(v) = value {
                    m.insert(field.into(), v.clone().into());
                }
            }
            templates.insert(key.into(), Value::Object(m));
        }
    }
    if config.is_empty() {
        return Value::Null;
    }
    alert_on.sort();
    config.insert("alert_on".into(), alert_on.into());
    if !templates.is_empty() {
        config.insert("message_templates".into(), Value::Object(templates));
    }
    Value::Object(config)
}

/// Paths of secrets in the notification config: credentials are always sensitive, and every
/// setting of a notification built from a sensitive value; so is a message template built
/// from one.
fn notification_secrets(model: &Configuration, p: &Pipeline) -> Vec<AttrPath> {
    let mut out = Vec::new();
    for n in notifications_for(model, p) {
        let channel = channel_key(n.channel);
        for key in n.settings.keys() {
            if n.sensitive || matches!(key.as_str(), "webhook_url" | "api_key" | "smtp_password") {
                out.push(path(&["notification_config", &channel, key]));
            }
        }
        for (event, message) in &n.messages {
            for (field, _) in message.sensitive.iter() {
                out.push(path(&[
                    "notification_config",
                    "message_templates",
                    template_key(*event),
                    field,
                ]));
            }
        }
    }
    out
}

fn trigger(s: &Schedule) -> Value {
    json!({
        "name": s.name,
        "schedule_type": s.kind.as_str(),
        "schedule_interval": s.cron,
        "start_time": s.start,
        "status": if s.active { "active" } else { "inactive" },
        "variables": s.variables,
        "sla": s.sla_secs,
        "settings": {
            "skip_if_previous_running": s.skip_if_running,
            "allow_blocks_to_fail": s.allow_blocks_to_fail,
            "timeout": s.timeout_secs,
            "pipeline_run_limit": s.max_concurrent_runs,
        },
        "description": null,
        "token": null,
        "last_enabled_at": null,
    })
}
