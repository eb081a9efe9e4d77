//! `mage_pipeline`: `pipelines/<uuid>/metadata.yaml`, the pipeline's DAG.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::attrs::{is_false, kind_of, nullable, top_mapping};
use crate::fsio::RelPath;
use crate::yaml;

pub(crate) const TYPE: &str = "mage_pipeline";

/// The attributes of a `mage_pipeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineAttrs {
    pub project_dir: String,
    pub uuid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub variables: Map<String, Value>,
    #[serde(default)]
    pub concurrency_config: Option<ConcurrencyConfig>,
    #[serde(default)]
    pub notification_config: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub blocks: Vec<BlockEntry>,
    #[serde(default, deserialize_with = "nullable")]
    pub conditionals: Vec<BlockEntry>,
    #[serde(default, deserialize_with = "nullable")]
    pub callbacks: Vec<BlockEntry>,
}

/// Mage's `concurrency_config` (`orchestration/concurrency.py`); unset keys are left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConcurrencyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_run_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_run_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_run_limit_all_triggers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pipeline_run_limit_reached: Option<String>,
}

impl ConcurrencyConfig {
    fn is_empty(&self) -> bool {
        *self == ConcurrencyConfig::default()
    }
}

/// One entry of `blocks`, `conditionals` or `callbacks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockEntry {
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "python")]
    pub language: String,
    #[serde(default, deserialize_with = "nullable")]
    pub upstream_blocks: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub downstream_blocks: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub configuration: BlockConfiguration,
    #[serde(default)]
    pub retry_config: Option<RetryConfig>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

fn python() -> String {
    "python".to_string()
}

/// A block's `configuration`: `dynamic` and `reduce_output` are always present in attributes
/// (false when unset); any other key is passed through as it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct BlockConfiguration {
    #[serde(default, deserialize_with = "nullable")]
    pub dynamic: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub reduce_output: bool,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A block's `retry_config`, with Mage's defaults for missing keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryConfig {
    #[serde(default)]
    pub retries: u64,
    #[serde(default = "default_delay")]
    pub delay: u64,
    #[serde(default = "default_max_delay")]
    pub max_delay: u64,
    #[serde(default = "default_true")]
    pub exponential_backoff: bool,
}

fn default_delay() -> u64 {
    5
}
fn default_max_delay() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

impl PipelineAttrs {
    pub(crate) fn from_value(value: &Value) -> Result<PipelineAttrs, String> {
        let mut attrs = PipelineAttrs::deserialize(value).map_err(|e| e.to_string())?;
        attrs.normalize();
        attrs.rel_path()?;
        if let Some(config) = &attrs.notification_config {
            check_notification_config(config)?;
        }
        Ok(attrs)
    }

    /// Empty optional maps mean "not set", as they do for Mage.
    fn normalize(&mut self) {
        if self
            .concurrency_config
            .as_ref()
            .is_some_and(ConcurrencyConfig::is_empty)
        {
            self.concurrency_config = None;
        }
        if self.notification_config.as_ref().is_some_and(Map::is_empty) {
            self.notification_config = None;
        }
    }

    pub(crate) fn rel_path(&self) -> Result<RelPath, String> {
        path_for(&self.uuid)
    }

    pub(crate) fn to_value(&self) -> Result<Value, String> {
        serde_json::to_value(self).map_err(|e| e.to_string())
    }

    /// The text of `pipelines/<uuid>/metadata.yaml`.
    pub(crate) fn render(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct Configuration<'a> {
            #[serde(skip_serializing_if = "is_false")]
            dynamic: bool,
            #[serde(skip_serializing_if = "is_false")]
            reduce_output: bool,
            #[serde(flatten)]
            other: &'a Map<String, Value>,
        }
        #[derive(Serialize)]
        struct Block<'a> {
            uuid: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            language: &'a str,
            upstream_blocks: &'a [String],
            downstream_blocks: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            configuration: Option<Configuration<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_config: Option<&'a RetryConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout: Option<u64>,
        }
        #[derive(Serialize)]
        struct File<'a> {
            uuid: &'a str,
            name: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            description: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            tags: &'a [String],
            blocks: Vec<Block<'a>>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            conditionals: Vec<Block<'a>>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            callbacks: Vec<Block<'a>>,
            #[serde(skip_serializing_if = "Map::is_empty")]
            variables: &'a Map<String, Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            concurrency_config: Option<&'a ConcurrencyConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            notification_config: Option<&'a Map<String, Value>>,
        }
        fn blocks(entries: &[BlockEntry]) -> Vec<Block<'_>> {
            entries
                .iter()
                .map(|b| Block {
                    uuid: &b.uuid,
                    kind: &b.kind,
                    language: &b.language,
                    upstream_blocks: &b.upstream_blocks,
                    downstream_blocks: &b.downstream_blocks,
                    configuration: if b.configuration.dynamic
                        || b.configuration.reduce_output
                        || !b.configuration.other.is_empty()
                    {
                        Some(Configuration {
                            dynamic: b.configuration.dynamic,
                            reduce_output: b.configuration.reduce_output,
                            other: &b.configuration.other,
                        })
                    } else {
                        None
                    },
                    retry_config: b.retry_config.as_ref(),
                    timeout: b.timeout,
                })
                .collect()
        }
        yaml::to_yaml(&File {
            uuid: &self.uuid,
            name: &self.name,
            description: &self.description,
            kind: "python",
            tags: &self.tags,
            blocks: blocks(&self.blocks),
            conditionals: blocks(&self.conditionals),
            callbacks: blocks(&self.callbacks),
            variables: &self.variables,
            concurrency_config: self.concurrency_config.as_ref(),
            notification_config: self.notification_config.as_ref(),
        })
    }
}

/// Mage builds its `NotificationConfig` dataclass from this mapping when a run starts; an
/// unknown key raises `TypeError` and breaks the pipeline's runs, and an unknown key in
/// `message_templates` silently drops every template.
fn check_notification_config(config: &Map<String, Value>) -> Result<(), String> {
    const KEYS: &[&str] = &[
        "alert_on",
        "email_config",
        "google_chat_config",
        "opsgenie_config",
        "slack_config",
        "teams_config",
        "discord_config",
        "telegram_config",
        "message_templates",
    ];
    if let Some(key) = config.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "notification_config: Mage does not know the key `{key}` (it would fail every run of the pipeline); known keys: {}",
            KEYS.join(", ")
        ));
    }
    if let Some(Value::Object(templates)) = config.get("message_templates") {
        for (event, template) in templates {
            if !matches!(event.as_str(), "success" | "failure" | "passed_sla") {
                return Err(format!(
                    "notification_config.message_templates: Mage does not know the event `{event}` (success, failure, passed_sla)"
                ));
            }
            if let Value::Object(fields) = template
                && let Some(field) = fields
                    .keys()
                    .find(|f| !matches!(f.as_str(), "title" | "summary" | "details"))
            {
                return Err(format!(
                    "notification_config.message_templates.{event}: Mage does not know the field `{field}` (title, summary, details)"
                ));
            }
        }
    }
    Ok(())
}

/// `pipelines/<uuid>/metadata.yaml`.
pub(crate) fn path_for(uuid: &str) -> Result<RelPath, String> {
    RelPath::from_segments(&["pipelines", uuid, "metadata.yaml"])
        .map_err(|e| format!("pipeline uuid: {e}"))
}

const PIPELINE_KEYS: &[&str] = &[
    "name",
    "description",
    "tags",
    "variables",
    "concurrency_config",
    "notification_config",
    "blocks",
    "conditionals",
    "callbacks",
];

const BLOCK_KEYS: &[&str] = &[
    "uuid",
    "type",
    "language",
    "upstream_blocks",
    "downstream_blocks",
    "configuration",
    "retry_config",
    "timeout",
];

/// Reads `metadata.yaml` back into attributes. The pipeline's identity is its folder
/// (`uuid`); keys Mage ignores or adds for its UI (`status`, `color`, `name` of a block,
/// `created_at`, …) are ignored, and defaults fill what is missing.
pub(crate) fn parse(project_dir: &str, uuid: &str, text: &str) -> Result<Value, String> {
    let file = top_mapping(yaml::from_yaml(text)?, "the pipeline metadata.yaml")?;
    let mut attrs = Map::new();
    attrs.insert("project_dir".into(), Value::String(project_dir.into()));
    attrs.insert("uuid".into(), Value::String(uuid.into()));
    for key in PIPELINE_KEYS {
        let Some(value) = file.get(*key) else {
            continue;
        };
        let value = match *key {
            "blocks" | "conditionals" | "callbacks" => filter_blocks(key, value)?,
            // A YAML key with nothing after it is null.
            _ => value.clone(),
        };
        attrs.insert((*key).to_string(), value);
    }
    let parsed = PipelineAttrs::from_value(&Value::Object(attrs)).map_err(|e| {
        format!("the pipeline metadata.yaml does not have the shape Mage expects: {e}")
    })?;
    parsed.to_value()
}

fn filter_blocks(key: &str, value: &Value) -> Result<Value, String> {
    let entries = match value {
        Value::Null => return Ok(Value::Null),
        Value::Array(entries) => entries,
        other => {
            return Err(format!(
                "`{key}` must be a list, but it is {}",
                kind_of(other)
            ));
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err(format!(
                "every entry of `{key}` must be a mapping, but one is {}",
                kind_of(entry)
            ));
        };
        let kept: Map<String, Value> = entry
            .iter()
            .filter(|(k, _)| BLOCK_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(Value::Object(kept));
    }
    Ok(Value::Array(out))
}
