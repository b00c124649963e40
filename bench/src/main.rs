//! The provisioner's benchmarks, run side by side in one process tree and
//! written to BENCHMARKS.md.
//!
//! Every workload runs the real release `provisioner` binary against the
//! Salesforce emulator on loopback; the emulator's counters say how many
//! API calls were made. The naive baseline (one lookup query and one
//! create per person, in sequence) runs against an emulator of its own in
//! the same run, so that ratios compare like with like on a shared,
//! noisy machine. See bench/README.md for the method.

mod latency;
mod linked;
mod native;
mod scim;
mod scim_inbound;
mod scrub;

/// The allocator `provisioner` itself uses, so that the connector calls
/// measured in this process allocate on the host side as the host does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use provisioner::directory::{AttributeSchema, Directory, PersonChange};
use provisioner::state::StateDb;
use provisioner::targets::{Link, Target, component};
use salesforce_emulator::{Emulator, Options};
use serde_json::{Value, json};

const CLIENT_ID: &str = "bench-client-id";
const CLIENT_SECRET: &str = "bench-client-secret";
const REFRESH_TOKEN: &str = "bench-refresh-token";
const API: &str = "v62.0";

#[derive(Parser)]
#[command(about = "Benchmarks the provisioner host against the Salesforce emulator")]
struct Args {
    /// People in the initial-sync, steady-state and sandbox workloads.
    #[arg(long, default_value_t = 10_000)]
    people: usize,
    /// People in the large initial sync and no-op pass; 0 skips them.
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Repeats of each measured run; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Single-attribute changes timed in the steady-state workload.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Calls timed when measuring the cost of entering the component.
    #[arg(long, default_value_t = 2_000)]
    entries: usize,
    /// The release `provisioner` binary; by default, next to this one.
    #[arg(long)]
    provisioner: Option<PathBuf>,
    /// The Salesforce connector component.
    #[arg(long)]
    component: PathBuf,
    /// The same connector built for contract 0.1 (`--features
    /// contract-0-1`), entered beside the 0.2 build to tell what a call of
    /// contract 0.2 costs against 0.1.
    #[arg(long)]
    component_v0_1: Option<PathBuf>,
    /// The SCIM connector component: with it, the SCIM workload runs
    /// against the reference SCIM server (`tests/scim-server.sh`).
    #[arg(long)]
    scim_component: Option<PathBuf>,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The command line to record in the report.
    #[arg(long, default_value = "bash bench/run.sh")]
    command: String,
    /// Only the connector's calls side by side, component against native
    /// (workload 4), printed per call and not written to the report: for
    /// working on the connector's speed.
    #[arg(long)]
    calls_only: bool,
    /// Only the SCIM workload, printed and not written to the report.
    #[arg(long)]
    scim_only: bool,
    /// Only what scrubbing credentials out of answers costs, beside parsing
    /// the same answers as JSON, printed and not written to the report.
    #[arg(long)]
    scrub_only: bool,
    /// People in the initial sync under latency; 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    latency_people: usize,
    /// The delay the emulator adds to every API request, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Give or take this much, uniformly.
    #[arg(long, default_value_t = 20)]
    latency_jitter_ms: u64,
    /// `[sync] concurrency` for each run under latency, in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 8])]
    latency_concurrency: Vec<usize>,
    /// People the naive client provisions under latency, extrapolated.
    #[arg(long, default_value_t = 50)]
    latency_sample: usize,
    /// Only the latency workload, printed and not written to the report.
    #[arg(long)]
    latency_only: bool,
    /// Only the steady-state workload (after an initial sync of
    /// `--people`), printed and not written to the report.
    #[arg(long)]
    steady_only: bool,
}

/// One `provisioner` process, measured.
struct Measured {
    wall: Duration,
    max_rss_kib: u64,
    /// User and system CPU time of the process.
    cpu: Duration,
}

/// What the kernel accounted to a process that has exited.
struct Usage {
    max_rss_kib: u64,
    cpu: Duration,
}

fn cpu_time(time: libc::timeval) -> Duration {
    Duration::from_secs(time.tv_sec.max(0) as u64)
        + Duration::from_micros(time.tv_usec.max(0) as u64)
}

/// Runs a command to the end, and returns its wait status, peak RSS and
/// CPU time from the kernel's accounting (`wait4`), which sees every page
/// the process ever touched.
fn wait_measured(mut command: Command) -> anyhow::Result<(i32, Usage)> {
    let child = command.spawn().context("starting provisioner")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only into the two out-parameters, which live
    // for the whole call; rusage is plain data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped < 0 {
        return Err(std::io::Error::last_os_error()).context("waiting for provisioner");
    }
    Ok((
        status,
        Usage {
            max_rss_kib: usage.ru_maxrss as u64,
            cpu: cpu_time(usage.ru_utime) + cpu_time(usage.ru_stime),
        },
    ))
}

/// Runs a `measure` command (see [`Org::command_of`]) to the end: its wall
/// time, and the peak RSS and CPU time the measuring process wrote to
/// `peak`.
fn run_measured(command: Command, peak: &Path) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let (status, _) = wait_measured(command)?;
    let wall = started.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("provisioner failed (wait status {status}); see its output in the work directory");
    }
    let written =
        std::fs::read_to_string(peak).with_context(|| format!("reading {}", peak.display()))?;
    let numbers: Vec<u64> = written
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no numbers", peak.display()))?;
    let [max_rss_kib, cpu_us] = numbers[..] else {
        bail!("{} holds {written:?}, not `KIB CPU_US`", peak.display());
    };
    Ok(Measured {
        wall,
        max_rss_kib,
        cpu: Duration::from_micros(cpu_us),
    })
}

/// `provisioner-bench measure PEAK PROGRAM ARGS...`: runs PROGRAM and
/// writes its peak RSS in KiB and its CPU time in µs to PEAK. The kernel counts the address space
/// a process was spawned from in its peak (Linux records the old address
/// space's high-water mark at `exec`, and a spawned child starts from its
/// parent's), so a child of this harness, whose emulators hold every
/// record, would be charged for the harness's memory. This small process
/// in between is what the measured process is spawned from instead.
fn measure(mut args: std::env::ArgsOs) -> anyhow::Result<i32> {
    let peak = args.next().context("measure: no PEAK file")?;
    let program = args.next().context("measure: no PROGRAM")?;
    let (status, usage) = wait_measured({
        let mut command = Command::new(program);
        command.args(args);
        command
    })?;
    std::fs::write(
        &peak,
        format!("{} {}", usage.max_rss_kib, usage.cpu.as_micros()),
    )?;
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    })
}

/// An emulated org and a working directory configured for it.
struct Org {
    emulator: Emulator,
    dir: tempfile::TempDir,
    provisioner: PathBuf,
    cache: PathBuf,
}

/// An emulated org that knows the bench's client and never runs out of
/// API calls.
async fn org_emulator() -> std::io::Result<Emulator> {
    Emulator::start(Options {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_tokens: vec![REFRESH_TOKEN.into()],
        daily_api_limit: u64::MAX,
        ..Options::default()
    })
    .await
}

fn person(index: usize, title: &str) -> Value {
    let id = format!("p{index:06}");
    json!({ "id": id, "groups": ["prospects"], "given_name": "Bench", "family_name": id, "email": format!("{id}@example.com"), "title": title })
}

impl Org {
    async fn new(args: &Args, provisioner: &Path, cache: &Path) -> anyhow::Result<Org> {
        let emulator = org_emulator().await?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("plugins"))?;
        std::fs::copy(
            &args.component,
            dir.path().join("plugins/salesforce_leads_contacts.wasm"),
        )
        .with_context(|| format!("copying {}", args.component.display()))?;
        if let Some(old) = &args.component_v0_1 {
            // A directory of its own: both builds claim the same plugin name.
            std::fs::create_dir(dir.path().join("plugins-v0-1"))?;
            std::fs::copy(
                old,
                dir.path()
                    .join("plugins-v0-1/salesforce_leads_contacts.wasm"),
            )
            .with_context(|| format!("copying {}", old.display()))?;
        }
        let domain = emulator.addr();
        std::fs::write(
            dir.path().join("provisioner.toml"),
            format!(
                r#"secrets_file = "secrets.toml"

[sync]
interval_secs = 86400
drift_interval_secs = 86400

[connections.leads]
plugin = "salesforce-leads-contacts"
allow_insecure_loopback = true

[connections.leads.settings]
domain = "{domain}"
record_type = "Lead"
default_company = "[not provided]"

[connections.leads.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
refresh_token = {{ secrets_file = "refresh_token" }}

[connections.leads.preferences]
allow_create = true
allow_update = true

[rules.prospects]
connection = "leads"
scope = {{ group = "prospects" }}

[scim]
listen = "127.0.0.1:0"

[scim.tokens]
bench = {{ secrets_file = "scim_token" }}
"#
            ),
        )?;
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(
            &secrets,
            format!(
                "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{REFRESH_TOKEN}\"\nscim_token = \"{}\"\n",
                scim_inbound::TOKEN
            ),
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
        Ok(Org {
            emulator,
            dir,
            provisioner: provisioner.to_path_buf(),
            cache: cache.to_path_buf(),
        })
    }

    /// `provisioner`, measured.
    fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        self.command_of(std::slice::from_ref(&self.provisioner), args, true)
    }

    /// `provisioner` itself, not through the measuring launcher: for the
    /// daemon, which the harness stops with a signal.
    fn daemon_command(&self, args: &[&str]) -> anyhow::Result<Command> {
        self.command_of(std::slice::from_ref(&self.provisioner), args, false)
    }

    /// `program` (`provisioner`, or `provisioner-linked MODE`) with this
    /// org's configuration and working directory; through the measuring
    /// launcher when `measured`.
    fn command_of(
        &self,
        program: &[impl AsRef<std::ffi::OsStr>],
        args: &[&str],
        measured: bool,
    ) -> anyhow::Result<Command> {
        let (program, leading) = program.split_first().context("no program")?;
        let mut command = if measured {
            let mut launcher = Command::new(std::env::current_exe()?);
            launcher.arg("measure").arg(self.peak()).arg(program);
            launcher
        } else {
            Command::new(program)
        };
        command
            .args(leading)
            .arg("--config")
            .arg(self.dir.path().join("provisioner.toml"))
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.path().join("stdout.log"))?)
            .stderr(std::fs::File::create(self.dir.path().join("stderr.log"))?);
        Ok(command)
    }

    /// Where the last measured run's peak RSS is written.
    fn peak(&self) -> PathBuf {
        self.dir.path().join("peak-rss")
    }

    /// Runs the binary to the end, off the async threads the emulator
    /// serves on.
    async fn run(&self, args: &[&str]) -> anyhow::Result<Measured> {
        self.run_command(self.command(args)?).await
    }

    async fn run_command(&self, command: Command) -> anyhow::Result<Measured> {
        let peak = self.peak();
        tokio::task::spawn_blocking(move || run_measured(command, &peak)).await?
    }

    async fn import(&self, people: usize, title: &str) -> anyhow::Result<()> {
        let file = self.dir.path().join("people.json");
        let rows: Vec<Value> = (0..people).map(|i| person(i, title)).collect();
        std::fs::write(&file, serde_json::to_vec(&rows)?)?;
        self.run(&["people", "import", "people.json"]).await?;
        Ok(())
    }

    /// The `leads` connection bound in this process, the way the binary
    /// binds it: for the in-process sandbox workloads.
    async fn connect(&self, link: Link) -> anyhow::Result<Arc<dyn Target>> {
        self.connect_from("plugins", link).await
    }

    /// The leads connection, bound to the plugin in `plugins` (a directory
    /// of the org's).
    async fn connect_from(&self, plugins: &str, link: Link) -> anyhow::Result<Arc<dyn Target>> {
        use provisioner::config::Config;
        use provisioner::runtime::{Runtime, RuntimeOptions};
        let config = Config::load(&self.dir.path().join("provisioner.toml"))
            .map_err(|d| anyhow::anyhow!(d.to_string()))?;
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(self.cache.clone()),
            ..RuntimeOptions::default()
        })?;
        let plugins = runtime.load_dir(&self.dir.path().join(plugins)).await?;
        let secrets = Arc::new(
            config
                .secret_store()
                .map_err(|d| anyhow::anyhow!(d.to_string()))?,
        );
        config
            .resolve("leads", &plugins, &secrets)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .connect(config.http_limits(), secrets, None)
            .map(link)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    /// Sets `[sync] concurrency`: the batches in flight to a connection.
    fn set_concurrency(&self, concurrency: usize) -> anyhow::Result<()> {
        let path = self.dir.path().join("provisioner.toml");
        let text = std::fs::read_to_string(&path)?;
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("concurrency = "))
            .collect();
        let at = lines
            .iter()
            .position(|l| *l == "[sync]")
            .context("no [sync] in the bench configuration")?;
        let line = format!("concurrency = {concurrency}");
        lines.insert(at + 1, &line);
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(())
    }

    fn leads(&self) -> usize {
        self.emulator
            .counters()
            .records
            .get("Lead")
            .copied()
            .unwrap_or(0)
    }

    fn api_calls(&self) -> u64 {
        self.emulator.counters().total()
    }

    fn writes(&self) -> u64 {
        let c = self.emulator.counters();
        [
            "POST composite/sobjects",
            "PATCH composite/sobjects",
            "DELETE composite/sobjects",
            "POST sobjects/Lead",
            "PATCH sobjects/Lead/{id}",
            "DELETE sobjects/Lead/{id}",
            "POST soap",
        ]
        .iter()
        .map(|endpoint| c.of(endpoint))
        .sum()
    }
}

/// An initial sync: people per second, API calls per person, peak RSS.
struct SyncRun {
    wall: Duration,
    calls: u64,
    writes: u64,
    max_rss_kib: u64,
}

async fn initial_sync(org: &Org, people: usize) -> anyhow::Result<SyncRun> {
    org.import(people, "t0").await?;
    let calls = org.api_calls();
    let writes = org.writes();
    let measured = org.run(&["sync"]).await?;
    let leads = org
        .emulator
        .counters()
        .records
        .get("Lead")
        .copied()
        .unwrap_or(0);
    if leads != people {
        bail!("the sync left {leads} Leads for {people} people");
    }
    Ok(SyncRun {
        wall: measured.wall,
        calls: org.api_calls() - calls,
        writes: org.writes() - writes,
        max_rss_kib: measured.max_rss_kib,
    })
}

async fn noop_pass(org: &Org) -> anyhow::Result<SyncRun> {
    let calls = org.api_calls();
    let writes = org.writes();
    let measured = org.run(&["sync"]).await?;
    Ok(SyncRun {
        wall: measured.wall,
        calls: org.api_calls() - calls,
        writes: org.writes() - writes,
        max_rss_kib: measured.max_rss_kib,
    })
}

/// The naive client: for each person in turn, one query by Email and one
/// create. This is how a simple script, or an engine that makes one call
/// per user, provisions.
async fn naive_baseline(
    people: usize,
    latency: Option<salesforce_emulator::Latency>,
) -> anyhow::Result<(Duration, u64)> {
    let emulator = org_emulator().await?;
    emulator.set_latency(latency);
    let client = reqwest::Client::new();
    let base = emulator.base_url().to_string();
    let started = Instant::now();
    let token: Value = client
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", REFRESH_TOKEN),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access token")?
        .to_string();
    for index in 0..people {
        let row = person(index, "t0");
        let email = row["email"].as_str().unwrap_or_default();
        let query = reqwest::Url::parse_with_params(
            &format!("{base}/services/data/{API}/query"),
            &[("q", format!("SELECT Id FROM Lead WHERE Email = '{email}'"))],
        )?;
        let found: Value = client
            .get(query)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if found["totalSize"].as_u64().unwrap_or(0) > 0 {
            continue;
        }
        client
            .post(format!("{base}/services/data/{API}/sobjects/Lead"))
            .bearer_auth(&token)
            .json(&json!({
                "FirstName": row["given_name"],
                "LastName": row["family_name"],
                "Email": email,
                "Title": row["title"],
                "Company": "[not provided]",
            }))
            .send()
            .await?
            .error_for_status()?;
    }
    let wall = started.elapsed();
    let leads = emulator
        .counters()
        .records
        .get("Lead")
        .copied()
        .unwrap_or(0);
    if leads != people {
        bail!("the naive client left {leads} Leads for {people} people");
    }
    Ok((wall, emulator.counters().total()))
}

/// A running `provisioner run`, stopped on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Leads of the emulator by their (lowercased) Email.
fn lead_ids(emulator: &Emulator) -> std::collections::HashMap<String, String> {
    emulator
        .records("Lead")
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get("Email")?.as_str()?.to_lowercase(),
                r.get("Id")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Waits until the Lead `lead` has the title `title`, polling the
/// emulator every 0.25 ms; fails a minute after `since`.
async fn until_title(
    emulator: &Emulator,
    lead: &str,
    title: &str,
    since: Instant,
) -> anyhow::Result<()> {
    loop {
        let now = emulator.record(lead);
        if now
            .as_ref()
            .and_then(|r| r.get("Title"))
            .and_then(Value::as_str)
            == Some(title)
        {
            return Ok(());
        }
        if since.elapsed() > Duration::from_secs(60) {
            bail!("the new title {title:?} never reached the emulator");
        }
        tokio::time::sleep(Duration::from_micros(250)).await;
    }
}

/// Single-attribute changes with the daemon running: from the moment the
/// change is committed to the directory until the emulator holds the new
/// value.
async fn steady_state(org: &Org, people: usize, changes: usize) -> anyhow::Result<Vec<Duration>> {
    let mut command = org.daemon_command(&["run", "--listen", "127.0.0.1:0"])?;
    command.env("RUST_LOG", "info");
    let daemon = Daemon(command.spawn().context("starting provisioner run")?);
    let log = org.dir.path().join("stderr.log");
    let ready = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("following the directory")
    {
        if ready.elapsed() > Duration::from_secs(120) {
            bail!("the daemon did not start; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids = lead_ids(&org.emulator);
    let db = StateDb::open(&org.dir.path().join("provisioner.db"))?;
    let directory = Directory::new(&db, AttributeSchema::default());
    let mut latencies = Vec::new();
    // The first change also waits out the daemon's startup pass; it is not
    // counted.
    for change in 0..=changes {
        let index = (change * 7_919) % people;
        let id = format!("p{index:06}");
        let lead = ids
            .get(&format!("{id}@example.com"))
            .with_context(|| format!("no Lead for {id}"))?;
        let title = format!("c{change}");
        // The change is made through the directory library in process, as
        // `people set` makes it, so that the clock starts at the commit
        // rather than at a process exit.
        directory
            .upsert(&[PersonChange {
                id: id.clone(),
                enabled: None,
                population: None,
                groups: None,
                attributes: [("title".to_string(), Some(title.clone()))].into(),
                replace_attributes: false,
            }])
            .await?;
        let committed = Instant::now();
        until_title(&org.emulator, lead, &title, committed)
            .await
            .with_context(|| format!("change {change}"))?;
        if change > 0 {
            latencies.push(committed.elapsed());
        }
    }
    drop(daemon);
    Ok(latencies)
}

/// Workload 4 directly: an initial sync by `provisioner-linked MODE`, the
/// same bench-only build of the host either calling the component or
/// answering its calls with the connector's logic linked in natively.
async fn linked_sync(
    args: &Args,
    provisioner: &Path,
    linked: &Path,
    cache: &Path,
    mode: &str,
    people: usize,
) -> anyhow::Result<Measured> {
    let org = Org::new(args, provisioner, cache).await?;
    org.import(people, "t0").await?;
    let program = [linked.as_os_str(), std::ffi::OsStr::new(mode)];
    let measured = org
        .run_command(org.command_of(&program, &["sync"], true)?)
        .await?;
    if org.leads() != people {
        bail!(
            "the {mode} sync left {} Leads for {people} people",
            org.leads()
        );
    }
    Ok(measured)
}

/// Workload 4 side by side: the connector's calls through the component
/// and through its logic linked natively, call for call, each side on a
/// fresh org of its own in every run.
async fn side_by_side(
    args: &Args,
    provisioner: &Path,
    cache: &Path,
    runs: usize,
) -> anyhow::Result<Vec<[native::Calls; 2]>> {
    let n = args.people;
    eprintln!("component against native: {runs} runs each of {n} people");
    let mut out = Vec::new();
    for _ in 0..runs {
        let component = Org::new(args, provisioner, cache).await?;
        let native = Org::new(args, provisioner, cache).await?;
        let sides = [
            component.connect(provisioner::targets::component).await?,
            native.connect(linked::native).await?,
        ];
        out.push(native::calls([&*sides[0], &*sides[1]], n).await?);
        for (side, org) in [("component", &component), ("native", &native)] {
            if org.leads() != n {
                bail!("the {side} run left {} Leads for {n} people", org.leads());
            }
        }
    }
    Ok(out)
}

/// The calls of one kind in a run.
type CallKind = fn(&native::Calls) -> &[Duration];

/// The connector calls timed one by one, and how the report names them.
const CALL_KINDS: [(&str, CallKind); 2] = [
    ("a lookup of 1,000 Emails", |c| &c.lookups),
    ("a create of 200 records", |c| &c.applies),
];

/// Per call of one kind over all runs: the component's median, native's
/// median, and the median of the ratios of calls made side by side.
fn per_call(runs: &[[native::Calls; 2]], kind: CallKind) -> (Duration, Duration, f64) {
    let side = |i: usize| {
        let all = runs
            .iter()
            .flat_map(|run| kind(&run[i]).iter().map(Duration::as_secs_f64))
            .collect();
        Duration::from_secs_f64(median(all))
    };
    let ratios = runs
        .iter()
        .flat_map(|[component, native]| {
            kind(component)
                .iter()
                .zip(kind(native))
                .map(|(c, n)| c.as_secs_f64() / n.as_secs_f64())
        })
        .collect();
    (side(0), side(1), median(ratios))
}

/// An initial sync with the runtime's per-call debug lines on: the wall
/// time, and the time spent inside the sandbox (instantiation, guest code,
/// crossings; brokered HTTP waits excluded) summed over every call.
async fn sandbox_time(org: &Org, people: usize) -> anyhow::Result<(Duration, Duration, usize)> {
    org.import(people, "t0").await?;
    let mut command = org.command(&["sync"])?;
    command.env("RUST_LOG", "warn,provisioner::runtime=debug");
    let measured = org.run_command(command).await?;
    let log = std::fs::read_to_string(org.dir.path().join("stderr.log"))?;
    let mut total = Duration::ZERO;
    let mut calls = 0;
    for line in log.lines().filter(|l| l.contains("plugin call finished")) {
        let Some(at) = line.find("sandbox_us") else {
            continue;
        };
        let digits: String = line[at + "sandbox_us=".len().min(line.len() - at)..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(us) = digits.parse::<u64>() {
            total += Duration::from_micros(us);
            calls += 1;
        }
    }
    if calls == 0 {
        bail!("no plugin call lines in the sync's log");
    }
    Ok((measured.wall, total, calls))
}

/// The cost of one call into the component that does no I/O (a lookup of
/// nothing): instantiation, the calls out for settings, and the way back.
async fn component_entry(org: &Org, calls: usize) -> anyhow::Result<Duration> {
    let connector = org.connect(component).await?;
    entering(&*connector, calls).await
}

/// What a call that does no I/O costs on `connector`, on average.
async fn entering(connector: &dyn Target, calls: usize) -> anyhow::Result<Duration> {
    for _ in 0..50 {
        connector.lookup("email", Vec::new()).await?;
    }
    let started = Instant::now();
    for _ in 0..calls {
        connector.lookup("email", Vec::new()).await?;
    }
    Ok(started.elapsed() / calls.max(1) as u32)
}

/// Entering the connector built for contract 0.1 and for 0.2, from the
/// same source, in alternating rounds so that both see the same machine:
/// the medians of the rounds, 0.1 then 0.2.
async fn entering_by_contract(
    org: &Org,
    calls: usize,
) -> anyhow::Result<Option<(Duration, Duration)>> {
    if !org.dir.path().join("plugins-v0-1").is_dir() {
        return Ok(None);
    }
    let old = org.connect_from("plugins-v0-1", component).await?;
    let new = org.connect(component).await?;
    let (mut olds, mut news) = (Vec::new(), Vec::new());
    let per_round = (calls / 6).max(50);
    for round in 0..6 {
        if round % 2 == 0 {
            olds.push(entering(&*old, per_round).await?.as_secs_f64());
            news.push(entering(&*new, per_round).await?.as_secs_f64());
        } else {
            news.push(entering(&*new, per_round).await?.as_secs_f64());
            olds.push(entering(&*old, per_round).await?.as_secs_f64());
        }
    }
    Ok(Some((
        Duration::from_secs_f64(median(olds)),
        Duration::from_secs_f64(median(news)),
    )))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib as f64 / 1_048_576.0))
        .unwrap_or_else(|| "unknown memory".into());
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{cpu}, {cores} cores, {memory}; {}; {}; commit {}",
        output("uname", &["-sr"]),
        output("rustc", &["--version"]),
        output("git", &["rev-parse", "--short", "HEAD"]),
    )
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "measure") {
        let code = measure(args)?;
        return Ok(std::process::ExitCode::from(
            u8::try_from(code).unwrap_or(1),
        ));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn bench() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.scrub_only {
        let (build, memory) = scrub::build(21);
        eprintln!(
            "building the scrubber for four credentials: {:.2} ms, {} KiB",
            build.as_secs_f64() * 1e3,
            memory / 1024
        );
        for (what, bytes, scrub, parse) in scrub::run(201) {
            eprintln!(
                "{what} ({} KiB): scrub {:.0} µs, JSON parse {:.0} µs, ratio {:.2}",
                bytes / 1024,
                scrub.as_secs_f64() * 1e6,
                parse.as_secs_f64() * 1e6,
                scrub.as_secs_f64() / parse.as_secs_f64()
            );
        }
        return Ok(());
    }
    let provisioner = match &args.provisioner {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this binary")?
            .join("provisioner"),
    };
    if !provisioner.exists() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p provisioner`",
            provisioner.display()
        );
    }
    let linked = std::env::current_exe()?
        .parent()
        .context("no directory for this binary")?
        .join("provisioner-linked");
    if !linked.exists() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p provisioner-bench`",
            linked.display()
        );
    }
    let cache = tempfile::tempdir()?;
    // Compile the component once, as a deployed host has: the measured
    // runs load it from the cache.
    Org::new(&args, &provisioner, cache.path())
        .await?
        .run(&["plugins", "list"])
        .await?;
    let runs = args.runs.max(1);
    let n = args.people;
    if args.scim_only {
        let Some(component) = args.scim_component.clone() else {
            bail!("--scim-only needs --scim-component");
        };
        let (cache, people) = (cache.path().to_path_buf(), args.people);
        let scim = tokio::task::spawn_blocking(move || {
            scim::workload(&provisioner, &component, &cache, people)
        })
        .await??;
        let mut out = String::new();
        scim_section(&mut out, &scim)?;
        print!("{out}");
        return Ok(());
    }
    if args.steady_only {
        let org = Org::new(&args, &provisioner, cache.path()).await?;
        initial_sync(&org, n).await?;
        let mut latencies = steady_state(&org, n, args.changes).await?;
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "steady state, {} changes over {n} people: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            args.changes,
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default())
        );
        return Ok(());
    }
    if args.latency_only {
        let figures = latency_workload(&args, &provisioner, cache.path()).await?;
        let mut out = String::new();
        latency_section(&mut out, &figures, &args)?;
        print!("{out}");
        return Ok(());
    }
    if args.calls_only {
        let runs = side_by_side(&args, &provisioner, cache.path(), runs).await?;
        for (what, kind) in CALL_KINDS {
            let (component, native, ratio) = per_call(&runs, kind);
            eprintln!(
                "{what}: component {:.0} µs, native {:.0} µs, paired ratio {ratio:.3}",
                component.as_secs_f64() * 1e6,
                native.as_secs_f64() * 1e6,
            );
        }
        let org = Org::new(&args, &provisioner, cache.path()).await?;
        let entry = component_entry(&org, args.entries).await?;
        eprintln!(
            "entering the component: {:.1} µs a call",
            entry.as_secs_f64() * 1e6
        );
        if let Some((old, new)) = entering_by_contract(&org, args.entries).await? {
            eprintln!(
                "entering by contract: built for 0.1 {:.1} µs, for 0.2 {:.1} µs",
                old.as_secs_f64() * 1e6,
                new.as_secs_f64() * 1e6
            );
        }
        return Ok(());
    }
    eprintln!("benchmarking with {n} people, {runs} runs");

    // Workloads 1, 3 and 5 at n, alternating ours and the baseline so that
    // both see the same machine.
    let mut ours = Vec::new();
    let mut noops = Vec::new();
    let mut naive = Vec::new();
    let mut steady_org = None;
    for run in 0..runs {
        let org = Org::new(&args, &provisioner, cache.path()).await?;
        let sync = initial_sync(&org, n).await?;
        eprintln!(
            "run {run}: initial sync {:.2?}, {} calls, {} MiB",
            sync.wall,
            sync.calls,
            sync.max_rss_kib / 1024
        );
        noops.push(noop_pass(&org).await?);
        ours.push(sync);
        let (wall, calls) = naive_baseline(n, None).await?;
        eprintln!("run {run}: naive {wall:.2?}, {calls} calls");
        naive.push((wall, calls));
        if steady_org.is_none() {
            steady_org = Some(org);
        }
    }
    let org = steady_org.context("no run")?;
    eprintln!("steady state: {} changes", args.changes);
    let mut latencies = steady_state(&org, n, args.changes).await?;
    latencies.sort();
    eprintln!(
        "SCIM inbound: {SCIM_CREATES} creates from {SCIM_CLIENTS} clients, {} PATCHes",
        args.changes
    );
    let inbound = scim_inbound::workload(
        &org.emulator,
        org.daemon_command(&["run", "--listen", "127.0.0.1:0"])?,
        &org.dir.path().join("stdout.log"),
        n,
        SCIM_CLIENTS,
        SCIM_CREATES,
        args.changes,
    )
    .await?;
    eprintln!("component entry: {} calls", args.entries);
    let entry = component_entry(&org, args.entries).await?;
    let by_contract = entering_by_contract(&org, args.entries).await?;
    let side_runs = side_by_side(&args, &provisioner, cache.path(), runs).await?;
    let component_wall = median(side_runs.iter().map(|r| r[0].total.as_secs_f64()).collect());
    let native_wall = median(side_runs.iter().map(|r| r[1].total.as_secs_f64()).collect());
    let native_ratio = component_wall / native_wall;
    // A sync is short, and this ratio sits near its target: more pairs
    // than the other workloads, each pair run back to back, the first of
    // each alternating, and the ratio taken pair by pair, so that a slow
    // moment of a shared machine falls on both sides of a pair.
    let whole_runs = runs * 8 + 1;
    eprintln!("whole sync, component against linked native: {whole_runs} pairs of {n} people");
    let mut pairs: Vec<[Measured; 2]> = Vec::new();
    for pair in 0..whole_runs {
        let cache = cache.path();
        let run = |mode| linked_sync(&args, &provisioner, &linked, cache, mode, n);
        pairs.push(if pair.is_multiple_of(2) {
            let component = run("component").await?;
            [component, run("native").await?]
        } else {
            let native = run("native").await?;
            [run("component").await?, native]
        });
    }
    let side = |i: usize, of: fn(&Measured) -> Duration| {
        median(pairs.iter().map(|p| of(&p[i]).as_secs_f64()).collect())
    };
    let paired = |of: fn(&Measured) -> Duration| {
        median(
            pairs
                .iter()
                .map(|[c, n]| of(c).as_secs_f64() / of(n).as_secs_f64())
                .collect(),
        )
    };
    let (whole_component, whole_native) = (side(0, |m| m.wall), side(1, |m| m.wall));
    let measured_ratio = paired(|m| m.wall);
    let cpu_ratio = paired(|m| m.cpu);
    let (cpu_component, cpu_native) = (side(0, |m| m.cpu), side(1, |m| m.cpu));
    eprintln!("time inside the sandbox: an instrumented sync of {n}");
    let instrumented = Org::new(&args, &provisioner, cache.path()).await?;
    let (sandbox_wall, sandbox, sandbox_calls) = sandbox_time(&instrumented, n).await?;
    drop(instrumented);

    let mut large = None;
    if args.large > 0 {
        eprintln!("large: {} people", args.large);
        let org = Org::new(&args, &provisioner, cache.path()).await?;
        let sync = initial_sync(&org, args.large).await?;
        let noop = noop_pass(&org).await?;
        large = Some((sync, noop));
    }

    let under_latency = if args.latency_people > 0 {
        Some(latency_workload(&args, &provisioner, cache.path()).await?)
    } else {
        None
    };

    let scim = match args.scim_component.clone() {
        Some(component) => {
            let (provisioner, cache, people) = (provisioner.clone(), cache.path().to_path_buf(), n);
            Some(
                tokio::task::spawn_blocking(move || {
                    scim::workload(&provisioner, &component, &cache, people)
                })
                .await??,
            )
        }
        None => None,
    };

    let rate = |r: &SyncRun, people: usize| people as f64 / r.wall.as_secs_f64();
    let our_rate = median(ours.iter().map(|r| rate(r, n)).collect());
    let our_calls = median(ours.iter().map(|r| r.calls as f64 / n as f64).collect());
    let our_rss = median(ours.iter().map(|r| r.max_rss_kib as f64 / 1024.0).collect());
    let our_wall = median(ours.iter().map(|r| r.wall.as_secs_f64()).collect());
    let naive_rate = median(
        naive
            .iter()
            .map(|(w, _)| n as f64 / w.as_secs_f64())
            .collect(),
    );
    let naive_calls = median(naive.iter().map(|(_, c)| *c as f64 / n as f64).collect());
    let naive_wall = median(naive.iter().map(|(w, _)| w.as_secs_f64()).collect());
    let noop_wall = median(noops.iter().map(|r| r.wall.as_secs_f64()).collect());
    let noop_calls = noops.iter().map(|r| r.calls).max().unwrap_or(0);
    let noop_writes = noops.iter().map(|r| r.writes).max().unwrap_or(0);
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    // The engine's own work is the same either way, so a whole sync
    // linked with the native logic would take the measured sync's wall
    // time less what the component cost over native on the same calls.
    let whole_ratio = our_wall / (our_wall - (component_wall - native_wall)).max(f64::EPSILON);
    // Were the connector's logic native and free, the sync would still
    // take its wall time less everything spent inside the sandbox: the
    // ratio below is an upper bound on component over native.
    let native_bound =
        sandbox_wall.as_secs_f64() / (sandbox_wall - sandbox.min(sandbox_wall)).as_secs_f64();

    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(
        out,
        "Written by `{}` on {}. Method and analysis: [bench/README.md](bench/README.md).\n",
        args.command,
        machine()
    )?;
    writeln!(
        out,
        "Medians over {runs} runs of {n} people unless stated. Ours and the naive baseline ran alternately in the same process tree, each against an emulator of its own on loopback.\n"
    )?;
    writeln!(out, "## Initial sync of {n} people into Leads\n")?;
    writeln!(out, "| | ours | naive baseline | ratio |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    writeln!(
        out,
        "| people per second | {our_rate:.0} | {naive_rate:.0} | {:.1}× |",
        our_rate / naive_rate
    )?;
    writeln!(out, "| wall time | {our_wall:.2} s | {naive_wall:.2} s | |")?;
    writeln!(
        out,
        "| API calls per person | {our_calls:.4} | {naive_calls:.4} | {:.0}× fewer |",
        naive_calls / our_calls
    )?;
    writeln!(out, "| host peak RSS | {our_rss:.0} MiB | | |\n")?;
    if let Some((sync, noop)) = &large {
        let people = args.large;
        writeln!(out, "## {people} people (one run)\n")?;
        writeln!(out, "| | initial sync | no-op pass |")?;
        writeln!(out, "|---|---:|---:|")?;
        writeln!(
            out,
            "| wall time | {:.2} s | {:.2} s |",
            sync.wall.as_secs_f64(),
            noop.wall.as_secs_f64()
        )?;
        writeln!(
            out,
            "| people per second | {:.0} | {:.0} |",
            rate(sync, people),
            rate(noop, people)
        )?;
        writeln!(
            out,
            "| API calls (per person) | {} ({:.4}) | {} |",
            sync.calls,
            sync.calls as f64 / people as f64,
            noop.calls
        )?;
        writeln!(out, "| writes | {} | {} |", sync.writes, noop.writes)?;
        writeln!(
            out,
            "| host peak RSS | {} MiB | {} MiB |\n",
            sync.max_rss_kib / 1024,
            noop.max_rss_kib / 1024
        )?;
    }
    if let Some(figures) = &under_latency {
        latency_section(&mut out, figures, &args)?;
    }
    writeln!(out, "## No-op pass over {n} linked people\n")?;
    writeln!(
        out,
        "{noop_wall:.2} s (median), {noop_calls} API calls, {noop_writes} writes.\n"
    )?;
    writeln!(out, "## Steady state with `provisioner run`\n")?;
    writeln!(
        out,
        "{} single-attribute changes over {n} linked people, from the change committed to the directory to the new value in the emulator: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )?;
    inbound_section(&mut out, &inbound)?;
    writeln!(out, "## Sandbox\n")?;
    writeln!(
        out,
        "Entering the component for a call that does no I/O (a fresh instance, its calls out for settings, and the way back): {:.1} µs per call, averaged over {} calls.\n",
        entry.as_secs_f64() * 1e6,
        args.entries,
    )?;
    if let Some((old, new)) = by_contract {
        let kib = |path: Option<&PathBuf>| {
            path.and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len() / 1024)
                .unwrap_or(0)
        };
        writeln!(
            out,
            "The same call on the same connector source built for each contract version, in alternating rounds: {:.1} µs built for contract 0.1 ({} KiB), {:.1} µs built for 0.2 ({} KiB), a ratio of {:.3}. The host dispatches both through one enum of per-version bindings.\n",
            old.as_secs_f64() * 1e6,
            kib(args.component_v0_1.as_ref()),
            new.as_secs_f64() * 1e6,
            kib(Some(&args.component)),
            new.as_secs_f64() / old.as_secs_f64(),
        )?;
    }
    writeln!(
        out,
        "An instrumented initial sync of {n} people (one more run, with the runtime's per-call debug lines on) made {sandbox_calls} component calls, which spent {:.1} ms inside the sandbox (instantiation, guest code and crossings; waits on brokered HTTP excluded) of {:.2} s wall. The same logic compiled natively would still spend part of that time, so component over native wall time is at most {native_bound:.3}.\n",
        sandbox.as_secs_f64() * 1e3,
        sandbox_wall.as_secs_f64(),
    )?;
    writeln!(
        out,
        "Whole initial sync of {n} people, `provisioner-linked` (this bench-only build of the host) calling the component against the same build answering the connector's `apply` and `lookup-records` with its logic compiled natively and linked in, both through the same broker, a fresh org each, in {whole_runs} pairs run back to back: the component {whole_component:.3} s, native {whole_native:.3} s (medians). Component over native, the median of the pairs' ratios: **{measured_ratio:.3}** for workload 1. In host CPU time (user and system): the component {:.3} s, native {:.3} s, ratio {cpu_ratio:.3}.\n",
        cpu_component, cpu_native,
    )?;
    writeln!(
        out,
        "Side by side, the connector's calls alone (lookups of 1,000 Emails, then creates in batches of 200, with no engine around them), each call made on the component and on native in turn, each side against an org of its own: all calls of a run took the component {:.3} s, native {:.3} s (medians of {runs}): **{native_ratio:.3}**. Subtracting that difference from the measured sync ({our_wall:.2} s, median above) gives {whole_ratio:.3}, a cross-check on the direct measure. Call by call:\n",
        component_wall, native_wall,
    )?;
    writeln!(
        out,
        "| call | component | native | ratio of each pair of calls, median |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for (what, kind) in CALL_KINDS {
        let (component, native, ratio) = per_call(&side_runs, kind);
        writeln!(
            out,
            "| {what} | {:.0} µs | {:.0} µs | {ratio:.3} |",
            component.as_secs_f64() * 1e6,
            native.as_secs_f64() * 1e6,
        )?;
    }
    writeln!(out)?;
    if let Some(scim) = &scim {
        scim_section(&mut out, scim)?;
    }
    writeln!(out, "## Targets\n")?;
    writeln!(out, "| target | measured | |")?;
    writeln!(out, "|---|---|---|")?;
    writeln!(
        out,
        "| ≤ 0.02 API calls per person, initial sync | {our_calls:.4} | {} |",
        met(our_calls <= 0.02)
    )?;
    writeln!(
        out,
        "| 0 calls on a no-op pass | {noop_calls} | {} |",
        met(noop_calls == 0 && large.as_ref().is_none_or(|(_, n)| n.calls == 0))
    )?;
    writeln!(
        out,
        "| throughput ≥ 20× the naive baseline | {:.1}× | {} |",
        our_rate / naive_rate,
        met(our_rate / naive_rate >= 20.0)
    )?;
    writeln!(
        out,
        "| single-change p99 < 100 ms | {:.1} ms | {} |",
        p99.as_secs_f64() * 1e3,
        met(p99 < Duration::from_millis(100))
    )?;
    let creates_per_second = inbound.creates as f64 / inbound.create_wall.as_secs_f64();
    writeln!(
        out,
        "| SCIM inbound: ≥ 1,000 creates per second from {} clients | {creates_per_second:.0} | {} |",
        inbound.clients,
        met(creates_per_second >= 1000.0)
    )?;
    let to_emulator = percentile(&inbound.to_emulator, 0.99);
    writeln!(
        out,
        "| SCIM inbound: p99 < 50 ms from a PATCH to the value in the emulator | {:.1} ms (a PATCH's own p99: {:.1} ms) | {} |",
        to_emulator.as_secs_f64() * 1e3,
        percentile(&inbound.patches, 0.99).as_secs_f64() * 1e3,
        met(to_emulator < Duration::from_millis(50))
    )?;
    writeln!(
        out,
        "| component vs native wall time ≤ 1.10, workload 1 | {measured_ratio:.3} for the whole sync; {native_ratio:.3} on the connector's calls alone | {} |",
        met(measured_ratio <= 1.10)
    )?;
    if let Some((runs, _)) = &under_latency
        && let Some(best) = runs.iter().min_by(|a, b| a.sync.wall.cmp(&b.sync.wall))
    {
        writeln!(
            out,
            "| ≤ 20 s for an initial sync of {} people under {} ms of latency | {:.1} s at concurrency {}, at most {} requests in flight | {} |",
            best.people,
            args.latency_ms,
            best.sync.wall.as_secs_f64(),
            best.concurrency,
            best.most_in_flight,
            if best.people >= 100_000 {
                met(best.sync.wall <= Duration::from_secs(20))
            } else {
                "fewer people than the target's 100,000"
            }
        )?;
    }
    match &large {
        Some((sync, _)) => writeln!(
            out,
            "| host peak RSS ≤ 300 MB at {} people | {:.0} MB | {} |",
            args.large,
            sync.max_rss_kib as f64 * 1024.0 / 1e6,
            met(sync.max_rss_kib as f64 * 1024.0 <= 300e6)
        )?,
        None => writeln!(
            out,
            "| host peak RSS ≤ 300 MB at 100,000 people | not run | |"
        )?,
    }
    if let Some(scim) = &scim {
        let per_person = scim.bulk.requests as f64 / scim.people as f64;
        writeln!(
            out,
            "| SCIM: ≤ 0.02 requests per person with /Bulk, initial sync | {per_person:.4} | {} |",
            met(per_person <= 0.02)
        )?;
        let (leave, join) = (
            scim.leave - scim.config_reads.min(scim.leave),
            scim.join - scim.config_reads.min(scim.join),
        );
        writeln!(
            out,
            "| SCIM: one member of a {}-member group changed costs one request | {leave} leaving, {join} joining (plus {} read of the provider's configuration per one-shot sync) | {} |",
            scim.people,
            scim.config_reads,
            met(leave == 1 && join == 1)
        )?;
    }
    std::fs::write(&args.out, &out).with_context(|| format!("writing {}", args.out.display()))?;
    print!("{out}");
    Ok(())
}

/// Concurrent SCIM clients creating people, for the inbound workload.
const SCIM_CLIENTS: usize = 8;
const SCIM_CREATES: usize = 4000;

/// The SCIM inbound workload's section of the report.
fn inbound_section(out: &mut String, inbound: &scim_inbound::Figures) -> std::fmt::Result {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    writeln!(out, "## SCIM 2.0 inbound\n")?;
    writeln!(
        out,
        "`provisioner run` serving SCIM over the org synced above. {} creates from {} concurrent clients took {:.2} s: {:.0} creates per second, each committed before its answer. {} PATCHes one after another: p50 {:.1} ms, p99 {:.1} ms. From sending a PATCH of a synced person's title to the new title in the emulator, over {} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
        inbound.creates,
        inbound.clients,
        inbound.create_wall.as_secs_f64(),
        inbound.creates as f64 / inbound.create_wall.as_secs_f64(),
        inbound.patches.len(),
        ms(percentile(&inbound.patches, 0.50)),
        ms(percentile(&inbound.patches, 0.99)),
        inbound.to_emulator.len(),
        ms(percentile(&inbound.to_emulator, 0.50)),
        ms(percentile(&inbound.to_emulator, 0.99)),
        ms(inbound.to_emulator.last().copied().unwrap_or_default()),
    )
}

/// The SCIM workload's section of the report.
/// The runs under latency: ours at each concurrency, then the naive
/// client's sample.
async fn latency_workload(
    args: &Args,
    provisioner: &Path,
    cache: &Path,
) -> anyhow::Result<(Vec<latency::LatencyRun>, latency::NaiveSample)> {
    let delay = latency::latency(args.latency_ms, args.latency_jitter_ms);
    let mut runs = Vec::new();
    for &concurrency in &args.latency_concurrency {
        eprintln!(
            "latency: {} people, {} ms ± {} ms, concurrency {concurrency}",
            args.latency_people, args.latency_ms, args.latency_jitter_ms
        );
        let org = Org::new(args, provisioner, cache).await?;
        let run = latency::ours(&org, args.latency_people, concurrency, &delay).await?;
        eprintln!(
            "  {:.2?}, {} calls, at most {} in flight",
            run.sync.wall, run.sync.calls, run.most_in_flight
        );
        runs.push(run);
    }
    eprintln!(
        "latency: the naive client on {} people",
        args.latency_sample
    );
    let naive = latency::naive(args.latency_sample, &delay).await?;
    Ok((runs, naive))
}

fn latency_section(
    out: &mut String,
    (runs, naive): &(Vec<latency::LatencyRun>, latency::NaiveSample),
    args: &Args,
) -> std::fmt::Result {
    let Some(n) = runs.first().map(|r| r.people) else {
        return Ok(());
    };
    writeln!(
        out,
        "## Initial sync of {n} people under latency\n\nThe emulator delayed every API request by {} ms ± {} ms (uniform). One run each; `[sync] concurrency` is the number of batches in flight to a connection. The naive client provisioned {} people under the same latency, one after another; its time is extrapolated to {n}.\n",
        args.latency_ms, args.latency_jitter_ms, naive.people
    )?;
    writeln!(
        out,
        "| | wall time | people per second | API requests (per person) | most requests in flight | host peak RSS |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for run in runs {
        writeln!(
            out,
            "| ours, concurrency {} | {:.1} s | {:.0} | {} ({:.4}) | {} | {} MiB |",
            run.concurrency,
            run.sync.wall.as_secs_f64(),
            n as f64 / run.sync.wall.as_secs_f64(),
            run.sync.calls,
            run.sync.calls as f64 / n as f64,
            run.most_in_flight,
            run.sync.max_rss_kib / 1024
        )?;
    }
    let naive_wall = naive.extrapolated(n);
    writeln!(
        out,
        "| naive, extrapolated from {} | {:.0} s | {:.1} | {:.0} ({:.4}) | 1 | |\n",
        naive.people,
        naive_wall.as_secs_f64(),
        n as f64 / naive_wall.as_secs_f64(),
        naive.calls as f64 * n as f64 / naive.people as f64,
        naive.calls as f64 / naive.people as f64
    )?;
    if let Some(best) = runs.iter().min_by(|a, b| a.sync.wall.cmp(&b.sync.wall)) {
        writeln!(
            out,
            "Ours at concurrency {} over the naive client: {:.0}× less wall time.\n",
            best.concurrency,
            naive_wall.as_secs_f64() / best.sync.wall.as_secs_f64()
        )?;
    }
    Ok(())
}

fn scim_section(out: &mut String, scim: &scim::Figures) -> std::fmt::Result {
    let n = scim.people;
    writeln!(
        out,
        "## SCIM 2.0: initial sync of {n} people into the reference server\n"
    )?;
    writeln!(
        out,
        "The reference server is `scim2-server` {} (Python, in memory) on loopback; it counts the requests in its own log. One run each, the server without /Bulk first, each a fresh server; the rule pushes one group of everyone.\n",
        scim_reference::VERSION
    )?;
    writeln!(out, "| | with /Bulk | without /Bulk | ratio |")?;
    writeln!(out, "|---|---:|---:|---:|")?;
    writeln!(
        out,
        "| requests | {} | {} | {:.3} |",
        scim.bulk.requests,
        scim.single.requests,
        scim.bulk.requests as f64 / scim.single.requests.max(1) as f64
    )?;
    writeln!(
        out,
        "| requests per person | {:.4} | {:.4} | |",
        scim.bulk.requests as f64 / n as f64,
        scim.single.requests as f64 / n as f64
    )?;
    writeln!(
        out,
        "| wall time | {:.1} s | {:.1} s | {:.3} |\n",
        scim.bulk.wall.as_secs_f64(),
        scim.single.wall.as_secs_f64(),
        scim.bulk.wall.as_secs_f64() / scim.single.wall.as_secs_f64().max(f64::EPSILON)
    )?;
    writeln!(
        out,
        "The wall times are the reference server's own: in memory and in Python, it checks each new user's uniqueness and evaluates each filter over every user, so its time, not the host's or the number of requests, decides them on loopback. Without /Bulk the floor is one request per write ({n} creates), plus the lookups before them and one for the group. The pushed group of {n} members: the pass after one member left cost {} request(s), the pass after they joined again {}, each counting {} read of `/ServiceProviderConfig`, which a one-shot `sync` makes once per process and `provisioner run` keeps for ten minutes.\n",
        scim.leave, scim.join, scim.config_reads
    )?;
    writeln!(
        out,
        "The same two changes synced as the daemon syncs a change, by a pass over the one person who changed (`sync --person`), which keeps only that person's groups: {} and {} request(s), in {:.2} s and {:.2} s, against {:.2} s for a pass over everyone with nothing to do ({} request(s)). Each is a whole process, so the times include starting it and loading the component.\n",
        scim.leave_one.requests,
        scim.join_one.requests,
        scim.leave_one.wall.as_secs_f64(),
        scim.join_one.wall.as_secs_f64(),
        scim.idle.wall.as_secs_f64(),
        scim.idle.requests
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner::runtime::contract::{Attribute, Operation, StoreError, Value as V};

    /// Calls into the component so far, from the host's own metrics.
    async fn apply_calls() -> u64 {
        let db = StateDb::in_memory().unwrap();
        let text = provisioner::status::metrics::render(&db, &[])
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("provisioner_plugin_call_seconds_count"))
            .filter(|l| l.contains("method=\"apply\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn text(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: V::Text(value.into()),
        }
    }

    /// The bench's native side must be the same logic answering the same
    /// way, or workload 4 compares different work: the linked logic and
    /// the component give identical answers to creates, a refused create,
    /// an update of a record that does not exist, and a lookup; and the
    /// linked side never enters the component.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn linked_logic_answers_as_the_component_does() {
        let cache = tempfile::tempdir().unwrap();
        let args = Args::parse_from(["provisioner-bench", "--component", test_plugins::SALESFORCE]);
        let mut answers = Vec::new();
        for native in [false, true] {
            let org = Org::new(&args, Path::new("unused"), cache.path())
                .await
                .unwrap();
            let link: Link = if native { linked::native } else { component };
            let connector = org.connect(link).await.unwrap();
            let before = apply_calls().await;
            let applied = connector
                .apply(vec![
                    Operation::Create {
                        attributes: vec![
                            text("LastName", "Lovelace"),
                            text("Email", "ada@example.com"),
                        ],
                    },
                    // A Lead needs a LastName.
                    Operation::Create {
                        attributes: vec![text("Email", "nameless@example.com")],
                    },
                    Operation::Update {
                        id: "00Q5g000000ZZZZZZZ".into(),
                        attributes: vec![text("Title", "CTO")],
                        version: None,
                    },
                ])
                .await
                .unwrap();
            let entered = apply_calls().await - before;
            assert_eq!(entered, u64::from(!native), "native: {native}");
            let found = connector
                .lookup(
                    "Email",
                    vec!["ADA@example.com".into(), "nobody@example.com".into()],
                )
                .await
                .unwrap();
            answers.push((applied, found, org.leads()));
        }
        let (applied, found, leads) = &answers[0];
        assert!(applied[0].is_ok(), "{applied:?}");
        assert!(
            matches!(&applied[1], Err(StoreError::Rejected { code, .. }) if code == "REQUIRED_FIELD_MISSING"),
            "{applied:?}"
        );
        assert!(applied[2].is_err(), "{applied:?}");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].value, "ADA@example.com");
        assert_eq!(*leads, 1);
        assert_eq!(answers[0], answers[1], "component, then native");
    }
}
