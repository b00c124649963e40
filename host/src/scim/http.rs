//! The SCIM endpoints: `/Users`, `/Groups` and discovery under
//! `/scim/v2`, behind bearer tokens, writing through the directory.
//!
//! Writes are serialised in this server and each is a conditional write of
//! the state (see [`Directory::put`]), so that no concurrent change is
//! lost, whether it comes over SCIM or from a command in another process.
//! An answer is sent only after its write is committed, and every write
//! wakes the scheduler.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Digest;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::MEDIA_TYPE;
use super::discovery::{self, MAX_BODY, MAX_RESULTS};
use super::error::ScimError;
use super::filter::{self, AttrPath, Filter};
use super::group::{self, GROUP, Known};
use super::patch::{self, Op};
use super::user::{self, USER, field};
use crate::directory::{
    AttributeSchema, Directory, DirectoryError, GroupPut, GroupRecord, GroupWrite, Key, Members,
    Person, Put,
};
use crate::state::Store;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// What the handlers share.
pub struct ScimState {
    pub db: Arc<dyn Store>,
    pub schema: AttributeSchema,
    /// Named tokens: the name is recorded with every change a token makes.
    pub tokens: Vec<(String, SecretString)>,
    /// Wakes the scheduler after a write, for a pass over whoever changed.
    pub kick: Arc<Notify>,
    /// The URL of `/scim/v2`, for `location` and `$ref`.
    pub base: String,
    /// How many people a filter that no index answers may read before it
    /// is refused with `tooMany`.
    max_scan: usize,
    writes: tokio::sync::Mutex<()>,
}

/// How many people a filter that no index answers reads at most, unless
/// `[scim] max_scan` says otherwise: a few seconds' work.
pub const DEFAULT_MAX_SCAN: usize = 200_000;

impl ScimState {
    pub fn new(
        db: Arc<dyn Store>,
        schema: AttributeSchema,
        tokens: Vec<(String, SecretString)>,
        kick: Arc<Notify>,
        base: String,
    ) -> ScimState {
        ScimState {
            db,
            schema,
            tokens,
            kick,
            base,
            max_scan: DEFAULT_MAX_SCAN,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// Refuses filters that no index answers once they have read `max`
    /// people.
    pub fn scanning_at_most(self, max: usize) -> ScimState {
        ScimState {
            max_scan: max,
            ..self
        }
    }

    fn directory(&self, caller: &Caller) -> Directory<'_> {
        Directory::new(&*self.db, self.schema.clone()).with_source(format!("scim:{}", caller.0))
    }
}

type Shared = Arc<ScimState>;

/// The name of the token a request presented.
#[derive(Debug, Clone)]
struct Caller(String);

fn unauthorized(detail: &str) -> Response {
    let mut response =
        ScimError::new(StatusCode::UNAUTHORIZED, None, detail.to_string()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"provisioner scim\""),
    );
    response
}

/// Requires one of the configured tokens, compared in constant time
/// against every one of them, so that the time taken says nothing of
/// which one came close.
async fn authenticate(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return unauthorized("a bearer token is required");
    };
    // Digests of equal length: comparing the tokens themselves would
    // stop early at a difference in length.
    let digest = |text: &str| sha2::Sha256::digest(text.as_bytes());
    let presented = digest(&presented);
    let mut matched = None;
    for (name, token) in &state.tokens {
        let same: bool = presented
            .as_slice()
            .ct_eq(digest(token.expose_secret()).as_slice())
            .into();
        if same {
            matched = Some(name.clone());
        }
    }
    match matched {
        Some(name) => {
            request.extensions_mut().insert(Caller(name));
            next.run(request).await
        }
        None => unauthorized("the bearer token is not one of this service provider's"),
    }
}

/// A request body: SCIM's media type (or plain JSON), at most
/// [`MAX_BODY`] bytes, one JSON value.
struct Body(Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ScimError;

    async fn from_request(request: Request, state: &S) -> Result<Body, ScimError> {
        let _ = state;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let too_large = || {
            ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                format!("the body is larger than {MAX_BODY} bytes"),
            )
        };
        // Refused from its length alone, unread.
        if request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_BODY)
        {
            return Err(too_large());
        }
        // Read (up to the cap) before any other refusal, so that the
        // connection stays usable for the client's next request.
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|_| too_large())?;
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != MEDIA_TYPE && essence != "application/json" {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                format!(
                    "the body must be {MEDIA_TYPE} (or application/json), not {:?}",
                    crate::inert::inert(&content_type)
                ),
            ));
        }
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ScimError::bad("invalidSyntax", format!("the body is not valid JSON: {e}"))
        })
    }
}

/// A SCIM answer with its media type, and an `ETag` for one resource.
fn answer(status: StatusCode, body: &Value, etag: Option<&str>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response();
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    if status == StatusCode::CREATED
        && let Some(location) = body["meta"]["location"]
            .as_str()
            .and_then(|l| HeaderValue::from_str(l).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Whether `If-Match` (if any) names `current`; `*` names any version.
fn check_if_match(headers: &HeaderMap, current: &str) -> Result<(), ScimError> {
    let Some(wanted) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or_default();
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let matches = wanted
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(current));
    if matches {
        Ok(())
    } else {
        Err(ScimError::stale())
    }
}

fn directory_error(error: DirectoryError) -> ScimError {
    match error {
        DirectoryError::Invalid { message, .. } => ScimError::invalid_value(message),
        DirectoryError::NoSuchPerson(id) => ScimError::not_found("User", &id),
        DirectoryError::State(error) => ScimError::internal(error),
    }
}

/// Case-exact attributes (RFC 7643): the ids; the rest compare without
/// case.
fn exact(path: &AttrPath) -> bool {
    let is = |name: &str| path.name.eq_ignore_ascii_case(name);
    let value = || {
        path.sub
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("value"))
    };
    is("id")
        || is("externalId")
        // Members and groups are ids too.
        || ((is("members") || is("groups")) && value())
        || (path.name.eq_ignore_ascii_case("meta")
            && path
                .sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("version")))
}

/// Whether a filter refers to the attribute `name` anywhere.
fn mentions(filter: &Filter, name: &str) -> bool {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => {
            path.name.eq_ignore_ascii_case(name)
        }
        Filter::Not(inner) => mentions(inner, name),
        Filter::And(all) | Filter::Or(all) => all.iter().any(|f| mentions(f, name)),
        Filter::ValuePath { path, filter } => {
            path.name.eq_ignore_ascii_case(name) || mentions(filter, name)
        }
    }
}

/// The conjuncts of `filter` that do not look at members, if any: a
/// resource they rule out is ruled out by the whole filter.
fn without_members(filter: &Filter) -> Option<Filter> {
    match filter {
        Filter::And(all) => {
            let rest: Vec<Filter> = all
                .iter()
                .filter(|f| !mentions(f, "members"))
                .cloned()
                .collect();
            (!rest.is_empty()).then_some(Filter::And(rest))
        }
        other => (!mentions(other, "members")).then(|| other.clone()),
    }
}

/// A list request's parameters.
struct ListQuery {
    filter: Option<Filter>,
    start: usize,
    count: usize,
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn paths(text: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    text.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| AttrPath::parse(t).map_err(|e| ScimError::bad("invalidValue", e.0)))
        .collect()
}

impl ListQuery {
    fn parse(params: &HashMap<String, String>) -> Result<ListQuery, ScimError> {
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            match param(params, name) {
                None => Ok(default),
                Some(text) => text.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("{name} must be a whole number, not {text:?}"))
                }),
            }
        };
        let filter = param(params, "filter")
            .filter(|f| !f.trim().is_empty())
            .map(|f| filter::parse(f).map_err(|e| ScimError::bad("invalidFilter", e.0)))
            .transpose()?;
        if filter.as_ref().is_some_and(|f| mentions(f, "meta")) {
            return Err(ScimError::bad(
                "invalidFilter",
                "filtering on meta is not supported by this service provider",
            ));
        }
        if param(params, "sortBy").is_some() {
            return Err(ScimError::bad(
                "invalidValue",
                "sorting is not supported (see /ServiceProviderConfig); results come in id order",
            ));
        }
        let count = number("count", 100)?.clamp(0, MAX_RESULTS as i64) as usize;
        Ok(ListQuery {
            filter,
            start: number("startIndex", 1)?.max(1) as usize,
            count,
            attributes: paths(param(params, "attributes"))?,
            excluded: paths(param(params, "excludedAttributes"))?,
        })
    }

    fn matches(&self, resource: &Value) -> Result<bool, ScimError> {
        match &self.filter {
            None => Ok(true),
            Some(filter) => filter
                .matches(resource, &exact)
                .map_err(|e| ScimError::bad("invalidFilter", e.0)),
        }
    }

    /// Whether `name` is left out of the answer, so need not be read.
    fn leaves_out(&self, name: &str) -> bool {
        let excluded = self
            .excluded
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name) && p.sub.is_none());
        // `attributes=members.value` asks for the members too.
        let asked = self
            .attributes
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name));
        excluded || (!self.attributes.is_empty() && !asked)
    }
}

/// The object under `path`'s schema in `resource`, as PATCH finds it.
fn container<'a>(
    resource: &'a mut Value,
    path: &AttrPath,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    patch::container(resource.as_object_mut()?, path, false)
        .ok()
        .flatten()
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): `id` and
/// `schemas` are always returned.
fn project(mut resource: Value, query: &ListQuery) -> Value {
    for path in &query.excluded {
        if path.name.eq_ignore_ascii_case("id") || path.name.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(object) = container(&mut resource, path) {
            let key = object
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&path.name))
                .cloned();
            match (key, &path.sub) {
                (Some(key), None) => {
                    object.remove(&key);
                }
                (Some(key), Some(sub)) => strip_sub(object.get_mut(&key), sub),
                _ => {}
            }
        }
    }
    if query.attributes.is_empty() {
        return resource;
    }
    let Value::Object(full) = &resource else {
        return resource;
    };
    let mut kept = serde_json::Map::new();
    for key in ["id", "schemas"] {
        if let Some(value) = full.get(key) {
            kept.insert(key.into(), value.clone());
        }
    }
    let mut source = resource.clone();
    for path in &query.attributes {
        let Some(object) = container(&mut source, path) else {
            continue;
        };
        let Some((key, value)) = object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&path.name))
        else {
            continue;
        };
        let value = match &path.sub {
            None => value.clone(),
            Some(sub) => keep_sub(value, sub),
        };
        let target = match &path.schema {
            Some(schema)
                if !schema.eq_ignore_ascii_case(USER) && !schema.eq_ignore_ascii_case(GROUP) =>
            {
                let urn = full
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(schema))
                    .cloned()
                    .unwrap_or_else(|| schema.clone());
                let entry = kept.entry(urn).or_insert_with(|| json!({}));
                match entry.as_object_mut() {
                    Some(object) => object,
                    None => continue,
                }
            }
            _ => &mut kept,
        };
        merge(target, key, value);
    }
    Value::Object(kept)
}

fn merge(target: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    match (target.get_mut(key), value) {
        (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
        (_, value) => {
            target.insert(key.to_string(), value);
        }
    }
}

fn keep_sub(value: &Value, sub: &str) -> Value {
    let pick = |item: &Value| match item {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(sub))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    match value {
        Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
        other => pick(other),
    }
}

fn strip_sub(value: Option<&mut Value>, sub: &str) {
    let strip = |item: &mut Value| {
        if let Value::Object(object) = item
            && let Some(key) = object.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned()
        {
            object.remove(&key);
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
        Some(item) => strip(item),
        None => {}
    }
}

/// What reading Users needs besides the people: group ids by name.
struct Groups {
    by_name: BTreeMap<String, Known>,
}

impl Groups {
    /// The groups with records: enough to name a person's groups, since
    /// any other group has the id its name gives it. Reading every group
    /// name (a scan of every membership) is for the group endpoints only.
    async fn records(state: &ScimState) -> Result<Groups, ScimError> {
        Groups::read(state, false).await
    }

    /// Every group, those only people name included.
    async fn load(state: &ScimState) -> Result<Groups, ScimError> {
        Groups::read(state, true).await
    }

    async fn read(state: &ScimState, every: bool) -> Result<Groups, ScimError> {
        let directory = Directory::new(&*state.db, state.schema.clone());
        let records = directory.group_records().await.map_err(directory_error)?;
        let names = if every {
            state.db.group_names().await.map_err(ScimError::internal)?
        } else {
            BTreeSet::new()
        };
        let by_name = group::known(records, names)
            .into_iter()
            .map(|k| (k.name.clone(), k))
            .collect();
        Ok(Groups { by_name })
    }

    fn of(&self, person: &Person) -> Vec<(String, String)> {
        person
            .groups
            .iter()
            .map(|name| {
                let id = match self.by_name.get(name) {
                    Some(known) => known.id.clone(),
                    None => {
                        group::unrecorded_id(name, |id| self.by_name.values().any(|k| k.id == id))
                    }
                };
                (id, name.clone())
            })
            .collect()
    }

    fn by_id(&self, id: &str) -> Option<&Known> {
        self.by_name.values().find(|k| k.id == id)
    }
}

/// RFC 3339 of a time in milliseconds since the epoch.
fn rfc3339(at: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

async fn user_json(
    state: &ScimState,
    person: &Person,
    groups: &Groups,
) -> Result<Value, ScimError> {
    let change = state
        .db
        .change(person.changed_seq)
        .await
        .map_err(ScimError::internal)?;
    let modified = change.map(|c| rfc3339(c.at));
    Ok(user::to_scim(
        person,
        &groups.of(person),
        &state.base,
        modified.as_deref(),
    ))
}

async fn live(state: &ScimState, id: &str) -> Result<Person, ScimError> {
    let directory = Directory::new(&*state.db, state.schema.clone());
    directory
        .person(id)
        .await
        .map_err(directory_error)?
        .filter(|p| !p.deleted)
        .ok_or_else(|| ScimError::not_found("User", id))
}

/// A fresh resource id: 122 random bits, as a UUID.
fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        (bytes[8] & 0x3) | 0x8,
        &hex[17..20],
        &hex[20..32]
    )
}

/// Writes `person` read at `expected` and answers with the User.
async fn write_user(
    state: &ScimState,
    caller: &Caller,
    person: Person,
    expected: Option<i64>,
    kind: &str,
) -> Result<Person, ScimError> {
    let directory = state.directory(caller);
    match directory
        .put(&person, expected, kind)
        .await
        .map_err(directory_error)?
    {
        Put::Written(person) => {
            state.kick.notify_one();
            Ok(person)
        }
        Put::Unchanged(person) => Ok(person),
        Put::Stale => Err(ScimError::stale()),
        Put::Taken(_) => Err(ScimError::uniqueness(format!(
            "another User has the userName {:?}",
            person
                .attributes
                .get("user_name")
                .map(String::as_str)
                .unwrap_or_default()
        ))),
    }
}

async fn create_user(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let fields = user::from_scim(&body, &state.schema)?;
    if !fields.attributes.contains_key("user_name") {
        return Err(ScimError::invalid_value("a User needs a userName"));
    }
    let person = Person {
        id: new_id(),
        enabled: fields.active.unwrap_or(true),
        population: None,
        groups: BTreeSet::new(),
        attributes: fields.attributes,
        deleted: false,
        changed_seq: 0,
    };
    let _writing = state.writes.lock().await;
    let person = write_user(&state, &caller, person, None, "create").await?;
    user_answer(&state, &person, StatusCode::CREATED, None).await
}

async fn get_user(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&params)?;
    let person = live(&state, &id).await?;
    user_answer(&state, &person, StatusCode::OK, Some(&query)).await
}

/// Replaces a User's attributes, keeping their id, groups and (unless
/// given) their enabled flag.
async fn replace_user(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let fields = user::from_scim(&body, &state.schema)?;
    if !fields.attributes.contains_key("user_name") {
        return Err(ScimError::invalid_value("a User needs a userName"));
    }
    let _writing = state.writes.lock().await;
    let person = rewrite(&state, &caller, &id, &headers, |_, _| Ok(fields.clone())).await?;
    user_answer(&state, &person, StatusCode::OK, None).await
}

/// The User as an answer, with its ETag, cut to what `query` asks for.
async fn user_answer(
    state: &ScimState,
    person: &Person,
    status: StatusCode,
    query: Option<&ListQuery>,
) -> Result<Response, ScimError> {
    let groups = Groups::records(state).await?;
    let mut body = user_json(state, person, &groups).await?;
    if let Some(query) = query {
        body = project(body, query);
    }
    Ok(answer(
        status,
        &body,
        Some(&user::version_tag(person.changed_seq)),
    ))
}

/// How often a write without `If-Match` is tried again when someone else
/// (a command in another process) changed the person between its read and
/// its write.
const ATTEMPTS: usize = 3;

/// Reads a live person, asks `change` for their new fields (given the
/// person as read and the User that shows them), and writes them back
/// conditionally. A person's attributes that the directory no longer
/// declares cannot be shown over SCIM, so are kept as they are.
async fn rewrite(
    state: &ScimState,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    change: impl Fn(&Person, Value) -> Result<user::UserFields, ScimError>,
) -> Result<Person, ScimError> {
    let conditional = headers.contains_key(header::IF_MATCH);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = live(state, id).await?;
        check_if_match(headers, &user::version_tag(current.changed_seq))?;
        let (known, unknown): (BTreeMap<_, _>, BTreeMap<_, _>) = current
            .attributes
            .clone()
            .into_iter()
            .partition(|(name, _)| state.schema.contains(name));
        let shown = Person {
            attributes: known,
            ..current.clone()
        };
        let mut resource = user::to_scim(&shown, &[], &state.base, None);
        if let Value::Object(object) = &mut resource {
            object.remove("meta");
        }
        let mut fields = change(&current, resource)?;
        fields.attributes.extend(unknown);
        let person = Person {
            enabled: fields.active.unwrap_or(current.enabled),
            attributes: fields.attributes,
            ..current.clone()
        };
        match write_user(state, caller, person, Some(current.changed_seq), "update").await {
            Err(stale)
                if stale.status == StatusCode::PRECONDITION_FAILED
                    && !conditional
                    && attempt < ATTEMPTS => {}
            written => return written,
        }
    }
}

/// The most operations, and the most values in all, one PATCH may carry:
/// applying them holds every other write back.
const MAX_OPERATIONS: usize = 1000;

/// The operations of a PATCH request, checked.
fn operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "a PATCH body must be a JSON object",
        ));
    };
    let listed = field(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP)))
        });
    if !listed {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("a PATCH body needs \"schemas\": [\"{PATCH_OP}\"]"),
        ));
    }
    let Some(Value::Array(operations)) = field(body, "Operations") else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "a PATCH body needs an Operations array",
        ));
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "a PATCH may carry at most {MAX_OPERATIONS} operations"
        )));
    }
    let values: usize = operations
        .iter()
        .filter_map(|o| o.as_object().and_then(|o| field(o, "value")))
        .map(|v| v.as_array().map_or(1, Vec::len))
        .sum();
    if values > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "a PATCH may carry at most {MAX_OPERATIONS} values (members, emails, ...) in all; send more in several"
        )));
    }
    operations
        .iter()
        .map(|operation| {
            let Value::Object(operation) = operation else {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    "each operation must be an object",
                ));
            };
            let name = field(operation, "op")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let op = Op::parse(name).ok_or_else(|| {
                ScimError::bad(
                    "invalidSyntax",
                    format!(
                        "op must be add, replace or remove, not {:?}",
                        crate::inert::inert(name)
                    ),
                )
            })?;
            let path = match field(operation, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) => Some(
                    patch::parse_path(path).map_err(|e| ScimError::bad(e.scim_type, e.message))?,
                ),
                Some(_) => return Err(ScimError::bad("invalidPath", "path must be a string")),
            };
            Ok((op, path, field(operation, "value").cloned()))
        })
        .collect()
}

/// A PATCH without a path may restate what cannot change (Okta sends a
/// group's `id` with its new name): an `id` equal to the resource's own,
/// `meta` and `schemas` are dropped, so that only a real change of them is
/// refused.
fn without_read_only(mut operations: Vec<Operation>, id: &str) -> Vec<Operation> {
    for (_, path, value) in &mut operations {
        if path.is_none()
            && let Some(Value::Object(object)) = value
        {
            object.retain(|key, value| {
                !(key.eq_ignore_ascii_case("meta")
                    || key.eq_ignore_ascii_case("schemas")
                    || (key.eq_ignore_ascii_case("id") && value.as_str() == Some(id)))
            });
        }
    }
    operations
}

/// One PATCH operation: what, where, with what.
type Operation = (Op, Option<patch::PatchPath>, Option<Value>);

/// Applies `operations` to `resource`.
fn apply_all(resource: &mut Value, operations: &[Operation]) -> Result<(), ScimError> {
    for (op, path, value) in operations {
        patch::apply(resource, *op, path.as_ref(), value.as_ref(), &exact)
            .map_err(|e| ScimError::bad(e.scim_type, e.message))?;
    }
    Ok(())
}

async fn patch_user(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let operations = without_read_only(operations(&body)?, &id);
    let _writing = state.writes.lock().await;
    let person = rewrite(&state, &caller, &id, &headers, |current, mut resource| {
        // Groups are changed through /Groups: left out, a PATCH cannot
        // touch them.
        apply_all(&mut resource, &operations)?;
        if resource
            .as_object()
            .and_then(|o| field(o, "groups"))
            .is_some()
        {
            return Err(ScimError::bad(
                "mutability",
                "a User's groups are read-only; change them through /Groups",
            ));
        }
        let mut fields = user::from_scim(&resource, &state.schema)?;
        // A userName shown for someone without one stays unwritten unless
        // the PATCH changed it.
        let standing = user::standing_user_name(current);
        if !current.attributes.contains_key("user_name")
            && fields.attributes.get("user_name") == Some(&standing)
        {
            fields.attributes.remove("user_name");
        } else if !fields.attributes.contains_key("user_name") {
            return Err(ScimError::invalid_value("a User needs a userName"));
        }
        Ok(fields)
    })
    .await?;
    user_answer(&state, &person, StatusCode::OK, None).await
}

async fn delete_user(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let _writing = state.writes.lock().await;
    let current = live(&state, &id).await?;
    check_if_match(&headers, &user::version_tag(current.changed_seq))?;
    state
        .directory(&caller)
        .delete(&id)
        .await
        .map_err(directory_error)?;
    state.kick.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How many people a scan reads at a time.
const SCAN: usize = 2000;

async fn list_users(
    State(state): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&params)?;
    let groups = Groups::records(&state).await?;
    let directory = Directory::new(&*state.db, state.schema.clone());
    let indexed = query
        .filter
        .as_ref()
        .and_then(Filter::equality)
        .and_then(|(path, value)| {
            let core = path
                .schema
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(USER));
            let key = if path.name.eq_ignore_ascii_case("userName") {
                Key::UserName
            } else if path.name.eq_ignore_ascii_case("externalId") {
                Key::ExternalId
            } else {
                return None;
            };
            (core && path.sub.is_none()).then(|| (key, value.to_string()))
        });
    // Every candidate is matched as the User it reads as; only the page's
    // people are kept, and read in full (with `lastModified`) at the end.
    let mut matched: Vec<Person> = Vec::new();
    let mut total = 0;
    let mut consider = |people: &[Person]| -> Result<(), ScimError> {
        for person in people.iter().filter(|p| !p.deleted) {
            let matches = query.filter.is_none() || {
                let resource = user::to_scim(person, &groups.of(person), &state.base, None);
                query.matches(&resource)?
            };
            if matches {
                total += 1;
                if total >= query.start && matched.len() < query.count {
                    matched.push(person.clone());
                }
            }
        }
        Ok(())
    };
    match indexed {
        Some((key, value)) => consider(
            &directory
                .people_by(key, &value)
                .await
                .map_err(directory_error)?,
        )?,
        None => {
            let mut after: Option<String> = None;
            let mut read = 0;
            loop {
                let page = state
                    .db
                    .people_after(after.as_deref(), Some(SCAN))
                    .await
                    .map_err(ScimError::internal)?;
                let Some(last) = page.last().map(|p| p.id.clone()) else {
                    break;
                };
                read += page.len();
                if read > state.max_scan && query.filter.is_some() {
                    return Err(ScimError::bad(
                        "tooMany",
                        format!(
                            "this filter is answered by reading every User, and there are more than {} ([scim] max_scan); filter by userName eq or externalId eq, which are looked up without reading everyone",
                            state.max_scan
                        ),
                    ));
                }
                consider(&page)?;
                after = Some(last);
            }
        }
    }
    let mut resources = Vec::with_capacity(matched.len());
    for person in &matched {
        resources.push(project(user_json(&state, person, &groups).await?, &query));
    }
    Ok(answer(
        StatusCode::OK,
        &discovery::page(resources, total, query.start),
        None,
    ))
}

// Groups.

async fn group_members(state: &ScimState, name: &str) -> Result<Vec<(String, String)>, ScimError> {
    let ids = state
        .db
        .members_of(name)
        .await
        .map_err(ScimError::internal)?;
    let people = state
        .db
        .people_among(&ids)
        .await
        .map_err(ScimError::internal)?;
    Ok(people
        .into_iter()
        .filter(|p| !p.deleted)
        .map(|p| {
            let display = p
                .attributes
                .get("display_name")
                .or_else(|| p.attributes.get("user_name"))
                .cloned()
                .unwrap_or_default();
            (p.id, display)
        })
        .collect())
}

async fn known_group(state: &ScimState, id: &str) -> Result<Known, ScimError> {
    Groups::load(state)
        .await?
        .by_id(id)
        .cloned()
        .ok_or_else(|| ScimError::not_found("Group", id))
}

async fn group_json(state: &ScimState, group: &Known) -> Result<Value, ScimError> {
    let members = group_members(state, &group.name).await?;
    let tag = group::version_tag(group, &members);
    Ok(group::to_scim(group, &members, &state.base, &tag))
}

/// A group's entity tag; a group without a record is read for it.
async fn group_tag(state: &ScimState, group: &Known) -> Result<String, ScimError> {
    if group.record.is_some() {
        return Ok(group::version_tag(group, &[]));
    }
    Ok(group::version_tag(
        group,
        &group_members(state, &group.name).await?,
    ))
}

/// A group without its members, at its version.
async fn bare_group(state: &ScimState, group: &Known) -> Result<Value, ScimError> {
    let tag = group_tag(state, group).await?;
    Ok(group::to_scim(group, &[], &state.base, &tag))
}

/// The entity tag a group answer carries.
fn tag_of(body: &Value) -> Option<&str> {
    body["meta"]["version"].as_str()
}

/// Writes a group and answers with it.
async fn write_group(
    state: &ScimState,
    caller: &Caller,
    write: GroupWrite,
    status: StatusCode,
) -> Result<Response, ScimError> {
    let directory = state.directory(caller);
    let record = match directory.put_group(&write).await.map_err(directory_error)? {
        GroupPut::Written(record) => record,
        GroupPut::Stale => return Err(ScimError::stale()),
        GroupPut::Taken => {
            return Err(ScimError::uniqueness(format!(
                "another Group is named {:?}",
                write.record.name
            )));
        }
        GroupPut::NoPerson(id) => {
            return Err(ScimError::invalid_value(format!(
                "member {:?} is no User of this service provider",
                crate::inert::inert(&id)
            )));
        }
    };
    state.kick.notify_one();
    let known = Known {
        id: record.id.clone(),
        name: record.name.clone(),
        record: Some(record),
    };
    let body = group_json(state, &known).await?;
    Ok(answer(status, &body, tag_of(&body)))
}

fn record_for(
    known: Option<&Known>,
    id: String,
    name: String,
    external_id: Option<String>,
) -> GroupRecord {
    let now = crate::state::now_ms();
    GroupRecord {
        id,
        name,
        external_id,
        created_at: known
            .and_then(|k| k.record.as_ref())
            .map_or(now, |r| r.created_at),
        changed_at: now,
        version: known
            .and_then(|k| k.record.as_ref())
            .map_or(0, |r| r.version),
    }
}

async fn create_group(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let fields = group::from_scim(&body)?;
    let _writing = state.writes.lock().await;
    let groups = Groups::load(&state).await?;
    if groups.by_name.contains_key(&fields.name) {
        return Err(ScimError::uniqueness(format!(
            "a Group named {:?} exists",
            fields.name
        )));
    }
    let write = GroupWrite {
        record: record_for(
            None,
            format!("g-{}", new_id()),
            fields.name,
            fields.external_id,
        ),
        expected: None,
        renamed_from: None,
        members: Members::Edit {
            add: fields.members,
            remove: BTreeSet::new(),
        },
    };
    write_group(&state, &caller, write, StatusCode::CREATED).await
}

async fn get_group(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&params)?;
    let group = known_group(&state, &id).await?;
    let body = if query.leaves_out("members") {
        bare_group(&state, &group).await?
    } else {
        group_json(&state, &group).await?
    };
    let tag = tag_of(&body).map(str::to_string);
    Ok(answer(
        StatusCode::OK,
        &project(body, &query),
        tag.as_deref(),
    ))
}

async fn list_groups(
    State(state): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&params)?;
    let groups = Groups::load(&state).await?;
    let needs_members = query
        .filter
        .as_ref()
        .is_some_and(|f| mentions(f, "members"));
    // Entra ID asks `id eq "g" and members[value eq "u"]`: the part that
    // does not look at members rules out every other group unread.
    let first = query.filter.as_ref().and_then(without_members);
    let mut total = 0;
    let mut resources = Vec::new();
    for group in groups.by_name.values() {
        // Filters on `meta` are refused, so a resource is matched without
        // its tag, which costs a group without a record a read; the page's
        // resources get theirs.
        if let Some(first) = first.as_ref().filter(|_| needs_members) {
            let bare = group::to_scim(group, &[], &state.base, "");
            let possible = first
                .matches(&bare, &exact)
                .map_err(|e| ScimError::bad("invalidFilter", e.0))?;
            if !possible {
                continue;
            }
        }
        let resource = if needs_members {
            group_json(&state, group).await?
        } else {
            group::to_scim(group, &[], &state.base, "")
        };
        if !query.matches(&resource)? {
            continue;
        }
        total += 1;
        if total < query.start || resources.len() >= query.count {
            continue;
        }
        let resource = if needs_members {
            resource
        } else if query.leaves_out("members") {
            bare_group(&state, group).await?
        } else {
            group_json(&state, group).await?
        };
        resources.push(project(resource, &query));
    }
    Ok(answer(
        StatusCode::OK,
        &discovery::page(resources, total, query.start),
        None,
    ))
}

async fn replace_group(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let fields = group::from_scim(&body)?;
    let _writing = state.writes.lock().await;
    let current = known_group(&state, &id).await?;
    check_if_match(&headers, &group_tag(&state, &current).await?)?;
    let write = GroupWrite {
        record: record_for(
            Some(&current),
            current.id.clone(),
            fields.name,
            fields.external_id,
        ),
        expected: current.record.as_ref().map(|r| r.version),
        renamed_from: Some(current.name.clone()),
        members: Members::Replace(fields.members),
    };
    write_group(&state, &caller, write, StatusCode::OK).await
}

async fn patch_group(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ScimError> {
    let operations = without_read_only(operations(&body)?, &id);
    let _writing = state.writes.lock().await;
    let current = known_group(&state, &id).await?;
    check_if_match(&headers, &group_tag(&state, &current).await?)?;
    let before = group_json(&state, &current).await?;
    let mut resource = before.clone();
    if let Value::Object(object) = &mut resource {
        object.remove("meta");
    }
    apply_all(&mut resource, &operations)?;
    let fields = group::from_scim(&resource)?;
    let had = group::member_ids(&before["members"])?;
    let write = GroupWrite {
        record: record_for(
            Some(&current),
            current.id.clone(),
            fields.name,
            fields.external_id,
        ),
        expected: current.record.as_ref().map(|r| r.version),
        renamed_from: Some(current.name.clone()),
        members: Members::Edit {
            add: fields.members.difference(&had).cloned().collect(),
            remove: had.difference(&fields.members).cloned().collect(),
        },
    };
    write_group(&state, &caller, write, StatusCode::OK).await
}

async fn delete_group(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let _writing = state.writes.lock().await;
    let current = known_group(&state, &id).await?;
    check_if_match(&headers, &group_tag(&state, &current).await?)?;
    state
        .directory(&caller)
        .delete_group(&current.id, &current.name)
        .await
        .map_err(directory_error)?;
    state.kick.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Discovery.

async fn service_provider_config(State(state): State<Shared>) -> Response {
    answer(
        StatusCode::OK,
        &discovery::service_provider_config(&state.base),
        None,
    )
}

async fn resource_types(State(state): State<Shared>) -> Response {
    answer(
        StatusCode::OK,
        &discovery::list(discovery::resource_types(&state.base)),
        None,
    )
}

async fn resource_type(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    discovery::resource_types(&state.base)
        .into_iter()
        .find(|t| t["id"] == id.as_str())
        .map(|t| answer(StatusCode::OK, &t, None))
        .ok_or_else(|| ScimError::not_found("ResourceType", &id))
}

async fn schemas(State(state): State<Shared>) -> Response {
    answer(
        StatusCode::OK,
        &discovery::list(discovery::schemas(&state.schema, &state.base)),
        None,
    )
}

async fn schema(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    discovery::schemas(&state.schema, &state.base)
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&id))
        })
        .map(|s| answer(StatusCode::OK, &s, None))
        .ok_or_else(|| ScimError::not_found("Schema", &id))
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ScimError {
    ScimError::new(
        StatusCode::NOT_FOUND,
        None,
        format!(
            "no SCIM endpoint {method} {}; this service provider serves /Users, /Groups, /ServiceProviderConfig, /ResourceTypes and /Schemas under /scim/v2",
            crate::inert::inert(uri.path())
        ),
    )
}

/// Outside `/scim/v2`, before any token is checked: nothing said.
async fn nowhere() -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, None, "not found")
}

/// Turns axum's own refusals (a method not allowed, a bad query string)
/// into SCIM error bodies.
async fn scim_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(MEDIA_TYPE.as_bytes()));
    if response.status().is_success() || is_scim {
        return response;
    }
    let status = response.status();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed here"),
        _ => {
            let bytes: Bytes = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let scim_type = (status == StatusCode::BAD_REQUEST).then_some("invalidValue");
    ScimError::new(status, scim_type, detail).into_response()
}

pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .fallback(not_found)
        .layer(middleware::from_fn(scim_errors))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state);
    Router::new().nest("/scim/v2", api).fallback(nowhere)
}
