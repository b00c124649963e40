#!/usr/bin/env bash
# The main job, end to end, on a fresh machine with rustup and cargo:
# builds the host, the demo store and the reference connector (as a
# third-party author would, with its own cargo build), then lists the
# plugins, checks the configuration and tests the connection.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
cargo build -p provisioner -p json-store
cargo build --release --target wasm32-wasip2 -p json-store-connector

target="${CARGO_TARGET_DIR:-target}"
demo="$target/demo"
rm -rf "$demo"
mkdir -p "$demo/plugins"
cp examples/provisioner.toml "$demo/provisioner.toml"
cp "$target/wasm32-wasip2/release/json_store_connector.wasm" "$demo/plugins/"

# Demo credentials, generated per run; the host refuses a secrets file that
# others can read.
secret="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
refresh="refresh-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
(umask 077 && cat > "$demo/secrets.toml" <<SECRETS
demo_client_id = "demo-client"
demo_client_secret = "$secret"
demo_refresh_token = "$refresh"
SECRETS
)

JSON_STORE_CLIENT_SECRET="$secret" JSON_STORE_REFRESH_TOKEN="$refresh" \
    "$target/debug/json-store" --listen 127.0.0.1:8088 --rotate-refresh-tokens &
store=$!
trap 'kill $store 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/8088) 2>/dev/null && break
    sleep 0.1
done

provisioner() {
    echo
    echo "\$ provisioner $*"
    "$target/debug/provisioner" --config "$demo/provisioner.toml" "$@"
}
provisioner plugins list
provisioner plugins inspect json-store
provisioner check
provisioner connections test demo-store
