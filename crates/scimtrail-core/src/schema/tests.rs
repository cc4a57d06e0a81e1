use serde_json::json;

use super::*;

#[test]
fn lookups_are_case_insensitive() {
    let reg = Registry::builtin();
    for key in ["User", "user", "Users", "/users", "/Users"] {
        assert_eq!(
            reg.resource_type(key).map(|r| r.name.as_str()),
            Some("User"),
            "{key}"
        );
    }
    assert_eq!(
        reg.resource_type("Groups").map(|r| r.schema.as_str()),
        Some(GROUP_SCHEMA)
    );
    assert!(reg.resource_type("Things").is_none());
    assert_eq!(
        reg.schema(&USER_SCHEMA.to_uppercase())
            .map(|s| s.name.as_str()),
        Some("User")
    );
    assert_eq!(reg.schemas().len(), 3);
}

#[test]
fn resolve_paths() {
    let reg = Registry::builtin();
    let user = reg.resource_type("User").expect("User");
    let cases = [
        ("userName", USER_SCHEMA, "userName"),
        ("NAME.GIVENNAME", USER_SCHEMA, "givenName"),
        ("emails.value", USER_SCHEMA, "value"),
        ("meta.lastModified", USER_SCHEMA, "lastModified"),
        ("id", USER_SCHEMA, "id"),
        ("employeeNumber", ENTERPRISE_USER_SCHEMA, "employeeNumber"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:Manager.Value",
            ENTERPRISE_USER_SCHEMA,
            "value",
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            USER_SCHEMA,
            "userName",
        ),
    ];
    for (p, urn, name) in cases {
        let path = AttrPath::parse(p).expect("path");
        let got = reg.resolve(user, &path).map(|(u, a)| (u, a.name.as_str()));
        assert_eq!(got, Some((urn, name)), "{p}");
    }
    for p in ["bogus", "name.bogus", "urn:x:y:userName", "members"] {
        assert!(
            reg.resolve(user, &AttrPath::parse(p).expect("path"))
                .is_none(),
            "{p}"
        );
    }
    assert_eq!(
        reg.secret_attribute_names(user),
        vec!["password".to_string()]
    );
    let group = reg.resource_type("Group").expect("Group");
    assert!(reg.secret_attribute_names(group).is_empty());
}

#[test]
fn characteristics() {
    let reg = Registry::builtin();
    let user = reg.resource_type("User").expect("User");
    let get = |p: &str| {
        reg.resolve(user, &AttrPath::parse(p).expect("path"))
            .map(|(_, a)| a.clone())
    };
    let pw = get("password").expect("password");
    assert_eq!(
        (pw.mutability, pw.returned),
        (Mutability::WriteOnly, Returned::Never)
    );
    let un = get("userName").expect("userName");
    assert!(un.required && !un.case_exact && un.uniqueness == Uniqueness::Server);
    assert_eq!(
        get("groups").map(|g| g.mutability),
        Some(Mutability::ReadOnly)
    );
    assert_eq!(
        get("emails.primary").map(|a| a.attr_type),
        Some(AttrType::Boolean)
    );
    assert_eq!(
        get("x509Certificates.value").map(|a| a.attr_type),
        Some(AttrType::Binary)
    );
    assert_eq!(
        get("id").map(|a| (a.case_exact, a.returned)),
        Some((true, Returned::Always))
    );
    let group = reg.resource_type("Group").expect("Group");
    let m = reg
        .resolve(group, &AttrPath::parse("members.value").expect("p"))
        .expect("members.value");
    assert!(m.1.required);
    assert!(reg
        .resolve(group, &AttrPath::parse("displayName").expect("p"))
        .is_some_and(|(_, a)| a.required));
}

#[test]
fn json_representations() {
    let reg = Registry::builtin();
    let schemas = reg.schemas_json("https://h/scim/v2/");
    let user = schemas
        .iter()
        .find(|s| s["id"] == json!(USER_SCHEMA))
        .expect("user schema");
    assert_eq!(user["schemas"], json!([SCHEMA_SCHEMA]));
    assert_eq!(
        user["meta"],
        json!({"resourceType": "Schema", "location": format!("https://h/scim/v2/Schemas/{USER_SCHEMA}")})
    );
    let attrs = user["attributes"].as_array().expect("attributes");
    let pw = attrs
        .iter()
        .find(|a| a["name"] == json!("password"))
        .expect("password");
    assert_eq!(
        (&pw["mutability"], &pw["returned"], &pw["type"]),
        (&json!("writeOnly"), &json!("never"), &json!("string"))
    );
    let emails = attrs
        .iter()
        .find(|a| a["name"] == json!("emails"))
        .expect("emails");
    assert_eq!(emails["multiValued"], json!(true));
    assert_eq!(emails["subAttributes"].as_array().map(Vec::len), Some(4));
    assert!(attrs.iter().all(|a| a["name"] != json!("id")));

    let rts = reg.resource_types_json("https://h/scim/v2");
    assert_eq!(rts.len(), 2);
    let u = rts.first().expect("User");
    assert_eq!(u["endpoint"], json!("/Users"));
    assert_eq!(
        u["schemaExtensions"],
        json!([{"schema": ENTERPRISE_USER_SCHEMA, "required": false}])
    );
    assert_eq!(
        u["meta"]["location"],
        json!("https://h/scim/v2/ResourceTypes/User")
    );
    assert_eq!(u["schemas"], json!([RESOURCE_TYPE_SCHEMA]));
}
