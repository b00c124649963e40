//! The connector's logic, over any [`Host`]: the component's imports in the
//! sandbox, or a native host in tests and benchmarks.
//!
//! One connection serves one record type, `Lead` or `Contact`, as in
//! PingOne. Both speak Lead-style attribute names (`Street`, `City`, ...,
//! `Company`); for Contacts the address goes to the `Mailing*` fields and
//! `Company`, which Contacts do not have, is not sent. Records are written
//! through sObject Collections, 200 at a time; lookups are batched SOQL
//! `IN` queries; Leads are converted with SOAP `convertLead`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, DefaultHasher};

use serde_json::{Map, Value};

use crate::contract::{
    AttributeType, Capability, ConnectionReport, Conversion, Descriptor, DescriptorBuilder, Match,
    Operation, Outcome, Page, Setting, SettingKind, Source, StoredRecord, Update,
};
use crate::http::{BodyCredential, Credential, HttpError, Method, Request, Response};
use crate::log::Level;
use crate::record::{self, Field, Record};
use crate::types::{Attribute, Rejection, StoreError, TransientError, Value as WitValue};
use crate::{Host, soap, soql, wire};

pub const NAME: &str = "salesforce-leads-contacts";

/// The most records one sObject Collections call carries.
pub const COLLECTION_LIMIT: usize = 200;

const DEFAULT_API_VERSION: &str = "62.0";
const DEFAULT_CONVERTED_STATUS: &str = "Closed - Converted";

/// Index of `https://{domain}` in the egress list.
const DOMAIN_ORIGIN: u32 = 0;

/// Lead-style names and where they go on a Contact (`None`: not sent).
const CONTACT_NAMES: &[(&str, Option<&str>)] = &[
    ("Street", Some("MailingStreet")),
    ("City", Some("MailingCity")),
    ("State", Some("MailingState")),
    ("PostalCode", Some("MailingPostalCode")),
    ("Country", Some("MailingCountry")),
    ("Company", None),
];

const LEAD_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "Title",
    "Company",
    "Street",
    "City",
    "State",
    "PostalCode",
    "Country",
];

const CONTACT_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "Title",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "AccountId",
];

/// What the connector declares. Pure: no settings, no network.
pub fn describe() -> Descriptor {
    use Capability::*;
    let map = |builder: DescriptorBuilder, (target, source): (&str, &str)| {
        builder.map(target, Source::attribute(source))
    };
    let builder = DescriptorBuilder::new(
        NAME,
        env!("CARGO_PKG_VERSION"),
        "People as Salesforce Leads or Contacts (one record type per connection)",
    )
    .text_setting(
        "domain",
        "Salesforce My Domain host, e.g. acme.my.salesforce.com",
        true,
    )
    .setting(Setting {
        name: "record_type".into(),
        description: "What people become: Lead or Contact".into(),
        kind: SettingKind::Choice(vec!["Lead".into(), "Contact".into()]),
        required: true,
        secret: false,
        default_value: None,
    })
    .text_setting(
        "account_id",
        "Account for new Contacts and for converted Leads (001...)",
        false,
    )
    .text_setting(
        "default_company",
        "Company for Leads whose mapping gives none",
        false,
    )
    .text_setting("api_version", "REST API version", false)
    .with_default(DEFAULT_API_VERSION)
    .text_setting(
        "converted_status",
        "Lead status that marks a conversion",
        false,
    )
    .with_default(DEFAULT_CONVERTED_STATUS)
    .integer_setting(
        "page_size",
        "Records per page when listing (200 to 2000)",
        2000,
    )
    .secret_setting("client_id", "Connected app consumer key", true)
    .secret_setting("client_secret", "Connected app consumer secret", true)
    .oauth2("https://{domain}/services/oauth2/token")
    .capabilities([Create, Update, Delete, Lookup, List, Convert])
    .egress("https://{domain}")
    .egress("https://*.my.salesforce.com")
    .egress("https://*.salesforce.com")
    .match_attribute("Email")
    // Salesforce finds and compares Email without case.
    .attribute("Email", AttributeType::Text, false);
    [
        ("FirstName", "given_name"),
        ("LastName", "family_name"),
        ("Email", "email"),
        ("Phone", "phone"),
        ("Title", "title"),
        ("Company", "company"),
        ("Street", "street"),
        ("City", "city"),
        ("State", "region"),
        ("PostalCode", "postal_code"),
        ("Country", "country"),
    ]
    .into_iter()
    .fold(builder, map)
    .build()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordType {
    Lead,
    Contact,
}

impl RecordType {
    fn name(self) -> &'static str {
        match self {
            RecordType::Lead => "Lead",
            RecordType::Contact => "Contact",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            RecordType::Lead => LEAD_FIELDS,
            RecordType::Contact => CONTACT_FIELDS,
        }
    }

    /// Conditions every read adds: converted Leads are Contacts now.
    fn live(self) -> Vec<String> {
        match self {
            RecordType::Lead => vec!["IsConverted = false".into()],
            RecordType::Contact => Vec::new(),
        }
    }

    /// The store's name for a Lead-style attribute name.
    fn store_name(self, name: &str) -> Option<&str> {
        match self {
            RecordType::Lead => Some(name),
            RecordType::Contact => match CONTACT_NAMES
                .iter()
                .find(|(from, _)| from.eq_ignore_ascii_case(name))
            {
                Some((_, to)) => *to,
                None => Some(name),
            },
        }
    }

    /// The Lead-style name of a store field.
    fn lead_name(self, field: &str) -> String {
        match self {
            RecordType::Lead => field.to_string(),
            RecordType::Contact => CONTACT_NAMES
                .iter()
                .find(|(_, to)| to.is_some_and(|t| t.eq_ignore_ascii_case(field)))
                .map(|(from, _)| from.to_string())
                .unwrap_or_else(|| field.to_string()),
        }
    }
}

struct Settings {
    record_type: RecordType,
    account_id: Option<String>,
    default_company: Option<String>,
    api_version: String,
    converted_status: String,
    page_size: u32,
}

fn rejected(code: &str, message: String) -> StoreError {
    StoreError::Rejected(Rejection {
        code: code.into(),
        message,
        fields: Vec::new(),
    })
}

fn transient(message: String) -> StoreError {
    StoreError::Transient(TransientError {
        message,
        retry_after_ms: None,
    })
}

/// Keeps the host's wording: it names the refused URL, the TLS failure or
/// the token endpoint's answer.
fn from_http(error: HttpError) -> StoreError {
    match error {
        HttpError::Unauthorized(message) => StoreError::Unauthorized(message),
        HttpError::Denied(message) => rejected("EGRESS_DENIED", message),
        HttpError::InvalidRequest(message) => rejected("INVALID_REQUEST", message),
        HttpError::TooLarge(cap) => rejected(
            "RESPONSE_TOO_LARGE",
            format!("the answer exceeded the host's {cap}-byte cap"),
        ),
        HttpError::Unreachable(message) => transient(format!("unreachable: {message}")),
        HttpError::Tls(message) => transient(format!("TLS: {message}")),
        HttpError::Timeout(message) => transient(format!("timeout: {message}")),
        HttpError::Protocol(message) => transient(format!("protocol: {message}")),
    }
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn retry_after(response: &Response) -> Option<u64> {
    header(response, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|seconds| seconds * 1000)
}

fn from_json(value: &Value) -> WitValue {
    match value {
        Value::Null => WitValue::Null,
        Value::Bool(flag) => WitValue::Boolean(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => WitValue::Integer(integer),
            None => WitValue::Text(number.to_string()),
        },
        Value::String(text) => WitValue::Text(text.clone()),
        other => WitValue::Text(other.to_string()),
    }
}

/// The connector bound to a host.
pub struct Salesforce<H: Host> {
    host: H,
}

impl<H: Host> Salesforce<H> {
    pub fn new(host: H) -> Self {
        Salesforce { host }
    }

    fn settings(&self) -> Result<Settings, StoreError> {
        let record_type = match self.host.setting("record_type").as_deref() {
            Some("Lead") => RecordType::Lead,
            Some("Contact") => RecordType::Contact,
            other => {
                return Err(rejected(
                    "INVALID_SETTING",
                    format!("record_type must be Lead or Contact, not {other:?}"),
                ));
            }
        };
        let api_version = self
            .host
            .setting("api_version")
            .unwrap_or_else(|| DEFAULT_API_VERSION.into());
        let valid_version = api_version
            .split_once('.')
            .is_some_and(|(major, minor)| major.parse::<u32>().is_ok() && minor == "0");
        if !valid_version {
            return Err(rejected(
                "INVALID_SETTING",
                format!("api_version must look like 62.0, not {api_version:?}"),
            ));
        }
        let account_id = self.host.setting("account_id").filter(|a| !a.is_empty());
        if let Some(account) = &account_id
            && !(account.starts_with("001") && (account.len() == 15 || account.len() == 18))
        {
            return Err(rejected(
                "INVALID_SETTING",
                format!(
                    "account_id must be an Account id (15 or 18 characters starting with 001), not {account:?}"
                ),
            ));
        }
        Ok(Settings {
            record_type,
            account_id,
            default_company: self
                .host
                .setting("default_company")
                .filter(|c| !c.trim().is_empty()),
            api_version,
            converted_status: self
                .host
                .setting("converted_status")
                .unwrap_or_else(|| DEFAULT_CONVERTED_STATUS.into()),
            page_size: self
                .host
                .setting("page_size")
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(2000)
                .clamp(200, 2000),
        })
    }

    /// Where requests go: the instance the token endpoint named, or the
    /// configured domain.
    fn base(&self) -> Result<String, StoreError> {
        self.host
            .session("instance-url")
            .or_else(|| self.host.egress_url(DOMAIN_ORIGIN))
            .map(|url| url.trim_end_matches('/').to_string())
            .ok_or_else(|| {
                rejected(
                    "INVALID_SETTING",
                    "the domain setting is not configured".into(),
                )
            })
    }

    fn data_url(&self, settings: &Settings, path: &str) -> Result<String, StoreError> {
        Ok(format!(
            "{}/services/data/v{}/{path}",
            self.base()?,
            settings.api_version
        ))
    }

    fn send(
        &self,
        method: Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        credential: Credential,
    ) -> Result<Response, StoreError> {
        let request = Request {
            method,
            url,
            headers,
            body,
            credential,
        };
        let response = self.host.send(&request).map_err(from_http)?;
        // Every answer states the org's daily allowance; the host shows
        // the latest, and knows no Salesforce header itself.
        if let Some((used, max)) = header(&response, "sforce-limit-info").and_then(wire::api_usage)
        {
            self.host.report_quota(used, max);
        }
        Ok(response)
    }

    /// A REST call with a JSON body, answered 2xx, or the classified error.
    fn rest(
        &self,
        method: Method,
        url: String,
        body: Option<Vec<u8>>,
        extra: &[(&str, String)],
    ) -> Result<Response, StoreError> {
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let response = self.send(method, url, headers, body, Credential::AuthorizationHeader)?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(wire::classify_response(
                response.status,
                &response.body,
                retry_after(&response),
            ))
        }
    }

    fn query(
        &self,
        settings: &Settings,
        soql: &str,
        batch: Option<u32>,
    ) -> Result<wire::QueryPage, StoreError> {
        self.query_encoded(settings, &soql::encode(soql), batch)
    }

    /// A query whose text is already form-encoded.
    fn query_encoded(
        &self,
        settings: &Settings,
        encoded: &str,
        batch: Option<u32>,
    ) -> Result<wire::QueryPage, StoreError> {
        let url = self.data_url(settings, &format!("query?q={encoded}"))?;
        let extra: Vec<(&str, String)> = batch
            .map(|b| vec![("sforce-query-options", format!("batchSize={b}"))])
            .unwrap_or_default();
        let response = self.rest(Method::Get, url, None, &extra)?;
        wire::parse_query(&response.body)
    }

    fn next_page(&self, next: &str) -> Result<wire::QueryPage, StoreError> {
        if !next.starts_with("/services/data/") || !next.contains("/query/") {
            return Err(rejected(
                "INVALID_CURSOR",
                format!("{next:?} is not a query locator"),
            ));
        }
        let url = format!("{}{next}", self.base()?);
        let response = self.rest(Method::Get, url, None, &[])?;
        wire::parse_query(&response.body)
    }

    /// PingOne's Test Connection: one authenticated query that names the
    /// org, on the configured API version.
    pub fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
        let settings = self.settings()?;
        let url = self.data_url(
            &settings,
            &format!(
                "query?q={}",
                soql::encode("SELECT Id, Name FROM Organization LIMIT 1")
            ),
        )?;
        let response = self.send(
            Method::Get,
            url,
            vec![("accept".into(), "application/json".into())],
            None,
            Credential::AuthorizationHeader,
        )?;
        if response.status == 404 {
            return Err(rejected(
                "API_VERSION_UNAVAILABLE",
                format!(
                    "API version v{} is not available at {} ({})",
                    settings.api_version,
                    self.base()?,
                    wire::excerpt(&response.body)
                ),
            ));
        }
        if !(200..300).contains(&response.status) {
            return Err(wire::classify_response(
                response.status,
                &response.body,
                retry_after(&response),
            ));
        }
        let page = wire::parse_query(&response.body)?;
        let org = page.records.first().cloned().unwrap_or_default();
        let text = |key: &str| {
            org.get(key)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        let usage = header(&response, "sforce-limit-info").and_then(wire::api_usage);
        let mut details = vec![
            ("org-id".to_string(), text("Id")),
            ("org-name".into(), text("Name")),
            ("instance".into(), self.base()?),
            ("api-version".into(), settings.api_version.clone()),
            ("record-type".into(), settings.record_type.name().into()),
        ];
        if let Some((used, max)) = usage {
            details.push(("api-usage".into(), format!("{used}/{max} requests today")));
        }
        Ok(ConnectionReport {
            summary: format!(
                "connected to Salesforce org {} ({}) on API v{}; people become {}s",
                text("Name"),
                text("Id"),
                settings.api_version,
                settings.record_type.name()
            ),
            details,
        })
    }

    /// One record for Collections, in the store's names.
    fn record<'a>(
        &self,
        settings: &'a Settings,
        attributes: &'a [Attribute],
        id: Option<&'a str>,
    ) -> Record<'a> {
        let kind = settings.record_type;
        let create = id.is_none();
        let mut record = Record::new(kind.name(), id);
        for attribute in attributes {
            if let Some(name) = kind.store_name(&attribute.name) {
                record.set(name, Field::Value(&attribute.value));
            }
        }
        // A Lead needs a Company: the default stands in for an empty one,
        // on create and whenever an update would clear it.
        let clears_company = !create && record.get("Company").is_some();
        if create || clears_company {
            match kind {
                RecordType::Lead => {
                    if Field::is_blank(record.get("Company"))
                        && let Some(company) = &settings.default_company
                    {
                        record.set("Company", Field::Text(company));
                    }
                }
                RecordType::Contact if create => {
                    if Field::is_blank(record.get("AccountId"))
                        && let Some(account) = &settings.account_id
                    {
                        record.set("AccountId", Field::Text(account));
                    }
                }
                RecordType::Contact => {}
            }
        }
        record
    }

    /// Sends one Collections call; every record gets a result, in order.
    fn collection(
        &self,
        settings: &Settings,
        method: Method,
        records: &[Record<'_>],
    ) -> Vec<Result<String, StoreError>> {
        let count = records.len();
        let answer = self
            .data_url(settings, "composite/sobjects")
            .and_then(|url| {
                let body = record::collection_body(records)
                    .map_err(|e| transient(format!("encoding the request body: {e}")))?;
                self.rest(method, url, Some(body), &[])
            })
            .and_then(|response| wire::parse_collection(&response.body, count));
        match answer {
            Ok(results) => results,
            Err(error) => vec![Err(error); count],
        }
    }

    fn delete_collection(
        &self,
        settings: &Settings,
        ids: &[String],
    ) -> Vec<Result<String, StoreError>> {
        let answer = self
            .data_url(
                settings,
                &format!("composite/sobjects?ids={}&allOrNone=false", ids.join(",")),
            )
            .and_then(|url| self.rest(Method::Delete, url, None, &[]))
            .and_then(|response| wire::parse_collection(&response.body, ids.len()));
        match answer {
            Ok(results) => results,
            Err(error) => vec![Err(error); ids.len()],
        }
    }

    /// Converts Leads with SOAP `convertLead`; results in order, the new
    /// Contact id on success.
    fn convert(
        &self,
        settings: &Settings,
        conversions: &[&Conversion],
    ) -> Vec<Result<String, StoreError>> {
        let count = conversions.len();
        let lead_ids: Vec<&str> = conversions.iter().map(|c| c.id.as_str()).collect();
        let envelope = soap::convert_envelope(
            &lead_ids,
            settings.account_id.as_deref(),
            &settings.converted_status,
        );
        let url = match self.base() {
            Ok(base) => format!("{base}/services/Soap/u/{}", settings.api_version),
            Err(error) => return vec![Err(error); count],
        };
        let response = self.send(
            Method::Post,
            url,
            vec![
                ("content-type".into(), "text/xml; charset=UTF-8".into()),
                ("soapaction".into(), "\"\"".into()),
            ],
            Some(envelope.into_bytes()),
            Credential::Body(BodyCredential {
                placeholder: soap::SESSION_PLACEHOLDER.into(),
                expired_marker: soap::SESSION_EXPIRED.into(),
            }),
        );
        let response = match response {
            Ok(response) => response,
            Err(error) => return vec![Err(error); count],
        };
        let body = String::from_utf8_lossy(&response.body);
        let answer = match soap::parse_answer(&body) {
            Ok(answer) => answer,
            Err(reason) => {
                return vec![
                    Err(transient(format!(
                        "unreadable convertLead answer (HTTP {}): {reason}",
                        response.status
                    )));
                    count
                ];
            }
        };
        if let Some((code, message)) = answer.fault {
            let error = wire::classify_error(
                response.status,
                &wire::ApiError {
                    code,
                    message,
                    fields: Vec::new(),
                },
                None,
            );
            return vec![Err(error); count];
        }
        let mut results: Vec<Result<String, StoreError>> = answer
            .results
            .into_iter()
            .take(count)
            .map(|result| match (result.success, result.contact_id) {
                (true, Some(contact)) => Ok(contact),
                (true, None) => Err(transient(
                    "convertLead reported success without a Contact id".into(),
                )),
                (false, _) => {
                    let (code, message) = result.errors.into_iter().next().unwrap_or_default();
                    Err(wire::classify_error(
                        400,
                        &wire::ApiError {
                            code,
                            message,
                            fields: Vec::new(),
                        },
                        None,
                    ))
                }
            })
            .collect();
        while results.len() < count {
            results.push(Err(transient(
                "convertLead answered fewer results than leads".into(),
            )));
        }
        results
    }

    /// Applies a batch. Operations are grouped by kind, so that a batch of
    /// 450 creates costs three Collections calls; the host never puts two
    /// operations on one record in a batch, so the grouping is safe.
    pub fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        let settings = match self.settings() {
            Ok(settings) => settings,
            Err(error) => return vec![Err(error); operations.len()],
        };
        let mut results: Vec<Option<Result<Outcome, StoreError>>> = vec![None; operations.len()];
        let mut creates = Vec::new();
        let mut updates: Vec<(usize, &Update)> = Vec::new();
        let mut deletes: Vec<(usize, &String)> = Vec::new();
        let mut converts: Vec<(usize, &Conversion)> = Vec::new();
        for (index, operation) in operations.iter().enumerate() {
            match operation {
                Operation::Create(attributes) => {
                    creates.push((index, self.record(&settings, attributes, None)))
                }
                Operation::Update(update) => updates.push((index, update)),
                Operation::Delete(id) => deletes.push((index, id)),
                Operation::Disable(_) | Operation::Enable(_) => {
                    results[index] = Some(Err(StoreError::Unsupported(
                        "Leads and Contacts have no active flag; remove them with delete".into(),
                    )));
                }
                Operation::Convert(conversion) => {
                    if settings.record_type != RecordType::Lead
                        || conversion.target_type != "Contact"
                    {
                        results[index] = Some(Err(StoreError::Unsupported(format!(
                            "a {} connection cannot convert into {}; only Leads convert, into Contacts",
                            settings.record_type.name(),
                            conversion.target_type
                        ))));
                    } else {
                        converts.push((index, conversion));
                    }
                }
            }
        }

        let (create_indexes, creates): (Vec<usize>, Vec<Record>) = creates.into_iter().unzip();
        for (indexes, records) in create_indexes
            .chunks(COLLECTION_LIMIT)
            .zip(creates.chunks(COLLECTION_LIMIT))
        {
            let answers = self.collection(&settings, Method::Post, records);
            for (&index, answer) in indexes.iter().zip(answers) {
                results[index] = Some(answer.map(|id| Outcome { id, version: None }));
            }
        }
        for chunk in updates.chunks(COLLECTION_LIMIT) {
            let records: Vec<Record> = chunk
                .iter()
                .map(|(_, update)| self.record(&settings, &update.attributes, Some(&update.id)))
                .collect();
            let answers = self.collection(&settings, Method::Patch, &records);
            for ((index, update), answer) in chunk.iter().zip(answers) {
                results[*index] = Some(answer.map(|_| Outcome {
                    id: update.id.clone(),
                    version: None,
                }));
            }
        }
        for chunk in deletes.chunks(COLLECTION_LIMIT) {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| (*id).clone()).collect();
            let answers = self.delete_collection(&settings, &ids);
            for ((index, id), answer) in chunk.iter().zip(answers) {
                results[*index] = Some(answer.map(|_| Outcome {
                    id: (*id).clone(),
                    version: None,
                }));
            }
        }
        for chunk in converts.chunks(soap::MAX_CONVERTS) {
            let conversions: Vec<&Conversion> = chunk.iter().map(|(_, c)| *c).collect();
            let answers = self.convert(&settings, &conversions);
            let mut follow_up = Vec::new();
            for ((index, conversion), answer) in chunk.iter().zip(answers) {
                if let Ok(contact) = &answer
                    && !conversion.attributes.is_empty()
                {
                    follow_up.push((contact.clone(), conversion.attributes.clone()));
                }
                results[*index] = Some(answer.map(|id| Outcome { id, version: None }));
            }
            self.update_converted(&settings, follow_up);
        }

        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(transient("the operation was not processed".into()))))
            .collect()
    }

    /// Writes a conversion's attributes onto the new Contacts. The
    /// conversion itself cannot be undone, so a failure here is logged and
    /// left to the next update pass rather than reported as a failed
    /// conversion.
    fn update_converted(&self, settings: &Settings, contacts: Vec<(String, Vec<Attribute>)>) {
        if contacts.is_empty() {
            return;
        }
        let as_contacts = Settings {
            record_type: RecordType::Contact,
            account_id: None,
            default_company: None,
            api_version: settings.api_version.clone(),
            converted_status: settings.converted_status.clone(),
            page_size: settings.page_size,
        };
        let records: Vec<Record> = contacts
            .iter()
            .map(|(id, attributes)| self.record(&as_contacts, attributes, Some(id)))
            .collect();
        for (answer, (id, _)) in self
            .collection(&as_contacts, Method::Patch, &records)
            .into_iter()
            .zip(&contacts)
        {
            if let Err(error) = answer {
                self.host.log(
                    Level::Warn,
                    &format!(
                        "converted into Contact {id}, but setting its attributes failed: {error:?}"
                    ),
                );
            }
        }
    }

    /// A record's attributes in the names and form the host writes them:
    /// Lead-style names, and a Lead's default Company read back as empty,
    /// so that a person without a company never looks out of date.
    fn attributes(&self, settings: &Settings, record: &Map<String, Value>) -> Vec<Attribute> {
        let kind = settings.record_type;
        record
            .iter()
            .filter(|(name, _)| *name != "attributes" && *name != "Id")
            .map(|(name, value)| {
                let defaulted = kind == RecordType::Lead
                    && name == "Company"
                    && settings
                        .default_company
                        .as_deref()
                        .is_some_and(|company| value.as_str() == Some(company));
                Attribute {
                    name: kind.lead_name(name),
                    value: if defaulted {
                        WitValue::Null
                    } else {
                        from_json(value)
                    },
                }
            })
            .collect()
    }

    /// Finds records whose `attribute` (Lead-style name) equals one of
    /// `values`, ignoring case as SOQL does, with as few queries as fit in
    /// Salesforce's URL limit.
    pub fn lookup_records(
        &self,
        attribute: String,
        values: Vec<String>,
    ) -> Result<Vec<Match>, StoreError> {
        let settings = self.settings()?;
        let kind = settings.record_type;
        let Some(field) = kind.store_name(&attribute).and_then(|name| {
            kind.fields()
                .iter()
                .find(|f| f.eq_ignore_ascii_case(name))
                .copied()
        }) else {
            return Err(StoreError::Rejected(Rejection {
                code: "INVALID_FIELD".into(),
                message: format!("{attribute} cannot be looked up on {}", kind.name()),
                fields: vec![attribute],
            }));
        };
        // Each distinct value once, as asked, keyed by the value folded as
        // SOQL compares it, so that matching a thousand answers to a
        // thousand asked values stays linear.
        // Hashed, not ordered: an ordered map compares keys with `memcmp`,
        // a byte loop in WebAssembly, and a lookup of 1,000 values took
        // 0.6 ms longer in the component that way. The hasher's keys are
        // fixed, so the component needs no randomness; a caller who
        // crafted colliding values would slow only its own call, of at
        // most the values it asked.
        let mut asked: HashMap<String, usize, BuildHasherDefault<DefaultHasher>> =
            HashMap::with_capacity_and_hasher(values.len(), Default::default());
        let mut unique: Vec<String> = Vec::with_capacity(values.len());
        for value in values {
            if value.is_empty() {
                continue;
            }
            if let Entry::Vacant(slot) = asked.entry(value.to_ascii_lowercase()) {
                slot.insert(unique.len());
                unique.push(value);
            }
        }
        let mut matches = Vec::new();
        // `SELECT … WHERE {field} IN (…) AND …`, encoded around lists that
        // come encoded.
        let select = soql::select(kind.fields(), kind.name(), &[]);
        let head = soql::encode(&format!("{select} WHERE {field} IN "));
        let tail: String = kind
            .live()
            .iter()
            .map(|condition| soql::encode(&format!(" AND {condition}")))
            .collect();
        let fixed = head.len() + tail.len() + 200;
        for list in soql::in_lists(&unique, fixed, soql::URL_BUDGET) {
            let mut page = self.query_encoded(&settings, &format!("{head}{list}{tail}"), None)?;
            loop {
                for record in &page.records {
                    let Some(found) = record.get(field).and_then(Value::as_str) else {
                        continue;
                    };
                    let Some(&index) = asked.get(&found.to_ascii_lowercase()) else {
                        continue;
                    };
                    matches.push(Match {
                        value: unique[index].clone(),
                        id: record
                            .get("Id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        attributes: self.attributes(&settings, record),
                        version: None,
                    });
                }
                match page.next.take() {
                    Some(next) => page = self.next_page(&next)?,
                    None => break,
                }
            }
        }
        Ok(matches)
    }

    /// One page of every record of the connection's type; the cursor is
    /// Salesforce's `nextRecordsUrl`.
    pub fn list_records(&self, cursor: Option<String>) -> Result<Page, StoreError> {
        let settings = self.settings()?;
        let kind = settings.record_type;
        let page = match cursor {
            Some(next) => self.next_page(&next)?,
            None => {
                let query = soql::select(kind.fields(), kind.name(), &kind.live());
                self.query(&settings, &query, Some(settings.page_size))?
            }
        };
        Ok(Page {
            records: page
                .records
                .iter()
                .map(|record| StoredRecord {
                    id: record
                        .get("Id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    attributes: self.attributes(&settings, record),
                    version: None,
                })
                .collect(),
            next_cursor: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_take_lead_style_names() {
        assert_eq!(RecordType::Contact.store_name("City"), Some("MailingCity"));
        assert_eq!(RecordType::Contact.store_name("Company"), None);
        assert_eq!(RecordType::Contact.store_name("Email"), Some("Email"));
        assert_eq!(RecordType::Lead.store_name("City"), Some("City"));
        assert_eq!(RecordType::Contact.lead_name("MailingCity"), "City");
        assert_eq!(RecordType::Contact.lead_name("AccountId"), "AccountId");
    }

    #[test]
    fn the_descriptor_declares_no_disable_and_no_fixed_host() {
        let d = describe();
        assert!(
            !d.capabilities
                .iter()
                .any(|c| matches!(c, Capability::Disable))
        );
        assert!(
            d.capabilities
                .iter()
                .any(|c| matches!(c, Capability::Convert))
        );
        assert_eq!(d.egress[0], "https://{domain}");
        assert!(
            d.egress
                .iter()
                .all(|e| e.contains("{domain}") || e.contains("*."))
        );
        let crate::contract::AuthScheme::Oauth2(oauth) = &d.auth else {
            panic!("OAuth 2.0")
        };
        assert_eq!(oauth.token_url, "https://{domain}/services/oauth2/token");
        // The SDK's checks, which the host makes at load time.
        crate::contract::check_descriptor(&d).unwrap();
        // Setting by setting and mapping by mapping, what the connector
        // declared before it was built on the SDK's builder.
        let settings: Vec<(&str, bool, bool, Option<&str>)> = d
            .settings
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.required,
                    s.secret,
                    s.default_value.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            settings,
            [
                ("domain", true, false, None),
                ("record_type", true, false, None),
                ("account_id", false, false, None),
                ("default_company", false, false, None),
                ("api_version", false, false, Some(DEFAULT_API_VERSION)),
                (
                    "converted_status",
                    false,
                    false,
                    Some(DEFAULT_CONVERTED_STATUS)
                ),
                ("page_size", false, false, Some("2000")),
                ("client_id", true, true, None),
                ("client_secret", true, true, None),
                ("access_token", false, true, None),
                ("refresh_token", false, true, None),
            ]
        );
        assert!(matches!(&d.settings[1].kind, SettingKind::Choice(c) if c == &["Lead", "Contact"]));
        assert!(matches!(d.settings[6].kind, SettingKind::Integer));
        let targets: Vec<(&str, &str)> = d
            .default_mappings
            .iter()
            .map(|m| {
                assert!(m.apply_on_update, "{}", m.target);
                match &m.source {
                    crate::contract::MappingSource::Attribute(source) => {
                        (m.target.as_str(), source.as_str())
                    }
                    other => panic!("{}: {other:?}", m.target),
                }
            })
            .collect();
        assert_eq!(
            targets,
            [
                ("FirstName", "given_name"),
                ("LastName", "family_name"),
                ("Email", "email"),
                ("Phone", "phone"),
                ("Title", "title"),
                ("Company", "company"),
                ("Street", "street"),
                ("City", "city"),
                ("State", "region"),
                ("PostalCode", "postal_code"),
                ("Country", "country"),
            ]
        );
        assert_eq!(d.match_attribute, "Email");
    }
}
