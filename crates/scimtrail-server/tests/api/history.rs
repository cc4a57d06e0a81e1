//! Issue 6: history, diff, restore and revert through the audit API.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn replace_op(path: &str, value: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]})
}

#[tokio::test]
async fn every_version_is_listed_shown_and_diffed_even_after_delete() {
    let app = spawn_app().await;
    let id = app.create_user("hist").await.id();
    let p = format!("/scim/v2/Users/{id}");
    assert_eq!(
        app.patch(&p, replace_op("title", json!("Engineer")))
            .await
            .status,
        200
    );
    assert_eq!(
        app.patch(&p, replace_op("active", json!(false)))
            .await
            .status,
        200
    );
    assert_eq!(app.delete(&p).await.status, 204);
    assert_eq!(app.get(&p).await.status, 404, "the SCIM API forgets it");

    let h = format!("/audit/v1/resources/Users/{id}");
    let r = app.get(&format!("{h}/versions")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let vs = r.body["Resources"].as_array().unwrap();
    let got: Vec<(i64, &str, bool)> = vs
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["action"].as_str().unwrap(),
                v["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "user.create", false),
            (2, "user.update", false),
            (3, "user.deactivate", false),
            (4, "user.delete", true)
        ]
    );
    assert_eq!(vs[1]["changes"][0]["path"], "title");
    assert_eq!(vs[1]["actor"]["name"], "bootstrap");
    assert!(vs[2]["eventId"].is_string());
    // Paged.
    let r = app.get(&format!("{h}/versions?count=3")).await;
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 3);
    let c = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app.get(&format!("{h}/versions?count=3&cursor={c}")).await;
    assert_eq!(r.body["Resources"][0]["version"], 4);
    assert!(r.body.get("nextCursor").is_none());

    let r = app.get(&format!("{h}/versions/2")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Engineer");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    let r = app.get(&format!("{h}/versions/4")).await;
    assert_eq!(r.body["deleted"], true);

    let r = app.get(&format!("{h}/diff?from=1&to=3")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ch: Vec<(&str, &Value, &Value)> = r.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), &c["old"], &c["new"]))
        .collect();
    assert_eq!(
        ch,
        vec![
            ("title", &Value::Null, &json!("Engineer")),
            ("active", &json!(true), &json!(false))
        ]
    );

    // Bad input: 404 and 400, each with its event.
    for (path, status) in [
        (format!("{h}/versions/9"), 404),
        (format!("{h}/versions/x"), 400),
        (format!("{h}/diff?from=0"), 400),
        ("/audit/v1/resources/Users/nope/versions".to_string(), 404),
        (format!("/audit/v1/resources/Groups/{id}/versions"), 404),
        (format!("/audit/v1/resources/Things/{id}/versions"), 404),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.body);
        let e = app.event_of(&r.request_id()).await;
        assert_eq!(e["outcome"]["status"], status);
    }
}

#[tokio::test]
async fn group_members_at_each_version() {
    let app = spawn_app().await;
    let a = app.create_user("m-a").await.id();
    let b = app.create_user("m-b").await.id();
    let g = app.create_group("G", &[&a]).await.id();
    let p = format!("/scim/v2/Groups/{g}");
    let add = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": b}]}]});
    assert_eq!(app.patch(&p, add).await.status, 200);
    assert_eq!(app.delete(&format!("/scim/v2/Users/{a}")).await.status, 204);
    let h = format!("/audit/v1/resources/Groups/{g}");
    let members = |v: &Value| -> Vec<String> {
        v["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut want_1 = vec![a.clone()];
    want_1.sort();
    let mut want_2 = vec![a.clone(), b.clone()];
    want_2.sort();
    assert_eq!(
        members(&app.get(&format!("{h}/versions/1")).await.body),
        want_1
    );
    assert_eq!(
        members(&app.get(&format!("{h}/versions/2")).await.body),
        want_2
    );
    assert_eq!(
        members(&app.get(&format!("{h}/versions/3")).await.body),
        vec![b.clone()]
    );
    let d = app.get(&format!("{h}/diff?from=1&to=3")).await;
    let ch = d.body["changes"].as_array().unwrap();
    let ops: Vec<(&str, &str)> = ch
        .iter()
        .map(|c| {
            let m = if c["op"] == "add" {
                &c["new"]
            } else {
                &c["old"]
            };
            (c["op"].as_str().unwrap(), m["value"].as_str().unwrap())
        })
        .collect();
    assert!(ops.contains(&("add", b.as_str())), "{ops:?}");
    assert!(ops.contains(&("remove", a.as_str())), "{ops:?}");
    // What a GET shows now is the latest version.
    assert_eq!(members(&app.get(&p).await.body), vec![b.clone()]);
    let _ = Method::GET;
}
