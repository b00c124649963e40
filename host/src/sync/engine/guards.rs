//! The two guards between a pass and mass changes an operator did not
//! mean. The removal guard weighs all of a pass's removals of a rule at its
//! end, whichever slices they were planned in. The update guard weighs the
//! updates a change of a rule's mappings would make: from a plugin upgrade
//! or the configuration, it would rewrite records that no one edited.

use super::binding::RuleBinding;
use super::report::{Action, RuleReport};
use super::slices::Slices;
use super::work::Work;
use super::{Engine, EngineError};
use crate::directory::Directory;
use crate::mapping;
use crate::sync::links::{LinkState, UpdateGuard};
use crate::sync::plan::{self, Decision};

/// What a pass makes of a rule's mappings, against those it last wrote
/// through.
pub(super) enum Review {
    Same,
    /// Record them after the pass; `first` when nothing was recorded
    /// before, so that even a targeted pass may.
    Record {
        first: bool,
    },
    /// Changed, and the updates wait for `approve-updates`.
    Hold,
}

impl Engine {
    /// Compares a rule's mappings with those it last wrote through. A
    /// change, from a plugin upgrade or from the configuration, would
    /// rewrite records that no one edited: it is shown, and when it would
    /// update more records than the rule's update guard allows, the
    /// updates wait for `provisioner approve-updates RULE`.
    pub(super) async fn review_mappings(
        &self,
        binding: &RuleBinding,
        directory: &Directory<'_>,
        linked: u64,
        now: i64,
        dry_run: bool,
        report: &mut RuleReport,
    ) -> Result<Review, EngineError> {
        let links = &*self.db;
        let name = &binding.rule.name;
        let Some(before) = links.rule_mappings(name).await? else {
            return Ok(Review::Record { first: true });
        };
        if before == binding.fingerprint {
            // A change that was held and then undone leaves nothing behind.
            if !dry_run {
                links.clear_update_guard(name).await?;
            }
            return Ok(Review::Same);
        }
        let change = mapping::changes(&before, &binding.fingerprint);
        match links.update_guard(name, &binding.fingerprint).await? {
            Some(UpdateGuard::Approved) => {
                report.line("*", "mappings changed", format!("{change}; approved"));
                return Ok(Review::Record { first: false });
            }
            Some(UpdateGuard::Within) => return Ok(Review::Record { first: false }),
            // Already weighed and held: the pass's own count of what it
            // holds keeps the figure current (see `Engine::pass`).
            Some(UpdateGuard::Held) if !dry_run => {
                report.line(
                    "*",
                    "mappings changed",
                    format!(
                        "{change}; its updates are held by the update guard: review with `provisioner sync --dry-run --rule {name}`, approve with `provisioner approve-updates {name}`"
                    ),
                );
                return Ok(Review::Hold);
            }
            _ => {}
        }
        let planned = self.count_updates(binding, directory, now).await?;
        report.line(
            "*",
            "mappings changed",
            format!("{change}; {planned} of {linked} records to update"),
        );
        let trips = binding.rule.update_guard.trips(planned, linked);
        if !dry_run {
            let outcome = if trips {
                UpdateGuard::Held
            } else {
                UpdateGuard::Within
            };
            links
                .weigh_update_guard(name, planned, linked, &binding.fingerprint, outcome)
                .await?;
        }
        if !trips {
            return Ok(Review::Record { first: false });
        }
        let guard = binding.rule.update_guard;
        let limit = format!(
            "at most {} records or {:.0} %",
            guard.max_count,
            guard.max_share * 100.0
        );
        let hold = if dry_run {
            format!(
                "a pass would hold these updates ({limit}); after it, `provisioner approve-updates {name}` lets them go"
            )
        } else {
            format!(
                "held by the update guard ({limit}): review with `provisioner sync --dry-run --rule {name}`, approve with `provisioner approve-updates {name}`"
            )
        };
        report.line("*", "hold updates", hold);
        Ok(Review::Hold)
    }

    /// How many of a rule's records the pass would update: the planner
    /// over everyone, with nothing sent or written.
    pub(super) async fn count_updates(
        &self,
        binding: &RuleBinding,
        directory: &Directory<'_>,
        now: i64,
    ) -> Result<u64, EngineError> {
        let links = &*self.db;
        let name = &binding.rule.name;
        let view = binding.view();
        let mut slices = Slices::new(None);
        let mut count = 0u64;
        while let Some((slice, people)) = slices.next(directory).await? {
            let rule_links = slice.links(links, name).await?;
            count += plan::plan_rule(&view, &people, &rule_links, now, None, false)
                .iter()
                .filter(|p| matches!(p.decision, Decision::Update { .. }))
                .count() as u64;
        }
        Ok(count)
    }

    /// The removal guard: holds a pass's removals when they are too many
    /// of the rule's records, unless an operator approved them. Returns
    /// the removals that may go out.
    pub(super) async fn guard_removals(
        &self,
        binding: &RuleBinding,
        removals: Vec<Work>,
        linked: u64,
        dry_run: bool,
        report: &mut RuleReport,
    ) -> Result<Vec<Work>, EngineError> {
        if removals.is_empty() {
            return Ok(removals);
        }
        let name = &binding.rule.name;
        let links = &*self.db;
        // A dry run cannot know whether another rule's lookup takes a record
        // over (see `hand_over`): it weighs those removals too, so that it
        // never shows removals going out that a pass would hold.
        let uncertain = if dry_run {
            report.counted(Action::HandOverOrRemove) as u64
        } else {
            0
        };
        let planned = removals.len() as u64 + uncertain;
        let approved = links.guard(name).await?;
        if binding.rule.removal_guard.trips(planned, linked) && approved != Some(true) {
            let reason = format!(
                "held by the removal guard: this pass would remove {planned} of {linked} records; approve with `provisioner approve-removals {name}`"
            );
            let mut kept = Vec::with_capacity(removals.len());
            for removal in removals {
                report.count(Action::Kept);
                report.line(
                    &removal.person_id,
                    "hold",
                    format!("{} {}; {reason}", removal.action(), removal.why()),
                );
                let mut link = removal.base;
                link.state = LinkState::Kept;
                link.reason = Some(reason.clone());
                kept.push(link);
            }
            if !dry_run {
                links.trip_guard(name, planned, linked).await?;
                links.commit(&kept, &[], &[]).await?;
            }
            return Ok(Vec::new());
        }
        if approved == Some(true) && !dry_run {
            links.clear_guard(name).await?;
        }
        for removal in &removals {
            report.line(&removal.person_id, removal.action(), removal.why());
        }
        Ok(removals)
    }
}
