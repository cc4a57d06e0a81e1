use serde_json::{json, Value};

use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER_SCHEMA as ENT, USER_SCHEMA};

fn reg() -> Registry {
    Registry::builtin()
}

fn user(input: Value) -> ScimResult<Normalized> {
    let r = reg();
    let rt = r.resource_type("User").expect("User").clone();
    normalize(&r, &rt, &input, None)
}

fn group(input: Value, id: Option<&str>) -> ScimResult<Normalized> {
    let r = reg();
    let rt = r.resource_type("Group").expect("Group").clone();
    normalize(&r, &rt, &input, id)
}

fn err_of(r: ScimResult<Normalized>) -> (u16, Option<ScimType>, String) {
    let e = r.expect_err("should fail");
    (e.status, e.scim_type, e.detail)
}

#[test]
fn okta_create_with_password_groups_and_externalid() {
    // O2 + E13: password never stored, groups/meta/roles:[] ignored, casing canonicalized.
    let n = user(json!({
        "schemas": [USER_SCHEMA, "urn:unknown:thing"],
        "USERNAME": "alice@example.com", "externalid": "00u1",
        "password": "hunter2", "groups": [], "roles": [],
        "meta": {"resourceType": "User"}, "id": "ignored-on-post",
        "name": {"GivenName": "Alice", "familyName": null},
        "emails": {"value": "alice@example.com", "type": "work", "primary": "TRUE"},
        "active": "False",
        "urn:some:vendor:ext": {"x": 1}
    }))
    .expect("valid");
    assert_eq!(
        n.resource,
        json!({
            "schemas": [USER_SCHEMA],
            "externalId": "00u1",
            "userName": "alice@example.com",
            "name": {"givenName": "Alice"},
            "active": false,
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
        })
    );
    let secrets: Vec<&str> = n.secrets.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(secrets, ["password"]);
    assert!(!format!("{n:?}").contains("hunter2"), "Debug hides secrets");
    assert!(!n.resource.to_string().contains("hunter2"));
}

#[test]
fn extension_and_manager_string() {
    // E11: manager as a bare id; extension attrs by URN object or URN-qualified key.
    let n = user(json!({
        "userName": "bob",
        ENT: {"Department": "R&D", "manager": "m-1"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
    }))
    .expect("valid");
    assert_eq!(n.resource["schemas"], json!([USER_SCHEMA, ENT]));
    assert_eq!(
        n.resource[ENT],
        json!({"employeeNumber": "42", "department": "R&D", "manager": {"value": "m-1"}})
    );
    // manager.displayName is readOnly: ignored; empty extension dropped
    let n =
        user(json!({"userName": "bob", ENT: {"manager": {"displayName": "Boss"}}})).expect("ok");
    assert_eq!(
        n.resource,
        json!({"schemas": [USER_SCHEMA], "userName": "bob"})
    );
}

#[test]
fn primary_and_duplicates() {
    let n = user(json!({"userName": "c", "emails": [
        {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}, {"value": "a@x", "primary": true}
    ]}))
    .expect("valid");
    assert_eq!(
        n.resource["emails"],
        json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}])
    );
}

#[test]
fn group_members() {
    // E6: $ref null, no type; $ref dropped; dedupe by value; E13 unknown schema URI.
    let n = group(
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                           "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
               "displayName": "Eng", "id": "g1",
               "members": [{"$ref": null, "value": "u1"}, {"value": "u2", "display": "Bob", "$ref": "https://x/Users/u2", "type": "User"}, {"value": "u1", "display": "dup"}]}),
        Some("g1"),
    )
    .expect("valid");
    assert_eq!(
        n.resource,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng",
               "members": [{"value": "u1"}, {"value": "u2", "display": "Bob", "type": "User"}]})
    );
}

#[test]
fn errors() {
    use ScimType::*;
    let cases: Vec<(Value, Option<&str>, u16, ScimType, &str)> = vec![
        (json!([1]), None, 400, InvalidSyntax, "object"),
        (
            json!({"displayName": "x", "id": "other"}),
            Some("g1"),
            400,
            Mutability,
            "id",
        ),
        (
            json!({"members": []}),
            None,
            400,
            InvalidValue,
            "displayName",
        ),
        (
            json!({"displayName": "  "}),
            None,
            400,
            InvalidValue,
            "displayName",
        ),
        (
            json!({"displayName": "x", "members": [{"display": "no value"}]}),
            None,
            400,
            InvalidValue,
            "members.value",
        ),
        (
            json!({"displayName": "x", "bogus": 1}),
            None,
            400,
            InvalidSyntax,
            "bogus",
        ),
        (
            json!({"displayName": "x", "members": [{"value": "u", "wat": 1}]}),
            None,
            400,
            InvalidSyntax,
            "members.wat",
        ),
        (
            json!({"displayName": 5}),
            None,
            400,
            InvalidValue,
            "displayName",
        ),
        (
            json!({"displayName": ["a", "b"]}),
            None,
            400,
            InvalidValue,
            "displayName",
        ),
    ];
    for (input, id, status, t, needle) in cases {
        let (s, st, detail) = err_of(group(input.clone(), id));
        assert_eq!((s, st), (status, Some(t)), "{input}");
        assert!(detail.contains(needle), "{detail} should name {needle}");
    }
    let user_cases: Vec<(Value, ScimType, &str)> = vec![
        (
            json!({"name": {"givenName": "x"}}),
            InvalidValue,
            "userName",
        ),
        (
            json!({"userName": "u", "active": "yes-secret"}),
            InvalidValue,
            "boolean",
        ),
        (
            json!({"userName": "u", "name": "secret-string"}),
            InvalidValue,
            "complex",
        ),
        (
            json!({"userName": "u", "name": {"nick": "x"}}),
            InvalidSyntax,
            "name.nick",
        ),
        (json!({"userName": "u", ENT: "secret-x"}), InvalidValue, ENT),
        (
            json!({"userName": "u", ENT: {"bogus": 1}}),
            InvalidSyntax,
            "bogus",
        ),
        (
            json!({"userName": "u", "emails": [["a"]]}),
            InvalidValue,
            "emails",
        ),
        (
            json!({"userName": "u", "emails": [{"primary": 3}]}),
            InvalidValue,
            "emails.primary",
        ),
    ];
    for (input, t, needle) in user_cases {
        let (s, st, detail) = err_of(user(input.clone()));
        assert_eq!((s, st), (400, Some(t)), "{input}");
        assert!(detail.contains(needle), "{detail} should name {needle}");
        assert!(!detail.contains("secret"), "detail leaks a value: {detail}");
    }
}

#[test]
fn datetime_and_integer_types() {
    use crate::schema::{AttrType, Attribute, Mutability, Returned, Schema, Uniqueness};
    let attr = |name: &str, t: AttrType| Attribute {
        name: name.into(),
        attr_type: t,
        multi_valued: false,
        description: String::new(),
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: vec![],
        strict_canonical: false,
        reference_types: vec![],
        sub_attributes: vec![],
    };
    let schema = Schema {
        id: "urn:test:T".into(),
        name: "T".into(),
        description: String::new(),
        attributes: vec![
            attr("when", AttrType::DateTime),
            attr("count", AttrType::Integer),
            attr("ratio", AttrType::Decimal),
        ],
    };
    let rt = ResourceType {
        name: "T".into(),
        endpoint: "/T".into(),
        description: String::new(),
        schema: "urn:test:T".into(),
        extensions: vec![],
    };
    let reg = Registry::new(vec![schema], vec![rt.clone()]);
    let ok = normalize(
        &reg,
        &rt,
        &json!({"when": "2024-01-02T03:04:05Z", "count": 3, "ratio": 0.5}),
        None,
    );
    assert!(ok.is_ok());
    for bad in [
        json!({"when": "yesterday"}),
        json!({"count": 1.5}),
        json!({"count": "3"}),
        json!({"ratio": "x"}),
    ] {
        let e = normalize(&reg, &rt, &bad, None).expect_err("bad type");
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
    }
}

#[test]
fn secrets_are_type_checked_but_not_kept() {
    let reg = crate::Registry::builtin();
    let rt = reg.resource_type("User").expect("User");
    let e = crate::normalize(
        &reg,
        rt,
        &serde_json::json!({"userName": "a", "password": {"v": "x"}}),
        None,
    )
    .expect_err("an object is not a password");
    assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue));
    assert!(!e.detail.contains('x'));
    let n = crate::normalize(
        &reg,
        rt,
        &serde_json::json!({"userName": "a", "password": "ok"}),
        None,
    )
    .expect("a string password");
    assert!(n.resource.get("password").is_none());
}
