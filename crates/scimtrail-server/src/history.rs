//! History under `/audit/v1/resources/{Users|Groups}/{id}`: every version of a resource, its
//! snapshot at version N, and the difference between two versions. A deleted resource answers
//! 404 on the SCIM API but keeps its history here. Restore and revert (`restore.rs`) build on
//! the same reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use base64::Engine as _;
use scimtrail_audit::{diff, Change};
use scimtrail_core::schema::LIST_RESPONSE_SCHEMA;
use scimtrail_core::{ResourceType, ScimError};
use scimtrail_store::{Member, Snapshot, StoredResource, VersionRecord};
use serde_json::{json, Value};

use crate::audit_api::json_response;
use crate::context::{redact_changes, EventInfo};
use crate::error::{ApiError, Path};
use crate::scim::params::View;
use crate::scim::{render, QueryParams};
use crate::{AppState, Ctx};

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 1000;

/// The resource type of a history path (`Users`, `Groups`, or their names).
pub(crate) fn history_type<'a>(
    state: &'a AppState,
    endpoint: &str,
) -> Result<&'a ResourceType, ApiError> {
    state
        .registry
        .resource_type(endpoint)
        .ok_or_else(|| ScimError::not_found(format!("unknown resource type '{endpoint}'")).into())
}

/// The latest version of a resource of this type (live or deleted), or 404.
pub(crate) async fn latest(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
) -> Result<VersionRecord, ApiError> {
    let not_found = || ScimError::not_found(format!("no {} {id} in the history", rt.name));
    let v = state
        .store
        .latest_version(&ctx.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    if v.resource_type != rt.name {
        return Err(not_found().into());
    }
    Ok(v)
}

/// The snapshot of version `n`, or 404.
pub(crate) async fn snapshot(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    n: i64,
) -> Result<Snapshot, ApiError> {
    state
        .store
        .snapshot(&ctx.tenant, id, n)
        .await?
        .filter(|s| s.record.resource_type == rt.name)
        .ok_or_else(|| ScimError::not_found(format!("{} {id} has no version {n}", rt.name)).into())
}

/// A Group's members at version `n` by id (empty for other types and tombstones).
pub(crate) async fn members_at(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    s: &Snapshot,
) -> Result<BTreeMap<String, Member>, ApiError> {
    if !rt.has_members() || s.record.deleted {
        return Ok(BTreeMap::new());
    }
    Ok(state
        .store
        .members_at(&ctx.tenant, &s.record.id, s.record.version)
        .await?
        .into_iter()
        .map(|m| (m.value.clone(), m))
        .collect())
}

/// The stored form with its members, as the diff and a GET see it.
pub(crate) fn with_members(
    data: Option<&Value>,
    members: &BTreeMap<String, Member>,
) -> Option<Value> {
    let mut v = data?.clone();
    if !members.is_empty() {
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "members".into(),
                Value::Array(members.values().map(Member::to_json).collect()),
            );
        }
    }
    Some(v)
}

fn n_param(q: &QueryParams, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "'{name}' must be a version number (1 or more)"
                    ))
                    .into()
                })
        })
        .transpose()
}

fn info(action: &str, rt: &ResourceType, id: &str) -> EventInfo {
    let mut i = EventInfo {
        action: action.into(),
        ..Default::default()
    };
    i.target.resource_type = Some(rt.name.clone());
    i.target.id = Some(id.to_string());
    i
}

fn with_info(mut resp: Response, info: EventInfo) -> Response {
    resp.extensions_mut().insert(info);
    resp
}

/// `GET …/versions`: number, time, actor, action, event and changes of every version, oldest
/// first, paged with `count` and `cursor`.
pub async fn versions(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rt = history_type(&state, &endpoint)?;
    let last = latest(&state, &ctx, rt, &id).await?;
    let q = QueryParams::parse(&ctx)?;
    let count = q.count(DEFAULT_COUNT, MAX_COUNT)?;
    let after = match q.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("v:").and_then(|n| n.parse::<i64>().ok()))
            .ok_or_else(|| ScimError::invalid_value("the cursor is not valid"))?,
        None => 0,
    };
    let mut page = state
        .store
        .versions(&ctx.tenant, &id, after, count + 1)
        .await?;
    let more = page.len() > count;
    page.truncate(count);
    let seqs: Vec<u64> = page.iter().map(|v| v.event_seq).collect();
    let events: BTreeMap<u64, Value> = state
        .store
        .events_at(&ctx.tenant, &seqs)
        .await?
        .into_iter()
        .filter_map(|e| Some((e["seq"].as_u64()?, e)))
        .collect();
    let items: Vec<Value> = page
        .iter()
        .map(|v| {
            let e = events.get(&v.event_seq).cloned().unwrap_or(Value::Null);
            json!({
                "version": v.version,
                "time": v.time,
                "deleted": v.deleted,
                "seq": v.event_seq,
                "eventId": e["id"],
                "requestId": e["requestId"],
                "parentId": e["parentId"],
                "actor": e["actor"],
                "action": e["action"],
                "changes": e["changes"],
                "pruned": e.get("pruned").cloned().unwrap_or(Value::Bool(false)),
            })
        })
        .collect();
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        // Versions are numbered 1, 2, … without gaps.
        "totalResults": last.version,
        "itemsPerPage": items.len(),
        "Resources": items,
    });
    if let (true, Some(last), Some(o)) = (more, page.last(), body.as_object_mut()) {
        o.insert(
            "nextCursor".into(),
            Value::String(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(format!("v:{}", last.version)),
            ),
        );
    }
    Ok(with_info(
        json_response(body),
        info("audit.history", rt, &id),
    ))
}

/// The SCIM representation of a snapshot (a tombstone says so instead).
pub(crate) fn render_snapshot(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    s: &Snapshot,
    created: &str,
    members: &BTreeMap<String, Member>,
) -> Value {
    let Some(data) = with_members(s.data.as_ref(), members) else {
        return json!({
            "id": s.record.id,
            "deleted": true,
            "meta": {"resourceType": rt.name, "lastModified": s.record.time,
                     "version": format!("W/\"{}\"", s.record.version)},
        });
    };
    let r = StoredResource {
        resource_type: rt.name.clone(),
        id: s.record.id.clone(),
        version: s.record.version,
        created: created.to_string(),
        last_modified: s.record.time.clone(),
        data,
    };
    let mut v = render::resource(state, ctx, rt, &r, None, &View::default());
    state.redactor.redact_json(&mut v);
    v
}

/// `GET …/versions/{n}`: the redacted snapshot of version n.
pub async fn version(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id, n)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let rt = history_type(&state, &endpoint)?;
    let n = n
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ScimError::invalid_value("the version must be a number (1 or more)"))?;
    let s = snapshot(&state, &ctx, rt, &id, n).await?;
    let first = snapshot(&state, &ctx, rt, &id, 1).await?;
    let members = members_at(&state, &ctx, rt, &s).await?;
    let body = render_snapshot(&state, &ctx, rt, &s, &first.record.time, &members);
    let mut i = info("audit.version", rt, &id);
    i.target.version_after = Some(n);
    Ok(with_info(json_response(body), i))
}

/// The changes from one state to another, members per member.
pub(crate) fn changes_between(
    state: &AppState,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<Change> {
    redact_changes(state, diff(old, new))
}

/// `GET …/diff?from=a&to=b`: old and new value of each attribute path, member adds and
/// removes for Groups. `to` defaults to the latest version, `from` to the one before `to`.
pub async fn version_diff(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rt = history_type(&state, &endpoint)?;
    let last = latest(&state, &ctx, rt, &id).await?;
    let q = QueryParams::parse(&ctx)?;
    let to = n_param(&q, "to")?.unwrap_or(last.version);
    let from = n_param(&q, "from")?.unwrap_or((to - 1).max(1));
    let a = snapshot(&state, &ctx, rt, &id, from).await?;
    let b = snapshot(&state, &ctx, rt, &id, to).await?;
    let (ma, mb) = (
        members_at(&state, &ctx, rt, &a).await?,
        members_at(&state, &ctx, rt, &b).await?,
    );
    let changes = changes_between(
        &state,
        with_members(a.data.as_ref(), &ma).as_ref(),
        with_members(b.data.as_ref(), &mb).as_ref(),
    );
    let body = json!({
        "resourceType": rt.name,
        "id": id,
        "from": from,
        "to": to,
        "fromDeleted": a.record.deleted,
        "toDeleted": b.record.deleted,
        "changes": changes,
    });
    let mut i = info("audit.diff", rt, &id);
    i.target.version_before = Some(from);
    i.target.version_after = Some(to);
    Ok(with_info(json_response(body), i))
}
