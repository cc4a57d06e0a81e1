//! Group members: each must name a live User or Group. Unknown ids are dropped, not fatal (Okta
//! does not retry a 400, so one stale id must not reject a whole push), and reported.

use std::collections::HashSet;

use scimtrail_core::ResourceType;
use serde_json::Value;

use crate::error::ApiError;
use crate::{AppState, Ctx};

/// A Group that lists itself as a member is refused.
pub fn not_itself(group_id: &str, member_id: &str) -> Result<(), ApiError> {
    if group_id == member_id {
        return Err(scimtrail_core::ScimError::invalid_value(
            "a group cannot be a member of itself",
        )
        .into());
    }
    Ok(())
}

/// Check and complete `members` in place (of Group `self_id`, once it has one); returns the
/// ids that were dropped.
pub async fn resolve(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    self_id: Option<&str>,
    data: &mut Value,
) -> Result<Vec<String>, ApiError> {
    if !rt.has_members() {
        return Ok(vec![]);
    }
    let Some(members) = data.get_mut("members").and_then(Value::as_array_mut) else {
        return Ok(vec![]);
    };
    if let Some(me) = self_id {
        for m in members.iter() {
            if let Some(v) = m.get("value").and_then(Value::as_str) {
                not_itself(me, v)?;
            }
        }
    }
    let ids: Vec<String> = members
        .iter()
        .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let known = state.store.lookup(&ctx.tenant, &ids).await?;
    let mut unknown = Vec::new();
    members.retain_mut(|m| {
        let Some(id) = m.get("value").and_then(Value::as_str).map(str::to_string) else {
            return false;
        };
        let Some(found) = known.get(&id) else {
            unknown.push(id);
            return false;
        };
        if let Some(obj) = m.as_object_mut() {
            obj.insert("type".into(), Value::String(found.resource_type.clone()));
            if !obj.contains_key("display") {
                if let Some(d) = &found.display {
                    obj.insert("display".into(), Value::String(d.clone()));
                }
            }
        }
        true
    });
    if members.is_empty() {
        if let Some(obj) = data.as_object_mut() {
            obj.remove("members");
        }
    }
    unknown.sort();
    unknown.dedup();
    Ok(unknown)
}

/// The note that goes into the response (`Warning` header) and the event's `outcome.detail`.
pub fn unknown_note(unknown: &[String]) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    // Ids come from the client: bounded in number and length, and header-safe.
    let shown: Vec<String> = unknown
        .iter()
        .take(20)
        .map(|id| {
            let mut safe: String = id
                .chars()
                .take(64)
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            if id.chars().count() > 64 {
                safe.push_str("...");
            }
            safe
        })
        .collect();
    let more = if unknown.len() > shown.len() {
        format!(" and {} more", unknown.len() - shown.len())
    } else {
        String::new()
    };
    Some(format!(
        "ignored {} unknown member id(s): {}{more}",
        unknown.len(),
        shown.join(", ")
    ))
}
