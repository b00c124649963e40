//! Looking a rule's people up: where the resolve step waits on the store.

use std::collections::BTreeMap;

use super::binding::RuleBinding;
use super::execute::call_error;
use super::report::{Action, RuleReport, RuleStatus};
use super::resolve::{self, Conversions, Resolved, Resolving};
use super::sharing::Sharing;
use super::slices::runs_of;
use super::work::Outcomes;
use super::{Engine, EngineError, LOOKUP_CHUNK};
use crate::runtime::CallError;
use crate::runtime::contract::{Match, StoreError};
use crate::sync::links::Link;
use crate::sync::plan::Planned;

/// What a batched lookup came to.
enum Lookup {
    Found(Vec<Match>),
    /// The failure is on each person's link.
    Failed,
    /// The connection is quarantined; the rule stops.
    Quarantined,
}

impl Engine {
    /// Resolves a rule's plan for a slice of people: decides what needs no
    /// call, then looks up whom it must, a chunk at a time. A dry run looks
    /// nothing up and says what the lookups would decide between.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resolve_rule(
        &self,
        binding: &RuleBinding,
        planned: Vec<Planned>,
        links: &BTreeMap<String, Link>,
        conversions: &Conversions,
        dry_run: bool,
        report: &mut RuleReport,
        mut sharing: Option<&mut Sharing>,
    ) -> Result<Resolved, EngineError> {
        let rule = Resolving {
            view: binding.view(),
            hold_updates: binding.hold_updates,
            links,
        };
        let mut resolved = resolve::decide(&rule, planned, report);
        if dry_run {
            resolve::render_lookups(&rule, &resolved, conversions, sharing, report);
            return Ok(resolved);
        }
        // Leavers whose create never answered: what the lookup finds is
        // theirs, and goes the way of any leaver's record.
        let reclaims = std::mem::take(&mut resolved.reclaims);
        for chunk in reclaims.chunks(LOOKUP_CHUNK) {
            let keys = chunk.iter().map(|r| r.key.clone()).collect();
            let people = chunk.iter().map(|r| (r.person_id.as_str(), r.person_seq));
            let answer = self.look_up(binding, keys).await;
            let lookup = self.settle_lookup(
                binding,
                &rule,
                answer,
                people,
                report,
                &mut resolved.outcomes,
            );
            let found = match lookup.await? {
                Lookup::Found(found) => found,
                Lookup::Failed => continue,
                Lookup::Quarantined => return Ok(resolved),
            };
            for reclaim in chunk {
                resolve::reclaimed(&rule, reclaim, &found, report, &mut resolved);
            }
        }
        // Everyone new, and in a full pass everyone linked. The chunks go
        // out together, as many at a time as the connection's gate lets
        // through: under a real network's latency, lookups one after
        // another would cost a round trip each.
        let chunks: Vec<_> = runs_of(std::mem::take(&mut resolved.finds), LOOKUP_CHUNK).collect();
        let answers = futures_util::future::join_all(
            chunks
                .iter()
                .map(|chunk| self.look_up(binding, chunk.iter().map(|f| f.key.clone()).collect())),
        )
        .await;
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            let people = chunk.iter().map(|f| (f.person_id.as_str(), f.person_seq));
            let lookup = self.settle_lookup(
                binding,
                &rule,
                answer,
                people,
                report,
                &mut resolved.outcomes,
            );
            let found = match lookup.await? {
                Lookup::Found(found) => found,
                Lookup::Failed => continue,
                Lookup::Quarantined => return Ok(resolved),
            };
            let by_key = resolve::by_key(&found);
            for find in chunk {
                let matches = by_key
                    .get(&find.key.to_lowercase())
                    .map_or(&[][..], Vec::as_slice);
                let conversion =
                    conversions.get(&(binding.rule.name.clone(), find.person_id.clone()));
                let sharing = sharing.as_deref_mut();
                resolve::found(
                    &rule,
                    find,
                    matches,
                    conversion,
                    sharing,
                    report,
                    &mut resolved,
                );
            }
        }
        Ok(resolved)
    }

    /// One lookup, counted against the connection's requests in flight
    /// as a batch is.
    async fn look_up(
        &self,
        binding: &RuleBinding,
        keys: Vec<String>,
    ) -> Result<Vec<Match>, CallError> {
        let _permit = binding.bound.gate.acquire().await;
        binding
            .bound
            .connection
            .target
            .lookup(&binding.match_attribute, keys)
            .await
    }

    /// What a lookup for `people` came to. Refused credentials quarantine
    /// the connection, and the rule stops; any other failure is recorded
    /// on each person's link, to be retried as the backoff allows.
    async fn settle_lookup<'p>(
        &self,
        binding: &RuleBinding,
        rule: &Resolving<'_>,
        answer: Result<Vec<Match>, CallError>,
        people: impl Iterator<Item = (&'p str, Option<i64>)>,
        report: &mut RuleReport,
        outcomes: &mut Outcomes,
    ) -> Result<Lookup, EngineError> {
        let error = match answer {
            Ok(found) => return Ok(Lookup::Found(found)),
            Err(error) => error,
        };
        if let Some(StoreError::Unauthorized(message)) = error.store_error() {
            self.db
                .quarantine(&binding.rule.connection, message)
                .await?;
            report.status = Some(RuleStatus::Quarantined(message.clone()));
            return Ok(Lookup::Quarantined);
        }
        let error = call_error(&error);
        for (person, seq) in people {
            report.count(Action::Failed);
            let mut link = rule.link_of(person, seq);
            self.fail_link(&mut link, &error, seq);
            outcomes.save.push(link);
        }
        Ok(Lookup::Failed)
    }
}
