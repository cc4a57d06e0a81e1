//! `scimtrail-logbench fill`: write a large, realistic, signed audit log straight through the
//! store (group commit, as the server does), for benchmarking `scimtrail audit verify` and
//! `export` at millions of events without driving millions of HTTP requests.
//!
//! Each event is a Entra-style `user.update`: a PATCH request body, the user in the response
//! (about 1 KB together), two changes. A checkpoint is signed every `--checkpoint-every`
//! events and at the end, stored and appended to `checkpoints.jsonl`, with the key in
//! `log-key` / `log-key.pub` beside the database, exactly where `serve` keeps them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use scimtrail_audit::{Actor, AuditEvent, Change, Operation, Outcome, Payload, Target};
use scimtrail_server::transparency::sign_now;
use scimtrail_store::Store;
use serde_json::json;

#[derive(Parser)]
enum Cmd {
    /// Append events to a new or existing SQLite log.
    Fill {
        /// Directory of the database (created); the log key and checkpoint file go beside it.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        checkpoint_every: u64,
        /// Concurrent submitters (group commit batches their appends).
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
    },
}

fn event(n: u64) -> AuditEvent {
    let id = format!("{:08x}-6c3e-4f0a-9d2b-{:012x}", n / 7, n);
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        seq: None,
        time: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
        tenant: "default".into(),
        request_id: uuid::Uuid::now_v7().to_string(),
        actor: Actor {
            kind: "token".into(),
            id: Some("01a2229e-ab79-7a1e-9f00-000000000001".into()),
            name: Some("entra".into()),
            client: Some("Microsoft Entra ID".into()),
            ip: Some("10.1.2.3".into()),
            user_agent: Some("Azure AD SCIM Client".into()),
        },
        action: "user.update".into(),
        operation: Operation {
            method: "PATCH".into(),
            path: format!("/scim/v2/Users/{id}"),
            query: None,
            scim: Some("patch".into()),
        },
        target: Target {
            system: "scim-prod-1".into(),
            resource_type: Some("User".into()),
            id: Some(id.clone()),
            external_id: Some(format!("ext-{n}")),
            display: Some(format!("user{n}@example.com")),
            version_before: Some(3),
            version_after: Some(4),
        },
        outcome: Outcome::from_status(200, None, None),
        latency_ms: 1.2,
        changes: vec![
            Change {
                op: "replace".into(),
                path: "active".into(),
                old: json!(true),
                new: json!(false),
            },
            Change {
                op: "replace".into(),
                path: "title".into(),
                old: json!("Engineer"),
                new: json!(format!("Senior Engineer {n}")),
            },
        ],
        request: Payload {
            headers: serde_json::from_value(json!({"authorization": "[REDACTED]",
                "content-type": "application/scim+json", "user-agent": "Azure AD SCIM Client"}))
            .unwrap_or_default(),
            body: json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"},
                               {"op": "Replace", "path": "title", "value": format!("Senior Engineer {n}")}]}),
            truncated: false,
        },
        response: Payload {
            headers: serde_json::from_value(
                json!({"etag": "W/\"4\"", "content-type": "application/scim+json"}),
            )
            .unwrap_or_default(),
            body: json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id,
                "userName": format!("user{n}@example.com"), "active": false,
                "name": {"givenName": "Given", "familyName": format!("Family{n}")},
                "title": format!("Senior Engineer {n}"),
                "emails": [{"value": format!("user{n}@example.com"), "type": "work", "primary": true}],
                "meta": {"resourceType": "User", "version": "W/\"4\"",
                         "created": "2026-11-28T14:45:54.750456Z", "lastModified": "2026-12-01T10:00:00.000000Z"}}),
            truncated: false,
        },
        parent_id: None,
        leaf_hash: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Fill {
        dir,
        events,
        checkpoint_every,
        concurrency,
    } = Cmd::parse();
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    let store: Arc<dyn Store> =
        scimtrail_store_sql::connect(&url, Arc::new(scimtrail_core::Registry::builtin()))
            .await
            .context("open the store")?;
    let (log, sinks) = scimtrail_bench::bench_log(&dir, "bench.example/scimtrail")?;
    let start = Instant::now();
    let first = store.tree_size().await?;
    let mut done = 0u64;
    while done < events {
        let round = checkpoint_every.min(events - done);
        let per = round.div_ceil(concurrency);
        let mut tasks = Vec::new();
        for t in 0..concurrency {
            let store = store.clone();
            let base = first + done + t * per;
            let n = per.min(round.saturating_sub(t * per));
            tasks.push(tokio::spawn(async move {
                for i in 0..n {
                    store.append_event(event(base + i)).await?;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        done += round;
        sign_now(store.as_ref(), &log, &sinks)
            .await
            .map_err(anyhow::Error::msg)?;
        eprintln!(
            "{done} events, {:.0} events/s",
            done as f64 / start.elapsed().as_secs_f64()
        );
    }
    println!(
        "appended {done} events in {:.1} s ({:.0} events/s); log size now {}",
        start.elapsed().as_secs_f64(),
        done as f64 / start.elapsed().as_secs_f64(),
        store.tree_size().await?
    );
    Ok(())
}
