//! The plan as human text, in the style of `terraform plan`.
//!
//! Changes are laid out as [`Lines`] (a column, an action mark and the text) so the same layout
//! can be printed for a terminal ([`Lines::to_text`], marks coloured) or inside a Markdown
//! ```` ```diff ```` fence ([`Lines::to_diff`], marks moved to the first column so GitHub
//! colours them).
//!
//! Attribute values are diffed structurally: objects by key, arrays of objects that carry a
//! `uuid` or `name` by that key (so inserting or moving one Mage block shows only that block),
//! other arrays by a longest-common-subsequence diff, and multi-line strings (block code, YAML)
//! as unified diffs. Only what changed is shown; the rest is counted in
//! `# (N unchanged attributes hidden)`. Display always goes through the masked copy of a value;
//! the unmasked one is only compared, never printed.

use super::plan_redactor;
use crate::plan::sensitive::{is_sensitive, mask};
use crate::plan::{Action, Change, Drift, OutputChange, Plan};
use anstyle::{AnsiColor, Style};
use serde_json::{Map, Value};
use similar::{Algorithm, ChangeTag, DiffOp, TextDiff, capture_diff_slices};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use weir_provider_sdk::AttrPath;

/// Renders the whole plan. With `color`, action marks, headers and warnings carry ANSI styles.
pub fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let bold = |s: &str| paint(color, Style::new().bold(), s);

    if !plan.drift.is_empty() {
        out.push_str(&bold("Objects changed outside weir"));
        out.push_str("\n\nweir detected the following changes made outside of weir since the last apply:\n\n");
        for d in &plan.drift {
            out.push_str(&drift_lines(d).to_text(color));
            out.push('\n');
        }
        out.push_str(
            "Unless you have made equivalent changes to your configuration, the actions below\n\
             may undo or respond to these changes.\n\n",
        );
        out.push_str(&"─".repeat(77));
        out.push_str("\n\n");
    }

    let changes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    if !changes.is_empty() {
        out.push_str("Resource actions are indicated with the following symbols:\n");
        let mut legend = Lines::default();
        for (action, what) in [
            (Action::Create, "create"),
            (Action::Update, "update in place"),
            (Action::Replace, "destroy and then create replacement"),
            (Action::Delete, "destroy"),
        ] {
            if changes.iter().any(|c| c.action == action) {
                legend.at(-1, Mark::for_action(action), what);
            }
        }
        out.push_str(&legend.to_text(color));
        out.push('\n');
        out.push_str(&bold(if plan.destroy {
            "weir will destroy all resources, performing the following actions:"
        } else {
            "weir will perform the following actions:"
        }));
        out.push_str("\n\n");
        for c in &changes {
            out.push_str(&change_lines(c).to_text(color));
            out.push('\n');
        }
    }

    if !plan.notes.is_empty() {
        out.push_str(&bold("Notes:"));
        out.push('\n');
        for note in &plan.notes {
            push_indented(&mut out, "  - ", "    ", note);
        }
        out.push('\n');
    }

    if plan.outputs.iter().any(|o| o.action.is_change()) {
        out.push_str(&bold("Changes to Outputs:"));
        out.push('\n');
        out.push_str(&output_lines(&plan.outputs).to_text(color));
        out.push('\n');
    }

    if plan.has_changes() {
        let summary = plan.summary().to_string();
        match summary.strip_prefix("Plan:") {
            Some(rest) if color => {
                out.push_str(&bold("Plan:"));
                out.push_str(rest);
            }
            _ => out.push_str(&summary),
        }
    } else {
        out.push_str(&bold("No changes."));
        out.push_str(" Your deployment matches the configuration.");
    }
    out.push('\n');
    plan_redactor(plan).redact(&out)
}

/// The plan in brief, for very large plans: the summary, then one line per changed address
/// grouped by action (drift first, as in the whole plan), without attribute diffs.
pub fn render_text_compact(plan: &Plan, color: bool) -> String {
    let bold = |s: &str| paint(color, Style::new().bold(), s);
    let mut out = String::new();
    if plan.has_changes() {
        out.push_str(&bold(&plan.summary().to_string()));
    } else {
        out.push_str(&bold("No changes."));
        out.push_str(" Your deployment matches the configuration.");
    }
    out.push('\n');
    if !plan.drift.is_empty() {
        let _ = write!(
            out,
            "\n{}\n",
            bold(&format!("Changed outside weir ({}):", plan.drift.len()))
        );
        for d in &plan.drift {
            let (mark, what) = match d.after {
                Some(_) => (Mark::Change, "has changed"),
                None => (Mark::Remove, "has been deleted"),
            };
            let _ = writeln!(out, "  {} {} {what}", mark.painted(color), d.address);
        }
    }
    for (action, title) in [
        (Action::Delete, "Destroy"),
        (Action::Replace, "Replace"),
        (Action::Create, "Create"),
        (Action::Update, "Update in place"),
    ] {
        let addresses: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| c.action == action)
            .map(|c| c.address.as_str())
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n{}\n",
            bold(&format!("{title} ({}):", addresses.len()))
        );
        let mark = Mark::for_action(action).painted(color);
        for address in addresses {
            let _ = writeln!(out, "  {mark} {address}");
        }
    }
    plan_redactor(plan).redact(&out)
}

/// `first` before the first line of `text`, `rest` before the others.
pub(crate) fn push_indented(out: &mut String, first: &str, rest: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
    if text.is_empty() {
        out.push_str(first.trim_end());
        out.push('\n');
    }
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color && !text.is_empty() {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_string()
    }
}

/// What a line says is happening to the thing it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Keep,
    Add,
    Remove,
    Change,
    Replace,
}

impl Mark {
    pub(crate) fn for_action(action: Action) -> Mark {
        match action {
            Action::NoOp => Mark::Keep,
            Action::Create => Mark::Add,
            Action::Update => Mark::Change,
            Action::Replace => Mark::Replace,
            Action::Delete => Mark::Remove,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Mark::Keep => " ",
            Mark::Add => "+",
            Mark::Remove => "-",
            Mark::Change => "~",
            Mark::Replace => "-/+",
        }
    }

    fn painted(self, color: bool) -> String {
        let style = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        match self {
            Mark::Keep => " ".into(),
            Mark::Add => paint(color, style(AnsiColor::Green), "+"),
            Mark::Remove => paint(color, style(AnsiColor::Red), "-"),
            Mark::Change => paint(color, style(AnsiColor::Yellow), "~"),
            Mark::Replace => format!(
                "{}/{}",
                paint(color, style(AnsiColor::Red), "-"),
                paint(color, style(AnsiColor::Green), "+")
            ),
        }
    }
}

/// One line of a resource body: the mark's last character sits in column `col`, the text
/// starts two columns later.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    col: usize,
    mark: Mark,
    text: String,
    bold: bool,
    /// A warning after the text (`# forces replacement`), red in colour.
    warn: Option<&'static str>,
}

/// Laid-out lines of one resource (or drift entry, or the outputs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Lines(Vec<Line>);

impl Lines {
    /// A line at nesting `level`: -1 is the `resource` line, 0 its attributes, and so on.
    fn at(&mut self, level: i32, mark: Mark, text: impl Into<String>) -> &mut Line {
        let col = usize::try_from(6 + 4 * level).unwrap_or(0);
        let index = self.0.len();
        self.0.push(Line {
            col,
            mark,
            text: text.into(),
            bold: false,
            warn: None,
        });
        &mut self.0[index]
    }

    /// A `# …` comment line in the header position (column 2).
    fn header(&mut self, text: impl Into<String>, bold: bool) {
        self.0.push(Line {
            col: 0,
            mark: Mark::Keep,
            text: text.into(),
            bold,
            warn: None,
        });
    }

    pub(crate) fn to_text(&self, color: bool) -> String {
        let mut out = String::new();
        for l in &self.0 {
            let sym = l.mark.symbol();
            let mut s = " ".repeat((l.col + 1).saturating_sub(sym.len()));
            s.push_str(&l.mark.painted(color));
            s.push(' ');
            if l.bold {
                s.push_str(&paint(color, Style::new().bold(), &l.text));
            } else {
                s.push_str(&l.text);
            }
            if let Some(w) = l.warn {
                s.push(' ');
                s.push_str(&paint(
                    color,
                    Style::new().fg_color(Some(AnsiColor::Red.into())),
                    w,
                ));
            }
            out.push_str(s.trim_end());
            out.push('\n');
        }
        out
    }

    /// For a ```` ```diff ```` fence: the mark in the first column (`~` becomes `!`, which
    /// GitHub highlights as a change), the text where it is in [`Lines::to_text`].
    pub(crate) fn to_diff(&self) -> String {
        let mut out = String::new();
        for l in &self.0 {
            let sym = match l.mark {
                Mark::Keep => "",
                Mark::Add => "+",
                Mark::Remove => "-",
                Mark::Change => "!",
                Mark::Replace => "-/+",
            };
            let mut s = String::from(sym);
            s.push_str(&" ".repeat((l.col + 2).saturating_sub(sym.len()).max(1)));
            s.push_str(&l.text);
            if let Some(w) = l.warn {
                s.push(' ');
                s.push_str(w);
            }
            out.push_str(s.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The header, the `resource` block and the notes of one change.
pub(crate) fn change_lines(change: &Change) -> Lines {
    let mut d = Differ {
        out: Lines::default(),
        before_sensitive: &change.before_sensitive,
        after_sensitive: &change.after_sensitive,
        after_unknown: &change.after_unknown,
        replace_paths: &change.replace_paths,
    };
    d.out.header(
        format!("# {} {}", change.address, change.action.phrase()),
        true,
    );
    if let Some(reason) = change.reason {
        d.out
            .header(format!("# (because {})", reason.describe()), false);
    }
    d.out.at(
        -1,
        Mark::for_action(change.action),
        format!(
            "resource {} {} {{",
            quote(&change.type_name),
            quote(&change.name)
        ),
    );
    let before_shown = change
        .before
        .as_ref()
        .map(|v| mask(v, &change.before_sensitive));
    let after_shown = change
        .after
        .as_ref()
        .map(|v| mask(v, &change.after_sensitive));
    let before = Node::pair(change.before.as_ref(), before_shown.as_ref());
    let after = Node::pair(change.after.as_ref(), after_shown.as_ref());
    match change.action {
        Action::Create => d.full_body(0, Mark::Add, &[], after, Side::After),
        Action::Delete => d.full_body(0, Mark::Remove, &[], before, Side::Before),
        _ => d.diff_body(0, &[], &[], before, after),
    }
    d.out.at(-1, Mark::Keep, "}");
    for note in &change.notes {
        push_note(&mut d.out, note);
    }
    d.out
}

fn push_note(out: &mut Lines, note: &str) {
    for (i, line) in note.lines().enumerate() {
        out.header(
            if i == 0 {
                format!("# note: {line}")
            } else {
                format!("#       {line}")
            },
            false,
        );
    }
}

/// The header and body of one object changed outside weir.
pub(crate) fn drift_lines(drift: &Drift) -> Lines {
    let mut d = Differ {
        out: Lines::default(),
        before_sensitive: &drift.sensitive,
        after_sensitive: &drift.sensitive,
        after_unknown: &[],
        replace_paths: &[],
    };
    let (phrase, mark) = match drift.after {
        Some(_) => ("has changed", Mark::Change),
        None => ("has been deleted", Mark::Remove),
    };
    d.out.header(format!("# {} {phrase}", drift.address), true);
    d.out.at(
        -1,
        mark,
        format!(
            "resource {} {} {{",
            quote(&drift.type_name),
            quote(&drift.name)
        ),
    );
    let before_shown = mask(&drift.before, &drift.sensitive);
    let after_shown = drift.after.as_ref().map(|v| mask(v, &drift.sensitive));
    let before = Node::pair(Some(&drift.before), Some(&before_shown));
    let after = Node::pair(drift.after.as_ref(), after_shown.as_ref());
    if after.is_some() {
        d.diff_body(0, &[], &[], before, after);
    } else {
        d.full_body(0, Mark::Remove, &[], before, Side::Before);
    }
    d.out.at(-1, Mark::Keep, "}");
    d.out
}

/// `name = value` lines for the outputs that change.
pub(crate) fn output_lines(outputs: &[OutputChange]) -> Lines {
    let mut out = Lines::default();
    let changed: Vec<&OutputChange> = outputs.iter().filter(|o| o.action.is_change()).collect();
    let width = changed
        .iter()
        .map(|o| key_display(&o.name).chars().count())
        .max()
        .unwrap_or(0);
    let everything: Vec<AttrPath> = vec![vec![]];
    for o in changed {
        let sensitive: &[AttrPath] = if o.sensitive { &everything } else { &[] };
        let unknown: &[AttrPath] = if o.unknown { &everything } else { &[] };
        let mut d = Differ {
            out: std::mem::take(&mut out),
            before_sensitive: sensitive,
            after_sensitive: sensitive,
            after_unknown: unknown,
            replace_paths: &[],
        };
        let before_shown = o.before.as_ref().map(|v| mask(v, sensitive));
        let after_shown = o.after.as_ref().map(|v| mask(v, sensitive));
        let before = Node::pair(o.before.as_ref(), before_shown.as_ref());
        let after = Node::pair(o.after.as_ref(), after_shown.as_ref());
        let label = Label::Key(&o.name, width);
        match o.action {
            Action::Create => d.full(-1, &label, Mark::Add, &[], after, Side::After),
            Action::Delete => d.full(-1, &label, Mark::Remove, &[], before, Side::Before),
            _ => d.diff(-1, &label, &[], &[], before, after),
        }
        out = d.out;
    }
    out
}

/// A value as it is (`raw`, only ever compared) and as it may be shown (`shown`, masked).
/// `shown` is `None` when masking removed the structure below a sensitive path.
#[derive(Clone, Copy)]
struct Node<'v> {
    raw: &'v Value,
    shown: Option<&'v Value>,
}

impl<'v> Node<'v> {
    fn pair(raw: Option<&'v Value>, shown: Option<&'v Value>) -> Option<Node<'v>> {
        raw.map(|raw| Node { raw, shown })
    }

    fn key(self, k: &str) -> Option<Node<'v>> {
        let raw = self.raw.as_object()?.get(k)?;
        Some(Node {
            raw,
            shown: self
                .shown
                .and_then(|s| s.as_object())
                .and_then(|m| m.get(k)),
        })
    }

    fn index(self, i: usize) -> Option<Node<'v>> {
        let raw = self.raw.as_array()?.get(i)?;
        Some(Node {
            raw,
            shown: self.shown.and_then(|s| s.as_array()).and_then(|a| a.get(i)),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// How an entry is introduced: `key = …` inside an object, `…,` inside an array, or bare.
enum Label<'k> {
    Key(&'k str, usize),
    Elem,
    Bare,
}

impl Label<'_> {
    fn prefix(&self) -> String {
        match self {
            Label::Key(k, width) => format!("{:<width$} = ", key_display(k)),
            _ => String::new(),
        }
    }

    fn suffix(&self) -> &'static str {
        match self {
            Label::Elem => ",",
            _ => "",
        }
    }
}

/// A key as written in a plan: bare when it is an identifier, quoted otherwise.
fn key_display(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ident { k.to_string() } else { quote(k) }
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A scalar (or, compactly, a container) as shown on one line.
/// A value for one line, or `(sensitive)` when it is not to be shown.
fn shown_inline(v: Option<&Value>) -> String {
    v.map(inline).unwrap_or_else(|| SENSITIVE_VALUE.to_string())
}

fn inline(v: &Value) -> String {
    v.to_string()
}

fn child(path: &[String], seg: impl ToString) -> AttrPath {
    let mut p = path.to_vec();
    p.push(seg.to_string());
    p
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

const SENSITIVE_VALUE: &str = "(sensitive)";
const UNKNOWN_VALUE: &str = "(known after apply)";

/// Lays out values, knowing which paths are sensitive, unknown or force replacement.
struct Differ<'a> {
    out: Lines,
    before_sensitive: &'a [AttrPath],
    after_sensitive: &'a [AttrPath],
    after_unknown: &'a [AttrPath],
    replace_paths: &'a [AttrPath],
}

impl Differ<'_> {
    fn sensitive(&self, side: Side) -> &[AttrPath] {
        match side {
            Side::Before => self.before_sensitive,
            Side::After => self.after_sensitive,
        }
    }

    /// Whether the value at `path` on `side` must not be shown.
    fn hidden(&self, side: Side, path: &[String], node: Node<'_>) -> bool {
        node.shown.is_none() || is_sensitive(path, self.sensitive(side))
    }

    /// At or below a path only known after apply.
    fn unknown(&self, side: Side, path: &[String]) -> bool {
        side == Side::After && self.after_unknown.iter().any(|p| path.starts_with(p))
    }

    fn unknown_below(&self, side: Side, path: &[String]) -> bool {
        side == Side::After
            && self
                .after_unknown
                .iter()
                .any(|p| p.len() > path.len() && p.starts_with(path))
    }

    /// Keys of unknown values directly below `path` that `present` does not have.
    fn unknown_keys(&self, path: &[String], present: Option<&Map<String, Value>>) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for p in self.after_unknown {
            if p.len() > path.len() && p.starts_with(path) {
                let k = &p[path.len()];
                if !present.is_some_and(|m| m.contains_key(k)) && !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    fn forces(&self, bpath: &[String], apath: &[String]) -> Option<&'static str> {
        self.replace_paths
            .iter()
            .any(|p| p.as_slice() == apath || p.as_slice() == bpath)
            .then_some("# forces replacement")
    }

    /// Whether an entry differs between before and after (and so is shown).
    fn changed(&self, apath: &[String], b: Option<Node<'_>>, a: Option<Node<'_>>) -> bool {
        let unknown = self.unknown(Side::After, apath) || self.unknown_below(Side::After, apath);
        match (b, a) {
            (None, None) => unknown,
            (Some(b), Some(a)) => unknown || b.raw != a.raw,
            _ => true,
        }
    }

    /// An entry shown whole, every line with `mark` (a created or destroyed value).
    fn full(
        &mut self,
        level: i32,
        label: &Label<'_>,
        mark: Mark,
        path: &[String],
        node: Option<Node<'_>>,
        side: Side,
    ) {
        let (pre, suf) = (label.prefix(), label.suffix());
        if self.unknown(side, path) {
            self.out
                .at(level, mark, format!("{pre}{UNKNOWN_VALUE}{suf}"));
            return;
        }
        let empty = Value::Object(Map::new());
        let node = match node {
            Some(n) => n,
            None if self.unknown_below(side, path) => Node {
                raw: &empty,
                shown: Some(&empty),
            },
            None => return,
        };
        if self.hidden(side, path, node) {
            self.out
                .at(level, mark, format!("{pre}{SENSITIVE_VALUE}{suf}"));
            return;
        }
        let Some(shown) = node.shown else {
            self.out
                .at(level, mark, format!("{pre}{SENSITIVE_VALUE}{suf}"));
            return;
        };
        match shown {
            Value::Object(map)
                if !map.is_empty()
                    || side == Side::After && !self.unknown_keys(path, Some(map)).is_empty() =>
            {
                self.out.at(level, mark, format!("{pre}{{"));
                self.full_body(level + 1, mark, path, Some(node), side);
                self.out.at(level, Mark::Keep, format!("}}{suf}"));
            }
            Value::Array(items) if !items.is_empty() => {
                self.out.at(level, mark, format!("{pre}["));
                for i in 0..items.len() {
                    self.full(
                        level + 1,
                        &Label::Elem,
                        mark,
                        &child(path, i),
                        node.index(i),
                        side,
                    );
                }
                self.out.at(level, Mark::Keep, format!("]{suf}"));
            }
            Value::String(s) if s.contains('\n') => {
                self.out.at(level, mark, format!("{pre}<<-EOT"));
                for line in s.lines() {
                    self.out.at(level + 1, mark, line);
                }
                self.out.at(level, Mark::Keep, format!("EOT{suf}"));
            }
            v => {
                self.out.at(level, mark, format!("{pre}{}{suf}", inline(v)));
            }
        }
    }

    /// The attributes of an object shown whole.
    fn full_body(
        &mut self,
        level: i32,
        mark: Mark,
        path: &[String],
        node: Option<Node<'_>>,
        side: Side,
    ) {
        let Some(node) = node else {
            for k in self.unknown_keys(path, None) {
                let width = k.len();
                self.full(
                    level,
                    &Label::Key(&k, width),
                    mark,
                    &child(path, &k),
                    None,
                    side,
                );
            }
            return;
        };
        if self.hidden(side, path, node) || !node.raw.is_object() {
            self.full(level, &Label::Bare, mark, path, Some(node), side);
            return;
        }
        let Some(map) = node.raw.as_object() else {
            return;
        };
        let mut keys: Vec<String> = map.keys().cloned().collect();
        if side == Side::After {
            keys.extend(self.unknown_keys(path, Some(map)));
        }
        let width = keys
            .iter()
            .map(|k| key_display(k).chars().count())
            .max()
            .unwrap_or(0);
        for k in &keys {
            self.full(
                level,
                &Label::Key(k, width),
                mark,
                &child(path, k),
                node.key(k),
                side,
            );
        }
    }

    /// The changed attributes of an object, the others counted.
    fn diff_body(
        &mut self,
        level: i32,
        bpath: &[String],
        apath: &[String],
        b: Option<Node<'_>>,
        a: Option<Node<'_>>,
    ) {
        self.diff_object(level, bpath, apath, b, a, None, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn diff_object(
        &mut self,
        level: i32,
        bpath: &[String],
        apath: &[String],
        b: Option<Node<'_>>,
        a: Option<Node<'_>>,
        show_key: Option<&str>,
        moved: Option<(usize, usize)>,
    ) {
        let bmap = b.and_then(|n| n.raw.as_object());
        let amap = a.and_then(|n| n.raw.as_object());
        if bmap.is_none() && amap.is_none() && (b.is_some() || a.is_some()) {
            // Not objects: one value replaced by another.
            if self.changed(apath, b, a) {
                self.diff(level, &Label::Bare, bpath, apath, b, a);
            }
            return;
        }
        let mut keys: Vec<String> = amap
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(bm) = bmap {
            keys.extend(
                bm.keys()
                    .filter(|k| !amap.is_some_and(|m| m.contains_key(*k)))
                    .cloned(),
            );
        }
        for k in self.unknown_keys(apath, amap) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        struct Entry<'n> {
            key: String,
            bpath: AttrPath,
            apath: AttrPath,
            before: Option<Node<'n>>,
            after: Option<Node<'n>>,
            changed: bool,
        }
        let entries: Vec<Entry<'_>> = keys
            .into_iter()
            .map(|key| {
                let (bpath, apath) = (child(bpath, &key), child(apath, &key));
                let before = b.and_then(|n| n.key(&key));
                let after = a.and_then(|n| n.key(&key));
                let changed = self.changed(&apath, before, after);
                Entry {
                    key,
                    bpath,
                    apath,
                    before,
                    after,
                    changed,
                }
            })
            .collect();
        let width = entries
            .iter()
            .filter(|e| e.changed || Some(e.key.as_str()) == show_key)
            .map(|e| key_display(&e.key).chars().count())
            .max()
            .unwrap_or(0);
        if let Some((from, to)) = moved {
            self.out.at(
                level,
                Mark::Keep,
                format!("# (moved from index {from} to index {to})"),
            );
        }
        let mut hidden = 0;
        for e in &entries {
            let label = Label::Key(&e.key, width);
            if e.changed {
                self.diff(level, &label, &e.bpath, &e.apath, e.before, e.after);
            } else if Some(e.key.as_str()) == show_key {
                let text = match e.after {
                    Some(n) if !self.hidden(Side::After, &e.apath, n) => shown_inline(n.shown),
                    _ => SENSITIVE_VALUE.to_string(),
                };
                self.out
                    .at(level, Mark::Keep, format!("{}{text}", label.prefix()));
            } else {
                hidden += 1;
            }
        }
        if hidden > 0 {
            self.out.at(
                level,
                Mark::Keep,
                format!("# ({} hidden)", plural(hidden, "unchanged attribute")),
            );
        }
    }

    /// One entry that changed.
    fn diff(
        &mut self,
        level: i32,
        label: &Label<'_>,
        bpath: &[String],
        apath: &[String],
        b: Option<Node<'_>>,
        a: Option<Node<'_>>,
    ) {
        let a_unknown = self.unknown(Side::After, apath);
        let a_unknown_below = self.unknown_below(Side::After, apath);
        let Some(b) = b else {
            self.full(level, label, Mark::Add, apath, a, Side::After);
            return;
        };
        if a.is_none() && !a_unknown && !a_unknown_below {
            self.full(level, label, Mark::Remove, bpath, Some(b), Side::Before);
            return;
        }
        let (pre, suf) = (label.prefix(), label.suffix());
        let warn = self.forces(bpath, apath);
        let b_hidden = self.hidden(Side::Before, bpath, b);
        let old = || {
            if b_hidden {
                SENSITIVE_VALUE.to_string()
            } else {
                shown_inline(b.shown)
            }
        };
        if a_unknown {
            self.out
                .at(
                    level,
                    Mark::Change,
                    format!("{pre}{} -> {UNKNOWN_VALUE}{suf}", old()),
                )
                .warn = warn;
            return;
        }
        let empty = Value::Object(Map::new());
        let a = a.unwrap_or(Node {
            raw: &empty,
            shown: Some(&empty),
        });
        let a_hidden = self.hidden(Side::After, apath, a);
        if b_hidden || a_hidden {
            let text = if b_hidden && a_hidden {
                SENSITIVE_VALUE.to_string()
            } else {
                let new = if a_hidden {
                    SENSITIVE_VALUE.to_string()
                } else {
                    shown_inline(a.shown)
                };
                format!("{} -> {new}", old())
            };
            self.out
                .at(level, Mark::Change, format!("{pre}{text}{suf}"))
                .warn = warn;
            return;
        }
        let (Some(b_shown), Some(a_shown)) = (b.shown, a.shown) else {
            return;
        };
        match (b_shown, a_shown) {
            (Value::Object(_), Value::Object(_)) => {
                self.out.at(level, Mark::Change, format!("{pre}{{")).warn = warn;
                self.diff_object(level + 1, bpath, apath, Some(b), Some(a), None, None);
                self.out.at(level, Mark::Keep, format!("}}{suf}"));
            }
            (Value::Array(_), Value::Array(_)) => {
                self.out.at(level, Mark::Change, format!("{pre}[")).warn = warn;
                self.diff_array(level + 1, bpath, apath, b, a);
                self.out.at(level, Mark::Keep, format!("]{suf}"));
            }
            (Value::String(old), Value::String(new))
                if old.contains('\n') || new.contains('\n') =>
            {
                self.out
                    .at(level, Mark::Change, format!("{pre}<<-EOT"))
                    .warn = warn;
                self.text_diff(level + 1, old, new);
                self.out.at(level, Mark::Keep, format!("EOT{suf}"));
            }
            (old, new) => {
                self.out
                    .at(
                        level,
                        Mark::Change,
                        format!("{pre}{} -> {}{suf}", inline(old), inline(new)),
                    )
                    .warn = warn;
            }
        }
    }

    /// A multi-line string as a unified diff with three lines of context.
    fn text_diff(&mut self, level: i32, old: &str, new: &str) {
        let diff = TextDiff::from_lines(old, new);
        let mut unified = diff.unified_diff();
        unified.context_radius(3);
        for hunk in unified.iter_hunks() {
            self.out.at(level, Mark::Keep, hunk.header().to_string());
            for change in hunk.iter_changes() {
                let mark = match change.tag() {
                    ChangeTag::Delete => Mark::Remove,
                    ChangeTag::Insert => Mark::Add,
                    ChangeTag::Equal => Mark::Keep,
                };
                self.out
                    .at(level, mark, change.value().trim_end_matches(['\n', '\r']));
            }
        }
    }

    fn diff_array(
        &mut self,
        level: i32,
        bpath: &[String],
        apath: &[String],
        b: Node<'_>,
        a: Node<'_>,
    ) {
        let (Some(bitems), Some(aitems)) = (b.raw.as_array(), a.raw.as_array()) else {
            return;
        };
        let hidden = match match_key(bitems, aitems) {
            Some(key) => self.diff_keyed(level, bpath, apath, b, a, key),
            None => self.diff_positional(level, bpath, apath, b, a),
        };
        if hidden > 0 {
            self.out.at(
                level,
                Mark::Keep,
                format!("# ({} hidden)", plural(hidden, "unchanged element")),
            );
        }
    }

    /// Elements matched by their `uuid`/`name`; returns how many were unchanged.
    fn diff_keyed(
        &mut self,
        level: i32,
        bpath: &[String],
        apath: &[String],
        b: Node<'_>,
        a: Node<'_>,
        key: &str,
    ) -> usize {
        let (Some(bitems), Some(aitems)) = (b.raw.as_array(), a.raw.as_array()) else {
            return 0;
        };
        let bkeys: Vec<String> = bitems.iter().map(|v| element_key(v, key)).collect();
        let akeys: Vec<String> = aitems.iter().map(|v| element_key(v, key)).collect();
        let bindex: HashMap<&str, usize> = bkeys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let aindex: HashSet<&str> = akeys.iter().map(String::as_str).collect();
        // Elements on both sides whose relative order is kept; the others moved.
        let bcommon: Vec<&str> = bkeys
            .iter()
            .map(String::as_str)
            .filter(|k| aindex.contains(k))
            .collect();
        let acommon: Vec<&str> = akeys
            .iter()
            .map(String::as_str)
            .filter(|k| bindex.contains_key(k))
            .collect();
        let mut in_order: HashSet<&str> = HashSet::new();
        for op in capture_diff_slices(Algorithm::Myers, &bcommon, &acommon) {
            if let DiffOp::Equal { old_index, len, .. } = op {
                in_order.extend(&bcommon[old_index..old_index + len]);
            }
        }

        // Removed elements are shown where they were, between the kept ones.
        let gone = |k: usize| !aindex.contains(bkeys[k].as_str());
        let mut hidden = 0;
        let mut next_before = 0;
        for (i, akey) in akeys.iter().enumerate() {
            let ap = child(apath, i);
            let Some(&j) = bindex.get(akey.as_str()) else {
                self.full(level, &Label::Elem, Mark::Add, &ap, a.index(i), Side::After);
                continue;
            };
            for k in (next_before..j).filter(|&k| gone(k)) {
                self.full(
                    level,
                    &Label::Elem,
                    Mark::Remove,
                    &child(bpath, k),
                    b.index(k),
                    Side::Before,
                );
            }
            next_before = next_before.max(j + 1);
            let bp = child(bpath, j);
            let (bn, an) = (b.index(j), a.index(i));
            let moved = !in_order.contains(akey.as_str());
            if !moved && !self.changed(&ap, bn, an) {
                hidden += 1;
                continue;
            }
            let (Some(bn), Some(an)) = (bn, an) else {
                continue;
            };
            let plain = !self.hidden(Side::Before, &bp, bn)
                && !self.hidden(Side::After, &ap, an)
                && !self.unknown(Side::After, &ap);
            if plain {
                self.out.at(level, Mark::Change, "{").warn = self.forces(&bp, &ap);
                self.diff_object(
                    level + 1,
                    &bp,
                    &ap,
                    Some(bn),
                    Some(an),
                    Some(key),
                    moved.then_some((j, i)),
                );
                self.out.at(level, Mark::Keep, "},");
            } else {
                self.diff(level, &Label::Elem, &bp, &ap, Some(bn), Some(an));
            }
        }
        for k in (next_before..bkeys.len()).filter(|&k| gone(k)) {
            self.full(
                level,
                &Label::Elem,
                Mark::Remove,
                &child(bpath, k),
                b.index(k),
                Side::Before,
            );
        }
        hidden
    }

    /// Elements matched by a longest-common-subsequence diff; returns how many were unchanged.
    fn diff_positional(
        &mut self,
        level: i32,
        bpath: &[String],
        apath: &[String],
        b: Node<'_>,
        a: Node<'_>,
    ) -> usize {
        let bkeys: Vec<String> = b
            .raw
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(Value::to_string)
            .collect();
        let akeys: Vec<String> = a
            .raw
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(Value::to_string)
            .collect();
        let mut hidden = 0;
        for op in capture_diff_slices(Algorithm::Myers, &bkeys, &akeys) {
            match op {
                DiffOp::Equal {
                    old_index,
                    new_index,
                    len,
                } => {
                    for t in 0..len {
                        let (bp, ap) = (child(bpath, old_index + t), child(apath, new_index + t));
                        if self.changed(&ap, b.index(old_index + t), a.index(new_index + t)) {
                            self.diff(
                                level,
                                &Label::Elem,
                                &bp,
                                &ap,
                                b.index(old_index + t),
                                a.index(new_index + t),
                            );
                        } else {
                            hidden += 1;
                        }
                    }
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => {
                    for i in old_index..old_index + old_len {
                        self.full(
                            level,
                            &Label::Elem,
                            Mark::Remove,
                            &child(bpath, i),
                            b.index(i),
                            Side::Before,
                        );
                    }
                }
                DiffOp::Insert {
                    new_index, new_len, ..
                } => {
                    for i in new_index..new_index + new_len {
                        self.full(
                            level,
                            &Label::Elem,
                            Mark::Add,
                            &child(apath, i),
                            a.index(i),
                            Side::After,
                        );
                    }
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    let paired = old_len.min(new_len);
                    for t in 0..paired {
                        let (bi, ai) = (old_index + t, new_index + t);
                        let (bn, an) = (b.index(bi), a.index(ai));
                        let same_kind = matches!(
                            (bn.map(|n| n.raw), an.map(|n| n.raw)),
                            (Some(Value::Object(_)), Some(Value::Object(_)))
                                | (Some(Value::Array(_)), Some(Value::Array(_)))
                        );
                        if same_kind {
                            self.diff(
                                level,
                                &Label::Elem,
                                &child(bpath, bi),
                                &child(apath, ai),
                                bn,
                                an,
                            );
                        } else {
                            self.full(
                                level,
                                &Label::Elem,
                                Mark::Remove,
                                &child(bpath, bi),
                                bn,
                                Side::Before,
                            );
                            self.full(
                                level,
                                &Label::Elem,
                                Mark::Add,
                                &child(apath, ai),
                                an,
                                Side::After,
                            );
                        }
                    }
                    for i in old_index + paired..old_index + old_len {
                        self.full(
                            level,
                            &Label::Elem,
                            Mark::Remove,
                            &child(bpath, i),
                            b.index(i),
                            Side::Before,
                        );
                    }
                    for i in new_index + paired..new_index + new_len {
                        self.full(
                            level,
                            &Label::Elem,
                            Mark::Add,
                            &child(apath, i),
                            a.index(i),
                            Side::After,
                        );
                    }
                }
            }
        }
        hidden
    }
}

/// `uuid` or `name` when every element on both sides is an object with a distinct scalar
/// value there.
fn match_key(before: &[Value], after: &[Value]) -> Option<&'static str> {
    if before.is_empty() && after.is_empty() {
        return None;
    }
    ["uuid", "name"].into_iter().find(|key| {
        [before, after].iter().all(|items| {
            let mut seen = HashSet::new();
            items.iter().all(|v| match v.get(*key) {
                Some(k @ (Value::String(_) | Value::Number(_))) => seen.insert(element_key_of(k)),
                _ => false,
            })
        })
    })
}

fn element_key(v: &Value, key: &str) -> String {
    v.get(key).map(element_key_of).unwrap_or_default()
}

fn element_key_of(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_text_is_the_summary_and_one_line_per_changed_address() {
        use crate::render::fixtures::*;
        let plan = sample_plan();
        let text = render_text_compact(&plan, false);
        assert_eq!(
            text,
            "Plan: 2 to add, 2 to change, 1 to replace, 1 to destroy.

Changed outside weir (2):
  ~ mage_pipeline.orders has changed
  - mage_trigger.orders_hourly has been deleted

Destroy (1):
  - mage_trigger.orders_old

Replace (1):
  -/+ google_cloud_run_v2_job.highmem

Create (2):
  + google_cloud_run_v2_service.prod_web
  + mage_block.orders_load

Update in place (2):
  ~ mage_pipeline.orders
  ~ mage_notification.ops
"
        );
        assert!(!text.contains(SECRET) && !text.contains(SECRET2));
    }
    use crate::render::fixtures::*;
    use serde_json::json;

    fn body(c: &Change) -> String {
        change_lines(c).to_text(false)
    }

    #[test]
    fn sample_plan_text() {
        insta::assert_snapshot!(render_text(&sample_plan(), false));
    }

    #[test]
    fn sample_plan_text_in_colour() {
        let text = render_text(&sample_plan(), true);
        assert!(text.contains("\u{1b}[32m+\u{1b}[0m"), "green +");
        assert!(text.contains("\u{1b}[31m-\u{1b}[0m"), "red -");
        assert!(text.contains("\u{1b}[33m~\u{1b}[0m"), "yellow ~");
        assert!(!render_text(&sample_plan(), false).contains('\u{1b}'));
        let plain: String = anstream::adapter::strip_str(&text).to_string();
        assert_eq!(plain, render_text(&sample_plan(), false));
    }

    #[test]
    fn never_shows_secrets() {
        let text = render_text(&sample_plan(), false);
        assert!(!text.contains(SECRET) && !text.contains(SECRET2), "{text}");
        assert!(text.contains("webhook_url = (sensitive)"));
        assert!(text.contains("+ db_password   = (sensitive)"), "{text}");
    }

    #[test]
    fn summary_line_and_no_changes() {
        let text = render_text(&sample_plan(), false);
        assert!(text.ends_with("Plan: 2 to add, 2 to change, 1 to replace, 1 to destroy.\n"));
        let mut plan = empty_plan();
        plan.changes.push(change(
            "mage_pipeline.a",
            Action::NoOp,
            Some(json!({"x": 1})),
            Some(json!({"x": 1})),
        ));
        assert_eq!(
            render_text(&plan, false),
            "No changes. Your deployment matches the configuration.\n"
        );
    }

    #[test]
    fn keyed_list_shows_only_the_inserted_block() {
        let blocks = |uuids: &[&str]| json!({"blocks": uuids.iter().map(|u| json!({"uuid": u, "type": "transformer", "upstream_blocks": []})).collect::<Vec<_>>()});
        let c = change(
            "mage_pipeline.p",
            Action::Update,
            Some(blocks(&["a", "b", "c", "d"])),
            Some(blocks(&["a", "b", "x", "c", "d"])),
        );
        insta::assert_snapshot!(body(&c), @r#"
          # mage_pipeline.p will be updated in place
          ~ resource "mage_pipeline" "p" {
              ~ blocks = [
                  + {
                      + uuid            = "x"
                      + type            = "transformer"
                      + upstream_blocks = []
                    },
                    # (4 unchanged elements hidden)
                ]
            }
        "#);
    }

    #[test]
    fn keyed_list_shows_a_moved_block_only() {
        let blocks = |uuids: &[&str]| json!({"blocks": uuids.iter().map(|u| json!({"name": u, "x": 1})).collect::<Vec<_>>()});
        let c = change(
            "mage_pipeline.p",
            Action::Update,
            Some(blocks(&["a", "b", "c", "d"])),
            Some(blocks(&["a", "c", "d", "b"])),
        );
        insta::assert_snapshot!(body(&c), @r#"
          # mage_pipeline.p will be updated in place
          ~ resource "mage_pipeline" "p" {
              ~ blocks = [
                  ~ {
                        # (moved from index 1 to index 3)
                        name = "b"
                        # (1 unchanged attribute hidden)
                    },
                    # (3 unchanged elements hidden)
                ]
            }
        "#);
    }

    #[test]
    fn scalar_list_and_removed_attribute() {
        let c = change(
            "mage_pipeline.p",
            Action::Update,
            Some(json!({"tags": ["a", "b", "c"], "gone": {"k": "v"}, "same": 1})),
            Some(json!({"tags": ["a", "c", "d"], "same": 1, "new": null})),
        );
        insta::assert_snapshot!(body(&c), @r#"
          # mage_pipeline.p will be updated in place
          ~ resource "mage_pipeline" "p" {
              ~ tags = [
                  - "b",
                  + "d",
                    # (2 unchanged elements hidden)
                ]
              + new  = null
              - gone = {
                  - k = "v"
                }
                # (1 unchanged attribute hidden)
            }
        "#);
    }

    #[test]
    fn created_code_is_shown_whole() {
        let c = change(
            "mage_block.b",
            Action::Create,
            None,
            Some(json!({"code": "a\nb\n"})),
        );
        insta::assert_snapshot!(body(&c), @r#"
          # mage_block.b will be created
          + resource "mage_block" "b" {
              + code = <<-EOT
                  + a
                  + b
                EOT
            }
        "#);
    }

    #[test]
    fn sensitive_change_inside_a_list_element() {
        let mut c = change(
            "google_cloud_run_v2_service.web",
            Action::Update,
            Some(json!({"env": [{"name": "A", "value": SECRET}, {"name": "B", "value": "x"}]})),
            Some(json!({"env": [{"name": "A", "value": SECRET2}, {"name": "B", "value": "x"}]})),
        );
        c.before_sensitive = vec![path("env.0.value")];
        c.after_sensitive = vec![path("env.0.value")];
        let text = body(&c);
        assert!(!text.contains(SECRET) && !text.contains(SECRET2));
        insta::assert_snapshot!(text, @r#"
          # google_cloud_run_v2_service.web will be updated in place
          ~ resource "google_cloud_run_v2_service" "web" {
              ~ env = [
                  ~ {
                        name  = "A"
                      ~ value = (sensitive)
                    },
                    # (1 unchanged element hidden)
                ]
            }
        "#);
    }

    #[test]
    fn whole_element_masked() {
        // A sensitive path on a whole list element: mask replaces the element.
        let mut c = change(
            "x.y",
            Action::Create,
            None,
            Some(json!({"items": [{"k": SECRET}, "open"]})),
        );
        c.after_sensitive = vec![path("items.0")];
        let text = body(&c);
        assert!(!text.contains(SECRET));
        assert!(text.contains("+ (sensitive),"), "{text}");
    }

    #[test]
    fn secret_copied_to_an_unmarked_attribute_is_scrubbed() {
        let mut plan = empty_plan();
        let mut c = change(
            "x.y",
            Action::Create,
            None,
            Some(json!({"input": SECRET, "output": SECRET})),
        );
        c.after_sensitive = vec![path("input")];
        plan.changes.push(c);
        let text = render_text(&plan, false);
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("output = \"(sensitive)\""), "{text}");
    }
}
