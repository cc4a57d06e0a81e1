//! `GET /audit/v1/stream`: the live tail of the log as server-sent events.
//!
//! Each SSE event is one audit event, its SSE `id` the event's `seq`. The stream starts after
//! `Last-Event-ID` (what a reconnecting `EventSource` sends), else after `after`, else at the
//! end of the log. It reads the log in ascending `seq` pages bounded by the store's scan
//! budget, each page also bounded by the log size read before it, so a reconnect resumes
//! exactly where the last delivered event was: nothing missed, nothing twice. When it has
//! caught up it sleeps until the store reports a commit (or, for other processes' commits, a
//! few seconds pass), and it ends when the server begins to shut down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use scimtrail_core::{Filter, ScimError};
use scimtrail_store::EventQuery;
use serde_json::Value;

use crate::error::ApiError;
use crate::scim::QueryParams;
use crate::{AppState, Ctx};

/// Events read per page while catching up.
const PAGE: usize = 200;

/// Marks a response whose body is a stream: the audit middleware records the request when the
/// stream starts and passes the body through unbuffered.
#[derive(Clone, Copy, Debug)]
pub struct Streaming;

fn start_after(q: &QueryParams, headers: &HeaderMap) -> Result<Option<u64>, ScimError> {
    let bad = |what: &str| ScimError::invalid_value(format!("'{what}' must be an event seq"));
    if let Some(v) = headers.get("last-event-id") {
        let v = v.to_str().map_err(|_| bad("Last-Event-ID"))?.trim();
        if !v.is_empty() {
            return v.parse().map(Some).map_err(|_| bad("Last-Event-ID"));
        }
    }
    match q.get("after").map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => a.parse().map(Some).map_err(|_| bad("after")),
        None => Ok(None),
    }
}

struct Tail {
    state: AppState,
    tenant: String,
    filter: Option<Filter>,
    /// The last `seq` examined (delivered or not); `None` before the first event of the log.
    cursor: Option<u64>,
    ready: VecDeque<Value>,
    size: tokio::sync::watch::Receiver<u64>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Tail {
    /// Read the next page of what is committed now. `Ok(false)` when caught up.
    async fn fill(&mut self) -> Result<bool, String> {
        let size = self
            .state
            .store
            .tree_size()
            .await
            .map_err(|e| e.to_string())?;
        let start = self.cursor.map_or(0, |c| c + 1);
        if start >= size {
            return Ok(false);
        }
        // Only up to the size just read: a page never ends inside what it could not see.
        let upto = Filter::parse(&format!("seq lt {size}")).map_err(|e| e.detail)?;
        let filter = match self.filter.clone() {
            Some(f) => Filter::And(Box::new(f), Box::new(upto)),
            None => upto,
        };
        let page = self
            .state
            .store
            .events(
                &self.tenant,
                &EventQuery {
                    filter: Some(filter),
                    count: PAGE,
                    after_seq: self.cursor,
                    ascending: true,
                    unbounded: true,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.ready.extend(page.items);
        // Where the page ended: its cursor, else everything below `size` was examined.
        self.cursor = Some(page.next_seq.unwrap_or(size - 1));
        Ok(true)
    }

    /// The next SSE event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(e) = self.ready.pop_front() {
                let seq = e["seq"].as_u64().unwrap_or_default();
                return Some(
                    Event::default()
                        .id(seq.to_string())
                        .event("audit")
                        .data(e.to_string()),
                );
            }
            match self.fill().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "live tail: cannot read the log");
                    return Some(
                        Event::default()
                            .event("error")
                            .data("the log cannot be read"),
                    );
                }
            }
            tokio::select! {
                _ = self.size.changed() => {}
                _ = self.closing.changed() => {}
                _ = tokio::time::sleep(self.state.config.tail_poll) => {}
            }
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let filter = crate::audit_api::event_filter(&state, &q)?;
    let size = state.store.log_size();
    let cursor = match start_after(&q, &headers)? {
        Some(a) => Some(a),
        None => state.store.tree_size().await?.checked_sub(1),
    };
    // A filter the store cannot run is refused now, as a 400, not inside the stream.
    state
        .store
        .events(
            &ctx.tenant,
            &EventQuery {
                filter: filter.clone(),
                count: 1,
                after_seq: cursor,
                ascending: true,
                unbounded: true,
            },
        )
        .await?;
    let tail = Tail {
        closing: state.closing.subscribe(),
        state,
        tenant: ctx.tenant.clone(),
        filter,
        cursor,
        ready: VecDeque::new(),
        size,
    };
    let events = futures_util::stream::unfold(tail, |mut t| async move {
        t.next().await.map(|e| (Ok::<_, Infallible>(e), t))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    resp.extensions_mut().insert(Streaming);
    Ok(resp)
}
