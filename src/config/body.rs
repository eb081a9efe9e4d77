//! Reading one HCL block body against its schema: unknown and duplicate attributes and blocks
//! are reported (with "did you mean"), and attributes are evaluated into typed values that
//! remember where they came from.

use crate::config::eval::Evaluator;
use crate::config::types::kind_of;
use crate::diagnostics::{Diagnostic, Diagnostics, Location, SourceFile, suggest};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, Body};
use std::collections::HashSet;
use std::sync::Arc;

/// A value with its source location and whether it derives from a secret.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Location,
    pub sensitive: bool,
}

impl<T> Spanned<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            loc: self.loc,
            sensitive: self.sensitive,
        }
    }
}

/// The span of a block's header: its type and labels.
pub fn block_header(file: &Arc<SourceFile>, block: &Block) -> Location {
    let start = block.ident.span().map(|s| s.start).unwrap_or(0);
    let end = block
        .labels
        .last()
        .and_then(|l| l.span())
        .or_else(|| block.ident.span())
        .map(|s| s.end)
        .unwrap_or(start);
    Location::new(file, start..end)
}

/// A block body being read, with the names its schema allows.
pub struct BodyReader<'a> {
    pub file: &'a Arc<SourceFile>,
    pub body: &'a Body,
    /// How messages name this block, e.g. ``block `pipeline "orders"` ``.
    pub what: String,
    pub header: Location,
}

impl<'a> BodyReader<'a> {
    /// Checks the body against the allowed attribute and block names, reporting unknown and
    /// duplicate ones.
    pub fn new(
        file: &'a Arc<SourceFile>,
        body: &'a Body,
        what: String,
        header: Location,
        attributes: &[&str],
        blocks: &[&str],
        diags: &mut Diagnostics,
    ) -> Self {
        let mut seen = HashSet::new();
        for attr in body.attributes() {
            let name = attr.key.as_str();
            let loc = Location::new(file, attr.key.span().unwrap_or(0..0));
            if !attributes.contains(&name) && blocks.contains(&name) {
                diags.push(
                    Diagnostic::error(format!("`{name}` is a block in {what}, not an attribute"))
                        .at(&loc)
                        .label("a block")
                        .help(format!("write `{name} {{ ... }}`, without `=`")),
                );
            } else if !attributes.contains(&name) {
                let mut d = Diagnostic::error(format!("unknown attribute `{name}` in {what}"))
                    .at(&loc)
                    .label("unknown attribute");
                d = if let Some(s) = suggest(name, attributes.iter().copied()) {
                    d.help(format!("did you mean `{s}`?"))
                } else if attributes.is_empty() {
                    d.help(format!("{what} takes no attributes"))
                } else {
                    d.help(format!(
                        "the attributes of {what} are {}",
                        crate::diagnostics::one_of(attributes)
                    ))
                };
                diags.push(d);
            } else if !seen.insert(name) {
                diags.push(
                    Diagnostic::error(format!("attribute `{name}` is set twice in {what}"))
                        .at(&loc)
                        .label("set again here")
                        .help("remove one of the two"),
                );
            }
        }
        for block in body.blocks() {
            let name = block.ident.as_str();
            if !blocks.contains(&name) && attributes.contains(&name) {
                let loc = Location::new(file, block.ident.span().unwrap_or(0..0));
                diags.push(
                    Diagnostic::error(format!("`{name}` is an attribute in {what}, not a block"))
                        .at(&loc)
                        .label("an attribute")
                        .help(format!("write `{name} = ...`")),
                );
            } else if !blocks.contains(&name) {
                let loc = Location::new(file, block.ident.span().unwrap_or(0..0));
                let mut d = Diagnostic::error(format!("unknown block `{name}` in {what}"))
                    .at(&loc)
                    .label("unknown block");
                d = if let Some(s) = suggest(name, blocks.iter().copied()) {
                    d.help(format!("did you mean `{s}`?"))
                } else if blocks.is_empty() {
                    d.help(format!("{what} contains no blocks"))
                } else {
                    d.help(format!(
                        "the blocks allowed in {what} are {}",
                        crate::diagnostics::one_of(blocks)
                    ))
                };
                diags.push(d);
            }
        }
        BodyReader {
            file,
            body,
            what,
            header,
        }
    }

    pub fn attr(&self, name: &str) -> Option<&'a Attribute> {
        self.body.get_attribute(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Where an attribute's value is.
    pub fn value_loc(&self, attr: &Attribute) -> Location {
        Location::new(self.file, attr.value.span().unwrap_or(0..0))
    }

    /// Where an attribute is (name and value).
    pub fn attr_loc(&self, name: &str) -> Location {
        match self.attr(name) {
            Some(attr) => Location::new(self.file, attr.span().unwrap_or(0..0)),
            None => self.header.clone(),
        }
    }

    /// Where the entry `key` of a map attribute written as a literal is: its key, or its value
    /// when `at_value`. Falls back to the whole value (e.g. for `labels = local.labels`).
    pub fn entry_loc(&self, name: &str, key: &str, at_value: bool) -> Location {
        let Some(attr) = self.attr(name) else {
            return self.header.clone();
        };
        if let Expression::Object(object) = &attr.value {
            for (k, v) in object.iter() {
                let matches = match k {
                    hcl_edit::expr::ObjectKey::Ident(ident) => ident.as_str() == key,
                    hcl_edit::expr::ObjectKey::Expression(Expression::String(s)) => {
                        s.as_str() == key
                    }
                    _ => false,
                };
                let span = if at_value { v.expr().span() } else { k.span() };
                if matches && let Some(span) = span {
                    return Location::new(self.file, span);
                }
            }
        }
        self.value_loc(attr)
    }

    /// Where element `index` of a list attribute written as a literal is. Falls back to the
    /// whole value.
    pub fn element_loc(&self, name: &str, index: usize) -> Location {
        let Some(attr) = self.attr(name) else {
            return self.header.clone();
        };
        if let Expression::Array(items) = &attr.value
            && let Some(span) = items.iter().nth(index).and_then(|e| e.span())
        {
            return Location::new(self.file, span);
        }
        self.value_loc(attr)
    }

    pub fn blocks(&self, name: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.body.get_blocks(name)
    }

    /// At most one block of this type; later ones are errors.
    pub fn single_block(&self, name: &'a str, diags: &mut Diagnostics) -> Option<&'a Block> {
        let mut blocks = self.body.get_blocks(name);
        let first = blocks.next();
        for extra in blocks {
            diags.push(
                Diagnostic::error(format!("more than one `{name}` block in {}", self.what))
                    .at(&block_header(self.file, extra))
                    .label("second block")
                    .help(format!("merge the `{name}` blocks into one")),
            );
        }
        first
    }

    /// Reports a missing required attribute at the block header.
    pub fn missing(&self, name: &str, help: &str, diags: &mut Diagnostics) {
        diags.push(
            Diagnostic::error(format!(
                "missing required attribute `{name}` in {}",
                self.what
            ))
            .at(&self.header)
            .label(format!("`{name}` is missing"))
            .help(help.to_string()),
        );
    }

    /// Evaluates an attribute, if present.
    pub fn value(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<hcl::Value>> {
        let attr = self.attr(name)?;
        self.eval_attr(ev, attr, &[], diags)
    }

    pub fn eval_attr(
        &self,
        ev: &Evaluator,
        attr: &Attribute,
        allowed_roots: &[&str],
        diags: &mut Diagnostics,
    ) -> Option<Spanned<hcl::Value>> {
        match ev.eval(self.file, &attr.value, allowed_roots) {
            Ok(evaluated) => Some(Spanned {
                value: evaluated.value,
                loc: self.value_loc(attr),
                sensitive: evaluated.sensitive,
            }),
            Err(Some(errors)) => {
                errors.into_iter().for_each(|d| diags.push(d));
                None
            }
            Err(None) => None,
        }
    }

    fn type_error(
        &self,
        name: &str,
        expected: &str,
        got: &hcl::Value,
        loc: &Location,
    ) -> Diagnostic {
        Diagnostic::error(format!("`{name}` must be {expected}, got {}", kind_of(got)))
            .at(loc)
            .label(format!("expected {expected}"))
    }

    pub fn string(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<String>> {
        let v = self.value(ev, name, diags)?;
        match &v.value {
            hcl::Value::String(s) => {
                let s = s.clone();
                Some(v.map(|_| s))
            }
            hcl::Value::Number(n) => {
                let s = n.to_string();
                Some(v.map(|_| s))
            }
            hcl::Value::Bool(b) => {
                let s = b.to_string();
                Some(v.map(|_| s))
            }
            other => {
                diags.push(self.type_error(name, "a string", other, &v.loc));
                None
            }
        }
    }

    pub fn bool(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<bool>> {
        let v = self.value(ev, name, diags)?;
        match &v.value {
            hcl::Value::Bool(b) => {
                let b = *b;
                Some(v.map(|_| b))
            }
            hcl::Value::String(s) if s == "true" || s == "false" => {
                let b = s == "true";
                Some(v.map(|_| b))
            }
            other => {
                diags.push(self.type_error(name, "`true` or `false`", other, &v.loc));
                None
            }
        }
    }

    pub fn number(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<f64>> {
        let v = self.value(ev, name, diags)?;
        let n = match &v.value {
            hcl::Value::Number(n) => n.as_f64(),
            hcl::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) => Some(v.map(|_| n)),
            None => {
                diags.push(self.type_error(name, "a number", &v.value, &v.loc));
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn integer(
        &self,
        ev: &Evaluator,
        name: &str,
        min: i64,
        max: i64,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<i64>> {
        let v = self.number(ev, name, diags)?;
        if v.value.fract() != 0.0 || v.value < min as f64 || v.value > max as f64 {
            let range = if max == i64::MAX {
                format!("a whole number of at least {min}")
            } else {
                format!("a whole number from {min} to {max}")
            };
            // A secret is never quoted back.
            let got = match v.sensitive {
                true => crate::redact::SENSITIVE.to_string(),
                false => v.value.to_string(),
            };
            diags.push(
                Diagnostic::error(format!("`{name}` must be {range}, got {got}"))
                    .at(&v.loc)
                    .label("out of range"),
            );
            return None;
        }
        Some(v.map(|n| n as i64))
    }

    pub fn string_list(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<Vec<String>>> {
        let v = self.value(ev, name, diags)?;
        let hcl::Value::Array(items) = &v.value else {
            diags.push(self.type_error(name, "a list of strings", &v.value, &v.loc));
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                hcl::Value::String(s) => out.push(s.clone()),
                other => {
                    let loc = self.element_loc(name, i);
                    diags.push(self.type_error(name, "a list of strings", other, &loc));
                    return None;
                }
            }
        }
        Some(v.map(|_| out))
    }

    pub fn string_map(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<Vec<(String, String)>>> {
        let v = self.value(ev, name, diags)?;
        let hcl::Value::Object(map) = &v.value else {
            diags.push(self.type_error(name, "a map of strings", &v.value, &v.loc));
            return None;
        };
        let mut out = Vec::new();
        for (k, item) in map {
            match item {
                hcl::Value::String(s) => out.push((k.clone(), s.clone())),
                hcl::Value::Number(n) => out.push((k.clone(), n.to_string())),
                hcl::Value::Bool(b) => out.push((k.clone(), b.to_string())),
                other => {
                    diags.push(
                        Diagnostic::error(format!(
                            "`{name}` must be a map of strings, but `{k}` is {}",
                            kind_of(other)
                        ))
                        .at(&self.entry_loc(name, k, true)),
                    );
                    return None;
                }
            }
        }
        Some(v.map(|_| out))
    }

    /// A map of any values (e.g. pipeline `variables`), as JSON.
    pub fn json_map(
        &self,
        ev: &Evaluator,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<serde_json::Map<String, serde_json::Value>>> {
        let v = self.value(ev, name, diags)?;
        let hcl::Value::Object(_) = &v.value else {
            diags.push(self.type_error(name, "a map", &v.value, &v.loc));
            return None;
        };
        let json = to_json(&v.value);
        Some(v.map(|_| match json {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }))
    }

    /// A single reference `root.name`, e.g. `pipeline = pipeline.orders`.
    pub fn reference(
        &self,
        name: &str,
        root: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<String>> {
        let attr = self.attr(name)?;
        match parse_reference(&attr.value, root) {
            Ok(target) => Some(Spanned {
                value: target,
                loc: self.value_loc(attr),
                sensitive: false,
            }),
            Err(msg) => {
                diags.push(
                    Diagnostic::error(format!(
                        "`{name}` must be a reference like `{root}.<name>`: {msg}"
                    ))
                    .at(&self.value_loc(attr))
                    .help(format!("write `{name} = {root}.<name>` without quotes")),
                );
                None
            }
        }
    }

    /// A list of references, e.g. `upstream = [block.load, block.split]`.
    pub fn references(
        &self,
        name: &str,
        root: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<Spanned<String>>> {
        let attr = self.attr(name)?;
        let Expression::Array(items) = &attr.value else {
            diags.push(
                Diagnostic::error(format!(
                    "`{name}` must be a list of references like `[{root}.<name>]`"
                ))
                .at(&self.value_loc(attr))
                .help(format!("write `{name} = [{root}.a, {root}.b]`")),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let loc = Location::new(self.file, item.span().unwrap_or(0..0));
            match parse_reference(item, root) {
                Ok(target) => out.push(Spanned {
                    value: target,
                    loc,
                    sensitive: false,
                }),
                Err(msg) => {
                    ok = false;
                    diags.push(
                        Diagnostic::error(format!(
                            "each element of `{name}` must be a reference like `{root}.<name>`: {msg}"
                        ))
                        .at(&loc)
                        .help(format!("write `{root}.<name>` without quotes")),
                    );
                }
            }
        }
        ok.then_some(out)
    }
}

/// Reads `root.name` from an expression.
fn parse_reference(expr: &Expression, root: &str) -> Result<String, String> {
    match expr {
        Expression::Traversal(t) => {
            let Expression::Variable(r) = &t.expr else {
                return Err("this is not a reference".into());
            };
            let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
            match (r.as_str(), ops.as_slice()) {
                (r, [TraversalOperator::GetAttr(name)]) if r == root => {
                    Ok(name.as_str().to_string())
                }
                (r, _) if r == root => Err(format!("expected exactly `{root}.<name>`")),
                (other, _) => Err(format!("it refers to `{other}`, not to a `{root}`")),
            }
        }
        Expression::String(s) => Err(format!("got the string \"{}\"", s.as_str())),
        Expression::Variable(v) => Err(format!("got the bare name `{}`", v.as_str())),
        _ => Err("this is not a reference".into()),
    }
}

/// Converts an HCL value to JSON.
pub fn to_json(value: &hcl::Value) -> serde_json::Value {
    match value {
        hcl::Value::Null => serde_json::Value::Null,
        hcl::Value::Bool(b) => serde_json::Value::Bool(*b),
        hcl::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        hcl::Value::String(s) => serde_json::Value::String(s.clone()),
        hcl::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        hcl::Value::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Converts JSON to an HCL value.
pub fn from_json(value: &serde_json::Value) -> hcl::Value {
    match value {
        serde_json::Value::Null => hcl::Value::Null,
        serde_json::Value::Bool(b) => hcl::Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                hcl::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                hcl::Value::from(u)
            } else {
                n.as_f64()
                    .and_then(hcl::Number::from_f64)
                    .map(hcl::Value::Number)
                    .unwrap_or(hcl::Value::Null)
            }
        }
        serde_json::Value::String(s) => hcl::Value::String(s.clone()),
        serde_json::Value::Array(items) => hcl::Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            hcl::Value::Object(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}
