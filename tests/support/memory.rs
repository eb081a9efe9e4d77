//! An in-memory provider for engine tests: objects live in a map; every call is logged, so
//! tests can check the order of operations; failures can be injected per address.

use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use weir_provider_sdk::{
    Cancel, PlannedValue, Provider, ProviderConfig, ProviderError, ResourceRef, ResourceSchema,
};

#[derive(Default)]
pub struct MemoryProvider {
    pub objects: Mutex<BTreeMap<String, Value>>,
    pub log: Mutex<Vec<String>>,
    /// Creates and updates of these addresses fail before touching anything.
    pub fail: Mutex<HashSet<String>>,
    /// Creates of these addresses make the object, then fail (a long operation that timed
    /// out): the error carries the object, half-configured (`value` not set yet).
    pub fail_after_create: Mutex<HashSet<String>>,
    /// Creates of these addresses make the object, then wait for it to be ready, which it
    /// never is: only a cancel ends the wait.
    pub hang: Mutex<HashSet<String>>,
    /// Every configuration received, in order.
    pub configs: Mutex<Vec<ProviderConfig>>,
}

impl MemoryProvider {
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Where the last call `call` is in the log.
    pub fn position(&self, call: &str) -> usize {
        self.calls()
            .iter()
            .rposition(|c| c == call)
            .unwrap_or_else(|| panic!("no call `{call}` in {:?}", self.calls()))
    }

    fn injected(&self, set: &Mutex<HashSet<String>>, address: &str) -> bool {
        set.lock().unwrap().contains(address)
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        "memory"
    }

    fn schemas(&self) -> Vec<ResourceSchema> {
        vec![
            ResourceSchema::new("thing", "a thing")
                .force_new("kind")
                .attribute("value")
                .computed("id")
                .computed("url"),
            // Force-new on nested paths, as cloud resources have them.
            ResourceSchema::new("server", "an object with nested attributes")
                .force_new("location")
                .force_new("settings.tier")
                .force_new("interfaces.*.network")
                .attribute("settings")
                .attribute("interfaces")
                .computed("id"),
            // An object that lives inside a thing (as a database in its instance).
            ResourceSchema::new("part", "an object inside a thing")
                .lives_in("thing")
                .attribute("value"),
        ]
    }

    async fn configure(&self, config: &ProviderConfig) -> Result<(), ProviderError> {
        self.log.lock().unwrap().push("configure".into());
        self.configs.lock().unwrap().push(config.clone());
        Ok(())
    }

    fn plan(
        &self,
        _type_name: &str,
        prior: Option<&Value>,
        mut desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        // `id` and `url` are chosen at create and kept.
        let mut unknown = Vec::new();
        for computed in ["id", "url"] {
            let kept = prior.and_then(|p| p.get(computed)).cloned();
            if kept.is_none() {
                unknown.push(vec![computed.to_string()]);
            }
            if let Some(obj) = desired.as_object_mut() {
                obj.insert(computed.into(), kept.unwrap_or(Value::Null));
            }
        }
        let mut planned = PlannedValue::known(desired);
        planned.unknown = unknown;
        Ok(planned)
    }

    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
        self.log.lock().unwrap().push("read".into());
        let objects = self.objects.lock().unwrap();
        resources
            .iter()
            .map(|r| Ok(objects.get(&r.address).cloned()))
            .collect()
    }

    async fn create(&self, r: &ResourceRef, cancel: &Cancel) -> Result<Value, ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("create {}", r.address));
        if self.injected(&self.fail, &r.address) {
            return Err(ProviderError::permanent(format!(
                "injected failure for {}",
                r.address
            )));
        }
        // As a cloud API answers a second create of the same name.
        if self.objects.lock().unwrap().contains_key(&r.address) {
            return Err(ProviderError::conflict(format!(
                "{} already exists",
                r.address
            )));
        }
        let mut value = r.attributes.clone();
        value["id"] = Value::String(format!("id-{}", r.address));
        value["url"] = Value::String(format!("https://{}.example", r.address));
        let half_done = self.injected(&self.fail_after_create, &r.address);
        if half_done {
            value["value"] = Value::Null;
        }
        self.objects
            .lock()
            .unwrap()
            .insert(r.address.clone(), value.clone());
        if half_done {
            return Err(
                ProviderError::retryable(format!("timed out waiting for {}", r.address))
                    .with_existing(value),
            );
        }
        if self.injected(&self.hang, &r.address) {
            cancel.cancelled().await;
            return Err(ProviderError::cancelled(format!(
                "stopped waiting for {} to be ready",
                r.address
            ))
            .with_existing(value));
        }
        Ok(value)
    }

    async fn update(
        &self,
        _prior: &Value,
        r: &ResourceRef,
        _cancel: &Cancel,
    ) -> Result<Value, ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("update {}", r.address));
        if self.injected(&self.fail, &r.address) {
            return Err(ProviderError::permanent(format!(
                "injected failure for {}",
                r.address
            )));
        }
        self.objects
            .lock()
            .unwrap()
            .insert(r.address.clone(), r.attributes.clone());
        Ok(r.attributes.clone())
    }

    async fn delete(&self, r: &ResourceRef, _cancel: &Cancel) -> Result<(), ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("delete {}", r.address));
        self.objects.lock().unwrap().remove(&r.address);
        Ok(())
    }
}
