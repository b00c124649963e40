#!/usr/bin/env bash
# Installs a SCIM 2.0 client that no one here wrote, scim2-client from the
# Python package index (with its httpx2 engine), into a virtual
# environment of its own if it is not there yet, and prints the path of
# its Python. The SCIM service provider's tests drive it with
# tests/scim-client/drive.py. The version is pinned, so that a new release
# cannot change what the tests check. Not under ~/.cache/provisioner: that
# is the host's compiled-code cache, whose cleaner removes files it does
# not know.
set -euo pipefail
SCIM_CLIENT_VERSION=0.13.2
venv="${PROVISIONER_SCIM_CLIENT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/provisioner-test-tools/scim2-client-$SCIM_CLIENT_VERSION}"
if ! "$venv/bin/python" -c "import scim2_client.engines.httpx2" 2> /dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "scim2-client[httpx2]==$SCIM_CLIENT_VERSION"
fi
echo "$venv/bin/python"
