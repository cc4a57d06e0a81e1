//! From a stored resource to what a client receives.

use axum::http::{header, HeaderMap, HeaderValue};
use scimtrail_audit::Target;
use scimtrail_core::{project_write, ResourceType};
use scimtrail_store::{representation, GroupRef, StoredResource};
use serde_json::Value;

use super::params::View;
use crate::error::SCIM_JSON;
use crate::{AppState, Ctx};

pub fn location(ctx: &Ctx, rt: &ResourceType, id: &str) -> String {
    format!("{}{}/{}", ctx.scim_base, rt.endpoint, id)
}

/// The full representation with `meta.location` and every `$ref`, projected by `view`.
pub fn resource(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    r: &StoredResource,
    groups: Option<&[GroupRef]>,
    view: &View,
) -> Value {
    let mut v = representation(r, groups);
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("location".into(), Value::String(location(ctx, rt, &r.id)));
    }
    // One member order everywhere (GET, PATCH answers, lists): by id, as the store keeps them.
    sort_members(&mut v);
    for key in ["groups", "members"] {
        if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
            for m in items.iter_mut().filter_map(Value::as_object_mut) {
                let id = m
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                // A member or group is a User or a Group; a Group unless it says otherwise.
                let endpoint = m
                    .get("type")
                    .and_then(Value::as_str)
                    .and_then(|t| state.registry.resource_type(t))
                    .or_else(|| state.registry.resource_type("Group"))
                    .map_or("/Groups", |t| t.endpoint.as_str());
                m.insert(
                    "$ref".into(),
                    Value::String(format!("{}{endpoint}/{id}", ctx.scim_base)),
                );
            }
        }
    }
    project_write(
        &state.registry,
        rt,
        &v,
        &view.attributes,
        &view.excluded,
        &view.specified,
    )
}

/// Headers of a response that carries one resource.
pub fn resource_headers(
    ctx: &Ctx,
    rt: &ResourceType,
    r: &StoredResource,
    groups: Option<&[GroupRef]>,
    with_location: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if let Ok(v) = HeaderValue::from_str(&scimtrail_store::etag(r.version, groups)) {
        h.insert(header::ETAG, v);
    }
    if with_location {
        if let Ok(v) = HeaderValue::from_str(&location(ctx, rt, &r.id)) {
            h.insert(header::LOCATION, v);
        }
    }
    h
}

/// `target` of an event about `r`.
pub fn target(
    rt: &ResourceType,
    r: &StoredResource,
    before: Option<i64>,
    after: Option<i64>,
) -> Target {
    let text = |k: &str| r.data.get(k).and_then(Value::as_str).map(str::to_string);
    Target {
        system: String::new(),
        resource_type: Some(rt.name.clone()),
        id: Some(r.id.clone()),
        external_id: text("externalId"),
        display: text("displayName").or_else(|| text("userName")),
        version_before: before,
        version_after: after,
    }
}

/// The derived `groups` of a User (`None` for other types), read even when the answer leaves
/// them out: the ETag covers them.
pub async fn user_groups(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
) -> Result<Option<Vec<GroupRef>>, crate::error::ApiError> {
    if !rt.has_groups() {
        return Ok(None);
    }
    let ids = [id.to_string()];
    Ok(state.store.groups_of(&ctx.tenant, &ids).await?.remove(id))
}

/// The resource after a write at `version` (unchanged bookkeeping when nothing changed).
pub fn next_state(
    current: &StoredResource,
    data: Value,
    changed: bool,
    time: &str,
) -> StoredResource {
    StoredResource {
        version: if changed {
            current.version + 1
        } else {
            current.version
        },
        last_modified: if changed {
            time.to_string()
        } else {
            current.last_modified.clone()
        },
        data,
        ..current.clone()
    }
}

/// Sort a Group's `members` by id: the one member order of every answer and comparison.
pub fn sort_members(v: &mut Value) {
    if let Some(members) = v.get_mut("members").and_then(Value::as_array_mut) {
        members.sort_by(|a, b| {
            let key = |m: &Value| {
                m.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            key(a).cmp(&key(b))
        });
    }
}
