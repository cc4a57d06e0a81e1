//! The writer: one thread, one SQLite connection, group commit.
//!
//! Requests hand their write (or bare event) to the writer thread and wait for the answer. The
//! thread takes whatever is queued (up to [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE`
//! transaction, runs each job under its own savepoint — a failing job is rolled back alone and
//! consumes no `seq` — and commits once. Nobody is answered before that commit, so a crash loses
//! only requests that were never answered, and each job keeps its all-or-nothing guarantee.
//!
//! Why a plain thread with a synchronous binding: every statement of a batch then runs without a
//! hand-off between threads (an async driver pays a channel round trip per statement), which was
//! the main cost of a write. Reads stay on the async reader pool and never wait for the writer.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use scimtrail_audit::AuditEvent;
use scimtrail_store::{ResourceWrite, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use super::write::{self, db};

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

pub struct Writer {
    queue: mpsc::Sender<Pending>,
}

impl Writer {
    /// Open the writer connection on an existing, migrated database and start its thread.
    pub fn start(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;",
        )
        .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (queue, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("scimtrail-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue })
    }

    /// Run a job; resolves once it is committed (or failed).
    pub async fn submit(&self, job: Job) -> StoreResult<AuditEvent> {
        let stopped = || StoreError::Backend("the writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { job, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // A panic inside one batch must not stop every later write: its transaction rolls back
        // as the stack unwinds, its submitters get an error, and the thread goes on.
        let run = std::panic::AssertUnwindSafe(|| commit_batch(&mut conn, batch));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a write batch panicked and was rolled back");
        }
    }
}

fn exec(conn: &Connection, job: Job, seq: i64) -> StoreResult<AuditEvent> {
    match job {
        Job::Write(w, e) => write::write(conn, *w, e, seq),
        Job::Append(e) => write::append(conn, e, seq),
    }
}

type Answer = (
    oneshot::Sender<StoreResult<AuditEvent>>,
    StoreResult<AuditEvent>,
);

fn commit_batch(conn: &mut Connection, batch: Vec<Pending>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let outcome = (|| -> Result<(), StoreError> {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut next: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        let mut jobs = batch.into_iter();
        for Pending { job, reply } in jobs.by_ref() {
            let result = {
                // Dropping the savepoint without `commit` rolls this job back alone.
                let sp = match tx.savepoint() {
                    Ok(sp) => sp,
                    Err(e) => {
                        answers.push((reply, Err(db(e))));
                        break;
                    }
                };
                match exec(&sp, job, next) {
                    Ok(event) => sp.commit().map(|()| event).map_err(db),
                    Err(e) => Err(e),
                }
            };
            if result.is_ok() {
                next += 1;
            }
            answers.push((reply, result));
        }
        // Jobs left over after a savepoint failure are not run.
        for Pending { reply, .. } in jobs {
            answers.push((
                reply,
                Err(StoreError::Backend("write batch aborted".into())),
            ));
        }
        tx.commit().map_err(db)
    })();
    match outcome {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            // Nothing of the batch was committed: every job fails, keeping its own error if any.
            tracing::error!(error = %e, "write batch rolled back");
            for (reply, result) in answers {
                let _ = reply.send(result.and(Err(StoreError::Backend(e.to_string()))));
            }
        }
    }
}
