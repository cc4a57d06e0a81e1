//! The per-attribute PATCH operations: plain paths (`attr`, `attr.sub`) and value-filter paths
//! (`attr[filter]`, `attr[filter].sub`).

use serde_json::{Map, Value};

use super::apply::{key_ci, merge, remove_ci, set_ci, set_or_unset, Engine, Obj};
use super::PatchOp;
use crate::error::{ScimError, ScimResult};
use crate::filter::{get_ci, CompValue, Filter};
use crate::path::PatchPath;
use crate::resource::{fix_primary, is_absent, is_members};
use crate::schema::{AttrType, Attribute, Mutability, Resolved};

impl Engine<'_> {
    pub(super) fn norm(
        &mut self,
        def: &Attribute,
        v: &Value,
        path: &str,
        members: bool,
    ) -> ScimResult<Option<Value>> {
        self.ctx.value(def, v, path, members)
    }

    /// Operations on `attr` or `attr.sub` (no value filter).
    pub(super) fn plain(
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
                let ident = |v: &Value| {
                    if members {
                        crate::resource::value::member_key(v)
                    } else {
                        crate::resource::value::value_key(v)
                    }
                };
                let mut present: std::collections::HashSet<String> =
                    items.iter().map(ident).collect();
                for a in added {
                    if present.insert(ident(&a)) {
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
    pub(super) fn filtered(
        &mut self,
        c: &mut Obj,
        kind: PatchOp,
        r: &Resolved<'_>,
        pp: &PatchPath,
        f: &Filter,
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
                let hits: std::collections::HashSet<usize> = hits.iter().copied().collect();
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
    if members {
        // Removing listed members from a large group: one set, not members × listed.
        let exact = attr.sub_attribute("value").is_some_and(|d| d.case_exact);
        let fold = |s: &str| {
            if exact {
                s.to_string()
            } else {
                s.to_ascii_lowercase()
            }
        };
        let gone: std::collections::HashSet<String> = listed
            .iter()
            .filter_map(|l| match l {
                Value::Object(_) => get_ci(l, "value"),
                Value::Null => None,
                v => Some(*v),
            })
            .filter_map(|v| v.as_str().map(fold))
            .collect();
        items.retain(|item| {
            !item
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| gone.contains(&fold(v)))
        });
        return;
    }
    let same = |def: Option<&Attribute>, a: &Value, b: &Value| match (a, b) {
        (Value::String(x), Value::String(y)) if !def.is_some_and(|d| d.case_exact) => {
            x.eq_ignore_ascii_case(y)
        }
        _ => a == b,
    };
    items.retain(|item| {
        !listed.iter().any(|l| match l {
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
