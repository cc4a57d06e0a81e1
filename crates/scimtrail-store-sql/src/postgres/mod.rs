//! The PostgreSQL store: several stateless scimtrail processes on one database.
//!
//! Main design choice: every transaction that appends to the log locks the one row of
//! `log_head` first (the sequencer, `write.rs`), so the processes share one gap-free log and
//! one Merkle tree, and the rules of a write are the shared plan (`crate::plan`) that the
//! SQLite store runs too. The driver is the synchronous `postgres` client on blocking threads,
//! one closure per read or transaction, as for SQLite (`conn.rs`).

mod conn;
mod read;
mod write;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scimtrail_audit::AuditEvent;
use scimtrail_core::Registry;
use scimtrail_store::*;
use serde_json::Value;

use conn::{pg, Pool};

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/postgres/0001_init.sql"),
)];

/// Settings of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections per process.
    pub pool_size: usize,
    /// The longest a statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// The most events one page of an event query examines.
    pub scan_budget: Option<u64>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            scan_budget: None,
        }
    }
}

pub struct PostgresStore {
    pool: Arc<Pool>,
    registry: Arc<Registry>,
    scan_budget: u64,
    counts: Arc<crate::sqlite::CountCache>,
    size: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Parse a `postgres://` URL into a client configuration; the error never holds the URL.
pub fn config(url: &str, options: &PostgresOptions) -> StoreResult<postgres::Config> {
    let mut config = postgres::Config::from_str(url).map_err(|e| {
        StoreError::Backend(format!(
            "bad PostgreSQL URL {}: {e}",
            crate::redact_url(url)
        ))
    })?;
    let timeout = format!(
        "-c statement_timeout={}",
        options.statement_timeout.as_millis().max(1)
    );
    let opts = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {timeout}"),
        _ => timeout,
    };
    config.options(&opts);
    config.connect_timeout(Duration::from_secs(10));
    config.application_name("scimtrail");
    Ok(config)
}

/// Run the migrations not yet applied, one process at a time (an advisory lock).
pub fn migrate(conn: &mut postgres::Client) -> StoreResult<()> {
    let mut tx = conn.transaction().map_err(pg)?;
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7294481105); \
         CREATE TABLE IF NOT EXISTS scimtrail_migrations (version BIGINT PRIMARY KEY, \
         name TEXT NOT NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(pg)?;
    let done: Vec<i64> = tx
        .query("SELECT version FROM scimtrail_migrations", &[])
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newer) = done.iter().find(|v| !MIGRATIONS.iter().any(|m| m.0 == **v)) {
        return Err(StoreError::Backend(format!(
            "the database has migration {newer}, which this build does not know: it was \
             written by a newer scimtrail"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).map_err(|e| {
            StoreError::Backend(format!("migration {version} ({name}) failed: {}", pg(e)))
        })?;
        tx.execute(
            "INSERT INTO scimtrail_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)
}

impl PostgresStore {
    pub async fn open(
        url: &str,
        registry: Arc<Registry>,
        options: &PostgresOptions,
    ) -> StoreResult<Self> {
        let config = config(url, options)?;
        let pool = Arc::new(Pool::new(config, options.pool_size));
        pool.run(|c| migrate(&mut c.client)).await?;
        let n = pool.run(|c| read::tree_size(&mut c.db())).await?;
        Ok(PostgresStore {
            pool,
            registry,
            scan_budget: options
                .scan_budget
                .unwrap_or(crate::event_query::SCAN_BUDGET)
                .max(1),
            counts: Arc::default(),
            size: Arc::new(tokio::sync::watch::Sender::new(n)),
        })
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut conn::Db<'_, postgres::Client>) -> StoreResult<T> + Send + 'static,
    {
        self.pool.run(move |c| f(&mut c.db())).await
    }

    /// Run a job in a transaction on the log head, and publish the log's new size.
    async fn logged<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut conn::Db<'_, postgres::Transaction<'_>>, i64) -> StoreResult<(T, i64, i64)>
            + Send
            + 'static,
    {
        let (out, size) = self.pool.run(move |c| write::logged(c, f)).await?;
        self.size
            .send_if_modified(|s| (size > *s).then(|| *s = size).is_some());
        Ok(out)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn write(&self, w: ResourceWrite, event: AuditEvent) -> StoreResult<AuditEvent> {
        let mut out = self.write_all(None, vec![(w, event)]).await?;
        out.pop()
            .ok_or_else(|| StoreError::Backend("the write returned no event".into()))
    }

    async fn write_all(
        &self,
        head: Option<AuditEvent>,
        writes: Vec<(ResourceWrite, AuditEvent)>,
    ) -> StoreResult<Vec<AuditEvent>> {
        if writes.is_empty() && head.is_none() {
            return Ok(Vec::new());
        }
        let reg = self.registry.clone();
        self.logged(move |db, seq| {
            let n = writes.len() as i64;
            let events = write::write_all(db, head.clone(), writes.clone(), seq, &reg)?;
            let used = events.len() as i64;
            Ok((events, used, n))
        })
        .await
    }

    async fn append_event(&self, event: AuditEvent) -> StoreResult<AuditEvent> {
        self.logged(move |db, seq| Ok((write::append(db, event.clone(), seq)?, 1, 0)))
            .await
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
        self.read(move |db| read::get(db, &t, &ty, &id, with_members))
            .await
    }

    async fn list(&self, tenant: &str, query: &ListQuery) -> StoreResult<Page> {
        let (t, q, reg, counts) = (
            tenant.to_string(),
            query.clone(),
            self.registry.clone(),
            self.counts.clone(),
        );
        self.read(move |db| read::list(db, &reg, &counts, &t, &q))
            .await
    }

    async fn groups_of(
        &self,
        tenant: &str,
        member_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<GroupRef>>> {
        let (t, ids) = (tenant.to_string(), member_ids.to_vec());
        self.read(move |db| read::groups_of(db, &t, &ids)).await
    }

    async fn lookup(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, ResourceRef>> {
        let (t, ids) = (tenant.to_string(), ids.to_vec());
        self.read(move |db| read::lookup(db, &t, &ids)).await
    }

    async fn member_count(&self, tenant: &str, group_id: &str, limit: usize) -> StoreResult<usize> {
        let (t, g) = (tenant.to_string(), group_id.to_string());
        self.read(move |db| read::member_count(db, &t, &g, limit))
            .await
    }

    async fn members(
        &self,
        tenant: &str,
        group_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<Member>> {
        let (t, g, ids) = (tenant.to_string(), group_id.to_string(), ids.to_vec());
        self.read(move |db| read::members(db, &t, &g, &ids)).await
    }

    async fn versions(
        &self,
        tenant: &str,
        id: &str,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<VersionRecord>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.read(move |db| read::versions(db, &t, &id, after, limit))
            .await
    }

    async fn latest_version(&self, tenant: &str, id: &str) -> StoreResult<Option<VersionRecord>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.read(move |db| read::latest_version(db, &t, &id)).await
    }

    async fn snapshot(
        &self,
        tenant: &str,
        id: &str,
        version: i64,
    ) -> StoreResult<Option<Snapshot>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.read(move |db| read::snapshot(db, &t, &id, version))
            .await
    }

    async fn members_at(
        &self,
        tenant: &str,
        group_id: &str,
        version: i64,
    ) -> StoreResult<Vec<Member>> {
        let (t, g) = (tenant.to_string(), group_id.to_string());
        self.read(move |db| read::members_at(db, &t, &g, version))
            .await
    }

    async fn member_changes(
        &self,
        tenant: &str,
        group_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<MemberChange>> {
        let (t, g) = (tenant.to_string(), group_id.to_string());
        self.read(move |db| read::member_changes(db, &t, &g, from, to))
            .await
    }

    async fn events_at(&self, tenant: &str, seqs: &[u64]) -> StoreResult<Vec<Value>> {
        let (t, seqs) = (tenant.to_string(), seqs.to_vec());
        self.read(move |db| read::events_at(db, &t, &seqs)).await
    }

    async fn events(&self, tenant: &str, query: &EventQuery) -> StoreResult<EventPage> {
        let (t, q, budget) = (tenant.to_string(), query.clone(), self.scan_budget);
        self.read(move |db| read::events(db, &t, &q, budget)).await
    }

    async fn event_stats(&self, tenant: &str, query: &StatsQuery) -> StoreResult<Vec<StatsRow>> {
        let (t, q) = (tenant.to_string(), query.clone());
        self.read(move |db| read::stats(db, &t, &q)).await
    }

    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Value>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.read(move |db| read::event(db, &t, &id)).await
    }

    async fn leaf(&self, tenant: &str, id: &str) -> StoreResult<Option<LogRow>> {
        let (t, id) = (tenant.to_string(), id.to_string());
        self.read(move |db| read::leaf(db, &t, &id)).await
    }

    async fn log_rows(
        &self,
        filter: Option<&scimtrail_core::Filter>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<LogRow>> {
        let f = filter.cloned();
        self.read(move |db| read::log_rows(db, f.as_ref(), after, limit))
            .await
    }

    async fn check_leaves(
        &self,
        from: u64,
        to: u64,
    ) -> StoreResult<scimtrail_audit::verify::CheckedChunk> {
        self.read(move |db| read::check_leaves(db, from, to)).await
    }

    async fn payload_seqs_from(&self, from: u64, limit: usize) -> StoreResult<Vec<u64>> {
        self.read(move |db| read::payload_seqs_from(db, from, limit))
            .await
    }

    async fn stored_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.read(move |db| read::stored_range(db, from, to)).await
    }

    async fn tree_size(&self) -> StoreResult<u64> {
        self.read(read::tree_size).await
    }

    async fn tree_root(&self, size: u64) -> StoreResult<[u8; 32]> {
        self.read(move |db| read::tree_root(db, size)).await
    }

    async fn inclusion_proof(&self, seq: u64, size: u64) -> StoreResult<Vec<[u8; 32]>> {
        let mut p = self.inclusion_proofs(&[seq], size).await?;
        p.pop()
            .ok_or_else(|| StoreError::Backend("no inclusion proof".into()))
    }

    async fn inclusion_proofs(&self, seqs: &[u64], size: u64) -> StoreResult<Vec<Vec<[u8; 32]>>> {
        let seqs = seqs.to_vec();
        self.read(move |db| read::inclusions(db, &seqs, size)).await
    }

    async fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Vec<[u8; 32]>> {
        self.read(move |db| read::consistency(db, from, to)).await
    }

    async fn checkpoint(&self, sign: CheckpointSigner) -> StoreResult<Option<StoredCheckpoint>> {
        self.pool.run(move |c| write::checkpoint(c, sign)).await
    }

    async fn checkpoints(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> StoreResult<Vec<StoredCheckpoint>> {
        self.read(move |db| read::checkpoints(db, before, count))
            .await
    }

    async fn prune(
        &self,
        before: &str,
        dry_run: bool,
        event: AuditEvent,
    ) -> StoreResult<PruneReport> {
        let before = before.to_string();
        self.logged(move |db, seq| {
            let mut report = write::prune(db, &before, dry_run)?;
            let mut event = event.clone();
            event.outcome.detail = Some(crate::plan::prune_detail(&before, &report));
            let sealed = write::append(db, event, seq)?;
            report.event_seq = sealed.seq;
            Ok((report, 1, 0))
        })
        .await
    }

    async fn token_count(&self) -> StoreResult<i64> {
        self.read(|db| Ok(db.one("SELECT COUNT(*) FROM tokens", &[])?.get(0)))
            .await
    }

    async fn create_token(&self, token: NewToken, event: AuditEvent) -> StoreResult<TokenInfo> {
        self.logged(move |db, seq| {
            let info = write::create_token(db, token.clone())?;
            let mut e = event.clone();
            e.target.id = Some(info.id.clone());
            e.target.display = Some(info.name.clone());
            write::append(db, e, seq)?;
            Ok((info, 1, 0))
        })
        .await
    }

    async fn find_token(&self, hash_hex: &str) -> StoreResult<Option<TokenInfo>> {
        let h = hash_hex.to_string();
        self.read(move |db| {
            Ok(db
                .opt(
                    &format!(
                        "SELECT {} FROM tokens WHERE hash = ? AND revoked IS NULL",
                        write::TOKEN_COLUMNS
                    ),
                    &[&h],
                )?
                .map(|r| write::token_row(&r)))
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(|db| {
            Ok(db
                .rows(
                    &format!(
                        "SELECT {} FROM tokens ORDER BY created",
                        write::TOKEN_COLUMNS
                    ),
                    &[],
                )?
                .iter()
                .map(write::token_row)
                .collect())
        })
        .await
    }

    async fn revoke_token(&self, id_or_name: &str, event: AuditEvent) -> StoreResult<Revoked> {
        let which = id_or_name.to_string();
        self.logged(move |db, seq| match write::revoke_token(db, &which)? {
            Revoked::Token(info) => {
                let mut e = event.clone();
                e.target.id = Some(info.id.clone());
                e.target.display = Some(info.name.clone());
                write::append(db, e, seq)?;
                Ok((Revoked::Token(info), 1, 0))
            }
            // Nothing changed, so no event here: the caller reports the refusal.
            other => Ok((other, 0, 0)),
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|db| db.one("SELECT 1", &[]).map(|_| ())).await
    }

    fn log_size(&self) -> tokio::sync::watch::Receiver<u64> {
        self.size.subscribe()
    }

    async fn database_bytes(&self) -> StoreResult<Option<u64>> {
        // The schema's tables with their indexes and TOAST.
        self.read(|db| {
            let n: i64 = db
                .one(
                    "SELECT CAST(coalesce(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )?
                .get(0);
            Ok(Some(n.max(0) as u64))
        })
        .await
    }
}
