//! The sandbox's HTTP front: every request is held to the discovery documents and recorded.
//! A request the documents refuse gets Google's own refusal; an accepted one is served when the
//! sandbox keeps that resource (Cloud Run jobs, see [`crate::run_jobs`]; Secret Manager secrets, see
//! [`crate::secrets`]; Cloud SQL, see [`crate::sql`]; IAM service accounts, see [`crate::iam`];
//! the IAM policies of service accounts, projects and secrets, see [`crate::policies`]; Compute
//! Engine instances, see [`crate::compute`]) and answered 501
//! `UNIMPLEMENTED` naming the method otherwise. In debug builds every answer is also held to
//! the method's response schema: one that breaks it becomes a 500 naming the problems.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::discovery::Catalog;
use crate::record::{self, Exchange};
use crate::run_jobs::{self, Behaviour, Store};
use crate::secrets;
use crate::service_usage;
use crate::storage;
use crate::validate::{Request, parse_query};
use crate::{iam, policies};

/// The largest request body read; Google's own limits are of this order.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// What the server needs.
pub struct Sandbox {
    pub catalog: Catalog,
    /// Where to append every exchange (`--record`).
    pub record: Option<PathBuf>,
    /// Operation delays and injected faults.
    pub behaviour: Behaviour,
    /// The resources kept, in memory.
    store: Mutex<Store>,
    /// The Cloud Run job executions, in memory.
    executions: Mutex<crate::executions::Store>,
    /// Whether an execution runs its job's command (and a scheduler VM its container) as a
    /// local process.
    run_processes: bool,
    /// What stands in for the image of the processes started.
    stand_in: crate::processes::ImageStandIn,
    /// The Secret Manager secrets kept, in memory.
    secrets: Mutex<secrets::Store>,
    /// The Cloud SQL instances, databases and users kept, in memory (shared with tests).
    pub(crate) sql: Arc<Mutex<crate::sql::Store>>,
    /// The APIs enabled (Service Usage), in memory.
    service_usage: Mutex<service_usage::Store>,
    /// The IAM service accounts and the IAM policies kept, in memory.
    iam: Mutex<(iam::Store, policies::Store)>,
    /// The Compute Engine instances kept, in memory (shared with tests: their containers).
    pub(crate) compute: Arc<Mutex<crate::compute::Store>>,
    /// The Cloud Storage front: where it forwards, what it keeps.
    pub(crate) storage: storage::Front,
}

/// A sandbox serving on its own thread; dropping it stops the server.
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: what `WEIR_GOOGLE_ENDPOINT` should be set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sandbox {
    /// A sandbox holding requests to `catalog`, keeping no record and injecting no fault.
    pub fn new(catalog: Catalog) -> Sandbox {
        Sandbox {
            catalog,
            record: None,
            behaviour: Behaviour::default(),
            store: Mutex::default(),
            executions: Mutex::default(),
            run_processes: false,
            stand_in: Default::default(),
            secrets: Mutex::default(),
            sql: Arc::default(),
            service_usage: Mutex::default(),
            iam: Mutex::default(),
            compute: Arc::default(),
            storage: storage::Front::default(),
        }
    }

    /// Appends every exchange to `file`.
    pub fn record(mut self, file: PathBuf) -> Sandbox {
        self.record = Some(file);
        self
    }

    /// Runs each job execution's container command as a local process (off by default: an
    /// execution then just succeeds once the operation delay has passed).
    pub fn run_processes(mut self, on: bool) -> Sandbox {
        self.run_processes = on;
        self
    }

    /// Environment the image would give the processes started (`--process-env`); the
    /// container's own wins.
    pub fn process_env(mut self, name: &str, value: &str) -> Sandbox {
        self.stand_in.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Where the processes started see a Cloud SQL volume's mount path (`--cloudsql-dir`).
    pub fn cloudsql_dir(mut self, dir: PathBuf) -> Sandbox {
        self.stand_in.cloudsql_dir = Some(dir);
        self
    }

    /// Where each process started gets its working directory, kept (`--process-dir`); a
    /// temporary directory otherwise.
    pub fn process_dir(mut self, dir: PathBuf) -> Sandbox {
        self.stand_in.process_dir = Some(dir);
        self
    }

    /// Reads a secret version's payload from the sandbox's Secret Manager.
    fn secret_payload(&self, name: &str) -> Option<Vec<u8>> {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        secrets.payload(name)
    }

    pub fn behaviour(mut self, behaviour: Behaviour) -> Sandbox {
        self.behaviour = behaviour;
        self
    }

    /// Serves on `addr` (port 0 picks a free one) from a thread of its own, for tests.
    pub fn spawn(self, addr: SocketAddr) -> std::io::Result<Running> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("weir-sandbox".into())
            .spawn(move || {
                runtime.block_on(self.serve(listener, async {
                    let _ = stopped.await;
                }))
            })?;
        Ok(Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Serves connections from `listener` until `stop` completes.
    pub async fn serve(self, listener: TcpListener, stop: impl Future<Output = ()>) {
        let sandbox = Arc::new(self);
        tokio::pin!(stop);
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut stop => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    // A connection that failed before it was accepted (reset, out of descriptors): go on.
                    Err(_) => continue,
                },
            };
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let sandbox = sandbox.clone();
                    async move { Ok::<_, Infallible>(sandbox.answer(request).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                // A client that hangs up mid-request is its own problem, not the server's.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    }

    async fn answer(&self, request: hyper::Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let query = parse_query(parts.uri.query().unwrap_or(""));
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_owned());
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return reply(
                    413,
                    &error(
                        413,
                        "FAILED_PRECONDITION",
                        format!("the request body is over {MAX_BODY} bytes or was cut off"),
                    ),
                );
            }
        };
        if !self.behaviour.latency.is_zero() {
            tokio::time::sleep(self.behaviour.latency).await;
        }
        // Cloud Storage is forwarded to its emulator (`storage`); every other API is served here.
        let (exchange, forwarded) = if storage::serves(parts.uri.path()) {
            let fault = || {
                run_jobs::fault(
                    &mut self.store.lock().unwrap_or_else(|e| e.into_inner()),
                    &self.behaviour,
                )
            };
            let (exchange, answer) = storage::answer(self, &parts, body, fault).await;
            (exchange, Some(answer))
        } else {
            let exchange =
                self.exchange(host, parts.method.as_str(), parts.uri.path(), query, &body);
            (exchange, None)
        };
        if let Some(file) = &self.record {
            // A record that silently misses exchanges would make its check vacuous: fail loudly.
            if let Err(e) = record::append(file, &exchange) {
                let answer = error(
                    500,
                    "INTERNAL",
                    format!(
                        "the sandbox cannot append to its record {}: {e}",
                        file.display()
                    ),
                );
                return reply(500, &answer);
            }
        }
        let mut answer = forwarded.unwrap_or_else(|| {
            reply(
                exchange.status,
                exchange.response.as_ref().unwrap_or(&Value::Null),
            )
        });
        if exchange.status == 429 {
            // Throttling says when to come back, as Google's front ends do.
            answer.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("0"),
            );
        }
        answer
    }

    /// The answer to one request, as the exchange to record. Every request is recorded, even
    /// one that reached no API or whose body is not JSON (kept as a string), so that checking
    /// the record catches it.
    fn exchange(
        &self,
        host: Option<String>,
        method: &str,
        path: &str,
        query: Vec<(String, String)>,
        raw: &[u8],
    ) -> Exchange {
        let (body, unreadable) = if raw.iter().all(u8::is_ascii_whitespace) {
            (None, None)
        } else {
            match serde_json::from_slice(raw) {
                Ok(value) => (Some(value), None),
                Err(e) => (
                    Some(Value::String(String::from_utf8_lossy(raw).into_owned())),
                    Some(e),
                ),
            }
        };
        // The Host header names the API when the client kept it (as `STORAGE_EMULATOR_HOST`
        // clients do not); otherwise the path alone must.
        let service = match host.clone().filter(|h| self.catalog.document(h).is_some()) {
            Some(host) => Ok(host),
            None => match self.catalog.service_of(method, path) {
                Ok(host) => Ok(host.to_owned()),
                Err(candidates) if candidates.is_empty() => Err((
                    404,
                    error(
                        404,
                        "NOT_FOUND",
                        format!(
                            "The requested URL {path} was not found on this server: no API weir calls documents {method} {path}."
                        ),
                    ),
                )),
                Err(candidates) => Err((
                    400,
                    error(
                        400,
                        "INVALID_ARGUMENT",
                        format!(
                            "{method} {path} is documented by several APIs ({}): send the Host header of the one meant",
                            candidates.join(", ")
                        ),
                    ),
                )),
            },
        };
        let request = Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            body,
        };
        let (service, status, response) = match (service, unreadable) {
            (service, Some(e)) => (
                service.ok().or(host).unwrap_or_default(),
                400,
                error(
                    400,
                    "INVALID_ARGUMENT",
                    format!("Invalid JSON payload received. {e}"),
                ),
            ),
            (Err((status, response)), None) => (host.unwrap_or_default(), status, response),
            (Ok(service), None) => match self.catalog.check_request(&service, &request) {
                Err(refusal) => (service, refusal.code, refusal.to_json()),
                Ok(accepted) => {
                    let (status, response) =
                        self.serve_method(&service, &accepted.method_id, &request);
                    (service, status, response)
                }
            },
        };
        Exchange {
            service,
            method: request.method,
            path: request.path,
            query: request.query,
            body: request.body,
            status,
            response: Some(response),
        }
    }
}

impl Sandbox {
    /// Serves a request the documents accepted as `method_id`.
    fn serve_method(&self, service: &str, method_id: &str, request: &Request) -> (u16, Value) {
        let served = match service {
            "run.googleapis.com" => {
                // A poisoned lock only means another request panicked; the jobs are still whole.
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour)
                    .or_else(|| {
                        let mut executions =
                            self.executions.lock().unwrap_or_else(|e| e.into_inner());
                        let secrets = |name: &str| self.secret_payload(name);
                        let launcher = crate::processes::Launcher {
                            stand_in: &self.stand_in,
                            secrets: &secrets,
                        };
                        crate::executions::answer(
                            &mut executions,
                            &|name| store.job(name),
                            self.run_processes.then_some(&launcher),
                            &self.behaviour,
                            method_id,
                            request,
                        )
                    })
                    .or_else(|| run_jobs::answer(&mut store, &self.behaviour, method_id, request))
            }
            "secretmanager.googleapis.com" => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour).or_else(|| {
                    let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
                    let mut iam = self.iam.lock().unwrap_or_else(|e| e.into_inner());
                    let (accounts, policies) = &mut *iam;
                    // A secret's policy lives with the other IAM policies; it goes with the secret.
                    let mut exists = |name: &str| {
                        let get = Request {
                            method: "GET".into(),
                            path: format!("/v1/{name}"),
                            query: Vec::new(),
                            body: None,
                        };
                        secrets::answer(&mut secrets, "secretmanager.projects.secrets.get", &get)
                            .is_some_and(|(status, _)| status == 200)
                    };
                    let check = |m: &str| accounts.unknown_member(m);
                    policies::secret(policies, &mut exists, &check, method_id, request).or_else(
                        || {
                            let answer = secrets::answer(&mut secrets, method_id, request);
                            if method_id == "secretmanager.projects.secrets.delete"
                                && answer.as_ref().is_some_and(|(status, _)| *status == 200)
                                && let Some(name) = request.path.strip_prefix("/v1/")
                            {
                                policies.forget(&policies::secret_key(name));
                            }
                            answer
                        },
                    )
                })
            }
            "iam.googleapis.com" => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour).or_else(|| {
                    let mut iam = self.iam.lock().unwrap_or_else(|e| e.into_inner());
                    let (accounts, policies) = &mut *iam;
                    iam::answer(accounts, policies, method_id, request)
                })
            }
            "cloudresourcemanager.googleapis.com" => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour).or_else(|| {
                    let mut iam = self.iam.lock().unwrap_or_else(|e| e.into_inner());
                    let (accounts, policies) = &mut *iam;
                    policies::project(
                        policies,
                        &|m| accounts.unknown_member(m),
                        method_id,
                        request,
                    )
                })
            }
            "sqladmin.googleapis.com" => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour).or_else(|| {
                    let mut sql = self.sql.lock().unwrap_or_else(|e| e.into_inner());
                    crate::sql::answer(&mut sql, &self.behaviour, method_id, request)
                })
            }
            "serviceusage.googleapis.com" => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                run_jobs::fault(&mut store, &self.behaviour).or_else(|| {
                    let mut apis = self.service_usage.lock().unwrap_or_else(|e| e.into_inner());
                    service_usage::answer(&mut apis, &self.behaviour, method_id, request)
                })
            }
            "compute.googleapis.com" => {
                let fault = run_jobs::fault(
                    &mut self.store.lock().unwrap_or_else(|e| e.into_inner()),
                    &self.behaviour,
                );
                let mut compute = self.compute.lock().unwrap_or_else(|e| e.into_inner());
                let secrets = |name: &str| self.secret_payload(name);
                let launcher = crate::processes::Launcher {
                    stand_in: &self.stand_in,
                    secrets: &secrets,
                };
                let launcher = self.run_processes.then_some(&launcher);
                crate::compute::answer(
                    &mut compute,
                    &self.behaviour,
                    launcher,
                    method_id,
                    request,
                    fault,
                )
            }
            _ => None,
        };
        let Some((status, response)) = served else {
            return (
                501,
                error(
                    501,
                    "UNIMPLEMENTED",
                    format!(
                        "the request is valid for {method_id}, which the sandbox does not serve yet"
                    ),
                ),
            );
        };
        if cfg!(debug_assertions)
            && let Err(violations) =
                self.catalog
                    .check_response(service, method_id, status, Some(&response))
        {
            let problems: Vec<String> = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect();
            return (
                500,
                error(
                    500,
                    "INTERNAL",
                    format!(
                        "the sandbox's answer to {method_id} breaks its documented response: {}",
                        problems.join("; ")
                    ),
                ),
            );
        }
        (status, response)
    }
}

fn error(code: u16, status: &str, message: String) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}
