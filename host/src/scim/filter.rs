//! SCIM filters (RFC 7644 §3.4.2.2): the `filter` query parameter of a
//! list request, and the bracketed value filters of PATCH paths.
//!
//! The text comes straight from an HTTP request, so parsing is bounded in
//! length and nesting and reports every refusal as a [`FilterError`] the
//! server can answer with 400 `invalidFilter`; nothing here panics.
//! Evaluation is schema-free: the caller says which attributes compare
//! case-exactly, and a comparison between unlike types is false rather
//! than a guess, so that a filter never selects a resource it should not.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Longer filters are refused before lexing, so that a hostile request
/// costs bounded time and memory.
pub const MAX_LEN: usize = 16 * 1024;
/// Parentheses, `not` and value paths recurse; this bounds the stack.
pub const MAX_DEPTH: usize = 32;

/// The core schemas whose attributes live at the top level of a resource
/// (RFC 7643 §3): any other URN names an extension object.
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
];

/// Why a filter does not parse or cannot be evaluated; the message is what
/// the client sees in the 400 `invalidFilter` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// An attribute path: optional schema URN, attribute name, optional
/// sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Each operator as a filter spells it (case aside); `pr` is not here,
/// since it takes no value.
const OPERATORS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("ge", CompareOp::Ge),
    ("lt", CompareOp::Lt),
    ("le", CompareOp::Le),
];

impl CompareOp {
    /// The operator as a filter spells it, for messages.
    pub fn keyword(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(keyword, _)| keyword)
    }
}

/// A comparison's right-hand side.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

/// A parsed filter. `and` and `or` hold every operand of a chain, so that
/// a long chain is wide rather than deep.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    Present(AttrPath),
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// `emails[type eq "work"]`: some element of `path` matches `filter`,
    /// whose paths are relative to the element.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// Parses a filter.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    parse_with(text, false)
}

/// Parses the inside of a value path's brackets, where another value path
/// may not appear: PATCH paths take their bracketed filter through this.
pub(crate) fn parse_value_filter(text: &str) -> Result<Filter, FilterError> {
    parse_with(text, true)
}

fn parse_with(text: &str, in_value_path: bool) -> Result<Filter, FilterError> {
    if text.len() > MAX_LEN {
        return Err(FilterError(format!(
            "filter is longer than {MAX_LEN} bytes"
        )));
    }
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(FilterError("empty filter".to_string()));
    }
    let mut parser = Parser {
        text,
        tokens,
        next: 0,
        depth: 0,
        in_value_path,
    };
    let filter = parser.or()?;
    match parser.tokens.get(parser.next) {
        None => Ok(filter),
        Some(token) => Err(parser.error(
            token.at,
            &format!(
                "unexpected {} after a complete filter",
                token.kind.describe()
            ),
        )),
    }
}

/// Whether `c` may appear in an attribute path, URN part included.
pub(crate) fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$')
}

pub(crate) fn is_attr_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `urn` names a core schema, whose attributes are top-level.
pub(crate) fn is_core_schema(urn: &str) -> bool {
    CORE_SCHEMAS
        .iter()
        .any(|core| core.eq_ignore_ascii_case(urn))
}

impl AttrPath {
    /// Parses `name`, `name.sub` or `urn:…:name[.sub]`; the schema is
    /// everything before the last `:` of a path that starts with `urn:`.
    pub fn parse(text: &str) -> Result<AttrPath, FilterError> {
        let bad = |why: &str| FilterError(format!("invalid attribute path {}: {why}", quote(text)));
        if let Some(c) = text.chars().find(|c| !is_path_char(*c)) {
            return Err(bad(&format!("unexpected character {c:?}")));
        }
        let is_urn = text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let (schema, rest) = match text.rfind(':') {
            Some(colon) if is_urn && colon > 4 => (Some(&text[..colon]), &text[colon + 1..]),
            Some(_) if is_urn => return Err(bad("a schema URN needs a namespace")),
            Some(_) => return Err(bad("only a schema URN may contain ':'")),
            None => (None, text),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        if !is_attr_name(name) {
            return Err(bad("an attribute name starts with a letter"));
        }
        if let Some(sub) = sub
            && !is_attr_name(sub)
        {
            return Err(bad("a sub-attribute name starts with a letter"));
        }
        Ok(AttrPath {
            schema: schema.map(str::to_string),
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The path of `inner`, a path relative to an element of `self`: what
    /// the caller's case-exactness rule needs to see.
    pub(crate) fn within(&self, inner: &AttrPath) -> AttrPath {
        AttrPath {
            schema: self.schema.clone(),
            name: self.name.clone(),
            sub: Some(inner.name.clone()),
        }
    }

    fn with_sub(&self, sub: &str) -> AttrPath {
        AttrPath {
            sub: Some(sub.to_string()),
            ..self.clone()
        }
    }
}

/// `text` quoted for an error message, cut short so that a huge token does
/// not make a huge answer.
fn quote(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Str(String),
    Num(Number),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Open => "'('".to_string(),
            Kind::Close => "')'".to_string(),
            Kind::OpenBracket => "'['".to_string(),
            Kind::CloseBracket => "']'".to_string(),
            Kind::Word(word) => format!("'{word}'"),
            Kind::Str(text) => quote(text),
            Kind::Num(number) => format!("'{number}'"),
        }
    }
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    /// Byte offset into the filter.
    at: usize,
}

/// 1-based character position of byte offset `at`, as error messages give.
fn position(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |head| head.chars().count()) + 1
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let start = at;
        let error =
            |what: &str| FilterError(format!("{what} at character {}", position(text, start)));
        let (kind, end) = match c {
            c if c.is_whitespace() => {
                at += c.len_utf8();
                continue;
            }
            '(' => (Kind::Open, start + 1),
            ')' => (Kind::Close, start + 1),
            '[' => (Kind::OpenBracket, start + 1),
            ']' => (Kind::CloseBracket, start + 1),
            '"' => {
                let (string, end) = lex_string(text, start)?;
                (Kind::Str(string), end)
            }
            '-' | '0'..='9' => {
                let number_byte = |b: &u8| b.is_ascii_digit() || b"-+.eE".contains(b);
                let end = start + text[start..].bytes().take_while(number_byte).count();
                let number = text[start..end]
                    .parse::<Number>()
                    .map_err(|_| error(&format!("invalid number {}", quote(&text[start..end]))))?;
                (Kind::Num(number), end)
            }
            c if c.is_ascii_alphabetic() || c == '$' || c == '_' => {
                let end = start
                    + text[start..]
                        .chars()
                        .take_while(|c| is_path_char(*c))
                        .count();
                (Kind::Word(text[start..end].to_string()), end)
            }
            '.' => {
                return Err(error(
                    "unexpected '.' (a filter takes no sub-attribute after ']')",
                ));
            }
            c => return Err(error(&format!("unexpected character {c:?}"))),
        };
        tokens.push(Token { kind, at: start });
        at = end;
    }
    Ok(tokens)
}

/// The JSON string starting at byte `start` (its opening quote), and the
/// byte offset after its closing quote.
fn lex_string(text: &str, start: usize) -> Result<(String, usize), FilterError> {
    let bytes = text.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let string = serde_json::from_str::<String>(&text[start..=i]).map_err(|e| {
                    FilterError(format!(
                        "invalid string at character {}: {e}",
                        position(text, start)
                    ))
                })?;
                return Ok((string, i + 1));
            }
            _ => i += 1,
        }
    }
    Err(FilterError(format!(
        "unterminated string starting at character {}",
        position(text, start)
    )))
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    in_value_path: bool,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: &str) -> FilterError {
        FilterError(format!(
            "{message} at character {}",
            position(self.text, at)
        ))
    }

    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.next).map(|t| &t.kind)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Kind::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    /// The error for a missing token: at the offending token, or at the end.
    fn expected(&self, what: &str) -> FilterError {
        match self.tokens.get(self.next) {
            Some(token) => self.error(
                token.at,
                &format!("expected {what}, found {}", token.kind.describe()),
            ),
            None => FilterError(format!("expected {what} at the end of the filter")),
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        self.chain("or", Parser::and, Filter::Or)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        self.chain("and", Parser::unary, Filter::And)
    }

    /// Operands joined by `keyword`, gathered into one node so that a long
    /// chain costs no recursion.
    fn chain(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Filter, FilterError>,
        join: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, FilterError> {
        let mut operands = vec![operand(self)?];
        while self.peek_keyword(keyword) {
            self.next += 1;
            operands.push(operand(self)?);
        }
        Ok(match operands.len() {
            1 => operands.remove(0),
            _ => join(operands),
        })
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        let next_is_open =
            matches!(self.tokens.get(self.next + 1), Some(t) if t.kind == Kind::Open);
        match self.peek() {
            Some(Kind::Open) => self.group(Kind::Close),
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case("not") && next_is_open => {
                self.next += 1;
                let inner = self.group(Kind::Close)?;
                Ok(Filter::Not(Box::new(inner)))
            }
            Some(Kind::Word(_)) => self.attr_expr(),
            _ => Err(self.expected("an attribute, 'not' or '('")),
        }
    }

    /// Parses a filter between the opening token at hand and `close`, one
    /// level deeper.
    fn group(&mut self, close: Kind) -> Result<Filter, FilterError> {
        let (open, at) = match self.tokens.get(self.next) {
            Some(token) => (token.kind.describe(), token.at),
            None => return Err(self.expected("'('")),
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(at, &format!("filter nests deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        self.next += 1;
        let filter = self.or()?;
        if self.peek() != Some(&close) {
            return Err(match self.tokens.get(self.next) {
                None => self.error(
                    at,
                    &format!("unbalanced {open}: no closing {}", close.describe()),
                ),
                Some(_) => self.expected(&format!("{} or 'and'/'or'", close.describe())),
            });
        }
        self.next += 1;
        self.depth -= 1;
        Ok(filter)
    }

    fn attr_expr(&mut self) -> Result<Filter, FilterError> {
        let Some(Token {
            kind: Kind::Word(word),
            at,
        }) = self.tokens.get(self.next)
        else {
            return Err(self.expected("an attribute"));
        };
        let at = *at;
        let path = AttrPath::parse(word).map_err(|e| self.error(at, &e.0))?;
        self.next += 1;
        if self.peek() == Some(&Kind::OpenBracket) {
            if self.in_value_path {
                return Err(self.error(at, "a value path cannot nest inside another value path"));
            }
            if path.sub.is_some() {
                return Err(self.error(
                    at,
                    "a value path filters a multi-valued attribute, not a sub-attribute",
                ));
            }
            self.in_value_path = true;
            let filter = self.group(Kind::CloseBracket)?;
            self.in_value_path = false;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        let op = self.operator()?;
        let Some(op) = op else {
            return Ok(Filter::Present(path));
        };
        let value = self.literal(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// The comparison operator at hand, or None for `pr`.
    fn operator(&mut self) -> Result<Option<CompareOp>, FilterError> {
        let Some(Token {
            kind: Kind::Word(word),
            at,
        }) = self.tokens.get(self.next)
        else {
            return Err(self.expected("an operator (eq, ne, co, sw, ew, pr, gt, ge, lt, le)"));
        };
        let op = match OPERATORS.iter().find(|(k, _)| k.eq_ignore_ascii_case(word)) {
            Some((_, op)) => Some(*op),
            None if word.eq_ignore_ascii_case("pr") => None,
            None => return Err(self.error(*at, &format!("unknown operator '{word}'"))),
        };
        self.next += 1;
        Ok(op)
    }

    fn literal(&mut self, op: CompareOp) -> Result<Literal, FilterError> {
        let Some(token) = self.tokens.get(self.next) else {
            return Err(self.expected("a value"));
        };
        let value = match &token.kind {
            Kind::Str(text) => Literal::String(text.clone()),
            Kind::Num(number) => Literal::Number(number.clone()),
            Kind::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Kind::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Kind::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.expected("a value (a string, number, true, false or null)")),
        };
        let refusal = match (op, &value) {
            (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, Literal::String(_)) => None,
            (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _) => Some("needs a string"),
            (
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le,
                Literal::Bool(_) | Literal::Null,
            ) => Some("cannot order booleans or null"),
            _ => None,
        };
        if let Some(why) = refusal {
            return Err(self.error(token.at, &format!("'{}' {why}", op.keyword())));
        }
        self.next += 1;
        Ok(value)
    }
}

/// The value of `key` in `object`: the exact spelling first, then any
/// spelling, since attribute names are case-insensitive (RFC 7643 §2.1).
pub(crate) fn get_ci<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    field(object.as_object()?, key)
}

/// The value of `key` in `map`, whose keys compare without case (RFC 7643
/// §2.1): the exact key first, then any spelling of it.
pub(crate) fn field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The value `path` names in `resource`, before any sub-attribute.
fn lookup<'a>(resource: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let container = match &path.schema {
        Some(schema) if !is_core_schema(schema) => get_ci(resource, schema)?,
        _ => resource,
    };
    get_ci(container, &path.name)
}

/// Whether a value counts as assigned: RFC 7643 §2.5 makes null, an empty
/// array and (here) an empty string or object all unassigned.
fn assigned(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

fn present(resource: &Value, path: &AttrPath) -> bool {
    let Some(value) = lookup(resource, path) else {
        return false;
    };
    let Some(sub) = &path.sub else {
        return assigned(value);
    };
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| get_ci(item, sub))
            .any(assigned),
        _ => get_ci(value, sub).is_some_and(assigned),
    }
}

/// The simple values a comparison on `path` looks at, each with the path
/// whose case rule applies to it. A complex value with no sub-attribute
/// named stands for its `value` sub-attribute (RFC 7644 §3.4.2.2).
fn leaves<'a>(resource: &'a Value, path: &AttrPath) -> Vec<(&'a Value, AttrPath)> {
    let Some(value) = lookup(resource, path) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let (sub, leaf_path) = match &path.sub {
        Some(sub) => (sub.as_str(), path.clone()),
        None => ("value", path.with_sub("value")),
    };
    let mut out = Vec::new();
    for item in items {
        let leaf = match item {
            Value::Object(_) => get_ci(item, sub),
            simple if path.sub.is_none() => {
                out.push((simple, path.clone()));
                continue;
            }
            _ => None,
        };
        match leaf {
            Some(Value::Array(values)) => out.extend(values.iter().map(|v| (v, leaf_path.clone()))),
            Some(v) => out.push((v, leaf_path.clone())),
            None => {}
        }
    }
    out
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn ordered(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        _ => false,
    }
}

fn fold(text: &str, exact: bool) -> Cow<'_, str> {
    if exact {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// One attribute value against the literal; `ne` never reaches here.
fn compare_one(
    op: CompareOp,
    value: &Value,
    literal: &Literal,
    exact: bool,
) -> Result<bool, FilterError> {
    Ok(match (value, literal) {
        (Value::String(a), Literal::String(b)) => {
            let (a, b) = (fold(a, exact), fold(b, exact));
            match op {
                CompareOp::Co => a.contains(b.as_ref()),
                CompareOp::Sw => a.starts_with(b.as_ref()),
                CompareOp::Ew => a.ends_with(b.as_ref()),
                _ => ordered(op, a.cmp(&b)),
            }
        }
        (Value::Number(a), Literal::Number(b)) => {
            compare_numbers(a, b).is_some_and(|o| ordered(op, o))
        }
        (Value::Bool(_), _)
            if matches!(
                op,
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
            ) =>
        {
            return Err(FilterError(format!(
                "'{}' cannot order a boolean attribute",
                op.keyword()
            )));
        }
        (Value::Bool(a), Literal::Bool(b)) => op == CompareOp::Eq && a == b,
        _ => false,
    })
}

impl Filter {
    /// Whether `resource` (a SCIM resource as JSON, e.g. a User) matches.
    /// `exact` says which attributes compare strings case-exactly: the
    /// schema knows, this module does not.
    pub fn matches(
        &self,
        resource: &Value,
        exact: &dyn Fn(&AttrPath) -> bool,
    ) -> Result<bool, FilterError> {
        match self {
            Filter::Compare { path, op, value } => compare(resource, path, *op, value, exact),
            Filter::Present(path) => Ok(present(resource, path)),
            Filter::Not(inner) => Ok(!inner.matches(resource, exact)?),
            Filter::And(operands) => {
                for operand in operands {
                    if !operand.matches(resource, exact)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Or(operands) => {
                for operand in operands {
                    if operand.matches(resource, exact)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::ValuePath { path, filter } => {
                let items: Vec<&Value> = match lookup(resource, path) {
                    Some(Value::Array(items)) => items.iter().collect(),
                    Some(single @ Value::Object(_)) => vec![single],
                    _ => Vec::new(),
                };
                let inner_exact = |inner: &AttrPath| exact(&path.within(inner));
                for item in items {
                    if filter.matches(item, &inner_exact)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// If this filter is exactly `ATTR eq "string"`, that attribute path
    /// and value: lets the server answer from an index instead of a scan.
    pub fn equality(&self) -> Option<(&AttrPath, &str)> {
        match self {
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Literal::String(value),
            } => Some((path, value)),
            _ => None,
        }
    }
}

fn compare(
    resource: &Value,
    path: &AttrPath,
    op: CompareOp,
    literal: &Literal,
    exact: &dyn Fn(&AttrPath) -> bool,
) -> Result<bool, FilterError> {
    match (op, literal) {
        // Null is unassigned (RFC 7643 §2.5): `eq null` asks for absence.
        (CompareOp::Eq, Literal::Null) => return Ok(!present(resource, path)),
        (CompareOp::Ne, _) => return Ok(!compare(resource, path, CompareOp::Eq, literal, exact)?),
        _ => {}
    }
    for (value, leaf_path) in leaves(resource, path) {
        let case_exact = matches!(value, Value::String(_)) && exact(&leaf_path);
        if compare_one(op, value, literal, case_exact)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Bjensen",
            "userName": "BJensen@Example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "",
            "active": true,
            "loginCount": 42,
            "score": 2.5,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "roles": [],
            "nickNames": ["Babs", "BJ"],
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "26118915"}}
        })
    }

    /// `id` and `externalId` compare case-exactly, as their schema says.
    fn exact(path: &AttrPath) -> bool {
        path.schema.is_none() && ["id", "externalId"].contains(&path.name.as_str())
    }

    /// One filter a line against `user()`: `+ filter` must match, `- filter`
    /// must not. `ENT` stands for the enterprise extension's URN.
    fn check(cases: &str) {
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (sign, text) = line.split_at(1);
            let text = text.trim().replace("ENT:", &format!("{ENTERPRISE}:"));
            let filter = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(filter.matches(&user(), &exact), Ok(sign == "+"), "{text}");
        }
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Err(e) => e.0,
            Ok(f) => panic!("{text} parsed as {f:?}"),
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_regroup() {
        let eq = |name: &str, n: u64| Filter::Compare {
            path: AttrPath::parse(name).unwrap(),
            op: CompareOp::Eq,
            value: Literal::Number(Number::from(n)),
        };
        let (a, b, c) = (eq("a", 1), eq("b", 2), eq("c", 3));
        let and = |f: &[&Filter]| Filter::And(f.iter().map(|f| (*f).clone()).collect());
        let or = |f: &[&Filter]| Filter::Or(f.iter().map(|f| (*f).clone()).collect());
        let parsed = |text: &str| parse(text).unwrap();
        assert_eq!(
            parsed("a eq 1 or b eq 2 and c eq 3"),
            or(&[&a, &and(&[&b, &c])])
        );
        assert_eq!(
            parsed("(a eq 1 or b eq 2) and c eq 3"),
            and(&[&or(&[&a, &b]), &c])
        );
        assert_eq!(
            parsed("a eq 1 AND b eq 2 Or c eq 3"),
            or(&[&and(&[&a, &b]), &c])
        );
        assert_eq!(parsed("a eq 1 and b eq 2 and c eq 3"), and(&[&a, &b, &c]));
        assert_eq!(parsed("NOT (a eq 1)"), Filter::Not(Box::new(a)));
        check(
            r#"
            - userName eq "x" or title pr and active eq true
            + (userName eq "x" or loginCount eq 42) and active eq true
            + not (userName eq "x") and not(active eq false)
            - not (active eq true)
            + not (not (active eq true))
            "#,
        );
    }

    #[test]
    fn paths_parse_with_and_without_a_schema() {
        let parts = |text: &str| {
            let p = AttrPath::parse(text).unwrap();
            (
                p.schema.unwrap_or_default(),
                p.name,
                p.sub.unwrap_or_default(),
            )
        };
        let owned = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(parts("userName"), owned("", "userName", ""));
        assert_eq!(parts("name.familyName"), owned("", "name", "familyName"));
        assert_eq!(parts("members.$ref"), owned("", "members", "$ref"));
        let manager = format!("{ENTERPRISE}:manager.value");
        assert_eq!(parts(&manager), owned(ENTERPRISE, "manager", "value"));
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        assert_eq!(
            parts(&format!("{core}:userName")),
            owned(core, "userName", "")
        );
        for bad in [
            "",
            "a.b.c",
            "1abc",
            "a:b",
            "urn:x",
            "name.",
            "user name",
            "urn:",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_qualified_attributes_find_core_and_extension_values() {
        check(
            r#"
            + urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen"
            + URN:IETF:params:scim:schemas:core:2.0:user:name.givenName eq "barbara"
            + ENT:employeeNumber eq "701984"
            + urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:user:EMPLOYEENUMBER pr
            + ENT:manager.value eq "26118915"
            + ENT:manager eq "26118915"
            - employeeNumber pr
            - urn:example:other:2.0:User:userName pr
            "#,
        );
    }

    #[test]
    fn names_keywords_and_values_are_case_blind_unless_case_exact() {
        check(
            r#"
            + USERNAME Eq "bjensen@example.COM"
            + name.FAMILYNAME co "ENS"
            + externalId eq "Bjensen"
            - externalId eq "bjensen"
            - id sw "2819C223"
            + Active EQ TRUE
            + meta.lastModified gt "2011-05-13T04:42:33z"
            + meta.lastModified GE "2011-05-13T04:42:34Z"
            - meta.lastModified lt "2011-05-13T04:42:34Z"
            + userName ew ".com" and userName sw "bj"
            "#,
        );
    }

    #[test]
    fn a_multi_valued_attribute_matches_when_any_value_does() {
        check(
            r#"
            + emails.value eq "babs@jensen.org"
            + emails eq "BABS@jensen.org"
            + emails.type eq "home" and emails.type eq "work"
            + nickNames eq "bj"
            + emails.value ne "nobody@example.com"
            - emails.value ne "babs@jensen.org"
            + emails[type eq "work" and value co "@example.com"]
            + Emails[TYPE eq "work" and primary eq true]
            - emails[type eq "home" and primary eq true]
            + emails[not (type eq "work")]
            + emails[type eq "home"] and not (emails[type eq "other"])
            + name[givenName eq "barbara"]
            - roles[value pr]
            "#,
        );
        // The caller's case rule sees the inner path as `emails.value`.
        let seen = std::cell::RefCell::new(Vec::new());
        let record = |p: &AttrPath| {
            seen.borrow_mut().push(p.clone());
            false
        };
        let filter = parse("emails[value eq \"x\"]").unwrap();
        assert_eq!(filter.matches(&user(), &record), Ok(false));
        assert_eq!(seen.borrow()[0], AttrPath::parse("emails.value").unwrap());
    }

    #[test]
    fn present_needs_a_value_that_is_not_null_or_empty() {
        check(
            r#"
            + userName pr
            + emails pr and emails.primary pr and name pr
            - title pr
            - roles pr
            - nickName pr
            + nickName eq null and title eq null
            + userName ne null
            - missing eq "x"
            + missing ne "x"
            "#,
        );
    }

    #[test]
    fn numbers_compare_as_numbers_and_unlike_types_never_match() {
        check(
            r#"
            + loginCount gt 41 and loginCount le 42 and loginCount eq 42.0
            + score ge 2.5 and score lt 3 and score gt -1e3
            - loginCount eq "42"
            - userName gt 1
            - active eq "true"
            - loginCount co "4"
            "#,
        );
        let stored_as_text = json!({"active": "True"});
        let active = parse("active eq true").unwrap();
        assert_eq!(active.matches(&stored_as_text, &exact), Ok(false));
        let ordering_a_boolean = parse("active gt \"a\"").unwrap();
        assert!(ordering_a_boolean.matches(&user(), &exact).is_err());
    }

    #[test]
    fn string_literals_are_json_strings() {
        let data = json!({"displayName": "a\"b\\c é"});
        let filter = parse(r#"displayName eq "a\"b\\c \u00e9""#).unwrap();
        assert_eq!(filter.matches(&data, &exact), Ok(true));
        assert!(error(r#"displayName eq "ab"#).contains("unterminated string"));
        assert!(error(r#"displayName eq "\q""#).contains("invalid string"));
    }

    #[test]
    fn every_malformed_filter_is_refused_with_its_position_or_token() {
        assert_eq!(error(""), "empty filter");
        assert_eq!(error("   "), "empty filter");
        // One case a line: the filter, `=>`, a part of its message.
        let cases = r#"
            userName eqq "x" => unknown operator 'eqq' at character 10
            userName eq "x" extra => unexpected 'extra' after a complete filter at character 17
            (userName pr => unbalanced '(': no closing ')' at character 1
            userName pr) => unexpected ')'
            emails[type eq "work" => no closing ']'
            emails[type eq "work"]] => unexpected ']'
            emails[value[type eq "x"]] => cannot nest
            emails[type eq "work"].value eq "x" => unexpected '.'
            active gt true => 'gt' cannot order
            title le null => 'le' cannot order
            userName co 1 => 'co' needs a string
            userName eq => expected a value at the end
            userName => expected an operator
            userName eq "x" and => expected an attribute
            userName eq bob => expected a value
            not userName pr => unknown operator 'userName'
            userName eq 1e999 => invalid number
            user#Name pr => unexpected character '#' at character 5
            é eq 1 => at character 1
            a eq 1 or é => at character 11
        "#;
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (text, message) = line.split_once(" => ").unwrap();
            assert!(error(text).contains(message), "{text}: {}", error(text));
        }
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert!(error(&nested(MAX_DEPTH + 1)).contains("deeper than 32"));
        assert!(error(&"not (".repeat(3_000)).contains("deeper"));
        assert!(error(&"a[".repeat(5_000)).contains("cannot nest"));
        assert!(parse(&vec!["a eq 1"; 1500].join(" or ")).is_ok());
        assert!(error(&vec!["a eq 1"; 3000].join(" or ")).contains("longer than 16384"));
    }

    #[test]
    fn equality_offers_only_a_lone_string_eq() {
        let filter = parse("userName Eq \"bjensen\"").unwrap();
        let path = AttrPath::parse("userName").unwrap();
        assert_eq!(filter.equality(), Some((&path, "bjensen")));
        let others = [
            "userName ne \"b\"",
            "loginCount eq 1",
            "a eq \"1\" and b eq \"2\"",
        ];
        for other in others
            .into_iter()
            .chain(["not (a eq \"1\")", "a[b eq \"1\"]"])
        {
            assert_eq!(parse(other).unwrap().equality(), None, "{other}");
        }
    }
}
