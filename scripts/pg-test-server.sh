#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the PostgreSQL store's tests.
#
#   scripts/pg-test-server.sh start DIR   # creates the cluster in DIR, starts it, prints its URL
#   scripts/pg-test-server.sh stop DIR
#
# Needs Debian's postgresql package (initdb and pg_ctl under /usr/lib/postgresql/*/bin).
# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user, who
# must be able to reach DIR (a folder under /tmp, for example).
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "$0: no PostgreSQL server found (install Debian's postgresql package)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres "$dir"
      runuser -u postgres -- test -w "$dir" || { echo "$0: the postgres user cannot reach $dir; choose a folder under /tmp" >&2; exit 1; }
    fi
    # A free port: the kernel picks one for a socket bound to port 0.
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U ecgnas --auth=trust -E UTF8 >"$dir/initdb.log"
      # One role that must give its password, for the wrong-credentials tests; the first
      # matching line of pg_hba.conf wins, so it goes first.
      hba="$dir/data/pg_hba.conf"
      as_owner sh -c "{ echo 'host all ecgnas_password 127.0.0.1/32 scram-sha-256'; cat '$hba'; } > '$hba.new' && mv '$hba.new' '$hba'"
      fresh=1
    fi
    # fsync stays on: the store's durability is part of what the tests check.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c max_connections=200" \
      start >/dev/null
    url="postgres://ecgnas@127.0.0.1:$port/postgres"
    if [ "${fresh:-0}" = 1 ]; then
      "$bin/psql" "$url" -qc "CREATE ROLE ecgnas_password LOGIN PASSWORD 'right-password'" >/dev/null
    fi
    echo "$url"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
