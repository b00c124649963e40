//! The box one plugin call runs in: a fresh store with a memory cap, a CPU
//! budget, WASI with nothing granted, and stdio that lands in the host log.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::broker::{Broker, HttpError};

/// The longest message or line of plugin output kept in the log; the rest
/// is cut.
const MAX_LOG_LINE: usize = 4096;

/// What one call may write to the host log, through the `log` import and
/// its stdout and stderr together. Past either cap, output is dropped and
/// counted, and one line at the end of the call says how much.
const MAX_CALL_LOG_MESSAGES: u64 = 1000;
const MAX_CALL_LOG_BYTES: u64 = 256 << 10;

/// How much of its log allowance a call has used, shared by the `log`
/// import and the stdout and stderr streams.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    messages: u64,
    bytes: u64,
    dropped_messages: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    /// Takes room for a message of `len` bytes; false if it must be dropped.
    fn admit(&mut self, len: usize) -> bool {
        let len = len as u64;
        if self.messages >= MAX_CALL_LOG_MESSAGES || self.bytes + len > MAX_CALL_LOG_BYTES {
            self.dropped_messages += 1;
            self.dropped_bytes += len;
            return false;
        }
        self.messages += 1;
        self.bytes += len;
        true
    }

    /// (messages, bytes) dropped so far.
    pub(crate) fn dropped(&self) -> Option<(u64, u64)> {
        (self.dropped_messages > 0).then_some((self.dropped_messages, self.dropped_bytes))
    }
}

/// Cuts `text` to [`MAX_LOG_LINE`] bytes on a character boundary.
fn cut(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LOG_LINE {
        return Cow::Borrowed(text);
    }
    let mut at = MAX_LOG_LINE;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    Cow::Owned(format!("{}… (cut at {MAX_LOG_LINE} bytes)", &text[..at]))
}

/// Caps the total linear memory of one call's instance. A refused growth is
/// remembered, so that the resulting trap (Rust aborts on allocation
/// failure) is reported as what it is: the memory cap.
pub(crate) struct MemoryCap {
    limit: usize,
    in_use: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.in_use - current.min(self.in_use) + desired;
        if after > self.limit {
            self.refused = Some(after);
            return Ok(false);
        }
        self.in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// How many of the last stderr lines are kept to explain a trap.
const STDERR_TAIL_LINES: usize = 8;

/// Picks the line that explains a trap from the end of a plugin's stderr.
/// Rust prints `thread '…' panicked at src/lib.rs:9:5:` followed by the
/// message, then a `note:` about backtraces.
fn panic_message(tail: &VecDeque<String>) -> Option<String> {
    let lines: Vec<&String> = tail.iter().collect();
    if let Some(at) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let location = lines[at]
            .split_once("panicked at ")
            .map(|(_, rest)| rest.trim_end_matches(':'))
            .unwrap_or("");
        let message = lines.get(at + 1).map(|l| l.as_str()).unwrap_or("");
        return Some(format!("panicked at {location}: {message}"));
    }
    lines
        .iter()
        .rev()
        .find(|l| !l.starts_with("note:"))
        .map(|l| l.to_string())
}

/// What a plugin's log lines are tagged with, and the allowance of the
/// call they belong to.
#[derive(Clone)]
pub(crate) struct LogTags {
    pub plugin: Arc<str>,
    pub connection: Option<Arc<str>>,
    pub budget: Arc<Mutex<LogBudget>>,
}

/// The store data of one plugin call.
pub(crate) struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    tags: LogTags,
    broker: Option<Arc<Broker>>,
    started: Instant,
    host_time: Duration,
    cpu_budget: Duration,
    out_of_time: bool,
    last_http_error: Option<HttpError>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// What this call has used of the broker's allowances.
    call: crate::broker::CallScope,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl PluginState {
    pub(crate) fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.as_ref()
    }

    pub(crate) fn call_scope(&self) -> &crate::broker::CallScope {
        &self.call
    }

    pub(crate) fn add_host_time(&mut self, elapsed: Duration) {
        self.host_time += elapsed;
    }

    pub(crate) fn record_http_error(&mut self, error: HttpError) {
        self.last_http_error = Some(error);
    }

    pub(crate) fn plugin_log(&self, level: tracing::Level, stream: &str, message: &str) {
        emit(&self.tags, level, stream, message);
    }

    /// (messages, bytes) of output this call dropped past its caps.
    pub(crate) fn log_dropped(&self) -> Option<(u64, u64)> {
        self.tags
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dropped()
    }

    /// Time the guest itself has been running, which is what the CPU budget
    /// limits: waiting for brokered HTTP does not count.
    pub(crate) fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    /// What went wrong, as far as the sandbox knows, after a call failed.
    pub(crate) fn fault(&self) -> Fault {
        Fault {
            memory_refused: self.memory.refused.map(|bytes| (bytes, self.memory.limit)),
            out_of_time: self.out_of_time.then_some(self.cpu_budget),
            stderr_tail: self
                .stderr_tail
                .lock()
                .ok()
                .and_then(|tail| panic_message(&tail)),
        }
    }

    pub(crate) fn take_http_error(&mut self) -> Option<HttpError> {
        self.last_http_error.take()
    }
}

/// What the sandbox observed about a failed call.
pub(crate) struct Fault {
    /// (requested total bytes, limit)
    pub memory_refused: Option<(usize, usize)>,
    pub out_of_time: Option<Duration>,
    /// What the plugin last said on stderr, where Rust puts its panic
    /// message.
    pub stderr_tail: Option<String>,
}

/// Limits for one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub memory_bytes: usize,
    pub cpu_budget: Duration,
}

/// Builds the store for one call. Each call gets a fresh instance, so a
/// plugin that trapped, panicked or leaked leaves nothing behind.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    tags: LogTags,
    broker: Option<Arc<Broker>>,
    limits: CallLimits,
) -> Store<PluginState> {
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let wasi = WasiCtx::builder()
        .stdout(LogStream {
            tags: tags.clone(),
            stream: "stdout",
            tail: None,
        })
        .stderr(LogStream {
            tags: tags.clone(),
            stream: "stderr",
            tail: Some(stderr_tail.clone()),
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = PluginState {
        wasi,
        table: ResourceTable::new(),
        memory: MemoryCap {
            limit: limits.memory_bytes,
            in_use: 0,
            refused: None,
        },
        tags,
        broker,
        started: Instant::now(),
        host_time: Duration::ZERO,
        cpu_budget: limits.cpu_budget,
        out_of_time: false,
        last_http_error: None,
        stderr_tail,
        call: Default::default(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    // Every epoch tick, check the budget; otherwise yield to tokio, so that
    // a busy plugin never starves other calls on the same worker thread.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut context| {
        let state = context.data_mut();
        if state.guest_time() > state.cpu_budget {
            state.out_of_time = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// Writes one message of plugin output to the host log: only if the log
/// would show it, within the call's allowance, cut to [`MAX_LOG_LINE`],
/// with control characters escaped so that it stays one inert line.
fn emit(tags: &LogTags, level: tracing::Level, stream: &str, message: &str) {
    let enabled = match level {
        tracing::Level::ERROR => tracing::enabled!(target: "plugin", tracing::Level::ERROR),
        tracing::Level::WARN => tracing::enabled!(target: "plugin", tracing::Level::WARN),
        tracing::Level::INFO => tracing::enabled!(target: "plugin", tracing::Level::INFO),
        tracing::Level::DEBUG => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
        _ => tracing::enabled!(target: "plugin", tracing::Level::TRACE),
    };
    if !enabled {
        return;
    }
    // Escaping can make a message several times longer: cut, escape, and
    // cut again, and count what is written.
    let message = cut(&crate::inert::inert(&cut(message))).into_owned();
    let admitted = tags
        .budget
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit(message.len());
    if !admitted {
        return;
    }
    let plugin = &*tags.plugin;
    let connection = tags.connection.as_deref().unwrap_or("");
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(target: "plugin", $level, plugin, connection, stream, "{message}")
        };
    }
    match level {
        tracing::Level::ERROR => at!(tracing::Level::ERROR),
        tracing::Level::WARN => at!(tracing::Level::WARN),
        tracing::Level::INFO => at!(tracing::Level::INFO),
        tracing::Level::DEBUG => at!(tracing::Level::DEBUG),
        _ => at!(tracing::Level::TRACE),
    }
}

/// A plugin's stdout or stderr: complete lines go to the host log.
#[derive(Clone)]
struct LogStream {
    tags: LogTags,
    stream: &'static str,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            stream: self.clone(),
            pending: Vec::new(),
            skipping: false,
        })
    }
}

struct LineWriter {
    stream: LogStream,
    pending: Vec<u8>,
    /// A line ran past [`MAX_LOG_LINE`] and was logged cut; the rest of
    /// it, up to the next newline, is dropped.
    skipping: bool,
}

impl LineWriter {
    fn flush_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let text = cut(text).into_owned();
        let level = if self.stream.stream == "stderr" {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        };
        emit(&self.stream.tags, level, self.stream.stream, &text);
        if let Some(tail) = &self.stream.tail
            && let Ok(mut tail) = tail.lock()
        {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut rest = buf;
        while !rest.is_empty() {
            let newline = rest.iter().position(|b| *b == b'\n');
            let (part, ends_line) = match newline {
                Some(at) => (&rest[..at], true),
                None => (rest, false),
            };
            if !this.skipping {
                let room = (MAX_LOG_LINE + 1).saturating_sub(this.pending.len());
                this.pending
                    .extend_from_slice(&part[..part.len().min(room)]);
                if this.pending.len() > MAX_LOG_LINE {
                    let line = std::mem::take(&mut this.pending);
                    this.flush_line(&line);
                    this.skipping = true;
                }
            }
            if ends_line {
                let line = std::mem::take(&mut this.pending);
                this.flush_line(&line);
                this.skipping = false;
                rest = &rest[part.len() + 1..];
            } else {
                rest = &[];
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let line = std::mem::take(&mut self.pending);
        self.flush_line(&line);
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.pending);
        self.flush_line(&line);
    }
}
