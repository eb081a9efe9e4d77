//! One member of one role in a resource's IAM policy: `google_project_iam_member` (Resource
//! Manager v3), `google_service_account_iam_member` (IAM v1),
//! `google_secret_manager_secret_iam_member` (Secret Manager v1) and
//! `google_storage_bucket_iam_member` (the Cloud Storage JSON API), all by one
//! read-modify-write of the policy.
//!
//! The attributes are the resource (`project`, `serviceAccount`, `secret` or `bucket`), `role`
//! and `member`; every one replaces. The member exists when the policy's binding of that role
//! without a condition lists it (in any order, any number of times). Creating adds it to that
//! binding (making the binding if there is none); deleting removes it (and the binding once
//! empty). Nothing else in the policy is touched: other members, other bindings, conditional
//! bindings (the policy is read as version 3, so conditions come back whole) and audit
//! configurations are sent back as read. Each write carries the etag of its read: when another
//! writer changed the policy in between (the engine writes many members of one policy at once),
//! the API refuses it (409 `ABORTED`, or 412 for Cloud Storage) and the whole read-modify-write
//! starts again after a jittered backoff, so no write is lost.
//!
//! A member granted outside weir before weir creates the same one is not added twice; weir
//! then counts it as its own and removes it on delete, as it would have made it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use weir_provider_sdk::retry::{Idempotency, RetryPolicy, retry};
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError, ResourceRef};

use crate::rest::{Api, Client, at, found};
use crate::schemas::types::{
    PROJECT_IAM_MEMBER, SECRET_IAM_MEMBER, SERVICE_ACCOUNT_IAM_MEMBER, STORAGE_BUCKET_IAM_MEMBER,
};

/// The policy version asked for: the one that shows conditions, so that they are kept.
const POLICY_VERSION: &str = "3";

/// Applies the four `*_iam_member` types.
pub(crate) struct PolicyMember;

/// The resource whose policy holds the member.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A project id.
    Project(String),
    /// `projects/<p>/serviceAccounts/<email>`.
    ServiceAccount(String),
    /// `projects/<p>/secrets/<id>`.
    Secret(String),
    /// A bucket name.
    Bucket(String),
}

/// Whether `value` is safe as one URL path segment; a service account's email has an `@`.
fn is_segment(value: &str) -> bool {
    crate::rest::is_segment(value, &['@'])
}

impl Target {
    /// The attribute naming the resource, for a member type.
    fn key(type_name: &str) -> Option<&'static str> {
        match type_name {
            PROJECT_IAM_MEMBER => Some("project"),
            SERVICE_ACCOUNT_IAM_MEMBER => Some("serviceAccount"),
            SECRET_IAM_MEMBER => Some("secret"),
            STORAGE_BUCKET_IAM_MEMBER => Some("bucket"),
            _ => None,
        }
    }

    fn of(r: &ResourceRef) -> Result<Target, ProviderError> {
        let Some(key) = Target::key(&r.type_name) else {
            return Err(ProviderError::permanent(format!(
                "{}: `{}` is not an IAM member type",
                r.address, r.type_name
            )));
        };
        let value = r.attributes.get(key).and_then(Value::as_str).unwrap_or("");
        // `<prefix><segment>` for the full names; these become URL paths.
        let named = |prefix: &str, middle: &str| -> Option<String> {
            let rest = value.strip_prefix(prefix)?;
            let (project, id) = rest.split_once(middle)?;
            (is_segment(project) && is_segment(id)).then(|| value.to_owned())
        };
        let target = match key {
            "project" => is_segment(value).then(|| Target::Project(value.to_owned())),
            "serviceAccount" => named("projects/", "/serviceAccounts/").map(Target::ServiceAccount),
            "secret" => named("projects/", "/secrets/").map(Target::Secret),
            _ => (is_segment(value) && !value.contains(['@', ':']))
                .then(|| Target::Bucket(value.to_owned())),
        };
        let form = match key {
            "project" => "a project id",
            "serviceAccount" => "projects/<project>/serviceAccounts/<email>",
            "secret" => "projects/<project>/secrets/<id>",
            _ => "a bucket name",
        };
        let target = target.ok_or_else(|| {
            ProviderError::permanent(format!(
                "{}: `{key}` is {value:?}, not of the form {form}",
                r.address
            ))
        })?;
        for field in ["role", "member"] {
            let v = r
                .attributes
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("");
            if v.trim().is_empty() {
                return Err(
                    ProviderError::permanent(format!("{}: `{field}` is empty", r.address))
                        .with_help(
                            "a role is e.g. `roles/viewer`, a member e.g. `serviceAccount:<email>`",
                        ),
                );
            }
        }
        Ok(target)
    }

    fn api(&self) -> Api {
        match self {
            Target::Project(_) => Api::ResourceManager,
            Target::ServiceAccount(_) => Api::Iam,
            Target::Secret(_) => Api::SecretManager,
            Target::Bucket(_) => Api::Storage,
        }
    }

    /// What the policy belongs to, for messages.
    fn describe(&self) -> String {
        match self {
            Target::Project(p) => format!("the project {p}"),
            Target::ServiceAccount(n) => format!("the service account {n}"),
            Target::Secret(n) => format!("the secret {n}"),
            Target::Bucket(b) => format!("the bucket {b}"),
        }
    }

    /// The policy; `None` when the resource is gone.
    async fn get(&self, client: &Client, cancel: &Cancel) -> Result<Option<Value>, ProviderError> {
        let api = self.api();
        // Each API asks for the version its own way, some by POST.
        let (method, path, query, body) = match self {
            Target::Project(p) => (
                Method::POST,
                format!("/v3/projects/{p}:getIamPolicy"),
                "",
                Some(json!({"options": {"requestedPolicyVersion": 3}})),
            ),
            Target::ServiceAccount(n) => (
                Method::POST,
                format!("/v1/{n}:getIamPolicy"),
                "options.requestedPolicyVersion",
                None,
            ),
            Target::Secret(n) => (
                Method::GET,
                format!("/v1/{n}:getIamPolicy"),
                "options.requestedPolicyVersion",
                None,
            ),
            Target::Bucket(b) => (
                Method::GET,
                format!("/storage/v1/b/{b}/iam"),
                "optionsRequestedPolicyVersion",
                None,
            ),
        };
        let version = [(query, POLICY_VERSION)];
        let query: &[(&str, &str)] = if query.is_empty() { &[] } else { &version };
        if method == Method::GET {
            return client.get(api, &path, query, cancel).await;
        }
        found(
            client
                .call(
                    api,
                    method,
                    &path,
                    query,
                    body.as_ref(),
                    Idempotency::Idempotent,
                    cancel,
                )
                .await,
        )
    }

    /// Writes `policy` (as read, with its etag, changed). Repeating it is safe: once one
    /// attempt landed, the etag no longer matches and the repeat is refused.
    async fn set(
        &self,
        client: &Client,
        policy: Value,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let api = self.api();
        let (method, path, body) = match self {
            Target::Project(p) => (
                Method::POST,
                format!("/v3/projects/{p}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            Target::ServiceAccount(n) | Target::Secret(n) => (
                Method::POST,
                format!("/v1/{n}:setIamPolicy"),
                json!({ "policy": policy }),
            ),
            Target::Bucket(b) => (Method::PUT, format!("/storage/v1/b/{b}/iam"), policy),
        };
        client
            .call(
                api,
                method,
                &path,
                &[],
                Some(&body),
                Idempotency::Idempotent,
                cancel,
            )
            .await
    }
}

/// Whether `a` and `b` name the same principal: the kind exactly, an email in any case (IAM
/// compares them so and may answer them lower-cased).
fn same_member(a: &str, b: &str) -> bool {
    match (a.split_once(':'), b.split_once(':')) {
        (Some((ka, ea)), Some((kb, eb)))
            if ka == kb && matches!(ka, "user" | "serviceAccount" | "group" | "domain") =>
        {
            ea.eq_ignore_ascii_case(eb)
        }
        _ => a == b,
    }
}

/// The policy's binding of `role` without a condition, if any.
fn binding<'a>(policy: &'a mut Value, role: &str) -> Option<&'a mut Value> {
    policy
        .get_mut("bindings")?
        .as_array_mut()?
        .iter_mut()
        .find(|b| {
            b.get("role").and_then(Value::as_str) == Some(role) && b.get("condition").is_none()
        })
}

/// Whether the policy grants `role` to `member` without a condition.
fn has_member(policy: &Value, role: &str, member: &str) -> bool {
    policy
        .get("bindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| {
            b.get("role").and_then(Value::as_str) == Some(role) && b.get("condition").is_none()
        })
        .flat_map(|b| {
            b.get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|m| m.as_str().is_some_and(|m| same_member(m, member)))
}

/// Adds `member` to the binding of `role`; false when it is there already.
fn add_member(policy: &mut Value, role: &str, member: &str) -> bool {
    if has_member(policy, role, member) {
        return false;
    }
    match binding(policy, role) {
        Some(b) => match b.get_mut("members").and_then(Value::as_array_mut) {
            Some(members) => members.push(json!(member)),
            None => b["members"] = json!([member]),
        },
        None => {
            if !policy.is_object() {
                *policy = json!({});
            }
            match policy.get_mut("bindings").and_then(Value::as_array_mut) {
                Some(bindings) => bindings.push(json!({"role": role, "members": [member]})),
                None => policy["bindings"] = json!([{"role": role, "members": [member]}]),
            }
        }
    }
    true
}

/// Removes every occurrence of `member` from the unconditional bindings of `role`, and such a
/// binding left empty; false when it was not there.
fn remove_member(policy: &mut Value, role: &str, member: &str) -> bool {
    if !has_member(policy, role, member) {
        return false;
    }
    if let Some(bindings) = policy.get_mut("bindings").and_then(Value::as_array_mut) {
        for b in bindings.iter_mut() {
            if b.get("role").and_then(Value::as_str) == Some(role)
                && b.get("condition").is_none()
                && let Some(members) = b.get_mut("members").and_then(Value::as_array_mut)
            {
                members.retain(|m| !m.as_str().is_some_and(|m| same_member(m, member)));
            }
        }
        bindings.retain(|b| {
            !(b.get("role").and_then(Value::as_str) == Some(role)
                && b.get("condition").is_none()
                && b.get("members")
                    .and_then(Value::as_array)
                    .is_none_or(|m| m.is_empty()))
        });
    }
    true
}

/// How often a policy write that met another writer starts again: more attempts and shorter
/// waits than the client's default, since the engine writes many members of one policy at
/// once and each round lets at least one through.
fn contention(client: &RetryPolicy) -> RetryPolicy {
    RetryPolicy {
        max_attempts: client.max_attempts.max(16),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(4),
        deadline: client.deadline,
    }
}

/// What a change to the member does to the policy.
#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

/// Reads the policy, applies `change` and writes it back with the etag read, starting again
/// while another writer got in between. `Ok(false)` when the resource is gone.
async fn modify(
    client: &Client,
    r: &ResourceRef,
    target: &Target,
    change: Change,
    cancel: &Cancel,
) -> Result<bool, ProviderError> {
    let role = r
        .attributes
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("");
    let member = r
        .attributes
        .get("member")
        .and_then(Value::as_str)
        .unwrap_or("");
    retry(
        &contention(client.policy()),
        Idempotency::Idempotent,
        cancel,
        |_| async {
            let Some(mut policy) = target.get(client, cancel).await? else {
                return Ok(false);
            };
            let changed = match change {
                Change::Add => add_member(&mut policy, role, member),
                Change::Remove => remove_member(&mut policy, role, member),
            };
            if !changed {
                return Ok(true);
            }
            match target.set(client, policy, cancel).await {
                Ok(_) => Ok(true),
                // The etag no longer matches: someone wrote the policy since it was read.
                Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::PreconditionFailed) => {
                    Err(ProviderError::retryable(format!(
                        "{}; the IAM policy of {} changed meanwhile: read it again",
                        e.message,
                        target.describe()
                    )))
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
    .map_err(|e| at(r, e))
}

/// `e` without the values of `r` that are sensitive (a bucket name from a sensitive setting):
/// the paths in messages name them otherwise.
fn hidden(r: &ResourceRef, e: ProviderError) -> ProviderError {
    let mut message = e.message.clone();
    for path in &r.sensitive_paths {
        if let [key] = path.as_slice()
            && let Some(value) = r.attributes.get(key).and_then(Value::as_str)
            && !value.is_empty()
        {
            message = message.replace(value, &format!("<{key}, sensitive>"));
        }
    }
    ProviderError { message, ..e }
}

/// The attributes of a member found in the policy: exactly those of `r`.
fn attributes(r: &ResourceRef) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(key) = Target::key(&r.type_name) {
        for field in [key, "role", "member"] {
            if let Some(v) = r.attributes.get(field) {
                out.insert(field.to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[async_trait::async_trait]
impl crate::Applier for PolicyMember {
    async fn read(&self, client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        read(client, r).await.map_err(|e| hidden(r, e))
    }

    async fn create(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        create(client, r, cancel).await.map_err(|e| hidden(r, e))
    }

    fn unchangeable(&self) -> &'static str {
        "an IAM member cannot change; another resource, role or member is a new member (a replacement)"
    }

    async fn delete(
        &self,
        client: &Client,
        r: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let target = Target::of(r)?;
        // A resource that is gone took its policy with it.
        modify(client, r, &target, Change::Remove, cancel)
            .await
            .map(|_| ())
            .map_err(|e| hidden(r, e))
    }
}

async fn read(client: &Client, r: &ResourceRef) -> Result<Option<Value>, ProviderError> {
    let target = Target::of(r)?;
    let policy = target
        .get(client, &Cancel::new())
        .await
        .map_err(|e| at(r, e))?;
    let role = r
        .attributes
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("");
    let member = r
        .attributes
        .get("member")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(policy
        .filter(|p| has_member(p, role, member))
        .map(|_| attributes(r)))
}

async fn create(client: &Client, r: &ResourceRef, cancel: &Cancel) -> Result<Value, ProviderError> {
    let target = Target::of(r)?;
    if modify(client, r, &target, Change::Add, cancel).await? {
        Ok(attributes(r))
    } else {
        Err(ProviderError::not_found(format!(
            "{}: {} does not exist, so its IAM policy cannot grant anything",
            r.address,
            target.describe()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(type_name: &str, key: &str, value: &str) -> ResourceRef {
        ResourceRef {
            address: format!("{type_name}.x"),
            type_name: type_name.into(),
            attributes: json!({key: value, "role": "roles/viewer", "member": "user:a@example.com"}),
            sensitive_paths: Vec::new(),
        }
    }

    #[test]
    fn each_member_type_names_its_resource_and_api() {
        let cases = [
            (
                PROJECT_IAM_MEMBER,
                "project",
                "my-proj",
                Api::ResourceManager,
            ),
            (
                SERVICE_ACCOUNT_IAM_MEMBER,
                "serviceAccount",
                "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com",
                Api::Iam,
            ),
            (
                SECRET_IAM_MEMBER,
                "secret",
                "projects/p/secrets/s",
                Api::SecretManager,
            ),
            (
                STORAGE_BUCKET_IAM_MEMBER,
                "bucket",
                "my-bucket",
                Api::Storage,
            ),
        ];
        for (t, key, value, api) in cases {
            assert_eq!(
                Target::of(&member(t, key, value)).unwrap().api(),
                api,
                "{t}"
            );
        }
    }

    #[test]
    fn a_resource_name_that_could_reach_another_path_is_refused() {
        let cases = [
            (PROJECT_IAM_MEMBER, "project", "p/x"),
            (PROJECT_IAM_MEMBER, "project", ".."),
            (
                SERVICE_ACCOUNT_IAM_MEMBER,
                "serviceAccount",
                "projects/p/serviceAccounts/a/b",
            ),
            (
                SERVICE_ACCOUNT_IAM_MEMBER,
                "serviceAccount",
                "projects/../serviceAccounts/a",
            ),
            (SECRET_IAM_MEMBER, "secret", "projects/p/secrets/s?x=1"),
            (SECRET_IAM_MEMBER, "secret", "projects/p/buckets/s"),
            (STORAGE_BUCKET_IAM_MEMBER, "bucket", "b/o"),
            (STORAGE_BUCKET_IAM_MEMBER, "bucket", ""),
        ];
        for (t, key, value) in cases {
            let e = Target::of(&member(t, key, value)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Permanent, "{value}");
            assert!(e.message.contains("not of the form"), "{e}");
        }
    }

    #[test]
    fn adding_and_removing_a_member_touches_nothing_else() {
        let conditional = json!({"role": "roles/viewer", "members": ["user:a@example.com"],
            "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}});
        let other = json!({"role": "roles/owner", "members": ["user:o@example.com"]});
        let mut policy = json!({"version": 3, "etag": "BwX=", "bindings": [other, conditional],
            "auditConfigs": [{"service": "allServices"}]});
        let before = policy.clone();
        assert!(
            !has_member(&policy, "roles/viewer", "user:a@example.com"),
            "a conditional grant is not the member"
        );
        assert!(add_member(
            &mut policy,
            "roles/viewer",
            "user:a@example.com"
        ));
        assert!(
            !add_member(&mut policy, "roles/viewer", "user:A@example.com"),
            "no duplicate"
        );
        assert!(add_member(
            &mut policy,
            "roles/viewer",
            "user:b@example.com"
        ));
        assert_eq!(
            policy["bindings"][2],
            json!({"role": "roles/viewer", "members": ["user:a@example.com", "user:b@example.com"]})
        );
        assert!(remove_member(
            &mut policy,
            "roles/viewer",
            "user:a@example.com"
        ));
        assert!(remove_member(
            &mut policy,
            "roles/viewer",
            "user:b@example.com"
        ));
        assert!(!remove_member(
            &mut policy,
            "roles/viewer",
            "user:b@example.com"
        ));
        assert_eq!(policy, before);
    }

    #[test]
    fn a_member_listed_twice_or_out_of_order_is_present_and_removed_whole() {
        let mut policy = json!({"bindings": [
            {"role": "roles/viewer", "members": ["user:z@example.com", "user:a@example.com"]},
            {"role": "roles/viewer", "members": ["user:a@example.com"]},
        ]});
        assert!(has_member(&policy, "roles/viewer", "user:a@example.com"));
        assert!(remove_member(
            &mut policy,
            "roles/viewer",
            "user:a@example.com"
        ));
        assert_eq!(
            policy,
            json!({"bindings": [{"role": "roles/viewer", "members": ["user:z@example.com"]}]})
        );
        // An empty policy (no `bindings` at all) gets its first binding.
        let mut empty = json!({"etag": "ACAB"});
        assert!(add_member(&mut empty, "roles/viewer", "user:a@example.com"));
        assert_eq!(
            empty["bindings"],
            json!([{"role": "roles/viewer", "members": ["user:a@example.com"]}])
        );
    }

    type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;
    /// A request seen: method, path and query, body.
    type Seen = (String, String, Value);

    /// A stand-in for the Cloud Storage JSON API's bucket IAM policy: `GET`/`PUT
    /// /storage/v1/b/<bucket>/iam` with the etag checked (412 when stale). Before answering
    /// the first `PUT` it lets another writer in (a stranger's member added, the etag changed).
    /// Returns its URL and the requests it saw (method, path and query, body).
    fn bucket_api(bucket: &'static str) -> (String, Shared<Vec<Seen>>, Shared<Value>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let policy = std::sync::Arc::new(std::sync::Mutex::new(json!({
            "kind": "storage#policy", "resourceId": format!("projects/_/buckets/{bucket}"),
            "version": 1, "etag": "CAE=",
            "bindings": [{"role": "roles/storage.legacyBucketOwner", "members": ["projectOwner:p"]}],
        })));
        let (log, state) = (seen.clone(), policy.clone());
        std::thread::spawn(move || {
            let mut writes = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock()
                    .unwrap()
                    .push((method.clone(), target.clone(), body.clone()));
                let mut current = state.lock().unwrap();
                let (status, answer) = match method.as_str() {
                    "GET" if target.starts_with(&format!("/storage/v1/b/{bucket}/iam")) => {
                        (200, current.clone())
                    }
                    "PUT" if target == format!("/storage/v1/b/{bucket}/iam") => {
                        writes += 1;
                        if writes == 1 {
                            current["bindings"].as_array_mut().unwrap().push(
                                json!({"role": "roles/storage.objectViewer", "members": ["user:stranger@example.com"]}),
                            );
                            current["etag"] = json!("CAI=");
                        }
                        if body["etag"] != current["etag"] {
                            (
                                412,
                                json!({"error": {"code": 412, "message": "Precondition Failed"}}),
                            )
                        } else {
                            let mut next = body.clone();
                            next["etag"] = json!(format!("CA{writes}="));
                            *current = next;
                            (200, current.clone())
                        }
                    }
                    _ => (404, json!({"error": {"code": 404, "message": "Not Found"}})),
                };
                let text = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (url, seen, policy)
    }

    #[test]
    fn a_bucket_member_is_written_with_the_etag_read_again_on_412_and_removed_alone() {
        use crate::Applier;
        let (url, seen, policy) = bucket_api("b1");
        let endpoints = weir_provider_sdk::Endpoints {
            google: None,
            storage: Some(url),
        };
        let client = Client::new(&endpoints, None).unwrap();
        let r = ResourceRef {
            address: "google_storage_bucket_iam_member.web".into(),
            type_name: STORAGE_BUCKET_IAM_MEMBER.into(),
            attributes: json!({"bucket": "b1", "role": "roles/storage.objectUser",
                "member": "serviceAccount:w@p.iam.gserviceaccount.com"}),
            sensitive_paths: Vec::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cancel = Cancel::new();
        assert_eq!(rt.block_on(PolicyMember.read(&client, &r)).unwrap(), None);
        let created = rt
            .block_on(PolicyMember.create(&client, &r, &cancel))
            .unwrap();
        assert_eq!(created, r.attributes);
        assert_eq!(
            rt.block_on(PolicyMember.read(&client, &r)).unwrap(),
            Some(r.attributes.clone())
        );
        {
            let seen = seen.lock().unwrap();
            let puts: Vec<&(String, String, Value)> =
                seen.iter().filter(|s| s.0 == "PUT").collect();
            assert_eq!(puts.len(), 2, "refused once (412), then written: {seen:?}");
            assert_eq!(puts[0].2["etag"], json!("CAE="));
            assert_eq!(puts[1].2["etag"], json!("CAI="));
            assert!(
                seen.iter()
                    .any(|s| s.0 == "GET" && s.1.contains("optionsRequestedPolicyVersion=3"))
            );
        }
        // The stranger's member, written meanwhile, and the owner's binding are kept.
        let bindings = policy.lock().unwrap()["bindings"].clone();
        assert_eq!(bindings.as_array().unwrap().len(), 3, "{bindings}");
        rt.block_on(PolicyMember.delete(&client, &r, &cancel))
            .unwrap();
        let after = policy.lock().unwrap().clone();
        assert_eq!(
            after["bindings"],
            json!([
                {"role": "roles/storage.legacyBucketOwner", "members": ["projectOwner:p"]},
                {"role": "roles/storage.objectViewer", "members": ["user:stranger@example.com"]},
            ])
        );
        assert_eq!(
            after["kind"],
            json!("storage#policy"),
            "the policy goes back as read"
        );
        assert_eq!(rt.block_on(PolicyMember.read(&client, &r)).unwrap(), None);
    }

    #[test]
    fn a_sensitive_bucket_name_stays_out_of_errors() {
        use crate::Applier;
        let (url, _, _) = bucket_api("b1");
        let endpoints = weir_provider_sdk::Endpoints {
            google: None,
            storage: Some(url),
        };
        let client = Client::new(&endpoints, None).unwrap();
        let r = ResourceRef {
            address: "google_storage_bucket_iam_member.web".into(),
            type_name: STORAGE_BUCKET_IAM_MEMBER.into(),
            attributes: json!({"bucket": "private-name-42", "role": "roles/storage.objectUser",
                "member": "serviceAccount:w@p.iam.gserviceaccount.com"}),
            sensitive_paths: vec![vec!["bucket".into()]],
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(PolicyMember.create(&client, &r, &Cancel::new()))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
        assert!(!e.message.contains("private-name-42"), "{e}");
        assert!(e.message.contains("<bucket, sensitive>"), "{e}");
    }
}
