//! Bearer tokens: random, shown once, stored as SHA-256 hashes.

use base64::Engine as _;
use rand::RngCore;
use scimtrail_store::{NewToken, Store, StoreResult, TokenInfo};
use sha2::{Digest, Sha256};

/// Scopes of an admin token.
pub const ADMIN_SCOPES: &[&str] = &["scim", "audit:read", "audit:admin"];

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random token: `st_` and 32 random bytes, base64url.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "st_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Store a token's hash under a name. Returns what was stored (never the token).
pub async fn create_token(
    store: &dyn Store,
    token: &str,
    name: &str,
    scopes: &[&str],
    tenant: &str,
) -> StoreResult<TokenInfo> {
    store
        .create_token(NewToken {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            hash_hex: hash_token(token),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            tenant: tenant.into(),
            created: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
        })
        .await
}

/// First start: when no token exists, make the bootstrap admin token. Returns the token when it
/// was generated here (the caller prints it once); `None` when tokens exist or it came from the
/// environment.
pub async fn bootstrap(
    store: &dyn Store,
    from_env: Option<&str>,
    tenant: &str,
) -> StoreResult<Option<String>> {
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    match from_env.filter(|t| !t.is_empty()) {
        Some(t) => {
            create_token(store, t, "bootstrap", ADMIN_SCOPES, tenant).await?;
            Ok(None)
        }
        None => {
            let t = generate_token();
            create_token(store, &t, "bootstrap", ADMIN_SCOPES, tenant).await?;
            Ok(Some(t))
        }
    }
}

/// The token in an `Authorization: Bearer …` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(generate_token(), generate_token());
    }
}
