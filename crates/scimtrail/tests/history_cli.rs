//! `scimtrail history|restore|revert` against a database a running server writes to: a readable
//! timeline, restore and revert through the API's own path, audited as the operator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

use common::cli;

#[tokio::test]
async fn history_restore_and_revert_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    // The operator who starts the server is the actor of its `config.change` event.
    let server = common::start(dir.path(), &[("USER", "ops-alice")]);
    let db = format!("sqlite://{}/scimtrail.db", dir.path().display());
    let c = common::client();
    let send = |m: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = c.request(m, server.url(path)).bearer_auth(common::TOKEN);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        r.send()
    };
    let r = send(
        reqwest::Method::POST,
        "/scim/v2/Users",
        Some(json!({"userName": "cli-user", "title": "Dev", "password": "Cli-Secret-1"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]});
    let r = send(
        reqwest::Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        Some(patch),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();

    // The log from the command line: a query, a request's trace, one event in full.
    let (code, out, err) = cli(&[
        "audit",
        "query",
        "--filter",
        "action eq \"user.update\"",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("TIME"), "{out}");
    assert!(
        out.contains("user.update") && out.contains("User cli-user") && out.contains("200"),
        "{out}"
    );
    let (code, out, err) = cli(&["audit", "trace", &rid, "--database", &db, "--json"]);
    assert_eq!(code, 0, "{err}");
    let trace: Value = serde_json::from_str(&out).unwrap();
    let eid = trace[0]["id"].as_str().unwrap().to_string();
    let (code, out, err) = cli(&["audit", "show", &eid, "--database", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replace title: \"Dev\" → \"Boss\""), "{out}");
    let (code, _, err) = cli(&["audit", "query", "--filter", "bogus eq", "--database", &db]);
    assert_eq!(code, 1);
    assert!(err.contains("invalidFilter"), "{err}");

    let (code, out, err) = cli(&["history", "Users", &id, "--database", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 version(s)"), "{out}");
    assert!(out.contains("user.update"), "{out}");
    assert!(out.contains("replace title: \"Dev\" → \"Boss\""), "{out}");
    let (code, out, _) = cli(&["history", "Users", &id, "--database", &db, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["versions"].as_array().unwrap().len(), 2);

    let (code, out, err) = cli(&[
        "restore",
        "Users",
        &id,
        "--version",
        "1",
        "--dry-run",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("planned (dry run): 1 resource(s)"), "{out}");
    assert!(out.contains("not restorable: password"), "{out}");
    let (code, out, err) = cli(&[
        "restore",
        "Users",
        &id,
        "--version",
        "1",
        "--reason",
        "oops",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let now: Value = send(reqwest::Method::GET, &format!("/scim/v2/Users/{id}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["title"], "Dev");

    // Revert the PATCH request: its title is already back (the restore did it), so there is
    // nothing to do; after someone else changes it again, that is a conflict the revert names.
    let (code, out, err) = cli(&["revert", "--request-id", &rid, "--database", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied: 0 resource(s)"), "{out}");
    let again = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "Third"}]});
    let r = send(
        reqwest::Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        Some(again),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let (code, out, err) = cli(&["revert", "--request-id", &rid, "--database", &db]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("conflict (blocking) laterChange"), "{out}");
    assert!(err.contains("409"), "{err}");
    let (code, _, err) = cli(&["revert", "--request-id", "nothing-here", "--database", &db]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");

    // Each act is an event with the operator as its actor.
    let events: Value = send(
        reqwest::Method::GET,
        "/audit/v1/events?count=100&filter=actor.kind%20eq%20%22operator%22",
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let actions: Vec<&str> = events["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "config.change",
        "audit.history",
        "resource.restore",
        "audit.revert",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(events["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"]["name"] == "ops-alice"));
    server.terminate();
}

/// Token administration is audited (issue 7, item 7): the bootstrap, each create and each
/// revoke is an event naming the token's id and name, never its value; a name that several
/// active tokens share revokes nothing.
#[tokio::test]
async fn token_administration_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[]);
    let db = format!("sqlite://{}/scimtrail.db", dir.path().display());
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for _ in 0..2 {
        let (code, out, err) = cli(&[
            "token",
            "create",
            "--name",
            "dup",
            "--json",
            "--database",
            &db,
        ]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
        values.push(v["token"].as_str().unwrap().to_string());
    }
    let (code, _, err) = cli(&["token", "revoke", "dup", "--database", &db]);
    assert_eq!(code, 1);
    assert!(err.contains("2 active tokens are named \"dup\""), "{err}");
    let (code, out, err) = cli(&["token", "revoke", &ids[0], "--database", &db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&ids[0]), "{out}");
    let (code, _, err) = cli(&["token", "revoke", "dup", "--database", &db]);
    assert_eq!(code, 0, "now one is left: {err}");

    let c = common::client();
    let events: Value = c
        .get(server.url(
            "/audit/v1/events?count=100&sortOrder=ascending&filter=target.type%20eq%20%22Token%22",
        ))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got: Vec<(String, String, String, String)> = events["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"]["kind"].as_str().unwrap().to_string(),
                e["target"]["id"].as_str().unwrap().to_string(),
                e["target"]["display"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str(), got[0].3.as_str()),
        ("token.bootstrap", "system", "bootstrap")
    );
    assert_eq!(
        (got[1].0.as_str(), got[1].2.as_str()),
        ("token.create", ids[0].as_str())
    );
    assert_eq!(
        (got[2].0.as_str(), got[2].2.as_str()),
        ("token.create", ids[1].as_str())
    );
    assert_eq!(
        (got[3].0.as_str(), got[3].1.as_str(), got[3].2.as_str()),
        ("token.revoke", "operator", ids[0].as_str())
    );
    assert_eq!(
        (got[4].0.as_str(), got[4].2.as_str()),
        ("token.revoke", ids[1].as_str())
    );
    let text = events.to_string();
    for v in values.iter().chain([&common::TOKEN.to_string()]) {
        assert!(!text.contains(v.as_str()), "a token value in the log");
    }
    server.terminate();
}
