//! `GET /audit/v1/stream`: the live tail, over a real connection.

use std::time::Duration;

use scimtrail_server::ServerConfig;
use serde_json::Value;

use crate::helpers::*;

/// An open SSE response and what has been read of it.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
        let mut req = app
            .client
            .get(app.url(&format!("/audit/v1/stream{query}")))
            .bearer_auth(TOKEN);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.unwrap()
    }

    /// The next `audit` event as (SSE id, event), or `None` when the stream ends.
    async fn next(&mut self) -> Option<(String, Value)> {
        // Keep-alive comments arrive every 15 s; an event must come within 20 s regardless.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if kind.as_deref() == Some("audit") {
                    return Some((
                        id.expect("every event has an id"),
                        serde_json::from_str(&data).unwrap(),
                    ));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("the stream delivers an event within 20 s")
                .unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// Creates seen live, a reconnect with `Last-Event-ID` resuming exactly after the last event
/// delivered while more arrive, and the stream ending when the server shuts down. The tail's
/// fallback poll is an hour here: only the store's commit notice can wake it in time.
#[tokio::test]
async fn the_tail_follows_commits_and_resumes_without_gaps_or_repeats() {
    let mut app = spawn_with(ServerConfig {
        tail_poll: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    app.create_user("before").await;
    let filter = enc(r#"action eq "user.create""#);
    let resp = Sse::open(&app, &format!("?filter={filter}"), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut sse = Sse {
        resp,
        buf: String::new(),
    };
    // Without `after`, the tail starts at the end: the earlier create is not sent.
    let mut names = vec![];
    for i in 0..3 {
        app.create_user(&format!("live-{i}")).await;
    }
    let mut last_id = String::new();
    for _ in 0..3 {
        let (id, e) = sse.next().await.unwrap();
        assert_eq!(id, e["seq"].to_string(), "the SSE id is the event's seq");
        names.push(e["target"]["display"].as_str().unwrap().to_string());
        last_id = id;
    }
    assert_eq!(names, ["live-0", "live-1", "live-2"]);
    drop(sse);

    // Events committed while nobody listens, then a reconnect from the last id.
    for i in 3..5 {
        app.create_user(&format!("live-{i}")).await;
    }
    let resp = Sse::open(&app, &format!("?filter={filter}&after=0"), Some(&last_id)).await;
    let mut sse = Sse {
        resp,
        buf: String::new(),
    };
    app.create_user("live-5").await;
    let mut again = vec![];
    for _ in 0..3 {
        let (_, e) = sse.next().await.unwrap();
        again.push(e["target"]["display"].as_str().unwrap().to_string());
    }
    assert_eq!(
        again,
        ["live-3", "live-4", "live-5"],
        "Last-Event-ID wins over after"
    );

    // `after` alone replays from there, the earliest create included.
    let resp = Sse::open(&app, &format!("?filter={filter}&after=0"), None).await;
    let mut replay = Sse {
        resp,
        buf: String::new(),
    };
    let (_, first) = replay.next().await.unwrap();
    assert_eq!(first["target"]["display"], "before");
    drop(replay);

    // Following the log is itself recorded.
    let events = app.all_events().await;
    assert!(events
        .iter()
        .any(|e| e["operation"]["path"] == "/audit/v1/stream" && e["outcome"]["status"] == 200));

    // Shutdown ends the stream instead of waiting for it.
    let stopping = tokio::time::timeout(Duration::from_secs(10), app.stop());
    let (stopped, end) = tokio::join!(stopping, sse.next());
    assert!(stopped.is_ok(), "the server stopped with a tail open");
    assert!(end.is_none(), "the stream ended");
}

#[tokio::test]
async fn bad_tail_requests_get_scim_errors() {
    let app = spawn_app().await;
    app.get("/audit/v1/stream?after=abc")
        .await
        .assert_error(400, Some("invalidValue"));
    app.get(&format!("/audit/v1/stream?filter={}", enc("nosuch eq 1")))
        .await
        .assert_error(400, Some("invalidFilter"));
    app.get(&format!("/audit/v1/stream?filter={}", enc("action eq")))
        .await
        .assert_error(400, Some("invalidFilter"));
    let r = app
        .raw(
            app.client
                .get(app.url("/audit/v1/stream"))
                .bearer_auth("wrong"),
        )
        .await;
    assert_eq!(r.status, 401);
}
