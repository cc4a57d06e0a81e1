//! API tokens. Only the SHA-256 of a token is ever stored.

use rusqlite::{params, Connection, OptionalExtension};
use scimtrail_store::{NewToken, StoreResult, TokenInfo};
use sqlx::SqlitePool;

use super::write::db;

use crate::backend;

type Row = (String, String, String, String, String, Option<String>);

fn info((id, name, scopes, tenant, created, revoked): Row) -> TokenInfo {
    TokenInfo {
        id,
        name,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        tenant,
        created,
        revoked,
    }
}

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

pub async fn create(pool: &SqlitePool, t: NewToken) -> StoreResult<TokenInfo> {
    sqlx::query(
        "INSERT INTO tokens (id, name, hash, scopes, tenant, created) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.hash_hex)
    .bind(t.scopes.join(" "))
    .bind(&t.tenant)
    .bind(&t.created)
    .execute(pool)
    .await
    .map_err(backend)?;
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

pub async fn revoke(pool: &SqlitePool, id_or_name: &str) -> StoreResult<bool> {
    let now = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
    let r =
        sqlx::query("UPDATE tokens SET revoked = ? WHERE (id = ? OR name = ?) AND revoked IS NULL")
            .bind(now)
            .bind(id_or_name)
            .bind(id_or_name)
            .execute(pool)
            .await
            .map_err(backend)?;
    Ok(r.rows_affected() > 0)
}
