//! `scimtrail-listbench`: resource lists at scale (issue #8).
//!
//! `fill --dir D --users N` writes N Entra-style users (and a group of 100 members per 10,000
//! users) through the store, each write with its audit event, as the server would.
//! `run --dir D` serves that database on 127.0.0.1 and times each list query over HTTP, one at
//! a time, `--runs` times with varying operands, printing p50/p99/max and the process's peak
//! RSS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use scimtrail_audit::{Actor, AuditEvent, Operation, Outcome, Payload, Target};
use scimtrail_store::{MemberDelta, ResourceWrite, Store, WriteKind};
use serde_json::{json, Value};

#[derive(Parser)]
enum Cmd {
    Fill {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
    },
    Run {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Time only the queries whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
}

const TOKEN: &str = "listbench-token-0123456789abcdef";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user_id(n: u64) -> String {
    format!("{:08x}-7d1e-4c2a-8b3f-{:012x}", n / 13, n)
}

fn user(n: u64) -> Value {
    let name = format!("user{n}@corp.example.com");
    let title = ["Engineer", "Manager", "Analyst", "Designer"][(n % 4) as usize];
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": name,
        "externalId": format!("ext-{n}"),
        "active": n % 10 < 7,
        "displayName": format!("User {n}"),
        "title": title,
        "name": {"givenName": "User", "familyName": format!("Family{}", n % 5000)},
        "emails": [{"value": name, "type": "work", "primary": true}],
        ENT: {"department": format!("Dept {}", n % 40), "employeeNumber": format!("{n}")},
    })
}

fn event(kind: &str, id: &str, version: i64) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        seq: None,
        time: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
        tenant: "default".into(),
        request_id: uuid::Uuid::now_v7().to_string(),
        actor: Actor {
            kind: "token".into(),
            name: Some("entra".into()),
            ..Default::default()
        },
        action: format!("{}.create", kind.to_ascii_lowercase()),
        operation: Operation {
            method: "POST".into(),
            path: format!("/scim/v2/{kind}s"),
            query: None,
            scim: Some("create".into()),
        },
        target: Target {
            system: "listbench".into(),
            resource_type: Some(kind.into()),
            id: Some(id.into()),
            version_after: Some(version),
            ..Default::default()
        },
        outcome: Outcome::from_status(201, None, None),
        latency_ms: 1.0,
        changes: vec![],
        request: Payload::default(),
        response: Payload::default(),
        parent_id: None,
        leaf_hash: None,
    }
}

fn write(kind: &str, id: String, data: Value, members: Option<MemberDelta>) -> ResourceWrite {
    let now = scimtrail_audit::format_time(time::OffsetDateTime::now_utc());
    ResourceWrite {
        tenant: "default".into(),
        resource_type: kind.into(),
        id,
        kind: WriteKind::Create,
        expected_version: None,
        new_version: 1,
        time: now,
        data: Some(data),
        members,
    }
}

async fn fill(dir: PathBuf, users: u64, concurrency: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    let store: Arc<dyn Store> =
        scimtrail_store_sql::connect(&url, Arc::new(scimtrail_core::Registry::builtin()))
            .await
            .context("open the store")?;
    let start = Instant::now();
    let per = users.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in (t * per)..((t + 1) * per).min(users) {
                let id = user_id(n);
                let w = write("User", id.clone(), user(n), None);
                store.write(w, event("User", &id, 1)).await?;
                if n > 0 && n % 100_000 == 0 {
                    eprintln!(
                        "~{} users, {:.0}/s",
                        n * concurrency / (t + 1).max(1),
                        (n - t * per) as f64 * concurrency as f64 / start.elapsed().as_secs_f64()
                    );
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    // A group of 100 members per 10,000 users.
    for g in 0..users.div_ceil(10_000) {
        let add: Vec<scimtrail_store::Member> = (0..100)
            .map(|k| g * 10_000 + k * 97)
            .filter(|n| *n < users)
            .map(|n| scimtrail_store::Member {
                value: user_id(n),
                resource_type: "User".into(),
                display: None,
            })
            .collect();
        let id = format!("group-{g:06}");
        let data = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                          "displayName": format!("Group {g}")});
        let w = write(
            "Group",
            id.clone(),
            data,
            Some(MemberDelta {
                add,
                remove: vec![],
            }),
        );
        store.write(w, event("Group", &id, 1)).await?;
    }
    println!(
        "wrote {users} users in {:.1} s ({:.0} users/s)",
        start.elapsed().as_secs_f64(),
        users as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

async fn run(dir: PathBuf, runs: usize, only: Option<String>) -> anyhow::Result<()> {
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    let registry = Arc::new(scimtrail_core::Registry::builtin());
    let store = scimtrail_store_sql::connect(&url, registry.clone())
        .await
        .context("open the store")?;
    scimtrail_server::auth::bootstrap(store.as_ref(), Some(TOKEN), "default", "listbench").await?;
    let state = scimtrail_server::AppState::new(
        store.clone(),
        registry,
        scimtrail_server::ServerConfig {
            checkpoint_interval: Duration::from_secs(3600),
            record_reads: false,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(scimtrail_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let (_, users) = {
        let r: Value = http
            .get(format!("{base}/scim/v2/Users?count=0"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        ((), r["totalResults"].as_u64().unwrap_or(0))
    };
    anyhow::ensure!(users > 0, "no users: run `fill` first");
    println!("{users} users; {runs} timed runs per query, one at a time over loopback HTTP");
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p99 ms", "max ms", "total"
    );
    type Make = Box<dyn Fn(u64) -> String>;
    let q = |f: String| format!("/scim/v2/Users?count=100&filter={}", enc(&f));
    let queries: Vec<(&str, Make)> = vec![
        (
            "userName eq (hit)",
            Box::new(move |n| {
                q(format!(
                    "userName eq \"user{}@corp.example.com\"",
                    n % users
                ))
            }),
        ),
        (
            "userName eq (miss)",
            Box::new(move |n| q(format!("userName eq \"nobody{n}@corp.example.com\""))),
        ),
        (
            "externalId eq",
            Box::new(move |n| q(format!("externalId eq \"ext-{}\"", n % users))),
        ),
        (
            "active eq true, page of 100",
            Box::new(move |_| q("active eq true".into())),
        ),
        (
            "active eq false, page 2,000 of 100 (startIndex 199901)",
            Box::new(move |_| {
                format!(
                    "/scim/v2/Users?count=100&startIndex=199901&filter={}",
                    enc("active eq false")
                )
            }),
        ),
        (
            // Each run reads the page after the previous one: the first skips 199,900 rows,
            // the others resume after the previous page's last row (max = the first).
            "active eq false, startIndex walk from 199901 (next pages)",
            {
                let step = std::cell::Cell::new(0u64);
                Box::new(move |_| {
                    let k = step.get();
                    step.set(k + 1);
                    format!(
                        "/scim/v2/Users?count=100&startIndex={}&filter={}",
                        199_901 + 100 * k,
                        enc("active eq false")
                    )
                })
            },
        ),
        (
            "meta.lastModified gt (recent: none)",
            Box::new(move |_| q("meta.lastModified gt \"2100-01-01T00:00:00Z\"".into())),
        ),
        (
            "no filter, page of 100",
            Box::new(move |_| "/scim/v2/Users?count=100".into()),
        ),
        (
            "groups: displayName eq",
            Box::new(move |n| {
                format!(
                    "/scim/v2/Groups?filter={}",
                    enc(&format!(
                        "displayName eq \"Group {}\"",
                        n % users.div_ceil(10_000)
                    ))
                )
            }),
        ),
        (
            "groups: members[value eq …] (a member's groups)",
            Box::new(move |n| {
                let u = (n % users.div_ceil(10_000)) * 10_000;
                format!(
                    "/scim/v2/Groups?excludedAttributes=members&filter={}",
                    enc(&format!("members[value eq \"{}\"]", user_id(u)))
                )
            }),
        ),
        (
            "emails.value eq (resource_emails)",
            Box::new(move |n| {
                q(format!(
                    "emails.value eq \"user{}@corp.example.com\"",
                    n % users
                ))
            }),
        ),
        (
            "title eq \"Analyst\" (no index), page of 100",
            Box::new(move |_| q("title eq \"Analyst\"".into())),
        ),
        (
            "sortBy=name.familyName (no column), page of 100",
            Box::new(move |_| "/scim/v2/Users?count=100&sortBy=name.familyName".into()),
        ),
    ];
    for (name, make) in queries
        .iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| n.contains(o)))
    {
        // Expensive queries get fewer runs: each scans the table.
        let n = if name.contains("no index") || name.contains("no column") {
            runs.min(5)
        } else {
            runs
        };
        let mut ms = Vec::with_capacity(n);
        let mut total = 0;
        for i in 0..n {
            let path = make(mix(i as u64 + 1));
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await?;
            let status = r.status();
            let v: Value = r.json().await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "{name}: {status} {v}");
            total = v["totalResults"].as_u64().unwrap_or(0);
        }
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| ms[((ms.len() as f64 * p) as usize).min(ms.len() - 1)];
        println!(
            "{name:<58} {:>9.2} {:>9.2} {:>9.2} {total:>9}",
            pct(0.5),
            pct(0.99),
            ms[ms.len() - 1]
        );
    }
    println!(
        "peak RSS of this process (server and client): {:.0} MiB",
        peak_rss_mib()
    );
    let _ = stop.send(());
    let _ = served.await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Fill {
            dir,
            users,
            concurrency,
        } => fill(dir, users, concurrency).await,
        Cmd::Run { dir, runs, only } => run(dir, runs, only).await,
    }
}
