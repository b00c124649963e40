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
# The connector built for contract 0.1 too, from the same source, to tell
# what a call of each contract costs.
components="$target/wasm32-wasip2/release"
cargo build --release --target wasm32-wasip2 -p salesforce-leads-contacts --features contract-0-1
cp "$components/salesforce_leads_contacts.wasm" "$components/salesforce_leads_contacts_v0_1.wasm"
cargo build --release --target wasm32-wasip2 -p salesforce-leads-contacts
# The SCIM workload runs against the reference SCIM server.
cargo build --release --target wasm32-wasip2 -p scim2-connector
bash tests/scim-server.sh > /dev/null
exec "$target/release/provisioner-bench" \
    --component "$components/salesforce_leads_contacts.wasm" \
    --component-v0-1 "$components/salesforce_leads_contacts_v0_1.wasm" \
    --scim-component "$components/scim2_connector.wasm" \
    --command "bash bench/run.sh${*:+ $*}" "$@"
