//! The audit middleware: every request (but health checks) leaves exactly one event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scimtrail_audit::{Actor, Payload, ACTOR_ANONYMOUS, ACTOR_TOKEN};
use scimtrail_core::ScimError;

use crate::auth::{bearer, hash_token};
use crate::context::{classify, detect_client, Ctx, EventInfo, Recorded};
use crate::error::{scim_response, store_error};
use crate::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// A client's request id is kept when it is short and plain; otherwise a UUIDv7 replaces it.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/=+".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Give a response that is not audited its own request id.
pub async fn tag_request_id(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// What the client sent as `X-Request-Id`, cut and escaped: the event's headers show what was
/// sent, without carrying arbitrary bytes, even when the server replaced the id.
#[derive(Clone)]
struct ClientRequestId(Option<String>);

fn escaped_request_id(v: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(v.as_bytes());
    let mut out: String = text
        .chars()
        .take(128)
        .flat_map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                vec![c]
            } else {
                format!("\\u{{{:x}}}", c as u32).chars().collect()
            }
        })
        .collect();
    if text.chars().count() > 128 {
        out.push_str("...");
    }
    out
}

pub async fn record(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // The id is fixed here so that even a request whose handler fails unexpectedly is recorded
    // under the id its response carries.
    let rid = request_id(req.headers());
    let sent = req.headers().get(REQUEST_ID).map(escaped_request_id);
    req.extensions_mut().insert(ClientRequestId(sent));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    let (method, path) = (
        req.method().to_string(),
        state.redactor.path(req.uri().path()),
    );
    // Run in a task of its own: if the client goes away, the request still completes and is
    // recorded instead of being dropped half-way.
    let task = tokio::spawn(handle(state.clone(), rid.clone(), req, next));
    match task.await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, request_id = %rid, "request task failed");
            let err = ScimError::internal("internal error; the request may not have been applied");
            let ctx = Ctx {
                request_id: rid.clone(),
                started: Instant::now(),
                tenant: state.config.tenant.clone(),
                method: method.clone(),
                path: path.clone(),
                query: None,
                raw_query: None,
                actor: Actor {
                    kind: ACTOR_ANONYMOUS.into(),
                    ..Default::default()
                },
                scopes: vec![],
                request: Payload::default(),
                body: Bytes::new(),
                scim_base: String::new(),
                parent_id: None,
            };
            finish(
                &state,
                &ctx,
                scim_response(&err),
                Some(classify(&state.registry, &method, &path)),
            )
            .await
        }
    }
}

async fn handle(state: AppState, rid: String, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let mut headers = state.redactor.headers(
        parts
            .headers
            .iter()
            .filter(|(k, _)| k.as_str() != REQUEST_ID)
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    // The event's `requestId` is the server's; the headers show only what the client sent.
    let client_rid = parts
        .extensions
        .get::<ClientRequestId>()
        .and_then(|c| c.0.clone());
    if let Some(v) = client_rid {
        headers.insert(REQUEST_ID.into(), serde_json::Value::String(v));
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let base = state
        .config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{host}"));
    let mut ctx = Ctx {
        request_id: rid.clone(),
        started,
        tenant: state.config.tenant.clone(),
        method: parts.method.to_string(),
        // `;jsessionid=…` and the like never reach the log.
        path: state.redactor.path(parts.uri.path()),
        // Credentials in the query (`access_token=…`) and filters naming a secret are not kept.
        raw_query: parts.uri.query().map(str::to_string),
        query: parts.uri.query().map(|q| state.redactor.query(q)),
        actor: Actor {
            kind: ACTOR_ANONYMOUS.into(),
            client: ua.as_deref().and_then(detect_client).map(str::to_string),
            ip,
            user_agent: ua,
            ..Default::default()
        },
        scopes: vec![],
        request: Payload {
            headers,
            body: serde_json::Value::Null,
            truncated: false,
        },
        body: Bytes::new(),
        scim_base: format!("{}/scim/v2", base.trim_end_matches('/')),
        parent_id: None,
    };

    // A `/Bulk` request carries many resources: it has a limit of its own (RFC 7644 §3.7.4).
    let limit = if crate::scim::is_bulk_path(&ctx.path) {
        state.config.bulk_max_payload_bytes
    } else {
        state.config.max_body_bytes
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ScimError::payload_too_large(if limit == state.config.max_body_bytes {
            format!("the request body exceeds {limit} bytes")
        } else {
            format!("the Bulk request exceeds maxPayloadSize ({limit} bytes)")
        })
    };
    let read = async {
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        match tokio::time::timeout(
            state.config.body_read_timeout,
            axum::body::to_bytes(body, limit),
        )
        .await
        {
            Err(_) => Err(ScimError::new(
                408,
                None,
                "the request body did not arrive in time",
            )),
            Ok(Err(e)) if e.to_string().contains("length limit") => Err(too_large()),
            Ok(Err(_)) => Err(ScimError::invalid_syntax(
                "the request body could not be read",
            )),
            Ok(Ok(bytes)) => Ok(bytes),
        }
    };
    let response = match read.await {
        Err(e) => {
            ctx.request.truncated = e.status == 413;
            Err(e)
        }
        Ok(bytes) => {
            let (b, truncated) = state.redactor.capture(&bytes, state.config.audit_body_cap);
            ctx.request.body = b;
            ctx.request.truncated = truncated;
            ctx.body = bytes;
            match parts.extensions.get::<Operator>() {
                Some(Operator(name)) => {
                    ctx.actor.kind = scimtrail_audit::ACTOR_OPERATOR.into();
                    ctx.actor.name = Some(name.clone());
                    ctx.scopes = crate::auth::ADMIN_SCOPES
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    Ok(())
                }
                None => authenticate(&state, &parts.headers, &mut ctx).await,
            }
        }
    };
    let resp = match response {
        Err(e) => {
            let mut info = classify(&state.registry, &ctx.method, &ctx.path);
            if e.status == 401 || e.detail.contains("Authorization header") {
                // Past the rate for its address, a failure is answered 429 and only counted:
                // a summary event records how many there were.
                let ip = ctx.actor.ip.as_deref().and_then(|i| i.parse().ok());
                if let Some(ip) = ip.filter(|ip| !state.auth_failures.admit(*ip)) {
                    let secs = state.auth_failures.retry_after(ip);
                    let mut resp = scim_response(&ScimError::new(
                        429,
                        None,
                        "too many failed authentications from this address; retry later",
                    ));
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                        resp.headers_mut().insert(REQUEST_ID, v);
                    }
                    return resp;
                }
                info.action = "auth.failure".into();
                // Anyone can send these: keep the body's digest and size, never the body.
                if !ctx.body.is_empty() {
                    ctx.request.body = serde_json::json!({
                        "omitted": "unauthenticated request",
                        "sha256": hex_sha256(&ctx.body),
                        "size": ctx.body.len(),
                    });
                    ctx.request.truncated = false;
                }
            }
            return finish(&state, &ctx, scim_response(&e), Some(info)).await;
        }
        Ok(()) => {
            let ctx = Arc::new(ctx.clone());
            parts.extensions.insert(ctx);
            next.run(Request::from_parts(parts, Body::empty())).await
        }
    };
    finish(&state, &ctx, resp, None).await
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An operator acting from the command line on this machine: set only by an in-process caller
/// (`scimtrail history|restore|revert`), never from the network, so the request takes the API's
/// whole path — handlers, checks, events — with actor kind `operator` instead of a token.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// Resolve the bearer token into the actor, or answer 401/403.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &mut Ctx,
) -> Result<(), ScimError> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(ScimError::invalid_syntax(
            "more than one Authorization header; send exactly one",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or_else(|| ScimError::unauthorized("a bearer token is required"))?;
    let info = state
        .store
        .find_token(&hash_token(token))
        .await
        .map_err(store_error)?
        .ok_or_else(|| ScimError::unauthorized("the bearer token is not valid"))?;
    ctx.actor.kind = ACTOR_TOKEN.into();
    ctx.actor.id = Some(info.id);
    ctx.actor.name = Some(info.name);
    ctx.scopes = info.scopes;
    let needed = if ctx.path.starts_with("/audit/") {
        "audit:read"
    } else {
        "scim"
    };
    if !ctx.scopes.iter().any(|s| s == needed || s == "audit:admin") {
        return Err(ScimError::forbidden(format!(
            "the token lacks the '{needed}' scope"
        )));
    }
    Ok(())
}

/// Record the event unless the handler committed it with a write, then tag the response.
async fn finish(state: &AppState, ctx: &Ctx, resp: Response, info: Option<EventInfo>) -> Response {
    let (parts, body) = resp.into_parts();
    let info = |parts: &axum::http::response::Parts| {
        info.or_else(|| parts.extensions.get::<EventInfo>().cloned())
            .unwrap_or_else(|| classify(&state.registry, &ctx.method, &ctx.path))
    };
    let mut out = if parts.extensions.get::<crate::tail::Streaming>().is_some() {
        // A live tail: recorded as it starts (who followed the log, with which filter), its
        // body passed through as it is produced.
        let mut payload = response_payload(state, &parts.headers, &[]);
        payload.body = serde_json::json!({"omitted": "event stream"});
        let event = ctx.event(state, info(&parts), parts.status.as_u16(), None, payload);
        answer_once_recorded(state, ctx, event, Response::from_parts(parts, body)).await
    } else {
        let unrecorded_read = !state.config.record_reads
            && parts.status.as_u16() < 400
            && (matches!(ctx.method.as_str(), "GET" | "HEAD")
                || (ctx.method == "POST" && ctx.path.ends_with("/.search")));
        let bytes = buffer(body).await;
        if unrecorded_read {
            // A successful read that the policy leaves out.
            Response::from_parts(parts, Body::from(bytes))
        } else {
            let info = info(&parts);
            settle(state, ctx, parts, bytes, info).await
        }
    };
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        out.headers_mut().insert(REQUEST_ID, v);
    }
    state.metrics.request(
        crate::metrics::route_of(&ctx.method, &ctx.path),
        out.status().as_u16(),
        ctx.started.elapsed().as_secs_f64(),
    );
    tracing::info!(
        request_id = %ctx.request_id,
        method = %ctx.method,
        path = %ctx.path,
        status = out.status().as_u16(),
        latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    out.into_response()
}

/// A response body in memory.
pub(crate) async fn buffer(body: Body) -> Bytes {
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot buffer response");
            Bytes::new()
        }
    }
}

/// A handler's response, once its event is in the log: appended now from the response
/// (and `info`), unless the handler committed it with its write.
pub(crate) async fn settle(
    state: &AppState,
    ctx: &Ctx,
    parts: axum::http::response::Parts,
    bytes: Bytes,
    info: EventInfo,
) -> Response {
    if parts.extensions.get::<Recorded>().is_some() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let error = parts.extensions.get::<ScimError>().cloned();
    let mut payload = response_payload(state, &parts.headers, &bytes);
    if ctx.path.starts_with("/audit/") && parts.status.is_success() {
        // Reading the log is recorded (who read what), but the events read are not copied
        // into the log again: a SIEM polling it would otherwise grow it without end.
        payload.body = serde_json::json!({"omitted": "audit log content", "bytes": bytes.len()});
        payload.truncated = false;
    }
    let status = parts.status.as_u16();
    let mut event = ctx.event(state, info, status, error.as_ref(), payload);
    if let Some(crate::context::EventId(id)) = parts.extensions.get() {
        event.id = id.clone();
    }
    let answer = Response::from_parts(parts, Body::from(bytes));
    answer_once_recorded(state, ctx, event, answer).await
}

/// `answer`, once `event` is in the log; 503 and nothing else if it cannot be appended.
async fn answer_once_recorded(
    state: &AppState,
    ctx: &Ctx,
    event: scimtrail_audit::AuditEvent,
    answer: Response,
) -> Response {
    match state.store.append_event(event).await {
        Ok(_) => answer,
        Err(e) => {
            tracing::error!(error = %e, request_id = %ctx.request_id, "audit append failed");
            scim_response(&ScimError::unavailable(
                "the audit log is unavailable; the request was not answered",
            ))
        }
    }
}

/// Every few seconds, and once more at shutdown: one `auth.failure.suppressed` event per
/// address whose failed authentications went past the rate in its last minute.
pub async fn summarise_floods(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => false,
            _ = stop.changed() => true,
        };
        for (ip, suppressed, total) in state.auth_failures.drain_due(stopping) {
            let mut info = classify(&state.registry, "", "");
            info.action = "auth.failure.suppressed".into();
            info.detail = Some(format!(
                "{suppressed} of {total} failed authentications from {ip} in one minute were answered 429 and not recorded one by one"
            ));
            let ctx = Ctx {
                request_id: uuid::Uuid::now_v7().to_string(),
                started: Instant::now(),
                tenant: state.config.tenant.clone(),
                method: String::new(),
                path: String::new(),
                query: None,
                raw_query: None,
                actor: Actor {
                    kind: ACTOR_ANONYMOUS.into(),
                    ip: Some(ip.to_string()),
                    ..Default::default()
                },
                scopes: vec![],
                request: Payload::default(),
                body: Bytes::new(),
                scim_base: String::new(),
                parent_id: None,
            };
            let event = ctx.event(&state, info, 429, None, Payload::default());
            if let Err(e) = state.store.append_event(event).await {
                tracing::error!(error = %e, "cannot record the summary of suppressed failures");
            }
        }
        if stopping {
            return;
        }
    }
}

/// The response as an event keeps it.
pub fn response_payload(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Payload {
    let headers = state.redactor.headers(
        headers
            .iter()
            .filter(|(k, _)| k.as_str() != REQUEST_ID)
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    let (body, truncated) = state.redactor.capture(body, state.config.audit_body_cap);
    Payload {
        headers,
        body,
        truncated,
    }
}
