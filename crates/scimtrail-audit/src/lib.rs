//! The audit log's data: the event of schema v1, and the pure functions that fill and seal it.
//!
//! Main design choice: an event is *sealed* by the store inside the write transaction — only then
//! are `seq` and `leafHash` known. Sealing turns the event into its commitment form (bodies and
//! change values replaced by salted digests, RFC 8785 bytes) and hashes that as an RFC 6962
//! Merkle leaf; the values themselves are a payload stored apart, so retention can drop them
//! while every root and signed checkpoint still verifies (`commitment`). The leaves form one
//! Merkle tree (`merkle`) whose heads are signed as C2SP checkpoints (`checkpoint`); `verify`
//! checks a whole log or an exported bundle (`bundle`).
//!
//! Redaction is structural and happens before an event is built: secrets never enter an event.

pub mod bound;
pub mod bundle;
pub mod checkpoint;
pub mod commitment;
pub mod diff;
pub mod event;
pub mod merkle;
pub mod redact;
pub mod verify;

pub use commitment::{leaf_hash, seal, SealError, Sealed, StoredPayload};
pub use diff::{diff, Change};
pub use event::{
    format_time, Actor, AuditEvent, Operation, Outcome, Payload, Target, ACTOR_ANONYMOUS,
    ACTOR_OPERATOR, ACTOR_SYSTEM, ACTOR_TOKEN,
};
pub use redact::{Redactor, REDACTED};
