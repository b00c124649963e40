//! `provisioner connections ...`: Test Connection, lifting a quarantine,
//! and a one-shot push through one connection.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::app::App;
use super::render;
use crate::runtime::contract::Capability;

#[derive(Debug, Subcommand)]
pub(super) enum ConnectionsCommand {
    /// PingOne's Test Connection: one cheap authenticated call to the
    /// store. Prints who the store thinks we are, or exactly why it failed
    /// (unreachable, TLS, denied host, 401 after refresh, refresh refused).
    /// Exits non-zero on failure.
    Test {
        /// The connection's name in the configuration.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Lift a connection's quarantine without testing it.
    Resume { name: String },
    /// Push people through a connection once: look each up by the match
    /// attribute, update the records that exist (changed attributes only),
    /// create the others, as the connection's preferences allow. Uses the
    /// connector's default mappings. Exits non-zero if any person failed.
    Push {
        /// The connection's name in the configuration.
        name: String,
        /// A JSON array of people: {"id": ..., "email": ..., ...}.
        #[arg(long)]
        people: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(app: &App<'_>, command: ConnectionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConnectionsCommand::Test { name, json } => test(app, &name, json).await,
        ConnectionsCommand::Resume { name } => resume(app, &name).await,
        ConnectionsCommand::Push { name, people, json } => {
            super::push::push(app, &name, &people, json).await
        }
    }
}

/// PingOne's Test Connection, then schema warnings where the connector
/// can discover the store's schema.
async fn test(app: &App<'_>, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(connected) = app.connect(name).await? else {
        return Ok(ExitCode::from(2));
    };
    let (config, connection, connector) = (
        &connected.config,
        &connected.connection,
        &connected.connector,
    );
    let result = connector.test_connection().await;
    let ok = result.is_ok();
    render::test_result(connection, &result, json)?;
    let descriptor = connector.plugin().descriptor();
    if ok && descriptor.has(Capability::Schema) {
        // Warnings go to standard error, so that --json stays JSON.
        match connector.discover_schema().await {
            Ok(store) => {
                for warning in config.schema_warnings(name, descriptor, &store) {
                    eprintln!("warning: {}", crate::inert::inert(&warning));
                }
            }
            Err(error) => eprintln!(
                "warning: schema discovery failed: {}",
                crate::inert::inert(&error.to_string())
            ),
        }
    }
    if !ok {
        return Ok(ExitCode::from(1));
    }
    // PingOne's rule: a connection provisions again once a test passes.
    let (db, _) = app.state(Some(config)).await?;
    if db.resume(name).await? {
        println!("  quarantine lifted: the connection provisions again");
    }
    Ok(ExitCode::SUCCESS)
}

async fn resume(app: &App<'_>, name: &str) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    if !config.connection_names().any(|n| n == name) {
        anyhow::bail!(
            "no connection named {name:?} in {}",
            config.path().display()
        );
    }
    let (db, _) = app.state(Some(&config)).await?;
    if db.resume(name).await? {
        println!("resumed {name}");
    } else {
        println!("{name} was not quarantined");
    }
    Ok(ExitCode::SUCCESS)
}
