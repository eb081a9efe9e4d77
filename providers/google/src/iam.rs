//! IAM v1 service accounts (`google_service_account`): create, read, update, delete.
//!
//! The attributes are `project` and `accountId` (the API's path and create parameters), the
//! account's `displayName` and `description`, and the output-only `uniqueId` and `email`
//! (`<accountId>@<project>.iam.gserviceaccount.com`, known at plan). The API answers every call
//! synchronously.
//!
//! A service account has no labels. What marks one as weir's is its `description`, which the
//! lowering writes as `managed-by=weir weir-deployment=<deployment>` (the same words as the
//! labels of the other types): a create that meets an existing account (409) adopts it only
//! when its description says it is weir's for the same deployment, and refuses it otherwise.

use reqwest::Method;
use serde_json::{Map, Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::rest::{Api, Client, at, is_segment};
use crate::run_job::project;

/// The fields of a service account that weir writes and the API changes in place.
const WRITTEN: &[&str] = &["displayName", "description"];

/// Applies `google_service_account`.
pub(crate) struct ServiceAccount;

/// The domain of a project's service account emails.
pub(crate) fn email(account_id: &str, project: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

/// The deployment a description written by weir names (`managed-by=weir
/// weir-deployment=<name>`), if it is one.
fn weirs_deployment(description: Option<&str>) -> Option<&str> {
    let words: Vec<&str> = description?.split_whitespace().collect();
    if !words.contains(&"managed-by=weir") {
        return None;
    }
    words
        .iter()
        .find_map(|w| w.strip_prefix("weir-deployment="))
        .filter(|d| !d.is_empty())
}

/// Where an account lives: its project and its full name
/// (`projects/<p>/serviceAccounts/<email>`).
struct AccountName {
    project: String,
    account_id: String,
}

impl AccountName {
    fn of(r: &ResourceRef) -> Result<AccountName, ProviderError> {
        let part = |key: &str, ok: fn(char) -> bool| -> Result<String, ProviderError> {
            let value = r.attributes.get(key).and_then(Value::as_str).unwrap_or("");
            // These become URL path segments, of fewer characters than most names.
            if is_segment(value, &[]) && value.chars().all(ok) {
                Ok(value.to_owned())
            } else {
                Err(ProviderError::permanent(format!(
                    "{}: `{key}` is {value:?}, not a {key} IAM accepts",
                    r.address
                ))
                .with_help("a project id and an account id are lower-case letters, digits and `-`"))
            }
        };
        Ok(AccountName {
            project: part("project", |c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':')
            })?,
            account_id: part("accountId", |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            })?,
        })
    }

    fn email(&self) -> String {
        email(&self.account_id, &self.project)
    }

    fn path(&self) -> String {
        format!(
            "/v1/projects/{}/serviceAccounts/{}",
            self.project,
            self.email()
        )
    }
}

#[async_trait::async_trait]
impl crate::Applier for ServiceAccount {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let name = AccountName::of(r)?;
        client.read(Api::Iam, &name.path(), r, to_attributes).await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = AccountName::of(r)?;
        let body = json!({
            "accountId": name.account_id,
            "serviceAccount": written(&r.attributes),
        });
        // A repeated create is safe: an account made by an attempt whose answer was lost
        // answers 409, and its description says it is weir's, so it is adopted below.
        let created = client
            .call(
                Api::Iam,
                Method::POST,
                &format!("/v1/projects/{}/serviceAccounts", name.project),
                &[],
                Some(&body),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        match created {
            Ok(live) => Ok(to_attributes(&live, &r.attributes)),
            Err(e) if e.kind == ErrorKind::Conflict => adopt(client, r, &name, cancel, e).await,
            Err(e) => Err(at(r, e)),
        }
    }

    async fn update(
        &self,
        client: &Client,
        _prior: &Value,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = AccountName::of(r)?;
        patch(client, r, &name, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let name = AccountName::of(r)?;
        client
            .delete(Api::Iam, &name.path(), &[], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

/// The account that a create met (409): adopted and brought to the desired value when its
/// description says weir made it for the same deployment; refused otherwise.
async fn adopt(
    client: &Client,
    r: &ResourceRef,
    name: &AccountName,
    cancel: &Cancel,
    conflict: ProviderError,
) -> Result<Value, ProviderError> {
    let Some(live) = client
        .get(Api::Iam, &name.path(), &[], cancel)
        .await
        .map_err(|e| at(r, e))?
    else {
        return Err(at(r, conflict));
    };
    let description = |v: &Value| {
        v.get("description")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let wanted = description(&r.attributes);
    let found = description(&live);
    let ours = weirs_deployment(wanted.as_deref()).is_some()
        && weirs_deployment(found.as_deref()) == weirs_deployment(wanted.as_deref());
    if !ours {
        return Err(ProviderError::conflict(format!(
            "{}: the service account {} already exists and weir did not create it for this deployment (its description does not say `managed-by=weir weir-deployment={}`)",
            r.address,
            name.email(),
            weirs_deployment(wanted.as_deref()).unwrap_or("<deployment>")
        ))
        .with_help("delete that service account, or give this deployment another name"));
    }
    if WRITTEN.iter().all(|k| live.get(*k) == r.attributes.get(*k)) {
        return Ok(to_attributes(&live, &r.attributes));
    }
    patch(client, r, name, cancel).await
}

/// PATCHes the account's display name and description to `r`'s.
async fn patch(
    client: &Client,
    r: &ResourceRef,
    name: &AccountName,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let body = json!({
        "serviceAccount": written(&r.attributes),
        "updateMask": WRITTEN.join(","),
    });
    client
        .call(
            Api::Iam,
            Method::PATCH,
            &name.path(),
            &[],
            Some(&body),
            Idempotency::Idempotent,
            cancel,
        )
        .await
        .map_err(|e| at(r, e))?;
    // The patch answers only the fields it changed: read the whole account.
    match client
        .get(Api::Iam, &name.path(), &[], &Cancel::new())
        .await
        .map_err(|e| at(r, e))?
    {
        Some(live) => Ok(to_attributes(&live, &r.attributes)),
        None => Err(ProviderError::retryable(format!(
            "{}: the service account {} was patched but is not there",
            r.address,
            name.email()
        ))),
    }
}

/// The `ServiceAccount` fields weir writes, from the attributes.
fn written(attributes: &Value) -> Value {
    let mut body = Map::new();
    for key in WRITTEN {
        if let Some(v) = attributes.get(*key) {
            body.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(body)
}

/// The live account in the shape of `shape`: the fields weir writes (an absent one is empty,
/// as the API leaves an empty description out), `project`, `accountId` and the output-only
/// `uniqueId` and `email`.
fn to_attributes(live: &Value, shape: &Value) -> Value {
    let mut out = match project(live, &written(shape)) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in WRITTEN {
        if shape.get(*key).is_some() && !out.contains_key(*key) {
            out.insert((*key).to_owned(), json!(""));
        }
    }
    for key in ["uniqueId", "email"] {
        if let Some(v) = live.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    for key in ["project", "accountId"] {
        if let Some(v) = shape.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_description_naming_weir_and_a_deployment_marks_an_account_as_weirs() {
        assert_eq!(
            weirs_deployment(Some("managed-by=weir weir-deployment=prod")),
            Some("prod")
        );
        assert_eq!(weirs_deployment(Some("weir-deployment=prod")), None);
        assert_eq!(
            weirs_deployment(Some("managed-by=weir weir-deployment=")),
            None
        );
        assert_eq!(weirs_deployment(Some("made by hand")), None);
        assert_eq!(weirs_deployment(None), None);
    }

    #[test]
    fn an_account_id_or_project_that_could_reach_another_path_is_refused() {
        for (project, id) in [("p", "../x"), ("p", "a/b"), ("p/x", "abcdef"), ("p", "")] {
            let r = ResourceRef {
                address: "google_service_account.web".into(),
                type_name: crate::schemas::types::SERVICE_ACCOUNT.into(),
                attributes: json!({"project": project, "accountId": id}),
                sensitive_paths: Vec::new(),
            };
            assert!(AccountName::of(&r).is_err(), "{project} {id}");
        }
    }

    #[test]
    fn the_live_account_is_cut_to_the_recorded_shape() {
        let shape = json!({"project": "p", "accountId": "a-web", "displayName": "d",
            "description": "x", "uniqueId": null, "email": "a-web@p.iam.gserviceaccount.com"});
        let live = json!({"name": "projects/p/serviceAccounts/a-web@p.iam.gserviceaccount.com",
            "projectId": "p", "uniqueId": "1", "email": "a-web@p.iam.gserviceaccount.com",
            "displayName": "d", "etag": "e", "oauth2ClientId": "1"});
        assert_eq!(
            to_attributes(&live, &shape),
            json!({"project": "p", "accountId": "a-web", "displayName": "d", "description": "",
                "uniqueId": "1", "email": "a-web@p.iam.gserviceaccount.com"})
        );
    }
}
