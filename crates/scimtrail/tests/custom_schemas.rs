//! Custom schemas and resource types named in the config file (issue #8, item 5): the real
//! binary serves them with no code change, the operator's commands know them given the same
//! files, and a broken definition stops the server at start with a message that says where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

fn example(name: &str) -> String {
    format!(
        "{}/../../examples/schemas/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

use common::cli;

#[tokio::test]
async fn the_config_file_names_the_schema_files() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("scimtrail.toml");
    std::fs::write(
        &config_file,
        format!(
            "schema_files = [{:?}, {:?}]\n",
            example("device.json"),
            example("badge-extension.json")
        ),
    )
    .unwrap();
    let server = common::start(
        dir.path(),
        &[("SCIMTRAIL_CONFIG", config_file.to_str().unwrap())],
    );
    let client = common::client();
    let send = |m: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = client
            .request(m, server.url(path))
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/scim+json");
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        r.send()
    };
    let r = send(
        reqwest::Method::POST,
        "/scim/v2/Devices",
        Some(json!({"serialNumber": "SN-42", "displayName": "lab printer"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let r = send(
        reqwest::Method::PATCH,
        &format!("/scim/v2/Devices/{id}"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "hall"}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::GET,
        "/audit/v1/events?filter=target.type%20eq%20%22Device%22&sortOrder=ascending",
        None,
    )
    .await
    .unwrap();
    let events: Value = r.json().await.unwrap();
    let actions: Vec<&str> = events["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["device.create", "device.update"], "{events}");

    // What the server accepts is part of its recorded configuration.
    let r = send(
        reqwest::Method::GET,
        "/audit/v1/events?filter=target.type%20eq%20%22Config%22",
        None,
    )
    .await
    .unwrap();
    let config: Value = r.json().await.unwrap();
    let changes = config["Resources"][0]["changes"].to_string();
    assert!(changes.contains("resourceTypes"), "{changes}");
    assert!(changes.contains("/Devices"), "{changes}");
    assert!(
        changes.contains("urn:example:scim:schemas:core:1.0:Device"),
        "{changes}"
    );

    // The operator's history and restore know the type when given the same files.
    let db = format!("sqlite://{}/scimtrail.db", dir.path().display());
    let files = format!(
        "{},{}",
        example("device.json"),
        example("badge-extension.json")
    );
    let (code, out, err) = cli(&[
        "history",
        "Devices",
        &id,
        "--database",
        &db,
        "--schema-file",
        &files,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hall"), "{out}");
    let (code, out, err) = cli(&[
        "restore",
        "Devices",
        &id,
        "--version",
        "1",
        "--reason",
        "undo rename",
        "--database",
        &db,
        "--schema-file",
        &files,
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let r = send(
        reqwest::Method::GET,
        &format!("/scim/v2/Devices/{id}"),
        None,
    )
    .await
    .unwrap();
    let now: Value = r.json().await.unwrap();
    assert_eq!(now["displayName"], "lab printer");
    assert_eq!(now["serialNumber"], "SN-42");
    // Without them, the type is unknown to the command, and it says so.
    let (code, _, err) = cli(&["history", "Devices", &id, "--database", &db]);
    assert_ne!(code, 0);
    assert!(err.contains("Devices"), "{err}");
    server.terminate();

    // A start with a changed definition under the same file name records what changed.
    let copy = dir.path().join("device.json");
    let text = std::fs::read_to_string(example("device.json")).unwrap();
    std::fs::write(
        &copy,
        text.replace("\"retired\"]", "\"retired\", \"lost\"]"),
    )
    .unwrap();
    std::fs::write(
        &config_file,
        format!(
            "schema_files = [{:?}, {:?}]\n",
            copy.to_str().unwrap(),
            example("badge-extension.json")
        ),
    )
    .unwrap();
    let server = common::start(
        dir.path(),
        &[("SCIMTRAIL_CONFIG", config_file.to_str().unwrap())],
    );
    let r =
        common::client()
            .get(server.url(
                "/audit/v1/events?filter=action%20eq%20%22config.change%22&sortOrder=descending",
            ))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap();
    let events: Value = r.json().await.unwrap();
    let paths: Vec<String> = events["Resources"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.contains("schemaDefinitions") && p.contains("Device")),
        "{paths:?}"
    );
    server.terminate();
}

#[test]
fn a_broken_definition_stops_the_server_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        json!({"id": "urn:example:Thing", "attributes": [
            {"name": "size", "type": "integr"}
        ]})
        .to_string(),
    )
    .unwrap();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    // What `serve` prints on stderr when it refuses to start with this schema file.
    let refused = |file: &str| {
        let (code, _, err) = cli(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--schema-file",
            file,
        ]);
        assert_ne!(code, 0, "{file} must stop the start: {err}");
        err
    };
    let err = refused(bad.to_str().unwrap());
    assert!(err.contains("bad.json"), "{err}");
    assert!(err.contains("urn:example:Thing.size"), "{err}");
    assert!(err.contains("integr"), "{err}");
    let missing = dir.path().join("missing.json");
    let err = refused(missing.to_str().unwrap());
    assert!(err.contains("missing.json"), "{err}");
    let err = refused("/dev/zero");
    assert!(err.contains("larger than 16 MiB"), "{err}");
    std::fs::write(&bad, "{not json").unwrap();
    let err = refused(bad.to_str().unwrap());
    assert!(err.contains("not JSON"), "{err}");
}
