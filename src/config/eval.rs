//! Expression evaluation: hcl-edit expressions (which keep their spans) are checked for
//! references, converted to hcl-rs expressions and evaluated with the variables, locals and
//! the function library in scope.
//!
//! Sensitivity is tracked by reference, as Terraform's marks propagate: an expression that
//! mentions a sensitive variable, or a local computed from one, yields a sensitive value —
//! whatever functions, operators, templates, conditionals or `for` expressions lie between the
//! secret and the result. Object and tuple literals are looked into, so that
//! `{ source = "shopify", key = var.secret }` makes only `key` sensitive
//! ([`Evaluator::sensitive_paths`]).

use crate::config::functions;
use crate::diagnostics::{Diagnostic, Location, SourceFile, suggest};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, ForExpr, ObjectKey, TraversalOperator};
use hcl_edit::template::{ForDirective, Template};
use hcl_edit::visit::{self, Visit};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use weir_provider_sdk::AttrPath;

/// A reference found in an expression: `root.name` (e.g. `var.project`, `block.load`) with the
/// span of the whole traversal.
#[derive(Debug, Clone)]
pub struct Reference {
    pub root: String,
    pub name: Option<String>,
    pub span: std::ops::Range<usize>,
}

/// Collects the references of an expression, skipping names bound by `for` expressions.
#[derive(Default)]
struct ReferenceCollector {
    bound: Vec<String>,
    found: Vec<Reference>,
}

impl ReferenceCollector {
    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|b| b == name)
    }
}

impl Visit for ReferenceCollector {
    fn visit_ident(&mut self, node: &hcl_edit::Decorated<hcl_edit::Ident>) {
        let name = node.as_str();
        if !self.is_bound(name) {
            self.found.push(Reference {
                root: name.to_string(),
                name: None,
                span: node.span().unwrap_or(0..0),
            });
        }
    }

    fn visit_traversal(&mut self, node: &hcl_edit::expr::Traversal) {
        if let Expression::Variable(root) = &node.expr {
            let root_name = root.as_str();
            if !self.is_bound(root_name) {
                let name = match node.operators.first().map(|op| op.value()) {
                    Some(TraversalOperator::GetAttr(ident)) => Some(ident.as_str().to_string()),
                    _ => None,
                };
                let start = root.span().map(|s| s.start).unwrap_or(0);
                let end = node
                    .operators
                    .first()
                    .and_then(|op| op.span())
                    .map(|s| s.end)
                    .or_else(|| root.span().map(|s| s.end))
                    .unwrap_or(start);
                self.found.push(Reference {
                    root: root_name.to_string(),
                    name,
                    span: start..end,
                });
            }
            for op in &node.operators {
                if let TraversalOperator::Index(expr) = op.value() {
                    self.visit_expr(expr);
                }
            }
            return;
        }
        visit::visit_traversal(self, node);
    }

    fn visit_func_name(&mut self, _node: &hcl_edit::expr::FuncName) {
        // A function's name is not a reference.
    }

    fn visit_object_key(&mut self, node: &hcl_edit::expr::ObjectKey) {
        // `{ name = ... }`: a bare key is a literal name, not a reference.
        if let hcl_edit::expr::ObjectKey::Expression(expr) = node {
            self.visit_expr(expr);
        }
    }

    fn visit_for_expr(&mut self, node: &ForExpr) {
        // The collection is evaluated outside the loop's scope.
        self.visit_expr(&node.intro.collection_expr);
        let pushed = usize::from(node.intro.key_var.is_some()) + 1;
        if let Some(key) = &node.intro.key_var {
            self.bound.push(key.as_str().to_string());
        }
        self.bound.push(node.intro.value_var.as_str().to_string());
        if let Some(key_expr) = &node.key_expr {
            self.visit_expr(key_expr);
        }
        self.visit_expr(&node.value_expr);
        if let Some(cond) = &node.cond {
            self.visit_expr(&cond.expr);
        }
        self.bound.truncate(self.bound.len() - pushed);
    }

    fn visit_for_directive(&mut self, node: &ForDirective) {
        let intro = &node.for_expr;
        self.visit_expr(&intro.collection_expr);
        let pushed = usize::from(intro.key_var.is_some()) + 1;
        if let Some(key) = &intro.key_var {
            self.bound.push(key.as_str().to_string());
        }
        self.bound.push(intro.value_var.as_str().to_string());
        self.visit_template(&intro.template);
        self.bound.truncate(self.bound.len() - pushed);
    }
}

/// Every reference in `expr`.
pub fn references(expr: &Expression) -> Vec<Reference> {
    let mut collector = ReferenceCollector::default();
    collector.visit_expr(expr);
    collector.found
}

/// Every reference in a template (for `templatefile`-like uses).
pub fn template_references(template: &Template) -> Vec<Reference> {
    let mut collector = ReferenceCollector::default();
    collector.visit_template(template);
    collector.found
}

/// A value and whether it is derived from a secret.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub value: hcl::Value,
    pub sensitive: bool,
}

/// Where the secrets of one block of the configuration are: attribute name (`retry.delay` for
/// an attribute of a nested block) → paths inside its value (an empty path: the whole value).
/// Lowering turns these into the sensitive paths of the resources the block becomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sensitivity(BTreeMap<String, Vec<AttrPath>>);

impl Sensitivity {
    /// Whether attribute `name` holds a secret anywhere in its value.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[AttrPath])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Object kinds an expression may refer to, by root name, in places that accept them.
pub const REFERENCE_ROOTS: &[&str] = &[
    "pipeline",
    "block",
    "resource_profile",
    "deployment",
    "schedule",
    "notification",
];

/// The evaluation scope of a configuration: variables, locals and functions.
pub struct Evaluator {
    ctx: hcl::eval::Context<'static>,
    variables: BTreeMap<String, hcl::Value>,
    locals: BTreeMap<String, hcl::Value>,
    /// Declared names (a local that failed to evaluate is declared but has no value).
    declared_variables: BTreeSet<String>,
    declared_locals: BTreeSet<String>,
    failed_locals: HashSet<String>,
    sensitive_variables: HashSet<String>,
    sensitive_locals: HashSet<String>,
    /// Values that other objects expose to expressions, e.g. `deployment.prod.bucket`.
    objects: BTreeMap<String, hcl::Value>,
    /// The [`Measure::size`] of every recorded local, together.
    locals_size: usize,
}

/// How deep a value may nest: as deep as the parser lets expressions nest in the source. A
/// chain of locals (`l2 = [local.l1]`, `l3 = [local.l2]`, …) would otherwise build values
/// whose size grows with the chain, each local holding a copy: quadratic memory, and
/// recursion deep enough to overflow the stack when the values are copied or dropped.
pub const MAX_VALUE_DEPTH: usize = 64;

/// How much the locals may hold together, in (roughly) bytes: each local holds its own copy
/// of the values it uses, so `l2 = "${local.l1}${local.l1}"` doubles with each link of a chain.
pub const MAX_LOCALS_SIZE: usize = 64 << 20;

/// How deep a value nests and about how many bytes it holds, counted without recursion and
/// only up to a bound (so measuring costs at most that much).
struct Measure {
    depth: usize,
    size: usize,
}

impl Measure {
    /// Bytes counted for each value inside another, besides its text: about what a value in a
    /// list or map takes in memory.
    const NODE: usize = 64;

    /// Stops as soon as the value is deeper than [`MAX_VALUE_DEPTH`] or larger than `max_size`.
    fn of(value: &hcl::Value, max_size: usize) -> Measure {
        let mut measure = Measure { depth: 0, size: 0 };
        let mut stack = vec![(value, 1)];
        while let Some((value, depth)) = stack.pop() {
            measure.depth = measure.depth.max(depth);
            measure.size = measure.size.saturating_add(Self::NODE);
            if measure.depth > MAX_VALUE_DEPTH || measure.size > max_size {
                break;
            }
            match value {
                hcl::Value::String(s) => measure.size = measure.size.saturating_add(s.len()),
                hcl::Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
                hcl::Value::Object(map) => {
                    for (key, v) in map {
                        measure.size = measure.size.saturating_add(key.len());
                        stack.push((v, depth + 1));
                    }
                }
                hcl::Value::Number(_) | hcl::Value::Bool(_) | hcl::Value::Null => {}
            }
        }
        measure
    }
}

impl Evaluator {
    pub fn new(dir: &std::path::Path) -> Evaluator {
        functions::set_base_dir(dir);
        let mut ctx = hcl::eval::Context::new();
        functions::declare_functions(&mut ctx);
        Evaluator {
            ctx,
            variables: BTreeMap::new(),
            locals: BTreeMap::new(),
            declared_variables: BTreeSet::new(),
            declared_locals: BTreeSet::new(),
            failed_locals: HashSet::new(),
            sensitive_variables: HashSet::new(),
            sensitive_locals: HashSet::new(),
            objects: BTreeMap::new(),
            locals_size: 0,
        }
    }

    pub fn declare_variable_name(&mut self, name: &str) {
        self.declared_variables.insert(name.to_string());
    }

    pub fn set_variable(&mut self, name: &str, value: hcl::Value, sensitive: bool) {
        self.declared_variables.insert(name.to_string());
        self.variables.insert(name.to_string(), value);
        if sensitive {
            self.sensitive_variables.insert(name.to_string());
        }
        self.refresh_ctx();
    }

    pub fn declare_local_name(&mut self, name: &str) {
        self.declared_locals.insert(name.to_string());
    }

    pub fn set_local(&mut self, name: &str, value: Option<hcl::Value>, sensitive: bool) {
        self.record_local(name, value, sensitive);
        self.refresh_ctx();
    }

    /// Records a local's value without putting it in the shared context yet: while locals are
    /// resolved one by one, each is evaluated with [`Evaluator::eval_local`], which brings in
    /// only the locals it uses (rebuilding the `local` object after each one would be quadratic).
    /// [`Evaluator::locals_done`] puts them all in scope at the end.
    pub fn record_local(&mut self, name: &str, value: Option<hcl::Value>, sensitive: bool) {
        match value {
            Some(v) => {
                self.locals_size += Measure::of(&v, usize::MAX).size;
                self.locals.insert(name.to_string(), v);
            }
            None => {
                self.failed_locals.insert(name.to_string());
            }
        }
        if sensitive {
            self.sensitive_locals.insert(name.to_string());
        }
    }

    /// Puts every recorded local in scope, after [`Evaluator::record_local`].
    pub fn locals_done(&mut self) {
        self.refresh_ctx();
    }

    /// Exposes an object (e.g. `deployment`) to expressions in outputs.
    pub fn set_object(&mut self, root: &str, value: hcl::Value) {
        self.objects.insert(root.to_string(), value);
        self.refresh_ctx();
    }

    fn refresh_ctx(&mut self) {
        let vars: hcl::Map<String, hcl::Value> = self
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let locals: hcl::Map<String, hcl::Value> = self
            .locals
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.ctx.declare_var("var", hcl::Value::Object(vars));
        self.ctx.declare_var("local", hcl::Value::Object(locals));
        for (root, value) in &self.objects {
            self.ctx.declare_var(root.as_str(), value.clone());
        }
    }

    pub fn is_sensitive_variable(&self, name: &str) -> bool {
        self.sensitive_variables.contains(name)
    }

    /// Whether the expression mentions a sensitive variable or local.
    pub fn is_sensitive(&self, expr: &Expression) -> bool {
        references(expr)
            .iter()
            .any(|r| self.reference_is_sensitive(r))
    }

    /// Where the secrets are inside the value of `expr`, as paths into that value (an empty
    /// path: all of it); empty when it holds none. Object and tuple literals are looked into
    /// element by element; any other expression that mentions a secret is sensitive as a whole.
    pub fn sensitive_paths(&self, expr: &Expression) -> Vec<AttrPath> {
        let mut out = Vec::new();
        if !self.sensitive_variables.is_empty() || !self.sensitive_locals.is_empty() {
            self.collect_sensitive_paths(expr, &mut Vec::new(), &mut out);
        }
        out
    }

    fn collect_sensitive_paths(
        &self,
        expr: &Expression,
        here: &mut Vec<String>,
        out: &mut Vec<AttrPath>,
    ) {
        if !self.is_sensitive(expr) {
            return;
        }
        match expr {
            Expression::Parenthesis(inner) => {
                self.collect_sensitive_paths(inner.inner(), here, out)
            }
            Expression::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    here.push(i.to_string());
                    self.collect_sensitive_paths(item, here, out);
                    here.pop();
                }
            }
            Expression::Object(object) => {
                let keys: Option<Vec<String>> = object
                    .iter()
                    .map(|(key, _)| match key {
                        ObjectKey::Ident(ident) => Some(ident.as_str().to_string()),
                        ObjectKey::Expression(Expression::String(s)) => {
                            Some(s.as_str().to_string())
                        }
                        ObjectKey::Expression(_) => None,
                    })
                    .collect();
                // A computed key is only known once evaluated: the whole object is sensitive.
                let Some(keys) = keys else {
                    out.push(here.clone());
                    return;
                };
                for (key, (_, value)) in keys.into_iter().zip(object.iter()) {
                    here.push(key);
                    self.collect_sensitive_paths(value.expr(), here, out);
                    here.pop();
                }
            }
            _ => out.push(here.clone()),
        }
    }

    /// Where the secrets of a block body are, by attribute name: for each attribute whose
    /// value holds one, the paths inside that value. Attributes of the `nested` blocks are
    /// named `<block>.<attribute>` (e.g. `retry.delay`).
    pub fn body_sensitivity(
        &self,
        body: &hcl_edit::structure::Body,
        nested: &[&str],
    ) -> Sensitivity {
        let mut found = BTreeMap::new();
        let mut add = |name: String, expr: &Expression| {
            let paths = self.sensitive_paths(expr);
            if !paths.is_empty() {
                found.insert(name, paths);
            }
        };
        for attr in body.attributes() {
            add(attr.key.as_str().to_string(), &attr.value);
        }
        for block in body.blocks() {
            let kind = block.ident.as_str();
            if nested.contains(&kind) {
                for attr in block.body.attributes() {
                    add(format!("{kind}.{}", attr.key.as_str()), &attr.value);
                }
            }
        }
        Sensitivity(found)
    }

    fn reference_is_sensitive(&self, r: &Reference) -> bool {
        match (r.root.as_str(), r.name.as_deref()) {
            ("var", Some(name)) => self.sensitive_variables.contains(name),
            ("local", Some(name)) => self.sensitive_locals.contains(name),
            // `var` or `local` as a whole: conservatively sensitive when anything is.
            ("var", None) => !self.sensitive_variables.is_empty(),
            ("local", None) => !self.sensitive_locals.is_empty(),
            _ => false,
        }
    }

    /// Checks the references of an expression that accepts values only (no object
    /// references except the `allowed_roots`). Returns diagnostics for unknown names; also
    /// returns whether a referenced local failed to evaluate (then evaluation is skipped quietly,
    /// the local's own error was reported).
    pub fn check_references(
        &self,
        file: &Arc<SourceFile>,
        expr: &Expression,
        allowed_roots: &[&str],
    ) -> (Vec<Diagnostic>, bool) {
        let mut diags = Vec::new();
        let mut depends_on_failed = false;
        for r in references(expr) {
            let loc = Location::new(file, r.span.clone());
            match (r.root.as_str(), r.name.as_deref()) {
                ("var", Some(name)) => {
                    if !self.declared_variables.contains(name) {
                        let mut d = Diagnostic::error(format!("unknown variable `var.{name}`"))
                            .at(&loc)
                            .label("not declared");
                        d = match suggest(name, self.declared_variables.iter().map(String::as_str))
                        {
                            Some(s) => d.help(format!("did you mean `var.{s}`?")),
                            None => d.help(format!(
                                "declare it with `variable \"{name}\" {{ type = string }}`"
                            )),
                        };
                        diags.push(d);
                    } else if !self.variables.contains_key(name) {
                        // Its missing value is reported at the variable itself.
                        depends_on_failed = true;
                    }
                }
                ("local", Some(name)) => {
                    if !self.declared_locals.contains(name) {
                        let mut d = Diagnostic::error(format!("unknown local value `local.{name}`"))
                            .at(&loc)
                            .label("not declared");
                        d = match suggest(name, self.declared_locals.iter().map(String::as_str)) {
                            Some(s) => d.help(format!("did you mean `local.{s}`?")),
                            None => d.help(format!("define it in a `locals {{ {name} = ... }}` block")),
                        };
                        diags.push(d);
                    } else if self.failed_locals.contains(name) || !self.locals.contains_key(name) {
                        depends_on_failed = true;
                    }
                }
                ("var" | "local", None) => diags.push(
                    Diagnostic::error(format!("`{}` must be followed by a name", r.root))
                        .at(&loc)
                        .help(format!("write `{}.<name>`", r.root)),
                ),
                (root, _) if allowed_roots.contains(&root) => {}
                (root, _) if REFERENCE_ROOTS.contains(&root) => diags.push(
                    Diagnostic::error(format!("a reference to `{root}` cannot be used here"))
                        .at(&loc)
                        .help("only variables (`var.<name>`), locals (`local.<name>`) and functions can be used in this attribute"),
                ),
                (root, _) => {
                    let mut d = Diagnostic::error(format!("unknown name `{root}`"))
                        .at(&loc)
                        .label("not defined");
                    let known = ["var", "local"]
                        .into_iter()
                        .chain(allowed_roots.iter().copied());
                    d = match suggest(root, known) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(
                            "values come from `var.<name>`, `local.<name>`, literals and functions; a string needs quotes",
                        ),
                    };
                    diags.push(d);
                }
            }
        }
        (diags, depends_on_failed)
    }

    /// Evaluates an expression. `Err(None)` means it depends on something that already failed
    /// (reported elsewhere).
    pub fn eval(
        &self,
        file: &Arc<SourceFile>,
        expr: &Expression,
        allowed_roots: &[&str],
    ) -> Result<Evaluated, Option<Vec<Diagnostic>>> {
        self.eval_in(&self.ctx, file, expr, allowed_roots)
    }

    /// Evaluates the expression of the local `name`, with the recorded values of the locals it
    /// uses (`deps`) in scope, and refuses a value past [`MAX_VALUE_DEPTH`] or one that takes
    /// the locals past [`MAX_LOCALS_SIZE`].
    pub fn eval_local(
        &mut self,
        name: &str,
        file: &Arc<SourceFile>,
        expr: &Expression,
        deps: &[String],
    ) -> Result<Evaluated, Option<Vec<Diagnostic>>> {
        // Only the locals it uses, in the shared context: copying the context for each local
        // would copy every variable once per local.
        let locals: hcl::Map<String, hcl::Value> = deps
            .iter()
            .filter_map(|d| self.locals.get(d).map(|v| (d.clone(), v.clone())))
            .collect();
        self.ctx.declare_var("local", hcl::Value::Object(locals));
        let evaluated = self.eval_in(&self.ctx, file, expr, &[])?;
        let room = MAX_LOCALS_SIZE.saturating_sub(self.locals_size);
        let measure = Measure::of(&evaluated.value, room);
        let loc = Location::new(file, expr.span().unwrap_or(0..0));
        if measure.depth > MAX_VALUE_DEPTH {
            return Err(Some(vec![
                Diagnostic::error(format!(
                    "local value `{name}` nests lists, maps or objects more than {MAX_VALUE_DEPTH} levels deep"
                ))
                .at(&loc)
                .label("too deeply nested")
                .help(format!(
                    "values nest at most {MAX_VALUE_DEPTH} levels, like expressions in the source; flatten the structure"
                )),
            ]));
        }
        if measure.size > room {
            return Err(Some(vec![
                Diagnostic::error(format!(
                    "local value `{name}` takes the local values past {} MiB in all",
                    MAX_LOCALS_SIZE >> 20
                ))
                .at(&loc)
                .label("too large")
                .help(format!(
                    "local values hold at most {} MiB together (each use copies the value); build smaller values, or read large data where it is used",
                    MAX_LOCALS_SIZE >> 20
                )),
            ]));
        }
        Ok(evaluated)
    }

    fn eval_in(
        &self,
        ctx: &hcl::eval::Context<'static>,
        file: &Arc<SourceFile>,
        expr: &Expression,
        allowed_roots: &[&str],
    ) -> Result<Evaluated, Option<Vec<Diagnostic>>> {
        let (diags, depends_on_failed) = self.check_references(file, expr, allowed_roots);
        if !diags.is_empty() {
            return Err(Some(diags));
        }
        if depends_on_failed {
            return Err(None);
        }
        let sensitive = self.is_sensitive(expr);
        let converted: hcl::Expression = expr.clone().into();
        match functions::evaluate(&converted, ctx) {
            Ok(value) => Ok(Evaluated { value, sensitive }),
            Err(err) => {
                let loc = Location::new(file, expr.span().unwrap_or(0..0));
                let message = if sensitive {
                    // The error text may quote the secret; say what failed without it.
                    "this expression, which uses a sensitive value, could not be evaluated"
                        .to_string()
                } else {
                    describe_eval_error(&err)
                };
                let mut d = Diagnostic::error(message)
                    .at(&loc)
                    .label("while evaluating this expression");
                if let Some(help) = eval_error_help(&err) {
                    d = d.help(help);
                }
                Err(Some(vec![d]))
            }
        }
    }

    /// Evaluates with an extra variable scope (e.g. `var` = one variable, for validations).
    pub fn eval_with(
        &self,
        expr: &Expression,
        extra: &[(&str, hcl::Value)],
    ) -> Result<hcl::Value, String> {
        let mut ctx = self.ctx.clone();
        for (name, value) in extra {
            ctx.declare_var(*name, value.clone());
        }
        let converted: hcl::Expression = expr.clone().into();
        functions::evaluate(&converted, &ctx).map_err(|e| describe_eval_error(&e))
    }

    /// Evaluates a literal-only expression (tfvars files, variable defaults): functions but no
    /// references.
    pub fn eval_constant(expr: &Expression) -> Result<hcl::Value, String> {
        let mut ctx = hcl::eval::Context::new();
        functions::declare_functions(&mut ctx);
        let converted: hcl::Expression = expr.clone().into();
        functions::evaluate(&converted, &ctx).map_err(|e| describe_eval_error(&e))
    }
}

/// The order in which locals are evaluated, and the cycles among them.
pub struct LocalOrder<'a> {
    /// Every local reachable from the roots, each after the locals it uses.
    pub sorted: Vec<&'a str>,
    /// Each cycle as it was found: the locals along it, starting where it closes.
    pub cycles: Vec<Vec<&'a str>>,
}

/// Orders locals depth first, visiting `roots` in order and the locals each one uses
/// (`deps`, which yields only declared locals) in order. An explicit stack instead of
/// recursion: a chain of any length cannot overflow the stack.
pub fn order_locals<'a>(
    roots: impl IntoIterator<Item = &'a str>,
    deps: impl Fn(&'a str) -> Vec<&'a str>,
) -> LocalOrder<'a> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: std::collections::HashMap<&str, Mark> = Default::default();
    let mut order = LocalOrder {
        sorted: Vec::new(),
        cycles: Vec::new(),
    };
    for root in roots {
        if marks.contains_key(root) {
            continue;
        }
        marks.insert(root, Mark::Active);
        // Each entry: a local being visited and the locals it uses still to visit.
        let mut stack: Vec<(&str, std::vec::IntoIter<&str>)> = vec![(root, deps(root).into_iter())];
        while let Some((name, pending)) = stack.last_mut() {
            let Some(dep) = pending.next() else {
                marks.insert(name, Mark::Done);
                order.sorted.push(name);
                stack.pop();
                continue;
            };
            match marks.get(dep) {
                Some(Mark::Done) => {}
                Some(Mark::Active) => {
                    let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    order
                        .cycles
                        .push(stack[start..].iter().map(|(n, _)| *n).collect());
                }
                None => {
                    marks.insert(dep, Mark::Active);
                    stack.push((dep, deps(dep).into_iter()));
                }
            }
        }
    }
    order
}

/// Functions of Terraform that weir leaves out on purpose: they read the clock, the network or
/// randomness, so a configuration would not evaluate the same way twice.
const IMPURE_FUNCTIONS: &[&str] = &[
    "timestamp",
    "plantimestamp",
    "timeadd",
    "uuid",
    "bcrypt",
    "http",
];

/// What would be right, for the errors where weir knows more than hcl-rs says.
fn eval_error_help(err: &hcl::eval::Error) -> Option<String> {
    let hcl::eval::ErrorKind::UndefinedFunc(name) = err.kind() else {
        return None;
    };
    let name = name.to_string();
    if IMPURE_FUNCTIONS.contains(&name.as_str()) {
        return Some(
            "weir's functions never read the clock, the network or random numbers, so a configuration evaluates the same every time; pass such a value in with a variable".into(),
        );
    }
    Some(match suggest(&name, functions::names()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the functions are {}",
            functions::names()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// A readable message for an hcl-rs evaluation error.
pub fn describe_eval_error(err: &hcl::eval::Error) -> String {
    use hcl::eval::ErrorKind;
    match err.kind() {
        ErrorKind::NoSuchKey(key) => format!("no attribute or key `{key}`"),
        ErrorKind::UndefinedFunc(name) => format!("unknown function `{name}`"),
        ErrorKind::FuncCall(name, msg) => format!("in call to `{name}()`: {msg}"),
        ErrorKind::Index(i) => format!("index {i} is out of range"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_locals_follows_a_chain_longer_than_any_stack_without_recursion() {
        // `l<i>` uses `l<i-1>`, given last link first: far deeper than a 2 MiB test thread's
        // stack could follow by recursion.
        const N: usize = 300_000;
        let names: Vec<String> = (0..N).map(|i| format!("l{i}")).collect();
        let deps = |name: &str| {
            let i: usize = name[1..].parse().unwrap();
            if i == 0 {
                Vec::new()
            } else {
                vec![names[i - 1].as_str()]
            }
        };
        let order = order_locals(names.iter().rev().map(String::as_str), deps);
        assert!(order.cycles.is_empty());
        assert_eq!(order.sorted.len(), N);
        assert_eq!(order.sorted[0], "l0");
        assert_eq!(order.sorted[N - 1], format!("l{}", N - 1));
    }

    #[test]
    fn order_locals_reports_a_cycle_from_where_it_closes() {
        let deps = |name: &'static str| match name {
            "a" => vec!["b"],
            "b" => vec!["c"],
            "c" => vec!["a"],
            "d" => vec!["a"],
            _ => Vec::new(),
        };
        let order = order_locals(["d", "a", "e"], deps);
        assert_eq!(order.cycles, vec![vec!["a", "b", "c"]]);
        assert_eq!(order.sorted, vec!["c", "b", "a", "d", "e"]);
    }

    #[test]
    fn measure_stops_at_the_depth_limit_without_recursion() {
        let mut value = hcl::Value::Null;
        for _ in 0..100_000 {
            value = hcl::Value::Array(vec![value]);
        }
        let measure = Measure::of(&value, usize::MAX);
        assert_eq!(measure.depth, MAX_VALUE_DEPTH + 1);
        // Dropping it recurses in hcl::Value's own Drop: leak it instead.
        std::mem::forget(value);
    }
}
