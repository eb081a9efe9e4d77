//! The validator against Google's real discovery documents. They are not in the repository:
//! `scripts/test-deps.sh` installs them, and without them these tests fail saying so.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::discovery::{Catalog, documents_dir_for_tests};
use crate::record::{self, Exchange};
use crate::validate::{GoogleError, Request};

const RUN: &str = "run.googleapis.com";
const COMPUTE: &str = "compute.googleapis.com";
const SQL: &str = "sqladmin.googleapis.com";
const STORAGE: &str = "storage.googleapis.com";
const JOBS: &str = "/v2/projects/p/locations/us-central1/jobs";

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let dir = documents_dir_for_tests().unwrap_or_else(|e| panic!("{e}"));
        Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn job() -> Value {
    json!({
        "labels": {"managed-by": "weir"},
        "launchStage": "GA",
        "template": {
            "taskCount": 1,
            "parallelism": 1,
            "template": {
                "containers": [{
                    "image": "mageai/mageai:0.9.80",
                    "command": ["mage"],
                    "args": ["run", "/home/src/project", "etl"],
                    "env": [
                        {"name": "INSTANCE_TYPE", "value": "job"},
                        {"name": "MAGE_DATABASE_PASSWORD", "valueSource": {"secretKeyRef": {
                            "secret": "projects/p/secrets/weir-db-password", "version": "latest"}}}
                    ],
                    "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}
                }],
                "timeout": "3600s",
                "maxRetries": 3,
                "serviceAccount": "weir-jobs@p.iam.gserviceaccount.com",
                "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2"
            }
        }
    })
}

fn create_job(body: Value) -> Request {
    Request::new("POST", JOBS)
        .query("jobId", "weir-etl")
        .body(body)
}

fn refused(service: &str, request: &Request) -> GoogleError {
    match catalog().check_request(service, request) {
        Ok(accepted) => panic!("{request:?} was accepted as {}", accepted.method_id),
        Err(e) => e,
    }
}

#[test]
fn a_cloud_run_job_create_with_a_realistic_body_is_accepted() {
    let accepted = catalog().check_request(RUN, &create_job(job())).unwrap();
    assert_eq!(accepted.method_id, "run.projects.locations.jobs.create");
    assert_eq!(accepted.warnings, Vec::<String>::new());
}

#[test]
fn an_unknown_body_field_is_a_400_naming_it_as_google_does() {
    let mut body = job();
    body["template"]["template"]["containers"][0]["memoryLimit"] = json!("2Gi");
    let e = refused(RUN, &create_job(body));
    let expected = "Invalid JSON payload received. Unknown name \"memoryLimit\" at \
                    'job.template.template.containers[0]': Cannot find field.";
    assert_eq!(
        e.to_json(),
        json!({"error": {
            "code": 400,
            "message": expected,
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "job.template.template.containers[0]", "description": expected}]
            }]
        }})
    );
}

#[test]
fn every_unknown_field_is_named_not_just_the_first() {
    let mut body = job();
    body["cpu"] = json!(1);
    body["template"]["memory"] = json!("1Gi");
    let e = refused(RUN, &create_job(body));
    assert_eq!(e.violations.len(), 2, "{e}");
    assert!(e.message.contains("Unknown name \"cpu\" at 'job'"), "{e}");
    assert!(
        e.message
            .contains("Unknown name \"memory\" at 'job.template'"),
        "{e}"
    );
}

#[test]
fn a_wrong_enum_value_is_refused_with_the_allowed_ones() {
    let mut body = job();
    body["template"]["template"]["executionEnvironment"] = json!("GEN3");
    let e = refused(RUN, &create_job(body));
    assert_eq!(e.code, 400);
    assert!(
        e.message.starts_with(
            "Invalid value at 'job.template.template.execution_environment' (TYPE_ENUM), \"GEN3\": expected one of"
        ),
        "{e}"
    );
    assert!(e.message.contains("EXECUTION_ENVIRONMENT_GEN2"), "{e}");
}

#[test]
fn an_enum_sent_as_its_number_is_refused() {
    let mut body = job();
    body["launchStage"] = json!(7);
    let e = refused(RUN, &create_job(body));
    assert!(e.message.contains("'job.launch_stage'"), "{e}");
}

#[test]
fn wrong_types_are_refused() {
    for (pointer, value, location, kind) in [
        (
            "/template/taskCount",
            json!("many"),
            "job.template.task_count",
            "TYPE_INT32",
        ),
        (
            "/template/taskCount",
            json!(1.5),
            "job.template.task_count",
            "TYPE_INT32",
        ),
        (
            "/template/template/maxRetries",
            json!(true),
            "job.template.template.max_retries",
            "TYPE_INT32",
        ),
        (
            "/template/template/timeout",
            json!(3600),
            "job.template.template.timeout",
            "TYPE_STRING",
        ),
        (
            "/template/template/timeout",
            json!("1h"),
            "job.template.template.timeout",
            "TYPE_STRING",
        ),
        (
            "/template/template/gpuZonalRedundancyDisabled",
            json!("true"),
            "job.template.template.gpu_zonal_redundancy_disabled",
            "TYPE_BOOL",
        ),
        (
            "/labels",
            json!(["managed-by"]),
            "job.labels",
            "TYPE_MESSAGE",
        ),
        (
            "/template/template/containers",
            json!({"image": "x"}),
            "job.template.template.containers",
            "TYPE_LIST",
        ),
    ] {
        let mut body = job();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent).unwrap()[field] = value.clone();
        let e = refused(RUN, &create_job(body));
        assert!(
            e.message
                .starts_with(&format!("Invalid value at '{location}' ({kind}), {value}")),
            "{pointer} = {value}: {e}"
        );
    }
}

#[test]
fn integers_may_be_sent_as_strings_as_proto3_json_allows() {
    let mut body = job();
    body["template"]["taskCount"] = json!("3");
    catalog().check_request(RUN, &create_job(body)).unwrap();
}

#[test]
fn an_undocumented_query_parameter_is_refused_and_standard_ones_are_not() {
    let request = create_job(job()).query("jobName", "x");
    let e = refused(RUN, &request);
    assert!(
        e.message
            .contains("Unknown name \"jobName\": Cannot bind query parameter"),
        "{e}"
    );
    let standard = create_job(job())
        .query("alt", "json")
        .query("prettyPrint", "false")
        .query("fields", "name,done")
        .query("$.xgafv", "2")
        .query("quotaUser", "ci");
    catalog().check_request(RUN, &standard).unwrap();
}

#[test]
fn query_parameters_are_held_to_their_types() {
    let e = refused(RUN, &create_job(job()).query("validateOnly", "yes"));
    assert!(
        e.message
            .contains("Invalid value at 'validateOnly' (TYPE_BOOL), \"yes\""),
        "{e}"
    );
    let e = refused(RUN, &create_job(job()).query("alt", "xml"));
    assert!(e.message.contains("'alt' (TYPE_ENUM)"), "{e}");
    let e = refused(
        RUN,
        &create_job(job()).query("jobId", "a").query("jobId", "b"),
    );
    assert!(e.message.contains("'jobId' is not repeated"), "{e}");
}

#[test]
fn an_unknown_path_or_method_is_refused() {
    let e = refused(
        RUN,
        &Request::new("POST", "/v2/projects/p/locations/us-central1/pipelines"),
    );
    assert_eq!((e.code, e.status), (404, "NOT_FOUND"), "{e}");
    let e = refused(
        RUN,
        &Request::new("PUT", "/v2/projects/p/locations/us-central1/jobs/j"),
    );
    assert_eq!(e.code, 404);
    assert!(
        e.message
            .contains("it is documented for DELETE, GET, PATCH"),
        "{e}"
    );
    let e = refused("run.example.com", &create_job(job()));
    assert!(e.message.contains("no discovery document"), "{e}");
}

#[test]
fn the_most_specific_route_wins() {
    let run = Request::new("POST", "/v2/projects/p/locations/us-central1/jobs/j:run");
    assert_eq!(
        catalog().check_request(RUN, &run).unwrap().method_id,
        "run.projects.locations.jobs.run"
    );
    let get = Request::new("GET", "/v2/projects/p/locations/us-central1/jobs/j");
    assert_eq!(
        catalog().check_request(RUN, &get).unwrap().method_id,
        "run.projects.locations.jobs.get"
    );
}

#[test]
fn a_body_where_the_method_takes_none_is_refused() {
    let delete = Request::new("DELETE", "/v2/projects/p/locations/us-central1/jobs/j")
        .body(json!({"force": true}));
    let e = refused(RUN, &delete);
    assert!(e.message.contains("takes no request body"), "{e}");
}

#[test]
fn output_only_fields_in_a_request_are_warnings() {
    let mut body = job();
    body["createTime"] = json!("2026-01-02T03:04:05Z");
    let accepted = catalog().check_request(RUN, &create_job(body)).unwrap();
    assert_eq!(
        accepted.warnings,
        vec!["'job.create_time' is output only: Google ignores it in a request".to_owned()]
    );
}

fn instance() -> Value {
    json!({
        "name": "weir-scheduler",
        "machineType": "zones/us-central1-a/machineTypes/e2-small",
        "labels": {"managed-by": "weir"},
        "disks": [{"boot": true, "autoDelete": true, "initializeParams": {
            "sourceImage": "projects/cos-cloud/global/images/family/cos-stable", "diskSizeGb": "10"}}],
        "networkInterfaces": [{"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}],
        "metadata": {"items": [{"key": "startup-script", "value": "docker run mageai/mageai:0.9.80"}]},
        "serviceAccounts": [{"email": "weir-scheduler@p.iam.gserviceaccount.com",
                             "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    })
}

#[test]
fn a_compute_instance_insert_with_a_request_id_is_accepted() {
    let request = Request::new(
        "POST",
        "/compute/v1/projects/p/zones/us-central1-a/instances",
    )
    .query("requestId", "6f1c2d9e-0000-4000-8000-000000000001")
    .body(instance());
    assert_eq!(
        catalog()
            .check_request(COMPUTE, &request)
            .unwrap()
            .method_id,
        "compute.instances.insert"
    );
}

#[test]
fn a_compute_instance_insert_is_held_to_path_patterns_and_required_fields() {
    let bad_zone =
        Request::new("POST", "/compute/v1/projects/p/zones/US_CENTRAL/instances").body(instance());
    let e = refused(COMPUTE, &bad_zone);
    assert!(
        e.message.contains("path parameter 'zone': \"US_CENTRAL\""),
        "{e}"
    );
    let mut nameless = instance();
    nameless.as_object_mut().unwrap().remove("name");
    let request = Request::new(
        "POST",
        "/compute/v1/projects/p/zones/us-central1-a/instances",
    )
    .body(nameless);
    let e = refused(COMPUTE, &request);
    assert!(
        e.message
            .contains("Required field 'instance.name' not specified"),
        "{e}"
    );
    let mut size = instance();
    size["disks"][0]["initializeParams"]["diskSizeGb"] = json!("ten");
    let request = Request::new(
        "POST",
        "/compute/v1/projects/p/zones/us-central1-a/instances",
    )
    .body(size);
    let e = refused(COMPUTE, &request);
    assert!(
        e.message
            .contains("(TYPE_INT64), \"ten\": expected a 64-bit integer"),
        "{e}"
    );
}

fn sql_instance(edition: &str) -> Request {
    Request::new("POST", "/v1/projects/p/instances").body(json!({
        "name": "weir-db",
        "region": "us-central1",
        "databaseVersion": "POSTGRES_16",
        "settings": {
            "tier": "db-f1-micro",
            "edition": edition,
            "availabilityType": "ZONAL",
            "userLabels": {"managed-by": "weir"},
            "ipConfiguration": {"ipv4Enabled": true},
            "backupConfiguration": {"enabled": true, "startTime": "03:00"}
        }
    }))
}

#[test]
fn a_cloud_sql_insert_takes_the_enterprise_edition_and_refuses_others() {
    let accepted = catalog()
        .check_request(SQL, &sql_instance("ENTERPRISE"))
        .unwrap();
    assert_eq!(accepted.method_id, "sql.instances.insert");
    let e = refused(SQL, &sql_instance("FOO"));
    assert!(
        e.message
            .contains("Invalid value at 'database_instance.settings.edition' (TYPE_ENUM), \"FOO\""),
        "{e}"
    );
}

fn bucket() -> Value {
    json!({
        "name": "weir-p-mage",
        "location": "US-CENTRAL1",
        "labels": {"managed-by": "weir"},
        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"}
    })
}

#[test]
fn a_storage_bucket_insert_is_accepted_and_needs_its_project() {
    let request = Request::new("POST", "/storage/v1/b")
        .query("project", "p")
        .body(bucket());
    assert_eq!(
        catalog()
            .check_request(STORAGE, &request)
            .unwrap()
            .method_id,
        "storage.buckets.insert"
    );
    let e = refused(
        STORAGE,
        &Request::new("POST", "/storage/v1/b").body(bucket()),
    );
    assert!(
        e.message
            .contains("Required parameter 'project' is missing"),
        "{e}"
    );
}

fn operation_response() -> Value {
    json!({
        "name": "projects/p/locations/us-central1/operations/op-1",
        "done": false,
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Job", "name": "projects/p/locations/us-central1/jobs/weir-etl"}
    })
}

#[test]
fn a_response_may_use_only_documented_fields() {
    let id = "run.projects.locations.jobs.create";
    catalog()
        .check_response(RUN, id, 200, Some(&operation_response()))
        .unwrap();
    let mut extra = operation_response();
    extra["progress"] = json!(50);
    let violations = catalog()
        .check_response(RUN, id, 200, Some(&extra))
        .unwrap_err();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0]
            .description
            .contains("Unknown name \"progress\""),
        "{violations:?}"
    );
    // An error answer must be Google's error shape.
    let error = refused(RUN, &create_job(json!({"x": 1}))).to_json();
    catalog()
        .check_response(RUN, id, 400, Some(&error))
        .unwrap();
    catalog()
        .check_response(RUN, id, 409, Some(&json!({"message": "exists"})))
        .unwrap_err();
}

fn exchange(body: Value, status: u16, response: Value) -> Exchange {
    Exchange {
        service: RUN.into(),
        method: "POST".into(),
        path: JOBS.into(),
        query: vec![("jobId".into(), "weir-etl".into())],
        body: Some(body),
        status,
        response: Some(response),
    }
}

#[test]
fn a_record_round_trips_with_repeated_query_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.jsonl");
    let mut first = exchange(job(), 200, operation_response());
    first.query.push(("fields".into(), "name".into()));
    first.query.push(("fields".into(), "done".into()));
    record::append(&path, &first).unwrap();
    record::append(&path, &exchange(job(), 200, operation_response())).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        line["query"],
        json!({"jobId": "weir-etl", "fields": ["name", "done"]})
    );
    assert_eq!(line["service"], json!(RUN));
    assert_eq!(
        record::read(&path).unwrap(),
        vec![first, exchange(job(), 200, operation_response())]
    );
}

#[test]
fn a_record_is_valid_only_when_every_exchange_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.jsonl");
    record::append(&path, &exchange(job(), 200, operation_response())).unwrap();
    let report = record::validate_file(&path, catalog()).unwrap();
    assert_eq!(report.exchanges, 1);

    let mut bad = job();
    bad["memoryLimit"] = json!("2Gi");
    record::append(&path, &exchange(bad, 200, operation_response())).unwrap();
    let mut bad_answer = operation_response();
    bad_answer["progress"] = json!(1);
    record::append(&path, &exchange(job(), 200, bad_answer)).unwrap();
    let problems = record::validate_file(&path, catalog()).unwrap_err();
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![2, 3], "{problems:?}");
    assert!(
        problems[0].problem.contains("Unknown name \"memoryLimit\""),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].problem.contains("Unknown name \"progress\""),
        "{}",
        problems[1]
    );
}

#[test]
fn a_record_line_that_is_not_an_exchange_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.jsonl");
    record::append(&path, &exchange(job(), 200, operation_response())).unwrap();
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap() + "{\"service\": 1}\n",
    )
    .unwrap();
    let problems = record::validate_file(&path, catalog()).unwrap_err();
    assert_eq!(problems[0].line, 2, "{problems:?}");
}

#[test]
fn every_required_document_loads_and_resolves_methods() {
    for doc in catalog().documents() {
        assert!(doc.method_ids().count() > 3, "{} has few methods", doc.id);
    }
    let hosts: Vec<&str> = catalog()
        .documents()
        .iter()
        .map(|d| d.host.as_str())
        .collect();
    for host in [
        RUN,
        COMPUTE,
        SQL,
        STORAGE,
        "secretmanager.googleapis.com",
        "serviceusage.googleapis.com",
        "iam.googleapis.com",
        "cloudresourcemanager.googleapis.com",
    ] {
        assert!(hosts.contains(&host), "{host} missing from {hosts:?}");
    }
}

#[test]
fn the_other_apis_weir_calls_resolve() {
    for (service, request, id) in [
        (
            "serviceusage.googleapis.com",
            Request::new("POST", "/v1/projects/p/services/run.googleapis.com:enable"),
            "serviceusage.services.enable",
        ),
        (
            "secretmanager.googleapis.com",
            Request::new("POST", "/v1/projects/p/secrets")
                .query("secretId", "weir-db-password")
                .body(json!({"replication": {"automatic": {}}, "labels": {"managed-by": "weir"}})),
            "secretmanager.projects.secrets.create",
        ),
        (
            "iam.googleapis.com",
            Request::new("POST", "/v1/projects/p/serviceAccounts").body(
                json!({"accountId": "weir-jobs", "serviceAccount": {"displayName": "weir jobs"}}),
            ),
            "iam.projects.serviceAccounts.create",
        ),
        (
            "cloudresourcemanager.googleapis.com",
            Request::new("POST", "/v3/projects/p:getIamPolicy")
                .body(json!({"options": {"requestedPolicyVersion": 3}})),
            "cloudresourcemanager.projects.getIamPolicy",
        ),
    ] {
        let accepted = catalog()
            .check_request(service, &request)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(accepted.method_id, id);
        assert_eq!(
            catalog().service_of(&request.method, &request.path),
            Ok(service)
        );
    }
}

#[test]
fn secrets_never_reach_the_record_and_it_still_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.jsonl");
    let password = "hunter2-db-pass";
    // base64 of the password, and its CRC32C.
    let data = "aHVudGVyMi1kYi1wYXNz";
    record::append(&path, &Exchange {
        service: "secretmanager.googleapis.com".into(),
        method: "POST".into(),
        path: "/v1/projects/p/secrets/weir-db-password:addVersion".into(),
        query: vec![],
        body: Some(json!({"payload": {"data": data, "dataCrc32c": "2718281828"}})),
        status: 200,
        response: Some(json!({"name": "projects/p/secrets/weir-db-password/versions/1", "state": "ENABLED"})),
    })
    .unwrap();
    record::append(&path, &Exchange {
        service: SQL.into(),
        method: "POST".into(),
        path: "/v1/projects/p/instances/weir-db/users".into(),
        query: vec![],
        body: Some(json!({"name": "mage", "password": password})),
        status: 200,
        response: Some(json!({"kind": "sql#operation", "status": "PENDING", "operationType": "CREATE_USER"})),
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [password, data, "2718281828"] {
        assert!(!text.contains(secret), "{secret} is in the record:\n{text}");
    }
    assert_eq!(
        record::validate_file(&path, catalog()).unwrap().exchanges,
        2
    );
}

#[test]
fn the_service_of_a_call_is_found_from_its_path_alone() {
    let job = create_job(job());
    assert_eq!(catalog().service_of(&job.method, &job.path), Ok(RUN));
    assert_eq!(
        catalog().service_of("POST", "/compute/v1/projects/p/zones/z/instances"),
        Ok(COMPUTE)
    );
    assert_eq!(
        catalog().service_of("POST", "/v1/projects/p/instances"),
        Ok(SQL)
    );
    assert_eq!(catalog().service_of("POST", "/storage/v1/b"), Ok(STORAGE));
    assert_eq!(catalog().service_of("GET", "/nowhere"), Err(vec![]));
}

#[test]
fn dot_segments_and_empty_segments_in_a_path_are_refused() {
    for path in [
        "/v2/projects/p/locations/us-central1/jobs/..",
        "/v2/projects/p/locations/us-central1/jobs/%2e%2E",
        "/v2/projects/./locations/us-central1/jobs/j",
        "/v2/projects/p/locations//jobs/j",
    ] {
        let e = refused(RUN, &Request::new("GET", path));
        assert_eq!(e.code, 400, "{path}: {e}");
        assert!(e.message.contains("is not allowed"), "{path}: {e}");
    }
}

mod hostile {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{JOBS, RUN, catalog, job};
    use crate::validate::Request;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    "(template|containers|env|name|value|[a-zA-Z]{1,8}|.{0,6})",
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_path_and_query_get_an_answer_never_a_panic(
            method in "(GET|POST|PATCH|DELETE|PUT|é)",
            path in "(/v2/projects/[^/]{0,4}/locations/.{0,6}/jobs.{0,8}|(/v2|/compute/v1|/storage/v1)?/([a-z0-9]{1,4}|%|%2[eEfF]|[.][.]|/|:|[{]|.){0,12}|/compute/v1/projects/.{0,10}/zones/.{0,6}/instances)",
            query in prop::collection::vec((".{0,6}", ".{0,6}"), 0..4),
        ) {
            let request = Request { method, path, query, body: None };
            let _ = catalog().check_request(RUN, &request);
            let _ = catalog().check_request("compute.googleapis.com", &request);
            let _ = catalog().service_of(&request.method, &request.path);
        }

        #[test]
        fn any_body_gets_an_answer_never_a_panic(
            value in json_value(),
            pointer in "(|/template|/template/template|/template/template/containers/0|/labels)",
            key in "(taskCount|timeout|env|resources|launchStage|[a-z]{1,6})",
        ) {
            let mut body = job();
            if let Some(Value::Object(target)) = body.pointer_mut(&pointer) {
                target.insert(key, value.clone());
            }
            let request = Request::new("POST", JOBS).body(body);
            if let Err(e) = catalog().check_request(RUN, &request) {
                prop_assert!(!e.violations.is_empty());
                prop_assert_eq!(e.code, 400);
            }
            let _ = catalog().check_response(RUN, "run.projects.locations.jobs.create", 200, Some(&value));
        }
    }
}

pub(crate) mod served {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    use serde_json::{Value, json};

    use super::{JOBS, job};
    use crate::discovery::{Catalog, documents_dir_for_tests};
    use crate::record;
    use crate::server::{Running, Sandbox};

    fn start(record: Option<std::path::PathBuf>) -> Running {
        let dir = documents_dir_for_tests().unwrap_or_else(|e| panic!("{e}"));
        let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut sandbox = Sandbox::new(catalog);
        sandbox.record = record;
        sandbox.spawn("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    /// One HTTP/1.1 exchange over a fresh connection: (status, JSON body).
    pub(crate) fn call(
        addr: SocketAddr,
        host: &str,
        method: &str,
        target: &str,
        body: &str,
    ) -> (u16, Value) {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let (_, json) = answer.split_once("\r\n\r\n").unwrap();
        (status, serde_json::from_str(json).unwrap())
    }

    #[test]
    fn the_server_refuses_as_google_does_and_records_every_exchange() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record.jsonl");
        let sandbox = start(Some(file.clone()));
        let addr = sandbox.addr();
        let target = format!("{JOBS}?jobId=weir-etl");

        let (status, answer) = call(addr, "localhost", "POST", &target, &job().to_string());
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["done"], json!(true), "{answer}");

        let mut bad = job();
        bad["memoryLimit"] = json!("2Gi");
        let (status, answer) = call(addr, "localhost", "POST", &target, &bad.to_string());
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["error"]["message"],
            json!(
                "Invalid JSON payload received. Unknown name \"memoryLimit\" at 'job': Cannot find field."
            )
        );

        let (status, answer) = call(addr, "localhost", "POST", &target, "{not json");
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid JSON payload received.")
        );

        let (status, _) = call(addr, "localhost", "GET", "/v9/nothing/here", "");
        assert_eq!(status, 404);

        // The Host header names the API, as Google's client libraries send it.
        let bucket = json!({"name": "weir-p-mage"}).to_string();
        let (status, answer) = call(
            addr,
            "storage.googleapis.com",
            "POST",
            "/storage/v1/b?project=p",
            &bucket,
        );
        assert_eq!(status, 501, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("storage.buckets.insert")
        );

        drop(sandbox);
        let exchanges = record::read(&file).unwrap();
        let seen: Vec<(&str, u16)> = exchanges
            .iter()
            .map(|e| (e.service.as_str(), e.status))
            .collect();
        // Every exchange is recorded, so that checking the record catches a bad one.
        assert_eq!(
            seen,
            vec![
                ("run.googleapis.com", 200),
                ("run.googleapis.com", 400),
                ("run.googleapis.com", 400),
                ("localhost", 404),
                ("storage.googleapis.com", 501)
            ]
        );
        assert_eq!(exchanges[2].body, Some(json!("{not json")));
        let problems = record::validate_file(&file, super::catalog()).unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4], "{problems:?}");
        assert_eq!(
            exchanges[0].query,
            vec![("jobId".to_owned(), "weir-etl".to_owned())]
        );
        assert_eq!(exchanges[0].body, Some(job()));
    }

    #[test]
    fn cloud_run_jobs_are_kept_with_etags_operations_and_googles_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record.jsonl");
        let sandbox = start(Some(file.clone()));
        let addr = sandbox.addr();
        let name = format!("{JOBS}/weir-etl");
        let create = format!("{JOBS}?jobId=weir-etl");

        let (status, op) = call(addr, "localhost", "POST", &create, &job().to_string());
        assert_eq!(status, 200, "{op}");
        assert_eq!(op["done"], json!(true));
        assert_eq!(op["response"]["name"], json!(&name[4..]));
        let (status, again) = call(addr, "localhost", "POST", &create, &job().to_string());
        assert_eq!(
            (status, &again["error"]["status"]),
            (409, &json!("ALREADY_EXISTS"))
        );

        let (status, live) = call(addr, "localhost", "GET", &name, "");
        assert_eq!(status, 200, "{live}");
        for field in ["uid", "etag", "createTime", "updateTime", "creator"] {
            assert!(live[field].is_string(), "{field} missing in {live}");
        }
        assert_eq!(live["generation"], json!("1"));
        assert_eq!(live["template"], job()["template"]);
        let (status, polled) = call(
            addr,
            "localhost",
            "GET",
            &format!("/v2/{}", op["name"].as_str().unwrap()),
            "",
        );
        assert_eq!((status, &polled["done"]), (200, &json!(true)), "{polled}");

        let mut stale = job();
        stale["etag"] = json!("\"not-it\"");
        let (status, answer) = call(addr, "localhost", "PATCH", &name, &stale.to_string());
        assert_eq!(status, 412, "{answer}");
        let mut fresh = job();
        fresh["etag"] = live["etag"].clone();
        fresh["template"]["template"]["maxRetries"] = json!(5);
        let (status, answer) = call(addr, "localhost", "PATCH", &name, &fresh.to_string());
        assert_eq!(status, 200, "{answer}");
        let (_, updated) = call(addr, "localhost", "GET", &name, "");
        assert_eq!(updated["generation"], json!("2"));
        assert_ne!(updated["etag"], live["etag"]);
        assert_eq!(updated["uid"], live["uid"]);
        assert_eq!(updated["template"]["template"]["maxRetries"], json!(5));

        let (status, list) = call(addr, "localhost", "GET", JOBS, "");
        assert_eq!(status, 200);
        assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1), "{list}");
        let (status, _) = call(addr, "localhost", "DELETE", &name, "");
        assert_eq!(status, 200);
        let (status, gone) = call(addr, "localhost", "GET", &name, "");
        assert_eq!(
            (status, &gone["error"]["status"]),
            (404, &json!("NOT_FOUND"))
        );
        let (status, _) = call(addr, "localhost", "DELETE", &name, "");
        assert_eq!(status, 404);

        drop(sandbox);
        // Every answer, errors included, fits the documents.
        let report = record::validate_file(&file, super::catalog());
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn an_operation_with_a_delay_is_pending_then_done_and_the_job_reconciles_meanwhile() {
        let dir = documents_dir_for_tests().unwrap_or_else(|e| panic!("{e}"));
        let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        let sandbox = Sandbox::new(catalog)
            .behaviour(crate::run_jobs::Behaviour {
                operation_delay: std::time::Duration::from_millis(400),
                ..Default::default()
            })
            .spawn("127.0.0.1:0".parse().unwrap())
            .unwrap();
        let addr = sandbox.addr();
        let name = format!("{JOBS}/weir-etl");
        let (status, op) = call(
            addr,
            "localhost",
            "POST",
            &format!("{JOBS}?jobId=weir-etl"),
            &job().to_string(),
        );
        assert_eq!(status, 200, "{op}");
        assert_eq!(op["done"], json!(false), "{op}");
        assert!(op.get("response").is_none(), "{op}");
        let (_, live) = call(addr, "localhost", "GET", &name, "");
        assert_eq!(live["reconciling"], json!(true), "{live}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let op_path = format!("/v2/{}", op["name"].as_str().unwrap());
        let (status, done) = call(
            addr,
            "localhost",
            "POST",
            &format!("{op_path}:wait"),
            r#"{"timeout": "1s"}"#,
        );
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["done"], json!(true), "{done}");
        let (status, done) = call(addr, "localhost", "GET", &op_path, "");
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["done"], json!(true), "{done}");
        assert_eq!(done["response"]["uid"], live["uid"], "{done}");
        let (_, live) = call(addr, "localhost", "GET", &name, "");
        assert_eq!(live["reconciling"], json!(false), "{live}");
    }

    #[test]
    fn secrets_and_versions_are_kept_with_etags_and_googles_errors_and_payloads_stay_out_of_the_record()
     {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("record.jsonl");
        let sandbox = start(Some(file.clone()));
        let addr = sandbox.addr();
        let host = "secretmanager.googleapis.com";
        let secret = "/v1/projects/p/secrets/weir-db";
        let body = json!({"replication": {"automatic": {}}, "labels": {"managed-by": "weir"}});

        let create = "/v1/projects/p/secrets?secretId=weir-db";
        let (status, created) = call(addr, host, "POST", create, &body.to_string());
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["name"], json!("projects/p/secrets/weir-db"));
        assert!(created["etag"].is_string() && created["createTime"].is_string());
        let (status, again) = call(addr, host, "POST", create, &body.to_string());
        assert_eq!(
            (status, &again["error"]["status"]),
            (409, &json!("ALREADY_EXISTS"))
        );

        // A stale etag is refused; the right one updates and changes the etag.
        let patch = format!("{secret}?updateMask=labels");
        let stale = json!({"labels": {"a": "b"}, "etag": "\"stale\""});
        let (status, answer) = call(addr, host, "PATCH", &patch, &stale.to_string());
        assert_eq!(
            (status, &answer["error"]["status"]),
            (409, &json!("ABORTED"))
        );
        let fresh = json!({"labels": {"a": "b"}, "etag": created["etag"]});
        let (status, patched) = call(addr, host, "PATCH", &patch, &fresh.to_string());
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["labels"], json!({"a": "b"}));
        assert_ne!(patched["etag"], created["etag"]);

        // "aHVudGVyMg==" is base64 of "hunter2".
        let add = format!("{secret}:addVersion");
        let payload = json!({"payload": {"data": "aHVudGVyMg=="}}).to_string();
        let (status, v1) = call(addr, host, "POST", &add, &payload);
        assert_eq!(status, 200, "{v1}");
        assert_eq!(v1["name"], json!("projects/p/secrets/weir-db/versions/1"));
        assert_eq!(v1["state"], json!("ENABLED"));
        let (status, got) = call(addr, host, "GET", &format!("{secret}/versions/1"), "");
        assert_eq!((status, &got["name"]), (200, &v1["name"]));
        let latest = format!("{secret}/versions/latest:access");
        let (status, access) = call(addr, host, "GET", &latest, "");
        assert_eq!(status, 200, "{access}");
        assert_eq!(access["payload"]["data"], json!("aHVudGVyMg=="));
        let missing = "/v1/projects/p/secrets/nope:addVersion";
        let (status, _) = call(addr, host, "POST", missing, &payload);
        assert_eq!(status, 404);

        let destroy = format!("{secret}/versions/1:destroy");
        let (status, destroyed) = call(addr, host, "POST", &destroy, "{}");
        assert_eq!((status, &destroyed["state"]), (200, &json!("DESTROYED")));
        let (status, _) = call(addr, host, "GET", &latest, "");
        assert_eq!(status, 400);
        let (status, _) = call(addr, host, "POST", &destroy, "{}");
        assert_eq!(status, 400);

        let (status, _) = call(
            addr,
            host,
            "DELETE",
            &format!("{secret}?etag=%22stale%22"),
            "",
        );
        assert_eq!(status, 409);
        let (status, _) = call(addr, host, "DELETE", secret, "");
        assert_eq!(status, 200);
        let (status, gone) = call(addr, host, "GET", secret, "");
        assert_eq!(
            (status, &gone["error"]["status"]),
            (404, &json!("NOT_FOUND"))
        );
        let (status, _) = call(addr, host, "GET", &format!("{secret}/versions/1"), "");
        assert_eq!(status, 404);

        drop(sandbox);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("aHVudGVyMg=="), "a payload is in the record");
        let report = record::validate_file(&file, super::catalog());
        assert!(report.is_ok(), "{report:?}");
    }
}
