//! Runs the Salesforce emulator on loopback, for the demo, benchmarks and
//! manual testing. The control API is under `/__emulator/`.

use std::time::Duration;

use clap::Parser;
use salesforce_emulator::{Emulator, Options};

/// A local Salesforce org: OAuth 2.0, REST, SOQL, sObject Collections and
/// SOAP convertLead, with fault injection and counters.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    /// The connected app's consumer key.
    #[arg(
        long,
        env = "SF_EMULATOR_CLIENT_ID",
        default_value = "demo-consumer-key"
    )]
    client_id: String,
    /// The connected app's consumer secret.
    #[arg(long, env = "SF_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// A refresh token the org accepts at start.
    #[arg(long, env = "SF_EMULATOR_REFRESH_TOKEN", hide_env_values = true)]
    refresh_token: String,
    /// Issue a new refresh token on every refresh.
    #[arg(long)]
    rotate_refresh_tokens: bool,
    /// Seconds an access token lives (never expires if unset).
    #[arg(long)]
    session_seconds: Option<u64>,
    /// The daily API request allocation.
    #[arg(long, default_value_t = 100_000)]
    daily_api_limit: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let emulator = Emulator::bind(
        args.listen,
        Options {
            client_id: args.client_id,
            client_secret: args.client_secret,
            refresh_tokens: vec![args.refresh_token],
            rotate_refresh_tokens: args.rotate_refresh_tokens,
            session_lifetime: args.session_seconds.map(Duration::from_secs),
            daily_api_limit: args.daily_api_limit,
            ..Options::default()
        },
    )
    .await?;
    println!("salesforce-emulator listening on {}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
