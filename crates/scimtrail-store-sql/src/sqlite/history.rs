//! History reads: the versions of a resource, its snapshot at a version, a Group's members at a
//! version (replayed from `membership_changes`) and its member changes.

use rusqlite::{params, Connection, OptionalExtension};
use scimtrail_store::{Member, MemberChange, Snapshot, StoreResult, VersionRecord};
use serde_json::Value;

use super::write::db;

const VERSION_COLUMNS: &str = "resource_type, id, version, time, deleted, event_seq, data";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(VersionRecord, Option<String>)> {
    Ok((
        VersionRecord {
            resource_type: r.get(0)?,
            id: r.get(1)?,
            version: r.get(2)?,
            time: r.get(3)?,
            deleted: r.get(4)?,
            event_seq: r.get::<_, i64>(5)? as u64,
        },
        r.get(6)?,
    ))
}

pub fn versions(
    conn: &Connection,
    tenant: &str,
    id: &str,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<VersionRecord>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions \
             WHERE tenant = ? AND id = ? AND version > ? ORDER BY version LIMIT ?"
        ))
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, id, after, limit as i64], record)
        .map_err(db)?;
    rows.map(|r| r.map(|(v, _)| v))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)
}

pub fn latest_version(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> StoreResult<Option<VersionRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_versions \
         WHERE tenant = ? AND id = ? ORDER BY version DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row(params![tenant, id], record).optional())
    .map(|r| r.map(|(v, _)| v))
    .map_err(db)
}

pub fn snapshot(
    conn: &Connection,
    tenant: &str,
    id: &str,
    version: i64,
) -> StoreResult<Option<Snapshot>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions \
             WHERE tenant = ? AND id = ? AND version = ?"
        ))
        .and_then(|mut s| s.query_row(params![tenant, id, version], record).optional())
        .map_err(db)?;
    let Some((record, data)) = row else {
        return Ok(None);
    };
    let data = match data {
        Some(text) => {
            let mut v: Value = serde_json::from_str(&text)
                .map_err(|e| scimtrail_store::StoreError::Backend(e.to_string()))?;
            // Snapshots written before member changes were kept apart may hold members.
            if record.resource_type == "Group" {
                if let Some(o) = v.as_object_mut() {
                    o.remove("members");
                }
            }
            Some(v)
        }
        None => None,
    };
    Ok(Some(Snapshot { record, data }))
}

pub fn members_at(
    conn: &Connection,
    tenant: &str,
    group: &str,
    version: i64,
) -> StoreResult<Vec<Member>> {
    let Some(at) = conn
        .prepare_cached(
            "SELECT event_seq FROM resource_versions WHERE tenant = ? AND id = ? AND version = ?",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant, group, version], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map_err(db)?
    else {
        return Ok(Vec::new());
    };
    // The last change of each member up to the version, if it is an add; minus members whose
    // resource was deleted when the version was written (a GET hid them). The log's order
    // (`event_seq`) says what came first, not the clock.
    let mut s = conn
        .prepare_cached(
            "SELECT mc.member_id, mc.member_type, mc.display FROM membership_changes mc \
             WHERE mc.tenant = ?1 AND mc.group_id = ?2 AND mc.version <= ?3 AND mc.op = 'add' \
             AND mc.version = (SELECT MAX(x.version) FROM membership_changes x \
                 WHERE x.tenant = ?1 AND x.group_id = ?2 AND x.member_id = mc.member_id \
                 AND x.version <= ?3) \
             AND NOT EXISTS (SELECT 1 FROM resource_versions rv \
                 WHERE rv.tenant = ?1 AND rv.id = mc.member_id AND rv.deleted = 1 \
                 AND rv.version = (SELECT MAX(y.version) FROM resource_versions y \
                     WHERE y.tenant = ?1 AND y.id = mc.member_id AND y.event_seq <= ?4)) \
             ORDER BY mc.member_id",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, group, version, at], |r| {
            Ok(Member {
                value: r.get(0)?,
                resource_type: r
                    .get::<_, Option<String>>(1)?
                    .unwrap_or_else(|| "User".into()),
                display: r.get(2)?,
            })
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

pub fn member_changes(
    conn: &Connection,
    tenant: &str,
    group: &str,
    from: i64,
    to: i64,
) -> StoreResult<Vec<MemberChange>> {
    let mut s = conn
        .prepare_cached(
            "SELECT version, op, member_id, member_type, display FROM membership_changes \
             WHERE tenant = ? AND group_id = ? AND version >= ? AND version <= ? \
             ORDER BY version, member_id",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, group, from, to], |r| {
            Ok(MemberChange {
                version: r.get(0)?,
                op: r.get(1)?,
                member: Member {
                    value: r.get(2)?,
                    resource_type: r
                        .get::<_, Option<String>>(3)?
                        .unwrap_or_else(|| "User".into()),
                    display: r.get(4)?,
                },
            })
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}
