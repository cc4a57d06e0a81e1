//! `scimtrail serve`.

use std::sync::Arc;

use anyhow::Context as _;
use scimtrail_server::transparency::{CheckpointSinks, LogIdentity};
use scimtrail_server::{auth, AppState, ServerConfig};
use tokio::net::TcpListener;

use crate::config::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let s = args.resolve()?;
    init_logging(s.log_json);
    let registry = Arc::new(
        scimtrail_core::Registry::builtin()
            .with_max_values(s.max_values)
            .with_max_filter_terms(s.max_filter_terms),
    );
    let options = scimtrail_store_sql::SqliteOptions {
        durability: s.durability,
        ..Default::default()
    };
    let store = scimtrail_store_sql::connect_with(&s.database, registry.clone(), &options)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                scimtrail_store_sql::redact_url(&s.database)
            )
        })?;
    let config = ServerConfig {
        tenant: "default".into(),
        system_name: s.system_name.clone(),
        base_url: s.base_url.clone(),
        max_body_bytes: s.max_body_bytes,
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
