use serde_json::{json, Value};

use super::*;
use crate::error::{ScimError, ScimType};
use crate::resource::Normalized;
use crate::schema::{Registry, ENTERPRISE_USER_SCHEMA as ENT, GROUP_SCHEMA, USER_SCHEMA};

fn ops(list: Value) -> Vec<PatchOperation> {
    parse_patch(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": list})).expect("valid patch")
}

fn run(rt: &str, resource: Value, list: Value) -> Result<Normalized, ScimError> {
    let reg = Registry::builtin();
    let rt = reg.resource_type(rt).expect("rt");
    apply_patch(&reg, rt, &resource, &ops(list), "id-1")
}

fn user() -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": "alice", "active": true,
           "name": {"givenName": "Alice", "familyName": "Liddell"},
           "emails": [{"value": "a@work", "type": "work", "primary": true}, {"value": "a@home", "type": "home"}]})
}

fn group() -> Value {
    json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng",
           "members": [{"value": "u1", "display": "One"}, {"value": "u2"}, {"value": "u3"}]})
}

fn member_ids(v: &Value) -> Vec<&str> {
    v["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["value"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn parse_rules() {
    use ScimType::*;
    // E1 capitalised op, E15 empty Operations, missing schemas accepted, key case-insensitive
    assert_eq!(parse_patch(&json!({"Operations": []})), Ok(vec![]));
    let p = parse_patch(
        &json!({"operations": [{"Op": "Replace", "Path": "active", "Value": "False"}]}),
    )
    .expect("ok");
    assert_eq!(p.first().map(|o| o.op), Some(PatchOp::Replace));
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "remove", "path": "title"}))
        .collect();
    let cases: Vec<(Value, ScimType)> = vec![
        (json!([]), InvalidSyntax),
        (
            json!({"schemas": ["urn:x"], "Operations": []}),
            InvalidSyntax,
        ),
        (json!({"schemas": [PATCH_OP_SCHEMA]}), InvalidSyntax),
        (json!({"Operations": {}}), InvalidSyntax),
        (json!({"Operations": [1]}), InvalidSyntax),
        (
            json!({"Operations": [{"op": "move", "path": "a"}]}),
            InvalidSyntax,
        ),
        (
            json!({"Operations": [{"op": "add", "path": "title"}]}),
            InvalidSyntax,
        ),
        (json!({"Operations": [{"op": "remove"}]}), NoTarget),
        (
            json!({"Operations": [{"op": "remove", "path": "emails[type eq]"}]}),
            InvalidPath,
        ),
        (
            json!({"Operations": [{"op": "remove", "path": 3}]}),
            InvalidPath,
        ),
        (json!({"Operations": too_many}), InvalidSyntax),
    ];
    for (body, t) in cases {
        assert_eq!(
            parse_patch(&body).map_err(|e| e.scim_type),
            Err(Some(t)),
            "{body}"
        );
    }
}

#[test]
fn entra_user_updates() {
    // E2 + E3: one Replace per attribute, value-path filters, URN paths, booleans as strings
    let n = run("User", user(), json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "name.givenName", "value": "Al"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@work"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "7"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-9"},
        {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Paris"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+331"},
    ])).expect("applies");
    let r = n.resource;
    assert_eq!(r["active"], json!(false));
    assert_eq!(
        r["name"],
        json!({"givenName": "Al", "familyName": "Liddell"})
    );
    assert_eq!(
        r["emails"][0],
        json!({"value": "new@work", "type": "work", "primary": true})
    );
    assert_eq!(
        r[ENT],
        json!({"employeeNumber": "7", "manager": {"value": "m-9"}})
    );
    assert_eq!(
        r["addresses"],
        json!([{"locality": "Paris", "type": "work"}])
    ); // E12
    assert_eq!(
        r["phoneNumbers"],
        json!([{"value": "+331", "type": "mobile"}])
    );
    assert_eq!(r["schemas"], json!([USER_SCHEMA, ENT]));
}

#[test]
fn no_path_replace_and_add() {
    // O4
    let n = run(
        "User",
        user(),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .expect("ok");
    assert_eq!(n.resource["active"], json!(false));
    // E4: dotted and URN keys, extension object, readOnly keys ignored, unknown URN ignored
    let n = run("User", user(), json!([{"op": "replace", "value": {
        "name.givenName": "X", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops",
        ENT: {"costCenter": "C1"}, "meta": {"version": "1"}, "groups": [], "urn:vendor:x:attr": 1,
        "emails": [{"value": "only@one"}], "password": "s3cret"
    }}])).expect("ok");
    assert_eq!(n.resource["name"]["givenName"], json!("X"));
    assert_eq!(
        n.resource[ENT],
        json!({"costCenter": "C1", "department": "Ops"})
    );
    assert_eq!(n.resource["emails"], json!([{"value": "only@one"}]));
    let secrets: Vec<&str> = n.secrets.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(secrets, ["password"]);
    assert!(!format!("{n:?}").contains("s3cret"), "Debug hides secrets");
    assert!(n.resource.get("password").is_none());
    // scim2-tester: a path naming the extension, with `schemas` echoed inside the value.
    let n = run(
        "User",
        user(),
        json!([{"op": "add", "path": ENT, "value": {
        "schemas": [ENT], "division": "D"}}]),
    )
    .expect("schemas inside an extension is ignored");
    assert_eq!(n.resource[ENT]["division"], json!("D"));
    // O6: id equal to the resource id is accepted, a different one is not
    let n = run(
        "Group",
        group(),
        json!([{"op": "replace", "value": {"id": "id-1", "displayName": "Eng2"}}]),
    )
    .expect("ok");
    assert_eq!(n.resource["displayName"], json!("Eng2"));
    let e = run(
        "Group",
        group(),
        json!([{"op": "replace", "value": {"id": "other", "displayName": "x"}}]),
    )
    .expect_err("id");
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    // add no path with multi-valued: appended, duplicates skipped, new primary wins
    let n = run("User", user(), json!([{"op": "add", "value": {"emails": [{"value": "a@home", "type": "home"}, {"value": "n@x", "primary": true}]}}])).expect("ok");
    assert_eq!(n.resource["emails"].as_array().map(Vec::len), Some(3));
    assert_eq!(n.resource["emails"][0]["primary"], json!(false));
    assert_eq!(n.resource["emails"][2]["primary"], json!(true));
}

#[test]
fn group_membership() {
    // E5 (value list) and filter removal, O7 add with display, duplicate add ignored, E6 $ref null
    let n = run("Group", group(), json!([
        {"op": "Remove", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "members[value eq \"u2\"]"},
        {"op": "remove", "path": "members[value eq \"nobody\"]"},
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u4"}, {"value": "u3", "display": "dup"}]},
        {"op": "add", "path": "members", "value": {"value": "u5", "display": "Five"}},
    ])).expect("ok");
    assert_eq!(member_ids(&n.resource), vec!["u3", "u4", "u5"]);
    assert_eq!(n.resource["members"][0], json!({"value": "u3"}));
    // O7 replace with full list; remove everything → attribute unassigned
    let n = run(
        "Group",
        group(),
        json!([{"op": "replace", "path": "members", "value": [{"value": "u9"}]}]),
    )
    .expect("ok");
    assert_eq!(member_ids(&n.resource), vec!["u9"]);
    let n = run(
        "Group",
        group(),
        json!([{"op": "remove", "path": "members"}]),
    )
    .expect("ok");
    assert_eq!(
        n.resource,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng"})
    );
    let n = run(
        "Group",
        group(),
        json!([{"op": "remove", "path": "members[value pr]"}]),
    )
    .expect("ok");
    assert!(n.resource.get("members").is_none());
}

#[test]
fn removals() {
    let n = run(
        "User",
        user(),
        json!([
            {"op": "remove", "path": "name.familyName"},
            {"op": "remove", "path": "emails[type eq \"work\"].primary"},
            {"op": "remove", "path": "ACTIVE"},
            {"op": "remove", "path": "title"},
        ]),
    )
    .expect("ok");
    assert_eq!(n.resource["name"], json!({"givenName": "Alice"}));
    assert_eq!(
        n.resource["emails"][0],
        json!({"value": "a@work", "type": "work"})
    );
    assert!(n.resource.get("active").is_none());
    let n = run("User", user(), json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}])).expect("ok");
    assert!(n.resource.get("name").is_none());
    let n = run(
        "User",
        user(),
        json!([{"op": "replace", "path": ENT, "value": {"department": "D"}},
                                        {"op": "remove", "path": ENT}]),
    )
    .expect("ok");
    assert_eq!(n.resource["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn errors_are_atomic_and_typed() {
    use ScimType::*;
    let cases: Vec<(&str, Value, ScimType)> = vec![
        (
            "User",
            json!([{"op": "replace", "path": "bogus", "value": 1}]),
            InvalidPath,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "name.bogus", "value": 1}]),
            InvalidPath,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "emails[type eq \"work\"].bogus", "value": 1}]),
            InvalidPath,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            Mutability,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "meta.version", "value": "x"}]),
            Mutability,
        ),
        (
            "User",
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            Mutability,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "x"}]),
            NoTarget,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "userName[value eq \"x\"]", "value": "x"}]),
            InvalidPath,
        ),
        (
            "User",
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            InvalidValue,
        ),
        (
            "User",
            json!([{"op": "remove", "path": "userName"}]),
            InvalidValue,
        ),
        (
            "User",
            json!([{"op": "replace", "value": "not an object"}]),
            InvalidValue,
        ),
        (
            "User",
            json!([{"op": "replace", "value": {"nope": 1}}]),
            InvalidPath,
        ),
        (
            "Group",
            json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]),
            InvalidValue,
        ),
    ];
    for (rt, list, t) in cases {
        let before = if rt == "User" { user() } else { group() };
        let e = run(rt, before.clone(), list.clone()).expect_err("should fail");
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(t)),
            "{list}: {}",
            e.detail
        );
    }
}

#[test]
fn replace_on_complex_merges_and_multi_valued_replaces() {
    let n = run("User", user(), json!([
        {"op": "replace", "path": "name", "value": {"familyName": "L2"}},
        {"op": "replace", "path": "emails", "value": {"value": "solo@x"}},
        {"op": "replace", "path": "emails[value eq \"solo@x\"]", "value": {"type": "other", "primary": "true"}},
    ])).expect("ok");
    assert_eq!(
        n.resource["name"],
        json!({"givenName": "Alice", "familyName": "L2"})
    );
    assert_eq!(
        n.resource["emails"],
        json!([{"value": "solo@x", "type": "other", "primary": true}])
    );
}

#[test]
fn schema_level_paths_and_idempotence() {
    let n = run(
        "User",
        user(),
        json!([
            {"op": "replace", "path": USER_SCHEMA, "value": {"title": "Boss"}},
            {"op": "add", "path": ENT, "value": {"division": "North"}},
        ]),
    )
    .expect("ok");
    assert_eq!(n.resource["title"], json!("Boss"));
    assert_eq!(n.resource[ENT], json!({"division": "North"}));
    let e = run(
        "User",
        user(),
        json!([{"op": "remove", "path": USER_SCHEMA}]),
    )
    .expect_err("core");
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    // Re-applying nothing to a normalized result changes nothing.
    let again = run("User", n.resource.clone(), json!([])).expect("ok");
    assert_eq!(again.resource, n.resource);
    // The caller's value is untouched even when a later operation fails.
    let before = user();
    let reg = Registry::builtin();
    let rt = reg.resource_type("User").expect("User");
    let list = ops(
        json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "id", "value": "y"}]),
    );
    assert!(apply_patch(&reg, rt, &before, &list, "id-1").is_err());
    assert_eq!(before, user());
}
