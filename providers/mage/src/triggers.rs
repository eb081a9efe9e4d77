//! `mage_triggers`: `pipelines/<pipeline>/triggers.yaml`, a pipeline's schedules.
//!
//! What Mage 0.9.80 does with this file shapes everything here:
//! - `name`, `schedule_type`, `schedule_interval` and `start_time` are required keys (null is
//!   fine), and a trigger with an unknown key is silently skipped, so weir writes exactly
//!   Mage's keys and nothing else;
//! - Mage rewrites the file (`yaml.safe_dump`: sorted keys, added defaults, a generated
//!   `token`) when an active trigger has no `last_enabled_at`, so weir presets
//!   `last_enabled_at` and `token`, and reads the file semantically;
//! - Mage never deletes a trigger that disappears from the file, so a removed schedule is kept
//!   in the file as `inactive` and listed in `retired`.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_saphyr::DoubleQuoted;
use weir_provider_sdk::{AttrPath, is_sensitive_marker};

use crate::attrs::{is_false, kind_of, nullable, top_mapping};
use crate::fsio::RelPath;
use crate::yaml::{self, Timestamps};

pub(crate) const TYPE: &str = "mage_triggers";

/// The environments Mage accepts in `envs` (OSS).
const VALID_ENVS: &[&str] = &["dev", "staging", "prod", "test", "test_mage"];

/// The attributes of a `mage_triggers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggersAttrs {
    pub project_dir: String,
    pub pipeline: String,
    #[serde(default, deserialize_with = "nullable")]
    pub triggers: Vec<TriggerAttrs>,
    /// Names of triggers kept in the file as inactive because their schedule was removed.
    #[serde(default, deserialize_with = "nullable")]
    pub retired: Vec<String>,
}

/// One trigger. Datetimes are RFC 3339 in UTC (`2026-11-29T05:00:00Z`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerAttrs {
    pub name: String,
    pub schedule_type: String,
    #[serde(default)]
    pub schedule_interval: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default = "inactive")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub variables: Map<String, Value>,
    #[serde(default)]
    pub sla: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    pub settings: TriggerSettings,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub last_enabled_at: Option<String>,
    /// Mage syncs the trigger only where `ENV` is one of these; empty (left out) means
    /// everywhere.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub envs: Vec<String>,
}

fn inactive() -> String {
    "inactive".to_string()
}

/// Mage's `SettingsConfig`: exactly these seven keys. The last three are present in the
/// attributes only when they are not Mage's default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerSettings {
    #[serde(default, deserialize_with = "nullable")]
    pub skip_if_previous_running: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub allow_blocks_to_fail: bool,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub pipeline_run_limit: Option<u64>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub create_initial_pipeline_run: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub landing_time_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_status: Option<String>,
}

const SETTINGS_KEYS: &[&str] = &[
    "skip_if_previous_running",
    "allow_blocks_to_fail",
    "create_initial_pipeline_run",
    "landing_time_enabled",
    "pipeline_run_limit",
    "timeout",
    "timeout_status",
];

/// Every key of Mage's `Trigger` dataclass; any other key makes Mage skip the trigger.
const TRIGGER_KEYS: &[&str] = &[
    "name",
    "pipeline_uuid",
    "schedule_type",
    "start_time",
    "schedule_interval",
    "status",
    "last_enabled_at",
    "variables",
    "sla",
    "settings",
    "envs",
    "repo_path",
    "description",
    "token",
];

const REQUIRED_KEYS: &[&str] = &["name", "schedule_type", "schedule_interval", "start_time"];

impl TriggersAttrs {
    pub(crate) fn from_value(value: &Value) -> Result<TriggersAttrs, String> {
        let mut attrs = TriggersAttrs::deserialize(value).map_err(|e| e.to_string())?;
        attrs.rel_path()?;
        let mut names = HashSet::new();
        for trigger in &mut attrs.triggers {
            if trigger.name.is_empty() {
                return Err("a trigger has an empty name".to_string());
            }
            if !names.insert(trigger.name.clone()) {
                return Err(format!(
                    "two triggers are named `{}`; Mage identifies a trigger by its pipeline and name",
                    trigger.name
                ));
            }
            trigger.validate()?;
        }
        Ok(attrs)
    }

    pub(crate) fn rel_path(&self) -> Result<RelPath, String> {
        path_for(&self.pipeline)
    }

    pub(crate) fn to_value(&self) -> Result<Value, String> {
        serde_json::to_value(self).map_err(|e| e.to_string())
    }

    /// The text of `triggers.yaml`.
    pub(crate) fn render(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct Settings<'a> {
            skip_if_previous_running: bool,
            allow_blocks_to_fail: bool,
            #[serde(skip_serializing_if = "is_false")]
            create_initial_pipeline_run: bool,
            #[serde(skip_serializing_if = "is_false")]
            landing_time_enabled: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            pipeline_run_limit: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout_status: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Trigger<'a> {
            name: &'a str,
            schedule_type: &'a str,
            schedule_interval: Option<DoubleQuoted<&'a str>>,
            start_time: Option<String>,
            status: &'a str,
            #[serde(skip_serializing_if = "Map::is_empty")]
            variables: &'a Map<String, Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            sla: Option<u64>,
            settings: Settings<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            description: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            last_enabled_at: Option<String>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            envs: &'a [String],
        }
        #[derive(Serialize)]
        struct File<'a> {
            triggers: Vec<Trigger<'a>>,
        }

        let mut stamps = Timestamps::new();
        let mut slot = |raw: &Option<String>, what: &str| -> Result<Option<String>, String> {
            match raw {
                None => Ok(None),
                Some(raw) => match yaml::parse_timestamp(raw) {
                    Some(at) => Ok(Some(stamps.slot(&at))),
                    None => Err(format!("`{what}` is not a datetime: `{raw}`")),
                },
            }
        };
        let mut triggers = Vec::with_capacity(self.triggers.len());
        for t in &self.triggers {
            let s = &t.settings;
            triggers.push(Trigger {
                name: &t.name,
                schedule_type: &t.schedule_type,
                schedule_interval: t.schedule_interval.as_deref().map(DoubleQuoted),
                start_time: slot(&t.start_time, "start_time")?,
                status: &t.status,
                variables: &t.variables,
                sla: t.sla,
                settings: Settings {
                    skip_if_previous_running: s.skip_if_previous_running,
                    allow_blocks_to_fail: s.allow_blocks_to_fail,
                    create_initial_pipeline_run: s.create_initial_pipeline_run,
                    landing_time_enabled: s.landing_time_enabled,
                    pipeline_run_limit: s.pipeline_run_limit,
                    timeout: s.timeout,
                    timeout_status: s.timeout_status.as_deref(),
                },
                description: t.description.as_deref(),
                token: t.token.as_deref(),
                last_enabled_at: slot(&t.last_enabled_at, "last_enabled_at")?,
                envs: &t.envs,
            });
        }
        let text = yaml::to_yaml(&File { triggers })?;
        stamps.fill(text)
    }

    /// Fills what only apply can choose: `start_time` of time triggers and `last_enabled_at`
    /// of active ones (now, to the second), and `token` (a random 32-hex token).
    pub(crate) fn fill_at_apply(&mut self, now: DateTime<Utc>) {
        let now = now.with_nanosecond(0).unwrap_or(now);
        let stamp = yaml::canonical_timestamp(&now);
        for t in &mut self.triggers {
            if t.start_time.is_none() && t.schedule_type == "time" {
                t.start_time = Some(stamp.clone());
            }
            if t.last_enabled_at.is_none() && t.status == "active" {
                t.last_enabled_at = Some(stamp.clone());
            }
            if t.token.is_none() {
                t.token = Some(uuid::Uuid::new_v4().simple().to_string());
            }
        }
    }
}

impl TriggerAttrs {
    fn validate(&mut self) -> Result<(), String> {
        let name = self.name.clone();
        if !matches!(self.schedule_type.as_str(), "time" | "api" | "event") {
            return Err(format!(
                "trigger `{name}`: schedule_type must be `time`, `api` or `event`, not `{}`",
                self.schedule_type
            ));
        }
        if !matches!(self.status.as_str(), "active" | "inactive") {
            return Err(format!(
                "trigger `{name}`: status must be `active` or `inactive`, not `{}`",
                self.status
            ));
        }
        for (what, value) in [
            ("start_time", &mut self.start_time),
            ("last_enabled_at", &mut self.last_enabled_at),
        ] {
            if let Some(raw) = value {
                match yaml::parse_timestamp(raw) {
                    Some(at) => *raw = yaml::canonical_timestamp(&at),
                    None => {
                        return Err(format!(
                            "trigger `{name}`: {what} `{raw}` is not a datetime (use RFC 3339, e.g. 2026-11-29T05:00:00Z)"
                        ));
                    }
                }
            }
        }
        if let Some(env) = self.envs.iter().find(|e| !VALID_ENVS.contains(&e.as_str())) {
            return Err(format!(
                "trigger `{name}`: env `{env}` is not one Mage accepts ({})",
                VALID_ENVS.join(", ")
            ));
        }
        Ok(())
    }
}

/// `pipelines/<pipeline>/triggers.yaml`.
pub(crate) fn path_for(pipeline: &str) -> Result<RelPath, String> {
    RelPath::from_segments(&["pipelines", pipeline, "triggers.yaml"])
        .map_err(|e| format!("pipeline: {e}"))
}

/// The result of planning a `mage_triggers`.
pub(crate) struct Planned {
    pub attrs: TriggersAttrs,
    pub unknown: Vec<AttrPath>,
    pub notes: Vec<String>,
}

/// Adjusts the desired triggers against the prior ones (from state):
/// - a time trigger without `start_time` keeps the prior one, or gets one at apply;
/// - `token` is kept from the prior trigger, or generated at apply;
/// - an active trigger keeps its prior `last_enabled_at` while it stays active, or gets a new
///   one at apply when it becomes active (Mage itself would rewrite the file otherwise); a new
///   cron keeps it too: Mage stamps a new one itself when it sees the cron change in a trigger
///   it knows, whatever the file says, so a new stamp from weir would only be noise in the plan;
/// - a prior trigger missing from the desired ones is carried over as `inactive` and listed in
///   `retired`, with a note.
pub(crate) fn plan(prior: Option<&Value>, mut desired: TriggersAttrs) -> Planned {
    let mut unknown = Vec::new();
    let mut notes = Vec::new();

    let same_target = prior.is_some_and(|p| {
        p.get("project_dir").and_then(Value::as_str) == Some(desired.project_dir.as_str())
            && p.get("pipeline").and_then(Value::as_str) == Some(desired.pipeline.as_str())
    });
    let prior_triggers: Vec<TriggerAttrs> = match prior {
        Some(p) => lenient_triggers(p),
        None => Vec::new(),
    };
    let prior_retired: BTreeSet<String> = prior
        .and_then(|p| p.get("retired"))
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    if !same_target {
        // Replacing the resource (another project or pipeline): the old pipeline's triggers
        // stay in Mage's database.
        for t in prior_triggers
            .iter()
            .filter(|t| !prior_retired.contains(&t.name))
        {
            notes.push(format!(
                "schedule `{}` moves away from its previous pipeline or project; Mage never deletes a trigger when it disappears from triggers.yaml, so it stays in Mage's database (delete it in Mage's UI or API)",
                t.name
            ));
        }
        for (index, t) in desired.triggers.iter().enumerate() {
            mark_unknown(t, index, &mut unknown);
        }
        return Planned {
            attrs: desired,
            unknown,
            notes,
        };
    }

    let by_name: HashMap<&str, &TriggerAttrs> = prior_triggers
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    for (index, t) in desired.triggers.iter_mut().enumerate() {
        let before = by_name.get(t.name.as_str()).copied();
        if let Some(before) = before {
            if t.start_time.is_none() && t.schedule_type == "time" {
                t.start_time = before.start_time.clone();
            }
            if t.token.is_none() {
                t.token = before.token.clone();
            }
            if t.last_enabled_at.is_none() && (t.status != "active" || before.status == "active") {
                t.last_enabled_at = before.last_enabled_at.clone();
            }
        }
        mark_unknown(t, index, &mut unknown);
    }

    let desired_names: HashSet<String> = desired.triggers.iter().map(|t| t.name.clone()).collect();
    // A value that was already planned (update re-plans it) lists its retired triggers.
    let mut retired: Vec<String> = desired
        .retired
        .iter()
        .filter(|n| desired_names.contains(*n))
        .cloned()
        .collect();
    for before in &prior_triggers {
        if desired_names.contains(&before.name) {
            continue;
        }
        let mut kept = before.clone();
        kept.status = "inactive".to_string();
        let earlier = if prior_retired.contains(&before.name) {
            " earlier"
        } else {
            ""
        };
        notes.push(format!(
            "schedule `{}` was removed from the configuration{earlier}; Mage never deletes a trigger when it disappears from triggers.yaml, so weir keeps it there as inactive (delete it in Mage's UI or API to remove it from Mage's database)",
            before.name
        ));
        if !retired.contains(&before.name) {
            retired.push(before.name.clone());
        }
        desired.triggers.push(kept);
    }
    desired.retired = retired;
    Planned {
        attrs: desired,
        unknown,
        notes,
    }
}

/// The token digests of `prior` (state keeps a token only as a keyed digest, see
/// [`weir_provider_sdk::SENSITIVE_MARKER`]) put back into the planned `value` where a trigger of
/// the same name has no token yet: planned from state alone (`--refresh=false`), a trigger keeps
/// its token, and the plan says so instead of "known after apply". Apply takes the token itself
/// from the live file ([`keep_live_tokens`]).
pub(crate) fn keep_token_digests(
    prior: Option<&Value>,
    value: &mut Value,
    unknown: &mut Vec<AttrPath>,
) {
    // Another pipeline or project: its triggers are new ones (see [`plan`]).
    let same_target = |p: &&Value| {
        ["project_dir", "pipeline"]
            .iter()
            .all(|k| p.get(k).is_some_and(|v| Some(v) == value.get(k)))
    };
    let Some(prior) = prior
        .filter(same_target)
        .and_then(|p| p.get("triggers"))
        .and_then(Value::as_array)
    else {
        return;
    };
    let digests: HashMap<&str, &Value> = prior
        .iter()
        .filter_map(|t| {
            let token = t.get("token").filter(|v| is_sensitive_marker(v))?;
            Some((t.get("name")?.as_str()?, token))
        })
        .collect();
    let Some(triggers) = value.get_mut("triggers").and_then(Value::as_array_mut) else {
        return;
    };
    for (index, t) in triggers.iter_mut().enumerate() {
        let Some(digest) = t
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| digests.get(n))
        else {
            continue;
        };
        if let Some(slot) = t.get_mut("token").filter(|v| v.is_null()) {
            *slot = (*digest).clone();
            let path = vec![
                "triggers".to_string(),
                index.to_string(),
                "token".to_string(),
            ];
            unknown.retain(|p| *p != path);
        }
    }
}

/// `value` without its token digests (see [`keep_token_digests`]): what apply reads the
/// desired triggers from, the tokens then taken from the live file.
pub(crate) fn without_token_digests(value: &Value) -> Value {
    let mut out = value.clone();
    if let Some(triggers) = out.get_mut("triggers").and_then(Value::as_array_mut) {
        for t in triggers {
            if let Some(token) = t.get_mut("token").filter(|v| is_sensitive_marker(v)) {
                *token = Value::Null;
            }
        }
    }
    out
}

/// Gives every trigger without a token the token of the trigger of the same name in `live`
/// (the pipeline's `triggers.yaml` as [`parse`] reads it). State keeps only a keyed digest of a
/// token, so a value planned from state (`--refresh=false`) has none to keep: the one Mage
/// already knows is kept rather than replaced by a new one.
pub(crate) fn keep_live_tokens(attrs: &mut TriggersAttrs, live: &Value) {
    let tokens: HashMap<String, String> = lenient_triggers(live)
        .into_iter()
        .filter_map(|t| Some((t.name, t.token?)))
        .collect();
    for t in &mut attrs.triggers {
        if t.token.is_none() {
            t.token = tokens.get(&t.name).cloned();
        }
    }
}

fn mark_unknown(t: &TriggerAttrs, index: usize, out: &mut Vec<AttrPath>) {
    let path = |leaf: &str| vec!["triggers".to_string(), index.to_string(), leaf.to_string()];
    if t.start_time.is_none() && t.schedule_type == "time" {
        out.push(path("start_time"));
    }
    if t.last_enabled_at.is_none() && t.status == "active" {
        out.push(path("last_enabled_at"));
    }
    if t.token.is_none() {
        out.push(path("token"));
    }
}

/// The triggers of prior attributes, as far as they can be understood: state written by an
/// older weir, or edited by hand, must not stop a plan.
fn lenient_triggers(prior: &Value) -> Vec<TriggerAttrs> {
    let Some(items) = prior.get("triggers").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<TriggerAttrs> = Vec::new();
    for item in items {
        // State keeps a token as a keyed digest: here it is a token not known.
        let without_digest;
        let item = if item.get("token").is_some_and(is_sensitive_marker) {
            let mut copy = item.clone();
            if let Some(map) = copy.as_object_mut() {
                map.remove("token");
            }
            without_digest = copy;
            &without_digest
        } else {
            item
        };
        let parsed = TriggerAttrs::deserialize(item).ok().or_else(|| {
            let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
            Some(TriggerAttrs {
                name: text("name")?,
                schedule_type: text("schedule_type").unwrap_or_else(|| "time".to_string()),
                schedule_interval: text("schedule_interval"),
                start_time: text("start_time"),
                status: text("status").unwrap_or_else(inactive),
                variables: Map::new(),
                sla: None,
                settings: TriggerSettings::default(),
                description: text("description"),
                token: text("token"),
                last_enabled_at: text("last_enabled_at"),
                envs: Vec::new(),
            })
        });
        if let Some(t) = parsed
            && !out.iter().any(|o| o.name == t.name)
        {
            out.push(t);
        }
    }
    out
}

/// Reads `triggers.yaml` back into attributes, semantically: key order, quoting, Mage's added
/// keys with their default values (`envs: []`, `pipeline_uuid`, `settings: {}`, `sla: null`,
/// `variables: {}`, `description: null`) and datetime spellings do not matter. Triggers are
/// listed in the order of `recorded` (the attributes in state), so Mage reordering the file is
/// not a change. A trigger Mage would skip (a missing required key, an unknown key) makes the
/// whole file unparseable, so the plan rewrites it.
pub(crate) fn parse(
    project_dir: &str,
    pipeline: &str,
    text: &str,
    recorded: &Value,
) -> Result<Value, String> {
    let file = top_mapping(yaml::from_yaml(text)?, "triggers.yaml")?;
    let entries = match file.get("triggers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries.clone(),
        Some(other) => {
            return Err(format!(
                "`triggers` must be a list, but it is {}",
                kind_of(other)
            ));
        }
    };

    let mut triggers: Vec<(Value, String)> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(format!(
                "trigger {index} must be a mapping, but it is {}",
                kind_of(entry)
            ));
        };
        let label = match entry.get("name").and_then(Value::as_str) {
            Some(name) => format!("trigger `{name}`"),
            None => format!("trigger {index}"),
        };
        if let Some(key) = entry.keys().find(|k| !TRIGGER_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "{label} has the key `{key}`, which Mage does not know; Mage skips such a trigger"
            ));
        }
        if let Some(key) = REQUIRED_KEYS.iter().find(|k| !entry.contains_key(**k)) {
            return Err(format!(
                "{label} has no `{key}` key; Mage skips a trigger without it"
            ));
        }
        let mut attrs = Map::new();
        let mut settings_extra = Map::new();
        for (key, value) in entry {
            match key.as_str() {
                "pipeline_uuid" | "repo_path" => {}
                "start_time" | "last_enabled_at" => {
                    attrs.insert(key.clone(), yaml::canonical_timestamp_value(value));
                }
                "settings" => {
                    let mut known = Map::new();
                    match value {
                        Value::Null => {}
                        Value::Object(settings) => {
                            for (k, v) in settings {
                                if SETTINGS_KEYS.contains(&k.as_str()) {
                                    known.insert(k.clone(), v.clone());
                                } else {
                                    // e.g. `invalid_schedule_interval: true`, added by Mage
                                    // for a bad cron: shown as a difference.
                                    settings_extra.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        other => {
                            return Err(format!(
                                "{label}: `settings` must be a mapping, but it is {}",
                                kind_of(other)
                            ));
                        }
                    }
                    attrs.insert(key.clone(), Value::Object(known));
                }
                _ => {
                    attrs.insert(key.clone(), value.clone());
                }
            }
        }
        let trigger = TriggerAttrs::deserialize(&Value::Object(attrs))
            .map_err(|e| format!("{label} does not have the shape Mage expects: {e}"))?;
        let name = trigger.name.clone();
        let mut value = serde_json::to_value(&trigger).map_err(|e| e.to_string())?;
        if !settings_extra.is_empty()
            && let Some(Value::Object(settings)) = value.get_mut("settings")
        {
            settings.extend(settings_extra);
        }
        triggers.push((value, name));
    }

    // The order in state; triggers unknown to state keep the file's order, after them.
    let recorded_order: Vec<&str> = recorded
        .get("triggers")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    triggers.sort_by_key(|(_, name)| {
        recorded_order
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    });
    let present: HashSet<&str> = triggers.iter().map(|(_, n)| n.as_str()).collect();
    let retired: Vec<Value> = recorded
        .get("retired")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter(|n| n.as_str().is_some_and(|n| present.contains(n)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();

    let mut out = Map::new();
    out.insert("project_dir".into(), Value::String(project_dir.into()));
    out.insert("pipeline".into(), Value::String(pipeline.into()));
    out.insert(
        "triggers".into(),
        Value::Array(triggers.into_iter().map(|(v, _)| v).collect()),
    );
    out.insert("retired".into(), Value::Array(retired));
    Ok(Value::Object(out))
}
