//! A pass reads the directory a slice of people at a time, so that its
//! memory does not grow with the directory.

use std::collections::{BTreeMap, BTreeSet};

use super::EngineError;
use crate::directory::{Directory, Person};
use crate::state::StateError;
use crate::state::prelude::*;
use crate::sync::links::Link;

/// People planned and sent at a time. A pass holds one slice's people,
/// links, plans and work, so that its memory does not grow with the
/// directory. A slice fills several lookups of
/// [`LOOKUP_CHUNK`](super::LOOKUP_CHUNK), which go out together, and
/// write batches of any configured size: under 100 ms a request, a slice
/// of 2,000 spent most of its time waiting on its lookups one after
/// another (BENCHMARKS.md, "under latency").
pub(super) const SLICE: usize = 4_000;

/// One slice's people, by id.
pub(super) type People = BTreeMap<String, Person>;

/// Which people one slice of a pass covers.
pub(super) enum Slice<'o> {
    /// Person ids after `after` and up to `through`; the last slice runs to
    /// the end (`through: None`), so that it also covers the links of
    /// people no longer in the directory.
    Range {
        after: Option<String>,
        through: Option<String>,
    },
    /// The few people a targeted pass is about, read one by one.
    Among(&'o BTreeSet<String>),
}

/// Cuts a pass into slices, in person id order.
pub(super) struct Slices<'o> {
    /// A targeted pass over no more than a slice of people: its only slice.
    among: Option<&'o BTreeSet<String>>,
    after: Option<String>,
    done: bool,
}

impl<'o> Slices<'o> {
    /// Reads `among` person by person when they are few enough for that
    /// to beat a range ([`READ_ONE_BY_ONE`](crate::state::READ_ONE_BY_ONE));
    /// more are read in ranges, like everyone, and the planner keeps only
    /// them.
    pub fn new(among: Option<&'o BTreeSet<String>>) -> Slices<'o> {
        Slices {
            among: among.filter(|ids| ids.len() <= crate::state::READ_ONE_BY_ONE),
            after: None,
            done: false,
        }
    }

    /// The next slice and its people, or `None` after the last.
    pub async fn next(
        &mut self,
        directory: &Directory<'_>,
    ) -> Result<Option<(Slice<'o>, People)>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let by_id = |people: Vec<Person>| people.into_iter().map(|p| (p.id.clone(), p)).collect();
        if let Some(ids) = self.among {
            self.done = true;
            let people = directory.people_among(ids).await?;
            return Ok(Some((Slice::Among(ids), by_id(people))));
        }
        let people = directory.people_after(self.after.as_deref(), SLICE).await?;
        let through = match people.last() {
            Some(last) if people.len() == SLICE => Some(last.id.clone()),
            _ => {
                self.done = true;
                None
            }
        };
        let slice = Slice::Range {
            after: std::mem::replace(&mut self.after, through.clone()),
            through,
        };
        Ok(Some((slice, by_id(people))))
    }
}

/// `items` in runs of `size`, each moved into its run, none copied.
pub(super) fn runs_of<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter();
    std::iter::from_fn(move || {
        let run: Vec<T> = items.by_ref().take(size.max(1)).collect();
        (!run.is_empty()).then_some(run)
    })
}

impl Slice<'_> {
    /// A rule's links for the people of this slice.
    pub async fn links(
        &self,
        links: &dyn Store,
        rule: &str,
    ) -> Result<BTreeMap<String, Link>, StateError> {
        match self {
            Slice::Range { after, through } => {
                links
                    .of_rule_between(rule, after.as_deref(), through.as_deref())
                    .await
            }
            Slice::Among(ids) => links.of_rule_among(rule, ids).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs_of;

    #[test]
    fn runs_move_every_item_once_in_order() {
        let runs: Vec<Vec<u32>> = runs_of((1..=7).collect(), 3).collect();
        assert_eq!(runs, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        // A size of zero still makes progress, one at a time.
        assert_eq!(runs_of(vec![1, 2], 0).count(), 2);
        assert_eq!(runs_of(Vec::<u32>::new(), 5).count(), 0);
    }
}
