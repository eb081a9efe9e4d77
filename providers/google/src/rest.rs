//! The HTTP side of the provider: JSON over REST to one base URL, Google's errors mapped to the
//! SDK's error kinds, and long-running operations polled to their end.
//!
//! This build reaches only an endpoint set by `WEIR_GOOGLE_ENDPOINT` (a sandbox), which takes no
//! credentials; calling Google itself waits for authentication.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use weir_provider_sdk::retry::{Idempotency, RetryPolicy, parse_retry_after, retry};
use weir_provider_sdk::{Cancel, ErrorKind, ProviderError};

/// What a call without `WEIR_GOOGLE_ENDPOINT` answers.
pub(crate) const NO_AUTH: &str =
    "authentication is not built yet: set WEIR_GOOGLE_ENDPOINT to a sandbox";

/// The longest a single HTTP exchange may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest weir waits for a long-running operation.
const OPERATION_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// A client of the Google REST APIs at one base URL.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// `http(s)://host[:port]`, no trailing slash.
    base: String,
    policy: RetryPolicy,
}

impl Client {
    pub(crate) fn new(base: &str) -> Result<Client, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::permanent(format!("cannot start an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            policy: RetryPolicy::default(),
        })
    }

    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One call, repeated on a retryable error when `idempotency` allows.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        idempotency: Idempotency,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        retry(&self.policy, idempotency, cancel, |_| {
            self.once(method.clone(), path, query, body)
        })
        .await
    }

    /// One HTTP exchange. `path` starts with `/`.
    async fn once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ProviderError> {
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // The request may not have reached the API: the same call may work later.
            ProviderError::retryable(format!("{what}: {}", without_url(&e)))
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
        let error = ProviderError::new(kind, format!("{what}: {status} {message}"));
        Err(match retry_after {
            Some(wait) if kind == ErrorKind::Retryable => error.with_retry_after(wait),
            _ => error,
        })
    }

    /// Polls the Cloud Run v2 operation `op` (as a write answered it) until it is done. Its `response` when
    /// it succeeds; a failed operation (`error` set) is a `Permanent` error, a raised `cancel` a
    /// `Cancelled` one, too long a wait a `Retryable` one.
    pub(crate) async fn wait(
        &self,
        mut op: Value,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let name = op
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if op.get("done").and_then(Value::as_bool) == Some(true) {
                if let Some(error) = op.get("error") {
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    return Err(ProviderError::permanent(format!(
                        "the operation {name} failed: {message}"
                    )));
                }
                return Ok(op.get("response").cloned().unwrap_or(Value::Null));
            }
            if name.is_empty() {
                return Err(ProviderError::permanent(
                    "the API answered an operation with no name: cannot follow it",
                ));
            }
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
                    Method::GET,
                    &format!("/v2/{name}"),
                    &[],
                    None,
                    Idempotency::Idempotent,
                    cancel,
                )
                .await?;
        }
    }
}

/// A reqwest error's text without the URL it carries (its query could hold a value).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
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

    fn once(base: &str) -> Result<Value, ProviderError> {
        let client = Client::new(base).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.once(Method::GET, "/v2/x", &[], None))
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
            assert!(e.message.contains(&format!("{code} m{code}")), "{e}");
            assert!(e.message.starts_with("GET /v2/x"), "{e}");
        }
        let base = serve(vec![(200, "", r#"{"done": true}"#.to_owned())]);
        assert_eq!(once(&base).unwrap(), serde_json::json!({"done": true}));
    }

    #[test]
    fn an_operation_done_with_an_error_is_a_failure() {
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let op = serde_json::json!({"name": "projects/p/locations/l/operations/o", "done": true,
            "error": {"code": 9, "message": "it broke"}});
        let e = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.wait(op, &Cancel::new()))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("it broke"), "{e}");
    }
}
