//! Validation and normalization of client-supplied resources (POST/PUT bodies, PATCH results).

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{ScimError, ScimResult};
use crate::path::{short, AttrPath};
use crate::schema::{AttrType, Attribute, Mutability, Registry, ResourceType, GROUP_SCHEMA};

/// Result of validating client input for a create/replace (and the final state after PATCH).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The resource in stored form: canonical attribute-name casing, core attributes top-level,
    /// extension attributes under their URN key, "schemas" recomputed; no id, meta, readOnly or
    /// writeOnly/returned:never attributes; Group members keep only value, display, type.
    pub resource: Value,
    /// Canonical paths of writeOnly / returned:never attributes the input supplied (not stored).
    pub secrets: Vec<String>,
}

/// Per-call normalization settings and the secrets seen so far.
pub(crate) struct Ctx {
    /// Keep writeOnly values in place (PATCH works on a draft normalized again at the end).
    pub keep_secrets: bool,
    /// Skip required-attribute checks (partial values merged by PATCH).
    pub partial: bool,
    pub secrets: Vec<String>,
}

fn type_error(path: &str, expected: &str) -> ScimError {
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
    pub(crate) fn new(keep_secrets: bool, partial: bool) -> Ctx {
        Ctx {
            keep_secrets,
            partial,
            secrets: Vec::new(),
        }
    }

    /// Whether a value given for `def` should be stored; records secrets.
    fn admit(&mut self, def: &Attribute, v: &Value, path: &str) -> bool {
        if def.mutability == Mutability::ReadOnly || is_absent(v) {
            return false;
        }
        if def.is_secret() && !self.keep_secrets {
            if !self.secrets.iter().any(|s| s == path) {
                self.secrets.push(path.to_string());
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
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            if item.is_array() {
                return Err(type_error(path, "an array of single values"));
            }
            let Some(n) = self.single(def, item, path, members)? else {
                continue;
            };
            let dup = if members {
                let val = n.get("value");
                out.iter().any(|e| e.get("value") == val)
            } else {
                out.contains(&n)
            };
            if !dup {
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

fn starts_with_urn(k: &str) -> bool {
    k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// Validate and normalize a client-supplied resource body (POST/PUT) for resource type rt.
pub fn normalize(
    reg: &Registry,
    rt: &ResourceType,
    input: &Value,
    resource_id: Option<&str>,
) -> ScimResult<Normalized> {
    let mut ctx = Ctx::new(false, false);
    let resource = normalize_with(reg, rt, input, resource_id, &mut ctx)?;
    Ok(Normalized {
        resource,
        secrets: ctx.secrets,
    })
}

/// Attribute values by schema (index 0: core + common, then extensions in `rt` order).
type Slots = Vec<Map<String, Value>>;

pub(crate) fn normalize_with(
    reg: &Registry,
    rt: &ResourceType,
    input: &Value,
    resource_id: Option<&str>,
    ctx: &mut Ctx,
) -> ScimResult<Value> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))?;
    let core = reg
        .schema(&rt.schema)
        .ok_or_else(|| ScimError::internal("resource type without schema"))?;
    let mut slots: Slots = vec![Map::new(); rt.extensions.len() + 1];
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if k.eq_ignore_ascii_case("id") {
            check_id(v, resource_id)?;
            continue;
        }
        let nested = rt
            .extension(k)
            .map(str::to_string)
            .or_else(|| k.eq_ignore_ascii_case(&core.id).then(|| core.id.clone()));
        if let Some(urn) = nested {
            match v {
                Value::Null => {}
                Value::Object(m) => {
                    for (k2, v2) in m {
                        let p = AttrPath {
                            urn: Some(urn.clone()),
                            name: k2.clone(),
                            sub: None,
                        };
                        put(reg, rt, ctx, &mut slots, &p, k2, v2)?;
                    }
                }
                _ => return Err(type_error(&urn, "an object")),
            }
            continue;
        }
        if starts_with_urn(k) {
            // A URN-qualified attribute, or an unknown schema's object (E13: ignored).
            match AttrPath::parse(k) {
                Ok(p)
                    if p.urn.as_deref().is_some_and(|u| {
                        u.eq_ignore_ascii_case(&core.id) || rt.extension(u).is_some()
                    }) =>
                {
                    put(reg, rt, ctx, &mut slots, &p, k, v)?
                }
                _ => {}
            }
            continue;
        }
        put(reg, rt, ctx, &mut slots, &AttrPath::simple(k), k, v)?;
    }
    assemble(reg, rt, core, slots, ctx)
}

fn check_id(v: &Value, resource_id: Option<&str>) -> ScimResult<()> {
    match (resource_id, v) {
        (None, _) | (_, Value::Null) => Ok(()),
        (Some(id), Value::String(s)) if s == id => Ok(()),
        _ => Err(ScimError::mutability(
            "attribute 'id' does not match the resource id",
        )),
    }
}

fn put(
    reg: &Registry,
    rt: &ResourceType,
    ctx: &mut Ctx,
    slots: &mut Slots,
    p: &AttrPath,
    key: &str,
    v: &Value,
) -> ScimResult<()> {
    let r = reg
        .resolve_parts(rt, p)
        .ok_or_else(|| ScimError::invalid_syntax(format!("unknown attribute '{}'", short(key))))?;
    let (def, value) = match r.sub {
        // `urn:…:manager.value` as a key: a partial complex value.
        Some(sub) => (
            r.attr,
            Value::Object(Map::from_iter([(sub.name.clone(), v.clone())])),
        ),
        None => (r.attr, v.clone()),
    };
    let path = if r.in_extension {
        format!("{}:{}", r.schema, def.name)
    } else {
        def.name.clone()
    };
    if !ctx.admit(def, &value, &path) {
        return Ok(());
    }
    let slot_index = if r.in_extension {
        rt.extensions
            .iter()
            .position(|e| e.schema == r.schema)
            .map_or(0, |i| i + 1)
    } else {
        0
    };
    let Some(n) = ctx.value(def, &value, &path, is_members(r.schema, def))? else {
        return Ok(());
    };
    let Some(slot) = slots.get_mut(slot_index) else {
        return Ok(());
    };
    match (slot.get_mut(&def.name), n) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, n) => {
            slot.insert(def.name.clone(), n);
        }
    }
    Ok(())
}

fn required_missing(
    attrs: &[Attribute],
    slot: &Map<String, Value>,
    prefix: &str,
) -> ScimResult<()> {
    for a in attrs
        .iter()
        .filter(|a| a.required && a.mutability != Mutability::ReadOnly)
    {
        let present = match slot.get(&a.name) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(v) => !is_absent(v),
            None => false,
        };
        if !present {
            return Err(ScimError::invalid_value(format!(
                "required attribute '{prefix}{}' is missing",
                a.name
            )));
        }
    }
    Ok(())
}

fn ordered(attrs: &[Attribute], slot: &mut Map<String, Value>, out: &mut Map<String, Value>) {
    for a in attrs {
        if let Some(v) = slot.remove(&a.name) {
            out.insert(a.name.clone(), v);
        }
    }
}

fn assemble(
    reg: &Registry,
    rt: &ResourceType,
    core: &crate::schema::Schema,
    mut slots: Slots,
    ctx: &Ctx,
) -> ScimResult<Value> {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(core.id.clone())];
    let mut body = Map::new();
    let mut core_slot = slots.first_mut().map(std::mem::take).unwrap_or_default();
    if !ctx.partial {
        required_missing(&core.attributes, &core_slot, "")?;
    }
    ordered(reg.common_attributes(), &mut core_slot, &mut body);
    ordered(&core.attributes, &mut core_slot, &mut body);
    for (ext, slot) in rt.extensions.iter().zip(slots.iter_mut().skip(1)) {
        let Some(schema) = reg.schema(&ext.schema) else {
            continue;
        };
        if slot.is_empty() {
            if ext.required && !ctx.partial {
                return Err(ScimError::invalid_value(format!(
                    "required extension '{}' is missing",
                    ext.schema
                )));
            }
            continue;
        }
        if !ctx.partial {
            required_missing(&schema.attributes, slot, &format!("{}:", ext.schema))?;
        }
        let mut m = Map::new();
        ordered(&schema.attributes, slot, &mut m);
        schemas.push(Value::String(ext.schema.clone()));
        body.insert(ext.schema.clone(), Value::Object(m));
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(body);
    Ok(Value::Object(out))
}

#[cfg(test)]
#[path = "resource_tests.rs"]
mod tests;
