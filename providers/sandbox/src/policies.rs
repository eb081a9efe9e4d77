//! IAM policies, one per resource, kept in memory: the `getIamPolicy`/`setIamPolicy` of any
//! API, served here for service accounts (see [`crate::iam`]), projects (Resource Manager v3
//! `projects.getIamPolicy`/`setIamPolicy`) and Secret Manager secrets.
//!
//! As Google does:
//! - a policy never written is empty, but a project's, which has an owner from its creation
//!   (the sandbox's is `user:sandbox-owner@example.com`);
//! - the etag changes on every write; a write carrying another etag is refused (409 `ABORTED`
//!   for these APIs, 412 for Cloud Storage's), one carrying none overwrites;
//! - a policy is read at version 1 unless version 3 is asked for; a version 1 read of a policy
//!   with conditional bindings shows their roles suffixed `_withcond_<hash>` and without their
//!   conditions (so a writer asking for version 1 cannot keep them), and writing conditional
//!   bindings needs version 3;
//! - a binding needs a role and at least one member, each of a documented form, and a
//!   service account member must exist; bindings of the same role and condition are merged,
//!   members kept once and sorted, bindings sorted by role.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::run_jobs::error;
use crate::validate::Request;

/// The policies kept, by resource (`<api host>/<resource name>`).
#[derive(Default)]
pub(crate) struct Store {
    policies: BTreeMap<String, Stored>,
    /// Counts writes: etags come from it.
    writes: u64,
}

struct Stored {
    bindings: Vec<Value>,
    etag: String,
}

/// How an API refuses a write whose etag is not the policy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stale {
    /// 409 `ABORTED` (Resource Manager, IAM, Secret Manager).
    Aborted,
    /// 412 (Cloud Storage, whose bucket policies are served by its own front).
    #[allow(dead_code)]
    PreconditionFailed,
}

/// Says whether a member names something that does not exist (`Some(why)`), e.g. a service
/// account never created.
pub(crate) type MemberCheck<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The owner every sandbox project has.
pub(crate) const PROJECT_OWNER: &str = "user:sandbox-owner@example.com";

impl Store {
    fn stored(&mut self, resource: &str, initial: impl FnOnce() -> Vec<Value>) -> &mut Stored {
        if !self.policies.contains_key(resource) {
            let etag = self.etag();
            self.policies.insert(
                resource.to_owned(),
                Stored {
                    bindings: normalised(initial()),
                    etag,
                },
            );
        }
        self.policies
            .get_mut(resource)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// The policy of `resource` as `getIamPolicy` answers it, at the `requested` version
    /// (absent: 0). `initial` gives the bindings of a policy never written.
    pub(crate) fn get(
        &mut self,
        resource: &str,
        requested: Option<i64>,
        initial: impl FnOnce() -> Vec<Value>,
    ) -> (u16, Value) {
        let requested = requested.unwrap_or(0);
        if ![0, 1, 3].contains(&requested) {
            return error(
                400,
                "INVALID_ARGUMENT",
                format!(
                    "Invalid requested policy version {requested}: valid values are 0, 1 and 3."
                ),
            );
        }
        let stored = self.stored(resource, initial);
        (200, view(&stored.bindings, &stored.etag, requested == 3))
    }

    /// Answers `setIamPolicy` of `resource` with the request's `policy`.
    pub(crate) fn set(
        &mut self,
        resource: &str,
        policy: Option<&Value>,
        stale: Stale,
        check: MemberCheck<'_>,
        initial: impl FnOnce() -> Vec<Value>,
    ) -> (u16, Value) {
        let Some(policy) = policy.filter(|p| p.is_object()) else {
            return invalid("The request has no policy.".into());
        };
        let version = policy.get("version").and_then(Value::as_i64).unwrap_or(0);
        if ![0, 1, 3].contains(&version) {
            return invalid(format!(
                "Invalid policy version {version}: valid values are 0, 1 and 3."
            ));
        }
        let current = self.stored(resource, initial).etag.clone();
        if let Some(sent) = policy.get("etag").and_then(Value::as_str)
            && sent != current
        {
            return match stale {
                Stale::Aborted => error(
                    409,
                    "ABORTED",
                    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.".into(),
                ),
                Stale::PreconditionFailed => {
                    error(412, "FAILED_PRECONDITION", "Precondition Failed".into())
                }
            };
        }
        let bindings = policy
            .get("bindings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for b in &bindings {
            if let Err(why) = check_binding(b, version, check) {
                return invalid(why);
            }
        }
        let etag = self.etag();
        let stored = self.stored(resource, Vec::new);
        stored.bindings = normalised(bindings);
        stored.etag = etag;
        (200, view(&stored.bindings, &stored.etag, true))
    }

    /// Shows `member` as `replacement` in every policy (with a new etag), as IAM shows a
    /// deleted service account: `deleted:serviceAccount:<email>?uid=<uniqueId>`.
    pub(crate) fn rename_member(&mut self, member: &str, replacement: &str) {
        let keys: Vec<String> = self.policies.keys().cloned().collect();
        for key in keys {
            let bindings = &self.policies[&key].bindings;
            let named = |b: &Value| {
                b["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m.as_str() == Some(member)))
            };
            if !bindings.iter().any(named) {
                continue;
            }
            let renamed: Vec<Value> = bindings
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    if let Some(members) = b["members"].as_array_mut() {
                        for m in members.iter_mut().filter(|m| m.as_str() == Some(member)) {
                            *m = json!(replacement);
                        }
                    }
                    b
                })
                .collect();
            let etag = self.etag();
            if let Some(stored) = self.policies.get_mut(&key) {
                stored.bindings = normalised(renamed);
                stored.etag = etag;
            }
        }
    }

    /// Drops the policy of a deleted resource: one made again starts empty.
    pub(crate) fn forget(&mut self, resource: &str) {
        self.policies.remove(resource);
    }

    fn etag(&mut self) -> String {
        self.writes += 1;
        // Google's policy etags are base64 of a few bytes, starting `Bw`.
        let mut bytes = vec![0x07];
        bytes.extend_from_slice(&self.writes.to_be_bytes());
        base64(&bytes)
    }
}

/// `getIamPolicy`/`setIamPolicy` of a project (Resource Manager v3), or `None` for another
/// method.
pub(crate) fn project(
    store: &mut Store,
    check: MemberCheck<'_>,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let body = request.body.clone().unwrap_or_else(|| json!({}));
    let owner = || vec![json!({"role": "roles/owner", "members": [PROJECT_OWNER]})];
    match method_id {
        "cloudresourcemanager.projects.getIamPolicy" => {
            let name = request
                .path
                .strip_prefix("/v3/")?
                .strip_suffix(":getIamPolicy")?;
            let requested = body
                .pointer("/options/requestedPolicyVersion")
                .and_then(Value::as_i64);
            Some(store.get(
                &key("cloudresourcemanager.googleapis.com", name),
                requested,
                owner,
            ))
        }
        "cloudresourcemanager.projects.setIamPolicy" => {
            let name = request
                .path
                .strip_prefix("/v3/")?
                .strip_suffix(":setIamPolicy")?;
            let policy = body.get("policy");
            // A project always keeps an owner; Resource Manager refuses a policy without one.
            let has_owner = policy
                .and_then(|p| p.get("bindings"))
                .and_then(Value::as_array)
                .is_some_and(|b| {
                    b.iter()
                        .any(|b| b.get("role") == Some(&json!("roles/owner")))
                });
            if !has_owner {
                return Some(error(
                    400,
                    "FAILED_PRECONDITION",
                    "The policy must have at least one owner (role roles/owner).".into(),
                ));
            }
            Some(store.set(
                &key("cloudresourcemanager.googleapis.com", name),
                policy,
                Stale::Aborted,
                check,
                owner,
            ))
        }
        _ => None,
    }
}

/// `getIamPolicy`/`setIamPolicy` of a Secret Manager secret, or `None` for another method.
/// `exists` says whether a secret of that name exists (404 otherwise).
pub(crate) fn secret(
    store: &mut Store,
    exists: &mut dyn FnMut(&str) -> bool,
    check: MemberCheck<'_>,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let path = request.path.strip_prefix("/v1/")?;
    let (name, get) = match method_id {
        "secretmanager.projects.secrets.getIamPolicy" => {
            (path.strip_suffix(":getIamPolicy")?, true)
        }
        "secretmanager.projects.secrets.setIamPolicy" => {
            (path.strip_suffix(":setIamPolicy")?, false)
        }
        _ => return None,
    };
    if !exists(name) {
        return Some(error(
            404,
            "NOT_FOUND",
            format!("Secret [{name}] not found."),
        ));
    }
    let key = secret_key(name);
    Some(if get {
        store.get(&key, requested_in_query(request), Vec::new)
    } else {
        let body = request.body.clone().unwrap_or_else(|| json!({}));
        store.set(&key, body.get("policy"), Stale::Aborted, check, Vec::new)
    })
}

/// Where the policy of the secret `name` is kept.
pub(crate) fn secret_key(name: &str) -> String {
    key("secretmanager.googleapis.com", name)
}

/// Where the policy of `name` on the API at `host` is kept.
pub(crate) fn key(host: &str, name: &str) -> String {
    format!("{host}/{name}")
}

/// `options.requestedPolicyVersion` from the query (IAM, Secret Manager).
pub(crate) fn requested_in_query(request: &Request) -> Option<i64> {
    request
        .query_value("options.requestedPolicyVersion")
        .and_then(|v| v.parse().ok())
}

/// Whether `member` is of a form IAM documents.
fn member_form(member: &str) -> bool {
    if matches!(member, "allUsers" | "allAuthenticatedUsers") {
        return true;
    }
    let Some((kind, rest)) = member.split_once(':') else {
        return false;
    };
    let email = |s: &str| {
        s.split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
    };
    match kind {
        "user" | "serviceAccount" | "group" => email(rest),
        "domain" => rest.contains('.'),
        "principal" | "principalSet" => rest.starts_with("//"),
        "deleted" => !rest.is_empty(),
        "projectOwner" | "projectEditor" | "projectViewer" => !rest.is_empty(),
        _ => false,
    }
}

fn check_binding(b: &Value, version: i64, check: MemberCheck<'_>) -> Result<(), String> {
    let role = b.get("role").and_then(Value::as_str).unwrap_or("");
    let role_ok = ["roles/", "projects/", "organizations/"]
        .iter()
        .any(|p| role.strip_prefix(p).is_some_and(|r| !r.is_empty()));
    if !role_ok || role.contains("_withcond_") {
        return Err(format!(
            "Role {role:?} is not a role: roles are `roles/<name>` or a custom role's full name."
        ));
    }
    let members = b.get("members").and_then(Value::as_array);
    let Some(members) = members.filter(|m| !m.is_empty()) else {
        return Err(format!(
            "The binding of {role} has no members: each binding needs at least one."
        ));
    };
    for m in members {
        let m = m.as_str().unwrap_or("");
        if !member_form(m) {
            return Err(format!("Invalid member {m:?} in the binding of {role}."));
        }
        if let Some(why) = check(m) {
            return Err(why);
        }
    }
    if let Some(condition) = b.get("condition") {
        if condition
            .get("expression")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "The condition of the binding of {role} has no expression."
            ));
        }
        if version < 3 {
            return Err(format!(
                "The binding of {role} has a condition, which needs policy version 3 (this policy says {version})."
            ));
        }
    }
    Ok(())
}

/// The bindings as the API keeps them: merged by role and condition, members once and
/// sorted, bindings sorted by role.
fn normalised(bindings: Vec<Value>) -> Vec<Value> {
    let mut merged: BTreeMap<(String, String), (Value, Vec<String>)> = BTreeMap::new();
    for b in bindings {
        let role = b
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let condition = b.get("condition").cloned().unwrap_or(Value::Null);
        let entry = merged
            .entry((role, condition.to_string()))
            .or_insert_with(|| (condition, Vec::new()));
        for m in b
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(m) = m.as_str() {
                entry.1.push(m.to_owned());
            }
        }
    }
    merged
        .into_iter()
        .map(|((role, _), (condition, mut members))| {
            members.sort();
            members.dedup();
            let mut b = json!({"role": role, "members": members});
            if !condition.is_null() {
                b["condition"] = condition;
            }
            b
        })
        .collect()
}

/// The policy answered: version 3 with conditions when asked for and needed, else version 1
/// with conditional roles renamed as IAM does.
fn view(bindings: &[Value], etag: &str, v3: bool) -> Value {
    let conditional = bindings.iter().any(|b| b.get("condition").is_some());
    let shown: Vec<Value> = match (conditional, v3) {
        (false, _) | (true, true) => bindings.to_vec(),
        (true, false) => bindings
            .iter()
            .map(|b| match b.get("condition") {
                None => b.clone(),
                Some(c) => {
                    let role = b["role"].as_str().unwrap_or("");
                    let hash = c
                        .to_string()
                        .bytes()
                        .fold(0u32, |h, x| h.wrapping_mul(31).wrapping_add(u32::from(x)));
                    json!({"role": format!("{role}_withcond_{hash:08x}"), "members": b["members"]})
                }
            })
            .collect(),
    };
    let mut policy = json!({
        "version": if conditional && v3 { 3 } else { 1 },
        "etag": etag,
    });
    if !shown.is_empty() {
        policy["bindings"] = json!(shown);
    }
    policy
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Google's `400 INVALID_ARGUMENT` answer.
pub(crate) fn invalid(message: String) -> (u16, Value) {
    error(400, "INVALID_ARGUMENT", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_write_with_a_stale_etag_is_refused_and_one_with_the_current_etag_lands() {
        let mut store = Store::default();
        let (_, first) = store.get("r", Some(3), Vec::new);
        assert_eq!(first, json!({"version": 1, "etag": first["etag"]}));
        let policy = json!({"etag": first["etag"], "bindings": [
            {"role": "roles/viewer", "members": ["user:b@example.com", "user:a@example.com", "user:a@example.com"]}]});
        let (status, written) = store.set("r", Some(&policy), Stale::Aborted, &none, Vec::new);
        assert_eq!(status, 200, "{written}");
        assert_ne!(written["etag"], first["etag"]);
        assert_eq!(
            written["bindings"],
            json!([{"role": "roles/viewer", "members": ["user:a@example.com", "user:b@example.com"]}])
        );
        let (status, refused) = store.set("r", Some(&policy), Stale::Aborted, &none, Vec::new);
        assert_eq!(
            (status, refused["error"]["status"].clone()),
            (409, json!("ABORTED"))
        );
        let (status, _) = store.set(
            "r",
            Some(&policy),
            Stale::PreconditionFailed,
            &none,
            Vec::new,
        );
        assert_eq!(status, 412);
        assert_eq!(
            store.get("r", None, Vec::new).1,
            written,
            "the refusals changed nothing"
        );
    }

    #[test]
    fn conditions_need_version_3_to_be_read_whole_or_written() {
        let mut store = Store::default();
        let conditional = json!({"role": "roles/viewer", "members": ["user:a@example.com"],
            "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}});
        let v1 = json!({"version": 1, "bindings": [conditional]});
        let (status, _) = store.set("r", Some(&v1), Stale::Aborted, &none, Vec::new);
        assert_eq!(status, 400);
        let v3 = json!({"version": 3, "bindings": [conditional]});
        assert_eq!(
            store.set("r", Some(&v3), Stale::Aborted, &none, Vec::new).0,
            200
        );
        let (_, read3) = store.get("r", Some(3), Vec::new);
        assert_eq!(read3["version"], json!(3));
        assert_eq!(read3["bindings"][0], conditional);
        let (_, read1) = store.get("r", Some(1), Vec::new);
        assert_eq!(read1["version"], json!(1));
        let role = read1["bindings"][0]["role"].as_str().unwrap();
        assert!(role.starts_with("roles/viewer_withcond_"), "{role}");
        assert!(read1["bindings"][0].get("condition").is_none());
        // Writing that view back is refused: it would lose the condition.
        let back = json!({"etag": read1["etag"], "bindings": read1["bindings"]});
        assert_eq!(
            store
                .set("r", Some(&back), Stale::Aborted, &none, Vec::new)
                .0,
            400
        );
    }

    #[test]
    fn bad_bindings_and_unknown_members_are_refused() {
        let mut store = Store::default();
        let unknown = |m: &str| {
            (m == "serviceAccount:gone@p.iam.gserviceaccount.com")
                .then(|| format!("{m} does not exist."))
        };
        for b in [
            json!({"role": "viewer", "members": ["user:a@example.com"]}),
            json!({"role": "roles/viewer", "members": []}),
            json!({"role": "roles/viewer", "members": ["alice"]}),
            json!({"role": "roles/viewer", "members": ["serviceAccount:gone@p.iam.gserviceaccount.com"]}),
        ] {
            let policy = json!({"bindings": [b]});
            let (status, answer) =
                store.set("r", Some(&policy), Stale::Aborted, &unknown, Vec::new);
            assert_eq!(status, 400, "{b}: {answer}");
        }
    }

    #[test]
    fn etags_are_base64() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(&[0x07, 0, 0, 0, 0, 0, 0, 0, 1]), "BwAAAAAAAAAB");
    }
}
