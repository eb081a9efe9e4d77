//! The fourth stage: compare what the configuration wants with what exists, and say what will
//! change. A [`Plan`] is a value; the renderers print it, `apply` executes it, `file` saves it.

pub mod action;
pub mod change;
pub mod file;
// One concept per file, as in Terraform's internal/plans: the plan itself lives in plan.rs.
#[allow(clippy::module_inception)]
mod plan;
pub mod planner;
pub mod sensitive;

pub use action::Action;
pub use change::{Change, Drift, Reason};
pub use plan::{OutputChange, Plan, Summary};
