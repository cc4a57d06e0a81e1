//! SIGTERM lets a request that is already in flight finish (and be recorded) before the
//! process exits cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[test]
fn sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[("RUST_LOG", "info")]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let body = r#"{"userName": "in-flight", "displayName": "sent in two halves"}"#;
    let (first, second) = body.split_at(20);

    // Start a request and send only half of its body.
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nX-Request-Id: in-flight-1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
        common::TOKEN,
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Ask the server to stop while the request is half-way, then finish sending it.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(second.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "in-flight request completed: {response}"
    );
    assert!(response
        .to_ascii_lowercase()
        .contains("x-request-id: in-flight-1"));

    let output = server.terminate_after_signal();
    assert!(output.contains("shutting down"), "{output}");

    // It was recorded, and the database opens again with the user in it.
    let server = common::start(dir.path(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = common::client();
        let auth = format!("Bearer {}", common::TOKEN);
        let r = c
            .get(server.url("/audit/v1/events?filter=requestId%20eq%20%22in-flight-1%22"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["Resources"][0]["outcome"]["status"], 201, "{v}");
        assert_eq!(v["Resources"][0]["action"], "user.create");
    });
    server.terminate();
}
