//! The emulator on the wire, over loopback HTTP: its answers have the
//! shapes Salesforce's own answers have (tests/shapes/), and it behaves as
//! an org does for sessions, limits, paging, Collections, conversion and
//! injected faults.

use std::time::Duration;

use salesforce_emulator::{Chaos, ChaosKind, Emulator, Fault, Options, Outcome};
use serde_json::{Value, json};

const V: &str = "v62.0";

/// The type skeleton of a JSON value: keys and types, not values.
fn assert_shape(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let Some(found) = a.get(key) else {
                    panic!("{path}.{key} is missing from {actual}");
                };
                assert_shape(value, found, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(first), Some(found)) = (e.first(), a.first()) {
                assert_shape(first, found, &format!("{path}[0]"));
            }
        }
        // A field that is null in one answer may be set in another.
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: expected the type of {expected}, got {actual}"),
    }
}

fn recorded(name: &str) -> Value {
    // The package directory as cargo gives it when the test runs: a test
    // binary may come from another checkout sharing the target directory.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{root}/tests/shapes/{name}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Org {
    emulator: Emulator,
    client: reqwest::Client,
    token: String,
}

impl Org {
    async fn start(options: Options) -> Org {
        let emulator = Emulator::start(options).await.unwrap();
        let client = reqwest::Client::new();
        let mut org = Org {
            emulator,
            client,
            token: String::new(),
        };
        let (status, body) = org.refresh("demo-refresh-token").await;
        assert_eq!(status, 200, "{body}");
        org.token = body["access_token"].as_str().unwrap().to_string();
        org
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let options = self.emulator.options();
        let response = self
            .client
            .post(format!(
                "{}/services/oauth2/token",
                self.emulator.base_url()
            ))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &options.client_id),
                ("client_secret", &options.client_secret),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/services/data/{V}/{path}", self.emulator.base_url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
        let response = request.bearer_auth(&self.token).send().await.unwrap();
        let status = response.status().as_u16();
        let limit = response
            .headers()
            .get("sforce-limit-info")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body, limit)
    }

    async fn get(&self, path: &str) -> (u16, Value, Option<String>) {
        self.send(self.client.get(self.url(path))).await
    }

    async fn query(&self, soql: &str, batch: Option<usize>) -> (u16, Value) {
        let mut request = self.client.get(self.url("query")).query(&[("q", soql)]);
        if let Some(batch) = batch {
            request = request.header("Sforce-Query-Options", format!("batchSize={batch}"));
        }
        let (status, body, _) = self.send(request).await;
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }
}

#[tokio::test]
async fn oauth_answers_have_salesforces_shape() {
    let org = Org::start(Options::default()).await;
    let (status, body) = org.refresh("demo-refresh-token").await;
    assert_eq!(status, 200);
    assert_shape(&recorded("token_success"), &body, "token");
    assert!(body["issued_at"].is_string(), "issued_at is a string");
    assert!(body.get("expires_in").is_none(), "no expires_in");

    let (status, body) = org.refresh("not-a-token").await;
    assert_eq!(status, 400);
    assert_shape(&recorded("token_error"), &body, "token error");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "expired access/refresh token");

    let response = org
        .client
        .post(format!("{}/services/oauth2/token", org.emulator.base_url()))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let response = org
        .client
        .post(format!("{}/services/oauth2/token", org.emulator.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-consumer-key"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn sessions_expire_into_invalid_session_id() {
    let org = Org::start(Options {
        session_lifetime: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    let (status, _, _) = org.get("limits").await;
    assert_eq!(status, 200);
    // Wait out the configured lifetime: here the passage of time is the
    // behaviour under test, not a way to synchronise.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body, limit) = org.get("limits").await;
    assert_eq!(status, 401);
    assert_shape(&recorded("error_session"), &body, "session");
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    assert!(limit.is_some(), "even a 401 carries Sforce-Limit-Info");
}

#[tokio::test]
async fn sobject_crud_validates_and_answers_like_salesforce() {
    let org = Org::start(Options::default()).await;
    let (status, body, limit) = org
        .post(
            "sobjects/Lead",
            json!({ "LastName": "Ng", "Company": "Acme", "Email": "ng@acme.test" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_shape(&recorded("create_success"), &body, "create");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("00Q"));
    let limit = limit.expect("Sforce-Limit-Info");
    let usage = limit
        .strip_prefix("api-usage=")
        .expect("api-usage=USED/MAX");
    let (used, max) = usage.split_once('/').unwrap();
    assert!(used.parse::<u64>().unwrap() >= 1);
    assert_eq!(max, "100000");

    let (status, body, _) = org.get(&format!("sobjects/Lead/{id}")).await;
    assert_eq!(status, 200);
    assert_shape(&recorded("sobject_read"), &body, "read");
    assert_eq!(body["Email"], "ng@acme.test");

    let (status, body, _) = org.post("sobjects/Lead", json!({ "LastName": "Ng" })).await;
    assert_eq!(status, 400);
    assert_shape(&recorded("error_required_field"), &body, "required");
    assert_eq!(body[0]["fields"], json!(["Company"]));

    let (status, body, _) = org
        .post("sobjects/Contact", json!({ "FirstName": "A" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["fields"], json!(["LastName"]));

    let (status, _, _) = org
        .send(
            org.client
                .patch(org.url(&format!("sobjects/Lead/{id}")))
                .json(&json!({ "Title": "CTO" })),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = org
        .send(org.client.delete(org.url(&format!("sobjects/Lead/{id}"))))
        .await;
    assert_eq!(status, 204);
    let (status, body, _) = org
        .send(org.client.delete(org.url(&format!("sobjects/Lead/{id}"))))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body[0]["errorCode"], "ENTITY_IS_DELETED");
    let (status, body, _) = org.get("sobjects/Lead/00Qnotanid").await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "MALFORMED_ID");

    let user = org
        .emulator
        .seed(
            "User",
            json!({
                "Username": "u@acme.test", "LastName": "U", "Email": "u@acme.test", "Alias": "uu",
                "TimeZoneSidKey": "GMT", "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
                "ProfileId": "00e5g000000AAAAAAA", "LanguageLocaleKey": "en_US"
            }),
        )
        .unwrap();
    assert!(user.starts_with("005"));
    let (status, body, _) = org
        .send(org.client.delete(org.url(&format!("sobjects/User/{user}"))))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "DELETE_FAILED");
}

#[tokio::test]
async fn soql_pages_with_next_records_url_and_refuses_the_rest() {
    let org = Org::start(Options::default()).await;
    for n in 0..450 {
        org.emulator
            .seed("Lead", json!({ "LastName": format!("L{n}"), "Company": "Acme", "Email": format!("l{n}@acme.test") }))
            .unwrap();
    }
    let (status, first) = org.query("SELECT Id, Email FROM Lead", Some(200)).await;
    assert_eq!(status, 200);
    assert_shape(&recorded("query_more"), &first, "query");
    assert_eq!(first["totalSize"], 450);
    assert_eq!(first["records"].as_array().unwrap().len(), 200);
    let mut seen = 200;
    let mut next = first["nextRecordsUrl"].as_str().map(str::to_string);
    while let Some(url) = next {
        let (status, page, _) = org
            .send(org.client.get(format!("{}{url}", org.emulator.base_url())))
            .await;
        assert_eq!(status, 200, "{page}");
        seen += page["records"].as_array().unwrap().len();
        next = page["nextRecordsUrl"].as_str().map(str::to_string);
        if next.is_none() {
            assert_eq!(page["done"], true);
        }
    }
    assert_eq!(seen, 450);

    let (_, body) = org
        .query("SELECT Id, Email FROM Lead WHERE Email IN ('L7@ACME.test', 'l9@acme.test') AND IsConverted = false", None)
        .await;
    assert_eq!(body["totalSize"], 2, "{body}");
    assert_eq!(body["done"], true);
    let (_, body) = org.query("SELECT Id FROM Lead LIMIT 5", None).await;
    assert_eq!(body["totalSize"], 5);

    let (status, body) = org
        .query("SELECT Id FROM Lead WHERE Email LIKE 'l%'", None)
        .await;
    assert_eq!(status, 400);
    assert_shape(&recorded("error_malformed_query"), &body, "malformed");
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    let (status, body) = org.query("SELECT Id, Shoe FROM Lead", None).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
}

#[tokio::test]
async fn collections_report_each_record_and_honour_all_or_none() {
    let org = Org::start(Options::default()).await;
    let records = json!([
        { "attributes": { "type": "Contact" }, "LastName": "A", "Email": "a@acme.test" },
        { "attributes": { "type": "Contact" }, "FirstName": "no last name" },
        { "attributes": { "type": "Contact" }, "LastName": "C" },
    ]);
    let (status, body, _) = org
        .post(
            "composite/sobjects",
            json!({ "allOrNone": false, "records": records }),
        )
        .await;
    assert_eq!(status, 200);
    assert_shape(&recorded("collection_results"), &body, "collection");
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["success"], false);
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert!(body[1].get("errorCode").is_none());
    assert_eq!(body[2]["success"], true);
    assert_eq!(org.emulator.counters().records["Contact"], 2);

    let (_, body, _) = org
        .post(
            "composite/sobjects",
            json!({ "allOrNone": true, "records": records }),
        )
        .await;
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(
        org.emulator.counters().records["Contact"],
        2,
        "nothing was saved"
    );

    let too_many: Vec<Value> = (0..201)
        .map(|n| json!({ "attributes": { "type": "Contact" }, "LastName": format!("N{n}") }))
        .collect();
    let (status, body, _) = org
        .post("composite/sobjects", json!({ "records": too_many }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");

    let id = org.emulator.records("Contact")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body, _) = org
        .send(
            org.client
                .patch(org.url("composite/sobjects"))
                .json(&json!({
                    "allOrNone": false,
                    "records": [
                        { "attributes": { "type": "Contact" }, "id": id, "Title": "CFO" },
                        { "attributes": { "type": "Contact" }, "id": "003xx", "Title": "CFO" },
                    ]
                })),
        )
        .await;
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["errors"][0]["statusCode"], "MALFORMED_ID");
    assert_eq!(org.emulator.record(&id).unwrap()["Title"], "CFO");

    let (_, body, _) = org
        .send(
            org.client
                .delete(org.url("composite/sobjects"))
                .query(&[("ids", format!("{id},{id}")), ("allOrNone", "false".into())]),
        )
        .await;
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn convert_lead_over_soap_and_the_lead_is_then_locked() {
    let org = Org::start(Options::default()).await;
    let lead = org
        .emulator
        .seed(
            "Lead",
            json!({ "LastName": "Ng", "Company": "Acme", "Email": "ng@acme.test" }),
        )
        .unwrap();
    let envelope = |session: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:convertLead><urn:leadConverts><urn:convertedStatus>Closed - Converted</urn:convertedStatus><urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity><urn:leadId>{lead}</urn:leadId></urn:leadConverts></urn:convertLead></soapenv:Body></soapenv:Envelope>"#
        )
    };
    let soap = format!("{}/services/Soap/u/62.0", org.emulator.base_url());
    let response = org
        .client
        .post(&soap)
        .header("content-type", "text/xml")
        .header("SOAPAction", "\"\"")
        .body(envelope("expired"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("<faultcode>sf:INVALID_SESSION_ID</faultcode>"),
        "{text}"
    );

    let response = org
        .client
        .post(&soap)
        .header("content-type", "text/xml")
        .body(envelope(&org.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for element in [
        "<accountId>",
        "<contactId>",
        "<leadId>",
        "<success>true</success>",
    ] {
        assert!(text.contains(element), "{element} missing: {text}");
    }
    let converted = org.emulator.record(&lead).unwrap();
    assert_eq!(converted["IsConverted"], true);
    let contact = converted["ConvertedContactId"].as_str().unwrap();
    assert_eq!(
        org.emulator.record(contact).unwrap()["Email"],
        "ng@acme.test"
    );

    let (status, body, _) = org
        .send(
            org.client
                .patch(org.url(&format!("sobjects/Lead/{lead}")))
                .json(&json!({ "Title": "x" })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "CANNOT_UPDATE_CONVERTED_LEAD");
}

#[tokio::test]
async fn the_daily_allocation_ends_in_request_limit_exceeded() {
    let org = Org::start(Options {
        daily_api_limit: 3,
        ..Options::default()
    })
    .await;
    let (status, body, _) = org.get("limits").await;
    assert_eq!(status, 200);
    assert_shape(&recorded("limits"), &body, "limits");
    assert_eq!(body["DailyApiRequests"]["Max"], 3);
    assert_eq!(body["DailyApiRequests"]["Remaining"], 2);
    org.get("limits").await;
    org.get("limits").await;
    let (status, body, limit) = org.get("limits").await;
    assert_eq!(status, 403);
    assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(body[0]["message"], "TotalRequests Limit exceeded.");
    assert_eq!(limit.as_deref(), Some("api-usage=3/3"));
}

#[tokio::test]
async fn faults_latency_and_counters_are_controllable_over_http() {
    let org = Org::start(Options::default()).await;
    let control = |path: &str| format!("{}/__emulator/{path}", org.emulator.base_url());
    let response = org
        .client
        .post(control("faults"))
        .json(&json!({ "path": "composite/sobjects", "method": "POST", "status": 400, "errorCode": "UNABLE_TO_LOCK_ROW", "count": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let batch = json!({ "records": [{ "attributes": { "type": "Contact" }, "LastName": "A" }] });
    for _ in 0..2 {
        let (status, body, _) = org.post("composite/sobjects", batch.clone()).await;
        assert_eq!(status, 400);
        assert_eq!(body[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    }
    let (status, _, _) = org.post("composite/sobjects", batch.clone()).await;
    assert_eq!(status, 200, "the fault was used up");

    org.emulator.inject(Fault {
        path: "query".into(),
        method: None,
        status: 503,
        error_code: "SERVER_UNAVAILABLE".into(),
        message: None,
        count: 1,
    });
    let (status, _) = org.query("SELECT Id FROM Lead", None).await;
    assert_eq!(status, 503);

    let counters: Value = org
        .client
        .get(control("counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["requests"]["POST composite/sobjects"], 3);
    assert_eq!(counters["requests"]["GET query"], 1);
    assert_eq!(counters["records"]["Contact"], 1);
    assert_eq!(counters["faultsServed"], 3);
    assert_eq!(counters["tokenRequests"]["refresh_token"], 1);

    let response = org
        .client
        .post(control("expire-sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _, _) = org.get("limits").await;
    assert_eq!(status, 401);
    org.client
        .post(control("revoke-refresh-tokens"))
        .send()
        .await
        .unwrap();
    let (status, body) = org.refresh("demo-refresh-token").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

/// Sends a Collections create of `emails` as Leads and reads the answer to
/// the end: the status and body, or the transport error a client sees.
async fn create_leads(org: &Org, emails: &[&str]) -> Result<(u16, Value), reqwest::Error> {
    let records: Vec<Value> = emails
        .iter()
        .map(|e| json!({ "attributes": { "type": "Lead" }, "LastName": "L", "Company": "C", "Email": e }))
        .collect();
    let response = org
        .client
        .post(org.url("composite/sobjects"))
        .bearer_auth(&org.token)
        .json(&json!({ "records": records }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn only(kind: ChaosKind) -> Chaos {
    Chaos {
        seed: 1,
        per_mille: 1000,
        kinds: vec![kind],
        max_latency_ms: 0,
    }
}

#[tokio::test]
async fn chaos_locks_rows_cuts_answers_and_drops_connections_and_logs_each_write() {
    let org = Org::start(Options::default()).await;

    org.emulator.set_chaos(Some(only(ChaosKind::LockRow)));
    let emails: Vec<String> = (0..40).map(|i| format!("r{i}@example.com")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (status, body) = create_leads(&org, &refs).await.unwrap();
    assert_eq!(status, 200);
    let results = body.as_array().unwrap();
    let locked = results
        .iter()
        .filter(|r| r["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW")
        .count();
    let saved = results.iter().filter(|r| r["success"] == true).count();
    assert!(locked > 5 && saved > 5, "{locked} locked, {saved} saved");
    assert_eq!(locked + saved, 40);
    assert_eq!(
        org.emulator.records("Lead").len(),
        saved,
        "locked rows were not saved"
    );

    org.emulator.set_chaos(Some(only(ChaosKind::TruncateBody)));
    let cut = create_leads(&org, &["cut@example.com"]).await;
    assert!(cut.is_err(), "the client sees the answer break: {cut:?}");
    assert!(
        org.emulator
            .records("Lead")
            .iter()
            .any(|r| r["Email"] == "cut@example.com"),
        "but the record was saved"
    );

    org.emulator
        .set_chaos(Some(only(ChaosKind::DropConnection)));
    let dropped = create_leads(&org, &["dropped@example.com"]).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert!(
        !org.emulator
            .records("Lead")
            .iter()
            .any(|r| r["Email"] == "dropped@example.com"),
        "nothing was saved"
    );

    org.emulator.set_chaos(Some(only(ChaosKind::RequestLimit)));
    let (status, body) = create_leads(&org, &["limited@example.com"]).await.unwrap();
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (403, Some("REQUEST_LIMIT_EXCEEDED"))
    );
    org.emulator.set_chaos(None);

    let log = org.emulator.write_log();
    assert_eq!(log.len(), 43);
    let outcome = |email: &str| {
        log.iter()
            .find(|a| a.key == email)
            .map(|a| a.outcome.clone())
            .unwrap()
    };
    assert_eq!(outcome("cut@example.com"), Outcome::Lost);
    assert_eq!(outcome("dropped@example.com"), Outcome::Dropped);
    assert_eq!(
        outcome("limited@example.com"),
        Outcome::Failed {
            code: "REQUEST_LIMIT_EXCEEDED".into()
        }
    );
    let failed_locks = log
        .iter()
        .filter(|a| {
            a.outcome
                == Outcome::Failed {
                    code: "UNABLE_TO_LOCK_ROW".into(),
                }
        })
        .count();
    assert_eq!(failed_locks, locked);
    let served = org.emulator.counters().chaos_served;
    for kind in [
        "lock-row",
        "truncate-body",
        "drop-connection",
        "request-limit",
    ] {
        assert_eq!(served.get(kind), Some(&1), "{kind}: {served:?}");
    }
}
