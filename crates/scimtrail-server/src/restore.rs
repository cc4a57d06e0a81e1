//! Restore and revert: undoing provisioning as one safe, audited operation.
//!
//! * **Restore** (`POST /audit/v1/resources/{type}/{id}/restore`) writes the state of version N
//!   as a new version, undeleting a tombstone under the same id and bringing back the
//!   memberships its delete removed, where those groups still exist.
//! * **Revert** (`POST /audit/v1/revert`) undoes every change an event filter matches. Per
//!   resource and per attribute path (and per Group member), the value goes back to what it was
//!   before the earliest matched change; a later change of the same path by an event the filter
//!   did not match is a conflict, which stops the revert unless `force` is given. A matched
//!   create is undone by a delete, a matched delete by an undelete (with the memberships its
//!   delete removed).
//!
//! Both plan from version snapshots and `membership_changes` (never from event payloads, which
//! a prune may have removed), answer the plan for a dry run, and apply it through
//! `Store::write_all`: one transaction, guarded by the version each resource was planned from
//! (412 and nothing changed when another write came first), one event per resource linked to
//! the operation's event. Passwords and other secrets were never stored: they are listed as
//! not restorable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use scimtrail_audit::Change;
use scimtrail_core::{Filter, ResourceType, ScimError};
use scimtrail_store::{
    EventQuery, Member, MemberDelta, ResourceWrite, StoreError, StoredResource, VersionRecord,
    WriteKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::audit_api::json_response;
use crate::context::{EventInfo, Recorded};
use crate::error::{scim_response, ApiError, Path};
use crate::history::{changes_between, history_type, latest, members_at, snapshot, with_members};
use crate::scim::render;
use crate::{AppState, Ctx};

/// Most events a revert filter may scan before it must be narrowed.
const SCAN_LIMIT: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub resource_type: String,
    pub id: String,
    /// userNameTaken | uniqueValueTaken | memberGone | groupGone | laterChange | deletedLater
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub detail: String,
    /// Stops the operation (unless `force`, for a revert's later changes).
    pub blocking: bool,
}

/// One resource's part of a plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub resource_type: String,
    pub id: String,
    /// update | undelete | delete | none
    pub action: &'static str,
    pub from_version: i64,
    pub to_version: Option<i64>,
    /// The versions whose changes this step undoes (revert), or the version it restores.
    pub versions: Vec<i64>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
    pub not_restorable: Vec<String>,
}

impl Plan {
    fn blocked(&self) -> bool {
        self.conflicts.iter().any(|c| c.blocking)
    }
    fn change_count(&self) -> usize {
        self.steps.iter().map(|s| s.changes.len()).sum()
    }
}

fn needs_admin(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.scopes.iter().any(|s| s == "audit:admin") {
        Ok(())
    } else {
        Err(ScimError::forbidden("restore and revert need the 'audit:admin' scope").into())
    }
}

fn body<T: for<'de> Deserialize<'de>>(ctx: &Ctx) -> Result<T, ApiError> {
    let v = crate::scim::params::json_body(ctx)?;
    serde_json::from_value(v)
        .map_err(|e| ScimError::invalid_syntax(format!("invalid request: {e}")).into())
}

/// An error answer that carries the plan, so the client sees what stopped it.
fn refused(e: ScimError, plan: &Plan) -> Response {
    let mut resp = scim_response(&e);
    let mut v = e.to_json();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "plan".into(),
            serde_json::to_value(plan).unwrap_or(Value::Null),
        );
    }
    *resp.body_mut() = axum::body::Body::from(v.to_string());
    resp
}

/// Split a change path (`title`, `name.givenName`, `urn:…:User:department`,
/// `urn:…:User:manager.value`) into the container key, attribute and sub-attribute.
fn split(path: &str) -> (Option<&str>, &str, Option<&str>) {
    let (urn, rest) = match path.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("urn:") => match path.rfind(':') {
            Some(i) => (Some(&path[..i]), &path[i + 1..]),
            None => (None, path),
        },
        _ => (None, path),
    };
    match rest.split_once('.') {
        Some((a, s)) => (urn, a, Some(s)),
        None => (urn, rest, None),
    }
}

fn get_path(data: Option<&Value>, path: &str) -> Value {
    let (urn, attr, sub) = split(path);
    let Some(d) = data else { return Value::Null };
    let c = match urn {
        Some(u) => d.get(u),
        None => Some(d),
    };
    let v = c.and_then(|c| c.get(attr));
    match sub {
        Some(s) => v.and_then(|v| v.get(s)),
        None => v,
    }
    .cloned()
    .unwrap_or(Value::Null)
}

fn set_path(data: &mut Value, path: &str, value: Value) {
    let (urn, attr, sub) = split(path);
    let Some(root) = data.as_object_mut() else {
        return;
    };
    let container: &mut Map<String, Value> = match urn {
        Some(u) => {
            let e = root
                .entry(u.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            match e.as_object_mut() {
                Some(m) => m,
                None => return,
            }
        }
        None => root,
    };
    match sub {
        None if value.is_null() => {
            container.remove(attr);
        }
        None => {
            container.insert(attr.to_string(), value);
        }
        Some(s) => {
            let parent = container
                .entry(attr.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !parent.is_object() {
                *parent = Value::Object(Map::new());
            }
            if let Some(p) = parent.as_object_mut() {
                if value.is_null() {
                    p.remove(s);
                } else {
                    p.insert(s.to_string(), value);
                }
                if p.is_empty() {
                    container.remove(attr);
                }
            }
        }
    }
    if let Some(u) = urn {
        if root
            .get(u)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            root.remove(u);
        }
    }
}

/// The live state of a resource with its members, or `None` when deleted.
async fn live(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
) -> Result<Option<StoredResource>, ApiError> {
    Ok(state.store.get(&ctx.tenant, &rt.name, id, true).await?)
}

/// Which live resources other than `id` hold a value of `data` that its schema says must be
/// unique (other than the userName, checked on its own): `(attribute, "Type id")` each. A
/// `server` value is looked for in `rt`, a `global` one in every type that has the attribute.
async fn unique_holders(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    data: &Value,
    id: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for u in scimtrail_core::unique_values(&state.registry, rt, data) {
        if rt.has_groups() && u.attribute == "userName" {
            continue;
        }
        let value = match u.attribute.rsplit_once(':') {
            Some((urn, name)) => data.get(urn).and_then(|e| e.get(name)),
            None => data.get(&u.attribute),
        };
        let Some(value) = value else { continue };
        let Ok(filter) = Filter::parse(&format!("{} eq {value}", u.attribute)) else {
            continue;
        };
        let types: Vec<&ResourceType> = match &u.scope {
            Some(_) => vec![rt],
            None => state
                .registry
                .resource_types()
                .iter()
                .filter(|t| {
                    state
                        .registry
                        .resolve(t, &filter_path(&u.attribute))
                        .is_some()
                })
                .collect(),
        };
        for t in types {
            if let Some(other) = holder(state, ctx, &t.name, filter.clone(), id).await? {
                out.push((u.attribute.clone(), format!("{} {other}", t.name)));
            }
        }
    }
    Ok(out)
}

fn filter_path(attr: &str) -> scimtrail_core::AttrPath {
    scimtrail_core::AttrPath::parse(attr).unwrap_or_else(|_| scimtrail_core::AttrPath::simple(attr))
}

fn user_name_filter(name: &str) -> Option<Filter> {
    Filter::parse(&format!("userName eq {}", Value::String(name.to_string()))).ok()
}

/// A live User other than `id` that holds this userName (compared as uniqueness compares it).
async fn user_name_holder(
    state: &AppState,
    ctx: &Ctx,
    name: &str,
    id: &str,
) -> Result<Option<String>, ApiError> {
    match user_name_filter(name) {
        Some(f) => holder(state, ctx, "User", f, id).await,
        None => Ok(None),
    }
}

/// A live resource of `resource_type` other than `id` that `filter` matches.
async fn holder(
    state: &AppState,
    ctx: &Ctx,
    resource_type: &str,
    filter: Filter,
    id: &str,
) -> Result<Option<String>, ApiError> {
    let page = state
        .store
        .list(
            &ctx.tenant,
            &scimtrail_store::ListQuery {
                resource_type: resource_type.into(),
                filter: Some(filter),
                start_index: 1,
                count: 2,
                with_members: false,
                sort: None,
                after: None,
            },
        )
        .await?;
    Ok(page.items.into_iter().map(|r| r.id).find(|r| r != id))
}

/// The secret attributes (passwords…) that the events at these `seq`s wrote: their values
/// were never stored, so they cannot be put back.
async fn not_restorable(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    seqs: &[u64],
) -> Result<Vec<String>, ApiError> {
    let secrets = state.registry.secret_attribute_names(rt);
    if secrets.is_empty() || seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for chunk in seqs.chunks(500) {
        for e in state.store.events_at(&ctx.tenant, chunk).await? {
            for c in e["changes"].as_array().into_iter().flatten() {
                let path = c["path"].as_str().unwrap_or_default();
                let name = path
                    .rsplit([':', '.'])
                    .next()
                    .unwrap_or(path)
                    .to_ascii_lowercase();
                if secrets.contains(&name) {
                    let line = format!(
                        "{name}: written at seq {}, never stored, so not restorable",
                        e["seq"]
                    );
                    if !out
                        .iter()
                        .any(|l: &String| l.starts_with(&format!("{name}:")))
                    {
                        out.push(line);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn member_of(rt: &ResourceType, id: &str, data: Option<&Value>) -> Member {
    let text = |k: &str| {
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Member {
        value: id.to_string(),
        resource_type: rt.name.clone(),
        display: text("displayName").or_else(|| text("userName")),
    }
}

/// The events linked to event `id` by `parentId` (a delete's group removals, say).
async fn children_of(state: &AppState, ctx: &Ctx, id: &str) -> Result<Vec<Value>, ApiError> {
    let f = Filter::parse(&format!("parentId eq {}", Value::String(id.to_string())))?;
    let page = state
        .store
        .events(
            &ctx.tenant,
            &EventQuery {
                filter: Some(f),
                count: 10_000,
                after_seq: None,
                ascending: true,
                unbounded: false,
            },
        )
        .await?;
    Ok(page.items)
}

/// The members a stored form (with members, as `get` loads it) lists, by id.
fn members_in(data: &Value) -> BTreeMap<String, Member> {
    data.get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let v = m.get("value")?.as_str()?.to_string();
            Some((
                v.clone(),
                Member {
                    value: v,
                    resource_type: m.get("type")?.as_str()?.to_string(),
                    display: m.get("display").and_then(Value::as_str).map(str::to_string),
                },
            ))
        })
        .collect()
}

/// The groups the delete at `tombstone` removed `id` from (its linked events).
async fn removed_from(
    state: &AppState,
    ctx: &Ctx,
    tombstone: &VersionRecord,
) -> Result<Vec<String>, ApiError> {
    let Some(delete) = state
        .store
        .events_at(&ctx.tenant, &[tombstone.event_seq])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(Vec::new());
    };
    let Some(did) = delete["id"].as_str() else {
        return Ok(Vec::new());
    };
    Ok(children_of(state, ctx, did)
        .await?
        .iter()
        .filter(|e| e["target"]["type"] == "Group" && e["action"] == "group.member.remove")
        .filter_map(|e| e["target"]["id"].as_str().map(str::to_string))
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RestoreRequest {
    version: i64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Apply only if the resource is still at this version (what a dry run planned from).
    #[serde(default)]
    expected_version: Option<i64>,
}

/// `POST …/restore`.
pub async fn restore(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    needs_admin(&ctx)?;
    let rt = history_type(&state, &endpoint)?;
    let req: RestoreRequest = body(&ctx)?;
    let out = run_restore(&state, &ctx, rt, &id, &req).await?;
    Ok(out)
}

async fn run_restore(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    req: &RestoreRequest,
) -> Result<Response, ApiError> {
    let _guard = state.locks.lock(format!("{}/{id}", ctx.tenant)).await;
    let last = latest(state, ctx, rt, id).await?;
    if req.expected_version.is_some_and(|v| v < 1) {
        return Err(ScimError::invalid_value("'expectedVersion' must be 1 or more").into());
    }
    if let Some(v) = req.expected_version {
        if v != last.version {
            return Err(ScimError::precondition_failed(format!(
                "the resource is at version {}, not {v}",
                last.version
            ))
            .into());
        }
    }
    if req.version < 1 {
        return Err(ScimError::invalid_value("'version' must be 1 or more").into());
    }
    let snap = snapshot(state, ctx, rt, id, req.version).await?;
    let Some(mut target) = snap.data.clone() else {
        return Err(ScimError::invalid_value(format!(
            "version {} is a deletion; to delete, use DELETE",
            req.version
        ))
        .into());
    };
    // Any password the resource was ever given is gone for good.
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.versions(&ctx.tenant, id, after, 1000).await?;
        let Some(last_v) = page.last().map(|v| v.version) else {
            break;
        };
        seqs.extend(page.iter().map(|v| v.event_seq));
        after = last_v;
    }
    let mut plan = Plan {
        not_restorable: not_restorable(state, ctx, rt, &seqs).await?,
        ..Default::default()
    };
    let conflict = |kind, detail: String, blocking| Conflict {
        resource_type: rt.name.clone(),
        id: id.to_string(),
        kind,
        path: None,
        version: None,
        detail,
        blocking,
    };
    // Members: those that still exist.
    if rt.has_members() {
        let mut members = members_at(state, ctx, rt, &snap).await?;
        let ids: Vec<String> = members.keys().cloned().collect();
        let known = state.store.lookup(&ctx.tenant, &ids).await?;
        members.retain(|mid, _| {
            let ok = known.contains_key(mid) && mid != id;
            if !ok {
                plan.conflicts.push(conflict(
                    "memberGone",
                    format!("member {mid} no longer exists; it is left out"),
                    false,
                ));
            }
            ok
        });
        target = with_members(Some(&target), &members).unwrap_or(target);
    }
    if let Some(name) = target.get("userName").and_then(Value::as_str) {
        if let Some(holder) = user_name_holder(state, ctx, name, id).await? {
            plan.conflicts.push(conflict(
                "userNameTaken",
                format!(
                    "userName {} is now held by User {holder}",
                    Value::String(name.into())
                ),
                true,
            ));
        }
    }
    for (attr, holder) in unique_holders(state, ctx, rt, &target, id).await? {
        plan.conflicts.push(Conflict {
            path: Some(attr.clone()),
            ..conflict(
                "uniqueValueTaken",
                format!("the value of {attr} is now held by {holder}"),
                true,
            )
        });
    }
    let current = live(state, ctx, rt, id).await?;
    let undelete = last.deleted;
    let changes = changes_between(state, current.as_ref().map(|c| &c.data), Some(&target));
    let step = Step {
        resource_type: rt.name.clone(),
        id: id.to_string(),
        action: if undelete {
            "undelete"
        } else if changes.is_empty() {
            "none"
        } else {
            "update"
        },
        from_version: last.version,
        to_version: (undelete || !changes.is_empty()).then_some(last.version + 1),
        versions: vec![req.version],
        changes,
    };
    let mut readds = Vec::new();
    if undelete {
        for g in removed_from(state, ctx, &last).await? {
            match state.store.get(&ctx.tenant, "Group", &g, false).await? {
                Some(gr) => readds.push(gr),
                None => plan.conflicts.push(conflict(
                    "groupGone",
                    format!("group {g} no longer exists; the membership is not restored"),
                    false,
                )),
            }
        }
    }
    let member = member_of(rt, id, Some(&target));
    let group_rt = history_type(state, "Groups")?;
    let mut group_steps = Vec::new();
    for g in &readds {
        group_steps.push(Step {
            resource_type: "Group".into(),
            id: g.id.clone(),
            action: "update",
            from_version: g.version,
            to_version: Some(g.version + 1),
            versions: vec![],
            changes: vec![Change {
                op: "add".into(),
                path: "members".into(),
                old: Value::Null,
                new: member.to_json(),
            }],
        });
    }
    plan.steps.push(step);
    plan.steps.extend(group_steps);
    let detail = format!(
        "restore of version {} (event of seq {}){}",
        req.version,
        snap.record.event_seq,
        req.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let answer = |applied: bool, plan: &Plan| json!({"dryRun": req.dry_run, "applied": applied, "plan": plan});
    let mut info = EventInfo {
        action: "resource.restore".into(),
        detail: Some(detail.clone()),
        ..Default::default()
    };
    info.target.resource_type = Some(rt.name.clone());
    info.target.id = Some(id.to_string());
    info.target.version_before = Some(last.version);
    if req.dry_run {
        info.detail = Some(format!("dry run: {detail}"));
        let mut resp = json_response(answer(false, &plan));
        resp.extensions_mut().insert(info);
        return Ok(resp);
    }
    if plan.blocked() {
        return Ok(refused(
            ScimError::uniqueness("the restore is blocked by a conflict; see the plan"),
            &plan,
        ));
    }
    if plan.steps[0].action == "none" {
        info.detail = Some(format!("{detail}; nothing to change"));
        let mut resp = json_response(answer(true, &plan));
        resp.extensions_mut().insert(info);
        return Ok(resp);
    }
    let time = crate::scim::write_now();
    let main = &plan.steps[0];
    let next = StoredResource {
        resource_type: rt.name.clone(),
        id: id.to_string(),
        version: last.version + 1,
        created: String::new(),
        last_modified: time.clone(),
        data: target.clone(),
    };
    info.target = render::target(rt, &next, Some(last.version), Some(next.version));
    info.changes = main.changes.clone();
    let write = ResourceWrite {
        tenant: ctx.tenant.clone(),
        resource_type: rt.name.clone(),
        id: id.to_string(),
        kind: if undelete {
            WriteKind::Undelete
        } else {
            WriteKind::Replace
        },
        expected_version: Some(last.version),
        new_version: last.version + 1,
        time: time.clone(),
        data: Some(target),
        members: None,
    };
    let mut children = Vec::new();
    for (g, s) in readds.iter().zip(plan.steps.iter().skip(1)) {
        let gnext = render::next_state(g, g.data.clone(), true, &time);
        let ginfo = EventInfo {
            action: "group.member.add".into(),
            scim: None,
            target: render::target(group_rt, &gnext, Some(g.version), Some(gnext.version)),
            changes: s.changes.clone(),
            detail: Some(format!("member {id} restored with its {}", rt.name)),
        };
        children.push((
            ResourceWrite {
                tenant: ctx.tenant.clone(),
                resource_type: "Group".into(),
                id: g.id.clone(),
                kind: WriteKind::Replace,
                expected_version: Some(g.version),
                new_version: gnext.version,
                time: time.clone(),
                data: Some(g.data.clone()),
                members: Some(MemberDelta {
                    add: vec![member.clone()],
                    remove: vec![],
                }),
            },
            ginfo,
        ));
    }
    let body = answer(true, &plan);
    commit_plan(state, ctx, None, vec![(write, info)], children, body).await
}

/// Commit the writes with their events in one transaction: `head` (the operation's own event,
/// when the operation is not itself a resource write) first, then `writes`, then `children`
/// linked to the first event.
async fn commit_plan(
    state: &AppState,
    ctx: &Ctx,
    head: Option<EventInfo>,
    writes: Vec<(ResourceWrite, EventInfo)>,
    children: Vec<(ResourceWrite, EventInfo)>,
    answer: Value,
) -> Result<Response, ApiError> {
    let text = answer.to_string();
    let mut resp = json_response(answer);
    let payload = crate::record::response_payload(state, resp.headers(), text.as_bytes());
    let mut head_event = head.map(|i| ctx.event(state, i, 200, None, payload.clone()));
    let mut out = Vec::new();
    let mut parent = head_event.as_ref().map(|e| e.id.clone());
    for (w, i) in writes {
        let mut e = ctx.event(state, i, 200, None, Default::default());
        match &parent {
            Some(p) => {
                e.parent_id = Some(p.clone());
                e.request = Default::default();
            }
            None => {
                e.response = payload.clone();
                parent = Some(e.id.clone());
            }
        }
        out.push((w, e));
    }
    for (w, i) in children {
        let mut e = ctx.event(state, i, 200, None, Default::default());
        e.parent_id = parent.clone();
        e.request = Default::default();
        out.push((w, e));
    }
    if let Some(h) = head_event.as_mut() {
        h.response = payload;
    }
    match state.store.write_all(head_event, out).await {
        Ok(_) => {}
        Err(StoreError::VersionConflict { .. }) => {
            return Err(ScimError::precondition_failed(
                "a resource changed while the plan was applied; nothing was changed, plan again",
            )
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    resp.extensions_mut().insert(Recorded);
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevertRequest {
    filter: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    force: bool,
    /// Allow more changed resource versions than the configured default.
    #[serde(default)]
    max_changes: Option<usize>,
}

/// One matched write: a resource at the version an event made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    resource_type: String,
    id: String,
    version: i64,
}

async fn matched_writes(
    state: &AppState,
    ctx: &Ctx,
    filter: Filter,
) -> Result<BTreeSet<Hit>, ApiError> {
    let mut hits = BTreeSet::new();
    let mut deletes = Vec::new();
    let mut after = None;
    let mut scanned = 0usize;
    let take = |e: &Value, hits: &mut BTreeSet<Hit>, deletes: &mut Vec<String>| {
        let t = &e["target"];
        let (Some(ty), Some(id), Some(v)) = (
            t["type"].as_str(),
            t["id"].as_str(),
            t["versionAfter"].as_i64(),
        ) else {
            return;
        };
        if e["outcome"]["result"] != "success" || state.registry.resource_type(ty).is_none() {
            return;
        }
        // History reads name a version too; only writes made one.
        let action = e["action"].as_str().unwrap_or_default();
        if action.starts_with("audit.") || e["operation"]["method"] == "GET" {
            return;
        }
        if t["versionBefore"].as_i64() == Some(v) {
            return;
        }
        if e["action"].as_str().is_some_and(|a| a.ends_with(".delete")) {
            if let Some(eid) = e["id"].as_str() {
                deletes.push(eid.to_string());
            }
        }
        hits.insert(Hit {
            resource_type: ty.to_string(),
            id: id.to_string(),
            version: v,
        });
    };
    loop {
        let page = state
            .store
            .events(
                &ctx.tenant,
                &EventQuery {
                    filter: Some(filter.clone()),
                    count: 1000,
                    after_seq: after,
                    ascending: true,
                    unbounded: false,
                },
            )
            .await?;
        scanned += page.items.len();
        for e in &page.items {
            take(e, &mut hits, &mut deletes);
        }
        match page.next_seq {
            Some(s) if scanned < SCAN_LIMIT => after = Some(s),
            Some(_) => {
                return Err(ScimError::too_many(format!(
                    "the filter matches more than {SCAN_LIMIT} events; narrow it with a time window (time ge \"…\") or an actor"
                ))
                .into())
            }
            None => break,
        }
    }
    // A delete's removals from its groups go with it, matched or not.
    for d in deletes {
        for e in &children_of(state, ctx, &d).await? {
            let mut ignore = Vec::new();
            take(e, &mut hits, &mut ignore);
        }
    }
    Ok(hits)
}

/// A resource's plan: what undoing the matched versions leaves it as.
struct ResourcePlan {
    rt: ResourceType,
    id: String,
    last: VersionRecord,
    matched: BTreeSet<i64>,
    /// `None`: delete it (its create is undone).
    target: Option<Value>,
    members: Option<BTreeMap<String, Member>>,
    undelete: bool,
    skip: bool,
}

async fn plan_resource(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    matched: BTreeSet<i64>,
    force: bool,
    conflicts: &mut Vec<Conflict>,
) -> Result<ResourcePlan, ApiError> {
    let last = latest(state, ctx, rt, id).await?;
    let m0 = matched.iter().next().copied().unwrap_or(1);
    let later_conflict = |path: Option<String>, v: i64, what: String| Conflict {
        resource_type: rt.name.clone(),
        id: id.to_string(),
        kind: "laterChange",
        path,
        version: Some(v),
        detail: what,
        blocking: !force,
    };
    let mut plan = ResourcePlan {
        rt: rt.clone(),
        id: id.to_string(),
        last: last.clone(),
        matched: matched.clone(),
        target: None,
        members: None,
        undelete: false,
        skip: false,
    };
    // Did the resource exist before the earliest matched change? Not if that change created
    // it, or brought it back from a deletion (a restore or revert that undeleted it): then
    // undoing means deleting it again.
    let existed_before = m0 > 1 && !snapshot(state, ctx, rt, id, m0 - 1).await?.record.deleted;
    if !existed_before {
        if last.deleted {
            plan.skip = true;
            return Ok(plan);
        }
        for v in (m0 + 1)..=last.version {
            if !matched.contains(&v) {
                conflicts.push(later_conflict(
                    None,
                    v,
                    format!("version {v} changed the resource after the create or undelete that is undone"),
                ));
            }
        }
        return Ok(plan);
    }
    if last.deleted && !matched.contains(&last.version) {
        conflicts.push(Conflict {
            resource_type: rt.name.clone(),
            id: id.to_string(),
            kind: "deletedLater",
            path: None,
            version: Some(last.version),
            detail: format!(
                "deleted at version {} by a change the filter does not match; left as it is",
                last.version
            ),
            blocking: !force,
        });
        plan.skip = true;
        return Ok(plan);
    }
    plan.undelete = last.deleted;
    let base_version = if last.deleted {
        last.version - 1
    } else {
        last.version
    };
    let mut snaps = BTreeMap::new();
    for v in (m0 - 1).max(1)..=base_version {
        snaps.insert(v, snapshot(state, ctx, rt, id, v).await?);
    }
    let data_at = |v: i64| snaps.get(&v).and_then(|s| s.data.clone());
    let mut target = data_at(base_version).unwrap_or(Value::Object(Map::new()));
    // Attribute paths: back to their value before the earliest matched change.
    let mut by_path: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for v in m0..=base_version {
        for c in scimtrail_audit::diff(data_at(v - 1).as_ref(), data_at(v).as_ref()) {
            by_path.entry(c.path).or_default().push(v);
        }
    }
    for (path, versions) in &by_path {
        let Some(v0) = versions.iter().copied().find(|v| matched.contains(v)) else {
            continue;
        };
        let wanted = get_path(data_at(v0 - 1).as_ref(), path);
        if get_path(data_at(base_version).as_ref(), path) == wanted {
            // Already what the revert would make it (reverted before, or changed back).
            continue;
        }
        let later: Vec<i64> = versions
            .iter()
            .copied()
            .filter(|v| *v > v0 && !matched.contains(v))
            .collect();
        for v in &later {
            conflicts.push(later_conflict(
                Some(path.clone()),
                *v,
                format!("'{path}' was changed again at version {v} by a change the filter does not match"),
            ));
        }
        if later.is_empty() || force {
            set_path(&mut target, path, wanted);
        }
    }
    if rt.has_members() {
        let mut members: BTreeMap<String, Member> = state
            .store
            .members_at(&ctx.tenant, id, base_version)
            .await?
            .into_iter()
            .map(|m| (m.value.clone(), m))
            .collect();
        let before: BTreeMap<String, Member> = if m0 > 1 {
            state
                .store
                .members_at(&ctx.tenant, id, m0 - 1)
                .await?
                .into_iter()
                .map(|m| (m.value.clone(), m))
                .collect()
        } else {
            BTreeMap::new()
        };
        let changes = state
            .store
            .member_changes(&ctx.tenant, id, m0, base_version)
            .await?;
        let mut per_member: BTreeMap<String, Vec<&scimtrail_store::MemberChange>> = BTreeMap::new();
        for c in &changes {
            per_member
                .entry(c.member.value.clone())
                .or_default()
                .push(c);
        }
        for (mid, cs) in per_member {
            let Some(first) = cs.iter().position(|c| matched.contains(&c.version)) else {
                continue;
            };
            let v0 = cs[first].version;
            // Its state before v0: the last change before it, else as it was before m0.
            let prior = cs[..first]
                .last()
                .map(|c| (c.op == "add").then(|| c.member.clone()));
            let was = match prior {
                Some(p) => p,
                None => before.get(&mid).cloned(),
            };
            if members.get(&mid).map(|m| &m.value) == was.as_ref().map(|m| &m.value) {
                continue;
            }
            let later: Vec<i64> = cs
                .iter()
                .map(|c| c.version)
                .filter(|v| *v > v0 && !matched.contains(v))
                .collect();
            for v in &later {
                conflicts.push(later_conflict(
                    Some(format!("members[value eq \"{mid}\"]")),
                    *v,
                    format!("member {mid} was changed again at version {v} by a change the filter does not match"),
                ));
            }
            if !later.is_empty() && !force {
                continue;
            }
            match was {
                Some(m) => {
                    members.insert(mid, m);
                }
                None => {
                    members.remove(&mid);
                }
            }
        }
        plan.members = Some(members);
    }
    // The canonical stored form again (`schemas` follows the extensions present).
    match scimtrail_core::normalize(&state.registry, rt, &target, Some(id)) {
        Ok(n) => plan.target = Some(n.resource),
        Err(e) => {
            conflicts.push(Conflict {
                resource_type: rt.name.clone(),
                id: id.to_string(),
                kind: "invalidResult",
                path: None,
                version: None,
                detail: format!("the reverted state would not be valid: {}", e.detail),
                blocking: true,
            });
            plan.skip = true;
        }
    }
    Ok(plan)
}

/// `POST /audit/v1/revert`.
pub async fn revert(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
) -> Result<Response, ApiError> {
    needs_admin(&ctx)?;
    let req: RevertRequest = body(&ctx)?;
    let filter = Filter::parse(&req.filter)?;
    filter.check_terms(state.registry.max_filter_terms())?;
    let hits = matched_writes(&state, &ctx, filter).await?;
    if hits.is_empty() {
        return Err(ScimError::new(
            404,
            Some(scimtrail_core::ScimType::NoTarget),
            "the filter matches no change to a resource",
        )
        .into());
    }
    let limit = req.max_changes.unwrap_or(state.config.revert_max_changes);
    if hits.len() > limit {
        return Err(ScimError::too_many(format!(
            "the filter matches {} changed versions, more than {limit}; send \"maxChanges\": {} to go ahead",
            hits.len(),
            hits.len()
        ))
        .into());
    }
    let mut by_resource: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for h in &hits {
        by_resource
            .entry((h.resource_type.clone(), h.id.clone()))
            .or_default()
            .insert(h.version);
    }
    let mut conflicts = Vec::new();
    let mut plans: BTreeMap<String, ResourcePlan> = BTreeMap::new();
    for ((ty, id), versions) in by_resource {
        let rt = history_type(&state, &ty)?.clone();
        let p = plan_resource(&state, &ctx, &rt, &id, versions, req.force, &mut conflicts).await?;
        plans.insert(id, p);
    }
    fixups(&state, &ctx, &mut plans, &mut conflicts).await?;
    let user_order = user_names(&state, &ctx, &plans, &mut conflicts).await?;
    unique_values_free(&state, &ctx, &plans, &mut conflicts).await?;
    let mut plan = Plan {
        conflicts,
        ..Default::default()
    };
    let mut writes = Vec::new();
    let time = crate::scim::write_now();
    // Deletes first (they free userNames), then Users in an order where no userName is
    // taken back before its holder has let it go, then Groups (undeletes before updates).
    let mut order: Vec<&ResourcePlan> = plans.values().filter(|p| !p.skip).collect();
    order.sort_by_key(|p| {
        let phase = match (&p.target, p.rt.has_groups(), p.undelete) {
            (None, _, _) => (0, 0),
            (Some(_), true, _) => (1, user_order.get(&p.id).copied().unwrap_or(0)),
            (Some(_), false, true) => (2, 0),
            (Some(_), false, false) => (3, 0),
        };
        (phase, p.id.clone())
    });
    for p in order {
        let current = live(&state, &ctx, &p.rt, &p.id).await?;
        let target = p.target.as_ref().map(|t| match &p.members {
            Some(m) => with_members(Some(t), m).unwrap_or_else(|| t.clone()),
            None => t.clone(),
        });
        let changes = changes_between(&state, current.as_ref().map(|c| &c.data), target.as_ref());
        if changes.is_empty() && !p.undelete && target.is_some() {
            continue;
        }
        let (kind, action) = match (&target, p.undelete) {
            (None, _) => (WriteKind::Delete, "delete"),
            (Some(_), true) => (WriteKind::Undelete, "undelete"),
            (Some(_), false) => (WriteKind::Replace, "update"),
        };
        let mut seqs = Vec::new();
        for v in &p.matched {
            if let Some(s) = state.store.snapshot(&ctx.tenant, &p.id, *v).await? {
                seqs.push(s.record.event_seq);
            }
        }
        for n in not_restorable(&state, &ctx, &p.rt, &seqs).await? {
            if !plan.not_restorable.contains(&n) {
                plan.not_restorable.push(n);
            }
        }
        let step = Step {
            resource_type: p.rt.name.clone(),
            id: p.id.clone(),
            action,
            from_version: p.last.version,
            to_version: Some(p.last.version + 1),
            versions: p.matched.iter().copied().collect(),
            changes: changes.clone(),
        };
        let next = StoredResource {
            resource_type: p.rt.name.clone(),
            id: p.id.clone(),
            version: p.last.version + 1,
            created: String::new(),
            last_modified: time.clone(),
            data: target
                .clone()
                .or_else(|| current.as_ref().map(|c| c.data.clone()))
                .unwrap_or(Value::Null),
        };
        let info = EventInfo {
            action: "resource.revert".into(),
            scim: None,
            target: render::target(&p.rt, &next, Some(p.last.version), Some(next.version)),
            changes,
            detail: Some(format!(
                "reverts version(s) {:?}{}",
                step.versions,
                req.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
        };
        // A Group's members change by an explicit delta from what it has now: a member that
        // this same revert deletes is removed whether its delete is written first or not.
        let (data, members) = match (&p.members, target) {
            (Some(want), Some(mut t)) if !p.undelete => {
                let have = current
                    .as_ref()
                    .map(|c| members_in(&c.data))
                    .unwrap_or_default();
                if let Some(o) = t.as_object_mut() {
                    o.remove("members");
                }
                let delta = MemberDelta {
                    add: want
                        .values()
                        .filter(|m| have.get(&m.value) != Some(*m))
                        .cloned()
                        .collect(),
                    remove: have
                        .keys()
                        .filter(|k| !want.contains_key(*k))
                        .cloned()
                        .collect(),
                };
                (Some(t), Some(delta))
            }
            (_, t) => (t, None),
        };
        writes.push((
            ResourceWrite {
                tenant: ctx.tenant.clone(),
                resource_type: p.rt.name.clone(),
                id: p.id.clone(),
                kind,
                expected_version: Some(p.last.version),
                new_version: p.last.version + 1,
                time: time.clone(),
                data,
                members,
            },
            info,
        ));
        plan.steps.push(step);
    }
    let summary = format!(
        "{} resource(s), {} change(s), {} conflict(s) for filter {}{}",
        plan.steps.len(),
        plan.change_count(),
        plan.conflicts.len(),
        req.filter,
        req.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let answer = |applied: bool, plan: &Plan| {
        json!({"dryRun": req.dry_run, "applied": applied, "force": req.force,
               "matchedVersions": hits.len(), "plan": plan})
    };
    let head = EventInfo {
        action: "audit.revert".into(),
        detail: Some(if req.dry_run {
            format!("dry run: {summary}")
        } else {
            summary
        }),
        ..Default::default()
    };
    if req.dry_run {
        let mut resp = json_response(answer(false, &plan));
        resp.extensions_mut().insert(head);
        return Ok(resp);
    }
    if plan.blocked() {
        return Ok(refused(
            ScimError::conflict(
                "the revert is blocked by later changes the filter does not match; see the plan, or send \"force\": true",
            ),
            &plan,
        ));
    }
    let body = answer(true, &plan);
    if writes.is_empty() {
        let mut resp = (StatusCode::OK, json_response(body)).into_response();
        resp.extensions_mut().insert(head);
        return Ok(resp);
    }
    commit_plan(&state, &ctx, Some(head), writes, Vec::new(), body).await
}

/// The other unique values the revert gives back (a custom `serialNumber`, a global badge
/// id) must not be held by a resource outside the revert. One held by a resource the revert
/// also changes is left to the store, which refuses the whole revert if it still clashes.
async fn unique_values_free(
    state: &AppState,
    ctx: &Ctx,
    plans: &BTreeMap<String, ResourcePlan>,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), ApiError> {
    for p in plans.values().filter(|p| !p.skip) {
        let Some(target) = &p.target else { continue };
        for (attr, holder) in unique_holders(state, ctx, &p.rt, target, &p.id).await? {
            let holder_id = holder.rsplit(' ').next().unwrap_or_default();
            if plans.get(holder_id).is_some_and(|h| !h.skip) {
                continue;
            }
            conflicts.push(Conflict {
                resource_type: p.rt.name.clone(),
                id: p.id.clone(),
                kind: "uniqueValueTaken",
                path: Some(attr.clone()),
                version: None,
                detail: format!("the value of {attr} is now held by {holder}"),
                blocking: true,
            });
        }
    }
    Ok(())
}

/// The userNames the revert gives back must be free once it is applied: held by nobody outside
/// the revert, and by no two users of it. Answers the order in which the Users' writes let
/// each name go before another takes it; a cycle of swaps is a conflict.
async fn user_names(
    state: &AppState,
    ctx: &Ctx,
    plans: &BTreeMap<String, ResourcePlan>,
    conflicts: &mut Vec<Conflict>,
) -> Result<BTreeMap<String, usize>, ApiError> {
    use scimtrail_core::username::key;
    let name_of = |v: &Value| {
        v.get("userName")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut finals: BTreeMap<String, String> = BTreeMap::new(); // key → id
    let mut after: BTreeMap<String, String> = BTreeMap::new(); // id → id that must go first
    for p in plans.values().filter(|p| !p.skip && p.rt.has_groups()) {
        let Some(name) = p.target.as_ref().and_then(name_of) else {
            continue;
        };
        let conflict = |detail: String| Conflict {
            resource_type: "User".into(),
            id: p.id.clone(),
            kind: "userNameTaken",
            path: Some("userName".into()),
            version: None,
            detail,
            blocking: true,
        };
        if let Some(other) = finals.insert(key(&name), p.id.clone()) {
            conflicts.push(conflict(format!(
                "User {other} would end with the same userName {}",
                Value::String(name.clone())
            )));
        }
        let Some(holder) = user_name_holder(state, ctx, &name, &p.id).await? else {
            continue;
        };
        let lets_go = plans.get(&holder).is_some_and(|h| {
            !h.skip
                && h.target
                    .as_ref()
                    .and_then(name_of)
                    .is_none_or(|n| key(&n) != key(&name))
        });
        if lets_go {
            after.insert(p.id.clone(), holder);
        } else {
            conflicts.push(conflict(format!(
                "userName {} is now held by User {holder}",
                Value::String(name)
            )));
        }
    }
    // Depth in the chain of who must go first; a cycle cannot be ordered.
    let mut order = BTreeMap::new();
    for id in after.keys() {
        let mut depth = 0;
        let mut cur = id.clone();
        let mut seen = BTreeSet::new();
        while let Some(next) = after.get(&cur) {
            if !seen.insert(cur.clone()) {
                conflicts.push(Conflict {
                    resource_type: "User".into(),
                    id: id.clone(),
                    kind: "userNameCycle",
                    path: Some("userName".into()),
                    version: None,
                    detail: "the revert swaps userNames in a cycle; revert one of them first"
                        .into(),
                    blocking: true,
                });
                break;
            }
            depth += 1;
            cur = next.clone();
        }
        order.insert(id.clone(), depth);
    }
    Ok(order)
}

/// Across resources: a resource deleted by the revert leaves the groups it is in; a member
/// added back must exist, or come back in the same revert.
async fn fixups(
    state: &AppState,
    ctx: &Ctx,
    plans: &mut BTreeMap<String, ResourcePlan>,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), ApiError> {
    let deleting: Vec<String> = plans
        .values()
        .filter(|p| p.target.is_none() && !p.skip)
        .map(|p| p.id.clone())
        .collect();
    let group_rt = history_type(state, "Groups")?.clone();
    for id in &deleting {
        let groups = state
            .store
            .groups_of(&ctx.tenant, std::slice::from_ref(id))
            .await?
            .remove(id)
            .unwrap_or_default();
        for g in groups {
            if !plans.contains_key(&g.id) {
                let Some(cur) = live(state, ctx, &group_rt, &g.id).await? else {
                    continue;
                };
                let last = latest(state, ctx, &group_rt, &g.id).await?;
                let members = members_in(&cur.data);
                let mut data = cur.data.clone();
                if let Some(o) = data.as_object_mut() {
                    o.remove("members");
                }
                plans.insert(
                    g.id.clone(),
                    ResourcePlan {
                        rt: group_rt.clone(),
                        id: g.id.clone(),
                        last,
                        matched: BTreeSet::new(),
                        target: Some(data),
                        members: Some(members),
                        undelete: false,
                        skip: false,
                    },
                );
            }
            if let Some(p) = plans.get_mut(&g.id) {
                if let Some(m) = p.members.as_mut() {
                    m.remove(id);
                }
            }
        }
    }
    let coming_back: BTreeSet<String> = plans
        .values()
        .filter(|p| p.undelete && !p.skip)
        .map(|p| p.id.clone())
        .collect();
    let gone: BTreeSet<String> = deleting.into_iter().collect();
    let mut wanted = BTreeSet::new();
    for p in plans.values() {
        if let Some(m) = &p.members {
            wanted.extend(m.keys().cloned());
        }
    }
    let ids: Vec<String> = wanted.iter().cloned().collect();
    let known = state.store.lookup(&ctx.tenant, &ids).await?;
    for p in plans.values_mut() {
        let (gid, rt_name) = (p.id.clone(), p.rt.name.clone());
        if let Some(m) = p.members.as_mut() {
            m.retain(|mid, _| {
                let ok = (known.contains_key(mid) || coming_back.contains(mid))
                    && !gone.contains(mid)
                    && *mid != gid;
                if !ok && !gone.contains(mid) {
                    conflicts.push(Conflict {
                        resource_type: rt_name.clone(),
                        id: gid.clone(),
                        kind: "memberGone",
                        path: Some(format!("members[value eq \"{mid}\"]")),
                        version: None,
                        detail: format!("member {mid} no longer exists; it is left out"),
                        blocking: false,
                    });
                }
                ok
            });
        }
    }
    Ok(())
}
