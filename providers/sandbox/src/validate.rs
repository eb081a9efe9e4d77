//! Holding a request (and a response) to its discovery document, and answering a refusal the
//! way Google does: a 400 `INVALID_ARGUMENT` whose message names what is wrong and where.

use serde_json::{Map, Value, json};

use crate::discovery::{Catalog, Document, Route, percent_decode};

/// One HTTP request to a Google API.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// As sent: starting with `/`, still percent-encoded, without the query.
    pub path: String,
    /// The query parameters, decoded, in order (a repeated parameter appears once per value).
    pub query: Vec<(String, String)>,
    /// The JSON body, if there is one.
    pub body: Option<Value>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// A request as the server parses one, for the sandbox's own tests.
    #[cfg(test)]
    pub(crate) fn of(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Request {
        Request {
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
            ..Request::new(method, path)
        }
    }

    /// The first value of the query parameter `name`, if it was sent.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a raw query string (`a=1&b=x%20y`) into decoded pairs (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A request that matches its documented method.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The method's id, e.g. `run.projects.locations.jobs.create`.
    pub method_id: String,
    /// Things Google accepts but ignores, such as output-only fields sent in a request.
    pub warnings: Vec<String>,
}

/// One thing wrong with a request or a response: where (`job.template.task_count`, or the
/// parameter's name) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// A refusal, shaped like Google's error answers.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleError {
    pub code: u16,
    /// The canonical status name, e.g. `INVALID_ARGUMENT`, `NOT_FOUND`.
    pub status: &'static str,
    pub message: String,
    pub violations: Vec<FieldViolation>,
}

impl GoogleError {
    fn invalid(violations: Vec<FieldViolation>) -> GoogleError {
        let message = violations
            .iter()
            .map(|v| v.description.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        GoogleError {
            code: 400,
            status: "INVALID_ARGUMENT",
            message,
            violations,
        }
    }

    fn not_found(message: String) -> GoogleError {
        GoogleError {
            code: 404,
            status: "NOT_FOUND",
            message,
            violations: Vec::new(),
        }
    }

    /// The answer's body: `{"error": {"code", "message", "status", "details"}}`, the field
    /// violations as a `google.rpc.BadRequest` detail.
    pub fn to_json(&self) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "status": self.status,
        });
        if !self.violations.is_empty() {
            let violations: Vec<Value> = self
                .violations
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect();
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": violations,
            }]);
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for GoogleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for GoogleError {}

impl Catalog {
    /// Checks `request` against the document of the API at `service` (its host, e.g.
    /// `run.googleapis.com`).
    pub fn check_request(&self, service: &str, request: &Request) -> Result<Accepted, GoogleError> {
        match self.document(service) {
            Some(doc) => doc.check_request(request),
            None => Err(GoogleError::not_found(format!(
                "no discovery document is loaded for the service {service:?} (loaded: {})",
                self.documents
                    .iter()
                    .map(|d| d.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Checks the response of `method_id` on `service`; see [`Document::check_response`].
    pub fn check_response(
        &self,
        service: &str,
        method_id: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), Vec<FieldViolation>> {
        match self.document(service) {
            Some(doc) => doc.check_response(method_id, status, body),
            None => Err(vec![FieldViolation {
                field: String::new(),
                description: format!("no discovery document is loaded for the service {service:?}"),
            }]),
        }
    }
}

impl Document {
    /// Checks `request` against this API: the HTTP method and path must be a documented
    /// method's, each path parameter must match its `pattern`, each query parameter must be
    /// documented for the method (or be a standard one) with a value of its type, required ones
    /// present, and the body must fit the request schema (no unknown field, types, enum values).
    pub fn check_request(&self, request: &Request) -> Result<Accepted, GoogleError> {
        // `.` and `..` would name another resource once a server normalises the path; Google
        // refuses them, and so does the sandbox (a name may become a file in its state directory).
        if let Some(segment) = request
            .path
            .split('/')
            .skip(1)
            .map(percent_decode)
            .find(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(GoogleError::invalid(vec![FieldViolation {
                field: String::new(),
                description: format!(
                    "Invalid request path {}: the segment {segment:?} is not allowed.",
                    cut(&request.path)
                ),
            }]));
        }
        let route = self.route(&request.method, &request.path).map_err(|others| {
            let documented = if others.is_empty() {
                String::new()
            } else {
                format!(" (it is documented for {})", others.join(", "))
            };
            GoogleError::not_found(format!(
                "The requested URL {} was not found on this server: no method of {} is documented at {} {}{documented}.",
                cut(&request.path), self.id, cut(&request.method), cut(&request.path)
            ))
        })?;
        let mut check = Check::new(self, &route.id, Mode::Request);
        check.path_parameters(route, &request.path);
        check.query_parameters(route, &request.query);
        match (route.schema_ref("request"), &request.body) {
            (Some(name), Some(body)) => {
                let schema = json!({ "$ref": name });
                check.value(&schema, body, &body_location(name));
            }
            (None, Some(body)) if !is_empty_object(body) => check.violation(
                String::new(),
                format!(
                    "Invalid JSON payload received. {} takes no request body, got {}.",
                    route.id,
                    short(body)
                ),
            ),
            _ => {}
        }
        if check.violations.is_empty() {
            Ok(Accepted {
                method_id: route.id.clone(),
                warnings: check.warnings,
            })
        } else {
            Err(GoogleError::invalid(check.violations))
        }
    }

    /// Checks a response of `method_id`: a success (`status` below 400) may use only the
    /// documented fields of the method's response schema, with their types; an error must be
    /// Google's error shape.
    pub fn check_response(
        &self,
        method_id: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), Vec<FieldViolation>> {
        let Some(route) = self.route_by_id(method_id) else {
            return Err(vec![FieldViolation {
                field: String::new(),
                description: format!("{} documents no method {method_id}", self.id),
            }]);
        };
        let mut check = Check::new(self, method_id, Mode::Response);
        if status >= 400 {
            check.value(&error_schema(), body.unwrap_or(&Value::Null), "response");
            if body.is_none_or(|b| b.get("error").is_none()) {
                check.violation(
                    "response".into(),
                    format!("an error answer ({status}) must be {{\"error\": {{\"code\", \"message\", \"status\"}}}}"),
                );
            }
        } else {
            match (route.schema_ref("response"), body) {
                (Some(name), Some(body)) => {
                    check.value(&json!({ "$ref": name }), body, "response");
                }
                (None, Some(body)) if !is_empty_object(body) => check.violation(
                    "response".into(),
                    format!(
                        "{method_id} documents no response body, got {}",
                        short(body)
                    ),
                ),
                _ => {}
            }
        }
        if check.violations.is_empty() {
            Ok(())
        } else {
            Err(check.violations)
        }
    }
}

/// Google's error body, as a schema the walker checks.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "format": "int32"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "any"}}},
                    "errors": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "any"}}},
                }
            }
        }
    })
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// A value as it appears in a message, cut short.
fn short(v: &Value) -> String {
    cut(&v.to_string())
}

/// Text from the request, cut short for a message (a hostile request can be large).
fn cut(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// Where Google says the body is, e.g. `job` for `GoogleCloudRunV2Job`, `database_instance` for
/// `DatabaseInstance`: the schema's name without the `Google<Product>V<n>` prefix, in snake case.
fn body_location(schema: &str) -> String {
    let mut name = schema;
    if let Some(rest) = schema.strip_prefix("Google") {
        let bytes = rest.as_bytes();
        for (i, _) in rest.match_indices('V') {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let after = &rest[i + 1 + digits..];
            let after = ["alpha", "beta"]
                .iter()
                .find_map(|s| after.strip_prefix(s))
                .map(|a| a.trim_start_matches(|c: char| c.is_ascii_digit()))
                .unwrap_or(after);
            if digits > 0 && after.starts_with(|c: char| c.is_ascii_uppercase()) {
                name = after;
                break;
            }
        }
    }
    snake_case(name)
}

/// `taskCount` -> `task_count`: Google names fields by their proto names in error locations.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Request,
    Response,
}

struct Check<'d> {
    doc: &'d Document,
    method_id: &'d str,
    mode: Mode,
    violations: Vec<FieldViolation>,
    warnings: Vec<String>,
}

impl<'d> Check<'d> {
    fn new(doc: &'d Document, method_id: &'d str, mode: Mode) -> Check<'d> {
        Check {
            doc,
            method_id,
            mode,
            violations: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn violation(&mut self, field: String, description: String) {
        self.violations.push(FieldViolation { field, description });
    }

    fn path_parameters(&mut self, route: &Route, path: &str) {
        for (name, value) in route.path_values(path) {
            if let Some((_, pattern, re)) = route.path_patterns.iter().find(|(n, _, _)| *n == name)
                && !re.is_match(&value)
            {
                self.violation(
                    name.clone(),
                    format!(
                        "Invalid value for path parameter '{name}': {}. Must be a match of regex '{pattern}'.",
                        short(&Value::String(value.clone()))
                    ),
                );
            }
        }
    }

    fn query_parameters(&mut self, route: &Route, query: &[(String, String)]) {
        let empty = Map::new();
        let params = route.parameters().unwrap_or(&empty);
        let in_query = |name: &str| {
            params
                .get(name)
                .filter(|p| p.get("location").and_then(Value::as_str) == Some("query"))
                .or_else(|| self.doc.standard_parameters.get(name))
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in query {
            let Some(param) = in_query(name) else {
                let name = &cut(name);
                self.violation(
                    name.clone(),
                    format!(
                        "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. \
                         Field '{name}' could not be found in request message ({} documents no query parameter {name:?}).",
                        route.id
                    ),
                );
                continue;
            };
            let repeated = param.get("repeated").and_then(Value::as_bool) == Some(true);
            if !repeated && seen.contains(&name.as_str()) {
                self.violation(
                    name.clone(),
                    format!("Invalid JSON payload received. Query parameter '{name}' is not repeated, but is given more than once."),
                );
            }
            seen.push(name);
            let value = Value::String(value.clone());
            if let Some(problem) = scalar_problem(param, &value, Place::Query) {
                self.violation(
                    name.clone(),
                    format!(
                        "Invalid value at '{name}' ({}), {}: {problem}",
                        proto_type(param),
                        short(&value)
                    ),
                );
            }
        }
        for (name, param) in params {
            let required = param.get("required").and_then(Value::as_bool) == Some(true);
            if required
                && param.get("location").and_then(Value::as_str) == Some("query")
                && !seen.contains(&name.as_str())
            {
                self.violation(
                    name.clone(),
                    format!(
                        "Required parameter '{name}' is missing: {} needs it in the query.",
                        route.id
                    ),
                );
            }
        }
    }

    /// Checks `value` against `schema` at `location` (`job.template`, `containers[0]`, ...).
    fn value(&mut self, schema: &Value, value: &Value, location: &str) {
        let Some(schema) = self.resolve(schema, location) else {
            return;
        };
        // proto3 JSON: null is the field's default.
        if value.is_null() {
            return;
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => self.object(schema, value, location),
            Some("array") => match value {
                Value::Array(items) => {
                    let any = json!({"type": "any"});
                    let item_schema = schema.get("items").unwrap_or(&any);
                    for (i, item) in items.iter().enumerate() {
                        self.value(item_schema, item, &format!("{location}[{i}]"));
                    }
                }
                other => self.violation(
                    location.to_owned(),
                    format!(
                        "Invalid value at '{location}' (TYPE_LIST), {}: expected a JSON array",
                        short(other)
                    ),
                ),
            },
            Some("any") | None => {}
            Some(_) => {
                if let Some(problem) = scalar_problem(schema, value, Place::Body) {
                    self.violation(
                        location.to_owned(),
                        format!(
                            "Invalid value at '{location}' ({}), {}: {problem}",
                            proto_type(schema),
                            short(value)
                        ),
                    );
                }
            }
        }
    }

    fn object(&mut self, schema: &Value, value: &Value, location: &str) {
        let Value::Object(fields) = value else {
            self.violation(
                location.to_owned(),
                format!(
                    "Invalid value at '{location}' (TYPE_MESSAGE), {}: expected a JSON object",
                    short(value)
                ),
            );
            return;
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        if properties.is_none() && additional.is_none() {
            // A free-form object (no documented fields at all, e.g. a JSON `Struct`).
            return;
        }
        for (name, field_value) in fields {
            if let Some(field_schema) = properties.and_then(|p| p.get(name)) {
                let field_location = join(location, &snake_case(name));
                if self.mode == Mode::Request
                    && is_output_only(field_schema)
                    && !field_value.is_null()
                {
                    self.warnings.push(format!(
                        "'{field_location}' is output only: Google ignores it in a request"
                    ));
                }
                self.value(field_schema, field_value, &field_location);
            } else if let Some(additional) = additional {
                self.value(additional, field_value, &format!("{location}[{name:?}]"));
            } else {
                let name = cut(name);
                self.violation(
                    location.to_owned(),
                    format!("Invalid JSON payload received. Unknown name \"{name}\" at '{location}': Cannot find field."),
                );
            }
        }
        if self.mode == Mode::Request {
            for (name, field_schema) in properties.into_iter().flatten() {
                if required_for(field_schema, self.method_id) && !fields.contains_key(name) {
                    let field_location = join(location, &snake_case(name));
                    self.violation(
                        field_location.clone(),
                        format!(
                            "Required field '{field_location}' not specified: {} needs it.",
                            self.method_id
                        ),
                    );
                }
            }
        }
    }

    /// Follows `$ref`s to a schema with a type (a missing one is a violation: the document is broken).
    fn resolve<'s>(&mut self, schema: &'s Value, location: &str) -> Option<&'s Value>
    where
        'd: 's,
    {
        let mut schema = schema;
        for _ in 0..16 {
            let Some(name) = schema.get("$ref").and_then(Value::as_str) else {
                return Some(schema);
            };
            match self.doc.schema(name) {
                Some(target) => schema = target,
                None => {
                    self.violation(
                        location.to_owned(),
                        format!(
                            "{} refers to the schema {name:?}, which it does not define",
                            self.doc.id
                        ),
                    );
                    return None;
                }
            }
        }
        self.violation(
            location.to_owned(),
            format!(
                "{} has a `$ref` chain too long to follow at '{location}'",
                self.doc.id
            ),
        );
        None
    }
}

fn join(location: &str, name: &str) -> String {
    if location.is_empty() {
        name.to_owned()
    } else {
        format!("{location}.{name}")
    }
}

/// Output-only fields: `readOnly`, or (in documents that lack it, like Cloud Storage's) a
/// description that says so.
fn is_output_only(schema: &Value) -> bool {
    if schema.get("readOnly").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let start = description.trim_start();
    start.starts_with("Output only") || start.starts_with("[Output Only]")
}

/// `annotations.required` lists the methods that need the field (Compute, Cloud Storage).
fn required_for(schema: &Value, method_id: &str) -> bool {
    schema
        .pointer("/annotations/required")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(method_id)))
}

/// The proto type Google names in its messages.
fn proto_type(schema: &Value) -> &'static str {
    if schema.get("enum").is_some() {
        return "TYPE_ENUM";
    }
    let format = schema.get("format").and_then(Value::as_str);
    match (schema.get("type").and_then(Value::as_str), format) {
        (Some("boolean"), _) => "TYPE_BOOL",
        (_, Some("int64")) => "TYPE_INT64",
        (_, Some("uint64")) => "TYPE_UINT64",
        (_, Some("int32")) => "TYPE_INT32",
        (_, Some("uint32")) => "TYPE_UINT32",
        (_, Some("double")) => "TYPE_DOUBLE",
        (_, Some("float")) => "TYPE_FLOAT",
        (_, Some("byte")) => "TYPE_BYTES",
        (Some("integer"), _) => "TYPE_INT32",
        (Some("number"), _) => "TYPE_DOUBLE",
        _ => "TYPE_STRING",
    }
}

/// Where a scalar is: a query parameter's value is always text.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Query,
    Body,
}

/// What is wrong with a scalar `value` for `schema` (`type`, `format`, `enum`), if anything.
/// Query parameter values arrive as strings and are checked the same way: proto3 JSON accepts
/// a 64-bit integer, and any integer, as a string.
fn scalar_problem(schema: &Value, value: &Value, place: Place) -> Option<String> {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let integer_in_range = |text: &str| -> bool {
        match format {
            "uint32" => text.parse::<u32>().is_ok(),
            "uint64" => text.parse::<u64>().is_ok(),
            "int64" => text.parse::<i64>().is_ok(),
            _ => text.parse::<i32>().is_ok(),
        }
    };
    let integer = |value: &Value| match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => integer_in_range(&n.to_string()),
        // 3.0 is an integer in JSON's eyes, and Google's.
        Value::Number(n) => n
            .as_f64()
            .is_some_and(|f| f.fract() == 0.0 && integer_in_range(&format!("{f:.0}"))),
        Value::String(s) => integer_in_range(s),
        _ => false,
    };
    let range = match format {
        "uint32" => "an unsigned 32-bit integer",
        "uint64" => "an unsigned 64-bit integer",
        "int64" => "a 64-bit integer",
        _ => "a 32-bit integer",
    };
    match kind {
        "boolean" => match value {
            Value::Bool(_) => None,
            Value::String(s) if place == Place::Query && (s == "true" || s == "false") => None,
            _ => Some("expected true or false".into()),
        },
        "integer" => (!integer(value)).then(|| format!("expected {range}")),
        "number" => {
            let ok = match value {
                Value::Number(_) => true,
                Value::String(s) => {
                    matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity")
                        || s.parse::<f64>().is_ok()
                }
                _ => false,
            };
            (!ok).then(|| "expected a number".into())
        }
        _ if matches!(format, "int64" | "uint64") => {
            (!integer(value)).then(|| format!("expected {range}"))
        }
        _ => {
            let Value::String(text) = value else {
                return Some("expected a JSON string".into());
            };
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.iter().any(|a| a.as_str() == Some(text))
            {
                let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                return Some(format!("expected one of {}", names.join(", ")));
            }
            string_format_problem(format, text)
        }
    }
}

fn string_format_problem(format: &str, text: &str) -> Option<String> {
    let all = |s: &str, f: fn(char) -> bool| !s.is_empty() && s.chars().all(f);
    match format {
        "google-duration" => {
            // `3.5s`, `-1s`: seconds with up to nine fractional digits.
            let ok = text.strip_suffix('s').is_some_and(|n| {
                let n = n.strip_prefix('-').unwrap_or(n);
                let (whole, frac) = n.split_once('.').unwrap_or((n, "1"));
                all(whole, |c| c.is_ascii_digit())
                    && all(frac, |c| c.is_ascii_digit())
                    && frac.len() <= 9
            });
            (!ok).then(|| "expected a duration in seconds such as \"3.5s\"".into())
        }
        "google-datetime" | "date-time" => {
            let b = text.as_bytes();
            let ok = b.len() >= 20
                && b[4] == b'-'
                && b[7] == b'-'
                && matches!(b[10], b'T' | b't')
                && b[13] == b':'
                && b[16] == b':'
                && (text.ends_with(['Z', 'z']) || matches!(b[b.len() - 6], b'+' | b'-'));
            (!ok).then(|| "expected an RFC 3339 timestamp such as \"2026-01-02T03:04:05Z\"".into())
        }
        "byte" => {
            let ok = text
                .trim_end_matches('=')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_'));
            (!ok).then(|| "expected base64".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_locations_drop_the_product_prefix_and_use_snake_case() {
        assert_eq!(body_location("GoogleCloudRunV2Job"), "job");
        assert_eq!(
            body_location("GoogleIamAdminV1ServiceAccount"),
            "service_account"
        );
        assert_eq!(body_location("DatabaseInstance"), "database_instance");
        assert_eq!(
            body_location("GoogleLongrunningOperation"),
            "google_longrunning_operation"
        );
    }

    #[test]
    fn query_strings_are_split_and_decoded() {
        assert_eq!(
            parse_query("jobId=x&fields=a%2Cb&q=a+b&flag"),
            vec![
                ("jobId".to_owned(), "x".to_owned()),
                ("fields".to_owned(), "a,b".to_owned()),
                ("q".to_owned(), "a b".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }
}
