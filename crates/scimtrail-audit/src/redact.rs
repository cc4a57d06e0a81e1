//! Structural redaction: secrets are replaced before anything is stored, exported or logged.
//!
//! A value is secret when its attribute name (the last segment of a key or PATCH path, with any
//! schema URN, dotted parent or value filter stripped) is one of the schema's writeOnly or
//! `returned: never` attributes, or an operator-configured name. Headers that carry credentials
//! are always redacted.

use std::collections::HashSet;

use serde_json::{Map, Value};

pub const REDACTED: &str = "[REDACTED]";

const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    names: HashSet<String>,
}

impl Redactor {
    /// `names`: attribute names whose values are secret (matched case-insensitively).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor {
            names: names
                .into_iter()
                .map(|n| n.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a JSON key or a PATCH path names a secret attribute.
    pub fn is_secret_path(&self, path: &str) -> bool {
        // Drop value filters (`emails[type eq "x"]`): they may contain ':' and '.'.
        let mut plain = String::with_capacity(path.len());
        let mut depth = 0usize;
        for c in path.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        plain
            .rsplit(':')
            .next()
            .into_iter()
            .flat_map(|attr| attr.split('.'))
            .any(|seg| self.names.contains(&seg.trim().to_ascii_lowercase()))
    }

    /// Replace every secret value in a JSON document, including PATCH operations whose `path`
    /// names a secret.
    pub fn redact_json(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                let secret_path = map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                    .and_then(|(_, p)| p.as_str())
                    .is_some_and(|p| self.is_secret_path(p));
                for (k, child) in map.iter_mut() {
                    let by_path = secret_path && k.eq_ignore_ascii_case("value");
                    if (by_path || self.is_secret_path(k)) && !child.is_null() {
                        *child = Value::String(REDACTED.into());
                    } else {
                        self.redact_json(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_json(i)),
            _ => {}
        }
    }

    /// Best-effort redaction of a body that is not valid JSON (it may still hold a password).
    /// Every quoted key naming a secret has its value blanked, and if any PATCH-style `path`
    /// names a secret, every `"value"` is blanked too.
    pub fn redact_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        let lower = text.to_ascii_lowercase();
        let path_secret = self.names.iter().any(|n| {
            lower.match_indices("\"path\"").any(|(i, _)| {
                let rest = &lower[i + 6..];
                let val = rest.trim_start().strip_prefix(':').map(str::trim_start);
                val.and_then(|v| v.strip_prefix('"'))
                    .and_then(|v| v.split('"').next())
                    .is_some_and(|p| self.is_secret_path(p) && p.contains(n.as_str()))
            })
        });
        let mut keys: Vec<String> = self.names.iter().cloned().collect();
        if path_secret {
            keys.push("value".into());
        }
        for key in keys {
            out = blank_values_of(&out, &key);
        }
        out
    }

    /// Header map for an event: lower-cased names, credentials redacted.
    pub fn headers<'a, I>(&self, headers: I) -> Map<String, Value>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut map = Map::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED
            } else {
                value
            };
            map.insert(name, Value::String(value.to_string()));
        }
        map
    }

    /// A body as it goes into an event: parsed and redacted when it is JSON, redacted text when
    /// not, cut at `cap` bytes (then `truncated` is true and the body is the cut text).
    pub fn capture(&self, body: &[u8], cap: usize) -> (Value, bool) {
        if body.is_empty() {
            return (Value::Null, false);
        }
        if body.len() > cap.saturating_mul(2) {
            // Far over the cap (a 100k-member group is 16 MB): redact only the part that is
            // kept, as text, instead of parsing the whole body to throw most of it away.
            let head = String::from_utf8_lossy(&body[..cap.min(body.len())]);
            let mut text = self.redact_text(&head);
            let mut cut = cap.min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            return (Value::String(text), true);
        }
        let (value, text) = match serde_json::from_slice::<Value>(body) {
            Ok(mut v) => {
                self.redact_json(&mut v);
                let text = v.to_string();
                (v, text)
            }
            Err(_) => {
                let text = self.redact_text(&String::from_utf8_lossy(body));
                (Value::String(text.clone()), text)
            }
        };
        if text.len() <= cap {
            return (value, false);
        }
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        (Value::String(text[..end].to_string()), true)
    }
}

/// Blank the value after every `"…key"` (case-insensitive; the key may carry a URN or dotted
/// prefix) in possibly malformed JSON text.
fn blank_values_of(text: &str, key: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let needle = format!("{key}\"");
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (i, _) in lower.match_indices(&needle) {
        if i < pos {
            continue;
        }
        let prev = lower[..i].chars().next_back();
        if !matches!(prev, Some('"') | Some(':') | Some('.')) {
            continue;
        }
        let after_key = i + needle.len();
        let rest = &text[after_key..];
        let Some(colon) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let value_start = text.len() - colon.trim_start().len();
        let value_end = value_end(text, value_start);
        out.push_str(&text[pos..value_start]);
        out.push('"');
        out.push_str(REDACTED);
        out.push('"');
        pos = value_end;
    }
    out.push_str(&text[pos..]);
    out
}

/// End (exclusive) of the JSON-ish value starting at `start`: a string up to its closing quote,
/// anything else up to the next `,` `}` `]` or end of text.
fn value_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        return bytes.len();
    }
    text[start..]
        .find([',', '}', ']'])
        .map(|o| start + o)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Redactor {
        Redactor::new(["password"])
    }

    #[test]
    fn paths() {
        let r = r();
        for p in [
            "password",
            "PassWord",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "x.password",
        ] {
            assert!(r.is_secret_path(p), "{p}");
        }
        for p in [
            "userName",
            "emails[value eq \"password\"].display",
            "passwords",
        ] {
            assert!(!r.is_secret_path(p), "{p}");
        }
    }

    #[test]
    fn json_bodies() {
        let mut v = json!({"userName": "a", "Password": "s3cret", "ops": [
            {"op": "replace", "path": "password", "value": "s3cret"},
            {"op": "replace", "value": {"password": "s3cret", "active": true}},
            {"op": "replace", "path": "active", "value": false}
        ]});
        r().redact_json(&mut v);
        assert!(!v.to_string().contains("s3cret"));
        assert_eq!(v["ops"][2]["value"], json!(false));
        assert_eq!(v["userName"], "a");
    }

    #[test]
    fn malformed_bodies() {
        let r = r();
        let cases = [
            r#"{"userName":"a","password":"s3cret""#,
            r#"{"userName":"a","PASSWORD" : "s3\"cret", "x": 1"#,
            r#"{"urn:ietf:params:scim:schemas:core:2.0:User:password":"s3cret"#,
            r#"{"Operations":[{"op":"replace","path":"password","value":"s3cret"}"#,
        ];
        for c in cases {
            let out = r.redact_text(c);
            assert!(
                !out.contains("s3cret") && !out.contains("cret"),
                "{c} -> {out}"
            );
        }
        assert_eq!(r.redact_text(r#"{"userName":"a""#), r#"{"userName":"a""#);
    }

    #[test]
    fn capture_caps_and_flags() {
        let r = r();
        let (v, t) = r.capture(br#"{"password":"s3cret","userName":"bob"}"#, 1024);
        assert!(!t);
        assert_eq!(v["password"], REDACTED);
        let (v, t) = r.capture(br#"{"userName":"bobbobbobbob"}"#, 10);
        assert!(t);
        assert_eq!(v.as_str().map(str::len), Some(10));
        // Far over the cap: only the head is kept, and still redacted.
        let big = format!(r#"{{"password":"s3cret","pad":"{}"}}"#, "x".repeat(10_000));
        let (v, t) = r.capture(big.as_bytes(), 100);
        assert!(t);
        let kept = v.as_str().unwrap();
        assert!(kept.len() <= 100 && !kept.contains("s3cret"), "{kept}");
        // Cut inside the secret value: still nothing of it.
        let (v, _) = r.capture(big.as_bytes(), 20);
        assert!(!v.as_str().unwrap().contains("s3c"), "{v}");
        assert_eq!(r.capture(b"", 10), (Value::Null, false));
    }

    #[test]
    fn headers() {
        let h = r().headers([("Authorization", "Bearer abc"), ("User-Agent", "Okta")]);
        assert_eq!(h["authorization"], REDACTED);
        assert_eq!(h["user-agent"], "Okta");
    }
}
