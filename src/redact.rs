//! Keeps secrets out of everything weir prints or saves.
//!
//! Values marked sensitive are replaced by `(sensitive)` where they are rendered: the marks
//! follow each value from the configuration (`config::eval`) through the model and lowering to
//! the sensitive paths of a plan, and an error about a sensitive value never quotes it. As a
//! second line of defence, the values of sensitive variables and locals, and those found at the
//! sensitive paths of a plan, are registered here, and text that leaves weir (diagnostics, error
//! messages, logs, rendered plans) is scrubbed of them.

use std::collections::BTreeSet;

/// What sensitive values look like in output.
pub const SENSITIVE: &str = "(sensitive)";

/// Shorter strings are not scrubbed from text (see [`Redactor::add_value`]).
const MIN_CHARS: usize = 4;

/// The secrets known in this run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    // Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every string inside `value` as a secret. Very short strings (under four
    /// characters) are skipped: replacing them everywhere would garble output without
    /// protecting anything worth protecting.
    pub fn add_value(&mut self, value: &serde_json::Value) {
        self.add_value_of_length(value, MIN_CHARS);
    }

    /// Like [`Redactor::add_value`], for strings of at least `min_chars` characters only.
    pub fn add_value_of_length(&mut self, value: &serde_json::Value, min_chars: usize) {
        let mut found = BTreeSet::new();
        collect_strings(value, &mut found);
        for s in found.iter().filter(|s| s.chars().count() >= min_chars) {
            self.add(s);
        }
    }

    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() < MIN_CHARS || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), SENSITIVE);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Number(n) => {
            out.insert(n.to_string());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_longest_secret_first() {
        let mut r = Redactor::new();
        r.add("hunter2");
        r.add("hunter2-extra");
        r.add("ab");
        assert_eq!(
            r.redact("x hunter2-extra y hunter2 ab"),
            "x (sensitive) y (sensitive) ab"
        );
    }
}
