//! provisioner.toml: parsing, then everything computed from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisioner::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(std::path::Path::new("fuzz/provisioner.toml"), text.to_string()) else {
        return;
    };
    if let Ok(schema) = config.attribute_schema() {
        let rules = config.rules(&schema);
        for diagnostic in &rules.diagnostics {
            let _ = diagnostic.to_string();
        }
    }
    let _ = config.sync_settings();
    let _ = config.status_listen();
    let _ = config.runtime_options(None);
    let _ = config.http_limits();
    let _ = config.connection_names().count();
});
