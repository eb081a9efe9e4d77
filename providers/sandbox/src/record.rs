//! The record of exchanges: one JSON object per line,
//! `{"service", "method", "path", "query", "body", "status", "response"}`, appended as they
//! happen, and checked as a whole against the discovery documents.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::discovery::Catalog;
use crate::validate::Request;

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The real API's host, e.g. `run.googleapis.com`.
    pub service: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// As sent: starting with `/`, percent-encoded, without the query.
    pub path: String,
    /// The query parameters: name to value, or to the list of values of a repeated one.
    #[serde(default, with = "query_json")]
    pub query: Vec<(String, String)>,
    /// The request's JSON body.
    #[serde(default)]
    pub body: Option<Value>,
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's JSON body.
    #[serde(default)]
    pub response: Option<Value>,
}

impl Exchange {
    /// The request half of the exchange.
    pub fn request(&self) -> Request {
        Request {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
        }
    }
}

/// Fields that hold secrets in the APIs weir calls (Cloud SQL users and instances, service
/// account keys); Secret Manager's `payload.data` and its checksum are handled apart.
const SECRET_FIELDS: [&str; 3] = ["password", "rootPassword", "privateKeyData"];

/// What a secret is replaced with: still valid for its field's type (`REDACTED` is base64 too).
const REDACTED: &str = "REDACTED";

impl Exchange {
    /// Replaces every secret in the bodies with a placeholder of the same type, so the exchange
    /// still validates but holds no secret.
    pub fn redact_secrets(&mut self) {
        for body in [&mut self.body, &mut self.response].into_iter().flatten() {
            redact(body);
        }
    }
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if SECRET_FIELDS.contains(&name.as_str()) && field.is_string() {
                    *field = Value::String(REDACTED.into());
                } else if name == "payload"
                    && let Value::Object(payload) = field
                {
                    // Secret Manager's SecretPayload: the secret (base64) and its CRC32C, which
                    // would let anyone check a guess offline.
                    if let Some(data) = payload.get_mut("data") {
                        *data = Value::String(REDACTED.into());
                    }
                    if let Some(crc) = payload.get_mut("dataCrc32c") {
                        *crc = Value::String("0".into());
                    }
                } else {
                    redact(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

mod query_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    pub fn serialize<S: Serializer>(query: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        for (name, value) in query {
            match map.get_mut(name) {
                Some(Value::Array(values)) => values.push(Value::String(value.clone())),
                Some(first) => {
                    *first = Value::Array(vec![first.take(), Value::String(value.clone())])
                }
                None => {
                    map.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        let map = Map::deserialize(d)?;
        let mut out = Vec::new();
        for (name, value) in map {
            match value {
                Value::String(v) => out.push((name, v)),
                Value::Array(values) => {
                    for v in values {
                        let Value::String(v) = v else {
                            return Err(serde::de::Error::custom(format!(
                                "query parameter {name:?}: each value must be a string"
                            )));
                        };
                        out.push((name.clone(), v));
                    }
                }
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "query parameter {name:?}: the value must be a string or a list of strings"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Why a record file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read the record {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an exchange: {source}")]
    Line {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

/// Appends `exchange`, its secrets redacted ([`Exchange::redact_secrets`]), as one line to the
/// record at `path` (created if missing). The line is
/// written with one `write` on a file opened for appending, so concurrent writers do not
/// interleave lines.
pub fn append(path: &Path, exchange: &Exchange) -> std::io::Result<()> {
    let mut exchange = exchange.clone();
    exchange.redact_secrets();
    let mut line = serde_json::to_vec(&exchange).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&line)
}

/// Reads every exchange of the record at `path` (blank lines are skipped; any other line that
/// is not an exchange is an error naming it).
pub fn read(path: &Path) -> Result<Vec<Exchange>, RecordError> {
    Ok(read_numbered(path)?.into_iter().map(|(_, e)| e).collect())
}

fn read_numbered(path: &Path) -> Result<Vec<(usize, Exchange)>, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|e| (i + 1, e))
                .map_err(|source| RecordError::Line {
                    path: path.to_owned(),
                    line: i + 1,
                    source,
                })
        })
        .collect()
}

/// What a valid record holds.
#[derive(Debug, Default, PartialEq)]
pub struct RecordReport {
    pub exchanges: usize,
    /// `(line, warning)`: things Google accepts but ignores (output-only fields sent).
    pub warnings: Vec<(usize, String)>,
}

/// One invalid exchange of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordProblem {
    pub line: usize,
    pub exchange: String,
    pub problem: String,
}

impl std::fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.exchange, self.problem)
    }
}

/// Checks every exchange of the record at `path`: each request must be one the documents
/// accept (a request Google would refuse is a bug of whoever sent it), and each answer must use
/// only documented fields (or be Google's error shape). Returns every problem found, not just
/// the first.
pub fn validate_file(path: &Path, catalog: &Catalog) -> Result<RecordReport, Vec<RecordProblem>> {
    let exchanges = read_numbered(path).map_err(|e| {
        vec![RecordProblem {
            line: match &e {
                RecordError::Line { line, .. } => *line,
                RecordError::Io { .. } => 0,
            },
            exchange: String::new(),
            problem: e.to_string(),
        }]
    })?;
    let mut report = RecordReport::default();
    let mut problems = Vec::new();
    for (line, exchange) in &exchanges {
        let what = format!("{} {} {}", exchange.service, exchange.method, exchange.path);
        let mut problem = |problem: String| {
            problems.push(RecordProblem {
                line: *line,
                exchange: what.clone(),
                problem,
            })
        };
        match catalog.check_request(&exchange.service, &exchange.request()) {
            Err(refusal) => problem(format!("the request is refused: {refusal}")),
            Ok(accepted) => {
                report
                    .warnings
                    .extend(accepted.warnings.into_iter().map(|w| (*line, w)));
                if let Err(violations) = catalog.check_response(
                    &exchange.service,
                    &accepted.method_id,
                    exchange.status,
                    exchange.response.as_ref(),
                ) {
                    let text: Vec<String> = violations.into_iter().map(|v| v.description).collect();
                    problem(format!(
                        "the {} answer of {} is not documented: {}",
                        exchange.status,
                        accepted.method_id,
                        text.join("; ")
                    ));
                }
            }
        }
        report.exchanges += 1;
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems)
    }
}
