#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The query plans of resource lists: each filter the issue names walks its index, never the
//! whole table, and what no index serves still runs inside the query.

use std::sync::Arc;

use scimtrail_core::Registry;
use scimtrail_store::testsuite::{apply, create, filter, group, user};
use scimtrail_store::{ListQuery, Sort, Store};
use scimtrail_store_sql::SqliteStore;

const TENANT: &str = "default";

async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let s = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    for i in 0..50 {
        let mut u = user(&format!("user{i}"));
        u["externalId"] = serde_json::json!(format!("ext{i}"));
        u["active"] = serde_json::json!(i % 2 == 0);
        u["emails"] =
            serde_json::json!([{"value": format!("user{i}@example.com"), "type": "work"}]);
        apply(&s, create(TENANT, "User", &format!("u{i}"), u)).await;
    }
    let members = [("u1", "User", None), ("u2", "User", None)];
    apply(&s, create(TENANT, "Group", "g1", group("Admins", &members))).await;
    (s, dir)
}

fn query(rt: &str, f: &str) -> ListQuery {
    ListQuery {
        resource_type: rt.into(),
        filter: Some(filter(f)),
        start_index: 1,
        count: 100,
        with_members: false,
        sort: None,
        after: None,
    }
}

#[tokio::test]
async fn each_indexed_filter_walks_its_index() {
    let (s, _dir) = store().await;
    let cases = [
        ("User", r#"userName eq "user3""#, "resources_user_name"),
        ("User", r#"externalId eq "ext3""#, "resources_external_id"),
        (
            "Group",
            r#"displayName eq "admins""#,
            "resources_display_name",
        ),
        ("User", r#"active eq true"#, "resources_active"),
        (
            "User",
            r#"meta.lastModified gt "2025-01-01T00:00:00Z""#,
            "resources_last_modified",
        ),
        (
            "User",
            r#"meta.created le "2026-01-01T00:00:00Z""#,
            "resources_created",
        ),
        ("Group", r#"members.value eq "u1""#, "memberships_by_member"),
        (
            "Group",
            r#"members[value eq "u1"]"#,
            "memberships_by_member",
        ),
        (
            "User",
            r#"groups.value eq "g1""#,
            "PRIMARY KEY (tenant=? AND group_id=?)",
        ),
        (
            "User",
            r#"emails.value eq "User3@Example.com""#,
            "resource_emails USING PRIMARY KEY (tenant=? AND value_ci=?)",
        ),
        (
            "User",
            r#"emails[type eq "work" and value eq "user3@example.com"]"#,
            "resource_emails USING PRIMARY KEY (tenant=? AND value_ci=?)",
        ),
    ];
    for (rt, f, index) in cases {
        let plan = s.explain_list(TENANT, &query(rt, f)).await.unwrap();
        assert!(
            plan.iter().any(|l| l.contains(index)),
            "{rt} {f}: the plan must use {index}: {plan:#?}"
        );
        assert!(
            !plan.iter().any(|l| l.starts_with("SCAN")),
            "{rt} {f}: a step scans a whole table: {plan:#?}"
        );
        // Nor walks every live resource of the type (what `resources_list` holds).
        assert!(
            !plan
                .iter()
                .any(|l| l.contains("resources_list (tenant=? AND resource_type=? AND deleted=?)")),
            "{rt} {f}: a step walks the whole list: {plan:#?}"
        );
        // And it answers what the evaluator would.
        let page = s.list(TENANT, &query(rt, f)).await.unwrap();
        assert!(page.total > 0, "{rt} {f} matches something");
    }
}

#[tokio::test]
async fn the_rest_of_a_filter_runs_inside_the_query() {
    let (s, _dir) = store().await;
    // `title` has no column: the evaluator runs as a SQL function in the same query, behind
    // the indexed term, and so does a sort by an attribute without a column.
    let mut q = query("User", r#"active eq false and title pr"#);
    q.sort = Some(Sort {
        by: scimtrail_core::AttrPath::parse("name.familyName").unwrap(),
        descending: false,
    });
    let plan = s.explain_list(TENANT, &q).await.unwrap();
    assert!(
        plan.iter().any(|l| l.contains("resources_active")),
        "{plan:#?}"
    );
    assert!(
        plan.iter().any(|l| l.contains("TEMP B-TREE FOR ORDER BY")),
        "{plan:#?}"
    );
    let page = s.list(TENANT, &q).await.unwrap();
    assert_eq!(page.total, 0);
}

/// Reading a list page by page with `startIndex` resumes each page after the previous one's
/// last row (linear, not quadratic), answers exactly what `OFFSET` would, and falls back to
/// `OFFSET` once a write changed what the offsets mean.
#[tokio::test]
async fn start_index_pages_resume_where_the_last_ended() {
    let (s, _dir) = store().await;
    let page = |start: usize| {
        let mut q = query("User", "active eq true");
        q.start_index = start;
        q.count = 7;
        q
    };
    let ids = |p: &scimtrail_store::Page| -> Vec<String> {
        p.items.iter().map(|r| r.id.clone()).collect()
    };
    let mut all = query("User", "active eq true");
    all.count = 1000;
    let whole = ids(&s.list(TENANT, &all).await.unwrap());
    assert_eq!(whole.len(), 25);
    let mut walked = Vec::new();
    let mut start = 1;
    while start <= whole.len() {
        let p = s.list(TENANT, &page(start)).await.unwrap();
        assert_eq!(p.total, 25);
        walked.extend(ids(&p));
        start += 7;
    }
    assert_eq!(walked, whole);
    assert_eq!(s.resumed_pages(), 3, "pages 2, 3 and 4 resumed");
    // A page asked for out of order is an OFFSET, and right.
    let p = s.list(TENANT, &page(4)).await.unwrap();
    assert_eq!(ids(&p), whole[3..10].to_vec());
    // After a delete, the same startIndex means another row: OFFSET again, and right.
    let first = s.list(TENANT, &page(1)).await.unwrap();
    let resumed = s.resumed_pages();
    let gone = first.items[0].clone();
    apply(
        &s,
        scimtrail_store::testsuite::delete(TENANT, "User", &gone.id, gone.version),
    )
    .await;
    let p = s.list(TENANT, &page(8)).await.unwrap();
    assert_eq!(s.resumed_pages(), resumed, "no resume across a write");
    assert_eq!(ids(&p), whole[8..15].to_vec());
}

/// A page holds at most `PAGE_MAX_BYTES` of stored JSON: one that would hold more ends early,
/// says so, and the next page starts where it ended.
#[tokio::test]
async fn a_page_ends_at_its_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let s = SqliteStore::open(&url, Arc::new(Registry::builtin()))
        .await
        .unwrap();
    let big = "x".repeat(scimtrail_store::PAGE_MAX_BYTES / 3 + 1);
    for i in 0..4 {
        let mut u = user(&format!("big{i}"));
        u["title"] = serde_json::json!(big);
        apply(&s, create(TENANT, "User", &format!("b{i}"), u)).await;
    }
    let mut q = query("User", "title pr");
    q.count = 10;
    let p = s.list(TENANT, &q).await.unwrap();
    assert_eq!(p.total, 4);
    assert_eq!(p.items.len(), 2, "three would pass the budget");
    assert!(p.cut);
    q.start_index = 3;
    let p = s.list(TENANT, &q).await.unwrap();
    let ids: Vec<&str> = p.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["b2", "b3"]);
    assert!(!p.cut);
    // One resource above the budget still comes, alone.
    let mut huge = user("huge");
    huge["title"] = serde_json::json!("y".repeat(scimtrail_store::PAGE_MAX_BYTES + 1));
    apply(&s, create(TENANT, "User", "h", huge)).await;
    let mut q = query("User", "title sw \"y\"");
    q.count = 10;
    let p = s.list(TENANT, &q).await.unwrap();
    assert_eq!(p.items.len(), 1);
    assert!(!p.cut);
}
