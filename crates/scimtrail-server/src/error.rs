//! The one place where failures become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use scimtrail_core::ScimError;
use scimtrail_store::StoreError;

pub const SCIM_JSON: &str = "application/scim+json";

/// An error answer. `Scim` carries the SCIM error body; the error itself also travels in the
/// response extensions so the audit middleware can record `scimType` and `detail`.
#[derive(Debug)]
pub enum ApiError {
    Scim(ScimError),
    Plain(StatusCode, &'static str),
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError::Scim(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Scim(store_error(e))
    }
}

pub fn store_error(e: StoreError) -> ScimError {
    match e {
        StoreError::NotFound => ScimError::not_found("resource not found"),
        StoreError::VersionConflict { current } => ScimError::precondition_failed(format!(
            "the resource was modified; its current version is W/\"{current}\""
        )),
        StoreError::Uniqueness(d) => ScimError::uniqueness(d),
        StoreError::InvalidQuery(d) => ScimError::invalid_filter(d),
        StoreError::TooMany(d) => ScimError::too_many(d),
        StoreError::OutOfRange(d) => ScimError::invalid_value(d),
        StoreError::Backend(d) => {
            tracing::error!(error = %d, "store failure");
            ScimError::unavailable("the store is unavailable; the request was not applied")
        }
    }
}

pub fn scim_response(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, e.to_json().to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if e.status == 401 {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scimtrail\""),
        );
    }
    resp.extensions_mut().insert(e.clone());
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Scim(e) => scim_response(&e),
            ApiError::Plain(status, text) => (status, text).into_response(),
        }
    }
}

pub async fn not_found() -> ApiError {
    ScimError::not_found("no such endpoint").into()
}

pub async fn method_not_allowed() -> ApiError {
    ScimError::method_not_allowed("method not allowed on this endpoint").into()
}

/// `axum::extract::Path` whose rejection is a SCIM error (a path segment that is not valid
/// UTF-8, say) rather than axum's plain-text answer.
pub struct Path<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(ScimError::invalid_syntax(e.body_text()).into()),
        }
    }
}
