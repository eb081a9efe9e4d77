//! Helpers shared by the resource types: lenient access to recorded attributes, serde helpers.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Deserializes `null` as the type's default (an empty list, map or string).
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// A string attribute from recorded attributes (state), which may be in any shape.
pub(crate) fn str_attr<'a>(attributes: &'a Value, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_str)
}

/// The mapping at the top of a parsed YAML file; `null` (an empty file) is an empty mapping.
pub(crate) fn top_mapping(document: Value, what: &str) -> Result<Map<String, Value>, String> {
    match document {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(format!(
            "{what} must be a YAML mapping, but it is {}",
            kind_of(&other)
        )),
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The attributes `read` returns for a file that exists but cannot be understood: the
/// identifying attributes, and `unparseable` with the reason. They differ from any desired
/// value, so the plan shows an update (which rewrites the file) instead of failing.
pub(crate) fn unparseable(identity: &[(&str, String)], reason: String) -> Value {
    let mut map = Map::new();
    for (name, value) in identity {
        map.insert((*name).to_string(), Value::String(value.clone()));
    }
    map.insert("unparseable".to_string(), Value::String(reason));
    Value::Object(map)
}
