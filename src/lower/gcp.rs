//! Lowering of a `gcp` deployment to the Google provider's resources: the only place that
//! knows which Google resources a deployment needs.
//!
//! - the web server: a Cloud Run v2 service (`INSTANCE_TYPE=web_server`), request-based
//!   billing so that it scales to zero;
//! - one Cloud Run v2 job per `resource_profile`;
//! - the scheduler: a Compute Engine VM on Container-Optimized OS whose startup script runs
//!   the Mage image (`INSTANCE_TYPE=scheduler`) next to the Cloud SQL Auth Proxy;
//! - Mage's database: a Cloud SQL for PostgreSQL instance, its database and user, the
//!   password generated once by the provider and kept in Secret Manager;
//! - the bucket, with uniform bucket-level access and public access prevention;
//! - the APIs to enable, one service account per workload and the IAM bindings each needs.
//!
//! Attributes are the REST bodies of the APIs (see `providers/google`). Google names derive
//! from the deployment (`mage-<deployment>-…`), so that a re-run finds what it created. Every
//! secret a container needs is in Secret Manager and reaches it as a `secretKeyRef` (the VM's
//! startup script reads it from Secret Manager at boot): never as a plain value.

use super::ResourceInstance;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Configuration, Deployment, OutputSource, ResourceProfile};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use weir_provider_google::types::*;

const PROVIDER: &str = weir_provider_google::NAME;
/// The port Mage's web server listens on.
const MAGE_PORT: u16 = 6789;
/// Where the Cloud SQL socket is mounted in every container.
const CLOUDSQL_DIR: &str = "/cloudsql";
/// The Mage database and its user.
const DB_NAME: &str = "mage";
const DB_USER: &str = "mage";
/// The boot image of the scheduler VM: Container-Optimized OS, which runs containers.
const SCHEDULER_IMAGE: &str = "projects/cos-cloud/global/images/family/cos-stable";
/// The Cloud SQL Auth Proxy that gives the scheduler VM the same socket Cloud Run mounts.
const SQL_PROXY_IMAGE: &str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1";
/// Where a deployment's code releases are in its bucket.
const RELEASE_PREFIX: &str = "code";
/// The program that fetches the pointed release into the container before Mage starts.
pub const FETCH_RELEASE: &str = include_str!("fetch_release.py");
/// A container's command: the fetch program fetches the release, then runs the image's own
/// entry point with the arguments the container was given (a job run's `mage run …`; none for
/// the web server and the scheduler, where `/app/run_app.sh` starts Mage).
const FETCH_THEN_RUN: &str = r#"exec python3 -c "$WEIR_RELEASE_FETCH" "$@""#;
/// The command of every container (`/bin/sh -c FETCH_THEN_RUN weir [args…]`).
const CONTAINER_COMMAND: [&str; 4] = ["/bin/sh", "-c", FETCH_THEN_RUN, "weir"];
/// The instance metadata item that describes the container the scheduler VM's startup script
/// runs, in Cloud Run's shapes (image, command, env, volumes): the startup script is written
/// from it, and the sandbox starts it as a local process.
pub const SCHEDULER_CONTAINER_ITEM: &str = "weir-container";

/// How often the scheduler VM reads the release pointer, in seconds.
const RELEASE_POLL_SECS: u32 = 60;
/// The index of `WEIR_RELEASE_BUCKET` in a container's `env` (see `Lowering::env`).
const RELEASE_BUCKET_ENV: &str = "4";
/// The APIs a deployment uses.
const APIS: &[&str] = &[
    "compute.googleapis.com",
    "iam.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
];

/// What a deployment's workloads run as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Web,
    Scheduler,
    Job,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Web, Workload::Scheduler, Workload::Job];

    fn suffix(self) -> &'static str {
        match self {
            Workload::Web => "web",
            Workload::Scheduler => "sched",
            Workload::Job => "job",
        }
    }
}

/// A secret a container needs: its Secret Manager id and the environment variable it fills.
struct ContainerSecret {
    secret_id: String,
    env: String,
}

struct Lowering<'a> {
    d: &'a Deployment,
    project: String,
    region: String,
    /// `mage-<deployment>`: the start of every Google name.
    prefix: String,
    labels: BTreeMap<String, String>,
    out: Vec<ResourceInstance>,
    /// Secrets every container gets.
    container_secrets: Vec<ContainerSecret>,
    diags: Diagnostics,
}

pub(super) fn lower_gcp(model: &Configuration) -> Result<Vec<ResourceInstance>, Diagnostics> {
    let d = &model.deployment;
    let mut diags = Diagnostics::new();
    let required = |what: &str, v: &Option<String>, diags: &mut Diagnostics| {
        v.clone().filter(|s| !s.is_empty()).or_else(|| {
            diags.push(
                Diagnostic::error(format!(
                    "deployment `{}` has `target = \"gcp\"` but no `{what}`",
                    d.name
                ))
                .help(format!("add `{what} = \"...\"` to the deployment")),
            );
            None
        })
    };
    let project = required("project", &d.project, &mut diags);
    let region = required("region", &d.region, &mut diags);
    let (Some(project), Some(region)) = (project, region) else {
        return Err(diags);
    };
    let mut labels = d.labels.clone();
    labels.insert("managed-by".into(), "weir".into());
    labels.insert("weir-deployment".into(), google_name(&d.name));
    let mut l = Lowering {
        d,
        project,
        region,
        prefix: format!("mage-{}", google_name(&d.name)),
        labels,
        out: Vec::new(),
        container_secrets: Vec::new(),
        diags,
    };
    l.check_names(model);
    if l.diags.has_errors() {
        return Err(l.diags);
    }
    l.apis();
    l.service_accounts();
    l.bucket();
    l.release(model)?;
    l.database();
    l.notification_secrets(model);
    l.webserver(model);
    for p in &model.profiles {
        l.job(p);
    }
    l.scheduler();
    Ok(l.out)
}

/// Where the deployment's values known only after apply are: `webserver_url`,
/// `scheduler_ip` and `bucket` of `deployment.<name>`.
pub(super) fn output_source(d: &Deployment, attr: &str) -> Option<OutputSource> {
    let (address, path): (String, &[&str]) = match attr {
        "webserver_url" => (format!("{CLOUD_RUN_SERVICE}.webserver"), &["uri"]),
        "scheduler_ip" => (
            format!("{COMPUTE_INSTANCE}.scheduler"),
            &["networkInterfaces", "0", "accessConfigs", "0", "natIP"],
        ),
        "bucket" if d.storage.is_some() => (format!("{STORAGE_BUCKET}.{}", d.name), &["name"]),
        _ => return None,
    };
    Some(OutputSource {
        address,
        path: path.iter().map(|s| s.to_string()).collect(),
    })
}

/// The full name of a profile's Cloud Run job
/// (`projects/<project>/locations/<region>/jobs/<name>`), which the runtime runs.
pub(super) fn job_path(d: &Deployment, p: &ResourceProfile) -> String {
    format!(
        "projects/{}/locations/{}/jobs/{}",
        d.project.as_deref().unwrap_or_default(),
        p.region,
        job_name(d, p)
    )
}

/// A profile's Cloud Run job name: `mage-<deployment>-<profile>`.
fn job_name(d: &Deployment, p: &ResourceProfile) -> String {
    format!("mage-{}-{}", google_name(&d.name), google_name(&p.name))
}

/// A memory size as Cloud Run spells it (`2Gi`, `1536Mi`).
fn memory(mib: u64) -> String {
    let text = format!("{mib}Mi");
    weir_provider_google::memory_quantity(&text).unwrap_or(text)
}

/// A name as Google takes it: lower case, `-` for `_`.
fn google_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

impl Lowering<'_> {
    fn check_names(&mut self, model: &Configuration) {
        // Google shows resource names, labels and request bodies to anyone who can view the
        // project: only the bucket's name can be kept out of weir's output (not out of Google).
        for (attr, _) in self.d.sensitive.iter() {
            if attr != "storage.bucket" {
                self.diags.push(
                    Diagnostic::error(format!(
                        "deployment `{}`: `{attr}` comes from a sensitive value, but a gcp deployment writes it into resource names, labels or settings that anyone who can view the project reads",
                        self.d.name
                    ))
                    .help(format!("give `{attr}` a value that is not sensitive")),
                );
            }
        }
        // Service account ids are the tightest: 6 to 30 characters.
        let longest = format!("{}-{}", self.prefix, Workload::Scheduler.suffix());
        if longest.len() > 30 {
            self.diags.push(
                Diagnostic::error(format!(
                    "deployment `{}`: its Google service account `{longest}` would be longer than the 30 characters Google allows",
                    self.d.name
                ))
                .help("give the deployment a name of at most 15 characters"),
            );
        }
        let mut jobs: BTreeMap<String, &str> = BTreeMap::new();
        for p in &model.profiles {
            let job = self.job_name(p);
            if job.len() > 49 {
                self.diags.push(
                    Diagnostic::error(format!(
                        "resource_profile `{}`: its Cloud Run job `{job}` would be longer than 49 characters",
                        p.name
                    ))
                    .help("give the profile (or the deployment) a shorter name"),
                );
            }
            if let Some(other) = jobs.insert(job.clone(), &p.name) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "resource_profiles `{other}` and `{}` would both be the Cloud Run job `{job}`",
                        p.name
                    ))
                    .help("Google names have no `_`: rename one of them"),
                );
            }
        }
    }

    fn job_name(&self, p: &ResourceProfile) -> String {
        job_name(self.d, p)
    }

    fn sa_address(w: Workload) -> String {
        format!("{SERVICE_ACCOUNT}.{}", w.suffix())
    }

    fn sa_email(&self, w: Workload) -> String {
        format!(
            "{}-{}@{}.iam.gserviceaccount.com",
            self.prefix,
            w.suffix(),
            self.project
        )
    }

    fn labels(&self) -> Value {
        json!(self.labels)
    }

    fn add(&mut self, instance: ResourceInstance) {
        let from = format!("deployment.{}", self.d.name);
        self.out.push(instance.lowered_from(&from));
    }

    fn api_address(api: &str) -> String {
        format!(
            "{PROJECT_SERVICE}.{}",
            api.trim_end_matches(".googleapis.com")
        )
    }

    fn apis(&mut self) {
        for api in APIS {
            let instance = ResourceInstance::new(
                PROJECT_SERVICE,
                api.trim_end_matches(".googleapis.com"),
                PROVIDER,
                json!({"project": self.project, "service": api}),
            );
            self.add(instance);
        }
    }

    fn service_accounts(&mut self) {
        for w in Workload::ALL {
            let display = match w {
                Workload::Web => "Mage web server",
                Workload::Scheduler => "Mage scheduler",
                Workload::Job => "Mage resource profile jobs",
            };
            let sa = ResourceInstance::new(
                SERVICE_ACCOUNT,
                w.suffix(),
                PROVIDER,
                json!({
                    "project": self.project,
                    "accountId": format!("{}-{}", self.prefix, w.suffix()),
                    "displayName": format!("{display} ({})", self.d.name),
                    // A service account has no labels: these words mark it as weir's, so
                    // that a run after a lost state adopts it and never takes a stranger's.
                    "description": format!(
                        "managed-by=weir weir-deployment={}",
                        self.labels["weir-deployment"]
                    ),
                }),
            )
            .depends_on(&Self::api_address("iam.googleapis.com"));
            self.add(sa);
            // Every workload talks to the database and writes logs.
            for role in ["roles/cloudsql.client", "roles/logging.logWriter"] {
                self.project_member(w, role);
            }
        }
        // The scheduler starts the profiles' jobs with per-run arguments, which takes running
        // with overrides, and acting as the jobs' service account.
        self.project_member(Workload::Scheduler, "roles/run.developer");
        let member = format!("serviceAccount:{}", self.sa_email(Workload::Scheduler));
        let act_as = ResourceInstance::new(
            SERVICE_ACCOUNT_IAM_MEMBER,
            "scheduler_runs_jobs",
            PROVIDER,
            json!({
                "serviceAccount": format!("projects/{}/serviceAccounts/{}", self.project, self.sa_email(Workload::Job)),
                "role": "roles/iam.serviceAccountUser",
                "member": member,
            }),
        )
        .depends_on(&Self::sa_address(Workload::Job))
        .depends_on(&Self::sa_address(Workload::Scheduler));
        self.add(act_as);
    }

    fn project_member(&mut self, w: Workload, role: &str) {
        let short = role
            .trim_start_matches("roles/")
            .replace('.', "_")
            .to_ascii_lowercase();
        let instance = ResourceInstance::new(
            PROJECT_IAM_MEMBER,
            &format!("{}_{short}", w.suffix()),
            PROVIDER,
            json!({
                "project": self.project,
                "role": role,
                "member": format!("serviceAccount:{}", self.sa_email(w)),
            }),
        )
        .depends_on(&Self::sa_address(w));
        self.add(instance);
    }

    fn bucket(&mut self) {
        let Some(storage) = &self.d.storage else {
            return;
        };
        let mut bucket = ResourceInstance::new(
            STORAGE_BUCKET,
            &self.d.name,
            PROVIDER,
            json!({
                "project": self.project,
                "name": storage.bucket,
                "location": storage.location.to_ascii_uppercase(),
                "storageClass": "STANDARD",
                "iamConfiguration": {
                    "uniformBucketLevelAccess": {"enabled": true},
                    "publicAccessPrevention": "enforced",
                },
                "labels": self.labels(),
            }),
        )
        .depends_on(&Self::api_address("storage.googleapis.com"));
        bucket.prevent_destroy = self.d.prevent_destroy;
        if self.d.sensitive.has("storage.bucket") {
            bucket = bucket.sensitive(&["name"]);
        }
        let bucket_address = bucket.address.clone();
        let bucket_name = storage.bucket.clone();
        self.add(bucket);
        for w in Workload::ALL {
            let mut member = ResourceInstance::new(
                STORAGE_BUCKET_IAM_MEMBER,
                w.suffix(),
                PROVIDER,
                json!({
                    "bucket": bucket_name,
                    "role": "roles/storage.objectUser",
                    "member": format!("serviceAccount:{}", self.sa_email(w)),
                }),
            )
            .depends_on(&bucket_address)
            .depends_on(&Self::sa_address(w));
            if self.d.sensitive.has("storage.bucket") {
                member = member.sensitive(&["bucket"]);
            }
            self.add(member);
        }
    }

    /// A secret and its version; `version` is the version's own attributes (`payload`,
    /// `generate` or `template`). Returns the secret's address.
    fn secret(&mut self, name: &str, secret_id: &str, version: Value) -> String {
        let secret = ResourceInstance::new(
            SECRET,
            name,
            PROVIDER,
            json!({
                "project": self.project,
                "secretId": secret_id,
                "replication": {"automatic": {}},
                "labels": self.labels(),
            }),
        )
        .depends_on(&Self::api_address("secretmanager.googleapis.com"));
        let secret_address = secret.address.clone();
        self.add(secret);
        let mut attrs = Map::new();
        attrs.insert(
            "secret".into(),
            json!(format!("projects/{}/secrets/{secret_id}", self.project)),
        );
        if let Value::Object(v) = version {
            attrs.extend(v);
        }
        let version = ResourceInstance::new(SECRET_VERSION, name, PROVIDER, Value::Object(attrs))
            .depends_on(&secret_address)
            .sensitive(&["payload", "data"]);
        self.add(version);
        secret_address
    }

    /// Lets every workload read the secret `secret_id`.
    fn secret_readers(&mut self, name: &str, secret_id: &str, secret_address: &str) {
        for w in Workload::ALL {
            let member = ResourceInstance::new(
                SECRET_IAM_MEMBER,
                &format!("{name}_{}", w.suffix()),
                PROVIDER,
                json!({
                    "secret": format!("projects/{}/secrets/{secret_id}", self.project),
                    "role": "roles/secretmanager.secretAccessor",
                    "member": format!("serviceAccount:{}", self.sa_email(w)),
                }),
            )
            .depends_on(secret_address)
            .depends_on(&Self::sa_address(w));
            self.add(member);
        }
    }

    /// A secret every container gets as the environment variable `env`.
    fn container_secret(&mut self, name: &str, env: &str, version: Value) {
        let secret_id = format!("{}-{}", self.prefix, google_name(name));
        let address = self.secret(name, &secret_id, version);
        self.secret_readers(name, &secret_id, &address);
        self.container_secrets.push(ContainerSecret {
            secret_id,
            env: env.to_string(),
        });
    }

    fn sql_connection(&self) -> String {
        format!("{}:{}:{}-db", self.project, self.region, self.prefix)
    }

    /// The code release: the Mage project exactly as the local target renders it (the same
    /// lowering, each file rendered by the Mage provider), as a manifest of hashes and the
    /// files' text, in the deployment's bucket (see `crate::release`).
    fn release(&mut self, model: &Configuration) -> Result<(), Diagnostics> {
        let Some(storage) = &self.d.storage else {
            return Ok(());
        };
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut secret_files = Vec::new();
        let mut release = ResourceInstance::new(
            crate::release::TYPE,
            &self.d.name,
            crate::release::PROVIDER_NAME,
            Value::Null,
        );
        let token: weir_provider_sdk::AttrPath = ["triggers", "*", "token"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for instance in super::mage::lower_local(model)? {
            let (path, bytes) =
                weir_provider_mage::render_file(&instance.type_name, &instance.attributes)
                    .map_err(|e| {
                        let mut diags = Diagnostics::new();
                        diags.push(Diagnostic::error(format!(
                            "{}: cannot render its Mage file for the code release: {e}",
                            instance.address
                        )));
                        diags
                    })?;
            // Rendered text (YAML, code): a release holds text only.
            let text = String::from_utf8(bytes).map_err(|_| {
                let mut diags = Diagnostics::new();
                diags.push(Diagnostic::error(format!(
                    "{}: its rendered Mage file {path} is not UTF-8 text, which a code release must be",
                    instance.address
                )));
                diags
            })?;
            // A file rendered from a secret is secret as a whole (an API token is never
            // rendered into a release: see `render_file`).
            if instance.sensitive_paths.iter().any(|p| *p != token) {
                secret_files.push(path.clone());
            }
            for from in &instance.lowered_from {
                release = release.lowered_from(from);
            }
            files.insert(path.clone(), text);
        }
        let bytes = files
            .iter()
            .map(|(path, text)| (path.clone(), text.as_bytes().to_vec()))
            .collect();
        release.attributes = json!({
            "bucket": storage.bucket,
            "prefix": RELEASE_PREFIX,
            "keep_releases": storage.keep_releases,
            "files": crate::release::entries(&bytes),
            "content": files,
        });
        release = release.depends_on(&format!("{STORAGE_BUCKET}.{}", self.d.name));
        if self.d.sensitive.has("storage.bucket") {
            release = release.sensitive(&["bucket"]);
        }
        for path in secret_files {
            release = release.sensitive(&["content", &path]);
        }
        self.add(release);
        Ok(())
    }

    /// The bucket the containers fetch the release from.
    fn release_bucket(&self) -> String {
        self.d
            .storage
            .as_ref()
            .map(|s| s.bucket.clone())
            .unwrap_or_default()
    }

    fn database(&mut self) {
        let db = &self.d.database;
        let instance_name = format!("{}-db", self.prefix);
        let mut instance = ResourceInstance::new(
            SQL_INSTANCE,
            &self.d.name,
            PROVIDER,
            json!({
                "project": self.project,
                "name": instance_name,
                "region": self.region,
                "databaseVersion": db.version,
                "settings": {
                    // Shared-core tiers exist only in the ENTERPRISE edition, which recent
                    // PostgreSQL versions no longer default to.
                    "edition": "ENTERPRISE",
                    "tier": db.tier,
                    "availabilityType": "ZONAL",
                    "dataDiskType": "PD_HDD",
                    "dataDiskSizeGb": db.disk_size_gb.to_string(),
                    "storageAutoResize": false,
                    "ipConfiguration": {"ipv4Enabled": true},
                    "backupConfiguration": {"enabled": true},
                    "deletionProtectionEnabled": self.d.prevent_destroy,
                    "userLabels": self.labels(),
                },
            }),
        )
        .depends_on(&Self::api_address("sqladmin.googleapis.com"));
        instance.prevent_destroy = self.d.prevent_destroy;
        let instance_address = instance.address.clone();
        self.add(instance);
        let database = ResourceInstance::new(
            SQL_DATABASE,
            DB_NAME,
            PROVIDER,
            json!({"project": self.project, "instance": instance_name, "name": DB_NAME}),
        )
        .depends_on(&instance_address);
        self.add(database);
        // The password: generated once by the provider, kept only in Secret Manager. The
        // user takes it from there; so does the connection URL the containers get.
        let password_id = format!("{}-db-password", self.prefix);
        self.secret(
            "db_password",
            &password_id,
            json!({"generate": {"length": 32}}),
        );
        let password_secret = format!("projects/{}/secrets/{password_id}", self.project);
        let user = ResourceInstance::new(
            SQL_USER,
            DB_USER,
            PROVIDER,
            json!({
                "project": self.project,
                "instance": instance_name,
                "name": DB_USER,
                "passwordSecret": password_secret,
            }),
        )
        .depends_on(&instance_address)
        .depends_on(&format!("{SECRET_VERSION}.db_password"));
        self.add(user);
        let url = format!(
            "postgresql://{DB_USER}:{{password}}@/{DB_NAME}?host={CLOUDSQL_DIR}/{}",
            self.sql_connection()
        );
        self.container_secret(
            "db_url",
            "MAGE_DATABASE_CONNECTION_URL",
            json!({"template": url, "templateSecrets": {"password": password_secret}}),
        );
        // The URL is built from the password at apply.
        if let Some(v) = self
            .out
            .iter_mut()
            .find(|i| i.address == format!("{SECRET_VERSION}.db_url"))
        {
            v.dependencies.push(format!("{SECRET_VERSION}.db_password"));
        }
    }

    /// Each notification's channel settings (webhooks, keys) as a secret, to the containers
    /// as `WEIR_NOTIFICATION_<NAME>` (JSON).
    fn notification_secrets(&mut self, model: &Configuration) {
        for n in &model.notifications {
            let settings = serde_json::to_string(&n.settings).unwrap_or_default();
            let name = format!("notification_{}", n.name);
            let env = format!("WEIR_NOTIFICATION_{}", n.name.to_ascii_uppercase());
            self.container_secret(&name, &env, json!({"payload": {"data": settings}}));
            let from = format!("notification.{}", n.name);
            let readers = format!("{name}_");
            for i in self
                .out
                .iter_mut()
                .filter(|i| i.name == name || i.name.starts_with(&readers))
            {
                i.lowered_from.push(from.clone());
            }
        }
    }

    /// The environment of every container: `INSTANCE_TYPE`, the project, and every secret as
    /// a `secretKeyRef`.
    fn env(&self, instance_type: &str, extra: &[(String, Value)]) -> Vec<Value> {
        let mut env = vec![
            json!({"name": "INSTANCE_TYPE", "value": instance_type}),
            json!({"name": "GCP_PROJECT_ID", "value": self.project}),
            json!({"name": "GCP_REGION", "value": self.region}),
            json!({"name": "ULIMIT_NO_FILE", "value": "16384"}),
            json!({"name": "WEIR_RELEASE_BUCKET", "value": self.release_bucket()}),
            json!({"name": "WEIR_RELEASE_PREFIX", "value": RELEASE_PREFIX}),
            json!({"name": "WEIR_RELEASE_FETCH", "value": FETCH_RELEASE}),
        ];
        // Mage's processes load the runtime shipped in the release (`docs/runtime.md`).
        if self.d.runtime.enabled {
            env.push(json!({"name": "WEIR_RUNTIME", "value": "1"}));
        }
        for s in &self.container_secrets {
            env.push(json!({"name": s.env, "valueSource": {"secretKeyRef": {"secret": s.secret_id, "version": "latest"}}}));
        }
        env.extend(extra.iter().map(|(name, v)| {
            let mut e = json!({"name": name});
            if let (Value::Object(e), Value::Object(v)) = (&mut e, v) {
                e.extend(v.clone());
            }
            e
        }));
        env
    }

    /// What every container depends on: the database, its URL and the secrets, the bucket,
    /// its service account's access.
    fn workload_dependencies(&self, w: Workload) -> Vec<String> {
        let mut deps = vec![
            format!("{SQL_INSTANCE}.{}", self.d.name),
            format!("{SQL_DATABASE}.{DB_NAME}"),
            format!("{SQL_USER}.{DB_USER}"),
            Self::sa_address(w),
        ];
        deps.extend(
            self.out
                .iter()
                .filter(|i| {
                    (i.type_name == SECRET_VERSION && i.name != "db_password")
                        // The code release is there before a container starts.
                        || i.type_name == crate::release::TYPE
                        || (matches!(
                            i.type_name.as_str(),
                            SECRET_IAM_MEMBER | STORAGE_BUCKET_IAM_MEMBER | PROJECT_IAM_MEMBER
                        ) && i.name.ends_with(w.suffix()))
                })
                .map(|i| i.address.clone()),
        );
        deps
    }

    fn cloudsql_volume(&self) -> (Value, Value) {
        (
            json!([{"name": "cloudsql", "cloudSqlInstance": {"instances": [self.sql_connection()]}}]),
            json!([{"name": "cloudsql", "mountPath": CLOUDSQL_DIR}]),
        )
    }

    fn webserver(&mut self, _model: &Configuration) {
        let w = &self.d.webserver;
        let (volumes, mounts) = self.cloudsql_volume();
        let mut service = ResourceInstance::new(
            CLOUD_RUN_SERVICE,
            "webserver",
            PROVIDER,
            json!({
                "project": self.project,
                "location": self.region,
                "name": format!("{}-web", self.prefix),
                "labels": self.labels(),
                "ingress": "INGRESS_TRAFFIC_ALL",
                // Mage asks for a login itself (REQUIRE_USER_AUTHENTICATION).
                "invokerIamDisabled": true,
                "template": {
                    "serviceAccount": self.sa_email(Workload::Web),
                    "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
                    "scaling": {"minInstanceCount": w.min_instances, "maxInstanceCount": w.max_instances},
                    "containers": [{
                        "name": "mage",
                        "image": self.d.image,
                        "command": CONTAINER_COMMAND,
                        "ports": [{"containerPort": MAGE_PORT}],
                        "resources": {
                            "limits": {"cpu": w.cpu.to_string(), "memory": memory(w.memory_mib)},
                            // Request-based billing: without it an idle instance is billed.
                            "cpuIdle": true,
                        },
                        "env": self.env("web_server", &[]),
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            }),
        )
        .depends_on(&Self::api_address("run.googleapis.com"));
        for dep in self.workload_dependencies(Workload::Web) {
            service = service.depends_on(&dep);
        }
        if self.d.sensitive.has("storage.bucket") {
            service = service.sensitive(&[
                "template",
                "containers",
                "0",
                "env",
                RELEASE_BUCKET_ENV,
                "value",
            ]);
        }
        self.add(service);
    }

    fn job(&mut self, p: &ResourceProfile) {
        let (volumes, mounts) = self.cloudsql_volume();
        // Sensitive env values go through Secret Manager like every other secret.
        let mut extra = Vec::new();
        let mut secret_versions = Vec::new();
        for (name, value) in &p.env {
            if p.env_sensitive {
                let key = format!("profile_{}_{}", p.name, name.to_ascii_lowercase());
                let secret_id = format!("{}-{}", self.prefix, google_name(&key));
                let address = self.secret(&key, &secret_id, json!({"payload": {"data": value}}));
                self.secret_readers(&key, &secret_id, &address);
                secret_versions.push(format!("{SECRET_VERSION}.{key}"));
                extra.push((name.clone(), json!({"valueSource": {"secretKeyRef": {"secret": secret_id, "version": "latest"}}})));
            } else {
                extra.push((name.clone(), json!({"value": value})));
            }
        }
        let mut job = ResourceInstance::new(
            CLOUD_RUN_JOB,
            &p.name,
            PROVIDER,
            json!({
                "project": self.project,
                "location": p.region,
                "name": self.job_name(p),
                "labels": self.labels(),
                "template": {
                    "taskCount": 1,
                    "template": {
                        "serviceAccount": self.sa_email(Workload::Job),
                        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
                        "timeout": format!("{}s", p.timeout_secs),
                        "maxRetries": p.max_retries,
                        "containers": [{
                            "name": "mage",
                            "image": self.d.image,
                            // The image's entry point runs its arguments (the scheduler gives
                            // each run the block to run), after the release is fetched.
                            "command": CONTAINER_COMMAND,
                            "resources": {"limits": {"cpu": p.cpu.to_string(), "memory": memory(p.memory_mib)}},
                            "env": self.env("job", &extra),
                            "volumeMounts": mounts,
                        }],
                        "volumes": volumes,
                    },
                },
            }),
        )
        .depends_on(&Self::api_address("run.googleapis.com"))
        .lowered_from(&format!("resource_profile.{}", p.name));
        if self.d.sensitive.has("storage.bucket") {
            job = job.sensitive(&[
                "template",
                "template",
                "containers",
                "0",
                "env",
                RELEASE_BUCKET_ENV,
                "value",
            ]);
        }
        for dep in self
            .workload_dependencies(Workload::Job)
            .into_iter()
            .chain(secret_versions)
        {
            job = job.depends_on(&dep);
        }
        self.add(job);
    }

    /// The container the scheduler VM runs: Mage (`INSTANCE_TYPE=scheduler`) from the
    /// deployment's image, with the Cloud SQL socket, in Cloud Run's shapes.
    fn scheduler_container(&self) -> Value {
        let (volumes, mounts) = self.cloudsql_volume();
        json!({
            "image": self.d.image,
            "command": CONTAINER_COMMAND,
            "env": self.env("scheduler", &[]),
            "volumeMounts": mounts,
            "volumes": volumes,
        })
    }

    fn scheduler(&mut self) {
        let container = self.scheduler_container();
        let s = &self.d.scheduler;
        let zone = s
            .zone
            .clone()
            .unwrap_or_else(|| format!("{}-a", self.region));
        let mut instance = ResourceInstance::new(
            COMPUTE_INSTANCE,
            "scheduler",
            PROVIDER,
            json!({
                "project": self.project,
                "zone": zone,
                "name": format!("{}-scheduler", self.prefix),
                "machineType": format!("zones/{zone}/machineTypes/{}", s.machine_type),
                "labels": self.labels(),
                "disks": [{
                    "boot": true,
                    "autoDelete": true,
                    "initializeParams": {
                        "sourceImage": SCHEDULER_IMAGE,
                        "diskSizeGb": s.disk_size_gb.to_string(),
                        // The free tier covers standard disks only.
                        "diskType": format!("zones/{zone}/diskTypes/pd-standard"),
                    },
                }],
                "networkInterfaces": [{
                    "network": "global/networks/default",
                    "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT", "networkTier": "PREMIUM"}],
                }],
                "serviceAccounts": [{
                    "email": self.sa_email(Workload::Scheduler),
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                }],
                "metadata": {"items": [
                    {"key": "startup-script", "value": self.startup_script(&container)},
                    // Pretty, so that a plan shows which line of it changes.
                    {"key": SCHEDULER_CONTAINER_ITEM, "value": serde_json::to_string_pretty(&container).unwrap_or_default()},
                ]},
                "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": true, "preemptible": false},
            }),
        )
        .depends_on(&Self::api_address("compute.googleapis.com"));
        for dep in self.workload_dependencies(Workload::Scheduler) {
            instance = instance.depends_on(&dep);
        }
        instance =
            instance.depends_on(&format!("{SERVICE_ACCOUNT_IAM_MEMBER}.scheduler_runs_jobs"));
        // The startup script and the container name the release's bucket.
        if self.d.sensitive.has("storage.bucket") {
            instance = instance.sensitive(&["metadata", "items", "0", "value"]);
            instance = instance.sensitive(&["metadata", "items", "1", "value"]);
        }
        self.add(instance);
    }

    /// The scheduler VM's startup script: reads the secrets from Secret Manager with the VM's
    /// own identity into a file only root reads, then runs the Cloud SQL Auth Proxy and
    /// `container` (see [`Self::scheduler_container`]): its plain env in the env file, its
    /// secrets read at boot, the fetch program from a file. No secret is in the script (it is
    /// instance metadata, readable by project viewers).
    fn startup_script(&self, container: &Value) -> String {
        let mut env_lines = Vec::new();
        let mut secret_lines = Vec::new();
        for e in container["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or_default();
            if let Some(value) = e["value"].as_str() {
                // The program is multi-line: docker gets it from its file.
                if name != "WEIR_RELEASE_FETCH" {
                    env_lines.push(format!("{name}={value}"));
                }
            } else if let Some(secret) = e["valueSource"]["secretKeyRef"]["secret"].as_str() {
                secret_lines.push(format!(
                    "printf '%s=%s\\n' {name} \"$(secret {secret})\" >> \"$env_file\""
                ));
            }
        }
        format!(
            r#"#!/bin/bash
# Written by weir: runs the Mage scheduler on Container-Optimized OS.
set -euo pipefail
meta=http://metadata.google.internal/computeMetadata/v1
token=$(curl -sf -H 'Metadata-Flavor: Google' "$meta/instance/service-accounts/default/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
secret() {{
  curl -sf -H "Authorization: Bearer $token" "https://secretmanager.googleapis.com/v1/projects/{project}/secrets/$1/versions/latest:access" | sed -E 's/.*"data":"([^"]+)".*/\1/' | base64 -d
}}
env_file=/run/mage.env
umask 077
cat > "$env_file" <<'EOF'
{env}
EOF
{secrets}
# Mage runs the pointed code release, fetched by the container before Mage starts.
mkdir -p /var/lib/weir
cat > /var/lib/weir/fetch_release.py <<'WEIR_FETCH_RELEASE'
{fetch}WEIR_FETCH_RELEASE
docker rm -f cloudsql-proxy mage-scheduler >/dev/null 2>&1 || true
mkdir -p {sock}
docker run -d --name cloudsql-proxy --restart=always -v {sock}:{sock} {proxy} --unix-socket {sock} {conn}
docker run -d --name mage-scheduler --restart=always --env-file "$env_file" -e WEIR_RELEASE_FETCH="$(cat /var/lib/weir/fetch_release.py)" -v {sock}:{sock} --entrypoint {shell} {image} {flag} '{command}' {name}
# A new release (the pointer changed): restart Mage, which fetches it first.
cat > /var/lib/weir/watch_release.sh <<'WEIR_WATCH_RELEASE'
#!/bin/bash
meta=http://metadata.google.internal/computeMetadata/v1
pointer="https://storage.googleapis.com/storage/v1/b/{bucket}/o/{prefix}%2Fcurrent?alt=media"
last=""
while sleep {poll}; do
  token=$(curl -sf -H 'Metadata-Flavor: Google' "$meta/instance/service-accounts/default/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/') || continue
  now=$(curl -sf -H "Authorization: Bearer $token" "$pointer") || continue
  if [ -n "$last" ] && [ "$now" != "$last" ]; then
    docker restart mage-scheduler
  fi
  last=$now
done
WEIR_WATCH_RELEASE
cat > /etc/systemd/system/weir-release-watch.service <<'WEIR_WATCH_UNIT'
[Unit]
Description=weir: restart the Mage scheduler on a new code release
After=docker.service
[Service]
ExecStart=/bin/bash /var/lib/weir/watch_release.sh
Restart=always
WEIR_WATCH_UNIT
systemctl daemon-reload
systemctl restart weir-release-watch.service
"#,
            fetch = FETCH_RELEASE,
            bucket = self.release_bucket(),
            prefix = RELEASE_PREFIX,
            poll = RELEASE_POLL_SECS,
            project = self.project,
            env = env_lines.join("\n"),
            secrets = secret_lines.join("\n"),
            sock = CLOUDSQL_DIR,
            proxy = SQL_PROXY_IMAGE,
            conn = self.sql_connection(),
            image = self.d.image,
            shell = CONTAINER_COMMAND[0],
            flag = CONTAINER_COMMAND[1],
            command = CONTAINER_COMMAND[2],
            name = CONTAINER_COMMAND[3],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadOptions;
    use std::path::Path;

    fn load(dir: &Path) -> Configuration {
        let opts = LoadOptions {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        let (model, diags) = crate::model::load(&opts);
        assert!(!diags.has_errors(), "{diags:?}");
        model.unwrap()
    }

    fn quickstart() -> (Configuration, Vec<ResourceInstance>) {
        let mut model = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"));
        let instances = super::super::lower(&mut model).unwrap();
        (model, instances)
    }

    /// A small gcp configuration with `extra` appended.
    fn small(extra: &str) -> (Configuration, Vec<ResourceInstance>, tempfile::TempDir) {
        small_with_deployment("", extra)
    }

    /// [`small`] with `inner` added to the deployment block.
    fn small_with_deployment(
        inner: &str,
        extra: &str,
    ) -> (Configuration, Vec<ResourceInstance>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"variable "token" {{
  type      = string
  sensitive = true
  default   = "tok-3f9a-secret"
}}

deployment "prod" {{
  target  = "gcp"
  project = "my-project-123"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"

  scheduler {{
    zone = "us-central1-a"
  }}

  storage {{
    bucket = "my-project-123-mage"
  }}
{inner}}}
{extra}"#
        );
        std::fs::write(dir.path().join("main.hcl"), text).unwrap();
        let mut model = load(dir.path());
        let instances = super::super::lower(&mut model).unwrap();
        (model, instances, dir)
    }

    fn find<'a>(instances: &'a [ResourceInstance], address: &str) -> &'a ResourceInstance {
        instances
            .iter()
            .find(|i| i.address == address)
            .unwrap_or_else(|| panic!("no {address}"))
    }

    /// Every container of the service, the jobs and (as its env file) the VM.
    fn containers(instances: &[ResourceInstance]) -> Vec<&Value> {
        let mut out = Vec::new();
        for i in instances {
            let list = match i.type_name.as_str() {
                CLOUD_RUN_SERVICE => i.attributes.pointer("/template/containers"),
                CLOUD_RUN_JOB => i.attributes.pointer("/template/template/containers"),
                _ => None,
            };
            out.extend(list.and_then(Value::as_array).into_iter().flatten());
        }
        out
    }

    #[test]
    fn the_quickstart_needs_every_google_resource_named_after_the_deployment() {
        let (_, instances) = quickstart();
        for t in [
            PROJECT_SERVICE,
            SERVICE_ACCOUNT,
            PROJECT_IAM_MEMBER,
            SERVICE_ACCOUNT_IAM_MEMBER,
            SECRET,
            SECRET_VERSION,
            SECRET_IAM_MEMBER,
            STORAGE_BUCKET,
            STORAGE_BUCKET_IAM_MEMBER,
            SQL_INSTANCE,
            SQL_DATABASE,
            SQL_USER,
            CLOUD_RUN_SERVICE,
            CLOUD_RUN_JOB,
            COMPUTE_INSTANCE,
        ] {
            assert!(instances.iter().any(|i| i.type_name == t), "no {t}");
        }
        // Every resource but the code release (weir's own provider) is Google's.
        assert!(instances.iter().all(|i| i.provider == "google"
            || i.address == "weir_release.prod" && i.provider == crate::release::PROVIDER_NAME));
        let name = |a: &str| find(&instances, a).attributes["name"].clone();
        assert_eq!(
            name("google_cloud_run_v2_service.webserver"),
            "mage-prod-web"
        );
        assert_eq!(
            name("google_cloud_run_v2_job.standard"),
            "mage-prod-standard"
        );
        assert_eq!(name("google_cloud_run_v2_job.highmem"), "mage-prod-highmem");
        assert_eq!(
            name("google_compute_instance.scheduler"),
            "mage-prod-scheduler"
        );
        assert_eq!(name("google_sql_database_instance.prod"), "mage-prod-db");
        // Every dependency is a resource of the deployment.
        for i in &instances {
            for d in &i.dependencies {
                assert!(
                    instances.iter().any(|j| &j.address == d),
                    "{}: {d}",
                    i.address
                );
            }
        }
    }

    #[test]
    fn the_web_server_scales_to_zero_and_the_scheduler_runs_from_a_startup_script() {
        let (_, instances) = quickstart();
        let web = &find(&instances, "google_cloud_run_v2_service.webserver").attributes;
        let c = &web["template"]["containers"][0];
        assert_eq!(c["resources"]["cpuIdle"], true);
        assert_eq!(c["ports"][0]["containerPort"], 6789);
        assert_eq!(web["template"]["scaling"]["minInstanceCount"], 0);
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "INSTANCE_TYPE", "value": "web_server"}))
        );
        assert_eq!(
            web["template"]["volumes"][0]["cloudSqlInstance"]["instances"][0],
            "acme-data-prod:us-central1:mage-prod-db"
        );
        let vm = &find(&instances, "google_compute_instance.scheduler").attributes;
        assert_eq!(vm["zone"], "us-central1-a");
        assert_eq!(
            vm["machineType"],
            "zones/us-central1-a/machineTypes/e2-micro"
        );
        assert!(
            vm["disks"][0]["initializeParams"]["sourceImage"]
                .as_str()
                .unwrap()
                .contains("cos-cloud")
        );
        let items = vm["metadata"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["key"], "startup-script");
        assert_eq!(items[1]["key"], SCHEDULER_CONTAINER_ITEM);
        assert!(
            items[0]["value"]
                .as_str()
                .unwrap()
                .contains("INSTANCE_TYPE=scheduler")
        );
        // Not the deprecated container declaration.
        assert!(!vm.to_string().contains("gce-container-declaration"));
        let job = &find(&instances, "google_cloud_run_v2_job.highmem").attributes;
        let t = &job["template"]["template"];
        assert_eq!(t["timeout"], "7200s");
        assert_eq!(t["maxRetries"], 0);
        assert_eq!(
            t["containers"][0]["resources"]["limits"],
            json!({"cpu": "4", "memory": "16Gi"})
        );
    }

    #[test]
    fn everything_that_takes_labels_is_labelled_managed_by_weir() {
        let (_, instances) = quickstart();
        let mut labelled = 0;
        for i in &instances {
            let labels = i
                .attributes
                .get("labels")
                .or_else(|| i.attributes.pointer("/settings/userLabels"));
            let takes_labels = matches!(
                i.type_name.as_str(),
                SECRET
                    | STORAGE_BUCKET
                    | SQL_INSTANCE
                    | CLOUD_RUN_SERVICE
                    | CLOUD_RUN_JOB
                    | COMPUTE_INSTANCE
            );
            if takes_labels {
                let labels = labels.unwrap_or_else(|| panic!("{} has no labels", i.address));
                assert_eq!(labels["managed-by"], "weir", "{}", i.address);
                assert_eq!(labels["team"], "data", "{}", i.address);
                labelled += 1;
            }
        }
        assert!(labelled >= 8);
    }

    #[test]
    fn secrets_reach_containers_only_as_secret_key_refs() {
        let (_, instances, _dir) = small(
            r#"resource_profile "etl" {
  cpu    = 1
  memory = "2Gi"
  env = {
    API_TOKEN = var.token
  }
}

notification "alerts" {
  channel     = "slack"
  webhook_url = "https://hooks.slack.com/services/T1/B1/abc"
}
"#,
        );
        let containers = containers(&instances);
        assert_eq!(containers.len(), 2);
        for c in containers {
            let env = c["env"].as_array().unwrap();
            for name in ["MAGE_DATABASE_CONNECTION_URL", "WEIR_NOTIFICATION_ALERTS"] {
                let e = env.iter().find(|e| e["name"] == name).unwrap();
                assert!(e.get("value").is_none(), "{e}");
                assert_eq!(e["valueSource"]["secretKeyRef"]["version"], "latest");
            }
            assert!(!c.to_string().contains("tok-3f9a-secret"));
            assert!(!c.to_string().contains("hooks.slack.com"));
        }
        let job = &find(&instances, "google_cloud_run_v2_job.etl").attributes;
        let env = job.pointer("/template/template/containers/0/env").unwrap();
        let token = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "API_TOKEN")
            .unwrap();
        assert_eq!(
            token["valueSource"]["secretKeyRef"]["secret"],
            "mage-prod-profile-etl-api-token"
        );
        // The values are in secret versions, marked sensitive; the VM fetches them at boot.
        for i in &instances {
            let text = i.attributes.to_string();
            if text.contains("tok-3f9a-secret") || text.contains("hooks.slack.com") {
                assert_eq!(i.type_name, SECRET_VERSION, "{}", i.address);
                assert!(
                    i.sensitive_paths
                        .contains(&vec!["payload".to_string(), "data".to_string()])
                );
            }
        }
        // The database password is generated by the provider, never lowered.
        let password = &find(
            &instances,
            "google_secret_manager_secret_version.db_password",
        )
        .attributes;
        assert!(password.get("payload").is_none());
        assert_eq!(password["generate"]["length"], 32);
    }

    #[test]
    fn a_sensitive_deployment_setting_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.hcl"),
            r#"variable "image" {
  type      = string
  sensitive = true
  default   = "mageai/mageai:0.9.80"
}

deployment "prod" {
  target  = "gcp"
  project = "my-project-123"
  region  = "us-central1"
  image   = var.image

  scheduler {
    zone = "us-central1-a"
  }

  storage {
    bucket = "my-project-123-mage"
  }
}
"#,
        )
        .unwrap();
        let mut model = load(dir.path());
        let diags = super::super::lower(&mut model).unwrap_err();
        let text = format!("{diags:?}");
        assert!(
            text.contains("`image` comes from a sensitive value"),
            "{text}"
        );
    }

    #[test]
    fn a_shared_core_database_uses_the_enterprise_edition() {
        let (_, instances) = quickstart();
        let sql = &find(&instances, "google_sql_database_instance.prod").attributes;
        assert_eq!(sql["settings"]["tier"], "db-f1-micro");
        assert_eq!(sql["settings"]["edition"], "ENTERPRISE");
        assert_eq!(sql["databaseVersion"], "POSTGRES_16");
        let bucket = &find(&instances, "google_storage_bucket.prod").attributes;
        assert_eq!(
            bucket["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"],
            true
        );
        assert_eq!(
            bucket["iamConfiguration"]["publicAccessPrevention"],
            "enforced"
        );
    }

    #[test]
    fn prevent_destroy_protects_the_database_and_the_bucket() {
        let (_, instances) = quickstart();
        let protected: Vec<&str> = instances
            .iter()
            .filter(|i| i.prevent_destroy)
            .map(|i| i.address.as_str())
            .collect();
        assert_eq!(
            protected,
            [
                "google_storage_bucket.prod",
                "google_sql_database_instance.prod"
            ]
        );
        let (_, instances, _dir) = small("");
        assert!(
            find(&instances, "google_sql_database_instance.prod").prevent_destroy,
            "on by default"
        );
    }

    #[test]
    fn outputs_point_at_the_resource_attributes_that_hold_them() {
        let (model, _) = quickstart();
        let from = |name: &str| {
            let o = model.outputs.iter().find(|o| o.name == name).unwrap();
            let f = o.from.clone().unwrap();
            (f.address, f.path.join("."))
        };
        assert_eq!(
            from("webserver_url"),
            ("google_cloud_run_v2_service.webserver".into(), "uri".into())
        );
        assert_eq!(
            from("scheduler_ip"),
            (
                "google_compute_instance.scheduler".into(),
                "networkInterfaces.0.accessConfigs.0.natIP".into()
            )
        );
        assert_eq!(
            from("bucket"),
            ("google_storage_bucket.prod".into(), "name".into())
        );
    }

    #[test]
    fn the_release_holds_the_project_as_the_local_target_renders_it() {
        let (model, instances) = quickstart();
        let release = find(&instances, "weir_release.prod");
        let content = release.attributes["content"].as_object().unwrap();
        let files = release.attributes["files"].as_object().unwrap();
        // One file per Mage resource of the local target, each with its hash and size.
        let local = super::super::mage::lower_local(&model).unwrap();
        assert_eq!(content.len(), local.len());
        assert!(content.contains_key("metadata.yaml"));
        for (path, text) in content {
            let text = text.as_str().unwrap();
            let entry = &files[path];
            assert_eq!(entry["size"], text.len());
            assert_eq!(
                entry["sha256"].as_str().unwrap(),
                crate::release::entries(&BTreeMap::from([(
                    path.clone(),
                    text.as_bytes().to_vec()
                )]))[path]
                    .sha256
            );
        }
        for instance in &local {
            let (path, bytes) =
                weir_provider_mage::render_file(&instance.type_name, &instance.attributes).unwrap();
            assert_eq!(
                content[&path].as_str().unwrap().as_bytes(),
                &bytes[..],
                "{path}"
            );
        }
        assert_eq!(release.attributes["prefix"], RELEASE_PREFIX);
        assert_eq!(release.attributes["keep_releases"], 10);
        assert!(
            release
                .dependencies
                .contains(&"google_storage_bucket.prod".to_string())
        );
    }

    #[test]
    fn every_container_fetches_the_release_before_mage_starts() {
        let (_, instances) = quickstart();
        for (address, container) in [
            (
                "google_cloud_run_v2_service.webserver",
                "/template/containers/0",
            ),
            (
                "google_cloud_run_v2_job.standard",
                "/template/template/containers/0",
            ),
        ] {
            let instance = find(&instances, address);
            let c = instance.attributes.pointer(container).unwrap();
            assert_eq!(c["command"], json!(CONTAINER_COMMAND), "{address}");
            let env = c["env"].as_array().unwrap();
            assert_eq!(
                env[4],
                json!({"name": "WEIR_RELEASE_BUCKET", "value": "acme-data-prod-mage"})
            );
            assert!(
                env.iter()
                    .any(|e| e["name"] == "WEIR_RELEASE_FETCH" && e["value"] == FETCH_RELEASE)
            );
            assert!(
                instance
                    .dependencies
                    .contains(&"weir_release.prod".to_string()),
                "{address}"
            );
        }
        let vm = find(&instances, "google_compute_instance.scheduler");
        let script = vm.attributes["metadata"]["items"][0]["value"]
            .as_str()
            .unwrap();
        assert!(script.contains(FETCH_RELEASE));
        assert!(script.contains("WEIR_RELEASE_BUCKET=acme-data-prod-mage"));
        assert!(script.contains("--entrypoint /bin/sh"));
        assert!(script.contains(&format!(
            "--entrypoint /bin/sh mageai/mageai:0.9.80 -c '{FETCH_THEN_RUN}' weir"
        )));
        assert!(
            script.contains(r#"-e WEIR_RELEASE_FETCH="$(cat /var/lib/weir/fetch_release.py)""#)
        );
        // The VM polls the pointer and restarts Mage (which fetches first) on a new release.
        assert!(script.contains(
            "https://storage.googleapis.com/storage/v1/b/acme-data-prod-mage/o/code%2Fcurrent?alt=media"
        ));
        assert!(script.contains("docker restart mage-scheduler"));
        assert!(script.contains("systemctl restart weir-release-watch.service"));
        assert!(script.contains("ExecStart=/bin/bash /var/lib/weir/watch_release.sh"));
        // The program is written before the container that runs it starts.
        assert!(
            script.find("fetch_release.py <<").unwrap()
                < script.find("mage-scheduler --restart").unwrap()
        );
    }

    #[test]
    fn the_scheduler_container_item_is_what_the_startup_script_runs() {
        let (_, instances) = quickstart();
        let vm = &find(&instances, "google_compute_instance.scheduler").attributes;
        let items = vm["metadata"]["items"].as_array().unwrap();
        let script = items[0]["value"].as_str().unwrap();
        let container: Value = serde_json::from_str(items[1]["value"].as_str().unwrap()).unwrap();
        assert_eq!(container["image"], "mageai/mageai:0.9.80");
        assert_eq!(container["command"], json!(CONTAINER_COMMAND));
        assert_eq!(container["volumeMounts"][0]["mountPath"], CLOUDSQL_DIR);
        assert_eq!(
            container["volumes"][0]["cloudSqlInstance"]["instances"][0],
            "acme-data-prod:us-central1:mage-prod-db"
        );
        // Every variable of the container is in the script: plain ones in the env file,
        // secrets read from Secret Manager at boot, the fetch program from its file.
        for e in container["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            if let Some(value) = e["value"].as_str() {
                if name == "WEIR_RELEASE_FETCH" {
                    assert_eq!(value, FETCH_RELEASE);
                } else {
                    assert!(script.contains(&format!("\n{name}={value}\n")), "{name}");
                }
            } else {
                let secret = e["valueSource"]["secretKeyRef"]["secret"].as_str().unwrap();
                assert!(
                    script.contains(&format!("{name} \"$(secret {secret})\"")),
                    "{name}"
                );
            }
        }
        assert!(script.contains("\nWEIR_RUNTIME=1\n"));
        assert!(!script.contains("-v /var/lib/weir:/weir"));
    }

    #[test]
    fn every_container_loads_the_runtime_unless_it_is_turned_off() {
        let runtime_containers = |instances: &[ResourceInstance]| -> Vec<Value> {
            let vm = &find(instances, "google_compute_instance.scheduler").attributes;
            let item = vm["metadata"]["items"][1]["value"].as_str().unwrap();
            vec![
                find(instances, "google_cloud_run_v2_service.webserver").attributes["template"]
                    ["containers"][0]
                    .clone(),
                serde_json::from_str(item).unwrap(),
            ]
        };
        let runtime = json!({"name": "WEIR_RUNTIME", "value": "1"});
        let (_, on, _dir) = small("");
        for c in runtime_containers(&on) {
            assert!(c["env"].as_array().unwrap().contains(&runtime), "{c}");
        }
        let files = |instances: &[ResourceInstance]| -> Vec<String> {
            let release = find(instances, "weir_release.prod");
            release.attributes["content"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with("weir/"))
                .cloned()
                .collect()
        };
        assert!(files(&on).contains(&"weir/runtime.json".to_string()));
        assert!(files(&on).contains(&"weir/sitecustomize.py".to_string()));
        let (model, off, _dir) =
            small_with_deployment("  runtime {\n    enabled = false\n  }\n", "");
        assert!(!model.deployment.runtime.enabled);
        for c in runtime_containers(&off) {
            assert!(!c["env"].as_array().unwrap().contains(&runtime), "{c}");
        }
        assert!(files(&off).is_empty());
    }

    #[test]
    fn the_runtime_config_maps_blocks_with_a_profile_to_their_job() {
        let (_, instances, _dir) = small(
            r#"
resource_profile "big_mem" {
  cpu     = 2
  memory  = "8Gi"
  region  = "europe-west1"
  timeout = "30m"
}

pipeline "orders" {
  variables = {
    api_key = var.token
    day     = "today"
  }

  block "load" {
    type = "data_loader"
    code = <<-EOT
      @data_loader
      def load(*args, **kwargs):
          return 1
    EOT
  }

  block "crunch" {
    type     = "transformer"
    upstream = [block.load]
    profile  = resource_profile.big_mem
    code     = <<-EOT
      @transformer
      def crunch(x, *args, **kwargs):
          return x
    EOT
  }
}
"#,
        );
        let release = find(&instances, "weir_release.prod");
        let text = release.attributes["content"]["weir/runtime.json"]
            .as_str()
            .unwrap();
        let config: Value = serde_json::from_str(text).unwrap();
        assert_eq!(config["target"], "gcp");
        assert_eq!(config["tested_mage_versions"], json!(["0.9.80"]));
        assert_eq!(
            config["blocks"],
            json!({"orders": {"crunch": {
                "profile": "big_mem",
                "job": "projects/my-project-123/locations/europe-west1/jobs/mage-prod-big-mem",
                "timeout_seconds": 1800,
            }}})
        );
        // The job it names is the one lowering creates.
        let job = find(&instances, "google_cloud_run_v2_job.big_mem");
        assert_eq!(job.attributes["name"], "mage-prod-big-mem");
        assert_eq!(job.attributes["location"], "europe-west1");
        // Names of secret run variables, never their values.
        assert_eq!(
            config["sensitive_variables"],
            json!({"orders": ["api_key"]})
        );
        assert!(!text.contains("tok-3f9a-secret"));
    }

    #[test]
    fn keep_releases_is_read_from_the_storage_block_and_checked() {
        let config = |keep: &str| {
            format!(
                r#"deployment "prod" {{
  target  = "gcp"
  project = "my-project-123"
  region  = "us-central1"
  image   = "mageai/mageai:0.9.80"
  scheduler {{
    zone = "us-central1-a"
  }}
  storage {{
    bucket        = "my-project-123-mage"
    keep_releases = {keep}
  }}
}}
"#
            )
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), config("3")).unwrap();
        let mut model = load(dir.path());
        let instances = super::super::lower(&mut model).unwrap();
        assert_eq!(
            find(&instances, "weir_release.prod").attributes["keep_releases"],
            3
        );
        std::fs::write(dir.path().join("main.hcl"), config("0")).unwrap();
        let opts = LoadOptions {
            dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let (_, diags) = crate::model::load(&opts);
        let message = diags.iter().map(|d| d.render(false)).collect::<String>();
        assert!(
            diags.has_errors() && message.contains("keep_releases"),
            "{message}"
        );
    }

    #[test]
    fn the_startup_script_and_its_release_watcher_parse_as_bash() {
        let (_, instances) = quickstart();
        let vm = find(&instances, "google_compute_instance.scheduler");
        let script = vm.attributes["metadata"]["items"][0]["value"]
            .as_str()
            .unwrap();
        let watcher = script
            .split("<<'WEIR_WATCH_RELEASE'\n")
            .nth(1)
            .and_then(|rest| rest.split("WEIR_WATCH_RELEASE\n").next())
            .expect("the script writes the watcher");
        for text in [script, watcher] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("script.sh");
            std::fs::write(&file, text).unwrap();
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg(&file)
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(watcher.contains("while sleep 60; do"));
        assert!(watcher.contains(r#"sed -E 's/.*"access_token":"([^"]+)".*/\1/'"#));
    }
}
