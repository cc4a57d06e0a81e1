//! Rules that compare a new stored form with the one it replaces, or with every other
//! resource: `mutability: immutable` and `uniqueness` (RFC 7643 §7, RFC 7644 §3.5.1).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::schema::{AttrType, Attribute, Mutability, Registry, ResourceType, Uniqueness};

/// Each schema of `rt` with where its values sit in the stored form: `None` for the core
/// schema (top level), the URN key for an extension.
fn containers<'a>(
    reg: &'a Registry,
    rt: &'a ResourceType,
) -> impl Iterator<Item = (Option<&'a str>, &'a [Attribute])> {
    let core = reg
        .schema(&rt.schema)
        .map(|s| (None, s.attributes.as_slice()));
    let exts = rt.extensions.iter().filter_map(|e| {
        reg.schema(&e.schema)
            .map(|s| (Some(e.schema.as_str()), s.attributes.as_slice()))
    });
    core.into_iter().chain(exts)
}

fn object<'a>(data: &'a Value, key: Option<&str>) -> Option<&'a Map<String, Value>> {
    match key {
        None => data.as_object(),
        Some(k) => data.get(k)?.as_object(),
    }
}

fn label(key: Option<&str>, name: &str) -> String {
    match key {
        Some(urn) => format!("{urn}:{name}"),
        None => name.to_string(),
    }
}

/// Hold `new` (the stored form a PUT or PATCH computed from `old`) to the immutable
/// attributes: a value once set never changes and is never removed. A PUT that leaves one out
/// keeps it (it is not asserted, RFC 7644 §3.5.1), a PATCH that removes or changes one is
/// refused with `mutability`. Immutable sub-attributes of a single-valued complex attribute
/// are held the same way; those of multi-valued ones (Group `members.value`) say that one
/// element's value never changes, which holds as elements are added or removed whole.
pub fn keep_immutable(
    reg: &Registry,
    rt: &ResourceType,
    old: &Value,
    new: &mut Value,
    replace: bool,
) -> ScimResult<()> {
    let mut carried: Vec<(Option<String>, String, Option<String>, Value)> = Vec::new();
    for (key, attrs) in containers(reg, rt) {
        let Some(before) = object(old, key) else {
            continue;
        };
        let after = object(new, key);
        for a in attrs {
            let Some(was) = before.get(&a.name) else {
                continue;
            };
            let now = after.and_then(|m| m.get(&a.name));
            if a.mutability == Mutability::Immutable {
                match now {
                    Some(v) if v == was => {}
                    None if replace => {
                        carried.push((key.map(str::to_string), a.name.clone(), None, was.clone()))
                    }
                    _ => {
                        return Err(ScimError::mutability(format!(
                            "attribute '{}' is immutable: once set it cannot change",
                            label(key, &a.name)
                        )))
                    }
                }
                continue;
            }
            if a.attr_type != AttrType::Complex || a.multi_valued {
                continue;
            }
            for sub in a
                .sub_attributes
                .iter()
                .filter(|s| s.mutability == Mutability::Immutable)
            {
                let Some(sub_was) = was.get(&sub.name) else {
                    continue;
                };
                match now.and_then(|n| n.get(&sub.name)) {
                    Some(v) if v == sub_was => {}
                    None if replace => carried.push((
                        key.map(str::to_string),
                        a.name.clone(),
                        Some(sub.name.clone()),
                        sub_was.clone(),
                    )),
                    _ => {
                        return Err(ScimError::mutability(format!(
                            "attribute '{}.{}' is immutable: once set it cannot change",
                            label(key, &a.name),
                            sub.name
                        )))
                    }
                }
            }
        }
    }
    if carried.is_empty() {
        return Ok(());
    }
    for (key, name, sub, v) in carried {
        put_back(new, key.as_deref(), &name, sub.as_deref(), v);
    }
    // A stored form is valid input: normalizing it again puts the carried values in schema
    // order and recomputes `schemas`.
    *new = super::normalize(reg, rt, new, None)?.resource;
    Ok(())
}

/// Put a carried immutable value back into a stored form (normalized again by the caller).
fn put_back(data: &mut Value, key: Option<&str>, name: &str, sub: Option<&str>, v: Value) {
    let Some(root) = data.as_object_mut() else {
        return;
    };
    let target = match key {
        Some(urn) => root
            .entry(urn.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut(),
        None => Some(root),
    };
    let Some(target) = target else { return };
    match sub {
        None => {
            target.insert(name.to_string(), v);
        }
        Some(s) => {
            if let Some(o) = target
                .entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
            {
                o.insert(s.to_string(), v);
            }
        }
    }
}

/// A value that must be unique, as the store indexes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueValue {
    /// The resource type's name for `uniqueness: server`, `None` for `global` (every type).
    pub scope: Option<String>,
    /// The attribute: its name, URN-qualified in an extension.
    pub attribute: String,
    /// What is compared: the value as text, lowercased unless the attribute is caseExact.
    pub key: String,
}

/// The values of `data` (a stored form of `rt`) that the schema says must be unique.
/// Read-only attributes (`id`) are left out: the server assigns them.
pub fn unique_values(reg: &Registry, rt: &ResourceType, data: &Value) -> Vec<UniqueValue> {
    let mut out = Vec::new();
    for (key, attrs) in containers(reg, rt) {
        let Some(m) = object(data, key) else {
            continue;
        };
        for a in attrs
            .iter()
            .filter(|a| a.uniqueness != Uniqueness::None && a.mutability != Mutability::ReadOnly)
        {
            let text = match (a.attr_type, m.get(&a.name)) {
                (_, Some(Value::Null) | None) => continue,
                // One instant, however it is written (`…+02:00`, `.000Z`), is one value.
                (AttrType::DateTime, Some(Value::String(s))) => {
                    match time::OffsetDateTime::parse(
                        s,
                        &time::format_description::well_known::Rfc3339,
                    ) {
                        Ok(t) => t.unix_timestamp_nanos().to_string(),
                        Err(_) => s.clone(),
                    }
                }
                (_, Some(Value::String(s))) if a.case_exact => s.clone(),
                (_, Some(Value::String(s))) => s.to_lowercase(),
                // One number, however it is written (`7`, `7.0`), is one value.
                (_, Some(Value::Number(n))) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => i.to_string(),
                    (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        (f as i64).to_string()
                    }
                    (None, Some(f)) => f.to_string(),
                    _ => n.to_string(),
                },
                (_, Some(v @ Value::Bool(_))) => v.to_string(),
                (_, Some(_)) => continue,
            };
            out.push(UniqueValue {
                scope: (a.uniqueness == Uniqueness::Server).then(|| rt.name.clone()),
                attribute: label(key, &a.name),
                key: text,
            });
        }
    }
    out
}

/// Whether any attribute of `rt` must be unique (other than read-only ones).
pub fn has_unique(reg: &Registry, rt: &ResourceType) -> bool {
    containers(reg, rt).any(|(_, attrs)| {
        attrs
            .iter()
            .any(|a| a.uniqueness != Uniqueness::None && a.mutability != Mutability::ReadOnly)
    })
}
