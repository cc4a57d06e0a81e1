#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Published test data (tests/data, sources in its README): RFC 6962 / RFC 9162 roots and
//! proofs, RFC 8785 canonical JSON, and C2SP signed notes and checkpoints.

use std::path::PathBuf;

use scimtrail_audit::checkpoint::{open_checkpoint, parse_vkey};
use scimtrail_audit::commitment::canonical;
use scimtrail_audit::merkle::{self, MemoryTree};
use serde_json::Value;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(data(path)).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h32(v: &Value) -> [u8; 32] {
    hex(v.as_str().unwrap()).try_into().unwrap()
}

fn path(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().unwrap().iter().map(h32).collect()
}

fn tree() -> (MemoryTree, Vec<[u8; 32]>) {
    let leaves = json("rfc6962/leaves.json");
    let mut t = MemoryTree::new();
    let mut hashes = Vec::new();
    for l in leaves["leaves_hex"].as_array().unwrap() {
        let h = scimtrail_audit::leaf_hash(&hex(l.as_str().unwrap()));
        hashes.push(h);
        t.push(h).unwrap();
    }
    (t, hashes)
}

#[test]
fn rfc6962_roots() {
    let (t, _) = tree();
    let roots = json("rfc6962/roots.json");
    assert_eq!(merkle::root(0, &t).unwrap(), h32(&roots["empty_root_hex"]));
    let list = roots["roots"].as_array().unwrap();
    assert_eq!(list.len(), 8);
    for r in list {
        let size = r["size"].as_u64().unwrap();
        assert_eq!(
            merkle::root(size, &t).unwrap(),
            h32(&r["root_hex"]),
            "size {size}"
        );
    }
}

#[test]
fn rfc6962_inclusion_proofs() {
    let (t, leaves) = tree();
    let proofs = json("rfc6962/inclusion.json");
    let list = proofs["proofs"].as_array().unwrap();
    assert!(list.len() >= 5);
    for p in list {
        let (i, n) = (
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
        );
        let expected = path(&p["path_hex"]);
        assert_eq!(
            merkle::inclusion_proof(i, n, &t).unwrap(),
            expected,
            "leaf {i} size {n}"
        );
        let root = merkle::root(n, &t).unwrap();
        merkle::verify_inclusion(&expected, n, root, i, leaves[i as usize]).unwrap();
    }
}

#[test]
fn rfc6962_consistency_proofs() {
    let (t, _) = tree();
    let proofs = json("rfc6962/consistency.json");
    let list = proofs["proofs"].as_array().unwrap();
    assert!(list.len() >= 5);
    for p in list {
        let (m, n) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        let expected = path(&p["path_hex"]);
        assert_eq!(
            merkle::consistency_proof(m, n, &t).unwrap(),
            expected,
            "{m} → {n}"
        );
        let (rm, rn) = (merkle::root(m, &t).unwrap(), merkle::root(n, &t).unwrap());
        merkle::verify_consistency(&expected, m, rm, n, rn).unwrap();
    }
}

/// The two candidate crates: `canonical` (serde_json_canonicalizer) is the one the log uses;
/// canon-json is run beside it to show where it departs from the RFC.
fn both(v: &Value) -> (String, String) {
    let ours = canonical(v).unwrap();
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, canon_json::CanonicalFormatter::new());
    serde::Serialize::serialize(v, &mut ser).unwrap();
    (ours, String::from_utf8(buf).unwrap())
}

#[test]
fn rfc8785_test_files() {
    for name in [
        "arrays",
        "french",
        "structures",
        "unicode",
        "values",
        "weird",
    ] {
        let input: Value = serde_json::from_slice(
            &std::fs::read(data(&format!("jcs/input/{name}.json"))).unwrap(),
        )
        .unwrap();
        let expected = std::fs::read_to_string(data(&format!("jcs/output/{name}.json"))).unwrap();
        let (ours, other) = both(&input);
        assert_eq!(ours, expected, "{name}: serde_json_canonicalizer");
        assert_eq!(other, expected, "{name}: canon-json");
    }
}

#[test]
fn rfc8785_sorting_by_utf16_code_units() {
    let s = json("jcs/sorting.json");
    let input: Value = serde_json::from_str(s["input"].as_str().unwrap()).unwrap();
    let out = canonical(&input).unwrap();
    let back: serde_json::Map<String, Value> = {
        // Read keys back in output order (preserve_order keeps it).
        serde_json::from_str(&out).unwrap()
    };
    let keys: Vec<&str> = back.keys().map(String::as_str).collect();
    let expected: Vec<&str> = s["expected_key_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, expected);
    let mut small = serde_json::Map::new();
    small.insert("a!".into(), Value::from(1));
    small.insert("a".into(), Value::from(2));
    assert_eq!(
        canonical(&Value::Object(small)).unwrap(),
        r#"{"a":2,"a!":1}"#
    );
}

#[test]
fn rfc8785_numbers() {
    let list = json("jcs/numbers.json");
    let list = list.as_array().unwrap();
    assert!(list.len() >= 20);
    for n in list {
        let bits = u64::from_str_radix(n["ieee_hex"].as_str().unwrap(), 16).unwrap();
        let v = Value::from(f64::from_bits(bits));
        let (ours, other) = both(&v);
        assert_eq!(ours, n["expected"].as_str().unwrap(), "{}", n["ieee_hex"]);
        if other != ours {
            // Why the log does not use canon-json 0.2: it writes 43143ff3c1cb0959 as
            // 1424953923781206.3 where RFC 8785 Appendix B says 1424953923781206.2.
            println!("canon-json differs on {}: {other}", n["ieee_hex"]);
        }
    }
}

#[test]
fn rfc8785_example() {
    let ex = json("jcs/rfc_example.json");
    let input: Value = serde_json::from_str(ex["input"].as_str().unwrap()).unwrap();
    let out = canonical(&input).unwrap();
    assert_eq!(out, ex["expected_text"].as_str().unwrap());
    assert_eq!(
        out.as_bytes(),
        hex(ex["expected_utf8_hex"]
            .as_str()
            .unwrap()
            .replace(' ', "")
            .as_str())
    );
}

/// RFC 8785 numbers are IEEE-754 doubles: an integer beyond 2^53 is written as the double it
/// parses to (as ECMAScript would), so independent verifiers agree on its digest.
#[test]
fn large_integers_are_doubles() {
    let v: Value =
        serde_json::from_str("[9007199254740993, 18446744073709551615, -9223372036854775808]")
            .unwrap();
    // canon-json writes these integers exactly, which no ECMAScript-based verifier would.
    let (ours, _) = both(&v);
    assert_eq!(
        ours,
        "[9007199254740992,18446744073709552000,-9223372036854776000]"
    );
}

#[test]
fn c2sp_signed_note_example_verifies() {
    let ex = json("c2sp/note_examples.json");
    let vkey = ex["vkey"].as_str().unwrap();
    parse_vkey(vkey).unwrap();
    let signed = ex["signed"].as_str().unwrap();
    let note = signed_note::Note::from_bytes(signed.as_bytes()).unwrap();
    assert_eq!(note.text(), ex["text"].as_str().unwrap().as_bytes());
    let list = signed_note::VerifierList::new(vec![Box::new(parse_vkey(vkey).unwrap())]);
    note.verify(&list).unwrap();
    // The published signer key re-signs the text to the published note (Ed25519 is
    // deterministic), so our note encoding matches the spec byte for byte.
    let signer = signed_note::StandardSigner::new(ex["skey"].as_str().unwrap()).unwrap();
    let mut fresh = signed_note::Note::new(ex["text"].as_str().unwrap().as_bytes(), &[]).unwrap();
    fresh.add_sigs(&[&signer]).unwrap();
    assert_eq!(String::from_utf8(fresh.to_bytes()).unwrap(), signed);
    // A checkpoint must parse as one: the note text above is not a checkpoint.
    assert!(open_checkpoint(signed.as_bytes(), vkey).is_err());
}

#[test]
fn c2sp_checkpoint_example_parses() {
    let body = std::fs::read(data("c2sp/checkpoint_example_body.txt")).unwrap();
    let cp = tlog_tiles::checkpoint::Checkpoint::from_bytes(&body).unwrap();
    assert!(!cp.origin().is_empty());
    assert_eq!(
        cp.to_bytes(),
        body,
        "origin, size and root round-trip byte for byte"
    );
}
