//! Property tests: PATCH bodies of any shape never panic the parser or the engine, and what
//! the engine answers is a valid stored form (normalising it again changes nothing).

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::patch::{apply_patch, parse_patch};
use crate::resource::normalize;
use crate::schema::{Registry, PATCH_OP_SCHEMA};

/// JSON values of the shapes PATCH bodies hold: attribute names and paths the schema knows
/// (and some it does not), value filters, nested objects and arrays, every scalar type.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "userName",
        "active",
        "emails",
        "value",
        "type",
        "primary",
        "name",
        "givenName",
        "members",
        "displayName",
        "title",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "manager",
        "nope",
        "id",
        "meta",
        "password",
        "schemas",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-zA-Z@. ]{0,8}".prop_map(Value::String),
        Just(json!("True")),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "userName",
            "active",
            "emails",
            "emails.value",
            "name.givenName",
            "members",
            "title",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "members[value eq \"u1\"]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "nope",
            "id",
            "meta.created",
            "password",
            "emails[",
            "]",
        ])
        .prop_map(str::to_string),
        r#"[a-zA-Z.\[\]" =]{0,20}"#,
    ])
}

fn arb_op() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["add", "Replace", "remove", "REMOVE", "move"]),
        arb_path(),
        prop::option::of(arb_json()),
    )
        .prop_map(|(op, path, value)| {
            let mut o = json!({"op": op});
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            if let Some(v) = value {
                o["value"] = v;
            }
            o
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patch_never_panics_and_answers_a_valid_stored_form(
        ops in prop::collection::vec(arb_op(), 0..5),
        group in any::<bool>(),
    ) {
        let reg = Registry::builtin();
        let (rt_name, resource) = if group {
            ("Group", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                             "displayName": "G", "members": [{"value": "u1"}]}))
        } else {
            ("User", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": "alice", "emails": [{"value": "a@x", "type": "work"}]}))
        };
        let rt = reg.resource_type(rt_name).expect("type");
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops});
        if let Ok(parsed) = parse_patch(&body) {
            if let Ok(out) = apply_patch(&reg, rt, &resource, &parsed, "id-1") {
                // What PATCH stores is what a PUT of it would store.
                let again = normalize(&reg, rt, &out.resource, Some("id-1"));
                prop_assert!(again.is_ok(), "{:?}", again.err());
                prop_assert_eq!(again.map(|n| n.resource).ok(), Some(out.resource));
            }
        }
    }

    #[test]
    fn patch_parser_never_panics_on_any_json(body in arb_json()) {
        let _ = parse_patch(&body);
    }
}
