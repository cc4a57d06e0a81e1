//! Normalization of one attribute value: type checks and coercions, complex values,
//! multi-valued handling (wrapping, primary, duplicates) and secret detection.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{ScimError, ScimResult};
use crate::path::short;
use crate::schema::{AttrType, Attribute, Mutability, GROUP_SCHEMA};

/// A secret (writeOnly or `returned: never`) value the input supplied. It is never stored: the
/// caller may only derive a keyed mask from it for the audit record ("did the password
/// change?"), and its `Debug` never shows it.
#[derive(Clone, PartialEq)]
pub struct Secret {
    /// The canonical attribute path (`password`).
    pub path: String,
    value: Value,
}

impl Secret {
    /// The value as supplied. Never store or log it.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} = [REDACTED])", self.path)
    }
}

/// Per-call normalization settings and the secrets seen so far.
pub(crate) struct Ctx {
    /// Keep writeOnly values in place (PATCH works on a draft normalized again at the end).
    pub keep_secrets: bool,
    /// Skip required-attribute checks (partial values merged by PATCH).
    pub partial: bool,
    pub secrets: Vec<Secret>,
    /// The most values a multi-valued attribute (other than Group members) may hold.
    pub max_values: usize,
}

pub(super) fn type_error(path: &str, expected: &str) -> ScimError {
    ScimError::invalid_value(format!("attribute '{path}' must be {expected}"))
}

/// `null`, `[]` and `{}` mean "absent".
pub(crate) fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl Ctx {
    pub(crate) fn new(reg: &crate::Registry, keep_secrets: bool, partial: bool) -> Ctx {
        Ctx {
            keep_secrets,
            partial,
            secrets: Vec::new(),
            max_values: reg.max_values(),
        }
    }

    /// Whether a value given for `def` should be stored; records secrets.
    pub(crate) fn admit(&mut self, def: &Attribute, v: &Value, path: &str) -> bool {
        if def.mutability == Mutability::ReadOnly || is_absent(v) {
            return false;
        }
        if def.is_secret() && !self.keep_secrets {
            if !self.secrets.iter().any(|s| s.path == path) {
                self.secrets.push(Secret {
                    path: path.to_string(),
                    value: v.clone(),
                });
            }
            return false;
        }
        true
    }

    /// Normalize a value for attribute `def` (single or multi-valued). `None` = absent.
    pub(crate) fn value(
        &mut self,
        def: &Attribute,
        v: &Value,
        path: &str,
        members: bool,
    ) -> ScimResult<Option<Value>> {
        if !def.multi_valued {
            if v.is_array() {
                return Err(type_error(path, "single-valued"));
            }
            return self.single(def, v, path, members);
        }
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        if !members && items.len() > self.max_values {
            return Err(ScimError::invalid_value(format!(
                "attribute '{path}' has {} values; at most {} are accepted",
                items.len(),
                self.max_values
            )));
        }
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        // De-duplicated in a set, never pairwise: Group members can number 100k, and a body
        // of 44k emails must not cost quadratic time before the cap above even applies.
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for item in items {
            if item.is_array() {
                return Err(type_error(path, "an array of single values"));
            }
            let Some(n) = self.single(def, item, path, members)? else {
                continue;
            };
            let key = if members {
                member_key(&n)
            } else {
                value_key(&n)
            };
            if seen.insert(key) {
                out.push(n);
            }
        }
        if def.attr_type == AttrType::Complex {
            fix_primary(&mut out, None);
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    /// Normalize one (non-array) value.
    pub(crate) fn single(
        &mut self,
        def: &Attribute,
        v: &Value,
        path: &str,
        members: bool,
    ) -> ScimResult<Option<Value>> {
        if v.is_null() {
            return Ok(None);
        }
        let out = match def.attr_type {
            AttrType::String if def.strict_canonical && !def.canonical_values.is_empty() => match v
            {
                Value::String(s) => Value::String(canonical(def, s, path)?),
                _ => return Err(type_error(path, "a string")),
            },
            AttrType::String | AttrType::Reference | AttrType::Binary => match v {
                Value::String(_) => v.clone(),
                _ => return Err(type_error(path, "a string")),
            },
            AttrType::Boolean => match v {
                Value::Bool(_) => v.clone(),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
                _ => return Err(type_error(path, "a boolean")),
            },
            AttrType::Integer => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
                _ => return Err(type_error(path, "an integer")),
            },
            AttrType::Decimal => match v {
                Value::Number(_) => v.clone(),
                _ => return Err(type_error(path, "a number")),
            },
            AttrType::DateTime => match v {
                Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => v.clone(),
                _ => return Err(type_error(path, "an RFC 3339 dateTime string")),
            },
            AttrType::Complex => return self.complex(def, v, path, members),
        };
        Ok(Some(out))
    }

    fn complex(
        &mut self,
        def: &Attribute,
        v: &Value,
        path: &str,
        members: bool,
    ) -> ScimResult<Option<Value>> {
        let wrapped;
        let obj = match v {
            Value::Object(o) => o,
            Value::String(_) if def.sub_attribute("value").is_some() => {
                // E11: `"manager": "id"` means `{"value": "id"}`.
                wrapped = Map::from_iter([("value".to_string(), v.clone())]);
                &wrapped
            }
            _ => return Err(type_error(path, "a complex object")),
        };
        let mut found: Vec<(&Attribute, Value)> = Vec::new();
        for (k, sv) in obj {
            let sub = def.sub_attribute(k).ok_or_else(|| {
                ScimError::invalid_syntax(format!("unknown attribute '{path}.{}'", short(k)))
            })?;
            let sub_path = format!("{path}.{}", sub.name);
            if (members && sub.name == "$ref") || !self.admit(sub, sv, &sub_path) {
                continue;
            }
            if let Some(n) = self.value(sub, sv, &sub_path, false)? {
                found.retain(|(a, _)| a.name != sub.name);
                found.push((sub, n));
            }
        }
        let mut out = Map::new();
        for sub in &def.sub_attributes {
            if let Some((_, n)) = found.iter().find(|(a, _)| a.name == sub.name) {
                out.insert(sub.name.clone(), n.clone());
            } else if sub.required && !self.partial && sub.mutability != Mutability::ReadOnly {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{path}.{}' is required",
                    sub.name
                )));
            }
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }
}

/// The canonical spelling of `s` among the values `def` allows (compared as `caseExact` says).
fn canonical(def: &Attribute, s: &str, path: &str) -> ScimResult<String> {
    let found = if def.case_exact {
        def.canonical_values.iter().find(|c| *c == s)
    } else {
        let lower = s.to_lowercase();
        def.canonical_values
            .iter()
            .find(|c| c.to_lowercase() == lower)
    };
    match found {
        Some(c) => Ok(c.clone()),
        None => Err(ScimError::invalid_value(format!(
            "attribute '{path}' must be one of: {}",
            def.canonical_values.join(", ")
        ))),
    }
}

/// At most one element may be primary: keep `keep` (or else the first primary) and set the
/// others' `primary` to false.
pub(crate) fn fix_primary(items: &mut [Value], keep: Option<usize>) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let keep = keep
        .filter(|&i| items.get(i).is_some_and(is_primary))
        .or_else(|| items.iter().position(is_primary));
    for (i, item) in items.iter_mut().enumerate() {
        if Some(i) != keep && is_primary(item) {
            if let Some(o) = item.as_object_mut() {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Whether `def` is the Group `members` attribute (whose `$ref` the server computes).
pub(crate) fn is_members(schema: &str, def: &Attribute) -> bool {
    schema == GROUP_SCHEMA && def.name == "members"
}

/// The identity of a normalized value for de-duplication: its JSON text (normalized complex
/// values list their sub-attributes in schema order, so equal values print alike).
pub(crate) fn value_key(v: &Value) -> String {
    v.to_string()
}

/// The identity of a Group member: its `value`.
pub(crate) fn member_key(m: &Value) -> String {
    match m.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}
