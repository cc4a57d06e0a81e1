//! Attribute and PATCH paths, and attribute lists: parsing never panics, and prints back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimtrail_core::{AttrPath, PatchPath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = AttrPath::parse(text) {
        assert_eq!(AttrPath::parse(&p.to_string()).ok(), Some(p));
    }
    if let Ok(p) = PatchPath::parse(text) {
        assert_eq!(PatchPath::parse(&p.to_string()).ok(), Some(p));
    }
    let _ = scimtrail_core::parse_attr_list(text);
});
