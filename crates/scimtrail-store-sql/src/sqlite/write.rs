//! One write inside a transaction: resource row, memberships, version snapshot and sealed event.
//! The caller ([`super::committer`]) owns the transaction and hands out the `seq`.

use std::collections::HashMap;

use scimtrail_audit::{seal, AuditEvent};
use scimtrail_store::{ResourceWrite, StoreError, StoreResult, WriteKind};
use serde_json::Value;
use sqlx::{Sqlite, Transaction};

use crate::backend;

pub type Tx = Transaction<'static, Sqlite>;

/// Apply `w` and append its event at `seq`, inside `tx`.
pub async fn write(
    tx: &mut Tx,
    w: ResourceWrite,
    event: AuditEvent,
    seq: i64,
) -> StoreResult<AuditEvent> {
    let current: Option<(i64, i64, String)> = sqlx::query_as(
        "SELECT version, deleted, resource_type FROM resources WHERE tenant = ? AND id = ?",
    )
    .bind(&w.tenant)
    .bind(&w.id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(backend)?;
    match (w.kind, current) {
        (WriteKind::Create, Some(_)) => {
            return Err(StoreError::Backend(format!(
                "resource id {} already exists",
                w.id
            )))
        }
        (WriteKind::Create, None) => {}
        (_, None) | (_, Some((_, 1, _))) => return Err(StoreError::NotFound),
        // An id of another type is not found, as `get` with this type would say.
        (_, Some((_, _, ty))) if ty != w.resource_type => return Err(StoreError::NotFound),
        (_, Some((v, _, _))) if Some(v) != w.expected_version => {
            return Err(StoreError::VersionConflict { current: v })
        }
        _ => {}
    }
    let mut data = w.data.clone().unwrap_or(Value::Null);
    let members = match data.as_object_mut() {
        Some(obj) if w.resource_type == "Group" => obj.remove("members"),
        _ => None,
    };
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    let user_name_ci = if w.resource_type == "User" {
        text("userName").map(|s| s.to_lowercase())
    } else {
        None
    };
    let external_id = text("externalId");
    let display_ci = text("displayName").map(|s| s.to_lowercase());
    let data_text = data.to_string();

    let result = match w.kind {
        WriteKind::Create => {
            sqlx::query(
                "INSERT INTO resources (tenant, resource_type, id, version, deleted, created, \
             last_modified, user_name_ci, external_id, display_name_ci, data) \
             VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&w.tenant)
            .bind(&w.resource_type)
            .bind(&w.id)
            .bind(w.new_version)
            .bind(&w.time)
            .bind(&w.time)
            .bind(&user_name_ci)
            .bind(&external_id)
            .bind(&display_ci)
            .bind(&data_text)
            .execute(&mut **tx)
            .await
        }
        WriteKind::Replace => {
            sqlx::query(
                "UPDATE resources SET version = ?, last_modified = ?, user_name_ci = ?, \
             external_id = ?, display_name_ci = ?, data = ? WHERE tenant = ? AND id = ?",
            )
            .bind(w.new_version)
            .bind(&w.time)
            .bind(&user_name_ci)
            .bind(&external_id)
            .bind(&display_ci)
            .bind(&data_text)
            .bind(&w.tenant)
            .bind(&w.id)
            .execute(&mut **tx)
            .await
        }
        WriteKind::Delete => {
            sqlx::query(
                "UPDATE resources SET version = ?, last_modified = ?, deleted = 1 \
             WHERE tenant = ? AND id = ?",
            )
            .bind(w.new_version)
            .bind(&w.time)
            .bind(&w.tenant)
            .bind(&w.id)
            .execute(&mut **tx)
            .await
        }
    };
    if let Err(e) = result {
        let unique = e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation());
        return Err(if unique {
            StoreError::Uniqueness("userName is already taken".into())
        } else {
            backend(e)
        });
    }
    if w.resource_type == "Group" && w.kind != WriteKind::Delete {
        sync_members(tx, &w.tenant, &w.id, members.as_ref()).await?;
    }
    let sealed = append(tx, event, seq).await?;
    sqlx::query(
        "INSERT INTO resource_versions (tenant, id, version, resource_type, time, deleted, data, \
         event_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&w.tenant)
    .bind(&w.id)
    .bind(w.new_version)
    .bind(&w.resource_type)
    .bind(&w.time)
    .bind(w.kind == WriteKind::Delete)
    .bind(w.data.as_ref().map(Value::to_string))
    .bind(seq)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(sealed)
}

/// Seal the event at `seq` and insert it.
pub async fn append(tx: &mut Tx, event: AuditEvent, next: i64) -> StoreResult<AuditEvent> {
    let sealed = seal(event, next as u64).map_err(|e| StoreError::Backend(e.to_string()))?;
    let e = &sealed.event;
    sqlx::query(
        "INSERT INTO audit_events (seq, id, tenant, time, request_id, parent_id, actor_kind, \
         actor_id, actor_name, actor_client, action, method, scim_op, target_type, target_id, \
         target_external_id, result, status, leaf_hash, body) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(next)
    .bind(&e.id)
    .bind(&e.tenant)
    .bind(&e.time)
    .bind(&e.request_id)
    .bind(&e.parent_id)
    .bind(&e.actor.kind)
    .bind(&e.actor.id)
    .bind(&e.actor.name)
    .bind(&e.actor.client)
    .bind(&e.action)
    .bind(&e.operation.method)
    .bind(&e.operation.scim)
    .bind(&e.target.resource_type)
    .bind(&e.target.id)
    .bind(&e.target.external_id)
    .bind(&e.outcome.result)
    .bind(e.outcome.status as i64)
    .bind(&sealed.leaf_hash[..])
    .bind(&sealed.canonical)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(sealed.event)
}

/// Make the memberships table match the Group's `members`, touching only the difference.
async fn sync_members(
    tx: &mut Tx,
    tenant: &str,
    group: &str,
    members: Option<&Value>,
) -> StoreResult<()> {
    let existing: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT member_id, member_type, display FROM memberships WHERE tenant = ? AND group_id = ?",
    )
    .bind(tenant)
    .bind(group)
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    let mut existing: HashMap<String, (String, Option<String>)> = existing
        .into_iter()
        .map(|(id, t, d)| (id, (t, d)))
        .collect();
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
            _ => {
                sqlx::query(
                    "INSERT INTO memberships (tenant, group_id, member_id, member_type, display) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, group_id, member_id) \
                     DO UPDATE SET member_type = excluded.member_type, display = excluded.display",
                )
                .bind(tenant)
                .bind(group)
                .bind(id)
                .bind(&ty)
                .bind(&display)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            }
        }
    }
    for gone in existing.keys() {
        sqlx::query("DELETE FROM memberships WHERE tenant = ? AND group_id = ? AND member_id = ?")
            .bind(tenant)
            .bind(group)
            .bind(gone)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}
