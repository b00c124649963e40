//! The people importer, JSON.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use provisioner::directory::import::{Format, parse};
use provisioner::directory::{AttributeSchema, Directory};
use provisioner::state::StateDb;

fn db() -> &'static StateDb {
    static DB: OnceLock<StateDb> = OnceLock::new();
    DB.get_or_init(|| StateDb::in_memory().expect("an in-memory state"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let directory = Directory::new(db(), AttributeSchema::default());
    if let Ok((rows, errors)) = parse("fuzz.json", text, Format::Json, &directory) {
        let lines = text.lines().count().max(1);
        for row in &rows {
            assert!(row.line >= 1 && row.line <= lines, "line {} of {lines}", row.line);
            assert!(directory.validate(&row.change).is_ok());
        }
        for error in &errors {
            let _ = error.to_string();
        }
    }
});
