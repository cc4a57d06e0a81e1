//! Custom schemas and resource types (issue #8, item 5): a `Device` type and a User extension
//! loaded from the JSON files in `examples/schemas`, with no code of their own. Every RFC 7643
//! §7 characteristic they declare is held on create, replace, patch and output, and their
//! events are named from the type (`device.create`).

use scimtrail_core::Registry;
use scimtrail_server::ServerConfig;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_with_registry, TestApp};

const DEVICE: &str = "urn:example:scim:schemas:core:1.0:Device";
const BADGE: &str = "urn:example:scim:schemas:extension:badge:1.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn example(name: &str) -> (String, Value) {
    let path = format!(
        "{}/../../examples/schemas/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    (name.to_string(), serde_json::from_str(&text).unwrap())
}

async fn app() -> TestApp {
    // The example with one more rule: a device's hardware vendor never changes either.
    let (name, mut device) = example("device.json");
    let hardware = device[0]["attributes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == "hardware")
        .unwrap();
    hardware["subAttributes"][0]["mutability"] = json!("immutable");
    let reg = Registry::builtin()
        .extend(&[(name, device), example("badge-extension.json")])
        .unwrap();
    spawn_with_registry(
        ServerConfig {
            system_name: "test-system".into(),
            checkpoint_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        reg,
    )
    .await
}

fn device(serial: &str) -> Value {
    json!({
        "schemas": [DEVICE],
        "serialNumber": serial,
        "displayName": format!("laptop {serial}"),
        "status": "ACTIVE",
        "active": true,
        "ports": 4,
        "enrollmentSecret": "canary-enrol-7f3a",
        "inventoryNote": "shelf 3",
        "hardware": {"vendor": "Acme", "model": "T1"},
        "owners": [{"value": "u-1", "display": "Ann"}]
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

#[tokio::test]
async fn discovery_lists_what_the_files_define() {
    let app = app().await;
    let r = app.get("/scim/v2/ResourceTypes").await;
    assert_eq!(r.status, 200);
    let types = r.body["Resources"].as_array().unwrap();
    let d = types
        .iter()
        .find(|t| t["name"] == "Device")
        .expect("Device");
    assert_eq!(d["endpoint"], "/Devices");
    assert_eq!(d["schema"], DEVICE);
    let user = types.iter().find(|t| t["name"] == "User").unwrap();
    let exts: Vec<&str> = user["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema"].as_str().unwrap())
        .collect();
    assert!(exts.contains(&BADGE), "{exts:?}");
    let r = app.get(&format!("/scim/v2/Schemas/{DEVICE}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status = r.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "status")
        .unwrap();
    assert_eq!(
        status["canonicalValues"],
        json!(["ordered", "active", "retired"])
    );
    let r = app.get("/scim/v2/ResourceTypes/Device").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_custom_type_is_a_full_scim_resource_with_its_own_events() {
    let app = app().await;
    let r = app.post("/scim/v2/Devices", device("SN-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.id();
    // Output: canonical spelling, returned never / request honoured, meta of its type.
    assert_eq!(r.body["status"], "active");
    assert!(r.body.get("enrollmentSecret").is_none());
    // returned: request — in the answer to the write that specified it (RFC 7643 §7), and
    // otherwise only when asked for.
    assert_eq!(r.body["inventoryNote"], "shelf 3");
    let r2 = app.get(&format!("/scim/v2/Devices/{}", r.id())).await;
    assert!(r2.body.get("inventoryNote").is_none(), "returned: request");
    assert_eq!(r.body["meta"]["resourceType"], "Device");
    assert!(r.body["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Devices/{id}")));
    assert!(r
        .header("location")
        .unwrap()
        .ends_with(&format!("/Devices/{id}")));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "device.create");
    assert_eq!(e["target"]["type"], "Device");
    assert_eq!(e["target"]["display"], "laptop SN-1");
    assert_eq!(e["operation"]["scim"], "create");

    let r = app
        .get(&format!("/scim/v2/Devices/{id}?attributes=inventoryNote"))
        .await;
    assert_eq!(r.body["inventoryNote"], "shelf 3");
    assert!(r.body.get("displayName").is_none());

    // Filters over the type's own attributes, sub-attributes and values.
    for (filter, hits) in [
        ("serialNumber eq \"SN-1\"", 1),
        ("serialNumber eq \"sn-1\"", 0), // caseExact
        ("hardware.vendor eq \"acme\"", 1),
        ("status eq \"active\" and ports gt 3", 1),
        ("owners[value eq \"u-1\"]", 1),
        ("meta.resourceType eq \"Device\"", 1),
    ] {
        let r = app
            .get(&format!("/scim/v2/Devices?filter={}", enc(filter)))
            .await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(r.body["totalResults"], hits, "{filter}");
    }
    for filter in ["enrollmentSecret pr", "ports eq \"four\"", "active gt true"] {
        let r = app
            .get(&format!("/scim/v2/Devices?filter={}", enc(filter)))
            .await;
        r.assert_error(400, Some("invalidFilter"));
    }

    // PATCH: updates, deactivation, and the immutable serial.
    let p = format!("/scim/v2/Devices/{id}");
    let r = app
        .patch(
            &p,
            patch(json!([{"op": "replace", "path": "displayName", "value": "x"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.get("inventoryNote").is_none(),
        "not specified by this PATCH"
    );
    let r2 = app
        .patch(
            &p,
            patch(json!([{"op": "replace", "path": "inventoryNote", "value": "bin 9"}])),
        )
        .await;
    assert_eq!(r2.body["inventoryNote"], "bin 9", "{}", r2.body);
    assert_eq!(
        app.event_of(&r.request_id()).await["action"],
        "device.update"
    );
    let r = app
        .patch(
            &p,
            patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.event_of(&r.request_id()).await["action"],
        "device.deactivate"
    );
    let r = app
        .patch(
            &p,
            patch(json!([{"op": "replace", "path": "serialNumber", "value": "SN-2"}])),
        )
        .await;
    r.assert_error(400, Some("mutability"));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["outcome"]["scimType"], "mutability");
    assert_eq!(e["action"], "device.update");
    let r = app
        .patch(
            &p,
            patch(json!([{"op": "remove", "path": "hardware.vendor"}])),
        )
        .await;
    r.assert_error(400, Some("mutability"));
    let r = app
        .patch(
            &p,
            patch(json!([{"op": "replace", "path": "status", "value": "lost"}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));

    // PUT: leaving immutable values out keeps them; changing one is refused.
    let r = app
        .put(
            &p,
            json!({"schemas": [DEVICE], "serialNumber": "SN-1", "displayName": "y",
                   "hardware": {"model": "T2"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["hardware"], json!({"vendor": "Acme", "model": "T2"}));
    let r = app
        .put(&p, json!({"schemas": [DEVICE], "serialNumber": "SN-9"}))
        .await;
    r.assert_error(400, Some("mutability"));
    let r = app
        .put(&p, json!({"schemas": [DEVICE], "displayName": "z"}))
        .await;
    r.assert_error(400, Some("invalidValue")); // serialNumber is required
    let r = app.get(&p).await;
    assert_eq!(r.body["serialNumber"], "SN-1");
    assert_eq!(r.body["displayName"], "y", "refused writes changed nothing");

    // Uniqueness (server, caseExact): another SN-1 is refused, sn-1 is another value.
    let r = app.post("/scim/v2/Devices", device("SN-1")).await;
    r.assert_error(409, Some("uniqueness"));
    assert!(r.body["detail"].as_str().unwrap().contains("serialNumber"));
    let r = app.post("/scim/v2/Devices", device("sn-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Delete frees the value; the event is named from the type.
    let r = app.delete(&p).await;
    assert_eq!(r.status, 204);
    let deleted_by = r.request_id();
    assert_eq!(app.event_of(&deleted_by).await["action"], "device.delete");
    let r = app.post("/scim/v2/Devices", device("SN-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // History and restore work on the type as on Users.
    let h = format!("/audit/v1/resources/Devices/{id}/versions");
    let r = app.get(&h).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Bringing the deleted device back would give SN-1 two holders: refused, nothing written.
    let restore = format!("/audit/v1/resources/Devices/{id}/restore");
    let r = app
        .post(&restore, json!({"version": 2, "dryRun": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let conflicts = r.body["plan"]["conflicts"].as_array().expect("a plan");
    assert!(
        conflicts
            .iter()
            .any(|c| c["kind"] == "uniqueValueTaken" && c["path"] == "serialNumber"),
        "{}",
        r.body
    );
    let r = app.post(&restore, json!({"version": 2})).await;
    r.assert_error(409, Some("uniqueness"));
    assert_eq!(r.body["plan"]["conflicts"][0]["kind"], "uniqueValueTaken");
    // Reverting the delete would too: the plan says so, and nothing is written.
    let filter = format!("requestId eq \"{deleted_by}\"");
    for dry in [true, false] {
        let r = app
            .post("/audit/v1/revert", json!({"filter": filter, "dryRun": dry}))
            .await;
        let conflicts = r.body["plan"]["conflicts"].to_string();
        assert!(conflicts.contains("uniqueValueTaken"), "{}", r.body);
        assert_eq!(r.status, if dry { 200 } else { 409 }, "{}", r.body);
    }
    assert_eq!(app.get(&p).await.status, 404);
    assert_eq!(app.get(&p).await.status, 404);
    // No event and no stored byte holds the writeOnly secret.
    for e in app.all_events().await {
        assert!(!e.to_string().contains("canary-enrol-7f3a"), "{e}");
    }
    app.checkpoint_at_least(3).await;
    for text in app.stored_texts() {
        assert!(!text.contains("canary-enrol-7f3a"));
    }
}

#[tokio::test]
async fn a_custom_extension_on_users_holds_global_uniqueness_and_canonical_values() {
    let app = app().await;
    let user = |name: &str, badge: &str, level: &str| json!({"userName": name, BADGE: {"badgeId": badge, "accessLevel": level}});
    let r = app.post("/scim/v2/Users", user("ann", "B-1", "L2")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ann = r.id();
    assert_eq!(r.body[BADGE]["badgeId"], "B-1");
    assert!(r.body["schemas"]
        .as_array()
        .unwrap()
        .contains(&json!(BADGE)));
    let r = app.post("/scim/v2/Users", user("bob", "b-1", "L1")).await;
    r.assert_error(409, Some("uniqueness"));
    let r = app.post("/scim/v2/Users", user("bob", "B-2", "l1")).await;
    r.assert_error(400, Some("invalidValue"));
    let r = app.post("/scim/v2/Users", user("bob", "B-2", "L1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bob = r.id();
    // global: a Device may not take a badge a User holds either... the Device type has no
    // badgeId, so global is across the types that carry the attribute: Users here.
    let r = app
        .patch(
            &format!("/scim/v2/Users/{bob}"),
            patch(json!([{"op": "replace", "path": format!("{BADGE}:badgeId"), "value": "B-1"}])),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Ann gives it up; then Bob can take it.
    let r = app
        .patch(
            &format!("/scim/v2/Users/{ann}"),
            patch(json!([{"op": "remove", "path": format!("{BADGE}:badgeId")}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .patch(
            &format!("/scim/v2/Users/{bob}"),
            patch(json!([{"op": "replace", "path": format!("{BADGE}:badgeId"), "value": "B-1"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let f = format!("{BADGE}:badgeId eq \"b-1\"");
    let r = app.get(&format!("/scim/v2/Users?filter={}", enc(&f))).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], bob);
}

/// Only an endpoint names a type: the type's name is not a path (found by an outside
/// attack: `/Device` was served, and its failures were named `request`).
#[tokio::test]
async fn a_type_is_reached_by_its_endpoint_only() {
    let app = app().await;
    let r = app.post("/scim/v2/Device", device("SN-1")).await;
    r.assert_error(404, None);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "request");
    assert!(e["target"]["type"].is_null(), "{e}");
    let r = app
        .post("/scim/v2/devices", json!({"serialNumber": 5}))
        .await;
    r.assert_error(400, Some("invalidValue"));
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "device.create");
    assert_eq!(e["outcome"]["result"], "failure");
}

#[tokio::test]
async fn bulk_and_search_reach_custom_types() {
    let app = app().await;
    let r = app
        .post(
            "/scim/v2/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Devices", "bulkId": "d1", "data": device("B-1")},
                    {"method": "POST", "path": "/Devices", "bulkId": "d2", "data": device("B-1")},
                    {"method": "PATCH", "path": "/Devices/bulkId:d1",
                     "data": patch(json!([{"op": "replace", "path": "ports", "value": 8}]))}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops[0]["status"], "201");
    assert_eq!(ops[1]["status"], "409", "{}", r.body);
    assert_eq!(ops[2]["status"], "200", "{}", r.body);
    let events = app.all_events().await;
    let bulk = events.iter().find(|e| e["action"] == "bulk").unwrap();
    let children: Vec<&Value> = events
        .iter()
        .filter(|e| e["parentId"] == bulk["id"])
        .collect();
    let actions: Vec<&str> = children
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 3);
    assert!(
        actions.iter().all(|a| a.starts_with("device.")),
        "{actions:?}"
    );
    let r = app
        .post(
            "/scim/v2/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "ports eq 8"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["meta"]["resourceType"], "Device");
}
