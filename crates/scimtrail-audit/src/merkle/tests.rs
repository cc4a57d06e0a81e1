use super::*;
use crate::commitment::leaf_hash;

/// The root by the RFC 6962 definition, computed recursively from the leaves.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = (n - 1).next_power_of_two() / if (n - 1).is_power_of_two() { 1 } else { 2 };
            let k = if k >= n { k / 2 } else { k };
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

#[test]
fn stored_tree_compact_range_and_reference_agree_on_every_size() {
    let ls = leaves(70);
    let mut tree = MemoryTree::new();
    let mut range = CompactRange::new();
    assert_eq!(root(0, &tree).unwrap(), EMPTY_ROOT);
    for (i, l) in ls.iter().enumerate() {
        let before = tree.stored.len() as u64;
        tree.push(*l).unwrap();
        let done = range.push(*l);
        assert_eq!(before, stored_index(0, i as u64));
        let stored: Vec<u64> = (before..tree.stored.len() as u64).collect();
        assert_eq!(
            tree.read_hashes(&stored).unwrap(),
            done,
            "stored hashes of leaf {i}"
        );
        let expected = reference_root(&ls[..=i]);
        assert_eq!(
            root(i as u64 + 1, &tree).unwrap(),
            expected,
            "size {}",
            i + 1
        );
        assert_eq!(range.root(), expected, "compact range at size {}", i + 1);
    }
}

#[test]
fn every_inclusion_and_consistency_proof_verifies_and_wrong_ones_do_not() {
    let ls = leaves(33);
    let mut tree = MemoryTree::new();
    for l in &ls {
        tree.push(*l).unwrap();
    }
    for size in 1..=33u64 {
        let r = root(size, &tree).unwrap();
        for i in 0..size {
            let p = inclusion_proof(i, size, &tree).unwrap();
            verify_inclusion(&p, size, r, i, ls[i as usize]).unwrap();
            let other = ls[((i + 1) % 33) as usize];
            assert!(verify_inclusion(&p, size, r, i, other).is_err());
        }
        for from in 0..=size {
            let p = consistency_proof(from, size, &tree).unwrap();
            let fr = root(from, &tree).unwrap();
            verify_consistency(&p, from, fr, size, r).unwrap();
            if from > 0 && from < size {
                assert!(verify_consistency(&p, from, [0; 32], size, r).is_err());
            }
        }
    }
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let mut tree = MemoryTree::new();
    for l in leaves(5) {
        tree.push(l).unwrap();
    }
    assert!(inclusion_proof(5, 5, &tree).is_err());
    assert!(inclusion_proof(0, 9, &tree).is_err());
    assert!(consistency_proof(4, 3, &tree).is_err());
    assert!(consistency_proof(2, 9, &tree).is_err());
    assert!(root(9, &tree).is_err());
    assert!(verify_inclusion(&[], 0, EMPTY_ROOT, 0, EMPTY_ROOT).is_err());
}
