#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after the
# other. Not part of CI. Crashes land in fuzz/artifacts/TARGET/; copy them
# to fuzz/regressions/TARGET/ once fixed, and the regression test replays
# them in `cargo test`.
#
# cargo fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them. -O is an optimised build with the address
# sanitizer and without debug assertions: the host links wasmtime, and a
# second, debug-assertion build costs another 40 minutes on two cores. Add
# `-a` to the cargo fuzz line to trade that time for overflow checks.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in config template people_json people_csv salesforce_wire scrub scim_filter; do
    echo "== $target for ${seconds}s"
    # New inputs go to a scratch corpus under target/; the seeds in
    # corpus/ stay as committed.
    mkdir -p "target/corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "target/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1
done
