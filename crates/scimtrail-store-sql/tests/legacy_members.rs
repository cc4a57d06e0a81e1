#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Members hidden by a delete from before deletes cascaded: their rows stayed in `memberships`.
//! A Group's members at a version are what a GET showed then — without such a member from the
//! point of its deletion on, with it before.

use std::sync::Arc;

use scimtrail_core::Registry;
use scimtrail_store::testsuite::{apply, create, group, replace, user, TENANT};
use scimtrail_store::{Member, MemberDelta, Store};
use scimtrail_store_sql::SqliteStore;

#[tokio::test]
async fn a_member_deleted_the_old_way_is_hidden_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(
        &format!("sqlite://{}", path.display()),
        Arc::new(Registry::builtin()),
    )
    .await
    .unwrap();
    apply(&store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(&store, create(TENANT, "User", "u2", user("bob"))).await;
    let both = [("u1", "User", None), ("u2", "User", None)];
    apply(&store, create(TENANT, "Group", "g1", group("G", &both))).await;
    // The old delete: its event, a tombstone and its version, the membership row left.
    let e = store
        .append_event(scimtrail_store::testsuite::event(
            TENANT,
            "old-delete",
            "user.delete",
        ))
        .await
        .unwrap();
    let seq = e.seq.unwrap() as i64;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE resources SET deleted = 1, version = 2 WHERE id = 'u2'",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO resource_versions (tenant, id, version, resource_type, time, deleted, \
             data, event_seq) VALUES (?, 'u2', 2, 'User', 't', 1, NULL, ?)",
            rusqlite::params![TENANT, seq],
        )
        .unwrap();
    }
    let mut w = replace(TENANT, "Group", "g1", 1, group("G", &[]));
    w.members = Some(MemberDelta {
        add: vec![Member {
            value: "u1".into(),
            resource_type: "User".into(),
            display: Some("Alice".into()),
        }],
        remove: vec![],
    });
    apply(&store, w).await;
    let ids = |m: Vec<Member>| m.into_iter().map(|m| m.value).collect::<Vec<_>>();
    assert_eq!(
        ids(store.members_at(TENANT, "g1", 1).await.unwrap()),
        ["u1", "u2"]
    );
    assert_eq!(
        ids(store.members_at(TENANT, "g1", 2).await.unwrap()),
        ["u1"]
    );
    let g = store
        .get(TENANT, "Group", "g1", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        g.data["members"].as_array().unwrap().len(),
        1,
        "a GET hides it too"
    );
}
