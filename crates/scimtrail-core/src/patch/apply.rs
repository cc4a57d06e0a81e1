//! The PATCH engine: applies operations to a draft copy of the stored resource, then normalizes
//! the draft (so the result obeys exactly the same rules as a PUT body). Any error leaves the
//! caller's resource untouched.

use serde_json::{Map, Value};

use super::{PatchOp, PatchOperation};
use crate::error::{ScimError, ScimResult};
use crate::filter::{get_ci, CompValue};
use crate::path::{AttrPath, PatchPath};
use crate::resource::{fix_primary, is_absent, is_members, normalize, Ctx, Normalized};
use crate::schema::{AttrType, Attribute, Mutability, Registry, Resolved, ResourceType};

type Obj = Map<String, Value>;

struct Engine<'a> {
    reg: &'a Registry,
    rt: &'a ResourceType,
    id: &'a str,
    ctx: Ctx,
}

/// Apply operations in order to `resource` (stored form) and return the normalized result.
/// Atomic: any error → Err, nothing applied.
pub fn apply_patch(
    reg: &Registry,
    rt: &ResourceType,
    resource: &Value,
    ops: &[PatchOperation],
    resource_id: &str,
) -> ScimResult<Normalized> {
    let mut doc = resource
        .as_object()
        .cloned()
        .ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))?;
    let mut engine = Engine {
        reg,
        rt,
        id: resource_id,
        ctx: Ctx::new(true, true),
    };
    for op in ops {
        let value = op.value.as_ref();
        match (&op.path, op.op) {
            (None, PatchOp::Remove) => {
                return Err(ScimError::no_target("'remove' requires a 'path'"))
            }
            (None, kind) => engine.no_path(&mut doc, kind, value.unwrap_or(&Value::Null))?,
            (Some(pp), kind) => engine.at_path(&mut doc, kind, pp, value)?,
        }
        doc.retain(|_, v| !is_absent(v));
    }
    normalize(reg, rt, &Value::Object(doc), Some(resource_id))
}

fn key_ci(map: &Obj, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn remove_ci(map: &mut Obj, name: &str) {
    map.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

fn set_ci(map: &mut Obj, name: &str, v: Value) {
    remove_ci(map, name);
    map.insert(name.to_string(), v);
}

/// Set (or, for an absent value, unset) `name` in an element object.
fn set_or_unset(obj: &mut Obj, name: &str, v: Option<Value>) {
    match v {
        Some(v) => set_ci(obj, name, v),
        None => remove_ci(obj, name),
    }
}

fn merge(target: &mut Value, patch: Value) {
    match (target.as_object_mut(), patch) {
        (Some(t), Value::Object(p)) => p.into_iter().for_each(|(k, v)| set_ci(t, &k, v)),
        (_, p) => *target = p,
    }
}

fn starts_with_urn(k: &str) -> bool {
    k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

impl Engine<'_> {
    fn path_error(p: &impl std::fmt::Display) -> ScimError {
        ScimError::invalid_path(format!(
            "unknown attribute '{}'",
            crate::path::short(&p.to_string())
        ))
    }

    /// add/replace without path: every key of the value object is a path (E4, O4, O6).
    fn no_path(&mut self, doc: &mut Obj, kind: PatchOp, value: &Value) -> ScimResult<()> {
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_value("a PATCH operation without 'path' needs an object 'value'")
        })?;
        let core = self.rt.schema.clone();
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if k.eq_ignore_ascii_case("id") {
                match v {
                    Value::Null => continue,
                    Value::String(s) if s == self.id => continue,
                    _ => {
                        return Err(ScimError::mutability(
                            "attribute 'id' does not match the resource id",
                        ))
                    }
                }
            }
            let nested = self
                .rt
                .extension(k)
                .map(str::to_string)
                .or_else(|| k.eq_ignore_ascii_case(&core).then(|| core.clone()));
            if let Some(urn) = nested {
                let Value::Object(m) = v else {
                    if v.is_null() && kind == PatchOp::Replace {
                        remove_ci(doc, &urn);
                    }
                    continue;
                };
                for (k2, v2) in m {
                    let p = AttrPath::parse(&format!("{urn}:{k2}"))
                        .map_err(|_| Self::path_error(k2))?;
                    self.keyed(doc, kind, p, v2)?;
                }
                continue;
            }
            match AttrPath::parse(k) {
                Ok(p) => self.keyed(doc, kind, p, v)?,
                Err(_) if starts_with_urn(k) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One key of a no-path value: readOnly and unknown-URN keys are ignored.
    fn keyed(&mut self, doc: &mut Obj, kind: PatchOp, p: AttrPath, v: &Value) -> ScimResult<()> {
        let Some(r) = self.reg.resolve_parts(self.rt, &p) else {
            let known_urn = p.urn.as_deref().is_none_or(|u| {
                u.eq_ignore_ascii_case(&self.rt.schema) || self.rt.extension(u).is_some()
            });
            return if known_urn {
                Err(Self::path_error(&p))
            } else {
                Ok(())
            };
        };
        if r.attr.mutability == Mutability::ReadOnly
            || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
        {
            return Ok(());
        }
        self.at_path(
            doc,
            kind,
            &PatchPath {
                attr: p,
                filter: None,
                sub: None,
            },
            Some(v),
        )
    }

    fn at_path(
        &mut self,
        doc: &mut Obj,
        kind: PatchOp,
        pp: &PatchPath,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if pp.filter.is_none() {
            if let Some(urn) = pp
                .attr
                .as_urn()
                .and_then(|u| self.rt.extension(&u).map(str::to_string))
            {
                return match kind {
                    PatchOp::Remove => {
                        remove_ci(doc, &urn);
                        Ok(())
                    }
                    _ => self.no_path(
                        doc,
                        kind,
                        &Value::Object(Map::from_iter([(
                            urn,
                            value.cloned().unwrap_or(Value::Null),
                        )])),
                    ),
                };
            }
        }
        let r = self
            .reg
            .resolve_parts(self.rt, &pp.attr)
            .ok_or_else(|| Self::path_error(&pp.attr))?;
        let read_only = |a: &Attribute| a.mutability == Mutability::ReadOnly;
        if read_only(r.attr) || r.sub.is_some_and(read_only) {
            return Err(ScimError::mutability(format!(
                "attribute '{}' is readOnly",
                pp.attr
            )));
        }
        let container = if r.in_extension {
            let key = key_ci(doc, r.schema).unwrap_or_else(|| r.schema.to_string());
            let slot = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            match slot.as_object_mut() {
                Some(c) => c,
                None => return Ok(()),
            }
        } else {
            doc
        };
        let value = value.unwrap_or(&Value::Null);
        let result = match &pp.filter {
            None => self.plain(container, kind, &r, value),
            Some(f) => self.filtered(container, kind, &r, pp, f, value),
        };
        container.retain(|_, v| !is_absent(v));
        result
    }

    fn norm(
        &mut self,
        def: &Attribute,
        v: &Value,
        path: &str,
        members: bool,
    ) -> ScimResult<Option<Value>> {
        self.ctx.value(def, v, path, members)
    }

    /// Operations on `attr` or `attr.sub` (no value filter).
    fn plain(
        &mut self,
        c: &mut Obj,
        kind: PatchOp,
        r: &Resolved<'_>,
        value: &Value,
    ) -> ScimResult<()> {
        let attr = r.attr;
        let members = is_members(r.schema, attr);
        if let Some(sub) = r.sub {
            let path = format!("{}.{}", attr.name, sub.name);
            let nv = if kind == PatchOp::Remove {
                None
            } else {
                self.norm(sub, value, &path, false)?
            };
            if kind == PatchOp::Add && nv.is_none() {
                return Ok(());
            }
            let key = key_ci(c, &attr.name).unwrap_or_else(|| attr.name.clone());
            let slot = c.entry(key).or_insert(Value::Null);
            if attr.multi_valued {
                let mut items = match slot.take() {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                if items.is_empty() && nv.is_some() {
                    items.push(Value::Object(Map::new()));
                }
                items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(|o| set_or_unset(o, &sub.name, nv.clone()));
                items.retain(|i| !is_absent(i));
                *slot = Value::Array(items);
            } else {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Some(o) = slot.as_object_mut() {
                    set_or_unset(o, &sub.name, nv);
                }
            }
            return Ok(());
        }
        match (kind, attr.multi_valued) {
            (PatchOp::Remove, true) if !is_absent(value) => {
                let existing = key_ci(c, &attr.name).and_then(|k| c.get_mut(&k));
                if let Some(Value::Array(items)) = existing {
                    remove_listed(attr, items, value, members);
                }
            }
            (PatchOp::Remove, _) => remove_ci(c, &attr.name),
            (PatchOp::Replace, _) => {
                let nv = self.norm(attr, value, &attr.name, members)?;
                if attr.multi_valued || attr.attr_type != AttrType::Complex || nv.is_none() {
                    set_or_unset(c, &attr.name, nv);
                } else if let Some(nv) = nv {
                    let slot = c
                        .entry(key_ci(c, &attr.name).unwrap_or_else(|| attr.name.clone()))
                        .or_insert(Value::Null);
                    merge(slot, nv);
                }
            }
            (PatchOp::Add, true) => {
                let Some(Value::Array(added)) = self.norm(attr, value, &attr.name, members)? else {
                    return Ok(());
                };
                let key = key_ci(c, &attr.name).unwrap_or_else(|| attr.name.clone());
                let slot = c.entry(key).or_insert(Value::Null);
                let mut items = match slot.take() {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                let mut keep = None;
                for a in added {
                    let dup = if members {
                        items.iter().any(|i| i.get("value") == a.get("value"))
                    } else {
                        items.contains(&a)
                    };
                    if !dup {
                        if a.get("primary") == Some(&Value::Bool(true)) {
                            keep = Some(items.len());
                        }
                        items.push(a);
                    }
                }
                fix_primary(&mut items, keep);
                *slot = Value::Array(items);
            }
            (PatchOp::Add, false) => {
                let Some(nv) = self.norm(attr, value, &attr.name, members)? else {
                    return Ok(());
                };
                let slot = c
                    .entry(key_ci(c, &attr.name).unwrap_or_else(|| attr.name.clone()))
                    .or_insert(Value::Null);
                if attr.attr_type == AttrType::Complex {
                    merge(slot, nv)
                } else {
                    *slot = nv
                }
            }
        }
        Ok(())
    }

    /// Operations on `attr[filter]` and `attr[filter].sub`.
    fn filtered(
        &mut self,
        c: &mut Obj,
        kind: PatchOp,
        r: &Resolved<'_>,
        pp: &PatchPath,
        f: &crate::filter::Filter,
        value: &Value,
    ) -> ScimResult<()> {
        let attr = r.attr;
        if attr.attr_type != AttrType::Complex || !attr.multi_valued || r.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{}' is not a multi-valued complex attribute",
                pp.attr
            )));
        }
        let sub = match &pp.sub {
            Some(s) => Some(
                attr.sub_attribute(s)
                    .ok_or_else(|| Self::path_error(&format!("{}.{s}", attr.name)))?,
            ),
            None => None,
        };
        if sub.is_some_and(|s| s.mutability == Mutability::ReadOnly) {
            return Err(ScimError::mutability(format!(
                "attribute '{pp}' is readOnly"
            )));
        }
        let members = is_members(r.schema, attr);
        let key = key_ci(c, &attr.name).unwrap_or_else(|| attr.name.clone());
        let mut items = match c.get_mut(&key).map(Value::take) {
            Some(Value::Array(a)) => a,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![other],
        };
        let hits: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, e)| f.matches_element(attr, e))
            .map(|(i, _)| i)
            .collect();
        let nv = match (kind, sub) {
            (PatchOp::Remove, _) => None,
            (_, Some(s)) => self.norm(s, value, &format!("{}.{}", attr.name, s.name), false)?,
            (_, None) => self.ctx.single(attr, value, &attr.name, members)?,
        };
        let apply = |e: &mut Value| match (sub, e.as_object_mut()) {
            (Some(s), Some(o)) => set_or_unset(o, &s.name, nv.clone()),
            (None, _) => {
                if let Some(nv) = nv.clone() {
                    merge(e, nv)
                }
            }
            _ => {}
        };
        let mut touched = Vec::new();
        match kind {
            PatchOp::Remove if sub.is_none() => {
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !hits.contains(&(i - 1))
                });
            }
            PatchOp::Remove => hits.iter().for_each(|&i| {
                if let Some(e) = items.get_mut(i) {
                    apply(e)
                }
            }),
            _ if !hits.is_empty() => {
                for &i in &hits {
                    if let Some(e) = items.get_mut(i) {
                        apply(e);
                    }
                }
                touched = hits;
            }
            _ => {
                let pairs = f.eq_pairs().ok_or_else(|| {
                    ScimError::no_target(format!("no value of '{}' matches the filter", attr.name))
                })?;
                let mut elem = Map::new();
                for (p, v) in pairs {
                    let s = attr
                        .sub_attribute(&p.name)
                        .filter(|_| p.urn.is_none() && p.sub.is_none())
                        .ok_or_else(|| Self::path_error(p))?;
                    if *v != CompValue::Null {
                        elem.insert(s.name.clone(), v.to_json());
                    }
                }
                let mut e = Value::Object(elem);
                apply(&mut e);
                touched.push(items.len());
                items.push(e);
            }
        }
        let is_primary = |e: &Value| e.get("primary") == Some(&Value::Bool(true));
        let keep = touched
            .into_iter()
            .find(|&i| items.get(i).is_some_and(is_primary));
        fix_primary(&mut items, keep);
        items.retain(|i| !is_absent(i));
        set_ci(c, &attr.name, Value::Array(items));
        Ok(())
    }
}

/// E5: remove only the elements matching each listed value (members: by `value`; otherwise on
/// every sub-attribute the listed value gives).
fn remove_listed(attr: &Attribute, items: &mut Vec<Value>, listed: &Value, members: bool) {
    let listed: Vec<&Value> = match listed {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let same = |def: Option<&Attribute>, a: &Value, b: &Value| match (a, b) {
        (Value::String(x), Value::String(y)) if !def.is_some_and(|d| d.case_exact) => {
            x.eq_ignore_ascii_case(y)
        }
        _ => a == b,
    };
    items.retain(|item| {
        !listed.iter().any(|l| match l {
            Value::Object(m) if members => get_ci(l, "value").is_some_and(|v| {
                item.get("value")
                    .is_some_and(|iv| same(attr.sub_attribute("value"), iv, v))
            }),
            Value::Object(m) => {
                !m.is_empty()
                    && m.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| {
                        get_ci(item, k).is_some_and(|iv| same(attr.sub_attribute(k), iv, v))
                    })
            }
            Value::Null => false,
            v if attr.attr_type == AttrType::Complex => item
                .get("value")
                .is_some_and(|iv| same(attr.sub_attribute("value"), iv, v)),
            v => same(Some(attr), item, v),
        })
    });
}
