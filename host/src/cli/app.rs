//! The composition root: every command opens the configuration, the state
//! file, the secrets and the plugins here, the same way, and binds a
//! connection or builds the engine from them. A command file only says
//! what it does with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::Global;
use crate::config::secrets::SecretStore;
use crate::config::{Config, Connection, Diagnostic, RuleSet};
use crate::directory::AttributeSchema;
use crate::runtime::{Connector, PluginRegistry, PluginSet, Runtime, RuntimeOptions};
use crate::state::{Location, Store};
use crate::sync::engine::Engine;
use crate::targets::Components;

/// What one command invocation was started with.
pub(super) struct App<'g> {
    global: &'g Global,
}

/// A connection bound to its plugin, for the commands that talk to one
/// store.
pub(super) struct Connected {
    pub config: Config,
    pub connection: Connection,
    pub connector: Connector,
}

impl<'g> App<'g> {
    pub fn new(global: &'g Global) -> App<'g> {
        App { global }
    }

    /// The configuration, which the command needs.
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(&self.global.config).map_err(|d| anyhow::anyhow!(d.to_string()))
    }

    /// The configuration if there is a file; plugin and directory commands
    /// work without one.
    pub fn config_if_any(&self) -> anyhow::Result<Option<Config>> {
        if !self.global.config.exists() {
            return Ok(None);
        }
        self.config().map(Some)
    }

    /// The configuration's directory, where defaults live.
    fn config_dir(&self) -> &Path {
        self.global
            .config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.global.no_cache {
            return None;
        }
        if let Some(dir) = &self.global.cache_dir {
            return Some(dir.clone());
        }
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|base| base.join("provisioner"))
    }

    /// `--plugin-dir`, else the configuration's `plugin_dir`, else
    /// `plugins` beside the configuration.
    pub fn plugin_dir(&self, config: Option<&Config>) -> PathBuf {
        if let Some(dir) = &self.global.plugin_dir {
            return dir.clone();
        }
        if let Some(dir) = config.and_then(Config::plugin_dir) {
            return dir.to_path_buf();
        }
        self.config_dir().join("plugins")
    }

    /// Loads the plugin directory; refused files are printed, and the rest
    /// serve.
    pub async fn plugins(
        &self,
        config: Option<&Config>,
    ) -> anyhow::Result<(Arc<Runtime>, PluginSet)> {
        let options = match config {
            Some(config) => config.runtime_options(self.cache_dir()),
            None => RuntimeOptions {
                cache_dir: self.cache_dir(),
                ..RuntimeOptions::default()
            },
        };
        let runtime = Runtime::new(options)?;
        let plugins = runtime
            .load_dir(&self.plugin_dir(config))
            .await
            .with_context(
                || "loading plugins (set --plugin-dir or plugin_dir in the configuration)",
            )?;
        for refusal in &plugins.refused {
            eprintln!("{}", crate::inert::inert(&refusal.to_string()));
        }
        Ok((runtime, plugins))
    }

    /// `--state`, else the configuration's `state`, else provisioner.db
    /// beside the configuration.
    pub fn state_location(&self, config: Option<&Config>) -> anyhow::Result<Location> {
        Ok(match (&self.global.state, config) {
            (Some(path), _) => {
                Location::parse(path, Path::new("")).map_err(|e| anyhow::anyhow!("--state: {e}"))?
            }
            (None, Some(config)) => config.state().clone(),
            (None, None) => Location::File(self.config_dir().join(crate::config::DEFAULT_STATE)),
        })
    }

    /// The state, created if missing, and the attribute schema from the
    /// configuration if there is one.
    pub async fn state(
        &self,
        config: Option<&Config>,
    ) -> anyhow::Result<(Arc<dyn Store>, AttributeSchema)> {
        let schema = match config {
            Some(config) => config
                .attribute_schema()
                .map_err(|d| anyhow::anyhow!(d.to_string()))?,
            None => AttributeSchema::default(),
        };
        Ok((self.state_location(config)?.open().await?, schema))
    }

    /// The state if there is one: a command that only reads it must not
    /// create a file.
    pub async fn existing_state(
        &self,
        config: Option<&Config>,
    ) -> anyhow::Result<Option<Arc<dyn Store>>> {
        if self.global.state.is_none() && config.is_none() {
            return Ok(None);
        }
        Ok(self.state_location(config)?.open_existing().await?)
    }

    /// The secret store the configuration names.
    pub fn secrets(&self, config: &Config) -> anyhow::Result<Arc<SecretStore>> {
        config
            .secret_store()
            .map(Arc::new)
            .map_err(|d| anyhow::anyhow!(d.to_string()))
    }

    /// One connection, resolved and bound; `None` after printing why it
    /// cannot be.
    pub async fn connect(&self, name: &str) -> anyhow::Result<Option<Connected>> {
        let config = self.config()?;
        let (_runtime, plugins) = self.plugins(Some(&config)).await?;
        let secrets = self.secrets(&config)?;
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
        Ok(Some(Connected {
            config,
            connection,
            connector,
        }))
    }

    /// Everything a sync needs, with the configuration's rule problems
    /// printed.
    pub async fn engine(&self) -> anyhow::Result<Engine> {
        let config = self.config()?;
        let (db, schema) = self.state(Some(&config)).await?;
        let rules = config.rules(&schema);
        print_diagnostics(&rules.diagnostics);
        self.engine_over(config, db, schema, rules).await
    }

    /// The engine over the given state and rules: `connections push` runs
    /// its pass over a state that lives in memory.
    pub async fn engine_over(
        &self,
        config: Config,
        db: Arc<dyn Store>,
        schema: AttributeSchema,
        rules: RuleSet,
    ) -> anyhow::Result<Engine> {
        let (runtime, plugins) = self.plugins(Some(&config)).await?;
        let registry = PluginRegistry::fixed(runtime, &self.plugin_dir(Some(&config)), plugins);
        let secrets = self.secrets(&config)?;
        let config = Arc::new(config);
        let connect =
            Components::new(config.clone(), registry.clone(), secrets).linking(self.global.link);
        let engine = Engine::new(db, config, registry, schema, Arc::new(connect));
        Ok(engine.with_rules(rules))
    }
}

/// Diagnostics quote plugin text (a refusal's reason, a descriptor's
/// names), so they are printed inert.
pub(super) fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{}", crate::inert::inert(&diagnostic.to_string()));
    }
}
