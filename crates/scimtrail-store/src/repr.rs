//! The resource representation that filters see and clients receive (before projection).

use serde_json::{json, Map, Value};

use crate::{GroupRef, StoredResource};

/// `id` and `meta` around the stored form. `location` is left to the HTTP layer, which knows the
/// base URL; for filtering it is not needed.
pub fn representation(r: &StoredResource, groups: Option<&[GroupRef]>) -> Value {
    into_representation(r.clone(), groups)
}

/// [`representation`], taking the stored form instead of copying it (what a filter over many
/// rows wants: one parse per row and no copy).
pub fn into_representation(r: StoredResource, groups: Option<&[GroupRef]>) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), Value::String(r.id));
    if let Value::Object(data) = r.data {
        obj.extend(data);
    }
    if let Some(groups) = groups {
        if !groups.is_empty() {
            obj.insert("groups".into(), user_groups_json(groups, None));
        }
    }
    obj.insert(
        "meta".into(),
        json!({
            "resourceType": r.resource_type,
            "created": r.created,
            "lastModified": r.last_modified,
            "version": etag(r.version, groups),
        }),
    );
    Value::Object(obj)
}

/// The derived, read-only User `groups` attribute.
pub fn user_groups_json(groups: &[GroupRef], base_url: Option<&str>) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| {
                let mut m = Map::new();
                m.insert("value".into(), Value::String(g.id.clone()));
                if let Some(base) = base_url {
                    m.insert(
                        "$ref".into(),
                        Value::String(format!("{base}/Groups/{}", g.id)),
                    );
                }
                if let Some(d) = &g.display {
                    m.insert("display".into(), Value::String(d.clone()));
                }
                m.insert("type".into(), Value::String("direct".into()));
                Value::Object(m)
            })
            .collect(),
    )
}

/// A resource's ETag (and `meta.version`): `W/"version"`. A User's `groups` change without a
/// new version of the User, so a User in groups has `W/"version.groups"`, where `groups` is a
/// digest of its groups (FNV-1a, stable across processes and builds): a conditional GET then
/// never answers 304 over a change of groups. `If-Match` compares the version part alone.
pub fn etag(version: i64, groups: Option<&[GroupRef]>) -> String {
    match groups.filter(|g| !g.is_empty()) {
        None => format!("W/\"{version}\""),
        Some(groups) => {
            let mut sorted: Vec<&GroupRef> = groups.iter().collect();
            sorted.sort_by(|a, b| a.id.cmp(&b.id));
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for g in sorted {
                let display = g.display.as_deref().unwrap_or_default();
                for b in
                    g.id.bytes()
                        .chain([0xff])
                        .chain(display.bytes())
                        .chain([0xfe])
                {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            format!("W/\"{version}.{h:016x}\"")
        }
    }
}
