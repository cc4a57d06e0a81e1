//! PUT and PATCH: compute the new stored form from the current one and commit it guarded by the
//! version it was computed from, retrying a lost race when the client gave no `If-Match`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use scimtrail_core::{apply_patch, keep_immutable, normalize, parse_patch, ResourceType};
use scimtrail_store::MemberDelta;
use serde_json::Value;

use super::member_patch::{answers_with_body, member_ops, patch_members};
use super::members::{resolve, unknown_note};
use super::params::{cpu, parse_body, resource_type, QueryParams, View, OFFLOAD_BYTES};
use super::render;
use super::write::{check_version, commit, if_match, load, now, replace_write, respond};
use crate::context::{changes, EventInfo};
use crate::error::{ApiError, Path};
use crate::{AppState, Ctx};

/// Attempts at a read-modify-write that lost a race without `If-Match`. Within one process
/// the resource lock already serialises writers, so a race is lost only to another process
/// on the same database; with several busy processes a write can lose a few in a row.
pub(super) const ATTEMPTS: usize = 16;

/// Whether a write that failed with `e` lost a race it should run again (no `If-Match`, and
/// attempts left), after a short random pause that lets the winner's commit land: 1 ms up
/// to 64 ms, doubling per attempt.
pub(super) async fn retry_lost_race(
    e: &scimtrail_core::ScimError,
    wanted: Option<&[i64]>,
    attempt: usize,
) -> bool {
    if e.status != 412 || wanted.is_some() || attempt >= ATTEMPTS {
        return false;
    }
    let cap = 1u64 << attempt.min(6);
    let pause = rand::Rng::random_range(&mut rand::rng(), 1..=cap);
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    true
}

/// How a PUT or PATCH computes the new stored form from the current one.
#[derive(Clone)]
enum Update {
    Replace(Value),
    Patch(Vec<scimtrail_core::PatchOperation>),
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let input = parse_body(&ctx).await?;
    update(
        &state,
        &ctx,
        rt,
        &id,
        &headers,
        Update::Replace(input),
        "replace",
    )
    .await
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(ctx): Extension<Arc<Ctx>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &endpoint)?;
    let ops = parse_patch(&parse_body(&ctx).await?)?;
    super::params::check_patch_cost(&state.registry, &ops)?;
    if let Some(member_ops) = member_ops(rt, &ops) {
        return patch_members(&state, &ctx, rt, &id, &headers, member_ops).await;
    }
    update(&state, &ctx, rt, &id, &headers, Update::Patch(ops), "patch").await
}

async fn update(
    state: &AppState,
    ctx: &Ctx,
    rt: &ResourceType,
    id: &str,
    headers: &HeaderMap,
    how: Update,
    scim_op: &str,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(ctx)?;
    let view = View::from_query(&q)?;
    let wanted = if_match(headers)?;
    // A PATCH of a large Group answers 204 unless the client asks for the resource (RFC 7644
    // §3.5.2), so that its member list is never read just to answer. One that leaves members
    // alone (Okta renames on every membership push) does not load them at all.
    let group_patch = rt.has_members() && matches!(how, Update::Patch(_));
    let wants_body = !group_patch || answers_with_body(state, ctx, &q, id).await?;
    let light = match &how {
        Update::Patch(ops) if group_patch => !touches_members(ops),
        _ => false,
    };
    let _guard = state.locks.lock(format!("{}/{id}", ctx.tenant)).await;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = load(state, ctx, rt, id, !light).await?;
        check_version(&current, wanted.as_deref())?;
        let norm = if ctx.body.len() <= OFFLOAD_BYTES {
            match &how {
                Update::Replace(input) => normalize(&state.registry, rt, input, Some(id))?,
                Update::Patch(ops) => apply_patch(&state.registry, rt, &current.data, ops, id)?,
            }
        } else {
            let (reg, rt_name, rid, how, data) = (
                state.registry.clone(),
                rt.name.clone(),
                id.to_string(),
                how.clone(),
                current.data.clone(),
            );
            cpu(usize::MAX, move || {
                let rt = reg
                    .resource_type(&rt_name)
                    .ok_or_else(|| scimtrail_core::ScimError::internal("resource type vanished"))?;
                match &how {
                    Update::Replace(input) => normalize(&reg, rt, input, Some(&rid)),
                    Update::Patch(ops) => apply_patch(&reg, rt, &data, ops, &rid),
                }
            })
            .await?
        };
        let mut data = norm.resource;
        let replace = matches!(how, Update::Replace(_));
        keep_immutable(&state.registry, rt, &current.data, &mut data, replace)?;
        let unknown = resolve(state, ctx, rt, Some(id), &mut data).await?;
        let changed = changes(state, Some(&current.data), Some(&data), &norm.secrets);
        let data_changed = differs(&data, &current.data);
        let time = now();
        let r = render::next_state(&current, data, data_changed, &time);
        let version = r.version;
        let view = match &how {
            Update::Replace(_) => view.clone().of_write(Some(&r.data), &[]),
            Update::Patch(_) => view.clone().of_write(None, &changed),
        };
        let info = EventInfo {
            action: update_action(rt, &current.data, &r.data, &changed),
            scim: Some(scim_op.into()),
            target: render::target(rt, &r, Some(current.version), Some(version)),
            changes: changed,
            detail: None,
        };
        let groups = render::user_groups(state, ctx, rt, &r.id).await?;
        let mut headers = render::resource_headers(ctx, rt, &r, groups.as_deref(), false);
        let (status, body) = if wants_body {
            let shown = if light && view.wants("members") {
                // Not loaded for the write; read them for the answer.
                let mut shown = r.clone();
                let loaded = state.store.get(&ctx.tenant, &rt.name, id, true).await?;
                if let (Some(m), Some(obj)) = (
                    loaded.and_then(|g| g.data.get("members").cloned()),
                    shown.data.as_object_mut(),
                ) {
                    obj.insert("members".into(), m);
                }
                shown
            } else {
                r.clone()
            };
            let body = render::resource(state, ctx, rt, &shown, groups.as_deref(), &view);
            (StatusCode::OK, Some(body))
        } else {
            headers.remove(header::CONTENT_TYPE);
            (StatusCode::NO_CONTENT, None)
        };
        let note = unknown_note(&unknown);
        if !data_changed {
            // Nothing to store: no new version, but the request is still recorded.
            return Ok(respond(status, headers, body, note, Some(info)));
        }
        // Members not loaded: tell the store to leave them as they are.
        let write = replace_write(ctx, &current, &r, time, light.then(MemberDelta::default));
        match commit(state, ctx, write, info, status, headers, body, note).await {
            Err(ApiError::Scim(e)) if retry_lost_race(&e, wanted.as_deref(), attempt).await => {
                continue
            }
            other => return other,
        }
    }
}

/// The semantic action of an update: (de)activation and pure membership changes are named.
pub(super) fn update_action(
    rt: &ResourceType,
    old: &Value,
    new: &Value,
    changed: &[scimtrail_audit::Change],
) -> String {
    // Any type with a boolean `active` (the User; a custom Device may have one too).
    let active = |v: &Value| v.get("active").and_then(Value::as_bool);
    match (active(old), active(new)) {
        (Some(true) | None, Some(false)) => return rt.action("deactivate"),
        (Some(false), Some(true)) => return rt.action("reactivate"),
        _ => {}
    }
    let member = |c: &&scimtrail_audit::Change| c.path == "members";
    if !rt.has_members() || changed.is_empty() {
        rt.action("update")
    } else if changed.iter().all(|c| member(&c) && c.op == "add") {
        rt.action("member.add")
    } else if changed.iter().all(|c| member(&c) && c.op == "remove") {
        rt.action("member.remove")
    } else {
        rt.action("update")
    }
}

/// Whether any operation can change a Group's members.
fn touches_members(ops: &[scimtrail_core::PatchOperation]) -> bool {
    // Conservative: anything schema-qualified (a whole-schema path such as
    // `urn:…:core:2.0:Group`, or URN keys in a value) may reach members, so it takes the full path.
    let may_name_members = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.starts_with("urn:")
            || k == "members"
            || k.starts_with("members.")
            || k.starts_with("members[")
    };
    ops.iter().any(|op| match &op.path {
        Some(p) => p.attr.urn.is_some() || may_name_members(&p.attr.name),
        None => op
            .value
            .as_ref()
            .and_then(Value::as_object)
            .is_none_or(|m| m.keys().any(|k| may_name_members(k))),
    })
}

/// Whether two stored forms differ, ignoring the order of Group members (kept by id).
fn differs(a: &Value, b: &Value) -> bool {
    if a.get("members").is_none() && b.get("members").is_none() {
        return a != b;
    }
    let (mut a, mut b) = (a.clone(), b.clone());
    render::sort_members(&mut a);
    render::sort_members(&mut b);
    a != b
}
