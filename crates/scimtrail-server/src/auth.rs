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

/// Who creates or revokes a token, for its event: an operator at the command line, or the
/// server itself (the bootstrap token).
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: scimtrail_audit::Actor,
    /// `target.system` of the event.
    pub system: String,
    /// How the act was asked for (`scimtrail token create`, `serve`).
    pub via: String,
}

impl Admin {
    /// The operator running a command (`$USER`).
    pub fn operator(via: &str) -> Admin {
        Admin {
            actor: scimtrail_audit::Actor {
                kind: scimtrail_audit::ACTOR_OPERATOR.into(),
                name: Some(std::env::var("USER").unwrap_or_else(|_| "operator".into())),
                ..Default::default()
            },
            system: gethostname(),
            via: via.into(),
        }
    }

    /// The server making its bootstrap token at first start.
    pub fn system(system: &str) -> Admin {
        Admin {
            actor: scimtrail_audit::Actor {
                kind: scimtrail_audit::ACTOR_SYSTEM.into(),
                name: Some("scimtrail".into()),
                ..Default::default()
            },
            system: system.into(),
            via: "scimtrail serve".into(),
        }
    }

    /// The event of a token act; the store fills in the token's id and name.
    pub fn event(
        &self,
        action: &str,
        tenant: &str,
        changes: Vec<scimtrail_audit::Change>,
    ) -> scimtrail_audit::AuditEvent {
        self.event_on("Token", action, tenant, changes)
    }

    /// The event of an administrative act on a `resource_type` (`Token`, `Config`).
    pub fn event_on(
        &self,
        resource_type: &str,
        action: &str,
        tenant: &str,
        changes: Vec<scimtrail_audit::Change>,
    ) -> scimtrail_audit::AuditEvent {
        let id = uuid::Uuid::now_v7().to_string();
        scimtrail_audit::AuditEvent {
            id: id.clone(),
            seq: None,
            time: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
            tenant: tenant.into(),
            request_id: id,
            actor: self.actor.clone(),
            action: action.into(),
            operation: scimtrail_audit::Operation {
                method: "CLI".into(),
                path: self.via.clone(),
                query: None,
                scim: None,
            },
            target: scimtrail_audit::Target {
                system: self.system.clone(),
                resource_type: Some(resource_type.into()),
                ..Default::default()
            },
            outcome: scimtrail_audit::Outcome::from_status(200, None, None),
            latency_ms: 0.0,
            changes,
            request: Default::default(),
            response: Default::default(),
            parent_id: None,
            leaf_hash: None,
        }
    }
}

fn gethostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Store a token's hash under a name, with its `token.create` event. Returns what was stored
/// (never the token).
pub async fn create_token(
    store: &dyn Store,
    token: &str,
    name: &str,
    scopes: &[&str],
    tenant: &str,
    by: &Admin,
    action: &str,
) -> StoreResult<TokenInfo> {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let event = by.event(
        action,
        tenant,
        vec![scimtrail_audit::Change {
            op: "add".into(),
            path: "scopes".into(),
            old: serde_json::Value::Null,
            new: serde_json::json!(scopes),
        }],
    );
    store
        .create_token(
            NewToken {
                id: uuid::Uuid::now_v7().to_string(),
                name: name.into(),
                hash_hex: hash_token(token),
                scopes,
                tenant: tenant.into(),
                created: scimtrail_audit::format_time(time::OffsetDateTime::now_utc()),
            },
            event,
        )
        .await
}

/// Revoke a token by id, or by a name only one active token has, with its `token.revoke`
/// event.
pub async fn revoke_token(
    store: &dyn Store,
    id_or_name: &str,
    tenant: &str,
    by: &Admin,
) -> StoreResult<scimtrail_store::Revoked> {
    store
        .revoke_token(id_or_name, by.event("token.revoke", tenant, vec![]))
        .await
}

/// First start: when no token exists, make the bootstrap admin token. Returns the token when it
/// was generated here (the caller prints it once); `None` when tokens exist or it came from the
/// environment.
pub async fn bootstrap(
    store: &dyn Store,
    from_env: Option<&str>,
    tenant: &str,
    system: &str,
) -> StoreResult<Option<String>> {
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    let by = Admin::system(system);
    match from_env.filter(|t| !t.is_empty()) {
        Some(t) => {
            create_token(
                store,
                t,
                "bootstrap",
                ADMIN_SCOPES,
                tenant,
                &by,
                "token.bootstrap",
            )
            .await?;
            Ok(None)
        }
        None => {
            let t = generate_token();
            create_token(
                store,
                &t,
                "bootstrap",
                ADMIN_SCOPES,
                tenant,
                &by,
                "token.bootstrap",
            )
            .await?;
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
