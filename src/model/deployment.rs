//! The `weir`, `deployment` and `resource_profile` blocks.

use super::values::*;
use super::{
    Backend, Database, Deployment, ResourceProfile, Runtime, Scheduler, Settings, Storage, Target,
    Webserver, missing_everywhere, value_error,
};
use crate::config::body::{BodyReader, Spanned, block_header};
use crate::config::{Config, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location};
use std::collections::BTreeMap;
use std::path::Path;
use weir_provider_sdk::fs::RelPath;

pub(super) fn settings(config: &Config, diags: &mut Diagnostics) -> Option<Settings> {
    let mut blocks = config.blocks("weir");
    let Some(top) = blocks.next() else {
        return Some(Settings {
            required_version: None,
            backend: Backend::Local {
                path: crate::state::default_path(),
            },
        });
    };
    for extra in blocks {
        diags.push(
            Diagnostic::error("more than one `weir` block")
                .at(&extra.header())
                .help(format!("merge it into the first one, at {}", top.header())),
        );
    }
    labels(top.file, top.block, &[], diags);
    let ev = &config.evaluator;
    let r = BodyReader::new(
        top.file,
        &top.block.body,
        "the `weir` block".into(),
        top.header(),
        &["required_version"],
        &["backend"],
        diags,
    );
    let required_version = r.string(ev, "required_version", diags);
    if let Some(req) = &required_version {
        let running = env!("CARGO_PKG_VERSION");
        match version_satisfies(&req.value, running) {
            Ok(true) => {}
            Ok(false) => diags.push(
                Diagnostic::error(format!(
                    "this configuration requires weir {}, but this is weir {running}",
                    req.value
                ))
                .at(&req.loc)
                .help("install a weir version that satisfies the constraint, or change `required_version`"),
            ),
            Err(msg) => diags.push(value_error(req, msg, "a version constraint")),
        }
    }
    let mut backend = Backend::Local {
        path: crate::state::default_path(),
    };
    if let Some(b) = r.single_block("backend", diags) {
        let header = block_header(top.file, b);
        if let Some(l) = labels(top.file, b, &["type"], diags) {
            match l[0].0 {
                "local" => {
                    let br = BodyReader::new(
                        top.file,
                        &b.body,
                        "`backend \"local\"`".into(),
                        header,
                        &["path"],
                        &[],
                        diags,
                    );
                    if let Some(p) = br.string(ev, "path", diags) {
                        match RelPath::parse(&p.value) {
                            Ok(path) => backend = Backend::Local { path },
                            Err(why) => diags.push(
                                value_error(&p, format!("the state's `path` must stay inside the configuration directory: {why}"), "a path inside the configuration directory")
                                    .help("write a path relative to the configuration directory, e.g. `path = \".weir/state.json\"`"),
                            ),
                        }
                    }
                }
                "gcs" => {
                    let br = BodyReader::new(
                        top.file,
                        &b.body,
                        "`backend \"gcs\"`".into(),
                        header,
                        &["bucket", "prefix"],
                        &[],
                        diags,
                    );
                    let prefix = match br.string(ev, "prefix", diags) {
                        Some(p) => {
                            if let Err(msg) = crate::model::values::check_state_prefix(&p.value) {
                                diags.push(value_error(&p, msg, "an object name prefix"));
                            }
                            p.value
                        }
                        None => String::new(),
                    };
                    match br.string(ev, "bucket", diags) {
                        Some(bucket) => {
                            if let Err(msg) = check_bucket_name(&bucket.value) {
                                diags.push(value_error(&bucket, msg, "a bucket name"));
                            }
                            backend = Backend::Gcs {
                                bucket: bucket.value,
                                prefix,
                            };
                        }
                        None if !br.has("bucket") => br.missing(
                            "bucket",
                            "add `bucket = \"<name of the GCS bucket holding the state>\"`",
                            diags,
                        ),
                        None => {}
                    }
                }
                other => {
                    let mut d = Diagnostic::error(format!("unknown backend `{other}`")).at(&l[0].1);
                    d = match crate::diagnostics::suggest(other, ["local", "gcs"]) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help("the backends are `local` and `gcs`"),
                    };
                    diags.push(d);
                }
            }
        }
    }
    Some(Settings {
        required_version: required_version.map(|r| r.value),
        backend,
    })
}

pub(super) fn deployment(config: &Config, diags: &mut Diagnostics) -> Option<Deployment> {
    let mut blocks = config.blocks("deployment");
    let Some(top) = blocks.next() else {
        diags.push(missing_everywhere(
            config,
            "the configuration has no `deployment` block".into(),
            "add one, e.g. `deployment \"dev\" { target = \"local\"\n  project_dir = \"mage_project\"\n  image = \"mageai/mageai:0.9.80\" }`",
        ));
        return None;
    };
    for extra in blocks {
        diags.push(
            Diagnostic::error("more than one `deployment` block")
                .at(&extra.header())
                .help(format!("a configuration deploys exactly one deployment; the first is at {}. Use one directory per environment", top.header())),
        );
    }
    let l = labels(top.file, top.block, &["name"], diags)?;
    let name = l[0].0.to_string();
    let ev = &config.evaluator;
    let what = format!("deployment `{name}`");
    let r = BodyReader::new(
        top.file,
        &top.block.body,
        what.clone(),
        top.header(),
        &[
            "target",
            "project_dir",
            "project",
            "region",
            "image",
            "mage_version",
            "labels",
        ],
        &[
            "webserver",
            "scheduler",
            "database",
            "storage",
            "lifecycle",
            "runtime",
        ],
        diags,
    );
    let target = match r.string(ev, "target", diags) {
        Some(t) => match t.value.as_str() {
            "gcp" => Some(Target::Gcp),
            "local" => Some(Target::Local),
            other => {
                let mut d = Diagnostic::error(format!("unknown target `{other}`")).at(&t.loc);
                d = match crate::diagnostics::suggest(other, ["gcp", "local"]) {
                    Some(s) => d.help(format!("did you mean \"{s}\"?")),
                    None => d.help("`target` is \"gcp\" (Cloud Run, a scheduler VM, Cloud SQL, a bucket) or \"local\" (a Mage project directory)"),
                };
                diags.push(d);
                None
            }
        },
        None => {
            if !r.has("target") {
                r.missing(
                    "target",
                    "add `target = \"gcp\"` or `target = \"local\"`",
                    diags,
                );
            }
            None
        }
    };
    let gcp = target == Some(Target::Gcp);
    let local = target == Some(Target::Local);

    let project_dir = r.string(ev, "project_dir", diags);
    if local && project_dir.is_none() && !r.has("project_dir") {
        r.missing("project_dir", "a local deployment writes a Mage project: add `project_dir = \"mage_project\"` (relative to the configuration directory)", diags);
    }
    if let Some(dir) = &project_dir {
        check_project_dir(&config.dir, dir, diags);
    }
    let project = r.string(ev, "project", diags);
    if let Some(p) = &project {
        if let Err(msg) = check_project_id(&p.value) {
            diags.push(value_error(p, msg, "a Google Cloud project id"));
        }
    } else if gcp && !r.has("project") {
        r.missing(
            "project",
            "a gcp deployment needs the Google Cloud project id: add `project = \"my-project\"`",
            diags,
        );
    }
    let region = r.string(ev, "region", diags);
    if let Some(reg) = &region {
        check_region(reg, diags);
    } else if gcp && !r.has("region") {
        r.missing(
            "region",
            "add `region = \"us-central1\"` (or another Cloud Run region)",
            diags,
        );
    }

    let image = r.string(ev, "image", diags);
    if image.is_none() && !r.has("image") {
        r.missing(
            "image",
            "add `image = \"mageai/mageai:0.9.80\"`: the Mage image, pinned to a version",
            diags,
        );
    }
    let tag = image.as_ref().and_then(|i| image_tag(&i.value));
    if let Some(i) = &image {
        match tag.as_deref() {
            None => diags.push(
                Diagnostic::warning(format!("image `{}` has no tag, so it means `latest`", i.value))
                    .at(&i.loc)
                    .help("pin a version, e.g. \"mageai/mageai:0.9.80\": `latest` changes under you and deploys are not reproducible"),
            ),
            Some("latest") => diags.push(
                Diagnostic::warning(format!("image `{}` uses the `latest` tag", i.value))
                    .at(&i.loc)
                    .help("pin a version, e.g. \"mageai/mageai:0.9.80\": `latest` changes under you and deploys are not reproducible"),
            ),
            _ => {}
        }
    }
    let mage_version_attr = r.string(ev, "mage_version", diags);
    let mage_version_loc = mage_version_attr
        .as_ref()
        .map(|v| v.loc.clone())
        .or_else(|| image.as_ref().map(|i| i.loc.clone()));
    let mage_version = match mage_version_attr {
        Some(v) => Some(v.value),
        None => tag
            .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(|t| t.to_string()),
    };
    let runtime = runtime(config, &r, &what, diags);
    if let (Some(version), Some(loc)) = (&mage_version, &mage_version_loc)
        && let Some(why) = untested_mage_version(version)
    {
        let newest = TESTED_MAGE_VERSIONS[TESTED_MAGE_VERSIONS.len() - 1];
        if runtime.enabled && !runtime.allow_untested_mage {
            let image = image.as_ref().map_or("", |i| i.value.as_str());
            diags.push(
                Diagnostic::error(format!(
                    "{what}: the weir runtime is tested with mage-ai {}, but the image `{image}` runs Mage {version}: the runtime patches Mage's internals, which may differ in another version",
                    TESTED_MAGE_VERSIONS.join(", ")
                ))
                .at(loc)
                .help(format!(
                    "use the image \"mageai/mageai:{newest}\"; or add `runtime {{ allow_untested_mage = true }}` to deploy it anyway (the runtime then stops Mage with an error if an internal it patches is missing); or `runtime {{ enabled = false }}` to deploy without the runtime (no resource profiles, no extra notification placeholders)"
                )),
            );
        } else {
            diags.push(Diagnostic::warning(why).at(loc).help(format!(
                "use the image \"mageai/mageai:{newest}\", or run your pipelines on Mage {version} before deploying"
            )));
        }
    }
    if mage_version.is_none() && image.is_some() && !r.has("mage_version") {
        diags.push(
            Diagnostic::error("the Mage version is unknown: the image tag is not a version and `mage_version` is not set")
                .at(&image.as_ref().map(|i| i.loc.clone()).unwrap_or(r.header.clone()))
                .help("pin the image to a version tag (\"mageai/mageai:0.9.80\") or add `mage_version = \"0.9.80\"`"),
        );
    }

    let mut labels_map = BTreeMap::new();
    if let Some(l) = r.string_map(ev, "labels", diags) {
        for (k, v) in &l.value {
            if let Err(msg) = check_label(k, v) {
                // A label built from a secret is not quoted back.
                let msg = if l.sensitive {
                    format!("label `{k}`: the value (sensitive) is not a valid label")
                } else {
                    msg
                };
                // Point at the key when the key is wrong, else at the value.
                let at_value = check_label(k, "").is_ok();
                diags.push(Diagnostic::error(msg).at(&r.entry_loc("labels", k, at_value)));
            }
            labels_map.insert(k.clone(), v.clone());
        }
    }

    // webserver
    let mut webserver = Webserver {
        cpu: 1,
        memory_mib: 2048,
        min_instances: 0,
        max_instances: 1,
    };
    if let Some(b) = r.single_block("webserver", diags) {
        let br = BodyReader::new(
            top.file,
            &b.body,
            format!("the webserver of {what}"),
            block_header(top.file, b),
            &["cpu", "memory", "min_instances", "max_instances"],
            &[],
            diags,
        );
        if let Some(cpu) = br.number(ev, "cpu", diags) {
            match cloud_run_cpu(cpu.value) {
                Ok(c) => webserver.cpu = c,
                Err(msg) => diags.push(value_error(&cpu, msg, "a CPU count")),
            }
        }
        let mem = br.string(ev, "memory", diags);
        if let Some(m) = &mem {
            match parse_memory(&m.value) {
                Ok(mib) => webserver.memory_mib = mib,
                Err(msg) => diags.push(value_error(m, msg, "a memory size")),
            }
        }
        if let Err(msg) = check_cloud_run_pair(webserver.cpu, webserver.memory_mib) {
            let loc = mem
                .as_ref()
                .map(|m| m.loc.clone())
                .unwrap_or_else(|| br.attr_loc("cpu"));
            diags.push(
                Diagnostic::error(msg)
                    .at(&loc)
                    .help("see the CPU/memory table in docs/language.md"),
            );
        }
        let min = br.integer(ev, "min_instances", 0, 1000, diags);
        if let Some(m) = &min {
            webserver.min_instances = m.value as u32;
            if m.value > 0 {
                diags.push(
                    Diagnostic::warning(format!("`min_instances = {}` keeps the web server running all the time", m.value))
                        .at(&m.loc)
                        .help("with `min_instances = 0` the web server scales to zero and costs nothing idle"),
                );
            }
        }
        if let Some(m) = br.integer(ev, "max_instances", 1, 1000, diags) {
            webserver.max_instances = m.value as u32;
            if (m.value as u32) < webserver.min_instances {
                diags.push(
                    Diagnostic::error("`max_instances` is smaller than `min_instances`").at(&m.loc),
                );
            }
        }
    }

    // scheduler
    let mut scheduler = Scheduler {
        machine_type: "e2-micro".into(),
        zone: None,
        disk_size_gb: 30,
    };
    let scheduler_block = r.single_block("scheduler", diags);
    if let Some(b) = scheduler_block {
        let header = block_header(top.file, b);
        let br = BodyReader::new(
            top.file,
            &b.body,
            format!("the scheduler of {what}"),
            header.clone(),
            &["machine_type", "zone", "disk_size_gb"],
            &[],
            diags,
        );
        let mt = br.string(ev, "machine_type", diags);
        if let Some(m) = &mt {
            scheduler.machine_type = m.value.clone();
        }
        let zone = br.string(ev, "zone", diags);
        let disk = br.integer(ev, "disk_size_gb", 10, 65536, diags);
        if let Some(d) = &disk {
            scheduler.disk_size_gb = d.value as u32;
        }
        match &zone {
            Some(z) => {
                match zone_region(&z.value) {
                    None => diags.push(
                        value_error(z, format!("`{}` is not a zone", z.value), "a zone")
                            .help("zones look like \"us-central1-a\""),
                    ),
                    Some(zr) => {
                        // Against a malformed region, only the region's own error is useful.
                        if let Some(reg) = &region
                            && looks_like_region(&reg.value)
                            && zr != reg.value
                        {
                            diags.push(
                                Diagnostic::error(format!(
                                    "zone `{}` is not in the deployment's region `{}`",
                                    z.value, reg.value
                                ))
                                .at(&z.loc)
                                .label(format!("this zone is in {zr}"))
                                .help(format!("use a zone of {0}, e.g. \"{0}-a\"", reg.value)),
                            );
                        }
                    }
                }
                scheduler.zone = Some(z.value.clone());
            }
            None if gcp && !br.has("zone") => br.missing(
                "zone",
                "add `zone = \"<region>-a\"`, a zone of the deployment's region",
                diags,
            ),
            None => {}
        }
        if gcp {
            // Each reason with the attribute it is about; the warning points at the first.
            let mut reasons: Vec<(String, Location)> = Vec::new();
            if scheduler.machine_type != "e2-micro" {
                reasons.push((
                    format!("machine type `{}` is not e2-micro", scheduler.machine_type),
                    mt.as_ref().map(|m| m.loc.clone()).unwrap_or(header.clone()),
                ));
            }
            if let Some(reg) = &region
                && looks_like_region(&reg.value)
                && !FREE_TIER_REGIONS.contains(&reg.value.as_str())
            {
                reasons.push((
                    format!(
                        "region `{}` is not one of us-west1, us-central1, us-east1",
                        reg.value
                    ),
                    reg.loc.clone(),
                ));
            }
            if scheduler.disk_size_gb > 30 {
                reasons.push((
                    format!(
                        "a {} GB disk is over the free 30 GB",
                        scheduler.disk_size_gb
                    ),
                    disk.as_ref()
                        .map(|d| d.loc.clone())
                        .unwrap_or(header.clone()),
                ));
            }
            if let Some((_, loc)) = reasons.first() {
                let loc = loc.clone();
                let reasons: Vec<String> = reasons.into_iter().map(|(r, _)| r).collect();
                diags.push(
                    Diagnostic::warning(format!("the scheduler VM is outside Compute Engine's free tier: {}", reasons.join("; ")))
                        .at(&loc)
                        .help("an e2-micro in us-west1, us-central1 or us-east1 with at most 30 GB of standard disk is free"),
                );
            }
        }
    } else if gcp {
        diags.push(
            Diagnostic::error(format!("{what} has no `scheduler` block"))
                .at(&r.header)
                .help("a gcp deployment runs Mage's scheduler on a small VM: add `scheduler { zone = \"<region>-a\" }`"),
        );
    }

    // database
    let mut database = Database {
        tier: "db-f1-micro".into(),
        version: "POSTGRES_16".into(),
        disk_size_gb: 10,
    };
    if let Some(b) = r.single_block("database", diags) {
        let br = BodyReader::new(
            top.file,
            &b.body,
            format!("the database of {what}"),
            block_header(top.file, b),
            &["tier", "version", "disk_size_gb"],
            &[],
            diags,
        );
        if let Some(t) = br.string(ev, "tier", diags) {
            if !t.value.starts_with("db-") {
                diags.push(
                    value_error(
                        &t,
                        format!("`{}` is not a Cloud SQL tier", t.value),
                        "a Cloud SQL tier",
                    )
                    .help(
                        "tiers look like \"db-f1-micro\", \"db-g1-small\" or \"db-custom-2-7680\"",
                    ),
                );
            }
            database.tier = t.value;
        }
        if let Some(v) = br.string(ev, "version", diags) {
            if !v.value.starts_with("POSTGRES_") {
                diags.push(
                    value_error(
                        &v,
                        format!("`{}` is not a Cloud SQL Postgres version", v.value),
                        "a Cloud SQL Postgres version",
                    )
                    .help("Mage's database is Postgres: use e.g. \"POSTGRES_16\""),
                );
            }
            database.version = v.value;
        }
        if let Some(d) = br.integer(ev, "disk_size_gb", 10, 65536, diags) {
            database.disk_size_gb = d.value as u32;
        }
    }

    // storage
    let mut storage = None;
    if let Some(b) = r.single_block("storage", diags) {
        let header = block_header(top.file, b);
        let br = BodyReader::new(
            top.file,
            &b.body,
            format!("the storage of {what}"),
            header,
            &["bucket", "location", "keep_releases"],
            &[],
            diags,
        );
        let keep_releases = br
            .integer(ev, "keep_releases", 1, 1000, diags)
            .map_or(crate::release::DEFAULT_KEEP as u32, |k| k.value as u32);
        let location = br
            .string(ev, "location", diags)
            .map(|l| l.value)
            .or_else(|| region.as_ref().map(|r| r.value.clone()))
            .unwrap_or_else(|| "US".into());
        match br.string(ev, "bucket", diags) {
            Some(bucket) => {
                if let Err(msg) = check_bucket_name(&bucket.value) {
                    diags.push(value_error(&bucket, msg, "a bucket name"));
                }
                storage = Some(Storage {
                    bucket: bucket.value,
                    location,
                    keep_releases,
                });
            }
            None if !br.has("bucket") => br.missing(
                "bucket",
                "add `bucket = \"<globally unique bucket name>\"`",
                diags,
            ),
            None => {}
        }
    } else if gcp {
        diags.push(
            Diagnostic::error(format!("{what} has no `storage` block"))
                .at(&r.header)
                .help("block outputs and logs live in a bucket: add `storage { bucket = \"<globally unique name>\" }`"),
        );
    }

    // What holds data is protected unless the configuration says otherwise: the database and
    // the bucket of a `gcp` deployment. A `local` deployment's files are rendered from the
    // configuration, so weir protects its project only when asked to.
    let mut prevent_destroy = gcp;
    if let Some(b) = r.single_block("lifecycle", diags) {
        let br = BodyReader::new(
            top.file,
            &b.body,
            format!("the lifecycle of {what}"),
            block_header(top.file, b),
            &["prevent_destroy"],
            &[],
            diags,
        );
        if let Some(p) = br.bool(ev, "prevent_destroy", diags) {
            prevent_destroy = p.value;
        }
    }

    Some(Deployment {
        name,
        target: target?,
        project_dir: project_dir.map(|p| p.value),
        project: project.map(|p| p.value),
        region: region.map(|r| r.value),
        image: image?.value,
        mage_version: mage_version?,
        labels: labels_map,
        webserver,
        scheduler,
        database,
        storage,
        prevent_destroy,
        runtime,
        sensitive: ev.body_sensitivity(r.body, &["storage"]),
    })
}

/// `runtime { enabled, allow_untested_mage }` of a deployment.
fn runtime(config: &Config, r: &BodyReader, what: &str, diags: &mut Diagnostics) -> Runtime {
    let mut runtime = Runtime::default();
    if let Some(b) = r.single_block("runtime", diags) {
        let br = BodyReader::new(
            r.file,
            &b.body,
            format!("the runtime of {what}"),
            block_header(r.file, b),
            &["enabled", "allow_untested_mage"],
            &[],
            diags,
        );
        let ev = &config.evaluator;
        if let Some(v) = br.bool(ev, "enabled", diags) {
            runtime.enabled = v.value;
        }
        if let Some(v) = br.bool(ev, "allow_untested_mage", diags) {
            runtime.allow_untested_mage = v.value;
        }
    }
    runtime
}

/// The mage-ai versions weir is tested with: its tests run the real Mage of each on what weir
/// wrote. Oldest first.
pub const TESTED_MAGE_VERSIONS: &[&str] = weir_provider_mage::runtime::TESTED_MAGE_VERSIONS;

/// Why running Mage `version` is a risk, when it is not a version weir is tested with.
pub fn untested_mage_version(version: &str) -> Option<String> {
    (!TESTED_MAGE_VERSIONS.contains(&version)).then(|| {
        format!(
            "Mage {version} is not a version weir is tested with (tested with mage-ai {}): the files weir writes may not mean the same to it",
            TESTED_MAGE_VERSIONS.join(", ")
        )
    })
}

/// What a plan should say about running Mage `version` from `image`: an image not pinned to
/// a version (a tag that is `latest` or missing, and no digest), a version weir is not tested
/// with.
pub fn image_risks(image: &str, version: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !image.contains('@') && matches!(image_tag(image).as_deref(), None | Some("latest")) {
        out.push(format!(
            "image `{image}` is not pinned to a version: the Mage that runs may not be {version}, and deploys are not reproducible"
        ));
    }
    out.extend(untested_mage_version(version));
    out
}

/// The tag of an image reference (`mageai/mageai:0.9.80` → `0.9.80`), ignoring a registry port.
fn image_tag(image: &str) -> Option<String> {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// A region must look like one (E); one Cloud Run does not offer is a warning (new regions
/// appear), with a suggestion when it is a near miss.
fn check_region(reg: &crate::config::body::Spanned<String>, diags: &mut Diagnostics) {
    if !looks_like_region(&reg.value) {
        diags.push(
            Diagnostic::error(format!(
                "`{}` does not look like a Google Cloud region",
                reg.value
            ))
            .at(&reg.loc)
            .help("regions look like \"us-central1\" or \"europe-west1\""),
        );
    } else if !CLOUD_RUN_REGIONS.contains(&reg.value.as_str()) {
        let mut d = Diagnostic::warning(format!(
            "`{}` is not a Cloud Run region weir knows",
            reg.value
        ))
        .at(&reg.loc);
        if let Some(s) = crate::diagnostics::suggest(&reg.value, CLOUD_RUN_REGIONS.iter().copied())
        {
            d = d.help(format!("did you mean \"{s}\"?"));
        }
        diags.push(d);
    }
}

fn cloud_run_cpu(cpu: f64) -> Result<u32, String> {
    let allowed = [1.0, 2.0, 4.0, 6.0, 8.0];
    if allowed.contains(&cpu) {
        Ok(cpu as u32)
    } else {
        Err(format!(
            "Cloud Run does not offer {cpu} CPU; use 1, 2, 4, 6 or 8"
        ))
    }
}

/// The Mage project is a directory of its own inside the configuration directory: weir writes
/// and deletes files there, so it must not be the configuration directory (or a parent of it,
/// or anywhere outside it), and must not be reached through a symbolic link.
fn check_project_dir(config_dir: &Path, dir: &Spanned<String>, diags: &mut Diagnostics) {
    use crate::config::files::{FileError, kind_inside, relative_inside};
    use weir_provider_sdk::fs::Kind;
    let help =
        "use a directory of its own inside the configuration directory, e.g. \"mage_project\"";
    let problem = match relative_inside(config_dir, Path::new(dir.value.trim())) {
        Ok(rel) if rel.as_os_str().is_empty() => {
            Some("is the configuration directory itself".to_string())
        }
        Ok(rel) => match kind_inside(config_dir, &rel) {
            Ok(Some(kind)) if kind != Kind::Dir => {
                Some("exists and is not a directory".to_string())
            }
            Ok(_) => None,
            Err(err @ FileError::Link(_)) => Some(err.to_string()),
            // Unreadable: the provider reports it with the OS's reason.
            Err(_) => None,
        },
        Err(err) => Some(err.to_string()),
    };
    if let Some(problem) = problem {
        diags.push(
            Diagnostic::error(format!(
                "`project_dir` must name a directory of its own: the path {problem}"
            ))
            .at(&dir.loc)
            .help(help),
        );
    }
}

pub(super) fn profiles(
    config: &Config,
    deployment: Option<&Deployment>,
    diags: &mut Diagnostics,
) -> Vec<(ResourceProfile, Location)> {
    let ev = &config.evaluator;
    let mut out: Vec<(ResourceProfile, Location)> = Vec::new();
    for top in config.blocks("resource_profile") {
        let Some(l) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = (l[0].0.to_string(), l[0].1.clone());
        if let Some((_, first)) = out.iter().find(|(p, _)| p.name == name) {
            diags.push(
                Diagnostic::error(format!("resource profile `{name}` is declared twice"))
                    .at(&label_loc)
                    .help(format!("the first is at {first}")),
            );
            continue;
        }
        if !crate::config::variables::is_identifier(&name) {
            diags.push(
                Diagnostic::error(format!("`{name}` is not a valid profile name"))
                    .at(&label_loc)
                    .help("use letters, digits, `_` and `-`, starting with a letter"),
            );
        }
        let what = format!("resource profile `{name}`");
        let r = BodyReader::new(
            top.file,
            &top.block.body,
            what,
            top.header(),
            &["cpu", "memory", "region", "timeout", "max_retries", "env"],
            &[],
            diags,
        );
        let mut profile = ResourceProfile {
            name: name.clone(),
            cpu: 1,
            memory_mib: 2048,
            region: deployment
                .and_then(|d| d.region.clone())
                .unwrap_or_default(),
            timeout_secs: 600,
            max_retries: 0,
            env: BTreeMap::new(),
            env_sensitive: false,
        };
        let cpu = r.number(ev, "cpu", diags);
        if let Some(c) = &cpu {
            match cloud_run_cpu(c.value) {
                Ok(v) => profile.cpu = v,
                Err(msg) => diags.push(value_error(c, msg, "a CPU count")),
            }
        }
        let mem = r.string(ev, "memory", diags);
        let mut memory_ok = true;
        if let Some(m) = &mem {
            match parse_memory(&m.value) {
                Ok(mib) if !(512..=32768).contains(&mib) => {
                    memory_ok = false;
                    diags.push(
                        Diagnostic::error(format!(
                            "memory `{}` is out of range: a Cloud Run job has from 512Mi to 32Gi",
                            m.value
                        ))
                        .at(&m.loc)
                        .help("see the CPU/memory table in docs/language.md"),
                    );
                }
                Ok(mib) => profile.memory_mib = mib,
                Err(msg) => {
                    memory_ok = false;
                    diags.push(value_error(m, msg, "a memory size"));
                }
            }
        }
        if memory_ok
            && cpu.as_ref().is_none_or(|c| cloud_run_cpu(c.value).is_ok())
            && let Err(msg) = check_cloud_run_pair(profile.cpu, profile.memory_mib)
        {
            let loc = mem
                .as_ref()
                .map(|m| m.loc.clone())
                .or_else(|| cpu.as_ref().map(|c| c.loc.clone()))
                .unwrap_or(r.header.clone());
            let help = match CLOUD_RUN_LIMITS
                .iter()
                .find(|(_, lo, hi)| profile.memory_mib >= *lo && profile.memory_mib <= *hi)
            {
                Some((need, _, _)) if *need > profile.cpu => {
                    format!("set `cpu = {need}`, or ask for less memory")
                }
                _ => "see the CPU/memory table in docs/language.md".to_string(),
            };
            diags.push(Diagnostic::error(msg).at(&loc).help(help));
        }
        if let Some(reg) = r.string(ev, "region", diags) {
            check_region(&reg, diags);
            profile.region = reg.value;
        }
        if let Some(t) = r.string(ev, "timeout", diags) {
            match parse_duration(&t.value) {
                Ok(secs) if (1..=168 * 3600).contains(&secs) => profile.timeout_secs = secs,
                Ok(_) => diags.push(
                    Diagnostic::error(format!(
                        "timeout `{}` is out of range: a Cloud Run job task runs from 1s to 168h",
                        t.value
                    ))
                    .at(&t.loc)
                    .help("write a duration from \"1s\" to \"168h\" (7 days), e.g. \"30m\""),
                ),
                Err(msg) => diags.push(value_error(&t, msg, "a duration")),
            }
        }
        if let Some(m) = r.integer(ev, "max_retries", 0, 10, diags) {
            profile.max_retries = m.value as u32;
        }
        if let Some(env) = r.string_map(ev, "env", diags) {
            profile.env_sensitive = env.sensitive;
            profile.env = env.value.into_iter().collect();
        }
        out.push((profile, label_loc));
    }
    out
}
