//! The `provisioner` command line. Thin by design: parse, call one
//! function of the library, render.

//!
//! Each command lives in a file of its own; [`app::App`] opens what they
//! all need (configuration, state, secrets, plugins) in one place.

mod app;
mod check;
mod connections;
mod daemon;
mod operator;
mod people;
mod plugins;
mod push;
mod render;
mod state;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use self::app::App;
use crate::directory::Directory;
use crate::targets::Link;

/// Provisions identities from a source directory into target identity
/// stores, through sandboxed WebAssembly connectors.
#[derive(Debug, Parser)]
#[command(name = "provisioner", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "PROVISIONER_CONFIG",
        default_value = "provisioner.toml"
    )]
    config: PathBuf,
    /// Directory of connector components (*.wasm); overrides `plugin_dir`
    /// in the configuration. Defaults to `plugins` beside the configuration.
    #[arg(long, global = true, env = "PROVISIONER_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// Where compiled components are cached. Defaults to
    /// $XDG_CACHE_HOME/provisioner or ~/.cache/provisioner.
    #[arg(long, global = true, env = "PROVISIONER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The state (directory, links, journal): a file, or a PostgreSQL
    /// database as postgres://user@host:port/db with the password in
    /// PGPASSWORD. Defaults to `state` in the configuration, or
    /// provisioner.db beside it.
    #[arg(long, global = true, env = "PROVISIONER_STATE")]
    state: Option<PathBuf>,
    /// Compile components on every start instead of caching them.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Log line format, on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More log output: -v for info, -vv for debug. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// What the engine calls in place of each connector (see
    /// [`main_linked`]).
    #[arg(skip = crate::targets::component as Link)]
    link: Link,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the connector plugins in the plugin directory.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Work with the connections in the configuration.
    #[command(subcommand)]
    Connections(connections::ConnectionsCommand),
    /// Validate the configuration and the plugins without contacting any
    /// store; exits non-zero on any error.
    Check,
    /// The daemon: follows the directory and syncs changes within a second,
    /// passes over everyone every `interval_secs`, re-reads the targets
    /// every `drift_interval_secs`, retries failures as their backoff
    /// allows, and serves the status page, JSON API and /metrics. Reloads
    /// the plugins when their directory changes and on SIGHUP: new work
    /// uses a replaced plugin, a broken replacement is refused while the
    /// old one keeps serving. Stops cleanly on SIGINT or SIGTERM.
    Run(daemon::RunArgs),
    /// One sync pass: every active rule (or one), every person in scope (or
    /// one). Prints what was done and the per-rule summary. Exits non-zero
    /// if a rule could not run or a person failed.
    Sync(sync::SyncArgs),
    /// Per rule: source and target, sync status and why, last sync, and
    /// PingOne's counts (Impacted, Success, Unsynced, Partially synced,
    /// Failed); connection health and API usage.
    Status(status::StatusArgs),
    /// Read the action journal, newest first.
    Audit(status::AuditArgs),
    /// Make failed people due again now: rejections stop waiting for new
    /// data, transient failures stop backing off.
    Retry(operator::RetryArgs),
    /// Let the removals that tripped a rule's removal guard go through at
    /// the next pass.
    ApproveRemovals { rule: String },
    /// Let the updates that a change of a rule's mappings (a plugin upgrade
    /// or an edit of the configuration) would make go through at the next
    /// pass, when they tripped the rule's update guard. Review them first
    /// with `sync --dry-run --rule RULE`.
    ApproveUpdates { rule: String },
    /// The source directory's people.
    #[command(subcommand)]
    People(people::PeopleCommand),
    /// The source directory's groups.
    #[command(subcommand)]
    Groups(people::GroupsCommand),
    /// The state itself: copy a state file into PostgreSQL, or check
    /// either.
    #[command(subcommand)]
    State(state::StateCommand),
}

/// The entry point of the `provisioner` binary.
pub fn main() -> ExitCode {
    main_linked(std::env::args_os(), crate::targets::component)
}

/// [`main`] for a build whose engine calls `link(connector)` in place of
/// each connector: the benchmarks link a connector's logic natively, to
/// measure what the sandbox costs.
pub fn main_linked(args: impl IntoIterator<Item = std::ffi::OsString>, link: Link) -> ExitCode {
    let mut cli = Cli::parse_from(args);
    cli.global.link = link;
    init_logging(&cli.global, matches!(cli.command, Command::Run(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", crate::inert::inert(&format!("{error:#}")));
            ExitCode::from(2)
        }
    }
}

fn init_logging(global: &Global, daemon: bool) {
    let default = match global.verbose {
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: a log file or a collector
    // gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    // Each event stays one line, whatever a store's quoted message holds.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(|| crate::inert::OneLine(std::io::stderr()));
    match global.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs one command.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let app = App::new(&cli.global);
    match cli.command {
        Command::People(command) => {
            let config = app.config_if_any()?;
            let (db, schema) = app.state(config.as_ref()).await?;
            people::people(&Directory::new(&*db, schema), command).await
        }
        Command::Groups(command) => {
            let config = app.config_if_any()?;
            let (db, schema) = app.state(config.as_ref()).await?;
            people::groups(&Directory::new(&*db, schema), command).await
        }
        Command::Plugins(command) => plugins::run(&app, command).await,
        Command::State(command) => state::run(&app, command).await,
        Command::Connections(command) => connections::run(&app, command).await,
        Command::Check => check::run(&app).await,
        Command::Run(args) => daemon::run(&app, args).await,
        Command::Sync(args) => sync::run(&app, args).await,
        Command::Status(args) => status::status(&app, args).await,
        Command::Audit(args) => status::audit(&app, args).await,
        Command::Retry(args) => operator::retry(&app, args).await,
        Command::ApproveRemovals { rule } => {
            operator::approve(&app, &rule, operator::Held::Removals).await
        }
        Command::ApproveUpdates { rule } => {
            operator::approve(&app, &rule, operator::Held::Updates).await
        }
    }
}
