//! A filter: parsing never panics; what parses prints back to itself and evaluates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimtrail_core::schema::Registry;
use scimtrail_core::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = Filter::parse(text) {
        let printed = f.to_string();
        assert_eq!(Filter::parse(&printed).ok(), Some(f.clone()), "{printed}");
        let reg = Registry::builtin();
        let rt = reg.resource_type("User").expect("User");
        let user = serde_json::json!({"id": "1", "userName": "a", "active": true,
            "emails": [{"value": "a@x", "type": "work", "primary": true}],
            "meta": {"created": "2026-01-01T00:00:00Z"}});
        let _ = f.matches(&reg, rt, &user);
    }
});
