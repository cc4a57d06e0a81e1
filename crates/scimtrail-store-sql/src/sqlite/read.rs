//! Reads: they run on the reader pool and never wait for the writer.

use std::collections::HashMap;

use scimtrail_core::{AttrPath, Filter, Registry};
use scimtrail_store::{
    representation, GroupRef, ListQuery, Member, Page, ResourceRef, StoreError, StoreResult,
    StoredResource,
};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::backend;
use crate::filter_sql::{conjuncts, to_sql, ColKind, Column, Param};

const COLUMNS: &str = "resource_type, id, version, created, last_modified, data";

fn stored(row: &SqliteRow) -> StoreResult<StoredResource> {
    let data: String = row.try_get("data").map_err(backend)?;
    Ok(StoredResource {
        resource_type: row.try_get("resource_type").map_err(backend)?,
        id: row.try_get("id").map_err(backend)?,
        version: row.try_get("version").map_err(backend)?,
        created: row.try_get("created").map_err(backend)?,
        last_modified: row.try_get("last_modified").map_err(backend)?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Backend(e.to_string()))?,
    })
}

pub async fn get(
    pool: &SqlitePool,
    tenant: &str,
    resource_type: &str,
    id: &str,
    with_members: bool,
) -> StoreResult<Option<StoredResource>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM resources \
         WHERE tenant = ? AND id = ? AND resource_type = ? AND deleted = 0"
    ))
    .bind(tenant)
    .bind(id)
    .bind(resource_type)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut r = stored(&row)?;
    if with_members && r.resource_type == "Group" {
        attach_members(pool, tenant, &mut r).await?;
    }
    Ok(Some(r))
}

async fn attach_members(
    pool: &SqlitePool,
    tenant: &str,
    r: &mut StoredResource,
) -> StoreResult<()> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT m.member_id, m.member_type, m.display FROM memberships m \
         JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND r.deleted = 0 \
         WHERE m.tenant = ? AND m.group_id = ?",
    )
    .bind(tenant)
    .bind(&r.id)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    if rows.is_empty() {
        return Ok(());
    }
    let members: Vec<Value> = rows
        .into_iter()
        .map(|(id, ty, display)| {
            let mut m = json!({"value": id});
            if let Some(d) = display {
                m["display"] = Value::String(d);
            }
            m["type"] = Value::String(ty);
            m
        })
        .collect();
    if let Some(obj) = r.data.as_object_mut() {
        obj.insert("members".into(), Value::Array(members));
    }
    Ok(())
}

/// The columns that resource filters can use directly.
fn resource_column(resource_type: &str, core_schema: &str, p: &AttrPath) -> Option<Column> {
    if p.urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(core_schema))
    {
        return None;
    }
    let col = |name, kind| Some(Column { name, kind });
    match (
        p.name.to_ascii_lowercase().as_str(),
        p.sub.as_deref().map(str::to_ascii_lowercase),
    ) {
        ("id", None) => col("id", ColKind::Text),
        ("externalid", None) => col("external_id", ColKind::Text),
        ("username", None) if resource_type == "User" => col("user_name_ci", ColKind::TextCi),
        ("displayname", None) => col("display_name_ci", ColKind::TextCi),
        ("meta", Some(s)) if s == "created" => col("created", ColKind::Time),
        ("meta", Some(s)) if s == "lastmodified" => col("last_modified", ColKind::Time),
        _ => None,
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for p in params {
        q = match p {
            Param::Text(s) => q.bind(s.as_str()),
            Param::Int(i) => q.bind(*i),
        };
    }
    q
}

pub async fn list(
    pool: &SqlitePool,
    registry: &Registry,
    tenant: &str,
    q: &ListQuery,
) -> StoreResult<Page> {
    let rt = registry.resource_type(&q.resource_type).ok_or_else(|| {
        StoreError::InvalidQuery(format!("unknown resource type {}", q.resource_type))
    })?;
    let mut sql = String::from("tenant = ? AND resource_type = ? AND deleted = 0");
    let mut params = vec![Param::Text(tenant.into()), Param::Text(rt.name.clone())];
    let mut residual: Vec<&Filter> = Vec::new();
    let column = |p: &AttrPath| resource_column(&rt.name, &rt.schema, p);
    for term in q.filter.as_ref().map(conjuncts).unwrap_or_default() {
        let (mut s, mut p) = (String::new(), Vec::new());
        if to_sql(term, &column, &mut s, &mut p).is_ok() {
            sql.push_str(" AND ");
            sql.push_str(&s);
            params.extend(p);
        } else {
            residual.push(term);
        }
    }
    let start = q.start_index.max(1) - 1;
    if residual.is_empty() {
        let total: i64 = bind_all(
            sqlx::query(&format!("SELECT COUNT(*) FROM resources WHERE {sql}")),
            &params,
        )
        .fetch_one(pool)
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
        let page_sql =
            format!("SELECT {COLUMNS} FROM resources WHERE {sql} ORDER BY rid LIMIT ? OFFSET ?");
        let rows = bind_all(sqlx::query(&page_sql), &params)
            .bind(q.count as i64)
            .bind(start as i64)
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        let mut items = rows.iter().map(stored).collect::<StoreResult<Vec<_>>>()?;
        if q.with_members {
            for r in items.iter_mut() {
                attach_members(pool, tenant, r).await?;
            }
        }
        return Ok(Page {
            total: total as usize,
            items,
        });
    }
    // Part of the filter has no column: evaluate it on the full representation.
    let rows = bind_all(
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM resources WHERE {sql} ORDER BY rid"
        )),
        &params,
    )
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let mut candidates = rows.iter().map(stored).collect::<StoreResult<Vec<_>>>()?;
    let groups = if rt.name == "User" {
        let ids: Vec<String> = candidates.iter().map(|r| r.id.clone()).collect();
        groups_of(pool, tenant, &ids).await?
    } else {
        HashMap::new()
    };
    let mut matched = Vec::new();
    for mut r in candidates.drain(..) {
        if rt.name == "Group" {
            attach_members(pool, tenant, &mut r).await?;
        }
        let repr = representation(&r, groups.get(&r.id).map(Vec::as_slice));
        if residual.iter().all(|f| f.matches(registry, rt, &repr)) {
            if !q.with_members {
                if let Some(obj) = r.data.as_object_mut() {
                    obj.remove("members");
                }
            }
            matched.push(r);
        }
    }
    let total = matched.len();
    let items = matched.into_iter().skip(start).take(q.count).collect();
    Ok(Page { total, items })
}

fn ids_json(ids: &[String]) -> String {
    Value::Array(ids.iter().map(|i| Value::String(i.clone())).collect()).to_string()
}

pub async fn groups_of(
    pool: &SqlitePool,
    tenant: &str,
    member_ids: &[String],
) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    if member_ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT m.member_id, m.group_id, json_extract(g.data, '$.displayName') \
         FROM memberships m \
         JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id AND g.deleted = 0 \
         WHERE m.tenant = ? AND m.member_id IN (SELECT value FROM json_each(?)) \
         ORDER BY g.rid",
    )
    .bind(tenant)
    .bind(ids_json(member_ids))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    for (member, group, display) in rows {
        out.entry(member)
            .or_default()
            .push(GroupRef { id: group, display });
    }
    Ok(out)
}

pub async fn lookup(
    pool: &SqlitePool,
    tenant: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, ResourceRef>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, resource_type, json_extract(data, '$.displayName'), \
         json_extract(data, '$.userName') FROM resources \
         WHERE tenant = ? AND deleted = 0 AND id IN (SELECT value FROM json_each(?))",
    )
    .bind(tenant)
    .bind(ids_json(ids))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(id, ty, dn, un)| {
            (
                id,
                ResourceRef {
                    resource_type: ty,
                    display: dn.or(un),
                },
            )
        })
        .collect())
}

pub async fn members(
    pool: &SqlitePool,
    tenant: &str,
    group: &str,
    ids: &[String],
) -> StoreResult<Vec<Member>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT member_id, member_type, display FROM memberships \
         WHERE tenant = ? AND group_id = ? AND member_id IN (SELECT value FROM json_each(?))",
    )
    .bind(tenant)
    .bind(group)
    .bind(ids_json(ids))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(value, resource_type, display)| Member {
            value,
            resource_type,
            display,
        })
        .collect())
}

pub async fn member_count(
    pool: &SqlitePool,
    tenant: &str,
    group: &str,
    limit: usize,
) -> StoreResult<usize> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM memberships WHERE tenant = ? AND group_id = ? LIMIT ?)",
    )
    .bind(tenant)
    .bind(group)
    .bind(limit as i64)
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(n as usize)
}
