//! Group commit: the one writer connection runs every write in batches.
//!
//! Requests hand their write (or bare event) to the committer task and wait for the answer. The
//! task takes whatever is queued (up to [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE` transaction,
//! runs each job under its own savepoint — a failing job is rolled back alone and consumes no
//! `seq` — and commits once. Nobody is answered before that commit, so a crash loses only
//! requests that were never answered, and each job keeps its all-or-nothing guarantee. Under
//! concurrency this turns N commits into one; alone, a request pays the same as before.

use scimtrail_audit::AuditEvent;
use scimtrail_store::{ResourceWrite, StoreError, StoreResult};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::write::{self, Tx};
use crate::backend;

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;
/// Queue depth before submitters wait (backpressure).
const QUEUE: usize = 4096;

pub enum Job {
    Write(Box<ResourceWrite>, AuditEvent),
    Append(AuditEvent),
}

struct Pending {
    job: Job,
    reply: oneshot::Sender<StoreResult<AuditEvent>>,
}

#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
}

impl Committer {
    /// Start the committer task on `pool` (which must have exactly one connection).
    pub fn start(pool: SqlitePool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Committer { queue }
    }

    /// Run a job; resolves once it is committed (or failed).
    pub async fn submit(&self, job: Job) -> StoreResult<AuditEvent> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { job, reply })
            .await
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        commit_batch(&pool, batch).await;
    }
}

async fn exec(tx: &mut Tx, job: Job, seq: i64) -> StoreResult<AuditEvent> {
    match job {
        Job::Write(w, e) => write::write(tx, *w, e, seq).await,
        Job::Append(e) => write::append(tx, e, seq).await,
    }
}

async fn statement(tx: &mut Tx, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(backend)
}

async fn commit_batch(pool: &SqlitePool, batch: Vec<Pending>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = backend(e);
            tracing::error!(error = %e, "cannot begin a write transaction");
            for p in batch {
                let _ = p.reply.send(Err(StoreError::Backend(e.to_string())));
            }
            return;
        }
    };
    let next: Result<i64, _> =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events")
            .fetch_one(&mut *tx)
            .await;
    let mut next = match next {
        Ok(n) => n,
        Err(e) => {
            let msg = backend(e).to_string();
            for p in batch {
                let _ = p.reply.send(Err(StoreError::Backend(msg.clone())));
            }
            return;
        }
    };
    if batch.len() == 1 {
        // Alone in the transaction: no savepoint needed; a failure rolls the whole thing back.
        if let Some(Pending { job, reply }) = batch.into_iter().next() {
            let result = match exec(&mut tx, job, next).await {
                Ok(event) => tx.commit().await.map(|()| event).map_err(backend),
                Err(e) => Err(e),
            };
            let _ = reply.send(result);
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for Pending { job, reply } in batch {
        let result = match statement(&mut tx, "SAVEPOINT job").await {
            Err(e) => Err(e),
            Ok(()) => match exec(&mut tx, job, next).await {
                Ok(event) => statement(&mut tx, "RELEASE job").await.map(|()| event),
                Err(e) => {
                    let undone = match statement(&mut tx, "ROLLBACK TO job").await {
                        Ok(()) => statement(&mut tx, "RELEASE job").await,
                        Err(e) => Err(e),
                    };
                    match undone {
                        Ok(()) => Err(e),
                        // The transaction is in an unknown state: fail the whole batch.
                        Err(fatal) => {
                            answers.push((reply, Err(e)));
                            fail_all(answers, &fatal);
                            return;
                        }
                    }
                }
            },
        };
        if result.is_ok() {
            next += 1;
        }
        answers.push((reply, result));
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(e) => fail_all(answers, &backend(e)),
    }
}

/// Nothing of the batch was committed: every job fails (keeping its own error if it had one).
fn fail_all(
    answers: Vec<(
        oneshot::Sender<StoreResult<AuditEvent>>,
        StoreResult<AuditEvent>,
    )>,
    e: &StoreError,
) {
    tracing::error!(error = %e, "write batch rolled back");
    for (reply, result) in answers {
        let _ = reply.send(match result {
            Ok(_) => Err(StoreError::Backend(e.to_string())),
            Err(own) => Err(own),
        });
    }
}
