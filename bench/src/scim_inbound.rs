//! SCIM inbound: `provisioner run` serving SCIM over the org the other
//! workloads synced. Creates per second from concurrent clients, the
//! latency of a PATCH as its client sees it, and from sending a PATCH to
//! the changed value in the Salesforce emulator.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Daemon;
use salesforce_emulator::Emulator;
use serde_json::{Value, json};

/// The bearer token the bench's `[scim] tokens` holds.
pub const TOKEN: &str = "bench-scim-token-0123456789abcdef";

pub struct Figures {
    pub clients: usize,
    pub creates: usize,
    pub create_wall: Duration,
    /// Round trips of PATCHes sent one after another, sorted.
    pub patches: Vec<Duration>,
    /// From sending a PATCH of a synced person's title to the new title in
    /// the emulator, sorted.
    pub to_emulator: Vec<Duration>,
}

/// The SCIM URL the daemon announces on standard output (`stdout`).
async fn announced(stdout: &Path) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(stdout).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v["scim"].as_str().map(str::to_string))
        {
            return Ok(url);
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the daemon announced no SCIM URL in {}", stdout.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let response = http
        .request(method, url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {answer}");
    }
    Ok(answer)
}

fn title(value: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": value}],
    })
}

/// Runs the workload: `daemon` is `provisioner run` on the synced org,
/// writing to `stdout`; people `p000000`.. are linked to Leads.
pub async fn workload(
    emulator: &Emulator,
    mut daemon: Command,
    stdout: &Path,
    people: usize,
    clients: usize,
    creates: usize,
    changes: usize,
) -> anyhow::Result<Figures> {
    let _daemon = Daemon(daemon.spawn().context("starting provisioner run")?);
    let base = announced(stdout).await?;
    let http = reqwest::Client::new();

    // From a PATCH of a synced person to the Lead's new title. First, so
    // that the first change, which is not counted, waits out the daemon's
    // startup pass over everyone, and the creates below meet a daemon at
    // rest, as a running one is.
    let leads = crate::lead_ids(emulator);
    let mut to_emulator = Vec::new();
    for change in 0..=changes {
        let id = format!("p{:06}", (change * 7_919) % people);
        let lead = leads
            .get(&format!("{id}@example.com"))
            .with_context(|| format!("no Lead for {id}"))?;
        let value = format!("scim{change}");
        let sent = Instant::now();
        let url = format!("{base}/Users/{id}");
        send(&http, reqwest::Method::PATCH, &url, &title(&value)).await?;
        crate::until_title(emulator, lead, &value, sent)
            .await
            .with_context(|| format!("the PATCH of {id}"))?;
        if change > 0 {
            to_emulator.push(sent.elapsed());
        }
    }
    to_emulator.sort();

    // Creates, from `clients` at once; people in no group, so that the
    // daemon's passes over them send nothing.
    let per_client = creates / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, url) = (http.clone(), format!("{base}/Users"));
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(per_client);
                for n in 0..per_client {
                    let user = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("scim-{client}-{n}@example.com"),
                        "name": {"givenName": "Scim", "familyName": format!("c{client}n{n}")},
                        "active": true,
                    });
                    let made = send(&http, reqwest::Method::POST, &url, &user).await?;
                    ids.push(made["id"].as_str().unwrap_or_default().to_string());
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await??);
    }
    let create_wall = started.elapsed();

    // PATCHes one after another, each answered once committed.
    let mut patches = Vec::new();
    for (n, id) in ids.iter().enumerate().take(changes) {
        let sent = Instant::now();
        let url = format!("{base}/Users/{id}");
        send(
            &http,
            reqwest::Method::PATCH,
            &url,
            &title(&format!("t{n}")),
        )
        .await?;
        patches.push(sent.elapsed());
    }
    patches.sort();

    Ok(Figures {
        clients,
        creates: ids.len(),
        create_wall,
        patches,
        to_emulator,
    })
}
