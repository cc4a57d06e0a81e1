//! Library parts of the benchmark and attack programs, so that tests can run them too.

pub mod attack;

/// The log key of a benchmark database in `dir` (made on first use, kept in `dir/log-key`)
/// and its checkpoint sinks: signed, stored and appended to `dir/checkpoints.jsonl` exactly
/// as `serve` does it.
pub fn bench_log(
    dir: &std::path::Path,
    origin: &str,
) -> anyhow::Result<(
    std::sync::Arc<scimtrail_server::transparency::LogIdentity>,
    scimtrail_server::transparency::CheckpointSinks,
)> {
    use scimtrail_audit::checkpoint::LogSigner;
    let key_path = dir.join("log-key");
    let signer = if key_path.exists() {
        LogSigner::from_skey(&std::fs::read_to_string(&key_path)?)?
    } else {
        let s = LogSigner::generate(origin)?;
        std::fs::write(&key_path, format!("{}\n", s.skey()))?;
        std::fs::write(dir.join("log-key.pub"), format!("{}\n", s.vkey()))?;
        s
    };
    let log = std::sync::Arc::new(scimtrail_server::transparency::LogIdentity {
        origin: signer.name().to_string(),
        signer,
    });
    let sinks = scimtrail_server::transparency::CheckpointSinks {
        file: Some(dir.join("checkpoints.jsonl")),
        url: None,
    };
    Ok((log, sinks))
}
