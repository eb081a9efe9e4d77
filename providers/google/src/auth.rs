//! The credentials of calls to Google itself (an OAuth access token, and the quota project of
//! user credentials), from Application Default Credentials (ADC) as `google-cloud-auth` reads
//! them.
//!
//! weir looks, in order, at the file named by `GOOGLE_APPLICATION_CREDENTIALS`, then at gcloud's
//! application default credentials file, then at the metadata server of Google Cloud — the
//! order of Google's own client libraries. The places come from [`CredentialsSource`] (the
//! engine reads the environment), not from this process's environment, so that the lookup can be
//! shown and tested. Each file is read by weir (bounded in size, never echoed: it holds secrets)
//! and handed to the `google-cloud-auth` builder of its `type`, which signs, exchanges and
//! refreshes tokens and caches them.
//!
//! Nothing is looked up before the first call to Google that needs a token, and then only once
//! per run ([`Adc`] keeps what it found). A call to a sandbox or an emulator never asks.

use std::error::Error as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use google_cloud_auth::credentials::{
    CacheableResource, Credentials, external_account, external_account_authorized_user,
    impersonated, mds, service_account, user_account,
};
use serde_json::Value;
use weir_provider_sdk::{CredentialsSource, ProviderError};

use crate::rest;
use reqwest::header::HeaderMap;

/// The OAuth scope of every token weir asks for: the APIs it calls have no narrower scope that
/// covers what it does, and IAM decides what the caller may do.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The environment variable naming a credentials file.
const FILE_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The metadata server when `GCE_METADATA_HOST` does not name another.
const METADATA_ROOT: &str = "http://metadata.google.internal";
/// Larger files are not credentials (a hostile variable could name `/dev/zero`).
const MAX_FILE_BYTES: u64 = 1 << 20;
/// How long weir waits for a token from a token endpoint or for the result of an exchange.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long weir waits for the metadata server: off Google Cloud it is usually not there at all,
/// and on Google Cloud it answers within milliseconds.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do when no credentials are found.
const HOW_TO_SIGN_IN: &str = "on a workstation, run `gcloud auth application-default login`, \
    or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file; in GitHub Actions, use \
    workload identity federation (`google-github-actions/auth`); on Google Cloud, attach a \
    service account. To try weir without Google, set WEIR_GOOGLE_ENDPOINT to a sandbox";

/// The credential kinds weir accepts in a file, by their `type`.
const KINDS: &[&str] = &[
    "service_account",
    "authorized_user",
    "impersonated_service_account",
    "external_account",
    "external_account_authorized_user",
];

/// Keys of a credentials file whose values are not secret, so may appear in an error. Every
/// other string in the file is blotted out of any message that quotes it.
const PUBLIC_KEYS: &[&str] = &[
    "type",
    "client_email",
    "project_id",
    "quota_project_id",
    "universe_domain",
    "token_uri",
    "token_url",
    "auth_uri",
    "audience",
    "subject_token_type",
    "service_account_impersonation_url",
    "token_info_url",
    "file",
    "url",
    "subject_token_field_name",
];

/// Makes ring the process's TLS crypto provider, once. `google-cloud-auth` and reqwest are built
/// without one of their own (that would bring a second crypto library); both use this one.
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider is already the default: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Tokens from Application Default Credentials, looked up at the first call that needs one.
///
/// The credentials refresh their token in a task of the async runtime of that first call, so an
/// `Adc` serves one runtime: the provider makes a new one at each `configure`, which the engine
/// calls before each phase (the CLI runs the plan and the apply in runtimes of their own).
pub(crate) struct Adc {
    source: CredentialsSource,
    found: OnceLock<Result<Found, ProviderError>>,
}

impl Adc {
    pub(crate) fn new(source: CredentialsSource) -> Adc {
        Adc {
            source,
            found: OnceLock::new(),
        }
    }

    /// The credentials, looked up on the first call.
    fn found(&self) -> Result<&Found, ProviderError> {
        self.found
            .get_or_init(|| find(&self.source))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Names where credentials are looked for, never what they hold.
impl std::fmt::Debug for Adc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adc")
            .field("source", &self.source)
            .field(
                "found",
                &self
                    .found
                    .get()
                    .map(|f| f.as_ref().map(|f| f.origin.describe())),
            )
            .finish()
    }
}

#[async_trait::async_trait]
impl rest::Tokens for Adc {
    async fn headers(&self) -> Result<HeaderMap, ProviderError> {
        let found = self.found()?;
        let limit = match found.origin {
            Origin::MetadataServer { .. } => METADATA_TIMEOUT,
            Origin::File { .. } => TOKEN_TIMEOUT,
        };
        // Without an entity tag, the credentials always answer with their headers.
        let asked = found.credentials.headers(http::Extensions::new());
        match tokio::time::timeout(limit, asked).await {
            Ok(Ok(CacheableResource::New { data, .. })) => Ok(data),
            Ok(Ok(CacheableResource::NotModified)) => Err(ProviderError::permanent(
                "the credentials gave no headers to authenticate with",
            )),
            Ok(Err(e)) => Err(found.origin.token_error(Some(&e))),
            Err(_) => Err(found.origin.token_error(None)),
        }
    }
}

/// Credentials found, and where.
struct Found {
    credentials: Credentials,
    origin: Origin,
}

enum Origin {
    /// A credentials file of `kind`, named by `by`.
    File {
        path: PathBuf,
        by: &'static str,
        kind: &'static str,
        /// The file's secret strings, to blot out of errors.
        secrets: Vec<String>,
    },
    /// The metadata server at `endpoint`, after `tried` found nothing.
    MetadataServer {
        endpoint: String,
        tried: Vec<String>,
    },
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::File { path, kind, .. } => format!("{kind} credentials in {}", path.display()),
            Origin::MetadataServer { endpoint, .. } => format!("the metadata server at {endpoint}"),
        }
    }

    /// The error of a token that could not be had: `None` when it took too long.
    fn token_error(
        &self,
        error: Option<&google_cloud_auth::errors::CredentialsError>,
    ) -> ProviderError {
        let why = match error {
            Some(e) => chain(e),
            None => "no answer in time".to_owned(),
        };
        match self {
            Origin::File {
                path,
                by,
                kind,
                secrets,
            } => {
                let message = format!(
                    "cannot get an access token with the {kind} credentials in {} ({by}): {}",
                    path.display(),
                    blot(&why, secrets)
                );
                let help = match *kind {
                    "authorized_user" => "run `gcloud auth application-default login` again",
                    "external_account" => {
                        "check the workload identity pool, its provider and the subject token source the file names"
                    }
                    _ => {
                        "check the file, and that the key or the account it names still exists and is enabled"
                    }
                };
                match error.is_some_and(|e| e.is_transient()) || error.is_none() {
                    true => ProviderError::retryable(message),
                    false => ProviderError::permanent(message),
                }
                .with_help(help)
            }
            Origin::MetadataServer { endpoint, tried } => {
                let unreachable = error.is_none_or(not_reached);
                if !unreachable {
                    // It answered: this is Google Cloud, and the answer says what is wrong.
                    let message =
                        format!("the metadata server at {endpoint} gave no access token: {why}");
                    return match error.is_some_and(|e| e.is_transient()) {
                        true => ProviderError::retryable(message),
                        false => ProviderError::permanent(message),
                    }
                    .with_help("check that a service account is attached to this machine, with the cloud-platform scope");
                }
                let why = error.map_or(why, |e| innermost(e));
                let mut places = tried.clone();
                places.push(format!(
                    "the metadata server of Google Cloud: {endpoint} did not answer ({why})"
                ));
                nothing_found(&places)
            }
        }
    }
}

/// The error when no credentials are anywhere: every place tried, in order, and how to sign in.
fn nothing_found(places: &[String]) -> ProviderError {
    let list: String = places
        .iter()
        .enumerate()
        .map(|(i, p)| format!("\n  {}. {p}", i + 1))
        .collect();
    ProviderError::permanent(format!(
        "no Google credentials found; weir looked, in order, at:{list}"
    ))
    .with_help(HOW_TO_SIGN_IN)
}

/// Looks for credentials in the order of Application Default Credentials. A file that is named
/// but cannot be used is an error of its own: weir does not guess past it.
fn find(source: &CredentialsSource) -> Result<Found, ProviderError> {
    install_crypto_provider();
    if let Some(path) = &source.file {
        return from_file(path, FILE_VAR);
    }
    let mut tried = vec![format!("{FILE_VAR}: not set")];
    match &source.gcloud_file {
        // Only a file that is not there is passed over: one that cannot be read is an error.
        Some(path) => match path.try_exists() {
            Ok(false) => tried.push(format!(
                "gcloud's application default credentials: {} does not exist",
                path.display()
            )),
            _ => return from_file(path, "gcloud's application default credentials"),
        },
        None => tried.push(
            "gcloud's application default credentials: no home directory (HOME is not set)"
                .to_owned(),
        ),
    }
    let endpoint = match &source.metadata_host {
        Some(host) => format!("http://{host}"),
        None => METADATA_ROOT.to_owned(),
    };
    http_usable()?;
    let credentials = mds::Builder::default()
        .with_endpoint(endpoint.clone())
        .with_scopes([SCOPE])
        .build()
        .map_err(|e| {
            ProviderError::permanent(format!(
                "cannot ask the metadata server at {endpoint}: {}",
                chain(&e)
            ))
        })?;
    Ok(Found {
        credentials,
        origin: Origin::MetadataServer { endpoint, tried },
    })
}

/// `google-cloud-auth` builds HTTP clients that trust the system's CA certificates and panics
/// when it cannot: this finds out first, and says so.
fn http_usable() -> Result<(), ProviderError> {
    static USABLE: OnceLock<Result<(), String>> = OnceLock::new();
    USABLE
        .get_or_init(|| {
            reqwest::Client::builder()
                .build()
                .map(|_| ())
                .map_err(|e| chain(&e))
        })
        .clone()
        .map_err(|e| {
            ProviderError::permanent(format!("cannot make HTTPS connections to Google: {e}"))
                .with_help(
                    "install the system's CA certificates (e.g. the `ca-certificates` package)",
                )
        })
}

/// The credentials in the file at `path`, named by `by`.
fn from_file(path: &Path, by: &'static str) -> Result<Found, ProviderError> {
    let shown = path.display();
    let fix = match by {
        FILE_VAR => format!("point {FILE_VAR} at a Google credentials file, or unset it"),
        _ => "run `gcloud auth application-default login` to write it again".to_owned(),
    };
    let bad = |what: String| {
        ProviderError::permanent(format!("{shown} ({by}): {what}")).with_help(fix.clone())
    };
    let bytes = read_bounded(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    // Parsed as plain JSON first: serde_json's syntax errors give a line and column, never the text.
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "is not JSON ({e}); expected a Google credentials file (a service account key, gcloud's user credentials or an external_account configuration)"
        ))
    })?;
    let Some(kind) = json.get("type").and_then(Value::as_str) else {
        return Err(bad(format!(
            "has no `type`; expected one of {}",
            KINDS.join(", ")
        )));
    };
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        let named =
            match kind.len() <= 40 && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                true => format!("`{kind}`"),
                false => "a value".to_owned(),
            };
        return Err(bad(format!(
            "has `type` {named}, which weir does not use; expected one of {}",
            KINDS.join(", ")
        )));
    };
    http_usable()?;
    let secrets = secret_strings(&json);
    let built = match kind {
        "service_account" => service_account::Builder::new(json)
            .with_access_specifier(service_account::AccessSpecifier::from_scopes([SCOPE]))
            .build(),
        "authorized_user" => user_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        "impersonated_service_account" => impersonated::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        "external_account" => external_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        _ => external_account_authorized_user::Builder::new(json).build(),
    };
    let credentials = built.map_err(|e| {
        bad(format!(
            "is not usable {kind} credentials: {}",
            blot(&chain(&e), &secrets)
        ))
    })?;
    Ok(Found {
        credentials,
        origin: Origin::File {
            path: path.to_path_buf(),
            by,
            kind,
            secrets,
        },
    })
}

/// The file's bytes, refused past [`MAX_FILE_BYTES`]. Only a regular file is opened: opening a
/// named pipe would wait for a writer forever.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {} KiB, so not a credentials file",
            MAX_FILE_BYTES / 1024
        )));
    }
    Ok(bytes)
}

/// Every string of `json` not under one of [`PUBLIC_KEYS`].
fn secret_strings(json: &Value) -> Vec<String> {
    fn walk(v: &Value, public: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !public && !s.is_empty() => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, public, out)),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| walk(v, PUBLIC_KEYS.contains(&k.as_str()), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, false, &mut out);
    // Longest first, so that a secret containing another is blotted whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `text` with every one of `secrets` blotted out.
fn blot(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

/// What `google-cloud-auth` adds to each link of an error chain that says nothing here (weir
/// says itself whether trying again may help).
const BOILERPLATE: &[&str] = &[
    "Request to fetch the token failed. Subsequent calls with this credential will also fail.",
    "Fetching the token resulted in transient errors. Subsequent calls with this credential might succeed.",
    "but future attempts may succeed",
    "and future attempts will not succeed",
    "cannot create the authentication headers",
];

/// An error and its sources, each said once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut link = Some(e);
    while let Some(l) = link {
        let text = BOILERPLATE
            .iter()
            .fold(l.to_string(), |t, noise| t.replace(noise, ""));
        let text = text.trim().to_owned();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        link = l.source();
    }
    parts.join(": ")
}

/// The first cause of an error: what the system said.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut link = e;
    while let Some(next) = link.source() {
        link = next;
    }
    link.to_string()
}

/// Whether the error is that the server could not be reached at all (no such host, refused, no
/// answer), rather than an answer.
fn not_reached(e: &google_cloud_auth::errors::CredentialsError) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(http) = s.downcast_ref::<reqwest::Error>()
            && (http.is_connect() || http.is_timeout())
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{Api, Client, Tokens};
    use base64::Engine as _;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use weir_provider_sdk::retry::Idempotency;
    use weir_provider_sdk::{Cancel, Endpoints, ErrorKind};

    /// A throwaway RSA key made for these tests: it signs nothing anywhere else.
    const TEST_KEY: &str = include_str!("testdata/throwaway-service-account-key.pem");

    /// One request a local server saw.
    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        /// The path and query.
        target: String,
        /// Header names in lower case.
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A server on 127.0.0.1 answering each request with `answer` (status, JSON body), one
    /// connection per request, keeping what it saw.
    struct Server {
        base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Server {
        fn start(answer: impl Fn(&Seen) -> (u16, Value) + Send + 'static) -> Server {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let Some(request) = read_request(&mut stream) else {
                        continue;
                    };
                    log.lock().unwrap().push(request.clone());
                    let (status, body) = answer(&request);
                    let body = body.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            Server { base, seen }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        /// The requests whose path starts with `prefix`.
        fn seen_at(&self, prefix: &str) -> Vec<Seen> {
            self.seen()
                .into_iter()
                .filter(|s| s.target.starts_with(prefix))
                .collect()
        }
    }

    fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while data.len() < head_end + length {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let body = String::from_utf8_lossy(&data[head_end..]).to_string();
        Some(Seen {
            method,
            target,
            headers,
            body,
        })
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn write_json(dir: &Path, name: &str, json: &Value) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }

    /// Only the file named by `GOOGLE_APPLICATION_CREDENTIALS`.
    fn named(path: &Path) -> CredentialsSource {
        CredentialsSource {
            file: Some(path.to_path_buf()),
            ..Default::default()
        }
    }

    /// The `Authorization` header that `adc` gives.
    async fn bearer(adc: &Adc) -> Result<String, ProviderError> {
        let headers = adc.headers().await?;
        Ok(headers[reqwest::header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .to_owned())
    }

    fn authorization(source: CredentialsSource) -> Result<String, ProviderError> {
        rt().block_on(bearer(&Adc::new(source)))
    }

    /// What a token endpoint answers.
    fn granted(token: &str) -> Value {
        json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
    }

    /// gcloud's user credentials, refreshed at `token_uri`.
    fn user_credentials(token_uri: &str) -> Value {
        json!({
            "type": "authorized_user",
            "client_id": "client-id.apps.googleusercontent.com",
            "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
            "refresh_token": "1//0refresh-token-secret",
            "token_uri": token_uri,
        })
    }

    /// A token endpoint granting `token` to a refresh-token exchange.
    fn token_endpoint(token: &'static str) -> Server {
        Server::start(move |s| match (s.method.as_str(), s.target.as_str()) {
            ("POST", "/token") => (200, granted(token)),
            _ => (404, json!({})),
        })
    }

    fn decode_segment(segment: &str) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .unwrap()
    }

    #[test]
    fn a_service_account_key_gives_a_token_it_signs_itself_for_the_cloud_platform_scope() {
        let dir = tempfile::tempdir().unwrap();
        let key = write_json(
            dir.path(),
            "key.json",
            &json!({
                "type": "service_account",
                "project_id": "acme",
                "private_key_id": "key-id-1",
                "private_key": TEST_KEY,
                "client_email": "deployer@acme.iam.gserviceaccount.com",
                "client_id": "1234",
                "token_uri": "http://127.0.0.1:9/token",
            }),
        );
        let header = authorization(named(&key)).unwrap();
        let jwt = header.strip_prefix("Bearer ").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "a signed JWT");
        let head: Value = serde_json::from_slice(&decode_segment(parts[0])).unwrap();
        assert_eq!(head["alg"], "RS256");
        assert_eq!(head["kid"], "key-id-1");
        let claims: Value = serde_json::from_slice(&decode_segment(parts[1])).unwrap();
        assert_eq!(claims["iss"], "deployer@acme.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        // Signed with the key of the file.
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                TEST_KEY
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        use ring::signature::KeyPair as _;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref(),
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode_segment(parts[2]),
        )
        .expect("the signature verifies with the key's public half");
    }

    #[test]
    fn gcloud_user_credentials_are_found_and_exchange_their_refresh_token_at_the_token_uri() {
        let server = token_endpoint("ya29.user-token");
        let dir = tempfile::tempdir().unwrap();
        let gcloud_file = write_json(
            dir.path(),
            "application_default_credentials.json",
            &user_credentials(&format!("{}/token", server.base)),
        );
        let source = CredentialsSource {
            gcloud_file: Some(gcloud_file),
            ..Default::default()
        };
        assert_eq!(authorization(source).unwrap(), "Bearer ya29.user-token");
        let exchange: Value = serde_json::from_str(&server.seen_at("/token")[0].body).unwrap();
        assert_eq!(exchange["grant_type"], "refresh_token");
        assert_eq!(exchange["refresh_token"], "1//0refresh-token-secret");
        assert_eq!(exchange["scope"], SCOPE);
    }

    #[test]
    fn an_external_account_as_github_actions_writes_it_exchanges_the_oidc_token_and_impersonates() {
        // The shape google-github-actions/auth writes: the subject token from an URL with a
        // bearer header, exchanged at STS, then a service account impersonated.
        let server = Server::start(|s| match s.target.split('?').next().unwrap() {
            "/oidc" => (200, json!({"value": "github-oidc-jwt"})),
            "/sts" => (
                200,
                json!({"access_token": "sts-federated-token",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer", "expires_in": 3600}),
            ),
            "/v1/projects/-/serviceAccounts/deployer@acme.iam.gserviceaccount.com:generateAccessToken" => {
                (
                    200,
                    json!({"accessToken": "ya29.impersonated", "expireTime": "2099-01-01T00:00:00Z"}),
                )
            }
            _ => (404, json!({})),
        });
        let dir = tempfile::tempdir().unwrap();
        let file = write_json(
            dir.path(),
            "gha-creds.json",
            &json!({
                "type": "external_account",
                "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/github/providers/weir",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": format!("{}/sts", server.base),
                "service_account_impersonation_url": format!("{}/v1/projects/-/serviceAccounts/deployer@acme.iam.gserviceaccount.com:generateAccessToken", server.base),
                "credential_source": {
                    "url": format!("{}/oidc?audience=weir", server.base),
                    "headers": {"Authorization": "Bearer actions-request-token"},
                    "format": {"type": "json", "subject_token_field_name": "value"},
                },
            }),
        );
        assert_eq!(
            authorization(named(&file)).unwrap(),
            "Bearer ya29.impersonated"
        );
        let oidc = &server.seen_at("/oidc")[0];
        assert_eq!(
            oidc.header("authorization"),
            Some("Bearer actions-request-token")
        );
        let sts = &server.seen_at("/sts")[0];
        assert!(
            sts.body.contains("subject_token=github-oidc-jwt"),
            "{sts:?}"
        );
        let impersonation = &server.seen_at("/v1/")[0];
        assert_eq!(
            impersonation.header("authorization"),
            Some("Bearer sts-federated-token")
        );
        assert!(
            impersonation.body.contains("cloud-platform"),
            "{impersonation:?}"
        );
    }

    #[test]
    fn an_external_account_with_a_file_sourced_token_uses_the_federated_token_directly() {
        let server = Server::start(|s| match s.target.as_str() {
            "/sts" => (
                200,
                json!({"access_token": "sts-direct-token",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer", "expires_in": 3600}),
            ),
            _ => (404, json!({})),
        });
        let dir = tempfile::tempdir().unwrap();
        let subject = dir.path().join("oidc-token");
        std::fs::write(&subject, "file-oidc-jwt").unwrap();
        let file = write_json(
            dir.path(),
            "wif.json",
            &json!({
                "type": "external_account",
                "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/weir",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": format!("{}/sts", server.base),
                "credential_source": {"file": subject},
            }),
        );
        assert_eq!(
            authorization(named(&file)).unwrap(),
            "Bearer sts-direct-token"
        );
        let sts = &server.seen_at("/sts")[0];
        assert!(sts.body.contains("subject_token=file-oidc-jwt"), "{sts:?}");
        assert!(sts.body.contains("cloud-platform"), "{sts:?}");
    }

    #[test]
    fn an_external_account_that_runs_a_program_is_refused_unless_explicitly_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let file = write_json(
            dir.path(),
            "executable.json",
            &json!({
                "type": "external_account",
                "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/weir",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": "http://127.0.0.1:9/sts",
                "credential_source": {"executable": {
                    "command": format!("touch {}", ran.display()),
                    "timeout_millis": 5000,
                }},
            }),
        );
        let e = authorization(named(&file)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
        assert!(e.message.contains(&file.display().to_string()), "{e}");
        assert!(
            e.message
                .contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES"),
            "{e}"
        );
        assert!(!ran.exists(), "the program ran");
    }

    #[test]
    fn impersonated_service_account_credentials_trade_the_source_token_for_the_targets() {
        let server = Server::start(|s| match s.target.as_str() {
            "/token" => (200, granted("ya29.source")),
            "/v1/projects/-/serviceAccounts/target@acme.iam.gserviceaccount.com:generateAccessToken" => {
                (
                    200,
                    json!({"accessToken": "ya29.target", "expireTime": "2099-01-01T00:00:00Z"}),
                )
            }
            _ => (404, json!({})),
        });
        let dir = tempfile::tempdir().unwrap();
        let file = write_json(
            dir.path(),
            "impersonated.json",
            &json!({
                "type": "impersonated_service_account",
                "service_account_impersonation_url": format!("{}/v1/projects/-/serviceAccounts/target@acme.iam.gserviceaccount.com:generateAccessToken", server.base),
                "source_credentials": user_credentials(&format!("{}/token", server.base)),
                "delegates": [],
            }),
        );
        assert_eq!(authorization(named(&file)).unwrap(), "Bearer ya29.target");
        let impersonation = &server.seen_at("/v1/")[0];
        assert_eq!(
            impersonation.header("authorization"),
            Some("Bearer ya29.source")
        );
    }

    #[test]
    fn the_metadata_server_gives_a_token_for_the_cloud_platform_scope_when_no_file_is_there() {
        let server = Server::start(|s| match s.target.split('?').next().unwrap() {
            "/computeMetadata/v1/instance/service-accounts/default/token" => {
                (200, granted("ya29.metadata"))
            }
            _ => (404, json!({})),
        });
        let dir = tempfile::tempdir().unwrap();
        let source = CredentialsSource {
            file: None,
            gcloud_file: Some(dir.path().join("absent.json")),
            metadata_host: Some(server.base.trim_start_matches("http://").to_owned()),
        };
        assert_eq!(authorization(source).unwrap(), "Bearer ya29.metadata");
        let ask = &server.seen()[0];
        assert_eq!(ask.header("metadata-flavor"), Some("Google"));
        assert!(
            ask.target
                .contains("scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"),
            "{ask:?}"
        );
    }

    /// A `host:port` on 127.0.0.1 where nothing listens.
    fn nobody() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    #[test]
    fn with_no_credentials_anywhere_the_error_names_every_place_tried_in_order_and_how_to_sign_in()
    {
        let dir = tempfile::tempdir().unwrap();
        let gcloud_file = dir.path().join("application_default_credentials.json");
        let host = nobody();
        let e = authorization(CredentialsSource {
            file: None,
            gcloud_file: Some(gcloud_file.clone()),
            metadata_host: Some(host.clone()),
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        let m = &e.message;
        let first = m
            .find("1. GOOGLE_APPLICATION_CREDENTIALS: not set")
            .expect(m);
        let second = m
            .find(&format!(
                "2. gcloud's application default credentials: {} does not exist",
                gcloud_file.display()
            ))
            .expect(m);
        let third = m
            .find(&format!(
                "3. the metadata server of Google Cloud: http://{host} did not answer"
            ))
            .expect(m);
        assert!(first < second && second < third, "{m}");
        let help = e.help.unwrap();
        for fix in [
            "gcloud auth application-default login",
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key",
            "google-github-actions/auth",
            "WEIR_GOOGLE_ENDPOINT",
        ] {
            assert!(help.contains(fix), "{help}");
        }
        // Without a home directory, the second place says why it was not looked at.
        let e = authorization(CredentialsSource {
            metadata_host: Some(nobody()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.message
                .contains("2. gcloud's application default credentials: no home directory"),
            "{e}"
        );
    }

    #[test]
    fn a_credentials_file_that_cannot_be_used_is_named_with_what_is_wrong_never_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "-----BEGIN PRIVATE KEY-----MIIEvQsecretsecret";
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cases = [
            (dir.path().join("missing.json"), "cannot be read"),
            (
                dir.path().to_path_buf(),
                "cannot be read: it is not a regular file",
            ),
            (
                write(
                    "cut.json",
                    &format!(r#"{{"type": "service_account", "private_key": "{secret}""#),
                ),
                "is not JSON (EOF while parsing an object at line 1 column",
            ),
            (
                write("untyped.json", &json!({"private_key": secret}).to_string()),
                "has no `type`; expected one of service_account, authorized_user",
            ),
            (
                write("odd.json", &json!({"type": secret}).to_string()),
                "has `type` a value, which weir does not use",
            ),
            (
                write(
                    "short.json",
                    &json!({"type": "service_account", "private_key": secret}).to_string(),
                ),
                "service_account credentials",
            ),
            (
                write("huge.json", &" ".repeat(2 << 20)),
                "larger than 1024 KiB",
            ),
        ];
        for (path, what) in cases {
            let e = authorization(named(&path)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
            let m = &e.message;
            assert!(m.contains(&path.display().to_string()), "{m}");
            assert!(m.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{m}");
            assert!(m.contains(what), "{what}: {m}");
            let shown = format!("{e:?} {}", e.help.clone().unwrap_or_default());
            assert!(!shown.contains("secretsecret"), "{shown}");
            assert!(e.help.unwrap().contains("unset it"));
        }
    }

    #[test]
    fn a_named_pipe_as_credentials_file_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("credentials.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .expect("mkfifo (coreutils) makes the named pipe");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let source = named(&pipe);
        std::thread::spawn(move || tx.send(authorization(source)));
        let e = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the lookup must not wait for a writer on the pipe")
            .unwrap_err();
        assert!(
            e.message
                .contains("cannot be read: it is not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_refresh_token_is_a_permanent_error_naming_the_file_without_its_secrets() {
        // A token endpoint that quotes what it was sent: weir blots the file's secrets out.
        let server = Server::start(|s| {
            (
                400,
                json!({"error": "invalid_grant", "error_description": format!("bad grant: {}", s.body)}),
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let file = write_json(
            dir.path(),
            "adc.json",
            &user_credentials(&format!("{}/token", server.base)),
        );
        let e = authorization(named(&file)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
        assert!(e.message.contains(&file.display().to_string()), "{e}");
        assert!(e.message.contains("authorized_user"), "{e}");
        assert!(e.message.contains("invalid_grant"), "{e}");
        assert!(!e.message.contains("refresh-token-secret"), "{e}");
        assert!(!e.message.contains("d-FL95Q19q7MQmFpd7hHD0Ty"), "{e}");
        assert!(
            e.help
                .unwrap()
                .contains("gcloud auth application-default login")
        );
    }

    #[test]
    fn credentials_are_looked_up_once_and_their_token_reused() {
        let server = token_endpoint("ya29.once");
        let dir = tempfile::tempdir().unwrap();
        let file = write_json(
            dir.path(),
            "adc.json",
            &user_credentials(&format!("{}/token", server.base)),
        );
        let adc = Adc::new(named(&file));
        let runtime = rt();
        assert_eq!(runtime.block_on(bearer(&adc)).unwrap(), "Bearer ya29.once");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(runtime.block_on(bearer(&adc)).unwrap(), "Bearer ya29.once");
        assert_eq!(server.seen_at("/token").len(), 1);
        // What it found is named, never what it holds.
        let shown = format!("{adc:?}");
        assert!(shown.contains("authorized_user credentials in"), "{shown}");
        assert!(
            !shown.contains("ya29") && !shown.contains("refresh-token-secret"),
            "{shown}"
        );
    }

    #[test]
    fn a_call_to_google_itself_carries_the_bearer_token_marked_sensitive_and_the_quota_project() {
        let tokens = token_endpoint("ya29.call-token");
        let api = Server::start(|_| (200, json!({"name": "projects/acme/locations/l/jobs/j"})));
        let dir = tempfile::tempdir().unwrap();
        let mut credentials = user_credentials(&format!("{}/token", tokens.base));
        credentials["quota_project_id"] = json!("acme-billing");
        let file = write_json(dir.path(), "adc.json", &credentials);
        let adc: Arc<dyn Tokens> = Arc::new(Adc::new(named(&file)));
        let client = Client::new(&Endpoints::default(), Some(adc))
            .unwrap()
            .with_google_base(&api.base);
        let path = "/v2/projects/acme/locations/l/jobs/j";
        let runtime = rt();
        let answer = runtime
            .block_on(client.call(
                Api::Run,
                reqwest::Method::GET,
                path,
                &[],
                None,
                Idempotency::Idempotent,
                &Cancel::new(),
            ))
            .unwrap();
        assert_eq!(answer["name"], "projects/acme/locations/l/jobs/j");
        let call = &api.seen()[0];
        assert_eq!(call.target, path);
        assert_eq!(call.header("authorization"), Some("Bearer ya29.call-token"));
        // User credentials bill their quota project, as gcloud's do.
        assert_eq!(call.header("x-goog-user-project"), Some("acme-billing"));
        let request = runtime
            .block_on(client.request(Api::Run, reqwest::Method::GET, path))
            .unwrap()
            .build()
            .unwrap();
        let header = &request.headers()[reqwest::header::AUTHORIZATION];
        assert!(header.is_sensitive());
        assert!(!format!("{request:?}").contains("ya29"));
    }
}
