//! Cursor pagination (RFC 9865): `cursor` on a list or search, `nextCursor` in its answer.
//!
//! A cursor is stateless: where the next page starts, how many results came before it, which
//! query it belongs to and until when it holds, authenticated with an HMAC under a key of this
//! server. Without `sortBy` it is the position of the last result in the order of creation,
//! so each page costs the same however deep it is, and a resource created or deleted between
//! pages moves no other one. With `sortBy` it is the offset of the next page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use scimtrail_core::{ScimError, ScimType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a cursor holds (`cursorTimeout` in `/ServiceProviderConfig`).
pub const CURSOR_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// After the resource at this position of the order of creation.
    After(i64),
    /// At this offset of the sorted results.
    Offset(usize),
}

#[derive(Serialize, Deserialize)]
struct Body {
    /// Query fingerprint.
    q: String,
    /// `a`: after a position; `o`: an offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<usize>,
    /// Results before the page it opens.
    n: usize,
    /// Unix time it expires.
    e: u64,
}

/// What a cursor says: where its page starts and how many results came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: Position,
    pub seen: usize,
}

/// The fingerprint of a query a cursor belongs to: its resource type, filter and order.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    URL_SAFE_NO_PAD.encode(&h.finalize()[..12])
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn mac(key: &[u8; 32], body: &str) -> Vec<u8> {
    // An HMAC accepts a key of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(body.as_bytes());
    m.finalize().into_bytes()[..16].to_vec()
}

pub fn encode(key: &[u8; 32], query: &str, c: Cursor, timeout_secs: u64) -> String {
    let (a, o) = match c.position {
        Position::After(r) => (Some(r), None),
        Position::Offset(o) => (None, Some(o)),
    };
    let body = Body {
        q: query.to_string(),
        a,
        o,
        n: c.seen,
        e: now() + timeout_secs,
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default());
    let tag = URL_SAFE_NO_PAD.encode(mac(key, &body));
    format!("{body}.{tag}")
}

fn invalid(detail: &str) -> ScimError {
    ScimError::bad_request(ScimType::InvalidCursor, detail)
}

/// The cursor a client sent back, if this server issued it for `query` and it still holds.
pub fn decode(key: &[u8; 32], query: &str, text: &str) -> Result<Cursor, ScimError> {
    let (body, tag) = text
        .trim()
        .split_once('.')
        .ok_or_else(|| invalid("the cursor is not one this server issued"))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| invalid("the cursor is not one this server issued"))?;
    let expected = mac(key, body);
    // Compared in constant time, as any MAC check.
    let same = tag.len() == expected.len()
        && tag
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(invalid("the cursor is not one this server issued"));
    }
    let body: Body = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("the cursor is not one this server issued"))?;
    if body.q != query {
        return Err(invalid(
            "the cursor belongs to another query: send the same filter and sort as the first page",
        ));
    }
    if body.e < now() {
        return Err(ScimError::bad_request(
            ScimType::ExpiredCursor,
            "the cursor has expired: start again without one",
        ));
    }
    let position = match (body.a, body.o) {
        (Some(a), None) => Position::After(a),
        (None, Some(o)) => Position::Offset(o),
        _ => return Err(invalid("the cursor is not one this server issued")),
    };
    Ok(Cursor {
        position,
        seen: body.n,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_issue() {
        let key = [7u8; 32];
        let c = Cursor {
            position: Position::After(42),
            seen: 100,
        };
        let text = encode(&key, "q1", c, 60);
        assert_eq!(decode(&key, "q1", &text).unwrap(), c);
        let kind = |r: Result<Cursor, ScimError>| r.unwrap_err().scim_type;
        assert_eq!(
            kind(decode(&key, "q2", &text)),
            Some(ScimType::InvalidCursor)
        );
        assert_eq!(
            kind(decode(&[8u8; 32], "q1", &text)),
            Some(ScimType::InvalidCursor)
        );
        // A changed body, however small, breaks the tag.
        let (body, tag) = text.split_once('.').unwrap();
        let mut b = body.as_bytes().to_vec();
        b[3] = if b[3] == b'A' { b'B' } else { b'A' };
        let forged = format!("{}.{tag}", String::from_utf8(b).unwrap());
        assert_eq!(
            kind(decode(&key, "q1", &forged)),
            Some(ScimType::InvalidCursor)
        );
        for junk in ["", ".", "abc", "a.b", "%%%.%%%"] {
            assert_eq!(
                kind(decode(&key, "q1", junk)),
                Some(ScimType::InvalidCursor)
            );
        }
        let old = encode(&key, "q1", c, 0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            kind(decode(&key, "q1", &old)),
            Some(ScimType::ExpiredCursor)
        );
    }
}
