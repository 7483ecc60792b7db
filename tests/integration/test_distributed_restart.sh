#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# RabbitMQ restarted under running services: `fluxo run ingest` and three
# `fluxo run distribution` workers (separate processes, PostgreSQL store)
# while a generated file streams through. As soon as a worker is seen
# applying, the workers are frozen (SIGSTOP), so that the outage falls
# mid-stream whatever the speed of the store, with work in their hands. The
# test server is then stopped (scripts/test-servers/rabbitmq.sh stop + start
# on the fixture's directory, FLUXO_TEST_AMQP_DIR: what `restart` does, split
# so that the test can act while the broker is down), the workers resume into
# a dead connection, and a second file dropped during the outage is staged
# while the relay cannot publish. When the broker is back, the consumers must
# reconnect and take back what the broker requeued (chunks already committed
# come back and the inbox recognises them), and the relay must publish the
# outbox it was left with. The normalized tables must still end up exactly as
# an SQLite-only import of the two files, with no chunk applied twice.
# FLUXO_DIST_ROWS sets the size of the first file, the second has a quarter
# of it (see dist_lib.sh; the issue's figure is 1M rows).
DIST_ROWS_DEFAULT=40000
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/dist_lib.sh"
: "${FLUXO_TEST_AMQP_DIR:?FLUXO_TEST_AMQP_DIR must name the directory of the RabbitMQ test server}"
rabbitmq() { bash "$FLUXO_SOURCE_DIR/scripts/test-servers/rabbitmq.sh" "$1" "$FLUXO_TEST_AMQP_DIR"; }
# a check failing while the broker is down brings it back for the tests that follow
broker_down=0
restart_guard() {
  local rc=$?
  set +e
  [ "$broker_down" = 1 ] && rabbitmq start >/dev/null 2>&1
  (exit "$rc") # cleanup reports and exits with the test's status
  cleanup
}
trap restart_guard EXIT

dist_reset_pg
dist_amqp_bus
dist_generate 22
exp_v=$exp_compras
dist_generate 24 $((dist_rows / 4)) v2
export FLUXO_DB=$pg
dist_start 3
dist_drop_file
dist_wait_first_worker

kill -STOP "${DIST_WORKERS[@]}"
at_stop=$(applied)
[ "$at_stop" -lt "$exp_v" ] ||
  fail "the stream was over before the outage ($at_stop purchases): raise FLUXO_DIST_ROWS"
broker_down=1
rabbitmq stop >"$T/rabbitmq-stop.log" 2>&1 || fail "rabbitmq.sh stop failed: $(tail -3 "$T/rabbitmq-stop.log")"
down_at=$(date +%s)
kill -CONT "${DIST_WORKERS[@]}"
echo "ok - RabbitMQ stopped mid-stream (workers frozen at $at_stop of v.csv's $exp_v purchases)"
dist_drop_file v2
both_staged() { [ "$(pg_n "SELECT count(*) FROM ingest.batches WHERE state = 'queued'")" = 2 ]; }
wait_for 120 "v2.csv staged while the broker is down" both_staged
outbox=$(pg_n "SELECT count(*) FROM ingest.outbox")
[ "$outbox" -gt 0 ] || fail "v2.csv was staged, yet nothing waits in the outbox with the broker down"
echo "ok - v2.csv staged during the outage; $outbox chunks wait in the outbox"
rabbitmq start >"$T/rabbitmq-start.log" 2>&1 || fail "rabbitmq.sh start failed: $(tail -3 "$T/rabbitmq-start.log")"
broker_down=0
echo "ok - RabbitMQ back on the same URL after $(($(date +%s) - down_at))s"

dist_wait_count "chunks left in the outbox" 0 "SELECT count(*) FROM ingest.outbox"
echo "ok - the relay published the outbox after the restart"
dist_wait_done
for f in ingest dist1 dist2 dist3; do
  grep -q 'connection lost' "$T/$f.log" || fail "$f did not notice the broker going away"
done
echo "ok - ingest and every worker saw the connection drop and reconnected"
dist_check_exact
dist_stop
