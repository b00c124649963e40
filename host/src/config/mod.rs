//! `provisioner.toml`: the connections, their settings, secrets and
//! preferences, and the runtime limits.
//!
//! Loading happens in two steps. [`Config::load`] reads the file and refuses
//! bad TOML, unknown keys and wrong types. [`Config::resolve`] then checks one
//! connection against its plugin's descriptor (unknown plugin, unknown or
//! missing setting, a value of the wrong kind, a preference the plugin cannot
//! honour, an unresolvable secret) and produces a ready [`Connection`]. Every
//! problem is one line with the file, line and column. A bad connection never
//! hides the good ones.
//!
//! ```toml
//! plugin_dir = "plugins"          # relative to this file
//! secrets_file = "secrets.toml"   # mode 0600
//!
//! [runtime]
//! memory_limit_mib = 128
//! cpu_budget_ms = 10000
//!
//! [connections.salesforce-leads]
//! plugin = "salesforce-leads-contacts"
//! allow_insecure_loopback = false
//!
//! [connections.salesforce-leads.settings]
//! domain = "acme.my.salesforce.com"
//! record_type = "Lead"
//!
//! [connections.salesforce-leads.secrets]
//! client_id = { env = "SF_CLIENT_ID" }
//! client_secret = { env = "SF_CLIENT_SECRET" }
//! refresh_token = { secrets_file = "sf_refresh_token" }
//!
//! [connections.salesforce-leads.preferences]
//! allow_delete = true
//! remove_action = "delete"
//! remove_action_disabled = "disable"   # per cause: disabled, deleted, left_scope
//! ```
//!
//! A connection's credentials go only to origins the operator chose: those
//! filled wholly from settings written here, and those listed under
//! `credential_origins`. A host the plugin chose itself is reachable only
//! when listed under `approved_egress`, and never with credentials (see
//! [`crate::broker::egress`]).

mod preferences;
pub mod rules;
pub mod secrets;
pub mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;

use crate::broker::egress::{Choices, EgressPolicy, Origin};
use crate::broker::{
    Broker, BrokerError, BrokerSpec, ClientAuth, CredentialPool, HttpLimits, SecretSink,
    TokenEndpoint,
};
use crate::directory::AttributeSchema;
use crate::runtime::contract::{AttributeSpec, AttributeType, AuthScheme, Descriptor, SettingKind};
use crate::runtime::{Connector, Plugin, PluginSet, RuntimeOptions, check_value};
use preferences::RawPreferences;
pub use preferences::{Cause, Preferences, RemoveAction, RemoveActions};
use rules::{RawRule, RawSync};
pub use rules::{Rule, SyncSettings};
use secrets::{SecretRef, SecretStore, line_column};

/// The state file's name when the configuration names none.
pub const DEFAULT_STATE: &str = "provisioner.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in the configuration, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line and column.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    memory_limit_mib: Option<u64>,
    cpu_budget_ms: Option<u64>,
    call_timeout_secs: Option<u64>,
    http_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    max_response_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    plugin: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    allow_insecure_loopback: bool,
    /// Hosts the plugin chose that it may reach, never with credentials.
    #[serde(default)]
    approved_egress: Vec<Spanned<String>>,
    /// Origins beyond those filled from written settings that may receive
    /// the connection's credentials.
    #[serde(default)]
    credential_origins: Vec<Spanned<String>>,
    #[serde(default)]
    settings: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    secrets: BTreeMap<Spanned<String>, Spanned<SecretRef>>,
    #[serde(default)]
    preferences: RawPreferences,
    oauth2: Option<Spanned<RawOAuth2>>,
}

/// `[connections.NAME.oauth2]`: for a plugin that takes a static bearer
/// token, the host obtains that token from an identity provider by the
/// client-credentials grant instead, and renews it. The plugin cannot tell.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    token_url: Spanned<String>,
    scope: Option<String>,
    #[serde(default)]
    client_auth: RawClientAuth,
}

/// How the client id and secret reach the token endpoint, by the names
/// RFC 7591 gives them.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// The secrets a connection with `[connections.NAME.oauth2]` holds for the
/// host's token exchange, not for the plugin.
const CLIENT_SECRETS: [&str; 2] = ["client_id", "client_secret"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    /// Where `provisioner run` serves status, the API and metrics.
    listen: Option<Spanned<String>>,
    /// The bearer token the mutating endpoints require (and, beyond
    /// loopback, the read API too).
    token: Option<Spanned<SecretRef>>,
    /// Host names the server answers to besides its listen address, e.g.
    /// behind a reverse proxy. A request naming another host is refused,
    /// so that a DNS-rebinding page cannot read the API from a browser.
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
}

/// `[scim]`: the SCIM 2.0 service provider that `provisioner run` serves.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScim {
    /// Where to serve it; none serves nothing.
    listen: Option<Spanned<String>>,
    /// The URL clients reach `/scim/v2` at, through the proxy in front:
    /// what `location` and `$ref` say.
    base_url: Option<Spanned<String>>,
    /// Bearer tokens by name; the name is recorded with every change a
    /// token makes. Several, so that one can be rotated.
    #[serde(default)]
    tokens: BTreeMap<Spanned<String>, Spanned<SecretRef>>,
    /// The certificate and key to serve HTTPS with; without them the
    /// server is plain HTTP, on loopback only.
    tls: Option<Spanned<RawTls>>,
    /// How many people a filter that no index answers may read before it
    /// is refused with `tooMany`.
    max_scan: Option<Spanned<i64>>,
}

/// `[scim.tls]`: PEM files, relative to the configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    /// Attributes beyond the standard ones.
    #[serde(default)]
    attributes: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    plugin_dir: Option<String>,
    secrets_file: Option<String>,
    state: Option<Spanned<String>>,
    #[serde(default)]
    directory: RawDirectory,
    #[serde(default)]
    runtime: RawRuntime,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    scim: RawScim,
    #[serde(default)]
    connections: BTreeMap<Spanned<String>, Spanned<RawConnection>>,
    #[serde(default)]
    rules: BTreeMap<Spanned<String>, RawRule>,
}

/// A parsed `provisioner.toml`.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    source: String,
    plugin_dir: Option<PathBuf>,
    secrets_file: Option<PathBuf>,
    state: crate::state::Location,
    directory: RawDirectory,
    runtime: RawRuntime,
    sync: RawSync,
    status: RawStatus,
    scim: RawScim,
    connections: BTreeMap<Spanned<String>, Spanned<RawConnection>>,
    rules: BTreeMap<Spanned<String>, RawRule>,
}

/// Where status is served when the configuration says nothing.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:8480";

/// The rules of a configuration: the good ones, and the names of those
/// that have errors. A rule with errors is neither run nor taken for
/// deleted, so a typo never deprovisions anyone.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    pub rules: rules::Rules,
    pub broken: std::collections::BTreeSet<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl RuleSet {
    /// Whether the configuration still has a rule of this name, good or
    /// broken.
    pub fn knows(&self, name: &str) -> bool {
        self.rules.contains_key(name) || self.broken.contains(name)
    }
}

/// A connection checked against its plugin, with its secrets read: ready to
/// be bound to a broker.
pub struct Connection {
    pub name: String,
    pub description: Option<String>,
    pub plugin: Arc<Plugin>,
    /// Non-secret settings with defaults applied, in text form.
    pub settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, SecretString>,
    sources: BTreeMap<String, secrets::Source>,
    pub preferences: Preferences,
    /// What the operator decided about egress and credentials.
    pub choices: Choices,
    /// Problems that do not stop the connection from working.
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("plugin", &self.plugin.name())
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Where this connection's secrets come from, as one key: connections
    /// with the same key hold the same credentials.
    fn secret_key(&self) -> String {
        self.sources
            .iter()
            .map(|(name, source)| format!("{name}={source:?}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Binds the connection to its plugin through a new broker.
    pub fn connect(
        &self,
        limits: HttpLimits,
        sink: Arc<dyn SecretSink>,
        pool: Option<&CredentialPool>,
    ) -> Result<Connector, BrokerError> {
        self.connector(BrokerSpec {
            connection: &self.name,
            descriptor: self.plugin.descriptor(),
            settings: self.settings.clone(),
            secrets: self.secrets.clone(),
            choices: self.choices.clone(),
            limits,
            sink,
            shared: pool.map(|pool| (pool, self.secret_key())),
        })
    }

    fn connector(&self, spec: BrokerSpec<'_>) -> Result<Connector, BrokerError> {
        Ok(Connector::new(
            self.plugin.clone(),
            Arc::new(Broker::new(spec)?),
        ))
    }
}

impl Connection {
    /// Whether the connection holds any secret: a connector that sends
    /// none has no credentials to get wrong.
    pub fn holds_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The connection with a made-up value in place of each secret, for
    /// `plugins conform`, which checks that the store refuses them.
    /// Nothing it learns is written back, and it shares no token state.
    pub fn connect_with_wrong_credentials(
        &self,
        limits: HttpLimits,
    ) -> Result<Connector, BrokerError> {
        self.connect_made_up(limits, self.settings.clone(), self.choices.clone())
    }

    /// The connection with made-up credentials, pointed at `host` (a
    /// loopback stand-in of `plugins conform`) in place of every setting
    /// that is the whole host of an egress template; `None` if no template
    /// takes its host from a setting, so that the store cannot be stood in
    /// for. No real credential can reach the stand-in.
    pub fn connect_to_stand_in(
        &self,
        limits: HttpLimits,
        host: &str,
    ) -> Result<Option<Connector>, BrokerError> {
        let Some(moves) = stand_in_settings(&self.plugin.descriptor().egress, host) else {
            return Ok(None);
        };
        let mut settings = self.settings.clone();
        let mut choices = self.choices.clone();
        for (name, value) in moves {
            choices.written.insert(name.clone());
            settings.insert(name, value);
        }
        choices.insecure_loopback = true;
        self.connect_made_up(limits, settings, choices).map(Some)
    }

    fn connect_made_up(
        &self,
        limits: HttpLimits,
        settings: BTreeMap<String, String>,
        choices: Choices,
    ) -> Result<Connector, BrokerError> {
        let made_up = self
            .secrets
            .keys()
            .map(|name| {
                let value = format!("provisioner-conform-wrong-{:016x}", rand::random::<u64>());
                (name.clone(), SecretString::from(value))
            })
            .collect();
        self.connector(BrokerSpec {
            connection: &self.name,
            descriptor: self.plugin.descriptor(),
            settings,
            secrets: made_up,
            choices,
            limits,
            sink: Arc::new(crate::broker::NoSink),
            shared: None,
        })
    }
}

/// The settings to write so that egress templates whose whole host is a
/// setting reach `host` (`127.0.0.1:PORT`): `https://{domain}` takes it
/// whole, `https://{domain}:{port}` in two. `None` if no template can be
/// moved; a template whose port the plugin wrote cannot.
fn stand_in_settings(egress: &[String], host: &str) -> Option<Vec<(String, String)>> {
    use crate::broker::egress::{HostSource, Template};
    let (address, port) = host.rsplit_once(':')?;
    let mut moves = Vec::new();
    for raw in egress {
        let Ok(template) = Template::parse(raw) else {
            continue;
        };
        let HostSource::Setting(name) = template.host_source() else {
            continue;
        };
        let rest = raw
            .strip_prefix(&format!("https://{{{name}}}"))
            .unwrap_or_default();
        let rest = rest.split('/').next().unwrap_or_default();
        match rest.strip_prefix(':') {
            None if rest.is_empty() => moves.push((name.clone(), host.to_string())),
            Some(setting) if setting.starts_with('{') && setting.ends_with('}') => {
                moves.push((name.clone(), address.to_string()));
                moves.push((setting[1..setting.len() - 1].to_string(), port.to_string()));
            }
            _ => {}
        }
    }
    (!moves.is_empty()).then_some(moves)
}

fn is_connection_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Renders a TOML value as the text a plugin reads, if it has the kind the
/// setting declares.
fn setting_text(kind: &SettingKind, value: &toml::Value) -> Result<String, String> {
    let text = match (kind, value) {
        (SettingKind::Text | SettingKind::Choice(_), toml::Value::String(s)) => s.clone(),
        (SettingKind::Boolean, toml::Value::Boolean(b)) => b.to_string(),
        (SettingKind::Integer, toml::Value::Integer(i)) => i.to_string(),
        (SettingKind::Boolean, other) => {
            return Err(format!("expected true or false, got {}", other.type_str()));
        }
        (SettingKind::Integer, other) => {
            return Err(format!("expected a whole number, got {}", other.type_str()));
        }
        (_, other) => return Err(format!("expected a string, got {}", other.type_str())),
    };
    check_value(kind, &text)?;
    Ok(text)
}

/// The shortest operator token accepted: it guards people's data and the
/// removal guard's approvals.
pub const MIN_STATUS_TOKEN: usize = 16;

/// Why a status listener beyond loopback needs a token.
/// A warning when the plugin authenticates with a static bearer token from
/// an optional secret that the connection leaves unset: the broker then
/// sends no credential at all, as the contract says, and an operator who
/// forgot the secret should hear of it from `check`, not from the store.
fn unset_bearer<K: std::borrow::Borrow<str> + Ord, V>(
    connection: &str,
    descriptor: &crate::runtime::contract::Descriptor,
    secrets: &BTreeMap<K, V>,
    plugin: &str,
) -> Option<String> {
    let AuthScheme::Bearer { secret } = &descriptor.auth else {
        return None;
    };
    // A required secret that is missing is an error of its own.
    if secrets.contains_key(secret.as_str())
        || descriptor.setting(secret).is_some_and(|s| s.required)
    {
        return None;
    }
    Some(format!(
        "connection {connection}: {plugin} authenticates with the bearer token in secret {secret}, which is not set, so requests go out without credentials; if the store needs them, reference it under [connections.{connection}.secrets]"
    ))
}

pub fn status_needs_token(listen: std::net::SocketAddr) -> String {
    format!(
        "[status] listen = \"{listen}\" is beyond loopback, where the status page and API would show people's data to anyone who can reach it; set [status] token, which the read API then requires too, or listen on 127.0.0.1"
    )
}

/// Suggests the closest of `candidates` to a misspelt `name`.
fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min()
        .map(|(_, c)| format!("; did you mean {c}?"))
        .unwrap_or_default()
}

/// "unknown setting "x" for plugin p 1.0 (it takes: a, b); did you mean a?"
fn unknown(
    what: &str,
    name: &str,
    plugin_label: &str,
    descriptor: &crate::runtime::contract::Descriptor,
    secret: bool,
) -> String {
    let takes: Vec<&str> = descriptor
        .settings
        .iter()
        .filter(|s| s.secret == secret)
        .map(|s| s.name.as_str())
        .collect();
    format!(
        "unknown {what} {name:?} for {plugin_label} (it takes: {}){}",
        takes.join(", "),
        did_you_mean(name, descriptor.settings.iter().map(|s| s.name.as_str()))
    )
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
            severity: Severity::Error,
            path: path.to_path_buf(),
            location: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(path, text)
    }

    /// Parses configuration text; `path` locates it and anchors relative
    /// paths.
    pub fn parse(path: &Path, source: String) -> Result<Config, Diagnostic> {
        let raw: RawConfig = toml::from_str(&source).map_err(|e| Diagnostic {
            severity: Severity::Error,
            path: path.to_path_buf(),
            location: e.span().map(|span| line_column(&source, span.start)),
            message: e.message().trim().to_string(),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let state = match &raw.state {
            None => crate::state::Location::File(base.join(DEFAULT_STATE)),
            Some(text) => crate::state::Location::parse(Path::new(text.get_ref()), base).map_err(
                |message| Diagnostic {
                    severity: Severity::Error,
                    path: path.to_path_buf(),
                    location: Some(line_column(&source, text.span().start)),
                    message: format!("state: {message}"),
                },
            )?,
        };
        let config = Config {
            path: path.to_path_buf(),
            plugin_dir: raw.plugin_dir.map(|d| base.join(d)),
            secrets_file: raw.secrets_file.map(|f| base.join(f)),
            state,
            directory: raw.directory,
            runtime: raw.runtime,
            sync: raw.sync,
            status: raw.status,
            scim: raw.scim,
            connections: raw.connections,
            rules: raw.rules,
            source,
        };
        for name in config.connections.keys().chain(config.rules.keys()) {
            if !is_connection_name(name.get_ref()) {
                return Err(config.diagnostic(
                    Some(name.span()),
                    format!(
                        "name {:?} may use only letters, digits, - and _",
                        name.get_ref()
                    ),
                ));
            }
        }
        Ok(config)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn plugin_dir(&self) -> Option<&Path> {
        self.plugin_dir.as_deref()
    }

    pub fn secrets_file(&self) -> Option<&Path> {
        self.secrets_file.as_deref()
    }

    /// Where the state lives: `state` in the configuration (a file, or a
    /// `postgres://` URL), or `provisioner.db` beside it.
    pub fn state(&self) -> &crate::state::Location {
        &self.state
    }

    /// The attributes people may carry: the standard ones and those
    /// declared under `[directory] attributes`.
    pub fn attribute_schema(&self) -> Result<AttributeSchema, Diagnostic> {
        for name in &self.directory.attributes {
            if !crate::directory::is_attribute_name(name.get_ref()) {
                return Err(self.diagnostic(
                    Some(name.span()),
                    format!(
                        "attribute name {:?} must be snake_case (a-z, 0-9, _), starting with a letter",
                        name.get_ref()
                    ),
                ));
            }
        }
        AttributeSchema::with_extra(
            self.directory
                .attributes
                .iter()
                .map(|n| n.get_ref().as_str()),
        )
        .map_err(|message| self.diagnostic(None, message))
    }

    pub fn connection_names(&self) -> impl Iterator<Item = &str> {
        self.connections.keys().map(|k| k.get_ref().as_str())
    }

    /// Opens the secret store this configuration references.
    pub fn secret_store(&self) -> Result<SecretStore, Diagnostic> {
        SecretStore::open(self.secrets_file.as_deref()).map_err(|e| Diagnostic {
            severity: Severity::Error,
            path: self.path.clone(),
            location: None,
            message: e.to_string(),
        })
    }

    /// The plugin a connection names, as written.
    pub fn plugin_of(&self, connection: &str) -> Option<String> {
        self.connections
            .get(connection)
            .map(|c| c.get_ref().plugin.get_ref().clone())
    }

    /// Where `provisioner run` serves status.
    pub fn status_listen(&self) -> Result<std::net::SocketAddr, Diagnostic> {
        match &self.status.listen {
            None => Ok(DEFAULT_STATUS_LISTEN.parse().expect("a literal address")),
            Some(listen) => listen.get_ref().parse().map_err(|_| {
                self.diagnostic(
                    Some(listen.span()),
                    format!(
                        "[status] listen = {:?} is not an address like 127.0.0.1:8480",
                        listen.get_ref()
                    ),
                )
            }),
        }
    }

    /// The names the status server answers to besides its address.
    pub fn status_hosts(&self) -> Result<Vec<String>, Diagnostic> {
        self.status
            .hosts
            .iter()
            .map(|name| {
                let text = name.get_ref().trim().to_ascii_lowercase();
                let valid = !text.is_empty()
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if valid {
                    Ok(text)
                } else {
                    Err(self.diagnostic(
                        Some(name.span()),
                        format!(
                            "[status] hosts: {:?} is not a host name like status.example.com (no scheme, port or path)",
                            name.get_ref()
                        ),
                    ))
                }
            })
            .collect()
    }

    /// Problems with `[status]` that would stop `provisioner run`: a
    /// listener beyond loopback without the token its read API requires.
    pub fn status_diagnostics(&self, secrets: &SecretStore) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        if let Err(diagnostic) = self.status_hosts() {
            problems.push(diagnostic);
        }
        let listen = match self.status_listen() {
            Ok(listen) => listen,
            Err(diagnostic) => {
                problems.push(diagnostic);
                return problems;
            }
        };
        match self.status_token(secrets) {
            Err(diagnostic) => problems.push(diagnostic),
            Ok(None) if !listen.ip().is_loopback() => problems.push(self.diagnostic(
                self.status.listen.as_ref().map(|l| l.span()),
                status_needs_token(listen),
            )),
            Ok(_) => {}
        }
        problems
    }

    /// The certificate and key SCIM is served with (`[scim.tls]`), paths
    /// anchored at the configuration file. The server loads them when it
    /// starts; [`Config::scim_diagnostics`] loads them for `check`.
    pub fn scim_tls(&self) -> Option<tls::TlsFiles> {
        let raw = self.scim.tls.as_ref()?;
        let base = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(tls::TlsFiles {
            certificate: base.join(&raw.get_ref().certificate),
            key: base.join(&raw.get_ref().key),
        })
    }

    /// Why the `[scim.tls]` pair cannot be served, if it cannot.
    fn scim_tls_problem(&self) -> Option<Diagnostic> {
        let raw = self.scim.tls.as_ref()?;
        let error = self.scim_tls()?.load(&tls::provider()).err()?;
        Some(self.diagnostic(Some(raw.span()), format!("[scim.tls]: {error}")))
    }

    /// `[scim] max_scan`: at least 1, at most what a request should read.
    pub fn scim_max_scan(&self) -> Result<Option<usize>, Diagnostic> {
        let Some(max) = &self.scim.max_scan else {
            return Ok(None);
        };
        match usize::try_from(*max.get_ref()) {
            Ok(n) if (1..=100_000_000).contains(&n) => Ok(Some(n)),
            _ => Err(self.diagnostic(
                Some(max.span()),
                format!(
                    "[scim] max_scan = {} must be a count of people from 1 to 100000000",
                    max.get_ref()
                ),
            )),
        }
    }

    /// Where `provisioner run` serves SCIM, if it does. Without
    /// `[scim.tls]` it is plain HTTP, so on loopback only: the bearer
    /// tokens and people's data would cross the network in the clear.
    pub fn scim_listen(&self) -> Result<Option<std::net::SocketAddr>, Diagnostic> {
        let Some(listen) = &self.scim.listen else {
            return Ok(None);
        };
        let address: std::net::SocketAddr = listen.get_ref().parse().map_err(|_| {
            self.diagnostic(
                Some(listen.span()),
                format!(
                    "[scim] listen = {:?} is not an address like 127.0.0.1:8481",
                    listen.get_ref()
                ),
            )
        })?;
        if !address.ip().is_loopback() && self.scim.tls.is_none() {
            return Err(self.diagnostic(
                Some(listen.span()),
                format!(
                    "[scim] listen = \"{address}\" is beyond loopback, where bearer tokens and people's data would cross the network in plain HTTP; give [scim.tls] a certificate and key, or listen on 127.0.0.1 behind a TLS-terminating proxy"
                ),
            ));
        }
        Ok(Some(address))
    }

    /// The SCIM bearer tokens by name: at least one when SCIM is served,
    /// each long enough not to be guessed.
    pub fn scim_tokens(
        &self,
        secrets: &SecretStore,
    ) -> Result<Vec<(String, SecretString)>, Diagnostic> {
        let mut tokens = Vec::new();
        for (name, reference) in &self.scim.tokens {
            if !is_connection_name(name.get_ref()) {
                return Err(self.diagnostic(
                    Some(name.span()),
                    format!(
                        "[scim] tokens: {:?} must be a name of letters, digits, - and _ (it is recorded with each change the token makes)",
                        name.get_ref()
                    ),
                ));
            }
            let token = self.bearer_token(
                secrets,
                ("[scim]", name.get_ref()),
                &format!("[scim] tokens.{}", name.get_ref()),
                reference,
            )?;
            if let Some((other, _)) = tokens.iter().find(|(_, t): &&(String, SecretString)| {
                use secrecy::ExposeSecret;
                t.expose_secret() == token.expose_secret()
            }) {
                return Err(self.diagnostic(
                    Some(reference.span()),
                    format!(
                        "[scim] tokens.{} is the same token as tokens.{other}; give each name its own, so that each change says which client made it",
                        name.get_ref()
                    ),
                ));
            }
            tokens.push((name.get_ref().clone(), token));
        }
        if tokens.is_empty() && self.scim.listen.is_some() {
            return Err(self.diagnostic(
                self.scim.listen.as_ref().map(|l| l.span()),
                "[scim] listen is set but [scim] tokens has none: every SCIM request needs a bearer token, e.g. tokens = { okta = { env = \"SCIM_TOKEN\" } }".into(),
            ));
        }
        Ok(tokens)
    }

    /// The URL of `/scim/v2` as clients reach it (`[scim] base_url`), if
    /// set: an `https://` (or `http://`) URL without query or fragment.
    pub fn scim_base_url(&self) -> Result<Option<String>, Diagnostic> {
        let Some(base) = &self.scim.base_url else {
            if let Ok(Some(listen)) = self.scim_listen()
                && listen.ip().is_unspecified()
            {
                return Err(self.diagnostic(
                    self.scim.listen.as_ref().map(|l| l.span()),
                    format!(
                        "[scim] listen = \"{listen}\" names no address clients can reach, and every resource's location is a URL; set [scim] base_url to the URL of /scim/v2 as clients reach it, e.g. https://idp-bridge.example.com:{}/scim/v2",
                        listen.port()
                    ),
                ));
            }
            return Ok(None);
        };
        let text = base.get_ref().trim_end_matches('/');
        match url::Url::parse(text) {
            Ok(url)
                if matches!(url.scheme(), "https" | "http")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                Ok(Some(text.to_string()))
            }
            _ => Err(self.diagnostic(
                Some(base.span()),
                format!(
                    "[scim] base_url = {:?} is not a URL like https://idp-bridge.example.com/scim/v2 (no query or fragment)",
                    base.get_ref()
                ),
            )),
        }
    }

    /// Problems with `[scim]` that would stop `provisioner run`.
    pub fn scim_diagnostics(&self, secrets: &SecretStore) -> Vec<Diagnostic> {
        [
            self.scim_listen().err(),
            self.scim_tls_problem(),
            self.scim_max_scan().err(),
            self.scim_base_url().err(),
            self.scim_tokens(secrets).err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The operator token for the mutating status endpoints, if configured.
    pub fn status_token(&self, secrets: &SecretStore) -> Result<Option<SecretString>, Diagnostic> {
        let Some(reference) = &self.status.token else {
            return Ok(None);
        };
        self.bearer_token(secrets, ("[status]", "token"), "[status] token", reference)
            .map(Some)
    }

    /// A bearer token a server of ours requires (`[status] token`, `[scim]
    /// tokens.NAME`): resolved, and long enough not to be guessed.
    /// The secret store files it under (table, name); `place` is where the
    /// configuration says it, for the message.
    fn bearer_token(
        &self,
        secrets: &SecretStore,
        (table, name): (&str, &str),
        place: &str,
        reference: &Spanned<SecretRef>,
    ) -> Result<SecretString, Diagnostic> {
        reference
            .get_ref()
            .source()
            .and_then(|source| {
                secrets
                    .resolve(table, name, &source)
                    .map_err(|e| e.to_string())
            })
            .and_then(|token| {
                use secrecy::ExposeSecret;
                if token.expose_secret().chars().count() < MIN_STATUS_TOKEN {
                    Err(format!(
                        "the token is shorter than {MIN_STATUS_TOKEN} characters; use a long random one, e.g. from `openssl rand -hex 24`"
                    ))
                } else {
                    Ok(token)
                }
            })
            .map_err(|reason| {
                self.diagnostic(Some(reference.span()), format!("{place}: {reason}"))
            })
    }

    /// Batching, pacing, retries and the removal guard.
    pub fn sync_settings(&self) -> SyncSettings {
        SyncSettings::from_raw(&self.sync)
    }

    /// Compiles the rules against the attribute schema.
    pub fn rules(&self, schema: &AttributeSchema) -> RuleSet {
        let settings = self.sync_settings();
        let connections: Vec<&str> = self.connection_names().collect();
        let names: Vec<&str> = self.rules.keys().map(|k| k.get_ref().as_str()).collect();
        let mut set = RuleSet::default();
        for (name, raw) in &self.rules {
            match raw.compile(name.get_ref(), &settings, schema, &connections, &names) {
                Ok(rule) => {
                    set.rules.insert(name.get_ref().clone(), rule);
                }
                Err(problems) => {
                    set.broken.insert(name.get_ref().clone());
                    set.diagnostics
                        .extend(problems.into_iter().map(|p| Diagnostic {
                            severity: Severity::Error,
                            path: self.path.clone(),
                            location: p.offset.map(|o| line_column(&self.source, o)),
                            message: p.message,
                        }));
                }
            }
        }
        set
    }

    /// Checks each good rule against its connection's plugin: what it would
    /// map, and whether that reaches the attribute records are matched on.
    /// A rule whose plugin is not loaded is left to the connection's own
    /// diagnostic.
    pub fn rule_diagnostics(
        &self,
        rules: &RuleSet,
        plugins: &PluginSet,
        schema: &AttributeSchema,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for key in self.rules.keys() {
            let Some(rule) = rules.rules.get(key.get_ref()) else {
                continue;
            };
            let plugin = self
                .plugin_of(&rule.connection)
                .and_then(|name| plugins.get(&name));
            let Some(plugin) = plugin else {
                continue;
            };
            if let Err(message) = rule.mappings_for(plugin.descriptor(), schema) {
                let message = if message.starts_with("rule ") {
                    message
                } else {
                    format!("rule {}: {message}", rule.name)
                };
                out.push(self.diagnostic(Some(key.span()), message));
            }
            let descriptor = plugin.descriptor();
            if !rule.push_groups.is_empty()
                && !descriptor.has(crate::runtime::contract::Capability::Groups)
            {
                out.push(self.diagnostic(
                    Some(key.span()),
                    format!(
                        "rule {}: push_groups needs a connector with the groups capability, and plugin {} {} has none (it can: {})",
                        rule.name,
                        descriptor.name,
                        descriptor.version,
                        descriptor.capability_list()
                    ),
                ));
            }
        }
        out
    }

    /// What the store's schema (contract 0.2's `discover-schema`) says
    /// against the mappings that write through `connection`: a target the
    /// store does not have, or has with another type than the connector
    /// declares. The connector's defaults are checked when no rule uses the
    /// connection. Warnings, not errors: a schema may leave out what a
    /// store accepts.
    pub fn schema_warnings(
        &self,
        connection: &str,
        descriptor: &Descriptor,
        store: &[AttributeSpec],
    ) -> Vec<String> {
        let Ok(schema) = self.attribute_schema() else {
            return Vec::new();
        };
        let rules = self.rules(&schema);
        let mut writers: Vec<(String, Vec<crate::mapping::CompiledMapping>)> = rules
            .rules
            .values()
            .filter(|rule| rule.connection == connection)
            .filter_map(|rule| {
                let mappings = rule.mappings_for(descriptor, &schema).ok()?;
                Some((format!("rule {}", rule.name), mappings))
            })
            .collect();
        if writers.is_empty()
            && let Ok(defaults) = crate::mapping::defaults(descriptor)
        {
            writers.push((
                format!("plugin {}'s default mappings", descriptor.name),
                defaults,
            ));
        }
        let mut warnings = Vec::new();
        for (writer, mappings) in writers {
            for mapping in mappings {
                match store
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&mapping.target))
                {
                    None => warnings.push(format!(
                        "{writer} maps {}, which the store's schema does not have",
                        mapping.target
                    )),
                    Some(spec)
                        if mapping.kind != AttributeType::Text && spec.kind != mapping.kind =>
                    {
                        warnings.push(format!(
                            "{writer} writes {} as {}, but the store's schema says {}",
                            mapping.target, mapping.kind, spec.kind
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        warnings
    }

    /// The runtime limits, with `cache_dir` for compiled code.
    pub fn runtime_options(&self, cache_dir: Option<PathBuf>) -> RuntimeOptions {
        let defaults = RuntimeOptions::default();
        let r = &self.runtime;
        RuntimeOptions {
            memory_limit: r
                .memory_limit_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or(defaults.memory_limit),
            cpu_budget: r
                .cpu_budget_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.cpu_budget),
            call_timeout: r
                .call_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.call_timeout),
            cache_dir,
        }
    }

    pub fn http_limits(&self) -> HttpLimits {
        let defaults = HttpLimits::default();
        let r = &self.runtime;
        HttpLimits {
            connect_timeout: r
                .connect_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.connect_timeout),
            request_timeout: r
                .http_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.request_timeout),
            max_response_bytes: r
                .max_response_mib
                .map(|m| m << 20)
                .unwrap_or(defaults.max_response_bytes),
            max_redirects: defaults.max_redirects,
        }
    }

    fn diagnostic(&self, span: Option<Range<usize>>, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: self.path.clone(),
            location: span.map(|s| line_column(&self.source, s.start)),
            message,
        }
    }

    /// Checks every connection; returns all errors and warnings.
    pub fn check(&self, plugins: &PluginSet, secrets: &SecretStore) -> Vec<Diagnostic> {
        let mut all = Vec::new();
        for name in self.connection_names() {
            match self.resolve(name, plugins, secrets) {
                Ok(connection) => all.extend(connection.warnings),
                Err(errors) => all.extend(errors),
            }
        }
        all
    }

    /// Checks one connection against its plugin and reads its secrets.
    pub fn resolve(
        &self,
        name: &str,
        plugins: &PluginSet,
        secrets: &SecretStore,
    ) -> Result<Connection, Vec<Diagnostic>> {
        let Some((key, raw)) = self.connections.get_key_value(name) else {
            let known: Vec<&str> = self.connection_names().collect();
            return Err(vec![self.diagnostic(
                None,
                format!(
                    "no connection named {name:?} (configured: {}){}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    did_you_mean(name, known.iter().copied())
                ),
            )]);
        };
        let raw_span = key.span();
        let raw = raw.get_ref();
        let mut warnings = Vec::new();
        let at = |span: Range<usize>, message: String| self.diagnostic(Some(span), message);

        let plugin_name = raw.plugin.get_ref();
        if let Some(clash) = plugins.clash(plugin_name) {
            if plugins.get(plugin_name).is_none() {
                return Err(vec![at(
                    raw.plugin.span(),
                    format!("connection {name} cannot use plugin {plugin_name}: {clash}"),
                )]);
            }
            // A running host keeps the version it had.
            warnings.push(Diagnostic {
                severity: Severity::Warning,
                ..at(
                    raw.plugin.span(),
                    format!(
                        "connection {name} keeps the version of plugin {plugin_name} loaded before the clash: {clash}"
                    ),
                )
            });
        }
        let Some(plugin) = plugins.get(plugin_name) else {
            let loaded: Vec<&str> = plugins.plugins.keys().map(String::as_str).collect();
            let mut message = format!(
                "connection {name} uses plugin {plugin_name:?}, which is not loaded (loaded: {}){}",
                if loaded.is_empty() {
                    "none".to_string()
                } else {
                    loaded.join(", ")
                },
                did_you_mean(plugin_name, loaded.iter().copied())
            );
            if let Some(refusal) = plugins.refusal_for(plugin_name) {
                message.push_str(&format!(
                    "; {} was refused: {}",
                    refusal.path.display(),
                    refusal.reason
                ));
            }
            return Err(vec![at(raw.plugin.span(), message)]);
        };
        let mut check = Check {
            config: self,
            name,
            raw,
            span: raw_span.clone(),
            descriptor: plugin.descriptor(),
            plugin_label: format!(
                "plugin {} {}",
                plugin.descriptor().name,
                plugin.descriptor().version
            ),
            table: format!("[connections.{name}.secrets]"),
            errors: Vec::new(),
            warnings,
        };
        let settings = check.settings();
        let (secret_values, secret_sources) = check.secrets(secrets);
        check.authentication();
        let choices = check.egress(&settings);
        let preferences = check.preferences();
        let Check {
            errors, warnings, ..
        } = check;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Connection {
            name: name.to_string(),
            description: raw.description.clone(),
            plugin: plugin.clone(),
            settings,
            secrets: secret_values,
            sources: secret_sources,
            preferences,
            choices,
            warnings,
        })
    }
}

/// One connection being checked against its plugin: the diagnostics found
/// so far, and what every part of the check names in its messages.
struct Check<'a> {
    config: &'a Config,
    name: &'a str,
    raw: &'a RawConnection,
    /// The connection's table, for problems of the whole connection.
    span: Range<usize>,
    descriptor: &'a Descriptor,
    plugin_label: String,
    /// Where the connection's secrets are referenced.
    table: String,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Check<'_> {
    fn at(&self, span: Range<usize>, message: String) -> Diagnostic {
        self.config.diagnostic(Some(span), message)
    }

    /// Settings: declared, non-secret, of the right kind; defaults filled
    /// in, required ones present.
    fn settings(&mut self) -> BTreeMap<String, String> {
        let (name, label, table) = (self.name, self.plugin_label.clone(), self.table.clone());
        // Settings: declared, non-secret, of the right kind.
        let mut settings = BTreeMap::new();
        for (key, value) in &self.raw.settings {
            let setting_name = key.get_ref();
            let Some(spec) = self.descriptor.setting(setting_name) else {
                self.errors.push(self.at(
                    key.span(),
                    unknown(
                        "setting",
                        setting_name,
                        &self.plugin_label,
                        self.descriptor,
                        false,
                    ),
                ));
                continue;
            };
            if spec.secret {
                self.errors.push(self.at(
                key.span(),
                format!(
                    "{setting_name} is a secret: reference it under {table} as {{ env = \"VARIABLE\" }} or {{ secrets_file = \"key\" }}, never in plain settings"
                ),
            ));
                continue;
            }
            match setting_text(&spec.kind, value.get_ref()) {
                Ok(text) => {
                    settings.insert(setting_name.clone(), text);
                }
                Err(reason) => self
                    .errors
                    .push(self.at(value.span(), format!("setting {setting_name}: {reason}"))),
            }
        }
        for spec in self.descriptor.settings.iter().filter(|s| !s.secret) {
            if settings.contains_key(&spec.name)
                || self.raw.settings.contains_key(spec.name.as_str())
            {
                continue;
            }
            match &spec.default_value {
            Some(default) => {
                settings.insert(spec.name.clone(), default.clone());
            }
            None if spec.required => self.errors.push(self.at(
                self.span.clone(),
                format!(
                    "connection {name} is missing required setting {} ({}) for {label}; add it under [connections.{name}.settings]",
                    spec.name, spec.description
                ),
            )),
            None => {}
        }
        }

        settings
    }

    /// Secrets: declared secret, resolvable; the values, and where each
    /// came from.
    fn secrets(
        &mut self,
        secrets: &SecretStore,
    ) -> (
        BTreeMap<String, SecretString>,
        BTreeMap<String, secrets::Source>,
    ) {
        let (name, label, table) = (self.name, self.plugin_label.clone(), self.table.clone());
        // Secrets: declared secret, resolvable.
        let mut secret_values = BTreeMap::new();
        let mut secret_sources = BTreeMap::new();
        for (key, reference) in &self.raw.secrets {
            let secret_name = key.get_ref();
            match self.descriptor.setting(secret_name) {
                None if self.client_credentials()
                    && CLIENT_SECRETS.contains(&secret_name.as_str()) => {}
                Some(spec) if spec.secret => {}
                Some(_) => {
                    self.errors.push(self.at(
                    key.span(),
                    format!(
                        "{secret_name} is not a secret for {label}; put it under [connections.{name}.settings]"
                    ),
                ));
                    continue;
                }
                None => {
                    self.errors.push(self.at(
                        key.span(),
                        unknown(
                            "secret",
                            secret_name,
                            &self.plugin_label,
                            self.descriptor,
                            true,
                        ),
                    ));
                    continue;
                }
            }
            let resolved = reference
                .get_ref()
                .source()
                .map_err(|reason| format!("secret {secret_name}: {reason}"))
                .and_then(|source| {
                    secrets
                        .resolve(name, secret_name, &source)
                        .map(|value| (value, source))
                        .map_err(|e| format!("secret {secret_name}: {e}"))
                });
            match resolved {
                Ok((value, source)) => {
                    secret_values.insert(secret_name.clone(), value);
                    secret_sources.insert(secret_name.clone(), source);
                }
                Err(message) => self.errors.push(self.at(reference.span(), message)),
            }
        }
        // With client credentials, the bearer token is the host's to obtain.
        let bearer = match &self.descriptor.auth {
            AuthScheme::Bearer { secret } if self.client_credentials() => Some(secret.as_str()),
            _ => None,
        };
        for spec in self
            .descriptor
            .settings
            .iter()
            .filter(|s| s.secret && s.required && Some(s.name.as_str()) != bearer)
        {
            if !self.raw.secrets.contains_key(spec.name.as_str())
                && !self.raw.settings.contains_key(spec.name.as_str())
            {
                self.errors.push(self.at(
                self.span.clone(),
                format!(
                    "connection {name} is missing required secret {} ({}) for {label}; reference it under {table}",
                    spec.name, spec.description
                ),
            ));
            }
        }
        (secret_values, secret_sources)
    }

    /// Whether the operator set up client credentials for a plugin that
    /// takes a static bearer token.
    fn client_credentials(&self) -> bool {
        self.raw.oauth2.is_some() && matches!(self.descriptor.auth, AuthScheme::Bearer { .. })
    }

    /// `[connections.NAME.oauth2]`: only for a plugin that takes a static
    /// bearer token, with the client's id and secret, and instead of the
    /// token.
    fn client_credentials_fit(&mut self, oauth2: &Spanned<RawOAuth2>) {
        let (name, label, table) = (self.name, self.plugin_label.clone(), self.table.clone());
        let problem = match &self.descriptor.auth {
            AuthScheme::Bearer { secret } => {
                let clash = CLIENT_SECRETS
                    .iter()
                    .find(|n| self.descriptor.setting(n).is_some());
                let missing: Vec<&str> = CLIENT_SECRETS
                    .into_iter()
                    .filter(|n| !self.raw.secrets.contains_key(*n))
                    .collect();
                if let Some(clash) = clash {
                    Some(format!(
                        "[connections.{name}.oauth2] needs the secrets client_id and client_secret for the host, but {label} declares a setting {clash} of its own"
                    ))
                } else if self.raw.secrets.contains_key(secret.as_str()) {
                    Some(format!(
                        "connection {name} sets both the bearer token {secret} under {table} and [connections.{name}.oauth2], which obtains that token; keep one"
                    ))
                } else if !missing.is_empty() {
                    Some(format!(
                        "[connections.{name}.oauth2] needs the client's {} under {table}",
                        missing.join(" and ")
                    ))
                } else {
                    None
                }
            }
            AuthScheme::OAuth2 { token_url } => Some(format!(
                "[connections.{name}.oauth2] replaces a static bearer token, but {label} obtains its tokens at its own token endpoint ({token_url}); put client_id and client_secret under {table} instead"
            )),
            AuthScheme::None => Some(format!(
                "[connections.{name}.oauth2] replaces a static bearer token, but {label} sends no credentials"
            )),
        };
        if let Some(message) = problem {
            self.errors.push(self.at(oauth2.span(), message));
        }
    }

    /// Whether the connection can authenticate at all, and a bearer token
    /// left unset.
    fn authentication(&mut self) {
        let (name, table) = (self.name, self.table.clone());
        if let Some(oauth2) = &self.raw.oauth2 {
            self.client_credentials_fit(oauth2);
            return;
        }
        if let AuthScheme::OAuth2 { .. } = self.descriptor.auth {
            let has = |n: &str| self.raw.secrets.contains_key(n);
            let can_authenticate = has("access_token")
                || has("refresh_token")
                || (has("client_id") && has("client_secret"));
            if !can_authenticate {
                self.errors.push(self.at(
                self.span.clone(),
                format!(
                    "connection {name} has no way to authenticate: OAuth 2.0 needs an access_token, a refresh_token, or client_id and client_secret under {table}"
                ),
            ));
            }
        }

        if let Some(message) =
            unset_bearer(name, self.descriptor, &self.raw.secrets, &self.plugin_label)
        {
            self.warnings.push(Diagnostic {
                severity: Severity::Warning,
                ..self.at(self.span.clone(), message)
            });
        }
    }

    /// Egress: who chose each origin, and what the operator approved.
    fn egress(&mut self, settings: &BTreeMap<String, String>) -> Choices {
        let (name, label) = (self.name, self.plugin_label.clone());
        // Egress: who chose each origin, and what the operator approved.
        let mut choices = Choices {
            written: self
                .raw
                .settings
                .keys()
                .map(|k| k.get_ref().clone())
                .filter(|k| settings.contains_key(k))
                .collect(),
            insecure_loopback: self.raw.allow_insecure_loopback,
            ..Choices::default()
        };
        if let Some(oauth2) = &self.raw.oauth2 {
            let oauth2 = oauth2.get_ref();
            let client_auth = match oauth2.client_auth {
                RawClientAuth::ClientSecretBasic => ClientAuth::Basic,
                RawClientAuth::ClientSecretPost => ClientAuth::Post,
            };
            match TokenEndpoint::parse(
                oauth2.token_url.get_ref(),
                oauth2.scope.clone(),
                client_auth,
                self.raw.allow_insecure_loopback,
            ) {
                Ok(endpoint) => choices.token_endpoint = Some(endpoint),
                Err(reason) => self.errors.push(self.at(
                    oauth2.token_url.span(),
                    format!("[connections.{name}.oauth2] token_url: {reason}"),
                )),
            }
        }
        for (list, key, into) in [
            (
                &self.raw.approved_egress,
                "approved_egress",
                &mut choices.approved,
            ),
            (
                &self.raw.credential_origins,
                "credential_origins",
                &mut choices.trusted,
            ),
        ] {
            for entry in list {
                match Origin::parse_operator(entry.get_ref()) {
                    Ok(origin) => into.push(origin),
                    Err(reason) => self
                        .errors
                        .push(self.at(entry.span(), format!("{key}: {reason}"))),
                }
            }
        }
        match EgressPolicy::new(&self.descriptor.egress, settings, &choices) {
            Ok(policy) => {
                for (template, origin) in policy.unapproved() {
                    self.errors.push(self.at(
                    self.span.clone(),
                    format!(
                        "connection {name}: {label} wants to reach {origin} (egress template {template:?}), a host it chose itself, not one from your settings; if you trust it, approve it under [connections.{name}] with approved_egress = [\"{origin}\"] (it never receives credentials)"
                    ),
                ));
                }
                for origin in policy.unused_choices() {
                    self.warnings.push(Diagnostic {
                    severity: Severity::Warning,
                    ..self.at(
                        self.span.clone(),
                        format!(
                            "connection {name}: {origin} is approved or trusted, but {label} declares no egress template that fills to it or vouches for it"
                        ),
                    )
                });
                }
                if let AuthScheme::OAuth2 { token_url } = &self.descriptor.auth
                    && self.errors.is_empty()
                    && let Err(reason) = policy.token_url(token_url, settings)
                {
                    self.errors
                        .push(self.at(self.span.clone(), format!("token URL: {reason}")));
                }
            }
            Err(error) => self
                .errors
                .push(self.at(self.span.clone(), error.to_string())),
        }

        choices
    }

    /// The preferences, checked against the plugin's capabilities.
    fn preferences(&mut self) -> Preferences {
        let name = self.name;
        let (preferences, findings) = self.raw.preferences.resolve(self.descriptor);
        for finding in findings {
            let mut diagnostic = self.config.diagnostic(
                finding.span.or(Some(self.span.clone())),
                format!("connection {name}: {}", finding.message),
            );
            if finding.warning {
                diagnostic.severity = Severity::Warning;
                self.warnings.push(diagnostic);
            } else {
                self.errors.push(diagnostic);
            }
        }

        preferences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostic> {
        Config::parse(Path::new("conf/provisioner.toml"), text.to_string())
    }

    #[test]
    fn bad_toml_is_located() {
        let error =
            parse("[connections.a]\nplugin = \"x\"\nsettings = { domain = }\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("conf/provisioner.toml:3:"), "{text}");
    }

    #[test]
    fn unknown_keys_are_refused_with_a_position() {
        let error = parse("plugin_dir = \"p\"\nplugins_dir = \"q\"\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("conf/provisioner.toml:2:1:"), "{text}");
        assert!(text.contains("plugins_dir"), "{text}");

        let error = parse("[connections.a]\nplugin = \"x\"\nallow_insecure_loopbak = true\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains(":3:"), "{error}");
        assert!(error.contains("allow_insecure_loopbak"), "{error}");
    }

    #[test]
    fn scim_is_served_on_loopback_and_says_the_url_clients_use() {
        let config = parse("[scim]\nlisten = \"127.0.0.1:8481\"\nbase_url = \"https://idp.example.com/scim/v2/\"\n").unwrap();
        assert_eq!(
            config.scim_listen().unwrap(),
            Some("127.0.0.1:8481".parse().unwrap())
        );
        assert_eq!(
            config.scim_base_url().unwrap().as_deref(),
            Some("https://idp.example.com/scim/v2")
        );
        let wide = parse("[scim]\nlisten = \"0.0.0.0:8481\"\n").unwrap();
        assert!(
            wide.scim_listen()
                .unwrap_err()
                .to_string()
                .contains("beyond loopback")
        );
        let wide_tls = parse(
            "[scim]\nlisten = \"0.0.0.0:8481\"\n[scim.tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            wide_tls.scim_listen().unwrap(),
            Some("0.0.0.0:8481".parse().unwrap()),
            "with TLS, any address"
        );
        assert!(
            wide_tls
                .scim_base_url()
                .unwrap_err()
                .message
                .contains("set [scim] base_url")
        );
        let missing = wide_tls.scim_tls_problem().unwrap().message;
        assert!(
            missing.contains("[scim.tls]") && missing.contains("conf/c.pem"),
            "{missing}"
        );
        let query = parse("[scim]\nbase_url = \"https://h/scim?x=1\"\n").unwrap();
        assert!(query.scim_base_url().is_err());
        assert!(parse("[scim]\nlisten = \"127.0.0.1:1\"\nport = 3\n").is_err());
    }

    #[test]
    fn relative_paths_are_anchored_at_the_config_file() {
        let config = parse("plugin_dir = \"plugins\"\nsecrets_file = \"s.toml\"\n").unwrap();
        assert_eq!(config.plugin_dir(), Some(Path::new("conf/plugins")));
        assert_eq!(config.secrets_file(), Some(Path::new("conf/s.toml")));
    }

    #[test]
    fn connection_names_are_checked() {
        let error = parse("[connections.\"a b\"]\nplugin = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("may use only letters"), "{error}");
    }

    #[test]
    fn runtime_limits_have_defaults_and_overrides() {
        let config = parse("[runtime]\nmemory_limit_mib = 16\ncpu_budget_ms = 250\n").unwrap();
        let options = config.runtime_options(None);
        assert_eq!(options.memory_limit, 16 << 20);
        assert_eq!(options.cpu_budget, Duration::from_millis(250));
        assert_eq!(options.call_timeout, RuntimeOptions::default().call_timeout);
    }

    #[test]
    fn setting_values_must_have_the_declared_kind() {
        let int = toml::Value::Integer(5);
        let text = toml::Value::String("5".into());
        assert_eq!(setting_text(&SettingKind::Integer, &int), Ok("5".into()));
        assert!(setting_text(&SettingKind::Integer, &text).is_err());
        assert!(
            setting_text(&SettingKind::Text, &int)
                .unwrap_err()
                .contains("expected a string")
        );
        let choice = SettingKind::Choice(vec!["Lead".into(), "Contact".into()]);
        assert!(setting_text(&choice, &toml::Value::String("Account".into())).is_err());
    }

    #[test]
    fn an_unset_optional_bearer_secret_is_a_warning() {
        use crate::runtime::contract::Descriptor;
        let descriptor = Descriptor::for_tests(
            &[],
            AuthScheme::Bearer {
                secret: "api_token".into(),
            },
        );
        let none: BTreeMap<String, ()> = BTreeMap::new();
        let warning = unset_bearer("crm", &descriptor, &none, "plugin store 1.2.3").unwrap();
        assert!(
            warning.contains("secret api_token, which is not set"),
            "{warning}"
        );
        assert!(warning.contains("[connections.crm.secrets]"), "{warning}");
        let set = BTreeMap::from([("api_token".to_string(), ())]);
        assert_eq!(unset_bearer("crm", &descriptor, &set, "p"), None);
        // A required one is missing, an error reported on its own.
        let mut required = descriptor.clone();
        required
            .settings
            .push(crate::runtime::contract::SettingSpec {
                name: "api_token".into(),
                description: "the token".into(),
                kind: crate::runtime::contract::SettingKind::Text,
                required: true,
                secret: true,
                default_value: None,
            });
        assert_eq!(unset_bearer("crm", &required, &none, "p"), None);
    }

    #[test]
    fn a_stand_in_takes_the_place_of_hosts_from_settings_only() {
        let moved = |egress: &[&str]| {
            let egress: Vec<String> = egress.iter().map(|e| e.to_string()).collect();
            stand_in_settings(&egress, "127.0.0.1:4711")
        };
        assert_eq!(
            moved(&["https://{domain}", "https://*.example.com"]),
            Some(vec![("domain".into(), "127.0.0.1:4711".into())])
        );
        assert_eq!(
            moved(&["https://{host}:{port}"]),
            Some(vec![
                ("host".into(), "127.0.0.1".into()),
                ("port".into(), "4711".into())
            ])
        );
        assert_eq!(moved(&["https://{host}:8443"]), None, "the plugin's port");
        assert_eq!(moved(&["https://{tenant}.example.com"]), None);
        assert_eq!(moved(&["https://api.example.com"]), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            did_you_mean("domian", ["domain", "record_type"].into_iter()),
            "; did you mean domain?"
        );
        assert_eq!(did_you_mean("zzz", ["domain"].into_iter()), "");
    }
}
