//! API tokens. Only the SHA-256 of a token is ever stored.

use scimtrail_store::{NewToken, StoreResult, TokenInfo};
use sqlx::SqlitePool;

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

pub async fn count(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
        .fetch_one(pool)
        .await
        .map_err(backend)
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

pub async fn find(pool: &SqlitePool, hash_hex: &str) -> StoreResult<Option<TokenInfo>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM tokens WHERE hash = ? AND revoked IS NULL"
    ))
    .bind(hash_hex)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(row.map(info))
}

pub async fn list(pool: &SqlitePool) -> StoreResult<Vec<TokenInfo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM tokens ORDER BY created"))
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    Ok(rows.into_iter().map(info).collect())
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
