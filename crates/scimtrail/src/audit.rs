//! `scimtrail audit verify|export|prune`: the auditor's and operator's tools on the log.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Subcommand;
use scimtrail_audit::bundle::{self, BundleEntry, BundleWriter};
use scimtrail_audit::checkpoint::open_checkpoint;
use scimtrail_audit::verify::{Expected, Failure, LogVerifier, Report};
use scimtrail_core::Filter;
use scimtrail_store::Store;
use serde_json::json;

use crate::config::DatabaseArg;

/// Rows read per round trip while streaming the log.
const CHUNK: usize = 10_000;
/// Ranges of the log checked at once by `audit verify`.
const IN_FLIGHT: usize = 3;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify the log: every leaf, payload, gap and checkpoint (or, with --bundle, an
    /// exported bundle with only the public key).
    Verify {
        #[command(flatten)]
        db: DatabaseArg,
        /// Verify this exported bundle instead of the database (needs --key).
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The log's public key (C2SP verifier key file). Default: log-key.pub in the data
        /// directory.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The checkpoint file outside the database. Default: checkpoints.jsonl in the data
        /// directory.
        #[arg(long)]
        checkpoint_log: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Export the log (or the events a filter matches) as an offline bundle.
    Export {
        #[command(flatten)]
        db: DatabaseArg,
        /// The directory to write (created).
        #[arg(long)]
        out: PathBuf,
        /// Only the events this SCIM filter over event attributes matches.
        #[arg(long)]
        filter: Option<String>,
        /// The log's public key file, copied into the bundle. Default: log-key.pub in the
        /// data directory.
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Events matching a filter, newest first: time, actor, action, target, outcome, latency.
    Query {
        /// SCIM filter over event attributes, e.g. 'outcome.status eq 400'.
        #[arg(long)]
        filter: Option<String>,
        /// At most this many (default 50, at most 1000).
        #[arg(long, default_value_t = 50)]
        count: usize,
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// One event in full, its changes as old → new.
    Show {
        id: String,
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// The newest events matching a filter, oldest first; with --follow, then every new one
    /// as it is committed (the log is looked at every second).
    Tail {
        /// SCIM filter over event attributes.
        #[arg(long)]
        filter: Option<String>,
        /// How many events to show before following (default 10).
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        db: DatabaseArg,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
    },
    /// Count events per time bucket and by envelope attributes, e.g.
    /// --by outcome.scimType --since 24h --filter 'actor.client eq "Okta"'.
    Stats {
        #[arg(long)]
        filter: Option<String>,
        /// Window length back from now (default 24h when the filter has no time comparison).
        #[arg(long)]
        since: Option<String>,
        /// Bucket width, e.g. 1h, 15m, 1d.
        #[arg(long)]
        bucket: Option<String>,
        /// Up to three attributes, comma-separated: outcome.result, outcome.status,
        /// outcome.scimType, action, actor.client, actor.name…
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// Every event of one request (its X-Request-Id), in log order.
    Trace {
        request_id: String,
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// Remove the payloads (bodies, change values) of old events; their commitments stay, so
    /// the log still verifies. The prune is recorded as an event.
    Prune {
        #[command(flatten)]
        db: DatabaseArg,
        /// Age, e.g. 90d, 12h, 30m.
        #[arg(long)]
        older_than: String,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

async fn open(db: &DatabaseArg) -> anyhow::Result<Arc<dyn Store>> {
    let url = db.url();
    let registry = Arc::new(scimtrail_core::Registry::builtin());
    scimtrail_store_sql::connect(&url, registry)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                scimtrail_store_sql::redact_url(&url)
            )
        })
}

pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify {
            bundle: Some(dir),
            key,
            json,
            ..
        } => {
            let key = key.context("--bundle needs the log's public key: --key FILE")?;
            let vkey = bundle::read_key_file(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
            verify_bundle(&dir, &vkey, json)
        }
        AuditCommand::Verify {
            db,
            key,
            checkpoint_log,
            json,
            ..
        } => {
            let vkey = crate::logkey::verifier_key(key.as_deref(), &db.url())?;
            let file = checkpoint_log
                .clone()
                .unwrap_or_else(|| crate::logkey::data_dir(&db.url()).join("checkpoints.jsonl"));
            let store = open(&db).await?;
            let outcome =
                verify_online(store.clone(), &vkey, &file, checkpoint_log.is_some()).await?;
            print_outcome(outcome, json)
        }
        AuditCommand::Export {
            db,
            out,
            filter,
            key,
            json,
        } => {
            let vkey = crate::logkey::verifier_key(key.as_deref(), &db.url())?;
            let store = open(&db).await?;
            let result = export(store.as_ref(), &vkey, &out, filter.as_deref()).await;
            // Taking the log out of the system is itself evidence: recorded, done or not.
            let mut query = format!("--out {}", out.display());
            if let Some(f) = &filter {
                query.push_str(&format!(" --filter {f}"));
            }
            let mut event = operator_event(
                "audit.export",
                "scimtrail audit export",
                query,
                json!({"out": out.display().to_string(), "filter": filter}),
            );
            match &result {
                Ok(summary) => event.response.body = summary.clone(),
                Err(e) => {
                    event.outcome =
                        scimtrail_audit::Outcome::from_status(400, None, Some(format!("{e:#}")))
                }
            }
            store.append_event(event).await?;
            let summary = result?;
            print_export(&summary, &out, json);
            Ok(())
        }
        AuditCommand::Query {
            filter,
            count,
            db,
            json,
        } => {
            let mut path = format!("/audit/v1/events?count={}", count.min(1000));
            if let Some(f) = &filter {
                path.push_str(&format!("&filter={}", encode(f)));
            }
            list_events(&db, &path, json).await
        }
        AuditCommand::Tail {
            filter,
            lines,
            follow,
            db,
            json,
        } => tail(&db, filter.as_deref(), lines, follow, json).await,
        AuditCommand::Stats {
            filter,
            since,
            bucket,
            by,
            db,
            json,
        } => {
            let mut path = "/audit/v1/stats?".to_string();
            for (k, v) in [
                ("filter", filter),
                ("since", since),
                ("bucket", bucket),
                ("by", by),
            ] {
                if let Some(v) = v {
                    path.push_str(&format!("{k}={}&", encode(&v)));
                }
            }
            let local = crate::history::Local::open(&db).await?;
            let (status, v) = local.call(axum::http::Method::GET, &path, None).await?;
            if status != 200 {
                return Err(crate::history::fail(status, &v));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_stats(&v);
            }
            Ok(())
        }
        AuditCommand::Trace {
            request_id,
            db,
            json,
        } => {
            list_events(
                &db,
                &format!("/audit/v1/requests/{}", encode(&request_id)),
                json,
            )
            .await
        }
        AuditCommand::Show { id, db, json } => {
            let local = crate::history::Local::open(&db).await?;
            let (status, e) = local
                .call(
                    axum::http::Method::GET,
                    &format!("/audit/v1/events/{}", encode(&id)),
                    None,
                )
                .await?;
            if status != 200 {
                return Err(crate::history::fail(status, &e));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                show_event(&e);
            }
            Ok(())
        }
        AuditCommand::Prune {
            db,
            older_than,
            dry_run,
            json,
        } => {
            let store = open(&db).await?;
            prune(store.as_ref(), &older_than, dry_run, json).await
        }
    }
}

/// Report a failed verification (JSON on stdout with `--json`, one line on stderr otherwise)
/// and exit 1.
fn failed(json: bool, report: serde_json::Value, line: String) -> ! {
    if json {
        println!("{report}");
    } else {
        eprintln!("{line}");
    }
    std::process::exit(1)
}

fn verify_bundle(dir: &Path, vkey: &str, json: bool) -> anyhow::Result<()> {
    match bundle::verify(dir, vkey) {
        Ok(r) => {
            if json {
                println!("{}", json!({"ok": true, "bundle": r}));
            } else {
                println!(
                    "ok: {} events ({} with payloads) in the tree of size {} signed by {}, root {}{}",
                    r.events,
                    r.payloads,
                    r.tree_size,
                    r.origin,
                    r.root,
                    if r.complete { " (complete: root rebuilt from every leaf)" } else { "" }
                );
            }
            Ok(())
        }
        Err(e) => failed(
            json,
            json!({"ok": false, "error": e}),
            format!("bundle verification FAILED: {e}"),
        ),
    }
}

/// The checkpoints to hold the log to: every stored one and every line of the checkpoint
/// file, each with a verified signature whose size and root match what it is stored with.
async fn load_checkpoints(
    store: &dyn Store,
    vkey: &str,
    file: &Path,
    file_required: bool,
) -> anyhow::Result<Result<(Vec<Expected>, Option<usize>), Failure>> {
    let bad = |what: String| Ok(Err(Failure { seq: None, what }));
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = store.checkpoints(before, 1000).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.size);
        for c in page {
            let source = format!("the stored checkpoint of size {}", c.size);
            match open_checkpoint(c.note.as_bytes(), vkey) {
                Ok(v) if v.size == c.size && v.root == c.root => {}
                Ok(_) => {
                    return bad(format!(
                        "{source}: its note says another size or root than its row"
                    ))
                }
                Err(e) => return bad(format!("{source}: {e}")),
            }
            out.push(Expected {
                source,
                size: c.size,
                root: c.root,
            });
        }
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file_required => {
            eprintln!(
                "warning: no checkpoint file at {}; only stored checkpoints are checked",
                file.display()
            );
            return Ok(Ok((out, None)));
        }
        Err(e) => {
            return bad(format!(
                "cannot read the checkpoint file {}: {e}",
                file.display()
            ))
        }
    };
    let mut lines = 0;
    for (i, line) in text.lines().enumerate() {
        let source = format!("{} line {}", file.display(), i + 1);
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return bad(format!("{source}: not JSON: {e}")),
        };
        let note = v["note"].as_str().unwrap_or_default();
        match open_checkpoint(note.as_bytes(), vkey) {
            Ok(c) => {
                // Whoever tails the file reads these fields: they must be the note's.
                if v["treeSize"].as_u64() != Some(c.size)
                    || v["rootHash"].as_str() != Some(B64.encode(c.root).as_str())
                {
                    return bad(format!(
                        "{source}: treeSize or rootHash is not what its signed note says"
                    ));
                }
                out.push(Expected {
                    source,
                    size: c.size,
                    root: c.root,
                })
            }
            Err(e) => return bad(format!("{source}: {e}")),
        }
        lines += 1;
    }
    if lines == 0 && !out.is_empty() {
        eprintln!(
            "warning: the checkpoint file {} is empty although the database holds checkpoints",
            file.display()
        );
    }
    Ok(Ok((out, Some(lines))))
}

pub struct Outcome {
    result: Result<Report, Failure>,
    file_lines: Option<usize>,
}

pub async fn verify_online(
    store_arc: Arc<dyn Store>,
    vkey: &str,
    file: &Path,
    file_required: bool,
) -> anyhow::Result<Outcome> {
    let store = store_arc.as_ref();
    let (checkpoints, file_lines) = match load_checkpoints(store, vkey, file, file_required).await?
    {
        Ok(c) => c,
        Err(f) => {
            return Ok(Outcome {
                result: Err(f),
                file_lines: None,
            })
        }
    };
    let total = store.tree_size().await?;
    let progress = std::io::stderr().is_terminal();
    let mut v = LogVerifier::new(checkpoints);
    // Leaves are checked where they are read, by ranges of `seq`, several ranges at once
    // (each on its own reader connection, both cores busy); the in-order part (gaps, the tree,
    // checkpoints, the stored tree hashes) takes the ranges' results in order.
    let mut queue = std::collections::VecDeque::new();
    let mut next_from = 0u64;
    let spawn = |from: u64| {
        let store = store_arc.clone();
        let to = (from + CHUNK as u64).min(total);
        tokio::spawn(async move { store.check_leaves(from, to).await })
    };
    while next_from < total && queue.len() < IN_FLIGHT {
        queue.push_back(spawn(next_from));
        next_from += CHUNK as u64;
    }
    while let Some(task) = queue.pop_front() {
        let chunk = task.await??;
        if next_from < total {
            queue.push_back(spawn(next_from));
            next_from += CHUNK as u64;
        }
        let mut expected: Vec<(u64, [u8; 32])> = Vec::new();
        for c in chunk.leaves {
            let pushed = v
                .expect(c.seq)
                .and(c.leaf)
                .and_then(|leaf| v.push_checked(c.seq, &leaf));
            match pushed {
                Ok(done) => expected.extend(done.into_iter().map(|h| (c.seq, h))),
                Err(f) => {
                    for t in queue {
                        t.abort();
                    }
                    return Ok(Outcome {
                        result: Err(f),
                        file_lines,
                    });
                }
            }
        }
        // The stored tree must hold exactly the hashes the leaves give, or the proofs it
        // serves would not match the log.
        for (i, (seq, h)) in expected.iter().enumerate() {
            let idx = chunk.first_index + i as u64;
            let ok = chunk
                .stored
                .get(i)
                .is_some_and(|(j, s)| *j == idx && s.as_slice() == h);
            if !ok {
                for t in queue {
                    t.abort();
                }
                let f = Failure {
                    seq: Some(*seq),
                    what: format!(
                        "the stored Merkle tree hash {idx} disagrees with the leaves: proofs \
                         served from it would be wrong"
                    ),
                };
                return Ok(Outcome {
                    result: Err(f),
                    file_lines,
                });
            }
        }
        if progress {
            eprint!("\rverified {} of {total} events", v.size());
        }
    }
    if progress {
        eprintln!();
    }
    let size = v.size();
    let root = v.root();
    let result = v.finish();
    if result.is_ok() {
        let stored = store.tree_root(size).await?;
        if stored != root {
            return Ok(Outcome {
                result: Err(Failure {
                    seq: None,
                    what: format!(
                        "the stored Merkle tree has root {} for {size} events, the leaves give {}: \
                         proofs served from it would be wrong",
                        B64.encode(stored),
                        B64.encode(root)
                    ),
                }),
                file_lines,
            });
        }
    }
    if result.is_ok() {
        // Tree hashes beyond the log's last leaf belong to no event (and would make the next
        // append fail). The log may grow meanwhile: only hashes beyond it count.
        let beyond = |n| scimtrail_audit::merkle::stored_index(0, n);
        let now = store.tree_size().await?;
        let orphans = store.payload_seqs_from(now, 1).await?;
        if let Some(seq) = orphans.first() {
            if *seq >= store.tree_size().await? {
                return Ok(Outcome {
                    result: Err(Failure {
                        seq: Some(*seq),
                        what: format!(
                            "a payload is stored for seq {seq}, beyond the log's {now} events: \
                             rows were added by hand (the next append would fail)"
                        ),
                    }),
                    file_lines,
                });
            }
        }
        let stray = store.stored_hashes(beyond(now), i64::MAX as u64).await?;
        if !stray.is_empty() {
            let now = store.tree_size().await?;
            if let Some((idx, _)) = stray.iter().find(|(i, _)| *i >= beyond(now)) {
                return Ok(Outcome {
                    result: Err(Failure {
                        seq: None,
                        what: format!(
                            "stored Merkle tree hash {idx} lies beyond the log's {now} events: \
                             rows were added to the tree by hand"
                        ),
                    }),
                    file_lines,
                });
            }
        }
    }
    Ok(Outcome { result, file_lines })
}

fn print_outcome(o: Outcome, json: bool) -> anyhow::Result<()> {
    match o.result {
        Ok(r) => {
            if json {
                println!(
                    "{}",
                    json!({"ok": true, "report": r, "checkpointFileLines": o.file_lines})
                );
            } else {
                println!(
                    "ok: {} events without a gap ({} payloads, {} pruned); {} checkpoints verified \
                     (up to size {}{}); root {}",
                    r.events,
                    r.payloads,
                    r.pruned,
                    r.checkpoints,
                    r.checkpointed,
                    o.file_lines
                        .map(|n| format!(", {n} of them from the checkpoint file"))
                        .unwrap_or_default(),
                    r.root
                );
            }
            Ok(())
        }
        Err(f) => failed(
            json,
            json!({"ok": false, "failure": f}),
            format!("verification FAILED: {f}"),
        ),
    }
}

async fn export(
    store: &dyn Store,
    vkey: &str,
    out: &Path,
    filter: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let filter = filter
        .map(|f| Filter::parse(f).map_err(|e| anyhow::anyhow!("invalid --filter: {e}")))
        .transpose()?;
    let cp = store
        .checkpoints(None, 1)
        .await?
        .into_iter()
        .next()
        .context("no checkpoint has been signed yet: start the server (it signs within a second of new events)")?;
    open_checkpoint(cp.note.as_bytes(), vkey)
        .map_err(|e| anyhow::anyhow!("the latest checkpoint does not verify with this key: {e}"))?;
    // A filter the log cannot serve fails before anything is written.
    store
        .log_rows(filter.as_ref(), None, 1)
        .await
        .map_err(|e| anyhow::anyhow!("invalid --filter: {e}"))?;
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(
            "{} exists and is not empty; export into a new directory",
            out.display()
        );
    }
    // A whole-log export proves every leaf: it reads the stored tree once into memory (64 MB
    // per million events) instead of a proof's hashes row by row.
    let memory = if filter.is_none() && cp.size <= IN_MEMORY_TREE {
        Some(load_tree(store, cp.size).await?)
    } else {
        None
    };
    let mut w = BundleWriter::create(out, &cp.note, vkey, cp.size)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let (mut events, mut payloads) = (0u64, 0u64);
    let mut after = None;
    'outer: loop {
        let rows = store
            .log_rows(filter.as_ref(), after, CHUNK)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(last) = rows.last() else { break };
        after = Some(last.seq);
        let seqs: Vec<u64> = rows
            .iter()
            .map(|r| r.seq)
            .filter(|s| *s < cp.size)
            .collect();
        let mut proofs = match &memory {
            Some(tree) => seqs
                .iter()
                .map(|&s| scimtrail_audit::merkle::inclusion_proof(s, cp.size, tree))
                .collect::<Result<Vec<_>, _>>()?,
            None => store.inclusion_proofs(&seqs, cp.size).await?,
        }
        .into_iter();
        for r in rows {
            if r.seq >= cp.size {
                break 'outer;
            }
            let proof = proofs.next().context("a proof for every leaf")?;
            payloads += u64::from(r.payload.is_some());
            w.push(&BundleEntry {
                seq: r.seq,
                commitment: r.commitment,
                payload: r.payload,
                proof,
            })?;
            events += 1;
        }
    }
    w.finish()?;
    let newer = store.tree_size().await?.saturating_sub(cp.size);
    Ok(
        json!({"out": out.display().to_string(), "events": events, "payloads": payloads,
              "treeSize": cp.size, "notYetCheckpointed": newer}),
    )
}

fn print_export(summary: &serde_json::Value, out: &Path, json: bool) {
    if json {
        println!("{summary}");
        return;
    }
    let n = |k: &str| summary[k].as_u64().unwrap_or_default();
    println!(
        "exported {} events ({} with payloads) under the checkpoint of size {} to {}",
        n("events"),
        n("payloads"),
        n("treeSize"),
        out.display()
    );
    if n("notYetCheckpointed") > 0 {
        println!(
            "{} newer events are not covered by a checkpoint yet and were left out",
            n("notYetCheckpointed")
        );
    }
}

/// Exports of logs up to this many events hold the stored tree in memory.
const IN_MEMORY_TREE: u64 = 10_000_000;

/// The stored tree of the first `size` leaves, read in chunks.
async fn load_tree(
    store: &dyn Store,
    size: u64,
) -> anyhow::Result<scimtrail_audit::merkle::MemoryTree> {
    let need = scimtrail_audit::merkle::stored_index(0, size);
    let mut hashes = Vec::with_capacity(need as usize);
    let mut from = 0u64;
    while from < need {
        let to = (from + 1_000_000).min(need);
        for (idx, h) in store.stored_hashes(from, to).await? {
            anyhow::ensure!(
                idx == hashes.len() as u64,
                "stored tree hash {} is missing",
                hashes.len()
            );
            hashes.push(<[u8; 32]>::try_from(h.as_slice()).map_err(|_| {
                anyhow::anyhow!("stored tree hash {idx} is damaged; run audit verify")
            })?);
        }
        from = to;
    }
    Ok(scimtrail_audit::merkle::MemoryTree::from_stored(
        hashes, size,
    )?)
}

/// `90d`, `12h`, `30m`, `45s`, `2w`.
pub fn parse_age(s: &str) -> anyhow::Result<time::Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("{s:?} is not an age like 90d"))?;
    let unit_secs: i64 = match unit {
        "w" => 7 * 86_400,
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => anyhow::bail!("{s:?}: the unit is one of w, d, h, m, s (e.g. 90d)"),
    };
    // At most 1000 years: beyond, the cutoff would not be a date.
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| *s <= 1000 * 366 * 86_400)
        .with_context(|| format!("{s:?} is too long an age (at most 1000 years)"))?;
    Ok(time::Duration::seconds(secs))
}

async fn prune(
    store: &dyn Store,
    older_than: &str,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let age = parse_age(older_than)?;
    let now = time::OffsetDateTime::now_utc();
    let before = scimtrail_audit::format_time(
        now.checked_sub(age)
            .context("--older-than reaches before year 1")?,
    );
    let mut query = format!("--older-than {older_than}");
    if dry_run {
        query.push_str(" --dry-run");
    }
    let mut event = operator_event(
        "audit.prune",
        "scimtrail audit prune",
        query,
        json!({"olderThan": older_than, "before": before, "dryRun": dry_run}),
    );
    // A real prune names its cutoff in the clear, so `audit verify` can tell a payload it
    // removed from one deleted behind its back.
    event.target.id = (!dry_run).then(|| before.clone());
    event.target.display = Some(format!("payloads older than {before}"));
    let r = store.prune(&before, dry_run, event).await?;
    if json {
        println!("{}", json!({"before": before, "report": r}));
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        match (r.first_seq, r.last_seq) {
            (Some(a), Some(b)) => println!(
                "{verb} the payloads of {} events older than {before} (seq {a} to {b}); their \
                 commitments stay, so the log still verifies",
                r.payloads
            ),
            _ => println!("no payloads older than {before}"),
        }
        if let Some(seq) = r.event_seq {
            println!("recorded as event seq {seq}");
        }
    }
    Ok(())
}

/// The event of an operator's act on the log from the command line (`$USER` as the actor,
/// the log itself as the target).
fn operator_event(
    action: &str,
    path: &str,
    query: String,
    request: serde_json::Value,
) -> scimtrail_audit::AuditEvent {
    scimtrail_audit::AuditEvent {
        id: uuid_v7(),
        seq: None,
        time: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
        tenant: "default".into(),
        request_id: uuid_v7(),
        actor: scimtrail_audit::Actor {
            kind: scimtrail_audit::ACTOR_OPERATOR.into(),
            name: Some(std::env::var("USER").unwrap_or_else(|_| "operator".into())),
            ..Default::default()
        },
        action: action.into(),
        operation: scimtrail_audit::Operation {
            method: "CLI".into(),
            path: path.into(),
            query: Some(query),
            scim: None,
        },
        target: scimtrail_audit::Target {
            system: gethostname::gethostname().to_string_lossy().into_owned(),
            resource_type: Some("AuditLog".into()),
            ..Default::default()
        },
        outcome: scimtrail_audit::Outcome::from_status(200, None, None),
        latency_ms: 0.0,
        changes: vec![],
        request: scimtrail_audit::Payload {
            body: request,
            ..Default::default()
        },
        response: scimtrail_audit::Payload::default(),
        parent_id: None,
        leaf_hash: None,
    }
}

fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Percent-encoding for a query value or path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn event_line(e: &serde_json::Value) -> String {
    let t = &e["target"];
    let target = match (
        t["type"].as_str(),
        t["display"].as_str().or(t["id"].as_str()),
    ) {
        (Some(ty), Some(d)) => format!("{ty} {d}"),
        (Some(ty), None) => ty.to_string(),
        _ => "-".into(),
    };
    let o = &e["outcome"];
    let outcome = match o["scimType"].as_str() {
        Some(st) => format!("{} {st}", o["status"]),
        None => o["status"].to_string(),
    };
    format!(
        "{:<27} {:<18} {:<24} {:<40} {:<20} {:>8.1} ms",
        e["time"].as_str().unwrap_or("?"),
        e["actor"]["name"]
            .as_str()
            .or(e["actor"]["kind"].as_str())
            .unwrap_or("?"),
        e["action"].as_str().unwrap_or("?"),
        target.chars().take(40).collect::<String>(),
        outcome,
        e["latencyMs"].as_f64().unwrap_or(0.0)
    )
}

async fn list_events(db: &DatabaseArg, path: &str, json: bool) -> anyhow::Result<()> {
    let local = crate::history::Local::open(db).await?;
    let (status, v) = local.call(axum::http::Method::GET, path, None).await?;
    if status != 200 {
        return Err(crate::history::fail(status, &v));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&v["Resources"])?);
        return Ok(());
    }
    println!(
        "{:<27} {:<18} {:<24} {:<40} {:<20} {:>11}",
        "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "LATENCY"
    );
    for e in v["Resources"].as_array().into_iter().flatten() {
        println!("{}", event_line(e));
    }
    Ok(())
}

/// One group of a stats answer as `a=x b=y`.
fn group_label(g: &serde_json::Value, by: &[serde_json::Value]) -> String {
    by.iter()
        .filter_map(|b| b.as_str())
        .map(|b| match &g[b] {
            serde_json::Value::Null => format!("{b}=-"),
            serde_json::Value::String(s) => format!("{b}={s}"),
            v => format!("{b}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_stats(v: &serde_json::Value) {
    let by = v["by"].as_array().cloned().unwrap_or_default();
    if let Some(from) = v["from"].as_str() {
        println!("since {from}: {} events", v["count"]);
    } else {
        println!("{} events", v["count"]);
    }
    if let Some(buckets) = v["buckets"].as_array() {
        println!();
        println!("{:<27} {:>8}  GROUPS", "BUCKET", "COUNT");
        for b in buckets {
            let groups: Vec<String> = b["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| format!("{} ({})", group_label(g, &by), g["count"]))
                .collect();
            println!(
                "{:<27} {:>8}  {}",
                b["start"].as_str().unwrap_or("?"),
                b["count"],
                groups.join(", ")
            );
        }
    }
    if let Some(groups) = v["groups"].as_array() {
        println!();
        println!("{:>8}  GROUP", "COUNT");
        for g in groups {
            println!("{:>8}  {}", g["count"], group_label(g, &by));
        }
    }
}

/// `audit tail`: the newest `lines` matches, then (with `follow`) each new one. Every query
/// is bounded by a `seq` window, so any filter works; the store's scan budget may end a page
/// early, and its cursor is followed.
async fn tail(
    db: &DatabaseArg,
    filter: Option<&str>,
    lines: usize,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    let local = crate::history::Local::open(db).await?;
    let get = |path: String| {
        let local = &local;
        async move {
            let (status, v) = local.call(axum::http::Method::GET, &path, None).await?;
            if status != 200 {
                return Err(crate::history::fail(status, &v));
            }
            Ok::<_, anyhow::Error>(v)
        }
    };
    let and = |extra: String| match filter {
        Some(f) => encode(&format!("({f}) and {extra}")),
        None => encode(&extra),
    };
    let print = |e: &serde_json::Value| {
        if json {
            println!("{e}");
        } else {
            println!("{}", event_line(e));
        }
    };
    let newest = get("/audit/v1/events?count=1".into()).await?;
    let Some(end) = newest["Resources"][0]["seq"].as_u64() else {
        if !follow {
            return Ok(());
        }
        return follow_from(&local, filter, &print, None).await;
    };
    let mut shown: Vec<serde_json::Value> = vec![];
    let base = format!(
        "/audit/v1/events?count={}&filter={}",
        lines.min(1000),
        and(format!("seq le {end}"))
    );
    let mut path = base.clone();
    for _ in 0..10_000 {
        if shown.len() >= lines {
            break;
        }
        let page = get(path.clone()).await?;
        shown.extend(page["Resources"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    shown.truncate(lines);
    if !json && !shown.is_empty() {
        println!(
            "{:<27} {:<18} {:<24} {:<40} {:<20} {:>11}",
            "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "LATENCY"
        );
    }
    for e in shown.iter().rev() {
        print(e);
    }
    if follow {
        follow_from(&local, filter, &print, Some(end)).await?;
    }
    Ok(())
}

/// Follow the log through the API's live tail (`/audit/v1/stream`), recorded once as it
/// starts; each SSE event is printed as it arrives.
async fn follow_from(
    local: &crate::history::Local,
    filter: Option<&str>,
    print: &dyn Fn(&serde_json::Value),
    after: Option<u64>,
) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let mut path = "/audit/v1/stream?".to_string();
    if let Some(f) = filter {
        path.push_str(&format!("filter={}&", encode(f)));
    }
    path.push_str(&format!("after={}", after.map_or(-1, |a| a as i64)));
    if after.is_none() {
        // From the start of an empty log: `after` must be a seq, so leave it out.
        path = path.replace("after=-1", "");
    }
    let resp = local.respond(axum::http::Method::GET, &path, None).await?;
    if resp.status() != 200 {
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024).await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        return Err(crate::history::fail(status, &v));
    }
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if block.lines().any(|l| l.trim() == "event: audit") {
                if let Ok(e) = serde_json::from_str::<serde_json::Value>(&data) {
                    print(&e);
                }
            }
        }
    }
    Ok(())
}

fn show_event(e: &serde_json::Value) {
    println!("{}", event_line(e));
    println!(
        "id {}  seq {}  request {}{}",
        e["id"].as_str().unwrap_or("?"),
        e["seq"],
        e["requestId"].as_str().unwrap_or("?"),
        e["parentId"]
            .as_str()
            .map(|p| format!("  parent {p}"))
            .unwrap_or_default()
    );
    println!(
        "actor {} {} ({}) from {}",
        e["actor"]["kind"].as_str().unwrap_or("?"),
        e["actor"]["name"].as_str().unwrap_or("-"),
        e["actor"]["client"].as_str().unwrap_or("-"),
        e["actor"]["ip"].as_str().unwrap_or("-")
    );
    println!(
        "{} {}{}",
        e["operation"]["method"].as_str().unwrap_or("?"),
        e["operation"]["path"].as_str().unwrap_or("?"),
        e["operation"]["query"]
            .as_str()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    if let Some(d) = e["outcome"]["detail"].as_str() {
        println!("detail: {d}");
    }
    if e["changes"].as_array().is_some_and(|c| !c.is_empty()) {
        println!("changes:");
        crate::history::print_changes(&e["changes"], "  ");
    }
    for part in ["request", "response"] {
        let body = &e[part]["body"];
        if !body.is_null() {
            println!("{part} body: {body}");
        }
    }
}
