//! Where the host may splice a credential into a request body.
//!
//! A body credential exists for SOAP-style APIs that carry the session in
//! the envelope (Salesforce's `SessionHeader`). If the host replaced the
//! placeholder wherever it occurs, a connector could put it where the
//! store echoes input, in a record id or an element name, and read the
//! token in the answer. So the placeholder must occur exactly once, as the
//! whole text of an element inside the envelope's `Header`: the place a
//! session goes, and never a field of the operation in the `Body`.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Checks that `placeholder` occurs exactly once in `body`, as the whole
/// text of an element within `Envelope/Header`. The error says what is
/// wrong, for the connector's author.
pub(crate) fn check(body: &[u8], placeholder: &str) -> Result<(), String> {
    let needle = placeholder.as_bytes();
    let count = memchr::memmem::find_iter(body, needle).count();
    if count != 1 {
        return Err(format!(
            "a body credential's placeholder must occur exactly once in the body, in the SOAP header; it occurs {count} times"
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| "a body with a credential placeholder must be UTF-8 XML".to_string())?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    // Whether the innermost open element has had a child element.
    let mut had_child = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("a body with a credential placeholder must be XML: {e}"))?;
        match event {
            Event::Start(start) => {
                path.push(start.local_name().into_inner().to_string());
                had_child = false;
            }
            Event::End(_) => {
                path.pop();
                had_child = true;
            }
            Event::Empty(_) => had_child = true,
            Event::Text(text) if text.contains(placeholder) => {
                let in_header = path.len() >= 3 && path[0] == "Envelope" && path[1] == "Header";
                if !in_header {
                    return Err(
                        "a body credential's placeholder may only be the text of an element inside the SOAP envelope's Header (such as SessionHeader/sessionId), never in the Body".into(),
                    );
                }
                if text.trim_ascii() != placeholder || had_child {
                    return Err(
                        "a body credential's placeholder must be the whole text of its element"
                            .into(),
                    );
                }
                // The element must close right after its text.
                return match reader.read_event() {
                    Ok(Event::End(_)) => Ok(()),
                    _ => Err(
                        "a body credential's placeholder must be the whole text of its element"
                            .into(),
                    ),
                };
            }
            Event::Eof => {
                return Err(
                    "a body credential's placeholder must be the text of an element inside the SOAP envelope's Header, not part of a tag, an attribute or a comment".into(),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACEHOLDER: &str = "{{provisioner:session-id}}";

    fn envelope(header: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        )
    }

    #[test]
    fn the_session_header_is_the_one_place() {
        let good = envelope(
            &format!(
                "<urn:SessionHeader><urn:sessionId>{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
            ),
            "<urn:convertLead><urn:leadConverts><urn:leadId>00Q1</urn:leadId></urn:leadConverts></urn:convertLead>",
        );
        assert_eq!(check(good.as_bytes(), PLACEHOLDER), Ok(()));
        let spaced = envelope(
            &format!("<SessionHeader><sessionId>\n  {PLACEHOLDER}\n</sessionId></SessionHeader>"),
            "",
        );
        assert_eq!(check(spaced.as_bytes(), PLACEHOLDER), Ok(()));
    }

    #[test]
    fn anywhere_else_is_refused_with_the_reason() {
        let header = format!(
            "<urn:SessionHeader><urn:sessionId>{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
        );
        let cases: Vec<(String, &str)> = vec![
            // Where the store echoes it: an id in the Body.
            (
                envelope(
                    "",
                    &format!(
                        "<urn:convertLead><urn:leadId>{PLACEHOLDER}</urn:leadId></urn:convertLead>"
                    ),
                ),
                "never in the Body",
            ),
            // Twice: in the header and in an echoed field.
            (
                envelope(&header, &format!("<urn:leadId>{PLACEHOLDER}</urn:leadId>")),
                "occurs 2 times",
            ),
            (envelope("", ""), "occurs 0 times"),
            // Part of a longer text, or beside a child element.
            (
                envelope(
                    &format!(
                        "<urn:SessionHeader><urn:sessionId>x{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
                    ),
                    "",
                ),
                "whole text",
            ),
            (
                envelope(
                    &format!(
                        "<urn:SessionHeader><urn:sessionId><a/>{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
                    ),
                    "",
                ),
                "whole text",
            ),
            (
                envelope(
                    &format!(
                        "<urn:SessionHeader><urn:sessionId>{PLACEHOLDER}<a/></urn:sessionId></urn:SessionHeader>"
                    ),
                    "",
                ),
                "whole text",
            ),
            // Directly in Header, with no element around it.
            (
                envelope(PLACEHOLDER, ""),
                "inside the SOAP envelope's Header",
            ),
            // In an attribute, an element name, a comment.
            (
                envelope(&format!("<urn:SessionHeader id=\"{PLACEHOLDER}\"/>"), ""),
                "not part of a tag",
            ),
            (
                envelope(&format!("<urn:{PLACEHOLDER}/>"), ""),
                "placeholder",
            ),
            (
                envelope(&format!("<!-- {PLACEHOLDER} -->"), ""),
                "not part of a tag",
            ),
            // Not an envelope at all.
            (
                format!("{{\"session\":\"{PLACEHOLDER}\"}}"),
                "inside the SOAP envelope's Header",
            ),
            (
                format!("<Header><a>{PLACEHOLDER}</a></Header>"),
                "inside the SOAP envelope's Header",
            ),
        ];
        for (body, needle) in cases {
            let error = check(body.as_bytes(), PLACEHOLDER).unwrap_err();
            assert!(error.contains(needle), "{body}\n{error} lacks {needle:?}");
        }
        assert!(check(b"\xff\xfe", PLACEHOLDER).is_err());
    }
}
