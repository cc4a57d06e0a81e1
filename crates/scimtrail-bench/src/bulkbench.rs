//! `scimtrail-bulkbench`: imports users through `/Bulk` into a running scimtrail on loopback
//! and reports how fast, with the server's CPU time and peak memory when given its pid.
//!
//! Each round sends one Bulk request of `--users` Entra-style users (core and enterprise
//! extension, a work email, a manager reference by bulkId to the round's first user), and a
//! second one that puts them all in groups of 100 by PATCH. Every operation is audited by the
//! server, so these are figures with the audit log on. `--compare-fail-on-errors` alternates
//! rounds whose import carries `failOnErrors` (run one operation at a time) with rounds
//! without it (up to 32 at once), for a side-by-side figure from one run.

use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Server base URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "SCIMTRAIL_TOKEN")]
    token: String,
    /// Users per Bulk request.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The server's pid, to read its CPU time and peak RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Send `failOnErrors` with the user import (the server then runs its operations one at
    /// a time), alternating rounds with and without it: the two side by side in one run.
    #[arg(long)]
    compare_fail_on_errors: bool,
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user(run: u64, round: usize, i: usize) -> Value {
    let name = format!("r{run}-{round}.user{i}@bulk.example.com");
    let mut u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": name,
        "externalId": format!("ext-{run}-{round}-{i}"),
        "active": true,
        "displayName": format!("Bulk User {i}"),
        "name": {"givenName": "Bulk", "familyName": format!("User {i}")},
        "emails": [{"value": name, "type": "work", "primary": true}],
        ENTERPRISE: {"department": format!("Dept {}", i % 20), "employeeNumber": format!("{i}")},
    });
    if i > 0 {
        u[ENTERPRISE]["manager"] = json!({"value": format!("bulkId:u{round}-0")});
    }
    u
}

/// utime + stime in seconds, and VmHWM in MiB, of `pid`.
fn usage(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok((ticks / 100.0, hwm / 1024.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "load tests target loopback only"
    );
    let client = reqwest::Client::new();
    let bulk = format!("{}/scim/v2/Bulk", args.url.trim_end_matches('/'));
    println!(
        "{:<6} {:<8} {:>7} {:>9} {:>10} {:>14} {:>10}",
        "round", "request", "ops", "seconds", "ops/s", "server CPU µs/op", "peak RSS"
    );
    // Names are unique per run, so that runs against one database do not collide.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for round in 0..args.rounds {
        let ops: Vec<Value> = (0..args.users)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{round}-{i}"),
                       "data": user(run, round, i)})
            })
            .collect();
        let mut groups: Vec<Value> = Vec::new();
        for (g, chunk) in (0..args.users).collect::<Vec<_>>().chunks(100).enumerate() {
            groups.push(
                json!({"method": "POST", "path": "/Groups", "bulkId": format!("g{g}"),
                               "data": {"displayName": format!("r{run}-{round} group {g}")}}),
            );
            groups.push(json!({"method": "PATCH", "path": format!("/Groups/bulkId:g{g}"),
                "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{"op": "add", "path": "members",
                                         "value": chunk.iter().map(|_| json!({"value": ""})).collect::<Vec<_>>()}]}}));
        }
        let one_at_a_time = args.compare_fail_on_errors && round % 2 == 1;
        let what = if one_at_a_time { "users-1" } else { "users" };
        let first = send(&client, &bulk, &args, round, what, &ops, one_at_a_time).await?;
        // The groups get the users just created, by id.
        let ids: Vec<String> = first
            .iter()
            .map(|e| {
                e["location"]
                    .as_str()
                    .and_then(|l| l.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        for (g, chunk) in ids.chunks(100).enumerate() {
            groups[2 * g + 1]["data"]["Operations"][0]["value"] =
                chunk.iter().map(|id| json!({"value": id})).collect();
        }
        send(&client, &bulk, &args, round, "groups", &groups, false).await?;
    }
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    args: &Args,
    round: usize,
    what: &str,
    ops: &[Value],
    fail_on_errors: bool,
) -> anyhow::Result<Vec<Value>> {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                          "Operations": ops});
    if fail_on_errors {
        body["failOnErrors"] = json!(ops.len());
    }
    let body = body.to_string();
    let before = args.pid.map(usage).transpose()?;
    let t = Instant::now();
    let r = client
        .post(url)
        .bearer_auth(&args.token)
        .header("content-type", "application/scim+json")
        .body(body)
        .timeout(std::time::Duration::from_secs(600))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    let secs = t.elapsed().as_secs_f64();
    if status != 200 {
        bail!("Bulk answered {status}: {v}");
    }
    let results = v["Operations"].as_array().cloned().unwrap_or_default();
    let failed = results
        .iter()
        .filter(|e| e["status"].as_str().is_none_or(|s| !s.starts_with('2')))
        .count();
    if failed > 0 {
        bail!(
            "{failed} operations failed, e.g. {}",
            results
                .iter()
                .find(|e| !e["status"].as_str().unwrap_or("").starts_with('2'))
                .unwrap_or(&Value::Null)
        );
    }
    let (cpu, rss) = match (before, args.pid.map(usage).transpose()?) {
        (Some((c0, _)), Some((c1, rss))) => (
            format!("{:.0}", (c1 - c0) * 1e6 / ops.len() as f64),
            format!("{rss:.0} MiB"),
        ),
        _ => ("-".into(), "-".into()),
    };
    println!(
        "{round:<6} {what:<8} {:>7} {secs:>9.2} {:>10.0} {cpu:>14} {rss:>10}",
        ops.len(),
        ops.len() as f64 / secs
    );
    Ok(results)
}
