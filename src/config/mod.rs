//! The first stage: read every `*.hcl` file of the configuration directory, parse it with
//! `hcl-edit` (so every value keeps its span), resolve variables and locals, and hand the
//! domain blocks, with an [`Evaluator`] able to evaluate their attributes, to the model stage.

pub mod body;
pub mod eval;
pub mod files;
pub mod functions;
pub mod types;
pub mod variables;

use crate::diagnostics::{Diagnostic, Diagnostics, Location, SourceFile, suggest};
use crate::redact::Redactor;
use body::block_header;
use eval::Evaluator;
use hcl_edit::Span;
use hcl_edit::structure::{Block, Body};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The top-level block types of the language.
pub const TOP_LEVEL_BLOCKS: &[&str] = &[
    "weir",
    "variable",
    "locals",
    "deployment",
    "resource_profile",
    "pipeline",
    "schedule",
    "notification",
    "output",
];

/// Where the configuration and its variable values come from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The configuration directory (`-C`).
    pub dir: PathBuf,
    /// `--var name=value`, in order.
    pub vars: Vec<String>,
    /// `--var-file FILE`, in order.
    pub var_files: Vec<PathBuf>,
    /// `WEIR_VAR_<name>` variables from the environment.
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoadOptions {
            dir: dir.into(),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("WEIR_VAR_"))
                .collect(),
            ..Default::default()
        }
    }
}

/// A parsed configuration file.
pub struct ParsedFile {
    pub file: Arc<SourceFile>,
    pub body: Body,
}

/// A top-level block and the file it is in.
pub struct TopBlock<'a> {
    pub file: &'a Arc<SourceFile>,
    pub block: &'a Block,
}

impl TopBlock<'_> {
    pub fn header(&self) -> Location {
        block_header(self.file, self.block)
    }
}

/// The configuration after parsing and variable resolution.
pub struct Config {
    pub dir: PathBuf,
    pub files: Vec<ParsedFile>,
    pub evaluator: Evaluator,
    pub redactor: Redactor,
    /// The strings of every sensitive value, also registered with `redactor`: the source
    /// snippets of diagnostics are masked with them (see [`mask_secrets`]).
    pub secrets: Vec<String>,
}

impl Config {
    /// Top-level blocks of one type, in file order.
    pub fn blocks<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = TopBlock<'a>> + 'a {
        self.files.iter().flat_map(move |f| {
            f.body.get_blocks(kind).map(move |block| TopBlock {
                file: &f.file,
                block,
            })
        })
    }

    /// Where problems with the whole configuration point: line 1 of the first file.
    pub fn start(&self) -> Option<Location> {
        self.files.first().map(|f| Location::file_start(&f.file))
    }
}

/// The path of a file as shown to the user.
pub fn display_path(dir: &Path, name: &Path) -> String {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        name.display().to_string()
    } else {
        dir.join(name).display().to_string()
    }
}

/// Reads and parses the `*.hcl` files of `dir`, in name order.
pub fn read_files(dir: &Path, diags: &mut Diagnostics) -> Vec<ParsedFile> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            diags.push(
                Diagnostic::error(format!(
                    "cannot read the configuration directory `{}`: {err}",
                    dir.display()
                ))
                .help("pass the directory holding your `*.hcl` files with `-C DIR`"),
            );
            return Vec::new();
        }
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|n| n.extension().is_some_and(|e| e == "hcl"))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let display = display_path(dir, &name);
        let text = match files::read_inside(dir, &name) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    diags.push(
                        Diagnostic::error(format!("`{display}` is not valid UTF-8 text"))
                            .help("save the file as UTF-8"),
                    );
                    continue;
                }
            },
            Err(err) => {
                let mut d = Diagnostic::error(format!("`{display}` {err}"));
                if let Some(help) = err.help() {
                    d = d.help(help);
                }
                diags.push(d);
                continue;
            }
        };
        let file = SourceFile::new(display, text);
        if let Some(body) = parse(&file, diags) {
            files.push(ParsedFile { file, body });
        }
    }
    files
}

/// Parses one file; a syntax error is reported at its position.
pub fn parse(file: &Arc<SourceFile>, diags: &mut Diagnostics) -> Option<Body> {
    // hcl-edit recurses on nesting; very deep input is refused by the parser itself
    // (hcl-edit limits nesting depth), so hostile files cannot overflow the stack.
    match hcl_edit::parser::parse_body(&file.text) {
        Ok(body) => Some(body),
        Err(err) => {
            let loc = err.location();
            let offset = file.offset_of(loc.line(), loc.column());
            let end = file.text[offset..]
                .chars()
                .next()
                .map(|c| offset + c.len_utf8())
                .unwrap_or(offset);
            if err.message().contains("redefined attribute")
                && let Some(d) = duplicate_attribute(file, offset)
            {
                diags.push(d);
                return None;
            }
            diags.push(
                Diagnostic::error(format!("syntax error: {}", err.message()))
                    .at(&Location::new(file, offset..end))
                    .label("here"),
            );
            None
        }
    }
}

/// The parser refuses an attribute set twice in one body; say so in the words of the other
/// checks, naming the attribute and where it was first set.
fn duplicate_attribute(file: &Arc<SourceFile>, offset: usize) -> Option<Diagnostic> {
    let rest = &file.text[offset..];
    let len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let name = &rest[..len];
    if name.is_empty() {
        return None;
    }
    // The first definition: the nearest earlier line that sets the same name.
    let (line, _) = file.line_col(offset);
    let before: Vec<&str> = file.text[..offset].lines().collect();
    let first = before
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|after| after.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
        .filter(|first| *first < line);
    let help = match first {
        Some(first) => format!("remove one of the two: `{name}` is first set on line {first}"),
        None => "remove one of the two".to_string(),
    };
    Some(
        Diagnostic::error(format!("attribute `{name}` is set twice in the same block"))
            .at(&Location::new(file, offset..offset + len))
            .label("set again here")
            .help(help),
    )
}

/// Loads a configuration: parse, check the top level, resolve variables and locals.
/// Returns `None` when nothing more can be checked (no files, or syntax errors).
pub fn load(opts: &LoadOptions, diags: &mut Diagnostics) -> Option<Config> {
    crate::diagnostics::reset_suggestion_budget();
    let files = read_files(&opts.dir, diags);
    if diags.has_errors() {
        return None;
    }
    if files.is_empty() {
        diags.push(
            Diagnostic::error(format!(
                "no configuration files (`*.hcl`) in `{}`",
                opts.dir.display()
            ))
            .help("run weir in the directory of your configuration, or pass it with `-C DIR`"),
        );
        return None;
    }
    check_top_level(&files, diags);
    let mut config = Config {
        dir: opts.dir.clone(),
        files,
        evaluator: Evaluator::new(&opts.dir),
        redactor: Redactor::new(),
        secrets: Vec::new(),
    };
    variables::resolve(&mut config, opts, diags);
    variables::resolve_locals(&mut config, diags);
    Some(config)
}

fn check_top_level(files: &[ParsedFile], diags: &mut Diagnostics) {
    for f in files {
        for attr in f.body.attributes() {
            let loc = Location::new(&f.file, attr.key.span().unwrap_or(0..0));
            diags.push(
                Diagnostic::error(format!(
                    "attribute `{}` outside of any block",
                    attr.key.as_str()
                ))
                .at(&loc)
                .help("top-level values go in a `locals { ... }` block, or in a `variable` block"),
            );
        }
        for block in f.body.blocks() {
            let kind = block.ident.as_str();
            if !TOP_LEVEL_BLOCKS.contains(&kind) {
                let loc = Location::new(&f.file, block.ident.span().unwrap_or(0..0));
                let mut d = Diagnostic::error(format!("unknown block type `{kind}`"))
                    .at(&loc)
                    .label("unknown block type");
                d = match suggest(kind, TOP_LEVEL_BLOCKS.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "the block types are {}",
                        crate::diagnostics::one_of(TOP_LEVEL_BLOCKS)
                    )),
                };
                diags.push(d);
            }
        }
    }
}

/// Registers a sensitive value: its strings (and numbers) are scrubbed from messages by the
/// redactor and masked in the source snippets of diagnostics. Like the redactor, strings under
/// four characters are skipped.
pub fn register_secret(redactor: &mut Redactor, secrets: &mut Vec<String>, value: &hcl::Value) {
    fn collect(value: &hcl::Value, out: &mut Vec<String>) {
        match value {
            hcl::Value::String(s) => out.push(s.clone()),
            hcl::Value::Number(n) => out.push(n.to_string()),
            hcl::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            hcl::Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            hcl::Value::Bool(_) | hcl::Value::Null => {}
        }
    }
    redactor.add_value(&body::to_json(value));
    let mut found = Vec::new();
    collect(value, &mut found);
    for s in found {
        if s.chars().count() >= 4 && !secrets.contains(&s) {
            secrets.push(s);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Masks secrets in the source files that diagnostics show a snippet of: a sensitive value
/// written in a `*.tfvars` file or as a variable's `default` must not appear under an error
/// about it (or about a neighbouring line). Each byte of a secret becomes `*`, so spans, lines
/// and columns stay where they were.
pub fn mask_secrets(diags: Diagnostics, secrets: &[String]) -> Diagnostics {
    if secrets.is_empty() {
        return diags;
    }
    let mut masked: Vec<(Arc<SourceFile>, Arc<SourceFile>)> = Vec::new();
    let mut out = Diagnostics::new();
    for mut d in diags {
        if let Some(loc) = &mut d.location {
            let cached = masked
                .iter()
                .find(|(original, _)| Arc::ptr_eq(original, &loc.file))
                .map(|(_, m)| Arc::clone(m));
            let file = cached.unwrap_or_else(|| {
                let mut text = loc.file.text.clone();
                for secret in secrets {
                    if text.contains(secret.as_str()) {
                        text = text.replace(secret.as_str(), &"*".repeat(secret.len()));
                    }
                }
                let file = if text == loc.file.text {
                    Arc::clone(&loc.file)
                } else {
                    SourceFile::new(loc.file.display_path.clone(), text)
                };
                masked.push((Arc::clone(&loc.file), Arc::clone(&file)));
                file
            });
            loc.file = file;
        }
        out.push(d);
    }
    out
}

/// Checks that a block has exactly `n` labels; returns them.
pub fn labels<'a>(
    file: &Arc<SourceFile>,
    block: &'a Block,
    names: &[&str],
    diags: &mut Diagnostics,
) -> Option<Vec<(&'a str, Location)>> {
    let kind = block.ident.as_str();
    if block.labels.len() != names.len() {
        let expected = if names.is_empty() {
            format!("`{kind} {{ ... }}` takes no label")
        } else {
            let shape: Vec<String> = names.iter().map(|n| format!("\"<{n}>\"")).collect();
            format!("write `{kind} {} {{ ... }}`", shape.join(" "))
        };
        diags.push(
            Diagnostic::error(format!(
                "block `{kind}` needs {} label{}, found {}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                block.labels.len()
            ))
            .at(&block_header(file, block))
            .help(expected),
        );
        return None;
    }
    Some(
        block
            .labels
            .iter()
            .map(|l| (l.as_str(), Location::new(file, l.span().unwrap_or(0..0))))
            .collect(),
    )
}
