//! The function library of the configuration language.
//!
//! The functions follow Terraform's built-ins
//! (<https://developer.hashicorp.com/terraform/language/functions>) on top of hcl-rs's evaluator.
//! Three constraints shape this module:
//!
//! - hcl-rs functions are plain `fn` pointers that cannot capture state, so the directory that
//!   relative paths resolve against is kept in statics (see [`set_base_dir`]).
//! - hcl-rs evaluates call arguments before the call, so `try` and `can` cannot be ordinary
//!   functions: [`evaluate`] handles them while walking the expression tree.
//! - Error messages end up in terminals and CI logs, so no error quotes an argument value that
//!   could be a secret. For the same reason every parameter is declared as [`ParamType::Any`]:
//!   hcl-rs's own type check quotes the offending value, so each function checks its arguments
//!   itself and names only their types.

use base64::Engine as _;
use hcl::eval::{Context, Error, ErrorKind, Evaluate, Func, FuncArgs, FuncDef, ParamType};
use hcl::expr::{
    BinaryOp, Expression, ForExpr, FuncCall, ObjectKey, Operation, TemplateExpr, Traversal,
    TraversalOperator, UnaryOp,
};
use hcl::template::{Directive, Element, Strip, Template};
use hcl::{Identifier, Map, Number, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{PoisonError, RwLock};

// ---------------------------------------------------------------------------------------------
// Base directory
// ---------------------------------------------------------------------------------------------

/// The base directory of the whole process.
///
/// Evaluation may run on another thread than the one that loaded the configuration (a tokio
/// worker, say), where a thread-local alone would silently be unset; a weir process evaluates one
/// configuration at a time, so one process-wide value is right for the CLI.
static BASE_DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

thread_local! {
    /// The base directory set on this thread, preferred over [`BASE_DIR`].
    ///
    /// Tests run in parallel threads and each loads its own configuration directory; with the
    /// global alone they would race and read each other's files.
    static THREAD_BASE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Sets the directory that `file`, `templatefile` and `abspath` resolve relative paths against.
///
/// Functions in hcl-rs are plain `fn` pointers, so the directory cannot be captured by them: it
/// is stored for the calling thread (which keeps parallel tests apart) and for the whole process
/// (so evaluation on another thread still sees it). A relative `dir` is made absolute against the
/// current directory. Until it is called, paths resolve against the current directory.
pub fn set_base_dir(dir: &Path) {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    THREAD_BASE_DIR.with(|cell| *cell.borrow_mut() = Some(dir.clone()));
    *BASE_DIR.write().unwrap_or_else(PoisonError::into_inner) = Some(dir);
}

fn base_dir() -> Result<PathBuf, String> {
    if let Some(dir) = THREAD_BASE_DIR.with(|cell| cell.borrow().clone()) {
        return Ok(dir);
    }
    if let Some(dir) = BASE_DIR
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        return Ok(dir);
    }
    std::env::current_dir().map_err(|err| format!("cannot determine the current directory: {err}"))
}

fn resolve_path(path: &str) -> Result<PathBuf, String> {
    let path = Path::new(path);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(base_dir()?.join(path))
    }
}

// ---------------------------------------------------------------------------------------------
// Declaration
// ---------------------------------------------------------------------------------------------

/// A function of the library: its implementation, how many positional arguments it takes, and
/// whether it accepts any number of further arguments.
struct Builtin {
    name: &'static str,
    func: Func,
    params: usize,
    variadic: bool,
}

const fn builtin(name: &'static str, func: Func, params: usize, variadic: bool) -> Builtin {
    Builtin {
        name,
        func,
        params,
        variadic,
    }
}

/// The names of the functions a configuration can call.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|builtin| builtin.name)
}

const BUILTINS: &[Builtin] = &[
    builtin("file", file, 1, false),
    builtin("templatefile", templatefile, 2, false),
    builtin("jsonencode", jsonencode, 1, false),
    builtin("jsondecode", jsondecode, 1, false),
    builtin("yamlencode", yamlencode, 1, false),
    builtin("format", format, 1, true),
    builtin("lower", lower, 1, false),
    builtin("upper", upper, 1, false),
    builtin("trimspace", trimspace, 1, false),
    builtin("replace", replace, 3, false),
    builtin("join", join, 1, true),
    builtin("split", split, 2, false),
    builtin("concat", concat, 0, true),
    builtin("merge", merge, 0, true),
    // The third parameter (default) is optional: declared variadic, checked in `lookup`.
    builtin("lookup", lookup, 2, true),
    builtin("length", length, 1, false),
    builtin("keys", keys, 1, false),
    builtin("values", values, 1, false),
    builtin("contains", contains, 2, false),
    builtin("coalesce", coalesce, 0, true),
    builtin("tostring", tostring, 1, false),
    builtin("tonumber", tonumber, 1, false),
    builtin("tobool", tobool, 1, false),
    builtin("tolist", tolist, 1, false),
    builtin("tomap", tomap, 1, false),
    builtin("sha256", sha256, 1, false),
    builtin("base64encode", base64encode, 1, false),
    builtin("base64decode", base64decode, 1, false),
    builtin("abspath", abspath, 1, false),
    builtin("try", try_eager, 0, true),
    builtin("can", can_eager, 1, false),
];

fn func_def(params: usize, variadic: bool, func: Func) -> FuncDef {
    let builder = FuncDef::builder().params(std::iter::repeat_n(ParamType::Any, params));
    if variadic {
        builder.variadic_param(ParamType::Any).build(func)
    } else {
        builder.build(func)
    }
}

/// Declares every function of the library in `ctx`.
///
/// `try` and `can` are declared too, as eager fallbacks for code that evaluates with hcl-rs
/// directly: there all arguments were evaluated before the call, so `try` yields its first
/// argument and `can` yields `true`. Use [`evaluate`] for the real semantics.
pub fn declare_functions(ctx: &mut Context) {
    for builtin in BUILTINS {
        ctx.declare_func(
            builtin.name,
            func_def(builtin.params, builtin.variadic, builtin.func),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation with try() and can()
// ---------------------------------------------------------------------------------------------

/// Evaluates `expr` like `expr.evaluate(ctx)`, with `try(...)` and `can(...)` working.
///
/// hcl-rs evaluates function arguments eagerly, so `try(var.missing, "x")` would fail before the
/// call. Sub-expressions free of `try`/`can` are evaluated by hcl-rs; the nodes above a
/// `try`/`can` call are evaluated here: their children first, then the node itself with the
/// children replaced by their values. Scoping constructs (`for` expressions and template
/// directives) are evaluated here entirely, so that a `try` inside them sees the loop variables,
/// and a conditional only evaluates the branch it takes.
///
/// - `try(a, b, ...)` yields the first argument that evaluates without error, else an error
///   listing the first argument's error.
/// - `can(a)` yields whether its single argument evaluates without error.
pub fn evaluate(expr: &Expression, ctx: &Context) -> Result<Value, Error> {
    // hcl-rs gives better error context (it names the failing expression), so let it do the
    // work wherever there is no try/can to handle.
    if !mentions_try_or_can(expr) {
        return expr.evaluate(ctx);
    }
    match expr {
        Expression::FuncCall(call) if is_call_to(call, "try") => evaluate_try(call, ctx),
        Expression::FuncCall(call) if is_call_to(call, "can") => evaluate_can(call, ctx),
        Expression::FuncCall(call) => {
            let args = call
                .args
                .iter()
                .map(|arg| evaluate(arg, ctx).map(Expression::from))
                .collect::<Result<_, _>>()?;
            let call = FuncCall {
                name: call.name.clone(),
                args,
                expand_final: call.expand_final,
            };
            evaluate_substituted(&Expression::from(call), ctx)
        }
        Expression::Array(items) => items
            .iter()
            .map(|item| evaluate(item, ctx))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Expression::Object(object) => {
            let mut map = Map::with_capacity(object.len());
            for (key, value) in object.iter() {
                let key = evaluate_object_key(key, ctx)?;
                map.insert(key, evaluate(value, ctx)?);
            }
            Ok(Value::Object(map))
        }
        Expression::TemplateExpr(template) => evaluate_template_expr(template, ctx),
        Expression::Traversal(traversal) => {
            let base = Expression::from(evaluate(&traversal.expr, ctx)?);
            let operators = traversal
                .operators
                .iter()
                .map(|operator| match operator {
                    TraversalOperator::Index(index) => {
                        Ok(TraversalOperator::Index(evaluate(index, ctx)?.into()))
                    }
                    other => Ok(other.clone()),
                })
                .collect::<Result<Vec<_>, Error>>()?;
            evaluate_substituted(&Traversal::new(base, operators).into(), ctx)
        }
        Expression::Parenthesis(inner) => evaluate(inner, ctx),
        Expression::Conditional(cond) => {
            if evaluate_bool(
                &cond.cond_expr,
                ctx,
                "the condition of a conditional expression",
            )? {
                evaluate(&cond.true_expr, ctx)
            } else {
                evaluate(&cond.false_expr, ctx)
            }
        }
        Expression::Operation(operation) => {
            let substituted = match &**operation {
                Operation::Unary(op) => {
                    Expression::from(UnaryOp::new(op.operator, evaluate(&op.expr, ctx)?))
                }
                Operation::Binary(op) => Expression::from(BinaryOp::new(
                    evaluate(&op.lhs_expr, ctx)?,
                    op.operator,
                    evaluate(&op.rhs_expr, ctx)?,
                )),
            };
            evaluate_substituted(&substituted, ctx)
        }
        Expression::ForExpr(for_expr) => evaluate_for_expr(for_expr, ctx),
        // Literals and variables contain no calls (and `Expression` is non-exhaustive).
        other => other.evaluate(ctx),
    }
}

fn is_call_to(call: &FuncCall, name: &str) -> bool {
    !call.name.is_namespaced() && call.name.name.as_str() == name
}

fn mentions_try_or_can(expr: &Expression) -> bool {
    match expr {
        Expression::FuncCall(call) => {
            is_call_to(call, "try")
                || is_call_to(call, "can")
                || call.args.iter().any(mentions_try_or_can)
        }
        Expression::Array(items) => items.iter().any(mentions_try_or_can),
        Expression::Object(object) => object.iter().any(|(key, value)| {
            matches!(key, ObjectKey::Expression(key) if mentions_try_or_can(key))
                || mentions_try_or_can(value)
        }),
        Expression::TemplateExpr(template) => {
            // Cheap textual pre-check before parsing the template. A template that does not
            // parse is left to hcl-rs, which reports the parse error.
            let source = match &**template {
                TemplateExpr::QuotedString(source) => source,
                TemplateExpr::Heredoc(heredoc) => &heredoc.template,
            };
            (source.contains("try") || source.contains("can"))
                && Template::from_expr(template).is_ok_and(|t| template_mentions_try_or_can(&t))
        }
        Expression::Traversal(traversal) => {
            mentions_try_or_can(&traversal.expr)
                || traversal.operators.iter().any(|operator| {
                    matches!(operator, TraversalOperator::Index(index) if mentions_try_or_can(index))
                })
        }
        Expression::Parenthesis(inner) => mentions_try_or_can(inner),
        Expression::Conditional(cond) => {
            mentions_try_or_can(&cond.cond_expr)
                || mentions_try_or_can(&cond.true_expr)
                || mentions_try_or_can(&cond.false_expr)
        }
        Expression::Operation(operation) => match &**operation {
            Operation::Unary(op) => mentions_try_or_can(&op.expr),
            Operation::Binary(op) => {
                mentions_try_or_can(&op.lhs_expr) || mentions_try_or_can(&op.rhs_expr)
            }
        },
        Expression::ForExpr(for_expr) => {
            mentions_try_or_can(&for_expr.collection_expr)
                || for_expr.key_expr.as_ref().is_some_and(mentions_try_or_can)
                || mentions_try_or_can(&for_expr.value_expr)
                || for_expr.cond_expr.as_ref().is_some_and(mentions_try_or_can)
        }
        _ => false,
    }
}

fn template_mentions_try_or_can(template: &Template) -> bool {
    template.elements().iter().any(|element| match element {
        Element::Literal(_) => false,
        Element::Interpolation(interp) => mentions_try_or_can(&interp.expr),
        Element::Directive(directive) => match &**directive {
            Directive::If(dir) => {
                mentions_try_or_can(&dir.cond_expr)
                    || template_mentions_try_or_can(&dir.true_template)
                    || dir
                        .false_template
                        .as_ref()
                        .is_some_and(template_mentions_try_or_can)
            }
            Directive::For(dir) => {
                mentions_try_or_can(&dir.collection_expr)
                    || template_mentions_try_or_can(&dir.template)
            }
        },
    })
}

fn evaluate_try(call: &FuncCall, ctx: &Context) -> Result<Value, Error> {
    let fail = |msg: String| Error::from(ErrorKind::FuncCall(call.name.clone(), msg));
    if call.expand_final {
        return Err(fail(
            "expanding a list into arguments with `...` is not supported".into(),
        ));
    }
    let mut first_error = None;
    for arg in &call.args {
        match evaluate(arg, ctx) {
            Ok(value) => return Ok(value),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(fail(match first_error {
        Some(err) => format!("no argument of try() could be evaluated; the first error was: {err}"),
        None => "at least one argument is required".into(),
    }))
}

fn evaluate_can(call: &FuncCall, ctx: &Context) -> Result<Value, Error> {
    match call.args.as_slice() {
        [arg] if !call.expand_final => Ok(Value::Bool(evaluate(arg, ctx).is_ok())),
        _ => Err(Error::from(ErrorKind::FuncCall(
            call.name.clone(),
            "exactly one argument is required".into(),
        ))),
    }
}

/// Evaluates an expression whose sub-expressions were replaced by their values.
///
/// hcl-rs attaches the failing expression to its errors; here that is the substituted form,
/// which would show values (possibly secrets) instead of the references that were written, so
/// only the error kind is kept.
fn evaluate_substituted(expr: &Expression, ctx: &Context) -> Result<Value, Error> {
    expr.evaluate(ctx)
        .map_err(|err| Error::from(err.into_kind()))
}

fn message(msg: String) -> Error {
    Error::from(ErrorKind::Message(msg))
}

fn evaluate_bool(expr: &Expression, ctx: &Context, what: &str) -> Result<bool, Error> {
    match evaluate(expr, ctx)? {
        Value::Bool(value) => Ok(value),
        other => Err(message(format!(
            "{what} must be a bool, got {}",
            type_name(&other)
        ))),
    }
}

fn evaluate_object_key(key: &ObjectKey, ctx: &Context) -> Result<String, Error> {
    match key {
        ObjectKey::Expression(expr) => match evaluate(expr, ctx)? {
            Value::String(key) => Ok(key),
            Value::Bool(key) => Ok(key.to_string()),
            Value::Number(key) => Ok(key.to_string()),
            other => Err(message(format!(
                "an object key must be a string, got {}",
                type_name(&other)
            ))),
        },
        // A bare identifier.
        other => Ok(other.to_string()),
    }
}

/// The (key, value) pairs a `for` iterates over: list indexes or object keys, in order.
fn evaluate_collection(
    expr: &Expression,
    ctx: &Context,
    what: &str,
) -> Result<Vec<(Value, Value)>, Error> {
    match evaluate(expr, ctx)? {
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(index, item)| (Value::from(index), item))
            .collect()),
        Value::Object(map) => Ok(map
            .into_iter()
            .map(|(key, value)| (Value::String(key), value))
            .collect()),
        other => Err(message(format!(
            "{what} can only iterate over a list or an object, got {}",
            type_name(&other)
        ))),
    }
}

fn evaluate_for_expr(for_expr: &ForExpr, ctx: &Context) -> Result<Value, Error> {
    let collection = evaluate_collection(&for_expr.collection_expr, ctx, "a `for` expression")?;
    // One scope for all iterations: redeclaring the loop variables overwrites them, which avoids
    // copying the context per element.
    let mut scope = ctx.clone();
    let mut list = Vec::new();
    let mut map = Map::new();
    for (key, value) in collection {
        if let Some(key_var) = &for_expr.key_var {
            scope.declare_var(key_var.clone(), key);
        }
        scope.declare_var(for_expr.value_var.clone(), value);
        if let Some(cond) = &for_expr.cond_expr
            && !evaluate_bool(cond, &scope, "the `if` condition of a `for` expression")?
        {
            continue;
        }
        let Some(key_expr) = &for_expr.key_expr else {
            list.push(evaluate(&for_expr.value_expr, &scope)?);
            continue;
        };
        let key = match evaluate(key_expr, &scope)? {
            Value::String(key) => key,
            Value::Bool(key) => key.to_string(),
            Value::Number(key) => key.to_string(),
            other => {
                return Err(message(format!(
                    "the key of a `for` expression must be a string, got {}",
                    type_name(&other)
                )));
            }
        };
        let value = evaluate(&for_expr.value_expr, &scope)?;
        if for_expr.grouping {
            // Only lists are inserted when grouping, so the `if let` always matches.
            if let Value::Array(group) = map.entry(key).or_insert_with(|| Value::Array(Vec::new()))
            {
                group.push(value);
            }
        } else if map.contains_key(&key) {
            return Err(Error::from(ErrorKind::KeyExists(key)));
        } else {
            map.insert(key, value);
        }
    }
    Ok(if for_expr.key_expr.is_some() {
        Value::Object(map)
    } else {
        Value::Array(list)
    })
}

fn evaluate_template_expr(template: &TemplateExpr, ctx: &Context) -> Result<Value, Error> {
    let template = Template::from_expr(template)?;
    // Like hcl-rs: a template that is a single interpolation yields the value unchanged
    // (`"${[1]}"` is a list, not a string).
    if let [Element::Interpolation(interp)] = template.elements() {
        return evaluate(&interp.expr, ctx);
    }
    render_template(&template, ctx).map(Value::String)
}

fn render_template(template: &Template, ctx: &Context) -> Result<String, Error> {
    let mut out = String::new();
    render_elements(&mut out, template, ctx, Strip::None, Strip::None)?;
    Ok(out)
}

// Follows hcl-rs's (private) template evaluation step by step, so that whitespace stripping
// with `~` gives the same result whether or not a template contains try/can.
fn render_elements(
    out: &mut String,
    template: &Template,
    ctx: &Context,
    prev_strip: Strip,
    next_strip: Strip,
) -> Result<(), Error> {
    let elements = template.elements();
    for (index, element) in elements.iter().enumerate() {
        let prev = match index {
            0 => prev_strip,
            _ => element_strip(&elements[index - 1]),
        };
        let next = elements.get(index + 1).map_or(next_strip, element_strip);
        match element {
            Element::Literal(literal) => out.push_str(strip_literal(literal, prev, next)),
            Element::Interpolation(interp) => match evaluate(&interp.expr, ctx)? {
                Value::String(string) => out.push_str(&string),
                other => out.push_str(&other.to_string()),
            },
            Element::Directive(directive) => match &**directive {
                Directive::If(dir) => {
                    if evaluate_bool(&dir.cond_expr, ctx, "the condition of an `if` directive")? {
                        let next = match dir.false_template {
                            Some(_) => dir.else_strip,
                            None => dir.endif_strip,
                        };
                        render_elements(out, &dir.true_template, ctx, dir.if_strip, next)?;
                    } else if let Some(false_template) = &dir.false_template {
                        render_elements(out, false_template, ctx, dir.else_strip, dir.endif_strip)?;
                    }
                }
                Directive::For(dir) => {
                    let collection =
                        evaluate_collection(&dir.collection_expr, ctx, "a `for` directive")?;
                    let mut scope = ctx.clone();
                    for (key, value) in collection {
                        if let Some(key_var) = &dir.key_var {
                            scope.declare_var(key_var.clone(), key);
                        }
                        scope.declare_var(dir.value_var.clone(), value);
                        render_elements(
                            out,
                            &dir.template,
                            &scope,
                            dir.for_strip,
                            dir.endfor_strip,
                        )?;
                    }
                }
            },
        }
    }
    Ok(())
}

fn element_strip(element: &Element) -> Strip {
    match element {
        Element::Literal(_) => Strip::None,
        Element::Interpolation(interp) => interp.strip,
        Element::Directive(directive) => {
            let (start, end) = match &**directive {
                Directive::If(dir) => (dir.if_strip, dir.endif_strip),
                Directive::For(dir) => (dir.for_strip, dir.endfor_strip),
            };
            Strip::from((start.strip_start(), end.strip_end()))
        }
    }
}

/// Strips the spaces, and one line break, that a neighbouring `~` asks to remove.
fn strip_literal(mut literal: &str, prev_strip: Strip, next_strip: Strip) -> &str {
    fn is_space(ch: char) -> bool {
        ch.is_whitespace() && ch != '\r' && ch != '\n'
    }
    if prev_strip.strip_end() {
        let rest = literal.trim_start_matches(is_space);
        literal = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
            .unwrap_or(rest);
    }
    if next_strip.strip_start() {
        let rest = literal.trim_end_matches(is_space);
        literal = rest
            .strip_suffix("\r\n")
            .or_else(|| rest.strip_suffix('\n'))
            .unwrap_or(rest);
    }
    literal
}

// ---------------------------------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------------------------------

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Converts a primitive to a string the way Terraform does implicitly wherever a string is
/// expected (`upper(5)` is `"5"`).
fn primitive_string(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(string) => Some(Cow::Borrowed(string)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(value) => Some(Cow::Owned(value.to_string())),
        _ => None,
    }
}

fn string_arg<'a>(value: &'a Value, name: &str) -> Result<Cow<'a, str>, String> {
    primitive_string(value)
        .ok_or_else(|| format!("`{name}` must be a string, got {}", type_name(value)))
}

fn list_arg<'a>(value: &'a Value, name: &str) -> Result<&'a [Value], String> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(format!("`{name}` must be a list, got {}", type_name(other))),
    }
}

fn object_arg<'a>(value: &'a Value, name: &str) -> Result<&'a Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "`{name}` must be a map or an object, got {}",
            type_name(other)
        )),
    }
}

/// Object entries in Terraform's order: sorted by key.
fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// Reads a file of the configuration: inside the base directory, not through a link, a regular
/// file (see `super::files`).
fn read_text_file(path: &Path) -> Result<String, String> {
    use super::files::FileError;
    let bytes = super::files::read_inside(&base_dir()?, path).map_err(|err| match err {
        FileError::NotFound => format!("no file exists at {}", path.display()),
        err => format!("{} {err}", path.display()),
    })?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not valid UTF-8 text", path.display()))
}

fn file(args: FuncArgs) -> Result<Value, String> {
    let path = resolve_path(&string_arg(&args[0], "path")?)?;
    read_text_file(&path).map(Value::String)
}

fn templatefile(args: FuncArgs) -> Result<Value, String> {
    let path = resolve_path(&string_arg(&args[0], "path")?)?;
    let vars = object_arg(&args[1], "vars")?;
    let source = read_text_file(&path)?;
    let template: Template = source
        .parse()
        .map_err(|err| format!("cannot parse {} as a template: {err}", path.display()))?;

    let mut ctx = Context::new();
    declare_functions(&mut ctx);
    // Terraform forbids recursion; without this a template rendering itself would overflow the
    // stack.
    ctx.declare_func("templatefile", func_def(2, false, templatefile_in_template));
    for (name, value) in vars {
        let ident = Identifier::new(name.as_str())
            .map_err(|_| format!("template variable name {name:?} is not a valid identifier"))?;
        ctx.declare_var(ident, value.clone());
    }
    render_template(&template, &ctx)
        .map(Value::String)
        .map_err(|err| format!("in template {}: {err}", path.display()))
}

fn templatefile_in_template(_: FuncArgs) -> Result<Value, String> {
    Err("templatefile() cannot be called from a template that templatefile() renders".into())
}

fn abspath(args: FuncArgs) -> Result<Value, String> {
    let path = clean_path(&resolve_path(&string_arg(&args[0], "path")?)?);
    path.to_str()
        .map(|path| Value::String(path.to_owned()))
        .ok_or_else(|| "the absolute path is not valid UTF-8".to_owned())
}

/// Removes `.` and resolves `..` lexically, like Go's `filepath.Clean` which Terraform uses;
/// the file system is not consulted (the path need not exist, symlinks are kept).
fn clean_path(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            // `pop` keeps the root: `/..` is `/`.
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other.as_os_str()),
        }
    }
    clean
}

// ---------------------------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------------------------

/// Terraform's object attributes have no order and it encodes them sorted; do the same so
/// output does not depend on how a map was built.
fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(value) => serde_json::Value::Bool(*value),
        Value::Number(number) => serde_json::Value::Number(json_number(number)),
        Value::String(string) => serde_json::Value::String(string.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Object(map) => serde_json::Value::Object(
            sorted_entries(map)
                .into_iter()
                .map(|(key, value)| (key.clone(), to_json(value)))
                .collect(),
        ),
    }
}

fn json_number(number: &Number) -> serde_json::Number {
    if let Some(value) = number.as_u64() {
        value.into()
    } else if let Some(value) = number.as_i64() {
        value.into()
    } else {
        // hcl numbers are always finite, so `from_f64` cannot fail; 0 is a safe fallback.
        number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .unwrap_or_else(|| 0.into())
    }
}

fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(value) => Value::Bool(value),
        serde_json::Value::Number(number) => {
            if let Some(value) = number.as_u64() {
                Value::from(value)
            } else if let Some(value) = number.as_i64() {
                Value::from(value)
            } else {
                // serde_json rejects numbers that do not fit in a finite f64.
                number
                    .as_f64()
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        serde_json::Value::String(string) => Value::String(string),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, from_json(value)))
                .collect(),
        ),
    }
}

fn json_string(value: &Value) -> Result<String, String> {
    serde_json::to_string(&to_json(value)).map_err(|err| format!("cannot encode as JSON: {err}"))
}

fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    json_string(&args[0]).map(Value::String)
}

fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    let source = string_arg(&args[0], "str")?;
    // serde_json's syntax errors give a position and what was expected, never the input text.
    let value: serde_json::Value =
        serde_json::from_str(&source).map_err(|err| format!("invalid JSON: {err}"))?;
    Ok(from_json(value))
}

fn yamlencode(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    yaml_node(&mut out, &args[0], 0);
    Ok(Value::String(out))
}

/// Writes `value` in YAML block style. Its first line continues the current line (after a
/// `- ` or at the start of the document); further lines are indented by `indent` spaces.
fn yaml_node(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    push_indent(out, indent);
                }
                out.push_str("- ");
                yaml_node(out, item, indent + 2);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (index, (key, item)) in sorted_entries(map).into_iter().enumerate() {
                if index > 0 {
                    push_indent(out, indent);
                }
                yaml_string(out, key);
                out.push(':');
                match item {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push('\n');
                        push_indent(out, indent + 2);
                        yaml_node(out, item, indent + 2);
                    }
                    // Like Terraform (go-yaml): a list under a key is not indented further.
                    Value::Array(inner) if !inner.is_empty() => {
                        out.push('\n');
                        push_indent(out, indent);
                        yaml_node(out, item, indent);
                    }
                    _ => {
                        out.push(' ');
                        yaml_node(out, item, indent);
                    }
                }
            }
        }
        Value::Array(_) => out.push_str("[]\n"),
        Value::Object(_) => out.push_str("{}\n"),
        Value::Null => out.push_str("null\n"),
        Value::Bool(value) => {
            out.push_str(if *value { "true\n" } else { "false\n" });
        }
        Value::Number(number) => {
            out.push_str(&yaml_number(number));
            out.push('\n');
        }
        Value::String(string) => {
            yaml_string(out, string);
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Numbers as YAML 1.1 and 1.2 parsers both read them back as floats: `1e20` is a string to
/// YAML 1.1, `1.0e+20` is not.
fn yaml_number(number: &Number) -> String {
    let text = number.to_string();
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let dot = if mantissa.contains('.') { "" } else { ".0" };
            let sign = if exponent.starts_with('-') { "" } else { "+" };
            format!("{mantissa}{dot}e{sign}{exponent}")
        }
        None => text,
    }
}

fn yaml_string(out: &mut String, string: &str) {
    if yaml_plain_is_safe(string) {
        out.push_str(string);
        return;
    }
    out.push('"');
    for ch in string.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            ch if ch.is_control() || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04X}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

/// Whether a string can be written unquoted and still reads back as the same string, under
/// YAML 1.1 as well as 1.2. Errs towards quoting: anything that could be a number, bool, null,
/// date, or starts with an indicator character is quoted.
fn yaml_plain_is_safe(string: &str) -> bool {
    let Some(first) = string.chars().next() else {
        return false;
    };
    if first.is_whitespace()
        || string.ends_with(char::is_whitespace)
        || first.is_ascii_digit()
        || "-?:,[]{}#&*!|>'\"%@`+.~=<".contains(first)
        || string.contains(": ")
        || string.contains(" #")
        || string.ends_with(':')
        || string
            .chars()
            .any(|ch| ch.is_control() || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{feff}'))
    {
        return false;
    }
    !matches!(
        string.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
    )
}

fn base64encode(args: FuncArgs) -> Result<Value, String> {
    let string = string_arg(&args[0], "str")?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(string.as_bytes()),
    ))
}

fn base64decode(args: FuncArgs) -> Result<Value, String> {
    let string = string_arg(&args[0], "str")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(string.as_bytes())
        .map_err(|_| "the string is not valid base64 (standard alphabet, with padding)")?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8".into())
}

fn sha256(args: FuncArgs) -> Result<Value, String> {
    let string = string_arg(&args[0], "str")?;
    let digest = Sha256::digest(string.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(Value::String(hex))
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(string_arg(&args[0], "str")?.to_lowercase()))
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(string_arg(&args[0], "str")?.to_uppercase()))
}

fn trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(
        string_arg(&args[0], "str")?.trim().to_owned(),
    ))
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let string = string_arg(&args[0], "str")?;
    let substring = string_arg(&args[1], "substring")?;
    let replacement = string_arg(&args[2], "replacement")?;
    // Terraform treats `/.../` as a regular expression; doing a plain replacement instead would
    // silently give a different result.
    if substring.len() >= 2 && substring.starts_with('/') && substring.ends_with('/') {
        return Err(
            "regular expressions are not supported: `substring` is wrapped in slashes".into(),
        );
    }
    Ok(Value::String(string.replace(&*substring, &replacement)))
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let separator = string_arg(&args[0], "separator")?;
    let lists = &args[1..];
    if lists.is_empty() {
        return Err("at least one list is required".into());
    }
    let mut parts = Vec::new();
    for list in lists {
        for item in list_arg(list, "list")? {
            // Positions are counted across all lists, like Terraform.
            let position = parts.len() + 1;
            match item {
                Value::Null => {
                    return Err(format!(
                        "element {position} is null; cannot concatenate null values"
                    ));
                }
                item => parts.push(primitive_string(item).ok_or_else(|| {
                    format!(
                        "element {position} must be a string, got {}",
                        type_name(item)
                    )
                })?),
            }
        }
    }
    Ok(Value::String(parts.join(&*separator)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let separator = string_arg(&args[0], "separator")?;
    let string = string_arg(&args[1], "str")?;
    let parts: Vec<Value> = if separator.is_empty() {
        // Like Go's strings.Split: an empty separator splits after each character.
        string
            .chars()
            .map(|ch| Value::String(ch.to_string()))
            .collect()
    } else {
        string
            .split(&*separator)
            .map(|part| Value::String(part.to_owned()))
            .collect()
    };
    Ok(Value::Array(parts))
}

// ---------------------------------------------------------------------------------------------
// format()
// ---------------------------------------------------------------------------------------------

/// Widths and precisions above this are refused: `%999999999d` would otherwise allocate a
/// gigabyte.
const MAX_FORMAT_WIDTH: usize = 10_000;

#[derive(Default)]
struct Verb {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let spec = string_arg(&args[0], "format")?;
    let values = &args[1..];
    let bytes = spec.as_bytes();
    let mut out = String::with_capacity(spec.len());
    let mut pos = 0;
    let mut next_arg = 0;
    let mut used_args = 0;

    while let Some(found) = spec[pos..].find('%') {
        out.push_str(&spec[pos..pos + found]);
        let start = pos + found;
        pos = start + 1;

        let mut verb = Verb::default();
        while let Some(&byte) = bytes.get(pos) {
            match byte {
                b'-' => verb.minus = true,
                b'+' => verb.plus = true,
                b' ' => verb.space = true,
                b'0' => verb.zero = true,
                b'#' => verb.sharp = true,
                _ => break,
            }
            pos += 1;
        }
        let mut arg_index = parse_arg_index(spec.as_ref(), &mut pos, start)?;
        verb.width = parse_digits(bytes, &mut pos, start)?;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            verb.precision = Some(parse_digits(bytes, &mut pos, start)?.ok_or_else(|| {
                format!("a `.` must be followed by a precision, in the verb at offset {start}")
            })?);
        }
        if arg_index.is_none() {
            arg_index = parse_arg_index(spec.as_ref(), &mut pos, start)?;
        }
        let Some(mode) = spec[pos..].chars().next() else {
            return Err(format!(
                "the format string ends with an incomplete verb at offset {start}"
            ));
        };
        pos += mode.len_utf8();
        let raw = &spec[start..pos];

        if mode == '%' {
            out.push('%');
            continue;
        }
        if !matches!(
            mode,
            'v' | 't' | 'b' | 'd' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'F' | 's' | 'q'
        ) {
            return Err(format!("unsupported format verb {raw:?} at offset {start}"));
        }
        let index = arg_index.unwrap_or(next_arg);
        let Some(value) = values.get(index) else {
            return Err(format!(
                "not enough arguments for {raw:?} at offset {start}: need argument {} but have {} in total",
                index + 1,
                values.len()
            ));
        };
        next_arg = index + 1;
        used_args = used_args.max(next_arg);
        format_value(&mut out, &verb, mode, value).map_err(|reason| {
            format!("unsupported value for {raw:?} at offset {start}: {reason}")
        })?;
    }
    out.push_str(&spec[pos..]);

    if used_args < values.len() {
        return Err(if used_args == 0 {
            "too many arguments; the format string has no verbs".into()
        } else {
            format!("too many arguments; only {used_args} used by the format string")
        });
    }
    Ok(Value::String(out))
}

fn parse_digits(bytes: &[u8], pos: &mut usize, start: usize) -> Result<Option<usize>, String> {
    let mut value: Option<usize> = None;
    while let Some(&byte) = bytes.get(*pos) {
        if !byte.is_ascii_digit() {
            break;
        }
        let digit = usize::from(byte - b'0');
        let next = value.unwrap_or(0) * 10 + digit;
        if next > MAX_FORMAT_WIDTH {
            return Err(format!(
                "the width or precision of the verb at offset {start} is too large"
            ));
        }
        value = Some(next);
        *pos += 1;
    }
    Ok(value)
}

/// Parses an explicit `[n]` argument index (one-based) and returns it zero-based.
fn parse_arg_index(spec: &str, pos: &mut usize, start: usize) -> Result<Option<usize>, String> {
    if spec.as_bytes().get(*pos) != Some(&b'[') {
        return Ok(None);
    }
    let invalid = || format!("invalid argument index in the verb at offset {start}");
    let close = spec[*pos..].find(']').ok_or_else(invalid)?;
    let index: usize = spec[*pos + 1..*pos + close]
        .parse()
        .map_err(|_| invalid())?;
    *pos += close + 1;
    index.checked_sub(1).map(Some).ok_or_else(invalid)
}

fn format_value(out: &mut String, verb: &Verb, mode: char, value: &Value) -> Result<(), String> {
    if mode != 'v' && value.is_null() {
        return Err("null value cannot be formatted".into());
    }
    match mode {
        'v' => {
            let text = match value {
                Value::String(string) if !verb.sharp => string.clone(),
                Value::Number(number) if !verb.sharp => number.to_string(),
                other => json_string(other)?,
            };
            pad(out, verb, &text);
        }
        't' => {
            let value = match value {
                Value::Bool(value) => *value,
                Value::String(string) if string == "true" => true,
                Value::String(string) if string == "false" => false,
                other => return Err(format!("a bool is required, got {}", type_name(other))),
            };
            out.push_str(if value { "true" } else { "false" });
        }
        's' | 'q' => {
            let string = primitive_string(value)
                .ok_or_else(|| format!("a string is required, got {}", type_name(value)))?;
            // The precision truncates the input, in characters.
            let string: Cow<str> = match verb.precision {
                Some(precision) => match string.char_indices().nth(precision) {
                    Some((end, _)) => Cow::Owned(string[..end].to_owned()),
                    None => string,
                },
                None => string,
            };
            if mode == 'q' {
                let quoted = serde_json::to_string(&*string)
                    .map_err(|err| format!("cannot quote the string: {err}"))?;
                pad(out, verb, &quoted);
            } else {
                pad(out, verb, &string);
            }
        }
        _ => {
            let number = match value {
                Value::Number(number) => *number,
                Value::String(string) => parse_number(string)
                    .ok_or("a number is required, and this string is not one")?,
                other => return Err(format!("a number is required, got {}", type_name(other))),
            };
            format_number(out, verb, mode, &number)?;
        }
    }
    Ok(())
}

fn format_number(out: &mut String, verb: &Verb, mode: char, number: &Number) -> Result<(), String> {
    let (negative, prefix, digits) = if matches!(mode, 'b' | 'd' | 'o' | 'x' | 'X') {
        let integer = number_to_integer(number).ok_or("an integer is required")?;
        let magnitude = integer.unsigned_abs();
        let (prefix, mut digits) = match mode {
            'b' => ("0b", format!("{magnitude:b}")),
            'o' => ("0", format!("{magnitude:o}")),
            'x' => ("0x", format!("{magnitude:x}")),
            'X' => ("0X", format!("{magnitude:X}")),
            _ => ("", magnitude.to_string()),
        };
        // For integers, the precision is the minimum number of digits.
        if let Some(precision) = verb.precision
            && digits.len() < precision
        {
            digits.insert_str(0, &"0".repeat(precision - digits.len()));
        }
        let prefix = if verb.sharp { prefix } else { "" };
        (integer < 0, prefix, digits)
    } else {
        let float = number.as_f64().ok_or("a number is required")?;
        let precision = verb.precision.unwrap_or(6);
        let magnitude = float.abs();
        let digits = match mode {
            'e' | 'E' => {
                let text = go_exponent(&format!("{magnitude:.precision$e}"));
                if mode == 'E' {
                    text.to_uppercase()
                } else {
                    text
                }
            }
            _ => format!("{magnitude:.precision$}"),
        };
        (float < 0.0, "", digits)
    };

    let sign = if negative {
        "-"
    } else if verb.plus {
        "+"
    } else if verb.space {
        " "
    } else {
        ""
    };
    let len = sign.len() + prefix.len() + digits.len();
    let fill = verb.width.unwrap_or(0).saturating_sub(len);
    if verb.minus {
        out.push_str(sign);
        out.push_str(prefix);
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if verb.zero {
        // Zeros go between the sign and the digits: `%05d` of -42 is `-0042`.
        out.push_str(sign);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(sign);
        out.push_str(prefix);
        out.push_str(&digits);
    }
    Ok(())
}

/// Rust writes `1.5e3`; Go (and so Terraform) writes `1.5e+03`.
fn go_exponent(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text.to_owned(),
    }
}

fn number_to_integer(number: &Number) -> Option<i128> {
    if let Some(value) = number.as_i64() {
        return Some(value.into());
    }
    if let Some(value) = number.as_u64() {
        return Some(value.into());
    }
    let float = number.as_f64()?;
    // Whole floats beyond u64 (1e20) are integers too; beyond i128 they are refused rather
    // than printed wrongly.
    #[allow(clippy::cast_possible_truncation)]
    (float.fract() == 0.0 && float.abs() < 1e38).then_some(float as i128)
}

/// Pads to the width, in characters; `-` pads on the right, `0` pads with zeros.
fn pad(out: &mut String, verb: &Verb, text: &str) {
    let fill = verb.width.unwrap_or(0).saturating_sub(text.chars().count());
    if verb.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        let pad_char = if verb.zero { '0' } else { ' ' };
        out.extend(std::iter::repeat_n(pad_char, fill));
        out.push_str(text);
    }
}

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

fn concat(args: FuncArgs) -> Result<Value, String> {
    if args.is_empty() {
        return Err("at least one list is required".into());
    }
    let mut result = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        match arg {
            Value::Array(items) => result.extend(items.iter().cloned()),
            other => {
                return Err(format!(
                    "argument {} must be a list, got {}",
                    index + 1,
                    type_name(other)
                ));
            }
        }
    }
    Ok(Value::Array(result))
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut result = Map::new();
    for (index, arg) in args.iter().enumerate() {
        match arg {
            // Terraform skips null arguments.
            Value::Null => {}
            Value::Object(map) => {
                result.extend(map.iter().map(|(key, value)| (key.clone(), value.clone())));
            }
            other => {
                return Err(format!(
                    "argument {} must be a map or an object, got {}",
                    index + 1,
                    type_name(other)
                ));
            }
        }
    }
    Ok(Value::Object(result))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    if args.len() > 3 {
        return Err(format!(
            "expected 2 or 3 arguments (map, key, default), got {}",
            args.len()
        ));
    }
    let map = object_arg(&args[0], "map")?;
    let key = string_arg(&args[1], "key")?;
    match (map.get(&*key), args.get(2)) {
        (Some(value), _) | (None, Some(value)) => Ok(value.clone()),
        // Keys are names, not secrets, and the key is what the reader needs to fix the call.
        (None, None) => Err(format!(
            "the map has no key {key:?} and no default was given"
        )),
    }
}

fn length(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::String(string) => Ok(Value::from(string.chars().count())),
        Value::Array(items) => Ok(Value::from(items.len())),
        Value::Object(map) => Ok(Value::from(map.len())),
        other => Err(format!(
            "the argument must be a string, a list or a map, got {}",
            type_name(other)
        )),
    }
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let map = object_arg(&args[0], "map")?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(key, _)| Value::String(key.clone()))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let map = object_arg(&args[0], "map")?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(_, value)| value.clone())
            .collect(),
    ))
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let items = list_arg(&args[0], "list")?;
    Ok(Value::Bool(items.contains(&args[1])))
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    if args.is_empty() {
        return Err("at least one argument is required".into());
    }
    args.iter()
        .find(|value| !value.is_null() && value.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "all arguments are null or empty strings".into())
}

// ---------------------------------------------------------------------------------------------
// Type conversions
// ---------------------------------------------------------------------------------------------

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        value => primitive_string(value)
            .map(|string| Value::String(string.into_owned()))
            .ok_or_else(|| format!("cannot convert {} to string", type_name(value))),
    }
}

/// Parses decimal number syntax, as Terraform accepts it in strings.
fn parse_number(string: &str) -> Option<Number> {
    // Rust also accepts `inf`, `NaN` and `infinity`, which are not numbers to Terraform.
    if string.is_empty()
        || !string
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | '-' | '.' | 'e' | 'E'))
    {
        return None;
    }
    if let Ok(value) = string.parse::<i64>() {
        return Some(value.into());
    }
    if let Ok(value) = string.parse::<u64>() {
        return Some(value.into());
    }
    string.parse::<f64>().ok().and_then(Number::from_f64)
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(number) => Ok(Value::Number(*number)),
        // The string is not quoted: it may be a secret.
        Value::String(string) => parse_number(string)
            .map(Value::Number)
            .ok_or_else(|| "cannot convert this string to a number".into()),
        other => Err(format!("cannot convert {} to number", type_name(other))),
    }
}

fn tobool(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Bool(value) => Ok(Value::Bool(*value)),
        Value::String(string) if string == "true" => Ok(Value::Bool(true)),
        Value::String(string) if string == "false" => Ok(Value::Bool(false)),
        Value::String(_) => {
            Err("cannot convert this string to bool; only \"true\" and \"false\" can be".into())
        }
        other => Err(format!("cannot convert {} to bool", type_name(other))),
    }
}

/// Terraform's collections hold a single element type: when primitives are mixed with strings,
/// they are converted to strings (the one type every primitive converts to); any other mix is an
/// error. Nulls fit any type.
fn unify_elements(elements: Vec<&mut Value>) -> Result<(), String> {
    let mut kinds: Vec<&str> = elements
        .iter()
        .filter(|value| !value.is_null())
        .map(|value| type_name(value))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() <= 1 {
        return Ok(());
    }
    if !(kinds.contains(&"string")
        && kinds
            .iter()
            .all(|kind| matches!(*kind, "string" | "number" | "bool")))
    {
        return Err(format!(
            "all elements must have the same type, found {}",
            kinds.join(" and ")
        ));
    }
    for element in elements {
        let converted = match element {
            Value::Number(number) => number.to_string(),
            Value::Bool(value) => value.to_string(),
            _ => continue,
        };
        *element = Value::String(converted);
    }
    Ok(())
}

fn tolist(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Array(items) => {
            let mut items = items.clone();
            unify_elements(items.iter_mut().collect())?;
            Ok(Value::Array(items))
        }
        other => Err(format!("cannot convert {} to list", type_name(other))),
    }
}

fn tomap(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Object(map) => {
            let mut map = map.clone();
            unify_elements(map.values_mut().collect())?;
            Ok(Value::Object(map))
        }
        other => Err(format!("cannot convert {} to map", type_name(other))),
    }
}

// ---------------------------------------------------------------------------------------------
// try() and can() outside `evaluate`
// ---------------------------------------------------------------------------------------------

fn try_eager(args: FuncArgs) -> Result<Value, String> {
    args.first()
        .cloned()
        .ok_or_else(|| "at least one argument is required".into())
}

fn can_eager(_: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A context with the functions and `var`/`local` objects like a configuration has.
    fn context() -> Context<'static> {
        let mut ctx = Context::new();
        declare_functions(&mut ctx);
        ctx.declare_var(
            "var",
            value(r#"{ present = "p", secret = "hunter2", dollar = "$${not_a_var}", items = [{ name = "a" }, { other = 1 }], n = 3 }"#),
        );
        ctx.declare_var("local", value(r#"{ a = { c = 1 } }"#));
        ctx
    }

    fn value(source: &str) -> Value {
        Expression::from_str(source)
            .expect("test value parses")
            .evaluate(&Context::new())
            .expect("test value evaluates")
    }

    fn eval(source: &str) -> Result<Value, Error> {
        let expr = Expression::from_str(source).expect("test expression parses");
        evaluate(&expr, &context())
    }

    #[track_caller]
    fn ok(source: &str) -> Value {
        eval(source).unwrap_or_else(|err| panic!("{source}: {err}"))
    }

    #[track_caller]
    fn fails(source: &str) -> String {
        match eval(source) {
            Ok(value) => panic!("{source}: expected an error, got {value}"),
            Err(err) => err.to_string(),
        }
    }

    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    /// A fresh directory under the system temp dir, unique per test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-fn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn hcl_string(path: &Path) -> String {
        serde_json::to_string(path.to_str().expect("utf-8 temp path")).expect("quote")
    }

    // --- try / can -------------------------------------------------------------------------

    #[test]
    fn try_falls_back_on_missing_attribute() {
        assert_eq!(ok(r#"try(var.missing, "x")"#), string("x"));
        assert_eq!(ok(r#"try(var.present, "x")"#), string("p"));
    }

    #[test]
    fn can_reports_whether_its_argument_evaluates() {
        assert_eq!(ok("can(var.missing)"), Value::Bool(false));
        assert_eq!(ok("can(var.present)"), Value::Bool(true));
        assert_eq!(ok(r#"can(tonumber("x"))"#), Value::Bool(false));
    }

    #[test]
    fn try_nested_in_a_list() {
        assert_eq!(ok("[try(local.a.b, 1)]"), value("[1]"));
        assert_eq!(ok("[try(local.a.c, 2)]"), value("[1]"));
    }

    #[test]
    fn try_nested_in_calls_objects_operations_and_traversals() {
        assert_eq!(ok(r#"upper(try(var.missing, "x"))"#), string("X"));
        assert_eq!(
            ok(r#"{ k = try(var.missing, "v") }"#),
            value(r#"{ k = "v" }"#)
        );
        assert_eq!(ok(r#"{ (try(var.missing, "k")) = 1 }"#), value("{ k = 1 }"));
        assert_eq!(ok("try(var.missing, 1) + 1"), value("2"));
        assert_eq!(ok("!can(var.missing)"), Value::Bool(true));
        assert_eq!(ok("try(var.missing, local.a).c"), value("1"));
        assert_eq!(ok("var.items[try(var.missing, 0)].name"), string("a"));
        assert_eq!(ok(r#"(try(var.missing, "x"))"#), string("x"));
        assert_eq!(ok("try(try(var.missing, var.other), 5)"), value("5"));
        assert_eq!(
            ok(r#"concat(try(var.missing, []), ["a"])"#),
            value(r#"["a"]"#)
        );
        assert_eq!(
            ok("concat(try(var.missing, [[1], [2]])...)"),
            value("[1, 2]")
        );
        // A substituted string is a literal again, not re-read as a template.
        assert_eq!(ok(r#"upper(try(var.dollar, ""))"#), string("${NOT_A_VAR}"));
    }

    #[test]
    fn try_in_a_template() {
        assert_eq!(ok(r#""a-${try(var.missing, "b")}-c""#), string("a-b-c"));
        // A single interpolation yields the value itself, as in hcl-rs.
        assert_eq!(ok(r#""${try(var.missing, 4)}""#), value("4"));
        assert_eq!(
            ok(r#""%{ if can(var.missing) }yes%{ else }no%{ endif }""#),
            string("no")
        );
        let heredoc = "<<EOT\nvalue: ${try(var.missing, \"d\")}\nEOT";
        assert_eq!(ok(heredoc), string("value: d\n"));
    }

    #[test]
    fn try_sees_loop_variables() {
        assert_eq!(
            ok(r#"[for item in var.items : try(item.name, "none")]"#),
            value(r#"["a", "none"]"#)
        );
        assert_eq!(
            ok(r#"{ for i, item in var.items : try(item.name, "k${i}") => can(item.other) }"#),
            value(r#"{ a = false, k1 = true }"#)
        );
        assert_eq!(
            ok(r#"[for item in var.items : item if can(item.name)]"#),
            value(r#"[{ name = "a" }]"#)
        );
        assert_eq!(
            ok(r#"{ for item in var.items : "all" => try(item.name, "-")... }"#),
            value(r#"{ all = ["a", "-"] }"#)
        );
        assert_eq!(
            ok(r#""%{ for item in var.items }${try(item.name, "?")},%{ endfor }""#),
            string("a,?,")
        );
    }

    #[test]
    fn template_strip_markers_match_hcl_rs() {
        let source = "\"%{ for x in [1, 2] ~}\n  ${try(x, 0)}\n%{~ endfor ~}\n!\"";
        let plain = source.replace("try(x, 0)", "x");
        let expected = Expression::from_str(&plain)
            .expect("parses")
            .evaluate(&context())
            .expect("evaluates");
        assert_eq!(ok(source), expected);
    }

    #[test]
    fn conditional_evaluates_only_the_branch_taken() {
        assert_eq!(ok("true ? 1 : try(var.missing)"), value("1"));
        assert_eq!(
            ok("can(var.present) ? var.present : try(var.missing)"),
            string("p")
        );
    }

    #[test]
    fn try_without_a_working_argument_fails_with_the_first_error() {
        let err = fails("try(var.missing, local.nope)");
        assert!(
            err.contains("no argument of try() could be evaluated"),
            "{err}"
        );
        assert!(err.contains("missing"), "{err}");
        assert!(fails("try()").contains("at least one argument"));
        assert!(fails("can()").contains("exactly one argument"));
        assert!(fails("can(1, 2)").contains("exactly one argument"));
    }

    #[test]
    fn errors_outside_try_still_surface() {
        let err = fails(r#"[try(var.missing, 1), tonumber("nope")]"#);
        assert!(
            err.contains("cannot convert this string to a number"),
            "{err}"
        );
        assert!(fails("try(var.missing, 1) + var.nope").contains("nope"));
    }

    #[test]
    fn substituted_errors_do_not_show_values() {
        // Without the expression being stripped, hcl-rs would print `upper(["hunter2"])`.
        let err = fails("upper(try([var.secret], 1))");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn eager_fallbacks_work_with_plain_hcl_rs_evaluation() {
        let expr =
            Expression::from_str(r#"[try(var.present, "x"), can(var.present)]"#).expect("parses");
        assert_eq!(
            expr.evaluate(&context()).expect("evaluates"),
            value(r#"["p", true]"#)
        );
    }

    #[test]
    fn expressions_without_try_are_unchanged() {
        assert_eq!(ok("[for x in [1, 2] : x * 2]"), value("[2, 4]"));
        assert!(fails("var.nope").contains("nope"));
    }

    // --- files -----------------------------------------------------------------------------

    #[test]
    fn file_reads_relative_to_the_base_dir() {
        let dir = temp_dir("file");
        std::fs::write(dir.join("hello.txt"), "hello\n").expect("write");
        set_base_dir(&dir);
        assert_eq!(ok(r#"file("hello.txt")"#), string("hello\n"));
        assert_eq!(
            ok(&format!("file({})", hcl_string(&dir.join("hello.txt")))),
            string("hello\n")
        );
        assert!(fails(r#"file("absent.txt")"#).contains("no file exists at"));
        std::fs::write(dir.join("binary"), [0xff, 0xfe]).expect("write");
        assert!(fails(r#"file("binary")"#).contains("not valid UTF-8"));
        assert!(fails("file([])").contains("`path` must be a string, got list"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn base_dir_is_seen_from_other_threads() {
        let dir = temp_dir("threads");
        set_base_dir(&dir);
        // A thread that never called `set_base_dir` falls back to the process-wide value.
        let seen = std::thread::spawn(|| base_dir().expect("base dir"))
            .join()
            .expect("thread");
        assert!(seen.is_absolute());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn templatefile_renders_with_vars_and_functions() {
        let dir = temp_dir("templatefile");
        std::fs::write(
            dir.join("t.tpl"),
            "Hello ${upper(name)}!\n%{ for i in items ~}\n- ${try(i.n, \"?\")}\n%{ endfor ~}\n",
        )
        .expect("write");
        std::fs::write(dir.join("self.tpl"), "${templatefile(\"self.tpl\", {})}").expect("write");
        std::fs::write(dir.join("bad.tpl"), "${nope}").expect("write");
        set_base_dir(&dir);
        assert_eq!(
            ok(r#"templatefile("t.tpl", { name = "w", items = [{ n = 1 }, {}] })"#),
            string("Hello W!\n- 1\n- ?\n")
        );
        assert!(fails(r#"templatefile("self.tpl", {})"#).contains("cannot be called"));
        assert!(fails(r#"templatefile("bad.tpl", {})"#).contains("nope"));
        assert!(fails(r#"templatefile("t.tpl", [])"#).contains("`vars` must be a map"));
        assert!(
            fails(r#"templatefile("t.tpl", { "not valid" = 1 })"#)
                .contains("not a valid identifier")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abspath_resolves_against_the_base_dir_lexically() {
        let dir = temp_dir("abspath");
        set_base_dir(&dir);
        let expected = dir.join("b").to_str().expect("utf-8").to_owned();
        assert_eq!(ok(r#"abspath("./a/../b")"#), string(&expected));
        assert_eq!(ok(r#"abspath("/x/./y/../z")"#), string("/x/z"));
        assert_eq!(ok(r#"abspath("/..")"#), string("/"));
        assert!(fails("abspath(null)").contains("got null"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    // --- encodings -------------------------------------------------------------------------

    #[test]
    fn jsonencode_sorts_keys() {
        assert_eq!(
            ok(r#"jsonencode({ b = [1, 2.5, true, null], a = "x<" })"#),
            string(r#"{"a":"x<","b":[1,2.5,true,null]}"#)
        );
        assert_eq!(ok("jsonencode(-3)"), string("-3"));
    }

    #[test]
    fn jsondecode_parses_and_reports_errors_without_the_input() {
        assert_eq!(
            ok(r#"jsondecode("{\"a\": [1, -2, 1.5, \"s\", null, false]}")"#),
            value(r#"{ a = [1, -2, 1.5, "s", null, false] }"#)
        );
        let err = fails("jsondecode(var.secret)");
        assert!(err.contains("invalid JSON"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(fails("jsondecode([])").contains("must be a string"));
    }

    #[test]
    fn yamlencode_emits_block_style_sorted() {
        let yaml = ok(r#"yamlencode({
            name = "svc"
            tags = ["a", "b"]
            nested = { z = 1, x = [{ k = "v", j = true }, [1, 2]] }
            empty_list = []
            empty_map = {}
            nothing = null
        })"#);
        let expected = "\
empty_list: []
empty_map: {}
name: svc
nested:
  x:
  - j: true
    k: v
  - - 1
    - 2
  z: 1
nothing: null
tags:
- a
- b
";
        assert_eq!(yaml, string(expected));
        assert_eq!(ok(r#"yamlencode("plain")"#), string("plain\n"));
        assert_eq!(ok("yamlencode([])"), string("[]\n"));
        assert_eq!(ok("yamlencode(1.5)"), string("1.5\n"));
    }

    #[test]
    fn yamlencode_quotes_strings_that_need_it() {
        let cases = [
            ("", r#""""#),
            ("true", r#""true""#),
            ("No", r#""No""#),
            ("null", r#""null""#),
            ("123", r#""123""#),
            ("1.5", r#""1.5""#),
            ("2024-01-01", r#""2024-01-01""#),
            ("-x", r#""-x""#),
            ("a: b", r#""a: b""#),
            ("a #b", r#""a #b""#),
            (" lead", r#"" lead""#),
            ("*ref", r#""*ref""#),
            ("line\nbreak", r#""line\nbreak""#),
            ("tab\there", r#""tab\there""#),
            ("\"quoted", r#""\"quoted""#),
            ("a\"\n\\", r#""a\"\n\\""#),
            ("in\"side\\", "in\"side\\"),
            ("y", r#""y""#),
            ("<<", r#""<<""#),
            ("bell\u{7}", r#""bell\u0007""#),
            ("key:", r#""key:""#),
            ("hello world", "hello world"),
            ("a-b_c/d.e", "a-b_c/d.e"),
            ("héllo", "héllo"),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            yaml_string(&mut out, input);
            assert_eq!(out, expected, "input {input:?}");
        }
        assert_eq!(
            yaml_number(&Number::from_f64(1e20).expect("finite")),
            "1.0e+20"
        );
        assert_eq!(
            yaml_number(&Number::from_f64(1.5e-7).expect("finite")),
            "1.5e-7"
        );
    }

    #[test]
    fn base64_round_trips_and_validates() {
        assert_eq!(ok(r#"base64encode("hello")"#), string("aGVsbG8="));
        assert_eq!(ok(r#"base64decode("aGVsbG8=")"#), string("hello"));
        assert!(fails(r#"base64decode("!!!")"#).contains("not valid base64"));
        assert!(fails(r#"base64decode("//79")"#).contains("not valid UTF-8"));
        assert!(fails("base64encode({})").contains("got object"));
    }

    #[test]
    fn sha256_hashes_utf8_bytes() {
        assert_eq!(
            ok(r#"sha256("hello")"#),
            string("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert!(fails("sha256([])").contains("got list"));
    }

    // --- format ----------------------------------------------------------------------------

    #[test]
    fn format_verbs() {
        assert_eq!(
            ok(r#"format("Hello, %s!", "Ander")"#),
            string("Hello, Ander!")
        );
        assert_eq!(ok(r#"format("%d items", 3)"#), string("3 items"));
        assert_eq!(ok(r#"format("%d", "42")"#), string("42"));
        assert_eq!(ok(r#"format("%f", 1.5)"#), string("1.500000"));
        assert_eq!(ok(r#"format("%.2f", 3.14159)"#), string("3.14"));
        assert_eq!(ok(r#"format("%q", "a\"b")"#), string(r#""a\"b""#));
        assert_eq!(
            ok(r#"format("%v %v %v", "s", 1.5, true)"#),
            string("s 1.5 true")
        );
        assert_eq!(
            ok(r#"format("%v", { b = 1, a = [null] })"#),
            string(r#"{"a":[null],"b":1}"#)
        );
        assert_eq!(ok(r#"format("%#v", "s")"#), string(r#""s""#));
        assert_eq!(ok(r#"format("%v", null)"#), string("null"));
        assert_eq!(
            ok(r#"format("%t %t", true, "false")"#),
            string("true false")
        );
        assert_eq!(ok(r#"format("100%%")"#), string("100%"));
        assert_eq!(
            ok(r#"format("%x %X %o %b %#x", 255, 255, 8, 5, 255)"#),
            string("ff FF 10 101 0xff")
        );
        assert_eq!(ok(r#"format("%e", 1234.5678)"#), string("1.234568e+03"));
        assert_eq!(ok(r#"format("%d", 1e20)"#), string("100000000000000000000"));
    }

    #[test]
    fn format_width_flags_and_indexes() {
        assert_eq!(
            ok(r#"format("[%5s][%-5s]", "ab", "cd")"#),
            string("[   ab][cd   ]")
        );
        assert_eq!(
            ok(r#"format("%05d|%+d|% d", -42, 7, 7)"#),
            string("-0042|+7| 7")
        );
        assert_eq!(ok(r#"format("%8.3f|", -3.14159)"#), string("  -3.142|"));
        assert_eq!(ok(r#"format("%.3s", "abcdef")"#), string("abc"));
        assert_eq!(ok(r#"format("%[2]s %[1]s %s", "a", "b")"#), string("b a b"));
        assert_eq!(ok(r#"format("%.3d", 7)"#), string("007"));
    }

    #[test]
    fn format_errors() {
        assert!(fails(r#"format("%s %s", "a")"#).contains("not enough arguments"));
        assert!(fails(r#"format("%s", "a", "b")"#).contains("too many arguments"));
        assert!(fails(r#"format("plain", "a")"#).contains("no verbs"));
        assert!(fails(r#"format("%d", 1.5)"#).contains("an integer is required"));
        assert!(fails(r#"format("%s", null)"#).contains("null value cannot be formatted"));
        assert!(fails(r#"format("%s", [])"#).contains("a string is required"));
        assert!(fails(r#"format("%g", 1)"#).contains("unsupported format verb"));
        assert!(fails(r#"format("%", 1)"#).contains("incomplete verb"));
        assert!(fails(r#"format("%.f", 1)"#).contains("precision"));
        assert!(fails(r#"format("%[0]s", 1)"#).contains("invalid argument index"));
        assert!(fails(r#"format("%99999999999d", 1)"#).contains("too large"));
        let err = fails(r#"format("%d", var.secret)"#);
        assert!(!err.contains("hunter2"), "{err}");
    }

    // --- strings ---------------------------------------------------------------------------

    #[test]
    fn case_and_trim() {
        assert_eq!(ok(r#"lower("HeLLo Ä")"#), string("hello ä"));
        assert_eq!(ok(r#"upper("hello ä")"#), string("HELLO Ä"));
        assert_eq!(ok("upper(5)"), string("5"));
        assert_eq!(ok(r#"trimspace("  \n x y \t")"#), string("x y"));
        assert!(fails("lower([])").contains("`str` must be a string, got list"));
        assert!(fails("trimspace(null)").contains("got null"));
    }

    #[test]
    fn replace_plain_substrings_only() {
        assert_eq!(ok(r#"replace("a-b-c", "-", "+")"#), string("a+b+c"));
        assert_eq!(ok(r#"replace("a/b", "/", "_")"#), string("a_b"));
        assert!(
            fails(r#"replace("abc", "/b/", "x")"#)
                .contains("regular expressions are not supported")
        );
        assert!(fails(r#"replace("abc", [], "x")"#).contains("`substring` must be a string"));
    }

    #[test]
    fn join_and_split() {
        assert_eq!(ok(r#"join(", ", ["a", "b", 3])"#), string("a, b, 3"));
        assert_eq!(ok(r#"join("-", ["a"], ["b"])"#), string("a-b"));
        assert_eq!(ok(r#"join(",", [])"#), string(""));
        assert!(fails(r#"join(",", ["a", null])"#).contains("element 2 is null"));
        assert!(fails(r#"join(",", [[]])"#).contains("element 1 must be a string"));
        assert!(fails(r#"join(",")"#).contains("at least one list"));
        assert!(fails(r#"join(",", "a")"#).contains("must be a list"));
        assert_eq!(
            ok(r#"split(",", "a,b,,c")"#),
            value(r#"["a", "b", "", "c"]"#)
        );
        assert_eq!(ok(r#"split(",", "")"#), value(r#"[""]"#));
        assert_eq!(ok(r#"split("", "ab")"#), value(r#"["a", "b"]"#));
        assert!(fails(r#"split(",", {})"#).contains("got object"));
    }

    // --- collections -----------------------------------------------------------------------

    #[test]
    fn concat_lists() {
        assert_eq!(
            ok(r#"concat([1], [], ["a", [2]])"#),
            value(r#"[1, "a", [2]]"#)
        );
        assert!(fails("concat()").contains("at least one list"));
        assert!(fails("concat([1], 2)").contains("argument 2 must be a list"));
    }

    #[test]
    fn merge_maps() {
        assert_eq!(
            ok("merge({ a = 1, b = 2 }, null, { b = 3, c = 4 })"),
            value("{ a = 1, b = 3, c = 4 }")
        );
        assert_eq!(ok("merge()"), value("{}"));
        assert!(fails("merge({}, [])").contains("argument 2 must be a map"));
    }

    #[test]
    fn lookup_with_and_without_default() {
        assert_eq!(ok(r#"lookup({ a = 1 }, "a")"#), value("1"));
        assert_eq!(ok(r#"lookup({ a = 1 }, "b", 2)"#), value("2"));
        assert!(fails(r#"lookup({ a = 1 }, "b")"#).contains(r#"no key "b""#));
        assert!(fails(r#"lookup({}, "a", 1, 2)"#).contains("expected 2 or 3 arguments"));
        assert!(fails(r#"lookup([], "a")"#).contains("`map` must be a map"));
    }

    #[test]
    fn length_of_strings_lists_and_maps() {
        assert_eq!(ok(r#"length("héllo")"#), value("5"));
        assert_eq!(ok("length([1, 2])"), value("2"));
        assert_eq!(ok("length({ a = 1 })"), value("1"));
        assert!(fails("length(5)").contains("got number"));
        assert!(fails("length(null)").contains("got null"));
    }

    #[test]
    fn keys_and_values_are_sorted_by_key() {
        assert_eq!(ok("keys({ b = 1, a = 2 })"), value(r#"["a", "b"]"#));
        assert_eq!(ok("values({ b = 1, a = 2 })"), value("[2, 1]"));
        assert!(fails("keys([])").contains("must be a map"));
        assert!(fails(r#"values("x")"#).contains("must be a map"));
    }

    #[test]
    fn contains_compares_values() {
        assert_eq!(ok(r#"contains(["a", "b"], "b")"#), Value::Bool(true));
        assert_eq!(ok(r#"contains(["a", "b"], "c")"#), Value::Bool(false));
        assert_eq!(ok("contains([{ a = 1 }], { a = 1 })"), Value::Bool(true));
        assert!(fails(r#"contains("ab", "a")"#).contains("`list` must be a list"));
    }

    #[test]
    fn coalesce_skips_null_and_empty_strings() {
        assert_eq!(ok(r#"coalesce(null, "", "a", "b")"#), string("a"));
        assert_eq!(ok("coalesce(null, 0)"), value("0"));
        assert!(fails(r#"coalesce(null, "")"#).contains("all arguments are null"));
        assert!(fails("coalesce()").contains("at least one argument"));
    }

    // --- conversions -----------------------------------------------------------------------

    #[test]
    fn tostring_converts_primitives() {
        assert_eq!(ok("tostring(1.5)"), string("1.5"));
        assert_eq!(ok("tostring(true)"), string("true"));
        assert_eq!(ok(r#"tostring("s")"#), string("s"));
        assert_eq!(ok("tostring(null)"), Value::Null);
        assert!(fails("tostring([])").contains("cannot convert list to string"));
    }

    #[test]
    fn tonumber_parses_without_echoing() {
        assert_eq!(ok(r#"tonumber("42")"#), value("42"));
        assert_eq!(ok(r#"tonumber("-1.5e3")"#), value("-1500"));
        assert_eq!(ok("tonumber(7)"), value("7"));
        assert_eq!(ok("tonumber(null)"), Value::Null);
        for bad in ["inf", "NaN", "", "1,5", " 1"] {
            assert!(parse_number(bad).is_none(), "{bad:?}");
        }
        let err = fails("tonumber(var.secret)");
        assert!(
            err.contains("cannot convert this string to a number"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert!(fails("tonumber(true)").contains("cannot convert bool to number"));
    }

    #[test]
    fn tobool_accepts_true_and_false_strings() {
        assert_eq!(ok(r#"tobool("true")"#), Value::Bool(true));
        assert_eq!(ok("tobool(false)"), Value::Bool(false));
        assert_eq!(ok("tobool(null)"), Value::Null);
        let err = fails("tobool(var.secret)");
        assert!(err.contains("cannot convert this string to bool"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(fails("tobool(1)").contains("cannot convert number to bool"));
    }

    #[test]
    fn tolist_and_tomap_unify_primitives() {
        assert_eq!(
            ok(r#"tolist(["a", 1, true, null])"#),
            value(r#"["a", "1", "true", null]"#)
        );
        assert_eq!(ok("tolist([1, 2])"), value("[1, 2]"));
        assert_eq!(ok("tolist(null)"), Value::Null);
        assert!(fails("tolist([1, true])").contains("same type"));
        assert!(fails("tolist({})").contains("cannot convert object to list"));
        assert_eq!(
            ok(r#"tomap({ a = "x", b = 2 })"#),
            value(r#"{ a = "x", b = "2" }"#)
        );
        assert!(fails(r#"tomap({ a = [], b = "x" })"#).contains("same type"));
        assert!(fails("tomap([])").contains("cannot convert list to map"));
    }

    // --- declaration -----------------------------------------------------------------------

    #[test]
    fn every_builtin_is_declared_once() {
        let mut names: Vec<_> = BUILTINS.iter().map(|builtin| builtin.name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        for name in names {
            // Any outcome but "undefined function" proves the function is declared.
            if let Err(err) = eval(&format!("{name}(1, 2, 3, 4, 5, 6, [])")) {
                assert!(
                    !err.to_string().contains("undefined function"),
                    "{name}: {err}"
                );
            }
        }
    }

    #[test]
    fn arity_errors_come_from_hcl_rs() {
        assert!(fails("upper()").contains("expected 1 positional arguments, got 0"));
    }
}
