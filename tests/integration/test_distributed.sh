#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Services as separate processes over RabbitMQ + PostgreSQL: `fluxo run
# ingest` (watched folder, relay) and two `fluxo run distribution` workers;
# one worker is killed with SIGKILL while chunks flow. The normalized tables
# in PostgreSQL must end up exactly as an SQLite-only import of the same file
# (counts, money total), with every staged chunk applied and none twice.
. "$(dirname "$0")/../e2e/lib.sh"
: "${FLUXO_TEST_PG_URL:?FLUXO_TEST_PG_URL must name the PostgreSQL test server}"
: "${FLUXO_TEST_AMQP_URL:?FLUXO_TEST_AMQP_URL must name the RabbitMQ test server}"
pg=$FLUXO_TEST_PG_URL
psql_q() { psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
# a private exchange, and the service queues emptied, so earlier runs do not interfere
ex=fluxo-dist-$$
case "$FLUXO_TEST_AMQP_URL" in *\?*) bus="$FLUXO_TEST_AMQP_URL&exchange=$ex" ;; *) bus="$FLUXO_TEST_AMQP_URL?exchange=$ex" ;; esac
for q in processed_data ingest.applied; do
  amqp-delete-queue --url="$FLUXO_TEST_AMQP_URL" --queue="$q" >/dev/null 2>&1 || true
done

fluxo generate --rows 20000 --seed 21 --bad-ratio 0.01 --dup-ratio 0.01 --out "$T/v.csv" 2>/dev/null
FLUXO_DATA_DIR=$T/lite fluxo import --quiet "$T/v.csv" >/dev/null 2>"$T/lite.log" || true
lite() { sqlite3 -batch -noheader "$T/lite/distribution.db" "$1"; }

export FLUXO_DB=$pg FLUXO_BUS=$bus
fluxo migrate >/dev/null
start_bg ingest fluxo run ingest
start_bg dist1 fluxo run distribution
w1=$LAST_PID
start_bg dist2 fluxo run distribution
mkdir -p "$FLUXO_DATA_DIR/inbox"
cp "$T/v.csv" "$FLUXO_DATA_DIR/inbox/.v.csv.part" && mv "$FLUXO_DATA_DIR/inbox/.v.csv.part" "$FLUXO_DATA_DIR/inbox/v.csv"

applied() { psql_q "SELECT count(*) FROM distribution.compras" 2>/dev/null || echo 0; }
wait_for 60 "the first purchases applied" sh -c "[ \$(psql '$pg' -X -q -tA -c 'SELECT count(*) FROM distribution.compras' 2>/dev/null || echo 0) -gt 0 ]"
kill -9 "$w1"
echo "ok - worker 1 killed with $(applied) purchases applied"
expected=$(lite "SELECT count(*) FROM compras")
wait_for 180 "all $expected purchases applied by the other worker" \
  sh -c "[ \$(psql '$pg' -X -q -tA -c 'SELECT count(*) FROM distribution.compras') = $expected ]"
wait_for 60 "every staged chunk marked applied" \
  sh -c "[ \$(psql '$pg' -X -q -tA -c \"SELECT count(*) FROM ingest.staging WHERE state <> 'applied'\") = 0 ]"

for t in clientes enderecos produtos compras; do
  expect_eq "$t rows (PostgreSQL over RabbitMQ = SQLite)" "$(lite "SELECT count(*) FROM $t")" \
    "$(psql_q "SELECT count(*) FROM distribution.$t")"
done
expect_eq "money total" "$(lite "SELECT sum(valor_total_centavos) FROM compras")" \
  "$(psql_q "SELECT sum(valor_total_centavos) FROM distribution.compras")"
expect_eq "no purchase twice" 0 \
  "$(psql_q "SELECT count(*) FROM (SELECT dedupe_id FROM distribution.compras GROUP BY 1 HAVING count(*) > 1) d")"
expect_eq "chunks applied once each" "$(psql_q "SELECT count(*) FROM ingest.staging")" \
  "$(psql_q "SELECT count(*) FROM distribution.inbox")"
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
