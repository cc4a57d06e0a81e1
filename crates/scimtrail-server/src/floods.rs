//! Failed authentication, rate-limited per source address.
//!
//! Anyone can send requests with no or a wrong token, and each one is recorded. Up to
//! `per_minute` failures per address and minute get their own event and a 401; beyond that they
//! are answered 429 with `Retry-After` and not recorded one by one: a summary event per address
//! and minute (`auth.failure.suppressed`) records how many there were. Addresses unknown (an
//! in-process caller) are not limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond it the quietest are forgotten.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug)]
struct Window {
    start: Instant,
    failures: u64,
    suppressed: u64,
}

#[derive(Debug)]
pub struct AuthFailures {
    per_minute: u64,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl AuthFailures {
    pub fn new(per_minute: u64) -> Self {
        AuthFailures {
            per_minute: per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count a failure from `ip`; `true` while it is within the rate (record it), `false`
    /// beyond (answer 429, count it for the summary).
    pub fn admit(&self, ip: IpAddr) -> bool {
        let mut w = match self.windows.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        if w.len() >= MAX_ADDRESSES && !w.contains_key(&ip) {
            w.retain(|_, v| v.suppressed > 0 || now.duration_since(v.start) < WINDOW);
            if w.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let e = w.entry(ip).or_insert(Window {
            start: now,
            failures: 0,
            suppressed: 0,
        });
        if now.duration_since(e.start) >= WINDOW && e.suppressed == 0 {
            e.start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures <= self.per_minute {
            true
        } else {
            e.suppressed += 1;
            false
        }
    }

    /// Seconds until `ip`'s window ends (for `Retry-After`).
    pub fn retry_after(&self, ip: IpAddr) -> u64 {
        let w = match self.windows.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        w.get(&ip).map_or(1, |e| {
            WINDOW
                .saturating_sub(Instant::now().duration_since(e.start))
                .as_secs()
                .max(1)
        })
    }

    /// The addresses whose window has ended with suppressed failures, and how many; their
    /// windows start again.
    pub fn drain_due(&self, all: bool) -> Vec<(IpAddr, u64, u64)> {
        let mut w = match self.windows.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let mut out = Vec::new();
        w.retain(|ip, e| {
            let over = now.duration_since(e.start) >= WINDOW;
            if e.suppressed > 0 && (over || all) {
                out.push((*ip, e.suppressed, e.failures));
                return false;
            }
            !over
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_rate_failures_are_counted_not_admitted() {
        let f = AuthFailures::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| f.admit(a)));
        assert!(!f.admit(a));
        assert!(!f.admit(a));
        assert!(f.admit(b), "other addresses are not affected");
        assert!(f.drain_due(false).is_empty(), "the window is still open");
        assert_eq!(f.drain_due(true), vec![(a, 2, 5)]);
        assert!(f.retry_after(a) >= 1);
    }
}
