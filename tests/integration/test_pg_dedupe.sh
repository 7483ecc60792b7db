#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dedupe on PostgreSQL decides a block of rows per statement; SQLite decides
# row by row. Both must give the same verdicts: each scenario below imports
# the same files, in the same order, once into SQLite and once into
# PostgreSQL (FLUXO_DB=$FLUXO_TEST_PG_URL, embedded bus), and compares, batch
# by batch, the counts of `fluxo status --json`, the issues `fluxo status`
# prints, and the batch's rows of table `issues` in the order they were
# written; then the normalized tables' row counts. Scenarios: repeats inside
# one chunk, across chunks (chunks of 7 rows, a commit every 1000 rows),
# across files, files without data_hora (possible duplicates, against an
# earlier timed file too), dedupe_by_content, and rejected rows.
. "$(dirname "$0")/../e2e/lib.sh"
: "${FLUXO_TEST_PG_URL:?FLUXO_TEST_PG_URL must name the test server}"
pg=$FLUXO_TEST_PG_URL
psql_q() { psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "$1"; }
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
export FLUXO_LOG_LEVEL=warn

# Pipeline variants: the shipped one, one with 7-row chunks, one deduping by content.
mkdir -p "$T/p_default" "$T/p_small" "$T/p_content"
cp "$FLUXO_SOURCE_DIR/pipelines/vendas.yaml" "$T/p_default/"
sed 's/^  chunk_rows: .*/  chunk_rows: 7/' "$T/p_default/vendas.yaml" >"$T/p_small/vendas.yaml"
sed 's/^  dedupe_by_content: .*/  dedupe_by_content: true/' "$T/p_default/vendas.yaml" \
  >"$T/p_content/vendas.yaml"
grep -q 'chunk_rows: 7' "$T/p_small/vendas.yaml" || fail "could not make the 7-row-chunk pipeline"
grep -q 'dedupe_by_content: true' "$T/p_content/vendas.yaml" ||
  fail "could not make the dedupe_by_content pipeline"

# drop_column IN OUT NAME: the CSV without one column
drop_column() {
  python3 - "$1" "$2" "$3" <<'PY'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f, open(sys.argv[2], "w", newline="", encoding="utf-8") as o:
    r = csv.DictReader(f)
    cols = [c for c in r.fieldnames if c != sys.argv[3]]
    w = csv.DictWriter(o, cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in r:
        w.writerow(row)
PY
}
# concat OUT FILE...: the rows of every file under the first file's header
concat() {
  local out=$1; shift
  head -1 "$1" >"$out"
  for f in "$@"; do tail -n +2 "$f" >>"$out"; done
}
# shuffle IN OUT SEED: same rows, another order
shuffle() {
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines(keepends=True)
body = lines[1:]
random.Random(int(sys.argv[3])).shuffle(body)
open(sys.argv[2], "w", encoding="utf-8").write(lines[0] + "".join(body))
PY
}

# --- input files ----------------------------------------------------------
g() { fluxo generate "$@" 2>/dev/null; }
# one chunk: a timed file whose repeats sit next to each other and far apart
g --rows 40 --seed 31 --bad-ratio 0.1 --out "$T/one.src.csv"
python3 - "$T/one.src.csv" "$T/one.csv" <<'PY'
import csv, io, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines(keepends=True)
head, body = lines[0], lines[1:]
# a rejected row whose values need escaping in an array literal: quotes,
# backslashes, braces, commas, a newline, non-ASCII
row = next(csv.reader([body[6]]))
row[6] = '{"1\\2",}'
row[7] = 'R$ "9,99" \\ {x}\nfim ção'
odd = io.StringIO()
csv.writer(odd, lineterminator="\n").writerow(row)
out = [body[0], body[0], body[1], body[2], body[0]] + body[3:] + [body[1], body[5], body[5]]
out.insert(10, odd.getvalue())
open(sys.argv[2], "w", encoding="utf-8").write(head + "".join(out))
PY
g --rows 4000 --seed 32 --dup-ratio 0.3 --bad-ratio 0.1 --warn-ratio 0.05 --out "$T/many.csv"
g --rows 2000 --seed 33 --dup-ratio 0.05 --out "$T/a.csv"
g --rows 1500 --seed 34 --bad-ratio 0.05 --out "$T/b.src.csv"
tail -n 1000 "$T/a.csv" >"$T/a_tail.rows"
concat "$T/ab.csv" "$T/b.src.csv"
cat "$T/a_tail.rows" >>"$T/ab.csv"
g --rows 2500 --seed 35 --no-data-hora --dup-ratio 0.25 --bad-ratio 0.05 --out "$T/nt.csv"
shuffle "$T/nt.csv" "$T/nt_shuffled.csv" 7
g --rows 1200 --seed 36 --dup-ratio 0.1 --out "$T/timed.csv"
drop_column "$T/timed.csv" "$T/untimed.csv" data_hora
g --rows 1500 --seed 37 --bad-ratio 1 --out "$T/allbad.csv"

# --- running a scenario on both engines -----------------------------------
# import_on ENGINE FILE: imports one file (waiting until applied), prints its batch id
import_on() {
  local engine=$1 f=$2 out
  out=$(fluxo import --quiet "$f" 2>>"$T/$engine.log") || true
  sed -n 's/.*batch \([0-9a-f-]\{36\}\).*/\1/p' <<<"$out" | head -1
}
# describe ENGINE BATCH: what must be equal between engines, one file
describe() {
  local engine=$1 batch=$2
  # every issue (--errors 0 = all)
  fluxo status --json --errors 0 "$batch" >"$T/st.json"
  python3 - "$T/st.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["counts"]
print("state", d["state"], "source", d["source"])
print("counts", " ".join(f"{k}={c[k]}" for k in
      ("received", "accepted", "rejected", "duplicate", "warnings", "possible_duplicates",
       "applied")))
for i in d["issues"]:
    print("status-issue", json.dumps(i, ensure_ascii=False, sort_keys=True))
PY
  # the text form, without the lines that name this run's ids and times
  fluxo status --errors 0 "$batch" | grep -v '^batch \|^correlation \|^created ' |
    sed 's/^/status-text /'
  local q="SELECT row, col, field, value, rule, reason, severity"
  if [ "$engine" = sqlite ]; then
    sqlite3 -batch -noheader "$FLUXO_DATA_DIR/ingest.db" \
      "$q FROM issues WHERE batch_id = '$batch' ORDER BY rowid"
  else
    psql_q "$q FROM ingest.issues WHERE batch_id = '$batch' ORDER BY id"
  fi | sed 's/^/issue-row /'
}
# scenario NAME PIPELINES_DIR [ENV=VALUE...] -- FILE...
scenario() {
  local name=$1 pdir=$2; shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local engine f b
  for engine in sqlite postgresql; do
    (
      export FLUXO_PIPELINES_DIR=$pdir
      for e in "${envs[@]:-}"; do [ -n "$e" ] && export "${e?}"; done
      export FLUXO_DATA_DIR=$T/$name.$engine
      if [ "$engine" = postgresql ]; then
        psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
        export FLUXO_DB=$pg
        fluxo migrate >/dev/null
      fi
      for f in "$@"; do
        b=$(import_on "$engine" "$f")
        [ -n "$b" ] || fail "$name: no batch for $(basename "$f") on $engine: $(tail -3 "$T/$engine.log")"
        echo "== batch of $(basename "$f")"
        describe "$engine" "$b"
      done
      echo "== normalized tables"
      # which occurrence of a repeated row was kept shows in linha_origem
      for q in "count(*) FROM clientes" "count(*) FROM enderecos" "count(*) FROM produtos" \
        "count(*), sum(linha_origem), sum(valor_total_centavos) FROM compras"; do
        if [ "$engine" = sqlite ]; then
          echo "$q: $(sqlite3 "$FLUXO_DATA_DIR/distribution.db" "SELECT $q")"
        else
          echo "$q: $(psql_q "SET search_path = distribution; SELECT $q")"
        fi
      done
    ) >"$T/$name.$engine.txt"
  done
  if ! diff -u "$T/$name.sqlite.txt" "$T/$name.postgresql.txt" >"$T/$name.diff"; then
    head -40 "$T/$name.diff" >&2
    fail "$name: PostgreSQL differs from SQLite (above)"
  fi
  local nb ni
  nb=$(grep -c '^== batch' "$T/$name.sqlite.txt")
  ni=$(grep -c '^issue-row' "$T/$name.sqlite.txt" || true)
  echo "ok - $name: $nb batches, $ni issues: PostgreSQL = SQLite" \
    "($(grep '^counts' "$T/$name.sqlite.txt" | head -1 | cut -d' ' -f2-))"
}

# a scenario must have something to compare: the counts say which paths ran
expect_in() { grep -q -- "$2" "$T/$1.sqlite.txt" || fail "$1: expected '$2' in the results"; }

scenario one_chunk "$T/p_default" -- "$T/one.csv"
expect_in one_chunk "duplicate=5 "
scenario small_chunks "$T/p_small" FLUXO_INGEST_COMMIT_ROWS=1000 -- "$T/many.csv" "$T/many.csv"
expect_in small_chunks "duplicate=1200 "
scenario default_chunks "$T/p_default" FLUXO_INGEST_COMMIT_ROWS=1000 -- "$T/many.csv"
scenario across_files "$T/p_default" -- "$T/a.csv" "$T/ab.csv" "$T/a.csv"
expect_in across_files "received=2000 accepted=0 "
scenario untimed "$T/p_small" FLUXO_INGEST_COMMIT_ROWS=1000 -- "$T/nt.csv" "$T/nt.csv" \
  "$T/nt_shuffled.csv"
expect_in untimed "possible_duplicates=[1-9]"
scenario timed_then_untimed "$T/p_default" -- "$T/timed.csv" "$T/untimed.csv"
expect_in timed_then_untimed "possible_duplicate"
scenario by_content "$T/p_content" -- "$T/nt.csv" "$T/untimed.csv"
scenario rejected "$T/p_small" -- "$T/allbad.csv" "$T/many.csv"
expect_in rejected "received=1500 accepted=0 rejected=1500"
psql_q "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" >/dev/null
