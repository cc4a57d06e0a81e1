//! Tamper evidence over HTTP: the log key, signed checkpoints, inclusion and consistency proofs
//! and the exact leaf bytes, in DESIGN.md's shapes (every hash base64). And the checkpointer,
//! the task that signs a checkpoint at most once per interval while events arrive.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use scimtrail_audit::checkpoint::LogSigner;
use scimtrail_core::ScimError;
use scimtrail_store::{Store, StoredCheckpoint};
use serde_json::{json, Value};

use crate::audit_api::json_response;
use crate::error::{ApiError, Path};
use crate::scim::QueryParams;
use crate::{AppState, Ctx};

/// The log's identity: its signing key and the checkpoint origin.
#[derive(Debug)]
pub struct LogIdentity {
    pub signer: LogSigner,
    pub origin: String,
}

/// Where checkpoints go besides the database.
#[derive(Debug, Clone, Default)]
pub struct CheckpointSinks {
    /// Each checkpoint is appended (one JSON line, fsynced) to this file.
    pub file: Option<PathBuf>,
    /// Each checkpoint's note is POSTed here (`text/plain`).
    pub url: Option<String>,
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn b64s(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

fn param_u64(q: &QueryParams, name: &str) -> Result<Option<u64>, ScimError> {
    q.get(name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                ScimError::invalid_value(format!("'{name}' must be a non-negative integer"))
            })
        })
        .transpose()
}

async fn latest(store: &dyn Store) -> Result<Option<StoredCheckpoint>, ApiError> {
    Ok(store.checkpoints(None, 1).await?.into_iter().next())
}

/// The size to prove against: the one asked for, else the latest checkpoint's.
async fn size_or_latest(store: &dyn Store, asked: Option<u64>) -> Result<u64, ApiError> {
    match asked {
        Some(n) => Ok(n),
        None => latest(store).await?.map(|c| c.size).ok_or_else(|| {
            ScimError::not_found("no checkpoint has been signed yet; pass 'size'").into()
        }),
    }
}

pub async fn log_key(State(state): State<AppState>) -> Response {
    text(format!("{}\n", state.log.signer.vkey()))
}

pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    match latest(state.store.as_ref()).await? {
        Some(c) => Ok(text(c.note)),
        None => Err(ScimError::not_found("no checkpoint has been signed yet").into()),
    }
}

/// A checkpoint as the API lists it and as `checkpoints.jsonl` keeps it.
fn checkpoint_json(c: &StoredCheckpoint) -> Value {
    json!({"treeSize": c.size, "rootHash": B64.encode(c.root), "time": c.time, "note": c.note})
}

pub async fn checkpoints(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let count = param_u64(&q, "count")?.unwrap_or(50).min(1000) as usize;
    let before = param_u64(&q, "before")?;
    let list = state.store.checkpoints(before, count + 1).await?;
    let more = list.len() > count;
    let items: Vec<Value> = list.iter().take(count).map(checkpoint_json).collect();
    let mut body = json!({"itemsPerPage": items.len(), "Resources": items});
    if let (true, Some(last)) = (more && count > 0, list.get(count.saturating_sub(1))) {
        body["nextBefore"] = json!(last.size);
    }
    Ok(json_response(body))
}

async fn leaf_of(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<scimtrail_store::LogRow, ApiError> {
    state
        .store
        .leaf(&ctx.tenant, id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("audit event {id} not found")).into())
}

pub async fn proof(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let asked = param_u64(&q, "size")?;
    let row = leaf_of(&state, &ctx, &id).await?;
    let size = size_or_latest(state.store.as_ref(), asked).await?;
    if row.seq >= size {
        return Err(ScimError::invalid_value(format!(
            "event seq {} is not in the tree of size {size}",
            row.seq
        ))
        .into());
    }
    let hashes = state.store.inclusion_proof(row.seq, size).await?;
    Ok(json_response(json!({
        "seq": row.seq,
        "treeSize": size,
        "leafHash": B64.encode(&row.leaf_hash),
        "hashes": b64s(&hashes),
    })))
}

pub async fn leaf(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = leaf_of(&state, &ctx, &id).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        row.commitment,
    )
        .into_response())
}

pub async fn consistency(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(&ctx)?;
    let from =
        param_u64(&q, "from")?.ok_or_else(|| ScimError::invalid_value("'from' is required"))?;
    let to = size_or_latest(state.store.as_ref(), param_u64(&q, "to")?).await?;
    if from > to {
        return Err(ScimError::invalid_value(format!(
            "'from' ({from}) is greater than 'to' ({to})"
        ))
        .into());
    }
    let hashes = state.store.consistency_proof(from, to).await?;
    Ok(json_response(
        json!({"from": from, "to": to, "hashes": b64s(&hashes)}),
    ))
}

/// Sign one checkpoint now if the log grew, and publish it to the sinks.
pub async fn sign_now(
    store: &dyn Store,
    log: &Arc<LogIdentity>,
    sinks: &CheckpointSinks,
) -> Result<Option<StoredCheckpoint>, String> {
    let l = log.clone();
    let signed = store
        .checkpoint(Box::new(move |size, root| {
            l.signer
                .sign(&l.origin, size, root)
                .map_err(|e| e.to_string())
        }))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(c) = &signed {
        if let Some(path) = &sinks.file {
            append_line(path, c).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(url) = &sinks.url {
            post(url, &c.note).await;
        }
    }
    Ok(signed)
}

/// One JSON line per checkpoint, synced before returning.
fn append_line(path: &std::path::Path, c: &StoredCheckpoint) -> std::io::Result<()> {
    let line = checkpoint_json(c);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

async fn post(url: &str, note: &str) {
    let client = reqwest::Client::new();
    let res = client
        .post(url)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .body(note.to_string())
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = %r.status(), "checkpoint POST was refused"),
        Err(e) => tracing::warn!(error = %e, "checkpoint POST failed"),
    }
}

/// Sign checkpoints every `interval` while events arrive, until `stop` resolves; then one last.
pub async fn run_checkpointer(
    store: Arc<dyn Store>,
    log: Arc<LogIdentity>,
    sinks: CheckpointSinks,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => break,
        }
        if let Err(e) = sign_now(store.as_ref(), &log, &sinks).await {
            tracing::error!(error = %e, "cannot sign a checkpoint");
        }
    }
    if let Err(e) = sign_now(store.as_ref(), &log, &sinks).await {
        tracing::error!(error = %e, "cannot sign the last checkpoint");
    }
}
