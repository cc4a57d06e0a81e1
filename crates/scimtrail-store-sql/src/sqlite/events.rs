//! Audit event queries: every filterable attribute is an indexed column.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use scimtrail_audit::StoredPayload;
use scimtrail_core::AttrPath;
use scimtrail_store::{EventPage, EventQuery, LogRow, PruneReport, StoreError, StoreResult};
use serde_json::Value;

use super::write::db;
use crate::filter_sql::{to_sql, ColKind, Column, Param};

/// Event attributes that filters may name, and their columns.
fn event_column(p: &AttrPath) -> Option<Column> {
    if p.urn.is_some() {
        return None;
    }
    let col = |name, kind| Some(Column { name, kind });
    let name = p.name.to_ascii_lowercase();
    let sub = p.sub.as_deref().map(str::to_ascii_lowercase);
    match (name.as_str(), sub.as_deref()) {
        ("id", None) => col("e.id", ColKind::Text),
        ("seq", None) => col("e.seq", ColKind::Int),
        ("time", None) => col("e.time", ColKind::Time),
        ("requestid", None) => col("e.request_id", ColKind::Text),
        ("parentid", None) => col("e.parent_id", ColKind::Text),
        ("action", None) => col("e.action", ColKind::Text),
        ("actor", Some("kind")) => col("e.actor_kind", ColKind::Text),
        ("actor", Some("id")) => col("e.actor_id", ColKind::Text),
        ("actor", Some("name")) => col("e.actor_name", ColKind::Text),
        ("actor", Some("client")) => col("e.actor_client", ColKind::Text),
        ("operation", Some("method")) => col("e.method", ColKind::Text),
        ("operation", Some("scim")) => col("e.scim_op", ColKind::Text),
        ("target", Some("type")) => col("e.target_type", ColKind::Text),
        ("target", Some("id")) => col("e.target_id", ColKind::Text),
        ("target", Some("externalid")) => col("e.target_external_id", ColKind::Text),
        ("outcome", Some("result")) => col("e.result", ColKind::Text),
        ("outcome", Some("status")) => col("e.status", ColKind::Int),
        _ => None,
    }
}

/// The columns every event read selects, with the payload joined.
const EVENT_COLUMNS: &str = "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals \
     FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq";

/// What [`check_leaves`] reads: the event columns, then the index columns in
/// `LeafView::INDEXED` order (from column 6 on).
const CHECK_COLUMNS: &str = "e.seq, e.tenant, e.commitment, e.leaf_hash, p.salt, p.vals, \
     e.id, e.tenant, e.time, e.request_id, e.parent_id, e.actor_kind, e.actor_id, e.actor_name, \
     e.actor_client, e.action, e.method, e.scim_op, e.target_type, e.target_id, \
     e.target_external_id, e.result, e.status \
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

pub fn events(conn: &Connection, tenant: &str, q: &EventQuery) -> StoreResult<EventPage> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} WHERE e.tenant = ?");
    let mut params = vec![Param::Text(tenant.into())];
    if let Some(f) = &q.filter {
        sql.push_str(" AND ");
        filter_clause(f, &mut sql, &mut params)?;
    }
    let (cmp, order) = if q.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(after) = q.after_seq {
        sql.push_str(&format!(" AND e.seq {cmp} ?"));
        params.push(Param::Int(after as i64));
    }
    sql.push_str(&format!(" ORDER BY e.seq {order} LIMIT ?"));
    params.push(Param::Int(q.count as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), log_row)
        .map_err(db)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    let more = rows.len() > q.count;
    let mut items = Vec::with_capacity(q.count);
    let mut last = None;
    for row in rows.iter().take(q.count) {
        items.push(open_row(row)?);
        last = Some(row.seq);
    }
    Ok(EventPage {
        items,
        next_seq: if more { last } else { None },
    })
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
    use scimtrail_audit::verify::{check_leaf, CheckedChunk, CheckedLeaf, Failure};
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CHECK_COLUMNS} WHERE e.seq >= ? AND e.seq < ? ORDER BY e.seq"
        ))
        .map_err(db)?;
    let mut rows = stmt.query(params![from as i64, to as i64]).map_err(db)?;
    let mut leaves = Vec::with_capacity((to - from) as usize);
    fn text(v: ValueRef<'_>) -> Option<std::borrow::Cow<'_, str>> {
        match v {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n.to_string().into()),
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t)),
            other => Some(format!("{other:?}").into()),
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
        let mut fields = Vec::with_capacity(17);
        for i in 6..23 {
            fields.push(text(r.get_ref(i).map_err(db)?));
        }
        let key = scimtrail_audit::commitment::index_key(fields.iter().map(|f| f.as_deref()));
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
