//! weir's sandbox: a local stand-in for the Google Cloud REST APIs weir calls, held to Google's
//! own discovery documents (the REST contracts that `google-api-python-client` ships).
//!
//! This crate holds its foundation, usable as a library from tests:
//! - [`discovery`]: loads the documents and resolves their methods into routes;
//! - [`validate`]: checks a request (method, path, query parameters, JSON body) and a response
//!   against them, refusing the way Google does (400 `INVALID_ARGUMENT`);
//! - [`record`]: the JSON-lines record of exchanges, and its validation against the documents;
//! - [`server`]: the HTTP front (also the `weir-sandbox` binary), which holds every request to
//!   the documents and records it;
//! - [`run_jobs`]: Cloud Run v2 jobs and their operations, kept in memory;
//! - [`secrets`]: Secret Manager v1 secrets and their versions, kept in memory;
//! - [`storage`]: the Cloud Storage front, forwarding to a storage emulator and serving what it lacks.

pub mod discovery;
pub mod record;
pub mod run_jobs;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod validate;

pub use discovery::{Catalog, Document, LoadError};
pub use validate::{Accepted, FieldViolation, GoogleError, Request};

#[cfg(test)]
mod tests;
