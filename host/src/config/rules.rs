//! Outbound rules and the sync settings in `provisioner.toml`.
//!
//! ```toml
//! [sync]
//! batch_size = 200
//! concurrency = 2
//! interval_secs = 300            # a pass over everyone
//! drift_interval_secs = 21600     # a pass that re-reads the targets
//! removal_guard = { max_count = 100, max_share = 0.25 }
//! update_guard = { max_count = 100, max_share = 0.25 }   # after a mapping change
//!
//! [rules.prospects]
//! connection = "salesforce-leads"
//! scope = { group = "prospects", match = "all", conditions = [{ attribute = "country", equals = "United States" }] }
//! extend_defaults = true         # add to the connector's default mappings, not replace them
//!
//! [[rules.prospects.mappings]]
//! target = "LastName"
//! source = "family_name"         # or constant = "...", or template = "{given_name} {family_name}"
//! apply_on_update = true
//! ```
//!
//! A mapping that names an unknown attribute, or a template that does not
//! parse, is refused with the rule's name and the file position.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::directory::{AttributeSchema, Person};
use crate::mapping::{CompiledMapping, Template};
use crate::runtime::contract::{Descriptor, Mapping, MappingSource};

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    #[default]
    All,
    Any,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    attribute: Spanned<String>,
    equals: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScope {
    group: Option<String>,
    population: Option<String>,
    #[serde(default, rename = "match")]
    mode: MatchMode,
    #[serde(default)]
    conditions: Vec<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    target: Spanned<String>,
    source: Option<Spanned<String>>,
    constant: Option<String>,
    template: Option<Spanned<String>>,
    /// One template per element of a list target (contract 0.2).
    templates: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    apply_on_update: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGuard {
    max_count: Option<u64>,
    max_share: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) connection: Spanned<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    scope: RawScope,
    #[serde(default)]
    mappings: Vec<RawMapping>,
    #[serde(default)]
    extend_defaults: bool,
    convert_from: Option<Spanned<String>>,
    #[serde(default)]
    push_groups: Vec<Spanned<String>>,
    removal_guard: Option<RawGuard>,
    update_guard: Option<RawGuard>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    batch_size: Option<usize>,
    concurrency: Option<usize>,
    interval_secs: Option<u64>,
    drift_interval_secs: Option<u64>,
    retry_base_secs: Option<u64>,
    retry_max_secs: Option<u64>,
    removal_guard: Option<RawGuard>,
    update_guard: Option<RawGuard>,
}

/// When a pass would remove more than this (the removal guard), or update
/// more than this after the rule's mappings changed (the update guard),
/// that work waits for an operator's approval. The default, 100 records or
/// a quarter of the rule's, is the same for both.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Guard {
    pub max_count: u64,
    pub max_share: f64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            max_count: 100,
            max_share: 0.25,
        }
    }
}

impl Guard {
    fn merged(self, raw: Option<RawGuard>) -> Guard {
        let raw = raw.unwrap_or_default();
        Guard {
            max_count: raw.max_count.unwrap_or(self.max_count),
            max_share: raw.max_share.unwrap_or(self.max_share),
        }
    }

    /// Whether touching `planned` of `linked` records trips the guard. The
    /// share only counts once there are more than a handful of records, so
    /// that removing 1 of 2 is not "half of everything".
    pub fn trips(&self, planned: u64, linked: u64) -> bool {
        planned > self.max_count
            || (linked >= 10 && planned as f64 > self.max_share * linked as f64)
    }
}

/// How the engine batches, paces and retries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncSettings {
    pub batch_size: usize,
    /// Requests in flight to one connection at once, write batches and
    /// lookups alike: what a store's limit on concurrent requests sees.
    pub concurrency: usize,
    pub interval: Duration,
    pub drift_interval: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub removal_guard: Guard,
    pub update_guard: Guard,
}

impl SyncSettings {
    pub(crate) fn from_raw(raw: &RawSync) -> SyncSettings {
        SyncSettings {
            batch_size: raw.batch_size.unwrap_or(200).clamp(1, 10_000),
            concurrency: raw.concurrency.unwrap_or(2).clamp(1, 64),
            interval: Duration::from_secs(raw.interval_secs.unwrap_or(300).max(1)),
            drift_interval: Duration::from_secs(raw.drift_interval_secs.unwrap_or(21_600).max(1)),
            retry_base: Duration::from_secs(raw.retry_base_secs.unwrap_or(30).max(1)),
            retry_max: Duration::from_secs(raw.retry_max_secs.unwrap_or(3600).max(1)),
            removal_guard: Guard::default().merged(raw.removal_guard),
            update_guard: Guard::default().merged(raw.update_guard),
        }
    }
}

/// Who a rule is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub group: Option<String>,
    pub population: Option<String>,
    pub mode: MatchMode,
    pub conditions: Vec<(String, String)>,
}

impl Scope {
    /// Whether an enabled, live person is in scope. Conditions compare
    /// exactly; a missing attribute equals nothing.
    pub fn contains(&self, person: &Person) -> bool {
        if person.deleted || !person.enabled {
            return false;
        }
        if let Some(group) = &self.group
            && !person.groups.contains(group)
        {
            return false;
        }
        if let Some(population) = &self.population
            && person.population.as_ref() != Some(population)
        {
            return false;
        }
        let holds =
            |(attribute, value): &(String, String)| person.attributes.get(attribute) == Some(value);
        match self.mode {
            _ if self.conditions.is_empty() => true,
            MatchMode::All => self.conditions.iter().all(holds),
            MatchMode::Any => self.conditions.iter().any(holds),
        }
    }

    /// One line for status pages: "group prospects, country = US".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(group) = &self.group {
            parts.push(format!("group {group}"));
        }
        if let Some(population) = &self.population {
            parts.push(format!("population {population}"));
        }
        let joiner = if self.mode == MatchMode::All {
            " and "
        } else {
            " or "
        };
        if !self.conditions.is_empty() {
            parts.push(
                self.conditions
                    .iter()
                    .map(|(a, v)| format!("{a} = {v:?}"))
                    .collect::<Vec<_>>()
                    .join(joiner),
            );
        }
        if parts.is_empty() {
            "everyone".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A rule as configured, checked against the attribute schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub connection: String,
    pub active: bool,
    pub scope: Scope,
    /// The rule's own mappings; `None` means the connector's defaults.
    pub mappings: Option<Vec<CompiledMapping>>,
    /// Whether the rule's own mappings add to the connector's defaults
    /// (replacing a default of the same target) instead of replacing them
    /// all.
    pub extend_defaults: bool,
    /// A rule whose records, when a person moves from it to this one, are
    /// converted in place rather than removed and created again.
    pub convert_from: Option<String>,
    /// Directory groups the rule keeps in its target, each with the
    /// members the rule syncs: PingOne's group provisioning. A name may
    /// end in `*`, for every group whose name starts with what precedes it.
    pub push_groups: Vec<String>,
    pub removal_guard: Guard,
    /// Holds the updates a change of the rule's mappings causes.
    pub update_guard: Guard,
}

/// A problem in one rule, at a byte offset of the configuration.
pub(crate) struct RuleProblem {
    pub offset: Option<usize>,
    pub message: String,
}

/// Checks mapping sources against the schema. Used for rules' own
/// mappings and for the connector's defaults.
pub fn check_mappings(mappings: &[Mapping], schema: &AttributeSchema) -> Result<(), String> {
    for mapping in mappings {
        let attributes: Vec<String> = match &mapping.source {
            MappingSource::Attribute(name) => vec![name.clone()],
            MappingSource::Constant(_) => Vec::new(),
            MappingSource::Template(text) => Template::parse(text)
                .map_err(|e| format!("mapping for {}: {e}", mapping.target))?
                .attributes()
                .map(String::from)
                .collect(),
            MappingSource::Templates(texts) => {
                let mut names = Vec::new();
                for text in texts {
                    let template = Template::parse(text)
                        .map_err(|e| format!("mapping for {}: {e}", mapping.target))?;
                    names.extend(template.attributes().map(String::from));
                }
                names
            }
        };
        for name in attributes {
            if !schema.contains(&name) {
                return Err(format!(
                    "mapping for {}: {}",
                    mapping.target,
                    schema.unknown(&name)
                ));
            }
        }
    }
    Ok(())
}

/// A `push_groups` entry: a group's name, or a prefix and `*`.
fn check_pushed(entry: &str) -> Result<(), String> {
    let name = entry.strip_suffix('*').unwrap_or(entry);
    if name.contains('*') {
        return Err(format!(
            "{entry:?}: `*` may only end a name, for every group whose name starts with what precedes it"
        ));
    }
    if name.is_empty() {
        // `*` alone: every group.
        return Ok(());
    }
    crate::directory::check_group(name)
}

impl Rule {
    /// Whether the rule pushes the directory group `group`.
    pub fn pushes(&self, group: &str) -> bool {
        self.push_groups
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => group.starts_with(prefix),
                None => entry == group,
            })
    }

    /// The groups the rule pushes, of those the directory has (`known`):
    /// each named one, whether the directory has it or not, and each known
    /// one a prefix selects.
    pub fn pushed_groups(&self, known: &BTreeSet<String>) -> Vec<String> {
        let mut out: BTreeSet<String> = self
            .push_groups
            .iter()
            .filter(|entry| !entry.ends_with('*'))
            .cloned()
            .collect();
        out.extend(known.iter().filter(|g| self.pushes(g)).cloned());
        out.into_iter().collect()
    }

    /// An active rule over everyone enabled, with the connector's default
    /// mappings and the default guards: what `connections push` runs, and
    /// what a test starts from.
    pub fn everyone(name: &str, connection: &str) -> Rule {
        Rule {
            name: name.into(),
            connection: connection.into(),
            active: true,
            scope: Scope::default(),
            mappings: None,
            extend_defaults: false,
            convert_from: None,
            push_groups: Vec::new(),
            removal_guard: Guard::default(),
            update_guard: Guard::default(),
        }
    }

    /// The mappings the rule writes through a connector: its own, the
    /// connector's defaults, or (with `extend_defaults`) the defaults with
    /// the rule's own added and put in place of a default of the same
    /// target. Fails when the default mappings name attributes the
    /// directory does not have, or when nothing maps to the attribute the
    /// connector matches records on, since then no person can be matched
    /// or created.
    pub fn mappings_for(
        &self,
        descriptor: &Descriptor,
        schema: &AttributeSchema,
    ) -> Result<Vec<CompiledMapping>, String> {
        let defaults = || -> Result<Vec<CompiledMapping>, String> {
            check_mappings(&descriptor.default_mappings, schema)
                .map_err(|e| format!("the connector's default {e}"))?;
            crate::mapping::defaults(descriptor).map_err(|e| format!("the connector's default {e}"))
        };
        let mut mappings = match &self.mappings {
            None => defaults()?,
            Some(own) if !self.extend_defaults => own.clone(),
            Some(own) => {
                let mut merged: Vec<CompiledMapping> = defaults()?
                    .into_iter()
                    .filter(|d| !own.iter().any(|m| m.target.eq_ignore_ascii_case(&d.target)))
                    .collect();
                merged.extend(own.iter().cloned());
                merged
            }
        };
        let matched = &descriptor.match_attribute;
        if !mappings
            .iter()
            .any(|m| m.target.eq_ignore_ascii_case(matched))
        {
            let why = if self.mappings.is_some() && !self.extend_defaults {
                "; a rule's own mappings replace the connector's defaults: map it too, or set extend_defaults = true to add to the defaults"
            } else {
                ""
            };
            return Err(format!(
                "rule {} maps nothing to {matched}, which plugin {} matches records on{why}",
                self.name, descriptor.name
            ));
        }
        crate::mapping::typed(&mut mappings, descriptor)
            .map_err(|e| format!("rule {}: {e}", self.name))?;
        Ok(mappings)
    }
}

impl RawRule {
    /// Compiles the rule; every problem is reported, each at its place.
    pub(crate) fn compile(
        &self,
        name: &str,
        settings: &SyncSettings,
        schema: &AttributeSchema,
        connections: &[&str],
        rules: &[&str],
    ) -> Result<Rule, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let at = |span: std::ops::Range<usize>, message: String| RuleProblem {
            offset: Some(span.start),
            message: format!("rule {name}: {message}"),
        };
        if !connections.contains(&self.connection.get_ref().as_str()) {
            problems.push(at(
                self.connection.span(),
                format!(
                    "connection {:?} is not configured (connections: {})",
                    self.connection.get_ref(),
                    connections.join(", ")
                ),
            ));
        }
        for condition in &self.scope.conditions {
            if !schema.contains(condition.attribute.get_ref()) {
                problems.push(at(
                    condition.attribute.span(),
                    format!(
                        "condition on {}",
                        schema.unknown(condition.attribute.get_ref())
                    ),
                ));
            }
        }
        let mut compiled = Vec::new();
        for (index, raw) in self.mappings.iter().enumerate() {
            match compile_mapping(raw, index + 1, schema) {
                Ok(mapping) => compiled.push(mapping),
                Err((span, message)) => problems.push(at(span, message)),
            }
        }
        if let Some(from) = &self.convert_from
            && (!rules.contains(&from.get_ref().as_str()) || from.get_ref() == name)
        {
            problems.push(at(
                from.span(),
                format!(
                    "convert_from names {:?}, which is not another configured rule",
                    from.get_ref()
                ),
            ));
        }
        let mut push_groups: Vec<String> = Vec::new();
        for group in &self.push_groups {
            if let Err(reason) = check_pushed(group.get_ref()) {
                problems.push(at(group.span(), format!("push_groups: {reason}")));
            } else if push_groups.contains(group.get_ref()) {
                problems.push(at(
                    group.span(),
                    format!("push_groups names {:?} twice", group.get_ref()),
                ));
            } else {
                push_groups.push(group.get_ref().clone());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Rule {
            name: name.to_string(),
            connection: self.connection.get_ref().clone(),
            active: self.active,
            scope: Scope {
                group: self.scope.group.clone(),
                population: self.scope.population.clone(),
                mode: self.scope.mode,
                conditions: self
                    .scope
                    .conditions
                    .iter()
                    .map(|c| (c.attribute.get_ref().clone(), c.equals.clone()))
                    .collect(),
            },
            mappings: (!self.mappings.is_empty()).then_some(compiled),
            extend_defaults: self.extend_defaults,
            convert_from: self.convert_from.as_ref().map(|c| c.get_ref().clone()),
            push_groups,
            removal_guard: settings.removal_guard.merged(self.removal_guard),
            update_guard: settings.update_guard.merged(self.update_guard),
        })
    }
}

/// One of a rule's mappings, the `position`-th: exactly one source, every
/// attribute it reads in the schema, templates that parse. A problem comes
/// with where it is.
fn compile_mapping(
    raw: &RawMapping,
    position: usize,
    schema: &AttributeSchema,
) -> Result<CompiledMapping, (std::ops::Range<usize>, String)> {
    let target = raw.target.get_ref();
    let sources = [
        raw.source.is_some(),
        raw.constant.is_some(),
        raw.template.is_some(),
        raw.templates.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err((
            raw.target.span(),
            format!(
                "mapping {position} ({target}) needs exactly one of source, constant, template or templates"
            ),
        ));
    }
    let source = if let Some(source) = &raw.source {
        if !schema.contains(source.get_ref()) {
            return Err((
                source.span(),
                format!(
                    "mapping {position} ({target}): {}",
                    schema.unknown(source.get_ref())
                ),
            ));
        }
        MappingSource::Attribute(source.get_ref().clone())
    } else if let Some(template) = &raw.template {
        match Template::parse(template.get_ref()) {
            Ok(parsed) => {
                if let Some(unknown) = parsed.attributes().find(|a| !schema.contains(a)) {
                    return Err((
                        template.span(),
                        format!(
                            "mapping {position} ({target}): template uses {}",
                            schema.unknown(unknown)
                        ),
                    ));
                }
            }
            Err(error) => {
                // Point at the character inside the quoted string.
                let inside = template
                    .get_ref()
                    .char_indices()
                    .nth(error.position.saturating_sub(1))
                    .map(|(byte, _)| byte)
                    .unwrap_or(0);
                let mut span = template.span();
                span.start += 1 + inside;
                return Err((span, format!("mapping {position} ({target}): {error}")));
            }
        }
        MappingSource::Template(template.get_ref().clone())
    } else if let Some(templates) = &raw.templates {
        let unknown = templates
            .get_ref()
            .iter()
            .find_map(|text| match Template::parse(text) {
                Err(error) => Some(error.to_string()),
                Ok(parsed) => parsed
                    .attributes()
                    .find(|a| !schema.contains(a))
                    .map(|a| format!("template {text:?} uses {}", schema.unknown(a))),
            });
        if let Some(problem) = unknown {
            return Err((
                templates.span(),
                format!("mapping {position} ({target}): {problem}"),
            ));
        }
        MappingSource::Templates(templates.get_ref().clone())
    } else {
        MappingSource::Constant(raw.constant.clone().unwrap_or_default())
    };
    CompiledMapping::compile(&Mapping {
        target: target.clone(),
        source,
        apply_on_update: raw.apply_on_update,
    })
    .map_err(|error| {
        (
            raw.target.span(),
            format!("mapping {position} ({target}): {error}"),
        )
    })
}

/// The rules of a configuration, by name.
pub type Rules = BTreeMap<String, Rule>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_groups_are_names_or_prefixes() {
        let rule = Rule {
            push_groups: vec!["sales".into(), "team-*".into()],
            ..Rule::everyone("r", "c")
        };
        let known: BTreeSet<String> = ["team-a", "team-b", "teams", "other"]
            .iter()
            .map(|g| g.to_string())
            .collect();
        // A named group is pushed even before anyone is in it.
        assert_eq!(rule.pushed_groups(&known), ["sales", "team-a", "team-b"]);
        assert!(rule.pushes("team-zz") && rule.pushes("sales"));
        assert!(!rule.pushes("teams") && !rule.pushes("sales-eu"));
        let everything = Rule {
            push_groups: vec!["*".into()],
            ..Rule::everyone("r", "c")
        };
        assert_eq!(everything.pushed_groups(&known).len(), 4);
        for bad in ["te*am", "**", "a;b*", " lead*"] {
            assert!(check_pushed(bad).is_err(), "{bad}");
        }
        for good in ["*", "team-*", "sales", "Sales EMEA*"] {
            assert!(check_pushed(good).is_ok(), "{good}");
        }
    }

    fn person(groups: &[&str], attributes: &[(&str, &str)]) -> Person {
        Person {
            id: "p".into(),
            enabled: true,
            population: Some("staff".into()),
            groups: groups
                .iter()
                .map(|g| g.to_string())
                .collect::<BTreeSet<_>>(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deleted: false,
            changed_seq: 1,
        }
    }

    #[test]
    fn scopes_filter_by_group_population_and_conditions() {
        let scope = Scope {
            group: Some("prospects".into()),
            population: None,
            mode: MatchMode::All,
            conditions: vec![
                ("country".into(), "NO".into()),
                ("title".into(), "CTO".into()),
            ],
        };
        assert!(scope.contains(&person(
            &["prospects"],
            &[("country", "NO"), ("title", "CTO")]
        )));
        assert!(!scope.contains(&person(&["prospects"], &[("country", "NO")])));
        assert!(!scope.contains(&person(
            &["customers"],
            &[("country", "NO"), ("title", "CTO")]
        )));
        let any = Scope {
            mode: MatchMode::Any,
            ..scope.clone()
        };
        assert!(any.contains(&person(&["prospects"], &[("country", "NO")])));
        let mut disabled = person(&["prospects"], &[("country", "NO"), ("title", "CTO")]);
        disabled.enabled = false;
        assert!(!scope.contains(&disabled));
        let population = Scope {
            population: Some("staff".into()),
            ..Scope::default()
        };
        assert!(population.contains(&person(&[], &[])));
        assert_eq!(
            scope.describe(),
            "group prospects, country = \"NO\" and title = \"CTO\""
        );
    }

    #[test]
    fn the_guard_trips_on_count_or_share() {
        let guard = Guard {
            max_count: 5,
            max_share: 0.5,
        };
        assert!(!guard.trips(5, 100));
        assert!(guard.trips(6, 100));
        assert!(guard.trips(6, 10));
        assert!(!guard.trips(1, 2), "a share of a tiny rule is not alarming");
        assert!(!guard.trips(4, 10) && !guard.trips(5, 10));
        let share = Guard {
            max_count: 100,
            max_share: 0.25,
        };
        assert!(share.trips(30, 100));
        assert!(!share.trips(25, 100));
    }
}
