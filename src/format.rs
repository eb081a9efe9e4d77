//! Canonical formatting of HCL source, the engine behind `weir fmt`.
//!
//! The formatter follows the rules of `terraform fmt` and, like it, works on
//! tokens and lines rather than re-printing a syntax tree, so that every
//! comment stays where it was written:
//!
//! * A small lexer splits the source into tokens. Quoted strings (including
//!   any `${ }` / `%{ }` sequences nested in them), heredocs (from `<<EOT`
//!   through the closing marker) and comments are single opaque tokens whose
//!   text is never changed.
//! * The tokens are grouped into lines (split on the newlines between
//!   tokens). Each line is re-indented by two spaces per level of bracket
//!   nesting, the whitespace between its tokens is normalised, and the `=`
//!   of consecutive single-line `name = value` lines (attributes and object
//!   items) is aligned, as are the trailing comments of consecutive lines.
//! * Blank lines are squeezed: at most one in a row, none at the start or
//!   end of the file, none right after an opening bracket or right before a
//!   closing one. An empty block, object, list or argument list spread over
//!   several lines is joined: `x {}`, `[]`, `f()`.
//! * Line endings become `\n` (heredoc bodies keep theirs) and the file ends
//!   with exactly one newline; an empty or blank file formats to `""`.
//!
//! The output is checked before it is returned: it must parse to the same
//! structure as the input (compared as `hcl::Body`), and formatting it again
//! must not change it. If either check ever failed (a formatter bug, not
//! expected for any input) the source is returned unchanged rather than
//! risking a change in meaning.

/// Number of passes tried to reach a fixpoint before giving up.
const MAX_PASSES: usize = 4;

/// Deepest nesting of strings, templates and heredocs the lexer follows;
/// anything nested deeper is kept verbatim.
const MAX_LEX_DEPTH: usize = 256;

/// Formats one HCL file's source canonically. Never panics.
///
/// # Errors
///
/// Returns a short message (`line L, column C: ...`) when the source does not
/// parse as an HCL body.
pub fn format_source(src: &str) -> Result<String, String> {
    let expected = parse_structure(src)?;
    Ok(format_checked(src, &expected).unwrap_or_else(|| src.to_owned()))
}

/// Parses `src` into the structure used to check that formatting preserved
/// the meaning: the `hcl-rs` body, which ignores whitespace and comments.
fn parse_structure(src: &str) -> Result<hcl::Body, String> {
    // The parser is third-party code: a panic in it must not take the CLI
    // down with it.
    let parsed =
        std::panic::catch_unwind(|| hcl_edit::parser::parse_body(src).map(hcl::Body::from))
            .map_err(|_| "the HCL parser failed on this input".to_owned())?;
    parsed.map_err(|err| {
        let loc = err.location();
        format!(
            "line {}, column {}: {}",
            loc.line(),
            loc.column(),
            err.message()
        )
    })
}

/// Formats until a fixpoint is reached, checking after every pass that the
/// structure is unchanged. `None` when a check fails or no fixpoint is
/// reached (neither is expected to happen).
fn format_checked(src: &str, expected: &hcl::Body) -> Option<String> {
    let mut current = format_pass(src);
    for _ in 0..MAX_PASSES {
        if parse_structure(&current).ok().as_ref() != Some(expected) {
            return None;
        }
        let next = format_pass(&current);
        if next == current {
            return Some(current);
        }
        current = next;
    }
    None
}

/// One formatting pass, without any checks. Total: never panics.
fn format_pass(src: &str) -> String {
    let tokens = lex(src);
    let lines = split_lines(tokens);
    let lines = collapse_empty_brackets(lines);
    let lines = squeeze_blank_lines(lines);
    let lines = separate_top_level_blocks(lines);
    render(&lines)
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Newline,
    Ident,
    Number,
    /// A whole quoted string template, `"..."`.
    Str,
    /// A whole heredoc, from `<<EOT` through the closing marker.
    Heredoc,
    /// `# ...` or `// ...`, without the line ending.
    LineComment,
    /// `/* ... */`.
    BlockComment,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    Comma,
    Dot,
    Ellipsis,
    DoubleColon,
    Colon,
    Question,
    Equal,
    FatArrow,
    Minus,
    Bang,
    /// Any other operator: `+ * / % == != < > <= >= && ||`.
    Op,
    /// Anything else (not valid HCL outside strings and comments).
    Other,
}

impl Kind {
    fn bracket_change(self) -> i32 {
        match self {
            Kind::OBrace | Kind::OBrack | Kind::OParen => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen => -1,
            _ => 0,
        }
    }

    fn is_open(self) -> bool {
        self.bracket_change() > 0
    }

    fn is_close(self) -> bool {
        self.bracket_change() < 0
    }

    fn is_comment(self) -> bool {
        matches!(self, Kind::LineComment | Kind::BlockComment)
    }
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

impl Token<'_> {
    fn is_multiline(&self) -> bool {
        self.text.contains('\n')
    }
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_id_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

/// Byte-level scanner. Every position it returns is either the end of the
/// input or sits on an ASCII byte (or right after one), so slicing the source
/// there always falls on a character boundary; `text` checks anyway.
struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The byte at `i`, or 0 past the end.
    fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    fn text(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end.min(self.len())).unwrap_or("")
    }

    /// End of a line comment starting at `i`: the line ending (excluded).
    fn line_comment_end(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.len() && self.bytes[j] != b'\n' {
            j += 1;
        }
        if j > i && self.at(j - 1) == b'\r' {
            j - 1
        } else {
            j
        }
    }

    /// End of a block comment starting at `i` (after its `*/`).
    fn block_comment_end(&self, i: usize) -> usize {
        let mut j = i + 2;
        while j < self.len() {
            if self.bytes[j] == b'*' && self.at(j + 1) == b'/' {
                return j + 2;
            }
            j += 1;
        }
        self.len()
    }

    fn number_end(&self, i: usize) -> usize {
        let digits = |mut j: usize| {
            while self.at(j).is_ascii_digit() {
                j += 1;
            }
            j
        };
        let mut j = digits(i);
        if self.at(j) == b'.' && self.at(j + 1).is_ascii_digit() {
            j = digits(j + 1);
        }
        if matches!(self.at(j), b'e' | b'E') {
            let mut k = j + 1;
            if matches!(self.at(k), b'+' | b'-') {
                k += 1;
            }
            if self.at(k).is_ascii_digit() {
                j = digits(k);
            }
        }
        j
    }

    fn ident_end(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.len() && is_id_continue(self.bytes[j]) {
            j += 1;
        }
        j
    }

    /// End of the quoted string template starting at `i` (after its
    /// closing `"`). Mirrors hcl-edit: inside an `%{ if }`/`%{ for }`
    /// directive the nested template ends only at its `%{ end... }`, so a
    /// `"` there is literal text.
    fn string_end(&self, i: usize, depth: usize) -> usize {
        if depth > MAX_LEX_DEPTH {
            return self.len();
        }
        let mut j = i + 1;
        let mut directives: usize = 0;
        while j < self.len() {
            match self.bytes[j] {
                b'"' if directives == 0 => return j + 1,
                b'\\' if directives == 0 => j += 2,
                b'$' | b'%' => match self.template_sequence(j, depth) {
                    Some((next, delta)) => {
                        j = next;
                        directives = directives.saturating_add_signed(delta);
                    }
                    None => j += 1,
                },
                _ => j += 1,
            }
        }
        self.len()
    }

    /// At `i` (a `$` or `%`): an escaped marker (`$${`, `%%{`) or a template
    /// sequence (`${ ... }`, `%{ ... }`). Returns where it ends and how it
    /// changes the directive nesting (+1 for `if`/`for`, -1 for
    /// `endif`/`endfor`).
    fn template_sequence(&self, i: usize, depth: usize) -> Option<(usize, isize)> {
        let marker = self.at(i);
        if self.at(i + 1) == marker && self.at(i + 2) == b'{' {
            return Some((i + 3, 0));
        }
        if self.at(i + 1) != b'{' {
            return None;
        }
        let end = self.sequence_end(i + 2, depth + 1);
        let delta = if marker == b'%' {
            directive_delta(self.text(i + 2, end))
        } else {
            0
        };
        Some((end, delta))
    }

    /// End of the expression inside a template sequence whose `{` ends just
    /// before `i`: after the matching `}`.
    fn sequence_end(&self, i: usize, depth: usize) -> usize {
        if depth > MAX_LEX_DEPTH {
            return self.len();
        }
        let mut braces: usize = 0;
        let mut j = i;
        while j < self.len() {
            match self.bytes[j] {
                b'"' => j = self.string_end(j, depth + 1),
                b'{' => {
                    braces += 1;
                    j += 1;
                }
                b'}' => {
                    if braces == 0 {
                        return j + 1;
                    }
                    braces -= 1;
                    j += 1;
                }
                b'#' => j = self.line_comment_end(j),
                b'/' if self.at(j + 1) == b'/' => j = self.line_comment_end(j),
                b'/' if self.at(j + 1) == b'*' => j = self.block_comment_end(j),
                b'<' => j = self.heredoc_end(j, depth + 1).unwrap_or(j + 1),
                _ => j += 1,
            }
        }
        self.len()
    }

    /// If a heredoc starts at `i` (`<<EOT` or `<<-EOT` followed by a line
    /// ending), where it ends: right after the closing marker.
    fn heredoc_end(&self, i: usize, depth: usize) -> Option<usize> {
        if self.at(i) != b'<' || self.at(i + 1) != b'<' {
            return None;
        }
        let mut j = i + 2;
        if self.at(j) == b'-' {
            j += 1;
        }
        if !is_id_start(self.at(j)) {
            return None;
        }
        let name_end = self.ident_end(j);
        let delim = self.bytes.get(j..name_end)?;
        let body = match (self.at(name_end), self.at(name_end + 1)) {
            (b'\n', _) => name_end + 1,
            (b'\r', b'\n') => name_end + 2,
            _ => return None,
        };
        if depth > MAX_LEX_DEPTH {
            return Some(self.len());
        }
        // The template runs until a line ending followed by optional spaces
        // and the marker, outside any `%{ if }`/`%{ for }` directive.
        let mut p = body;
        let mut directives: usize = 0;
        while p < self.len() {
            if directives == 0
                && let Some(end) = self.heredoc_close_at(p, delim)
            {
                return Some(end);
            }
            match self.bytes[p] {
                b'$' | b'%' => match self.template_sequence(p, depth) {
                    Some((next, delta)) => {
                        p = next;
                        directives = directives.saturating_add_signed(delta);
                    }
                    None => p += 1,
                },
                _ => p += 1,
            }
        }
        // No closing line: the template is empty and the marker follows the
        // header line directly (after optional spaces).
        let mut q = body;
        while matches!(self.at(q), b' ' | b'\t') {
            q += 1;
        }
        if self.bytes.get(q..q + delim.len()) == Some(delim)
            && !is_id_continue(self.at(q + delim.len()))
        {
            return Some(q + delim.len());
        }
        Some(self.len())
    }

    /// A heredoc's closing line at `p`: line ending, spaces, marker, and no
    /// identifier character after it. Returns the end of the marker.
    fn heredoc_close_at(&self, p: usize, delim: &[u8]) -> Option<usize> {
        let mut q = match (self.at(p), self.at(p + 1)) {
            (b'\n', _) => p + 1,
            (b'\r', b'\n') => p + 2,
            _ => return None,
        };
        while matches!(self.at(q), b' ' | b'\t') {
            q += 1;
        }
        let end = q + delim.len();
        (self.bytes.get(q..end) == Some(delim) && !is_id_continue(self.at(end))).then_some(end)
    }
}

/// How a directive sequence (the text after `%{`) changes the directive
/// nesting.
fn directive_delta(inner: &str) -> isize {
    let word: String = inner
        .trim_start_matches('~')
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    match word.as_str() {
        "if" | "for" => 1,
        "endif" | "endfor" => -1,
        _ => 0,
    }
}

/// Splits `src` into tokens. Whitespace other than line endings is dropped.
fn lex(src: &str) -> Vec<Token<'_>> {
    let lx = Lexer::new(src);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < lx.len() {
        let start = i;
        let b = lx.bytes[i];
        let next = lx.at(i + 1);
        let kind = match b {
            b' ' | b'\t' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'\r' if next != b'\n' => {
                i += 1;
                continue;
            }
            b'\r' | b'\n' => {
                i += if b == b'\r' { 2 } else { 1 };
                tokens.push(Token {
                    kind: Kind::Newline,
                    text: "\n",
                });
                continue;
            }
            b'#' => {
                i = lx.line_comment_end(i);
                Kind::LineComment
            }
            b'/' if next == b'/' => {
                i = lx.line_comment_end(i);
                Kind::LineComment
            }
            b'/' if next == b'*' => {
                i = lx.block_comment_end(i);
                Kind::BlockComment
            }
            b'"' => {
                i = lx.string_end(i, 0);
                Kind::Str
            }
            b'<' if next == b'<' => {
                if let Some(end) = lx.heredoc_end(i, 0) {
                    i = end;
                    Kind::Heredoc
                } else {
                    i += 1;
                    Kind::Op
                }
            }
            b'0'..=b'9' => {
                i = lx.number_end(i);
                Kind::Number
            }
            b if is_id_start(b) => {
                i = lx.ident_end(i);
                Kind::Ident
            }
            _ => {
                let (kind, width) = punctuation(b, next, lx.at(i + 2));
                i += width;
                kind
            }
        };
        tokens.push(Token {
            kind,
            text: lx.text(start, i),
        });
    }
    tokens
}

/// Kind and byte width of the punctuation starting with `b`, `next`, `third`.
fn punctuation(b: u8, next: u8, third: u8) -> (Kind, usize) {
    match (b, next) {
        (b'{', _) => (Kind::OBrace, 1),
        (b'}', _) => (Kind::CBrace, 1),
        (b'[', _) => (Kind::OBrack, 1),
        (b']', _) => (Kind::CBrack, 1),
        (b'(', _) => (Kind::OParen, 1),
        (b')', _) => (Kind::CParen, 1),
        (b',', _) => (Kind::Comma, 1),
        (b'.', b'.') if third == b'.' => (Kind::Ellipsis, 3),
        (b'.', _) => (Kind::Dot, 1),
        (b':', b':') => (Kind::DoubleColon, 2),
        (b':', _) => (Kind::Colon, 1),
        (b'?', _) => (Kind::Question, 1),
        (b'=', b'>') => (Kind::FatArrow, 2),
        (b'=' | b'!' | b'<' | b'>', b'=') | (b'&', b'&') | (b'|', b'|') => (Kind::Op, 2),
        (b'=', _) => (Kind::Equal, 1),
        (b'!', _) => (Kind::Bang, 1),
        (b'-', _) => (Kind::Minus, 1),
        (b'+' | b'*' | b'/' | b'%' | b'<' | b'>', _) => (Kind::Op, 1),
        _ => (Kind::Other, 1),
    }
}

// ---------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------

type Line<'a> = Vec<Token<'a>>;

fn split_lines(tokens: Vec<Token<'_>>) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        if token.kind == Kind::Newline {
            lines.push(std::mem::take(&mut current));
        } else {
            current.push(token);
        }
    }
    lines.push(current);
    lines
}

/// Joins a line ending in an opening bracket with a following line that
/// starts with the matching closing bracket when only blank lines separate
/// them: `x {\n\n}` becomes `x {}`, `[\n]` becomes `[]`.
fn collapse_empty_brackets(lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    let mut out: Vec<Line<'_>> = Vec::with_capacity(lines.len());
    let mut pending_blank: Vec<Line<'_>> = Vec::new();
    for line in lines {
        let Some(last) = out.last_mut() else {
            out.push(line);
            continue;
        };
        let closer = match last.last().map(|t| t.kind) {
            Some(Kind::OBrace) => Some(Kind::CBrace),
            Some(Kind::OBrack) => Some(Kind::CBrack),
            Some(Kind::OParen) => Some(Kind::CParen),
            _ => None,
        };
        if closer.is_some() && line.is_empty() {
            pending_blank.push(line);
            continue;
        }
        if closer.is_some() && line.first().map(|t| t.kind) == closer {
            last.extend(line);
            pending_blank.clear();
            continue;
        }
        out.append(&mut pending_blank);
        out.push(line);
    }
    out.append(&mut pending_blank);
    out
}

/// The last token of a line that is not a comment.
fn last_code_token<'l, 'a>(line: &'l Line<'a>) -> Option<&'l Token<'a>> {
    line.iter().rev().find(|t| !t.kind.is_comment())
}

/// At most one blank line in a row; none at the start or end, after a line
/// ending in an opening bracket, or before a line starting with a closing one.
fn squeeze_blank_lines(lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    let mut out: Vec<Line<'_>> = Vec::with_capacity(lines.len());
    for line in lines {
        if line.is_empty() {
            let keep = out.last().is_some_and(|prev| {
                !prev.is_empty() && !last_code_token(prev).is_some_and(|t| t.kind.is_open())
            });
            if keep {
                out.push(line);
            }
        } else {
            if line.first().is_some_and(|t| t.kind.is_close()) {
                while out.last().is_some_and(Vec::is_empty) {
                    out.pop();
                }
            }
            out.push(line);
        }
    }
    while out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

/// Whether a line opens a block: a name, labels, then `{` before any `=` (`pipeline "x" {`,
/// `locals {`), as opposed to an attribute whose value is an object (`x = {`).
fn opens_block(line: &Line<'_>) -> bool {
    line.first().is_some_and(|t| t.kind == Kind::Ident)
        && line
            .iter()
            .find(|t| matches!(t.kind, Kind::OBrace | Kind::Equal))
            .is_some_and(|t| t.kind == Kind::OBrace)
}

/// One blank line between two top-level blocks that follow each other directly: after the
/// first block's closing line, before any comments that lead into the second. (Readers skim a
/// configuration block by block; `terraform fmt` leaves this to the author, weir does not.)
fn separate_top_level_blocks(lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    let mut out: Vec<Line<'_>> = Vec::with_capacity(lines.len() + 16);
    let mut depth: i64 = 0;
    // Index in `out` of the line that closed the last top-level block, while only comment
    // lines have followed it.
    let mut block_end: Option<usize> = None;
    // Whether the line being looked at starts inside a top-level block.
    let mut in_block = false;
    for line in lines {
        let at_top = depth == 0;
        if at_top && !line.is_empty() {
            if opens_block(&line) {
                if let Some(end) = block_end.take() {
                    out.insert(end + 1, Vec::new());
                }
                in_block = true;
            } else if !line.iter().all(|t| t.kind.is_comment()) {
                block_end = None;
            }
        } else if line.is_empty() {
            block_end = None;
        }
        depth += line
            .iter()
            .map(|t| i64::from(t.kind.bracket_change()))
            .sum::<i64>();
        depth = depth.max(0);
        out.push(line);
        if in_block && depth == 0 {
            in_block = false;
            block_end = Some(out.len() - 1);
        }
    }
    out
}

/// Indentation level of each line.
///
/// Every line that leaves brackets open indents the following lines by one
/// level, however many brackets it opened (`foo({` is one level). A line
/// starting with closing brackets is dedented first, so `}` lines up with
/// the line that opened the block; when it closes only some of the brackets
/// that such a line opened (`}, {` or `} if x]` after `[{`), it lines up with
/// that line too, and brackets it opens again belong to the same level.
fn indent_levels(lines: &[Line<'_>]) -> Vec<usize> {
    /// Closes `count` brackets; true when the last one left the innermost
    /// level partly open.
    fn close(stack: &mut Vec<usize>, mut count: usize) -> bool {
        let mut partial = false;
        while count > 0 {
            let Some(top) = stack.last_mut() else { break };
            if *top > count {
                *top -= count;
                count = 0;
                partial = true;
            } else {
                count -= *top;
                stack.pop();
            }
        }
        partial
    }

    let mut stack: Vec<usize> = Vec::new();
    let mut levels = Vec::with_capacity(lines.len());
    for line in lines {
        let leading = line.iter().take_while(|t| t.kind.is_close()).count();
        let partial = leading > 0 && close(&mut stack, leading);
        levels.push(stack.len().saturating_sub(usize::from(partial)));
        let net: i64 = line[leading..]
            .iter()
            .map(|t| i64::from(t.kind.bracket_change()))
            .sum();
        let net_abs = usize::try_from(net.unsigned_abs()).unwrap_or(usize::MAX);
        if net > 0 {
            match stack.last_mut() {
                Some(top) if partial => *top += net_abs,
                _ => stack.push(net_abs),
            }
        } else if net < 0 {
            close(&mut stack, net_abs);
        }
    }
    levels
}

// ---------------------------------------------------------------------------
// Spacing
// ---------------------------------------------------------------------------

/// Whether a space goes between `subject` and the `after` token that follows
/// it on the same line; `before` precedes `subject`. These are the rules of
/// hclwrite (`terraform fmt`), with strings and heredocs as whole tokens.
fn space_between(before: Option<&Token<'_>>, subject: &Token<'_>, after: &Token<'_>) -> bool {
    use Kind::{
        Bang, BlockComment, CBrace, Colon, Comma, Dot, DoubleColon, Ellipsis, Equal, FatArrow,
        Ident, LineComment, Minus, Number, OBrace, OBrack, OParen, Op, Question, Str,
    };
    let (s, a) = (subject.kind, after.kind);
    if a == LineComment {
        return true;
    }
    if s == BlockComment || a == BlockComment {
        return !(s.is_open() || a.is_close() || a == Comma);
    }
    if s == Ident
        && matches!(subject.text, "in" | "if")
        && matches!(a, OParen | OBrack)
        && !before.is_some_and(|b| matches!(b.kind, Dot | DoubleColon))
    {
        // keywords of a `for` expression: `in [a, b]`, `if (x > 1)`
        return true;
    }
    if s == Ident && a == OParen {
        return false; // function call
    }
    if (s == Ident && a == DoubleColon) || (s == DoubleColon && a == Ident) {
        return false; // provider::name::function
    }
    if s == Dot || a == Dot {
        return false;
    }
    if a == Comma || a == Ellipsis {
        return false;
    }
    if s == Comma {
        return true;
    }
    if a == OBrack && (matches!(s, Ident | Number | Str) || s.is_close()) {
        return false; // index
    }
    if s == Bang {
        return false;
    }
    if s == Minus {
        // negation takes no space; subtraction does
        return !before.is_none_or(|b| {
            matches!(
                b.kind,
                OBrace
                    | OBrack
                    | OParen
                    | Equal
                    | Colon
                    | Comma
                    | Question
                    | FatArrow
                    | Op
                    | Minus
                    | Bang
            )
        });
    }
    if s == OBrace || a == CBrace {
        return !(s == OBrace && a == CBrace);
    }
    if s.is_open() || a.is_close() {
        return false;
    }
    true
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// The text a token is printed as: comments lose trailing whitespace,
/// everything else is verbatim.
fn token_text(token: &Token<'_>) -> String {
    match token.kind {
        Kind::LineComment => token.text.trim_end().to_owned(),
        Kind::BlockComment => token
            .text
            .split('\n')
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => token.text.to_owned(),
    }
}

/// Prints `tokens[range]` with canonical spacing; `tokens` gives the context.
fn join_tokens(tokens: &[Token<'_>], start: usize, end: usize) -> String {
    let mut out = String::new();
    for k in start..end {
        if k > start {
            let before = if k >= 2 { tokens.get(k - 2) } else { None };
            if space_between(before, &tokens[k - 1], &tokens[k]) {
                out.push(' ');
            }
        }
        out.push_str(&token_text(&tokens[k]));
    }
    out
}

/// Display width of a single-line text.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// One non-blank line split into the cells that get aligned.
struct Cells {
    indent: usize,
    /// Everything before the `=` (or the whole code, without an `=` cell).
    lead: String,
    /// From the `=` of a single-line `name = value` on.
    assign: Option<String>,
    /// A trailing comment.
    comment: Option<String>,
    /// The lead contains no line break (so its width is meaningful).
    lead_single: bool,
    /// The whole line contains no line break.
    single: bool,
}

fn cells(line: &Line<'_>, indent: usize) -> Cells {
    let single = !line.iter().any(Token::is_multiline);
    let mut code_end = line.len();
    let mut comment = None;
    if single
        && line.len() > 1
        && let Some(last) = line.last().filter(|t| t.kind.is_comment())
    {
        comment = Some(token_text(last));
        code_end -= 1;
    }
    let code = &line[..code_end];
    let equal = code
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, t)| t.kind == Kind::Equal)
        .map(|(k, _)| k);
    let split = equal.filter(|&k| {
        code[k..]
            .iter()
            .map(|t| t.kind.bracket_change())
            .sum::<i32>()
            == 0
            && !code[..k].iter().any(Token::is_multiline)
    });
    let lead_end = split.unwrap_or(code_end);
    let lead = join_tokens(line, 0, lead_end);
    let assign = split.map(|k| join_tokens(line, k, code_end));
    Cells {
        indent,
        lead_single: !line[..lead_end].iter().any(Token::is_multiline),
        lead,
        assign,
        comment,
        single,
    }
}

fn render(lines: &[Line<'_>]) -> String {
    let levels = indent_levels(lines);
    let cells: Vec<Option<Cells>> = lines
        .iter()
        .zip(&levels)
        .map(|(line, &level)| (!line.is_empty()).then(|| cells(line, level * 2)))
        .collect();

    // Align the `=` of runs of consecutive lines with an `=` cell. A line
    // spanning several lines may end a run but not continue it.
    let mut assign_pad = vec![1usize; cells.len()];
    let mut run: Vec<usize> = Vec::new();
    let flush_assign = |run: &mut Vec<usize>, pad: &mut Vec<usize>| {
        let lead_width = |k: &usize| cells[*k].as_ref().map_or(0, |c| c.indent + width(&c.lead));
        let max = run.iter().map(lead_width).max().unwrap_or(0);
        for k in run.drain(..) {
            pad[k] = max - lead_width(&k) + 1;
        }
    };
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Some(c) if c.assign.is_some() && c.lead_single => {
                run.push(k);
                if !c.single {
                    flush_assign(&mut run, &mut assign_pad);
                }
            }
            _ => flush_assign(&mut run, &mut assign_pad),
        }
    }
    flush_assign(&mut run, &mut assign_pad);

    // Then align the trailing comments of runs of consecutive lines.
    let code_width = |k: usize| {
        cells[k].as_ref().map_or(0, |c| {
            c.indent + width(&c.lead) + c.assign.as_ref().map_or(0, |a| assign_pad[k] + width(a))
        })
    };
    let mut comment_pad = vec![1usize; cells.len()];
    let mut run: Vec<usize> = Vec::new();
    let flush_comment = |run: &mut Vec<usize>, pad: &mut Vec<usize>| {
        let max = run.iter().map(|&k| code_width(k)).max().unwrap_or(0);
        for k in run.drain(..) {
            pad[k] = max - code_width(k) + 1;
        }
    };
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Some(c) if c.comment.is_some() && c.single => run.push(k),
            _ => flush_comment(&mut run, &mut comment_pad),
        }
    }
    flush_comment(&mut run, &mut comment_pad);

    let mut out = String::new();
    for (k, cell) in cells.iter().enumerate() {
        if let Some(c) = cell {
            out.extend(std::iter::repeat_n(' ', c.indent));
            out.push_str(&c.lead);
            if let Some(assign) = &c.assign {
                out.extend(std::iter::repeat_n(' ', assign_pad[k]));
                out.push_str(assign);
            }
            if let Some(comment) = &c.comment {
                out.extend(std::iter::repeat_n(' ', comment_pad[k]));
                out.push_str(comment);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    const SAMPLE: &str = r#"pipeline "orders" {
  description = "Daily orders"
  variables = { source = "shopify" }
  block "load" {
    type = "data_loader"
    source   = "blocks/load_orders.py" # loader
  }
}
"#;

    fn fmt(src: &str) -> String {
        match format_source(src) {
            Ok(out) => out,
            Err(err) => panic!("format failed: {err}\n{src}"),
        }
    }

    /// Formats with a single unchecked pass and asserts that the pass alone
    /// is correct (same structure, idempotent), so the safety net in
    /// `format_source` is not what makes the tests pass.
    fn fmt_pass(src: &str) -> String {
        let out = format_pass(src);
        let before = hcl::from_str::<hcl::Body>(src).expect("input parses");
        let after = hcl::from_str::<hcl::Body>(&out)
            .unwrap_or_else(|err| panic!("output does not parse: {err}\n{out}"));
        assert_eq!(before, after, "meaning changed:\n{src}\n---\n{out}");
        assert_eq!(format_pass(&out), out, "not idempotent:\n{out}");
        assert_eq!(fmt(src), out);
        out
    }

    fn assert_formats(src: &str, expected: &str) {
        assert_eq!(fmt_pass(src), expected, "input:\n{src}");
        assert_eq!(
            fmt_pass(expected),
            expected,
            "expected output is not stable"
        );
    }

    #[test]
    fn realistic_sample() {
        assert_formats(
            SAMPLE,
            r#"pipeline "orders" {
  description = "Daily orders"
  variables   = { source = "shopify" }
  block "load" {
    type   = "data_loader"
    source = "blocks/load_orders.py" # loader
  }
}
"#,
        );
    }

    #[test]
    fn aligns_runs_of_attributes() {
        assert_formats(
            "a = 1\nlong_name = 2\nbb=3\n\nc = 4\nccc = 5\nblk {}\nd = 6\ndddd = 7\n# note\ne = 8\neeee = 9\nf = [\n  1,\n]\nff = 2\n",
            "a         = 1\nlong_name = 2\nbb        = 3\n\nc   = 4\nccc = 5\nblk {}\nd    = 6\ndddd = 7\n# note\ne    = 8\neeee = 9\nf = [\n  1,\n]\nff = 2\n",
        );
    }

    #[test]
    fn nested_blocks_and_labels() {
        assert_formats(
            "outer   \"a\"    \"b\"{\n\t\tinner   lbl {\nx=1\n    deeper {\n        y  =  \"z\"\n    }\n  }\n\n\n\n  empty   {\n  }\n   one { a = 1 }\n}\n",
            "outer \"a\" \"b\" {\n  inner lbl {\n    x = 1\n    deeper {\n      y = \"z\"\n    }\n  }\n\n  empty {}\n  one { a = 1 }\n}\n",
        );
    }

    #[test]
    fn blank_lines() {
        assert_formats(
            "\n\n\n# top\n\n\n\nb {\n\n\n  a = 1\n\n\n\n  c = 2\n\n}\n\n\n\nd = 3\n\n\n",
            "# top\n\nb {\n  a = 1\n\n  c = 2\n}\n\nd = 3\n",
        );
        assert_formats(
            "x {\n\n}\ny = {\n}\nz = [{\n\n}]\nw = [\n]\nv = f(\n)\n",
            "x {}\ny = {}\nz = [{}]\nw = []\nv = f()\n",
        );
    }

    #[test]
    fn top_level_blocks_are_separated_by_a_blank_line() {
        assert_formats(
            "a {\n  x = 1\n}\nb \"l\" {\n  y = {\n  }\n}\n# about c\nc {}\nd {}\nz = 1\ne {\n}\n",
            "a {\n  x = 1\n}\n\nb \"l\" {\n  y = {}\n}\n\n# about c\nc {}\n\nd {}\nz = 1\ne {}\n",
        );
        // Blocks nested in a block are left as the author wrote them.
        assert_formats(
            "p {\n  block \"a\" {}\n  block \"b\" {}\n}\n",
            "p {\n  block \"a\" {}\n  block \"b\" {}\n}\n",
        );
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n  \n\t\n"), "");
        assert_eq!(fmt("# only\n"), "# only\n");
        assert_eq!(fmt("a = 1"), "a = 1\n");
    }

    #[test]
    fn comments_are_kept_and_reindented() {
        assert_formats(
            "# header\n// slashes\n/* block */\nblk {\n        # inside\n  a = 1 # one\n  bbb = 2    // two\n     /* multi\n        line   \n   */\n  c = 3 /* inline */\n}\n",
            "# header\n// slashes\n/* block */\nblk {\n  # inside\n  a   = 1 # one\n  bbb = 2 // two\n  /* multi\n        line\n   */\n  c = 3 /* inline */\n}\n",
        );
        assert_formats(
            "x = [ # list\n  1, # first\n    2,\n  # between\n  3\n]\n",
            "x = [ # list\n  1,  # first\n  2,\n  # between\n  3\n]\n",
        );
    }

    #[test]
    fn trailing_comments_align_like_terraform() {
        assert_formats(
            "a = 1 # x\nbbbb = \"two\" # y\nc = true     # z\n",
            "a    = 1     # x\nbbbb = \"two\" # y\nc    = true  # z\n",
        );
    }

    #[test]
    fn heredocs_are_untouched() {
        let src = "blk {\n      script = <<EOT\n   keep   this  \n{\n  a=1   \n}\n${ var.x }  %{ if true }\"EOT\"%{ endif }\n  EOTX\nEOT\n        other = <<-EOF\n        indented = 1\n          more\n        EOF\n  after=1\n}\n";
        let out = fmt_pass(src);
        assert_eq!(
            out,
            "blk {\n  script = <<EOT\n   keep   this  \n{\n  a=1   \n}\n${ var.x }  %{ if true }\"EOT\"%{ endif }\n  EOTX\nEOT\n  other = <<-EOF\n        indented = 1\n          more\n        EOF\n  after = 1\n}\n"
        );
    }

    #[test]
    fn heredoc_edge_cases() {
        // empty heredoc, marker inside a directive, heredoc as an argument
        fmt_pass("a = <<EOT\nEOT\n");
        fmt_pass("a = <<EOT\n%{ if true }\nEOT\n%{ endif }\nEOT\n");
        fmt_pass("a = join(\"\", [<<EOT\nx\nEOT\n  , \"y\"])\n");
        fmt_pass("a = <<EOT\r\nwindows\r\nEOT\r\nb = 1\r\n");
        fmt_pass("x = \"${<<EOT\nin template\nEOT\n}\"\n");
    }

    #[test]
    fn lexer_edge_cases() {
        for src in [
            "a = \"%{ if true }\"quoted\"%{ endif }\"\n",
            "a = \"%{~ for x in [1] ~}${x}%{~ endfor ~}\"\n",
            "a = \"${ x # comment }\n}\"\n",
            "a = \"${ x /* } */ }\"\n",
            "a = <<EOT\nEOT",
            "a = <<EOT\n${ \"}\" }\n${ <<INNER\nEOT\nINNER\n}\nEOT\n",
            "a = <<EOT\nx\nEOT # after\nb = 1\n",
            "a = <<EOT\nEOT-not-the-end\nEOT\n",
            "a = 1.5e-3 + a.0.1 - 2E+4\n",
            "a = provider :: ns :: fn ( 1 )\n",
            "ünï = \"x\"\nblk /* c */ \"a\" /* d */ {\n}\n",
            "a = -  -1\nb = !  !true\nc = 1 -  -  1\n",
            "a = [\n  1\n  , 2\n]\n",
            "a = {\n  \"k\" : 1,\n  (var.k) = 2\n  k3 = 3\n}\n",
            "a = x ? [for k in y : k] : { for k, v in z : k => v... }\n",
            "a = f(\n  x...\n)\n",
            "blk {\n  a = 1 // one\n  # two\n  b = 2 /* three */\n}\n",
            "a = \"tab\\there\" # \"quoted in comment\" ${x}\n",
            "# only a comment without newline",
            "a = in.if.for\nb = [in, if]\nc = in(1) + if [0]\n",
        ] {
            fmt_pass(src);
        }
    }

    #[test]
    fn strings_and_templates_are_untouched() {
        assert_formats(
            "a=\"  spaced   ${ var.x }  \"\nb   =  \"%{ for x in y }${x},%{ endfor }\"\nc = \"esc \\\" $${no} %%{no} # not a comment\"\nd = \"${ { a = \"}\" }[\"a\"] }\"\n",
            "a = \"  spaced   ${ var.x }  \"\nb = \"%{ for x in y }${x},%{ endfor }\"\nc = \"esc \\\" $${no} %%{no} # not a comment\"\nd = \"${ { a = \"}\" }[\"a\"] }\"\n",
        );
    }

    #[test]
    fn multiline_lists_and_objects() {
        assert_formats(
            "x = [\n\"a\",\n      \"b\",\n   ]\ny = {\nname = \"n\"\n   long_key = 2\n  \"quoted\" = 3\n\n  nested = {\n  k = [1,2 ,3]\n  }\n}\nz = foo(\n1,\n  bar({\n    a = 1\n  }),\n)\n",
            "x = [\n  \"a\",\n  \"b\",\n]\ny = {\n  name     = \"n\"\n  long_key = 2\n  \"quoted\" = 3\n\n  nested = {\n    k = [1, 2, 3]\n  }\n}\nz = foo(\n  1,\n  bar({\n    a = 1\n  }),\n)\n",
        );
        assert_formats(
            "l = [\n{\na = 1\n}, {\nb = 2\n},\n]\n",
            "l = [\n  {\n    a = 1\n  }, {\n    b = 2\n  },\n]\n",
        );
        assert_formats(
            "l = [{\na = 1\n}, {\nb = 2\n}]\nm = [for x in y : {\nk = x\n} if x != null]\nn = f(a, [\n1,\n], b)\n",
            "l = [{\n  a = 1\n}, {\n  b = 2\n}]\nm = [for x in y : {\n  k = x\n} if x != null]\nn = f(a, [\n  1,\n], b)\n",
        );
    }

    #[test]
    fn expression_spacing() {
        assert_formats(
            "a = var.x.y[0] [1]\nb=-1\nc = 1-2\nd = !true\ne = f( 1 ,2 ,x... )\nf = { for k , v in var.m : k=>v if v!=null }\ng = a ? b : - c\nh = provider::p::fn( 1 )\ni = a.*.b\nj = a[*].b\nk = {a=1, b=2}\nl = (1 + 2) * 3 % 4 / 5\nm = x >= 1 && y <= 2 || z == 3\nn = [for x in [1] : x]\no = 1.5e+3\np = foo-bar\n",
            "a = var.x.y[0][1]\nb = -1\nc = 1 - 2\nd = !true\ne = f(1, 2, x...)\nf = { for k, v in var.m : k => v if v != null }\ng = a ? b : -c\nh = provider::p::fn(1)\ni = a.*.b\nj = a[*].b\nk = { a = 1, b = 2 }\nl = (1 + 2) * 3 % 4 / 5\nm = x >= 1 && y <= 2 || z == 3\nn = [for x in [1] : x]\no = 1.5e+3\np = foo-bar\n",
        );
    }

    #[test]
    fn unicode_is_handled() {
        assert_formats(
            "名前 = \"値\"\na = \"ü\" # ö\n",
            "名前 = \"値\"\na  = \"ü\" # ö\n",
        );
    }

    #[test]
    fn parse_errors_are_reported() {
        let err = format_source("a = \nb {").unwrap_err();
        assert!(err.starts_with("line "), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(format_source("x = \"unterminated\n").is_err());
        assert!(format_source("}").is_err());
    }

    #[test]
    fn idempotent_and_meaning_preserving_on_samples() {
        for src in [SAMPLE, "a=1\n", "x {}\n", "# c\n"] {
            let once = fmt_pass(src);
            assert_eq!(fmt(&once), once);
        }
    }

    /// Fragments that often combine into valid HCL.
    fn hclish() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "a",
            "b_c",
            "d-e",
            "x",
            " ",
            "  ",
            "\t",
            "\n",
            "\n\n",
            "=",
            " = ",
            "{",
            "}",
            "[",
            "]",
            "(",
            ")",
            ",",
            ".",
            "1",
            "2.5",
            "-",
            "!",
            "+",
            "?",
            ":",
            "==",
            "=>",
            "...",
            "\"s\"",
            "\"${a}\"",
            "\"%{ if a }x%{ endif }\"",
            "# c\n",
            "// c\n",
            "/* c */",
            "/*\n*/",
            "<<EOT\nbody  \nEOT\n",
            "<<-EOT\n  i\n  EOT\n",
            "for",
            " in ",
            "if",
            "blk {\n",
            "}\n",
            "k = v\n",
            "lbl \"l\" {\n",
            "f(",
            "[for x in y : x]",
            "é",
            "\r\n",
        ]);
        prop::collection::vec(atoms, 0..40).prop_map(|parts| parts.concat())
    }

    fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
        prop::sample::select(items).prop_map(str::to_owned)
    }

    /// Optional spaces, as allowed between tokens anywhere.
    fn sp() -> impl Strategy<Value = String> + Clone {
        pick(&["", "", " ", "  ", "\t", " /* c */ "])
    }

    /// Whitespace allowed inside brackets: may include newlines and comments.
    fn ws() -> impl Strategy<Value = String> + Clone {
        pick(&[
            "",
            " ",
            "\n",
            "\n  ",
            " \n\n\n      ",
            "\t",
            " # c\n",
            " // c\n",
            "\n/* c */\n",
        ])
    }

    fn ident() -> impl Strategy<Value = String> + Clone {
        "v[a-z0-9_]{0,4}"
    }

    /// Random but valid HCL expressions with messy whitespace.
    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            pick(&[
                "1",
                "2.5",
                "1e3",
                "-7",
                "- 7",
                "true",
                "null",
                "var.x",
                "a.b[0]",
                "a[*].b",
                "a.*.c",
                "\"s\"",
                "\"a ${x} b\"",
                "\"%{ if c }y%{ else }n%{ endif }\"",
                "\"esc \\\" \\n $${lit} %%{lit}\"",
                "\"${ {a = \"}\"}.a }\"",
                "\"\"",
                "<<EOT\n  body ${x}  \n{\n  EOT2\nEOT\n",
                "<<-EOT\n    in\n  EOT\n",
                "provider::p::f(1)",
                "f()",
            ]),
            ident(),
        ];
        leaf.prop_recursive(4, 48, 4, |inner| {
            let item = (inner.clone(), ws(), ws()).prop_map(|(e, a, b)| format!("{a}{e}{b}"));
            prop_oneof![
                (
                    prop::collection::vec(item.clone(), 0..4),
                    any::<bool>(),
                    ws()
                )
                    .prop_map(|(items, trailing, w)| {
                        let comma = if trailing && !items.is_empty() {
                            ","
                        } else {
                            ""
                        };
                        format!("[{}{comma}{w}]", items.join(","))
                    }),
                (
                    prop::collection::vec((ident(), sp(), sp(), inner.clone()), 0..4),
                    any::<bool>(),
                    ws(),
                )
                    .prop_map(|(items, commas, w)| {
                        let body: Vec<String> = items
                            .iter()
                            .enumerate()
                            .map(|(k, (key, a, b, v))| format!("{key}_{k}{a}={b}{v}"))
                            .collect();
                        let sep = if commas { ", " } else { "\n" };
                        format!("{{{w}{}\n}}", body.join(sep))
                    }),
                (
                    ident(),
                    prop::collection::vec(item.clone(), 0..3),
                    any::<bool>()
                )
                    .prop_map(|(f, args, spread)| {
                        let dots = if spread && !args.is_empty() {
                            "..."
                        } else {
                            ""
                        };
                        format!("{f}({}{dots})", args.join(","))
                    }),
                (
                    inner.clone(),
                    sp(),
                    pick(&["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||"]),
                    sp(),
                    inner.clone()
                )
                    .prop_map(|(a, s1, op, s2, b)| format!("{a}{s1}{op}{s2}{b}")),
                (pick(&["-", "!"]), sp(), inner.clone())
                    .prop_map(|(op, s, e)| format!("{op}{s}{e}")),
                (inner.clone(), sp(), inner.clone(), sp(), inner.clone())
                    .prop_map(|(c, s1, a, s2, b)| format!("{c}{s1}?{s2}{a}{s1}:{s2}{b}")),
                (ws(), inner.clone(), ws()).prop_map(|(a, e, b)| format!("({a}{e}{b})")),
                (ident(), inner.clone(), sp(), inner.clone(), inner.clone()).prop_map(
                    |(x, list, s, value, cond)| format!(
                        "[for {x} in {list}{s}:{s}{value} if {cond}]"
                    )
                ),
                (inner.clone(), sp(), inner.clone())
                    .prop_map(|(m, s, v)| format!("{{for k, v in {m}{s}:{s}k=>{v}}}")),
                (
                    inner.clone(),
                    pick(&["[0]", " [1]", ".x", ". y", "[*]", ".*"])
                )
                    .prop_map(|(e, t)| format!("({e}){t}")),
            ]
        })
    }

    /// Random but valid HCL bodies with messy whitespace and comments.
    fn body() -> impl Strategy<Value = String> {
        let indent = pick(&["", "", "  ", "\t", "      "]);
        let gap = pick(&["\n", "\n", "\n", "\n\n", "\n\n\n", "  \n \n"]);
        let comment = pick(&["", "", "", " # note", "  // note", " /* c */"]);
        let attr = (indent.clone(), ident(), sp(), sp(), expr(), comment.clone())
            .prop_map(|(i, name, a, b, e, c)| vec![format!("{i}{name}{a}={b}{e}{c}")]);
        let line_comment = (
            indent.clone(),
            pick(&["# hello", "// world", "/* a */", "/*\n  b \n*/"]),
        )
            .prop_map(|(i, c)| vec![format!("{i}{c}")]);
        let leaf = prop_oneof![4 => attr, 1 => line_comment];
        let items = leaf.prop_recursive(3, 24, 5, move |inner| {
            let block = (
                ident(),
                prop::collection::vec(pick(&["\"l\"", "lbl", "\"x y\""]), 0..3),
                sp(),
                prop::collection::vec(inner, 0..4),
                indent.clone(),
                comment.clone(),
            )
                .prop_map(|(name, labels, s, children, i, c)| {
                    let mut lines = vec![format!("{name} {}{s}{{{c}", labels.join(" "))];
                    lines.extend(children.into_iter().flatten());
                    lines.push(format!("{i}}}"));
                    lines
                });
            let one_line = (ident(), ident(), expr()).prop_map(|(name, key, value)| {
                let value = if value.contains('\n') {
                    "1".to_owned()
                } else {
                    value
                };
                vec![
                    format!("{name} {{ {key} = {value} }}"),
                    format!("{name}_e {{}}"),
                ]
            });
            prop_oneof![3 => block, 1 => one_line]
        });
        (prop::collection::vec(items, 0..5), gap).prop_map(|(items, gap)| {
            let mut seen = std::collections::HashSet::new();
            let mut out = String::new();
            for (k, line) in items.into_iter().flatten().enumerate() {
                // keep attribute names unique within the file
                let line = match line.split_once('=') {
                    Some((key, rest))
                        if !key.contains(['{', '"', '#', '/'])
                            && !seen.insert(key.trim().to_owned()) =>
                    {
                        format!("{}_{k}={rest}", key.trim_end())
                    }
                    _ => line,
                };
                out.push_str(&line);
                out.push_str(if k % 3 == 0 { &gap } else { "\n" });
            }
            out
        })
    }

    fn check_any(src: &str) {
        // must never panic
        let Ok(out) = format_source(src) else { return };
        assert_eq!(
            format_source(&out).as_deref(),
            Ok(out.as_str()),
            "not idempotent"
        );
        let before = hcl::from_str::<hcl::Body>(src).expect("input parses");
        let after = hcl::from_str::<hcl::Body>(&out).expect("output parses");
        assert_eq!(before, after);
        // the unchecked pass alone must already be right
        let pass = format_pass(src);
        assert_eq!(pass, out, "safety net used for:\n{src:?}");
    }

    proptest! {
        // No regression files: a failure prints its minimal input instead.
        #![proptest_config(ProptestConfig {
            cases: 500,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_strings_never_panic(src in any::<String>()) {
            check_any(&src);
            let _ = format_pass(&src);
        }

        #[test]
        fn hcl_like_input(src in hclish()) {
            check_any(&src);
        }

        #[test]
        fn generated_hcl(src in body(), crlf in any::<bool>()) {
            let src = if crlf { src.replace('\n', "\r\n") } else { src };
            check_any(&src);
        }

        #[test]
        fn structured_input(
            names in prop::collection::vec("[a-z][a-z0-9_]{0,8}", 1..6),
            values in prop::collection::vec(prop::sample::select(vec![
                "1", "\"s\"", "[1, 2]", "{ a = 1 }", "true", "var.x", "[\n1,\n2\n]", "{\nk = 1\nlong = 2\n}",
                "<<EOT\n  x\nEOT", "f(1)", "-3",
            ]), 1..6),
            spaces in prop::collection::vec("[ \t]{0,3}", 12),
            comment in any::<bool>(),
        ) {
            let mut src = String::from("blk \"label\" {\n");
            for (k, (name, value)) in names.iter().zip(&values).enumerate() {
                let sp = |n: usize| spaces[(k + n) % spaces.len()].as_str();
                let _ = write!(src, "{}{name}_{k}{}={}{value}", sp(0), sp(1), sp(2));
                if comment {
                    src.push_str(" # note");
                }
                src.push('\n');
            }
            src.push_str("}\n");
            let out = fmt_pass(&src);
            prop_assert!(out.starts_with("blk \"label\" {\n"), "header changed");
            prop_assert!(!out.lines().any(|l| l.ends_with(' ')), "trailing whitespace");
        }
    }
}
