#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End to end through RabbitMQ: CSV -> `fluxo run ingest` (watched folder:
# read, validate, stage; its relay publishes the chunks with publisher
# confirms) -> RabbitMQ -> `fluxo run distribution` -> store, each service a
# process of its own, on private servers started here under /tmp
# (scripts/test-servers/pg.sh and rabbitmq.sh; stopped, and everything
# removed, on exit). Measured from the file drop (a rename into the inbox) to
# the last row applied: time and rows/s, the moment the file was fully
# staged, and the peak RSS (VmHWM) of each process read just before it is
# stopped. Two store variants: PostgreSQL, and SQLite (FLUXO_DB=sqlite:DIR,
# one database file per service) so that the bus's cost shows apart from
# PostgreSQL's.
#
#   bench/amqp.sh [ROWS [STORES]]      from the source tree
#     ROWS    rows of the generated file (default 1000000; 100000 for a quick look)
#     STORES  "pg sqlite" (default), "pg" or "sqlite"
#   FLUXO_BIN (default build/fluxo); BENCH_WORKERS: distribution processes on
#   PostgreSQL (default 3, as in the issue; SQLite always gets one, its
#   writers serialize anyway)
#
# Prints markdown table rows to append to bench/RESULTS.md; logs and the
# generated file stay in bench/out/amqp/.
set -euo pipefail
ROWS=${1:-1000000}
STORES=${2:-pg sqlite}
bin=$(realpath "${FLUXO_BIN:-build/fluxo}")
workers=${BENCH_WORKERS:-3}
case "$ROWS$workers" in '' | *[!0-9]*) echo "usage: $0 [ROWS [STORES]] (ROWS a whole number)" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "bench/amqp.sh: no fluxo binary at $bin (set FLUXO_BIN)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/bench/out/amqp
mkdir -p "$out"

# Private servers under a world-searchable /tmp directory (PostgreSQL runs as
# another account when we are root).
srv=$(mktemp -d /tmp/fluxo-bench-amqp-XXXXXX)
chmod 0755 "$srv"
# pg.sh keeps the cluster under /tmp/fluxo-pg-<hash of DIR> when run as root
pg_dir=$srv/pg
if [ "$(id -u)" = 0 ]; then pg_dir=/tmp/fluxo-pg-$(printf '%s' "$srv/pg" | sha1sum | cut -c1-12); fi
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]:-}"; do
    if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null || true; fi
  done
  bash "$src/scripts/test-servers/rabbitmq.sh" stop "$srv/rmq" >/dev/null 2>&1 || true
  bash "$src/scripts/test-servers/pg.sh" stop "$srv/pg" >/dev/null 2>&1 || true
  rm -rf "$srv" "$pg_dir"
}
trap stop_all EXIT
echo "bench/amqp.sh: starting PostgreSQL and RabbitMQ under $srv" >&2
pg_url=$(bash "$src/scripts/test-servers/pg.sh" start "$srv/pg" 2>/dev/null)
amqp_url=$(bash "$src/scripts/test-servers/rabbitmq.sh" start "$srv/rmq" 2>/dev/null)

csv=$src/bench/out/vendas_${ROWS}.csv
[ -f "$csv" ] || "$bin" generate --rows "$ROWS" --seed 42 --out "$csv" 2>/dev/null

export FLUXO_PIPELINES_DIR=$src/pipelines FLUXO_LOG_LEVEL=warn FLUXO_LOG_FORMAT=json
export FLUXO_HTTP_ADDR=off FLUXO_WATCH_SETTLE_MS=200ms FLUXO_WATCH_INTERVAL_MS=100ms

hwm_mb() { awk '/VmHWM/{printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# CPU time (user + system) a process has used so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
secs_of() { python3 -c "print(f'{$1 / $(getconf CLK_TCK):.1f}')"; }
# PostgreSQL's backends: the postmaster's own time plus its reaped children's
# (a backend is reaped when its connection closes).
pg_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$(head -1 "$pg_dir/data/postmaster.pid")/stat"; }
rate() { python3 -c "print(f'{$1 / $2:,.0f}')"; }

# run_variant NAME: one measured run; sets the R_* results.
run_variant() {
  local name=$1 db nw q_inbox q_staged q_rows
  local d=$out/$name
  rm -rf "$d"
  mkdir -p "$d"
  if [ "$name" = pg ]; then
    db=$pg_url
    nw=$workers
    psql "$pg_url" -X -q -c "SET client_min_messages = warning" \
      -c "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
    q() { psql "$pg_url" -X -q -tA -c "$1" 2>/dev/null || echo -1; }
    q_inbox="SELECT coalesce(sum(rows), 0) FROM distribution.inbox"
    q_staged="SELECT count(*) FROM ingest.batches WHERE state = 'queued'"
    q_rows="SELECT count(*) FROM distribution.compras"
  else
    db=sqlite:$d/db
    nw=1
    q() { sqlite3 -batch -noheader -cmd ".timeout 5000" "$d/db/$2.db" "$1" 2>/dev/null || echo -1; }
    q_inbox="SELECT coalesce(sum(rows), 0) FROM inbox"
    q_staged="SELECT count(*) FROM batches WHERE state = 'queued'"
    q_rows="SELECT count(*) FROM compras"
  fi
  # a fresh exchange and fresh service queues for every run
  local q_name s
  for q_name in processed_data ingest.applied; do
    for s in "" .dead .inflight .options; do
      amqp-delete-queue --url="$amqp_url" --queue="$q_name$s" >/dev/null 2>&1 || true
    done
  done
  export FLUXO_DB=$db FLUXO_BUS="$amqp_url?exchange=fluxo-bench-$name-$$"
  FLUXO_DATA_DIR=$d/ingest "$bin" migrate >/dev/null 2>"$d/migrate.log"
  FLUXO_DATA_DIR=$d/ingest "$bin" run ingest >"$d/ingest.log" 2>&1 &
  local ingest=$!
  PIDS+=("$ingest")
  local w=() i
  for i in $(seq 1 "$nw"); do
    FLUXO_DATA_DIR=$d/w$i "$bin" run distribution >"$d/dist$i.log" 2>&1 &
    w+=($!)
    PIDS+=($!)
  done
  sleep 1 # connected and consumers waiting: not part of the measurement
  mkdir -p "$d/ingest/inbox"
  cp "$csv" "$d/ingest/inbox/.v.csv.part"
  local t0 t_staged="" t_done="" now applied last=-1 moved rmq cpu0_rmq
  rmq=$(cat "$srv/rmq/rabbitmq.pid")
  cpu0_rmq=$(cpu_ticks "$rmq")
  local cpu0_pg
  cpu0_pg=$(pg_ticks)
  t0=$(date +%s.%N)
  mv "$d/ingest/inbox/.v.csv.part" "$d/ingest/inbox/v.csv"
  moved=$SECONDS
  while :; do
    now=$(date +%s.%N)
    if [ -z "$t_staged" ] && [ "$(q "$q_staged" ingest)" = 1 ]; then t_staged=$now; fi
    applied=$(q "$q_inbox" distribution)
    if [ "$applied" = "$ROWS" ]; then
      t_done=$now
      break
    fi
    if [ "$applied" != "$last" ]; then
      last=$applied
      moved=$SECONDS
    elif [ $((SECONDS - moved)) -ge 120 ]; then
      echo "bench/amqp.sh: $name: stuck at $applied of $ROWS rows applied for 120 s (logs in $d)" >&2
      exit 1
    fi
    sleep 0.2
  done
  [ -n "$t_staged" ] || t_staged=$t_done
  R_S=$(python3 -c "print(f'{$t_done - $t0:.2f}')")
  R_STAGED=$(python3 -c "print(f'{$t_staged - $t0:.2f}')")
  R_RSS_INGEST=$(hwm_mb "$ingest")
  R_RSS_DIST=""
  for i in "${!w[@]}"; do R_RSS_DIST+="${R_RSS_DIST:+, }$(hwm_mb "${w[$i]}")"; done
  R_RSS_RMQ=$(hwm_mb "$rmq")
  # where the cores went (the services started just before the drop)
  R_CPU="ingest $(secs_of "$(cpu_ticks "$ingest")") s, distribution"
  for i in "${!w[@]}"; do R_CPU+="$([ "$i" = 0 ] || echo ",") $(secs_of "$(cpu_ticks "${w[$i]}")")"; done
  R_CPU+=" s, RabbitMQ node $(secs_of $(($(cpu_ticks "$rmq") - cpu0_rmq))) s"
  R_WORKERS=$nw
  local rows
  rows=$(q "$q_rows" distribution)
  [ "$rows" = "$ROWS" ] || { echo "bench/amqp.sh: $name: $rows purchases in the store, expected $ROWS" >&2; exit 1; }
  for p in "$ingest" "${w[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$ingest" "${w[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  if [ "$name" = pg ]; then
    # the services' connections are closed: wait until their backends are reaped
    for _ in $(seq 1 50); do
      [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")" = 0 ] && break
      sleep 0.1
    done
    R_CPU+=", PostgreSQL backends $(secs_of $(($(pg_ticks) - cpu0_pg))) s"
  fi
}

echo "| measurement | command | time | rows/s | peak RSS |"
echo "|---|---|---|---|---|"
for store in $STORES; do
  case $store in
  pg) label="PostgreSQL" ;;
  sqlite) label="SQLite (\`FLUXO_DB=sqlite:DIR\`)" ;;
  *) echo "bench/amqp.sh: unknown store '$store' (pg, sqlite)" >&2; exit 2 ;;
  esac
  echo "bench/amqp.sh: $store: $ROWS rows, $([ "$store" = pg ] && echo "$workers" || echo 1) distribution process(es)" >&2
  run_variant "$store"
  echo "| CSV → RabbitMQ (publisher confirms) → distribution → $label; \`fluxo run ingest\` + ${R_WORKERS}× \`fluxo run distribution\` as processes, file drop to last row applied | \`bench/amqp.sh $ROWS $store\` | ${R_S} s | $(rate "$ROWS" "$R_S") | ingest ${R_RSS_INGEST} MB, distribution ${R_RSS_DIST} MB, RabbitMQ node ${R_RSS_RMQ} MB |"
  echo "| of which staged by ingest (read, validate, dedupe, stage, outbox; published meanwhile) | same | ${R_STAGED} s | $(rate "$ROWS" "$R_STAGED") | |"
  echo "| CPU time used meanwhile | same | $R_CPU | | |"
done
echo
echo "Input \`fluxo generate --rows $ROWS --seed 42\`; private PostgreSQL (fsync off) and RabbitMQ (quorum queues) on the same $(nproc) vCPUs; watch.settle_ms 200 ms included in the time."
