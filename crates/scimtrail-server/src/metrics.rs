//! Counters for `/metrics` (Prometheus text format) and rate-limited logging of what the HTTP
//! layer refuses before a request reaches the application.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a connection ended without (or after) requests the application saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Over `max_connections`: answered 503 before reading.
    ConnectionLimit,
    /// `accept` failed (descriptors exhausted).
    AcceptError,
    /// The request head did not arrive in time (slow or idle client).
    HeaderTimeout,
    /// Head or URI too large (431, 414).
    TooLarge,
    /// Bad framing, bad `Content-Length`, HTTP/0.9, control bytes in a header (400).
    Malformed,
    /// The client went away mid-request.
    Disconnected,
    Other,
}

const REASONS: [Reject; 7] = [
    Reject::ConnectionLimit,
    Reject::AcceptError,
    Reject::HeaderTimeout,
    Reject::TooLarge,
    Reject::Malformed,
    Reject::Disconnected,
    Reject::Other,
];

impl Reject {
    pub fn label(self) -> &'static str {
        match self {
            Reject::ConnectionLimit => "connection_limit",
            Reject::AcceptError => "accept_error",
            Reject::HeaderTimeout => "header_timeout",
            Reject::TooLarge => "too_large",
            Reject::Malformed => "malformed",
            Reject::Disconnected => "disconnected",
            Reject::Other => "other",
        }
    }
    fn index(self) -> usize {
        REASONS.iter().position(|r| *r == self).unwrap_or(0)
    }
}

#[derive(Default)]
pub struct Metrics {
    rejected: [AtomicU64; 7],
    open: AtomicU64,
    accepted: AtomicU64,
    logged: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

/// Each kind of refusal is logged at most this often (with the count since).
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Metrics {
    pub fn reject(&self, why: Reject) {
        if let Some(c) = self.rejected.get(why.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected
            .get(why.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
    pub fn open(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }
    pub fn close(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether to log an occurrence of `key` now (at most once per 10 s per key).
    pub fn should_log(&self, key: &'static str) -> bool {
        let mut m = match self.logged.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        match m.get_mut(key) {
            Some((at, n)) if now.duration_since(*at) < LOG_EVERY => {
                *n += 1;
                false
            }
            _ => {
                m.insert(key, (now, 0));
                true
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP scimtrail_http_rejected_total Connections or requests the HTTP layer refused or lost before the application answered.\n# TYPE scimtrail_http_rejected_total counter"
        );
        for r in REASONS {
            let _ = writeln!(
                out,
                "scimtrail_http_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                self.rejected(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimtrail_connections_open Open client connections.\n# TYPE scimtrail_connections_open gauge\nscimtrail_connections_open {}",
            self.open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scimtrail_connections_accepted_total Client connections accepted.\n# TYPE scimtrail_connections_accepted_total counter\nscimtrail_connections_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        out
    }
}
