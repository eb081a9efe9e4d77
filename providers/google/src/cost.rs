//! What a deployment costs in a month when nobody uses it: list prices in USD for
//! us-central1 (Tier 1 regions), as of the date below. Idle means no request reaches the web
//! server and no job runs; what stays billed is what runs or is stored all the time.
//!
//! Sources, as read on the date below: Google's Cloud Run pricing page (request-based billing
//! costs nothing at zero instances; an instance kept warm is billed per vCPU-second and
//! GiB-second), Compute Engine's and the network pricing pages (an e2-micro, 30 GB of standard
//! disk and the free tier of one e2-micro in us-central1, us-east1 and us-west1; an external
//! IPv4 address in use is billed by the hour, free tier or not), Cloud SQL's pricing page
//! (shared-core tiers by the hour, storage by the GB-month; Cloud SQL has no free tier) and
//! Cloud Storage's (standard storage by the GB-month). The Cloud SQL and disk rates are list
//! prices as commonly quoted, not checked against a bill: treat the total as an estimate.

/// When the prices were read.
pub const PRICES_AS_OF: &str = "2026-08";

/// Hours in an average month, as Google's calculators count.
const HOURS_PER_MONTH: f64 = 730.0;

/// An always-on Cloud Run instance (instance-based rates), per vCPU-second and GiB-second.
const RUN_WARM_VCPU_SECOND: f64 = 0.000018;
const RUN_WARM_GIB_SECOND: f64 = 0.000002;
/// Compute Engine, per hour (the e2-micro free tier covers one in the free regions).
const E2_MICRO_HOUR: f64 = 0.0084;
const EXTERNAL_IPV4_HOUR: f64 = 0.005;
/// Standard persistent disk per GB-month, 30 GB free with the free e2-micro.
const PD_STANDARD_GB_MONTH: f64 = 0.04;
const FREE_PD_GB: f64 = 30.0;
/// Cloud SQL shared-core tiers per hour, and storage per GB-month.
const SQL_TIERS_HOUR: &[(&str, f64)] = &[("db-f1-micro", 0.0105), ("db-g1-small", 0.035)];
const SQL_SSD_GB_MONTH: f64 = 0.17;
const SQL_HDD_GB_MONTH: f64 = 0.09;

/// Regions where one e2-micro a month is free.
const FREE_TIER_REGIONS: &[&str] = &["us-central1", "us-east1", "us-west1"];

use serde_json::Value;
use weir_provider_sdk::{IdleCost, ResourceRef};

use crate::normalize::{cpu_millis, memory_bytes};
use crate::schemas::types::{CLOUD_RUN_SERVICE, COMPUTE_INSTANCE, SQL_INSTANCE};

/// The idle cost of `resources` (a deployment's Google resources, as planned or recorded):
/// Cloud Run services by their minimum instances, VMs by machine, disk and address, Cloud SQL
/// instances by tier and storage. Jobs, secrets, IAM and APIs cost nothing idle; a bucket's
/// cost depends on what it holds, which a plan cannot know. `None` when none is priced.
/// The types [`idle_cost`] prices: what bills while nothing runs.
pub const PRICED: &[&str] = &[CLOUD_RUN_SERVICE, COMPUTE_INSTANCE, SQL_INSTANCE];

pub fn idle_cost(resources: &[ResourceRef]) -> Option<IdleCost> {
    let mut idle = IdleCost {
        prices_as_of: PRICES_AS_OF.to_owned(),
        ..Default::default()
    };
    let mut priced = false;
    for r in resources {
        let a = &r.attributes;
        let text = |pointer: &str| a.pointer(pointer).and_then(Value::as_str);
        let number = |pointer: &str| match a.pointer(pointer) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        match r.type_name.as_str() {
            CLOUD_RUN_SERVICE => {
                let min = number("/template/scaling/minInstanceCount")
                    .or_else(|| number("/scaling/minInstanceCount"))
                    .unwrap_or(0.0);
                let limits = "/template/containers/0/resources/limits";
                let cpu = text(&format!("{limits}/cpu"))
                    .and_then(|c| cpu_millis(c).ok())
                    .map_or(1.0, |millis| millis as f64 / 1000.0);
                let memory = text(&format!("{limits}/memory"))
                    .and_then(|m| memory_bytes(m).ok())
                    .map_or(0.5, |bytes| bytes as f64 / (1024.0 * 1024.0 * 1024.0));
                webserver(&mut idle, min as u32, cpu, memory);
            }
            COMPUTE_INSTANCE => {
                let last = |p: &str| text(p).map(|v| v.rsplit('/').next().unwrap_or(v).to_owned());
                let machine = last("/machineType").unwrap_or_default();
                let zone = last("/zone").unwrap_or_default();
                let region = zone.rsplit_once('-').map_or(zone.as_str(), |(r, _)| r);
                let disk = number("/disks/0/initializeParams/diskSizeGb").unwrap_or(10.0);
                let address = a
                    .pointer("/networkInterfaces/0/accessConfigs")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty());
                scheduler(&mut idle, &machine, region, disk, address);
            }
            SQL_INSTANCE => {
                let tier = text("/settings/tier").unwrap_or_default();
                let disk = number("/settings/dataDiskSizeGb").unwrap_or(10.0);
                let ssd = text("/settings/dataDiskType") != Some("PD_HDD");
                database(&mut idle, tier, disk, ssd);
            }
            _ => continue,
        }
        priced = true;
    }
    priced.then_some(idle)
}

/// The web server's share: nothing at zero minimum instances, else the warm instances.
fn webserver(idle: &mut IdleCost, min_instances: u32, cpu: f64, memory_gib: f64) {
    if min_instances == 0 {
        idle.push("web server (scales to zero)", 0.0);
        return;
    }
    let seconds = HOURS_PER_MONTH * 3600.0 * f64::from(min_instances);
    let cost = seconds * (cpu * RUN_WARM_VCPU_SECOND + memory_gib * RUN_WARM_GIB_SECOND);
    idle.push(format!("web server ({min_instances} warm)"), cost);
    idle.warnings.push(format!(
        "the web server keeps {min_instances} instance(s) running (min_instances > 0): about ${cost:.2}/month even when idle"
    ));
}

/// The scheduler VM: its machine, disk and external address.
fn scheduler(idle: &mut IdleCost, machine_type: &str, region: &str, disk_gb: f64, address: bool) {
    let free = machine_type == "e2-micro" && FREE_TIER_REGIONS.contains(&region);
    if machine_type == "e2-micro" {
        let vm = if free {
            0.0
        } else {
            E2_MICRO_HOUR * HOURS_PER_MONTH
        };
        idle.push(format!("scheduler VM ({machine_type})"), vm);
    } else {
        idle.unpriced.push(format!("scheduler VM ({machine_type})"));
    }
    if !free {
        idle.warnings.push(format!(
            "the scheduler VM ({machine_type} in {region}) is outside the free tier (one e2-micro in {})",
            FREE_TIER_REGIONS.join(", ")
        ));
    }
    let billed_gb = if free {
        (disk_gb - FREE_PD_GB).max(0.0)
    } else {
        disk_gb
    };
    idle.push("scheduler disk", billed_gb * PD_STANDARD_GB_MONTH);
    if address {
        idle.push(
            "scheduler external IPv4",
            EXTERNAL_IPV4_HOUR * HOURS_PER_MONTH,
        );
    }
}

/// The Cloud SQL instance and its storage.
fn database(idle: &mut IdleCost, tier: &str, disk_gb: f64, ssd: bool) {
    match SQL_TIERS_HOUR.iter().find(|(t, _)| *t == tier) {
        Some((_, hour)) => idle.push(format!("Cloud SQL ({tier})"), hour * HOURS_PER_MONTH),
        None => idle.unpriced.push(format!("Cloud SQL ({tier})")),
    }
    let rate = if ssd {
        SQL_SSD_GB_MONTH
    } else {
        SQL_HDD_GB_MONTH
    };
    idle.push("Cloud SQL storage", disk_gb * rate);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(type_name: &str, attributes: Value) -> ResourceRef {
        ResourceRef {
            address: format!("{type_name}.x"),
            type_name: type_name.into(),
            attributes,
            sensitive_paths: Vec::new(),
        }
    }

    fn quickstart(min_instances: u32, zone: &str) -> Vec<ResourceRef> {
        vec![
            resource(
                CLOUD_RUN_SERVICE,
                json!({"template": {"scaling": {"minInstanceCount": min_instances},
                    "containers": [{"resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}]}}),
            ),
            resource(
                COMPUTE_INSTANCE,
                json!({"zone": zone, "machineType": format!("zones/{zone}/machineTypes/e2-micro"),
                    "disks": [{"initializeParams": {"diskSizeGb": "30"}}],
                    "networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}]}),
            ),
            resource(
                SQL_INSTANCE,
                json!({"settings": {"tier": "db-f1-micro", "dataDiskSizeGb": "10", "dataDiskType": "PD_HDD"}}),
            ),
            resource("google_cloud_run_v2_job", json!({})),
        ]
    }

    #[test]
    fn the_quickstart_shape_idles_at_the_database_and_the_address() {
        let idle = idle_cost(&quickstart(0, "us-central1-a")).unwrap();
        assert!(idle.warnings.is_empty(), "{:?}", idle.warnings);
        // 7.67 (SQL) + 0.90 (HDD) + 3.65 (IPv4)
        assert!((idle.total() - 12.2).abs() < 0.1, "{}", idle.total());
        assert_eq!(idle.prices_as_of, PRICES_AS_OF);
    }

    #[test]
    fn what_keeps_a_deployment_from_scaling_to_zero_is_a_warning() {
        let idle = idle_cost(&quickstart(1, "europe-west1-b")).unwrap();
        assert_eq!(idle.warnings.len(), 2, "{:?}", idle.warnings);
        assert!(idle.warnings[0].contains("min_instances > 0"));
        assert!(idle.warnings[1].contains("outside the free tier"));
        // One warm instance of 1 vCPU and 2 GiB: 730 h × 3600 s × (0.000018 + 2 × 0.000002).
        let warm = idle.items.iter().find(|i| i.what.contains("warm")).unwrap();
        assert!((warm.usd_per_month - 57.8).abs() < 0.1, "{warm:?}");
    }

    #[test]
    fn nothing_priced_is_no_estimate() {
        assert_eq!(
            idle_cost(&[resource("google_cloud_run_v2_job", json!({}))]),
            None
        );
    }
}
