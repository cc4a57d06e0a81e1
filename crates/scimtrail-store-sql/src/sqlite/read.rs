//! Reads: plain functions on one read-only connection, run through the reader pool.

use std::collections::HashMap;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use scimtrail_core::{AttrPath, Filter, Registry};
use scimtrail_store::{
    GroupRef, ListQuery, Member, Page, ResourceRef, StoreError, StoreResult, StoredResource,
};
use serde_json::{json, Value};

use super::functions;
use super::write::db;
use crate::filter_sql::{conjuncts, to_sql, ColKind, Column, Param};

const COLUMNS: &str = "resource_type, id, version, created, last_modified, data";

fn stored(row: &Row<'_>) -> rusqlite::Result<(StoredResource, String)> {
    Ok((
        StoredResource {
            resource_type: row.get(0)?,
            id: row.get(1)?,
            version: row.get(2)?,
            created: row.get(3)?,
            last_modified: row.get(4)?,
            data: Value::Null,
        },
        row.get(5)?,
    ))
}

fn parsed((mut r, data): (StoredResource, String)) -> StoreResult<StoredResource> {
    r.data = serde_json::from_str(&data).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(r)
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(s) => s.to_sql(),
            Param::Int(i) => i.to_sql(),
        }
    }
}

pub fn get(
    conn: &Connection,
    tenant: &str,
    resource_type: &str,
    id: &str,
    with_members: bool,
) -> StoreResult<Option<StoredResource>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM resources \
             WHERE tenant = ? AND id = ? AND resource_type = ? AND deleted = 0"
        ))
        .and_then(|mut s| {
            s.query_row(params![tenant, id, resource_type], stored)
                .optional()
        })
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let mut r = parsed(row)?;
    if with_members && r.resource_type == "Group" {
        attach_members(conn, tenant, &mut r)?;
    }
    Ok(Some(r))
}

/// Put a Group's live members into its data; answers about how many bytes they hold.
fn attach_members(conn: &Connection, tenant: &str, r: &mut StoredResource) -> StoreResult<usize> {
    let bytes = std::cell::Cell::new(0usize);
    let mut s = conn
        .prepare_cached(
            "SELECT m.member_id, m.member_type, m.display FROM memberships m \
             JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND r.deleted = 0 \
             WHERE m.tenant = ? AND m.group_id = ? ORDER BY m.member_id",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, r.id], |row| {
            let (id, ty, display): (String, String, Option<String>) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            bytes.set(
                bytes.get() + id.len() + ty.len() + display.as_ref().map_or(0, String::len) + 40,
            );
            let mut m = json!({"value": id});
            if let Some(d) = display {
                m["display"] = Value::String(d);
            }
            m["type"] = Value::String(ty);
            Ok(m)
        })
        .map_err(db)?;
    let members = rows.collect::<rusqlite::Result<Vec<Value>>>().map_err(db)?;
    if !members.is_empty() {
        if let Some(obj) = r.data.as_object_mut() {
            obj.insert("members".into(), Value::Array(members));
        }
    }
    Ok(bytes.get())
}

/// The columns that resource filters can use directly, on SQLite.
fn resource_column(resource_type: &str, core_schema: &str, p: &AttrPath) -> Option<Column> {
    // The stored form holds booleans as JSON booleans (the core normalises "True").
    resource_column_with(
        resource_type,
        core_schema,
        p,
        "json_extract(data, '$.active')",
    )
}

/// The columns that resource filters can use directly, with `active` the expression of a
/// User's `active` as 1 or 0.
pub(crate) fn resource_column_with(
    resource_type: &str,
    core_schema: &str,
    p: &AttrPath,
    active: &'static str,
) -> Option<Column> {
    if p.urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(core_schema))
    {
        return None;
    }
    let col = |name, kind| Some(Column::new(name, kind));
    match (
        p.name.to_ascii_lowercase().as_str(),
        p.sub.as_deref().map(str::to_ascii_lowercase),
    ) {
        ("id", None) => col("id", ColKind::Text),
        ("externalid", None) => col("external_id", ColKind::Text),
        ("username", None) if resource_type == "User" => col("user_name_ci", ColKind::UserName),
        ("displayname", None) => col("display_name_ci", ColKind::TextCi),
        ("meta", Some(s)) if s == "created" => col("created", ColKind::Time),
        ("meta", Some(s)) if s == "lastmodified" => col("last_modified", ColKind::Time),
        ("active", None) if resource_type == "User" => col(active, ColKind::Bool),
        _ => None,
    }
}

/// The SQL of one page of a list: its `WHERE`, `ORDER BY` and their parameters.
struct ListSql {
    filter: String,
    params: Vec<Param>,
    order: String,
    order_params: Vec<Param>,
}

impl ListSql {
    fn count(&self) -> (String, Vec<Param>) {
        (
            format!("SELECT COUNT(*) FROM resources WHERE {}", self.filter),
            self.params.clone(),
        )
    }

    fn page(&self, q: &ListQuery, resume: Option<i64>) -> (String, Vec<Param>) {
        let mut params = self.params.clone();
        // A cursor's position (or where the previous page of this startIndex walk ended):
        // the page starts after it, in the order of creation.
        let (after, offset) = match q.after.or(resume).filter(|_| q.sort.is_none()) {
            Some(rid) => {
                params.push(Param::Int(rid));
                (" AND rid > ?", 0)
            }
            None => ("", q.start_index.max(1) - 1),
        };
        // The key may appear twice in ORDER BY: its parameters are bound for each.
        params.extend(self.order_params.iter().cloned());
        params.extend(self.order_params.iter().cloned());
        params.push(Param::Int(q.count as i64));
        params.push(Param::Int(offset as i64));
        (
            format!(
                "SELECT {COLUMNS}, rid FROM resources WHERE {}{after} ORDER BY {} LIMIT ? OFFSET ?",
                self.filter, self.order
            ),
            params,
        )
    }
}

/// A top-level term on a User's `groups` or a Group's `members` by value (`groups.value eq`,
/// `members[value eq …]`): served by the membership table's keys instead of a scan.
pub(crate) fn membership_term(
    rt: &scimtrail_core::ResourceType,
    f: &Filter,
    tenant: &str,
) -> Option<(String, Vec<Param>)> {
    use scimtrail_core::{CompValue, CompareOp};
    let is_value = |p: &AttrPath| p.urn.is_none() && p.name.eq_ignore_ascii_case("value");
    let (path, value) = match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(v))
            if p.sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("value")) =>
        {
            (p, v)
        }
        Filter::ValuePath(p, inner) if p.sub.is_none() => match inner.as_ref() {
            Filter::Compare(ip, CompareOp::Eq, CompValue::String(v))
                if is_value(ip) && ip.sub.is_none() =>
            {
                (p, v)
            }
            _ => return None,
        },
        _ => return None,
    };
    if path
        .urn
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(&rt.schema))
    {
        return None;
    }
    // `value` is not caseExact, and ids are lower-case UUIDs: the operand is lower-cased.
    let params = vec![
        Param::Text(tenant.into()),
        Param::Text(value.to_lowercase()),
    ];
    let sql = match (rt.name.as_str(), path.name.to_ascii_lowercase().as_str()) {
        // By `rid`, so that the rows are looked up by key rather than the list walked.
        ("User", "groups") => {
            "rid IN (SELECT u.rid FROM memberships m \
             JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id AND g.deleted = 0 \
             JOIN resources u ON u.tenant = m.tenant AND u.id = m.member_id \
             WHERE m.tenant = ? AND m.group_id = ?)"
        }
        ("Group", "members") => {
            "rid IN (SELECT g.rid FROM memberships m \
             JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND r.deleted = 0 \
             JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = ? AND m.member_id = ?)"
        }
        _ => return None,
    };
    Some((sql.to_string(), params))
}

/// A necessary condition of a top-level term that compares a User's email by equality
/// (`emails.value eq`, `emails[type eq "work" and value eq …]`), served by `resource_emails`.
/// The term itself is still evaluated on the rows it leaves.
pub(crate) fn email_term(
    rt: &scimtrail_core::ResourceType,
    f: &Filter,
    tenant: &str,
) -> Option<(String, Vec<Param>)> {
    use scimtrail_core::{CompValue, CompareOp};
    if rt.name != "User" {
        return None;
    }
    let core = |p: &AttrPath| {
        p.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(&rt.schema))
            && p.name.eq_ignore_ascii_case("emails")
    };
    let value = match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(v))
            if core(p)
                && p.sub
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("value")) =>
        {
            v
        }
        Filter::ValuePath(p, inner) if core(p) && p.sub.is_none() => {
            conjuncts(inner).into_iter().find_map(|t| match t {
                Filter::Compare(ip, CompareOp::Eq, CompValue::String(v))
                    if ip.urn.is_none()
                        && ip.sub.is_none()
                        && ip.name.eq_ignore_ascii_case("value") =>
                {
                    Some(v)
                }
                _ => None,
            })?
        }
        _ => return None,
    };
    Some((
        "rid IN (SELECT rid FROM resource_emails WHERE tenant = ? AND value_ci = ?)".into(),
        vec![
            Param::Text(tenant.into()),
            Param::Text(value.to_lowercase()),
        ],
    ))
}

fn list_sql(registry: &Registry, tenant: &str, q: &ListQuery) -> StoreResult<ListSql> {
    let rt = registry.resource_type(&q.resource_type).ok_or_else(|| {
        StoreError::InvalidQuery(format!("unknown resource type {}", q.resource_type))
    })?;
    let mut sql = String::from("tenant = ? AND resource_type = ? AND deleted = 0");
    let mut params = vec![Param::Text(tenant.into()), Param::Text(rt.name.clone())];
    let mut residual: Vec<&Filter> = Vec::new();
    let column = |p: &AttrPath| resource_column(&rt.name, &rt.schema, p);
    for term in q.filter.as_ref().map(conjuncts).unwrap_or_default() {
        if let Some((s, p)) = membership_term(rt, term, tenant) {
            sql.push_str(" AND ");
            sql.push_str(&s);
            params.extend(p);
            continue;
        }
        if let Some((s, p)) = email_term(rt, term, tenant) {
            sql.push_str(" AND ");
            sql.push_str(&s);
            params.extend(p);
        }
        let (mut s, mut p) = (String::new(), Vec::new());
        if to_sql(term, &column, &mut s, &mut p).is_ok() {
            sql.push_str(" AND ");
            sql.push_str(&s);
            params.extend(p);
        } else {
            residual.push(term);
        }
    }
    // What no column serves is evaluated by the core's own evaluator, called by SQLite row by
    // row (`functions.rs`): the database still pages and counts, and only the page is read.
    if !residual.is_empty() {
        let rest = residual
            .iter()
            .map(|f| format!("({f})"))
            .collect::<Vec<_>>()
            .join(" and ");
        sql.push_str(&format!(
            " AND {}(?, {})",
            functions::MATCH,
            functions::row_args(functions::extra_for(&rt.name, &rest))
        ));
        params.push(Param::Text(rest));
    }
    // An order by a column is the database's index; by anything else, by the sort key the
    // core computes, in the query too (SQLite keeps only the first `start + count` rows).
    let mut order_params = Vec::new();
    let order = match &q.sort {
        None => "rid".to_string(),
        Some(sort) => {
            let dir = if sort.descending { " DESC" } else { "" };
            let key = match column(&sort.by).filter(|c| c.exists.is_none()) {
                Some(c) => c.name.to_string(),
                None => {
                    let path = sort.by.to_string();
                    let key = format!(
                        "{}(?, {})",
                        functions::SORT_KEY,
                        functions::row_args(functions::extra_for(&rt.name, &path))
                    );
                    order_params.push(Param::Text(path));
                    key
                }
            };
            // A missing value is the greatest; ties keep the order of creation.
            format!("{key} IS NULL{dir}, {key}{dir}, rid")
        }
    };
    Ok(ListSql {
        filter: sql,
        params,
        order,
        order_params,
    })
}

/// Totals of recent list queries, and where their pages ended, each valid while no resource
/// has changed since: paging through a broad filter then counts its matches once, not on
/// every page, and page `startIndex = n + count` starts after the last row of page `n` instead
/// of skipping `n + count - 1` rows, so reading a whole list by `startIndex` is linear, not
/// quadratic. The generation is the newest version snapshot's row (every resource write, in
/// any process, adds one), read before the query, so nothing is filed under a state older
/// than its own: with no write in between, the rows after the cached one are exactly those
/// at that offset. A write in between falls back to `OFFSET`.
#[derive(Default)]
pub struct CountCache {
    totals: std::sync::Mutex<HashMap<String, (i64, usize)>>,
    /// (count key, startIndex) → (generation, rid of the row just before that index).
    ends: std::sync::Mutex<HashMap<(String, usize), (i64, i64)>>,
    /// Pages that started after a cached row instead of an `OFFSET` (seen by tests).
    pub resumed: std::sync::atomic::AtomicU64,
}

impl CountCache {
    const MAX: usize = 256;

    /// The cached total of a count query at generation `now`.
    pub(crate) fn total(&self, key: &str, now: i64) -> Option<usize> {
        Self::get(&self.totals, &key.to_string(), now)
    }

    pub(crate) fn put_total(&self, key: String, now: i64, n: usize) {
        Self::put(&self.totals, key, now, n)
    }

    /// Where the page before `start_index` of a walk ended, at generation `now`.
    pub(crate) fn end(&self, key: &str, start_index: usize, now: i64) -> Option<i64> {
        Self::get(&self.ends, &(key.to_string(), start_index), now)
    }

    pub(crate) fn put_end(&self, key: String, start_index: usize, now: i64, rid: i64) {
        Self::put(&self.ends, (key, start_index), now, rid)
    }

    fn get<K: Eq + std::hash::Hash, V: Copy>(
        m: &std::sync::Mutex<HashMap<K, (i64, V)>>,
        key: &K,
        now: i64,
    ) -> Option<V> {
        m.lock()
            .ok()
            .and_then(|m| m.get(key).copied())
            .filter(|(g, _)| *g == now)
            .map(|(_, v)| v)
    }

    fn put<K: Eq + std::hash::Hash, V>(
        m: &std::sync::Mutex<HashMap<K, (i64, V)>>,
        key: K,
        now: i64,
        v: V,
    ) {
        if let Ok(mut m) = m.lock() {
            if m.len() >= CountCache::MAX {
                m.retain(|_, (g, _)| *g == now);
                if m.len() >= CountCache::MAX {
                    m.clear();
                }
            }
            m.insert(key, (now, v));
        }
    }
}

fn generation(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(rowid), 0) FROM resource_versions")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db)
}

pub fn list(
    conn: &Connection,
    registry: &Registry,
    counts: &CountCache,
    tenant: &str,
    q: &ListQuery,
) -> StoreResult<Page> {
    let plan = list_sql(registry, tenant, q)?;
    let (count_sql, count_params) = plan.count();
    let key = format!("{count_sql}\u{0}{count_params:?}");
    let now = generation(conn)?;
    let total = match CountCache::get(&counts.totals, &key, now) {
        Some(n) => n,
        None => {
            let n: i64 = conn
                .prepare_cached(&count_sql)
                .and_then(|mut s| s.query_row(params_from_iter(count_params.iter()), |r| r.get(0)))
                .map_err(db)?;
            CountCache::put(&counts.totals, key.clone(), now, n as usize);
            n as usize
        }
    };
    // Only the creation order (no sortBy) resumes by position; a cursor has its own.
    let walk = q.sort.is_none() && q.after.is_none();
    let resume = (walk && q.start_index > 1)
        .then(|| CountCache::get(&counts.ends, &(key.clone(), q.start_index), now))
        .flatten();
    if resume.is_some() {
        counts
            .resumed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let (page_sql, page_params) = plan.page(q, resume);
    let mut positions = Vec::new();
    let mut cut = false;
    let items = {
        let mut s = conn.prepare_cached(&page_sql).map_err(db)?;
        let rows = s
            .query_map(params_from_iter(page_params.iter()), |row| {
                Ok((stored(row)?, row.get::<_, i64>(6)?))
            })
            .map_err(db)?;
        let mut items = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let (r, rid) = row.map_err(db)?;
            let mut size = r.1.len();
            let mut r = parsed(r)?;
            if q.with_members {
                size += attach_members(conn, tenant, &mut r)?;
            }
            bytes += size;
            if bytes > scimtrail_store::PAGE_MAX_BYTES && !items.is_empty() {
                cut = true;
                break;
            }
            items.push(r);
            positions.push(rid);
        }
        items
    };
    if let (true, Some(last)) = (walk, positions.last()) {
        let next = q.start_index.max(1) + positions.len();
        CountCache::put(&counts.ends, (key, next), now, *last);
    }
    Ok(Page {
        total,
        items,
        positions,
        cut,
    })
}

/// SQLite's plan for a list's count and page queries (`EXPLAIN QUERY PLAN`, one line per
/// step), so that tests can prove which index serves a filter.
pub fn explain_list(
    conn: &Connection,
    registry: &Registry,
    tenant: &str,
    q: &ListQuery,
) -> StoreResult<Vec<String>> {
    let plan = list_sql(registry, tenant, q)?;
    super::events::plan_lines(conn, [plan.count(), plan.page(q, None)])
}

fn ids_json(ids: &[String]) -> String {
    Value::Array(ids.iter().map(|i| Value::String(i.clone())).collect()).to_string()
}

pub fn groups_of(
    conn: &Connection,
    tenant: &str,
    member_ids: &[String],
) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    if member_ids.is_empty() {
        return Ok(out);
    }
    let mut s = conn
        .prepare_cached(
            "SELECT m.member_id, m.group_id, json_extract(g.data, '$.displayName') \
             FROM memberships m \
             JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id AND g.deleted = 0 \
             WHERE m.tenant = ? AND m.member_id IN (SELECT value FROM json_each(?)) \
             ORDER BY g.rid",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, ids_json(member_ids)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(db)?;
    for row in rows {
        let (member, group, display) = row.map_err(db)?;
        out.entry(member)
            .or_default()
            .push(GroupRef { id: group, display });
    }
    Ok(out)
}

pub fn lookup(
    conn: &Connection,
    tenant: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, ResourceRef>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut s = conn
        .prepare_cached(
            "SELECT id, resource_type, json_extract(data, '$.displayName'), \
             json_extract(data, '$.userName') FROM resources \
             WHERE tenant = ? AND deleted = 0 AND id IN (SELECT value FROM json_each(?))",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, ids_json(ids)], |r| {
            let (dn, un): (Option<String>, Option<String>) = (r.get(2)?, r.get(3)?);
            Ok((
                r.get::<_, String>(0)?,
                ResourceRef {
                    resource_type: r.get(1)?,
                    display: dn.or(un),
                },
            ))
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<HashMap<_, _>>>()
        .map_err(db)
}

pub fn members(
    conn: &Connection,
    tenant: &str,
    group: &str,
    ids: &[String],
) -> StoreResult<Vec<Member>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut s = conn
        .prepare_cached(
            "SELECT member_id, member_type, display FROM memberships \
             WHERE tenant = ? AND group_id = ? AND member_id IN (SELECT value FROM json_each(?))",
        )
        .map_err(db)?;
    let rows = s
        .query_map(params![tenant, group, ids_json(ids)], |r| {
            Ok(Member {
                value: r.get(0)?,
                resource_type: r.get(1)?,
                display: r.get(2)?,
            })
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

pub fn member_count(
    conn: &Connection,
    tenant: &str,
    group: &str,
    limit: usize,
) -> StoreResult<usize> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM (SELECT 1 FROM memberships WHERE tenant = ? AND group_id = ? LIMIT ?)",
    )
    .and_then(|mut s| s.query_row(params![tenant, group, limit as i64], |r| r.get::<_, i64>(0)))
    .map(|n| n as usize)
    .map_err(db)
}
