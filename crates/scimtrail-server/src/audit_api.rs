//! The audit API under `/audit/v1`: read the log.

use std::sync::Arc;

use axum::extract::State;

use crate::error::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use scimtrail_core::schema::LIST_RESPONSE_SCHEMA;
use scimtrail_core::{Filter, ScimError};
use scimtrail_store::EventQuery;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::scim::QueryParams;
use crate::{history, restore, transparency};
use crate::{AppState, Ctx};

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(events))
        .route("/events/{id}", get(event))
        .route("/requests/{request_id}", get(trace))
        .route("/stream", get(crate::tail::stream))
        .route("/events/{id}/proof", get(transparency::proof))
        .route("/events/{id}/leaf", get(transparency::leaf))
        .route("/checkpoint", get(transparency::checkpoint))
        .route("/checkpoints", get(transparency::checkpoints))
        .route("/consistency", get(transparency::consistency))
        .route("/log-key", get(transparency::log_key))
        .route("/resources/{rt}/{id}/versions", get(history::versions))
        .route("/resources/{rt}/{id}/versions/{n}", get(history::version))
        .route("/resources/{rt}/{id}/diff", get(history::version_diff))
        .route("/resources/{rt}/{id}/restore", post(restore::restore))
        .route("/revert", post(restore::revert))
        .method_not_allowed_fallback(crate::error::method_not_allowed)
}

pub(crate) fn json_response(v: Value) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        v.to_string(),
    )
        .into_response()
}

/// Cursors are opaque to clients: base64url of the last `seq` seen.
fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_cursor(c: &str) -> Result<u64, ScimError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ScimError::invalid_value("the cursor is not valid"))
}

async fn events(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let filter = match q.get("filter").map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            let f = Filter::parse(f)?;
            f.check_terms(state.registry.max_filter_terms())?;
            Some(f)
        }
        None => None,
    };
    let count = q.count(DEFAULT_COUNT, MAX_COUNT)?;
    let ascending = match q.get("sortOrder").map(str::to_ascii_lowercase).as_deref() {
        None | Some("descending") => false,
        Some("ascending") => true,
        Some(_) => {
            return Err(ScimError::invalid_value("'sortOrder' is ascending or descending").into())
        }
    };
    let after_seq = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let page = state
        .store
        .events(
            &ctx.tenant,
            &EventQuery {
                filter,
                count,
                after_seq,
                ascending,
                unbounded: false,
            },
        )
        .await?;
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "itemsPerPage": page.items.len(),
        "Resources": page.items,
    });
    if let (Some(seq), Some(obj)) = (page.next_seq, body.as_object_mut()) {
        obj.insert("nextCursor".into(), Value::String(encode_cursor(seq)));
    }
    Ok(json_response(body))
}

/// `GET /requests/{requestId}`: every event of one request, in log order — a request and its
/// child events (a delete and its groups, a revert and its resources). Paged like `/events`.
async fn trace(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(request_id): Path<String>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let count = q.count(MAX_COUNT, MAX_COUNT)?;
    let after_seq = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let filter = Filter::parse(&format!(
        "requestId eq {}",
        Value::String(request_id.clone())
    ))?;
    let page = state
        .store
        .events(
            &ctx.tenant,
            &EventQuery {
                filter: Some(filter),
                count,
                after_seq,
                ascending: true,
                unbounded: false,
            },
        )
        .await?;
    if page.items.is_empty() && after_seq.is_none() {
        return Err(ScimError::not_found(format!("no event has requestId {request_id}")).into());
    }
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "requestId": request_id,
        "itemsPerPage": page.items.len(),
        "Resources": page.items,
    });
    if let (Some(seq), Some(obj)) = (page.next_seq, body.as_object_mut()) {
        obj.insert("nextCursor".into(), Value::String(encode_cursor(seq)));
    }
    Ok(json_response(body))
}

async fn event(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .store
        .event(&ctx.tenant, &id)
        .await?
        .map(json_response)
        .ok_or_else(|| ScimError::not_found(format!("audit event {id} not found")).into())
}
