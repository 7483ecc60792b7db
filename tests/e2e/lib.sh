# SPDX-License-Identifier: MIT
# Shared helpers for end-to-end tests: a private data dir per test, the real
# fluxo binary, sqlite3 to look at what it wrote, deadline-based waits, and
# cleanup of every background process even when a check fails.
set -euo pipefail

: "${FLUXO_BIN:?FLUXO_BIN must point at the fluxo binary}"
: "${FLUXO_SOURCE_DIR:?FLUXO_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/fluxo-e2e-XXXXXX")
export FLUXO_DATA_DIR="$T/data"
export FLUXO_PIPELINES_DIR="$FLUXO_SOURCE_DIR/pipelines"
export FLUXO_LOG_FORMAT=json
# no HTTP API unless a test starts one on a port of its own
export FLUXO_HTTP_ADDR=${FLUXO_HTTP_ADDR:-off}
export FLUXO_WATCH_SETTLE_MS=${FLUXO_WATCH_SETTLE_MS:-300ms}
export FLUXO_WATCH_INTERVAL_MS=${FLUXO_WATCH_INTERVAL_MS:-100ms}
BG_PIDS=()

cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- test failed (rc=$rc); logs in $T:" >&2
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }; done
  fi
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

fluxo() { "$FLUXO_BIN" "$@"; }

# fail MESSAGE
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then fail "$1: expected '$2', got '$3'"; fi
  echo "ok - $1 = $3"
}

# sql DB QUERY  (DB: ingest | distribution | bus)
sql() { sqlite3 -batch -noheader -cmd ".timeout 10000" "$FLUXO_DATA_DIR/$1.db" "$2"; }

# wait_for SECONDS DESCRIPTION COMMAND...  (polls the command until it succeeds)
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && fail "timed out after ${secs}s waiting for: $what"
    sleep 0.1
  done
}

# start_bg NAME COMMAND...  (logs to $T/NAME.log; pid in BG_PIDS and $LAST_PID)
start_bg() {
  local name=$1; shift
  [ "$1" = fluxo ] && set -- "$FLUXO_BIN" "${@:2}"   # the binary itself, so signals reach it
  "$@" >"$T/$name.log" 2>&1 &
  LAST_PID=$!
  BG_PIDS+=("$LAST_PID")
}

# json_get JSON_FILE PYTHON_EXPR  (d = parsed JSON)
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# batch_status BATCH_ID -> writes $T/status.json
batch_status() { fluxo status --json --errors 0 "$1" >"$T/status.json"; }

# import_batch FILE [ARGS...] -> prints the batch id (import waits for application)
import_batch() {
  local f=$1; shift
  fluxo import --quiet "$@" "$f" >"$T/import.out" 2>>"$T/import.log" || return $?
  sed -n 's/.*batch \([0-9a-f-]\{36\}\).*/\1/p' "$T/import.out" | head -1
}

# Independent expectations for a generated file, computed with Python's csv
# module from the file alone (only for files without bad rows).
expected_counts() {
  python3 - "$1" <<'PY'
import csv, sys, re
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
seen, docs, noid, prods, addrs = set(), set(), set(), set(), set()
for r in rows:
    key = tuple(r.values())
    if "data_hora" in r and key in seen:
        continue
    seen.add(key)
    d = re.sub(r"\D", "", r["cpf_cnpj"])
    cust = ("doc", d) if d else ("noid", r["nome"].strip(), r["email"].strip().lower())
    (docs if d else noid).add(cust)
    prods.add(r["produto"].strip())
    if r["endereco_completo"].strip():
        addrs.add((cust, r["endereco_completo"].strip()))
print(len(seen), len(docs) + len(noid), len(prods), len(addrs))
PY
}
