//! `sortBy` and `sortOrder` (RFC 7644 §3.4.2.3): by a column in SQL, by anything else in
//! memory; both give one order, with ties and missing values placed the same way.
use serde_json::{json, Value};

use crate::helpers::*;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn names(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .expect("a list response")
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect()
}

async fn seed(app: &TestApp) {
    // userName, displayName, title, employeeNumber, emails (primary marked or not), active
    let users = [
        (
            "dave",
            Some("Dave D"),
            Some("Engineer"),
            "40",
            json!([{"value": "z@x.org"}, {"value": "d@x.org", "primary": true}]),
            true,
        ),
        (
            "Alice",
            None,
            Some("Manager"),
            "7",
            json!([{"value": "a@x.org"}]),
            true,
        ),
        ("carol", Some("carol c"), None, "300", json!([]), false),
        (
            "Bob",
            Some("bob b"),
            Some("Engineer"),
            "5",
            json!([{"value": "B@x.org", "primary": true}]),
            true,
        ),
    ];
    for (user, display, title, number, emails, active) in users {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": user,
            "active": active,
            "emails": emails,
            ENT: {"employeeNumber": number},
        });
        if let Some(d) = display {
            body["displayName"] = json!(d);
        }
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        let r = app.post("/scim/v2/Users", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

#[tokio::test]
async fn lists_sort_by_any_attribute_in_either_order() {
    let app = spawn_app().await;
    seed(&app).await;
    let sorted = |q: &str| {
        let app = &app;
        let q = q.to_string();
        async move {
            let r = app.get(&format!("/scim/v2/Users?{q}")).await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            names(&r.body)
        }
    };
    // No sortBy: the order of creation.
    assert_eq!(sorted("").await, ["dave", "Alice", "carol", "Bob"]);
    // A column, without case (userName is not caseExact).
    assert_eq!(
        sorted("sortBy=userName").await,
        ["Alice", "Bob", "carol", "dave"]
    );
    assert_eq!(
        sorted("sortBy=userName&sortOrder=descending").await,
        ["dave", "carol", "Bob", "Alice"]
    );
    assert_eq!(
        sorted("sortBy=USERNAME&sortOrder=Ascending").await,
        ["Alice", "Bob", "carol", "dave"]
    );
    // Paging cuts the sorted list.
    assert_eq!(
        sorted("sortBy=userName&startIndex=2&count=2").await,
        ["Bob", "carol"]
    );
    // A missing value sorts last ascending, first descending.
    assert_eq!(
        sorted("sortBy=displayName").await,
        ["Bob", "carol", "dave", "Alice"]
    );
    assert_eq!(
        sorted("sortBy=displayName&sortOrder=descending").await,
        ["Alice", "dave", "carol", "Bob"]
    );
    // Not a column: sorted in memory. Ties keep the order of creation, either way.
    assert_eq!(
        sorted("sortBy=title").await,
        ["dave", "Bob", "Alice", "carol"]
    );
    assert_eq!(
        sorted("sortBy=title&sortOrder=descending").await,
        ["carol", "Alice", "dave", "Bob"]
    );
    // A multi-valued attribute sorts by its primary value, else its first.
    assert_eq!(
        sorted("sortBy=emails").await,
        ["Alice", "Bob", "dave", "carol"]
    );
    assert_eq!(
        sorted("sortBy=emails.value&sortOrder=descending").await,
        ["carol", "dave", "Bob", "Alice"]
    );
    // An extension attribute by its URN; a string compares as a string ("300" < "40").
    assert_eq!(
        sorted(&format!("sortBy={ENT}:employeeNumber")).await,
        ["carol", "dave", "Bob", "Alice"]
    );
    // A boolean: false before true.
    assert_eq!(
        sorted("sortBy=active").await,
        ["carol", "dave", "Alice", "Bob"]
    );
    // With a filter evaluated in memory, and one in SQL.
    assert_eq!(
        sorted("filter=active%20eq%20true&sortBy=userName").await,
        ["Alice", "Bob", "dave"]
    );
    assert_eq!(
        sorted("filter=userName%20ne%20%22dave%22&sortBy=userName&sortOrder=descending").await,
        ["carol", "Bob", "Alice"]
    );
    // Of the common attributes: the newest first.
    assert_eq!(
        sorted("sortBy=meta.created&sortOrder=descending").await,
        ["Bob", "carol", "Alice", "dave"]
    );
    // An attribute no schema defines: every value is missing, so the order of creation.
    assert_eq!(
        sorted("sortBy=nickNameX").await,
        ["dave", "Alice", "carol", "Bob"]
    );

    // A SearchRequest sorts the same way.
    let r = app
        .post(
            "/scim/v2/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "sortBy": "userName", "sortOrder": "descending", "count": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(names(&r.body), ["dave", "carol", "Bob"]);
    assert_eq!(r.body["totalResults"], 4);
}

#[tokio::test]
async fn bad_sorts_are_refused_with_their_own_events() {
    let app = spawn_app().await;
    seed(&app).await;
    let r = app
        .get("/scim/v2/Users?sortBy=userName&sortOrder=sideways")
        .await;
    r.assert_error(400, Some("invalidValue"));
    // Sorting by a secret would order users by their passwords.
    let r = app.get("/scim/v2/Users?sortBy=password").await;
    r.assert_error(400, Some("invalidValue"));
    assert!(!r.body.to_string().contains("Alice"), "{}", r.body);
    let event = app.event_of(&r.request_id()).await;
    assert_eq!(event["outcome"]["status"], 400, "{event}");
    let r = app
        .get("/scim/v2/Users?sortBy=emails[type%20eq%20%22work%22]")
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
}
