//! A descriptor builder that refuses, in a unit test rather than at load
//! time in the host, the descriptors the host would refuse.

use std::collections::BTreeSet;

use crate::{
    AttributeSpec, AttributeType, AuthScheme, Capability, Descriptor, Mapping, MappingSource,
    Oauth2, Setting, SettingKind,
};

/// Where a mapped value comes from; see the WIT's `mapping-source`.
pub struct Source;

impl Source {
    /// A directory attribute, e.g. `email`.
    pub fn attribute(name: &str) -> MappingSource {
        MappingSource::Attribute(name.into())
    }

    /// The same text for everyone.
    pub fn constant(value: &str) -> MappingSource {
        MappingSource::Constant(value.into())
    }

    /// `{given_name} {family_name}`.
    pub fn template(text: &str) -> MappingSource {
        MappingSource::Template(text.into())
    }

    /// One template per element of a `text-list` target.
    pub fn templates<'a>(texts: impl IntoIterator<Item = &'a str>) -> MappingSource {
        MappingSource::Templates(texts.into_iter().map(String::from).collect())
    }
}

/// The secret settings of OAuth 2.0, which the host holds.
const OAUTH2_SECRETS: [(&str, &str, bool); 4] = [
    ("client_id", "OAuth 2.0 client id", true),
    ("client_secret", "OAuth 2.0 client secret", true),
    ("access_token", "OAuth 2.0 access token", false),
    ("refresh_token", "OAuth 2.0 refresh token", false),
];

/// Builds a [`Descriptor`].
///
/// ```
/// use provisioner_connector::{Capability, DescriptorBuilder, Source};
///
/// let builder = DescriptorBuilder::new("acme-people", "1.0.0", "People in Acme")
///     .text_setting("host", "Host name of the Acme API", true)
///     .egress("https://{host}")
///     .oauth2("https://{host}/oauth/token")
///     .capabilities([Capability::Create, Capability::Lookup])
///     .match_attribute("email")
///     .map("email", Source::attribute("email"));
/// builder.check().unwrap();
/// let descriptor = builder.build();
/// assert_eq!(descriptor.settings.len(), 5); // host and the four OAuth 2.0 secrets
/// ```
#[derive(Debug, Clone)]
pub struct DescriptorBuilder {
    descriptor: Descriptor,
}

/// What is wrong with a descriptor, one entry per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct DescriptorError(pub Vec<String>);

impl DescriptorBuilder {
    /// `name` is the plugin name operators write in `plugin = "..."`;
    /// `version` is semver (pass `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: &str, version: &str, description: &str) -> DescriptorBuilder {
        DescriptorBuilder {
            descriptor: Descriptor {
                name: name.into(),
                version: version.into(),
                description: description.into(),
                settings: Vec::new(),
                capabilities: Vec::new(),
                egress: Vec::new(),
                auth: AuthScheme::None,
                match_attribute: String::new(),
                default_mappings: Vec::new(),
                attributes: Vec::new(),
            },
        }
    }

    /// Any setting, as the WIT's `setting` record.
    pub fn setting(mut self, setting: Setting) -> Self {
        self.descriptor.settings.push(setting);
        self
    }

    fn plain(
        self,
        name: &str,
        description: &str,
        kind: SettingKind,
        required: bool,
        default: Option<&str>,
    ) -> Self {
        self.setting(Setting {
            name: name.into(),
            description: description.into(),
            kind,
            required,
            secret: false,
            default_value: default.map(String::from),
        })
    }

    /// A text setting, e.g. a host name.
    pub fn text_setting(self, name: &str, description: &str, required: bool) -> Self {
        self.plain(name, description, SettingKind::Text, required, None)
    }

    /// An optional whole-number setting with a default.
    pub fn integer_setting(self, name: &str, description: &str, default: i64) -> Self {
        let default = default.to_string();
        self.plain(
            name,
            description,
            SettingKind::Integer,
            false,
            Some(&default),
        )
    }

    /// An optional flag with a default.
    pub fn boolean_setting(self, name: &str, description: &str, default: bool) -> Self {
        let default = default.to_string();
        self.plain(
            name,
            description,
            SettingKind::Boolean,
            false,
            Some(&default),
        )
    }

    /// One of `choices`, defaulting to the first.
    pub fn choice_setting(self, name: &str, description: &str, choices: &[&str]) -> Self {
        let kind = SettingKind::Choice(choices.iter().map(|c| c.to_string()).collect());
        self.plain(name, description, kind, false, choices.first().copied())
    }

    /// Gives the setting added last a default, e.g. an API version.
    pub fn with_default(mut self, value: &str) -> Self {
        if let Some(setting) = self.descriptor.settings.last_mut() {
            setting.default_value = Some(value.into());
        }
        self
    }

    /// A setting the host keeps and never shows the connector.
    pub fn secret_setting(self, name: &str, description: &str, required: bool) -> Self {
        self.setting(Setting {
            name: name.into(),
            description: description.into(),
            kind: SettingKind::Text,
            required,
            secret: true,
            default_value: None,
        })
    }

    /// An origin template the connector may reach, e.g. `https://{host}`;
    /// its index (in call order) is what [`crate::http::Client::egress`]
    /// takes.
    pub fn egress(mut self, template: &str) -> Self {
        self.descriptor.egress.push(template.into());
        self
    }

    /// OAuth 2.0 held by the host; declares the four secret settings.
    pub fn oauth2(mut self, token_url: &str) -> Self {
        self.descriptor.auth = AuthScheme::Oauth2(Oauth2 {
            token_url: token_url.into(),
        });
        for (name, description, required) in OAUTH2_SECRETS {
            if !self.descriptor.settings.iter().any(|s| s.name == name) {
                self = self.secret_setting(name, description, required);
            }
        }
        self
    }

    /// A static bearer token in the secret setting `secret`, declared here.
    pub fn bearer(mut self, secret: &str) -> Self {
        self.descriptor.auth = AuthScheme::Bearer(secret.into());
        if !self.descriptor.settings.iter().any(|s| s.name == secret) {
            self = self.secret_setting(secret, "API token", true);
        }
        self
    }

    /// Operations the connector performs; the host sends no other.
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.descriptor.capabilities.extend(capabilities);
        self
    }

    /// The store attribute that finds an existing record before a create.
    pub fn match_attribute(mut self, name: &str) -> Self {
        self.descriptor.match_attribute = name.into();
        self
    }

    /// A default mapping written on create and update.
    pub fn map(mut self, target: &str, source: MappingSource) -> Self {
        self.descriptor.default_mappings.push(Mapping {
            target: target.into(),
            source,
            apply_on_update: true,
        });
        self
    }

    /// Default mappings from directory attributes of the same names, for
    /// a store that names people's attributes as the directory does.
    pub fn map_same<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        for name in names {
            self = self.map(name, Source::attribute(name));
        }
        self
    }

    /// A default mapping written on create only.
    pub fn map_on_create(mut self, target: &str, source: MappingSource) -> Self {
        self.descriptor.default_mappings.push(Mapping {
            target: target.into(),
            source,
            apply_on_update: false,
        });
        self
    }

    /// Declares a target attribute's type and whether the store compares
    /// it with case; see the WIT's `attribute-spec`.
    pub fn attribute(mut self, name: &str, kind: AttributeType, case_exact: bool) -> Self {
        self.descriptor.attributes.push(AttributeSpec {
            name: name.into(),
            type_: kind,
            case_exact,
            description: String::new(),
        });
        self
    }

    /// The descriptor. Call [`check`](Self::check) in a unit test: the
    /// host refuses, at load time, what it finds.
    pub fn build(self) -> Descriptor {
        self.descriptor
    }

    /// The problems the host would refuse the descriptor for, and one it
    /// lets pass but that is a mistake: `enable` without `disable`.
    pub fn check(&self) -> Result<(), DescriptorError> {
        check(&self.descriptor)
    }
}

fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn fits(kind: &SettingKind, value: &str) -> bool {
    match kind {
        SettingKind::Text => true,
        SettingKind::Boolean => value == "true" || value == "false",
        SettingKind::Integer => value.parse::<i64>().is_ok(),
        SettingKind::Choice(choices) => choices.iter().any(|c| c == value),
    }
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

/// The checks of [`DescriptorBuilder::check`], for a descriptor built by
/// hand.
pub fn check(d: &Descriptor) -> Result<(), DescriptorError> {
    let mut problems = Vec::new();
    if !is_plugin_name(&d.name) {
        problems.push(format!(
            "name {:?}: 1 to 64 lower-case letters, digits and dashes",
            d.name
        ));
    }
    if !is_semver(&d.version) {
        problems.push(format!("version {:?} is not semver (1.2.3)", d.version));
    }
    let mut names = BTreeSet::new();
    for setting in &d.settings {
        let snake = setting.name.starts_with(|c: char| c.is_ascii_lowercase())
            && setting
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            problems.push(format!("setting {:?} is not snake_case", setting.name));
        }
        if !names.insert(setting.name.as_str()) {
            problems.push(format!("setting {} is declared twice", setting.name));
        }
        if matches!(&setting.kind, SettingKind::Choice(c) if c.is_empty()) {
            problems.push(format!(
                "setting {} is a choice with no choices",
                setting.name
            ));
        }
        if let Some(default) = &setting.default_value
            && !fits(&setting.kind, default)
        {
            problems.push(format!(
                "setting {} has a bad default {default:?} for its kind",
                setting.name
            ));
        }
    }
    let setting = |name: &str| d.settings.iter().find(|s| s.name == name);
    for template in &d.egress {
        if !template.starts_with("https://") {
            problems.push(format!(
                "egress {template:?} must start with https:// (the operator allows plain HTTP to a loopback emulator)"
            ));
        }
        for name in placeholders(template) {
            match setting(name) {
                Some(s) if s.secret => {
                    problems.push(format!("egress {template:?} uses secret setting {name}"))
                }
                Some(_) => {}
                None => problems.push(format!(
                    "egress {template:?} uses {{{name}}}, which is not a declared setting"
                )),
            }
        }
    }
    match &d.auth {
        AuthScheme::None => {}
        AuthScheme::Oauth2(oauth) => {
            let within = d.egress.iter().any(|t| {
                let t = t.trim_end_matches('/');
                oauth.token_url == t || oauth.token_url.starts_with(&format!("{t}/"))
            });
            if !within {
                problems.push(format!(
                    "token URL {:?} is not under any egress template",
                    oauth.token_url
                ));
            }
            for (name, _, _) in OAUTH2_SECRETS {
                if !setting(name).is_some_and(|s| s.secret) {
                    problems.push(format!("OAuth 2.0 needs {name} as a secret setting"));
                }
            }
        }
        AuthScheme::Bearer(secret) => {
            if !setting(secret).is_some_and(|s| s.secret) {
                problems.push(format!("the bearer token setting {secret} must be secret"));
            }
        }
    }
    let has = |c: Capability| d.capabilities.contains(&c);
    if has(Capability::Lookup) && d.match_attribute.trim().is_empty() {
        problems.push("lookup is declared but no match attribute".into());
    }
    if !d.match_attribute.is_empty()
        && has(Capability::Create)
        && !d
            .default_mappings
            .iter()
            .any(|m| m.target.eq_ignore_ascii_case(&d.match_attribute))
    {
        problems.push(format!(
            "no default mapping gives {}, the match attribute",
            d.match_attribute
        ));
    }
    if has(Capability::Enable) && !has(Capability::Disable) {
        problems.push("enable is declared without disable".into());
    }
    if has(Capability::Convert)
        && !d
            .settings
            .iter()
            .any(|s| s.name == "record_type" && !s.secret)
    {
        problems.push(
            "convert is declared without a non-secret setting record_type, by which the host names the type a conversion asks for".into(),
        );
    }
    let mut declared = BTreeSet::new();
    for attribute in &d.attributes {
        if attribute.name.trim().is_empty() {
            problems.push("an attribute is declared with no name".into());
        }
        if !declared.insert(attribute.name.to_ascii_lowercase()) {
            problems.push(format!(
                "attribute {} is declared twice (names compare without case)",
                attribute.name
            ));
        }
        if attribute.name.eq_ignore_ascii_case(&d.match_attribute)
            && attribute.type_ != AttributeType::Text
        {
            problems.push(format!(
                "the match attribute {} must be text, not {:?}",
                attribute.name, attribute.type_
            ));
        }
    }
    for mapping in &d.default_mappings {
        let list_target = d.attributes.iter().any(|a| {
            a.name.eq_ignore_ascii_case(&mapping.target) && a.type_ == AttributeType::TextList
        });
        if matches!(mapping.source, MappingSource::Templates(_)) && !list_target {
            problems.push(format!(
                "the mapping for {} is a list of templates, but {} is not declared text-list",
                mapping.target, mapping.target
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DescriptorError(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_descriptors_are_refused_with_each_reason() {
        let error = DescriptorBuilder::new("Bad Name", "1.0", "")
            .text_setting("Host", "", true)
            .egress("https://{tenant}")
            .oauth2("https://elsewhere/token")
            .capabilities([
                Capability::Lookup,
                Capability::Create,
                Capability::Enable,
                Capability::Convert,
            ])
            .map("emails", Source::templates(["{email}"]))
            .check()
            .unwrap_err();
        let text = error.to_string();
        for expected in [
            "name \"Bad Name\"",
            "version \"1.0\" is not semver",
            "setting \"Host\" is not snake_case",
            "uses {tenant}, which is not a declared setting",
            "token URL \"https://elsewhere/token\" is not under any egress template",
            "lookup is declared but no match attribute",
            "enable is declared without disable",
            "convert is declared without a non-secret setting record_type",
            "emails is not declared text-list",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from {text}");
        }
    }

    #[test]
    fn a_consistent_descriptor_passes() {
        let builder = DescriptorBuilder::new("scim-users", "0.2.0-rc.1", "SCIM users")
            .text_setting("base_url", "", true)
            .egress("https://{base_url}")
            .bearer("token")
            .capabilities([
                Capability::Create,
                Capability::Lookup,
                Capability::Disable,
                Capability::Enable,
            ])
            .match_attribute("userName")
            .map("userName", Source::attribute("email"))
            .map("emails", Source::templates(["{email}"]))
            .attribute("emails", AttributeType::TextList, false);
        assert_eq!(builder.check(), Ok(()));
        assert!(matches!(builder.build().auth, AuthScheme::Bearer(ref s) if s == "token"));
    }
}
