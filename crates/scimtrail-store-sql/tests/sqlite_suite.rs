#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shared store conformance suite (`scimtrail_store::testsuite`) against every SQL backend,
//! each check on a fresh, empty store.
//!
//! A backend joins with one `store_suite!(module, fresh_fn)` line and its `fresh_fn`, which
//! returns `None` to skip when the backend is not configured (e.g. PostgreSQL without
//! `TEST_DATABASE_URL`).

use std::sync::Arc;

use scimtrail_core::Registry;
use scimtrail_store::Store;
use scimtrail_store_sql::testing::PgSchema;
use scimtrail_store_sql::{PostgresOptions, PostgresStore, SqliteStore};
use tempfile::TempDir;

/// A new SQLite database in its own temporary directory (kept alive by the returned guard).
async fn fresh_sqlite() -> Option<(Arc<dyn Store>, TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .expect("open a fresh SQLite store");
    Some((Arc::new(store), dir))
}

scimtrail_store::store_suite!(sqlite, fresh_sqlite);

/// A new schema in the PostgreSQL database `TEST_DATABASE_URL` names (dropped with the guard);
/// `None` skips the check when it is unset.
async fn fresh_postgres() -> Option<(Arc<dyn Store>, PgSchema)> {
    let schema = PgSchema::create()?;
    let store = PostgresStore::open(
        &schema.url,
        Arc::new(Registry::builtin()),
        &PostgresOptions::default(),
    )
    .await
    .expect("open a fresh PostgreSQL store");
    Some((Arc::new(store), schema))
}

scimtrail_store::store_suite!(postgres, fresh_postgres);

/// Every check of the suite is generated above (a check added to the suite but missing from its
/// list would otherwise never run anywhere).
#[test]
fn suite_lists_every_check() {
    use scimtrail_store::testsuite::{ALL, CHECKS};
    assert_eq!(ALL.len(), CHECKS.len());
    assert!(CHECKS.len() >= 19);
}
