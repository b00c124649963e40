//! Runs the JSON store on loopback, for the demo and for manual testing.

use clap::Parser;
use json_store::{JsonStore, Options};

/// A small JSON REST identity store with an OAuth 2.0 token endpoint.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: std::net::SocketAddr,
    /// The OAuth 2.0 client id the store accepts.
    #[arg(long, env = "JSON_STORE_CLIENT_ID", default_value = "demo-client")]
    client_id: String,
    /// The OAuth 2.0 client secret the store accepts.
    #[arg(long, env = "JSON_STORE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// A refresh token the store accepts at start.
    #[arg(long, env = "JSON_STORE_REFRESH_TOKEN", hide_env_values = true)]
    refresh_token: String,
    /// Issue a new refresh token on every refresh.
    #[arg(long)]
    rotate_refresh_tokens: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "--listen must be a loopback address, got {}",
        args.listen
    );
    let store = JsonStore::bind(
        args.listen,
        Options {
            client_id: args.client_id,
            client_secret: args.client_secret,
            refresh_tokens: vec![args.refresh_token],
            rotate_refresh_tokens: args.rotate_refresh_tokens,
            ..Options::default()
        },
    )
    .await?;
    println!("json-store listening on {}", store.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
