//! The `scimtrail` binary: command-line parsing, configuration, and wiring.

mod audit;
mod config;
mod history;
mod logkey;
mod serve;
mod token;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "scimtrail",
    version,
    about = "SCIM 2.0 provisioning server with a tamper-evident audit log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<config::ServeArgs>),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Verify, export and prune the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Every version of a resource, with its changes.
    History(history::HistoryArgs),
    /// Write an earlier version of a resource again (undeleting it if it is deleted).
    Restore(history::RestoreArgs),
    /// Undo what one request, one token or an event filter did.
    Revert(history::RevertArgs),
    /// Bring the database's schema up to date, then exit (`serve` does it at start too).
    Migrate(config::DatabaseArg),
}

/// Opening a store runs its migrations, one process at a time.
async fn migrate(db: config::DatabaseArg) -> anyhow::Result<()> {
    let url = db.url();
    let shown = scimtrail_store_sql::redact_url(&url);
    let registry = std::sync::Arc::new(db.registry()?);
    scimtrail_store_sql::connect(&url, registry)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate database {shown}: {e}"))?;
    println!("database {shown} is up to date");
    Ok(())
}

/// Errors are printed on one line, their causes after colons, never with a stack trace.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Token(cmd) => token::run(cmd).await,
            Command::Audit(cmd) => audit::run(cmd).await,
            Command::History(a) => history::history(a).await,
            Command::Restore(a) => history::restore(a).await,
            Command::Revert(a) => history::revert(a).await,
            Command::Migrate(db) => migrate(db).await,
        }
    })
}
