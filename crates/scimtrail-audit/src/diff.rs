//! Per-attribute changes between two stored forms of a resource.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::redact::REDACTED;

/// One changed attribute: `op` is add | replace | remove, `path` a SCIM attribute path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub op: String,
    pub path: String,
    pub old: Value,
    pub new: Value,
}

impl Change {
    /// A write to a secret attribute: recorded, but never with its value. `new` is what the
    /// value is masked to (`[REDACTED]`, or its keyed HMAC, so two writes of one value can be
    /// told from two different values). scimtrail does not store secrets, so whether it had a
    /// value before is unknown and shown as redacted.
    pub fn secret(path: &str, created: bool, new: Value) -> Change {
        let (op, old) = if created {
            ("add", Value::Null)
        } else {
            ("replace", REDACTED.into())
        };
        Change {
            op: op.into(),
            path: path.into(),
            old,
            new,
        }
    }
}

/// Changes from `old` to `new` (either may be absent: create, delete). Complex attributes and
/// extension objects are compared per sub-attribute; multi-valued attributes as a whole, except
/// Group `members`, which is compared per member `value`.
pub fn diff(old: Option<&Value>, new: Option<&Value>) -> Vec<Change> {
    let mut out = Vec::new();
    diff_object(
        old.unwrap_or(&Value::Null),
        new.unwrap_or(&Value::Null),
        "",
        false,
        &mut out,
    );
    out
}

/// `name` + `givenName` → `name.givenName`; an extension URN + `department` → `urn:…:department`.
fn child_path(prefix: &str, key: &str, prefix_is_extension: bool) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else if prefix_is_extension {
        format!("{prefix}:{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

fn diff_object(old: &Value, new: &Value, prefix: &str, is_ext: bool, out: &mut Vec<Change>) {
    let empty = serde_json::Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let skip = |k: &str| prefix.is_empty() && matches!(k, "schemas" | "id" | "meta");
    let keys = n.keys().chain(o.keys().filter(|k| !n.contains_key(*k)));
    for key in keys {
        if skip(key) {
            continue;
        }
        let path = child_path(prefix, key, is_ext);
        let child_is_ext = prefix.is_empty() && key.starts_with("urn:");
        let ov = o.get(key).unwrap_or(&Value::Null);
        let nv = n.get(key).unwrap_or(&Value::Null);
        if ov == nv {
            continue;
        }
        match (ov, nv) {
            (Value::Array(a), Value::Array(b)) if prefix.is_empty() && key == "members" => {
                diff_members(a, b, out)
            }
            (Value::Array(a), Value::Null) if prefix.is_empty() && key == "members" => {
                diff_members(a, &[], out)
            }
            (Value::Null, Value::Array(b)) if prefix.is_empty() && key == "members" => {
                diff_members(&[], b, out)
            }
            (Value::Object(_), Value::Object(_))
            | (Value::Object(_), Value::Null)
            | (Value::Null, Value::Object(_)) => diff_object(ov, nv, &path, child_is_ext, out),
            _ => out.push(change(path, ov, nv)),
        }
    }
}

fn change(path: String, old: &Value, new: &Value) -> Change {
    let op = match (old.is_null(), new.is_null()) {
        (true, _) => "add",
        (_, true) => "remove",
        _ => "replace",
    };
    Change {
        op: op.into(),
        path,
        old: old.clone(),
        new: new.clone(),
    }
}

fn member_key(m: &Value) -> Option<&str> {
    m.get("value").and_then(Value::as_str)
}

fn diff_members(old: &[Value], new: &[Value], out: &mut Vec<Change>) {
    use std::collections::HashMap;
    let old_by: HashMap<&str, &Value> = old
        .iter()
        .filter_map(|m| Some((member_key(m)?, m)))
        .collect();
    let new_by: HashMap<&str, &Value> = new
        .iter()
        .filter_map(|m| Some((member_key(m)?, m)))
        .collect();
    for m in new {
        let Some(k) = member_key(m) else { continue };
        match old_by.get(k) {
            None => out.push(change("members".into(), &Value::Null, m)),
            Some(o) if *o != m => out.push(change(
                format!("members[value eq {}]", Value::String(k.into())),
                o,
                m,
            )),
            Some(_) => {}
        }
    }
    for m in old {
        if let Some(k) = member_key(m) {
            if !new_by.contains_key(k) {
                out.push(change("members".into(), m, &Value::Null));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_update_delete() {
        let a = json!({"schemas": ["x"], "userName": "bob", "name": {"givenName": "Bob"}, "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}});
        let b = json!({"schemas": ["y"], "userName": "bob", "name": {"givenName": "Robert", "familyName": "J"}, "active": false,
            "emails": [{"value": "b@x"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops", "manager": {"value": "m2"}}});
        let c = diff(Some(&a), Some(&b));
        let got: Vec<(&str, &str)> = c.iter().map(|c| (c.op.as_str(), c.path.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("replace", "name.givenName"),
                ("add", "name.familyName"),
                ("replace", "active"),
                ("add", "emails"),
                (
                    "replace",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
                ),
                (
                    "replace",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
                ),
            ]
        );
        assert_eq!(c[2].old, json!(true));
        assert_eq!(c[2].new, json!(false));
        assert_eq!(diff(None, Some(&a)).len(), 5);
        assert!(diff(Some(&a), None).iter().all(|c| c.op == "remove"));
        assert!(diff(Some(&a), Some(&a)).is_empty());
    }

    #[test]
    fn members_per_value() {
        let a = json!({"members": [{"value": "1"}, {"value": "2"}]});
        let b = json!({"members": [{"value": "2"}, {"value": "3"}]});
        let c = diff(Some(&a), Some(&b));
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].op.as_str(), &c[0].new),
            ("add", &json!({"value": "3"}))
        );
        assert_eq!(
            (c[1].op.as_str(), &c[1].old),
            ("remove", &json!({"value": "1"}))
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Change::secret("password", true, json!(REDACTED));
        assert_eq!(c.new, json!(REDACTED));
        assert_eq!(c.old, Value::Null);
    }
}
