//! One diagnostic type for every error and warning weir reports about a configuration.
//!
//! A [`Diagnostic`] points at a span of a source file (or at nothing, for problems with no
//! place, like a missing directory). It renders as rustc does: a `FILE:LINE:COL:` header, the
//! source line with the span underlined (through `miette`), and a help line saying what would be
//! right. `--json` prints the same diagnostics as an array of objects.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A source file weir read: its path as shown to the user and its text.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user would type it from the current directory (e.g.
    /// `examples/quickstart/main.hcl`).
    pub display_path: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(display_path: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Arc::new(SourceFile {
            display_path: display_path.into(),
            text,
            line_starts,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line + 1, col + 1)
    }

    /// Byte offset of a 1-based line and column (columns counted in characters).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(col.saturating_sub(1))
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }
}

/// Where a diagnostic points.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Range<usize>,
}

impl Location {
    pub fn new(file: &Arc<SourceFile>, span: Range<usize>) -> Location {
        Location {
            file: Arc::clone(file),
            span,
        }
    }

    /// The start of line 1 of `file`: where problems with the whole configuration point.
    pub fn file_start(file: &Arc<SourceFile>) -> Location {
        Location::new(file, 0..0)
    }

    pub fn line_col(&self) -> (usize, usize) {
        self.file.line_col(self.span.start)
    }

    /// The source text under the span.
    pub fn text(&self) -> &str {
        self.file.text.get(self.span.clone()).unwrap_or("")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col();
        write!(f, "{}:{line}:{col}", self.file.display_path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// An error or a warning about the configuration (or about what weir was asked to do).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What would be right.
    pub help: Option<String>,
    /// A short note under the underlined span.
    pub label: Option<String>,
    pub location: Option<Location>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            help: None,
            label: None,
            location: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: &Location) -> Diagnostic {
        self.location = Some(location.clone());
        self
    }

    pub fn at_opt(mut self, location: Option<&Location>) -> Diagnostic {
        self.location = location.cloned();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: error: message` (no snippet): one line, for logs and tests.
    pub fn short(&self) -> String {
        match &self.location {
            Some(loc) => format!("{loc}: {}: {}", self.severity, self.message),
            None => format!("{}: {}", self.severity, self.message),
        }
    }

    /// The full rendering: header line, source snippet with the span underlined, help.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        let header = self.short();
        if color {
            let style = match self.severity {
                Severity::Error => anstyle::AnsiColor::Red.on_default().bold(),
                Severity::Warning => anstyle::AnsiColor::Yellow.on_default().bold(),
            };
            out.push_str(&format!("{style}{header}{style:#}\n"));
        } else {
            out.push_str(&header);
            out.push('\n');
        }
        let Some(loc) = &self.location else {
            if let Some(help) = &self.help {
                out.push_str(&format!("  help: {help}\n"));
            }
            return out;
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .with_width(100);
        let report = Snippet {
            diagnostic: self,
            source: NamedSource::new(loc.file.display_path.clone(), loc.file.text.clone()),
        };
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, &report).is_ok() {
            // miette starts with its own "× message" (possibly wrapped over several lines); our
            // header already said it, so keep the snippet from its frame on.
            let body = rendered
                .find("╭─[")
                .or_else(|| rendered.find(",-["))
                .and_then(|i| rendered[..i].rfind('\n').map(|nl| &rendered[nl + 1..]))
                .unwrap_or("");
            out.push_str(body.trim_end_matches('\n'));
            out.push('\n');
        }
        out
    }
}

/// Adapter so miette can draw the snippet of one [`Diagnostic`].
struct Snippet<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
}

impl fmt::Debug for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Snippet<'_> {}

impl miette::Diagnostic for Snippet<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.diagnostic.location.as_ref()?;
        let span = SourceSpan::from(loc.span.start..loc.span.end.max(loc.span.start));
        let label = LabeledSpan::new_with_span(self.diagnostic.label.clone(), span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// The JSON form of a diagnostic (`weir validate --json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub file: Option<&'a str>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub message: &'a str,
    pub help: Option<&'a str>,
}

impl Diagnostic {
    pub fn to_json(&self) -> JsonDiagnostic<'_> {
        let (file, start, end) = match &self.location {
            Some(loc) => (
                Some(loc.file.display_path.as_str()),
                Some(loc.file.line_col(loc.span.start)),
                Some(loc.file.line_col(loc.span.end)),
            ),
            None => (None, None, None),
        };
        JsonDiagnostic {
            severity: self.severity,
            file,
            line: start.map(|s| s.0),
            column: start.map(|s| s.1),
            end_line: end.map(|s| s.0),
            end_column: end.map(|s| s.1),
            message: &self.message,
            help: self.help.as_deref(),
        }
    }
}

/// The diagnostics of one run, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorts by file, then position, keeping errors found at the same place in order.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                d.location
                    .as_ref()
                    .map(|l| (l.file.display_path.clone(), l.span.start))
            };
            key(a).cmp(&key(b))
        });
    }

    /// Replaces every occurrence of a secret in messages and help with `(sensitive)`.
    pub fn redact(&mut self, redactor: &crate::redact::Redactor) {
        for d in &mut self.items {
            d.message = redactor.redact(&d.message);
            d.help = d.help.as_deref().map(|h| redactor.redact(h));
            d.label = d.label.as_deref().map(|h| redactor.redact(h));
        }
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// "did you mean `x`?" for the closest of `candidates` to `name`, when one is close enough.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(name, candidate);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// A list of names for a message: `a`, `b` or `c`.
pub fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
