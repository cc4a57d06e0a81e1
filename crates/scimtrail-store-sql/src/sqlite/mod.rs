//! The embedded SQLite store.

mod events;
mod functions;
mod history;
mod pool;
mod read;
mod tokens;
mod tree;
mod upgrade;
mod write;
mod writer;

pub(crate) use read::{email_term, membership_term, resource_column_with, CountCache};
pub(crate) use tree::merkle_err;
pub use writer::{Durability, SqliteOptions};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scimtrail_audit::AuditEvent;
use scimtrail_core::Registry;
use scimtrail_store::*;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::backend;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Migrations and token administration (rare writes).
    writer: SqlitePool,
    /// The one connection that writes resources and events, on its own thread (group commit).
    committer: writer::Writer,
    /// Readers never wait for the writer (WAL).
    reader: pool::ReadPool,
    /// For evaluating the parts of a list filter that SQL cannot.
    registry: Arc<Registry>,
    /// The most events one page of an event query examines.
    scan_budget: u64,
    /// Totals of recent list queries while nothing changed (`read::CountCache`).
    counts: Arc<read::CountCache>,
}

impl SqliteStore {
    pub async fn open(url: &str, registry: Arc<Registry>) -> StoreResult<Self> {
        Self::open_with(url, registry, &SqliteOptions::default()).await
    }

    pub async fn open_with(
        url: &str,
        registry: Arc<Registry>,
        options: &SqliteOptions,
    ) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad database URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Savepoint journals and sorts stay in memory; a larger page cache saves re-reads.
            .pragma("temp_store", "MEMORY")
            .pragma("cache_size", "-32768");
        let path = opts.get_filename().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        {
            let p = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut conn = rusqlite::Connection::open(&p).map_err(write::db)?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(write::db)?;
                upgrade::run(&mut conn)
            })
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
        }
        let reader = pool::ReadPool::new(&path, 8, registry.clone());
        let committer = writer::Writer::start(&path, options, registry.clone())?;
        Ok(SqliteStore {
            writer,
            committer,
            reader,
            registry,
            scan_budget: options.scan_budget.unwrap_or(events::SCAN_BUDGET).max(1),
            counts: Arc::default(),
        })
    }

    /// How many list pages so far started after the row that ended the previous page of a
    /// `startIndex` walk, instead of skipping rows with `OFFSET` (see `read::CountCache`).
    pub fn resumed_pages(&self) -> u64 {
        self.counts
            .resumed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// SQLite's query plans for the count and the page of a list (see `read::explain_list`).
    pub async fn explain_list(&self, tenant: &str, query: &ListQuery) -> StoreResult<Vec<String>> {
        let (t, q, reg) = (tenant.to_string(), query.clone(), self.registry.clone());
        self.reader
            .run(move |c| read::explain_list(c, &reg, &t, &q))
            .await
    }

    /// SQLite's query plan for one page of `query` (see `events::explain`).
    pub async fn explain_events(
        &self,
        tenant: &str,
        query: &EventQuery,
    ) -> StoreResult<Vec<String>> {
        let (t, q, budget) = (tenant.to_string(), query.clone(), self.scan_budget);
        self.reader
            .run(move |c| events::explain(c, &t, &q, budget))
            .await
    }

    /// Close the administrative pool (the writer thread stops when the store is dropped).
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, write: ResourceWrite, event: AuditEvent) -> StoreResult<AuditEvent> {
        self.committer
            .event(writer::Job::Write(None, vec![(write, event)]))
            .await
    }
    async fn write_all(
        &self,
        head: Option<AuditEvent>,
        writes: Vec<(ResourceWrite, AuditEvent)>,
    ) -> StoreResult<Vec<AuditEvent>> {
        if writes.is_empty() && head.is_none() {
            return Ok(Vec::new());
        }
        self.committer
            .events(writer::Job::Write(head, writes))
            .await
    }
    async fn append_event(&self, event: AuditEvent) -> StoreResult<AuditEvent> {
        self.committer.event(writer::Job::Append(event)).await
    }
    async fn versions(
        &self,
        tenant: &str,
        id: &str,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<scimtrail_store::VersionRecord>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.reader
            .run(move |c| history::versions(c, &t, &id, after, limit))
            .await
    }
    async fn latest_version(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<scimtrail_store::VersionRecord>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.reader
            .run(move |c| history::latest_version(c, &t, &id))
            .await
    }
    async fn snapshot(
        &self,
        tenant: &str,
        id: &str,
        version: i64,
    ) -> StoreResult<Option<scimtrail_store::Snapshot>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.reader
            .run(move |c| history::snapshot(c, &t, &id, version))
            .await
    }
    async fn members_at(
        &self,
        tenant: &str,
        group_id: &str,
        version: i64,
    ) -> StoreResult<Vec<Member>> {
        let (t, id) = (tenant.to_string(), group_id.to_string());
        self.reader
            .run(move |c| history::members_at(c, &t, &id, version))
            .await
    }
    async fn member_changes(
        &self,
        tenant: &str,
        group_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<scimtrail_store::MemberChange>> {
        let (t, id) = (tenant.to_string(), group_id.to_string());
        self.reader
            .run(move |c| history::member_changes(c, &t, &id, from, to))
            .await
    }
    async fn events_at(&self, tenant: &str, seqs: &[u64]) -> StoreResult<Vec<Value>> {
        let (t, seqs) = (tenant.to_string(), seqs.to_vec());
        self.reader
            .run(move |c| events::events_at(c, &t, &seqs))
            .await
    }
    async fn leaf(&self, tenant: &str, id: &str) -> StoreResult<Option<LogRow>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.reader.run(move |c| events::leaf(c, &t, &id)).await
    }
    async fn log_rows(
        &self,
        filter: Option<&scimtrail_core::Filter>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<LogRow>> {
        let f = filter.cloned();
        self.reader
            .run(move |c| events::log_rows(c, f.as_ref(), after, limit))
            .await
    }
    async fn check_leaves(
        &self,
        from: u64,
        to: u64,
    ) -> StoreResult<scimtrail_audit::verify::CheckedChunk> {
        self.reader
            .run(move |c| events::check_leaves(c, from, to))
            .await
    }
    async fn payload_seqs_from(&self, from: u64, limit: usize) -> StoreResult<Vec<u64>> {
        self.reader
            .run(move |c| events::payload_seqs_from(c, from, limit))
            .await
    }
    async fn stored_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.reader
            .run(move |c| tree::stored_range(c, from, to))
            .await
    }
    async fn tree_size(&self) -> StoreResult<u64> {
        self.reader.run(tree::size).await
    }
    async fn tree_root(&self, size: u64) -> StoreResult<[u8; 32]> {
        self.reader.run(move |c| tree::root(c, size)).await
    }
    async fn inclusion_proof(&self, seq: u64, size: u64) -> StoreResult<Vec<[u8; 32]>> {
        self.reader
            .run(move |c| tree::inclusion(c, seq, size))
            .await
    }
    async fn inclusion_proofs(&self, seqs: &[u64], size: u64) -> StoreResult<Vec<Vec<[u8; 32]>>> {
        let seqs = seqs.to_vec();
        self.reader
            .run(move |c| tree::inclusions(c, &seqs, size))
            .await
    }
    async fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Vec<[u8; 32]>> {
        self.reader
            .run(move |c| tree::consistency(c, from, to))
            .await
    }
    async fn checkpoint(&self, sign: CheckpointSigner) -> StoreResult<Option<StoredCheckpoint>> {
        let time = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
        match self
            .committer
            .submit(writer::Job::Checkpoint(sign, time))
            .await?
        {
            writer::Output::Checkpoint(c) => Ok(c),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }
    async fn checkpoints(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> StoreResult<Vec<StoredCheckpoint>> {
        self.reader
            .run(move |c| tree::checkpoints(c, before, count))
            .await
    }
    async fn prune(
        &self,
        before: &str,
        dry_run: bool,
        event: AuditEvent,
    ) -> StoreResult<PruneReport> {
        let job = writer::Job::Prune {
            before: before.to_string(),
            dry_run,
            event,
        };
        match self.committer.submit(job).await? {
            writer::Output::Pruned(r) => Ok(r),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }
    async fn get(
        &self,
        tenant: &str,
        resource_type: &str,
        id: &str,
        with_members: bool,
    ) -> StoreResult<Option<StoredResource>> {
        let (t, ty, id) = (
            tenant.to_string(),
            resource_type.to_string(),
            id.to_string(),
        );
        self.reader
            .run(move |c| read::get(c, &t, &ty, &id, with_members))
            .await
    }
    async fn list(&self, tenant: &str, query: &ListQuery) -> StoreResult<Page> {
        let (t, q, reg) = (tenant.to_string(), query.clone(), self.registry.clone());
        let counts = self.counts.clone();
        self.reader
            .run(move |c| read::list(c, &reg, &counts, &t, &q))
            .await
    }
    async fn groups_of(
        &self,
        tenant: &str,
        member_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<GroupRef>>> {
        let (t, ids) = (tenant.to_string(), member_ids.to_vec());
        self.reader.run(move |c| read::groups_of(c, &t, &ids)).await
    }
    async fn lookup(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, ResourceRef>> {
        let (t, ids) = (tenant.to_string(), ids.to_vec());
        self.reader.run(move |c| read::lookup(c, &t, &ids)).await
    }
    async fn member_count(&self, tenant: &str, group_id: &str, limit: usize) -> StoreResult<usize> {
        let (t, g) = (tenant.to_string(), group_id.to_string());
        self.reader
            .run(move |c| read::member_count(c, &t, &g, limit))
            .await
    }
    async fn members(
        &self,
        tenant: &str,
        group_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<Member>> {
        let (t, g, ids) = (tenant.to_string(), group_id.to_string(), ids.to_vec());
        self.reader
            .run(move |c| read::members(c, &t, &g, &ids))
            .await
    }
    async fn events(&self, tenant: &str, query: &EventQuery) -> StoreResult<EventPage> {
        let (t, q, budget) = (tenant.to_string(), query.clone(), self.scan_budget);
        self.reader
            .run(move |c| events::events(c, &t, &q, budget))
            .await
    }
    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Value>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.reader.run(move |c| events::event(c, &t, &id)).await
    }
    async fn event_stats(
        &self,
        tenant: &str,
        query: &scimtrail_store::StatsQuery,
    ) -> StoreResult<Vec<scimtrail_store::StatsRow>> {
        let (t, q) = (tenant.to_string(), query.clone());
        self.reader.run(move |c| events::stats(c, &t, &q)).await
    }
    fn log_size(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committer.log_size()
    }
    fn batch_sizes(&self) -> Option<scimtrail_store::BatchSizes> {
        Some(self.committer.stats.snapshot())
    }
    async fn database_bytes(&self) -> StoreResult<Option<u64>> {
        // The main file's pages (free pages included: the file does not shrink); the WAL,
        // bounded by checkpoints, is not counted.
        self.reader
            .run(|c| {
                c.query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| Some(n.max(0) as u64))
                .map_err(write::db)
            })
            .await
    }
    async fn token_count(&self) -> StoreResult<i64> {
        self.reader.run(tokens::count).await
    }
    async fn create_token(&self, token: NewToken, event: AuditEvent) -> StoreResult<TokenInfo> {
        match self
            .committer
            .submit(writer::Job::CreateToken(token, event))
            .await?
        {
            writer::Output::Token(t) => Ok(t),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }
    async fn find_token(&self, hash_hex: &str) -> StoreResult<Option<TokenInfo>> {
        let h = hash_hex.to_string();
        self.reader.run(move |c| tokens::find(c, &h)).await
    }
    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.reader.run(tokens::list).await
    }
    async fn revoke_token(
        &self,
        id_or_name: &str,
        event: AuditEvent,
    ) -> StoreResult<scimtrail_store::Revoked> {
        match self
            .committer
            .submit(writer::Job::RevokeToken(id_or_name.to_string(), event))
            .await?
        {
            writer::Output::Revoked(r) => Ok(r),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }
    async fn ping(&self) -> StoreResult<()> {
        self.reader
            .run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(write::db))
            .await
    }
}
