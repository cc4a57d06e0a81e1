//! Validation and normalization of client-supplied resources (POST/PUT bodies, PATCH results).

mod stored;
pub(crate) mod value;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::path::{short, AttrPath};
use crate::schema::{Attribute, Mutability, Registry, ResourceType};

pub use stored::{has_unique, keep_immutable, unique_values, UniqueValue};
use value::type_error;
pub use value::Secret;
pub(crate) use value::{fix_primary, is_absent, is_members, Ctx};

/// Result of validating client input for a create/replace (and the final state after PATCH).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The resource in stored form: canonical attribute-name casing, core attributes top-level,
    /// extension attributes under their URN key, "schemas" recomputed; no id, meta, readOnly or
    /// writeOnly/returned:never attributes; Group members keep only value, display, type.
    pub resource: Value,
    /// The writeOnly / returned:never attributes the input supplied (not stored).
    pub secrets: Vec<Secret>,
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
    let mut ctx = Ctx::new(reg, false, false);
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
                    // A client may echo `schemas` inside an extension object; not an attribute.
                    for (k2, v2) in m
                        .iter()
                        .filter(|(k2, _)| !k2.eq_ignore_ascii_case("schemas"))
                    {
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
    // A secret is never stored, but it is still checked: a client must not be told a
    // malformed password was accepted.
    if def.is_secret()
        && def.attr_type == crate::AttrType::String
        && !def.multi_valued
        && !(value.is_string() || value.is_null())
    {
        return Err(ScimError::invalid_value(format!(
            "attribute '{path}' must be a string"
        )));
    }
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
        // `userName` and `urn:…:User:userName` in one body: which one is meant?
        (Some(_), _) => {
            return Err(ScimError::invalid_syntax(format!(
                "the attribute '{path}' is given twice"
            )))
        }
        (None, n) => {
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
    if core.id == crate::schema::USER_SCHEMA {
        if let Some(Value::String(name)) = core_slot.get("userName") {
            crate::username::check(name)?;
        }
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
mod tests;
