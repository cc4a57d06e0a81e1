//! The HTTP layer of scimtrail: SCIM routes, the audit API, authentication and the request
//! context that turns every request into exactly one audit event.
//!
//! Main design choice: one middleware ([`record`]) owns the request's life. It assigns the request
//! id, buffers the body under the size limit, authenticates, runs the handler in its own task (so
//! a client hanging up cannot cancel a request half-way), and appends the audit event for every
//! request that did not already commit its event together with a resource write. If the event
//! cannot be stored, the client gets an error rather than an unaudited answer.

mod audit_api;
pub mod auth;
mod context;
mod error;
pub mod floods;
mod history;
pub mod listen;
mod locks;
pub mod metrics;
mod record;
mod restore;
mod scim;
pub mod settings;
mod tail;
pub mod transparency;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use scimtrail_audit::Redactor;
use scimtrail_core::Registry;
use scimtrail_store::Store;
use tokio::net::TcpListener;

pub use context::Ctx;
pub use error::ApiError;
pub use record::Operator;

/// `maxPayloadSize` of `/Bulk` unless configured: 10,000 users of a typical IdP's size fit.
pub const DEFAULT_BULK_MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;
/// `maxOperations` of `/Bulk` unless configured.
pub const DEFAULT_BULK_MAX_OPERATIONS: usize = 10_000;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Tenant of every request until multi-tenancy exists.
    pub tenant: String,
    /// `target.system` of audit events: this instance's name.
    pub system_name: String,
    /// Public base URL (e.g. `https://scim.example.com`); when unset, taken from `Host`.
    pub base_url: Option<String>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest `/Bulk` request body (`maxPayloadSize`, 413 beyond).
    pub bulk_max_payload_bytes: usize,
    /// Most operations in one `/Bulk` request (`maxOperations`, 413 `tooMany` beyond).
    pub bulk_max_operations: usize,
    /// Largest request/response body kept in an audit event (cut and flagged beyond).
    pub audit_body_cap: usize,
    /// Attribute names whose values the audit log never keeps, besides the schema's secrets.
    pub redact_attributes: Vec<String>,
    /// Header names whose values the audit log never keeps, besides those whose names say
    /// they carry a credential (auth, token, secret, password, key, cookie, session…).
    pub redact_headers: Vec<String>,
    /// A Group PATCH answers 200 with the resource while the group has at most this many
    /// members, and 204 beyond, so a membership change never reads a huge member list.
    pub patch_body_max_members: usize,
    /// A client that does not finish sending its body in this time gets 408 (and an event).
    pub body_read_timeout: std::time::Duration,
    /// A checkpoint is signed at most this often, while events arrive.
    pub checkpoint_interval: std::time::Duration,
    /// Where checkpoints are published besides the database.
    pub checkpoint_sinks: transparency::CheckpointSinks,
    /// Connection limit and header/idle timeout of the accept loop.
    pub conn: listen::ConnLimits,
    /// Caps that give every event a maximum size.
    pub event_limits: scimtrail_audit::bound::EventLimits,
    /// A revert that would change more resource versions than this needs `maxChanges`.
    pub revert_max_changes: usize,
    /// Failed authentications recorded one by one per source address and minute; beyond,
    /// 429 and one summary event per address and minute.
    pub auth_failures_per_minute: u64,
    /// How often a caught-up live tail looks at the log without a commit of this process to
    /// wake it (commits of other processes sharing the database).
    pub tail_poll: std::time::Duration,
    /// Whether successful reads (GET, `.search`, audit reads) are recorded; failures and
    /// writes always are.
    pub record_reads: bool,
    /// With a key, redacted attribute values in event payloads are its HMAC, not a constant.
    pub redaction_key: Option<[u8; 32]>,
    /// How long a list cursor holds (`cursorTimeout`).
    pub cursor_timeout: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tenant: "default".into(),
            system_name: "scimtrail".into(),
            base_url: None,
            max_body_bytes: 1024 * 1024,
            bulk_max_payload_bytes: DEFAULT_BULK_MAX_PAYLOAD_BYTES,
            bulk_max_operations: DEFAULT_BULK_MAX_OPERATIONS,
            audit_body_cap: 64 * 1024,
            redact_attributes: Vec::new(),
            redact_headers: Vec::new(),
            patch_body_max_members: 1000,
            body_read_timeout: std::time::Duration::from_secs(30),
            checkpoint_interval: std::time::Duration::from_secs(1),
            checkpoint_sinks: transparency::CheckpointSinks::default(),
            conn: listen::ConnLimits::default(),
            event_limits: Default::default(),
            revert_max_changes: 1000,
            auth_failures_per_minute: 60,
            tail_poll: std::time::Duration::from_secs(2),
            record_reads: true,
            redaction_key: None,
            cursor_timeout: std::time::Duration::from_secs(scim::CURSOR_TIMEOUT_SECS),
        }
    }
}

/// Everything a request needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub redactor: Arc<Redactor>,
    pub config: Arc<ServerConfig>,
    /// Serialises read-modify-writes of one resource within this process.
    pub locks: Arc<locks::KeyedLocks>,
    /// The log's signing key and checkpoint origin.
    pub log: Arc<transparency::LogIdentity>,
    pub metrics: Arc<metrics::Metrics>,
    pub auth_failures: Arc<floods::AuthFailures>,
    /// Set when the server begins to shut down: live tails end.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// Authenticates list cursors (RFC 9865): derived from the redaction key, so cursors hold
    /// across restarts, or random for this process without one.
    pub cursor_key: Arc<[u8; 32]>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, config: ServerConfig) -> Self {
        let secrets: Vec<String> = registry
            .resource_types()
            .iter()
            .flat_map(|rt| registry.secret_attribute_names(rt))
            .chain(config.redact_attributes.iter().cloned())
            .collect();
        let auth_failures = Arc::new(floods::AuthFailures::new(config.auth_failures_per_minute));
        let cursor_key = {
            use sha2::Digest;
            let seed: [u8; 32] = config.redaction_key.unwrap_or_else(rand::random);
            let mut h = sha2::Sha256::new();
            h.update(b"scimtrail list cursors\0");
            h.update(seed);
            Arc::new(<[u8; 32]>::from(h.finalize()))
        };
        AppState {
            store,
            registry,
            redactor: Arc::new({
                let r = Redactor::new(secrets).with_headers(config.redact_headers.iter().cloned());
                match config.redaction_key {
                    Some(k) => r.with_hmac_key(k),
                    None => r,
                }
            }),
            log: Arc::new(ephemeral_log(&config.system_name)),
            config: Arc::new(config),
            locks: Arc::default(),
            metrics: Arc::default(),
            auth_failures,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            cursor_key,
        }
    }

    /// Use this signing key and origin for checkpoints (the binary loads them from the data
    /// directory; without one, a key made up for this process signs, as in tests).
    pub fn with_log(mut self, log: transparency::LogIdentity) -> Self {
        self.log = Arc::new(log);
        self
    }
}

/// The checkpoint origin for a system name.
pub fn default_origin(system_name: &str) -> String {
    scimtrail_audit::checkpoint::sanitize_name(&format!("{system_name}/scimtrail"))
}

fn ephemeral_log(system_name: &str) -> transparency::LogIdentity {
    let origin = default_origin(system_name);
    let signer = scimtrail_audit::checkpoint::LogSigner::generate(&origin)
        .or_else(|_| scimtrail_audit::checkpoint::LogSigner::generate("scimtrail"));
    match signer {
        Ok(signer) => transparency::LogIdentity { signer, origin },
        // Key generation only fails on an invalid name, and "scimtrail" is valid.
        Err(e) => unreachable!("cannot make a log key: {e}"),
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .nest("/scim/v2", scim::routes())
        .nest("/audit/v1", audit_api::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record::record,
        ));
    // Health checks are not audited (orchestrators poll them), but carry a request id too.
    let health = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::map_response(record::tag_request_id));
    Router::new().merge(health).merge(api).with_state(state)
}

async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_body(&state).await,
    )
}

async fn metrics_body(state: &AppState) -> String {
    let size = state.store.tree_size().await.ok();
    let age = match state.store.checkpoints(None, 1).await {
        Ok(c) => c.first().and_then(|c| {
            let t = time::OffsetDateTime::parse(
                &c.time,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(
                (time::OffsetDateTime::now_utc() - t)
                    .as_seconds_f64()
                    .max(0.0),
            )
        }),
        Err(_) => None,
    };
    let bytes = state.store.database_bytes().await.ok().flatten();
    state.metrics.render_with(metrics::LogFigures {
        events: size,
        database_bytes: bytes,
        checkpoint_age: age,
        batches: state.store.batch_sizes(),
    })
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> ApiError {
    match state.store.ping().await {
        Ok(()) => ApiError::Plain(axum::http::StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            ApiError::Plain(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable",
            )
        }
    }
}

fn stopped_again(stop: &tokio::sync::watch::Sender<bool>) -> tokio::sync::watch::Receiver<bool> {
    stop.subscribe()
}

/// Serve on an already bound listener until `shutdown` resolves; requests in flight finish.
/// Checkpoints are signed meanwhile, and once more after the last request.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let checkpointer = tokio::spawn(transparency::run_checkpointer(
        state.store.clone(),
        state.log.clone(),
        state.config.checkpoint_sinks.clone(),
        state.config.checkpoint_interval,
        stopped,
    ));
    let summaries = tokio::spawn(record::summarise_floods(
        state.clone(),
        stopped_again(&stop),
    ));
    let limits = state.config.conn.clone();
    let metrics = state.metrics.clone();
    let closing = state.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    let served = listen::run(listener, app(state), limits, metrics, shutdown).await;
    let _ = stop.send(true);
    let _ = summaries.await;
    let _ = checkpointer.await;
    served
}
