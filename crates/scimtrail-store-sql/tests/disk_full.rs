#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A full disk under concurrent writes (SQLite's `max_page_count` caps the database, which
//! fails exactly as a full disk does). Every answer must be true: no `seq` gap, no
//! acknowledged write lost, and no write reported failed that actually committed.

use std::sync::Arc;

use scimtrail_audit::merkle::CompactRange;
use scimtrail_core::Registry;
use scimtrail_store::testsuite::{create, user, write_event, TENANT};
use scimtrail_store::Store;
use scimtrail_store_sql::{SqliteOptions, SqliteStore};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_at_its_page_limit_gets_true_answers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let options = SqliteOptions {
        max_page_count: Some(160),
        ..Default::default()
    };
    fill_and_check(&url, &options).await;
}

/// A real full disk: a 2 MiB tmpfs (needs the right to mount, as root in CI; skipped
/// otherwise). Here the WAL itself cannot grow, so commits and cache spills fail too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_filesystem_gets_true_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs here (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let guard = Unmount(mnt.clone());
    let url = format!("sqlite://{}/t.db", mnt.display());
    // A small page cache makes big batches spill to the WAL mid-transaction; a spill that
    // fails takes the whole transaction down, which the writer must notice.
    let options = SqliteOptions {
        cache_pages: Some(10),
        ..Default::default()
    };
    let results = fill(&url, &options).await;
    // Check on a copy with room to spare (the checks write nothing, but SQLite may need to
    // recover the WAL).
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&mnt).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    drop(guard);
    check(&format!("sqlite://{}/t.db", copy.display()), &results).await;
}

type Results = Vec<(
    String,
    bool,
    Result<(scimtrail_audit::AuditEvent, Option<String>), scimtrail_store::StoreError>,
)>;

async fn fill_and_check(url: &str, options: &SqliteOptions) {
    let results = fill(url, options).await;
    check(url, &results).await;
}

async fn fill(url: &str, options: &SqliteOptions) -> Results {
    let registry = Arc::new(Registry::builtin());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_with(url, registry.clone(), options)
            .await
            .unwrap(),
    );

    // 8 writers, each creating users with a kilobyte of data, until well past the first
    // refusal; plain appends interleaved.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..120 {
                let id = format!("w{w}-{i}");
                let mut data = user(&format!("user-{w}-{i}"));
                // Large writes and small appends: when a large one no longer fits, a small
                // one after it still may.
                data["nickName"] = json!("x".repeat(if w % 2 == 0 { 6000 } else { 500 }));
                let write = create(TENANT, "User", &id, data);
                let event = write_event(&write);
                let r = if i % 5 == 4 {
                    store.append_event(event).await.map(|e| (e, None))
                } else {
                    store
                        .write(write, event)
                        .await
                        .map(|e| (e, Some(id.clone())))
                };
                results.push((id, i % 5 != 4, r));
            }
            results
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    let failed = results.iter().filter(|r| r.2.is_err()).count();
    let acked = results.len() - failed;
    assert!(acked > 20, "some writes fit ({acked})");
    assert!(failed > 100, "the disk filled up ({failed} refused)");
    for (_, _, r) in &results {
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(
                msg.contains("full") || msg.contains("nothing of this request was stored"),
                "a clear storage error: {msg}"
            );
        }
    }
    drop(store);
    results
}

/// Reopen without the cap and check every answer against what is stored.
async fn check(url: &str, results: &Results) {
    let acked = results.iter().filter(|r| r.2.is_ok()).count();
    let store = SqliteStore::open(url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let rows = store.log_rows(None, None, 100_000).await.unwrap();
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..rows.len() as u64).collect::<Vec<_>>(), "no gap");
    let acked_seqs: Vec<u64> = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().ok().and_then(|(e, _)| e.seq))
        .collect();
    assert_eq!(acked_seqs.len(), acked);
    assert_eq!(
        rows.len(),
        acked,
        "exactly the acknowledged events are stored"
    );
    for (e, _) in results.iter().filter_map(|r| r.2.as_ref().ok()) {
        let stored = store
            .event(TENANT, &e.id)
            .await
            .unwrap()
            .expect("acknowledged event stored");
        assert_eq!(stored["seq"].as_u64(), e.seq);
    }
    for (id, is_write, r) in results {
        if !*is_write {
            continue;
        }
        let got = store.get(TENANT, "User", id, false).await.unwrap();
        match r {
            Ok(_) => assert!(got.is_some(), "acknowledged create {id} was lost"),
            Err(e) => assert!(got.is_none(), "create {id} was answered {e} but committed"),
        }
    }
    // The stored tree is the tree of exactly these leaves.
    let mut range = CompactRange::new();
    for r in &rows {
        range.push(scimtrail_audit::leaf_hash(r.commitment.as_bytes()));
    }
    assert_eq!(
        store.tree_root(rows.len() as u64).await.unwrap(),
        range.root()
    );
    // And the store writes again once there is room.
    let w = create(TENANT, "User", "after", user("after"));
    let e = write_event(&w);
    assert_eq!(
        store.write(w, e).await.unwrap().seq,
        Some(rows.len() as u64)
    );
}
