#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Files without data_hora: rows are keyed by file + row, so re-sending the same
# file changes nothing, while the same purchases in another file are kept and
# flagged as possible duplicates; with dedupe_by_content they are skipped.
source "$(dirname "$0")/lib.sh"

fluxo generate --rows 400 --seed 21 --no-data-hora --out "$T/a.csv" 2>/dev/null
b1=$(import_batch "$T/a.csv")
batch_status "$b1"
expect_eq "accepted" 400 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
b2=$(import_batch "$T/a.csv")
batch_status "$b2"
expect_eq "same file again: duplicates" 400 "$(json_get "$T/status.json" 'd["counts"]["duplicate"]')"
expect_eq "compras" 400 "$(sql distribution 'SELECT count(*) FROM compras')"

# another file repeating the first 10 purchases plus 5 new ones
{ head -1 "$T/a.csv"; sed -n '2,11p' "$T/a.csv"; } >"$T/b.csv"
fluxo generate --rows 5 --seed 22 --no-data-hora 2>/dev/null | tail -n +2 >>"$T/b.csv"
b3=$(import_batch "$T/b.csv")
batch_status "$b3"
expect_eq "repeats kept" 15 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "flagged possible duplicates" 10 "$(json_get "$T/status.json" 'd["counts"]["possible_duplicates"]')"
expect_eq "flag in issues" 10 \
  "$(json_get "$T/status.json" 'sum(1 for i in d["issues"] if i["rule"]=="possible_duplicate")')"
expect_eq "compras" 415 "$(sql distribution 'SELECT count(*) FROM compras')"

# the same with content dedupe: a pipeline copy with the option on
mkdir -p "$T/pipelines"
sed 's/^\(\s*\)dedupe_by_content: false/\1dedupe_by_content: true/' \
  "$FLUXO_SOURCE_DIR/pipelines/vendas.yaml" >"$T/pipelines/vendas.yaml"
grep -q 'dedupe_by_content: true' "$T/pipelines/vendas.yaml" || fail "could not enable dedupe_by_content"
export FLUXO_PIPELINES_DIR="$T/pipelines" FLUXO_DATA_DIR="$T/data2"
b4=$(import_batch "$T/a.csv")
b5=$(import_batch "$T/b.csv")
batch_status "$b5"
expect_eq "content dedupe: repeats skipped" 10 "$(json_get "$T/status.json" 'd["counts"]["duplicate"]')"
expect_eq "content dedupe: new rows" 5 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "compras with content dedupe" 405 "$(sql distribution 'SELECT count(*) FROM compras')"
echo "all no-datetime checks passed"
