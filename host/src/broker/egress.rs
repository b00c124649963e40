//! The egress policy: which origins a connection's plugin may reach, and
//! which of them may receive the connection's credentials.
//!
//! Pure types, no I/O, so that every rule is a table row in the tests below.
//! A descriptor declares URL templates (`https://{domain}`); the host fills
//! them from the connection's non-secret settings once, when the connection
//! is built.
//!
//! What an origin may receive depends on who chose it:
//!
//! - **The operator** chose an origin whose host is filled wholly from a
//!   setting the operator wrote (`https://{domain}` with `domain` in the
//!   configuration; a setting's default comes from the plugin, so it does
//!   not count), one the operator lists under `credential_origins`, and the
//!   `instance_url` that the token endpoint on such an origin returns, when a
//!   wildcard template (`https://*.my.salesforce.com`) or an operator origin
//!   vouches for it. These are reachable and may receive credentials.
//! - **The plugin** chose every other origin: a literal host in a template
//!   (`https://api.example.com`, `https://127.0.0.1:{port}`), a host only
//!   partly from a setting (`https://{tenant}.example.com`), or a host from a
//!   setting the operator left to its default. Such an origin is reachable
//!   only if the operator approved it (`approved_egress`), and never receives
//!   a credential unless the operator also lists it under
//!   `credential_origins`.
//!
//! A wildcard template admits nothing by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use url::{Host, Url};

/// Why a template or a filled-in value is unusable. These are the plugin's
/// or the operator's mistakes, caught when a plugin or connection loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "egress template {template:?} must start with https:// (plain HTTP is only ever allowed to loopback emulators, by the operator)"
    )]
    NotHttps { template: String },
    #[error(
        "egress template {template:?} must be an origin (scheme, host, optional port) without a path, query or user name"
    )]
    NotAnOrigin { template: String },
    #[error("egress template {template:?} has an unterminated or empty placeholder")]
    BadPlaceholder { template: String },
    #[error(
        "egress template {template:?} is a wildcard over a whole top-level domain; name at least two labels after *., as in https://*.my.salesforce.com"
    )]
    BroadWildcard { template: String },
    #[error(
        "egress template {template:?} uses {{{placeholder}}} in a wildcard host, which cannot be filled"
    )]
    PlaceholderInWildcard {
        template: String,
        placeholder: String,
    },
    #[error(
        "setting {setting} = {value:?} does not fit egress template {template:?}: it must be a host name with an optional :port"
    )]
    BadValue {
        template: String,
        setting: String,
        value: String,
    },
}

/// Where a template's host comes from, which decides who chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "from")]
pub enum HostSource {
    /// The whole host is one setting (`https://{domain}`, optionally with a
    /// port): the operator's choice when the operator writes that setting.
    Setting(String),
    /// The plugin wrote the host, or part of it (`https://api.example.com`,
    /// `https://{tenant}.example.com`).
    Plugin,
    /// `https://*.example.com`: admits only an `instance_url` returned by a
    /// token endpoint on an operator origin.
    Wildcard,
}

/// One template from a descriptor's `egress` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    /// The part after `https://`.
    authority: String,
    placeholders: Vec<String>,
    host: HostSource,
}

impl Template {
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        let authority = raw
            .strip_prefix("https://")
            .ok_or_else(|| TemplateError::NotHttps {
                template: raw.into(),
            })?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@'])
            || authority.chars().any(char::is_whitespace)
        {
            return Err(TemplateError::NotAnOrigin {
                template: raw.into(),
            });
        }
        let placeholders = placeholders(raw, authority)?;
        let wildcard = authority.starts_with("*.");
        if wildcard && let Some(placeholder) = placeholders.first() {
            return Err(TemplateError::PlaceholderInWildcard {
                template: raw.into(),
                placeholder: placeholder.clone(),
            });
        }
        if wildcard {
            // `*.com` would vouch for any host a token endpoint names.
            let suffix = authority[2..].split(':').next().unwrap_or_default();
            let labels = suffix.split('.').filter(|l| !l.is_empty()).count();
            if labels < 2 || suffix.contains("*") {
                return Err(TemplateError::BroadWildcard {
                    template: raw.into(),
                });
            }
        }
        if placeholders.is_empty() {
            // A literal template must be a valid origin on its own.
            let probe = authority.replacen("*.", "wildcard.", 1);
            origin_of(&format!("https://{probe}")).ok_or_else(|| TemplateError::NotAnOrigin {
                template: raw.into(),
            })?;
        }
        let host = if wildcard {
            HostSource::Wildcard
        } else {
            match host_setting(authority) {
                Some(name) => HostSource::Setting(name.to_string()),
                None => HostSource::Plugin,
            }
        };
        Ok(Template {
            raw: raw.into(),
            authority: authority.into(),
            placeholders,
            host,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn is_wildcard(&self) -> bool {
        self.host == HostSource::Wildcard
    }

    /// Where the host comes from.
    pub fn host_source(&self) -> &HostSource {
        &self.host
    }

    /// The settings this template needs.
    pub fn placeholders(&self) -> &[String] {
        &self.placeholders
    }

    /// Whether the operator chose the origin this template fills to, given
    /// the settings the operator wrote: the whole host from one of them,
    /// and a port, if it comes from a setting, from one of them too (a
    /// plugin's default port could be any service on the operator's host).
    fn chosen_by_operator(&self, written: &BTreeSet<String>) -> bool {
        matches!(&self.host, HostSource::Setting(name) if written.contains(name))
            && self.placeholders.iter().all(|p| written.contains(p))
    }

    /// Fills the template from `settings`. `Ok(None)` when a placeholder's
    /// setting is unset: the template then admits nothing.
    pub fn fill(
        &self,
        settings: &BTreeMap<String, String>,
    ) -> Result<Option<Origin>, TemplateError> {
        if self.is_wildcard() {
            return Ok(None);
        }
        let mut authority = self.authority.clone();
        for name in &self.placeholders {
            let Some(value) = settings.get(name) else {
                return Ok(None);
            };
            let bad = || TemplateError::BadValue {
                template: self.raw.clone(),
                setting: name.clone(),
                value: value.clone(),
            };
            if value.is_empty()
                || value.contains(['/', '?', '#', '@', '{', '}', '\\'])
                || value.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad());
            }
            authority = authority.replace(&format!("{{{name}}}"), value);
        }
        origin_of(&format!("https://{authority}"))
            .map(Some)
            .ok_or_else(|| TemplateError::BadValue {
                template: self.raw.clone(),
                setting: self.placeholders.join(", "),
                value: authority,
            })
    }

    /// Whether `origin` is vouched for by this wildcard template.
    fn admits_learned(&self, origin: &Origin) -> bool {
        let Some(suffix) = self.authority.strip_prefix("*.") else {
            return false;
        };
        let (suffix_host, suffix_port) = match suffix.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().ok()),
            None => (suffix, None),
        };
        let Host::Domain(domain) = &origin.host else {
            return false;
        };
        let suffix_host = suffix_host.to_ascii_lowercase();
        let port_ok = origin.port == suffix_port.unwrap_or(443);
        port_ok
            && domain.len() > suffix_host.len() + 1
            && domain.ends_with(&format!(".{suffix_host}"))
    }
}

/// The setting that is the whole host of `authority`, if one is: `{domain}`,
/// `{domain}:8443` or `{host}:{port}`, but not `{tenant}.example.com` or
/// `127.0.0.1:{port}`.
fn host_setting(authority: &str) -> Option<&str> {
    let host = match authority.rsplit_once(':') {
        Some((host, port))
            if port.chars().all(|c| c.is_ascii_digit())
                || (port.starts_with('{') && port.ends_with('}')) =>
        {
            host
        }
        _ => authority,
    };
    let name = host.strip_prefix('{')?.strip_suffix('}')?;
    (!name.is_empty() && !name.contains(['{', '}'])).then_some(name)
}

fn placeholders(raw: &str, authority: &str) -> Result<Vec<String>, TemplateError> {
    let mut names = Vec::new();
    let mut rest = authority;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| TemplateError::BadPlaceholder {
                template: raw.into(),
            })?;
        let name = &after[..end];
        if name.is_empty() || name.contains('{') {
            return Err(TemplateError::BadPlaceholder {
                template: raw.into(),
            });
        }
        names.push(name.to_string());
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(TemplateError::BadPlaceholder {
            template: raw.into(),
        });
    }
    Ok(names)
}

/// A host and port that requests may go to. The scheme is decided by the
/// policy: HTTPS, or plain HTTP for a loopback emulator when allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub host: Host,
    pub port: u16,
}

impl Origin {
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::Ipv6(ip) => ip.is_loopback(),
            Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        }
    }

    /// Reads an origin the operator wrote in the configuration:
    /// `https://host[:port]`, or `http://` for a loopback host.
    pub fn parse_operator(text: &str) -> Result<Origin, String> {
        let expected = || {
            format!(
                "{text:?} is not an origin; expected https://host or https://host:port, without a path"
            )
        };
        let url = Url::parse(text).map_err(|_| expected())?;
        let origin = origin_of(text.trim_end_matches('/')).ok_or_else(expected)?;
        match url.scheme() {
            "https" => Ok(origin),
            "http" if origin.is_loopback() => Ok(origin),
            "http" => Err(format!(
                "{text:?} uses plain HTTP, which is allowed only to loopback hosts; use https://"
            )),
            _ => Err(expected()),
        }
    }

    fn matches(&self, host: &Host, port: u16) -> bool {
        self.port == port && &self.host == host
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ipv6(ip) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

fn origin_of(text: &str) -> Option<Origin> {
    let url = Url::parse(text).ok()?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    Some(Origin {
        host: url.host()?.to_owned(),
        port: url.port_or_known_default()?,
    })
}

/// Why a URL was refused. The text names the URL and the rule, and for a
/// host the plugin chose, what the operator would write to allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("{url} is not an absolute http(s) URL")]
    NotHttp { url: String },
    #[error("{url} carries a user name or password; credentials are the host's to attach")]
    Userinfo { url: String },
    #[error("{url}: {origin} is not among the hosts this connection may reach ({allowed})")]
    HostNotAllowed {
        url: String,
        origin: String,
        allowed: String,
    },
    #[error(
        "{url}: {origin} is a host the plugin chose (egress template {template:?}), not one from the operator's settings; the operator allows it with approved_egress = [\"{origin}\"] on the connection"
    )]
    Unapproved {
        url: String,
        origin: String,
        template: String,
    },
    #[error(
        "{url}: {origin} may not receive this connection's credentials, because the plugin chose it, not the operator; nothing was sent. The operator trusts it with credential_origins = [\"{origin}\"] on the connection"
    )]
    NoCredentials { url: String, origin: String },
    #[error(
        "{url}: plain HTTP is allowed only to loopback hosts with allow_insecure_loopback = true on the connection"
    )]
    PlainHttp { url: String },
}

/// What a checked URL may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// An operator origin: the connection's credentials may go there.
    Credentials,
    /// A host the plugin chose and the operator approved: no credentials.
    Plain,
}

/// What the operator decided about a connection's egress, beyond the
/// plugin's templates.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    /// The settings the operator wrote, defaults excluded.
    pub written: BTreeSet<String>,
    /// Hosts the plugin chose that the operator lets it reach, without
    /// credentials (`approved_egress`).
    pub approved: Vec<Origin>,
    /// Origins that may receive credentials beyond those filled from
    /// written settings (`credential_origins`).
    pub trusted: Vec<Origin>,
    /// Plain HTTP to loopback hosts (`allow_insecure_loopback`).
    pub insecure_loopback: bool,
    /// Where the host obtains the bearer token of a connector that takes a
    /// static one, by the client-credentials grant (`[connections.NAME.oauth2]`).
    pub token_endpoint: Option<super::TokenEndpoint>,
}

/// One filled template.
#[derive(Debug, Clone)]
struct Filled {
    origin: Origin,
    operator: bool,
}

/// The origins one connection may reach, and what each may receive.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    templates: Vec<Template>,
    /// Filled templates, by template index (`None` for wildcards and unset
    /// settings).
    filled: Vec<Option<Filled>>,
    approved: Vec<Origin>,
    trusted: Vec<Origin>,
    /// Origins learned from the token endpoint (`instance_url`).
    learned: Vec<Origin>,
    insecure_loopback: bool,
}

impl EgressPolicy {
    pub fn new(
        templates: &[String],
        settings: &BTreeMap<String, String>,
        choices: &Choices,
    ) -> Result<EgressPolicy, TemplateError> {
        let templates = templates
            .iter()
            .map(|t| Template::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let filled = templates
            .iter()
            .map(|t| {
                Ok(t.fill(settings)?.map(|origin| Filled {
                    origin,
                    operator: t.chosen_by_operator(&choices.written),
                }))
            })
            .collect::<Result<Vec<_>, TemplateError>>()?;
        Ok(EgressPolicy {
            templates,
            filled,
            approved: choices.approved.clone(),
            trusted: choices.trusted.clone(),
            learned: Vec::new(),
            insecure_loopback: choices.insecure_loopback,
        })
    }

    /// The scheme requests to `origin` use under this policy.
    fn scheme_for(&self, origin: &Origin) -> &'static str {
        if self.insecure_loopback && origin.is_loopback() {
            "http"
        } else {
            "https"
        }
    }

    /// `origin` as a URL, with the scheme requests to it use.
    fn url_of(&self, origin: &Origin) -> String {
        let scheme = self.scheme_for(origin);
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host = match &origin.host {
            Host::Ipv6(ip) => format!("[{ip}]"),
            host => host.to_string(),
        };
        if origin.port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", origin.port)
        }
    }

    /// Whether the operator chose `origin`, so that it may receive
    /// credentials.
    fn trusts(&self, origin: &Origin) -> bool {
        self.trusted.contains(origin)
            || self.learned.contains(origin)
            || self
                .filled
                .iter()
                .flatten()
                .any(|f| f.operator && &f.origin == origin)
    }

    /// Whether the operator approved reaching `origin`.
    fn approves(&self, origin: &Origin) -> bool {
        self.approved.contains(origin) || self.trusts(origin)
    }

    /// The origin URL for the template at `index`, as the plugin should use
    /// it; `None` for a wildcard, an unset setting, or a host the plugin
    /// chose that the operator has not approved.
    pub fn egress_url(&self, index: usize) -> Option<String> {
        self.filled
            .get(index)
            .and_then(Option::as_ref)
            .filter(|f| f.operator || self.approves(&f.origin))
            .map(|f| self.url_of(&f.origin))
    }

    /// The hosts the plugin chose whose templates the operator has not
    /// approved: (template, origin URL).
    pub fn unapproved(&self) -> Vec<(String, String)> {
        self.templates
            .iter()
            .zip(&self.filled)
            .filter_map(|(template, filled)| {
                let filled = filled.as_ref()?;
                (!filled.operator && !self.approves(&filled.origin))
                    .then(|| (template.as_str().to_string(), self.url_of(&filled.origin)))
            })
            .collect()
    }

    /// Origins the operator listed that no template of the plugin fills to
    /// or vouches for: probably a typo, and of no use to the plugin.
    pub fn unused_choices(&self) -> Vec<String> {
        self.approved
            .iter()
            .chain(&self.trusted)
            .filter(|origin| {
                !self.filled.iter().flatten().any(|f| &f.origin == *origin)
                    && !self.templates.iter().any(|t| t.admits_learned(origin))
            })
            .map(|origin| self.url_of(origin))
            .collect()
    }

    /// Fills the token URL template (`https://{domain}/services/oauth2/token`)
    /// and checks that its origin may receive credentials: the token
    /// endpoint gets the client secret and the refresh token.
    pub fn token_url(
        &self,
        template: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Url, String> {
        let rest = template
            .strip_prefix("https://")
            .ok_or_else(|| format!("{template:?} must start with https://"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let origin_template =
            Template::parse(&format!("https://{authority}")).map_err(|e| e.to_string())?;
        let origin = origin_template
            .fill(settings)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "{template:?} needs the settings {}, which are not set",
                    origin_template.placeholders().join(", ")
                )
            })?;
        let url = Url::parse(&format!("{}{path}", self.url_of(&origin)))
            .map_err(|e| format!("{template:?} does not make a valid URL: {e}"))?;
        if !self.trusts(&origin) {
            let origin = self.url_of(&origin);
            return Err(format!(
                "the token endpoint {url} would receive the client secret and the refresh token, but its host {origin} was chosen by the plugin ({}), not by the operator; write the setting yourself, or trust it with credential_origins = [\"{origin}\"] on the connection",
                match origin_template.host_source() {
                    HostSource::Setting(name) =>
                        format!("the setting {name} was left to the plugin's default"),
                    _ => format!("template {template:?}"),
                }
            ));
        }
        self.check(&url).map_err(|e| e.to_string())?;
        Ok(url)
    }

    /// Checks one request URL (or redirect hop), and says what it may
    /// carry.
    pub fn check(&self, url: &Url) -> Result<Reach, Denied> {
        let scheme = url.scheme();
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(Denied::NotHttp {
                url: url.to_string(),
            });
        };
        if scheme != "https" && scheme != "http" {
            return Err(Denied::NotHttp {
                url: url.to_string(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Denied::Userinfo {
                url: url.to_string(),
            });
        }
        let host = host.to_owned();
        let origin = Origin { host, port };
        let reach = if self.trusts(&origin) {
            Reach::Credentials
        } else if self.approved.contains(&origin) {
            Reach::Plain
        } else if let Some((template, _)) =
            self.templates.iter().zip(&self.filled).find(|(_, f)| {
                f.as_ref()
                    .is_some_and(|f| f.origin.matches(&origin.host, port))
            })
        {
            return Err(Denied::Unapproved {
                url: url.to_string(),
                origin: self.url_of(&origin),
                template: template.as_str().to_string(),
            });
        } else {
            return Err(Denied::HostNotAllowed {
                url: url.to_string(),
                origin: origin.to_string(),
                allowed: self.describe_allowed(),
            });
        };
        if scheme == "http" && !(self.insecure_loopback && origin.is_loopback()) {
            return Err(Denied::PlainHttp {
                url: url.to_string(),
            });
        }
        Ok(reach)
    }

    /// Checks a URL that is to carry the connection's credentials.
    pub fn check_credentialed(&self, url: &Url) -> Result<(), Denied> {
        match self.check(url)? {
            Reach::Credentials => Ok(()),
            Reach::Plain => Err(Denied::NoCredentials {
                url: url.to_string(),
                origin: url.origin().ascii_serialization(),
            }),
        }
    }

    /// Admits the origin of an `instance_url` returned by the token
    /// endpoint, if a wildcard template or an operator origin vouches for
    /// it. Returns the origin URL the plugin should use. The token endpoint
    /// is always an operator origin, so what it names is the operator's
    /// store speaking; a host the plugin chose is never promoted by it.
    pub fn admit_learned(&mut self, instance_url: &str) -> Result<String, String> {
        let url = Url::parse(instance_url)
            .map_err(|e| format!("instance_url {instance_url:?} is not a URL: {e}"))?;
        let origin = match (url.host(), url.port_or_known_default()) {
            (Some(host), Some(port)) => Origin {
                host: host.to_owned(),
                port,
            },
            _ => return Err(format!("instance_url {instance_url:?} has no host")),
        };
        let expected_scheme = self.scheme_for(&origin);
        if url.scheme() != expected_scheme {
            return Err(format!(
                "instance_url {instance_url:?} must use {expected_scheme}"
            ));
        }
        let vouched =
            self.trusts(&origin) || self.templates.iter().any(|t| t.admits_learned(&origin));
        if !vouched {
            return Err(format!(
                "instance_url {instance_url:?} matches no wildcard egress template and no operator origin ({})",
                self.describe_allowed()
            ));
        }
        if !self.learned.contains(&origin) {
            self.learned.push(origin.clone());
        }
        Ok(self.url_of(&origin))
    }

    fn describe_allowed(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut push = |text: String| {
            if !parts.contains(&text) {
                parts.push(text);
            }
        };
        for filled in self.filled.iter().flatten() {
            if filled.operator || self.approves(&filled.origin) {
                push(self.url_of(&filled.origin));
            }
        }
        for origin in self
            .trusted
            .iter()
            .chain(&self.approved)
            .chain(&self.learned)
        {
            push(self.url_of(origin));
        }
        for template in self.templates.iter().filter(|t| t.is_wildcard()) {
            push(format!("{} via instance_url", template.as_str()));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A policy whose settings the operator wrote, every one of them.
    fn policy(templates: &[&str], pairs: &[(&str, &str)], insecure: bool) -> EgressPolicy {
        let choices = Choices {
            written: pairs.iter().map(|(k, _)| k.to_string()).collect(),
            insecure_loopback: insecure,
            ..Choices::default()
        };
        policy_with(templates, pairs, &choices)
    }

    fn policy_with(templates: &[&str], pairs: &[(&str, &str)], choices: &Choices) -> EgressPolicy {
        let templates: Vec<String> = templates.iter().map(|t| t.to_string()).collect();
        EgressPolicy::new(&templates, &settings(pairs), choices).unwrap()
    }

    fn origin(text: &str) -> Origin {
        Origin::parse_operator(text).unwrap()
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn templates_parse_or_say_why_not() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://{domain}", Ok(())),
            ("https://{domain}/", Ok(())),
            ("https://{host}:{port}", Ok(())),
            ("https://login.salesforce.com", Ok(())),
            ("https://*.my.salesforce.com", Ok(())),
            ("http://{domain}", Err("must start with https://")),
            ("{domain}", Err("must start with https://")),
            ("https://{domain}/services", Err("must be an origin")),
            ("https://user@{domain}", Err("must be an origin")),
            ("https://{domain}?x=1", Err("must be an origin")),
            ("https://{domain", Err("unterminated or empty placeholder")),
            ("https://{}", Err("unterminated or empty placeholder")),
            ("https://domain}", Err("unterminated or empty placeholder")),
            ("https://*.{domain}", Err("in a wildcard host")),
            ("https://*.com", Err("whole top-level domain")),
            ("https://*.", Err("whole top-level domain")),
            ("https://*.*.example.com", Err("whole top-level domain")),
            ("https://", Err("must be an origin")),
        ];
        for (raw, expected) in cases {
            let got = Template::parse(raw);
            match (expected, got) {
                (Ok(()), Ok(_)) => {}
                (Err(needle), Err(error)) => assert!(
                    error.to_string().contains(needle),
                    "{raw}: {error} lacks {needle:?}"
                ),
                (expected, got) => panic!("{raw}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_host_is_the_operators_only_when_one_setting_is_all_of_it() {
        let setting = |name: &str| HostSource::Setting(name.into());
        let cases: &[(&str, HostSource)] = &[
            ("https://{domain}", setting("domain")),
            ("https://{domain}/", setting("domain")),
            ("https://{domain}:8443", setting("domain")),
            ("https://{host}:{port}", setting("host")),
            ("https://127.0.0.1:{port}", HostSource::Plugin),
            ("https://{tenant}.example.com", HostSource::Plugin),
            ("https://api.{tenant}", HostSource::Plugin),
            ("https://{a}{b}", HostSource::Plugin),
            ("https://attacker.example", HostSource::Plugin),
            ("https://attacker.example:8443", HostSource::Plugin),
            ("https://*.my.salesforce.com", HostSource::Wildcard),
        ];
        for (raw, expected) in cases {
            let template = Template::parse(raw).unwrap();
            assert_eq!(template.host_source(), expected, "{raw}");
        }
    }

    #[test]
    fn setting_values_cannot_smuggle_a_path_or_another_host() {
        for value in [
            "evil.com/x",
            "a@evil.com",
            "evil.com?x",
            "evil.com#x",
            "",
            "a b",
            "{x}",
        ] {
            let result = EgressPolicy::new(
                &["https://{domain}".to_string()],
                &settings(&[("domain", value)]),
                &Choices::default(),
            );
            assert!(
                matches!(result, Err(TemplateError::BadValue { .. })),
                "{value:?} was accepted"
            );
        }
    }

    #[test]
    fn requests_are_checked_against_filled_templates() {
        let p = policy(
            &["https://{domain}"],
            &[("domain", "acme.my.salesforce.com")],
            false,
        );
        let cases: &[(&str, bool)] = &[
            ("https://acme.my.salesforce.com/services/data", true),
            ("https://ACME.my.salesforce.com/x", true),
            ("https://acme.my.salesforce.com:443/x", true),
            ("https://acme.my.salesforce.com:8443/x", false),
            ("http://acme.my.salesforce.com/x", false),
            ("https://evil.com/x", false),
            ("https://acme.my.salesforce.com.evil.com/x", false),
            ("https://x.acme.my.salesforce.com/x", false),
            ("https://user:pw@acme.my.salesforce.com/x", false),
            ("ftp://acme.my.salesforce.com/x", false),
            ("https://127.0.0.1/x", false),
        ];
        for (target, allowed) in cases {
            let result = p.check(&url(target));
            assert_eq!(result.is_ok(), *allowed, "{target}: {result:?}");
        }
    }

    /// The credential-binding rule, one row per way an origin can come
    /// about: who chose it, and what the operator said of it.
    #[test]
    fn only_origins_the_operator_chose_may_receive_credentials() {
        struct Row {
            template: &'static str,
            settings: &'static [(&'static str, &'static str)],
            written: &'static [&'static str],
            approved: &'static [&'static str],
            trusted: &'static [&'static str],
            request: &'static str,
            expected: Result<Reach, &'static str>,
        }
        let rows = [
            // The operator wrote the whole host.
            Row {
                template: "https://{domain}",
                settings: &[("domain", "acme.my.salesforce.com")],
                written: &["domain"],
                approved: &[],
                trusted: &[],
                request: "https://acme.my.salesforce.com/x",
                expected: Ok(Reach::Credentials),
            },
            // The same template, the host left to the plugin's default.
            Row {
                template: "https://{domain}",
                settings: &[("domain", "login.salesforce.com")],
                written: &[],
                approved: &[],
                trusted: &[],
                request: "https://login.salesforce.com/x",
                expected: Err("approved_egress"),
            },
            Row {
                template: "https://{domain}",
                settings: &[("domain", "login.salesforce.com")],
                written: &[],
                approved: &["https://login.salesforce.com"],
                trusted: &[],
                request: "https://login.salesforce.com/x",
                expected: Ok(Reach::Plain),
            },
            // A literal host: unreachable until approved, then without
            // credentials; with them only when the operator trusts it.
            Row {
                template: "https://attacker.example",
                settings: &[],
                written: &[],
                approved: &[],
                trusted: &[],
                request: "https://attacker.example/steal",
                expected: Err("approved_egress = [\"https://attacker.example\"]"),
            },
            Row {
                template: "https://attacker.example",
                settings: &[],
                written: &[],
                approved: &["https://attacker.example"],
                trusted: &[],
                request: "https://attacker.example/steal",
                expected: Ok(Reach::Plain),
            },
            Row {
                template: "https://attacker.example",
                settings: &[],
                written: &[],
                approved: &[],
                trusted: &["https://attacker.example"],
                request: "https://attacker.example/steal",
                expected: Ok(Reach::Credentials),
            },
            // A port from the operator does not make the host theirs.
            Row {
                template: "https://127.0.0.1:{port}",
                settings: &[("port", "9999")],
                written: &["port"],
                approved: &[],
                trusted: &[],
                request: "https://127.0.0.1:9999/x",
                expected: Err("a host the plugin chose"),
            },
            // Nor does a tenant name inside the plugin's domain.
            Row {
                template: "https://{tenant}.example.com",
                settings: &[("tenant", "acme")],
                written: &["tenant"],
                approved: &["https://acme.example.com"],
                trusted: &[],
                request: "https://acme.example.com/x",
                expected: Ok(Reach::Plain),
            },
            // An operator host and port are theirs; the plugin's default
            // port on the operator's host is not: it could be any service.
            Row {
                template: "https://{host}:{port}",
                settings: &[("host", "store.example.com"), ("port", "8443")],
                written: &["host", "port"],
                approved: &[],
                trusted: &[],
                request: "https://store.example.com:8443/x",
                expected: Ok(Reach::Credentials),
            },
            Row {
                template: "https://{host}:{port}",
                settings: &[("host", "store.example.com"), ("port", "8443")],
                written: &["host"],
                approved: &[],
                trusted: &[],
                request: "https://store.example.com:8443/x",
                expected: Err("a host the plugin chose"),
            },
            // An approval of something never declared still reaches it, as
            // the operator said, but without credentials.
            Row {
                template: "https://{domain}",
                settings: &[("domain", "a.example.com")],
                written: &["domain"],
                approved: &["https://b.example.com"],
                trusted: &[],
                request: "https://b.example.com/x",
                expected: Ok(Reach::Plain),
            },
            Row {
                template: "https://{domain}",
                settings: &[("domain", "a.example.com")],
                written: &["domain"],
                approved: &[],
                trusted: &[],
                request: "https://b.example.com/x",
                expected: Err("not among the hosts"),
            },
        ];
        for row in rows {
            let choices = Choices {
                written: row.written.iter().map(|s| s.to_string()).collect(),
                approved: row.approved.iter().map(|o| origin(o)).collect(),
                trusted: row.trusted.iter().map(|o| origin(o)).collect(),
                insecure_loopback: false,
                token_endpoint: None,
            };
            let p = policy_with(&[row.template], row.settings, &choices);
            let got = p.check(&url(row.request));
            match (&row.expected, &got) {
                (Ok(expected), Ok(reach)) => {
                    assert_eq!(reach, expected, "{} -> {}", row.template, row.request)
                }
                (Err(needle), Err(denied)) => assert!(
                    denied.to_string().contains(needle),
                    "{} -> {}: {denied} lacks {needle:?}",
                    row.template,
                    row.request
                ),
                _ => panic!(
                    "{} -> {}: expected {:?}, got {got:?}",
                    row.template, row.request, row.expected
                ),
            }
            let credentialed = p.check_credentialed(&url(row.request));
            assert_eq!(
                credentialed.is_ok(),
                row.expected == Ok(Reach::Credentials),
                "{} -> {}: {credentialed:?}",
                row.template,
                row.request
            );
            if got == Ok(Reach::Plain) {
                assert!(
                    credentialed
                        .unwrap_err()
                        .to_string()
                        .contains("may not receive this connection's credentials"),
                    "{}",
                    row.template
                );
            }
        }
    }

    #[test]
    fn the_token_url_must_be_an_origin_the_operator_chose() {
        let templates = ["https://{domain}", "https://127.0.0.1:{port}"];
        let s = settings(&[("domain", "store.example.com"), ("port", "9999")]);
        let written: BTreeSet<String> = ["domain".to_string(), "port".to_string()].into();
        let choices = Choices {
            written: written.clone(),
            approved: vec![origin("https://127.0.0.1:9999")],
            ..Choices::default()
        };
        let p = EgressPolicy::new(&templates.map(String::from), &s, &choices).unwrap();
        assert_eq!(
            p.token_url("https://{domain}/oauth/token", &s)
                .unwrap()
                .as_str(),
            "https://store.example.com/oauth/token"
        );
        let error = p
            .token_url("https://127.0.0.1:{port}/services/oauth2/token", &s)
            .unwrap_err();
        assert!(
            error.contains("client secret and the refresh token"),
            "{error}"
        );
        assert!(
            error.contains("credential_origins = [\"https://127.0.0.1:9999\"]"),
            "{error}"
        );

        // Trusted by the operator, it may.
        let trusting = Choices {
            written,
            trusted: vec![origin("https://127.0.0.1:9999")],
            ..Choices::default()
        };
        let p = EgressPolicy::new(&templates.map(String::from), &s, &trusting).unwrap();
        assert!(
            p.token_url("https://127.0.0.1:{port}/token", &s).is_ok(),
            "trusted"
        );

        // A host left to the plugin's default is the plugin's.
        let defaulted = Choices::default();
        let p = EgressPolicy::new(&["https://{domain}".to_string()], &s, &defaulted).unwrap();
        let error = p.token_url("https://{domain}/token", &s).unwrap_err();
        assert!(error.contains("left to the plugin's default"), "{error}");
        // Approving the host for plain requests does not trust it.
        let approved = Choices {
            approved: vec![origin("https://store.example.com")],
            ..Choices::default()
        };
        let p = EgressPolicy::new(&["https://{domain}".to_string()], &s, &approved).unwrap();
        let error = p.token_url("https://{domain}/token", &s).unwrap_err();
        assert!(error.contains("credential_origins"), "{error}");
    }

    #[test]
    fn plain_http_only_to_loopback_and_only_when_allowed() {
        let strict = policy(
            &["https://{domain}"],
            &[("domain", "127.0.0.1:8443")],
            false,
        );
        let loose = policy(&["https://{domain}"], &[("domain", "127.0.0.1:8443")], true);
        let remote = policy(&["https://{domain}"], &[("domain", "10.0.0.1:8443")], true);

        assert!(matches!(
            strict.check(&url("http://127.0.0.1:8443/x")),
            Err(Denied::PlainHttp { .. })
        ));
        assert!(strict.check(&url("https://127.0.0.1:8443/x")).is_ok());
        assert!(loose.check(&url("http://127.0.0.1:8443/x")).is_ok());
        assert!(loose.check(&url("http://127.0.0.1:8444/x")).is_err());
        assert!(loose.check(&url("http://127.0.0.2:8443/x")).is_err());
        assert!(matches!(
            remote.check(&url("http://10.0.0.1:8443/x")),
            Err(Denied::PlainHttp { .. })
        ));
        assert_eq!(
            loose.egress_url(0).as_deref(),
            Some("http://127.0.0.1:8443")
        );
        assert_eq!(
            strict.egress_url(0).as_deref(),
            Some("https://127.0.0.1:8443")
        );
        assert_eq!(
            remote.egress_url(0).as_deref(),
            Some("https://10.0.0.1:8443")
        );
    }

    #[test]
    fn wildcards_admit_only_learned_hosts() {
        let mut p = policy(
            &["https://{domain}", "https://*.my.salesforce.com"],
            &[("domain", "login.salesforce.com")],
            false,
        );
        let target = url("https://acme.my.salesforce.com/services");
        assert!(
            p.check(&target).is_err(),
            "a wildcard admits nothing by itself"
        );
        assert_eq!(p.egress_url(1), None);

        assert!(p.admit_learned("https://evil.com").is_err());
        assert!(p.admit_learned("https://my.salesforce.com").is_err());
        assert!(p.admit_learned("http://acme.my.salesforce.com").is_err());
        assert!(
            p.admit_learned("https://acme.my.salesforce.com.evil.com")
                .is_err()
        );
        assert_eq!(
            p.admit_learned("https://acme.my.salesforce.com").as_deref(),
            Ok("https://acme.my.salesforce.com")
        );
        assert_eq!(p.check(&target), Ok(Reach::Credentials));
        assert!(p.check(&url("https://other.my.salesforce.com/")).is_err());
    }

    #[test]
    fn operator_origins_vouch_for_their_own_instance_url() {
        let mut p = policy(&["https://{domain}"], &[("domain", "127.0.0.1:9000")], true);
        assert_eq!(
            p.admit_learned("http://127.0.0.1:9000").as_deref(),
            Ok("http://127.0.0.1:9000")
        );
        assert!(p.admit_learned("http://127.0.0.1:9001").is_err());
    }

    #[test]
    fn an_instance_url_never_promotes_a_host_the_plugin_chose() {
        let choices = Choices {
            written: ["domain".to_string()].into(),
            approved: vec![origin("https://attacker.example")],
            ..Choices::default()
        };
        let mut p = policy_with(
            &["https://{domain}", "https://attacker.example"],
            &[("domain", "store.example.com")],
            &choices,
        );
        let error = p.admit_learned("https://attacker.example").unwrap_err();
        assert!(error.contains("matches no wildcard"), "{error}");
        assert_eq!(
            p.check(&url("https://attacker.example/x")),
            Ok(Reach::Plain)
        );
    }

    #[test]
    fn unset_optional_settings_leave_a_template_empty() {
        let p = policy(
            &["https://{domain}", "https://{sandbox}"],
            &[("domain", "a.com")],
            false,
        );
        assert_eq!(p.egress_url(0).as_deref(), Some("https://a.com"));
        assert_eq!(p.egress_url(1), None);
        assert_eq!(p.egress_url(7), None);
    }

    #[test]
    fn unapproved_hosts_are_listed_and_hidden_from_the_plugin() {
        let choices = Choices {
            written: ["domain".to_string()].into(),
            approved: vec![
                origin("https://status.example.com"),
                origin("https://typo.example.com"),
            ],
            ..Choices::default()
        };
        let p = policy_with(
            &[
                "https://{domain}",
                "https://attacker.example",
                "https://status.example.com",
            ],
            &[("domain", "store.example.com")],
            &choices,
        );
        assert_eq!(
            p.unapproved(),
            vec![(
                "https://attacker.example".to_string(),
                "https://attacker.example".to_string()
            )]
        );
        assert_eq!(
            p.egress_url(0).as_deref(),
            Some("https://store.example.com")
        );
        assert_eq!(p.egress_url(1), None, "not approved");
        assert_eq!(
            p.egress_url(2).as_deref(),
            Some("https://status.example.com")
        );
        assert_eq!(
            p.unused_choices(),
            vec!["https://typo.example.com".to_string()]
        );
    }

    #[test]
    fn operator_origins_are_read_strictly() {
        assert_eq!(
            origin("https://login.salesforce.com"),
            origin("https://login.salesforce.com:443/")
        );
        assert!(Origin::parse_operator("http://127.0.0.1:9").is_ok());
        for bad in [
            "login.salesforce.com",
            "https://login.salesforce.com/services",
            "https://user@login.salesforce.com",
            "ftp://login.salesforce.com",
        ] {
            assert!(Origin::parse_operator(bad).is_err(), "{bad}");
        }
        let error = Origin::parse_operator("http://example.com").unwrap_err();
        assert!(error.contains("only to loopback"), "{error}");
    }

    #[test]
    fn denials_name_the_url_and_what_is_allowed() {
        let p = policy(&["https://{domain}"], &[("domain", "a.example.com")], false);
        let error = p
            .check(&url("https://b.example.com/path"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("https://b.example.com/path"), "{error}");
        assert!(error.contains("https://a.example.com"), "{error}");
    }
}
