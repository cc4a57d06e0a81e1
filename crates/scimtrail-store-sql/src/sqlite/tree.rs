//! The stored Merkle tree on a SQLite connection, and the log-level reads built on it.

use rusqlite::{params, Connection, OptionalExtension};
use scimtrail_audit::merkle::{self, Hash, HashStore, MerkleError};
use scimtrail_store::{StoreError, StoreResult, StoredCheckpoint};

use super::write::db;

/// Stored hashes read through one connection (inside the write transaction when appending).
pub struct SqlTree<'c>(pub &'c Connection);

impl HashStore for SqlTree<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT hash FROM merkle_hashes WHERE idx = ?")
            .map_err(|e| e.to_string())?;
        indexes
            .iter()
            .map(|&i| {
                let h: Option<Vec<u8>> = stmt
                    .query_row([i as i64], |r| r.get(0))
                    .optional()
                    .map_err(|e| e.to_string())?;
                h.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                    .ok_or_else(|| format!("stored hash {i} is missing or damaged"))
            })
            .collect()
    }
}

pub fn merkle_err(e: MerkleError) -> StoreError {
    match e {
        MerkleError::Input(m) => StoreError::OutOfRange(m),
        other => StoreError::Backend(other.to_string()),
    }
}

/// The number of leaves: the next `seq`.
pub fn size(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .map_err(db)
}

/// Append a leaf's stored hashes; the tree has `n` leaves before.
pub fn append(conn: &Connection, n: u64, leaf: Hash) -> StoreResult<()> {
    let new = merkle::hashes_to_store(n, leaf, &SqlTree(conn)).map_err(merkle_err)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO merkle_hashes (idx, hash) VALUES (?, ?)")
        .map_err(db)?;
    for (idx, h) in new {
        insert.execute(params![idx as i64, &h[..]]).map_err(db)?;
    }
    Ok(())
}

fn within(conn: &Connection, size: u64) -> StoreResult<()> {
    let have = self::size(conn)?;
    if size > have {
        return Err(StoreError::OutOfRange(format!(
            "tree size {size} is beyond the log, which has {have} events"
        )));
    }
    Ok(())
}

pub fn root(conn: &Connection, size: u64) -> StoreResult<Hash> {
    within(conn, size)?;
    merkle::root(size, &SqlTree(conn)).map_err(merkle_err)
}

pub fn inclusion(conn: &Connection, seq: u64, size: u64) -> StoreResult<Vec<Hash>> {
    within(conn, size)?;
    merkle::inclusion_proof(seq, size, &SqlTree(conn)).map_err(merkle_err)
}

pub fn inclusions(conn: &Connection, seqs: &[u64], size: u64) -> StoreResult<Vec<Vec<Hash>>> {
    within(conn, size)?;
    let tree = SqlTree(conn);
    seqs.iter()
        .map(|&seq| merkle::inclusion_proof(seq, size, &tree).map_err(merkle_err))
        .collect()
}

pub fn consistency(conn: &Connection, from: u64, to: u64) -> StoreResult<Vec<Hash>> {
    within(conn, to)?;
    merkle::consistency_proof(from, to, &SqlTree(conn)).map_err(merkle_err)
}

fn row_to_checkpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCheckpoint> {
    let root: Vec<u8> = r.get(2)?;
    Ok(StoredCheckpoint {
        size: r.get::<_, i64>(0)? as u64,
        time: r.get(1)?,
        root: <[u8; 32]>::try_from(root.as_slice()).unwrap_or([0; 32]),
        note: r.get(3)?,
    })
}

pub fn checkpoints(
    conn: &Connection,
    before: Option<u64>,
    count: usize,
) -> StoreResult<Vec<StoredCheckpoint>> {
    let mut s = conn
        .prepare_cached(
            "SELECT size, time, root, note FROM checkpoints WHERE size < ? \
             ORDER BY size DESC LIMIT ?",
        )
        .map_err(db)?;
    let before = before.map(|b| b as i64).unwrap_or(i64::MAX);
    let rows = s
        .query_map(params![before, count as i64], row_to_checkpoint)
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

/// Sign and store a checkpoint over the whole committed tree. Runs on the writer connection,
/// outside any batch, after every commit it covers is durable.
pub fn checkpoint(
    conn: &mut Connection,
    sign: scimtrail_store::CheckpointSigner,
    time: String,
) -> StoreResult<Option<StoredCheckpoint>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    let size = self::size(&tx)?;
    let last: Option<i64> = tx
        .query_row("SELECT MAX(size) FROM checkpoints", [], |r| r.get(0))
        .map_err(db)?;
    if size == 0 || last.is_some_and(|l| l as u64 >= size) {
        return Ok(None);
    }
    let root = merkle::root(size, &SqlTree(&tx)).map_err(merkle_err)?;
    let note = sign(size, root).map_err(StoreError::Backend)?;
    tx.execute(
        "INSERT INTO checkpoints (size, time, root, note) VALUES (?, ?, ?, ?)",
        params![size as i64, time, &root[..], note],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(Some(StoredCheckpoint {
        size,
        root,
        time,
        note,
    }))
}

pub fn stored_range(conn: &Connection, from: u64, to: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
    let mut s = conn
        .prepare_cached(
            "SELECT idx, hash FROM merkle_hashes WHERE idx >= ? AND idx < ? ORDER BY idx",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![from as i64, to as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}
