//! weir's Google Cloud provider.
//!
//! Each resource's attributes are the JSON body of the Google API that manages it, with the
//! field names and shapes the API documents (camelCase, int64 values as strings), plus the few
//! path parameters the API takes outside the body (`project`, `location`, `zone`, …). So the
//! provider can send what it is given as it is, and compare what it reads back field by field.
//!
//! This build can plan: it knows every type's schema (what replaces, what the API computes,
//! what is secret) and normalises desired values the way the API will store them (defaults it
//! fills in, quantities such as `2048Mi` written as `2Gi`, output-only fields known only after
//! apply). It cannot call Google Cloud yet: reading, creating, updating and deleting refuse with
//! a permanent error, so that nothing pretends to have happened.

pub mod cost;
mod normalize;
mod schemas;

pub use normalize::{cpu_quantity, memory_quantity};
pub use schemas::types;

use async_trait::async_trait;
use serde_json::Value;
use std::sync::Mutex;
use weir_provider_sdk::{
    Cancel, PlannedValue, Provider, ProviderConfig, ProviderError, ResourceRef, ResourceSchema,
};

/// The provider's name, as recorded in state.
pub const NAME: &str = "google";

/// What every call to Google answers in this build.
const NO_API_CALLS: &str = "this build of weir cannot call Google Cloud yet";

pub struct GoogleProvider {
    /// The configuration of this run (project, region, credentials, endpoints): kept for the
    /// calls a later build makes.
    config: Mutex<Option<ProviderConfig>>,
}

impl Default for GoogleProvider {
    fn default() -> Self {
        GoogleProvider::new()
    }
}

impl GoogleProvider {
    pub fn new() -> Self {
        GoogleProvider {
            config: Mutex::new(None),
        }
    }

    /// The configuration given by the last [`Provider::configure`].
    pub fn config(&self) -> Option<ProviderConfig> {
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn refuse(what: &str, address: &str) -> ProviderError {
        ProviderError::permanent(format!("{address}: cannot {what} it: {NO_API_CALLS}"))
            .with_help("`weir plan` shows what a gcp deployment needs; applying it is not possible with this build")
    }
}

#[async_trait]
impl Provider for GoogleProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn schemas(&self) -> Vec<ResourceSchema> {
        schemas::all()
    }

    async fn configure(&self, config: &ProviderConfig) -> Result<(), ProviderError> {
        // Credentials are looked for only when a call needs them: a plan with no prior state
        // makes none.
        if let Ok(mut c) = self.config.lock() {
            *c = Some(config.clone());
        }
        Ok(())
    }

    fn plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        normalize::plan(type_name, prior, desired)
    }

    fn delete_notes(&self, type_name: &str) -> Vec<String> {
        match type_name {
            types::PROJECT_SERVICE => {
                vec!["the API stays enabled: other things in the project may use it".to_string()]
            }
            _ => Vec::new(),
        }
    }

    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
        resources
            .iter()
            .map(|r| Err(GoogleProvider::refuse("read", &r.address)))
            .collect()
    }

    async fn create(
        &self,
        resource: &ResourceRef,
        _cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        Err(GoogleProvider::refuse("create", &resource.address))
    }

    async fn update(
        &self,
        _prior: &Value,
        resource: &ResourceRef,
        _cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        Err(GoogleProvider::refuse("update", &resource.address))
    }

    async fn delete(&self, resource: &ResourceRef, _cancel: &Cancel) -> Result<(), ProviderError> {
        Err(GoogleProvider::refuse("delete", &resource.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_provider_sdk::ErrorKind;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The provider awaits nothing: one poll finishes every call.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the provider awaited something"),
        }
    }

    #[test]
    fn every_call_to_google_is_refused_as_permanent() {
        let p = GoogleProvider::new();
        let r = ResourceRef {
            address: "google_storage_bucket.prod".into(),
            type_name: types::STORAGE_BUCKET.into(),
            attributes: json!({"name": "b"}),
            sensitive_paths: Vec::new(),
        };
        let cancel = Cancel::new();
        let errors = [
            block_on(p.create(&r, &cancel)).unwrap_err(),
            block_on(p.update(&json!({}), &r, &cancel)).unwrap_err(),
            block_on(p.delete(&r, &cancel)).unwrap_err(),
            block_on(p.read(std::slice::from_ref(&r)))
                .remove(0)
                .unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind, ErrorKind::Permanent);
            assert!(e.message.contains("cannot call Google Cloud yet"), "{e}");
            assert!(e.message.starts_with("google_storage_bucket.prod"), "{e}");
        }
    }

    #[test]
    fn configure_keeps_the_configuration_and_needs_no_credentials() {
        let p = GoogleProvider::new();
        let config = ProviderConfig {
            project: Some("acme".into()),
            ..Default::default()
        };
        block_on(p.configure(&config)).unwrap();
        assert_eq!(p.config(), Some(config));
    }
}
