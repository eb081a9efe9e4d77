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
//! apply). It applies Cloud Run jobs and services ([`run_job`]), enabled APIs
//! ([`service_usage`]), Secret Manager secrets and versions ([`secret`]), Cloud SQL
//! instances, databases and users ([`sql`]), service accounts ([`iam`]), IAM members
//! ([`policy_member`]), Compute Engine VMs ([`compute`]) and Cloud Storage buckets
//! ([`bucket`]), each type by the module [`applier`] names: to Google itself, with tokens
//! from Application Default Credentials ([`auth`]), or to the endpoints set by
//! `WEIR_GOOGLE_ENDPOINT` (the sandbox) and `STORAGE_EMULATOR_HOST`, which need no
//! credentials.

mod auth;
mod bucket;
mod compute;
pub mod cost;
mod iam;
mod normalize;
mod ownership;
mod policy_member;
mod rest;
mod run_job;
mod schemas;
mod secret;
mod service_usage;
mod sql;

pub use normalize::{cpu_quantity, memory_quantity};
pub use schemas::types;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use weir_provider_sdk::{
    Cancel, PlannedValue, Provider, ProviderConfig, ProviderError, ResourceRef, ResourceSchema,
};

/// The provider's name, as recorded in state.
pub const NAME: &str = "google";

/// How many objects are read at once.
const READ_PARALLELISM: usize = 8;

pub struct GoogleProvider {
    /// The configuration of this run (project, region, credentials, endpoints).
    config: Mutex<Option<ProviderConfig>>,
    /// The client of this run, made by [`Provider::configure`], or why it could not be made.
    client: Mutex<Option<Result<rest::Client, ProviderError>>>,
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
            client: Mutex::new(None),
        }
    }

    /// The configuration given by the last [`Provider::configure`].
    pub fn config(&self) -> Option<ProviderConfig> {
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The client for a call on `r` and the module that applies its type, or why there is
    /// none: the provider was not configured or could not make its HTTP client, or the type is
    /// one this build does not apply.
    fn client_for(
        &self,
        what: &str,
        r: &ResourceRef,
    ) -> Result<(rest::Client, &'static dyn Applier), ProviderError> {
        let cannot = |e: ProviderError| ProviderError {
            message: format!("{}: cannot {what} it: {}", r.address, e.message),
            ..e
        };
        let client = match self.client.lock().ok().and_then(|c| c.clone()) {
            Some(client) => client.map_err(cannot)?,
            None => return Err(cannot(ProviderError::permanent(rest::NO_AUTH))),
        };
        let Some(applier) = applier(&r.type_name) else {
            // A type recorded in state by another build of weir.
            return Err(ProviderError::permanent(format!(
                "{}: cannot {what} it: this build of weir has no resource type `{}`",
                r.address, r.type_name
            ))
            .with_help("use the weir that wrote this state, or remove the resource from state"));
        };
        Ok((client, applier))
    }
}

/// How one resource type is created, read, updated and deleted over REST.
#[async_trait]
pub(crate) trait Applier: Sync {
    /// The live object in the shape of `r`'s attributes; `None` when it is gone.
    async fn read(
        &self,
        client: &rest::Client,
        r: &ResourceRef,
    ) -> Result<Option<Value>, ProviderError>;
    async fn create(
        &self,
        client: &rest::Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError>;
    /// Brings the object to `r`'s attributes in place. By default, for a type that cannot
    /// change in place (its schema replaces it on every change, so the engine never asks): an
    /// error saying why ([`Applier::unchangeable`]).
    async fn update(
        &self,
        _client: &rest::Client,
        _prior: &Value,
        r: &ResourceRef,
        _cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        Err(ProviderError::permanent(format!(
            "{}: {}",
            r.address,
            self.unchangeable()
        )))
    }
    /// Why an object of this type cannot change in place, for the default [`Applier::update`].
    fn unchangeable(&self) -> &'static str {
        "this resource cannot change in place; a change replaces it"
    }
    async fn delete(
        &self,
        client: &rest::Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError>;
}

/// The module that applies `type_name`: adding a type is its schema, one module and one line
/// here (a test holds every schema to having one).
fn applier(type_name: &str) -> Option<&'static dyn Applier> {
    match type_name {
        types::CLOUD_RUN_JOB => Some(&run_job::JOB),
        types::SECRET => Some(&secret::Secret),
        types::SECRET_VERSION => Some(&secret::SecretVersion),
        types::SQL_INSTANCE => Some(&sql::SqlInstance),
        types::SQL_DATABASE => Some(&sql::SqlDatabase),
        types::SQL_USER => Some(&sql::SqlUser),
        types::CLOUD_RUN_SERVICE => Some(&run_job::SERVICE),
        types::PROJECT_SERVICE => Some(&service_usage::ProjectService),
        types::SERVICE_ACCOUNT => Some(&iam::ServiceAccount),
        types::PROJECT_IAM_MEMBER
        | types::SERVICE_ACCOUNT_IAM_MEMBER
        | types::SECRET_IAM_MEMBER
        | types::STORAGE_BUCKET_IAM_MEMBER => Some(&policy_member::PolicyMember),
        types::COMPUTE_INSTANCE => Some(&compute::Instance),
        types::STORAGE_BUCKET => Some(&bucket::Bucket),
        _ => None,
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
        // Credentials are looked up at the first call to Google itself, not here: a plan with
        // no prior state makes no call, and needs none. With every API sent to a sandbox or an
        // emulator, no call ever goes to Google, and nothing is looked up at all.
        let endpoints = &config.endpoints;
        let tokens: Option<Arc<dyn rest::Tokens>> =
            match endpoints.google.is_some() && endpoints.storage.is_some() {
                true => None,
                false => Some(Arc::new(auth::Adc::new(config.credentials.clone()))),
            };
        // Kept, not returned, when it fails: only a call needs the client.
        let client = rest::Client::new(endpoints, tokens);
        if let Ok(mut c) = self.client.lock() {
            *c = Some(client);
        }
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

    fn idle_cost(&self, resources: &[ResourceRef]) -> Option<weir_provider_sdk::IdleCost> {
        cost::idle_cost(resources)
    }

    fn prices(&self, type_name: &str) -> bool {
        cost::PRICED.contains(&type_name)
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
        let calls: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let applied = self.client_for("read", r);
                let r = r.clone();
                async move {
                    let read = match applied {
                        Ok((client, applier)) => applier.read(&client, &r).await,
                        Err(e) => Err(e),
                    };
                    (i, read)
                }
            })
            .collect();
        // In the order they finish, so that one slow read does not hold the next ones back;
        // put back in the order asked for.
        let mut done: Vec<(usize, Result<Option<Value>, ProviderError>)> =
            futures_util::stream::iter(calls)
                .buffer_unordered(READ_PARALLELISM)
                .collect()
                .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, read)| read).collect()
    }

    async fn create(
        &self,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let (client, applier) = self.client_for("create", resource)?;
        applier.create(&client, resource, cancel).await
    }

    async fn update(
        &self,
        prior: &Value,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let (client, applier) = self.client_for("update", resource)?;
        applier.update(&client, prior, resource, cancel).await
    }

    async fn delete(&self, resource: &ResourceRef, cancel: &Cancel) -> Result<(), ProviderError> {
        let (client, applier) = self.client_for("delete", resource)?;
        applier.delete(&client, resource, cancel).await
    }
}

/// Authentication headers from Application Default Credentials, for the calls to Google that
/// weir makes outside this provider (the gcs state backend). The returned function serves one
/// async runtime, as [`auth::Adc`] explains.
pub fn adc_headers(
    source: weir_provider_sdk::CredentialsSource,
) -> impl Fn() -> futures_util::future::BoxFuture<
    'static,
    Result<reqwest::header::HeaderMap, ProviderError>,
> + Send
+ Sync {
    auth::install_crypto_provider();
    let adc = Arc::new(auth::Adc::new(source));
    move || {
        let adc = adc.clone();
        Box::pin(async move { rest::Tokens::headers(&*adc).await })
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

    fn bucket() -> ResourceRef {
        ResourceRef {
            address: "google_storage_bucket.prod".into(),
            type_name: types::STORAGE_BUCKET.into(),
            attributes: json!({"name": "b"}),
            sensitive_paths: Vec::new(),
        }
    }

    /// Every kind of call on `r`, each refused.
    fn refusals(p: &GoogleProvider, r: &ResourceRef) -> Vec<ProviderError> {
        let cancel = Cancel::new();
        vec![
            block_on(p.create(r, &cancel)).unwrap_err(),
            block_on(p.update(&json!({}), r, &cancel)).unwrap_err(),
            block_on(p.delete(r, &cancel)).unwrap_err(),
            block_on(p.read(std::slice::from_ref(r)))
                .remove(0)
                .unwrap_err(),
        ]
    }

    #[test]
    fn an_unconfigured_provider_refuses_every_call_as_permanent() {
        for e in refusals(&GoogleProvider::new(), &bucket()) {
            assert_eq!(e.kind, ErrorKind::Permanent);
            assert!(e.message.contains(rest::NO_AUTH), "{e}");
            assert!(e.message.starts_with("google_storage_bucket.prod"), "{e}");
        }
    }

    #[test]
    fn a_type_this_build_does_not_know_is_refused_before_any_credentials_are_needed() {
        let p = GoogleProvider::new();
        block_on(p.configure(&ProviderConfig::default())).unwrap();
        let unknown = ResourceRef {
            type_name: "google_compute_network".into(),
            ..bucket()
        };
        for e in refusals(&p, &unknown) {
            assert_eq!(e.kind, ErrorKind::Permanent);
            assert!(
                e.message
                    .contains("has no resource type `google_compute_network`"),
                "{e}"
            );
        }
    }

    #[test]
    fn every_type_with_a_schema_is_applied() {
        for schema in schemas::all() {
            assert!(
                applier(&schema.type_name).is_some(),
                "{} has a schema but no module applies it",
                schema.type_name
            );
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
