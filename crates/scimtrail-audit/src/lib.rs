//! The audit log's data: the event of schema v1, and the pure functions that fill and seal it.
//!
//! Main design choice: an event is *sealed* by the store inside the write transaction — only then
//! are `seq` and `leafHash` known. Sealing serialises the event (without `leafHash`) to RFC 8785
//! canonical JSON and hashes it as an RFC 6962 Merkle leaf, so the stored bytes are exactly the
//! bytes that were hashed and any later edit is detectable.
//!
//! Redaction is structural and happens before an event is built: secrets never enter an event.

pub mod diff;
pub mod event;
pub mod redact;
pub mod seal;

pub use diff::{diff, Change};
pub use event::{
    format_time, Actor, AuditEvent, Operation, Outcome, Payload, Target, ACTOR_ANONYMOUS,
    ACTOR_OPERATOR, ACTOR_SYSTEM, ACTOR_TOKEN,
};
pub use redact::{Redactor, REDACTED};
pub use seal::{leaf_hash, seal, SealError, Sealed};
