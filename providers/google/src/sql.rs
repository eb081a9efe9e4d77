//! Cloud SQL Admin v1: instances (`google_sql_database_instance`), their databases
//! (`google_sql_database`) and users (`google_sql_user`).
//!
//! An instance's attributes are the API's `DatabaseInstance` body (`name`, `region`,
//! `databaseVersion`, `settings`) plus `project` (a path parameter); a database's are `project`,
//! `instance` and the `Database` body; a user's are `project`, `instance`, `name` and
//! `passwordSecret`, the Secret Manager secret (`projects/<p>/secrets/<s>`, whose latest version
//! is meant) or secret version (`…/versions/<n>`) that holds the password. The password itself
//! is never an attribute: it is read with `versions.access` when the user is created or updated
//! and sent only to Cloud SQL, never returned, logged or put in an error.
//!
//! Every write answers a Cloud SQL operation (`status` up to `DONE`, failures in
//! `error.errors[]`), followed at its `selfLink`. A create that meets an existing object (409)
//! adopts it only when it is weir's: an instance whose `settings.userLabels` carry
//! `managed-by = weir` and the same `weir-deployment`; a database or user (which have no labels)
//! when the instance that holds them carries `managed-by = weir` — the instance's name derives
//! from the deployment, and weir adopts that instance only for the same deployment.

use reqwest::Method;
use serde_json::{Map, Value, json};
use weir_provider_sdk::retry::Idempotency;
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::ownership::{SQL_USER_LABELS, made_for_deployment, managed_by_weir};
use crate::rest::{Api, Client, at, settled};
use crate::run_job::project;
use crate::schemas::output_only;
use crate::schemas::types::SQL_INSTANCE;
use crate::secret::{access, checked_name};

/// Applies `google_sql_database_instance`.
pub(crate) struct SqlInstance;

/// Applies `google_sql_database`.
pub(crate) struct SqlDatabase;

/// Applies `google_sql_user`.
pub(crate) struct SqlUser;

/// The attribute `key` of `r`, checked to be one URL path segment.
fn segment<'a>(r: &'a ResourceRef, key: &str) -> Result<&'a str, ProviderError> {
    crate::rest::segment(r, key, "Cloud SQL")
}

/// `/v1/projects/<p>/instances/<i>`, from `r`'s `project` and `instance_key`.
fn instance_path(r: &ResourceRef, instance_key: &str) -> Result<String, ProviderError> {
    Ok(format!(
        "/v1/projects/{}/instances/{}",
        segment(r, "project")?,
        segment(r, instance_key)?
    ))
}

/// `value` at the dotted `path`.
fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Removes the dotted `path` from `value`.
fn remove_path(value: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (
            parent
                .split('.')
                .try_fold(&mut *value, |v, key| v.get_mut(key)),
            last,
        ),
        None => (Some(value), path),
    };
    if let Some(Value::Object(fields)) = parent {
        fields.remove(last);
    }
}

/// Sets the dotted `path` of `value` (an object), making the objects on the way.
fn set_path(value: &mut Value, path: &str, v: Value) {
    let mut here = value;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        let Value::Object(fields) = here else { return };
        if keys.peek().is_none() {
            fields.insert(key.to_owned(), v);
            return;
        }
        here = fields.entry(key).or_insert_with(|| json!({}));
    }
}

/// Waits for a write's operation, then reads the object at `path` and brings it to `r`'s shape
/// with `shape_of`. When the operation failed or the wait stopped but the object exists, the
/// error carries its attributes, so that it is recorded.
async fn finish(
    client: &Client,
    r: &ResourceRef,
    path: &str,
    op: Value,
    cancel: &Cancel,
    shape_of: fn(&Value, &Value) -> Value,
) -> Result<Value, ProviderError> {
    let waited = client.wait(Api::SqlAdmin, op, cancel).await;
    // Read even when cancelled: one short call, so that what exists gets recorded.
    let live = client.get(Api::SqlAdmin, path, &[], &Cancel::new()).await;
    let live = live.map(|o| o.map(|live| shape_of(&live, &r.attributes)));
    settled(r, waited, live, || {
        format!("the operation finished but {path} is not there")
    })
}

// ---- instances ----

/// The paths of the instance's attributes that are not the API's body: the path parameter
/// `project` and `connectionName`, which the API derives.
const INSTANCE_NOT_BODY: &[&str] = &["project", "connectionName"];

/// The API's `DatabaseInstance` body for the attributes.
fn instance_body(attributes: &Value) -> Value {
    let mut body = attributes.clone();
    for path in INSTANCE_NOT_BODY.iter().chain(output_only(SQL_INSTANCE)) {
        remove_path(&mut body, path);
    }
    body
}

/// The live instance in the shape of `shape`: the fields weir manages (those of `shape`, at
/// every depth), the output-only ones the schema names, `connectionName` and `project`. The
/// many settings the API fills in itself (backup start time, pricing plan, …) are not drift.
fn instance_attributes(live: &Value, shape: &Value) -> Value {
    let mut out = project(live, shape);
    if !out.is_object() {
        out = json!({});
    }
    for path in output_only(SQL_INSTANCE)
        .iter()
        .chain(&["connectionName", "name"])
    {
        if let Some(v) = at_path(live, path) {
            set_path(&mut out, path, v.clone());
        }
    }
    if let Some(p) = shape.get("project") {
        out["project"] = p.clone();
    }
    // The API leaves `ipAddresses` out while the instance has none (being created, or without
    // a public address): that is an empty list, known, not a value still to come.
    if live.get("ipAddresses").is_none() {
        out["ipAddresses"] = json!([]);
    }
    out
}

fn settings_version(value: &Value) -> Option<Value> {
    value
        .pointer("/settings/settingsVersion")
        .filter(|v| !v.is_null())
        .cloned()
}

/// PATCHes the instance to `r`'s attributes, with the settings version of `seen` (the instance
/// the change was planned against) so that a concurrent change is not overwritten; on 412 reads
/// the instance again and retries with its current version.
async fn patch_instance(
    client: &Client,
    r: &ResourceRef,
    seen: &Value,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let path = instance_path(r, "name")?;
    let op = client
        .write_fresh(Api::SqlAdmin, &path, &path, seen.clone(), cancel, |seen| {
            let mut body = instance_body(&r.attributes);
            if let Some(v) = settings_version(&seen) {
                set_path(&mut body, "settings.settingsVersion", v);
            }
            let path = &path;
            async move {
                client
                    .call(
                        Api::SqlAdmin,
                        Method::PATCH,
                        path,
                        &[],
                        Some(&body),
                        Idempotency::Idempotent,
                        cancel,
                    )
                    .await
            }
        })
        .await
        .map_err(|e| at(r, e))?;
    finish(client, r, &path, op, cancel, instance_attributes).await
}

#[async_trait::async_trait]
impl crate::Applier for SqlInstance {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let path = instance_path(r, "name")?;
        client
            .read(Api::SqlAdmin, &path, r, instance_attributes)
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let path = instance_path(r, "name")?;
        let parent = format!("/v1/projects/{}/instances", segment(r, "project")?);
        // A repeated insert is safe: an instance made by an attempt whose answer was lost
        // answers 409 and carries weir's labels, so it is adopted below.
        let created = client
            .call(
                Api::SqlAdmin,
                Method::POST,
                &parent,
                &[],
                Some(&instance_body(&r.attributes)),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        let conflict = match created {
            Ok(op) => return finish(client, r, &path, op, cancel, instance_attributes).await,
            Err(e) if e.kind == ErrorKind::Conflict => e,
            Err(e) => return Err(at(r, e)),
        };
        let Some(live) = client
            .get(Api::SqlAdmin, &path, &[], cancel)
            .await
            .map_err(|e| at(r, e))?
        else {
            return Err(at(r, conflict));
        };
        if !made_for_deployment(&live, &r.attributes, SQL_USER_LABELS) {
            return Err(ProviderError::conflict(format!(
                "{}: the Cloud SQL instance {path} already exists and weir did not create it for this deployment (its `settings.userLabels` `managed-by` and `weir-deployment` do not say so)",
                r.address
            ))
            .with_help("delete or rename that instance, or give this deployment another name"));
        }
        patch_instance(client, r, &live, cancel).await
    }

    async fn update(
        &self,
        client: &Client,
        prior: &Value,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        patch_instance(client, r, prior, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let path = instance_path(r, "name")?;
        if r.attributes.pointer("/settings/deletionProtectionEnabled") == Some(&json!(true)) {
            return Err(ProviderError::permanent(format!(
                "{}: the Cloud SQL instance {path} has deletion protection on, so Cloud SQL refuses to delete it",
                r.address
            ))
            .with_help("first run `weir apply` with `prevent_destroy = false` in the deployment's `lifecycle` block and no other change to this instance (that turns its deletion protection off in place), then run this again"));
        }
        client
            .delete(Api::SqlAdmin, &path, &[], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

// ---- databases and users ----

/// Whether the instance that holds `r` (its `project` and `instance`) is weir's; the error to
/// give when it is not (or is gone).
async fn in_weirs_instance(
    client: &Client,
    r: &ResourceRef,
    what: &str,
    conflict: ProviderError,
    cancel: &Cancel,
) -> Result<(), ProviderError> {
    let path = instance_path(r, "instance")?;
    let live = client
        .get(Api::SqlAdmin, &path, &[], cancel)
        .await
        .map_err(|e| at(r, e))?;
    match live {
        Some(live) if managed_by_weir(&live, SQL_USER_LABELS) => Ok(()),
        Some(_) => Err(ProviderError::conflict(format!(
            "{}: the {what} already exists in the Cloud SQL instance {path}, which weir did not create (its `settings.userLabels` do not say `managed-by = weir`)",
            r.address
        ))
        .with_help("use an instance weir manages, or another name")),
        None => Err(at(r, conflict)),
    }
}

/// The attributes that are path parameters, not fields of a database's body.
const DATABASE_NOT_BODY: &[&str] = &["project", "instance"];

fn database_path(r: &ResourceRef) -> Result<String, ProviderError> {
    Ok(format!(
        "{}/databases/{}",
        instance_path(r, "instance")?,
        segment(r, "name")?
    ))
}

/// The live database in the shape of `shape`, with `project` and `instance`.
fn database_attributes(live: &Value, shape: &Value) -> Value {
    let mut out = match project(live, shape) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in DATABASE_NOT_BODY {
        if let Some(v) = shape.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

#[async_trait::async_trait]
impl crate::Applier for SqlDatabase {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let path = database_path(r)?;
        client
            .read(Api::SqlAdmin, &path, r, database_attributes)
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let path = database_path(r)?;
        let mut body = r.attributes.clone();
        if let Some(fields) = body.as_object_mut() {
            for key in DATABASE_NOT_BODY {
                fields.remove(*key);
            }
        }
        let created = client
            .call(
                Api::SqlAdmin,
                Method::POST,
                &format!("{}/databases", instance_path(r, "instance")?),
                &[],
                Some(&body),
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        match created {
            Ok(op) => finish(client, r, &path, op, cancel, database_attributes).await,
            Err(e) if e.kind == ErrorKind::Conflict => {
                in_weirs_instance(client, r, "database", e, cancel).await?;
                // Nothing of a database weir manages changes in place: adopting it is reading it.
                client
                    .get(Api::SqlAdmin, &path, &[], cancel)
                    .await
                    .map_err(|e| at(r, e))?
                    .map(|live| database_attributes(&live, &r.attributes))
                    .ok_or_else(|| {
                        ProviderError::retryable(format!(
                            "{}: the database {path} was deleted while it was adopted",
                            r.address
                        ))
                    })
            }
            Err(e) => Err(at(r, e)),
        }
    }

    fn unchangeable(&self) -> &'static str {
        "a Cloud SQL database has nothing weir changes in place; a change replaces it"
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let path = database_path(r)?;
        client
            .delete(Api::SqlAdmin, &path, &[], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

/// `/v1/projects/<p>/instances/<i>/users` and the user's name, checked.
fn users_path(r: &ResourceRef) -> Result<(String, &str), ProviderError> {
    Ok((
        format!("{}/users", instance_path(r, "instance")?),
        segment(r, "name")?,
    ))
}

/// The live user in the shape of `shape`: its managed fields, `project`, `instance` and
/// `passwordSecret` as recorded (Cloud SQL never shows a password).
fn user_attributes(live: &Value, shape: &Value) -> Value {
    let mut managed = shape.clone();
    if let Some(fields) = managed.as_object_mut() {
        fields.remove("passwordSecret");
    }
    let mut out = match project(live, &managed) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    out.remove("password");
    for key in DATABASE_NOT_BODY.iter().chain(&["passwordSecret"]) {
        if let Some(v) = shape.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// The user's password, read from the secret (version) `passwordSecret` names.
async fn password(
    client: &Client,
    r: &ResourceRef,
    cancel: &Cancel,
) -> Result<String, ProviderError> {
    let named = r
        .attributes
        .get("passwordSecret")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = if named.contains("/versions/") {
        checked_name(&r.address, "passwordSecret", named, 1)?;
        named.to_owned()
    } else {
        checked_name(&r.address, "passwordSecret", named, 0)?;
        format!("{named}/versions/latest")
    };
    access(client, r, &version, cancel).await
}

/// Creates (POST) or updates (PUT) the user with the password of its secret, then reads it.
async fn write_user(
    client: &Client,
    r: &ResourceRef,
    method: Method,
    cancel: &Cancel,
) -> Result<Value, ProviderError> {
    let (users, name) = users_path(r)?;
    let body = json!({"name": name, "password": password(client, r, cancel).await?});
    let query: &[(&str, &str)] = match method {
        Method::PUT => &[("name", name)],
        _ => &[],
    };
    let op = client
        .call(
            Api::SqlAdmin,
            method,
            &users,
            query,
            Some(&body),
            Idempotency::Idempotent,
            cancel,
        )
        .await
        .map_err(|e| at(r, e))?;
    finish(
        client,
        r,
        &format!("{users}/{name}"),
        op,
        cancel,
        user_attributes,
    )
    .await
}

#[async_trait::async_trait]
impl crate::Applier for SqlUser {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let (users, name) = users_path(r)?;
        client
            .read(
                Api::SqlAdmin,
                &format!("{users}/{name}"),
                r,
                user_attributes,
            )
            .await
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        match write_user(client, r, Method::POST, cancel).await {
            Err(e) if e.kind == ErrorKind::Conflict => {
                in_weirs_instance(client, r, "user", e, cancel).await?;
                // weir's user, left by a lost state: give it the password of its secret.
                write_user(client, r, Method::PUT, cancel).await
            }
            other => other,
        }
    }

    async fn update(
        &self,
        client: &Client,
        _prior: &Value,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        write_user(client, r, Method::PUT, cancel).await
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let (users, name) = users_path(r)?;
        client
            .delete(Api::SqlAdmin, &users, &[("name", name)], cancel)
            .await
            .map_err(|e| at(r, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(type_name: &str, attributes: Value) -> ResourceRef {
        ResourceRef {
            address: format!("{type_name}.x"),
            type_name: type_name.into(),
            attributes,
            sensitive_paths: Vec::new(),
        }
    }

    #[test]
    fn the_live_instance_is_cut_to_the_planned_shape_with_its_output_only_fields() {
        let shape = json!({
            "project": "p", "name": "db", "region": "r", "databaseVersion": "POSTGRES_16",
            "connectionName": "p:r:db", "state": null,
            "settings": {"tier": "db-f1-micro", "userLabels": {"managed-by": "weir"},
                "backupConfiguration": {"enabled": true}},
        });
        let live = json!({
            "kind": "sql#instance", "name": "db", "project": "p", "region": "r",
            "databaseVersion": "POSTGRES_16", "connectionName": "p:r:db", "state": "RUNNABLE",
            "selfLink": "https://sqladmin.googleapis.com/v1/projects/p/instances/db",
            "ipAddresses": [{"type": "PRIMARY", "ipAddress": "203.0.113.1"}],
            "serviceAccountEmailAddress": "sa@x", "gceZone": "r-a",
            "settings": {"tier": "db-f1-micro", "settingsVersion": "3", "pricingPlan": "PER_USE",
                "userLabels": {"managed-by": "weir"},
                "backupConfiguration": {"enabled": true, "startTime": "03:00"}},
        });
        assert_eq!(
            instance_attributes(&live, &shape),
            json!({
                "project": "p", "name": "db", "region": "r", "databaseVersion": "POSTGRES_16",
                "connectionName": "p:r:db", "state": "RUNNABLE",
                "selfLink": "https://sqladmin.googleapis.com/v1/projects/p/instances/db",
                "ipAddresses": [{"type": "PRIMARY", "ipAddress": "203.0.113.1"}],
                "serviceAccountEmailAddress": "sa@x",
                "settings": {"tier": "db-f1-micro", "settingsVersion": "3",
                    "userLabels": {"managed-by": "weir"},
                    "backupConfiguration": {"enabled": true}},
            })
        );
        // What weir sends: neither the path parameter nor what the API computes.
        let body = instance_body(&instance_attributes(&live, &shape));
        for gone in [
            "project",
            "connectionName",
            "state",
            "selfLink",
            "ipAddresses",
        ] {
            assert!(body.get(gone).is_none(), "{gone}: {body}");
        }
        assert!(
            body.pointer("/settings/settingsVersion").is_none(),
            "{body}"
        );
        assert_eq!(body["settings"]["tier"], "db-f1-micro");
    }

    #[test]
    fn a_users_attributes_keep_the_secrets_name_never_a_password() {
        let shape = json!({"project": "p", "instance": "db", "name": "mage",
            "passwordSecret": "projects/p/secrets/pw"});
        let live = json!({"kind": "sql#user", "name": "mage", "project": "p", "instance": "db",
            "password": "leaked", "etag": "e", "type": "BUILT_IN"});
        assert_eq!(user_attributes(&live, &shape), shape);
    }

    #[test]
    fn names_that_could_reach_another_path_are_refused() {
        for bad in ["", "..", "a/b", "a?x=1", "a%2f"] {
            let instance = r(SQL_INSTANCE, json!({"project": "p", "name": bad}));
            assert!(instance_path(&instance, "name").is_err(), "{bad}");
            let user = r(
                "google_sql_user",
                json!({"project": "p", "instance": "db", "name": bad}),
            );
            assert!(users_path(&user).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_secret_that_is_not_a_secret_name_is_refused_before_any_call() {
        let client = Client::new(
            &weir_provider_sdk::Endpoints {
                google: Some("http://127.0.0.1:9".into()),
                storage: None,
            },
            None,
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for bad in ["", "projects/p/secrets/../x", "projects/p/buckets/b", "pw"] {
            let user = r(
                "google_sql_user",
                json!({"project": "p", "instance": "db", "name": "u", "passwordSecret": bad}),
            );
            let e = runtime
                .block_on(password(&client, &user, &Cancel::new()))
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Permanent, "{bad}: {e}");
            assert!(e.message.contains("passwordSecret"), "{e}");
        }
    }
}
