//! Configuration: defaults < TOML file (`--config`) < `SCIMTRAIL_*` environment < flags.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://./scimtrail-data/scimtrail.db";

/// The database option, shared by every command.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArg {
    /// Database URL (default sqlite://./scimtrail-data/scimtrail.db, created on first start).
    #[arg(long, env = "SCIMTRAIL_DATABASE")]
    pub database: Option<String>,
}

impl DatabaseArg {
    pub fn url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into())
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TOML file with the same options (keys as the flags, with underscores).
    #[arg(long, env = "SCIMTRAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "SCIMTRAIL_LISTEN")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub db: DatabaseArg,
    /// Public base URL used in `location` and `$ref` (default: from the Host header).
    #[arg(long, env = "SCIMTRAIL_BASE_URL")]
    pub base_url: Option<String>,
    /// This instance's name in audit events (`target.system`); default: the host name.
    #[arg(long, env = "SCIMTRAIL_SYSTEM_NAME")]
    pub system_name: Option<String>,
    /// Largest request body in bytes (413 beyond). Default 1 MiB.
    #[arg(long, env = "SCIMTRAIL_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request/response body kept in an audit event. Default 64 KiB.
    #[arg(long, env = "SCIMTRAIL_AUDIT_BODY_CAP")]
    pub audit_body_cap: Option<usize>,
    /// Log format: text (default) or json. RUST_LOG sets the level.
    #[arg(long, env = "SCIMTRAIL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// More attribute names to redact in the audit log (comma-separated), e.g. employeeNumber.
    #[arg(long, env = "SCIMTRAIL_REDACT_ATTRIBUTES", value_delimiter = ',')]
    pub redact_attributes: Option<Vec<String>>,
}

/// The TOML file: every key optional.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub base_url: Option<String>,
    pub system_name: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub audit_body_cap: Option<usize>,
    pub log_format: Option<String>,
    pub redact_attributes: Option<Vec<String>>,
}

/// The settings `serve` runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub database: String,
    pub base_url: Option<String>,
    pub system_name: String,
    pub max_body_bytes: usize,
    pub audit_body_cap: usize,
    pub log_json: bool,
    pub redact_attributes: Vec<String>,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        anyhow::ensure!(
            log_format == "text" || log_format == "json",
            "log format must be 'text' or 'json', not {log_format:?}"
        );
        Ok(Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database: self
                .db
                .database
                .or(file.database)
                .unwrap_or_else(|| DEFAULT_DATABASE.into()),
            base_url: self.base_url.or(file.base_url),
            system_name: self
                .system_name
                .or(file.system_name)
                .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned()),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
            audit_body_cap: self
                .audit_body_cap
                .or(file.audit_body_cap)
                .unwrap_or(64 * 1024),
            log_json: log_format == "json",
            redact_attributes: self
                .redact_attributes
                .or(file.redact_attributes)
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServeArgs,
    }

    #[test]
    fn layering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 10\n").unwrap();
        let p = path.to_str().unwrap();
        let s = T::parse_from(["t", "--config", p]).a.resolve().unwrap();
        assert_eq!(s.listen, "127.0.0.1:9999");
        assert_eq!(s.max_body_bytes, 10);
        assert_eq!(s.database, DEFAULT_DATABASE);
        let s = T::parse_from(["t", "--config", p, "--listen", "0.0.0.0:1"])
            .a
            .resolve()
            .unwrap();
        assert_eq!(s.listen, "0.0.0.0:1");
        std::fs::write(&path, "lisen = 1\n").unwrap();
        assert!(T::parse_from(["t", "--config", p]).a.resolve().is_err());
    }
}
