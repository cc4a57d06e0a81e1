//! Writes on PostgreSQL. Every transaction that appends to the log first locks the one row of
//! `log_head` (the sequencer): it reads the next `seq` there, appends its events and their
//! Merkle hashes from it, and moves it on before it commits. Writers of every process queue on
//! that lock, so the log has no gaps and the tree grows in log order; a transaction that rolls
//! back consumes nothing. Each job has a transaction of its own, refused as a whole.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::{GenericClient, Transaction};
use scimtrail_audit::commitment::new_salt;
use scimtrail_audit::merkle::{self, Hash, HashStore};
use scimtrail_audit::{seal, AuditEvent};
use scimtrail_core::Registry;
use scimtrail_store::{
    CheckpointSigner, MemberDelta, NewToken, PruneReport, ResourceWrite, Revoked, StoreError,
    StoreResult, StoredCheckpoint, TokenInfo, WriteKind,
};
use serde_json::Value;

use super::conn::{code, pg, Conn, Db, P};
use crate::plan;

type Tx<'a, 'b> = Db<'a, Transaction<'b>>;

/// How often a job whose transaction lost a serialization race or a deadlock is run again.
const RETRIES: usize = 16;

/// Run `f` in a transaction holding the log head, with the next `seq`. `f` answers its output,
/// how many `seq`s it used and how many resources it wrote. Answers the output and the log's
/// new size.
pub fn logged<T>(
    conn: &mut Conn,
    mut f: impl FnMut(&mut Tx<'_, '_>, i64) -> StoreResult<(T, i64, i64)>,
) -> StoreResult<(T, u64)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = (|| {
            let mut tx = read_committed(&mut conn.client)?;
            let (out, next) = {
                let mut db = Db::new(&mut tx, &mut conn.cache);
                let next: i64 = db
                    .one("SELECT next_seq FROM log_head FOR UPDATE", &[])?
                    .get(0);
                let (out, used, writes) = f(&mut db, next)?;
                if used > 0 || writes > 0 {
                    db.exec(
                        "UPDATE log_head SET next_seq = next_seq + ?, writes = writes + ?",
                        &[&used, &writes],
                    )?;
                }
                (out, next + used)
            };
            tx.commit().map_err(pg)?;
            Ok((out, next as u64))
        })();
        match result {
            Err(StoreError::Backend(m)) if attempt < RETRIES && retryable(&m) => {
                std::thread::sleep(std::time::Duration::from_millis(
                    1 + rand::random::<u64>() % 16,
                ));
            }
            other => return other,
        }
    }
}

/// A transaction at READ COMMITTED whatever the database's default: each statement after the
/// log-head lock then sees every commit made before the lock was granted (at REPEATABLE READ
/// the snapshot would predate the wait, and every writer that waited would fail).
fn read_committed(client: &mut postgres::Client) -> StoreResult<Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(pg)
}

/// Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are run again.
fn retryable(message: &str) -> bool {
    message.starts_with("40001:") || message.starts_with("40P01:")
}

fn unique_error(e: postgres::Error) -> StoreError {
    if code(&e) == Some("23505") {
        let on = e
            .as_db_error()
            .and_then(|d| d.constraint())
            .unwrap_or_default()
            .to_string();
        if on == "resources_user_name" {
            return StoreError::Uniqueness("userName is already taken".into());
        }
    }
    pg(e)
}

/// Apply the writes in order, their events from `seq` on, and check that no resource deleted
/// among them is left a member of a live Group.
pub fn write_all(
    db: &mut Tx<'_, '_>,
    head: Option<AuditEvent>,
    writes: Vec<(ResourceWrite, AuditEvent)>,
    seq: i64,
    reg: &Registry,
) -> StoreResult<Vec<AuditEvent>> {
    let mut deleted = Vec::new();
    let mut out = Vec::with_capacity(writes.len() + 1);
    if let Some(e) = head {
        out.push(append(db, e, seq)?);
    }
    for (w, e) in writes {
        if w.kind == WriteKind::Delete {
            deleted.push((w.tenant.clone(), w.id.clone(), w.new_version));
        }
        let at = seq + out.len() as i64;
        out.push(write(db, w, e, at, reg)?);
    }
    for (tenant, id, version) in deleted {
        let still = db.opt(
            "SELECT 1 FROM memberships m JOIN resources g ON g.tenant = m.tenant \
             AND g.id = m.group_id AND NOT g.deleted \
             WHERE m.tenant = ? AND m.member_id = ? LIMIT 1",
            &[&tenant, &id],
        )?;
        if still.is_some() {
            return Err(plan::still_member(version));
        }
    }
    Ok(out)
}

fn write(
    db: &mut Tx<'_, '_>,
    w: ResourceWrite,
    event: AuditEvent,
    seq: i64,
    reg: &Registry,
) -> StoreResult<AuditEvent> {
    let current = db.opt(
        "SELECT version, deleted, resource_type FROM resources WHERE tenant = ? AND id = ?",
        &[&w.tenant, &w.id],
    )?;
    let current = current.map(|r| {
        (
            r.get::<_, i64>(0),
            r.get::<_, bool>(1),
            r.get::<_, String>(2),
        )
    });
    plan::check(
        &w,
        current
            .as_ref()
            .map(|(version, deleted, ty)| plan::Current {
                version: *version,
                deleted: *deleted,
                resource_type: ty,
            }),
    )?;
    let row = plan::Row::of(&w);
    let rid: i64 = match w.kind {
        WriteKind::Create => {
            db.c.query_one(
                "INSERT INTO resources (tenant, resource_type, id, version, deleted, created, \
                 last_modified, user_name_ci, external_id, display_name_ci, active, data) \
                 VALUES ($1, $2, $3, $4, FALSE, $5, $5, $6, $7, $8, $9, $10) RETURNING rid",
                &[
                    &w.tenant as P<'_>,
                    &w.resource_type,
                    &w.id,
                    &w.new_version,
                    &w.time,
                    &row.user_name_ci,
                    &row.external_id,
                    &row.display_ci,
                    &row.active,
                    &row.text,
                ],
            )
            .map_err(unique_error)?
            .get(0)
        }
        // An undelete is a replace that also clears the tombstone (a no-op on a live row).
        WriteKind::Replace | WriteKind::Undelete => {
            db.c.query_one(
                "UPDATE resources SET version = $1, last_modified = $2, deleted = FALSE, \
                 user_name_ci = $3, external_id = $4, display_name_ci = $5, active = $6, \
                 data = $7 WHERE tenant = $8 AND id = $9 RETURNING rid",
                &[
                    &w.new_version as P<'_>,
                    &w.time,
                    &row.user_name_ci,
                    &row.external_id,
                    &row.display_ci,
                    &row.active,
                    &row.text,
                    &w.tenant,
                    &w.id,
                ],
            )
            .map_err(unique_error)?
            .get(0)
        }
        WriteKind::Delete => db
            .one(
                "UPDATE resources SET version = ?, last_modified = ?, deleted = TRUE \
                 WHERE tenant = ? AND id = ? RETURNING rid",
                &[&w.new_version, &w.time, &w.tenant, &w.id],
            )?
            .get(0),
    };
    index_unique(db, reg, &w, &row.data)?;
    if w.resource_type == "User" {
        db.exec("DELETE FROM resource_emails WHERE rid = ?", &[&rid])?;
        if w.kind != WriteKind::Delete {
            for key in plan::email_keys(&row.data) {
                db.exec(
                    "INSERT INTO resource_emails (tenant, value_ci, rid) VALUES (?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                    &[&w.tenant, &key, &rid],
                )?;
            }
        }
    }
    if w.resource_type == "Group" && w.kind != WriteKind::Delete {
        let delta = match &w.members {
            Some(delta) => delta.clone(),
            None => full_list_delta(db, &w.tenant, &w.id, row.members.as_ref())?,
        };
        apply_delta(db, &w.tenant, &w.id, w.new_version, &delta)?;
    }
    let sealed = append(db, event, seq)?;
    let snapshot = w.data.as_ref().map(|_| row.text.as_str());
    db.exec(
        "INSERT INTO resource_versions (tenant, id, version, resource_type, time, deleted, data, \
         event_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            &w.tenant,
            &w.id,
            &w.new_version,
            &w.resource_type,
            &w.time,
            &(w.kind == WriteKind::Delete),
            &snapshot,
            &seq,
        ],
    )?;
    Ok(sealed)
}

fn index_unique(
    db: &mut Tx<'_, '_>,
    reg: &Registry,
    w: &ResourceWrite,
    data: &Value,
) -> StoreResult<()> {
    let Some(values) = plan::unique_rows(reg, w, data) else {
        return Ok(());
    };
    if w.kind != WriteKind::Create {
        db.exec(
            "DELETE FROM resource_unique WHERE tenant = ? AND id = ?",
            &[&w.tenant, &w.id],
        )?;
    }
    for v in &values {
        let scope = v.scope.as_deref().unwrap_or("");
        let n = db.exec(
            "INSERT INTO resource_unique (tenant, scope, attr, key, id) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
            &[&w.tenant, &scope, &v.attribute, &v.key, &w.id],
        )?;
        if n == 0 {
            return Err(plan::taken(v));
        }
    }
    Ok(())
}

fn full_list_delta(
    db: &mut Tx<'_, '_>,
    tenant: &str,
    group: &str,
    members: Option<&Value>,
) -> StoreResult<MemberDelta> {
    let rows = db.rows(
        "SELECT m.member_id, m.member_type, m.display FROM memberships m \
         JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND NOT r.deleted \
         WHERE m.tenant = ? AND m.group_id = ?",
        &[&tenant, &group],
    )?;
    let existing: HashMap<String, (String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    Ok(plan::full_list_delta(existing, members))
}

fn apply_delta(
    db: &mut Tx<'_, '_>,
    tenant: &str,
    group: &str,
    version: i64,
    delta: &MemberDelta,
) -> StoreResult<()> {
    const RECORD: &str = "INSERT INTO membership_changes (tenant, group_id, version, member_id, \
         op, member_type, display) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (tenant, group_id, version, member_id) DO UPDATE SET op = excluded.op, \
         member_type = excluded.member_type, display = excluded.display";
    for m in &delta.add {
        let changed = db.exec(
            "INSERT INTO memberships (tenant, group_id, member_id, member_type, display) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, group_id, member_id) \
             DO UPDATE SET member_type = excluded.member_type, display = excluded.display \
             WHERE memberships.member_type IS DISTINCT FROM excluded.member_type \
             OR memberships.display IS DISTINCT FROM excluded.display",
            &[&tenant, &group, &m.value, &m.resource_type, &m.display],
        )?;
        if changed > 0 {
            db.exec(
                RECORD,
                &[
                    &tenant,
                    &group,
                    &version,
                    &m.value,
                    &"add",
                    &m.resource_type,
                    &m.display,
                ],
            )?;
        }
    }
    let none: Option<String> = None;
    for id in &delta.remove {
        let gone = db.exec(
            "DELETE FROM memberships WHERE tenant = ? AND group_id = ? AND member_id = ?",
            &[&tenant, &group, id],
        )?;
        if gone > 0 {
            db.exec(
                RECORD,
                &[&tenant, &group, &version, id, &"remove", &none, &none],
            )?;
        }
    }
    Ok(())
}

/// Seal the event at `seq` and append it: its row, payload, change paths, hour and stored
/// Merkle hashes.
pub fn append(db: &mut Tx<'_, '_>, event: AuditEvent, seq: i64) -> StoreResult<AuditEvent> {
    let sealed =
        seal(event, seq as u64, &new_salt()).map_err(|e| StoreError::Backend(e.to_string()))?;
    let e = &sealed.event;
    let status = i64::from(e.outcome.status);
    db.exec(
        "INSERT INTO audit_events (seq, id, tenant, time, request_id, parent_id, actor_kind, \
         actor_id, actor_name, actor_client, action, method, scim_op, target_type, target_id, \
         target_external_id, result, status, leaf_hash, commitment, actor_ip, target_display, \
         scim_type) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            &seq,
            &e.id,
            &e.tenant,
            &e.time,
            &e.request_id,
            &e.parent_id,
            &e.actor.kind,
            &e.actor.id,
            &e.actor.name,
            &e.actor.client,
            &e.action,
            &e.operation.method,
            &e.operation.scim,
            &e.target.resource_type,
            &e.target.id,
            &e.target.external_id,
            &e.outcome.result,
            &status,
            &&sealed.leaf_hash[..],
            &sealed.commitment,
            &e.actor.ip,
            &e.target.display,
            &e.outcome.scim_type,
        ],
    )?;
    for c in &e.changes {
        db.exec(
            "INSERT INTO audit_change_paths (seq, path, tenant) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
            &[&seq, &c.path, &e.tenant],
        )?;
    }
    let hour = e.time.get(..13).unwrap_or(&e.time);
    db.exec(
        "INSERT INTO audit_hours (tenant, hour, min_seq, max_seq) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (tenant, hour) DO UPDATE SET \
         min_seq = LEAST(audit_hours.min_seq, excluded.min_seq), \
         max_seq = GREATEST(audit_hours.max_seq, excluded.max_seq)",
        &[&e.tenant, &hour, &seq],
    )?;
    db.exec(
        "INSERT INTO audit_payloads (seq, salt, vals) VALUES (?, ?, ?)",
        &[&seq, &sealed.payload.salt, &sealed.payload.values],
    )?;
    append_leaf(db, seq as u64, sealed.leaf_hash)?;
    Ok(sealed.event)
}

/// Stored hashes read on one client, in one query per call.
pub struct PgTree<'r, 'a, C: GenericClient>(pub RefCell<&'r mut Db<'a, C>>);

impl<C: GenericClient> HashStore for PgTree<'_, '_, C> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        let want: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
        let rows = self
            .0
            .borrow_mut()
            .rows(
                "SELECT idx, hash FROM merkle_hashes WHERE idx = ANY(?)",
                &[&want],
            )
            .map_err(|e| e.to_string())?;
        let found: HashMap<i64, Vec<u8>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        want.iter()
            .map(|i| {
                found
                    .get(i)
                    .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                    .ok_or_else(|| format!("stored hash {i} is missing or damaged"))
            })
            .collect()
    }
}

fn append_leaf(db: &mut Tx<'_, '_>, n: u64, leaf: Hash) -> StoreResult<()> {
    let new = merkle::hashes_to_store(n, leaf, &PgTree(RefCell::new(db)))
        .map_err(crate::sqlite::merkle_err)?;
    for (idx, h) in new {
        db.exec(
            "INSERT INTO merkle_hashes (idx, hash) VALUES (?, ?)",
            &[&(idx as i64), &&h[..]],
        )?;
    }
    Ok(())
}

pub fn create_token(db: &mut Tx<'_, '_>, t: NewToken) -> StoreResult<TokenInfo> {
    db.exec(
        "INSERT INTO tokens (id, name, hash, scopes, tenant, created) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            &t.id,
            &t.name,
            &t.hash_hex,
            &t.scopes.join(" "),
            &t.tenant,
            &t.created,
        ],
    )?;
    Ok(TokenInfo {
        id: t.id,
        name: t.name,
        scopes: t.scopes,
        tenant: t.tenant,
        created: t.created,
        revoked: None,
    })
}

pub const TOKEN_COLUMNS: &str = "id, name, scopes, tenant, created, revoked";

pub fn token_row(r: &postgres::Row) -> TokenInfo {
    plan::token_info((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
}

pub fn revoke_token(db: &mut Tx<'_, '_>, id_or_name: &str) -> StoreResult<Revoked> {
    let found: Vec<TokenInfo> = db
        .rows(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE (id = ?1 OR name = ?1) \
                 AND revoked IS NULL ORDER BY id = ?1 DESC, created"
            ),
            &[&id_or_name],
        )?
        .iter()
        .map(token_row)
        .collect();
    let one = match crate::plan::revoke_choice(found, id_or_name) {
        Revoked::Token(one) => one,
        answer => return Ok(answer),
    };
    let now = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
    db.exec(
        "UPDATE tokens SET revoked = ? WHERE id = ?",
        &[&now, &one.id],
    )?;
    Ok(Revoked::Token(TokenInfo {
        revoked: Some(now),
        ..one
    }))
}

pub fn prune(db: &mut Tx<'_, '_>, before: &str, dry_run: bool) -> StoreResult<PruneReport> {
    let r = db.one(
        "SELECT COUNT(*), MIN(p.seq), MAX(p.seq) FROM audit_payloads p \
         JOIN audit_events e ON e.seq = p.seq WHERE e.time < ?",
        &[&before],
    )?;
    let (n, first, last): (i64, Option<i64>, Option<i64>) = (r.get(0), r.get(1), r.get(2));
    if !dry_run && n > 0 {
        db.exec(
            "DELETE FROM audit_payloads WHERE seq IN \
             (SELECT seq FROM audit_events WHERE time < ?)",
            &[&before],
        )?;
    }
    Ok(PruneReport {
        payloads: n as u64,
        first_seq: first.map(|s| s as u64),
        last_seq: last.map(|s| s as u64),
        dry_run,
        event_seq: None,
    })
}

/// Sign and store a checkpoint over the whole committed tree, holding the log head so that
/// no append moves it meanwhile and one process signs at a time. PostgreSQL's commit is
/// durable (`synchronous_commit`), so every event it covers survives a crash.
pub fn checkpoint(
    conn: &mut Conn,
    sign: CheckpointSigner,
) -> StoreResult<Option<StoredCheckpoint>> {
    let mut tx = read_committed(&mut conn.client)?;
    let out = {
        let mut db = Db::new(&mut tx, &mut conn.cache);
        let size: i64 = db
            .one("SELECT next_seq FROM log_head FOR UPDATE", &[])?
            .get(0);
        // Read under the lock, so that checkpoint times grow with their sizes across processes.
        let time = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
        let last: Option<i64> = db.one("SELECT MAX(size) FROM checkpoints", &[])?.get(0);
        let size = size as u64;
        if size == 0 || last.is_some_and(|l| l as u64 >= size) {
            return Ok(None);
        }
        let root = merkle::root(size, &PgTree(RefCell::new(&mut db)))
            .map_err(crate::sqlite::merkle_err)?;
        let note = sign(size, root).map_err(StoreError::Backend)?;
        db.exec(
            "INSERT INTO checkpoints (size, time, root, note) VALUES (?, ?, ?, ?)",
            &[&(size as i64), &time, &&root[..], &note],
        )?;
        StoredCheckpoint {
            size,
            root,
            time,
            note,
        }
    };
    tx.commit().map_err(pg)?;
    Ok(Some(out))
}
