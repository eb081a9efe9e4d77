//! The fourth stage: compare what the configuration wants with what exists, and say what will
//! change. A [`Plan`] is a value; the renderers print it, `apply` executes it, `file` saves it.

pub mod action;
pub mod change;
pub mod file;
mod plan;
pub mod planner;
pub mod sensitive;

pub use action::Action;
pub use change::{Change, Drift, Reason};
pub use plan::{OutputChange, Plan, Summary};
