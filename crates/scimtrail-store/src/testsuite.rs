#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store conformance suite (DESIGN.md invariant 5: every backend passes the same suite).
//!
//! Main design choice, after ripgrep's one-suite-many-engines tests: every check is a plain
//! `pub async fn check(store: &dyn Store)` that is handed a FRESH, EMPTY store and panics on
//! failure. A backend runs all of them with one line in its test file:
//!
//! ```ignore
//! /// `None` skips the suite (e.g. no database configured for this backend).
//! async fn fresh_sqlite() -> Option<(Arc<dyn Store>, tempfile::TempDir)> { ... }
//!
//! scimtrail_store::store_suite!(sqlite, fresh_sqlite);
//! ```
//!
//! which generates a module `sqlite` with one `#[tokio::test]` per check, each calling
//! `fresh_sqlite()` for its own store. The first element of the pair must dereference to a
//! [`Store`] (`Arc<dyn Store>`, `Box<MyStore>`, …); the second is any guard kept alive for the
//! test (a temporary directory, a database handle). A backend test crate needs `tokio` as a
//! dev-dependency. [`ALL`] lists the same checks as function pointers for other runners.
//!
//! The checks assume nothing about a backend beyond the [`Store`] trait: they build resources and
//! [`AuditEvent`]s with the helpers below and use only trait methods.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use scimtrail_audit::{Actor, AuditEvent, Operation, Outcome, Payload, Target, ACTOR_TOKEN};
use scimtrail_core::Filter;
use serde_json::{json, Value};

use crate::*;

/// The tenant most checks write to.
pub const TENANT: &str = "default";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A boxed check, as listed in [`ALL`].
pub type Check = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

// ---------------------------------------------------------------------------------------------
// The list of checks: the single source for `ALL`, `CHECKS` and `store_suite!`.

/// Invokes `$crate::$then! { [args] check, check, ... }` with every check of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_checks {
    ($then:ident [$($args:tt)*]) => {
        $crate::$then! {
            [$($args)*]
            create_get_replace_delete,
            deleted_id_is_never_reused,
            writes_name_their_resource_type,
            stale_versions_conflict,
            concurrent_replaces_one_wins,
            concurrent_writes_stay_consistent,
            failures_inside_a_batch_roll_back_alone,
            user_name_is_unique_case_insensitively,
            display_name_is_not_unique,
            writes_return_sealed_events,
            seqs_are_gap_free,
            the_tree_grows_with_the_log,
            checkpoints_cover_committed_state,
            prune_keeps_the_commitments,
            events_order_and_paging,
            events_filters,
            events_unknown_attribute_is_invalid_query,
            events_filter_every_attribute,
            events_unbounded_filters_are_refused,
            event_stats_count_per_bucket_and_group,
            tenants_are_isolated,
            list_order_and_paging,
            list_sql_filters,
            list_memory_filters,
            list_filters_agree_with_the_evaluator,
            list_totals_follow_every_write,
            group_members,
            member_deltas,
            deleting_a_member_writes_its_groups,
            history_reads,
            undelete_and_head_events,
            groups_of_users,
            lookup_live_ids,
            tokens,
        }
    };
}

/// Runs every check of the suite as its own `#[tokio::test]`, in a module `$module`, each
/// against a fresh store from `async fn $fresh() -> Option<(impl Deref<Target: Store>, G)>`
/// (defined next to the invocation; `None` skips the check). See the [module
/// docs](crate::testsuite).
#[macro_export]
macro_rules! store_suite {
    ($module:ident, $fresh:ident) => {
        $crate::__store_checks!(__store_suite_module [$module, $fresh]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite_module {
    ([$module:ident, $fresh:ident] $($check:ident),* $(,)?) => {
        mod $module {
            $(
                #[::tokio::test]
                async fn $check() {
                    let Some((store, _guard)) = super::$fresh().await else {
                        eprintln!(
                            "skipped {}::{}: backend not configured",
                            stringify!($module),
                            stringify!($check)
                        );
                        return;
                    };
                    $crate::testsuite::$check(&*store).await;
                }
            )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_check_list {
    ([] $($check:ident),* $(,)?) => {
        /// The names of every check, in suite order.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        mod boxed {
            use super::*;
            $(
                pub fn $check<'a>(
                    store: &'a dyn Store,
                ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
                    Box::pin(super::$check(store))
                }
            )*
        }

        /// Every check with its name, for runners other than [`store_suite!`](crate::store_suite).
        pub const ALL: &[(&str, Check)] = &[$((stringify!($check), boxed::$check as Check)),*];
    };
}

__store_checks!(__store_check_list []);

// ---------------------------------------------------------------------------------------------
// Helpers.

static NEXT_EVENT: AtomicU64 = AtomicU64::new(0);

/// A distinct event id (unique per process run, and across runs by its time prefix).
fn event_id() -> String {
    let n = NEXT_EVENT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("evt-{nanos:x}-{n:06}")
}

/// `2026-01-01T00:00:SS.000000Z` (the log's time format), `n` seconds after a fixed instant.
pub fn time(n: u32) -> String {
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.000000Z",
        n / 3600,
        n / 60 % 60,
        n % 60
    )
}

/// A complete, unsealed audit event with a fresh id.
pub fn event(tenant: &str, request_id: &str, action: &str) -> AuditEvent {
    AuditEvent {
        id: event_id(),
        seq: None,
        time: time(0),
        tenant: tenant.into(),
        request_id: request_id.into(),
        actor: Actor {
            kind: ACTOR_TOKEN.into(),
            id: Some("tok-1".into()),
            name: Some("okta".into()),
            client: Some("Okta".into()),
            ip: Some("192.0.2.1".into()),
            user_agent: Some("Okta SCIM Client 1.0.0".into()),
        },
        action: action.into(),
        operation: Operation {
            method: "GET".into(),
            path: "/scim/v2/Users".into(),
            query: None,
            scim: Some("list".into()),
        },
        target: Target {
            system: "scim".into(),
            ..Default::default()
        },
        outcome: Outcome::from_status(200, None, None),
        latency_ms: 1.5,
        changes: vec![],
        request: Payload::default(),
        response: Payload::default(),
        parent_id: None,
        leaf_hash: None,
    }
}

/// The event a server would record for `w`.
pub fn write_event(w: &ResourceWrite) -> AuditEvent {
    let (verb, method, status) = match w.kind {
        WriteKind::Create => ("create", "POST", 201),
        WriteKind::Replace => ("replace", "PUT", 200),
        WriteKind::Delete => ("delete", "DELETE", 204),
        WriteKind::Undelete => ("restore", "POST", 200),
    };
    let mut e = event(
        &w.tenant,
        &format!("req-{}", event_id()),
        &format!("{}.{verb}", w.resource_type.to_ascii_lowercase()),
    );
    e.time = w.time.clone();
    e.operation = Operation {
        method: method.into(),
        path: format!("/scim/v2/{}s/{}", w.resource_type, w.id),
        query: None,
        scim: Some(verb.into()),
    };
    e.target = Target {
        system: "scim".into(),
        resource_type: Some(w.resource_type.clone()),
        id: Some(w.id.clone()),
        external_id: w
            .data
            .as_ref()
            .and_then(|d| d.get("externalId"))
            .and_then(Value::as_str)
            .map(str::to_string),
        display: None,
        version_before: w.expected_version,
        version_after: Some(w.new_version),
    };
    e.outcome = Outcome::from_status(status, None, None);
    e
}

pub fn user(user_name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name})
}

/// A Group; `members` are `(id, type, display)`.
pub fn group(display_name: &str, members: &[(&str, &str, Option<&str>)]) -> Value {
    let mut g = json!({"schemas": [GROUP_SCHEMA], "displayName": display_name});
    if !members.is_empty() {
        g["members"] = Value::Array(members.iter().map(|m| member(*m)).collect());
    }
    g
}

fn member((id, ty, display): (&str, &str, Option<&str>)) -> Value {
    let mut m = json!({"value": id, "type": ty});
    if let Some(d) = display {
        m["display"] = Value::String(d.into());
    }
    m
}

pub fn create(tenant: &str, resource_type: &str, id: &str, data: Value) -> ResourceWrite {
    ResourceWrite {
        tenant: tenant.into(),
        resource_type: resource_type.into(),
        id: id.into(),
        kind: WriteKind::Create,
        expected_version: None,
        new_version: 1,
        time: time(0),
        data: Some(data),
        members: None,
    }
}

pub fn replace(
    tenant: &str,
    resource_type: &str,
    id: &str,
    expected: i64,
    data: Value,
) -> ResourceWrite {
    ResourceWrite {
        tenant: tenant.into(),
        resource_type: resource_type.into(),
        id: id.into(),
        kind: WriteKind::Replace,
        expected_version: Some(expected),
        new_version: expected + 1,
        time: time(0),
        data: Some(data),
        members: None,
    }
}

pub fn delete(tenant: &str, resource_type: &str, id: &str, expected: i64) -> ResourceWrite {
    ResourceWrite {
        tenant: tenant.into(),
        resource_type: resource_type.into(),
        id: id.into(),
        kind: WriteKind::Delete,
        expected_version: Some(expected),
        new_version: expected + 1,
        time: time(0),
        data: None,
        members: None,
    }
}

/// Apply a write that must succeed; returns its sealed event.
pub async fn apply(store: &dyn Store, w: ResourceWrite) -> AuditEvent {
    let what = format!("{:?} {} {}", w.kind, w.resource_type, w.id);
    let e = write_event(&w);
    store
        .write(w, e)
        .await
        .unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// Delete a resource and remove it from every live Group it is in, each Group at its next
/// version, in one `write_all` (what the server does). Returns the delete's sealed event and
/// the groups' events.
pub async fn delete_member(
    store: &dyn Store,
    tenant: &str,
    resource_type: &str,
    id: &str,
    expected: i64,
) -> Vec<AuditEvent> {
    let groups = store
        .groups_of(tenant, &[id.to_string()])
        .await
        .expect("groups_of")
        .remove(id)
        .unwrap_or_default();
    let w = delete(tenant, resource_type, id, expected);
    let e = write_event(&w);
    let mut writes = vec![(w, e)];
    for g in groups {
        let cur = get(store, tenant, "Group", &g.id).await.expect("group");
        let mut w = replace(tenant, "Group", &g.id, cur.version, cur.data.clone());
        w.members = Some(MemberDelta {
            add: vec![],
            remove: vec![id.to_string()],
        });
        let mut e = write_event(&w);
        e.parent_id = Some(writes[0].1.id.clone());
        writes.push((w, e));
    }
    store
        .write_all(None, writes)
        .await
        .unwrap_or_else(|e| panic!("delete of {id} with its memberships failed: {e}"))
}

/// Apply a write that must fail; returns the error.
pub async fn refuse(store: &dyn Store, w: ResourceWrite) -> StoreError {
    let what = format!("{:?} {} {}", w.kind, w.resource_type, w.id);
    let e = write_event(&w);
    match store.write(w, e).await {
        Ok(e) => panic!("{what} succeeded (seq {:?}) but must fail", e.seq),
        Err(e) => e,
    }
}

pub async fn append(store: &dyn Store, e: AuditEvent) -> AuditEvent {
    store.append_event(e).await.expect("append_event")
}

pub fn filter(f: &str) -> Filter {
    Filter::parse(f).unwrap_or_else(|e| panic!("filter {f:?} must parse: {e}"))
}

async fn get(store: &dyn Store, tenant: &str, rt: &str, id: &str) -> Option<StoredResource> {
    store.get(tenant, rt, id, false).await.expect("get")
}

async fn get_members(store: &dyn Store, id: &str) -> StoredResource {
    store
        .get(TENANT, "Group", id, true)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("group {id} must be live"))
}

pub async fn list(
    store: &dyn Store,
    tenant: &str,
    rt: &str,
    f: Option<&str>,
    start_index: usize,
    count: usize,
) -> Page {
    list_q(store, tenant, rt, f, start_index, count, false).await
}

async fn list_q(
    store: &dyn Store,
    tenant: &str,
    rt: &str,
    f: Option<&str>,
    start_index: usize,
    count: usize,
    with_members: bool,
) -> Page {
    let q = ListQuery {
        resource_type: rt.into(),
        filter: f.map(filter),
        start_index,
        count,
        with_members,
        sort: None,
        after: None,
    };
    store
        .list(tenant, &q)
        .await
        .unwrap_or_else(|e| panic!("list {rt} filter {f:?}: {e}"))
}

fn ids(page: &Page) -> Vec<&str> {
    page.items.iter().map(|r| r.id.as_str()).collect()
}

/// Assert a whole listing (all on one page) and its total.
async fn assert_list(store: &dyn Store, rt: &str, f: &str, expected: &[&str]) {
    let page = list(store, TENANT, rt, Some(f), 1, 100).await;
    assert_eq!(ids(&page), expected, "{rt} filter {f}");
    assert_eq!(page.total, expected.len(), "total of {rt} filter {f}");
}

/// The members of a stored Group as a set of `(value, type, display)`; `None` when the stored
/// form has no `members`.
fn members_of(r: &StoredResource) -> Option<BTreeSet<(String, String, Option<String>)>> {
    let members = r.data.get("members")?;
    let arr = members.as_array().expect("members is an array");
    Some(
        arr.iter()
            .map(|m| {
                let obj = m.as_object().expect("a member is an object");
                for k in obj.keys() {
                    assert!(
                        ["value", "type", "display"].contains(&k.as_str()),
                        "unexpected member key {k} in {m}"
                    );
                }
                let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                (
                    s("value").expect("member value"),
                    s("type").expect("member type"),
                    s("display"),
                )
            })
            .collect(),
    )
}

fn member_set(
    members: &[(&str, &str, Option<&str>)],
) -> BTreeSet<(String, String, Option<String>)> {
    members
        .iter()
        .map(|(v, t, d)| (v.to_string(), t.to_string(), d.map(str::to_string)))
        .collect()
}

fn seq_of(e: &Value) -> u64 {
    e.get("seq")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("event without seq: {e}"))
}

/// Page through events with `count` per page; assert page sizes and cursors; return all seqs.
pub async fn event_seqs(
    store: &dyn Store,
    tenant: &str,
    f: Option<&str>,
    count: usize,
    ascending: bool,
) -> Vec<u64> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let q = EventQuery {
            filter: f.map(filter),
            count,
            after_seq: after,
            ascending,
            // The filters' meaning is tested here; which ones a store refuses, elsewhere.
            unbounded: true,
        };
        let page = store
            .events(tenant, &q)
            .await
            .unwrap_or_else(|e| panic!("events filter {f:?}: {e}"));
        assert!(page.items.len() <= count, "page larger than count {count}");
        for e in &page.items {
            assert_eq!(e["tenant"], tenant, "event of another tenant: {e}");
            assert!(e["leafHash"].is_string(), "event without leafHash: {e}");
        }
        let seqs: Vec<u64> = page.items.iter().map(seq_of).collect();
        all.extend(&seqs);
        match page.next_seq {
            None => return all,
            Some(next) => {
                // A page is full and its cursor is its last event, or it ended where the
                // store's scan budget ran out: then its cursor lies at or past every event
                // it holds.
                if page.items.len() < count || Some(&next) != seqs.last() {
                    let past = |s: &u64| if ascending { *s <= next } else { *s >= next };
                    assert!(seqs.iter().all(past), "cursor {next} behind {seqs:?}");
                }
                after = Some(next);
            }
        }
    }
    panic!("event paging does not terminate");
}

async fn all_events(store: &dyn Store, tenant: &str, f: Option<&str>) -> Vec<u64> {
    event_seqs(store, tenant, f, 1000, false).await
}

// ---------------------------------------------------------------------------------------------
// Resources: versions, tombstones, optimistic concurrency, uniqueness.

/// Create, get, replace and delete with versions and timestamps; a deleted resource is gone.
pub async fn create_get_replace_delete(store: &dyn Store) {
    let mut w = create(TENANT, "User", "u1", user("alice"));
    w.time = time(1);
    apply(store, w).await;
    let r = get(store, TENANT, "User", "u1").await.expect("u1 is live");
    assert_eq!(
        r,
        StoredResource {
            resource_type: "User".into(),
            id: "u1".into(),
            version: 1,
            created: time(1),
            last_modified: time(1),
            data: user("alice"),
        }
    );
    assert_eq!(get(store, TENANT, "Group", "u1").await, None, "wrong type");
    assert_eq!(get(store, TENANT, "User", "u2").await, None, "unknown id");

    let data = json!({"schemas": [USER_SCHEMA], "userName": "alice2", "active": true});
    let mut w = replace(TENANT, "User", "u1", 1, data.clone());
    w.time = time(2);
    apply(store, w).await;
    let r = get(store, TENANT, "User", "u1").await.expect("u1 is live");
    assert_eq!(r.version, 2);
    assert_eq!(r.created, time(1), "created survives a replace");
    assert_eq!(r.last_modified, time(2));
    assert_eq!(r.data, data);

    let mut w = delete(TENANT, "User", "u1", 2);
    w.time = time(3);
    apply(store, w).await;
    assert_eq!(get(store, TENANT, "User", "u1").await, None, "deleted");
    let page = list(store, TENANT, "User", None, 1, 100).await;
    assert_eq!(
        (page.total, page.items.len()),
        (0, 0),
        "deleted is not listed"
    );
    let lookup = store.lookup(TENANT, &["u1".into()]).await.expect("lookup");
    assert!(lookup.is_empty(), "deleted is not looked up");

    // A deleted resource can be neither replaced nor deleted again.
    let e = refuse(store, replace(TENANT, "User", "u1", 3, user("alice3"))).await;
    assert!(matches!(e, StoreError::NotFound), "replace deleted: {e:?}");
    let e = refuse(store, delete(TENANT, "User", "u1", 3)).await;
    assert!(matches!(e, StoreError::NotFound), "delete deleted: {e:?}");
}

/// Deleted resources are tombstoned (DESIGN.md invariant 3): their id stays taken, so a create
/// naming it — or a live id — is refused with a backend error and records nothing.
pub async fn deleted_id_is_never_reused(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    let e = refuse(store, create(TENANT, "User", "u1", user("bob"))).await;
    assert!(
        matches!(e, StoreError::Backend(_)),
        "create of live id: {e:?}"
    );
    let e = refuse(store, create(TENANT, "Group", "u1", group("g", &[]))).await;
    assert!(
        matches!(e, StoreError::Backend(_)),
        "live id as Group: {e:?}"
    );
    apply(store, delete(TENANT, "User", "u1", 1)).await;
    let e = refuse(store, create(TENANT, "User", "u1", user("carol"))).await;
    assert!(
        matches!(e, StoreError::Backend(_)),
        "create of tombstone: {e:?}"
    );
    assert_eq!(get(store, TENANT, "User", "u1").await, None);
    assert_eq!(all_events(store, TENANT, None).await, vec![1, 0]);
}

/// A replace or delete names the type of its resource: an id of another type is NotFound (as
/// `get` with that type would say) and the resource is left alone.
pub async fn writes_name_their_resource_type(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, create(TENANT, "Group", "g1", group("Admins", &[]))).await;
    let e = refuse(store, replace(TENANT, "Group", "u1", 1, group("x", &[]))).await;
    assert!(
        matches!(e, StoreError::NotFound),
        "replace User as Group: {e:?}"
    );
    let e = refuse(store, delete(TENANT, "Group", "u1", 1)).await;
    assert!(
        matches!(e, StoreError::NotFound),
        "delete User as Group: {e:?}"
    );
    let e = refuse(store, replace(TENANT, "User", "g1", 1, user("bob"))).await;
    assert!(
        matches!(e, StoreError::NotFound),
        "replace Group as User: {e:?}"
    );
    let e = refuse(store, delete(TENANT, "User", "g1", 1)).await;
    assert!(
        matches!(e, StoreError::NotFound),
        "delete Group as User: {e:?}"
    );
    let u1 = get(store, TENANT, "User", "u1")
        .await
        .expect("u1 untouched");
    assert_eq!((u1.version, &u1.data), (1, &user("alice")));
    let g1 = get(store, TENANT, "Group", "g1")
        .await
        .expect("g1 untouched");
    assert_eq!((g1.version, &g1.data), (1, &group("Admins", &[])));
    assert_list(store, "User", r#"userName eq "alice""#, &["u1"]).await;
    assert_eq!(all_events(store, TENANT, None).await, vec![1, 0]);
}

/// A replace or delete computed from a stale version is refused with the current version; one
/// of an unknown id is NotFound. Refused writes change nothing and record nothing.
pub async fn stale_versions_conflict(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, replace(TENANT, "User", "u1", 1, user("alice2"))).await;

    let e = refuse(store, replace(TENANT, "User", "u1", 1, user("stale"))).await;
    assert!(
        matches!(e, StoreError::VersionConflict { current: 2 }),
        "stale replace: {e:?}"
    );
    let e = refuse(store, replace(TENANT, "User", "u1", 5, user("future"))).await;
    assert!(
        matches!(e, StoreError::VersionConflict { current: 2 }),
        "replace from a future version: {e:?}"
    );
    let e = refuse(store, delete(TENANT, "User", "u1", 1)).await;
    assert!(
        matches!(e, StoreError::VersionConflict { current: 2 }),
        "stale delete: {e:?}"
    );
    let r = get(store, TENANT, "User", "u1").await.expect("still live");
    assert_eq!((r.version, &r.data), (2, &user("alice2")));

    let e = refuse(store, replace(TENANT, "User", "nope", 1, user("x"))).await;
    assert!(matches!(e, StoreError::NotFound), "replace unknown: {e:?}");
    let e = refuse(store, delete(TENANT, "User", "nope", 1)).await;
    assert!(matches!(e, StoreError::NotFound), "delete unknown: {e:?}");
    assert_eq!(all_events(store, TENANT, None).await, vec![1, 0]);

    apply(store, delete(TENANT, "User", "u1", 2)).await;
    assert_eq!(get(store, TENANT, "User", "u1").await, None);
}

/// Concurrent replaces from the same version: exactly one wins (a real compare-and-swap).
pub async fn concurrent_replaces_one_wins(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    let w = |n: &str| {
        let w = replace(TENANT, "User", "u1", 1, user(n));
        let e = write_event(&w);
        store.write(w, e)
    };
    let (a, b, c, d, e) = tokio::join!(w("a"), w("b"), w("c"), w("d"), w("e"));
    let results = [("a", a), ("b", b), ("c", c), ("d", d), ("e", e)];
    let winners: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent replace wins");
    for (n, r) in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, StoreError::VersionConflict { current: 2 }),
                "loser {n}: {e:?}"
            );
        }
    }
    let r = get(store, TENANT, "User", "u1").await.expect("live");
    assert_eq!((r.version, &r.data), (2, &user(winners[0])));
    assert_eq!(all_events(store, TENANT, None).await, vec![1, 0]);
}

/// Concurrent creates with one userName: exactly one wins. Concurrent writes and appends get
/// distinct, gap-free seqs.
pub async fn concurrent_writes_stay_consistent(store: &dyn Store) {
    let c = |id: &str, name: &str| {
        let w = create(TENANT, "User", id, user(name));
        let e = write_event(&w);
        store.write(w, e)
    };
    let (a, b, c, d) = tokio::join!(c("u1", "sam"), c("u2", "SAM"), c("u3", "Sam"), c("u4", "x"));
    let results = [a, b, c, d];
    assert!(results[3].is_ok(), "{:?}", results[3]);
    let sams = &results[..3];
    assert_eq!(sams.iter().filter(|r| r.is_ok()).count(), 1, "{sams:?}");
    for r in sams {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Uniqueness(_)), "{e:?}");
        }
    }
    let page = list(store, TENANT, "User", Some(r#"userName eq "sam""#), 1, 10).await;
    assert_eq!(page.total, 1);

    let ap = |r: &str| store.append_event(event(TENANT, r, "user.get"));
    let u = |v: &str| {
        let w = replace(TENANT, "User", "u4", 1, user(v));
        let e = write_event(&w);
        store.write(w, e)
    };
    let (a, b, c, d, e) = tokio::join!(ap("r1"), ap("r2"), u("y"), ap("r3"), u("z"));
    let mut seqs: Vec<u64> = [a, b, c, d, e]
        .into_iter()
        .filter_map(|r| r.ok().and_then(|e| e.seq))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        vec![2, 3, 4, 5],
        "three appends and one of two replaces"
    );
    assert_eq!(
        all_events(store, TENANT, None).await,
        vec![5, 4, 3, 2, 1, 0]
    );
}

/// Many writes at once, so the backend commits them in large batches, with refused writes
/// scattered among them: each refused write fails alone with its own error and consumes no
/// `seq`; every other write and append commits, once, at gap-free `seq`s, and the Merkle tree
/// over them is the tree of exactly those events.
pub async fn failures_inside_a_batch_roll_back_alone(store: &dyn Store) {
    use futures_util::future::{join_all, BoxFuture};
    use scimtrail_audit::merkle;
    apply(store, create(TENANT, "User", "u0", user("alice"))).await;
    enum Kind {
        Duplicate,
        Stale,
        Append,
        Create,
    }
    let kind = |i: usize| match i {
        _ if i.is_multiple_of(5) => Kind::Duplicate,
        _ if i.is_multiple_of(7) => Kind::Stale,
        _ if i.is_multiple_of(2) => Kind::Append,
        _ => Kind::Create,
    };
    let n = 300;
    let ops: Vec<BoxFuture<'_, StoreResult<AuditEvent>>> = (1..=n)
        .map(|i| -> BoxFuture<'_, StoreResult<AuditEvent>> {
            match kind(i) {
                Kind::Duplicate => {
                    let w = create(TENANT, "User", &format!("u{i}"), user("ALICE"));
                    let e = write_event(&w);
                    store.write(w, e)
                }
                Kind::Stale => {
                    let w = replace(TENANT, "User", "u0", 9, user("x"));
                    let e = write_event(&w);
                    store.write(w, e)
                }
                Kind::Append => store.append_event(event(TENANT, &format!("r{i}"), "user.get")),
                Kind::Create => {
                    let w = create(TENANT, "User", &format!("u{i}"), user(&format!("n{i}")));
                    let e = write_event(&w);
                    store.write(w, e)
                }
            }
        })
        .collect();
    let results = join_all(ops).await;
    if let Some(b) = store.batch_sizes() {
        assert!(b.sum > b.count, "the writes shared batches: {b:?}");
    }
    let mut seqs = Vec::new();
    for (i, r) in (1..=n).zip(&results) {
        match (kind(i), r) {
            (Kind::Duplicate, Err(StoreError::Uniqueness(_)))
            | (Kind::Stale, Err(StoreError::VersionConflict { current: 1 })) => {}
            // Each answer is the event of its own op.
            (Kind::Append, Ok(e)) if e.request_id == format!("r{i}") => {
                seqs.push(e.seq.expect("sealed"));
            }
            (Kind::Create, Ok(e)) if e.target.id.as_deref() == Some(&format!("u{i}")) => {
                seqs.push(e.seq.expect("sealed"));
            }
            (_, r) => panic!("op {i}: unexpected {r:?}"),
        }
    }
    let committed = seqs.len();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=committed as u64).collect::<Vec<_>>(), "gap-free");
    for i in (1..=n).filter(|&i| matches!(kind(i), Kind::Create)) {
        let r = get(store, TENANT, "User", &format!("u{i}")).await;
        assert_eq!(r.expect("created").data, user(&format!("n{i}")), "u{i}");
    }
    for i in (1..=n).filter(|&i| matches!(kind(i), Kind::Duplicate)) {
        assert!(get(store, TENANT, "User", &format!("u{i}")).await.is_none());
    }
    let u0 = get(store, TENANT, "User", "u0").await.expect("u0");
    assert_eq!((u0.version, &u0.data), (1, &user("alice")));
    // The log and its tree hold exactly the committed events.
    let size = committed as u64 + 1;
    assert_eq!(store.tree_size().await.expect("size"), size);
    let rows = store.log_rows(None, None, 1000).await.expect("log rows");
    assert_eq!(rows.len() as u64, size);
    let mut range = merkle::CompactRange::new();
    for (seq, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, seq as u64);
        range.push(scimtrail_audit::leaf_hash(r.commitment.as_bytes()));
    }
    assert_eq!(store.tree_root(size).await.expect("root"), range.root());
}

/// userName is unique among the live Users of a tenant, ignoring case; deleting or renaming a
/// User frees it.
pub async fn user_name_is_unique_case_insensitively(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("Alice"))).await;
    // Compared by the userName key (scimtrail_core::username): case, width, spacing, NFC.
    for taken in ["Alice", "alice", "ALICE", "ＡＬＩＣＥ", " alice "] {
        let e = refuse(store, create(TENANT, "User", "u2", user(taken))).await;
        assert!(matches!(e, StoreError::Uniqueness(_)), "{taken}: {e:?}");
    }
    apply(store, create(TENANT, "User", "u2", user("bob"))).await;
    let e = refuse(store, replace(TENANT, "User", "u2", 1, user("aLiCe"))).await;
    assert!(matches!(e, StoreError::Uniqueness(_)), "rename: {e:?}");
    let r = get(store, TENANT, "User", "u2").await.expect("u2");
    assert_eq!((r.version, &r.data), (1, &user("bob")), "refused rename");
    // Case folding is not limited to ASCII.
    apply(store, create(TENANT, "User", "u9", user("Åsa"))).await;
    let e = refuse(store, create(TENANT, "User", "u10", user("åSA"))).await;
    assert!(matches!(e, StoreError::Uniqueness(_)), "Åsa: {e:?}");
    assert_list(store, "User", r#"userName eq "ÅSA""#, &["u9"]).await;
    // Changing the case of one's own userName is fine.
    apply(store, replace(TENANT, "User", "u1", 1, user("ALICE"))).await;
    // A Group's displayName does not collide with userNames.
    apply(store, create(TENANT, "Group", "g1", group("alice", &[]))).await;

    // Renaming frees the old name.
    apply(store, replace(TENANT, "User", "u2", 1, user("carol"))).await;
    apply(store, create(TENANT, "User", "u3", user("BOB"))).await;
    // Deleting frees the name.
    apply(store, delete(TENANT, "User", "u1", 2)).await;
    apply(store, create(TENANT, "User", "u4", user("alice"))).await;
    let e = refuse(store, create(TENANT, "User", "u5", user("Alice"))).await;
    assert!(matches!(e, StoreError::Uniqueness(_)), "new holder: {e:?}");
    assert_list(store, "User", r#"userName eq "alice""#, &["u4"]).await;
}

/// displayName is not unique, neither for Groups nor for Users.
pub async fn display_name_is_not_unique(store: &dyn Store) {
    apply(store, create(TENANT, "Group", "g1", group("Admins", &[]))).await;
    apply(store, create(TENANT, "Group", "g2", group("Admins", &[]))).await;
    apply(store, create(TENANT, "Group", "g3", group("ADMINS", &[]))).await;
    apply(
        store,
        replace(TENANT, "Group", "g1", 1, group("admins", &[])),
    )
    .await;
    let mut a = user("a");
    a["displayName"] = json!("Same");
    let mut b = user("b");
    b["displayName"] = json!("Same");
    apply(store, create(TENANT, "User", "u1", a)).await;
    apply(store, create(TENANT, "User", "u2", b)).await;
    assert_list(
        store,
        "Group",
        r#"displayName eq "admins""#,
        &["g1", "g2", "g3"],
    )
    .await;
    assert_list(store, "User", r#"displayName eq "same""#, &["u1", "u2"]).await;
}

// ---------------------------------------------------------------------------------------------
// The audit log.

/// The event a write or append returns is sealed: `seq` and `leafHash` set, the hash is the
/// RFC 6962 leaf of its canonical form, and `event(id)` gives back the same event.
pub async fn writes_return_sealed_events(store: &dyn Store) {
    let w = create(TENANT, "User", "u1", user("alice"));
    let original = write_event(&w);
    let sealed = store.write(w, original.clone()).await.expect("write");
    let appended_original = event(TENANT, "r2", "user.get");
    let appended = append(store, appended_original.clone()).await;

    for (seq, original, sealed) in [(0, original, sealed), (1, appended_original, appended)] {
        assert_eq!(sealed.seq, Some(seq));
        let mut expected = original.clone();
        expected.seq = Some(seq);
        expected.leaf_hash = sealed.leaf_hash.clone();
        assert_eq!(sealed, expected, "sealing changes only seq and leafHash");
        let leaf = store
            .leaf(TENANT, &sealed.id)
            .await
            .expect("leaf")
            .expect("the leaf is stored");
        assert_eq!(leaf.seq, seq);
        let hash = scimtrail_audit::leaf_hash(leaf.commitment.as_bytes());
        assert_eq!(leaf.leaf_hash, hash.to_vec());
        assert_eq!(
            sealed.leaf_hash,
            Some(b64(&hash)),
            "leafHash is the real leaf"
        );
        let view = scimtrail_audit::commitment::LeafView::parse(&leaf.commitment)
            .expect("a v1 commitment");
        assert_eq!((view.seq, &*view.id), (seq, sealed.id.as_str()));
        view.check_payload(leaf.payload.as_ref().expect("payload"))
            .expect("the payload matches its digests");
        let stored = store
            .event(TENANT, &sealed.id)
            .await
            .expect("event")
            .expect("the event is stored");
        assert_eq!(stored["leafHash"], json!(sealed.leaf_hash));
        assert_eq!(stored["seq"], json!(seq));
        let back: AuditEvent = serde_json::from_value(stored).expect("stored event parses");
        assert_eq!(back, sealed, "the stored event is the sealed event");
    }
    assert_eq!(
        store.event(TENANT, "no-such-event").await.expect("event"),
        None
    );
}

/// `seq` is 0, 1, 2, … across writes, appends and tenants; a refused write consumes none.
pub async fn seqs_are_gap_free(store: &dyn Store) {
    let mut seqs = Vec::new();
    let mut ok = |e: AuditEvent| seqs.push(e.seq.expect("sealed"));
    ok(apply(store, create(TENANT, "User", "u1", user("alice"))).await);
    ok(append(store, event(TENANT, "r", "user.get")).await);
    refuse(store, create(TENANT, "User", "u2", user("ALICE"))).await;
    ok(append(store, event(TENANT, "r", "user.list")).await);
    refuse(store, replace(TENANT, "User", "u1", 7, user("x"))).await;
    refuse(store, replace(TENANT, "User", "nope", 1, user("x"))).await;
    ok(apply(store, replace(TENANT, "User", "u1", 1, user("alice2"))).await);
    refuse(store, create(TENANT, "User", "u1", user("dup"))).await;
    ok(append(store, event("b", "r", "user.get")).await);
    ok(apply(store, create("b", "User", "u1", user("alice"))).await);
    ok(apply(store, delete(TENANT, "User", "u1", 2)).await);
    assert_eq!(seqs, (0..7).collect::<Vec<u64>>());

    let mut stored = event_seqs(store, TENANT, None, 2, true).await;
    assert_eq!(stored, vec![0, 1, 2, 3, 6]);
    stored.extend(event_seqs(store, "b", None, 2, true).await);
    stored.sort_unstable();
    assert_eq!(stored, (0..7).collect::<Vec<u64>>());
}

/// Events come newest first unless ascending; `count` + `after_seq` pages cover every event
/// exactly once in both directions.
pub async fn events_order_and_paging(store: &dyn Store) {
    for i in 0..7 {
        append(store, event(TENANT, &format!("r{i}"), "user.get")).await;
    }
    let desc: Vec<u64> = (0..7).rev().collect();
    let asc: Vec<u64> = (0..7).collect();
    assert_eq!(event_seqs(store, TENANT, None, 100, false).await, desc);
    assert_eq!(event_seqs(store, TENANT, None, 100, true).await, asc);
    for count in [1, 2, 3, 6, 7, 8] {
        assert_eq!(
            event_seqs(store, TENANT, None, count, false).await,
            desc,
            "count {count}"
        );
        assert_eq!(
            event_seqs(store, TENANT, None, count, true).await,
            asc,
            "count {count} ascending"
        );
    }
    // An explicit cursor, as a client would send it.
    let q = |after, ascending| EventQuery {
        filter: None,
        count: 2,
        after_seq: Some(after),
        ascending,
        unbounded: false,
    };
    let page = store.events(TENANT, &q(4, false)).await.expect("events");
    assert_eq!(
        page.items.iter().map(seq_of).collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert_eq!(page.next_seq, Some(2));
    let page = store.events(TENANT, &q(4, true)).await.expect("events");
    assert_eq!(
        page.items.iter().map(seq_of).collect::<Vec<_>>(),
        vec![5, 6]
    );
    assert_eq!(page.next_seq, None);
    let page = store.events(TENANT, &q(0, false)).await.expect("events");
    assert!(page.items.is_empty() && page.next_seq.is_none());
}

/// Event filters on the indexed attributes, alone, combined and with paging.
pub async fn events_filters(store: &dyn Store) {
    let ev = |req: &str, actor: Option<&str>, action: &str, target: Option<&str>, status| {
        let mut e = event(TENANT, req, action);
        e.actor.name = actor.map(str::to_string);
        e.target.resource_type = target.map(|_| "User".to_string());
        e.target.id = target.map(str::to_string);
        e.outcome = Outcome::from_status(status, None, None);
        e
    };
    let mut events = [
        ev("r1", Some("okta"), "user.create", Some("u1"), 201),
        ev("r1", Some("okta"), "user.replace", Some("u1"), 200),
        ev("r2", Some("azure"), "user.create", Some("u2"), 409),
        ev("r3", Some("azure"), "auth.failure", None, 401),
        ev("r4", None, "group.create", Some("g1"), 500),
        ev("r5", Some("okta"), "user.get", Some("u2"), 200),
    ];
    for (i, e) in events.iter_mut().enumerate() {
        e.time = time(10 * i as u32);
    }
    for e in events {
        append(store, e).await;
    }
    // Another tenant's matching events never show.
    let mut other = ev("r1", Some("okta"), "user.create", Some("u1"), 500);
    other.tenant = "b".into();
    append(store, other).await;

    let cases: &[(&str, &[u64])] = &[
        (r#"target.id eq "u1""#, &[1, 0]),
        (r#"requestId eq "r1""#, &[1, 0]),
        (r#"requestid eq "r1""#, &[1, 0]),
        (r#"actor.name eq "azure""#, &[3, 2]),
        (r#"action eq "user.create""#, &[2, 0]),
        (r#"outcome.status ge 400"#, &[4, 3, 2]),
        (r#"outcome.status lt 400"#, &[5, 1, 0]),
        (r#"actor.name eq "okta" and target.id eq "u2""#, &[5]),
        (r#"target.id eq "u1" or target.id eq "u2""#, &[5, 2, 1, 0]),
        (r#"target.id pr"#, &[5, 4, 2, 1, 0]),
        (r#"not (actor.name eq "okta")"#, &[4, 3, 2]),
        (r#"action sw "user.""#, &[5, 2, 1, 0]),
        (r#"requestId eq "r9""#, &[]),
        (r#"seq gt 3"#, &[5, 4]),
        (r#"time ge "2026-01-01T00:00:30Z""#, &[5, 4, 3]),
        (r#"time lt "2026-01-01T01:00:20+01:00""#, &[1, 0]),
        (
            r#"operation.method eq "GET" and outcome.result eq "failure""#,
            &[4, 3, 2],
        ),
    ];
    for (f, expected) in cases {
        assert_eq!(
            &event_seqs(store, TENANT, Some(f), 100, false).await,
            expected,
            "filter {f}"
        );
        let mut asc = expected.to_vec();
        asc.reverse();
        assert_eq!(
            event_seqs(store, TENANT, Some(f), 1, true).await,
            asc,
            "filter {f}, ascending one per page"
        );
    }
}

/// The attributes of issue #7 beyond the first ones: `actor.ip`, `actor.client`, `actor.id`,
/// `target.display`, `target.externalId`, `outcome.scimType`, `parentId`, and `changes.path`
/// (a multi-valued attribute); time windows that span hours and days.
pub async fn events_filter_every_attribute(store: &dyn Store) {
    use scimtrail_audit::Change;
    let change = |path: &str| Change {
        op: "replace".into(),
        path: path.into(),
        old: json!(true),
        new: json!(false),
    };
    let mut a = event(TENANT, "r1", "user.update");
    a.time = "2026-01-01T00:00:10.000000Z".into();
    a.actor.ip = Some("10.0.0.1".into());
    a.target.display = Some("Ann Example".into());
    a.target.external_id = Some("x-1".into());
    a.outcome = Outcome::from_status(400, Some("invalidValue".into()), None);
    a.changes = vec![change("active"), change(r#"emails[type eq "work"].value"#)];
    let mut b = event(TENANT, "r2", "user.update");
    b.time = "2026-01-01T05:30:00.000000Z".into();
    b.actor.client = Some("Microsoft Entra ID".into());
    b.actor.id = Some("tok-2".into());
    b.changes = vec![change("displayName")];
    b.parent_id = Some("p-1".into());
    let mut c = event(TENANT, "r3", "user.get");
    c.time = "2026-01-02T00:00:00.000000Z".into();
    c.target.display = None;
    for e in [a, b, c] {
        append(store, e).await;
    }
    let cases: &[(&str, &[u64])] = &[
        (r#"actor.ip eq "10.0.0.1""#, &[0]),
        (r#"actor.ip eq "192.0.2.1""#, &[2, 1]),
        (r#"actor.client eq "Microsoft Entra ID""#, &[1]),
        (r#"actor.id eq "tok-2""#, &[1]),
        (r#"target.display eq "Ann Example""#, &[0]),
        (r#"target.externalId eq "x-1""#, &[0]),
        (r#"outcome.scimType eq "invalidValue""#, &[0]),
        (r#"parentId eq "p-1""#, &[1]),
        (r#"changes.path eq "active""#, &[0]),
        (r#"changes.path eq "displayName""#, &[1]),
        (r#"changes.path eq "members""#, &[]),
        (r#"changes.path sw "emails[""#, &[0]),
        (r#"changes.path pr"#, &[1, 0]),
        (r#"not (changes.path pr)"#, &[2]),
        (
            r#"changes.path eq "active" and outcome.status eq 400"#,
            &[0],
        ),
        (r#"time ge "2026-01-01T05:00:00Z""#, &[2, 1]),
        (r#"time gt "2026-01-01T05:30:00Z""#, &[2]),
        (
            r#"time ge "2026-01-01T00:00:00Z" and time lt "2026-01-01T05:30:00Z""#,
            &[0],
        ),
        (r#"time le "2026-01-01T05:30:00Z""#, &[1, 0]),
        (r#"time ge "2026-01-03T00:00:00Z""#, &[]),
        (r#"time lt "2025-01-03T00:00:00Z""#, &[]),
        (
            r#"time ge "2026-01-01T00:00:00Z" and outcome.status ge 400"#,
            &[0],
        ),
        (r#"seq ge 1 and seq lt 2"#, &[1]),
    ];
    for (f, expected) in cases {
        assert_eq!(
            &event_seqs(store, TENANT, Some(f), 100, false).await,
            expected,
            "filter {f}"
        );
        let mut asc = expected.to_vec();
        asc.reverse();
        assert_eq!(
            event_seqs(store, TENANT, Some(f), 1, true).await,
            asc,
            "filter {f}, ascending one per page"
        );
    }
}

/// A filter that neither an index nor a window bounds would scan the whole log: it is refused
/// unless the caller asks for a bounded scan page by page (a live tail).
pub async fn events_unbounded_filters_are_refused(store: &dyn Store) {
    append(store, event(TENANT, "r1", "user.get")).await;
    let run = |f: &str, unbounded| EventQuery {
        filter: Some(filter(f)),
        count: 10,
        after_seq: None,
        ascending: false,
        unbounded,
    };
    for f in [
        r#"outcome.status ge 400"#,
        r#"actor.name co "okta""#,
        r#"not (action eq "user.get")"#,
        r#"action eq "user.get" or action eq "user.create""#,
        r#"operation.method co "GE""#,
        r#"parentId eq null"#,
        r#"outcome.result eq "success""#,
        r#"actor.client eq "Okta""#,
    ] {
        let e = store.events(TENANT, &run(f, false)).await;
        assert!(
            matches!(&e, Err(StoreError::InvalidQuery(d)) if d.contains("time window")),
            "filter {f}: {e:?}"
        );
        let page = store.events(TENANT, &run(f, true)).await;
        assert!(page.is_ok(), "filter {f} unbounded: {page:?}");
    }
    for f in [
        r#"outcome.status ge 400 and time ge "2026-01-01T00:00:00Z""#,
        r#"actor.name co "okta" and seq gt 0"#,
        r#"action eq "user.get""#,
        r#"operation.method eq "GET" and requestId eq "r1""#,
        r#"id eq "x""#,
    ] {
        let page = store.events(TENANT, &run(f, false)).await;
        assert!(page.is_ok(), "filter {f}: {page:?}");
    }
}

/// Stats: counts per hour and scimType of the failures of one client, exact; a window larger
/// than allowed is refused, never answered in part; only envelope attributes group.
pub async fn event_stats_count_per_bucket_and_group(store: &dyn Store) {
    let at = |h: u32, m: u32, client: &str, scim_type: Option<&str>| {
        let mut e = event(TENANT, "r", "user.update");
        e.time = format!("2026-01-01T{h:02}:{m:02}:00.000000Z");
        e.actor.client = Some(client.into());
        let status = if scim_type.is_some() { 400 } else { 200 };
        e.outcome = Outcome::from_status(status, scim_type.map(str::to_string), None);
        e
    };
    for e in [
        at(0, 5, "Okta", Some("invalidValue")),
        at(0, 50, "Okta", Some("invalidValue")),
        at(0, 59, "Okta", Some("uniqueness")),
        at(0, 59, "Entra", Some("invalidValue")),
        at(1, 0, "Okta", None),
        at(2, 30, "Okta", Some("uniqueness")),
    ] {
        append(store, e).await;
    }
    let stats = |f: &str, bucket: Option<u64>, by: &[&str], max_events| StatsQuery {
        filter: Some(filter(f)),
        bucket_secs: bucket,
        by: by
            .iter()
            .map(|p| scimtrail_core::AttrPath::parse(p).expect("path"))
            .collect(),
        max_events,
    };
    let hour = |h: i64| Some(1_767_225_600 + h * 3600); // 2026-01-01T00:00:00Z
    let rows = store
        .event_stats(
            TENANT,
            &stats(
                r#"actor.client eq "Okta" and outcome.result eq "failure""#,
                Some(3600),
                &["outcome.scimType"],
                1000,
            ),
        )
        .await
        .expect("stats");
    let row = |bucket, key: &str, count| StatsRow {
        bucket,
        keys: vec![json!(key)],
        count,
    };
    assert_eq!(
        rows,
        vec![
            row(hour(0), "invalidValue", 2),
            row(hour(0), "uniqueness", 1),
            row(hour(2), "uniqueness", 1),
        ]
    );
    let rows = store
        .event_stats(
            TENANT,
            &stats(
                r#"time ge "2026-01-01T00:00:00Z""#,
                None,
                &["actor.client", "outcome.status"],
                1000,
            ),
        )
        .await
        .expect("stats");
    let pair = |c: &str, s: u64, count| StatsRow {
        bucket: None,
        keys: vec![json!(c), json!(s)],
        count,
    };
    assert_eq!(
        rows,
        vec![
            pair("Entra", 400, 1),
            pair("Okta", 200, 1),
            pair("Okta", 400, 4)
        ]
    );
    let too_many = store
        .event_stats(
            TENANT,
            &stats(r#"time ge "2026-01-01T00:00:00Z""#, None, &[], 3),
        )
        .await;
    assert!(
        matches!(too_many, Err(StoreError::TooMany(_))),
        "{too_many:?}"
    );
    let too_many = store
        .event_stats(TENANT, &stats(r#"actor.name eq "okta""#, None, &[], 3))
        .await;
    assert!(
        matches!(too_many, Err(StoreError::TooMany(_))),
        "{too_many:?}"
    );
    for (f, by) in [
        (r#"time ge "2026-01-01T00:00:00Z""#, "changes.path"),
        (r#"time ge "2026-01-01T00:00:00Z""#, "request.body"),
        (r#"outcome.status ge 400"#, "action"),
    ] {
        let e = store
            .event_stats(TENANT, &stats(f, None, &[by], 1000))
            .await;
        assert!(
            matches!(e, Err(StoreError::InvalidQuery(_))),
            "{f} by {by}: {e:?}"
        );
    }
}

/// A filter on an attribute events do not have is an invalid query, not an empty result.
pub async fn events_unknown_attribute_is_invalid_query(store: &dyn Store) {
    append(store, event(TENANT, "r1", "user.get")).await;
    for f in [
        r#"nope eq "x""#,
        r#"target.nope eq "x""#,
        r#"userName eq "x""#,
    ] {
        let q = EventQuery {
            filter: Some(filter(f)),
            count: 10,
            after_seq: None,
            ascending: false,
            unbounded: false,
        };
        let e = store.events(TENANT, &q).await;
        assert!(
            matches!(e, Err(StoreError::InvalidQuery(_))),
            "filter {f}: {e:?}"
        );
    }
}

/// Resources and events of tenant "a" are invisible to tenant "b", whose ids and userNames are
/// its own.
pub async fn tenants_are_isolated(store: &dyn Store) {
    let (a, b) = ("a", "b");
    apply(store, create(a, "User", "u1", user("alice"))).await;
    let members = [("u1", "User", Some("alice"))];
    apply(store, create(a, "Group", "g1", group("Admins", &members))).await;
    let ev = append(store, event(a, "r1", "user.get")).await;

    assert_eq!(get(store, b, "User", "u1").await, None);
    assert_eq!(store.get(b, "Group", "g1", true).await.expect("get"), None);
    for rt in ["User", "Group"] {
        let page = list(store, b, rt, None, 1, 100).await;
        assert_eq!((page.total, page.items.len()), (0, 0), "{rt} of b");
    }
    let page = list(store, b, "User", Some(r#"userName eq "alice""#), 1, 100).await;
    assert_eq!(page.total, 0);
    let both: Vec<String> = vec!["u1".into(), "g1".into()];
    assert!(store.lookup(b, &both).await.expect("lookup").is_empty());
    let groups = store.groups_of(b, &["u1".into()]).await.expect("groups_of");
    assert!(
        groups.values().all(Vec::is_empty),
        "groups of b: {groups:?}"
    );
    assert!(event_seqs(store, b, None, 10, false).await.is_empty());
    assert_eq!(store.event(b, &ev.id).await.expect("event"), None);
    let e = refuse(store, replace(b, "User", "u1", 1, user("x"))).await;
    assert!(matches!(e, StoreError::NotFound), "replace in b: {e:?}");
    let e = refuse(store, delete(b, "User", "u1", 1)).await;
    assert!(matches!(e, StoreError::NotFound), "delete in b: {e:?}");

    // b has its own namespace of ids and userNames.
    apply(store, create(b, "User", "u1", user("ALICE"))).await;
    apply(store, delete(b, "User", "u1", 1)).await;
    let r = get(store, a, "User", "u1")
        .await
        .expect("a's u1 is untouched");
    assert_eq!((r.version, &r.data), (1, &user("alice")));
    let g = store.get(a, "Group", "g1", true).await.expect("get");
    let g = g.expect("a's g1");
    assert_eq!(members_of(&g), Some(member_set(&members)));
    assert_eq!(event_seqs(store, a, None, 10, false).await, vec![2, 1, 0]);
    assert_eq!(event_seqs(store, b, None, 10, false).await, vec![4, 3]);
}

// ---------------------------------------------------------------------------------------------
// Listing.

/// Live resources of one type in creation order (not id order, unchanged by replaces), paged by
/// 1-based `start_index` and `count`, with the total of all matches.
pub async fn list_order_and_paging(store: &dyn Store) {
    for (i, id) in ["u-c", "u-a", "u-e", "u-b", "u-d"].iter().enumerate() {
        apply(store, create(TENANT, "User", id, user(&format!("n{i}")))).await;
    }
    apply(store, create(TENANT, "Group", "g-a", group("G", &[]))).await;
    apply(store, replace(TENANT, "User", "u-c", 1, user("renamed"))).await;
    apply(store, delete(TENANT, "User", "u-e", 1)).await;

    let all = ["u-c", "u-a", "u-b", "u-d"];
    let page = list(store, TENANT, "User", None, 1, 100).await;
    assert_eq!(ids(&page), all);
    assert_eq!(page.total, 4);
    assert_eq!(
        (page.items[0].version, &page.items[0].data),
        (2, &user("renamed"))
    );
    assert_eq!(page.items[1].data, user("n1"));

    let pages: &[(usize, usize, &[&str])] = &[
        (1, 2, &["u-c", "u-a"]),
        (3, 2, &["u-b", "u-d"]),
        (2, 2, &["u-a", "u-b"]),
        (4, 10, &["u-d"]),
        (5, 10, &[]),
        (50, 10, &[]),
        (1, 0, &[]),
        (2, 1, &["u-a"]),
    ];
    for (start, count, expected) in pages {
        let page = list(store, TENANT, "User", None, *start, *count).await;
        assert_eq!(&ids(&page), expected, "startIndex {start} count {count}");
        assert_eq!(page.total, 4, "startIndex {start} count {count}");
    }
    let groups = list(store, TENANT, "Group", None, 1, 100).await;
    assert_eq!((ids(&groups), groups.total), (vec!["g-a"], 1));
}

/// Filters on indexed attributes (userName and displayName ignoring case, externalId exactly).
pub async fn list_sql_filters(store: &dyn Store) {
    let with = |name: &str, ext: Option<&str>| {
        let mut u = user(name);
        if let Some(x) = ext {
            u["externalId"] = json!(x);
        }
        u
    };
    let users = [
        ("u1", with("Alice", Some("ext-A"))),
        ("u2", with("bob", Some("ext-a"))),
        ("u3", with("carol", None)),
        ("u4", with("alex", Some("ext-x"))),
    ];
    for (i, (id, data)) in users.into_iter().enumerate() {
        let mut w = create(TENANT, "User", id, data);
        w.time = time(i as u32 + 1);
        apply(store, w).await;
    }
    apply(store, create(TENANT, "Group", "g1", group("Admins", &[]))).await;
    apply(store, create(TENANT, "Group", "g2", group("Staff", &[]))).await;
    apply(store, create(TENANT, "Group", "g3", group("admins", &[]))).await;

    assert_list(store, "User", r#"userName eq "ALICE""#, &["u1"]).await;
    assert_list(store, "User", r#"username eq "alice""#, &["u1"]).await;
    assert_list(store, "User", r#"userName eq "alic""#, &[]).await;
    assert_list(store, "User", r#"externalId eq "ext-a""#, &["u2"]).await;
    assert_list(store, "User", r#"externalId eq "ext-A""#, &["u1"]).await;
    assert_list(store, "User", r#"externalId eq "EXT-X""#, &[]).await;
    assert_list(store, "User", r#"userName sw "A""#, &["u1", "u4"]).await;
    // `ew` on columns: a suffix, the whole value, and an operand longer than every value.
    assert_list(store, "User", r#"userName ew "ICE""#, &["u1"]).await;
    assert_list(store, "User", r#"externalId ew "-a""#, &["u2"]).await;
    assert_list(store, "User", r#"externalId ew "ext-x""#, &["u4"]).await;
    assert_list(store, "User", r#"displayName ew "xx""#, &[]).await;
    assert_list(store, "User", r#"externalId ew "prefix-ext-x""#, &[]).await;
    assert_list(
        store,
        "User",
        r#"userName eq "alice" and externalId eq "ext-A""#,
        &["u1"],
    )
    .await;
    assert_list(
        store,
        "User",
        r#"userName eq "alice" and externalId eq "ext-a""#,
        &[],
    )
    .await;
    assert_list(store, "User", r#"externalId pr"#, &["u1", "u2", "u4"]).await;
    // `not` is two-valued: an absent attribute does not equal, so its negation matches.
    assert_list(
        store,
        "User",
        r#"not (externalId eq "ext-a")"#,
        &["u1", "u3", "u4"],
    )
    .await;
    assert_list(
        store,
        "User",
        r#"externalId ne "ext-a""#,
        &["u1", "u3", "u4"],
    )
    .await;
    assert_list(store, "User", r#"id eq "u3""#, &["u3"]).await;
    let urn = format!(r#"{USER_SCHEMA}:userName eq "ALICE""#);
    assert_list(store, "User", &urn, &["u1"]).await;
    let f = r#"meta.created gt "2026-01-01T00:00:02Z""#;
    assert_list(store, "User", f, &["u3", "u4"]).await;
    let f = r#"meta.lastModified le "2026-01-01T00:00:02.000000Z""#;
    assert_list(store, "User", f, &["u1", "u2"]).await;
    assert_list(store, "Group", r#"displayName eq "ADMINS""#, &["g1", "g3"]).await;
    assert_list(store, "Group", r#"displayName eq "staff""#, &["g2"]).await;

    let page = list(
        store,
        TENANT,
        "Group",
        Some(r#"displayName eq "admins""#),
        2,
        1,
    )
    .await;
    assert_eq!((ids(&page), page.total), (vec!["g3"], 2));
    let page = list(store, TENANT, "User", Some(r#"userName sw "a""#), 1, 1).await;
    assert_eq!((ids(&page), page.total), (vec!["u1"], 2));

    apply(store, delete(TENANT, "User", "u4", 1)).await;
    assert_list(store, "User", r#"userName sw "a""#, &["u1"]).await;
    apply(
        store,
        replace(TENANT, "User", "u2", 1, with("Bobby", Some("ext-B"))),
    )
    .await;
    assert_list(store, "User", r#"externalId eq "ext-a""#, &[]).await;
    assert_list(store, "User", r#"userName eq "BOBBY""#, &["u2"]).await;
}

/// Filters the store evaluates on the representation (no column), alone and mixed with indexed
/// terms: correct items, pages and totals.
/// Every filter and sort a list answers agrees with the core's evaluator and sort keys run
/// over every resource's representation, whatever part of it the store serves from columns,
/// with paging on top.
pub async fn list_filters_agree_with_the_evaluator(store: &dyn Store) {
    use scimtrail_core::{sort_key, AttrPath, Registry, SortKey};
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let reg = Registry::builtin();
    // A small deterministic generator: the data varies in case, presence and type.
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let names = ["Ann", "bob", "Cé", "dora", "EVE", "fritz", "Zoë", "ann"];
    let mut users = Vec::new();
    for i in 0..60 {
        let n = names[next(8) as usize];
        let mut u = user(&format!("{n}.{i}@Example.com"));
        if next(3) > 0 {
            u["active"] = json!(next(2) == 0);
        }
        if next(4) > 0 {
            let title = ["Engineer", "engineer", "Manager", "CEO"][next(4) as usize];
            u["title"] = json!(title);
        }
        if next(3) > 0 {
            u["name"] = json!({"givenName": n, "familyName": format!("F{}", next(5))});
        }
        let mut emails = Vec::new();
        for k in 0..next(3) {
            let ty = ["work", "home", "Work"][next(3) as usize];
            let mut e = json!({"value": format!("{n}{k}@{ty}.org"), "type": ty});
            if k == 1 {
                e["primary"] = json!(true);
            }
            emails.push(e);
        }
        if !emails.is_empty() {
            u["emails"] = Value::Array(emails);
        }
        if next(2) == 0 {
            u["schemas"] = json!([USER_SCHEMA, ENT]);
            let department = ["R&D", "Sales", "sales"][next(3) as usize];
            u[ENT] = json!({"department": department,
                            "employeeNumber": format!("{}", next(100))});
        }
        let id = format!("u{i:02}");
        let mut w = create(TENANT, "User", &id, u);
        w.time = time(next(3600) as u32);
        apply(store, w).await;
        users.push(id);
    }
    for (g, name) in ["Admins", "staff", "Everyone"].iter().enumerate() {
        let members: Vec<(&str, &str, Option<&str>)> = users
            .iter()
            .enumerate()
            .filter(|(i, _)| i % (g + 2) == 0)
            .map(|(_, id)| (id.as_str(), "User", None))
            .collect();
        apply(
            store,
            create(TENANT, "Group", &format!("g{g}"), group(name, &members)),
        )
        .await;
    }
    // userNames whose uniqueness key differs from their lower case.
    apply(store, create(TENANT, "User", "u90", user("  Padded  "))).await;
    let mut lig = user("\u{fb01}nance");
    lig["title"] = json!("ﬁnance");
    apply(store, create(TENANT, "User", "u91", lig)).await;
    // A deleted user has left its groups.
    delete_member(store, TENANT, "User", "u00", 1).await;
    // Replaced emails are found by their new values only.
    let mut u = user("Renamed.5@Example.com");
    u["emails"] = json!([{"value": "New.Address@Work.org", "type": "work"}]);
    apply(store, replace(TENANT, "User", "u05", 1, u)).await;
    apply(store, create(TENANT, "Group", "g9", group("Empty", &[]))).await;

    let live = |rt: &'static str| async move {
        let page = list_q(store, TENANT, rt, None, 1, 1000, true).await;
        let ids: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
        let groups = store.groups_of(TENANT, &ids).await.unwrap();
        page.items
            .into_iter()
            .map(|r| {
                let g = (rt == "User").then(|| groups.get(&r.id).cloned().unwrap_or_default());
                let repr = representation(&r, g.as_deref());
                (r.id, repr)
            })
            .collect::<Vec<(String, Value)>>()
    };
    let all_users = live("User").await;
    let all_groups = live("Group").await;
    let filters: &[(&str, &str)] = &[
        ("User", r#"active eq true"#),
        ("User", r#"active eq false or active pr"#),
        ("User", r#"not (active eq true)"#),
        ("User", r#"title eq "engineer""#),
        ("User", r#"title co "NG" and userName sw "ann""#),
        ("User", r#"emails[type eq "work" and value co "0@"]"#),
        ("User", r#"emails.type eq "WORK""#),
        (
            "User",
            r#"emails.value ew ".org" and not (emails.type eq "home")"#,
        ),
        ("User", r#"emails pr and name.givenName eq "zoë""#),
        ("User", r#"name.familyName gt "F2" or title lt "E""#),
        (
            "User",
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
        ),
        (
            "User",
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber ge "50""#,
        ),
        ("User", r#"emails.value eq "CÉ1@WORK.ORG""#),
        ("User", r#"userName eq "padded""#),
        ("User", r#"userName eq "FINANCE""#),
        ("User", r#"userName gt "m""#),
        ("User", r#"userName co "ce ""#),
        ("User", r#"userName eq "padded" or title eq "zzz""#),
        ("User", r#"userName eq "FINANCE" or title eq "zzz""#),
        ("User", r#"userName gt "m" or title eq "zzz""#),
        ("User", r#"not (userName sw "f") and title pr"#),
        ("User", r#"title co "fi""#),
        (
            "User",
            r#"emails.value eq "new.address@work.org" or emails.value eq "ann0@home.org""#,
        ),
        (
            "User",
            r#"emails[type eq "home" and value eq "EVE0@HOME.ORG"]"#,
        ),
        ("User", r#"emails.value eq "nobody@x.org""#),
        ("User", r#"groups.value eq "g1" and active eq true"#),
        ("Group", r#"members.value eq "U02""#),
        (
            "User",
            r#"groups.display eq "STAFF" or groups[value eq "g2"]"#,
        ),
        ("User", r#"not (groups pr)"#),
        (
            "User",
            r#"meta.created gt "2026-01-01T00:30:00Z" and title pr"#,
        ),
        (
            "User",
            r#"meta.lastModified le "2026-01-01T00:10:00+00:00" or emails.value co "cé""#,
        ),
        ("User", r#"meta.version eq "W/\"1\"""#),
        (
            "User",
            r#"userName eq "bob.3@example.com" or (title eq "CEO" and active eq false)"#,
        ),
        ("User", r#"externalId pr or displayName eq "x""#),
        ("User", r#"id sw "u1" and not (emails pr)"#),
        ("User", r#"nope eq "x" or title eq "CEO""#),
        ("Group", r#"members.value eq "u02""#),
        ("Group", r#"members.value eq "u00""#),
        ("Group", r#"members pr"#),
        ("Group", r#"not (members pr) or displayName eq "staff""#),
        ("Group", r#"members[value sw "u1"] and displayName co "e""#),
    ];
    for (rt, f) in filters {
        let all = if *rt == "User" {
            &all_users
        } else {
            &all_groups
        };
        let rtype = reg.resource_type(rt).unwrap();
        let parsed = filter(f);
        let want: Vec<&str> = all
            .iter()
            .filter(|(_, repr)| parsed.matches(&reg, rtype, repr))
            .map(|(id, _)| id.as_str())
            .collect();
        let page = list(store, TENANT, rt, Some(f), 1, 1000).await;
        assert_eq!(ids(&page), want, "{rt} filter {f}");
        assert_eq!(page.total, want.len(), "total of {rt} filter {f}");
        // And page by page.
        let page = list(store, TENANT, rt, Some(f), 3, 4).await;
        let cut: Vec<&str> = want.iter().skip(2).take(4).copied().collect();
        assert_eq!(ids(&page), cut, "page of {rt} filter {f}");
        assert_eq!(page.total, want.len());
        // And after a position (a cursor), page by page to the end.
        let mut got: Vec<String> = Vec::new();
        let mut after = None;
        loop {
            let q = ListQuery {
                resource_type: rt.to_string(),
                filter: Some(filter(f)),
                start_index: 1,
                count: 7,
                with_members: false,
                sort: None,
                after,
            };
            let page = store.list(TENANT, &q).await.unwrap();
            assert_eq!(page.positions.len(), page.items.len());
            got.extend(page.items.iter().map(|r| r.id.clone()));
            match page.positions.last() {
                Some(p) if page.items.len() == 7 => after = Some(*p),
                _ => break,
            }
        }
        assert_eq!(got, want, "{rt} filter {f} after positions");
    }
    let sorts: &[(&str, Option<&str>, &str)] = &[
        ("User", None, "title"),
        ("User", Some(r#"emails pr"#), "emails"),
        ("User", None, "emails.type"),
        ("User", Some("active pr"), "active"),
        ("User", None, "name.familyName"),
        ("User", None, "userName"),
        ("User", None, "meta.created"),
        (
            "User",
            Some(r#"title pr"#),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        ("User", None, "groups"),
        ("User", None, "groups.display"),
        ("Group", None, "displayName"),
        ("Group", None, "members"),
    ];
    for (rt, f, by) in sorts {
        let all = if *rt == "User" {
            &all_users
        } else {
            &all_groups
        };
        let rtype = reg.resource_type(rt).unwrap();
        let path = AttrPath::parse(by).unwrap();
        for descending in [false, true] {
            let parsed = f.map(filter);
            let mut want: Vec<(Option<SortKey>, &str)> = all
                .iter()
                .filter(|(_, r)| parsed.as_ref().is_none_or(|p| p.matches(&reg, rtype, r)))
                .map(|(id, r)| (sort_key(&reg, rtype, r, &path), id.as_str()))
                .collect();
            want.sort_by(|a, b| SortKey::order(a.0.as_ref(), b.0.as_ref(), descending));
            let want: Vec<&str> = want.into_iter().map(|(_, id)| id).collect();
            let q = |start_index: usize, count: usize| ListQuery {
                resource_type: rt.to_string(),
                filter: f.map(filter),
                start_index,
                count,
                with_members: false,
                sort: Some(Sort {
                    by: path.clone(),
                    descending,
                }),
                after: None,
            };
            let page = store.list(TENANT, &q(1, 1000)).await.unwrap();
            assert_eq!(
                ids(&page),
                want,
                "{rt} sorted by {by}, descending {descending}"
            );
            let page = store.list(TENANT, &q(4, 5)).await.unwrap();
            let cut: Vec<&str> = want.iter().skip(3).take(5).copied().collect();
            assert_eq!(ids(&page), cut, "page of {rt} sorted by {by}");
        }
    }
}

/// A list's `total` follows every write, however the store counts (it may remember a count
/// while nothing changes).
pub async fn list_totals_follow_every_write(store: &dyn Store) {
    let total = |rt: &'static str, f: Option<&'static str>| async move {
        list(store, TENANT, rt, f, 1, 10).await.total
    };
    let active = Some("active eq true");
    let in_g = Some(r#"groups.value eq "g1""#);
    assert_eq!(total("User", None).await, 0);
    let mut u = user("a");
    u["active"] = json!(true);
    apply(store, create(TENANT, "User", "u1", u.clone())).await;
    assert_eq!(total("User", None).await, 1);
    assert_eq!(total("User", active).await, 1);
    assert_eq!(total("User", active).await, 1, "asked again");
    u["active"] = json!(false);
    apply(store, replace(TENANT, "User", "u1", 1, u)).await;
    assert_eq!(total("User", active).await, 0);
    assert_eq!(total("User", in_g).await, 0);
    apply(
        store,
        create(TENANT, "Group", "g1", group("G", &[("u1", "User", None)])),
    )
    .await;
    assert_eq!(
        total("User", in_g).await,
        1,
        "a membership is a write of the group"
    );
    assert_eq!(total("Group", None).await, 1);
    delete_member(store, TENANT, "User", "u1", 2).await;
    assert_eq!(total("User", None).await, 0);
    assert_eq!(total("User", in_g).await, 0);
}

pub async fn list_memory_filters(store: &dyn Store) {
    let with = |name: &str, emails: Value| {
        let mut u = user(name);
        if !emails.is_null() {
            u["emails"] = emails;
        }
        u
    };
    let alice = with("alice", json!([{"value": "alice@x.org", "type": "work"}]));
    apply(store, create(TENANT, "User", "u1", alice)).await;
    let bob = with("bob", json!([{"value": "bob@y.org", "type": "home"}]));
    apply(store, create(TENANT, "User", "u2", bob)).await;
    let carol = with("carol", json!([{"value": "carol@x.org", "type": "home"}]));
    apply(store, create(TENANT, "User", "u3", carol)).await;
    apply(
        store,
        create(TENANT, "User", "u4", with("dave", Value::Null)),
    )
    .await;
    let members = [("u1", "User", Some("alice")), ("u3", "User", None)];
    apply(
        store,
        create(TENANT, "Group", "g1", group("Admins", &members)),
    )
    .await;
    let members = [("u2", "User", Some("bob"))];
    apply(
        store,
        create(TENANT, "Group", "g2", group("Staff", &members)),
    )
    .await;

    assert_list(store, "User", r#"emails.value co "x.org""#, &["u1", "u3"]).await;
    assert_list(store, "User", r#"emails.value ew "@Y.ORG""#, &["u2"]).await;
    assert_list(store, "User", r#"emails[type eq "work"]"#, &["u1"]).await;
    assert_list(
        store,
        "User",
        r#"userName eq "bob" or emails.value co "carol""#,
        &["u2", "u3"],
    )
    .await;
    assert_list(
        store,
        "User",
        r#"userName eq "ALICE" or userName eq "bob""#,
        &["u1", "u2"],
    )
    .await;
    assert_list(
        store,
        "User",
        r#"emails.value co "x.org" and userName ne "carol""#,
        &["u1"],
    )
    .await;
    assert_list(store, "User", r#"emails pr"#, &["u1", "u2", "u3"]).await;
    // The derived User `groups` and the Group `members` are filterable too.
    assert_list(store, "User", r#"groups.value eq "g1""#, &["u1", "u3"]).await;
    assert_list(store, "Group", r#"members.value eq "u2""#, &["g2"]).await;
    let page = list(
        store,
        TENANT,
        "Group",
        Some(r#"members.value eq "u3""#),
        1,
        10,
    )
    .await;
    assert_eq!(ids(&page), ["g1"]);
    assert!(
        page.items[0].data.get("members").is_none(),
        "members only when asked for"
    );
    let page = list_q(store, TENANT, "Group", Some(r#"members pr"#), 1, 10, true).await;
    assert_eq!(ids(&page), ["g1", "g2"]);
    assert_eq!(members_of(&page.items[1]), Some(member_set(&members)));

    // Paging applies after the in-memory filter.
    let f = Some(r#"emails.value co "o""#);
    let pages: &[(usize, usize, &[&str])] = &[
        (1, 2, &["u1", "u2"]),
        (3, 2, &["u3"]),
        (2, 1, &["u2"]),
        (4, 1, &[]),
        (1, 0, &[]),
    ];
    for (start, count, expected) in pages {
        let page = list(store, TENANT, "User", f, *start, *count).await;
        assert_eq!(&ids(&page), expected, "startIndex {start} count {count}");
        assert_eq!(page.total, 3, "startIndex {start} count {count}");
    }

    delete_member(store, TENANT, "User", "u3", 1).await;
    assert_list(store, "User", r#"emails.value co "x.org""#, &["u1"]).await;
    assert_list(store, "User", r#"groups.value eq "g1""#, &["u1"]).await;
}

// ---------------------------------------------------------------------------------------------
// Group membership.

/// A Group's members are stored with it and returned only when asked for; members whose
/// A member delta changes only the members it names; `Some(empty delta)` leaves members alone;
/// `members()` reports current membership among given ids.
pub async fn member_deltas(store: &dyn Store) {
    for (id, name) in [("u1", "alice"), ("u2", "bob"), ("u3", "carol")] {
        apply(store, create(TENANT, "User", id, user(name))).await;
    }
    let members = [("u1", "User", Some("alice")), ("u2", "User", Some("bob"))];
    apply(
        store,
        create(TENANT, "Group", "g1", group("Admins", &members)),
    )
    .await;

    let mut w = replace(TENANT, "Group", "g1", 1, group("Admins", &[]));
    w.members = Some(crate::MemberDelta {
        add: vec![crate::Member {
            value: "u3".into(),
            resource_type: "User".into(),
            display: Some("carol".into()),
        }],
        remove: vec!["u1".into(), "not-a-member".into()],
    });
    apply(store, w).await;
    let after = [("u2", "User", Some("bob")), ("u3", "User", Some("carol"))];
    let g = get_members(store, "g1").await;
    assert_eq!(g.version, 2);
    assert_eq!(members_of(&g), Some(member_set(&after)));

    // A rename that says "members unchanged".
    let mut w = replace(TENANT, "Group", "g1", 2, group("Admins2", &[]));
    w.members = Some(crate::MemberDelta::default());
    apply(store, w).await;
    let g = get_members(store, "g1").await;
    assert_eq!(g.data["displayName"], "Admins2");
    assert_eq!(
        members_of(&g),
        Some(member_set(&after)),
        "members untouched"
    );

    // Without a delta, the data's (absent) member list is the new list.
    apply(
        store,
        replace(TENANT, "Group", "g1", 3, group("Admins2", &[])),
    )
    .await;
    assert_eq!(members_of(&get_members(store, "g1").await), None);

    apply(store, create(TENANT, "Group", "g2", group("Two", &after))).await;
    assert_eq!(
        store.member_count(TENANT, "g2", 10).await.expect("count"),
        2
    );
    assert_eq!(
        store.member_count(TENANT, "g2", 1).await.expect("count"),
        1,
        "capped"
    );
    assert_eq!(
        store.member_count(TENANT, "g1", 10).await.expect("count"),
        0
    );
    let ids = ["u3".to_string(), "u9".to_string()];
    let found = store.members(TENANT, "g2", &ids).await.expect("members");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].value, "u3");
    assert_eq!(found[0].display.as_deref(), Some("carol"));
    assert!(store
        .members(TENANT, "g1", &ids)
        .await
        .expect("members")
        .is_empty());

    // Deleting a member removes it from its groups, each at a new version.
    apply(store, create(TENANT, "User", "u4", user("dora"))).await;
    let both = [("u3", "User", Some("carol")), ("u4", "User", Some("dora"))];
    apply(store, create(TENANT, "Group", "g3", group("Three", &both))).await;
    delete_member(store, TENANT, "User", "u4", 1).await;
    let gone = store
        .members(TENANT, "g3", &["u4".to_string()])
        .await
        .expect("members");
    assert!(gone.is_empty(), "the deleted member's row is removed");
    let live = [("u3", "User", Some("carol"))];
    let g3 = get_members(store, "g3").await;
    assert_eq!((g3.version, members_of(&g3)), (2, Some(member_set(&live))));
    apply(
        store,
        replace(TENANT, "Group", "g3", 2, group("Three!", &live)),
    )
    .await;
    assert_eq!(
        members_of(&get_members(store, "g3").await),
        Some(member_set(&live))
    );
}

/// An undelete brings a tombstone back under its id at the next version, only from the
/// version it was planned from; a head event goes first in the same transaction.
pub async fn undelete_and_head_events(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, delete(TENANT, "User", "u1", 1)).await;
    apply(store, create(TENANT, "User", "u2", user("alice"))).await;
    let back = |expected: i64, name: &str| {
        let mut w = replace(TENANT, "User", "u1", expected, user(name));
        w.kind = WriteKind::Undelete;
        w
    };
    // The userName is taken meanwhile: uniqueness, nothing written.
    let e = refuse(store, back(2, "alice")).await;
    assert!(matches!(e, StoreError::Uniqueness(_)), "{e:?}");
    let e = refuse(store, back(1, "alicia")).await;
    assert!(
        matches!(e, StoreError::VersionConflict { current: 2 }),
        "{e:?}"
    );
    let e = refuse(store, {
        let mut w = back(1, "x");
        w.id = "u2".into();
        w
    })
    .await;
    assert!(
        matches!(e, StoreError::VersionConflict { .. }),
        "a live resource: {e:?}"
    );
    let size = store.tree_size().await.expect("size");
    let head = event(TENANT, "req-revert", "audit.revert");
    let w = back(2, "alicia");
    let we = write_event(&w);
    let out = store
        .write_all(Some(head), vec![(w, we)])
        .await
        .expect("undelete");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].action, "audit.revert");
    assert_eq!((out[0].seq, out[1].seq), (Some(size), Some(size + 1)));
    let r = get(store, TENANT, "User", "u1").await.expect("back");
    assert_eq!((r.version, &r.data), (3, &user("alicia")));
    assert_list(store, "User", r#"userName eq "alicia""#, &["u1"]).await;
}

/// Versions, snapshots, and a Group's members at each version — exactly what a GET showed
/// then, for a live Group and for one that is deleted.
pub async fn history_reads(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, replace(TENANT, "User", "u1", 1, user("alicia"))).await;
    for (id, name) in [("u2", "bob"), ("u3", "carol"), ("u4", "dora")] {
        apply(store, create(TENANT, "User", id, user(name))).await;
    }
    let two = [("u2", "User", Some("bob")), ("u3", "User", Some("carol"))];
    apply(store, create(TENANT, "Group", "g1", group("G", &two))).await;
    let delta = |add: &[&str], remove: &[&str]| MemberDelta {
        add: add
            .iter()
            .map(|id| Member {
                value: id.to_string(),
                resource_type: "User".into(),
                display: None,
            })
            .collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    };
    let mut w = replace(TENANT, "Group", "g1", 1, group("G", &[]));
    w.members = Some(delta(&["u4"], &[]));
    apply(store, w).await;
    let mut w = replace(TENANT, "Group", "g1", 2, group("G", &[]));
    w.members = Some(delta(&[], &["u2"]));
    apply(store, w).await;
    delete_member(store, TENANT, "User", "u1", 2).await;
    delete_member(store, TENANT, "User", "u3", 1).await;

    let v = store.versions(TENANT, "u1", 0, 10).await.expect("versions");
    let last = store.latest_version(TENANT, "u1").await.expect("latest");
    assert_eq!(last.as_ref(), v.last());
    assert!(store
        .latest_version(TENANT, "nope")
        .await
        .expect("none")
        .is_none());
    let got: Vec<(i64, bool)> = v.iter().map(|r| (r.version, r.deleted)).collect();
    assert_eq!(got, vec![(1, false), (2, false), (3, true)]);
    assert!(v.windows(2).all(|w| w[0].event_seq < w[1].event_seq));
    assert_eq!(
        store
            .versions(TENANT, "u1", 1, 1)
            .await
            .expect("page")
            .len(),
        1
    );
    assert!(store
        .versions(TENANT, "nope", 0, 10)
        .await
        .expect("none")
        .is_empty());
    let s2 = store
        .snapshot(TENANT, "u1", 2)
        .await
        .expect("snap")
        .expect("v2");
    assert_eq!(s2.data, Some(user("alicia")));
    let s3 = store
        .snapshot(TENANT, "u1", 3)
        .await
        .expect("snap")
        .expect("v3");
    assert!(s3.record.deleted && s3.data.is_none());
    assert!(store
        .snapshot(TENANT, "u1", 9)
        .await
        .expect("snap")
        .is_none());

    let ids = |m: Vec<Member>| m.into_iter().map(|m| m.value).collect::<Vec<_>>();
    let at = |v: i64| async move { ids(store.members_at(TENANT, "g1", v).await.expect("at")) };
    assert_eq!(at(1).await, ["u2", "u3"]);
    assert_eq!(at(2).await, ["u2", "u3", "u4"]);
    assert_eq!(at(3).await, ["u3", "u4"]);
    // u3's delete wrote g1's version 4.
    assert_eq!(at(4).await, ["u4"]);
    let g = get_members(store, "g1").await;
    assert_eq!(g.version, 4);
    let ch = store
        .member_changes(TENANT, "g1", 2, 4)
        .await
        .expect("changes");
    let got: Vec<(i64, &str, &str)> = ch
        .iter()
        .map(|c| (c.version, c.op.as_str(), c.member.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(2, "add", "u4"), (3, "remove", "u2"), (4, "remove", "u3")]
    );
    // A deleted Group keeps its history.
    delete_member(store, TENANT, "Group", "g1", 4).await;
    assert_eq!(at(3).await, ["u3", "u4"]);
    let last = store.versions(TENANT, "g1", 0, 10).await.expect("versions");
    assert_eq!(last.len(), 5);
    assert!(last[4].deleted);
    let e = store
        .events_at(TENANT, &[last[0].event_seq, last[4].event_seq, 999_999])
        .await
        .expect("events_at");
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["seq"], last[0].event_seq);
}

/// A delete that would leave the resource a member of a live Group is refused: each Group it
/// leaves must get its own version in the same transaction. With them, it is one transaction
/// at consecutive `seq`s, and a refused part refuses all.
pub async fn deleting_a_member_writes_its_groups(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, create(TENANT, "User", "u2", user("bob"))).await;
    let one = [("u1", "User", Some("alice"))];
    apply(store, create(TENANT, "Group", "g1", group("A", &one))).await;
    apply(store, create(TENANT, "Group", "g2", group("B", &one))).await;
    let e = refuse(store, delete(TENANT, "User", "u1", 1)).await;
    assert!(matches!(e, StoreError::VersionConflict { .. }), "{e:?}");
    assert!(get(store, TENANT, "User", "u1").await.is_some(), "kept");
    // A non-member is deleted alone.
    apply(store, delete(TENANT, "User", "u2", 1)).await;

    // All or nothing: a stale group version refuses the delete too.
    let w = delete(TENANT, "User", "u1", 1);
    let mut g = replace(TENANT, "Group", "g1", 7, group("A", &[]));
    g.members = Some(MemberDelta {
        add: vec![],
        remove: vec!["u1".into()],
    });
    let (we, ge) = (write_event(&w), write_event(&g));
    let size = store.tree_size().await.expect("size");
    let e = store
        .write_all(None, vec![(w, we), (g, ge)])
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::VersionConflict { current: 1 }),
        "{e:?}"
    );
    assert!(get(store, TENANT, "User", "u1").await.is_some(), "kept");
    assert_eq!(store.tree_size().await.expect("size"), size, "no seq used");

    let events = delete_member(store, TENANT, "User", "u1", 1).await;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e.seq).collect();
    assert_eq!(seqs, vec![size, size + 1, size + 2]);
    assert!(get(store, TENANT, "User", "u1").await.is_none());
    for gid in ["g1", "g2"] {
        let g = get_members(store, gid).await;
        assert_eq!((g.version, members_of(&g)), (2, None), "{gid}");
    }
    assert_eq!(
        store
            .groups_of(TENANT, &["u1".to_string()])
            .await
            .expect("groups_of")
            .get("u1"),
        None
    );
}

/// resource is deleted are hidden; a refused write leaves the members as they were.
pub async fn group_members(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    let mut bob = user("bob");
    bob["displayName"] = json!("Bobby");
    apply(store, create(TENANT, "User", "u2", bob)).await;
    let members = [("u1", "User", Some("alice")), ("u2", "User", Some("Bobby"))];
    apply(
        store,
        create(TENANT, "Group", "g1", group("Admins", &members)),
    )
    .await;
    let nested = [("g1", "Group", Some("Admins")), ("u1", "User", None)];
    apply(store, create(TENANT, "Group", "g2", group("All", &nested))).await;

    let g1 = get_members(store, "g1").await;
    assert_eq!(g1.version, 1);
    assert_eq!(members_of(&g1), Some(member_set(&members)));
    assert_eq!(g1.data["displayName"], "Admins");
    assert_eq!(
        members_of(&get_members(store, "g2").await),
        Some(member_set(&nested))
    );
    let plain = get(store, TENANT, "Group", "g1").await.expect("g1");
    assert_eq!(
        plain.data,
        group("Admins", &[]),
        "no members unless asked for"
    );

    let page = list_q(store, TENANT, "Group", None, 1, 10, true).await;
    assert_eq!(ids(&page), ["g1", "g2"]);
    assert_eq!(members_of(&page.items[0]), Some(member_set(&members)));
    assert_eq!(members_of(&page.items[1]), Some(member_set(&nested)));
    let page = list(store, TENANT, "Group", None, 1, 10).await;
    assert!(page.items.iter().all(|g| g.data.get("members").is_none()));
    let page = list_q(store, TENANT, "User", None, 1, 10, true).await;
    assert!(page.items.iter().all(|u| u.data.get("members").is_none()));

    // Deleted members leave their groups.
    delete_member(store, TENANT, "User", "u2", 1).await;
    let alive = [("u1", "User", Some("alice"))];
    assert_eq!(
        members_of(&get_members(store, "g1").await),
        Some(member_set(&alive))
    );
    delete_member(store, TENANT, "Group", "g1", 2).await;
    let u1_only = [("u1", "User", None)];
    assert_eq!(
        members_of(&get_members(store, "g2").await),
        Some(member_set(&u1_only))
    );

    // A refused write leaves the members alone; a replace sets them.
    apply(store, create(TENANT, "User", "u3", user("carol"))).await;
    let other = [("u3", "User", Some("carol"))];
    let e = refuse(
        store,
        replace(TENANT, "Group", "g2", 7, group("All", &other)),
    )
    .await;
    assert!(
        matches!(e, StoreError::VersionConflict { current: 2 }),
        "{e:?}"
    );
    assert_eq!(
        members_of(&get_members(store, "g2").await),
        Some(member_set(&u1_only))
    );
    let changed = [("u1", "User", Some("alice")), ("u3", "User", Some("carol"))];
    apply(
        store,
        replace(TENANT, "Group", "g2", 2, group("All", &changed)),
    )
    .await;
    assert_eq!(
        members_of(&get_members(store, "g2").await),
        Some(member_set(&changed))
    );
    apply(
        store,
        replace(TENANT, "Group", "g2", 3, group("All", &other)),
    )
    .await;
    assert_eq!(
        members_of(&get_members(store, "g2").await),
        Some(member_set(&other))
    );
    apply(store, replace(TENANT, "Group", "g2", 4, group("None", &[]))).await;
    let g2 = get_members(store, "g2").await;
    assert_eq!(
        g2.data,
        group("None", &[]),
        "a Group without members has none"
    );
    assert_eq!(g2.version, 5);
}

/// `groups_of`: the live groups each id is a direct member of, with their displayName.
pub async fn groups_of_users(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    apply(store, create(TENANT, "User", "u2", user("bob"))).await;
    apply(store, create(TENANT, "User", "u3", user("carol"))).await;
    let both = [("u1", "User", None), ("u2", "User", None)];
    apply(store, create(TENANT, "Group", "g1", group("Admins", &both))).await;
    let one = [("u1", "User", None)];
    apply(store, create(TENANT, "Group", "g2", group("Staff", &one))).await;
    let nested = [("g1", "Group", None)];
    apply(store, create(TENANT, "Group", "g3", group("All", &nested))).await;

    let gr = |id: &str, d: &str| GroupRef {
        id: id.into(),
        display: Some(d.into()),
    };
    let ask: Vec<String> = ["u1", "u2", "u3", "g1", "nope"].map(String::from).to_vec();
    let of = |m: &HashMap<String, Vec<GroupRef>>, id: &str| {
        let mut v = m.get(id).cloned().unwrap_or_default();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    let m = store.groups_of(TENANT, &ask).await.expect("groups_of");
    assert_eq!(of(&m, "u1"), vec![gr("g1", "Admins"), gr("g2", "Staff")]);
    assert_eq!(of(&m, "u2"), vec![gr("g1", "Admins")]);
    assert_eq!(of(&m, "u3"), vec![]);
    assert_eq!(of(&m, "g1"), vec![gr("g3", "All")]);
    assert_eq!(of(&m, "nope"), vec![]);
    let none = store.groups_of(TENANT, &[]).await.expect("groups_of");
    assert!(none.values().all(Vec::is_empty));

    // Renamed and deleted groups.
    apply(
        store,
        replace(TENANT, "Group", "g1", 1, group("Admins2", &both)),
    )
    .await;
    apply(store, delete(TENANT, "Group", "g2", 1)).await;
    let m = store.groups_of(TENANT, &ask).await.expect("groups_of");
    assert_eq!(of(&m, "u1"), vec![gr("g1", "Admins2")]);
    // Removing a member.
    apply(
        store,
        replace(TENANT, "Group", "g1", 2, group("Admins2", &one)),
    )
    .await;
    let m = store.groups_of(TENANT, &ask).await.expect("groups_of");
    assert_eq!(of(&m, "u1"), vec![gr("g1", "Admins2")]);
    assert_eq!(of(&m, "u2"), vec![]);
}

/// `lookup`: type and display name (displayName, else userName) of live ids only.
pub async fn lookup_live_ids(store: &dyn Store) {
    apply(store, create(TENANT, "User", "u1", user("alice"))).await;
    let mut bob = user("bob");
    bob["displayName"] = json!("Bobby");
    apply(store, create(TENANT, "User", "u2", bob)).await;
    apply(store, create(TENANT, "User", "u3", user("carol"))).await;
    apply(store, delete(TENANT, "User", "u3", 1)).await;
    apply(store, create(TENANT, "Group", "g1", group("Admins", &[]))).await;
    apply(store, create(TENANT, "Group", "g2", group("Gone", &[]))).await;
    apply(store, delete(TENANT, "Group", "g2", 1)).await;

    let ask: Vec<String> = ["u1", "u2", "u3", "g1", "g2", "nope"]
        .map(String::from)
        .to_vec();
    let m = store.lookup(TENANT, &ask).await.expect("lookup");
    let r = |t: &str, d: &str| ResourceRef {
        resource_type: t.into(),
        display: Some(d.into()),
    };
    let expected: HashMap<String, ResourceRef> = [
        ("u1".to_string(), r("User", "alice")),
        ("u2".to_string(), r("User", "Bobby")),
        ("g1".to_string(), r("Group", "Admins")),
    ]
    .into_iter()
    .collect();
    assert_eq!(m, expected);
    assert!(store.lookup(TENANT, &[]).await.expect("lookup").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// The token whose hash is `hex` repeated to 64 digits.
async fn found(store: &dyn Store, hex: &str) -> Option<TokenInfo> {
    store.find_token(&hex.repeat(32)).await.expect("find_token")
}

/// Tokens are found by hash until revoked (by id or name); revoked ones stay listed and
/// counted (first-start bootstrap must not mint a new admin token after all were revoked).
pub async fn tokens(store: &dyn Store) {
    assert_eq!(store.token_count().await.expect("count"), 0);
    assert!(store.list_tokens().await.expect("list").is_empty());
    let new = |id: &str, name: &str, hash: &str, created: u32| NewToken {
        id: id.into(),
        name: name.into(),
        hash_hex: hash.repeat(32),
        scopes: vec!["scim:read".into(), "scim:write".into()],
        tenant: TENANT.into(),
        created: time(created),
    };
    let info = |t: &NewToken| TokenInfo {
        id: t.id.clone(),
        name: t.name.clone(),
        scopes: t.scopes.clone(),
        tenant: t.tenant.clone(),
        created: t.created.clone(),
        revoked: None,
    };
    let t1 = new("t1", "okta", "aa", 1);
    let t2 = new("t2", "azure", "bb", 2);
    let ev = |action: &str| event(TENANT, &format!("req-{action}"), action);
    let size = store.tree_size().await.expect("size");
    assert_eq!(
        store
            .create_token(t1.clone(), ev("token.create"))
            .await
            .expect("create"),
        info(&t1)
    );
    assert_eq!(
        store
            .create_token(t2.clone(), ev("token.create"))
            .await
            .expect("create"),
        info(&t2)
    );
    // Each create is an event naming the token, never its hash.
    assert_eq!(store.tree_size().await.expect("size"), size + 2);
    let page = store
        .events(
            TENANT,
            &EventQuery {
                filter: Some(filter(r#"action eq "token.create""#)),
                count: 10,
                after_seq: None,
                ascending: true,
                unbounded: false,
            },
        )
        .await
        .expect("events");
    let named: Vec<(&str, &str)> = page
        .items
        .iter()
        .map(|e| {
            (
                e["target"]["id"].as_str().unwrap_or_default(),
                e["target"]["display"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(named, vec![("t1", "okta"), ("t2", "azure")]);
    assert!(!page.items.iter().any(|e| e.to_string().contains("\"aa\"")));
    assert_eq!(store.token_count().await.expect("count"), 2);
    assert_eq!(found(store, "aa").await, Some(info(&t1)));
    assert_eq!(found(store, "bb").await, Some(info(&t2)));
    assert_eq!(found(store, "cc").await, None);
    assert_eq!(
        store.list_tokens().await.expect("list"),
        vec![info(&t1), info(&t2)]
    );

    let revoke = |w: &'static str| async move {
        store
            .revoke_token(w, ev("token.revoke"))
            .await
            .expect("revoke")
    };
    assert!(
        matches!(revoke("t1").await, Revoked::Token(t) if t.id == "t1"),
        "by id"
    );
    assert_eq!(found(store, "aa").await, None);
    assert_eq!(found(store, "bb").await, Some(info(&t2)));
    assert_eq!(revoke("t1").await, Revoked::NotFound, "twice");
    // Two active tokens of one name: neither is revoked by that name.
    let t3 = new("t3", "azure", "cc", 3);
    store
        .create_token(t3.clone(), ev("token.create"))
        .await
        .expect("create");
    let before = store.tree_size().await.expect("size");
    assert!(matches!(revoke("azure").await, Revoked::Ambiguous(ts) if ts.len() == 2));
    assert_eq!(
        store.tree_size().await.expect("size"),
        before,
        "a refusal writes nothing"
    );
    assert_eq!(found(store, "bb").await, Some(info(&t2)));
    assert!(matches!(revoke("t3").await, Revoked::Token(_)));
    assert!(
        matches!(revoke("azure").await, Revoked::Token(t) if t.id == "t2"),
        "by name"
    );
    assert_eq!(found(store, "bb").await, None);
    assert_eq!(revoke("nope").await, Revoked::NotFound);
    assert_eq!(store.tree_size().await.expect("size"), before + 2);

    let listed = store.list_tokens().await.expect("list");
    assert_eq!(listed.len(), 3);
    for (t, expected) in listed.iter().zip([&t1, &t2, &t3]) {
        assert!(t.revoked.is_some(), "{} is marked revoked", t.id);
        let mut t = t.clone();
        t.revoked = None;
        assert_eq!(t, info(expected));
    }
    assert_eq!(store.token_count().await.expect("count"), 3);
    store.ping().await.expect("ping");
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An event with bodies and a change, so its payload is not empty.
fn rich_event(n: usize) -> AuditEvent {
    let mut e = event(TENANT, &format!("r{n}"), "user.update");
    e.request.body = json!({"Operations": [{"op": "replace", "path": "active", "value": n}]});
    e.response.body = json!({"id": format!("u{n}"), "active": false});
    e.changes = vec![scimtrail_audit::Change {
        op: "replace".into(),
        path: "active".into(),
        old: json!(true),
        new: json!(false),
    }];
    e
}

/// The stored tree is the RFC 6962 tree of the leaves: its root at every size equals the root
/// rebuilt from the leaf hashes, and its proofs verify; sizes beyond the log are refused.
pub async fn the_tree_grows_with_the_log(store: &dyn Store) {
    use scimtrail_audit::merkle;
    assert_eq!(store.tree_size().await.expect("size"), 0);
    assert_eq!(store.tree_root(0).await.expect("root"), merkle::EMPTY_ROOT);
    let n = 21;
    for i in 0..n {
        if i % 3 == 0 {
            apply(
                store,
                create(TENANT, "User", &format!("u{i}"), user(&format!("n{i}"))),
            )
            .await;
        } else {
            append(store, rich_event(i)).await;
        }
    }
    assert_eq!(store.tree_size().await.expect("size"), n as u64);
    let rows = store.log_rows(None, None, 1000).await.expect("log rows");
    assert_eq!(rows.len(), n);
    let mut range = merkle::CompactRange::new();
    let mut roots = vec![merkle::EMPTY_ROOT];
    let mut leaves = Vec::new();
    for r in &rows {
        let leaf = scimtrail_audit::leaf_hash(r.commitment.as_bytes());
        assert_eq!(r.leaf_hash, leaf.to_vec());
        leaves.push(leaf);
        range.push(leaf);
        roots.push(range.root());
    }
    for size in 0..=n as u64 {
        assert_eq!(
            store.tree_root(size).await.expect("root"),
            roots[size as usize]
        );
        for seq in 0..size {
            let p = store.inclusion_proof(seq, size).await.expect("inclusion");
            merkle::verify_inclusion(&p, size, roots[size as usize], seq, leaves[seq as usize])
                .expect("inclusion proof verifies");
        }
        for from in 0..=size {
            let p = store
                .consistency_proof(from, size)
                .await
                .expect("consistency");
            merkle::verify_consistency(&p, from, roots[from as usize], size, roots[size as usize])
                .expect("consistency proof verifies");
        }
    }
    let all: Vec<u64> = (0..n as u64).collect();
    let batch = store.inclusion_proofs(&all, n as u64).await.expect("batch");
    for (seq, p) in batch.iter().enumerate() {
        assert_eq!(
            p,
            &store
                .inclusion_proof(seq as u64, n as u64)
                .await
                .expect("one")
        );
    }
    let beyond = n as u64 + 1;
    assert!(matches!(
        store.tree_root(beyond).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.inclusion_proof(3, beyond).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.inclusion_proof(5, 5).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.consistency_proof(5, 4).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        store.consistency_proof(1, beyond).await,
        Err(StoreError::OutOfRange(_))
    ));
    // A filtered scan returns only the matching leaves, in order.
    let f = filter(r#"action eq "user.update""#);
    let some = store
        .log_rows(Some(&f), Some(2), 1000)
        .await
        .expect("filtered");
    assert!(!some.is_empty() && some.iter().all(|r| r.seq > 2));
    assert!(some.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// A checkpoint covers the whole committed tree, is signed once per new size, and is listed
/// newest first.
pub async fn checkpoints_cover_committed_state(store: &dyn Store) {
    let sign = || -> CheckpointSigner {
        Box::new(|size, root| Ok(format!("signed {size} {}", b64(&root))))
    };
    assert_eq!(store.checkpoint(sign()).await.expect("empty log"), None);
    for i in 0..5 {
        append(store, rich_event(i)).await;
    }
    let c = store
        .checkpoint(sign())
        .await
        .expect("checkpoint")
        .expect("a new checkpoint");
    assert_eq!(c.size, 5);
    assert_eq!(c.root, store.tree_root(5).await.expect("root"));
    assert_eq!(c.note, format!("signed 5 {}", b64(&c.root)));
    assert_eq!(
        store.checkpoint(sign()).await.expect("again"),
        None,
        "nothing new to sign"
    );
    append(store, rich_event(9)).await;
    let failing: CheckpointSigner = Box::new(|_, _| Err("no key".into()));
    assert!(store.checkpoint(failing).await.is_err());
    let d = store
        .checkpoint(sign())
        .await
        .expect("checkpoint")
        .expect("new");
    assert_eq!(d.size, 6);
    let all = store.checkpoints(None, 10).await.expect("list");
    assert_eq!(all.iter().map(|c| c.size).collect::<Vec<_>>(), vec![6, 5]);
    let older = store.checkpoints(Some(6), 10).await.expect("list");
    assert_eq!(older, vec![c]);
}

/// A prune removes payloads only: leaves, roots and checkpoints stay; pruned events say so;
/// a dry run removes nothing; the prune records its own event.
pub async fn prune_keeps_the_commitments(store: &dyn Store) {
    for i in 0..4 {
        let mut e = rich_event(i);
        e.time = time(i as u32);
        append(store, e).await;
    }
    let root = store.tree_root(4).await.expect("root");
    let before = store.log_rows(None, None, 100).await.expect("rows");
    let cutoff = time(2);
    let mut pe = event(TENANT, "prune", "audit.prune");
    pe.time = time(10);
    let dry = store
        .prune(&cutoff, true, pe.clone())
        .await
        .expect("dry run");
    assert_eq!(
        (dry.payloads, dry.first_seq, dry.last_seq, dry.dry_run),
        (2, Some(0), Some(1), true)
    );
    assert_eq!(dry.event_seq, Some(4));
    assert!(store.log_rows(None, None, 100).await.expect("rows")[..4] == before[..]);
    pe.id = event_id();
    let done = store.prune(&cutoff, false, pe).await.expect("prune");
    assert_eq!((done.payloads, done.event_seq), (2, Some(5)));
    let after = store.log_rows(None, None, 100).await.expect("rows");
    assert_eq!(after.len(), 6);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!((&a.commitment, &a.leaf_hash), (&b.commitment, &b.leaf_hash));
        assert_eq!(b.payload.is_none(), b.seq < 2, "seq {}", b.seq);
    }
    assert_eq!(store.tree_root(4).await.expect("root"), root);
    let id: String = serde_json::from_str::<Value>(&after[0].commitment).expect("json")["id"]
        .as_str()
        .expect("id")
        .into();
    let pruned = store
        .event(TENANT, &id)
        .await
        .expect("event")
        .expect("still there");
    assert_eq!(pruned["pruned"], json!(true));
    assert!(pruned["request"]["body"]["sha256"].is_string());
    let kept = store
        .event(
            TENANT,
            serde_json::from_str::<Value>(&after[3].commitment).expect("json")["id"]
                .as_str()
                .expect("id"),
        )
        .await
        .expect("event")
        .expect("there");
    assert!(kept.get("pruned").is_none());
    assert_eq!(kept["response"]["body"]["active"], json!(false));
    let prune_event = &after[5];
    assert!(prune_event.commitment.contains("audit.prune"));
}
