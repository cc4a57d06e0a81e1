//! `scimtrail audit tail|stats` against a database a running server writes to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use common::cli;

#[tokio::test]
async fn tail_and_stats_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[]);
    let db = format!("sqlite://{}/scimtrail.db", dir.path().display());
    // The key that masks redacted values was made on first start, readable by the owner only.
    let key = std::fs::read_to_string(dir.path().join("redaction-key")).unwrap();
    assert_eq!(key.trim().len(), 64, "32 bytes, hex");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("redaction-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let c = common::client();
    let create = |name: String, ua: &'static str| {
        c.post(server.url("/scim/v2/Users"))
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/scim+json")
            .header("user-agent", ua)
            .body(json!({"userName": name}).to_string())
            .send()
    };
    for i in 0..5 {
        let r = create(format!("tail-{i}"), "Okta SCIM Client 1.0.0")
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = create("tail-0".into(), "Okta SCIM Client 1.0.0")
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // The newest three creates, oldest first.
    let (code, out, err) = cli(&[
        "audit",
        "tail",
        "-n",
        "3",
        "--filter",
        r#"action eq "user.create" and outcome.status eq 201"#,
        "--json",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    let shown: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = shown
        .iter()
        .map(|e| e["target"]["display"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tail-2", "tail-3", "tail-4"]);
    // A filter that no index bounds works too: tail bounds it by seq.
    let (code, out, err) = cli(&[
        "audit",
        "tail",
        "-n",
        "2",
        "--filter",
        "outcome.status ge 400",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("409"), "{out}");

    // Stats: the creates by status, as a table and as JSON.
    let (code, out, err) = cli(&[
        "audit",
        "stats",
        "--filter",
        r#"action eq "user.create""#,
        "--by",
        "outcome.status",
        "--bucket",
        "1h",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("outcome.status=201") && out.contains("outcome.status=409"),
        "{out}"
    );
    let (code, out, err) = cli(&[
        "audit",
        "stats",
        "--filter",
        r#"actor.client eq "Okta""#,
        "--by",
        "outcome.status",
        "--json",
        "--database",
        &db,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["count"], 6, "{v}");
    assert_eq!(v["groups"][0], json!({"outcome.status": 201, "count": 5}));
    let (code, _, err) = cli(&["audit", "stats", "--bucket", "soon", "--database", &db]);
    assert_ne!(code, 0);
    assert!(err.contains("bucket"), "{err}");

    // --follow prints what the server commits after it started.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args([
            "audit",
            "tail",
            "-n",
            "0",
            "--follow",
            "--json",
            "--filter",
            r#"action eq "user.create""#,
            "--database",
            &db,
        ])
        .env_remove("SCIMTRAIL_DATABASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Until the follower is reading, creates may land before it starts: keep creating until
    // one shows, then check the ones that showed are in order and new.
    let mut seen = None;
    for i in 0..40 {
        let r = create(format!("followed-{i}"), "Okta SCIM Client 1.0.0")
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen = Some(line);
            break;
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let line = seen.expect("the follower printed a new create");
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["action"], "user.create");
    assert!(
        e["target"]["display"]
            .as_str()
            .unwrap()
            .starts_with("followed-"),
        "{e}"
    );
    server.terminate();
}

/// The configuration events `serve` wrote, oldest first.
async fn config_events(server: &common::Server) -> Vec<Value> {
    let r = common::client()
        .get(server.url("/audit/v1/events"))
        .query(&[
            ("filter", r#"target.type eq "Config""#),
            ("sortOrder", "ascending"),
        ])
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    page["Resources"].as_array().unwrap().clone()
}

/// Every start records the effective settings when they differ from the last recorded ones:
/// the first start all of them, a restart with one flag changed that one (old → new), an
/// unchanged restart nothing. Keys appear by fingerprint only.
#[tokio::test]
async fn configuration_changes_are_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(dir.path(), &[]);
    let first = config_events(&server).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let e = &first[0];
    assert_eq!(e["action"], "config.change");
    assert_eq!(e["actor"]["kind"], "operator");
    assert_eq!(e["response"]["body"]["auditBodyCap"], 65536, "{e}");
    assert!(e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "recordReads" && c["op"] == "add" && c["new"] == "all"));
    let key = std::fs::read_to_string(dir.path().join("redaction-key")).unwrap();
    assert!(!e.to_string().contains(key.trim()), "the key itself never");
    assert!(e["response"]["body"]["redactionKey"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    server.terminate();

    let server = common::start(dir.path(), &[]);
    assert_eq!(config_events(&server).await.len(), 1, "unchanged: no event");
    server.terminate();

    let server = common::start(
        dir.path(),
        &[
            ("SCIMTRAIL_AUDIT_BODY_CAP", "1024"),
            ("SCIMTRAIL_RECORD_READS", "writes-and-failures"),
        ],
    );
    let events = config_events(&server).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let changes = &events[1]["changes"];
    assert_eq!(
        changes,
        &json!([
            {"op": "replace", "path": "auditBodyCap", "old": 65536, "new": 1024},
            {"op": "replace", "path": "recordReads", "old": "all", "new": "writes-and-failures"},
        ]),
        "{}",
        events[1]
    );
    assert_eq!(
        events[1]["outcome"]["detail"],
        "2 settings changed since the last start"
    );
    server.terminate();
}
