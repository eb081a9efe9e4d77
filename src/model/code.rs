//! Block code: reading it from `source` or `code`, and the checks Mage itself only fails at
//! run time (an `async def` block function, a missing decorator).

use crate::config::body::{BodyReader, Spanned};
use crate::config::eval::Evaluator;
use crate::diagnostics::{Diagnostic, Diagnostics, Location, SourceFile};
use hcl_edit::Span;
use std::path::{Path, PathBuf};

/// The decorators of Mage's block kinds (blocks, conditions and callbacks).
const MAGE_DECORATORS: &[&str] = &[
    "data_loader",
    "transformer",
    "data_exporter",
    "sensor",
    "custom",
    "condition",
    "callback",
    "on_success",
    "on_failure",
];

/// Block code and where it came from.
#[derive(Debug, Clone)]
pub struct Code {
    pub text: String,
    /// The `source` path as written (relative to the configuration directory).
    pub source: Option<String>,
    /// Where line 1 of the code is, for diagnostics inside it: the code file, or the first line
    /// of an inline heredoc.
    pub origin: CodeOrigin,
}

#[derive(Debug, Clone)]
pub enum CodeOrigin {
    /// A code file, by its displayed path. Its `SourceFile` (with line offsets) is built only
    /// when a diagnostic points into it: most code files never need one.
    File(String),
    /// Inline code: the HCL file and the offset of the code's first character, when the code is
    /// a heredoc whose lines map one to one to the file.
    Inline(Location, Option<usize>),
}

/// Reads `source` or `code` (exactly one of them).
pub fn read_code(
    r: &BodyReader,
    ev: &Evaluator,
    dir: &std::path::Path,
    diags: &mut Diagnostics,
) -> Option<Code> {
    match (r.has("source"), r.has("code")) {
        (true, true) => {
            diags.push(
                Diagnostic::error(format!("{} sets both `source` and `code`", r.what))
                    .at(&r.attr_loc("code"))
                    .help("keep one: `source` names a file, `code` holds the code inline"),
            );
            None
        }
        (false, false) => {
            diags.push(
                Diagnostic::error(format!("{} has no code: neither `source` nor `code` is set", r.what))
                    .at(&r.header)
                    .label("`source` or `code` is missing")
                    .help("add `source = \"blocks/<file>.py\"` (a path relative to the configuration directory), or inline `code = <<-EOT ... EOT`"),
            );
            None
        }
        (true, false) => {
            let source: Spanned<String> = r.string(ev, "source", diags)?;
            let path = dir.join(&source.value);
            let display = crate::config::display_path(dir, &PathBuf::from(&source.value));
            match crate::config::files::read_inside(dir, Path::new(&source.value)) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => Some(Code {
                        origin: CodeOrigin::File(display),
                        text,
                        source: Some(source.value),
                    }),
                    Err(_) => {
                        diags.push(
                            Diagnostic::error(format!("`{display}` is not UTF-8 text"))
                                .at(&source.loc),
                        );
                        None
                    }
                },
                Err(err) => {
                    let abs = std::path::absolute(&path).unwrap_or(path.clone());
                    diags.push(
                        Diagnostic::error(format!("code file `{}` {err}", abs.display()))
                            .at(&source.loc)
                            .label("resolved relative to the configuration directory")
                            .help(err.help().unwrap_or("`source` is a path relative to the configuration directory (the one given with -C)")),
                    );
                    None
                }
            }
        }
        (false, true) => {
            let code: Spanned<String> = r.string(ev, "code", diags)?;
            let attr = r.attr("code")?;
            let first_line = match &attr.value {
                hcl_edit::expr::Expression::HeredocTemplate(_) => attr
                    .value
                    .span()
                    .and_then(|s| r.file.text[s.clone()].find('\n').map(|i| s.start + i + 1)),
                _ => None,
            };
            Some(Code {
                text: code.value,
                source: None,
                origin: CodeOrigin::Inline(code.loc, first_line),
            })
        }
    }
}

impl Code {
    /// The location of a 1-based line of the code, from its first non-blank character.
    fn line_location(&self, line: usize) -> Location {
        let loc = self.full_line_location(line);
        let text = loc.text();
        let indent = text.len() - text.trim_start().len();
        if indent == text.len() {
            return loc;
        }
        Location::new(&loc.file, loc.span.start + indent..loc.span.end)
    }

    fn full_line_location(&self, line: usize) -> Location {
        match &self.origin {
            CodeOrigin::File(display) => {
                let file = SourceFile::new(display.clone(), self.text.clone());
                let start = file.offset_of(line, 1);
                let end = file.text[start..]
                    .find('\n')
                    .map(|i| start + i)
                    .unwrap_or(file.text.len());
                Location::new(&file, start..end)
            }
            CodeOrigin::Inline(loc, Some(first)) => {
                let (first_line, _) = loc.file.line_col(*first);
                let start = loc.file.offset_of(first_line + line - 1, 1);
                let end = loc.file.text[start..]
                    .find('\n')
                    .map(|i| start + i)
                    .unwrap_or(loc.file.text.len());
                Location::new(&loc.file, start..end)
            }
            CodeOrigin::Inline(loc, None) => loc.clone(),
        }
    }

    /// Checks Python block code: the decorator that matches the block's kind must be there, and
    /// the decorated function must not be `async def`.
    pub fn check_python(&self, decorators: &[&str], what: &str, diags: &mut Diagnostics) {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut found = false;
        // The first decorator of another kind of Mage block, e.g. `@data_loader` on a
        // transformer: the likely mistake when the right one is missing.
        let mut other: Option<(usize, String)> = None;
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed.strip_prefix('@') else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !decorators.contains(&name.as_str()) {
                if other.is_none() && MAGE_DECORATORS.contains(&name.as_str()) {
                    other = Some((i + 1, name));
                }
                continue;
            }
            found = true;
            // The decorated definition is the next line that is not another decorator.
            let def = lines.iter().enumerate().skip(i + 1).find(|(_, l)| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('@') && !t.starts_with('#')
            });
            if let Some((j, def_line)) = def
                && def_line.trim_start().starts_with("async def")
            {
                let fname = def_line
                    .trim_start()
                    .trim_start_matches("async def")
                    .trim_start()
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_string();
                diags.push(
                    Diagnostic::error(format!(
                        "block function `{fname}` of {what} is defined with `async def`, which Mage cannot run"
                    ))
                    .at(&self.line_location(j + 1))
                    .label("async block function")
                    .help("define it with `def`; to call async code, run it inside with `asyncio.run(...)`"),
                );
            }
        }
        if !found {
            let wanted: Vec<String> = decorators.iter().take(1).map(|d| format!("@{d}")).collect();
            let (line, message) = match &other {
                Some((line, name)) => (
                    *line,
                    format!(
                        "the code of {what} has no function decorated with `{}`: it is decorated with `@{name}`, the decorator of another kind of block",
                        wanted.join("")
                    ),
                ),
                None => (
                    1,
                    format!(
                        "the code of {what} has no function decorated with `{}`",
                        wanted.join("")
                    ),
                ),
            };
            diags.push(
                Diagnostic::error(message)
                .at(&self.line_location(line))
                .help(format!(
                    "Mage runs the function decorated with `{0}`; add it:\n  if '{1}' not in globals():\n      from mage_ai.data_preparation.decorators import {1}\n\n  {0}\n  def run(*args, **kwargs):\n      ...",
                    wanted.join(""),
                    decorators.first().copied().unwrap_or("")
                )),
            );
        }
    }
}
