#!/usr/bin/env bash
# The sample people provisioned into a SCIM 2.0 service provider, end to
# end, on a fresh machine with rustup, cargo and python3.
#
# Builds the host and the SCIM connector (in its own cargo build, as a
# third-party author would), installs the reference SCIM server
# (scim2-server, from the Python package index) and starts it on
# loopback with a token generated for this run. Then it tests the
# connection, imports the sample people and syncs them; one person is
# disabled, one deleted and one edited, and the next sync carries exactly
# that: a deactivation, a deletion and one PATCH.
set -euo pipefail
cd "$(dirname "$0")/../.."

rustup target add wasm32-wasip2
cargo build -p provisioner
cargo build --release --target wasm32-wasip2 -p scim2-connector
server=$(bash tests/scim-server.sh)

target="${CARGO_TARGET_DIR:-target}"
demo="$target/scim-demo"
# The port examples/scim/provisioner.toml names for the SCIM server.
port=18480
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is already in use (the SCIM server listens there); stop what listens on it and run again" >&2
    exit 1
fi
rm -rf "$demo"
mkdir -p "$demo/plugins"
cp examples/scim/provisioner.toml "$demo/provisioner.toml"
cp "$target/wasm32-wasip2/release/scim2_connector.wasm" "$demo/plugins/"

# The host refuses a secrets file that others can read, hence the umask.
token="demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
(umask 077 && echo "scim_token = \"$token\"" > "$demo/secrets.toml")

"$server" --hostname 127.0.0.1 --port "$port" --bearer-token "$token" > "$demo/scim-server.log" 2>&1 &
scim=$!
trap 'kill $scim 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

provisioner() {
    echo
    echo "\$ provisioner $*"
    "$target/debug/provisioner" --config "$demo/provisioner.toml" "$@"
}
users() {
    # What the SCIM server holds, read past the host: userName and active.
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /v2/Users?count=1000 HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n' "$token" >&3
    echo
    echo "SCIM server's users:"
    sed '1,/^\r$/d' <&3 | python3 -c 'import json, sys
for user in json.load(sys.stdin).get("Resources", []):
    name, active, title = user["userName"], user.get("active"), user.get("title", "")
    print(f"  {name:40} active={active} title={title}")'
    exec 3<&-
}

provisioner check
provisioner connections test scim
provisioner people import examples/people.json
provisioner sync --dry-run
provisioner sync
users
provisioner people disable p-0002
provisioner people delete p-0004
provisioner people set p-0003 --attr title="Chief Cryptanalyst"
provisioner sync
users
provisioner sync
provisioner status
