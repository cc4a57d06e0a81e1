-- Leaf format v1 (the tamper-evident log). `audit_events.commitment` holds the exact commitment
-- bytes (RFC 8785) that `leaf_hash` = SHA-256(0x00 || commitment) was computed over; bodies and
-- change values live in `audit_payloads`, so a prune removes them without touching any leaf.
ALTER TABLE audit_events RENAME COLUMN body TO commitment;

-- The payload of an event: its salt and the JCS bytes of each digested value, concatenated in
-- digest order. Pruned events have no row.
CREATE TABLE audit_payloads (
    seq  INTEGER PRIMARY KEY,
    salt BLOB NOT NULL,
    vals TEXT NOT NULL
);

-- The RFC 6962 tree as stored hashes (golang.org/x/mod/sumdb/tlog indexing): each leaf appends
-- the hashes of the complete subtrees it finishes, in the transaction that appends the leaf.
CREATE TABLE merkle_hashes (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

-- Signed checkpoints (C2SP signed notes over tlog-checkpoint bodies).
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    time TEXT    NOT NULL,
    root BLOB    NOT NULL,
    note TEXT    NOT NULL
);

CREATE TABLE log_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Events written before leaf format v1 are re-sealed once, at the next start, in Rust
-- (`sqlite/upgrade.rs`). That is allowed only because no checkpoint existed before v1.
INSERT INTO log_meta (key, value)
    SELECT 'leaf_upgrade', 'pending' WHERE EXISTS (SELECT 1 FROM audit_events);
