//! Conditional requests: `If-None-Match` on GET answers 304 while the client's copy is current,
//! a User's groups included; `If-Match` keeps guarding writes.
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn if_none_match_answers_304_until_the_resource_or_its_groups_change() {
    let app = spawn_app().await;
    let user = app.create_user("ada").await;
    let uid = user.id();
    let path = format!("/scim/v2/Users/{uid}");
    let get = |tag: &str| {
        let (app, path, tag) = (&app, path.clone(), tag.to_string());
        async move {
            app.send(Method::GET, &path, None, &[("If-None-Match", &tag)])
                .await
        }
    };
    let first = app.get(&path).await;
    let e1 = first.header("etag").expect("an ETag").to_string();
    assert_eq!(first.body["meta"]["version"], e1.as_str());

    let r = get(&e1).await;
    assert_eq!(r.status, 304, "{}", r.body);
    assert_eq!(r.header("etag"), Some(e1.as_str()));
    assert!(r.body.is_null(), "a 304 has no body: {}", r.body);
    // In a list of tags, strong or weak, and `*`.
    assert_eq!(
        get(&format!("W/\"99\", {}", e1.trim_start_matches("W/")))
            .await
            .status,
        304
    );
    assert_eq!(get("*").await.status, 304);
    assert_eq!(get("W/\"99\"").await.status, 200);
    // The 304 is an event like any read.
    let event = app.event_of(&r.request_id()).await;
    assert_eq!(event["outcome"]["status"], 304, "{event}");

    // Joining a group changes the User's representation but not its version: the ETag moves.
    let group = app.create_group("staff", &[&uid]).await;
    let r = get(&e1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["groups"][0]["value"], group.id().as_str());
    let e2 = r.header("etag").unwrap().to_string();
    assert_ne!(e2, e1);
    assert_eq!(r.body["meta"]["version"], e2.as_str());
    assert_eq!(get(&e2).await.status, 304);
    // A list shows the same version, even without `groups` in the answer.
    let list = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22ada%22&excludedAttributes=groups")
        .await;
    assert_eq!(list.body["Resources"][0]["meta"]["version"], e2.as_str());
    // Renaming the group changes what the User shows, too.
    let gpath = format!("/scim/v2/Groups/{}", group.id());
    let renamed = app
        .patch(
            &gpath,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "displayName", "value": "crew"}]}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let r = get(&e2).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["groups"][0]["display"], "crew");
    let e3 = r.header("etag").unwrap().to_string();

    // `If-Match` with the ETag a GET gave still guards a write; a stale version fails.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "Dr"}]});
    let r = app
        .send(Method::PATCH, &path, Some(&patch), &[("If-Match", &e3)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e4 = r.header("etag").unwrap().to_string();
    assert_eq!(r.body["meta"]["version"], e4.as_str());
    let r = app
        .send(Method::PATCH, &path, Some(&patch), &[("If-Match", &e3)])
        .await;
    r.assert_error(412, None);
    assert_eq!(get(&e4).await.status, 304);
    assert_eq!(get(&e3).await.status, 200);

    // A Group's ETag moves with its members.
    let g = app.get(&gpath).await;
    let ge = g.header("etag").unwrap().to_string();
    let gget = |tag: &str| {
        let (app, gpath, tag) = (&app, gpath.clone(), tag.to_string());
        async move {
            app.send(Method::GET, &gpath, None, &[("If-None-Match", &tag)])
                .await
        }
    };
    assert_eq!(gget(&ge).await.status, 304);
    let other = app.create_user("bob").await;
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "add", "path": "members", "value": [{"value": other.id()}]}]});
    assert_eq!(app.patch(&gpath, add).await.status, 200);
    assert_eq!(gget(&ge).await.status, 200);

    // A resource that is gone is 404, whatever the tag.
    assert_eq!(app.delete(&path).await.status, 204);
    get("*").await.assert_error(404, None);
}
