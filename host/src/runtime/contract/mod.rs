//! The connector contract as the host sees it, independent of any one WIT
//! version.
//!
//! Each supported contract version has a module ([`v0_1_0`], [`v0_2_0`])
//! that generates wasmtime bindings from `wit/vX.Y.Z/` and converts its
//! types to and from the ones here. The rest of the host only ever sees
//! these types, which are the newest contract's; an older version's module
//! adapts (a 0.1 connector has no groups, no `enable` and no list values,
//! and its descriptor says so).

mod imports;
pub(crate) mod v0_1_0;
pub(crate) mod v0_2_0;

use imports::{brokered_imports, call, shared_exports};

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

use crate::runtime::sandbox::PluginState;

/// A component pre-instantiated with the bindings of the contract version
/// it exports: the one place that knows which versions there are. A new
/// version adds a variant here and its module beside `v0_2_0`; the rest of
/// the host keeps calling these methods with the types below.
pub(crate) enum Bindings {
    V0_1_0(v0_1_0::BindingsPre<PluginState>),
    V0_2_0(v0_2_0::BindingsPre<PluginState>),
}

/// A dispatch over [`Bindings`] for the calls every version has.
macro_rules! each_version {
    ($bindings:expr, |$pre:ident| $call:expr) => {
        match $bindings {
            Bindings::V0_1_0($pre) => $call,
            Bindings::V0_2_0($pre) => $call,
        }
    };
}

impl Bindings {
    /// Adds the imports of every version this host speaks.
    pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        v0_1_0::add_to_linker(linker)?;
        v0_2_0::add_to_linker(linker)
    }

    /// The bindings for `version`, which discovery found compatible with
    /// one of [`SUPPORTED_VERSIONS`].
    pub(crate) fn new(
        version: &semver::Version,
        pre: InstancePre<PluginState>,
    ) -> wasmtime::Result<Bindings> {
        match (version.major, version.minor) {
            (0, 1) => Ok(Bindings::V0_1_0(v0_1_0::BindingsPre::new(pre)?)),
            (0, 2) => Ok(Bindings::V0_2_0(v0_2_0::BindingsPre::new(pre)?)),
            _ => Err(wasmtime::Error::msg(format!(
                "this host has no bindings for contract {version}"
            ))),
        }
    }

    pub(crate) async fn describe(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Descriptor> {
        each_version!(self, |pre| pre.describe(store).await)
    }

    pub(crate) async fn test_connection(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Result<ConnectionReport, StoreError>> {
        each_version!(self, |pre| pre.test_connection(store).await)
    }

    pub(crate) async fn apply(
        &self,
        store: &mut Store<PluginState>,
        operations: Vec<Operation>,
    ) -> wasmtime::Result<Vec<Result<Outcome, StoreError>>> {
        each_version!(self, |pre| pre.apply(store, operations).await)
    }

    pub(crate) async fn lookup(
        &self,
        store: &mut Store<PluginState>,
        attribute: &str,
        values: &[String],
    ) -> wasmtime::Result<Result<Vec<Match>, StoreError>> {
        each_version!(self, |pre| pre.lookup(store, attribute, values).await)
    }

    pub(crate) async fn list(
        &self,
        store: &mut Store<PluginState>,
        cursor: Option<&str>,
    ) -> wasmtime::Result<Result<Page, StoreError>> {
        each_version!(self, |pre| pre.list(store, cursor).await)
    }
}

impl Bindings {
    /// Only called for a plugin that declares [`Capability::Groups`], which
    /// a 0.1 descriptor cannot.
    pub(crate) async fn apply_groups(
        &self,
        store: &mut Store<PluginState>,
        operations: Vec<GroupOperation>,
    ) -> wasmtime::Result<Vec<Result<Outcome, StoreError>>> {
        match self {
            Bindings::V0_1_0(_) => Ok(operations
                .iter()
                .map(|_| Err(StoreError::Unsupported(NO_GROUPS_IN_0_1.into())))
                .collect()),
            Bindings::V0_2_0(pre) => pre.apply_groups(store, operations).await,
        }
    }

    pub(crate) async fn lookup_groups(
        &self,
        store: &mut Store<PluginState>,
        display_names: &[String],
    ) -> wasmtime::Result<Result<Vec<Group>, StoreError>> {
        match self {
            Bindings::V0_1_0(_) => Ok(Err(StoreError::Unsupported(NO_GROUPS_IN_0_1.into()))),
            Bindings::V0_2_0(pre) => pre.lookup_groups(store, display_names).await,
        }
    }

    pub(crate) async fn list_groups(
        &self,
        store: &mut Store<PluginState>,
        cursor: Option<&str>,
    ) -> wasmtime::Result<Result<GroupPage, StoreError>> {
        match self {
            Bindings::V0_1_0(_) => Ok(Err(StoreError::Unsupported(NO_GROUPS_IN_0_1.into()))),
            Bindings::V0_2_0(pre) => pre.list_groups(store, cursor).await,
        }
    }

    pub(crate) async fn discover_schema(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Result<Vec<AttributeSpec>, StoreError>> {
        match self {
            Bindings::V0_1_0(_) => Ok(Err(StoreError::Unsupported(
                "contract 0.1 has no schema discovery".into(),
            ))),
            Bindings::V0_2_0(pre) => pre.discover_schema(store).await,
        }
    }
}

const NO_GROUPS_IN_0_1: &str = "contract 0.1 has no groups";

/// A batch's answers in the version-independent types.
fn answers<O: Into<Outcome>, E: Into<StoreError>>(
    answers: Vec<Result<O, E>>,
) -> Vec<Result<Outcome, StoreError>> {
    answers
        .into_iter()
        .map(|answer| answer.map(Into::into).map_err(Into::into))
        .collect()
}

/// The contract versions this host can load, newest first.
pub const SUPPORTED_VERSIONS: &[semver::Version] =
    &[semver::Version::new(0, 2, 0), semver::Version::new(0, 1, 0)];

/// The WIT package every connector exports its store from.
pub const PACKAGE: &str = "provisioner:identity-store";

/// True when a component built against `candidate` can be loaded by a host
/// that speaks `supported`: same major version, and for 0.x the same minor
/// version, as semver's caret rule says.
pub fn compatible(supported: &semver::Version, candidate: &semver::Version) -> bool {
    semver::VersionReq::parse(&format!("^{supported}"))
        .map(|req| {
            req.matches(candidate)
                || semver::VersionReq::parse(&format!("^{candidate}"))
                    .is_ok_and(|back| back.matches(supported))
        })
        .unwrap_or(false)
}

/// One attribute value, as the store should hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Value {
    Null,
    Text(String),
    Boolean(bool),
    Integer(i64),
    /// Several texts in order (contract 0.2): a multi-valued attribute.
    TextList(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub value: Value,
}

/// Why a store operation failed, as the connector classified it. The class
/// decides what the host does next; connectors never retry on their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "class")]
pub enum StoreError {
    #[error("transient: {message}{}", retry_after.map(|d| format!(" (retry after {} ms)", d.as_millis())).unwrap_or_default())]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("rejected: {code}: {message}{}", if fields.is_empty() { String::new() } else { format!(" (fields: {})", fields.join(", ")) })]
    Rejected {
        code: String,
        message: String,
        fields: Vec<String>,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The record changed since the version the host sent (contract 0.2).
    #[error("conflict: {0}")]
    Conflict(String),
}

/// How the host validates a setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "choices")]
pub enum SettingKind {
    Text,
    Boolean,
    Integer,
    Choice(Vec<String>),
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingKind::Text => f.write_str("text"),
            SettingKind::Boolean => f.write_str("boolean"),
            SettingKind::Integer => f.write_str("integer"),
            SettingKind::Choice(choices) => write!(f, "one of {}", choices.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingSpec {
    pub name: String,
    pub description: String,
    pub kind: SettingKind,
    pub required: bool,
    pub secret: bool,
    pub default_value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Create,
    Update,
    Disable,
    Delete,
    Lookup,
    List,
    Convert,
    /// Contract 0.2: reactivate a disabled record.
    Enable,
    /// Contract 0.2: groups.
    Groups,
    /// Contract 0.2: schema discovery.
    Schema,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Create => "create",
            Capability::Update => "update",
            Capability::Disable => "disable",
            Capability::Delete => "delete",
            Capability::Lookup => "lookup",
            Capability::List => "list",
            Capability::Convert => "convert",
            Capability::Enable => "enable",
            Capability::Groups => "groups",
            Capability::Schema => "schema",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "scheme")]
pub enum AuthScheme {
    None,
    #[serde(rename = "oauth2")]
    OAuth2 {
        token_url: String,
    },
    Bearer {
        secret: String,
    },
}

impl AuthScheme {
    /// The secret settings the host itself needs for this scheme.
    pub fn secret_names(&self) -> &'static [&'static str] {
        match self {
            AuthScheme::None | AuthScheme::Bearer { .. } => &[],
            AuthScheme::OAuth2 { .. } => OAUTH2_SECRETS,
        }
    }
}

/// The secret settings an OAuth 2.0 connector declares and the host holds.
pub const OAUTH2_SECRETS: &[&str] = &[
    "client_id",
    "client_secret",
    "access_token",
    "refresh_token",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum MappingSource {
    Attribute(String),
    Constant(String),
    Template(String),
    /// One template per element of a list (contract 0.2).
    Templates(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub target: String,
    pub source: MappingSource,
    pub apply_on_update: bool,
}

/// What a connector says about itself; see the WIT's `descriptor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub description: String,
    pub settings: Vec<SettingSpec>,
    pub capabilities: Vec<Capability>,
    pub egress: Vec<String>,
    pub auth: AuthScheme,
    pub match_attribute: String,
    pub default_mappings: Vec<Mapping>,
    /// Target attributes whose type or comparison is not plain text
    /// (contract 0.2; empty for 0.1).
    pub attributes: Vec<AttributeSpec>,
}

/// The type of a target attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttributeType {
    Text,
    Boolean,
    Integer,
    TextList,
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttributeType::Text => "text",
            AttributeType::Boolean => "boolean",
            AttributeType::Integer => "integer",
            AttributeType::TextList => "text-list",
        })
    }
}

/// A target attribute's type and comparison rule; see the WIT's
/// `attribute-spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    pub case_exact: bool,
    pub description: String,
}

impl Descriptor {
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    pub fn setting(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// What the descriptor declares about a target attribute, if anything.
    /// Names compare without case, as mapping targets do.
    pub fn attribute(&self, name: &str) -> Option<&AttributeSpec> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The capabilities as an operator reads them: "create, update, ...".
    pub fn capability_list(&self) -> String {
        self.capabilities
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A descriptor with nothing but a name, capabilities and an auth
    /// scheme, for the unit tests of what reads one.
    #[cfg(test)]
    pub(crate) fn for_tests(capabilities: &[Capability], auth: AuthScheme) -> Descriptor {
        Descriptor {
            name: "store".into(),
            version: "1.2.3".into(),
            description: String::new(),
            settings: Vec::new(),
            capabilities: capabilities.to_vec(),
            egress: Vec::new(),
            auth,
            match_attribute: "Email".into(),
            default_mappings: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// What a successful Test Connection learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    pub summary: String,
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Operation {
    Create {
        attributes: Vec<Attribute>,
    },
    Update {
        id: String,
        attributes: Vec<Attribute>,
        /// Write only if the record is still at this version (contract 0.2).
        version: Option<String>,
    },
    Disable {
        id: String,
    },
    /// Reactivate, writing `attributes` too (contract 0.2).
    Enable {
        id: String,
        attributes: Vec<Attribute>,
        version: Option<String>,
    },
    Delete {
        id: String,
    },
    Convert {
        id: String,
        target_type: String,
        attributes: Vec<Attribute>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub id: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    pub value: String,
    pub id: String,
    pub attributes: Vec<Attribute>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    pub id: String,
    pub attributes: Vec<Attribute>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub records: Vec<StoredRecord>,
    pub next_cursor: Option<String>,
}

/// A group in the store (contract 0.2); members are record ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub members: Vec<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GroupOperation {
    Create {
        display_name: String,
        members: Vec<String>,
    },
    Rename {
        id: String,
        display_name: String,
        version: Option<String>,
    },
    Delete {
        id: String,
    },
    AddMembers {
        id: String,
        members: Vec<String>,
    },
    RemoveMembers {
        id: String,
        members: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPage {
    pub groups: Vec<Group>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        semver::Version::parse(text).unwrap()
    }

    #[test]
    fn zero_minor_versions_are_compatible_only_within_the_minor() {
        assert!(compatible(&v("0.1.0"), &v("0.1.0")));
        assert!(compatible(&v("0.1.0"), &v("0.1.3")));
        assert!(compatible(&v("0.1.2"), &v("0.1.0")));
        assert!(!compatible(&v("0.1.0"), &v("0.2.0")));
        assert!(!compatible(&v("0.1.0"), &v("1.1.0")));
        assert!(!compatible(&v("0.1.0"), &v("0.0.9")));
    }

    #[test]
    fn store_errors_read_well() {
        let error = StoreError::Rejected {
            code: "REQUIRED_FIELD_MISSING".into(),
            message: "Required fields are missing: [Company]".into(),
            fields: vec!["Company".into()],
        };
        assert_eq!(
            error.to_string(),
            "rejected: REQUIRED_FIELD_MISSING: Required fields are missing: [Company] (fields: Company)"
        );
        let error = StoreError::Transient {
            message: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            error.to_string(),
            "transient: HTTP 503 (retry after 2000 ms)"
        );
    }
}
