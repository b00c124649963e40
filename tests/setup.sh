#!/usr/bin/env bash
# What the tests need beyond cargo, installed if missing: the wasm32-wasip2
# target for the connector components; the reference SCIM server
# (scim2-server from the Python package index, in a virtual environment
# of its own) for the SCIM connector's tests; and Debian's chromium and
# chromium-driver for the status page's browser test. Safe to run again.
set -euo pipefail
rustup target add wasm32-wasip2

# The SCIM connector is tested against a server no one here wrote. The
# version is pinned, so that a new release cannot change what the tests
# check; tests/scim-reference finds it at this path.
SCIM_SERVER_VERSION=0.8.3
scim_venv="${PROVISIONER_SCIM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/provisioner/scim2-server-$SCIM_SERVER_VERSION}"
if [ ! -x "$scim_venv/bin/scim2-server" ]; then
    python3 -m venv "$scim_venv"
    "$scim_venv/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$SCIM_SERVER_VERSION"
fi

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
