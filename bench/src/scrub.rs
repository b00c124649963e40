//! What scrubbing credentials out of answers costs the host, side by side
//! with parsing the same answer as JSON, which the connector does to every
//! answer anyway: `provisioner-bench --scrub-only`.

use std::time::{Duration, Instant};

use provisioner::broker::scrub::Scrubber;

/// Credentials shaped like a Salesforce connection's: a session id, a
/// refresh token, a connected app's consumer key and secret.
const SECRETS: [&str; 4] = [
    "00D5g000004Cm2E!AQcAQH0dMHZfz972SzmpviTnYq0gD2Kc8uR1xL9wJbA7sVfE3hGkPzNm5oQiUy6tXrWe4dC1aB0zYxWvUtSrQpOnMlKjIhGfEdCbA",
    "5Aep861TSESvWeug_ztpnAk6BGQxRdovMLhHso6JEhaDmGYFTVSsjpG9kZ2Ojg9LgOuvAkqoR5MfwCsPrp2cDuL",
    "3MVG9rFJvQRVOvk5nd6A4swCyck.4BFLnjFuASqNZmmxzpQSFWSTe6lWQxtF3L5soyVLfjV3yBKkjcePAsPzi",
    "1B3F5D7E9A2C4B6D8F0E1A3C5B7D9F2E4A6C8B0D1F3E5A7C9B2D4F6E8A0C1B3",
];

fn lead(n: usize, escaped: bool) -> String {
    let description = if escaped {
        format!(
            r#""Moved from \"Old Co\" to caf\u00e9 team; see https://intranet.example.com/people?id=p{n}&tab=bio%20page""#
        )
    } else {
        "null".to_string()
    };
    format!(
        r#"{{"attributes":{{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/00Q5g00000{n:08}AAA"}},"Id":"00Q5g00000{n:08}AAA","Email":"person{n}@example.com","FirstName":"Ada","LastName":"Lovelace {n}","Title":"Director of Engineering","Company":"Acme & Sons","Phone":"+47 555 {n:05}","Description":{description}}}"#
    )
}

fn query_page(records: usize, escaped: bool) -> Vec<u8> {
    let records: Vec<String> = (0..records).map(|n| lead(n, escaped)).collect();
    format!(
        r#"{{"totalSize":{},"done":true,"records":[{}]}}"#,
        records.len(),
        records.join(",")
    )
    .into_bytes()
}

fn collections_answer(records: usize) -> Vec<u8> {
    let results: Vec<String> = (0..records)
        .map(|n| format!(r#"{{"id":"00Q5g00000{n:08}AAA","success":true,"errors":[]}}"#))
        .collect();
    format!("[{}]", results.join(",")).into_bytes()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Building the scrubber for a connection's credentials, as a token
/// exchange does: (median time, heap bytes).
pub fn build(rounds: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut memory = 0;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let scrubber = Scrubber::new(std::hint::black_box(SECRETS));
        times.push(started.elapsed());
        memory = scrubber.memory_usage();
    }
    (median(times), memory)
}

/// One measured kind of answer: (what, bytes, scrub, parse), medians of
/// `rounds` interleaved rounds.
pub fn run(rounds: usize) -> Vec<(&'static str, usize, Duration, Duration)> {
    let scrubber = Scrubber::new(SECRETS);
    let answers = [
        ("Collections answer, 200 records", collections_answer(200)),
        ("query page, 300 Leads", query_page(300, false)),
        ("query page, 300 Leads with escapes", query_page(300, true)),
        ("query page, 2,000 Leads", query_page(2_000, false)),
    ];
    let mut report = Vec::new();
    for (what, body) in answers {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "{what} is not JSON"
        );
        let (mut scrubs, mut parses) = (Vec::new(), Vec::new());
        for _ in 0..rounds.max(1) {
            let started = Instant::now();
            let (out, found) = scrubber.scrub(std::hint::black_box(&body));
            scrubs.push(started.elapsed());
            assert_eq!(found, 0, "{what} holds no credential");
            std::hint::black_box(out);
            let started = Instant::now();
            let parsed: serde_json::Value =
                serde_json::from_slice(std::hint::black_box(&body)).unwrap_or_default();
            parses.push(started.elapsed());
            std::hint::black_box(parsed);
        }
        report.push((what, body.len(), median(scrubs), median(parses)));
    }
    report
}
