//! `POST /Bulk` (RFC 7644 §3.7). Each operation runs through the handler that serves it alone
//! (POST, PUT, PATCH, DELETE), with the Bulk request's actor, and gets an audit event of its
//! own whose `parentId` is the Bulk's event. Operations run one at a time, each after those
//! whose `bulkId`s it refers to; every one commits on its own, as a request of its own would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::{FuturesUnordered, StreamExt};
use scimtrail_audit::Payload;
use scimtrail_core::bulk::{
    bulk_ref, parse_bulk, schedule, substitute, BulkMethod, BulkOperation, BULK_RESPONSE_SCHEMA,
};
use scimtrail_core::ScimError;
use serde_json::{json, Map, Value};

use super::params::{cpu, parse_body};
use super::{update, write};
use crate::context::{classify, EventId, EventInfo};
use crate::error::{scim_response, ApiError, Path, SCIM_JSON};
use crate::record::{buffer, settle};
use crate::{AppState, Ctx};

/// The path of the Bulk endpoint, as the middleware sees it.
pub fn is_bulk_path(path: &str) -> bool {
    path == "/scim/v2/Bulk"
}

pub async fn bulk(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let body = parse_body(&ctx).await?;
    let max = state.config.bulk_max_operations;
    let req = cpu(ctx.body.len(), move || parse_bulk(&body, max)).await?;
    // The Bulk's event is appended last, with the response; its id is fixed now so that each
    // operation's event can name it.
    let event_id = uuid::Uuid::now_v7().to_string();
    let total = req.operations.len();
    let mut t = Tally {
        results: vec![None; total],
        failed_ops: vec![false; total],
        done: vec![false; total],
        ids: HashMap::new(),
        ok: 0,
        failed: 0,
    };
    let mut stopped = false;
    let mut running = FuturesUnordered::new();
    // With failOnErrors, one at a time: nothing may run after the error that reaches it.
    let window = if req.fail_on_errors.is_some() {
        1
    } else {
        IN_FLIGHT
    };
    for step in schedule(&req.operations) {
        let op = &req.operations[step.index];
        let mut waits: Vec<usize> = step.after.iter().map(|(j, _)| *j).collect();
        waits.extend(&step.follows);
        let alone = step.alone;
        loop {
            let blocked = waits.iter().any(|j| !t.done[*j]);
            if !(blocked || (alone && !running.is_empty()) || running.len() >= window) {
                break;
            }
            let Some((i, result)) = running.next().await else {
                break;
            };
            t.record(&req.operations[i], i, result);
        }
        if req.fail_on_errors.is_some_and(|limit| t.failed >= limit) {
            stopped = true;
            break;
        }
        // An operation whose references cannot be resolved fails without running: it cannot be
        // sent on with a `bulkId:` in place of an id.
        let blocked = step.error.or_else(|| op.error.clone()).or_else(|| {
            step.after
                .iter()
                .find(|(j, _)| t.failed_ops[*j])
                .map(|(j, b)| {
                    ScimError::conflict(format!(
                        "operation {j}, which creates bulkId '{b}', failed; this one refers to it"
                    ))
                })
        });
        let id = op
            .id
            .as_ref()
            .map(|i| bulk_ref(i).and_then(|b| t.ids.get(b)).unwrap_or(i).clone());
        let mut data = op.data.clone();
        if let Some(d) = data.as_mut() {
            substitute(d, &t.ids);
        }
        let (state, ctx, event_id) = (&state, &ctx, &event_id);
        let index = step.index;
        running.push(async move {
            (
                index,
                run(state, ctx, event_id, op, blocked, id, data).await,
            )
        });
        if alone {
            if let Some((i, result)) = running.next().await {
                t.record(&req.operations[i], i, result);
            }
        }
    }
    // Operations already running when failOnErrors was reached finish and are reported.
    while let Some((i, result)) = running.next().await {
        t.record(&req.operations[i], i, result);
    }
    drop(running);
    let (ok, failed) = (t.ok, t.failed);
    let skipped = total - ok - failed;
    let body = json!({
        "schemas": [BULK_RESPONSE_SCHEMA],
        "Operations": t.results.into_iter().flatten().collect::<Vec<_>>(),
    });
    let mut detail = format!("{total} operations: {ok} succeeded, {failed} failed");
    if stopped {
        detail.push_str(&format!(
            "; {skipped} not run, failOnErrors {} reached",
            req.fail_on_errors.unwrap_or_default()
        ));
    }
    let text = cpu(total * 256, move || Ok(body.to_string())).await?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        text,
    )
        .into_response();
    resp.extensions_mut().insert(EventInfo {
        detail: Some(detail),
        ..classify(&state.registry, "POST", "/scim/v2/Bulk")
    });
    resp.extensions_mut().insert(EventId(event_id));
    Ok(resp)
}

/// Operations of one Bulk request running at once. The writer commits those that are ready
/// together (group commit), so an import runs at the speed of concurrent clients, while each
/// operation still waits for the ones it refers to and for earlier ones on its resource.
const IN_FLIGHT: usize = 32;

/// What the run has done so far.
struct Tally {
    /// Each operation's response entry, in the order sent.
    results: Vec<Option<Value>>,
    failed_ops: Vec<bool>,
    done: Vec<bool>,
    /// The id each bulkId was given.
    ids: HashMap<String, String>,
    ok: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, op: &BulkOperation, index: usize, result: Outcome) {
        if result.status < 400 {
            self.ok += 1;
            if let (Some(BulkMethod::Post), Some(b), Some(id)) =
                (op.method, &op.bulk_id, &result.id)
            {
                self.ids.insert(b.clone(), id.clone());
            }
        } else {
            self.failed += 1;
            self.failed_ops[index] = true;
        }
        self.done[index] = true;
        self.results[index] = Some(result.entry);
    }
}

/// One operation's place in the BulkResponse.
struct Outcome {
    status: u16,
    /// The id of what it created or changed.
    id: Option<String>,
    entry: Value,
}

/// Run one operation (or record why it cannot run) and answer its BulkResponse entry.
async fn run(
    state: &AppState,
    parent: &Ctx,
    parent_id: &str,
    op: &BulkOperation,
    blocked: Option<ScimError>,
    id: Option<String>,
    data: Option<Value>,
) -> Outcome {
    let path = match &id {
        Some(i) => format!("/scim/v2/{}/{i}", op.endpoint),
        None => format!("/scim/v2/{}", op.endpoint),
    };
    let body = data
        .as_ref()
        .map(|d| d.to_string().into_bytes())
        .unwrap_or_default();
    let (captured, truncated) = state.redactor.capture(&body, state.config.audit_body_cap);
    let mut headers = HeaderMap::new();
    let mut logged_headers = Map::new();
    if let Some(v) = op.version.as_deref() {
        if let Ok(hv) = HeaderValue::from_str(v) {
            headers.insert(header::IF_MATCH, hv);
            logged_headers.insert("if-match".into(), Value::String(v.to_string()));
        }
    }
    let ctx = Arc::new(Ctx {
        request_id: parent.request_id.clone(),
        started: Instant::now(),
        tenant: parent.tenant.clone(),
        method: op.method_text.clone(),
        path: state.redactor.path(&path),
        query: None,
        raw_query: None,
        actor: parent.actor.clone(),
        scopes: parent.scopes.clone(),
        request: Payload {
            headers: logged_headers,
            body: captured,
            truncated,
        },
        body: body.into(),
        scim_base: parent.scim_base.clone(),
        parent_id: Some(parent_id.to_string()),
    });
    // One operation is no larger than a request of its own may be.
    let limit = state.config.max_body_bytes;
    let blocked = blocked.or_else(|| {
        (ctx.body.len() > limit).then(|| {
            ScimError::payload_too_large(format!(
                "the operation's data exceeds {limit} bytes, the limit of one request"
            ))
        })
    });
    let resp = match (blocked, op.method, id.clone()) {
        (Some(e), _, _) => scim_response(&e),
        (None, Some(BulkMethod::Post), _) => write::create(
            State(state.clone()),
            Extension(ctx.clone()),
            Path(op.endpoint.clone()),
        )
        .await
        .into_response(),
        (None, Some(m), Some(id)) => {
            let (s, c, p) = (
                State(state.clone()),
                Extension(ctx.clone()),
                Path((op.endpoint.clone(), id)),
            );
            match m {
                BulkMethod::Put => update::replace(s, c, p, headers).await,
                BulkMethod::Patch => update::patch(s, c, p, headers).await,
                _ => write::delete(s, c, p, headers).await,
            }
            .into_response()
        }
        (None, _, _) => scim_response(&ScimError::internal("operation without a method")),
    };
    let (parts, body) = resp.into_parts();
    let bytes = buffer(body).await;
    let mut info = parts
        .extensions
        .get::<EventInfo>()
        .cloned()
        .unwrap_or_else(|| classify(&state.registry, &ctx.method, &ctx.path));
    if info.action == "bulk" {
        // An operation naming `/Bulk` (refused): only the Bulk itself is a `bulk` event.
        info.action = "request".into();
        info.scim = None;
    }
    // Settled: its event is in the log (or, if it could not be appended, the answer is 503).
    let (parts, body) = settle(state, &ctx, parts, bytes, info).await.into_parts();
    let bytes = buffer(body).await;
    let status = parts.status.as_u16();
    let header_of = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut entry = Map::new();
    entry.insert("method".into(), Value::String(op.method_text.clone()));
    if let Some(b) = &op.bulk_id {
        entry.insert("bulkId".into(), Value::String(b.clone()));
    }
    let location = header_of(header::LOCATION).or_else(|| {
        id.as_ref()
            .map(|id| format!("{}/{}/{id}", ctx.scim_base, op.endpoint))
    });
    if let Some(l) = &location {
        entry.insert("location".into(), Value::String(l.clone()));
    }
    if let Some(v) = header_of(header::ETAG) {
        entry.insert("version".into(), Value::String(v));
    }
    entry.insert("status".into(), Value::String(status.to_string()));
    if status >= 400 {
        // RFC 7644 §3.7.3: a failed operation carries its error response.
        let err = serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.to_string(),
            })
        });
        entry.insert("response".into(), err);
    }
    let created = (status < 400)
        .then(|| {
            location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_string)
        })
        .flatten();
    Outcome {
        status,
        id: created.or(id),
        entry: Value::Object(entry),
    }
}
