//! The fast path for a PATCH that only adds or removes Group members — what Entra and Okta send
//! for every membership change. It touches the named members only: no member list is loaded,
//! validated, diffed or snapshotted, so its cost does not grow with the group (a 100k-member
//! group answers as fast as an empty one). Like every Group PATCH it answers 200 with the
//! resource, except for groups over `patch_body_max_members`, where it answers 204 No Content
//! (RFC 7644 §3.5.2) unless `attributes` or `excludedAttributes` asks for the resource.
//!
//! Anything else — `replace` of members, a filter other than `value eq`, sub-attribute paths,
//! member objects with unexpected content — goes through the general PATCH engine, which gives
//! the precise error or result.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scimtrail_audit::Change;
use scimtrail_core::schema::GROUP_SCHEMA;
use scimtrail_core::{CompValue, CompareOp, Filter, PatchOp, PatchOperation, ResourceType};
use scimtrail_store::{Member, MemberDelta, StoredResource};
use serde_json::{Map, Value};

use super::members::unknown_note;
use super::params::{QueryParams, View};
use super::render;
use super::update::update_action;
use super::write::{check_version, commit, if_match, now, replace_write, respond};
use crate::context::EventInfo;
use crate::error::ApiError;
use crate::{AppState, Ctx};

/// One member operation: members to add (objects with `value` and maybe `display`), or ids to
/// remove.
pub enum MemberOp {
    Add(Vec<(String, Option<String>)>),
    Remove(Vec<String>),
}

fn is_members(p: &scimtrail_core::AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members")
        && p.sub.is_none()
        && p.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
}

/// `{"value": "id", "display": "x"}` (plus `type`/`$ref`, which the server derives) → id, display.
fn plain_member(v: &Value) -> Option<(String, Option<String>)> {
    let obj = v.as_object()?;
    let mut value = None;
    let mut display = None;
    for (k, v) in obj {
        match (k.to_ascii_lowercase().as_str(), v) {
            ("value", Value::String(s)) => value = Some(s.clone()),
            ("display", Value::String(s)) => display = Some(s.clone()),
            ("display" | "type" | "$ref", Value::String(_) | Value::Null) => {}
            _ => return None,
        }
    }
    Some((value?, display))
}

fn listed(v: &Value) -> Option<Vec<(String, Option<String>)>> {
    match v {
        Value::Array(items) => items.iter().map(plain_member).collect(),
        single => Some(vec![plain_member(single)?]),
    }
}

/// The operations as member operations, when every one of them is one.
pub fn member_ops(rt: &ResourceType, ops: &[PatchOperation]) -> Option<Vec<MemberOp>> {
    if !rt.has_members() || ops.is_empty() {
        return None;
    }
    ops.iter()
        .map(|op| {
            let path = op
                .path
                .as_ref()
                .filter(|p| is_members(&p.attr) && p.sub.is_none())?;
            match (op.op, &path.filter, &op.value) {
                (PatchOp::Add, None, Some(v)) => Some(MemberOp::Add(listed(v)?)),
                (PatchOp::Remove, None, Some(v)) => Some(MemberOp::Remove(
                    listed(v)?.into_iter().map(|(id, _)| id).collect(),
                )),
                (
                    PatchOp::Remove,
                    Some(Filter::Compare(p, CompareOp::Eq, CompValue::String(id))),
                    None,
                ) if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() && p.urn.is_none() => {
                    Some(MemberOp::Remove(vec![id.clone()]))
                }
                _ => None,
            }
        })
        .collect()
}

pub async fn patch_members(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    headers: &HeaderMap,
    ops: Vec<MemberOp>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(ctx)?;
    let view = View::from_query(&q)?;
    let wants_body = answers_with_body(state, ctx, &q, id).await?;
    let wanted = if_match(headers)?;
    // The net effect, in operation order: id → Some(display) to add, None to remove.
    let mut net: Map<String, Value> = Map::new();
    for op in ops {
        match op {
            MemberOp::Add(items) => {
                for (mid, display) in items {
                    super::members::not_itself(id, &mid)?;
                    net.insert(mid, serde_json::json!({ "display": display }));
                }
            }
            MemberOp::Remove(ids) => ids.into_iter().for_each(|mid| {
                net.insert(mid, Value::Null);
            }),
        }
    }
    let _guard = state.locks.lock(format!("{}/{id}", ctx.tenant)).await;
    // Another process may write the group between our read and our write: without `If-Match`
    // the client asked for no particular version, so a lost race is computed again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = state
            .store
            .get(&ctx.tenant, &rt.name, id, false)
            .await?
            .ok_or_else(|| {
                scimtrail_core::ScimError::not_found(format!("{} {id} not found", rt.name))
            })?;
        check_version(&current, wanted.as_deref())?;
        match members_write(state, ctx, rt, id, &view, wants_body, current, &net).await {
            Err(ApiError::Scim(e))
                if super::update::retry_lost_race(&e, wanted.as_deref(), attempt).await =>
            {
                continue
            }
            other => return other,
        }
    }
}

/// The write of a member PATCH's net effect on `current`, and its answer.
#[allow(clippy::too_many_arguments)]
async fn members_write(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    view: &View,
    wants_body: bool,
    current: StoredResource,
    net: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let ids: Vec<String> = net.keys().cloned().collect();
    let present: HashMap<String, Member> = state
        .store
        .members(&ctx.tenant, id, &ids)
        .await?
        .into_iter()
        .map(|m| (m.value.clone(), m))
        .collect();
    let to_add: Vec<String> = net
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    let known = state.store.lookup(&ctx.tenant, &to_add).await?;

    let mut delta = MemberDelta::default();
    let mut changes = Vec::new();
    let mut unknown = Vec::new();
    for (mid, v) in net {
        let old = present.get(mid);
        if v.is_null() {
            if let Some(m) = old {
                delta.remove.push(mid.clone());
                changes.push(change("remove", "members".into(), m.to_json(), Value::Null));
            }
            continue;
        }
        let Some(found) = known.get(mid) else {
            unknown.push(mid.clone());
            continue;
        };
        let display = v["display"]
            .as_str()
            .map(str::to_string)
            .or_else(|| found.display.clone());
        let m = Member {
            value: mid.clone(),
            resource_type: found.resource_type.clone(),
            display,
        };
        match old {
            None => changes.push(change("add", "members".into(), Value::Null, m.to_json())),
            Some(o) if *o != m => {
                let path = format!("members[value eq {}]", Value::String(mid.clone()));
                changes.push(change("replace", path, o.to_json(), m.to_json()));
            }
            Some(_) => continue,
        }
        delta.add.push(m);
    }
    unknown.sort();
    let note = unknown_note(&unknown);

    let changed = !changes.is_empty();
    let time = now();
    let r = render::next_state(&current, current.data.clone(), changed, &time);
    let version = r.version;
    let info = EventInfo {
        action: update_action(rt, &current.data, &r.data, &changes),
        scim: Some("patch".into()),
        target: render::target(rt, &r, Some(current.version), Some(version)),
        changes,
        detail: None,
    };
    let (status, body) = if wants_body {
        let full = if view.wants("members") {
            // Asked for: read the members after the write would land; before it, load them now
            // and fold the delta in, so the answer shows the new state.
            let mut g = state
                .store
                .get(&ctx.tenant, &rt.name, id, true)
                .await?
                .unwrap_or(current.clone());
            fold(&mut g.data, &delta);
            StoredResource {
                data: g.data,
                ..r.clone()
            }
        } else {
            r.clone()
        };
        (
            StatusCode::OK,
            Some(render::resource(state, ctx, rt, &full, None, view)),
        )
    } else {
        (StatusCode::NO_CONTENT, None)
    };
    let mut headers = render::resource_headers(ctx, rt, &r, None, false);
    if body.is_none() {
        headers.remove(axum::http::header::CONTENT_TYPE);
    }
    if !changed {
        return Ok(respond(status, headers, body, note, Some(info)));
    }
    let write = replace_write(ctx, &current, &r, time, Some(delta));
    commit(state, ctx, write, info, status, headers, body, note).await
}

fn change(op: &str, path: String, old: Value, new: Value) -> Change {
    Change {
        op: op.into(),
        path,
        old,
        new,
    }
}

/// Apply a delta to a loaded member list (for a response that shows the members).
fn fold(data: &mut Value, delta: &MemberDelta) {
    let Some(obj) = data.as_object_mut() else {
        return;
    };
    let mut members: Vec<Value> = match obj.remove("members") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    members.retain(|m| {
        let v = m.get("value").and_then(Value::as_str).unwrap_or_default();
        !delta.remove.iter().any(|r| r == v) && !delta.add.iter().any(|a| a.value == v)
    });
    members.extend(delta.add.iter().map(Member::to_json));
    if !members.is_empty() {
        obj.insert("members".into(), Value::Array(members));
    }
}

/// Whether a Group PATCH answers 200 with the resource (else 204): when the client asks for it
/// with `attributes`/`excludedAttributes`, or when the group is small enough that reading its
/// members costs little.
pub async fn answers_with_body(
    state: &AppState,
    ctx: &Ctx,
    q: &QueryParams,
    id: &str,
) -> Result<bool, ApiError> {
    if q.get("attributes").is_some() || q.get("excludedAttributes").is_some() {
        return Ok(true);
    }
    let limit = state.config.patch_body_max_members;
    Ok(state.store.member_count(&ctx.tenant, id, limit + 1).await? <= limit)
}
