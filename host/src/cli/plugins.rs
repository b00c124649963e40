//! `provisioner plugins ...`: the connector plugins in the plugin
//! directory, a new one, and a check of one against a live store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::app::App;
use super::render;
use crate::runtime::contract::AuthScheme;

#[derive(Debug, Subcommand)]
pub(super) enum PluginsCommand {
    /// List the loaded plugins: name, version, contract version,
    /// capabilities, egress templates. Refused files are listed on stderr,
    /// and make the command exit non-zero.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a new connector: a crate of its own in DIR/NAME, from the
    /// project's example connector, with the contract beside it.
    /// `cargo build --release --target wasm32-wasip2` in it gives a
    /// component this host loads.
    New {
        /// The plugin's name: lower-case letters, digits and hyphens.
        name: String,
        /// Where to create the crate's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK's directory, to depend on it by path; by default the
        /// SDK beside the sources this binary was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a connector's promises against a live store, through a
    /// configured connection: describe, test connection (and wrong
    /// credentials refused), create, lookup in any case, read back as
    /// written, update, versions (a stale one is a conflict), list pages, a
    /// batch with one bad operation, disable, enable, delete, transient
    /// answers (against a stand-in store). It
    /// writes only records it tags as its own
    /// (provisioner-conform-RUN-N@example.com) and deletes them after, and
    /// lists any it could not remove. Exits non-zero if a check fails.
    Conform {
        /// The connection's name in the configuration.
        connection: String,
        /// Leave the run's records in the store for inspection.
        #[arg(long)]
        keep: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show everything a plugin declares: settings, capabilities, egress,
    /// authentication, match attribute and default mappings.
    Inspect {
        /// The plugin's name, as in `plugins list`.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(app: &App<'_>, command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List { json } => list(app, json).await,
        PluginsCommand::New { name, dir, sdk } => {
            let sdk = crate::scaffold::Sdk::locate(sdk.as_deref())?;
            let root = crate::scaffold::write(&name, &dir, &sdk)?;
            println!("wrote the {name} connector in {}", root.display());
            println!(
                "next: cd {} && cargo build --release --target wasm32-wasip2",
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginsCommand::Conform {
            connection,
            keep,
            json,
        } => conform(app, &connection, keep, json).await,
        PluginsCommand::Inspect { name, json } => inspect(app, &name, json).await,
    }
}

async fn list(app: &App<'_>, json: bool) -> anyhow::Result<ExitCode> {
    let config = app.config_if_any()?;
    let (_runtime, plugins) = app.plugins(config.as_ref()).await?;
    // What a running host serves, if one has recorded it.
    let in_use = match app.existing_state(config.as_ref()).await {
        Ok(Some(db)) => db.plugins_in_use().await?,
        _ => Default::default(),
    };
    render::plugin_list(&plugins, &in_use, json)?;
    // A refused file is an operator's problem even when other plugins
    // load: scripts that check the plugin directory must see it.
    Ok(if plugins.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn conform(app: &App<'_>, name: &str, keep: bool, json: bool) -> anyhow::Result<ExitCode> {
    let Some(connected) = app.connect(name).await? else {
        return Ok(ExitCode::from(2));
    };
    let (config, connection, connector) = (
        &connected.config,
        &connected.connection,
        &connected.connector,
    );
    let wrong = match connector.plugin().descriptor().auth {
        AuthScheme::None => None,
        _ if !connection.holds_secrets() => None,
        _ => Some(
            connection
                .connect_with_wrong_credentials(config.http_limits())
                .map_err(|e| e.to_string()),
        ),
    };
    let limits = config.http_limits();
    let stand_in = |host: &str| {
        connection
            .connect_to_stand_in(limits, host)
            .map_err(|e| e.to_string())
    };
    let report = crate::conform::conform(
        connection,
        connector,
        wrong,
        &stand_in,
        crate::conform::Options { keep },
    )
    .await;
    render::conform_report(&report, json)?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn inspect(app: &App<'_>, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let config = app.config_if_any()?;
    let (_runtime, plugins) = app.plugins(config.as_ref()).await?;
    if let Some(plugin) = plugins.get(name) {
        render::plugin_details(plugin, json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let loaded: Vec<&str> = plugins.plugins.keys().map(String::as_str).collect();
    let mut message = format!("no plugin named {name:?} (loaded: {})", loaded.join(", "));
    if let Some(refusal) = plugins.refusal_for(name) {
        message.push_str(&format!("; {refusal}"));
    }
    eprintln!("error: {}", crate::inert::inert(&message));
    Ok(ExitCode::from(1))
}
