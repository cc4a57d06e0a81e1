//! `scimtrail-attack`: replay the hostile-input attacks of issue 11 against a running server on
//! loopback, then read the whole audit log back and check that it stays readable, bounded and
//! free of canaries. Exits 1 when any attack got through.

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Server base URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A token with the `scim` and `audit:read` scopes (the bootstrap admin token).
    #[arg(long, env = "SCIMTRAIL_TOKEN")]
    token: String,
    /// The server's data directory, to search its files for the canaries too.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report =
        scimtrail_bench::attack::run(&args.url, &args.token, args.data_dir.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if !report.held() {
        std::process::exit(1);
    }
    Ok(())
}
