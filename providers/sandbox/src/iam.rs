//! IAM v1 service accounts with state: `projects.serviceAccounts.{create,get,patch,delete}`
//! and their `getIamPolicy`/`setIamPolicy` (kept by [`crate::policies`]), in memory.
//!
//! As Google does: the account id must be 6 to 30 characters of `[a-z]([-a-z0-9]*[a-z0-9])`;
//! the email is `<accountId>@<project>.iam.gserviceaccount.com`; `uniqueId` (21 digits, never
//! reused) and `oauth2ClientId` (the same number) are set at create; the deprecated `etag` is
//! the constant IAM answers; only `displayName` (at most 100 bytes) and `description` (at most
//! 256) can be written, a patch naming them in `updateMask`; an account is found by email or
//! unique id, with its project or `-`; a duplicate create is 409 `ALREADY_EXISTS`, anything
//! missing 404 `NOT_FOUND`. Deleting an account deletes its policy, and every grant to it
//! shows it as `deleted:serviceAccount:<email>?uid=<uniqueId>`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::policies::{self, Stale, invalid};
use crate::run_jobs::error;
use crate::validate::Request;

/// The etag IAM answers for every service account (the field is deprecated).
const ETAG: &str = "MDEwMjE5MjA=";
const HOST: &str = "iam.googleapis.com";

/// The service accounts the sandbox keeps.
#[derive(Default)]
pub(crate) struct Store {
    /// Accounts by email.
    accounts: BTreeMap<String, Value>,
    /// Counts creates: unique ids come from it.
    created: u64,
}

impl Store {
    /// Why `member` cannot be granted anything: a service account of a project's domain
    /// (`*.iam.gserviceaccount.com`) that does not exist, as IAM refuses it.
    pub(crate) fn unknown_member(&self, member: &str) -> Option<String> {
        let email = member.strip_prefix("serviceAccount:")?;
        let ours = email.ends_with(".iam.gserviceaccount.com");
        (ours && !self.accounts.contains_key(&email.to_ascii_lowercase()))
            .then(|| format!("Service account {email} does not exist."))
    }

    /// The email of the account `projects/<p|->/serviceAccounts/<email|uniqueId>`, if it exists.
    fn find(&self, name: &str) -> Option<String> {
        let rest = name.strip_prefix("projects/")?;
        let (project, key) = rest.split_once("/serviceAccounts/")?;
        let account = match self.accounts.get(&key.to_ascii_lowercase()) {
            Some(a) => a,
            None => self
                .accounts
                .values()
                .find(|a| a["uniqueId"].as_str() == Some(key))?,
        };
        (project == "-" || account["projectId"].as_str() == Some(project))
            .then(|| account["email"].as_str().unwrap_or_default().to_owned())
    }
}

/// The answer to a request to IAM that the documents accepted as `method_id`, or `None` when
/// the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    policies: &mut policies::Store,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let path = request.path.strip_prefix("/v1/")?;
    let body = request.body.clone().unwrap_or_else(|| json!({}));
    Some(match method_id {
        "iam.projects.serviceAccounts.create" => {
            let project = path
                .strip_prefix("projects/")?
                .strip_suffix("/serviceAccounts")?;
            create(store, project, &body)
        }
        "iam.projects.serviceAccounts.list" => {
            let project = path
                .strip_prefix("projects/")?
                .strip_suffix("/serviceAccounts")?;
            let accounts: Vec<Value> = store
                .accounts
                .values()
                .filter(|a| a["projectId"] == project)
                .cloned()
                .collect();
            (200, json!({"accounts": accounts}))
        }
        "iam.projects.serviceAccounts.get" => match store.find(path) {
            Some(email) => (200, store.accounts[&email].clone()),
            None => not_found(path),
        },
        "iam.projects.serviceAccounts.patch" => {
            let Some(email) = store.find(path) else {
                return Some(not_found(path));
            };
            let mask = body.get("updateMask").and_then(Value::as_str).unwrap_or("");
            if mask.is_empty() {
                return Some(invalid("update_mask is required.".into()));
            }
            let given = body.get("serviceAccount").cloned().unwrap_or(json!({}));
            let mut account = store.accounts[&email].clone();
            for field in mask.split(',').map(str::trim) {
                let field = match field {
                    "displayName" | "display_name" => "displayName",
                    "description" => "description",
                    other => {
                        return Some(invalid(format!(
                            "The field {other} cannot be updated: only display_name and description can."
                        )));
                    }
                };
                match given
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                {
                    Some(v) => account[field] = json!(v),
                    None => {
                        if let Some(fields) = account.as_object_mut() {
                            fields.remove(field);
                        }
                    }
                }
            }
            if let Err(why) = check_written(&account) {
                return Some(invalid(why));
            }
            store.accounts.insert(email, account.clone());
            (200, account)
        }
        "iam.projects.serviceAccounts.delete" => {
            let Some(email) = store.find(path) else {
                return Some(not_found(path));
            };
            let account = store.accounts.remove(&email)?;
            policies.forget(&policy_key(&account));
            // Grants to it stay, shown as IAM shows a deleted account's.
            let unique_id = account["uniqueId"].as_str().unwrap_or_default();
            policies.rename_member(
                &format!("serviceAccount:{email}"),
                &format!("deleted:serviceAccount:{email}?uid={unique_id}"),
            );
            (200, json!({}))
        }
        "iam.projects.serviceAccounts.getIamPolicy" => {
            let name = path.strip_suffix(":getIamPolicy")?;
            let Some(email) = store.find(name) else {
                return Some(not_found(name));
            };
            let key = policy_key(&store.accounts[&email]);
            policies.get(&key, policies::requested_in_query(request), Vec::new)
        }
        "iam.projects.serviceAccounts.setIamPolicy" => {
            let name = path.strip_suffix(":setIamPolicy")?;
            let Some(email) = store.find(name) else {
                return Some(not_found(name));
            };
            let key = policy_key(&store.accounts[&email]);
            let check = |m: &str| store.unknown_member(m);
            policies.set(&key, body.get("policy"), Stale::Aborted, &check, Vec::new)
        }
        _ => return None,
    })
}

fn create(store: &mut Store, project: &str, body: &Value) -> (u16, Value) {
    let id = body.get("accountId").and_then(Value::as_str).unwrap_or("");
    let well_formed = id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(6..=30).contains(&id.len()) || !well_formed {
        return invalid(format!(
            "Invalid account id {id:?}: it must be 6 to 30 characters of [a-z]([-a-z0-9]*[a-z0-9])."
        ));
    }
    let email = format!("{id}@{project}.iam.gserviceaccount.com");
    if store.accounts.contains_key(&email) {
        return error(
            409,
            "ALREADY_EXISTS",
            format!("Service account {id} already exists within project projects/{project}."),
        );
    }
    store.created += 1;
    let unique_id = format!("1{:020}", 4_711_000_000u64 + store.created);
    let mut account = json!({
        "name": format!("projects/{project}/serviceAccounts/{email}"),
        "projectId": project,
        "uniqueId": unique_id,
        "email": email,
        "etag": ETAG,
        "oauth2ClientId": unique_id,
    });
    let given = body.get("serviceAccount").cloned().unwrap_or(json!({}));
    for field in ["displayName", "description"] {
        if let Some(v) = given
            .get(field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            account[field] = json!(v);
        }
    }
    if let Err(why) = check_written(&account) {
        return invalid(why);
    }
    store.accounts.insert(email, account.clone());
    (200, account)
}

/// The lengths IAM allows for what can be written.
fn check_written(account: &Value) -> Result<(), String> {
    for (field, max) in [("displayName", 100), ("description", 256)] {
        let len = account
            .get(field)
            .and_then(Value::as_str)
            .map_or(0, str::len);
        if len > max {
            return Err(format!(
                "The {field} is {len} bytes long; at most {max} are allowed."
            ));
        }
    }
    Ok(())
}

/// Where an account's policy is kept: by its unique id, so that an account made again with
/// the same email starts with an empty policy.
fn policy_key(account: &Value) -> String {
    policies::key(HOST, account["uniqueId"].as_str().unwrap_or_default())
}

fn not_found(name: &str) -> (u16, Value) {
    error(404, "NOT_FOUND", format!("Unknown service account {name}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_created_once_found_by_email_or_id_patched_and_deleted_with_its_policy() {
        let (mut store, mut policies) = (Store::default(), policies::Store::default());
        let mut call = |id: &str, method: &str, path: &str, body: Option<Value>| {
            answer(
                &mut store,
                &mut policies,
                id,
                &Request::of(method, path, &[], body),
            )
            .unwrap()
        };
        let create = json!({"accountId": "mage-web", "serviceAccount": {"displayName": "W"}});
        let (status, sa) = call(
            "iam.projects.serviceAccounts.create",
            "POST",
            "/v1/projects/p/serviceAccounts",
            Some(create.clone()),
        );
        assert_eq!(status, 200, "{sa}");
        assert_eq!(sa["email"], json!("mage-web@p.iam.gserviceaccount.com"));
        assert_eq!(sa["uniqueId"].as_str().unwrap().len(), 21);
        assert_eq!(sa["oauth2ClientId"], sa["uniqueId"]);
        let again = call(
            "iam.projects.serviceAccounts.create",
            "POST",
            "/v1/projects/p/serviceAccounts",
            Some(create),
        );
        assert_eq!(again.0, 409);
        let by_id = format!(
            "/v1/projects/-/serviceAccounts/{}",
            sa["uniqueId"].as_str().unwrap()
        );
        assert_eq!(
            call("iam.projects.serviceAccounts.get", "GET", &by_id, None),
            (200, sa.clone())
        );
        let path = "/v1/projects/p/serviceAccounts/mage-web@p.iam.gserviceaccount.com";
        let patch = json!({"serviceAccount": {"description": "d"}, "updateMask": "description"});
        let (status, patched) = call(
            "iam.projects.serviceAccounts.patch",
            "PATCH",
            path,
            Some(patch),
        );
        assert_eq!((status, patched["description"].clone()), (200, json!("d")));
        let bad = json!({"serviceAccount": {"email": "x"}, "updateMask": "email"});
        assert_eq!(
            call(
                "iam.projects.serviceAccounts.patch",
                "PATCH",
                path,
                Some(bad)
            )
            .0,
            400
        );
        let grant = json!({"policy": {"bindings": [{"role": "roles/iam.serviceAccountUser",
            "members": ["serviceAccount:mage-web@p.iam.gserviceaccount.com"]}]}});
        let set = format!("{path}:setIamPolicy");
        assert_eq!(
            call(
                "iam.projects.serviceAccounts.setIamPolicy",
                "POST",
                &set,
                Some(grant)
            )
            .0,
            200
        );
        let stranger = json!({"policy": {"bindings": [{"role": "roles/iam.serviceAccountUser",
            "members": ["serviceAccount:nobody@p.iam.gserviceaccount.com"]}]}});
        assert_eq!(
            call(
                "iam.projects.serviceAccounts.setIamPolicy",
                "POST",
                &set,
                Some(stranger)
            )
            .0,
            400
        );
        assert_eq!(
            call("iam.projects.serviceAccounts.delete", "DELETE", path, None),
            (200, json!({}))
        );
        assert_eq!(
            call("iam.projects.serviceAccounts.get", "GET", path, None).0,
            404
        );
        let get = format!("{path}:getIamPolicy");
        assert_eq!(
            call(
                "iam.projects.serviceAccounts.getIamPolicy",
                "POST",
                &get,
                None
            )
            .0,
            404
        );
        for id in ["short", "Upper-case", "ends-with-", "0starts-with-digit"] {
            let body = json!({"accountId": id});
            let (status, _) = call(
                "iam.projects.serviceAccounts.create",
                "POST",
                "/v1/projects/p/serviceAccounts",
                Some(body),
            );
            assert_eq!(status, 400, "{id}");
        }
    }

    #[test]
    fn a_deleted_accounts_grants_show_it_as_deleted() {
        let (mut store, mut policies) = (Store::default(), policies::Store::default());
        let create = json!({"accountId": "mage-job", "serviceAccount": {}});
        let path = "/v1/projects/p/serviceAccounts";
        let created = Request::of("POST", path, &[], Some(create));
        let (_, sa) = answer(
            &mut store,
            &mut policies,
            "iam.projects.serviceAccounts.create",
            &created,
        )
        .unwrap();
        let member = format!("serviceAccount:{}", sa["email"].as_str().unwrap());
        let grant = json!({"bindings": [{"role": "roles/viewer", "members": [member]}]});
        let check = |m: &str| store.unknown_member(m);
        assert_eq!(
            policies
                .set("elsewhere", Some(&grant), Stale::Aborted, &check, Vec::new)
                .0,
            200
        );
        let (_, before) = policies.get("elsewhere", Some(3), Vec::new);
        let deleted = Request::of(
            "DELETE",
            &format!("{path}/{}", sa["email"].as_str().unwrap()),
            &[],
            None,
        );
        let (status, _) = answer(
            &mut store,
            &mut policies,
            "iam.projects.serviceAccounts.delete",
            &deleted,
        )
        .unwrap();
        assert_eq!(status, 200);
        let (_, after) = policies.get("elsewhere", Some(3), Vec::new);
        assert_ne!(after["etag"], before["etag"]);
        assert_eq!(
            after["bindings"][0]["members"],
            json!([format!(
                "deleted:{member}?uid={}",
                sa["uniqueId"].as_str().unwrap()
            )])
        );
    }
}
