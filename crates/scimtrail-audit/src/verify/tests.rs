use super::*;
use crate::commitment::seal;
use crate::event::*;

fn sealed(n: u64) -> Vec<crate::Sealed> {
    (0..n)
        .map(|i| {
            let e = AuditEvent {
                id: format!("e{i}"),
                seq: None,
                time: "2026-11-28T13:32:22.000000Z".into(),
                tenant: "default".into(),
                request_id: format!("r{i}"),
                actor: Actor::default(),
                action: "user.get".into(),
                operation: Operation::default(),
                target: Target::default(),
                outcome: Outcome::from_status(200, None, None),
                latency_ms: 1.0,
                changes: vec![],
                request: Payload::default(),
                response: Payload {
                    body: serde_json::json!({"n": i}),
                    ..Default::default()
                },
                parent_id: None,
                leaf_hash: None,
            };
            seal(e, i, &[i as u8; 16]).unwrap()
        })
        .collect()
}

fn run(rows: &[crate::Sealed], seqs: &[u64], cps: Vec<Expected>) -> Result<Report, Failure> {
    let mut v = LogVerifier::new(cps);
    for (s, seq) in rows.iter().zip(seqs) {
        v.push(
            *seq,
            s.commitment.as_bytes(),
            Some(&s.leaf_hash),
            Some(&s.payload),
        )?;
    }
    v.finish()
}

fn roots(rows: &[crate::Sealed]) -> Vec<Hash> {
    let mut r = CompactRange::new();
    let mut out = vec![r.root()];
    for s in rows {
        r.push(s.leaf_hash);
        out.push(r.root());
    }
    out
}

fn cp(source: &str, size: u64, root: Hash) -> Expected {
    Expected {
        source: source.into(),
        size,
        root,
    }
}

#[test]
fn a_good_log_verifies_against_its_checkpoints() {
    let rows = sealed(10);
    let r = roots(&rows);
    let seqs: Vec<u64> = (0..10).collect();
    let report = run(
        &rows,
        &seqs,
        vec![cp("a", 4, r[4]), cp("b", 10, r[10]), cp("c", 0, r[0])],
    )
    .unwrap();
    assert_eq!(
        (report.events, report.checkpoints, report.checkpointed),
        (10, 3, 10)
    );
}

#[test]
fn each_kind_of_damage_is_named() {
    let rows = sealed(10);
    let r = roots(&rows);
    let seqs: Vec<u64> = (0..10).collect();
    // A gap.
    let mut gap: Vec<u64> = seqs.clone();
    gap[5] = 6;
    let e = run(&rows, &gap, vec![]).unwrap_err();
    assert_eq!(e.seq, Some(5), "{e}");
    // A payload changed.
    let mut bad = rows.clone();
    bad[3].payload.values = bad[3].payload.values.replace("3", "4");
    let e = run(&bad, &seqs, vec![]).unwrap_err();
    assert_eq!(e.seq, Some(3), "{e}");
    // Commitment bytes changed.
    let mut bad = rows.clone();
    bad[2].commitment = bad[2].commitment.replace("user.get", "user.got");
    let e = run(&bad, &seqs, vec![]).unwrap_err();
    assert_eq!(e.seq, Some(2));
    assert!(e.what.contains("stored leaf hash"), "{e}");
    // Truncated below a checkpoint.
    let e = run(&rows[..7], &seqs[..7], vec![cp("the file", 10, r[10])]).unwrap_err();
    assert!(e.what.contains("deleted"), "{e}");
    // Rewritten with recomputed hashes: the checkpoint root no longer matches.
    let mut other = sealed(10);
    other[1] = seal(
        serde_json::from_value(
            crate::commitment::open(
                &rows[1].commitment,
                &rows[1].leaf_hash,
                Some(&rows[1].payload),
            )
            .unwrap(),
        )
        .unwrap(),
        1,
        &[99; 16],
    )
    .unwrap();
    let e = run(&other, &seqs, vec![cp("checkpoint 10", 10, r[10])]).unwrap_err();
    assert!(e.what.contains("does not have the root"), "{e}");
}
