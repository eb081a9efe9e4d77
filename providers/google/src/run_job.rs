//! Cloud Run Admin v2 jobs (`google_cloud_run_v2_job`) and services
//! (`google_cloud_run_v2_service`): create, read, update, delete. Both are the same kind of
//! object to the API (a collection under `projects/<p>/locations/<l>`, created with an id
//! parameter, written by a full-body PATCH with an etag, every write a long-running operation),
//! so one set of functions serves both, told apart by a [`Kind`].
//!
//! The attributes are the API's `Job` or `Service` body plus `project` and `location` (path
//! parameters) and the short `name` (the API's `name` is
//! `projects/<p>/locations/<l>/<jobs|services>/<name>`). What the API answers is brought back
//! to that shape ([`to_attributes`]), so that a plan right after apply compares equal.

use reqwest::Method;
use serde_json::{Map, Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::ownership::{LABELS, made_for_deployment};
use crate::rest::{Api, Client, at, segment, settled};
use crate::schemas::{
    output_only,
    types::{CLOUD_RUN_JOB, CLOUD_RUN_SERVICE},
};

/// The attributes that are path parameters, not fields of the API's body.
const PATH_ATTRIBUTES: &[&str] = &["project", "location", "name"];

/// What tells a Cloud Run job from a service, to the API and in messages.
pub(crate) struct Kind {
    /// The resource type weir applies.
    type_name: &'static str,
    /// The collection under `projects/<p>/locations/<l>`.
    collection: &'static str,
    /// The create method's query parameter naming the new object.
    id_parameter: &'static str,
    /// What the object is called in messages.
    noun: &'static str,
}

pub(crate) const JOB: Kind = Kind {
    type_name: CLOUD_RUN_JOB,
    collection: "jobs",
    id_parameter: "jobId",
    noun: "Cloud Run job",
};

pub(crate) const SERVICE: Kind = Kind {
    type_name: CLOUD_RUN_SERVICE,
    collection: "services",
    id_parameter: "serviceId",
    noun: "Cloud Run service",
};

/// Where a job or service lives, from its attributes.
struct ObjectName<'k> {
    kind: &'k Kind,
    project: String,
    location: String,
    id: String,
}

impl<'k> ObjectName<'k> {
    fn of(kind: &'k Kind, r: &ResourceRef) -> Result<ObjectName<'k>, ProviderError> {
        let part = |key| segment(r, key, "Google").map(str::to_owned);
        Ok(ObjectName {
            kind,
            project: part("project")?,
            location: part("location")?,
            id: part("name")?,
        })
    }

    fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.location)
    }

    fn full(&self) -> String {
        format!("{}/{}/{}", self.parent(), self.kind.collection, self.id)
    }

    fn path(&self) -> String {
        format!("/v2/{}", self.full())
    }
}

/// Applies the Cloud Run type of the kind (`google_cloud_run_v2_job` for [`JOB`],
/// `google_cloud_run_v2_service` for [`SERVICE`]).
#[async_trait::async_trait]
impl crate::Applier for Kind {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let name = ObjectName::of(self, r)?;
        client
            .read(Api::Run, &name.path(), r, |live, shape| {
                to_attributes(self, live, shape)
            })
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = ObjectName::of(self, r)?;
        let body = body(self, &r.attributes);
        // A repeated create is safe: an object already made by an attempt whose answer was lost
        // answers 409, and it carries weir's labels, so it is adopted below.
        let created = client
            .call(
                Api::Run,
                Method::POST,
                &format!("/v2/{}/{}", name.parent(), self.collection),
                &[(self.id_parameter, name.id.as_str())],
                Some(&body),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        match created {
            Ok(op) => finish(client, r, &name, op, cancel).await,
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
        let name = ObjectName::of(self, r)?;
        patch(client, r, &name, prior, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let name = ObjectName::of(self, r)?;
        client
            .delete(Api::Run, &name.path(), &[], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

/// The object that a create met (409): adopted and brought to the desired value when it
/// carries weir's `managed-by` label and the same `weir-deployment` label (its name derives
/// from the deployment and the resource profile or the workload, so the same name in the same
/// deployment is the same address); refused otherwise.
async fn adopt(
    client: &Client,
    r: &ResourceRef,
    name: &ObjectName<'_>,
    cancel: &Cancel,
    conflict: ProviderError,
) -> Result<Value, ProviderError> {
    let Some(live) = client.get(Api::Run, &name.path(), &[], cancel).await? else {
        return Err(at(r, conflict));
    };
    let ours = made_for_deployment(&live, &r.attributes, LABELS);
    if !ours {
        return Err(ProviderError::conflict(format!(
            "{}: the {} {} already exists and weir did not create it for this deployment (its labels `managed-by` and `weir-deployment` do not say so)",
            r.address,
            name.kind.noun,
            name.full()
        ))
        .with_help(format!(
            "delete or rename that {}, or give this deployment (or resource profile) another name",
            name.kind.noun
        )));
    }
    patch(client, r, name, &live, cancel).await
}

/// PATCHes the object to `r`'s attributes with the etag of `seen` (the object as last read or
/// recorded); on 412 reads it again and retries with its new etag. The PATCH carries the whole
/// body (no `updateMask`), so that fields weir dropped return to the API's defaults.
async fn patch(
    client: &Client,
    r: &ResourceRef,
    name: &ObjectName<'_>,
    seen: &Value,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let path = name.path();
    let op = client
        .write_fresh(
            Api::Run,
            &path,
            &name.full(),
            seen.clone(),
            cancel,
            |seen| {
                let mut body = body(name.kind, &r.attributes);
                body["name"] = json!(name.full());
                if let Some(etag) = etag_of(&seen) {
                    body["etag"] = json!(etag);
                }
                let path = &path;
                async move {
                    client
                        .call(
                            Api::Run,
                            Method::PATCH,
                            path,
                            &[],
                            Some(&body),
                            Idempotency::Idempotent,
                            cancel,
                        )
                        .await
                }
            },
        )
        .await
        .map_err(|e| at(r, e))?;
    finish(client, r, name, op, cancel).await
}

/// Waits for a write's operation, then reads the object. When the operation failed or the
/// wait stopped but the object exists, the error carries its attributes.
async fn finish(
    client: &Client,
    r: &ResourceRef,
    name: &ObjectName<'_>,
    op: Value,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let waited = client.wait(Api::Run, op, cancel).await;
    // Read even when cancelled: one short call, so that what exists gets recorded.
    let live = client
        .get(Api::Run, &name.path(), &[], &Cancel::new())
        .await;
    let live = live.map(|o| o.map(|live| to_attributes(name.kind, &live, &r.attributes)));
    settled(r, waited, live, || {
        format!(
            "the operation finished but the {} {} is not there",
            name.kind.noun,
            name.full()
        )
    })
}

/// The API's body for the attributes: without the path parameters and the output-only fields.
fn body(kind: &Kind, attributes: &Value) -> Value {
    let mut body = attributes.clone();
    if let Some(fields) = body.as_object_mut() {
        for key in PATH_ATTRIBUTES.iter().chain(output_only(kind.type_name)) {
            fields.remove(*key);
        }
    }
    body
}

fn etag_of(value: &Value) -> Option<String> {
    value.get("etag").and_then(Value::as_str).map(str::to_owned)
}

/// The live object in the shape of `shape` (the attributes weir recorded or plans): only the fields
/// weir manages (those of `shape`, at every depth) and the output-only ones the schema names,
/// with `project`, `location` and the short `name`. A field the API leaves out when it holds its
/// default (an empty list or object, `0`, `false`, `""`: proto3's JSON mapping omits those)
/// counts as holding it. So the API's own defaults and bookkeeping are not
/// drift, and a change to a field weir manages is.
fn to_attributes(kind: &Kind, live: &Value, shape: &Value) -> Value {
    let mut out = match project(live, shape) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in output_only(kind.type_name) {
        if let Some(v) = live.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    for key in ["project", "location"] {
        if let Some(v) = shape.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(full) = live.get("name").and_then(Value::as_str) {
        let short = full.rsplit('/').next().unwrap_or(full);
        out.insert("name".into(), json!(short));
    }
    Value::Object(out)
}

/// `live` cut down to the keys of `shape`, recursively (see [`to_attributes`]).
pub(crate) fn project(live: &Value, shape: &Value) -> Value {
    match (live, shape) {
        (Value::Object(l), Value::Object(s)) => {
            let mut out = Map::new();
            for (key, s) in s {
                match l.get(key) {
                    Some(l) => {
                        out.insert(key.clone(), project(l, s));
                    }
                    None if is_default(s) => {
                        out.insert(key.clone(), s.clone());
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(s)) => Value::Array(
            l.iter()
                .enumerate()
                .map(|(i, l)| s.get(i).map_or_else(|| l.clone(), |s| project(l, s)))
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// Whether `v` is a value proto3's JSON mapping leaves out.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_object_is_cut_to_the_recorded_shape_and_defaults_left_out_count_as_held() {
        let shape = json!({
            "project": "p", "location": "l", "name": "j", "uid": null,
            "labels": {"managed-by": "weir"},
            "template": {"template": {"maxRetries": 3, "volumes": [], "timeout": ""}, "parallelism": 0},
            "invokerIamDisabled": false,
        });
        let live = json!({
            "name": "projects/p/locations/l/jobs/j", "uid": "u", "etag": "e", "generation": "2",
            "launchStage": "GA", "createTime": "2026-01-01T00:00:00Z",
            "labels": {"managed-by": "weir"},
            "template": {"parallelism": 1, "template": {"maxRetries": 4}},
        });
        assert_eq!(
            to_attributes(&JOB, &live, &shape),
            json!({
                "project": "p", "location": "l", "name": "j",
                "uid": "u", "etag": "e", "generation": "2",
                "labels": {"managed-by": "weir"},
                "template": {"template": {"maxRetries": 4, "volumes": [], "timeout": ""}, "parallelism": 1},
                "invokerIamDisabled": false,
            })
        );
    }

    #[test]
    fn a_name_that_could_reach_another_path_is_refused() {
        for bad in ["", "..", "a/b", "a?x=1", "a%2f"] {
            let r = ResourceRef {
                address: "google_cloud_run_v2_job.x".into(),
                type_name: CLOUD_RUN_JOB.into(),
                attributes: json!({"project": "p", "location": "l", "name": bad}),
                sensitive_paths: Vec::new(),
            };
            let e = ObjectName::of(&SERVICE, &r).err().expect(bad);
            assert_eq!(e.kind, ErrorKind::Permanent);
        }
    }
}
