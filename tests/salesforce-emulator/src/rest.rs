//! The REST API: versions, limits, query, sObjects and sObject Collections.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chaos::LockedRows;
use crate::org::{SfError, sobject};
use crate::{Cursor, Shared, VERSIONS, rest_error, soql};

/// The most records one Collections request may carry.
const COLLECTION_LIMIT: usize = 200;

/// `v62.0` to `62.0`, if the emulator serves that version.
pub(crate) fn parse_version(segment: &str) -> Option<String> {
    let number = segment.strip_prefix('v')?;
    let (major, minor) = number.split_once('.')?;
    let major: u32 = major.parse().ok()?;
    (minor == "0" && VERSIONS.contains(&major)).then(|| format!("{major}.0"))
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{version}", get(resources))
        .route("/services/data/{version}/", get(resources))
        .route("/services/data/{version}/limits", get(limits))
        .route("/services/data/{version}/limits/", get(limits))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/query/", get(query))
        .route("/services/data/{version}/query/{locator}", get(query_more))
        .route("/services/data/{version}/sobjects/{object}", post(create))
        .route("/services/data/{version}/sobjects/{object}/", post(create))
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            post(collection_create)
                .patch(collection_update)
                .delete(collection_delete),
        )
}

async fn versions() -> Response {
    let list: Vec<Value> = VERSIONS
        .map(|major| {
            json!({
                "label": format!("API {major}.0"),
                "url": format!("/services/data/v{major}.0"),
                "version": format!("{major}.0"),
            })
        })
        .collect();
    Json(list).into_response()
}

async fn resources(Path(version): Path<String>) -> Response {
    let base = format!("/services/data/{version}");
    Json(json!({
        "sobjects": format!("{base}/sobjects"),
        "query": format!("{base}/query"),
        "limits": format!("{base}/limits"),
        "composite": format!("{base}/composite"),
    }))
    .into_response()
}

async fn limits(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let max = shared.options.daily_api_limit;
    let remaining = max.saturating_sub(state.counters.api_usage);
    Json(json!({
        "DailyApiRequests": { "Max": max, "Remaining": remaining },
        "DailyBulkV2QueryJobs": { "Max": 10000, "Remaining": 10000 },
        "ConcurrentAsyncGetReportInstances": { "Max": 200, "Remaining": 200 },
    }))
    .into_response()
}

#[derive(Deserialize)]
struct QueryParams {
    q: Option<String>,
}

/// Reads `Sforce-Query-Options: batchSize=N`; Salesforce accepts 200 to
/// 2000 and treats it as a hint.
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split([',', ';'])
                .filter_map(|part| part.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map(|n| n.clamp(200, 2000))
        .unwrap_or(2000)
}

fn page(
    shared: &Shared,
    version: &str,
    locator: String,
    mut cursor: Cursor,
    total: usize,
) -> Response {
    let rest = cursor.rows.split_off(cursor.batch.min(cursor.rows.len()));
    let rows = std::mem::replace(&mut cursor.rows, rest);
    let done = cursor.rows.is_empty();
    let mut body = json!({
        "totalSize": total,
        "done": done,
        "records": rows,
    });
    if !done {
        let served = total - cursor.rows.len();
        let id = locator.split('-').next().unwrap_or(&locator).to_string();
        let next = format!("{id}-{served}");
        body["nextRecordsUrl"] = Value::from(format!("/services/data/{version}/query/{next}"));
        shared.lock().cursors.insert(next, cursor);
    }
    Json(body).into_response()
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    Query(params): Query<QueryParams>,
    headers: HeaderMap,
) -> Response {
    let Some(text) = params.q else {
        return rest_error(&SfError::new(
            400,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        ));
    };
    let bound = match soql::parse(&text).and_then(|q| q.bind()) {
        Ok(bound) => bound,
        Err(error) => return rest_error(&error),
    };
    let (rows, locator) = {
        let mut state = shared.lock();
        let mut rows: Vec<Value> = match bound.emails() {
            Some(emails) => state
                .records
                .with_emails(bound.sobject.name, &emails)
                .filter(|r| bound.matches(r))
                .map(|r| bound.project(r, &version))
                .collect(),
            None => state
                .records
                .all(bound.sobject.name)
                .filter(|r| bound.matches(r))
                .map(|r| bound.project(r, &version))
                .collect(),
        };
        if let Some(limit) = bound.limit {
            rows.truncate(limit);
        }
        state.issued += 1;
        let locator = format!("01g5g{:010}", state.issued);
        (rows, locator)
    };
    let total = rows.len();
    let cursor = Cursor {
        rows,
        batch: batch_size(&headers),
    };
    page(&shared, &version, locator, cursor, total)
}

async fn query_more(
    State(shared): State<Arc<Shared>>,
    Path((version, locator)): Path<(String, String)>,
) -> Response {
    let cursor = shared.lock().cursors.remove(&locator);
    let Some(cursor) = cursor else {
        return rest_error(&SfError::new(
            400,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ));
    };
    let served: usize = locator
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    let total = served + cursor.rows.len();
    page(&shared, &version, locator, cursor, total)
}

fn object_or_error(name: &str) -> Result<&'static crate::org::SObjectType, SfError> {
    sobject(name)
        .ok_or_else(|| SfError::new(404, "NOT_FOUND", "The requested resource does not exist"))
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, SfError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SfError::new(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from an array or a value",
        )),
        Err(e) => Err(SfError::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Unexpected character: {e}"),
        )),
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path((_version, object)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let sobject = match object_or_error(&object) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    let fields = match json_object(&body) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    match shared.lock().records.create(sobject, &fields) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "success": true, "errors": [] })),
        )
            .into_response(),
        Err(error) => rest_error(&error),
    }
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((version, object, id)): Path<(String, String, String)>,
) -> Response {
    let sobject = match object_or_error(&object) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    let state = shared.lock();
    match state.records.resolve(&id, Some(sobject.name)) {
        Ok((_, full)) => {
            let record = state
                .records
                .find(&full)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let mut out = Map::new();
            out.insert(
                "attributes".into(),
                json!({ "type": sobject.name, "url": format!("/services/data/{version}/sobjects/{}/{full}", sobject.name) }),
            );
            for field in sobject.fields {
                out.insert(
                    field.name.into(),
                    record.get(field.name).cloned().unwrap_or(Value::Null),
                );
            }
            Json(Value::Object(out)).into_response()
        }
        Err(error) => rest_error(&error),
    }
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let sobject = match object_or_error(&object) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    let fields = match json_object(&body) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    match shared
        .lock()
        .records
        .update(&id, Some(sobject.name), &fields)
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => rest_error(&error),
    }
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, id)): Path<(String, String, String)>,
) -> Response {
    let sobject = match object_or_error(&object) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    match shared.lock().records.delete(&id, Some(sobject.name)) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => rest_error(&error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionBody {
    #[serde(default)]
    all_or_none: bool,
    records: Vec<Value>,
}

fn collection_body(body: &[u8]) -> Result<CollectionBody, SfError> {
    let parsed: CollectionBody = serde_json::from_slice(body).map_err(|e| {
        SfError::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Cannot deserialize the request: {e}"),
        )
    })?;
    if parsed.records.len() > COLLECTION_LIMIT {
        return Err(SfError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            format!(
                "record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"
            ),
        ));
    }
    Ok(parsed)
}

fn record_type(record: &Map<String, Value>) -> Result<&'static crate::org::SObjectType, SfError> {
    let name = record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| SfError::new(400, "INVALID_TYPE", "Must send a concrete entity type."))?;
    sobject(name).ok_or_else(|| {
        SfError::new(
            400,
            "INVALID_TYPE",
            format!("sObject type '{name}' is not supported."),
        )
    })
}

fn success(id: &str) -> Value {
    json!({ "id": id, "success": true, "errors": [] })
}

fn failure(id: Option<&str>, error: &SfError) -> Value {
    let mut out = json!({ "success": false, "errors": [error.collection_error()] });
    if let Some(id) = id {
        out["id"] = Value::from(id);
    }
    out
}

fn rolled_back(id: Option<&str>) -> Value {
    failure(
        id,
        &SfError::new(
            400,
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
        ),
    )
}

/// The error a record gets when another transaction holds its row.
fn lock_error() -> SfError {
    SfError::new(
        400,
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record or 1 records",
    )
}

async fn collection_create(
    State(shared): State<Arc<Shared>>,
    locked: Option<Extension<LockedRows>>,
    body: axum::body::Bytes,
) -> Response {
    let locked = locked.map(|Extension(l)| l).unwrap_or_default();
    let body = match collection_body(&body) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    let mut state = shared.lock();
    let checked: Vec<_> = body
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            if locked.is_locked(index) {
                return Err(lock_error());
            }
            let Value::Object(record) = record else {
                return Err(SfError::new(
                    400,
                    "JSON_PARSER_ERROR",
                    "a record must be an object",
                ));
            };
            let sobject = record_type(record)?;
            state
                .records
                .check_create(sobject, record)
                .map(|fields| (sobject, fields))
        })
        .collect();
    let any_failed = checked.iter().any(Result::is_err);
    let results: Vec<Value> = if body.all_or_none && any_failed {
        checked
            .iter()
            .map(|c| match c {
                Ok(_) => rolled_back(None),
                Err(error) => failure(None, error),
            })
            .collect()
    } else {
        checked
            .into_iter()
            .map(|c| match c {
                Ok((sobject, fields)) => success(&state.records.insert(sobject, fields)),
                Err(error) => failure(None, &error),
            })
            .collect()
    };
    Json(results).into_response()
}

async fn collection_update(
    State(shared): State<Arc<Shared>>,
    locked: Option<Extension<LockedRows>>,
    body: axum::body::Bytes,
) -> Response {
    let locked = locked.map(|Extension(l)| l).unwrap_or_default();
    let body = match collection_body(&body) {
        Ok(value) => value,
        Err(error) => return rest_error(&error),
    };
    let mut state = shared.lock();
    let checked: Vec<_> = body
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let Value::Object(record) = record else {
                return (
                    None,
                    Err(SfError::new(
                        400,
                        "JSON_PARSER_ERROR",
                        "a record must be an object",
                    )),
                );
            };
            let id = record
                .get("id")
                .or_else(|| record.get("Id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let result = match (&id, record_type(record)) {
                _ if locked.is_locked(index) => Err(lock_error()),
                (None, _) => Err(SfError::new(
                    400,
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                )),
                (Some(_), Err(error)) => Err(error),
                (Some(id), Ok(sobject)) => {
                    state.records.check_update(id, Some(sobject.name), record)
                }
            };
            (id, result)
        })
        .collect();
    let any_failed = checked.iter().any(|(_, r)| r.is_err());
    let results: Vec<Value> = if body.all_or_none && any_failed {
        checked
            .iter()
            .map(|(id, c)| match c {
                Ok(_) => rolled_back(id.as_deref()),
                Err(error) => failure(id.as_deref(), error),
            })
            .collect()
    } else {
        checked
            .into_iter()
            .map(|(id, c)| match c {
                Ok((type_name, full, changes)) => {
                    state.records.apply_update(type_name, &full, changes);
                    success(&full)
                }
                Err(error) => failure(id.as_deref(), &error),
            })
            .collect()
    };
    Json(results).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteParams {
    ids: Option<String>,
    #[serde(default)]
    all_or_none: Option<String>,
}

async fn collection_delete(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<DeleteParams>,
) -> Response {
    let ids: Vec<String> = params
        .ids
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return rest_error(&SfError::new(
            400,
            "MISSING_ARGUMENT",
            "ids parameter is required",
        ));
    }
    if ids.len() > COLLECTION_LIMIT {
        return rest_error(&SfError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            format!(
                "record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"
            ),
        ));
    }
    let all_or_none = params
        .all_or_none
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut state = shared.lock();
    if all_or_none {
        let checked: Vec<_> = ids
            .iter()
            .map(|id| state.records.check_delete(id, None))
            .collect();
        if checked.iter().any(Result::is_err) {
            let results: Vec<Value> = ids
                .iter()
                .zip(&checked)
                .map(|(id, c)| match c {
                    Ok(_) => rolled_back(Some(id)),
                    Err(error) => failure(Some(id), error),
                })
                .collect();
            return Json(results).into_response();
        }
    }
    // Each delete sees the ones before it, as in Salesforce.
    let results: Vec<Value> = ids
        .iter()
        .map(|id| match state.records.delete(id, None) {
            Ok(full) => success(&full),
            Err(error) => failure(Some(id), &error),
        })
        .collect();
    Json(results).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert_eq!(parse_version("v62.0").as_deref(), Some("62.0"));
        assert_eq!(parse_version("v99.0"), None);
        assert_eq!(parse_version("62.0"), None);
        assert_eq!(parse_version("v62.1"), None);
    }

    #[test]
    fn batch_sizes_are_clamped_like_salesforce() {
        let mut headers = HeaderMap::new();
        assert_eq!(batch_size(&headers), 2000);
        headers.insert("sforce-query-options", "batchSize=500".parse().unwrap());
        assert_eq!(batch_size(&headers), 500);
        headers.insert("sforce-query-options", "batchSize=10".parse().unwrap());
        assert_eq!(batch_size(&headers), 200);
    }
}
