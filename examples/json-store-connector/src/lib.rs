//! A third-party connector on the SDK: people in a JSON REST store (the
//! reference server is `tests/json-store`). The host holds the OAuth 2.0
//! secrets and brokers every request; this file only translates. Build:
//! `cargo build --release --target wasm32-wasip2 -p json-store-connector`.

use provisioner_connector::http::{Client, classify_status};
use provisioner_connector::{
    AttributeType, Capability, ConnectionReport, Connector, Descriptor, DescriptorBuilder, Match,
    Operation, Outcome, Page, Source, StoreError, StoredRecord, apply_batch, json, pair_matches,
    settings, stamped,
};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

/// Stamped at build time by the hot-swap tests, to build an upgrade.
const VERSION: &str = stamped(
    option_env!("JSON_STORE_CONNECTOR_VERSION"),
    env!("CARGO_PKG_VERSION"),
);
const DISPLAY_NAME: &str = stamped(
    option_env!("JSON_STORE_CONNECTOR_DISPLAY_NAME"),
    "{given_name} {family_name}",
);

pub struct JsonStore {
    store: Client,
}

#[derive(Deserialize)]
struct Person {
    id: String,
    attributes: Map<String, Json>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct People {
    people: Vec<Person>,
    next_cursor: Option<String>,
}

fn records(people: Vec<Person>) -> Vec<StoredRecord> {
    let record = |p: Person| StoredRecord {
        id: p.id,
        attributes: json::attributes(&p.attributes),
        version: p.version,
    };
    people.into_iter().map(record).collect()
}

/// An operation as the store's batch endpoint takes it.
fn encode(operation: Operation) -> Result<Json, StoreError> {
    Ok(match operation {
        Operation::Create(a) => json!({ "op": "create", "attributes": json::object(&a) }),
        Operation::Update(u) => json!({ "op": "update", "id": u.id,
            "attributes": json::object(&u.attributes), "version": u.version }),
        Operation::Enable(u) => json!({ "op": "enable", "id": u.id,
            "attributes": json::object(&u.attributes), "version": u.version }),
        Operation::Disable(id) => json!({ "op": "disable", "id": id }),
        Operation::Delete(id) => json!({ "op": "delete", "id": id }),
        Operation::Convert(_) => return Err(StoreError::Unsupported("one record type".into())),
    })
}

/// One batch result: `{id, version}`, or an error body with its `status`.
fn outcome(result: Json) -> Result<Outcome, StoreError> {
    let status = result.get("status").and_then(Json::as_u64).unwrap_or(200);
    if let Some(error) = classify_status(u16::try_from(status).unwrap_or(u16::MAX), &result, None) {
        return Err(error);
    }
    let text = |key: &str| result.get(key).and_then(Json::as_str).map(String::from);
    let (id, version) = (text("id"), text("version"));
    let id = id.ok_or_else(|| StoreError::protocol("a batch result without an id"))?;
    Ok(Outcome { id, version })
}

impl Connector for JsonStore {
    fn describe() -> Descriptor {
        use Capability::*;
        DescriptorBuilder::new("json-store", VERSION, "People in a JSON REST store")
            .text_setting("host", "Host name and optional port of the store", true)
            .integer_setting("page_size", "Records per page when listing", 100)
            .egress("https://{host}")
            .oauth2("https://{host}/oauth/token")
            .capabilities([Create, Update, Disable, Enable, Delete, Lookup, List])
            .match_attribute("email")
            // The store finds email without case, and keeps `active` as a flag.
            .attribute("email", AttributeType::Text, false)
            .attribute("active", AttributeType::Boolean, true)
            .map_same(["email", "given_name", "family_name"])
            .map("display_name", Source::template(DISPLAY_NAME))
            .build()
    }

    fn connect() -> Result<Self, StoreError> {
        let agent = format!("json-store-connector/{VERSION}");
        let store = Client::egress(0)?.with_header("user-agent", &agent);
        Ok(JsonStore { store })
    }

    fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
        #[derive(Deserialize)]
        struct Me {
            account: String,
            user: String,
        }
        let me: Me = self.store.get_json("/api/me")?;
        let summary = format!("connected to store {} as {}", me.account, me.user);
        Ok(ConnectionReport::new(summary)
            .detail("account", me.account)
            .detail("user", me.user))
    }

    /// One request per batch, through the store's batch endpoint.
    fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        #[derive(Deserialize)]
        struct Results {
            results: Vec<Json>,
        }
        apply_batch(operations, 200, encode, |accepted| {
            let answer: Results = self
                .store
                .post_json("/api/people/batch", &json!({ "operations": accepted }))?;
            Ok(answer.results.into_iter().map(outcome).collect())
        })
    }

    fn lookup(&self, attribute: String, values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        let search = json!({ "attribute": attribute, "values": values });
        let found: People = self.store.post_json("/api/people/search", &search)?;
        let found = records(found.people);
        Ok(pair_matches(found, &attribute, &values, false))
    }

    fn list(&self, cursor: Option<String>) -> Result<Page, StoreError> {
        let page_size: u32 = settings::get("page_size")?.unwrap_or(100);
        let limit = page_size.to_string();
        let mut request = self.store.get("/api/people").query("limit", &limit);
        if let Some(cursor) = &cursor {
            request = request.query("cursor", cursor);
        }
        let page: People = request.send_json()?;
        Ok(Page {
            records: records(page.people),
            next_cursor: page.next_cursor,
        })
    }
}

provisioner_connector::export_connector!(JsonStore);
