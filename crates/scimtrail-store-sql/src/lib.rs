//! SQL implementations of the scimtrail [`Store`].
//!
//! Main design choice: SQLite runs with one writer thread and a pool of readers in WAL mode.
//! Writers are serialised by SQLite anyway; funnelling them through one connection with
//! `BEGIN IMMEDIATE` makes every write transaction take the write lock up front (no busy
//! upgrades), lets the next `seq` be read inside the transaction without gaps, lets concurrent
//! requests share a commit (group commit, a savepoint each), and never blocks readers, who see
//! the last committed snapshot. Both sides use a synchronous binding on their own threads: an
//! async driver's per-statement thread hand-off was the main cost of a request.

mod event_query;
mod filter_sql;
mod plan;
mod postgres;
mod sqlite;
pub mod testing;

use std::sync::Arc;

use scimtrail_core::Registry;
use scimtrail_store::{Store, StoreError};

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{Durability, SqliteOptions, SqliteStore};

/// Options of every backend; each uses its own.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub sqlite: SqliteOptions,
    pub postgres: PostgresOptions,
}

/// Open the store a database URL names: `sqlite://path` (created on first use) or
/// `postgres://…` (migrated at start).
pub async fn connect(url: &str, registry: Arc<Registry>) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, registry, &StoreOptions::default()).await
}

/// [`connect`] with backend options.
pub async fn connect_with(
    url: &str,
    registry: Arc<Registry>,
    options: &StoreOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open_with(url, registry, &options.sqlite).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            PostgresStore::open(url, registry, &options.postgres).await?,
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL scheme in {:?}; expected sqlite:// or postgres://",
            redact_url(url)
        )))
    }
}

/// A database URL safe to print: any password is hidden, in the user part or as a
/// `password=` parameter.
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((head, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{head}?{}", query.join("&"))
        }
        None => url.to_string(),
    };
    let url = url.as_str();
    let head = url.split('?').next().unwrap_or(url);
    match (head.find("://"), head.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:****{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_hide_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:****@h/db"
        );
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert_eq!(
            super::redact_url("postgres://scim@db/scim?password=s3cret&sslmode=disable"),
            "postgres://scim@db/scim?password=****&sslmode=disable"
        );
        assert_eq!(
            super::redact_url("postgresql:///scim?host=/run/pg&user=u&password=s3cret"),
            "postgresql:///scim?host=/run/pg&user=u&password=****"
        );
        assert_eq!(
            super::redact_url("postgres://u:pw@h/db?options=-csearch_path%3Dx"),
            "postgres://u:****@h/db?options=-csearch_path%3Dx"
        );
    }
}
