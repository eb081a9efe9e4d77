//! Saved plans (`weir plan --out FILE`, `weir apply FILE`).
//!
//! # Format
//!
//! ```text
//! {"format":"weir-plan","format_version":2,"sha256":"…","seal":"…"}
//! { …the body: options, keyed digests of secrets, the masked plan… }
//! ```
//!
//! The first line is a header; the rest is the body, pretty-printed JSON. `sha256` is the
//! SHA-256 of the seal, a newline and the body's bytes exactly as written; the header itself
//! must be in its canonical form: a flipped byte anywhere is caught with a clear message. `seal` is an HMAC-SHA256 of the same bytes keyed with the state's key
//! ([`crate::state::State::key`], which never leaves the state): only weir, holding that state,
//! can write a plan that passes, so an edited file is refused even when its checksum was
//! recomputed.
//!
//! The body holds the plan with every sensitive value replaced by `(sensitive)` and, for each
//! of them, an HMAC keyed with the same state key: the file holds no secret and no digest a
//! reader could check a guessed secret against.
//!
//! # Applying
//!
//! Apply does not execute what the file says. Under the state lock it checks the file (header,
//! checksum, version, state lineage, seal, serial, configuration), plans again from the
//! configuration against the same state with the same options ([`PlanFile::options`]), and
//! refuses unless that plan is the one in the file ([`PlanFile::check_same`]: every change, every
//! planned value, every secret by its keyed digest); it then executes the plan it just made.

use super::plan::Plan;
use super::planner::PlanOptions;
use super::sensitive::{expand, get_path, mask};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use weir_provider_sdk::AttrPath;

const FORMAT: &str = "weir-plan";
const FORMAT_VERSION: u32 = 2;
/// At most this many differences are listed when a plan no longer matches.
const MAX_LISTED: usize = 20;

/// The first line of a plan file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    format_version: u32,
    /// SHA-256 of the seal, a newline and the body's bytes, hex.
    sha256: String,
    /// HMAC-SHA256 of the body's bytes keyed with the state's key, hex.
    seal: String,
}

/// The options a plan was made with: apply plans again with exactly these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedOptions {
    pub refresh: bool,
    pub targets: Vec<String>,
    pub replace: Vec<String>,
    pub destroy: bool,
}

impl SavedOptions {
    pub fn of(opts: &PlanOptions) -> Self {
        SavedOptions {
            refresh: opts.refresh,
            targets: opts.targets.clone(),
            replace: opts.replace.clone(),
            destroy: opts.destroy,
        }
    }

    /// The planner's options for planning again (`parallelism` is not part of the plan).
    pub fn to_options(&self, parallelism: usize) -> PlanOptions {
        PlanOptions {
            refresh: self.refresh,
            parallelism,
            targets: self.targets.clone(),
            replace: self.replace.clone(),
            destroy: self.destroy,
        }
    }
}

/// A saved plan (the body of the file).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub options: SavedOptions,
    /// For each address (`output.NAME` for outputs), the path of every sensitive value in its
    /// planned value and that value's keyed digest ([`secret_digest`]).
    pub sensitive: BTreeMap<String, Vec<(AttrPath, String)>>,
    /// The plan, every sensitive value masked.
    pub plan: Plan,
    /// The header's seal and the body's bytes, checked against the state's key at apply.
    #[serde(skip)]
    seal: Option<(String, Vec<u8>)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
        mac.update(&[0]);
    }
    hex(&mac.finalize().into_bytes())
}

/// The header's `sha256`: over the seal and the body, so that no byte of the file can change
/// unnoticed, even without the state at hand (`weir show`).
fn checksum(seal: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(seal.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex(&h.finalize())
}

/// The configuration's fingerprint keyed with the state's key: what a plan records as its
/// `config_hash`. The raw fingerprint covers the variables, secrets included, so it is never
/// written or shown as such.
pub fn config_digest(key: &str, fingerprint: &str) -> String {
    hmac(key, &[b"config", fingerprint.as_bytes()])
}

/// The keyed digest of the sensitive value at `path` of `address`: what a saved plan records
/// for each secret, and what state keeps in its place ([`super::sensitive::marker`]).
pub(crate) fn secret_digest(key: &str, address: &str, path: &[String], value: &Value) -> String {
    let path = path.join("\u{0}");
    hmac(
        key,
        &[
            b"secret",
            address.as_bytes(),
            path.as_bytes(),
            value.to_string().as_bytes(),
        ],
    )
}

/// A copy of the plan with every sensitive value masked.
pub fn masked(plan: &Plan) -> Plan {
    let mut out = plan.clone();
    for c in &mut out.changes {
        c.before = c
            .before
            .as_ref()
            .map(|v| mask(v, &expand(&c.before_sensitive, v)));
        c.after = c
            .after
            .as_ref()
            .map(|v| mask(v, &expand(&c.after_sensitive, v)));
    }
    for d in &mut out.drift {
        d.before = mask(&d.before, &expand(&d.sensitive, &d.before));
        d.after = d.after.as_ref().map(|v| mask(v, &expand(&d.sensitive, v)));
    }
    for o in &mut out.outputs {
        if o.sensitive {
            let hidden = || Value::String(crate::redact::SENSITIVE.into());
            o.before = o.before.as_ref().map(|_| hidden());
            o.after = o.after.as_ref().map(|_| hidden());
        }
    }
    out
}

/// The keyed digest of every sensitive value the masked plan leaves out.
fn secret_digests(plan: &Plan, key: &str) -> BTreeMap<String, Vec<(AttrPath, String)>> {
    let mut out = BTreeMap::new();
    for c in &plan.changes {
        let Some(after) = &c.after else { continue };
        let digests: Vec<(AttrPath, String)> = expand(&c.after_sensitive, after)
            .into_iter()
            .filter_map(|p| {
                let digest = secret_digest(key, &c.address, &p, get_path(after, &p)?);
                Some((p, digest))
            })
            .collect();
        if !digests.is_empty() {
            out.insert(c.address.clone(), digests);
        }
    }
    for o in plan.outputs.iter().filter(|o| o.sensitive) {
        if let Some(value) = &o.after {
            let address = crate::state::output_address(&o.name);
            let digest = secret_digest(key, &address, &[], value);
            out.insert(address, vec![(Vec::new(), digest)]);
        }
    }
    out
}

/// Writes the plan to `path`, sealed with `key` (the key of the state it was made against).
pub fn save(plan: &Plan, options: &PlanOptions, key: &str, path: &Path) -> Result<(), String> {
    if key.is_empty() {
        return Err("cannot save a plan without the state's key".into());
    }
    let file = PlanFile {
        options: SavedOptions::of(options),
        sensitive: secret_digests(plan, key),
        plan: masked(plan),
        seal: None,
    };
    let mut body = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    body.push(b'\n');
    let header = Header {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        sha256: String::new(),
        seal: hmac(key, &[b"seal", &body]),
    };
    let header = Header {
        sha256: checksum(&header.seal, &body),
        ..header
    };
    let mut text = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    text.push(b'\n');
    text.extend_from_slice(&body);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cannot =
        |e: &dyn std::fmt::Display| format!("cannot write the plan to `{}`: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cannot(&e))?;
    std::io::Write::write_all(&mut tmp, &text)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| cannot(&e))?;
    tmp.persist(path).map_err(|e| cannot(&e.error))?;
    Ok(())
}

/// Reads a plan file and checks its header and checksum (not its seal: that needs the state,
/// see [`PlanFile::check_fresh`]).
pub fn load(path: &Path) -> Result<PlanFile, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the plan `{}`: {e}", path.display()))?;
    let not_a_plan = |why: &str| {
        format!(
            "`{}` is not a weir plan file ({why}); make one with `weir plan --out FILE`",
            path.display()
        )
    };
    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
        return Err(not_a_plan("no header line"));
    };
    let (line, body) = (&bytes[..nl], &bytes[nl + 1..]);
    let header: Header = match serde_json::from_slice(line) {
        Ok(h) => h,
        Err(_) => return Err(older_or_not_a_plan(path, &bytes, not_a_plan)),
    };
    if header.format != FORMAT {
        return Err(not_a_plan(&format!("its format is `{}`", header.format)));
    }
    if header.format_version != FORMAT_VERSION {
        return Err(unsupported(path, header.format_version));
    }
    // The header is written in one canonical form: anything else was edited.
    let canonical = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    if checksum(&header.seal, body) != header.sha256 || canonical != line {
        return Err(format!(
            "`{}` was modified or damaged after weir wrote it (its SHA-256 checksum does not match its content): make a new plan with `weir plan --out`",
            path.display()
        ));
    }
    let mut file: PlanFile = serde_json::from_slice(body)
        .map_err(|e| not_a_plan(&format!("its body does not read: {e}")))?;
    file.seal = Some((header.seal, body.to_vec()));
    Ok(file)
}

fn unsupported(path: &Path, version: impl std::fmt::Display) -> String {
    format!(
        "`{}` is a plan of format version {version}, which this weir (format version {FORMAT_VERSION}) does not read: make a new plan with this weir",
        path.display()
    )
}

/// The error for a file without a valid header: a plan of format version 1 (one JSON document)
/// gets the version message, anything else "not a plan".
fn older_or_not_a_plan(path: &Path, bytes: &[u8], not_a_plan: impl Fn(&str) -> String) -> String {
    #[derive(Deserialize)]
    struct Versioned {
        format: String,
        format_version: u64,
    }
    match serde_json::from_slice::<Versioned>(bytes) {
        Ok(v) if v.format == FORMAT => unsupported(path, v.format_version),
        _ => not_a_plan("its first line is not a weir plan header"),
    }
}

/// How every refusal of a stale plan begins: one bound to the state, that the state, the
/// configuration or the objects have moved on from since (what `weir apply` exits 3 for).
pub const STALE: &str = "the saved plan is stale:";

impl PlanFile {
    /// Refuses a plan that cannot be applied to `state` (read under the lock): made by another
    /// weir, for another state or none, not sealed with this state's key (edited, or forged),
    /// made before the state last changed (another apply, or this plan already applied), or
    /// for another configuration or other variables (`fingerprint`: [`crate::lower::fingerprint`]).
    pub fn check_fresh(
        &self,
        state: Option<&crate::state::State>,
        fingerprint: &str,
    ) -> Result<(), String> {
        let state = self.check_bound(state)?;
        self.check_current(state, fingerprint)
    }

    /// The first half of [`PlanFile::check_fresh`]: refuses a plan not made by this weir for
    /// `state` and sealed with its key. Returns the state.
    pub fn check_bound<'s>(
        &self,
        state: Option<&'s crate::state::State>,
    ) -> Result<&'s crate::state::State, String> {
        let plan = &self.plan;
        if plan.weir_version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "the plan was made by weir {}, this is weir {}: make a new plan with this version",
                plan.weir_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        let Some(state) = state else {
            return Err(
                "the plan was made against a state that no longer exists (keep the state directory between plan and apply): make a new plan"
                    .into(),
            );
        };
        match &plan.lineage {
            Some(lineage) if *lineage != state.lineage => {
                return Err(format!(
                    "the plan was made for another state (lineage {lineage}, the state's is {}): make a new plan",
                    state.lineage
                ));
            }
            Some(_) => {}
            None => return Err("the plan names no state: make a new plan".into()),
        }
        let sealed = match &self.seal {
            Some((seal, body)) => {
                !state.key.is_empty() && hmac(&state.key, &[b"seal", body]) == *seal
            }
            None => false,
        };
        if !sealed {
            return Err("the plan file was not written by weir for this state (its seal does not match the state's key): it was edited after it was made, or made with another copy of the state; make a new plan".into());
        }
        Ok(state)
    }

    /// The second half of [`PlanFile::check_fresh`], for a plan bound to `state`: refuses it
    /// when it is stale, the state or the configuration having changed since it was made.
    pub fn check_current(
        &self,
        state: &crate::state::State,
        fingerprint: &str,
    ) -> Result<(), String> {
        let plan = &self.plan;
        if plan.serial != Some(state.serial) {
            return Err(format!(
                "{STALE} it was made at state serial {}, the state is now at serial {} (something was applied since, perhaps this very plan): make a new plan",
                plan.serial.unwrap_or(0),
                state.serial
            ));
        }
        if plan.config_hash != config_digest(&state.key, fingerprint) {
            return Err(format!(
                "{STALE} the configuration or its variables changed since the plan was made: make a new plan"
            ));
        }
        Ok(())
    }

    /// Refuses unless `fresh` — the plan made again now from the configuration, against the same
    /// state, with [`PlanFile::options`] — is the plan in the file: the same changes with the
    /// same actions, planned values, sensitive paths and dependencies, the same secrets (by
    /// their digests keyed with `key`, the state's) and the same outputs. Lists what differs by
    /// address and attribute path, never a value. What a resource looks like now (`before`),
    /// drift and notes may differ: apply does not act on them.
    pub fn check_same(&self, fresh: &Plan, key: &str) -> Result<(), String> {
        let mut diffs = Vec::new();
        let now = masked(fresh);
        let saved = &self.plan;
        if saved.destroy != now.destroy {
            diffs.push("the plan is a destroy plan in one and not in the other".to_string());
        }
        let saved_changes: BTreeMap<&str, &super::Change> = saved
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c))
            .collect();
        let now_changes: BTreeMap<&str, &super::Change> = now
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c))
            .collect();
        let addresses: BTreeSet<&str> = saved_changes
            .keys()
            .chain(now_changes.keys())
            .copied()
            .collect();
        for address in addresses {
            match (saved_changes.get(address), now_changes.get(address)) {
                (Some(s), None) => diffs.push(format!(
                    "{address}: the plan file says {}, the configuration now plans nothing for it",
                    s.action
                )),
                (None, Some(n)) => diffs.push(format!(
                    "{address}: not in the plan file, the configuration now plans {}",
                    n.action
                )),
                (Some(s), Some(n)) => {
                    if s.action != n.action {
                        diffs.push(format!(
                            "{address}: the plan file says {}, the configuration and the state now give {}",
                            s.action, n.action
                        ));
                    }
                    for (what, same) in [
                        ("its type", s.type_name == n.type_name),
                        ("its provider", s.provider == n.provider),
                        ("its dependencies", s.dependencies == n.dependencies),
                        (
                            "which values are sensitive",
                            s.after_sensitive == n.after_sensitive,
                        ),
                        (
                            "which values are known only after apply",
                            s.after_unknown == n.after_unknown,
                        ),
                        (
                            "what forces its replacement",
                            s.replace_paths == n.replace_paths,
                        ),
                    ] {
                        if !same {
                            diffs.push(format!("{address}: {what} differs"));
                        }
                    }
                    let mut paths = Vec::new();
                    value_diffs(
                        s.after.as_ref().unwrap_or(&Value::Null),
                        n.after.as_ref().unwrap_or(&Value::Null),
                        &mut Vec::new(),
                        &mut paths,
                    );
                    for p in paths {
                        diffs.push(format!("{address}: {} differs", describe(&p)));
                    }
                }
                (None, None) => {}
            }
        }
        let saved_outputs: BTreeMap<&str, &super::OutputChange> =
            saved.outputs.iter().map(|o| (o.name.as_str(), o)).collect();
        let now_outputs: BTreeMap<&str, &super::OutputChange> =
            now.outputs.iter().map(|o| (o.name.as_str(), o)).collect();
        let names: BTreeSet<&str> = saved_outputs
            .keys()
            .chain(now_outputs.keys())
            .copied()
            .collect();
        for name in names {
            let same = match (saved_outputs.get(name), now_outputs.get(name)) {
                (Some(s), Some(n)) => {
                    s.action == n.action
                        && s.after == n.after
                        && s.sensitive == n.sensitive
                        && s.unknown == n.unknown
                }
                _ => false,
            };
            if !same {
                diffs.push(format!("output.{name} differs"));
            }
        }
        // The secrets, by their keyed digests.
        let now_secrets = secret_digests(fresh, key);
        let addresses: BTreeSet<&String> =
            self.sensitive.keys().chain(now_secrets.keys()).collect();
        for address in addresses {
            let saved: BTreeMap<&AttrPath, &String> = self
                .sensitive
                .get(address)
                .into_iter()
                .flatten()
                .map(|(p, d)| (p, d))
                .collect();
            let now: BTreeMap<&AttrPath, &String> = now_secrets
                .get(address)
                .into_iter()
                .flatten()
                .map(|(p, d)| (p, d))
                .collect();
            let paths: BTreeSet<&AttrPath> = saved.keys().chain(now.keys()).copied().collect();
            for p in paths {
                if saved.get(p) != now.get(p) {
                    diffs.push(format!(
                        "{address}: the sensitive value {} differs",
                        describe(p)
                    ));
                }
            }
        }
        if diffs.is_empty() {
            return Ok(());
        }
        let more = diffs.len().saturating_sub(MAX_LISTED);
        diffs.truncate(MAX_LISTED);
        let mut text = format!(
            "the plan file does not match the plan the configuration and the state give now (it was edited, or something changed since it was made): make a new plan\n  {}",
            diffs.join("\n  ")
        );
        if more > 0 {
            text.push_str(&format!("\n  … and {more} more"));
        }
        Err(text)
    }
}

/// Paths at which two values differ: where objects have different keys or arrays different
/// lengths, or at the differing leaves.
fn value_diffs(a: &Value, b: &Value, here: &mut Vec<String>, out: &mut Vec<AttrPath>) {
    if out.len() > MAX_LISTED || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                here.push(k.clone());
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => value_diffs(va, vb, here, out),
                    _ => out.push(here.clone()),
                }
                here.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                here.push(i.to_string());
                value_diffs(va, vb, here, out);
                here.pop();
            }
        }
        _ => out.push(here.clone()),
    }
}

/// An attribute path for a message: `blocks.0.code`, or "its value" for the whole value.
fn describe(path: &[String]) -> String {
    if path.is_empty() {
        "its value".to_string()
    } else {
        format!("`{}`", path.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &[u8]) -> Result<PlanFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.weir");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn an_older_plan_format_is_named_with_its_version() {
        let err = load_text(b"{\n  \"format\": \"weir-plan\",\n  \"format_version\": 1\n}\n")
            .unwrap_err();
        assert!(err.contains("format version 1"), "{err}");
        assert!(err.contains("make a new plan"), "{err}");
    }

    #[test]
    fn anything_else_is_not_a_plan() {
        for text in [&b""[..], b"hello", b"{}\n{}", b"\x00\xff\n"] {
            let err = load_text(text).unwrap_err();
            assert!(err.contains("is not a weir plan file"), "{err}");
        }
    }

    #[test]
    fn value_diffs_name_the_paths_that_differ() {
        let a = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}, "e": [1]});
        let b = serde_json::json!({"a": 1, "b": {"c": [1, 3], "d": "x"}, "e": [1, 2], "f": 0});
        let mut out = Vec::new();
        value_diffs(&a, &b, &mut Vec::new(), &mut out);
        let out: Vec<String> = out.iter().map(|p| describe(p)).collect();
        assert_eq!(out, ["`b.c.1`", "`e`", "`f`"]);
    }
}
