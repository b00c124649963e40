//! The SOQL the connector uses, and nothing more:
//! `SELECT f, ... FROM Object [WHERE f = v AND f IN (v, ...) ...] [LIMIT n]`.
//! Anything else answers `MALFORMED_QUERY` with the position of the first
//! token it does not understand, as Salesforce does.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::org::{SObjectType, SfError, sobject};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Text(String),
    Boolean(bool),
    Number(f64),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    Equals(String, Literal),
    In(String, Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub fields: Vec<String>,
    pub object: String,
    pub conditions: Vec<Condition>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    Comma,
    Open,
    Close,
    Equals,
    Other(String),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

fn malformed(query: &str, at: usize, what: &str) -> SfError {
    let column = query[..at.min(query.len())].chars().count() + 1;
    SfError::new(
        400,
        "MALFORMED_QUERY",
        format!(
            "\n{query}\n{}^\nERROR at Row:1:Column:{column}\n{what}",
            " ".repeat(column - 1)
        ),
    )
}

impl Lexer<'_> {
    fn tokens(query: &str) -> Result<Vec<(usize, Token)>, SfError> {
        let mut lexer = Lexer {
            chars: query.char_indices().peekable(),
        };
        let mut out = Vec::new();
        while let Some(&(at, c)) = lexer.chars.peek() {
            if c.is_whitespace() {
                lexer.chars.next();
                continue;
            }
            let token = match c {
                ',' => {
                    lexer.chars.next();
                    Token::Comma
                }
                '(' => {
                    lexer.chars.next();
                    Token::Open
                }
                ')' => {
                    lexer.chars.next();
                    Token::Close
                }
                '=' => {
                    lexer.chars.next();
                    Token::Equals
                }
                '\'' => {
                    lexer.chars.next();
                    let mut text = String::new();
                    let mut closed = false;
                    while let Some((_, c)) = lexer.chars.next() {
                        match c {
                            '\\' => match lexer.chars.next() {
                                Some((_, 'n')) => text.push('\n'),
                                Some((_, 't')) => text.push('\t'),
                                Some((_, 'r')) => text.push('\r'),
                                Some((_, escaped @ ('\'' | '\\' | '"'))) => text.push(escaped),
                                _ => return Err(malformed(query, at, "invalid escape sequence")),
                            },
                            '\'' => {
                                closed = true;
                                break;
                            }
                            c => text.push(c),
                        }
                    }
                    if !closed {
                        return Err(malformed(query, at, "unterminated string literal"));
                    }
                    Token::Text(text)
                }
                c if c.is_ascii_digit() || c == '-' => {
                    let mut number = String::new();
                    while let Some(&(_, c)) = lexer.chars.peek() {
                        if c.is_ascii_digit() || c == '.' || c == '-' {
                            number.push(c);
                            lexer.chars.next();
                        } else {
                            break;
                        }
                    }
                    Token::Number(number.parse().map_err(|_| {
                        malformed(query, at, &format!("unexpected token: {number}"))
                    })?)
                }
                c if c.is_alphanumeric() || c == '_' => {
                    let mut word = String::new();
                    while let Some(&(_, c)) = lexer.chars.peek() {
                        if c.is_alphanumeric() || c == '_' || c == '.' {
                            word.push(c);
                            lexer.chars.next();
                        } else {
                            break;
                        }
                    }
                    Token::Word(word)
                }
                other => {
                    let mut text = other.to_string();
                    lexer.chars.next();
                    while let Some(&(_, c)) = lexer.chars.peek() {
                        if "!<>=".contains(c) {
                            text.push(c);
                            lexer.chars.next();
                        } else {
                            break;
                        }
                    }
                    Token::Other(text)
                }
            };
            out.push((at, token));
        }
        Ok(out)
    }
}

struct Parser<'a> {
    query: &'a str,
    tokens: Vec<(usize, Token)>,
    position: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map(|(at, _)| *at)
            .unwrap_or(self.query.len())
    }

    fn unexpected(&self) -> SfError {
        let what = match self.peek() {
            Some(Token::Word(w)) => format!("unexpected token: {w}"),
            Some(Token::Text(t)) => format!("unexpected token: '{t}'"),
            Some(Token::Number(n)) => format!("unexpected token: {n}"),
            Some(Token::Comma) => "unexpected token: ','".into(),
            Some(Token::Open) => "unexpected token: '('".into(),
            Some(Token::Close) => "unexpected token: ')'".into(),
            Some(Token::Equals) => "unexpected token: '='".into(),
            Some(Token::Other(o)) => format!("unexpected token: '{o}'"),
            None => "unexpected token: <EOF>".into(),
        };
        malformed(self.query, self.offset(), &what)
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword) => {
                self.position += 1;
                true
            }
            _ => false,
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SfError> {
        if self.keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn identifier(&mut self) -> Result<String, SfError> {
        const RESERVED: &[&str] = &[
            "select", "from", "where", "and", "or", "not", "in", "limit", "order", "by", "group",
            "having", "offset", "like", "includes", "excludes",
        ];
        match self.peek() {
            Some(Token::Word(w))
                if !RESERVED.contains(&w.to_ascii_lowercase().as_str()) && !w.contains('.') =>
            {
                let w = w.clone();
                self.position += 1;
                Ok(w)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self) -> Result<Literal, SfError> {
        let literal = match self.peek() {
            Some(Token::Text(t)) => Literal::Text(t.clone()),
            Some(Token::Number(n)) => Literal::Number(*n),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Boolean(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Boolean(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.unexpected()),
        };
        self.position += 1;
        Ok(literal)
    }

    fn condition(&mut self) -> Result<Condition, SfError> {
        let field = self.identifier()?;
        match self.peek() {
            Some(Token::Equals) => {
                self.position += 1;
                Ok(Condition::Equals(field, self.literal()?))
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                self.position += 1;
                if self.peek() != Some(&Token::Open) {
                    return Err(self.unexpected());
                }
                self.position += 1;
                let mut values = vec![self.literal()?];
                while self.peek() == Some(&Token::Comma) {
                    self.position += 1;
                    values.push(self.literal()?);
                }
                if self.peek() != Some(&Token::Close) {
                    return Err(self.unexpected());
                }
                self.position += 1;
                Ok(Condition::In(field, values))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, SfError> {
        self.expect_keyword("select")?;
        let mut fields = vec![self.identifier()?];
        while self.peek() == Some(&Token::Comma) {
            self.position += 1;
            fields.push(self.identifier()?);
        }
        self.expect_keyword("from")?;
        let object = self.identifier()?;
        let mut conditions = Vec::new();
        if self.keyword("where") {
            conditions.push(self.condition()?);
            while self.keyword("and") {
                conditions.push(self.condition()?);
            }
        }
        let mut limit = None;
        if self.keyword("limit") {
            match self.peek() {
                Some(Token::Number(n)) if *n >= 0.0 && n.fract() == 0.0 => {
                    limit = Some(*n as usize);
                    self.position += 1;
                }
                _ => return Err(self.unexpected()),
            }
        }
        if self.peek().is_some() {
            return Err(self.unexpected());
        }
        Ok(Query {
            fields,
            object,
            conditions,
            limit,
        })
    }
}

pub(crate) fn parse(query: &str) -> Result<Query, SfError> {
    let tokens = Lexer::tokens(query)?;
    Parser {
        query,
        tokens,
        position: 0,
    }
    .query()
}

/// The values one condition accepts. Text is kept folded, in a set, so
/// that a record is tested against an `IN` list of hundreds of values in
/// one probe, as an indexed field is in a real org.
struct Accepts {
    text: HashSet<String>,
    others: Vec<Literal>,
}

impl Accepts {
    fn new(literals: &[Literal]) -> Accepts {
        let mut accepts = Accepts {
            text: HashSet::new(),
            others: Vec::new(),
        };
        for literal in literals {
            match literal {
                Literal::Text(text) => {
                    accepts.text.insert(text.to_lowercase());
                }
                other => accepts.others.push(other.clone()),
            }
        }
        accepts
    }

    fn accepts(&self, value: Option<&Value>) -> bool {
        let value = value.unwrap_or(&Value::Null);
        if let Value::String(have) = value {
            // Text comparisons in SOQL ignore case.
            return !self.text.is_empty() && self.text.contains(&have.to_lowercase());
        }
        self.others.iter().any(|literal| match (literal, value) {
            (Literal::Boolean(wanted), Value::Bool(have)) => wanted == have,
            (Literal::Number(wanted), Value::Number(have)) => have.as_f64() == Some(*wanted),
            (Literal::Null, Value::Null) => true,
            _ => false,
        })
    }
}

/// A parsed query bound to the org's schema.
pub(crate) struct Bound {
    pub sobject: &'static SObjectType,
    fields: Vec<&'static str>,
    conditions: Vec<(&'static str, Accepts)>,
    pub limit: Option<usize>,
}

impl Query {
    /// Resolves object and field names, as Salesforce does before running.
    pub fn bind(&self) -> Result<Bound, SfError> {
        let sobject = sobject(&self.object).ok_or_else(|| {
            SfError::new(
                400,
                "INVALID_TYPE",
                format!(
                    "\n{}\n^\nERROR at Row:1:Column:1\nsObject type '{}' is not supported.",
                    self.object, self.object
                ),
            )
        })?;
        let field = |name: &str| {
            sobject.field(name).map(|f| f.name).ok_or_else(|| {
                SfError::new(
                    400,
                    "INVALID_FIELD",
                    format!(
                        "\nNo such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
                        sobject.name
                    ),
                )
            })
        };
        let fields = self
            .fields
            .iter()
            .map(|f| field(f))
            .collect::<Result<Vec<_>, _>>()?;
        let conditions = self
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Equals(f, v) => {
                    field(f).map(|f| (f, Accepts::new(std::slice::from_ref(v))))
                }
                Condition::In(f, vs) => field(f).map(|f| (f, Accepts::new(vs))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bound {
            sobject,
            fields,
            conditions,
            limit: self.limit,
        })
    }
}

impl Bound {
    /// The lowercased Emails a record must have one of, when a condition
    /// says so with text alone: the index answers the query then.
    pub fn emails(&self) -> Option<Vec<&str>> {
        self.conditions
            .iter()
            .find(|(field, accepts)| *field == "Email" && accepts.others.is_empty())
            .map(|(_, accepts)| accepts.text.iter().map(String::as_str).collect())
    }

    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        self.conditions
            .iter()
            .all(|(field, accepts)| accepts.accepts(record.get(*field)))
    }

    /// The record as a query returns it: `attributes` first, then the
    /// selected fields in the order asked, null when unset.
    pub fn project(&self, record: &Map<String, Value>, version: &str) -> Value {
        let id = record.get("Id").and_then(Value::as_str).unwrap_or("");
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            serde_json::json!({
                "type": self.sobject.name,
                "url": format!("/services/data/{version}/sobjects/{}/{id}", self.sobject.name),
            }),
        );
        for field in &self.fields {
            out.insert(
                field.to_string(),
                record.get(*field).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connectors_queries_parse() {
        let q = parse(
            "SELECT Id, Email, FirstName FROM Lead WHERE Email IN ('a@x.test','O\\'Brien@x.test') AND IsConverted = false LIMIT 200",
        )
        .unwrap();
        assert_eq!(q.fields, vec!["Id", "Email", "FirstName"]);
        assert_eq!(q.object, "Lead");
        assert_eq!(
            q.conditions,
            vec![
                Condition::In(
                    "Email".into(),
                    vec![
                        Literal::Text("a@x.test".into()),
                        Literal::Text("O'Brien@x.test".into())
                    ]
                ),
                Condition::Equals("IsConverted".into(), Literal::Boolean(false)),
            ]
        );
        assert_eq!(q.limit, Some(200));
        assert!(
            parse("select id from contact").is_ok(),
            "keywords ignore case"
        );
    }

    #[test]
    fn everything_else_is_malformed_with_a_position() {
        for (query, token) in [
            ("SELECT Id FROM Lead WHERE Email = 'a' OR Email = 'b'", "OR"),
            ("SELECT Id FROM Lead WHERE Email LIKE 'a%'", "LIKE"),
            ("SELECT Id FROM Lead ORDER BY Email", "ORDER"),
            ("SELECT Id FROM Lead WHERE Email != 'a'", "'!='"),
            ("SELECT COUNT() FROM Lead", "'('"),
            ("SELECT Id FROM", "<EOF>"),
            ("SELECT Id FROM Lead WHERE Email = 'open", "unterminated"),
            ("SELECT Account.Name FROM Contact", "Account.Name"),
        ] {
            let error = parse(query).unwrap_err();
            assert_eq!(error.code, "MALFORMED_QUERY", "{query}");
            assert!(error.message.contains(token), "{query}: {}", error.message);
            assert!(
                error.message.contains("ERROR at Row:1:Column:"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn binding_checks_the_schema() {
        assert_eq!(
            parse("SELECT Id FROM Widget")
                .unwrap()
                .bind()
                .err()
                .unwrap()
                .code,
            "INVALID_TYPE"
        );
        let error = parse("SELECT Id, Shoe FROM Lead")
            .unwrap()
            .bind()
            .err()
            .unwrap();
        assert_eq!(error.code, "INVALID_FIELD");
        assert!(
            error
                .message
                .contains("No such column 'Shoe' on entity 'Lead'")
        );
    }

    #[test]
    fn text_matches_ignore_case() {
        let bound =
            parse("SELECT Id FROM Lead WHERE Email IN ('A@X.test') AND IsConverted = false")
                .unwrap()
                .bind()
                .unwrap();
        let mut record = Map::new();
        record.insert("Email".into(), Value::from("a@x.TEST"));
        record.insert("IsConverted".into(), Value::Bool(false));
        assert!(bound.matches(&record));
        record.insert("IsConverted".into(), Value::Bool(true));
        assert!(!bound.matches(&record));
    }
}
