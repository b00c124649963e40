//! Building the SOQL the connector sends: quoted literals and `IN` lists
//! cut to fit in a URL.

/// Salesforce's URI limit is 16,384 characters; stay well below it so that
/// the host, path and other parameters always fit.
pub const URL_BUDGET: usize = 12_000;

/// A SOQL string literal, with Salesforce's backslash escapes.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
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
    form_urlencoded::byte_serialize(soql.as_bytes()).collect()
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

/// Splits `values` into `IN (...)` lists whose encoded query stays within
/// `budget` characters, given the encoded length of the rest of the query.
pub fn in_lists(values: &[String], fixed: usize, budget: usize) -> Vec<String> {
    let mut lists = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut length = fixed;
    for value in values {
        let quoted = quote(value);
        // The value, its separator, encoded.
        let cost = encode(&quoted).len() + encode(", ").len();
        if !current.is_empty() && length + cost > budget {
            lists.push(format!("({})", current.join(", ")));
            current.clear();
            length = fixed;
        }
        current.push(quoted);
        length += cost;
    }
    if !current.is_empty() {
        lists.push(format!("({})", current.join(", ")));
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
        let count: usize = lists.iter().map(|l| l.matches('@').count()).sum();
        assert_eq!(count, 300);
        for list in &lists {
            assert!(200 + encode(list).len() <= URL_BUDGET + 40);
        }
        let tiny = in_lists(&values[..10], 0, 60);
        assert!(tiny.len() >= 5);
        assert!(in_lists(&[], 0, 100).is_empty());
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
