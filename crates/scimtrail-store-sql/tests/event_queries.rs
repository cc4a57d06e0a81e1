#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Event queries on SQLite at the edges of the scan budget: pages that end where their window
//! ends still cover every match exactly once, also while events arrive between pages; and the
//! query plan of every filterable attribute walks an index or a bounded range of the log,
//! never the whole table.

use std::collections::BTreeSet;
use std::sync::Arc;

use scimtrail_audit::{Change, Outcome};
use scimtrail_core::Registry;
use scimtrail_store::testsuite::{append, event, event_seqs, filter};
use scimtrail_store::{EventQuery, Store};
use scimtrail_store_sql::{SqliteOptions, SqliteStore};
use serde_json::json;

const TENANT: &str = "t";

async fn store(budget: u64) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let options = SqliteOptions {
        scan_budget: Some(budget),
        ..Default::default()
    };
    let s = SqliteStore::open_with(&url, Arc::new(Registry::builtin()), &options)
        .await
        .unwrap();
    (s, dir)
}

/// Event `i` of a synthetic log: its attributes vary with `i` so filters match sparse,
/// dense and clustered subsets.
fn nth(i: u32) -> scimtrail_audit::AuditEvent {
    let mut e = event(TENANT, &format!("r{}", i % 10), "user.update");
    e.time = format!(
        "2026-01-{:02}T{:02}:{:02}:00.000000Z",
        1 + i / 48,
        (i / 2) % 24,
        i % 60
    );
    e.actor.name = Some(if i.is_multiple_of(3) { "okta" } else { "entra" }.into());
    e.target.id = Some(format!("u{}", i % 7));
    if i.is_multiple_of(11) {
        e.outcome = Outcome::from_status(400, Some("invalidValue".into()), None);
    }
    e.changes = (0..i % 3)
        .map(|k| Change {
            op: "replace".into(),
            path: ["active", "displayName"][k as usize].into(),
            old: json!(1),
            new: json!(2),
        })
        .collect();
    e
}

const FILTERS: [&str; 9] = [
    r#"requestId eq "r3""#,
    r#"target.id eq "u2" and actor.name eq "okta""#,
    r#"outcome.status eq 400"#,
    r#"outcome.scimType eq "invalidValue" and changes.path eq "active""#,
    r#"changes.path eq "displayName""#,
    r#"time ge "2026-01-02T00:00:00Z" and time lt "2026-01-03T05:00:00Z""#,
    r#"time ge "2026-01-01T00:00:00Z" and outcome.status ge 400"#,
    r#"seq gt 20 and actor.name co "ok""#,
    r#"action eq "user.update""#,
];

/// Which of events `0..n` a filter matches, worked out here rather than by the store.
fn expected(f: &str, n: u32) -> Vec<u64> {
    let matches = |i: u32| {
        let e = nth(i);
        let paths: Vec<&str> = e.changes.iter().map(|c| c.path.as_str()).collect();
        let status = e.outcome.status;
        match f {
            _ if f == FILTERS[0] => e.request_id == "r3",
            _ if f == FILTERS[1] => {
                e.target.id.as_deref() == Some("u2") && e.actor.name.as_deref() == Some("okta")
            }
            _ if f == FILTERS[2] => status == 400,
            _ if f == FILTERS[3] => status == 400 && paths.contains(&"active"),
            _ if f == FILTERS[4] => paths.contains(&"displayName"),
            _ if f == FILTERS[5] => {
                e.time.as_str() >= "2026-01-02" && e.time.as_str() < "2026-01-03T05"
            }
            _ if f == FILTERS[6] => status >= 400,
            _ if f == FILTERS[7] => i > 20 && e.actor.name.as_deref() == Some("okta"),
            _ if f == FILTERS[8] => true,
            _ => unreachable!(),
        }
    };
    (0..n)
        .filter(|i| matches(*i))
        .rev()
        .map(u64::from)
        .collect()
}

/// With a scan budget of 5 events, pages end early and carry cursors; following them finds
/// every match once, in both directions and at several page sizes.
#[tokio::test]
async fn short_pages_cover_every_match_once() {
    let (s, _dir) = store(5).await;
    for i in 0..150 {
        append(&s, nth(i)).await;
    }
    for f in FILTERS {
        let want = expected(f, 150);
        for count in [1, 3, 50] {
            assert_eq!(
                event_seqs(&s, TENANT, Some(f), count, false).await,
                want,
                "{f}, count {count}, descending"
            );
            let mut asc = want.clone();
            asc.reverse();
            assert_eq!(
                event_seqs(&s, TENANT, Some(f), count, true).await,
                asc,
                "{f}, count {count}, ascending"
            );
        }
    }
}

/// Events appended between pages: a descending walk shows exactly what existed when it
/// began, an ascending one everything, the new events included; neither repeats an event.
#[tokio::test]
async fn paging_while_events_arrive_never_skips_or_repeats() {
    let (s, _dir) = store(4).await;
    for i in 0..60 {
        append(&s, nth(i)).await;
    }
    for ascending in [false, true] {
        let f = FILTERS[8];
        let mut seen = Vec::new();
        let mut after = None;
        let mut next = 60 + u32::from(ascending) * 1000;
        loop {
            let page = s
                .events(
                    TENANT,
                    &EventQuery {
                        filter: Some(filter(f)),
                        count: 3,
                        after_seq: after,
                        ascending,
                        unbounded: false,
                    },
                )
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|e| e["seq"].as_u64().unwrap()));
            // Two new events after every page.
            for _ in 0..2 {
                append(&s, nth(next)).await;
                next += 1;
            }
            match page.next_seq {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let unique: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "an event came twice: {seen:?}");
        let log: Vec<u64> = event_seqs(&s, TENANT, None, 1000, true).await;
        if ascending {
            // Every event up to the last one read, in order, none missing.
            let last = *seen.last().unwrap();
            let want: Vec<u64> = log.iter().copied().filter(|q| *q <= last).collect();
            assert_eq!(seen, want);
            assert!(last >= 60, "the walk reached the new events");
        } else {
            let want: Vec<u64> = (0..60).rev().collect();
            assert_eq!(seen, want, "exactly the events there when the walk began");
        }
    }
}

/// The plan of every indexed attribute walks its index; a time window walks a range of the
/// log's primary key; nothing scans the whole table.
#[tokio::test]
async fn every_filter_walks_an_index_or_a_bounded_range() {
    let (s, _dir) = store(1000).await;
    for i in 0..200 {
        append(&s, nth(i)).await;
    }
    let cases: &[(&str, &str)] = &[
        (r#"requestId eq "r1""#, "audit_events_request"),
        (r#"parentId eq "p""#, "audit_events_parent"),
        (r#"actor.id eq "x""#, "audit_events_actor_id"),
        (r#"actor.name eq "okta""#, "audit_events_actor"),
        (r#"actor.kind eq "operator""#, "audit_events_rare_actor"),
        (r#"actor.ip eq "192.0.2.1""#, "audit_events_ip"),
        (r#"action eq "user.update""#, "audit_events_action"),
        (r#"target.id eq "u1""#, "audit_events_target"),
        (r#"target.externalId eq "x""#, "audit_events_external_id"),
        (r#"target.display eq "x""#, "audit_events_display"),
        (r#"outcome.result eq "failure""#, "audit_events_failure"),
        (r#"target.type eq "Token""#, "audit_events_rare_target"),
        (r#"outcome.status eq 400"#, "audit_events_error_status"),
        (
            r#"outcome.scimType eq "invalidValue""#,
            "audit_events_scim_type",
        ),
        (r#"changes.path eq "active""#, "audit_change_paths_path"),
        (
            r#"target.id eq "u1" and operation.method eq "GET""#,
            "audit_events_target",
        ),
        (
            r#"outcome.status eq 400 and requestId eq "r1""#,
            "audit_events_request",
        ),
        (r#"id eq "x""#, "sqlite_autoindex_audit_events_1"),
        (
            r#"time ge "2026-01-02T00:00:00Z" and actor.name co "ok""#,
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        // Common values are served by a window, not by an index every event would pay for.
        (
            r#"time ge "2026-01-02T00:00:00Z" and actor.client eq "Okta""#,
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        (
            r#"seq gt 5 and outcome.result eq "success" and operation.method eq "GET""#,
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        (
            r#"seq gt 5 and target.type eq "User" and actor.kind eq "token""#,
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        (
            r#"seq lt 100 and actor.name co "x""#,
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
    ];
    for (f, index) in cases {
        for ascending in [false, true] {
            let q = EventQuery {
                filter: Some(filter(f)),
                count: 50,
                after_seq: None,
                ascending,
                unbounded: false,
            };
            let plan = s.explain_events(TENANT, &q).await.unwrap();
            let driving = plan.first().cloned().unwrap_or_default();
            // `changes.path` drives through its table, whose matches the page looks up by seq.
            let walks = if index.starts_with("audit_change_paths") {
                driving.contains("(rowid=?)")
                    && plan
                        .iter()
                        .any(|l| l.starts_with("SEARCH audit_change_paths") && l.contains(index))
            } else {
                driving.contains(index)
            };
            assert!(
                driving.starts_with("SEARCH e USING") && walks,
                "{f}: the page query must walk {index}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|l| l.starts_with("SCAN")),
                "{f}: a step scans a whole table: {plan:?}"
            );
        }
    }
    // With no filter at all the newest page is a range of the primary key too.
    let q = EventQuery {
        filter: None,
        count: 50,
        after_seq: None,
        ascending: false,
        unbounded: false,
    };
    let plan = s.explain_events(TENANT, &q).await.unwrap();
    assert!(
        plan[0].contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{plan:?}"
    );
}
