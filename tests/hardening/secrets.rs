//! Hardening tests: see `tests/hardening.rs`.

#[allow(unused_imports)]
use crate::cli;
