//! A stand-in for the GitHub REST API (and, below `/api/v4`, GitLab's), for the tests of the CI
//! workflows' scripts: a small HTTP server on 127.0.0.1 that keeps pull-request comments (GitLab:
//! merge-request notes), issues, check runs, merged pull requests and artifacts in memory, and
//! records every call. Only the endpoints the scripts use exist; anything else is a 404 (and
//! recorded, so a test sees it).
#![allow(dead_code)] // Each test file uses its own subset.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

/// The token the scripts must send; any other gets a 401.
pub const TOKEN: &str = "ghs_fake-token-for-tests";
/// The login GITHUB_TOKEN writes as.
pub const BOT: &str = "github-actions[bot]";
/// GitLab: the project the scripts work on, and the id of the token's user (the author of its notes).
pub const GITLAB_PROJECT: &str = "42";
pub const GITLAB_BOT_ID: u64 = 7;

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub author: String,
    pub body: String,
    /// How many times it was edited after being posted.
    pub edits: u32,
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub author: String,
    pub open: bool,
}

#[derive(Clone, Debug)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub zip: Vec<u8>,
}

/// GitLab: a successful `weir-plan` job of a merge request's pipeline, and the plan it kept.
#[derive(Clone, Debug)]
pub struct PlanJob {
    pub job: u64,
    pub pipeline: u64,
    pub merge_request: u64,
    pub sha: String,
    pub plan: Vec<u8>,
}

#[derive(Default)]
pub struct State {
    pub calls: Vec<Call>,
    pub comments: Vec<Comment>,
    pub issues: Vec<Issue>,
    pub check_runs: Vec<Value>,
    pub artifacts: Vec<Artifact>,
    pub plan_jobs: Vec<PlanJob>,
    /// Merge commit → (pull request number, its head commit).
    pub merged_pulls: BTreeMap<String, (u64, String)>,
    next_id: u64,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        1000 + self.next_id
    }
}

pub struct FakeForge {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeForge {
    pub fn start() -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let base = url.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                let base = base.clone();
                std::thread::spawn(move || serve(stream, &shared, &base));
            }
        });
        FakeForge { url, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn comments_on(&self, issue: u64) -> Vec<Comment> {
        let state = self.state();
        state
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect()
    }

    /// A comment by someone else (`author`), as a reviewer would write it.
    pub fn add_comment(&self, issue: u64, author: &str, body: &str) {
        let mut state = self.state();
        let id = state.next_id();
        state.comments.push(Comment {
            id,
            issue,
            author: author.to_string(),
            body: body.to_string(),
            edits: 0,
        });
    }

    /// Pull request `number`, whose last commit was `head_sha`, merged as `merge_sha`.
    pub fn merge_pull(&self, number: u64, head_sha: &str, merge_sha: &str) {
        self.state()
            .merged_pulls
            .insert(merge_sha.to_string(), (number, head_sha.to_string()));
    }

    /// What `actions/upload-artifact` does: stores `files` (name, content) as a zip named `name`.
    pub fn upload_artifact(&self, name: &str, head_sha: &str, zip: Vec<u8>) {
        let mut state = self.state();
        let id = state.next_id();
        state.artifacts.push(Artifact {
            id,
            name: name.to_string(),
            head_sha: head_sha.to_string(),
            zip,
        });
    }

    /// GitLab: merge request `iid`'s pipeline for `sha` ran `weir-plan`, which kept `plan`.
    pub fn add_plan_job(&self, iid: u64, sha: &str, plan: Vec<u8>) {
        let mut state = self.state();
        let pipeline = state.next_id();
        let job = state.next_id();
        state.plan_jobs.push(PlanJob {
            job,
            pipeline,
            merge_request: iid,
            sha: sha.to_string(),
            plan,
        });
    }

    /// Every text the API was given (comment and issue bodies, check runs) and holds.
    pub fn all_text(&self) -> String {
        let state = self.state();
        let mut text = String::new();
        for call in &state.calls {
            text.push_str(&call.body);
            text.push('\n');
        }
        for comment in &state.comments {
            text.push_str(&comment.body);
            text.push('\n');
        }
        for issue in &state.issues {
            text.push_str(&issue.title);
            text.push_str(&issue.body);
            text.push('\n');
        }
        text
    }
}

struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    /// GitLab's token header.
    private_token: Option<String>,
    body: String,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut authorization = None;
    let mut private_token = None;
    let mut expect_continue = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "authorization" => authorization = Some(value.to_string()),
            "private-token" => private_token = Some(value.to_string()),
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if expect_continue {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        authorization,
        private_token,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn serve(mut stream: TcpStream, shared: &Mutex<State>, base: &str) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    state.calls.push(Call {
        method: request.method.clone(),
        path: request.path.clone(),
        body: request.body.clone(),
    });
    if let Some(gitlab_path) = request.path.strip_prefix("/api/v4/") {
        if request.private_token.as_deref() != Some(TOKEN) {
            drop(state);
            return respond(&mut stream, 401, &[], br#"{"message":"401 Unauthorized"}"#);
        }
        let gitlab_path = gitlab_path.to_string();
        return serve_gitlab(stream, state, &request.method, &gitlab_path, &request.body);
    }
    if request.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        drop(state);
        return respond(&mut stream, 401, &[], br#"{"message":"Bad credentials"}"#);
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let query: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let answer = match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let all: Vec<Value> = state
                .comments
                .iter()
                .filter(|c| c.issue == n)
                .map(comment_json)
                .collect();
            Some((200, Value::Array(page(&all, &query))))
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            let id = state.next_id();
            let comment = Comment {
                id,
                issue: n.parse().unwrap_or(0),
                author: BOT.to_string(),
                body: body["body"].as_str().unwrap_or_default().to_string(),
                edits: 0,
            };
            let json = comment_json(&comment);
            state.comments.push(comment);
            Some((201, json))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            state.comments.iter_mut().find(|c| c.id == id).map(|c| {
                c.body = body["body"].as_str().unwrap_or_default().to_string();
                c.edits += 1;
                (200, comment_json(c))
            })
        }
        ("GET", ["repos", _, _, "issues"]) => {
            let open_only = query.get("state").is_none_or(|s| *s == "open");
            let all: Vec<Value> = state
                .issues
                .iter()
                .filter(|i| i.open || !open_only)
                .map(issue_json)
                .collect();
            Some((200, Value::Array(page(&all, &query))))
        }
        ("POST", ["repos", _, _, "issues"]) => {
            let number = state.next_id();
            let issue = Issue {
                number,
                title: body["title"].as_str().unwrap_or_default().to_string(),
                body: body["body"].as_str().unwrap_or_default().to_string(),
                author: BOT.to_string(),
                open: true,
            };
            let json = issue_json(&issue);
            state.issues.push(issue);
            Some((201, json))
        }
        ("PATCH", ["repos", _, _, "issues", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            state.issues.iter_mut().find(|i| i.number == n).map(|i| {
                if let Some(text) = body["body"].as_str() {
                    i.body = text.to_string();
                }
                if let Some(s) = body["state"].as_str() {
                    i.open = s == "open";
                }
                (200, issue_json(i))
            })
        }
        ("POST", ["repos", _, _, "check-runs"]) => {
            state.check_runs.push(body.clone());
            Some((201, body))
        }
        ("GET", ["repos", _, _, "commits", sha, "pulls"]) => {
            let pulls: Vec<Value> = state
                .merged_pulls
                .get(*sha)
                .map(|(number, head)| {
                    json!({"number": number, "merged_at": "2026-01-01T00:00:00Z",
                           "merge_commit_sha": sha, "head": {"sha": head}})
                })
                .into_iter()
                .collect();
            Some((200, Value::Array(pulls)))
        }
        ("GET", ["repos", owner, repo, "actions", "artifacts"]) => {
            let name = query.get("name").copied().unwrap_or_default();
            let artifacts: Vec<Value> = state
                .artifacts
                .iter()
                .filter(|a| a.name == name)
                .map(|a| {
                    json!({"id": a.id, "name": a.name, "expired": false,
                           "created_at": format!("2026-01-01T00:00:{:02}Z", a.id % 60),
                           "archive_download_url": format!("{base}/repos/{owner}/{repo}/actions/artifacts/{}/zip", a.id),
                           "workflow_run": {"head_sha": a.head_sha}})
                })
                .collect();
            Some((
                200,
                json!({"total_count": artifacts.len(), "artifacts": artifacts}),
            ))
        }
        ("GET", ["repos", _, _, "actions", "artifacts", id, "zip"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let zip = state
                .artifacts
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.zip.clone());
            drop(state);
            return match zip {
                Some(zip) => respond(
                    &mut stream,
                    200,
                    &[("Content-Type", "application/zip".into())],
                    &zip,
                ),
                None => respond(&mut stream, 404, &[], br#"{"message":"Not Found"}"#),
            };
        }
        _ => None,
    };
    drop(state);
    let (status, json) = answer.unwrap_or((404, json!({"message": "Not Found"})));
    respond(
        &mut stream,
        status,
        &[("Content-Type", "application/json".into())],
        json.to_string().as_bytes(),
    );
}

/// The GitLab endpoints the GitLab CI scripts call (`path` below `/api/v4/`).
fn serve_gitlab(
    mut stream: TcpStream,
    mut state: MutexGuard<'_, State>,
    method: &str,
    path: &str,
    body: &str,
) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.split('/').collect();
    let note = |c: &Comment| json!({"id": c.id, "body": c.body, "author": {"id": if c.author == BOT { GITLAB_BOT_ID } else { 1 }}});
    let answer: Option<(u16, Value)> = match (method, segments.as_slice()) {
        ("GET", ["user"]) => Some((
            200,
            json!({"id": GITLAB_BOT_ID, "username": "project_42_bot"}),
        )),
        ("GET", ["projects", GITLAB_PROJECT, "merge_requests", iid, "notes"]) => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let all: Vec<Value> = state
                .comments
                .iter()
                .filter(|c| c.issue == iid)
                .map(note)
                .collect();
            Some((200, Value::Array(page(&all, &query))))
        }
        ("POST", ["projects", GITLAB_PROJECT, "merge_requests", iid, "notes"]) => {
            let id = state.next_id();
            let comment = Comment {
                id,
                issue: iid.parse().unwrap_or(0),
                author: BOT.to_string(),
                body: body["body"].as_str().unwrap_or_default().to_string(),
                edits: 0,
            };
            let json = note(&comment);
            state.comments.push(comment);
            Some((201, json))
        }
        (
            "PUT",
            [
                "projects",
                GITLAB_PROJECT,
                "merge_requests",
                iid,
                "notes",
                id,
            ],
        ) => {
            let (iid, id): (u64, u64) = (iid.parse().unwrap_or(0), id.parse().unwrap_or(0));
            state
                .comments
                .iter_mut()
                .find(|c| c.id == id && c.issue == iid)
                .map(|c| {
                    c.body = body["body"].as_str().unwrap_or_default().to_string();
                    c.edits += 1;
                    (200, note(c))
                })
        }
        (
            "GET",
            [
                "projects",
                GITLAB_PROJECT,
                "repository",
                "commits",
                sha,
                "merge_requests",
            ],
        ) => {
            let mrs: Vec<Value> = state
                .merged_pulls
                .get(*sha)
                .map(|(iid, head)| json!({"iid": iid, "state": "merged", "merge_commit_sha": sha, "sha": head}))
                .into_iter()
                .collect();
            Some((200, Value::Array(mrs)))
        }
        (
            "GET",
            [
                "projects",
                GITLAB_PROJECT,
                "merge_requests",
                iid,
                "pipelines",
            ],
        ) => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let pipelines: Vec<Value> = state
                .plan_jobs
                .iter()
                .filter(|j| j.merge_request == iid)
                .map(|j| json!({"id": j.pipeline, "sha": j.sha, "status": "success"}))
                .collect();
            Some((200, Value::Array(pipelines)))
        }
        ("GET", ["projects", GITLAB_PROJECT, "pipelines", pipeline, "jobs"]) => {
            let pipeline: u64 = pipeline.parse().unwrap_or(0);
            let jobs: Vec<Value> = state
                .plan_jobs
                .iter()
                .filter(|j| j.pipeline == pipeline)
                .map(|j| json!({"id": j.job, "name": "weir-plan", "status": "success"}))
                .collect();
            Some((200, Value::Array(jobs)))
        }
        (
            "GET",
            [
                "projects",
                GITLAB_PROJECT,
                "jobs",
                job,
                "artifacts",
                "weir-ci",
                "plan.weir",
            ],
        ) => {
            let job: u64 = job.parse().unwrap_or(0);
            let plan = state
                .plan_jobs
                .iter()
                .find(|j| j.job == job)
                .map(|j| j.plan.clone());
            drop(state);
            return match plan {
                Some(plan) => respond(&mut stream, 200, &[], &plan),
                None => respond(&mut stream, 404, &[], br#"{"message":"404 Not Found"}"#),
            };
        }
        _ => None,
    };
    drop(state);
    let (status, json) = answer.unwrap_or((404, json!({"message": "404 Not Found"})));
    respond(
        &mut stream,
        status,
        &[("Content-Type", "application/json".into())],
        json.to_string().as_bytes(),
    );
}

/// One page of a list, as `per_page` and `page` ask (GitHub's defaults: 30, page 1).
fn page(all: &[Value], query: &BTreeMap<&str, &str>) -> Vec<Value> {
    let per_page: usize = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let page: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    all.iter()
        .skip(per_page * page.saturating_sub(1))
        .take(per_page)
        .cloned()
        .collect()
}

fn comment_json(c: &Comment) -> Value {
    json!({"id": c.id, "body": c.body, "user": {"login": c.author}})
}

fn issue_json(i: &Issue) -> Value {
    json!({"number": i.number, "title": i.title, "body": i.body, "user": {"login": i.author},
           "state": if i.open { "open" } else { "closed" }})
}
