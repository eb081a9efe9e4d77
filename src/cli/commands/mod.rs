//! One module per command.

pub mod apply;
pub mod fmt;
pub mod plan;
pub mod rollback;
pub mod show;
pub mod state;
pub mod validate;
