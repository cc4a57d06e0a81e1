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
use super::params::{json_body, resource_type, QueryParams, View};
use super::render;
use crate::context::{changes, EventInfo, Recorded};
use crate::error::ApiError;
use crate::record::response_payload;
use crate::{AppState, Ctx};

pub(super) fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

pub(super) fn prefix(rt: &ResourceType) -> &'static str {
    if rt.name == "Group" {
        "group"
    } else {
        "user"
    }
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
    // One ETag or a list of them: the resource must be at one of the listed versions.
    let versions: Vec<i64> = v
        .split(',')
        .filter_map(|tag| {
            tag.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .ok()
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
    let input = json_body(&ctx)?;
    let norm = normalize(&state.registry, rt, &input, None)?;
    let mut data = norm.resource;
    let unknown = resolve(&state, &ctx, rt, &mut data).await?;
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
        action: format!("{}.create", prefix(rt)),
        scim: Some("create".into()),
        target: render::target(rt, &r, None, Some(1)),
        changes: changes(None, Some(&r.data), &norm.secrets),
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
    let body = render::resource(&state, &ctx, rt, &r, Some(&[]), &view);
    let headers = render::resource_headers(&ctx, rt, &r, true);
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
    let _guard = state.locks.lock(format!("{}/{id}", ctx.tenant)).await;
    let current = load(&state, &ctx, rt, &id, true).await?;
    check_version(&current, wanted.as_deref())?;
    let version = current.version + 1;
    let info = EventInfo {
        action: format!("{}.delete", prefix(rt)),
        scim: Some("delete".into()),
        target: render::target(rt, &current, Some(current.version), Some(version)),
        changes: changes(Some(&current.data), None, &[]),
        detail: None,
    };
    let write = ResourceWrite {
        tenant: ctx.tenant.clone(),
        resource_type: rt.name.clone(),
        id: id.clone(),
        kind: WriteKind::Delete,
        expected_version: Some(current.version),
        new_version: version,
        time: now(),
        data: None,
        members: None,
    };
    commit(
        &state,
        &ctx,
        write,
        info,
        StatusCode::NO_CONTENT,
        HeaderMap::new(),
        None,
        None,
    )
    .await
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
