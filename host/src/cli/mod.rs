//! The `provisioner` command line. Thin by design: parse, call one
//! function of the library, render.

mod people;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Diagnostic, Severity};
use crate::directory::{AttributeSchema, Directory};
use crate::runtime::contract::Capability;
use crate::runtime::{LinkedStores, PluginRegistry, PluginSet, Runtime, RuntimeOptions};
use crate::state::StateDb;
use crate::sync::engine::{Action, Engine, PassOptions, RuleStatus};
use crate::sync::links::Links;

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
    /// The state file (directory, links, journal). Defaults to `state` in
    /// the configuration, or provisioner.db beside it.
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
    /// Connector logic linked into this build (see [`main_linked`]).
    #[arg(skip)]
    linked: LinkedStores,
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
    Plugins(PluginsCommand),
    /// Work with the connections in the configuration.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
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
    Run {
        /// Where to serve status; overrides [status] listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Reload the plugins on SIGHUP only, not on file changes.
        #[arg(long)]
        no_watch: bool,
    },
    /// One sync pass: every active rule (or one), every person in scope (or
    /// one). Prints what was done and the per-rule summary. Exits non-zero
    /// if a rule could not run or a person failed.
    Sync {
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only this person.
        #[arg(long)]
        person: Option<String>,
        /// Re-read linked records through lookup to repair drift.
        #[arg(long)]
        full: bool,
        /// Print the plan and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Per rule: source and target, sync status and why, last sync, and
    /// PingOne's counts (Impacted, Success, Unsynced, Partially synced,
    /// Failed); connection health and API usage.
    Status {
        #[command(subcommand)]
        what: Option<StatusCommand>,
        /// List the failed people: error class, code, message, fields,
        /// attempts, next retry.
        #[arg(long)]
        failures: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read the action journal, newest first.
    Audit {
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        /// Only entries from this long ago, e.g. 15m, 2h, 7d.
        #[arg(long)]
        since: Option<humantime::Duration>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make failed people due again now: rejections stop waiting for new
    /// data, transient failures stop backing off.
    Retry {
        #[arg(long)]
        rule: Option<String>,
        #[arg(long)]
        person: Option<String>,
    },
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
}

#[derive(Debug, Subcommand)]
enum StatusCommand {
    /// One person in every rule: in scope or not and why, the link, and the
    /// journal of the last attempts (match, action or the preference that
    /// forbade it, outcome).
    Person {
        /// The person's id or email.
        id_or_email: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
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

#[derive(Debug, Subcommand)]
enum ConnectionsCommand {
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

/// The entry point of the `provisioner` binary.
pub fn main() -> ExitCode {
    main_linked(std::env::args_os(), LinkedStores::default())
}

/// [`main`] for a build that links some connectors' logic in place of
/// their components' calls: the benchmarks' measure of the sandbox.
pub fn main_linked(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    linked: LinkedStores,
) -> ExitCode {
    let mut cli = Cli::parse_from(args);
    cli.global.linked = linked;
    init_logging(&cli.global, matches!(cli.command, Command::Run { .. }));
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

/// The configuration, if one exists; plugin commands work without one.
fn load_config(global: &Global, required: bool) -> anyhow::Result<Option<Config>> {
    if !required && !global.config.exists() {
        return Ok(None);
    }
    Config::load(&global.config)
        .map(Some)
        .map_err(|d| anyhow::anyhow!(d.to_string()))
}

fn cache_dir(global: &Global) -> Option<PathBuf> {
    if global.no_cache {
        return None;
    }
    if let Some(dir) = &global.cache_dir {
        return Some(dir.clone());
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .map(|base| base.join("provisioner"))
}

fn plugin_dir(global: &Global, config: Option<&Config>) -> PathBuf {
    if let Some(dir) = &global.plugin_dir {
        return dir.clone();
    }
    if let Some(dir) = config.and_then(Config::plugin_dir) {
        return dir.to_path_buf();
    }
    global
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("plugins")
}

async fn load_plugins(
    global: &Global,
    config: Option<&Config>,
) -> anyhow::Result<(Arc<Runtime>, PluginSet)> {
    let mut options = match config {
        Some(config) => config.runtime_options(cache_dir(global)),
        None => RuntimeOptions {
            cache_dir: cache_dir(global),
            ..RuntimeOptions::default()
        },
    };
    options.linked = global.linked.clone();
    let runtime = Runtime::new(options)?;
    let dir = plugin_dir(global, config);
    let plugins = runtime
        .load_dir(&dir)
        .await
        .with_context(|| "loading plugins (set --plugin-dir or plugin_dir in the configuration)")?;
    for refusal in &plugins.refused {
        eprintln!("{}", crate::inert::inert(&refusal.to_string()));
    }
    Ok((runtime, plugins))
}

/// The state file and the attribute schema, from the configuration if
/// there is one.
fn open_state(
    global: &Global,
    config: Option<&Config>,
) -> anyhow::Result<(StateDb, AttributeSchema)> {
    let path = match (&global.state, config) {
        (Some(path), _) => path.clone(),
        (None, Some(config)) => config.state_path().to_path_buf(),
        (None, None) => global
            .config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(crate::config::DEFAULT_STATE),
    };
    let schema = match config {
        Some(config) => config
            .attribute_schema()
            .map_err(|d| anyhow::anyhow!(d.to_string()))?,
        None => AttributeSchema::default(),
    };
    Ok((StateDb::open(&path)?, schema))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    match cli.command {
        Command::People(command) => {
            let config = load_config(global, false)?;
            let (db, schema) = open_state(global, config.as_ref())?;
            people::people(&Directory::new(&db, schema), command)
        }
        Command::Groups(command) => {
            let config = load_config(global, false)?;
            let (db, schema) = open_state(global, config.as_ref())?;
            people::groups(&Directory::new(&db, schema), command)
        }
        Command::Plugins(PluginsCommand::List { json }) => {
            let config = load_config(global, false)?;
            let (_runtime, plugins) = load_plugins(global, config.as_ref()).await?;
            // What a running host serves, if one has recorded it.
            let state_path = global
                .state
                .clone()
                .or_else(|| config.as_ref().map(|c| c.state_path().to_path_buf()));
            let in_use = match state_path.map(|p| StateDb::open_existing(&p)) {
                Some(Ok(Some(db))) => Links::new(&db).plugins_in_use()?,
                _ => Default::default(),
            };
            render::plugin_list(&plugins, &in_use, json)?;
            // A refused file is an operator's problem even when other
            // plugins load: scripts that check the plugin directory
            // must see it.
            if plugins.refused.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        Command::Plugins(PluginsCommand::New { name, dir, sdk }) => {
            let sdk = crate::scaffold::Sdk::locate(sdk.as_deref())?;
            let root = crate::scaffold::write(&name, &dir, &sdk)?;
            println!("wrote the {name} connector in {}", root.display());
            println!(
                "next: cd {} && cargo build --release --target wasm32-wasip2",
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins(PluginsCommand::Conform {
            connection: name,
            keep,
            json,
        }) => {
            let Some((config, connection, connector)) = connect_one(global, &name).await? else {
                return Ok(ExitCode::from(2));
            };
            let wrong = match connector.plugin().descriptor().auth {
                crate::runtime::contract::AuthScheme::None => None,
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
                &connection,
                &connector,
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
        Command::Plugins(PluginsCommand::Inspect { name, json }) => {
            let config = load_config(global, false)?;
            let (_runtime, plugins) = load_plugins(global, config.as_ref()).await?;
            match plugins.get(&name) {
                Some(plugin) => {
                    render::plugin_details(plugin, json)?;
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    let mut message = format!(
                        "no plugin named {name:?} (loaded: {})",
                        plugins
                            .plugins
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    if let Some(refusal) = plugins.refusal_for(&name) {
                        message.push_str(&format!("; {refusal}"));
                    }
                    eprintln!("error: {}", crate::inert::inert(&message));
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Connections(ConnectionsCommand::Test { name, json }) => {
            let Some((config, connection, connector)) = connect_one(global, &name).await? else {
                return Ok(ExitCode::from(2));
            };
            let result = connector.test_connection().await;
            let ok = result.is_ok();
            render::test_result(&connection, &result, json)?;
            let descriptor = connector.plugin().descriptor();
            if ok && descriptor.has(Capability::Schema) {
                // Warnings go to standard error, so that --json stays JSON.
                match connector.discover_schema().await {
                    Ok(store) => {
                        for warning in config.schema_warnings(&name, descriptor, &store) {
                            eprintln!("warning: {}", crate::inert::inert(&warning));
                        }
                    }
                    Err(error) => eprintln!(
                        "warning: schema discovery failed: {}",
                        crate::inert::inert(&error.to_string())
                    ),
                }
            }
            if ok {
                // PingOne's rule: a connection provisions again once a
                // test passes.
                let (db, _) = open_state(global, Some(&config))?;
                if Links::new(&db).resume(&name)? {
                    println!("  quarantine lifted: the connection provisions again");
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Connections(ConnectionsCommand::Push { name, people, json }) => {
            let people = crate::sync::push::read_people(&people)?;
            let Some((_config, connection, connector)) = connect_one(global, &name).await? else {
                return Ok(ExitCode::from(2));
            };
            let report = crate::sync::push::push(&connector, &connection.preferences, &people)
                .await
                .with_context(|| format!("pushing people through connection {name}"))?;
            render::push_report(&connection, &report, json)?;
            Ok(if report.count("failed") == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Connections(ConnectionsCommand::Resume { name }) => {
            let config = load_config(global, true)?.context("no configuration")?;
            if !config.connection_names().any(|n| n == name) {
                anyhow::bail!(
                    "no connection named {name:?} in {}",
                    config.path().display()
                );
            }
            let (db, _) = open_state(global, Some(&config))?;
            if Links::new(&db).resume(&name)? {
                println!("resumed {name}");
            } else {
                println!("{name} was not quarantined");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync {
            rule,
            person,
            full,
            dry_run,
            json,
        } => {
            let engine = engine(global).await?;
            if !dry_run {
                crate::sync::daemon::record_plugins(&engine);
            }
            let bar = render::progress_bar(json);
            if let Some(bar) = bar.clone() {
                engine.on_progress(Arc::new(move |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                }));
            }
            let report = engine
                .pass(&PassOptions {
                    rule,
                    people: person.map(|p| std::collections::BTreeSet::from([p])),
                    full,
                    dry_run,
                })
                .await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let buckets = engine.buckets()?;
            render::sync_report(&report, &buckets, json)?;
            let troubled = report.rules.iter().any(|r| {
                matches!(
                    r.status,
                    Some(RuleStatus::Failed(_)) | Some(RuleStatus::Quarantined(_))
                ) || r.counted(Action::Failed) > 0
            });
            Ok(if troubled {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run { listen, no_watch } => {
            // Listen for signals first, so that none meets the default
            // action while the plugins load.
            let shutdown =
                crate::sync::daemon::Shutdown::listen().context("listening for signals")?;
            let engine = Arc::new(engine(global).await?);
            let config = engine.config();
            let secrets = config
                .secret_store()
                .map_err(|d| anyhow::anyhow!(d.to_string()))?;
            let token = config
                .status_token(&secrets)
                .map_err(|d| anyhow::anyhow!(d.to_string()))?;
            let listen = match listen {
                Some(listen) => listen,
                None => config
                    .status_listen()
                    .map_err(|d| anyhow::anyhow!(d.to_string()))?,
            };
            let kick = Arc::new(tokio::sync::Notify::new());
            let state = Arc::new(crate::status::http::StatusState {
                db: engine.shared_db(),
                config: config.clone(),
                rules: Arc::new(engine.rules().clone()),
                schema: engine.schema().clone(),
                token,
                kick: kick.clone(),
            });
            let hosts = config
                .status_hosts()
                .map_err(|d| anyhow::anyhow!(d.to_string()))?;
            let (bound, _server) = crate::status::http::serve(listen, state, hosts)
                .await
                .with_context(|| format!("serving status on {listen}"))?;
            tracing::info!("serving status at http://{bound}/");
            let settings = engine.settings().clone();
            crate::sync::daemon::run(
                engine,
                crate::sync::daemon::Schedule {
                    interval: settings.interval,
                    drift_interval: settings.drift_interval,
                    watch_plugins: !no_watch,
                },
                kick,
                shutdown,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            what,
            failures,
            json,
        } => {
            let config = load_config(global, true)?.context("no configuration")?;
            let (db, schema) = open_state(global, Some(&config))?;
            let rules = config.rules(&schema);
            match what {
                Some(StatusCommand::Person {
                    id_or_email,
                    json: person_json,
                }) => {
                    let directory = Directory::new(&db, schema.clone());
                    let Some(person) = crate::status::model::find_person(&directory, &id_or_email)?
                    else {
                        anyhow::bail!("no person with id or email {id_or_email:?}");
                    };
                    let status = crate::status::model::person(&db, &rules, person)?;
                    render::person_status(&status, json || person_json)?;
                }
                None => {
                    let overview = crate::status::model::overview(&db, &schema, &config, &rules)?;
                    if failures {
                        render::failures(&overview.failures, json)?;
                    } else {
                        render::overview(&overview, json)?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            person,
            rule,
            since,
            limit,
            json,
        } => {
            let config = load_config(global, true)?.context("no configuration")?;
            let (db, _) = open_state(global, Some(&config))?;
            let since = since.map(|d| crate::state::now_ms() - d.as_millis() as i64);
            let entries =
                Links::new(&db).journal(person.as_deref(), rule.as_deref(), since, limit)?;
            render::audit(&entries, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { rule, person } => {
            let config = load_config(global, true)?.context("no configuration")?;
            let (db, _) = open_state(global, Some(&config))?;
            let count = Links::new(&db).retry(rule.as_deref(), person.as_deref())?;
            println!("{count} failed link(s) due again at the next pass");
            Ok(ExitCode::SUCCESS)
        }
        Command::ApproveRemovals { rule } => approve(global, &rule, "removals", |links, rule| {
            links.approve_removals(rule)
        }),
        Command::ApproveUpdates { rule } => approve(global, &rule, "updates", |links, rule| {
            links.approve_updates(rule)
        }),
        Command::Check => {
            let config = load_config(global, true)?.context("no configuration")?;
            let (_runtime, plugins) = load_plugins(global, Some(&config)).await?;
            let mut diagnostics = Vec::new();
            let secrets = match config.secret_store() {
                Ok(store) => store,
                Err(diagnostic) => {
                    diagnostics.push(diagnostic);
                    crate::config::secrets::SecretStore::env_only()
                }
            };
            diagnostics.extend(config.check(&plugins, &secrets));
            diagnostics.extend(config.status_diagnostics(&secrets));
            match config.attribute_schema() {
                Ok(schema) => {
                    let rules = config.rules(&schema);
                    diagnostics.extend(config.rule_diagnostics(&rules, &plugins, &schema));
                    diagnostics.extend(rules.diagnostics);
                }
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
            print_diagnostics(&diagnostics);
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count()
                + plugins.refused.len();
            let connections = config.connection_names().count();
            if errors == 0 {
                println!(
                    "ok: {} plugin(s), {connections} connection(s), {} warning(s)",
                    plugins.plugins.len(),
                    diagnostics.len()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "{errors} error(s) in {} and {}",
                    config.path().display(),
                    plugin_dir(global, Some(&config)).display()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Lets what a rule's guard holds (`what`: removals or updates) go at the
/// next pass; exits 1 when nothing is held.
fn approve(
    global: &Global,
    rule: &str,
    what: &str,
    approve: impl Fn(&Links<'_>, &str) -> Result<bool, crate::state::StateError>,
) -> anyhow::Result<ExitCode> {
    let config = load_config(global, true)?.context("no configuration")?;
    let (db, _) = open_state(global, Some(&config))?;
    if approve(&Links::new(&db), rule)? {
        println!("approved: the held {what} of rule {rule} go out at the next pass");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("rule {rule} has no {what} waiting for approval");
        Ok(ExitCode::from(1))
    }
}

/// One connection, resolved and bound, for the commands that talk to one
/// store; `None` after printing why it cannot be.
async fn connect_one(
    global: &Global,
    name: &str,
) -> anyhow::Result<Option<(Config, crate::config::Connection, crate::runtime::Connector)>> {
    let config = load_config(global, true)?.context("no configuration")?;
    let (_runtime, plugins) = load_plugins(global, Some(&config)).await?;
    let secrets = Arc::new(
        config
            .secret_store()
            .map_err(|d| anyhow::anyhow!(d.to_string()))?,
    );
    let connection = match config.resolve(name, &plugins, &secrets) {
        Ok(connection) => connection,
        Err(errors) => {
            print_diagnostics(&errors);
            return Ok(None);
        }
    };
    print_diagnostics(&connection.warnings);
    let connector = connection
        .connect(config.http_limits(), secrets, None)
        .with_context(|| format!("connection {name}"))?;
    Ok(Some((config, connection, connector)))
}

/// Everything a sync needs, with the configuration's rule problems printed.
async fn engine(global: &Global) -> anyhow::Result<Engine> {
    let config = load_config(global, true)?.context("no configuration")?;
    let (runtime, plugins) = load_plugins(global, Some(&config)).await?;
    let registry = PluginRegistry::fixed(runtime, &plugin_dir(global, Some(&config)), plugins);
    let secrets = Arc::new(
        config
            .secret_store()
            .map_err(|d| anyhow::anyhow!(d.to_string()))?,
    );
    let (db, schema) = open_state(global, Some(&config))?;
    let engine = Engine::new(Arc::new(db), Arc::new(config), registry, secrets, schema);
    print_diagnostics(&engine.rules().diagnostics);
    Ok(engine)
}

/// Diagnostics quote plugin text (a refusal's reason, a descriptor's
/// names), so they are printed inert.
fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{}", crate::inert::inert(&diagnostic.to_string()));
    }
}
