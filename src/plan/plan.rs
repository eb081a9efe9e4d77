//! The plan: every change, the drift found, outputs, and what it is bound to.

use super::action::Action;
use super::change::{Change, Drift};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A planned output value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputChange {
    pub name: String,
    pub action: Action,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub sensitive: bool,
    pub unknown: bool,
    /// Where apply reads the value when it is only known after apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<crate::model::OutputSource>,
}

/// Counts by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.add + self.change + self.replace + self.destroy
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan: {} to add, {} to change, {} to replace, {} to destroy.",
            self.add, self.change, self.replace, self.destroy
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// The weir that made the plan.
    pub weir_version: String,
    /// The state the plan was made against: `None` when there was no state yet.
    pub lineage: Option<String>,
    pub serial: Option<u64>,
    /// A hash of the configuration and its inputs.
    pub config_hash: String,
    /// The git commit of the configuration directory, when it is in a git repository.
    pub git_commit: Option<String>,
    /// Whether this is a plan to destroy everything.
    pub destroy: bool,
    /// When the plan was made (RFC 3339).
    pub created_at: String,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    pub outputs: Vec<OutputChange>,
    /// Plan-wide notes (e.g. next run times of changed schedules, Mage version notes).
    pub notes: Vec<String>,
    /// The deployment's estimated monthly cost when idle, before and after the plan (also
    /// told in `notes`), when a provider prices its resources.
    #[serde(default)]
    pub idle_cost: Option<weir_provider_sdk::IdleCostChange>,
    /// The name of the deployment the plan is for, which the Markdown plan's first line
    /// names so that CI finds the one comment (or issue) to update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    /// Whether applying the plan would change anything (resources or outputs).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(Change::changes_state)
            || self.outputs.iter().any(|o| o.action.is_change())
    }

    pub fn change(&self, address: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.address == address)
    }
}
