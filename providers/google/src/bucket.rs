//! Cloud Storage buckets (`google_storage_bucket`) over the JSON API: create, read, update,
//! delete.
//!
//! The attributes are the API's `Bucket` body plus `project` (the create's query parameter).
//! Writes answer synchronously (no operation to wait for). A patch carries
//! `ifMetagenerationMatch`, so that it never overwrites a change made since weir read the
//! bucket: a 412 reads it again and retries. Labels are patched key by key (the API merges
//! them), so a label weir no longer wants is sent as `null`.

use reqwest::Method;
use serde_json::{Map, Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::ownership::{LABELS, made_for_deployment};
use crate::rest::{Api, Client, at, is_segment};
use crate::run_job::project;
use crate::schemas::{output_only, types::STORAGE_BUCKET};

/// The fields a patch sets: every managed field the API can change in place.
const PATCHED: [&str; 3] = ["labels", "storageClass", "iamConfiguration"];

/// Applies `google_storage_bucket`.
pub(crate) struct Bucket;

/// The bucket's name, checked to be one Cloud Storage accepts (so also a safe path segment).
fn name_of(r: &ResourceRef) -> Result<String, ProviderError> {
    let name = r
        .attributes
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let fits = is_segment(name, &[])
        && (3..=222).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..");
    if fits {
        Ok(name.to_owned())
    } else {
        Err(ProviderError::permanent(format!(
            "{}: `name` is {name:?}, not a bucket name Cloud Storage accepts (3 to 222 lower-case letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit)",
            r.address
        )))
    }
}

fn project_of(r: &ResourceRef) -> Result<String, ProviderError> {
    let project = r
        .attributes
        .get("project")
        .and_then(Value::as_str)
        .unwrap_or("");
    let fits = !project.is_empty()
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'));
    if fits {
        Ok(project.to_owned())
    } else {
        Err(ProviderError::permanent(format!(
            "{}: `project` is {project:?}, not a Google Cloud project id",
            r.address
        )))
    }
}

fn path(name: &str) -> String {
    format!("/storage/v1/b/{name}")
}

#[async_trait::async_trait]
impl crate::Applier for Bucket {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let name = name_of(r)?;
        client
            .read(Api::Storage, &path(&name), r, to_attributes)
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = name_of(r)?;
        let project = project_of(r)?;
        // A repeated create is safe: a bucket made by an attempt whose answer was lost answers
        // 409, and it carries weir's labels, so it is adopted below.
        let created = client
            .call(
                Api::Storage,
                Method::POST,
                "/storage/v1/b",
                &[("project", project.as_str())],
                Some(&body(&r.attributes)),
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
        prior: &Value,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = name_of(r)?;
        patch(client, r, &name, prior, cancel)
            .await
            .map_err(|e| at(r, e))
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let name = name_of(r)?;
        match client.delete(Api::Storage, &path(&name), &[], cancel).await {
            Ok(()) => Ok(()),
            // weir never deletes objects: what is in the bucket may be the only copy.
            Err(e) if e.kind == ErrorKind::Conflict => Err(ProviderError::conflict(format!(
                "{}: the bucket {name} is not empty, and weir does not delete the objects in it ({})",
                r.address, e.message
            ))
            .with_help(format!(
                "keep what you need from it, empty it (`gcloud storage rm --recursive 'gs://{name}/**'`), then apply again"
            ))),
            Err(e) => Err(at(r, e)),
        }
    }
}

/// The bucket a create met (409): adopted and brought to the desired value when it carries
/// weir's `managed-by` label and the same `weir-deployment` label (its name comes from the
/// configuration of this deployment); refused otherwise. Bucket names are global: a bucket of
/// another project may not even be readable.
async fn adopt(
    client: &Client,
    r: &ResourceRef,
    name: &str,
    cancel: &Cancel,
    conflict: ProviderError,
) -> Result<Value, ProviderError> {
    let stranger = || {
        ProviderError::conflict(format!(
            "{}: the bucket {name} already exists and weir did not create it for this deployment (its labels `managed-by` and `weir-deployment` do not say so); bucket names are global, so it may be in another project",
            r.address
        ))
        .with_help("give the bucket another name (`storage { bucket = ... }`), or delete that bucket")
    };
    let live = match client.get(Api::Storage, &path(name), &[], cancel).await {
        Ok(Some(live)) => live,
        Ok(None) => return Err(at(r, conflict)),
        Err(e) if e.kind == ErrorKind::Permanent => return Err(stranger()),
        Err(e) => return Err(at(r, e)),
    };
    let ours = made_for_deployment(&live, &r.attributes, LABELS);
    if !ours {
        return Err(stranger());
    }
    let found = to_attributes(&live, &r.attributes);
    patch(client, r, name, &live, cancel)
        .await
        .map_err(|e| at(r, e).with_existing(found))
}

/// PATCHes the bucket's changeable fields to `r`'s with the metageneration of `seen` (the
/// bucket as last read); on 412 reads it again and retries.
async fn patch(
    client: &Client,
    r: &ResourceRef,
    name: &str,
    seen: &Value,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let path = path(name);
    let what = format!("the bucket {name}");
    let live = client
        .write_fresh(Api::Storage, &path, &what, seen.clone(), cancel, |seen| {
            let body = patch_body(&r.attributes, &seen);
            let metageneration = metageneration_of(&seen);
            let path = &path;
            async move {
                let query: Vec<(&str, &str)> = metageneration
                    .as_deref()
                    .map(|m| vec![("ifMetagenerationMatch", m)])
                    .unwrap_or_default();
                client
                    .call(
                        Api::Storage,
                        Method::PATCH,
                        path,
                        &query,
                        Some(&body),
                        Idempotency::Idempotent,
                        cancel,
                    )
                    .await
            }
        })
        .await?;
    Ok(to_attributes(&live, &r.attributes))
}

/// What a patch sends: the changeable fields of `attributes`, and `null` for each label of
/// `seen` that weir no longer wants (the API keeps a label a patch does not name).
fn patch_body(attributes: &Value, seen: &Value) -> Value {
    let mut body = Map::new();
    for key in PATCHED {
        if let Some(v) = attributes.get(key) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(old) = seen.get("labels").and_then(Value::as_object) {
        let labels = body
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(labels) = labels {
            for key in old.keys() {
                labels.entry(key.clone()).or_insert(Value::Null);
            }
        }
    }
    Value::Object(body)
}

fn metageneration_of(bucket: &Value) -> Option<String> {
    match bucket.get("metageneration")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The API's `Bucket` body for the attributes: without `project` and the output-only fields.
fn body(attributes: &Value) -> Value {
    let mut body = attributes.clone();
    if let Some(fields) = body.as_object_mut() {
        for key in ["project"].iter().chain(output_only(STORAGE_BUCKET)) {
            fields.remove(*key);
        }
    }
    body
}

/// The live bucket in the shape of `shape`: the fields weir manages, the output-only ones the
/// schema names, and `project`. So the API's defaults (`lockedTime`, `bucketPolicyOnly`, ...)
/// are not drift, and a change to a managed field is.
fn to_attributes(live: &Value, shape: &Value) -> Value {
    let mut out = match project(live, shape) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in output_only(STORAGE_BUCKET) {
        if let Some(v) = live.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    if let Some(v) = shape.get("project") {
        out.insert("project".into(), v.clone());
    }
    // A bucket without labels has no `labels` field at all.
    if shape.get("labels").is_some() && live.get("labels").is_none() {
        out.insert("labels".into(), json!({}));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(name: &str) -> ResourceRef {
        ResourceRef {
            address: "google_storage_bucket.prod".into(),
            type_name: STORAGE_BUCKET.into(),
            attributes: json!({"project": "p", "name": name}),
            sensitive_paths: Vec::new(),
        }
    }

    #[test]
    fn a_name_cloud_storage_refuses_or_that_could_reach_another_path_is_refused() {
        for bad in [
            "", "ab", "a/b", "..", "a..b", "A-b", "b?x=1", "b%2f", "-ab", "ab-",
        ] {
            let e = name_of(&bucket(bad)).expect_err(bad);
            assert_eq!(e.kind, ErrorKind::Permanent);
            assert!(e.message.starts_with("google_storage_bucket.prod"), "{e}");
        }
        assert_eq!(
            name_of(&bucket("acme-data.mage_1")).unwrap(),
            "acme-data.mage_1"
        );
    }

    #[test]
    fn a_patch_removes_the_labels_weir_no_longer_wants() {
        let attributes = json!({"name": "b", "location": "EU", "labels": {"a": "1"},
            "storageClass": "STANDARD"});
        let seen = json!({"labels": {"a": "0", "old": "x"}});
        assert_eq!(
            patch_body(&attributes, &seen),
            json!({"labels": {"a": "1", "old": null}, "storageClass": "STANDARD"})
        );
    }

    #[test]
    fn the_live_bucket_is_cut_to_the_recorded_shape() {
        let shape = json!({"project": "p", "name": "b", "location": "EU",
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true},
                "publicAccessPrevention": "enforced"},
            "labels": {}});
        let live = json!({"kind": "storage#bucket", "id": "b", "name": "b", "location": "EU",
            "locationType": "multi-region", "metageneration": "3", "etag": "CAM=",
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true,
                "lockedTime": "2027-01-01T00:00:00Z"}, "bucketPolicyOnly": {"enabled": true},
                "publicAccessPrevention": "enforced"}});
        assert_eq!(
            to_attributes(&live, &shape),
            json!({"project": "p", "name": "b", "location": "EU", "id": "b",
                "metageneration": "3", "etag": "CAM=",
                "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true},
                    "publicAccessPrevention": "enforced"},
                "labels": {}})
        );
    }
}
