//! Three `scimtrail serve` processes on one PostgreSQL database (issue #9, item 4), under a
//! concurrent write load on the same users and groups: member adds to a shared group and
//! PATCHes without `If-Match` from every process, racing PATCHes with `If-Match`, and deletes
//! of group members. Afterwards no update is lost, compare-and-swap held across processes,
//! every member added is there, the log is one gap-free sequence with one event per request,
//! and `scimtrail audit verify` passes. Skipped without `TEST_DATABASE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Call {
    status: u16,
    request_id: String,
    body: Value,
}

async fn call(
    c: &reqwest::Client,
    server: &common::Server,
    method: Method,
    path: String,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Call {
    let mut req = c
        .request(method, server.url(&path))
        .bearer_auth(common::TOKEN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    if let Some(etag) = if_match {
        req = req.header("if-match", etag);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    Call {
        status,
        request_id,
        body,
    }
}

#[tokio::test]
async fn three_processes_share_one_log_without_losing_a_write() {
    let Some(schema) = scimtrail_store_sql::testing::PgSchema::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // One after the other: the first start creates the log and redaction keys the others use.
    let servers: Vec<common::Server> = (0..3)
        .map(|_| common::start_on(dir.path(), &schema.url, &[]))
        .collect();
    let c = common::client();
    let (a, all) = (&servers[0], &servers);
    let pick = |i: usize| &all[i % 3];

    let group = call(
        &c,
        a,
        Method::POST,
        "/scim/v2/Groups".into(),
        Some(json!({"displayName": "shared"})),
        None,
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.body["id"].as_str().unwrap().to_string();
    let mut users = vec![];
    for i in 0..30 {
        let r = call(
            &c,
            pick(i),
            Method::POST,
            "/scim/v2/Users".into(),
            Some(json!({"userName": format!("member-{i}")})),
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        users.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mut doomed = vec![];
    for i in 0..6 {
        let r = call(
            &c,
            pick(i),
            Method::POST,
            "/scim/v2/Users".into(),
            Some(json!({"userName": format!("doomed-{i}")})),
            None,
        )
        .await;
        doomed.push(r.body["id"].as_str().unwrap().to_string());
    }
    let gpath = format!("/scim/v2/Groups/{gid}");
    let add = |id: &str| json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]});
    for d in &doomed {
        let s = call(&c, a, Method::PATCH, gpath.clone(), Some(add(d)), None)
            .await
            .status;
        assert!(s == 200 || s == 204, "{s}");
    }
    let target = format!("/scim/v2/Users/{}", users[1]);
    let etag = call(&c, a, Method::GET, target.clone(), None, None)
        .await
        .body["meta"]["version"]
        .as_str()
        .unwrap()
        .to_string();

    // All at once: member adds and email adds without If-Match, racing If-Match replaces,
    // deletes of members of the shared group, each spread over the three processes.
    let mut load = vec![];
    for (i, u) in users.iter().enumerate() {
        load.push((
            "add",
            call(
                &c,
                pick(i),
                Method::PATCH,
                gpath.clone(),
                Some(add(u)),
                None,
            ),
        ));
    }
    let emails = format!("/scim/v2/Users/{}", users[0]);
    for i in 0..30 {
        let body = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "emails",
            "value": [{"value": format!("e{i}@example.com"), "type": "work"}]}]});
        load.push((
            "email",
            call(
                &c,
                pick(i + 1),
                Method::PATCH,
                emails.clone(),
                Some(body),
                None,
            ),
        ));
    }
    for i in 0..9 {
        let body = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": format!("winner-{i}")}]});
        load.push((
            "cas",
            call(
                &c,
                pick(i),
                Method::PATCH,
                target.clone(),
                Some(body),
                Some(&etag),
            ),
        ));
    }
    for (i, d) in doomed.iter().enumerate() {
        load.push((
            "delete",
            call(
                &c,
                pick(i + 2),
                Method::DELETE,
                format!("/scim/v2/Users/{d}"),
                None,
                None,
            ),
        ));
    }
    let kinds: Vec<&str> = load.iter().map(|(k, _)| *k).collect();
    let results = futures_util::future::join_all(load.into_iter().map(|(_, f)| f)).await;
    let mut won = vec![];
    for (kind, r) in kinds.iter().zip(&results) {
        match *kind {
            "cas" => {
                assert!(
                    r.status == 200 || r.status == 412,
                    "cas: {} {}",
                    r.status,
                    r.body
                );
                if r.status == 200 {
                    won.push(r.body["title"].as_str().unwrap().to_string());
                }
            }
            "delete" => assert_eq!(r.status, 204, "delete: {}", r.body),
            _ => assert!(
                r.status == 200 || r.status == 204,
                "{kind}: {} {}",
                r.status,
                r.body
            ),
        }
    }
    assert_eq!(
        won.len(),
        1,
        "exactly one If-Match replace wins across processes"
    );

    // Nothing lost: every member (and no deleted one), every email, the winner's title.
    let g = call(&c, pick(1), Method::GET, gpath.clone(), None, None)
        .await
        .body;
    let mut members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected: Vec<&str> = users.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        members, expected,
        "every member add landed and every deleted member left"
    );
    let u0 = call(&c, pick(2), Method::GET, emails.clone(), None, None)
        .await
        .body;
    assert_eq!(u0["emails"].as_array().unwrap().len(), 30, "{u0}");
    // One version per PATCH (a member's ETag also carries a digest of its groups).
    let version = u0["meta"]["version"].as_str().unwrap();
    assert!(
        version
            .strip_prefix("W/\"31")
            .is_some_and(|r| r.starts_with(['.', '"'])),
        "{version}"
    );
    let u1 = call(&c, pick(0), Method::GET, target.clone(), None, None)
        .await
        .body;
    assert_eq!(u1["title"].as_str(), Some(won[0].as_str()));

    for s in servers {
        s.terminate();
    }
    // One gap-free log: seq 0, 1, 2… and one event per request (a delete also writes its
    // group's removal, an event of its own with the same request id).
    let store = scimtrail_store_sql::connect(
        &schema.url,
        std::sync::Arc::new(scimtrail_core::Registry::builtin()),
    )
    .await
    .unwrap();
    let rows = store.log_rows(None, None, 100_000).await.unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "the log has a gap or a repeat");
    }
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let e: Value = serde_json::from_str(&r.commitment).unwrap();
        *per_request
            .entry(e["requestId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for (kind, r) in kinds.iter().zip(&results) {
        let n = per_request.get(&r.request_id).copied().unwrap_or(0);
        let want = if *kind == "delete" { 2 } else { 1 };
        assert_eq!(n, want, "{kind} {} has {n} events", r.request_id);
    }
    drop(store);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .current_dir(dir.path())
        .args(["audit", "verify", "--database", &schema.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
