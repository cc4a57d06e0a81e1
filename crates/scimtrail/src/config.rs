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
    /// JSON files of custom schemas and resource types (RFC 7643 §6/§7 representations;
    /// repeat the flag or separate with commas). Give every command the same files as the
    /// server, so that it knows the same types.
    #[arg(
        long = "schema-file",
        env = "SCIMTRAIL_SCHEMA_FILES",
        value_delimiter = ','
    )]
    pub schema_files: Vec<PathBuf>,
}

impl DatabaseArg {
    pub fn url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into())
    }

    /// The built-in schemas and resource types with those of `--schema-file`.
    pub fn registry(&self) -> anyhow::Result<scimtrail_core::Registry> {
        load_registry(&self.schema_files)
    }
}

/// The built-in registry extended with the definitions in `files`.
pub fn load_registry(files: &[PathBuf]) -> anyhow::Result<scimtrail_core::Registry> {
    let mut docs = Vec::with_capacity(files.len());
    // Far above any real definition (the User schema is 20 KB), far below what could exhaust
    // memory if a path names a device or a log by mistake.
    const MAX: u64 = 16 * 1024 * 1024;
    for f in files {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(f)
                    .with_context(|| format!("cannot read schema file {}", f.display()))?,
                MAX + 1,
            ),
            &mut bytes,
        )
        .with_context(|| format!("cannot read schema file {}", f.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 <= MAX,
            "schema file {} is larger than {} MiB",
            f.display(),
            MAX >> 20
        );
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("schema file {} is not UTF-8", f.display()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let v: serde_json::Value = serde_json::from_str(text)
            .with_context(|| format!("schema file {} is not JSON", f.display()))?;
        docs.push((f.display().to_string(), v));
    }
    scimtrail_core::Registry::builtin()
        .extend(&docs)
        .context("invalid schema definition")
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
    /// Largest `/Bulk` request body in bytes (maxPayloadSize; 413 beyond). Default 8 MiB.
    #[arg(long, env = "SCIMTRAIL_BULK_MAX_PAYLOAD_BYTES")]
    pub bulk_max_payload_bytes: Option<usize>,
    /// Most operations in one `/Bulk` request (maxOperations; 413 beyond). Default 10000.
    #[arg(long, env = "SCIMTRAIL_BULK_MAX_OPERATIONS")]
    pub bulk_max_operations: Option<usize>,
    /// Largest request/response body kept in an audit event. Default 64 KiB.
    #[arg(long, env = "SCIMTRAIL_AUDIT_BODY_CAP")]
    pub audit_body_cap: Option<usize>,
    /// Log format: text (default) or json. RUST_LOG sets the level.
    #[arg(long, env = "SCIMTRAIL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// More attribute names to redact in the audit log (comma-separated), e.g. employeeNumber.
    #[arg(long, env = "SCIMTRAIL_REDACT_ATTRIBUTES", value_delimiter = ',')]
    pub redact_attributes: Option<Vec<String>>,
    /// More header names to redact in the audit log (comma-separated). Headers whose names
    /// contain auth, token, secret, password, key, cookie or session always are.
    #[arg(long, env = "SCIMTRAIL_REDACT_HEADERS", value_delimiter = ',')]
    pub redact_headers: Option<Vec<String>>,
    /// The log's Ed25519 signing key (C2SP note key); generated on first start. Default:
    /// log-key in the data directory (the database's folder).
    #[arg(long, env = "SCIMTRAIL_LOG_KEY")]
    pub log_key: Option<PathBuf>,
    /// Checkpoint origin (default: <system name>/scimtrail).
    #[arg(long, env = "SCIMTRAIL_LOG_ORIGIN")]
    pub log_origin: Option<String>,
    /// File each signed checkpoint is appended to, outside the database. Default:
    /// checkpoints.jsonl in the data directory.
    #[arg(long, env = "SCIMTRAIL_CHECKPOINT_LOG")]
    pub checkpoint_log: Option<PathBuf>,
    /// URL each signed checkpoint is POSTed to (text/plain), e.g. a witness or archive.
    #[arg(long, env = "SCIMTRAIL_CHECKPOINT_URL")]
    pub checkpoint_url: Option<String>,
    /// commit (default): every acknowledged write survives a power loss. checkpoint: writes
    /// are synced before each checkpoint is signed, so a power loss may lose the last
    /// acknowledged writes but never a signed one (faster).
    #[arg(long, env = "SCIMTRAIL_DURABILITY")]
    pub durability: Option<String>,
    /// Most client connections open at once; one more is answered 503 (default: three
    /// quarters of the open-file limit, at most 10000).
    #[arg(long, env = "SCIMTRAIL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// PostgreSQL: connections this process keeps open (default 16).
    #[arg(long, env = "SCIMTRAIL_DB_POOL_SIZE")]
    pub db_pool_size: Option<usize>,
    /// PostgreSQL: seconds a statement may run before the database cancels it (default 30).
    #[arg(long, env = "SCIMTRAIL_DB_STATEMENT_TIMEOUT")]
    pub db_statement_timeout: Option<u64>,
    /// Seconds a client has to send a request head, counted from when the connection is idle
    /// (so also the keep-alive idle timeout). Default 10.
    #[arg(long, env = "SCIMTRAIL_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send the request body (408 beyond). Default 30.
    #[arg(long, env = "SCIMTRAIL_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Most values of a multi-valued attribute other than Group members (invalidValue
    /// beyond). Default 1000.
    #[arg(long, env = "SCIMTRAIL_MAX_VALUES")]
    pub max_values: Option<usize>,
    /// Most comparisons in one filter (invalidFilter beyond). Default 64.
    #[arg(long, env = "SCIMTRAIL_MAX_FILTER_TERMS")]
    pub max_filter_terms: Option<usize>,
    /// Most changed versions a revert applies without an explicit `maxChanges`. Default 1000.
    #[arg(long, env = "SCIMTRAIL_REVERT_MAX_CHANGES")]
    pub revert_max_changes: Option<usize>,
    /// Failed authentications recorded one by one per source address and minute; beyond,
    /// 429 and one summary event. Default 60.
    #[arg(long, env = "SCIMTRAIL_AUTH_FAILURES_PER_MINUTE")]
    pub auth_failures_per_minute: Option<u64>,
    /// Which requests are recorded: `all` (the default) or `writes-and-failures`, which leaves
    /// successful reads (GET, .search, audit reads) out of the log.
    #[arg(long, env = "SCIMTRAIL_RECORD_READS")]
    pub record_reads: Option<String>,
}

/// The TOML file: every key optional.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub schema_files: Option<Vec<PathBuf>>,
    pub database: Option<String>,
    pub base_url: Option<String>,
    pub system_name: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub bulk_max_payload_bytes: Option<usize>,
    pub bulk_max_operations: Option<usize>,
    pub audit_body_cap: Option<usize>,
    pub log_format: Option<String>,
    pub redact_attributes: Option<Vec<String>>,
    pub redact_headers: Option<Vec<String>>,
    pub log_key: Option<PathBuf>,
    pub log_origin: Option<String>,
    pub checkpoint_log: Option<PathBuf>,
    pub checkpoint_url: Option<String>,
    pub durability: Option<String>,
    pub max_connections: Option<usize>,
    pub db_pool_size: Option<usize>,
    pub db_statement_timeout: Option<u64>,
    pub header_timeout: Option<u64>,
    pub body_timeout: Option<u64>,
    pub max_values: Option<usize>,
    pub max_filter_terms: Option<usize>,
    pub revert_max_changes: Option<usize>,
    pub auth_failures_per_minute: Option<u64>,
    pub record_reads: Option<String>,
}

/// The settings `serve` runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub schema_files: Vec<PathBuf>,
    pub database: String,
    pub base_url: Option<String>,
    pub system_name: String,
    pub max_body_bytes: usize,
    pub bulk_max_payload_bytes: usize,
    pub bulk_max_operations: usize,
    pub audit_body_cap: usize,
    pub log_json: bool,
    pub redact_attributes: Vec<String>,
    pub redact_headers: Vec<String>,
    pub log_key: PathBuf,
    pub log_origin: String,
    pub checkpoint_log: PathBuf,
    pub checkpoint_url: Option<String>,
    pub durability: scimtrail_store_sql::Durability,
    pub max_connections: usize,
    pub postgres: scimtrail_store_sql::PostgresOptions,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_values: usize,
    pub max_filter_terms: usize,
    pub revert_max_changes: usize,
    pub auth_failures_per_minute: u64,
    pub record_reads: bool,
    /// The key of the HMAC that masks redacted values (`redaction-key` in the data directory).
    pub redaction_key_file: PathBuf,
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
        let database = self
            .db
            .database
            .or(file.database)
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let data_dir = crate::logkey::data_dir(&database);
        let system_name = self
            .system_name
            .or(file.system_name)
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
        let durability = match self
            .durability
            .or(file.durability)
            .as_deref()
            .unwrap_or("commit")
        {
            "commit" => scimtrail_store_sql::Durability::Commit,
            "checkpoint" => scimtrail_store_sql::Durability::Checkpoint,
            other => anyhow::bail!("durability must be 'commit' or 'checkpoint', not {other:?}"),
        };
        let secs = |v: Option<u64>, default: u64| {
            std::time::Duration::from_secs(v.unwrap_or(default).max(1))
        };
        let postgres = scimtrail_store_sql::PostgresOptions {
            pool_size: self.db_pool_size.or(file.db_pool_size).unwrap_or(16).max(1),
            statement_timeout: secs(self.db_statement_timeout.or(file.db_statement_timeout), 30),
            ..Default::default()
        };
        Ok(Settings {
            postgres,
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or_else(scimtrail_server::listen::default_max_connections)
                .max(1),
            header_timeout: secs(self.header_timeout.or(file.header_timeout), 10),
            body_timeout: secs(self.body_timeout.or(file.body_timeout), 30),
            max_values: self
                .max_values
                .or(file.max_values)
                .unwrap_or(scimtrail_core::schema::DEFAULT_MAX_VALUES),
            auth_failures_per_minute: self
                .auth_failures_per_minute
                .or(file.auth_failures_per_minute)
                .unwrap_or(60),
            record_reads: match self
                .record_reads
                .or(file.record_reads)
                .as_deref()
                .map(str::trim)
            {
                None | Some("all") => true,
                Some("writes-and-failures") => false,
                Some(other) => {
                    anyhow::bail!("record_reads is all or writes-and-failures, not {other:?}")
                }
            },
            redaction_key_file: data_dir.join("redaction-key"),
            revert_max_changes: self
                .revert_max_changes
                .or(file.revert_max_changes)
                .unwrap_or(1000),
            max_filter_terms: self
                .max_filter_terms
                .or(file.max_filter_terms)
                .unwrap_or(scimtrail_core::filter::DEFAULT_MAX_TERMS),
            log_key: self
                .log_key
                .or(file.log_key)
                .unwrap_or_else(|| data_dir.join("log-key")),
            log_origin: self
                .log_origin
                .or(file.log_origin)
                .unwrap_or_else(|| scimtrail_server::default_origin(&system_name)),
            checkpoint_log: self
                .checkpoint_log
                .or(file.checkpoint_log)
                .unwrap_or_else(|| data_dir.join("checkpoints.jsonl")),
            checkpoint_url: self.checkpoint_url.or(file.checkpoint_url),
            durability,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database,
            schema_files: if self.db.schema_files.is_empty() {
                file.schema_files.unwrap_or_default()
            } else {
                self.db.schema_files
            },
            base_url: self.base_url.or(file.base_url),
            system_name,
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
            bulk_max_payload_bytes: self
                .bulk_max_payload_bytes
                .or(file.bulk_max_payload_bytes)
                .unwrap_or(scimtrail_server::DEFAULT_BULK_MAX_PAYLOAD_BYTES)
                .max(1),
            bulk_max_operations: self
                .bulk_max_operations
                .or(file.bulk_max_operations)
                .unwrap_or(scimtrail_server::DEFAULT_BULK_MAX_OPERATIONS)
                .max(1),
            audit_body_cap: self
                .audit_body_cap
                .or(file.audit_body_cap)
                .unwrap_or(64 * 1024),
            log_json: log_format == "json",
            redact_headers: self
                .redact_headers
                .or(file.redact_headers)
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
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

/// Beyond loopback, `Location`, `meta.location` and every `$ref` must not come from whatever
/// `Host` a client sends (anyone who can reach the port could then plant links to another
/// host in the resources the identity provider reads back): a public listener needs
/// `--base-url`.
pub fn check_base_url(listen: &str, base_url: Option<&str>) -> anyhow::Result<()> {
    if base_url.is_some_and(|b| !b.trim().is_empty()) {
        return Ok(());
    }
    let host = match listen.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => listen,
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "listening on {listen}, beyond loopback, needs --base-url (SCIMTRAIL_BASE_URL), for \
         example --base-url https://scim.example.com: Location and $ref would otherwise be \
         built from the client's Host header"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_public_listener_needs_a_base_url() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "127.0.0.2:1",
        ] {
            check_base_url(ok, None).unwrap();
        }
        for public in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "scim.internal:8080",
        ] {
            let e = check_base_url(public, None).unwrap_err().to_string();
            assert!(e.contains("--base-url"), "{public}: {e}");
            assert!(check_base_url(public, Some("")).is_err());
            check_base_url(public, Some("https://scim.example.com")).unwrap();
        }
    }

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
