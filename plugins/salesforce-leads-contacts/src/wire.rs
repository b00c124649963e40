//! Reading Salesforce's answers: error arrays, Collections results, query
//! pages and the limit header, and classifying failures into the
//! contract's classes. Pure functions over bytes, so that they can be
//! tested and fuzzed natively; none of them panics on any input.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::types::{Rejection, StoreError, TransientError};

/// One entry of an error array (`errorCode`) or of a Collections result
/// (`statusCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn fields(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn api_error(entry: &Value) -> ApiError {
    ApiError {
        code: text(entry.get("errorCode").or_else(|| entry.get("statusCode"))),
        message: text(entry.get("message")),
        fields: fields(entry.get("fields")),
    }
}

/// Reads an error body: Salesforce sends an array of errors; anything else
/// (a proxy's HTML page, an empty body) becomes one error with no code.
pub fn parse_errors(body: &[u8]) -> Vec<ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(entries)) if !entries.is_empty() => entries.iter().map(api_error).collect(),
        Ok(entry @ Value::Object(_)) => vec![api_error(&entry)],
        _ => vec![ApiError {
            code: String::new(),
            message: excerpt(body),
            fields: Vec::new(),
        }],
    }
}

/// A printable start of a body.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut: String = text.chars().take(200).collect();
    if cut.is_empty() {
        "empty body".into()
    } else {
        cut
    }
}

fn transient(message: String, retry_after_ms: Option<u64>) -> StoreError {
    StoreError::Transient(TransientError {
        message,
        retry_after_ms,
    })
}

/// The contract class of one Salesforce error code.
///
/// | Salesforce | class |
/// |---|---|
/// | `REQUEST_LIMIT_EXCEEDED`, `UNABLE_TO_LOCK_ROW`, `SERVER_UNAVAILABLE`, 5xx | transient |
/// | `NOT_FOUND`, `ENTITY_IS_DELETED` | not-found |
/// | `INVALID_SESSION_ID` | unauthorized |
/// | everything else (`REQUIRED_FIELD_MISSING`, `INVALID_FIELD`, `DUPLICATE_VALUE`, `DUPLICATES_DETECTED`, `CANNOT_UPDATE_CONVERTED_LEAD`, `DELETE_FAILED`, `MALFORMED_ID`, ...) | rejected, with fields |
pub fn classify_error(status: u16, error: &ApiError, retry_after_ms: Option<u64>) -> StoreError {
    let described = || {
        if error.code.is_empty() {
            format!("HTTP {status}: {}", error.message)
        } else {
            format!("{}: {}", error.code, error.message)
        }
    };
    match error.code.as_str() {
        "REQUEST_LIMIT_EXCEEDED"
        | "UNABLE_TO_LOCK_ROW"
        | "SERVER_UNAVAILABLE"
        | "QUERY_TIMEOUT"
        | "UNKNOWN_EXCEPTION" => transient(described(), retry_after_ms),
        "NOT_FOUND" | "ENTITY_IS_DELETED" => StoreError::NotFound(described()),
        "INVALID_SESSION_ID" => StoreError::Unauthorized(described()),
        _ if status >= 500 || status == 408 || status == 429 => {
            transient(described(), retry_after_ms)
        }
        "" => StoreError::Rejected(Rejection {
            code: format!("HTTP_{status}"),
            message: error.message.clone(),
            fields: Vec::new(),
        }),
        code => StoreError::Rejected(Rejection {
            code: code.to_string(),
            message: error.message.clone(),
            fields: error.fields.clone(),
        }),
    }
}

/// Classifies a whole failed response by its first error.
pub fn classify_response(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> StoreError {
    let errors = parse_errors(body);
    match errors.first() {
        Some(first) => classify_error(status, first, retry_after_ms),
        None => transient(format!("HTTP {status}"), retry_after_ms),
    }
}

/// One Collections result as Salesforce writes it, read straight from the
/// body: a create batch of 200 builds no `Value` tree for its answer.
#[derive(Deserialize)]
struct CollectionResult<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    success: bool,
    #[serde(borrow, default)]
    errors: Vec<CollectionError<'a>>,
}

#[derive(Deserialize)]
struct CollectionError<'a> {
    #[serde(borrow, default, rename = "statusCode", alias = "errorCode")]
    code: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
    #[serde(borrow, default)]
    fields: Vec<Cow<'a, str>>,
}

fn collection_result(
    success: bool,
    id: Option<String>,
    error: impl FnOnce() -> Option<ApiError>,
) -> Result<String, StoreError> {
    match (success, id) {
        (true, Some(id)) => Ok(id),
        (true, None) => Err(transient(
            "Salesforce reported success without an id".into(),
            None,
        )),
        (false, _) => {
            let error = error().unwrap_or(ApiError {
                code: String::new(),
                message: "failed without an error".into(),
                fields: Vec::new(),
            });
            Err(classify_error(400, &error, None))
        }
    }
}

/// Reads a Collections answer: one result per record, in order. A
/// missing result is reported on its record, never dropped.
pub fn parse_collection(
    body: &[u8],
    expected: usize,
) -> Result<Vec<Result<String, StoreError>>, StoreError> {
    let (answered, mut out) = match serde_json::from_slice::<Vec<CollectionResult>>(body) {
        Ok(results) => (
            results.len(),
            results
                .into_iter()
                .take(expected)
                .map(|result| {
                    let CollectionResult {
                        id,
                        success,
                        errors,
                    } = result;
                    collection_result(success, id.map(Cow::into_owned), || {
                        errors.into_iter().next().map(|e| ApiError {
                            code: e.code.into_owned(),
                            message: e.message.into_owned(),
                            fields: e.fields.into_iter().map(Cow::into_owned).collect(),
                        })
                    })
                })
                .collect::<Vec<_>>(),
        ),
        // Not quite Salesforce's shape (a field of another type, say):
        // read what can be read, result by result.
        Err(_) => {
            let Ok(Value::Array(results)) = serde_json::from_slice::<Value>(body) else {
                return Err(transient(
                    format!(
                        "Salesforce answered a Collections call with something else: {}",
                        excerpt(body)
                    ),
                    None,
                ));
            };
            (
                results.len(),
                results
                    .iter()
                    .take(expected)
                    .map(|result| {
                        let id = result.get("id").and_then(Value::as_str).map(String::from);
                        let success = result
                            .get("success")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        collection_result(success, id, || {
                            result
                                .get("errors")
                                .and_then(Value::as_array)
                                .and_then(|errors| errors.first())
                                .map(api_error)
                        })
                    })
                    .collect(),
            )
        }
    };
    while out.len() < expected {
        out.push(Err(transient(
            format!("Salesforce answered {answered} results for {expected} records"),
            None,
        )));
    }
    Ok(out)
}

/// One page of a SOQL query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub total: u64,
    pub records: Vec<Map<String, Value>>,
    pub next: Option<String>,
}

pub fn parse_query(body: &[u8]) -> Result<QueryPage, StoreError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        transient(
            format!(
                "Salesforce answered a query with something else: {}",
                excerpt(body)
            ),
            None,
        )
    })?;
    let records = parsed
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| transient("a query answer without records".into(), None))?
        .iter()
        .filter_map(|r| r.as_object().cloned())
        .collect();
    let done = parsed.get("done").and_then(Value::as_bool).unwrap_or(true);
    let next = parsed
        .get("nextRecordsUrl")
        .and_then(Value::as_str)
        .filter(|_| !done)
        .map(String::from);
    Ok(QueryPage {
        total: parsed.get("totalSize").and_then(Value::as_u64).unwrap_or(0),
        records,
        next,
    })
}

/// `Sforce-Limit-Info: api-usage=USED/MAX`, read leniently: newer orgs
/// append `; api-bursts=...`.
pub fn api_usage(value: &str) -> Option<(u64, u64)> {
    let usage = value
        .split([';', ','])
        .map(str::trim)
        .find_map(|part| part.strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(error: &StoreError) -> &'static str {
        match error {
            StoreError::Transient(_) => "transient",
            StoreError::Rejected(_) => "rejected",
            StoreError::NotFound(_) => "not-found",
            StoreError::Unauthorized(_) => "unauthorized",
            StoreError::Unsupported(_) => "unsupported",
            StoreError::Conflict(_) => "conflict",
        }
    }

    #[test]
    fn the_error_table() {
        let rows: &[(u16, &str, &str)] = &[
            (403, "REQUEST_LIMIT_EXCEEDED", "transient"),
            (400, "UNABLE_TO_LOCK_ROW", "transient"),
            (503, "SERVER_UNAVAILABLE", "transient"),
            (500, "", "transient"),
            (502, "SOMETHING", "transient"),
            (400, "REQUIRED_FIELD_MISSING", "rejected"),
            (400, "INVALID_FIELD", "rejected"),
            (400, "DUPLICATE_VALUE", "rejected"),
            (400, "DUPLICATES_DETECTED", "rejected"),
            (400, "CANNOT_UPDATE_CONVERTED_LEAD", "rejected"),
            (400, "DELETE_FAILED", "rejected"),
            (400, "MALFORMED_ID", "rejected"),
            (404, "NOT_FOUND", "not-found"),
            (404, "ENTITY_IS_DELETED", "not-found"),
            (401, "INVALID_SESSION_ID", "unauthorized"),
        ];
        for (status, code, expected) in rows {
            let error = ApiError {
                code: code.to_string(),
                message: "m".into(),
                fields: vec!["Company".into()],
            };
            assert_eq!(
                class(&classify_error(*status, &error, None)),
                *expected,
                "{code}"
            );
        }
        let rejected = classify_response(
            400,
            br#"[{"message":"Required fields are missing: [Company]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Company"]}]"#,
            None,
        );
        let StoreError::Rejected(r) = rejected else {
            panic!()
        };
        assert_eq!(r.fields, vec!["Company"]);
        assert_eq!(r.code, "REQUIRED_FIELD_MISSING");
    }

    #[test]
    fn collections_results_line_up_with_records() {
        let body = br#"[{"id":"003A","success":true,"errors":[]},{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}]"#;
        let results = parse_collection(body, 3).unwrap();
        assert_eq!(results[0], Ok("003A".into()));
        assert!(matches!(&results[1], Err(StoreError::Rejected(r)) if r.fields == ["LastName"]));
        assert!(
            matches!(&results[2], Err(StoreError::Transient(_))),
            "a missing result is reported"
        );
        assert!(parse_collection(b"<html>", 1).is_err());
        // Escaped ids, the older errorCode key, and a result of another
        // shape read leniently instead of failing the whole batch.
        let body = br#"[{"id":"003\u0041","success":true,"errors":[]},{"success":false,"errors":[{"errorCode":"DUPLICATE_VALUE","message":"dup","fields":[]}]},{"id":"003C","success":"yes"}]"#;
        let results = parse_collection(body, 3).unwrap();
        assert_eq!(results[0], Ok("003A".into()));
        assert!(matches!(&results[1], Err(StoreError::Rejected(r)) if r.code == "DUPLICATE_VALUE"));
        assert!(
            matches!(&results[2], Err(StoreError::Rejected(r)) if r.message == "failed without an error")
        );
        let typed = br#"[{"id":"003\u0041","success":true,"errors":[]},{"success":false,"errors":[{"errorCode":"DUPLICATE_VALUE","message":"dup","fields":["Email"]}]}]"#;
        let results = parse_collection(typed, 2).unwrap();
        assert_eq!(results[0], Ok("003A".into()));
        assert!(
            matches!(&results[1], Err(StoreError::Rejected(r)) if r.code == "DUPLICATE_VALUE" && r.fields == ["Email"])
        );
    }

    #[test]
    fn query_pages_and_limits() {
        let page = parse_query(
            br#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01g-2","records":[{"attributes":{"type":"Lead"},"Id":"00Q1"}]}"#,
        )
        .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(
            page.next.as_deref(),
            Some("/services/data/v62.0/query/01g-2")
        );
        assert_eq!(page.records.len(), 1);
        assert!(parse_query(b"{}").is_err());
        assert_eq!(api_usage("api-usage=25/15000"), Some((25, 15000)));
        assert_eq!(
            api_usage("api-usage=25/15000; api-bursts=1/100"),
            Some((25, 15000))
        );
        assert_eq!(api_usage("nonsense"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"[1,2]",
            b"{\"records\":7}",
            b"\xff\xfe",
            b"[{\"success\":true}]",
        ] {
            let _ = parse_errors(body);
            let _ = parse_collection(body, 2);
            let _ = parse_query(body);
            let _ = classify_response(500, body, None);
        }
    }
}
