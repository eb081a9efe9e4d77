//! The sandbox's Cloud Storage front: requests whose path starts with `/storage/v1/`,
//! `/upload/storage/v1/` or `/download/storage/v1/` are held to `storage.v1.json` and recorded
//! like every other API's (service `storage.googleapis.com`), then forwarded unchanged to a
//! storage emulator (`fake-gcs-server`, set with [`Sandbox::storage_upstream`] or
//! `weir-sandbox --storage-upstream URL`), which keeps the buckets and their objects.
//!
//! Media passes through byte for byte: an upload's body and a download's answer are never
//! parsed as JSON (the record holds a multipart upload's JSON metadata part, not its media, and
//! no body for a download's answer).
//!
//! What the emulator lacks, the front serves itself, in memory, so that a client sees what
//! Google would answer:
//! - bucket IAM policies (`storage.buckets.getIamPolicy`, `setIamPolicy` with its etag check,
//!   `testIamPermissions`): the emulator answers 404 to every `/iam` path. A new bucket's
//!   policy is Google's default (the project's owners and editors as legacy bucket owners,
//!   its viewers as legacy bucket readers);
//! - the bucket fields the emulator drops (it keeps only the name, versioning and the default
//!   event-based hold): `labels`, `location` (with `locationType`), `storageClass` and
//!   `iamConfiguration`, kept from the create and the patches (labels patched key by key, a
//!   `null` removing one) with Google's defaults filled in, and merged into the emulator's
//!   answers;
//! - metagenerations: the emulator never counts them, so the front does (every bucket patch,
//!   update or IAM policy change adds one), answers `etag` and `metageneration` from it, and
//!   checks `ifMetagenerationMatch` / `ifMetagenerationNotMatch` itself (412);
//! - a non-empty bucket's delete is Google's 409 (the emulator says 412).
//!
//! Links in the emulator's JSON answers (`selfLink`, `mediaLink`) are rewritten to the
//! front's own address, so that following them stays inside the sandbox.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::record::Exchange;
use crate::server::Sandbox;
use crate::validate::{Request, parse_query};

/// The service the front answers for.
pub const SERVICE: &str = "storage.googleapis.com";

/// The path prefixes the front serves.
const PREFIXES: [&str; 3] = [
    "/storage/v1/",
    "/upload/storage/v1/",
    "/download/storage/v1/",
];

/// The bucket fields the emulator drops and the front keeps.
const KEPT_FIELDS: [&str; 4] = ["labels", "location", "storageClass", "iamConfiguration"];

/// Headers that belong to one connection, not to the message: never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// How long uniform bucket-level access stays reversible after it is enabled (Google: 90 days).
const UBLA_LOCK_DAYS: i64 = 90;

/// The storage front's configuration and what it keeps.
#[derive(Default)]
pub struct Front {
    /// The emulator's base URL (`http://host:port`, no trailing slash), when set.
    upstream: Option<String>,
    /// What the front keeps of each bucket, by name.
    buckets: Mutex<BTreeMap<String, Kept>>,
}

/// What the front keeps of one bucket.
#[derive(Clone, Debug)]
struct Kept {
    /// The [`KEPT_FIELDS`] present, with Google's defaults filled in.
    fields: Map<String, Value>,
    metageneration: u64,
    /// When the bucket's metadata last changed (RFC 3339).
    updated: String,
    /// The bindings of its IAM policy.
    bindings: Vec<Value>,
}

impl Sandbox {
    /// Serves Cloud Storage by forwarding to the emulator at `url` (`http://host:port`).
    pub fn storage_upstream(mut self, url: &str) -> Sandbox {
        self.storage.upstream = Some(url.trim_end_matches('/').to_owned());
        self
    }
}

/// Whether the storage front serves `path`.
pub(crate) fn serves(path: &str) -> bool {
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// An HTTP answer: status, headers worth passing on, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        Answer {
            status,
            headers,
            body: Bytes::from(value.to_string()),
        }
    }

    fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        *response.headers_mut() = self.headers;
        response
    }
}

/// Google's error body. `reason` is the JSON API's `errors[].reason`.
fn error(code: u16, reason: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message,
        "errors": [{"domain": "global", "reason": reason, "message": message}]}})
}

/// `(status, JSON)` as an answer whose record holds the JSON.
fn google(status: u16, value: Value) -> (Answer, Option<Value>) {
    (Answer::json(status, &value), Some(value))
}

/// Serves one storage request: the exchange to record and the answer to send. `fault` is the
/// injected throttling or outage answer, drawn once the request is found valid.
pub(crate) async fn answer(
    sandbox: &Sandbox,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    fault: impl FnOnce() -> Option<(u16, Value)>,
) -> (Exchange, Response<Full<Bytes>>) {
    let path = parts.uri.path().to_owned();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let method = parts.method.as_str().to_owned();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let json_body = json_of_request(&path, &content_type, &body);
    let request = Request {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: json_body.as_ref().ok().cloned().flatten(),
    };
    let (answer, response) = match json_body {
        Err(problem) => google(400, error(400, "invalid", &problem)),
        Ok(_) => match sandbox.catalog.check_request(SERVICE, &request) {
            Err(refusal) => google(refusal.code, refusal.to_json()),
            Ok(accepted) => match fault() {
                Some((status, value)) => google(status, value),
                None => {
                    let served = sandbox
                        .storage
                        .serve(&accepted.method_id, &request, parts, body)
                        .await;
                    checked(sandbox, &accepted.method_id, served)
                }
            },
        },
    };
    let exchange = Exchange {
        service: SERVICE.to_owned(),
        method: request.method,
        path: request.path,
        query: request.query,
        body: request.body,
        status: answer.status,
        response,
    };
    (exchange, answer.into_response())
}

/// In debug builds, an answer that breaks the method's documented response becomes a 500
/// naming the problems (as the sandbox's own answers do).
fn checked(
    sandbox: &Sandbox,
    method_id: &str,
    (answer, response): (Answer, Option<Value>),
) -> (Answer, Option<Value>) {
    if !cfg!(debug_assertions) || (response.is_none() && answer.status < 400) {
        return (answer, response);
    }
    match sandbox
        .catalog
        .check_response(SERVICE, method_id, answer.status, response.as_ref())
    {
        Ok(()) => (answer, response),
        Err(violations) => {
            let problems: Vec<String> = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect();
            google(
                500,
                error(
                    500,
                    "backendError",
                    &format!(
                        "the sandbox's answer to {method_id} breaks its documented response: {}",
                        problems.join("; ")
                    ),
                ),
            )
        }
    }
}

/// The JSON the request carries, for checking and recording: a JSON API body, or a multipart
/// upload's metadata part. Never the media. `Err` says why a body meant to be JSON is not.
fn json_of_request(path: &str, content_type: &str, body: &[u8]) -> Result<Option<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if path.starts_with("/upload/") {
        let Some(boundary) = multipart_boundary(content_type) else {
            return Ok(None);
        };
        let metadata = first_part(body, &boundary).ok_or_else(|| {
            "Invalid multipart request: no part delimited by its boundary.".to_owned()
        })?;
        return serde_json::from_slice(metadata)
            .map(Some)
            .map_err(|e| format!("Invalid JSON payload received in the metadata part. {e}"));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| format!("Invalid JSON payload received. {e}"))
}

/// The boundary of a `multipart/related` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    parts.find_map(|p| {
        let (name, value) = p.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_owned())
    })
}

/// The body of the first part of a multipart body.
fn first_part<'b>(body: &'b [u8], boundary: &str) -> Option<&'b [u8]> {
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes())? + delimiter.len();
    let rest = &body[start..];
    let headers_end = find(rest, b"\r\n\r\n")? + 4;
    let rest = &rest[headers_end..];
    let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
    Some(&rest[..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bucket a request names (its `bucket` path parameter), decoded.
fn bucket_of(path: &str) -> Option<String> {
    let rest = PREFIXES
        .iter()
        .find_map(|p| path.strip_prefix(p))?
        .strip_prefix("b/")?;
    let raw = rest.split('/').next().filter(|b| !b.is_empty())?;
    Some(crate::discovery::percent_decode(raw))
}

/// Google's bucket etag: the base64 of the metageneration as a protocol buffer field 1.
fn etag(metageneration: u64) -> String {
    let mut bytes = vec![0x08];
    let mut n = metageneration;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            bytes.push(low);
            break;
        }
        bytes.push(low | 0x80);
    }
    BASE64.encode(bytes)
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Google's `locationType` of a location.
fn location_type(location: &str) -> &'static str {
    match location {
        "US" | "EU" | "ASIA" => "multi-region",
        l if l.contains('-') => "region",
        _ => "dual-region",
    }
}

/// The kept fields of `body` (a bucket), for a create or a full update: Google's defaults
/// filled in.
fn kept_of(body: &Value, prior: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut fields = Map::new();
    for key in KEPT_FIELDS {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            fields.insert(key.to_owned(), v.clone());
        }
    }
    settle(&mut fields, prior);
    fields
}

/// Fills in what Google fills in: location in capitals (default `US`), storage class
/// `STANDARD`, the IAM configuration's two spellings of uniform access and its lock time,
/// public access prevention `inherited`; no `labels` when there are none.
fn settle(fields: &mut Map<String, Value>, prior: Option<&Map<String, Value>>) {
    let location = fields
        .get("location")
        .and_then(Value::as_str)
        .unwrap_or("US")
        .to_ascii_uppercase();
    fields.insert("location".into(), json!(location));
    if fields.get("storageClass").is_none_or(Value::is_null) {
        fields.insert("storageClass".into(), json!("STANDARD"));
    }
    let iam = fields
        .entry("iamConfiguration")
        .or_insert_with(|| json!({}));
    if !iam.is_object() {
        *iam = json!({});
    }
    let uniform = iam
        .pointer("/uniformBucketLevelAccess/enabled")
        .or_else(|| iam.pointer("/bucketPolicyOnly/enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut access = json!({"enabled": uniform});
    if uniform {
        let locked = prior
            .and_then(|p| p.get("iamConfiguration"))
            .and_then(|i| i.pointer("/uniformBucketLevelAccess/lockedTime"))
            .cloned()
            .unwrap_or_else(|| json!(rfc3339(now() + chrono::Duration::days(UBLA_LOCK_DAYS))));
        access["lockedTime"] = locked;
    }
    iam["uniformBucketLevelAccess"] = access.clone();
    iam["bucketPolicyOnly"] = access;
    if iam.get("publicAccessPrevention").is_none_or(Value::is_null) {
        iam["publicAccessPrevention"] = json!("inherited");
    }
    let no_labels = fields
        .get("labels")
        .is_some_and(|l| l.as_object().is_none_or(Map::is_empty));
    if no_labels {
        fields.remove("labels");
    }
}

/// RFC 7386 merge patch: what a bucket PATCH does to nested fields (a `null` removes).
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

impl Kept {
    fn new(fields: Map<String, Value>, project: &str) -> Kept {
        let owners = json!([
            format!("projectEditor:{project}"),
            format!("projectOwner:{project}")
        ]);
        Kept {
            fields,
            metageneration: 1,
            updated: rfc3339(now()),
            bindings: vec![
                json!({"role": "roles/storage.legacyBucketOwner", "members": owners}),
                json!({"role": "roles/storage.legacyBucketReader",
                    "members": [format!("projectViewer:{project}")]}),
            ],
        }
    }

    /// A bucket the front did not see created: what the emulator says of it.
    fn adopted(live: &Value) -> Kept {
        let mut kept = Kept::new(kept_of(live, None), "_");
        kept.metageneration = live
            .get("metageneration")
            .and_then(|m| m.as_str().and_then(|s| s.parse().ok()).or(m.as_u64()))
            .unwrap_or(1);
        kept
    }

    fn changed(&mut self) {
        self.metageneration += 1;
        self.updated = rfc3339(now());
    }

    /// The emulator's bucket with what the front keeps.
    fn merge_into(&self, bucket: &mut Value) {
        let Some(fields) = bucket.as_object_mut() else {
            return;
        };
        for key in KEPT_FIELDS {
            fields.remove(key);
        }
        fields.extend(self.fields.clone());
        let location = self
            .fields
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or("US");
        fields.insert("locationType".into(), json!(location_type(location)));
        fields.insert(
            "metageneration".into(),
            json!(self.metageneration.to_string()),
        );
        fields.insert("etag".into(), json!(etag(self.metageneration)));
        fields.insert("updated".into(), json!(self.updated));
    }

    fn policy(&self, bucket: &str) -> Value {
        json!({
            "kind": "storage#policy",
            "resourceId": format!("projects/_/buckets/{bucket}"),
            "version": 1,
            "etag": etag(self.metageneration),
            "bindings": self.bindings,
        })
    }
}

impl Front {
    fn kept(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Kept>> {
        // A poisoned lock only means another request panicked; the map is still whole.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves a request the documents accepted as `method_id`: the answer and the JSON to record.
    async fn serve(
        &self,
        method_id: &str,
        request: &Request,
        parts: &hyper::http::request::Parts,
        body: Bytes,
    ) -> (Answer, Option<Value>) {
        let Some(upstream) = self.upstream.as_deref() else {
            return google(
                501,
                error(
                    501,
                    "notImplemented",
                    &format!(
                        "the request is valid for {method_id}, but the sandbox serves Cloud Storage only in front of a storage emulator: start it with --storage-upstream URL (fake-gcs-server)"
                    ),
                ),
            );
        };
        // The address clients reach the front at, for the links of its answers.
        let front = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"));
        let bucket = bucket_of(&request.path).unwrap_or_default();
        match method_id {
            "storage.buckets.getIamPolicy"
            | "storage.buckets.setIamPolicy"
            | "storage.buckets.testIamPermissions" => {
                return self.iam(upstream, method_id, request, &bucket).await;
            }
            "storage.buckets.get"
            | "storage.buckets.patch"
            | "storage.buckets.update"
            | "storage.buckets.delete" => {
                if let Err(refusal) = self.preconditions(upstream, request, &bucket).await {
                    return refusal;
                }
            }
            _ => {}
        }
        if method_id == "storage.buckets.patch"
            && let Some(refusal) = self.location_change(request, &bucket)
        {
            return refusal;
        }
        let media =
            request.path.starts_with("/download/") || request.query_value("alt") == Some("media");
        let answer = match forward(upstream, parts, body).await {
            Ok(answer) => answer,
            Err(e) => {
                return google(
                    503,
                    error(
                        503,
                        "backendError",
                        &format!("the storage emulator at {upstream} does not answer: {e}"),
                    ),
                );
            }
        };
        let is_json = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if answer.status < 400 && (media || !is_json) {
            // Media, or an empty answer (a delete's 204): passed on as it is.
            return (answer, None);
        }
        let mut value: Value = match serde_json::from_slice(&answer.body) {
            Ok(value) if is_json => value,
            _ => {
                let text = String::from_utf8_lossy(&answer.body).trim().to_owned();
                let status = if answer.status < 400 {
                    502
                } else {
                    answer.status
                };
                return google(status, error(status, "backendError", &text));
            }
        };
        if answer.status < 300 && value.is_null() {
            // The emulator answers a delete `200 null`; Google, `204` and no body.
            self.after(method_id, request, &bucket, &mut value);
            return (Answer::empty(204), None);
        }
        if let Some(front) = &front {
            rewrite_links(&mut value, upstream, front);
        }
        let mut status = answer.status;
        if status < 300 {
            self.after(method_id, request, &bucket, &mut value);
        } else if method_id == "storage.buckets.delete" && status == 412 {
            // Preconditions were checked above: the emulator's 412 is its "not empty".
            status = 409;
            value = error(
                409,
                "conflict",
                "The bucket you tried to delete is not empty.",
            );
        }
        if status == 404 && method_id.starts_with("storage.buckets.") {
            self.kept().remove(&bucket);
        }
        google(status, value)
    }

    /// Keeps what a successful bucket call changed, and merges what is kept into the answer.
    fn after(&self, method_id: &str, request: &Request, bucket: &str, value: &mut Value) {
        let mut buckets = self.kept();
        match method_id {
            "storage.buckets.insert" => {
                let body = request.body.clone().unwrap_or(Value::Null);
                let project = request.query_value("project").unwrap_or("_");
                let name = value
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let kept = Kept::new(kept_of(&body, None), project);
                kept.merge_into(value);
                buckets.insert(name, kept);
            }
            "storage.buckets.patch" | "storage.buckets.update" => {
                let body = request.body.clone().unwrap_or(Value::Null);
                let kept = buckets
                    .entry(bucket.to_owned())
                    .or_insert_with(|| Kept::adopted(value));
                if method_id == "storage.buckets.update" {
                    kept.fields = kept_of(&body, Some(&kept.fields));
                } else {
                    let prior = kept.fields.clone();
                    let mut fields = Value::Object(kept.fields.clone());
                    let mut patch = Map::new();
                    for key in KEPT_FIELDS {
                        if let Some(v) = body.get(key) {
                            patch.insert(key.to_owned(), v.clone());
                        }
                    }
                    // One spelling of uniform access given alone stands for both.
                    if let Some(old) = patch
                        .get_mut("iamConfiguration")
                        .and_then(Value::as_object_mut)
                        && !old.contains_key("uniformBucketLevelAccess")
                        && let Some(bpo) = old.get("bucketPolicyOnly").cloned()
                    {
                        old.insert("uniformBucketLevelAccess".into(), bpo);
                    }
                    merge_patch(&mut fields, &Value::Object(patch));
                    kept.fields = match fields {
                        Value::Object(map) => map,
                        _ => Map::new(),
                    };
                    settle(&mut kept.fields, Some(&prior));
                }
                kept.changed();
                kept.merge_into(value);
            }
            "storage.buckets.get" => {
                if let Some(kept) = buckets.get(bucket) {
                    kept.merge_into(value);
                }
            }
            "storage.buckets.list" => {
                if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
                    for item in items {
                        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                        if let Some(kept) = buckets.get(name) {
                            kept.merge_into(item);
                        }
                    }
                }
            }
            "storage.buckets.delete" => {
                buckets.remove(bucket);
            }
            _ => {}
        }
    }

    /// The bucket as the emulator has it, with what the front keeps (kept from now on);
    /// `Err` is the answer to give instead (404, or the emulator unreachable).
    async fn bucket(&self, upstream: &str, bucket: &str) -> Result<Kept, (Answer, Option<Value>)> {
        if let Some(kept) = self.kept().get(bucket) {
            return Ok(kept.clone());
        }
        let path = format!("/storage/v1/b/{}", encode_segment(bucket));
        let live = get_json(upstream, &path).await.map_err(|e| {
            google(
                503,
                error(
                    503,
                    "backendError",
                    &format!("the storage emulator at {upstream} does not answer: {e}"),
                ),
            )
        })?;
        match live {
            Some(live) => {
                let kept = Kept::adopted(&live);
                self.kept().insert(bucket.to_owned(), kept.clone());
                Ok(kept)
            }
            None => Err(google(
                404,
                error(
                    404,
                    "notFound",
                    &format!("The specified bucket does not exist: {bucket}"),
                ),
            )),
        }
    }

    /// `ifMetagenerationMatch` and `ifMetagenerationNotMatch`, checked against the front's count.
    async fn preconditions(
        &self,
        upstream: &str,
        request: &Request,
        bucket: &str,
    ) -> Result<(), (Answer, Option<Value>)> {
        let wanted = |name: &str| {
            request
                .query_value(name)
                .and_then(|v| v.parse::<u64>().ok())
        };
        let (matching, not_matching) = (
            wanted("ifMetagenerationMatch"),
            wanted("ifMetagenerationNotMatch"),
        );
        if matching.is_none() && not_matching.is_none() {
            return Ok(());
        }
        let kept = self.bucket(upstream, bucket).await?;
        let failed = matching.is_some_and(|m| m != kept.metageneration)
            || not_matching.is_some_and(|m| m == kept.metageneration);
        if failed {
            return Err(google(
                412,
                error(412, "conditionNotMet", "Precondition Failed"),
            ));
        }
        Ok(())
    }

    /// A patch that would move the bucket: Google refuses it.
    fn location_change(&self, request: &Request, bucket: &str) -> Option<(Answer, Option<Value>)> {
        let wanted = request.body.as_ref()?.get("location")?.as_str()?;
        let buckets = self.kept();
        let current = buckets.get(bucket)?.fields.get("location")?.as_str()?;
        (!wanted.eq_ignore_ascii_case(current)).then(|| {
            google(
                400,
                error(
                    400,
                    "invalid",
                    &format!(
                        "The bucket's location cannot be changed (it is {current}, the request says {wanted})."
                    ),
                ),
            )
        })
    }

    /// Bucket IAM policies, which the emulator does not have.
    async fn iam(
        &self,
        upstream: &str,
        method_id: &str,
        request: &Request,
        bucket: &str,
    ) -> (Answer, Option<Value>) {
        if let Err(refusal) = self.bucket(upstream, bucket).await {
            return refusal;
        }
        let mut buckets = self.kept();
        let Some(kept) = buckets.get_mut(bucket) else {
            return google(
                404,
                error(404, "notFound", "The bucket was deleted meanwhile."),
            );
        };
        match method_id {
            "storage.buckets.getIamPolicy" => google(200, kept.policy(bucket)),
            "storage.buckets.setIamPolicy" => {
                let policy = request.body.clone().unwrap_or(Value::Null);
                let sent = policy.get("etag").and_then(Value::as_str);
                if sent.is_some_and(|e| e != etag(kept.metageneration)) {
                    return google(412, error(412, "conditionNotMet", "Precondition Failed"));
                }
                kept.bindings = policy
                    .get("bindings")
                    .and_then(Value::as_array)
                    .map(|b| {
                        b.iter()
                            .filter(|b| {
                                b.get("members")
                                    .and_then(Value::as_array)
                                    .is_some_and(|m| !m.is_empty())
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                kept.changed();
                google(200, kept.policy(bucket))
            }
            _ => {
                // Whoever calls the sandbox may do anything.
                let asked: Vec<&str> = request
                    .query
                    .iter()
                    .filter(|(k, _)| k == "permissions")
                    .map(|(_, v)| v.as_str())
                    .collect();
                google(
                    200,
                    json!({"kind": "storage#testIamPermissionsResponse", "permissions": asked}),
                )
            }
        }
    }
}

/// A path segment percent-encoded (everything but unreserved characters).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every string in `value` that starts with the emulator's base URL, moved to the front's.
fn rewrite_links(value: &mut Value, upstream: &str, front: &str) {
    match value {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(upstream) {
                *s = format!("{front}{rest}");
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_links(v, upstream, front)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|v| rewrite_links(v, upstream, front)),
        _ => {}
    }
}

/// The emulator's `host:port` from its base URL.
fn authority(upstream: &str) -> Result<&str, String> {
    upstream
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| format!("{upstream:?} is not an http://host:port base URL"))
}

/// Sends `request` to the emulator over one HTTP/1.1 connection and reads the whole answer.
async fn send(upstream: &str, request: hyper::Request<Full<Bytes>>) -> Result<Answer, String> {
    let authority = authority(upstream)?;
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the answer is read; its error is the answer's.
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("the answer was cut off: {e}"))?
        .to_bytes();
    let mut headers = parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(location) = headers
        .get(hyper::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .filter(|l| l.starts_with(upstream))
        .map(str::to_owned)
    {
        // A resumable upload's session: only the path matters to a client of the front.
        headers.remove(hyper::header::LOCATION);
        if let Ok(path) = HeaderValue::from_str(&location[upstream.len()..]) {
            headers.insert(hyper::header::LOCATION, path);
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers,
        body,
    })
}

/// The request, forwarded unchanged (method, path, query, headers but the connection's, body
/// byte for byte) to the emulator.
async fn forward(
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Answer, String> {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut request = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(path);
    for (name, value) in &parts.headers {
        if name != HOST && !HOP_BY_HOP.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let request = request
        .header(HOST, authority(upstream)?)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    send(upstream, request).await
}

/// A GET of `path` at the emulator: its JSON, or `None` on 404.
async fn get_json(upstream: &str, path: &str) -> Result<Option<Value>, String> {
    let request = hyper::Request::get(path)
        .header(HOST, authority(upstream)?)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = send(upstream, request).await?;
    match answer.status {
        404 => Ok(None),
        s if s < 300 => serde_json::from_slice(&answer.body)
            .map(Some)
            .map_err(|e| format!("its answer is not JSON: {e}")),
        s => Err(format!("it answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_etags_spell_the_metageneration_as_google_does() {
        assert_eq!(etag(1), "CAE=");
        assert_eq!(etag(2), "CAI=");
        assert_eq!(etag(300), "CKwC");
    }

    #[test]
    fn a_multipart_uploads_metadata_is_its_first_part_and_media_is_never_json() {
        let body = b"--b1\r\nContent-Type: application/json\r\n\r\n{\"name\": \"x\"}\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n{\"not\": \"metadata\"}\r\n--b1--";
        assert_eq!(
            json_of_request(
                "/upload/storage/v1/b/b/o",
                "multipart/related; boundary=b1",
                body
            ),
            Ok(Some(json!({"name": "x"})))
        );
        assert_eq!(
            json_of_request(
                "/upload/storage/v1/b/b/o",
                "application/json",
                b"{\"a\": 1}"
            ),
            Ok(None)
        );
        assert!(
            json_of_request(
                "/upload/storage/v1/b/b/o",
                "multipart/related; boundary=zz",
                body
            )
            .is_err()
        );
        assert!(json_of_request("/storage/v1/b", "application/json", b"{").is_err());
    }

    #[test]
    fn google_fills_in_the_bucket_defaults_and_a_patch_merges_labels() {
        let mut fields = kept_of(
            &json!({"location": "eu", "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}},
                "labels": {"a": "1", "b": "2"}}),
            None,
        );
        assert_eq!(fields["location"], json!("EU"));
        assert_eq!(fields["storageClass"], json!("STANDARD"));
        let iam = &fields["iamConfiguration"];
        assert_eq!(iam["publicAccessPrevention"], json!("inherited"));
        assert_eq!(iam["bucketPolicyOnly"]["enabled"], json!(true));
        assert!(iam["uniformBucketLevelAccess"]["lockedTime"].is_string());
        let mut value = Value::Object(fields.clone());
        merge_patch(&mut value, &json!({"labels": {"a": null, "c": "3"}}));
        fields = value.as_object().unwrap().clone();
        assert_eq!(fields["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(location_type("EU"), "multi-region");
        assert_eq!(location_type("US-CENTRAL1"), "region");
    }

    #[test]
    fn only_storage_paths_are_the_fronts() {
        assert!(serves("/storage/v1/b"));
        assert!(serves("/upload/storage/v1/b/x/o"));
        assert!(serves("/download/storage/v1/b/x/o/y"));
        assert!(!serves("/v1/projects/p/secrets"));
        assert_eq!(
            bucket_of("/upload/storage/v1/b/my%2Db/o"),
            Some("my-b".into())
        );
        assert_eq!(bucket_of("/storage/v1/b"), None);
    }
}
