//! The writer: one thread, one SQLite connection, group commit.
//!
//! Requests hand their write (or bare event) to the writer thread and wait for the answer. The
//! thread takes whatever is queued (up to [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE`
//! transaction, runs the jobs under savepoints — a failing job is rolled back alone and
//! consumes no `seq` — and commits once. Consecutive writes and appends share a savepoint
//! (see [`run_group`]); when one of them fails, the group is run again around it. Nobody is answered before that commit, so a crash loses
//! only requests that were never answered, and each job keeps its all-or-nothing guarantee.
//!
//! A job error that takes the whole transaction down with it (disk full, an I/O error: SQLite
//! rolls back and the connection is back in autocommit) aborts the batch: no later job runs —
//! its savepoint would otherwise open a transaction of its own and commit with a `seq` above
//! the rolled-back ones — and every job is answered that nothing of it was committed. So no
//! gap, no acknowledged write lost, and no write reported failed that committed.
//!
//! Checkpoints are signed here too, between batches: only over committed state, after making
//! it durable (see [`Durability`]).
//!
//! Why a plain thread with a synchronous binding: every statement of a batch then runs without a
//! hand-off between threads (an async driver pays a channel round trip per statement), which was
//! the main cost of a write. Reads stay on the async reader pool and never wait for the writer.

use scimtrail_core::Registry;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use scimtrail_audit::AuditEvent;
use scimtrail_store::{
    CheckpointSigner, NewToken, PruneReport, ResourceWrite, Revoked, StoreError, StoreResult,
    StoredCheckpoint, TokenInfo,
};
use tokio::sync::{mpsc, oneshot};

use super::write::{self, db};

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (backpressure).
const QUEUE: usize = 4096;

/// When a commit is durable, i.e. survives a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced before it is answered (`synchronous = FULL`). The default.
    #[default]
    Commit,
    /// Commits are synced at least before each checkpoint is signed (`synchronous = NORMAL`
    /// and a WAL checkpoint before signing): a power loss may lose the last acknowledged
    /// writes, never a write a signed checkpoint covers.
    Checkpoint,
}

/// Options of the SQLite store.
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Cap the database at this many pages (`PRAGMA max_page_count`): writes beyond fail as
    /// on a full disk.
    pub max_page_count: Option<u64>,
    /// The writer's page cache in pages (default 32 MiB worth). A transaction larger than the
    /// cache spills to the WAL before it commits.
    pub cache_pages: Option<u64>,
    /// The most events one page of an event query examines (default
    /// [`super::events::SCAN_BUDGET`]); tests make it small.
    pub scan_budget: Option<u64>,
}

pub enum Job {
    /// Resource writes with their events, all or nothing, at consecutive `seq`s.
    Write(Option<AuditEvent>, Vec<(ResourceWrite, AuditEvent)>),
    Append(AuditEvent),
    Prune {
        before: String,
        dry_run: bool,
        event: AuditEvent,
    },
    /// Runs alone, between batches.
    Checkpoint(CheckpointSigner, String),
    CreateToken(NewToken, AuditEvent),
    RevokeToken(String, AuditEvent),
}

// Moved once through a channel per job; boxing the event would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Event(AuditEvent),
    Events(Vec<AuditEvent>),
    Pruned(PruneReport),
    Checkpoint(Option<StoredCheckpoint>),
    Token(TokenInfo),
    Revoked(Revoked),
}

struct Pending {
    job: Job,
    reply: oneshot::Sender<StoreResult<Output>>,
}

/// Upper bounds of the batch size histogram.
const BATCH_BOUNDS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// Batch sizes as the writer thread counts them.
#[derive(Default)]
pub struct BatchStats {
    buckets: [std::sync::atomic::AtomicU64; 9],
    sum: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicU64,
}

impl BatchStats {
    fn add(&self, n: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = n as u64;
        let i = BATCH_BOUNDS
            .iter()
            .position(|b| n <= *b)
            .unwrap_or(BATCH_BOUNDS.len() - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum.fetch_add(n, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> scimtrail_store::BatchSizes {
        use std::sync::atomic::Ordering::Relaxed;
        let mut acc = 0;
        let buckets = BATCH_BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| {
                acc += c.load(Relaxed);
                (*b, acc)
            })
            .collect();
        scimtrail_store::BatchSizes {
            buckets,
            sum: self.sum.load(Relaxed),
            count: self.count.load(Relaxed),
        }
    }
}

pub struct Writer {
    queue: mpsc::Sender<Pending>,
    pub stats: std::sync::Arc<BatchStats>,
    /// The log's size after each commit.
    size: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Writer {
    /// Open the writer connection on an existing, migrated database and start its thread.
    pub fn start(
        path: &Path,
        options: &SqliteOptions,
        registry: std::sync::Arc<scimtrail_core::Registry>,
    ) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        let sync = match options.durability {
            Durability::Commit => "FULL",
            Durability::Checkpoint => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;"
        ))
        .map_err(db)?;
        if let Some(pages) = options.cache_pages {
            conn.execute_batch(&format!("PRAGMA cache_size = {pages}"))
                .map_err(db)?;
        }
        if let Some(pages) = options.max_page_count {
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(db)?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        let durability = options.durability;
        let (queue, rx) = mpsc::channel(QUEUE);
        let size = std::sync::Arc::new(tokio::sync::watch::Sender::new(log_size(&conn)?));
        let published = size.clone();
        let stats = std::sync::Arc::new(BatchStats::default());
        let counted = stats.clone();
        std::thread::Builder::new()
            .name("scimtrail-writer".into())
            .spawn(move || run(conn, rx, durability, &published, &counted, &registry))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue, size, stats })
    }

    /// The log's size, as of the last commit.
    pub fn log_size(&self) -> tokio::sync::watch::Receiver<u64> {
        self.size.subscribe()
    }

    /// Run a job; resolves once it is committed (or failed).
    pub async fn submit(&self, job: Job) -> StoreResult<Output> {
        let stopped = || StoreError::Backend("the writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { job, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub async fn event(&self, job: Job) -> StoreResult<AuditEvent> {
        match self.submit(job).await? {
            Output::Event(e) => Ok(e),
            Output::Events(mut e) if e.len() == 1 => Ok(e.remove(0)),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }

    pub async fn events(&self, job: Job) -> StoreResult<Vec<AuditEvent>> {
        match self.submit(job).await? {
            Output::Events(e) => Ok(e),
            _ => Err(StoreError::Backend("unexpected writer answer".into())),
        }
    }
}

/// The next `seq`.
fn log_size(conn: &Connection) -> StoreResult<u64> {
    conn.query_row(
        "SELECT coalesce(max(seq) + 1, 0) FROM audit_events",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(db)
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Pending>,
    durability: Durability,
    size: &tokio::sync::watch::Sender<u64>,
    stats: &BatchStats,
    reg: &Registry,
) {
    let mut held: Option<Pending> = None;
    loop {
        // After each batch, tell live tails (if any listen) how far the log now reaches.
        if size.receiver_count() > 0 {
            if let Ok(n) = log_size(&conn) {
                size.send_if_modified(|s| std::mem::replace(s, n) != n);
            }
        }
        let first = match held.take() {
            Some(p) => p,
            None => match rx.blocking_recv() {
                Some(p) => p,
                None => return,
            },
        };
        if let Job::Checkpoint(..) = first.job {
            let Pending { job, reply } = first;
            if let Job::Checkpoint(sign, time) = job {
                let run = std::panic::AssertUnwindSafe(|| {
                    sign_checkpoint(&mut conn, durability, sign, time)
                });
                let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                    Err(StoreError::Backend("checkpoint signing panicked".into()))
                });
                let _ = reply.send(result.map(Output::Checkpoint));
            }
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) if matches!(p.job, Job::Checkpoint(..)) => {
                    held = Some(p);
                    break;
                }
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        stats.add(batch.len());
        // A panic inside one batch must not stop every later write: its transaction rolls back
        // as the stack unwinds, its submitters get an error, and the thread goes on.
        let run = std::panic::AssertUnwindSafe(|| commit_batch(&mut conn, batch, reg));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a write batch panicked and was rolled back");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}

fn sign_checkpoint(
    conn: &mut Connection,
    durability: Durability,
    sign: CheckpointSigner,
    time: String,
) -> StoreResult<Option<StoredCheckpoint>> {
    if durability == Durability::Checkpoint {
        // With synchronous = NORMAL the WAL is synced before a checkpoint copies it back, so
        // every commit so far is durable once this returns.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(db)?;
    }
    super::tree::checkpoint(conn, sign, time)
}

/// Run one job from `seq` on; answers its output and how many `seq`s it used.
fn exec(conn: &Connection, job: Job, seq: i64, reg: &Registry) -> StoreResult<(Output, i64)> {
    match job {
        Job::Write(head, writes) => {
            let events = write::write_all(conn, head, writes, seq, reg)?;
            let used = events.len() as i64;
            Ok((Output::Events(events), used))
        }
        Job::Append(e) => Ok((Output::Event(write::append(conn, e, seq)?), 1)),
        Job::CreateToken(t, mut e) => {
            let info = super::tokens::insert(conn, t)?;
            e.target.id = Some(info.id.clone());
            e.target.display = Some(info.name.clone());
            write::append(conn, e, seq)?;
            Ok((Output::Token(info), 1))
        }
        Job::RevokeToken(which, mut e) => match super::tokens::revoke(conn, &which)? {
            Revoked::Token(info) => {
                e.target.id = Some(info.id.clone());
                e.target.display = Some(info.name.clone());
                write::append(conn, e, seq)?;
                Ok((Output::Revoked(Revoked::Token(info)), 1))
            }
            // Nothing changed, so no event here: the caller reports the refusal.
            other => Ok((Output::Revoked(other), 0)),
        },
        Job::Prune {
            before,
            dry_run,
            event,
        } => {
            let mut report = super::events::prune(conn, &before, dry_run)?;
            let mut event = event;
            event.outcome.detail = Some(crate::plan::prune_detail(&before, &report));
            let sealed = write::append(conn, event, seq)?;
            report.event_seq = sealed.seq;
            Ok((Output::Pruned(report), 1))
        }
        Job::Checkpoint(..) => Err(StoreError::Backend(
            "a checkpoint cannot run inside a batch".into(),
        )),
    }
}

type Answer = (oneshot::Sender<StoreResult<Output>>, StoreResult<Output>);

fn aborted(why: &str) -> StoreError {
    StoreError::Backend(format!(
        "the write batch was rolled back ({why}); nothing of this request was stored"
    ))
}

/// Most jobs run under one shared savepoint.
const GROUP: usize = 64;

/// A copy of a job that may share a savepoint with its neighbours: resource writes and plain
/// appends. Token and prune jobs always run alone.
fn groupable(job: &Job) -> Option<Job> {
    match job {
        Job::Write(head, writes) => Some(Job::Write(head.clone(), writes.clone())),
        Job::Append(e) => Some(Job::Append(e.clone())),
        _ => None,
    }
}

/// Run consecutive jobs under one savepoint: SQLite copies each page a savepoint first touches
/// into its sub-journal, so one savepoint per job paid that copy for every B-tree of every
/// event. If a job of the group fails, the whole group is rolled back and run again: the jobs
/// before the failing one as a (now known good) group, the failing one alone under its own
/// savepoint, so it is answered its own error and consumes no `seq`. Each job sees the same
/// state and the same `seq` on the second run as on the first, so the result is the same.
/// Answers `Ok(None)` when the group committed, `Ok(Some(k))` when job `k` failed (nothing of
/// the group is left), and `Err` when the transaction is gone.
fn run_group(
    tx: &mut rusqlite::Transaction<'_>,
    copies: Vec<Job>,
    next: &mut i64,
    outputs: &mut Vec<Output>,
    reg: &Registry,
) -> Result<Option<usize>, String> {
    let sp = tx.savepoint().map_err(|e| e.to_string())?;
    let mut seq = *next;
    let mut done = Vec::with_capacity(copies.len());
    for (k, job) in copies.into_iter().enumerate() {
        match exec(&sp, job, seq, reg) {
            Ok((out, used)) => {
                seq += used;
                done.push(out);
            }
            Err(e) => {
                drop(sp);
                if tx.is_autocommit() {
                    return Err(e.to_string());
                }
                return Ok(Some(k));
            }
        }
    }
    sp.commit().map_err(|e| e.to_string())?;
    *next = seq;
    outputs.extend(done);
    Ok(None)
}

fn commit_batch(conn: &mut Connection, batch: Vec<Pending>, reg: &Registry) {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut jobs = std::collections::VecDeque::from(batch);
    // `Err` carries why the whole transaction is gone: then nothing of the batch committed.
    let outcome = (|| -> Result<(), String> {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let mut next = super::tree::size(&tx).map_err(|e| e.to_string())? as i64;
        // After a group failed at job k, the k jobs before it run as a group again.
        let mut known_good: Option<usize> = None;
        while !jobs.is_empty() {
            let limit = known_good.take().unwrap_or(GROUP);
            let copies: Vec<Job> = jobs
                .iter()
                .take(limit)
                .map_while(|p| groupable(&p.job))
                .collect();
            if copies.len() > 1 {
                let n = copies.len();
                let mut outputs = Vec::with_capacity(n);
                match run_group(&mut tx, copies, &mut next, &mut outputs, reg)? {
                    None => {
                        for out in outputs {
                            let Some(p) = jobs.pop_front() else { break };
                            answers.push((p.reply, Ok(out)));
                        }
                        continue;
                    }
                    // Job k fails: the k before it go again as a group, then k alone.
                    Some(k) if k > 1 => {
                        known_good = Some(k);
                        continue;
                    }
                    // The first or second job fails: run them one at a time.
                    Some(_) => {}
                }
            }
            let Some(Pending { job, reply }) = jobs.pop_front() else {
                break;
            };
            let result = {
                // Dropping the savepoint without `commit` rolls this job back alone.
                match tx.savepoint() {
                    Ok(sp) => match exec(&sp, job, next, reg) {
                        Ok((out, used)) => sp.commit().map(|()| (out, used)).map_err(db),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(db(e)),
                }
            };
            let failed = result.is_err();
            let result = result.map(|(out, used)| {
                next += used;
                out
            });
            let lost = failed.then(|| result.as_ref().err().map(|e| e.to_string()));
            answers.push((reply, result));
            if tx.is_autocommit() {
                // SQLite rolled the whole transaction back: stop before anything else runs
                // outside it.
                return Err(lost
                    .flatten()
                    .unwrap_or_else(|| "the transaction ended".into()));
            }
        }
        tx.commit().map_err(|e| e.to_string())
    })();
    match outcome {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(why) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            tracing::error!(error = %why, "write batch rolled back");
            for (reply, _) in answers {
                let _ = reply.send(Err(aborted(&why)));
            }
            for Pending { reply, .. } in jobs {
                let _ = reply.send(Err(aborted(&why)));
            }
        }
    }
}
