//! The plan as a GitHub pull-request comment.
//!
//! Layout: the summary line and a table of counts; then drift (what changed outside weir, which
//! the changes below may undo), as in the text plan; then what will be destroyed or replaced,
//! the first of the changes and never folded; then each create and update in its own
//! `<details>` with the text body in a ```` ```diff ```` fence; then output changes, notes and
//! the unchanged resources.
//!
//! The comment always stays under GitHub's 65,536 characters. When the whole plan does not
//! fit, the least important parts are cut first — the list of unchanged resources, then update
//! details, create details, drift details, destroy/replace details, output changes, then the
//! addresses of updates, creates and drift — and the comment says what was cut and that the
//! full plan is in `weir show plan.weir`. The list of destroys and replaces is cut last, and
//! then only from its end, with a count of what is missing.
//!
//! The first line is a hidden marker naming the deployment ([`super::Marker`]), by which CI
//! finds the one comment (or drift issue) to update. The compact view keeps the summary and one line
//! per changed address, grouped by action: no diffs, outputs, notes or unchanged resources.

use super::text::{change_lines, drift_lines, output_lines};
use super::{View, plan_redactor};
use crate::plan::{Action, Change, Plan};
use crate::redact::Redactor;
use std::fmt::Write as _;

/// GitHub's limit on the body of a comment.
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// A single resource's diff longer than this is shortened, so one huge change cannot crowd
/// out all the others.
const MAX_BODY: usize = 20_000;
const FULL_PLAN: &str = "the full plan is in `weir show plan.weir`";

/// The plan as a PR comment of fewer than 65,536 characters.
pub fn render_markdown(plan: &Plan) -> String {
    render_markdown_view(plan, View::default())
}

/// [`render_markdown`], shown as `view` says.
pub fn render_markdown_view(plan: &Plan, view: View) -> String {
    render_markdown_within(plan, MAX_COMMENT_CHARS - 1, view)
}

/// The plan as a comment of at most `limit` bytes (so also at most `limit` characters),
/// as long as the header and the first destroy/replace line fit in it.
pub(crate) fn render_markdown_within(plan: &Plan, limit: usize, view: View) -> String {
    let redactor = plan_redactor(plan);
    let mut c = Comment::new(plan, &redactor, view);
    // Cut to the limit, measure what the notice and the "… and N more" lines added, cut that
    // much more; a few rounds at most.
    let mut budget = limit;
    loop {
        c.fit(budget);
        let text = c.assemble();
        if text.len() <= limit || budget == 0 {
            return text;
        }
        budget = budget.saturating_sub(text.len() - limit);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Hidden,
    /// Only the address.
    Line,
    Full,
}

#[derive(Debug)]
struct Item {
    full: String,
    line: String,
    level: Level,
    /// The body was shortened to [`MAX_BODY`].
    partial: bool,
}

impl Item {
    fn new(full: String, line: String, partial: bool) -> Item {
        Item {
            full,
            line,
            level: Level::Full,
            partial,
        }
    }

    fn len(&self, level: Level) -> usize {
        match level {
            Level::Full => self.full.len(),
            Level::Line => self.line.len(),
            Level::Hidden => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Danger,
    DangerBodies,
    Creates,
    Updates,
    Drift,
    Outputs,
    Notes,
    Unchanged,
}

/// The order in which parts are cut: least important first.
const CUTS: [(Part, Level, Level); 11] = [
    (Part::Unchanged, Level::Full, Level::Hidden),
    (Part::Updates, Level::Full, Level::Line),
    (Part::Creates, Level::Full, Level::Line),
    (Part::Drift, Level::Full, Level::Line),
    (Part::DangerBodies, Level::Full, Level::Hidden),
    (Part::Outputs, Level::Full, Level::Hidden),
    (Part::Updates, Level::Line, Level::Hidden),
    (Part::Creates, Level::Line, Level::Hidden),
    (Part::Drift, Level::Line, Level::Hidden),
    (Part::Notes, Level::Full, Level::Hidden),
    (Part::Danger, Level::Full, Level::Hidden),
];

struct Comment<'p> {
    plan: &'p Plan,
    /// Compact: creates, updates and drift start as address lines, and a cut of their details
    /// is no news.
    compact: bool,
    head: String,
    danger: Vec<Item>,
    danger_bodies: Vec<Item>,
    creates: Vec<Item>,
    updates: Vec<Item>,
    drift: Vec<Item>,
    outputs: Vec<Item>,
    notes: Vec<Item>,
    unchanged: Vec<Item>,
}

impl<'p> Comment<'p> {
    fn new(plan: &'p Plan, redactor: &Redactor, view: View) -> Comment<'p> {
        let s = plan.summary();
        let mut head = view.marker.line(plan);
        head.push_str("### weir plan\n\n");
        if plan.has_changes() {
            let _ = writeln!(head, "**{s}**\n");
        } else {
            head.push_str("**No changes.** Your deployment matches the configuration.\n\n");
        }
        let unchanged_count = plan
            .changes
            .iter()
            .filter(|c| !c.action.is_change())
            .count();
        if !view.compact && (s.total() > 0 || unchanged_count > 0) {
            head.push_str("| Action | Resources |\n| :-- | --: |\n");
            for (what, n) in [
                ("➕ create", s.add),
                ("🔧 update in place", s.change),
                ("♻️ replace (destroy, then create)", s.replace),
                ("🗑️ destroy", s.destroy),
                ("unchanged", unchanged_count),
            ] {
                let _ = writeln!(head, "| {what} | {n} |");
            }
            head.push('\n');
        }

        let of = |action: Action| plan.changes.iter().filter(move |c| c.action == action);
        let mut danger_changes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
            .collect();
        if view.compact {
            // Grouped by action: destroys, then replaces.
            danger_changes.sort_by_key(|c| c.action != Action::Delete);
        }
        let danger = danger_changes
            .iter()
            .map(|c| {
                let line = if view.compact {
                    compact_danger_line(c)
                } else {
                    danger_line(c)
                };
                Item::new(line, String::new(), false)
            })
            .collect();
        let danger_bodies = danger_changes
            .iter()
            .map(|c| {
                let (body, partial) = fenced(&redactor.redact(&change_lines(c).to_diff()));
                Item::new(body, String::new(), partial)
            })
            .collect();
        let details = |c: &Change| {
            let (body, partial) = fenced(&redactor.redact(&change_lines(c).to_diff()));
            Item::new(
                format!(
                    "<details><summary><code>{}</code></summary>\n\n{body}\n</details>\n\n",
                    html(&c.address)
                ),
                format!("- `{}`\n", c.address),
                partial,
            )
        };
        let creates = of(Action::Create).map(details).collect();
        let updates = of(Action::Update).map(details).collect();
        let drift = plan
            .drift
            .iter()
            .map(|d| {
                let (body, partial) = fenced(&redactor.redact(&drift_lines(d).to_diff()));
                let what = if d.after.is_some() { "has changed" } else { "has been deleted" };
                Item::new(
                    format!(
                        "<details><summary><code>{}</code> {what}</summary>\n\n{body}\n</details>\n\n",
                        html(&d.address)
                    ),
                    format!("- `{}` {what}\n", d.address),
                    partial,
                )
            })
            .collect();
        let outputs = if plan.outputs.iter().any(|o| o.action.is_change()) {
            let (body, partial) = fenced(&redactor.redact(&output_lines(&plan.outputs).to_diff()));
            vec![Item::new(body, String::new(), partial)]
        } else {
            vec![]
        };
        let notes = plan
            .notes
            .iter()
            .map(|n| {
                let mut s = String::new();
                super::text::push_indented(&mut s, "- ", "  ", &redactor.redact(n));
                Item::new(s, String::new(), false)
            })
            .collect();
        let unchanged = plan
            .changes
            .iter()
            .filter(|c| !c.action.is_change())
            .map(|c| Item::new(format!("- `{}`\n", c.address), String::new(), false))
            .collect();
        let mut comment = Comment {
            plan,
            compact: view.compact,
            head,
            danger,
            danger_bodies,
            creates,
            updates,
            drift,
            outputs,
            notes,
            unchanged,
        };
        if view.compact {
            for part in [
                Part::DangerBodies,
                Part::Outputs,
                Part::Notes,
                Part::Unchanged,
            ] {
                comment.part(part).clear();
            }
            for part in [Part::Creates, Part::Updates, Part::Drift] {
                for item in comment.part(part) {
                    item.level = Level::Line;
                }
            }
        }
        comment
    }

    fn part(&mut self, part: Part) -> &mut Vec<Item> {
        match part {
            Part::Danger => &mut self.danger,
            Part::DangerBodies => &mut self.danger_bodies,
            Part::Creates => &mut self.creates,
            Part::Updates => &mut self.updates,
            Part::Drift => &mut self.drift,
            Part::Outputs => &mut self.outputs,
            Part::Notes => &mut self.notes,
            Part::Unchanged => &mut self.unchanged,
        }
    }

    /// Cuts, in [`CUTS`] order and from the end of each part, until the estimate fits.
    fn fit(&mut self, budget: usize) {
        let mut size = self.assemble().len();
        for (part, from, to) in CUTS {
            if size <= budget {
                return;
            }
            for item in self.part(part).iter_mut().rev() {
                if size <= budget {
                    return;
                }
                if item.level == from {
                    size -= item.len(from) - item.len(to);
                    item.level = to;
                }
            }
        }
    }

    fn assemble(&self) -> String {
        let mut out = self.head.clone();
        out.push_str(&self.notice());

        if !self.drift.is_empty() {
            let _ = writeln!(out, "### Changed outside weir ({})\n", self.drift.len());
            push_items(&mut out, &self.drift, "changed outside weir");
            blank(&mut out);
        }
        if !self.danger.is_empty() {
            let _ = writeln!(
                out,
                "### ⚠️ To destroy or replace ({})\n",
                self.danger.len()
            );
            push_items(&mut out, &self.danger, "to destroy or replace");
            blank(&mut out);
            if self.danger_bodies.iter().any(|i| i.level == Level::Full) {
                out.push_str(
                    "<details><summary>Details of what will be destroyed or replaced</summary>\n\n",
                );
                for i in self.danger_bodies.iter().filter(|i| i.level == Level::Full) {
                    out.push_str(&i.full);
                    blank(&mut out);
                }
                out.push_str("</details>\n\n");
            }
        }
        for (title, items, more) in [
            ("➕ Create", &self.creates, "to create"),
            ("🔧 Update in place", &self.updates, "to update"),
        ] {
            if !items.is_empty() {
                let _ = writeln!(out, "### {title} ({})\n", items.len());
                push_items(&mut out, items, more);
                blank(&mut out);
            }
        }
        if self.outputs.iter().any(|i| i.level == Level::Full) {
            out.push_str("### Changes to outputs\n\n");
            push_items(&mut out, &self.outputs, "");
            blank(&mut out);
        }
        if !self.notes.is_empty() {
            out.push_str("### Notes\n\n");
            push_items(&mut out, &self.notes, "notes");
            blank(&mut out);
        }
        if self.unchanged.iter().any(|i| i.level == Level::Full) {
            let _ = writeln!(
                out,
                "<details><summary>{} unchanged</summary>\n",
                plural(self.unchanged.len(), "resource")
            );
            push_items(&mut out, &self.unchanged, "unchanged");
            blank(&mut out);
            out.push_str("</details>\n\n");
        }
        out.push_str(&self.footer());
        out
    }

    /// What was cut, if anything, at the top of the comment.
    fn notice(&self) -> String {
        let below = |items: &[Item], level: Level| items.iter().filter(|i| i.level < level).count();
        let mut cut = Vec::new();
        let n = below(&self.danger, Level::Full);
        if n > 0 {
            cut.push(format!("{n} of the resources to destroy or replace"));
        }
        let nouns =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        for (items, one, many) in [
            (
                &self.danger_bodies,
                "resource to destroy or replace",
                "resources to destroy or replace",
            ),
            (&self.creates, "create", "creates"),
            (&self.updates, "update", "updates"),
            (&self.drift, "change outside weir", "changes outside weir"),
        ] {
            let n = below(items, Level::Full);
            if n > 0 && !self.compact {
                cut.push(format!("the details of {}", nouns(n, one, many)));
            }
        }
        for (items, one, many) in [
            (&self.creates, "create", "creates"),
            (&self.updates, "update", "updates"),
            (&self.drift, "change outside weir", "changes outside weir"),
        ] {
            let n = below(items, Level::Line);
            if n > 0 {
                cut.push(format!("the addresses of {}", nouns(n, one, many)));
            }
        }
        if below(&self.outputs, Level::Full) > 0 {
            cut.push("the output changes".into());
        }
        let n = below(&self.notes, Level::Full);
        if n > 0 {
            cut.push(nouns(n, "note", "notes"));
        }
        let n = below(&self.unchanged, Level::Full);
        if n > 0 {
            cut.push(format!(
                "the list of {}",
                nouns(n, "unchanged resource", "unchanged resources")
            ));
        }
        let partial = [
            &self.danger_bodies,
            &self.creates,
            &self.updates,
            &self.drift,
            &self.outputs,
        ]
        .iter()
        .flat_map(|items| items.iter())
        .filter(|i| i.partial && i.level == Level::Full)
        .count();
        if partial > 0 {
            cut.push(format!(
                "the end of {}",
                nouns(partial, "long diff", "long diffs")
            ));
        }
        if cut.is_empty() {
            return String::new();
        }
        format!(
            "> [!NOTE]\n> This comment was shortened to stay under GitHub's limit of 65,536 characters. \
             Left out: {}. The full plan is in `weir show plan.weir`.\n\n",
            cut.join("; ")
        )
    }

    fn footer(&self) -> String {
        let p = self.plan;
        let mut parts = vec![format!("weir {}", p.weir_version)];
        parts.push(format!(
            "config `{}`",
            short(p.config_hash.trim_start_matches("sha256:"), 12)
        ));
        if let Some(commit) = &p.git_commit {
            parts.push(format!("commit `{}`", short(commit, 12)));
        }
        if let (Some(lineage), Some(serial)) = (&p.lineage, p.serial) {
            parts.push(format!("state `{}` serial {serial}", short(lineage, 8)));
        }
        format!("<sub>{}</sub>\n", parts.join(" · "))
    }
}

/// Ends `out` with exactly one blank line.
fn blank(out: &mut String) {
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
}

/// The visible items of a part, then the line items, then how many are not shown.
fn push_items(out: &mut String, items: &[Item], more: &str) {
    for i in items.iter().filter(|i| i.level == Level::Full) {
        out.push_str(&i.full);
    }
    for i in items.iter().filter(|i| i.level == Level::Line) {
        out.push_str(&i.line);
    }
    let hidden = items.iter().filter(|i| i.level == Level::Hidden).count();
    if hidden == items.len() && !more.is_empty() {
        let _ = writeln!(out, "- (not listed here: {FULL_PLAN})");
    } else if hidden > 0 && !more.is_empty() {
        let _ = writeln!(out, "- … and {hidden} more {more} ({FULL_PLAN})");
    }
}

fn danger_line(c: &Change) -> String {
    let verb = if c.action == Action::Delete {
        "🗑️ **destroy**"
    } else {
        "♻️ **replace**"
    };
    let mut s = format!("- {verb} `{}`", c.address);
    if let Some(reason) = c.reason {
        let _ = write!(s, " — because {}", reason.describe());
    }
    if !c.replace_paths.is_empty() {
        let paths: Vec<String> = c
            .replace_paths
            .iter()
            .map(|p| format!("`{}`", p.join(".")))
            .collect();
        let _ = write!(s, " (forced by {})", paths.join(", "));
    }
    s.push('\n');
    s
}

/// [`danger_line`] without the reason: the action and the address.
fn compact_danger_line(c: &Change) -> String {
    let icon = if c.action == Action::Delete {
        "🗑️"
    } else {
        "♻️"
    };
    format!("- {icon} `{}`\n", c.address)
}

/// `body` in a ```` ```diff ```` fence, shortened at a line boundary past [`MAX_BODY`].
fn fenced(body: &str) -> (String, bool) {
    let mut text = body;
    let mut cut_lines = 0;
    if body.len() > MAX_BODY {
        let mut end = MAX_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        end = body[..end].rfind('\n').map_or(0, |i| i + 1);
        text = &body[..end];
        cut_lines = body[end..].lines().count();
    }
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = format!("{fence}diff\n{text}");
    if cut_lines > 0 {
        let _ = writeln!(out, "… {cut_lines} more lines not shown: {FULL_PLAN}");
    }
    let _ = writeln!(out, "{fence}");
    (out, cut_lines > 0)
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{OutputChange, Reason};
    use crate::render::Marker;
    use crate::render::fixtures::*;
    use serde_json::json;

    #[test]
    fn sample_plan_markdown() {
        insta::assert_snapshot!(render_markdown(&sample_plan()));
    }

    #[test]
    fn never_shows_secrets() {
        let md = render_markdown(&sample_plan());
        assert!(!md.contains(SECRET) && !md.contains(SECRET2), "{md}");
    }

    #[test]
    fn drift_comes_before_the_planned_changes() {
        let md = render_markdown(&sample_plan());
        let drift = md.find("### Changed outside weir (2)").unwrap();
        for changes in ["To destroy or replace", "Create (", "Update in place ("] {
            assert!(drift < md.find(changes).unwrap(), "{changes}:\n{md}");
        }
    }

    #[test]
    fn destroys_and_replaces_come_first_of_the_changes_and_unfolded() {
        let md = render_markdown(&sample_plan());
        let danger = md.find("To destroy or replace").unwrap();
        let listed = md.find("- 🗑️ **destroy**").unwrap();
        assert!(danger < listed);
        assert!(
            listed
                < md.find("<details><summary>Details of what will be destroyed")
                    .unwrap()
        );
        assert!(danger < md.find("Create (").unwrap());
        assert!(danger < md.find("Update in place (").unwrap());
        assert!(md.contains(
            "- 🗑️ **destroy** `mage_trigger.orders_old` — because it is no longer in the configuration\n"
        ));
        assert!(md.contains("- ♻️ **replace** `google_cloud_run_v2_job.highmem` — because an attribute that cannot be changed in place changed (forced by `location`)\n"));
    }

    /// 5,000 changes (with a huge code diff among them) still make a comment under the limit,
    /// the destroy/replace list whole, and a notice saying what was cut.
    #[test]
    fn five_thousand_changes_fit() {
        let mut plan = empty_plan();
        let code = |v: usize| {
            (0..20_000)
                .map(|i| format!("x_{i} = {}\n", i * v))
                .collect::<String>()
        };
        let mut huge = change(
            "mage_block.huge",
            Action::Update,
            Some(json!({"code": code(1)})),
            Some(json!({"code": code(2)})),
        );
        huge.notes.push("a very large change".into());
        plan.changes.push(huge);
        for i in 0..5_000 {
            let (action, before, after) = match i % 50 {
                0 => (Action::Delete, Some(json!({"n": i})), None),
                1 => (
                    Action::Replace,
                    Some(json!({"region": "us"})),
                    Some(json!({"region": "eu"})),
                ),
                2..=20 => (
                    Action::Update,
                    Some(json!({"n": i})),
                    Some(json!({"n": i + 1})),
                ),
                21..=25 => (Action::NoOp, Some(json!({"n": i})), Some(json!({"n": i}))),
                _ => (
                    Action::Create,
                    None,
                    Some(json!({"n": i, "code": "def f():\n    return 1\n"})),
                ),
            };
            let mut c = change(&format!("mage_block.b{i:04}"), action, before, after);
            if action == Action::Delete {
                c.reason = Some(Reason::DeleteBecauseNoResourceConfig);
            }
            if action == Action::Replace {
                c.replace_paths = vec![path("region")];
            }
            plan.changes.push(c);
        }
        let started = std::time::Instant::now();
        let md = render_markdown(&plan);
        assert!(
            started.elapsed().as_secs() < 20,
            "took {:?}",
            started.elapsed()
        );
        assert!(md.chars().count() < MAX_COMMENT_CHARS, "{}", md.len());
        assert!(md.starts_with("<!-- weir:plan deployment=prod -->\n### weir plan\n\n**Plan: 2400 to add, 1901 to change, 100 to replace, 100 to destroy.**"));
        for c in plan
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        {
            assert!(
                md.contains(&format!("`{}` — because", c.address))
                    || md.contains(&format!("`{}` (forced", c.address)),
                "{}",
                c.address
            );
        }
        assert!(md.contains("The full plan is in `weir show plan.weir`."));
        assert!(
            md.contains("the list of 500 unchanged resources"),
            "{}",
            &md[..2000]
        );
        assert!(
            md.contains("the details of 1901 updates"),
            "{}",
            &md[..2000]
        );
        // The fences and folds are balanced.
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count()
        );
        assert_eq!(md.matches("```").count() % 2, 0);
    }

    #[test]
    fn a_huge_code_diff_alone_is_shortened_not_dropped() {
        let mut plan = empty_plan();
        let code = |v: usize| {
            (0..20_000)
                .map(|i| format!("x_{i} = {}\n", i * v))
                .collect::<String>()
        };
        plan.changes.push(change(
            "mage_block.huge",
            Action::Update,
            Some(json!({"code": code(1)})),
            Some(json!({"code": code(2)})),
        ));
        let md = render_markdown(&plan);
        assert!(md.len() < MAX_COMMENT_CHARS);
        assert!(md.contains("<details><summary><code>mage_block.huge</code></summary>"));
        assert!(md.contains("!       code = <<-EOT"), "{}", &md[..3000]);
        assert!(
            md.contains("-           x_1 = 1\n-           x_2 = 2\n"),
            "{}",
            &md[..3000]
        );
        assert!(md.contains("more lines not shown: the full plan is in `weir show plan.weir`"));
        assert!(md.contains("Left out: the end of 1 long diff."));
    }

    #[test]
    fn too_many_destroys_lists_the_first_and_counts_the_rest() {
        let mut plan = empty_plan();
        for i in 0..5_000 {
            let mut c = change(
                &format!("mage_pipeline.a_rather_long_pipeline_name_{i:05}"),
                Action::Delete,
                Some(json!({"n": i})),
                None,
            );
            c.reason = Some(Reason::DeleteBecauseNoResourceConfig);
            plan.changes.push(c);
        }
        let md = render_markdown(&plan);
        assert!(md.len() < MAX_COMMENT_CHARS);
        assert!(md.contains("`mage_pipeline.a_rather_long_pipeline_name_00000`"));
        assert!(!md.contains("`mage_pipeline.a_rather_long_pipeline_name_04999`"));
        let more = md
            .lines()
            .find(|l| l.starts_with("- … and "))
            .expect("a count of the rest");
        assert!(
            more.ends_with(
                " more to destroy or replace (the full plan is in `weir show plan.weir`)"
            ),
            "{more}"
        );
        let shown = md
            .lines()
            .filter(|l| l.starts_with("- 🗑️ **destroy**"))
            .count();
        let hidden: usize = more["- … and ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown + hidden, 5_000);
    }

    #[test]
    fn cuts_least_important_first() {
        let plan = sample_plan();
        let whole = render_markdown(&plan);
        assert!(!whole.contains("[!NOTE]"));
        let has = |md: &str, address: &str| {
            md.contains(&format!("<summary><code>{address}</code></summary>"))
        };
        let mut seen_cuts = Vec::new();
        for limit in (1_500..whole.len()).rev().step_by(25) {
            let md = render_markdown_within(&plan, limit, View::default());
            assert!(md.len() <= limit, "{limit}: {}", md.len());
            assert!(
                md.contains("[!NOTE]") && md.contains("The full plan is in `weir show plan.weir`.")
            );
            // The destroy/replace list is never cut here.
            assert!(md.contains("- ♻️ **replace** `google_cloud_run_v2_job.highmem`"));
            assert!(md.contains("- 🗑️ **destroy** `mage_trigger.orders_old`"));
            let unchanged = md.contains("`google_storage_bucket.prod`");
            let updates = has(&md, "mage_pipeline.orders") || has(&md, "mage_notification.ops");
            let creates = has(&md, "google_cloud_run_v2_service.prod_web")
                || has(&md, "mage_block.orders_load");
            let cut = (unchanged, updates, creates);
            // Update details go only once the unchanged list is gone, create details only
            // once all update details are gone.
            if updates {
                assert!(!unchanged || limit == whole.len(), "{limit}");
            }
            if !creates || !has(&md, "mage_block.orders_load") {
                assert!(!updates, "{limit}");
            }
            if seen_cuts.last() != Some(&cut) {
                seen_cuts.push(cut);
            }
        }
        assert_eq!(seen_cuts.first(), Some(&(false, true, true)));
        assert!(seen_cuts.contains(&(false, false, true)));
        assert_eq!(seen_cuts.last(), Some(&(false, false, false)));
        // Once the details are gone, the addresses remain.
        let md = render_markdown_within(&plan, 2_500, View::default());
        assert!(md.contains("- `mage_pipeline.orders`\n"), "{md}");
    }

    #[test]
    fn the_first_line_is_the_marker_naming_the_deployment() {
        let mut plan = sample_plan();
        for view in [
            View::default(),
            View {
                compact: true,
                ..View::default()
            },
        ] {
            let md = render_markdown_view(&plan, view);
            assert_eq!(
                md.lines().next(),
                Some("<!-- weir:plan deployment=prod -->")
            );
            let drift = render_markdown_view(
                &plan,
                View {
                    marker: Marker::Drift,
                    ..view
                },
            );
            assert_eq!(
                drift.lines().next(),
                Some("<!-- weir:drift deployment=prod -->")
            );
            assert_eq!(drift.matches("weir:plan").count(), 0);
        }
        // A name that could end the comment or the line is percent-encoded.
        plan.deployment = Some("a b-->\n<x>.y_z%".into());
        assert_eq!(
            render_markdown(&plan).lines().next(),
            Some("<!-- weir:plan deployment=a%20b--%3E%0A%3Cx%3E.y_z%25 -->")
        );
    }

    /// A plan of 2,000 changes (with secrets among them) in compact Markdown: every address on
    /// a line of its own, grouped by action, no diffs and no secret, far under the limit.
    #[test]
    fn compact_markdown_of_two_thousand_changes_is_small_and_lists_every_address() {
        let mut plan = sample_plan();
        let secret = plan.clone();
        plan.changes.clear();
        for i in 0..2_000 {
            let action = [
                Action::Create,
                Action::Update,
                Action::Replace,
                Action::Delete,
            ][i % 4];
            let before = (action != Action::Create).then(|| json!({"code": format!("x = {i}\n")}));
            let after = (action != Action::Delete).then(|| json!({"code": format!("y = {i}\n")}));
            plan.changes.push(change(
                &format!("mage_block.b{i:04}"),
                action,
                before,
                after,
            ));
        }
        plan.changes.extend(secret.changes);
        let compact = View {
            compact: true,
            ..View::default()
        };
        let md = render_markdown_view(&plan, compact);
        assert!(md.len() < 52_000, "{}", md.len());
        assert!(!md.contains(SECRET) && !md.contains(SECRET2), "{md}");
        assert!(!md.contains("```") && !md.contains("<details>"), "{md}");
        assert!(!md.contains("[!NOTE]"), "nothing was cut:\n{md}");
        for c in plan.changes.iter().filter(|c| c.action.is_change()) {
            let line = md
                .lines()
                .find(|l| l.contains(&format!("`{}`", c.address)))
                .unwrap_or_else(|| panic!("{} is not listed", c.address));
            assert!(line.starts_with("- "), "{line}");
        }
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("### ")).collect();
        assert_eq!(
            headings,
            [
                "### weir plan",
                "### Changed outside weir (2)",
                "### ⚠️ To destroy or replace (1002)",
                "### ➕ Create (502)",
                "### 🔧 Update in place (502)",
            ]
        );
        // The whole plan of the same changes is cut down to the limit instead.
        assert!(render_markdown(&plan).contains("[!NOTE]"));
    }

    /// When even the compact list does not fit, it is cut as the whole plan is, and the notice
    /// names only what the compact view would have shown.
    #[test]
    fn compact_markdown_too_long_says_only_what_was_cut() {
        let mut plan = empty_plan();
        for i in 0..5_000 {
            plan.changes.push(change(
                &format!("mage_pipeline.a_rather_long_pipeline_name_{i:05}"),
                Action::Create,
                None,
                Some(json!({"n": i})),
            ));
        }
        let md = render_markdown_view(
            &plan,
            View {
                compact: true,
                ..View::default()
            },
        );
        assert!(md.len() < MAX_COMMENT_CHARS);
        assert!(
            md.contains("Left out: the addresses of "),
            "{}",
            &md[..1000]
        );
        assert!(!md.contains("the details of"), "{}", &md[..1000]);
    }

    #[test]
    fn no_changes() {
        let mut plan = empty_plan();
        plan.outputs.push(OutputChange {
            name: "x".into(),
            action: Action::NoOp,
            before: Some(json!(1)),
            after: Some(json!(1)),
            sensitive: false,
            unknown: false,
            from: None,
        });
        insta::assert_snapshot!(render_markdown(&plan), @r"
        <!-- weir:plan deployment=prod -->
        ### weir plan

        **No changes.** Your deployment matches the configuration.

        <sub>weir 0.1.0 · config `9f86d081884c` · commit `3b18e512dba7` · state `6f1c2f3e` serial 7</sub>
        ");
    }
}
