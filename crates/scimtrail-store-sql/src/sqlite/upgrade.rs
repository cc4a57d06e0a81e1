//! The one-time upgrade of events written before leaf format v1.
//!
//! Those events stored their whole canonical JSON as the leaf. Leaf format v1 commits to a
//! salted digest of each body and value instead, so each old event is re-sealed: its
//! commitment and leaf recomputed, its payload split off, its stored tree hashes written. This
//! rewrites leaves, which a tamper-evident log must never do — it is allowed here only because
//! no checkpoint existed before v1, and it refuses to run if one does.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use scimtrail_audit::commitment::new_salt;
use scimtrail_audit::{seal, AuditEvent};
use scimtrail_store::{StoreError, StoreResult};

use super::write::{db, insert_sealed};

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    reseal(conn)?;
    rekey_user_names(conn)?;
    index_emails(conn)
}

/// Fill `resource_emails` for the Users stored before it existed (see migration 0006), with
/// the keys the writer computes.
fn index_emails(conn: &mut Connection) -> StoreResult<()> {
    if !pending(conn, "email_values")? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    {
        let mut read = tx
            .prepare(
                "SELECT rid, tenant, data FROM resources \
                 WHERE resource_type = 'User' AND deleted = 0",
            )
            .map_err(db)?;
        let mut insert = tx
            .prepare(
                "INSERT OR IGNORE INTO resource_emails (tenant, value_ci, rid) VALUES (?, ?, ?)",
            )
            .map_err(db)?;
        let mut rows = read.query([]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let (rid, tenant, data): (i64, String, String) = (
                row.get(0).map_err(db)?,
                row.get(1).map_err(db)?,
                row.get(2).map_err(db)?,
            );
            let data: serde_json::Value =
                serde_json::from_str(&data).map_err(|e| StoreError::Backend(e.to_string()))?;
            for key in crate::plan::email_keys(&data) {
                insert.execute(params![tenant, key, rid]).map_err(db)?;
            }
        }
    }
    tx.execute("DELETE FROM log_meta WHERE key = 'email_values'", [])
        .map_err(db)?;
    tx.commit().map_err(db)
}

/// Whether a one-time upgrade step is marked pending in `log_meta`.
fn pending(conn: &Connection, key: &str) -> StoreResult<bool> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM log_meta WHERE key = ?", [key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)?;
    Ok(v.as_deref() == Some("pending"))
}

/// Recompute the uniqueness key of every stored User (see migration 0004). Two live users
/// whose names only now compare equal both stay: the later one keeps a key of its own, and a
/// warning names them, since refusing to start would help no one.
fn rekey_user_names(conn: &mut Connection) -> StoreResult<()> {
    if !pending(conn, "user_name_keys")? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let users: Vec<(i64, String, String, bool, Option<String>)> = {
        let mut s = tx
            .prepare(
                "SELECT rid, tenant, id, deleted, json_extract(data, '$.userName') FROM resources \
                 WHERE resource_type = 'User' ORDER BY rid",
            )
            .map_err(db)?;
        let rows = s
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    // Clear first, so that a key moving between rows never meets the unique index midway.
    tx.execute(
        "UPDATE resources SET user_name_ci = NULL WHERE resource_type = 'User'",
        [],
    )
    .map_err(db)?;
    let mut taken = std::collections::HashMap::new();
    for (rid, tenant, id, deleted, name) in users {
        let Some(name) = name else { continue };
        let mut key = scimtrail_core::username::key(&name);
        if !deleted {
            if let Some(first) = taken.insert((tenant.clone(), key.clone()), id.clone()) {
                tracing::warn!(tenant, first, second = %id, "two users now share a userName; the second keeps a key of its own");
                key = format!("\u{1}{id}");
            }
        }
        tx.execute(
            "UPDATE resources SET user_name_ci = ? WHERE rid = ?",
            params![key, rid],
        )
        .map_err(db)?;
    }
    tx.execute("DELETE FROM log_meta WHERE key = 'user_name_keys'", [])
        .map_err(db)?;
    tx.commit().map_err(db)
}

fn reseal(conn: &mut Connection) -> StoreResult<()> {
    if !pending(conn, "leaf_upgrade")? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let signed: i64 = tx
        .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
        .map_err(db)?;
    if signed > 0 {
        return Err(StoreError::Backend(
            "refusing to re-seal old events: checkpoints have been signed".into(),
        ));
    }
    let rows: Vec<(i64, String)> = {
        let mut s = tx
            .prepare("SELECT seq, commitment FROM audit_events ORDER BY seq")
            .map_err(db)?;
        let rows = s
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)?
    };
    tx.execute("DELETE FROM audit_events", []).map_err(db)?;
    tx.execute("DELETE FROM merkle_hashes", []).map_err(db)?;
    tx.execute("DELETE FROM audit_payloads", []).map_err(db)?;
    tx.execute("DELETE FROM audit_change_paths", [])
        .map_err(db)?;
    tx.execute("DELETE FROM audit_hours", []).map_err(db)?;
    for (expected, (seq, body)) in rows.into_iter().enumerate() {
        if seq != expected as i64 {
            return Err(StoreError::Backend(format!(
                "cannot upgrade the log: seq {expected} is missing"
            )));
        }
        let event: AuditEvent = serde_json::from_str(&body)
            .map_err(|e| StoreError::Backend(format!("cannot upgrade event seq {seq}: {e}")))?;
        let sealed =
            seal(event, seq as u64, &new_salt()).map_err(|e| StoreError::Backend(e.to_string()))?;
        insert_sealed(&tx, &sealed, seq)?;
        super::tree::append(&tx, seq as u64, sealed.leaf_hash)?;
    }
    tx.execute(
        "UPDATE log_meta SET value = ?1 WHERE key = 'leaf_upgrade'",
        params!["done"],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    tracing::info!("re-sealed the audit log in leaf format v1");
    Ok(())
}
