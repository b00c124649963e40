//! Shared fixtures for the host's integration tests: a temporary working
//! directory with a plugin directory, configuration and secrets file; the
//! real `provisioner` binary; captured logs; and connections built through
//! the same configuration path the binary uses.

#![allow(dead_code)]

pub mod world;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use provisioner::config::Config;
use provisioner::runtime::{Connector, PluginSet, Runtime, RuntimeOptions};

/// Distinctive secret values: if any of them shows up in a log line, an
/// error text or a guest-visible value, a test fails.
pub const CLIENT_ID: &str = "cid-Zq81-distinctive";
pub const CLIENT_SECRET: &str = "csec-Hx93-distinctive-secret";
pub const REFRESH_TOKEN: &str = "rtok-Pv55-distinctive-refresh";
pub const STALE_ACCESS_TOKEN: &str = "atok-Mm20-distinctive-stale";

/// The operator token for the status endpoints.
pub const STATUS_TOKEN: &str = "stat-Kq71-distinctive-operator-token";

pub const ALL_SECRETS: &[&str] = &[
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    STALE_ACCESS_TOKEN,
    STATUS_TOKEN,
];

/// A working directory for one test.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// With `PROVISIONER_TEST_BACKEND=postgres`, the PostgreSQL database
    /// that holds the state in place of a file: every run of the binary is
    /// given it as `PROVISIONER_STATE`.
    pub database: Option<TestDatabase>,
}

/// The variable that runs the suites on PostgreSQL (`postgres`) rather than
/// on a state file.
pub const BACKEND_VARIABLE: &str = "PROVISIONER_TEST_BACKEND";

/// A database of its own on the PostgreSQL test server (started by
/// `tests/postgres.sh`, or named by `PROVISIONER_TEST_POSTGRES`), dropped
/// with this.
pub struct TestDatabase {
    admin: String,
    name: String,
    pub url: String,
}

/// Runs `f` on a runtime of its own, so that `Drop` can use it too.
fn aside<F: Future<Output = ()> + Send + 'static>(f: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f)
    })
    .join()
    .expect("the database thread");
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let admin_url = std::env::var("PROVISIONER_TEST_POSTGRES").unwrap_or_else(|_| {
            let user = match std::env::var("USER") {
                Ok(user) if !user.is_empty() && user != "root" => user,
                _ => "postgres".into(),
            };
            format!("postgres://{user}@127.0.0.1:54329/postgres")
        });
        let name = format!(
            "provisioner_it_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let slash = admin_url.rfind('/').expect("a URL with a database");
        let url = format!("{}/{name}", &admin_url[..slash]);
        let (a, n) = (admin_url.clone(), name.clone());
        aside(async move {
            let client = admin(&a).await.unwrap_or_else(|e| {
                panic!(
                    "no PostgreSQL server answers at {a} ({e}); start one with `bash tests/postgres.sh`, or set PROVISIONER_TEST_POSTGRES"
                )
            });
            // A linguistic default collation, so that a statement that
            // leans on the locale rather than byte order fails here.
            client
                .batch_execute(&format!(
                    "CREATE DATABASE {n} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                ))
                .await
                .expect("creating the test database");
        });
        TestDatabase {
            admin: admin_url,
            name,
            url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (a, n) = (self.admin.clone(), self.name.clone());
        aside(async move {
            if let Ok(client) = admin(&a).await {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                    .await;
            }
        });
    }
}

impl Fixture {
    /// A fixture whose plugin directory holds copies of `plugins`, with
    /// its state in a file, or in PostgreSQL when [`BACKEND_VARIABLE`] says
    /// so.
    pub fn new(plugins: &[&str]) -> Fixture {
        let postgres = std::env::var(BACKEND_VARIABLE).is_ok_and(|b| b == "postgres");
        Fixture::with(plugins, postgres)
    }

    /// A fixture whose state is a file whatever the backend under test:
    /// for the tests of the file itself.
    pub fn on_file(plugins: &[&str]) -> Fixture {
        Fixture::with(plugins, false)
    }

    fn with(plugins: &[&str], postgres: bool) -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().expect("temporary directory"),
            database: postgres.then(TestDatabase::create),
        };
        std::fs::create_dir_all(fixture.plugin_dir()).expect("plugin directory");
        for plugin in plugins {
            fixture.add_plugin(plugin);
        }
        fixture
    }

    /// The binary with this fixture's configuration, cache and state, for
    /// a test that runs it its own way.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"));
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("--cache-dir")
            .arg(cache_dir());
        if let Some(database) = &self.database {
            command.env("PROVISIONER_STATE", &database.url);
        }
        command
    }

    /// `state check --json`, which must find the state healthy: its
    /// counts by table, on either backend.
    pub async fn state_counts(&self) -> serde_json::Value {
        let run = self.provisioner(&["state", "check", "--json"], &[]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        let check: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        check["counts"].clone()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.path().join("plugins")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("provisioner.toml")
    }

    pub fn secrets_path(&self) -> PathBuf {
        self.path().join("secrets.toml")
    }

    /// Copies a built component into the plugin directory.
    pub fn add_plugin(&self, component: &str) -> PathBuf {
        let name = Path::new(component).file_name().expect("file name");
        let dest = self.plugin_dir().join(name);
        std::fs::copy(component, &dest).expect("copying a component");
        dest
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("writing provisioner.toml");
    }

    /// Writes the secrets file with mode 0600.
    pub fn write_secrets(&self, text: &str) {
        write_private(&self.secrets_path(), text);
    }

    pub fn secrets(&self) -> String {
        std::fs::read_to_string(self.secrets_path()).expect("reading secrets.toml")
    }

    /// Runs the real binary with this fixture's configuration.
    pub async fn provisioner(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command();
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("PROVISIONER_PLUGIN_DIR")
            .env_remove("PROVISIONER_CONFIG")
            .current_dir(self.path())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("provisioner finished within two minutes")
            .expect("running provisioner");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub fn write_private(path: &Path, text: &str) {
    let mut file = std::fs::File::create(path).expect("creating a private file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600");
    }
    file.write_all(text.as_bytes()).expect("writing");
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// One compiled-code cache for every test, so that each component is
/// compiled once per machine rather than once per test.
/// The repository's root, found when the test runs rather than when it was
/// compiled: a test binary may come from another checkout that shares the
/// target directory.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

pub fn runtime_options() -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(cache_dir()),
        ..RuntimeOptions::default()
    }
}

/// Loads the fixture's configuration and plugins, and binds one connection,
/// the way the binary does.
pub async fn connect(
    fixture: &Fixture,
    options: RuntimeOptions,
    connection: &str,
) -> (Arc<Runtime>, PluginSet, Connector) {
    let config = Config::load(&fixture.config_path()).expect("configuration loads");
    let runtime = Runtime::new(options).expect("runtime");
    let plugins = runtime
        .load_dir(&fixture.plugin_dir())
        .await
        .expect("plugin directory");
    let connector = bind(&config, &plugins, connection);
    (runtime, plugins, connector)
}

pub fn bind(config: &Config, plugins: &PluginSet, connection: &str) -> Connector {
    let secrets = Arc::new(config.secret_store().expect("secret store"));
    let resolved = match config.resolve(connection, plugins, &secrets) {
        Ok(resolved) => resolved,
        Err(errors) => panic!(
            "connection {connection} does not resolve: {}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    resolved
        .connect(config.http_limits(), secrets, None)
        .expect("connection binds")
}

/// The top of every test configuration: secrets come from `secrets.toml`.
pub const HEADER: &str = "secrets_file = \"secrets.toml\"\n";

/// A connection to a json-store server, with host-held OAuth secrets from
/// the secrets file (see [`HEADER`]).
pub fn json_store_connection(name: &str, host: &str) -> String {
    format!(
        r#"
[connections.{name}]
plugin = "json-store"
allow_insecure_loopback = true

[connections.{name}.settings]
host = "{host}"

[connections.{name}.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
access_token = {{ secrets_file = "access_token" }}
refresh_token = {{ secrets_file = "refresh_token" }}
"#
    )
}

/// The secrets file matching [`json_store_connection`], plus the status
/// token.
pub fn json_store_secrets() -> String {
    format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\naccess_token = \"{STALE_ACCESS_TOKEN}\"\nrefresh_token = \"{REFRESH_TOKEN}\"\nstatus_token = \"{STATUS_TOKEN}\"\n"
    )
}

/// A running `provisioner run`, its status URL, and everything it logged.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub url: String,
    /// The SCIM service provider's `/scim/v2` URL, when `[scim] listen`
    /// is set.
    pub scim: Option<String>,
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon with status on an ephemeral port and waits until
    /// it serves.
    pub async fn start(fixture: &Fixture) -> Daemon {
        Daemon::start_with(fixture, &[]).await
    }

    /// Starts the daemon with extra arguments to `run`.
    pub async fn start_with(fixture: &Fixture, args: &[&str]) -> Daemon {
        Daemon::start_on(fixture, "127.0.0.1:0", args).await
    }

    /// Starts the daemon with status on `listen`. The URL it is reached at
    /// is on loopback even when it listens on every address.
    pub async fn start_on(fixture: &Fixture, listen: &str, args: &[&str]) -> Daemon {
        use tokio::io::AsyncBufReadExt;
        let mut child = fixture
            .command()
            .args(["run", "--listen", listen])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting provisioner run");
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, mut url) = tokio::sync::mpsc::channel::<(String, Option<String>)>(1);
        // The address comes as the one JSON line the daemon writes on
        // standard output.
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let announced: serde_json::Value =
                    serde_json::from_str(&line).expect("the daemon's stdout is JSON lines");
                let address = announced["status"]
                    .as_str()
                    .expect("the announcement names the status URL")
                    .trim_end_matches('/')
                    .replace("//0.0.0.0:", "//127.0.0.1:");
                let scim = announced["scim"].as_str().map(str::to_string);
                let _ = found.try_send((address, scim));
            }
        });
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (url, scim) = tokio::time::timeout(Duration::from_secs(60), url.recv())
            .await
            .expect("the daemon served status within a minute")
            .expect("the daemon announced its address");
        Daemon {
            child,
            url,
            scim,
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `GET` a path of the status server, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("the status server answers")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// `GET` a path of the status server, as text.
    pub async fn get_text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("the status server answers")
            .text()
            .await
            .expect("a text answer")
    }

    /// The last `lines` lines logged, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, and the exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stopped within 30 s")
            .expect("waiting for the daemon")
    }
}

/// A fixture with the json-store connector and a `store` connection to
/// `server`.
pub fn json_store_fixture(server: &json_store::JsonStore) -> Fixture {
    let fixture = Fixture::new(&[test_plugins::JSON_STORE]);
    fixture.write_config(&format!(
        "{HEADER}{}",
        json_store_connection("store", &server.host())
    ));
    fixture.write_secrets(&json_store_secrets());
    fixture
}

/// Fails if any of the fixture's secrets appears in `text`.
pub fn assert_no_secret(text: &str) {
    for secret in ALL_SECRETS {
        assert!(!text.contains(secret), "a secret leaked into:\n{text}");
    }
}

/// Server options that accept the fixture's credentials; the configured
/// access token is stale, so the first call must refresh.
pub fn json_store_options() -> json_store::Options {
    json_store::Options {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_tokens: vec![REFRESH_TOKEN.into()],
        access_tokens: Vec::new(),
        ..json_store::Options::default()
    }
}

/// Everything logged in this test process, for assertions about what the
/// host and its plugins wrote.
pub fn logs() -> String {
    let buffer = log_buffer();
    let bytes = buffer.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this process, at trace level, from here on.
pub fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let buffer = log_buffer().clone();
        let _ = tracing_subscriber::fmt()
            // Everything at trace, but the compiler's own chatter.
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "trace,cranelift=info,cranelift_codegen=info,regalloc2=info,wasmtime_cranelift=info,wasmtime_environ=info",
            ))
            .with_ansi(false)
            .with_writer(move || BufferWriter(buffer.clone()))
            .try_init();
    });
}

/// A TCP listener that no request should ever reach.
pub struct Tripwire {
    listener: std::net::TcpListener,
}

impl Tripwire {
    pub fn new() -> Tripwire {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a tripwire");
        listener
            .set_nonblocking(true)
            .expect("non-blocking tripwire");
        Tripwire { listener }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().expect("tripwire address")
    }

    /// True if anything connected. The connection, had one been made, was
    /// made before the call that tried it returned, so a non-blocking
    /// accept sees it now.
    pub fn tripped(&self) -> bool {
        match self.listener.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("tripwire accept failed: {e}"),
        }
    }
}

/// The fixture's state file, after asserting that it passes
/// `PRAGMA integrity_check`, open for a test's own queries.
/// A fixture whose state is in PostgreSQL has no file to read: that is a
/// failure, not an empty file's vacuous answer.
pub fn intact_state(fixture: &Fixture) -> rusqlite::Connection {
    assert!(
        fixture.database.is_none(),
        "this test reads the state file, and the state is in PostgreSQL ({BACKEND_VARIABLE})"
    );
    let path = fixture.path().join("provisioner.db");
    let check = provisioner::state::StateDb::open(&path)
        .expect("the state file opens")
        .integrity_check()
        .expect("the integrity check runs");
    assert_eq!(check, "ok", "{}", path.display());
    rusqlite::Connection::open(&path).expect("the state file opens")
}

/// Runs `f` over a connection to the fixture's PostgreSQL database.
async fn in_database<T: Send + 'static>(
    database: &TestDatabase,
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> T + Send + 'static,
) -> T {
    let client = admin(&database.url)
        .await
        .expect("connecting to the test database");
    f(&client).await
}

/// The one number `sql` (plain SQL both backends read alike) counts in
/// the fixture's state, file or database; a file must pass its integrity
/// check first.
pub async fn state_count(fixture: &Fixture, sql: &'static str) -> i64 {
    match &fixture.database {
        Some(database) => {
            in_database(database, async move |client| {
                client
                    .query_one(sql, &[])
                    .await
                    .expect(sql)
                    .get::<_, i64>(0)
            })
            .await
        }
        None => intact_state(fixture)
            .query_row(sql, [], |r| r.get(0))
            .expect(sql),
    }
}

/// The (text, text) rows of `sql` in the fixture's state, as a map.
pub async fn state_pairs(
    fixture: &Fixture,
    sql: &'static str,
) -> std::collections::BTreeMap<String, Option<String>> {
    match &fixture.database {
        Some(database) => {
            in_database(database, async move |client| {
                client
                    .query(sql, &[])
                    .await
                    .expect(sql)
                    .iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect()
            })
            .await
        }
        None => {
            let db = intact_state(fixture);
            let mut statement = db.prepare(sql).expect(sql);
            statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect(sql)
                .collect::<rusqlite::Result<_>>()
                .expect(sql)
        }
    }
}

/// Polls `check` until it holds; fails with `what` after 30 s.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(30), what, check).await
}

/// Polls `check` every 100 ms until it holds; fails with `what` after
/// `limit`. For a state another process reaches in its own time: the
/// deadline is a ceiling, never the synchronisation.
pub async fn eventually_within<F, Fut>(limit: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_explained(limit, what, check, async || String::new()).await
}

/// As [`eventually_within`], and on failure adds what `explain` says of
/// the state the wait ended in.
pub async fn eventually_explained<F, Fut>(
    limit: Duration,
    what: &str,
    mut check: F,
    explain: impl AsyncFnOnce() -> String,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting until {what}\n{}", explain().await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A listener on loopback that keeps every byte it is sent and answers
/// each request with one fixed response: the host's only contact with a
/// host that a plugin chose, in the hostile tests.
pub struct Recorder {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Answers every request `200 OK` with a small JSON body.
    pub async fn start() -> Recorder {
        Recorder::answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}"
                .to_string(),
        )
        .await
    }

    /// Answers every request with `response`, verbatim.
    pub async fn answering(response: String) -> Recorder {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a recorder");
        let addr = listener.local_addr().expect("recorder address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (sink, count) = (received.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let sink = sink.clone();
                let response = response.clone();
                tokio::spawn(async move {
                    // Read the head, then as much body as it announces.
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 8192];
                    loop {
                        let Ok(Ok(read)) =
                            tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
                                .await
                        else {
                            break;
                        };
                        if read == 0 {
                            break;
                        }
                        request.extend_from_slice(&buffer[..read]);
                        sink.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend_from_slice(&buffer[..read]);
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                            let length: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Recorder {
            addr,
            received,
            connections,
            task,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything received so far, as text.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned()
    }

    /// Connections accepted so far. Each one was accepted before the
    /// client's call that made it returned.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The forms a leaked secret would take: as it is, URL-encoded, in JSON,
/// in base64.
pub fn leak_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    vec![
        secret.to_string(),
        salesforce_emulator::url_encoded(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ]
}

/// Fails if `text` holds any of `secrets` in any of [`leak_forms`], or
/// any of the fixture's own secrets.
pub fn assert_no_leak(text: &str, secrets: &[String], place: &str) {
    assert_no_secret(text);
    for secret in secrets {
        for form in leak_forms(secret) {
            assert!(
                !text.contains(&form),
                "{place} holds the credential {secret:?} (as {form:?}):\n{text}"
            );
        }
    }
}
