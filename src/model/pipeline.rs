//! `pipeline` blocks with their `block`, `condition` and `callback` blocks.

use super::code::{Code, read_code};
use super::values::parse_duration;
use super::{ResourceProfile, check_uuid, value_error};
use crate::config::body::{BodyReader, Spanned, block_header};
use crate::config::eval::{Evaluator, Sensitivity};
use crate::config::{Config, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location, suggest};
use hcl_edit::structure::Block as HclBlock;

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Where its secrets are (its own attributes and those of `retry` and `concurrency`).
    pub sensitive: Sensitivity,
    pub profile: Option<String>,
    pub retry: RetryPolicy,
    pub concurrency: Option<Concurrency>,
    pub blocks: Vec<Block>,
    pub conditions: Vec<AddOn>,
    pub callbacks: Vec<AddOn>,
}

impl Pipeline {
    pub fn block(&self, uuid: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.uuid == uuid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    DataLoader,
    Transformer,
    DataExporter,
    Sensor,
    Custom,
}

impl BlockType {
    pub const ALL: [(&'static str, BlockType); 5] = [
        ("data_loader", BlockType::DataLoader),
        ("transformer", BlockType::Transformer),
        ("data_exporter", BlockType::DataExporter),
        ("sensor", BlockType::Sensor),
        ("custom", BlockType::Custom),
    ];

    /// Mage's name for the type, also the decorator's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("custom")
    }

    /// The folder Mage keeps the code of this type in (`custom` is singular).
    pub fn folder(self) -> &'static str {
        match self {
            BlockType::DataLoader => "data_loaders",
            BlockType::Transformer => "transformers",
            BlockType::DataExporter => "data_exporters",
            BlockType::Sensor => "sensors",
            BlockType::Custom => "custom",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Sql,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Sql => "sql",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Sql => "sql",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub delay_secs: u64,
    pub max_delay_secs: u64,
    pub exponential_backoff: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            delay_secs: 5,
            max_delay_secs: 60,
            exponential_backoff: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    Wait,
    Skip,
}

#[derive(Debug, Clone)]
pub struct Concurrency {
    pub block_run_limit: Option<u32>,
    pub pipeline_run_limit: Option<u32>,
    pub on_limit: OnLimit,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub uuid: String,
    pub kind: BlockType,
    pub code: String,
    pub language: Language,
    pub upstream: Vec<String>,
    pub dynamic: bool,
    pub reduce_output: bool,
    pub profile: Option<String>,
    pub retry: RetryPolicy,
    pub timeout_secs: Option<u64>,
    /// Where its secrets are (its own attributes and those of `retry`).
    pub sensitive: Sensitivity,
}

/// A condition (runs before the blocks it gates) or a callback (runs after its blocks).
#[derive(Debug, Clone)]
pub struct AddOn {
    pub uuid: String,
    pub code: String,
    pub language: Language,
    /// Gated blocks (condition) or the blocks it follows (callback).
    pub blocks: Vec<String>,
    pub sensitive: Sensitivity,
}

/// A block as read, before references are resolved.
struct RawBlock {
    uuid: String,
    kind: Option<BlockType>,
    code: Option<Code>,
    language: Language,
    upstream: Vec<Spanned<String>>,
    dynamic: bool,
    reduce_output: Option<Spanned<bool>>,
    profile: Option<Spanned<String>>,
    retry: Option<RetryPolicy>,
    timeout_secs: Option<u64>,
    sensitive: Sensitivity,
}

pub(super) fn pipelines(
    config: &Config,
    profiles: &[(ResourceProfile, Location)],
    diags: &mut Diagnostics,
) -> Vec<Pipeline> {
    let ev = &config.evaluator;
    let mut out: Vec<(Pipeline, Location)> = Vec::new();
    let mut code_files = CodeFiles::default();
    for top in config.blocks("pipeline") {
        let Some(l) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = (l[0].0.to_string(), l[0].1.clone());
        if !check_uuid("pipeline", &name, &label_loc, diags) {
            continue;
        }
        if let Some((_, first)) = out.iter().find(|(p, _)| p.name == name) {
            diags.push(
                Diagnostic::error(format!("pipeline `{name}` is declared twice"))
                    .at(&label_loc)
                    .help(format!(
                        "the first is at {first}; pipeline names are Mage uuids and must be unique"
                    )),
            );
            continue;
        }
        let what = format!("pipeline `{name}`");
        let r = BodyReader::new(
            top.file,
            &top.block.body,
            what.clone(),
            top.header(),
            &["description", "tags", "variables", "profile"],
            &["retry", "concurrency", "block", "condition", "callback"],
            diags,
        );
        let description = r
            .string(ev, "description", diags)
            .map(|d| d.value)
            .unwrap_or_default();
        let tags = r
            .string_list(ev, "tags", diags)
            .map(|t| t.value)
            .unwrap_or_default();
        let variables = r.json_map(ev, "variables", diags);
        let profile = r.reference("profile", "resource_profile", diags);
        let profile = profile.and_then(|p| resolve_profile(p, profiles, diags));
        let retry = match r.single_block("retry", diags) {
            Some(b) => read_retry(&r, b, &RetryPolicy::default(), ev, diags),
            None => RetryPolicy::default(),
        };
        let concurrency = r.single_block("concurrency", diags).map(|b| {
            let br = BodyReader::new(
                r.file,
                &b.body,
                format!("the concurrency of {what}"),
                block_header(r.file, b),
                &["block_run_limit", "pipeline_run_limit", "on_limit"],
                &[],
                diags,
            );
            let on_limit = match br.string(ev, "on_limit", diags) {
                Some(s) if s.value == "wait" => OnLimit::Wait,
                Some(s) if s.value == "skip" => OnLimit::Skip,
                Some(s) => {
                    diags.push(
                        value_error(
                            &s,
                            format!(
                                "`on_limit` must be \"wait\" or \"skip\", got \"{}\"",
                                s.value
                            ),
                            "\"wait\" or \"skip\"",
                        )
                        .help("\"wait\" queues runs over the limit; \"skip\" drops them"),
                    );
                    OnLimit::Wait
                }
                None => OnLimit::Wait,
            };
            Concurrency {
                block_run_limit: br
                    .integer(ev, "block_run_limit", 1, 10_000, diags)
                    .map(|v| v.value as u32),
                pipeline_run_limit: br
                    .integer(ev, "pipeline_run_limit", 1, 10_000, diags)
                    .map(|v| v.value as u32),
                on_limit,
            }
        });

        // Blocks, conditions and callbacks share one namespace of uuids.
        let mut names: Vec<(String, Location)> = Vec::new();
        let mut claim = |uuid: &str, loc: &Location, diags: &mut Diagnostics| -> bool {
            if let Some((_, first)) = names.iter().find(|(n, _)| n == uuid) {
                diags.push(
                    Diagnostic::error(format!("`{uuid}` is used twice in {what}"))
                        .at(loc)
                        .help(format!("blocks, conditions and callbacks of a pipeline need distinct names; the first `{uuid}` is at {first}")),
                );
                return false;
            }
            names.push((uuid.to_string(), loc.clone()));
            true
        };

        let mut raw_blocks: Vec<RawBlock> = Vec::new();
        for b in r.blocks("block") {
            let Some(l) = labels(r.file, b, &["uuid"], diags) else {
                continue;
            };
            let (uuid, loc) = (l[0].0.to_string(), l[0].1.clone());
            if !check_uuid("block", &uuid, &loc, diags) || !claim(&uuid, &loc, diags) {
                continue;
            }
            let mut raw = read_block(config, &r, b, uuid, &retry, diags);
            raw.profile = raw
                .profile
                .take()
                .and_then(|p| resolve_profile(p, profiles, diags));
            raw_blocks.push(raw);
        }
        if raw_blocks.is_empty() && r.blocks("block").next().is_none() {
            diags.push(
                Diagnostic::error(format!("{what} has no blocks"))
                    .at(&r.header)
                    .help("add at least one `block \"<uuid>\" { type = \"data_loader\" ... }`"),
            );
        }
        let block_names: Vec<String> = raw_blocks.iter().map(|b| b.uuid.clone()).collect();
        let mut add_ons = |kind: &'static str,
                           diags: &mut Diagnostics|
         -> Vec<(AddOn, Location, Vec<Spanned<String>>)> {
            let mut list = Vec::new();
            for b in r.blocks(kind) {
                let Some(l) = labels(r.file, b, &["uuid"], diags) else {
                    continue;
                };
                let (uuid, loc) = (l[0].0.to_string(), l[0].1.clone());
                if !check_uuid(kind, &uuid, &loc, diags) || !claim(&uuid, &loc, diags) {
                    continue;
                }
                let (targets_attr, decorators): (&str, &[&str]) = if kind == "condition" {
                    ("gates", &["condition"])
                } else {
                    (
                        "on",
                        &["callback", "on_success", "on_failure", "on_cancelled"],
                    )
                };
                let bwhat = format!("{kind} `{uuid}` of pipeline `{name}`");
                let br = BodyReader::new(
                    r.file,
                    &b.body,
                    bwhat.clone(),
                    block_header(r.file, b),
                    &["source", "code", "language", targets_attr],
                    &[],
                    diags,
                );
                let code = read_code(&br, ev, &config.dir, diags);
                let language = read_language(&br, ev, code.as_ref(), diags);
                if let Some(code) = &code
                    && language == Language::Python
                {
                    code.check_python(decorators, &bwhat, diags);
                }
                let targets = br
                    .references(targets_attr, "block", diags)
                    .unwrap_or_default();
                if targets.is_empty() && !br.has(targets_attr) {
                    br.missing(
                        targets_attr,
                        &format!("add `{targets_attr} = [block.<uuid>]`"),
                        diags,
                    );
                }
                let resolved: Vec<String> = targets
                    .iter()
                    .filter(|t| resolve_block_ref(t, &block_names, &name, diags))
                    .map(|t| t.value.clone())
                    .collect();
                list.push((
                    AddOn {
                        uuid,
                        code: code.map(|c| c.text).unwrap_or_default(),
                        language,
                        blocks: resolved,
                        sensitive: ev.body_sensitivity(&b.body, &[]),
                    },
                    loc,
                    targets,
                ));
            }
            list
        };
        let conditions = add_ons("condition", diags);
        let callbacks = add_ons("callback", diags);

        // Resolve upstream references, then look for cycles.
        for b in &raw_blocks {
            for up in &b.upstream {
                if up.value == b.uuid {
                    diags.push(
                        Diagnostic::error(format!("block `{}` lists itself as upstream", b.uuid))
                            .at(&up.loc)
                            .help("remove it from `upstream`"),
                    );
                    continue;
                }
                resolve_block_ref(up, &block_names, &name, diags);
            }
        }
        let cycle_free = report_cycles(&raw_blocks, diags);

        // Shape checks.
        let is_dynamic = |uuid: &str| raw_blocks.iter().any(|b| b.uuid == uuid && b.dynamic);
        for (cond, _, targets) in &conditions {
            for t in targets {
                if is_dynamic(&t.value) {
                    diags.push(
                        Diagnostic::error(format!("condition `{}` gates the dynamic block `{}`", cond.uuid, t.value))
                            .at(&t.loc)
                            .label("a dynamic block")
                            .help(format!(
                                "Mage breaks on a condition attached to a dynamic block (its children get no input, or a division by zero). Gate a plain pass-through block upstream of `{0}` instead, e.g. `block \"{0}_gate\" {{ type = \"transformer\" }}` with `upstream = [block.{0}_gate]` on `{0}`",
                                t.value
                            )),
                    );
                }
            }
        }
        if cycle_free {
            for b in &raw_blocks {
                if let Some(reduce) = &b.reduce_output
                    && reduce.value
                    && !is_dynamic_child(&b.uuid, &raw_blocks, &mut Vec::new())
                {
                    diags.push(
                        Diagnostic::warning(format!("block `{}` reduces output but is not downstream of a dynamic block", b.uuid))
                            .at(&reduce.loc)
                            .help("`reduce_output` combines the outputs of a dynamic block's children; here it has no effect. Remove it, or set `dynamic = true` on an upstream block"),
                    );
                }
            }
        }

        let blocks: Vec<Block> = raw_blocks
            .into_iter()
            .filter_map(|b| {
                Some(Block {
                    uuid: b.uuid,
                    kind: b.kind?,
                    code: b.code?.text,
                    language: b.language,
                    upstream: b.upstream.into_iter().map(|u| u.value).collect(),
                    dynamic: b.dynamic,
                    reduce_output: b.reduce_output.is_some_and(|r| r.value),
                    profile: b.profile.map(|p| p.value),
                    retry: b.retry.unwrap_or_else(|| retry.clone()),
                    timeout_secs: b.timeout_secs,
                    sensitive: b.sensitive,
                })
            })
            .collect();
        let located = |uuid: &str| {
            names
                .iter()
                .find(|(n, _)| n == uuid)
                .map(|(_, loc)| loc.clone())
        };
        for b in &blocks {
            let path = code_file(b.kind.folder(), &b.uuid, b.language);
            code_files.claim(path, &name, &b.uuid, &b.code, located(&b.uuid), diags);
        }
        for (folder, list) in [("conditionals", &conditions), ("callbacks", &callbacks)] {
            for (a, loc, _) in list {
                let path = code_file(folder, &a.uuid, a.language);
                code_files.claim(path, &name, &a.uuid, &a.code, Some(loc.clone()), diags);
            }
        }
        let pipeline = Pipeline {
            name: name.clone(),
            description,
            tags,
            variables: variables.map(|v| v.value).unwrap_or_default(),
            sensitive: ev.body_sensitivity(&top.block.body, &["retry", "concurrency"]),
            profile: profile.map(|p| p.value),
            retry,
            concurrency,
            blocks,
            conditions: conditions.into_iter().map(|c| c.0).collect(),
            callbacks: callbacks.into_iter().map(|c| c.0).collect(),
        };
        out.push((pipeline, label_loc));
    }
    out.into_iter().map(|(p, _)| p).collect()
}

/// The file Mage keeps a block's code in, relative to the project: by folder and uuid, shared
/// by every pipeline of the project.
pub fn code_file(folder: &str, uuid: &str, language: Language) -> String {
    format!("{folder}/{uuid}.{}", language.extension())
}

/// The code files of the pipelines read so far, to find two blocks that Mage would keep in one
/// file with different code (the same code may be shared).
#[derive(Default)]
struct CodeFiles(std::collections::HashMap<String, (String, String, Option<Location>)>);

impl CodeFiles {
    fn claim(
        &mut self,
        path: String,
        pipeline: &str,
        uuid: &str,
        code: &str,
        loc: Option<Location>,
        diags: &mut Diagnostics,
    ) {
        let owner = format!("{pipeline}.{uuid}");
        match self.0.get(&path) {
            None => {
                self.0.insert(path, (owner, code.to_string(), loc));
            }
            Some((_, first_code, _)) if first_code == code => {}
            Some((first, _, first_loc)) => {
                let at = first_loc
                    .as_ref()
                    .map(|l| format!(" (`{first}` is at {l})"))
                    .unwrap_or_default();
                diags.push(
                    Diagnostic::error(format!(
                        "blocks `{first}` and `{owner}` would both be written to `{path}` with different code"
                    ))
                    .at_opt(loc.as_ref())
                    .label("another block of this name has other code")
                    .help(format!(
                        "Mage keeps block code by type and name, shared by every pipeline of the project: rename one of the blocks, or give both the same code{at}"
                    )),
                );
            }
        }
    }
}

fn read_block(
    config: &Config,
    pr: &BodyReader,
    b: &HclBlock,
    uuid: String,
    default_retry: &RetryPolicy,
    diags: &mut Diagnostics,
) -> RawBlock {
    let ev = &config.evaluator;
    let pipeline_what = pr.what.clone();
    let what = format!("block `{uuid}` of {pipeline_what}");
    let r = BodyReader::new(
        pr.file,
        &b.body,
        what.clone(),
        block_header(pr.file, b),
        &[
            "type",
            "source",
            "code",
            "language",
            "upstream",
            "dynamic",
            "reduce_output",
            "profile",
            "timeout",
        ],
        &["retry"],
        diags,
    );
    let kind = match r.string(ev, "type", diags) {
        Some(t) => match BlockType::ALL.iter().find(|(n, _)| *n == t.value) {
            Some((_, kind)) => Some(*kind),
            None => {
                let names: Vec<&str> = BlockType::ALL.iter().map(|(n, _)| *n).collect();
                let mut d = value_error(
                    &t,
                    format!("unknown block type \"{}\"", t.value),
                    "a block type",
                );
                d = match suggest(&t.value, names.iter().copied()).filter(|_| !t.sensitive) {
                    Some(s) => d.help(format!("did you mean \"{s}\"?")),
                    None => d.help(format!(
                        "block types are {}",
                        crate::diagnostics::one_of(&names)
                    )),
                };
                diags.push(d);
                None
            }
        },
        None => {
            if !r.has("type") {
                r.missing("type", "add `type = \"data_loader\"` (or \"transformer\", \"data_exporter\", \"sensor\", \"custom\")", diags);
            }
            None
        }
    };
    let code = read_code(&r, ev, &config.dir, diags);
    let language = read_language(&r, ev, code.as_ref(), diags);
    if let (Some(code), Some(kind)) = (&code, kind)
        && language == Language::Python
    {
        code.check_python(&[kind.as_str()], &what, diags);
    }
    let upstream = r.references("upstream", "block", diags).unwrap_or_default();
    let dynamic = r
        .bool(ev, "dynamic", diags)
        .map(|d| d.value)
        .unwrap_or(false);
    let reduce_output = r.bool(ev, "reduce_output", diags);
    let profile = r.reference("profile", "resource_profile", diags);
    let retry = r
        .single_block("retry", diags)
        .map(|rb| read_retry(&r, rb, default_retry, ev, diags));
    let timeout_secs =
        r.string(ev, "timeout", diags)
            .and_then(|t| match parse_duration(&t.value) {
                Ok(0) => {
                    diags.push(Diagnostic::error("`timeout` must be longer than zero").at(&t.loc));
                    None
                }
                Ok(s) => Some(s),
                Err(msg) => {
                    diags.push(value_error(&t, msg, "a duration"));
                    None
                }
            });
    RawBlock {
        uuid,
        kind,
        code,
        language,
        upstream,
        dynamic,
        reduce_output,
        profile,
        retry,
        timeout_secs,
        sensitive: ev.body_sensitivity(&b.body, &["retry"]),
    }
}

fn read_language(
    r: &BodyReader,
    ev: &Evaluator,
    code: Option<&Code>,
    diags: &mut Diagnostics,
) -> Language {
    match r.string(ev, "language", diags) {
        Some(l) => match l.value.as_str() {
            "python" => Language::Python,
            "sql" => Language::Sql,
            other => {
                diags.push(
                    value_error(&l, format!("unknown language \"{other}\""), "a language")
                        .help("`language` is \"python\" or \"sql\""),
                );
                Language::Python
            }
        },
        None => match code.and_then(|c| c.source.as_deref()) {
            Some(src) if src.ends_with(".sql") => Language::Sql,
            _ => Language::Python,
        },
    }
}

fn read_retry(
    r: &BodyReader,
    b: &HclBlock,
    base: &RetryPolicy,
    ev: &Evaluator,
    diags: &mut Diagnostics,
) -> RetryPolicy {
    let br = BodyReader::new(
        r.file,
        &b.body,
        format!("the retry policy of {}", r.what),
        block_header(r.file, b),
        &["retries", "delay", "max_delay", "exponential_backoff"],
        &[],
        diags,
    );
    let mut policy = base.clone();
    if let Some(n) = br.integer(ev, "retries", 0, 100, diags) {
        policy.retries = n.value as u32;
    }
    let duration = |name: &str, diags: &mut Diagnostics| {
        br.string(ev, name, diags)
            .and_then(|d| match parse_duration(&d.value) {
                Ok(s) => Some(s),
                Err(msg) => {
                    diags.push(value_error(&d, msg, "a duration"));
                    None
                }
            })
    };
    if let Some(s) = duration("delay", diags) {
        policy.delay_secs = s;
    }
    if let Some(s) = duration("max_delay", diags) {
        policy.max_delay_secs = s;
    }
    if let Some(b) = br.bool(ev, "exponential_backoff", diags) {
        policy.exponential_backoff = b.value;
    }
    if policy.max_delay_secs < policy.delay_secs {
        diags.push(
            Diagnostic::error("`max_delay` is shorter than `delay`")
                .at(&br.attr_loc(if br.has("max_delay") {
                    "max_delay"
                } else {
                    "delay"
                }))
                .help("Mage waits `delay` before the first retry and stops retrying once the total wait would pass `max_delay`: with `max_delay` under `delay` it never retries"),
        );
    }
    policy
}

fn resolve_profile(
    p: Spanned<String>,
    profiles: &[(ResourceProfile, Location)],
    diags: &mut Diagnostics,
) -> Option<Spanned<String>> {
    if profiles.iter().any(|(prof, _)| prof.name == p.value) {
        return Some(p);
    }
    let mut d = Diagnostic::error(format!(
        "unknown resource profile `resource_profile.{}`",
        p.value
    ))
    .at(&p.loc)
    .label("no such profile");
    d = match suggest(
        &p.value,
        profiles.iter().map(|(prof, _)| prof.name.as_str()),
    ) {
        Some(s) => d.help(format!("did you mean `resource_profile.{s}`?")),
        None if profiles.is_empty() => d.help(format!(
            "declare it: `resource_profile \"{}\" {{ cpu = 1 }}`",
            p.value
        )),
        None => d.help(format!(
            "the profiles are {}",
            profiles
                .iter()
                .map(|(prof, _)| format!("`resource_profile.{}`", prof.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    diags.push(d);
    None
}

/// Checks that `block.<name>` names a block of the same pipeline.
fn resolve_block_ref(
    r: &Spanned<String>,
    blocks: &[String],
    pipeline: &str,
    diags: &mut Diagnostics,
) -> bool {
    if blocks.contains(&r.value) {
        return true;
    }
    let mut d = Diagnostic::error(format!(
        "unknown block `block.{}` in pipeline `{pipeline}`",
        r.value
    ))
    .at(&r.loc)
    .label("no such block");
    d = match suggest(&r.value, blocks.iter().map(String::as_str)) {
        Some(s) => d.help(format!("did you mean `block.{s}`?")),
        None => d.help(format!(
            "`block.<uuid>` refers to a block of the same pipeline; its blocks are {}",
            blocks
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    diags.push(d);
    false
}

/// Reports each cycle of upstream references once, naming it. Returns whether there was none.
fn report_cycles(blocks: &[RawBlock], diags: &mut Diagnostics) -> bool {
    let index = |uuid: &str| blocks.iter().position(|b| b.uuid == uuid);
    let mut state = vec![0u8; blocks.len()]; // 0 new, 1 active, 2 done
    let mut stack: Vec<usize> = Vec::new();
    let mut ok = true;
    fn visit(
        i: usize,
        blocks: &[RawBlock],
        index: &dyn Fn(&str) -> Option<usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        ok: &mut bool,
        diags: &mut Diagnostics,
    ) {
        state[i] = 1;
        stack.push(i);
        for up in &blocks[i].upstream {
            let Some(j) = index(&up.value) else { continue };
            if j == i {
                continue;
            }
            match state[j] {
                0 => visit(j, blocks, index, state, stack, ok, diags),
                1 => {
                    *ok = false;
                    let start = stack.iter().position(|k| *k == j).unwrap_or(0);
                    let mut names: Vec<String> = stack[start..]
                        .iter()
                        .map(|k| format!("block.{}", blocks[*k].uuid))
                        .collect();
                    names.push(format!("block.{}", blocks[j].uuid));
                    names.reverse();
                    diags.push(
                        Diagnostic::error(format!(
                            "blocks depend on each other in a cycle: {}",
                            names.join(" → ")
                        ))
                        .at(&up.loc)
                        .label("closes the cycle")
                        .help("a pipeline is a DAG: remove one of these `upstream` references"),
                    );
                }
                _ => {}
            }
        }
        stack.pop();
        state[i] = 2;
    }
    for i in 0..blocks.len() {
        if state[i] == 0 {
            visit(i, blocks, &index, &mut state, &mut stack, &mut ok, diags);
        }
    }
    ok
}

/// Whether a block runs once per item of a dynamic block: directly downstream of one, or of a
/// dynamic child that does not reduce.
fn is_dynamic_child(uuid: &str, blocks: &[RawBlock], seen: &mut Vec<String>) -> bool {
    if seen.iter().any(|s| s == uuid) {
        return false;
    }
    seen.push(uuid.to_string());
    let Some(b) = blocks.iter().find(|b| b.uuid == uuid) else {
        return false;
    };
    b.upstream.iter().any(|u| {
        blocks.iter().find(|x| x.uuid == u.value).is_some_and(|up| {
            up.dynamic
                || (is_dynamic_child(&up.uuid, blocks, seen)
                    && !up.reduce_output.as_ref().is_some_and(|r| r.value))
        })
    })
}
