//! The providers the engine talks to, by name, and their resource schemas by type.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use weir_provider_sdk::{Provider, ResourceSchema};

pub struct Providers {
    by_name: HashMap<String, Arc<dyn Provider>>,
    schemas: HashMap<String, ResourceSchema>,
}

impl Providers {
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Providers {
        let mut by_name = HashMap::new();
        let mut schemas = HashMap::new();
        for p in providers {
            for s in p.schemas() {
                schemas.insert(s.type_name.clone(), s);
            }
            by_name.insert(p.name().to_string(), p);
        }
        Providers { by_name, schemas }
    }

    /// The providers of a configuration in `dir`.
    pub fn for_config(dir: &Path) -> Providers {
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Providers::new(vec![Arc::new(weir_provider_mage::MageProvider::new(base))])
    }

    pub fn get(&self, name: &str) -> Result<&Arc<dyn Provider>, String> {
        self.by_name
            .get(name)
            .ok_or_else(|| format!("no provider named `{name}` in this build of weir"))
    }

    /// Tells every provider the lineage of the state it works for (`None`: no state yet).
    pub fn set_state_lineage(&self, lineage: Option<&str>) {
        for provider in self.by_name.values() {
            provider.set_state_lineage(lineage);
        }
    }

    pub fn schema(&self, type_name: &str) -> Option<&ResourceSchema> {
        self.schemas.get(type_name)
    }
}
