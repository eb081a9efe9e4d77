//! `notification` blocks: Mage's notification config, with message templates checked against
//! the placeholders that exist at run time.

use super::schedule::resolve_pipeline;
use super::{Pipeline, value_error};
use crate::config::body::{BodyReader, Spanned, block_header};
use crate::config::{Config, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location, suggest};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Slack,
    Teams,
    GoogleChat,
    Discord,
    Telegram,
    Opsgenie,
    Email,
}

impl Channel {
    pub const ALL: [(&'static str, Channel); 7] = [
        ("slack", Channel::Slack),
        ("teams", Channel::Teams),
        ("google_chat", Channel::GoogleChat),
        ("discord", Channel::Discord),
        ("telegram", Channel::Telegram),
        ("opsgenie", Channel::Opsgenie),
        ("email", Channel::Email),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("slack")
    }

    pub fn uses_webhook(self) -> bool {
        !matches!(self, Channel::Opsgenie | Channel::Email)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    Failure,
    Success,
    SlaMissed,
}

impl Event {
    pub const ALL: [(&'static str, Event); 3] = [
        ("failure", Event::Failure),
        ("success", Event::Success),
        ("sla_missed", Event::SlaMissed),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failure => "failure",
            Event::Success => "success",
            Event::SlaMissed => "sla_missed",
        }
    }

    fn parse(s: &str) -> Option<Event> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, e)| *e)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    /// Which of the three derive from a secret.
    pub sensitive: crate::config::eval::Sensitivity,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub name: String,
    pub channel: Channel,
    /// Channel settings in Mage's shape (`webhook_url`, `url`, `api_key`, `smtp_host`, …).
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Whether any setting derives from a sensitive value.
    pub sensitive: bool,
    pub on: Vec<Event>,
    /// `None`: every pipeline.
    pub pipelines: Option<Vec<String>>,
    pub messages: BTreeMap<Event, Message>,
}

/// The template variables Mage 0.9.80 fills (`NotificationSender.__interpolate_vars`, which
/// calls `str.format` with exactly these names): any other name raises `KeyError` inside Mage
/// when the alert is sent, and the alert is lost.
pub const PLACEHOLDERS: &[&str] = &[
    "error",
    "execution_time",
    "pipeline_run_url",
    "pipeline_schedule_id",
    "pipeline_schedule_name",
    "pipeline_schedule_description",
    "pipeline_uuid",
    "stacktrace",
];

/// The template variables the weir runtime adds to Mage's (see `docs/runtime.md`): allowed only
/// where the deployment ships the runtime, since Mage alone raises `KeyError` on them.
pub const RUNTIME_PLACEHOLDERS: &[&str] = &[
    "pipeline_name",
    "run_id",
    "started_at",
    "finished_at",
    "duration",
    "variables",
    "completed_blocks",
    "failed_blocks",
];

/// "a slack", "an email", "an `opsgenie`".
fn article(word: &str) -> String {
    let first = word.trim_start_matches('`').chars().next().unwrap_or('x');
    if "aeiou".contains(first.to_ascii_lowercase()) {
        format!("an {word}")
    } else {
        format!("a {word}")
    }
}

/// The placeholders a template may use: Mage's, and the runtime's when it ships.
pub fn placeholders(runtime: bool) -> impl Iterator<Item = &'static str> {
    let extra: &[&str] = if runtime { RUNTIME_PLACEHOLDERS } else { &[] };
    PLACEHOLDERS.iter().chain(extra).copied()
}

/// Checks a Python `str.format` template; `runtime`: whether the deployment ships the weir
/// runtime. Returns (byte offset in the template, message).
pub fn check_template(template: &str, runtime: bool) -> Result<(), (usize, usize, String)> {
    let bytes: Vec<(usize, char)> = template.char_indices().collect();
    let mut i = 0;
    while i < bytes.len() {
        let (pos, c) = bytes[i];
        match c {
            '{' if bytes.get(i + 1).map(|b| b.1) == Some('{') => i += 2,
            '}' if bytes.get(i + 1).map(|b| b.1) == Some('}') => i += 2,
            '}' => {
                return Err((
                    pos,
                    pos + 1,
                    "a lone `}` (write `}}` for a literal brace)".into(),
                ));
            }
            '{' => {
                let Some(close) = bytes[i + 1..].iter().position(|b| b.1 == '}' || b.1 == '{')
                else {
                    return Err((
                        pos,
                        template.len(),
                        "a `{` that is never closed (write `{{` for a literal brace)".into(),
                    ));
                };
                let close = i + 1 + close;
                if bytes[close].1 == '{' {
                    return Err((
                        pos,
                        bytes[close].0,
                        "a `{` inside a placeholder (write `{{` for a literal brace)".into(),
                    ));
                }
                let inner: String = bytes[i + 1..close].iter().map(|b| b.1).collect();
                let field = inner.split(['!', ':']).next().unwrap_or("");
                let base = field.split(['.', '[']).next().unwrap_or("").trim();
                let end = bytes[close].0 + 1;
                if base.is_empty() {
                    return Err((pos, end, "an empty placeholder `{}`".into()));
                }
                if !runtime && RUNTIME_PLACEHOLDERS.contains(&base) {
                    return Err((
                        pos,
                        end,
                        format!(
                            "placeholder `{{{base}}}` is filled by the weir runtime, which this deployment turns off (`runtime {{ enabled = false }}`): Mage alone fails with `KeyError` when sending the alert"
                        ),
                    ));
                }
                if !placeholders(runtime).any(|p| p == base) {
                    let hint = suggest(base, placeholders(runtime))
                        .map(|s| format!(" (did you mean `{{{s}}}`?)"))
                        .unwrap_or_default();
                    return Err((pos, end, format!("unknown placeholder `{{{base}}}`{hint}")));
                }
                i = close + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Points at a part of a string literal when the literal has no escapes, else at the whole value.
fn sub_location(s: &Spanned<String>, start: usize, end: usize) -> Location {
    let text = s.loc.text();
    if text.len() == s.value.len() + 2
        && text.starts_with('"')
        && text[1..text.len() - 1] == s.value
    {
        let base = s.loc.span.start + 1;
        return Location::new(&s.loc.file, base + start..base + end);
    }
    s.loc.clone()
}

pub(super) fn notifications(
    config: &Config,
    pipelines: &[Pipeline],
    runtime: bool,
    diags: &mut Diagnostics,
) -> Vec<Notification> {
    let ev = &config.evaluator;
    let mut out: Vec<(Notification, Location)> = Vec::new();
    for top in config.blocks("notification") {
        let Some(l) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = (l[0].0.to_string(), l[0].1.clone());
        if let Some((_, first)) = out.iter().find(|(n, _)| n.name == name) {
            diags.push(
                Diagnostic::error(format!("notification `{name}` is declared twice"))
                    .at(&label_loc)
                    .help(format!("the first is at {first}")),
            );
            continue;
        }
        let what = format!("notification `{name}`");
        let r = BodyReader::new(
            top.file,
            &top.block.body,
            what.clone(),
            top.header(),
            &["channel", "webhook_url", "on", "pipelines"],
            &["opsgenie", "email", "message"],
            diags,
        );
        let channel = match r.string(ev, "channel", diags) {
            Some(c) => match Channel::ALL.iter().find(|(n, _)| *n == c.value) {
                Some((_, ch)) => Some(*ch),
                None => {
                    let names: Vec<&str> = Channel::ALL.iter().map(|(n, _)| *n).collect();
                    let mut d =
                        value_error(&c, format!("unknown channel \"{}\"", c.value), "a channel");
                    d = match suggest(&c.value, names.iter().copied()).filter(|_| !c.sensitive) {
                        Some(s) => d.help(format!("did you mean \"{s}\"?")),
                        None => d.help(format!(
                            "Mage's channels are {}",
                            crate::diagnostics::one_of(&names)
                        )),
                    };
                    diags.push(d);
                    None
                }
            },
            None => {
                if !r.has("channel") {
                    r.missing("channel", "add `channel = \"slack\"` (or teams, google_chat, discord, telegram, opsgenie, email)", diags);
                }
                None
            }
        };
        let mut settings = serde_json::Map::new();
        let mut sensitive = false;
        let webhook = r.string(ev, "webhook_url", diags);
        if let Some(ch) = channel {
            if ch.uses_webhook() {
                match &webhook {
                    Some(w) => {
                        if !w.sensitive {
                            diags.push(
                                Diagnostic::warning("`webhook_url` is not sensitive: anyone who can read the plan or the logs can post to this channel")
                                    .at(&w.loc)
                                    .help("pass it through a variable declared with `sensitive = true`"),
                            );
                        }
                        if !w.value.starts_with("https://") && !w.value.starts_with("http://") {
                            diags.push(Diagnostic::error("`webhook_url` must be an http(s) URL").at(&w.loc));
                        }
                        sensitive |= w.sensitive;
                        settings.insert("webhook_url".into(), w.value.clone().into());
                    }
                    None if !r.has("webhook_url") => r.missing("webhook_url", &format!("{} notification posts to a webhook: add `webhook_url = var.<sensitive variable>`", article(ch.as_str())), diags),
                    None => {}
                }
            } else if let Some(w) = &webhook {
                diags.push(
                    Diagnostic::error(format!(
                        "{} notification takes no `webhook_url`",
                        article(ch.as_str())
                    ))
                    .at(&w.loc)
                    .help(format!("configure it in the `{}` block", ch.as_str())),
                );
            }
        }
        // Channel blocks.
        for (block_name, fields) in [
            ("opsgenie", &["url", "api_key", "priority"][..]),
            (
                "email",
                &[
                    "smtp_host",
                    "smtp_port",
                    "smtp_user",
                    "smtp_password",
                    "from",
                    "to",
                    "starttls",
                ][..],
            ),
        ] {
            let block = r.single_block(block_name, diags);
            let wanted = match block_name {
                "opsgenie" => channel == Some(Channel::Opsgenie),
                _ => channel == Some(Channel::Email),
            };
            match (block, wanted) {
                (Some(b), true) => {
                    let br = BodyReader::new(r.file, &b.body, format!("the {block_name} settings of {what}"), block_header(r.file, b), fields, &[], diags);
                    let required: &[&str] = if block_name == "opsgenie" { &["url", "api_key"] } else { &["smtp_host", "from", "to"] };
                    for f in required {
                        if !br.has(f) {
                            br.missing(f, &format!("Mage needs `{f}` to send {block_name} notifications"), diags);
                        }
                    }
                    for f in fields.iter().copied() {
                        if !br.has(f) {
                            continue;
                        }
                        let key = match (block_name, f) {
                            ("email", "from") => "smtp_mail_from",
                            ("email", "to") => "to_emails",
                            ("email", "starttls") => "smtp_starttls",
                            _ => f,
                        };
                        let value = match f {
                            "to" => br.string_list(ev, f, diags).map(|v| v.map(serde_json::Value::from)),
                            "smtp_port" => br.integer(ev, f, 1, 65535, diags).map(|v| v.map(serde_json::Value::from)),
                            "starttls" => br.bool(ev, f, diags).map(|v| v.map(serde_json::Value::from)),
                            "priority" => br.string(ev, f, diags).and_then(|v| {
                                if ["P1", "P2", "P3", "P4", "P5"].contains(&v.value.as_str()) {
                                    Some(v.map(serde_json::Value::from))
                                } else {
                                    diags.push(value_error(&v, format!("Opsgenie priority must be P1 to P5, got \"{}\"", v.value), "an Opsgenie priority (P1 to P5)"));
                                    None
                                }
                            }),
                            _ => br.string(ev, f, diags).map(|v| v.map(serde_json::Value::from)),
                        };
                        if let Some(v) = value {
                            sensitive |= v.sensitive;
                            settings.insert(key.into(), v.value);
                        }
                    }
                }
                (None, true) => diags.push(
                    Diagnostic::error(format!("{} notification needs {} block", article(block_name), article(&format!("`{block_name}`"))))
                        .at(&r.header)
                        .help(if block_name == "opsgenie" {
                            "add `opsgenie {\n    url     = \"https://api.opsgenie.com\"\n    api_key = var.opsgenie_key\n  }`"
                        } else {
                            "add `email {\n    smtp_host = \"smtp.example.com\"\n    from      = \"mage@example.com\"\n    to        = [\"oncall@example.com\"]\n  }`"
                        }),
                ),
                (Some(b), false) => diags.push(
                    Diagnostic::error(format!("{} block only applies to `channel = \"{block_name}\"`", article(&format!("`{block_name}`"))))
                        .at(&block_header(r.file, b))
                        .help("remove the block, or change the channel"),
                ),
                (None, false) => {}
            }
        }

        let on = match r.string_list(ev, "on", diags) {
            Some(list) => {
                let mut events = Vec::new();
                for (i, e) in list.value.iter().enumerate() {
                    match Event::parse(e) {
                        Some(ev) if !events.contains(&ev) => events.push(ev),
                        Some(_) => {}
                        None => {
                            let mut d = Diagnostic::error(format!("unknown event \"{e}\" in `on`"))
                                .at(&r.element_loc("on", i));
                            d = match suggest(e, Event::ALL.iter().map(|(n, _)| *n)) {
                                Some(s) => d.help(format!("did you mean \"{s}\"?")),
                                None => {
                                    d.help("events are \"failure\", \"success\" and \"sla_missed\"")
                                }
                            };
                            diags.push(d);
                        }
                    }
                }
                events
            }
            None => vec![Event::Failure, Event::SlaMissed],
        };
        let pipelines_list = r.references("pipelines", "pipeline", diags).map(|refs| {
            refs.into_iter()
                .filter(|p| resolve_pipeline(&p.value, &p.loc, pipelines, diags))
                .map(|p| p.value)
                .collect::<Vec<_>>()
        });

        let mut messages = BTreeMap::new();
        for b in r.blocks("message") {
            let Some(l) = labels(r.file, b, &["event"], diags) else {
                continue;
            };
            let (event_name, event_loc) = (l[0].0, l[0].1.clone());
            let Some(event) = Event::parse(event_name) else {
                let mut d = Diagnostic::error(format!("unknown message event \"{event_name}\""))
                    .at(&event_loc);
                d = match suggest(event_name, Event::ALL.iter().map(|(n, _)| *n)) {
                    Some(s) => d.help(format!("did you mean \"{s}\"?")),
                    None => d.help("`message` takes \"failure\", \"success\" or \"sla_missed\""),
                };
                diags.push(d);
                continue;
            };
            if messages.contains_key(&event) {
                diags.push(
                    Diagnostic::error(format!("two `message \"{event_name}\"` blocks in {what}"))
                        .at(&event_loc)
                        .help("one message per event: merge the two blocks"),
                );
                continue;
            }
            let br = BodyReader::new(
                r.file,
                &b.body,
                format!("message \"{event_name}\" of {what}"),
                block_header(r.file, b),
                &["title", "summary", "details"],
                &[],
                diags,
            );
            let mut message = Message::default();
            for field in ["title", "summary", "details"] {
                let Some(s) = br.string(ev, field, diags) else {
                    continue;
                };
                if let Err((start, end, why)) = check_template(&s.value, runtime) {
                    diags.push(
                        Diagnostic::error(format!("`{field}` of message \"{event_name}\": {why}"))
                            .at(&sub_location(&s, start, end))
                            .help(format!(
                                "Mage fills templates with Python's str.format and fails at run time on anything else; the placeholders are {}",
                                placeholders(runtime).map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
                            )),
                    );
                }
                match field {
                    "title" => message.title = Some(s.value),
                    "summary" => message.summary = Some(s.value),
                    _ => message.details = Some(s.value),
                }
            }
            message.sensitive = ev.body_sensitivity(&b.body, &[]);
            messages.insert(event, message);
        }

        if let Some(channel) = channel {
            out.push((
                Notification {
                    name,
                    channel,
                    settings,
                    sensitive,
                    on,
                    pipelines: pipelines_list,
                    messages,
                },
                label_loc,
            ));
        }
    }
    check_mergeable(&out, pipelines, diags);
    out.into_iter().map(|(n, _)| n).collect()
}

/// Mage keeps one notification config per pipeline: one setting per channel, and one message
/// per event. weir merges the notifications that apply to a pipeline into it, which is lossless
/// only when they agree: two different webhooks (or addresses) on one channel, or two different
/// messages for one event, would leave one of them lost without a word.
fn check_mergeable(
    notifications: &[(Notification, Location)],
    pipelines: &[Pipeline],
    diags: &mut Diagnostics,
) {
    let applies = |n: &Notification, pipeline: &str| {
        n.pipelines
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == pipeline))
    };
    // What the two would disagree on in Mage's config, if anything.
    let conflict = |a: &Notification, b: &Notification| -> Option<(String, String)> {
        if a.channel == b.channel && a.settings != b.settings {
            let channel = a.channel.as_str();
            return Some((
                format!("send {channel} alerts with different settings"),
                format!(
                    "Mage keeps one {channel} setting per pipeline, so one of the two would be lost"
                ),
            ));
        }
        let event = a
            .messages
            .iter()
            .find(|(event, message)| b.messages.get(event).is_some_and(|m| m != *message))?
            .0;
        Some((
            format!("set different `message \"{}\"`", event.as_str()),
            "Mage keeps one message per event per pipeline, for every channel, so one of the two would be lost".to_string(),
        ))
    };
    for (i, (second, loc)) in notifications.iter().enumerate() {
        let clash = notifications[..i].iter().find_map(|(first, first_loc)| {
            let (what, why) = conflict(first, second)?;
            let pipeline = pipelines
                .iter()
                .find(|p| applies(first, &p.name) && applies(second, &p.name))?;
            Some((first, first_loc, pipeline, what, why))
        });
        if let Some((first, first_loc, pipeline, what, why)) = clash {
            diags.push(
                Diagnostic::error(format!(
                    "notifications `{}` and `{}` both apply to pipeline `{}` and {what}",
                    first.name, second.name, pipeline.name
                ))
                .at(loc)
                .help(format!(
                    "{why}; merge them into one notification, or give them `pipelines` lists that do not overlap (`{}` is at {first_loc})",
                    first.name
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_template;

    #[test]
    fn templates() {
        for runtime in [true, false] {
            let check = |t: &str| check_template(t, runtime);
            assert!(check("{pipeline_uuid} failed at {execution_time}").is_ok());
            assert!(check("literal {{json}}").is_ok());
            assert!(check("{error!r:>10}").is_ok());
            let (_, _, why) = check("{pipeline_uiid}").unwrap_err();
            assert!(why.contains("did you mean `{pipeline_uuid}`"), "{why}");
            assert!(check("oops {").is_err());
            assert!(check("oops }").is_err());
            assert!(check("{}").is_err());
        }
    }

    #[test]
    fn runtime_placeholders_only_where_the_runtime_ships() {
        let template = "{pipeline_name} run {run_id} failed after {duration} ({started_at} to {finished_at}) with {variables}: {failed_blocks} failed, {completed_blocks} done";
        assert!(check_template(template, true).is_ok());
        let (_, _, why) = check_template(template, false).unwrap_err();
        assert!(
            why.contains("`{pipeline_name}` is filled by the weir runtime"),
            "{why}"
        );
        assert!(why.contains("enabled = false"), "{why}");
        let (_, _, why) = check_template("{durations}", true).unwrap_err();
        assert!(why.contains("did you mean `{duration}`"), "{why}");
    }
}
