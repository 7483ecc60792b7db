#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The distributed scenario over Kafka: librdkafka's mock cluster runs in a
# process of its own (fluxo-kafka-mock, FLUXO_TEST_KAFKA_MOCK; no Kafka broker
# is packaged for Debian), and `fluxo run ingest` plus three `fluxo run
# distribution` workers reach it as kafka://127.0.0.1:PORT, storing into
# PostgreSQL. The first worker seen applying a batch is killed with SIGKILL
# right away: the consumer group hands its partitions to the others after the
# session timeout and they redeliver its leased chunks when the leases end.
# kcat reads a chunk CloudEvent from the processed_data topic. The normalized tables
# must end up exactly as an SQLite-only import of the same file, with no chunk
# applied twice. FLUXO_DIST_ROWS sets the size (see dist_lib.sh), within what
# the mock cluster keeps (below).
DIST_ROWS_DEFAULT=60000
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/dist_lib.sh"
: "${FLUXO_TEST_KAFKA_MOCK:?FLUXO_TEST_KAFKA_MOCK must point at the fluxo-kafka-mock program}"
command -v kcat >/dev/null || fail "kcat not found: install kcat (scripts/deps.sh --test)"

# The mock cluster keeps only about 5 MiB per partition and deletes the oldest
# records beyond that, read or not (librdkafka 2.0.2). A chunk event of 1000
# rows is about 270 KB: on the mock's default 4 partitions, 59 chunks spread
# at random put more than 5 MiB into one partition in about a third of the
# runs, and the oldest chunks of it were gone before the group's first member
# joined (3 s on the mock coordinator): never delivered, the tables one to six
# chunks short, which looked like chunks lost by the killed worker. The
# distribution group's topics therefore get 8 partitions each (the same count
# for the topic and its retry topic, as the backend requires), about 2 MB per
# partition here; other topics keep the default 4. A chunk the cluster deletes
# before it is settled is a loss nothing can repair: the backend logs an error
# naming it, and the test fails at once on that line (kafka_lost below). At
# larger FLUXO_DIST_ROWS the backlog outgrows the mock and the test says so.
start_bg kafka-mock "$FLUXO_TEST_KAFKA_MOCK" --topic processed_data:8 \
  --topic processed_data.retry:8
mock_pid=$LAST_PID
brokers_line() { grep -m1 -E '^[0-9.]+:[0-9]+(,[0-9.]+:[0-9]+)*$' "$T/kafka-mock.log"; }
wait_for 30 "fluxo-kafka-mock to print its address" brokers_line
brokers=$(brokers_line)
echo "ok - mock Kafka cluster at $brokers (pid $mock_pid)"
# The mock coordinator waits session.timeout.ms - 1 s in every rebalance and
# drops joiners whose session ends first: the session the backend picks for
# kafka://mock itself (docs/backends.md, "Testing on the mock cluster").
export FLUXO_BUS="kafka://$brokers?session.timeout.ms=3500&heartbeat.interval.ms=500&topic.metadata.refresh.interval.ms=1000"
# A killed worker's leased chunks come back when their lease ends: 20 s
# rather than 60 s keeps the test short and still outlasts a batch.
export FLUXO_DELIVERY_LEASE_MS=20s
# kafka_lost: fail when a service logged records the cluster deleted unsettled
kafka_lost() {
  local lost
  lost=$(grep -hs -m3 'were deleted by the cluster before the group settled them' "$T"/*.log |
    sed -n 's/.*"msg":"\(.*\)"}$/\1/p') || true
  [ -z "$lost" ] || fail "the mock Kafka cluster deleted records before they were delivered" \
    "(a smaller FLUXO_DIST_ROWS fits it): $lost"
}
DIST_POLL_CHECK=kafka_lost

dist_reset_pg
dist_generate 23
export FLUXO_DB=$pg
dist_start 3
dist_drop_file
dist_kill_first_busy_worker
timeout 30 kcat -b "$brokers" -C -t processed_data -o beginning -c 1 -e -q >"$T/kcat.msg" 2>"$T/kcat.log" ||
  fail "kcat could not read the processed_data topic: $(cat "$T/kcat.log")"
dist_check_cloudevent "$T/kcat.msg" kcat

dist_wait_done
dist_check_exact
dist_stop
kill -TERM "$mock_pid"
rc=0
wait "$mock_pid" || rc=$?
expect_eq "fluxo-kafka-mock exit status after SIGTERM" 0 "$rc"
