//! Saved plans (`weir plan --out FILE`, `weir apply FILE`).
//!
//! A saved plan holds the plan with every sensitive value replaced by `(sensitive)`, and for
//! each of them a salted hash. Apply evaluates the configuration again (with the same
//! variables), takes the secrets from there and checks them against the hashes: the plan file
//! never holds a secret, and a secret that changed since the plan is caught. The plan is bound
//! to the state's lineage and serial, the configuration's hash and the weir version.

use super::plan::Plan;
use super::sensitive::{get_path, mask};
use crate::lower::ResourceInstance;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use weir_provider_sdk::AttrPath;

const FORMAT: &str = "weir-plan";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    pub format_version: u32,
    pub salt: String,
    /// address → (path in `after`, salted hash of the value there).
    pub sensitive: BTreeMap<String, Vec<(AttrPath, String)>>,
    pub plan: Plan,
}

fn digest(salt: &str, value: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(value.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A copy of the plan with every sensitive value masked.
pub fn masked(plan: &Plan) -> Plan {
    let mut out = plan.clone();
    for c in &mut out.changes {
        c.before = c.before.as_ref().map(|v| mask(v, &c.before_sensitive));
        c.after = c.after.as_ref().map(|v| mask(v, &c.after_sensitive));
    }
    for d in &mut out.drift {
        d.before = mask(&d.before, &d.sensitive);
        d.after = d.after.as_ref().map(|v| mask(v, &d.sensitive));
    }
    for o in &mut out.outputs {
        if o.sensitive {
            o.before = o
                .before
                .as_ref()
                .map(|_| Value::String(crate::redact::SENSITIVE.into()));
            o.after = o
                .after
                .as_ref()
                .map(|_| Value::String(crate::redact::SENSITIVE.into()));
        }
    }
    out
}

pub fn save(plan: &Plan, path: &Path) -> Result<(), String> {
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let mut sensitive = BTreeMap::new();
    for c in &plan.changes {
        let Some(after) = &c.after else { continue };
        let hashes: Vec<(AttrPath, String)> = c
            .after_sensitive
            .iter()
            .filter_map(|p| get_path(after, p).map(|v| (p.clone(), digest(&salt, v))))
            .collect();
        if !hashes.is_empty() {
            sensitive.insert(c.address.clone(), hashes);
        }
    }
    let file = PlanFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        salt,
        sensitive,
        plan: masked(plan),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write the plan to `{}`: {e}", path.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write the plan to `{}`: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot write the plan to `{}`: {}", path.display(), e.error))?;
    Ok(())
}

pub fn load(path: &Path) -> Result<PlanFile, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the plan `{}`: {e}", path.display()))?;
    let file: PlanFile = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not a weir plan file: {e}", path.display()))?;
    if file.format != FORMAT || file.format_version != FORMAT_VERSION {
        return Err(format!(
            "`{}` is a plan of format {} version {}, which this weir does not read",
            path.display(),
            file.format,
            file.format_version
        ));
    }
    Ok(file)
}

impl PlanFile {
    /// The plan with its secrets put back from the current configuration's instances, each
    /// checked against the hash taken at plan time.
    pub fn restore(&self, desired: &[ResourceInstance]) -> Result<Plan, String> {
        let mut plan = self.plan.clone();
        for c in &mut plan.changes {
            let Some(hashes) = self.sensitive.get(&c.address) else {
                continue;
            };
            let instance = desired
                .iter()
                .find(|i| i.address == c.address)
                .ok_or_else(|| {
                    format!(
                        "the plan changes {}, which is no longer in the configuration",
                        c.address
                    )
                })?;
            let Some(after) = c.after.as_mut() else {
                continue;
            };
            for (path, hash) in hashes {
                let value = get_path(&instance.attributes, path).ok_or_else(|| {
                    format!(
                        "the sensitive value at {} {} is no longer in the configuration",
                        c.address,
                        path.join(".")
                    )
                })?;
                if digest(&self.salt, value) != *hash {
                    return Err(format!(
                        "the sensitive value at {} {} differs from the one planned: make a new plan",
                        c.address,
                        path.join(".")
                    ));
                }
                set_path(after, path, value.clone());
            }
        }
        Ok(plan)
    }
}

fn set_path(target: &mut Value, path: &[String], value: Value) {
    let mut cursor = target;
    for key in path {
        let next = match cursor {
            Value::Object(map) => map.get_mut(key.as_str()),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(v) => cursor = v,
            None => return,
        }
    }
    *cursor = value;
}

impl PlanFile {
    /// Refuses a plan that no longer matches: another state, a state changed since (another
    /// apply, or this plan already applied), another configuration, another weir.
    pub fn check_fresh(
        &self,
        state: Option<&crate::state::State>,
        config_hash: &str,
    ) -> Result<(), String> {
        let plan = &self.plan;
        if plan.weir_version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "the plan was made by weir {}, this is weir {}: make a new plan with this version",
                plan.weir_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        match (&plan.lineage, state) {
            (None, Some(_)) => {
                return Err("the plan was made when there was no state, but state exists now (was the plan applied already?): make a new plan".into());
            }
            (Some(_), None) => {
                return Err(
                    "the plan was made against a state that no longer exists: make a new plan"
                        .into(),
                );
            }
            (Some(lineage), Some(state)) if *lineage != state.lineage => {
                return Err(format!(
                    "the plan was made for another state (lineage {lineage}, the state's is {}): make a new plan",
                    state.lineage
                ));
            }
            (Some(_), Some(state)) if plan.serial != Some(state.serial) => {
                return Err(format!(
                    "the plan is stale: it was made at state serial {}, the state is now at serial {} (something was applied since, perhaps this very plan): make a new plan",
                    plan.serial.unwrap_or(0),
                    state.serial
                ));
            }
            _ => {}
        }
        if plan.config_hash != config_hash {
            return Err("the configuration or its variables changed since the plan was made: make a new plan".into());
        }
        Ok(())
    }
}
