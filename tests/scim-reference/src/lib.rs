//! The reference SCIM 2.0 server, `scim2-server` from the Python package
//! index, started on loopback for a test and stopped when dropped: the
//! SCIM connector is tested against a server no one here wrote.
//! `tests/setup.sh` installs it into a virtual environment; set
//! `PROVISIONER_SCIM_SERVER` to the `scim2-server` executable to use
//! another.
//!
//! Its configuration can be narrowed ([`Options::features`]), to test the
//! connector against a provider without `/Bulk` or without PATCH.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

/// The version `tests/setup.sh` installs.
pub const VERSION: &str = "0.8.3";

/// The server's SCIM base path.
pub const BASE_PATH: &str = "/v2";

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Options {
    /// The bearer token the server accepts.
    pub token: String,
    /// What `/ServiceProviderConfig` announces; `None` for the server's
    /// own (everything but cursor paging).
    pub features: Option<Json>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: "scim-test-token-0123456789".into(),
            features: None,
        }
    }
}

/// A configuration that announces everything but `/Bulk`.
pub fn without_bulk() -> Json {
    features(true, false)
}

/// A configuration that announces everything but PATCH (and `/Bulk`,
/// whose updates are PATCH operations).
pub fn without_patch() -> Json {
    features(false, false)
}

fn features(patch: bool, bulk: bool) -> Json {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": patch},
        "bulk": {"supported": bulk, "maxOperations": 1000, "maxPayloadSize": 1048576},
        "filter": {"supported": true, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "bearer_token",
            "description": "HTTP Bearer Token",
        }],
    })
}

/// The running server.
pub struct ScimServer {
    child: Child,
    address: SocketAddr,
    token: String,
    http: reqwest::blocking::Client,
    /// Probes sent, to tell each one's line in the log.
    probes: AtomicU64,
    dir: tempfile::TempDir,
}

/// Runs the reference server's own command line, serving one request at
/// a time: its server handles each request in a thread of its own and
/// logs it after answering, so that a request answered before a probe
/// could be logged after it, and a count read at the probe's line would
/// miss it. One at a time, every request answered before the probe is in
/// the log before the probe's line. The server's code is otherwise the
/// same; its HTTP/1.0 handler closes each connection, so no client holds
/// another back. Without the virtual environment's Python beside the
/// executable (`PROVISIONER_SCIM_SERVER` pointing elsewhere), the command
/// runs as installed.
fn command(executable: &Path) -> Command {
    const SERIAL: &str = "import wsgiref.simple_server as s, scim2_server.testserver.cli as c; \
                          c.ThreadingWSGIServer = s.WSGIServer; c.main()";
    match executable.parent().map(|bin| bin.join("python")) {
        Some(python) if python.exists() => {
            let mut command = Command::new(python);
            command.args(["-c", SERIAL]);
            command
        }
        _ => Command::new(executable),
    }
}

/// The `scim2-server` executable: `PROVISIONER_SCIM_SERVER`, or where
/// `tests/setup.sh` installs it.
pub fn executable() -> PathBuf {
    if let Some(path) = std::env::var_os("PROVISIONER_SCIM_SERVER") {
        return PathBuf::from(path);
    }
    let venv = std::env::var_os("PROVISIONER_SCIM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from("."));
            cache
                .join("provisioner-test-tools")
                .join(format!("scim2-server-{VERSION}"))
        });
    venv.join("bin").join("scim2-server")
}

impl ScimServer {
    /// Starts a server on a free loopback port and waits until it listens.
    pub fn start(options: Options) -> Result<ScimServer, String> {
        let executable = executable();
        if !executable.exists() {
            return Err(format!(
                "the reference SCIM server is not installed at {}; run `bash tests/setup.sh`",
                executable.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut args = vec!["--bearer-token".to_string(), options.token.clone()];
        if let Some(features) = &options.features {
            let path = dir.path().join("service-provider-config.json");
            std::fs::write(&path, features.to_string()).map_err(|e| e.to_string())?;
            args.push("--service-provider-config".into());
            args.push(path.display().to_string());
        }
        // A port found free may be taken before the server binds it; then
        // the server exits, and another port is tried.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            // The server logs one line per request on stderr: the count of
            // requests a client made, read by [`ScimServer::requests`].
            let log = std::fs::File::create(dir.path().join("requests.log"))
                .map_err(|e| e.to_string())?;
            let mut child = command(&executable)
                .args(&args)
                .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", executable.display()))?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let log = dir.path().join("requests.log");
            match wait_listening(&mut child, address, &log) {
                Ok(()) => {
                    return Ok(ScimServer {
                        child,
                        address,
                        token: options.token,
                        http: reqwest::blocking::Client::new(),
                        probes: AtomicU64::new(0),
                        dir,
                    });
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = reason;
                }
            }
        }
        Err(format!("the reference SCIM server did not start: {last}"))
    }

    /// `127.0.0.1:PORT`, the connector's `host` setting.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Requests the server has answered so far, by its own log: a
    /// client's count of requests, witnessed by the server. Reads made
    /// through [`ScimServer::get`] count too.
    pub fn requests(&self) -> usize {
        self.requests_to("")
    }

    /// Requests so far whose request line holds `fragment`, e.g.
    /// `"PATCH /v2/Groups"` or `"/ServiceProviderConfig"`.
    ///
    /// The server logs a request after it has answered it, so a client
    /// can have its answer before the line is written. A probe first, and
    /// its own line awaited, lets the requests answered before it reach
    /// the log.
    pub fn requests_to(&self, fragment: &str) -> usize {
        let log = self.dir.path().join("requests.log");
        let nonce = format!("n{}", self.probes.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        while !probe(&self.http, self.address, &log, &nonce) {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the reference SCIM server logged no probe within {START_TIMEOUT:?}"
            );
        }
        std::fs::read_to_string(log)
            .map(|log| {
                log.lines()
                    .filter(|l| l.contains("\" ") && l.contains(" HTTP/1.") && l.contains(fragment))
                    .filter(|l| !l.contains(PROBE))
                    .count()
            })
            .unwrap_or(0)
    }

    /// A resource or listing read straight from the server, outside the
    /// connector: `get("/Users?filter=...")`.
    pub fn get(&self, path: &str) -> Json {
        self.http
            .get(format!("http://{}{BASE_PATH}{path}", self.address))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.json::<Json>())
            .unwrap_or_else(|e| panic!("GET {path} from the reference SCIM server: {e}"))
    }

    /// Every user the server holds.
    pub fn users(&self) -> Vec<Json> {
        self.all("/Users")
    }

    /// Every group the server holds.
    pub fn groups(&self) -> Vec<Json> {
        self.all("/Groups")
    }

    fn all(&self, path: &str) -> Vec<Json> {
        let mut out = Vec::new();
        loop {
            let page = self.get(&format!("{path}?startIndex={}&count=1000", out.len() + 1));
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let done = resources.is_empty();
            out.extend(resources);
            if done || out.len() >= total {
                return out;
            }
        }
    }

    /// Creates a user behind the connector's back, as an administrator of
    /// the provider would; its id.
    pub fn create_user(&self, user: Json) -> String {
        let created: Json = self
            .http
            .post(format!("http://{}{BASE_PATH}/Users", self.address))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(user.to_string())
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("creating a user on the reference SCIM server: {e}"));
        created["id"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Marks the requests that only check which server listens, or that the
/// log has caught up; they are not counted.
const PROBE: &str = "__probe=";

/// Sends a probe marked `nonce` to `address`, and says whether `log` has
/// it soon after: whether the server that answered is the one that
/// writes `log`.
fn probe(http: &reqwest::blocking::Client, address: SocketAddr, log: &Path, nonce: &str) -> bool {
    let url = format!("http://{address}{BASE_PATH}/ServiceProviderConfig?{PROBE}{nonce}");
    if http.get(&url).send().is_err() {
        return false;
    }
    // The answer comes before the log line; wait for the line, a while.
    let answered = Instant::now();
    while answered.elapsed() < Duration::from_secs(2) {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains(nonce)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Waits until this server answers on `address`, or says why not. A
/// connection alone proves nothing: when two tests draw the same free
/// port, the one whose server did not bind it would reach the other's.
/// So a probe carries a token of this start, and counts only once this
/// server's own log has it.
fn wait_listening(child: &mut Child, address: SocketAddr, log: &Path) -> Result<(), String> {
    let started = Instant::now();
    let nonce = format!("{}-{:?}", std::process::id(), started);
    let nonce: String = nonce.chars().filter(char::is_ascii_alphanumeric).collect();
    let http = reqwest::blocking::Client::new();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
            && probe(&http, address, log, &nonce)
        {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "nothing listened on {address} within {START_TIMEOUT:?}"
            ));
        }
        // Polls a process that is starting; the loop ends on its own signal
        // (a connection, or the process's exit), not on this pause.
        std::thread::sleep(Duration::from_millis(50));
    }
}
