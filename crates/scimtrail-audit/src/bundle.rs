//! The offline bundle (DESIGN.md, docs/bundle.md): `checkpoint`, `log-key.pub`,
//! `leaves.jsonl`, `payloads.jsonl`, `proofs.jsonl`. Written by `scimtrail audit export`,
//! checked by `scimtrail audit verify --bundle` with nothing but the public key.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::checkpoint::{open_checkpoint, parse_vkey, VerifiedCheckpoint};
use crate::commitment::{digest_matches, leaf_hash, LeafView, StoredPayload};
use crate::merkle::{self, CompactRange, Hash};

pub const CHECKPOINT: &str = "checkpoint";
pub const LOG_KEY: &str = "log-key.pub";
pub const LEAVES: &str = "leaves.jsonl";
pub const PAYLOADS: &str = "payloads.jsonl";
pub const PROOFS: &str = "proofs.jsonl";

/// A bundle problem: the file, the line (1-based, when one is to blame) and what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{file}{}: {what}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct BundleError {
    pub file: String,
    pub line: Option<usize>,
    pub what: String,
}

fn berr(file: &str, line: Option<usize>, what: impl Into<String>) -> BundleError {
    BundleError {
        file: file.into(),
        line,
        what: what.into(),
    }
}

/// One exported event.
pub struct BundleEntry {
    pub seq: u64,
    pub commitment: String,
    pub payload: Option<StoredPayload>,
    /// Its inclusion proof in the checkpoint's tree.
    pub proof: Vec<Hash>,
}

/// Writes a bundle entry by entry.
pub struct BundleWriter {
    dir: PathBuf,
    leaves: BufWriter<std::fs::File>,
    payloads: BufWriter<std::fs::File>,
    proofs: BufWriter<std::fs::File>,
    tree_size: u64,
}

fn create(dir: &Path, name: &str) -> std::io::Result<BufWriter<std::fs::File>> {
    Ok(BufWriter::new(std::fs::File::create(dir.join(name))?))
}

impl BundleWriter {
    pub fn create(
        dir: &Path,
        checkpoint_note: &str,
        vkey: &str,
        tree_size: u64,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(CHECKPOINT), checkpoint_note)?;
        std::fs::write(dir.join(LOG_KEY), format!("{}\n", vkey.trim()))?;
        Ok(BundleWriter {
            dir: dir.to_path_buf(),
            leaves: create(dir, LEAVES)?,
            payloads: create(dir, PAYLOADS)?,
            proofs: create(dir, PROOFS)?,
            tree_size,
        })
    }

    pub fn push(&mut self, e: &BundleEntry) -> std::io::Result<()> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        writeln!(self.leaves, "{}", e.commitment)?;
        if let Some(p) = &e.payload {
            // Each value is written as its exact JCS bytes, so a verifier may hash them as
            // they are (or canonicalise them first: same bytes).
            let view = LeafView::parse(&e.commitment).map_err(|x| invalid(x.0))?;
            let values = view.split_payload_raw(p).map_err(|x| invalid(x.0))?;
            let (request, response) = (
                values.first().copied().unwrap_or("null"),
                values.get(1).copied().unwrap_or("null"),
            );
            let changes: Vec<String> = values
                .get(2..)
                .unwrap_or_default()
                .chunks(2)
                .map(|c| {
                    format!(
                        "{{\"old\":{},\"new\":{}}}",
                        c[0],
                        c.get(1).copied().unwrap_or("null")
                    )
                })
                .collect();
            writeln!(
                self.payloads,
                "{{\"seq\":{},\"salt\":\"{}\",\"request\":{request},\"response\":{response},\"changes\":[{}]}}",
                e.seq,
                B64.encode(&p.salt),
                changes.join(",")
            )?;
        }
        let hashes: Vec<String> = e.proof.iter().map(|h| B64.encode(h)).collect();
        let line = json!({"seq": e.seq, "treeSize": self.tree_size,
                          "leafHash": B64.encode(leaf_hash(e.commitment.as_bytes())), "hashes": hashes});
        writeln!(self.proofs, "{line}")
    }

    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.leaves.flush()?;
        self.payloads.flush()?;
        self.proofs.flush()?;
        for f in [&self.leaves, &self.payloads, &self.proofs] {
            f.get_ref().sync_all()?;
        }
        Ok(self.dir)
    }
}

/// The lines of one bundle file, read one at a time (bundles of millions of events are
/// checked in constant memory).
struct Lines {
    name: &'static str,
    inner: std::io::Split<BufReader<std::fs::File>>,
    n: usize,
}

impl Lines {
    fn open(dir: &Path, name: &'static str) -> Result<Self, BundleError> {
        let f = std::fs::File::open(dir.join(name))
            .map_err(|e| berr(name, None, format!("cannot read: {e}")))?;
        Ok(Lines {
            name,
            inner: BufReader::with_capacity(1 << 20, f).split(b'\n'),
            n: 0,
        })
    }

    /// The next line and its number, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, String)>, BundleError> {
        let Some(l) = self.inner.next() else {
            return Ok(None);
        };
        self.n += 1;
        let n = self.n;
        let l = l.map_err(|e| berr(self.name, Some(n), format!("cannot read: {e}")))?;
        let l = String::from_utf8(l).map_err(|_| berr(self.name, Some(n), "not UTF-8"))?;
        if l.is_empty() {
            return Err(berr(self.name, Some(n), "empty line"));
        }
        Ok(Some((n, l)))
    }
}

fn json_line(file: &str, n: usize, line: &str) -> Result<Value, BundleError> {
    serde_json::from_str(line).map_err(|e| berr(file, Some(n), format!("not JSON: {e}")))
}

fn b64_hash(file: &str, n: usize, v: &Value, what: &str) -> Result<Hash, BundleError> {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            berr(
                file,
                Some(n),
                format!("{what} is not a base64 SHA-256 hash"),
            )
        })
}

#[derive(serde::Deserialize)]
struct PayloadLine<'a> {
    seq: u64,
    salt: &'a str,
    #[serde(borrow)]
    request: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    response: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    changes: Vec<ChangeLine<'a>>,
}

#[derive(serde::Deserialize)]
struct ChangeLine<'a> {
    #[serde(borrow)]
    old: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    new: &'a serde_json::value::RawValue,
}

/// A verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleReport {
    pub origin: String,
    pub tree_size: u64,
    pub root: String,
    pub events: u64,
    pub payloads: u64,
    /// The bundle holds every leaf of the tree, and the root was rebuilt from them.
    pub complete: bool,
}

/// Check one leaf line and its proof line against the checkpoint; returns the leaf's seq and
/// hash.
fn check_leaf_line(
    leaf: &str,
    n: usize,
    proof: Option<(usize, String)>,
    size: u64,
    root: Hash,
    last: Option<u64>,
) -> Result<(LeafView<'_>, Hash), BundleError> {
    let view = LeafView::parse(leaf).map_err(|e| berr(LEAVES, Some(n), e.0))?;
    let seq = view.seq;
    if last.is_some_and(|l| seq <= l) {
        return Err(berr(LEAVES, Some(n), format!("seq {seq} is out of order")));
    }
    if seq >= size {
        return Err(berr(
            LEAVES,
            Some(n),
            format!("seq {seq} is beyond the checkpoint's tree of size {size}"),
        ));
    }
    let hash = leaf_hash(leaf.as_bytes());
    let (pn, proof) = proof.ok_or_else(|| {
        berr(
            PROOFS,
            None,
            format!("no proof for seq {seq} (leaf line {n})"),
        )
    })?;
    let p = json_line(PROOFS, pn, &proof)?;
    if p["seq"].as_u64() != Some(seq) {
        return Err(berr(
            PROOFS,
            Some(pn),
            format!("this proof is not for seq {seq}"),
        ));
    }
    if p["treeSize"].as_u64() != Some(size) {
        return Err(berr(
            PROOFS,
            Some(pn),
            format!("treeSize is not the checkpoint's {size}"),
        ));
    }
    if b64_hash(PROOFS, pn, &p["leafHash"], "leafHash")? != hash {
        return Err(berr(
            LEAVES,
            Some(n),
            format!("seq {seq}: the leaf bytes do not hash to the proof's leafHash"),
        ));
    }
    let path = p["hashes"]
        .as_array()
        .ok_or_else(|| berr(PROOFS, Some(pn), "hashes is not a list"))?
        .iter()
        .map(|h| b64_hash(PROOFS, pn, h, "a proof hash"))
        .collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(&path, size, root, seq, hash).map_err(|_| {
        berr(
            PROOFS,
            Some(pn),
            format!("the inclusion proof for seq {seq} does not lead to the checkpoint root"),
        )
    })?;
    Ok((view, hash))
}

/// Check one payload line against its leaf's digests.
fn check_payload_line(view: &LeafView<'_>, n: usize, line: &str) -> Result<(), BundleError> {
    let seq = view.seq;
    // Values stay raw text here: however deeply nested, they are hashed, not parsed.
    let p: PayloadLine<'_> = serde_json::from_str(line)
        .map_err(|e| berr(PAYLOADS, Some(n), format!("not a payload line: {e}")))?;
    if p.seq != seq {
        return Err(berr(
            PAYLOADS,
            Some(n),
            format!("this payload is not for seq {seq}"),
        ));
    }
    let salt = B64
        .decode(p.salt)
        .map_err(|_| berr(PAYLOADS, Some(n), "salt is not base64"))?;
    if p.changes.len() != view.changes.len() {
        return Err(berr(
            PAYLOADS,
            Some(n),
            format!(
                "seq {seq}: {} change values for {} changes",
                p.changes.len(),
                view.changes.len()
            ),
        ));
    }
    let mut values = vec![("request", p.request), ("response", p.response)];
    for c in &p.changes {
        values.push(("changes.old", c.old));
        values.push(("changes.new", c.new));
    }
    for ((name, raw), d) in values.iter().zip(view.digests()) {
        let same = |bytes: &[u8]| digest_matches(&salt, bytes, &d.sha256) && bytes.len() == d.size;
        // Values must be written as their exact RFC 8785 bytes (export does so). Anything
        // else is refused rather than re-parsed: a parser would have to choose between
        // duplicated keys, and another reader might choose differently.
        let ok = same(raw.get().as_bytes());
        if !ok {
            return Err(berr(
                PAYLOADS,
                Some(n),
                format!("seq {seq}: {name} does not match its digest in the leaf"),
            ));
        }
    }
    Ok(())
}

fn payload_seq(n: usize, line: &str) -> Result<u64, BundleError> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_str::<Seq>(line)
        .map(|s| s.seq)
        .map_err(|e| berr(PAYLOADS, Some(n), format!("not a payload line: {e}")))
}

/// Check a bundle with nothing but the verifier key `vkey`. The three files are read side by
/// side, one line at a time: leaves and proofs line by line, payloads merged in by `seq`.
pub fn verify(dir: &Path, vkey: &str) -> Result<BundleReport, BundleError> {
    parse_vkey(vkey).map_err(|e| berr("key", None, e.0))?;
    let note = std::fs::read(dir.join(CHECKPOINT))
        .map_err(|e| berr(CHECKPOINT, None, format!("cannot read: {e}")))?;
    let VerifiedCheckpoint { origin, size, root } =
        open_checkpoint(&note, vkey).map_err(|e| berr(CHECKPOINT, None, e.0))?;
    // Each leaf line is terminated by a newline, the last one too.
    let bytes = std::fs::metadata(dir.join(LEAVES))
        .map_err(|e| berr(LEAVES, None, format!("cannot read: {e}")))?
        .len();
    if bytes > 0 {
        use std::io::{Read as _, Seek as _};
        let mut f = std::fs::File::open(dir.join(LEAVES))
            .map_err(|e| berr(LEAVES, None, format!("cannot read: {e}")))?;
        let mut last = [0u8; 1];
        f.seek(std::io::SeekFrom::End(-1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| berr(LEAVES, None, format!("cannot read: {e}")))?;
        if last[0] != b'\n' {
            return Err(berr(
                LEAVES,
                None,
                "the last line is not terminated by a newline",
            ));
        }
    }
    let mut leaves = Lines::open(dir, LEAVES)?;
    let mut proofs = Lines::open(dir, PROOFS)?;
    let mut payloads = Lines::open(dir, PAYLOADS)?;
    let mut pending = payloads.next_line()?;
    let mut pending_seq = match &pending {
        Some((n, l)) => Some(payload_seq(*n, l)?),
        None => None,
    };
    let mut range = CompactRange::new();
    let (mut last, mut events, mut checked) = (None::<u64>, 0u64, 0u64);
    while let Some((n, leaf)) = leaves.next_line()? {
        let (view, hash) = check_leaf_line(&leaf, n, proofs.next_line()?, size, root, last)?;
        let seq = view.seq;
        if let (Some(ps), Some((pn, _))) = (pending_seq, &pending) {
            if ps < seq || last.is_some_and(|l| ps <= l) {
                return Err(berr(
                    PAYLOADS,
                    Some(*pn),
                    format!("seq {ps} has no leaf in {LEAVES}, or is out of order"),
                ));
            }
        }
        if pending_seq == Some(seq) {
            if let Some((pn, line)) = &pending {
                check_payload_line(&view, *pn, line)?;
            }
            checked += 1;
            pending = payloads.next_line()?;
            pending_seq = match &pending {
                Some((n, l)) => Some(payload_seq(*n, l)?),
                None => None,
            };
        }
        if range.size() == seq {
            range.push(hash);
        }
        last = Some(seq);
        events += 1;
    }
    if let Some((pn, _)) = pending {
        return Err(berr(
            PAYLOADS,
            Some(pn),
            format!(
                "seq {} has no leaf in {LEAVES}",
                pending_seq.unwrap_or_default()
            ),
        ));
    }
    if let Some((pn, _)) = proofs.next_line()? {
        return Err(berr(PROOFS, Some(pn), "more proofs than leaves"));
    }
    let complete = range.size() == size && events == size;
    if complete && range.root() != root {
        return Err(berr(
            LEAVES,
            None,
            "the root rebuilt from all leaves is not the checkpoint's",
        ));
    }
    Ok(BundleReport {
        origin,
        tree_size: size,
        root: B64.encode(root),
        events,
        payloads: checked,
        complete,
    })
}

/// Read the first verifier key line of a key file.
pub fn read_key_file(path: &Path) -> Result<String, BundleError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| berr(&name, None, format!("cannot read: {e}")))?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    parse_vkey(&key).map_err(|e| berr(&name, Some(1), e.0))?;
    Ok(key)
}
