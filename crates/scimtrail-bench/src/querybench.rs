//! `scimtrail-querybench`: the audit log as a troubleshooting tool at scale (issue #7).
//!
//! `fill` writes a synthetic but realistic log through the store, as the server would: by
//! default 10 million events from 3 identity providers (Entra, Okta, OneLogin, each with its
//! token and address) over 50,000 users and 2,000 groups across 90 days, about 2% of them
//! failures with their SCIM error; reads, lists, creates, PATCHes with value paths, member
//! adds and removes, deactivations, deletes with their cascaded group removals (child events
//! linked by `parentId`), and a few operator acts. Checkpoints are signed as it goes.
//!
//! `run` serves that database on 127.0.0.1 and times each query of the audit API over HTTP,
//! one at a time: one filter per filterable attribute, time windows, combinations, a filter
//! that the scan budget cuts short, the request trace, stats, and the first event of a live
//! tail. It prints p50 and p99 per query as a table, then the same as JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use scimtrail_audit::{Actor, AuditEvent, Change, Operation, Outcome, Payload, Target};
use scimtrail_server::transparency::sign_now;
use serde_json::{json, Value};

const TOKEN: &str = "querybench-token-0123456789abcdef0123456789abcdef";
/// The log's first instant: 2026-09-01T00:00:00Z.
const START: i64 = 1_788_220_800;

#[derive(Parser)]
enum Cmd {
    /// Write the synthetic log into DIR/scimtrail.db (appends when it exists).
    Fill {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        #[arg(long, default_value_t = 50_000)]
        users: u64,
        #[arg(long, default_value_t = 2_000)]
        groups: u64,
        #[arg(long, default_value_t = 90)]
        days: u64,
        #[arg(long, default_value_t = 1_000_000)]
        checkpoint_every: u64,
        #[arg(long, default_value_t = 256)]
        concurrency: u64,
        /// Drop the event indexes migration 0005 added before filling, to measure what they
        /// cost the write path (same binary, same events).
        #[arg(long)]
        without_new_indexes: bool,
    },
    /// Time the audit API's queries against DIR/scimtrail.db.
    Run {
        #[arg(long)]
        dir: PathBuf,
        /// Timed runs per query (different values each run).
        #[arg(long, default_value_t = 40)]
        runs: usize,
        #[arg(long, default_value_t = 50_000)]
        users: u64,
    },
}

/// SplitMix64: a small, seedable generator, so a fill is the same on every machine.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn user_id(k: u64) -> String {
    format!("{:08x}-4b1d-4c7e-9a5e-{:012x}", mix(k) as u32, k)
}

fn group_id(k: u64) -> String {
    format!(
        "{:08x}-6a0f-4e2b-8c3d-{:012x}",
        mix((k + 1) << 40) as u32,
        k
    )
}

struct Client {
    name: &'static str,
    token_id: &'static str,
    token_name: &'static str,
    ip: &'static str,
    user_agent: &'static str,
}

const CLIENTS: [Client; 3] = [
    Client {
        name: "Microsoft Entra ID",
        token_id: "01a2229e-ab79-7a1e-9f00-00000000e1d0",
        token_name: "entra-prod",
        ip: "20.44.16.10",
        user_agent: "Azure Active Directory SCIM Client",
    },
    Client {
        name: "Okta",
        token_id: "01a2229e-ab79-7a1e-9f00-00000000c7a0",
        token_name: "okta",
        ip: "52.8.100.7",
        user_agent: "Okta SCIM Client 1.0.0",
    },
    Client {
        name: "OneLogin",
        token_id: "01a2229e-ab79-7a1e-9f00-0000000001e1",
        token_name: "onelogin",
        ip: "34.230.9.2",
        user_agent: "OneLogin SCIM",
    },
];

/// The failures a provisioning log holds, by weight: status, scimType, detail.
const FAILURES: [(u16, Option<&str>, &str); 8] = [
    (400, Some("invalidValue"), "'active' must be a boolean"),
    (409, Some("uniqueness"), "userName is already taken"),
    (404, None, "resource not found"),
    (400, Some("invalidFilter"), "unexpected end of filter"),
    (400, Some("invalidSyntax"), "unknown attribute 'foo'"),
    (412, None, "the resource was modified"),
    (400, Some("mutability"), "'id' is read-only"),
    (
        400,
        Some("invalidPath"),
        "no such attribute 'emails[type eq \"home\"].x'",
    ),
];

fn request_id(n: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        n >> 16,
        n & 0xffff,
        mix(n) & 0xfff,
        mix(n + 7) & 0xfff,
        mix(n + 3) & 0xffff_ffff_ffff
    )
}

/// The time of event `n` of `total` spread over `days`, with up to a second of jitter.
fn time_of(n: u64, total: u64, days: u64) -> String {
    let span = days * 86_400 * 1_000_000;
    let us = (n as u128 * span as u128 / total.max(1) as u128) as i64 + (mix(n) % 1_000_000) as i64;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(
        (START as i128 * 1_000_000 + us as i128) * 1000,
    )
    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    scimtrail_audit::format_time(t)
}

fn user_body(k: u64, active: bool) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": user_id(k),
        "externalId": format!("ext-{k}"), "userName": format!("user{k}@contoso.com"), "active": active,
        "name": {"givenName": "Given", "familyName": format!("Family{k}")},
        "displayName": format!("User {k}"),
        "emails": [{"value": format!("user{k}@contoso.com"), "type": "work", "primary": true}],
        "meta": {"resourceType": "User", "version": "W/\"3\""}})
}

/// Event `n` (and, for a delete, the child event of its group removal).
fn events_at(n: u64, total: u64, users: u64, groups: u64, days: u64) -> Vec<AuditEvent> {
    let r = mix(n);
    let c = &CLIENTS[match r % 100 {
        0..=54 => 0,
        55..=89 => 1,
        _ => 2,
    }];
    let k = (r >> 8) % users;
    let g = (r >> 24) % groups;
    let roll = (r >> 40) % 1000;
    let failed = (r >> 50) % 100 < 2;
    let uid = user_id(k);
    let gid = group_id(g);
    let time = time_of(n, total, days);
    let rid = request_id(n);
    let headers = |ct: bool| {
        let mut h = serde_json::Map::new();
        h.insert("authorization".into(), json!("[REDACTED]"));
        h.insert("user-agent".into(), json!(c.user_agent));
        if ct {
            h.insert("content-type".into(), json!("application/scim+json"));
        }
        h
    };
    let change = |op: &str, path: &str, old: Value, new: Value| Change {
        op: op.into(),
        path: path.into(),
        old,
        new,
    };
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    #[allow(clippy::type_complexity)]
    let (action, method, path, query, scim, ty, tid, display, ext, changes, body, resp): (
        &str,
        &str,
        String,
        Option<String>,
        &str,
        Option<&str>,
        Option<String>,
        Option<String>,
        Option<String>,
        Vec<Change>,
        Value,
        Value,
    ) = match roll {
        0..=299 => (
            "resource.read",
            "GET",
            format!("/scim/v2/Users/{uid}"),
            None,
            "get",
            Some("User"),
            Some(uid.clone()),
            Some(format!("user{k}@contoso.com")),
            Some(format!("ext-{k}")),
            vec![],
            Value::Null,
            user_body(k, true),
        ),
        300..=449 => (
            "resource.list",
            "GET",
            "/scim/v2/Users".into(),
            Some(format!("filter=userName+eq+%22user{k}%40contoso.com%22")),
            "list",
            Some("User"),
            None,
            None,
            None,
            vec![],
            Value::Null,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "Resources": [user_body(k, true)]}),
        ),
        450..=749 => {
            let (p, old, new) = match roll % 4 {
                0 => (
                    "title",
                    json!("Engineer"),
                    json!(format!("Engineer {}", n % 7)),
                ),
                1 => (
                    "displayName",
                    json!(format!("User {k}")),
                    json!(format!("User {k} ({})", n % 5)),
                ),
                2 => (
                    r#"emails[type eq "work"].value"#,
                    json!(format!("user{k}@contoso.com")),
                    json!(format!("u{k}@contoso.com")),
                ),
                _ => (
                    "name.familyName",
                    json!(format!("Family{k}")),
                    json!(format!("Family{k}-{}", n % 3)),
                ),
            };
            (
                "user.update",
                "PATCH",
                format!("/scim/v2/Users/{uid}"),
                None,
                "patch",
                Some("User"),
                Some(uid.clone()),
                Some(format!("user{k}@contoso.com")),
                Some(format!("ext-{k}")),
                vec![change("replace", p, old, new.clone())],
                patch(json!([{"op": "Replace", "path": p, "value": new}])),
                user_body(k, true),
            )
        }
        750..=789 => (
            "user.create",
            "POST",
            "/scim/v2/Users".into(),
            None,
            "create",
            Some("User"),
            Some(uid.clone()),
            Some(format!("user{k}@contoso.com")),
            Some(format!("ext-{k}")),
            vec![
                change(
                    "add",
                    "userName",
                    Value::Null,
                    json!(format!("user{k}@contoso.com")),
                ),
                change("add", "active", Value::Null, json!(true)),
                change(
                    "add",
                    "name.familyName",
                    Value::Null,
                    json!(format!("Family{k}")),
                ),
                change(
                    "add",
                    "emails",
                    Value::Null,
                    json!([{"value": format!("user{k}@contoso.com"), "type": "work"}]),
                ),
            ],
            user_body(k, true),
            user_body(k, true),
        ),
        790..=809 => (
            "user.deactivate",
            "PATCH",
            format!("/scim/v2/Users/{uid}"),
            None,
            "patch",
            Some("User"),
            Some(uid.clone()),
            Some(format!("user{k}@contoso.com")),
            Some(format!("ext-{k}")),
            vec![change("replace", "active", json!(true), json!(false))],
            patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
            user_body(k, false),
        ),
        810..=819 => (
            "user.delete",
            "DELETE",
            format!("/scim/v2/Users/{uid}"),
            None,
            "delete",
            Some("User"),
            Some(uid.clone()),
            Some(format!("user{k}@contoso.com")),
            Some(format!("ext-{k}")),
            vec![],
            Value::Null,
            Value::Null,
        ),
        820..=929 => {
            let add = roll.is_multiple_of(2);
            let (a, op) = if add {
                ("group.member.add", "add")
            } else {
                ("group.member.remove", "remove")
            };
            let (old, new) = if add {
                (Value::Null, json!(uid))
            } else {
                (json!(uid), Value::Null)
            };
            (
                a,
                "PATCH",
                format!("/scim/v2/Groups/{gid}"),
                None,
                "patch",
                Some("Group"),
                Some(gid.clone()),
                Some(format!("Group {g}")),
                None,
                vec![change(op, "members", old, new)],
                patch(json!([{"op": op, "path": "members", "value": [{"value": uid}]}])),
                Value::Null,
            )
        }
        930..=939 => (
            "group.create",
            "POST",
            "/scim/v2/Groups".into(),
            None,
            "create",
            Some("Group"),
            Some(gid.clone()),
            Some(format!("Group {g}")),
            None,
            vec![change(
                "add",
                "displayName",
                Value::Null,
                json!(format!("Group {g}")),
            )],
            json!({"displayName": format!("Group {g}")}),
            Value::Null,
        ),
        940..=949 => (
            "group.update",
            "PATCH",
            format!("/scim/v2/Groups/{gid}"),
            None,
            "patch",
            Some("Group"),
            Some(gid.clone()),
            Some(format!("Group {g}")),
            None,
            vec![change(
                "replace",
                "displayName",
                json!(format!("Group {g}")),
                json!(format!("Group {g} (renamed)")),
            )],
            patch(
                json!([{"op": "replace", "path": "displayName", "value": format!("Group {g} (renamed)")}]),
            ),
            Value::Null,
        ),
        _ => (
            "resource.read",
            "GET",
            format!("/scim/v2/Groups/{gid}"),
            Some("excludedAttributes=members".into()),
            "get",
            Some("Group"),
            Some(gid.clone()),
            Some(format!("Group {g}")),
            None,
            vec![],
            Value::Null,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": gid, "displayName": format!("Group {g}")}),
        ),
    };
    let (outcome, changes, resp, action) = if failed {
        let (status, st, detail) = FAILURES[((r >> 56) % FAILURES.len() as u64) as usize];
        let resp = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "scimType": st, "detail": detail});
        (
            Outcome::from_status(status, st.map(str::to_string), Some(detail.into())),
            vec![],
            resp,
            action,
        )
    } else {
        (
            Outcome::from_status(
                match method {
                    "POST" => 201,
                    "DELETE" => 204,
                    _ => 200,
                },
                None,
                None,
            ),
            changes,
            resp,
            action,
        )
    };
    let mut e = AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        seq: None,
        time: time.clone(),
        tenant: "default".into(),
        request_id: rid.clone(),
        actor: Actor {
            kind: "token".into(),
            id: Some(c.token_id.into()),
            name: Some(c.token_name.into()),
            client: Some(c.name.into()),
            ip: Some(c.ip.into()),
            user_agent: Some(c.user_agent.into()),
        },
        action: action.into(),
        operation: Operation {
            method: method.into(),
            path,
            query,
            scim: Some(scim.into()),
        },
        target: Target {
            system: "scim-prod-1".into(),
            resource_type: ty.map(str::to_string),
            id: tid,
            external_id: ext,
            display,
            version_before: None,
            version_after: None,
        },
        outcome,
        latency_ms: 0.8 + (r % 40) as f64 / 10.0,
        changes,
        request: Payload {
            headers: headers(!body.is_null()),
            body,
            truncated: false,
        },
        response: Payload {
            headers: serde_json::Map::new(),
            body: resp,
            truncated: false,
        },
        parent_id: None,
        leaf_hash: None,
    };
    // One in 10,000: an operator's act from the command line.
    if r % 10_000 == 17 {
        e.actor = Actor {
            kind: "operator".into(),
            name: Some("ops-alice".into()),
            ..Default::default()
        };
        e.action = "audit.export".into();
    }
    let mut out = vec![];
    if e.action == "user.delete" && !failed {
        let child = AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            parent_id: Some(e.id.clone()),
            action: "group.member.remove".into(),
            target: Target {
                system: "scim-prod-1".into(),
                resource_type: Some("Group".into()),
                id: Some(gid.clone()),
                display: Some(format!("Group {g}")),
                ..Default::default()
            },
            changes: vec![change("remove", "members", json!(uid), Value::Null)],
            request: Payload::default(),
            response: Payload::default(),
            ..e.clone()
        };
        out.push(e);
        out.push(child);
    } else {
        out.push(e);
    }
    out
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The indexes of migration 0005.
const NEW_INDEXES: [&str; 11] = [
    "audit_events_actor_id",
    "audit_events_ip",
    "audit_events_external_id",
    "audit_events_display",
    "audit_events_parent",
    "audit_events_scim_type",
    "audit_events_failure",
    "audit_events_error_status",
    "audit_events_rare_actor",
    "audit_events_rare_target",
    "audit_change_paths_path",
];

#[allow(clippy::too_many_arguments)]
async fn fill(
    dir: PathBuf,
    events: u64,
    users: u64,
    groups: u64,
    days: u64,
    checkpoint_every: u64,
    concurrency: u64,
    without_new_indexes: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    let options = scimtrail_store_sql::StoreOptions {
        sqlite: scimtrail_store_sql::SqliteOptions {
            // Synced at every checkpoint, as `--durability checkpoint` runs the server.
            durability: scimtrail_store_sql::Durability::Checkpoint,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = scimtrail_store_sql::connect_with(
        &url,
        Arc::new(scimtrail_core::Registry::builtin()),
        &options,
    )
    .await
    .context("open the store")?;
    // No token here: its bootstrap event would carry today's time at seq 0, ahead of every
    // backdated event, and widen every time window of `run` to the whole log. `run` makes
    // the token, after the last event.
    if without_new_indexes {
        let conn = rusqlite::Connection::open(dir.join("scimtrail.db"))?;
        for i in NEW_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {i}"))?;
        }
    }
    let (log, sinks) = scimtrail_bench::bench_log(&dir, "querybench.example/scimtrail")?;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let appended = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut done = 0u64;
    while done < events {
        let round_end = (done + checkpoint_every).min(events);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (store, next, appended) = (store.clone(), next.clone(), appended.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= round_end {
                        next.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                    for e in events_at(n, events, users, groups, days) {
                        store.append_event(e).await?;
                        appended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        done = round_end;
        sign_now(store.as_ref(), &log, &sinks)
            .await
            .map_err(anyhow::Error::msg)?;
        let n = appended.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{done} requests, {n} events, {:.0} events/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
    let n = appended.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "appended {n} events in {:.1} s ({:.0} events/s); log size {}; database {:.2} GB",
        start.elapsed().as_secs_f64(),
        n as f64 / start.elapsed().as_secs_f64(),
        store.tree_size().await?,
        dir_size(&dir) as f64 / 1e9
    );
    Ok(())
}

struct Timed {
    name: String,
    ms: Vec<f64>,
    items: usize,
    errors: usize,
}

async fn run(dir: PathBuf, runs: usize, users: u64) -> anyhow::Result<()> {
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    let registry = Arc::new(scimtrail_core::Registry::builtin());
    let store = scimtrail_store_sql::connect(&url, registry.clone())
        .await
        .context("open the store")?;
    let size = store.tree_size().await?;
    anyhow::ensure!(size > 0, "the log is empty: run `fill` first");
    scimtrail_server::auth::bootstrap(store.as_ref(), Some(TOKEN), "default", "querybench").await?;
    let state = scimtrail_server::AppState::new(
        store.clone(),
        registry,
        scimtrail_server::ServerConfig {
            checkpoint_interval: Duration::from_secs(3600),
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
    let get = |path: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await?;
            let status = r.status().as_u16();
            let v: Value = r.json().await?;
            anyhow::Ok((t.elapsed().as_secs_f64() * 1000.0, status, v))
        }
    };
    // The newest event's time: windows are relative to the log, not to the clock.
    // (the newest PATCH: the token's bootstrap and this run's own reads come after the fill).
    let (_, _, newest) = get(format!(
        "/audit/v1/events?count=1&filter={}",
        enc("action eq \"user.update\"")
    ))
    .await?;
    let last_time = newest["Resources"][0]["time"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let last =
        time::OffsetDateTime::parse(&last_time, &time::format_description::well_known::Rfc3339)?;
    let ago = |secs: i64| scimtrail_audit::format_time(last - time::Duration::seconds(secs));
    // Sample values that exist: request ids and parents from events spread over the log.
    let mut rids = vec![];
    let mut parents = vec![];
    for i in 0..runs as u64 {
        let seq = mix(i) % size;
        let (_, _, v) = get(format!(
            "/audit/v1/events?count=50&filter={}",
            enc(&format!(
                "seq le {seq} and seq gt {}",
                seq.saturating_sub(5000)
            ))
        ))
        .await?;
        for e in v["Resources"].as_array().into_iter().flatten() {
            if let Some(p) = e["parentId"].as_str() {
                parents.push(p.to_string());
            }
        }
        if let Some(r) = v["Resources"][0]["requestId"].as_str() {
            rids.push(r.to_string());
        }
    }
    if parents.is_empty() {
        parents.push("none".into());
    }
    type Query = (&'static str, Box<dyn Fn(usize) -> String>);
    let pick = |v: &Vec<String>, i: usize| v[i % v.len()].clone();
    let (rids2, parents2) = (rids.clone(), parents.clone());
    let q = |f: String| format!("/audit/v1/events?filter={}", enc(&f));
    let queries: Vec<Query> = vec![
        (
            "no filter (newest page)",
            Box::new(|_| "/audit/v1/events".into()),
        ),
        (
            "requestId eq",
            Box::new(move |i| q(format!("requestId eq \"{}\"", pick(&rids2, i)))),
        ),
        (
            "parentId eq",
            Box::new(move |i| q(format!("parentId eq \"{}\"", pick(&parents2, i)))),
        ),
        (
            "actor.id eq",
            Box::new(move |i| q(format!("actor.id eq \"{}\"", CLIENTS[i % 3].token_id))),
        ),
        (
            "actor.name eq",
            Box::new(move |i| q(format!("actor.name eq \"{}\"", CLIENTS[i % 3].token_name))),
        ),
        (
            "actor.kind eq operator",
            Box::new(move |_| q("actor.kind eq \"operator\"".into())),
        ),
        ("actor.client eq, last 24 h", {
            let t = ago(86_400);
            Box::new(move |i| {
                q(format!(
                    "actor.client eq \"{}\" and time ge \"{t}\"",
                    CLIENTS[i % 3].name
                ))
            })
        }),
        (
            "actor.ip eq",
            Box::new(move |i| q(format!("actor.ip eq \"{}\"", CLIENTS[i % 3].ip))),
        ),
        (
            "action eq user.delete",
            Box::new(move |_| q("action eq \"user.delete\"".into())),
        ),
        ("operation.method eq DELETE, last 24 h", {
            let t = ago(86_400);
            Box::new(move |_| {
                q(format!(
                    "operation.method eq \"DELETE\" and time ge \"{t}\""
                ))
            })
        }),
        ("operation.scim eq create, last 24 h", {
            let t = ago(86_400);
            Box::new(move |_| q(format!("operation.scim eq \"create\" and time ge \"{t}\"")))
        }),
        ("target.type eq Group, last 24 h", {
            let t = ago(86_400);
            Box::new(move |_| q(format!("target.type eq \"Group\" and time ge \"{t}\"")))
        }),
        (
            "target.id eq (a user)",
            Box::new(move |i| {
                q(format!(
                    "target.id eq \"{}\"",
                    user_id(mix(i as u64) % users)
                ))
            }),
        ),
        (
            "target.externalId eq",
            Box::new(move |i| {
                q(format!(
                    "target.externalId eq \"ext-{}\"",
                    mix(i as u64 + 9) % users
                ))
            }),
        ),
        (
            "target.display eq",
            Box::new(move |i| {
                q(format!(
                    "target.display eq \"user{}@contoso.com\"",
                    mix(i as u64 + 5) % users
                ))
            }),
        ),
        (
            "outcome.result eq failure",
            Box::new(move |_| q("outcome.result eq \"failure\"".into())),
        ),
        (
            "outcome.status eq 409",
            Box::new(move |_| q("outcome.status eq 409".into())),
        ),
        (
            "outcome.scimType eq uniqueness",
            Box::new(move |_| q("outcome.scimType eq \"uniqueness\"".into())),
        ),
        (
            "changes.path eq members",
            Box::new(move |_| q("changes.path eq \"members\"".into())),
        ),
        (
            "seq range of 1000",
            Box::new(move |i| {
                let s = mix(i as u64) % size;
                q(format!("seq ge {s} and seq lt {}", s + 1000))
            }),
        ),
        ("time gt (last hour)", {
            let t = ago(3600);
            Box::new(move |_| q(format!("time gt \"{t}\"")))
        }),
        ("time ge and le (one day, 30 days back)", {
            let (a, b) = (ago(31 * 86_400), ago(30 * 86_400));
            Box::new(move |_| q(format!("time ge \"{a}\" and time le \"{b}\"")))
        }),
        ("time lt (before a day 60 days back)", {
            let t = ago(60 * 86_400);
            Box::new(move |_| q(format!("time lt \"{t}\"")))
        }),
        ("Entra failures in the last 24 h", {
            let t = ago(86_400);
            Box::new(move |_| {
                q(format!("actor.client eq \"Microsoft Entra ID\" and outcome.result eq \"failure\" and time ge \"{t}\""))
            })
        }),
        ("status ge 400 in the last 24 h (no index)", {
            let t = ago(86_400);
            Box::new(move |_| q(format!("outcome.status ge 400 and time ge \"{t}\"")))
        }),
        (
            "user's failed PATCHes (target.id + result)",
            Box::new(move |i| {
                q(format!(
                    "target.id eq \"{}\" and outcome.result eq \"failure\"",
                    user_id(mix(i as u64 + 1) % users)
                ))
            }),
        ),
        (
            "no match within the budget (actor.name + display co)",
            Box::new(move |_| q("actor.name eq \"okta\" and target.display co \"zzz\"".into())),
        ),
        (
            "second page (cursor) of action eq user.update",
            Box::new(|_| String::new()),
        ),
        (
            "request trace",
            Box::new(move |i| format!("/audit/v1/requests/{}", pick(&rids, i))),
        ),
        ("stats: Entra failures by scimType, 24 h, 1 h buckets", {
            let t = ago(86_400);
            Box::new(move |_| {
                format!(
                        "/audit/v1/stats?filter={}&bucket=1h&by=outcome.scimType",
                        enc(&format!("actor.client eq \"Microsoft Entra ID\" and outcome.result eq \"failure\" and time ge \"{t}\""))
                    )
            })
        }),
        ("stats: by action and client, 7 days, 1 d buckets", {
            let t = ago(7 * 86_400);
            Box::new(move |_| {
                format!(
                    "/audit/v1/stats?filter={}&bucket=1d&by=action,actor.client",
                    enc(&format!("time ge \"{t}\""))
                )
            })
        }),
    ];
    let mut results: Vec<Timed> = vec![];
    for (name, make) in &queries {
        let mut t = Timed {
            name: name.to_string(),
            ms: vec![],
            items: 0,
            errors: 0,
        };
        for i in 0..runs + 2 {
            let path = if name.starts_with("second page") {
                let (_, _, v) = get(q("action eq \"user.update\"".into())).await?;
                format!(
                    "{}&cursor={}",
                    q("action eq \"user.update\"".into()),
                    v["nextCursor"].as_str().unwrap_or("")
                )
            } else {
                make(i)
            };
            let (ms, status, v) = get(path).await?;
            if status != 200 {
                t.errors += 1;
                eprintln!("{name}: {status} {v}");
            }
            // The first two runs warm the page cache for this query; they are not counted.
            if i >= 2 {
                t.ms.push(ms);
                t.items += v["Resources"].as_array().map_or(0, Vec::len);
            }
        }
        t.ms.sort_by(f64::total_cmp);
        results.push(t);
    }
    // The tail's first event: connect after a recent seq, time the first SSE event.
    let mut tail = Timed {
        name: "tail: first event (after = size - 100)".into(),
        ms: vec![],
        items: 0,
        errors: 0,
    };
    for i in 0..runs {
        let after = size.saturating_sub(100 + i as u64);
        let t = Instant::now();
        let mut r = http
            .get(format!("{base}/audit/v1/stream?after={after}"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let mut got = false;
        while let Some(chunk) = r.chunk().await? {
            if String::from_utf8_lossy(&chunk).contains("event: audit")
                || String::from_utf8_lossy(&chunk).contains("event:audit")
            {
                got = true;
                break;
            }
        }
        if got {
            tail.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            tail.items += 1;
        } else {
            tail.errors += 1;
        }
    }
    tail.ms.sort_by(f64::total_cmp);
    results.push(tail);
    let _ = stop.send(());
    let _ = served.await;

    println!("database: {size} events, {:.2} GB on disk; {runs} timed runs per query, one at a time over loopback HTTP", dir_size(&dir) as f64 / 1e9);
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>7}",
        "query", "p50 ms", "p99 ms", "max ms", "items"
    );
    for t in &results {
        println!(
            "{:<58} {:>9.2} {:>9.2} {:>9.2} {:>7.1}{}",
            t.name,
            quantile(&t.ms, 0.5),
            quantile(&t.ms, 0.99),
            t.ms.last().copied().unwrap_or(f64::NAN),
            t.items as f64 / t.ms.len().max(1) as f64,
            if t.errors > 0 {
                format!("  ({} errors)", t.errors)
            } else {
                String::new()
            }
        );
    }
    let json: Vec<Value> = results.iter().map(|t| json!({"query": t.name, "p50_ms": quantile(&t.ms, 0.5), "p99_ms": quantile(&t.ms, 0.99), "errors": t.errors})).collect();
    println!("{}", serde_json::to_string(&json)?);
    Ok(())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Fill {
            dir,
            events,
            users,
            groups,
            days,
            checkpoint_every,
            concurrency,
            without_new_indexes,
        } => {
            fill(
                dir,
                events,
                users,
                groups,
                days,
                checkpoint_every,
                concurrency,
                without_new_indexes,
            )
            .await
        }
        Cmd::Run { dir, runs, users } => run(dir, runs, users).await,
    }
}
