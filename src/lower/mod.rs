//! The third stage: turn the domain model into resource instances, each with an address, a
//! type, the provider that manages it, its attributes (what the provider sees), its direct
//! dependencies and the paths of its sensitive values. This is the only place that knows which
//! resources a domain object needs.

mod gcp;
mod mage;

/// The program a gcp deployment's containers run to fetch the pointed code release.
pub use gcp::FETCH_RELEASE;

use crate::diagnostics::Diagnostics;
use crate::model::{Configuration, Target};
use serde_json::Value;
use weir_provider_sdk::AttrPath;

/// One resource the configuration asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInstance {
    /// `type.name`, e.g. `mage_pipeline.orders`.
    pub address: String,
    pub type_name: String,
    pub name: String,
    pub provider: String,
    pub attributes: Value,
    /// Addresses this instance directly depends on.
    pub dependencies: Vec<String>,
    pub sensitive_paths: Vec<AttrPath>,
    /// `lifecycle { prevent_destroy }`: a plan that destroys or replaces this instance is an
    /// error. Apply records it in state, which keeps protecting the object once this instance
    /// is gone from the configuration.
    pub prevent_destroy: bool,
    /// What a plan that changes this instance should also say (e.g. a schedule's next runs).
    pub notes: Vec<Note>,
    /// The configuration blocks this instance is lowered from (`pipeline.orders`,
    /// `schedule.nightly`): `--target` takes these as well as the address.
    pub lowered_from: Vec<String>,
}

/// Something a plan says about an instance it changes. Computed only then: working out the
/// next runs of thousands of schedules on every plan would cost more than the plan itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A schedule's next run times, from its cron expression (UTC), none before `start`
    /// (RFC 3339), as Mage schedules them.
    NextRuns {
        schedule: String,
        cron: String,
        start: Option<String>,
    },
    /// A fixed text.
    Text(String),
}

impl Note {
    /// The note's text; `runs` caches next run times by cron expression and start (many
    /// schedules share one).
    pub fn text(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        runs: &mut std::collections::HashMap<String, Vec<String>>,
    ) -> Option<String> {
        match self {
            Note::NextRuns {
                schedule,
                cron,
                start,
            } => {
                let future_start = start.as_deref().and_then(|text| {
                    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?;
                    let at = at.with_timezone(&chrono::Utc);
                    (at > now).then_some((text, at))
                });
                let Some((start_text, start)) = future_start else {
                    let runs = runs
                        .entry(cron.clone())
                        .or_insert_with(|| crate::model::values::next_runs(cron, now, 3));
                    return (!runs.is_empty()).then(|| {
                        format!(
                            "schedule `{schedule}` (`{cron}`, UTC) next runs: {}",
                            runs.join(", ")
                        )
                    });
                };
                // Mage runs nothing before `start`, and runs at `start` itself when the cron
                // matches it: the runs after the last whole second before `start`. `start` is
                // quoted as written, so that the output redactor recognises it if it is secret.
                use chrono::Timelike;
                let after = (start - chrono::Duration::nanoseconds(1))
                    .with_nanosecond(0)
                    .unwrap_or(start);
                let runs = runs
                    .entry(format!("{cron}\u{0}{after}"))
                    .or_insert_with(|| crate::model::values::next_runs(cron, after, 3));
                (!runs.is_empty()).then(|| {
                    format!(
                        "schedule `{schedule}` (`{cron}`, UTC) starts {start_text}; first runs: {}",
                        runs.join(", ")
                    )
                })
            }
            Note::Text(text) => Some(text.clone()),
        }
    }
}

impl ResourceInstance {
    pub fn new(type_name: &str, name: &str, provider: &str, attributes: Value) -> Self {
        ResourceInstance {
            address: format!("{type_name}.{name}"),
            type_name: type_name.to_string(),
            name: name.to_string(),
            provider: provider.to_string(),
            attributes,
            dependencies: Vec::new(),
            sensitive_paths: Vec::new(),
            prevent_destroy: false,
            notes: Vec::new(),
            lowered_from: Vec::new(),
        }
    }

    /// Records that this instance is (partly) lowered from the configuration block at
    /// `address` (`pipeline.orders`).
    pub fn lowered_from(mut self, address: &str) -> Self {
        if !self.lowered_from.iter().any(|a| a == address) {
            self.lowered_from.push(address.to_string());
        }
        self
    }

    pub fn depends_on(mut self, address: &str) -> Self {
        if !self.dependencies.iter().any(|d| d == address) {
            self.dependencies.push(address.to_string());
        }
        self
    }

    pub fn sensitive(mut self, path: &[&str]) -> Self {
        self.sensitive_paths
            .push(path.iter().map(|s| s.to_string()).collect());
        self
    }
}

/// Lowers a validated configuration. Errors are problems only visible once resources are laid
/// out (e.g. two blocks that Mage would keep in the same file). Outputs that show a
/// deployment's value known only after apply are pointed at the resource attribute that holds
/// it.
pub fn lower(model: &mut Configuration) -> Result<Vec<ResourceInstance>, Diagnostics> {
    let instances = match model.deployment.target {
        Target::Local => mage::lower_local(model)?,
        Target::Gcp => gcp::lower_gcp(model)?,
    };
    let deployment = format!("deployment.{}", model.deployment.name);
    for o in &mut model.outputs {
        let Some(from) = o.from.take() else {
            continue;
        };
        if from.address != deployment {
            o.from = Some(from);
            continue;
        }
        o.from = match model.deployment.target {
            Target::Gcp => from
                .path
                .first()
                .and_then(|attr| gcp::output_source(&model.deployment, attr)),
            Target::Local => None,
        };
    }
    Ok(instances)
}

/// A fingerprint of everything a plan depends on from the configuration side: the inputs
/// (files, variables) and the desired instances (which include block code read from files).
/// Saved plans are bound to it.
pub fn fingerprint(model: &Configuration, instances: &[ResourceInstance]) -> String {
    use sha2::{Digest, Sha256};
    /// Feeds JSON straight into the hash, without building a string per instance.
    struct HashWriter<'a>(&'a mut Sha256);
    impl std::io::Write for HashWriter<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Sha256::new();
    h.update(model.hash.as_bytes());
    for i in instances {
        h.update(i.address.as_bytes());
        // Writing a JSON value into a hasher cannot fail.
        let _ = serde_json::to_writer(HashWriter(&mut h), &i.attributes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::Note;
    use std::collections::HashMap;

    fn runs(cron: &str, start: Option<&str>) -> String {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        Note::NextRuns {
            schedule: "s".into(),
            cron: cron.into(),
            start: start.map(str::to_string),
        }
        .text(now, &mut HashMap::new())
        .unwrap()
    }

    #[test]
    fn next_runs_start_no_earlier_than_start() {
        // A start in the past changes nothing.
        assert!(runs("0 3 * * *", Some("2020-01-01T00:00:00Z")).ends_with(
            "next runs: 2026-12-02 03:00 UTC, 2026-12-03 03:00 UTC, 2026-12-04 03:00 UTC"
        ));
        // A start on a matching time is the first run; a moment later, it is not.
        assert!(
            runs("0 3 * * *", Some("2027-03-01T03:00:00Z"))
                .ends_with("starts 2027-03-01T03:00:00Z; first runs: 2027-03-01 03:00 UTC, 2027-03-02 03:00 UTC, 2027-03-03 03:00 UTC")
        );
        assert!(runs("0 3 * * *", Some("2027-03-01T03:00:00.5Z")).ends_with(
            "first runs: 2027-03-02 03:00 UTC, 2027-03-03 03:00 UTC, 2027-03-04 03:00 UTC"
        ));
        assert!(
            runs("0 3 * * *", Some("2027-03-01T05:00:00+02:00")).ends_with(
                "starts 2027-03-01T05:00:00+02:00; first runs: 2027-03-01 03:00 UTC, 2027-03-02 03:00 UTC, 2027-03-03 03:00 UTC"
            )
        );
    }
}
