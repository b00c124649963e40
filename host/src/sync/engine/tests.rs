//! Whole passes against a store held in memory, with the clock and the
//! jitter fixed: what the engine does across passes (a retry that waits
//! for its backoff, an adoption, a removal), in milliseconds, with no
//! component or network in the way. The integration tests run the same
//! engine against real components and the emulator.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{Action, Engine, PassOptions, PassReport};
use crate::config::Config;
use crate::directory::{AttributeSchema, Directory, PersonChange};
use crate::runtime::contract::{StoreError, Value};
use crate::runtime::{PluginRegistry, PluginSet, Runtime, RuntimeOptions};
use crate::state::testing::{Backend, TestState, on_each_backend};
use crate::sync::clock::{Clock, FixedClock};
use crate::sync::links::{Link, LinkState};
use crate::targets::memory::{MemoryConnections, MemoryStore};

/// Midday on 2026-11-30, in ms since the epoch.
const NOON: i64 = 1_796_040_000_000;

const CONFIG: &str = r#"
[connections.people]
plugin = "memory"

[rules.staff]
connection = "people"
scope = { group = "staff" }

[sync]
retry_base_secs = 60
"#;

struct Harness {
    engine: Engine,
    db: TestState,
    store: Arc<MemoryStore>,
    clock: Arc<FixedClock>,
}

impl Harness {
    fn new(backend: Backend, configure: impl FnOnce(&mut MemoryConnections)) -> Harness {
        Harness::over(backend, CONFIG, configure)
    }

    fn over(
        backend: Backend,
        config: &str,
        configure: impl FnOnce(&mut MemoryConnections),
    ) -> Harness {
        let db = TestState::new(backend);
        let config = Config::parse(Path::new("provisioner.toml"), config.into()).unwrap();
        let schema = config.attribute_schema().unwrap();
        let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
        let plugins = PluginRegistry::fixed(runtime, Path::new("plugins"), PluginSet::default());
        let store = MemoryStore::new();
        let mut connections = MemoryConnections::new(store.clone(), &["people"]);
        configure(&mut connections);
        let clock = Arc::new(FixedClock::at(NOON));
        let engine = Engine::new(
            db.arc(),
            Arc::new(config),
            plugins,
            schema,
            Arc::new(connections),
        )
        .with_clock(clock.clone());
        Harness {
            engine,
            db,
            store,
            clock,
        }
    }

    async fn people(&self, people: &[(&str, &str, bool)]) {
        let grouped: Vec<(&str, &str, Vec<&str>)> = people
            .iter()
            .map(|(id, email, staff)| (*id, *email, if *staff { vec!["staff"] } else { vec![] }))
            .collect();
        self.grouped(&grouped).await;
    }

    /// People with their groups: `(id, email, groups)`.
    async fn grouped(&self, people: &[(&str, &str, Vec<&str>)]) {
        let changes: Vec<PersonChange> = people
            .iter()
            .map(|(id, email, groups)| PersonChange {
                id: id.to_string(),
                enabled: Some(true),
                population: None,
                groups: Some(groups.iter().map(|g| g.to_string()).collect()),
                attributes: BTreeMap::from([
                    ("email".to_string(), Some(email.to_string())),
                    ("family_name".to_string(), Some(id.to_uppercase())),
                ]),
                replace_attributes: true,
            })
            .collect();
        let directory = Directory::new(&*self.db, AttributeSchema::default());
        directory.upsert(&changes).await.unwrap();
    }

    async fn pass(&self) -> PassReport {
        self.engine.pass(&PassOptions::default()).await.unwrap()
    }

    async fn links(&self) -> BTreeMap<String, Link> {
        self.db.of_rule("staff").await.unwrap()
    }
}

fn count(report: &PassReport, action: Action) -> usize {
    report
        .rules
        .iter()
        .map(|r| r.actions.get(&action).copied().unwrap_or(0))
        .sum()
}

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

async fn a_second_pass_over_unchanged_people_makes_no_call(backend: Backend) {
    let h = Harness::new(backend, |_| {});
    h.people(&[
        ("ada", "ada@example.com", true),
        ("bob", "bob@example.com", true),
        ("eve", "eve@example.com", false),
    ])
    .await;

    let first = h.pass().await;
    assert_eq!(count(&first, Action::Created), 2);
    let records = h.store.records();
    assert_eq!(records.len(), 2, "{records:?}");
    let emails: Vec<_> = records
        .values()
        .map(|r| r.attributes["Email"].clone())
        .collect();
    assert_eq!(
        emails,
        [text("ada@example.com"), text("bob@example.com")],
        "only people in scope are created"
    );
    let links = h.links().await;
    assert!(
        links.values().all(|l| l.state == LinkState::Synced),
        "{links:?}"
    );

    let calls = h.store.calls();
    let second = h.pass().await;
    assert_eq!(h.store.calls(), calls, "a pass with nothing to do calls");
    assert_eq!(count(&second, Action::Created), 0);
}

async fn a_record_made_by_hand_is_adopted_not_duplicated(backend: Backend) {
    let h = Harness::new(backend, |_| {});
    let id = h.store.insert(
        &[("Email", "ADA@example.com"), ("LastName", "Old")],
        "Person",
    );
    h.people(&[("ada", "ada@example.com", true)]).await;

    let report = h.pass().await;
    assert_eq!(count(&report, Action::Created), 0);
    let records = h.store.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let links = h.links().await;
    assert_eq!(links["ada"].target_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        records[&id].attributes["LastName"],
        text("ADA"),
        "the adopted record is brought up to date"
    );
}

/// A transient failure waits for its backoff: with the jitter fixed at 0,
/// exactly half the base delay after the failure, and not a millisecond
/// less.
async fn a_transient_failure_is_retried_when_its_backoff_has_passed(backend: Backend) {
    let h = Harness::new(backend, |_| {});
    h.people(&[("ada", "ada@example.com", true)]).await;
    h.store.fail_next_apply(StoreError::Transient {
        message: "busy".into(),
        retry_after: None,
    });

    let report = h.pass().await;
    assert_eq!(count(&report, Action::Failed), 1);
    let link = &h.links().await["ada"];
    assert_eq!(link.state, LinkState::Failed);
    assert_eq!(link.next_retry, Some(NOON + 30_000));
    assert!(h.store.records().is_empty());

    h.clock.advance(29_999);
    let due = h.db.due(h.clock.now_ms()).await.unwrap();
    assert!(due.is_empty(), "not due before its backoff: {due:?}");
    h.pass().await;
    assert!(
        h.store.records().is_empty(),
        "a pass before the backoff has passed sends nothing"
    );

    h.clock.advance(1);
    assert!(h.db.due(h.clock.now_ms()).await.unwrap().contains("ada"));
    let report = h.pass().await;
    assert_eq!(count(&report, Action::Created), 1);
    assert_eq!(h.links().await["ada"].state, LinkState::Synced);
    assert_eq!(h.store.records().len(), 1);
}

async fn a_person_who_leaves_the_scope_is_disabled_not_deleted(backend: Backend) {
    let h = Harness::new(backend, |_| {});
    h.people(&[("ada", "ada@example.com", true)]).await;
    h.pass().await;
    h.people(&[("ada", "ada@example.com", false)]).await;

    let report = h.pass().await;
    assert_eq!(count(&report, Action::Disabled), 1, "{report:?}");
    let records = h.store.records();
    assert_eq!(records.len(), 1);
    assert!(records.values().all(|r| !r.active));
}

async fn a_connection_that_may_not_create_adopts_and_creates_nothing(backend: Backend) {
    let h = Harness::new(backend, |connections| {
        for preferences in connections.connections.values_mut() {
            preferences.allow_create = false;
        }
    });
    let id = h.store.insert(&[("Email", "ada@example.com")], "Person");
    h.people(&[
        ("ada", "ada@example.com", true),
        ("bob", "bob@example.com", true),
    ])
    .await;

    h.pass().await;
    let records = h.store.records();
    assert_eq!(records.keys().collect::<Vec<_>>(), [&id]);
    let links = h.links().await;
    assert_eq!(links["ada"].target_id.as_deref(), Some(id.as_str()));
    assert_eq!(links["bob"].target_id, None);
}

async fn a_dry_run_sends_and_writes_nothing(backend: Backend) {
    let h = Harness::new(backend, |_| {});
    h.people(&[("ada", "ada@example.com", true)]).await;
    let report = h
        .engine
        .pass(&PassOptions {
            dry_run: true,
            ..PassOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(count(&report, Action::CreateOrAdopt), 1);
    assert_eq!(h.store.calls().apply, 0);
    assert!(h.store.records().is_empty());
    assert!(h.links().await.is_empty());
}

const GROUPS: &str = r#"
[connections.people]
plugin = "memory"

[rules.staff]
connection = "people"
scope = { group = "staff" }
push_groups = ["eng"]
"#;

/// The members of the store's group named `name`, as the emails of
/// their records.
fn group_members(store: &MemoryStore, name: &str) -> Vec<String> {
    let records = store.records();
    let groups = store.groups();
    let group = groups
        .values()
        .find(|g| g.display_name == name)
        .unwrap_or_else(|| panic!("no group {name} in {groups:?}"));
    let mut emails: Vec<String> = group
        .members
        .iter()
        .map(|id| match &records[id].attributes["Email"] {
            Value::Text(email) => email.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    emails.sort();
    emails
}

fn group_actions(report: &PassReport) -> Vec<(String, Action)> {
    report
        .rules
        .iter()
        .flat_map(|r| r.groups.iter().map(|g| (g.group.clone(), g.action)))
        .collect()
}

async fn a_pushed_group_holds_the_records_of_its_members_the_rule_syncs(backend: Backend) {
    let h = Harness::over(backend, GROUPS, |_| {});
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "eng"]),
        ("bob", "bob@example.com", vec!["staff", "eng"]),
        // In the group, but not in the rule's scope: no record, no member.
        ("eve", "eve@example.com", vec!["eng"]),
        ("dan", "dan@example.com", vec!["staff"]),
    ])
    .await;
    let report = h.pass().await;
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::Created)]
    );
    assert_eq!(
        group_members(&h.store, "eng"),
        ["ada@example.com", "bob@example.com"]
    );

    // Nothing changed: no group call at all.
    let calls = h.store.calls();
    let report = h.pass().await;
    assert_eq!(h.store.calls().apply_groups, calls.apply_groups);
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::Unchanged)]
    );

    // Bob leaves the group, and Carl joins the directory in it: Carl's
    // record is created and he joins the group in the same pass.
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "eng"]),
        ("bob", "bob@example.com", vec!["staff"]),
        ("eve", "eve@example.com", vec!["eng"]),
        ("dan", "dan@example.com", vec!["staff"]),
        ("carl", "carl@example.com", vec!["staff", "eng"]),
    ])
    .await;
    h.pass().await;
    assert_eq!(
        group_members(&h.store, "eng"),
        ["ada@example.com", "carl@example.com"]
    );
    assert_eq!(
        h.store.groups().len(),
        1,
        "the group is kept, not made again"
    );

    // Ada leaves the rule's scope: her record is disabled, and she leaves
    // the group.
    h.grouped(&[
        ("ada", "ada@example.com", vec!["eng"]),
        ("bob", "bob@example.com", vec!["staff"]),
        ("eve", "eve@example.com", vec!["eng"]),
        ("dan", "dan@example.com", vec!["staff"]),
        ("carl", "carl@example.com", vec!["staff", "eng"]),
    ])
    .await;
    h.pass().await;
    assert_eq!(group_members(&h.store, "eng"), ["carl@example.com"]);
    let links = h.db.group_links("staff").await.unwrap();
    assert_eq!(links["eng"].state, LinkState::Synced);

    // Status counts the group as PingOne's Group Sync Summary does, and
    // /metrics exports its link.
    let config = Config::parse(Path::new("provisioner.toml"), GROUPS.into()).unwrap();
    let schema = AttributeSchema::default();
    let rules = config.rules(&schema);
    let overview = crate::status::model::overview(&*h.db, &schema, &config, &rules)
        .await
        .unwrap();
    let counts = overview.rules[0].group_counts.clone().unwrap();
    assert_eq!((counts.impacted, counts.success), (1, 1));
    let metrics = crate::status::metrics::render(&*h.db, &[]).await.unwrap();
    assert!(
        metrics.contains("provisioner_group_links{rule=\"staff\",state=\"synced\"} 1"),
        "{metrics}"
    );
}

async fn a_group_already_in_the_store_is_adopted_and_set_to_the_rules_members(backend: Backend) {
    let h = Harness::over(backend, GROUPS, |_| {});
    let existing = h.store.insert_group("ENG", &["someone-else"]);
    h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
        .await;
    let report = h.pass().await;
    let actions = group_actions(&report);
    assert!(
        actions.contains(&("eng".to_string(), Action::Adopted)),
        "{actions:?}"
    );
    let groups = h.store.groups();
    assert_eq!(groups.keys().collect::<Vec<_>>(), [&existing]);
    assert_eq!(group_members(&h.store, "ENG"), ["ada@example.com"]);
}

async fn groups_follow_the_preferences(backend: Backend) {
    // Creating forbidden: the group is not made, and says why.
    let h = Harness::over(backend, GROUPS, |c| {
        for p in c.connections.values_mut() {
            p.allow_create = false;
        }
    });
    h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
        .await;
    h.store.insert(&[("Email", "ada@example.com")], "Person");
    let report = h.pass().await;
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::Unsynced)]
    );
    assert!(h.store.groups().is_empty());
    assert_eq!(
        h.db.group_links("staff").await.unwrap()["eng"].state,
        LinkState::Unsynced
    );

    // Updating forbidden: a member who joins is held, and the link says
    // the group is partially synced.
    let h = Harness::over(backend, GROUPS, |c| {
        for p in c.connections.values_mut() {
            p.allow_update = false;
        }
    });
    h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
        .await;
    h.pass().await;
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "eng"]),
        ("bob", "bob@example.com", vec!["staff", "eng"]),
    ])
    .await;
    let report = h.pass().await;
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::Partial)]
    );
    assert_eq!(group_members(&h.store, "eng"), ["ada@example.com"]);
    assert_eq!(
        h.db.group_links("staff").await.unwrap()["eng"].state,
        LinkState::Partial
    );
}

async fn a_group_taken_out_of_the_rule_is_deleted_only_if_the_connection_says_so(backend: Backend) {
    for (deprovision, deleted) in [(true, true), (false, false)] {
        let h = Harness::over(backend, GROUPS, |c| {
            for p in c.connections.values_mut() {
                p.allow_delete = true;
                p.deprovision_on_rule_deletion = deprovision;
            }
        });
        h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
            .await;
        h.pass().await;
        assert_eq!(h.store.groups().len(), 1);
        let h = Harness {
            engine: h.engine.with_rules(
                Config::parse(Path::new("provisioner.toml"), CONFIG.into())
                    .unwrap()
                    .rules(&AttributeSchema::default()),
            ),
            ..h
        };
        let report = h.pass().await;
        let expected = if deleted {
            Action::Removed
        } else {
            Action::Kept
        };
        assert_eq!(group_actions(&report), [("eng".to_string(), expected)]);
        assert_eq!(h.store.groups().is_empty(), deleted);
        assert!(
            h.db.group_links("staff").await.unwrap().is_empty(),
            "the link is gone either way"
        );
    }
}

/// A rule deleted from the configuration takes its groups with it only
/// when the connection deprovisions on rule deletion and may delete.
async fn a_deleted_rules_groups_follow_deprovision_on_rule_deletion(backend: Backend) {
    for (deprovision, deleted) in [(true, true), (false, false)] {
        let h = Harness::over(backend, GROUPS, |c| {
            for p in c.connections.values_mut() {
                p.allow_delete = true;
                p.deprovision_on_rule_deletion = deprovision;
            }
        });
        h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
            .await;
        h.pass().await;
        let h = Harness {
            engine: h.engine.with_rules(crate::config::RuleSet::default()),
            ..h
        };
        let report = h.pass().await;
        let expected = if deleted {
            Action::Removed
        } else {
            Action::Kept
        };
        assert_eq!(group_actions(&report), [("eng".to_string(), expected)]);
        assert_eq!(
            h.store.groups().is_empty(),
            deleted,
            "deprovision: {deprovision}"
        );
        assert!(h.db.group_links("staff").await.unwrap().is_empty());
    }
}

/// `team-*` pushes every directory group whose name starts with `team-`.
async fn a_prefix_pushes_every_group_it_selects(backend: Backend) {
    let config = GROUPS.replace(r#"push_groups = ["eng"]"#, r#"push_groups = ["team-*"]"#);
    let h = Harness::over(backend, &config, |_| {});
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "team-a"]),
        ("bob", "bob@example.com", vec!["staff", "team-b", "other"]),
    ])
    .await;
    let report = h.pass().await;
    assert_eq!(
        group_actions(&report),
        [
            ("team-a".to_string(), Action::Created),
            ("team-b".to_string(), Action::Created)
        ]
    );
    assert_eq!(group_members(&h.store, "team-a"), ["ada@example.com"]);
    assert_eq!(group_members(&h.store, "team-b"), ["bob@example.com"]);
    assert_eq!(h.store.groups().len(), 2, "other is not pushed");
}

async fn a_dry_run_shows_group_actions_and_sends_none(backend: Backend) {
    let h = Harness::over(backend, GROUPS, |_| {});
    h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
        .await;
    let report = h
        .engine
        .pass(&PassOptions {
            dry_run: true,
            ..PassOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::CreateOrAdopt)]
    );
    assert_eq!(h.store.calls().apply_groups, 0);
    assert_eq!(h.store.calls().lookup_groups, 0);
    assert!(h.db.group_links("staff").await.unwrap().is_empty());
}

/// A failed membership change leaves the link failed with what the store
/// said, and the next pass sends it again.
async fn a_failed_group_change_is_sent_again_next_pass(backend: Backend) {
    let h = Harness::over(backend, GROUPS, |_| {});
    h.grouped(&[("ada", "ada@example.com", vec!["staff", "eng"])])
        .await;
    h.pass().await;
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "eng"]),
        ("bob", "bob@example.com", vec!["staff", "eng"]),
    ])
    .await;
    // Bob's create goes first, then the group change fails.
    h.pass_with_group_failure().await;
    let link = &h.db.group_links("staff").await.unwrap()["eng"];
    assert_eq!(link.state, LinkState::Failed);
    assert!(
        link.reason.as_deref().unwrap_or_default().contains("busy"),
        "{link:?}"
    );
    let journal = h.db.journal(None, Some("staff"), None, 10).await.unwrap();
    let failed = journal
        .iter()
        .find(|e| e["action"] == "group-add-members")
        .unwrap_or_else(|| panic!("{journal:?}"));
    assert_eq!(failed["outcome"], "failed");
    assert!(
        failed["detail"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("busy")
    );
    assert_eq!(group_members(&h.store, "eng"), ["ada@example.com"]);

    h.pass().await;
    assert_eq!(
        group_members(&h.store, "eng"),
        ["ada@example.com", "bob@example.com"]
    );
    assert_eq!(
        h.db.group_links("staff").await.unwrap()["eng"].state,
        LinkState::Synced
    );
}

impl Harness {
    /// A pass whose people's batch succeeds and whose group batch fails.
    async fn pass_with_group_failure(&self) {
        // The people's batch of this pass is answered first.
        self.store.fail_group_batch_next(StoreError::Transient {
            message: "busy".into(),
            retry_after: None,
        });
        self.pass().await;
    }
}

impl Harness {
    /// A pass over `ids` only, as the daemon runs one over those who
    /// changed.
    async fn pass_over(&self, ids: &[&str]) -> PassReport {
        let people = ids.iter().map(|id| id.to_string()).collect();
        self.engine
            .pass(&PassOptions {
                people: Some(people),
                ..PassOptions::default()
            })
            .await
            .unwrap()
    }
}

/// A pass over a few people recomputes only the groups they can have
/// changed, however large the others are; what it does to those is what a
/// pass over everyone would do.
async fn a_pass_over_a_few_people_keeps_only_their_groups(backend: Backend) {
    let config = GROUPS.replace(
        r#"push_groups = ["eng"]"#,
        r#"push_groups = ["eng", "ops"]"#,
    );
    let h = Harness::over(backend, &config, |_| {});
    h.grouped(&[
        ("ada", "ada@example.com", vec!["staff", "eng"]),
        ("bob", "bob@example.com", vec!["staff", "eng"]),
        ("cat", "cat@example.com", vec!["staff", "ops"]),
        ("dan", "dan@example.com", vec!["staff"]),
        ("eve", "eve@example.com", vec!["staff"]),
    ])
    .await;
    h.pass().await;
    assert_eq!(group_members(&h.store, "ops"), ["cat@example.com"]);

    // Bob leaves eng: his record is in eng's members as written, so eng
    // is kept; ops is not looked at.
    h.grouped(&[("bob", "bob@example.com", vec!["staff"])])
        .await;
    let report = h.pass_over(&["bob"]).await;
    assert_eq!(
        group_actions(&report),
        [("eng".to_string(), Action::Updated)]
    );
    assert_eq!(group_members(&h.store, "eng"), ["ada@example.com"]);

    // Dan joins ops: only ops.
    h.grouped(&[("dan", "dan@example.com", vec!["staff", "ops"])])
        .await;
    let report = h.pass_over(&["dan"]).await;
    assert_eq!(
        group_actions(&report),
        [("ops".to_string(), Action::Updated)]
    );
    assert_eq!(
        group_members(&h.store, "ops"),
        ["cat@example.com", "dan@example.com"]
    );

    // Eve is in no pushed group: no group is looked at, and no call made.
    let calls = h.store.calls();
    let report = h.pass_over(&["eve"]).await;
    assert!(group_actions(&report).is_empty(), "{report:?}");
    assert_eq!(h.store.calls().apply_groups, calls.apply_groups);
    assert_eq!(h.store.calls().lookup_groups, calls.lookup_groups);

    // Cat leaves the rule's scope: her record is disabled, and she leaves
    // ops though she is still in it in the directory.
    h.grouped(&[("cat", "cat@example.com", vec!["ops"])]).await;
    h.pass_over(&["cat"]).await;
    assert_eq!(group_members(&h.store, "ops"), ["dan@example.com"]);

    // A pass over everyone finds nothing left to do.
    let calls = h.store.calls();
    let report = h.pass().await;
    assert_eq!(
        h.store.calls().apply_groups,
        calls.apply_groups,
        "{report:?}"
    );
}

on_each_backend!(
    a_second_pass_over_unchanged_people_makes_no_call,
    a_record_made_by_hand_is_adopted_not_duplicated,
    a_transient_failure_is_retried_when_its_backoff_has_passed,
    a_person_who_leaves_the_scope_is_disabled_not_deleted,
    a_connection_that_may_not_create_adopts_and_creates_nothing,
    a_dry_run_sends_and_writes_nothing,
    a_pushed_group_holds_the_records_of_its_members_the_rule_syncs,
    a_group_already_in_the_store_is_adopted_and_set_to_the_rules_members,
    groups_follow_the_preferences,
    a_group_taken_out_of_the_rule_is_deleted_only_if_the_connection_says_so,
    a_deleted_rules_groups_follow_deprovision_on_rule_deletion,
    a_prefix_pushes_every_group_it_selects,
    a_dry_run_shows_group_actions_and_sends_none,
    a_failed_group_change_is_sent_again_next_pass,
    a_pass_over_a_few_people_keeps_only_their_groups,
);
