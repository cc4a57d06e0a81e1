use super::*;
use crate::error::ScimType;
use crate::filter::{CompValue, CompareOp};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ap(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
    AttrPath {
        urn: urn.map(str::to_string),
        name: name.to_string(),
        sub: sub.map(str::to_string),
    }
}

#[test]
fn attr_paths() {
    let cases = [
        ("userName", ap(None, "userName", None)),
        ("name.givenName", ap(None, "name", Some("givenName"))),
        ("members.$ref", ap(None, "members", Some("$ref"))),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            ap(Some(ENT), "employeeNumber", None),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ap(Some(ENT), "manager", Some("value")),
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
            ap(
                Some("urn:ietf:params:scim:schemas:core:2.0:User"),
                "name",
                Some("familyName"),
            ),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(AttrPath::parse(text).as_ref(), Ok(&want), "{text}");
        assert_eq!(want.to_string(), text);
    }
    assert_eq!(
        AttrPath::parse(ENT).map(|p| p.as_urn()),
        Ok(Some(ENT.to_string()))
    );
}

#[test]
fn bad_attr_paths() {
    let long = "a".repeat(MAX_PATH_LEN + 1);
    for bad in [
        "",
        ".",
        "a.",
        ".a",
        "a.b.c",
        "1abc",
        "a b",
        ":name",
        "urn:x:",
        "na[me",
        "a.b c",
        "é",
        long.as_str(),
    ] {
        let e = AttrPath::parse(bad).expect_err(bad);
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
    }
}

#[test]
fn patch_paths() {
    let p = PatchPath::parse(r#"emails[type eq "work"].value"#).expect("valid");
    assert_eq!(p.attr, ap(None, "emails", None));
    assert_eq!(p.sub.as_deref(), Some("value"));
    assert_eq!(
        p.filter,
        Some(Filter::Compare(
            ap(None, "type", None),
            CompareOp::Eq,
            CompValue::String("work".into())
        ))
    );
    assert_eq!(p.to_string(), r#"emails[type eq "work"].value"#);

    let p = PatchPath::parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#)
        .expect("valid");
    assert_eq!((p.attr.name.as_str(), p.sub), ("members", None));

    // a ']' inside a string literal does not close the filter
    let p = PatchPath::parse(r#"emails[value eq "a]b"].display"#).expect("valid");
    assert_eq!(p.sub.as_deref(), Some("display"));

    let p = PatchPath::parse(&format!("{ENT}:manager.value")).expect("valid");
    assert_eq!(
        (p.attr, p.filter, p.sub),
        (ap(Some(ENT), "manager", Some("value")), None, None)
    );

    let p = PatchPath::parse(r#"addresses[type eq "work" and primary eq true].locality"#)
        .expect("valid");
    assert!(matches!(p.filter, Some(Filter::And(..))));
}

#[test]
fn bad_patch_paths() {
    for bad in [
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]value"#,
        r#"emails[type eq "work"].value.x"#,
        r#"emails[type zz "work"]"#,
        r#"emails[]"#,
        r#"name.givenName[value pr]"#,
        r#"emails[type eq "work"]]"#,
        r#"emails[value[type pr]]"#,
        r#"[type pr]"#,
    ] {
        let e = PatchPath::parse(bad).expect_err(bad);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidPath)),
            "{bad}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn path_parsers_never_panic(s in r#"[a-zA-Z.:\[\]"$ 0-9=-]{0,60}|\PC{0,60}"#) {
        if let Ok(p) = AttrPath::parse(&s) {
            proptest::prop_assert_eq!(AttrPath::parse(&p.to_string()), Ok(p));
        }
        if let Ok(p) = PatchPath::parse(&s) {
            proptest::prop_assert_eq!(PatchPath::parse(&p.to_string()), Ok(p));
        }
        let _ = crate::project::parse_attr_list(&s);
    }
}
