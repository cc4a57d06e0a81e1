//! `scimtrail audit tail|stats` against a database a running server writes to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args(args)
        .env("USER", "ops-alice")
        .env_remove("SCIMTRAIL_DATABASE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
