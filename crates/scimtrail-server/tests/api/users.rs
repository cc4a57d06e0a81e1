use serde_json::{json, Value};

use crate::helpers::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn create_get_and_meta() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/scim/v2/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                   "userName": "Alice@Example.com", "externalId": "ext-1", "password": "Sup3r-Secret!",
                   "name": {"givenName": "Alice"}, "groups": [], "roles": [],
                   ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "m-1"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.id();
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(loc, app.url(&format!("/scim/v2/Users/{id}")));
    assert_eq!(r.body["meta"]["location"], loc);
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert!(r.body["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(
        r.body.get("password").is_none(),
        "password is never returned"
    );
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "42");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/scim+json"));

    let g = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["userName"], "Alice@Example.com");
    assert_eq!(g.body["externalId"], "ext-1");
    assert_eq!(g.body["meta"]["created"], r.body["meta"]["created"]);
    assert!(g.body.get("password").is_none());

    let missing = app.get("/scim/v2/Users/does-not-exist").await;
    missing.assert_error(404, None);
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let app = spawn_app().await;
    app.create_user("bob").await;
    let r = app.post("/scim/v2/Users", json!({"userName": "BOB"})).await;
    r.assert_error(409, Some("uniqueness"));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["outcome"]["result"], "failure");
    assert_eq!(e["outcome"]["scimType"], "uniqueness");
    assert_eq!(e["action"], "user.create");
}

#[tokio::test]
async fn put_replaces_and_ignores_read_only_input() {
    let app = spawn_app().await;
    let u = app.create_user("carol").await;
    let id = u.id();
    let g = app.create_group("Team", &[&id]).await;
    // Okta style: full PUT with id, meta, groups: [].
    let r = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "carol",
                   "name": {"givenName": "Caroline"}, "active": true, "groups": [],
                   "meta": {"resourceType": "User"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Caroline");
    assert!(
        r.body.get("emails").is_none(),
        "PUT replaces the whole resource"
    );
    // Version 2; a User in groups carries their digest after the version.
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with("W/\"2."), "{etag}");
    assert_eq!(r.body["meta"]["version"], etag);
    assert_eq!(
        r.body["groups"][0]["value"],
        g.id(),
        "memberships survive a PUT with groups: []"
    );

    let other = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"id": "someone-else", "userName": "carol"}),
        )
        .await;
    other.assert_error(400, Some("mutability"));
}

#[tokio::test]
async fn patch_as_entra_sends_it() {
    let app = spawn_app().await;
    let id = app.create_user("dave").await.id();
    let r = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "dave@new.example"},
                {"op": "Replace", "path": "name.givenName", "value": "David"},
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Berlin"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "dave@new.example");
    assert_eq!(r.body["name"]["givenName"], "David");
    assert_eq!(r.body[ENTERPRISE]["department"], "R&D");
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["addresses"][0]["locality"], "Berlin");
    assert_eq!(r.body["addresses"][0]["type"], "work");

    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "user.deactivate");
    assert_eq!(e["operation"]["scim"], "patch");
    assert_eq!(e["target"]["versionBefore"], 1);
    assert_eq!(e["target"]["versionAfter"], 2);
    let changes = e["changes"].as_array().unwrap();
    let active = changes
        .iter()
        .find(|c| c["path"] == "active")
        .expect("active change");
    assert_eq!(
        (active["old"].clone(), active["new"].clone()),
        (json!(true), json!(false))
    );
    let given = changes
        .iter()
        .find(|c| c["path"] == "name.givenName")
        .unwrap();
    assert_eq!(
        (given["old"].clone(), given["new"].clone()),
        (json!("Given"), json!("David"))
    );
    assert!(changes
        .iter()
        .any(|c| c["path"] == format!("{ENTERPRISE}:department") && c["op"] == "add"));

    // Okta's no-path reactivation.
    let r = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"Operations": [{"op": "replace", "value": {"active": true}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.event_of(&r.request_id()).await["action"],
        "user.reactivate"
    );

    // Entra's validator: an empty Operations array is a no-op that still answers 200.
    let r = app
        .patch(&format!("/scim/v2/Users/{id}"), json!({"Operations": []}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("etag"),
        Some("W/\"3\""),
        "no-op writes make no version"
    );
}

#[tokio::test]
async fn delete_then_gone() {
    let app = spawn_app().await;
    let id = app.create_user("erin").await.id();
    let d = app.delete(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(d.status, 204);
    let e = app.event_of(&d.request_id()).await;
    assert_eq!(e["action"], "user.delete");
    assert_eq!(e["target"]["versionAfter"], 2);
    assert!(e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "userName" && c["old"] == "erin"));
    app.get(&format!("/scim/v2/Users/{id}"))
        .await
        .assert_error(404, None);
    app.delete(&format!("/scim/v2/Users/{id}"))
        .await
        .assert_error(404, None);
    // The userName is free again.
    app.create_user("erin").await;
}

#[tokio::test]
async fn filters_and_paging() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create_user(&format!("user{i}")).await;
    }
    let r = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("userName eq \"USER3\"")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "user3");
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );

    let none = app
        .get(&format!(
            "/scim/v2/Users?filter={}&startIndex=1&count=100",
            enc("userName eq \"nobody\"")
        ))
        .await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["totalResults"], 0);
    assert_eq!(none.body["Resources"], json!([]));

    let both = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("userName eq \"user2\" and emails.value co \"user2@\"")
        ))
        .await;
    assert_eq!(both.body["totalResults"], 1, "{}", both.body);

    // Stable default order across pages.
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let p = app
            .get(&format!("/scim/v2/Users?startIndex={start}&count=3"))
            .await;
        assert_eq!(p.body["totalResults"], 7);
        assert_eq!(p.body["startIndex"], start);
        for u in p.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("user{i}")).collect();
    assert_eq!(seen, expected);

    let projected = app.get("/scim/v2/Users?attributes=userName&count=1").await;
    let u = &projected.body["Resources"][0];
    assert!(u.get("id").is_some() && u.get("userName").is_some());
    assert!(u.get("emails").is_none() && u.get("name").is_none(), "{u}");

    let excluded = app
        .get("/scim/v2/Users?excludedAttributes=emails&count=1")
        .await;
    assert!(excluded.body["Resources"][0].get("emails").is_none());
    assert!(excluded.body["Resources"][0].get("name").is_some());
}

#[tokio::test]
async fn filter_on_external_id_and_search() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "x1", "externalId": "EXT-9"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let f = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("externalId eq \"EXT-9\"")
        ))
        .await;
    assert_eq!(f.body["totalResults"], 1);
    let f = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("externalId eq \"ext-9\"")
        ))
        .await;
    assert_eq!(f.body["totalResults"], 0, "externalId is case-exact");
    let s = app
        .post(
            "/scim/v2/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"X1\"", "attributes": ["userName"]}),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["totalResults"], 1);
    assert_eq!(
        app.event_of(&s.request_id()).await["operation"]["scim"],
        "search"
    );
}

#[tokio::test]
async fn if_match_is_a_compare_and_swap() {
    let app = spawn_app().await;
    let id = app.create_user("frank").await.id();
    let path = format!("/scim/v2/Users/{id}");
    let body = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "F"}]});
    let ok = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&body),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let stale = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&body),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    stale.assert_error(412, None);
}

#[tokio::test]
async fn concurrent_patches_lose_no_update() {
    let app = std::sync::Arc::new(spawn_app().await);
    let gid = app.create_group("Busy", &[]).await.id();
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.create_user(&format!("member{i}")).await.id());
    }
    let tasks: Vec<_> = users
        .iter()
        .map(|uid| {
            let app = app.clone();
            let (gid, uid) = (gid.clone(), uid.clone());
            tokio::spawn(async move {
                app.patch(
                    &format!("/scim/v2/Groups/{gid}"),
                    json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}]}),
                )
                .await
                .status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let g = app.get(&format!("/scim/v2/Groups/{gid}")).await;
    assert_eq!(
        g.body["members"].as_array().map(Vec::len),
        Some(10),
        "{}",
        g.body
    );
    let _: Value = g.body;
}

#[tokio::test]
async fn root_search_spans_resource_types() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_user(&format!("s{i}")).await;
    }
    app.create_group("sg", &[]).await;
    let all = app
        .post("/scim/v2/.search", json!({"startIndex": 3, "count": 2}))
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["totalResults"], 4);
    let got: Vec<&str> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["User", "Group"]);
    let f = app
        .post(
            "/scim/v2/.search",
            json!({"filter": "displayName eq \"SG\""}),
        )
        .await;
    assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    let f = app
        .post("/scim/v2/.search", json!({"filter": "userName sw \"s\""}))
        .await;
    assert_eq!(f.body["totalResults"], 3, "{}", f.body);
}

#[tokio::test]
async fn put_without_active_is_an_update_not_a_reactivation() {
    let app = spawn_app().await;
    let id = app.create_user("inactive").await.id();
    let path = format!("/scim/v2/Users/{id}");
    let off = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(app.patch(&path, off).await.status, 200);
    let r = app.put(&path, json!({"userName": "inactive"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.event_of(&r.request_id()).await["action"], "user.update");
}

#[tokio::test]
async fn typed_filters_that_fit_are_accepted() {
    let app = spawn_app().await;
    app.create_user("typed").await;
    let r = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("active eq \"true\"")
        ))
        .await;
    r.assert_error(400, Some("invalidFilter"));
    for (f, n) in [
        ("active eq true", 1),
        (
            "active eq true and meta.created gt \"2020-01-01T00:00:00Z\"",
            1,
        ),
        ("meta.lastModified lt \"2020-01-01T00:00:00+02:00\"", 0),
        ("emails[type eq \"work\" and value co \"typed\"]", 1),
        ("name.givenName sw \"Giv\" and externalId eq null", 1),
    ] {
        let r = app.get(&format!("/scim/v2/Users?filter={}", enc(f))).await;
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        assert_eq!(r.body["totalResults"], n, "{f}");
    }
}

/// A `count` beyond the maximum is clamped to it (RFC 7644 §3.4.2.4), even one beyond any
/// integer; one that is not an integer is refused.
#[tokio::test]
async fn count_beyond_any_integer_is_clamped() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_user(&format!("clamp-{i}")).await;
    }
    for q in [
        "count=99999999999999999999999999",
        "count=%2B99999999999999999999999999",
        "count=5000",
    ] {
        let r = app.get(&format!("/scim/v2/Users?{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        assert_eq!(r.body["itemsPerPage"], 3, "{q}: {}", r.body);
    }
    let r = app
        .get("/scim/v2/Users?count=-99999999999999999999999")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(r.body["Resources"].as_array().map_or(0, Vec::len), 0);
    for body in [json!(1e30), json!(18446744073709551615u64)] {
        let r = app
            .post(
                "/scim/v2/Users/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                       "count": body}),
            )
            .await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        assert_eq!(r.body["itemsPerPage"], 3);
    }
    for q in ["count=1.5", "count=ten", "count=1e3", "count=--5"] {
        let r = app.get(&format!("/scim/v2/Users?{q}")).await;
        r.assert_error(400, Some("invalidValue"));
    }
    let r = app
        .get("/audit/v1/events?count=99999999999999999999999")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
