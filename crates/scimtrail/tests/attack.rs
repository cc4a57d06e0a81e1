//! The adversarial replay (`scimtrail-attack`, issue 11) against the real binary: every attack
//! is held, the log reads back bounded and clean, and neither the data directory nor the
//! server's own output (at debug level) holds a canary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[tokio::test]
async fn the_attacks_of_issue_11_are_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(
        dir.path(),
        &[("RUST_LOG", "debug"), ("SCIMTRAIL_HEADER_TIMEOUT", "2")],
    );
    let report = scimtrail_bench::attack::run(&server.base, common::TOKEN, Some(dir.path()))
        .await
        .unwrap();
    println!("{}", report.table());
    assert!(report.held(), "{}", report.table());
    assert!(report.events_checked > 30);
    // A second run on the same server: the replay is repeatable.
    let again = scimtrail_bench::attack::run(&server.base, common::TOKEN, Some(dir.path()))
        .await
        .unwrap();
    assert!(again.held(), "{}", again.table());
    let output = server.output.lock().unwrap().clone();
    for f in &report.findings {
        assert!(!f.detail.contains("LEAKED"), "{}", f.detail);
    }
    assert!(
        !output.contains("Canary-"),
        "a canary in the server's output"
    );
}
