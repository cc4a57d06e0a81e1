use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::*;

const FIELDS: &[&str] = &[
    "id",
    "seq",
    "time",
    "tenant",
    "requestId",
    "actor",
    "action",
    "operation",
    "target",
    "outcome",
    "latencyMs",
    "changes",
    "request",
    "response",
    "parentId",
    "leafHash",
];

#[tokio::test]
async fn every_request_gets_exactly_one_complete_event() {
    let app = spawn_app().await;
    let mut rids = Vec::new();
    let c = app.create_user("ann").await;
    rids.push(c.request_id());
    let id = c.id();
    rids.push(app.get(&format!("/scim/v2/Users/{id}")).await.request_id());
    rids.push(app.get("/scim/v2/Users").await.request_id());
    rids.push(
        app.patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"Operations": [{"op": "replace", "path": "title", "value": "Dr"}]}),
        )
        .await
        .request_id(),
    );
    rids.push(app.get("/scim/v2/Users/nope").await.request_id());
    rids.push(
        app.raw(app.client.get(app.url("/scim/v2/Users")))
            .await
            .request_id(),
    );
    rids.push(
        app.delete(&format!("/scim/v2/Users/{id}"))
            .await
            .request_id(),
    );

    let events = app.all_events().await;
    for rid in &rids {
        let matching: Vec<&Value> = events
            .iter()
            .filter(|e| e["requestId"] == rid.as_str())
            .collect();
        assert_eq!(matching.len(), 1, "request {rid}");
        let e = matching[0];
        for f in FIELDS {
            assert!(e.get(*f).is_some(), "field {f} missing in {e}");
        }
        assert_eq!(e["tenant"], "default");
        assert_eq!(e["target"]["system"], "test-system");
        assert!(e["time"].as_str().unwrap().len() == "2026-11-28T13:32:22.123456Z".len());
        assert!(e["leafHash"].as_str().unwrap().len() == 44);
        assert!(
            uuid::Uuid::parse_str(e["id"].as_str().unwrap())
                .unwrap()
                .get_version_num()
                == 7
        );
    }
    // seq: 0, 1, 2… with no gaps.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len());
}

#[tokio::test]
async fn request_ids_round_trip() {
    let app = spawn_app().await;
    let r = app
        .send(
            reqwest::Method::GET,
            "/scim/v2/Users",
            None,
            &[("x-request-id", "client-chosen-42")],
        )
        .await;
    assert_eq!(r.request_id(), "client-chosen-42");
    let e = app.event_of("client-chosen-42").await;
    assert_eq!(e["action"], "resource.list");
    assert_eq!(e["operation"]["scim"], "list");
    let evil = app
        .send(
            reqwest::Method::GET,
            "/scim/v2/Users",
            None,
            &[("x-request-id", "bad id with spaces")],
        )
        .await;
    assert_ne!(evil.request_id(), "bad id with spaces");
    app.event_of(&evil.request_id()).await;
}

#[tokio::test]
async fn events_name_actor_client_and_redact() {
    let app = spawn_app().await;
    let r = app
        .send(
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(&json!({"userName": "okta-user", "password": "hunter2-canary"})),
            &[("user-agent", "Okta SCIM Client 1.0.0")],
        )
        .await;
    assert_eq!(r.status, 201);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["actor"]["kind"], "token");
    assert_eq!(e["actor"]["name"], "bootstrap");
    assert_eq!(e["actor"]["client"], "Okta");
    assert_eq!(e["actor"]["userAgent"], "Okta SCIM Client 1.0.0");
    assert_eq!(e["actor"]["ip"], "127.0.0.1");
    assert_eq!(e["action"], "user.create");
    assert_eq!(e["operation"]["method"], "POST");
    assert_eq!(e["operation"]["path"], "/scim/v2/Users");
    assert_eq!(e["target"]["type"], "User");
    assert_eq!(e["target"]["display"], "okta-user");
    assert_eq!(e["request"]["body"]["password"], "[REDACTED]");
    assert_eq!(e["request"]["body"]["userName"], "okta-user");
    assert_eq!(e["request"]["headers"]["authorization"], "[REDACTED]");
    assert_eq!(e["response"]["body"]["userName"], "okta-user");
    assert_eq!(e["response"]["headers"]["etag"], "W/\"1\"");
    assert!(e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "password" && c["new"] == "[REDACTED]"));
    assert!(!e.to_string().contains("hunter2-canary"));

    let entra = app
        .send(
            reqwest::Method::GET,
            "/scim/v2/Users",
            None,
            &[("user-agent", "Azure AD SCIM Client")],
        )
        .await;
    assert_eq!(
        app.event_of(&entra.request_id()).await["actor"]["client"],
        "Microsoft Entra ID"
    );
}

#[tokio::test]
async fn query_filters_and_cursor() {
    let app = spawn_app().await;
    let a = app.create_user("a").await.id();
    let b = app.create_user("b").await.id();
    for _ in 0..3 {
        app.get(&format!("/scim/v2/Users/{a}")).await;
    }
    let r = app
        .get(&format!(
            "/audit/v1/events?filter={}",
            enc(&format!("target.id eq \"{a}\""))
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["Resources"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["action"], "resource.read", "newest first");
    assert_eq!(items[3]["action"], "user.create");
    assert!(items.iter().all(|e| e["target"]["id"] == a.as_str()));
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));

    let r = app
        .get(&format!(
            "/audit/v1/events?filter={}",
            enc("actor.name eq \"bootstrap\" and action eq \"user.create\"")
        ))
        .await;
    let items = r.body["Resources"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["target"]["id"], b);

    // Cursor paging visits every event once.
    let mut seen = Vec::new();
    let mut path = "/audit/v1/events?count=2".to_string();
    loop {
        let p = app.get(&path).await;
        assert_eq!(p.status, 200, "{}", p.body);
        seen.extend(
            p.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match p.body["nextCursor"].as_str() {
            Some(c) => path = format!("/audit/v1/events?count=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    sorted.dedup();
    assert_eq!(seen, sorted, "descending, no repeats");
    assert_eq!(*seen.last().unwrap(), 0);

    let one = &app.get("/audit/v1/events?count=1").await.body["Resources"][0];
    let by_id = app
        .get(&format!("/audit/v1/events/{}", one["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_id.status, 200);
    assert_eq!(&by_id.body, one);
    app.get("/audit/v1/events/nope")
        .await
        .assert_error(404, None);
    app.get(&format!("/audit/v1/events?filter={}", enc("nosuch eq 1")))
        .await
        .assert_error(400, Some("invalidFilter"));
    app.get("/audit/v1/events?cursor=garbage")
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn leaf_hash_is_the_hash_of_the_commitment_bytes() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    let app = spawn_app().await;
    app.create_user("hash-me").await;
    let e = app
        .get("/audit/v1/events?count=1&filter=action%20eq%20%22user.create%22")
        .await
        .body["Resources"][0]
        .clone();
    let id = e["id"].as_str().unwrap();
    let (status, leaf) = app.get_text(&format!("/audit/v1/events/{id}/leaf")).await;
    assert_eq!(status, 200);
    // The leaf hash is SHA-256(0x00 ‖ the bytes served), computed here without our crates.
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf.as_bytes());
    assert_eq!(e["leafHash"], b64.encode(h.finalize()));
    // The commitment form holds digests, not values: no body or attribute value in the leaf
    // (the envelope — who, what, where — stays in the clear, target.display included).
    for value in ["hash-me@example.com", "Given", "Family"] {
        assert!(!leaf.contains(value), "{value} in {leaf}");
    }
    let c: Value = serde_json::from_str(&leaf).unwrap();
    assert_eq!(c["leafFormat"], 1);
    assert_eq!(c["seq"], e["seq"]);
    assert_eq!(c["action"], "user.create");
    assert_eq!(c["changes"][0]["path"], e["changes"][0]["path"]);
    // Each digest is SHA-256(salt ‖ JCS(value)) of the value the event shows.
    let salt = b64.decode(e["salt"].as_str().unwrap()).unwrap();
    assert_eq!(salt.len(), 16);
    let digest = |v: &Value| {
        let bytes = serde_json_canonicalizer::to_string(v).unwrap();
        let mut h = Sha256::new();
        h.update(&salt);
        h.update(bytes.as_bytes());
        json!({"sha256": b64.encode(h.finalize()), "size": bytes.len()})
    };
    assert_eq!(c["response"]["body"], digest(&e["response"]["body"]));
    assert_eq!(c["request"]["body"], digest(&e["request"]["body"]));
    assert_eq!(c["changes"][0]["new"], digest(&e["changes"][0]["new"]));
    // The bytes are canonical: keys sorted, no whitespace.
    assert_eq!(leaf, serde_json_canonicalizer::to_string(&c).unwrap());
}

#[tokio::test]
async fn operator_configured_attributes_are_redacted_in_the_log() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        redact_attributes: vec!["employeeNumber".into(), "streetAddress".into()],
        ..Default::default()
    })
    .await;
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let r = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "emp", ent: {"employeeNumber": "E-777-SECRET"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body[ent]["employeeNumber"], "E-777-SECRET",
        "the resource keeps it"
    );
    let id = r.id();
    let p = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"Operations": [{"op": "replace", "path": format!("{ent}:employeeNumber"), "value": "E-888-SECRET"}]}),
        )
        .await;
    assert_eq!(p.status, 200);
    let e = app.event_of(&p.request_id()).await;
    let c = &e["changes"][0];
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("[REDACTED]"), Some("[REDACTED]"))
    );
    // Inside a multi-valued attribute, changed through a value filter and through PUT.
    let p = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"Operations": [{"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 SECRET ST"}]}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let put = json!({"userName": "emp", "addresses": [{"type": "work", "streetAddress": "2 SECRET AVE"}]});
    assert_eq!(
        app.put(&format!("/scim/v2/Users/{id}"), put).await.status,
        200
    );
    app.get(&format!("/scim/v2/Users/{id}")).await;
    let all = serde_json::to_string(&app.all_events().await).unwrap();
    assert!(
        !all.contains("E-777-SECRET") && !all.contains("E-888-SECRET"),
        "{all}"
    );
    assert!(
        !all.contains("SECRET ST") && !all.contains("SECRET AVE"),
        "{all}"
    );
}

#[tokio::test]
async fn filters_on_secrets_are_refused_and_not_recorded() {
    let app = spawn_app().await;
    let r = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("password eq \"hunter2-probe\"")
        ))
        .await;
    r.assert_error(400, Some("invalidFilter"));
    let s = app
        .post(
            "/scim/v2/Users/.search",
            json!({"filter": "password pr or emails[password eq \"hunter2-probe\"]"}),
        )
        .await;
    s.assert_error(400, Some("invalidFilter"));
    let all = serde_json::to_string(&app.all_events().await).unwrap();
    assert!(!all.contains("hunter2-probe"), "{all}");
    assert_eq!(
        app.event_of(&r.request_id()).await["operation"]["query"],
        "[REDACTED]"
    );
}

#[tokio::test]
async fn reading_the_log_is_recorded_without_copying_it() {
    let app = spawn_app().await;
    app.create_user("x").await;
    let r = app.get("/audit/v1/events?count=10").await;
    assert_eq!(r.status, 200);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "audit.list");
    assert_eq!(e["actor"]["name"], "bootstrap");
    assert_eq!(e["response"]["body"]["omitted"], "audit log content");
    assert!(!e["response"]["body"].to_string().contains("user.create"));
}

/// Credentials in a query string or in headers never reach the log (issue 11, findings 2–3):
/// neither through the API nor in the database files.
#[tokio::test]
async fn finding_02_03_credentials_in_queries_and_headers_are_redacted() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        redact_headers: vec!["X-Tenant-Pin".into()],
        ..Default::default()
    })
    .await;
    let canaries = [
        "canary-auth-token-1",
        "canary-client-secret-2",
        "canary-password-3",
        "canary-pin-4",
        "canary-code-5",
    ];
    let r = app
        .raw(
            app.client
                .get(app.url(&format!(
                    "/scim/v2/Users?access_token={TOKEN}&token={TOKEN}&code={}&count=1",
                    canaries[4]
                )))
                .header("X-Auth-Token", canaries[0])
                .header("X-Client-Secret", canaries[1])
                .header("X-Password", canaries[2])
                .header("X-Tenant-Pin", canaries[3]),
        )
        .await;
    assert_eq!(r.status, 401);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(e["action"], "auth.failure");
    assert_eq!(
        e["operation"]["query"],
        "access_token=[REDACTED]&token=[REDACTED]&code=[REDACTED]&count=1"
    );
    for h in [
        "x-auth-token",
        "x-client-secret",
        "x-password",
        "x-tenant-pin",
    ] {
        assert_eq!(e["request"]["headers"][h], "[REDACTED]", "{h}");
    }
    let ok = app
        .get(&format!("/scim/v2/Users?count=1&api_key={}", canaries[4]))
        .await;
    assert_eq!(ok.status, 200);
    let e = app.event_of(&ok.request_id()).await;
    assert_eq!(e["operation"]["query"], "count=1&api_key=[REDACTED]");
    app.checkpoint_at_least(2).await;
    for text in app.stored_texts() {
        for c in canaries.iter().copied().chain([TOKEN]) {
            assert!(!text.contains(c), "{c} is stored in clear");
        }
    }
}

/// `/metrics` (issue 7, item 5, in part): requests by route template and status, a latency
/// histogram, the log's size and the age of its latest checkpoint. Ids never become labels.
#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    let id = app.create_user("metrics").await.id();
    assert_eq!(app.get(&format!("/scim/v2/Users/{id}")).await.status, 200);
    assert_eq!(app.get("/scim/v2/Users/nope").await.status, 404);
    app.checkpoint_at_least(3).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "scimtrail_requests_total{route=\"POST /scim/v2/Users\",status=\"201\"} 1",
        "scimtrail_requests_total{route=\"GET /scim/v2/Users/{id}\",status=\"200\"} 1",
        "scimtrail_requests_total{route=\"GET /scim/v2/Users/{id}\",status=\"404\"} 1",
        "scimtrail_request_duration_seconds_count{route=\"GET /scim/v2/Users/{id}\"} 2",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains(&id), "an id as a label");
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    assert!(value("scimtrail_audit_events ") >= 3.0);
    // The database's size, which grows with the log.
    let bytes = value("scimtrail_database_bytes ");
    for i in 0..100 {
        app.create_user(&format!("grow-{i}")).await;
    }
    let scrape = app.get_text("/metrics").await.1;
    let grown: f64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix("scimtrail_database_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{scrape}"));
    assert!(bytes > 0.0 && grown > bytes, "{bytes} then {grown}");
    let age = value("scimtrail_checkpoint_age_seconds ");
    assert!((0.0..60.0).contains(&age), "{age}");
    // Every write went through a batch of at least one job; the histogram is cumulative.
    // PostgreSQL commits each job in a transaction of its own: it has no batches to show.
    if super::helpers::postgres_backend() {
        assert!(!text.contains("scimtrail_write_batch_size"), "{text}");
        return;
    }
    let batches = value("scimtrail_write_batch_size_count ");
    assert!(batches >= 1.0, "{text}");
    assert!(value("scimtrail_write_batch_size_sum ") >= batches);
    assert_eq!(
        value("scimtrail_write_batch_size_bucket{le=\"+Inf\"} "),
        batches
    );
    assert!(value("scimtrail_write_batch_size_bucket{le=\"1\"} ") <= batches);
}

/// Operator-configured attributes to redact may be dotted paths (issue 7, item 6): only that
/// sub-attribute is redacted, in bodies, PATCH values and changes.
#[tokio::test]
async fn dotted_redact_attributes_redact_only_that_sub_attribute() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        redact_attributes: vec!["addresses.streetAddress".into()],
        ..Default::default()
    })
    .await;
    let canary = "canary-street-17";
    let r = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "dotted", "addresses": [{"type": "work", "streetAddress": canary, "locality": "Oslo"}],
                   "name": {"givenName": "streetAddress-as-text"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.id();
    let e = app.event_of(&r.request_id()).await;
    assert!(!e.to_string().contains(canary), "{e}");
    assert_eq!(
        e["request"]["body"]["addresses"][0]["streetAddress"],
        "[REDACTED]"
    );
    assert_eq!(e["request"]["body"]["addresses"][0]["locality"], "Oslo");
    let p = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "canary-street-18"},
                                  {"op": "replace", "path": "addresses", "value": [{"type": "home", "streetAddress": "canary-street-19", "locality": "Bergen"}]}]}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let e = app.event_of(&p.request_id()).await;
    let text = e.to_string();
    for c in ["canary-street-18", "canary-street-19", canary] {
        assert!(!text.contains(c), "{c} in {text}");
    }
    assert!(text.contains("Bergen"), "other sub-attributes stay");
}

/// Issue #7's troubleshooting queries over HTTP: the failed PATCH of a client found by its
/// scimType and change path; a filter nothing bounds refused with a 400 that says how to
/// narrow it, and that refusal recorded like any other failure.
#[tokio::test]
async fn troubleshooting_queries_and_unbounded_filters() {
    let app = spawn_app().await;
    let id = app.create_user("ann").await.id();
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": "maybe"}]
            })),
            &[("User-Agent", "Azure Active Directory SCIM Client")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let failed = r.request_id();
    let ok = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let query = |f: &str| {
        let path = format!("/audit/v1/events?filter={}", enc(f));
        let app = &app;
        async move { app.get(&path).await }
    };
    let r = query(r#"actor.client eq "Microsoft Entra ID" and outcome.scimType eq "invalidValue""#)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["Resources"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.body);
    assert_eq!(items[0]["requestId"], failed.as_str());
    assert_eq!(items[0]["outcome"]["status"], 400);

    // The create set `active` too; the failed PATCH changed nothing.
    let r = query(r#"changes.path eq "active""#).await;
    let items = r.body["Resources"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.body);
    assert_eq!(items[0]["requestId"], ok.request_id().as_str());
    assert_eq!(items[0]["action"], "user.deactivate");
    assert_eq!(items[1]["action"], "user.create");

    let r = query(r#"target.display eq "ann" and actor.ip eq "127.0.0.1""#).await;
    assert_eq!(
        r.body["Resources"].as_array().unwrap().len(),
        2,
        "the create and the good PATCH: {}",
        r.body
    );

    let refused = query("outcome.status ge 400").await;
    refused.assert_error(400, Some("invalidFilter"));
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("time window") && detail.contains("outcome.scimType"),
        "the error says how to narrow the filter: {detail}"
    );
    let event = app.event_of(&refused.request_id()).await;
    assert_eq!(event["outcome"]["status"], 400);
    assert_eq!(event["outcome"]["scimType"], "invalidFilter");

    // The same question with a time window is answered.
    let r = query(r#"outcome.status ge 400 and time ge "2020-01-01T00:00:00Z""#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["requestId"] == failed.as_str()));
}

/// "Failures by scimType from Entra in the last 24 h" in one call, and bad stats requests.
#[tokio::test]
async fn stats_answer_failures_by_scim_type_per_client() {
    let app = spawn_app().await;
    let entra = [("User-Agent", "Azure Active Directory SCIM Client")];
    let bad_user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]});
    for _ in 0..3 {
        let r = app
            .send(
                reqwest::Method::POST,
                "/scim/v2/Users",
                Some(&bad_user),
                &entra,
            )
            .await;
        assert_eq!(r.status, 400);
    }
    app.create_user("dup").await;
    let dup = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dup"});
    let r = app
        .send(reqwest::Method::POST, "/scim/v2/Users", Some(&dup), &entra)
        .await;
    assert_eq!(r.status, 409);
    // An Okta failure, which the filter leaves out.
    app.send(
        reqwest::Method::POST,
        "/scim/v2/Users",
        Some(&bad_user),
        &[("User-Agent", "Okta SCIM Client 1.0.0")],
    )
    .await;

    let f = enc(r#"actor.client eq "Microsoft Entra ID" and outcome.result eq "failure""#);
    let r = app
        .get(&format!(
            "/audit/v1/stats?filter={f}&since=24h&bucket=1h&by=outcome.scimType"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["count"], 4, "{}", r.body);
    let groups = r.body["groups"].as_array().unwrap();
    let scim_type = |g: &Value| g["outcome.scimType"].as_str().unwrap_or("").to_string();
    assert_eq!(groups.len(), 2, "{}", r.body);
    assert_eq!(groups[0]["count"], 3, "the largest group first: {}", r.body);
    assert_eq!(scim_type(&groups[1]), "uniqueness");
    assert_eq!(groups[1]["count"], 1);
    let buckets = r.body["buckets"].as_array().unwrap();
    let in_buckets: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, 4);
    assert!(buckets
        .iter()
        .all(|b| b["start"].as_str().unwrap().ends_with(":00:00.000000Z")));

    // Without `by` or `bucket`: one count.
    let r = app.get(&format!("/audit/v1/stats?filter={f}")).await;
    assert_eq!(r.body["count"], 4, "{}", r.body);

    for (query, scim_type) in [
        ("bucket=1x", "invalidValue"),
        ("bucket=0h", "invalidValue"),
        ("since=abc", "invalidValue"),
        ("by=changes.path", "invalidFilter"),
        ("by=a,b,c,d", "invalidValue"),
        ("by=%5B", "invalidValue"),
        ("since=3650d&bucket=1s", "tooMany"),
        ("filter=nosuch%20eq%201", "invalidFilter"),
    ] {
        let r = app.get(&format!("/audit/v1/stats?{query}")).await;
        assert!(r.status == 400, "{query}: {} {}", r.status, r.body);
        assert_eq!(r.body["scimType"], scim_type, "{query}: {}", r.body);
    }
    let r = app
        .raw(
            app.client
                .get(app.url("/audit/v1/stats"))
                .bearer_auth("wrong"),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// `record_reads: false` (writes and failures only): successful reads leave no event, failed
/// ones and every write still do.
#[tokio::test]
async fn reads_can_be_left_out_of_the_log() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        record_reads: false,
        ..Default::default()
    })
    .await;
    let created = app.create_user("quiet").await;
    let id = created.id();
    let read = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(read.status, 200);
    let missing = app.get("/scim/v2/Users/nope").await;
    assert_eq!(missing.status, 404);
    let search = app
        .post(
            "/scim/v2/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        )
        .await;
    assert_eq!(search.status, 200, "{}", search.body);
    let log = app.get("/audit/v1/events?count=1000").await;
    assert_eq!(log.status, 200);
    let events = log.body["Resources"].as_array().unwrap();
    let rids: Vec<&str> = events
        .iter()
        .map(|e| e["requestId"].as_str().unwrap())
        .collect();
    assert!(rids.contains(&created.request_id().as_str()), "the write");
    assert!(
        rids.contains(&missing.request_id().as_str()),
        "the failed read"
    );
    assert!(!rids.contains(&read.request_id().as_str()), "not the read");
    assert!(
        !rids.contains(&search.request_id().as_str()),
        "not the search"
    );
    let again = app.get("/audit/v1/events?count=1000").await;
    assert_eq!(
        again.body["Resources"].as_array().unwrap().len(),
        events.len(),
        "reading the log left no event either"
    );
}

/// With a redaction key, a secret in a body becomes a keyed HMAC of its value: the same
/// password gives the same mask, another password another, and the value never appears.
#[tokio::test]
async fn redacted_values_are_keyed_hmacs() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        redaction_key: Some([7u8; 32]),
        ..Default::default()
    })
    .await;
    let mut masks = vec![];
    for (name, pw) in [
        ("h1", "Hunter-2-secret"),
        ("h2", "Hunter-2-secret"),
        ("h3", "Other-9-secret"),
    ] {
        let r = app
            .post(
                "/scim/v2/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": name, "password": pw}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let e = app.event_of(&r.request_id()).await;
        let text = e.to_string();
        assert!(!text.contains(pw), "{text}");
        let mask = e["request"]["body"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(mask.starts_with("[REDACTED hmac-sha256:"), "{mask}");
        // The change record carries the same mask, so the log answers "did it change?".
        assert_eq!(
            password_change(&e),
            Some((Value::Null, json!(mask))),
            "{}",
            e["changes"]
        );
        masks.push(mask);
    }
    assert_eq!(masks[0], masks[1], "the same value, the same mask");
    assert_ne!(masks[0], masks[2], "another value, another mask");
    // A PATCH that sets it by path is masked the same way.
    let id = app.create_user("h4").await.id();
    let r = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "password", "value": "Hunter-2-secret"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = app.event_of(&r.request_id()).await;
    assert_eq!(
        e["request"]["body"]["Operations"][0]["value"]
            .as_str()
            .unwrap(),
        masks[0]
    );
    assert_eq!(
        password_change(&e),
        Some((json!("[REDACTED]"), json!(masks[0])))
    );
    // Whether and when a password changed, without its value: the events that wrote it.
    for pw in ["Other-9-secret", "Other-9-secret"] {
        let r = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "value": {"password": pw}}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let q = format!(r#"target.id eq "{id}" and changes.path eq "password""#);
    let log = app
        .get(&format!(
            "/audit/v1/events?sortOrder=ascending&filter={}",
            enc(&q)
        ))
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let written: Vec<Value> = log.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| password_change(e).map(|(_, new)| new))
        .collect();
    assert_eq!(written.len(), 3, "{}", log.body);
    assert_ne!(written[0], written[1], "changed");
    assert_eq!(written[1], written[2], "set again to the same value");
    assert_eq!(written[1], json!(masks[2]));
    assert!(!log.body.to_string().contains("Other-9-secret"));
}

/// The old and new value of an event's change to `password`, if it has one.
fn password_change(e: &Value) -> Option<(Value, Value)> {
    e["changes"]
        .as_array()?
        .iter()
        .find(|c| c["path"] == "password")
        .map(|c| (c["old"].clone(), c["new"].clone()))
}
