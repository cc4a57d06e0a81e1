//! Kill the server with SIGKILL in the middle of a concurrent write load, restart it, and check
//! the core promise: no change without its record, no record without its change, no gaps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

const WORKERS: usize = 8;

type Acked = Arc<std::sync::Mutex<Vec<String>>>;

async fn load(
    base: String,
    worker: usize,
    stop: Arc<AtomicBool>,
    ok_writes: Arc<AtomicUsize>,
    acked: Acked,
) {
    let c = common::client();
    let auth = format!("Bearer {}", common::TOKEN);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    let mut group: Option<String> = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        i += 1;
        let user = json!({"userName": format!("w{worker}-u{i}"), "active": true, "password": "pw"});
        let Ok(r) = c
            .post(format!("{base}/scim/v2/Users"))
            .header("authorization", &auth)
            .json(&user)
            .send()
            .await
        else {
            break;
        };
        if r.status() != 201 {
            continue;
        }
        ok_writes.fetch_add(1, Ordering::Relaxed);
        let Ok(u) = r.json::<Value>().await else {
            break;
        };
        let id = u["id"].as_str().unwrap_or_default().to_string();
        // Answered 201: from here on the user must survive any crash.
        acked.lock().unwrap().push(id.clone());
        let patch = json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
        if c.patch(format!("{base}/scim/v2/Users/{id}"))
            .header("authorization", &auth)
            .json(&patch)
            .send()
            .await
            .is_err()
        {
            break;
        }
        match &group {
            None => {
                let g =
                    json!({"displayName": format!("group-{worker}"), "members": [{"value": id}]});
                if let Ok(r) = c
                    .post(format!("{base}/scim/v2/Groups"))
                    .header("authorization", &auth)
                    .json(&g)
                    .send()
                    .await
                {
                    if let Ok(v) = r.json::<Value>().await {
                        group = v["id"].as_str().map(str::to_string);
                    }
                }
            }
            Some(gid) => {
                let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                let _ = c
                    .patch(format!("{base}/scim/v2/Groups/{gid}"))
                    .header("authorization", &auth)
                    .json(&add)
                    .send()
                    .await;
            }
        }
        if i % 3 == 0 {
            let _ = c
                .delete(format!("{base}/scim/v2/Users/{id}"))
                .header("authorization", &auth)
                .send()
                .await;
        }
        let _ = c
            .get(format!("{base}/scim/v2/Users/{id}"))
            .header("authorization", &auth)
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_write_load_leaves_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[("RUST_LOG", "warn")]);
    let stop = Arc::new(AtomicBool::new(false));
    let ok_writes = Arc::new(AtomicUsize::new(0));
    let acked: Acked = Arc::default();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (stop, ok, acked) = (stop.clone(), ok_writes.clone(), acked.clone());
            tokio::spawn(load(server.base.clone(), w, stop, ok, acked))
        })
        .collect();
    // Let the load build up, then pull the plug mid-flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok_writes.load(Ordering::Relaxed) < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.crash();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let before_restart = ok_writes.load(Ordering::Relaxed);
    assert!(
        before_restart >= 150,
        "the load ran ({before_restart} creates)"
    );

    // Restart on the same database: it must come up and keep appending without a gap.
    let server = common::start(dir.path(), &[("RUST_LOG", "warn")]);
    let c = common::client();
    let r = c
        .post(server.url("/scim/v2/Users"))
        .header("authorization", format!("Bearer {}", common::TOKEN))
        .json(&json!({"userName": "after-restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.terminate();

    check_database(&dir.path().join("scimtrail.db")).await;

    // And the whole tamper-evident log verifies: every leaf, payload and stored tree hash,
    // against every checkpoint signed before and after the crash.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args(["audit", "verify", "--json", "--database"])
        .arg(format!("sqlite://{}/scimtrail.db", dir.path().display()))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "verify after a crash: {report}");
    assert!(
        report["report"]["checkpoints"].as_u64().unwrap() >= 2,
        "{report}"
    );
}

async fn check_database(path: &std::path::Path) {
    let mut db = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    // seq is 0..n-1 without gaps.
    let row = sqlx::query("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let (n, min, max): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert!(n > 300, "events were written ({n})");
    assert_eq!((min, max), (0, n - 1), "seq has no gaps");

    // Every stored version has exactly one event, and it is the event of that version.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource_versions v LEFT JOIN audit_events e ON e.seq = v.event_seq \
         WHERE e.seq IS NULL OR e.target_id IS NOT v.id \
            OR json_extract(e.commitment, '$.target.versionAfter') IS NOT v.version",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "a version without its event");
    let shared: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT event_seq FROM resource_versions GROUP BY event_seq HAVING COUNT(*) > 1)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(shared, 0);

    // Every successful write event has its version.
    let writes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE status < 400 \
         AND json_extract(commitment, '$.target.versionAfter') IS NOT json_extract(commitment, '$.target.versionBefore')",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let versioned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events e WHERE status < 400 \
         AND json_extract(commitment, '$.target.versionAfter') IS NOT json_extract(commitment, '$.target.versionBefore') \
         AND EXISTS (SELECT 1 FROM resource_versions v WHERE v.event_seq = e.seq)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(writes > 300, "write events were recorded ({writes})");
    assert_eq!(writes, versioned, "a write event without its version");

    // Every resource's current version is a stored version.
    let missing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resources r WHERE NOT EXISTS \
         (SELECT 1 FROM resource_versions v WHERE v.tenant = r.tenant AND v.id = r.id AND v.version = r.version)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(missing, 0, "a resource state without its version");

    // Group membership history explains the current memberships exactly: a member is in a
    // group if and only if its latest recorded change there is an add, and every recorded
    // change belongs to a stored version of that group.
    let latest =
        "SELECT tenant, group_id, member_id, op FROM membership_changes c WHERE version = \
                  (SELECT MAX(version) FROM membership_changes c2 WHERE c2.tenant = c.tenant \
                   AND c2.group_id = c.group_id AND c2.member_id = c.member_id)";
    let unexplained: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM ({latest}) l \
         WHERE l.tenant = m.tenant AND l.group_id = m.group_id AND l.member_id = m.member_id \
         AND l.op = 'add')"
    ))
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(unexplained, 0, "a membership without its recorded change");
    let lost: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM ({latest}) l WHERE l.op = 'add' AND NOT EXISTS (SELECT 1 FROM \
         memberships m WHERE m.tenant = l.tenant AND m.group_id = l.group_id \
         AND m.member_id = l.member_id)"
    ))
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(lost, 0, "a recorded member add without its membership");
    let stray: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership_changes c WHERE NOT EXISTS (SELECT 1 FROM \
         resource_versions v WHERE v.tenant = c.tenant AND v.id = c.group_id AND v.version = c.version)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(stray, 0, "a member change without its group version");
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM membership_changes")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(
        recorded >= WORKERS as i64,
        "member changes were recorded ({recorded})"
    );

    // Each stored event still hashes to its leaf hash.
    let payloads: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events e JOIN audit_payloads p ON p.seq = e.seq",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(payloads, n, "every event has its payload");
    // The stored tree has exactly the hashes its n leaves append (1 + trailing ones of each
    // leaf index).
    let expected: i64 = (0..n).map(|i| 1 + i.trailing_ones() as i64).sum();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM merkle_hashes")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, expected, "the tree has every leaf's hashes");
    let rows = sqlx::query("SELECT commitment, leaf_hash FROM audit_events")
        .fetch_all(&mut db)
        .await
        .unwrap();
    for row in rows {
        let body: String = row.get(0);
        let leaf: Vec<u8> = row.get(1);
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(body.as_bytes());
        assert_eq!(h.finalize().as_slice(), leaf.as_slice());
    }
}
