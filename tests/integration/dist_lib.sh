# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared steps of the distributed integration tests (test_distributed*.sh):
# `fluxo run ingest` (watched folder, relay, applied-status consumer) and
# three `fluxo run distribution` workers as separate processes, each with a
# data dir of its own so that they share nothing but the bus and PostgreSQL.
# The normalized tables they produce are compared with an SQLite-only import
# of the same generated file: table counts, money total, no purchase twice,
# every staged chunk applied exactly once (distribution.inbox). Sourced after
# tests/e2e/lib.sh (T, start_bg, wait_for, expect_eq, fail, cleanup).
#
# Size. FLUXO_DIST_ROWS sets the generated rows. Each test's own default
# (60k; 40k + 10k for the restart) takes 10-30 s on a 2-core machine; CTest
# runs test_distributed (the SIGKILL case) at the issue's 1M rows in the
# release build (about 2 minutes; tests/CMakeLists.txt) and the others at
# their defaults. Nothing depends on the speed: the kill and the broker outage
# happen as soon as a worker is seen applying. To run any of them at 1M
# (not the Kafka one: its mock cluster keeps about 5 MiB per partition, see
# test_distributed_kafka.sh):
# `FLUXO_DIST_ROWS=1000000 ctest -L integration -R 'distributed(_restart)?$'`, or a script
# directly against servers of your own:
#   scripts/test-servers/pg.sh start /tmp/fx-pg
#   scripts/test-servers/rabbitmq.sh start /tmp/fx-rmq
#   FLUXO_DIST_ROWS=1000000 FLUXO_BIN=build/fluxo FLUXO_SOURCE_DIR=$PWD \
#     FLUXO_TEST_PG_URL=$(cat /tmp/fx-pg/pg.url) FLUXO_TEST_AMQP_URL=$(cat /tmp/fx-rmq/amqp.url) \
#     FLUXO_TEST_AMQP_DIR=/tmp/fx-rmq bash tests/integration/test_distributed_restart.sh
#   (then `stop` both servers; the Kafka test also needs
#   FLUXO_TEST_KAFKA_MOCK=build/tests/fluxo-kafka-mock)
# Waits are bounded by progress rather than by size: a wait fails when the
# count it watches has not moved for FLUXO_DIST_STALL_S seconds (default 120),
# which a broker restart (10-25 s) stays well inside.

: "${FLUXO_TEST_PG_URL:?FLUXO_TEST_PG_URL must name the PostgreSQL test server}"
pg=$FLUXO_TEST_PG_URL
dist_rows=${FLUXO_DIST_ROWS:-${DIST_ROWS_DEFAULT:-20000}}
dist_stall=${FLUXO_DIST_STALL_S:-120}
case "$dist_rows$dist_stall" in
'' | *[!0-9]*) fail "FLUXO_DIST_ROWS ('$dist_rows') and FLUXO_DIST_STALL_S ('$dist_stall') must be whole numbers" ;;
esac
# not configuration keys: the services would warn about them in every log
unset FLUXO_DIST_ROWS FLUXO_DIST_STALL_S
# Eight chunks (of ingest.chunk_rows = 1000 rows) per worker transaction
# instead of 64, so that three workers really share a stream of a few dozen
# chunks rather than the first one taking most of it in one batch, and their
# transactions stay short (see the next setting).
export FLUXO_DISTRIBUTION_BATCH=${FLUXO_DISTRIBUTION_BATCH:-8}
# With the row-at-a-time path, workers applying at once on PostgreSQL collide
# on the customers they share: deadlocks (40P01) and unique violations
# (23505) on `clientes` roll chunks back, and the retries can collide again.
# With the default 5 deliveries a chunk was sometimes dead-lettered (seen: 12
# of 30 chunks with distribution.batch = 64), which no bus can make exact.
# Until the PostgreSQL upserts are known not to collide, the tests allow 50
# deliveries and count the collisions (dist_wait_done) so that they show.
export FLUXO_DELIVERY_MAX_ATTEMPTS=${FLUXO_DELIVERY_MAX_ATTEMPTS:-50}
DIST_WORKERS=()
DIST_KILLED=()

psql_q() { psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
# A count for polling: -1 while the table does not exist yet or the server is busy.
pg_n() { psql "$pg" -X -q -tA -c "$1" 2>/dev/null || echo -1; }

# dist_reset_pg: drop what a previous run (or a failed one) left on the shared server.
dist_reset_pg() {
  psql_q "SET client_min_messages = warning; DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
}

# dist_amqp_bus: FLUXO_BUS on a private exchange of the RabbitMQ test server,
# the service queues (and their helper queues) deleted, so earlier runs whose
# queues are still bound to their own exchanges cannot feed this one.
dist_amqp_bus() {
  : "${FLUXO_TEST_AMQP_URL:?FLUXO_TEST_AMQP_URL must name the RabbitMQ test server}"
  dist_exchange=fluxo-dist-$$
  case "$FLUXO_TEST_AMQP_URL" in
  *\?*) FLUXO_BUS="$FLUXO_TEST_AMQP_URL&exchange=$dist_exchange" ;;
  *) FLUXO_BUS="$FLUXO_TEST_AMQP_URL?exchange=$dist_exchange" ;;
  esac
  export FLUXO_BUS
  local q s
  for q in processed_data ingest.applied; do
    for s in "" .dead .inflight .options; do
      amqp-delete-queue --url="$FLUXO_TEST_AMQP_URL" --queue="$q$s" >/dev/null 2>&1 || true
    done
  done
}

# dist_amqp_tap: amqp-consume (amqp-tools) on an exclusive queue of its own
# bound to the private exchange with '#', one file per message in $T/tap: a
# third-party client sees what the services publish without taking it from
# them. It is bound once a probe sent with amqp-publish comes back through it.
dist_amqp_tap() {
  mkdir -p "$T/tap"
  # shellcheck disable=SC2016 # expanded by the per-message shell, not here
  start_bg tap amqp-consume --url="$FLUXO_TEST_AMQP_URL" --exchange="$dist_exchange" \
    --routing-key='#' --exclusive --no-ack -- sh -c 'cat >"$0/$(date +%s%N).msg"' "$T/tap"
  TAP_PID=$LAST_PID
  wait_for 30 "amqp-consume to be bound to exchange $dist_exchange" tap_probe
}
tap_probe() {
  grep -qs fluxo-tap-probe "$T"/tap/*.msg && return 0
  amqp-publish --url="$FLUXO_TEST_AMQP_URL" --exchange="$dist_exchange" \
    --routing-key=fluxo.tap.probe --body=fluxo-tap-probe >/dev/null 2>&1
  return 1
}
tap_has_chunk() { grep -qs '"fluxo.ingest.chunk"' "$T"/tap/*.msg; }

# dist_amqp_tap_check: amqp-consume received a chunk CloudEvent of this batch.
dist_amqp_tap_check() {
  wait_for 120 "amqp-consume to receive a chunk" tap_has_chunk
  kill -TERM "$TAP_PID" 2>/dev/null || true
  local f
  f=$(grep -ls '"fluxo.ingest.chunk"' "$T"/tap/*.msg | head -1)
  dist_check_cloudevent "$f" "amqp-consume"
}

# dist_check_cloudevent FILE WHO: FILE holds one chunk event as Fluxo
# publishes it (CloudEvents 1.0, structured JSON), for a chunk staged by this
# run's batch with the batch's correlation id.
dist_check_cloudevent() {
  local out id corr
  out=$(python3 - "$1" <<'PY'
import json, sys
ev = json.loads(open(sys.argv[1], "rb").read())
want = {"specversion": "1.0", "type": "fluxo.ingest.chunk", "source": "/fluxo/ingest",
        "routingkey": "processed_data", "datacontenttype": "application/json"}
for k, v in want.items():
    if ev.get(k) != v:
        sys.exit(f"attribute {k}: expected {v!r}, got {ev.get(k)!r}")
for k in ("id", "time", "correlationid"):
    if not isinstance(ev.get(k), str) or not ev[k]:
        sys.exit(f"attribute {k} missing")
if not isinstance(ev.get("data"), (dict, list)):
    sys.exit("data is not JSON")
print(ev["id"], ev["correlationid"])
PY
  ) || fail "$2 did not receive a Fluxo chunk CloudEvent in $1"
  read -r id corr <<<"$out"
  expect_eq "$2 received chunk $id, staged with correlation id" "$corr" \
    "$(psql_q "SELECT b.correlation_id FROM ingest.staging s JOIN ingest.batches b ON b.id = s.batch_id WHERE s.id = '$id'")"
}

# dist_generate SEED [ROWS [NAME]]: a test file $T/NAME.csv (default v; ROWS
# default $dist_rows; 1 % bad rows, 1 % duplicates), imported into the
# SQLite-only reference ($T/lite, embedded bus: files accumulate there in the
# order of the calls, which must be the order they are dropped in), and the
# purchases the reference holds so far ($exp_compras).
dist_generate() {
  local rows=${2:-$dist_rows} name=${3:-v}
  fluxo generate --rows "$rows" --seed "$1" --bad-ratio 0.01 --dup-ratio 0.01 \
    --out "$T/$name.csv" 2>/dev/null
  # rejected rows make the import exit non-zero; the reference is what it applied
  (unset FLUXO_DB FLUXO_BUS && FLUXO_DATA_DIR=$T/lite fluxo import --quiet "$T/$name.csv") \
    >/dev/null 2>>"$T/lite.log" || true
  exp_compras=$(lite "SELECT count(*) FROM compras")
  [ "$exp_compras" -gt 0 ] || fail "the SQLite reference import applied nothing (see $T/lite.log)"
  echo "ok - $name.csv: $rows rows generated; the SQLite-only reference holds $exp_compras purchases"
}
lite() { sqlite3 -batch -noheader "$T/lite/distribution.db" "$1"; }

# dist_start [WORKERS]: migrate, then ingest and WORKERS (default 3)
# distribution processes; their pids in $INGEST_PID and DIST_WORKERS. Workers
# log at debug level: one line per applied batch, which tells who did what.
dist_start() {
  local n=${1:-3} i
  fluxo migrate >/dev/null 2>"$T/migrate.log"
  start_bg ingest fluxo run ingest
  INGEST_PID=$LAST_PID
  for i in $(seq 1 "$n"); do
    mkdir -p "$T/w$i"
    start_bg "dist$i" env FLUXO_DATA_DIR="$T/w$i" FLUXO_LOG_LEVEL=debug "$FLUXO_BIN" run distribution
    DIST_WORKERS+=("$LAST_PID")
  done
}

# dist_drop_file [NAME]: $T/NAME.csv (default v) appears in the ingest inbox at
# once (rename); the first drop starts the clock of dist_wait_done.
dist_drop_file() {
  local name=${1:-v}
  mkdir -p "$FLUXO_DATA_DIR/inbox"
  cp "$T/$name.csv" "$FLUXO_DATA_DIR/inbox/.$name.csv.part"
  mv "$FLUXO_DATA_DIR/inbox/.$name.csv.part" "$FLUXO_DATA_DIR/inbox/$name.csv"
  dist_t0=${dist_t0:-$(date +%s.%N)}
}

applied() { pg_n "SELECT count(*) FROM distribution.compras"; }

# Rows of the batches worker I has finished so far (applied, or rolled back
# and retried chunk by chunk), from its per-batch debug lines.
worker_rows() {
  sed -n 's/.*"msg":"[0-9]* chunks, \([0-9]*\) rows in.*/\1/p' "$T/dist$1.log" 2>/dev/null |
    awk '{s += $1} END {print s + 0}'
}
worker_active() { [ "$(worker_rows "$1")" -gt 0 ]; }

# dist_wait_count WHAT TARGET SQL: poll the count SQL until it equals TARGET.
# Fails when it stays put for $dist_stall seconds, or when a count going up
# (TARGET > 0) passes TARGET; counts going down wait for 0. A test may set
# DIST_POLL_CHECK to a command run at every poll that fails at once on a
# cause it can name (the Kafka test: records its mock cluster deleted),
# rather than waiting out the stall.
dist_wait_count() {
  local what=$1 target=$2 q=$3 n last=x moved now
  moved=$(date +%s)
  while :; do
    [ -z "${DIST_POLL_CHECK:-}" ] || $DIST_POLL_CHECK
    n=$(pg_n "$q")
    [ "$n" = "$target" ] && return 0
    [ "$target" -gt 0 ] && [ "$n" -gt "$target" ] && fail "$what: $n, more than the expected $target"
    now=$(date +%s)
    if [ "$n" != "$last" ]; then
      last=$n
      moved=$now
    elif [ $((now - moved)) -ge "$dist_stall" ]; then
      fail "$what: stuck at $n of $target for ${dist_stall}s"
    fi
    sleep 0.5
  done
}

# dist_wait_first_worker: wait until some worker has finished a batch, and set
# FIRST_WORKER to its number: the earliest moment the test can know the
# stream is being applied, so an action taken right then falls mid-stream
# whatever the speed of the store.
dist_wait_first_worker() {
  wait_for 120 "a distribution worker to finish its first batch" any_worker_active
  echo "ok - worker $FIRST_WORKER finished a batch ($(applied) purchases applied so far)"
}
any_worker_active() {
  local i
  for i in "${!DIST_WORKERS[@]}"; do
    if worker_active $((i + 1)); then
      FIRST_WORKER=$((i + 1))
      return 0
    fi
  done
  return 1
}

# dist_wait_done: every purchase applied, every staged chunk marked applied
# (the ingest process received the distribution.applied events).
dist_wait_done() {
  dist_wait_count "purchases applied" "$exp_compras" "SELECT count(*) FROM distribution.compras"
  local secs
  secs=$(python3 -c "import time; print(f'{time.time() - $dist_t0:.1f}')")
  echo "ok - $exp_compras purchases applied ${secs}s after the first file drop" \
    "($(python3 -c "print(f'{$exp_compras / $secs:,.0f}')") purchases/s)"
  dist_wait_count "staged chunks not yet marked applied" 0 \
    "SELECT count(*) FROM ingest.staging WHERE state <> 'applied'"
  local i total=0 r
  for i in "${!DIST_WORKERS[@]}"; do
    r=$(worker_rows $((i + 1)))
    total=$((total + r))
    echo "   worker $((i + 1)): $r rows in the batches it finished (retries included)"
  done
  echo "   rows handled beyond those applied (redeliveries the inbox skipped, retries):" \
    "$((total - $(psql_q "SELECT coalesce(sum(rows), 0) FROM distribution.inbox")))"
  echo "   chunk applications that failed and were retried (store conflicts): $(dist_conflicts)"
}
dist_conflicts() {
  cat "$T"/dist*.log | grep -c '"component":"distribution".*not applied' || true
}

# dist_kill_worker I: SIGKILL to worker I, reaped here so that bash does not
# report the death of its job on stderr.
dist_kill_worker() {
  local p=${DIST_WORKERS[$(($1 - 1))]}
  kill -9 "$p"
  wait "$p" 2>/dev/null || true
  DIST_KILLED+=("$p")
}

# dist_kill_first_busy_worker: once a worker has finished a batch, kill it
# with SIGKILL; fails when the stream was already over (nothing left to
# redeliver, so the kill would test nothing).
dist_kill_first_busy_worker() {
  local at_kill
  dist_wait_first_worker
  dist_kill_worker "$FIRST_WORKER"
  at_kill=$(applied)
  [ "$at_kill" -lt "$exp_compras" ] ||
    fail "the stream was over before the kill ($at_kill purchases): raise FLUXO_DIST_ROWS"
  echo "ok - worker $FIRST_WORKER killed with SIGKILL mid-stream ($at_kill of $exp_compras" \
    "purchases applied)"
}

# dist_check_exact: the end state, against the SQLite reference.
dist_check_exact() {
  local t
  for t in clientes enderecos produtos compras; do
    expect_eq "$t rows (PostgreSQL = SQLite)" "$(lite "SELECT count(*) FROM $t")" \
      "$(psql_q "SELECT count(*) FROM distribution.$t")"
  done
  expect_eq "money total" "$(lite "SELECT sum(valor_total_centavos) FROM compras")" \
    "$(psql_q "SELECT sum(valor_total_centavos) FROM distribution.compras")"
  expect_eq "purchases with a repeated dedupe id" 0 \
    "$(psql_q "SELECT count(*) FROM (SELECT dedupe_id FROM distribution.compras GROUP BY 1 HAVING count(*) > 1) d")"
  # The inbox has one row per applied chunk (message id = staging id, primary
  # key): as many rows as staged chunks, none foreign, the same rows in total.
  expect_eq "staged chunks = chunks in the inbox" "$(psql_q "SELECT count(*) FROM ingest.staging")" \
    "$(psql_q "SELECT count(*) FROM distribution.inbox")"
  expect_eq "staged chunks missing from the inbox" 0 \
    "$(psql_q "SELECT count(*) FROM ingest.staging s WHERE NOT EXISTS (SELECT 1 FROM distribution.inbox i WHERE i.message_id = s.id)")"
  expect_eq "rows in the inbox = rows staged" "$(psql_q "SELECT sum(nrows) FROM ingest.staging")" \
    "$(psql_q "SELECT sum(rows) FROM distribution.inbox")"
  expect_eq "normalized tables psql sees in schema distribution" "clientes compras enderecos produtos" \
    "$(psql_q "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'distribution' AND table_name IN ('clientes', 'enderecos', 'produtos', 'compras')")"
}

# gone PID: the process has exited (a zombie not yet reaped by this shell counts).
gone() {
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  case $s in Z*) return 0 ;; esac
  return 1
}

# dist_stop: SIGTERM to every service process still running; each must exit
# within 60 s with status 0 (a sanitizer report, a leak included, makes it
# non-zero), then the schemas are dropped.
dist_stop() {
  local p rc
  for p in "$INGEST_PID" "${DIST_WORKERS[@]}"; do
    case " ${DIST_KILLED[*]} " in *" $p "*) continue ;; esac
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "$INGEST_PID" "${DIST_WORKERS[@]}"; do
    case " ${DIST_KILLED[*]} " in *" $p "*) continue ;; esac
    wait_for 60 "process $p to stop after SIGTERM" gone "$p"
    rc=0
    wait "$p" || rc=$?
    [ "$rc" = 0 ] || fail "process $p exited with status $rc after SIGTERM (see its log in $T)"
  done
  echo "ok - every service process stopped on SIGTERM with status 0"
  dist_reset_pg
}
