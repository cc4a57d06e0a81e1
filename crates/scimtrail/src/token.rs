//! `scimtrail token create|list|revoke`: operator tools on the same database.

use std::sync::Arc;

use clap::Subcommand;
use scimtrail_server::auth;

use crate::config::DatabaseArg;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// A name for the token (shown as actor.name in audit events).
        #[arg(long)]
        name: String,
        /// Scopes: scim, audit:read, audit:admin (default: scim).
        #[arg(long, value_delimiter = ',', default_value = "scim")]
        scopes: Vec<String>,
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        #[command(flatten)]
        db: DatabaseArg,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id or name.
    Revoke {
        id_or_name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    let registry = Arc::new(scimtrail_core::Registry::builtin());
    let open = |db: &DatabaseArg| {
        let url = db.url();
        let registry = registry.clone();
        async move { scimtrail_store_sql::connect(&url, registry).await }
    };
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            db,
            json,
        } => {
            for s in &scopes {
                anyhow::ensure!(
                    auth::ADMIN_SCOPES.contains(&s.as_str()),
                    "unknown scope {s:?}; use scim, audit:read or audit:admin"
                );
            }
            let store = open(&db).await?;
            let token = auth::generate_token();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let by = auth::Admin::operator("scimtrail token create");
            let info = auth::create_token(
                store.as_ref(),
                &token,
                &name,
                &scopes,
                "default",
                &by,
                "token.create",
            )
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": info.id, "name": info.name, "scopes": info.scopes, "token": token})
                );
            } else {
                println!(
                    "token {} ({}) created with scopes {}",
                    info.name,
                    info.id,
                    info.scopes.join(",")
                );
                println!("{token}");
                eprintln!("(shown once; only its hash is stored)");
            }
        }
        TokenCommand::List { db, json } => {
            let tokens = open(&db).await?.list_tokens().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                println!(
                    "{:<38} {:<20} {:<28} {:<28} REVOKED",
                    "ID", "NAME", "SCOPES", "CREATED"
                );
                for t in tokens {
                    println!(
                        "{:<38} {:<20} {:<28} {:<28} {}",
                        t.id,
                        t.name,
                        t.scopes.join(","),
                        t.created,
                        t.revoked.unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
        TokenCommand::Revoke { id_or_name, db } => {
            let store = open(&db).await?;
            let by = auth::Admin::operator("scimtrail token revoke");
            match auth::revoke_token(store.as_ref(), &id_or_name, "default", &by).await? {
                scimtrail_store::Revoked::Token(t) => println!("revoked {} ({})", t.name, t.id),
                scimtrail_store::Revoked::NotFound => {
                    anyhow::bail!("no active token with id or name {id_or_name:?}")
                }
                scimtrail_store::Revoked::Ambiguous(ts) => anyhow::bail!(
                    "{} active tokens are named {id_or_name:?}; revoke one by id: {}",
                    ts.len(),
                    ts.iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
    Ok(())
}
