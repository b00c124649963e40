#!/usr/bin/env bash
# What the tests need beyond cargo, installed if missing: the wasm32-wasip2
# target for the connector components; the reference SCIM server and a
# SCIM client (scim2-server and scim2-client from the Python package
# index, each in a virtual environment of its own) for the SCIM tests; a
# PostgreSQL 15 server on loopback for the state backend's tests
# (tests/postgres.sh); and Debian's chromium and
# chromium-driver for the status page's browser test. Safe to run again.
set -euo pipefail
rustup target add wasm32-wasip2

# The SCIM connector is tested against a server no one here wrote, and
# the SCIM service provider with a client no one here wrote.
bash "$(dirname "$0")/scim-server.sh" > /dev/null
bash "$(dirname "$0")/scim-client.sh" > /dev/null

# The PostgreSQL state backend is tested against a real server.
bash "$(dirname "$0")/postgres.sh" > /dev/null

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo > /dev/null; then
    as_root=(sudo)
else
    echo "tests/setup.sh: installing chromium and chromium-driver needs root (or sudo)" >&2
    exit 1
fi
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium chromium-driver
