//! Mapping templates: parse, render, and the invariants between them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use provisioner::runtime::contract::Value;
use provisioner::sync::mapping::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Template::parse(text) {
        Ok(template) => {
            let person: BTreeMap<String, String> = template
                .attributes()
                .map(|name| (name.to_string(), format!("<{name}>")))
                .collect();
            // Every attribute a template reads shows up when it is set.
            if let Value::Text(rendered) = template.render(&person) {
                for name in template.attributes() {
                    assert!(rendered.contains(&format!("<{name}>")), "{text:?} lost {name}");
                }
            }
            let _ = template.render(&BTreeMap::new());
        }
        Err(error) => {
            // A position always points inside the template.
            assert!(error.position >= 1 && error.position <= text.chars().count().max(1), "{error}");
        }
    }
});
