//! The HTTP side of the provider: JSON over REST to Google's APIs, Google's errors mapped to
//! the SDK's error kinds, and long-running operations polled to their end.
//!
//! Every API has its own host ([`Api::host`]). With `WEIR_GOOGLE_ENDPOINT` set, every call but
//! Cloud Storage's goes to that one base URL instead, with the real API's host in the `Host`
//! header (so the sandbox knows which API is meant, as Google's front end does), and no
//! credentials; with `STORAGE_EMULATOR_HOST` set, Cloud Storage calls go to that emulator.
//! Calls to Google itself carry the headers that [`Tokens`] gives (`Authorization`, and the
//! quota project of user credentials).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use weir_provider_sdk::retry::{Idempotency, RetryPolicy, parse_retry_after, retry};
use weir_provider_sdk::{Cancel, Endpoints, ErrorKind, ProviderError, ResourceRef};

/// What a call to Google itself answers when the client was made without a way to get tokens
/// (the provider makes it so only when every API goes to a sandbox or an emulator, or before it
/// is configured).
pub(crate) const NO_AUTH: &str = "the Google provider was not configured to call Google";

/// The longest a single HTTP exchange may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest weir waits for a long-running operation.
const OPERATION_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The Google APIs weir calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// Cloud Run Admin v2 (paths `/v2/...`).
    Run,
    /// Compute Engine v1 (paths `/compute/v1/...`).
    Compute,
    /// Cloud SQL Admin v1 (paths `/v1/...`).
    SqlAdmin,
    /// Secret Manager v1.
    SecretManager,
    /// Service Usage v1 (enabling APIs).
    ServiceUsage,
    /// IAM v1 (service accounts and their policies).
    Iam,
    /// Resource Manager v3 (the project's IAM policy).
    ResourceManager,
    /// The Cloud Storage JSON API (paths `/storage/v1/...`).
    Storage,
}

impl Api {
    /// The API's own host.
    pub(crate) fn host(self) -> &'static str {
        match self {
            Api::Run => "run.googleapis.com",
            Api::Compute => "compute.googleapis.com",
            Api::SqlAdmin => "sqladmin.googleapis.com",
            Api::SecretManager => "secretmanager.googleapis.com",
            Api::ServiceUsage => "serviceusage.googleapis.com",
            Api::Iam => "iam.googleapis.com",
            Api::ResourceManager => "cloudresourcemanager.googleapis.com",
            Api::Storage => "storage.googleapis.com",
        }
    }

    /// How the API reports its long-running operations.
    fn operations(self) -> Operations {
        match self {
            Api::Run => Operations::LongRunning("/v2"),
            Api::ServiceUsage => Operations::LongRunning("/v1"),
            Api::Compute | Api::SqlAdmin => Operations::SelfLinked,
            Api::SecretManager | Api::Iam | Api::ResourceManager | Api::Storage => Operations::None,
        }
    }
}

/// The shapes of long-running operations.
enum Operations {
    /// `google.longrunning.Operation` (`name`, `done`, then `error` or `response`), read again
    /// at `<prefix>/<name>`.
    LongRunning(&'static str),
    /// Compute Engine's and Cloud SQL's own `Operation` (`status` up to `DONE`, failures in
    /// `error.errors[]`), read again at the path of its `selfLink`.
    SelfLinked,
    /// The API answers writes synchronously.
    None,
}

/// Where the credentials of a call to Google itself come from.
#[async_trait::async_trait]
pub(crate) trait Tokens: Send + Sync {
    /// The headers that authenticate a call: `Authorization: Bearer …` (never logged), and
    /// `x-goog-user-project` when the credentials name a quota project.
    async fn headers(&self) -> Result<reqwest::header::HeaderMap, ProviderError>;
}

/// A client of the Google REST APIs.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// Every API but Cloud Storage, when set: `http(s)://host[:port]`, no trailing slash.
    sandbox: Option<String>,
    /// Cloud Storage, when set.
    storage: Option<String>,
    /// Credentials for calls to Google itself.
    tokens: Option<Arc<dyn Tokens>>,
    /// Tests only: where calls to Google itself go instead of `https://<api host>`.
    google_base: Option<String>,
    policy: RetryPolicy,
}

impl Client {
    pub(crate) fn new(
        endpoints: &Endpoints,
        tokens: Option<Arc<dyn Tokens>>,
    ) -> Result<Client, ProviderError> {
        crate::auth::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("cannot start an HTTP client: {e}")))?;
        let base = |b: &Option<String>| b.as_ref().map(|b| b.trim_end_matches('/').to_owned());
        Ok(Client {
            http,
            sandbox: base(&endpoints.google),
            storage: base(&endpoints.storage),
            tokens,
            google_base: None,
            policy: RetryPolicy::default(),
        })
    }

    /// The same client, sending the calls meant for Google itself to `base` (with their
    /// credentials): a test's local server.
    #[cfg(test)]
    pub(crate) fn with_google_base(mut self, base: &str) -> Client {
        self.google_base = Some(base.to_owned());
        self
    }

    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One call, repeated on a retryable error when `idempotency` allows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call(
        &self,
        api: Api,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        idempotency: Idempotency,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        retry(&self.policy, idempotency, cancel, |_| {
            self.once(api, method.clone(), path, query, body)
        })
        .await
    }

    /// GETs `path` on `api`: the object, or `None` when the API answers 404 (it is gone).
    pub(crate) async fn get(
        &self,
        api: Api,
        path: &str,
        query: &[(&str, &str)],
        cancel: &Cancel,
    ) -> Result<Option<Value>, ProviderError> {
        found(
            self.call(
                api,
                Method::GET,
                path,
                query,
                None,
                Idempotency::Idempotent,
                cancel,
            )
            .await,
        )
    }

    /// For [`crate::Applier::read`]: the object at `path` on `api` in the shape of `r`'s
    /// attributes (`shape` of the live object and them); `None` when it is gone. Errors name `r`.
    pub(crate) async fn read(
        &self,
        api: Api,
        path: &str,
        r: &ResourceRef,
        shape: impl FnOnce(&Value, &Value) -> Value,
    ) -> Result<Option<Value>, ProviderError> {
        Ok(self
            .get(api, path, &[], &Cancel::new())
            .await
            .map_err(|e| at(r, e))?
            .map(|live| shape(&live, &r.attributes)))
    }

    /// DELETEs `path` on `api` and waits for its operation (see [`Client::deleted`]).
    pub(crate) async fn delete(
        &self,
        api: Api,
        path: &str,
        query: &[(&str, &str)],
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let answer = self
            .call(
                api,
                Method::DELETE,
                path,
                query,
                None,
                Idempotency::Idempotent,
                cancel,
            )
            .await;
        self.deleted(api, answer, cancel).await
    }

    /// A write made from the object as last seen (`seen`, whose etag, settings version or
    /// metageneration the write sends so as not to overwrite a change made since). When the
    /// API refuses it for that (412), the object at `path` on `api` is read again and the write
    /// made again from it, as the client's retry policy allows. `what` names the object.
    pub(crate) async fn write_fresh<W, F>(
        &self,
        api: Api,
        path: &str,
        what: &str,
        seen: Value,
        cancel: &Cancel,
        write: W,
    ) -> Result<Value, ProviderError>
    where
        W: Fn(Value) -> F,
        F: std::future::Future<Output = Result<Value, ProviderError>>,
    {
        let seen = std::sync::Mutex::new(seen);
        retry(&self.policy, Idempotency::Idempotent, cancel, |_| async {
            let current = seen.lock().map(|s| s.clone()).unwrap_or_default();
            match write(current).await {
                Err(e) if e.kind == ErrorKind::PreconditionFailed => {
                    let live = self.get(api, path, &[], cancel).await?.ok_or_else(|| {
                        ProviderError::not_found(format!("{what} was deleted meanwhile"))
                    })?;
                    if let Ok(mut s) = seen.lock() {
                        *s = live;
                    }
                    Err(ProviderError::retryable(format!(
                        "{}; read it again",
                        e.message
                    )))
                }
                other => other,
            }
        })
        .await
    }

    /// After a delete that answered `answer`: its operation waited for. An object that was
    /// not there (404) is deleted already.
    pub(crate) async fn deleted(
        &self,
        api: Api,
        answer: Result<Value, ProviderError>,
        cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        match answer {
            Ok(op) => self.wait(api, op, cancel).await.map(|_| ()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The request for `path` on `api`: the URL, and the headers that say which API and who
    /// calls.
    pub(crate) async fn request(
        &self,
        api: Api,
        method: Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let emulator = match api {
            Api::Storage => &self.storage,
            _ => &self.sandbox,
        };
        if let Some(base) = emulator {
            let request = self.http.request(method, format!("{base}{path}"));
            // The storage emulator serves one API; the sandbox tells them apart by host.
            return Ok(match api {
                Api::Storage => request,
                _ => request.header(reqwest::header::HOST, api.host()),
            });
        }
        let Some(tokens) = &self.tokens else {
            return Err(ProviderError::permanent(NO_AUTH));
        };
        let mut headers = tokens.headers().await?;
        let Some(authorization) = headers.get_mut(reqwest::header::AUTHORIZATION) else {
            return Err(ProviderError::permanent(
                "the credentials gave no `Authorization` header",
            ));
        };
        // Kept out of any debug output of the request.
        authorization.set_sensitive(true);
        let url = match &self.google_base {
            Some(base) => format!("{base}{path}"),
            None => format!("https://{}{path}", api.host()),
        };
        Ok(self.http.request(method, url).headers(headers))
    }

    /// One HTTP exchange. `path` starts with `/`.
    async fn once(
        &self,
        api: Api,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ProviderError> {
        let what = format!("{method} {path}");
        let mut request = self.request(api, method, path).await?.query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // The request may not have reached the API: the same call may work later. One
            // whose connection was never made surely did not.
            let error = ProviderError::retryable(format!("{what}: {}", without_url(&e)));
            if e.is_connect() {
                error.with_unprocessed()
            } else {
                error
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.map_err(|e| {
            ProviderError::retryable(format!(
                "{what}: the answer was cut off: {}",
                without_url(&e)
            ))
        })?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if status < 300 {
            // A delete may answer `204 No Content` (Cloud Storage does).
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return json.ok_or_else(|| {
                ProviderError::permanent(format!("{what}: the answer ({status}) is not JSON"))
            });
        }
        let message = json
            .as_ref()
            .and_then(|j| j.pointer("/error/message"))
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let kind = match status {
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            412 => ErrorKind::PreconditionFailed,
            429 | 500..=599 => ErrorKind::Retryable,
            _ => ErrorKind::Permanent,
        };
        let mut error = ProviderError::new(kind, format!("{what}: {status} {message}"));
        if status == 429 {
            // Google throttles (RESOURCE_EXHAUSTED) before it acts on a request.
            error = error.with_unprocessed();
        }
        Err(match retry_after {
            Some(wait) if kind == ErrorKind::Retryable => error.with_retry_after(wait),
            _ => error,
        })
    }

    /// Polls the operation `op` of `api` (as a write answered it) until it is done. Its
    /// `response` when it succeeds (the operation itself for the shapes that have none); a
    /// failed operation is a `Permanent` error, even one whose status is `DONE` with an `error`
    /// inside; a raised `cancel` is a `Cancelled` one, too long a wait a `Retryable` one. An API
    /// that answers writes synchronously has nothing to wait for: `op` is returned as it is.
    pub(crate) async fn wait(
        &self,
        api: Api,
        mut op: Value,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let style = api.operations();
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let name = op
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let (done, failure, response) = match style {
                Operations::None => return Ok(op),
                Operations::LongRunning(_) => (
                    op.get("done").and_then(Value::as_bool) == Some(true),
                    op.pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| op.get("error").map(|_| "no message".to_owned())),
                    op.get("response").cloned().unwrap_or(Value::Null),
                ),
                Operations::SelfLinked => (
                    op.get("status").and_then(Value::as_str) == Some("DONE"),
                    self_linked_failure(&op),
                    op.clone(),
                ),
            };
            if done {
                return match failure {
                    Some(message) => Err(ProviderError::permanent(format!(
                        "the operation {name} failed: {message}"
                    ))),
                    None => Ok(response),
                };
            }
            let poll = match style {
                Operations::LongRunning(prefix) if !name.is_empty() => {
                    Some(format!("{prefix}/{name}"))
                }
                Operations::SelfLinked => {
                    op.get("selfLink").and_then(Value::as_str).and_then(path_of)
                }
                _ => None,
            };
            let Some(poll) = poll else {
                return Err(ProviderError::permanent(
                    "the API answered an operation that does not say where to follow it",
                ));
            };
            if started.elapsed() > OPERATION_DEADLINE {
                return Err(ProviderError::retryable(format!(
                    "the operation {name} was not done after {} minutes",
                    OPERATION_DEADLINE.as_secs() / 60
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = cancel.cancelled() => {
                    return Err(ProviderError::cancelled(format!(
                        "stopped waiting for the operation {name}; it may still finish"
                    )));
                }
            }
            pause = (pause * 2).min(Duration::from_secs(5));
            op = self
                .call(
                    api,
                    Method::GET,
                    &poll,
                    &[],
                    None,
                    Idempotency::Idempotent,
                    cancel,
                )
                .await?;
        }
    }
}

/// The error, naming the resource.
pub(crate) fn at(r: &ResourceRef, e: ProviderError) -> ProviderError {
    ProviderError {
        message: format!("{}: {}", r.address, e.message),
        ..e
    }
}

/// Whether `value` is safe as one URL path segment: not empty, not `.` or `..`, and only ASCII
/// letters, digits, `-`, `_`, `.`, `:` (a project id may be domain-scoped, `example.com:p`) or
/// one of `also`; so it cannot name another path (`/`), start a query (`?`) or escape (`%`).
pub(crate) fn is_segment(value: &str, also: &[char]) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') || also.contains(&c)
        })
}

/// The attribute `key` of `r`, checked by [`is_segment`]; the error says that `service` (who
/// would refuse it, e.g. `Cloud SQL`) accepts no such name.
pub(crate) fn segment<'a>(
    r: &'a ResourceRef,
    key: &str,
    service: &str,
) -> Result<&'a str, ProviderError> {
    let value = r.attributes.get(key).and_then(Value::as_str).unwrap_or("");
    if is_segment(value, &[]) {
        Ok(value)
    } else {
        Err(ProviderError::permanent(format!(
            "{}: `{key}` is {value:?}, not a name {service} accepts (letters, digits, `-`, `_`, `.`, `:`)",
            r.address
        )))
    }
}

/// How a write ended, from how it went (`done`: its answer, or the wait for its operation) and
/// the object read right after it (`live`, in the shape of `r`'s attributes; `None` when it is
/// not there): the object; or the error, carrying the object when it exists (a failed or
/// stopped operation may leave one), so that it is recorded. An object missing after a write
/// that succeeded is a retryable error saying so (`missing`).
pub(crate) fn settled<T>(
    r: &ResourceRef,
    done: Result<T, ProviderError>,
    live: Result<Option<Value>, ProviderError>,
    missing: impl FnOnce() -> String,
) -> Result<Value, ProviderError> {
    match (done, live) {
        (Ok(_), Ok(Some(live))) => Ok(live),
        (Ok(_), Ok(None)) => Err(ProviderError::retryable(format!(
            "{}: {}",
            r.address,
            missing()
        ))),
        (Ok(_), Err(e)) | (Err(e), Ok(None) | Err(_)) => Err(at(r, e)),
        (Err(e), Ok(Some(live))) => Err(at(r, e).with_existing(live)),
    }
}

/// A read's answer with a 404 as `None`: the object is gone.
pub(crate) fn found(answer: Result<Value, ProviderError>) -> Result<Option<Value>, ProviderError> {
    match answer {
        Ok(live) => Ok(Some(live)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The failure a Compute Engine or Cloud SQL operation reports, if any: the messages of
/// `error.errors[]`, else its HTTP error.
fn self_linked_failure(op: &Value) -> Option<String> {
    let messages: Vec<&str> = op
        .pointer("/error/errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e.get("message")
                        .or_else(|| e.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("no message")
                })
                .collect()
        })
        .unwrap_or_default();
    if !messages.is_empty() {
        return Some(messages.join("; "));
    }
    if op.get("error").is_some() {
        return Some("no message".to_owned());
    }
    None
}

/// The path of a `selfLink` URL (`https://host/compute/v1/...` → `/compute/v1/...`), when it
/// is one of Google's hosts: an answer must not send weir's credentials elsewhere.
fn path_of(link: &str) -> Option<String> {
    let rest = link.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let google = host == "www.googleapis.com" || host.ends_with(".googleapis.com");
    (google && !path.contains("..")).then(|| format!("/{path}"))
}

/// A reqwest error's text without the URL it carries (its query could hold a value).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        // The host says where weir tried to go; the path and query stay out.
        let origin = url.origin().ascii_serialization();
        text = text.replace(url.as_str(), &format!("{origin}/…"));
    }
    // The cause (connection refused, a DNS failure, a TLS error) is what tells what to fix.
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if e.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that answers each connection with the next of `answers` (status, extra
    /// header lines, body), then stops.
    fn serve(answers: Vec<(u16, &'static str, String)>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, headers, body) in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        format!("http://{addr}")
    }

    fn sandbox(base: &str) -> Endpoints {
        Endpoints {
            google: Some(base.to_owned()),
            storage: None,
        }
    }

    fn once(base: &str) -> Result<Value, ProviderError> {
        let client = Client::new(&sandbox(base), None).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.once(Api::Run, Method::GET, "/v2/x", &[], None))
    }

    #[test]
    fn http_errors_become_the_sdk_kinds_with_googles_message_and_retry_after() {
        let google = |code: u16| {
            format!(r#"{{"error": {{"code": {code}, "message": "m{code}", "status": "S"}}}}"#)
        };
        let cases = [
            (404, "", ErrorKind::NotFound, None),
            (409, "", ErrorKind::Conflict, None),
            (412, "", ErrorKind::PreconditionFailed, None),
            (429, "retry-after: 7\r\n", ErrorKind::Retryable, Some(7)),
            (503, "", ErrorKind::Retryable, None),
            (400, "", ErrorKind::Permanent, None),
            (403, "", ErrorKind::Permanent, None),
        ];
        for (code, headers, kind, wait) in cases {
            let base = serve(vec![(code, headers, google(code))]);
            let e = once(&base).unwrap_err();
            assert_eq!(e.kind, kind, "{code}: {e}");
            assert_eq!(e.retry_after, wait.map(Duration::from_secs), "{code}");
            assert_eq!(
                e.unprocessed,
                code == 429,
                "{code}: only throttling says the call was not acted on"
            );
            assert!(e.message.contains(&format!("{code} m{code}")), "{e}");
            assert!(e.message.starts_with("GET /v2/x"), "{e}");
        }
        let base = serve(vec![(200, "", r#"{"done": true}"#.to_owned())]);
        assert_eq!(once(&base).unwrap(), serde_json::json!({"done": true}));
    }

    #[test]
    fn a_refused_connection_names_the_endpoint_and_the_cause_but_no_path() {
        // Port 9 (discard) is closed on these machines: the connection is refused.
        let e = once("http://127.0.0.1:9").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Retryable);
        assert!(e.unprocessed, "a connection never made did nothing");
        assert!(e.message.contains("http://127.0.0.1:9/…"), "{e}");
        assert!(!e.message.contains("/v2/x)"), "{e}");
        assert!(e.message.to_lowercase().contains("refused"), "{e}");
    }

    #[test]
    fn an_operation_done_with_an_error_is_a_failure() {
        let client = Client::new(&sandbox("http://127.0.0.1:9"), None).unwrap();
        let op = serde_json::json!({"name": "projects/p/locations/l/operations/o", "done": true,
            "error": {"code": 9, "message": "it broke"}});
        let e = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.wait(Api::Run, op, &Cancel::new()))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("it broke"), "{e}");
    }

    #[test]
    fn a_compute_operation_done_with_errors_inside_is_a_failure() {
        let client = Client::new(&sandbox("http://127.0.0.1:9"), None).unwrap();
        let op = serde_json::json!({"name": "operation-1", "status": "DONE",
            "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "no CPUs left"}]}});
        let e = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.wait(Api::Compute, op, &Cancel::new()))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("no CPUs left"), "{e}");
    }

    #[test]
    fn an_operation_is_followed_only_on_googles_hosts() {
        assert_eq!(
            path_of("https://compute.googleapis.com/compute/v1/projects/p/zones/z/operations/o"),
            Some("/compute/v1/projects/p/zones/z/operations/o".to_owned())
        );
        assert_eq!(path_of("https://evil.example/compute/v1/x"), None);
        assert_eq!(path_of("http://www.googleapis.com/x"), None);
        assert_eq!(path_of("https://www.googleapis.com/a/../b"), None);
    }
}
