//! POST, PUT, PATCH and DELETE. Each computes the new stored form from the current one, then
//! commits resource, version and event in one store call guarded by the version it read.

use std::sync::Arc;

use axum::extract::State;

use crate::error::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use scimtrail_audit::format_time;
use scimtrail_core::{normalize, ResourceType, ScimError};
use scimtrail_store::{ResourceWrite, StoredResource, WriteKind};
use serde_json::Value;

use super::members::{resolve, unknown_note};
use super::params::{cpu, parse_body, resource_type, QueryParams, View};
use super::render;
use crate::context::{changes, EventInfo, Recorded};
use crate::error::ApiError;
use crate::record::response_payload;
use crate::{AppState, Ctx};

pub(crate) fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// `If-Match` as a version number; `*` matches any.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<Vec<i64>>, ScimError> {
    let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    // One ETag or a list of them: the resource must be at one of the listed versions. A
    // User's ETag may carry a digest of its groups after a `.`; they are read-only, so only
    // the version is compared.
    let versions: Vec<i64> = v
        .split(',')
        .filter_map(|tag| {
            let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
            tag.split_once('.').map_or(tag, |(v, _)| v).parse().ok()
        })
        .collect();
    if versions.is_empty() {
        return Err(ScimError::precondition_failed(
            "If-Match does not name a version of this resource",
        ));
    }
    Ok(Some(versions))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(endpoint): Path<String>,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let view = View::from_query(&QueryParams::parse(&ctx)?)?;
    let input = parse_body(&ctx).await?;
    let (reg, rt_name) = (state.registry.clone(), rt.name.clone());
    let norm = cpu(ctx.body.len(), move || {
        let rt = reg
            .resource_type(&rt_name)
            .ok_or_else(|| ScimError::internal("resource type vanished"))?;
        normalize(&reg, rt, &input, None)
    })
    .await?;
    let mut data = norm.resource;
    let unknown = resolve(&state, &ctx, rt, None, &mut data).await?;
    let time = now();
    let r = StoredResource {
        resource_type: rt.name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        version: 1,
        created: time.clone(),
        last_modified: time.clone(),
        data,
    };
    let info = EventInfo {
        action: rt.action("create"),
        scim: Some("create".into()),
        target: render::target(rt, &r, None, Some(1)),
        changes: changes(&state, None, Some(&r.data), &norm.secrets),
        detail: None,
    };
    let write = ResourceWrite {
        tenant: ctx.tenant.clone(),
        resource_type: rt.name.clone(),
        id: r.id.clone(),
        kind: WriteKind::Create,
        expected_version: None,
        new_version: 1,
        time,
        data: Some(r.data.clone()),
        members: None,
    };
    let view = view.of_write(Some(&r.data), &[]);
    let body = render::resource(&state, &ctx, rt, &r, Some(&[]), &view);
    let headers = render::resource_headers(&ctx, rt, &r, Some(&[]), true);
    commit(
        &state,
        &ctx,
        write,
        info,
        StatusCode::CREATED,
        headers,
        Some(body),
        unknown_note(&unknown),
    )
    .await
}

pub(super) async fn load(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    with_members: bool,
) -> Result<StoredResource, ApiError> {
    Ok(state
        .store
        .get(&ctx.tenant, &rt.name, id, with_members)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("{} {id} not found", rt.name)))?)
}

pub(super) fn check_version(
    current: &StoredResource,
    wanted: Option<&[i64]>,
) -> Result<(), ScimError> {
    match wanted {
        Some(v) if !v.contains(&current.version) => Err(ScimError::precondition_failed(format!(
            "If-Match does not name the current version W/\"{}\"",
            current.version
        ))),
        _ => Ok(()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let wanted = if_match(&headers)?;
    // The store refuses the delete if a group gained the resource as a member after the
    // groups were read: read them again then.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match delete_once(&state, &ctx, rt, &id, wanted.as_deref()).await {
            Err(ApiError::Scim(e)) if e.status == 412 && wanted.is_none() && attempt < 5 => {
                continue
            }
            other => return other,
        }
    }
}

/// Delete a resource and remove it from every Group it is a member of, each Group getting a
/// new version and an event of its own linked to the delete's, in one transaction.
async fn delete_once(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    wanted: Option<&[i64]>,
) -> Result<Response, ApiError> {
    let groups = state
        .store
        .groups_of(&ctx.tenant, &[id.to_string()])
        .await?
        .remove(id)
        .unwrap_or_default();
    // Every lock this write needs, in one order, so that two cascades never wait on each other.
    let mut keys: Vec<String> = std::iter::once(id.to_string())
        .chain(groups.iter().map(|g| g.id.clone()))
        .map(|k| format!("{}/{k}", ctx.tenant))
        .collect();
    keys.sort();
    keys.dedup();
    let mut _guards = Vec::with_capacity(keys.len());
    for k in keys {
        _guards.push(state.locks.lock(k).await);
    }
    let current = load(state, ctx, rt, id, true).await?;
    check_version(&current, wanted)?;
    let version = current.version + 1;
    let time = now();
    let info = EventInfo {
        action: rt.action("delete"),
        scim: Some("delete".into()),
        target: render::target(rt, &current, Some(current.version), Some(version)),
        changes: changes(state, Some(&current.data), None, &[]),
        detail: None,
    };
    let write = ResourceWrite {
        tenant: ctx.tenant.clone(),
        resource_type: rt.name.clone(),
        id: id.to_string(),
        kind: WriteKind::Delete,
        expected_version: Some(current.version),
        new_version: version,
        time: time.clone(),
        data: None,
        members: None,
    };
    let group_rt = resource_type(state, "Groups")?;
    let mut children = Vec::with_capacity(groups.len());
    for g in groups.iter().filter(|g| g.id != id) {
        let Some(group) = state.store.get(&ctx.tenant, "Group", &g.id, false).await? else {
            continue;
        };
        let was = state
            .store
            .members(&ctx.tenant, &g.id, &[id.to_string()])
            .await?;
        let Some(member) = was.into_iter().next() else {
            continue;
        };
        let next = render::next_state(&group, group.data.clone(), true, &time);
        let info = EventInfo {
            action: "group.member.remove".into(),
            scim: Some("delete".into()),
            target: render::target(group_rt, &next, Some(group.version), Some(next.version)),
            changes: vec![scimtrail_audit::Change {
                op: "remove".into(),
                path: "members".into(),
                old: member.to_json(),
                new: Value::Null,
            }],
            detail: Some(format!(
                "member {id} removed because the {} was deleted",
                rt.name
            )),
        };
        let delta = scimtrail_store::MemberDelta {
            add: Vec::new(),
            remove: vec![id.to_string()],
        };
        children.push((
            replace_write(ctx, &group, &next, time.clone(), Some(delta)),
            info,
        ));
    }
    commit_all(
        state,
        ctx,
        write,
        info,
        children,
        StatusCode::NO_CONTENT,
        HeaderMap::new(),
    )
    .await
}

/// [`commit`] for a write that changes other resources too: each of `children` gets an
/// event of its own whose `parentId` is the main event's, all in one transaction.
async fn commit_all(
    state: &AppState,
    ctx: &Ctx,
    write: ResourceWrite,
    info: EventInfo,
    children: Vec<(ResourceWrite, EventInfo)>,
    status: StatusCode,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut resp = respond(status, headers, None, None, None);
    let payload = response_payload(state, resp.headers(), &[]);
    let event = ctx.event(state, info, status.as_u16(), None, payload);
    let parent = event.id.clone();
    let mut writes = vec![(write, event)];
    for (w, info) in children {
        let mut e = ctx.event(state, info, 200, None, Default::default());
        // The request is in the parent event; the child records what it did to its resource.
        e.request = Default::default();
        e.parent_id = Some(parent.clone());
        writes.push((w, e));
    }
    state.store.write_all(None, writes).await?;
    resp.extensions_mut().insert(Recorded);
    Ok(resp)
}

pub(super) fn respond(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Option<Value>,
    note: Option<String>,
    info: Option<EventInfo>,
) -> Response {
    if let Some(n) = &note {
        if let Ok(v) = HeaderValue::from_str(&format!("299 scimtrail \"{}\"", n.replace('"', "'")))
        {
            headers.insert(header::WARNING, v);
        }
    }
    let mut resp = match body {
        Some(b) => (status, headers, b.to_string()).into_response(),
        None => (status, headers).into_response(),
    };
    if let Some(mut info) = info {
        // Carried to the middleware, which records it.
        info.detail = note;
        resp.extensions_mut().insert(info);
    }
    resp
}

/// Store the write with its event; answer only once both are committed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn commit(
    state: &AppState,
    ctx: &Ctx,
    write: ResourceWrite,
    info: EventInfo,
    status: StatusCode,
    headers: HeaderMap,
    body: Option<Value>,
    note: Option<String>,
) -> Result<Response, ApiError> {
    let mut resp = respond(status, headers, body.clone(), note.clone(), None);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let payload = response_payload(state, resp.headers(), bytes.as_bytes());
    let info = EventInfo {
        detail: note,
        ..info
    };
    let event = ctx.event(state, info, status.as_u16(), None, payload);
    state.store.write(write, event).await?;
    resp.extensions_mut().insert(Recorded);
    Ok(resp)
}

/// The store write that moves `current` to `next` (same id and type).
pub(super) fn replace_write(
    ctx: &Ctx,
    current: &StoredResource,
    next: &StoredResource,
    time: String,
    members: Option<scimtrail_store::MemberDelta>,
) -> ResourceWrite {
    ResourceWrite {
        tenant: ctx.tenant.clone(),
        resource_type: current.resource_type.clone(),
        id: current.id.clone(),
        kind: WriteKind::Replace,
        expected_version: Some(current.version),
        new_version: next.version,
        time,
        data: Some(next.data.clone()),
        members,
    }
}
