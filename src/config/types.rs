//! Variable type constraints (`string`, `list(number)`, `object({ a = string })`, …) and the
//! conversions Terraform users expect (`"5"` is a fine `number`, `true` a fine `string`).

use hcl_edit::expr::{Expression, ObjectKey};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum TypeConstraint {
    Any,
    String,
    Number,
    Bool,
    List(Box<TypeConstraint>),
    Set(Box<TypeConstraint>),
    Map(Box<TypeConstraint>),
    Object(Vec<(String, TypeConstraint)>),
    Tuple(Vec<TypeConstraint>),
}

impl fmt::Display for TypeConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeConstraint::Any => f.write_str("any"),
            TypeConstraint::String => f.write_str("string"),
            TypeConstraint::Number => f.write_str("number"),
            TypeConstraint::Bool => f.write_str("bool"),
            TypeConstraint::List(t) => write!(f, "list({t})"),
            TypeConstraint::Set(t) => write!(f, "set({t})"),
            TypeConstraint::Map(t) => write!(f, "map({t})"),
            TypeConstraint::Object(fields) => {
                f.write_str("object({")?;
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {t}")?;
                }
                f.write_str("})")
            }
            TypeConstraint::Tuple(items) => {
                f.write_str("tuple([")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

const TYPE_HELP: &str = "types are `string`, `number`, `bool`, `any`, `list(T)`, `set(T)`, `map(T)`, `object({ name = T, ... })` and `tuple([T, ...])`";

impl TypeConstraint {
    /// Reads a type expression. Errors say what was expected.
    pub fn parse(expr: &Expression) -> Result<TypeConstraint, String> {
        match expr {
            Expression::Variable(name) => match name.as_str() {
                "any" => Ok(TypeConstraint::Any),
                "string" => Ok(TypeConstraint::String),
                "number" => Ok(TypeConstraint::Number),
                "bool" => Ok(TypeConstraint::Bool),
                other => Err(format!("unknown type `{other}`; {TYPE_HELP}")),
            },
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                let args: Vec<&Expression> = call.args.iter().collect();
                let one = |args: &[&Expression]| -> Result<TypeConstraint, String> {
                    match args {
                        [inner] => TypeConstraint::parse(inner),
                        _ => Err(format!("`{name}(...)` takes exactly one element type")),
                    }
                };
                match name {
                    "list" => Ok(TypeConstraint::List(Box::new(one(&args)?))),
                    "set" => Ok(TypeConstraint::Set(Box::new(one(&args)?))),
                    "map" => Ok(TypeConstraint::Map(Box::new(one(&args)?))),
                    "object" => match args.as_slice() {
                        [Expression::Object(obj)] => {
                            let mut fields = Vec::new();
                            for (key, value) in obj.iter() {
                                let key = match key {
                                    ObjectKey::Ident(i) => i.as_str().to_string(),
                                    ObjectKey::Expression(Expression::String(s)) => {
                                        s.as_str().to_string()
                                    }
                                    _ => return Err("object attribute names must be plain names".into()),
                                };
                                fields.push((key, TypeConstraint::parse(value.expr())?));
                            }
                            Ok(TypeConstraint::Object(fields))
                        }
                        _ => Err("`object(...)` takes one object of attribute types, e.g. `object({ name = string })`".into()),
                    },
                    "tuple" => match args.as_slice() {
                        [Expression::Array(items)] => Ok(TypeConstraint::Tuple(
                            items
                                .iter()
                                .map(TypeConstraint::parse)
                                .collect::<Result<_, _>>()?,
                        )),
                        _ => Err("`tuple(...)` takes one list of element types".into()),
                    },
                    other => Err(format!("unknown type `{other}(...)`; {TYPE_HELP}")),
                }
            }
            Expression::String(s) => Err(format!(
                "a type is written without quotes: `type = {}`",
                s.as_str()
            )),
            _ => Err(format!("this is not a type; {TYPE_HELP}")),
        }
    }

    /// Converts `value` to this type, the way Terraform does (numbers and bools to strings,
    /// numeric strings to numbers, `"true"`/`"false"` to bools). The error says what was
    /// expected without quoting the value, which may be a secret.
    pub fn convert(&self, value: hcl::Value) -> Result<hcl::Value, String> {
        self.convert_at(value, "")
    }

    fn convert_at(&self, value: hcl::Value, path: &str) -> Result<hcl::Value, String> {
        use hcl::Value as V;
        let at = |msg: String| {
            if path.is_empty() {
                msg
            } else {
                format!("{msg} at `{path}`")
            }
        };
        match (self, value) {
            (TypeConstraint::Any, v) => Ok(v),
            (_, V::Null) => Ok(V::Null),
            (TypeConstraint::String, V::String(s)) => Ok(V::String(s)),
            (TypeConstraint::String, V::Number(n)) => Ok(V::String(n.to_string())),
            (TypeConstraint::String, V::Bool(b)) => Ok(V::String(b.to_string())),
            (TypeConstraint::Number, V::Number(n)) => Ok(V::Number(n)),
            (TypeConstraint::Number, V::String(s)) => {
                let trimmed = s.trim();
                if let Ok(i) = trimmed.parse::<i64>() {
                    Ok(V::from(i))
                } else if let Some(n) = trimmed.parse::<f64>().ok().and_then(hcl::Number::from_f64)
                {
                    Ok(V::Number(n))
                } else {
                    Err(at("expected a number, got a string that is not one".into()))
                }
            }
            (TypeConstraint::Bool, V::Bool(b)) => Ok(V::Bool(b)),
            (TypeConstraint::Bool, V::String(s)) if s == "true" || s == "false" => {
                Ok(V::Bool(s == "true"))
            }
            (TypeConstraint::List(t) | TypeConstraint::Set(t), V::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| t.convert_at(v, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(V::Array),
            (TypeConstraint::Map(t), V::Object(map)) => map
                .into_iter()
                .map(|(k, v)| {
                    let p = format!("{path}.{k}");
                    t.convert_at(v, &p).map(|v| (k, v))
                })
                .collect::<Result<hcl::Map<_, _>, _>>()
                .map(V::Object),
            (TypeConstraint::Object(fields), V::Object(mut map)) => {
                let mut out = hcl::Map::new();
                for (name, t) in fields {
                    let v = map.shift_remove(name).unwrap_or(V::Null);
                    if v.is_null() && !matches!(t, TypeConstraint::Any) {
                        return Err(at(format!("attribute `{name}` is required")));
                    }
                    out.insert(name.clone(), t.convert_at(v, &format!("{path}.{name}"))?);
                }
                if let Some((extra, _)) = map.into_iter().next() {
                    return Err(at(format!("unexpected attribute `{extra}`")));
                }
                Ok(V::Object(out))
            }
            (TypeConstraint::Tuple(types), V::Array(items)) => {
                if types.len() != items.len() {
                    return Err(at(format!(
                        "expected a tuple of {} elements, got {}",
                        types.len(),
                        items.len()
                    )));
                }
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| t.convert_at(v, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(V::Array)
            }
            (t, v) => Err(at(format!("expected {}, got {}", t, kind_of(&v)))),
        }
    }

    /// Whether a raw string from the command line or the environment should be taken as is
    /// (string types) rather than parsed as an HCL expression.
    pub fn takes_raw_string(&self) -> bool {
        matches!(self, TypeConstraint::String)
    }
}

/// "a string", "a list", … for messages.
pub fn kind_of(value: &hcl::Value) -> &'static str {
    match value {
        hcl::Value::Null => "null",
        hcl::Value::Bool(_) => "a bool",
        hcl::Value::Number(_) => "a number",
        hcl::Value::String(_) => "a string",
        hcl::Value::Array(_) => "a list",
        hcl::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> TypeConstraint {
        TypeConstraint::parse(&hcl_edit::parser::parse_expr(src).unwrap()).unwrap()
    }

    #[test]
    fn parses_nested_types() {
        assert_eq!(parse("map(list(number))").to_string(), "map(list(number))");
        assert_eq!(
            parse("object({ a = string, b = bool })").to_string(),
            "object({a = string, b = bool})"
        );
    }

    #[test]
    fn converts_like_terraform() {
        assert_eq!(
            TypeConstraint::Number
                .convert(hcl::Value::from("5"))
                .unwrap(),
            hcl::Value::from(5)
        );
        assert!(
            TypeConstraint::Number
                .convert(hcl::Value::from("five"))
                .is_err()
        );
        assert_eq!(
            TypeConstraint::String
                .convert(hcl::Value::from(true))
                .unwrap(),
            hcl::Value::from("true")
        );
        let err = TypeConstraint::List(Box::new(TypeConstraint::Number))
            .convert(hcl::Value::from(vec!["1", "x"]))
            .unwrap_err();
        assert!(err.contains("[1]"), "{err}");
    }
}
