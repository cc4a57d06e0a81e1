//! Structural redaction: secrets are replaced before anything is stored, exported or logged.
//!
//! A value is secret when its attribute name (the last segment of a key or PATCH path, with any
//! schema URN, dotted parent or value filter stripped) is one of the schema's writeOnly or
//! `returned: never` attributes, or an operator-configured name. Headers that carry credentials
//! are always redacted.

use std::collections::HashSet;

use serde_json::{Map, Value};

pub const REDACTED: &str = "[REDACTED]";

/// Bodies up to this size are parsed and redacted structurally before they enter an event.
const PARSE_LIMIT: usize = 8 * 1024 * 1024;

/// A body nested deeper than this is kept as (redacted) JSON text, not as JSON: inside an
/// event, inside a list of events, it must stay readable by any JSON parser (serde_json and
/// many others stop at 128 levels).
pub const MAX_BODY_DEPTH: usize = 32;

/// A key or path segment as it is compared with secret names: compatibility-normalised (NFKC:
/// fullwidth `ｐａｓｓｗｏｒｄ` is `password`), without control, format or invisible
/// characters (`pass\u{200b}word`, `password\u{0}`), case-folded, trimmed.
fn fold_name(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc()
        .filter(|&c| !scimtrail_core::username::is_invisible(c))
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .trim()
        .to_string()
}

/// A JSON string that itself holds a JSON object or array (a double-encoded body).
fn embedded_json(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A header or query parameter whose name contains one of these (ignoring case and anything
/// but letters and digits) carries a credential and is redacted: `Authorization`, `Cookie`,
/// `X-Auth-Token`, `X-Client-Secret`, `X-Password`, `X-Api-Key`, identity-proxy assertions
/// (`Cf-Access-Jwt-Assertion`, `X-Amzn-Oidc-Data`, `X-Ms-Client-Principal`), client
/// certificates, `DPoP`, one-time codes and PINs; `access_token=`, `client_secret=`…
const SECRET_NAME_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "key",
    "cookie",
    "session",
    "credential",
    "signature",
    "sig",
    "jwt",
    "assertion",
    "bearer",
    "oidc",
    "principal",
    "cert",
    "dpop",
    "otp",
    "pin",
    "hmac",
    "saml",
    "cred",
    "pw",
    "mfa",
    "ticket",
    "sso",
    "code",
];

/// Words that, anywhere in a query parameter's value, say the value may carry a credential
/// (an audit filter on `request.headers.authorization`, a `Bearer …` pasted into a search).
const CREDENTIAL_WORDS: &[&str] = &[
    "authorization",
    "bearer",
    "token",
    "secret",
    "password",
    "cookie",
    "credential",
    "apikey",
    "api_key",
    "session",
];

/// Query parameters that carry credentials although their names say nothing of it (OAuth and
/// SAML flows, signed URLs), matched the same way.
const SECRET_QUERY_PARTS: &[&str] = &["code", "verifier", "relaystate", "ticket", "sas", "sid"];

/// Letters and digits of a name, lower-cased: `X-Auth_Token`, `code[]`, `pwd%00` compare as
/// `xauthtoken`, `code`, `pwd`.
fn normalized(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn secret_name(name: &str) -> bool {
    let n = normalized(name);
    SECRET_NAME_PARTS.iter().any(|p| n.contains(p))
}

fn secret_query_name(name: &str) -> bool {
    secret_name(name) || {
        let n = normalized(name);
        SECRET_QUERY_PARTS.iter().any(|p| n.contains(p))
    }
}

/// `%XX` and `+` decoding of a query-string key (invalid escapes are kept as they are).
fn decode_component(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    names: HashSet<String>,
    /// Dotted paths (`addresses.streetaddress`): a sub-attribute secret only under its parent.
    paths: HashSet<String>,
    /// Operator-configured header names (lower case) redacted besides the rule above.
    headers: HashSet<String>,
    /// With a key, a redacted attribute value becomes its keyed HMAC ([`Redactor::mask`]).
    hmac_key: Option<[u8; 32]>,
}

impl Redactor {
    /// `names`: attribute names whose values are secret (matched case-insensitively).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let (paths, names): (Vec<String>, Vec<String>) = names
            .into_iter()
            .map(|n| fold_name(n.as_ref()))
            .filter(|n| !n.is_empty())
            .partition(|n| n.contains('.'));
        Redactor {
            names: names.into_iter().collect(),
            paths: paths.into_iter().collect(),
            headers: HashSet::new(),
            hmac_key: None,
        }
    }

    /// Replace redacted attribute values by a keyed HMAC of the value instead of a constant,
    /// so that whether and when a secret changed can be read from the log without the value.
    pub fn with_hmac_key(mut self, key: [u8; 32]) -> Self {
        self.hmac_key = Some(key);
        self
    }

    /// What a redacted attribute value becomes: `[REDACTED]`, or with a key
    /// `[REDACTED hmac-sha256:…]` (the first 128 bits of HMAC-SHA-256 over the value's JSON,
    /// base64url). Only bodies and change values, which the leaf holds as salted digests,
    /// are masked this way; headers and queries sit in the leaf's clear envelope and keep the
    /// constant.
    pub fn mask(&self, v: &Value) -> Value {
        use hmac::Mac as _;
        let Some(key) = &self.hmac_key else {
            return Value::String(REDACTED.into());
        };
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
            return Value::String(REDACTED.into());
        };
        mac.update(v.to_string().as_bytes());
        let tag = mac.finalize().into_bytes();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16]);
        Value::String(format!("[REDACTED hmac-sha256:{b64}]"))
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
        let attr = plain.rsplit(':').next().unwrap_or_default();
        attr.split('.')
            .any(|seg| self.names.contains(&fold_name(seg)))
            || (!self.paths.is_empty() && self.paths.contains(&fold_name(attr)))
    }

    /// A path that is just a secret's name (`password`, `urn:…:User:password`): kept, as it
    /// says which attribute was written and holds no value.
    fn is_plain_secret(&self, p: &str) -> bool {
        !p.contains(['[', '"', '\'', ' ']) && self.is_secret_path(p)
    }

    /// Whether a PATCH `path` of any JSON shape names a secret: a string, or any string
    /// inside an array or object (`"path": ["password"]`).
    fn path_value_is_secret(&self, p: &Value) -> bool {
        match p {
            // Any mention at all: a path with an unbalanced or quoted `[` cannot be trusted to
            // name only what it seems to.
            Value::String(s) => self.is_secret_path(s) || self.mentions_secret(s),
            Value::Array(a) => a.iter().any(|v| self.path_value_is_secret(v)),
            Value::Object(o) => o.values().any(|v| self.path_value_is_secret(v)),
            _ => false,
        }
    }

    /// Replace every secret value in a JSON document, including PATCH operations whose `path`
    /// names a secret.
    pub fn redact_json(&self, v: &mut Value) {
        self.redact_under(v, None)
    }

    /// Redact a value held by attribute `parent` (a change's `old`/`new`, a PATCH `value`),
    /// so that dotted paths (`addresses.streetAddress`) apply to its sub-attributes.
    pub fn redact_value_of(&self, parent: &str, v: &mut Value) {
        let plain = parent.split('[').next().unwrap_or(parent);
        let attr = plain.rsplit(':').next().unwrap_or(plain);
        self.redact_under(v, Some(&fold_name(attr)))
    }

    fn redact_under(&self, v: &mut Value, parent: Option<&str>) {
        match v {
            Value::Object(map) => {
                let path_attr = map
                    .iter()
                    .find(|(k, _)| fold_name(k) == "path")
                    .and_then(|(_, p)| p.as_str())
                    .map(|p| {
                        let plain = p.split('[').next().unwrap_or(p);
                        fold_name(plain.rsplit(':').next().unwrap_or(plain))
                    });
                // Any `path` key (a client may send several, differently cased) naming a secret
                // makes every `value` secret.
                let secret_path = map
                    .iter()
                    .filter(|(k, _)| fold_name(k) == "path")
                    .any(|(_, p)| self.path_value_is_secret(p));
                for (k, child) in map.iter_mut() {
                    let key = fold_name(k);
                    let by_path = secret_path && key == "value";
                    // A search filter that names a secret carries its value; so does a PATCH
                    // path with a value filter that names one (`emails[password eq "…"]`).
                    let by_filter = (key == "filter"
                        || (key == "path"
                            && child.as_str().is_some_and(|p| {
                                p.contains(['[', '"', '\'', ' ']) && !self.is_plain_secret(p)
                            })))
                        && child.as_str().is_some_and(|f| self.mentions_secret(f));
                    let dotted = !self.paths.is_empty()
                        && parent.is_some_and(|p| self.paths.contains(&format!("{p}.{key}")));
                    if (by_path || by_filter || dotted || self.is_secret_path(k))
                        && !child.is_null()
                    {
                        // A filter is kept whole neither way: it quotes more than the secret.
                        *child = if by_filter {
                            Value::String(REDACTED.into())
                        } else {
                            self.mask(child)
                        };
                    } else if self.paths.is_empty() {
                        self.redact_under(child, None);
                    } else {
                        // What this key holds is under it; a PATCH value is under its path;
                        // an extension object holds top-level attributes.
                        let next = if key == "value" && path_attr.is_some() {
                            path_attr.clone()
                        } else if key.starts_with("urn:") {
                            None
                        } else {
                            Some(key.clone())
                        };
                        self.redact_under(child, next.as_deref());
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_under(i, parent)),
            // A string holding JSON (double encoding) is redacted as that JSON.
            Value::String(s) => {
                if let Some(mut inner) = embedded_json(s) {
                    let before = inner.clone();
                    self.redact_json(&mut inner);
                    if inner != before {
                        *s = inner.to_string();
                    }
                } else if s.trim_start().starts_with(['{', '[']) && self.mentions_secret(s) {
                    // Looks like JSON, does not parse, names a secret: as malformed bodies are.
                    *s = self.redact_text(s);
                }
            }
            _ => {}
        }
    }

    /// Whether text mentions a secret attribute anywhere, after undoing JSON `\uXXXX` and URL
    /// `%XX` escapes (so `pass\u0077ord` and `pass%77ord` count).
    pub fn mentions_secret(&self, text: &str) -> bool {
        let decoded = decode_for_detection(text);
        self.names.iter().any(|n| {
            let n = n.as_bytes();
            !n.is_empty() && decoded.windows(n.len()).any(|w| w == n)
        })
    }

    /// Text that could not be parsed as JSON (malformed, form-encoded, or too large to parse) is
    /// kept only when it mentions no secret attribute at all; otherwise it is replaced whole.
    /// Structure cannot be trusted in such text, so no attempt is made to cut out just the value.
    pub fn redact_text(&self, text: &str) -> String {
        if self.mentions_secret(text) {
            format!(
                "{REDACTED}: {} bytes that could not be parsed as JSON and mention a secret attribute",
                text.len()
            )
        } else {
            text.to_string()
        }
    }

    /// Redact these header names too (any case).
    pub fn with_headers(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.headers
            .extend(names.into_iter().map(|n| n.trim().to_ascii_lowercase()));
        self
    }

    /// A query string as an event keeps it: the value of every parameter whose name carries a
    /// credential (`access_token`, `token`, `api_key`, `client_secret`, `password`, `code`…)
    /// redacted; the whole query redacted if it names a secret attribute (a filter on
    /// `password`).
    pub fn query(&self, q: &str) -> String {
        if self.mentions_secret(q) {
            return REDACTED.to_string();
        }
        q.split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let name = decode_component(k);
                let value = decode_component(v);
                let lower = fold_name(&value);
                let carries = CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
                    // A URL inside the value (`redirect=https://x/?access_token=…`).
                    || (value.contains(['?', '#', '@']) && self.url_in_header(&value) != value);
                if !v.is_empty() && (secret_query_name(&name) || carries) {
                    format!("{k}={REDACTED}")
                } else {
                    pair.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A URL as the audit log keeps it: no credentials in its authority, its query as
    /// [`query`](Self::query) keeps it.
    pub fn url(&self, value: &str) -> String {
        self.url_in_header(value)
    }

    /// A header value that holds a URL (`Referer`, `X-Original-URL`…) keeps its query only
    /// as [`query`](Self::query) would.
    fn url_in_header(&self, value: &str) -> String {
        // Credentials in the authority: `https://user:secret@host/`.
        if let Some((scheme, rest)) = value.split_once("://") {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            if let Some(at) = rest[..end].rfind('@') {
                let tail = self.url_in_header(&format!("{scheme}://{}", &rest[at + 1..]));
                let host = tail.split_once("://").map_or(tail.as_str(), |(_, h)| h);
                return format!("{scheme}://{REDACTED}@{host}");
            }
        }
        if !value.contains('?') {
            if let Some((base, frag)) = value.split_once('#') {
                return format!("{base}#{}", self.query(frag));
            }
        }
        match value.split_once('?') {
            Some((base, rest)) => {
                let (q, frag) = match rest.split_once('#') {
                    Some((q, f)) => (q, Some(f)),
                    None => (rest, None),
                };
                let mut out = format!("{base}?{}", self.query(q));
                if let Some(f) = frag {
                    out.push('#');
                    out.push_str(&self.query(f));
                }
                out
            }
            None => value.to_string(),
        }
    }

    /// A request path as an event keeps it: `;name=value` path parameters that carry a
    /// credential (`;jsessionid=…`) redacted.
    pub fn path(&self, path: &str) -> String {
        if !path.contains(';') {
            return path.to_string();
        }
        path.split('/')
            .map(|seg| {
                let mut parts = seg.split(';');
                let head = parts.next().unwrap_or_default().to_string();
                parts.fold(head, |mut acc, p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    acc.push(';');
                    if !v.is_empty() && secret_query_name(&decode_component(k)) {
                        acc.push_str(&format!("{k}={REDACTED}"));
                    } else {
                        acc.push_str(p);
                    }
                    acc
                })
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Header map for an event: lower-cased names, credentials redacted.
    pub fn headers<'a, I>(&self, headers: I) -> Map<String, Value>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut map = Map::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = if secret_name(&name) || self.headers.contains(&name) {
                REDACTED.to_string()
            } else {
                self.url_in_header(value)
            };
            map.insert(name, Value::String(value));
        }
        map
    }

    /// A body as it goes into an event: parsed and redacted when it is JSON, redacted text when
    /// not, cut at `cap` bytes (then `truncated` is true and the body is the cut text).
    pub fn capture(&self, body: &[u8], cap: usize) -> (Value, bool) {
        if body.is_empty() {
            return (Value::Null, false);
        }
        if body.len() > PARSE_LIMIT.max(cap) {
            // Too large to parse for an event (a 100k-member group is 16 MB): only the head is
            // kept, as text, and only if it mentions no secret.
            let head = String::from_utf8_lossy(&body[..cap.min(body.len())]);
            let text = self.redact_text(&head);
            return (
                Value::String(crate::bound::head(&text, cap).to_string()),
                true,
            );
        }
        let parsed = serde_json::from_slice::<Value>(body).map(|v| match v {
            // A body that is a JSON string holding JSON is kept as that JSON; one holding
            // anything else is text, kept only if it names no secret.
            Value::String(s) => {
                embedded_json(&s).unwrap_or_else(|| Value::String(self.redact_text(&s)))
            }
            other => other,
        });
        let (value, text) = match parsed {
            Ok(mut v) => {
                self.redact_json(&mut v);
                let text = v.to_string();
                if depth(&v) > MAX_BODY_DEPTH {
                    (Value::String(text.clone()), text)
                } else {
                    (v, text)
                }
            }
            Err(_) => {
                let text = self.redact_text(&String::from_utf8_lossy(body));
                (Value::String(text.clone()), text)
            }
        };
        // Measured as stored: a text body's control bytes take six bytes each once escaped.
        let stored = match &value {
            Value::String(t) => crate::bound::json_len(t),
            _ => text.len(),
        };
        if stored <= cap {
            return (value, false);
        }
        (
            Value::String(crate::bound::head(&text, cap).to_string()),
            true,
        )
    }
}

/// Lower-cased ASCII bytes of `text` with `\uXXXX` and `%XX` escapes undone (non-ASCII
/// results become `?`): good enough to spot an attribute name however it was written.
fn decode_for_detection(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let hex = |from: usize, len: usize| {
        b.get(from..from + len)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'u')) if hex(i + 2, 4).is_some() => {
                let hi = hex(i + 2, 4).unwrap_or(0);
                // A surrogate pair (`\uD835\uDC29`) is one character.
                let lo = (0xD800..0xDC00).contains(&hi).then(|| {
                    (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                        .then(|| hex(i + 8, 4))
                        .flatten()
                        .filter(|lo| (0xDC00..0xE000).contains(lo))
                });
                let (c, step) = match lo.flatten() {
                    Some(lo) => (
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                        12,
                    ),
                    None => (char::from_u32(hi), 6),
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.unwrap_or('?').encode_utf8(&mut buf).as_bytes());
                i += step;
            }
            // JSON's short escapes: `pass\tword` is `pass<TAB>word`, which folds to `password`.
            (b'\\', Some(&e)) if b"btnfr\"/\\".contains(&e) => {
                out.push(match e {
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    other => other,
                });
                i += 2;
            }
            (b'%', Some(_)) if hex(i + 1, 2).is_some() => {
                out.push(
                    hex(i + 1, 2)
                        .and_then(|v| u8::try_from(v).ok())
                        .unwrap_or(b'?'),
                );
                i += 3;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    // Then compared as names are: NFKC, no invisible characters, lower case.
    fold_name(&String::from_utf8_lossy(&out)).into_bytes()
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
            r#"{"userName":"m1","pass\u0077ord":"s3cret""#,
            r#"{"password":{"a":1,"b":"s3cret"}"#,
            "userName=f&password=s3cret",
            "userName=f&pass%77ord=s3cret",
        ];
        for c in cases {
            let out = r.redact_text(c);
            assert!(
                !out.contains("s3") && out.starts_with(REDACTED),
                "{c} -> {out}"
            );
        }
        assert_eq!(r.redact_text(r#"{"userName":"a""#), r#"{"userName":"a""#);
    }

    #[test]
    fn escaped_and_duplicated_keys_in_json() {
        let r = r();
        let mut v: Value = serde_json::from_str(
            r#"{"pass\u0077ord": "s3cret", "Operations": [
                {"op": "replace", "Path": "active", "path": "password", "value": "s3cret"}],
                "filter": "password eq \"s3cret\""}"#,
        )
        .unwrap();
        r.redact_json(&mut v);
        assert!(!v.to_string().contains("s3cret"), "{v}");
    }

    #[test]
    fn capture_caps_and_flags() {
        let r = r();
        let (v, t) = r.capture(br#"{"password":"s3cret","userName":"bob"}"#, 1024);
        assert!(!t);
        assert_eq!(v["password"], REDACTED);
        let (v, t) = r.capture(br#"{"userName":"bobbobbobbob"}"#, 10);
        assert!(t);
        // Cut as stored: the quotes count twice once escaped.
        let kept = v.as_str().unwrap();
        assert!(
            crate::bound::json_len(kept) <= 10 && kept.starts_with("{\"user"),
            "{kept}"
        );
        let (v, t) = r.capture(&[1u8; 1000], 60);
        assert!(
            t && crate::bound::json_len(v.as_str().unwrap()) <= 60,
            "{v}"
        );
        // Over the cap but parseable: redacted structurally, then cut.
        let big = format!(
            r#"{{"pass\u0077ord":"s3cret","pad":"{}"}}"#,
            "x".repeat(10_000)
        );
        let (v, t) = r.capture(big.as_bytes(), 100);
        assert!(t);
        let kept = v.as_str().unwrap();
        assert!(kept.len() <= 100 && !kept.contains("s3cret"), "{kept}");
        // Too large to parse: the head is kept only without secrets.
        let huge = format!(
            r#"{{"pad":"{}","pass\u0077ord":"s3cret"}}"#,
            "x".repeat(PARSE_LIMIT)
        );
        let (v, t) = r.capture(huge.as_bytes(), 64);
        assert!(t && v.as_str().unwrap().starts_with("{\"pad\""), "{v}");
        let huge = format!(
            r#"{{"pass\u0077ord":"s3cret","pad":"{}"}}"#,
            "x".repeat(PARSE_LIMIT)
        );
        let (v, _) = r.capture(huge.as_bytes(), 64);
        assert!(v.as_str().unwrap().starts_with(REDACTED), "{v}");
        assert_eq!(r.capture(b"", 10), (Value::Null, false));
    }

    #[test]
    fn credential_headers_and_query_parameters() {
        let r =
            Redactor::new(vec!["password".to_string()]).with_headers(vec!["X-Tenant-Pin".into()]);
        let h = r.headers([
            ("X-Auth-Token", "t1"),
            ("X-Client-Secret", "s1"),
            ("X-Password", "p1"),
            ("X-Session-Id", "x1"),
            ("x-tenant-pin", "1234"),
            ("User-Agent", "Okta"),
            ("Content-Type", "application/json"),
        ]);
        for k in [
            "x-auth-token",
            "x-client-secret",
            "x-password",
            "x-session-id",
            "x-tenant-pin",
        ] {
            assert_eq!(h[k], REDACTED, "{k}");
        }
        assert_eq!(h["user-agent"], "Okta");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(
            r.query("access_token=abc&count=10&token=t&api_key=k&client_secret=s&code=c&startIndex=1"),
            "access_token=[REDACTED]&count=10&token=[REDACTED]&api_key=[REDACTED]&client_secret=[REDACTED]&code=[REDACTED]&startIndex=1"
        );
        assert_eq!(
            r.query("access%5Ftoken=abc&x=1"),
            "access%5Ftoken=[REDACTED]&x=1"
        );
        assert_eq!(
            r.query("filter=userName%20eq%20%22a%22"),
            "filter=userName%20eq%20%22a%22"
        );
        assert_eq!(r.query("%zz=1&%=2&a%2=3"), "%zz=1&%=2&a%2=3");
        assert_eq!(r.query("filter=password%20eq%20%22x%22"), REDACTED);
        for q in [
            "code[]=x",
            "code%5B%5D=x",
            "code+=x",
            "pwd%00=x",
            "jwt=x",
            "client_assertion=x",
            "SAMLResponse=x",
            "RelayState=x",
            "code_verifier=x",
            "otp=x",
            "pin=x",
            "sid=x",
        ] {
            assert!(r.query(q).ends_with("=[REDACTED]"), "{q}: {}", r.query(q));
        }
        for q in [
            "filter=x",
            "count=1",
            "startIndex=1",
            "attributes=x",
            "excludedAttributes=x",
            "sortBy=x",
            "sortOrder=x",
            "cursor=x",
        ] {
            assert_eq!(r.query(q), q, "SCIM parameters stay");
        }
        let h = r.headers([
            ("Cf-Access-Jwt-Assertion", "j"),
            ("X-Amzn-Oidc-Data", "j"),
            ("X-Ms-Client-Principal", "j"),
            ("X-Forwarded-Client-Cert", "c"),
            ("DPoP", "d"),
            ("X-Otp", "o"),
            (
                "Referer",
                "https://idp.example/cb?access_token=t&x=1#id_token=u",
            ),
            ("Accept-Encoding", "gzip"),
            ("Content-Type", "application/json"),
            ("If-Match", "W/\"1\""),
            ("X-Forwarded-For", "10.0.0.1"),
        ]);
        for k in [
            "cf-access-jwt-assertion",
            "x-amzn-oidc-data",
            "x-ms-client-principal",
            "x-forwarded-client-cert",
            "dpop",
            "x-otp",
        ] {
            assert_eq!(h[k], REDACTED, "{k}");
        }
        assert_eq!(
            h["referer"],
            "https://idp.example/cb?access_token=[REDACTED]&x=1#id_token=[REDACTED]"
        );
        for k in [
            "accept-encoding",
            "content-type",
            "if-match",
            "x-forwarded-for",
        ] {
            assert_ne!(h[k], REDACTED, "{k} stays");
        }
    }

    #[test]
    fn look_alike_names_and_shapes() {
        let r = r();
        for p in [
            "password\u{0}",
            "pass\u{200b}word",
            "ｐａｓｓｗｏｒｄ",
            "PASSWORD\u{feff}",
            " password\t",
        ] {
            assert!(r.is_secret_path(p), "{p:?}");
        }
        let mut v = json!({"Operations": [{"op": "replace", "path": ["password"], "value": "s3"},
            {"op": "replace", "PATH": {"x": "password"}, "value": "s3"}],
            "nested": "{\"password\": \"s3\"}"});
        r.redact_json(&mut v);
        assert!(!v.to_string().contains("s3"), "{v}");
        let (v, _) = r.capture(br#""{\"userName\":\"a\",\"password\":\"s3\"}""#, 1024);
        assert_eq!(
            v["userName"], "a",
            "a double-encoded body is kept as its JSON"
        );
        assert_eq!(v["password"], REDACTED);
        assert!(r.mentions_secret(r#"{"pass\u200bword":"#));
        assert!(r.mentions_secret("ｐａｓｓｗｏｒｄ=1"));
    }

    #[test]
    fn dotted_paths() {
        let r = Redactor::new(["password", "addresses.streetAddress"]);
        assert!(r.is_secret_path("addresses.streetAddress"));
        assert!(r.is_secret_path("addresses[type eq \"work\"].streetAddress"));
        assert!(!r.is_secret_path("streetAddress"), "only under its parent");
        assert!(!r.is_secret_path("addresses"));
        let mut v = json!({"addresses": [{"streetAddress": "s1", "locality": "l"}], "streetAddress": "top",
            "Operations": [{"op": "add", "path": "addresses", "value": [{"streetAddress": "s2"}]}]});
        r.redact_json(&mut v);
        assert_eq!(v["addresses"][0]["streetAddress"], REDACTED);
        assert_eq!(v["addresses"][0]["locality"], "l");
        assert_eq!(v["streetAddress"], "top");
        assert_eq!(v["Operations"][0]["value"][0]["streetAddress"], REDACTED);
        let mut old = json!([{"streetAddress": "s3", "locality": "l"}]);
        r.redact_value_of("addresses", &mut old);
        assert_eq!(old[0]["streetAddress"], REDACTED);
    }

    #[test]
    fn headers() {
        let h = r().headers([("Authorization", "Bearer abc"), ("User-Agent", "Okta")]);
        assert_eq!(h["authorization"], REDACTED);
        assert_eq!(h["user-agent"], "Okta");
    }
}
