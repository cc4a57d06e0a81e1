//! The log's signing key on disk: generated into the data directory on first start (mode
//! 0600), with its public verifier key beside it in `log-key.pub`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use scimtrail_audit::checkpoint::LogSigner;

/// The directory a database URL keeps its files in: the SQLite file's folder.
pub fn data_dir(database: &str) -> PathBuf {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p));
    match path.map(Path::new).and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => PathBuf::from("./scimtrail-data"),
    }
}

/// The public key file beside a secret key file.
pub fn public_path(secret: &Path) -> PathBuf {
    let mut name = secret.file_name().unwrap_or_default().to_os_string();
    name.push(".pub");
    secret.with_file_name(name)
}

/// Load the signing key, or create it (named `name`) if the file does not exist.
pub fn load_or_create(path: &Path, name: &str) -> anyhow::Result<LogSigner> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the log key {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the log key is readable by others; chmod 600 it");
            }
        }
        let signer = LogSigner::from_skey(&text)
            .with_context(|| format!("invalid log key in {}", path.display()))?;
        write_public(path, &signer)?;
        return Ok(signer);
    }
    let signer = LogSigner::generate(name)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create the log key {}", path.display()))?;
    f.write_all(format!("{}\n", signer.skey()).as_bytes())?;
    f.sync_all()?;
    write_public(path, &signer)?;
    tracing::info!(path = %path.display(), vkey = %signer.vkey(), "generated the log signing key");
    Ok(signer)
}

/// The key of the HMAC that masks redacted values in event payloads: 32 random bytes, hex,
/// created (mode 0600) on first use. Losing it only makes later masks incomparable with
/// earlier ones; the log still verifies.
pub fn redaction_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let parse = |text: &str| -> Option<[u8; 32]> {
        let text = text.trim();
        let mut key = [0u8; 32];
        if text.len() != 64 {
            return None;
        }
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(key)
    };
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the redaction key {}", path.display()))?;
        return parse(&text)
            .with_context(|| format!("invalid redaction key in {}", path.display()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let key: [u8; 32] = rand::random();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            f.write_all(format!("{hex}\n").as_bytes())?;
            f.sync_all()?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)?;
            parse(&text).with_context(|| format!("invalid redaction key in {}", path.display()))
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot create the redaction key {}", path.display()))
        }
    }
}

fn write_public(secret: &Path, signer: &LogSigner) -> anyhow::Result<()> {
    let p = public_path(secret);
    let want = format!("{}\n", signer.vkey());
    if std::fs::read_to_string(&p).ok().as_deref() != Some(want.as_str()) {
        std::fs::write(&p, want).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// The verifier key an operator tool should trust: `--key FILE`, else the data directory's
/// `log-key.pub`.
pub fn verifier_key(key: Option<&Path>, database: &str) -> anyhow::Result<String> {
    let path = match key {
        Some(p) => p.to_path_buf(),
        None => data_dir(database).join("log-key.pub"),
    };
    scimtrail_audit::bundle::read_key_file(&path)
        .map_err(|e| anyhow::anyhow!("{e} (pass the log's public key with --key)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dirs() {
        assert_eq!(
            data_dir("sqlite://./scimtrail-data/scimtrail.db"),
            PathBuf::from("./scimtrail-data")
        );
        assert_eq!(
            data_dir("sqlite:///var/lib/st/db.sqlite?mode=rwc"),
            PathBuf::from("/var/lib/st")
        );
        assert_eq!(data_dir("sqlite://x.db"), PathBuf::from("."));
        assert_eq!(
            data_dir("postgres://u@h/db"),
            PathBuf::from("./scimtrail-data")
        );
    }

    #[test]
    fn the_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-key");
        let a = load_or_create(&path, "example/log").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = load_or_create(&path, "ignored").unwrap();
        assert_eq!(a.vkey(), b.vkey());
        let public = std::fs::read_to_string(public_path(&path)).unwrap();
        assert_eq!(public.trim(), a.vkey());
        assert_eq!(
            verifier_key(Some(&public_path(&path)), "").unwrap(),
            a.vkey()
        );
    }
}
