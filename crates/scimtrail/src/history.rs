//! `scimtrail history|restore|revert`: the history API from the command line.
//!
//! Each command sends its request through the server's own application in process — the same
//! handlers, checks and events as `/audit/v1/…` — as an operator (`$USER`, actor kind
//! `operator`), so what the command line does is audited exactly like the API.

use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{Method, Request};
use clap::Args;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::config::DatabaseArg;

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The resource type, by endpoint or name: Users, Groups, or a custom type (Devices).
    pub resource_type: String,
    pub id: String,
    #[command(flatten)]
    pub db: DatabaseArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The resource type, by endpoint or name: Users, Groups, or a custom type (Devices).
    pub resource_type: String,
    pub id: String,
    /// The version whose state to write again.
    #[arg(long)]
    pub version: i64,
    #[arg(long)]
    pub reason: Option<String>,
    /// Show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub db: DatabaseArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RevertArgs {
    /// Undo everything one request did.
    #[arg(long, conflicts_with_all = ["actor", "filter"])]
    pub request_id: Option<String>,
    /// Undo what one token (its id) did; with --since and --until for a time window.
    #[arg(long, conflicts_with = "filter")]
    pub actor: Option<String>,
    /// RFC 3339 start of the window (with --actor).
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 end of the window (with --actor).
    #[arg(long)]
    pub until: Option<String>,
    /// Any event filter (SCIM syntax over event attributes).
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub dry_run: bool,
    /// Revert even over later changes the filter does not match.
    #[arg(long)]
    pub force: bool,
    /// Allow more changed versions than the default limit.
    #[arg(long)]
    pub max_changes: Option<usize>,
    #[command(flatten)]
    pub db: DatabaseArg,
    #[arg(long)]
    pub json: bool,
}

pub(crate) struct Local {
    app: axum::Router,
    registry: Arc<scimtrail_core::Registry>,
}

impl Local {
    pub(crate) async fn open(db: &DatabaseArg) -> anyhow::Result<Local> {
        let url = db.url();
        let registry = Arc::new(db.registry()?);
        let store = scimtrail_store_sql::connect(&url, registry.clone())
            .await
            .with_context(|| {
                format!(
                    "cannot open database {}",
                    scimtrail_store_sql::redact_url(&url)
                )
            })?;
        let config = scimtrail_server::ServerConfig {
            system_name: gethostname::gethostname().to_string_lossy().into_owned(),
            // A server in another process commits what a tail here follows.
            tail_poll: std::time::Duration::from_secs(1),
            // The same masks as the server's, so the operator's events compare with its own.
            redaction_key: Some(crate::logkey::redaction_key(
                &crate::logkey::data_dir(&url).join("redaction-key"),
            )?),
            ..Default::default()
        };
        let state = scimtrail_server::AppState::new(store, registry.clone(), config);
        Ok(Local {
            app: scimtrail_server::app(state),
            registry,
        })
    }

    /// The endpoint (`Users`, `Devices`) of a resource type named by name or endpoint.
    fn endpoint(&self, t: &str) -> anyhow::Result<String> {
        match self.registry.resource_type(t) {
            Some(rt) => Ok(rt.endpoint.trim_start_matches('/').to_string()),
            None => {
                let known: Vec<&str> = self
                    .registry
                    .resource_types()
                    .iter()
                    .map(|rt| rt.endpoint.trim_start_matches('/'))
                    .collect();
                anyhow::bail!(
                    "unknown resource type {t:?}: known are {} (give custom types' files with \
                     --schema-file)",
                    known.join(", ")
                )
            }
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let resp = self.respond(method, path, body).await?;
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }

    /// The response itself, its body not yet read (a live tail's stream).
    pub(crate) async fn respond(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<axum::response::Response> {
        let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header(
                "user-agent",
                concat!("scimtrail-cli/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req.body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))?;
        req.extensions_mut()
            .insert(scimtrail_server::Operator(operator));
        Ok(self.app.clone().oneshot(req).await?)
    }
}

pub(crate) fn fail(status: u16, v: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "{status} {}: {}",
        v["scimType"].as_str().unwrap_or("-"),
        v["detail"].as_str().unwrap_or("failed")
    )
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => format!("{s:?}"),
        other => {
            let t = other.to_string();
            if t.len() > 80 {
                format!(
                    "{}…",
                    &t[..t.char_indices().nth(77).map_or(t.len(), |(i, _)| i)]
                )
            } else {
                t
            }
        }
    }
}

pub(crate) fn print_changes(changes: &Value, indent: &str) {
    for c in changes.as_array().into_iter().flatten() {
        println!(
            "{indent}{} {}: {} → {}",
            c["op"].as_str().unwrap_or("?"),
            c["path"].as_str().unwrap_or("?"),
            show(&c["old"]),
            show(&c["new"])
        );
    }
}

pub async fn history(a: HistoryArgs) -> anyhow::Result<()> {
    let local = Local::open(&a.db).await?;
    let ep = local.endpoint(&a.resource_type)?;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/audit/v1/resources/{ep}/{}/versions?count=1000", a.id);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = local.call(Method::GET, &path, None).await?;
        if status != 200 {
            return Err(fail(status, &v));
        }
        all.extend(v["Resources"].as_array().cloned().unwrap_or_default());
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"versions": all}))?
        );
        return Ok(());
    }
    println!("{ep}/{}: {} version(s)", a.id, all.len());
    for v in &all {
        let actor = &v["actor"];
        println!(
            "v{:<4} {}  {:<22} by {} ({})  event {}",
            v["version"],
            v["time"].as_str().unwrap_or("?"),
            v["action"].as_str().unwrap_or("?"),
            actor["name"]
                .as_str()
                .or(actor["id"].as_str())
                .unwrap_or("?"),
            actor["kind"].as_str().unwrap_or("?"),
            v["eventId"].as_str().unwrap_or("?"),
        );
        if v["pruned"] == true {
            println!("       (values pruned)");
        }
        print_changes(&v["changes"], "       ");
    }
    Ok(())
}

fn print_plan(v: &Value) {
    let plan = &v["plan"];
    let verb = if v["applied"] == true {
        "applied"
    } else {
        "planned (dry run)"
    };
    let steps = plan["steps"].as_array().cloned().unwrap_or_default();
    println!("{verb}: {} resource(s)", steps.len());
    for s in &steps {
        println!(
            "  {} {}/{}: v{} → {}",
            s["action"].as_str().unwrap_or("?"),
            s["resourceType"].as_str().unwrap_or("?"),
            s["id"].as_str().unwrap_or("?"),
            s["fromVersion"],
            s["toVersion"]
                .as_i64()
                .map_or("(unchanged)".to_string(), |n| format!("v{n}"))
        );
        print_changes(&s["changes"], "      ");
    }
    for c in plan["conflicts"].as_array().into_iter().flatten() {
        println!(
            "  conflict{} {} {}/{}: {}",
            if c["blocking"] == true {
                " (blocking)"
            } else {
                ""
            },
            c["kind"].as_str().unwrap_or("?"),
            c["resourceType"].as_str().unwrap_or("?"),
            c["id"].as_str().unwrap_or("?"),
            c["detail"].as_str().unwrap_or("")
        );
    }
    for n in plan["notRestorable"].as_array().into_iter().flatten() {
        println!("  not restorable: {}", n.as_str().unwrap_or("?"));
    }
}

async fn finish(local: Local, path: &str, body: Value, as_json: bool) -> anyhow::Result<()> {
    let (status, v) = local.call(Method::POST, path, Some(body)).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if v.get("plan").is_some() {
        print_plan(&v);
    }
    if status >= 400 {
        return Err(fail(status, &v));
    }
    Ok(())
}

pub async fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let local = Local::open(&a.db).await?;
    let ep = local.endpoint(&a.resource_type)?;
    let mut body = json!({"version": a.version, "dryRun": a.dry_run});
    if let Some(r) = &a.reason {
        body["reason"] = json!(r);
    }
    finish(
        local,
        &format!("/audit/v1/resources/{ep}/{}/restore", a.id),
        body,
        a.json,
    )
    .await
}

pub async fn revert(a: RevertArgs) -> anyhow::Result<()> {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let filter = match (&a.request_id, &a.actor, &a.filter) {
        (Some(r), _, _) => format!("requestId eq {}", q(r)),
        (None, Some(actor), _) => {
            let mut f = format!("actor.id eq {}", q(actor));
            if let Some(s) = &a.since {
                f.push_str(&format!(" and time ge {}", q(s)));
            }
            if let Some(u) = &a.until {
                f.push_str(&format!(" and time le {}", q(u)));
            }
            f
        }
        (None, None, Some(f)) => f.clone(),
        (None, None, None) => {
            anyhow::bail!("say what to revert: --request-id, --actor or --filter")
        }
    };
    let local = Local::open(&a.db).await?;
    let mut body = json!({"filter": filter, "dryRun": a.dry_run, "force": a.force});
    if let Some(r) = &a.reason {
        body["reason"] = json!(r);
    }
    if let Some(m) = a.max_changes {
        body["maxChanges"] = json!(m);
    }
    finish(local, "/audit/v1/revert", body, a.json).await
}
