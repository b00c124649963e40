//! What the status views show, computed from the state file and the
//! configuration. The CLI, the JSON API and the web page all render these
//! same structures, so they always agree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::rules::{Guard, Scope};
use crate::config::{Config, RuleSet};
use crate::directory::{AttributeSchema, Directory, DirectoryError, Person};
use crate::state::StateError;
use crate::state::prelude::*;
use crate::sync::links::{Bucket, Link, LinkState};

/// PingOne's buckets for one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub impacted: u64,
    pub success: u64,
    pub unsynced: u64,
    pub partially_synced: u64,
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, state: LinkState, count: u64) {
        self.impacted += count;
        *match state.bucket() {
            Bucket::Success => &mut self.success,
            Bucket::Unsynced => &mut self.unsynced,
            Bucket::PartiallySynced => &mut self.partially_synced,
            Bucket::Failed => &mut self.failed,
        } += count;
    }
}

/// Failures an overview lists; the counts cover all of them.
pub const FAILURES_LISTED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSummary {
    pub rule: String,
    pub connection: String,
    pub scope: String,
    /// active, inactive, failed, quarantined
    pub status: String,
    pub reason: Option<String>,
    pub last_sync: Option<i64>,
    pub counts: Counts,
    /// Removals held by the removal guard: (planned, linked).
    pub held_removals: Option<(u64, u64)>,
    /// The removal guard in force: a pass may remove up to this many
    /// records, and this share of the rule's records, before it waits.
    pub removal_guard: Option<Guard>,
    /// Updates held by the update guard after the rule's mappings changed:
    /// (planned, linked).
    pub held_updates: Option<(u64, u64)>,
    /// The update guard in force, like the removal guard.
    pub update_guard: Option<Guard>,
    /// People whose directory data changed after the rule last acted on
    /// them, and people in scope it has not reached: work not yet done,
    /// whether a pass is due or the rule cannot run.
    pub pending: u64,
    /// PingOne's Group Sync Summary: the groups the rule pushes, in the
    /// same buckets; `None` for a rule that pushes none.
    pub group_counts: Option<Counts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionHealth {
    pub connection: String,
    pub plugin: String,
    /// The version the host that last ran (the daemon, or a sync) served;
    /// `None` if its plugin was not loaded, or nothing has run yet.
    pub plugin_version: Option<String>,
    /// Why the plugin is in doubt: more than one file claims its name, its
    /// file was refused, or no file provides it.
    pub plugin_problem: Option<String>,
    /// ok, quarantined, plugin missing, plugin refused or plugin clash.
    pub health: String,
    /// What `plugin_problem` is about: clash, refused, missing, or
    /// replacement-refused (the loaded version keeps serving).
    pub plugin_problem_kind: Option<String>,
    pub quarantined: Option<String>,
    pub api_usage: Option<ApiUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub rule: String,
    pub person: String,
    pub email: Option<String>,
    pub class: String,
    pub code: Option<String>,
    pub message: String,
    pub fields: Vec<String>,
    pub attempts: u32,
    pub next_retry: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub rules: Vec<RuleSummary>,
    pub connections: Vec<ConnectionHealth>,
    /// The first [`FAILURES_LISTED`] failures, by rule and person.
    pub failures: Vec<Failure>,
    /// Every failure, listed or not.
    pub failures_total: u64,
    pub recent: Vec<serde_json::Value>,
}

/// One person's standing in one rule, with the story of the last attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRule {
    pub rule: String,
    pub connection: String,
    pub in_scope: bool,
    /// Why the person is in scope or not.
    pub scope: String,
    pub link: Option<Link>,
    /// The journal for this person and rule, newest first.
    pub trace: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonStatus {
    pub person: Person,
    /// The change that last touched them, and who made it (`cli`, or
    /// `scim:TOKEN`).
    pub last_change: Option<crate::directory::Change>,
    pub rules: Vec<PersonRule>,
}

/// Why a person is or is not in a rule's scope, in words.
pub fn explain_scope(scope: &Scope, person: &Person) -> (bool, String) {
    if person.deleted {
        return (false, "deleted from the directory".into());
    }
    if !person.enabled {
        return (false, "disabled in the directory".into());
    }
    if let Some(group) = &scope.group
        && !person.groups.contains(group)
    {
        return (false, format!("not a member of group {group}"));
    }
    if let Some(population) = &scope.population
        && person.population.as_ref() != Some(population)
    {
        return (false, format!("not in population {population}"));
    }
    if !scope.contains(person) {
        let failing: Vec<String> = scope
            .conditions
            .iter()
            .filter(|(a, v)| person.attributes.get(a) != Some(v))
            .map(|(a, v)| {
                format!(
                    "{a} is {} rather than {v:?}",
                    person
                        .attributes
                        .get(a)
                        .map(|x| format!("{x:?}"))
                        .unwrap_or_else(|| "unset".into())
                )
            })
            .collect();
        return (
            false,
            format!("conditions do not hold: {}", failing.join("; ")),
        );
    }
    (true, format!("in scope ({})", scope.describe()))
}

/// Reads the overview.
pub async fn overview(
    db: &dyn Store,
    schema: &AttributeSchema,
    config: &Config,
    rules: &RuleSet,
) -> Result<Overview, DirectoryError> {
    let (counts, pending) = counts(db, schema, rules).await?;
    let quarantine = db.quarantines().await?;
    let mut summaries = summaries(db, rules, &counts, &pending, &quarantine).await?;
    let groups = group_counts(db, rules).await?;
    for summary in &mut summaries {
        summary.group_counts = groups.get(&summary.rule).cloned();
    }
    let connections = connections(db, config, &quarantine).await?;
    Ok(Overview {
        rules: summaries,
        connections,
        failures: failures(db, schema, FAILURES_LISTED).await?,
        failures_total: counts.values().map(|c| c.failed).sum(),
        recent: db.journal(None, None, None, 20).await?,
    })
}

/// PingOne's buckets and the pending work, by rule, from aggregates, so
/// that status costs at a million people what it costs at a thousand.
async fn counts(
    db: &dyn Store,
    schema: &AttributeSchema,
    rules: &RuleSet,
) -> Result<(BTreeMap<String, Counts>, BTreeMap<String, u64>), DirectoryError> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for (rule, state, count) in db.count_states().await? {
        counts.entry(rule).or_default().add(state, count);
    }
    // People in scope that no attempt has reached yet (a pass that has not
    // got to them, or a connection that stopped) are unsynced too: the
    // buckets always add up to everyone the rule is for. Only people some
    // active rule has no link for are read: in the steady state, nobody.
    let directory = Directory::new(db, schema.clone());
    let mut pending = db.pending_counts().await?;
    for (name, rule) in rules.rules.iter().filter(|(_, r)| r.active) {
        let unlinked = db.unlinked(name).await?;
        if unlinked.is_empty() {
            continue;
        }
        let people = directory.people_among(&unlinked).await?;
        let waiting = people.iter().filter(|p| rule.scope.contains(p)).count() as u64;
        if waiting > 0 {
            let counts = counts.entry(name.clone()).or_default();
            counts.impacted += waiting;
            counts.unsynced += waiting;
            *pending.entry(name.clone()).or_default() += waiting;
        }
    }
    Ok((counts, pending))
}

/// The Group Sync Summary of each rule that pushes groups, or has group
/// links left: a pushed group no pass has reached yet is unsynced, so
/// that the buckets add up to the groups the rule is for.
async fn group_counts(
    db: &dyn Store,
    rules: &RuleSet,
) -> Result<BTreeMap<String, Counts>, StateError> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for (rule, state, count) in db.count_group_states().await? {
        counts.entry(rule).or_default().add(state, count);
    }
    let known = db.group_names().await?;
    for (name, rule) in rules
        .rules
        .iter()
        .filter(|(_, r)| !r.push_groups.is_empty())
    {
        let linked = db.group_links(name).await?;
        let waiting = rule
            .pushed_groups(&known)
            .iter()
            .filter(|g| !linked.contains_key(*g))
            .count() as u64;
        let counts = counts.entry(name.clone()).or_default();
        counts.impacted += waiting;
        counts.unsynced += waiting;
    }
    Ok(counts)
}

/// Each rule's line: its standing and why, its last pass, its counts and
/// its guards; a broken rule's too.
async fn summaries(
    db: &dyn Store,
    rules: &RuleSet,
    counts: &BTreeMap<String, Counts>,
    pending: &BTreeMap<String, u64>,
    quarantine: &BTreeMap<String, String>,
) -> Result<Vec<RuleSummary>, StateError> {
    let last = db.rule_runs().await?;
    let held_removals = db.held_removals().await?;
    let held_updates = db.held_updates().await?;
    let mut summaries = Vec::new();
    for (name, rule) in &rules.rules {
        let (last_sync, last_error) = last.get(name).cloned().unwrap_or((None, None));
        let (status, reason) = if !rule.active {
            ("inactive", None)
        } else if let Some(reason) = quarantine.get(&rule.connection) {
            ("quarantined", Some(reason.clone()))
        } else if let Some(error) = last_error {
            ("failed", Some(error))
        } else {
            ("active", None)
        };
        summaries.push(RuleSummary {
            rule: name.clone(),
            connection: rule.connection.clone(),
            scope: rule.scope.describe(),
            status: status.into(),
            reason,
            last_sync,
            counts: counts.get(name).cloned().unwrap_or_default(),
            held_removals: held_removals.get(name).copied(),
            removal_guard: Some(rule.removal_guard),
            held_updates: held_updates.get(name).copied(),
            update_guard: Some(rule.update_guard),
            pending: pending.get(name).copied().unwrap_or_default(),
            group_counts: None,
        });
    }
    for name in &rules.broken {
        summaries.push(RuleSummary {
            rule: name.clone(),
            connection: String::new(),
            scope: String::new(),
            status: "failed".into(),
            reason: Some("the rule has configuration errors; run provisioner check".into()),
            last_sync: last.get(name).and_then(|l| l.0),
            counts: counts.get(name).cloned().unwrap_or_default(),
            held_removals: None,
            removal_guard: None,
            held_updates: None,
            update_guard: None,
            pending: pending.get(name).copied().unwrap_or_default(),
            group_counts: None,
        });
    }
    Ok(summaries)
}

/// Each connection's health: its plugin as the running host found it,
/// quarantine, and the API usage its connector last reported.
async fn connections(
    db: &dyn Store,
    config: &Config,
    quarantine: &BTreeMap<String, String>,
) -> Result<Vec<ConnectionHealth>, StateError> {
    let in_use = db.plugins_in_use().await?;
    let clashes = db.plugin_clashes().await?;
    let refusals = db.plugin_refusals().await?;
    let usage = db.usage().await?;
    Ok(config
        .connection_names()
        .map(|name| {
            let plugin = config.plugin_of(name).unwrap_or_default();
            let version = in_use.get(&plugin).cloned();
            let (health, kind, plugin_problem) = plugin_health(
                &plugin,
                version.as_deref(),
                clashes.get(&plugin),
                refusals.as_deref(),
            );
            let quarantined = quarantine.get(name).cloned();
            ConnectionHealth {
                connection: name.to_string(),
                plugin,
                plugin_version: version,
                plugin_problem,
                plugin_problem_kind: kind.map(String::from),
                health: if quarantined.is_some() {
                    "quarantined".into()
                } else {
                    health.into()
                },
                quarantined,
                api_usage: usage
                    .get(name)
                    .map(|&(used, max, at)| ApiUsage { used, max, at }),
            }
        })
        .collect())
}

/// The first `limit` failures, by rule and person, each with the
/// person's email for the operator to recognise them.
pub async fn failures(
    db: &dyn Store,
    schema: &AttributeSchema,
    limit: usize,
) -> Result<Vec<Failure>, DirectoryError> {
    let failed = db.failed(limit).await?;
    let ids: std::collections::BTreeSet<String> =
        failed.iter().map(|l| l.person_id.clone()).collect();
    let emails: BTreeMap<String, String> = Directory::new(db, schema.clone())
        .people_among(&ids)
        .await?
        .into_iter()
        .filter_map(|p| Some((p.id, p.attributes.get("email")?.clone())))
        .collect();
    Ok(failed
        .into_iter()
        .map(|l| {
            let error = l.error;
            Failure {
                email: emails.get(&l.person_id).cloned(),
                rule: l.rule,
                person: l.person_id,
                class: error.as_ref().map(|e| e.class.clone()).unwrap_or_default(),
                code: error.as_ref().and_then(|e| e.code.clone()),
                message: error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .or(l.reason)
                    .unwrap_or_default(),
                fields: error.map(|e| e.fields).unwrap_or_default(),
                attempts: l.attempts,
                next_retry: l.next_retry,
            }
        })
        .collect())
}

/// A connection's plugin as the running host last found it: the health
/// word and, if something is wrong, what. `refusals` is `None` until a host
/// has scanned its plugin directory, and then nothing is known to be wrong.
fn plugin_health(
    plugin: &str,
    version: Option<&str>,
    clash: Option<&Vec<String>>,
    refusals: Option<&[(String, String)]>,
) -> (&'static str, Option<&'static str>, Option<String>) {
    let refused = refusals.and_then(|all| {
        all.iter()
            .find(|(file, _)| crate::runtime::file_suggests(std::path::Path::new(file), plugin))
    });
    if let Some(files) = clash {
        let reason = crate::runtime::clash_reason(plugin, files);
        let health = if version.is_some() {
            "ok"
        } else {
            "plugin clash"
        };
        return (health, Some("clash"), Some(reason));
    }
    match (version, refused, refusals) {
        (Some(version), Some((file, reason)), _) => (
            "ok",
            Some("replacement-refused"),
            Some(format!(
                "a replacement file was refused ({file}: {reason}); version {version} keeps serving"
            )),
        ),
        (Some(_), None, _) | (None, _, None) => ("ok", None, None),
        (None, Some((file, reason)), Some(_)) => (
            "plugin refused",
            Some("refused"),
            Some(format!("plugin refused: {file}: {reason}")),
        ),
        (None, None, Some(_)) => (
            "plugin missing",
            Some("missing"),
            Some(format!(
                "plugin missing: no file in the plugin directory provides plugin {plugin}"
            )),
        ),
    }
}

/// Finds a person by id or by email, ignoring case for the email.
pub async fn find_person(
    directory: &Directory<'_>,
    id_or_email: &str,
) -> Result<Option<Person>, StateError> {
    let state = |e| match e {
        crate::directory::DirectoryError::State(s) => s,
        other => StateError::Io {
            path: Default::default(),
            reason: other.to_string(),
        },
    };
    // By id, one read; only an email reads everyone.
    if let Some(person) = directory.person(id_or_email).await.map_err(state)? {
        return Ok(Some(person));
    }
    let people = directory.people().await.map_err(state)?;
    Ok(people.into_iter().find(|p| {
        p.attributes
            .get("email")
            .is_some_and(|e| e.eq_ignore_ascii_case(id_or_email))
    }))
}

/// One person across every rule.
pub async fn person(
    db: &dyn Store,
    rules: &RuleSet,
    person: Person,
) -> Result<PersonStatus, StateError> {
    let linked = db.of_person(&person.id).await?;
    let mut out = Vec::new();
    for (name, rule) in &rules.rules {
        let (in_scope, scope) = explain_scope(&rule.scope, &person);
        out.push(PersonRule {
            rule: name.clone(),
            connection: rule.connection.clone(),
            in_scope,
            scope,
            link: linked.get(name).cloned(),
            trace: db.journal(Some(&person.id), Some(name), None, 10).await?,
        });
    }
    let last_change = db.change(person.changed_seq).await?;
    Ok(PersonStatus {
        person,
        last_change,
        rules: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PersonChange;
    use crate::state::testing::{Backend, TestState, on_each_backend};
    use crate::sync::links::LinkError;

    async fn failures_are_read_alone_and_capped_with_their_people_s_email(backend: Backend) {
        let db = TestState::new(backend);
        let schema = AttributeSchema::default();
        let people: Vec<PersonChange> = ["p1", "p2", "p3"]
            .iter()
            .map(|id| PersonChange {
                id: id.to_string(),
                attributes: [("email".to_string(), Some(format!("{id}@x.test")))].into(),
                ..PersonChange::default()
            })
            .collect();
        Directory::new(&*db, schema.clone())
            .upsert(&people)
            .await
            .unwrap();
        let link = |person: &str, state: LinkState| {
            let mut link = Link::new("r", person, "c");
            link.state = state;
            if state == LinkState::Failed {
                link.error = Some(LinkError {
                    class: "rejected".into(),
                    code: Some("INVALID_EMAIL_ADDRESS".into()),
                    message: format!("{person} is refused"),
                    fields: vec!["Email".into()],
                });
            }
            link
        };
        let links = [
            link("p3", LinkState::Failed),
            link("p1", LinkState::Failed),
            link("p2", LinkState::Synced),
        ];
        db.commit(&links, &[], &[]).await.unwrap();

        let all = failures(&*db, &schema, 10).await.unwrap();
        let people: Vec<(&str, Option<&str>)> = all
            .iter()
            .map(|f| (f.person.as_str(), f.email.as_deref()))
            .collect();
        assert_eq!(
            people,
            [("p1", Some("p1@x.test")), ("p3", Some("p3@x.test"))]
        );
        assert_eq!(all[0].message, "p1 is refused");
        assert_eq!(all[0].code.as_deref(), Some("INVALID_EMAIL_ADDRESS"));
        let first = failures(&*db, &schema, 1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].person, "p1");
    }

    on_each_backend!(failures_are_read_alone_and_capped_with_their_people_s_email);
}

/// One directory group as `status group` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    pub group: String,
    /// Its members in the directory.
    pub members: usize,
    /// Each rule that pushes it, or has a link for it left.
    pub rules: Vec<GroupRule>,
}

/// A group in one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRule {
    pub rule: String,
    pub connection: String,
    /// Whether the rule pushes it now.
    pub pushed: bool,
    /// The link, once a pass reached the group.
    pub link: Option<crate::sync::links::GroupLink>,
    /// The last operations on the group, newest first.
    pub trace: Vec<serde_json::Value>,
}

/// Journal entries a rule reads when looking for one group's trace.
const GROUP_TRACE_SCAN: usize = 1000;
/// Entries a group's trace shows.
const GROUP_TRACE: usize = 10;

/// A directory group in every rule that pushes it, or did.
pub async fn group(db: &dyn Store, rules: &RuleSet, name: &str) -> Result<GroupStatus, StateError> {
    let members = db.members_of(name).await?.len();
    let mut out = Vec::new();
    let mut names: Vec<String> = rules.rules.keys().cloned().collect();
    for rule in db.known_rules().await?.into_keys() {
        if !names.contains(&rule) {
            names.push(rule);
        }
    }
    for rule in names {
        let mut links = db.group_links(&rule).await?;
        let link = links.remove(name);
        let config = rules.rules.get(&rule);
        let pushed = config.is_some_and(|r| r.pushes(name));
        if !pushed && link.is_none() {
            continue;
        }
        let trace = db
            .journal(None, Some(&rule), None, GROUP_TRACE_SCAN)
            .await?
            .into_iter()
            .filter(|entry| entry["detail"]["group"] == name)
            .take(GROUP_TRACE)
            .collect();
        out.push(GroupRule {
            trace,
            connection: config
                .map(|r| r.connection.clone())
                .or_else(|| link.as_ref().map(|l| l.connection.clone()))
                .unwrap_or_default(),
            rule,
            pushed,
            link,
        });
    }
    Ok(GroupStatus {
        group: name.to_string(),
        members,
        rules: out,
    })
}
