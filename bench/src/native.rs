//! Workload 4, side by side: the calls an initial sync makes to the
//! Salesforce connector (lookups of 1,000 Emails, creates in batches of
//! 200), made through the component and through the same logic compiled
//! natively and linked in ([`crate::linked`]), call for call. Both go
//! through the same broker: the same OAuth, egress policy and HTTP
//! client. Only the sandbox differs.

use std::time::{Duration, Instant};

use anyhow::bail;
use provisioner::runtime::contract as host;
use provisioner::targets::Target;

/// Emails per lookup call and records per apply call, as the engine sends.
const LOOKUP_CHUNK: usize = 1_000;
const BATCH: usize = 200;

/// (FirstName, LastName, Email, Title) of person `index`, as the default
/// mappings send them.
fn fields(index: usize) -> [(&'static str, String); 4] {
    let id = format!("p{index:06}");
    [
        ("FirstName", "Bench".to_string()),
        ("LastName", id.clone()),
        ("Email", format!("{id}@example.com")),
        ("Title", "t0".to_string()),
    ]
}

fn creates(batch: &[usize]) -> Vec<host::Operation> {
    batch
        .iter()
        .map(|&i| host::Operation::Create {
            attributes: fields(i)
                .into_iter()
                .map(|(name, value)| host::Attribute {
                    name: name.into(),
                    value: host::Value::Text(value),
                })
                .collect(),
        })
        .collect()
}

fn emails(people: usize) -> Vec<String> {
    (0..people).map(|i| fields(i)[2].1.clone()).collect()
}

/// How long each call took, in order.
#[derive(Debug, Default)]
pub struct Calls {
    pub total: Duration,
    /// Lookups of [`LOOKUP_CHUNK`] Emails in an org that has none of them.
    pub lookups: Vec<Duration>,
    /// Creates of [`BATCH`] records.
    pub applies: Vec<Duration>,
}

/// One call on each side, in an order that alternates from call to call,
/// so that neither side always meets a cache or a scheduler the other has
/// just warmed.
async fn both<'a, T, F>(
    sides: [&'a dyn Target; 2],
    turn: usize,
    call: impl Fn(&'a dyn Target) -> F,
) -> anyhow::Result<[(T, Duration); 2]>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let order = if turn.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    };
    let mut out: [Option<(T, Duration)>; 2] = [None, None];
    for side in order {
        let started = Instant::now();
        let answer = call(sides[side]).await?;
        out[side] = Some((answer, started.elapsed()));
    }
    let [Some(first), Some(second)] = out else {
        bail!("a side made no call");
    };
    Ok([first, second])
}

/// The initial sync's connector calls, made call by call on both sides:
/// `sides[0]` the component, `sides[1]` the same connector with the native
/// logic linked in, each against an org of its own.
pub async fn calls(sides: [&dyn Target; 2], people: usize) -> anyhow::Result<[Calls; 2]> {
    let emails = emails(people);
    let mut calls: [Calls; 2] = Default::default();
    let mut turn = 0;
    for chunk in emails.chunks(LOOKUP_CHUNK) {
        let answers = both(sides, turn, |connector| async move {
            Ok(connector.lookup("Email", chunk.to_vec()).await?)
        })
        .await?;
        turn += 1;
        for (side, (found, took)) in answers.into_iter().enumerate() {
            if !found.is_empty() {
                bail!("a fresh org already has {} of these people", found.len());
            }
            calls[side].lookups.push(took);
        }
    }
    for batch in (0..people).collect::<Vec<_>>().chunks(BATCH) {
        let answers = both(sides, turn, |connector| async move {
            let operations = creates(batch);
            Ok(connector.apply(operations).await?)
        })
        .await?;
        turn += 1;
        for (side, (results, took)) in answers.into_iter().enumerate() {
            for result in results {
                result.map_err(|e| anyhow::anyhow!("create refused: {e:?}"))?;
            }
            calls[side].applies.push(took);
        }
    }
    for side in &mut calls {
        side.total = side.lookups.iter().chain(&side.applies).sum();
    }
    Ok(calls)
}
