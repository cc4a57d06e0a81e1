//! The resource representation that filters see and clients receive (before projection).

use serde_json::{json, Map, Value};

use crate::{GroupRef, StoredResource};

/// `id` and `meta` around the stored form. `location` is left to the HTTP layer, which knows the
/// base URL; for filtering it is not needed.
pub fn representation(r: &StoredResource, groups: Option<&[GroupRef]>) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), Value::String(r.id.clone()));
    if let Value::Object(data) = &r.data {
        for (k, v) in data {
            obj.insert(k.clone(), v.clone());
        }
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
            "version": format!("W/\"{}\"", r.version),
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
