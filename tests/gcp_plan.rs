//! `weir plan` of the quickstart (`target = "gcp"`) end to end: with no state and no
//! credentials it shows every Google resource, in every format, with no secret in any of them;
//! applying it is refused clearly, since this build does not apply every type yet.

#[path = "support/cli.rs"]
mod cli;

use cli::weir;
use std::path::{Path, PathBuf};

/// A copy of examples/quickstart in a temp dir.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cli::copy_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        tmp.path(),
    );
    (tmp, dir)
}

/// `weir plan` with no credentials to find: no Google variable, no gcloud configuration, no
/// metadata server.
fn plan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = weir(dir)
        .arg("plan")
        .args(args)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("WEIR_GOOGLE_ENDPOINT")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env_remove("CLOUDSDK_CONFIG")
        .env("HOME", &home)
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The quickstart's default Slack webhook (a sensitive variable).
const WEBHOOK: &str = "https://hooks.slack.com/services/T000/B000/XXXX";

/// Every Google resource type the quickstart needs.
const TYPES: &[&str] = &[
    "google_project_service",
    "google_service_account",
    "google_project_iam_member",
    "google_service_account_iam_member",
    "google_secret_manager_secret",
    "google_secret_manager_secret_version",
    "google_secret_manager_secret_iam_member",
    "google_storage_bucket",
    "google_storage_bucket_iam_member",
    "google_sql_database_instance",
    "google_sql_database",
    "google_sql_user",
    "google_cloud_run_v2_service",
    "google_cloud_run_v2_job",
    "google_compute_instance",
];

#[test]
fn quickstart_plan_shows_every_google_resource_without_credentials() {
    let (_tmp, dir) = quickstart();
    let (code, out, err) = plan(&dir, &["--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}{err}");
    for t in TYPES {
        assert!(
            out.contains(&format!("resource \"{t}\"")),
            "no {t} in:\n{out}"
        );
    }
    assert!(
        out.contains("uri") && out.contains("(known after apply)"),
        "{out}"
    );
    assert!(out.contains("estimated idle cost: $"), "{out}");
    assert!(
        out.contains("+ webserver_url = (known after apply)"),
        "{out}"
    );
    assert!(!err.contains("cannot plan"), "{err}");
    assert!(!out.contains(WEBHOOK) && !err.contains(WEBHOOK));
    assert!(!out.contains("hooks.slack.com"), "{out}");
}

#[test]
fn quickstart_plan_in_json_markdown_and_a_saved_plan_holds_no_secret() {
    let (_tmp, dir) = quickstart();
    let (code, out, err) = plan(&dir, &["--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let changes = json["resource_changes"].as_array().unwrap();
    for t in TYPES {
        assert!(changes.iter().any(|c| c["type"] == *t), "no {t}");
    }
    // The web server's URL and the generated password are known only after apply.
    let change = |address: &str| {
        changes
            .iter()
            .find(|c| c["address"] == address)
            .unwrap_or_else(|| panic!("no {address}"))["change"]
            .clone()
    };
    assert_eq!(
        change("google_cloud_run_v2_service.webserver")["after_unknown"]["uri"],
        true
    );
    assert_eq!(
        change("google_secret_manager_secret_version.db_password")["after_unknown"]["payload"]["data"],
        true
    );
    assert!(!out.contains("hooks.slack.com"), "{out}");

    let (code, out, err) = plan(&dir, &["--format", "markdown"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("google_cloud_run_v2_service.webserver"),
        "{out}"
    );
    assert!(!out.contains("hooks.slack.com"), "{out}");

    let saved = dir.join("plan.bin");
    let (code, out, err) = plan(&dir, &["--out", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let saved = std::fs::read(saved).unwrap();
    let saved = String::from_utf8_lossy(&saved);
    assert!(saved.contains("google_compute_instance"));
    assert!(!saved.contains("hooks.slack.com"));
}

/// The engine with the Google provider's schemas and planning, over objects kept in memory
/// (this build cannot call Google): what a plan after an apply decides.
mod after_apply {
    use async_trait::async_trait;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use weir::apply::reporter::{Event, Reporter};
    use weir::apply::{ApplyOptions, apply};
    use weir::lower::ResourceInstance;
    use weir::plan::file::config_digest;
    use weir::plan::planner::{PlanInput, PlanOptions, plan};
    use weir::plan::{Action, Plan};
    use weir::providers::Providers;
    use weir::state::LocalBackend;
    use weir_provider_google::GoogleProvider;
    use weir_provider_sdk::{
        Cancel, PlannedValue, Provider, ProviderError, ResourceRef, ResourceSchema,
    };

    /// Google's schemas and `plan`; objects in a map, with what the API would set filled in.
    struct Recorded {
        google: GoogleProvider,
        objects: Mutex<BTreeMap<String, Value>>,
    }

    /// Every null (a value the API sets) as a made-up value.
    fn fill(value: &mut Value) {
        match value {
            Value::Null => *value = Value::String("set-by-google-5e1d".into()),
            Value::Object(m) => m.values_mut().for_each(fill),
            Value::Array(a) => a.iter_mut().for_each(fill),
            _ => {}
        }
    }

    #[async_trait]
    impl Provider for Recorded {
        fn name(&self) -> &str {
            "google"
        }
        fn schemas(&self) -> Vec<ResourceSchema> {
            self.google.schemas()
        }
        fn plan(
            &self,
            type_name: &str,
            prior: Option<&Value>,
            desired: Value,
        ) -> Result<PlannedValue, ProviderError> {
            self.google.plan(type_name, prior, desired)
        }
        fn idle_cost(&self, resources: &[ResourceRef]) -> Option<weir_provider_sdk::IdleCost> {
            self.google.idle_cost(resources)
        }
        fn prices(&self, type_name: &str) -> bool {
            self.google.prices(type_name)
        }
        async fn read(
            &self,
            resources: &[ResourceRef],
        ) -> Vec<Result<Option<Value>, ProviderError>> {
            let objects = self.objects.lock().unwrap();
            resources
                .iter()
                .map(|r| Ok(objects.get(&r.address).cloned()))
                .collect()
        }
        async fn create(&self, r: &ResourceRef, _: &Cancel) -> Result<Value, ProviderError> {
            let mut v = r.attributes.clone();
            fill(&mut v);
            self.objects
                .lock()
                .unwrap()
                .insert(r.address.clone(), v.clone());
            Ok(v)
        }
        async fn update(
            &self,
            _: &Value,
            r: &ResourceRef,
            c: &Cancel,
        ) -> Result<Value, ProviderError> {
            self.create(r, c).await
        }
        async fn delete(&self, r: &ResourceRef, _: &Cancel) -> Result<(), ProviderError> {
            self.objects.lock().unwrap().remove(&r.address);
            Ok(())
        }
    }

    struct Quiet;
    impl Reporter for Quiet {
        fn event(&self, _: Event<'_>) {}
    }

    struct Setup {
        _dir: tempfile::TempDir,
        backend: LocalBackend,
        providers: Arc<Providers>,
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn quickstart() -> Vec<ResourceInstance> {
        let opts = weir::config::LoadOptions {
            dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
            ..Default::default()
        };
        let (model, diags) = weir::model::load(&opts);
        assert!(!diags.has_errors(), "{diags:?}");
        // The Google resources: the code release is another provider's (tests/gcp_sandbox).
        let mut instances = weir::lower::lower(&mut model.unwrap()).unwrap();
        instances.retain(|i| i.provider != weir::release::PROVIDER_NAME);
        instances
    }

    impl Setup {
        fn new() -> Setup {
            let dir = tempfile::tempdir().unwrap();
            let provider = Arc::new(Recorded {
                google: GoogleProvider::new(),
                objects: Mutex::new(BTreeMap::new()),
            });
            Setup {
                backend: LocalBackend::open(dir.path(), &weir::state::default_path()).unwrap(),
                _dir: dir,
                providers: Arc::new(Providers::new(vec![provider as Arc<dyn Provider>])),
            }
        }

        fn plan(&self, desired: &[ResourceInstance]) -> Result<Plan, String> {
            let state = self.backend.read_unlocked().unwrap();
            let input = PlanInput {
                desired: desired.to_vec(),
                outputs: &[],
                prior: state.as_ref(),
                config_hash: state
                    .as_ref()
                    .map_or("hash".into(), |s| config_digest(&s.key, "hash")),
                git_commit: None,
            };
            rt().block_on(plan(input, &self.providers, &PlanOptions::default()))
                .map_err(|e| e.join("\n"))
        }

        fn apply(&self, plan: &Plan) {
            let mut lock = self.backend.lock("apply", Duration::ZERO).unwrap();
            let mut state = lock.read().unwrap().unwrap_or_default();
            rt().block_on(apply(
                plan,
                self.providers.clone(),
                &mut lock,
                &mut state,
                &ApplyOptions::new(4),
                &Quiet,
            ));
        }
    }

    fn changed(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .map(|c| (c.address.clone(), c.action))
            .collect()
    }

    fn with(
        mut desired: Vec<ResourceInstance>,
        address: &str,
        pointer: &str,
        value: Value,
    ) -> Vec<ResourceInstance> {
        let i = desired.iter_mut().find(|i| i.address == address).unwrap();
        *i.attributes.pointer_mut(pointer).unwrap() = value;
        desired
    }

    #[test]
    fn the_plan_tells_the_idle_cost_before_and_after_and_what_keeps_it_from_zero() {
        let s = Setup::new();
        let desired = quickstart();
        let first = s.plan(&desired).unwrap();
        let cost = first.idle_cost.clone().unwrap();
        assert_eq!(cost.before, None, "nothing is deployed yet");
        let after = cost.after.unwrap().total();
        assert!((after - 12.21).abs() < 0.01, "{after}");
        s.apply(&first);

        // One warm web server instance: the cost rises, and the plan says why.
        let warm = with(
            desired,
            "google_cloud_run_v2_service.webserver",
            "/template/scaling/minInstanceCount",
            1.into(),
        );
        let p = s.plan(&warm).unwrap();
        let cost = p.idle_cost.clone().unwrap();
        assert!((cost.before.unwrap().total() - 12.21).abs() < 0.01);
        let now = cost.after.unwrap();
        assert!(now.total() > 60.0, "{now:?}");
        assert!(
            now.warnings.iter().any(|w| w.contains("min_instances > 0")),
            "{now:?}"
        );
        let note = p.notes.iter().find(|n| n.contains("idle cost")).unwrap();
        assert!(note.contains("$12.21/month now"), "{note}");
        assert!(
            note.contains("warning: the web server keeps 1 instance"),
            "{note}"
        );
    }

    #[test]
    fn after_apply_the_quickstart_plans_no_change_and_each_change_is_update_or_replace() {
        let s = Setup::new();
        let desired = quickstart();
        s.apply(&s.plan(&desired).unwrap());
        let again = s.plan(&desired).unwrap();
        assert_eq!(changed(&again), vec![], "a plan right after apply is empty");

        // One profile's memory: that job, in place.
        let more = with(
            desired.clone(),
            "google_cloud_run_v2_job.standard",
            "/template/template/containers/0/resources/limits/memory",
            "4096Mi".into(),
        );
        let p = s.plan(&more).unwrap();
        assert_eq!(
            changed(&p),
            vec![("google_cloud_run_v2_job.standard".into(), Action::Update)]
        );
        // The scheduler's machine type: in place (stop and start); its zone: a new VM.
        let bigger = with(
            desired.clone(),
            "google_compute_instance.scheduler",
            "/machineType",
            "zones/us-central1-a/machineTypes/e2-small".into(),
        );
        let p = s.plan(&bigger).unwrap();
        assert_eq!(
            changed(&p),
            vec![("google_compute_instance.scheduler".into(), Action::Update)]
        );
        assert!(
            p.changes
                .iter()
                .any(|c| c.notes.iter().any(|n| n.contains("stops the VM")))
        );
        let moved = with(
            desired.clone(),
            "google_compute_instance.scheduler",
            "/zone",
            "us-central1-b".into(),
        );
        let p = s.plan(&moved).unwrap();
        assert_eq!(
            changed(&p),
            vec![("google_compute_instance.scheduler".into(), Action::Replace)]
        );
        let image = with(
            desired.clone(),
            "google_compute_instance.scheduler",
            "/disks/0/initializeParams/sourceImage",
            "projects/cos-cloud/global/images/family/cos-beta".into(),
        );
        let c = s.plan(&image).unwrap();
        let c = c.change("google_compute_instance.scheduler").unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(
            c.replace_paths,
            vec![vec!["disks", "0", "initializeParams", "sourceImage"]]
        );
        // The database in another region would be a new one: prevent_destroy stops the plan.
        let elsewhere = with(
            desired,
            "google_sql_database_instance.prod",
            "/region",
            "us-east1".into(),
        );
        let error = s.plan(&elsewhere).unwrap_err();
        assert!(
            error.contains("google_sql_database_instance.prod would be replaced"),
            "{error}"
        );
    }

    #[test]
    fn a_replaced_secret_takes_its_version_and_its_readers_with_it() {
        let s = Setup::new();
        let desired = quickstart();
        s.apply(&s.plan(&desired).unwrap());
        let moved = with(
            desired,
            "google_secret_manager_secret.db_url",
            "/replication",
            serde_json::json!({"userManaged": {"replicas": [{"location": "us-central1"}]}}),
        );
        let p = s.plan(&moved).unwrap();
        let mut replaced: Vec<String> = changed(&p)
            .into_iter()
            .filter(|(_, a)| *a == Action::Replace)
            .map(|(address, _)| address)
            .collect();
        replaced.sort();
        assert_eq!(
            replaced,
            vec![
                "google_secret_manager_secret.db_url",
                "google_secret_manager_secret_iam_member.db_url_job",
                "google_secret_manager_secret_iam_member.db_url_sched",
                "google_secret_manager_secret_iam_member.db_url_web",
                "google_secret_manager_secret_version.db_url",
            ]
        );
    }
}

#[test]
fn an_image_with_a_mage_the_runtime_was_not_tested_with_is_refused_at_plan() {
    let (_tmp, dir) = quickstart();
    let main = dir.join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    assert!(text.contains("\"mageai/mageai:0.9.80\""));
    std::fs::write(
        &main,
        text.replace("\"mageai/mageai:0.9.80\"", "\"mageai/mageai:0.8.50\""),
    )
    .unwrap();
    let (code, out, err) = plan(&dir, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("the weir runtime is tested with mage-ai 0.9.80, but the image `mageai/mageai:0.8.50` runs Mage 0.8.50"),
        "{err}"
    );
    assert!(err.contains("allow_untested_mage = true"), "{err}");
    assert!(err.contains("enabled = false"), "{err}");
    // Allowed: planned, with a warning and the runtime still shipped.
    let text = std::fs::read_to_string(&main).unwrap();
    assert!(text.contains("  image   = local.image\n"));
    std::fs::write(
        &main,
        text.replacen(
            "  image   = local.image\n",
            "  image   = local.image\n\n  runtime {\n    allow_untested_mage = true\n  }\n",
            1,
        ),
    )
    .unwrap();
    let (code, out, err) = plan(&dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("Mage 0.8.50 is not a version weir is tested with"),
        "{err}"
    );
    assert!(out.contains("weir/runtime.json"), "{out}");
}
