//! The example connector run natively, through the SDK's stand-in broker,
//! against the reference store on loopback: what an author's own tests
//! look like, and a check of the SDK's harness and helpers.

use json_store::{JsonStore as Server, Options};
use json_store_connector::JsonStore;
use provisioner_connector::testing::StandIn;
use provisioner_connector::{Attribute, Connector, Operation, Outcome, StoreError, Update, Value};

/// The store, served by a runtime of its own: the stand-in's blocking
/// client must not run on an async runtime's threads.
struct Store {
    server: Server,
    _runtime: tokio::runtime::Runtime,
}

fn store() -> Store {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = Options {
        client_id: "example-client".into(),
        client_secret: "example-secret-0123456789".into(),
        ..Options::default()
    };
    let server = runtime.block_on(Server::start(options)).unwrap();
    Store {
        server,
        _runtime: runtime,
    }
}

fn host(store: &Store) -> StandIn {
    StandIn::builder::<JsonStore>()
        .setting("host", &store.server.host())
        .setting("page_size", "2")
        .allow_insecure_loopback()
        .oauth2_client("example-client", "example-secret-0123456789")
        .build()
        .unwrap()
}

fn text(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: Value::Text(value.into()),
    }
}

fn person(email: &str) -> Operation {
    Operation::Create(vec![text("email", email), text("given_name", "Ada")])
}

fn ids(results: Vec<Result<Outcome, StoreError>>) -> Vec<String> {
    results.into_iter().map(|r| r.unwrap().id).collect()
}

#[test]
fn a_batch_is_one_request_and_a_bad_operation_fails_alone() {
    let store = store();
    let host = host(&store);
    let results = host
        .call(|c: &JsonStore| {
            Ok(c.apply(vec![
                person("a@x.test"),
                Operation::Create(vec![text("given_name", "No email")]),
                person("b@x.test"),
            ]))
        })
        .unwrap();
    assert_eq!(host.requests(), 1, "one request for the batch");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    match &results[1] {
        Err(StoreError::Rejected(r)) => {
            assert_eq!(r.code, "REQUIRED_FIELD_MISSING");
            assert_eq!(r.fields, vec!["email".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.server.people().len(), 2);
}

#[test]
fn lookups_fold_case_and_carry_versions_that_guard_updates() {
    let store = store();
    let host = host(&store);
    let id = ids(host
        .call(|c: &JsonStore| Ok(c.apply(vec![person("Ada@X.test")])))
        .unwrap())
    .remove(0);
    let found = host
        .call(|c: &JsonStore| c.lookup("email".into(), vec!["ada@x.test".into()]))
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].value, "ada@x.test", "reported as asked");
    assert_eq!(found[0].id, id);
    let version = found[0].version.clone();
    assert_eq!(version.as_deref(), Some("v1"));

    let update = |version: Option<String>| {
        Operation::Update(Update {
            id: id.clone(),
            attributes: vec![text("given_name", "Augusta")],
            version,
        })
    };
    let first = host.call(|c: &JsonStore| Ok(c.apply(vec![update(version.clone())])));
    assert_eq!(
        first.unwrap()[0].as_ref().unwrap().version.as_deref(),
        Some("v2")
    );
    // The same version again is stale now: a conflict, and nothing written.
    let stale = host
        .call(|c: &JsonStore| Ok(c.apply(vec![update(version)])))
        .unwrap();
    assert!(
        matches!(stale[0], Err(StoreError::Conflict(_))),
        "{stale:?}"
    );
}

#[test]
fn disable_and_enable_flip_the_flag_and_lists_page_through_everything() {
    let store = store();
    let host = host(&store);
    let made = ids(host
        .call(
            |c: &JsonStore| Ok(c.apply((0..5).map(|i| person(&format!("p{i}@x.test"))).collect())),
        )
        .unwrap());
    let id = made[0].clone();
    let flag = |store: &Store| {
        store
            .server
            .people()
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, a)| a["active"].clone())
    };
    let disable = Operation::Disable(id.clone());
    host.call(|c: &JsonStore| c.apply(vec![disable]).remove(0))
        .unwrap();
    assert_eq!(flag(&store), Some(serde_json::json!(false)));
    let enable = Update {
        id: id.clone(),
        attributes: vec![],
        version: None,
    };
    host.call(|c: &JsonStore| c.apply(vec![Operation::Enable(enable)]).remove(0))
        .unwrap();
    assert_eq!(flag(&store), Some(serde_json::json!(true)));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = host.call(|c: &JsonStore| c.list(cursor.clone())).unwrap();
        assert!(page.records.len() <= 2, "page_size is honoured");
        seen.extend(page.records.into_iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, made, "every record exactly once");
}

#[test]
fn the_stand_in_keeps_the_broker_s_rules() {
    let store = store();
    let host = host(&store);
    // Only the egress origins are reachable.
    let elsewhere = host.run(|| {
        provisioner_connector::http::Client::at("http://127.0.0.1:9")
            .get("/")
            .send()
    });
    match elsewhere {
        Err(StoreError::Rejected(r)) => assert_eq!(r.code, "EGRESS_DENIED"),
        other => panic!("{other:?}"),
    }
    // The credential is the host's to attach.
    let forged = host.run(|| {
        provisioner_connector::http::Client::egress(0)
            .unwrap()
            .get("/api/me")
            .header("authorization", "Bearer stolen")
            .send()
    });
    assert!(
        matches!(&forged, Err(StoreError::Rejected(r)) if r.code == "INVALID_REQUEST"),
        "{forged:?}"
    );
    // Outside `run`, nothing is reachable at all.
    assert!(JsonStore::connect().is_err());
    // An expired token is refreshed once, and the call goes through.
    store.server.expire_access_tokens();
    host.call(|c: &JsonStore| c.test_connection()).unwrap();
    store.server.expire_access_tokens();
    let report = host.call(|c: &JsonStore| c.test_connection()).unwrap();
    assert!(
        report.summary.starts_with("connected to store"),
        "{}",
        report.summary
    );
}
