//! weir: plan and apply Mage data pipelines and the Google Cloud infrastructure they run on,
//! from one HCL configuration.
//!
//! Data flows one way, one stage per module:
//! [`config`] (parse, evaluate) → [`model`] (typed, validated) → `lower` (resource instances)
//! → `graph` → `plan` → `apply` → `state`. [`cli`] is a thin layer over them.

pub mod apply;
pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod format;
pub mod graph;
pub mod lower;
pub mod model;
pub mod plan;
pub mod providers;
pub mod redact;
pub mod render;
pub mod state;
