//! `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`: exactly what is implemented.

use std::sync::Arc;

use axum::extract::State;

use crate::error::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use scimtrail_core::schema::LIST_RESPONSE_SCHEMA;
use scimtrail_core::ScimError;
use serde_json::{json, Value};

use super::params::MAX_RESULTS;
use crate::error::{ApiError, SCIM_JSON};
use crate::{AppState, Ctx};

fn scim_json(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        v.to_string(),
    )
        .into_response()
}

fn list(items: Vec<Value>) -> Response {
    scim_json(json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    }))
}

fn by_id(items: Vec<Value>, id: &str, what: &str) -> Result<Response, ApiError> {
    items
        .into_iter()
        .find(|v| {
            v.get("id")
                .and_then(Value::as_str)
                .is_some_and(|i| i.eq_ignore_ascii_case(id))
        })
        .map(scim_json)
        .ok_or_else(|| ScimError::not_found(format!("unknown {what} '{id}'")).into())
}

pub async fn service_provider_config(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    scim_json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": state.config.bulk_max_operations,
            "maxPayloadSize": state.config.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        // RFC 9865 §4.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": super::params::DEFAULT_COUNT,
            "maxPageSize": MAX_RESULTS,
            "cursorTimeout": state.config.cursor_timeout.as_secs(),
        },
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "Authentication with a scimtrail API token in the Authorization header",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", ctx.scim_base)
        }
    }))
}

pub async fn schemas(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    list(state.registry.schemas_json(&ctx.scim_base))
}

pub async fn schema(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    by_id(state.registry.schemas_json(&ctx.scim_base), &id, "schema")
}

pub async fn resource_types(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Response {
    list(state.registry.resource_types_json(&ctx.scim_base))
}

pub async fn resource_type(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    by_id(
        state.registry.resource_types_json(&ctx.scim_base),
        &id,
        "resource type",
    )
}
