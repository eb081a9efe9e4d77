//! Service Usage v1 (`google_project_service`): an API enabled in a project.
//!
//! The attributes are `project` and `service` (the API's host name, e.g. `run.googleapis.com`),
//! both path parameters. Enabling is idempotent (enabling an enabled API is a no-op that
//! Google answers with a finished operation), so create needs no adoption: a state that was
//! lost simply enables it again. Deleting does not disable the API: other things in the
//! project may use it (the provider's delete notes say so in the plan), so weir only forgets it.

use reqwest::Method;
use serde_json::{Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ProviderError, ResourceRef};

use crate::rest::{Api, Client, at, segment, settled};

/// Applies `google_project_service`.
pub(crate) struct ProjectService;

/// `/v1/projects/<p>/services/<s>`, from `r`'s attributes checked as path segments.
fn path(r: &ResourceRef) -> Result<String, ProviderError> {
    Ok(format!(
        "/v1/projects/{}/services/{}",
        segment(r, "project", "Google")?,
        segment(r, "service", "Google")?
    ))
}

/// `r`'s attributes when the API at `path` (`r`'s, checked) is `ENABLED`; `None` when it is
/// disabled or unknown. Errors do not name `r`.
async fn enabled(
    client: &Client,
    r: &ResourceRef,
    path: &str,
    cancel: &Cancel,
) -> Result<Option<Value>, ProviderError> {
    let got = client.get(Api::ServiceUsage, path, &[], cancel).await;
    match got {
        Ok(Some(live)) if live.get("state").and_then(Value::as_str) == Some("ENABLED") => {
            // The API names the project by number: keep the attributes as weir wrote them.
            Ok(Some(json!({
                "project": r.attributes.get("project"),
                "service": r.attributes.get("service"),
            })))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Enables the API and waits for it. When the wait fails or stops but the API is enabled,
/// the error carries the attributes, so that it is recorded.
async fn enable(client: &Client, r: &ResourceRef, cancel: &Cancel) -> Result<Value, ProviderError> {
    let path = path(r)?;
    let op = client
        .call(
            Api::ServiceUsage,
            Method::POST,
            &format!("{path}:enable"),
            &[],
            Some(&json!({})),
            Idempotency::Idempotent,
            cancel,
        )
        .await
        .map_err(|e| at(r, e))?;
    let waited = client.wait(Api::ServiceUsage, op, cancel).await;
    // Read even when cancelled: one short call, so that what exists gets recorded.
    let live = enabled(client, r, &path, &Cancel::new()).await;
    settled(r, waited, live, || {
        format!(
            "the operation enabling {} finished but the API is not enabled",
            r.attributes["service"]
        )
    })
}

#[async_trait::async_trait]
impl crate::Applier for ProjectService {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        enabled(client, r, &path(r)?, &Cancel::new())
            .await
            .map_err(|e| at(r, e))
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        enable(client, r, cancel).await
    }

    /// Every attribute replaces (see the schema), so an update only makes sure it is enabled.
    async fn update(
        &self,
        client: &Client,
        _prior: &Value,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        enable(client, r, cancel).await
    }

    /// Forgets the API and leaves it enabled (no call is made).
    async fn delete(
        &self,
        _client: &Client,
        r: &ResourceRef,
        _cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        // Still refuse what could never have been applied, so bad state is not silently dropped.
        path(r).map(|_| ())
    }
}
