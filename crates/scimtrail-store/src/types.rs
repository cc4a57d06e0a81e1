//! Plain data passed across the store boundary.

use scimtrail_core::{AttrPath, Filter};
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
    /// Bring a deleted resource back under its id, with `data` as its state.
    Undelete,
}

/// One resource write. `data` is the full new stored form, `None` for a delete.
///
/// A Group's members change in one of two ways: with `members: None`, `data["members"]` is the
/// complete new member list (absent = none) and the store works out the difference; with
/// `members: Some(delta)`, only the delta is applied and `data` carries no `members` — the path
/// that keeps a member add or remove cheap in a group of 100k. Either way the store records the
/// applied difference per version, and version snapshots of a Group hold no member list.
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
    /// For a Group: a member delta instead of a full member list (see above).
    pub members: Option<MemberDelta>,
}

/// Members to add (or update) and member ids to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDelta {
    pub add: Vec<Member>,
    pub remove: Vec<String>,
}

/// One Group member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub value: String,
    /// `User` or `Group`.
    pub resource_type: String,
    pub display: Option<String>,
}

impl Member {
    /// The member as it appears in a Group's `members` (without `$ref`).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("value".into(), Value::String(self.value.clone()));
        if let Some(d) = &self.display {
            m.insert("display".into(), Value::String(d.clone()));
        }
        m.insert("type".into(), Value::String(self.resource_type.clone()));
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub resource_type: String,
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub with_members: bool,
    /// `sortBy` / `sortOrder`; without it, resources come in the order they were created.
    pub sort: Option<Sort>,
    /// Without `sort`: the page starts after the resource with this position (a cursor, RFC
    /// 9865), and `start_index` is ignored. Positions come from [`Page::positions`].
    pub after: Option<i64>,
}

/// A list's order (RFC 7644 §3.4.2.3). Ties, and resources without a value, keep the order
/// they were created in; a missing value sorts last when ascending, first when descending.
#[derive(Debug, Clone)]
pub struct Sort {
    pub by: AttrPath,
    pub descending: bool,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub total: usize,
    pub items: Vec<StoredResource>,
    /// The position of each item in the order of creation, for [`ListQuery::after`].
    pub positions: Vec<i64>,
    /// The page stopped short of `count` at [`PAGE_MAX_BYTES`]: more results follow it.
    pub cut: bool,
}

/// The most bytes of stored JSON (members included) one list page reads into memory. A page
/// that would hold more ends early, at least one resource in; RFC 7644 §3.4.2.4 lets a page
/// hold fewer than `count` (`itemsPerPage` says how many) and the client asks for the rest.
pub const PAGE_MAX_BYTES: usize = 8 * 1024 * 1024;

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
    /// Accept a filter that neither an index nor a time or `seq` window bounds (a live tail,
    /// which only reads what is new). Every page is bounded by the store's scan budget either
    /// way; without this, such a filter is refused with `InvalidQuery`.
    pub unbounded: bool,
}

/// How many jobs the store's write transactions held (group commit): a histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSizes {
    /// `(upper bound, batches of at most that many jobs)`, cumulative, bounds ascending.
    pub buckets: Vec<(u64, u64)>,
    pub sum: u64,
    pub count: u64,
}

/// What [`crate::Store::event_stats`] counts.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub filter: Option<Filter>,
    /// Bucket width in seconds (buckets start at multiples of it since the Unix epoch); `None`
    /// counts the whole window as one.
    pub bucket_secs: Option<u64>,
    /// Event attributes to group by (`outcome.scimType`, `actor.client`…).
    pub by: Vec<AttrPath>,
    /// The most events the window may hold.
    pub max_events: u64,
}

/// One count: its bucket's start (Unix seconds), the values of the `by` attributes in order.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub bucket: Option<i64>,
    pub keys: Vec<Value>,
    pub count: u64,
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

/// What a revoke did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    Token(TokenInfo),
    /// No active token has that id or name.
    NotFound,
    /// Several active tokens have that name; revoke one by id.
    Ambiguous(Vec<TokenInfo>),
}

/// A signed checkpoint as stored: the tree head and its C2SP signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    /// RFC 3339 time of signing.
    pub time: String,
    /// The C2SP signed note, exactly as published.
    pub note: String,
}

/// Signs a tree head `(size, root)` and answers the signed note. Called by the store only
/// over state that is committed and durable.
pub type CheckpointSigner =
    Box<dyn FnOnce(u64, [u8; 32]) -> Result<String, String> + Send + 'static>;

/// One leaf of the log: the exact commitment bytes and, while it survives, the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub seq: u64,
    pub tenant: String,
    pub commitment: String,
    /// The stored leaf hash (a verifier recomputes it).
    pub leaf_hash: Vec<u8>,
    pub payload: Option<scimtrail_audit::StoredPayload>,
}

/// What a prune removed, or would remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Payloads removed (or, in a dry run, that would be).
    pub payloads: u64,
    /// The oldest and newest `seq` among them.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub dry_run: bool,
    /// The `seq` of the prune's own event.
    pub event_seq: Option<u64>,
}

/// One recorded version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    /// RFC 3339 time of the write.
    pub time: String,
    /// A tombstone: the resource was deleted by this version.
    pub deleted: bool,
    /// The `seq` of the event that made this version.
    pub event_seq: u64,
}

/// A resource as it was at one version: its stored form (no Group members; see
/// [`Store::members_at`](crate::Store::members_at)), `None` for a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub record: VersionRecord,
    pub data: Option<Value>,
}

/// One member change of a Group, at the version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub version: i64,
    /// `add` (also a change of type or display) or `remove`.
    pub op: String,
    pub member: Member,
}
