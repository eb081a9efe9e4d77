//! The last stage: the same [`Plan`] value printed three ways — human text for a terminal,
//! JSON in the shape of `terraform show -json` for policy tools and bots, and Markdown for a
//! pull-request comment.
//!
//! Renderers format; they do not decide anything. Every value a plan marks sensitive is masked
//! with [`crate::plan::sensitive::mask`] before it is printed, and, as a second line of defence,
//! the strings found at sensitive paths are scrubbed from the finished output (this also catches
//! a secret that a provider copied into an attribute it did not mark).

pub mod json;
pub mod markdown;
pub mod text;

pub use json::render_json;
pub use markdown::render_markdown;
pub use text::render_text;

use crate::plan::Plan;
use crate::plan::sensitive::values_at;
use crate::redact::Redactor;
use serde_json::Value;
use weir_provider_sdk::AttrPath;

/// An output format of `weir plan` / `weir show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text, Terraform style.
    #[default]
    Text,
    /// The `terraform show -json` shape, with sensitive values replaced.
    Json,
    /// A pull-request comment (GitHub-flavoured Markdown, under 65,536 characters).
    Markdown,
}

/// How a plan is shown, beyond its format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Text and Markdown: the summary and one line per changed address, grouped by action,
    /// without attribute diffs (for very large plans). JSON is always whole.
    pub compact: bool,
    /// The hidden line that heads a Markdown plan.
    pub marker: Marker,
}

/// The first line of a Markdown plan, by which CI finds the one comment or issue to update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Marker {
    /// `<!-- weir:plan deployment=NAME -->`: a pull-request comment.
    #[default]
    Plan,
    /// `<!-- weir:drift deployment=NAME -->`: the body of a drift issue.
    Drift,
}

impl Marker {
    /// The marker line of `plan`, newline included. The deployment name is printed as it is
    /// when made of letters, digits, `-`, `_` and `.` (as names are); any other byte is
    /// percent-encoded, so that no name can end the HTML comment or the line.
    pub fn line(self, plan: &Plan) -> String {
        let kind = match self {
            Marker::Plan => "plan",
            Marker::Drift => "drift",
        };
        let mut name = String::new();
        for b in plan.deployment.as_deref().unwrap_or_default().bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        format!("<!-- weir:{kind} deployment={name} -->\n")
    }
}

/// Renders `plan` in `format`. `color` only affects text; JSON is pretty-printed. The result
/// ends with a newline.
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    render_view(plan, format, color, View::default())
}

/// [`render`], shown as `view` says.
pub fn render_view(plan: &Plan, format: Format, color: bool, view: View) -> String {
    match format {
        Format::Text if view.compact => text::render_text_compact(plan, color),
        Format::Text => render_text(plan, color),
        Format::Json => {
            // A `Value` always serialises; the fallback only keeps this path free of panics.
            let mut s = serde_json::to_string_pretty(&render_json(plan)).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Markdown => markdown::render_markdown_view(plan, view),
    }
}

/// Every string (and number) found at a sensitive path anywhere in the plan, registered as a
/// secret, so finished output can be scrubbed of a value that escaped its mark. Short values
/// are left out: a value computed from a secret may be a common word (`"skip"` from
/// `var.key == "" ? "wait" : "skip"`), masked where it is, but scrubbing it from all text would
/// garble every word that contains it; the secrets themselves are scrubbed by the
/// configuration's redactor.
pub(crate) fn plan_redactor(plan: &Plan) -> Redactor {
    /// Tokens, webhooks and passwords are longer.
    const MIN_CHARS: usize = 8;
    fn add(r: &mut Redactor, value: Option<&Value>, paths: &[AttrPath]) {
        let Some(value) = value else { return };
        for v in values_at(value, paths) {
            r.add_value_of_length(v, MIN_CHARS);
        }
    }
    let mut r = Redactor::new();
    for c in &plan.changes {
        add(&mut r, c.before.as_ref(), &c.before_sensitive);
        add(&mut r, c.after.as_ref(), &c.after_sensitive);
    }
    for d in &plan.drift {
        add(&mut r, Some(&d.before), &d.sensitive);
        add(&mut r, d.after.as_ref(), &d.sensitive);
    }
    for o in plan.outputs.iter().filter(|o| o.sensitive) {
        for v in [&o.before, &o.after].into_iter().flatten() {
            r.add_value(v);
        }
    }
    r
}

/// `provider` as a Terraform-style provider name (`mage` → `weir/mage`).
pub(crate) fn provider_name(provider: &str) -> String {
    if provider.contains('/') {
        provider.to_string()
    } else {
        format!("weir/{provider}")
    }
}

/// Plans built by hand for the renderers' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::plan::{Action, Change, Drift, OutputChange, Plan, Reason};
    use serde_json::{Value, json};
    use weir_provider_sdk::AttrPath;

    /// A secret that must never appear in any rendering.
    pub const SECRET: &str = "hunter2-SUPER-SECRET";
    /// Another one (the new value of a changed sensitive attribute).
    pub const SECRET2: &str = "s3cr3t-NEW-WEBHOOK";

    pub fn path(p: &str) -> AttrPath {
        p.split('.').map(str::to_string).collect()
    }

    pub fn change(
        address: &str,
        action: Action,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Change {
        let (type_name, name) = address.split_once('.').unwrap();
        Change {
            address: address.into(),
            type_name: type_name.into(),
            name: name.into(),
            provider: if type_name.starts_with("google") {
                "google"
            } else {
                "mage"
            }
            .into(),
            action,
            before,
            after,
            after_unknown: vec![],
            replace_paths: vec![],
            before_sensitive: vec![],
            after_sensitive: vec![],
            reason: None,
            notes: vec![],
            dependencies: vec![],
            prevent_destroy: false,
            lifecycle_changed: false,
        }
    }

    pub fn empty_plan() -> Plan {
        Plan {
            weir_version: "0.1.0".into(),
            lineage: Some("6f1c2f3e-0000-4000-8000-000000000001".into()),
            serial: Some(7),
            config_hash: "sha256:9f86d081884c7d659a2feaa0c55ad015".into(),
            git_commit: Some("3b18e512dba79e4c8300dd08aeb37f8e728b8dad".into()),
            destroy: false,
            created_at: "2026-11-30T10:00:00Z".into(),
            changes: vec![],
            drift: vec![],
            outputs: vec![],
            notes: vec![],
            idle_cost: None,
            deployment: Some("prod".into()),
        }
    }

    const LOAD_V1: &str = "import pandas as pd\n\n\n@data_loader\ndef load(*args, **kwargs):\n    url = 'https://example.com/orders.csv'\n    return pd.read_csv(url)\n";
    const LOAD_V2: &str = "import pandas as pd\n\n\n@data_loader\ndef load(*args, **kwargs):\n    url = kwargs['source_url']\n    df = pd.read_csv(url)\n    return df[df.status != 'test']\n";

    /// One of everything: a create with code, unknown and sensitive values; an update of nested
    /// values, a keyed list and code; a replace with a forcing path; a delete with a reason; a
    /// sensitive change; a no-op; drift; outputs; notes.
    pub fn sample_plan() -> Plan {
        let mut plan = empty_plan();

        let mut web = change(
            "google_cloud_run_v2_service.prod_web",
            Action::Create,
            None,
            Some(json!({
                "name": "prod-web",
                "location": "us-central1",
                "template": {
                    "scaling": {"min_instance_count": 0, "max_instance_count": 1},
                    "containers": [{
                        "image": "mageai/mageai:0.9.80",
                        "env": [
                            {"name": "INSTANCE_TYPE", "value": "web_server"},
                            {"name": "MAGE_DATABASE_CONNECTION_URL", "value": format!("postgresql://mage:{SECRET}@10.0.0.3/mage")}
                        ],
                        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "cpu_idle": true}
                    }]
                },
                "labels": {}
            })),
        );
        web.after_unknown = vec![path("uri"), path("uid")];
        web.after_sensitive = vec![path("template.containers.0.env.1.value")];
        web.dependencies = vec!["google_sql_database_instance.prod".into()];

        let mut block = change(
            "mage_block.orders_load",
            Action::Create,
            None,
            Some(
                json!({"pipeline": "orders", "uuid": "load", "type": "data_loader", "language": "python", "code": LOAD_V1}),
            ),
        );
        block.notes = vec!["reads blocks/load_orders.py".into()];

        let before_pipeline = json!({
            "uuid": "orders",
            "name": "orders",
            "description": "Daily orders",
            "type": "python",
            "variables": {"source": "shopify", "window": 1},
            "blocks": [
                {"uuid": "load", "type": "data_loader", "upstream_blocks": [], "downstream_blocks": ["split"], "executor_type": "local_python", "code": LOAD_V1},
                {"uuid": "split", "type": "transformer", "upstream_blocks": ["load"], "downstream_blocks": ["export"], "executor_type": "local_python", "configuration": {"dynamic": true}},
                {"uuid": "export", "type": "data_exporter", "upstream_blocks": ["split"], "downstream_blocks": [], "executor_type": "local_python"}
            ],
            "tags": ["orders", "daily"],
            "retry_config": {"retries": 1, "delay": 5}
        });
        let after_pipeline = json!({
            "uuid": "orders",
            "name": "orders",
            "description": "Nightly orders",
            "type": "python",
            "variables": {"source": "shopify", "window": 7},
            "blocks": [
                {"uuid": "load", "type": "data_loader", "upstream_blocks": [], "downstream_blocks": ["split"], "executor_type": "local_python", "code": LOAD_V2},
                {"uuid": "split", "type": "transformer", "upstream_blocks": ["load"], "downstream_blocks": ["enrich"], "executor_type": "local_python", "configuration": {"dynamic": true}},
                {"uuid": "enrich", "type": "transformer", "upstream_blocks": ["split"], "downstream_blocks": ["export"], "executor_type": "k8s", "configuration": {"reduce_output": true}},
                {"uuid": "export", "type": "data_exporter", "upstream_blocks": ["enrich"], "downstream_blocks": [], "executor_type": "local_python"}
            ],
            "tags": ["orders", "nightly"],
            "retry_config": {"retries": 1, "delay": 5}
        });
        let pipeline = change(
            "mage_pipeline.orders",
            Action::Update,
            Some(before_pipeline),
            Some(after_pipeline),
        );

        let mut job = change(
            "google_cloud_run_v2_job.highmem",
            Action::Replace,
            Some(
                json!({"name": "highmem", "location": "us-central1", "uid": "8a1d-old", "template": {"task_count": 1, "template": {"max_retries": 1, "timeout": "7200s", "containers": [{"resources": {"limits": {"cpu": "4", "memory": "16Gi"}}}]}}}),
            ),
            Some(
                json!({"name": "highmem", "location": "europe-west1", "uid": null, "template": {"task_count": 1, "template": {"max_retries": 1, "timeout": "7200s", "containers": [{"resources": {"limits": {"cpu": "4", "memory": "32Gi"}}}]}}}),
            ),
        );
        job.after_unknown = vec![path("uid")];
        job.replace_paths = vec![path("location")];
        job.reason = Some(Reason::ReplaceBecauseCannotUpdate);

        let mut trigger = change(
            "mage_trigger.orders_old",
            Action::Delete,
            Some(
                json!({"pipeline": "orders", "name": "old", "schedule_type": "time", "schedule_interval": "@hourly", "status": "active"}),
            ),
            None,
        );
        trigger.reason = Some(Reason::DeleteBecauseNoResourceConfig);
        trigger.notes = vec!["Mage does not delete triggers removed from triggers.yaml; weir keeps this one as inactive until the Mage API confirms it is gone.".into()];

        let mut notif = change(
            "mage_notification.ops",
            Action::Update,
            Some(json!({"channel": "slack", "webhook_url": SECRET, "on": ["failure"]})),
            Some(
                json!({"channel": "slack", "webhook_url": SECRET2, "on": ["failure", "sla_missed"]}),
            ),
        );
        notif.before_sensitive = vec![path("webhook_url")];
        notif.after_sensitive = vec![path("webhook_url")];

        let bucket = change(
            "google_storage_bucket.prod",
            Action::NoOp,
            Some(json!({"name": "acme-mage"})),
            Some(json!({"name": "acme-mage"})),
        );

        plan.changes = vec![web, block, pipeline, job, trigger, notif, bucket];
        plan.drift = vec![
            Drift {
                address: "mage_pipeline.orders".into(),
                type_name: "mage_pipeline".into(),
                name: "orders".into(),
                provider: "mage".into(),
                before: json!({"uuid": "orders", "description": "Daily orders", "tags": ["orders"], "token": SECRET}),
                after: Some(
                    json!({"uuid": "orders", "description": "Edited in the UI", "tags": ["orders", "ui"], "token": SECRET}),
                ),
                sensitive: vec![path("token")],
            },
            Drift {
                address: "mage_trigger.orders_hourly".into(),
                type_name: "mage_trigger".into(),
                name: "orders_hourly".into(),
                provider: "mage".into(),
                before: json!({"name": "hourly", "schedule_interval": "@hourly"}),
                after: None,
                sensitive: vec![],
            },
        ];
        plan.outputs = vec![
            OutputChange {
                name: "webserver_url".into(),
                action: Action::Create,
                before: None,
                after: None,
                sensitive: false,
                unknown: true,
                from: None,
            },
            OutputChange {
                name: "bucket".into(),
                action: Action::Update,
                before: Some(json!("acme-old")),
                after: Some(json!("acme-mage")),
                sensitive: false,
                unknown: false,
                from: None,
            },
            OutputChange {
                name: "db_password".into(),
                action: Action::Create,
                before: None,
                after: Some(json!(SECRET)),
                sensitive: true,
                unknown: false,
                from: None,
            },
            OutputChange {
                name: "region".into(),
                action: Action::NoOp,
                before: Some(json!("us-central1")),
                after: Some(json!("us-central1")),
                sensitive: false,
                unknown: false,
                from: None,
            },
        ];
        plan.notes = vec![
            "schedule.orders_nightly (0 3 * * *, UTC): next runs 2026-12-01 03:00, 2026-12-02 03:00, 2026-12-03 03:00".into(),
            "Mage image changes from 0.9.79 to 0.9.80.".into(),
        ];
        plan
    }
}
