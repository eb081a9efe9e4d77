//! weir: plan and apply Mage data pipelines and the Google Cloud infrastructure they run on,
//! from one HCL configuration.
//!
//! Data flows one way, one stage per module:
//! [`config`] (parse, evaluate) → [`model`] (typed, validated) → `lower` (resource instances)
//! → `graph` → `plan` → `apply` → `state`. [`cli`] is a thin layer over them.

pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod format;
pub mod model;
pub mod redact;
