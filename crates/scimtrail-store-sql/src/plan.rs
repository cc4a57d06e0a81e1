//! The write plan both SQL backends execute: which writes the current state allows, what a
//! write stores in each column and index table, and how a complete member list becomes a
//! member delta. Pure functions: each backend runs its own statements around them, so the
//! rules live once (issue #9).

use std::collections::HashMap;

use scimtrail_core::{Registry, UniqueValue};
use scimtrail_store::{Member, MemberDelta, ResourceWrite, StoreError, StoreResult, WriteKind};
use serde_json::Value;

/// A resource row as a write finds it.
pub struct Current<'a> {
    pub version: i64,
    pub deleted: bool,
    pub resource_type: &'a str,
}

/// Whether `w` may run against the row it finds, and the refusal if not. Also checks what the
/// caller hands the store: a new version one above the expected one (1 for a create).
pub fn check(w: &ResourceWrite, current: Option<Current<'_>>) -> StoreResult<()> {
    let expected_new = match w.kind {
        WriteKind::Create => 1,
        _ => w.expected_version.map_or(-1, |v| v + 1),
    };
    if w.new_version != expected_new {
        return Err(StoreError::Backend(format!(
            "write of {} names version {} after {:?}: a new version is the expected one plus one",
            w.id, w.new_version, w.expected_version
        )));
    }
    match (w.kind, current) {
        (WriteKind::Create, Some(_)) => Err(StoreError::Backend(format!(
            "resource id {} already exists",
            w.id
        ))),
        (WriteKind::Create, None) => Ok(()),
        // Only a tombstone at the version the undelete was planned from comes back.
        (WriteKind::Undelete, Some(c))
            if c.resource_type == w.resource_type
                && (!c.deleted || Some(c.version) != w.expected_version) =>
        {
            Err(StoreError::VersionConflict { current: c.version })
        }
        (WriteKind::Undelete, Some(c)) if c.resource_type == w.resource_type => Ok(()),
        (_, None) => Err(StoreError::NotFound),
        (_, Some(c)) if c.deleted => Err(StoreError::NotFound),
        // An id of another type is not found, as `get` with this type would say.
        (_, Some(c)) if c.resource_type != w.resource_type => Err(StoreError::NotFound),
        (_, Some(c)) if Some(c.version) != w.expected_version => {
            Err(StoreError::VersionConflict { current: c.version })
        }
        _ => Ok(()),
    }
}

/// What a write stores in the resource row.
pub struct Row {
    /// The stored form without Group members.
    pub data: Value,
    /// A Group's complete new member list, when the write carries one.
    pub members: Option<Value>,
    pub user_name_ci: Option<String>,
    pub external_id: Option<String>,
    pub display_ci: Option<String>,
    /// A User's `active` as 1 or 0 (absent: NULL).
    pub active: Option<i64>,
    pub text: String,
}

impl Row {
    pub fn of(w: &ResourceWrite) -> Row {
        let mut data = w.data.clone().unwrap_or(Value::Null);
        let members = match data.as_object_mut() {
            Some(obj) if w.resource_type == "Group" => obj.remove("members"),
            _ => None,
        };
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
        let user_name_ci = if w.resource_type == "User" {
            text("userName").map(|s| scimtrail_core::username::key(&s))
        } else {
            None
        };
        let active = match data.get("active") {
            Some(Value::Bool(b)) if w.resource_type == "User" => Some(i64::from(*b)),
            _ => None,
        };
        Row {
            external_id: text("externalId"),
            display_ci: text("displayName").map(|s| s.to_lowercase()),
            user_name_ci,
            active,
            text: data.to_string(),
            members,
            data,
        }
    }
}

/// The unique values (RFC 7643 §7 `uniqueness`) a write must hold in the store's index table,
/// other than a User's userName (its own column): `None` when the type has none, so the
/// index is left alone; an empty list for a delete, which releases them.
pub fn unique_rows(reg: &Registry, w: &ResourceWrite, data: &Value) -> Option<Vec<UniqueValue>> {
    let rt = reg.resource_type(&w.resource_type)?;
    if !scimtrail_core::has_unique(reg, rt) {
        return None;
    }
    if w.kind == WriteKind::Delete {
        return Some(Vec::new());
    }
    let values = scimtrail_core::unique_values(reg, rt, data);
    Some(
        values
            .into_iter()
            .filter(|v| !(rt.has_groups() && v.attribute == "userName"))
            .collect(),
    )
}

/// The refusal of a unique value another resource holds.
pub fn taken(v: &UniqueValue) -> StoreError {
    StoreError::Uniqueness(format!(
        "{} is already taken{}",
        v.attribute,
        if v.scope.is_none() {
            " (unique across every resource type)"
        } else {
            ""
        }
    ))
}

/// The case-insensitive email values of a User's stored form (`emails[].value`).
pub fn email_keys(data: &Value) -> Vec<String> {
    let mut keys: Vec<String> = data
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value")?.as_str())
        .map(str::to_lowercase)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The difference between a Group's live members (`existing`: id → type and display) and a
/// complete new member list. Members whose resource is deleted are hidden everywhere and not
/// in `existing`, so they are left alone, and restoring the resource later brings its
/// memberships back.
pub fn full_list_delta(
    mut existing: HashMap<String, (String, Option<String>)>,
    members: Option<&Value>,
) -> MemberDelta {
    let mut delta = MemberDelta::default();
    let empty = Vec::new();
    for m in members.and_then(Value::as_array).unwrap_or(&empty) {
        let Some(id) = m.get("value").and_then(Value::as_str) else {
            continue;
        };
        let ty = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("User")
            .to_string();
        let display = m.get("display").and_then(Value::as_str).map(str::to_string);
        match existing.remove(id) {
            Some(old) if old == (ty.clone(), display.clone()) => {}
            _ => delta.add.push(Member {
                value: id.to_string(),
                resource_type: ty,
                display,
            }),
        }
    }
    delta.remove = existing.into_keys().collect();
    delta.remove.sort();
    delta
}

/// The error of a delete that would leave its resource a member of a live Group: the caller
/// read the groups before another request added the resource to one, and must read again.
pub fn still_member(deleted_version: i64) -> StoreError {
    StoreError::VersionConflict {
        current: deleted_version - 1,
    }
}

/// The detail of a prune's own event.
pub fn prune_detail(before: &str, r: &scimtrail_store::PruneReport) -> String {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!(
            "{verb} the payloads of {} events older than {before} (seq {a} to {b})",
            r.payloads
        ),
        _ => format!("{verb} no payloads: none older than {before}"),
    }
}

/// Which of the active tokens found by id or name a revoke names (found in the order: the
/// one with that id first, then by creation): `Token` with the one to revoke, or the answer
/// when it is not exactly one.
pub fn revoke_choice(
    found: Vec<scimtrail_store::TokenInfo>,
    id_or_name: &str,
) -> scimtrail_store::Revoked {
    use scimtrail_store::Revoked;
    match found.as_slice() {
        [] => Revoked::NotFound,
        // An id names one token, even if other tokens carry it as their name.
        [first, ..] if first.id == id_or_name => Revoked::Token(first.clone()),
        [only] => Revoked::Token(only.clone()),
        _ => Revoked::Ambiguous(found),
    }
}

/// A token as listed, from its row.
pub fn token_info(
    (id, name, scopes, tenant, created, revoked): (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    ),
) -> scimtrail_store::TokenInfo {
    scimtrail_store::TokenInfo {
        id,
        name,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        tenant,
        created,
        revoked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(kind: WriteKind, expected: Option<i64>, new: i64) -> ResourceWrite {
        ResourceWrite {
            tenant: "t".into(),
            resource_type: "User".into(),
            id: "u1".into(),
            kind,
            expected_version: expected,
            new_version: new,
            time: "2026-01-01T00:00:00.000000Z".into(),
            data: Some(json!({"userName": "Bob", "active": true})),
            members: None,
        }
    }

    fn cur(version: i64, deleted: bool) -> Option<Current<'static>> {
        Some(Current {
            version,
            deleted,
            resource_type: "User",
        })
    }

    #[test]
    fn versions_must_follow_the_expected_one() {
        assert!(check(&w(WriteKind::Create, None, 1), None).is_ok());
        assert!(matches!(
            check(&w(WriteKind::Create, None, 2), None),
            Err(StoreError::Backend(_))
        ));
        assert!(check(&w(WriteKind::Replace, Some(3), 4), cur(3, false)).is_ok());
        assert!(matches!(
            check(&w(WriteKind::Replace, Some(3), 5), cur(3, false)),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            check(&w(WriteKind::Replace, Some(2), 3), cur(3, false)),
            Err(StoreError::VersionConflict { current: 3 })
        ));
        assert!(matches!(
            check(&w(WriteKind::Replace, Some(3), 4), cur(3, true)),
            Err(StoreError::NotFound)
        ));
        assert!(check(&w(WriteKind::Undelete, Some(3), 4), cur(3, true)).is_ok());
        assert!(matches!(
            check(&w(WriteKind::Undelete, Some(3), 4), cur(3, false)),
            Err(StoreError::VersionConflict { current: 3 })
        ));
    }

    #[test]
    fn rows_carry_their_keys() {
        let r = Row::of(&w(WriteKind::Create, None, 1));
        assert_eq!(r.user_name_ci.as_deref(), Some("bob"));
        assert_eq!(r.active, Some(1));
        let mut existing = HashMap::new();
        existing.insert("a".to_string(), ("User".to_string(), None));
        existing.insert("b".to_string(), ("User".to_string(), None));
        let d = full_list_delta(
            existing,
            Some(&json!([{"value": "a"}, {"value": "c", "type": "Group"}])),
        );
        assert_eq!(d.remove, vec!["b".to_string()]);
        assert_eq!(d.add.len(), 1);
        assert_eq!(d.add[0].value, "c");
    }
}
