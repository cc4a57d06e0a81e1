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

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Route {
    by_status: HashMap<u16, u64>,
    buckets: [u64; 11],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    rejected: [AtomicU64; 7],
    open: AtomicU64,
    accepted: AtomicU64,
    logged: Mutex<HashMap<&'static str, (Instant, u64)>>,
    routes: Mutex<HashMap<String, Route>>,
}

/// The route template of a path, for labels: ids never become label values.
pub fn route_of(method: &str, path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let known = |s: &str| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "scim"
                | "v2"
                | "users"
                | "groups"
                | ".search"
                | "schemas"
                | "resourcetypes"
                | "serviceproviderconfig"
                | "audit"
                | "v1"
                | "events"
                | "requests"
                | "resources"
                | "versions"
                | "diff"
                | "restore"
                | "revert"
                | "proof"
                | "leaf"
                | "checkpoint"
                | "checkpoints"
                | "consistency"
                | "log-key"
        )
    };
    let tpl: Vec<String> = segs
        .iter()
        .take(8)
        .map(|s| {
            if known(s) {
                s.to_string()
            } else {
                "{id}".to_string()
            }
        })
        .collect();
    format!("{method} /{}", tpl.join("/"))
}

/// Each kind of refusal is logged at most this often (with the count since).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What `/metrics` reports of the log and database, as read for one scrape.
#[derive(Debug, Default)]
pub struct LogFigures {
    /// Events in the log (its tree size).
    pub events: Option<u64>,
    pub database_bytes: Option<u64>,
    /// Seconds since the latest checkpoint was signed.
    pub checkpoint_age: Option<f64>,
    pub batches: Option<scimtrail_store::BatchSizes>,
}

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

    /// One answered request.
    pub fn request(&self, route: String, status: u16, seconds: f64) {
        let mut m = match self.routes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        // Bounded label sets: past 200 routes, the rest share one.
        let key = if m.len() >= 200 && !m.contains_key(&route) {
            "other".to_string()
        } else {
            route
        };
        let r = m.entry(key).or_default();
        *r.by_status.entry(status).or_default() += 1;
        r.count += 1;
        r.sum += seconds;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                r.buckets[i] += 1;
            }
        }
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

    /// The Prometheus text exposition, with the figures of the log the caller read.
    pub fn render_with(&self, log: LogFigures) -> String {
        let LogFigures {
            events: log_events,
            database_bytes,
            checkpoint_age,
            batches,
        } = log;
        let mut out = self.render();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        {
            let m = match self.routes.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            let mut routes: Vec<_> = m.iter().collect();
            routes.sort_by(|a, b| a.0.cmp(b.0));
            let _ = writeln!(out, "# HELP scimtrail_requests_total Requests answered, by route and status.\n# TYPE scimtrail_requests_total counter");
            for (route, r) in &routes {
                let mut st: Vec<_> = r.by_status.iter().collect();
                st.sort();
                for (status, n) in st {
                    let _ = writeln!(
                        out,
                        "scimtrail_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        esc(route)
                    );
                }
            }
            let _ = writeln!(out, "# HELP scimtrail_request_duration_seconds Request latency, audit event included.\n# TYPE scimtrail_request_duration_seconds histogram");
            for (route, r) in &routes {
                let route = esc(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "scimtrail_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        r.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "scimtrail_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\nscimtrail_request_duration_seconds_sum{{route=\"{route}\"}} {}\nscimtrail_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    r.count, r.sum, r.count
                );
            }
        }
        if let Some(n) = log_events {
            let _ = writeln!(out, "# HELP scimtrail_audit_events Events in the audit log (its tree size).\n# TYPE scimtrail_audit_events gauge\nscimtrail_audit_events {n}");
        }
        if let Some(n) = database_bytes {
            let _ = writeln!(out, "# HELP scimtrail_database_bytes Size of the database: resources, log, tree and payloads.\n# TYPE scimtrail_database_bytes gauge\nscimtrail_database_bytes {n}");
        }
        if let Some(age) = checkpoint_age {
            let _ = writeln!(out, "# HELP scimtrail_checkpoint_age_seconds Age of the latest signed checkpoint.\n# TYPE scimtrail_checkpoint_age_seconds gauge\nscimtrail_checkpoint_age_seconds {age:.3}");
        }
        if let Some(b) = batches {
            let _ = writeln!(out, "# HELP scimtrail_write_batch_size Jobs per write transaction (group commit).\n# TYPE scimtrail_write_batch_size histogram");
            for (le, n) in &b.buckets {
                let _ = writeln!(out, "scimtrail_write_batch_size_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "scimtrail_write_batch_size_bucket{{le=\"+Inf\"}} {}\nscimtrail_write_batch_size_sum {}\nscimtrail_write_batch_size_count {}",
                b.count, b.sum, b.count
            );
        }
        out
    }

    /// The Prometheus text exposition of the counters.
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
