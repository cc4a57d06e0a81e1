//! Two `scimtrail serve` processes on one SQLite database: a write that loses a race to the
//! other process, when the client sent no `If-Match`, is computed again rather than refused.
//! The in-process lock cannot see the other process, so only the store's version check and
//! the retry keep every member add.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

#[tokio::test]
async fn member_adds_from_two_processes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::start(dir.path(), &[]);
    let b = common::start(dir.path(), &[]);
    let c = common::client();
    let send = |server: &common::Server, method: reqwest::Method, path: &str, body: Value| {
        c.request(method, server.url(path))
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let r = send(
        &a,
        reqwest::Method::POST,
        "/scim/v2/Groups",
        json!({"displayName": "shared"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let group = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut users = vec![];
    for i in 0..40 {
        let r = send(
            &a,
            reqwest::Method::POST,
            "/scim/v2/Users",
            json!({"userName": format!("racer-{i}")}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        users.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Entra's member add, half through each process, all at once, without If-Match.
    let path = format!("/scim/v2/Groups/{group}");
    let adds = users.iter().enumerate().map(|(i, u)| {
        let server = if i % 2 == 0 { &a } else { &b };
        send(
            server,
            reqwest::Method::PATCH,
            &path,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "Add", "path": "members", "value": [{"value": u}]}]}),
        )
    });
    for (i, r) in futures_util::future::join_all(adds)
        .await
        .into_iter()
        .enumerate()
    {
        let r = r.unwrap();
        let status = r.status().as_u16();
        assert!(
            status == 200 || status == 204,
            "add {i}: {status} {}",
            r.text().await.unwrap()
        );
    }
    let g: Value = send(&b, reqwest::Method::GET, &path, Value::Null)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected: Vec<&str> = users.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(members, expected, "every member add landed");
    assert_eq!(g["meta"]["version"], "W/\"41\"", "one version per add");
    a.terminate();
    b.terminate();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args(["audit", "verify", "--database"])
        .arg(format!("sqlite://{}/scimtrail.db", dir.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
