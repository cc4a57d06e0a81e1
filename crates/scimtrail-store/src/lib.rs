//! The storage boundary of scimtrail.
//!
//! Main design choice: there is no way to write a resource without an audit event. Every write
//! method takes the [`AuditEvent`] and the implementation commits the resource row, its version
//! snapshot and the sealed event in one transaction — or none of them. Concurrency control is
//! optimistic: a replace or delete names the version it was computed from, and the store refuses
//! it with [`StoreError::VersionConflict`] if the resource moved on (a real compare-and-swap, the
//! base for `If-Match`).

mod repr;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

pub use repr::{etag, into_representation, representation, user_groups_json};
pub use types::*;

use async_trait::async_trait;
use scimtrail_audit::AuditEvent;
use serde_json::Value;

/// A store failure. Mapped to a SCIM error in one place in the server.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("resource not found")]
    NotFound,
    /// The resource's version is not the one the write was computed from.
    #[error("version conflict: resource is at version {current}")]
    VersionConflict { current: i64 },
    /// A uniqueness constraint (userName) was violated.
    #[error("{0}")]
    Uniqueness(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A query that would have to examine more than the store is willing to.
    #[error("{0}")]
    TooMany(String),
    /// A tree size, leaf index or proof range outside the log.
    #[error("{0}")]
    OutOfRange(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Apply a resource write and append its event, atomically. Returns the sealed event.
    ///
    /// Refused writes change nothing and consume no `seq`: [`StoreError::NotFound`] for a
    /// replace or delete of an id that is unknown, deleted or of another resource type;
    /// [`StoreError::VersionConflict`] when `expected_version` is not the current one;
    /// [`StoreError::Uniqueness`] for a userName (compared ignoring case) another live User of
    /// the tenant holds; [`StoreError::Backend`] for a create naming an id that exists, live or
    /// deleted (tombstoned ids are never reused).
    ///
    /// A delete is refused with [`StoreError::VersionConflict`] (of the deleted resource)
    /// while the resource is still a member of a live Group: its removal from each of them
    /// must be written with it, through [`write_all`](Store::write_all), so that every Group
    /// it leaves gets a version and an event of its own.
    async fn write(&self, write: ResourceWrite, event: AuditEvent) -> StoreResult<AuditEvent>;

    /// Several resource writes and their events in one transaction: all of them or none,
    /// the events at consecutive `seq`s in the order given, after `head` (an event of its own,
    /// such as the revert that the writes carry out) when there is one. Each write is checked
    /// as [`write`](Store::write) checks it, against the state the writes before it left. An
    /// [`Undelete`](WriteKind::Undelete) needs a deleted resource at `expected_version`.
    async fn write_all(
        &self,
        head: Option<AuditEvent>,
        writes: Vec<(ResourceWrite, AuditEvent)>,
    ) -> StoreResult<Vec<AuditEvent>>;

    /// Append an event that records no resource change (reads, failures, auth failures).
    async fn append_event(&self, event: AuditEvent) -> StoreResult<AuditEvent>;

    /// A live (not deleted) resource. Group members are loaded only when `with_members`.
    async fn get(
        &self,
        tenant: &str,
        resource_type: &str,
        id: &str,
        with_members: bool,
    ) -> StoreResult<Option<StoredResource>>;

    /// A page of live resources of one type, in a stable order (creation order).
    async fn list(&self, tenant: &str, query: &ListQuery) -> StoreResult<Page>;

    /// The groups each of `member_ids` is a direct member of (for the derived User `groups`).
    async fn groups_of(
        &self,
        tenant: &str,
        member_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<GroupRef>>>;

    /// For each id that names a live resource: its type and display name. Used to check and fill
    /// in Group members.
    async fn lookup(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, ResourceRef>>;

    /// How many members a Group has, counting at most `limit` (a cheap size check).
    async fn member_count(&self, tenant: &str, group_id: &str, limit: usize) -> StoreResult<usize>;

    /// The current members of a Group among `ids` (whether or not the member still exists).
    async fn members(
        &self,
        tenant: &str,
        group_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<Member>>;

    /// The versions of a resource (live or deleted) after version `after`, oldest first, at
    /// most `limit`. Empty for an unknown id.
    async fn versions(
        &self,
        tenant: &str,
        id: &str,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<VersionRecord>>;

    /// The latest version of a resource, live or deleted (its type is in the record).
    async fn latest_version(&self, tenant: &str, id: &str) -> StoreResult<Option<VersionRecord>>;

    /// A resource as it was at `version` (a Group without its members).
    async fn snapshot(&self, tenant: &str, id: &str, version: i64)
        -> StoreResult<Option<Snapshot>>;

    /// A Group's members exactly as a GET showed them right after `version` was written:
    /// members whose resource was deleted at that time are not among them. For a Group that
    /// is itself deleted, ask for a version before its deletion.
    async fn members_at(
        &self,
        tenant: &str,
        group_id: &str,
        version: i64,
    ) -> StoreResult<Vec<Member>>;

    /// A Group's member changes of versions `from..=to`, in version order.
    async fn member_changes(
        &self,
        tenant: &str,
        group_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<MemberChange>>;

    /// The events at these `seq`s (in `seq` order; unknown ones left out).
    async fn events_at(&self, tenant: &str, seqs: &[u64]) -> StoreResult<Vec<Value>>;

    /// Audit events, newest first unless `query.ascending`.
    async fn events(&self, tenant: &str, query: &EventQuery) -> StoreResult<EventPage>;

    /// Count the events a filter matches, per time bucket and per value of the `by`
    /// attributes. The filter must be bounded as for [`events`](Store::events); a window of
    /// more than `max_events` events is [`StoreError::TooMany`].
    async fn event_stats(&self, tenant: &str, query: &StatsQuery) -> StoreResult<Vec<StatsRow>>;

    /// One audit event (with its `leafHash`) by id.
    async fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Value>>;

    /// The commitment bytes and leaf hash of one event, by id.
    async fn leaf(&self, tenant: &str, id: &str) -> StoreResult<Option<LogRow>>;

    /// The whole log in `seq` order (all tenants), for verification and export: at most
    /// `limit` rows after `after` (exclusive), optionally only those matching `filter`.
    async fn log_rows(
        &self,
        filter: Option<&scimtrail_core::Filter>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<LogRow>>;

    /// Check the leaves with `seq` in `from..to` where they are read (no copy of their
    /// bytes leaves the backend): each with `scimtrail_audit::verify::check_leaf`, against its
    /// stored leaf hash, payload and index columns; plus the stored tree hashes of the range.
    /// Several ranges may be checked at once, each on its own connection.
    async fn check_leaves(
        &self,
        from: u64,
        to: u64,
    ) -> StoreResult<scimtrail_audit::verify::CheckedChunk>;

    /// `seq`s of stored payloads at or after `from` (up to `limit`): a verifier looks for
    /// payloads of events that do not exist.
    async fn payload_seqs_from(&self, from: u64, limit: usize) -> StoreResult<Vec<u64>>;

    /// Stored tree hashes with index in `from..to` (see `scimtrail_audit::merkle`), in order.
    async fn stored_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<(u64, Vec<u8>)>>;

    /// The number of leaves in the tree (= the next `seq`).
    async fn tree_size(&self) -> StoreResult<u64>;

    /// The root of the tree of the first `size` leaves, from the stored tree.
    async fn tree_root(&self, size: u64) -> StoreResult<[u8; 32]>;

    /// RFC 9162 inclusion proof of leaf `seq` in the tree of `size` ([`StoreError::OutOfRange`]
    /// if `seq >= size` or `size` is beyond the tree).
    async fn inclusion_proof(&self, seq: u64, size: u64) -> StoreResult<Vec<[u8; 32]>>;

    /// [`inclusion_proof`](Self::inclusion_proof) of many leaves in one tree, in one read.
    async fn inclusion_proofs(&self, seqs: &[u64], size: u64) -> StoreResult<Vec<Vec<[u8; 32]>>>;

    /// RFC 9162 consistency proof between the trees of `from` and `to` leaves.
    async fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Vec<[u8; 32]>>;

    /// Sign a checkpoint over the whole committed tree, after making it durable, unless the
    /// newest checkpoint already covers it (then `None`).
    async fn checkpoint(&self, sign: CheckpointSigner) -> StoreResult<Option<StoredCheckpoint>>;

    /// Stored checkpoints, newest first, of size below `before` if given.
    async fn checkpoints(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> StoreResult<Vec<StoredCheckpoint>>;

    /// Remove the payloads of events older than `before` (RFC 3339), keeping their commitment
    /// bytes, and append `event` (the prune's own record) in the same transaction. A dry run
    /// removes nothing but still records its event.
    async fn prune(
        &self,
        before: &str,
        dry_run: bool,
        event: AuditEvent,
    ) -> StoreResult<PruneReport>;

    /// Tokens: stored as SHA-256 hashes only. Creating and revoking one is an administrative
    /// act: its event is committed with it, in one transaction, with the token's id and name
    /// as the event's `target.id` and `target.display` (never its value or hash).
    async fn token_count(&self) -> StoreResult<i64>;
    async fn create_token(&self, token: NewToken, event: AuditEvent) -> StoreResult<TokenInfo>;
    async fn find_token(&self, hash_hex: &str) -> StoreResult<Option<TokenInfo>>;
    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>>;
    /// Revoke the active token with this id, or the one active token with this name. Several
    /// active tokens of that name are [`Revoked::Ambiguous`]: nothing is revoked.
    async fn revoke_token(&self, id_or_name: &str, event: AuditEvent) -> StoreResult<Revoked>;

    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The size of the log (its next `seq`), updated as this process commits events, for
    /// waking a live tail on commit. Events that other processes commit may show up only on
    /// the next poll, so followers also look again now and then.
    fn log_size(&self) -> tokio::sync::watch::Receiver<u64>;

    /// The sizes of the write batches so far, where the backend batches writes.
    fn batch_sizes(&self) -> Option<BatchSizes> {
        None
    }

    /// How many bytes the database holds (resources, log, tree and payloads), where the
    /// backend can tell cheaply.
    async fn database_bytes(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }
}
