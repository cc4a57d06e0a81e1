//! `scimtrail-load`: a bounded load against a running scimtrail on loopback.
//!
//! Phase 1 creates users (POST /Users) from `--concurrency` connections for `--seconds`;
//! phase 2 reads them back (GET /Users/{id}) for `--seconds`. Each phase prints requests/s and
//! latency percentiles. Every request is audited by the server, so these are figures with the
//! audit log on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Server base URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "SCIMTRAIL_TOKEN")]
    token: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Phase {
    fn report(&mut self) {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        println!(
            "{:<8} {:>8} ok {:>5} errors {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            self.name,
            n,
            self.errors,
            n as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "load tests target loopback only"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    let run_tag = format!("{}", std::process::id());

    let mut phases = Vec::new();
    for name in ["create", "get"] {
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let start = Instant::now();
        let snapshot: Arc<Vec<String>> = Arc::new(ids.lock().await.clone());
        let mut tasks = Vec::new();
        for w in 0..args.concurrency {
            let (client, ids, url, token) = (
                client.clone(),
                ids.clone(),
                args.url.clone(),
                args.token.clone(),
            );
            let (snapshot, tag) = (snapshot.clone(), run_tag.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0;
                let mut i = 0usize;
                while Instant::now() < deadline {
                    i += 1;
                    let t = Instant::now();
                    let ok = if name == "create" {
                        let body = json!({"userName": format!("load-{tag}-{w}-{i}"), "active": true,
                            "name": {"givenName": "Load", "familyName": "Test"},
                            "emails": [{"value": format!("load{w}-{i}@example.com"), "type": "work"}]});
                        match client.post(format!("{url}/scim/v2/Users")).bearer_auth(&token).json(&body).send().await {
                            Ok(r) if r.status() == 201 => {
                                let v: Value = r.json().await.unwrap_or(Value::Null);
                                if let Some(id) = v["id"].as_str() {
                                    ids.lock().await.push(id.to_string());
                                }
                                true
                            }
                            _ => false,
                        }
                    } else {
                        let id = &snapshot[(w * 7919 + i) % snapshot.len().max(1)];
                        matches!(client.get(format!("{url}/scim/v2/Users/{id}")).bearer_auth(&token).send().await,
                            Ok(r) if r.status() == 200)
                    };
                    if ok {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
        let mut phase = Phase {
            name,
            latencies: Vec::new(),
            errors: 0,
            elapsed: Duration::ZERO,
        };
        for t in tasks {
            let (lat, errors) = t.await.context("worker")?;
            phase.latencies.extend(lat);
            phase.errors += errors;
        }
        phase.elapsed = start.elapsed();
        phases.push(phase);
        if name == "create" && ids.lock().await.is_empty() {
            anyhow::bail!("no user was created; is the token right?");
        }
    }
    for p in phases.iter_mut() {
        p.report();
    }
    Ok(())
}
