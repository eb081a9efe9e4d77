//! `mage_block`: one block code file (`data_loaders/load.py`, `custom/x.py`, …).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fsio::RelPath;

pub(crate) const TYPE: &str = "mage_block";

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
    pub(crate) fn from_value(value: &Value) -> Result<BlockAttrs, String> {
        let attrs = BlockAttrs::deserialize(value).map_err(|e| e.to_string())?;
        attrs.rel_path()?;
        Ok(attrs)
    }

    pub(crate) fn rel_path(&self) -> Result<RelPath, String> {
        path_for(&self.path)
    }

    pub(crate) fn to_value(&self) -> Value {
        json!({"project_dir": self.project_dir, "path": self.path, "code": self.code})
    }
}

pub(crate) fn path_for(path: &str) -> Result<RelPath, String> {
    let rel = crate::fsio::project_file(path).map_err(|e| format!("block path: {e}"))?;
    let folders = rel.ancestor_keys();
    if folders.is_empty() {
        return Err(format!(
            "block path: `{path}` must be inside a block folder such as `data_loaders/`"
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
