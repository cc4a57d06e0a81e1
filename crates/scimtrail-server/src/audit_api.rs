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
        .route("/stats", get(stats))
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

/// The `filter` of an audit read, parsed and held to the comparison limit; `None` when absent.
pub(crate) fn event_filter(state: &AppState, q: &QueryParams) -> Result<Option<Filter>, ScimError> {
    match q.get("filter").map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => {
            let f = Filter::parse(f)?;
            f.check_terms(state.registry.max_filter_terms())?;
            Ok(Some(f))
        }
        None => Ok(None),
    }
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
    let filter = event_filter(&state, &q)?;
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

/// The most events one stats call counts.
const STATS_MAX_EVENTS: u64 = 2_000_000;
/// The most buckets one stats call answers.
const STATS_MAX_BUCKETS: u64 = 10_000;

/// `90s`, `15m`, `1h`, `7d` → seconds.
fn duration_secs(v: &str, what: &str) -> Result<u64, ScimError> {
    let v = v.trim();
    let bad = || {
        ScimError::invalid_value(format!(
            "'{what}' is a number and a unit, s, m, h or d (for example 1h)"
        ))
    };
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).filter(|s| *s > 0).ok_or_else(bad)
}

/// Whether a filter compares `time` at its top level (a window of its own).
fn has_time_window(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => has_time_window(a) || has_time_window(b),
        Filter::Compare(p, op, _) => {
            p.sub.is_none()
                && p.name.eq_ignore_ascii_case("time")
                && !matches!(op, scimtrail_core::CompareOp::Ne)
        }
        _ => false,
    }
}

/// `GET /stats?filter=…&since=24h&bucket=1h&by=outcome.scimType,actor.client`: how many
/// events matched, per time bucket and per value of the `by` attributes. Without a time
/// comparison in the filter, `since` (default 24h) sets the window.
async fn stats(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let mut filter = event_filter(&state, &q)?;
    let now = time::OffsetDateTime::now_utc();
    let since = match q.get("since") {
        Some(s) => Some(duration_secs(s, "since")?),
        None if filter.as_ref().is_some_and(has_time_window) => None,
        None => Some(86_400),
    };
    let mut from = None;
    if let Some(secs) = since {
        let start = now - time::Duration::seconds(secs.min(100 * 365 * 86_400) as i64);
        let start = scimtrail_audit::format_time(start);
        let window = Filter::parse(&format!("time ge {}", Value::String(start.clone())))?;
        filter = Some(match filter {
            Some(f) => Filter::And(Box::new(f), Box::new(window)),
            None => window,
        });
        from = Some(start);
    }
    let bucket_secs = q
        .get("bucket")
        .filter(|b| !b.trim().is_empty())
        .map(|b| duration_secs(b, "bucket"))
        .transpose()?;
    if let (Some(b), Some(s)) = (bucket_secs, since) {
        if s / b > STATS_MAX_BUCKETS {
            return Err(ScimError::too_many(format!(
                "{} buckets of {b} s in the window; at most {STATS_MAX_BUCKETS}",
                s / b
            ))
            .into());
        }
    }
    let by_names: Vec<String> = q
        .get("by")
        .map(|b| {
            b.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if by_names.len() > 3 {
        return Err(ScimError::invalid_value("'by' names at most 3 attributes").into());
    }
    let by = by_names
        .iter()
        .map(|n| {
            scimtrail_core::AttrPath::parse(n)
                .map_err(|_| ScimError::invalid_value(format!("'by' cannot name '{n}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = state
        .store
        .event_stats(
            &ctx.tenant,
            &scimtrail_store::StatsQuery {
                filter,
                bucket_secs,
                by,
                max_events: STATS_MAX_EVENTS,
            },
        )
        .await?;
    let group = |keys: &[Value], count: u64| {
        let mut o = serde_json::Map::new();
        for (name, v) in by_names.iter().zip(keys) {
            o.insert(name.clone(), v.clone());
        }
        o.insert("count".into(), count.into());
        Value::Object(o)
    };
    let total: u64 = rows.iter().map(|r| r.count).sum();
    let mut totals: std::collections::BTreeMap<String, (Vec<Value>, u64)> = Default::default();
    for r in &rows {
        let key = Value::Array(r.keys.clone()).to_string();
        totals.entry(key).or_insert_with(|| (r.keys.clone(), 0)).1 += r.count;
    }
    // The store answers rows ordered by bucket: one run of rows per bucket.
    let buckets: Vec<Value> = rows
        .chunk_by(|a, b| a.bucket == b.bucket)
        .filter_map(|run| {
            let start = time::OffsetDateTime::from_unix_timestamp(run[0].bucket?)
                .map(scimtrail_audit::format_time)
                .unwrap_or_default();
            let count: u64 = run.iter().map(|r| r.count).sum();
            let groups: Vec<Value> = if by_names.is_empty() {
                vec![]
            } else {
                run.iter().map(|r| group(&r.keys, r.count)).collect()
            };
            Some(json!({"start": start, "count": count, "groups": groups}))
        })
        .collect();
    let mut groups: Vec<(Vec<Value>, u64)> = totals.into_values().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let mut body = json!({
        "schemas": ["urn:scimtrail:params:audit:1.0:Stats"],
        "count": total,
        "by": by_names,
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(f) = from {
            obj.insert("from".into(), Value::String(f));
        }
        if let Some(b) = bucket_secs {
            obj.insert("bucketSeconds".into(), b.into());
            obj.insert("buckets".into(), Value::Array(buckets));
        }
        if !by_names.is_empty() {
            obj.insert(
                "groups".into(),
                groups.iter().map(|(k, n)| group(k, *n)).collect(),
            );
        }
    }
    Ok(json_response(body))
}
