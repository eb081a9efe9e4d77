//! Regression tests for weir's promises: nothing written outside the project, saved plans that
//! cannot be tampered with, no secret in any output, no lost update, no panic on any input.
//! Each module holds the tests of one area; every test failed before its fix.
//!
//! | module | what it holds |
//! |---|---|
//! | `files` | symlinks, FIFOs, `project_dir`, ownership across states, crash leftovers |
//! | `plans` | saved-plan integrity, the lock held from plan to apply, concurrent applies |
//! | `secrets` | sensitivity through functions and operators, files and state without secrets |
//! | `robustness` | no panic, no stack overflow, no quadratic blow-up; exit codes for CI |
//! | `checks` | what `validate` catches before `plan` or apply would |
//! | `review` | what a reviewer sees in a plan |
//! | `docs` | `fmt`, warnings for targets this build cannot plan |

#[path = "support/cli.rs"]
mod cli;

#[path = "hardening/checks.rs"]
mod checks;
#[path = "hardening/docs.rs"]
mod docs;
#[path = "hardening/files.rs"]
mod files;
#[path = "hardening/plans.rs"]
mod plans;
#[path = "hardening/review.rs"]
mod review;
#[path = "hardening/robustness.rs"]
mod robustness;
#[path = "hardening/secrets.rs"]
mod secrets;
