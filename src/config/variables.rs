//! Input variables and locals.
//!
//! Variable values come, lowest precedence first, from the `default`, `WEIR_VAR_<name>`
//! environment variables, `*.auto.tfvars` files in the configuration directory (name order),
//! `--var-file` files (in order) and `--var name=value` flags (in order). Each value is
//! converted to the declared type and checked against the `validation` blocks.

use super::body::{BodyReader, block_header};
use super::eval::{Evaluator, order_locals, references};
use super::types::TypeConstraint;
use super::{Config, LoadOptions, labels};
use crate::diagnostics::{Diagnostic, Diagnostics, Location, SourceFile};
use hcl_edit::Span;
use hcl_edit::expr::Expression;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// One declared variable.
struct Declared {
    name: String,
    header: Location,
    ty: TypeConstraint,
    sensitive: bool,
    default: Option<(hcl::Value, Location)>,
    /// The `default` is there but wrong (already reported): no "has no value" on top.
    default_invalid: bool,
    validations: Vec<(Expression, Location, Option<String>)>,
}

/// Where a value was set, for messages.
struct Supplied {
    value: hcl::Value,
    /// A place in a file, or a description such as "--var region=...".
    origin: Result<Location, String>,
}

pub(super) fn resolve(config: &mut Config, opts: &LoadOptions, diags: &mut Diagnostics) {
    let mut declared: Vec<Declared> = Vec::new();
    for top in config.blocks("variable") {
        let Some(labels) = labels(top.file, top.block, &["name"], diags) else {
            continue;
        };
        let (name, label_loc) = &labels[0];
        if !is_identifier(name) {
            diags.push(
                Diagnostic::error(format!("`{name}` is not a valid variable name"))
                    .at(label_loc)
                    .help("a name starts with a letter and holds letters, digits, `_` and `-`"),
            );
            continue;
        }
        if let Some(first) = declared.iter().find(|d| d.name == *name) {
            diags.push(
                Diagnostic::error(format!("variable `{name}` is declared twice"))
                    .at(label_loc)
                    .help(format!("the first declaration is at {}", first.header)),
            );
            continue;
        }
        let reader = BodyReader::new(
            top.file,
            &top.block.body,
            format!("variable `{name}`"),
            top.header(),
            &["type", "default", "description", "sensitive"],
            &["validation"],
            diags,
        );
        let ty = match reader.attr("type") {
            Some(attr) => match TypeConstraint::parse(&attr.value) {
                Ok(ty) => ty,
                Err(msg) => {
                    diags.push(
                        Diagnostic::error(format!("invalid type for variable `{name}`: {msg}"))
                            .at(&reader.value_loc(attr)),
                    );
                    TypeConstraint::Any
                }
            },
            None => TypeConstraint::Any,
        };
        let sensitive = match reader.attr("sensitive") {
            Some(attr) => match Evaluator::eval_constant(&attr.value) {
                Ok(hcl::Value::Bool(b)) => b,
                _ => {
                    diags.push(
                        Diagnostic::error("`sensitive` must be `true` or `false`")
                            .at(&reader.value_loc(attr)),
                    );
                    false
                }
            },
            None => false,
        };
        if let Some(attr) = reader.attr("description")
            && !matches!(
                Evaluator::eval_constant(&attr.value),
                Ok(hcl::Value::String(_))
            )
        {
            diags.push(
                Diagnostic::error("`description` must be a string").at(&reader.value_loc(attr)),
            );
        }
        let default = reader.attr("default").and_then(|attr| {
            let loc = reader.value_loc(attr);
            if !references(&attr.value).is_empty() {
                diags.push(
                    Diagnostic::error("a variable's `default` cannot refer to other values")
                        .at(&loc)
                        .help("use a literal value; compute derived values in `locals`"),
                );
                return None;
            }
            match Evaluator::eval_constant(&attr.value) {
                Ok(v) => Some((v, loc)),
                Err(msg) => {
                    diags.push(Diagnostic::error(msg).at(&loc));
                    None
                }
            }
        });
        let default_invalid = default.is_none() && reader.has("default");
        let mut validations = Vec::new();
        for vblock in top.block.body.get_blocks("validation") {
            let vreader = BodyReader::new(
                top.file,
                &vblock.body,
                format!("the validation of variable `{name}`"),
                block_header(top.file, vblock),
                &["condition", "error_message"],
                &[],
                diags,
            );
            let Some(cond) = vreader.attr("condition") else {
                vreader.missing(
                    "condition",
                    &format!("add `condition = <a bool expression over var.{name}>`"),
                    diags,
                );
                continue;
            };
            let message = match vreader.attr("error_message") {
                Some(attr) => match Evaluator::eval_constant(&attr.value) {
                    Ok(hcl::Value::String(s)) => Some(s),
                    _ => {
                        diags.push(
                            Diagnostic::error("`error_message` must be a literal string")
                                .at(&vreader.value_loc(attr)),
                        );
                        None
                    }
                },
                None => {
                    vreader.missing(
                        "error_message",
                        "add `error_message = \"...\"` saying what a valid value is",
                        diags,
                    );
                    None
                }
            };
            let mut refers_elsewhere = false;
            for r in references(&cond.value) {
                if r.root == "var" && r.name.as_deref() != Some(name) {
                    refers_elsewhere = true;
                    diags.push(
                        Diagnostic::error(format!(
                            "the validation of `{name}` can only refer to `var.{name}`"
                        ))
                        .at(&Location::new(top.file, r.span.clone()))
                        .help(format!("a validation checks one variable: write the condition over `var.{name}` alone")),
                    );
                }
            }
            if !refers_elsewhere {
                validations.push((cond.value.clone(), vreader.value_loc(cond), message));
            }
        }
        declared.push(Declared {
            name: name.to_string(),
            header: top.header(),
            ty,
            sensitive,
            default,
            default_invalid,
            validations,
        });
    }

    // Gather supplied values, lowest precedence first; later ones win.
    let mut supplied: HashMap<String, Supplied> = HashMap::new();
    let is_declared = |name: &str| declared.iter().any(|d| d.name == name);
    let type_of = |name: &str| {
        declared
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.ty.clone())
            .unwrap_or(TypeConstraint::Any)
    };

    let mut env: Vec<&(String, String)> = opts.env.iter().collect();
    env.sort();
    for (key, raw) in env {
        let Some(name) = key.strip_prefix("WEIR_VAR_") else {
            continue;
        };
        if !is_declared(name) {
            continue; // The environment may hold values for other configurations.
        }
        match raw_value(raw, &type_of(name)) {
            Ok(value) => {
                supplied.insert(
                    name.to_string(),
                    Supplied {
                        value,
                        origin: Err(format!("the environment variable {key}")),
                    },
                );
            }
            Err(msg) => diags.push(Diagnostic::error(format!(
                "cannot read the environment variable {key}: {msg}"
            ))),
        }
    }

    let mut tfvars: Vec<std::path::PathBuf> = std::fs::read_dir(&opts.dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| std::path::PathBuf::from(e.file_name()))
        .filter(|n| n.to_string_lossy().ends_with(".auto.tfvars"))
        .collect();
    tfvars.sort();
    // `*.auto.tfvars` files are files of the configuration; a `--var-file` is wherever the
    // user says.
    let tfvars: Vec<(VarFile, String)> = tfvars
        .into_iter()
        .map(|n| {
            let display = super::display_path(&opts.dir, &n);
            (VarFile::InConfig(&opts.dir, n), display)
        })
        .chain(
            opts.var_files
                .iter()
                .map(|p| (VarFile::Named(p), p.display().to_string())),
        )
        .collect();
    for (file, display) in tfvars {
        read_tfvars(file, &display, &is_declared, &mut supplied, diags);
    }

    for flag in &opts.vars {
        let Some((name, raw)) = flag.split_once('=') else {
            diags.push(
                Diagnostic::error(format!("`--var {flag}` is not of the form NAME=VALUE"))
                    .help("write `--var region=europe-west1`"),
            );
            continue;
        };
        let name = name.trim();
        if !is_declared(name) {
            let mut d = Diagnostic::error(format!(
                "`--var {name}=...` sets a variable that is not declared"
            ));
            if let Some(s) =
                crate::diagnostics::suggest(name, declared.iter().map(|d| d.name.as_str()))
            {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help(format!("declare it with `variable \"{name}\" {{}}`"));
            }
            diags.push(d);
            continue;
        }
        match raw_value(raw, &type_of(name)) {
            Ok(value) => {
                supplied.insert(
                    name.to_string(),
                    Supplied {
                        value,
                        origin: Err(format!("`--var {name}=...`")),
                    },
                );
            }
            Err(msg) => diags.push(Diagnostic::error(format!(
                "cannot read `--var {name}=...`: {msg}"
            ))),
        }
    }

    // Resolve each variable: supplied value, else default; convert; validate.
    for d in &declared {
        config.evaluator.declare_variable_name(&d.name);
    }
    for d in declared {
        let (value, origin) = match supplied.remove(&d.name) {
            Some(s) => (s.value, s.origin),
            None => match &d.default {
                Some((v, loc)) => (v.clone(), Ok(loc.clone())),
                None if d.default_invalid => continue,
                None => {
                    diags.push(
                        Diagnostic::error(format!("variable `{}` has no value", d.name))
                            .at(&d.header)
                            .label("declared without a default")
                            .help(format!(
                                "set it with `--var {0}=...`, the environment variable `WEIR_VAR_{0}`, a `*.auto.tfvars` file or `--var-file`, or give it a `default`",
                                d.name
                            )),
                    );
                    continue;
                }
            },
        };
        if d.sensitive {
            // Before the type check: an error about a wrong-typed secret must not show it.
            super::register_secret(&mut config.redactor, &mut config.secrets, &value);
        }
        let value = match d.ty.convert(value) {
            Ok(v) => v,
            Err(msg) => {
                let mut diag =
                    Diagnostic::error(format!("wrong type for variable `{}`: {msg}", d.name))
                        .help(format!("the variable is declared as `type = {}`", d.ty));
                match &origin {
                    Ok(loc) => diag = diag.at(loc),
                    Err(desc) => {
                        diag.message = format!("{} (value from {desc})", diag.message);
                        diag = diag.at(&d.header);
                    }
                }
                diags.push(diag);
                continue;
            }
        };
        if d.sensitive {
            super::register_secret(&mut config.redactor, &mut config.secrets, &value);
        }
        let mut valid = true;
        for (cond, loc, message) in &d.validations {
            let mut var_obj = hcl::Map::new();
            var_obj.insert(d.name.clone(), value.clone());
            match config
                .evaluator
                .eval_with(cond, &[("var", hcl::Value::Object(var_obj))])
            {
                Ok(hcl::Value::Bool(true)) => {}
                Ok(hcl::Value::Bool(false)) => {
                    valid = false;
                    let text = message.clone().unwrap_or_else(|| "invalid value".into());
                    let mut diag = Diagnostic::error(format!(
                        "invalid value for variable `{}`: {text}",
                        d.name
                    ))
                    .at(loc)
                    .label("this condition is false");
                    if let Err(desc) = &origin {
                        diag = diag.help(format!("the value came from {desc}"));
                    } else if let Ok(src) = &origin {
                        diag = diag.help(format!("the value was set at {src}"));
                    }
                    diags.push(diag);
                }
                Ok(_) => {
                    valid = false;
                    diags.push(
                        Diagnostic::error("a validation `condition` must be `true` or `false`")
                            .at(loc),
                    );
                }
                Err(msg) => {
                    valid = false;
                    let msg = if d.sensitive {
                        "the condition could not be evaluated on this sensitive value".to_string()
                    } else {
                        msg
                    };
                    diags.push(
                        Diagnostic::error(format!("the validation of `{}` failed: {msg}", d.name))
                            .at(loc),
                    );
                }
            }
        }
        if valid {
            config.evaluator.set_variable(&d.name, value, d.sensitive);
        }
    }
}

/// A value given as a raw string (environment, `--var`): strings as is, anything else parsed
/// as an HCL expression, like Terraform.
fn raw_value(raw: &str, ty: &TypeConstraint) -> Result<hcl::Value, String> {
    if ty.takes_raw_string() {
        return Ok(hcl::Value::String(raw.to_string()));
    }
    match hcl_edit::parser::parse_expr(raw) {
        Ok(expr) if references(&expr).is_empty() => Evaluator::eval_constant(&expr),
        // A bare word for an `any` variable is a string.
        _ if matches!(ty, TypeConstraint::Any) => Ok(hcl::Value::String(raw.to_string())),
        _ => Err(format!("expected a value of type `{ty}`")),
    }
}

/// A variables file.
enum VarFile<'a> {
    /// A `*.auto.tfvars` file of the configuration directory, read like any file of the
    /// configuration (see `super::files`).
    InConfig(&'a Path, std::path::PathBuf),
    /// A `--var-file`, read where the user says.
    Named(&'a Path),
}

fn read_tfvars(
    file: VarFile,
    display: &str,
    is_declared: &dyn Fn(&str) -> bool,
    supplied: &mut HashMap<String, Supplied>,
    diags: &mut Diagnostics,
) {
    use super::files::{FileError, read_inside};
    let read = match file {
        VarFile::InConfig(dir, name) => read_inside(dir, &name).and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|e| FileError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        }),
        VarFile::Named(path) => std::fs::read_to_string(path).map_err(FileError::Io),
    };
    let text = match read {
        Ok(t) => t,
        Err(err) => {
            let mut d = Diagnostic::error(format!("the variables file `{display}` {err}"));
            if let Some(help) = err.help() {
                d = d.help(help);
            }
            diags.push(d);
            return;
        }
    };
    let file = SourceFile::new(display.to_string(), text);
    let Some(body) = super::parse(&file, diags) else {
        return;
    };
    for block in body.blocks() {
        diags.push(
            Diagnostic::error("a variables file holds only `name = value` lines")
                .at(&block_header(&file, block)),
        );
    }
    for attr in body.attributes() {
        let name = attr.key.as_str();
        let key_loc = Location::new(&file, attr.key.span().unwrap_or(0..0));
        if !is_declared(name) {
            diags.push(
                Diagnostic::warning(format!(
                    "`{name}` is set but no variable `{name}` is declared"
                ))
                .at(&key_loc)
                .help("declare it, or remove the line"),
            );
            continue;
        }
        let loc = Location::new(&file, attr.value.span().unwrap_or(0..0));
        match Evaluator::eval_constant(&attr.value) {
            Ok(value) => {
                supplied.insert(
                    name.to_string(),
                    Supplied {
                        value,
                        origin: Ok(loc),
                    },
                );
            }
            Err(msg) => diags.push(Diagnostic::error(msg).at(&loc)),
        }
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Evaluates all `locals` in dependency order; a cycle is an error naming it.
pub(super) fn resolve_locals(config: &mut Config, diags: &mut Diagnostics) {
    let Config {
        files,
        evaluator,
        redactor,
        secrets,
        ..
    } = config;
    struct Local<'a> {
        expr: &'a Expression,
        file: Arc<SourceFile>,
        loc: Location,
        deps: Vec<String>,
    }
    let mut locals: BTreeMap<String, Local> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let tops = files.iter().flat_map(|f| {
        f.body
            .get_blocks("locals")
            .map(move |block| super::TopBlock {
                file: &f.file,
                block,
            })
    });
    for top in tops {
        if !top.block.labels.is_empty() {
            diags.push(
                Diagnostic::error("`locals` takes no label")
                    .at(&top.header())
                    .help("write `locals { name = value }`"),
            );
        }
        for block in top.block.body.blocks() {
            diags.push(
                Diagnostic::error("`locals` holds only `name = value` attributes")
                    .at(&block_header(top.file, block)),
            );
        }
        for attr in top.block.body.attributes() {
            let name = attr.key.as_str().to_string();
            let loc = Location::new(top.file, attr.key.span().unwrap_or(0..0));
            if let Some(first) = locals.get(&name) {
                diags.push(
                    Diagnostic::error(format!("local value `{name}` is defined twice"))
                        .at(&loc)
                        .help(format!("the first definition is at {}", first.loc)),
                );
                continue;
            }
            let deps = references(&attr.value)
                .into_iter()
                .filter(|r| r.root == "local")
                .filter_map(|r| r.name)
                .collect();
            order.push(name.clone());
            locals.insert(
                name,
                Local {
                    expr: &attr.value,
                    file: Arc::clone(top.file),
                    loc,
                    deps,
                },
            );
        }
    }
    for name in locals.keys() {
        evaluator.declare_local_name(name);
    }

    // Depth-first topological order, reporting each cycle once.
    let order = order_locals(order.iter().map(String::as_str), |name| {
        locals[name]
            .deps
            .iter()
            .filter_map(|dep| locals.get_key_value(dep).map(|(key, _)| key.as_str()))
            .collect()
    });
    let mut in_cycle: std::collections::HashSet<String> = Default::default();
    for cycle in order.cycles {
        if cycle.iter().all(|n| !in_cycle.contains(*n)) {
            let mut path: Vec<String> = cycle.iter().map(|n| format!("local.{n}")).collect();
            path.push(format!("local.{}", cycle[0]));
            let first = &locals[cycle[0]];
            diags.push(
                Diagnostic::error(format!(
                    "local values refer to each other in a cycle: {}",
                    path.join(" → ")
                ))
                .at(&first.loc)
                .label("part of the cycle")
                .help(
                    "break the cycle so each local can be computed from values defined before it",
                ),
            );
        }
        for n in cycle {
            in_cycle.insert(n.to_string());
        }
    }

    for name in order.sorted {
        let local = &locals[name];
        if in_cycle.contains(name) || local.deps.iter().any(|d| in_cycle.contains(d)) {
            evaluator.record_local(name, None, false);
            continue;
        }
        let sensitive = evaluator.is_sensitive(local.expr);
        match evaluator.eval_local(name, &local.file, local.expr, &local.deps) {
            Ok(evaluated) => {
                if sensitive {
                    super::register_secret(redactor, secrets, &evaluated.value);
                }
                evaluator.record_local(name, Some(evaluated.value), sensitive);
            }
            Err(errors) => {
                for d in errors.into_iter().flatten() {
                    diags.push(d);
                }
                evaluator.record_local(name, None, sensitive);
            }
        }
    }
    evaluator.locals_done();
}
