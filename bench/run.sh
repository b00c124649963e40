#!/usr/bin/env bash
# Builds the host, the benchmark harness and the Salesforce connector in
# release mode, then runs every benchmark workload and writes
# BENCHMARKS.md. Arguments go to the harness (see --help), e.g.
# `bash bench/run.sh --large 0` skips the 100,000-person runs.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p provisioner -p provisioner-bench
cargo build --release --target wasm32-wasip2 -p salesforce-leads-contacts -p probe-connector
exec "$target/release/provisioner-bench" \
    --component "$target/wasm32-wasip2/release/salesforce_leads_contacts.wasm" \
    --probe "$target/wasm32-wasip2/release/probe_connector.wasm" \
    --command "bash bench/run.sh${*:+ $*}" "$@"
