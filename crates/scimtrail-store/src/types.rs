//! Plain data passed across the store boundary.

use scimtrail_core::Filter;
use serde::Serialize;
use serde_json::Value;

/// A resource as stored: its stored form (`Normalized::resource` of the core, plus `members` for
/// a Group when loaded) and the bookkeeping the store owns.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub created: String,
    pub last_modified: String,
    pub data: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Replace,
    Delete,
}

/// One resource write. `data` is the full new stored form (for a Group including `members`),
/// `None` for a delete.
#[derive(Debug, Clone)]
pub struct ResourceWrite {
    pub tenant: String,
    pub resource_type: String,
    pub id: String,
    pub kind: WriteKind,
    /// The version the write was computed from (`None` for a create).
    pub expected_version: Option<i64>,
    /// Must be `expected_version + 1` (1 for a create).
    pub new_version: i64,
    /// RFC 3339 time of the write: `created` for a create, `lastModified` always.
    pub time: String,
    pub data: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub resource_type: String,
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub with_members: bool,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub total: usize,
    pub items: Vec<StoredResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    pub id: String,
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub resource_type: String,
    pub display: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventQuery {
    pub filter: Option<Filter>,
    pub count: usize,
    /// Continue after this `seq` (exclusive) in the chosen direction.
    pub after_seq: Option<u64>,
    pub ascending: bool,
}

#[derive(Debug, Clone)]
pub struct EventPage {
    pub items: Vec<Value>,
    /// `seq` of the last item when more may follow.
    pub next_seq: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub hash_hex: String,
    pub scopes: Vec<String>,
    pub tenant: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub tenant: String,
    pub created: String,
    pub revoked: Option<String>,
}
