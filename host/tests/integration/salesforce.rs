//! The Salesforce Leads and Contacts connector, through the real host and
//! the real component, against the emulator over loopback HTTP.

use crate::common;

use common::*;
use provisioner::runtime::Connector;
use provisioner::runtime::contract::{Attribute, Operation, StoreError, Value};
use salesforce_emulator::{Emulator, Fault, Options};
use serde_json::json;

fn emulator_options() -> Options {
    Options {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_tokens: vec![REFRESH_TOKEN.into()],
        // The configured access token is live until a test says otherwise.
        access_tokens: vec![STALE_ACCESS_TOKEN.into()],
        ..Options::default()
    }
}

fn connection(name: &str, domain: &str, record_type: &str, extra: &str) -> String {
    format!(
        r#"
[connections.{name}]
plugin = "salesforce-leads-contacts"
allow_insecure_loopback = true

[connections.{name}.settings]
domain = "{domain}"
record_type = "{record_type}"
{extra}

[connections.{name}.secrets]
client_id = {{ secrets_file = "client_id" }}
client_secret = {{ secrets_file = "client_secret" }}
access_token = {{ secrets_file = "access_token" }}
refresh_token = {{ secrets_file = "refresh_token" }}

[connections.{name}.preferences]
allow_delete = true
remove_action = "delete"
"#
    )
}

/// A connector for one Salesforce connection to `emulator`.
async fn salesforce(emulator: &Emulator, record_type: &str, extra: &str) -> (Fixture, Connector) {
    let fixture = Fixture::new(&[test_plugins::SALESFORCE]);
    fixture.write_config(&format!(
        "{HEADER}{}",
        connection("sf", &emulator.domain(), record_type, extra)
    ));
    fixture.write_secrets(&json_store_secrets());
    let (_runtime, _plugins, connector) = connect(&fixture, runtime_options(), "sf").await;
    (fixture, connector)
}

fn text(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: Value::Text(value.into()),
    }
}

fn person(n: usize) -> Vec<Attribute> {
    vec![
        text("FirstName", &format!("Ada{n}")),
        text("LastName", &format!("Lovelace{n}")),
        text("Email", &format!("ada.{n}@example.com")),
        text("Company", "Analytical Engines"),
        text("City", "London"),
    ]
}

fn create(attributes: Vec<Attribute>) -> Operation {
    Operation::Create { attributes }
}

fn ids(results: &[Result<provisioner::runtime::contract::Outcome, StoreError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| r.as_ref().expect("the operation succeeded").id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_and_contacts_are_created_updated_and_deleted() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let account = emulator.seed("Account", json!({ "Name": "Acme" })).unwrap();
    for record_type in ["Lead", "Contact"] {
        let extra = format!("account_id = \"{account}\"");
        let (_fixture, sf) = salesforce(&emulator, record_type, &extra).await;

        let created = sf
            .apply(vec![create(person(1)), create(person(2))])
            .await
            .unwrap();
        let created = ids(&created);
        let prefix = if record_type == "Lead" { "00Q" } else { "003" };
        assert!(
            created
                .iter()
                .all(|id| id.starts_with(prefix) && id.len() == 18),
            "{created:?}"
        );
        let record = emulator.record(&created[0]).unwrap();
        assert_eq!(record["Email"], "ada.1@example.com");
        if record_type == "Lead" {
            assert_eq!(record["City"], "London");
            assert_eq!(record["Company"], "Analytical Engines");
        } else {
            // Contacts take the address as Mailing*, and the Account from
            // the settings; Company is not a Contact field and is not sent.
            assert_eq!(record["MailingCity"], "London");
            assert_eq!(record["AccountId"], json!(account));
            assert!(record.get("Company").is_none());
        }

        let updated = sf
            .apply(vec![Operation::Update {
                id: created[0].clone(),
                attributes: vec![text("Title", "Countess"), text("City", "Paris")],
                version: None,
            }])
            .await
            .unwrap();
        assert_eq!(ids(&updated), vec![created[0].clone()]);
        let record = emulator.record(&created[0]).unwrap();
        assert_eq!(record["Title"], "Countess");
        let city = if record_type == "Lead" {
            "City"
        } else {
            "MailingCity"
        };
        assert_eq!(record[city], "Paris");

        let deleted = sf
            .apply(vec![Operation::Delete {
                id: created[1].clone(),
            }])
            .await
            .unwrap();
        assert_eq!(ids(&deleted), vec![created[1].clone()]);
        assert!(emulator.record(&created[1]).is_none());

        // Reads come back in the same Lead-style names the host writes.
        let page = sf.list(None).await.unwrap();
        let mine = page
            .records
            .iter()
            .find(|r| r.id == created[0])
            .expect("listed");
        assert!(mine.attributes.contains(&text("City", "Paris")), "{mine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_without_company_is_rejected_with_the_field() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    let mut attributes = person(1);
    attributes.retain(|a| a.name != "Company");
    let results = sf.apply(vec![create(attributes.clone())]).await.unwrap();
    match &results[0] {
        Err(StoreError::Rejected {
            code,
            fields,
            message,
        }) => {
            assert_eq!(code, "REQUIRED_FIELD_MISSING");
            assert_eq!(fields, &vec!["Company".to_string()]);
            assert_eq!(message, "Required fields are missing: [Company]");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    // With a default Company the same person goes through.
    let (_fixture, sf) = salesforce(&emulator, "Lead", "default_company = \"Individual\"").await;
    let results = sf.apply(vec![create(attributes)]).await.unwrap();
    let id = &ids(&results)[0];
    assert_eq!(emulator.record(id).unwrap()["Company"], "Individual");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_450_takes_three_collections_calls_and_answers_in_order() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    let batch: Vec<Operation> = (0..450).map(|n| create(person(n))).collect();
    let results = sf.apply(batch).await.unwrap();
    assert_eq!(results.len(), 450);
    assert_eq!(emulator.counters().of("POST composite/sobjects"), 3);
    for (n, id) in ids(&results).iter().enumerate() {
        let record = emulator.record(id).unwrap();
        assert_eq!(
            record["Email"],
            json!(format!("ada.{n}@example.com")),
            "outcome {n}"
        );
    }

    // A mixed batch reports each failure on its own record.
    let existing = ids(&results);
    let mut no_last_name = person(1000);
    no_last_name.retain(|a| a.name != "LastName");
    let mixed = vec![
        create(person(1001)),
        create(no_last_name),
        Operation::Update {
            id: existing[0].clone(),
            attributes: vec![text("Title", "Engineer")],
            version: None,
        },
        Operation::Update {
            id: "00Qnot-an-id".into(),
            attributes: vec![text("Title", "x")],
            version: None,
        },
        Operation::Delete {
            id: existing[1].clone(),
        },
        Operation::Delete {
            id: existing[1].clone(),
        },
        Operation::Disable {
            id: existing[2].clone(),
        },
    ];
    let results = sf.apply(mixed).await.unwrap();
    assert!(results[0].is_ok());
    assert!(
        matches!(&results[1], Err(StoreError::Rejected { code, fields, .. }) if code == "REQUIRED_FIELD_MISSING" && fields == &vec!["LastName".to_string()]),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok());
    assert!(
        matches!(&results[3], Err(StoreError::Rejected { code, .. }) if code == "MALFORMED_ID"),
        "{:?}",
        results[3]
    );
    assert!(results[4].is_ok());
    assert!(
        matches!(&results[5], Err(StoreError::NotFound(_))),
        "deleting a deleted record: {:?}",
        results[5]
    );
    assert!(
        matches!(&results[6], Err(StoreError::Unsupported(_))),
        "no disable capability: {:?}",
        results[6]
    );
}

/// The component allocates from a 1 MiB arena and beyond it from its
/// system allocator. Calls that go well past the arena, in their arguments,
/// the bodies they write and the answers they read, must lose or garble
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_far_larger_than_the_connectors_arena_lose_nothing() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    // 400 records of about 8 KiB each: 3 MiB of arguments, two bodies of
    // 1.6 MiB.
    let street = |n: usize| format!("{n:05} ").repeat(1_360);
    let batch: Vec<Operation> = (0..400)
        .map(|n| {
            let mut attributes = person(n);
            attributes.push(text("Street", &street(n)));
            create(attributes)
        })
        .collect();
    let results = sf.apply(batch).await.unwrap();
    let created = ids(&results);
    assert_eq!(created.len(), 400);
    for (n, id) in created.iter().enumerate() {
        let record = emulator.record(id).unwrap();
        assert_eq!(record["Street"], json!(street(n)), "record {n}");
        assert_eq!(record["Email"], json!(format!("ada.{n}@example.com")));
    }

    // 30,000 values asked, the 400 among them found with their streets.
    let mut asked: Vec<String> = (0..30_000)
        .map(|n| format!("nobody.{n}@example.com"))
        .collect();
    asked.extend((0..400).map(|n| format!("ADA.{n}@example.com")));
    let matches = sf.lookup("Email", asked).await.unwrap();
    assert_eq!(matches.len(), 400);
    for m in &matches {
        let n: usize = m
            .value
            .trim_start_matches("ADA.")
            .trim_end_matches("@example.com")
            .parse()
            .unwrap_or_else(|_| panic!("answers use the asked value: {}", m.value));
        assert_eq!(m.id, created[n]);
        let street_attribute = m.attributes.iter().find(|a| a.name == "Street");
        assert_eq!(
            street_attribute.map(|a| &a.value),
            Some(&Value::Text(street(n))),
            "match {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_expires_mid_batch_is_refreshed_once_and_the_batch_completes() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Contact", "").await;
    // The session ends right after the first of three Collections calls.
    emulator.expire_sessions_after(1);
    let batch: Vec<Operation> = (0..450).map(|n| create(person(n))).collect();
    let results = sf.apply(batch).await.unwrap();
    assert_eq!(ids(&results).len(), 450);
    let counters = emulator.counters();
    assert_eq!(counters.token_requests.get("refresh_token"), Some(&1));
    assert_eq!(counters.unauthorized, 1);
    assert_eq!(
        counters.of("POST composite/sobjects"),
        4,
        "one call was sent twice"
    );
    assert_eq!(counters.records["Contact"], 450, "nothing was duplicated");

    // A revoked refresh token: unauthorized, in the server's words, on
    // every record and in Test Connection.
    emulator.revoke_refresh_tokens();
    emulator.expire_sessions();
    let results = sf
        .apply(vec![create(person(9)), create(person(10))])
        .await
        .unwrap();
    for result in &results {
        match result {
            Err(StoreError::Unauthorized(message)) => assert!(
                message.contains("invalid_grant: expired access/refresh token"),
                "{message}"
            ),
            other => panic!("expected unauthorized, got {other:?}"),
        }
    }
    let error = sf.test_connection().await.expect_err("refresh refused");
    assert!(
        matches!(error.store_error(), Some(StoreError::Unauthorized(m)) if m.contains("invalid_grant")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_transient() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    emulator.inject(Fault {
        path: "composite/sobjects".into(),
        method: Some("POST".into()),
        status: 403,
        error_code: "REQUEST_LIMIT_EXCEEDED".into(),
        message: Some("ConcurrentPerOrgLongTxn Limit exceeded.".into()),
        count: 1,
    });
    let results = sf
        .apply(vec![create(person(1)), create(person(2))])
        .await
        .unwrap();
    for result in &results {
        assert!(
            matches!(result, Err(StoreError::Transient { message, .. }) if message.contains("REQUEST_LIMIT_EXCEEDED")),
            "{result:?}"
        );
    }
    emulator.inject(Fault {
        path: "composite/sobjects".into(),
        method: None,
        status: 400,
        error_code: "UNABLE_TO_LOCK_ROW".into(),
        message: None,
        count: 1,
    });
    let results = sf.apply(vec![create(person(3))]).await.unwrap();
    assert!(
        matches!(&results[0], Err(StoreError::Transient { .. })),
        "{results:?}"
    );

    // The daily allocation runs out the same way.
    let exhausted = Emulator::start(Options {
        daily_api_limit: 1,
        ..emulator_options()
    })
    .await
    .unwrap();
    let (_fixture, sf) = salesforce(&exhausted, "Lead", "").await;
    sf.test_connection().await.expect("the one allowed call");
    let error = sf.test_connection().await.expect_err("over the allocation");
    assert!(
        matches!(error.store_error(), Some(StoreError::Transient { message, .. }) if message.contains("TotalRequests Limit exceeded")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_records_are_found_by_email_with_at_most_two_queries_for_300() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let mut emails = Vec::new();
    for n in 0..300 {
        let email = format!("Person.{n:03}@Example.com");
        emulator
            .seed(
                "Lead",
                json!({ "LastName": format!("P{n}"), "Company": "Acme", "Email": email }),
            )
            .unwrap();
        emails.push(email.to_lowercase());
    }
    // A converted Lead is a Contact now: not a match for a Lead connection.
    let converted = emulator
        .seed(
            "Lead",
            json!({ "LastName": "Gone", "Company": "Acme", "Email": "converted@example.com" }),
        )
        .unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    let outcome = sf
        .apply(vec![Operation::Convert {
            id: converted,
            target_type: "Contact".into(),
            attributes: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(outcome[0].is_ok(), "{outcome:?}");

    let mut asked = emails.clone();
    asked.push("converted@example.com".into());
    asked.push("nobody@example.com".into());
    let queries_before = emulator.counters().of("GET query");
    let matches = sf.lookup("Email", asked).await.unwrap();
    let queries = emulator.counters().of("GET query") - queries_before;
    assert!(queries <= 2, "{queries} queries for 300 emails");
    assert_eq!(matches.len(), 300);
    for m in &matches {
        assert!(
            emails.contains(&m.value),
            "answers use the asked value: {}",
            m.value
        );
        assert!(m.id.starts_with("00Q"));
        assert!(m.attributes.iter().any(|a| a.name == "Email"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_converts_into_a_contact_and_then_refuses_updates() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, leads) = salesforce(&emulator, "Lead", "").await;
    let lead = ids(&leads.apply(vec![create(person(1))]).await.unwrap())[0].clone();

    // The SOAP session header carries an expired session: the host sees
    // the fault in the body, refreshes once and re-sends.
    emulator.expire_sessions();
    let converted = leads
        .apply(vec![Operation::Convert {
            id: lead.clone(),
            target_type: "Contact".into(),
            attributes: vec![text("Title", "Director")],
        }])
        .await
        .unwrap();
    let contact = ids(&converted)[0].clone();
    assert!(contact.starts_with("003"), "{contact}");
    assert_eq!(
        emulator.counters().token_requests.get("refresh_token"),
        Some(&1)
    );
    let record = emulator.record(&lead).unwrap();
    assert_eq!(record["IsConverted"], true);
    assert_eq!(record["ConvertedContactId"], json!(contact));
    let contact_record = emulator.record(&contact).unwrap();
    assert_eq!(contact_record["Email"], "ada.1@example.com");
    assert_eq!(
        contact_record["Title"], "Director",
        "the conversion's attributes were written"
    );

    let results = leads
        .apply(vec![Operation::Update {
            id: lead.clone(),
            attributes: vec![text("Title", "x")],
            version: None,
        }])
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(StoreError::Rejected { code, .. }) if code == "CANNOT_UPDATE_CONVERTED_LEAD"),
        "{results:?}"
    );

    let (_fixture, contacts) = salesforce(&emulator, "Contact", "").await;
    let results = contacts
        .apply(vec![Operation::Convert {
            id: contact,
            target_type: "Lead".into(),
            attributes: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(StoreError::Unsupported(_))),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_through_every_record() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    for n in 0..450 {
        emulator
            .seed(
                "Contact",
                json!({ "LastName": format!("C{n}"), "Email": format!("c{n}@example.com") }),
            )
            .unwrap();
    }
    let (_fixture, sf) = salesforce(&emulator, "Contact", "page_size = 200").await;
    let mut seen = 0;
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let page = sf.list(cursor).await.unwrap();
        pages += 1;
        seen += page.records.len();
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!((seen, pages), (450, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_cannot_be_made_to_send_elsewhere() {
    let tripwire = Tripwire::new();
    // The token endpoint names another host as the instance: no template
    // vouches for it, so the host keeps the connection on its domain.
    let emulator = Emulator::start(Options {
        access_tokens: Vec::new(),
        instance_url: Some(format!("http://{}", tripwire.addr())),
        ..emulator_options()
    })
    .await
    .unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    sf.test_connection()
        .await
        .expect("served from the configured domain");
    assert_eq!(sf.broker().session("instance-url"), None);

    // A forged cursor cannot point the connector anywhere either.
    for cursor in [
        format!("http://{}/services/data/v62.0/query/01g-1", tripwire.addr()),
        "//evil.example.com/services/data/v62.0/query/01g-1".to_string(),
    ] {
        let error = sf.list(Some(cursor.clone())).await.expect_err("refused");
        assert!(
            matches!(error.store_error(), Some(StoreError::Rejected { code, .. }) if code == "INVALID_CURSOR"),
            "{cursor}: {error}"
        );
    }
    assert!(!tripwire.tripped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_names_the_org_and_both_connections_pass_in_the_cli() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let (_fixture, sf) = salesforce(&emulator, "Lead", "").await;
    let report = sf.test_connection().await.unwrap();
    assert!(report.summary.contains("Acme Demo"), "{}", report.summary);
    assert!(
        report.summary.contains(&emulator.options().org_id),
        "{}",
        report.summary
    );
    let details: std::collections::BTreeMap<_, _> = report.details.into_iter().collect();
    assert_eq!(details["api-version"], "62.0");
    assert!(
        details["api-usage"].ends_with("/100000 requests today"),
        "{details:?}"
    );

    let fixture = Fixture::new(&[test_plugins::SALESFORCE]);
    fixture.write_config(&format!(
        "{HEADER}{}{}",
        connection("leads", &emulator.domain(), "Lead", ""),
        connection("contacts", &emulator.domain(), "Contact", "")
    ));
    fixture.write_secrets(&json_store_secrets());
    for name in ["leads", "contacts"] {
        let run = fixture
            .provisioner(&["connections", "test", name], &[])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(
            run.stdout.contains("connected to Salesforce org Acme Demo"),
            "{}",
            run.stdout
        );
        assert_no_secret(&run.all());
    }
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");

    // An API version the org does not serve is named as such.
    fixture.write_config(&format!(
        "{HEADER}{}",
        connection(
            "leads",
            &emulator.domain(),
            "Lead",
            "api_version = \"99.0\""
        )
    ));
    let run = fixture
        .provisioner(&["connections", "test", "leads"], &[])
        .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("API version v99.0 is not available"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_action_disable_is_refused_for_salesforce() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    let fixture = Fixture::new(&[test_plugins::SALESFORCE]);
    fixture.write_config(&format!(
        "{HEADER}{}",
        connection("leads", &emulator.domain(), "Lead", "")
            .replace("remove_action = \"delete\"", "remove_action = \"disable\"")
    ));
    fixture.write_secrets(&json_store_secrets());
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("cannot disable records"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_adopts_creates_and_then_sends_only_what_changed() {
    let emulator = Emulator::start(emulator_options()).await.unwrap();
    // Already in Salesforce, under a differently cased Email: adopted.
    let existing = emulator
        .seed("Lead", json!({ "FirstName": "Grace", "LastName": "Hopper", "Company": "Navy", "Email": "GRACE@example.com" }))
        .unwrap();
    let fixture = Fixture::new(&[test_plugins::SALESFORCE]);
    fixture.write_config(&format!(
        "{HEADER}{}",
        connection(
            "leads",
            &emulator.domain(),
            "Lead",
            "default_company = \"[not provided]\""
        )
    ));
    fixture.write_secrets(&json_store_secrets());
    let people_path = fixture.path().join("people.json");
    let write_people = |title: &str| {
        let people = json!([
            { "id": "p1", "given_name": "Grace", "family_name": "Hopper", "email": "grace@example.com", "company": "Navy" },
            { "id": "p2", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com", "title": title },
            { "id": "p3", "given_name": "Nobody", "family_name": "Without-Email" },
            { "id": "p4", "given_name": "Off", "family_name": "Line", "email": "off@example.com", "enabled": false },
        ]);
        std::fs::write(&people_path, people.to_string()).unwrap();
    };
    let push = || async {
        fixture
            .provisioner(
                &[
                    "connections",
                    "push",
                    "leads",
                    "--people",
                    "people.json",
                    "--json",
                ],
                &[],
            )
            .await
    };

    write_people("Countess");
    let run = push().await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results[0]["result"], "unchanged",
        "adopted as is: {}",
        results[0]
    );
    assert_eq!(results[0]["record"], json!(existing));
    assert_eq!(results[1]["result"], "created");
    assert_eq!(results[2]["result"], "skipped");
    assert!(
        results[2]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be matched")
    );
    assert_eq!(results[3]["result"], "skipped");
    assert_eq!(
        emulator.counters().records["Lead"],
        2,
        "no duplicate of the adopted Lead"
    );
    let ada = results[1]["record"].as_str().unwrap().to_string();
    assert_eq!(emulator.record(&ada).unwrap()["Company"], "[not provided]");

    // Nothing changed: one lookup query, no write.
    let writes = emulator.counters().of("POST composite/sobjects")
        + emulator.counters().of("PATCH composite/sobjects");
    let run = push().await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["results"][1]["result"], "unchanged",
        "{}",
        run.stdout
    );
    let counters = emulator.counters();
    assert_eq!(
        counters.of("POST composite/sobjects") + counters.of("PATCH composite/sobjects"),
        writes
    );

    // One attribute changed: one update carrying just that attribute.
    write_people("Analyst");
    let run = push().await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["results"][1]["result"], "updated", "{}", run.stdout);
    assert_eq!(report["results"][1]["changed"], json!(["Title"]));
    assert_eq!(emulator.record(&ada).unwrap()["Title"], "Analyst");
    assert_eq!(emulator.counters().of("PATCH composite/sobjects"), 1);

    // Preferences hold: with creates and updates forbidden, nothing is sent.
    fixture.write_config(&format!(
        "{HEADER}{}",
        connection("leads", &emulator.domain(), "Lead", "").replace(
            "allow_delete = true",
            "allow_delete = true\nallow_create = false\nallow_update = false"
        )
    ));
    std::fs::write(
        &people_path,
        json!([
            { "id": "p2", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com", "title": "Engineer" },
            { "id": "p5", "given_name": "New", "family_name": "Person", "email": "new@example.com", "company": "X" },
        ])
        .to_string(),
    )
    .unwrap();
    let before = emulator.counters();
    let run = push().await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        report["results"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("partially synced: Title"),
        "{}",
        run.stdout
    );
    assert!(
        report["results"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unsynced"),
        "{}",
        run.stdout
    );
    let after = emulator.counters();
    assert_eq!(
        after.of("POST composite/sobjects"),
        before.of("POST composite/sobjects")
    );
    assert_eq!(
        after.of("PATCH composite/sobjects"),
        before.of("PATCH composite/sobjects")
    );

    // Two Leads with one Email: reported, not guessed.
    emulator
        .seed(
            "Lead",
            json!({ "LastName": "Twin", "Company": "X", "Email": "ada@example.com" }),
        )
        .unwrap();
    let run = push().await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["results"][0]["result"], "failed");
    assert_eq!(report["results"][0]["error"]["code"], "AMBIGUOUS_MATCH");
}
