//! Audit event queries, planned once for both backends: every filterable attribute is an
//! indexed column, a query is driven by its most selective index or a window of the log, and
//! each page examines at most a budget of events. A backend answers the few reads the planner
//! needs through [`EventReader`]; the SQL is written with `?` placeholders, which the
//! PostgreSQL backend numbers.

use scimtrail_core::AttrPath;
use scimtrail_store::{EventPage, EventQuery, LogRow, StatsRow, StoreError, StoreResult};
use serde_json::Value;

use crate::filter_sql::{to_sql, ColKind, Column, Param};

/// What the planner reads from a backend.
pub trait EventReader {
    /// Whether the SQL may name SQLite's index hints (`INDEXED BY`, `NOT INDEXED`).
    const SQLITE: bool;
    /// `min(min_seq), max(max_seq)` of the tenant's hours in `lo..=hi`.
    fn hours(
        &mut self,
        tenant: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<(Option<i64>, Option<i64>)>;
    /// The newest `seq`, if the log has any event.
    fn last_seq(&mut self) -> StoreResult<Option<i64>>;
    /// The first column of the first row, if there is one.
    fn one_int(&mut self, sql: &str, params: &[Param]) -> StoreResult<Option<i64>>;
    /// Rows of `seq, tenant, commitment, leaf_hash, salt, vals`.
    fn log_rows(&mut self, sql: &str, params: &[Param]) -> StoreResult<Vec<LogRow>>;
    /// Rows of `bucket, key…, count`, with `keys` keys.
    fn stats_rows(
        &mut self,
        sql: &str,
        params: &[Param],
        keys: usize,
    ) -> StoreResult<Vec<StatsRow>>;
    /// The time bucket of `e.time` in whole seconds since the epoch, as SQL (a NULL integer
    /// without buckets).
    fn bucket_sql(bucket_secs: Option<u64>) -> String;
}

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

fn plan<R: EventReader>(
    conn: &mut R,
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
        let bounds = conn.hours(
            tenant,
            t_lo.as_deref().unwrap_or(""),
            t_hi.as_deref().unwrap_or("~"),
        )?;
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
pub(crate) const EVENT_COLUMNS: &str =
    "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals \
     FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq";

/// What [`check_leaves`] reads: the event columns, then the index columns in
/// `LeafView::INDEXED` order (from column 6 on).
pub(crate) const CHECK_COLUMNS: &str =
    "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals, \
     e.id, e.tenant, e.time, e.request_id, e.parent_id, e.actor_kind, e.actor_id, e.actor_name, \
     e.actor_client, e.action, e.method, e.scim_op, e.target_type, e.target_id, \
     e.target_external_id, e.result, e.status, e.actor_ip, e.target_display, e.scim_type \
     FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq";

/// The event the API shows: commitment and payload reassembled.
pub(crate) fn open_row(row: &LogRow) -> StoreResult<Value> {
    scimtrail_audit::commitment::open(&row.commitment, &row.leaf_hash, row.payload.as_ref())
        .map_err(|e| StoreError::Backend(format!("event seq {}: {e}", row.seq)))
}

/// `WHERE` clauses and parameters of an event filter (column names prefixed `e.`).
pub(crate) fn filter_clause(
    f: &scimtrail_core::Filter,
    sql: &mut String,
    params: &mut Vec<Param>,
) -> StoreResult<()> {
    to_sql(f, &event_column, sql, params).map_err(StoreError::InvalidQuery)
}

/// The query for the `budget`-th entry of an index driver from the start of the range: where
/// a page's window ends.
fn edge_query(
    sqlite: bool,
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
    let hint = if sqlite {
        format!(" INDEXED BY {index}")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT seq FROM {table}{hint} WHERE tenant = ? AND {col} = ?{only} \
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
fn window<R: EventReader>(
    conn: &mut R,
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
            let last = conn.last_seq()?;
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
            let Some((sql, params)) =
                edge_query(R::SQLITE, tenant, plan, (lo, hi), ascending, budget)
            else {
                return Ok(Some(((lo, hi), None)));
            };
            let edge = conn.one_int(&sql, &params)?;
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

fn prepare<R: EventReader>(
    conn: &mut R,
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
    sqlite: bool,
    tenant: &str,
    plan: &Plan,
    (lo, hi): (u64, u64),
    q: &EventQuery,
) -> StoreResult<(String, Vec<Param>)> {
    let hint = match &plan.driver {
        _ if !sqlite => String::new(),
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
        sql.push_str(if sqlite {
            " AND e.seq IN (SELECT seq FROM audit_change_paths INDEXED BY audit_change_paths_path \
             WHERE tenant = ? AND path = ? AND seq >= ? AND seq <= ?)"
        } else {
            " AND e.seq IN (SELECT seq FROM audit_change_paths \
             WHERE tenant = ? AND path = ? AND seq >= ? AND seq <= ?)"
        });
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
pub fn events<R: EventReader>(
    conn: &mut R,
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
    let (sql, params) = page_query(R::SQLITE, tenant, &plan, range, q)?;
    let rows = conn.log_rows(&sql, &params)?;
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

/// The queries of one page (the page, then the edge of its window), for a backend to show
/// its plan of them: tests prove every query walks an index or a bounded range of the log.
pub fn page_queries<R: EventReader>(
    conn: &mut R,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<Vec<(String, Vec<Param>)>> {
    let Some((plan, range, _)) = prepare(conn, tenant, q, scan_budget)? else {
        return Ok(vec![]);
    };
    let budget = scan_budget.max(q.count as u64 + 1);
    let mut queries = vec![page_query(R::SQLITE, tenant, &plan, range, q)?];
    queries.extend(edge_query(
        R::SQLITE,
        tenant,
        &plan,
        range,
        q.ascending,
        budget,
    ));
    Ok(queries)
}

/// Counts per bucket and `by` values over the window of a stats query, which must hold at
/// most `max_events` events of its driver.
pub fn stats<R: EventReader>(
    conn: &mut R,
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
    let (page, mut params) = page_query(R::SQLITE, tenant, &plan, (lo, hi), &eq)?;
    // The page query's FROM and WHERE, without its order and limit.
    let from = page
        .split_once(" FROM ")
        .and_then(|(_, rest)| rest.rsplit_once(" ORDER BY "))
        .map(|(f, _)| f.replacen(" LEFT JOIN audit_payloads p ON p.seq = e.seq", "", 1))
        .ok_or_else(|| StoreError::Backend("cannot build the stats query".into()))?;
    params.pop();
    let bucket = R::bucket_sql(q.bucket_secs.map(|b| b.max(1)));
    let keys: String = by.iter().map(|c| format!(", {}", c.name)).collect();
    let groups: String = (0..by.len()).map(|i| format!(", {}", i + 2)).collect();
    let sql = format!(
        "SELECT {bucket}{keys}, count(*) FROM {from} GROUP BY 1{groups} ORDER BY 1{groups} \
         LIMIT {}",
        STATS_MAX_ROWS + 1
    );
    let rows = conn.stats_rows(&sql, &params, by.len())?;
    if rows.len() > STATS_MAX_ROWS {
        return Err(StoreError::TooMany(format!(
            "more than {STATS_MAX_ROWS} buckets and groups: use wider buckets or fewer 'by'"
        )));
    }
    Ok(rows)
}

/// The most counts (bucket × group) one stats query answers.
const STATS_MAX_ROWS: usize = 50_000;

/// The SQL of a page of the log in `seq` order, all tenants.
pub fn log_rows_query(
    filter: Option<&scimtrail_core::Filter>,
    after: Option<u64>,
    limit: usize,
) -> StoreResult<(String, Vec<Param>)> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} WHERE e.seq > ?");
    let mut params = vec![Param::Int(after.map(|a| a as i64).unwrap_or(-1))];
    if let Some(f) = filter {
        sql.push_str(" AND ");
        filter_clause(f, &mut sql, &mut params)?;
    }
    sql.push_str(" ORDER BY e.seq LIMIT ?");
    params.push(Param::Int(limit as i64));
    Ok((sql, params))
}
