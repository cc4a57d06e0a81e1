//! The proof API: log key, checkpoints, inclusion and consistency proofs, leaf bytes — each
//! checked with the verifier functions against the signed checkpoint, as a third party would.

use base64::Engine as _;
use scimtrail_audit::checkpoint::open_checkpoint;
use scimtrail_audit::merkle;
use serde_json::Value;

use crate::helpers::*;

fn hash(v: &Value) -> [u8; 32] {
    let b = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64");
    b.try_into().expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().expect("array").iter().map(hash).collect()
}

#[tokio::test]
async fn a_signed_checkpoint_proves_every_event() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_user(&format!("p{i}")).await;
    }
    let (status, vkey) = app.get_text("/audit/v1/log-key").await;
    assert_eq!(status, 200);
    assert!(vkey.starts_with("test-system/scimtrail+"), "{vkey}");
    let note = app.checkpoint_at_least(5).await;
    let cp = open_checkpoint(note.as_bytes(), &vkey).expect("the checkpoint verifies");
    assert_eq!(cp.origin, "test-system/scimtrail");

    let events = app
        .get("/audit/v1/events?count=1000&sortOrder=ascending")
        .await
        .body;
    let mut proved = 0;
    for e in events["Resources"].as_array().unwrap() {
        let seq = e["seq"].as_u64().unwrap();
        if seq >= cp.size {
            continue;
        }
        let id = e["id"].as_str().unwrap();
        let p = app
            .get(&format!("/audit/v1/events/{id}/proof?size={}", cp.size))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body["seq"], seq);
        assert_eq!(p.body["treeSize"], cp.size);
        assert_eq!(p.body["leafHash"], e["leafHash"]);
        let (_, leaf) = app.get_text(&format!("/audit/v1/events/{id}/leaf")).await;
        let leaf_hash = scimtrail_audit::leaf_hash(leaf.as_bytes());
        assert_eq!(leaf_hash, hash(&p.body["leafHash"]));
        merkle::verify_inclusion(&hashes(&p.body["hashes"]), cp.size, cp.root, seq, leaf_hash)
            .expect("inclusion proof verifies against the signed root");
        proved += 1;
    }
    assert!(proved >= 5);
    // Without `size`, the proof is against the latest checkpoint.
    let first = events["Resources"][0]["id"].as_str().unwrap();
    let p = app.get(&format!("/audit/v1/events/{first}/proof")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body["treeSize"].as_u64().unwrap() >= cp.size);

    // A later checkpoint is consistent with this one.
    for i in 5..8 {
        app.create_user(&format!("p{i}")).await;
    }
    let later = app.checkpoint_at_least(cp.size + 3).await;
    let later = open_checkpoint(later.as_bytes(), &vkey).unwrap();
    let c = app
        .get(&format!(
            "/audit/v1/consistency?from={}&to={}",
            cp.size, later.size
        ))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(
        (c.body["from"].as_u64(), c.body["to"].as_u64()),
        (Some(cp.size), Some(later.size))
    );
    merkle::verify_consistency(
        &hashes(&c.body["hashes"]),
        cp.size,
        cp.root,
        later.size,
        later.root,
    )
    .expect("consistency proof verifies");
    // `to` defaults to the latest checkpoint.
    let d = app
        .get(&format!("/audit/v1/consistency?from={}", cp.size))
        .await;
    assert_eq!(d.status, 200);
    assert!(d.body["to"].as_u64().unwrap() >= later.size);

    // The checkpoint list, newest first, holds both notes.
    let list = app.get("/audit/v1/checkpoints?count=100").await.body;
    let sizes: Vec<u64> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["treeSize"].as_u64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] > w[1]), "{sizes:?}");
    assert!(sizes.contains(&cp.size) && sizes.contains(&later.size));
    for c in list["Resources"].as_array().unwrap() {
        let v = open_checkpoint(c["note"].as_str().unwrap().as_bytes(), &vkey).unwrap();
        assert_eq!(hash(&c["rootHash"]), v.root);
    }
}

#[tokio::test]
async fn bad_proof_requests_get_scim_errors_and_events() {
    let app = spawn_app().await;
    let u = app.create_user("bad-proofs").await;
    let _ = u;
    app.checkpoint_at_least(1).await;
    let e = app
        .get("/audit/v1/events?count=1&sortOrder=ascending")
        .await
        .body["Resources"][0]
        .clone();
    let id = e["id"].as_str().unwrap();
    app.get("/audit/v1/events/no-such-event/proof")
        .await
        .assert_error(404, None);
    app.get("/audit/v1/events/no-such-event/leaf")
        .await
        .assert_error(404, None);
    app.get(&format!("/audit/v1/events/{id}/proof?size=999999"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.get(&format!("/audit/v1/events/{id}/proof?size=0"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.get(&format!("/audit/v1/events/{id}/proof?size=-1"))
        .await
        .assert_error(400, Some("invalidValue"));
    app.get("/audit/v1/consistency?from=3&to=2")
        .await
        .assert_error(400, Some("invalidValue"));
    app.get("/audit/v1/consistency?from=1&to=999999")
        .await
        .assert_error(400, Some("invalidValue"));
    app.get("/audit/v1/consistency")
        .await
        .assert_error(400, Some("invalidValue"));
    // Each of those requests has its own event.
    let failures = app
        .get("/audit/v1/events?count=100&filter=outcome.result%20eq%20%22failure%22")
        .await
        .body;
    let actions: Vec<&str> = failures["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "audit.proof").count(),
        4,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "audit.consistency")
            .count(),
        3
    );
    assert!(actions.contains(&"audit.leaf"));
}

#[tokio::test]
async fn no_checkpoint_yet_is_a_clear_404() {
    let app = spawn_with(scimtrail_server::ServerConfig {
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    app.get("/audit/v1/checkpoint")
        .await
        .assert_error(404, None);
    let (status, _) = app.get_text("/audit/v1/checkpoint").await;
    assert_eq!(status, 404);
}

/// Each checkpoint is POSTed to the configured URL as its signed note (a witness or archive
/// receiving it can check it with the log key alone).
#[tokio::test]
async fn checkpoints_are_posted_to_the_configured_url() {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let receiver = axum::Router::new().route(
        "/witness",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((ct, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let app = spawn_with(scimtrail_server::ServerConfig {
        checkpoint_interval: std::time::Duration::from_millis(50),
        checkpoint_sinks: scimtrail_server::transparency::CheckpointSinks {
            file: None,
            url: Some(url),
        },
        ..Default::default()
    })
    .await;
    app.create_user("posted").await;
    let (_, vkey) = app.get_text("/audit/v1/log-key").await;
    let (ct, note) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a checkpoint was POSTed within 10 s")
        .unwrap();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let cp = open_checkpoint(note.as_bytes(), &vkey).expect("the posted note verifies");
    assert!(cp.size >= 1);
}
