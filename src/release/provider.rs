//! The `release` provider: one resource type, [`TYPE`], a gcp deployment's code release in its
//! bucket (see the module above for the layout).
//!
//! Its attributes are `bucket`, `prefix`, `keep_releases`, `files` (path → `{sha256, size}`: the
//! manifest) and `release` (the pointed release's id, computed). Lowering adds `content`
//! (path → text) for every file; [`Provider::plan`] keeps only the content of the files whose
//! hash differs from the live release, so the plan shows what changes and nothing else, and
//! state never records `content` (create and update return the value without it).

use super::{FileEntry, ReleaseStore};
use crate::state::StateError;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use weir_provider_sdk::retry::{Idempotency, RetryPolicy, retry};
use weir_provider_sdk::{
    Cancel, CredentialsSource, Endpoints, PlannedValue, Provider, ProviderConfig, ProviderError,
    ResourceRef, ResourceSchema,
};

/// The provider's name in state.
pub const NAME: &str = "release";
/// The resource type of a code release.
pub const TYPE: &str = "weir_release";

/// Manages code releases in Cloud Storage.
#[derive(Default)]
pub struct ReleaseProvider {
    access: Mutex<(CredentialsSource, Endpoints)>,
}

/// The attributes a resource's store and release are read from.
struct Attrs {
    bucket: String,
    prefix: String,
    keep: usize,
    files: BTreeMap<String, FileEntry>,
    content: BTreeMap<String, Vec<u8>>,
}

fn bad(address: &str, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::permanent(format!("{address}: {what}"))
}

impl Attrs {
    fn from(resource: &ResourceRef) -> Result<Attrs, ProviderError> {
        let a = &resource.attributes;
        let text = |name: &str| {
            a[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(&resource.address, format!("`{name}` is not a string")))
        };
        let files = serde_json::from_value(a["files"].clone())
            .map_err(|e| bad(&resource.address, format!("`files`: {e}")))?;
        let content = a["content"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(path, text)| Some((path.clone(), text.as_str()?.as_bytes().to_vec())))
            .collect();
        Ok(Attrs {
            bucket: text("bucket")?,
            prefix: text("prefix")?,
            keep: a["keep_releases"]
                .as_u64()
                .map_or(super::DEFAULT_KEEP, |n| n as usize),
            files,
            content,
        })
    }
}

impl ReleaseProvider {
    fn store(&self, bucket: &str, prefix: &str) -> Result<ReleaseStore, ProviderError> {
        let (credentials, endpoints) = self
            .access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ReleaseStore::with_access(bucket, prefix, credentials, endpoints)
            .map_err(ProviderError::permanent)
    }

    /// Publishes the release `resource` asks for; its value as state records it.
    async fn publish(
        &self,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        let attrs = Attrs::from(resource)?;
        let store = self.store(&attrs.bucket, &attrs.prefix)?;
        let published = blocking(cancel, move || {
            store.publish_manifest(&attrs.files, &attrs.content, attrs.keep)
        })
        .await?;
        let mut value = resource.attributes.clone();
        if let Value::Object(map) = &mut value {
            map.remove("content");
            map.insert("release".into(), json!(published.release));
        }
        Ok(value)
    }
}

/// Runs the store's blocking calls off the async workers, again when Cloud Storage kept
/// answering "try later" past the client's own few attempts. Every call may be repeated:
/// objects are written only if absent, a repeated publish reads the pointer again and switches
/// it conditioned on what it read.
async fn blocking<T: Send + 'static>(
    cancel: &Cancel,
    work: impl Fn() -> Result<T, StateError> + Send + Sync + 'static,
) -> Result<T, ProviderError> {
    let work = std::sync::Arc::new(work);
    let policy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(4),
        deadline: None,
    };
    retry(&policy, Idempotency::Idempotent, cancel, |_| {
        let work = work.clone();
        async move {
            tokio::task::spawn_blocking(move || work())
                .await
                .map_err(|e| ProviderError::permanent(format!("the release upload stopped: {e}")))?
                .map_err(|e| {
                    if try_later(&e) {
                        ProviderError::retryable(e.to_string())
                    } else {
                        ProviderError::permanent(e.to_string())
                    }
                })
        }
    })
    .await
}

/// Whether Cloud Storage's last answer was one to try again later (429, 408, 5xx).
fn try_later(e: &StateError) -> bool {
    match e {
        StateError::Remote { message, .. } => {
            let status = message.split(' ').next().unwrap_or_default();
            status == "429" || status == "408" || (status.len() == 3 && status.starts_with('5'))
        }
        _ => false,
    }
}

#[async_trait]
impl Provider for ReleaseProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn schemas(&self) -> Vec<ResourceSchema> {
        vec![
            ResourceSchema::new(
                TYPE,
                "The Mage project of a gcp deployment as a release in its bucket: content-addressed files, a manifest per release, a pointer switched last",
            )
            .force_new("bucket")
            .force_new("prefix")
            .attribute("keep_releases")
            .attribute("files")
            .attribute("content")
            .computed("release"),
        ]
    }

    async fn configure(&self, config: &ProviderConfig) -> Result<(), ProviderError> {
        *self.access.lock().unwrap_or_else(|e| e.into_inner()) =
            (config.credentials.clone(), config.endpoints.clone());
        Ok(())
    }

    fn plan(
        &self,
        _type_name: &str,
        prior: Option<&Value>,
        mut desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        let live_files = prior.and_then(|p| p["files"].as_object());
        let unchanged = |path: &str, entry: &Value| {
            live_files.is_some_and(|live| live.get(path) == Some(entry))
        };
        let same_files = live_files.is_some_and(|live| Some(live) == desired["files"].as_object());
        let files = desired["files"].clone();
        if let Some(Value::Object(content)) = desired.get_mut("content") {
            content.retain(|path, _| !unchanged(path, &files[path.as_str()]));
        }
        if desired["content"].as_object().is_some_and(Map::is_empty)
            && let Value::Object(map) = &mut desired
        {
            map.remove("content");
        }
        let mut planned = match (same_files, prior) {
            (true, Some(prior)) => {
                desired["release"] = prior["release"].clone();
                PlannedValue::known(desired)
            }
            _ => {
                let mut planned = PlannedValue::known(desired);
                planned.unknown.push(vec!["release".to_string()]);
                planned
            }
        };
        if !same_files {
            planned.notes.push(
                "a new release is uploaded and the pointer switched to it; containers started after that run it, and the scheduler VM restarts Mage on it within a minute".into(),
            );
        }
        Ok(planned)
    }

    /// The old text of each file the plan changes (the live value has only its hash), so the
    /// plan shows a diff: one read per changed file, none for the others. A content that cannot
    /// be read, or is not text, is left out (the plan then shows the new text alone).
    async fn show_before(&self, _type_name: &str, live: &mut Value, planned: &Value) {
        let (Some(bucket), Some(prefix)) = (live["bucket"].as_str(), live["prefix"].as_str())
        else {
            return;
        };
        let changed: Vec<(String, FileEntry)> = planned["content"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(path, _)| {
                let entry = serde_json::from_value(live["files"].get(path)?.clone()).ok()?;
                Some((path.clone(), entry))
            })
            .collect();
        if changed.is_empty() {
            return;
        }
        let Ok(store) = self.store(bucket, prefix) else {
            return;
        };
        let old = tokio::task::spawn_blocking(move || {
            changed
                .into_iter()
                .filter_map(|(path, entry)| {
                    let text = String::from_utf8(store.content(&entry).ok()?).ok()?;
                    Some((path, Value::String(text)))
                })
                .collect::<Map<String, Value>>()
        })
        .await
        .unwrap_or_default();
        if !old.is_empty()
            && let Value::Object(map) = live
        {
            map.insert("content".into(), Value::Object(old));
        }
    }

    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
        let mut out = Vec::new();
        for resource in resources {
            out.push(self.read_one(resource).await);
        }
        out
    }

    async fn create(
        &self,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        self.publish(resource, cancel).await
    }

    async fn update(
        &self,
        _prior: &Value,
        resource: &ResourceRef,
        cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        self.publish(resource, cancel).await
    }

    async fn delete(&self, resource: &ResourceRef, cancel: &Cancel) -> Result<(), ProviderError> {
        let attrs = Attrs::from(resource)?;
        let store = self.store(&attrs.bucket, &attrs.prefix)?;
        blocking(cancel, move || store.delete_all()).await
    }
}

impl ReleaseProvider {
    /// The pointed release: the pointer and one manifest.
    async fn read_one(&self, resource: &ResourceRef) -> Result<Option<Value>, ProviderError> {
        let attrs = Attrs::from(resource)?;
        let store = self.store(&attrs.bucket, &attrs.prefix)?;
        let (current, _) = blocking(&Cancel::new(), move || store.current()).await?;
        Ok(current.map(|manifest| {
            json!({
                "bucket": attrs.bucket,
                "prefix": attrs.prefix,
                "keep_releases": resource.attributes["keep_releases"],
                "files": manifest.files,
                "release": manifest.id,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Value {
        json!({
            "bucket": "b", "prefix": "code", "keep_releases": 10,
            "files": {
                "a.py": {"sha256": "1", "size": 1},
                "b.py": {"sha256": "2", "size": 1},
            },
            "content": {"a.py": "a", "b.py": "b"},
        })
    }

    #[test]
    fn a_plan_carries_the_content_of_changed_files_only() {
        let provider = ReleaseProvider::default();
        let live = json!({
            "bucket": "b", "prefix": "code", "keep_releases": 10,
            "files": {"a.py": {"sha256": "1", "size": 1}, "b.py": {"sha256": "0", "size": 1}},
            "release": "r1",
        });
        let planned = provider.plan(TYPE, Some(&live), desired()).unwrap();
        assert_eq!(planned.value["content"], json!({"b.py": "b"}));
        assert_eq!(planned.unknown, vec![vec!["release".to_string()]]);

        // The same files: no content, the live release kept, nothing unknown.
        let live = json!({
            "bucket": "b", "prefix": "code", "keep_releases": 10,
            "files": desired()["files"], "release": "r1",
        });
        let planned = provider.plan(TYPE, Some(&live), desired()).unwrap();
        assert!(planned.value.get("content").is_none());
        assert_eq!(planned.value["release"], "r1");
        assert!(planned.unknown.is_empty());
        assert_eq!(planned.value, live);

        // Nothing live: every file's content.
        let planned = provider.plan(TYPE, None, desired()).unwrap();
        assert_eq!(planned.value["content"], desired()["content"]);
    }

    #[test]
    fn only_answers_to_try_later_are_retried() {
        let remote = |message: &str| StateError::Remote {
            action: "upload release file",
            location: "gs://b/o".into(),
            message: message.into(),
        };
        assert!(try_later(&remote("503 Service Unavailable: down")));
        assert!(try_later(&remote("429 Too Many Requests: slow down")));
        assert!(!try_later(&remote("403 Forbidden: no")));
        assert!(!try_later(&remote(
            "someone else switched the release pointer since weir read it; run the command again"
        )));
    }
}
