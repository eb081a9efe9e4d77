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
//! - [`run_jobs`]: Cloud Run v2 jobs and services and their operations, kept in memory;
//! - [`executions`]: Cloud Run job executions, optionally run as local processes;
//! - [`processes`]: containers started as local processes, with the image's stand-in;
//! - [`service_usage`]: the APIs enabled in a project (Service Usage v1), kept in memory;
//! - [`secrets`]: Secret Manager v1 secrets and their versions, kept in memory;
//! - [`sql`]: Cloud SQL Admin v1 instances, databases, users and operations, kept in memory;
//! - [`iam`]: IAM v1 service accounts, and [`policies`]: the IAM policies of service accounts,
//!   projects and secrets, kept in memory;
//! - [`compute`]: Compute Engine v1 instances and their zone operations, kept in memory;
//! - [`storage`]: the Cloud Storage front, forwarding to a storage emulator and serving what it lacks.

pub mod compute;
pub mod discovery;
pub mod executions;
pub mod iam;
pub mod policies;
pub mod processes;
pub mod record;
pub mod run_jobs;
pub mod secrets;
pub mod server;
pub mod service_usage;
pub mod sql;
pub mod storage;
pub mod validate;

pub use discovery::{Catalog, Document, LoadError};
pub use validate::{Accepted, FieldViolation, GoogleError, Request};

#[cfg(test)]
mod tests;
