use serde_json::{json, Value};

use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER_SCHEMA as ENT, USER_SCHEMA};

fn full() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENT], "id": "u1", "externalId": "e1", "userName": "alice",
        "password": "leaked?", "name": {"givenName": "Alice", "familyName": "L"},
        "emails": [{"value": "a@x", "type": "work"}], "groups": [{"value": "g1", "display": "G"}],
        "meta": {"resourceType": "User", "version": "W/\"1\""},
        ENT: {"department": "D", "manager": {"value": "m", "displayName": "M"}},
        "serverExtra": 1
    })
}

fn run(attrs: &str, excluded: &str) -> Value {
    let reg = Registry::builtin();
    let rt = reg.resource_type("User").expect("User");
    let a = parse_attr_list(attrs).expect("attrs");
    let e = parse_attr_list(excluded).expect("excluded");
    project(&reg, rt, &full(), &a, &e)
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn defaults_drop_never_returned() {
    let v = run("", "");
    assert!(v.get("password").is_none());
    assert_eq!(keys(&v).len(), 10);
}

#[test]
fn table() {
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("userName", "", vec!["schemas", "id", "userName"]),
        ("USERNAME,password", "", vec!["schemas", "id", "userName"]),
        ("name.givenName", "", vec!["schemas", "id", "name"]),
        ("meta", "", vec!["schemas", "id", "meta"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "",
            vec!["schemas", "id", ENT],
        ),
        (ENT, "", vec!["schemas", "id", ENT]),
        ("unknownThing", "", vec!["schemas", "id"]),
        (
            "",
            "groups,emails,meta,id,schemas,name,externalId,userName,serverExtra",
            vec!["schemas", "id", ENT, "serverExtra"],
        ),
        (
            "",
            "department,manager",
            vec![
                "schemas",
                "id",
                "externalId",
                "userName",
                "name",
                "emails",
                "groups",
                "meta",
                "serverExtra",
            ],
        ),
    ];
    for (a, e, want) in cases {
        assert_eq!(keys(&run(a, e)), want, "attributes={a} excluded={e}");
    }
    assert_eq!(
        run("name.givenName", "")["name"],
        json!({"givenName": "Alice"})
    );
    assert_eq!(
        run(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            ""
        )[ENT],
        json!({"department": "D"})
    );
    assert_eq!(
        run("", "name.familyName,emails.type")["name"],
        json!({"givenName": "Alice"})
    );
    assert_eq!(run("", "emails.type")["emails"], json!([{"value": "a@x"}]));
}

#[test]
fn attr_list_parsing() {
    assert_eq!(parse_attr_list(""), Ok(vec![]));
    assert_eq!(
        parse_attr_list(" userName , name.givenName ").map(|v| v.len()),
        Ok(2)
    );
    assert_eq!(
        parse_attr_list("a,b c").map_err(|e| e.scim_type),
        Err(Some(ScimType::InvalidPath))
    );
}
