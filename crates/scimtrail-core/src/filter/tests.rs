use serde_json::json;

use super::*;
use crate::error::ScimType;
use crate::schema::{Registry, ENTERPRISE_USER_SCHEMA};

fn p(s: &str) -> AttrPath {
    AttrPath::parse(s).expect("valid path")
}
fn cmp(path: &str, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(p(path), op, v)
}
fn s(v: &str) -> CompValue {
    CompValue::String(v.to_string())
}
fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}
fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

/// RFC 7644 §3.4.2.2 examples, parsed into the expected tree.
#[test]
fn rfc_examples_parse() {
    use CompareOp::*;
    let cases: Vec<(&str, Filter)> = vec![
        (
            r#"userName eq "bjensen""#,
            cmp("userName", Eq, s("bjensen")),
        ),
        (
            r#"name.familyName co "O'Malley""#,
            cmp("name.familyName", Co, s("O'Malley")),
        ),
        (r#"userName sw "J""#, cmp("userName", Sw, s("J"))),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            cmp(
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                Sw,
                s("J"),
            ),
        ),
        ("title pr", Filter::Present(p("title"))),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            cmp("meta.lastModified", Gt, s("2011-05-13T04:42:34Z")),
        ),
        (
            r#"title pr and userType eq "Employee""#,
            and(
                Filter::Present(p("title")),
                cmp("userType", Eq, s("Employee")),
            ),
        ),
        (
            r#"title pr or userType eq "Intern""#,
            or(
                Filter::Present(p("title")),
                cmp("userType", Eq, s("Intern")),
            ),
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            and(
                cmp("userType", Eq, s("Employee")),
                or(
                    cmp("emails", Co, s("example.com")),
                    cmp("emails.value", Co, s("example.org")),
                ),
            ),
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            and(
                cmp("userType", Ne, s("Employee")),
                Filter::Not(Box::new(or(
                    cmp("emails", Co, s("example.com")),
                    cmp("emails.value", Co, s("example.org")),
                ))),
            ),
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            and(
                cmp("userType", Eq, s("Employee")),
                Filter::ValuePath(
                    p("emails"),
                    Box::new(and(
                        cmp("type", Eq, s("work")),
                        cmp("value", Co, s("@example.com")),
                    )),
                ),
            ),
        ),
        // precedence: and binds tighter than or; operators case-insensitive
        (
            "a pr OR b pr AND c pr",
            or(
                Filter::Present(p("a")),
                and(Filter::Present(p("b")), Filter::Present(p("c"))),
            ),
        ),
        ("x EQ true", cmp("x", Eq, CompValue::Bool(true))),
        ("x eq null", cmp("x", Eq, CompValue::Null)),
        ("x ge 10", cmp("x", Ge, CompValue::Number(10.into()))),
        (
            "x lt -1.5",
            cmp(
                "x",
                Lt,
                CompValue::Number(serde_json::Number::from_f64(-1.5).expect("finite")),
            ),
        ),
        (r#"x eq "a\"b\\c\u00e9""#, cmp("x", Eq, s("a\"b\\cé"))),
    ];
    for (text, want) in cases {
        assert_eq!(Filter::parse(text), Ok(want.clone()), "{text}");
        assert_eq!(
            Filter::parse(&want.to_string()),
            Ok(want),
            "reprint of {text}"
        );
    }
}

#[test]
fn parse_errors() {
    let long = "a pr and ".repeat(1000) + "a pr";
    let deep = "(".repeat(70) + "a pr" + &")".repeat(70);
    let nested_vp = r#"emails[type[value eq "x"]]"#;
    for bad in [
        "",
        "   ",
        "userName",
        "userName eq",
        "userName xx \"a\"",
        r#"userName eq "open"#,
        "userName eq bare",
        "(a pr",
        "a pr)",
        "a pr and",
        "not a pr",
        "emails[type eq \"w\"",
        nested_vp,
        "name.givenName[value pr]",
        "a.b.c pr",
        r#"userName eq "\x""#,
        "a pr b pr",
        long.as_str(),
        deep.as_str(),
        "x eq 1e999",
    ] {
        let e = Filter::parse(bad).expect_err(bad);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{bad}"
        );
    }
    let e = Filter::parse(r#"userName eq "secret" junk"#).expect_err("trailing");
    assert!(e.detail.contains("position 21"), "{}", e.detail);
    assert!(!e.detail.contains("secret"), "{}", e.detail);
}

#[test]
fn printer_parenthesizes_right_nesting() {
    let f = or(
        Filter::Present(p("a")),
        or(Filter::Present(p("b")), Filter::Present(p("c"))),
    );
    assert_eq!(f.to_string(), "a pr or (b pr or c pr)");
    let g = and(
        or(Filter::Present(p("a")), Filter::Present(p("b"))),
        Filter::Present(p("c")),
    );
    assert_eq!(g.to_string(), "(a pr or b pr) and c pr");
    assert_eq!(Filter::parse(&g.to_string()), Ok(g));
}

pub(super) fn user() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA],
        "id": "2819c223", "externalId": "ext-1", "userName": "BJensen", "active": true,
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "userType": "Employee", "title": "Tour Guide",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "x509Certificates": [{"value": "TUlJRE"}],
        "meta": {"resourceType": "User", "created": "2011-08-01T18:29:49.793Z",
                 "lastModified": "2011-08-01T20:31:02+02:00", "version": "W/\"3694e05e9dff591\""},
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915"}}
    })
}

#[test]
fn evaluation_table() {
    let reg = Registry::builtin();
    let rt = reg.resource_type("Users").expect("User");
    let u = user();
    let cases = [
        (r#"userName eq "bjensen""#, true), // caseExact false
        (r#"USERNAME Eq "BJENSEN""#, true),
        (r#"userName ne "bjensen""#, false),
        (r#"userName sw "bj""#, true),
        (r#"userName ew "SEN""#, true),
        (r#"userName co "jen""#, true),
        (r#"externalId eq "EXT-1""#, false), // caseExact true
        (r#"externalId eq "ext-1""#, true),
        (r#"id eq "2819c223""#, true),
        (r#"name.familyName co "O'Malley""#, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
            true,
        ),
        ("title pr", true),
        ("nickName pr", false),
        ("active eq true", true),
        ("active eq false", false),
        ("active gt true", false),
        (r#"emails co "example.com""#, true),
        (r#"emails.value co "jensen.org""#, true),
        (r#"emails.type eq "work""#, true),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "home" and value co "@example.com"]"#,
            false,
        ),
        (
            r#"emails[type eq "work"] and not (emails[primary eq false])"#,
            true,
        ), // absent primary is not false
        (r#"emails[primary eq true]"#, true),
        (r#"meta.lastModified gt "2011-08-01T18:00:00Z""#, true), // 18:31Z as an instant
        (r#"meta.lastModified lt "2011-08-01T18:31:03Z""#, true),
        (r#"meta.created ge "2011-08-01T18:29:49.793Z""#, true),
        (r#"meta.resourceType eq "User""#, true),
        (r#"meta.version pr"#, true),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            true,
        ),
        (r#"employeeNumber eq "701984""#, true),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#,
            true,
        ),
        (r#"x509Certificates eq "tuljre""#, false), // binary is case-exact
        (r#"unknownAttr eq "x""#, false),
        (r#"unknownAttr ne "x""#, false),
        (r#"nickName eq null"#, true),
        (r#"title ne null"#, true),
        (r#"nickName ne "x""#, true),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            true,
        ),
        (r#"title pr or userType eq "Intern""#, true),
        (r#"active eq "true""#, false),
        (r#"emails[type eq "work"].value pr"#, false),
    ];
    for (text, want) in cases {
        match Filter::parse(text) {
            Ok(f) => assert_eq!(f.matches(&reg, rt, &u), want, "{text}"),
            Err(e) => assert!(!want, "{text}: {e}"),
        }
    }
}

#[test]
fn group_members_and_numbers() {
    let reg = Registry::builtin();
    let rt = reg.resource_type("/groups").expect("Group");
    let g = json!({"id": "g1", "displayName": "Admins", "members": [{"value": "u1"}, {"value": "u2", "type": "User"}]});
    for (text, want) in [
        (r#"members eq "u2""#, true),
        (r#"members.value eq "u3""#, false),
        (r#"members[value eq "u1"]"#, true),
        (r#"displayName eq "admins""#, true),
        ("members pr", true),
    ] {
        assert_eq!(
            Filter::parse(text).expect(text).matches(&reg, rt, &g),
            want,
            "{text}"
        );
    }
    assert!(!Filter::parse("displayName pr").expect("f").matches(
        &reg,
        rt,
        &json!("not an object")
    ));
}

mod props;

#[test]
fn long_flat_chains_do_not_overflow() {
    let reg = Registry::builtin();
    let rt = reg.resource_type("User").expect("User");
    let text = vec!["a pr"; 1000].join(" or ");
    assert!(text.len() <= MAX_FILTER_LEN);
    let f = Filter::parse(&text).expect("valid");
    assert!(!f.matches(&reg, rt, &user()));
    assert_eq!(Filter::parse(&f.to_string()), Ok(f));
    let nested = "not (".repeat(MAX_FILTER_DEPTH) + "a pr" + &")".repeat(MAX_FILTER_DEPTH);
    assert!(Filter::parse(&nested).is_ok());
}

#[test]
fn sort_keys_follow_the_schema() {
    use std::cmp::Ordering;
    let reg = Registry::builtin();
    let rt = reg.resource_type("User").unwrap();
    let key = |v: serde_json::Value, path: &str| sort_key(&reg, rt, &v, &p(path));
    // userName is not caseExact; id is.
    assert_eq!(
        key(json!({"userName": "Ada"}), "userName"),
        Some(SortKey::Text("ada".into()))
    );
    // userName sorts by its uniqueness key, as the store's column does: full-width letters
    // and surrounding spaces do not move it.
    assert_eq!(
        key(json!({"userName": " ＡＤＡ "}), "userName"),
        key(json!({"userName": "ada"}), "userName")
    );
    assert_eq!(
        key(json!({"id": "Ab"}), "id"),
        Some(SortKey::Text("Ab".into()))
    );
    // dateTimes compare as instants, whatever their offset.
    let a = key(
        json!({"meta": {"created": "2020-01-01T01:00:00+01:00"}}),
        "meta.created",
    );
    let b = key(
        json!({"meta": {"created": "2020-01-01T00:00:00Z"}}),
        "meta.created",
    );
    let c = key(
        json!({"meta": {"created": "2020-01-01T00:30:00Z"}}),
        "meta.created",
    );
    assert_eq!(
        SortKey::order(a.as_ref(), b.as_ref(), false),
        Ordering::Equal
    );
    assert_eq!(
        SortKey::order(a.as_ref(), c.as_ref(), false),
        Ordering::Less
    );
    // Booleans, also when sent as strings; the primary element of a multi-valued attribute.
    assert_eq!(
        key(json!({"active": "True"}), "active"),
        Some(SortKey::Bool(true))
    );
    let emails = json!({"emails": [{"value": "z@x"}, {"value": "A@x", "primary": true}]});
    assert_eq!(
        key(emails.clone(), "emails"),
        Some(SortKey::Text("a@x".into()))
    );
    assert_eq!(
        key(emails, "emails.value"),
        Some(SortKey::Text("a@x".into()))
    );
    assert_eq!(
        key(
            json!({"emails": [{"value": "z@x"}, {"value": "b@x"}]}),
            "emails"
        ),
        Some(SortKey::Text("z@x".into()))
    );
    // A complex attribute without `value`, an empty list, or an undefined attribute: no key.
    assert_eq!(key(json!({"name": {"givenName": "A"}}), "name"), None);
    assert_eq!(key(json!({"emails": []}), "emails"), None);
    assert_eq!(key(json!({"nope": "x"}), "nope"), None);
    // A missing value is the greatest, in either direction.
    let some = Some(SortKey::Text("a".into()));
    assert_eq!(SortKey::order(some.as_ref(), None, false), Ordering::Less);
    assert_eq!(SortKey::order(some.as_ref(), None, true), Ordering::Greater);
    assert_eq!(SortKey::order(None, None, true), Ordering::Equal);
}
