//! Secret Manager v1 with state: `projects.secrets.{create,get,patch,delete,addVersion}` and
//! `projects.secrets.versions.{get,access,destroy}`, kept in memory.
//!
//! As Google does: a duplicate create is 409 `ALREADY_EXISTS`, anything missing 404
//! `NOT_FOUND`; a secret carries an etag that changes on every write, and a stale one (in the
//! patch body or the delete's `etag` parameter) is 409 `ABORTED`; versions are numbered from 1
//! per secret, `latest` names the newest, and a destroyed version keeps its name but loses its
//! payload (accessing or destroying it again is 400 `FAILED_PRECONDITION`). Deleting a secret
//! deletes its versions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::run_jobs::error;
use crate::validate::Request;

/// The secrets and versions the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Secrets by full name (`projects/p/secrets/s`).
    secrets: BTreeMap<String, Secret>,
    /// Counts writes: etags come from it.
    writes: u64,
}

struct Secret {
    body: Value,
    /// Versions in order; version `n` is at index `n - 1`.
    versions: Vec<Version>,
}

struct Version {
    body: Value,
    /// The payload's base64, until the version is destroyed.
    data: Option<String>,
}

/// The answer to a request to Secret Manager that the documents accepted as `method_id`, or
/// `None` when the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let path = request.path.strip_prefix("/v1/")?;
    let query = |key: &str| request.query_value(key);
    let body = request.body.clone().unwrap_or_else(|| json!({}));
    Some(match method_id {
        "secretmanager.projects.secrets.create" => {
            let parent = path.strip_suffix("/secrets")?;
            let id = query("secretId").unwrap_or_default();
            if id.is_empty() {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "secret_id is required.".into(),
                ));
            }
            if body.get("replication").is_none() {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "Secret.replication is required.".into(),
                ));
            }
            let name = format!("{parent}/secrets/{id}");
            if store.secrets.contains_key(&name) {
                return Some(error(
                    409,
                    "ALREADY_EXISTS",
                    format!("Secret [{name}] already exists."),
                ));
            }
            let etag = store.etag();
            let mut secret = body;
            secret["name"] = json!(name);
            secret["createTime"] = json!(timestamp());
            secret["etag"] = json!(etag);
            store.secrets.insert(
                name,
                Secret {
                    body: secret.clone(),
                    versions: Vec::new(),
                },
            );
            (200, secret)
        }
        "secretmanager.projects.secrets.list" => {
            let prefix = format!("{}/", path.strip_suffix("/secrets")?);
            let secrets: Vec<Value> = store
                .secrets
                .iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(_, s)| s.body.clone())
                .collect();
            let total = secrets.len();
            (200, json!({"secrets": secrets, "totalSize": total}))
        }
        "secretmanager.projects.secrets.get" => match store.secrets.get(path) {
            Some(secret) => (200, secret.body.clone()),
            None => not_found("Secret", path),
        },
        "secretmanager.projects.secrets.patch" => {
            let etag = store.etag();
            let Some(secret) = store.secrets.get_mut(path) else {
                return Some(not_found("Secret", path));
            };
            if let Some(sent) = body.get("etag").and_then(Value::as_str)
                && Some(sent) != secret.body.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(path));
            }
            let Some(mask) = query("updateMask").filter(|m| !m.is_empty()) else {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "update_mask is required.".into(),
                ));
            };
            for field in mask.split(',') {
                if matches!(field, "name" | "createTime" | "etag" | "replication") {
                    return Some(error(
                        400,
                        "INVALID_ARGUMENT",
                        format!("The field {field} cannot be updated."),
                    ));
                }
                match body.get(field) {
                    Some(v) => secret.body[field] = v.clone(),
                    None => {
                        if let Some(fields) = secret.body.as_object_mut() {
                            fields.remove(field);
                        }
                    }
                }
            }
            secret.body["etag"] = json!(etag);
            (200, secret.body.clone())
        }
        "secretmanager.projects.secrets.delete" => {
            let Some(secret) = store.secrets.get(path) else {
                return Some(not_found("Secret", path));
            };
            if let Some(sent) = query("etag")
                && Some(sent) != secret.body.get("etag").and_then(Value::as_str)
            {
                return Some(stale_etag(path));
            }
            store.secrets.remove(path);
            (200, json!({}))
        }
        "secretmanager.projects.secrets.addVersion" => {
            let name = path.strip_suffix(":addVersion")?;
            let Some(data) = body.pointer("/payload/data").and_then(Value::as_str) else {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "SecretPayload.data is required.".into(),
                ));
            };
            let data = data.to_owned();
            let etag = store.etag();
            let Some(secret) = store.secrets.get_mut(name) else {
                return Some(not_found("Secret", name));
            };
            let version = json!({
                "name": format!("{name}/versions/{}", secret.versions.len() + 1),
                "createTime": timestamp(),
                "state": "ENABLED",
                "etag": etag,
                "replicationStatus": {"automatic": {}},
            });
            secret.versions.push(Version {
                body: version.clone(),
                data: Some(data),
            });
            (200, version)
        }
        "secretmanager.projects.secrets.versions.get" => match store.version(path) {
            Some(v) => (200, v.body.clone()),
            None => not_found("Secret Version", path),
        },
        "secretmanager.projects.secrets.versions.access" => {
            let name = path.strip_suffix(":access")?;
            match store.version(name) {
                None => not_found("Secret Version", name),
                Some(Version { body, data: None }) => destroyed(body),
                Some(Version {
                    body,
                    data: Some(data),
                }) => (
                    200,
                    json!({"name": body["name"], "payload": {"data": data}}),
                ),
            }
        }
        "secretmanager.projects.secrets.versions.destroy" => {
            let name = path.strip_suffix(":destroy")?;
            let etag = store.etag();
            match store.version_mut(name) {
                None => not_found("Secret Version", name),
                Some(v) if v.data.is_none() => destroyed(&v.body),
                Some(v) => {
                    v.data = None;
                    v.body["state"] = json!("DESTROYED");
                    v.body["destroyTime"] = json!(timestamp());
                    v.body["etag"] = json!(etag);
                    (200, v.body.clone())
                }
            }
        }
        _ => return None,
    })
}

impl Store {
    fn etag(&mut self) -> String {
        self.writes += 1;
        format!("\"{:014x}\"", self.writes)
    }

    /// The version `projects/p/secrets/s/versions/<n|latest>`, if any.
    fn version(&self, name: &str) -> Option<&Version> {
        let (secret, n) = name.rsplit_once("/versions/")?;
        let versions = &self.secrets.get(secret)?.versions;
        match n {
            "latest" => versions.last(),
            n => versions.get(n.parse::<usize>().ok()?.checked_sub(1)?),
        }
    }

    /// The decoded payload of a version (`…/versions/<n|latest>`) not destroyed, if any.
    pub(crate) fn payload(&self, name: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let data = self.version(name)?.data.as_ref()?;
        base64::engine::general_purpose::STANDARD.decode(data).ok()
    }

    fn version_mut(&mut self, name: &str) -> Option<&mut Version> {
        let (secret, n) = name.rsplit_once("/versions/")?;
        let versions = &mut self.secrets.get_mut(secret)?.versions;
        match n {
            "latest" => versions.last_mut(),
            n => versions.get_mut(n.parse::<usize>().ok()?.checked_sub(1)?),
        }
    }
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn not_found(kind: &str, name: &str) -> (u16, Value) {
    error(404, "NOT_FOUND", format!("{kind} [{name}] not found."))
}

fn stale_etag(name: &str) -> (u16, Value) {
    error(
        409,
        "ABORTED",
        format!("The etag given does not match the current etag of Secret [{name}]."),
    )
}

fn destroyed(version: &Value) -> (u16, Value) {
    let name = version["name"].as_str().unwrap_or_default();
    error(
        400,
        "FAILED_PRECONDITION",
        format!("Secret Version [{name}] is in DESTROYED state."),
    )
}
