//! Random, SCIM-shaped garbage against the write endpoints: never a 5xx, never a panic, always a
//! SCIM error body and an audit event, and the resource untouched when the request failed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::helpers::*;

const KEYS: &[&str] = &[
    "userName",
    "name",
    "givenName",
    "familyName",
    "emails",
    "value",
    "type",
    "primary",
    "active",
    "members",
    "display",
    "$ref",
    "displayName",
    "externalId",
    "password",
    "groups",
    "id",
    "meta",
    "schemas",
    "manager",
    "addresses",
    "locality",
    "phoneNumbers",
    "title",
    "x509Certificates",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "Operations",
    "op",
    "path",
    "weird",
];

const USER_KEYS: &[&str] = &[
    "name",
    "emails",
    "active",
    "displayName",
    "externalId",
    "title",
    "password",
    "addresses",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "meta",
    "groups",
    "id",
];

const PATHS: &[&str] = &[
    "active",
    "emails[type eq \"work\"].value",
    "emails[type eq \"work\"]",
    "name.givenName",
    "members",
    "members[value eq \"x\"]",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "emails[",
    "emails[type eq]",
    "]",
    "name..x",
    "groups",
    "id",
    "meta.created",
    "addresses[type eq \"home\"].locality",
    "userName",
    "password",
    "x509Certificates[value pr]",
    "emails[not (type eq \"a\")].primary",
    "",
];

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(["True", "false", "FALSE", "yes"][rng.random_range(0..4)]),
        3 => json!(rng.random_range(-5i64..100_000)),
        4 => json!(rng.random::<f64>() * 1e6),
        5 => json!(""),
        6 => json!("2026-11-28T10:00:00Z"),
        7 => json!(KEYS[rng.random_range(0..KEYS.len())]),
        _ => json!(format!("s{}", rng.random_range(0..1000))),
    }
}

fn value(rng: &mut StdRng, depth: u32) -> Value {
    if depth == 0 || rng.random_range(0..3) == 0 {
        return scalar(rng);
    }
    if rng.random() {
        Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| value(rng, depth - 1))
                .collect(),
        )
    } else {
        let mut m = Map::new();
        for _ in 0..rng.random_range(0..5) {
            m.insert(
                KEYS[rng.random_range(0..KEYS.len())].to_string(),
                value(rng, depth - 1),
            );
        }
        Value::Object(m)
    }
}

fn patch_body(rng: &mut StdRng) -> Value {
    let ops: Vec<Value> = (0..rng.random_range(0..4))
        .map(|_| {
            let mut op = Map::new();
            let ops = ["add", "Replace", "remove", "REMOVE", "copy", ""];
            op.insert("op".into(), json!(ops[rng.random_range(0..ops.len())]));
            if rng.random_range(0..4) > 0 {
                op.insert(
                    "path".into(),
                    json!(PATHS[rng.random_range(0..PATHS.len())]),
                );
            }
            if rng.random_range(0..4) > 0 {
                op.insert("value".into(), value(rng, 3));
            }
            Value::Object(op)
        })
        .collect();
    if rng.random_range(0..10) == 0 {
        return value(rng, 3);
    }
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[tokio::test]
async fn random_bodies_never_break_the_server() {
    let app = spawn_app().await;
    let uid = app.create_user("target").await.id();
    let gid = app.create_group("G", &[&uid]).await.id();
    // Fixed by default so CI is repeatable; set the variables to explore more.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seed = env("SCIMTRAIL_FUZZ_SEED", 0x5c1_7a11);
    let cases = env("SCIMTRAIL_FUZZ_CASES", 400);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..cases {
        let (method, path, body) = match i % 5 {
            0 => {
                // A plausible user with random attributes, so that creates succeed too.
                let mut m = Map::new();
                m.insert("userName".into(), json!(format!("fuzz{i}")));
                for _ in 0..rng.random_range(0..3) {
                    let k = USER_KEYS[rng.random_range(0..USER_KEYS.len())];
                    m.insert(k.into(), value(&mut rng, 2));
                }
                (Method::POST, "/scim/v2/Users".to_string(), Value::Object(m))
            }
            1 => (
                Method::PUT,
                format!("/scim/v2/Users/{uid}"),
                value(&mut rng, 4),
            ),
            2 => (
                Method::PATCH,
                format!("/scim/v2/Users/{uid}"),
                patch_body(&mut rng),
            ),
            3 => (
                Method::PATCH,
                format!("/scim/v2/Groups/{gid}"),
                patch_body(&mut rng),
            ),
            _ => (
                Method::POST,
                "/scim/v2/Groups".to_string(),
                value(&mut rng, 4),
            ),
        };
        let before = if method == Method::POST {
            None
        } else {
            Some(app.get(&path).await)
        };
        let r = app.send(method.clone(), &path, Some(&body), &[]).await;
        *statuses.entry(r.status.as_u16()).or_insert(0) += 1;
        let status = r.status.as_u16();
        assert!(
            status < 500,
            "seed {seed}: {method} {path} {body} -> {status} {}",
            r.body
        );
        let e = app.event_of(&r.request_id()).await;
        assert_eq!(e["outcome"]["status"], status);
        if status >= 400 {
            let schema = &r.body["schemas"][0];
            assert_eq!(
                schema, "urn:ietf:params:scim:api:messages:2.0:Error",
                "{}",
                r.body
            );
            if let Some(before) = &before {
                let after = app.get(&path).await;
                let (b, a) = (before.header("etag"), after.header("etag"));
                assert_eq!(b, a, "seed {seed}: a failed request changed {path}");
            }
        }
    }
    eprintln!("statuses: {statuses:?}");
    // Both outcomes were exercised.
    assert!(
        statuses.keys().any(|s| *s < 300) && statuses.keys().any(|s| *s >= 400),
        "{statuses:?}"
    );
}
