//! What a component must look like to be loaded: its exports name a
//! compatible contract, its imports stay within what the host grants, and
//! its descriptor makes sense. Every check here turns into one line naming
//! the file and the reason; a refused file never stops the others.

use std::collections::BTreeSet;

use super::contract::{
    self, AttributeType, AuthScheme, Capability, Descriptor, MappingSource, OAUTH2_SECRETS,
    SettingKind,
};
use crate::broker::egress::Template;

/// The WASI interfaces Rust's standard library imports on wasm32-wasip2.
/// They are linked with nothing granted: no preopened directories, no
/// environment, no arguments, stdio into the log, no sockets.
const GRANTED_WASI: &[(&str, &[&str])] = &[
    ("wasi:io", &["error", "poll", "streams"]),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:clocks", &["wall-clock", "monotonic-clock"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    ("wasi:filesystem", &["types", "preopens"]),
];

/// The setting that names the type of record a connection writes, which
/// a connector declaring `convert` declares (see the contract's
/// `conversion`).
pub const RECORD_TYPE: &str = "record_type";

/// The interfaces of the contract package a connector may import.
const CONTRACT_IMPORTS: &[&str] = &["types", "http", "config", "log"];

/// What contract 0.2 added to the host's doors.
const CONTRACT_IMPORTS_0_2: &[&str] = &["cache", "quota"];

/// An interface name split into its parts: `wasi:cli/stdout@0.2.6`.
struct InterfaceName<'a> {
    package: &'a str,
    interface: &'a str,
    version: Option<semver::Version>,
}

fn split(name: &str) -> Option<InterfaceName<'_>> {
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(semver::Version::parse(version).ok()?)),
        None => (name, None),
    };
    let (package, interface) = path.split_once('/')?;
    Some(InterfaceName {
        package,
        interface,
        version,
    })
}

fn supported_list() -> String {
    contract::SUPPORTED_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the contract version a component exports its store from.
pub(crate) fn contract_version<'a>(
    exports: impl Iterator<Item = &'a str>,
) -> Result<semver::Version, String> {
    let mut found = Vec::new();
    for name in exports {
        if let Some(parts) = split(name)
            && parts.package == contract::PACKAGE
            && parts.interface == "identity-store"
        {
            found.push(parts.version);
        }
    }
    let version = match found.as_slice() {
        [] => {
            return Err(format!(
                "exports no {}/identity-store interface; is it a connector built against wit/?",
                contract::PACKAGE
            ));
        }
        [Some(version)] => version.clone(),
        [None] => {
            return Err(format!(
                "exports {}/identity-store without a version; this host speaks {}",
                contract::PACKAGE,
                supported_list()
            ));
        }
        _ => {
            return Err(format!(
                "exports {}/identity-store more than once",
                contract::PACKAGE
            ));
        }
    };
    if contract::SUPPORTED_VERSIONS
        .iter()
        .any(|supported| contract::compatible(supported, &version))
    {
        Ok(version)
    } else {
        Err(format!(
            "exports contract {}@{version}, but this host speaks {} {}; rebuild it against one of those (wit/)",
            contract::PACKAGE,
            contract::PACKAGE,
            supported_list()
        ))
    }
}

/// Refuses any import beyond the contract's doors and the WASI that Rust's
/// std needs.
pub(crate) fn check_imports<'a>(
    imports: impl Iterator<Item = &'a str>,
    contract: &semver::Version,
) -> Result<(), String> {
    let mut refused = BTreeSet::new();
    for name in imports {
        let allowed = match split(name) {
            Some(parts) if parts.package == contract::PACKAGE => {
                (CONTRACT_IMPORTS.contains(&parts.interface)
                    || (contract.minor >= 2 && CONTRACT_IMPORTS_0_2.contains(&parts.interface)))
                    && parts
                        .version
                        .as_ref()
                        .is_some_and(|v| contract::compatible(contract, v))
            }
            Some(parts) => {
                GRANTED_WASI.iter().any(|(package, interfaces)| {
                    *package == parts.package && interfaces.contains(&parts.interface)
                }) && parts
                    .version
                    .as_ref()
                    .is_some_and(|v| v.major == 0 && v.minor == 2)
            }
            None => false,
        };
        if !allowed {
            refused.insert(name.to_string());
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "imports {}, which this host does not grant; connectors reach the outside only through {}/http, config, cache, quota and log",
            refused.into_iter().collect::<Vec<_>>().join(", "),
            contract::PACKAGE
        ))
    }
}

fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

fn is_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Checks that a value is acceptable for a setting of `kind`.
pub fn check_value(kind: &SettingKind, value: &str) -> Result<(), String> {
    match kind {
        SettingKind::Text => Ok(()),
        SettingKind::Boolean if value == "true" || value == "false" => Ok(()),
        SettingKind::Boolean => Err(format!("expected true or false, got {value:?}")),
        SettingKind::Integer if value.parse::<i64>().is_ok() => Ok(()),
        SettingKind::Integer => Err(format!("expected a whole number, got {value:?}")),
        SettingKind::Choice(choices) if choices.iter().any(|c| c == value) => Ok(()),
        SettingKind::Choice(choices) => Err(format!(
            "expected one of {}, got {value:?}",
            choices
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks a descriptor for the mistakes that would otherwise surface later
/// as confusing failures. Returns it with duplicate capabilities removed.
pub(crate) fn check_descriptor(mut descriptor: Descriptor) -> Result<Descriptor, String> {
    let d = &descriptor;
    check_identity(d)?;
    check_settings(d)?;
    check_egress(d)?;
    check_auth(d)?;
    check_capabilities(d)?;
    check_attributes(d)?;
    let mut capabilities = Vec::new();
    for capability in descriptor.capabilities.drain(..) {
        if !capabilities.contains(&capability) {
            capabilities.push(capability);
        }
    }
    descriptor.capabilities = capabilities;
    Ok(descriptor)
}

/// A plugin name, and a semver version.
fn check_identity(d: &Descriptor) -> Result<(), String> {
    if !is_plugin_name(&d.name) {
        return Err(format!(
            "describes itself as {:?}; a plugin name is 1 to 64 lower-case letters, digits and dashes",
            d.name
        ));
    }
    semver::Version::parse(&d.version).map_err(|e| {
        format!(
            "plugin {} has version {:?}, which is not semver: {e}",
            d.name, d.version
        )
    })?;
    Ok(())
}

/// Settings: snake_case names, each once, choices that offer some, and
/// defaults of their kind.
fn check_settings(d: &Descriptor) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for setting in &d.settings {
        if !is_setting_name(&setting.name) {
            return Err(format!(
                "plugin {} declares setting {:?}; setting names are snake_case",
                d.name, setting.name
            ));
        }
        if !seen.insert(setting.name.as_str()) {
            return Err(format!(
                "plugin {} declares setting {} twice",
                d.name, setting.name
            ));
        }
        if let SettingKind::Choice(choices) = &setting.kind
            && choices.is_empty()
        {
            return Err(format!(
                "plugin {} declares choice setting {} with no choices",
                d.name, setting.name
            ));
        }
        if let Some(default) = &setting.default_value {
            check_value(&setting.kind, default).map_err(|e| {
                format!(
                    "plugin {} declares a bad default for setting {}: {e}",
                    d.name, setting.name
                )
            })?;
        }
    }
    Ok(())
}

/// Egress templates: well formed, filled only from non-secret settings.
fn check_egress(d: &Descriptor) -> Result<(), String> {
    for raw in &d.egress {
        let template = Template::parse(raw).map_err(|e| format!("plugin {}: {e}", d.name))?;
        for placeholder in template.placeholders() {
            match d.setting(placeholder) {
                Some(setting) if !setting.secret => {}
                Some(_) => {
                    return Err(format!(
                        "plugin {}: egress template {raw:?} uses secret setting {placeholder}",
                        d.name
                    ));
                }
                None => {
                    return Err(format!(
                        "plugin {}: egress template {raw:?} uses {{{placeholder}}}, which is not a declared setting",
                        d.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The auth scheme: a token URL under an egress template, and its
/// secrets declared secret.
fn check_auth(d: &Descriptor) -> Result<(), String> {
    match &d.auth {
        AuthScheme::None => {}
        AuthScheme::OAuth2 { token_url } => {
            let within = d.egress.iter().any(|t| {
                let t = t.trim_end_matches('/');
                token_url == t || token_url.starts_with(&format!("{t}/"))
            });
            if !within {
                return Err(format!(
                    "plugin {}: token URL {token_url:?} is not under any egress template",
                    d.name
                ));
            }
            for name in OAUTH2_SECRETS {
                if !d.setting(name).is_some_and(|s| s.secret) {
                    return Err(format!(
                        "plugin {}: OAuth 2.0 connectors declare {name} as a secret setting",
                        d.name
                    ));
                }
            }
        }
        AuthScheme::Bearer { secret } => {
            if !d.setting(secret).is_some_and(|s| s.secret) {
                return Err(format!(
                    "plugin {}: the bearer token setting {secret} must be declared secret",
                    d.name
                ));
            }
        }
    }
    Ok(())
}

/// What some capabilities need: `convert` a `record_type` setting, and
/// `lookup` a match attribute.
fn check_capabilities(d: &Descriptor) -> Result<(), String> {
    // A conversion names the type to become by the target connection's
    // `record_type`, as the contract defines it: the host knows no store's
    // types.
    if d.capabilities.contains(&Capability::Convert)
        && d.setting(RECORD_TYPE).is_none_or(|s| s.secret)
    {
        return Err(format!(
            "plugin {} declares convert but no non-secret setting {RECORD_TYPE}; the contract names the type a conversion asks for by it",
            d.name
        ));
    }
    if d.has(Capability::Lookup) && d.match_attribute.trim().is_empty() {
        return Err(format!(
            "plugin {} declares lookup but no match attribute",
            d.name
        ));
    }
    Ok(())
}

/// Declared attributes: each once, the match attribute text, and a
/// default mapping of several templates only into a list.
fn check_attributes(d: &Descriptor) -> Result<(), String> {
    let mut declared = BTreeSet::new();
    for attribute in &d.attributes {
        if attribute.name.trim().is_empty() || !declared.insert(attribute.name.to_ascii_lowercase())
        {
            return Err(format!(
                "plugin {} declares attribute {:?} twice (names compare without case), or with no name",
                d.name, attribute.name
            ));
        }
    }
    // Lookups match on text: a match attribute of another type could never
    // be looked up, and every person would fail.
    if let Some(matched) = d.attribute(&d.match_attribute)
        && matched.kind != AttributeType::Text
    {
        return Err(format!(
            "plugin {}: the match attribute {} is declared {}; it must be text",
            d.name, d.match_attribute, matched.kind
        ));
    }
    for mapping in &d.default_mappings {
        let list_source = matches!(mapping.source, MappingSource::Templates(_));
        let list_target = d
            .attribute(&mapping.target)
            .is_some_and(|a| a.kind == AttributeType::TextList);
        if list_source && !list_target {
            return Err(format!(
                "plugin {}: the default mapping for {} is a list of templates, but {} is not declared a text-list attribute",
                d.name, mapping.target, mapping.target
            ));
        }
    }
    Ok(())
}

/// Classifies a file by its header before handing it to the compiler, so
/// that a core module or a stray file gets a precise reason.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("is not a WebAssembly file".into());
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Err(
            "is a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2`"
                .into(),
        ),
        [_, _, 1, 0] => Ok(()),
        _ => Err("has an unknown WebAssembly version or layer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD_IMPORTS: &[&str] = &[
        "wasi:cli/environment@0.2.6",
        "wasi:cli/exit@0.2.0",
        "wasi:io/error@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:cli/stderr@0.2.6",
        "wasi:filesystem/types@0.2.6",
        "wasi:filesystem/preopens@0.2.6",
        "wasi:clocks/wall-clock@0.2.6",
        "wasi:random/random@0.2.6",
    ];

    fn v010() -> semver::Version {
        semver::Version::new(0, 1, 0)
    }

    #[test]
    fn std_wasi_and_contract_imports_are_granted() {
        let mut imports = STD_IMPORTS.to_vec();
        imports.extend([
            "provisioner:identity-store/http@0.1.0",
            "provisioner:identity-store/config@0.1.0",
            "provisioner:identity-store/log@0.1.0",
            "provisioner:identity-store/types@0.1.0",
        ]);
        assert_eq!(check_imports(imports.into_iter(), &v010()), Ok(()));
        let mut imports = STD_IMPORTS.to_vec();
        imports.extend([
            "provisioner:identity-store/http@0.2.0",
            "provisioner:identity-store/cache@0.2.0",
            "provisioner:identity-store/types@0.2.0",
        ]);
        let v020 = semver::Version::new(0, 2, 0);
        assert_eq!(check_imports(imports.into_iter(), &v020), Ok(()));
    }

    #[test]
    fn the_cache_is_a_door_of_0_2_only() {
        let error = check_imports(
            ["provisioner:identity-store/cache@0.1.0"].into_iter(),
            &v010(),
        )
        .unwrap_err();
        assert!(error.contains("cache@0.1.0"), "{error}");
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        for import in [
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/instance-network@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:cli/stdout@0.3.0",
            "wasi:cli/stdout",
            "provisioner:identity-store/http@0.2.0",
            "provisioner:identity-store/secrets@0.1.0",
            "acme:backdoor/open@1.0.0",
            "not-an-interface",
        ] {
            let error = check_imports([import].into_iter(), &v010()).unwrap_err();
            assert!(error.contains(import), "{error}");
            assert!(error.contains("does not grant"), "{error}");
        }
    }

    #[test]
    fn contract_versions_are_matched_by_semver() {
        let ok = contract_version(["provisioner:identity-store/identity-store@0.1.3"].into_iter());
        assert_eq!(ok, Ok(semver::Version::new(0, 1, 3)));
        let ok = contract_version(["provisioner:identity-store/identity-store@0.2.1"].into_iter());
        assert_eq!(ok, Ok(semver::Version::new(0, 2, 1)));
        let newer =
            contract_version(["provisioner:identity-store/identity-store@0.3.0"].into_iter())
                .unwrap_err();
        assert!(
            newer.contains("@0.3.0")
                && newer.contains("speaks provisioner:identity-store 0.2.0, 0.1.0"),
            "{newer}"
        );
        let none = contract_version(["wasi:cli/run@0.2.0"].into_iter()).unwrap_err();
        assert!(none.contains("exports no"), "{none}");
    }

    #[test]
    fn headers_say_what_the_file_is() {
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(
            check_header(b"\0asm\x01\0\0\0rest")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check_header(b"#!/bin/sh\n")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
        assert!(check_header(b"").is_err());
    }

    fn spec(name: &str, kind: AttributeType) -> contract::AttributeSpec {
        contract::AttributeSpec {
            name: name.into(),
            kind,
            case_exact: true,
            description: String::new(),
        }
    }

    fn descriptor() -> Descriptor {
        Descriptor {
            name: "store".into(),
            version: "1.0.0".into(),
            description: String::new(),
            settings: vec![contract::SettingSpec {
                name: "domain".into(),
                description: String::new(),
                kind: SettingKind::Text,
                required: true,
                secret: false,
                default_value: None,
            }],
            capabilities: vec![Capability::Create, Capability::Create, Capability::Lookup],
            egress: vec!["https://{domain}".into()],
            attributes: Vec::new(),
            auth: AuthScheme::None,
            match_attribute: "email".into(),
            default_mappings: Vec::new(),
        }
    }

    #[test]
    fn good_descriptors_pass_with_capabilities_deduplicated() {
        let checked = check_descriptor(descriptor()).unwrap();
        assert_eq!(
            checked.capabilities,
            vec![Capability::Create, Capability::Lookup]
        );
    }

    #[test]
    fn bad_descriptors_are_refused_with_the_reason() {
        type Break = fn(&mut Descriptor);
        let cases: &[(&str, Break)] = &[
            ("plugin name", |d| d.name = "Bad Name".into()),
            ("not semver", |d| d.version = "one".into()),
            ("snake_case", |d| d.settings[0].name = "Domain".into()),
            ("not a declared setting", |d| {
                d.egress = vec!["https://{host}".into()]
            }),
            ("must start with https://", |d| {
                d.egress = vec!["http://{domain}".into()]
            }),
            (
                "declares convert but no non-secret setting record_type",
                |d| d.capabilities.push(Capability::Convert),
            ),
            (
                "declares convert but no non-secret setting record_type",
                |d| {
                    d.capabilities.push(Capability::Convert);
                    d.settings.push(contract::SettingSpec {
                        name: RECORD_TYPE.into(),
                        description: String::new(),
                        kind: SettingKind::Text,
                        required: false,
                        secret: true,
                        default_value: None,
                    });
                },
            ),
            ("not under any egress template", |d| {
                d.auth = AuthScheme::OAuth2 {
                    token_url: "https://login.example.com/token".into(),
                }
            }),
            ("declare client_id as a secret", |d| {
                d.auth = AuthScheme::OAuth2 {
                    token_url: "https://{domain}/token".into(),
                }
            }),
            ("must be declared secret", |d| {
                d.auth = AuthScheme::Bearer {
                    secret: "domain".into(),
                }
            }),
            ("no match attribute", |d| d.match_attribute = " ".into()),
            ("bad default", |d| {
                d.settings[0].kind = SettingKind::Integer;
                d.settings[0].default_value = Some("many".into());
            }),
            ("declares attribute \"EMAIL\" twice", |d| {
                d.attributes = vec![
                    spec("email", AttributeType::Text),
                    spec("EMAIL", AttributeType::Text),
                ]
            }),
            ("must be text", |d| {
                d.attributes = vec![spec("Email", AttributeType::TextList)]
            }),
            ("is not declared a text-list attribute", |d| {
                d.default_mappings = vec![contract::Mapping {
                    target: "Phones".into(),
                    source: MappingSource::Templates(vec!["{phone}".into()]),
                    apply_on_update: true,
                }]
            }),
        ];
        for (needle, break_it) in cases {
            let mut d = descriptor();
            break_it(&mut d);
            let error = check_descriptor(d).unwrap_err();
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
    }

    #[test]
    fn values_are_checked_against_their_kind() {
        let choice = SettingKind::Choice(vec!["Lead".into(), "Contact".into()]);
        assert!(check_value(&choice, "Lead").is_ok());
        assert!(
            check_value(&choice, "lead")
                .unwrap_err()
                .contains("\"Contact\"")
        );
        assert!(check_value(&SettingKind::Boolean, "yes").is_err());
        assert!(check_value(&SettingKind::Integer, "62").is_ok());
        assert!(check_value(&SettingKind::Integer, "6.2").is_err());
    }
}
