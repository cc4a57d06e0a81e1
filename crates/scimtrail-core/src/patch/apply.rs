//! The PATCH engine: applies operations to a draft copy of the stored resource, then normalizes
//! the draft (so the result obeys exactly the same rules as a PUT body). Any error leaves the
//! caller's resource untouched.

use serde_json::{Map, Value};

use super::{PatchOp, PatchOperation};
use crate::error::{ScimError, ScimResult};
use crate::path::{AttrPath, PatchPath};
use crate::resource::{is_absent, normalize, Ctx, Normalized};
use crate::schema::{Attribute, Mutability, Registry, ResourceType};

pub(super) type Obj = Map<String, Value>;

pub(super) struct Engine<'a> {
    pub(super) reg: &'a Registry,
    pub(super) rt: &'a ResourceType,
    pub(super) id: &'a str,
    pub(super) ctx: Ctx,
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
        ctx: Ctx::new(reg, true, true),
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

pub(super) fn key_ci(map: &Obj, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub(super) fn remove_ci(map: &mut Obj, name: &str) {
    map.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

pub(super) fn set_ci(map: &mut Obj, name: &str, v: Value) {
    remove_ci(map, name);
    map.insert(name.to_string(), v);
}

/// Set (or, for an absent value, unset) `name` in an element object.
pub(super) fn set_or_unset(obj: &mut Obj, name: &str, v: Option<Value>) {
    match v {
        Some(v) => set_ci(obj, name, v),
        None => remove_ci(obj, name),
    }
}

pub(super) fn merge(target: &mut Value, patch: Value) {
    match (target.as_object_mut(), patch) {
        (Some(t), Value::Object(p)) => p.into_iter().for_each(|(k, v)| set_ci(t, &k, v)),
        (_, p) => *target = p,
    }
}

fn starts_with_urn(k: &str) -> bool {
    k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

impl Engine<'_> {
    pub(super) fn path_error(p: &impl std::fmt::Display) -> ScimError {
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
                // A client may echo `schemas` inside an extension object; it is not an attribute.
                for (k2, v2) in m
                    .iter()
                    .filter(|(k2, _)| !k2.eq_ignore_ascii_case("schemas"))
                {
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
            // A path naming a whole schema: the extension object, or the core schema itself.
            if let Some(urn) = pp.attr.as_urn().and_then(|u| {
                let core = u.eq_ignore_ascii_case(&self.rt.schema);
                let found = self.rt.extension(&u).map(str::to_string);
                found.or_else(|| core.then(|| self.rt.schema.clone()))
            }) {
                return match kind {
                    PatchOp::Remove if urn == self.rt.schema => {
                        Err(ScimError::invalid_path("the core schema cannot be removed"))
                    }
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
}
