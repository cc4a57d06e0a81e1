//! Leaf format v1: the commitment form of an event, and the payloads stored apart from it.
//!
//! A leaf must outlive the data it commits to (retention drops old bodies, an erasure drops a
//! person's values), so it never hashes a body or an attribute value directly. The commitment
//! form is the event with `request.body`, `response.body` and every `old`/`new` of `changes`
//! replaced by a salted digest `{"sha256": base64(SHA-256(salt ‖ JCS(value))), "size": n}`,
//! plus `"leafFormat": 1`. Its bytes are RFC 8785 canonical JSON and
//! `leaf = SHA-256(0x00 ‖ commitment bytes)`.
//!
//! The payload of an event is its 16-byte salt and the JCS bytes of each digested value,
//! concatenated in digest order (request body, response body, then `old`, `new` of each
//! change); each digest's `size` says where one value ends. Removing the payload (prune,
//! erasure) leaves the commitment, and so every root and checkpoint, intact.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::event::AuditEvent;

/// The `leafFormat` of the commitment form this crate writes.
pub const LEAF_FORMAT: u64 = 1;
/// Salt bytes per event.
pub const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

fn err(e: impl std::fmt::Display) -> SealError {
    SealError(e.to_string())
}

/// RFC 8785 canonical JSON of a value.
pub fn canonical(v: &Value) -> Result<String, SealError> {
    serde_json_canonicalizer::to_string(v).map_err(err)
}

/// `SHA-256(0x00 ‖ bytes)`: the RFC 6962 leaf hash.
pub fn leaf_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// `base64(SHA-256(salt ‖ bytes))`.
pub fn value_digest(salt: &[u8], bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(bytes);
    B64.encode(h.finalize())
}

/// Whether `base64(SHA-256(salt ‖ bytes))` is `expected`, without allocating.
pub fn digest_matches(salt: &[u8], bytes: &[u8], expected: &str) -> bool {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(bytes);
    let mut buf = [0u8; 44];
    matches!(B64.encode_slice(h.finalize(), &mut buf), Ok(n) if &buf[..n] == expected.as_bytes())
}

/// The payload kept apart from the commitment bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    pub salt: Vec<u8>,
    /// The JCS bytes of every digested value, concatenated in digest order.
    pub values: String,
}

/// An event at its position: the event as the API shows it (with `seq` and `leafHash`), its
/// commitment bytes, its leaf hash and its payload.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub event: AuditEvent,
    pub commitment: String,
    pub leaf_hash: [u8; 32],
    pub payload: StoredPayload,
}

/// A fresh random salt.
pub fn new_salt() -> [u8; SALT_LEN] {
    rand::random()
}

/// Give the event its `seq` and build its commitment form with `salt`.
pub fn seal(mut event: AuditEvent, seq: u64, salt: &[u8]) -> Result<Sealed, SealError> {
    event.seq = Some(seq);
    event.leaf_hash = None;
    let mut value = serde_json::to_value(&event).map_err(err)?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| SealError("an event is a JSON object".into()))?;
    obj.remove("leafHash");
    obj.insert("leafFormat".into(), json!(LEAF_FORMAT));
    let mut values = String::new();
    let mut digest = |slot: &mut Value| -> Result<(), SealError> {
        let bytes = canonical(slot)?;
        *slot = json!({"sha256": value_digest(salt, bytes.as_bytes()), "size": bytes.len()});
        values.push_str(&bytes);
        Ok(())
    };
    for side in ["request", "response"] {
        if let Some(body) = obj.get_mut(side).and_then(|p| p.get_mut("body")) {
            digest(body)?;
        }
    }
    if let Some(changes) = obj.get_mut("changes").and_then(Value::as_array_mut) {
        for c in changes {
            for k in ["old", "new"] {
                if let Some(v) = c.get_mut(k) {
                    digest(v)?;
                }
            }
        }
    }
    let commitment = canonical(&value)?;
    let hash = leaf_hash(commitment.as_bytes());
    event.leaf_hash = Some(B64.encode(hash));
    Ok(Sealed {
        event,
        commitment,
        leaf_hash: hash,
        payload: StoredPayload {
            salt: salt.to_vec(),
            values,
        },
    })
}

/// The digests of a commitment, in payload order: all a verifier needs of the leaf. Borrows
/// from the commitment text (ids and base64 digests hold no escapes).
#[derive(Debug, Deserialize)]
pub struct LeafView<'a> {
    #[serde(rename = "leafFormat")]
    pub leaf_format: u64,
    pub seq: u64,
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub request: BodyView<'a>,
    #[serde(borrow)]
    pub response: BodyView<'a>,
    #[serde(borrow)]
    pub changes: Vec<ChangeView<'a>>,
    // The envelope fields a store indexes, to check its index columns against.
    #[serde(borrow)]
    pub tenant: Text<'a>,
    #[serde(borrow)]
    pub time: Text<'a>,
    #[serde(borrow, rename = "requestId")]
    pub request_id: Text<'a>,
    #[serde(borrow, rename = "parentId")]
    pub parent_id: Text<'a>,
    #[serde(borrow)]
    pub action: Text<'a>,
    #[serde(borrow)]
    pub actor: ActorView<'a>,
    #[serde(borrow)]
    pub operation: OperationView<'a>,
    #[serde(borrow)]
    pub target: TargetView<'a>,
    #[serde(borrow)]
    pub outcome: OutcomeView<'a>,
}

type Text<'a> = Option<std::borrow::Cow<'a, str>>;

#[derive(Debug, Deserialize)]
pub struct ActorView<'a> {
    #[serde(borrow)]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub client: Text<'a>,
    #[serde(borrow)]
    pub ip: Text<'a>,
}

#[derive(Debug, Deserialize)]
pub struct OperationView<'a> {
    #[serde(borrow)]
    pub method: Text<'a>,
    #[serde(borrow)]
    pub scim: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView<'a> {
    #[serde(rename = "type", borrow)]
    pub resource_type: Text<'a>,
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub external_id: Text<'a>,
    #[serde(borrow)]
    pub display: Text<'a>,
}

#[derive(Debug, Deserialize)]
pub struct OutcomeView<'a> {
    #[serde(borrow)]
    pub result: Text<'a>,
    pub status: Option<u64>,
    #[serde(borrow, rename = "scimType")]
    pub scim_type: Text<'a>,
}

impl LeafView<'_> {
    /// The names of the indexed envelope fields, in [`index_key`] order.
    pub const INDEXED: [&'static str; 20] = [
        "id",
        "tenant",
        "time",
        "request_id",
        "parent_id",
        "actor_kind",
        "actor_id",
        "actor_name",
        "actor_client",
        "action",
        "method",
        "scim_op",
        "target_type",
        "target_id",
        "target_external_id",
        "result",
        "status",
        "actor_ip",
        "target_display",
        "scim_type",
    ];

    /// The [`index_key`] of this event's indexed envelope fields.
    pub fn index_key(&self) -> String {
        let status = self.outcome.status.map(|s| s.to_string());
        index_key(self.index_fields(status.as_deref()))
    }

    /// Whether `stored` (a store's index columns as [`index_key`]) is this event's
    /// [`index_key`], compared in place: nothing is built.
    pub fn index_key_matches(&self, stored: &str) -> bool {
        let mut status = itoa::Buffer::new();
        let status = self.outcome.status.map(|s| status.format(s));
        let mut rest = stored;
        for f in self.index_fields(status) {
            let next = match f {
                Some(v) => rest.strip_prefix('\u{1e}').and_then(|r| r.strip_prefix(v)),
                None => rest.strip_prefix('\u{1f}'),
            };
            match next {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    fn index_fields<'s>(&'s self, status: Option<&'s str>) -> [Option<&'s str>; 20] {
        [
            Some(&*self.id),
            self.tenant.as_deref(),
            self.time.as_deref(),
            self.request_id.as_deref(),
            self.parent_id.as_deref(),
            self.actor.kind.as_deref(),
            self.actor.id.as_deref(),
            self.actor.name.as_deref(),
            self.actor.client.as_deref(),
            self.action.as_deref(),
            self.operation.method.as_deref(),
            self.operation.scim.as_deref(),
            self.target.resource_type.as_deref(),
            self.target.id.as_deref(),
            self.target.external_id.as_deref(),
            self.outcome.result.as_deref(),
            status,
            self.actor.ip.as_deref(),
            self.target.display.as_deref(),
            self.outcome.scim_type.as_deref(),
        ]
    }
}

/// The indexed envelope fields of an event as one string (each field `\u{1e}` + value, or
/// `\u{1f}` when absent), so a store's index columns can be checked against the commitment
/// with one comparison.
pub fn index_key<'v>(fields: impl IntoIterator<Item = Option<&'v str>>) -> String {
    let mut out = String::with_capacity(256);
    for f in fields {
        index_key_push(&mut out, f);
    }
    out
}

/// Append one field to an [`index_key`] being built.
pub fn index_key_push(key: &mut String, field: Option<&str>) {
    match field {
        Some(v) => {
            key.push('\u{1e}');
            key.push_str(v);
        }
        None => key.push('\u{1f}'),
    }
}

#[derive(Debug, Deserialize)]
pub struct BodyView<'a> {
    #[serde(borrow)]
    pub body: DigestView<'a>,
}

#[derive(Debug, Deserialize)]
pub struct ChangeView<'a> {
    #[serde(borrow)]
    pub old: DigestView<'a>,
    #[serde(borrow)]
    pub new: DigestView<'a>,
}

#[derive(Debug, Deserialize)]
pub struct DigestView<'a> {
    #[serde(borrow)]
    pub sha256: std::borrow::Cow<'a, str>,
    pub size: usize,
}

impl<'a> LeafView<'a> {
    pub fn parse(commitment: &'a str) -> Result<LeafView<'a>, SealError> {
        let v: LeafView<'a> = serde_json::from_str(commitment)
            .map_err(|e| SealError(format!("not a v1 commitment form: {e}")))?;
        if v.leaf_format != LEAF_FORMAT {
            return Err(SealError(format!("unknown leafFormat {}", v.leaf_format)));
        }
        Ok(v)
    }

    /// The digests in payload order.
    pub fn digests(&self) -> impl Iterator<Item = &DigestView<'a>> {
        [&self.request.body, &self.response.body]
            .into_iter()
            .chain(self.changes.iter().flat_map(|c| [&c.old, &c.new]))
    }

    /// Check a payload against the digests; names the first value that does not match.
    pub fn check_payload(&self, payload: &StoredPayload) -> Result<(), SealError> {
        self.check_payload_parts(&payload.salt, payload.values.as_bytes())
    }

    /// [`check_payload`](Self::check_payload) on borrowed salt and value bytes.
    pub fn check_payload_parts(&self, salt: &[u8], bytes: &[u8]) -> Result<(), SealError> {
        let mut at = 0usize;
        for (i, d) in self.digests().enumerate() {
            let end = at.saturating_add(d.size);
            let part = bytes
                .get(at..end)
                .ok_or_else(|| SealError(format!("payload is shorter than digest {i} says")))?;
            if !digest_matches(salt, part, &d.sha256) {
                return Err(SealError(format!(
                    "payload value {} ({}) does not match its digest",
                    i,
                    digest_name(i)
                )));
            }
            at = end;
        }
        if at != bytes.len() {
            return Err(SealError("payload is longer than its digests say".into()));
        }
        Ok(())
    }

    /// The exact JCS text of each value of a payload, in digest order, without parsing them.
    pub fn split_payload_raw<'p>(
        &self,
        payload: &'p StoredPayload,
    ) -> Result<Vec<&'p str>, SealError> {
        let mut at = 0usize;
        let mut out = Vec::new();
        for d in self.digests() {
            let end = at.saturating_add(d.size);
            out.push(
                payload
                    .values
                    .get(at..end)
                    .ok_or_else(|| SealError("payload does not fit its digests".into()))?,
            );
            at = end;
        }
        Ok(out)
    }

    /// Split a payload into its values (after [`check_payload`](Self::check_payload)).
    pub fn split_payload(&self, payload: &StoredPayload) -> Result<Vec<Value>, SealError> {
        self.split_payload_raw(payload)?
            .into_iter()
            .map(|raw| serde_json::from_str(raw).map_err(err))
            .collect()
    }
}

fn digest_name(i: usize) -> String {
    match i {
        0 => "request.body".into(),
        1 => "response.body".into(),
        n => format!(
            "changes[{}].{}",
            (n - 2) / 2,
            if n % 2 == 0 { "old" } else { "new" }
        ),
    }
}

/// Reassemble the event the API shows from its commitment bytes and, if it survives, its
/// payload (and then its `salt`, so anyone can recompute the digests). A pruned event keeps
/// its digests in place of the values and says `"pruned": true`.
pub fn open(
    commitment: &str,
    leaf: &[u8],
    payload: Option<&StoredPayload>,
) -> Result<Value, SealError> {
    let mut event: Value = serde_json::from_str(commitment).map_err(err)?;
    let obj: &mut Map<String, Value> = event
        .as_object_mut()
        .ok_or_else(|| SealError("a commitment is a JSON object".into()))?;
    let values = match payload {
        Some(p) => Some(LeafView::parse(commitment)?.split_payload(p)?),
        None => None,
    };
    match values {
        Some(values) => {
            if let Some(p) = payload {
                obj.insert("salt".into(), Value::String(B64.encode(&p.salt)));
            }
            let mut it = values.into_iter();
            let mut fill = |slot: Option<&mut Value>| {
                if let (Some(slot), Some(v)) = (slot, it.next()) {
                    *slot = v;
                }
            };
            fill(obj.get_mut("request").and_then(|p| p.get_mut("body")));
            fill(obj.get_mut("response").and_then(|p| p.get_mut("body")));
            if let Some(changes) = obj.get_mut("changes").and_then(Value::as_array_mut) {
                for c in changes {
                    fill(c.get_mut("old"));
                    fill(c.get_mut("new"));
                }
            }
        }
        None => {
            obj.insert("pruned".into(), Value::Bool(true));
        }
    }
    obj.insert("leafHash".into(), Value::String(B64.encode(leaf)));
    Ok(event)
}

#[cfg(test)]
mod tests;
