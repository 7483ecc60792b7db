#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Watched folder under `fluxo serve`: finished files are imported once and
# moved to processed/ with a report; a bad file goes to failed/ with its
# reason and is not retried; partial files are left alone.
source "$(dirname "$0")/lib.sh"
inbox="$FLUXO_DATA_DIR/inbox"
mkdir -p "$inbox"
start_bg serve fluxo serve
serve_pid=$LAST_PID

fluxo generate --rows 500 --seed 41 --out "$T/v.csv" 2>/dev/null
cp "$T/v.csv" "$inbox/vendas.csv.part"          # still downloading
: >"$inbox/vazio.csv"
processed() { ls "$inbox/processed/"*vendas.csv >/dev/null 2>&1; }
failed() { ls "$inbox/failed/"*vazio.csv.report.json >/dev/null 2>&1; }
wait_for 30 "empty file moved to failed/" failed
[ -e "$inbox/vendas.csv.part" ] || fail "partial file was touched"
mv "$inbox/vendas.csv.part" "$inbox/vendas.csv"  # download finished
wait_for 60 "file moved to processed/" processed
report=$(ls "$inbox/processed/"*vendas.csv.report.json)
expect_eq "report status" processed "$(json_get "$report" 'd["status"]')"
expect_eq "report accepted" 500 "$(json_get "$report" 'd["accepted"]')"
grep -q "empty file" "$(ls "$inbox/failed/"*vazio.csv.report.json)" || fail "failed report lacks the reason"
compras500() { [ "$(sql distribution 'SELECT count(*) FROM compras')" = 500 ]; }
wait_for 60 "rows applied by serve" compras500
# the same file dropped again: read, all duplicates, nothing re-sent
cp "$T/v.csv" "$inbox/vendas-again.csv"
again() { ls "$inbox/processed/"*vendas-again.csv.report.json >/dev/null 2>&1; }
wait_for 60 "second copy processed" again
expect_eq "second copy duplicates" 500 "$(json_get "$(ls "$inbox/processed/"*vendas-again.csv.report.json)" 'd["duplicate"]')"
expect_eq "compras unchanged" 500 "$(sql distribution 'SELECT count(*) FROM compras')"
expect_eq "failed file not retried" 1 "$(sql ingest "SELECT count(*) FROM batches WHERE source LIKE '%vazio.csv'")"
kill -TERM "$serve_pid"
wait "$serve_pid"
expect_eq "serve exits 0 on SIGTERM" 0 "$?"
echo "all watch checks passed"
