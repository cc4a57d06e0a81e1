//! The request context: who asked for what, and how an audit event is made from it.

use std::time::Instant;

use axum::body::Bytes;
use scimtrail_audit::{
    diff, format_time, Actor, AuditEvent, Change, Operation, Outcome, Payload, Target,
};
use scimtrail_core::{Registry, ScimError};
use time::OffsetDateTime;

use serde_json::Value;

use crate::AppState;

/// Built by the audit middleware for every request and handed to handlers as an extension.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub started: Instant,
    pub tenant: String,
    pub method: String,
    pub path: String,
    /// The query string as the audit log keeps it (redacted when it names a secret).
    pub query: Option<String>,
    /// The query string as sent, for the handler only; never logged.
    pub raw_query: Option<String>,
    pub actor: Actor,
    pub scopes: Vec<String>,
    /// The request as the audit log keeps it (redacted, capped).
    pub request: Payload,
    /// The raw body, for the handler only; never logged.
    pub body: Bytes,
    /// `{scheme}://{host}/scim/v2`, for `location` and `$ref`.
    pub scim_base: String,
    /// The event this request's events hang under: a `/Bulk` request's, for each operation.
    pub parent_id: Option<String>,
}

/// What an event says beyond the request itself; handlers fill it, the middleware derives a
/// default from the route for everything else.
#[derive(Debug, Clone, Default)]
pub struct EventInfo {
    pub action: String,
    pub scim: Option<String>,
    pub target: Target,
    pub changes: Vec<Change>,
    /// A note for `outcome.detail` on success (errors bring their own detail).
    pub detail: Option<String>,
}

/// Marks a response whose event was already committed with its write.
#[derive(Debug, Clone, Copy)]
pub struct Recorded;

/// The id a response's event must take, when events written before it already name it as
/// their `parentId` (a `/Bulk` request's operations).
#[derive(Debug, Clone)]
pub struct EventId(pub String);

impl Ctx {
    /// An event for this request.
    pub fn event(
        &self,
        state: &AppState,
        info: EventInfo,
        status: u16,
        error: Option<&ScimError>,
        response: Payload,
    ) -> AuditEvent {
        let mut target = info.target;
        target.system = state.config.system_name.clone();
        let mut response = response;
        let mut detail = error.map(|e| e.detail.clone()).or(info.detail);
        if detail.as_deref().is_some_and(|d| d.contains(['\'', '"'])) && self.names_a_secret(state)
        {
            // The detail may quote input from a request that names a secret (`found 'hunter2'`):
            // keep what it says up to the quote.
            detail = detail.as_deref().map(scrub_detail);
            if let Some(o) = response.body.as_object_mut() {
                if let Some(Value::String(d)) = o.get_mut("detail") {
                    *d = scrub_detail(d);
                }
            }
        }
        let mut event = AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            seq: None,
            time: format_time(OffsetDateTime::now_utc()),
            tenant: self.tenant.clone(),
            request_id: self.request_id.clone(),
            actor: self.actor.clone(),
            action: info.action,
            operation: Operation {
                method: self.method.clone(),
                path: self.path.clone(),
                query: self.query.clone(),
                scim: info.scim,
            },
            target,
            outcome: Outcome::from_status(
                status,
                error
                    .and_then(|e| e.scim_type)
                    .map(|t| t.as_str().to_string()),
                detail,
            ),
            latency_ms: (self.started.elapsed().as_micros() as f64) / 1000.0,
            changes: redact_changes(state, info.changes),
            request: self.request.clone(),
            response,
            parent_id: self.parent_id.clone(),
            leaf_hash: None,
        };
        scimtrail_audit::bound::bound(&mut event, &state.config.event_limits);
        event
    }
}

/// An error detail cut before the first quote, where quoted input would start.
fn scrub_detail(d: &str) -> String {
    match d.find(['\'', '"']) {
        Some(i) => format!("{}[REDACTED: the input it quoted names a secret]", &d[..i]),
        None => d.to_string(),
    }
}

impl Ctx {
    /// Whether the request's query or body mentions a secret attribute anywhere.
    fn names_a_secret(&self, state: &AppState) -> bool {
        self.path.contains(scimtrail_audit::REDACTED)
            || self
                .raw_query
                .as_deref()
                .is_some_and(|q| state.redactor.mentions_secret(q))
            || (!self.body.is_empty()
                && state
                    .redactor
                    .mentions_secret(&String::from_utf8_lossy(&self.body)))
    }
}

/// Whether `v` is what [`scimtrail_audit::Redactor::mask`] makes of a value.
fn is_mask(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| {
        s == scimtrail_audit::REDACTED
            || (s.starts_with("[REDACTED hmac-sha256:") && s.ends_with(']'))
    })
}

/// Values of secret or operator-redacted attributes never enter a change record.
pub(crate) fn redact_changes(state: &AppState, mut changes: Vec<Change>) -> Vec<Change> {
    for c in changes.iter_mut() {
        let whole = state.redactor.is_secret_path(&c.path);
        for v in [&mut c.old, &mut c.new] {
            if is_mask(v) {
                // Masked already (a secret's change): masking again would hide nothing more.
            } else if whole && !v.is_null() {
                *v = state.redactor.mask(v);
            } else {
                // A secret inside a complex or multi-valued value (`addresses[].streetAddress`).
                state.redactor.redact_value_of(&c.path, v);
            }
        }
    }
    changes
}

/// The resource type and id a SCIM path names, and the default action and SCIM operation of
/// a request to it — what a failed request's event says.
pub fn classify(reg: &Registry, method: &str, path: &str) -> EventInfo {
    let mut info = EventInfo {
        action: "request".into(),
        ..Default::default()
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["scim", "v2", rest @ ..] => {
            let (ty, id) = match rest {
                [".search"] => (None, None),
                [t] => (Some(*t), None),
                [t, ".search"] => (Some(*t), None),
                [t, id] => (Some(*t), Some(*id)),
                // Nothing is served deeper: a plain request, whatever the first segment.
                _ => (None, None),
            };
            if rest == ["Bulk"] {
                info.action = "bulk".into();
                info.scim = (method == "POST").then(|| "bulk".to_string());
                return info;
            }
            // Only an endpoint names a type here (`/Users`, `/Devices`), not a type's name.
            let kind = ty
                .and_then(|t| reg.resource_type(&format!("/{t}")))
                .filter(|rt| ty.is_some_and(|t| rt.endpoint[1..].eq_ignore_ascii_case(t)));
            // A target only where the path names a type (or a discovery endpoint) the server
            // has: an unknown path is a plain request, not a type of that name.
            let discovery = ty.filter(|t| {
                ["Schemas", "ResourceTypes", "ServiceProviderConfig"]
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(t))
            });
            info.target.resource_type = kind.map(|k| k.name.clone());
            info.target.id = id.filter(|_| kind.is_some()).map(str::to_string);
            let search = rest.last() == Some(&".search");
            let known = kind.is_some() || discovery.is_some();
            let (action, scim) = match (method, id.is_some() && !search, kind) {
                ("POST", _, _) if search && (known || ty.is_none()) => {
                    ("resource.list".to_string(), "search")
                }
                ("POST", false, Some(k)) if !search => (k.action("create"), "create"),
                ("PUT", true, Some(k)) => (k.action("update"), "replace"),
                ("PATCH", true, Some(k)) => (k.action("update"), "patch"),
                ("DELETE", true, Some(k)) => (k.action("delete"), "delete"),
                ("GET", true, _) if known => ("resource.read".into(), "get"),
                ("GET", false, _) if known && !search => ("resource.list".into(), "list"),
                _ => ("request".into(), ""),
            };
            info.action = action;
            info.scim = (!scim.is_empty()).then(|| scim.to_string());
        }
        ["audit", "v1", "events"] => info.action = "audit.list".into(),
        ["audit", "v1", "requests", _] => info.action = "audit.trace".into(),
        ["audit", "v1", "events", id] => {
            info.action = "audit.read".into();
            info.target.resource_type = Some("AuditEvent".into());
            info.target.id = Some(id.to_string());
        }
        ["audit", "v1", "events", id, what @ ("proof" | "leaf")] => {
            info.action = format!("audit.{what}");
            info.target.resource_type = Some("AuditEvent".into());
            info.target.id = Some(id.to_string());
        }
        ["audit", "v1", "resources", ty, id, rest @ ..] => {
            info.action = match rest {
                ["versions"] => "audit.history",
                ["versions", _] => "audit.version",
                ["diff"] => "audit.diff",
                ["restore"] => "resource.restore",
                _ => "request",
            }
            .into();
            info.target.resource_type = Some(
                reg.resource_type(ty)
                    .map_or_else(|| ty.to_string(), |rt| rt.name.clone()),
            );
            info.target.id = Some(id.to_string());
        }
        ["audit", "v1", "revert"] => info.action = "audit.revert".into(),
        ["audit", "v1", what @ ("checkpoint" | "checkpoints" | "consistency" | "log-key")] => {
            info.action = format!("audit.{what}");
        }
        _ => {}
    }
    info
}

/// Changes between two stored forms plus the secrets that were written, never with their
/// values: each is masked (with the redaction key, to its keyed HMAC).
pub fn changes(
    state: &AppState,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
    secrets: &[scimtrail_core::Secret],
) -> Vec<Change> {
    let mut out = diff(old, new);
    out.extend(
        secrets
            .iter()
            .map(|s| Change::secret(&s.path, old.is_none(), state.redactor.mask(s.value()))),
    );
    out
}

/// The identity provider a User-Agent names, if any.
pub fn detect_client(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.to_ascii_lowercase();
    const KNOWN: &[(&[&str], &str)] = &[
        (&["azure", "microsoft", "aad"], "Microsoft Entra ID"),
        (&["okta"], "Okta"),
        (&["onelogin"], "OneLogin"),
        (&["jumpcloud"], "JumpCloud"),
        (&["google"], "Google Workspace"),
        (
            &["pingidentity", "pingfederate", "pingone"],
            "Ping Identity",
        ),
        (&["keycloak"], "Keycloak"),
        (&["authentik"], "authentik"),
    ];
    KNOWN
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| ua.contains(n)))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_routes() {
        let reg = Registry::builtin();
        let classify = |m: &str, p: &str| classify(&reg, m, p);
        let c = classify("POST", "/scim/v2/Users");
        assert_eq!(
            (c.action.as_str(), c.scim.as_deref()),
            ("user.create", Some("create"))
        );
        let c = classify("PATCH", "/scim/v2/Groups/abc");
        assert_eq!(c.action, "group.update");
        assert_eq!(c.target.id.as_deref(), Some("abc"));
        assert_eq!(classify("GET", "/scim/v2/Users").action, "resource.list");
        assert_eq!(
            classify("POST", "/scim/v2/Users/.search").scim.as_deref(),
            Some("search")
        );
        assert_eq!(classify("GET", "/audit/v1/events/x").action, "audit.read");
        let c = classify("POST", "/scim/v2/Bulk");
        assert_eq!(
            (c.action.as_str(), c.scim.as_deref()),
            ("bulk", Some("bulk"))
        );
        assert_eq!(classify("GET", "/nope").action, "request");
        // A type's name is not its endpoint, and an unknown path names no type.
        assert_eq!(classify("POST", "/scim/v2/User").action, "request");
        for (m, p) in [
            ("POST", "/scim/v2/Devicez"),
            ("GET", "/scim/v2/Schemaz"),
            ("GET", "/scim/v2/Users/x/y"),
        ] {
            let c = classify(m, p);
            assert_eq!(
                (c.action.as_str(), c.target.resource_type),
                ("request", None),
                "{p}"
            );
        }
        assert_eq!(classify("GET", "/scim/v2/Schemas").action, "resource.list");
        assert_eq!(
            classify("GET", "/scim/v2/ResourceTypes/User").action,
            "resource.read"
        );
    }

    #[test]
    fn detects_clients() {
        assert_eq!(
            detect_client("Azure AD SCIM Client"),
            Some("Microsoft Entra ID")
        );
        assert_eq!(detect_client("Okta SCIM Client 1.0.0"), Some("Okta"));
        assert_eq!(detect_client("curl/8.0"), None);
    }
}
