//! Attribute paths (RFC 7644 §3.10) and PATCH paths (RFC 7644 §3.5.2).

use std::fmt;

use crate::error::{ScimError, ScimResult};
use crate::filter::Filter;

/// Longest path accepted (a PATCH path may embed a filter).
pub const MAX_PATH_LEN: usize = 8192;

/// attrPath of RFC 7644 §3.10: optional schema URN prefix, attribute name, optional sub-attribute.
/// "name.givenName" -> {urn: None, name: "name", sub: Some("givenName")}
/// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber" -> {urn: Some("urn:...:User"), name: "employeeNumber", sub: None}
/// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" -> urn, "manager", Some("value").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA; "$ref" is also accepted.
pub(crate) fn is_attr_name(s: &str) -> bool {
    let body = s.strip_prefix('$').unwrap_or(s);
    let mut chars = body.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A URN prefix: non-empty, no whitespace or filter/path punctuation.
fn is_urn(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(':')
        && s.chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '[' | ']' | '(' | ')' | '"'))
}

impl AttrPath {
    /// A path with neither URN nor sub-attribute.
    pub fn simple(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.to_string(),
            sub: None,
        }
    }

    /// Parse `[URN ":"] name ["." sub]`; errors are `invalidPath`.
    pub fn parse(s: &str) -> ScimResult<AttrPath> {
        if s.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_path("attribute path is too long"));
        }
        let bad =
            || ScimError::invalid_path(format!("'{}' is not a valid attribute path", short(s)));
        let (urn, rest) = match s.rfind(':') {
            Some(i) => {
                let (u, r) = (s.get(..i).unwrap_or(""), s.get(i + 1..).unwrap_or(""));
                if !is_urn(u) {
                    return Err(bad());
                }
                (Some(u.to_string()), r)
            }
            None => (None, s),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, sub)) => (n, Some(sub)),
            None => (rest, None),
        };
        if !is_attr_name(name) || !sub.is_none_or(is_attr_name) {
            return Err(bad());
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The path with the sub-attribute removed.
    pub fn top(&self) -> AttrPath {
        AttrPath {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub: None,
        }
    }

    /// `urn ":" name` — what a path naming a whole extension (e.g. the enterprise URN) looks like
    /// once split at its last colon.
    pub fn as_urn(&self) -> Option<String> {
        match (&self.urn, &self.sub) {
            (Some(u), None) => Some(format!("{u}:{}", self.name)),
            _ => None,
        }
    }
}

/// At most 64 characters of user input, for error details about syntax (never attribute values).
pub(crate) fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// PATCH path (RFC 7644 §3.5.2): attrPath, or valuePath with optional trailing ".subAttr".
/// When `filter` is Some, `attr.sub` is None and `sub` holds the part after "].".
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub: Option<String>,
}

/// Index of the `]` closing the `[` at byte 0 of `s`, skipping string literals.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' => depth += 1,
            ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

impl PatchPath {
    /// Parse a PATCH path; errors (including a bad filter inside brackets) are `invalidPath`.
    pub fn parse(s: &str) -> ScimResult<PatchPath> {
        if s.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_path("path is too long"));
        }
        let Some(open) = s.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse(s)?,
                filter: None,
                sub: None,
            });
        };
        let attr = AttrPath::parse(s.get(..open).unwrap_or(""))?;
        if attr.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{}': a value filter must follow a top-level attribute",
                short(s)
            )));
        }
        let rest = s.get(open..).unwrap_or("");
        let close = closing_bracket(rest)
            .ok_or_else(|| ScimError::invalid_path(format!("'{}': missing ']'", short(s))))?;
        let inner = rest.get(1..close).unwrap_or("");
        let filter = Filter::parse_value_filter(inner).map_err(|e| {
            ScimError::invalid_path(format!("invalid filter in path: {}", e.detail))
        })?;
        let after = rest.get(close + 1..).unwrap_or("");
        let sub = if after.is_empty() {
            None
        } else {
            match after.strip_prefix('.') {
                Some(sub) if is_attr_name(sub) => Some(sub.to_string()),
                _ => {
                    return Err(ScimError::invalid_path(format!(
                        "'{}': unexpected text after ']'",
                        short(s)
                    )))
                }
            }
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
