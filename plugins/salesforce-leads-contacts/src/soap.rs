//! SOAP `convertLead`, the documented way to convert a Lead. The session
//! goes in the envelope's `SessionHeader`: the connector writes a
//! placeholder there and the host splices the access token in, so the
//! token never enters the sandbox.

use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

/// Where the host puts the access token.
pub const SESSION_PLACEHOLDER: &str = "{{provisioner:session-id}}";

/// How the SOAP API says the session expired (in a fault, with HTTP 500).
pub const SESSION_EXPIRED: &str = "INVALID_SESSION_ID";

/// The most leads one `convertLead` call takes.
pub const MAX_CONVERTS: usize = 100;

/// The envelope converting `lead_ids` into Contacts, under `account_id` if
/// given, without an Opportunity.
pub fn convert_envelope(lead_ids: &[&str], account_id: Option<&str>, status: &str) -> String {
    let mut converts = String::new();
    for lead in lead_ids {
        converts.push_str("<urn:leadConverts>");
        if let Some(account) = account_id {
            converts.push_str(&format!(
                "<urn:accountId>{}</urn:accountId>",
                escape(account)
            ));
        }
        converts.push_str(&format!(
            "<urn:convertedStatus>{}</urn:convertedStatus><urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity><urn:leadId>{}</urn:leadId><urn:overwriteLeadSource>false</urn:overwriteLeadSource><urn:sendNotificationEmail>false</urn:sendNotificationEmail></urn:leadConverts>",
            escape(status),
            escape(*lead)
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>{SESSION_PLACEHOLDER}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:convertLead>{converts}</urn:convertLead></soapenv:Body></soapenv:Envelope>"#
    )
}

/// One `LeadConvertResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertResult {
    pub lead_id: Option<String>,
    pub contact_id: Option<String>,
    pub account_id: Option<String>,
    pub success: bool,
    /// `(statusCode, message)` of each error.
    pub errors: Vec<(String, String)>,
}

/// What a SOAP answer holds: results, or a fault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub results: Vec<ConvertResult>,
    /// `(faultcode without prefix, faultstring)`.
    pub fault: Option<(String, String)>,
}

/// Reads a `convertLeadResponse` or a fault, by local names.
pub fn parse_answer(body: &str) -> Result<Answer, String> {
    let mut reader = Reader::from_str(body);
    let mut answer = Answer::default();
    let mut text = String::new();
    let mut result: Option<ConvertResult> = None;
    let mut error: Option<(String, String)> = None;
    let mut fault: Option<(String, String)> = None;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(start) => {
                match start.local_name().as_ref() {
                    "result" => result = Some(ConvertResult::default()),
                    "errors" => error = Some((String::new(), String::new())),
                    "Fault" => fault = Some((String::new(), String::new())),
                    _ => {}
                }
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                // XML's five predefined entities; SOAP answers use no other.
                _ => text.push_str(
                    quick_xml::escape::resolve_xml_entity(&r.xml10_content()).unwrap_or(""),
                ),
            },
            Event::End(end) => {
                let value = text.trim().to_string();
                let some = (!value.is_empty()).then(|| value.clone());
                match (end.local_name().as_ref(), result.as_mut()) {
                    ("statusCode", _) if error.is_some() => {
                        if let Some(e) = error.as_mut() {
                            e.0 = value;
                        }
                    }
                    ("message", _) if error.is_some() => {
                        if let Some(e) = error.as_mut() {
                            e.1 = value;
                        }
                    }
                    ("errors", Some(r)) => r.errors.extend(error.take()),
                    ("leadId", Some(r)) => r.lead_id = some,
                    ("contactId", Some(r)) => r.contact_id = some,
                    ("accountId", Some(r)) => r.account_id = some,
                    ("success", Some(r)) => r.success = value == "true",
                    ("result", Some(_)) => answer.results.extend(result.take()),
                    ("faultcode", _) => {
                        if let Some(f) = fault.as_mut() {
                            f.0 = value.rsplit(':').next().unwrap_or(&value).to_string();
                        }
                    }
                    ("faultstring", _) => {
                        if let Some(f) = fault.as_mut() {
                            f.1 = value;
                        }
                    }
                    ("Fault", _) => answer.fault = fault.take(),
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_a_placeholder_never_a_token() {
        let envelope = convert_envelope(&["00Q1", "00Q2"], Some("001A&B"), "Closed - Converted");
        assert!(envelope.contains(SESSION_PLACEHOLDER));
        assert_eq!(envelope.matches("<urn:leadConverts>").count(), 2);
        assert!(envelope.contains("<urn:accountId>001A&amp;B</urn:accountId>"));
        assert!(envelope.contains("<urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity>"));
    }

    #[test]
    fn results_and_faults_are_read() {
        let ok = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><convertLeadResponse><result><accountId>001A</accountId><contactId>003C</contactId><leadId>00QL</leadId><opportunityId xsi:nil="true"/><success>true</success></result><result><accountId xsi:nil="true"/><contactId xsi:nil="true"/><errors><message>This lead was already converted</message><statusCode>INVALID_STATUS</statusCode></errors><leadId>00QM</leadId><opportunityId xsi:nil="true"/><success>false</success></result></convertLeadResponse></soapenv:Body></soapenv:Envelope>"#;
        let answer = parse_answer(ok).unwrap();
        assert_eq!(answer.results.len(), 2);
        assert_eq!(answer.results[0].contact_id.as_deref(), Some("003C"));
        assert!(answer.results[0].success);
        assert!(!answer.results[1].success);
        assert_eq!(
            answer.results[1].errors,
            vec![(
                "INVALID_STATUS".to_string(),
                "This lead was already converted".to_string()
            )]
        );
        let fault = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let answer = parse_answer(fault).unwrap();
        assert_eq!(
            answer.fault.as_ref().map(|f| f.0.as_str()),
            Some("INVALID_SESSION_ID")
        );
        assert!(parse_answer("<a><b></a>").is_err());
    }
}
