//! Reads on PostgreSQL: resources, lists, memberships, history, the log and the tree.
//!
//! A list filter runs in SQL where a column serves it, as on SQLite. What is left over, which
//! SQLite evaluates row by row through the core's evaluator inside the query, is evaluated
//! here by the same evaluator over the rows the SQL part leaves, read in chunks in creation
//! order and bounded: a filter whose SQL part leaves more than [`EVALUATED_MAX`] rows is
//! refused with `tooMany`, never a long scan.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::GenericClient;
use scimtrail_audit::StoredPayload;
use scimtrail_core::{AttrPath, Filter, Registry, SortKey};
use scimtrail_store::{
    into_representation, EventPage, EventQuery, GroupRef, ListQuery, LogRow, Member, MemberChange,
    Page, ResourceRef, Snapshot, StatsRow, StoreError, StoreResult, StoredCheckpoint,
    StoredResource, VersionRecord,
};
use serde_json::Value;

use super::conn::{params, Db};
use super::write::PgTree;
use crate::event_query::{self, EventReader};
use crate::filter_sql::{conjuncts, to_sql, Column, Param};
use crate::sqlite::{merkle_err, CountCache};

type C<'a> = Db<'a, postgres::Client>;

/// The most rows the leftover part of a list filter, or a sort by an attribute without a
/// column, is evaluated on.
pub const EVALUATED_MAX: usize = 100_000;

const COLUMNS: &str = "resource_type, id, version, created, last_modified, data, rid";

fn stored(r: &postgres::Row) -> StoreResult<(StoredResource, i64, usize)> {
    let text: String = r.get(5);
    let data = serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok((
        StoredResource {
            resource_type: r.get(0),
            id: r.get(1),
            version: r.get(2),
            created: r.get(3),
            last_modified: r.get(4),
            data,
        },
        r.get(6),
        text.len(),
    ))
}

pub fn get(
    db: &mut C<'_>,
    tenant: &str,
    resource_type: &str,
    id: &str,
    with_members: bool,
) -> StoreResult<Option<StoredResource>> {
    let Some(row) = db.opt(
        &format!(
            "SELECT {COLUMNS} FROM resources \
             WHERE tenant = ? AND id = ? AND resource_type = ? AND NOT deleted"
        ),
        &[&tenant, &id, &resource_type],
    )?
    else {
        return Ok(None);
    };
    let (mut r, _, _) = stored(&row)?;
    if with_members && r.resource_type == "Group" {
        attach_members(db, tenant, &mut r)?;
    }
    Ok(Some(r))
}

fn live_members(db: &mut C<'_>, tenant: &str, group: &str) -> StoreResult<Vec<Member>> {
    Ok(db
        .rows(
            "SELECT m.member_id, m.member_type, m.display FROM memberships m \
             JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id AND NOT r.deleted \
             WHERE m.tenant = ? AND m.group_id = ? ORDER BY m.member_id",
            &[&tenant, &group],
        )?
        .iter()
        .map(|r| Member {
            value: r.get(0),
            resource_type: r.get(1),
            display: r.get(2),
        })
        .collect())
}

/// Put a Group's live members into its data; answers about how many bytes they hold.
fn attach_members(db: &mut C<'_>, tenant: &str, r: &mut StoredResource) -> StoreResult<usize> {
    let members = live_members(db, tenant, &r.id)?;
    let bytes = members
        .iter()
        .map(|m| m.value.len() + m.resource_type.len() + m.display.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + 40 * members.len();
    if !members.is_empty() {
        if let Some(obj) = r.data.as_object_mut() {
            let list = members.iter().map(Member::to_json).collect();
            obj.insert("members".into(), Value::Array(list));
        }
    }
    Ok(bytes)
}

fn resource_column(resource_type: &str, core_schema: &str, p: &AttrPath) -> Option<Column> {
    crate::sqlite::resource_column_with(resource_type, core_schema, p, "active")
}

/// The SQL part of a list: its `WHERE`, its parameters and what SQL cannot evaluate.
struct ListSql<'f> {
    filter: String,
    params: Vec<Param>,
    residual: Vec<&'f Filter>,
    /// The sort's column, when it has one.
    order: Option<&'static str>,
}

fn list_sql<'f>(rt: &scimtrail_core::ResourceType, tenant: &str, q: &'f ListQuery) -> ListSql<'f> {
    let mut sql = String::from("tenant = ? AND resource_type = ? AND NOT deleted");
    let mut ps = vec![Param::Text(tenant.into()), Param::Text(rt.name.clone())];
    let mut residual = Vec::new();
    let column = |p: &AttrPath| resource_column(&rt.name, &rt.schema, p);
    for term in q.filter.as_ref().map(conjuncts).unwrap_or_default() {
        if let Some((s, p)) = crate::sqlite::membership_term(rt, term, tenant) {
            sql.push_str(" AND ");
            let s = s
                .replace("g.deleted = 0", "NOT g.deleted")
                .replace("r.deleted = 0", "NOT r.deleted");
            sql.push_str(&s);
            ps.extend(p);
            continue;
        }
        if let Some((s, p)) = crate::sqlite::email_term(rt, term, tenant) {
            sql.push_str(" AND ");
            sql.push_str(&s);
            ps.extend(p);
        }
        let (mut s, mut p) = (String::new(), Vec::new());
        if to_sql(term, &column, &mut s, &mut p).is_ok() {
            sql.push_str(" AND ");
            sql.push_str(&s);
            ps.extend(p);
        } else {
            residual.push(term);
        }
    }
    let order = q
        .sort
        .as_ref()
        .and_then(|s| column(&s.by))
        .filter(|c| c.exists.is_none())
        .map(|c| c.name);
    ListSql {
        filter: sql,
        params: ps,
        residual,
        order,
    }
}

fn generation(db: &mut C<'_>) -> StoreResult<i64> {
    Ok(db.one("SELECT writes FROM log_head", &[])?.get(0))
}

pub fn list(
    db: &mut C<'_>,
    registry: &Registry,
    counts: &CountCache,
    tenant: &str,
    q: &ListQuery,
) -> StoreResult<Page> {
    let rt = registry.resource_type(&q.resource_type).ok_or_else(|| {
        StoreError::InvalidQuery(format!("unknown resource type {}", q.resource_type))
    })?;
    let plan = list_sql(rt, tenant, q);
    if !plan.residual.is_empty() || (q.sort.is_some() && plan.order.is_none()) {
        return evaluated(db, registry, rt, tenant, q, &plan);
    }
    let count_sql = format!("SELECT COUNT(*) FROM resources WHERE {}", plan.filter);
    let key = format!("{count_sql}\u{0}{:?}", plan.params);
    let now = generation(db)?;
    let total = match counts.total(&key, now) {
        Some(n) => n,
        None => {
            let n: i64 = db.one(&count_sql, &params(&plan.params))?.get(0);
            counts.put_total(key.clone(), now, n as usize);
            n as usize
        }
    };
    let walk = q.sort.is_none() && q.after.is_none();
    let resume = (walk && q.start_index > 1)
        .then(|| counts.end(&key, q.start_index, now))
        .flatten();
    if resume.is_some() {
        counts
            .resumed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let mut ps = plan.params.clone();
    let (after, offset) = match q.after.or(resume).filter(|_| q.sort.is_none()) {
        Some(rid) => {
            ps.push(Param::Int(rid));
            (" AND rid > ?", 0)
        }
        None => ("", q.start_index.max(1) - 1),
    };
    let order = match (&q.sort, plan.order) {
        (Some(s), Some(col)) => {
            let dir = if s.descending { " DESC" } else { "" };
            format!("{col} IS NULL{dir}, {col}{dir}, rid")
        }
        _ => "rid".into(),
    };
    ps.push(Param::Int(q.count as i64));
    ps.push(Param::Int(offset as i64));
    let rows = db.rows(
        &format!(
            "SELECT {COLUMNS} FROM resources WHERE {}{after} ORDER BY {order} LIMIT ? OFFSET ?",
            plan.filter
        ),
        &params(&ps),
    )?;
    let (items, positions, cut) = page_of(db, tenant, q, &rows)?;
    if let (true, Some(last)) = (walk, positions.last()) {
        let next = q.start_index.max(1) + positions.len();
        counts.put_end(key, next, now, *last);
    }
    Ok(Page {
        total,
        items,
        positions,
        cut,
    })
}

/// The rows of a page, with members if asked, cut at `PAGE_MAX_BYTES`.
fn page_of(
    db: &mut C<'_>,
    tenant: &str,
    q: &ListQuery,
    rows: &[postgres::Row],
) -> StoreResult<(Vec<StoredResource>, Vec<i64>, bool)> {
    let (mut items, mut positions) = (Vec::new(), Vec::new());
    let mut bytes = 0usize;
    for row in rows {
        let (mut r, rid, mut size) = stored(row)?;
        if q.with_members && r.resource_type == "Group" {
            size += attach_members(db, tenant, &mut r)?;
        }
        bytes += size;
        if bytes > scimtrail_store::PAGE_MAX_BYTES && !items.is_empty() {
            return Ok((items, positions, true));
        }
        items.push(r);
        positions.push(rid);
    }
    Ok((items, positions, false))
}

/// Whether a filter or path names what a representation derives from other tables.
fn names_derived(rt: &str, text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    match rt {
        "User" => t.contains("groups") || t.contains("version"),
        "Group" => t.contains("members"),
        _ => false,
    }
}

/// A list whose filter or sort SQL cannot evaluate: the core's evaluator over the rows the
/// SQL part leaves, at most [`EVALUATED_MAX`] of them.
fn evaluated(
    db: &mut C<'_>,
    reg: &Registry,
    rt: &scimtrail_core::ResourceType,
    tenant: &str,
    q: &ListQuery,
    plan: &ListSql<'_>,
) -> StoreResult<Page> {
    let rest: Option<Filter> = plan
        .residual
        .iter()
        .map(|f| (*f).clone())
        .reduce(|a, b| Filter::And(Box::new(a), Box::new(b)));
    let text = format!(
        "{} {}",
        rest.as_ref().map(ToString::to_string).unwrap_or_default(),
        q.sort
            .as_ref()
            .map(|s| s.by.to_string())
            .unwrap_or_default()
    );
    let derived = names_derived(&rt.name, &text);
    let mut matched: Vec<(Option<SortKey>, i64)> = Vec::new();
    let mut after = q.after.filter(|_| q.sort.is_none()).unwrap_or(0);
    let mut examined = 0usize;
    loop {
        let mut ps = plan.params.clone();
        ps.push(Param::Int(after));
        let rows = db.rows(
            &format!(
                "SELECT {COLUMNS} FROM resources WHERE {} AND rid > ? ORDER BY rid LIMIT 1000",
                plan.filter
            ),
            &params(&ps),
        )?;
        if rows.is_empty() {
            break;
        }
        examined += rows.len();
        if examined > EVALUATED_MAX {
            return Err(StoreError::TooMany(format!(
                "this filter or sortBy is evaluated on more than {EVALUATED_MAX} resources: \
                 narrow it with an indexed attribute (userName, externalId, displayName, \
                 emails.value, active, meta.lastModified, members.value)"
            )));
        }
        let mut chunk = Vec::with_capacity(rows.len());
        for row in &rows {
            chunk.push(stored(row)?);
        }
        after = chunk.last().map_or(after, |c| c.1);
        let groups = if derived && rt.name == "User" {
            let ids: Vec<String> = chunk.iter().map(|c| c.0.id.clone()).collect();
            groups_of(db, tenant, &ids)?
        } else {
            HashMap::new()
        };
        for (mut r, rid, _) in chunk {
            if derived && rt.name == "Group" {
                attach_members(db, tenant, &mut r)?;
            }
            let g = groups.get(&r.id).cloned().unwrap_or_default();
            let repr = into_representation(r, (rt.name == "User").then_some(g.as_slice()));
            if rest.as_ref().is_some_and(|f| !f.matches(reg, rt, &repr)) {
                continue;
            }
            let key = q
                .sort
                .as_ref()
                .and_then(|s| scimtrail_core::sort_key(reg, rt, &repr, &s.by));
            matched.push((key, rid));
        }
    }
    if let Some(sort) = &q.sort {
        // A missing value is the greatest; ties keep the order of creation.
        matched.sort_by(|(a, ra), (b, rb)| {
            let by = match (a, b) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(a), Some(b)) => a.total_cmp(b),
            };
            (if sort.descending { by.reverse() } else { by }).then(ra.cmp(rb))
        });
    }
    let total = matched.len();
    let skip = if q.after.is_some() && q.sort.is_none() {
        0
    } else {
        q.start_index.max(1) - 1
    };
    let page: Vec<i64> = matched
        .iter()
        .skip(skip)
        .take(q.count)
        .map(|m| m.1)
        .collect();
    let rows = db.rows(
        &format!("SELECT {COLUMNS} FROM resources WHERE rid = ANY(?)"),
        &[&page],
    )?;
    let mut by_rid: HashMap<i64, postgres::Row> =
        rows.into_iter().map(|r| (r.get::<_, i64>(6), r)).collect();
    let ordered: Vec<postgres::Row> = page.iter().filter_map(|rid| by_rid.remove(rid)).collect();
    let (items, positions, cut) = page_of(db, tenant, q, &ordered)?;
    Ok(Page {
        total,
        items,
        positions,
        cut,
    })
}

pub fn groups_of(
    db: &mut C<'_>,
    tenant: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = db.rows(
        "SELECT m.member_id, m.group_id, CAST(g.data AS json) ->> 'displayName' \
         FROM memberships m \
         JOIN resources g ON g.tenant = m.tenant AND g.id = m.group_id AND NOT g.deleted \
         WHERE m.tenant = ? AND m.member_id = ANY(?) ORDER BY g.rid",
        &[&tenant, &ids],
    )?;
    for r in rows {
        out.entry(r.get(0)).or_default().push(GroupRef {
            id: r.get(1),
            display: r.get(2),
        });
    }
    Ok(out)
}

pub fn lookup(
    db: &mut C<'_>,
    tenant: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, ResourceRef>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = db.rows(
        "SELECT id, resource_type, CAST(data AS json) ->> 'displayName', \
         CAST(data AS json) ->> 'userName' FROM resources \
         WHERE tenant = ? AND NOT deleted AND id = ANY(?)",
        &[&tenant, &ids],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let (dn, un): (Option<String>, Option<String>) = (r.get(2), r.get(3));
            (
                r.get(0),
                ResourceRef {
                    resource_type: r.get(1),
                    display: dn.or(un),
                },
            )
        })
        .collect())
}

pub fn members(
    db: &mut C<'_>,
    tenant: &str,
    group: &str,
    ids: &[String],
) -> StoreResult<Vec<Member>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db
        .rows(
            "SELECT member_id, member_type, display FROM memberships \
             WHERE tenant = ? AND group_id = ? AND member_id = ANY(?)",
            &[&tenant, &group, &ids],
        )?
        .iter()
        .map(|r| Member {
            value: r.get(0),
            resource_type: r.get(1),
            display: r.get(2),
        })
        .collect())
}

pub fn member_count(db: &mut C<'_>, tenant: &str, group: &str, limit: usize) -> StoreResult<usize> {
    let n: i64 = db
        .one(
            "SELECT COUNT(*) FROM (SELECT 1 FROM memberships WHERE tenant = ? AND group_id = ? \
             LIMIT ?) x",
            &[&tenant, &group, &(limit as i64)],
        )?
        .get(0);
    Ok(n as usize)
}

const VERSION_COLUMNS: &str = "resource_type, id, version, time, deleted, event_seq, data";

fn record(r: &postgres::Row) -> (VersionRecord, Option<String>) {
    (
        VersionRecord {
            resource_type: r.get(0),
            id: r.get(1),
            version: r.get(2),
            time: r.get(3),
            deleted: r.get(4),
            event_seq: r.get::<_, i64>(5) as u64,
        },
        r.get(6),
    )
}

pub fn versions(
    db: &mut C<'_>,
    tenant: &str,
    id: &str,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<VersionRecord>> {
    Ok(db
        .rows(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM resource_versions \
                 WHERE tenant = ? AND id = ? AND version > ? ORDER BY version LIMIT ?"
            ),
            &[&tenant, &id, &after, &(limit as i64)],
        )?
        .iter()
        .map(|r| record(r).0)
        .collect())
}

pub fn latest_version(
    db: &mut C<'_>,
    tenant: &str,
    id: &str,
) -> StoreResult<Option<VersionRecord>> {
    Ok(db
        .opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM resource_versions \
                 WHERE tenant = ? AND id = ? ORDER BY version DESC LIMIT 1"
            ),
            &[&tenant, &id],
        )?
        .map(|r| record(&r).0))
}

pub fn snapshot(
    db: &mut C<'_>,
    tenant: &str,
    id: &str,
    version: i64,
) -> StoreResult<Option<Snapshot>> {
    let Some(row) = db.opt(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM resource_versions \
             WHERE tenant = ? AND id = ? AND version = ?"
        ),
        &[&tenant, &id, &version],
    )?
    else {
        return Ok(None);
    };
    let (record, data) = record(&row);
    let data = data
        .map(|t| serde_json::from_str::<Value>(&t))
        .transpose()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(Some(Snapshot { record, data }))
}

fn member_of(r: &postgres::Row, at: usize) -> Member {
    Member {
        value: r.get(at),
        resource_type: r
            .get::<_, Option<String>>(at + 1)
            .unwrap_or_else(|| "User".into()),
        display: r.get(at + 2),
    }
}

pub fn members_at(
    db: &mut C<'_>,
    tenant: &str,
    group: &str,
    version: i64,
) -> StoreResult<Vec<Member>> {
    let Some(at) = db.opt(
        "SELECT event_seq FROM resource_versions WHERE tenant = ? AND id = ? AND version = ?",
        &[&tenant, &group, &version],
    )?
    else {
        return Ok(Vec::new());
    };
    let at: i64 = at.get(0);
    // As on SQLite: the last change of each member up to the version, if it is an add, minus
    // members whose resource was deleted when the version was written.
    Ok(db
        .rows(
            "SELECT mc.member_id, mc.member_type, mc.display FROM membership_changes mc \
             WHERE mc.tenant = ?1 AND mc.group_id = ?2 AND mc.version <= ?3 AND mc.op = 'add' \
             AND mc.version = (SELECT MAX(x.version) FROM membership_changes x \
                 WHERE x.tenant = ?1 AND x.group_id = ?2 AND x.member_id = mc.member_id \
                 AND x.version <= ?3) \
             AND NOT EXISTS (SELECT 1 FROM resource_versions rv \
                 WHERE rv.tenant = ?1 AND rv.id = mc.member_id AND rv.deleted \
                 AND rv.version = (SELECT MAX(y.version) FROM resource_versions y \
                     WHERE y.tenant = ?1 AND y.id = mc.member_id AND y.event_seq <= ?4)) \
             ORDER BY mc.member_id",
            &[&tenant, &group, &version, &at],
        )?
        .iter()
        .map(|r| member_of(r, 0))
        .collect())
}

pub fn member_changes(
    db: &mut C<'_>,
    tenant: &str,
    group: &str,
    from: i64,
    to: i64,
) -> StoreResult<Vec<MemberChange>> {
    Ok(db
        .rows(
            "SELECT version, op, member_id, member_type, display FROM membership_changes \
             WHERE tenant = ? AND group_id = ? AND version >= ? AND version <= ? \
             ORDER BY version, member_id",
            &[&tenant, &group, &from, &to],
        )?
        .iter()
        .map(|r| MemberChange {
            version: r.get(0),
            op: r.get(1),
            member: member_of(r, 2),
        })
        .collect())
}

fn log_row(r: &postgres::Row) -> LogRow {
    let salt: Option<Vec<u8>> = r.get(4);
    let vals: Option<String> = r.get(5);
    LogRow {
        seq: r.get::<_, i64>(0) as u64,
        tenant: r.get(1),
        commitment: r.get(2),
        leaf_hash: r.get(3),
        payload: match (salt, vals) {
            (Some(salt), Some(values)) => Some(StoredPayload { salt, values }),
            _ => None,
        },
    }
}

impl<G: GenericClient> EventReader for Db<'_, G> {
    const SQLITE: bool = false;

    fn hours(
        &mut self,
        tenant: &str,
        lo: &str,
        hi: &str,
    ) -> StoreResult<(Option<i64>, Option<i64>)> {
        let r = self.one(
            "SELECT min(min_seq), max(max_seq) FROM audit_hours \
             WHERE tenant = ? AND hour >= ? AND hour <= ?",
            &[&tenant, &lo, &hi],
        )?;
        Ok((r.get(0), r.get(1)))
    }

    fn last_seq(&mut self) -> StoreResult<Option<i64>> {
        Ok(self.one("SELECT max(seq) FROM audit_events", &[])?.get(0))
    }

    fn one_int(&mut self, sql: &str, ps: &[Param]) -> StoreResult<Option<i64>> {
        Ok(self.opt(sql, &params(ps))?.map(|r| r.get(0)))
    }

    fn log_rows(&mut self, sql: &str, ps: &[Param]) -> StoreResult<Vec<LogRow>> {
        Ok(self.rows(sql, &params(ps))?.iter().map(log_row).collect())
    }

    fn stats_rows(&mut self, sql: &str, ps: &[Param], n: usize) -> StoreResult<Vec<StatsRow>> {
        let rows = self.rows(sql, &params(ps))?;
        Ok(rows
            .iter()
            .map(|r| StatsRow {
                bucket: r.get(0),
                keys: (1..=n).map(|i| cell(r, i)).collect(),
                count: r.get::<_, i64>(n + 1) as u64,
            })
            .collect())
    }

    fn bucket_sql(b: Option<u64>) -> String {
        match b {
            Some(b) => format!(
                "(CAST(EXTRACT(EPOCH FROM CAST(substr(e.time, 1, 19) AS timestamp)) AS BIGINT) \
                 / {b}) * {b}"
            ),
            None => "CAST(NULL AS BIGINT)".into(),
        }
    }
}

/// A text or integer cell as JSON.
fn cell(r: &postgres::Row, i: usize) -> Value {
    if *r.columns()[i].type_() == postgres::types::Type::INT8 {
        r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::from)
    } else {
        r.get::<_, Option<String>>(i)
            .map_or(Value::Null, Value::String)
    }
}

pub fn events(db: &mut C<'_>, tenant: &str, q: &EventQuery, budget: u64) -> StoreResult<EventPage> {
    event_query::events(db, tenant, q, budget)
}

pub fn stats(
    db: &mut C<'_>,
    tenant: &str,
    q: &scimtrail_store::StatsQuery,
) -> StoreResult<Vec<StatsRow>> {
    event_query::stats(db, tenant, q)
}

pub fn events_at(db: &mut C<'_>, tenant: &str, seqs: &[u64]) -> StoreResult<Vec<Value>> {
    let seqs: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
    let rows = db.rows(
        &format!(
            "SELECT {} WHERE e.tenant = ? AND e.seq = ANY(?) ORDER BY e.seq",
            event_query::EVENT_COLUMNS
        ),
        &[&tenant, &seqs],
    )?;
    rows.iter()
        .map(|r| event_query::open_row(&log_row(r)))
        .collect()
}

pub fn leaf(db: &mut C<'_>, tenant: &str, id: &str) -> StoreResult<Option<LogRow>> {
    Ok(db
        .opt(
            &format!(
                "SELECT {} WHERE e.tenant = ? AND e.id = ?",
                event_query::EVENT_COLUMNS
            ),
            &[&tenant, &id],
        )?
        .map(|r| log_row(&r)))
}

pub fn event(db: &mut C<'_>, tenant: &str, id: &str) -> StoreResult<Option<Value>> {
    leaf(db, tenant, id)?
        .map(|r| event_query::open_row(&r))
        .transpose()
}

pub fn log_rows(
    db: &mut C<'_>,
    filter: Option<&Filter>,
    after: Option<u64>,
    limit: usize,
) -> StoreResult<Vec<LogRow>> {
    let (sql, ps) = event_query::log_rows_query(filter, after, limit)?;
    db.log_rows(&sql, &ps)
}

pub fn check_leaves(
    db: &mut C<'_>,
    from: u64,
    to: u64,
) -> StoreResult<scimtrail_audit::verify::CheckedChunk> {
    use scimtrail_audit::commitment::{index_key_push, LeafView};
    use scimtrail_audit::verify::{check_leaf, CheckedChunk, CheckedLeaf};
    let rows = db.rows(
        &format!(
            "SELECT {} WHERE e.seq >= ? AND e.seq < ? ORDER BY e.seq",
            event_query::CHECK_COLUMNS
        ),
        &[&(from as i64), &(to as i64)],
    )?;
    let mut leaves = Vec::with_capacity(rows.len());
    let mut key = String::with_capacity(512);
    for r in &rows {
        let seq = r.get::<_, i64>(0) as u64;
        let commitment: &str = r.get(2);
        let stored: Option<&[u8]> = r.get(3);
        let salt: Option<&[u8]> = r.get(4);
        let vals: Option<&[u8]> = r.get::<_, Option<&str>>(5).map(str::as_bytes);
        key.clear();
        for i in 6..6 + LeafView::INDEXED.len() {
            match cell(r, i) {
                Value::Null => index_key_push(&mut key, None),
                Value::String(s) => index_key_push(&mut key, Some(&s)),
                other => index_key_push(&mut key, Some(&other.to_string())),
            }
        }
        let payload = salt.zip(vals);
        let leaf = check_leaf(seq, commitment, stored, payload, Some(&key));
        leaves.push(CheckedLeaf { seq, leaf });
    }
    let first_index = scimtrail_audit::merkle::stored_index(0, from);
    let stored = stored_range(
        db,
        first_index,
        scimtrail_audit::merkle::stored_index(0, to),
    )?;
    Ok(CheckedChunk {
        leaves,
        first_index,
        stored,
    })
}

pub fn payload_seqs_from(db: &mut C<'_>, from: u64, limit: usize) -> StoreResult<Vec<u64>> {
    Ok(db
        .rows(
            "SELECT seq FROM audit_payloads WHERE seq >= ? ORDER BY seq LIMIT ?",
            &[&(from as i64), &(limit as i64)],
        )?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u64)
        .collect())
}

pub fn stored_range(db: &mut C<'_>, from: u64, to: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
    Ok(db
        .rows(
            "SELECT idx, hash FROM merkle_hashes WHERE idx >= ? AND idx < ? ORDER BY idx",
            &[&(from as i64), &(to as i64)],
        )?
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
        .collect())
}

pub fn tree_size(db: &mut C<'_>) -> StoreResult<u64> {
    Ok(db
        .one("SELECT next_seq FROM log_head", &[])?
        .get::<_, i64>(0) as u64)
}

fn within(db: &mut C<'_>, size: u64) -> StoreResult<()> {
    let have = tree_size(db)?;
    if size > have {
        return Err(StoreError::OutOfRange(format!(
            "tree size {size} is beyond the log, which has {have} events"
        )));
    }
    Ok(())
}

pub fn tree_root(db: &mut C<'_>, size: u64) -> StoreResult<[u8; 32]> {
    within(db, size)?;
    scimtrail_audit::merkle::root(size, &PgTree(RefCell::new(db))).map_err(merkle_err)
}

pub fn inclusions(db: &mut C<'_>, seqs: &[u64], size: u64) -> StoreResult<Vec<Vec<[u8; 32]>>> {
    within(db, size)?;
    let tree = PgTree(RefCell::new(db));
    seqs.iter()
        .map(|&s| scimtrail_audit::merkle::inclusion_proof(s, size, &tree).map_err(merkle_err))
        .collect()
}

pub fn consistency(db: &mut C<'_>, from: u64, to: u64) -> StoreResult<Vec<[u8; 32]>> {
    within(db, to)?;
    scimtrail_audit::merkle::consistency_proof(from, to, &PgTree(RefCell::new(db)))
        .map_err(merkle_err)
}

pub fn checkpoints(
    db: &mut C<'_>,
    before: Option<u64>,
    count: usize,
) -> StoreResult<Vec<StoredCheckpoint>> {
    let before = before.map(|b| b as i64).unwrap_or(i64::MAX);
    Ok(db
        .rows(
            "SELECT size, time, root, note FROM checkpoints WHERE size < ? \
             ORDER BY size DESC LIMIT ?",
            &[&before, &(count as i64)],
        )?
        .iter()
        .map(|r| {
            let root: Vec<u8> = r.get(2);
            StoredCheckpoint {
                size: r.get::<_, i64>(0) as u64,
                time: r.get(1),
                root: <[u8; 32]>::try_from(root.as_slice()).unwrap_or([0; 32]),
                note: r.get(3),
            }
        })
        .collect())
}
