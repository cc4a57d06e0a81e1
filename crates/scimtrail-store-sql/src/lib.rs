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

/// Open the store a database URL names: `sqlite://path` (created on first use).
pub async fn connect(url: &str, registry: Arc<Registry>) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, registry, &SqliteOptions::default()).await
}

/// [`connect`] with backend options.
pub async fn connect_with(
    url: &str,
    registry: Arc<Registry>,
    options: &SqliteOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open_with(url, registry, options).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Err(StoreError::Backend(
            "PostgreSQL is not supported yet; use a sqlite:// database URL".into(),
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL scheme in {:?}; expected sqlite://",
            redact_url(url)
        )))
    }
}

/// A database URL safe to print: any password is hidden.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
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
    }
}
