//! Audit event queries: every filterable attribute is an indexed column.

use base64::Engine as _;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use scimtrail_core::AttrPath;
use scimtrail_store::{EventPage, EventQuery, StoreError, StoreResult};
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
        ("id", None) => col("id", ColKind::Text),
        ("seq", None) => col("seq", ColKind::Int),
        ("time", None) => col("time", ColKind::Time),
        ("requestid", None) => col("request_id", ColKind::Text),
        ("parentid", None) => col("parent_id", ColKind::Text),
        ("action", None) => col("action", ColKind::Text),
        ("actor", Some("kind")) => col("actor_kind", ColKind::Text),
        ("actor", Some("id")) => col("actor_id", ColKind::Text),
        ("actor", Some("name")) => col("actor_name", ColKind::Text),
        ("actor", Some("client")) => col("actor_client", ColKind::Text),
        ("operation", Some("method")) => col("method", ColKind::Text),
        ("operation", Some("scim")) => col("scim_op", ColKind::Text),
        ("target", Some("type")) => col("target_type", ColKind::Text),
        ("target", Some("id")) => col("target_id", ColKind::Text),
        ("target", Some("externalid")) => col("target_external_id", ColKind::Text),
        ("outcome", Some("result")) => col("result", ColKind::Text),
        ("outcome", Some("status")) => col("status", ColKind::Int),
        _ => None,
    }
}

fn with_leaf_hash(body: &str, leaf: &[u8]) -> StoreResult<Value> {
    let mut v: Value =
        serde_json::from_str(body).map_err(|e| StoreError::Backend(e.to_string()))?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "leafHash".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(leaf)),
        );
    }
    Ok(v)
}

pub fn events(conn: &Connection, tenant: &str, q: &EventQuery) -> StoreResult<EventPage> {
    let mut sql = String::from("SELECT seq, body, leaf_hash FROM audit_events WHERE tenant = ?");
    let mut params = vec![Param::Text(tenant.into())];
    if let Some(f) = &q.filter {
        sql.push_str(" AND ");
        to_sql(f, &event_column, &mut sql, &mut params).map_err(StoreError::InvalidQuery)?;
    }
    let (cmp, order) = if q.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(after) = q.after_seq {
        sql.push_str(&format!(" AND seq {cmp} ?"));
        params.push(Param::Int(after as i64));
    }
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?"));
    params.push(Param::Int(q.count as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(db)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    let more = rows.len() > q.count;
    let mut items = Vec::with_capacity(q.count);
    let mut last = None;
    for (seq, body, leaf) in rows.into_iter().take(q.count) {
        items.push(with_leaf_hash(&body, &leaf)?);
        last = Some(seq as u64);
    }
    Ok(EventPage {
        items,
        next_seq: if more { last } else { None },
    })
}

pub fn event(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<Value>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT body, leaf_hash FROM audit_events WHERE tenant = ? AND id = ?")
        .and_then(|mut s| {
            s.query_row(params![tenant, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db)?;
    row.map(|(b, l)| with_leaf_hash(&b, &l)).transpose()
}
