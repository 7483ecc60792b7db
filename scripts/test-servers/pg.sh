#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL server for tests: `pg.sh start DIR` creates a cluster
# in DIR/data (first time only), runs it on a free TCP port of 127.0.0.1 with
# its socket in DIR, creates the role `fluxo` (random password, kept in
# DIR/pg.pass) and the database `fluxo_test`, then writes
# postgresql://fluxo:PASSWORD@127.0.0.1:PORT/fluxo_test to DIR/pg.url and
# prints it. `pg.sh stop DIR` stops the server (fast shutdown) and removes
# DIR/pg.url. Both are idempotent. Nothing is installed here (scripts/deps.sh
# does that). PostgreSQL refuses to run as root, so when called as root the
# server runs as the `postgres` account (FLUXO_PG_USER overrides) and DIR is
# handed to it. Durability is traded for speed (fsync=off): test data only.
# FLUXO_PG_BIN overrides the directory of the server binaries.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
# Absolute: the server and the socket path must not depend on our cwd.
dir=$(realpath -m -- "$2")
url_dir=$dir

# Server binaries: Debian keeps them out of PATH, one directory per major version.
find_bin() {
  if [ -n "${FLUXO_PG_BIN:-}" ]; then
    echo "$FLUXO_PG_BIN"
    return
  fi
  local d
  d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
    sort -t/ -k4 -n -r | head -n 1)
  if [ -n "$d" ]; then
    dirname "$d"
    return
  fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  die "no PostgreSQL server binaries (initdb) found: install postgresql-15 (scripts/deps.sh --test)"
}
bin=$(find_bin)

# Who runs the server: ourselves, or a service account when we are root.
run_user=""
if [ "$(id -u)" = 0 ]; then
  run_user=${FLUXO_PG_USER:-postgres}
  id -u "$run_user" >/dev/null 2>&1 ||
    die "running as root, and there is no '$run_user' account to run the server as (set FLUXO_PG_USER)"
fi

# As root the server account must reach its files, and a build tree under a
# private home (mode 0700) is out of its reach; the socket path is also capped
# at about 100 bytes. So the server lives under /tmp, in a directory named
# after DIR, and only pg.url is written to DIR itself.
if [ -n "$run_user" ]; then
  dir=/tmp/fluxo-pg-$(printf '%s' "$url_dir" | sha1sum | cut -c1-12)
fi
data=$dir/data

as_owner() {
  if [ -z "$run_user" ]; then
    "$@"
  elif command -v runuser >/dev/null; then
    runuser -u "$run_user" -- "$@"
  else
    setpriv --reuid="$run_user" --regid="$(id -g "$run_user")" --init-groups -- "$@"
  fi
}

# Status of the cluster: 0 running, anything else not (pg_ctl: 3 stopped, 4 no data dir).
running() {
  [ -f "$data/PG_VERSION" ] || return 1
  (cd / && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1)
}

# Port of the running server, from the first line of postmaster.pid's fourth field.
current_port() {
  sed -n 4p "$data/postmaster.pid" 2>/dev/null
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free TCP port found on 127.0.0.1 after 50 tries"
}

init_cluster() {
  # The socket path (DIR/.s.PGSQL.PORT) must fit in sun_path (107 bytes).
  [ ${#dir} -le 90 ] || die "DIR path is too long for a Unix socket (${#dir} > 90 characters): $dir"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  if [ -n "$run_user" ]; then
    chown "$run_user:$(id -gn "$run_user")" "$dir"
    as_owner test -w "$dir" -a -x "$dir" ||
      die "'$run_user' cannot write to $dir: a parent directory is not searchable by it; use a DIR under a world-searchable path such as /tmp"
  fi
  if [ ! -s "$dir/pg.pass" ]; then
    # Hex only: the password goes into a URL unescaped.
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/pg.pass")
  fi
  if [ -f "$data/PG_VERSION" ]; then
    return
  fi
  if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
    die "$data exists, is not empty and holds no PostgreSQL cluster: refusing to touch it"
  fi
  echo "pg.sh: creating a cluster in $data" >&2
  (cd / && as_owner "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1) ||
    die "initdb failed (see $dir/initdb.log): $(tail -n 3 "$dir/initdb.log")"
  # Settings owned by this script live in their own file, rewritten at each start.
  echo "include_if_exists = 'fluxo_test.conf'" | as_owner tee -a "$data/postgresql.conf" >/dev/null
}

write_conf() {
  local port=$1
  as_owner tee "$data/fluxo_test.conf" >/dev/null <<EOF
# Written by scripts/test-servers/pg.sh at each start: test server, not for data you keep.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
log_connections = off
EOF
}

start_server() {
  local port
  for _ in 1 2 3 4 5; do
    port=$(pick_port)
    write_conf "$port"
    if (cd / && as_owner "$bin/pg_ctl" start -D "$data" -l "$dir/pg.log" -w -t 60 >/dev/null 2>&1); then
      return 0
    fi
    # Lost a race for the port: pick another; anything else is fatal.
    if ! tail -n 20 "$dir/pg.log" 2>/dev/null | grep -q "could not bind\|could not create any TCP/IP sockets"; then
      die "the server did not start (see $dir/pg.log): $(tail -n 5 "$dir/pg.log" 2>/dev/null)"
    fi
    echo "pg.sh: port $port was taken, trying another" >&2
  done
  die "the server did not start after 5 ports (see $dir/pg.log)"
}

wait_ready() {
  local port=$1
  for _ in $(seq 1 300); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; then
      return 0
    fi
    sleep 0.1
  done
  die "the server on 127.0.0.1:$port is not accepting connections after 30 s (see $dir/pg.log)"
}

# Superuser SQL through the socket in DIR (local trust).
psql_admin() {
  local port=$1
  shift
  (cd / && as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
    -d postgres "$@")
}

setup_db() {
  local port=$1 pass
  pass=$(cat "$dir/pg.pass")
  # Idempotent: creates what is missing, resets the password to the kept one.
  psql_admin "$port" -tA -c "SELECT 1 FROM pg_roles WHERE rolname = 'fluxo'" | grep -q 1 ||
    psql_admin "$port" -c "CREATE ROLE fluxo LOGIN"
  psql_admin "$port" -c "ALTER ROLE fluxo PASSWORD '$pass'"
  psql_admin "$port" -tA -c "SELECT 1 FROM pg_database WHERE datname = 'fluxo_test'" | grep -q 1 ||
    psql_admin "$port" -c "CREATE DATABASE fluxo_test OWNER fluxo ENCODING 'UTF8' TEMPLATE template0"
  echo "postgresql://fluxo:$pass@127.0.0.1:$port/fluxo_test"
}

case $cmd in
start)
  init_cluster
  if ! running; then
    start_server
  fi
  port=$(current_port)
  [ -n "$port" ] || die "the server runs but $data/postmaster.pid shows no port"
  wait_ready "$port"
  url=$(setup_db "$port")
  (umask 077 && echo "$url" >"$dir/pg.url.tmp" && mv -f "$dir/pg.url.tmp" "$dir/pg.url")
  if [ "$url_dir" != "$dir" ]; then
    mkdir -p "$url_dir"
    (umask 077 && echo "$url" >"$url_dir/pg.url.tmp" && mv -f "$url_dir/pg.url.tmp" "$url_dir/pg.url")
  fi
  echo "$url"
  ;;
stop)
  rm -f "$dir/pg.url" "$url_dir/pg.url"
  if running; then
    (cd / && as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null) ||
      die "pg_ctl stop failed (see $dir/pg.log)"
  fi
  ;;
*)
  usage
  ;;
esac
