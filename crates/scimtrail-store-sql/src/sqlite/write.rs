//! One write inside the batch transaction: resource row, memberships, version snapshot and
//! sealed event. Runs on the writer thread ([`super::writer`]), which hands out the `seq`.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use scimtrail_audit::commitment::new_salt;
use scimtrail_audit::{seal, AuditEvent, Sealed};
use scimtrail_core::Registry;
use scimtrail_store::{MemberDelta, ResourceWrite, StoreError, StoreResult, WriteKind};

use crate::plan;
use serde_json::Value;

pub fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Apply the writes in order, their events from `seq` on, and check that no resource deleted
/// among them is left a member of a live Group.
pub fn write_all(
    conn: &Connection,
    head: Option<AuditEvent>,
    writes: Vec<(ResourceWrite, AuditEvent)>,
    seq: i64,
    reg: &Registry,
) -> StoreResult<Vec<AuditEvent>> {
    let mut deleted = Vec::new();
    let mut out = Vec::with_capacity(writes.len() + 1);
    if let Some(e) = head {
        out.push(append(conn, e, seq)?);
    }
    for (w, e) in writes {
        if w.kind == WriteKind::Delete {
            deleted.push((w.tenant.clone(), w.id.clone(), w.new_version));
        }
        out.push(write(conn, w, e, seq + out.len() as i64, reg)?);
    }
    for (tenant, id, version) in deleted {
        let still_member = conn
            .prepare_cached(
                "SELECT 1 FROM memberships m JOIN resources g ON g.tenant = m.tenant \
                 AND g.id = m.group_id AND g.deleted = 0 \
                 WHERE m.tenant = ? AND m.member_id = ? LIMIT 1",
            )
            .and_then(|mut s| s.exists(params![tenant, id]))
            .map_err(db)?;
        if still_member {
            return Err(plan::still_member(version));
        }
    }
    Ok(out)
}

/// Keep `resource_unique` equal to the unique values of the resource's new state: none once
/// deleted. A value another resource holds refuses the write (`Uniqueness`). The User's
/// userName is left to its own column. Types without such attributes cost nothing here.
fn index_unique(
    conn: &Connection,
    reg: &Registry,
    w: &ResourceWrite,
    data: &Value,
) -> StoreResult<()> {
    let Some(values) = plan::unique_rows(reg, w, data) else {
        return Ok(());
    };
    if w.kind != WriteKind::Create {
        conn.prepare_cached("DELETE FROM resource_unique WHERE tenant = ? AND id = ?")
            .and_then(|mut s| s.execute(params![w.tenant, w.id]))
            .map_err(db)?;
    }
    for v in &values {
        let inserted = conn
            .prepare_cached(
                "INSERT INTO resource_unique (tenant, scope, attr, key, id) VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    w.tenant,
                    v.scope.as_deref().unwrap_or(""),
                    v.attribute,
                    v.key,
                    w.id
                ])
            });
        match inserted {
            Err(e) if is_unique_violation(&e) || is_primary_key_violation(&e) => {
                return Err(plan::taken(v))
            }
            other => {
                other.map_err(db)?;
            }
        }
    }
    Ok(())
}

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Apply `w` and append its event at `seq`.
fn write(
    conn: &Connection,
    w: ResourceWrite,
    event: AuditEvent,
    seq: i64,
    reg: &Registry,
) -> StoreResult<AuditEvent> {
    let current: Option<(i64, i64, String)> = conn
        .prepare_cached(
            "SELECT version, deleted, resource_type FROM resources WHERE tenant = ? AND id = ?",
        )
        .and_then(|mut s| {
            s.query_row(params![w.tenant, w.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(db)?;
    plan::check(
        &w,
        current
            .as_ref()
            .map(|(version, deleted, ty)| plan::Current {
                version: *version,
                deleted: *deleted != 0,
                resource_type: ty,
            }),
    )?;
    let plan::Row {
        data,
        members,
        user_name_ci,
        external_id,
        display_ci,
        text: data_text,
        ..
    } = plan::Row::of(&w);

    let result = match w.kind {
        WriteKind::Create => conn
            .prepare_cached(
                "INSERT INTO resources (tenant, resource_type, id, version, deleted, created, \
                 last_modified, user_name_ci, external_id, display_name_ci, data) \
                 VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    w.tenant,
                    w.resource_type,
                    w.id,
                    w.new_version,
                    w.time,
                    w.time,
                    user_name_ci,
                    external_id,
                    display_ci,
                    data_text
                ])
            }),
        // An undelete is a replace that also clears the tombstone (a no-op on a live row).
        WriteKind::Replace | WriteKind::Undelete => conn
            .prepare_cached(
                "UPDATE resources SET version = ?, last_modified = ?, deleted = 0, \
                 user_name_ci = ?, external_id = ?, display_name_ci = ?, data = ? \
                 WHERE tenant = ? AND id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    w.new_version,
                    w.time,
                    user_name_ci,
                    external_id,
                    display_ci,
                    data_text,
                    w.tenant,
                    w.id
                ])
            }),
        WriteKind::Delete => conn
            .prepare_cached(
                "UPDATE resources SET version = ?, last_modified = ?, deleted = 1 \
                 WHERE tenant = ? AND id = ?",
            )
            .and_then(|mut s| s.execute(params![w.new_version, w.time, w.tenant, w.id])),
    };
    if let Err(e) = result {
        return Err(if is_unique_violation(&e) {
            StoreError::Uniqueness("userName is already taken".into())
        } else {
            db(e)
        });
    }
    index_unique(conn, reg, &w, &data)?;
    if w.resource_type == "User" {
        index_emails(
            conn,
            &w.tenant,
            &w.id,
            (w.kind != WriteKind::Delete).then_some(&data),
        )?;
    }
    if w.resource_type == "Group" && w.kind != WriteKind::Delete {
        let delta = match &w.members {
            Some(delta) => delta.clone(),
            None => full_list_delta(conn, &w.tenant, &w.id, members.as_ref())?,
        };
        apply_delta(conn, &w.tenant, &w.id, w.new_version, &delta)?;
    }
    let sealed = append(conn, event, seq)?;
    conn.prepare_cached(
        "INSERT INTO resource_versions (tenant, id, version, resource_type, time, deleted, data, \
         event_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.tenant,
            w.id,
            w.new_version,
            w.resource_type,
            w.time,
            w.kind == WriteKind::Delete,
            // Group snapshots without members: those are in membership_changes.
            w.data.as_ref().map(|_| data_text.as_str()),
            seq
        ])
    })
    .map_err(db)?;
    Ok(sealed)
}

/// Seal the event at `seq` and append it: its commitment row, its payload and its stored
/// Merkle hashes, in the caller's transaction.
pub fn append(conn: &Connection, event: AuditEvent, seq: i64) -> StoreResult<AuditEvent> {
    let sealed =
        seal(event, seq as u64, &new_salt()).map_err(|e| StoreError::Backend(e.to_string()))?;
    insert_sealed(conn, &sealed, seq)?;
    super::tree::append(conn, seq as u64, sealed.leaf_hash)?;
    Ok(sealed.event)
}

/// The event and payload rows of a sealed event.
pub fn insert_sealed(conn: &Connection, sealed: &Sealed, seq: i64) -> StoreResult<()> {
    let e = &sealed.event;
    conn.prepare_cached(
        "INSERT INTO audit_events (seq, id, tenant, time, request_id, parent_id, actor_kind, \
         actor_id, actor_name, actor_client, action, method, scim_op, target_type, target_id, \
         target_external_id, result, status, leaf_hash, commitment, actor_ip, target_display, \
         scim_type) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            e.id,
            e.tenant,
            e.time,
            e.request_id,
            e.parent_id,
            e.actor.kind,
            e.actor.id,
            e.actor.name,
            e.actor.client,
            e.action,
            e.operation.method,
            e.operation.scim,
            e.target.resource_type,
            e.target.id,
            e.target.external_id,
            e.outcome.result,
            e.outcome.status,
            &sealed.leaf_hash[..],
            sealed.commitment,
            e.actor.ip,
            e.target.display,
            e.outcome.scim_type,
        ])
    })
    .map_err(db)?;
    if !e.changes.is_empty() {
        let mut s = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO audit_change_paths (seq, path, tenant) VALUES (?, ?, ?)",
            )
            .map_err(db)?;
        for c in &e.changes {
            s.execute(params![seq, c.path, e.tenant]).map_err(db)?;
        }
    }
    // The hour's seq range (see migration 0005): what bounds a query by time.
    conn.prepare_cached(
        "INSERT INTO audit_hours (tenant, hour, min_seq, max_seq) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (tenant, hour) DO UPDATE SET min_seq = min(min_seq, excluded.min_seq), \
         max_seq = max(max_seq, excluded.max_seq)",
    )
    .and_then(|mut s| s.execute(params![e.tenant, e.time.get(..13).unwrap_or(&e.time), seq]))
    .map_err(db)?;
    conn.prepare_cached("INSERT INTO audit_payloads (seq, salt, vals) VALUES (?, ?, ?)")
        .and_then(|mut s| s.execute(params![seq, sealed.payload.salt, sealed.payload.values]))
        .map_err(db)?;
    Ok(())
}

/// The difference between a Group's live members and a complete new member list
/// (`plan::full_list_delta`).
fn full_list_delta(
    conn: &Connection,
    tenant: &str,
    group: &str,
    members: Option<&Value>,
) -> StoreResult<MemberDelta> {
    let mut existing: HashMap<String, (String, Option<String>)> = HashMap::new();
    let mut s = conn
        .prepare_cached(
            "SELECT m.member_id, m.member_type, m.display FROM memberships m \
             JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND r.deleted = 0 \
             WHERE m.tenant = ? AND m.group_id = ?",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, group], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
        })
        .map_err(db)?;
    for row in rows {
        let (id, v) = row.map_err(db)?;
        existing.insert(id, v);
    }
    Ok(plan::full_list_delta(existing, members))
}

/// Apply a member delta and record it under the Group's new version. Only real changes are
/// recorded: adding a present member unchanged, or removing an absent one, does nothing.
fn apply_delta(
    conn: &Connection,
    tenant: &str,
    group: &str,
    version: i64,
    delta: &MemberDelta,
) -> StoreResult<()> {
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO memberships (tenant, group_id, member_id, member_type, display) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, group_id, member_id) \
             DO UPDATE SET member_type = excluded.member_type, display = excluded.display \
             WHERE member_type IS NOT excluded.member_type OR display IS NOT excluded.display",
        )
        .map_err(db)?;
    let mut delete = conn
        .prepare_cached(
            "DELETE FROM memberships WHERE tenant = ? AND group_id = ? AND member_id = ?",
        )
        .map_err(db)?;
    let mut record = conn
        .prepare_cached(
            "INSERT INTO membership_changes (tenant, group_id, version, member_id, op, \
             member_type, display) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant, group_id, version, member_id) DO UPDATE SET op = excluded.op, \
             member_type = excluded.member_type, display = excluded.display",
        )
        .map_err(db)?;
    for m in &delta.add {
        let changed = upsert
            .execute(params![tenant, group, m.value, m.resource_type, m.display])
            .map_err(db)?;
        if changed > 0 {
            record
                .execute(params![
                    tenant,
                    group,
                    version,
                    m.value,
                    "add",
                    m.resource_type,
                    m.display
                ])
                .map_err(db)?;
        }
    }
    for id in &delta.remove {
        if delete.execute(params![tenant, group, id]).map_err(db)? > 0 {
            record
                .execute(params![
                    tenant,
                    group,
                    version,
                    id,
                    "remove",
                    None::<String>,
                    None::<String>
                ])
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Keep `resource_emails` (the index behind `emails.value eq`) in step with a User's write:
/// its rows are those of `data`, none once it is deleted.
fn index_emails(
    conn: &Connection,
    tenant: &str,
    id: &str,
    data: Option<&Value>,
) -> StoreResult<()> {
    let rid: i64 = conn
        .prepare_cached("SELECT rid FROM resources WHERE tenant = ? AND id = ?")
        .and_then(|mut s| s.query_row(params![tenant, id], |r| r.get(0)))
        .map_err(db)?;
    conn.prepare_cached("DELETE FROM resource_emails WHERE rid = ?")
        .and_then(|mut s| s.execute(params![rid]))
        .map_err(db)?;
    for key in data.map(plan::email_keys).unwrap_or_default() {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO resource_emails (tenant, value_ci, rid) VALUES (?, ?, ?)",
        )
        .and_then(|mut s| s.execute(params![tenant, key, rid]))
        .map_err(db)?;
    }
    Ok(())
}
