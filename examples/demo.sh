#!/usr/bin/env bash
# The main job, end to end, on a fresh machine with rustup and cargo.
#
# Builds the host, the Salesforce emulator and the Salesforce connector (in
# its own cargo build, as a third-party author would), starts a demo org on
# loopback and tests a Leads connection and a Contacts connection against
# it. Then it imports the sample people and syncs them: prospects become
# Leads, customers Contacts. One prospect is promoted to customer (the Lead
# is converted in place), one person is removed, one is edited, and the
# next sync carries exactly that; the one after sends nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
cargo build -p provisioner -p salesforce-emulator
cargo build --release --target wasm32-wasip2 -p salesforce-leads-contacts

target="${CARGO_TARGET_DIR:-target}"
demo="$target/demo"
# The port examples/provisioner.toml names for the demo org.
port=18443
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is already in use (the demo org listens there); stop what listens on it and run again" >&2
    exit 1
fi
rm -rf "$demo"
mkdir -p "$demo/plugins"
cp examples/provisioner.toml "$demo/provisioner.toml"
cp "$target/wasm32-wasip2/release/salesforce_leads_contacts.wasm" "$demo/plugins/"

# Demo credentials, generated per run. The host refuses a secrets file that
# others can read, hence the umask.
random() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
secret="demo-$(random)"
refresh="demo-$(random)"
(umask 077 && cat > "$demo/secrets.toml" <<SECRETS
sf_client_id = "demo-consumer-key"
sf_client_secret = "$secret"
sf_refresh_token = "$refresh"
status_token = "demo-$(random)"
SECRETS
)

SF_EMULATOR_CLIENT_SECRET="$secret" SF_EMULATOR_REFRESH_TOKEN="$refresh" \
    "$target/debug/salesforce-emulator" --listen "127.0.0.1:$port" --rotate-refresh-tokens \
    > "$demo/emulator.log" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

provisioner() {
    echo
    echo "\$ provisioner $*"
    "$target/debug/provisioner" --config "$demo/provisioner.toml" "$@"
}
counters() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /__emulator/counters HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    echo
    echo "emulator counters: $(tail -n 1 <&3)"
    exec 3<&-
}

provisioner plugins list
provisioner check
provisioner connections test salesforce-leads
provisioner connections test salesforce-contacts
provisioner people import examples/people.json
provisioner sync --dry-run
provisioner sync
counters
provisioner groups remove-member prospects p-0002
provisioner groups add-member customers p-0002
provisioner people delete p-0004
provisioner people set p-0003 --attr title="Chief Cryptanalyst"
provisioner sync
counters
provisioner sync
counters
provisioner status
provisioner status person p-0002
