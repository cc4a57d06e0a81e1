use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn members_carry_value_display_ref_type_and_users_derive_groups() {
    let app = spawn_app().await;
    let alice = app.create_user("alice").await.id();
    let g = app
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                               "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                   "displayName": "Engineering", "externalId": "g-ext",
                   "members": [{"value": alice, "display": "Alice A."}]}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.id();
    let m = &g.body["members"][0];
    assert_eq!(m["value"], alice);
    assert_eq!(m["display"], "Alice A.");
    assert_eq!(m["type"], "User");
    assert_eq!(m["$ref"], app.url(&format!("/scim/v2/Users/{alice}")));

    let u = app.get(&format!("/scim/v2/Users/{alice}")).await;
    assert_eq!(u.body["groups"][0]["value"], gid);
    assert_eq!(u.body["groups"][0]["display"], "Engineering");
    assert_eq!(
        u.body["groups"][0]["$ref"],
        app.url(&format!("/scim/v2/Groups/{gid}"))
    );

    // A User's groups are read-only: writing them changes nothing.
    let r = app
        .patch(
            &format!("/scim/v2/Users/{alice}"),
            json!({"Operations": [{"op": "add", "path": "groups", "value": [{"value": "x"}]}]}),
        )
        .await;
    r.assert_error(400, Some("mutability"));

    let ex = app
        .get(&format!(
            "/scim/v2/Groups?excludedAttributes=members&filter={}",
            enc("displayName eq \"engineering\"")
        ))
        .await;
    assert_eq!(ex.body["totalResults"], 1, "{}", ex.body);
    assert!(ex.body["Resources"][0].get("members").is_none());
    assert_eq!(ex.body["Resources"][0]["displayName"], "Engineering");
}

#[tokio::test]
async fn membership_patches_from_entra_and_okta() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let c = app.create_user("c").await.id();
    let gid = app.create_group("G", &[&a]).await.id();
    let path = format!("/scim/v2/Groups/{gid}");

    // E6: add with $ref null and no type.
    let r = app
        .patch(&path, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": b}, {"value": c}]}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    assert_eq!(app.get(&path).await.body["members"], r.body["members"]);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "group.member.add");
    assert_eq!(e["changes"].as_array().unwrap().len(), 2);

    // E5: remove with a value list removes only the listed members. Asking for attributes
    // gets the resource back.
    let r = app
        .patch(
            &format!("{path}?excludedAttributes=externalId"),
            json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": b}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&b.as_str()));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "group.member.remove");
    assert_eq!(e["changes"][0]["old"]["value"], b);

    // E5/O7: remove by filter path.
    let r = app
        .patch(
            &path,
            json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{c}\"]")}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&path).await.body["members"], r.body["members"]);

    // O7: replace the full list; O6: rename with the id in the value.
    let r = app
        .patch(
            &format!("{path}?attributes=displayName,members"),
            json!({"Operations": [
            {"op": "replace", "path": "members", "value": [{"value": b}, {"value": c}]},
            {"op": "replace", "value": {"id": gid, "displayName": "G2"}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "G2");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "group.update");

    let ua = app.get(&format!("/scim/v2/Users/{a}")).await;
    assert!(
        ua.body.get("groups").is_none(),
        "a left the group: {}",
        ua.body
    );
    let ub = app.get(&format!("/scim/v2/Users/{b}")).await;
    assert_eq!(ub.body["groups"][0]["display"], "G2");
}

#[tokio::test]
async fn unknown_members_are_skipped_and_reported() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let gid = app.create_group("G", &[]).await.id();
    let r = app
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": a}, {"value": "no-such-user"}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert!(r.header("warning").unwrap().contains("no-such-user"));
    let e = app.event_of(&r.request_id()).await;
    assert!(e["outcome"]["detail"]
        .as_str()
        .unwrap()
        .contains("no-such-user"));
}

#[tokio::test]
async fn deleted_users_leave_their_groups() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let gid = app.create_group("G", &[&a, &b]).await.id();
    assert_eq!(app.delete(&format!("/scim/v2/Users/{a}")).await.status, 204);
    let g = app.get(&format!("/scim/v2/Groups/{gid}")).await;
    let members = g.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["value"], b);
    assert_eq!(
        app.delete(&format!("/scim/v2/Groups/{gid}")).await.status,
        204
    );
    let ub = app.get(&format!("/scim/v2/Users/{b}")).await;
    assert!(ub.body.get("groups").is_none());
}

#[tokio::test]
async fn large_group_patches_answer_204() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        patch_body_max_members: 2,
        ..Default::default()
    })
    .await;
    let ids: Vec<String> = create_users(&app, 4).await;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let gid = app.create_group("Big", &refs[..3]).await.id();
    let path = format!("/scim/v2/Groups/{gid}");
    // Over the limit: member changes and renames answer 204 with the new ETag, no body.
    let add =
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": ids[3]}]}]});
    let r = app.patch(&path, add).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(r.body, serde_json::Value::Null);
    let rename = json!({"Operations": [{"op": "replace", "value": {"displayName": "Bigger"}}]});
    let r = app.patch(&path, rename).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["outcome"]["status"], 204);
    assert_eq!(e["changes"][0]["path"], "displayName");
    // Asking for the resource gets it.
    let remove = json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]});
    let r = app
        .patch(&format!("{path}?excludedAttributes=members"), remove)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Bigger");
    assert!(r.body.get("members").is_none());
    let g = app.get(&path).await;
    assert_eq!(g.body["members"].as_array().unwrap().len(), 3);
    // Back at the limit, a PATCH answers 200 with the group again.
    let remove =
        json!({"Operations": [{"op": "remove", "path": "members", "value": [{"value": ids[1]}]}]});
    let r = app.patch(&path, remove).await;
    assert_eq!(r.status, 204, "3 members before this change: {}", r.body);
    let r = app
        .patch(
            &path,
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Small"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
}

async fn create_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.create_user(&format!("big{i}")).await.id());
    }
    ids
}

#[tokio::test]
async fn whole_schema_paths_and_member_order() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let gid = app.create_group("G", &[&a]).await.id();
    let path = format!("/scim/v2/Groups/{gid}");
    // Members reached through a path naming the whole core schema.
    let r = app
        .patch(&path, json!({"Operations": [{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group",
            "value": {"members": [{"value": b}]}}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.get(&path).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "group.member.add");
    // The same members in another order are no change: no new version.
    let etag = app.get(&path).await.header("etag").unwrap().to_string();
    let mut ids = [a.clone(), b.clone()];
    ids.sort();
    ids.reverse();
    let put = json!({"displayName": "G", "members": [{"value": ids[0]}, {"value": ids[1]}]});
    let r = app.put(&path, put).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("etag"),
        Some(etag.as_str()),
        "reordering members is not a change"
    );
    // If-Match may list several ETags.
    let r = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"Operations": [{"op": "replace", "path": "displayName", "value": "G2"}]})),
            &[("if-match", &format!("W/\"99\", {etag}"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn unknown_member_notes_are_bounded() {
    let app = spawn_app().await;
    let gid = app.create_group("G", &[]).await.id();
    let long = format!("ü{}", "x".repeat(100_000));
    let r = app
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": long}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let w = r.header("warning").expect("a Warning header");
    assert!(w.len() < 500 && w.contains("?xxx"), "{w}");
}
