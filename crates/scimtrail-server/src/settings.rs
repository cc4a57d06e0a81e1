//! The configuration as part of the audit log. Settings change only when the server restarts
//! with other flags or environment, so `scimtrail serve` hands its effective settings here at
//! every start, and a `config.change` event records what differs from the settings the newest
//! such event holds: old and new value per setting, with the whole set in its response body.
//! An unchanged restart records nothing. The settings must hold no secret: a database URL
//! without its password, a key only by its fingerprint.

use scimtrail_audit::AuditEvent;
use scimtrail_core::Filter;
use scimtrail_store::{EventQuery, Store, StoreResult};
use serde_json::Value;

use crate::auth::Admin;

/// `target.type` of configuration events. Not a SCIM resource type, so the store's index of
/// rare target types finds the newest one without a scan.
pub const CONFIG_TYPE: &str = "Config";

/// Record `settings` (a flat JSON object) if they differ from the last recorded ones. Returns
/// the event it appended, if any.
pub async fn record_config(
    store: &dyn Store,
    tenant: &str,
    by: &Admin,
    settings: Value,
) -> StoreResult<Option<AuditEvent>> {
    let last = last_config(store, tenant).await?;
    let previous = match &last {
        Some(e) => match &e["response"]["body"] {
            Value::Null => None,
            body => Some(body),
        },
        None => None,
    };
    if previous == Some(&settings) {
        return Ok(None);
    }
    let changes = scimtrail_audit::diff(previous, Some(&settings));
    let detail = match (&last, previous) {
        (None, _) => "the configuration at first start".to_string(),
        (Some(_), None) => {
            "the configuration at start (the previous record's payload was pruned)".to_string()
        }
        (Some(_), Some(_)) => format!(
            "{} setting{} changed since the last start",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ),
    };
    let mut event = by.event_on(CONFIG_TYPE, "config.change", tenant, changes);
    event.target.display = Some(by.system.clone());
    event.outcome.detail = Some(detail);
    event.response.body = settings;
    store.append_event(event).await.map(Some)
}

/// The newest configuration event of `tenant`, as stored.
async fn last_config(store: &dyn Store, tenant: &str) -> StoreResult<Option<Value>> {
    let filter = Filter::parse(&format!(r#"target.type eq "{CONFIG_TYPE}""#))
        .map_err(|e| scimtrail_store::StoreError::Backend(e.to_string()))?;
    let page = store
        .events(
            tenant,
            &EventQuery {
                filter: Some(filter),
                count: 1,
                after_seq: None,
                ascending: false,
                unbounded: false,
            },
        )
        .await?;
    Ok(page.items.into_iter().next())
}
