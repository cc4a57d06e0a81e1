//! Cursor pagination (RFC 9865): every result once, in order, however the list changes
//! between pages; cursors that are forged, from another query or expired are refused.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::*;

async fn page(app: &TestApp, path: &str) -> Resp {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_cursor_walks_every_result_once_while_the_list_changes() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..45 {
        created.push(app.create_user(&format!("c{i:02}")).await.id());
    }
    let spc = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(spc.body["pagination"]["cursor"], true);
    assert_eq!(spc.body["pagination"]["cursorTimeout"], 3600);

    let first = page(&app, "/scim/v2/Users?cursor&count=20").await;
    assert_eq!(first.body["totalResults"], 45);
    assert!(first.body.get("startIndex").is_none(), "{}", first.body);
    assert_eq!(first.body["itemsPerPage"], 20);
    let mut seen = ids(&first);
    assert_eq!(seen, created[..20]);
    // Between pages, one already read is deleted and a new one is created: the next pages
    // neither skip nor repeat anything (an offset would skip one).
    app.delete(&format!("/scim/v2/Users/{}", created[3])).await;
    let late = app.create_user("late").await.id();
    let mut cursor = first.body["nextCursor"].as_str().unwrap().to_string();
    let mut pages = 1;
    loop {
        let r = page(
            &app,
            &format!("/scim/v2/Users?count=20&cursor={}", enc(&cursor)),
        )
        .await;
        pages += 1;
        seen.extend(ids(&r));
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut want = created.clone();
    want.push(late);
    assert_eq!(seen, want);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[tokio::test]
async fn cursors_follow_filters_and_sorting_and_search() {
    let app = spawn_app().await;
    for i in 0..30 {
        let mut u = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("s{i:02}"), "title": if i % 3 == 0 { "A" } else { "B" },
            "name": {"familyName": format!("F{:02}", 29 - i)}});
        u["active"] = Value::Bool(i % 2 == 0);
        app.post("/scim/v2/Users", u).await;
    }
    // Sorted by an attribute without a column, filtered by one with: offsets in the cursor.
    let q = format!(
        "filter={}&sortBy=name.familyName&count=4",
        enc("active eq true")
    );
    let mut names = Vec::new();
    let mut path = format!("/scim/v2/Users?{q}&cursor=");
    loop {
        let r = page(&app, &path).await;
        assert_eq!(r.body["totalResults"], 15);
        for u in r.body["Resources"].as_array().unwrap() {
            names.push(u["name"]["familyName"].as_str().unwrap().to_string());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => path = format!("/scim/v2/Users?{q}&cursor={}", enc(c)),
            None => break,
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names.len(), 15);
    assert_eq!(names, sorted);
    // A SearchRequest pages the same way.
    let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "title eq \"A\"", "count": 7, "cursor": ""});
    let r = app.post("/scim/v2/Users/.search", body.clone()).await;
    assert_eq!(r.body["itemsPerPage"], 7);
    let mut next = body;
    next["cursor"] = r.body["nextCursor"].clone();
    let r2 = app.post("/scim/v2/Users/.search", next).await;
    assert_eq!(r2.body["itemsPerPage"], 3);
    assert!(r2.body.get("nextCursor").is_none());
}

#[tokio::test]
async fn bad_cursors_are_refused_with_their_scim_type() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        cursor_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    for i in 0..3 {
        app.create_user(&format!("b{i}")).await;
    }
    let r = page(&app, "/scim/v2/Users?cursor=&count=1").await;
    let c = r.body["nextCursor"].as_str().unwrap().to_string();
    // Another query's cursor.
    let other = app
        .get(&format!(
            "/scim/v2/Users?count=1&filter={}&cursor={}",
            enc("userName pr"),
            enc(&c)
        ))
        .await;
    other.assert_error(400, Some("invalidCursor"));
    // A forged one.
    let forged = format!("x{}", &c[1..]);
    let r = app
        .get(&format!("/scim/v2/Users?count=1&cursor={}", enc(&forged)))
        .await;
    r.assert_error(400, Some("invalidCursor"));
    assert_eq!(
        app.event_of(&r.request_id()).await["outcome"]["scimType"],
        "invalidCursor"
    );
    // Combined with an index.
    let r = app
        .get(&format!(
            "/scim/v2/Users?count=1&startIndex=2&cursor={}",
            enc(&c)
        ))
        .await;
    r.assert_error(400, Some("invalidValue"));
    // Across every type.
    let r = app
        .post(
            "/scim/v2/.search",
            serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": ""}),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // Expired.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app
        .get(&format!("/scim/v2/Users?count=1&cursor={}", enc(&c)))
        .await;
    r.assert_error(400, Some("expiredCursor"));
}

/// A page stops at the store's byte budget (fewer than `count`, `itemsPerPage` says how many),
/// and both ways of paging go on from there: the cursor, and `startIndex + itemsPerPage`.
#[tokio::test]
async fn pages_of_large_resources_are_bounded_and_paging_goes_on() {
    let app = spawn_app().await;
    let title = "t".repeat(900 * 1024);
    for i in 0..11 {
        let r = app
            .post(
                "/scim/v2/Users",
                serde_json::json!({"userName": format!("wide{i}"), "title": title}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = page(&app, "/scim/v2/Users?count=100&cursor=").await;
    let first = r.body["itemsPerPage"].as_u64().unwrap();
    assert!((1..11).contains(&first), "{first}");
    assert_eq!(r.body["totalResults"], 11);
    let mut seen: HashSet<String> = HashSet::new();
    let mut body = r.body;
    loop {
        for u in body["Resources"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_string()));
        }
        match body["nextCursor"].as_str() {
            Some(c) => {
                body = page(&app, &format!("/scim/v2/Users?count=100&cursor={c}"))
                    .await
                    .body
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 11, "the cursor reached every user");
    let mut start = 1;
    let mut by_index = HashSet::new();
    while start <= 11 {
        let r = page(
            &app,
            &format!("/scim/v2/Users?count=100&startIndex={start}"),
        )
        .await;
        let n = r.body["itemsPerPage"].as_u64().unwrap() as usize;
        assert!(n > 0);
        for u in r.body["Resources"].as_array().unwrap() {
            by_index.insert(u["id"].as_str().unwrap().to_string());
        }
        start += n;
    }
    assert_eq!(by_index, seen);
}
