#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CSV -> normalized PostgreSQL with the embedded bus: the same file imported
# into PostgreSQL (FLUXO_DB=$FLUXO_TEST_PG_URL) and into SQLite lands the same
# rows (counts and money totals, read back with psql and sqlite3); importing
# it again changes nothing; `fluxo status` reads the batch from PostgreSQL.
. "$(dirname "$0")/../e2e/lib.sh"
: "${FLUXO_TEST_PG_URL:?FLUXO_TEST_PG_URL must name the test server}"
pg=$FLUXO_TEST_PG_URL
psql_q() { psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
# a previous run on the same server may have left its schemas
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null

fluxo generate --rows 3000 --seed 11 --bad-ratio 0.02 --dup-ratio 0.02 --out "$T/v.csv" 2>/dev/null

# SQLite reference
FLUXO_DATA_DIR=$T/lite fluxo import --quiet "$T/v.csv" >/dev/null 2>"$T/lite.log" || true
lite() { sqlite3 -batch -noheader "$T/lite/distribution.db" "$1"; }

# PostgreSQL
export FLUXO_DB=$pg
FLUXO_DATA_DIR=$T/pgdata fluxo migrate >/dev/null
FLUXO_DATA_DIR=$T/pgdata fluxo import --quiet "$T/v.csv" >"$T/pg.out" 2>"$T/pg.log" || true
batch=$(sed -n 's/.*batch \([0-9a-f-]\{36\}\).*/\1/p' "$T/pg.out" | head -1)
[ -n "$batch" ] || fail "no batch id in: $(cat "$T/pg.out")"

for t in clientes enderecos produtos compras; do
  expect_eq "$t rows (PostgreSQL = SQLite)" "$(lite "SELECT count(*) FROM $t")" \
    "$(psql_q "SELECT count(*) FROM distribution.$t")"
done
expect_eq "money total" "$(lite "SELECT sum(valor_total_centavos) FROM compras")" \
  "$(psql_q "SELECT sum(valor_total_centavos) FROM distribution.compras")"
expect_eq "payment mix" "$(lite "SELECT group_concat(f || ':' || n, ',') FROM (SELECT forma_pagamento f, count(*) n FROM compras GROUP BY 1 ORDER BY 1)")" \
  "$(psql_q "SELECT string_agg(f || ':' || n, ',' ORDER BY f) FROM (SELECT forma_pagamento f, count(*) n FROM distribution.compras GROUP BY 1) x")"

FLUXO_DATA_DIR=$T/pgdata fluxo status --json --errors 0 "$batch" >"$T/status.json"
expect_eq "batch state read from PostgreSQL" applied "$(json_get "$T/status.json" 'd["state"]')"
expect_eq "rejected rows recorded" "$(json_get "$T/status.json" 'd["counts"]["rejected"]' 2>/dev/null || json_get "$T/status.json" 'd["rejected"]')" \
  "$(psql_q "SELECT rejected FROM ingest.batches WHERE id = '$batch'")"

before=$(psql_q "SELECT count(*) FROM distribution.compras")
FLUXO_DATA_DIR=$T/pgdata fluxo import --quiet "$T/v.csv" >/dev/null 2>>"$T/pg.log" || true
expect_eq "re-import adds nothing" "$before" "$(psql_q "SELECT count(*) FROM distribution.compras")"
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
