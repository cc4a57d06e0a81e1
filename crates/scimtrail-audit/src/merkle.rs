//! The RFC 6962 Merkle tree of the log, stored as the Go sumdb / C2SP tlog "stored hashes".
//!
//! Every leaf appends the hashes of the complete subtrees it finishes (on average two), at the
//! stored-hash index of [`tlog_tiles::tlog::stored_hash_index`]. Roots, inclusion proofs and
//! consistency proofs then read O(log n) stored hashes and never rehash the log. The storage is
//! a plain key→hash table, so any backend can append to it inside the write transaction that
//! appends the leaf (the PostgreSQL backend under its log-head lock).
//!
//! The tree maths come from `tlog_tiles` (a port of golang.org/x/mod/sumdb/tlog); this module
//! adapts it to our types and checks its inputs so that bad sizes are errors, never panics.

use tlog_tiles::tlog;

pub type Hash = [u8; 32];

/// The hash of the empty tree (SHA-256 of nothing).
pub const EMPTY_ROOT: Hash = tlog::EMPTY_HASH.0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("{0}")]
    Input(String),
    #[error("cannot read the tree: {0}")]
    Read(String),
    #[error("the proof does not verify")]
    BadProof,
}

/// Reads stored hashes by index. Must return exactly one hash per index, or an error.
pub trait HashStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String>;
}

struct Adapter<'a, S: HashStore + ?Sized>(&'a S);

impl<S: HashStore + ?Sized> tlog::HashReader for Adapter<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        let hashes = self
            .0
            .read_hashes(indexes)
            .map_err(tlog::Error::InvalidInput)?;
        if hashes.len() != indexes.len() {
            return Err(tlog::Error::IndexesNotInTree);
        }
        Ok(hashes.into_iter().map(tlog::Hash).collect())
    }
}

fn read_err(e: tlog::Error) -> MerkleError {
    MerkleError::Read(e.to_string())
}

/// The stored-hash index of the node at `level` covering leaves `n·2^level ..`.
pub fn stored_index(level: u8, n: u64) -> u64 {
    tlog::stored_hash_index(level, n)
}

/// The `(index, hash)` pairs to store when appending leaf `n` (the tree has `n` leaves before).
pub fn hashes_to_store<S: HashStore + ?Sized>(
    n: u64,
    leaf: Hash,
    store: &S,
) -> Result<Vec<(u64, Hash)>, MerkleError> {
    let hashes = tlog::stored_hashes_for_record_hash(n, tlog::Hash(leaf), &Adapter(store))
        .map_err(read_err)?;
    let first = tlog::stored_hash_index(0, n);
    Ok(hashes
        .into_iter()
        .enumerate()
        .map(|(i, h)| (first + i as u64, h.0))
        .collect())
}

/// The root of the tree of the first `size` leaves.
pub fn root<S: HashStore + ?Sized>(size: u64, store: &S) -> Result<Hash, MerkleError> {
    tlog::tree_hash(size, &Adapter(store))
        .map(|h| h.0)
        .map_err(read_err)
}

/// The RFC 9162 inclusion proof (audit path, from the leaf upward) of leaf `index` in the tree
/// of size `size`.
pub fn inclusion_proof<S: HashStore + ?Sized>(
    index: u64,
    size: u64,
    store: &S,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::Input(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    let p = tlog::prove_record(size, index, &Adapter(store)).map_err(read_err)?;
    Ok(p.into_iter().map(|h| h.0).collect())
}

/// The RFC 9162 consistency proof from the tree of size `from` to the tree of size `to`.
pub fn consistency_proof<S: HashStore + ?Sized>(
    from: u64,
    to: u64,
    store: &S,
) -> Result<Vec<Hash>, MerkleError> {
    if from > to {
        return Err(MerkleError::Input(format!(
            "from ({from}) is greater than to ({to})"
        )));
    }
    if from == 0 || from == to {
        return Ok(Vec::new());
    }
    let p = tlog::prove_tree(to, from, &Adapter(store)).map_err(read_err)?;
    Ok(p.into_iter().map(|h| h.0).collect())
}

fn hashes(p: &[Hash]) -> Vec<tlog::Hash> {
    p.iter().copied().map(tlog::Hash).collect()
}

/// Check an inclusion proof of `leaf` at `index` against the root of the tree of `size`.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::BadProof);
    }
    tlog::check_record(
        &hashes(proof),
        size,
        tlog::Hash(root),
        index,
        tlog::Hash(leaf),
    )
    .map_err(|_| MerkleError::BadProof)
}

/// Check a consistency proof between two tree heads.
pub fn verify_consistency(
    proof: &[Hash],
    from: u64,
    from_root: Hash,
    to: u64,
    to_root: Hash,
) -> Result<(), MerkleError> {
    if from > to {
        return Err(MerkleError::BadProof);
    }
    if from == to {
        return if proof.is_empty() && from_root == to_root {
            Ok(())
        } else {
            Err(MerkleError::BadProof)
        };
    }
    if from == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(MerkleError::BadProof)
        };
    }
    tlog::check_tree(
        &hashes(proof),
        to,
        tlog::Hash(to_root),
        from,
        tlog::Hash(from_root),
    )
    .map_err(|_| MerkleError::BadProof)
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tlog::node_hash(tlog::Hash(*left), tlog::Hash(*right)).0
}

/// The right edge of a tree being rebuilt leaf by leaf in memory (a compact range): the roots
/// of its perfect subtrees, largest first. The verifier streams a whole log through one, and
/// reads the root at any size on the way in O(log n).
#[derive(Debug, Default, Clone)]
pub struct CompactRange {
    size: u64,
    /// `(height, hash)` of each perfect subtree, left to right.
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash. Returns the hashes this leaf completes, leaf first: exactly the
    /// stored hashes of the leaf, in stored-index order from [`stored_index`]`(0, n)`.
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut node = (0u32, leaf);
        let mut done = vec![leaf];
        while let Some(&(h, left)) = self.nodes.last() {
            if h != node.0 {
                break;
            }
            self.nodes.pop();
            node = (h + 1, node_hash(&left, &node.1));
            done.push(node.1);
        }
        self.nodes.push(node);
        self.size += 1;
        done
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return EMPTY_ROOT;
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// An in-memory [`HashStore`] (tests, the offline verifier, small exports).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    stored: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// A tree of `size` leaves from its stored hashes (index 0 on, as a store keeps them).
    pub fn from_stored(stored: Vec<Hash>, size: u64) -> Result<Self, MerkleError> {
        let need = stored_index(0, size);
        if (stored.len() as u64) < need {
            return Err(MerkleError::Read(format!(
                "{} stored hashes, a tree of {size} leaves has {need}",
                stored.len()
            )));
        }
        Ok(MemoryTree { stored, size })
    }

    pub fn push(&mut self, leaf: Hash) -> Result<(), MerkleError> {
        let new = hashes_to_store(self.size, leaf, self)?;
        for (i, h) in new {
            debug_assert_eq!(i, self.stored.len() as u64);
            self.stored.push(h);
        }
        self.size += 1;
        Ok(())
    }
}

impl HashStore for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        indexes
            .iter()
            .map(|&i| {
                self.stored
                    .get(i as usize)
                    .copied()
                    .ok_or_else(|| format!("no stored hash {i}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
