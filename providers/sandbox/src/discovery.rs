//! Google's discovery documents: loading them and resolving their methods into routes.
//!
//! A discovery document is an API's REST contract: `rootUrl` + `servicePath` is the base of every
//! path, `resources.*.methods.*` (nested to any depth) are the methods, each with an HTTP method,
//! a path template (`flatPath` when there is one, else `path`), its `parameters`, and the `$ref`s of
//! its request and response schemas into `schemas`.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{Map, Value};

/// The discovery documents of the APIs weir calls, by file name as `google-api-python-client`
/// ships them.
pub const REQUIRED_DOCUMENTS: [&str; 8] = [
    "run.v2.json",
    "compute.v1.json",
    "sqladmin.v1.json",
    "secretmanager.v1.json",
    "serviceusage.v1.json",
    "iam.v1.json",
    "cloudresourcemanager.v3.json",
    "storage.v1.json",
];

/// The variable naming the directory that holds the documents in tests (`scripts/test-deps.sh`
/// writes it to `<deps>/env.sh`).
pub const DOCUMENTS_DIR_VAR: &str = "WEIR_TEST_DISCOVERY_DIR";

/// Why a document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the discovery document {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the discovery document {path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the discovery document {path} is not one: {what}")]
    Shape { path: PathBuf, what: String },
}

/// Where the documents are for tests: `$WEIR_TEST_DISCOVERY_DIR`, else the venv that
/// `scripts/test-deps.sh` makes under `<repo>/.test-deps`. The error says how to install them.
pub fn documents_dir_for_tests() -> Result<PathBuf, String> {
    let hint = "Google's discovery documents come from the PyPI package google-api-python-client; \
                install them (once) with `scripts/test-deps.sh`, then `source .test-deps/env.sh`";
    let has_all = |dir: &Path| REQUIRED_DOCUMENTS.iter().all(|d| dir.join(d).is_file());
    if let Some(dir) = std::env::var_os(DOCUMENTS_DIR_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{DOCUMENTS_DIR_VAR}={} does not hold all of {}.\n{hint}",
                dir.display(),
                REQUIRED_DOCUMENTS.join(", ")
            ))
        };
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = repo.join(".test-deps/discovery-venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|pythons| {
        pythons
            .flatten()
            .map(|p| {
                p.path()
                    .join("site-packages/googleapiclient/discovery_cache/documents")
            })
            .find(|d| has_all(d))
    });
    found.ok_or_else(|| {
        format!(
            "Google's discovery documents are not installed: {DOCUMENTS_DIR_VAR} is not set and {} holds no \
             googleapiclient/discovery_cache/documents.\n{hint}",
            lib.display()
        )
    })
}

/// One loaded discovery document.
#[derive(Debug)]
pub struct Document {
    /// `name.version`, e.g. `run.v2`.
    pub id: String,
    /// The API's host, e.g. `run.googleapis.com`: the `service` of a recorded exchange.
    pub host: String,
    pub(crate) schemas: Map<String, Value>,
    /// The parameters every method takes (`alt`, `fields`, `key`, `prettyPrint`, `$.xgafv`, ...).
    pub(crate) standard_parameters: Map<String, Value>,
    pub(crate) routes: Vec<Route>,
}

/// A documented method, reachable at one HTTP method and path template.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) id: String,
    pub(crate) http_method: String,
    template: Vec<Part>,
    /// The template of `path` (not `flatPath`), whose variables are the path parameters.
    parameter_template: Vec<Part>,
    /// How many literal characters the template has: the most specific match wins.
    literal_len: usize,
    pub(crate) method: Map<String, Value>,
    /// The `pattern`s of the path parameters, as written and compiled (anchored), by parameter name.
    pub(crate) path_patterns: Vec<(String, String, Regex)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// `{name}`: one path segment.
    Var(String),
    /// `{+name}`: reserved expansion, may span segments.
    Reserved(String),
}

impl Document {
    /// Reads and parses the document at `path`.
    pub fn load(path: &Path) -> Result<Document, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| LoadError::Json {
            path: path.to_owned(),
            source,
        })?;
        Document::from_json(json).map_err(|what| LoadError::Shape {
            path: path.to_owned(),
            what,
        })
    }

    /// Builds the document from its parsed JSON.
    pub fn from_json(json: Value) -> Result<Document, String> {
        let Value::Object(mut doc) = json else {
            return Err("not a JSON object".into());
        };
        let text = |doc: &Map<String, Value>, key: &str| -> Result<String, String> {
            doc.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("no string `{key}`"))
        };
        let id = format!("{}.{}", text(&doc, "name")?, text(&doc, "version")?);
        let root_url = text(&doc, "rootUrl")?;
        let service_path = text(&doc, "servicePath")?;
        let host = root_url
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| format!("`rootUrl` {root_url:?} is not a scheme and a host"))?
            .to_owned();
        let take_map = |doc: &mut Map<String, Value>, key: &str| match doc.remove(key) {
            Some(Value::Object(m)) => Ok(m),
            None => Ok(Map::new()),
            Some(_) => Err(format!("`{key}` is not an object")),
        };
        let schemas = take_map(&mut doc, "schemas")?;
        let standard_parameters = take_map(&mut doc, "parameters")?;
        let mut routes = Vec::new();
        let resources = take_map(&mut doc, "resources")?;
        let top_methods = take_map(&mut doc, "methods")?;
        collect_methods(&top_methods, &service_path, &mut routes)?;
        collect_resources(&resources, &service_path, &mut routes)?;
        Ok(Document {
            id,
            host,
            schemas,
            standard_parameters,
            routes,
        })
    }

    /// The ids of every documented method, e.g. `run.projects.locations.jobs.create`.
    pub fn method_ids(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.id.as_str())
    }

    /// The documented method that `http_method` on `path` (as sent: starting with `/`, still
    /// percent-encoded, without the query) calls; the most specific template wins. `Err` holds
    /// the HTTP methods the path is documented for, when it is but not for this one.
    pub(crate) fn route(&self, http_method: &str, path: &str) -> Result<&Route, Vec<String>> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let mut best: Option<&Route> = None;
        let mut other_methods = Vec::new();
        for route in &self.routes {
            if !matches(&route.template, path) {
                continue;
            }
            if !route.http_method.eq_ignore_ascii_case(http_method) {
                other_methods.push(route.http_method.clone());
                continue;
            }
            if best.is_none_or(|b| route.literal_len > b.literal_len) {
                best = Some(route);
            }
        }
        best.ok_or_else(|| {
            other_methods.sort();
            other_methods.dedup();
            other_methods
        })
    }

    pub(crate) fn route_by_id(&self, id: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.id == id)
    }

    pub(crate) fn schema(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }
}

impl Route {
    /// The values of the template's variables in `path` (which must match), percent-decoded.
    pub(crate) fn path_values(&self, path: &str) -> Vec<(String, String)> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let mut out = Vec::new();
        capture(&self.parameter_template, path, &mut out);
        out.into_iter()
            .map(|(name, raw)| (name, percent_decode(raw)))
            .collect()
    }

    /// The method's parameters (`parameters`), by name.
    pub(crate) fn parameters(&self) -> Option<&Map<String, Value>> {
        self.method.get("parameters").and_then(Value::as_object)
    }

    pub(crate) fn schema_ref(&self, key: &str) -> Option<&str> {
        self.method.get(key)?.get("$ref")?.as_str()
    }
}

fn collect_resources(
    resources: &Map<String, Value>,
    service_path: &str,
    routes: &mut Vec<Route>,
) -> Result<(), String> {
    for (name, resource) in resources {
        let Value::Object(resource) = resource else {
            return Err(format!("resource `{name}` is not an object"));
        };
        if let Some(Value::Object(methods)) = resource.get("methods") {
            collect_methods(methods, service_path, routes)?;
        }
        if let Some(Value::Object(nested)) = resource.get("resources") {
            collect_resources(nested, service_path, routes)?;
        }
    }
    Ok(())
}

fn collect_methods(
    methods: &Map<String, Value>,
    service_path: &str,
    routes: &mut Vec<Route>,
) -> Result<(), String> {
    for (name, method) in methods {
        let Value::Object(method) = method else {
            return Err(format!("method `{name}` is not an object"));
        };
        let field = |key: &str| method.get(key).and_then(Value::as_str);
        let id = field("id").ok_or_else(|| format!("method `{name}` has no `id`"))?;
        let http_method =
            field("httpMethod").ok_or_else(|| format!("method `{id}` has no `httpMethod`"))?;
        // `flatPath` spells every segment out (`projects/{projectsId}/...`); `path` may hold
        // `{+name}` spanning several segments.
        let template = |path: &str| {
            parse_template(&format!("{service_path}{path}"))
                .map_err(|e| format!("method `{id}`: path {path:?}: {e}"))
        };
        let path = field("path").ok_or_else(|| format!("method `{id}` has no `path`"))?;
        let parameter_template = template(path)?;
        let template = template(field("flatPath").unwrap_or(path))?;
        let literal_len = literal_len_of(&template);
        let mut path_patterns = Vec::new();
        if let Some(Value::Object(params)) = method.get("parameters") {
            for (pname, p) in params {
                if p.get("location").and_then(Value::as_str) != Some("path") {
                    continue;
                }
                // Google writes RE2 patterns; the few `regex` cannot compile go unchecked.
                if let Some(pattern) = p.get("pattern").and_then(Value::as_str)
                    && let Ok(re) = Regex::new(&format!("^(?:{pattern})$"))
                {
                    path_patterns.push((pname.clone(), pattern.to_owned(), re));
                }
            }
        }
        routes.push(Route {
            id: id.to_owned(),
            http_method: http_method.to_owned(),
            template,
            parameter_template,
            literal_len,
            method: method.clone(),
            path_patterns: path_patterns.clone(),
        });
        // Media goes through paths of its own, for the same method: a simple or multipart
        // upload at `mediaUpload.protocols.simple.path` (absolute), a download under
        // `/download/` when the method says `useMediaDownloadService`.
        let mut media = Vec::new();
        if let Some(upload) = method
            .get("mediaUpload")
            .and_then(|m| m.pointer("/protocols/simple/path"))
            .and_then(Value::as_str)
        {
            media.push(upload.trim_start_matches('/').to_owned());
        }
        if method
            .get("useMediaDownloadService")
            .and_then(Value::as_bool)
            == Some(true)
        {
            media.push(format!("download/{service_path}{path}"));
        }
        for media_path in media {
            let template = parse_template(&media_path)
                .map_err(|e| format!("method `{id}`: media path {media_path:?}: {e}"))?;
            routes.push(Route {
                id: id.to_owned(),
                http_method: http_method.to_owned(),
                parameter_template: template.clone(),
                literal_len: literal_len_of(&template),
                template,
                method: method.clone(),
                path_patterns: path_patterns.clone(),
            });
        }
    }
    Ok(())
}

/// How many literal characters `template` has.
fn literal_len_of(template: &[Part]) -> usize {
    template
        .iter()
        .map(|p| match p {
            Part::Literal(l) => l.len(),
            _ => 0,
        })
        .sum()
}

fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').ok_or("unclosed `{`")?;
                let inner = &rest[1..end];
                parts.push(match inner.strip_prefix('+') {
                    Some(name) => Part::Reserved(name.to_owned()),
                    None => Part::Var(inner.to_owned()),
                });
                rest = &rest[end + 1..];
            }
            Some(i) => {
                parts.push(Part::Literal(rest[..i].to_owned()));
                rest = &rest[i..];
            }
            None => {
                parts.push(Part::Literal(rest.to_owned()));
                rest = "";
            }
        }
    }
    Ok(parts)
}

fn matches(template: &[Part], path: &str) -> bool {
    capture(template, path, &mut Vec::new())
}

/// Matches `path` against `template` with backtracking, pushing each variable's raw value.
fn capture<'p>(template: &[Part], path: &'p str, out: &mut Vec<(String, &'p str)>) -> bool {
    let Some((first, rest)) = template.split_first() else {
        return path.is_empty();
    };
    match first {
        Part::Literal(l) => path
            .strip_prefix(l.as_str())
            .is_some_and(|p| capture(rest, p, out)),
        Part::Var(name) | Part::Reserved(name) => {
            let reserved = matches!(first, Part::Reserved(_));
            // A variable takes at least one character; a one-segment variable stops at `/`.
            let limit = if reserved {
                path.len()
            } else {
                path.find('/').unwrap_or(path.len())
            };
            for end in (1..=limit).rev().filter(|&e| path.is_char_boundary(e)) {
                let mark = out.len();
                out.push((name.clone(), &path[..end]));
                if capture(rest, &path[end..], out) {
                    return true;
                }
                out.truncate(mark);
            }
            false
        }
    }
}

/// Decodes `%XX` escapes (a malformed escape stays as it is).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every document weir needs, by host.
#[derive(Debug)]
pub struct Catalog {
    pub(crate) documents: Vec<Document>,
}

impl Catalog {
    /// Loads every document of [`REQUIRED_DOCUMENTS`] from `dir`; a missing one is an error
    /// naming it.
    pub fn load_dir(dir: &Path) -> Result<Catalog, LoadError> {
        let documents = REQUIRED_DOCUMENTS
            .iter()
            .map(|name| Document::load(&dir.join(name)))
            .collect::<Result<_, _>>()?;
        Ok(Catalog { documents })
    }

    pub fn from_documents(documents: Vec<Document>) -> Catalog {
        Catalog { documents }
    }

    /// The document of the API served at `host` (e.g. `compute.googleapis.com`).
    pub fn document(&self, host: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.host == host)
    }

    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The host of the one API that documents `http_method` on `path`, for a server that gets
    /// every API's calls at one address. `Err` lists the candidates when none or several
    /// document it equally specifically.
    pub fn service_of(&self, http_method: &str, path: &str) -> Result<&str, Vec<&str>> {
        let mut best: Vec<(&str, usize)> = Vec::new();
        for doc in &self.documents {
            let Ok(route) = doc.route(http_method, path) else {
                continue;
            };
            match best.first() {
                Some((_, len)) if *len > route.literal_len => {}
                Some((_, len)) if *len == route.literal_len => {
                    best.push((&doc.host, route.literal_len))
                }
                _ => best = vec![(&doc.host, route.literal_len)],
            }
        }
        match best.as_slice() {
            [(host, _)] => Ok(host),
            _ => Err(best.into_iter().map(|(h, _)| h).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_segment_variable_stops_at_a_slash_and_a_reserved_one_does_not() {
        let t = parse_template("v2/projects/{projectsId}/jobs/{jobsId}:run").unwrap();
        assert!(matches(&t, "v2/projects/p/jobs/j:run"));
        assert!(!matches(&t, "v2/projects/p/x/jobs/j:run"));
        assert!(!matches(&t, "v2/projects//jobs/j:run"));
        let t = parse_template("v1/{+name}:enable").unwrap();
        let mut out = Vec::new();
        assert!(capture(
            &t,
            "v1/projects/p/services/run.googleapis.com:enable",
            &mut out
        ));
        assert_eq!(
            out,
            vec![("name".to_owned(), "projects/p/services/run.googleapis.com")]
        );
    }

    #[test]
    fn percent_escapes_are_decoded_in_path_values() {
        assert_eq!(percent_decode("a%2Fb%20c%zz"), "a/b c%zz");
    }
}
