//! Property tests: printing then parsing is the identity; the parser never panics.

use proptest::prelude::*;

use super::{and, or, user};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::path::AttrPath;
use crate::schema::{Registry, ENTERPRISE_USER_SCHEMA};

fn arb_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,6}"
}

fn arb_path(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
    let urn = prop_oneof![
        Just(None),
        Just(Some(
            "urn:ietf:params:scim:schemas:core:2.0:User".to_string()
        )),
        Just(Some(ENTERPRISE_USER_SCHEMA.to_string())),
    ];
    let sub = if allow_sub {
        prop::option::of(arb_name()).boxed()
    } else {
        Just(None).boxed()
    };
    (urn, arb_name(), sub).prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
}

fn arb_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::String),
    ]
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    use CompareOp::*;
    prop::sample::select(vec![Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le])
}

fn arb_filter(in_brackets: bool) -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        arb_path(true).prop_map(Filter::Present),
        (arb_path(true), arb_op(), arb_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ];
    leaf.prop_recursive(4, 24, 2, move |inner| {
        let mut options = vec![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| and(a, b))
                .boxed(),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| or(a, b))
                .boxed(),
            inner.clone().prop_map(|a| Filter::Not(Box::new(a))).boxed(),
        ];
        if !in_brackets {
            options.push(
                (arb_path(false), arb_filter(true))
                    .prop_map(|(p, f)| Filter::ValuePath(p, Box::new(f)))
                    .boxed(),
            );
        }
        prop::strategy::Union::new(options)
    })
    .boxed()
}

proptest! {
    #[test]
    fn print_then_parse_roundtrips(f in arb_filter(false)) {
        let text = f.to_string();
        prop_assert_eq!(Filter::parse(&text), Ok(f), "{}", text);
    }

    #[test]
    fn parser_never_panics(s in any::<String>()) {
        let _ = Filter::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_filterish_input(s in r#"[a-z.:\[\]() "\\0-9-]{0,80}"#) {
        if let Ok(f) = Filter::parse(&s) {
            let reg = Registry::builtin();
            let rt = reg.resource_type("User").expect("User");
            let _ = f.matches(&reg, rt, &user());
            prop_assert_eq!(Filter::parse(&f.to_string()), Ok(f));
        }
    }
}
