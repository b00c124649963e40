//! Workload 4, side by side: the calls an initial sync makes to the
//! Salesforce connector (lookups of 1,000 Emails, creates in batches of
//! 200), made through the component, or through the same logic compiled
//! natively and linked in ([`crate::linked`]). Both go through the same
//! broker: the same OAuth, egress policy and HTTP client. Only the
//! sandbox differs.

use std::time::{Duration, Instant};

use anyhow::bail;
use provisioner::runtime::Connector;
use provisioner::runtime::contract as host;

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

/// The initial sync's connector calls, through `connector`: the component,
/// or the native logic when the connector's runtime links it in.
pub async fn calls(connector: &Connector, people: usize) -> anyhow::Result<Duration> {
    let emails = emails(people);
    let started = Instant::now();
    for chunk in emails.chunks(LOOKUP_CHUNK) {
        let found = connector.lookup("Email", chunk.to_vec()).await?;
        if !found.is_empty() {
            bail!("a fresh org already has {} of these people", found.len());
        }
    }
    for batch in (0..people).collect::<Vec<_>>().chunks(BATCH) {
        for result in connector.apply(creates(batch)).await? {
            result.map_err(|e| anyhow::anyhow!("create refused: {e:?}"))?;
        }
    }
    Ok(started.elapsed())
}
