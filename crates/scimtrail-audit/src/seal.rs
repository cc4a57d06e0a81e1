//! Sealing: canonical bytes (RFC 8785 JCS) and the RFC 6962 leaf hash of an event.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::event::AuditEvent;

#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalise audit event: {0}")]
pub struct SealError(String);

/// An event with its position, its canonical bytes (the stored and hashed form, without
/// `leafHash`) and its leaf hash.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub event: AuditEvent,
    pub canonical: String,
    pub leaf_hash: [u8; 32],
}

/// `SHA-256(0x00 ‖ bytes)`.
pub fn leaf_hash(canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(canonical);
    h.finalize().into()
}

/// Give the event its `seq`, canonicalise it and compute its leaf hash.
pub fn seal(mut event: AuditEvent, seq: u64) -> Result<Sealed, SealError> {
    event.seq = Some(seq);
    event.leaf_hash = None;
    let mut value = serde_json::to_value(&event).map_err(|e| SealError(e.to_string()))?;
    if let Some(obj) = value.as_object_mut() {
        obj.remove("leafHash");
    }
    let canonical = serde_jcs::to_string(&value).map_err(|e| SealError(e.to_string()))?;
    let hash = leaf_hash(canonical.as_bytes());
    event.leaf_hash = Some(base64::engine::general_purpose::STANDARD.encode(hash));
    Ok(Sealed {
        event,
        canonical,
        leaf_hash: hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    fn event() -> AuditEvent {
        AuditEvent {
            id: "0190-x".into(),
            seq: None,
            time: "2026-11-28T13:32:22.000000Z".into(),
            tenant: "default".into(),
            request_id: "r1".into(),
            actor: Actor {
                kind: ACTOR_TOKEN.into(),
                ..Default::default()
            },
            action: "user.create".into(),
            operation: Operation::default(),
            target: Target::default(),
            outcome: Outcome::from_status(201, None, None),
            latency_ms: 1.5,
            changes: vec![],
            request: Payload::default(),
            response: Payload::default(),
            parent_id: None,
            leaf_hash: None,
        }
    }

    #[test]
    fn canonical_bytes_are_sorted_and_exclude_leaf_hash() {
        let s = seal(event(), 7).unwrap();
        assert!(s
            .canonical
            .starts_with("{\"action\":\"user.create\",\"actor\":{"));
        assert!(!s.canonical.contains("leafHash"));
        assert!(s.canonical.contains("\"seq\":7"));
        assert_eq!(s.leaf_hash, leaf_hash(s.canonical.as_bytes()));
        assert!(s.event.leaf_hash.is_some());
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = seal(event(), 7).unwrap();
        let b = seal(event(), 8).unwrap();
        let mut e = event();
        e.outcome.status = 200;
        let c = seal(e, 7).unwrap();
        assert_ne!(a.leaf_hash, b.leaf_hash);
        assert_ne!(a.leaf_hash, c.leaf_hash);
        assert_eq!(a.leaf_hash, seal(event(), 7).unwrap().leaf_hash);
    }

    #[test]
    fn rfc6962_empty_leaf() {
        // SHA-256(0x00) — the RFC 6962 hash of an empty leaf.
        let h = leaf_hash(b"");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
