//! Removes a connection's credentials from what its store answers, before
//! the plugin sees it.
//!
//! Stores echo their input: an error about a malformed field quotes the
//! field, a login page repeats the header it was sent. A connector that can
//! get the host to put a credential where the store will echo it can then
//! read the credential in the answer. So every answer (body, header names
//! and values, and the text of every error the broker reports) is searched
//! for every credential the connection holds or held, and each occurrence
//! is replaced with [`MARKER`].
//!
//! An occurrence counts in any of the forms a store is likely to echo it
//! in, and in pieces:
//!
//! - as it is, and after one or two rounds of decoding percent-encoding
//!   (`%21`), JSON escapes (`\u0021`, `\/`), and XML or HTML character
//!   references (`&#33;`, `&amp;`), in any mix: a store that quotes the
//!   token inside a JSON string inside a URL is still caught;
//! - in base64, at any of the three byte alignments it can take inside a
//!   longer encoded text;
//! - ignoring ASCII case, so that an upper-cased echo is caught too;
//! - in part: any run of [`FRAGMENT`] or more consecutive bytes of a
//!   credential, so that an echo cut short still leaks nothing of length.
//!
//! Matching is one Aho-Corasick automaton (a DFA) over pieces of every
//! credential, run over the answer and over its decoded views; an answer
//! without an escape has no decoded view and costs one pass. The pieces
//! are [`PIECE`] bytes long and start every [`STRIDE`] bytes, so that any
//! run of [`FRAGMENT`] bytes holds a whole one; a piece found is widened to
//! the whole run of the credential's bytes around it. A quarter of every
//! possible piece keeps the automaton small: about 1 MiB and a few
//! milliseconds to build for a Salesforce connection's four credentials.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

/// What replaces a credential. Only unreserved characters, so that the
/// answer stays valid JSON, XML, a URL or a header around it.
pub const MARKER: &str = "__provisioner_redacted__";

/// The shortest run of a credential's bytes that is sure to be scrubbed
/// on its own. A run this long of a random token does not occur by chance;
/// a shorter one might, and would cost a store's real data.
pub const FRAGMENT: usize = PIECE + STRIDE - 1;

/// The pieces searched for, and how far apart they start in a credential.
const PIECE: usize = 17;
const STRIDE: usize = 4;

/// Credentials shorter than this are not scrubbed: they cannot be told
/// apart from ordinary text. Every credential a real store issues is far
/// longer.
pub const MIN_SECRET: usize = 8;

/// How many rounds of decoding are searched beyond the raw answer.
const DECODE_ROUNDS: usize = 2;

/// Scrubs a fixed set of credentials.
#[derive(Clone, Default)]
pub struct Scrubber {
    automaton: Option<AhoCorasick>,
    /// No automaton could be built for credentials there are: every answer
    /// is replaced whole, since none can be searched.
    blind: bool,
    /// The credentials, to widen a piece found to the run around it.
    secrets: Vec<Vec<u8>>,
    /// Where each pattern of the automaton comes from, by pattern id.
    sources: Vec<Vec<Source>>,
}

/// What a pattern is.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Bytes `offset..` of credential `secret`: a match is widened to the
    /// run of its bytes around it.
    Piece { secret: usize, offset: usize },
    /// A pattern found as it is: a short credential whole, or a base64
    /// encoding's core.
    Whole,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field(
                "patterns",
                &self.automaton.as_ref().map_or(0, |a| a.patterns_len()),
            )
            .field("blind", &self.blind)
            .finish()
    }
}

impl Scrubber {
    /// A scrubber for `secrets`; those shorter than [`MIN_SECRET`] are left
    /// out.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Scrubber {
        let secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_vec())
            .filter(|s| s.len() >= MIN_SECRET)
            .collect();
        // Patterns, keyed by their lower-case bytes (the search ignores
        // ASCII case), with every source of each.
        let mut patterns: std::collections::BTreeMap<Vec<u8>, Vec<Source>> = Default::default();
        for (index, secret) in secrets.iter().enumerate() {
            if secret.len() <= FRAGMENT {
                patterns
                    .entry(secret.to_ascii_lowercase())
                    .or_default()
                    .push(Source::Piece {
                        secret: index,
                        offset: 0,
                    });
            } else {
                for offset in (0..=secret.len() - PIECE).step_by(STRIDE) {
                    patterns
                        .entry(secret[offset..offset + PIECE].to_ascii_lowercase())
                        .or_default()
                        .push(Source::Piece {
                            secret: index,
                            offset,
                        });
                }
            }
            for core in base64_cores(secret) {
                patterns.entry(core).or_default().push(Source::Whole);
            }
        }
        if patterns.is_empty() {
            return Scrubber::default();
        }
        let (keys, sources): (Vec<Vec<u8>>, Vec<Vec<Source>>) = patterns.into_iter().unzip();
        match automaton(&keys) {
            Ok(automaton) => Scrubber {
                automaton: Some(automaton),
                blind: false,
                secrets,
                sources,
            },
            Err(error) => {
                // Far more secret bytes than any store issues. Scrub whole
                // secrets rather than pieces; and if even that cannot be
                // built, hide every answer: this must never fail open.
                tracing::error!(%error, "too many credential pieces to search for; searching for whole credentials only");
                let sources = vec![vec![Source::Whole]; secrets.len()];
                let automaton = automaton(&secrets).ok();
                Scrubber {
                    blind: automaton.is_none(),
                    automaton,
                    secrets,
                    sources,
                }
            }
        }
    }

    /// Heap bytes the search holds, for the benchmarks.
    pub fn memory_usage(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage)
    }

    /// Whether there is anything to scrub for.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none() && !self.blind
    }

    /// `input` with every credential replaced by [`MARKER`], and how many
    /// places were replaced. Borrows `input` when there was nothing to
    /// replace.
    pub fn scrub<'a>(&self, input: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        if self.blind {
            return (Cow::Owned(MARKER.as_bytes().to_vec()), 1);
        }
        let Some(automaton) = &self.automaton else {
            return (Cow::Borrowed(input), 0);
        };
        let mut spans = self.matches(automaton, input);
        let mut views: Vec<View> = Vec::new();
        for _ in 0..DECODE_ROUNDS {
            let source = views.last().map_or(input, |v| v.bytes.as_slice());
            let Some(view) = View::decode(source) else {
                break;
            };
            for (start, end) in self.matches(automaton, &view.bytes) {
                // Back through every round to the answer's own bytes.
                let (mut start, mut end) = view.source_span(start, end);
                for earlier in views.iter().rev() {
                    (start, end) = earlier.source_span(start, end);
                }
                spans.push((start, end));
            }
            views.push(view);
        }
        if spans.is_empty() {
            return (Cow::Borrowed(input), 0);
        }
        spans.sort_unstable();
        let mut out = Vec::with_capacity(input.len());
        let mut at = 0;
        let mut replaced = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next_start, next_end)) = spans.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                spans.next();
            }
            let start = start.max(at);
            out.extend_from_slice(&input[at..start]);
            out.extend_from_slice(MARKER.as_bytes());
            at = end;
            replaced += 1;
        }
        out.extend_from_slice(&input[at..]);
        (Cow::Owned(out), replaced)
    }

    /// [`Scrubber::scrub`] for text. A credential with non-ASCII characters
    /// could be cut inside one; what remains of it becomes U+FFFD.
    pub fn scrub_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub(text.as_bytes()) {
            (Cow::Borrowed(_), _) => Cow::Borrowed(text),
            (Cow::Owned(bytes), _) => match String::from_utf8(bytes) {
                Ok(text) => Cow::Owned(text),
                Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
            },
        }
    }
}

/// The credentials one connection holds or held, and the scrubber for
/// them, rebuilt when a token exchange adds one.
pub(crate) struct Held {
    state: std::sync::RwLock<HeldState>,
}

struct HeldState {
    /// From the configuration; they stay.
    fixed: Vec<secrecy::SecretString>,
    /// Obtained in this process, oldest first, with when.
    obtained: std::collections::VecDeque<(secrecy::SecretString, std::time::Instant)>,
    scrubber: std::sync::Arc<Scrubber>,
}

/// A token obtained in this process stays scrubbed after it was replaced:
/// it may still be valid, and a store may have kept it where a connector
/// can read it later. The newest [`KEPT_NEWEST`] stay whatever their age;
/// older ones stay for [`KEPT_FOR`] (longer than Salesforce's longest
/// session), up to [`KEPT_TOKENS`] in all: more than the token endpoint
/// issues in an hour, so even at the highest rate a token stays scrubbed
/// for an hour after it was replaced. A day's handful keeps the search a
/// small DFA.
const KEPT_NEWEST: usize = 4;
const KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(48 * 3600);
const KEPT_TOKENS: usize = 2 * super::oauth::EXCHANGES_PER_HOUR + 2;

impl Held {
    pub(crate) fn new(values: Vec<secrecy::SecretString>) -> Held {
        let scrubber = std::sync::Arc::new(build(values.iter()));
        Held {
            state: std::sync::RwLock::new(HeldState {
                fixed: values,
                obtained: Default::default(),
                scrubber,
            }),
        }
    }

    /// Adds a value the connection now holds (a new access token, a
    /// rotated refresh token).
    pub(crate) fn add(&self, value: &secrecy::SecretString) {
        use secrecy::ExposeSecret;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let known = state
            .fixed
            .iter()
            .chain(state.obtained.iter().map(|(v, _)| v))
            .any(|v| v.expose_secret() == value.expose_secret());
        if known {
            return;
        }
        state
            .obtained
            .push_back((value.clone(), std::time::Instant::now()));
        while state.obtained.len() > KEPT_NEWEST
            && (state.obtained.len() > KEPT_TOKENS
                || state
                    .obtained
                    .front()
                    .is_some_and(|(_, at)| at.elapsed() > KEPT_FOR))
        {
            state.obtained.pop_front();
        }
        let scrubber = build(
            state
                .fixed
                .iter()
                .chain(state.obtained.iter().map(|(v, _)| v)),
        );
        state.scrubber = std::sync::Arc::new(scrubber);
    }

    pub(crate) fn scrubber(&self) -> std::sync::Arc<Scrubber> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .scrubber
            .clone()
    }
}

fn build<'a>(values: impl Iterator<Item = &'a secrecy::SecretString>) -> Scrubber {
    use secrecy::ExposeSecret;
    Scrubber::new(values.map(|v| v.expose_secret().as_bytes()))
}

impl Scrubber {
    /// Every run of a credential's bytes in `haystack`, as byte spans: each
    /// piece found, widened to the run around it.
    fn matches(&self, automaton: &AhoCorasick, haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        for found in automaton.find_overlapping_iter(haystack) {
            let sources = self
                .sources
                .get(found.pattern().as_usize())
                .map_or(&[][..], Vec::as_slice);
            for source in sources {
                spans.push(match *source {
                    Source::Whole => (found.start(), found.end()),
                    Source::Piece { secret, offset } => widen(
                        haystack,
                        found.start(),
                        found.end(),
                        &self.secrets[secret],
                        offset,
                    ),
                });
            }
        }
        spans
    }
}

/// Widens the match `start..end` of `secret[offset..]` in `haystack` to the
/// whole run of the secret's bytes around it, ignoring ASCII case.
fn widen(
    haystack: &[u8],
    start: usize,
    end: usize,
    secret: &[u8],
    offset: usize,
) -> (usize, usize) {
    let (mut from, mut back) = (start, offset);
    while from > 0 && back > 0 && haystack[from - 1].eq_ignore_ascii_case(&secret[back - 1]) {
        from -= 1;
        back -= 1;
    }
    let (mut to, mut ahead) = (end, offset + (end - start));
    while to < haystack.len()
        && ahead < secret.len()
        && haystack[to].eq_ignore_ascii_case(&secret[ahead])
    {
        to += 1;
        ahead += 1;
    }
    (from, to)
}

/// Patterns up to which the automaton is a DFA: it runs over every answer,
/// and is twice as fast as the alternative. Beyond, as when a connection
/// has held many tokens, a DFA grows past a few MiB, and a contiguous NFA
/// is used.
const DFA_PATTERNS: usize = 400;

/// One automaton over every pattern. Overlapping matches need the standard
/// match kind: every match is found, and overlapping ones merge into one
/// span.
fn automaton(patterns: &[Vec<u8>]) -> Result<AhoCorasick, aho_corasick::BuildError> {
    let kind = if patterns.len() <= DFA_PATTERNS {
        aho_corasick::AhoCorasickKind::DFA
    } else {
        aho_corasick::AhoCorasickKind::ContiguousNFA
    };
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(kind))
        .build(patterns)
}

/// The part of `secret`'s base64 encoding that does not depend on what
/// surrounds it, for each of the three alignments it can have inside a
/// longer encoded text, in both alphabets.
fn base64_cores(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut cores = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        // A character encodes six bits; those touching the padding bytes
        // before, or the unknown bytes after, vary with the context.
        let first = (8 * offset).div_ceil(6);
        let last = (8 * bytes.len()) / 6;
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&bytes);
            if let Some(core) = encoded.as_bytes().get(first..last)
                && core.len() >= MIN_SECRET
            {
                cores.push(core.to_vec());
            }
        }
    }
    cores
}

/// One round of decoding of a text, and where each decoded byte came from.
/// Only the escapes are recorded: between them a decoded byte is a source
/// byte, at a fixed offset.
struct View {
    bytes: Vec<u8>,
    escapes: Vec<Escape>,
}

/// One escape: where its decoded bytes are, and where it was.
#[derive(Debug, Clone, Copy)]
struct Escape {
    /// Its first decoded byte, and how many it decoded to.
    at: usize,
    len: usize,
    /// Its place and length in the source.
    source: usize,
    source_len: usize,
}

impl View {
    /// Decodes every escape in `source`; `None` when it has none.
    fn decode(source: &[u8]) -> Option<View> {
        // Most answers hold no escape at all, or only a bare `&` or `%`:
        // look before building a view.
        let first = memchr::memchr3_iter(b'%', b'\\', b'&', source)
            .find(|&at| escape_at(source, at).is_some())?;
        let mut view = View {
            bytes: Vec::with_capacity(source.len()),
            escapes: Vec::new(),
        };
        view.bytes.extend_from_slice(&source[..first]);
        let mut at = first;
        while at < source.len() {
            let Some((decoded, length)) = escape_at(source, at) else {
                // Copy up to the next byte that may start an escape.
                let next = memchr::memchr3(b'%', b'\\', b'&', &source[at + 1..])
                    .map_or(source.len(), |n| at + 1 + n);
                view.bytes.extend_from_slice(&source[at..next]);
                at = next;
                continue;
            };
            let mut buffer = [0u8; 4];
            let bytes: &[u8] = match decoded {
                Decoded::Byte(byte) => {
                    buffer[0] = byte;
                    &buffer[..1]
                }
                Decoded::Char(c) => c.encode_utf8(&mut buffer).as_bytes(),
            };
            view.escapes.push(Escape {
                at: view.bytes.len(),
                len: bytes.len(),
                source: at,
                source_len: length,
            });
            view.bytes.extend_from_slice(bytes);
            at += length;
        }
        Some(view)
    }

    /// The last escape that starts at or before decoded byte `byte`.
    fn escape_before(&self, byte: usize) -> Option<&Escape> {
        let index = self.escapes.partition_point(|e| e.at <= byte);
        index.checked_sub(1).map(|i| &self.escapes[i])
    }

    /// Where decoded byte `byte` starts, and ends, in the source: an
    /// escape's whole extent for each of its bytes.
    fn source_of(&self, byte: usize) -> (usize, usize) {
        match self.escape_before(byte) {
            Some(e) if byte < e.at + e.len => (e.source, e.source + e.source_len),
            Some(e) => {
                let at = e.source + e.source_len + (byte - e.at - e.len);
                (at, at + 1)
            }
            None => (byte, byte + 1),
        }
    }

    /// The span of the source that decoded into `start..end`: from the
    /// start of the first byte's escape to the end of the last one's.
    fn source_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.source_of(start).0, self.source_of(end - 1).1)
    }
}

/// What an escape stands for: percent-encoding stands for a byte (of a
/// UTF-8 sequence, perhaps), the other escapes for a character.
enum Decoded {
    Byte(u8),
    Char(char),
}

/// What an escape at `at` stands for, and the escape's length.
fn escape_at(source: &[u8], at: usize) -> Option<(Decoded, usize)> {
    let rest = &source[at..];
    let (decoded, length) = match rest.first()? {
        b'%' => {
            let value = hex(rest.get(1..3)?)?;
            return Some((Decoded::Byte(value as u8), 3));
        }
        b'\\' => match rest.get(1)? {
            b'u' => {
                let unit = hex(rest.get(2..6)?)?;
                if (0xD800..0xDC00).contains(&unit) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    let low = rest
                        .get(6..8)
                        .filter(|p| *p == b"\\u")
                        .and_then(|_| hex(rest.get(8..12)?))
                        .filter(|low| (0xDC00..0xE000).contains(low))?;
                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    (char::from_u32(code)?, 12)
                } else {
                    (char::from_u32(unit)?, 6)
                }
            }
            b'/' => ('/', 2),
            b'\\' => ('\\', 2),
            b'"' => ('"', 2),
            b'\'' => ('\'', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            _ => return None,
        },
        b'&' => {
            let end = rest.iter().take(12).position(|b| *b == b';')?;
            let name = &rest[1..end];
            let decoded = match name {
                b"amp" => '&',
                b"lt" => '<',
                b"gt" => '>',
                b"quot" => '"',
                b"apos" => '\'',
                [b'#', b'x' | b'X', digits @ ..] => char::from_u32(hex(digits)?)?,
                [b'#', digits @ ..] => {
                    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                    char::from_u32(std::str::from_utf8(digits).ok()?.parse().ok()?)?
                }
                _ => return None,
            };
            (decoded, end + 1)
        }
        _ => return None,
    };
    Some((Decoded::Char(decoded), length))
}

fn hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00D5g000004Cm2E!AQcAQH0dMHZfz972Szmpvi/x+y=";
    const SECRET: &str = "csec-Hx93-distinctive-secret";

    fn scrubber() -> Scrubber {
        Scrubber::new([TOKEN, SECRET])
    }

    fn scrubbed(input: &str) -> String {
        scrubber().scrub_text(input).into_owned()
    }

    fn percent(text: &str, all: bool) -> String {
        text.bytes()
            .map(|b| {
                if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn every_common_encoding_of_a_credential_is_replaced() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let echoes = [
            TOKEN.to_string(),
            TOKEN.to_ascii_uppercase(),
            percent(TOKEN, false),
            percent(TOKEN, false).to_lowercase(),
            percent(TOKEN, true),
            serde_json::to_string(TOKEN).unwrap(),
            TOKEN.replace('/', "\\/"),
            TOKEN
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect(),
            TOKEN.chars().map(|c| format!("&#{};", c as u32)).collect(),
            TOKEN
                .chars()
                .map(|c| format!("&#x{:X};", c as u32))
                .collect(),
            TOKEN.replace('!', "&#33;").replace('+', "&#x2b;"),
            // Twice encoded: a URL quoted in JSON, a URL in a URL.
            percent(TOKEN, true).replace('%', "\\u0025"),
            percent(&percent(TOKEN, true), true),
            b64(TOKEN),
            b64(&format!("x{TOKEN}")),
            b64(&format!("xy{TOKEN}yz")),
            base64::engine::general_purpose::URL_SAFE.encode(format!("Bearer {TOKEN}")),
            // Cut short, as an error message that truncates its input.
            TOKEN[..30].to_string(),
            TOKEN[12..].to_string(),
        ];
        for echo in echoes {
            let answer = format!("{{\"message\":\"bad id: {echo} (see docs)\"}}");
            let out = scrubbed(&answer);
            assert!(out.contains(MARKER), "{echo:?} was not found in {answer}");
            assert!(!out.contains(&echo), "{echo:?} survived: {out}");
            for window in TOKEN.as_bytes().windows(FRAGMENT) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !out.to_ascii_lowercase()
                        .contains(&window.to_ascii_lowercase()),
                    "{window:?} of {echo:?} survived: {out}"
                );
            }
            assert!(out.starts_with("{\"message\":\"bad id: "), "{out}");
            assert!(out.ends_with(" (see docs)\"}"), "{out}");
        }
    }

    #[test]
    fn the_text_around_a_credential_is_kept_and_still_parses() {
        let body = format!(
            "[{{\"message\":\"Session {TOKEN} refused\",\"errorCode\":\"X\"}},{{\"id\":\"{SECRET}\"}}]"
        );
        let out = scrubbed(&body);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            parsed[0]["message"],
            format!("Session {MARKER} refused").as_str()
        );
        assert_eq!(parsed[0]["errorCode"], "X");
        assert_eq!(parsed[1]["id"], MARKER);

        let xml = format!(
            "<r><sessionId>{}</sessionId></r>",
            TOKEN.replace('+', "&#43;")
        );
        assert_eq!(
            scrubbed(&xml),
            format!("<r><sessionId>{MARKER}</sessionId></r>")
        );
    }

    #[test]
    fn ordinary_answers_are_left_alone_and_borrowed() {
        let s = scrubber();
        for answer in [
            "",
            "{\"totalSize\":0,\"done\":true,\"records\":[]}",
            "caf\u{e9} &amp; %41 \\u0041 \\/ &#65; &bogus; %zz \\q",
            "00D5g000004Cm2EEAS",
            "AQcAQH0dMHZfz97",
        ] {
            let (out, count) = s.scrub(answer.as_bytes());
            assert!(matches!(out, Cow::Borrowed(_)), "{answer:?}");
            assert_eq!(count, 0, "{answer:?}");
        }
    }

    #[test]
    fn several_occurrences_are_counted_once_each() {
        let body = format!("{TOKEN} and {SECRET} and {}", percent(TOKEN, true));
        let (out, count) = scrubber().scrub(body.as_bytes());
        assert_eq!(count, 3);
        assert_eq!(
            String::from_utf8(out.into_owned()).unwrap(),
            format!("{MARKER} and {MARKER} and {MARKER}")
        );
    }

    #[test]
    fn short_secrets_are_not_scrubbed_and_empty_sets_cost_nothing() {
        assert!(Scrubber::new(["short"]).is_empty());
        assert!(Scrubber::new(Vec::<String>::new()).is_empty());
        let s = Scrubber::new(["exactly8"]);
        assert_eq!(
            s.scrub_text("an exactly8 here"),
            format!("an {MARKER} here")
        );
    }

    #[test]
    fn replaced_tokens_stay_scrubbed_up_to_the_cap() {
        use secrecy::SecretString;
        let held = Held::new(vec![SecretString::from(SECRET)]);
        // Distinct tokens that share no piece.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let tokens: Vec<String> = (0..KEPT_TOKENS + 5)
            .map(|_| {
                (0..40)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        char::from(b'a' + ((state >> 33) % 26) as u8)
                    })
                    .collect()
            })
            .collect();
        for token in &tokens {
            held.add(&SecretString::from(token.as_str()));
        }
        let scrubber = held.scrubber();
        let found = |text: &str| scrubber.scrub(text.as_bytes()).1 > 0;
        assert!(found(SECRET), "the configured secret stays");
        assert!(found(&tokens[tokens.len() - 1]), "the newest token");
        assert!(found(&tokens[5]), "the oldest within the cap");
        assert!(!found(&tokens[4]), "beyond the cap");
    }

    #[test]
    fn a_scrubber_that_cannot_search_hides_every_answer() {
        let blind = Scrubber {
            blind: true,
            ..Scrubber::default()
        };
        assert!(!blind.is_empty());
        assert_eq!(blind.scrub_text("anything at all"), MARKER);
    }

    #[test]
    fn a_long_token_is_scrubbed_in_pieces() {
        // A JWT-sized access token: 2 KiB of pieces to search for.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let jwt: String = (0..2048)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ALPHABET[(state >> 33) as usize % ALPHABET.len()] as char
            })
            .collect();
        let s = Scrubber::new([jwt.as_str()]);
        let echo = format!("<{}>", &jwt[1000..1100]);
        assert_eq!(s.scrub_text(&echo), format!("<{MARKER}>"));
    }

    #[test]
    fn a_view_maps_decoded_bytes_back_to_their_escapes() {
        let view = View::decode(b"a%41\\u00e9&amp;b").unwrap();
        assert_eq!(view.bytes, "aA\u{e9}&b".as_bytes());
        // "A" came from "%41", the two bytes of "é" from "\u00e9".
        assert_eq!(view.source_span(1, 2), (1, 4));
        assert_eq!(view.source_span(2, 4), (4, 10));
        assert_eq!(view.source_span(2, 3), (4, 10));
        assert_eq!(view.source_span(4, 5), (10, 15));
        assert_eq!(view.source_span(0, 6), (0, 16));
        assert!(View::decode(b"plain text").is_none());
        assert!(View::decode(b"100% sure").is_none(), "no escape to decode");
    }

    #[test]
    fn malformed_escapes_decode_as_themselves() {
        for input in [
            "%",
            "%4",
            "\\u12",
            "\\uD83D",
            "\\uD83D\\u0041",
            "&#;",
            "&#x;",
            "&#99999999;",
            "&",
            "&amp",
        ] {
            let (out, count) = scrubber().scrub(input.as_bytes());
            assert_eq!(count, 0, "{input:?}");
            assert_eq!(&*out, input.as_bytes());
        }
    }
}
