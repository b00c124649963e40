//! SCIM PATCH (RFC 7644 §3.5.2): operation paths and their application to
//! a resource held as JSON.
//!
//! This module knows no schema, so that one implementation serves Users,
//! Groups and any extension: it never converts a value's type (the caller
//! does, by schema) and refuses only what no schema could allow, a write to
//! `id`, `meta` or `schemas`. Paths and values come from an HTTP request,
//! so parsing is bounded and a refusal is a [`PatchError`] carrying the
//! `scimType` of the 400 answer; nothing here panics.

use serde_json::{Map, Value};

use super::filter::{self, AttrPath, CompareOp, Filter, FilterError, Literal, MAX_DEPTH, MAX_LEN};

/// Why an operation cannot be carried out: `scim_type` is the RFC 7644
/// Table 9 keyword the 400 answer carries ("invalidPath", "noTarget",
/// "invalidValue", "invalidSyntax", "invalidFilter" or "mutability").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatchError {
    pub scim_type: &'static str,
    pub message: String,
}

impl PatchError {
    fn new(scim_type: &'static str, message: impl Into<String>) -> Self {
        PatchError {
            scim_type,
            message: message.into(),
        }
    }
}

fn invalid_path(message: impl Into<String>) -> PatchError {
    PatchError::new("invalidPath", message)
}

fn no_target(message: impl Into<String>) -> PatchError {
    PatchError::new("noTarget", message)
}

fn invalid_value(message: impl Into<String>) -> PatchError {
    PatchError::new("invalidValue", message)
}

fn invalid_filter(error: FilterError) -> PatchError {
    PatchError::new("invalidFilter", error.0)
}

/// A PATCH path: `attr`, then optionally a value filter over its elements
/// and a sub-attribute of the matching elements.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub: Option<String>,
}

/// Parses a PATCH path such as `name.givenName`,
/// `emails[type eq "work"].value` or `urn:…:enterprise:2.0:User:manager.value`.
pub fn parse_path(text: &str) -> Result<PatchPath, PatchError> {
    if text.len() > MAX_LEN {
        return Err(invalid_path(format!("path is longer than {MAX_LEN} bytes")));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid_path("empty path"));
    }
    let Some(open) = text.find('[') else {
        let attr = AttrPath::parse(text).map_err(|e| invalid_path(e.0))?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    };
    let attr = AttrPath::parse(text[..open].trim_end()).map_err(|e| invalid_path(e.0))?;
    if attr.sub.is_some() {
        return Err(invalid_path(format!(
            "path {text:?}: a value filter applies to a multi-valued attribute, not a sub-attribute"
        )));
    }
    let close = closing_bracket(text, open + 1).ok_or_else(|| {
        PatchError::new(
            "invalidFilter",
            format!("path {text:?}: '[' has no closing ']'"),
        )
    })?;
    let filter = filter::parse_value_filter(&text[open + 1..close]).map_err(|e| {
        invalid_filter(FilterError(format!(
            "path {text:?}: in the value filter, {e}"
        )))
    })?;
    let rest = &text[close + 1..];
    let sub = match rest.strip_prefix('.') {
        None if rest.is_empty() => None,
        Some(sub) if filter::is_attr_name(sub) => Some(sub.to_string()),
        _ => {
            return Err(invalid_path(format!(
                "path {text:?}: only '.subAttribute' may follow ']'"
            )));
        }
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// The byte offset of the first `]` from `from` that is not inside a JSON
/// string, where a bracket is only text.
fn closing_bracket(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b']' if !in_string => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A PATCH operation's `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

impl Op {
    /// Case-insensitive, since Entra ID sends "Add" and "Replace".
    pub fn parse(name: &str) -> Option<Op> {
        [
            ("add", Op::Add),
            ("replace", Op::Replace),
            ("remove", Op::Remove),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, op)| op)
    }
}

/// Applies one PATCH operation to `resource` (a SCIM resource as JSON)
/// per RFC 7644 §3.5.2. `exact` is the caller's case-exactness rule, for
/// value filters and for matching the values a `remove` names.
pub fn apply(
    resource: &mut Value,
    op: Op,
    path: Option<&PatchPath>,
    value: Option<&Value>,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    let Some(root) = resource.as_object_mut() else {
        return Err(PatchError::new(
            "invalidSyntax",
            "the resource is not a JSON object",
        ));
    };
    match path {
        Some(path) => apply_path(root, op, path, value, exact),
        None => apply_without_path(root, op, value, exact),
    }
}

/// Without a path the value's keys are the paths (RFC 7644 §3.5.2.1 and
/// .3); Entra ID sends dotted and filtered keys there too.
fn apply_without_path(
    root: &mut Map<String, Value>,
    op: Op,
    value: Option<&Value>,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    if op == Op::Remove {
        return Err(no_target("remove needs a path"));
    }
    let Some(Value::Object(entries)) = value else {
        return Err(invalid_value(
            "an operation without a path needs an object value",
        ));
    };
    for (key, entry) in entries {
        match entry {
            // The core schema's attributes are top-level.
            Value::Object(inner) if filter::is_core_schema(key) => {
                for (key, entry) in inner {
                    apply_entry(root, op, key, entry, exact)?;
                }
            }
            _ => apply_entry(root, op, key, entry, exact)?,
        }
    }
    Ok(())
}

fn apply_entry(
    root: &mut Map<String, Value>,
    op: Op,
    key: &str,
    entry: &Value,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    if key.eq_ignore_ascii_case("schemas") {
        // Clients echo it; the server, not the client, keeps it.
        return Ok(());
    }
    if key.eq_ignore_ascii_case("id") || key.eq_ignore_ascii_case("meta") {
        // Echoed unchanged is harmless; changed is a refusal.
        return match filter::field(root, key) {
            Some(current) if current == entry => Ok(()),
            _ => Err(read_only(key)),
        };
    }
    if is_extension_key(root, key) {
        if !(entry.is_object() || entry.is_null()) {
            return Err(invalid_value(format!("extension {key:?} takes an object")));
        }
        return write(root, key, op, Some(entry), false);
    }
    if filter::is_core_schema(key) {
        return Err(invalid_value(format!("{key:?} takes an object")));
    }
    let path = parse_path(key)?;
    apply_path(root, op, &path, Some(entry), exact)
}

fn read_only(name: &str) -> PatchError {
    PatchError::new("mutability", format!("attribute {name:?} is read-only"))
}

/// Whether a URN names an extension object rather than one of its
/// attributes. The last `:` cannot tell (`…:2.0:User` and `…:User:title`
/// look alike), so: the resource has it or lists it in `schemas`, or it
/// ends like a schema URN, a version and then a resource type.
fn is_extension_key(root: &Map<String, Value>, key: &str) -> bool {
    let is_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !is_urn || filter::is_core_schema(key) {
        return false;
    }
    if filter::field(root, key).is_some_and(Value::is_object) {
        return true;
    }
    let listed = match filter::field(root, "schemas") {
        Some(Value::Array(schemas)) => schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(key))),
        _ => false,
    };
    let versioned = key.rsplit(':').nth(1).is_some_and(|v| {
        v.starts_with(|c: char| c.is_ascii_digit())
            && v.chars().all(|c| c.is_ascii_digit() || c == '.')
    });
    listed || versioned
}

fn apply_path(
    root: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    let attr = &path.attr;
    let top_level = attr.schema.as_deref().is_none_or(filter::is_core_schema);
    if top_level
        && ["id", "meta", "schemas"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&attr.name))
    {
        return Err(read_only(&attr.name));
    }
    if op != Op::Remove && value.is_none() {
        return Err(needs_value(op));
    }
    let whole = path.filter.is_none() && path.sub.is_none() && attr.sub.is_none();
    if let (Some(schema), true) = (&attr.schema, whole) {
        let urn = format!("{schema}:{}", attr.name);
        if filter::is_core_schema(&urn) {
            return match op {
                Op::Remove => Err(invalid_path("the core schema cannot be removed")),
                _ => apply_without_path(root, op, value, exact),
            };
        }
        if is_extension_key(root, &urn) {
            return write(root, &urn, op, value, false);
        }
    }
    let Some(container) = container(root, attr, op != Op::Remove)? else {
        return Ok(());
    };
    match (&path.filter, &attr.sub) {
        (Some(value_filter), _) => filtered(container, op, path, value_filter, value, exact),
        (None, Some(sub)) => sub_attribute(container, op, attr, sub, value, exact),
        (None, None) => {
            let exact_value = exact(&with_value_sub(attr));
            write(container, &attr.name, op, value, exact_value)
        }
    }
}

/// `attr.value`: the path whose case rule decides which elements a remove
/// with a value names.
fn with_value_sub(attr: &AttrPath) -> AttrPath {
    AttrPath {
        sub: Some("value".to_string()),
        ..attr.clone()
    }
}

/// The object holding `attr`: the resource, or its extension object,
/// made when `create` and missing; None when missing and not made.
pub(crate) fn container<'a>(
    root: &'a mut Map<String, Value>,
    attr: &AttrPath,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, PatchError> {
    let Some(schema) = attr
        .schema
        .as_deref()
        .filter(|s| !filter::is_core_schema(s))
    else {
        return Ok(Some(root));
    };
    let key = existing_key(root, schema).unwrap_or_else(|| schema.to_string());
    if create && root.get(&key).is_none_or(Value::is_null) {
        root.insert(key.clone(), Value::Object(Map::new()));
    }
    match root.get_mut(&key) {
        Some(Value::Object(extension)) => Ok(Some(extension)),
        Some(Value::Null) | None => Ok(None),
        Some(_) if !create => Ok(None),
        Some(_) => Err(no_target(format!("extension {schema:?} is not an object"))),
    }
}

/// One operation on `map[key]`, the value whole.
fn write(
    map: &mut Map<String, Value>,
    key: &str,
    op: Op,
    value: Option<&Value>,
    exact_value: bool,
) -> Result<(), PatchError> {
    match (op, value) {
        (Op::Remove, value) => {
            remove_value(map, key, value, exact_value);
            Ok(())
        }
        (op, Some(value)) => set(map, key, op, value, 0),
        (op, None) => Err(needs_value(op)),
    }
}

fn needs_value(op: Op) -> PatchError {
    invalid_value(format!("{op:?} needs a value").to_lowercase())
}

/// A value as the elements it adds to, or removes from, an array.
fn elements(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// Adds or replaces (RFC 7644 §3.5.2.1, .3): a complex attribute takes the
/// sub-attributes given and keeps the rest; a multi-valued one gains the
/// elements it lacks, or on replace is replaced whole; a simple one is set.
/// Null is unassigned (RFC 7643 §2.5), so it removes.
fn set(
    map: &mut Map<String, Value>,
    key: &str,
    op: Op,
    value: &Value,
    depth: usize,
) -> Result<(), PatchError> {
    if depth > MAX_DEPTH {
        return Err(invalid_value(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )));
    }
    if value.is_null() {
        remove_ci(map, key);
        return Ok(());
    }
    match (op, get_mut_ci(map, key), value) {
        (_, Some(Value::Object(existing)), Value::Object(new)) => {
            for (sub, sub_value) in new {
                set(existing, sub, op, sub_value, depth + 1)?;
            }
        }
        (Op::Add, Some(Value::Array(items)), _) => {
            let mut added = Vec::new();
            for element in elements(value) {
                if !items.contains(element) {
                    items.push(element.clone());
                    added.push(items.len() - 1);
                }
            }
            demote_primaries(items, &added);
        }
        (_, Some(slot @ Value::Array(_)), _) => *slot = Value::Array(elements(value).to_vec()),
        (_, Some(slot), _) => *slot = value.clone(),
        (_, None, _) => {
            map.insert(key.to_string(), value.clone());
        }
    }
    Ok(())
}

/// RFC 7644 §3.5.2.2: the attribute goes, or with a value (as Azure sends
/// for group members) only the elements that value names. Absent is done.
fn remove_value(map: &mut Map<String, Value>, key: &str, value: Option<&Value>, exact_value: bool) {
    let targets = match value {
        None | Some(Value::Null) => {
            remove_ci(map, key);
            return;
        }
        Some(value) => elements(value),
    };
    let named = |item: &Value| targets.iter().any(|t| same_element(item, t, exact_value));
    let gone = match get_mut_ci(map, key) {
        None => false,
        Some(Value::Array(items)) => {
            items.retain(|item| !named(item));
            items.is_empty()
        }
        Some(single) => named(single),
    };
    if gone {
        remove_ci(map, key);
    }
}

/// Whether `target`, an element a remove names, is `item`: equal, or with
/// the same `value` sub-attribute (a member named by id alone).
fn same_element(item: &Value, target: &Value, exact_value: bool) -> bool {
    let key = |v: &'_ Value| -> Option<Value> {
        match v {
            Value::Object(_) => filter::get_ci(v, "value").cloned(),
            other => Some(other.clone()),
        }
    };
    if item == target {
        return true;
    }
    match (key(item), key(target)) {
        (Some(Value::String(a)), Some(Value::String(b))) if !exact_value => {
            a.to_lowercase() == b.to_lowercase()
        }
        (Some(a), Some(b)) => !a.is_null() && a == b,
        _ => false,
    }
}

/// `name.sub`: on a complex attribute, its sub-attribute; on a
/// multi-valued one with no filter, that sub-attribute of every element.
fn sub_attribute(
    container: &mut Map<String, Value>,
    op: Op,
    attr: &AttrPath,
    sub: &str,
    value: Option<&Value>,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    let exact_value = exact(attr);
    match get_mut_ci(container, &attr.name) {
        Some(Value::Object(parent)) => write(parent, sub, op, value, exact_value),
        Some(Value::Array(items)) => {
            let mut written = false;
            for item in items.iter_mut() {
                if let Value::Object(element) = item {
                    write(element, sub, op, value, exact_value)?;
                    written = true;
                }
            }
            if written || op == Op::Remove {
                Ok(())
            } else {
                Err(no_target(format!("{:?} has no complex values", attr.name)))
            }
        }
        None | Some(Value::Null) if op == Op::Remove => Ok(()),
        None | Some(Value::Null) if value.is_some_and(Value::is_null) => Ok(()),
        None | Some(Value::Null) => {
            let mut parent = Map::new();
            write(&mut parent, sub, op, value, exact_value)?;
            insert_ci(container, &attr.name, Value::Object(parent));
            Ok(())
        }
        Some(_) if op == Op::Remove => Ok(()),
        Some(_) => Err(no_target(format!(
            "{:?} is not a complex attribute",
            attr.name
        ))),
    }
}

/// `name[filter]` and `name[filter].sub`: the elements the filter matches.
fn filtered(
    container: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value_filter: &Filter,
    value: Option<&Value>,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<(), PatchError> {
    let name = &path.attr.name;
    let element_exact = |inner: &AttrPath| exact(&path.attr.within(inner));
    let mut matched = Vec::new();
    match filter::field(container, name) {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if value_filter
                    .matches(item, &element_exact)
                    .map_err(invalid_filter)?
                {
                    matched.push(i);
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(_) if op == Op::Remove => return Ok(()),
        Some(_) => return Err(no_target(format!("{name:?} is not multi-valued"))),
    }
    if op == Op::Remove {
        remove_matched(container, path, &matched);
        return Ok(());
    }
    let Some(value) = value else {
        return Err(needs_value(op));
    };
    if matched.is_empty() {
        return add_element(container, path, value_filter, value);
    }
    let Some(Value::Array(items)) = get_mut_ci(container, name) else {
        return Ok(());
    };
    for &i in &matched {
        let Some(item) = items.get_mut(i) else {
            continue;
        };
        match (&path.sub, item) {
            (Some(sub), Value::Object(element)) => write(element, sub, op, Some(value), false)?,
            (Some(_), _) => {}
            (None, Value::Object(element)) => {
                let Value::Object(entries) = value else {
                    return Err(invalid_value(format!(
                        "{name:?} elements take an object value"
                    )));
                };
                for (sub, sub_value) in entries {
                    write(element, sub, op, Some(sub_value), false)?;
                }
            }
            (None, simple) => *simple = value.clone(),
        }
    }
    demote_primaries(items, &matched);
    Ok(())
}

fn remove_matched(container: &mut Map<String, Value>, path: &PatchPath, matched: &[usize]) {
    let Some(Value::Array(items)) = get_mut_ci(container, &path.attr.name) else {
        return;
    };
    if let Some(sub) = &path.sub {
        for &i in matched {
            if let Some(Value::Object(element)) = items.get_mut(i) {
                remove_ci(element, sub);
            }
        }
        return;
    }
    let mut index = 0;
    items.retain(|_| {
        index += 1;
        !matched.contains(&(index - 1))
    });
    if items.is_empty() {
        remove_ci(container, &path.attr.name);
    }
}

/// An add or replace whose filter matches nothing: Entra ID sends
/// `emails[type eq "work"].value` for a user with no work email and means
/// "make one". When the filter is `eq`s on sub-attributes, a new element
/// made of them satisfies it; any other filter leaves no target.
fn add_element(
    container: &mut Map<String, Value>,
    path: &PatchPath,
    value_filter: &Filter,
    value: &Value,
) -> Result<(), PatchError> {
    let name = &path.attr.name;
    let no_match = || no_target(format!("no value of {name:?} matches the filter"));
    let mut element = element_from(value_filter).ok_or_else(no_match)?;
    match (&path.sub, value) {
        (_, Value::Null) => return Ok(()),
        (Some(sub), value) => {
            insert_ci(&mut element, sub, value.clone());
        }
        (None, Value::Object(entries)) => {
            for (sub, sub_value) in entries {
                insert_ci(&mut element, sub, sub_value.clone());
            }
        }
        (None, _) => {
            return Err(invalid_value(format!(
                "{name:?} elements take an object value"
            )));
        }
    }
    if filter::field(container, name).is_none_or(Value::is_null) {
        insert_ci(container, name, Value::Array(Vec::new()));
    }
    let Some(Value::Array(items)) = get_mut_ci(container, name) else {
        return Err(no_match());
    };
    items.push(Value::Object(element));
    let new = items.len() - 1;
    demote_primaries(items, &[new]);
    Ok(())
}

/// The element a filter of `eq`s on sub-attributes describes, if it is one.
fn element_from(value_filter: &Filter) -> Option<Map<String, Value>> {
    let terms = match value_filter {
        Filter::And(terms) => terms.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut element = Map::new();
    for term in terms {
        let Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } = term
        else {
            return None;
        };
        if path.schema.is_some() || path.sub.is_some() {
            return None;
        }
        let json = match value {
            Literal::String(s) => Value::String(s.clone()),
            Literal::Number(n) => Value::Number(n.clone()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => return None,
        };
        // `type eq "a" and type eq "b"` describes no element.
        if element.insert(path.name.clone(), json).is_some() {
            return None;
        }
    }
    Some(element)
}

/// RFC 7644 §3.5.2: a value written as primary takes the flag from the
/// others, since at most one value may be primary (RFC 7643 §2.4).
fn demote_primaries(items: &mut [Value], written: &[usize]) {
    let is_primary = |v: &Value| filter::get_ci(v, "primary") == Some(&Value::Bool(true));
    let Some(&keep) = written
        .iter()
        .rev()
        .find(|&&i| items.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep
            && is_primary(item)
            && let Value::Object(element) = item
        {
            insert_ci(element, "primary", Value::Bool(false));
        }
    }
}

/// The key spelling `map` already uses for `key`, since names are
/// case-insensitive and a write keeps the resource's spelling.
fn existing_key(map: &Map<String, Value>, key: &str) -> Option<String> {
    if map.contains_key(key) {
        return Some(key.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

fn get_mut_ci<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    let key = existing_key(map, key)?;
    map.get_mut(&key)
}

fn remove_ci(map: &mut Map<String, Value>, key: &str) {
    if let Some(key) = existing_key(map, key) {
        map.remove(&key);
    }
}

fn insert_ci(map: &mut Map<String, Value>, key: &str, value: Value) {
    let key = existing_key(map, key).unwrap_or_else(|| key.to_string());
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// Member ids compare case-exactly; everything else case-blind.
    fn exact(path: &AttrPath) -> bool {
        path.name == "members" || path.name == "id"
    }

    /// Applies the operations of a PATCH request body's `Operations` in
    /// turn, as the server will.
    fn patch(mut resource: Value, operations: Value) -> Result<Value, PatchError> {
        for operation in operations.as_array().unwrap() {
            let op = Op::parse(operation["op"].as_str().unwrap()).unwrap();
            let path = match operation.get("path").and_then(Value::as_str) {
                Some(text) => Some(parse_path(text)?),
                None => None,
            };
            apply(
                &mut resource,
                op,
                path.as_ref(),
                operation.get("value"),
                &exact,
            )?;
        }
        Ok(resource)
    }

    fn scim_type(result: Result<Value, PatchError>) -> &'static str {
        match result {
            Err(e) => e.scim_type,
            Ok(v) => panic!("applied: {v}"),
        }
    }

    fn group() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba",
            "displayName": "Tour Guides",
            "members": [
                {"value": "2819c223", "display": "Babs Jensen"},
                {"value": "902c246b", "display": "Mandy Pepperidge"}
            ],
            "meta": {"resourceType": "Group"}
        })
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223",
            "userName": "bjensen",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "addresses": [
                {"type": "work", "streetAddress": "100 Universal Plaza", "locality": "Hollywood"}
            ]
        })
    }

    #[test]
    fn paths_parse_into_attribute_filter_and_sub_attribute() {
        let path = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(
            (path.attr.name.as_str(), path.sub.as_deref()),
            ("emails", Some("value"))
        );
        assert_eq!(
            path.filter,
            Some(filter::parse(r#"type eq "work""#).unwrap())
        );
        let path = parse_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!((path.attr.name.as_str(), path.sub), ("members", None));
        let path = parse_path(&format!("{ENTERPRISE}:manager.value")).unwrap();
        assert_eq!(
            path.attr,
            AttrPath::parse(&format!("{ENTERPRISE}:manager.value")).unwrap()
        );
        let path = parse_path("name.givenName").unwrap();
        assert_eq!(
            (path.attr.sub.as_deref(), path.filter),
            (Some("givenName"), None)
        );
        let path = parse_path(r#"emails[value eq "a]b"]"#).unwrap();
        assert!(path.filter.is_some());
        let cases = r#"
            => invalidPath
            emails[type eq "work"]x => invalidPath
            emails[type eq "work"].a.b => invalidPath
            name.givenName[type eq "x"] => invalidPath
            user name => invalidPath
            emails[type eq "work" => invalidFilter
            emails[type eqq "work"] => invalidFilter
            emails[value[type eq "x"]] => invalidFilter
            emails[] => invalidFilter
        "#;
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (text, expected) = line.split_once("=> ").unwrap();
            let error = parse_path(text.trim()).unwrap_err();
            assert_eq!(error.scim_type, expected, "{text}: {error}");
        }
        assert_eq!(
            parse_path(&"a".repeat(MAX_LEN + 1)).unwrap_err().scim_type,
            "invalidPath"
        );
        assert_eq!(
            parse_path(&"a[".repeat(5000)).unwrap_err().scim_type,
            "invalidFilter"
        );
    }

    #[test]
    fn op_names_are_case_blind() {
        assert_eq!(Op::parse("Add"), Some(Op::Add));
        assert_eq!(Op::parse("REPLACE"), Some(Op::Replace));
        assert_eq!(Op::parse("remove"), Some(Op::Remove));
        assert_eq!(Op::parse("move"), None);
    }

    #[test]
    fn rfc_7644_add_examples() {
        let new_member = json!({"display": "Babs", "$ref": "https://x/Users/1", "value": "1"});
        let ops = json!([{"op": "add", "path": "members", "value": [new_member]}]);
        let added = patch(group(), ops.clone()).unwrap();
        assert_eq!(added["members"].as_array().unwrap().len(), 3);
        // Adding what is there already changes nothing.
        assert_eq!(patch(added.clone(), ops).unwrap(), added);
        let value =
            json!({"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickName": "Babs"});
        let user = patch(user(), json!([{"op": "add", "value": value}])).unwrap();
        assert_eq!(user["emails"].as_array().unwrap().len(), 2);
        assert_eq!(user["nickName"], "Babs");
        let name = json!({"middleName": "Ann", "givenName": "Babs"});
        let ops = json!([{"op": "add", "path": "name", "value": name}]);
        let user = patch(user, ops).unwrap();
        assert_eq!(
            user["name"],
            json!({"givenName": "Babs", "familyName": "Jensen", "middleName": "Ann"})
        );
    }

    #[test]
    fn rfc_7644_remove_examples() {
        let all = patch(group(), json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(all.get("members"), None);
        let one = json!([{"op": "remove", "path": "members[value eq \"2819c223\"]"}]);
        let one = patch(group(), one).unwrap();
        assert_eq!(
            one["members"],
            json!([{"value": "902c246b", "display": "Mandy Pepperidge"}])
        );
        let filter = r#"emails[type eq "work" and value ew "EXAMPLE.COM"]"#;
        let user = patch(user(), json!([{"op": "remove", "path": filter}])).unwrap();
        assert_eq!(user.get("emails"), None);
        let sub = r#"addresses[type eq "work"].locality"#;
        let user = patch(user, json!([{"op": "remove", "path": sub}])).unwrap();
        assert_eq!(user["addresses"][0].get("locality"), None);
        // Removing what is not there is done already.
        let again =
            json!([{"op": "remove", "path": "nickName"}, {"op": "remove", "path": "x[a eq 1]"}]);
        assert_eq!(patch(user.clone(), again).unwrap(), user);
        assert_eq!(
            scim_type(patch(user, json!([{"op": "remove"}]))),
            "noTarget"
        );
    }

    #[test]
    fn rfc_7644_replace_examples() {
        let members = json!([{"display": "James", "value": "08e1d05d"}]);
        let ops = json!([{"op": "replace", "path": "members", "value": members}]);
        assert_eq!(patch(group(), ops).unwrap()["members"], members);
        let address = json!({"type": "work", "streetAddress": "911 Universal City Plaza"});
        let ops =
            json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": address}]);
        let user = patch(user(), ops).unwrap();
        let expected = json!([
            {"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood"}
        ]);
        assert_eq!(user["addresses"], expected);
        let path = "addresses[type eq \"work\"].streetAddress";
        let user = patch(
            user,
            json!([{"op": "replace", "path": path, "value": "1010 Broadway"}]),
        )
        .unwrap();
        assert_eq!(user["addresses"][0]["streetAddress"], "1010 Broadway");
        let value =
            json!({"emails": [{"value": "b@jensen.org", "type": "home"}], "nickName": "Babs"});
        let user = patch(user, json!([{"op": "replace", "value": value}])).unwrap();
        assert_eq!(user["emails"], value["emails"]);
        assert_eq!(user["nickName"], "Babs");
        let ops = json!([{"op": "replace", "path": "title", "value": "Tour Guide"}]);
        assert_eq!(patch(user, ops).unwrap()["title"], "Tour Guide");
    }

    #[test]
    fn entra_id_operations() {
        let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
        assert_eq!(patch(user(), ops).unwrap()["active"], "False");
        let mut bare = user();
        bare.as_object_mut().unwrap().remove("emails");
        let path = "emails[type eq \"work\"].value";
        let ops = json!([{"op": "Add", "path": path, "value": "babs@example.com"}]);
        let added = patch(bare, ops).unwrap();
        assert_eq!(
            added["emails"],
            json!([{"type": "work", "value": "babs@example.com"}])
        );
        let ops = json!([{"op": "Replace", "path": path, "value": "new@example.com"}]);
        let replaced = patch(added, ops).unwrap();
        assert_eq!(
            replaced["emails"],
            json!([{"type": "work", "value": "new@example.com"}])
        );
        let ops = json!([{"op": "replace", "value": {"active": false}}]);
        assert_eq!(patch(user(), ops).unwrap()["active"], false);
        let ops = json!([{"op": "Remove", "path": "members", "value": [{"value": "2819c223"}]}]);
        let group = patch(group(), ops).unwrap();
        assert_eq!(
            group["members"],
            json!([{"value": "902c246b", "display": "Mandy Pepperidge"}])
        );
        // Member ids are case-exact here, so another case names no member.
        let ops = json!([{"op": "Remove", "path": "members", "value": [{"value": "902C246B"}]}]);
        assert_eq!(patch(group.clone(), ops).unwrap(), group);
    }

    #[test]
    fn entra_id_dotted_filtered_and_qualified_keys_without_a_path() {
        let value = json!({
            "name.givenName": "Babs",
            "emails[type eq \"work\"].value": "babs@example.com",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Guide"
        });
        let user = patch(user(), json!([{"op": "Replace", "value": value}])).unwrap();
        assert_eq!(user["name"]["givenName"], "Babs");
        assert_eq!(user["name"]["familyName"], "Jensen");
        assert_eq!(user["emails"][0]["value"], "babs@example.com");
        assert_eq!(user[ENTERPRISE], json!({"department": "Tours"}));
        assert_eq!(user["title"], "Guide");
        let path = format!("{ENTERPRISE}:manager");
        let ops = json!([{"op": "Add", "path": path, "value": {"value": "26118915"}}]);
        let user = patch(user, ops).unwrap();
        assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "26118915"}));
        let user = patch(user, json!([{"op": "Remove", "path": path}])).unwrap();
        assert_eq!(user[ENTERPRISE], json!({"department": "Tours"}));
        let ops = json!([{"op": "add", "value": {ENTERPRISE: {"employeeNumber": "7"}}}]);
        let user = patch(user, ops).unwrap();
        assert_eq!(
            user[ENTERPRISE],
            json!({"department": "Tours", "employeeNumber": "7"})
        );
        let ops = json!([{"op": "replace", "path": ENTERPRISE, "value": {"department": "Ops"}}]);
        let user = patch(user, ops).unwrap();
        assert_eq!(
            user[ENTERPRISE],
            json!({"department": "Ops", "employeeNumber": "7"})
        );
    }

    #[test]
    fn okta_replaces_without_a_path_and_may_echo_the_id() {
        let ops = json!([{"op": "replace", "value": {"active": false}}]);
        assert_eq!(patch(user(), ops).unwrap()["active"], false);
        let echoed = json!({"id": "2819c223", "schemas": ["x"], "active": false});
        let user = patch(user(), json!([{"op": "replace", "value": echoed}])).unwrap();
        assert_eq!(
            (&user["active"], &user["id"]),
            (&json!(false), &json!("2819c223"))
        );
        let changed = json!([{"op": "replace", "value": {"id": "other"}}]);
        assert_eq!(scim_type(patch(user, changed)), "mutability");
    }

    #[test]
    fn identity_and_metadata_are_read_only() {
        for path in [
            "id",
            "meta",
            "meta.lastModified",
            "SCHEMAS",
            "urn:ietf:params:scim:schemas:core:2.0:User:id",
        ] {
            for op in ["add", "replace", "remove"] {
                let ops = json!([{"op": op, "path": path, "value": "x"}]);
                assert_eq!(scim_type(patch(user(), ops)), "mutability", "{op} {path}");
            }
        }
    }

    #[test]
    fn refusals_carry_their_scim_type() {
        let cases = [
            (json!({"op": "add", "value": "x"}), "invalidValue"),
            (json!({"op": "add", "path": "title"}), "invalidValue"),
            (
                json!({"op": "replace", "path": "emails[primary gt \"a\"].value", "value": "x"}),
                "invalidFilter",
            ),
            (
                json!({"op": "replace", "path": "emails[value co \"nobody\"]", "value": {"a": 1}}),
                "noTarget",
            ),
            (
                json!({"op": "replace", "path": "userName.x", "value": "y"}),
                "noTarget",
            ),
            (
                json!({"op": "replace", "path": "emails[type eq \"home\"]", "value": "x"}),
                "invalidValue",
            ),
            (json!({"op": "add", "value": {"bad key": 1}}), "invalidPath"),
        ];
        for (op, expected) in cases {
            assert_eq!(scim_type(patch(user(), json!([op]))), expected, "{op}");
        }
        let mut not_an_object = json!([1]);
        let error = apply(&mut not_an_object, Op::Add, None, Some(&json!({})), &exact);
        assert_eq!(error.unwrap_err().scim_type, "invalidSyntax");
    }

    #[test]
    fn names_are_case_blind_and_keep_the_resource_spelling() {
        let ops = json!([
            {"op": "replace", "path": "USERNAME", "value": "babs"},
            {"op": "replace", "path": "Name.GIVENNAME", "value": "Babs"},
            {"op": "add", "path": "nickName", "value": "B"}
        ]);
        let user = patch(user(), ops).unwrap();
        assert_eq!(
            (&user["userName"], &user["name"]["givenName"]),
            (&json!("babs"), &json!("Babs"))
        );
        assert_eq!(user["nickName"], "B");
        assert!(user.get("USERNAME").is_none() && user["name"].get("GIVENNAME").is_none());
    }

    #[test]
    fn a_new_primary_value_takes_the_flag_from_the_others() {
        let home = json!({"value": "b@home.org", "type": "home", "primary": true});
        let user = patch(
            user(),
            json!([{"op": "add", "path": "emails", "value": home}]),
        )
        .unwrap();
        assert_eq!(user["emails"][0]["primary"], false);
        assert_eq!(user["emails"][1]["primary"], true);
        let path = "emails[type eq \"work\"].primary";
        let user = patch(
            user,
            json!([{"op": "replace", "path": path, "value": true}]),
        )
        .unwrap();
        assert_eq!(
            (&user["emails"][0]["primary"], &user["emails"][1]["primary"]),
            (&json!(true), &json!(false))
        );
    }

    #[test]
    fn deep_values_are_refused_not_overflowed() {
        // Objects merge into objects, so a deep value into a deep resource
        // recurses as deep as both go.
        let (mut deep, mut resource) = (json!("leaf"), json!({}));
        for _ in 0..100 {
            deep = json!({"a": deep});
            resource = json!({"a": resource});
        }
        let result = apply(&mut resource, Op::Add, None, Some(&deep), &exact);
        assert_eq!(result.unwrap_err().scim_type, "invalidValue");
    }
}
