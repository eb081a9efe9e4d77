//! What a deployment costs in a month when nobody uses it, as a provider estimates it from
//! the attributes of its resources ([`Provider::idle_cost`](crate::Provider::idle_cost)).
//! The plan shows it before and after the change, so a reviewer sees what a change does to
//! the bill of an idle deployment, and what keeps it from scaling to zero.

use serde::{Deserialize, Serialize};

/// The estimated monthly cost of a set of resources when idle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleCost {
    /// Each part and its monthly cost, in US dollars.
    pub items: Vec<CostItem>,
    /// What keeps the deployment from costing only what must be kept (warm instances, a
    /// machine outside the free tier, …).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Parts whose price the provider's table does not know.
    #[serde(default)]
    pub unpriced: Vec<String>,
    /// When the prices were read (e.g. `2026-08`).
    pub prices_as_of: String,
}

/// One part of an [`IdleCost`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostItem {
    pub what: String,
    pub usd_per_month: f64,
}

impl IdleCost {
    pub fn total(&self) -> f64 {
        self.items.iter().map(|i| i.usd_per_month).sum()
    }

    pub fn push(&mut self, what: impl Into<String>, usd_per_month: f64) {
        self.items.push(CostItem {
            what: what.into(),
            usd_per_month,
        });
    }

    /// The parts, on one line: `web server $0.00, Cloud SQL (db-f1-micro) $7.67`, and what is
    /// not priced.
    pub fn parts(&self) -> String {
        let mut parts: Vec<String> = self
            .items
            .iter()
            .map(|i| format!("{} ${:.2}", i.what, i.usd_per_month))
            .collect();
        parts.extend(self.unpriced.iter().map(|u| format!("{u} not priced")));
        parts.join(", ")
    }

    /// Adds `other`'s parts (another provider's share).
    pub fn merge(&mut self, other: IdleCost) {
        self.items.extend(other.items);
        self.warnings.extend(other.warnings);
        self.unpriced.extend(other.unpriced);
        if self.prices_as_of.is_empty() {
            self.prices_as_of = other.prices_as_of;
        }
    }
}

/// The idle cost before and after a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleCostChange {
    /// What is deployed now costs; `None` when nothing priced is deployed.
    pub before: Option<IdleCost>,
    /// What the deployment will cost once the plan is applied; `None` when nothing priced
    /// remains.
    pub after: Option<IdleCost>,
}

impl IdleCostChange {
    /// One line: `$3.65/month now, $12.21/month after this plan (+$8.56)`.
    pub fn headline(&self) -> String {
        let total = |c: &Option<IdleCost>| c.as_ref().map_or(0.0, IdleCost::total);
        let (before, after) = (total(&self.before), total(&self.after));
        let as_of = self
            .after
            .as_ref()
            .or(self.before.as_ref())
            .map_or(String::new(), |c| c.prices_as_of.clone());
        let delta = after - before;
        let change = if delta.abs() < 0.005 {
            "unchanged".to_owned()
        } else {
            format!("{}${:.2}", if delta > 0.0 { "+" } else { "-" }, delta.abs())
        };
        format!(
            "estimated idle cost: ${before:.2}/month now, ${after:.2}/month after this plan ({change}; list prices of {as_of}, before taxes and discounts)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_says_before_after_and_the_difference() {
        let mut after = IdleCost {
            prices_as_of: "2026-08".into(),
            ..Default::default()
        };
        after.push("Cloud SQL", 7.67);
        after.push("address", 3.65);
        let change = IdleCostChange {
            before: None,
            after: Some(after.clone()),
        };
        assert_eq!(
            change.headline(),
            "estimated idle cost: $0.00/month now, $11.32/month after this plan (+$11.32; list prices of 2026-08, before taxes and discounts)"
        );
        let same = IdleCostChange {
            before: Some(after.clone()),
            after: Some(after),
        };
        assert!(
            same.headline().contains("(unchanged;"),
            "{}",
            same.headline()
        );
    }
}
