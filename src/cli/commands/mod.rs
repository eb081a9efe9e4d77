//! One module per command.

pub mod fmt;
pub mod validate;
