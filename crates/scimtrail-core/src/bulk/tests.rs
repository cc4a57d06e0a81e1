#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

#[path = "props.rs"]
mod props;

fn parse(v: Value) -> BulkRequest {
    parse_bulk(&v, 100).unwrap()
}

fn ops(list: Value) -> Vec<BulkOperation> {
    parse(json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": list})).operations
}

fn order(steps: &[Step]) -> Vec<usize> {
    steps.iter().map(|s| s.index).collect()
}

#[test]
fn reads_the_rfc_example() {
    // RFC 7644 §3.7.1's first example, trimmed.
    let r = parse(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"}},
            {"method": "PUT", "path": "/Users/b7c14771-226c-4d05-8860-134711653041",
             "version": "W/\"3694e05e9dff591\"",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                      "id": "b7c14771-226c-4d05-8860-134711653041", "userName": "Bob"}},
            {"method": "PATCH", "path": "/Users/5d8d29d3-342c-4b5f-8683-a3cb6763ffcc",
             "version": "W/\"edac3253e2c0ef2\"",
             "data": {"Operations": [{"op": "remove", "path": "nickName"}]}},
            {"method": "DELETE", "path": "/Users/e9025315-6bea-44e1-899c-1e07454e468b",
             "version": "W/\"0ee8add0a938e1a\""}
        ]
    }));
    assert_eq!(r.fail_on_errors, Some(1));
    let o = &r.operations;
    assert!(o.iter().all(|o| o.error.is_none()), "{o:?}");
    assert_eq!(o[0].method, Some(BulkMethod::Post));
    assert_eq!(
        (o[0].endpoint.as_str(), o[0].id.as_deref()),
        ("Users", None)
    );
    assert_eq!(o[0].bulk_id.as_deref(), Some("qwerty"));
    assert_eq!(
        o[1].id.as_deref(),
        Some("b7c14771-226c-4d05-8860-134711653041")
    );
    assert_eq!(o[1].version.as_deref(), Some("W/\"3694e05e9dff591\""));
    assert_eq!(o[3].method_text, "DELETE");
    assert!(o[3].data.is_none());
    assert_eq!(order(&schedule(o)), vec![0, 1, 2, 3]);
}

#[test]
fn refuses_the_request_only_for_faults_of_the_whole() {
    let err = |v: Value| parse_bulk(&v, 2).unwrap_err();
    let e = err(json!([]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = err(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = err(json!({"Operations": {}}));
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    for bad in [json!(0), json!(-1), json!(1.5), json!("1")] {
        let e = err(json!({"failOnErrors": bad, "Operations": []}));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }
    let three = json!({"Operations": [
        {"method": "DELETE", "path": "/Users/a"},
        {"method": "DELETE", "path": "/Users/b"},
        {"method": "DELETE", "path": "/Users/c"}]});
    let e = err(three);
    assert_eq!((e.status, e.scim_type), (413, Some(ScimType::TooMany)));
    // Case-insensitive names, no schemas: accepted.
    let r = parse_bulk(
        &json!({"operations": [{"METHOD": "delete", "Path": "/Users/a"}]}),
        2,
    )
    .unwrap();
    assert_eq!(r.operations[0].method, Some(BulkMethod::Delete));
    assert!(r.operations[0].error.is_none());
}

#[test]
fn faults_of_one_operation_stay_with_it() {
    let o = ops(json!([
        "not an object",
        {"method": "GET", "path": "/Users/a"},
        {"method": "POST", "path": "/Users", "data": {}},
        {"method": "POST", "path": "/Users/a", "bulkId": "x", "data": {}},
        {"method": "PATCH", "path": "/Users", "data": {}},
        {"method": "PUT", "path": "/Users/a"},
        {"method": "DELETE", "path": "Users/a"},
        {"method": "DELETE", "path": "/Users/a?attributes=id"},
        {"method": "DELETE", "path": "/Users//a"},
        {"method": 7, "path": "/Users/a"},
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "u"}},
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "v"}},
        {"method": "POST", "path": "/Users", "bulkId": 5, "data": {}},
    ]));
    let types: Vec<Option<ScimType>> = o
        .iter()
        .map(|o| o.error.as_ref().and_then(|e| e.scim_type))
        .collect();
    use ScimType::{InvalidSyntax as S, InvalidValue as V};
    assert_eq!(
        types,
        vec![
            Some(S),
            Some(V),
            Some(V),
            Some(V),
            Some(V),
            Some(S),
            Some(V),
            Some(V),
            Some(V),
            Some(S),
            None,
            Some(V),
            Some(S)
        ]
    );
    // What could be read is kept for the response.
    assert_eq!(o[1].method_text, "GET");
    assert_eq!(o[3].bulk_id.as_deref(), Some("x"));
    assert!(o[11]
        .error
        .as_ref()
        .unwrap()
        .detail
        .contains("operation 10"));
}

#[test]
fn runs_each_operation_after_what_it_refers_to() {
    // A group listing users created after it in the request, and a PATCH of a user by bulkId
    // before the user's POST.
    let o = ops(json!([
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"displayName": "G", "members": [{"value": "bulkId:a"}, {"value": "bulkId:b"}]}},
        {"method": "PATCH", "path": "/Users/bulkId:a",
         "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a"}},
        {"method": "DELETE", "path": "/Users/plain"},
        {"method": "POST", "path": "/Users", "bulkId": "b",
         "data": {"userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                  {"manager": {"value": "BULKID:a"}}}},
    ]));
    let steps = schedule(&o);
    assert_eq!(order(&steps), vec![2, 1, 3, 4, 0]);
    let of = |i: usize| steps.iter().find(|s| s.index == i).unwrap();
    assert_eq!(of(0).after, vec![(2, "a".into()), (4, "b".into())]);
    assert_eq!(of(1).after, vec![(2, "a".into())]);
    assert_eq!(of(4).after, vec![(2, "a".into())]);
    assert!(steps.iter().all(|s| s.error.is_none()));

    let mut data = o[0].data.clone().unwrap();
    let ids: HashMap<String, String> = [("a".to_string(), "id-a".to_string())].into();
    substitute(&mut data, &ids);
    assert_eq!(
        data["members"],
        json!([{"value": "id-a"}, {"value": "bulkId:b"}])
    );
}

#[test]
fn references_that_cannot_resolve_are_errors() {
    let o = ops(json!([
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"displayName": "1", "members": [{"value": "bulkId:g2"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "g2",
         "data": {"displayName": "2", "members": [{"value": "bulkId:g1"}]}},
        {"method": "DELETE", "path": "/Groups/bulkId:g2"},
        {"method": "DELETE", "path": "/Users/bulkId:nobody"},
        {"method": "POST", "path": "/Users", "bulkId": "me", "data": {"userName": "bulkId:me"}},
        {"method": "POST", "path": "/Users", "bulkId": "free", "data": {"userName": "f"}},
    ]));
    let steps = schedule(&o);
    assert_eq!(order(&steps), vec![3, 4, 5, 0, 1, 2]);
    let status = |i: usize| {
        let s = steps.iter().find(|s| s.index == i).unwrap();
        s.error.as_ref().map(|e| (e.status, e.scim_type))
    };
    assert_eq!(status(3), Some((400, Some(ScimType::InvalidValue))));
    assert_eq!(status(4), Some((409, None)));
    assert_eq!(status(5), None);
    for i in [0, 1, 2] {
        assert_eq!(status(i), Some((409, None)), "operation {i}");
    }
}

#[test]
fn schedules_any_input_without_losing_an_operation() {
    // A chain sent backwards: every operation is scheduled exactly once, each after its
    // predecessor.
    let n = 500;
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let mut data = json!({"userName": format!("u{i}")});
            if i + 1 < n {
                data["x"] = json!(format!("bulkId:b{}", i + 1));
            }
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": data})
        })
        .collect();
    let o = parse_bulk(&json!({"Operations": list}), n)
        .unwrap()
        .operations;
    let got = order(&schedule(&o));
    assert_eq!(got, (0..n).rev().collect::<Vec<_>>());
}

#[test]
fn operations_on_one_resource_or_user_name_follow_each_other() {
    let o = ops(json!([
        {"method": "PATCH", "path": "/Users/x", "data": {"Operations": []}},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "Same"}},
        {"method": "PUT", "path": "/users/x", "data": {"userName": "other"}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"USERNAME": "same"}},
        {"method": "DELETE", "path": "/Users/bulkId:a"},
        {"method": "PATCH", "path": "/Users/bulkId:a", "data": {"Operations": []}},
        {"method": "DELETE", "path": "/Groups/x"},
    ]));
    let steps = schedule(&o);
    let follows = |i: usize| steps.iter().find(|s| s.index == i).unwrap().follows.clone();
    assert_eq!(follows(0), Vec::<usize>::new());
    assert_eq!(
        follows(2),
        vec![0],
        "the same resource, whatever the endpoint's case"
    );
    assert_eq!(follows(3), vec![1], "the same userName key");
    assert_eq!(follows(4), vec![1], "the resource its bulkId names");
    assert_eq!(follows(5), vec![4]);
    assert_eq!(
        follows(6),
        Vec::<usize>::new(),
        "a Group x is another resource"
    );
}

#[test]
fn references_inside_patch_paths_resolve_too() {
    let o = ops(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "u"}},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"displayName": "g", "members": [{"value": "bulkId:u"}]}},
        {"method": "PATCH", "path": "/Groups/bulkId:g",
         "data": {"Operations": [{"op": "remove",
                                  "path": "members[value eq \"bulkId:u\" or value eq \"bulkId:u\"]"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "h",
         "data": {"displayName": "He said \"bulkId:nothing\""}},
    ]));
    let steps = schedule(&o);
    let of = |i: usize| steps.iter().find(|s| s.index == i).unwrap();
    assert_eq!(of(2).after, vec![(1, "g".into()), (0, "u".into())]);
    // Only a path is read for quoted references: a display name is text.
    assert!(of(3).error.is_none());
    let mut data = o[2].data.clone().unwrap();
    let ids: HashMap<String, String> = [("u".to_string(), "id-1".to_string())].into();
    substitute(&mut data, &ids);
    assert_eq!(
        data["Operations"][0]["path"],
        "members[value eq \"id-1\" or value eq \"id-1\"]"
    );
}

#[test]
fn a_bulk_id_declared_twice_cannot_be_referred_to() {
    let o = ops(json!([
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "a"}},
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "b"}},
        {"method": "DELETE", "path": "/Users/bulkId:d"},
    ]));
    let steps = schedule(&o);
    let e = steps
        .iter()
        .find(|s| s.index == 2)
        .unwrap()
        .error
        .clone()
        .unwrap();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("more than one"));
}

#[test]
fn writes_that_may_free_a_user_name_run_alone() {
    let o = ops(json!([
        {"method": "DELETE", "path": "/Groups/x"},
        {"method": "PUT", "path": "/Users/x", "data": {"userName": "n"}},
        {"method": "PUT", "path": "/Groups/x", "data": {"displayName": "n"}},
        {"method": "PATCH", "path": "/Users/x",
         "data": {"Operations": [{"op": "replace", "path": "UserName", "value": "n"}]}},
        {"method": "PATCH", "path": "/Users/x",
         "data": {"Operations": [{"op": "replace", "value": {"USERNAME": "n"}}]}},
        {"method": "PATCH", "path": "/Users/x",
         "data": {"Operations": [{"op": "replace",
                                  "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                                  "value": "n"}]}},
        {"method": "PATCH", "path": "/Users/x",
         "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "n"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "p", "data": {"userName": "n"}},
    ]));
    let alone: Vec<bool> = schedule(&o).iter().map(|s| s.alone).collect();
    assert_eq!(alone, [true, true, false, true, true, true, false, false]);
}
