//! A BulkRequest: parsing and scheduling never panic, and the schedule runs each operation once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimtrail_core::bulk::{parse_bulk, schedule};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(req) = parse_bulk(&body, 10_000) else {
        return;
    };
    let steps = schedule(&req.operations);
    let mut seen = vec![false; req.operations.len()];
    for s in &steps {
        assert!(!seen[s.index], "operation {} scheduled twice", s.index);
        seen[s.index] = true;
    }
    assert!(seen.iter().all(|s| *s));
});
