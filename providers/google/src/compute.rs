//! Compute Engine v1 instances (`google_compute_instance`): create, read, update, delete.
//!
//! The attributes are the API's `Instance` body plus `project` and `zone` (path parameters).
//! Every write carries a `requestId` made once per call and reused by each retry of it, so a
//! POST repeated after a lost answer is deduplicated by Compute instead of making a second VM;
//! its zonal operation is waited for, and one that ends `DONE` with an error is a failure.
//!
//! An update does what changed, the way the API allows: labels (`setLabels`) and metadata
//! (`setMetadata`) on the running VM, each with its current fingerprint (a stale one, 412, is
//! read again and retried); the machine type (`setMachineType`) and the service account
//! (`setServiceAccount`) only on a stopped VM, so the VM is stopped, changed and started again.
//! A larger boot disk is grown first (`disks.resize` on the disk the VM names); a smaller one
//! is planned as a new VM, never sent. Any other change in place is refused with a clear error
//! rather than guessed at.
//!
//! What the API answers is brought back to the planned shape ([`to_attributes`]): links such
//! as `machineType` come back as full URLs and are written as the configuration wrote them,
//! the boot disk's `initializeParams` (input only) are kept as recorded with the size the disk
//! reports, and the fields the API adds (disk sources, interface names, …) are left out, so
//! that a plan right after apply compares equal.

use reqwest::Method;
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use weir_provider_sdk::retry::{Attempt, Idempotency, RetryPolicy, retry};
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::normalize::{BOOT_DISK_SIZE, disk_size_gb};
use crate::ownership::{LABELS, made_for_deployment};
use crate::rest::{Api, Client, at, is_segment, segment, settled};
use crate::run_job::project;
use crate::schemas::{output_only, types::COMPUTE_INSTANCE};

/// The attributes that are path parameters, not fields of the API's body.
const PATH_ATTRIBUTES: &[&str] = &["project", "zone"];
/// The attributes an update changes, and how.
const IN_PLACE: &[&str] = &["labels", "metadata", "machineType", "serviceAccounts"];
/// What to do about a change weir cannot make in place.
const NOT_IN_PLACE_HELP: &str = "put those back as they are, or delete the VM (remove it from \
     the configuration and apply) so that the next apply makes a new one";
/// How many times a write refused for a stale fingerprint (412) is read again and retried.
const FINGERPRINT_ATTEMPTS: u32 = 5;

/// Where an instance lives, from its attributes.
struct VmName {
    project: String,
    zone: String,
    name: String,
}

impl VmName {
    fn of(r: &ResourceRef) -> Result<VmName, ProviderError> {
        let part = |key| segment(r, key, "Compute Engine").map(str::to_owned);
        Ok(VmName {
            project: part("project")?,
            zone: part("zone")?,
            name: part("name")?,
        })
    }

    fn zone_path(&self) -> String {
        format!("/compute/v1/projects/{}/zones/{}", self.project, self.zone)
    }

    fn full(&self) -> String {
        format!(
            "projects/{}/zones/{}/instances/{}",
            self.project, self.zone, self.name
        )
    }

    fn path(&self) -> String {
        format!("{}/instances/{}", self.zone_path(), self.name)
    }

    fn verb(&self, verb: &str) -> String {
        format!("{}/{verb}", self.path())
    }
}

/// Applies `google_compute_instance`.
pub(crate) struct Instance;

#[async_trait::async_trait]
impl crate::Applier for Instance {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let name = VmName::of(r)?;
        client
            .read(Api::Compute, &name.path(), r, to_attributes)
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let name = VmName::of(r)?;
        let body = body(&r.attributes);
        let inserted = write(
            client,
            Method::POST,
            &format!("{}/instances", name.zone_path()),
            Some(&body),
            cancel,
        )
        .await;
        match inserted {
            Ok(op) => {
                let waited = client.wait(Api::Compute, op, cancel).await.map(|_| ());
                finish(client, r, &name, waited).await
            }
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
        let name = VmName::of(r)?;
        let live = client
            .get(Api::Compute, &name.path(), &[], cancel)
            .await
            .map_err(|e| at(r, e))?
            .ok_or_else(|| {
                at(
                    r,
                    ProviderError::not_found(format!("the VM {} is gone", name.full())),
                )
            })?;
        converge(client, r, &name, live, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let name = VmName::of(r)?;
        let answer = write(client, Method::DELETE, &name.path(), None, cancel).await;
        client
            .deleted(Api::Compute, answer, cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

/// One write (`method` on `path`), repeated on a retryable error with the same `requestId`, so
/// that Compute does it once however many times it is sent.
async fn write(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    retry(
        client.policy(),
        Idempotency::Idempotent,
        cancel,
        |attempt: Attempt| {
            let method = method.clone();
            async move {
                client
                    .call(
                        Api::Compute,
                        method,
                        path,
                        &[("requestId", attempt.request_id.as_str())],
                        body,
                        // Repeated by this `retry`, with the same request id.
                        Idempotency::NotIdempotent,
                        cancel,
                    )
                    .await
            }
        },
    )
    .await
}

/// The instance a create met (409): adopted and brought to the desired value when its labels
/// say weir made it for the same deployment (its name derives from the deployment, so the same
/// name in the same deployment is the same address); refused otherwise.
async fn adopt(
    client: &Client,
    r: &ResourceRef,
    name: &VmName,
    cancel: &Cancel,
    conflict: ProviderError,
) -> Result<Value, ProviderError> {
    let Some(live) = client
        .get(Api::Compute, &name.path(), &[], cancel)
        .await
        .map_err(|e| at(r, e))?
    else {
        return Err(at(r, conflict));
    };
    let ours = made_for_deployment(&live, &r.attributes, LABELS);
    if !ours {
        return Err(ProviderError::conflict(format!(
            "{}: the VM {} already exists and weir did not create it for this deployment (its labels `managed-by` and `weir-deployment` do not say so)",
            r.address,
            name.full()
        ))
        .with_help("delete or rename that VM, or give this deployment another name"));
    }
    converge(client, r, name, live, cancel).await
}

/// Brings the live instance to `r`'s attributes with the calls the API has for each change;
/// the instance as it then is. A failure part way returns what exists.
async fn converge(
    client: &Client,
    r: &ResourceRef,
    name: &VmName,
    live: Value,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let desired = &r.attributes;
    let mut current = without_output_only(&to_attributes(&live, desired));
    let wanted = without_output_only(desired);
    // A larger boot disk grows in place: the rest of `disks` is compared as if it had.
    let grow = boot_disk_growth(&current, &wanted);
    if let Some(size) = &grow
        && let Some(Value::Object(parent)) = at_path_mut(&mut current, &BOOT_DISK_SIZE[..3])
    {
        parent.insert(BOOT_DISK_SIZE[3].to_owned(), size.clone());
    }
    let differs = |key: &str| current.get(key) != wanted.get(key);
    let mut fixed: Vec<&str> = desired
        .as_object()
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fixed.retain(|k| !PATH_ATTRIBUTES.contains(k) && *k != "name" && !IN_PLACE.contains(k));
    fixed.retain(|k| !output_only(COMPUTE_INSTANCE).contains(k) && differs(k));
    if !fixed.is_empty() {
        return Err(ProviderError::permanent(format!(
            "{}: the VM {} differs in {}, which weir cannot change in place on a VM",
            r.address,
            name.full(),
            fixed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_help(NOT_IN_PLACE_HELP));
    }
    let changed = |key: &str| differs(key) && desired.get(key).is_some();
    // The disk first: the other changes need the instance as it then is (its fingerprints).
    let live = match grow {
        Some(size) => {
            if let Err(e) = resize_boot_disk(client, name, &live, &size, cancel).await {
                return finish(client, r, name, Err(e)).await;
            }
            client
                .get(Api::Compute, &name.path(), &[], cancel)
                .await
                .map_err(|e| at(r, e))?
                .ok_or_else(|| {
                    at(
                        r,
                        ProviderError::not_found(format!(
                            "the VM {} was deleted while its disk grew",
                            name.full()
                        )),
                    )
                })?
        }
        None => live,
    };
    let done = change(client, name, desired, &live, changed, cancel).await;
    finish(client, r, name, done).await
}

/// The boot disk size `wanted` asks for when it is larger than `current`'s, as Compute writes
/// it; `None` when it is the same, smaller (a new VM, see `normalize`) or not given.
fn boot_disk_growth(current: &Value, wanted: &Value) -> Option<Value> {
    let size = |v: &Value| at_path(v, &BOOT_DISK_SIZE).and_then(disk_size_gb);
    match (size(current), size(wanted)) {
        (Some(was), Some(new)) if new > was => Some(json!(new.to_string())),
        _ => None,
    }
}

/// Grows the live instance's boot disk (`disks.resize` on the disk its first `source` names)
/// to `size` GB, and waits for it.
async fn resize_boot_disk(
    client: &Client,
    name: &VmName,
    live: &Value,
    size: &Value,
    cancel: &Cancel,
) -> Result<(), ProviderError> {
    let source = live
        .pointer("/disks/0/source")
        .and_then(Value::as_str)
        .unwrap_or("");
    let disk = source.rsplit('/').next().unwrap_or("");
    // The last segment of what the API answered becomes a path segment: a disk name only.
    if !is_segment(disk, &[]) {
        return Err(ProviderError::permanent(format!(
            "the VM {} answered the boot disk {source:?}, whose name is not a Compute Engine disk name",
            name.full()
        )));
    }
    let path = format!("{}/disks/{disk}/resize", name.zone_path());
    let op = write(
        client,
        Method::POST,
        &path,
        Some(&json!({"sizeGb": size})),
        cancel,
    )
    .await?;
    client.wait(Api::Compute, op, cancel).await.map(|_| ())
}

/// Makes the changes `changed` names, from the `live` instance to `desired`: labels and
/// metadata on the running VM, then the machine type and service account on the stopped VM.
async fn change(
    client: &Client,
    name: &VmName,
    desired: &Value,
    live: &Value,
    changed: impl Fn(&str) -> bool,
    cancel: &Cancel,
) -> Result<(), ProviderError> {
    if changed("labels") {
        let labels = desired.get("labels").cloned().unwrap_or_else(|| json!({}));
        set_with_fingerprint(
            client,
            name,
            "setLabels",
            live,
            cancel,
            |live| json!({"labels": labels, "labelFingerprint": live.get("labelFingerprint")}),
        )
        .await?;
    }
    if changed("metadata") {
        let items = desired
            .pointer("/metadata/items")
            .cloned()
            .unwrap_or_else(|| json!([]));
        set_with_fingerprint(
            client,
            name,
            "setMetadata",
            live,
            cancel,
            |live| json!({"items": items, "fingerprint": live.pointer("/metadata/fingerprint")}),
        )
        .await?;
    }
    let machine_type = changed("machineType");
    let account = changed("serviceAccounts");
    if !(machine_type || account) {
        return Ok(());
    }
    stopped(client, name, live, cancel, async {
        if machine_type {
            let body = json!({"machineType": desired.get("machineType")});
            set(client, name, "setMachineType", Some(&body), cancel).await?;
        }
        if account {
            set(
                client,
                name,
                "setServiceAccount",
                Some(&service_account(desired)?),
                cancel,
            )
            .await?;
        }
        Ok(())
    })
    .await
}

/// `POST <instance>/<verb>` with `body`, and its operation waited for.
async fn set(
    client: &Client,
    name: &VmName,
    verb: &str,
    body: Option<&Value>,
    cancel: &Cancel,
) -> Result<(), ProviderError> {
    let op = write(client, Method::POST, &name.verb(verb), body, cancel).await?;
    client.wait(Api::Compute, op, cancel).await.map(|_| ())
}

/// Runs `change` on the VM stopped: stops it first unless it is already `TERMINATED`, and
/// starts it again afterwards if it was running, even when `change` failed.
async fn stopped(
    client: &Client,
    name: &VmName,
    live: &Value,
    cancel: &Cancel,
    change: impl Future<Output = Result<(), ProviderError>>,
) -> Result<(), ProviderError> {
    let was_running = live.get("status").and_then(Value::as_str) != Some("TERMINATED");
    if was_running {
        set(client, name, "stop", None, cancel).await?;
    }
    let changed = change.await;
    if was_running && let Err(e) = set(client, name, "start", None, cancel).await {
        let message = match &changed {
            Ok(()) => format!("the VM was changed but not started again: {}", e.message),
            Err(first) => format!(
                "{}; and the VM, stopped for the change, was not started again: {}",
                first.message, e.message
            ),
        };
        return Err(ProviderError { message, ..e });
    }
    changed
}

/// `setLabels` or `setMetadata` (`verb`) with the body `make` builds from the live instance
/// (its current fingerprint); on 412 the instance is read again and the call retried with the
/// new fingerprint, a new `requestId` for the new body.
async fn set_with_fingerprint(
    client: &Client,
    name: &VmName,
    verb: &str,
    live: &Value,
    cancel: &Cancel,
    make: impl Fn(&Value) -> Value,
) -> Result<(), ProviderError> {
    let live = Mutex::new(live.clone());
    let policy = RetryPolicy {
        max_attempts: FINGERPRINT_ATTEMPTS,
        ..client.policy().clone()
    };
    // The inner result is the write's own: its retryable errors were already retried.
    let op = retry(&policy, Idempotency::Idempotent, cancel, |_| async {
        let body = make(&live.lock().map(|l| l.clone()).unwrap_or_default());
        match write(client, Method::POST, &name.verb(verb), Some(&body), cancel).await {
            Err(e) if e.kind == ErrorKind::PreconditionFailed => {
                let fresh = client
                    .get(Api::Compute, &name.path(), &[], cancel)
                    .await?
                    .ok_or_else(|| {
                        ProviderError::not_found(format!("{} was deleted meanwhile", name.full()))
                    })?;
                if let Ok(mut l) = live.lock() {
                    *l = fresh;
                }
                Err(ProviderError::retryable(format!(
                    "{}; read it again",
                    e.message
                )))
            }
            other => Ok(other),
        }
    })
    .await??;
    client.wait(Api::Compute, op, cancel).await.map(|_| ())
}

/// The body of `setServiceAccount`: the one account of the attributes.
fn service_account(desired: &Value) -> Result<Value, ProviderError> {
    match desired.get("serviceAccounts").and_then(Value::as_array) {
        Some(accounts) if accounts.len() == 1 => {
            let a = &accounts[0];
            Ok(
                json!({"email": a.get("email"), "scopes": a.get("scopes").cloned().unwrap_or_else(|| json!([]))}),
            )
        }
        _ => Err(ProviderError::permanent(
            "a VM has exactly one service account: `serviceAccounts` must hold one",
        )),
    }
}

/// After a write (`done` says how it went): the instance read again. When the write failed or
/// the wait stopped but the instance exists, the error carries its attributes.
async fn finish(
    client: &Client,
    r: &ResourceRef,
    name: &VmName,
    done: Result<(), ProviderError>,
) -> Result<Value, ProviderError> {
    // Read even when cancelled: one short call, so that what exists gets recorded.
    let live = client
        .get(Api::Compute, &name.path(), &[], &Cancel::new())
        .await;
    let live = live.map(|o| o.map(|live| to_attributes(&live, &r.attributes)));
    settled(r, done, live, || {
        format!(
            "the operation finished but the VM {} is not there",
            name.full()
        )
    })
}

/// The API's body for the attributes: without the path parameters and the output-only fields.
fn body(attributes: &Value) -> Value {
    let mut body = without_output_only(attributes);
    if let Some(fields) = body.as_object_mut() {
        for key in PATH_ATTRIBUTES {
            fields.remove(*key);
        }
    }
    body
}

/// `value` without the output-only fields the schema names (at any depth).
fn without_output_only(value: &Value) -> Value {
    let mut value = value.clone();
    for path in output_only(COMPUTE_INSTANCE) {
        let parts: Vec<&str> = path.split('.').collect();
        if let Some((last, parents)) = parts.split_last()
            && let Some(Value::Object(parent)) = at_path_mut(&mut value, parents)
        {
            parent.remove(*last);
        }
    }
    value
}

fn at_path<'a>(value: &'a Value, parts: &[&str]) -> Option<&'a Value> {
    parts.iter().try_fold(value, |v, k| match v {
        Value::Object(m) => m.get(*k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn at_path_mut<'a>(value: &'a mut Value, parts: &[&str]) -> Option<&'a mut Value> {
    parts.iter().try_fold(value, |v, k| match v {
        Value::Object(m) => m.get_mut(*k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// The live instance in the shape of `shape` (the attributes weir recorded or plans): the
/// fields of `shape` at every depth (see [`project`]) with links written as `shape` writes
/// them, the disks' input-only `initializeParams` as recorded (with the size the disk has),
/// the output-only fields the schema names, and `project` and `zone`.
pub(crate) fn to_attributes(live: &Value, shape: &Value) -> Value {
    let mut live = live.clone();
    if let (Some(disks), Some(shaped)) = (
        live.get_mut("disks").and_then(Value::as_array_mut),
        shape.get("disks").and_then(Value::as_array),
    ) {
        for (disk, s) in disks.iter_mut().zip(shaped) {
            if disk.get("initializeParams").is_none()
                && let Some(mut params) = s.get("initializeParams").cloned()
            {
                if let (Some(size), Some(p)) = (disk.get("diskSizeGb"), params.as_object_mut())
                    && p.contains_key("diskSizeGb")
                {
                    p.insert("diskSizeGb".into(), size.clone());
                }
                disk["initializeParams"] = params;
            }
        }
    }
    let mut out = match relinked(&project(&live, shape), shape) {
        Value::Object(map) => Value::Object(map),
        _ => Value::Object(Map::new()),
    };
    for path in output_only(COMPUTE_INSTANCE) {
        let parts: Vec<&str> = path.split('.').collect();
        if let Some(v) = at_path(&live, &parts)
            && let Some((last, parents)) = parts.split_last()
            && let Some(Value::Object(parent)) = at_path_mut(&mut out, parents)
        {
            parent.insert((*last).to_owned(), v.clone());
        }
    }
    for key in PATH_ATTRIBUTES {
        if let Some(v) = shape.get(*key) {
            out[*key] = v.clone();
        }
    }
    if let Some(name) = live.get("name") {
        out["name"] = name.clone();
    }
    out
}

/// `value` with every Compute link (`https://…/compute/v1/projects/p/zones/z/machineTypes/m`)
/// written as `shape` writes it at the same place: relative (`zones/z/machineTypes/m`), from
/// `projects/`, or as the URL. A link to something else keeps its own path, so a real
/// difference still shows.
fn relinked(value: &Value, shape: &Value) -> Value {
    match (value, shape) {
        (Value::Object(v), Value::Object(s)) => Value::Object(
            v.iter()
                .map(|(k, v)| {
                    let v = match s.get(k) {
                        Some(s) => relinked(v, s),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Value::Array(v), Value::Array(s)) => Value::Array(
            v.iter()
                .enumerate()
                .map(|(i, v)| s.get(i).map_or_else(|| v.clone(), |s| relinked(v, s)))
                .collect(),
        ),
        (Value::String(link), Value::String(written)) if !written.starts_with("https://") => {
            match link.split_once("/compute/v1/") {
                Some((host, from_projects))
                    if host.starts_with("https://") && from_projects.starts_with("projects/") =>
                {
                    if written.starts_with("projects/") {
                        json!(from_projects)
                    } else {
                        // `projects/<p>/` off.
                        let relative = from_projects.splitn(3, '/').nth(2).unwrap_or(from_projects);
                        json!(relative)
                    }
                }
                _ => value.clone(),
            }
        }
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_vm_is_cut_to_the_planned_shape_with_links_as_written() {
        let shape = json!({
            "project": "p", "zone": "us-central1-a", "name": "vm",
            "machineType": "zones/us-central1-a/machineTypes/e2-micro",
            "disks": [{"boot": true, "initializeParams": {
                "sourceImage": "projects/cos-cloud/global/images/family/cos-stable",
                "diskSizeGb": "30"}}],
            "networkInterfaces": [{"network": "global/networks/default",
                "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": null}]}],
            "metadata": {"items": [{"key": "a", "value": "1"}], "fingerprint": null},
            "id": null, "status": null,
        });
        let base = "https://www.googleapis.com/compute/v1/projects/p";
        let live = json!({
            "kind": "compute#instance", "id": "42", "name": "vm", "status": "RUNNING",
            "selfLink": format!("{base}/zones/us-central1-a/instances/vm"),
            "labelFingerprint": "l=",
            "machineType": format!("{base}/zones/us-central1-a/machineTypes/e2-micro"),
            "disks": [{"boot": true, "diskSizeGb": "30", "index": 0,
                "source": format!("{base}/zones/us-central1-a/disks/vm")}],
            "networkInterfaces": [{"network": format!("{base}/global/networks/default"),
                "networkIP": "10.0.0.2", "name": "nic0",
                "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": "34.1.2.3", "kind": "k"}]}],
            "metadata": {"kind": "compute#metadata", "fingerprint": "f=",
                "items": [{"key": "a", "value": "1"}]},
        });
        let mut expected = shape.clone();
        expected["id"] = json!("42");
        expected["status"] = json!("RUNNING");
        expected["selfLink"] = live["selfLink"].clone();
        expected["labelFingerprint"] = json!("l=");
        expected["networkInterfaces"][0]["accessConfigs"][0]["natIP"] = json!("34.1.2.3");
        expected["metadata"]["fingerprint"] = json!("f=");
        assert_eq!(to_attributes(&live, &shape), expected);
        // Another machine type still shows, written the same way.
        let mut bigger = live.clone();
        bigger["machineType"] = json!(format!("{base}/zones/us-central1-a/machineTypes/e2-small"));
        assert_eq!(
            to_attributes(&bigger, &shape)["machineType"],
            json!("zones/us-central1-a/machineTypes/e2-small")
        );
    }

    #[test]
    fn the_body_has_no_path_parameters_nor_output_only_fields() {
        let attributes = json!({"project": "p", "zone": "z", "name": "vm", "id": null,
            "metadata": {"items": [], "fingerprint": null},
            "networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": null}]}]});
        assert_eq!(
            body(&attributes),
            json!({"name": "vm", "metadata": {"items": []},
                "networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}]})
        );
    }

    #[test]
    fn only_a_larger_boot_disk_is_grown() {
        let vm = |size: Value| json!({"disks": [{"boot": true, "initializeParams": {"diskSizeGb": size}}]});
        let current = vm(json!("30"));
        assert_eq!(
            boot_disk_growth(&current, &vm(json!("40"))),
            Some(json!("40"))
        );
        assert_eq!(
            boot_disk_growth(&current, &vm(json!(50))),
            Some(json!("50"))
        );
        assert_eq!(boot_disk_growth(&current, &vm(json!("30"))), None);
        assert_eq!(boot_disk_growth(&current, &vm(json!("20"))), None);
        assert_eq!(boot_disk_growth(&current, &json!({"disks": [{}]})), None);
    }

    #[test]
    fn a_name_that_could_reach_another_path_is_refused() {
        for bad in ["", "..", "a/b", "a?x=1", "a%2f"] {
            let r = ResourceRef {
                address: "google_compute_instance.x".into(),
                type_name: COMPUTE_INSTANCE.into(),
                attributes: json!({"project": "p", "zone": "z", "name": bad}),
                sensitive_paths: Vec::new(),
            };
            let e = VmName::of(&r).err().expect(bad);
            assert_eq!(e.kind, ErrorKind::Permanent);
        }
    }
}
