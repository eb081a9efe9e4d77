//! What the engine tells every provider before it reads or changes anything
//! ([`Provider::configure`](crate::Provider::configure)): the state it works for, where the
//! deployment lives, how to find credentials and which endpoints to call. The engine builds it
//! from the configuration and the environment; a provider takes what concerns it and ignores
//! the rest. It holds no secret (credentials are named by where they are, never by value), so
//! it can be logged or saved.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The configuration of a provider for one run of weir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// The lineage of the weir state the provider works for, `None` while no state exists. A
    /// provider that records on the target which state owns an object uses it to refuse objects
    /// another state owns.
    pub state_lineage: Option<String>,
    /// The cloud project of the deployment (`deployment { project = ... }`).
    pub project: Option<String>,
    /// The cloud region of the deployment (`deployment { region = ... }`).
    pub region: Option<String>,
    /// Where credentials come from. Finding none is an error only when a call needs them: a
    /// plan with no prior state makes no call.
    pub credentials: CredentialsSource,
    /// Endpoints that replace the real APIs (a sandbox or an emulator).
    pub endpoints: Endpoints,
}

/// Where a provider finds its credentials (never the credentials themselves): for Google, the
/// places of Application Default Credentials, looked at in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsSource {
    /// A credentials file named by the environment (`GOOGLE_APPLICATION_CREDENTIALS`): a
    /// service account key, user credentials or an `external_account` configuration. When set,
    /// it is the only place looked at.
    pub file: Option<PathBuf>,
    /// gcloud's application default credentials file (written by `gcloud auth
    /// application-default login`), `None` when there is no home directory to find it in.
    pub gcloud_file: Option<PathBuf>,
    /// The metadata server's `host[:port]` when `GCE_METADATA_HOST` names one other than
    /// Google Cloud's own.
    pub metadata_host: Option<String>,
}

/// Endpoint overrides, as base URLs (`http://127.0.0.1:8080`, no trailing slash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Every Google API except Cloud Storage (`WEIR_GOOGLE_ENDPOINT`).
    pub google: Option<String>,
    /// The Cloud Storage JSON API (`STORAGE_EMULATOR_HOST`, the convention of Google's client
    /// libraries).
    pub storage: Option<String>,
}
