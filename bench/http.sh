#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP API figures (called by bench/run.sh): `fluxo run ingest` on a fresh
# data dir, then
#   1. wrk, 64 connections, one JSON sale per POST with a bearer token
#      (bench/http_post.lua): every 202 means validated and durably queued;
#   2. NDRUNS (default 3) NDJSON POSTs of NDROWS rows (default 100000), of
#      different files, each once the relay has drained the outbox: the
#      median one is the figure.
# Prints shell assignments (http_rps=..., http_p99=...) for run.sh to eval.
# With FLUXO_DB set to a postgresql:// URL (bench/pg.sh), the same against
# PostgreSQL (its ingest schema must be fresh).
set -euo pipefail
bin=$1 out=$2
NDROWS=${NDROWS:-100000}
DURATION=${HTTP_DURATION:-15s}
data=$out/hdata
rm -rf "$data"
# a number from the ingest store, SQLite or PostgreSQL
ingest_n() {
  case ${FLUXO_DB:-} in
  postgres*) psql "$FLUXO_DB" -X -q -tA -c "SET search_path = ingest" -c "$1" ;;
  *) sqlite3 -cmd ".timeout 10000" "$data/ingest.db" "$1" ;;
  esac
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FLUXO_DATA_DIR=$data FLUXO_HTTP_ADDR=127.0.0.1:$port FLUXO_LOG_LEVEL=warn
export FLUXO_SECRET=bench-secret-bench-secret-bench-secret-0123
export FLUXO_HTTP_MAX_BODY=512MiB FLUXO_HTTP_MAX_QUEUED_ROWS=100000000
"$bin" migrate >/dev/null
"$bin" run ingest >"$out/http_server.log" 2>&1 &
srv=$!
trap 'kill -TERM $srv 2>/dev/null || true; wait $srv 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export FLUXO_BENCH_TOKEN
FLUXO_BENCH_TOKEN=$("$bin" token bench --scopes ingest:write 2>/dev/null)

# 1. one sale per request
wrk -t2 -c64 -d"$DURATION" --latency -s bench/http_post.lua \
  "http://127.0.0.1:$port/api/v1/pipelines/vendas/records" >"$out/wrk.out" 2>&1
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$out/wrk.out")
p50=$(awk '$1=="50%"{print $2}' "$out/wrk.out")
p99=$(awk '$1=="99%"{print $2}' "$out/wrk.out")
total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out/wrk.out")
# replies other than 2xx, and socket errors (connect, read, write, timeout)
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$out/wrk.out")
sockerr=$(sed -n 's/^ *Socket errors: *//p' "$out/wrk.out" | tr -cs '0-9' ' ' |
  awk '{s=0; for (i=1;i<=NF;i++) s+=$i; print s}')
bad=$(( ${non2xx:-0} + ${sockerr:-0} ))
rss_load=$(awk '/VmHWM/{print int($2/1024)}' /proc/$srv/status)
stored=$(ingest_n "SELECT coalesce(sum(accepted),0) FROM api_requests")

# 2. NDJSON bulk: NDRUNS (default 3) POSTs of different files (seeds 44,
# 45, ...: every POST brings new rows), each on a quiet server; the median
# time is the figure (one POST of a third of a second varies by +-20 % on
# this VM), all of them are reported
NDRUNS=${NDRUNS:-3}
TOKEN=$FLUXO_BENCH_TOKEN
nd_all=
runs=()
for k in $(seq 1 "$NDRUNS"); do
  seed=$((43 + k))
  nd=$out/vendas_${NDROWS}_s${seed}.ndjson
  if [ ! -f "$nd" ]; then
    "$bin" generate --rows "$NDROWS" --seed "$seed" --out "$out/nd.csv" 2>/dev/null
    python3 - "$out/nd.csv" "$nd" <<'PY'
import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8-sig') as f, open(sys.argv[2], 'w') as o:
    for row in csv.DictReader(f):
        o.write(json.dumps(row, ensure_ascii=False) + '\n')
PY
  fi
  # on a quiet server: the relay first publishes what the load before left
  # in the outbox (a few seconds), as it would between two unrelated loads
  for _ in $(seq 1 600); do
    left=$(ingest_n "SELECT count(*) FROM outbox")
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  t=$(curl -s -o "$out/ndjson.out" -w '%{time_total}' -X POST \
    "http://127.0.0.1:$port/api/v1/pipelines/vendas/records" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$nd")
  acc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$out/ndjson.out")
  runs+=("$t $acc")
  nd_all="$nd_all${nd_all:+,}$t"
done
read -r nd_s nd_acc < <(printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (NDRUNS + 1) / 2 ))p")
rss=$(awk '/VmHWM/{print int($2/1024)}' /proc/$srv/status)
kill -TERM $srv
wait $srv
trap - EXIT
echo "http_rps=$rps http_p50=$p50 http_p99=$p99 http_total=$total http_bad=$bad http_stored=$stored"
echo "http_rss_load=$rss_load http_rss=$rss nd_rows=$NDROWS nd_s=$nd_s nd_acc=$nd_acc nd_all=$nd_all nd_runs=$NDRUNS"
