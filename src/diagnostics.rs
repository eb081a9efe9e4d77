//! One diagnostic type for every error and warning weir reports about a configuration.
//!
//! A [`Diagnostic`] points at a span of a source file (or at nothing, for problems with no
//! place, like a missing directory). It renders as rustc does: a `FILE:LINE:COL:` header, the
//! source line with the span underlined (through `miette`), and a help line saying what would be
//! right. `--json` prints the same diagnostics as an array of objects.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Bytes of text between two of a [`SourceFile`]'s character checkpoints.
const CHECKPOINT_BYTES: usize = 1024;

/// A source file weir read: its path as shown to the user and its text.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user would type it from the current directory (e.g.
    /// `examples/quickstart/main.hcl`).
    pub display_path: String,
    pub text: String,
    line_starts: Vec<usize>,
    /// `(byte offset, characters before it)` about every [`CHECKPOINT_BYTES`], from `(0, 0)`:
    /// columns are counted in characters, and counting from the start of a line of a megabyte
    /// for each of thousands of errors on it would be quadratic.
    checkpoints: Vec<(usize, usize)>,
}

impl SourceFile {
    pub fn new(display_path: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut checkpoints = vec![(0, 0)];
        let mut last = 0;
        for (chars, (offset, _)) in text.char_indices().enumerate() {
            if offset - last >= CHECKPOINT_BYTES {
                checkpoints.push((offset, chars));
                last = offset;
            }
        }
        Arc::new(SourceFile {
            display_path: display_path.into(),
            text,
            line_starts,
            checkpoints,
        })
    }

    /// The largest character boundary at or before `offset`.
    fn floor(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// How many characters of the text come before byte `offset`.
    fn chars_before(&self, offset: usize) -> usize {
        let offset = self.floor(offset);
        let (at, chars) =
            self.checkpoints[self.checkpoints.partition_point(|&(b, _)| b <= offset) - 1];
        chars + self.text[at..offset].chars().count()
    }

    /// The byte offset of character `n` of the text (its length when there are fewer).
    fn offset_of_char(&self, n: usize) -> usize {
        let (at, chars) = self.checkpoints[self.checkpoints.partition_point(|&(_, c)| c <= n) - 1];
        self.text[at..]
            .char_indices()
            .nth(n - chars)
            .map_or(self.text.len(), |(i, _)| at + i)
    }

    /// The 0-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset) - 1
    }

    /// The byte offset where a 0-based line ends (before its newline).
    fn line_end(&self, line: usize) -> usize {
        self.line_starts
            .get(line + 1)
            .map_or(self.text.len(), |next| next - 1)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor(offset);
        let line = self.line_of(offset);
        let col = self.chars_before(offset) - self.chars_before(self.line_starts[line]);
        (line + 1, col + 1)
    }

    /// Byte offset of a 1-based line and column (columns counted in characters).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        self.offset_of_char(self.chars_before(start) + col.saturating_sub(1))
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
            Some(loc) => format!("{loc}: {}: {}", self.severity, elide(&self.message)),
            None => format!("{}: {}", self.severity, elide(&self.message)),
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
                out.push_str(&format!("  help: {}\n", elide(help)));
            }
            return out;
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(SNIPPET_CONTEXT_LINES)
            .with_width(100);
        let report = Snippet {
            diagnostic: self,
            source: Excerpt::new(loc),
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

/// Lines of context shown above and below the underlined span.
const SNIPPET_CONTEXT_LINES: usize = 1;
/// Characters of a line shown in a snippet: a longer line is cut around the span (the rest
/// becomes `…`). miette pads with the span's column as a format width, which panics past
/// 65,535, and a minified line would otherwise be printed whole under every error on it.
const SNIPPET_WIDTH: usize = 120;
/// Characters of a cut line shown before the start of the span.
const SNIPPET_LEAD: usize = 40;
/// A span over more lines than this is underlined on its first line only.
const SNIPPET_MAX_SPAN_LINES: usize = 12;

/// The part of a source file a snippet shows: the lines of the span and their context lines,
/// each cut to a window of [`SNIPPET_WIDTH`] characters around the span when too long. Only
/// this excerpt is handed to miette, so rendering one diagnostic costs the size of its
/// snippet, not of its file; line numbers and the header column stay those of the file.
struct Excerpt {
    name: String,
    /// The shown lines, each with the newline that ends it in the file.
    text: String,
    /// 0-based number, in the file, of the first shown line.
    first_line: usize,
    /// The span, in `text`.
    span: Range<usize>,
    /// The 0-based column, in characters, of the span's start in the file.
    column: usize,
}

impl Excerpt {
    fn new(loc: &Location) -> Excerpt {
        let file = &loc.file;
        let text = file.text.as_str();
        let start = file.floor(loc.span.start);
        let mut end = file.floor(loc.span.end.max(start));
        let (start_line, mut end_line) = (file.line_of(start), file.line_of(end));
        if end_line - start_line >= SNIPPET_MAX_SPAN_LINES {
            end = file.line_end(start_line);
            end_line = start_line;
        }
        let first = start_line.saturating_sub(SNIPPET_CONTEXT_LINES);
        let last = (end_line + SNIPPET_CONTEXT_LINES).min(file.line_starts.len() - 1);
        // Each line as (byte offset, characters before it, length in characters).
        let lines: Vec<(usize, usize, usize)> = (first..=last)
            .map(|l| {
                let chars = file.chars_before(file.line_starts[l]);
                let len = file.chars_before(file.line_end(l)) - chars;
                (file.line_starts[l], chars, len)
            })
            .collect();

        // One window of columns (in characters) for every shown line, so they stay aligned.
        let start_col = file.chars_before(start) - lines[start_line - first].1;
        let too_long = lines.iter().any(|&(_, _, len)| len > SNIPPET_WIDTH);
        let window_start = if too_long {
            start_col.saturating_sub(SNIPPET_LEAD)
        } else {
            0
        };

        let mut out = String::new();
        let mut span = 0..0;
        for (i, &(line_start, chars, len)) in lines.iter().enumerate() {
            if i > 0 {
                // Each shown line keeps the newline that ends it in the file.
                out.push('\n');
            }
            // The bytes of the line shown, and whether some are left out on either side.
            let (shown, cut_before, cut_after) = if too_long {
                let from = file.offset_of_char(chars + window_start.min(len));
                let to = file.offset_of_char(chars + (window_start + SNIPPET_WIDTH).min(len));
                (
                    from..to,
                    window_start > 0 && len > 0,
                    len > window_start + SNIPPET_WIDTH,
                )
            } else {
                (line_start..file.line_end(first + i), false, false)
            };
            if cut_before {
                out.push('…');
            }
            // A span end on this line, clamped to what is shown of it.
            let base = out.len();
            let at = |offset: usize| base + offset.clamp(shown.start, shown.end) - shown.start;
            if first + i == start_line {
                span.start = at(start);
            }
            if first + i == end_line {
                span.end = at(end);
            }
            out.push_str(&text[shown]);
            if cut_after {
                out.push('…');
            }
        }
        if last + 1 < file.line_starts.len() {
            out.push('\n');
        }
        span.end = span.end.max(span.start);
        Excerpt {
            name: file.display_path.clone(),
            text: out,
            first_line: first,
            span,
            column: start_col,
        }
    }
}

impl miette::SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents =
            self.text
                .as_bytes()
                .read_span(span, context_lines_before, context_lines_after)?;
        // The header's `FILE:LINE:COL` comes from the span's own contents: the file's
        // numbers, not the excerpt's.
        let column = if context_lines_before == 0 && span.offset() == self.span.start {
            self.column
        } else {
            contents.column()
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            *contents.span(),
            self.first_line + contents.line(),
            column,
            contents.line_count(),
        )))
    }
}

/// Characters of a message, help or label printed whole; a longer one (it quotes a long value
/// of the configuration) keeps its start and end around a `…`.
const MAX_MESSAGE_CHARS: usize = 400;

/// `text`, cut in the middle when longer than [`MAX_MESSAGE_CHARS`]. Applied only when
/// printing, after secrets were redacted: cutting first could split a secret the redactor
/// would then not recognise.
fn elide(text: &str) -> Cow<'_, str> {
    let chars = text.chars().count();
    if chars <= MAX_MESSAGE_CHARS {
        return Cow::Borrowed(text);
    }
    let keep = MAX_MESSAGE_CHARS / 2;
    let byte = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let (head, tail) = (&text[..byte(keep)], &text[byte(chars - keep)..]);
    Cow::Owned(format!("{head} … {tail}"))
}

/// Adapter so miette can draw the snippet of one [`Diagnostic`].
struct Snippet<'a> {
    diagnostic: &'a Diagnostic,
    source: Excerpt,
}

impl fmt::Debug for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&elide(&self.diagnostic.message))
    }
}

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&elide(&self.diagnostic.message))
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
            .as_deref()
            .map(|h| Box::new(elide(h)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = SourceSpan::from(self.source.span.clone());
        let label = self
            .diagnostic
            .label
            .as_deref()
            .map(|l| elide(l).into_owned());
        let label = LabeledSpan::new_with_span(label, span);
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
    pub message: Cow<'a, str>,
    pub help: Option<Cow<'a, str>>,
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
            message: elide(&self.message),
            help: self.help.as_deref().map(elide),
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

/// How many names [`suggest`] may compare in one load of a configuration. Each unknown name is
/// compared with every declared one, so a hostile configuration of 20,000 locals that each
/// use an unknown one would take minutes; past this budget "did you mean" is left out. Real
/// configurations stay far below it.
const SUGGESTION_BUDGET: usize = 2_000_000;

thread_local! {
    /// The comparisons [`suggest`] may still make on this thread (a load runs on one thread).
    static SUGGESTIONS_LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(SUGGESTION_BUDGET) };
}

/// Gives [`suggest`] its whole budget again: called when a configuration starts loading.
pub fn reset_suggestion_budget() {
    SUGGESTIONS_LEFT.set(SUGGESTION_BUDGET);
}

/// "did you mean `x`?" for the closest of `candidates` to `name`, when one is close enough.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let left = SUGGESTIONS_LEFT.get();
        if left == 0 {
            break;
        }
        SUGGESTIONS_LEFT.set(left - 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, span: Range<usize>) -> String {
        let file = SourceFile::new("main.hcl", text);
        Diagnostic::error("bad")
            .at(&Location::new(&file, span))
            .label("here")
            .render(false)
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        // Multi-byte characters before the span: the window counts characters, the header
        // column too.
        let text = format!("a = \"{}\" + nope\nb = 1\n", "é".repeat(100_000));
        let start = text.find("nope").unwrap();
        let out = render(&text, start..start + 4);
        assert!(out.starts_with("main.hcl:1:100010: error: bad\n"), "{out}");
        assert!(out.contains("╭─[main.hcl:1:100010]"), "{out}");
        assert!(out.contains("1 │ …ééé"), "{out}");
        assert!(out.contains("\" + nope"), "{out}");
        assert!(out.contains("2 │ …"), "{out}");
        assert!(out.len() < 2_000, "{} bytes", out.len());
    }

    #[test]
    fn a_short_line_is_shown_whole() {
        let out = render("x = 1\ny = nope\nz = 2\n", 10..14);
        assert!(out.contains(" 1 │ x = 1\n 2 │ y = nope\n"), "{out}");
        assert!(out.contains(" 3 │ z = 2\n"), "{out}");
        assert!(!out.contains('…'), "{out}");
    }

    #[test]
    fn a_span_over_many_lines_is_underlined_on_its_first_line() {
        let text = format!("a = [\n{}]\nb = 1\n", "  1,\n".repeat(10_000));
        let out = render(&text, 4..text.find("]").unwrap() + 1);
        assert!(out.lines().count() < 12, "{out}");
    }

    #[test]
    fn a_long_message_is_cut_in_the_middle() {
        let message = format!("cannot add `\"{}\"` and `1`", "x".repeat(70_000));
        let out = Diagnostic::error(message).short();
        assert!(out.starts_with("error: cannot add `\"xxx"), "{out}");
        assert!(out.ends_with("xxx\"` and `1`"), "{out}");
        assert!(out.contains(" … ") && out.chars().count() < 500, "{out}");
    }

    #[test]
    fn suggest_stops_comparing_past_its_budget() {
        reset_suggestion_budget();
        let names: Vec<String> = (0..SUGGESTION_BUDGET).map(|i| format!("n{i}")).collect();
        assert_eq!(suggest("n1x", names.iter().map(String::as_str)), Some("n1"));
        // The budget is spent: no more comparisons, even for a near miss.
        assert_eq!(suggest("n1x", ["n1"]), None);
        reset_suggestion_budget();
        assert_eq!(suggest("n1x", ["n1"]), Some("n1"));
    }
}
