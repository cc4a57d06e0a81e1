//! Tamper evidence, tried as a database administrator would: a real server writes a log and
//! stops (signing its last checkpoint); the database is then edited behind its back, and
//! `scimtrail audit verify` must name what was done. Also: prune keeps the log verifiable,
//! and exported bundles verify offline — with our verifier and the Python reference one —
//! and name the file and line of any damage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::{params, Connection};
use scimtrail_audit::merkle::MemoryTree;
use serde_json::{json, Value};

/// A log of users, updates, a group and failures, written by a real server that then stopped.
async fn written_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[]);
    let c = common::client();
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = c
            .post(server.url("/scim/v2/Users"))
            .bearer_auth(common::TOKEN)
            .json(
                &json!({"userName": format!("t{i}@example.com"), "active": true,
                          "name": {"givenName": format!("G{i}")}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids[..4] {
        let r = c
            .patch(server.url(&format!("/scim/v2/Users/{id}")))
            .bearer_auth(common::TOKEN)
            .json(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let members: Vec<Value> = ids[..3].iter().map(|i| json!({"value": i})).collect();
    let r = c
        .post(server.url("/scim/v2/Groups"))
        .bearer_auth(common::TOKEN)
        .json(&json!({"displayName": "admins", "members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(server.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Bodies nested as deep as JSON parsers allow, with and without a token: their events
    // must stay readable, exportable and verifiable.
    for (depth, token) in [(126, false), (127, true)] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut req = c
            .post(server.url("/scim/v2/Users"))
            .header("content-type", "application/scim+json")
            .body(body);
        if token {
            req = req.bearer_auth(common::TOKEN);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let r = c
        .get(server.url("/audit/v1/events?count=1000"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the log stays listable");
    server.terminate();
    dir
}

fn db(dir: &Path) -> String {
    format!("sqlite://{}/scimtrail.db", dir.display())
}

fn copy_of(dir: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args(args)
        .env_remove("SCIMTRAIL_DATABASE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `audit verify --json` on a data directory: exit code and the JSON it printed.
fn verify(dir: &Path) -> (i32, Value) {
    let (code, out, err) = run(&["audit", "verify", "--database", &db(dir), "--json"]);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}): {out} {err}"));
    (code, v)
}

fn assert_fails(dir: &Path, seq: Option<u64>, needle: &str) {
    let (code, v) = verify(dir);
    assert_eq!(code, 1, "verify must fail: {v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["failure"]["seq"].as_u64(), seq, "{v}");
    let what = v["failure"]["what"].as_str().unwrap();
    assert!(what.contains(needle), "{needle:?} not in {what:?}");
}

/// A copy of the log's directory with `sql` run on its database.
fn edited(dir: &Path, sql: &str) -> tempfile::TempDir {
    let d = copy_of(dir);
    conn(d.path()).execute_batch(sql).unwrap();
    d
}

fn conn(dir: &Path) -> Connection {
    Connection::open(dir.join("scimtrail.db")).unwrap()
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Rebuild the stored tree and every leaf hash from the (edited) commitments, as a DBA who
/// knows the format would; the signed checkpoints cannot be redone without the key.
fn recompute_hashes(c: &Connection) {
    let rows: Vec<(i64, String)> = c
        .prepare("SELECT seq, commitment FROM audit_events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    c.execute("DELETE FROM merkle_hashes", []).unwrap();
    let mut tree = MemoryTree::new();
    for (seq, commitment) in rows {
        let leaf = scimtrail_audit::leaf_hash(commitment.as_bytes());
        c.execute(
            "UPDATE audit_events SET leaf_hash = ? WHERE seq = ?",
            params![&leaf[..], seq],
        )
        .unwrap();
        tree.push(leaf).unwrap();
    }
    let n = count(c, "SELECT COUNT(*) FROM audit_events") as u64;
    let stored = (0..n).map(|i| 1 + i.trailing_ones() as u64).sum::<u64>();
    use scimtrail_audit::merkle::HashStore as _;
    let hashes = tree.read_hashes(&(0..stored).collect::<Vec<_>>()).unwrap();
    for (i, h) in hashes.iter().enumerate() {
        c.execute(
            "INSERT INTO merkle_hashes (idx, hash) VALUES (?, ?)",
            params![i as i64, &h[..]],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn verify_names_every_kind_of_tampering() {
    let log = written_log().await;
    let (code, v) = verify(log.path());
    assert_eq!(code, 0, "the untouched log verifies: {v}");
    let events = v["report"]["events"].as_u64().unwrap();
    assert!(events >= 20, "{v}");
    assert_eq!(
        v["report"]["checkpointed"].as_u64(),
        Some(events),
        "the last checkpoint covers all: {v}"
    );
    assert!(v["checkpointFileLines"].as_u64().unwrap() >= 1);

    // One byte of an event changed.
    let d = edited(log.path(), "UPDATE audit_events SET commitment = replace(commitment, '\"status\":201', '\"status\":200') WHERE seq = 5");
    assert_fails(d.path(), Some(5), "stored leaf hash");

    // An index column changed (filters would select wrongly), the commitment untouched.
    let d = edited(
        log.path(),
        "UPDATE audit_events SET action = 'user.read' WHERE seq = 4",
    );
    assert_fails(d.path(), Some(4), "index column action");

    // Two event ids swapped: lookups, proofs and filters by id would serve the other event.
    let d = edited(
        log.path(),
        "UPDATE audit_events SET id = 'x' || id WHERE seq = 5;",
    );
    assert_fails(d.path(), Some(5), "index column id");

    // A line of the checkpoint file whose fields were edited (those who tail the file read
    // them), while its signed note stays.
    let d = copy_of(log.path());
    {
        let path = d.path().join("checkpoints.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["treeSize"] = json!(last["treeSize"].as_u64().unwrap() + 5);
        std::fs::write(&path, format!("{text}{last}\n")).unwrap();
    }
    assert_fails(d.path(), None, "not what its signed note says");

    // A payload deleted by hand (a prune would have recorded itself, and covered the event).
    let d = copy_of(log.path());
    conn(d.path())
        .execute("DELETE FROM audit_payloads WHERE seq = 8", [])
        .unwrap();
    assert_fails(d.path(), Some(8), "deleted outside a prune");

    // One payload changed while its commitment stays.
    let d = copy_of(log.path());
    {
        let c = conn(d.path());
        let vals: String = c
            .query_row("SELECT vals FROM audit_payloads WHERE seq = 6", [], |r| {
                r.get(0)
            })
            .unwrap();
        let changed = vals.replacen("@example.com", "@exampl3.com", 1);
        assert_ne!(vals, changed);
        c.execute(
            "UPDATE audit_payloads SET vals = ? WHERE seq = 6",
            [changed],
        )
        .unwrap();
    }
    assert_fails(d.path(), Some(6), "does not match its digest");

    // A row deleted.
    let d = copy_of(log.path());
    conn(d.path())
        .execute("DELETE FROM audit_events WHERE seq = 7", [])
        .unwrap();
    assert_fails(d.path(), Some(7), "missing");

    // The newest 10 rows deleted together with the stored checkpoints (and their tree
    // hashes): only the checkpoint file outside the database still knows.
    let d = copy_of(log.path());
    {
        let c = conn(d.path());
        let keep = events as i64 - 10;
        c.execute("DELETE FROM audit_events WHERE seq >= ?", [keep])
            .unwrap();
        c.execute("DELETE FROM audit_payloads WHERE seq >= ?", [keep])
            .unwrap();
        c.execute("DELETE FROM checkpoints", []).unwrap();
        recompute_hashes(&c);
    }
    assert_fails(d.path(), Some(events - 10), "deleted");

    // Two rows swapped.
    let d = copy_of(log.path());
    {
        let c = conn(d.path());
        c.execute_batch(
            "UPDATE audit_events SET seq = -1 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 4; \
             UPDATE audit_events SET seq = 4 WHERE seq = -1; \
             UPDATE audit_payloads SET seq = -1 WHERE seq = 3; UPDATE audit_payloads SET seq = 3 WHERE seq = 4; \
             UPDATE audit_payloads SET seq = 4 WHERE seq = -1;",
        )
        .unwrap();
    }
    assert_fails(d.path(), Some(3), "moved or swapped");

    // The whole table rewritten with recomputed hashes: an edited event, every leaf hash and
    // the stored tree recomputed. The stored checkpoints' signed roots no longer match.
    let d = copy_of(log.path());
    {
        let c = conn(d.path());
        c.execute(
            "UPDATE audit_events SET commitment = replace(commitment, '\"action\":\"user.deactivate\"', '\"action\":\"user.update\"'), \
             action = replace(action, 'user.deactivate', 'user.update')",
            [],
        )
        .unwrap();
        recompute_hashes(&c);
    }
    assert_fails(d.path(), None, "does not have the root");
    // …and with the stored checkpoints deleted too, the file outside still catches it.
    {
        conn(d.path())
            .execute("DELETE FROM checkpoints", [])
            .unwrap();
    }
    assert_fails(d.path(), None, "checkpoints.jsonl");

    // A stored checkpoint whose row was edited to fit a rewritten tree: its signature says
    // otherwise.
    let d = copy_of(log.path());
    conn(d.path())
        .execute("UPDATE checkpoints SET root = zeroblob(32)", [])
        .unwrap();
    assert_fails(d.path(), None, "another size or root");

    // The tree table alone damaged: proofs would be wrong, and verify says so.
    let d = edited(
        log.path(),
        "UPDATE merkle_hashes SET hash = zeroblob(32) WHERE idx = 2",
    );
    let (code, v) = verify(d.path());
    assert_eq!(code, 1, "{v}");
    assert!(
        v["failure"]["what"]
            .as_str()
            .unwrap()
            .contains("stored Merkle tree"),
        "{v}"
    );

    // A tree hash planted beyond the log (the next append would fail): named.
    let d = edited(log.path(), "INSERT INTO merkle_hashes (idx, hash) VALUES ((SELECT MAX(idx) + 1 FROM merkle_hashes), zeroblob(32))");
    assert_fails(d.path(), None, "beyond the log");

    // A payload planted for a seq the log does not have yet: named.
    let d = edited(
        log.path(),
        "INSERT INTO audit_payloads (seq, salt, vals) VALUES ((SELECT MAX(seq) + 1 FROM audit_events), x'00', 'null')",
    );
    assert_fails(d.path(), Some(events), "beyond the log");

    // Human output names the seq too.
    let d = copy_of(log.path());
    conn(d.path())
        .execute("DELETE FROM audit_events WHERE seq = 2", [])
        .unwrap();
    let (code, _, err) = run(&["audit", "verify", "--database", &db(d.path())]);
    assert_eq!(code, 1);
    assert!(err.contains("seq 2"), "{err}");
}

#[tokio::test]
async fn prune_removes_payloads_and_the_log_still_verifies() {
    let log = written_log().await;
    let before = count(&conn(log.path()), "SELECT COUNT(*) FROM audit_payloads");
    let (code, out, err) = run(&[
        "audit",
        "prune",
        "--database",
        &db(log.path()),
        "--older-than",
        "0s",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let dry: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(dry["report"]["dryRun"], true);
    assert!(dry["report"]["payloads"].as_i64().unwrap() >= before - 1);
    assert_eq!(
        count(&conn(log.path()), "SELECT COUNT(*) FROM audit_payloads"),
        before + 1,
        "a dry run removes nothing (and records its event)"
    );

    let (code, out, err) = run(&[
        "audit",
        "prune",
        "--database",
        &db(log.path()),
        "--older-than",
        "0s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed the payloads of"), "{out}");
    let c = conn(log.path());
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM audit_payloads"),
        1,
        "only the prune's own event keeps its payload"
    );
    let prune_events = count(
        &c,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'audit.prune'",
    );
    assert_eq!(prune_events, 2);
    let (code, v) = verify(log.path());
    assert_eq!(code, 0, "a pruned log verifies: {v}");
    assert!(v["report"]["pruned"].as_u64().unwrap() >= 20);
    let (code, _, err) = run(&[
        "audit",
        "prune",
        "--database",
        &db(log.path()),
        "--older-than",
        "ninety days",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("90d"), "{err}");
    for age in ["9223372036854775807d", "100000000000d", "3000000d"] {
        let (code, _, err) = run(&[
            "audit",
            "prune",
            "--database",
            &db(log.path()),
            "--older-than",
            age,
        ]);
        assert_eq!(code, 1, "{age}: {err}");
        assert!(
            err.contains("too long") && !err.contains("panicked"),
            "{age}: {err}"
        );
    }
}

fn python_with_cryptography() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var_os("SCIMTRAIL_REQUIRE_PYTHON_VERIFIER").is_none(),
        "CI requires python3 with cryptography for the reference verifier"
    );
    ok
}

fn reference_verifier() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_bundle.py")
}

#[tokio::test]
async fn bundles_verify_offline_and_name_the_damage() {
    let log = written_log().await;
    // Some payloads pruned first: a bundle of a pruned log still verifies.
    let (code, _, err) = run(&[
        "audit",
        "prune",
        "--database",
        &db(log.path()),
        "--older-than",
        "0s",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    let key = log.path().join("log-key.pub");
    let key = key.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let full = out.path().join("full");
    let (code, stdout, err) = run(&[
        "audit",
        "export",
        "--database",
        &db(log.path()),
        "--out",
        full.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    for f in [
        "checkpoint",
        "log-key.pub",
        "leaves.jsonl",
        "payloads.jsonl",
        "proofs.jsonl",
    ] {
        assert!(full.join(f).exists(), "{f}");
    }
    let (code, stdout, err) = run(&[
        "audit",
        "verify",
        "--bundle",
        full.to_str().unwrap(),
        "--key",
        key,
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("complete"), "{stdout}");

    let filtered = out.path().join("filtered");
    let (code, stdout, err) = run(&[
        "audit",
        "export",
        "--database",
        &db(log.path()),
        "--out",
        filtered.to_str().unwrap(),
        "--filter",
        "action eq \"user.deactivate\"",
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["events"], 4, "{summary}");
    let (code, stdout, err) = run(&[
        "audit",
        "verify",
        "--bundle",
        filtered.to_str().unwrap(),
        "--key",
        key,
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let r: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (
            r["bundle"]["events"].as_u64(),
            r["bundle"]["complete"].as_bool()
        ),
        (Some(4), Some(false))
    );

    if python_with_cryptography() {
        for b in [&full, &filtered] {
            let o = Command::new("python3")
                .arg(reference_verifier())
                .arg(b)
                .args(["--key", key])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "reference verifier: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    } else {
        eprintln!("skipped the Python reference verifier: python3 with the cryptography package is not installed");
    }

    // Damage, each named by file and line, by both verifiers.
    let damage = |name: &str, f: &dyn Fn(&Path)| -> PathBuf {
        let d = out.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&full).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        f(&d);
        d
    };
    let edit_line = |d: &Path, file: &str, line: usize, from: &str, to: &str| {
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert!(
            lines[line - 1].contains(from),
            "{} has no {from}",
            lines[line - 1]
        );
        lines[line - 1] = lines[line - 1].replacen(from, to, 1);
        std::fs::write(d.join(file), lines.join("\n") + "\n").unwrap();
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            damage("leaf", &|d| {
                edit_line(
                    d,
                    "leaves.jsonl",
                    2,
                    "\"tenant\":\"default\"",
                    "\"tenant\":\"defaulT\"",
                )
            }),
            "leaves.jsonl:2",
        ),
        (
            damage("payload", &|d| {
                edit_line(d, "payloads.jsonl", 3, "example.com", "example.org")
            }),
            "payloads.jsonl:3",
        ),
        (
            damage("proof", &|d| {
                edit_line(d, "proofs.jsonl", 4, "\"hashes\":[\"", "\"hashes\":[\"A")
            }),
            "proofs.jsonl:4",
        ),
        (
            damage("signature", &|d| {
                let t = std::fs::read_to_string(d.join("checkpoint")).unwrap();
                let (body, sig) = t.split_once("\n\n").unwrap();
                let n: u64 = body.lines().nth(1).unwrap().parse().unwrap();
                let forged = body.replacen(&format!("\n{n}\n"), &format!("\n{}\n", n + 1), 1);
                std::fs::write(d.join("checkpoint"), format!("{forged}\n\n{sig}")).unwrap();
            }),
            "checkpoint",
        ),
        (
            damage("missing", &|d| {
                std::fs::remove_file(d.join("proofs.jsonl")).unwrap()
            }),
            "proofs.jsonl",
        ),
        (
            damage("unterminated", &|d| {
                let t = std::fs::read_to_string(d.join("leaves.jsonl")).unwrap();
                std::fs::write(d.join("leaves.jsonl"), t.trim_end()).unwrap();
            }),
            "leaves.jsonl",
        ),
    ];
    for (d, needle) in &cases {
        let (code, stdout, err) = run(&[
            "audit",
            "verify",
            "--bundle",
            d.to_str().unwrap(),
            "--key",
            key,
        ]);
        assert_eq!(code, 1, "{needle}: {stdout}{err}");
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
        if python_with_cryptography() {
            let o = Command::new("python3")
                .arg(reference_verifier())
                .arg(d)
                .args(["--key", key])
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "reference verifier on {needle}");
        }
    }
    // A filter the log cannot serve, or a directory that is not empty: refused, nothing written.
    let bad = out.path().join("bad-filter");
    let (code, _, err) = run(&[
        "audit",
        "export",
        "--database",
        &db(log.path()),
        "--out",
        bad.to_str().unwrap(),
        "--filter",
        "operation.path eq \"x\"",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid --filter"), "{err}");
    assert!(!bad.exists(), "nothing written for a bad filter");
    let (code, _, err) = run(&[
        "audit",
        "export",
        "--database",
        &db(log.path()),
        "--out",
        full.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("not empty"), "{err}");
    // Every export is recorded, the refused ones with their failure.
    let c = conn(log.path());
    let ok = count(
        &c,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'audit.export' AND status = 200",
    );
    let refused = count(
        &c,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'audit.export' AND status = 400",
    );
    assert_eq!((ok, refused), (2, 2));
    let (code, v) = verify(log.path());
    assert_eq!(code, 0, "the log with its export events verifies: {v}");
    let (code, _, err) = run(&["audit", "verify", "--bundle", full.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("--key"), "{err}");
}
