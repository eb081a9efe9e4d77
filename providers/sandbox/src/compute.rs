//! Compute Engine v1 instances with state: `compute.instances.{insert,get,delete,stop,start,
//! setMachineType,setMetadata,setLabels,setServiceAccount}`, `compute.disks.resize` (of the
//! disks the instances have; grow only) and `compute.zoneOperations.{get,wait}`, kept in
//! memory.
//!
//! As Google does: every write answers a zonal `Operation` (`status` `RUNNING`, then `DONE`
//! after [`Behaviour::operation_delay`], with `error.errors[]` inside when it failed); links are
//! `https://www.googleapis.com/compute/v1/...` URLs; the instance's output-only fields (`id`,
//! `selfLink`, `creationTimestamp`, `status`, `cpuPlatform`, `fingerprint`, `labelFingerprint`,
//! `metadata.fingerprint`, each disk's `source`, `deviceName`, `index`, each interface's
//! `name`, `networkIP` and access config's `natIP`) are filled in, and `initializeParams`, which
//! is input only, is not answered; the fingerprints change on every write that touches them and
//! a stale or missing one is 412 `conditionNotMet`; the status goes `PROVISIONING` → `RUNNING`,
//! `STOPPING` → `TERMINATED` (stop), `STAGING` → `RUNNING` (start), and `setMachineType` or
//! `setServiceAccount` on an instance that is not `TERMINATED` is 400; a duplicate name is 409
//! `alreadyExists`, anything missing 404 `notFound`. A write repeated with the same `requestId`
//! answers the first one's operation and does nothing again.
//!
//! The scheduler VM's container: when the sandbox runs processes, an instance whose metadata has
//! a `weir-container` item (the container its startup script runs, as JSON in Cloud Run's
//! shapes: `command`, `env`, `volumeMounts`, `volumes`) starts that container as a local process
//! ([`crate::processes`]) when it is inserted and when it is started after a stop; the process
//! is killed when the instance is stopped or deleted, and when the sandbox stops. A container
//! that cannot start (bad JSON, a missing secret) leaves the instance running without it, as a
//! VM whose startup script fails does, and the sandbox says why on its stderr.
//!
//! Injected faults ([`Behaviour::unavailable_rate`]): a 429 is answered before anything is
//! done; a 503 to a write is answered after the write was done (its answer lost on the way
//! back), which is what `requestId` is there for.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use crate::processes::{ContainerSpec, Launcher, LocalProcess};
use crate::run_jobs::Behaviour;
use crate::server::Sandbox;
use crate::validate::Request;

/// The metadata item holding the container the scheduler VM runs.
const CONTAINER_ITEM: &str = "weir-container";

/// The base of every link Compute Engine answers.
const LINK: &str = "https://www.googleapis.com/compute/v1";
/// The identity the sandbox reports as the caller of an operation (`user`).
const CALLER: &str = "weir-sandbox@sandbox.invalid";

/// The instances and operations the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Instances by `projects/p/zones/z/instances/name`.
    instances: BTreeMap<String, Value>,
    /// Operations in the order they started, by number.
    operations: BTreeMap<u64, Operation>,
    /// Operation numbers by `projects/p/zones/z/operations/name`.
    by_name: HashMap<String, u64>,
    /// Operation numbers by the `requestId` of the write that started them.
    by_request: HashMap<String, u64>,
    /// Counts writes: ids, fingerprints and operation names come from it.
    writes: u64,
    /// The containers running as local processes, by instance key.
    containers: HashMap<String, LocalProcess>,
}

struct Operation {
    /// The operation as started (`status: RUNNING`).
    body: Value,
    ready_at: Instant,
    /// What happens to the instance once the operation is done.
    effect: Effect,
    /// The operation's `error` once done, if it fails.
    error: Option<Value>,
    /// Whether `effect` was applied.
    settled: bool,
}

enum Effect {
    /// The instance (by key) reaches this status.
    Status(String, &'static str),
    /// The instance (by key) is gone.
    Remove(String),
    /// The write was done when it was asked.
    Nothing,
}

/// Where a request points: `projects/{p}/zones/{z}/{collection}[/{name}[/{verb}]]`.
struct Target<'a> {
    project: &'a str,
    zone: &'a str,
    name: Option<&'a str>,
}

impl Target<'_> {
    fn zone_key(&self) -> String {
        format!("projects/{}/zones/{}", self.project, self.zone)
    }
    fn key(&self, name: &str) -> String {
        format!("{}/instances/{name}", self.zone_key())
    }
}

fn target(path: &str) -> Option<Target<'_>> {
    let rest = path.strip_prefix("/compute/v1/projects/")?;
    let mut parts = rest.split('/');
    let project = parts.next()?;
    (parts.next()? == "zones").then_some(())?;
    let zone = parts.next()?;
    let _collection = parts.next()?;
    Some(Target {
        project,
        zone,
        name: parts.next(),
    })
}

/// The answer to a request to Compute Engine that the documents accepted as `method_id`, or
/// `None` when the sandbox does not serve that method. `fault` is the throttling or outage
/// answer chosen for this request, if any (see the module's documentation).
pub(crate) fn answer(
    store: &mut Store,
    behaviour: &Behaviour,
    launcher: Option<&Launcher>,
    method_id: &str,
    request: &Request,
    fault: Option<(u16, Value)>,
) -> Option<(u16, Value)> {
    let target = target(&request.path)?;
    let write = request.method != "GET" && !method_id.starts_with("compute.zoneOperations.");
    match fault {
        Some(fault) if fault.0 == 503 && write => {
            store.settle();
            serve(store, behaviour, launcher, method_id, request, &target)?;
            store.settle();
            return Some(fault);
        }
        Some(fault) => return Some(fault),
        None => {}
    }
    store.settle();
    let answer = serve(store, behaviour, launcher, method_id, request, &target);
    store.settle();
    answer
}

fn serve(
    store: &mut Store,
    behaviour: &Behaviour,
    launcher: Option<&Launcher>,
    method_id: &str,
    request: &Request,
    target: &Target<'_>,
) -> Option<(u16, Value)> {
    let request_id = request
        .query_value("requestId")
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    if let Some(n) = request_id.as_ref().and_then(|id| store.by_request.get(id)) {
        // The same request again: its operation, nothing done twice.
        return Some((200, store.operations[n].view()));
    }
    let body = request.body.clone().unwrap_or_else(|| json!({}));
    let answer = match method_id {
        "compute.instances.insert" => {
            let answer = insert(store, behaviour, target, body);
            if answer.0 == 200
                && let Some(launcher) = launcher
                && let Some(name) = target_name(&answer.1)
            {
                store.start_container(launcher, target, &name);
            }
            answer
        }
        "compute.instances.list" => {
            let prefix = format!("{}/instances/", target.zone_key());
            let items: Vec<Value> = store
                .instances
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(_, instance)| instance.clone())
                .collect();
            let link = format!("{LINK}/{}/instances", target.zone_key());
            (
                200,
                json!({"kind": "compute#instanceList", "id": link, "items": items, "selfLink": link}),
            )
        }
        "compute.instances.get" => {
            let key = target.key(target.name?);
            match store.instances.get(&key) {
                Some(instance) => (200, instance.clone()),
                None => not_found(&key),
            }
        }
        "compute.instances.delete" => {
            let key = target.key(target.name?);
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(not_found(&key));
            };
            instance["status"] = json!("STOPPING");
            store.containers.remove(&key);
            let effect = Effect::Remove(key.clone());
            store.operation(behaviour, target, "delete", &key, effect, None)
        }
        "compute.instances.stop" => {
            let key = target.key(target.name?);
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(not_found(&key));
            };
            if status(instance) != "TERMINATED" {
                instance["status"] = json!("STOPPING");
                instance["lastStopTimestamp"] = json!(timestamp());
            }
            store.containers.remove(&key);
            let effect = Effect::Status(key.clone(), "TERMINATED");
            store.operation(behaviour, target, "stop", &key, effect, None)
        }
        "compute.instances.start" => {
            let key = target.key(target.name?);
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(not_found(&key));
            };
            match status(instance) {
                "TERMINATED" => {
                    instance["status"] = json!("STAGING");
                    instance["lastStartTimestamp"] = json!(timestamp());
                    if let Some(launcher) = launcher {
                        store.start_container(launcher, target, target.name?);
                    }
                }
                "RUNNING" => {}
                other => return Some(not_ready(&key, other)),
            }
            let effect = Effect::Status(key.clone(), "RUNNING");
            store.operation(behaviour, target, "start", &key, effect, None)
        }
        "compute.instances.setMachineType" | "compute.instances.setServiceAccount" => {
            let key = target.key(target.name?);
            let n = store.next();
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(not_found(&key));
            };
            let what = status(instance);
            if what != "TERMINATED" {
                return Some(compute_error(
                    400,
                    "FAILED_PRECONDITION",
                    "resourceNotReady",
                    format!(
                        "The instance '{key}' must be stopped (TERMINATED) for this change; it is {what}."
                    ),
                ));
            }
            if method_id == "compute.instances.setMachineType" {
                let machine_type = body.get("machineType").and_then(Value::as_str)?;
                instance["machineType"] = json!(link(target.project, machine_type));
            } else {
                let mut account = json!({});
                for key in ["email", "scopes"] {
                    if let Some(v) = body.get(key) {
                        account[key] = v.clone();
                    }
                }
                instance["serviceAccounts"] = json!([account]);
            }
            instance["fingerprint"] = json!(fingerprint(n));
            let effect = Effect::Nothing;
            let kind = method_id.rsplit('.').next().unwrap_or_default().to_owned();
            store.operation(behaviour, target, &kind, &key, effect, None)
        }
        "compute.instances.setMetadata" | "compute.instances.setLabels" => {
            let key = target.key(target.name?);
            let n = store.next();
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(not_found(&key));
            };
            let (current, sent) = match method_id {
                "compute.instances.setMetadata" => (
                    instance.pointer("/metadata/fingerprint"),
                    body.get("fingerprint"),
                ),
                _ => (
                    instance.get("labelFingerprint"),
                    body.get("labelFingerprint"),
                ),
            };
            if sent.is_none() || sent != current {
                return Some(compute_error(
                    412,
                    "FAILED_PRECONDITION",
                    "conditionNotMet",
                    "Supplied fingerprint does not match current metadata fingerprint.".into(),
                ));
            }
            if method_id == "compute.instances.setMetadata" {
                instance["metadata"] = metadata(body.get("items"), n);
            } else {
                instance["labels"] = body.get("labels").cloned().unwrap_or_else(|| json!({}));
                instance["labelFingerprint"] = json!(fingerprint(n));
            }
            instance["fingerprint"] = json!(fingerprint(n));
            let effect = Effect::Nothing;
            let kind = method_id.rsplit('.').next().unwrap_or_default().to_owned();
            store.operation(behaviour, target, &kind, &key, effect, None)
        }
        "compute.disks.resize" => resize(store, behaviour, target, &body),
        "compute.zoneOperations.get" | "compute.zoneOperations.wait" => {
            // Google's wait is best effort and may answer before the operation is done: the
            // sandbox answers at once.
            let key = format!("{}/operations/{}", target.zone_key(), target.name?);
            match store.by_name.get(&key) {
                Some(n) => (200, store.operations[n].view()),
                None => not_found(&key),
            }
        }
        _ => return None,
    };
    if let Some(id) = request_id
        && answer.0 == 200
        && let Some(n) = answer
            .1
            .get("name")
            .and_then(Value::as_str)
            .and_then(|name| {
                store
                    .by_name
                    .get(&format!("{}/operations/{name}", target.zone_key()))
            })
    {
        store.by_request.insert(id, *n);
    }
    Some(answer)
}

fn insert(
    store: &mut Store,
    behaviour: &Behaviour,
    target: &Target<'_>,
    body: Value,
) -> (u16, Value) {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !valid_name(&name) {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "invalid",
            format!(
                "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?'"
            ),
        );
    }
    let key = target.key(&name);
    if store.instances.contains_key(&key) {
        return compute_error(
            409,
            "ALREADY_EXISTS",
            "alreadyExists",
            format!("The resource '{key}' already exists"),
        );
    }
    let Some(machine_type) = body.get("machineType").and_then(Value::as_str) else {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "required",
            "Invalid value for field 'resource.machineType': ''. Machine type must be specified."
                .into(),
        );
    };
    let disks = body
        .get("disks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if disks
        .iter()
        .filter(|d| d.get("boot") == Some(&json!(true)))
        .count()
        != 1
    {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "invalid",
            "Invalid value for field 'resource.disks': ''. Exactly one boot disk must be specified.".into(),
        );
    }
    let n = store.next();
    let project = target.project;
    let zone_link = format!("{LINK}/{}", target.zone_key());
    let region = target.zone.rsplit_once('-').map_or(target.zone, |(r, _)| r);
    let mut instance = body.clone();
    let Some(fields) = instance.as_object_mut() else {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "invalid",
            "The instance is not an object.".into(),
        );
    };
    fields.insert("kind".into(), json!("compute#instance"));
    fields.insert(
        "id".into(),
        json!((4_000_000_000_000_000_000u64 + n).to_string()),
    );
    fields.insert("creationTimestamp".into(), json!(timestamp()));
    fields.insert("selfLink".into(), json!(format!("{LINK}/{key}")));
    fields.insert("zone".into(), json!(zone_link));
    fields.insert("status".into(), json!("PROVISIONING"));
    fields.insert("cpuPlatform".into(), json!("Intel Broadwell"));
    fields.insert("fingerprint".into(), json!(fingerprint(n)));
    fields.insert("labelFingerprint".into(), json!(fingerprint(n)));
    fields.insert("machineType".into(), json!(link(project, machine_type)));
    fields.insert(
        "metadata".into(),
        metadata(body.pointer("/metadata/items"), n),
    );
    fields.entry("labels").or_insert_with(|| json!({}));
    fields.insert("startRestricted".into(), json!(false));
    fields.entry("deletionProtection").or_insert(json!(false));
    fields.entry("canIpForward").or_insert(json!(false));
    let disks: Vec<Value> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let size = d
                .pointer("/initializeParams/diskSizeGb")
                .cloned()
                .unwrap_or_else(|| json!("10"));
            let disk_name = if i == 0 {
                name.clone()
            } else {
                format!("{name}-{i}")
            };
            json!({
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": format!("{LINK}/{}/disks/{disk_name}", target.zone_key()),
                "deviceName": format!("persistent-disk-{i}"),
                "index": i,
                "boot": d.get("boot").cloned().unwrap_or(json!(false)),
                "autoDelete": d.get("autoDelete").cloned().unwrap_or(json!(false)),
                "interface": "SCSI",
                "diskSizeGb": size,
                "architecture": "X86_64",
            })
        })
        .collect();
    fields.insert("disks".into(), json!(disks));
    let interfaces: Vec<Value> = body
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, mut nic)| {
            let network = nic
                .get("network")
                .and_then(Value::as_str)
                .unwrap_or("global/networks/default")
                .to_owned();
            nic["kind"] = json!("compute#networkInterface");
            nic["network"] = json!(link(project, &network));
            nic["subnetwork"] = json!(format!(
                "{LINK}/projects/{project}/regions/{region}/subnetworks/default"
            ));
            nic["networkIP"] = json!(format!("10.128.{}.{}", n % 250, i + 2));
            nic["name"] = json!(format!("nic{i}"));
            nic["fingerprint"] = json!(fingerprint(n));
            nic["stackType"] = json!("IPV4_ONLY");
            if let Some(configs) = nic.get_mut("accessConfigs").and_then(Value::as_array_mut) {
                for (j, c) in configs.iter_mut().enumerate() {
                    c["kind"] = json!("compute#accessConfig");
                    c["natIP"] = json!(format!("34.{}.{}.{}", n % 250, i, j + 10));
                    if c.get("name").is_none() {
                        c["name"] = json!("External NAT");
                    }
                    if c.get("networkTier").is_none() {
                        c["networkTier"] = json!("PREMIUM");
                    }
                }
            }
            nic
        })
        .collect();
    fields.insert("networkInterfaces".into(), json!(interfaces));
    let mut scheduling = fields
        .get("scheduling")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (k, v) in [
        ("onHostMaintenance", json!("MIGRATE")),
        ("automaticRestart", json!(true)),
        ("preemptible", json!(false)),
        ("provisioningModel", json!("STANDARD")),
    ] {
        if scheduling.get(k).is_none() {
            scheduling[k] = v;
        }
    }
    fields.insert("scheduling".into(), scheduling);
    let failing = behaviour.failing_instances.contains(&name);
    let (effect, error) = if failing {
        (
            Effect::Status(key.clone(), "TERMINATED"),
            Some(json!({"errors": [{
                "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                "message": format!("The zone '{}' does not have enough resources available to fulfill the request (the sandbox was told to fail '{name}').", target.zone_key()),
            }]})),
        )
    } else {
        (Effect::Status(key.clone(), "RUNNING"), None)
    };
    store.instances.insert(key.clone(), instance);
    store.operation(behaviour, target, "insert", &key, effect, error)
}

/// `disks.resize`: the disk (attached to an instance, the only disks the sandbox has) grows to
/// `sizeGb`; a size that is not larger is 400, as Google answers. The instance's fingerprints
/// stay: the disk is another resource.
fn resize(
    store: &mut Store,
    behaviour: &Behaviour,
    target: &Target<'_>,
    body: &Value,
) -> (u16, Value) {
    let Some(name) = target.name else {
        return not_found(&format!("{}/disks", target.zone_key()));
    };
    let key = format!("{}/disks/{name}", target.zone_key());
    let source = json!(format!("{LINK}/{key}"));
    let Some(disk) = store
        .instances
        .values_mut()
        .filter_map(|i| i.get_mut("disks").and_then(Value::as_array_mut))
        .flatten()
        .find(|d| d.get("source") == Some(&source))
    else {
        return not_found(&key);
    };
    let gb = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
    };
    let sent = body.get("sizeGb");
    let (Some(new), Some(was)) = (gb(sent), gb(disk.get("diskSizeGb"))) else {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "invalid",
            format!(
                "Invalid value for field 'sizeGb': '{}'.",
                sent.unwrap_or(&Value::Null)
            ),
        );
    };
    if new <= was {
        return compute_error(
            400,
            "INVALID_ARGUMENT",
            "invalid",
            format!(
                "Invalid value for field 'sizeGb': '{new}'. New disk size '{new}' GiB must be larger than existing size '{was}' GiB."
            ),
        );
    }
    disk["diskSizeGb"] = json!(new.to_string());
    store.operation(behaviour, target, "resize", &key, Effect::Nothing, None)
}

/// A view of the containers the scheduler VMs run as local processes, kept valid after
/// [`Sandbox::spawn`]: for a test to tell a container that ended from one still starting.
pub struct VmContainers(Arc<Mutex<Store>>);

/// A VM's container as a local process.
#[derive(Debug)]
pub struct ContainerState {
    /// The file holding its stdout and stderr.
    pub log: PathBuf,
    /// Its exit status, once it has ended.
    pub exited: Option<ExitStatus>,
}

impl Sandbox {
    /// A view of the scheduler VMs' containers.
    pub fn vm_containers(&self) -> VmContainers {
        VmContainers(self.compute.clone())
    }
}

impl Drop for Sandbox {
    /// A sandbox that stops stops the containers of its VMs, even while a [`VmContainers`]
    /// view still shares them.
    fn drop(&mut self) {
        let mut store = self.compute.lock().unwrap_or_else(|e| e.into_inner());
        store.containers.clear();
    }
}

impl VmContainers {
    /// The container of the instance named `name` (in any project and zone), if it runs one.
    pub fn state(&self, name: &str) -> Option<ContainerState> {
        let mut store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let suffix = format!("/instances/{name}");
        let process = store
            .containers
            .iter_mut()
            .find(|(key, _)| key.ends_with(&suffix))?
            .1;
        Some(ContainerState {
            log: process.log(),
            exited: process.try_wait().ok().flatten(),
        })
    }
}

/// The instance name an operation's `targetLink` ends with.
fn target_name(operation: &Value) -> Option<String> {
    let link = operation.get("targetLink").and_then(Value::as_str)?;
    link.rsplit('/').next().map(str::to_owned)
}

impl Store {
    /// Starts the instance's `weir-container` as a local process, if its metadata has one.
    fn start_container(&mut self, launcher: &Launcher, target: &Target<'_>, name: &str) {
        let key = target.key(name);
        let Some(instance) = self.instances.get(&key) else {
            return;
        };
        let Some(text) = instance
            .pointer("/metadata/items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|item| item.get("key").and_then(Value::as_str) == Some(CONTAINER_ITEM))
            .and_then(|item| item.get("value").and_then(Value::as_str))
            .map(str::to_owned)
        else {
            return;
        };
        let n = self.next();
        let started = serde_json::from_str::<Value>(&text)
            .map_err(|e| format!("its {CONTAINER_ITEM} metadata item is not JSON: {e}"))
            .and_then(|container| {
                launcher.start(&ContainerSpec {
                    container: &container,
                    volumes: container.get("volumes"),
                    args: None,
                    env_overrides: None,
                    project: target.project,
                    label: &format!("{name}-{n}"),
                })
            });
        match started {
            Ok(process) => {
                self.containers.insert(key, process);
            }
            Err(why) => {
                eprintln!("weir-sandbox: the container of instance {key} does not run: {why}")
            }
        }
    }

    /// The container of the instance `key` that runs as a local process, if any.
    #[cfg(test)]
    fn container(&mut self, key: &str) -> Option<&mut LocalProcess> {
        self.containers.get_mut(key)
    }

    fn next(&mut self) -> u64 {
        self.writes += 1;
        self.writes
    }

    /// Applies the effects of the operations that are done, in the order they started.
    fn settle(&mut self) {
        let now = Instant::now();
        for op in self.operations.values_mut() {
            if op.settled || now < op.ready_at {
                continue;
            }
            op.settled = true;
            match &op.effect {
                Effect::Status(key, status) => {
                    if let Some(instance) = self.instances.get_mut(key) {
                        instance["status"] = json!(status);
                    }
                }
                Effect::Remove(key) => {
                    self.instances.remove(key);
                }
                Effect::Nothing => {}
            }
        }
    }

    /// Starts an operation of `kind` on the instance `key` and answers it.
    fn operation(
        &mut self,
        behaviour: &Behaviour,
        target: &Target<'_>,
        kind: &str,
        key: &str,
        effect: Effect,
        error: Option<Value>,
    ) -> (u16, Value) {
        let n = self.next();
        let name = format!("operation-{n}-{:08x}", std::process::id());
        // A disk's id, which the sandbox keeps nowhere else, is its instance's.
        let link = json!(format!("{LINK}/{key}"));
        let target_id = self
            .instances
            .get(key)
            .or_else(|| {
                self.instances.values().find(|i| {
                    i.get("disks")
                        .and_then(Value::as_array)
                        .is_some_and(|d| d.iter().any(|d| d.get("source") == Some(&link)))
                })
            })
            .and_then(|i| i.get("id"))
            .cloned()
            .unwrap_or_else(|| json!("0"));
        let now = timestamp();
        let body = json!({
            "kind": "compute#operation",
            "id": (7_000_000_000_000_000_000u64 + n).to_string(),
            "name": name,
            "zone": format!("{LINK}/{}", target.zone_key()),
            "operationType": kind,
            "targetLink": format!("{LINK}/{key}"),
            "targetId": target_id,
            "status": "RUNNING",
            "progress": 0,
            "user": CALLER,
            "insertTime": now,
            "startTime": now,
            "selfLink": format!("{LINK}/{}/operations/{name}", target.zone_key()),
        });
        let op = Operation {
            body,
            ready_at: Instant::now() + behaviour.operation_delay,
            effect,
            error,
            settled: false,
        };
        let answer = op.view();
        self.by_name
            .insert(format!("{}/operations/{name}", target.zone_key()), n);
        self.operations.insert(n, op);
        (200, answer)
    }
}

impl Operation {
    fn view(&self) -> Value {
        let mut op = self.body.clone();
        if Instant::now() >= self.ready_at {
            op["status"] = json!("DONE");
            op["progress"] = json!(100);
            op["endTime"] = json!(timestamp());
            if let Some(error) = &self.error {
                op["error"] = error.clone();
                op["httpErrorStatusCode"] = json!(503);
                op["httpErrorMessage"] = json!("SERVICE UNAVAILABLE");
            }
        }
        op
    }
}

fn status(instance: &Value) -> &str {
    instance.get("status").and_then(Value::as_str).unwrap_or("")
}

/// The instance's `metadata` with `items` and the fingerprint of write `n`.
fn metadata(items: Option<&Value>, n: u64) -> Value {
    let mut metadata = json!({"kind": "compute#metadata", "fingerprint": fingerprint(n)});
    if let Some(items) = items.filter(|i| i.as_array().is_some_and(|a| !a.is_empty())) {
        metadata["items"] = items.clone();
    }
    metadata
}

/// `zones/z/machineTypes/m` (or `projects/p/...`, or a full URL) as the full URL Google answers.
fn link(project: &str, partial: &str) -> String {
    if partial.starts_with("https://") {
        partial.to_owned()
    } else if let Some(rest) = partial.strip_prefix("projects/") {
        format!("{LINK}/projects/{rest}")
    } else {
        format!("{LINK}/projects/{project}/{partial}")
    }
}

/// Google's fingerprints are 8 bytes in base64; this one is the write's number.
fn fingerprint(n: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = n.to_be_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

fn not_found(key: &str) -> (u16, Value) {
    compute_error(
        404,
        "NOT_FOUND",
        "notFound",
        format!("The resource '{key}' was not found"),
    )
}

fn not_ready(key: &str, status: &str) -> (u16, Value) {
    compute_error(
        400,
        "FAILED_PRECONDITION",
        "resourceNotReady",
        format!("The resource '{key}' is not ready: it is {status}."),
    )
}

/// Compute Engine's error shape: the message again in `errors[]` with a `reason`.
fn compute_error(code: u16, status: &str, reason: &str, message: String) -> (u16, Value) {
    (
        code,
        json!({"error": {
            "code": code,
            "message": message,
            "status": status,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/compute/v1/projects/p/zones/us-central1-a";

    fn vm() -> Value {
        json!({
            "name": "vm", "machineType": "zones/us-central1-a/machineTypes/e2-micro",
            "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"diskSizeGb": "30"}}],
            "networkInterfaces": [{"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}],
            "metadata": {"items": [{"key": "a", "value": "1"}]},
        })
    }

    fn call(store: &mut Store, id: &str, r: Request) -> (u16, Value) {
        answer(store, &Behaviour::default(), None, id, &r, None).unwrap()
    }

    #[test]
    fn the_same_request_id_answers_the_same_operation_and_makes_one_instance() {
        let mut store = Store::default();
        let insert = Request::of(
            "POST",
            &format!("{BASE}/instances"),
            &[("requestId", "r1")],
            Some(vm()),
        );
        let (s1, op1) = call(&mut store, "compute.instances.insert", insert.clone());
        let (s2, op2) = call(&mut store, "compute.instances.insert", insert);
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(op1["name"], op2["name"]);
        assert_eq!(store.instances.len(), 1);
        let other = Request::of(
            "POST",
            &format!("{BASE}/instances"),
            &[("requestId", "r2")],
            Some(vm()),
        );
        assert_eq!(call(&mut store, "compute.instances.insert", other).0, 409);
    }

    #[test]
    fn a_stale_fingerprint_is_412_and_the_machine_type_changes_only_when_stopped() {
        let mut store = Store::default();
        let insert = Request::of("POST", &format!("{BASE}/instances"), &[], Some(vm()));
        call(&mut store, "compute.instances.insert", insert);
        let get = Request::of("GET", &format!("{BASE}/instances/vm"), &[], None);
        let (_, live) = call(&mut store, "compute.instances.get", get.clone());
        assert_eq!(live["status"], "RUNNING");
        assert!(live["disks"][0].get("initializeParams").is_none());
        let fp = live["metadata"]["fingerprint"].clone();
        let set = |fp: &Value| {
            Request::of(
                "POST",
                &format!("{BASE}/instances/vm/setMetadata"),
                &[],
                Some(json!({"fingerprint": fp, "items": [{"key": "a", "value": "2"}]})),
            )
        };
        assert_eq!(
            call(&mut store, "compute.instances.setMetadata", set(&fp)).0,
            200
        );
        assert_eq!(
            call(&mut store, "compute.instances.setMetadata", set(&fp)).0,
            412
        );
        let machine = Request::of(
            "POST",
            &format!("{BASE}/instances/vm/setMachineType"),
            &[],
            Some(json!({"machineType": "zones/us-central1-a/machineTypes/e2-small"})),
        );
        assert_eq!(
            call(
                &mut store,
                "compute.instances.setMachineType",
                machine.clone()
            )
            .0,
            400
        );
        let stop = Request::of("POST", &format!("{BASE}/instances/vm/stop"), &[], None);
        call(&mut store, "compute.instances.stop", stop);
        assert_eq!(
            call(&mut store, "compute.instances.setMachineType", machine).0,
            200
        );
        let (_, live) = call(&mut store, "compute.instances.get", get);
        assert_eq!(live["status"], "TERMINATED");
        assert!(
            live["machineType"]
                .as_str()
                .unwrap()
                .ends_with("/machineTypes/e2-small")
        );
    }

    #[test]
    fn a_disk_grows_but_never_shrinks_and_the_instance_shows_its_size() {
        let mut store = Store::default();
        let insert = Request::of("POST", &format!("{BASE}/instances"), &[], Some(vm()));
        call(&mut store, "compute.instances.insert", insert);
        let get = Request::of("GET", &format!("{BASE}/instances/vm"), &[], None);
        let (_, before) = call(&mut store, "compute.instances.get", get.clone());
        let disk = before["disks"][0]["source"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let resize = |size: &str| {
            Request::of(
                "POST",
                &format!("{BASE}/disks/{disk}/resize"),
                &[],
                Some(json!({"sizeGb": size})),
            )
        };
        let (status, op) = call(&mut store, "compute.disks.resize", resize("20"));
        assert_eq!(status, 400, "{op}");
        assert!(
            op["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must be larger")
        );
        assert_eq!(
            call(&mut store, "compute.disks.resize", resize("30")).0,
            400
        );
        let (status, op) = call(&mut store, "compute.disks.resize", resize("50"));
        assert_eq!(status, 200, "{op}");
        assert_eq!(op["operationType"], "resize");
        assert_eq!(op["targetLink"], before["disks"][0]["source"]);
        assert_eq!(op["targetId"], before["id"]);
        let (_, after) = call(&mut store, "compute.instances.get", get);
        assert_eq!(after["disks"][0]["diskSizeGb"], "50");
        for fp in ["/fingerprint", "/labelFingerprint", "/metadata/fingerprint"] {
            assert_eq!(after.pointer(fp), before.pointer(fp), "{fp}");
        }
        let missing = Request::of(
            "POST",
            &format!("{BASE}/disks/other/resize"),
            &[],
            Some(json!({"sizeGb": "60"})),
        );
        assert_eq!(call(&mut store, "compute.disks.resize", missing).0, 404);
    }

    /// Whether the container process of `key` is alive (`None`: there is none).
    fn alive(store: &mut Store, key: &str) -> Option<bool> {
        let process = store.container(key)?;
        Some(process.try_wait().unwrap().is_none())
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{what} never happened"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_scheduler_container_runs_from_insert_to_stop_again_from_start_and_dies_with_delete() {
        let dir = tempfile::tempdir().unwrap();
        let stand_in = crate::processes::ImageStandIn {
            env: vec![("FROM_IMAGE".into(), "image".into())],
            cloudsql_dir: None,
            process_dir: Some(dir.path().to_owned()),
        };
        let secrets = |name: &str| {
            (name == "projects/p/secrets/db-url/versions/latest")
                .then(|| b"postgresql://x".to_vec())
        };
        let launcher = Launcher {
            stand_in: &stand_in,
            secrets: &secrets,
        };
        let container = json!({
            "image": "mageai/mageai:0.9.80",
            "command": ["sh", "-c", "echo \"$FROM_IMAGE $DB_URL $PLAIN\"; exec sleep 300"],
            "env": [
                {"name": "PLAIN", "value": "plain"},
                {"name": "DB_URL", "valueSource": {"secretKeyRef": {"secret": "db-url", "version": "latest"}}},
            ],
        });
        let mut scheduler = vm();
        scheduler["metadata"]["items"] =
            json!([{"key": CONTAINER_ITEM, "value": container.to_string()}]);
        let mut store = Store::default();
        let call = |store: &mut Store, id: &str, r: Request| {
            answer(store, &Behaviour::default(), Some(&launcher), id, &r, None).unwrap()
        };
        let key = "projects/p/zones/us-central1-a/instances/vm";

        let insert = Request::of("POST", &format!("{BASE}/instances"), &[], Some(scheduler));
        assert_eq!(call(&mut store, "compute.instances.insert", insert).0, 200);
        assert_eq!(alive(&mut store, key), Some(true));
        let log = store.container(key).unwrap().log();
        assert!(log.starts_with(dir.path()), "{}", log.display());
        wait_for("the container's output", || {
            std::fs::read_to_string(&log).unwrap_or_default() == "image postgresql://x plain\n"
        });

        let stop = Request::of("POST", &format!("{BASE}/instances/vm/stop"), &[], None);
        let first = store.container(key).unwrap().pid().unwrap();
        assert_eq!(call(&mut store, "compute.instances.stop", stop).0, 200);
        assert_eq!(alive(&mut store, key), None);
        assert!(
            !crate::processes::running(first),
            "the stopped container still runs"
        );

        let start = Request::of("POST", &format!("{BASE}/instances/vm/start"), &[], None);
        assert_eq!(call(&mut store, "compute.instances.start", start).0, 200);
        assert_eq!(alive(&mut store, key), Some(true));
        let second = store.container(key).unwrap().log();
        assert_ne!(
            second, log,
            "a start runs a new process in a directory of its own"
        );
        let second = store.container(key).unwrap().pid().unwrap();

        let delete = Request::of("DELETE", &format!("{BASE}/instances/vm"), &[], None);
        assert_eq!(call(&mut store, "compute.instances.delete", delete).0, 200);
        assert_eq!(alive(&mut store, key), None);
        assert!(
            !crate::processes::running(second),
            "the deleted VM's container still runs"
        );

        // An instance without the item runs nothing; a bad item runs nothing either.
        let mut plain = vm();
        plain["name"] = json!("plain");
        let insert = Request::of(
            "POST",
            &format!("{BASE}/instances"),
            &[],
            Some(plain.clone()),
        );
        assert_eq!(call(&mut store, "compute.instances.insert", insert).0, 200);
        assert!(store.containers.is_empty());
        plain["name"] = json!("bad");
        plain["metadata"]["items"] = json!([{"key": CONTAINER_ITEM, "value": "{not json"}]);
        let insert = Request::of("POST", &format!("{BASE}/instances"), &[], Some(plain));
        assert_eq!(call(&mut store, "compute.instances.insert", insert).0, 200);
        assert!(store.containers.is_empty());
    }

    #[test]
    fn a_sandbox_that_stops_stops_its_vms_containers_even_while_a_view_shares_them() {
        use crate::executions::tests::{call, catalog};
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(catalog())
            .run_processes(true)
            .process_dir(dir.path().to_owned());
        let containers = sandbox.vm_containers();
        let running = sandbox.spawn("127.0.0.1:0".parse().unwrap()).unwrap();
        let container = json!({"command": ["sh", "-c", "echo up; exec sleep 300"]});
        let mut scheduler = vm();
        scheduler["metadata"]["items"] =
            json!([{"key": CONTAINER_ITEM, "value": container.to_string()}]);
        let (status, answer) = call(
            running.addr(),
            "compute.googleapis.com",
            "POST",
            &format!("{BASE}/instances"),
            &scheduler,
        );
        assert_eq!(status, 200, "{answer}");
        let state = containers.state("vm").expect("the VM runs its container");
        assert!(state.exited.is_none(), "{state:?}");
        wait_for("the container's output", || {
            std::fs::read_to_string(&state.log).unwrap_or_default() == "up\n"
        });
        let pid = {
            let mut store = containers.0.lock().unwrap();
            store
                .container(&format!("{}/instances/vm", &BASE["/compute/v1/".len()..]))
                .and_then(|p| p.pid())
                .unwrap()
        };
        drop(running);
        assert!(
            !crate::processes::running(pid),
            "the container outlived the sandbox"
        );
        assert!(containers.state("vm").is_none());
    }

    #[test]
    fn fingerprints_look_like_googles() {
        assert_eq!(fingerprint(1), "AAAAAAAAAAE=");
        assert_eq!(fingerprint(1).len(), 12);
    }
}
