//! `scimtrail serve`.

use std::sync::Arc;

use anyhow::Context as _;
use scimtrail_server::transparency::{CheckpointSinks, LogIdentity};
use scimtrail_server::{auth, AppState, ServerConfig};
use tokio::net::TcpListener;

use crate::config::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let s = args.resolve()?;
    crate::config::check_base_url(&s.listen, s.base_url.as_deref())?;
    init_logging(s.log_json);
    let registry = Arc::new(
        crate::config::load_registry(&s.schema_files)?
            .with_max_values(s.max_values)
            .with_max_filter_terms(s.max_filter_terms),
    );
    let options = scimtrail_store_sql::StoreOptions {
        sqlite: scimtrail_store_sql::SqliteOptions {
            durability: s.durability,
            ..Default::default()
        },
        postgres: s.postgres.clone(),
    };
    // One line: what could not be opened, and why.
    let store = scimtrail_store_sql::connect_with(&s.database, registry.clone(), &options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {}: {e}",
                scimtrail_store_sql::redact_url(&s.database)
            )
        })?;
    let config = ServerConfig {
        tenant: "default".into(),
        system_name: s.system_name.clone(),
        base_url: s.base_url.clone(),
        max_body_bytes: s.max_body_bytes,
        bulk_max_payload_bytes: s.bulk_max_payload_bytes,
        bulk_max_operations: s.bulk_max_operations,
        audit_body_cap: s.audit_body_cap,
        redact_attributes: s.redact_attributes.clone(),
        redact_headers: s.redact_headers.clone(),
        body_read_timeout: s.body_timeout,
        revert_max_changes: s.revert_max_changes,
        auth_failures_per_minute: s.auth_failures_per_minute,
        record_reads: s.record_reads,
        redaction_key: Some(crate::logkey::redaction_key(&s.redaction_key_file)?),
        conn: scimtrail_server::listen::ConnLimits {
            max_connections: s.max_connections,
            header_timeout: s.header_timeout,
            ..Default::default()
        },
        checkpoint_sinks: CheckpointSinks {
            file: Some(s.checkpoint_log.clone()),
            url: s.checkpoint_url.clone(),
        },
        ..ServerConfig::default()
    };
    let signer = crate::logkey::load_or_create(&s.log_key, &s.log_origin)?;
    let log = LogIdentity {
        signer,
        origin: s.log_origin.clone(),
    };
    let env_token = std::env::var("SCIMTRAIL_BOOTSTRAP_TOKEN").ok();
    let settings = audited_settings(&s, &log, config.redaction_key.as_ref(), &registry);
    if let Some(token) = auth::bootstrap(
        store.as_ref(),
        env_token.as_deref(),
        &config.tenant,
        &config.system_name,
    )
    .await?
    {
        // Printed once, to stdout only; only its hash is stored.
        println!("bootstrap admin token (shown once, store it now): {token}");
    }
    let by = auth::Admin {
        system: config.system_name.clone(),
        ..auth::Admin::operator("scimtrail serve")
    };
    if let Some(e) =
        scimtrail_server::settings::record_config(store.as_ref(), &config.tenant, &by, settings)
            .await?
    {
        tracing::info!(
            seq = e.seq,
            changes = e.changes.len(),
            "configuration recorded"
        );
    }
    let listener = TcpListener::bind(&s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    let addr = listener.local_addr()?;
    println!("scimtrail listening on http://{addr} (SCIM base http://{addr}/scim/v2)");
    tracing::info!(%addr, database = %scimtrail_store_sql::redact_url(&s.database), "started");
    tracing::info!(origin = %log.origin, vkey = %log.signer.vkey(), checkpoints = %s.checkpoint_log.display(), "tamper-evident log");
    let state = AppState::new(store, registry, config).with_log(log);
    scimtrail_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The settings that shape what is recorded and how, as the `config.change` event holds them:
/// nothing secret (the database URL without its password, keys by fingerprint only).
fn audited_settings(
    s: &crate::config::Settings,
    log: &LogIdentity,
    redaction_key: Option<&[u8; 32]>,
    registry: &scimtrail_core::Registry,
) -> serde_json::Value {
    use sha2::Digest as _;
    let redactor = scimtrail_audit::Redactor::default();
    let fingerprint = |k: &[u8]| {
        let d = sha2::Sha256::digest(k);
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    };
    serde_json::json!({
        "listen": s.listen,
        "database": scimtrail_store_sql::redact_url(&s.database),
        "baseUrl": s.base_url,
        "systemName": s.system_name,
        "maxBodyBytes": s.max_body_bytes,
        "bulkMaxPayloadBytes": s.bulk_max_payload_bytes,
        "bulkMaxOperations": s.bulk_max_operations,
        "auditBodyCap": s.audit_body_cap,
        "recordReads": if s.record_reads { "all" } else { "writes-and-failures" },
        "redactAttributes": s.redact_attributes,
        "redactHeaders": s.redact_headers,
        "redactionKey": redaction_key.map(|k| fingerprint(k)),
        "logOrigin": log.origin,
        "logKey": log.signer.vkey(),
        "checkpointLog": s.checkpoint_log.display().to_string(),
        "checkpointUrl": s.checkpoint_url.as_deref().map(|u| redactor.url(u)),
        "durability": format!("{:?}", s.durability).to_lowercase(),
        "maxConnections": s.max_connections,
        "headerTimeoutMs": s.header_timeout.as_millis() as u64,
        "bodyTimeoutMs": s.body_timeout.as_millis() as u64,
        "maxValues": s.max_values,
        "maxFilterTerms": s.max_filter_terms,
        "revertMaxChanges": s.revert_max_changes,
        "authFailuresPerMinute": s.auth_failures_per_minute,
        "schemaFiles": s.schema_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        // What the server accepts: each schema by a fingerprint of its definition, each
        // resource type by its endpoint, core schema and extensions.
        "schemaDefinitions": registry
            .schemas_json("")
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("meta");
                }
                (v["id"].as_str().unwrap_or_default().to_string(),
                 serde_json::Value::String(fingerprint(v.to_string().as_bytes())))
            })
            .collect::<serde_json::Map<_, _>>(),
        "resourceTypes": registry
            .resource_types()
            .iter()
            .map(|rt| {
                let exts: Vec<String> = rt
                    .extensions
                    .iter()
                    .map(|e| format!("{}{}", e.schema, if e.required { " (required)" } else { "" }))
                    .collect();
                (rt.name.clone(), serde_json::json!({
                    "endpoint": rt.endpoint, "schema": rt.schema, "extensions": exts,
                }))
            })
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
}
