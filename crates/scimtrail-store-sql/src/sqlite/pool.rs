//! Readers: a small pool of read-only SQLite connections used on tokio's blocking threads.
//!
//! A read runs as one closure on one connection, so a query that returns many rows costs one
//! thread hand-off, not one per statement or row. In WAL mode readers never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use scimtrail_core::Registry;
use scimtrail_store::{StoreError, StoreResult};
use tokio::sync::Semaphore;

use super::write::db;

pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the connections (and blocking threads) reads use at once.
    slots: Semaphore,
    /// For the SQL functions that evaluate filters (`functions.rs`).
    registry: Arc<Registry>,
}

impl ReadPool {
    pub fn new(path: &Path, size: usize, registry: Arc<Registry>) -> Self {
        ReadPool {
            path: path.to_path_buf(),
            registry,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size),
        }
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.execute_batch("PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;")
            .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        super::functions::register(&conn, self.registry.clone()).map_err(db)?;
        Ok(conn)
    }

    /// Run `f` on a connection from the pool.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the reader pool is closed".into()))?;
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?;
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
        result
    }
}
