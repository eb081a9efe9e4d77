//! weir: plan and apply Mage data pipelines and the Google Cloud infrastructure they run on,
//! from one HCL configuration.
//!
//! Data flows one way, one stage per module:
//! [`config`] (parse, evaluate) → [`model`] (typed, validated) → `lower` (resource instances)
//! → `graph` → `plan` → `apply` → `state`. [`cli`] is a thin layer over them.

// std's `eprintln!` and `eprint!` panic when stderr is a closed pipe (`weir apply 2>&1 | head`),
// which would stop an apply halfway with exit 101. Defined before the modules, these shadow
// them in the whole crate: a line that cannot be written is dropped, and the command goes on
// to its own exit code.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

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
pub mod release;
pub mod render;
pub mod state;
