//! The quickstart's service accounts and IAM members (of the project, of a service account, of
//! the secrets), planned and applied through the Google provider against the sandbox. The
//! secret members need their secrets, so the secrets are applied with them; the bucket members
//! are left to the Cloud Storage front.

use super::*;
use serde_json::Value;

const SERVICE_ACCOUNT: &str = "google_service_account";
const PROJECT_MEMBER: &str = "google_project_iam_member";
const ACCOUNT_MEMBER: &str = "google_service_account_iam_member";
const SECRET_MEMBER: &str = "google_secret_manager_secret_iam_member";
const RM: &str = "cloudresourcemanager.googleapis.com";
const IAM: &str = "iam.googleapis.com";
const SM: &str = "secretmanager.googleapis.com";

/// A principal weir does not manage, granted by hand.
const STRANGER: &str = "user:stranger@example.com";

fn identities(
    dir: &Path,
    endpoint: &str,
    types: &[&str],
) -> (Vec<ResourceInstance>, weir_provider_sdk::ProviderConfig) {
    lowered(dir, &[("WEIR_GOOGLE_ENDPOINT", endpoint)], types)
}

const ALL: &[&str] = &[
    SERVICE_ACCOUNT,
    PROJECT_MEMBER,
    ACCOUNT_MEMBER,
    SECRET,
    SECRET_MEMBER,
];

/// Where a resource's policy is read and written: host, getIamPolicy path, its query, its
/// body (the three APIs ask for the version differently).
struct PolicyOf {
    host: &'static str,
    name: String,
}

impl PolicyOf {
    fn project(p: &str) -> PolicyOf {
        PolicyOf {
            host: RM,
            name: format!("projects/{p}"),
        }
    }
    fn account(name: &str) -> PolicyOf {
        PolicyOf {
            host: IAM,
            name: name.to_owned(),
        }
    }
    fn secret(name: &str) -> PolicyOf {
        PolicyOf {
            host: SM,
            name: name.to_owned(),
        }
    }
    fn prefix(&self) -> &'static str {
        if self.host == RM { "/v3" } else { "/v1" }
    }

    fn get(&self, sandbox: &Running) -> Value {
        let path = format!("{}/{}:getIamPolicy", self.prefix(), self.name);
        let (status, policy) = match self.host {
            RM => call(
                sandbox,
                RM,
                "POST",
                &path,
                Some(json!({"options": {"requestedPolicyVersion": 3}})),
            ),
            IAM => call(
                sandbox,
                IAM,
                "POST",
                &format!("{path}?options.requestedPolicyVersion=3"),
                None,
            ),
            _ => call(
                sandbox,
                SM,
                "GET",
                &format!("{path}?options.requestedPolicyVersion=3"),
                None,
            ),
        };
        assert_eq!(status, 200, "{policy}");
        policy
    }

    /// Adds `binding` to the policy, as someone outside weir would.
    fn grant(&self, sandbox: &Running, binding: Value) {
        let mut policy = self.get(sandbox);
        let mut bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
        bindings.push(binding);
        policy["bindings"] = json!(bindings);
        policy["version"] = json!(3);
        let path = format!("{}/{}:setIamPolicy", self.prefix(), self.name);
        let (status, answer) = call(
            sandbox,
            self.host,
            "POST",
            &path,
            Some(json!({"policy": policy})),
        );
        assert_eq!(status, 200, "{answer}");
    }

    /// The unconditional members of `role`, sorted.
    fn members(&self, sandbox: &Running, role: &str) -> Vec<String> {
        let policy = self.get(sandbox);
        let mut members: Vec<String> = policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["role"] == json!(role) && b.get("condition").is_none())
            .flat_map(|b| b["members"].as_array().unwrap().clone())
            .map(|m| m.as_str().unwrap().to_owned())
            .collect();
        members.sort();
        members
    }

    fn conditional(&self, sandbox: &Running) -> Vec<Value> {
        self.get(sandbox)["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b.get("condition").is_some())
            .cloned()
            .collect()
    }
}

fn attr(desired: &[ResourceInstance], address: &str, key: &str) -> String {
    desired
        .iter()
        .find(|i| i.address == address)
        .unwrap_or_else(|| panic!("{address} is not lowered"))
        .attributes[key]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn quickstart_accounts_and_members_are_created_unchanged_on_replan_updated_replaced_and_deleted_leaving_strangers_grants()
 {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    let sandbox = start(Some(file.clone()), Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = identities(&dir, &sandbox.url(), ALL);
    let project = config.project.clone().unwrap();
    let engine = Engine::new(config);
    let count = |t: &str| desired.iter().filter(|i| i.type_name == t).count();
    assert_eq!(count(SERVICE_ACCOUNT), 3);
    assert_eq!(count(PROJECT_MEMBER), 7);
    assert_eq!(count(ACCOUNT_MEMBER), 1);
    assert!(count(SECRET_MEMBER) >= 3, "{}", count(SECRET_MEMBER));

    // Someone else's grants, before weir: one in a role weir also grants, one conditional.
    let on_project = PolicyOf::project(&project);
    on_project.grant(
        &sandbox,
        json!({"role": "roles/logging.logWriter", "members": [STRANGER]}),
    );
    let conditional = json!({"role": "roles/run.developer", "members": [STRANGER],
        "condition": {"title": "until 2030", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}});
    on_project.grant(&sandbox, conditional.clone());

    engine.create_all(&desired);
    let again = engine.plan(&desired);
    assert!(!again.has_changes(), "{:?}", actions(&again));

    let state = engine.state();
    let web = &state.resources[&format!("{SERVICE_ACCOUNT}.web")].attributes;
    assert!(web["uniqueId"].is_string(), "{web}");
    let web_email = web["email"].as_str().unwrap().to_owned();
    assert!(
        web_email.ends_with(&format!("@{project}.iam.gserviceaccount.com")),
        "{web}"
    );
    let web_member = format!("serviceAccount:{web_email}");
    let writers = on_project.members(&sandbox, "roles/logging.logWriter");
    assert_eq!(
        writers.len(),
        4,
        "three accounts and the stranger: {writers:?}"
    );
    assert!(writers.contains(&STRANGER.to_owned()) && writers.contains(&web_member));
    assert_eq!(on_project.conditional(&sandbox), vec![conditional.clone()]);

    // Strangers' grants on the job account and on a secret, too.
    let job_account = attr(
        &desired,
        &format!("{ACCOUNT_MEMBER}.scheduler_runs_jobs"),
        "serviceAccount",
    );
    let on_account = PolicyOf::account(&job_account);
    on_account.grant(
        &sandbox,
        json!({"role": "roles/iam.serviceAccountUser", "members": [STRANGER]}),
    );
    let secret_member = desired
        .iter()
        .find(|i| i.type_name == SECRET_MEMBER)
        .unwrap();
    let on_secret = PolicyOf::secret(secret_member.attributes["secret"].as_str().unwrap());
    on_secret.grant(
        &sandbox,
        json!({"role": "roles/secretmanager.secretAccessor", "members": [STRANGER]}),
    );
    assert_eq!(
        on_account
            .members(&sandbox, "roles/iam.serviceAccountUser")
            .len(),
        2
    );
    // The policies changed, weir's members did not: still nothing to do.
    assert!(!engine.plan(&desired).has_changes());

    // A display name changes in place; a role changes by a replacement.
    let mut edited = desired.clone();
    for i in &mut edited {
        if i.address == format!("{SERVICE_ACCOUNT}.web") {
            i.attributes["displayName"] = json!("Mage web server, renamed");
        }
        if i.address == format!("{PROJECT_MEMBER}.web_logging_logwriter") {
            i.attributes["role"] = json!("roles/logging.viewer");
        }
    }
    let update = engine.plan(&edited);
    assert_eq!(
        actions(&update),
        vec![
            (
                format!("{PROJECT_MEMBER}.web_logging_logwriter"),
                Action::Replace
            ),
            (format!("{SERVICE_ACCOUNT}.web"), Action::Update),
        ]
    );
    let outcome = engine.apply(&update);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(
        !engine.plan(&edited).has_changes(),
        "{:?}",
        actions(&engine.plan(&edited))
    );
    assert_eq!(
        on_project.members(&sandbox, "roles/logging.viewer"),
        vec![web_member.clone()]
    );
    let writers = on_project.members(&sandbox, "roles/logging.logWriter");
    assert!(
        !writers.contains(&web_member) && writers.contains(&STRANGER.to_owned()),
        "{writers:?}"
    );
    let (_, live) = call(
        &sandbox,
        IAM,
        "GET",
        &format!("/v1/projects/{project}/serviceAccounts/{web_email}"),
        None,
    );
    assert_eq!(live["displayName"], json!("Mage web server, renamed"));

    // The members go, the accounts and secrets stay: only weir's members leave the policies.
    let kept: Vec<ResourceInstance> = edited
        .iter()
        .filter(|i| matches!(i.type_name.as_str(), SERVICE_ACCOUNT | SECRET))
        .cloned()
        .collect();
    let remove = engine.plan(&kept);
    let removed = actions(&remove);
    assert!(
        removed.iter().all(|(_, a)| *a == Action::Delete),
        "{removed:?}"
    );
    assert_eq!(removed.len(), edited.len() - kept.len(), "{removed:?}");
    let outcome = engine.apply(&remove);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!engine.plan(&kept).has_changes());
    for (policy, role) in [
        (&on_project, "roles/logging.logWriter"),
        (&on_account, "roles/iam.serviceAccountUser"),
        (&on_secret, "roles/secretmanager.secretAccessor"),
    ] {
        assert_eq!(
            policy.members(&sandbox, role),
            vec![STRANGER.to_owned()],
            "{}",
            policy.name
        );
    }
    for role in [
        "roles/cloudsql.client",
        "roles/run.developer",
        "roles/logging.viewer",
    ] {
        assert!(on_project.members(&sandbox, role).is_empty(), "{role}");
    }
    assert_eq!(on_project.conditional(&sandbox), vec![conditional]);
    assert_eq!(
        on_project.members(&sandbox, "roles/owner"),
        vec!["user:sandbox-owner@example.com".to_owned()]
    );

    // Then everything.
    let outcome = engine.apply(&engine.plan(&[]));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(engine.state().resources.is_empty());
    let (status, _) = call(
        &sandbox,
        IAM,
        "GET",
        &format!("/v1/projects/{project}/serviceAccounts/{web_email}"),
        None,
    );
    assert_eq!(status, 404);

    drop(sandbox);
    let exchanges = record::read(&file).unwrap();
    for (host, method, tail) in [
        (IAM, "POST", "serviceAccounts"),
        (IAM, "PATCH", ""),
        (IAM, "DELETE", ""),
        (IAM, "POST", ":setIamPolicy"),
        (RM, "POST", ":getIamPolicy"),
        (RM, "POST", ":setIamPolicy"),
        (SM, "GET", ":getIamPolicy"),
        (SM, "POST", ":setIamPolicy"),
    ] {
        assert!(
            exchanges.iter().any(|e| e.service == host
                && e.method == method
                && e.path.ends_with(tail)
                && e.status == 200),
            "no {method} …{tail} to {host}"
        );
    }
    assert_record_valid(&file);
}

#[test]
fn members_of_one_policy_written_at_once_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("record.jsonl");
    // Each call takes a while, so that the members' read-modify-writes overlap.
    let sandbox = start(
        Some(file.clone()),
        Behaviour {
            latency: Duration::from_millis(40),
            ..Behaviour::default()
        },
    );
    let dir = quickstart(tmp.path(), |t| t);
    let (accounts, config) = identities(&dir, &sandbox.url(), &[SERVICE_ACCOUNT]);
    let project = config.project.clone().unwrap();
    let setup = Engine::new(config.clone());
    assert!(setup.apply(&setup.plan(&accounts)).success());

    // The seven project members alone, with nothing to wait for: all at once.
    let (members, _) = identities(&dir, &sandbox.url(), &[PROJECT_MEMBER]);
    assert_eq!(members.len(), 7);
    assert!(members.iter().all(|m| m.dependencies.is_empty()));
    let engine = Engine::new(config);
    let outcome = engine.apply_with(&engine.plan(&members), &ApplyOptions::new(8));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!engine.plan(&members).has_changes());

    let on_project = PolicyOf::project(&project);
    let mut granted = 0;
    for m in &members {
        let role = m.attributes["role"].as_str().unwrap();
        let member = m.attributes["member"].as_str().unwrap().to_owned();
        assert!(
            on_project.members(&sandbox, role).contains(&member),
            "{} was lost",
            m.address
        );
        granted += 1;
    }
    assert_eq!(granted, 7);
    let stale = count(&file, |e| {
        e.path.ends_with(":setIamPolicy") && e.status == 409
    });
    assert!(
        stale > 0,
        "the writes never overlapped: the test proves nothing"
    );

    // And all at once again, removed.
    let outcome = engine.apply_with(&engine.plan(&[]), &ApplyOptions::new(8));
    assert!(outcome.success(), "{:?}", outcome.failed);
    let policy = on_project.get(&sandbox);
    assert_eq!(
        policy["bindings"],
        json!([{"role": "roles/owner", "members": ["user:sandbox-owner@example.com"]}])
    );
    drop(sandbox);
    assert_record_valid(&file);
}

#[test]
fn a_service_account_left_by_a_lost_state_is_adopted_and_a_strangers_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(None, Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = identities(&dir, &sandbox.url(), &[SERVICE_ACCOUNT]);
    let project = config.project.clone().unwrap();
    let first = Engine::new(config.clone());
    assert!(first.apply(&first.plan(&desired)).success());
    let unique =
        first.state().resources[&format!("{SERVICE_ACCOUNT}.web")].attributes["uniqueId"].clone();

    // The state is lost: the accounts weir made for this deployment are adopted.
    let second = Engine::new(config.clone());
    let outcome = second.apply(&second.plan(&desired));
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert_eq!(
        second.state().resources[&format!("{SERVICE_ACCOUNT}.web")].attributes["uniqueId"],
        unique,
        "the same account, adopted"
    );
    assert!(!second.plan(&desired).has_changes());

    // An account of the same id made by hand, or by weir for another deployment, is refused
    // and left as it is.
    let web_id = attr(&desired, &format!("{SERVICE_ACCOUNT}.web"), "accountId");
    let made_by_hand = format!("{}-x", &web_id[..web_id.len().min(20)]);
    let (status, answer) = call(
        &sandbox,
        IAM,
        "POST",
        &format!("/v1/projects/{project}/serviceAccounts"),
        Some(json!({"accountId": made_by_hand, "serviceAccount": {"displayName": "mine"}})),
    );
    assert_eq!(status, 200, "{answer}");
    let mut by_hand = desired.iter().find(|i| i.name == "web").unwrap().clone();
    by_hand.attributes["accountId"] = json!(made_by_hand);
    let mut other_deployment = desired.iter().find(|i| i.name == "sched").unwrap().clone();
    other_deployment.attributes["description"] =
        json!("managed-by=weir weir-deployment=someone-else");
    let third = Engine::new(config);
    let outcome = third.apply(&third.plan(&[by_hand, other_deployment]));
    assert!(!outcome.success());
    assert_eq!(outcome.failed.len(), 2, "{:?}", outcome.failed);
    for (_, _, message) in &outcome.failed {
        assert!(
            message.contains("already exists and weir did not create it"),
            "{message}"
        );
    }
    let account = |id: &str| {
        let path = format!(
            "/v1/projects/{project}/serviceAccounts/{id}@{project}.iam.gserviceaccount.com"
        );
        call(&sandbox, IAM, "GET", &path, None).1
    };
    assert_eq!(
        account(&made_by_hand)["displayName"],
        json!("mine"),
        "the stranger's account is untouched"
    );
    let sched = attr(&desired, &format!("{SERVICE_ACCOUNT}.sched"), "accountId");
    assert_eq!(
        account(&sched)["description"],
        desired
            .iter()
            .find(|i| i.name == "sched")
            .unwrap()
            .attributes["description"],
        "the other deployment's account is untouched"
    );
}

#[test]
fn with_a_fifth_of_calls_throttled_or_failing_the_accounts_and_members_still_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = quickstart(tmp.path(), |t| t);
    let types = [SERVICE_ACCOUNT, PROJECT_MEMBER, ACCOUNT_MEMBER];
    for seed in 1..=2 {
        let file = tmp.path().join(format!("record-{seed}.jsonl"));
        let sandbox = start(
            Some(file.clone()),
            Behaviour {
                latency: Duration::from_millis(5),
                unavailable_rate: 0.2,
                seed,
                ..Behaviour::default()
            },
        );
        let (desired, config) = identities(&dir, &sandbox.url(), &types);
        let engine = Engine::new(config);
        let outcome = engine.apply_with(&engine.plan(&desired), &ApplyOptions::new(8));
        assert!(outcome.success(), "seed {seed}: {:?}", outcome.failed);
        assert!(!engine.plan(&desired).has_changes(), "seed {seed}");
        let outcome = engine.apply_with(&engine.plan(&[]), &ApplyOptions::new(8));
        assert!(outcome.success(), "seed {seed}: {:?}", outcome.failed);
        assert!(engine.state().resources.is_empty(), "seed {seed}");
        drop(sandbox);
        assert!(
            count(&file, is_fault) > 0,
            "seed {seed}: no fault was injected"
        );
        assert_record_valid(&file);
    }
}

#[test]
fn a_new_account_id_replaces_the_account_and_the_old_one_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start(None, Behaviour::default());
    let dir = quickstart(tmp.path(), |t| t);
    let (desired, config) = identities(&dir, &sandbox.url(), &[SERVICE_ACCOUNT]);
    let project = config.project.clone().unwrap();
    let engine = Engine::new(config);
    assert!(engine.apply(&engine.plan(&desired)).success());
    let address = format!("{SERVICE_ACCOUNT}.job");
    let old = engine.state().resources[&address].attributes.clone();

    let mut renamed = desired.clone();
    for i in &mut renamed {
        if i.address == address {
            i.attributes["accountId"] = json!("mage-renamed-job");
        }
    }
    let replace = engine.plan(&renamed);
    assert_eq!(actions(&replace), vec![(address.clone(), Action::Replace)]);
    let outcome = engine.apply(&replace);
    assert!(outcome.success(), "{:?}", outcome.failed);
    assert!(!engine.plan(&renamed).has_changes());
    let new = engine.state().resources[&address].attributes.clone();
    assert_eq!(
        new["email"],
        json!(format!(
            "mage-renamed-job@{project}.iam.gserviceaccount.com"
        ))
    );
    assert_ne!(new["uniqueId"], old["uniqueId"]);
    let path = |email: &Value| {
        format!(
            "/v1/projects/{project}/serviceAccounts/{}",
            email.as_str().unwrap()
        )
    };
    assert_eq!(
        call(&sandbox, IAM, "GET", &path(&old["email"]), None).0,
        404
    );
    assert_eq!(
        call(&sandbox, IAM, "GET", &path(&new["email"]), None).0,
        200
    );
}
