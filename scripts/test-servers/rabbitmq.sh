#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway RabbitMQ node for tests. `rabbitmq.sh start DIR` runs
# rabbitmq-server in DIR (its data, logs, config and Erlang cookie: HOME=DIR)
# on free ports of 127.0.0.1 only (AMQP, Erlang distribution and a private
# epmd), without the management plugin, waits until it accepts connections,
# creates the vhost `fluxo_test` and an administrator `fluxo` (random
# password), then writes amqp://fluxo:PASSWORD@127.0.0.1:PORT/fluxo_test to
# DIR/amqp.url and prints it. `rabbitmq.sh stop DIR` stops the node and the
# epmd it started and removes DIR/amqp.url; `rabbitmq.sh restart DIR` is stop
# then start with the same ports, node name and data (a broker restart under
# running clients). All three are idempotent. The node name, ports and
# credentials are chosen on the first start and kept in DIR/server.env. Works
# as root (RabbitMQ runs as the caller; HOME points at DIR so nothing of
# root's is touched) and as a normal user. Nothing is installed here
# (scripts/deps.sh --test does that). FLUXO_RABBITMQ_BIN overrides the
# directory of rabbitmq-server and rabbitmqctl.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR | restart DIR" >&2
  exit 2
}

die() {
  echo "rabbitmq.sh: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
dir=$(realpath -m -- "$2")
state=$dir/server.env

# Debian keeps the real scripts in /usr/lib/rabbitmq/bin; /usr/sbin/rabbitmq-server
# is a wrapper that switches to the rabbitmq account when run as root.
find_bin() {
  local d
  for d in "${FLUXO_RABBITMQ_BIN:-}" /usr/lib/rabbitmq/bin; do
    if [ -n "$d" ] && [ -x "$d/rabbitmq-server" ] && [ -x "$d/rabbitmqctl" ]; then
      echo "$d"
      return
    fi
  done
  d=$(command -v rabbitmq-server 2>/dev/null || true)
  if [ -n "$d" ] && [ -x "$(dirname "$d")/rabbitmqctl" ]; then
    dirname "$d"
    return
  fi
  die "no RabbitMQ server found (rabbitmq-server, rabbitmqctl): install rabbitmq-server (scripts/deps.sh --test)"
}
bin=$(find_bin)
command -v epmd >/dev/null || die "epmd (Erlang) is not in PATH: install erlang-base"

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free port not already in the list given as arguments.
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    case " $* " in *" $p "*) continue ;; esac
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free TCP port found on 127.0.0.1 after 50 tries"
}

random_hex() {
  od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Node name, ports and credentials: chosen once per DIR so that a restart keeps
# the same URL and finds its data (RabbitMQ keys its data directory by node name).
init_state() {
  mkdir -p "$dir"
  chmod 0700 "$dir"
  if [ ! -s "$state" ]; then
    local amqp dist ep
    amqp=$(pick_port)
    dist=$(pick_port "$amqp")
    ep=$(pick_port "$amqp" "$dist")
    # Hex only: the password goes into a URL unescaped.
    (umask 077 && cat >"$state.tmp" <<EOF
NODE=fluxo-test-$(random_hex 4)@localhost
AMQP_PORT=$amqp
DIST_PORT=$dist
EPMD_PORT=$ep
AMQP_USER=fluxo
AMQP_PASS=$(random_hex 16)
AMQP_VHOST=fluxo_test
EOF
    mv -f "$state.tmp" "$state")
  fi
  # shellcheck source=/dev/null
  . "$state"
  if [ ! -s "$dir/.erlang.cookie" ]; then
    (umask 077 && random_hex 20 | tr 'a-f0-9' 'A-J' >"$dir/.erlang.cookie")
    chmod 0400 "$dir/.erlang.cookie"
  fi
  mkdir -p "$dir/mnesia" "$dir/log"
  echo "[]." >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  cat >"$dir/rabbitmq.conf" <<EOF
# Written by scripts/test-servers/rabbitmq.sh at each start: a test node, not for data you keep.
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = $DIST_PORT
distribution.listener.port_range.max = $DIST_PORT
log.file.level = info
log.console = false
disk_free_limit.absolute = 50MB
heartbeat = 30
EOF
}

# Everything the server and the CLI tools read comes from DIR, never from /etc
# or the caller's home.
export_env() {
  export HOME=$dir
  export RABBITMQ_NODENAME=$NODE
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$AMQP_PORT
  export RABBITMQ_DIST_PORT=$DIST_PORT
  export ERL_EPMD_PORT=$EPMD_PORT
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_USE_LONGNAME=false
  export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
  export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$dir/mnesia
  export RABBITMQ_LOG_BASE=$dir/log
  export RABBITMQ_PID_FILE=$dir/rabbitmq.pid
  unset RABBITMQ_ENV_LOADED
}

ctl() {
  (cd / && "$bin/rabbitmqctl" -q -n "$NODE" "$@")
}

server_pid() {
  local pid
  pid=$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q beam "/proc/$pid/cmdline" 2>/dev/null &&
    echo "$pid"
}

running() {
  [ -n "$(server_pid)" ]
}

# The epmd on our private port, if one runs.
epmd_running() {
  epmd -port "$EPMD_PORT" -names >/dev/null 2>&1
}

# PIDs of epmd processes started for our private port (found by their environment).
epmd_pids() {
  local pid
  for pid in $(pgrep -x epmd 2>/dev/null); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "ERL_EPMD_PORT=$EPMD_PORT"; then
      echo "$pid"
    fi
  done
}

start_node() {
  # A port taken since the first start cannot be changed (the URL is kept): say which.
  local p
  for p in "$AMQP_PORT" "$DIST_PORT"; do
    if port_in_use "$p"; then
      die "port $p on 127.0.0.1 (from $state) is already in use by another program"
    fi
  done
  rm -f "$dir/rabbitmq.pid"
  # Detached from our stdout/stderr so that callers (CTest fixtures) do not wait on it.
  cd /
  setsid "$bin/rabbitmq-server" >"$dir/log/server.out" 2>&1 </dev/null &
  echo $! >"$dir/launcher.pid"
  cd - >/dev/null
}

# Ready: the pid file names a live VM and the AMQP listener accepts connections.
wait_ready() {
  local deadline=$((SECONDS + 120)) launcher
  launcher=$(cat "$dir/launcher.pid" 2>/dev/null || true)
  while [ $SECONDS -lt $deadline ]; do
    if running; then
      if ctl await_startup --timeout 10 >/dev/null 2>&1 &&
        (cd / && "$bin/rabbitmq-diagnostics" -q -n "$NODE" check_port_connectivity) >/dev/null 2>&1; then
        return 0
      fi
    elif [ -n "$launcher" ] && ! kill -0 "$launcher" 2>/dev/null; then
      die "the node $NODE exited during start-up (see $dir/log): $(tail -n 5 "$dir/log/server.out" 2>/dev/null)"
    fi
    sleep 0.5
  done
  die "the node $NODE did not become ready on 127.0.0.1:$AMQP_PORT within 120 s (see $dir/log): $(tail -n 5 "$dir/log/server.out" 2>/dev/null)"
}

setup_user() {
  ctl add_vhost "$AMQP_VHOST" >/dev/null 2>&1 || ctl list_vhosts name | grep -qx "$AMQP_VHOST" ||
    die "cannot create the vhost $AMQP_VHOST"
  if ! ctl list_users | grep -q "^$AMQP_USER\b"; then
    ctl add_user "$AMQP_USER" "$AMQP_PASS" >/dev/null
  fi
  ctl change_password "$AMQP_USER" "$AMQP_PASS" >/dev/null
  ctl set_user_tags "$AMQP_USER" administrator >/dev/null
  ctl set_permissions -p "$AMQP_VHOST" "$AMQP_USER" ".*" ".*" ".*" >/dev/null
}

do_start() {
  init_state
  export_env
  if ! running; then
    start_node
  fi
  wait_ready
  setup_user
  local url="amqp://$AMQP_USER:$AMQP_PASS@127.0.0.1:$AMQP_PORT/$AMQP_VHOST"
  (umask 077 && echo "$url" >"$dir/amqp.url.tmp" && mv -f "$dir/amqp.url.tmp" "$dir/amqp.url")
  echo "$url"
}

do_stop() {
  rm -f "$dir/amqp.url"
  [ -s "$state" ] || return 0
  # shellcheck source=/dev/null
  . "$state"
  export_env
  local pid
  pid=$(server_pid || true)
  if [ -n "$pid" ]; then
    ctl stop "$dir/rabbitmq.pid" >/dev/null 2>&1 || ctl shutdown >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "rabbitmq.sh: the node did not stop within 60 s; killing PID $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/rabbitmq.pid"
  # The epmd on our private port was started by our node: stop it too. It refuses
  # `-kill` while a node (a CLI tool exiting) is still registered: then by PID.
  if epmd_running; then
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 10)) pid
    while epmd_running && [ $SECONDS -lt $deadline ]; do
      sleep 0.2
      if [ $SECONDS -ge $((deadline - 5)) ]; then
        epmd_pids | while read -r pid; do kill "$pid" 2>/dev/null || true; done
      fi
    done
    ! epmd_running || die "epmd on port $EPMD_PORT is still running"
  fi
  return 0
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
restart)
  do_stop
  do_start
  ;;
*) usage ;;
esac
