use reqwest::Method;
use scimtrail_server::ServerConfig;
use serde_json::json;

use crate::helpers::*;

/// Send raw text as a body.
async fn send_text(app: &TestApp, method: Method, path: &str, body: &str) -> Resp {
    app.raw(
        app.client
            .request(method, app.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string()),
    )
    .await
}

/// Every bad input gets its SCIM error and leaves exactly one failure event.
async fn check(app: &TestApp, r: Resp, status: u16, scim_type: Option<&str>) {
    r.assert_error(status, scim_type);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["outcome"]["result"], "failure");
    assert_eq!(e["outcome"]["status"], status);
    assert_eq!(e["outcome"]["scimType"].as_str(), scim_type);
    assert!(e["outcome"]["detail"].as_str().is_some());
}

#[tokio::test]
async fn bad_input_is_a_scim_error_with_an_event() {
    let app = spawn_app().await;
    let uid = app.create_user("someone").await.id();
    let user = format!("/scim/v2/Users/{uid}");

    check(
        &app,
        send_text(&app, Method::POST, "/scim/v2/Users", "{\"userName\": ").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        send_text(&app, Method::POST, "/scim/v2/Users", "").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        send_text(&app, Method::PATCH, &user, "[1, 2").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    // Wrong JSON types.
    check(
        &app,
        app.post("/scim/v2/Users", json!({"userName": 42})).await,
        400,
        Some("invalidValue"),
    )
    .await;
    check(
        &app,
        app.post(
            "/scim/v2/Users",
            json!({"userName": "x", "active": "maybe"}),
        )
        .await,
        400,
        Some("invalidValue"),
    )
    .await;
    check(
        &app,
        app.post(
            "/scim/v2/Users",
            json!({"userName": "x", "name": "not-an-object"}),
        )
        .await,
        400,
        Some("invalidValue"),
    )
    .await;
    check(
        &app,
        app.post("/scim/v2/Users", json!({"userName": "x", "emails": [42]}))
            .await,
        400,
        Some("invalidValue"),
    )
    .await;
    check(
        &app,
        app.post("/scim/v2/Users", json!(["not", "an", "object"]))
            .await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    // Unknown resource type, unknown attribute.
    check(
        &app,
        app.post("/scim/v2/Widgets", json!({"name": "w"})).await,
        404,
        None,
    )
    .await;
    check(&app, app.get("/scim/v2/Widgets").await, 404, None).await;
    check(
        &app,
        app.post(
            "/scim/v2/Users",
            json!({"userName": "x", "favouriteColour": "blue"}),
        )
        .await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    // Missing required attribute.
    check(
        &app,
        app.post("/scim/v2/Users", json!({"name": {"givenName": "x"}}))
            .await,
        400,
        Some("invalidValue"),
    )
    .await;
    check(
        &app,
        app.post("/scim/v2/Groups", json!({"members": []})).await,
        400,
        Some("invalidValue"),
    )
    .await;
    // Unknown op; bad path; unknown attribute in a path; remove without path.
    check(
        &app,
        app.patch(
            &user,
            json!({"Operations": [{"op": "frobnicate", "path": "active", "value": true}]}),
        )
        .await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        app.patch(
            &user,
            json!({"Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]}),
        )
        .await,
        400,
        Some("invalidPath"),
    )
    .await;
    check(
        &app,
        app.patch(
            &user,
            json!({"Operations": [{"op": "replace", "path": "nosuchattr", "value": "x"}]}),
        )
        .await,
        400,
        Some("invalidPath"),
    )
    .await;
    check(
        &app,
        app.patch(&user, json!({"Operations": [{"op": "remove"}]}))
            .await,
        400,
        Some("noTarget"),
    )
    .await;
    check(
        &app,
        app.patch(&user, json!({"Operations": "nope"})).await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    // Bad filters.
    for f in [
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
        "userName eq \"a\" and",
        "\"a\" eq userName",
        // Comparisons that do not fit the attribute's type (RFC 7644 §3.4.2.2).
        "active gt true",
        "userName gt true",
        "meta.created gt \"not-a-date\"",
        "emails[value eq 5]",
        "name.givenName lt null",
    ] {
        check(
            &app,
            app.get(&format!("/scim/v2/Users?filter={}", enc(f))).await,
            400,
            Some("invalidFilter"),
        )
        .await;
    }
    check(
        &app,
        app.get("/scim/v2/Users?count=lots").await,
        400,
        Some("invalidValue"),
    )
    .await;
    // Nothing above changed the user.
    let u = app.get(&user).await;
    assert_eq!(u.header("etag"), Some("W/\"1\""));
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = spawn_with(ServerConfig {
        max_body_bytes: 2048,
        ..Default::default()
    })
    .await;
    let big = json!({"userName": "x".repeat(4096)});
    check(&app, app.post("/scim/v2/Users", big).await, 413, None).await;
    let ok = app
        .post("/scim/v2/Users", json!({"userName": "small"}))
        .await;
    assert_eq!(ok.status, 201);
}

#[tokio::test]
async fn default_limit_is_one_mebibyte() {
    let app = spawn_app().await;
    let big = json!({"userName": "y", "displayName": "z".repeat(1024 * 1024 + 10)});
    check(&app, app.post("/scim/v2/Users", big).await, 413, None).await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_and_recorded() {
    let app = spawn_app().await;
    let r = app.raw(app.client.get(app.url("/scim/v2/Users"))).await;
    r.assert_error(401, None);
    assert!(r.header("www-authenticate").is_some());
    let r2 = app
        .raw(
            app.client
                .get(app.url("/scim/v2/Users"))
                .bearer_auth("wrong-token"),
        )
        .await;
    r2.assert_error(401, None);
    let r3 = app
        .raw(
            app.client
                .get(app.url("/audit/v1/events"))
                .bearer_auth("wrong-token"),
        )
        .await;
    r3.assert_error(401, None);
    for r in [&r, &r2, &r3] {
        let e = app.event_of(&r.request_id()).await;
        assert_eq!(e["action"], "auth.failure");
        assert_eq!(e["actor"]["kind"], "anonymous");
        assert_eq!(e["outcome"]["status"], 401);
    }
    let e = app.event_of(&r2.request_id()).await;
    assert!(
        !e.to_string().contains("wrong-token"),
        "the token never reaches the log"
    );
    assert_eq!(e["request"]["headers"]["authorization"], "[REDACTED]");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = spawn_app().await;
    check(&app, app.get("/scim/v2/Users/a/b/c").await, 404, None).await;
    check(&app, app.get("/nothing-here").await, 404, None).await;
    check(
        &app,
        app.get("/scim/v2/Users/%FF").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        app.get("/scim/v2/%FF").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        app.get("/audit/v1/events/%FF").await,
        400,
        Some("invalidSyntax"),
    )
    .await;
    check(
        &app,
        app.send(Method::PUT, "/scim/v2/Users", Some(&json!({})), &[])
            .await,
        405,
        None,
    )
    .await;
}

/// Raw HTTP/1.1 over TCP, for bodies reqwest would not send (chunked, or never finished).
async fn raw_http(app: &TestApp, head: &str, chunks: &[&str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&app.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for c in chunks {
        s.write_all(c.as_bytes()).await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn request_id_of(response: &str) -> String {
    response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id")
        .trim()
        .to_string()
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_and_stalled_bodies() {
    let app = spawn_with(ServerConfig {
        max_body_bytes: 1000,
        body_read_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let head = |extra: &str| {
        format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    // No Content-Length: the limit is enforced while reading.
    let chunk = format!("{:x}\r\n{}\r\n", 800, "x".repeat(800));
    let r = raw_http(
        &app,
        &head("Transfer-Encoding: chunked\r\n"),
        &[&chunk, &chunk, "0\r\n\r\n"],
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    let e = app.event_of(&request_id_of(&r)).await;
    assert_eq!(e["outcome"]["status"], 413);
    assert_eq!(e["request"]["truncated"], true);

    // A body that stops arriving gets 408 and its event.
    let r = raw_http(&app, &head("Content-Length: 50\r\n"), &["{\"userName\": "]).await;
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    let e = app.event_of(&request_id_of(&r)).await;
    assert_eq!(e["outcome"]["status"], 408);
    assert_eq!(e["action"], "user.create");
}
