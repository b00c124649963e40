//! What the reference SCIM server cannot be made to do, from a small SCIM
//! stand-in of our own on loopback: refuse filters joined with `or`
//! (`invalidFilter`), as some providers do, and answer 429 with a
//! `Retry-After`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use provisioner_connector::testing::StandIn;
use provisioner_connector::{Attribute, Connector, Operation, StoreError, Value};
use scim2_connector::Scim2;
use serde_json::json;

const TOKEN: &str = "stand-in-token-0123456789";

/// The filters the stand-in was asked, in order.
#[derive(Default)]
struct Seen {
    filters: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn config() -> Response {
    axum::Json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false},
        "filter": {"supported": true, "maxResults": 100},
        "etag": {"supported": false},
    }))
    .into_response()
}

/// Users by `userName eq "..."`; a filter with `or` is refused.
async fn users(
    State(seen): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let filter = query.get("filter").cloned().unwrap_or_default();
    seen.lock().unwrap().filters.push(filter.clone());
    if filter.contains(" or ") {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "400", "scimType": "invalidFilter", "detail": "or is not supported"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let name = filter
        .strip_prefix("userName eq \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_default()
        .to_string();
    let resources: Vec<_> = ["ada", "bob"]
        .iter()
        .filter(|known| **known == name)
        .map(|known| json!({"id": format!("id-{known}"), "userName": known}))
        .collect();
    axum::Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(), "startIndex": 1, "Resources": resources}),
    )
    .into_response()
}

/// Every create is throttled.
async fn create() -> Response {
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "429", "detail": "slow down"});
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "7")],
        axum::Json(body),
    )
        .into_response()
}

struct Provider {
    address: std::net::SocketAddr,
    seen: Shared,
    _runtime: tokio::runtime::Runtime,
}

/// The stand-in, served by a runtime of its own: the stand-in broker's
/// blocking client must not run on an async runtime's threads.
fn provider() -> Provider {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = Shared::default();
    let app = Router::new()
        .route("/v2/ServiceProviderConfig", get(config))
        .route("/v2/Users", get(users).post(create))
        .with_state(seen.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    Provider {
        address,
        seen,
        _runtime: runtime,
    }
}

fn host(provider: &Provider) -> StandIn {
    StandIn::builder::<Scim2>()
        .setting("host", &provider.address.to_string())
        .setting("base_path", "/v2")
        .allow_insecure_loopback()
        .bearer(TOKEN)
        .build()
        .unwrap()
}

#[test]
fn a_provider_that_refuses_or_is_asked_one_value_at_a_time() {
    let provider = provider();
    let host = host(&provider);
    let values = vec!["ada".to_string(), "bob".into(), "eve".into()];
    let found = host
        .call(|c: &Scim2| c.lookup("userName".into(), values.clone()))
        .unwrap();
    let mut ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["id-ada", "id-bob"]);
    let filters = provider.seen.lock().unwrap().filters.clone();
    assert_eq!(
        filters.len(),
        4,
        "one refused, then one per value: {filters:?}"
    );
    assert!(filters[0].contains(" or "));

    // The refusal is remembered for the connection: no `or` again.
    let again = host
        .call(|c: &Scim2| c.lookup("userName".into(), values.clone()))
        .unwrap();
    assert_eq!(again.len(), 2);
    let filters = provider.seen.lock().unwrap().filters.clone();
    assert_eq!(filters.len(), 7, "{filters:?}");
    assert!(
        filters[4..].iter().all(|f| !f.contains(" or ")),
        "{filters:?}"
    );
}

#[test]
fn a_429_is_transient_and_keeps_the_providers_retry_after() {
    let provider = provider();
    let host = host(&provider);
    let answers = host
        .call(|c: &Scim2| {
            Ok(c.apply(vec![Operation::Create(vec![Attribute {
                name: "userName".into(),
                value: Value::Text("carl".into()),
            }])]))
        })
        .unwrap();
    match &answers[0] {
        Err(StoreError::Transient(t)) => {
            assert_eq!(t.retry_after_ms, Some(7000), "{t:?}");
            assert!(t.message.contains("429"), "{}", t.message);
        }
        other => panic!("{other:?}"),
    }
}
