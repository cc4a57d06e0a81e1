//! The log verifier: streams every leaf once, in `seq` order, and checks that
//! - `seq` runs 0, 1, 2… without a gap;
//! - each leaf's commitment bytes are a v1 commitment naming its own `seq`, and hash to the
//!   stored leaf hash;
//! - each surviving payload matches the digests of its commitment;
//! - the tree rebuilt from the leaves has, at every checkpoint's size, that checkpoint's root
//!   (checkpoints from the database and from the file outside it alike), and no checkpoint
//!   covers more leaves than the log holds.
//!
//! It stops at the first failure and names it; memory stays O(log n) plus the checkpoints.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;

use crate::commitment::{leaf_hash, LeafView, StoredPayload};
use crate::merkle::{CompactRange, Hash};

/// A checkpoint to hold the log to: where it came from, its size and root (its signature is
/// checked by whoever loads it).
#[derive(Debug, Clone)]
pub struct Expected {
    pub source: String,
    pub size: u64,
    pub root: Hash,
}

/// What went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{what}", seq.map(|s| format!("seq {s}: ")).unwrap_or_default())]
pub struct Failure {
    /// The first bad `seq`, when one can be named.
    pub seq: Option<u64>,
    pub what: String,
}

fn fail(seq: Option<u64>, what: impl Into<String>) -> Failure {
    Failure {
        seq,
        what: what.into(),
    }
}

/// One leaf checked by [`check_leaf`], ready for [`LogVerifier::push_checked`].
#[derive(Debug, Clone)]
pub struct CheckedLeaf {
    pub seq: u64,
    pub leaf: Result<Checked, Failure>,
}

/// What the in-order checks need of a leaf checked on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub hash: Hash,
    /// The event's time, when its payload is gone: a later prune must cover it.
    pub pruned_time: Option<String>,
    /// For a prune's own event: the cutoff it removed payloads before.
    pub prune_before: Option<String>,
}

/// A run of checked leaves with the stored tree hashes of its `seq` range, as a store hands
/// them to the verifier: `stored` are `(index, hash)` from `first_index` on.
#[derive(Debug, Clone, Default)]
pub struct CheckedChunk {
    pub leaves: Vec<CheckedLeaf>,
    pub first_index: u64,
    pub stored: Vec<(u64, Vec<u8>)>,
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub events: u64,
    pub payloads: u64,
    pub pruned: u64,
    pub checkpoints: u64,
    /// The largest checkpoint size verified.
    pub checkpointed: u64,
    pub root: String,
}

pub struct LogVerifier {
    range: CompactRange,
    /// Checkpoints by size, still to be reached.
    pending: BTreeMap<u64, Vec<Expected>>,
    /// The size of the last checkpoint verified.
    last_good: u64,
    checked: u64,
    payloads: u64,
    pruned: u64,
    /// The newest (by time) pruned event no later prune has covered yet: every event whose
    /// payload is gone must be older than the cutoff of a prune recorded after it.
    uncovered: Option<(u64, String)>,
}

impl LogVerifier {
    pub fn new(checkpoints: impl IntoIterator<Item = Expected>) -> Self {
        let mut pending: BTreeMap<u64, Vec<Expected>> = BTreeMap::new();
        for c in checkpoints {
            pending.entry(c.size).or_default().push(c);
        }
        let mut v = LogVerifier {
            range: CompactRange::new(),
            pending,
            last_good: 0,
            checked: 0,
            payloads: 0,
            pruned: 0,
            uncovered: None,
        };
        // A checkpoint of the empty tree is checked before any leaf.
        let _ = v.reach();
        v
    }

    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Check the checkpoints of the current size.
    fn reach(&mut self) -> Result<(), Failure> {
        let size = self.range.size();
        if let Some(list) = self.pending.remove(&size) {
            let root = self.range.root();
            for c in list {
                if c.root != root {
                    return Err(fail(
                        None,
                        format!(
                            "the tree of the first {size} events does not have the root of {} \
                             ({} instead of {}): an event below seq {size} (after seq {}) was \
                             changed, removed, inserted or reordered",
                            c.source,
                            B64.encode(root),
                            B64.encode(c.root),
                            self.last_good.saturating_sub(1)
                        ),
                    ));
                }
                self.checked += 1;
            }
            self.last_good = size;
        }
        Ok(())
    }

    /// The next leaf: its row `seq`, commitment bytes, the leaf hash stored beside them (if the
    /// store keeps one) and its payload. Returns the tree hashes the leaf completes (leaf
    /// first), for comparison with a stored tree.
    pub fn push(
        &mut self,
        seq: u64,
        commitment: &[u8],
        stored_hash: Option<&[u8]>,
        payload: Option<&StoredPayload>,
    ) -> Result<Vec<Hash>, Failure> {
        self.expect(seq)?;
        let text = std::str::from_utf8(commitment)
            .map_err(|_| fail(Some(seq), "commitment bytes are not UTF-8"))?;
        let parts = payload.map(|p| (p.salt.as_slice(), p.values.as_bytes()));
        let leaf = check_leaf(seq, text, stored_hash, parts, None)?;
        self.push_checked(seq, &leaf)
    }

    /// `seq` must be the next leaf.
    pub fn expect(&self, seq: u64) -> Result<(), Failure> {
        let expected = self.range.size();
        if seq == expected {
            return Ok(());
        }
        Err(if seq > expected {
            fail(
                Some(expected),
                format!(
                    "missing: the log jumps from seq {} to seq {seq}",
                    expected as i128 - 1
                ),
            )
        } else {
            fail(
                Some(seq),
                format!("out of order or repeated (expected seq {expected})"),
            )
        })
    }

    /// [`push`](Self::push) for a leaf already checked by [`check_leaf`] (which is pure, so
    /// many leaves can be checked in parallel; this part runs in `seq` order).
    pub fn push_checked(&mut self, seq: u64, leaf: &Checked) -> Result<Vec<Hash>, Failure> {
        self.expect(seq)?;
        match &leaf.pruned_time {
            None => self.payloads += 1,
            Some(t) => {
                self.pruned += 1;
                if self.uncovered.as_ref().is_none_or(|(_, max)| t > max) {
                    self.uncovered = Some((seq, t.clone()));
                }
            }
        }
        if let (Some(before), Some((_, max))) = (&leaf.prune_before, &self.uncovered) {
            if max < before {
                self.uncovered = None;
            }
        }
        let done = self.range.push(leaf.hash);
        self.reach()?;
        Ok(done)
    }

    /// The end of the log: no checkpoint may lie beyond it.
    pub fn finish(self) -> Result<Report, Failure> {
        if let Some((seq, time)) = &self.uncovered {
            return Err(fail(
                Some(*seq),
                format!(
                    "the payload is gone, but no later `audit prune` covers an event of {time}: \
                     it was deleted outside a prune"
                ),
            ));
        }
        if let Some((size, list)) = self.pending.iter().next() {
            return Err(fail(
                Some(self.range.size()),
                format!(
                    "the log ends at {} events, but {} covers {size}: events at the end were \
                     deleted",
                    self.range.size(),
                    list[0].source
                ),
            ));
        }
        Ok(Report {
            events: self.range.size(),
            payloads: self.payloads,
            pruned: self.pruned,
            checkpoints: self.checked,
            checkpointed: self.last_good,
            root: B64.encode(self.range.root()),
        })
    }

    /// The root of the leaves so far.
    pub fn root(&self) -> Hash {
        self.range.root()
    }
}

/// Everything about one leaf that needs no other leaf: its bytes hash to the stored leaf
/// hash, it is a v1 commitment naming `seq`, and its payload (if any) matches its digests.
/// Returns the leaf hash. `payload` is `(salt, value bytes)`, `index_key` the store's index
/// columns as [`crate::commitment::index_key`].
pub fn check_leaf(
    seq: u64,
    commitment: &str,
    stored_hash: Option<&[u8]>,
    payload: Option<(&[u8], &[u8])>,
    index_key: Option<&str>,
) -> Result<Checked, Failure> {
    let leaf = leaf_hash(commitment.as_bytes());
    if let Some(stored) = stored_hash {
        if stored != leaf {
            return Err(fail(
                Some(seq),
                "the commitment bytes do not hash to the stored leaf hash (the event was edited)",
            ));
        }
    }
    let view = LeafView::parse(commitment).map_err(|e| fail(Some(seq), e.0))?;
    if view.seq != seq {
        return Err(fail(
            Some(seq),
            format!(
                "the commitment names seq {}: rows were moved or swapped",
                view.seq
            ),
        ));
    }
    if let Some(p) = payload {
        view.check_payload_parts(p.0, p.1)
            .map_err(|e| fail(Some(seq), e.0))?;
    }
    if let Some(stored) = index_key {
        if !view.index_key_matches(stored) {
            let committed = view.index_key();
            let parts = |k: &str| {
                k.split(['\u{1e}', '\u{1f}'])
                    .skip(1)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            let (a, b) = (parts(&committed), parts(stored));
            let col = LeafView::INDEXED
                .iter()
                .zip(a.iter().zip(&b))
                .find(|(_, (x, y))| x != y)
                .map(|(c, _)| *c)
                .unwrap_or("of the event");
            return Err(fail(
                Some(seq),
                format!(
                    "the index column {col} disagrees with the event's commitment: filters and \
                     filtered exports would select wrongly"
                ),
            ));
        }
    }
    let prune_before = (view.action.as_deref() == Some("audit.prune")
        && view.target.resource_type.as_deref() == Some("AuditLog"))
    .then(|| view.target.id.as_deref().map(str::to_string))
    .flatten();
    Ok(Checked {
        hash: leaf,
        pruned_time: payload
            .is_none()
            .then(|| view.time.as_deref().unwrap_or_default().to_string()),
        prune_before,
    })
}

#[cfg(test)]
mod tests;
