//! The connector run natively, through the SDK's stand-in broker, against
//! the reference SCIM server (`scim2-server`, which no one here wrote) on
//! loopback. Each test says what the reference server checks; what it
//! cannot be made to do (refuse `or`, answer 429) is in `stand_in.rs`.

use provisioner_connector::testing::StandIn;
use provisioner_connector::{
    Attribute, Connector, GroupMembers, GroupOperation, GroupRename, NewGroup, Operation, Outcome,
    StoreError, Update, Value,
};
use scim_reference::{Options, ScimServer};
use scim2_connector::{Scim2, WORK_EMAIL, wire};
use serde_json::json;

fn server(features: Option<serde_json::Value>) -> ScimServer {
    ScimServer::start(Options {
        features,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn host(server: &ScimServer, settings: &[(&str, &str)]) -> StandIn {
    let mut builder = StandIn::builder::<Scim2>()
        .setting("host", &server.host())
        .setting("base_path", scim_reference::BASE_PATH)
        .allow_insecure_loopback()
        .bearer(server.token());
    for (name, value) in settings {
        builder = builder.setting(name, value);
    }
    builder.build().unwrap()
}

fn text(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: Value::Text(value.into()),
    }
}

fn person(email: &str, family: &str) -> Vec<Attribute> {
    vec![
        text("userName", email),
        text(WORK_EMAIL, email),
        text("name.givenName", "Ada"),
        text("name.familyName", family),
        text("displayName", &format!("Ada {family}")),
        text(&format!("{}:department", wire::ENTERPRISE), "Research"),
    ]
}

fn apply(host: &StandIn, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
    host.call(|c: &Scim2| Ok(c.apply(operations))).unwrap()
}

fn user_named<'a>(users: &'a [serde_json::Value], user_name: &str) -> &'a serde_json::Value {
    users
        .iter()
        .find(|u| u["userName"] == user_name)
        .unwrap_or_else(|| panic!("no user {user_name} in {users:?}"))
}

/// The reference server checks the schemas, the PATCH paths (a value
/// filter on `emails`, the enterprise extension's URN) and `active`.
#[test]
fn a_person_is_created_updated_disabled_enabled_and_deleted() {
    let server = server(None);
    let host = host(&server, &[("bulk", "off")]);
    let created = apply(
        &host,
        vec![Operation::Create(person("ada@example.com", "Lovelace"))],
    );
    let id = created[0].as_ref().unwrap().id.clone();
    let users = server.users();
    let user = user_named(&users, "ada@example.com");
    assert_eq!(user["id"], id.as_str());
    assert_eq!(user["name"]["familyName"], "Lovelace");
    assert_eq!(user["emails"][0]["value"], "ada@example.com");
    assert_eq!(user[wire::ENTERPRISE]["department"], "Research");
    assert_eq!(user["active"], true);

    let updated = apply(
        &host,
        vec![Operation::Update(Update {
            id: id.clone(),
            attributes: vec![
                text("name.familyName", "King"),
                Attribute {
                    name: format!("{}:department", wire::ENTERPRISE),
                    value: Value::Null,
                },
            ],
            version: None,
        })],
    );
    assert!(updated[0].is_ok(), "{updated:?}");
    let user = server.get(&format!("/Users/{id}"));
    assert_eq!(user["name"]["familyName"], "King");
    assert_eq!(
        user["name"]["givenName"], "Ada",
        "PATCH touched only what changed"
    );
    assert!(user[wire::ENTERPRISE].get("department").is_none(), "{user}");

    apply(&host, vec![Operation::Disable(id.clone())])[0]
        .as_ref()
        .unwrap();
    assert_eq!(server.get(&format!("/Users/{id}"))["active"], false);
    apply(
        &host,
        vec![Operation::Enable(Update {
            id: id.clone(),
            attributes: vec![text("title", "Countess")],
            version: None,
        })],
    )[0]
    .as_ref()
    .unwrap();
    let user = server.get(&format!("/Users/{id}"));
    assert_eq!(
        (user["active"].clone(), user["title"].clone()),
        (json!(true), json!("Countess"))
    );

    apply(&host, vec![Operation::Delete(id.clone())])[0]
        .as_ref()
        .unwrap();
    assert!(server.users().is_empty());
    let again = apply(&host, vec![Operation::Delete(id)]);
    assert!(
        matches!(&again[0], Err(StoreError::NotFound(_))),
        "{again:?}"
    );
}

/// A create the server refuses for `uniqueness` (the reference server
/// enforces unique userNames) adopts the user there instead.
#[test]
fn a_create_that_collides_adopts_the_existing_user() {
    let server = server(None);
    let existing = server.create_user(json!({
        "schemas": [wire::USER],
        "userName": "ada@example.com",
        "name": {"familyName": "Old"},
    }));
    let host = host(&server, &[("bulk", "off")]);
    let created = apply(
        &host,
        vec![Operation::Create(person("ada@example.com", "Lovelace"))],
    );
    assert_eq!(created[0].as_ref().unwrap().id, existing);
    let users = server.users();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["name"]["familyName"], "Lovelace");
}

/// Lookups batch values with `or`, which the reference server accepts,
/// and report each match with the value as asked, whatever its case.
#[test]
fn lookups_find_by_user_name_or_by_work_email() {
    let server = server(None);
    for (user_name, email) in [("ada", "ada@example.com"), ("bob", "bob@example.com")] {
        server.create_user(json!({
            "schemas": [wire::USER],
            "userName": user_name,
            "emails": [{"type": "work", "value": email}],
        }));
    }
    let by_name = host(&server, &[]);
    let found = by_name
        .call(|c: &Scim2| {
            c.lookup(
                "userName".into(),
                vec!["ADA".into(), "bob".into(), "eve".into()],
            )
        })
        .unwrap();
    let mut values: Vec<&str> = found.iter().map(|m| m.value.as_str()).collect();
    values.sort();
    assert_eq!(values, ["ADA", "bob"]);
    assert_eq!(by_name.requests(), 1, "one filter for three values");

    let by_email = host(&server, &[("match_by", "email")]);
    let found = by_email
        .call(|c: &Scim2| c.lookup("userName".into(), vec!["bob@example.com".into()]))
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .attributes
            .iter()
            .any(|a| a.name == "userName" && a.value == Value::Text("bob".into()))
    );
}

/// `/Bulk` is one request per batch on the reference server, which
/// announces it; its answers are paired with the operations, failures
/// included.
#[test]
fn a_batch_goes_through_bulk_in_one_request() {
    let server = server(None);
    let host = host(&server, &[]);
    let mut operations: Vec<Operation> = (0..20)
        .map(|i| Operation::Create(person(&format!("p{i}@example.com"), "Bulk")))
        .collect();
    operations.push(Operation::Delete("no-such-user".into()));
    let results = apply(&host, operations);
    // One request for the configuration, one for the batch, as the
    // server counts them too.
    assert_eq!(host.requests(), 2);
    assert_eq!(server.requests(), 2);
    assert!(results[..20].iter().all(Result::is_ok), "{results:?}");
    assert!(
        matches!(&results[20], Err(StoreError::NotFound(_))),
        "{:?}",
        results[20]
    );
    assert_eq!(server.users().len(), 20);
    let ids: std::collections::BTreeSet<_> = results[..20]
        .iter()
        .map(|r| r.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids.len(), 20, "each create answered with its own id");
}

/// Against a server that announces no `/Bulk`, a batch is one request
/// per operation: the floor without it.
#[test]
fn without_bulk_a_batch_is_one_request_per_operation() {
    let server = server(Some(scim_reference::without_bulk()));
    let host = host(&server, &[]);
    let operations = (0..5)
        .map(|i| Operation::Create(person(&format!("p{i}@example.com"), "One")))
        .collect();
    let results = apply(&host, operations);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(host.requests(), 1 + 5);
}

/// Against a server that announces no PATCH, updates read the user and
/// PUT it back whole, keeping what the update does not name.
#[test]
fn without_patch_an_update_is_a_put_of_the_whole_user() {
    let server = server(Some(scim_reference::without_patch()));
    let host = host(&server, &[]);
    let id = apply(
        &host,
        vec![Operation::Create(person("ada@example.com", "Lovelace"))],
    )[0]
    .as_ref()
    .unwrap()
    .id
    .clone();
    let before = host.requests();
    apply(
        &host,
        vec![Operation::Update(Update {
            id: id.clone(),
            attributes: vec![text("title", "Countess")],
            version: None,
        })],
    )[0]
    .as_ref()
    .unwrap();
    assert_eq!(host.requests() - before, 2, "a GET and a PUT");
    let user = server.get(&format!("/Users/{id}"));
    assert_eq!(user["title"], "Countess");
    assert_eq!(user["name"]["familyName"], "Lovelace");
}

/// A version the server no longer has is a conflict (the reference
/// server checks `If-Match`), not a silent overwrite.
#[test]
fn a_stale_version_is_a_conflict() {
    let server = server(None);
    let host = host(&server, &[("bulk", "off")]);
    let created = apply(
        &host,
        vec![Operation::Create(person("ada@example.com", "Lovelace"))],
    );
    let outcome = created[0].as_ref().unwrap().clone();
    assert!(
        outcome.version.is_some(),
        "the reference server versions users"
    );
    let update = |version: Option<String>| {
        Operation::Update(Update {
            id: outcome.id.clone(),
            attributes: vec![text("title", "Countess")],
            version,
        })
    };
    apply(&host, vec![update(outcome.version.clone())])[0]
        .as_ref()
        .unwrap();
    let stale = apply(&host, vec![update(outcome.version.clone())]);
    assert!(
        matches!(&stale[0], Err(StoreError::Conflict(_))),
        "{stale:?}"
    );
}

/// Listing pages with `startIndex` and `count` until the total: 1,000
/// users in pages of 100.
#[test]
fn listing_pages_over_a_thousand_users() {
    let server = server(None);
    let host = host(&server, &[]);
    let operations: Vec<Operation> = (0..1000)
        .map(|i| Operation::Create(person(&format!("p{i:04}@example.com"), "Many")))
        .collect();
    for chunk in operations.chunks(200) {
        let results = apply(&host, chunk.to_vec());
        assert!(results.iter().all(Result::is_ok));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = host.call(|c: &Scim2| c.list(cursor.clone())).unwrap();
        pages += 1;
        for record in page.records {
            assert!(seen.insert(record.id), "a user listed twice");
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (1000, 10));
}

/// Groups: created with members, renamed, members added and removed with
/// PATCH on `members`, found by display name, deleted.
#[test]
fn groups_are_created_renamed_changed_and_deleted() {
    let server = server(None);
    let host = host(&server, &[("bulk", "off")]);
    let ids: Vec<String> = apply(
        &host,
        (0..3)
            .map(|i| Operation::Create(person(&format!("m{i}@example.com"), "Member")))
            .collect(),
    )
    .into_iter()
    .map(|r| r.unwrap().id)
    .collect();
    let group = |operation| {
        host.call(|c: &Scim2| Ok(c.apply_groups(vec![operation])))
            .unwrap()
            .remove(0)
    };
    let created = group(GroupOperation::Create(NewGroup {
        display_name: "Engineering".into(),
        members: vec![ids[0].clone()],
    }))
    .unwrap();
    group(GroupOperation::AddMembers(GroupMembers {
        id: created.id.clone(),
        members: vec![ids[1].clone(), ids[2].clone()],
    }))
    .unwrap();
    group(GroupOperation::RemoveMembers(GroupMembers {
        id: created.id.clone(),
        members: vec![ids[0].clone()],
    }))
    .unwrap();
    group(GroupOperation::Rename(GroupRename {
        id: created.id.clone(),
        display_name: "Platform".into(),
        version: None,
    }))
    .unwrap();
    let found = host
        .call(|c: &Scim2| c.lookup_groups(vec!["platform".into(), "Engineering".into()]))
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let mut members = found[0].members.clone();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(
        (found[0].display_name.as_str(), members),
        ("Platform", expected)
    );

    group(GroupOperation::Delete(created.id.clone())).unwrap();
    assert!(server.groups().is_empty());
}

/// Members added and removed in one batch are one PATCH of the group.
#[test]
fn a_groups_joiners_and_leavers_are_one_patch() {
    let server = server(None);
    let host = host(&server, &[("bulk", "off")]);
    let ids: Vec<String> = apply(
        &host,
        (0..3)
            .map(|i| Operation::Create(person(&format!("m{i}@example.com"), "Member")))
            .collect(),
    )
    .into_iter()
    .map(|r| r.unwrap().id)
    .collect();
    let groups = |operations| {
        host.call(|c: &Scim2| Ok(c.apply_groups(operations)))
            .unwrap()
    };
    let created = groups(vec![GroupOperation::Create(NewGroup {
        display_name: "Ops".into(),
        members: vec![ids[0].clone()],
    })])
    .remove(0)
    .unwrap();
    let before = server.requests_to("PATCH /v2/Groups");
    let answers = groups(vec![
        GroupOperation::AddMembers(GroupMembers {
            id: created.id.clone(),
            members: vec![ids[1].clone(), ids[2].clone()],
        }),
        GroupOperation::RemoveMembers(GroupMembers {
            id: created.id.clone(),
            members: vec![ids[0].clone()],
        }),
    ]);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(server.requests_to("PATCH /v2/Groups") - before, 1);
    let stored = server.get(&format!("/Groups/{}", created.id));
    let mut members: Vec<String> = stored["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(members, expected);
}

/// Against a server without PATCH, a membership change reads the group
/// and writes it back whole.
#[test]
fn without_patch_membership_is_written_whole() {
    let server = server(Some(scim_reference::without_patch()));
    let host = host(&server, &[]);
    let ids: Vec<String> = apply(
        &host,
        (0..2)
            .map(|i| Operation::Create(person(&format!("m{i}@example.com"), "Member")))
            .collect(),
    )
    .into_iter()
    .map(|r| r.unwrap().id)
    .collect();
    let group = |operation| {
        host.call(|c: &Scim2| Ok(c.apply_groups(vec![operation])))
            .unwrap()
            .remove(0)
    };
    let created = group(GroupOperation::Create(NewGroup {
        display_name: "Sales".into(),
        members: vec![],
    }))
    .unwrap();
    group(GroupOperation::AddMembers(GroupMembers {
        id: created.id.clone(),
        members: ids.clone(),
    }))
    .unwrap();
    group(GroupOperation::RemoveMembers(GroupMembers {
        id: created.id.clone(),
        members: vec![ids[0].clone()],
    }))
    .unwrap();
    let stored = server.get(&format!("/Groups/{}", created.id));
    let members: Vec<_> = stored["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(members, vec![json!(ids[1])]);
}

/// A wrong token is `unauthorized`, with the server's words.
#[test]
fn a_wrong_token_is_unauthorized() {
    let server = server(None);
    let host = StandIn::builder::<Scim2>()
        .setting("host", &server.host())
        .setting("base_path", scim_reference::BASE_PATH)
        .allow_insecure_loopback()
        .bearer("not-the-token")
        .build()
        .unwrap();
    let answer = host.call(|c: &Scim2| c.test_connection());
    assert!(
        matches!(answer, Err(StoreError::Unauthorized(_))),
        "{answer:?}"
    );
    let ok = self::host(&server, &[])
        .call(|c: &Scim2| c.test_connection())
        .unwrap();
    assert!(ok.summary.contains("0 users"), "{}", ok.summary);
}
