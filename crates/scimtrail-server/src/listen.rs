//! The accept loop: connection limits and timeouts that hold against slow or idle clients.
//!
//! axum's own `serve` keeps every connection as long as the client wants, and its accept loop
//! logs `Too many open files` once a second while the process is out of descriptors. Here:
//!
//! * at most `max_connections` are open at once; one more is answered `503` with
//!   `Retry-After` and `Connection: close` before anything is read, then closed;
//! * the request head must arrive within `header_timeout`, counted from the moment the
//!   connection is idle — so it is also the keep-alive idle timeout (hyper starts the timer when
//!   it waits for the next request);
//! * the body has its own timeout in the audit middleware (408, recorded);
//! * accept errors (out of descriptors) back off and are logged at most once per 10 s;
//! * what hyper refuses before the application sees a request (a head too large, a URI too
//!   long, bad framing, HTTP/0.9, control bytes in headers, a head that timed out) is counted in
//!   `/metrics` and logged, rate-limited.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::metrics::{Metrics, Reject};

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: default_max_connections(),
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Three quarters of the descriptors the process may open (the rest is for the database,
/// logs and the checkpoint sink), at most 10,000.
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(65_536);
    ((soft as usize).saturating_mul(3) / 4).clamp(16, 10_000)
}

/// The answer to a connection over the limit, written before anything is read.
fn busy() -> Vec<u8> {
    let body = scimtrail_core::ScimError::unavailable("too many open connections; retry shortly")
        .to_json()
        .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/scim+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serve `router` on `listener` until `shutdown` resolves, then let requests in flight finish.
pub async fn run<F>(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: what IdPs speak. (Detecting an HTTP/2 preface first would wait on an idle
    // connection before any timeout runs.)
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    metrics.reject(Reject::AcceptError);
                    if metrics.should_log("accept") {
                        tracing::warn!(error = %e, "cannot accept connections (descriptors exhausted?); backing off");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.reject(Reject::ConnectionLimit);
            if metrics.should_log("limit") {
                tracing::warn!(peer = %peer, max = limits.max_connections, "connection limit reached; refusing");
            }
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let _ = stream.write_all(&busy()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let metrics = metrics.clone();
        metrics.open();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                let reason = classify(&e);
                metrics.reject(reason);
                if metrics.should_log(reason.label()) {
                    tracing::info!(peer = %peer, reason = reason.label(), error = %e, "connection closed by the HTTP layer");
                }
            }
            metrics.close();
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain timeout; stopping anyway");
    }
    Ok(())
}

/// Why hyper gave up on a connection.
fn classify(e: &(dyn std::error::Error + 'static)) -> Reject {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            return if h.is_timeout() {
                Reject::HeaderTimeout
            } else if h.is_parse_too_large() {
                Reject::TooLarge
            } else if h.is_parse() || h.is_parse_status() {
                Reject::Malformed
            } else if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                Reject::Disconnected
            } else {
                Reject::Other
            };
        }
        if err.downcast_ref::<std::io::Error>().is_some() {
            return Reject::Disconnected;
        }
        cur = err.source();
    }
    Reject::Other
}
