//! The planned change of one resource instance, and drift found while refreshing.

use super::action::Action;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_provider_sdk::AttrPath;

/// Why an action was chosen, in Terraform's vocabulary where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An attribute that cannot change in place changed.
    ReplaceBecauseCannotUpdate,
    /// `--replace ADDR`.
    ReplaceByRequest,
    /// What the resource lives in (its instance, secret, bucket) is replaced, and the new one
    /// starts without it. (Terraform's name for a replacement another resource triggers.)
    ReplaceByTriggers,
    /// The resource is no longer in the configuration.
    DeleteBecauseNoResourceConfig,
    /// `weir destroy` or `weir plan --destroy`: everything goes, declared or not. (Terraform
    /// gives no reason then; policy tools treat a reason they do not know as none.)
    DeleteBecauseDestroyRequested,
    /// The object was deleted outside weir; it is created again.
    CreateBecauseDeletedOutside,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::ReplaceBecauseCannotUpdate => {
                "an attribute that cannot be changed in place changed"
            }
            Reason::ReplaceByRequest => "replacement was requested with --replace",
            Reason::ReplaceByTriggers => "what it lives in is replaced",
            Reason::DeleteBecauseNoResourceConfig => "it is no longer in the configuration",
            Reason::DeleteBecauseDestroyRequested => "destroy was requested",
            Reason::CreateBecauseDeletedOutside => "it was deleted outside weir",
        }
    }
}

/// One resource instance's change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub address: String,
    pub type_name: String,
    pub name: String,
    pub provider: String,
    pub action: Action,
    /// The object as it is now (refreshed), `None` when it does not exist.
    pub before: Option<Value>,
    /// The object as it will be, `None` when it is deleted. Sensitive values are present in
    /// memory and replaced before the plan is saved or rendered.
    pub after: Option<Value>,
    /// Paths in `after` only known after apply.
    #[serde(default)]
    pub after_unknown: Vec<AttrPath>,
    /// Paths whose change forces the replacement.
    #[serde(default)]
    pub replace_paths: Vec<AttrPath>,
    #[serde(default)]
    pub before_sensitive: Vec<AttrPath>,
    #[serde(default)]
    pub after_sensitive: Vec<AttrPath>,
    pub reason: Option<Reason>,
    /// What the plan should say about this change (from the provider or the planner).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Direct dependencies (addresses), in the configuration for create/update/replace, in state
    /// for deletes.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// The configuration's `lifecycle { prevent_destroy }` for this resource. Apply records it in
    /// state, so that the resource stays protected once its configuration is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// State records another `prevent_destroy` than the configuration's: applying the plan
    /// records the new one, even when the resource itself does not change (a no-op).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lifecycle_changed: bool,
}

impl Change {
    /// Whether applying this change writes anything: an operation on the resource, or only
    /// the new `prevent_destroy` in state.
    pub fn changes_state(&self) -> bool {
        self.action.is_change() || self.lifecycle_changed
    }
}

/// An object that changed outside weir since the last apply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Drift {
    pub address: String,
    pub type_name: String,
    pub name: String,
    pub provider: String,
    /// As recorded in state.
    pub before: Value,
    /// As found now; `None` when it was deleted.
    pub after: Option<Value>,
    #[serde(default)]
    pub sensitive: Vec<AttrPath>,
}
