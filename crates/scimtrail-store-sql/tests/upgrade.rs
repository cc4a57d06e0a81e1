#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A database written before leaf format v1 (its leaves hashed the whole event) is re-sealed
//! once at start: v1 commitments, payloads apart, the stored tree, the same events on read.

use std::sync::Arc;

use scimtrail_audit::merkle::CompactRange;
use scimtrail_core::Registry;
use scimtrail_store::testsuite::{event, TENANT};
use scimtrail_store::Store;
use scimtrail_store_sql::SqliteStore;
use serde_json::json;

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");

/// A database in `dir` migrated with only these of today's migrations: an older schema.
async fn old_database(dir: &std::path::Path, migrations: &[&str]) -> std::path::PathBuf {
    let path = dir.join("old.db");
    let old = dir.join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for f in migrations {
        std::fs::copy(format!("{MIGRATIONS}/{f}"), old.join(f)).unwrap();
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    pool.close().await;
    path
}

#[tokio::test]
async fn a_pre_v1_log_is_resealed_once() {
    let dir = tempfile::tempdir().unwrap();
    // The schema as it was before leaf format v1: migrations 0001 and 0002 only.
    let path = old_database(
        dir.path(),
        &["0001_init.sql", "0002_membership_changes.sql"],
    )
    .await;
    let mut originals = Vec::new();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for seq in 0..7u64 {
            let mut e = event(TENANT, &format!("old-{seq}"), "user.update");
            e.seq = Some(seq);
            e.response.body = json!({"id": format!("u{seq}"), "active": seq % 2 == 0});
            let body = serde_json::to_string(&e).unwrap();
            c.execute(
                "INSERT INTO audit_events (seq, id, tenant, time, request_id, actor_kind, action, \
                 result, status, leaf_hash, body) VALUES (?, ?, ?, ?, ?, 'token', ?, 'success', 200, ?, ?)",
                rusqlite::params![seq as i64, e.id, e.tenant, e.time, e.request_id, e.action, vec![0u8; 32], body],
            )
            .unwrap();
            originals.push(e);
        }
    }
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let rows = store.log_rows(None, None, 100).await.unwrap();
    assert_eq!(rows.len(), 7);
    let mut range = CompactRange::new();
    for (r, original) in rows.iter().zip(&originals) {
        let view = scimtrail_audit::commitment::LeafView::parse(&r.commitment).expect("v1");
        assert_eq!(view.seq, r.seq);
        view.check_payload(r.payload.as_ref().unwrap()).unwrap();
        assert_eq!(
            r.leaf_hash,
            scimtrail_audit::leaf_hash(r.commitment.as_bytes()).to_vec()
        );
        range.push(scimtrail_audit::leaf_hash(r.commitment.as_bytes()));
        let back = store.event(TENANT, &original.id).await.unwrap().unwrap();
        assert_eq!(back["response"]["body"], original.response.body);
        assert_eq!(back["requestId"], json!(original.request_id));
    }
    assert_eq!(store.tree_root(7).await.unwrap(), range.root());
    // New events continue the tree.
    let e = store
        .append_event(event(TENANT, "new", "user.get"))
        .await
        .unwrap();
    assert_eq!(e.seq, Some(7));
    drop(store);
    // A second start does not re-seal again (the leaves stay as they are).
    let store = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let again = store.log_rows(None, None, 100).await.unwrap();
    assert_eq!(again[..7], rows[..]);
}

/// Users stored when userNames were compared by their lower case get the PRECIS key once at
/// start: look-alikes stored since collide from then on; two old users that now share a key
/// both survive.
#[tokio::test]
async fn stored_user_names_are_rekeyed_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_database(
        dir.path(),
        &[
            "0001_init.sql",
            "0002_membership_changes.sql",
            "0003_leaf_format_v1.sql",
        ],
    )
    .await;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (id, name) in [("u1", "Café"), ("u2", "cafe\u{301}"), ("u3", "ＢＯＢ")] {
            c.execute(
                "INSERT INTO resources (tenant, resource_type, id, version, created, last_modified, \
                 user_name_ci, data) VALUES (?, 'User', ?, 1, 't', 't', ?, ?)",
                rusqlite::params![
                    TENANT,
                    id,
                    name.to_lowercase(),
                    json!({"userName": name}).to_string()
                ],
            )
            .unwrap();
        }
    }
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let keys: Vec<(String, String)> = {
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut s = c
            .prepare("SELECT id, user_name_ci FROM resources ORDER BY id")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(keys[0], ("u1".into(), "café".into()));
    assert_eq!(keys[1], ("u2".into(), "\u{1}u2".into()), "kept apart");
    assert_eq!(keys[2], ("u3".into(), "bob".into()));
    let f = scimtrail_core::Filter::parse(r#"userName eq "bob""#).unwrap();
    let page = store
        .list(
            TENANT,
            &scimtrail_store::ListQuery {
                resource_type: "User".into(),
                filter: Some(f),
                start_index: 1,
                count: 10,
                with_members: false,
                sort: None,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "u3");
}

#[tokio::test]
async fn stored_emails_are_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_database(
        dir.path(),
        &[
            "0001_init.sql",
            "0002_membership_changes.sql",
            "0003_leaf_format_v1.sql",
            "0004_user_name_keys.sql",
            "0005_event_queries.sql",
        ],
    )
    .await;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (id, email, deleted) in [
            ("u1", "Ann@Example.com", 0),
            ("u2", "ÉLISE@example.com", 0),
            ("u3", "gone@example.com", 1),
        ] {
            c.execute(
                "INSERT INTO resources (tenant, resource_type, id, version, deleted, created, \
                 last_modified, user_name_ci, data) VALUES (?, 'User', ?, 1, ?, 't', 't', ?, ?)",
                rusqlite::params![
                    TENANT,
                    id,
                    deleted,
                    id,
                    json!({"userName": id, "emails": [{"value": email}]}).to_string()
                ],
            )
            .unwrap();
        }
    }
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let rows: Vec<String> = {
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut s = c
            .prepare("SELECT value_ci FROM resource_emails ORDER BY value_ci")
            .unwrap();
        let r = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let pending: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM log_meta WHERE key = 'email_values'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 0, "done once");
        r
    };
    // Folded as the evaluator folds (É → é, which SQLite's lower() would not do).
    assert_eq!(rows, ["ann@example.com", "élise@example.com"]);
    let f = scimtrail_core::Filter::parse(r#"emails.value eq "élise@EXAMPLE.com""#).unwrap();
    let page = store
        .list(
            TENANT,
            &scimtrail_store::ListQuery {
                resource_type: "User".into(),
                filter: Some(f),
                start_index: 1,
                count: 10,
                with_members: false,
                sort: None,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "u2");
}
