//! Properties of `weir validate` (`weir::model::load`) on hostile and broken input:
//!
//! - it never panics, whatever the bytes of the configuration;
//! - when it returns no configuration, it says why: at least one error diagnostic (and when it
//!   returns one, there is no error);
//! - every diagnostic that has a location points inside its file: a valid span on character
//!   boundaries, a line that exists and a column within that line.
//!
//! The inputs are arbitrary bytes, "HCL-ish" token soup, and the two shipped examples
//! (`examples/quickstart`, `examples/local`) with one random mutation applied (a line deleted or
//! duplicated, a token replaced, characters inserted, the file truncated).
//!
//! A second group runs the built binary, under a memory limit, on hostile shapes: lines with an
//! error past column 65,535, long chains of locals, deep nesting in the source. None may
//! panic, abort, exhaust memory or print more than a few snippets.
//!
//! Case counts are kept moderate so the suite stays fast in debug builds; raise them locally
//! with e.g. `PROPTEST_CASES=5000 cargo test --test validate_props` (the `cases` helper reads
//! that variable).

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use weir::config::LoadOptions;
use weir::diagnostics::Diagnostics;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Shrinking a failure of a whole-configuration property can take long; a small budget
        // still gets a readable counterexample.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

fn options(dir: &Path) -> LoadOptions {
    LoadOptions {
        dir: dir.to_path_buf(),
        vars: Vec::new(),
        var_files: Vec::new(),
        env: Vec::new(),
    }
}

/// Checks the properties on one loaded directory; `Err` says which one failed.
fn check(dir: &Path) -> Result<(), String> {
    let (model, diags) = weir::model::load(&options(dir));
    if model.is_none() && !diags.has_errors() {
        return Err(format!(
            "no configuration and no error; diagnostics:\n{}",
            shorts(&diags)
        ));
    }
    if model.is_some() && diags.has_errors() {
        return Err(format!(
            "a configuration despite errors:\n{}",
            shorts(&diags)
        ));
    }
    check_locations(&diags, dir)
}

fn shorts(diags: &Diagnostics) -> String {
    diags
        .iter()
        .map(|d| d.short())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every located diagnostic points inside its file, a file of the configuration directory.
fn check_locations(diags: &Diagnostics, dir: &Path) -> Result<(), String> {
    for d in diags.iter() {
        let Some(loc) = &d.location else { continue };
        let text = &loc.file.text;
        let span = &loc.span;
        if span.start > span.end || span.end > text.len() {
            return Err(format!(
                "span {span:?} outside of a {}-byte file: {}",
                text.len(),
                d.short()
            ));
        }
        if !text.is_char_boundary(span.start) || !text.is_char_boundary(span.end) {
            return Err(format!(
                "span {span:?} not on character boundaries: {}",
                d.short()
            ));
        }
        let lines: Vec<&str> = text.split('\n').collect();
        for offset in [span.start, span.end] {
            let (line, col) = loc.file.line_col(offset);
            let Some(line_text) = lines.get(line.wrapping_sub(1)) else {
                return Err(format!(
                    "line {line} does not exist (the file has {}): {}",
                    lines.len(),
                    d.short()
                ));
            };
            let width = line_text.chars().count();
            if col == 0 || col > width + 1 {
                return Err(format!(
                    "column {col} is outside line {line} ({width} characters): {}",
                    d.short()
                ));
            }
        }
        if !Path::new(&loc.file.display_path).starts_with(dir) {
            return Err(format!(
                "points at a file outside of the configuration directory: {}",
                d.short()
            ));
        }
    }
    Ok(())
}

fn write_config(files: &[(PathBuf, Vec<u8>)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (rel, bytes) in files {
        let path = tmp.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }
    tmp
}

// ------------------------------------------------------------------------ arbitrary input

/// Pieces of the language, so random sequences get past the parser now and then.
const TOKENS: &[&str] = &[
    "deployment",
    "\"dev\"",
    "pipeline",
    "\"etl\"",
    "block",
    "\"load\"",
    "schedule",
    "notification",
    "resource_profile",
    "variable",
    "locals",
    "output",
    "weir",
    "backend",
    "\"gcs\"",
    "message",
    "\"failure\"",
    "condition",
    "callback",
    "retry",
    "concurrency",
    "webserver",
    "scheduler",
    "storage",
    "database",
    "lifecycle",
    "validation",
    "target",
    "\"local\"",
    "\"gcp\"",
    "project_dir",
    "image",
    "\"mageai/mageai:0.9.80\"",
    "type",
    "\"data_loader\"",
    "\"transformer\"",
    "code",
    "source",
    "\"blocks/x.py\"",
    "upstream",
    "gates",
    "on",
    "pipelines",
    "cron",
    "\"@daily\"",
    "\"0 25 * * *\"",
    "channel",
    "\"slack\"",
    "webhook_url",
    "title",
    "\"{pipeline_name} {\"",
    "cpu",
    "memory",
    "\"16Gi\"",
    "timeout",
    "\"10m\"",
    "zone",
    "region",
    "\"us-central1\"",
    "default",
    "sensitive",
    "true",
    "false",
    "null",
    "0",
    "1",
    "-1",
    "1.5",
    "1e400",
    "var.x",
    "local.y",
    "block.load",
    "pipeline.etl",
    "resource_profile.p",
    "deployment.dev.bucket",
    "x",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "=",
    ",",
    ".",
    "*",
    ":",
    "?",
    "!",
    "==",
    "&&",
    "||",
    "+",
    "/",
    "%",
    "\"",
    "\"${",
    "${",
    "%{",
    "for",
    "in",
    "if",
    "=>",
    "...",
    "<<EOT\n",
    "<<-EOT\n",
    "EOT\n",
    "#",
    "//",
    "/*",
    "*/",
    "\n",
    "\n",
    "\n",
    " ",
    " ",
    "\t",
    "\\",
    "é",
    "\u{0}",
    "\r\n",
    "file(\"nope\")",
    "jsondecode(\"{\")",
    "try(",
    "can(",
    "length(",
    "upper(",
    "templatefile(",
    "tonumber(",
    "join(",
    "concat(",
    "merge(",
    "lookup(",
    "@",
    "def",
    "async",
    "\u{feff}",
];

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..120)
        .prop_map(|tokens| tokens.join(" ").into_bytes())
}

fn any_main_hcl() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
        token_soup(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// (a) Any bytes as `main.hcl`.
    #[test]
    fn arbitrary_main_hcl(bytes in any_main_hcl()) {
        let tmp = write_config(&[(PathBuf::from("main.hcl"), bytes)]);
        if let Err(msg) = check(tmp.path()) {
            return Err(TestCaseError::fail(msg));
        }
    }
}

// ------------------------------------------------------------------------ mutated examples

/// The files of a configuration: paths relative to its directory, and contents.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// The files of one example: every `*.hcl` and every code file under `blocks/`.
fn example_files(name: &str) -> Files {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))
            .unwrap()
            .filter_map(Result::ok)
        {
            let name = entry.file_name();
            let rel = rel.join(&name);
            let path = entry.path();
            if path.is_dir() {
                if name != ".weir" && name != "mage_project" && name != "out" {
                    dirs.push(rel);
                }
            } else if path
                .extension()
                .is_some_and(|e| e == "hcl" || e == "py" || e == "sql")
            {
                files.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn examples() -> &'static [Files; 2] {
    static EXAMPLES: OnceLock<[Files; 2]> = OnceLock::new();
    EXAMPLES.get_or_init(|| [example_files("quickstart"), example_files("local")])
}

/// One edit to one file.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Replace the n-th token with another token of the same file (the m-th).
    SwapToken(usize, usize),
    /// Replace the n-th token with this text.
    ReplaceToken(usize, String),
    /// Insert text at a byte position (moved to the next character boundary).
    Insert(usize, String),
    Truncate(usize),
}

fn replacement() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(TOKENS).prop_map(str::to_string),
        "[a-z_]{0,10}",
        "\"[ -~]{0,12}\"",
        "-?[0-9]{1,4}(\\.[0-9]{1,2})?",
        any::<String>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>();
    prop_oneof![
        index
            .clone()
            .prop_map(|i| Mutation::DeleteLine(i.index(1 << 20))),
        index
            .clone()
            .prop_map(|i| Mutation::DuplicateLine(i.index(1 << 20))),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapToken(a, b)),
        (any::<usize>(), replacement()).prop_map(|(a, s)| Mutation::ReplaceToken(a, s)),
        (any::<usize>(), "[ -~\\n]{1,6}|\\PC{1,3}").prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Byte ranges of the tokens of a text: identifiers (with dots), numbers, string literals
/// (up to the closing quote on the same line) and single punctuation characters.
fn tokens(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_alphanumeric() || c == b'_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'-'))
            {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        if text.is_char_boundary(start) && text.is_char_boundary(i) {
            out.push(start..i);
        }
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match mutation {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != i)
                .map(|(_, l)| *l)
                .collect()
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            let mut out = String::new();
            for (n, l) in lines.iter().enumerate() {
                out.push_str(l);
                if n == i {
                    if !l.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(l);
                }
            }
            out
        }
        Mutation::SwapToken(a, _) | Mutation::ReplaceToken(a, _) if !tokens(text).is_empty() => {
            let toks = tokens(text);
            let target = toks[a % toks.len()].clone();
            let with = match mutation {
                Mutation::SwapToken(_, b) => text[toks[b % toks.len()].clone()].to_string(),
                Mutation::ReplaceToken(_, s) => s.clone(),
                _ => unreachable!(),
            };
            format!("{}{with}{}", &text[..target.start], &text[target.end..])
        }
        Mutation::Insert(at, s) => {
            let at = floor_boundary(text, at % (text.len() + 1));
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Mutation::Truncate(at) => text[..floor_boundary(text, at % (text.len() + 1))].to_string(),
        _ => text.to_string(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// (b) + (c) One random mutation of one file of an example.
    #[test]
    fn mutated_examples(
        example in 0usize..2,
        file in any::<prop::sample::Index>(),
        mutation in mutation(),
    ) {
        let mut files = examples()[example].clone();
        // Mostly the configuration files; now and then a code file.
        let i = file.index(files.len());
        let text = String::from_utf8(files[i].1.clone()).expect("examples are UTF-8");
        files[i].1 = apply(&text, &mutation).into_bytes();
        let tmp = write_config(&files);
        if let Err(msg) = check(tmp.path()) {
            return Err(TestCaseError::fail(format!(
                "after {mutation:?} of {}:\n{msg}",
                files[i].0.display()
            )));
        }
    }

    /// Several mutations at once, in the configuration files only.
    #[test]
    fn repeatedly_mutated_examples(
        example in 0usize..2,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), mutation()), 2..6),
    ) {
        let mut files = examples()[example].clone();
        let hcl: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].0.extension().is_some_and(|e| e == "hcl"))
            .collect();
        for (file, mutation) in &edits {
            let i = hcl[file.index(hcl.len())];
            let text = String::from_utf8(files[i].1.clone()).unwrap();
            files[i].1 = apply(&text, mutation).into_bytes();
        }
        let tmp = write_config(&files);
        if let Err(msg) = check(tmp.path()) {
            return Err(TestCaseError::fail(format!("after {edits:?}:\n{msg}")));
        }
    }
}

// ------------------------------------------------------------------------ hostile shapes

// Shapes that once crashed weir or exhausted memory: lines so long that an error sits past
// column 65,535, long chains of locals (in both orders of declaration, building ever larger
// values), and deep nesting in the source. Each case runs the built binary (a stack overflow
// aborts the process, which must not take the test runner with it) with its address space
// limited, so a blow-up fails the test instead of swapping the machine.

/// The address space of each run, in KiB (`ulimit -v`): 2 GiB.
const MEMORY_LIMIT_KIB: u64 = 2 << 20;

/// Fewer cases than the properties above: each one runs the binary on a large input.
fn hostile_config() -> ProptestConfig {
    ProptestConfig {
        cases: (cases() / 32).max(4),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

const DEPLOYMENT: &str = "deployment \"dev\" {\n  target      = \"local\"\n  project_dir = \"mage_project\"\n  image       = \"mageai/mageai:0.9.80\"\n}\n";

/// Runs `weir validate` on a `main.hcl` of `text` under the memory limit; `Err` says what
/// went wrong: a crash (panic, abort, signal), an exit code other than 0 or 1, or more output
/// than a few snippets.
fn validate_binary(text: &str) -> Result<(), String> {
    let tmp = write_config(&[(PathBuf::from("main.hcl"), text.as_bytes().to_vec())]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_weir"))
        .arg("-C")
        .arg(tmp.path())
        .args(["--no-color", "validate"])
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = &stderr[floor_boundary(&stderr, stderr.len().saturating_sub(2000))..];
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!("exit {:?}:\n{tail}", out.status));
    }
    for crash in ["panicked", "overflowed its stack", "memory allocation"] {
        if stderr.contains(crash) {
            return Err(format!("{crash}:\n{tail}"));
        }
    }
    // Every snippet is an excerpt: however long the lines, the output stays small.
    if stderr.len() > 64 * 1024 {
        return Err(format!("{} bytes of diagnostics:\n{tail}", stderr.len()));
    }
    Ok(())
}

/// Something wrong to put at the end of a long line.
const LINE_ENDINGS: &[&str] = &[
    " + nope",
    " + var.missing",
    " + local.missing",
    " + ",
    " + \"unterminated",
    " + [1,",
    " ? 1",
    " + upper()",
    " + 1",
];

/// A line of 65,000 to 140,000 characters (ASCII or not) with an error near its end.
fn long_line() -> impl Strategy<Value = String> {
    (
        65_000usize..140_000,
        prop::sample::select(&["x", "é", "\u{1F600}", " ", "\t"][..]),
        prop::sample::select(LINE_ENDINGS),
        any::<bool>(),
    )
        .prop_map(|(len, filler, ending, in_string)| {
            let expr = if in_string {
                format!("\"{}\"{ending}", filler.repeat(len))
            } else {
                format!(
                    "{}1{ending}",
                    filler.repeat(len).replace(['x', 'é', '\u{1F600}'], " ")
                )
            };
            format!("{DEPLOYMENT}locals {{\n  a = {expr}\n  b = 1\n}}\n")
        })
}

/// How each local of a chain uses the one before it.
const LINKS: &[&str] = &[
    "local.{prev}",
    "[local.{prev}]",
    "{ a = local.{prev} }",
    "[local.{prev}, local.{prev}]",
    "\"${local.{prev}}${local.{prev}}\"",
    "upper(local.{prev})",
    "merge(local.{prev}, { k{i} = 1 })",
    "concat(local.{prev}, local.{prev})",
    "length(local.{prev})",
    "local.{prev}.a",
];

/// 1 to 20,000 locals, each using the one before, declared in order or last link first.
fn chain_of_locals() -> impl Strategy<Value = String> {
    (
        1usize..20_000,
        prop::sample::select(LINKS),
        prop::sample::select(&["1", "\"abcdefgh\"", "[1]", "{ a = 1 }", "{}"][..]),
        any::<bool>(),
    )
        .prop_map(|(n, link, first, reversed)| {
            let mut lines: Vec<String> = (1..n)
                .map(|i| {
                    let expr = link
                        .replace("{prev}", &format!("l{}", i - 1))
                        .replace("{i}", &i.to_string());
                    format!("  l{i} = {expr}\n")
                })
                .collect();
            lines.insert(0, format!("  l0 = {first}\n"));
            if reversed {
                lines.reverse();
            }
            format!("{DEPLOYMENT}locals {{\n{}}}\n", lines.concat())
        })
}

/// Openings and closings of one level of nesting, and what sits innermost.
const NESTINGS: &[(&str, &str, &str)] = &[
    ("[", "]", "1"),
    ("(", ")", "1"),
    ("{ a = ", " }", "1"),
    ("\"${", "}\"", "1"),
    ("upper(", ")", "\"a\""),
    ("[for x in ", " : x]", "[1]"),
    ("true ? ", " : 1", "1"),
    ("!", "", "true"),
    ("-", "", "1"),
    ("<<EOT\n${", "}\nEOT\n", "1"),
];

/// Expressions nested 1 to 200,000 levels deep, balanced or cut short, or nested blocks.
fn deep_nesting() -> impl Strategy<Value = String> {
    (
        0u32..18,
        prop::sample::select(NESTINGS),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(log_depth, (open, close, inner), balanced, blocks)| {
            let depth = (1usize << log_depth).min(200_000);
            if blocks {
                let closing = if balanced {
                    "}\n".repeat(depth)
                } else {
                    String::new()
                };
                return format!(
                    "{DEPLOYMENT}{}{closing}",
                    "pipeline \"p\" {\n".repeat(depth)
                );
            }
            let closing = if balanced {
                close.repeat(depth)
            } else {
                close.repeat(depth / 2)
            };
            format!(
                "{DEPLOYMENT}locals {{\n  a = {}{inner}{closing}\n}}\n",
                open.repeat(depth)
            )
        })
}

proptest! {
    #![proptest_config(hostile_config())]

    /// An error past column 65,535 is rendered, as an excerpt of its line.
    #[test]
    fn long_lines(text in long_line()) {
        validate_binary(&text).map_err(TestCaseError::fail)?;
    }

    /// Long chains of locals neither overflow the stack nor grow memory without bound.
    #[test]
    fn long_chains_of_locals(text in chain_of_locals()) {
        validate_binary(&text).map_err(TestCaseError::fail)?;
    }

    /// Deep nesting in the source is a syntax error, not a stack overflow.
    #[test]
    fn deeply_nested_source(text in deep_nesting()) {
        validate_binary(&text).map_err(TestCaseError::fail)?;
    }
}

/// The hostile shapes that once failed, fixed, so they run on every test run whatever the
/// random cases: they fail `validate_binary` without the fixes (a miette panic, a stack
/// overflow, quadratic then exhausted memory).
#[test]
fn hostile_shapes_that_once_failed() {
    let long = format!(
        "{DEPLOYMENT}locals {{\n  a = \"{}\" + nope\n}}\n",
        "x".repeat(70_000)
    );
    let reversed_chain = {
        let mut lines: Vec<String> = (1..10_000)
            .map(|i| format!("  l{i} = local.l{}\n", i - 1))
            .collect();
        lines.reverse();
        format!("{DEPLOYMENT}locals {{\n{}  l0 = 1\n}}\n", lines.concat())
    };
    let nested_lists = {
        let lines: Vec<String> = (1..10_000)
            .map(|i| format!("  l{i} = [local.l{}]\n", i - 1))
            .collect();
        format!("{DEPLOYMENT}locals {{\n  l0 = 1\n{}}}\n", lines.concat())
    };
    for (what, text) in [
        ("an error past column 65,535", long),
        ("10,000 locals declared last link first", reversed_chain),
        ("10,000 locals nesting lists", nested_lists),
    ] {
        if let Err(msg) = validate_binary(&text) {
            panic!("{what}: {msg}");
        }
    }
}

/// The unmutated examples are valid, and a valid configuration passes the same checks (so the
/// properties above are not vacuous).
#[test]
fn examples_are_valid() {
    for (n, files) in examples().iter().enumerate() {
        let tmp = write_config(files);
        let (model, diags) = weir::model::load(&options(tmp.path()));
        assert!(
            model.is_some() && !diags.has_errors(),
            "example {n} is invalid:\n{}",
            shorts(&diags)
        );
        check_locations(&diags, tmp.path()).unwrap();
    }
}

/// The mutation helpers do what they say.
#[test]
fn mutations_edit_the_text() {
    let text = "a = \"x y\"\nb = 1\n";
    assert_eq!(apply(text, &Mutation::DeleteLine(0)), "b = 1\n");
    assert_eq!(
        apply(text, &Mutation::DuplicateLine(1)),
        "a = \"x y\"\nb = 1\nb = 1\n"
    );
    assert_eq!(
        apply(text, &Mutation::ReplaceToken(2, "2".into())),
        "a = 2\nb = 1\n"
    );
    assert_eq!(
        apply(text, &Mutation::SwapToken(0, 3)),
        "b = \"x y\"\nb = 1\n"
    );
    assert_eq!(apply(text, &Mutation::Truncate(3)), "a =");
    assert_eq!(
        apply(text, &Mutation::Insert(0, "#".into())),
        "#a = \"x y\"\nb = 1\n"
    );
}
