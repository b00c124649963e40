//! The SOAP partner API's `convertLead`, the documented way to convert a
//! Lead. The session travels in the envelope's `SessionHeader`, and an
//! expired session is a SOAP fault with HTTP 500, not a 401.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

use crate::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/services/Soap/u/{version}", post(call))
}

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sf="urn:fault.partner.soap.sforce.com">"#;

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// A SOAP fault as the partner API sends it.
pub(crate) fn fault(code: &str, message: &str) -> Response {
    let code = escape(code);
    let message = escape(message);
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "{ENVELOPE_OPEN}<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        ),
    )
}

/// One `leadConverts` entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeadConvert {
    pub lead_id: Option<String>,
    pub account_id: Option<String>,
    pub converted_status: Option<String>,
    pub do_not_create_opportunity: Option<String>,
}

/// What the envelope asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub session_id: Option<String>,
    pub operation: Option<String>,
    pub lead_converts: Vec<LeadConvert>,
}

/// Reads the parts of an envelope that matter here, by local name.
pub(crate) fn parse(body: &str) -> Result<Envelope, String> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut envelope = Envelope::default();
    let mut current: Option<LeadConvert> = None;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.last().is_some_and(|p| p == "Body") && envelope.operation.is_none() {
                    envelope.operation = Some(name.clone());
                }
                if name == "leadConverts" {
                    current = Some(LeadConvert::default());
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.last().is_some_and(|p| p == "Body") && envelope.operation.is_none() {
                    envelope.operation = Some(name);
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    text.push_str(
                        quick_xml::escape::resolve_xml_entity(&r.xml10_content()).unwrap_or(""),
                    );
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let value = Some(text.trim().to_string()).filter(|t| !t.is_empty());
                match (name.as_str(), current.as_mut()) {
                    ("sessionId", _) => envelope.session_id = value,
                    ("leadConverts", Some(_)) => {
                        if let Some(done) = current.take() {
                            envelope.lead_converts.push(done);
                        }
                    }
                    ("leadId", Some(c)) => c.lead_id = value,
                    ("accountId", Some(c)) => c.account_id = value,
                    ("convertedStatus", Some(c)) => c.converted_status = value,
                    ("doNotCreateOpportunity", Some(c)) => c.do_not_create_opportunity = value,
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(envelope)
}

fn nil_or(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("<{name}>{}</{name}>", escape(v)),
        None => format!("<{name} xsi:nil=\"true\"/>"),
    }
}

async fn call(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let envelope = match parse(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return fault(
                "INVALID_XML",
                &format!("could not parse the request: {error}"),
            );
        }
    };
    let mut state = shared.lock();
    // In echo mode, errors quote the session the envelope carried.
    let echo = match (&envelope.session_id, state.echo_credentials) {
        (Some(session), true) => crate::echo_of(session),
        _ => String::new(),
    };
    let session_ok = envelope
        .session_id
        .as_deref()
        .is_some_and(|s| shared.session_valid(&state, s));
    if !session_ok {
        state.counters.unauthorized += 1;
        return fault(
            "INVALID_SESSION_ID",
            &format!("Invalid Session ID found in SessionHeader: Illegal Session{echo}"),
        );
    }
    if envelope.operation.as_deref() != Some("convertLead") {
        return fault(
            "INVALID_OPERATION",
            &format!(
                "the emulator implements convertLead only, not {}",
                envelope.operation.as_deref().unwrap_or("nothing")
            ),
        );
    }
    if envelope.lead_converts.len() > 100 {
        return fault(
            "LIMIT_EXCEEDED",
            "Too many leads to convert: the limit is 100",
        );
    }
    let mut results = String::new();
    for convert in &envelope.lead_converts {
        if convert.do_not_create_opportunity.as_deref() != Some("true") {
            // The emulator models no Opportunity object; asking for one is
            // the caller's mistake to see, not to have silently ignored.
            results.push_str(&format!(
                "<result>{}{}<errors><message>the emulator converts without an Opportunity only: set doNotCreateOpportunity</message><statusCode>FIELD_INTEGRITY_EXCEPTION</statusCode></errors>{}{}<success>false</success></result>",
                nil_or("accountId", None),
                nil_or("contactId", None),
                nil_or("leadId", convert.lead_id.as_deref()),
                nil_or("opportunityId", None),
            ));
            continue;
        }
        let outcome = match &convert.lead_id {
            Some(lead) => state.records.convert_lead(
                lead,
                convert.account_id.as_deref(),
                convert.converted_status.as_deref(),
            ),
            None => Err(crate::org::SfError::new(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [leadId]",
            )),
        };
        match outcome {
            Ok((lead, contact, account)) => results.push_str(&format!(
                "<result>{}{}{}{}<success>true</success></result>",
                nil_or("accountId", Some(&account)),
                nil_or("contactId", Some(&contact)),
                nil_or("leadId", Some(&lead)),
                nil_or("opportunityId", None),
            )),
            Err(error) => results.push_str(&format!(
                "<result>{}{}<errors><message>{}</message><statusCode>{}</statusCode></errors>{}{}<success>false</success></result>",
                nil_or("accountId", None),
                nil_or("contactId", None),
                escape(format!("{}{echo}", error.message)),
                escape(&error.code),
                nil_or("leadId", convert.lead_id.as_deref()),
                nil_or("opportunityId", None),
            )),
        }
    }
    let limit = format!(
        "<soapenv:Header><LimitInfoHeader><limitInfo><current>{}</current><limit>{}</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>",
        state.counters.api_usage, shared.options.daily_api_limit
    );
    xml(
        StatusCode::OK,
        format!(
            "{ENVELOPE_OPEN}{limit}<soapenv:Body><convertLeadResponse>{results}</convertLeadResponse></soapenv:Body></soapenv:Envelope>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_read_by_local_name() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header><urn:SessionHeader><urn:sessionId>00D!AQ&amp;x</urn:sessionId></urn:SessionHeader></soapenv:Header>
  <soapenv:Body>
    <urn:convertLead>
      <urn:leadConverts>
        <urn:convertedStatus>Closed - Converted</urn:convertedStatus>
        <urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity>
        <urn:leadId>00QD000000FP14JMAT</urn:leadId>
      </urn:leadConverts>
      <urn:leadConverts>
        <urn:accountId>001D000000HRzTRIA1</urn:accountId>
        <urn:leadId>00QD000000FP14KMAT</urn:leadId>
      </urn:leadConverts>
    </urn:convertLead>
  </soapenv:Body>
</soapenv:Envelope>"#;
        let envelope = parse(body).unwrap();
        assert_eq!(envelope.session_id.as_deref(), Some("00D!AQ&x"));
        assert_eq!(envelope.operation.as_deref(), Some("convertLead"));
        assert_eq!(envelope.lead_converts.len(), 2);
        assert_eq!(
            envelope.lead_converts[0].converted_status.as_deref(),
            Some("Closed - Converted")
        );
        assert_eq!(
            envelope.lead_converts[1].account_id.as_deref(),
            Some("001D000000HRzTRIA1")
        );
        assert!(parse("<a><b></a>").is_err());
    }
}
