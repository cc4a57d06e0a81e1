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
use super::render;
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
    let mut info = classify(&ctx.method, &ctx.path);
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
    let (total, resources) = page_of(state, ctx, rt, &p, p.start_index, p.count).await?;
    let mut info: EventInfo = classify(&ctx.method, &ctx.path);
    info.target.resource_type = Some(rt.name.clone());
    Ok(list_response(total, p.start_index, resources, info))
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
        let (t, _) = page_of(&state, &ctx, rt, &p, 1, 0).await?;
        total += t;
        if skip >= t {
            skip -= t;
            continue;
        }
        if want > 0 {
            let (_, items) = page_of(&state, &ctx, rt, &p, skip + 1, want).await?;
            want -= items.len();
            resources.extend(items);
        }
        skip = 0;
    }
    Ok(list_response(
        total,
        p.start_index,
        resources,
        classify(&ctx.method, &ctx.path),
    ))
}

/// Total matches and one rendered page of a resource type.
async fn page_of(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    p: &ListParams,
    start_index: usize,
    count: usize,
) -> Result<(usize, Vec<Value>), ApiError> {
    let query = ListQuery {
        resource_type: rt.name.clone(),
        filter: p.filter.clone(),
        start_index,
        count,
        with_members: p.view.wants("members"),
        sort: p.sort.clone(),
    };
    let page = state.store.list(&ctx.tenant, &query).await?;
    // Read even when the view leaves `groups` out: `meta.version` covers them.
    let mut groups = if rt.name == "User" && !page.items.is_empty() {
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
    Ok((page.total, resources))
}

fn list_response(
    total: usize,
    start_index: usize,
    resources: Vec<Value>,
    info: EventInfo,
) -> Response {
    let body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        body.to_string(),
    )
        .into_response();
    resp.extensions_mut().insert(info);
    resp
}
