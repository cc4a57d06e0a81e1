use serde_json::{json, Value};

use crate::path::AttrPath;
use crate::schema::{Mutability, Registry, Uniqueness};
use crate::{keep_immutable, normalize, unique_values, ScimType};

const DEVICE: &str = "urn:example:scim:schemas:Device";
const BADGE: &str = "urn:example:scim:schemas:extension:badge:2.0:User";

fn device_schema() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": DEVICE,
        "name": "Device",
        "attributes": [
            {"name": "serialNumber", "type": "string", "required": true, "caseExact": true,
             "mutability": "immutable", "uniqueness": "server"},
            {"name": "displayName", "type": "string"},
            {"name": "status", "type": "string", "canonicalValues": ["active", "retired"]},
            {"name": "ports", "type": "integer"},
            {"name": "enrollmentSecret", "type": "string", "mutability": "writeOnly",
             "returned": "never"},
            {"name": "hardware", "type": "complex", "subAttributes": [
                {"name": "vendor", "type": "string", "mutability": "immutable"},
                {"name": "model", "type": "string"}
            ]}
        ]
    })
}

fn files() -> Vec<(String, Value)> {
    vec![
        ("device.json".into(), device_schema()),
        (
            "types.json".into(),
            json!([
                {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                 "id": "Device", "name": "Device", "endpoint": "/Devices", "schema": DEVICE},
                {"name": "User", "endpoint": "/Users",
                 "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
                 "schemaExtensions": [
                    {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                     "required": false},
                    {"schema": BADGE, "required": false}]}
            ]),
        ),
        (
            "badge.json".into(),
            json!({"id": BADGE, "name": "Badge", "attributes": [
                {"name": "badgeId", "type": "string", "uniqueness": "global"},
                {"name": "level", "type": "string", "caseExact": true,
                 "canonicalValues": ["L1", "L2"]}
            ]}),
        ),
    ]
}

fn registry() -> Registry {
    Registry::builtin()
        .extend(&files())
        .expect("the definitions load")
}

fn refused(files: Vec<(String, Value)>, needle: &str) {
    let e = Registry::builtin()
        .extend(&files)
        .expect_err("must be refused");
    assert!(e.0.contains(needle), "{} should say {needle}", e.0);
}

#[test]
fn a_custom_type_and_extension_load_and_resolve() {
    let reg = registry();
    let device = reg.resource_type("devices").expect("found by endpoint");
    assert_eq!(device.name, "Device");
    assert_eq!(device.action("create"), "device.create");
    assert!(!device.has_members() && !device.has_groups());
    let (urn, attr) = reg
        .resolve(device, &AttrPath::simple("SERIALNUMBER"))
        .expect("resolved case-insensitively");
    assert_eq!((urn, attr.name.as_str()), (DEVICE, "serialNumber"));
    assert_eq!(attr.mutability, Mutability::Immutable);
    assert_eq!(attr.uniqueness, Uniqueness::Server);
    let user = reg.resource_type("User").unwrap();
    assert_eq!(
        user.extensions.len(),
        2,
        "the built-in User gained the extension"
    );
    assert!(reg
        .resolve(user, &AttrPath::parse(&format!("{BADGE}:badgeId")).unwrap())
        .is_some());
    // Discovery lists what was loaded.
    assert!(reg.schemas_json("").iter().any(|s| s["id"] == DEVICE));
    assert!(reg
        .resource_types_json("")
        .iter()
        .any(|t| t["endpoint"] == "/Devices"));
}

#[test]
fn what_schemas_json_prints_loads_back_to_the_same_definition() {
    let reg = registry();
    let printed: Vec<Value> = reg
        .schemas_json("https://x")
        .into_iter()
        .filter(|s| s["id"] == DEVICE || s["id"] == BADGE)
        .collect();
    let again = Registry::builtin()
        .extend(&[("printed".into(), Value::Array(printed))])
        .unwrap();
    for urn in [DEVICE, BADGE] {
        assert_eq!(again.schema(urn), reg.schema(urn), "{urn}");
    }
}

#[test]
fn mistakes_in_a_definition_are_refused_with_where_they_are() {
    let one = |v: Value| vec![("f.json".to_string(), v)];
    let schema = |attrs: Value| json!({"id": "urn:x:S", "attributes": attrs});
    refused(
        one(schema(
            json!([{"name": "a", "type": "string", "mutabilty": "readOnly"}]),
        )),
        "unknown key `mutabilty`",
    );
    refused(
        one(schema(json!([{"name": "a", "type": "text"}]))),
        "`type` is `text`",
    );
    refused(one(schema(json!([{"name": "a"}]))), "`type` is required");
    refused(
        one(schema(json!([{"name": "a", "type": "complex"}]))),
        "needs `subAttributes`",
    );
    refused(
        one(schema(
            json!([{"name": "a", "type": "complex", "subAttributes": [
                {"name": "b", "type": "complex", "subAttributes": [{"name": "c", "type": "string"}]}
            ]}]),
        )),
        "cannot be complex",
    );
    refused(
        one(schema(
            json!([{"name": "a", "type": "string", "multiValued": true,
                           "uniqueness": "server"}]),
        )),
        "single-valued",
    );
    refused(
        one(schema(
            json!([{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]),
        )),
        "defined twice",
    );
    refused(
        one(schema(json!([{"name": "externalId", "type": "string"}]))),
        "common attribute",
    );
    refused(
        one(schema(json!([{"name": "1a", "type": "string"}]))),
        "starts with a letter",
    );
    refused(
        one(json!({"id": "urn:ietf:params:scim:schemas:core:2.0:User", "attributes": []})),
        "defined twice",
    );
    refused(one(json!({"id": "not-a-urn", "attributes": []})), "URN");
    refused(
        one(json!({"name": "Thing", "endpoint": "/Things", "schema": "urn:x:Missing"})),
        "is not defined",
    );
    let with_schema = |rt: Value| {
        vec![
            (
                "s.json".to_string(),
                schema(json!([{"name": "a", "type": "string"}])),
            ),
            ("t.json".to_string(), rt),
        ]
    };
    refused(
        with_schema(json!({"name": "Thing", "endpoint": "/Bulk", "schema": "urn:x:S"})),
        "the server's own",
    );
    refused(
        with_schema(json!({"name": "Thing", "endpoint": "/Users", "schema": "urn:x:S"})),
        "another resource type",
    );
    refused(
        with_schema(json!({"name": "User", "endpoint": "/People",
                           "schema": "urn:ietf:params:scim:schemas:core:2.0:User"})),
        "keeps its endpoint",
    );
    refused(
        with_schema(json!({"name": "Team", "endpoint": "/Teams",
                           "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"})),
        "belong to the built-in",
    );
    refused(one(json!({"what": 1})), "must be a Schema");
    // Found by an outside attack: definitions that load but cannot work.
    refused(
        one(schema(
            json!([{"name": "c", "type": "complex", "multiValued": true,
            "subAttributes": [{"name": "v", "type": "string", "mutability": "immutable"}]}]),
        )),
        "cannot be immutable",
    );
    refused(
        one(schema(
            json!([{"name": "s", "type": "string", "mutability": "writeOnly",
                           "required": true}]),
        )),
        "cannot be required",
    );
    refused(
        one(schema(
            json!([{"name": "s", "type": "string", "mutability": "writeOnly",
                           "returned": "always"}]),
        )),
        "returned: always",
    );
    refused(
        one(schema(
            json!([{"name": "s", "type": "string", "canonicalValues": ["a", "A"]}]),
        )),
        "listed twice",
    );
    for urn in [
        "urn:ietf:params:scim:api:messages:2.0:Error",
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
    ] {
        refused(one(json!({"id": urn, "attributes": []})), "SCIM's own");
    }
    let user = json!({"name": "User", "endpoint": "/Users",
                      "schema": "urn:ietf:params:scim:schemas:core:2.0:User"});
    refused(with_schema(json!([user.clone(), user])), "set twice");
    refused(
        with_schema(
            json!({"name": "Thing", "endpoint": "/Things", "schema": "urn:x:S",
            "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:core:2.0:User"}]}),
        ),
        "not an extension",
    );
    refused(
        with_schema(json!({"name": "Config", "endpoint": "/Configs", "schema": "urn:x:S"})),
        "the server's own",
    );
}

#[test]
fn canonical_values_of_a_loaded_schema_are_enforced_and_canonically_spelt() {
    let reg = registry();
    let device = reg.resource_type("Device").unwrap();
    let n = normalize(
        &reg,
        device,
        &json!({"serialNumber": "S1", "status": "RETIRED"}),
        None,
    )
    .unwrap();
    assert_eq!(n.resource["status"], "retired");
    let e = normalize(
        &reg,
        device,
        &json!({"serialNumber": "S1", "status": "lost"}),
        None,
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("active, retired"), "{}", e.detail);
    // caseExact: "l1" is not "L1".
    let user = reg.resource_type("User").unwrap();
    let e = normalize(
        &reg,
        user,
        &json!({"userName": "u", BADGE: {"level": "l1"}}),
        None,
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    // The built-in suggestions stay suggestions.
    let n = normalize(
        &reg,
        user,
        &json!({"userName": "u", "emails": [{"value": "a@x", "type": "internet"}]}),
        None,
    )
    .unwrap();
    assert_eq!(n.resource["emails"][0]["type"], "internet");
}

#[test]
fn immutable_values_are_kept_by_put_and_refused_a_change() {
    let reg = registry();
    let device = reg.resource_type("Device").unwrap();
    let old = normalize(
        &reg,
        device,
        &json!({"serialNumber": "S1", "hardware": {"vendor": "Acme", "model": "X"}}),
        None,
    )
    .unwrap()
    .resource;
    // A PUT that leaves them out keeps them, in schema order.
    let mut new = normalize(
        &reg,
        device,
        &json!({"serialNumber": "S1", "displayName": "d", "hardware": {"model": "Y"}}),
        None,
    )
    .unwrap()
    .resource;
    keep_immutable(&reg, device, &old, &mut new, true).unwrap();
    assert_eq!(new["hardware"], json!({"vendor": "Acme", "model": "Y"}));
    // A change is refused, by PUT and by PATCH alike.
    let mut changed = json!({"schemas": [DEVICE], "serialNumber": "S2"});
    let e = keep_immutable(&reg, device, &old, &mut changed, true).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert!(e.detail.contains("serialNumber"));
    let mut removed = json!({"schemas": [DEVICE], "serialNumber": "S1"});
    let e = keep_immutable(&reg, device, &old, &mut removed, false).unwrap_err();
    assert!(e.detail.contains("hardware.vendor"), "{}", e.detail);
    // Set for the first time: allowed.
    let bare = json!({"schemas": [DEVICE], "serialNumber": "S1"});
    let mut first = old.clone();
    keep_immutable(&reg, device, &bare, &mut first, false).unwrap();
}

#[test]
fn unique_values_follow_scope_and_case() {
    let reg = registry();
    let device = reg.resource_type("Device").unwrap();
    let d = json!({"serialNumber": "AbC"});
    let u = unique_values(&reg, device, &d);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].scope.as_deref(), Some("Device"));
    assert_eq!(u[0].key, "AbC", "caseExact keeps the case");
    let user = reg.resource_type("User").unwrap();
    let data = json!({"userName": "u", BADGE: {"badgeId": "B-7"}});
    let u = unique_values(&reg, user, &data);
    let badge = u
        .iter()
        .find(|v| v.attribute.ends_with(":badgeId"))
        .unwrap();
    assert_eq!(badge.scope, None, "global");
    assert_eq!(badge.key, "b-7");
    assert_eq!(badge.attribute, format!("{BADGE}:badgeId"));
}

#[test]
fn equal_numbers_and_instants_are_one_unique_value() {
    let reg = Registry::builtin()
        .extend(&[
            (
                "s".into(),
                json!({"id": "urn:x:M", "attributes": [
                    {"name": "price", "type": "decimal", "uniqueness": "server"},
                    {"name": "at", "type": "dateTime", "uniqueness": "server"}
                ]}),
            ),
            (
                "t".into(),
                json!({"name": "M", "endpoint": "/Ms", "schema": "urn:x:M"}),
            ),
        ])
        .unwrap();
    let rt = reg.resource_type("M").unwrap();
    let keys = |v: Value| -> Vec<String> {
        unique_values(&reg, rt, &v)
            .into_iter()
            .map(|u| u.key)
            .collect()
    };
    assert_eq!(
        keys(json!({"price": 7, "at": "2024-01-01T00:00:00Z"})),
        keys(json!({"price": 7.0, "at": "2024-01-01T02:00:00.000+02:00"}))
    );
    assert_ne!(keys(json!({"price": 7.5})), keys(json!({"price": 7})));
}
