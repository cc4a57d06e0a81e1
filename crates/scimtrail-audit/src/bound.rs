//! Every event has a maximum size. Nothing a client sends — a thousand headers, a 1 MB
//! userName, a group of 20,000 members — can make one event unbounded.
//!
//! Past a cap a value keeps a head, its SHA-256 and its size, and says it was cut:
//!
//! * a header value longer than [`EventLimits::header_value`] becomes
//!   `{"truncated": true, "head": "…", "sha256": "<hex>", "size": n}`; once the headers of a
//!   request or response reach [`EventLimits::headers_total`], further values keep only
//!   `{"truncated": true, "sha256", "size"}`;
//! * a change's `old` or `new` whose JSON is longer than [`EventLimits::change_value`]
//!   becomes the same object, its head being the start of the JSON text; once the changes
//!   reach [`EventLimits::changes_total`], the remaining ones are summarised in one last change
//!   `{"op": "truncated", "path": "<n> more changes", "old": null, "new": {"truncated": true,
//!   "sha256", "size"}}` (the resource's version snapshot still holds the whole new state);
//! * `target.display`, `operation.path`, `operation.query`, `outcome.detail` and
//!   `actor.userAgent` are cut to their caps and end with `…`.
//!
//! Bodies are already cut at the audit body cap when captured. With the defaults an event is
//! at most about 2 × 64 KiB of bodies + 2 × 30 KiB of headers + 64 KiB of changes + 8 KiB of
//! the rest: under 260 KiB.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::event::AuditEvent;
use crate::Change;

#[derive(Debug, Clone)]
pub struct EventLimits {
    pub header_value: usize,
    pub headers_total: usize,
    pub change_value: usize,
    pub changes_total: usize,
    pub display: usize,
    pub path: usize,
    pub query: usize,
    pub detail: usize,
    pub user_agent: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            header_value: 1024,
            headers_total: 16 * 1024,
            change_value: 4096,
            changes_total: 64 * 1024,
            display: 256,
            path: 2048,
            query: 4096,
            detail: 1024,
            user_agent: 512,
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many bytes a character takes inside a JSON string: control characters are escaped to
/// six (`\u0001`), quotes and backslashes to two.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The size of `s` as a JSON string, quotes aside: what it costs in a stored event.
pub fn json_len(s: &str) -> usize {
    s.chars().map(escaped_len).sum()
}

/// The longest start of `s` that takes at most `max` bytes as a JSON string.
pub fn head(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The stand-in of a cut value: head (if any), digest and size of the whole text.
pub fn truncated(text: &str, keep: Option<usize>) -> Value {
    let mut v = json!({
        "truncated": true,
        "sha256": hex_sha256(text.as_bytes()),
        "size": text.len(),
    });
    if let (Some(n), Some(obj)) = (keep, v.as_object_mut()) {
        obj.insert("head".into(), Value::String(head(text, n).to_string()));
    }
    v
}

fn cut(field: &mut Option<String>, max: usize) {
    if let Some(s) = field {
        if json_len(s) > max {
            let mut h = head(s, max.saturating_sub(3)).to_string();
            h.push('…');
            *s = h;
        }
    }
}

fn bound_headers(headers: &mut serde_json::Map<String, Value>, l: &EventLimits) {
    let mut total = 0usize;
    for (name, v) in headers.iter_mut() {
        let text = match &*v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let size = json_len(&text);
        total += json_len(name) + size.min(l.header_value);
        if total > l.headers_total {
            *v = truncated(&text, None);
        } else if size > l.header_value {
            *v = truncated(&text, Some(l.header_value));
        }
    }
}

fn bound_changes(changes: &mut Vec<Change>, l: &EventLimits) {
    let mut total = 0usize;
    let mut keep = changes.len();
    for (i, c) in changes.iter_mut().enumerate() {
        for v in [&mut c.old, &mut c.new] {
            let text = v.to_string();
            if text.len() > l.change_value {
                *v = truncated(&text, Some(l.change_value / 4));
            }
        }
        if json_len(&c.path) > l.path {
            c.path = format!("{}…", head(&c.path, l.path));
        }
        total += serde_json::to_string(&*c).map_or(0, |t| t.len() + 1);
        if total > l.changes_total {
            keep = i;
            break;
        }
    }
    if keep < changes.len() {
        let rest: Vec<Change> = changes.split_off(keep);
        let text = serde_json::to_string(&rest).unwrap_or_default();
        changes.push(Change {
            op: "truncated".into(),
            path: format!("{} more changes", rest.len()),
            old: Value::Null,
            new: truncated(&text, None),
        });
    }
}

/// Cut an event down to the limits (see the module documentation).
pub fn bound(e: &mut AuditEvent, l: &EventLimits) {
    bound_headers(&mut e.request.headers, l);
    bound_headers(&mut e.response.headers, l);
    bound_changes(&mut e.changes, l);
    cut(&mut e.target.display, l.display);
    cut(&mut e.target.external_id, l.display);
    cut(&mut e.operation.query, l.query);
    cut(&mut e.outcome.detail, l.detail);
    cut(&mut e.actor.user_agent, l.user_agent);
    cut(&mut e.target.id, l.display);
    cut(&mut e.target.resource_type, l.display);
    if json_len(&e.operation.path) > l.path {
        e.operation.path = format!("{}…", head(&e.operation.path, l.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold() {
        let l = EventLimits::default();
        let mut e: AuditEvent = serde_json::from_value(json!({
            "id": "x", "seq": null, "time": "t", "tenant": "d", "requestId": "r",
            "actor": {"kind": "anonymous", "id": null, "name": null, "client": null, "ip": null,
                      "userAgent": "u".repeat(10_000)},
            "action": "a",
            "operation": {"method": "POST", "path": "/p", "query": "q".repeat(10_000), "scim": null},
            "target": {"system": "s", "type": null, "id": null, "externalId": null,
                       "display": "é".repeat(100_000), "versionBefore": null, "versionAfter": null},
            "outcome": {"result": "failure", "status": 400, "scimType": null, "detail": "d".repeat(5000)},
            "latencyMs": 1.0,
            "changes": (0..5000).map(|i| json!({"op": "add", "path": "members", "old": null,
                         "new": {"value": format!("{i:036}")}})).chain([json!({"op": "replace",
                         "path": "userName", "old": null, "new": "n".repeat(1_000_000)})])
                        .collect::<Vec<_>>(),
            "request": {"headers": (0..95).map(|i| (format!("x-h{i}"), Value::String("v".repeat(4096))))
                        .collect::<serde_json::Map<_, _>>(), "body": null, "truncated": false},
            "response": {"headers": {}, "body": null, "truncated": false},
            "parentId": null, "leafHash": null
        }))
        .unwrap();
        bound(&mut e, &l);
        let size = serde_json::to_string(&e).unwrap().len();
        assert!(size < 120 * 1024, "{size}");
        assert!(e.target.display.as_ref().unwrap().len() <= 256);
        assert_eq!(e.changes.last().unwrap().op, "truncated");
        assert_eq!(e.request.headers["x-h0"]["truncated"], true);
        assert_eq!(e.request.headers["x-h0"]["size"], 4096);
        assert!(e.request.headers["x-h0"]["head"].as_str().unwrap().len() == 1024);
        assert!(e.request.headers["x-h94"].get("head").is_none());
        // Small events are left alone.
        let mut small = e.clone();
        small.changes = vec![Change {
            op: "add".into(),
            path: "active".into(),
            old: Value::Null,
            new: Value::Bool(true),
        }];
        let before = small.changes.clone();
        bound(&mut small, &l);
        assert_eq!(small.changes, before);
    }
}
