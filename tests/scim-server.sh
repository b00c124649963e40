#!/usr/bin/env bash
# Installs the reference SCIM 2.0 server, scim2-server from the Python
# package index, into a virtual environment of its own if it is not there
# yet, and prints the path of its executable. The version is pinned, so
# that a new release cannot change what the tests check;
# tests/scim-reference finds it at the same path. Not under
# ~/.cache/provisioner: that is the host's compiled-code cache, whose
# cleaner removes files it does not know.
set -euo pipefail
SCIM_SERVER_VERSION=0.8.3
venv="${PROVISIONER_SCIM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/provisioner-test-tools/scim2-server-$SCIM_SERVER_VERSION}"
if ! "$venv/bin/python" -c "import scim2_server" 2> /dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$SCIM_SERVER_VERSION"
fi
echo "$venv/bin/scim2-server"
