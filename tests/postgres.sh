#!/usr/bin/env bash
# A PostgreSQL 15 server for the tests, from Debian's packages, on loopback
# only, on a port of its own (54329 unless PROVISIONER_TEST_POSTGRES_PORT
# says otherwise) so that a system cluster on 5432 is left alone. Its data
# directory is under ~/.cache/provisioner-test-tools/postgres-15 (under
# /var/tmp/provisioner-test-tools/postgres-15 when run as root); local and
# loopback connections are trusted, so the tests need no password. Safe to
# run again: a server that already answers is left as it is. Prints the URL
# the tests read (PROVISIONER_TEST_POSTGRES overrides it in the tests).
set -euo pipefail

port="${PROVISIONER_TEST_POSTGRES_PORT:-54329}"
bin=/usr/lib/postgresql/15/bin

if [ ! -x "$bin/pg_ctl" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/postgres.sh: PostgreSQL 15 is not installed ($bin/pg_ctl); install the postgresql-15 package as root" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 > /dev/null
fi

# The server refuses to run as root: as root, everything runs as the
# `postgres` user the package created, which owns the data directory; it
# lives under /var/tmp then, which that user can reach without opening
# root's home to others.
if [ "$(id -u)" -eq 0 ]; then
    as_server=(runuser -u postgres --)
    owner=postgres
    root=/var/tmp/provisioner-test-tools/postgres-15
else
    as_server=()
    owner="$(id -un)"
    root="${HOME}/.cache/provisioner-test-tools/postgres-15"
fi
data="$root/data"
log="$root/server.log"

url="postgres://${owner}@127.0.0.1:${port}/postgres"

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "$url"
    exit 0
fi

mkdir -p "$root"
if [ "$owner" = postgres ]; then
    chmod 755 "$(dirname "$root")"
    chown postgres: "$root"
fi

if [ ! -f "$data/PG_VERSION" ]; then
    "${as_server[@]}" "$bin/initdb" --pgdata="$data" --auth=trust \
        --username="$owner" --encoding=UTF8 --locale=C.UTF-8 > "$root/initdb.log"
fi

# A socket directory of our own: /var/run/postgresql belongs to the
# system cluster and may not exist.
"${as_server[@]}" "$bin/pg_ctl" --pgdata="$data" --log="$log" -w start \
    -o "-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${root} -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" > /dev/null \
    || {
        echo "tests/postgres.sh: the server did not start; its log follows ($log)" >&2
        tail -n 30 "$log" >&2 || true
        exit 1
    }
echo "$url"
