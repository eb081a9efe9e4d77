//! Secret Manager v1 secrets (`google_secret_manager_secret`) and their versions
//! (`google_secret_manager_secret_version`): create, read, update, delete.
//!
//! A secret's attributes are the API's `Secret` body plus `project` and `secretId` (path
//! parameters). A version is immutable (its schema replaces it on any change); its attributes
//! are `secret` (the secret's full name) and one of:
//! - `payload.data`: the value itself (plain text; the API's base64 is made here);
//! - `generate.length`: a password of that many letters and digits, chosen once at create from
//!   the operating system's generator;
//! - `template` with `templateSecrets`: the template with each `{key}` replaced by the latest
//!   value of the secret `templateSecrets.key` (read with `versions.access` at create).
//!
//! The value chosen is returned in `payload.data`, which the schema marks sensitive: the engine
//! seals it in state and never prints it. A version's value cannot be read back without
//! `access`, so reading a version checks only that it still exists and is not destroyed, and
//! returns the recorded attributes with the API's output-only fields.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::{Map, Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::ownership::{LABELS, made_for_deployment};
use crate::rest::{Api, Client, at, is_segment, segment};
use crate::run_job::project;
use crate::schemas::output_only;
use crate::schemas::types::{SECRET, SECRET_VERSION};

/// Applies `google_secret_manager_secret`.
pub(crate) struct Secret;

/// Applies `google_secret_manager_secret_version`.
pub(crate) struct SecretVersion;

/// The longest password `generate.length` may ask for.
const MAX_GENERATED: u64 = 1024;
/// What a generated password is made of: safe inside a URL or a shell word unquoted.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `projects/<p>/secrets/<s>` from `r`'s `project` and `secretId`.
fn secret_name(r: &ResourceRef) -> Result<String, ProviderError> {
    let part = |key| segment(r, key, "Secret Manager");
    Ok(format!(
        "projects/{}/secrets/{}",
        part("project")?,
        part("secretId")?
    ))
}

/// Checks that `name` has the form `projects/<p>/secrets/<s>` followed by `more` more
/// `/<kind>/<id>` pairs, every segment safe in a URL path.
pub(crate) fn checked_name(
    address: &str,
    key: &str,
    name: &str,
    more: usize,
) -> Result<(), ProviderError> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = parts.len() == 4 + 2 * more
        && parts[0] == "projects"
        && parts[2] == "secrets"
        && (more == 0 || parts[4] == "versions")
        && parts.iter().all(|p| is_segment(p, &[]));
    if ok {
        Ok(())
    } else {
        let form = if more == 0 {
            "projects/<project>/secrets/<id>"
        } else {
            "projects/<project>/secrets/<id>/versions/<version>"
        };
        Err(ProviderError::permanent(format!(
            "{address}: `{key}` is {name:?}, not a name of the form {form}"
        )))
    }
}

/// The secret or version `name` (`projects/<p>/secrets/<s>[/versions/<v>]`); `None` when it
/// is gone.
async fn get(client: &Client, name: &str) -> Result<Option<Value>, ProviderError> {
    client
        .get(
            Api::SecretManager,
            &format!("/v1/{name}"),
            &[],
            &Cancel::new(),
        )
        .await
}

/// The live secret in the shape of `shape`: the fields weir manages, the output-only ones,
/// `project` and `secretId`.
fn secret_attributes(live: &Value, shape: &Value) -> Value {
    let mut out = match project(live, shape) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    out.remove("name");
    for key in output_only(SECRET) {
        if let Some(v) = live.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    for key in ["project", "secretId"] {
        if let Some(v) = shape.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// The API's `Secret` body for the attributes.
fn secret_body(attributes: &Value) -> Value {
    let mut body = attributes.clone();
    if let Some(fields) = body.as_object_mut() {
        for key in ["project", "secretId"].iter().chain(output_only(SECRET)) {
            fields.remove(*key);
        }
    }
    body
}

#[async_trait::async_trait]
impl crate::Applier for Secret {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let name = secret_name(r)?;
        client
            .read(
                Api::SecretManager,
                &format!("/v1/{name}"),
                r,
                secret_attributes,
            )
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = secret_name(r)?;
        let (parent, id) = name.rsplit_once("/secrets/").unwrap_or_default();
        let created = client
            .call(
                Api::SecretManager,
                Method::POST,
                &format!("/v1/{parent}/secrets"),
                &[("secretId", id)],
                Some(&secret_body(&r.attributes)),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        match created {
            Ok(live) => Ok(secret_attributes(&live, &r.attributes)),
            Err(e) if e.kind == ErrorKind::Conflict => {
                // A secret already there is adopted only when weir made it for this deployment
                // (an attempt whose answer was lost); otherwise it belongs to someone else.
                let live = get(client, &name).await.map_err(|e| at(r, e))?;
                match live {
                    Some(live) if made_for_deployment(&live, &r.attributes, LABELS) => {
                        patch(client, r, &name, cancel).await
                    }
                    _ => Err(ProviderError::conflict(format!(
                        "{}: the secret {name} already exists and weir did not create it for this deployment (its labels `managed-by` and `weir-deployment` do not say so)",
                        r.address
                    ))
                    .with_help("delete or rename that secret, or give this resource another name")),
                }
            }
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
        let name = secret_name(r)?;
        patch(client, r, &name, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let name = secret_name(r)?;
        client
            .delete(Api::SecretManager, &format!("/v1/{name}"), &[], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

/// PATCHes the secret's labels (the only field of it that changes in place).
async fn patch(
    client: &Client,
    r: &ResourceRef,
    name: &str,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let labels = r.attributes.get("labels").cloned().unwrap_or(json!({}));
    let live = client
        .call(
            Api::SecretManager,
            Method::PATCH,
            &format!("/v1/{name}"),
            &[("updateMask", "labels")],
            Some(&json!({ "labels": labels })),
            Idempotency::Idempotent,
            cancel,
        )
        .await
        .map_err(|e| at(r, e))?;
    Ok(secret_attributes(&live, &r.attributes))
}

/// The value a new version holds, as `r`'s attributes say (see the module's documentation).
async fn chosen_value(
    client: &Client,
    r: &ResourceRef,
    cancel: &Cancel,
) -> Result<String, ProviderError> {
    let attrs = &r.attributes;
    // With `generate` or `template`, the plan leaves `payload.data` null (known after apply).
    match attrs.pointer("/payload/data") {
        Some(Value::String(data)) => return Ok(data.clone()),
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(ProviderError::permanent(format!(
                "{}: `payload.data` is not a string",
                r.address
            )));
        }
    }
    if let Some(generate) = attrs.get("generate") {
        let length = generate
            .get("length")
            .and_then(Value::as_u64)
            .filter(|n| (1..=MAX_GENERATED).contains(n))
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{}: `generate.length` must be a whole number from 1 to {MAX_GENERATED}",
                    r.address
                ))
            })?;
        return generated(length as usize).map_err(|e| at(r, e));
    }
    if let Some(template) = attrs.get("template").and_then(Value::as_str) {
        let mut value = template.to_owned();
        let sources = attrs
            .get("templateSecrets")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (key, secret) in sources {
            let secret = secret.as_str().unwrap_or("");
            checked_name(&r.address, &format!("templateSecrets.{key}"), secret, 0)?;
            let part = access(client, r, &format!("{secret}/versions/latest"), cancel).await?;
            value = value.replace(&format!("{{{key}}}"), &part);
        }
        return Ok(value);
    }
    Err(ProviderError::permanent(format!(
        "{}: a secret version needs `payload.data`, `generate` or `template`",
        r.address
    )))
}

/// The text the secret version `version` (`projects/<p>/secrets/<s>/versions/<n|latest>`,
/// already checked) holds, read with `versions.access` for `r`. Errors never hold the value.
/// The latest version of `secret` when it holds `value` (the version an attempt whose answer
/// was lost added); `None` when it does not, or cannot be read now.
async fn added_already(
    client: &Client,
    r: &ResourceRef,
    secret: &str,
    value: &str,
    cancel: &Cancel,
) -> Option<Value> {
    let latest = format!("{secret}/versions/latest");
    let held = access(client, r, &latest, cancel).await.ok()?;
    if held != value {
        return None;
    }
    // `latest` names the newest version; its own name is in what `get` answers.
    get(client, &latest).await.ok().flatten()
}

pub(crate) async fn access(
    client: &Client,
    r: &ResourceRef,
    version: &str,
    cancel: &Cancel,
) -> Result<String, ProviderError> {
    let answer = client
        .call(
            Api::SecretManager,
            Method::GET,
            &format!("/v1/{version}:access"),
            &[],
            None,
            Idempotency::Idempotent,
            cancel,
        )
        .await
        .map_err(|e| at(r, e))?;
    answer
        .pointer("/payload/data")
        .and_then(Value::as_str)
        .and_then(|d| BASE64.decode(d).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ProviderError::permanent(format!(
                "{}: the secret version {version} holds no text (`payload.data` missing or not base64 of UTF-8)",
                r.address
            ))
        })
}

/// A password of `length` characters of [`ALPHABET`], from the operating system's generator
/// (rejection sampling, so every character is equally likely).
fn generated(length: usize) -> Result<String, ProviderError> {
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::getrandom(&mut buf).map_err(|e| {
            ProviderError::permanent(format!("the system's random generator failed: {e}"))
        })?;
        for b in buf {
            if (b as usize) < limit && out.len() < length {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// The recorded attributes with the live version's output-only fields.
fn version_attributes(live: &Value, recorded: &Value) -> Value {
    let mut out = recorded.clone();
    if let Some(fields) = out.as_object_mut() {
        for key in output_only(SECRET_VERSION) {
            if let Some(v) = live.get(*key) {
                fields.insert((*key).to_owned(), v.clone());
            }
        }
    }
    out
}

/// The version's full name, as recorded at create.
fn version_name(r: &ResourceRef) -> Result<Option<String>, ProviderError> {
    match r.attributes.get("name").and_then(Value::as_str) {
        None => Ok(None),
        Some(name) => {
            checked_name(&r.address, "name", name, 1)?;
            Ok(Some(name.to_owned()))
        }
    }
}

#[async_trait::async_trait]
impl crate::Applier for SecretVersion {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let Some(name) = version_name(r)? else {
            // Never created (no name recorded): nothing to find.
            return Ok(None);
        };
        let live = get(client, &name).await.map_err(|e| at(r, e))?;
        Ok(live
            .filter(|v| v.get("state").and_then(Value::as_str) != Some("DESTROYED"))
            .map(|live| version_attributes(&live, &r.attributes)))
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let secret = r
            .attributes
            .get("secret")
            .and_then(Value::as_str)
            .unwrap_or("");
        checked_name(&r.address, "secret", secret, 0)?;
        let value = chosen_value(client, r, cancel).await?;
        let body = json!({"payload": {"data": BASE64.encode(value.as_bytes())}});
        // Adding a version is not idempotent: after an answer that leaves it unknown whether
        // the version was added (a 503, a lost connection), the secret's latest version is
        // read, and it is the one this call added when it holds this value. Only otherwise is
        // the call sent again.
        let live = weir_provider_sdk::retry::retry(
            client.policy(),
            Idempotency::Idempotent,
            cancel,
            |_| async {
                let added = client
                    .call(
                        Api::SecretManager,
                        Method::POST,
                        &format!("/v1/{secret}:addVersion"),
                        &[],
                        Some(&body),
                        Idempotency::NotIdempotent,
                        cancel,
                    )
                    .await;
                match added {
                    Err(e) if e.is_retryable() && !e.unprocessed => {
                        match added_already(client, r, secret, &value, cancel).await {
                            Some(live) => Ok(live),
                            None => Err(e),
                        }
                    }
                    other => other,
                }
            },
        )
        .await
        .map_err(|e| at(r, e))?;
        let mut out = version_attributes(&live, &r.attributes);
        out["payload"] = json!({ "data": value });
        Ok(out)
    }

    fn unchangeable(&self) -> &'static str {
        "a secret version cannot change; a new value is a new version (a replacement)"
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let Some(name) = version_name(r)? else {
            return Ok(());
        };
        // Destroying a destroyed version is refused: look first.
        let live = get(client, &name).await.map_err(|e| at(r, e))?;
        if live.is_none_or(|v| v.get("state").and_then(Value::as_str) == Some("DESTROYED")) {
            return Ok(());
        }
        let destroyed = client
            .call(
                Api::SecretManager,
                Method::POST,
                &format!("/v1/{name}:destroy"),
                &[],
                Some(&json!({})),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        match destroyed {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(at(r, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_password_has_the_length_asked_and_differs_each_time() {
        let a = generated(32).unwrap();
        let b = generated(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_secret_name_that_could_reach_another_path_is_refused() {
        for bad in [
            "projects/p/secrets/a/b",
            "projects/p/secrets/..",
            "projects/p/secrets/a?x=1",
            "projects/p/buckets/a",
            "",
        ] {
            assert!(checked_name("x", "secret", bad, 0).is_err(), "{bad}");
        }
        checked_name("x", "secret", "projects/p/secrets/a-b", 0).unwrap();
        checked_name("x", "name", "projects/p/secrets/a/versions/1", 1).unwrap();
    }

    #[test]
    fn the_live_secret_is_cut_to_the_recorded_shape() {
        let shape = json!({"project": "p", "secretId": "s", "replication": {"automatic": {}},
            "labels": {"managed-by": "weir"}});
        let live = json!({"name": "projects/p/secrets/s", "replication": {"automatic": {}},
            "labels": {"managed-by": "weir"}, "createTime": "t", "etag": "\"1\"",
            "versionAliases": {}});
        assert_eq!(
            secret_attributes(&live, &shape),
            json!({"project": "p", "secretId": "s", "replication": {"automatic": {}},
                "labels": {"managed-by": "weir"}, "createTime": "t", "etag": "\"1\""})
        );
    }
}
