//! Hardening tests: see `tests/hardening.rs`. No secret, nor any value derived from one,
//! reaches a plan (text, JSON, Markdown), a saved plan, `show`, `state show` or a diagnostic.

use crate::cli::weir;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The secret, passed in the environment (never written in a configuration file). Mixed case,
/// so that `upper` and `lower` make values that are not the secret itself.
const SECRET: &str = "Hunter2Secret";

/// Strings that would show a secret or part of a value derived from one.
const DERIVED: &[&str] = &[
    SECRET,
    "HUNTER2SECRET",
    "hunter2secret",
    "fmt-marker",
    "tpl-marker",
    "join-marker",
    "local-marker",
    "cond-marker",
    "msg-marker",
];

/// A configuration directory with a sensitive variable `s`, the pipeline `orders` (with
/// `pipeline_body` in it and one block) and `extra` top-level HCL.
fn config(pipeline_body: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let hcl = format!(
        r#"variable "s" {{
  type      = string
  sensitive = true
}}

deployment "dev" {{
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}}

pipeline "orders" {{
{pipeline_body}
  block "load" {{
    type = "data_loader"
    code = "@data_loader\ndef load(*a, **k):\n    return 1\n"
  }}
}}

{extra}
"#
    );
    std::fs::write(dir.join("main.hcl"), hcl).unwrap();
    (tmp, dir)
}

/// `weir …` in `dir` with the secret set; everything it printed, and whether it succeeded.
fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = weir(dir)
        .env("WEIR_VAR_s", SECRET)
        .args(args)
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), all)
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, all) = run(dir, args);
    assert!(ok, "weir {args:?} failed:\n{all}");
    all
}

fn assert_hides(what: &str, text: &str, forbidden: &[&str]) {
    for f in forbidden {
        assert!(!text.contains(f), "{what} shows `{f}`:\n{text}");
    }
}

/// The `change` of `address` in `weir plan --format json`.
fn json_change(dir: &Path, address: &str) -> Value {
    let out = weir(dir)
        .env("WEIR_VAR_s", SECRET)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change for {address}"))["change"]
        .clone()
}

#[test]
fn values_derived_from_a_secret_are_masked_in_every_plan_format() {
    let (_tmp, dir) = config(
        r#"  description = upper(var.s)
  tags = [
    format("fmt-marker-%s", var.s),
    "tpl-marker-${var.s}",
    join("|", [var.s, "join-marker"]),
    local.derived,
    var.s == "x" ? "cond-marker-yes" : "cond-marker-no",
    lower(var.s),
  ]"#,
        r#"locals {
  derived = "local-marker-${var.s}"
}

notification "ops" {
  channel     = "slack"
  webhook_url = "https://hooks.example.com/services/T0"
  message "failure" {
    title = "msg-marker ${lower(var.s)}"
  }
}
"#,
    );
    for format in ["text", "json", "markdown"] {
        let out = run_ok(&dir, &["plan", "--format", format]);
        assert_hides(&format!("the {format} plan"), &out, DERIVED);
        assert!(out.contains("(sensitive)"), "{out}");
    }
    let change = json_change(&dir, "mage_pipeline.orders");
    assert_eq!(change["after_sensitive"]["description"], true);
    assert_eq!(
        change["after_sensitive"]["tags"],
        serde_json::json!([true, true, true, true, true, true])
    );
    assert_eq!(
        change["after_sensitive"]["notification_config"]["message_templates"]["failure"]["title"],
        true
    );
}

#[test]
fn a_secret_inside_a_map_masks_only_its_key() {
    let (_tmp, dir) = config(
        "  variables = { source = \"shopify\", key = var.s }",
        "schedule \"nightly\" {\n  pipeline  = pipeline.orders\n  cron      = \"0 3 * * *\"\n  variables = { region = \"eu-west\", token = upper(var.s) }\n}\n",
    );
    let text = run_ok(&dir, &["plan"]);
    assert_hides("the text plan", &text, DERIVED);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("+ {key} ")))
            .unwrap_or_else(|| panic!("no line for `{key}`:\n{text}"))
            .to_string()
    };
    assert!(line("source").ends_with("= \"shopify\""), "{text}");
    assert!(line("key").ends_with("= (sensitive)"), "{text}");
    assert!(line("region").ends_with("= \"eu-west\""), "{text}");
    assert!(line("token").ends_with("= (sensitive)"), "{text}");

    let markdown = run_ok(&dir, &["plan", "--format", "markdown"]);
    assert_hides("the Markdown plan", &markdown, DERIVED);
    assert!(markdown.contains("\"shopify\"") && markdown.contains("\"eu-west\""));

    let pipeline = json_change(&dir, "mage_pipeline.orders");
    assert_eq!(pipeline["after"]["variables"]["source"], "shopify");
    assert_eq!(pipeline["after"]["variables"]["key"], "(sensitive)");
    assert_eq!(
        pipeline["after_sensitive"]["variables"],
        serde_json::json!({"key": true})
    );
    let triggers = json_change(&dir, "mage_triggers.orders");
    let variables = &triggers["after"]["triggers"][0]["variables"];
    assert_eq!(variables["region"], "eu-west");
    assert_eq!(variables["token"], "(sensitive)");
}

#[test]
fn secrets_in_description_tags_and_code_are_masked_by_show_and_state_show() {
    let (_tmp, dir) = config(
        "  description = var.s\n  tags        = [\"team\", lower(var.s)]",
        "",
    );
    // Inline code that holds a secret, in a second pipeline.
    let mut hcl = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    hcl.push_str(
        "pipeline \"keys\" {\n  block \"use_key\" {\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return '${upper(var.s)}'\\n\"\n  }\n}\n",
    );
    std::fs::write(dir.join("main.hcl"), &hcl).unwrap();
    run_ok(&dir, &["apply", "--auto-approve"]);

    for address in [
        "mage_pipeline.orders",
        "mage_pipeline.keys",
        "mage_block.keys.use_key",
    ] {
        let shown = run_ok(&dir, &["state", "show", address]);
        assert_hides(&format!("`state show {address}`"), &shown, DERIVED);
    }
    let shown = run_ok(&dir, &["state", "show", "mage_block.keys.use_key"]);
    assert!(shown.contains("\"code\": \"(sensitive)\""), "{shown}");

    // A saved plan that changes them, rendered by `show`.
    std::fs::write(
        dir.join("main.hcl"),
        hcl.replace("description = var.s", "description = upper(var.s)")
            .replace("return '${upper(var.s)}'", "return '${lower(var.s)}'"),
    )
    .unwrap();
    let plan_file = dir.join("changes.plan");
    run_ok(&dir, &["plan", "--out", plan_file.to_str().unwrap()]);
    assert_hides(
        "the saved plan",
        &std::fs::read_to_string(&plan_file).unwrap(),
        DERIVED,
    );
    for format in ["text", "json", "markdown"] {
        let shown = run_ok(
            &dir,
            &["show", "--format", format, plan_file.to_str().unwrap()],
        );
        assert_hides(&format!("`show --format {format}`"), &shown, DERIVED);
    }
}

/// The token Mage reads from `triggers.yaml` for the trigger `name`.
fn trigger_token(dir: &Path, pipeline: &str) -> String {
    let yaml = std::fs::read_to_string(
        dir.join(format!("mage_project/pipelines/{pipeline}/triggers.yaml")),
    )
    .unwrap();
    let token = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in:\n{yaml}"))
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    assert!(token.len() >= 16, "{token}");
    token
}

#[test]
fn api_trigger_tokens_are_never_printed() {
    let (_tmp, dir) = config(
        "  description = \"first\"",
        "schedule \"webhook\" {\n  pipeline = pipeline.orders\n  type     = \"api\"\n}\n",
    );
    run_ok(&dir, &["apply", "--auto-approve"]);
    let token = trigger_token(&dir, "orders");
    let shown = run_ok(&dir, &["state", "show", "mage_triggers.orders"]);
    assert_hides("`state show`", &shown, &[&token]);
    assert!(shown.contains("\"token\": \"(sensitive)\""), "{shown}");

    // A change to the trigger: the plan shows it, before and after.
    let hcl = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        hcl.replace(
            "type     = \"api\"",
            "type     = \"api\"\n  sla      = \"2h\"",
        ),
    )
    .unwrap();
    for format in ["text", "json", "markdown"] {
        let out = run_ok(&dir, &["plan", "--format", format]);
        assert!(out.contains("webhook"), "{out}");
        assert_hides(&format!("the {format} plan"), &out, &[&token]);
    }
    let change = json_change(&dir, "mage_triggers.orders");
    assert_eq!(change["before_sensitive"]["triggers"][0]["token"], true);
    assert_eq!(change["after_sensitive"]["triggers"][0]["token"], true);

    let plan_file = dir.join("triggers.plan");
    run_ok(&dir, &["plan", "--out", plan_file.to_str().unwrap()]);
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert_hides("the saved plan", &saved, &[&token]);
    for format in ["text", "json", "markdown"] {
        let shown = run_ok(
            &dir,
            &["show", "--format", format, plan_file.to_str().unwrap()],
        );
        assert_hides(&format!("`show --format {format}`"), &shown, &[&token]);
    }
    run_ok(&dir, &["apply", "--auto-approve"]);
    let shown = run_ok(&dir, &["state", "show", "mage_triggers.orders"]);
    assert_hides("`state show` after the update", &shown, &[&token]);

    // A trigger added outside weir (in Mage's UI): its token is masked in the drift too.
    let outside = "0utside0token0123456789abcdef00";
    let yaml = dir.join("mage_project/pipelines/orders/triggers.yaml");
    let mut text = std::fs::read_to_string(&yaml).unwrap();
    text.push_str(&format!(
        "- name: added_in_ui\n  schedule_type: api\n  schedule_interval: null\n  start_time: null\n  status: active\n  settings:\n    skip_if_previous_running: false\n    allow_blocks_to_fail: false\n  token: {outside}\n  last_enabled_at: 2026-12-01 23:30:35+00:00\n"
    ));
    std::fs::write(&yaml, text).unwrap();
    for format in ["text", "json", "markdown"] {
        let out = run_ok(&dir, &["plan", "--format", format]);
        assert!(out.contains("added_in_ui"), "{out}");
        assert_hides(&format!("the {format} plan"), &out, &[&token, outside]);
    }
    let out = weir(&dir)
        .env("WEIR_VAR_s", SECRET)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = json["resource_drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "mage_triggers.orders")
        .expect("the added trigger is drift");
    assert_eq!(
        drift["change"]["after"]["triggers"][1]["token"],
        "(sensitive)"
    );
    assert_eq!(
        drift["change"]["after_sensitive"]["triggers"][1]["token"],
        true
    );
}

#[test]
fn diagnostics_never_quote_a_value_derived_from_a_secret() {
    let (_tmp, dir) = config(
        "  retry {\n    retries = 2\n    delay   = \"x${var.s}\"\n  }",
        r#"variable "short" {
  type      = string
  sensitive = true
}

schedule "nightly" {
  pipeline            = pipeline.orders
  cron                = "0 3 * * *"
  sla                 = upper(var.s)
  start               = lower(var.s)
  timeout             = var.short
  max_concurrent_runs = length(var.s) - 40
}
"#,
    );
    // A secret too short for the redactor's second line of defence.
    let out = weir(&dir)
        .env("WEIR_VAR_s", SECRET)
        .env("WEIR_VAR_short", "k9z")
        .arg("validate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_hides("validate", &all, DERIVED);
    assert_hides("validate", &all, &["k9z", "x(sensitive)", "-27"]);
    assert_eq!(
        all.matches("error: the value (sensitive) is not a duration")
            .count(),
        3,
        "{all}"
    );
    assert!(
        all.contains("error: the value (sensitive) is not an RFC 3339 timestamp"),
        "{all}"
    );
    assert!(
        all.contains("`max_concurrent_runs` must be a whole number of at least 1, got (sensitive)"),
        "{all}"
    );
}

#[test]
fn a_short_value_derived_from_a_secret_is_masked_without_garbling_the_plan() {
    let (_tmp, dir) = config(
        "  concurrency {\n    pipeline_run_limit = 1\n    on_limit           = var.s == \"x\" ? \"wait\" : \"skip\"\n  }",
        "schedule \"nightly\" {\n  pipeline = pipeline.orders\n  cron     = \"0 3 * * *\"\n}\n",
    );
    let text = run_ok(&dir, &["plan"]);
    assert!(
        text.lines()
            .any(|l| l.contains("+ on_pipeline_run_limit_reached = (sensitive)")),
        "{text}"
    );
    // The word the secret decided is hidden where it is, not everywhere it occurs.
    assert!(text.contains("skip_if_previous_running"), "{text}");
}

#[test]
fn a_secret_in_the_deployment_is_masked_and_outputs_of_it_must_be_sensitive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let hcl = r#"variable "s" {
  type      = string
  sensitive = true
}

deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
  storage {
    bucket = "bkt-${lower(var.s)}"
  }
}

pipeline "orders" {
  block "load" {
    type = "data_loader"
    code = "@data_loader\ndef load(*a, **k):\n    return 1\n"
  }
}

output "bucket" {
  value = deployment.dev.bucket
}
"#;
    std::fs::write(dir.join("main.hcl"), hcl).unwrap();
    let (ok, out) = run(&dir, &["validate"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("output `bucket` shows a sensitive value"),
        "{out}"
    );
    assert_hides("validate", &out, DERIVED);

    std::fs::write(
        dir.join("main.hcl"),
        hcl.replace(
            "value = deployment.dev.bucket",
            "value     = deployment.dev.bucket\n  sensitive = true",
        ),
    )
    .unwrap();
    for format in ["text", "json", "markdown"] {
        let out = run_ok(&dir, &["plan", "--format", format]);
        assert_hides(&format!("the {format} plan"), &out, DERIVED);
    }
    let project = json_change(&dir, "mage_project.dev");
    assert_eq!(project["after"]["remote_variables_dir"], "(sensitive)");
    assert_eq!(project["after_sensitive"]["logging"], true);
}

/// Every file under `.weir/` (the state, its journal, its lock files) as text.
fn state_files(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir.join(".weir")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    assert!(all.contains("\"lineage\""), "no state under .weir:\n{all}");
    all
}

/// What a reader of the state could check a guessed secret against: the secret, its plain
/// SHA-256 (hex), and the same of the value Mage stores it in.
fn unkeyed_forms(secret: &str) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let hex = |s: &str| -> String {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let json = serde_json::to_string(secret).unwrap();
    vec![secret.to_string(), hex(secret), hex(&json)]
}

/// `weir plan --detailed-exitcode ARGS`: its exit code and everything it printed.
fn plan_code(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = weir(dir)
        .env("WEIR_VAR_s", SECRET)
        .args(["plan", "--detailed-exitcode"])
        .args(args)
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), all)
}

#[test]
fn state_and_journal_hold_secrets_only_as_keyed_digests() {
    let (_tmp, dir) = config(
        r#"  variables = { api_key = var.s, region = "eu" }
  description = "key ${upper(var.s)}""#,
        r#"notification "ops" {
  channel     = "slack"
  webhook_url = "https://hooks.example.com/${var.s}"
}

schedule "webhook" {
  pipeline = pipeline.orders
  type     = "api"
}

output "key" {
  value     = var.s
  sensitive = true
}
"#,
    );
    run_ok(&dir, &["apply", "--auto-approve"]);
    let token = trigger_token(&dir, "orders");
    let mut forbidden = unkeyed_forms(SECRET);
    forbidden.extend(unkeyed_forms(&token));
    forbidden.extend(unkeyed_forms(&SECRET.to_uppercase()));
    forbidden.extend(unkeyed_forms(&format!(
        "https://hooks.example.com/{SECRET}"
    )));
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let state = state_files(&dir);
    assert_hides("the state", &state, &forbidden);
    assert!(state.contains("__weir_sensitive__"), "{state}");
    assert!(state.contains("\"region\": \"eu\""), "{state}");

    // Nothing changed: no change found, with and without refresh, and no drift.
    for args in [&[][..], &["--refresh=false"][..]] {
        let (code, out) = plan_code(&dir, args);
        assert_eq!(code, 0, "plan {args:?}:\n{out}");
        assert!(!out.contains("changed outside weir"), "{out}");
        assert_hides("the plan", &out, &forbidden);
    }
    run_ok(&dir, &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(trigger_token(&dir, "orders"), token);

    // Another secret: an update, without printing either.
    let out = weir(&dir)
        .env("WEIR_VAR_s", "Other5ecretValue")
        .args(["plan", "--detailed-exitcode", "--refresh=false"])
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("mage_pipeline.orders"), "{all}");
    assert_hides("the plan", &all, &[SECRET, "Other5ecretValue", &token]);
    let out = weir(&dir)
        .env("WEIR_VAR_s", "Other5ecretValue")
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tokens_are_kept_by_an_apply_without_refresh() {
    let (_tmp, dir) = config(
        "  description = \"first\"",
        "schedule \"webhook\" {\n  pipeline = pipeline.orders\n  type     = \"api\"\n}\n\nschedule \"nightly\" {\n  pipeline = pipeline.orders\n  cron     = \"0 3 * * *\"\n}\n",
    );
    run_ok(&dir, &["apply", "--auto-approve"]);
    let yaml = dir.join("mage_project/pipelines/orders/triggers.yaml");
    let before = std::fs::read_to_string(&yaml).unwrap();
    let token = trigger_token(&dir, "orders");
    assert_hides("the state", &state_files(&dir), &[&token]);

    // A changed pipeline and schedule, planned and applied from state alone.
    let hcl = std::fs::read_to_string(dir.join("main.hcl")).unwrap();
    std::fs::write(
        dir.join("main.hcl"),
        hcl.replace("\"first\"", "\"second\"")
            .replace("0 3 * * *", "0 4 * * *"),
    )
    .unwrap();
    let (code, out) = plan_code(&dir, &["--refresh=false"]);
    assert_eq!(code, 2, "{out}");
    run_ok(&dir, &["apply", "--auto-approve", "--refresh=false"]);
    let after = std::fs::read_to_string(&yaml).unwrap();
    assert_ne!(before, after, "the cron changed");
    assert!(after.contains("0 4 * * *"), "{after}");
    let tokens = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("token: ").map(str::to_string))
            .collect()
    };
    assert_eq!(tokens(&before), tokens(&after));
    assert_eq!(tokens(&after).len(), 2, "{after}");
    assert!(!after.contains("__weir_sensitive__"), "{after}");
    assert_hides("the state", &state_files(&dir), &[&token]);
    for args in [&[][..], &["--refresh=false"][..]] {
        let (code, out) = plan_code(&dir, args);
        assert_eq!(code, 0, "plan {args:?}:\n{out}");
    }
}
