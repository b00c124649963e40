//! The egress policy: which origins a connection's plugin may reach.
//!
//! Pure types, no I/O, so that every rule is a table row in the tests below.
//! A descriptor declares URL templates (`https://{domain}`); the host fills
//! them from the connection's non-secret settings once, when the connection
//! is built. Wildcard templates (`https://*.my.salesforce.com`) admit nothing
//! by themselves: they only vouch for a host that the OAuth 2.0 token
//! endpoint returns as `instance_url`.

use std::collections::BTreeMap;
use std::fmt;

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

/// One template from a descriptor's `egress` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    /// The part after `https://`.
    authority: String,
    wildcard: bool,
    placeholders: Vec<String>,
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
        if placeholders.is_empty() {
            // A literal template must be a valid origin on its own.
            let probe = authority.replacen("*.", "wildcard.", 1);
            origin_of(&format!("https://{probe}")).ok_or_else(|| TemplateError::NotAnOrigin {
                template: raw.into(),
            })?;
        }
        Ok(Template {
            raw: raw.into(),
            authority: authority.into(),
            wildcard,
            placeholders,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The settings this template needs.
    pub fn placeholders(&self) -> &[String] {
        &self.placeholders
    }

    /// Fills the template from `settings`. `Ok(None)` when a placeholder's
    /// setting is unset: the template then admits nothing.
    pub fn fill(
        &self,
        settings: &BTreeMap<String, String>,
    ) -> Result<Option<Origin>, TemplateError> {
        if self.wildcard {
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

/// Why a URL was refused. The text names the URL and the rule.
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
        "{url}: plain HTTP is allowed only to loopback hosts with allow_insecure_loopback = true on the connection"
    )]
    PlainHttp { url: String },
}

/// The origins one connection may reach.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    templates: Vec<Template>,
    /// Filled templates, by template index (`None` for wildcards and unset
    /// settings).
    filled: Vec<Option<Origin>>,
    /// Origins learned from the token endpoint (`instance_url`).
    learned: Vec<Origin>,
    insecure_loopback: bool,
}

impl EgressPolicy {
    pub fn new(
        templates: &[String],
        settings: &BTreeMap<String, String>,
        insecure_loopback: bool,
    ) -> Result<EgressPolicy, TemplateError> {
        let templates = templates
            .iter()
            .map(|t| Template::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let filled = templates
            .iter()
            .map(|t| t.fill(settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy {
            templates,
            filled,
            learned: Vec::new(),
            insecure_loopback,
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

    /// The origin URL for the template at `index`, as the plugin should use it.
    pub fn egress_url(&self, index: usize) -> Option<String> {
        self.filled
            .get(index)
            .and_then(Option::as_ref)
            .map(|o| self.url_of(o))
    }

    /// Fills a URL template such as a token URL
    /// (`https://{domain}/services/oauth2/token`) and checks it against the
    /// policy.
    pub fn fill_url(
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
        self.check(&url).map_err(|e| e.to_string())?;
        Ok(url)
    }

    /// Checks one request URL (or redirect hop).
    pub fn check(&self, url: &Url) -> Result<(), Denied> {
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
        let allowed = self
            .filled
            .iter()
            .flatten()
            .chain(&self.learned)
            .find(|origin| origin.matches(&host, port));
        let Some(origin) = allowed else {
            return Err(Denied::HostNotAllowed {
                url: url.to_string(),
                origin: Origin { host, port }.to_string(),
                allowed: self.describe_allowed(),
            });
        };
        if scheme == "http" && !(self.insecure_loopback && origin.is_loopback()) {
            return Err(Denied::PlainHttp {
                url: url.to_string(),
            });
        }
        Ok(())
    }

    /// Admits the origin of an `instance_url` returned by the token
    /// endpoint, if a template vouches for it. Returns the origin URL the
    /// plugin should use.
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
        let vouched = self.filled.iter().flatten().any(|o| o == &origin)
            || self.templates.iter().any(|t| t.admits_learned(&origin));
        if !vouched {
            return Err(format!(
                "instance_url {instance_url:?} matches none of the egress templates ({})",
                self.describe_allowed()
            ));
        }
        if !self.learned.contains(&origin) {
            self.learned.push(origin.clone());
        }
        Ok(self.url_of(&origin))
    }

    fn describe_allowed(&self) -> String {
        let mut parts: Vec<String> = self
            .filled
            .iter()
            .flatten()
            .chain(&self.learned)
            .map(|o| self.url_of(o))
            .collect();
        parts.extend(
            self.templates
                .iter()
                .filter(|t| t.is_wildcard())
                .map(|t| format!("{} via instance_url", t.as_str())),
        );
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

    fn policy(templates: &[&str], pairs: &[(&str, &str)], insecure: bool) -> EgressPolicy {
        let templates: Vec<String> = templates.iter().map(|t| t.to_string()).collect();
        EgressPolicy::new(&templates, &settings(pairs), insecure).unwrap()
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
                false,
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
        for (url, allowed) in cases {
            let result = p.check(&Url::parse(url).unwrap());
            assert_eq!(result.is_ok(), *allowed, "{url}: {result:?}");
        }
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
        let url = |u: &str| Url::parse(u).unwrap();

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
        let url = Url::parse("https://acme.my.salesforce.com/services").unwrap();
        assert!(
            p.check(&url).is_err(),
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
        assert!(p.check(&url).is_ok());
        assert!(
            p.check(&Url::parse("https://other.my.salesforce.com/").unwrap())
                .is_err()
        );
    }

    #[test]
    fn explicit_templates_vouch_for_their_own_instance_url() {
        let mut p = policy(&["https://{domain}"], &[("domain", "127.0.0.1:9000")], true);
        assert_eq!(
            p.admit_learned("http://127.0.0.1:9000").as_deref(),
            Ok("http://127.0.0.1:9000")
        );
        assert!(p.admit_learned("http://127.0.0.1:9001").is_err());
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
    fn token_urls_are_filled_and_checked() {
        let s = settings(&[("domain", "127.0.0.1:9000")]);
        let p = EgressPolicy::new(&["https://{domain}".to_string()], &s, true).unwrap();
        assert_eq!(
            p.fill_url("https://{domain}/services/oauth2/token", &s)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/services/oauth2/token"
        );
        let error = p
            .fill_url("https://login.example.com/token", &s)
            .unwrap_err();
        assert!(error.contains("not among the hosts"), "{error}");
        let error = p.fill_url("https://{other}/token", &s).unwrap_err();
        assert!(error.contains("not set"), "{error}");
    }

    #[test]
    fn denials_name_the_url_and_what_is_allowed() {
        let p = policy(&["https://{domain}"], &[("domain", "a.example.com")], false);
        let error = p
            .check(&Url::parse("https://b.example.com/path").unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("https://b.example.com/path"), "{error}");
        assert!(error.contains("https://a.example.com"), "{error}");
    }
}
