//! `mage_project`: the project's `metadata.yaml`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::attrs::{nullable, top_mapping};
use crate::yaml;

pub(crate) const TYPE: &str = "mage_project";

/// The attributes of a `mage_project`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectAttrs {
    pub project_dir: String,
    #[serde(default, deserialize_with = "nullable")]
    pub project_uuid: String,
    #[serde(default)]
    pub remote_variables_dir: Option<String>,
    #[serde(default)]
    pub logging: Option<GcsLogging>,
    /// The image that runs the project and its Mage version. Not in `metadata.yaml`: they are
    /// recorded in state and read back from there, so a new version is a change to review.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub mage_version: Option<String>,
}

/// Where Mage uploads its logs (`logging_config` of type `gcs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GcsLogging {
    pub bucket: String,
    #[serde(default, deserialize_with = "nullable")]
    pub prefix: String,
}

impl ProjectAttrs {
    pub(crate) fn from_value(value: &Value) -> Result<ProjectAttrs, String> {
        let attrs = ProjectAttrs::deserialize(value).map_err(|e| e.to_string())?;
        attrs.validate()?;
        Ok(attrs)
    }

    fn validate(&self) -> Result<(), String> {
        // The project metadata.yaml goes through Jinja before Mage parses it.
        let mut values = vec![("project_uuid", self.project_uuid.as_str())];
        if let Some(dir) = &self.remote_variables_dir {
            values.push(("remote_variables_dir", dir));
        }
        if let Some(logging) = &self.logging {
            values.push(("logging.bucket", &logging.bucket));
            values.push(("logging.prefix", &logging.prefix));
        }
        for (name, value) in values {
            if ["{{", "{%", "{#"].iter().any(|m| value.contains(m)) {
                return Err(format!(
                    "`{name}` contains a Jinja delimiter (`{{{{`, `{{%` or `{{#`); Mage renders the project metadata.yaml through Jinja, so it would not stay as written"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn to_value(&self) -> Value {
        json!({
            "project_dir": self.project_dir,
            "project_uuid": self.project_uuid,
            "remote_variables_dir": self.remote_variables_dir,
            "logging": self.logging.as_ref().map(|l| json!({"bucket": l.bucket, "prefix": l.prefix})),
            "image": self.image,
            "mage_version": self.mage_version,
        })
    }

    /// The text of `<project_dir>/metadata.yaml`.
    pub(crate) fn render(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct Destination<'a> {
            bucket: &'a str,
            prefix: &'a str,
        }
        #[derive(Serialize)]
        struct LoggingConfig<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            level: &'a str,
            destination_config: Destination<'a>,
        }
        #[derive(Serialize)]
        struct File<'a> {
            project_uuid: &'a str,
            project_type: &'a str,
            help_improve_mage: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            remote_variables_dir: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            logging_config: Option<LoggingConfig<'a>>,
        }
        yaml::to_yaml(&File {
            project_uuid: &self.project_uuid,
            project_type: "standalone",
            help_improve_mage: false,
            remote_variables_dir: self.remote_variables_dir.as_deref(),
            logging_config: self.logging.as_ref().map(|l| LoggingConfig {
                kind: "gcs",
                level: "INFO",
                destination_config: Destination {
                    bucket: &l.bucket,
                    prefix: &l.prefix,
                },
            }),
        })
    }
}

/// Reads `metadata.yaml` back into attributes. Keys weir does not manage (Mage's own, or the
/// user's) are ignored; a `logging_config` that is not the GCS shape weir writes is returned as
/// it is, so the plan shows the difference. `image` and `mage_version` are not in the file:
/// they are taken from `recorded` (the attributes in state).
pub(crate) fn parse(project_dir: &str, text: &str, recorded: &Value) -> Result<Value, String> {
    let file = top_mapping(yaml::from_yaml(text)?, "the project metadata.yaml")?;
    let project_uuid = match file.get("project_uuid") {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(other) => other.clone(),
    };
    let remote_variables_dir = match file.get("remote_variables_dir") {
        // Mage ignores its own placeholder default.
        Some(Value::String(s)) if s == "s3://bucket/path_prefix" || s.is_empty() => Value::Null,
        None => Value::Null,
        Some(other) => other.clone(),
    };
    let logging = match file.get("logging_config") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(config)) => read_logging(config),
        Some(other) => other.clone(),
    };
    Ok(json!({
        "project_dir": project_dir,
        "project_uuid": project_uuid,
        "remote_variables_dir": remote_variables_dir,
        "logging": logging,
        "image": recorded.get("image").cloned().unwrap_or(Value::Null),
        "mage_version": recorded.get("mage_version").cloned().unwrap_or(Value::Null),
    }))
}

fn read_logging(config: &Map<String, Value>) -> Value {
    let kind = config.get("type").and_then(Value::as_str).unwrap_or("file");
    if kind == "file" && !config.contains_key("destination_config") {
        // Mage's default: logs on the local disk.
        return if config.keys().all(|k| k == "type" || k == "level") {
            Value::Null
        } else {
            Value::Object(config.clone())
        };
    }
    let level_ok = match config.get("level") {
        None | Some(Value::Null) => true,
        Some(Value::String(level)) => level.eq_ignore_ascii_case("INFO"),
        Some(_) => false,
    };
    let known = config
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "level" | "destination_config"));
    if kind == "gcs"
        && level_ok
        && known
        && let Some(Value::Object(destination)) = config.get("destination_config")
        && let Some(Value::String(bucket)) = destination.get("bucket")
        && destination.keys().all(|k| k == "bucket" || k == "prefix")
    {
        let prefix = match destination.get("prefix") {
            None | Some(Value::Null) => Some(String::new()),
            Some(Value::String(prefix)) => Some(prefix.clone()),
            Some(_) => None,
        };
        if let Some(prefix) = prefix {
            return json!({"bucket": bucket, "prefix": prefix});
        }
    }
    Value::Object(config.clone())
}
