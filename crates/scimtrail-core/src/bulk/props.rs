//! Property tests: any BulkRequest parses without panicking, and its schedule runs every
//! operation exactly once, each after what it refers to and what it must not overtake.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{parse_bulk, schedule};

fn arb_operation() -> impl Strategy<Value = Value> {
    let bulk_id = prop::sample::select(vec!["a", "b", "c", "d", "e"]);
    let reference = prop::sample::select(vec![
        "bulkId:a",
        "bulkId:b",
        "bulkId:c",
        "bulkId:d",
        "bulkId:e",
        "bulkId:zz",
        "plain",
    ]);
    (
        prop::sample::select(vec!["POST", "PUT", "PATCH", "DELETE", "GET", "post"]),
        prop::sample::select(vec![
            "/Users", "/Groups", "/Users/x", "/Users/", "Users", "/Bulk",
        ]),
        prop::option::of(bulk_id),
        prop::option::of(reference.clone()),
        prop::option::of(reference),
        prop::option::of(prop::sample::select(vec!["n1", "N1", "n2"])),
    )
        .prop_map(|(method, path, bulk_id, path_ref, data_ref, user_name)| {
            let path = match (path, path_ref) {
                (p, Some(r)) if p.ends_with('/') || p.ends_with('x') => {
                    format!("{}{r}", p.trim_end_matches('x'))
                }
                (p, _) => p.to_string(),
            };
            let mut data = json!({});
            if let Some(r) = data_ref {
                data["members"] = json!([{"value": r}]);
                data["Operations"] =
                    json!([{"op": "remove", "path": format!("members[value eq \"{r}\"]")}]);
            }
            if let Some(n) = user_name {
                data["userName"] = json!(n);
            }
            let mut op = json!({"method": method, "path": path, "data": data});
            if let Some(b) = bulk_id {
                op["bulkId"] = json!(b);
            }
            op
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn schedules_every_operation_once_after_what_it_waits_for(
        ops in prop::collection::vec(arb_operation(), 0..24),
        junk in prop::collection::vec(any::<i8>().prop_map(|n| json!(n)), 0..2),
    ) {
        let mut list = ops;
        list.extend(junk);
        let req = parse_bulk(&json!({"Operations": list}), 100).expect("a BulkRequest");
        let steps = schedule(&req.operations);
        let mut when: HashMap<usize, usize> = HashMap::new();
        for (k, s) in steps.iter().enumerate() {
            prop_assert!(when.insert(s.index, k).is_none(), "operation {} twice", s.index);
        }
        prop_assert_eq!(when.len(), req.operations.len());
        for s in &steps {
            for (j, _) in &s.after {
                prop_assert!(when[j] < when[&s.index], "{} before what it refers to", s.index);
                prop_assert!(*j != s.index);
            }
            for j in &s.follows {
                prop_assert!(when[j] < when[&s.index], "{} overtakes {}", s.index, j);
            }
            // An operation that cannot run waits for nothing.
            if s.error.is_some() {
                prop_assert!(s.after.is_empty());
            }
        }
    }

    #[test]
    fn bulk_parser_never_panics(body in any::<String>()) {
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            if let Ok(r) = parse_bulk(&v, 100) {
                let _ = schedule(&r.operations);
            }
        }
    }
}
