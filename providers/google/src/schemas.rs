//! The resource types and what the engine must know about their attributes: which changes
//! replace the object (the API cannot change them in place), which values the API computes,
//! which are secret. Every attribute not named here is updated in place.

use weir_provider_sdk::ResourceSchema;

/// The resource type names.
pub mod types {
    pub const PROJECT_SERVICE: &str = "google_project_service";
    pub const SERVICE_ACCOUNT: &str = "google_service_account";
    pub const PROJECT_IAM_MEMBER: &str = "google_project_iam_member";
    pub const SERVICE_ACCOUNT_IAM_MEMBER: &str = "google_service_account_iam_member";
    pub const SECRET: &str = "google_secret_manager_secret";
    pub const SECRET_VERSION: &str = "google_secret_manager_secret_version";
    pub const SECRET_IAM_MEMBER: &str = "google_secret_manager_secret_iam_member";
    pub const STORAGE_BUCKET: &str = "google_storage_bucket";
    pub const STORAGE_BUCKET_IAM_MEMBER: &str = "google_storage_bucket_iam_member";
    pub const SQL_INSTANCE: &str = "google_sql_database_instance";
    pub const SQL_DATABASE: &str = "google_sql_database";
    pub const SQL_USER: &str = "google_sql_user";
    pub const CLOUD_RUN_SERVICE: &str = "google_cloud_run_v2_service";
    pub const CLOUD_RUN_JOB: &str = "google_cloud_run_v2_job";
    pub const COMPUTE_INSTANCE: &str = "google_compute_instance";
}

use types::*;

/// The attributes the API sets and the configuration never does, per type, as dotted paths
/// (array indices as numbers). A plan shows them as known after apply until state has them.
pub(crate) fn output_only(type_name: &str) -> &'static [&'static str] {
    match type_name {
        SERVICE_ACCOUNT => &["uniqueId"],
        SECRET => &["createTime", "etag"],
        SECRET_VERSION => &["name", "createTime", "state"],
        STORAGE_BUCKET => &["id", "selfLink", "timeCreated", "etag", "metageneration"],
        SQL_INSTANCE => &[
            "ipAddresses",
            "selfLink",
            "state",
            "serviceAccountEmailAddress",
            "settings.settingsVersion",
        ],
        CLOUD_RUN_SERVICE => &["uri", "uid", "etag", "generation", "latestReadyRevision"],
        CLOUD_RUN_JOB => &["uid", "etag", "generation"],
        COMPUTE_INSTANCE => &[
            "id",
            "selfLink",
            "status",
            "networkInterfaces.0.accessConfigs.0.natIP",
            "metadata.fingerprint",
            "labelFingerprint",
        ],
        _ => &[],
    }
}

/// Marks `names` computed in `schema`.
fn computed(mut schema: ResourceSchema, names: &[&str]) -> ResourceSchema {
    for name in names {
        schema = schema.computed(name);
    }
    schema
}

pub(crate) fn all() -> Vec<ResourceSchema> {
    let with_outputs = |schema: ResourceSchema| {
        let names = output_only(&schema.type_name);
        computed(schema, names)
    };
    [
        ResourceSchema::new(
            PROJECT_SERVICE,
            "An API enabled in a project (Service Usage v1)",
        )
        .force_new("project")
        .force_new("service"),
        ResourceSchema::new(SERVICE_ACCOUNT, "A service account (IAM v1)")
            .force_new("project")
            .force_new("accountId")
            .attribute("displayName")
            .attribute("description")
            // `<accountId>@<project>.iam.gserviceaccount.com`, known at plan.
            .computed("email"),
        ResourceSchema::new(
            PROJECT_IAM_MEMBER,
            "One member of one role in the project's IAM policy (Resource Manager v3)",
        )
        .force_new("project")
        .force_new("role")
        .force_new("member"),
        ResourceSchema::new(
            SERVICE_ACCOUNT_IAM_MEMBER,
            "One member of one role on a service account (IAM v1)",
        )
        .lives_in(SERVICE_ACCOUNT)
        .force_new("serviceAccount")
        .force_new("role")
        .force_new("member"),
        ResourceSchema::new(
            SECRET,
            "A Secret Manager secret (its versions hold the values)",
        )
        .force_new("project")
        .force_new("secretId")
        .force_new("replication")
        .attribute("labels"),
        // A version's value cannot change: a new value is a new version.
        ResourceSchema::new(SECRET_VERSION, "A Secret Manager secret version")
            .lives_in(SECRET)
            .force_new("secret")
            .force_new("payload")
            .force_new("generate")
            .force_new("template")
            .force_new("templateSecrets")
            .sensitive("payload.data"),
        ResourceSchema::new(SECRET_IAM_MEMBER, "One member of one role on a secret")
            .lives_in(SECRET)
            .force_new("secret")
            .force_new("role")
            .force_new("member"),
        ResourceSchema::new(STORAGE_BUCKET, "A Cloud Storage bucket (JSON API v1)")
            .force_new("project")
            .force_new("name")
            .force_new("location")
            .attribute("storageClass")
            .attribute("iamConfiguration")
            .attribute("labels"),
        ResourceSchema::new(
            STORAGE_BUCKET_IAM_MEMBER,
            "One member of one role on a bucket",
        )
        .lives_in(STORAGE_BUCKET)
        .force_new("bucket")
        .force_new("role")
        .force_new("member"),
        // Cloud SQL keeps the instance id and region for life; the major version is treated as
        // fixed too, so that an upgrade is a reviewed replacement (which `prevent_destroy`
        // stops), never an implicit one.
        ResourceSchema::new(SQL_INSTANCE, "A Cloud SQL instance (Cloud SQL Admin v1)")
            .force_new("project")
            .force_new("name")
            .force_new("region")
            .force_new("databaseVersion")
            .force_new("settings.collation")
            .attribute("settings.tier")
            .attribute("settings.edition")
            .computed("connectionName"),
        ResourceSchema::new(SQL_DATABASE, "A database in a Cloud SQL instance")
            .lives_in(SQL_INSTANCE)
            .force_new("project")
            .force_new("instance")
            .force_new("name"),
        ResourceSchema::new(SQL_USER, "A user of a Cloud SQL instance")
            .lives_in(SQL_INSTANCE)
            .force_new("project")
            .force_new("instance")
            .force_new("name")
            .attribute("passwordSecret"),
        ResourceSchema::new(
            CLOUD_RUN_SERVICE,
            "A Cloud Run service (Cloud Run Admin v2)",
        )
        .force_new("project")
        .force_new("location")
        .force_new("name")
        .attribute("template"),
        ResourceSchema::new(CLOUD_RUN_JOB, "A Cloud Run job (Cloud Run Admin v2)")
            .force_new("project")
            .force_new("location")
            .force_new("name")
            .attribute("template"),
        // The machine type changes in place, the VM stopped and started again; the boot disk
        // grows in place (a smaller one is a new VM, which `normalize` decides); the zone, the
        // boot disk's image and type cannot change without a new VM.
        ResourceSchema::new(COMPUTE_INSTANCE, "A Compute Engine VM (Compute Engine v1)")
            .force_new("project")
            .force_new("zone")
            .force_new("name")
            .force_new("disks.*.boot")
            .force_new("disks.*.initializeParams.sourceImage")
            .force_new("disks.*.initializeParams.diskType")
            .force_new("networkInterfaces.*.network")
            // Some scheduling fields could change on a stopped VM, others never: any change
            // makes a new VM, which for a stateless scheduler is simple and honest.
            .force_new("scheduling")
            .attribute("machineType")
            .attribute("metadata")
            .attribute("labels")
            .attribute("serviceAccounts"),
    ]
    .into_iter()
    .map(with_outputs)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(type_name: &str) -> ResourceSchema {
        all()
            .into_iter()
            .find(|s| s.type_name == type_name)
            .unwrap()
    }

    fn forces(type_name: &str, path: &str) -> bool {
        schema(type_name).force_new_attributes().any(|a| a == path)
    }

    #[test]
    fn replacements_follow_what_the_apis_cannot_change_in_place() {
        assert!(forces(COMPUTE_INSTANCE, "zone"));
        assert!(forces(
            COMPUTE_INSTANCE,
            "disks.*.initializeParams.sourceImage"
        ));
        assert!(!forces(COMPUTE_INSTANCE, "machineType"));
        assert!(!forces(COMPUTE_INSTANCE, "metadata"));
        assert!(forces(COMPUTE_INSTANCE, "scheduling"));
        assert!(forces(SQL_INSTANCE, "region"));
        assert!(forces(SQL_INSTANCE, "databaseVersion"));
        assert!(!forces(SQL_INSTANCE, "settings.tier"));
        for t in [CLOUD_RUN_JOB, CLOUD_RUN_SERVICE] {
            assert!(forces(t, "name") && forces(t, "location"));
            assert!(!forces(t, "template"));
        }
        assert!(forces(STORAGE_BUCKET, "location"));
        assert!(!forces(STORAGE_BUCKET, "labels"));
    }

    #[test]
    fn what_lives_inside_another_resource_is_replaced_with_it() {
        for (inner, outer) in [
            (SQL_DATABASE, SQL_INSTANCE),
            (SQL_USER, SQL_INSTANCE),
            (SECRET_VERSION, SECRET),
            (SECRET_IAM_MEMBER, SECRET),
            (STORAGE_BUCKET_IAM_MEMBER, STORAGE_BUCKET),
            (SERVICE_ACCOUNT_IAM_MEMBER, SERVICE_ACCOUNT),
        ] {
            assert_eq!(schema(inner).lives_in, vec![outer.to_owned()], "{inner}");
        }
        assert!(schema(CLOUD_RUN_JOB).lives_in.is_empty());
    }

    #[test]
    fn secret_values_are_sensitive_and_output_only_fields_computed() {
        let v = schema(SECRET_VERSION);
        assert!(v.get("payload.data").is_some_and(|a| a.sensitive));
        let s = schema(CLOUD_RUN_SERVICE);
        assert!(s.get("uri").is_some_and(|a| a.computed));
        let vm = schema(COMPUTE_INSTANCE);
        assert!(
            vm.get("networkInterfaces.0.accessConfigs.0.natIP")
                .is_some_and(|a| a.computed)
        );
        // Every type has a unique name.
        let mut names: Vec<String> = all().into_iter().map(|s| s.type_name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
