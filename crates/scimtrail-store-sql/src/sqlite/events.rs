//! Audit event reads on SQLite: the planner's reads (`crate::event_query`), events by
//! `seq` and id, the log for verification, prune.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use scimtrail_audit::StoredPayload;
use scimtrail_store::{EventPage, EventQuery, LogRow, PruneReport, StatsRow, StoreResult};
use serde_json::Value;

use super::write::db;
use crate::event_query::{self, EventReader, CHECK_COLUMNS, EVENT_COLUMNS};
use crate::filter_sql::Param;

pub use crate::event_query::SCAN_BUDGET;

/// The planner's reads on one connection.
pub struct Reader<'c>(pub &'c Connection);

impl EventReader for Reader<'_> {
    const SQLITE: bool = true;

    fn hours(
        &mut self,
        tenant: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<(Option<i64>, Option<i64>)> {
        self.0
            .prepare_cached(
                "SELECT min(min_seq), max(max_seq) FROM audit_hours \
                 WHERE tenant = ? AND hour >= ? AND hour <= ?",
            )
            .and_then(|mut s| s.query_row(params![tenant, lo, hi], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(db)
    }

    fn last_seq(&mut self) -> StoreResult<Option<i64>> {
        self.0
            .query_row("SELECT max(seq) FROM audit_events", [], |r| r.get(0))
            .map_err(db)
    }

    fn one_int(&mut self, sql: &str, params: &[Param]) -> StoreResult<Option<i64>> {
        self.0
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params_from_iter(params.iter()), |r| r.get(0))
                    .optional()
            })
            .map_err(db)
    }

    fn log_rows(&mut self, sql: &str, params: &[Param]) -> StoreResult<Vec<LogRow>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(params.iter()), log_row)
            .map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
    }

    fn stats_rows(&mut self, sql: &str, params: &[Param], n: usize) -> StoreResult<Vec<StatsRow>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
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
                Ok(StatsRow {
                    bucket: r.get(0)?,
                    keys,
                    count: r.get::<_, i64>(n + 1)? as u64,
                })
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
    }

    fn bucket_sql(b: Option<u64>) -> String {
        match b {
            Some(b) => {
                format!("(CAST(strftime('%s', substr(e.time, 1, 19)) AS INTEGER) / {b}) * {b}")
            }
            None => "NULL".into(),
        }
    }
}

pub fn events(
    conn: &Connection,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<EventPage> {
    event_query::events(&mut Reader(conn), tenant, q, scan_budget)
}

pub fn stats(
    conn: &Connection,
    tenant: &str,
    q: &scimtrail_store::StatsQuery,
) -> StoreResult<Vec<StatsRow>> {
    event_query::stats(&mut Reader(conn), tenant, q)
}

/// SQLite's plan for the queries of one page (`EXPLAIN QUERY PLAN`, one line per step), so
/// that tests can prove every query walks an index or a bounded range of the log.
pub fn explain(
    conn: &Connection,
    tenant: &str,
    q: &EventQuery,
    scan_budget: u64,
) -> StoreResult<Vec<String>> {
    let queries = event_query::page_queries(&mut Reader(conn), tenant, q, scan_budget)?;
    plan_lines(conn, queries)
}

pub(super) fn log_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
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
    rows.iter().map(event_query::open_row).collect()
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
        .map(|r| event_query::open_row(&r))
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
    let (sql, params) = crate::event_query::log_rows_query(filter, after, limit)?;
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
