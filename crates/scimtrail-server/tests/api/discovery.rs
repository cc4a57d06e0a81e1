use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn discovery_describes_what_is_implemented() {
    let app = spawn_app().await;
    let spc = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(spc.body["bulk"]["maxOperations"], 10_000);
    assert_eq!(spc.body["bulk"]["maxPayloadSize"], 8 * 1024 * 1024);
    assert_eq!(spc.body["filter"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["sort"]["supported"], true);

    let rts = app.get("/scim/v2/ResourceTypes").await;
    let names: Vec<&str> = rts.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["User", "Group"]);
    let user = app.get("/scim/v2/ResourceTypes/User").await;
    assert_eq!(user.body["endpoint"], "/Users");
    assert_eq!(
        user.body["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );

    let schemas = app.get("/scim/v2/Schemas").await;
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:User"));
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:Group"));
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
    let u = app
        .get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(u.status, 200);
    let attrs = u.body["attributes"].as_array().unwrap();
    let pw = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(pw["returned"], "never");
    assert_eq!(pw["mutability"], "writeOnly");
    let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
    assert_eq!(groups["mutability"], "readOnly");
    app.get("/scim/v2/Schemas/urn:nope")
        .await
        .assert_error(404, None);
    let _: &Value = &u.body;
}

#[tokio::test]
async fn health_needs_no_token_and_leaves_no_event() {
    let app = spawn_app().await;
    for p in ["/healthz", "/readyz"] {
        let r = app.raw(app.client.get(app.url(p))).await;
        assert_eq!(r.status, 200, "{p}");
        assert!(
            r.header("x-request-id").is_some(),
            "{p} carries X-Request-Id"
        );
    }
    assert!(app
        .all_events()
        .await
        .iter()
        .all(|e| e["operation"]["path"] != "/healthz"));
}
