//! A PATCH body: parsing and applying it to a User and a Group never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimtrail_core::schema::Registry;
use scimtrail_core::{apply_patch, parse_patch};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(ops) = parse_patch(&body) else {
        return;
    };
    let reg = Registry::builtin();
    for (rt, resource) in [
        ("User", serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "a", "emails": [{"value": "a@x", "type": "work"}]})),
        ("Group", serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "g", "members": [{"value": "u1"}]})),
    ] {
        let rt = reg.resource_type(rt).expect("type");
        let _ = apply_patch(&reg, rt, &resource, &ops, "id-1");
    }
});
