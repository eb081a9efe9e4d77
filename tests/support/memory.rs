//! An in-memory provider for engine tests: objects live in a map; every call is logged, so
//! tests can check the order of operations; failures can be injected per address.

use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use weir_provider_sdk::{PlannedValue, Provider, ProviderError, ResourceRef, ResourceSchema};

#[derive(Default)]
pub struct MemoryProvider {
    pub objects: Mutex<BTreeMap<String, Value>>,
    pub log: Mutex<Vec<String>>,
    pub fail: Mutex<HashSet<String>>,
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
                .computed("id"),
            // Force-new on nested paths, as cloud resources have them.
            ResourceSchema::new("server", "an object with nested attributes")
                .force_new("location")
                .force_new("settings.tier")
                .force_new("interfaces.*.network")
                .attribute("settings")
                .attribute("interfaces")
                .computed("id"),
        ]
    }

    fn plan(
        &self,
        _type_name: &str,
        prior: Option<&Value>,
        mut desired: Value,
    ) -> Result<PlannedValue, ProviderError> {
        // `id` is chosen at create and kept.
        let id = prior.and_then(|p| p.get("id")).cloned();
        let unknown = id.is_none();
        if let Some(obj) = desired.as_object_mut() {
            obj.insert("id".into(), id.unwrap_or(Value::Null));
        }
        let mut planned = PlannedValue::known(desired);
        if unknown {
            planned.unknown.push(vec!["id".into()]);
        }
        Ok(planned)
    }

    async fn read(&self, resources: &[ResourceRef]) -> Vec<Result<Option<Value>, ProviderError>> {
        let objects = self.objects.lock().unwrap();
        resources
            .iter()
            .map(|r| Ok(objects.get(&r.address).cloned()))
            .collect()
    }

    async fn create(&self, r: &ResourceRef) -> Result<Value, ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("create {}", r.address));
        if self.fail.lock().unwrap().contains(&r.address) {
            return Err(ProviderError::permanent(format!(
                "injected failure for {}",
                r.address
            )));
        }
        let mut value = r.attributes.clone();
        value["id"] = Value::String(format!("id-{}", r.address));
        self.objects
            .lock()
            .unwrap()
            .insert(r.address.clone(), value.clone());
        Ok(value)
    }

    async fn update(&self, _prior: &Value, r: &ResourceRef) -> Result<Value, ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("update {}", r.address));
        if self.fail.lock().unwrap().contains(&r.address) {
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

    async fn delete(&self, r: &ResourceRef) -> Result<(), ProviderError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("delete {}", r.address));
        self.objects.lock().unwrap().remove(&r.address);
        Ok(())
    }
}
