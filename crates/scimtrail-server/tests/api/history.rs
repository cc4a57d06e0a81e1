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
    assert_eq!(r.body["totalResults"], 4);
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

async fn post_json(app: &TestApp, path: &str, body: Value) -> Resp {
    app.send(Method::POST, path, Some(&body), &[]).await
}

#[tokio::test]
async fn restore_writes_an_old_state_and_undeletes_with_memberships() {
    let app = spawn_app().await;
    let id = app.create_user("rest").await.id();
    let g = app.create_group("Team", &[&id]).await.id();
    let p = format!("/scim/v2/Users/{id}");
    // One PATCH sets a title and a password; the password was never stored.
    let both = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "title", "value": "CEO"},
        {"op": "replace", "path": "password", "value": "Secret-Pw-1"}]});
    assert_eq!(app.patch(&p, both).await.status, 200);
    let r = format!("/audit/v1/resources/Users/{id}/restore");
    // Dry run: the plan, nothing written.
    let d = post_json(
        &app,
        &r,
        json!({"version": 1, "dryRun": true, "reason": "typo"}),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["applied"], false);
    assert_eq!(d.body["plan"]["steps"][0]["changes"][0]["path"], "title");
    assert_eq!(d.body["plan"]["steps"][0]["fromVersion"], 2);
    assert!(d.body["plan"]["notRestorable"][0]
        .as_str()
        .unwrap()
        .starts_with("password"));
    assert_eq!(app.get(&p).await.body["title"], "CEO");
    // A guard on the planned version: 412 when it moved.
    let s = post_json(&app, &r, json!({"version": 1, "expectedVersion": 1})).await;
    s.assert_error(412, None);
    let a = post_json(
        &app,
        &r,
        json!({"version": 1, "expectedVersion": 2, "reason": "typo"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let now = app.get(&p).await;
    assert!(now.body.get("title").is_none(), "{}", now.body);
    // Version 3 (the User is in a group, whose digest follows the version).
    let etag = now.header("etag").unwrap();
    assert!(etag.starts_with("W/\"3."), "{etag}");
    let e = app.event_of(&a.request_id()).await;
    assert_eq!(e["action"], "resource.restore");
    assert_eq!(e["actor"]["name"], "bootstrap");
    assert!(e["outcome"]["detail"]
        .as_str()
        .unwrap()
        .contains("restore of version 1"));
    assert!(e["outcome"]["detail"].as_str().unwrap().ends_with(": typo"));

    // Undelete: same id and userName, and back in its group.
    assert_eq!(app.delete(&p).await.status, 204);
    let gget = app.get(&format!("/scim/v2/Groups/{g}")).await;
    assert!(gget.body.get("members").is_none());
    let u = post_json(&app, &r, json!({"version": 3})).await;
    assert_eq!(u.status, 200, "{}", u.body);
    let back = app.get(&p).await;
    assert_eq!(back.status, 200);
    assert_eq!(back.body["userName"], "rest");
    // Version 5, back in its group (whose digest follows the version).
    let etag = back.header("etag").unwrap();
    assert!(etag.starts_with("W/\"5."), "{etag}");
    let gget = app.get(&format!("/scim/v2/Groups/{g}")).await;
    assert_eq!(
        gget.body["members"][0]["value"],
        id.as_str(),
        "{}",
        gget.body
    );
    assert_eq!(
        gget.header("etag"),
        Some("W/\"3\""),
        "created, left, rejoined"
    );
    let events = app
        .get(&format!(
            "/audit/v1/events?filter={}",
            enc(&format!("requestId eq \"{}\"", u.request_id()))
        ))
        .await;
    assert_eq!(
        events.body["Resources"].as_array().unwrap().len(),
        2,
        "{}",
        events.body
    );

    // A userName taken meanwhile blocks the undelete (and the plan says why).
    assert_eq!(app.delete(&p).await.status, 204);
    app.create_user("REST").await;
    let c = post_json(&app, &r, json!({"version": 5})).await;
    c.assert_error(409, Some("uniqueness"));
    assert_eq!(c.body["plan"]["conflicts"][0]["kind"], "userNameTaken");
    assert_eq!(app.get(&p).await.status, 404);
    // Bad input.
    post_json(&app, &r, json!({"version": 6}))
        .await
        .assert_error(400, Some("invalidValue"));
    post_json(&app, &r, json!({"version": 99}))
        .await
        .assert_error(404, None);
    post_json(&app, &r, json!({"versoin": 1}))
        .await
        .assert_error(400, Some("invalidSyntax"));
    post_json(
        &app,
        "/audit/v1/resources/Users/nope/restore",
        json!({"version": 1}),
    )
    .await
    .assert_error(404, None);
}

/// The scenario of issue 6: one token deactivates 300 users, deletes 50 and empties 5 groups;
/// one dry run and one apply put every user, attribute and membership back, same ids.
#[tokio::test]
async fn revert_everything_one_token_did() {
    let app = spawn_app().await;
    // Provision 1,000 users and 20 groups of 50 members each, as the admin.
    let mut users = Vec::new();
    for i in 0..1000 {
        users.push(app.create_user(&format!("user{i:04}")).await.id());
    }
    let mut groups = Vec::new();
    for g in 0..20 {
        let members: Vec<&str> = users[g * 50..g * 50 + 50]
            .iter()
            .map(String::as_str)
            .collect();
        groups.push(
            app.create_group(&format!("group{g:02}"), &members)
                .await
                .id(),
        );
    }
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("meta");
        }
        v
    };
    let mut before_users = Vec::new();
    for u in &users {
        before_users.push(strip(app.get(&format!("/scim/v2/Users/{u}")).await.body));
    }
    let before_groups: Vec<Value> = {
        let mut v = Vec::new();
        for g in &groups {
            v.push(app.get(&format!("/scim/v2/Groups/{g}")).await.body);
        }
        v
    };
    // The bad token.
    let bad = scimtrail_bad_token(&app).await;
    let as_bad = |m: Method, path: String, body: Option<Value>| {
        let c = app.client.clone();
        let url = app.url(&path);
        let bad = bad.clone();
        async move {
            let mut rq = c.request(m, url).bearer_auth(bad);
            if let Some(b) = body {
                rq = rq
                    .header("content-type", "application/scim+json")
                    .body(b.to_string());
            }
            rq.send().await.unwrap().status().as_u16()
        }
    };
    for u in &users[0..300] {
        let s = as_bad(
            Method::PATCH,
            format!("/scim/v2/Users/{u}"),
            Some(replace_op("active", json!(false))),
        )
        .await;
        assert_eq!(s, 200);
    }
    for u in &users[300..350] {
        assert_eq!(
            as_bad(Method::DELETE, format!("/scim/v2/Users/{u}"), None).await,
            204
        );
    }
    for g in &groups[0..5] {
        let s = as_bad(
            Method::PATCH,
            format!("/scim/v2/Groups/{g}"),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": []}]})),
        )
        .await;
        assert!(s == 200 || s == 204, "{s}");
    }
    // An admin change afterwards to an unrelated attribute is no conflict.
    let p0 = format!("/scim/v2/Users/{}", users[0]);
    assert_eq!(
        app.patch(&p0, replace_op("title", json!("kept")))
            .await
            .status,
        200
    );

    let token_id = app
        .get(&format!(
            "/audit/v1/events?count=1&filter={}",
            enc("actor.name eq \"bad-idp\"")
        ))
        .await
        .body["Resources"][0]["actor"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let filter = format!("actor.id eq \"{token_id}\"");
    let dry = post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": filter, "dryRun": true, "reason": "bad mapping"}),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let steps = dry.body["plan"]["steps"].as_array().unwrap();
    let undeletes = steps.iter().filter(|s| s["action"] == "undelete").count();
    assert_eq!(undeletes, 50, "{}", dry.body["plan"]["conflicts"]);
    assert!(dry.body["plan"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["blocking"] == false));
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{}", users[300]))
            .await
            .status,
        404,
        "dry run"
    );

    // Beyond maxChanges the apply needs the override.
    let few = post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": filter, "maxChanges": 10}),
    )
    .await;
    few.assert_error(400, Some("tooMany"));
    let n = dry.body["matchedVersions"].as_u64().unwrap();
    let applied = post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": filter, "reason": "bad mapping", "maxChanges": n}),
    )
    .await;
    assert_eq!(applied.status, 200, "{}", applied.body);

    for (i, u) in users.iter().enumerate() {
        let r = app.get(&format!("/scim/v2/Users/{u}")).await;
        assert_eq!(r.status, 200, "user {i}");
        let mut now = strip(r.body);
        if i == 0 {
            // The admin's later, unrelated change stays.
            assert_eq!(now["title"], "kept");
            now.as_object_mut().unwrap().remove("title");
        }
        assert_eq!(
            now, before_users[i],
            "user {i}: every attribute and group back"
        );
    }
    for (g, before) in groups.iter().zip(&before_groups) {
        let now = app.get(&format!("/scim/v2/Groups/{g}")).await.body;
        assert_eq!(now["members"], before["members"], "group {g}");
    }
    // The log shows each step: the revert's event, and one per resource linked to it.
    let rid = applied.request_id();
    let mut cursor: Option<String> = None;
    let mut linked = 0;
    let mut head = None;
    loop {
        let mut path = format!(
            "/audit/v1/events?count=1000&filter={}",
            enc(&format!("requestId eq \"{rid}\""))
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path).await;
        for e in r.body["Resources"].as_array().unwrap() {
            if e["action"] == "audit.revert" {
                head = Some(e["id"].as_str().unwrap().to_string());
            } else {
                assert_eq!(e["action"], "resource.revert");
                linked += 1;
            }
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(head.is_some());
    assert_eq!(linked, steps.len());
}

/// A token named `bad-idp` with the scim scope, created through the store as the CLI does.
async fn scimtrail_bad_token(app: &TestApp) -> String {
    app.extra_token("bad-idp", &["scim"]).await
}

#[tokio::test]
async fn revert_stops_on_a_later_change_unless_forced() {
    let app = spawn_app().await;
    let id = app.create_user("conf").await.id();
    let p = format!("/scim/v2/Users/{id}");
    let first = app.patch(&p, replace_op("title", json!("A"))).await;
    assert_eq!(
        app.patch(&p, replace_op("title", json!("B"))).await.status,
        200
    );
    let filter = format!("requestId eq \"{}\"", first.request_id());
    let r = post_json(&app, "/audit/v1/revert", json!({"filter": filter})).await;
    r.assert_error(409, None);
    let c = &r.body["plan"]["conflicts"][0];
    assert_eq!(
        (
            c["kind"].as_str(),
            c["path"].as_str(),
            c["version"].as_i64()
        ),
        (Some("laterChange"), Some("title"), Some(3))
    );
    assert_eq!(app.get(&p).await.body["title"], "B");
    let f = post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": filter, "force": true}),
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert!(app.get(&p).await.body.get("title").is_none());
    // Matching nothing, or a bad filter.
    post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": "requestId eq \"none\""}),
    )
    .await
    .assert_error(404, Some("noTarget"));
    post_json(&app, "/audit/v1/revert", json!({"filter": "requestId eq"}))
        .await
        .assert_error(400, Some("invalidFilter"));
    // Reverting a create deletes the resource, and it leaves its groups.
    let c = app.create_user("created").await;
    let g = app.create_group("Holder", &[&c.id()]).await.id();
    let filter = format!("requestId eq \"{}\"", c.request_id());
    let r = post_json(&app, "/audit/v1/revert", json!({"filter": filter})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{}", c.id())).await.status,
        404
    );
    assert!(app
        .get(&format!("/scim/v2/Groups/{g}"))
        .await
        .body
        .get("members")
        .is_none());
}

/// What an outside review of revert found: an undone undelete left a nameless live user, a
/// filter matching history reads reverted other people's changes, `schemas` lost the
/// extension, a taken userName only failed at apply time, and a second revert conflicted with
/// the first.
#[tokio::test]
async fn revert_review_findings() {
    let app = spawn_app().await;
    // An undelete undone is a delete again.
    let id = app.create_user("undo-me").await.id();
    let p = format!("/scim/v2/Users/{id}");
    assert_eq!(app.delete(&p).await.status, 204);
    let r = post_json(
        &app,
        &format!("/audit/v1/resources/Users/{id}/restore"),
        json!({"version": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let f = format!("requestId eq \"{}\"", r.request_id());
    let v = post_json(&app, "/audit/v1/revert", json!({"filter": f})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["plan"]["steps"][0]["action"], "delete");
    assert_eq!(app.get(&p).await.status, 404);
    app.create_user("undo-me").await;

    // History reads are not changes.
    let u = app.create_user("read-only").await.id();
    let t = app
        .patch(
            &format!("/scim/v2/Users/{u}"),
            replace_op("title", json!("x")),
        )
        .await;
    assert_eq!(t.status, 200);
    let read = app
        .get(&format!("/audit/v1/resources/Users/{u}/versions/2"))
        .await;
    let f = format!("requestId eq \"{}\"", read.request_id());
    post_json(&app, "/audit/v1/revert", json!({"filter": f}))
        .await
        .assert_error(404, Some("noTarget"));
    let diff = app
        .get(&format!("/audit/v1/resources/Users/{u}/diff?from=1&to=2"))
        .await;
    let f = format!("requestId eq \"{}\"", diff.request_id());
    post_json(&app, "/audit/v1/revert", json!({"filter": f}))
        .await
        .assert_error(404, Some("noTarget"));

    // The extension and its URN in `schemas` come back together.
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let e = app
        .post(
            "/scim/v2/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
                   "userName": "ent", ENT: {"department": "D"}}),
        )
        .await;
    let eid = e.id();
    let put = app
        .put(&format!("/scim/v2/Users/{eid}"), json!({"userName": "ent"}))
        .await;
    assert_eq!(put.status, 200);
    let f = format!("requestId eq \"{}\"", put.request_id());
    let v = post_json(&app, "/audit/v1/revert", json!({"filter": f})).await;
    assert_eq!(v.status, 200, "{}", v.body);
    let now = app.get(&format!("/scim/v2/Users/{eid}")).await.body;
    assert_eq!(now[ENT]["department"], "D");
    assert!(
        now["schemas"].as_array().unwrap().contains(&json!(ENT)),
        "{now}"
    );
    // A second revert of the same request finds nothing left to do.
    let again = post_json(&app, "/audit/v1/revert", json!({"filter": f})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(
        again.body["plan"]["steps"].as_array().unwrap().is_empty(),
        "{}",
        again.body
    );
    assert!(
        again.body["plan"]["conflicts"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        again.body
    );

    // A userName taken since: a conflict in the plan, before anything is applied.
    let gone = app.create_user("reused").await.id();
    let d = app.delete(&format!("/scim/v2/Users/{gone}")).await;
    app.create_user("REUSED").await;
    let f = format!("requestId eq \"{}\"", d.request_id());
    let dry = post_json(
        &app,
        "/audit/v1/revert",
        json!({"filter": f, "dryRun": true}),
    )
    .await;
    assert_eq!(
        dry.body["plan"]["conflicts"][0]["kind"], "userNameTaken",
        "{}",
        dry.body
    );
    let r = post_json(&app, "/audit/v1/revert", json!({"filter": f})).await;
    r.assert_error(409, None);
    assert_eq!(app.get(&format!("/scim/v2/Users/{gone}")).await.status, 404);

    // Renames that hand a name on are reverted in an order that frees each name first.
    let idp = app.extra_token("renamer", &["scim"]).await;
    let u1 = app.create_user("name-a").await.id();
    let u2 = app.create_user("name-b").await.id();
    for (u, to) in [(&u1, "name-t"), (&u2, "name-a")] {
        let r = app
            .raw(
                app.client
                    .patch(app.url(&format!("/scim/v2/Users/{u}")))
                    .bearer_auth(&idp)
                    .header("content-type", "application/scim+json")
                    .body(replace_op("userName", json!(to)).to_string()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let f = "actor.name eq \"renamer\"";
    let r = post_json(&app, "/audit/v1/revert", json!({"filter": f})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{u1}")).await.body["userName"],
        "name-a"
    );
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{u2}")).await.body["userName"],
        "name-b"
    );
}
