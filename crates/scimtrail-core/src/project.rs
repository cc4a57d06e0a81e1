//! `attributes` / `excludedAttributes` projection (RFC 7644 §3.4.2.5) combined with the RFC 7643
//! "returned" characteristic.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use crate::schema::{Attribute, Registry, ResourceType, Returned};

/// Most paths accepted in one `attributes` / `excludedAttributes` list.
pub const MAX_ATTR_LIST: usize = 200;

/// Parse the comma-separated `attributes` / `excludedAttributes` query value into paths
/// (invalidPath on syntax error). Empty string → empty vec.
pub fn parse_attr_list(s: &str) -> ScimResult<Vec<AttrPath>> {
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() > MAX_ATTR_LIST {
        return Err(ScimError::invalid_path(format!(
            "at most {MAX_ATTR_LIST} attribute paths"
        )));
    }
    parts.into_iter().map(AttrPath::parse).collect()
}

/// A resolved selection: schema URN (lowercase), attribute name (lowercase), sub (lowercase).
struct Sel {
    schema: String,
    attr: Option<String>,
    sub: Option<String>,
}

fn resolve_list(reg: &Registry, rt: &ResourceType, paths: &[AttrPath]) -> Vec<Sel> {
    paths
        .iter()
        .filter_map(|p| {
            if let Some(ext) = p.as_urn().and_then(|u| rt.extension(&u)) {
                return Some(Sel {
                    schema: ext.to_ascii_lowercase(),
                    attr: None,
                    sub: None,
                });
            }
            let r = reg.resolve_parts(rt, p)?;
            Some(Sel {
                schema: r.schema.to_ascii_lowercase(),
                attr: Some(r.attr.name.to_ascii_lowercase()),
                sub: r.sub.map(|s| s.name.to_ascii_lowercase()),
            })
        })
        .collect()
}

/// How a list names attribute `attr` of `schema`: the whole attribute, and/or some sub-attributes.
fn named(list: &[Sel], schema: &str, attr: &str) -> (bool, Vec<String>) {
    let mut whole = false;
    let mut subs = Vec::new();
    for s in list.iter().filter(|s| s.schema == schema) {
        match (&s.attr, &s.sub) {
            (None, _) => whole = true,
            (Some(a), None) if a == attr => whole = true,
            (Some(a), Some(sub)) if a == attr => subs.push(sub.clone()),
            _ => {}
        }
    }
    (whole, subs)
}

/// Keep the sub-attributes of a complex value (object or array of objects) that `keep` accepts.
fn filter_subs(def: &Attribute, v: &Value, keep: &dyn Fn(&Attribute) -> bool) -> Option<Value> {
    let one = |e: &Value| -> Option<Value> {
        let Value::Object(o) = e else {
            return Some(e.clone());
        };
        let m: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| def.sub_attribute(k).is_none_or(keep))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!m.is_empty()).then_some(Value::Object(m))
    };
    match v {
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(one).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        v if def.sub_attributes.is_empty() => Some(v.clone()),
        v => one(v),
    }
}

struct Projector<'a> {
    /// `attributes` was given (even if none of its names is known): return only those.
    only: bool,
    attributes: Vec<Sel>,
    excluded: Vec<Sel>,
    /// What the client's write specified: `returned: request` attributes among them are
    /// returned by default (RFC 7643 §7).
    specified: Vec<Sel>,
    reg: &'a Registry,
}

impl Projector<'_> {
    /// The projected value of attribute `def` of `schema`, or None to drop it.
    fn attribute(&self, schema: &str, def: &Attribute, v: &Value) -> Option<Value> {
        let lname = def.name.to_ascii_lowercase();
        match def.returned {
            Returned::Never => return None,
            Returned::Always => return filter_subs(def, v, &|s| s.returned != Returned::Never),
            _ => {}
        }
        let base =
            |s: &Attribute| s.returned == Returned::Always || s.returned == Returned::Default;
        if self.only {
            let (whole, subs) = named(&self.attributes, schema, &lname);
            if whole {
                filter_subs(def, v, &|s| {
                    base(s) || subs.contains(&s.name.to_ascii_lowercase())
                })
            } else if !subs.is_empty() {
                filter_subs(def, v, &|s| {
                    s.returned == Returned::Always || subs.contains(&s.name.to_ascii_lowercase())
                })
            } else {
                None
            }
        } else {
            let (whole, subs) = named(&self.excluded, schema, &lname);
            let (given, given_subs) = named(&self.specified, schema, &lname);
            let asked = given || !given_subs.is_empty();
            if whole || (def.returned == Returned::Request && !asked) {
                return None;
            }
            filter_subs(def, v, &|s| {
                let n = s.name.to_ascii_lowercase();
                s.returned == Returned::Always
                    || (base(s) && !subs.contains(&n))
                    || (s.returned == Returned::Request
                        && (given || given_subs.contains(&n))
                        && !subs.contains(&n))
            })
        }
    }

    fn extension(&self, urn: &str, v: &Value) -> Option<Value> {
        let Value::Object(o) = v else { return None };
        let lurn = urn.to_ascii_lowercase();
        let m: Map<String, Value> = o
            .iter()
            .filter_map(|(k, v)| {
                let def = self.reg.schema_attribute(urn, k)?;
                Some((k.clone(), self.attribute(&lurn, def, v)?))
            })
            .collect();
        (!m.is_empty()).then_some(Value::Object(m))
    }
}

/// Apply RFC 7644 §3.4.2.5 projection + RFC 7643 "returned" to a full resource representation.
pub fn project(
    reg: &Registry,
    rt: &ResourceType,
    resource: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    project_write(reg, rt, resource, attributes, excluded, &[])
}

/// [`project`] for the answer to a POST, PUT or PATCH: the `returned: request` attributes
/// the write `specified` are returned too, as RFC 7643 §7 says ("returned in response to any
/// PUT, POST, or PATCH operations if the attribute was specified by the client").
pub fn project_write(
    reg: &Registry,
    rt: &ResourceType,
    resource: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
    specified: &[AttrPath],
) -> Value {
    let Value::Object(obj) = resource else {
        return resource.clone();
    };
    let p = Projector {
        only: !attributes.is_empty(),
        attributes: resolve_list(reg, rt, attributes),
        excluded: resolve_list(reg, rt, excluded),
        specified: resolve_list(reg, rt, specified),
        reg,
    };
    let core = rt.schema.to_ascii_lowercase();
    let mut out = Map::new();
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            out.insert(k.clone(), v.clone());
            continue;
        }
        if let Some(ext) = rt.extension(k) {
            if let Some(pv) = p.extension(ext, v) {
                out.insert(k.clone(), pv);
            }
            continue;
        }
        let def = reg
            .common_attributes()
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(k))
            .or_else(|| reg.schema_attribute(&rt.schema, k));
        match def {
            Some(def) => {
                if let Some(pv) = p.attribute(&core, def, v) {
                    out.insert(k.clone(), pv);
                }
            }
            // Not in any schema (server-added): only in default mode.
            None if !p.only => {
                out.insert(k.clone(), v.clone());
            }
            None => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
