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
}

fn main() -> anyhow::Result<()> {
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
        }
    })
}
