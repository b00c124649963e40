//! Text from plugins and stores, made harmless to print.
//!
//! A connector's log message, a store's rejection or a plugin's
//! description is data, not terminal control. A CR or LF in it would
//! forge a new log or output line; an escape sequence would recolour,
//! clear or retitle the operator's terminal; a bidirectional override
//! would make text read differently from what it is. So wherever such
//! text is shown (logs, CLI output) these characters are written as
//! visible escapes instead.

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether `c` must not reach a terminal as it is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control character and bidirectional override
/// written as a visible escape (`\n`, `\r`, `\t`, `\u{1b}`). Borrows when
/// there is nothing to escape.
pub fn inert(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A writer for log lines that keeps each write on one line: every CR,
/// LF and other C0 control character but the line's final newline is
/// escaped. tracing's formatter writes each event with one write and
/// escapes ESC and the C1 controls itself, leaving ESC for its own
/// colours; what it leaves, a store's message quoted in a host log line
/// for one, cannot start a forged line here.
pub struct OneLine<W: Write>(pub W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        // Besides the C0 controls: NEL, and the Unicode line and paragraph
        // separators, which some log viewers break lines at.
        let separators: [(&[u8], &[u8]); 3] = [
            (b"\xc2\x85", b"\\u{85}"),
            (b"\xe2\x80\xa8", b"\\u{2028}"),
            (b"\xe2\x80\xa9", b"\\u{2029}"),
        ];
        let has_separator = || {
            separators
                .iter()
                .any(|(s, _)| memchr::memmem::find(body, s).is_some())
        };
        if !body.iter().any(|b| *b < 0x20 && *b != 0x1b) && !has_separator() {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        let mut at = 0;
        while at < body.len() {
            if let Some((separator, escape)) =
                separators.iter().find(|(s, _)| body[at..].starts_with(s))
            {
                out.extend_from_slice(escape);
                at += separator.len();
                continue;
            }
            let byte = body[at];
            match byte {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x1b => out.push(byte),
                b if b < 0x20 => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                b => out.push(b),
            }
            at += 1;
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert!(matches!(inert("plain text, café"), Cow::Borrowed(_)));
        assert_eq!(
            inert("a\nb\r\tc\u{1b}[31md\u{7}\u{9b}e\u{202e}f"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7}\\u{9b}e\\u{202e}f"
        );
    }

    #[test]
    fn a_log_write_stays_one_line() {
        let mut out = OneLine(Vec::new());
        out.write_all(b"2026 WARN store said: a\nFORGED\r\x00 \x1b[1m\n")
            .unwrap();
        out.write_all(b"plain\n").unwrap();
        out.write_all("sep \u{2028}x\u{85}y\u{2029}\n".as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "2026 WARN store said: a\\nFORGED\\r\\x00 \x1b[1m\nplain\nsep \\u{2028}x\\u{85}y\\u{2029}\n"
        );
    }
}
