//! API tokens. Only the SHA-256 of a token is ever stored.

use rusqlite::{params, Connection, OptionalExtension};
use scimtrail_store::{NewToken, Revoked, StoreResult, TokenInfo};

use super::write::db;

type Row = (String, String, String, String, String, Option<String>);

use crate::plan::token_info as info;

const COLS: &str = "id, name, scopes, tenant, created, revoked";

pub fn count(conn: &Connection) -> StoreResult<i64> {
    conn.query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))
        .map_err(db)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// Insert a token (on the writer, in the transaction of its event).
pub fn insert(conn: &Connection, t: NewToken) -> StoreResult<TokenInfo> {
    conn.prepare_cached(
        "INSERT INTO tokens (id, name, hash, scopes, tenant, created) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id,
            t.name,
            t.hash_hex,
            t.scopes.join(" "),
            t.tenant,
            t.created
        ])
    })
    .map_err(db)?;
    Ok(TokenInfo {
        id: t.id,
        name: t.name,
        scopes: t.scopes,
        tenant: t.tenant,
        created: t.created,
        revoked: None,
    })
}

pub fn find(conn: &Connection, hash_hex: &str) -> StoreResult<Option<TokenInfo>> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM tokens WHERE hash = ? AND revoked IS NULL"
    ))
    .and_then(|mut s| s.query_row(params![hash_hex], row).optional())
    .map(|r| r.map(info))
    .map_err(db)
}

pub fn list(conn: &Connection) -> StoreResult<Vec<TokenInfo>> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {COLS} FROM tokens ORDER BY created"))
        .map_err(db)?;
    let rows = s.query_map([], row).map_err(db)?;
    rows.map(|r| r.map(info).map_err(db)).collect()
}

/// Revoke by id, or by a name that exactly one active token has (on the writer).
pub fn revoke(conn: &Connection, id_or_name: &str) -> StoreResult<Revoked> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM tokens WHERE (id = ?1 OR name = ?1) AND revoked IS NULL \
             ORDER BY id = ?1 DESC, created"
        ))
        .map_err(db)?;
    let found: Vec<TokenInfo> = s
        .query_map(params![id_or_name], row)
        .map_err(db)?
        .map(|r| r.map(info).map_err(db))
        .collect::<StoreResult<_>>()?;
    let one = match crate::plan::revoke_choice(found, id_or_name) {
        Revoked::Token(one) => one,
        answer => return Ok(answer),
    };
    let now = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
    conn.prepare_cached("UPDATE tokens SET revoked = ? WHERE id = ?")
        .and_then(|mut s| s.execute(params![now, one.id]))
        .map_err(db)?;
    Ok(Revoked::Token(TokenInfo {
        revoked: Some(now),
        ..one
    }))
}
