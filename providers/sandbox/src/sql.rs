//! Cloud SQL Admin v1 with state: `sql.instances.{insert,get,patch,delete}`,
//! `sql.databases.{insert,get,delete}`, `sql.users.{insert,get,list,update,delete}` and
//! `sql.operations.get`, kept in memory.
//!
//! As Google does: every write answers a Cloud SQL `Operation` (`kind`, `name`, `status` from
//! `PENDING` to `DONE` after [`Behaviour::operation_delay`], `operationType`, `targetLink`,
//! `selfLink` at `https://sqladmin.googleapis.com/v1/projects/<p>/operations/<name>`), and a
//! failure is reported as `DONE` with `error.errors[]` inside (see
//! [`Behaviour::failing_sql_instances`]); a new instance is `PENDING_CREATE` until its operation
//! is done, then `RUNNABLE` with an IP address (or `FAILED`); its output-only fields
//! (`connectionName` = `project:region:name`, `selfLink`, `serviceAccountEmailAddress`,
//! `createTime`, `gceZone`, …) and the settings' defaults are filled in; `settings.settingsVersion`
//! goes up by one on every patch, and a patch that sends an older one is 412; a duplicate
//! instance, database or user is 409, anything missing 404; an instance with deletion
//! protection on refuses deletion (400). A user's password is kept (for tests:
//! [`SqlPasswords`]) but never appears in any answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use crate::run_jobs::Behaviour;
use crate::run_jobs::error;
use crate::server::Sandbox;
use crate::validate::Request;

/// The identity the sandbox reports as the caller of operations.
const CALLER: &str = "weir-sandbox@sandbox.invalid";

/// The Cloud SQL instances, databases, users and operations the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Instances by `project/name`.
    instances: BTreeMap<String, Instance>,
    operations: HashMap<String, Operation>,
    /// Counts writes: operation names and addresses come from it.
    writes: u64,
}

struct Instance {
    body: Value,
    /// Until when the instance is being created (its create operation not done yet).
    creating_until: Instant,
    /// Whether its create operation fails.
    failed: bool,
    /// Databases by name.
    databases: BTreeMap<String, Value>,
    /// Users by name, with their passwords (never answered).
    users: BTreeMap<String, (Value, String)>,
}

struct Operation {
    body: Value,
    ready_at: Instant,
    /// The `error.errors[]` of the operation once done, if it fails.
    error: Option<Value>,
}

/// The passwords Cloud SQL users were given, for tests: what Google would never show.
#[derive(Clone)]
pub struct SqlPasswords(Arc<Mutex<Store>>);

impl SqlPasswords {
    /// The password of the user `user` of the instance `instance` in `project`, if any.
    pub fn get(&self, project: &str, instance: &str, user: &str) -> Option<String> {
        let store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let instance = store.instances.get(&format!("{project}/{instance}"))?;
        instance.users.get(user).map(|(_, p)| p.clone())
    }
}

impl Sandbox {
    /// A view of the Cloud SQL users' passwords, kept valid after [`Sandbox::spawn`].
    pub fn sql_passwords(&self) -> SqlPasswords {
        SqlPasswords(self.sql.clone())
    }
}

/// The answer to a request to Cloud SQL that the documents accepted as `method_id`, or `None`
/// when the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    behaviour: &Behaviour,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let path = request.path.strip_prefix("/v1/projects/")?;
    let parts: Vec<&str> = path.split('/').collect();
    let project = *parts.first()?;
    let query = |key: &str| request.query_value(key);
    let body = request.body.clone().unwrap_or_else(|| json!({}));
    let instance_key = parts.get(2).map(|i| format!("{project}/{i}"));
    Some(match method_id {
        "sql.instances.insert" => insert_instance(store, behaviour, project, body),
        "sql.instances.list" => {
            let prefix = format!("{project}/");
            let items: Vec<Value> = store
                .instances
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .map(|(_, i)| i.as_seen())
                .collect();
            (200, json!({"kind": "sql#instancesList", "items": items}))
        }
        "sql.instances.get" => match store.instances.get(&instance_key?) {
            Some(i) => (200, i.as_seen()),
            None => instance_not_found(),
        },
        "sql.instances.patch" => patch_instance(store, behaviour, &instance_key?, body),
        "sql.instances.delete" => {
            let key = instance_key?;
            let Some(instance) = store.instances.get(&key) else {
                return Some(instance_not_found());
            };
            if instance.body.pointer("/settings/deletionProtectionEnabled") == Some(&json!(true)) {
                return Some(error(
                    400,
                    "FAILED_PRECONDITION",
                    "The instance is protected from deletion: disable its deletion protection (settings.deletionProtectionEnabled) first.".into(),
                ));
            }
            let target = instance.body["selfLink"].clone();
            store.instances.remove(&key);
            store.operation(behaviour, project, "DELETE", &target, None)
        }
        "sql.databases.insert" => {
            let key = instance_key?;
            let n = store.next();
            let Some(instance) = store.instances.get_mut(&key) else {
                return Some(instance_not_found());
            };
            let Some(name) = body.get("name").and_then(Value::as_str).map(str::to_owned) else {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "Missing parameter: name.".into(),
                ));
            };
            if instance.databases.contains_key(&name) {
                return Some(error(
                    409,
                    "ALREADY_EXISTS",
                    format!("The database {name} already exists."),
                ));
            }
            let link = format!("{}/databases/{name}", instance.body["selfLink"].as_str()?);
            let mut database = json!({
                "kind": "sql#database",
                "charset": "UTF8",
                "collation": "en_US.UTF8",
            });
            merge(&mut database, &body);
            database["name"] = json!(name);
            database["project"] = json!(project);
            database["instance"] = instance.body["name"].clone();
            database["selfLink"] = json!(link);
            database["etag"] = json!(etag(n));
            instance.databases.insert(name, database);
            store.operation(behaviour, project, "CREATE_DATABASE", &json!(link), None)
        }
        "sql.databases.get" => {
            let instance = store.instances.get(&instance_key?);
            match instance.and_then(|i| i.databases.get(*parts.get(4)?)) {
                Some(d) => (200, d.clone()),
                None => database_not_found(),
            }
        }
        "sql.databases.delete" => {
            let Some(instance) = store.instances.get_mut(&instance_key?) else {
                return Some(instance_not_found());
            };
            match instance.databases.remove(*parts.get(4)?) {
                Some(d) => {
                    let link = d["selfLink"].clone();
                    store.operation(behaviour, project, "DELETE_DATABASE", &link, None)
                }
                None => database_not_found(),
            }
        }
        "sql.users.insert" | "sql.users.update" => {
            let n = store.next();
            let Some(instance) = store.instances.get_mut(&instance_key?) else {
                return Some(instance_not_found());
            };
            let inserting = method_id == "sql.users.insert";
            let name = match inserting {
                true => body.get("name").and_then(Value::as_str),
                false => query("name"),
            };
            let Some(name) = name.filter(|n| !n.is_empty()).map(str::to_owned) else {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    "Missing parameter: name.".into(),
                ));
            };
            let existing = instance.users.get(&name);
            if inserting && existing.is_some() {
                return Some(error(
                    409,
                    "ALREADY_EXISTS",
                    format!("The user {name} already exists."),
                ));
            }
            if !inserting && existing.is_none() {
                return Some(user_not_found());
            }
            let mut user = body.clone();
            if let Some(fields) = user.as_object_mut() {
                fields.remove("password");
            }
            user["kind"] = json!("sql#user");
            user["name"] = json!(name);
            user["project"] = json!(project);
            user["instance"] = instance.body["name"].clone();
            user["etag"] = json!(etag(n));
            if user.get("type").is_none() {
                user["type"] = json!("BUILT_IN");
            }
            let password = match body.get("password").and_then(Value::as_str) {
                Some(p) => p.to_owned(),
                None => existing.map(|(_, p)| p.clone()).unwrap_or_default(),
            };
            let link = instance.body["selfLink"].clone();
            instance.users.insert(name, (user, password));
            let kind = if inserting {
                "CREATE_USER"
            } else {
                "UPDATE_USER"
            };
            store.operation(behaviour, project, kind, &link, None)
        }
        "sql.users.get" => {
            let instance = store.instances.get(&instance_key?);
            match instance.and_then(|i| i.users.get(*parts.get(4)?)) {
                Some((u, _)) => (200, u.clone()),
                None => user_not_found(),
            }
        }
        "sql.users.list" => match store.instances.get(&instance_key?) {
            Some(i) => (
                200,
                json!({
                    "kind": "sql#usersList",
                    "items": i.users.values().map(|(u, _)| u.clone()).collect::<Vec<_>>(),
                }),
            ),
            None => instance_not_found(),
        },
        "sql.users.delete" => {
            let Some(instance) = store.instances.get_mut(&instance_key?) else {
                return Some(instance_not_found());
            };
            let name = query("name").unwrap_or_default();
            if instance.users.remove(name).is_none() {
                return Some(user_not_found());
            }
            let link = instance.body["selfLink"].clone();
            store.operation(behaviour, project, "DELETE_USER", &link, None)
        }
        "sql.operations.get" => {
            let name = format!("{project}/{}", parts.get(2)?);
            match store.operations.get(&name) {
                Some(op) => (200, op.to_json()),
                None => error(
                    404,
                    "NOT_FOUND",
                    format!("The operation {} does not exist.", parts.get(2)?),
                ),
            }
        }
        _ => return None,
    })
}

fn insert_instance(
    store: &mut Store,
    behaviour: &Behaviour,
    project: &str,
    body: Value,
) -> (u16, Value) {
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::to_owned) else {
        return error(400, "INVALID_ARGUMENT", "Missing parameter: name.".into());
    };
    let Some(tier) = body.pointer("/settings/tier").and_then(Value::as_str) else {
        return error(
            400,
            "INVALID_ARGUMENT",
            "Invalid request: settings.tier is required.".into(),
        );
    };
    let version = body
        .get("databaseVersion")
        .and_then(Value::as_str)
        .unwrap_or("MYSQL_8_0")
        .to_owned();
    // PostgreSQL 16 and later default to ENTERPRISE_PLUS, where shared-core tiers do not exist.
    let newer_postgres = version
        .strip_prefix("POSTGRES_")
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|v| v >= 16);
    let edition = body
        .pointer("/settings/edition")
        .and_then(Value::as_str)
        .unwrap_or(if newer_postgres {
            "ENTERPRISE_PLUS"
        } else {
            "ENTERPRISE"
        })
        .to_owned();
    if edition == "ENTERPRISE_PLUS" && (tier == "db-f1-micro" || tier == "db-g1-small") {
        return error(
            400,
            "INVALID_ARGUMENT",
            format!("Invalid Tier ({tier}) for (ENTERPRISE_PLUS) Edition."),
        );
    }
    let key = format!("{project}/{name}");
    if store.instances.contains_key(&key) {
        return error(
            409,
            "ALREADY_EXISTS",
            "The Cloud SQL instance already exists.".into(),
        );
    }
    let n = store.next();
    let region = body
        .get("region")
        .and_then(Value::as_str)
        .unwrap_or("us-central1")
        .to_owned();
    let link = format!("https://sqladmin.googleapis.com/v1/projects/{project}/instances/{name}");
    // What the API fills in that the request did not say.
    let mut instance = json!({
        "kind": "sql#instance",
        "backendType": "SECOND_GEN",
        "instanceType": "CLOUD_SQL_INSTANCE",
        "settings": {
            "kind": "sql#settings",
            "activationPolicy": "ALWAYS",
            "pricingPlan": "PER_USE",
            "availabilityType": "ZONAL",
            "dataDiskType": "PD_SSD",
            "dataDiskSizeGb": "10",
            "storageAutoResize": true,
            "storageAutoResizeLimit": "0",
            "backupConfiguration": {"kind": "sql#backupConfiguration", "enabled": false, "startTime": "03:00"},
            "ipConfiguration": {"ipv4Enabled": true, "sslMode": "ALLOW_UNENCRYPTED_AND_ENCRYPTED"},
            "locationPreference": {"kind": "sql#locationPreference", "zone": format!("{region}-a")},
            "deletionProtectionEnabled": false,
        },
    });
    merge(&mut instance, &body);
    instance["name"] = json!(name);
    instance["project"] = json!(project);
    instance["region"] = json!(region);
    instance["databaseVersion"] = json!(version);
    instance["settings"]["edition"] = json!(edition);
    instance["settings"]["settingsVersion"] = json!("1");
    instance["connectionName"] = json!(format!("{project}:{region}:{name}"));
    instance["selfLink"] = json!(link);
    instance["gceZone"] = json!(format!("{region}-a"));
    instance["createTime"] = json!(timestamp());
    instance["serviceAccountEmailAddress"] = json!(format!(
        "p{n:012}-sandbox@gcp-sa-cloud-sql.iam.gserviceaccount.com"
    ));
    instance["etag"] = json!(etag(n));
    let failed = behaviour.failing_sql_instances.contains(&name);
    store.instances.insert(
        key,
        Instance {
            body: instance,
            creating_until: Instant::now() + behaviour.operation_delay,
            failed,
            databases: BTreeMap::new(),
            users: BTreeMap::new(),
        },
    );
    let failure = failed.then(|| {
        json!([{"kind": "sql#operationError", "code": "INTERNAL_ERROR",
            "message": format!("The instance {name} could not be created (the sandbox was told to fail it).")}])
    });
    store.operation(behaviour, project, "CREATE", &json!(link), failure)
}

fn patch_instance(
    store: &mut Store,
    behaviour: &Behaviour,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let n = store.next();
    let Some(instance) = store.instances.get_mut(key) else {
        return instance_not_found();
    };
    let current = &instance.body;
    let version = current
        .pointer("/settings/settingsVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    if let Some(sent) = body.pointer("/settings/settingsVersion")
        && sent != &json!(version.to_string())
    {
        return error(
            412,
            "FAILED_PRECONDITION",
            "Precondition check failed: the settings version sent is not the instance's current one.".into(),
        );
    }
    for fixed in ["name", "region", "project"] {
        if let Some(sent) = body.get(fixed)
            && Some(sent) != current.get(fixed)
        {
            return error(
                400,
                "INVALID_ARGUMENT",
                format!("The instance's {fixed} cannot be changed."),
            );
        }
    }
    if instance.failed {
        return error(
            400,
            "FAILED_PRECONDITION",
            "The instance is in a failed state: delete it.".into(),
        );
    }
    merge(&mut instance.body, &body);
    instance.body["settings"]["settingsVersion"] = json!((version + 1).to_string());
    instance.body["etag"] = json!(etag(n));
    let link = instance.body["selfLink"].clone();
    let project = key.split('/').next().unwrap_or_default().to_owned();
    store.operation(behaviour, &project, "UPDATE", &link, None)
}

impl Instance {
    /// The instance as a read sees it now: `PENDING_CREATE` while it is being created, then
    /// `RUNNABLE` with its address, or `FAILED`.
    fn as_seen(&self) -> Value {
        let mut body = self.body.clone();
        let state = match (Instant::now() < self.creating_until, self.failed) {
            (true, _) => "PENDING_CREATE",
            (false, true) => "FAILED",
            (false, false) => "RUNNABLE",
        };
        body["state"] = json!(state);
        if state == "RUNNABLE" {
            let n = self.body["serviceAccountEmailAddress"]
                .as_str()
                .and_then(|s| s.get(1..13))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            body["ipAddresses"] = json!([{"type": "PRIMARY",
                "ipAddress": format!("203.0.113.{}", n % 250 + 1)}]);
        }
        body
    }
}

impl Store {
    fn next(&mut self) -> u64 {
        self.writes += 1;
        self.writes
    }

    /// Starts an operation of `kind` on `target` (a selfLink) in `project` and answers it.
    fn operation(
        &mut self,
        behaviour: &Behaviour,
        project: &str,
        kind: &str,
        target: &Value,
        errors: Option<Value>,
    ) -> (u16, Value) {
        let n = self.next();
        let id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let target_id = target
            .as_str()
            .and_then(|t| t.split("/instances/").nth(1))
            .and_then(|t| t.split('/').next())
            .unwrap_or_default();
        let body = json!({
            "kind": "sql#operation",
            "name": id,
            "operationType": kind,
            "targetLink": target,
            "targetId": target_id,
            "targetProject": project,
            "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{project}/operations/{id}"),
            "insertTime": timestamp(),
            "startTime": timestamp(),
            "user": CALLER,
        });
        let op = Operation {
            body,
            ready_at: Instant::now() + behaviour.operation_delay,
            error: errors,
        };
        let answer = op.to_json();
        self.operations.insert(format!("{project}/{id}"), op);
        (200, answer)
    }
}

impl Operation {
    fn to_json(&self) -> Value {
        let mut op = self.body.clone();
        let done = Instant::now() >= self.ready_at;
        op["status"] = json!(if done { "DONE" } else { "RUNNING" });
        if done {
            op["endTime"] = json!(timestamp());
            if let Some(errors) = &self.error {
                op["error"] = json!({"kind": "sql#operationErrors", "errors": errors});
            }
        }
        op
    }
}

/// Merges `patch` into `target`: objects field by field, anything else replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                match t.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn etag(n: u64) -> String {
    format!("sandbox-{n}")
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn instance_not_found() -> (u16, Value) {
    error(
        404,
        "NOT_FOUND",
        "The Cloud SQL instance does not exist.".into(),
    )
}

fn database_not_found() -> (u16, Value) {
    error(404, "NOT_FOUND", "The database does not exist.".into())
}

fn user_not_found() -> (u16, Value) {
    error(404, "NOT_FOUND", "The user does not exist.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance_body() -> Value {
        json!({"name": "db", "region": "us-central1", "databaseVersion": "POSTGRES_16",
            "settings": {"tier": "db-f1-micro", "edition": "ENTERPRISE"}})
    }

    #[test]
    fn an_instance_gets_its_connection_name_and_a_settings_version_that_patches_raise() {
        let mut store = Store::default();
        let b = Behaviour::default();
        let (status, op) = answer(
            &mut store,
            &b,
            "sql.instances.insert",
            &Request::of(
                "POST",
                "/v1/projects/p/instances",
                &[],
                Some(instance_body()),
            ),
        )
        .unwrap();
        assert_eq!(status, 200, "{op}");
        assert_eq!(op["status"], "DONE");
        assert!(
            op["selfLink"]
                .as_str()
                .unwrap()
                .starts_with("https://sqladmin.googleapis.com/v1/projects/p/operations/")
        );
        let get = Request::of("GET", "/v1/projects/p/instances/db", &[], None);
        let (_, live) = answer(&mut store, &b, "sql.instances.get", &get).unwrap();
        assert_eq!(live["connectionName"], "p:us-central1:db");
        assert_eq!(live["state"], "RUNNABLE");
        assert_eq!(live["settings"]["settingsVersion"], "1");
        let patch = |version: &str| {
            Request::of(
                "PATCH",
                "/v1/projects/p/instances/db",
                &[],
                Some(json!({"settings": {"tier": "db-g1-small", "settingsVersion": version}})),
            )
        };
        let (status, _) = answer(&mut store, &b, "sql.instances.patch", &patch("1")).unwrap();
        assert_eq!(status, 200);
        let (status, _) = answer(&mut store, &b, "sql.instances.patch", &patch("1")).unwrap();
        assert_eq!(status, 412, "a stale settings version");
        let (_, live) = answer(&mut store, &b, "sql.instances.get", &get).unwrap();
        assert_eq!(live["settings"]["settingsVersion"], "2");
        assert_eq!(live["settings"]["tier"], "db-g1-small");
        assert_eq!(live["settings"]["edition"], "ENTERPRISE");
        let (status, _) = answer(
            &mut store,
            &b,
            "sql.instances.insert",
            &Request::of(
                "POST",
                "/v1/projects/p/instances",
                &[],
                Some(instance_body()),
            ),
        )
        .unwrap();
        assert_eq!(status, 409);
    }

    #[test]
    fn a_shared_core_tier_without_the_enterprise_edition_is_refused_for_postgres_16() {
        let mut body = instance_body();
        body["settings"].as_object_mut().unwrap().remove("edition");
        let (status, e) = answer(
            &mut Store::default(),
            &Behaviour::default(),
            "sql.instances.insert",
            &Request::of("POST", "/v1/projects/p/instances", &[], Some(body)),
        )
        .unwrap();
        assert_eq!(status, 400);
        assert!(e.to_string().contains("ENTERPRISE_PLUS"), "{e}");
    }

    #[test]
    fn a_users_password_is_kept_but_never_answered() {
        let mut store = Store::default();
        let b = Behaviour::default();
        answer(
            &mut store,
            &b,
            "sql.instances.insert",
            &Request::of(
                "POST",
                "/v1/projects/p/instances",
                &[],
                Some(instance_body()),
            ),
        )
        .unwrap();
        let users = "/v1/projects/p/instances/db/users";
        let insert = Request::of(
            "POST",
            users,
            &[],
            Some(json!({"name": "mage", "password": "s3cret-value"})),
        );
        let (status, op) = answer(&mut store, &b, "sql.users.insert", &insert).unwrap();
        assert_eq!(status, 200);
        let (status, again) = answer(&mut store, &b, "sql.users.insert", &insert).unwrap();
        assert_eq!(status, 409);
        let (_, user) = answer(
            &mut store,
            &b,
            "sql.users.get",
            &Request::of("GET", &format!("{users}/mage"), &[], None),
        )
        .unwrap();
        let (_, list) = answer(
            &mut store,
            &b,
            "sql.users.list",
            &Request::of("GET", users, &[], None),
        )
        .unwrap();
        for answered in [&op, &again, &user, &list] {
            assert!(!answered.to_string().contains("s3cret-value"), "{answered}");
        }
        assert_eq!(user["name"], "mage");
        let passwords = SqlPasswords(Arc::new(Mutex::new(store)));
        assert_eq!(
            passwords.get("p", "db", "mage").as_deref(),
            Some("s3cret-value")
        );
    }

    #[test]
    fn a_protected_instance_is_not_deleted() {
        let mut store = Store::default();
        let b = Behaviour::default();
        let mut body = instance_body();
        body["settings"]["deletionProtectionEnabled"] = json!(true);
        answer(
            &mut store,
            &b,
            "sql.instances.insert",
            &Request::of("POST", "/v1/projects/p/instances", &[], Some(body)),
        )
        .unwrap();
        let delete = Request::of("DELETE", "/v1/projects/p/instances/db", &[], None);
        let (status, _) = answer(&mut store, &b, "sql.instances.delete", &delete).unwrap();
        assert_eq!(status, 400);
        assert!(store.instances.contains_key("p/db"));
    }
}
