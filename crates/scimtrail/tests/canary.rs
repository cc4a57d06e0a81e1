//! A password sent to the server must appear nowhere: not in the SQLite files, not through the
//! audit API, not in the server's log output (at debug level).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

#[tokio::test]
async fn password_canary_never_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[("RUST_LOG", "debug")]);
    let canary = format!("Canary-{}-Pw", uuid_like());
    let c = common::client();
    let auth = format!("Bearer {}", common::TOKEN);
    let send = |method: reqwest::Method, path: &str, body: String| {
        c.request(method, server.url(path))
            .header("authorization", &auth)
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
    };

    let r = send(
        reqwest::Method::POST,
        "/scim/v2/Users",
        json!({"userName": "canary", "password": canary, "groups": []}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_string();
    assert!(!user.to_string().contains(&canary));
    let path = format!("/scim/v2/Users/{id}");

    let writes = [
        (reqwest::Method::PUT, json!({"userName": "canary", "password": canary}).to_string()),
        (reqwest::Method::PATCH, json!({"Operations": [{"op": "replace", "path": "password", "value": canary}]}).to_string()),
        (reqwest::Method::PATCH, json!({"Operations": [{"op": "Replace", "value": {"password": canary, "active": false}}]}).to_string()),
        (reqwest::Method::PATCH, json!({"Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": canary}]}).to_string()),
        // Malformed JSON that still carries the password.
        (reqwest::Method::PATCH, format!(r#"{{"Operations":[{{"op":"replace","path":"password","value":"{canary}"}}"#)),
        (reqwest::Method::PUT, format!(r#"{{"userName":"canary","password":"{canary}""#)),
        // Two `path` keys that differ in case; JSON escapes in the key; a non-string value.
        (reqwest::Method::PATCH, format!(r#"{{"Operations":[{{"op":"replace","Path":"active","path":"password","value":"{canary}"}}]}}"#)),
        (reqwest::Method::PUT, format!(r#"{{"userName":"canary","pass\u0077ord":"{canary}"}}"#)),
        (reqwest::Method::PUT, format!(r#"{{"userName":"canary","pass\u0077ord":"{canary}""#)),
        (reqwest::Method::PUT, format!(r#"{{"userName":"canary","password":{{"v":"{canary}"}}}}"#)),
        // Over the audit body cap (the escape hides the key from a naive text scan).
        (reqwest::Method::PUT, format!(r#"{{"userName":"canary","pass\u0077ord":"{canary}","nickName":"{}"}}"#, "n".repeat(200_000))),
        // Not JSON at all.
        (reqwest::Method::PUT, format!("userName=canary&password={canary}")),
        // Bad input next to a password.
        (reqwest::Method::PUT, json!({"userName": 5, "password": canary}).to_string()),
    ];
    for (m, body) in writes {
        let r = send(m, &path, body).await.unwrap();
        assert!(r.status().as_u16() < 500, "{}", r.status());
        let text = r.text().await.unwrap();
        assert!(!text.contains(&canary), "response leaks: {text}");
    }
    // Filtering by the password is refused, and the probe is not recorded.
    let probe = format!("password eq \"{canary}\"");
    let r = c
        .get(server.url("/scim/v2/Users"))
        .query(&[("filter", probe.as_str())])
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A bearer token never reaches the log either.
    let r = c
        .get(server.url("/scim/v2/Users"))
        .header("authorization", format!("Bearer {canary}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let events = c
        .get(server.url("/audit/v1/events?count=1000"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        events.contains("[REDACTED]"),
        "the password writes are recorded, redacted"
    );
    assert!(!events.contains(&canary), "audit API leaks the password");

    let logs = server.terminate();
    assert!(
        logs.contains("request"),
        "the server logged requests: {logs}"
    );
    assert!(
        !logs.contains(&canary),
        "server log leaks the password:\n{logs}"
    );

    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        scanned += bytes.len();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{} contains the password",
            p.display()
        );
    }
    assert!(
        scanned > 10_000,
        "the database files were scanned ({scanned} bytes)"
    );
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{:x}{:x}", t.as_nanos(), std::process::id())
}
