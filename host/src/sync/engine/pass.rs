//! One pass, step by step: bind the rules, then for each slice of people
//! plan, resolve and send (the store works on one slice while the host
//! prepares the next), then the creates other rules waited for, then the
//! removals the guards let through, then deleted rules, then the records
//! of what the pass did.
//!
//! A dry run takes the same steps. Where a live pass writes and sends, it
//! renders instead ([`Engine::settle`], [`Engine::send`]): the plan it
//! prints is the work a live pass would send.

use std::collections::{BTreeMap, BTreeSet};

use super::binding::RuleBinding;
use super::execute::Tally;
use super::guards::Review;
use super::promotion::{self, Promotion, RulePlan};
use super::report::{Action, PassReport, RuleReport, RuleStatus, count_answers};
use super::resolve::{Conversions, Resolved};
use super::sharing::Sharing;
use super::slices::Slices;
use super::work::{Outcomes, Work};
use super::{Engine, EngineError, PassOptions};
use crate::directory::Directory;
use crate::sync::links::{JournalEntry, LinkState, UpdateGuard};
use crate::sync::plan;

/// What a pass reads throughout, and carries from slice to slice.
struct Pass<'p, 'd> {
    options: &'p PassOptions,
    directory: Directory<'d>,
    now: i64,
    bindings: BTreeMap<String, RuleBinding>,
    /// The promotions the bound rules allow, found once for the pass.
    promotions: Vec<Promotion>,
    reports: BTreeMap<String, RuleReport>,
    /// Planned removals by rule, sent at the end of the pass once the
    /// removal guard has weighed them all.
    removals: BTreeMap<String, Vec<Work>>,
    /// Each rule's records when the pass began.
    linked: BTreeMap<String, u64>,
    /// Deleted people, purged at the end once their records are removed.
    tombstones: Vec<String>,
    /// Rules whose mappings are recorded at the end of the pass (see
    /// [`Review::Record`]).
    record: BTreeMap<String, bool>,
    /// What rules that share a connection must know of each other.
    sharing: Sharing,
}

impl Pass<'_, '_> {
    fn dry_run(&self) -> bool {
        self.options.dry_run
    }

    /// A pass over every rule and everyone: only such a pass may conclude
    /// from what it did not see.
    fn whole(&self) -> bool {
        self.options.rule.is_none() && self.options.people.is_none()
    }

    fn active(&self, rule: &str) -> bool {
        self.reports.get(rule).is_some_and(RuleReport::active)
    }
}

impl Engine {
    /// Runs one pass, a slice of people at a time (see
    /// [`SLICE`](super::slices::SLICE)).
    pub async fn pass(&self, options: &PassOptions) -> Result<PassReport, EngineError> {
        if let Some(rule) = &options.rule
            && !self.rules.rules.contains_key(rule)
        {
            return Err(EngineError::NoSuchRule(rule.clone()));
        }
        if !options.dry_run {
            let interrupted = self.db.close_interrupted().await?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "journal entries from an interrupted run were closed as unknown; lookups will adopt whatever they created"
                );
            }
        }
        let mut pass = Pass {
            options,
            directory: Directory::new(&*self.db, self.schema.clone()),
            now: self.clock.now_ms(),
            bindings: BTreeMap::new(),
            promotions: Vec::new(),
            reports: BTreeMap::new(),
            removals: BTreeMap::new(),
            linked: BTreeMap::new(),
            tombstones: Vec::new(),
            record: BTreeMap::new(),
            sharing: Sharing::default(),
        };
        let tally = Tally::default();
        self.bind_rules(&mut pass).await?;

        // Each slice's writes go out while the next slice is read, planned
        // and looked up: the store works on one while the host works on
        // the other.
        let mut slices = Slices::new(options.people.as_ref());
        let mut work = self.prepare_slice(&mut pass, &mut slices).await?;
        while let Some(current) = work {
            let (answers, next) = futures_util::future::join(
                self.execute(current, &tally),
                self.prepare_slice(&mut pass, &mut slices),
            )
            .await;
            count_answers(&mut pass.reports, answers?);
            work = next?;
        }
        self.deferred(&mut pass, &tally).await?;
        let mut work = self.removals(&mut pass).await?;
        if pass.whole() {
            for (rule, connection) in self.db.known_rules().await? {
                if self.rules.knows(&rule) {
                    continue;
                }
                let (mut report, removals) = self
                    .rule_deleted(&rule, &connection, options.dry_run, &mut pass.sharing)
                    .await?;
                self.deleted_rule_groups(
                    &rule,
                    &connection,
                    options.dry_run,
                    pass.now,
                    &mut report,
                )
                .await?;
                pass.reports.insert(rule, report);
                work.extend(removals);
            }
        }
        self.send(&mut pass, work, &tally).await?;
        self.groups(&mut pass).await?;
        if !options.dry_run {
            self.finish(&pass).await?;
        }
        Ok(PassReport {
            rules: pass.reports.into_values().collect(),
            dry_run: options.dry_run,
        })
    }

    /// Binds every selected rule, once for the whole pass, and weighs a
    /// change of its mappings. A rule that is inactive, quarantined or
    /// cannot be bound gets its report and no binding.
    async fn bind_rules(&self, pass: &mut Pass<'_, '_>) -> Result<(), EngineError> {
        let links = &*self.db;
        for (name, rule) in &self.rules.rules {
            if pass.options.rule.as_ref().is_some_and(|r| r != name) {
                continue;
            }
            let mut report = RuleReport::new(name, &rule.connection);
            if !rule.active {
                report.status = Some(RuleStatus::Inactive);
                pass.reports.insert(name.clone(), report);
                continue;
            }
            if !pass.dry_run() {
                links.see_rule(name, &rule.connection).await?;
            }
            if let Some(reason) = links.quarantined(&rule.connection).await? {
                report.status = Some(RuleStatus::Quarantined(reason));
                pass.reports.insert(name.clone(), report);
                continue;
            }
            let mut binding = match self.bind_rule(rule).await {
                Ok(binding) => binding,
                Err(error) => {
                    let reason = error.to_string();
                    if !pass.dry_run() {
                        links.finish_rule(name, Some(&reason)).await?;
                    }
                    report.status = Some(RuleStatus::Failed(reason));
                    pass.reports.insert(name.clone(), report);
                    continue;
                }
            };
            // The guard weighs removals against what the rule had when the
            // pass began, not against what the pass itself creates.
            let linked = links.linked_count(name).await?;
            pass.linked.insert(name.clone(), linked);
            let review = self
                .review_mappings(
                    &binding,
                    &pass.directory,
                    linked,
                    pass.now,
                    pass.dry_run(),
                    &mut report,
                )
                .await?;
            match review {
                Review::Same => {}
                Review::Record { first } => {
                    pass.record.insert(name.clone(), first);
                }
                Review::Hold => binding.hold_updates = true,
            }
            report.status = Some(RuleStatus::Active);
            pass.reports.insert(name.clone(), report);
            pass.bindings.insert(name.clone(), binding);
        }
        let mut targeted: BTreeMap<&str, usize> = BTreeMap::new();
        for binding in pass.bindings.values() {
            *targeted.entry(&binding.rule.connection).or_default() += 1;
        }
        pass.sharing.shared = targeted
            .into_iter()
            .filter(|(_, rules)| *rules > 1)
            .map(|(connection, _)| connection.to_string())
            .collect();
        pass.promotions = promotion::promotions(&pass.bindings);
        Ok(())
    }

    /// Reads the next slice of a pass and plans every bound rule for its
    /// people: settles what sends nothing, looks the new people up, keeps
    /// removals for the end, and returns the rest to send (`None` after
    /// the last slice).
    async fn prepare_slice(
        &self,
        pass: &mut Pass<'_, '_>,
        slices: &mut Slices<'_>,
    ) -> Result<Option<Vec<Work>>, EngineError> {
        let Some((slice, people)) = slices.next(&pass.directory).await? else {
            return Ok(None);
        };
        pass.tombstones
            .extend(people.values().filter(|p| p.deleted).map(|p| p.id.clone()));
        // A person is in one slice only: what the last slice created is of
        // no more use.
        pass.sharing.creating.clear();
        let links = &*self.db;
        let mut plans: BTreeMap<String, RulePlan> = BTreeMap::new();
        for (name, binding) in &pass.bindings {
            // A rule quarantined by an earlier slice stops for this pass.
            if !pass.active(name) {
                continue;
            }
            let rule_links = slice.links(links, name).await?;
            let planned = plan::plan_rule(
                &binding.view(),
                &people,
                &rule_links,
                pass.now,
                pass.options.people.as_ref(),
                pass.options.full,
            );
            plans.insert(name.clone(), (planned, rule_links));
        }
        let conversions = promotion::convert(&pass.promotions, &mut plans);

        let mut resolved = Vec::with_capacity(plans.len());
        for (name, (planned, rule_links)) in plans {
            let (Some(binding), Some(report)) =
                (pass.bindings.get(&name), pass.reports.get_mut(&name))
            else {
                continue;
            };
            let mut rule = self
                .resolve_rule(
                    binding,
                    planned,
                    &rule_links,
                    &conversions,
                    pass.options.dry_run,
                    report,
                    Some(&mut pass.sharing),
                )
                .await?;
            let removals = std::mem::take(&mut rule.removals);
            pass.removals.entry(name).or_default().extend(removals);
            resolved.push(rule);
        }
        self.settle(pass, resolved).await.map(Some)
    }

    /// What resolving wrote down: a live pass journals the adoptions and
    /// writes the links that need no call now, and returns the work to
    /// send. A dry run writes nothing, and counts the work as planned.
    async fn settle(
        &self,
        pass: &mut Pass<'_, '_>,
        resolved: Vec<Resolved>,
    ) -> Result<Vec<Work>, EngineError> {
        let mut work = Vec::new();
        let mut outcomes = Outcomes::default();
        let mut adoptions: Vec<JournalEntry> = Vec::new();
        for rule in resolved {
            work.extend(rule.work);
            outcomes.save.extend(rule.outcomes.save);
            outcomes.drop.extend(rule.outcomes.drop);
            adoptions.extend(rule.adoptions);
        }
        if pass.dry_run() {
            render(&work, &mut pass.reports);
            return Ok(Vec::new());
        }
        let links = &*self.db;
        for adoption in &adoptions {
            links.journal_note(adoption, "ok").await?;
        }
        links.commit(&outcomes.save, &outcomes.drop, &[]).await?;
        Ok(work)
    }

    /// Sends `work`, or in a dry run counts it as planned.
    async fn send(
        &self,
        pass: &mut Pass<'_, '_>,
        work: Vec<Work>,
        tally: &Tally,
    ) -> Result<(), EngineError> {
        if pass.dry_run() {
            render(&work, &mut pass.reports);
            return Ok(());
        }
        let answers = self.execute(work, tally).await?;
        count_answers(&mut pass.reports, answers);
        Ok(())
    }

    /// The groups each rule pushes, once its people's work is answered:
    /// a person created in this pass joins their groups in this pass.
    async fn groups(&self, pass: &mut Pass<'_, '_>) -> Result<(), EngineError> {
        for (name, binding) in &pass.bindings {
            if self.stopping() {
                break;
            }
            let Some(report) = pass.reports.get_mut(name).filter(|r| r.active()) else {
                continue;
            };
            let people = pass.options.people.as_ref();
            self.push_groups(binding, people, pass.options.dry_run, pass.now, report)
                .await?;
        }
        Ok(())
    }

    /// Finds that waited for another rule's create of the same record:
    /// that create has been answered, so a lookup now finds it.
    async fn deferred(&self, pass: &mut Pass<'_, '_>, tally: &Tally) -> Result<(), EngineError> {
        // A third rule that wanted the same record waits once more (for
        // the next pass) rather than create a twin if the create failed.
        let mut again = Sharing {
            shared: pass.sharing.shared.clone(),
            ..Sharing::default()
        };
        let links = &*self.db;
        let mut resolved = Vec::new();
        for (name, planned) in std::mem::take(&mut pass.sharing.deferred) {
            let (Some(binding), Some(report)) =
                (pass.bindings.get(&name), pass.reports.get_mut(&name))
            else {
                continue;
            };
            if self.stopping() || !report.active() {
                continue;
            }
            let people: BTreeSet<String> = planned.iter().map(|p| p.person_id.clone()).collect();
            let rule_links = links.of_rule_among(&name, &people).await?;
            let rule = self
                .resolve_rule(
                    binding,
                    planned,
                    &rule_links,
                    &Conversions::new(),
                    pass.options.dry_run,
                    report,
                    Some(&mut again),
                )
                .await?;
            resolved.push(rule);
        }
        // What waits once more is picked up by the next pass.
        let work = self.settle(pass, resolved).await?;
        self.send(pass, work, tally).await
    }

    /// Removals wait for the end of the pass, where the guard sees all of
    /// them at once, whichever slices they were planned in, and where
    /// every rule's adoptions are linked: a record that another rule of
    /// the connection links is handed over, not removed. Returns the
    /// removals that may go out.
    async fn removals(&self, pass: &mut Pass<'_, '_>) -> Result<Vec<Work>, EngineError> {
        let links = &*self.db;
        let mut work = Vec::new();
        for (name, removals) in std::mem::take(&mut pass.removals) {
            let (Some(binding), Some(report)) =
                (pass.bindings.get(&name), pass.reports.get_mut(&name))
            else {
                continue;
            };
            if !report.active() {
                continue;
            }
            let dry_run = pass.options.dry_run;
            let removals = self
                .hand_over(removals, &mut pass.sharing, dry_run, report)
                .await?;
            // A pass over everyone that has nothing left to remove leaves
            // no guard armed: neither a hold nor an unused approval, which
            // would let the next mass removal through.
            if removals.is_empty() && pass.options.people.is_none() && !dry_run {
                links.clear_guard(&name).await?;
            }
            let linked = pass.linked.get(&name).copied().unwrap_or_default();
            work.extend(
                self.guard_removals(binding, removals, linked, dry_run, report)
                    .await?,
            );
        }
        Ok(work)
    }

    /// Records what a live pass did: each rule's finish, the updates a
    /// held mapping change holds now, the mappings the rules wrote
    /// through, the people deleted for good and the rules forgotten.
    async fn finish(&self, pass: &Pass<'_, '_>) -> Result<(), EngineError> {
        let links = &*self.db;
        for (name, report) in &pass.reports {
            if report.active() {
                links.finish_rule(name, None).await?;
            }
        }
        // A held mapping change: what a pass over everyone held is how many
        // updates wait now.
        if pass.options.people.is_none() {
            for (name, binding) in &pass.bindings {
                let Some(report) = pass.reports.get(name).filter(|r| r.active()) else {
                    continue;
                };
                if binding.hold_updates {
                    let held_now = report.counted(Action::Held) as u64;
                    let linked = pass.linked.get(name).copied().unwrap_or_default();
                    let fingerprint = &binding.fingerprint;
                    links
                        .weigh_update_guard(name, held_now, linked, fingerprint, UpdateGuard::Held)
                        .await?;
                }
            }
        }
        // The mappings a rule wrote through: only a pass over everyone has
        // written them to every record, except the first, with nothing to
        // compare against.
        for (name, first) in &pass.record {
            if let Some(binding) = pass.bindings.get(name)
                && pass.active(name)
                && (*first || pass.options.people.is_none())
            {
                links.record_mappings(name, &binding.fingerprint).await?;
            }
        }
        for person in &pass.tombstones {
            pass.directory.purge(person).await?;
        }
        // A deleted rule is forgotten once its last record is removed, or
        // disabled.
        if pass.whole() {
            for rule in links.known_rules().await?.keys() {
                if !self.rules.knows(rule)
                    && links
                        .of_rule(rule)
                        .await?
                        .values()
                        .all(|link| link.target_id.is_none() || link.state == LinkState::Disabled)
                {
                    links.forget_rule(rule).await?;
                }
            }
        }
        Ok(())
    }
}

/// A dry run's account of work it does not send: each operation counts
/// as what it would do.
fn render(work: &[Work], reports: &mut BTreeMap<String, RuleReport>) {
    for item in work {
        if let Some(report) = reports.get_mut(&item.rule) {
            report.count(item.planned());
        }
    }
}
