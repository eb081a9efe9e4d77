//! Sensitive paths inside attribute values: masking them for output, and checking them.
//!
//! A path segment `*` stands for every array index or object key at that level (lowering marks
//! e.g. `triggers.*.token`). Every function here understands it, so a wildcard path masks in
//! every output the same way a concrete one does.
//!
//! State keeps no secret in clear: [`seal`] replaces each sensitive value by a marker holding
//! its digest keyed with the state's key, and [`reveal`] puts a value back where it is the
//! one the marker was made from, so that what is compared against state compares through the
//! digest.

use crate::redact::SENSITIVE;
use serde_json::Value;
use weir_provider_sdk::{AttrPath, SENSITIVE_MARKER, is_sensitive_marker};

/// A copy of `value` with every sensitive path replaced by `"(sensitive)"`. A path that points
/// into an array or object replaces that whole element.
pub fn mask(value: &Value, paths: &[AttrPath]) -> Value {
    let mut out = value.clone();
    for path in paths {
        if path.is_empty() {
            return Value::String(SENSITIVE.into());
        }
        set_path(&mut out, path);
    }
    out
}

fn set_path(value: &mut Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let children: Vec<&mut Value> = match (head.as_str(), value) {
        ("*", Value::Object(map)) => map.values_mut().collect(),
        ("*", Value::Array(items)) => items.iter_mut().collect(),
        (key, Value::Object(map)) => map.get_mut(key).into_iter().collect(),
        (key, Value::Array(items)) => key
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get_mut(i))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    for child in children {
        if rest.is_empty() {
            if !child.is_null() {
                *child = Value::String(SENSITIVE.into());
            }
        } else {
            set_path(child, rest);
        }
    }
}

/// The marker state keeps in place of the sensitive value at `path` of `address`:
/// `{"__weir_sensitive__": "hmac-sha256:<hex>"}`, keyed with the state's key (the digest a
/// saved plan records for the same value), so that a reader of the state can neither use the
/// secret nor check a guessed one.
pub fn marker(key: &str, address: &str, path: &[String], value: &Value) -> Value {
    let digest = super::file::secret_digest(key, address, path, value);
    let mut map = serde_json::Map::new();
    map.insert(
        SENSITIVE_MARKER.to_string(),
        Value::String(format!("hmac-sha256:{digest}")),
    );
    Value::Object(map)
}

/// Whether `value` holds a secret in clear: a non-null value at `paths` (wildcards expanded)
/// that is not a [`marker`], i.e. what [`seal`] would replace.
pub fn holds_clear_secret(value: &Value, paths: &[AttrPath]) -> bool {
    values_at(value, paths)
        .into_iter()
        .any(|v| !v.is_null() && !is_sensitive_marker(v))
}

/// Replaces every non-null value at `paths` (wildcards expanded) inside `value` by its
/// [`marker`]; markers already there stay. Says whether anything changed.
pub fn seal(value: &mut Value, paths: &[AttrPath], key: &str, address: &str) -> bool {
    let mut changed = false;
    for path in expand(paths, value) {
        if let Some(v) = get_path_mut(value, &path)
            && !v.is_null()
            && !is_sensitive_marker(v)
        {
            *v = marker(key, address, &path, v);
            changed = true;
        }
    }
    changed
}

/// Puts back, for every marker inside `sealed`, the value at the same path of `clear` when
/// that value is the one the marker was made from. Markers whose value differs (or is absent)
/// stay: `sealed` then differs from `clear` there, as the values do.
pub fn reveal(sealed: &mut Value, clear: &Value, key: &str, address: &str) {
    fn walk(v: &mut Value, clear: &Value, here: &mut Vec<String>, key: &str, address: &str) {
        if is_sensitive_marker(v) {
            if let Some(c) = get_path(clear, here)
                && marker(key, address, here, c) == *v
            {
                *v = c.clone();
            }
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    here.push(k.clone());
                    walk(child, clear, here, key, address);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    here.push(i.to_string());
                    walk(child, clear, here, key, address);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    walk(sealed, clear, &mut Vec::new(), key, address);
}

fn get_path_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get_mut(key.as_str()),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Expands `*` segments (any array index or object key) against `value` into concrete paths.
pub fn expand(paths: &[AttrPath], value: &Value) -> Vec<AttrPath> {
    fn walk(value: &Value, rest: &[String], here: &mut Vec<String>, out: &mut Vec<AttrPath>) {
        let Some((head, tail)) = rest.split_first() else {
            out.push(here.clone());
            return;
        };
        let children: Vec<(String, &Value)> = match (head.as_str(), value) {
            ("*", Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            ("*", Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            (key, Value::Object(map)) => map
                .get(key)
                .map(|v| vec![(key.to_string(), v)])
                .unwrap_or_default(),
            (key, Value::Array(items)) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|v| vec![(key.to_string(), v)])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            here.push(key);
            walk(child, tail, here, out);
            here.pop();
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.iter().any(|s| s == "*") {
            walk(value, p, &mut Vec::new(), &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// [`expand`], followed by the paths with `*` themselves: the concrete paths name every secret
/// in `value`, the patterns still cover the elements `value` does not have yet.
pub fn expand_keeping_patterns(paths: &[AttrPath], value: &Value) -> Vec<AttrPath> {
    let mut out = expand(paths, value);
    out.extend(paths.iter().filter(|p| p.iter().any(|s| s == "*")).cloned());
    out
}

/// The value at a path, if any.
pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(key.as_str()),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Every value found at `paths` (wildcards expanded) inside `value`.
pub fn values_at<'a>(value: &'a Value, paths: &[AttrPath]) -> Vec<&'a Value> {
    expand(paths, value)
        .iter()
        .filter_map(|p| get_path(value, p))
        .collect()
}

/// Whether `path` is at or below a sensitive path (a `*` segment matches any key or index).
pub fn is_sensitive(path: &[String], paths: &[AttrPath]) -> bool {
    paths.iter().any(|p| {
        p.len() <= path.len()
            && p.iter()
                .zip(path)
                .all(|(pattern, key)| pattern == "*" || pattern == key)
    })
}

/// Terraform's `*_sensitive` shape: a value mirroring `value` with `true` at sensitive paths.
pub fn sensitivity_shape(value: &Value, paths: &[AttrPath]) -> Value {
    fn walk(value: &Value, here: &mut Vec<String>, paths: &[AttrPath]) -> Option<Value> {
        if is_sensitive(here, paths) {
            return Some(Value::Bool(true));
        }
        match value {
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    here.push(k.clone());
                    if let Some(s) = walk(v, here, paths) {
                        out.insert(k.clone(), s);
                    }
                    here.pop();
                }
                Some(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    here.push(i.to_string());
                    out.push(walk(v, here, paths).unwrap_or(Value::Bool(false)));
                    here.pop();
                }
                Some(Value::Array(out))
            }
            _ => None,
        }
    }
    walk(value, &mut Vec::new(), paths).unwrap_or(Value::Object(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_nested_paths() {
        let v = json!({"a": {"secret": "x", "open": 1}, "list": [{"k": "s"}]});
        let m = mask(
            &v,
            &[
                vec!["a".into(), "secret".into()],
                vec!["list".into(), "0".into()],
            ],
        );
        assert_eq!(
            m,
            json!({"a": {"secret": "(sensitive)", "open": 1}, "list": ["(sensitive)"]})
        );
        let shape = sensitivity_shape(&v, &[vec!["a".into(), "secret".into()]]);
        assert_eq!(shape, json!({"a": {"secret": true}, "list": [{}]}));
    }

    fn path(p: &str) -> AttrPath {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn sealed_secrets_are_keyed_digests_that_reveal_only_their_value() {
        let clear = json!({"name": "etl", "triggers": [{"name": "a", "token": "t0k3n-a"}], "vars": {"pw": "hunter2"}});
        let paths = [path("triggers.*.token"), path("vars.pw")];
        let mut sealed = clear.clone();
        assert!(seal(&mut sealed, &paths, "k1", "x.y"));
        let text = sealed.to_string();
        assert!(
            !text.contains("t0k3n-a") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(weir_provider_sdk::is_sensitive_marker(
            &sealed["vars"]["pw"]
        ));
        assert_eq!(sealed["name"], "etl");
        // Sealing again changes nothing; another key gives another digest.
        assert!(!seal(&mut sealed.clone(), &paths, "k1", "x.y"));
        let mut other = clear.clone();
        seal(&mut other, &paths, "k2", "x.y");
        assert_ne!(other, sealed);
        // Revealed against the same values: the clear value again.
        let mut back = sealed.clone();
        reveal(&mut back, &clear, "k1", "x.y");
        assert_eq!(back, clear);
        // Against another secret: the marker stays, so the values differ.
        let changed = json!({"name": "etl", "triggers": [{"name": "a", "token": "t0k3n-a"}], "vars": {"pw": "hunter3"}});
        let mut back = sealed.clone();
        reveal(&mut back, &changed, "k1", "x.y");
        assert_eq!(back["triggers"], changed["triggers"]);
        assert_eq!(back["vars"]["pw"], sealed["vars"]["pw"]);
    }

    #[test]
    fn wildcard_path_masks_every_element() {
        let v = json!({"triggers": [{"name": "a", "token": "t0k3n-a"}, {"name": "b", "token": "t0k3n-b"}]});
        let paths = [path("triggers.*.token")];
        assert_eq!(
            mask(&v, &paths),
            json!({"triggers": [{"name": "a", "token": "(sensitive)"}, {"name": "b", "token": "(sensitive)"}]})
        );
        assert!(is_sensitive(&path("triggers.1.token"), &paths));
        assert!(!is_sensitive(&path("triggers.1.name"), &paths));
        assert_eq!(
            sensitivity_shape(&v, &paths),
            json!({"triggers": [{"token": true}, {"token": true}]})
        );
        assert_eq!(
            values_at(&v, &paths),
            vec![&json!("t0k3n-a"), &json!("t0k3n-b")]
        );
    }
}
