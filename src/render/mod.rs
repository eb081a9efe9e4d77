//! Placeholder until the renderers land: JSON only.
use crate::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

pub fn render(plan: &Plan, _format: Format, _color: bool) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_default();
    s.push('\n');
    s.push_str(&plan.summary().to_string());
    s.push('\n');
    s
}
