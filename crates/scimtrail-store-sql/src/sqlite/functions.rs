//! SQL functions that run the core's filter evaluator and sort keys inside SQLite, so that the
//! part of a list filter no column serves is evaluated row by row in the query itself: the
//! database pages, counts and sorts, and only the page of results reaches memory.
//!
//! Both take the row as `(filter or path, resource_type, id, version, created, last_modified,
//! data, extra)`, where `extra` is the JSON of what the representation derives from other
//! tables, or NULL when the filter does not name it: a User's groups as `[{id, display}]`, a
//! Group's members as `[{value, display, type}]`.

use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::Connection;
use scimtrail_core::{AttrPath, Filter, Registry, SortKey};
use scimtrail_store::{into_representation, GroupRef, StoredResource};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `scim_match(filter, …row)`: 1 when the row matches the printed filter, else 0.
pub const MATCH: &str = "scim_match";
/// `scim_sort_key(path, …row)`: the row's sort key for `sortBy` = path, NULL when it has none.
pub const SORT_KEY: &str = "scim_sort_key";

/// The row arguments after the first, as SQL (the table must be `resources`).
pub fn row_args(extra: &str) -> String {
    format!(
        "resources.resource_type, resources.id, resources.version, resources.created, \
         resources.last_modified, resources.data, {extra}"
    )
}

/// The `extra` argument for a resource type when `text` (a filter or path) names what it
/// derives, else `NULL`.
pub fn extra_for(resource_type: &str, text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    match resource_type {
        // `meta.version` is the ETag, which covers a User's groups.
        "User" if t.contains("groups") || t.contains("version") => {
            "(SELECT json_group_array(json_object('id', m.group_id, 'display', \
             json_extract(g.data, '$.displayName')) ORDER BY g.rid) FROM memberships m \
             JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id AND g.deleted = 0 \
             WHERE m.tenant = resources.tenant AND m.member_id = resources.id)"
        }
        "Group" if t.contains("members") => {
            "(SELECT json_group_array(json_object('value', m.member_id, 'display', m.display, \
             'type', m.member_type) ORDER BY m.member_id) FROM memberships m \
             JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND r.deleted = 0 \
             WHERE m.tenant = resources.tenant AND m.group_id = resources.id)"
        }
        _ => "NULL",
    }
}

pub fn register(conn: &Connection, registry: Arc<Registry>) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let reg = registry.clone();
    conn.create_scalar_function(MATCH, 8, flags, move |ctx| {
        let filter = ctx.get_or_create_aux(0, |v: ValueRef<'_>| -> Result<Filter, BoxError> {
            Ok(Filter::parse(v.as_str()?).map_err(|e| e.detail)?)
        })?;
        let Some((rt, repr)) = row(ctx, &reg)? else {
            return Ok(false);
        };
        Ok(filter.matches(&reg, rt, &repr))
    })?;
    let reg = registry;
    conn.create_scalar_function(SORT_KEY, 8, flags, move |ctx| {
        let path = ctx.get_or_create_aux(0, |v: ValueRef<'_>| -> Result<AttrPath, BoxError> {
            Ok(AttrPath::parse(v.as_str()?).map_err(|e| e.detail)?)
        })?;
        let Some((rt, repr)) = row(ctx, &reg)? else {
            return Ok(ToSqlOutput::Owned(SqlValue::Null));
        };
        Ok(ToSqlOutput::Owned(
            match scimtrail_core::sort_key(&reg, rt, &repr, &path) {
                None => SqlValue::Null,
                Some(SortKey::Bool(b)) => SqlValue::Integer(i64::from(b)),
                Some(SortKey::Number(n)) => SqlValue::Real(n),
                Some(SortKey::Time(t)) => {
                    SqlValue::Integer(i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX))
                }
                Some(SortKey::Text(s)) => SqlValue::Text(s),
            },
        ))
    })
}

fn user_err(e: impl Into<BoxError>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(e.into())
}

/// The representation a filter sees, built from the row's arguments.
fn row<'r>(
    ctx: &Context<'_>,
    reg: &'r Registry,
) -> rusqlite::Result<Option<(&'r scimtrail_core::ResourceType, Value)>> {
    let resource_type: String = ctx.get(1)?;
    let Some(rt) = reg.resource_type(&resource_type) else {
        return Ok(None);
    };
    let data: String = ctx.get(6)?;
    let mut r = StoredResource {
        resource_type,
        id: ctx.get(2)?,
        version: ctx.get(3)?,
        created: ctx.get(4)?,
        last_modified: ctx.get(5)?,
        data: serde_json::from_str(&data).map_err(user_err)?,
    };
    let extra: Option<String> = ctx.get(7)?;
    let mut groups: Option<Vec<GroupRef>> = None;
    if let Some(extra) = extra {
        let list: Vec<Value> = serde_json::from_str(&extra).map_err(user_err)?;
        if rt.name == "User" {
            groups = Some(
                list.iter()
                    .filter_map(|g| {
                        Some(GroupRef {
                            id: g.get("id")?.as_str()?.to_string(),
                            display: g.get("display").and_then(Value::as_str).map(str::to_string),
                        })
                    })
                    .collect(),
            );
        } else if !list.is_empty() {
            let members: Vec<Value> = list
                .into_iter()
                .map(|mut m| {
                    if let Some(o) = m.as_object_mut() {
                        o.retain(|_, v| !v.is_null());
                    }
                    m
                })
                .collect();
            if let Some(o) = r.data.as_object_mut() {
                o.insert("members".into(), Value::Array(members));
            }
        }
    }
    Ok(Some((rt, into_representation(r, groups.as_deref()))))
}
