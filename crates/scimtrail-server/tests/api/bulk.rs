//! `/Bulk` (RFC 7644 §3.7): bulkId references in any order, failOnErrors, the limits, and one
//! audit event per operation linked to the Bulk's.

use serde_json::{json, Value};

use crate::helpers::*;

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

/// Every event of a request, oldest first.
async fn events_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    let filter = format!("requestId eq \"{request_id}\"");
    let r = app
        .get(&format!(
            "/audit/v1/events?sortOrder=ascending&count=1000&filter={}",
            enc(&filter)
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["Resources"].as_array().unwrap().clone()
}

fn ops(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    r.body["Operations"].as_array().unwrap().clone()
}

#[tokio::test]
async fn references_resolve_in_any_order_and_each_operation_has_its_event() {
    let app = spawn_app().await;
    let existing = app.create_user("existing").await.id();
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({
                "schemas": [BULK],
                "Operations": [
                    // The group lists users created after it in the request.
                    {"method": "POST", "path": "/Groups", "bulkId": "g",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                              "displayName": "Engineering",
                              "members": [{"value": "bulkId:alice"}, {"value": "bulkId:bob"},
                                          {"value": existing}]}},
                    {"method": "PATCH", "path": "/Users/bulkId:bob",
                     "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "replace", "path": "active", "value": false}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "alice", "data": user("alice")},
                    {"method": "POST", "path": "/Users", "bulkId": "bob",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                                          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                              "userName": "bob",
                              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                                  {"manager": {"value": "bulkId:alice"}}}},
                    {"method": "DELETE", "path": format!("/Users/{existing}")},
                ]
            }),
        )
        .await;
    let rid = r.request_id();
    let o = ops(&r);
    // In the order sent, each with its status as a string (RFC 7644 §3.7.3).
    let statuses: Vec<&str> = o.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "200", "201", "201", "204"], "{}", r.body);
    assert_eq!(o[0]["bulkId"], "g");
    assert_eq!(o[0]["method"], "POST");
    let loc = |e: &Value| e["location"].as_str().unwrap().to_string();
    let id_of = |e: &Value| loc(e).rsplit('/').next().unwrap().to_string();
    let (group, alice, bob) = (id_of(&o[0]), id_of(&o[2]), id_of(&o[3]));
    assert!(loc(&o[2]).ends_with(&format!("/scim/v2/Users/{alice}")));
    assert_eq!(o[2]["version"], "W/\"1\"");
    assert_eq!(loc(&o[1]), loc(&o[3]), "the PATCH went to bob");
    assert!(o.iter().all(|e| e.get("response").is_none()));

    // What the operations did is there.
    let g = app.get(&format!("/scim/v2/Groups/{group}")).await;
    let mut members: Vec<&str> = g.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort();
    let mut want = vec![alice.as_str(), bob.as_str()];
    want.sort();
    assert_eq!(members, want, "the deleted user left the group: {}", g.body);
    let b = app.get(&format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(b.body["active"], false);
    assert_eq!(
        b.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        alice
    );
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{existing}")).await.status,
        404
    );

    // One event per operation (plus the delete's removal from the group), each under the
    // Bulk's event, which comes last with the response.
    let events = events_of(&app, &rid).await;
    let bulk = events.last().unwrap();
    assert_eq!(bulk["action"], "bulk");
    assert_eq!(bulk["operation"]["scim"], "bulk");
    assert_eq!(bulk["outcome"]["status"], 200);
    assert!(bulk["parentId"].is_null());
    let children: Vec<&Value> = events
        .iter()
        .filter(|e| e["parentId"] == bulk["id"])
        .collect();
    let actions: Vec<&str> = children
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Each runs after what it refers to: alice, then bob (his manager is alice), then the
    // group and the PATCH (which may run at once), and the DELETE alone, last.
    assert_eq!(actions.len(), 5, "{events:#?}");
    assert_eq!(actions[..2], ["user.create", "user.create"]);
    let mut middle = actions[2..4].to_vec();
    middle.sort();
    assert_eq!(middle, ["group.create", "user.deactivate"]);
    assert_eq!(actions[4], "user.delete");
    let child = |action: &str| *children.iter().find(|e| e["action"] == action).unwrap();
    let patch = child("user.deactivate");
    assert_eq!(patch["operation"]["method"], "PATCH");
    assert_eq!(patch["operation"]["path"], format!("/scim/v2/Users/{bob}"));
    assert_eq!(patch["target"]["id"], bob);
    // The delete's cascade (out of the group it was in) hangs under the delete.
    let cascade: Vec<&Value> = events
        .iter()
        .filter(|e| e["parentId"] == child("user.delete")["id"])
        .collect();
    assert_eq!(cascade.len(), 1);
    assert_eq!(cascade[0]["action"], "group.member.remove");
    assert_eq!(events.len(), 7);
    assert!(events
        .iter()
        .all(|e| e["actor"]["kind"] == "token" && e["requestId"] == rid.as_str()));
    // Each operation's event keeps its own request: the group's resolved members.
    let gc = child("group.create");
    assert_eq!(
        gc["request"]["body"]["members"][0]["value"], alice,
        "{gc:#}"
    );
}

#[tokio::test]
async fn failed_operations_answer_their_error_and_fail_on_errors_stops() {
    let app = spawn_app().await;
    app.create_user("taken").await;
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({
                "schemas": [BULK],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("taken")},
                    {"method": "PATCH", "path": "/Users/bulkId:a",
                     "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
                    {"method": "DELETE", "path": "/Users/bulkId:nobody"},
                    {"method": "GET", "path": "/Users"},
                    {"method": "PUT", "path": "/Users/missing", "data": user("x")},
                    {"method": "POST", "path": "/Users", "bulkId": "c1",
                     "data": {"userName": "c1", "x": "bulkId:c2"}},
                    {"method": "POST", "path": "/Users", "bulkId": "c2",
                     "data": {"userName": "c2", "x": "bulkId:c1"}},
                    {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user("fine")},
                ]
            }),
        )
        .await;
    let o = ops(&r);
    let summary: Vec<(String, Option<String>)> = o
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap().to_string(),
                e["response"]["scimType"].as_str().map(str::to_string),
            )
        })
        .collect();
    let s = |st: &str, t: Option<&str>| (st.to_string(), t.map(str::to_string));
    assert_eq!(
        summary,
        vec![
            s("409", Some("uniqueness")),
            s("409", None),
            s("400", Some("invalidValue")),
            s("400", Some("invalidValue")),
            s("404", None),
            s("409", None),
            s("409", None),
            s("201", None),
        ],
        "{}",
        r.body
    );
    // A failed POST has no location; the failed op's error body is the RFC 7644 §3.12 one.
    assert!(o[0].get("location").is_none());
    assert_eq!(o[0]["bulkId"], "a");
    assert_eq!(o[4]["response"]["status"], "404");
    assert_eq!(o[3]["method"], "GET");
    assert!(o[1]["response"]["detail"]
        .as_str()
        .unwrap()
        .contains("bulkId 'a'"));
    let events = events_of(&app, &r.request_id()).await;
    assert_eq!(events.len(), 9, "one per operation and the Bulk's");
    let failures = events
        .iter()
        .filter(|e| e["outcome"]["result"] == "failure")
        .count();
    assert_eq!(failures, 7);

    // failOnErrors 2: the first two failures end the run; what follows does not run.
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({
                "schemas": [BULK],
                "failOnErrors": 2,
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "1", "data": user("one")},
                    {"method": "POST", "path": "/Users", "bulkId": "2", "data": user("taken")},
                    {"method": "DELETE", "path": "/Users/missing"},
                    {"method": "POST", "path": "/Users", "bulkId": "3", "data": user("three")},
                ]
            }),
        )
        .await;
    let o = ops(&r);
    assert_eq!(o.len(), 3, "{}", r.body);
    let list = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("userName eq \"three\"")
        ))
        .await;
    assert_eq!(list.body["totalResults"], 0);
    let events = events_of(&app, &r.request_id()).await;
    assert_eq!(events.len(), 4);
    let detail = events.last().unwrap()["outcome"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("1 not run"), "{detail}");
}

#[tokio::test]
async fn version_guards_an_operation_like_if_match() {
    let app = spawn_app().await;
    let id = app.create_user("v").await.id();
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({"Operations": [
                {"method": "PATCH", "path": format!("/Users/{id}"), "version": "W/\"7\"",
                 "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "no"}]}},
                {"method": "PATCH", "path": format!("/Users/{id}"), "version": "W/\"1\"",
                 "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "yes"}]}},
                {"method": "DELETE", "path": format!("/Users/{id}"), "version": "W/\"1\""},
            ]}),
        )
        .await;
    let o = ops(&r);
    let st: Vec<&str> = o.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["412", "200", "412"], "{}", r.body);
    assert_eq!(o[1]["version"], "W/\"2\"");
    let u = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(u.body["displayName"], "yes");
}

#[tokio::test]
async fn limits_are_advertised_and_enforced_before_anything_runs() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        bulk_max_operations: 3,
        bulk_max_payload_bytes: 4096,
        ..Default::default()
    })
    .await;
    let spc = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(
        spc.body["bulk"],
        json!({"supported": true, "maxOperations": 3, "maxPayloadSize": 4096})
    );
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": user(&format!("u{i}"))}))
        .collect();
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({"schemas": [BULK], "Operations": four}),
        )
        .await;
    r.assert_error(413, Some("tooMany"));
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("maxOperations is 3"));
    let big = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "x".repeat(5000)}}]});
    let r = app.post("/scim/v2/Bulk", big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("maxPayloadSize (4096"));
    let ev = app.event_of(&r.request_id()).await;
    assert_eq!(ev["action"], "bulk");
    assert_eq!(ev["outcome"]["status"], 413);
    // Nothing ran.
    let users = app.get("/scim/v2/Users").await;
    assert_eq!(users.body["totalResults"], 0);
    // The ordinary body limit does not apply to Bulk, and Bulk's does not apply elsewhere.
    let r = app.post("/scim/v2/Bulk", json!({"Operations": []})).await;
    assert_eq!(ops(&r).len(), 0);
    for (body, scim_type) in [
        (
            json!({"schemas": ["nope"], "Operations": []}),
            "invalidSyntax",
        ),
        (json!({"Operations": "x"}), "invalidSyntax"),
        (json!({"failOnErrors": 0, "Operations": []}), "invalidValue"),
    ] {
        let r = app.post("/scim/v2/Bulk", body).await;
        r.assert_error(400, Some(scim_type));
        assert_eq!(app.event_of(&r.request_id()).await["action"], "bulk");
    }
    let r = app.get("/scim/v2/Bulk").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn secrets_in_a_bulk_reach_no_event() {
    let app = spawn_app().await;
    let canary = "Bulk-Canary-Secret-7f3a";
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({"Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "p",
                 "data": {"userName": "pw", "password": canary}},
                {"method": "PATCH", "path": "/Users/bulkId:p",
                 "data": {"Operations": [{"op": "replace", "path": "password", "value": canary}]}},
                {"method": "PUT", "path": "/Users/bulkId:p",
                 "data": {"userName": "pw", "password": canary}},
            ]}),
        )
        .await;
    let o = ops(&r);
    let st: Vec<&str> = o.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["201", "200", "200"], "{}", r.body);
    assert!(!r.body.to_string().contains(canary));
    let all = serde_json::to_string(&app.all_events().await).unwrap();
    assert!(!all.contains(canary));
    assert!(
        all.contains("[REDACTED"),
        "the secret's change is recorded, masked"
    );
}

#[tokio::test]
async fn ten_thousand_users_in_one_request() {
    let app = spawn_app().await;
    let n = 10_000;
    let mut list: Vec<Value> = (0..n)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": format!("bulk.user.{i}@example.com"),
                            "name": {"givenName": "Bulk", "familyName": format!("User {i}")},
                            "emails": [{"value": format!("bulk.user.{i}@example.com"), "type": "work", "primary": true}],
                            "active": true}})
        })
        .collect();
    // The first refers to the last: it runs once the last has.
    list[0]["data"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": format!("bulkId:u{}", n - 1)}});
    let body = json!({"schemas": [BULK], "Operations": list});
    let r = app.post("/scim/v2/Bulk", body).await;
    let o = ops(&r);
    assert_eq!(o.len(), n);
    assert!(
        o.iter().all(|e| e["status"] == "201"),
        "{}",
        o.iter().find(|e| e["status"] != "201").unwrap()
    );
    let users = app.get("/scim/v2/Users?count=1").await;
    assert_eq!(users.body["totalResults"], n);
    let id_of = |e: &Value| {
        e["location"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    let first = app.get(&format!("/scim/v2/Users/{}", id_of(&o[0]))).await;
    assert_eq!(
        first.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]
            ["value"],
        id_of(&o[n - 1])
    );
    // One event per operation, and the Bulk's; each operation's linked to the Bulk's.
    let rid = r.request_id();
    let by_action = |filter: String| {
        let app = &app;
        async move {
            let stats = app
                .get(&format!(
                    "/audit/v1/stats?by=action&filter={}",
                    enc(&filter)
                ))
                .await;
            assert_eq!(stats.status, 200, "{}", stats.body);
            stats.body["groups"].clone()
        }
    };
    assert_eq!(
        by_action(format!("requestId eq \"{rid}\"")).await,
        json!([{"action": "user.create", "count": n}, {"action": "bulk", "count": 1}])
    );
    let f = format!("requestId eq \"{rid}\" and action eq \"bulk\"");
    let r = app
        .get(&format!("/audit/v1/events?filter={}", enc(&f)))
        .await;
    let bulk_id = r.body["Resources"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        by_action(format!("parentId eq \"{bulk_id}\"")).await,
        json!([{"action": "user.create", "count": n}])
    );
}

#[tokio::test]
async fn operations_on_one_resource_keep_the_order_sent() {
    let app = spawn_app().await;
    let id = app.create_user("ordered").await.id();
    // Twenty PATCHes of one user among creates that may run at once: they apply in order.
    let mut list = Vec::new();
    for i in 0..20 {
        list.push(json!({"method": "PATCH", "path": format!("/Users/{id}"),
            "data": {"Operations": [{"op": "replace", "path": "displayName", "value": format!("v{i}")}]}}));
        list.push(
            json!({"method": "POST", "path": "/Users", "bulkId": format!("o{i}"),
                         "data": user(&format!("other{i}"))}),
        );
    }
    // Two creates claiming one userName (differently cased): the first sent gets it.
    list.push(
        json!({"method": "POST", "path": "/Users", "bulkId": "first", "data": user("Same.Name")}),
    );
    list.push(
        json!({"method": "POST", "path": "/Users", "bulkId": "second", "data": user("same.name")}),
    );
    let r = app.post("/scim/v2/Bulk", json!({"Operations": list})).await;
    let o = ops(&r);
    assert!(o[..40]
        .iter()
        .all(|e| e["status"].as_str().unwrap().starts_with('2')));
    assert_eq!(o[40]["status"], "201");
    assert_eq!(o[41]["status"], "409");
    assert_eq!(o[41]["response"]["scimType"], "uniqueness");
    let versions: Vec<&str> = o
        .iter()
        .step_by(2)
        .take(20)
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (2..22).map(|v| format!("W/\"{v}\"")).collect();
    assert_eq!(versions, want);
    let u = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(u.body["displayName"], "v19");
}

#[tokio::test]
async fn a_user_name_given_up_is_free_for_the_operations_after() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(app.create_user(&format!("old{i}")).await.id());
    }
    // Each pair: rename a user (PATCH or PUT), then create one with the name it gave up;
    // the creates must never overtake the renames.
    let mut list = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        list.push(if i % 2 == 0 {
            json!({"method": "PATCH", "path": format!("/Users/{id}"),
                   "data": {"Operations": [{"op": "replace", "path": "userName", "value": format!("new{i}")}]}})
        } else {
            json!({"method": "PUT", "path": format!("/Users/{id}"), "data": user(&format!("new{i}"))})
        });
        list.push(
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                         "data": user(&format!("OLD{i}"))}),
        );
    }
    let r = app.post("/scim/v2/Bulk", json!({"Operations": list})).await;
    let o = ops(&r);
    for pair in o.chunks(2) {
        assert_eq!(pair[0]["status"], "200", "{}", pair[0]);
        assert_eq!(pair[1]["status"], "201", "{}", pair[1]);
    }
}

#[tokio::test]
async fn references_in_a_patch_path_and_oversized_operations() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        max_body_bytes: 2000,
        ..Default::default()
    })
    .await;
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({"Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("member")},
                {"method": "POST", "path": "/Groups", "bulkId": "g",
                 "data": {"displayName": "g", "members": [{"value": "bulkId:u"}]}},
                {"method": "PATCH", "path": "/Groups/bulkId:g",
                 "data": {"Operations": [{"op": "remove", "path": "members[value eq \"bulkId:u\"]"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "big",
                 "data": {"userName": "big", "displayName": "x".repeat(3000)}},
                {"method": "POST", "path": "/Bulk", "bulkId": "inner", "data": {"Operations": []}},
            ]}),
        )
        .await;
    let o = ops(&r);
    let st: Vec<&str> = o.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["201", "201", "200", "413", "400"], "{}", r.body);
    let gid = o[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let g = app.get(&format!("/scim/v2/Groups/{gid}")).await;
    assert!(
        g.body.get("members").is_none(),
        "the member was removed: {}",
        g.body
    );
    let events = events_of(&app, &r.request_id()).await;
    let bulk_events = events.iter().filter(|e| e["action"] == "bulk").count();
    assert_eq!(bulk_events, 1, "only the Bulk itself is a bulk event");
}
