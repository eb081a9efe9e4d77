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

/// What a deployment's idle month is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdleCost {
    /// Each item and its monthly cost in USD.
    pub items: Vec<(String, f64)>,
    /// What keeps the deployment from costing nothing when idle beyond what must be kept
    /// (the database and its storage).
    pub warnings: Vec<String>,
    /// Items whose price this table does not know.
    pub unpriced: Vec<String>,
}

impl IdleCost {
    pub fn total(&self) -> f64 {
        self.items.iter().map(|(_, c)| c).sum()
    }

    /// One line for a plan: the total and its parts.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .items
            .iter()
            .map(|(what, c)| format!("{what} ${c:.2}"))
            .collect();
        let mut text = format!(
            "estimated idle cost: ${:.2}/month ({}; list prices of {PRICES_AS_OF}, before taxes and discounts)",
            self.total(),
            parts.join(", ")
        );
        if !self.unpriced.is_empty() {
            text.push_str(&format!("; not priced: {}", self.unpriced.join(", ")));
        }
        text
    }
}

/// The web server's share: nothing at zero minimum instances, else the warm instances.
pub fn webserver(idle: &mut IdleCost, min_instances: u32, cpu: f64, memory_gib: f64) {
    if min_instances == 0 {
        idle.items.push(("web server (scales to zero)".into(), 0.0));
        return;
    }
    let seconds = HOURS_PER_MONTH * 3600.0 * f64::from(min_instances);
    let cost = seconds * (cpu * RUN_WARM_VCPU_SECOND + memory_gib * RUN_WARM_GIB_SECOND);
    idle.items
        .push((format!("web server ({min_instances} warm)"), cost));
    idle.warnings.push(format!(
        "the web server keeps {min_instances} instance(s) running (min_instances > 0): about ${cost:.2}/month even when idle"
    ));
}

/// The scheduler VM: its machine, disk and external address.
pub fn scheduler(idle: &mut IdleCost, machine_type: &str, region: &str, disk_gb: f64) {
    let free = machine_type == "e2-micro" && FREE_TIER_REGIONS.contains(&region);
    if machine_type == "e2-micro" {
        let vm = if free {
            0.0
        } else {
            E2_MICRO_HOUR * HOURS_PER_MONTH
        };
        idle.items
            .push((format!("scheduler VM ({machine_type})"), vm));
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
    idle.items
        .push(("scheduler disk".into(), billed_gb * PD_STANDARD_GB_MONTH));
    idle.items.push((
        "scheduler external IPv4".into(),
        EXTERNAL_IPV4_HOUR * HOURS_PER_MONTH,
    ));
}

/// The Cloud SQL instance and its storage.
pub fn database(idle: &mut IdleCost, tier: &str, disk_gb: f64, ssd: bool) {
    match SQL_TIERS_HOUR.iter().find(|(t, _)| *t == tier) {
        Some((_, hour)) => idle
            .items
            .push((format!("Cloud SQL ({tier})"), hour * HOURS_PER_MONTH)),
        None => idle.unpriced.push(format!("Cloud SQL ({tier})")),
    }
    let rate = if ssd {
        SQL_SSD_GB_MONTH
    } else {
        SQL_HDD_GB_MONTH
    };
    idle.items
        .push(("Cloud SQL storage".into(), disk_gb * rate));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quickstart_shape_idles_at_the_database_and_the_address() {
        let mut idle = IdleCost::default();
        webserver(&mut idle, 0, 1.0, 2.0);
        scheduler(&mut idle, "e2-micro", "us-central1", 30.0);
        database(&mut idle, "db-f1-micro", 10.0, false);
        assert!(idle.warnings.is_empty(), "{:?}", idle.warnings);
        // 7.67 (SQL) + 0.90 (HDD) + 3.65 (IPv4)
        assert!((idle.total() - 12.2).abs() < 0.1, "{}", idle.total());
        assert!(idle.summary().starts_with("estimated idle cost: $12.2"));
    }

    #[test]
    fn what_keeps_a_deployment_from_scaling_to_zero_is_a_warning() {
        let mut idle = IdleCost::default();
        webserver(&mut idle, 1, 1.0, 2.0);
        scheduler(&mut idle, "e2-micro", "europe-west1", 30.0);
        assert_eq!(idle.warnings.len(), 2);
        assert!(idle.warnings[0].contains("min_instances > 0"));
        assert!(idle.warnings[1].contains("outside the free tier"));
    }
}
