//! `schedule` blocks: Mage triggers.

use super::values::{check_cron, check_rfc3339, parse_duration};
use super::{Pipeline, value_error};
use crate::config::body::BodyReader;
use crate::config::eval::Sensitivity;
use crate::config::{Config, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location, suggest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    Time,
    Api,
}

impl ScheduleType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleType::Time => "time",
            ScheduleType::Api => "api",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub pipeline: String,
    pub kind: ScheduleType,
    pub cron: Option<String>,
    /// RFC 3339; `None` means "the time of first apply".
    pub start: Option<String>,
    pub active: bool,
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Where its secrets are, by attribute.
    pub sensitive: Sensitivity,
    pub sla_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub skip_if_running: bool,
    pub allow_blocks_to_fail: bool,
    pub max_concurrent_runs: Option<u32>,
}

/// Resolves `pipeline.<name>` against the declared pipelines, with a suggestion.
pub(super) fn resolve_pipeline(
    name: &str,
    loc: &Location,
    pipelines: &[Pipeline],
    diags: &mut Diagnostics,
) -> bool {
    if pipelines.iter().any(|p| p.name == name) {
        return true;
    }
    let mut d = Diagnostic::error(format!("unknown pipeline `pipeline.{name}`"))
        .at(loc)
        .label("no such pipeline");
    d = match suggest(name, pipelines.iter().map(|p| p.name.as_str())) {
        Some(s) => d.help(format!("did you mean `pipeline.{s}`?")),
        None if pipelines.is_empty() => {
            d.help("declare the pipeline with `pipeline \"<name>\" { ... }`")
        }
        None => d.help(format!(
            "the pipelines are {}",
            pipelines
                .iter()
                .map(|p| format!("`pipeline.{}`", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    diags.push(d);
    false
}

pub(super) fn schedules(
    config: &Config,
    pipelines: &[Pipeline],
    diags: &mut Diagnostics,
) -> Vec<Schedule> {
    let ev = &config.evaluator;
    let mut out: Vec<(Schedule, Location)> = Vec::new();
    for top in config.blocks("schedule") {
        let Some(l) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = (l[0].0.to_string(), l[0].1.clone());
        if let Some((_, first)) = out.iter().find(|(s, _)| s.name == name) {
            diags.push(
                Diagnostic::error(format!("schedule `{name}` is declared twice"))
                    .at(&label_loc)
                    .help(format!("schedule names are unique across the configuration; the first is at {first}")),
            );
            continue;
        }
        if name.trim().is_empty() || name.len() > 255 {
            diags.push(
                Diagnostic::error("a schedule name must be 1 to 255 characters").at(&label_loc),
            );
            continue;
        }
        let what = format!("schedule `{name}`");
        let r = BodyReader::new(
            top.file,
            &top.block.body,
            what,
            top.header(),
            &[
                "pipeline",
                "type",
                "cron",
                "start",
                "active",
                "variables",
                "sla",
                "timeout",
                "skip_if_running",
                "allow_blocks_to_fail",
                "max_concurrent_runs",
            ],
            &[],
            diags,
        );
        let pipeline = r.reference("pipeline", "pipeline", diags);
        if pipeline.is_none() && !r.has("pipeline") {
            r.missing("pipeline", "add `pipeline = pipeline.<name>`", diags);
        }
        let pipeline_ok = pipeline
            .as_ref()
            .is_some_and(|p| resolve_pipeline(&p.value, &p.loc, pipelines, diags));
        let kind = match r.string(ev, "type", diags) {
            Some(t) if t.value == "time" => ScheduleType::Time,
            Some(t) if t.value == "api" => ScheduleType::Api,
            Some(t) => {
                let mut d = value_error(
                    &t,
                    format!("unknown schedule type \"{}\"", t.value),
                    "a schedule type",
                );
                d = match suggest(&t.value, ["time", "api"]).filter(|_| !t.sensitive) {
                    Some(s) => d.help(format!("did you mean \"{s}\"?")),
                    None => {
                        d.help("`type` is \"time\" (runs on `cron`) or \"api\" (runs when called)")
                    }
                };
                diags.push(d);
                ScheduleType::Time
            }
            None => ScheduleType::Time,
        };
        let cron = r.string(ev, "cron", diags);
        match (&cron, kind) {
            (Some(c), ScheduleType::Time) => {
                if let Err(msg) = check_cron(&c.value) {
                    let help = if msg.contains("never fires") {
                        "Mage would keep the trigger and never start a run: pick days that exist in the months chosen"
                    } else {
                        "one bad cron expression stops Mage from syncing the triggers of every pipeline; cron runs in UTC"
                    };
                    diags.push(value_error(c, msg, "a cron expression").help(help));
                }
            }
            (None, ScheduleType::Time) if !r.has("cron") => r.missing(
                "cron",
                "a time schedule needs `cron = \"0 3 * * *\"` (5 fields, UTC) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@once`; or set `type = \"api\"`",
                diags,
            ),
            (Some(c), ScheduleType::Api) => diags.push(
                Diagnostic::error("an api schedule takes no `cron`")
                    .at(&c.loc)
                    .help("remove `cron`, or remove `type = \"api\"` to run on the cron schedule"),
            ),
            _ => {}
        }
        let start = r
            .string(ev, "start", diags)
            .and_then(|s| match check_rfc3339(&s.value) {
                Ok(()) => Some(s.value),
                Err(msg) => {
                    diags.push(value_error(&s, msg, "an RFC 3339 timestamp"));
                    None
                }
            });
        let duration = |name: &str, diags: &mut Diagnostics| {
            r.string(ev, name, diags)
                .and_then(|d| match parse_duration(&d.value) {
                    Ok(0) => {
                        diags.push(
                            Diagnostic::error(format!("`{name}` must be longer than zero"))
                                .at(&d.loc),
                        );
                        None
                    }
                    Ok(s) => Some(s),
                    Err(msg) => {
                        diags.push(value_error(&d, msg, "a duration"));
                        None
                    }
                })
        };
        let sla_secs = duration("sla", diags);
        let timeout_secs = duration("timeout", diags);
        let variables = r.json_map(ev, "variables", diags);
        let schedule = Schedule {
            name: name.clone(),
            pipeline: pipeline.map(|p| p.value).unwrap_or_default(),
            kind,
            cron: cron
                .filter(|_| kind == ScheduleType::Time)
                .map(|c| c.value.trim().to_string()),
            start,
            active: r.bool(ev, "active", diags).map(|b| b.value).unwrap_or(true),
            sensitive: ev.body_sensitivity(&top.block.body, &[]),
            variables: variables.map(|v| v.value).unwrap_or_default(),
            sla_secs,
            timeout_secs,
            skip_if_running: r
                .bool(ev, "skip_if_running", diags)
                .map(|b| b.value)
                .unwrap_or(false),
            allow_blocks_to_fail: r
                .bool(ev, "allow_blocks_to_fail", diags)
                .map(|b| b.value)
                .unwrap_or(false),
            max_concurrent_runs: r
                .integer(ev, "max_concurrent_runs", 1, i64::MAX, diags)
                .map(|v| v.value as u32),
        };
        if pipeline_ok {
            out.push((schedule, label_loc));
        }
    }
    out.into_iter().map(|(s, _)| s).collect()
}
