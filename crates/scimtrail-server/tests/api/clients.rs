//! The client contract: one test per row of `shared/SCIM-CLIENTS.md` (what Microsoft
//! Entra ID, Okta, OneLogin and JumpCloud really send), with the payloads, headers and
//! User-Agents those clients use. Timing rows (E10, O9) are tested for their function only.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const AD_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

const ENTRA_UA: &str = "Azure AD SCIM Client";
const OKTA_UA: &str = "Okta SCIM Client 1.0.0";
const ONELOGIN_UA: &str = "OneLogin SCIM";
const JUMPCLOUD_UA: &str = "JumpCloud SCIM Client";

const SCIM_JSON: &str = "application/scim+json";
const PLAIN_JSON: &str = "application/json";

const ENTRA: &str = "Microsoft Entra ID";
const OKTA: &str = "Okta";

/// A request as a given client sends it: its User-Agent and its Content-Type.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    user_agent: &str,
    content_type: &str,
) -> Resp {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(TOKEN)
        .header("user-agent", user_agent);
    if let Some(b) = body {
        req = req.header("content-type", content_type).body(b.to_string());
    }
    app.raw(req).await
}

async fn entra(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    call(app, method, path, body.as_ref(), ENTRA_UA, SCIM_JSON).await
}

async fn okta(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    call(app, method, path, body.as_ref(), OKTA_UA, PLAIN_JSON).await
}

/// A Group PATCH answers 200 with the group as stored afterwards (groups over
/// `patch_body_max_members` answer 204; see `groups::large_group_patches_answer_204`).
async fn patched_group(app: &TestApp, r: &Resp, gid: &str) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("etag").is_some(), "{:?}", r.headers);
    let now = app.get(&groups(gid)).await.body;
    assert_eq!(
        member_ids(&r.body),
        member_ids(&now),
        "the answer is the stored group"
    );
    assert_eq!(r.body["meta"]["version"], now["meta"]["version"]);
    now
}

fn patch_op(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn users(id: &str) -> String {
    format!("/scim/v2/Users/{id}")
}

fn groups(id: &str) -> String {
    format!("/scim/v2/Groups/{id}")
}

fn filter(endpoint: &str, f: &str) -> String {
    format!("/scim/v2/{endpoint}?filter={}", enc(f))
}

/// The event's changes.
fn changes(e: &Value) -> &Vec<Value> {
    e["changes"].as_array().expect("changes is an array")
}

/// The one change of an event at `path`.
fn change_at<'a>(e: &'a Value, path: &str) -> &'a Value {
    let found: Vec<&Value> = changes(e).iter().filter(|c| c["path"] == path).collect();
    assert_eq!(found.len(), 1, "one change at {path}: {}", e["changes"]);
    found[0]
}

fn old_new(c: &Value) -> (Value, Value) {
    (c["old"].clone(), c["new"].clone())
}

/// Member ids of a group body, sorted.
fn member_ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body
        .get("members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| m["value"].as_str().expect("member value").to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Assert a successful event with the given action, by the given client.
fn assert_event(e: &Value, action: &str, client: &str, status: u16) {
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["actor"]["client"], client, "{e}");
    assert_eq!(e["actor"]["kind"], "token", "{e}");
    assert_eq!(e["outcome"]["result"], "success", "{e}");
    assert_eq!(e["outcome"]["status"], status, "{e}");
}

/// An empty ListResponse: 200, totalResults 0, no resources.
fn assert_empty_list(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schemas"][0], LIST_RESPONSE, "{}", r.body);
    assert_eq!(r.body["totalResults"], 0, "{}", r.body);
    assert!(
        r.body.get("Resources").is_none() || r.body["Resources"] == json!([]),
        "{}",
        r.body
    );
}

// ---------------------------------------------------------------------------------------------
// Microsoft Entra ID
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn e1_op_is_case_insensitive() {
    let app = spawn_app().await;
    let id = app.create_user("e1").await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Add", "path": "title", "value": "Engineer"},
            {"op": "Replace", "path": "displayName", "value": "E One"},
            {"op": "Remove", "path": "emails"}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Engineer");
    assert_eq!(r.body["displayName"], "E One");
    assert!(r.body.get("emails").is_none(), "{}", r.body);
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    assert_eq!(e["operation"]["scim"], "patch");
    assert_eq!(changes(&e).len(), 3, "{}", e["changes"]);
    let title = change_at(&e, "title");
    assert_eq!(title["op"], "add");
    assert_eq!(old_new(title), (Value::Null, json!("Engineer")));
    assert_eq!(
        old_new(change_at(&e, "displayName")),
        (Value::Null, json!("E One"))
    );
    let emails = change_at(&e, "emails");
    assert_eq!(emails["op"], "remove");
    assert_eq!(emails["old"][0]["value"], "e1@example.com");
    assert_eq!(emails["new"], Value::Null);

    // Any other casing is the same op.
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "REPLACE", "path": "title", "value": "Lead"}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Lead");
}

#[tokio::test]
async fn e2_string_booleans_are_coerced() {
    let app = spawn_app().await;
    let id = app.create_user("e2").await.id();

    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["active"],
        json!(false),
        "a JSON boolean, not a string"
    );
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.deactivate", ENTRA, 200);
    assert_eq!(
        old_new(change_at(&e, "active")),
        (json!(true), json!(false))
    );

    // Any case.
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "Replace", "path": "active", "value": "TRUE"}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], json!(true));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.reactivate", ENTRA, 200);
    assert_eq!(
        old_new(change_at(&e, "active")),
        (json!(false), json!(true))
    );

    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "Replace", "path": "active", "value": "fAlSe"}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], json!(false));

    // A boolean sub-attribute too.
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].primary", "value": "False"}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"][0]["primary"], json!(false), "{}", r.body);

    let g = app.get(&users(&id)).await;
    assert_eq!(g.body["active"], json!(false));
    assert_eq!(g.body["emails"][0]["primary"], json!(false));
}

#[tokio::test]
async fn e3_value_path_filters_and_urn_paths() {
    let app = spawn_app().await;
    let c = entra(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(
            json!({"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "e3@contoso.com",
            "name": {"givenName": "Old", "familyName": "Name"},
            "emails": [{"type": "work", "value": "old@contoso.com", "primary": true},
                       {"type": "home", "value": "home@example.com"}],
            ENTERPRISE: {"employeeNumber": "100"}}),
        ),
    )
    .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.id();

    // One Replace per attribute, as Entra sends them.
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
            {"op": "Replace", "path": "name.givenName", "value": "New"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "200"}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let emails = r.body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{}", r.body);
    let work = emails.iter().find(|m| m["type"] == "work").unwrap();
    let home = emails.iter().find(|m| m["type"] == "home").unwrap();
    assert_eq!(work["value"], "new@contoso.com");
    assert_eq!(work["primary"], true, "other sub-attributes are kept");
    assert_eq!(home["value"], "home@example.com", "only the work email");
    assert_eq!(r.body["name"]["givenName"], "New");
    assert_eq!(r.body["name"]["familyName"], "Name");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "200");

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    assert_eq!(
        old_new(change_at(&e, "name.givenName")),
        (json!("Old"), json!("New"))
    );
    assert_eq!(
        old_new(change_at(&e, &format!("{ENTERPRISE}:employeeNumber"))),
        (json!("100"), json!("200"))
    );
    let email_change = changes(&e)
        .iter()
        .find(|c| c["path"].as_str().unwrap().starts_with("emails"))
        .unwrap_or_else(|| panic!("an emails change: {}", e["changes"]));
    assert!(email_change["old"].to_string().contains("old@contoso.com"));
    assert!(email_change["new"].to_string().contains("new@contoso.com"));
    assert!(!email_change["new"].to_string().contains("old@contoso.com"));
    assert_eq!(changes(&e).len(), 3, "{}", e["changes"]);
}

#[tokio::test]
async fn e4_no_path_value_keys_are_paths() {
    let app = spawn_app().await;
    let id = app.create_user("e4").await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([{"op": "replace", "value": {
            "name.givenName": "Xavier",
            format!("{ENTERPRISE}:department"): "Sales"
        }}]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Xavier");
    assert_eq!(
        r.body["name"]["familyName"], "Family",
        "a dotted key replaces the sub-attribute only"
    );
    assert_eq!(r.body[ENTERPRISE]["department"], "Sales");
    assert!(r.body.get("name.givenName").is_none());

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    assert_eq!(changes(&e).len(), 2, "{}", e["changes"]);
    assert_eq!(
        old_new(change_at(&e, "name.givenName")),
        (json!("Given"), json!("Xavier"))
    );
    let dept = change_at(&e, &format!("{ENTERPRISE}:department"));
    assert_eq!(dept["op"], "add");
    assert_eq!(old_new(dept), (Value::Null, json!("Sales")));
}

#[tokio::test]
async fn e5_remove_member_by_value_list_and_by_filter() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let c = app.create_user("c").await.id();
    let gid = app.create_group("E5", &[&a, &b, &c]).await.id();

    let r = entra(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "Remove", "path": "members", "value": [{"value": b}]}]),
        )),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(
        member_ids(&g),
        sorted(&[&a, &c]),
        "only the listed member goes"
    );
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.remove", ENTRA, 200);
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    assert_eq!(e["changes"][0]["op"], "remove");
    assert_eq!(e["changes"][0]["old"]["value"], b);
    assert_eq!(e["changes"][0]["new"], Value::Null);

    let r = entra(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "Remove", "path": format!("members[value eq \"{c}\"]")}]),
        )),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&a]));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.remove", ENTRA, 200);
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    assert_eq!(e["changes"][0]["old"]["value"], c);

    let g = app.get(&groups(&gid)).await;
    assert_eq!(member_ids(&g.body), sorted(&[&a]));
    let ub = app.get(&users(&b)).await;
    assert!(ub.body.get("groups").is_none(), "{}", ub.body);
}

#[tokio::test]
async fn e6_add_member_with_null_ref_and_no_type() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let gid = app.create_group("E6", &[&a]).await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": b}]}]),
        )),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&a, &b]));
    let added = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["value"] == b.as_str())
        .unwrap();
    assert_eq!(added["type"], "User", "{added}");
    assert_eq!(added["$ref"], app.url(&users(&b)), "{added}");

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.add", ENTRA, 200);
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    let ch = &e["changes"][0];
    assert_eq!(ch["op"], "add");
    assert_eq!(ch["path"], "members");
    assert_eq!(ch["old"], Value::Null);
    assert_eq!(ch["new"]["value"], b);

    let ub = app.get(&users(&b)).await;
    assert_eq!(ub.body["groups"][0]["value"], gid);
}

#[tokio::test]
async fn e7_matching_by_user_name_and_external_id() {
    let app = spawn_app().await;
    let c = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "jane@contoso.com", "externalId": "0a1b2c3d-entra"}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.id();
    app.create_user("other@contoso.com").await;

    for f in [
        "userName eq \"jane@contoso.com\"",
        "externalId eq \"0a1b2c3d-entra\"",
        "userName eq \"jane@contoso.com\" and externalId eq \"0a1b2c3d-entra\"",
    ] {
        let r = entra(&app, Method::GET, &filter("Users", f), None).await;
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        assert_eq!(r.body["schemas"][0], LIST_RESPONSE);
        assert_eq!(r.body["totalResults"], 1, "{f}: {}", r.body);
        assert_eq!(r.body["Resources"][0]["id"], id, "{f}");
        let e = app.event_of(&r.request_id()).await;
        assert_event(&e, "resource.list", ENTRA, 200);
        assert_eq!(e["operation"]["scim"], "list");
    }

    for f in [
        "userName eq \"nobody@contoso.com\"",
        "externalId eq \"no-such-external-id\"",
        "userName eq \"jane@contoso.com\" and externalId eq \"someone-else\"",
    ] {
        let r = entra(&app, Method::GET, &filter("Users", f), None).await;
        assert_empty_list(&r);
    }
}

#[tokio::test]
async fn e8_groups_filter_with_members_excluded() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let gid = app.create_group("Sales Team", &[&a]).await.id();
    app.create_group("Other Team", &[&a]).await;

    let r = entra(
        &app,
        Method::GET,
        &format!(
            "/scim/v2/Groups?excludedAttributes=members&filter={}",
            enc("displayName eq \"Sales Team\"")
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let g = &r.body["Resources"][0];
    assert_eq!(g["id"], gid);
    assert_eq!(g["displayName"], "Sales Team");
    assert!(g.get("members").is_none(), "{g}");
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "resource.list", ENTRA, 200);

    let one = entra(
        &app,
        Method::GET,
        &format!("{}?excludedAttributes=members", groups(&gid)),
        None,
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert!(one.body.get("members").is_none(), "{}", one.body);
    assert_eq!(one.body["displayName"], "Sales Team");

    // Excluding members for the read does not lose them.
    let full = app.get(&groups(&gid)).await;
    assert_eq!(member_ids(&full.body), sorted(&[&a]));
}

#[tokio::test]
async fn e9_soft_delete_keeps_user_readable_and_filterable() {
    let app = spawn_app().await;
    let id = app.create_user("e9@contoso.com").await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.deactivate", ENTRA, 200);

    let g = entra(&app, Method::GET, &users(&id), None).await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["active"], json!(false));
    assert_eq!(g.body["userName"], "e9@contoso.com");

    let f = entra(
        &app,
        Method::GET,
        &filter("Users", "userName eq \"e9@contoso.com\""),
        None,
    )
    .await;
    assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    assert_eq!(f.body["Resources"][0]["active"], json!(false));
    let f = entra(&app, Method::GET, &filter("Users", "active eq false"), None).await;
    assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    assert_eq!(f.body["Resources"][0]["id"], id);

    // The hard delete, much later.
    let d = entra(&app, Method::DELETE, &users(&id), None).await;
    assert_eq!(d.status, 204, "{}", d.body);
    let e = app.event_of(&d.request_id()).await;
    assert_event(&e, "user.delete", ENTRA, 204);
    assert_eq!(e["target"]["id"], id);
    assert!(changes(&e)
        .iter()
        .any(|c| c["path"] == "active" && c["old"] == false && c["new"].is_null()));
    app.get(&users(&id)).await.assert_error(404, None);
}

#[tokio::test]
async fn e10_test_connection_with_random_user_name() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_user(&format!("existing{i}")).await;
    }
    let random = uuid::Uuid::new_v4().to_string();
    let r = entra(
        &app,
        Method::GET,
        &filter("Users", &format!("userName eq \"{random}\"")),
        None,
    )
    .await;
    assert_empty_list(&r);
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "resource.list", ENTRA, 200);
}

#[tokio::test]
async fn e11_manager_as_bare_id_string() {
    let app = spawn_app().await;
    let boss = app.create_user("boss").await.id();
    let id = app.create_user("worker").await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss, "{}", r.body);
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    let m = change_at(&e, &format!("{ENTERPRISE}:manager.value"));
    assert_eq!(old_new(m), (Value::Null, json!(boss)));

    // Replace with another bare id.
    let boss2 = app.create_user("boss2").await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": boss2}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss2);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(
        old_new(change_at(&e, &format!("{ENTERPRISE}:manager.value"))),
        (json!(boss), json!(boss2))
    );
}

#[tokio::test]
async fn e12_add_on_missing_work_address_creates_it() {
    let app = spawn_app().await;
    let c = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "e12", "addresses": [{"type": "home", "locality": "Hamburg"}]}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.id();
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Berlin"}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let addrs = r.body["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2, "{}", r.body);
    let work = addrs.iter().find(|a| a["type"] == "work").unwrap();
    assert_eq!(work["locality"], "Berlin");
    let home = addrs.iter().find(|a| a["type"] == "home").unwrap();
    assert_eq!(home["locality"], "Hamburg");

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    let ch = changes(&e)
        .iter()
        .find(|c| c["path"].as_str().unwrap().starts_with("addresses"))
        .unwrap_or_else(|| panic!("an addresses change: {}", e["changes"]));
    assert!(ch["new"].to_string().contains("Berlin"), "{ch}");
    assert!(!ch["old"].to_string().contains("Berlin"), "{ch}");

    // A second add updates the same work address instead of adding another.
    let r = entra(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(json!([
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Munich"}
        ]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let addrs = r.body["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2, "{}", r.body);
    let work = addrs.iter().find(|a| a["type"] == "work").unwrap();
    assert_eq!(work["locality"], "Munich");
}

#[tokio::test]
async fn e13_unknown_schema_uris_and_read_only_input_are_ignored() {
    let app = spawn_app().await;
    // A user create as Entra sends it: meta and roles: [].
    let u = entra(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "e13-ext", "userName": "e13@contoso.com", "active": true,
            "displayName": "E Thirteen",
            "emails": [{"primary": true, "type": "work", "value": "e13@contoso.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "E Thirteen", "familyName": "Thirteen", "givenName": "E"},
            "roles": [],
            ENTERPRISE: {"department": "Ops"}
        })),
    )
    .await;
    assert_eq!(u.status, 201, "{}", u.body);
    let uid = u.id();
    assert_eq!(u.body["userName"], "e13@contoso.com");
    assert_eq!(u.body["meta"]["resourceType"], "User");
    assert_eq!(u.body["meta"]["location"], app.url(&users(&uid)));
    assert!(u.body["meta"]["created"].is_string(), "{}", u.body);
    let e = app.event_of(&u.request_id()).await;
    assert_event(&e, "user.create", ENTRA, 201);
    assert_eq!(e["target"]["id"], uid);
    assert!(
        !changes(&e).iter().any(|c| c["path"] == "meta"),
        "{}",
        e["changes"]
    );

    // A group create with Microsoft's extra schema URI.
    let g = entra(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        Some(json!({
            "schemas": [GROUP_SCHEMA, AD_GROUP_SCHEMA],
            "externalId": "g-e13", "displayName": "E13 Group", "members": [],
            "meta": {"resourceType": "Group"}
        })),
    )
    .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.id();
    assert_eq!(g.body["displayName"], "E13 Group");
    assert_eq!(
        g.body["schemas"],
        json!([GROUP_SCHEMA]),
        "the unknown schema URI is ignored, not stored"
    );
    assert_eq!(g.body["meta"]["resourceType"], "Group");
    let e = app.event_of(&g.request_id()).await;
    assert_event(&e, "group.create", ENTRA, 201);
    let got = app.get(&groups(&gid)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["externalId"], "g-e13");

    // And in a PUT: read-only meta with a server-looking value does not change the resource.
    let p = entra(
        &app,
        Method::PUT,
        &groups(&gid),
        Some(json!({
            "schemas": [GROUP_SCHEMA, AD_GROUP_SCHEMA], "id": gid,
            "displayName": "E13 Group renamed",
            "meta": {"resourceType": "Group", "created": "2001-01-01T00:00:00Z"}
        })),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["displayName"], "E13 Group renamed");
    assert_eq!(p.body["meta"]["created"], g.body["meta"]["created"]);
}

#[tokio::test]
async fn e14_both_content_types_and_bearer_token() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (i, ct) in [
        SCIM_JSON,
        "application/scim+json; charset=utf-8",
        PLAIN_JSON,
    ]
    .into_iter()
    .enumerate()
    {
        let c = call(
            &app,
            Method::POST,
            "/scim/v2/Users",
            Some(
                &json!({"schemas": [USER_SCHEMA], "userName": format!("e14-{i}"), "active": true}),
            ),
            ENTRA_UA,
            ct,
        )
        .await;
        assert_eq!(c.status, 201, "{ct}: {}", c.body);
        assert!(
            c.header("content-type").unwrap().starts_with(SCIM_JSON),
            "{ct}"
        );
        let e = app.event_of(&c.request_id()).await;
        assert_event(&e, "user.create", ENTRA, 201);
        assert_eq!(e["actor"]["name"], "bootstrap");
        assert_eq!(e["request"]["headers"]["authorization"], "[REDACTED]");
        let id = c.id();

        let p = call(
            &app,
            Method::PATCH,
            &users(&id),
            Some(&patch_op(
                json!([{"op": "Replace", "path": "displayName", "value": ct}]),
            )),
            ENTRA_UA,
            ct,
        )
        .await;
        assert_eq!(p.status, 200, "{ct}: {}", p.body);
        assert_eq!(p.body["displayName"], ct);
        ids.push(id);
    }
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn e15_empty_operations_is_a_noop() {
    let app = spawn_app().await;
    let u = app.create_user("e15").await;
    let id = u.id();
    let r = entra(&app, Method::PATCH, &users(&id), Some(patch_op(json!([])))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("etag"), Some("W/\"1\""), "no new version");
    assert_eq!(r.body["userName"], "e15");
    assert_eq!(
        r.body["meta"]["lastModified"],
        u.body["meta"]["lastModified"]
    );
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", ENTRA, 200);
    assert_eq!(e["changes"], json!([]));
    assert_eq!(e["target"]["versionBefore"], 1);
    assert_eq!(e["target"]["versionAfter"], 1);

    let a = app.create_user("member").await.id();
    let gid = app.create_group("E15", &[&a]).await.id();
    let r = entra(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(json!([]))),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(member_ids(&g), sorted(&[&a]));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["changes"], json!([]));
    assert_eq!(e["outcome"]["result"], "success");
}

// ---------------------------------------------------------------------------------------------
// Okta
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn o1_filter_with_paging_params_when_absent() {
    let app = spawn_app().await;
    app.create_user("someone.else@okta.example").await;
    let path = format!(
        "/scim/v2/Users?filter={}&startIndex=1&count=100",
        enc("userName eq \"new.hire@okta.example\"")
    );
    let r = okta(&app, Method::GET, &path, None).await;
    assert_empty_list(&r);
    assert_eq!(r.body["startIndex"], 1, "{}", r.body);
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "resource.list", OKTA, 200);

    app.create_user("new.hire@okta.example").await;
    let r = okta(&app, Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["userName"], "new.hire@okta.example");
}

#[tokio::test]
async fn o2_create_with_password_groups_and_external_id() {
    let app = spawn_app().await;
    let canary = "0kta-Passw0rd-canary-7731";
    let body = json!({
        "schemas": [USER_SCHEMA], "userName": "isaac.brock@okta.example",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": true, "value": "isaac.brock@okta.example", "type": "work"}],
        "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": canary, "active": true
    });
    let r = okta(&app, Method::POST, "/scim/v2/Users", Some(body.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    assert!(!r.body.to_string().contains(canary));
    assert_eq!(r.body["externalId"], "00ujl29u0le5T6Aj10h7");
    let id = r.id();
    let g = app.get(&users(&id)).await;
    assert!(!g.body.to_string().contains(canary));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.create", OKTA, 201);
    assert_eq!(e["request"]["body"]["password"], "[REDACTED]");
    let pw = change_at(&e, "password");
    assert_eq!(pw["new"], "[REDACTED]");

    // Same userName in another case: 409 uniqueness, and still no password anywhere.
    let mut dup = body;
    dup["userName"] = json!("Isaac.Brock@OKTA.example");
    dup["externalId"] = json!("00ujl29u0le5T6Aj10h8");
    let d = okta(&app, Method::POST, "/scim/v2/Users", Some(dup)).await;
    d.assert_error(409, Some("uniqueness"));
    assert!(!d.body.to_string().contains(canary));
    let e = app.event_of(&d.request_id()).await;
    assert_eq!(e["action"], "user.create");
    assert_eq!(e["actor"]["client"], OKTA);
    assert_eq!(e["outcome"]["result"], "failure");
    assert_eq!(e["outcome"]["status"], 409);
    assert_eq!(e["outcome"]["scimType"], "uniqueness");

    for ev in app.all_events().await {
        assert!(!ev.to_string().contains(canary), "password leaked: {ev}");
    }
}

#[tokio::test]
async fn o3_full_put_ignores_read_only_groups_and_meta() {
    let app = spawn_app().await;
    let id = app.create_user("o3@okta.example").await.id();
    let g = app.create_group("O3 Team", &[&id]).await;
    let gid = g.id();
    let r = okta(
        &app,
        Method::PUT,
        &users(&id),
        Some(json!({
            "schemas": [USER_SCHEMA], "id": id, "userName": "o3@okta.example",
            "name": {"givenName": "Olga", "familyName": "Three"},
            "emails": [{"primary": true, "value": "o3@okta.example", "type": "work"}],
            "active": true, "groups": [],
            "meta": {"resourceType": "User", "created": "2001-01-01T00:00:00Z"}
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Olga");
    assert_eq!(r.body["groups"][0]["value"], gid, "{}", r.body);
    assert_ne!(r.body["meta"]["created"], "2001-01-01T00:00:00Z");

    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.update", OKTA, 200);
    assert_eq!(e["operation"]["scim"], "replace");
    assert_eq!(
        old_new(change_at(&e, "name.givenName")),
        (json!("Given"), json!("Olga"))
    );
    assert!(
        !changes(&e)
            .iter()
            .any(|c| c["path"].as_str().unwrap().starts_with("groups")
                || c["path"].as_str().unwrap().starts_with("meta")),
        "{}",
        e["changes"]
    );

    let group = app.get(&groups(&gid)).await;
    assert_eq!(member_ids(&group.body), sorted(&[&id]));
    assert_eq!(
        group.header("etag"),
        g.header("etag"),
        "the group was not touched"
    );
    let u = app.get(&users(&id)).await;
    assert_eq!(u.body["groups"][0]["value"], gid);
}

#[tokio::test]
async fn o4_no_path_replace_active() {
    let app = spawn_app().await;
    let id = app.create_user("o4@okta.example").await.id();
    let r = okta(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "replace", "value": {"active": false}}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], json!(false));
    assert_eq!(
        r.body["name"]["givenName"], "Given",
        "nothing else replaced"
    );
    assert_eq!(r.body["emails"][0]["value"], "o4@okta.example@example.com");
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.deactivate", OKTA, 200);
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    assert_eq!(
        old_new(change_at(&e, "active")),
        (json!(true), json!(false))
    );

    let r = okta(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "replace", "value": {"active": true}}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], json!(true));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "user.reactivate", OKTA, 200);
    assert_eq!(
        old_new(change_at(&e, "active")),
        (json!(false), json!(true))
    );
}

#[tokio::test]
async fn o5_deactivated_users_stay_gettable() {
    let app = spawn_app().await;
    let id = app.create_user("o5@okta.example").await.id();
    let gid = app.create_group("O5", &[&id]).await.id();
    let r = okta(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "replace", "value": {"active": false}}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let g = okta(&app, Method::GET, &users(&id), None).await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["active"], json!(false));
    assert_eq!(g.body["groups"][0]["value"], gid, "memberships are kept");
    let e = app.event_of(&g.request_id()).await;
    assert_event(&e, "resource.read", OKTA, 200);

    let f = okta(
        &app,
        Method::GET,
        &format!(
            "/scim/v2/Users?filter={}&startIndex=1&count=100",
            enc("userName eq \"o5@okta.example\"")
        ),
        None,
    )
    .await;
    assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    assert_eq!(f.body["Resources"][0]["active"], json!(false));
    let all = okta(&app, Method::GET, "/scim/v2/Users", None).await;
    assert_eq!(all.body["totalResults"], 1, "{}", all.body);

    // Reactivation brings the same resource back.
    let r = okta(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "replace", "value": {"active": true}}]),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.id(), id);
}

#[tokio::test]
async fn o6_group_rename_with_id_in_value() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let gid = app.create_group("Before", &[&a]).await.id();
    let r = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "replace", "value": {"id": gid, "displayName": "After"}}]),
        )),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(g["displayName"], "After");
    assert_eq!(g["id"], gid);
    assert_eq!(member_ids(&g), sorted(&[&a]), "members untouched");
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.update", OKTA, 200);
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    assert_eq!(
        old_new(change_at(&e, "displayName")),
        (json!("Before"), json!("After"))
    );

    // Okta repeats the rename on every membership change: same name, no new version.
    let again = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "replace", "value": {"id": gid, "displayName": "After"}}]),
        )),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("etag"), r.header("etag"));

    // An id that is not this group's is a mutability error.
    let wrong = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(
            json!([{"op": "replace", "value": {"id": "someone-else", "displayName": "X"}}]),
        )),
    )
    .await;
    wrong.assert_error(400, Some("mutability"));
    assert_eq!(app.get(&groups(&gid)).await.body["displayName"], "After");
}

#[tokio::test]
async fn o7_membership_three_ways() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let c = app.create_user("c").await.id();
    let gid = app.create_group("O7", &[&a]).await.id();

    // 1. remove by filter + add with {value, display}.
    let r = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(json!([
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
            {"op": "add", "path": "members", "value": [{"value": b, "display": "b@okta.example"}]}
        ]))),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&b]));
    assert_eq!(g["members"][0]["display"], "b@okta.example");
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.update", OKTA, 200);
    assert_eq!(changes(&e).len(), 2, "{}", e["changes"]);
    assert!(changes(&e)
        .iter()
        .any(|ch| ch["op"] == "remove" && ch["old"]["value"] == a));
    assert!(changes(&e)
        .iter()
        .any(|ch| ch["op"] == "add" && ch["new"]["value"] == b));

    // 2. replace members with the full list.
    let r = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(json!([
            {"op": "replace", "path": "members", "value": [{"value": a}, {"value": c}]}
        ]))),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&a, &c]));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.update", OKTA, 200);
    assert_eq!(changes(&e).len(), 3, "{}", e["changes"]);
    assert!(changes(&e)
        .iter()
        .any(|ch| ch["op"] == "remove" && ch["old"]["value"] == b));
    for added in [&a, &c] {
        assert!(changes(&e)
            .iter()
            .any(|ch| ch["op"] == "add" && ch["new"]["value"] == added.as_str()));
    }

    // 3. one unknown member id does not reject the push, and is named.
    let ghost = "00u-ghost-not-here";
    let r = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(json!([
            {"op": "add", "path": "members", "value": [{"value": b, "display": "b"}, {"value": ghost}]}
        ]))),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&a, &b, &c]));
    assert!(
        r.header("warning").is_some_and(|w| w.contains(ghost)),
        "{:?}",
        r.headers
    );
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.add", OKTA, 200);
    assert!(
        e["outcome"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(ghost)),
        "{e}"
    );
    assert_eq!(changes(&e).len(), 1, "{}", e["changes"]);
    assert_eq!(e["changes"][0]["new"]["value"], b);

    // The same in a full-list replace.
    let r = okta(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(patch_op(json!([
            {"op": "replace", "path": "members", "value": [{"value": c}, {"value": ghost}]}
        ]))),
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&c]));
    assert!(r.header("warning").is_some_and(|w| w.contains(ghost)));
    let e = app.event_of(&r.request_id()).await;
    assert!(e["outcome"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains(ghost)));
    assert!(!member_ids(&app.get(&groups(&gid)).await.body).contains(&ghost.to_string()));
}

#[tokio::test]
async fn o8_paging_with_count_100_is_stable() {
    let app = spawn_app().await;
    let n = 230;
    let mut created = Vec::new();
    for i in 0..n {
        let r = app
            .post(
                "/scim/v2/Users",
                json!({"userName": format!("page-user-{i:03}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        created.push(r.id());
    }
    let page = |start: usize| {
        let app = &app;
        async move {
            let r = okta(
                app,
                Method::GET,
                &format!("/scim/v2/Users?startIndex={start}&count=100"),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r
        }
    };
    let mut seen = Vec::new();
    for (start, expected) in [(1, 100), (101, 100), (201, 30)] {
        let r = page(start).await;
        for key in ["totalResults", "startIndex", "itemsPerPage"] {
            assert!(
                r.body[key].is_u64(),
                "{key} is a JSON number: {}",
                r.body[key]
            );
        }
        assert_eq!(r.body["totalResults"], n);
        assert_eq!(r.body["startIndex"], start);
        assert_eq!(r.body["itemsPerPage"], expected);
        let items = r.body["Resources"].as_array().unwrap();
        assert_eq!(items.len(), expected);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_string()));
    }
    let past = page(301).await;
    assert_eq!(past.body["totalResults"], n);
    assert!(
        past.body.get("Resources").is_none() || past.body["Resources"] == json!([]),
        "{}",
        past.body
    );

    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), n, "every user exactly once across pages");
    let mut all = created.clone();
    all.sort();
    assert_eq!(unique, all);

    // Asking again gives the same order.
    let mut again = Vec::new();
    for start in [1, 101, 201] {
        let r = page(start).await;
        again.extend(
            r.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(again, seen, "stable default order");
}

#[tokio::test]
async fn o9_application_json_and_case_insensitive_user_name() {
    let app = spawn_app().await;
    let c = call(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(&json!({"schemas": [USER_SCHEMA], "userName": "Mixed.Case@Okta.example", "active": true})),
        OKTA_UA,
        PLAIN_JSON,
    )
    .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.id();
    let e = app.event_of(&c.request_id()).await;
    assert_event(&e, "user.create", OKTA, 201);

    let p = okta(
        &app,
        Method::PATCH,
        &users(&id),
        Some(patch_op(
            json!([{"op": "replace", "value": {"displayName": "Mixed"}}]),
        )),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["displayName"], "Mixed");
    assert_eq!(
        p.body["userName"], "Mixed.Case@Okta.example",
        "values keep their case"
    );
    let put = okta(
        &app,
        Method::PUT,
        &users(&id),
        Some(
            json!({"schemas": [USER_SCHEMA], "id": id, "userName": "Mixed.Case@Okta.example",
                    "displayName": "Mixed Put", "active": true}),
        ),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);

    for name in ["mixed.case@okta.example", "MIXED.CASE@OKTA.EXAMPLE"] {
        let f = okta(
            &app,
            Method::GET,
            &format!(
                "/scim/v2/Users?filter={}&startIndex=1&count=100",
                enc(&format!("userName eq \"{name}\""))
            ),
            None,
        )
        .await;
        assert_eq!(f.body["totalResults"], 1, "{name}: {}", f.body);
        assert_eq!(
            f.body["Resources"][0]["userName"],
            "Mixed.Case@Okta.example"
        );
    }
    let dup = okta(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(json!({"userName": "mixed.case@okta.example"})),
    )
    .await;
    dup.assert_error(409, Some("uniqueness"));

    // GET /Groups answers (its speed is not asserted here).
    let g = okta(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Okta Group", "members": [{"value": id}]})),
    )
    .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let list = okta(
        &app,
        Method::GET,
        "/scim/v2/Groups?startIndex=1&count=100",
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["totalResults"], 1);
    assert_eq!(list.body["Resources"][0]["displayName"], "Okta Group");
}

// ---------------------------------------------------------------------------------------------
// Others
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn onelogin_lowercase_op_and_group_patch() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    let gid = app.create_group("OneLogin", &[&a]).await.id();
    let r = call(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(&patch_op(json!([
            {"op": "add", "path": "members", "value": [{"value": b}]}
        ]))),
        ONELOGIN_UA,
        SCIM_JSON,
    )
    .await;
    assert_ne!(r.status, 405, "PATCH on /Groups is not a 405");
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&a, &b]));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.add", "OneLogin", 200);

    let r = call(
        &app,
        Method::PATCH,
        &groups(&gid),
        Some(&patch_op(json!([
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")}
        ]))),
        ONELOGIN_UA,
        SCIM_JSON,
    )
    .await;
    let g = patched_group(&app, &r, &gid).await;
    assert_eq!(member_ids(&g), sorted(&[&b]));
    let e = app.event_of(&r.request_id()).await;
    assert_event(&e, "group.member.remove", "OneLogin", 200);
    assert_eq!(e["changes"][0]["old"]["value"], a);

    let r = call(
        &app,
        Method::PATCH,
        &users(&a),
        Some(&patch_op(
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )),
        ONELOGIN_UA,
        SCIM_JSON,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "x");
}

#[tokio::test]
async fn jumpcloud_test_connection_and_adopt_group_by_name() {
    let app = spawn_app().await;
    let jc = |method: Method, path: String, body: Option<Value>| {
        let app = &app;
        async move { call(app, method, &path, body.as_ref(), JUMPCLOUD_UA, PLAIN_JSON).await }
    };

    // Test connection: create and delete a test user and a test group.
    let u = jc(
        Method::POST,
        "/scim/v2/Users".into(),
        Some(json!({"schemas": [USER_SCHEMA], "userName": "jumpcloud-test-user@example.com"})),
    )
    .await;
    assert_eq!(u.status, 201, "{}", u.body);
    let g = jc(
        Method::POST,
        "/scim/v2/Groups".into(),
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "jumpcloud-test-group"})),
    )
    .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let (uid, gid) = (u.id(), g.id());
    let du = jc(Method::DELETE, users(&uid), None).await;
    assert_eq!(du.status, 204, "{}", du.body);
    let dg = jc(Method::DELETE, groups(&gid), None).await;
    assert_eq!(dg.status, 204, "{}", dg.body);
    for (r, action, status) in [
        (&u, "user.create", 201),
        (&g, "group.create", 201),
        (&du, "user.delete", 204),
        (&dg, "group.delete", 204),
    ] {
        let e = app.event_of(&r.request_id()).await;
        assert_event(&e, action, "JumpCloud", status);
    }
    app.get(&users(&uid)).await.assert_error(404, None);
    app.get(&groups(&gid)).await.assert_error(404, None);
    // The test names are free again for the next test connection.
    let again = jc(
        Method::POST,
        "/scim/v2/Users".into(),
        Some(json!({"userName": "jumpcloud-test-user@example.com"})),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.body);

    // Adopting an existing group by name: find it, then push membership to it.
    let member = app.create_user("member").await.id();
    let existing = app.create_group("Engineering", &[]).await.id();
    let f = jc(
        Method::GET,
        filter("Groups", "displayName eq \"Engineering\""),
        None,
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    assert_eq!(f.body["Resources"][0]["id"], existing);
    let p = jc(
        Method::PATCH,
        groups(&existing),
        Some(patch_op(
            json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
        )),
    )
    .await;
    let g = patched_group(&app, &p, &existing).await;
    assert_eq!(member_ids(&g), sorted(&[&member]));
    let e = app.event_of(&p.request_id()).await;
    assert_event(&e, "group.member.add", "JumpCloud", 200);
    assert_eq!(e["target"]["id"], existing);
}
