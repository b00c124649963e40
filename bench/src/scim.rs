//! The SCIM connector's workload: the initial sync of `--people` people
//! into the reference SCIM server (`scim2-server`), once with `/Bulk` and
//! once against the same server announcing no `/Bulk`, and a pushed group
//! of all of them kept in sync as one member leaves and joins again.
//! Requests are counted by the server, from its own log: what a provider
//! would see and bill.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scim_reference::{Options, ScimServer};
use serde_json::json;

/// One initial sync.
pub struct Sync {
    pub wall: Duration,
    pub requests: usize,
}

pub struct Figures {
    pub people: usize,
    pub bulk: Sync,
    pub single: Sync,
    /// Requests of the pass after one member left the pushed group, and
    /// of the pass after they joined again.
    pub leave: usize,
    pub join: usize,
    /// Of those, the reads of the provider's configuration, which a
    /// one-shot `sync` makes once per process (the daemon keeps it).
    pub config_reads: usize,
    /// The same two changes, each synced by a pass over the one person
    /// who changed (`sync --person`), as the daemon syncs a change.
    pub leave_one: Sync,
    pub join_one: Sync,
    /// A pass over everyone with nothing to do, for scale.
    pub idle: Sync,
}

/// A configuration, the component and the people, in a directory of
/// their own, against `server`.
struct Setup {
    dir: tempfile::TempDir,
    provisioner: std::path::PathBuf,
    cache: std::path::PathBuf,
}

impl Setup {
    fn new(
        server: &ScimServer,
        provisioner: &Path,
        component: &Path,
        cache: &Path,
    ) -> anyhow::Result<Setup> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("plugins"))?;
        std::fs::copy(component, dir.path().join("plugins/scim2_connector.wasm"))
            .with_context(|| format!("copying {}", component.display()))?;
        std::fs::write(
            dir.path().join("provisioner.toml"),
            format!(
                r#"secrets_file = "secrets.toml"

[connections.scim]
plugin = "scim2"
allow_insecure_loopback = true

[connections.scim.settings]
host = "{}"
base_path = "{}"

[connections.scim.secrets]
token = {{ secrets_file = "scim_token" }}

[rules.everyone]
connection = "scim"
scope = {{}}
push_groups = ["everyone"]
"#,
                server.host(),
                scim_reference::BASE_PATH
            ),
        )?;
        // The host refuses a secrets file that others can read.
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, format!("scim_token = \"{}\"\n", server.token()))?;
        std::fs::set_permissions(
            &secrets,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        Ok(Setup {
            dir,
            provisioner: provisioner.to_path_buf(),
            cache: cache.to_path_buf(),
        })
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new(&self.provisioner)
            .arg("--config")
            .arg(self.dir.path().join("provisioner.toml"))
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .context("running provisioner")?;
        if !output.status.success() {
            bail!(
                "provisioner {}: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn import(&self, people: usize) -> anyhow::Result<()> {
        let rows: Vec<serde_json::Value> = (0..people)
            .map(|i| {
                json!({ "id": format!("p{i:06}"), "groups": ["everyone"], "given_name": "P",
                        "family_name": format!("n{i}"), "email": format!("p{i:06}@example.com") })
            })
            .collect();
        let file = self.dir.path().join("people.json");
        std::fs::write(&file, serde_json::to_vec(&rows)?)?;
        self.run(&["people", "import", &file.display().to_string()])
    }
}

/// The initial sync of `people` against a fresh server, timed and counted.
fn initial(
    features: Option<serde_json::Value>,
    provisioner: &Path,
    component: &Path,
    cache: &Path,
    people: usize,
) -> anyhow::Result<(ScimServer, Setup, Sync)> {
    let server = ScimServer::start(Options {
        features,
        ..Options::default()
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let setup = Setup::new(&server, provisioner, component, cache)?;
    setup.import(people)?;
    let before = server.requests();
    let started = Instant::now();
    setup.run(&["sync"])?;
    let sync = Sync {
        wall: started.elapsed(),
        requests: server.requests() - before,
    };
    let users = server.get("/Users?count=1")["totalResults"].as_u64();
    if users != Some(people as u64) {
        bail!("the sync left {users:?} users for {people} people");
    }
    Ok((server, setup, sync))
}

/// The whole workload; blocking.
pub fn workload(
    provisioner: &Path,
    component: &Path,
    cache: &Path,
    people: usize,
) -> anyhow::Result<Figures> {
    eprintln!("scim: {people} people, without /Bulk");
    let (_, _, single) = initial(
        Some(scim_reference::without_bulk()),
        provisioner,
        component,
        cache,
        people,
    )?;
    eprintln!("scim: {people} people, with /Bulk");
    let (server, setup, bulk) = initial(None, provisioner, component, cache, people)?;
    let configs = || server.requests_to("/ServiceProviderConfig");
    let pass = |args: &[&str]| -> anyhow::Result<usize> {
        setup.run(args)?;
        let before = server.requests();
        setup.run(&["sync"])?;
        Ok(server.requests() - before)
    };
    let before = configs();
    let leave = pass(&["groups", "remove-member", "everyone", "p000001"])?;
    let join = pass(&["groups", "add-member", "everyone", "p000001"])?;
    let config_reads = (configs() - before) / 2;
    // The daemon's way: a pass over whoever changed, which keeps only
    // their groups, however large.
    let timed = |args: &[&str], sync: &[&str]| -> anyhow::Result<Sync> {
        if !args.is_empty() {
            setup.run(args)?;
        }
        let before = server.requests();
        let started = Instant::now();
        setup.run(sync)?;
        Ok(Sync {
            wall: started.elapsed(),
            requests: server.requests() - before,
        })
    };
    let one = ["sync", "--person", "p000001"];
    let leave_one = timed(&["groups", "remove-member", "everyone", "p000001"], &one)?;
    let join_one = timed(&["groups", "add-member", "everyone", "p000001"], &one)?;
    let idle = timed(&[], &["sync"])?;
    let members = server.groups()[0]["members"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if members != people {
        bail!("the pushed group has {members} members for {people} people");
    }
    Ok(Figures {
        people,
        bulk,
        single,
        leave,
        join,
        config_reads,
        leave_one,
        join_one,
        idle,
    })
}
