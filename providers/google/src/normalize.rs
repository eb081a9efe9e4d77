//! A desired value as the API will hold it once applied, so that a plan right after an apply
//! compares equal: the defaults the API fills in, quantities in one spelling, values derived
//! from others, and the output-only fields (carried over from the prior value, or known only
//! after apply).

use crate::schemas::{output_only, types::*};
use serde_json::{Map, Value, json};
use weir_provider_sdk::{AttrPath, PlannedValue, ProviderError};

pub(crate) fn plan(
    type_name: &str,
    prior: Option<&Value>,
    mut desired: Value,
) -> Result<PlannedValue, ProviderError> {
    let bad = |e: String| {
        ProviderError::permanent(format!("a `{type_name}` resource: {e}"))
            .with_help("this is a bug in weir's lowering of the gcp target; please report it")
    };
    if !desired.is_object() {
        return Err(bad("its attributes are not an object".into()));
    }
    let mut unknown: Vec<AttrPath> = Vec::new();
    let mut notes = Vec::new();
    let mut replace: Vec<AttrPath> = Vec::new();
    match type_name {
        CLOUD_RUN_SERVICE => {
            containers(&mut desired, &["template", "containers"]).map_err(bad)?;
            // The API's concurrency: 80 requests per instance with at least one CPU, else 1.
            let fractional = get(
                &desired,
                &["template", "containers", "0", "resources", "limits", "cpu"],
            )
            .and_then(Value::as_str)
            .is_some_and(|cpu| cpu.ends_with('m'));
            default(
                &mut desired,
                &["template", "maxInstanceRequestConcurrency"],
                json!(if fractional { 1 } else { 80 }),
            );
        }
        CLOUD_RUN_JOB => {
            default(&mut desired, &["template", "taskCount"], json!(1));
            default(
                &mut desired,
                &["template", "template", "maxRetries"],
                json!(3),
            );
            default(
                &mut desired,
                &["template", "template", "timeout"],
                json!("600s"),
            );
            containers(&mut desired, &["template", "template", "containers"]).map_err(bad)?;
        }
        SQL_INSTANCE => {
            default(
                &mut desired,
                &["settings", "availabilityType"],
                json!("ZONAL"),
            );
            default(&mut desired, &["settings", "dataDiskType"], json!("PD_SSD"));
            // `project:region:name`, what the Cloud SQL volume and proxy take.
            let part = |k: &str| desired.get(k).and_then(Value::as_str).map(str::to_string);
            if let (Some(p), Some(r), Some(n)) = (part("project"), part("region"), part("name")) {
                set(
                    &mut desired,
                    &["connectionName"],
                    json!(format!("{p}:{r}:{n}")),
                );
            }
        }
        STORAGE_BUCKET => {
            default(&mut desired, &["storageClass"], json!("STANDARD"));
        }
        SERVICE_ACCOUNT => {
            // The email IAM derives from the account id.
            let part = |k: &str| desired.get(k).and_then(Value::as_str).map(str::to_string);
            if let (Some(p), Some(id)) = (part("project"), part("accountId")) {
                set(&mut desired, &["email"], json!(crate::iam::email(&id, &p)));
            }
        }
        SECRET_VERSION => {
            let chosen_at_apply =
                desired.get("generate").is_some() || desired.get("template").is_some();
            let kept = prior
                .and_then(|p| p.pointer("/payload/data"))
                .filter(|_| chosen_at_apply)
                .cloned();
            match kept {
                Some(data) => {
                    set(&mut desired, &["payload", "data"], data);
                }
                None if chosen_at_apply => {
                    set(&mut desired, &["payload", "data"], Value::Null);
                    unknown.push(path(&["payload", "data"]));
                }
                None => {}
            }
        }
        COMPUTE_INSTANCE => {
            if prior.is_some_and(|p| p.get("machineType") != desired.get("machineType")) {
                notes
                    .push("changing the machine type stops the VM and starts it again".to_string());
            }
            // A persistent disk grows in place (`disks.resize`) but never shrinks: a smaller
            // boot disk is a new VM.
            let size = |v: &Value| get(v, &BOOT_DISK_SIZE).and_then(disk_size_gb);
            if let (Some(was), Some(wanted)) = (prior.and_then(size), size(&desired))
                && wanted < was
            {
                replace.push(path(&BOOT_DISK_SIZE));
            }
        }
        _ => {}
    }
    for name in output_only(type_name) {
        let p: Vec<&str> = name.split('.').collect();
        match prior
            .and_then(|prior| get(prior, &p))
            .filter(|v| !v.is_null())
        {
            Some(v) => {
                let v = v.clone();
                set(&mut desired, &p, v);
            }
            None => {
                if set(&mut desired, &p, Value::Null) {
                    unknown.push(path(&p));
                }
            }
        }
    }
    Ok(PlannedValue {
        value: desired,
        unknown,
        notes,
        replace,
    })
}

/// Where a VM's boot disk size is: the lowering puts the boot disk first.
pub(crate) const BOOT_DISK_SIZE: [&str; 4] = ["disks", "0", "initializeParams", "diskSizeGb"];

/// A disk size in GB, as Compute writes it (an int64, so a JSON string) or as a number.
pub(crate) fn disk_size_gb(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        v => v.as_u64(),
    }
}

fn path(p: &[&str]) -> AttrPath {
    p.iter().map(|s| s.to_string()).collect()
}

fn get<'a>(value: &'a Value, p: &[&str]) -> Option<&'a Value> {
    p.iter().try_fold(value, |v, k| match v {
        Value::Object(m) => m.get(*k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Sets the value at `p`, creating the objects on the way (not arrays: an index that is not
/// there leaves the value as it is). Whether it was set.
fn set(value: &mut Value, p: &[&str], new: Value) -> bool {
    let Some((last, parents)) = p.split_last() else {
        return false;
    };
    let mut v = value;
    for k in parents {
        v = match v {
            Value::Object(m) => m
                .entry(k.to_string())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(a) => match k.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(item) => item,
                None => return false,
            },
            _ => return false,
        };
    }
    match v {
        Value::Object(m) => {
            m.insert(last.to_string(), new);
            true
        }
        _ => false,
    }
}

/// Sets `p` to what the API fills in when it is missing.
fn default(value: &mut Value, p: &[&str], fill: Value) {
    if get(value, p).is_none_or(Value::is_null) {
        set(value, p, fill);
    }
}

/// Each container's CPU and memory limits in their one spelling.
fn containers(value: &mut Value, p: &[&str]) -> Result<(), String> {
    let Some(Value::Array(items)) = p.iter().try_fold(&mut *value, |v, k| v.get_mut(*k)) else {
        return Ok(());
    };
    for c in items {
        let Some(limits) = c
            .pointer_mut("/resources/limits")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(cpu) = limits.get_mut("cpu") {
            let text = cpu
                .as_str()
                .ok_or("`resources.limits.cpu` is not a string")?;
            *cpu = Value::String(cpu_quantity(text)?);
        }
        if let Some(memory) = limits.get_mut("memory") {
            let text = memory
                .as_str()
                .ok_or("`resources.limits.memory` is not a string")?;
            *memory = Value::String(memory_quantity(text)?);
        }
    }
    Ok(())
}

/// A CPU quantity in one spelling: whole CPUs as a number (`1000m` → `1`), the rest in
/// millicores (`0.5` → `500m`).
pub fn cpu_quantity(text: &str) -> Result<String, String> {
    let milli = cpu_millis(text)?;
    Ok(if milli.is_multiple_of(1000) {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    })
}

/// A CPU quantity in millicores (`1` → 1000, `500m` → 500).
pub(crate) fn cpu_millis(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let milli: u64 = if let Some(m) = t.strip_suffix('m') {
        m.parse().map_err(|_| bad_quantity("CPU", text))?
    } else {
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad_quantity("CPU", text));
        }
        let whole: u64 = whole.parse().map_err(|_| bad_quantity("CPU", text))?;
        let frac: u64 = format!("{frac:0<3}").parse().unwrap_or(0);
        whole * 1000 + frac
    };
    Ok(milli)
}

/// The units of memory quantities (Kubernetes style), binary first.
const MEMORY_UNITS: [(&str, u64); 8] = [
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("k", 1_000),
];

/// A memory quantity (Kubernetes style) in one spelling: the unit that divides it into the
/// smallest number (`2048Mi` → `2Gi`, `2000M` → `2G`), else bytes.
pub fn memory_quantity(text: &str) -> Result<String, String> {
    let bytes = memory_bytes(text)?;
    if bytes == 0 {
        return Ok("0".into());
    }
    // The unit that divides it into the smallest number; binary first on a tie.
    Ok(MEMORY_UNITS
        .iter()
        .filter(|(_, s)| bytes.is_multiple_of(*s))
        .min_by_key(|(_, s)| bytes / s)
        .map(|(name, s)| format!("{}{name}", bytes / s))
        .unwrap_or_else(|| bytes.to_string()))
}

/// A memory quantity in bytes (`2Gi` → 2147483648).
pub(crate) fn memory_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let n: u64 = digits.parse().map_err(|_| bad_quantity("memory", text))?;
    let scale = match unit {
        "" => 1,
        u => MEMORY_UNITS
            .iter()
            .find(|(name, _)| *name == u)
            .map(|(_, s)| *s)
            .ok_or_else(|| bad_quantity("memory", text))?,
    };
    n.checked_mul(scale)
        .ok_or_else(|| bad_quantity("memory", text))
}

fn bad_quantity(what: &str, text: &str) -> String {
    format!(
        "`{text}` is not a {what} quantity (e.g. `2Gi`, `512Mi` for memory; `1`, `500m` for CPU)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_have_one_spelling() {
        assert_eq!(memory_quantity("2048Mi").unwrap(), "2Gi");
        assert_eq!(memory_quantity("2Gi").unwrap(), "2Gi");
        assert_eq!(memory_quantity("1536Mi").unwrap(), "1536Mi");
        assert_eq!(memory_quantity("2000M").unwrap(), "2G");
        assert_eq!(memory_quantity("1073741824").unwrap(), "1Gi");
        assert!(memory_quantity("2 GB").is_err());
        assert!(memory_quantity("99999999999Ti").is_err());
        assert_eq!(cpu_quantity("1000m").unwrap(), "1");
        assert_eq!(cpu_quantity("2").unwrap(), "2");
        assert_eq!(cpu_quantity("0.5").unwrap(), "500m");
        assert!(cpu_quantity("one").is_err());
    }

    #[test]
    fn a_job_is_planned_as_the_api_stores_it() {
        let planned = plan(
            CLOUD_RUN_JOB,
            None,
            json!({"name": "j", "template": {"template": {"containers": [
                {"resources": {"limits": {"cpu": "2000m", "memory": "4096Mi"}}}
            ]}}}),
        )
        .unwrap();
        let v = &planned.value;
        assert_eq!(v.pointer("/template/taskCount"), Some(&json!(1)));
        assert_eq!(v.pointer("/template/template/maxRetries"), Some(&json!(3)));
        assert_eq!(
            v.pointer("/template/template/containers/0/resources/limits"),
            Some(&json!({"cpu": "2", "memory": "4Gi"}))
        );
        assert!(planned.unknown.contains(&path(&["etag"])));
    }

    #[test]
    fn a_service_is_planned_with_the_concurrency_the_api_gives_its_cpu() {
        let service = |cpu: &str| {
            let desired = json!({"name": "s", "template": {"containers": [
                {"resources": {"limits": {"cpu": cpu, "memory": "1024Mi"}}}
            ]}});
            plan(CLOUD_RUN_SERVICE, None, desired).unwrap().value
        };
        let whole = service("1000m");
        assert_eq!(
            whole.pointer("/template/maxInstanceRequestConcurrency"),
            Some(&json!(80))
        );
        assert_eq!(
            whole.pointer("/template/containers/0/resources/limits"),
            Some(&json!({"cpu": "1", "memory": "1Gi"}))
        );
        let fraction = service("0.5");
        assert_eq!(
            fraction.pointer("/template/maxInstanceRequestConcurrency"),
            Some(&json!(1))
        );
    }

    #[test]
    fn output_only_fields_are_unknown_until_state_has_them() {
        let desired = json!({"name": "s", "template": {}});
        let planned = plan(CLOUD_RUN_SERVICE, None, desired.clone()).unwrap();
        assert!(planned.unknown.contains(&path(&["uri"])));
        let prior = json!({"uri": "https://s-abc.a.run.app", "etag": "e1"});
        let planned = plan(CLOUD_RUN_SERVICE, Some(&prior), desired).unwrap();
        assert!(!planned.unknown.contains(&path(&["uri"])));
        assert_eq!(planned.value["uri"], "https://s-abc.a.run.app");
        // The VM's address is inside an array that the lowering lays out.
        let vm = json!({"networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}]});
        let planned = plan(COMPUTE_INSTANCE, None, vm).unwrap();
        assert!(planned.unknown.contains(&path(&[
            "networkInterfaces",
            "0",
            "accessConfigs",
            "0",
            "natIP"
        ])));
    }

    #[test]
    fn a_generated_secret_is_chosen_once() {
        let desired = json!({"secret": "s", "generate": {"length": 32}});
        let planned = plan(SECRET_VERSION, None, desired.clone()).unwrap();
        assert!(planned.unknown.contains(&path(&["payload", "data"])));
        let prior = json!({"secret": "s", "generate": {"length": 32}, "payload": {"data": "kept"}});
        let planned = plan(SECRET_VERSION, Some(&prior), desired).unwrap();
        assert_eq!(planned.value.pointer("/payload/data"), Some(&json!("kept")));
        assert!(!planned.unknown.contains(&path(&["payload", "data"])));
    }

    #[test]
    fn a_smaller_boot_disk_is_a_new_vm_and_a_larger_one_is_not() {
        let vm = |size: &str| json!({"disks": [{"boot": true, "initializeParams": {"diskSizeGb": size}}]});
        let prior = vm("30");
        let replace = |size: &str| {
            plan(COMPUTE_INSTANCE, Some(&prior), vm(size))
                .unwrap()
                .replace
        };
        assert_eq!(replace("20"), vec![path(&BOOT_DISK_SIZE)]);
        assert!(replace("40").is_empty());
        assert!(replace("30").is_empty());
        assert!(
            plan(COMPUTE_INSTANCE, None, vm("20"))
                .unwrap()
                .replace
                .is_empty()
        );
    }

    #[test]
    fn the_sql_connection_name_is_known_at_plan() {
        let planned = plan(
            SQL_INSTANCE,
            None,
            json!({"project": "p", "region": "us-central1", "name": "db", "settings": {}}),
        )
        .unwrap();
        assert_eq!(planned.value["connectionName"], "p:us-central1:db");
        assert_eq!(planned.value["settings"]["availabilityType"], "ZONAL");
    }
}
