//! The control API under `/__emulator/`, a path Salesforce does not use:
//! what tests, benchmarks and the demo use to shape the emulated org.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::chaos::ChaosState;
use crate::{Chaos, Fault, Latency, Shared, org};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__emulator/faults", post(add_fault))
        .route("/__emulator/faults", delete(clear_faults))
        .route(
            "/__emulator/latency",
            post(set_latency).delete(clear_latency),
        )
        .route("/__emulator/expire-sessions", post(expire_sessions))
        .route(
            "/__emulator/expire-sessions-after/{requests}",
            post(expire_after),
        )
        .route("/__emulator/revoke-refresh-tokens", post(revoke))
        .route(
            "/__emulator/echo-credentials",
            post(echo_on).delete(echo_off),
        )
        .route("/__emulator/chaos", post(set_chaos).delete(clear_chaos))
        .route("/__emulator/write-log", get(write_log))
        .route("/__emulator/counters", get(counters))
        .route("/__emulator/records/{object}", get(records).post(seed))
        .route("/__emulator/portal-users/{contact}", post(portal_user))
}

async fn add_fault(State(shared): State<Arc<Shared>>, Json(fault): Json<Fault>) -> StatusCode {
    shared.lock().faults.push(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn set_latency(
    State(shared): State<Arc<Shared>>,
    Json(latency): Json<Latency>,
) -> StatusCode {
    shared.lock().latency = Some(latency);
    StatusCode::NO_CONTENT
}

async fn clear_latency(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().latency = None;
    StatusCode::NO_CONTENT
}

async fn expire_sessions(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().sessions.clear();
    StatusCode::NO_CONTENT
}

async fn expire_after(State(shared): State<Arc<Shared>>, Path(requests): Path<u64>) -> StatusCode {
    shared.lock().expire_after = Some(requests.max(1));
    StatusCode::NO_CONTENT
}

async fn echo_on(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().echo_credentials = true;
    StatusCode::NO_CONTENT
}

async fn echo_off(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().echo_credentials = false;
    StatusCode::NO_CONTENT
}

async fn revoke(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().refresh_tokens.clear();
    StatusCode::NO_CONTENT
}

async fn set_chaos(State(shared): State<Arc<Shared>>, Json(chaos): Json<Chaos>) -> StatusCode {
    shared.lock().chaos = Some(ChaosState::new(chaos));
    StatusCode::NO_CONTENT
}

async fn clear_chaos(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().chaos = None;
    StatusCode::NO_CONTENT
}

async fn write_log(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().write_log.clone()).into_response()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let mut counters = state.counters.clone();
    counters.records = state
        .records
        .counts()
        .into_iter()
        .filter(|(name, _)| name != "Organization")
        .collect();
    Json(counters).into_response()
}

async fn records(State(shared): State<Arc<Shared>>, Path(object): Path<String>) -> Response {
    let Some(sobject) = org::sobject(&object) else {
        return (StatusCode::NOT_FOUND, format!("no sObject {object}")).into_response();
    };
    let state = shared.lock();
    let all: Vec<Value> = state
        .records
        .all(sobject.name)
        .map(|r| Value::Object(r.clone()))
        .collect();
    Json(all).into_response()
}

async fn seed(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    let Some(sobject) = org::sobject(&object) else {
        return (StatusCode::NOT_FOUND, format!("no sObject {object}")).into_response();
    };
    let Value::Object(fields) = fields else {
        return (StatusCode::BAD_REQUEST, "fields must be a JSON object").into_response();
    };
    match shared.lock().records.create(sobject, &fields) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(error.rest_body())).into_response(),
    }
}

async fn portal_user(State(shared): State<Arc<Shared>>, Path(contact): Path<String>) -> StatusCode {
    if shared.lock().records.mark_portal_user(&contact) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
