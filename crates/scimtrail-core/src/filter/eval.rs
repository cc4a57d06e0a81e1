//! Filter evaluation against JSON resources, typed by the schema registry.

use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{CompValue, CompareOp, Filter};
use crate::path::AttrPath;
use crate::schema::{AttrType, Attribute, Registry, ResourceType};

/// Case-insensitive object member lookup (exact match first).
pub(crate) fn get_ci<'v>(obj: &'v Value, key: &str) -> Option<&'v Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Where paths are resolved: a whole resource, or one element of a multi-valued complex attribute.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a Registry, &'a ResourceType),
    Element(&'a Attribute),
}

/// The values a path designates: the attribute's elements, and the leaf values compared.
struct Target<'v, 'a> {
    def: &'a Attribute,
    elements: Vec<&'v Value>,
    leaves: Vec<&'v Value>,
    /// The core `userName`: compared by its uniqueness key, as the store's index is.
    user_name: bool,
}

fn flatten<'v>(v: Option<&'v Value>, out: &mut Vec<&'v Value>) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => out.extend(items.iter().filter(|i| !i.is_null())),
        Some(v) => out.push(v),
    }
}

fn lookup<'v, 'a>(scope: Scope<'a>, obj: &'v Value, p: &AttrPath) -> Option<Target<'v, 'a>> {
    let mut user_name = false;
    let (top, sub, container) = match scope {
        Scope::Resource(reg, rt) => {
            let r = reg.resolve_parts(rt, p)?;
            let container = if r.in_extension {
                get_ci(obj, r.schema)
            } else {
                Some(obj)
            };
            user_name = !r.in_extension && r.sub.is_none() && r.attr.name == "userName";
            (r.attr, r.sub, container)
        }
        Scope::Element(parent) => {
            if p.urn.is_some() || p.sub.is_some() {
                return None;
            }
            (parent.sub_attribute(&p.name)?, None, Some(obj))
        }
    };
    let mut elements = Vec::new();
    flatten(container.and_then(|c| get_ci(c, &top.name)), &mut elements);
    let mut leaves = Vec::new();
    let def = match sub.or_else(|| match top.attr_type {
        AttrType::Complex => top.sub_attribute("value"),
        _ => None,
    }) {
        Some(leaf) => {
            for e in &elements {
                flatten(get_ci(e, &leaf.name), &mut leaves);
            }
            leaf
        }
        None => {
            leaves.clone_from(&elements);
            top
        }
    };
    if sub.is_some() {
        // `emails.value pr` is about the sub-attribute, not the element.
        elements.clone_from(&leaves);
    }
    Some(Target {
        def,
        elements,
        leaves,
        user_name,
    })
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        _ => true,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn ordered(op: &CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_strings(op: &CompareOp, a: &str, b: &str, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (a.to_string(), b.to_string())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        _ => ordered(op, a.cmp(&b)),
    }
}

fn compare_numbers(op: &CompareOp, a: &serde_json::Number, b: &serde_json::Number) -> bool {
    let ord = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
    };
    ord.is_some_and(|o| ordered(op, o))
}

fn compare_leaf(def: &Attribute, leaf: &Value, op: &CompareOp, cv: &CompValue) -> bool {
    match def.attr_type {
        AttrType::Complex => false,
        AttrType::Boolean => match (as_bool(leaf), cv) {
            (Some(a), CompValue::Bool(b)) => *op == CompareOp::Eq && a == *b,
            _ => false,
        },
        AttrType::Integer | AttrType::Decimal => match (leaf, cv) {
            (Value::Number(a), CompValue::Number(b)) => compare_numbers(op, a, b),
            _ => false,
        },
        AttrType::DateTime => match (leaf, cv) {
            (Value::String(a), CompValue::String(b)) => {
                let parsed = OffsetDateTime::parse(a, &Rfc3339)
                    .ok()
                    .zip(OffsetDateTime::parse(b, &Rfc3339).ok());
                match parsed {
                    Some((x, y))
                        if !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) =>
                    {
                        ordered(op, x.cmp(&y))
                    }
                    _ => compare_strings(op, a, b, true),
                }
            }
            _ => false,
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let a = match leaf {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return false,
            };
            let b = match cv {
                CompValue::String(s) => s.clone(),
                CompValue::Number(n) => n.to_string(),
                CompValue::Bool(b) => b.to_string(),
                CompValue::Null => return false,
            };
            compare_strings(
                op,
                &a,
                &b,
                def.case_exact || def.attr_type == AttrType::Binary,
            )
        }
    }
}

fn eval(f: &Filter, scope: Scope<'_>, obj: &Value) -> bool {
    match f {
        Filter::And(a, b) => eval(a, scope, obj) && eval(b, scope, obj),
        Filter::Or(a, b) => eval(a, scope, obj) || eval(b, scope, obj),
        Filter::Not(x) => !eval(x, scope, obj),
        Filter::Present(p) => {
            lookup(scope, obj, p).is_some_and(|t| t.elements.iter().any(|v| is_present(v)))
        }
        Filter::Compare(p, op, cv) => {
            let Some(t) = lookup(scope, obj, p) else {
                return false;
            };
            let present = || t.leaves.iter().any(|v| is_present(v));
            match (op, cv) {
                (CompareOp::Eq, CompValue::Null) => !present(),
                (CompareOp::Ne, CompValue::Null) => present(),
                (_, CompValue::Null) => false,
                (_, CompValue::String(b)) if t.user_name => {
                    // A userName compares by its uniqueness key (PRECIS case mapping, spaces
                    // folded), as uniqueness and the store's index do, whatever the filter.
                    let b = crate::username::key(b);
                    let hit = |op: &CompareOp| {
                        t.leaves.iter().any(|l| {
                            l.as_str().is_some_and(|a| {
                                compare_strings(op, &crate::username::key(a), &b, true)
                            })
                        })
                    };
                    match op {
                        CompareOp::Ne => !hit(&CompareOp::Eq),
                        op => hit(op),
                    }
                }
                (CompareOp::Ne, _) => !t
                    .leaves
                    .iter()
                    .any(|l| compare_leaf(t.def, l, &CompareOp::Eq, cv)),
                _ => t.leaves.iter().any(|l| compare_leaf(t.def, l, op, cv)),
            }
        }
        Filter::ValuePath(p, inner) => {
            if p.sub.is_some() || matches!(scope, Scope::Element(_)) {
                return false;
            }
            let Some(t) = lookup(scope, obj, p) else {
                return false;
            };
            let top = match scope {
                Scope::Resource(reg, rt) => reg.resolve_parts(rt, p).map(|r| r.attr),
                Scope::Element(_) => None,
            };
            let Some(top) = top.filter(|a| a.attr_type == AttrType::Complex) else {
                return false;
            };
            t.elements
                .iter()
                .any(|e| eval(inner, Scope::Element(top), e))
        }
    }
}

impl Filter {
    /// Evaluate against a full resource representation as returned to clients (`id`, `meta`,
    /// core attributes top-level, extension attributes under their URN key). Unknown attributes
    /// never match. Multi-valued attributes match if any element matches; `ne` is the negation
    /// of `eq` (so it also matches an absent attribute).
    pub fn matches(&self, reg: &Registry, rt: &ResourceType, resource: &Value) -> bool {
        eval(self, Scope::Resource(reg, rt), resource)
    }

    /// Evaluate with paths relative to one element of the complex attribute `parent` (the inside
    /// of a valuePath such as `emails[type eq "work"]`).
    pub fn matches_element(&self, parent: &Attribute, element: &Value) -> bool {
        eval(self, Scope::Element(parent), element)
    }
}

/// What a resource sorts by (RFC 7644 §3.4.2.3): the value of the `sortBy` attribute, typed by
/// its schema. Strings that are not caseExact compare without case.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Bool(bool),
    Number(f64),
    Time(OffsetDateTime),
    Text(String),
}

impl SortKey {
    /// A total order: values of one type by value, values of different types (data the schema
    /// did not validate) by type.
    pub fn total_cmp(&self, other: &SortKey) -> Ordering {
        use SortKey::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Number(a), Number(b)) => a.total_cmp(b),
            (Time(a), Time(b)) => a.cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Number(_) => 1,
            SortKey::Time(_) => 2,
            SortKey::Text(_) => 3,
        }
    }

    /// Order two optional keys as SCIM lists do: a resource without a value sorts after every
    /// resource with one when ascending, before them when descending (a missing value is the
    /// greatest).
    pub fn order(a: Option<&SortKey>, b: Option<&SortKey>, descending: bool) -> Ordering {
        let ord = match (a, b) {
            (Some(a), Some(b)) => a.total_cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if descending {
            ord.reverse()
        } else {
            ord
        }
    }
}

/// The key a resource sorts by for `sortBy` = `p`: of a multi-valued attribute, the primary
/// value, or else the first (RFC 7644 §3.4.2.3); of a complex attribute without a
/// sub-attribute, its `value`. `None` when the resource has no such value, or the schema does
/// not define the attribute.
pub fn sort_key(
    reg: &Registry,
    rt: &ResourceType,
    resource: &Value,
    p: &AttrPath,
) -> Option<SortKey> {
    let r = reg.resolve_parts(rt, p)?;
    let container = if r.in_extension {
        get_ci(resource, r.schema)?
    } else {
        resource
    };
    let top = get_ci(container, &r.attr.name)?;
    let element = match top {
        Value::Array(items) => {
            let primary = items
                .iter()
                .find(|e| get_ci(e, "primary").and_then(as_bool) == Some(true));
            primary.or_else(|| items.iter().find(|e| !e.is_null()))?
        }
        v => v,
    };
    let leaf_def = r.sub.or_else(|| match r.attr.attr_type {
        AttrType::Complex => r.attr.sub_attribute("value"),
        _ => None,
    });
    let (def, leaf) = match leaf_def {
        Some(d) => (d, get_ci(element, &d.name)?),
        None => (r.attr, element),
    };
    let leaf = match leaf {
        Value::Array(items) => items.iter().find(|v| !v.is_null())?,
        v => v,
    };
    match (&def.attr_type, leaf) {
        (_, Value::Null) => None,
        (AttrType::Boolean, v) => as_bool(v).map(SortKey::Bool),
        (AttrType::Integer | AttrType::Decimal, Value::Number(n)) => {
            n.as_f64().map(SortKey::Number)
        }
        (AttrType::DateTime, Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(SortKey::Time)
            .or_else(|| Some(SortKey::Text(s.clone()))),
        (AttrType::Complex, _) => None,
        // userName sorts by the key its uniqueness uses (and the store's column holds).
        (_, Value::String(s)) if !r.in_extension && r.attr.name == "userName" => {
            Some(SortKey::Text(crate::username::key(s)))
        }
        (_, Value::String(s)) if def.case_exact => Some(SortKey::Text(s.clone())),
        (_, Value::String(s)) => Some(SortKey::Text(s.to_lowercase())),
        (_, Value::Bool(b)) => Some(SortKey::Bool(*b)),
        (_, Value::Number(n)) => n.as_f64().map(SortKey::Number),
        _ => None,
    }
}
