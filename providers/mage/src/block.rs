//! `mage_block`: one block code file (`data_loaders/load.py`, `custom/x.py`, …); and
//! `mage_file`: one file weir ships with the project under `weir/` (the weir runtime). Both are
//! a path and its text.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fsio::RelPath;

pub(crate) const TYPE: &str = "mage_block";
/// A file of the weir runtime, under [`crate::runtime::DIR`].
pub(crate) const FILE_TYPE: &str = "mage_file";

/// The attributes of a `mage_block`. Lowering computes `path` with Mage's rules
/// (`<type>s/<uuid>.<ext>`, `custom/` singular).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockAttrs {
    pub project_dir: String,
    pub path: String,
    pub code: String,
}

impl BlockAttrs {
    /// The attributes of a `type_name` ([`TYPE`] or [`FILE_TYPE`]), with its path checked.
    pub(crate) fn from_value(type_name: &str, value: &Value) -> Result<BlockAttrs, String> {
        let attrs = BlockAttrs::deserialize(value).map_err(|e| e.to_string())?;
        path_of(type_name, &attrs.path)?;
        Ok(attrs)
    }

    pub(crate) fn to_value(&self) -> Value {
        json!({"project_dir": self.project_dir, "path": self.path, "code": self.code})
    }
}

/// Where a file of `type_name` ([`TYPE`] or [`FILE_TYPE`]) at `path` is in the project.
pub(crate) fn path_of(type_name: &str, path: &str) -> Result<RelPath, String> {
    if type_name == FILE_TYPE {
        runtime_path_for(path)
    } else {
        path_for(path)
    }
}

/// A runtime file's path: inside the runtime's folder, and only there, so that it can never
/// stand for a block's code or Mage's metadata.
fn runtime_path_for(path: &str) -> Result<RelPath, String> {
    let rel = crate::fsio::project_file(path).map_err(|e| format!("file path: {e}"))?;
    if rel.ancestor_keys().first().map(String::as_str) != Some(crate::runtime::DIR) {
        return Err(format!(
            "file path: `{path}` must be inside `{}/`, the weir runtime's folder",
            crate::runtime::DIR
        ));
    }
    Ok(rel)
}

pub(crate) fn path_for(path: &str) -> Result<RelPath, String> {
    let rel = crate::fsio::project_file(path).map_err(|e| format!("block path: {e}"))?;
    let folders = rel.ancestor_keys();
    if folders.is_empty() {
        return Err(format!(
            "block path: `{path}` must be inside a block folder such as `data_loaders/`"
        ));
    }
    if folders.first().is_some_and(|f| f == crate::runtime::DIR) {
        return Err(format!(
            "block path: `{path}` is inside `{}/`, where weir keeps its runtime, not block code",
            crate::runtime::DIR
        ));
    }
    if folders.first().is_some_and(|f| f == "pipelines") {
        return Err(format!(
            "block path: `{path}` is inside `pipelines/`, where Mage keeps pipeline metadata, not block code"
        ));
    }
    Ok(rel)
}

/// The attributes read back from the file's bytes.
pub(crate) fn parse(project_dir: &str, path: &str, bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(code) => json!({"project_dir": project_dir, "path": path, "code": code}),
        Err(e) => json!({
            "project_dir": project_dir,
            "path": path,
            "code": String::from_utf8_lossy(e.as_bytes()),
            "unparseable": format!("the file is not valid UTF-8: {}", e.utf8_error()),
        }),
    }
}
