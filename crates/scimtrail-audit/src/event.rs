//! Audit event schema v1. Field names are a public contract: extend, never rename.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::diff::Change;

pub const ACTOR_TOKEN: &str = "token";
pub const ACTOR_OPERATOR: &str = "operator";
pub const ACTOR_SYSTEM: &str = "system";
pub const ACTOR_ANONYMOUS: &str = "anonymous";

/// One audit event. Every field is always serialised (absent values as `null`), so consumers can
/// rely on the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// UUIDv7, time-ordered.
    pub id: String,
    /// Position in the log; assigned by the store when the event is sealed.
    pub seq: Option<u64>,
    /// RFC 3339 UTC with microseconds.
    pub time: String,
    pub tenant: String,
    pub request_id: String,
    pub actor: Actor,
    pub action: String,
    pub operation: Operation,
    pub target: Target,
    pub outcome: Outcome,
    pub latency_ms: f64,
    pub changes: Vec<Change>,
    pub request: Payload,
    pub response: Payload,
    pub parent_id: Option<String>,
    /// base64 RFC 6962 leaf hash; set by sealing, not part of the hashed bytes.
    pub leaf_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// token | operator | system | anonymous
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    /// The recognised identity provider, from the User-Agent.
    pub client: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// create | replace | patch | delete | get | list | search | bulk (null outside SCIM)
    pub scim: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub system: String,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub id: Option<String>,
    pub external_id: Option<String>,
    pub display: Option<String>,
    pub version_before: Option<i64>,
    pub version_after: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// success | failure
    pub result: String,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
}

impl Outcome {
    pub fn from_status(status: u16, scim_type: Option<String>, detail: Option<String>) -> Self {
        let result = if status < 400 { "success" } else { "failure" };
        Outcome {
            result: result.into(),
            status,
            scim_type,
            detail,
        }
    }
}

/// A redacted request or response: headers, body (JSON, or a string when it was not JSON), and
/// whether the body was cut at the configured cap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
    pub truncated: bool,
}

const TIME_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// RFC 3339, UTC, exactly six fractional digits: the one time format of the audit log, which
/// also makes stored times sort lexicographically.
pub fn format_time(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(TIME_FORMAT)
        .unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_has_microseconds_and_z() {
        let t = time::macros::datetime!(2026-11-28 13:32:22.123456789 UTC);
        assert_eq!(format_time(t), "2026-11-28T13:32:22.123456Z");
        let t = time::macros::datetime!(2026-11-28 15:32:22 +2);
        assert_eq!(format_time(t), "2026-11-28T13:32:22.000000Z");
    }
}
