//! Building the SOQL the connector sends: quoted literals and `IN` lists
//! cut to fit in a URL.

/// Salesforce's URI limit is 16,384 characters; stay well below it so that
/// the host, path and other parameters always fit.
pub const URL_BUDGET: usize = 12_000;

/// A SOQL string literal, with Salesforce's backslash escapes.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    let plain = !value
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\'' | b'"' | b'\n' | b'\r' | b'\t'));
    if plain {
        out.push_str(value);
        out.push('\'');
        return out;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The query parameter as sent: form-encoded.
pub fn encode(soql: &str) -> String {
    let mut out = String::with_capacity(soql.len() + soql.len() / 4);
    out.extend(form_urlencoded::byte_serialize(soql.as_bytes()));
    out
}

/// `SELECT fields FROM object [WHERE c1 AND c2 ...]`.
pub fn select(fields: &[&str], object: &str, conditions: &[String]) -> String {
    let mut soql = format!("SELECT {} FROM {object}", fields.join(", "));
    if !conditions.is_empty() {
        soql.push_str(" WHERE ");
        soql.push_str(&conditions.join(" AND "));
    }
    soql
}

/// Splits `values` into `IN (...)` lists, form-encoded as they go into
/// the query parameter, each short enough that the query stays within
/// `budget` characters with `fixed` characters of the rest of it. Each
/// value is encoded once, straight onto its list.
pub fn in_lists(values: &[String], fixed: usize, budget: usize) -> Vec<String> {
    const OPEN: &str = "%28";
    const SEPARATOR: &str = "%2C+";
    const CLOSE: &str = "%29";
    let mut lists = Vec::new();
    let mut current = String::new();
    for value in values {
        let quoted = quote(value);
        let mark = current.len();
        current.push_str(if current.is_empty() { OPEN } else { SEPARATOR });
        current.extend(form_urlencoded::byte_serialize(quoted.as_bytes()));
        if mark > 0 && fixed + current.len() + CLOSE.len() > budget {
            // This value starts the next list.
            current.truncate(mark);
            current.push_str(CLOSE);
            lists.push(std::mem::take(&mut current));
            current.push_str(OPEN);
            current.extend(form_urlencoded::byte_serialize(quoted.as_bytes()));
        }
    }
    if !current.is_empty() {
        current.push_str(CLOSE);
        lists.push(current);
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        assert_eq!(quote("o'brien@x.test"), r"'o\'brien@x.test'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("line\nbreak"), r"'line\nbreak'");
    }

    #[test]
    fn in_lists_fit_the_budget() {
        let values: Vec<String> = (0..300)
            .map(|n| format!("person.{n:04}@example.com"))
            .collect();
        let lists = in_lists(&values, 200, URL_BUDGET);
        assert!(lists.len() <= 2, "{} lists", lists.len());
        let count: usize = lists.iter().map(|l| l.matches("%40").count()).sum();
        assert_eq!(count, 300);
        for list in &lists {
            assert!(200 + list.len() <= URL_BUDGET);
        }
        let tiny = in_lists(&values[..10], 0, 60);
        assert_eq!(tiny.len(), 10, "one value a list when no two fit");
        assert!(in_lists(&[], 0, 100).is_empty());
        // Exactly the encoding of the list as written.
        let pair = ["a@x.test".to_string(), "o'b c@x.test".to_string()];
        assert_eq!(
            in_lists(&pair, 0, 1000),
            [encode(r"('a@x.test', 'o\'b c@x.test')")]
        );
        let split = in_lists(&pair, 0, encode("('a@x.test', ").len() + 2);
        assert_eq!(
            split,
            [encode("('a@x.test')"), encode(r"('o\'b c@x.test')")]
        );
    }

    #[test]
    fn queries_read_naturally() {
        assert_eq!(
            select(&["Id", "Email"], "Lead", &["IsConverted = false".into()]),
            "SELECT Id, Email FROM Lead WHERE IsConverted = false"
        );
        assert_eq!(encode("SELECT Id FROM Lead"), "SELECT+Id+FROM+Lead");
    }
}
