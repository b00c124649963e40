//! Replays the fuzz targets' seed corpus and every crasher kept under
//! `fuzz/regressions/TARGET/` through the checks the fuzz targets run, so
//! that a bug fuzzing once found stays fixed. `fuzz/run.sh` does the
//! fuzzing itself; it needs a nightly-flagged build and is not part of CI.

#[path = "../../../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

/// A fuzz target's check: panics on a bug.
type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("config", checks::config),
    ("template", checks::template),
    ("people_json", checks::people_json),
    ("people_csv", checks::people_csv),
    ("salesforce_wire", checks::salesforce_wire),
    ("scrub", checks::scrub),
    ("scim_filter", checks::scim_filter),
];

fn inputs(target: &str) -> Vec<PathBuf> {
    // The package directory as cargo gives it when the test runs: a test
    // binary may come from another checkout sharing the target directory.
    let host = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = host.join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

#[test]
fn every_seed_and_kept_crasher_passes_its_fuzz_check() {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "no seeds for the {target} fuzz target");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                file.display()
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz inputs");
}
