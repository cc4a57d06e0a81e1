//! GET one, list, and `.search`.

use std::sync::Arc;

use axum::extract::State;

use crate::error::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use scimtrail_core::schema::LIST_RESPONSE_SCHEMA;
use scimtrail_core::{ResourceType, ScimError};
use scimtrail_store::ListQuery;
use serde_json::{json, Value};

use super::params::{
    check_filter, check_sort, json_body, resource_type, ListParams, QueryParams, View,
};
use super::{cursor, render};
use crate::context::{classify, EventInfo};
use crate::error::{ApiError, SCIM_JSON};
use crate::{AppState, Ctx};

pub async fn get_one(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
    request_headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let view = View::from_query(&QueryParams::parse(&ctx)?)?;
    let r = state
        .store
        .get(&ctx.tenant, &rt.name, &id, view.wants("members"))
        .await?
        .ok_or_else(|| ScimError::not_found(format!("{} {id} not found", rt.name)))?;
    let groups = render::user_groups(&state, &ctx, rt, &r.id).await?;
    let headers = render::resource_headers(&ctx, rt, &r, groups.as_deref(), false);
    let mut info = classify(&state.registry, &ctx.method, &ctx.path);
    info.target = render::target(rt, &r, Some(r.version), Some(r.version));
    if let Some(tag) = headers
        .get(header::ETAG)
        .filter(|t| t.to_str().is_ok_and(|t| none_match(&request_headers, t)))
    {
        // The client's copy is current (RFC 7232 §3.2): no body, the ETag repeated.
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(header::ETAG, tag.clone());
        resp.extensions_mut().insert(info);
        return Ok(resp);
    }
    let body = render::resource(&state, &ctx, rt, &r, groups.as_deref(), &view);
    let mut resp = (headers, body.to_string()).into_response();
    resp.extensions_mut().insert(info);
    Ok(resp)
}

pub async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(endpoint): Path<String>,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let params = ListParams::from_query(&QueryParams::parse(&ctx)?)?;
    run_list(&state, &ctx, rt, params).await
}

pub async fn search(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(endpoint): Path<String>,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let params = ListParams::from_body(&json_body(&ctx)?)?;
    run_list(&state, &ctx, rt, params).await
}

async fn run_list(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    p: ListParams,
) -> Result<Response, ApiError> {
    if let Some(f) = &p.filter {
        check_filter(&state.registry, rt, f)?;
    }
    check_sort(&state.registry, rt, p.sort.as_ref())?;
    let mut info: EventInfo = classify(&state.registry, &ctx.method, &ctx.path);
    info.target.resource_type = Some(rt.name.clone());
    if let Some(text) = &p.cursor {
        return cursor_page(state, ctx, rt, &p, text, info).await;
    }
    let (total, resources, _, _) =
        page_of(state, ctx, rt, &p, p.start_index, p.count, None).await?;
    Ok(list_response(
        total,
        Some(p.start_index),
        resources,
        None,
        info,
    ))
}

/// A page of a cursor-paged list (RFC 9865): from the start when the cursor is empty, else
/// from where the cursor says; `nextCursor` while results remain.
async fn cursor_page(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    p: &ListParams,
    text: &str,
    info: EventInfo,
) -> Result<Response, ApiError> {
    if p.start_given {
        return Err(ScimError::invalid_value(
            "'startIndex' and 'cursor' cannot be combined: page by one or the other",
        )
        .into());
    }
    let filter = p
        .filter
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let order = p
        .sort
        .as_ref()
        .map(|s| format!("{} {}", s.by, s.descending))
        .unwrap_or_default();
    let query = cursor::fingerprint(&[&ctx.tenant, &rt.name, &filter, &order]);
    let at = if text.trim().is_empty() {
        cursor::Cursor {
            position: match p.sort {
                None => cursor::Position::After(0),
                Some(_) => cursor::Position::Offset(0),
            },
            seen: 0,
        }
    } else {
        cursor::decode(&state.cursor_key, &query, text)?
    };
    let (start, after) = match at.position {
        cursor::Position::After(rid) => (1, Some(rid)),
        cursor::Position::Offset(o) => (o + 1, None),
    };
    // One more than the page: whether results remain, without counting on `totalResults`
    // (resources created or deleted between pages move it).
    let (total, mut resources, positions, cut) =
        page_of(state, ctx, rt, p, start, p.count + 1, after).await?;
    let more = resources.len() > p.count || cut;
    resources.truncate(p.count);
    let seen = at.seen + resources.len();
    let next = (more && !resources.is_empty()).then(|| {
        let position = match (at.position, positions.get(resources.len() - 1)) {
            (cursor::Position::After(_), Some(rid)) => cursor::Position::After(*rid),
            _ => cursor::Position::Offset(start - 1 + resources.len()),
        };
        cursor::encode(
            &state.cursor_key,
            &query,
            cursor::Cursor { position, seen },
            state.config.cursor_timeout.as_secs(),
        )
    });
    Ok(list_response(total, None, resources, next, info))
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 7232 §2.3.2) or is `*`.
fn none_match(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// `POST /.search`: one result list over every resource type, Users first.
pub async fn search_all(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let p = ListParams::from_body(&json_body(&ctx)?)?;
    if p.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursors page one resource type: use /Users/.search or /Groups/.search",
        )
        .into());
    }
    let mut skip = p.start_index - 1;
    let mut want = p.count;
    let mut total = 0;
    let mut resources = Vec::new();
    for rt in state.registry.resource_types() {
        if let Some(f) = &p.filter {
            check_filter(&state.registry, rt, f)?;
        }
        // Each resource type's part of the list is in `sortBy` order.
        check_sort(&state.registry, rt, p.sort.as_ref())?;
        let (t, _, _, _) = page_of(&state, &ctx, rt, &p, 1, 0, None).await?;
        total += t;
        if skip >= t {
            skip -= t;
            continue;
        }
        if want > 0 {
            let (_, items, _, cut) = page_of(&state, &ctx, rt, &p, skip + 1, want, None).await?;
            // A page cut at its byte budget ends here: the next one starts after it.
            want = if cut { 0 } else { want - items.len() };
            resources.extend(items);
        }
        skip = 0;
    }
    Ok(list_response(
        total,
        Some(p.start_index),
        resources,
        None,
        classify(&state.registry, &ctx.method, &ctx.path),
    ))
}

/// Total matches, one rendered page of a resource type, the position of each item, and
/// whether the page stopped short of `count` at the store's byte budget.
async fn page_of(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    p: &ListParams,
    start_index: usize,
    count: usize,
    after: Option<i64>,
) -> Result<(usize, Vec<Value>, Vec<i64>, bool), ApiError> {
    let query = ListQuery {
        resource_type: rt.name.clone(),
        filter: p.filter.clone(),
        start_index,
        count,
        with_members: p.view.wants("members"),
        sort: p.sort.clone(),
        after,
    };
    let page = state.store.list(&ctx.tenant, &query).await?;
    // Read even when the view leaves `groups` out: `meta.version` covers them.
    let mut groups = if rt.has_groups() && !page.items.is_empty() {
        let ids: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
        state.store.groups_of(&ctx.tenant, &ids).await?
    } else {
        Default::default()
    };
    let resources = page
        .items
        .iter()
        .map(|r| {
            let g = groups.remove(&r.id);
            render::resource(state, ctx, rt, r, g.as_deref(), &p.view)
        })
        .collect();
    Ok((page.total, resources, page.positions, page.cut))
}

fn list_response(
    total: usize,
    start_index: Option<usize>,
    resources: Vec<Value>,
    next_cursor: Option<String>,
    info: EventInfo,
) -> Response {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "itemsPerPage": resources.len(),
    });
    if let Some(o) = body.as_object_mut() {
        // A cursor-paged answer has no index (RFC 9865 §3.3).
        if let Some(s) = start_index {
            o.insert("startIndex".into(), s.into());
        }
        if let Some(c) = next_cursor {
            o.insert("nextCursor".into(), Value::String(c));
        }
        o.insert("Resources".into(), Value::Array(resources));
    }
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        body.to_string(),
    )
        .into_response();
    resp.extensions_mut().insert(info);
    resp
}
