//! SCIM 2.0 endpoints under `/scim/v2`.

mod bulk;
mod cursor;
mod discovery;
mod member_patch;
pub(crate) mod members;
pub(crate) mod params;
mod read;
pub(crate) mod render;
mod update;
mod write;

use axum::routing::{get, post};
use axum::Router;

use crate::error::method_not_allowed;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/.search", post(read::search_all))
        .route("/Bulk", post(bulk::bulk))
        .route("/{rt}", get(read::list).post(write::create))
        .route("/{rt}/.search", post(read::search))
        .route(
            "/{rt}/{id}",
            get(read::get_one)
                .put(update::replace)
                .patch(update::patch)
                .delete(write::delete),
        )
        .method_not_allowed_fallback(method_not_allowed)
}
pub(crate) use bulk::is_bulk_path;
pub use cursor::CURSOR_TIMEOUT_SECS;
pub(crate) use params::QueryParams;
pub(crate) use write::now as write_now;
