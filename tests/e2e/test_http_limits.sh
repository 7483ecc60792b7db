#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Limits and failure modes of the HTTP API: bodies over http.max_body and
# http.max_upload (with Content-Length and chunked), too many and too large
# headers, malformed JSON, NDJSON and multipart bodies; backpressure (429 with
# Retry-After past http.max_queued_rows, and every row answered 202 reaching
# the normalized tables exactly once); and SIGTERM in the middle of an upload
# (it completes with all its rows or is refused whole, and the server exits 0).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

export FLUXO_AUTH_DEV=true
export FLUXO_HTTP_MAX_BODY=64KiB FLUXO_HTTP_MAX_UPLOAD=128KiB FLUXO_HTTP_MAX_HEADERS=16
export FLUXO_HTTP_MAX_QUEUED_ROWS=10
# ingest without distribution: accepted rows stay in the backlog
start_server ingest fluxo run ingest
ingest_pid=$SERVER_PID
TOKEN=$(fluxo token tester --scopes "ingest:write read" 2>/dev/null)
auth_args "$TOKEN"
RECORDS=/api/v1/pipelines/vendas/records
FILES=/api/v1/pipelines/vendas/files
JSON=(-H "Content-Type: application/json")
NDJSON=(-H "Content-Type: application/x-ndjson")

# ndjson_rows N TAG -> N valid, distinct NDJSON records (no data_hora: never deduplicated)
ndjson_rows() {
  python3 - "$1" "$2" <<'PY'
import json, sys
n, tag = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(json.dumps({"nome": f"Cliente {tag} {i}", "email": f"c{i}.{tag}@example.com",
                      "produto": f"Produto {tag}", "quantidade": 1 + i % 3,
                      "valor_unitario": f"{10 + i},{i % 100:02d}", "forma_pagamento": "Pix"}))
PY
}
requests_now() { sql ingest "SELECT count(*) FROM api_requests"; }

# ---- bodies over the limits --------------------------------------------------------
ndjson_rows 500 big >"$T/big.ndjson" # ~75 KB: over 64 KiB
size=$(stat -c %s "$T/big.ndjson")
before=$(requests_now)
req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary "@$T/big.ndjson"
expect_problem "records with Content-Length over http.max_body" 413 "$size bytes" "65536"
post_chunked "$RECORDS" "$TOKEN" application/x-ndjson "$T/big.ndjson" 8192
expect_problem "chunked records past http.max_body (no Content-Length)" 413 "65536"
soft_eq "no request stored for the refused bodies" "$before" "$(requests_now)"
ndjson_rows 3 chunked >"$T/small.ndjson"
post_chunked "$RECORDS" "$TOKEN" application/x-ndjson "$T/small.ndjson" 100
expect_status "chunked records under the limit" 202
check "chunked: 3 accepted" "d['accepted'] == 3"
accepted_total=3

head -c 200000 /dev/zero | tr '\0' 'x' >"$T/big.csv"
req POST "$FILES?filename=big.csv" "${AUTH[@]}" -H "Content-Type: text/csv" --data-binary "@$T/big.csv"
expect_problem "an upload with Content-Length over http.max_upload" 413 "200000 bytes" "131072"
post_chunked "$FILES?filename=big.csv" "$TOKEN" text/csv "$T/big.csv" 16384
expect_problem "a chunked upload past http.max_upload" 413 "131072"
req GET /healthz -d "x=1"
expect_problem "a body on GET /healthz" 413 "at most 0 bytes"

# ---- headers ------------------------------------------------------------------------------
many=()
for i in $(seq 1 20); do many+=(-H "X-Extra-$i: $i"); done
req GET /healthz "${many[@]}"
expect_problem "20 extra header lines (http.max_headers 16)" 431 "at most 16"
req GET /healthz -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'y')"
# http.max_header_bytes is 16 KiB: a 20000-byte header is over it
expect_status "a 20000-byte header (http.max_header_bytes 16KiB)" 431
# far beyond the connection's memory: libmicrohttpd 0.9.75 answers 431 itself
req GET /healthz -H "X-Big: $(head -c 60000 /dev/zero | tr '\0' 'y')"
expect_status "a 60000-byte header" 431

# ---- malformed bodies --------------------------------------------------------------------
before=$(requests_now)
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '[{"nome":"a","email":"a@example.com"'
expect_problem "JSON cut inside an object" 400 "malformed body" "line 1"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '"just a string"'
expect_problem "a JSON string as the body" 400 "malformed body"
{ printf '42'; head -c 60000 /dev/zero | tr '\0' ' '; } >"$T/scalar.json"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary "@$T/scalar.json"
expect_problem "a JSON number then 60000 spaces (refused mid-body)" 400 "malformed body"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '[{"nome":"a"}] [{"nome":"b"}]'
expect_problem "two JSON arrays" 400 "malformed body"
req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary $'\r\n\n  \n'
expect_problem "NDJSON with only blank lines" 400 "empty body"
req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary $'{"nome": "x",\n{]\n'
expect_problem "NDJSON whose every line is broken" 422 "every record"
check "each broken line is named" "sorted(e['line'] for e in d['errors']) == [1, 2] and all(e['rule'] == 'json' for e in d['errors'])"
mp=(-H "Content-Type: multipart/form-data; boundary=XyZ")
req POST "$FILES" "${AUTH[@]}" "${mp[@]}" --data-binary $'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nnome,produto\r\nx,y\r\n'
expect_problem "multipart without its closing boundary" 400 "malformed multipart body" "closing boundary"
req POST "$FILES" "${AUTH[@]}" "${mp[@]}" --data-binary 'no boundary line at all'
expect_problem "multipart that never opens a part" 400 "malformed multipart body"
req POST "$FILES" "${AUTH[@]}" -H "Content-Type: multipart/form-data" --data-binary 'x'
expect_problem "multipart without a boundary parameter" 400 "boundary"
# the NDJSON whose lines are all broken is a request (422) with its issues; the rest are not
soft_eq "malformed bodies store no request" "$((before + 1))" "$(requests_now)"

# ---- backpressure: 429 past http.max_queued_rows, nothing lost ------------------------------
got429=0
for i in $(seq 1 20); do
  ndjson_rows 4 "bp$i" >"$T/bp.ndjson"
  req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary "@$T/bp.ndjson"
  if [ "$STATUS" = 202 ]; then
    accepted_total=$((accepted_total + $(body_get 'd["accepted"]')))
  elif [ "$STATUS" = 429 ]; then
    got429=1
    break
  else
    show_last
    fail "backpressure: expected 202 or 429, got $STATUS"
  fi
done
[ "$got429" = 1 ] || fail "no 429 after 20 requests of 4 rows with http.max_queued_rows 10"
expect_problem "a write past the backlog limit" 429 "Retry-After" "nothing of this request was taken"
check "429: Retry-After in seconds, backlog and limit" "h['retry-after'].isdigit() and int(h['retry-after']) > 0 and d['limit_rows'] == 10 and d['backlog_rows'] > 10"
soft_eq "429 came once the backlog passed 10 rows" 1 "$([ "$accepted_total" -gt 10 ] && [ "$accepted_total" -le 14 ] && echo 1 || echo "0 ($accepted_total rows)")"
req POST /compras "${AUTH[@]}" "${JSON[@]}" --data-binary '{"cliente":{"nome":"Ana","email":"ana@example.com"},"produto":{"nome_produto":"P"},"quantidade":1,"valor_unitario":"1,00","forma_pagamento":"Pix"}'
expect_problem "POST /compras under backpressure" 429
fluxo generate --rows 5 --seed 3 --out "$T/five.csv" 2>/dev/null
req POST "$FILES" "${AUTH[@]}" -F "file=@$T/five.csv"
expect_problem "an upload under backpressure" 429
req GET /readyz
check "readyz shows the backlog" "d['backlog_rows'] == $accepted_total"
soft_eq "every row answered 202 is in ingest.db" "$accepted_total" "$(sql ingest "SELECT sum(accepted) FROM api_requests")"

start_bg distribution fluxo run distribution
dist_pid=$LAST_PID
applied() { [ "$(sql distribution "SELECT count(*) FROM compras" 2>/dev/null)" = "$accepted_total" ]; }
wait_for 60 "$accepted_total purchases applied by distribution" applied
# the backlog drains: writes are taken again
drained() {
  ndjson_rows 1 "after$(date +%s%N)" >"$T/one.ndjson"
  req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary "@$T/one.ndjson"
  [ "$STATUS" = 202 ] && accepted_total=$((accepted_total + 1))
  [ "$STATUS" = 202 ]
}
wait_for 60 "a write to be accepted again once the backlog is applied" drained
wait_for 60 "the last row applied" applied
soft_eq "purchases in distribution.db = rows answered 202" "$accepted_total" "$(sql distribution "SELECT count(*) FROM compras")"
soft_eq "rows accepted in ingest.db = rows answered 202" "$accepted_total" "$(sql ingest "SELECT sum(accepted) FROM api_requests")"
soft_eq "no purchase applied twice" "$accepted_total" "$(sql distribution "SELECT count(DISTINCT dedupe_id) FROM compras")"

stop_server "$ingest_pid"
soft_eq "ingest exits 0 on SIGTERM" 0 "$STOP_RC"
stop_server "$dist_pid"
soft_eq "distribution exits 0 on SIGTERM" 0 "$STOP_RC"

# ---- SIGTERM during an upload ----------------------------------------------------------------
unset FLUXO_HTTP_MAX_BODY FLUXO_HTTP_MAX_UPLOAD FLUXO_HTTP_MAX_QUEUED_ROWS
fluxo generate --rows 20000 --seed 99 --bad-ratio 0 --dup-ratio 0 --out "$T/vendas20k.csv" 2>/dev/null
start_server ingest2 fluxo run ingest
ingest_pid=$SERVER_PID
# a keep-alive connection opened before the SIGTERM asks /readyz during the grace period
cat >"$T/keepalive.py" <<'PY'
import os, socket, sys, time
port, go = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
def get(path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(65536)
    head, _, body = resp.partition(b"\r\n\r\n")
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        body += s.recv(65536)
    return head.split()[1].decode(), body.decode()
print("first", *get("/healthz"), flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
print("then", *get("/readyz"), flush=True)
PY
start_bg keepalive "$PYTHON" "$T/keepalive.py" "$PORT" "$T/go"
keepalive_pid=$LAST_PID
kept() { grep -q "^first 200" "$T/keepalive.log"; }
wait_for 20 "the keep-alive connection to be served" kept
: >"$T/upload.json"
# ~2 MB at 200 KB/s: about ten seconds on the wire
start_bg upload curl -sS --max-time 120 --limit-rate 200k -o "$T/upload.json" -w '%{http_code}' \
  "${AUTH[@]}" -F "file=@$T/vendas20k.csv" "$U$FILES"
upload_pid=$LAST_PID
uploading() { [ "$(cat "$FLUXO_DATA_DIR"/uploads/*vendas20k.csv 2>/dev/null | wc -c)" -gt 200000 ]; }
wait_for 30 "the upload to be under way" uploading
kill -TERM "$ingest_pid"
stopping() { grep -q "stopping: finishing in-flight work" "$T/ingest2.log"; }
wait_for 20 "the server to begin its graceful stop" stopping
new_conn=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U/healthz" || true)
soft_eq "no new connection is taken once stopping" 000 "$new_conn"
touch "$T/go"
keepalive_done() { ! alive "$keepalive_pid"; }
wait_for 30 "the keep-alive connection's second request" keepalive_done
if grep -q '^then 503 .*shutting down' "$T/keepalive.log"; then
  echo "ok - /readyz answers 503 shutting down during the grace period"
else
  soft_fail "/readyz during the grace period, on a connection opened before: expected 503 shutting down, got: $(grep '^then' "$T/keepalive.log" || tail -3 "$T/keepalive.log")"
fi
curl_done() { ! alive "$upload_pid"; }
wait_for 90 "the upload to end" curl_done
wait "$upload_pid" || true
up_status=$(tr -d '\n' <"$T/upload.log")
stop_server "$ingest_pid"
soft_eq "the server exits 0 after SIGTERM during an upload" 0 "$STOP_RC"
if [ "${up_status: -3}" = 202 ]; then
  cp "$T/upload.json" "$T/body"
  echo "ok - the upload in flight completed: 202"
  batch=$(body_get 'd["batch_id"]')
  soft_eq "the 202 counts all 20000 rows" "20000 20000" "$(body_get 'd["received"], d["accepted"]')"
  soft_eq "ingest.db batch counts = the 202's" "20000|20000" "$(sql ingest "SELECT received, accepted FROM batches WHERE id = '$batch'")"
  soft_eq "ingest.db staged rows = the 202's accepted" 20000 "$(sql ingest "SELECT sum(nrows) FROM staging WHERE batch_id = '$batch'")"
  start_bg distribution2 fluxo run distribution
  dist_pid=$LAST_PID
  all20k() { [ "$(sql distribution "SELECT count(*) FROM compras WHERE lote_id = '$batch'" 2>/dev/null)" = 20000 ]; }
  wait_for 90 "the 20000 uploaded rows in distribution.db" all20k
  stop_server "$dist_pid"
  soft_eq "distribution exits 0" 0 "$STOP_RC"
else
  echo "ok - the upload in flight was refused whole: ${up_status: -3} $(head -c 300 "$T/upload.json")"
  soft_eq "a refused upload left no accepted rows" 0 \
    "$(sql ingest "SELECT coalesce(sum(accepted), 0) FROM batches WHERE source LIKE '%vendas20k.csv'")"
fi
finish_checks "all HTTP limit checks passed"
