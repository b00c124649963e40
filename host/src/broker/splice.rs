//! Where the host may splice a credential into a request body.
//!
//! A body credential exists for SOAP-style APIs that carry the session in
//! the envelope (Salesforce's `SessionHeader`). If the host replaced the
//! placeholder wherever it occurs, a connector could put it where the
//! store echoes input, in a record id or an element name, and read the
//! token in the answer. So the placeholder must occur exactly once, as the
//! whole text of an element inside the SOAP envelope's `Header`: the place
//! a session goes, and never a field of the operation in the `Body`.
//!
//! The check must read the body as the store will, or a connector could
//! write one that looks like a header to the host and like a body field to
//! the store. So the body must be a plain SOAP message: `text/xml` or
//! `application/soap+xml` in UTF-8, not encoded or multipart, one
//! well-formed document with no DTD, whose `Envelope` and `Header` are in
//! a SOAP namespace.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// The SOAP 1.1 and 1.2 envelope namespaces.
const SOAP_NAMESPACES: [&str; 2] = [
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://www.w3.org/2003/05/soap-envelope",
];

/// Checks the request a body credential is to be spliced into:
/// `placeholder` occurs exactly once in `body`, as the whole text of an
/// element within a SOAP `Envelope/Header`, and the body is a plain SOAP
/// message. `headers` are the request's. The error says what is wrong,
/// for the connector's author.
pub(crate) fn check(
    body: &[u8],
    placeholder: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    check_headers(headers)?;
    let count = memchr::memmem::find_iter(body, placeholder.as_bytes()).count();
    if count != 1 {
        return Err(format!(
            "a body credential's placeholder must occur exactly once in the body, in the SOAP header; it occurs {count} times"
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| "a body with a credential placeholder must be UTF-8 XML".to_string())?;
    let mut reader = NsReader::from_str(text);
    // The open elements: (in a SOAP namespace, local name).
    let mut path: Vec<(bool, String)> = Vec::new();
    let mut roots = 0;
    let mut found = false;
    // Whether the innermost open element has had a child element.
    let mut had_child = false;
    let ill_formed = |e: quick_xml::Error| {
        format!("a body with a credential placeholder must be well-formed XML: {e}")
    };
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(ill_formed)?;
        let soap = matches!(namespace, ResolveResult::Bound(ns) if SOAP_NAMESPACES.contains(&ns.0));
        match event {
            Event::Start(start) => {
                if path.is_empty() {
                    roots += 1;
                }
                path.push((soap, start.local_name().into_inner().to_string()));
                had_child = false;
            }
            Event::Empty(_) => {
                if path.is_empty() {
                    roots += 1;
                }
                had_child = true;
            }
            Event::End(_) => {
                path.pop();
                had_child = true;
            }
            Event::Text(content) if content.contains(placeholder) => {
                let in_header = path.len() >= 3
                    && path[0] == (true, "Envelope".to_string())
                    && path[1] == (true, "Header".to_string());
                if !in_header {
                    return Err(
                        "a body credential's placeholder may only be the text of an element inside the SOAP envelope's Header (such as SessionHeader/sessionId), never in the Body".into(),
                    );
                }
                if content.trim_ascii() != placeholder || had_child {
                    return Err(
                        "a body credential's placeholder must be the whole text of its element"
                            .into(),
                    );
                }
                // The element must close right after its text.
                match reader.read_event().map_err(ill_formed)? {
                    Event::End(_) => {
                        path.pop();
                        had_child = true;
                        found = true;
                    }
                    _ => {
                        return Err(
                            "a body credential's placeholder must be the whole text of its element"
                                .into(),
                        );
                    }
                }
            }
            Event::Text(content) if path.is_empty() && !content.trim_ascii().is_empty() => {
                return Err("a SOAP body has no text outside its envelope".into());
            }
            Event::DocType(_) => {
                return Err("a body with a credential placeholder may not have a DOCTYPE".into());
            }
            Event::Decl(declaration) => {
                if let Some(encoding) = declaration.encoding() {
                    let encoding = encoding.map_err(|e| e.to_string())?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(format!(
                            "a body with a credential placeholder must be UTF-8, not {encoding}"
                        ));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err("a body with a credential placeholder must be well-formed XML: an element is not closed".into());
    }
    if roots != 1 {
        return Err(format!(
            "a SOAP body is one envelope; this one has {roots} top-level elements"
        ));
    }
    if !found {
        return Err(
            "a body credential's placeholder must be the text of an element inside the SOAP envelope's Header, not part of a tag, an attribute or a comment".into(),
        );
    }
    Ok(())
}

/// The request must declare a plain SOAP body: one the store reads as the
/// host did.
fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    let named = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    if !named("content-encoding").is_empty() {
        return Err("a body with a credential placeholder may not be content-encoded".into());
    }
    let kinds = named("content-type");
    let [kind] = kinds.as_slice() else {
        return Err(
            "a body with a credential placeholder needs one content-type, text/xml or application/soap+xml".into(),
        );
    };
    let mut parts = kind.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if media != "text/xml" && media != "application/soap+xml" {
        return Err(format!(
            "a body with a credential placeholder must be text/xml or application/soap+xml, not {media}"
        ));
    }
    for parameter in parts {
        if let Some(charset) = parameter.strip_prefix("charset=")
            && charset.trim_matches('"') != "utf-8"
        {
            return Err(format!(
                "a body with a credential placeholder must be UTF-8, not {charset}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACEHOLDER: &str = "{{provisioner:session-id}}";

    fn xml() -> Vec<(String, String)> {
        vec![("Content-Type".into(), "text/xml; charset=UTF-8".into())]
    }

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
        assert_eq!(check(good.as_bytes(), PLACEHOLDER, &xml()), Ok(()));
        let spaced = envelope(
            &format!("<SessionHeader><sessionId>\n  {PLACEHOLDER}\n</sessionId></SessionHeader>"),
            "",
        );
        assert_eq!(check(spaced.as_bytes(), PLACEHOLDER, &xml()), Ok(()));
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
            // Envelope and Header in no SOAP namespace, or another one.
            (
                format!("<Envelope><Header><s>{PLACEHOLDER}</s></Header><Body/></Envelope>"),
                "inside the SOAP envelope's Header",
            ),
            (
                format!(
                    r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><x:Header xmlns:x="urn:not-soap"><s>{PLACEHOLDER}</s></x:Header></e:Envelope>"#
                ),
                "inside the SOAP envelope's Header",
            ),
            // A DTD, another encoding, a second root, text beside it.
            (
                format!("<!DOCTYPE e [<!ENTITY x \"y\">]>{}", envelope(&header, "")),
                "DOCTYPE",
            ),
            (
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-7\"?>{}",
                    &envelope(&header, "")[38..]
                ),
                "must be UTF-8, not UTF-7",
            ),
            (
                format!("{}<second/>", envelope(&header, "")),
                "2 top-level elements",
            ),
            (
                format!("{}trailing", envelope(&header, "")),
                "no text outside",
            ),
            (envelope(&header, "<unclosed>"), "well-formed"),
        ];
        for (body, needle) in cases {
            let error = check(body.as_bytes(), PLACEHOLDER, &xml()).unwrap_err();
            assert!(error.contains(needle), "{body}\n{error} lacks {needle:?}");
        }
        assert!(check(b"\xff\xfe", PLACEHOLDER, &xml()).is_err());
    }

    #[test]
    fn the_body_must_be_declared_a_plain_soap_message() {
        let body = envelope(
            &format!(
                "<urn:SessionHeader><urn:sessionId>{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
            ),
            "",
        );
        let with = |headers: &[(&str, &str)]| {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            check(body.as_bytes(), PLACEHOLDER, &headers)
        };
        assert_eq!(with(&[("content-type", "application/soap+xml")]), Ok(()));
        assert_eq!(
            with(&[("content-type", "text/xml; charset=\"utf-8\"")]),
            Ok(())
        );
        for (headers, needle) in [
            (vec![], "needs one content-type"),
            (
                vec![(
                    "content-type",
                    "multipart/related; type=\"application/xop+xml\"",
                )],
                "must be text/xml",
            ),
            (
                vec![("content-type", "text/xml; charset=utf-7")],
                "must be UTF-8",
            ),
            (
                vec![("content-type", "text/xml"), ("content-type", "text/plain")],
                "needs one content-type",
            ),
            (
                vec![("content-type", "text/xml"), ("Content-Encoding", "gzip")],
                "content-encoded",
            ),
        ] {
            let error = with(&headers).unwrap_err();
            assert!(error.contains(needle), "{headers:?}: {error}");
        }
    }
}
