//! `output` blocks: values shown after apply and by `weir output`.

use super::{Deployment, Output, Target};
use crate::config::body::{BodyReader, to_json};
use crate::config::eval::references;
use crate::config::{Config, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location, suggest};

/// The attributes a deployment exposes to outputs.
const DEPLOYMENT_ATTRIBUTES: &[&str] = &["webserver_url", "scheduler_ip", "bucket", "project_dir"];

pub(super) fn outputs(
    config: &Config,
    deployment: Option<&Deployment>,
    diags: &mut Diagnostics,
) -> Vec<Output> {
    let mut out: Vec<(Output, Location)> = Vec::new();
    // Expose `deployment.<name>.<attr>`; values known only after a gcp apply are null here and
    // the output is marked unknown.
    let mut ev_scope = None;
    if let Some(d) = deployment {
        let mut attrs = hcl::Map::new();
        attrs.insert("webserver_url".into(), hcl::Value::Null);
        attrs.insert("scheduler_ip".into(), hcl::Value::Null);
        attrs.insert(
            "bucket".into(),
            d.storage
                .as_ref()
                .map(|s| hcl::Value::from(s.bucket.clone()))
                .unwrap_or(hcl::Value::Null),
        );
        attrs.insert(
            "project_dir".into(),
            d.project_dir
                .clone()
                .map(hcl::Value::from)
                .unwrap_or(hcl::Value::Null),
        );
        let mut root = hcl::Map::new();
        root.insert(d.name.clone(), hcl::Value::Object(attrs));
        ev_scope = Some(hcl::Value::Object(root));
    }
    for top in config.blocks("output") {
        let Some(l) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = (l[0].0.to_string(), l[0].1.clone());
        if let Some((_, first)) = out.iter().find(|(o, _)| o.name == name) {
            diags.push(
                Diagnostic::error(format!("output `{name}` is declared twice"))
                    .at(&label_loc)
                    .help(format!("the first is at {first}")),
            );
            continue;
        }
        let r = BodyReader::new(
            top.file,
            &top.block.body,
            format!("output `{name}`"),
            top.header(),
            &["value", "description", "sensitive"],
            &[],
            diags,
        );
        let Some(attr) = r.attr("value") else {
            r.missing("value", "add `value = <expression>`", diags);
            continue;
        };
        // Check `deployment.<name>.<attr>` references precisely.
        let mut unknown = false;
        let mut ok = true;
        // The deployment attribute the value is, when it is exactly one (for lowering to say
        // which resource attribute holds it).
        let mut whole_attr = None;
        for reference in references(&attr.value) {
            if reference.root != "deployment" {
                continue;
            }
            let loc = Location::new(top.file, reference.span.clone());
            let Some(d) = deployment else {
                ok = false;
                continue;
            };
            if reference.name.as_deref() != Some(d.name.as_str()) {
                ok = false;
                let n = reference.name.clone().unwrap_or_default();
                diags.push(
                    Diagnostic::error(format!("unknown deployment `deployment.{n}`"))
                        .at(&loc)
                        .help(format!("the deployment is `deployment.{}`", d.name)),
                );
                continue;
            }
            let text = attr_after(&top.file.text, reference.span.end);
            if matches!(attr.value, hcl_edit::expr::Expression::Traversal(_)) {
                whole_attr = text.clone().map(|a| (d.name.clone(), a));
            }
            match text {
                Some(a)
                    if DEPLOYMENT_ATTRIBUTES.contains(&a.as_str())
                        && d.target == Target::Gcp
                        && (a == "webserver_url" || a == "scheduler_ip") =>
                {
                    unknown = true;
                }
                Some(a) if DEPLOYMENT_ATTRIBUTES.contains(&a.as_str()) => {}
                Some(a) => {
                    ok = false;
                    // Underline `deployment.<name>.<attr>` whole.
                    let loc = Location::new(
                        top.file,
                        reference.span.start..reference.span.end + 1 + a.len(),
                    );
                    let mut diag =
                        Diagnostic::error(format!("a deployment has no attribute `{a}`")).at(&loc);
                    diag = match suggest(&a, DEPLOYMENT_ATTRIBUTES.iter().copied()) {
                        Some(s) => diag.help(format!("did you mean `{s}`?")),
                        None => diag.help(format!(
                            "a deployment exposes {}",
                            crate::diagnostics::one_of(DEPLOYMENT_ATTRIBUTES)
                        )),
                    };
                    diags.push(diag);
                }
                None => {}
            }
        }
        if !ok {
            continue;
        }
        let evaluated = match &ev_scope {
            Some(scope) => {
                // Evaluate with `deployment` in scope.
                let (errs, _) =
                    config
                        .evaluator
                        .check_references(top.file, &attr.value, &["deployment"]);
                if !errs.is_empty() {
                    errs.into_iter().for_each(|d| diags.push(d));
                    continue;
                }
                config
                    .evaluator
                    .eval_with(&attr.value, &[("deployment", scope.clone())])
                    .map(|v| (v, config.evaluator.is_sensitive(&attr.value)))
                    .map_err(|msg| vec![Diagnostic::error(msg).at(&r.value_loc(attr))])
            }
            None => match config.evaluator.eval(top.file, &attr.value, &[]) {
                Ok(e) => Ok((e.value, e.sensitive)),
                Err(e) => Err(e.unwrap_or_default()),
            },
        };
        // `deployment.<name>.<attr>` exposes values of the deployment, which may be secrets.
        let deployment_secret = deployment.is_some_and(|d| {
            (d.sensitive.has("project_dir") || d.sensitive.has("storage.bucket"))
                && references(&attr.value)
                    .iter()
                    .any(|r| r.root == "deployment")
        });
        let (value, derived_sensitive) = match evaluated {
            Ok((v, sensitive)) => (v, sensitive || deployment_secret),
            Err(errs) => {
                errs.into_iter().for_each(|d| diags.push(d));
                continue;
            }
        };
        let declared_sensitive = r
            .bool(&config.evaluator, "sensitive", diags)
            .map(|b| b.value)
            .unwrap_or(false);
        if derived_sensitive && !declared_sensitive {
            diags.push(
                Diagnostic::error(format!("output `{name}` shows a sensitive value"))
                    .at(&r.value_loc(attr))
                    .help("add `sensitive = true` to the output: its value is then stored but never printed"),
            );
            continue;
        }
        out.push((
            Output {
                name,
                value: to_json(&value),
                description: r
                    .string(&config.evaluator, "description", diags)
                    .map(|d| d.value)
                    .unwrap_or_default(),
                sensitive: declared_sensitive || derived_sensitive,
                unknown,
                // `deployment.<name>.<attr>` until lowering names the resource attribute.
                from: whole_attr.map(|(d, a)| super::OutputSource {
                    address: format!("deployment.{d}"),
                    path: vec![a],
                }),
            },
            label_loc,
        ));
    }
    out.into_iter().map(|(o, _)| o).collect()
}

/// The attribute name after `deployment.<name>` in the source, if it is `.attr`.
fn attr_after(text: &str, end: usize) -> Option<String> {
    let rest = text.get(end..)?.strip_prefix('.')?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}
