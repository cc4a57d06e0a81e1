//! Audit event queries: every filterable attribute is an indexed column.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use scimtrail_audit::StoredPayload;
use scimtrail_core::AttrPath;
use scimtrail_store::{EventPage, EventQuery, LogRow, PruneReport, StoreError, StoreResult};
use serde_json::Value;

use super::write::db;
use crate::filter_sql::{to_sql, ColKind, Column, Param};

/// Event attributes that filters may name: their column, and the index (ending in `seq`) that
/// an `eq` on it can walk in log order, if any.
fn event_attr(p: &AttrPath) -> Option<(Column, Option<&'static str>)> {
    if p.urn.is_some() {
        return None;
    }
    let name = p.name.to_ascii_lowercase();
    let sub = p.sub.as_deref().map(str::to_ascii_lowercase);
    let (col, kind, index) = match (name.as_str(), sub.as_deref()) {
        ("id", None) => ("e.id", ColKind::Text, None),
        ("seq", None) => ("e.seq", ColKind::Int, None),
        ("time", None) => ("e.time", ColKind::Time, None),
        ("requestid", None) => ("e.request_id", ColKind::Text, Some("audit_events_request")),
        ("parentid", None) => ("e.parent_id", ColKind::Text, Some("audit_events_parent")),
        ("action", None) => ("e.action", ColKind::Text, Some("audit_events_action")),
        ("actor", Some("kind")) => (
            "e.actor_kind",
            ColKind::Text,
            Some("audit_events_rare_actor"),
        ),
        ("actor", Some("id")) => ("e.actor_id", ColKind::Text, Some("audit_events_actor_id")),
        ("actor", Some("name")) => ("e.actor_name", ColKind::Text, Some("audit_events_actor")),
        ("actor", Some("client")) => ("e.actor_client", ColKind::Text, None),
        ("actor", Some("ip")) => ("e.actor_ip", ColKind::Text, Some("audit_events_ip")),
        ("operation", Some("method")) => ("e.method", ColKind::Text, None),
        ("operation", Some("scim")) => ("e.scim_op", ColKind::Text, None),
        ("target", Some("type")) => (
            "e.target_type",
            ColKind::Text,
            Some("audit_events_rare_target"),
        ),
        ("target", Some("id")) => ("e.target_id", ColKind::Text, Some("audit_events_target")),
        ("target", Some("externalid")) => (
            "e.target_external_id",
            ColKind::Text,
            Some("audit_events_external_id"),
        ),
        ("target", Some("display")) => (
            "e.target_display",
            ColKind::Text,
            Some("audit_events_display"),
        ),
        ("outcome", Some("result")) => ("e.result", ColKind::Text, Some("audit_events_failure")),
        ("outcome", Some("status")) => {
            ("e.status", ColKind::Int, Some("audit_events_error_status"))
        }
        ("outcome", Some("scimtype")) => {
            ("e.scim_type", ColKind::Text, Some("audit_events_scim_type"))
        }
        ("changes", Some("path")) => {
            return Some((
                Column {
                    name: "c.path",
                    kind: ColKind::Text,
                    exists: Some(
                        "EXISTS (SELECT 1 FROM audit_change_paths c WHERE c.seq = e.seq AND ",
                    ),
                },
                Some(CHANGE_PATHS),
            ))
        }
        _ => return None,
    };
    Some((Column::new(col, kind), index))
}

fn event_column(p: &AttrPath) -> Option<Column> {
    event_attr(p).map(|(c, _)| c)
}

/// The pseudo-index of `changes.path`: the `audit_change_paths` table.
const CHANGE_PATHS: &str = "audit_change_paths_path";

/// The most events one page of a query examines. A page that runs out of it before it is full
/// ends early with a cursor to continue from, so no query runs long, whatever its filter.
pub const SCAN_BUDGET: u64 = 10_000;

/// Indexes from the most to the least selective, for choosing which `eq` drives a query.
const DRIVER_ORDER: [&str; 15] = [
    "audit_events_request",
    "audit_events_parent",
    "audit_events_target",
    "audit_events_external_id",
    "audit_events_display",
    "audit_events_actor_id",
    "audit_events_ip",
    "audit_events_rare_actor",
    "audit_events_rare_target",
    CHANGE_PATHS,
    "audit_events_scim_type",
    "audit_events_error_status",
    "audit_events_failure",
    "audit_events_actor",
    "audit_events_action",
];

/// Whether the value of an `eq` can use a partial index, and the index's condition that the
/// queries must state (SQLite uses a partial index only for a query that implies it).
fn partial(index: &str, value: &Param) -> Option<Option<&'static str>> {
    let text = |v: &Param| match v {
        Param::Text(t) => Some(t.clone()),
        Param::Int(_) => None,
    };
    Some(match index {
        "audit_events_external_id" => Some("target_external_id IS NOT NULL"),
        "audit_events_display" => Some("target_display IS NOT NULL"),
        "audit_events_parent" => Some("parent_id IS NOT NULL"),
        "audit_events_scim_type" => Some("scim_type IS NOT NULL"),
        "audit_events_failure" if text(value).as_deref() == Some("failure") => {
            Some("result = 'failure'")
        }
        "audit_events_error_status" if matches!(value, Param::Int(n) if *n >= 400) => {
            Some("status >= 400")
        }
        "audit_events_rare_actor" if text(value).is_some_and(|v| v != "token") => {
            Some("actor_kind <> 'token'")
        }
        "audit_events_rare_target" if text(value).is_some_and(|v| v != "User" && v != "Group") => {
            Some("target_type NOT IN ('User', 'Group')")
        }
        "audit_events_failure"
        | "audit_events_error_status"
        | "audit_events_rare_actor"
        | "audit_events_rare_target" => return None,
        _ => None,
    })
}

/// How a query walks the log.
#[derive(Debug, Clone, PartialEq)]
enum Driver {
    /// The primary key: `seq` itself.
    Log,
    /// `id eq …` or `seq eq …`: at most one event, found by a unique key.
    Unique,
    /// An index `(tenant, column, seq)` and the value the filter's `eq` gives the column.
    Index {
        index: &'static str,
        column: &'static str,
        value: Param,
        /// The condition of a partial index, stated in the queries.
        only: Option<&'static str>,
    },
}

/// A query's plan: its driver and the inclusive `seq` range that its time and `seq`
/// comparisons allow (`None` when nothing can match).
#[derive(Debug)]
struct Plan {
    driver: Driver,
    range: Option<(u64, u64)>,
    /// Whether an index or a window bounds what the query may examine.
    bounded: bool,
}

fn plan(
    conn: &Connection,
    tenant: &str,
    filter: Option<&scimtrail_core::Filter>,
) -> StoreResult<Plan> {
    use scimtrail_core::{CompValue, CompareOp, Filter};
    let mut driver = Driver::Log;
    let mut rank = usize::MAX;
    let (mut lo, mut hi) = (0u64, i64::MAX as u64);
    let (mut t_lo, mut t_hi): (Option<String>, Option<String>) = (None, None);
    let mut windowed = false;
    let terms = filter.map(crate::filter_sql::conjuncts).unwrap_or_default();
    for term in terms {
        let Filter::Compare(path, op, value) = term else {
            continue;
        };
        let Some((col, index)) = event_attr(path) else {
            continue;
        };
        match (col.name, op) {
            ("e.id", CompareOp::Eq) | ("e.seq", CompareOp::Eq) => {
                driver = Driver::Unique;
                rank = 0;
            }
            ("e.seq", _) => {
                let n = match value {
                    CompValue::Number(n) => n.as_i64(),
                    CompValue::String(s) => s.parse().ok(),
                    _ => None,
                };
                let Some(n) = n else { continue };
                let n = n.max(-1);
                match op {
                    CompareOp::Gt => lo = lo.max((n + 1) as u64),
                    CompareOp::Ge => lo = lo.max(n.max(0) as u64),
                    CompareOp::Lt if n <= 0 => {
                        return Ok(Plan {
                            driver,
                            range: None,
                            bounded: true,
                        })
                    }
                    CompareOp::Lt => hi = hi.min((n - 1) as u64),
                    CompareOp::Le if n < 0 => {
                        return Ok(Plan {
                            driver,
                            range: None,
                            bounded: true,
                        })
                    }
                    CompareOp::Le => hi = hi.min(n as u64),
                    _ => continue,
                }
                windowed = true;
            }
            ("e.time", CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le) => {
                let CompValue::String(t) = value else {
                    continue;
                };
                let Ok(t) =
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                else {
                    continue;
                };
                let hour = scimtrail_audit::format_time(t)[..13].to_string();
                if matches!(op, CompareOp::Gt | CompareOp::Ge) {
                    t_lo = Some(t_lo.map_or(hour.clone(), |h: String| h.max(hour)));
                } else {
                    t_hi = Some(t_hi.map_or(hour.clone(), |h: String| h.min(hour)));
                }
                windowed = true;
            }
            (column, CompareOp::Eq) => {
                let Some(index) = index else { continue };
                let Some(r) = DRIVER_ORDER.iter().position(|i| *i == index) else {
                    continue;
                };
                if r >= rank {
                    continue;
                }
                let mut sql = String::new();
                let mut params = vec![];
                // The operand exactly as the filter's own comparison binds it.
                if crate::filter_sql::to_sql(term, &event_column, &mut sql, &mut params).is_err() {
                    continue;
                }
                let Some(value) = params.pop().filter(|_| !sql.contains("IS NULL")) else {
                    continue;
                };
                let Some(only) = partial(index, &value) else {
                    continue;
                };
                rank = r;
                driver = Driver::Index {
                    index,
                    column: column.trim_start_matches("e."),
                    value,
                    only,
                };
            }
            _ => {}
        }
    }
    if t_lo.is_some() || t_hi.is_some() {
        let bounds: (Option<i64>, Option<i64>) = conn
            .prepare_cached(
                "SELECT min(min_seq), max(max_seq) FROM audit_hours \
                 WHERE tenant = ? AND hour >= ? AND hour <= ?",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        tenant,
                        t_lo.as_deref().unwrap_or(""),
                        t_hi.as_deref().unwrap_or("~")
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .map_err(db)?;
        match bounds {
            (Some(a), Some(b)) => {
                lo = lo.max(a as u64);
                hi = hi.min(b as u64);
            }
            _ => {
                return Ok(Plan {
                    driver,
                    range: None,
                    bounded: true,
                })
            }
        }
    }
    let bounded = driver != Driver::Log || windowed || filter.is_none();
    let range = (lo <= hi).then_some((lo, hi));
    Ok(Plan {
        driver,
        range,
        bounded,
    })
}

/// Why a filter is refused, and how to narrow it.
fn unbounded() -> StoreError {
    StoreError::InvalidQuery(
        "this filter would scan the whole log: add a time window (for example time ge \
         \"2026-01-01T00:00:00Z\"), a seq range, or an eq on an indexed attribute (requestId, \
         parentId, actor.id, actor.name, actor.ip, action, target.id, target.externalId, \
         target.display, changes.path, outcome.scimType; outcome.result eq \"failure\", \
         outcome.status eq 400 or above, actor.kind other than token, target.type other than \
         User and Group)"
            .into(),
    )
}

/// The columns every event read selects, with the payload joined.
const EVENT_COLUMNS: &str = "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals \
     FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq";

/// What [`check_leaves`] reads: the event columns, then the index columns in
/// `LeafView::INDEXED` order (from column 6 on).
const CHECK_COLUMNS: &str = "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals, \
     e.id, e.tenant, e.time, e.request_id, e.parent_id, e.actor_kind, e.actor_id, e.actor_name, \
     e.actor_client, e.action, e.method, e.scim_op, e.target_type, e.target_id, \
     e.target_external_id, e.result, e.status, e.actor_ip, e.target_display, e.scim_type \
     FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq";

fn log_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    let salt: Option<Vec<u8>> = r.get(4)?;
    let vals: Option<String> = r.get(5)?;
    Ok(LogRow {
        seq: r.get::<_, i64>(0)? as u64,
        tenant: r.get(1)?,
        commitment: r.get(2)?,
        leaf_hash: r.get(3)?,
        payload: match (salt, vals) {
            (Some(salt), Some(values)) => Some(StoredPayload { salt, values }),
            _ => None,
        },
    })
}

/// The event the API shows: commitment and payload reassembled.
fn open_row(row: &LogRow) -> StoreResult<Value> {
    scimtrail_audit::commitment::open(&row.commitment, &row.leaf_hash, row.payload.as_ref())
        .map_err(|e| StoreError::Backend(format!("event seq {}: {e}", row.seq)))
}

/// `WHERE` clauses and parameters of an event filter (column names prefixed `e.`).
fn filter_clause(
    f: &scimtrail_core::Filter,
    sql: &mut String,
    params: &mut Vec<Param>,
) -> StoreResult<()> {
    to_sql(f, &event_column, sql, params).map_err(StoreError::InvalidQuery)
}

/// The query for the `budget`-th entry of an index driver from the start of the range: where
/// a page's window ends.
fn edge_query(
    tenant: &str,
    plan: &Plan,
    (lo, hi): (u64, u64),
    ascending: bool,
    budget: u64,
) -> Option<(String, Vec<Param>)> {
    let Driver::Index {
        index,
        column,
        value,
        only,
    } = &plan.driver
    else {
        return None;
    };
    let only = only.map(|o| format!(" AND {o}")).unwrap_or_default();
    let (table, col) = if *index == CHANGE_PATHS {
        ("audit_change_paths", "path")
    } else {
        ("audit_events", *column)
    };
    let order = if ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT seq FROM {table} INDEXED BY {index} WHERE tenant = ? AND {col} = ?{only} \
         AND seq >= ? AND seq <= ? ORDER BY seq {order} LIMIT 1 OFFSET ?"
    );
    let params = vec![
        Param::Text(tenant.into()),
        value.clone(),
        Param::Int(lo as i64),
        Param::Int(hi.min(i64::MAX as u64) as i64),
        Param::Int(budget.saturating_sub(1) as i64),
    ];
    Some((sql, params))
}

/// A page's inclusive `seq` window, and where the next page starts if the window stopped short.
type Window = ((u64, u64), Option<u64>);

/// The inclusive `seq` window one page examines: at most [`SCAN_BUDGET`] events of its
/// driver, from the cursor on in the page's direction. The second value is where the next page
/// starts when the window stopped short of the plan's range.
fn window(
    conn: &Connection,
    tenant: &str,
    plan: &Plan,
    (lo, hi): (u64, u64),
    ascending: bool,
    budget: u64,
) -> StoreResult<Option<Window>> {
    // The last `seq` the budget lets this page reach, if the window goes beyond it.
    let (lo, hi, edge): (u64, u64, Option<u64>) = match &plan.driver {
        Driver::Unique => return Ok(Some(((lo, hi), None))),
        Driver::Log => {
            // `seq` has no gaps: the window is arithmetic once the log's end is known.
            let last: Option<i64> = conn
                .query_row("SELECT max(seq) FROM audit_events", [], |r| r.get(0))
                .map_err(db)?;
            let Some(last) = last else { return Ok(None) };
            let hi = hi.min(last as u64);
            if lo > hi {
                return Ok(None);
            }
            let span = budget.saturating_sub(1);
            let edge = if ascending {
                lo.checked_add(span)
            } else {
                hi.checked_sub(span)
            };
            (lo, hi, edge)
        }
        Driver::Index { .. } => {
            let Some((sql, params)) = edge_query(tenant, plan, (lo, hi), ascending, budget) else {
                return Ok(Some(((lo, hi), None)));
            };
            let edge: Option<i64> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params_from_iter(params.iter()), |r| r.get(0))
                        .optional()
                })
                .map_err(db)?;
            (lo, hi, edge.map(|e| e as u64))
        }
    };
    Ok(Some(match edge {
        Some(e) if ascending && e < hi => ((lo, e), Some(e)),
        Some(e) if !ascending && e > lo => ((e, hi), Some(e)),
        _ => ((lo, hi), None),
    }))
}

/// A page's plan, its window and where the next page resumes; `None` when nothing can match.
type Prepared = (Plan, (u64, u64), Option<u64>);

fn prepare(
    conn: &Connection,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<Option<Prepared>> {
    if let Some(f) = &q.filter {
        // A filter that cannot be translated is an error even when nothing could match.
        filter_clause(f, &mut String::new(), &mut vec![])?;
    }
    let plan = plan(conn, tenant, q.filter.as_ref())?;
    if !plan.bounded && !q.unbounded {
        return Err(unbounded());
    }
    let Some((mut lo, mut hi)) = plan.range else {
        return Ok(None);
    };
    match q.after_seq {
        Some(a) if q.ascending => lo = lo.max(a.saturating_add(1)),
        Some(0) => return Ok(None),
        Some(a) => hi = hi.min(a - 1),
        None => {}
    }
    if lo > hi {
        return Ok(None);
    }
    let budget = scan_budget.max(q.count as u64 + 1);
    Ok(window(conn, tenant, &plan, (lo, hi), q.ascending, budget)?
        .map(|(range, resume)| (plan, range, resume)))
}

/// The query of one page over its window.
fn page_query(
    tenant: &str,
    plan: &Plan,
    (lo, hi): (u64, u64),
    q: &EventQuery,
) -> StoreResult<(String, Vec<Param>)> {
    let hint = match &plan.driver {
        Driver::Index { index, .. } if *index != CHANGE_PATHS => format!("INDEXED BY {index}"),
        Driver::Unique => String::new(),
        _ => "NOT INDEXED".into(),
    };
    let mut sql = format!(
        "SELECT e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals \
         FROM audit_events e {hint} LEFT JOIN audit_payloads p ON p.seq = e.seq \
         WHERE e.tenant = ? AND e.seq >= ? AND e.seq <= ?"
    );
    let mut params = vec![
        Param::Text(tenant.into()),
        Param::Int(lo as i64),
        Param::Int(hi.min(i64::MAX as u64) as i64),
    ];
    if let Driver::Index { only: Some(o), .. } = &plan.driver {
        sql.push_str(&format!(" AND {o}"));
    }
    if let Driver::Index {
        index: CHANGE_PATHS,
        value,
        ..
    } = &plan.driver
    {
        sql.push_str(
            " AND e.seq IN (SELECT seq FROM audit_change_paths INDEXED BY audit_change_paths_path \
             WHERE tenant = ? AND path = ? AND seq >= ? AND seq <= ?)",
        );
        params.extend([
            Param::Text(tenant.into()),
            value.clone(),
            params[1].clone(),
            params[2].clone(),
        ]);
    }
    if let Some(f) = &q.filter {
        sql.push_str(" AND ");
        filter_clause(f, &mut sql, &mut params)?;
    }
    let order = if q.ascending { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY e.seq {order} LIMIT ?"));
    params.push(Param::Int(q.count as i64 + 1));
    Ok((sql, params))
}

/// One page of events: the filter's matches in the page's window, newest or oldest first.
/// A page holds `count` events, or fewer when its window (the scan budget) ran out first; its
/// `next_seq` then says where the next window starts.
pub fn events(
    conn: &Connection,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<EventPage> {
    let Some((plan, range, resume)) = prepare(conn, tenant, q, scan_budget)? else {
        return Ok(EventPage {
            items: vec![],
            next_seq: None,
        });
    };
    let (sql, params) = page_query(tenant, &plan, range, q)?;
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), log_row)
        .map_err(db)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    let full = rows.len() > q.count;
    let mut items = Vec::with_capacity(q.count.min(rows.len()));
    let mut last = None;
    for row in rows.iter().take(q.count) {
        items.push(open_row(row)?);
        last = Some(row.seq);
    }
    Ok(EventPage {
        items,
        next_seq: if full { last } else { resume },
    })
}

/// SQLite's plan for the queries of one page (`EXPLAIN QUERY PLAN`, one line per step), so
/// that tests can prove every query walks an index or a bounded range of the log.
pub fn explain(
    conn: &Connection,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<Vec<String>> {
    let mut out = vec![];
    let Some((plan, range, _)) = prepare(conn, tenant, q, scan_budget)? else {
        return Ok(out);
    };
    let budget = scan_budget.max(q.count as u64 + 1);
    let mut queries = vec![page_query(tenant, &plan, range, q)?];
    queries.extend(edge_query(tenant, &plan, range, q.ascending, budget));
    out.extend(plan_lines(conn, queries)?);
    Ok(out)
}

/// `EXPLAIN QUERY PLAN` of each query, one line per step, in order.
pub(super) fn plan_lines(
    conn: &Connection,
    queries: impl IntoIterator<Item = (String, Vec<Param>)>,
) -> StoreResult<Vec<String>> {
    let mut out = vec![];
    for (sql, params) in queries {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
            .map_err(db)?;
        for r in rows {
            out.push(r.map_err(db)?);
        }
    }
    Ok(out)
}

/// Counts per bucket and `by` values over the window of a stats query, which must hold at
/// most `max_events` events of its driver.
pub fn stats(
    conn: &Connection,
    tenant: &str,
    q: &scimtrail_store::StatsQuery,
) -> StoreResult<Vec<scimtrail_store::StatsRow>> {
    let eq = EventQuery {
        filter: q.filter.clone(),
        count: 0,
        after_seq: None,
        ascending: true,
        unbounded: false,
    };
    let mut by = Vec::with_capacity(q.by.len());
    for p in &q.by {
        match event_attr(p) {
            Some((c, _)) if c.exists.is_none() && c.name != "e.seq" && c.name != "e.time" => {
                by.push(c)
            }
            _ => {
                return Err(StoreError::InvalidQuery(format!(
                    "events cannot be grouped by '{p}'"
                )))
            }
        }
    }
    // One window holding the whole range, or a refusal: stats are never partial.
    let cap = q.max_events.max(1);
    let Some((plan, (lo, hi), resume)) = prepare(conn, tenant, &eq, cap + 1)? else {
        return Ok(vec![]);
    };
    let examined = match &plan.driver {
        Driver::Log => hi.saturating_sub(lo).saturating_add(1),
        _ => u64::from(resume.is_some()) * (cap + 1),
    };
    if resume.is_some() || examined > cap {
        return Err(StoreError::TooMany(format!(
            "the window holds more than {cap} events: narrow it with a shorter time window or \
             an eq on an indexed attribute"
        )));
    }
    let (page, mut params) = page_query(tenant, &plan, (lo, hi), &eq)?;
    // The page query's FROM and WHERE, without its order and limit.
    let from = page
        .split_once(" FROM ")
        .and_then(|(_, rest)| rest.rsplit_once(" ORDER BY "))
        .map(|(f, _)| f.replacen(" LEFT JOIN audit_payloads p ON p.seq = e.seq", "", 1))
        .ok_or_else(|| StoreError::Backend("cannot build the stats query".into()))?;
    params.pop();
    let bucket = match q.bucket_secs {
        Some(b) => format!(
            "(CAST(strftime('%s', substr(e.time, 1, 19)) AS INTEGER) / {b}) * {b}",
            b = b.max(1)
        ),
        None => "NULL".into(),
    };
    let keys: String = by.iter().map(|c| format!(", {}", c.name)).collect();
    let groups: String = (0..by.len()).map(|i| format!(", {}", i + 2)).collect();
    let sql = format!(
        "SELECT {bucket}{keys}, count(*) FROM {from} GROUP BY 1{groups} ORDER BY 1{groups} \
         LIMIT {}",
        STATS_MAX_ROWS + 1
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let n = by.len();
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            let mut keys = Vec::with_capacity(n);
            for i in 0..n {
                keys.push(match r.get_ref(i + 1)? {
                    rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::String(String::from_utf8_lossy(t).into_owned())
                    }
                    _ => Value::Null,
                });
            }
            Ok(scimtrail_store::StatsRow {
                bucket: r.get(0)?,
                keys,
                count: r.get::<_, i64>(n + 1)? as u64,
            })
        })
        .map_err(db)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    if rows.len() > STATS_MAX_ROWS {
        return Err(StoreError::TooMany(format!(
            "more than {STATS_MAX_ROWS} buckets and groups: use wider buckets or fewer 'by'"
        )));
    }
    Ok(rows)
}

/// The most counts (bucket × group) one stats query answers.
const STATS_MAX_ROWS: usize = 50_000;

pub fn events_at(conn: &Connection, tenant: &str, seqs: &[u64]) -> StoreResult<Vec<Value>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} WHERE e.tenant = ? \
             AND e.seq IN (SELECT value FROM json_each(?)) ORDER BY e.seq"
        ))
        .map_err(db)?;
    let list = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into());
    let rows = stmt
        .query_map(params![tenant, list], log_row)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.iter().map(open_row).collect()
}

fn row_by_id(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<LogRow>> {
    conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} WHERE e.tenant = ? AND e.id = ?"
    ))
    .and_then(|mut s| s.query_row(params![tenant, id], log_row).optional())
    .map_err(db)
}

pub fn event(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<Value>> {
    row_by_id(conn, tenant, id)?
        .map(|r| open_row(&r))
        .transpose()
}

pub fn leaf(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<LogRow>> {
    row_by_id(conn, tenant, id)
}

/// The log in `seq` order, all tenants.
pub fn log_rows(
    conn: &Connection,
    filter: Option<&scimtrail_core::Filter>,
    after: Option<u64>,
    limit: usize,
) -> StoreResult<Vec<LogRow>> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} WHERE e.seq > ?");
    let mut params = vec![Param::Int(after.map(|a| a as i64).unwrap_or(-1))];
    if let Some(f) = filter {
        sql.push_str(" AND ");
        filter_clause(f, &mut sql, &mut params)?;
    }
    sql.push_str(" ORDER BY e.seq LIMIT ?");
    params.push(Param::Int(limit as i64));
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), log_row)
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

/// Remove the payloads of events older than `before`; in a dry run, only count them.
pub fn prune(conn: &Connection, before: &str, dry_run: bool) -> StoreResult<PruneReport> {
    let (n, first, last): (i64, Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(*), MIN(p.seq), MAX(p.seq) FROM audit_payloads p \
             JOIN audit_events e ON e.seq = p.seq WHERE e.time < ?",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(db)?;
    if !dry_run && n > 0 {
        conn.execute(
            "DELETE FROM audit_payloads WHERE seq IN \
             (SELECT seq FROM audit_events WHERE time < ?)",
            [before],
        )
        .map_err(db)?;
    }
    Ok(PruneReport {
        payloads: n as u64,
        first_seq: first.map(|s| s as u64),
        last_seq: last.map(|s| s as u64),
        dry_run,
        event_seq: None,
    })
}

/// Check the leaves of `from..to` on this connection, borrowing each row's bytes.
pub fn check_leaves(
    conn: &Connection,
    from: u64,
    to: u64,
) -> StoreResult<scimtrail_audit::verify::CheckedChunk> {
    use rusqlite::types::ValueRef;
    use scimtrail_audit::commitment::LeafView;
    use scimtrail_audit::verify::{check_leaf, CheckedChunk, CheckedLeaf, Failure};
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CHECK_COLUMNS} WHERE e.seq >= ? AND e.seq < ? ORDER BY e.seq"
        ))
        .map_err(db)?;
    let mut rows = stmt.query(params![from as i64, to as i64]).map_err(db)?;
    let mut leaves = Vec::with_capacity((to - from) as usize);
    // One key buffer for every row: the index columns as `index_key`, built in place.
    let mut key = String::with_capacity(512);
    fn push(key: &mut String, v: ValueRef<'_>) {
        use scimtrail_audit::commitment::index_key_push;
        match v {
            ValueRef::Null => index_key_push(key, None),
            ValueRef::Integer(n) => index_key_push(key, Some(itoa::Buffer::new().format(n))),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => index_key_push(key, Some(t)),
                Err(_) => index_key_push(key, Some(&String::from_utf8_lossy(t))),
            },
            other => index_key_push(key, Some(&format!("{other:?}"))),
        }
    }
    while let Some(r) = rows.next().map_err(db)? {
        let seq = r.get::<_, i64>(0).map_err(db)? as u64;
        let commitment = r.get_ref(2).map_err(db)?;
        let stored = r.get_ref(3).map_err(db)?.as_blob().ok();
        let payload = match (r.get_ref(4).map_err(db)?, r.get_ref(5).map_err(db)?) {
            (ValueRef::Blob(salt), ValueRef::Text(vals)) => Some((salt, vals)),
            _ => None,
        };
        key.clear();
        for i in 6..6 + LeafView::INDEXED.len() {
            push(&mut key, r.get_ref(i).map_err(db)?);
        }
        let leaf = match commitment {
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => check_leaf(seq, t, stored, payload, Some(&key)),
                Err(_) => Err(Failure {
                    seq: Some(seq),
                    what: "commitment bytes are not UTF-8".into(),
                }),
            },
            _ => Err(Failure {
                seq: Some(seq),
                what: "the commitment is not text".into(),
            }),
        };
        leaves.push(CheckedLeaf { seq, leaf });
    }
    let first_index = scimtrail_audit::merkle::stored_index(0, from);
    let stored = super::tree::stored_range(
        conn,
        first_index,
        scimtrail_audit::merkle::stored_index(0, to),
    )?;
    Ok(CheckedChunk {
        leaves,
        first_index,
        stored,
    })
}

pub fn payload_seqs_from(conn: &Connection, from: u64, limit: usize) -> StoreResult<Vec<u64>> {
    let mut s = conn
        .prepare_cached("SELECT seq FROM audit_payloads WHERE seq >= ? ORDER BY seq LIMIT ?")
        .map_err(db)?;
    let rows = s
        .query_map(params![from as i64, limit as i64], |r| {
            Ok(r.get::<_, i64>(0)? as u64)
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}
