#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Big NDJSON bodies over real HTTP against `fluxo serve`: their chunks are
# written while the body arrives (held, nothing published) and queued when
# the request commits. Checked here: a 5000-record body lands whole in a
# batch of its own, with its repeats dropped and every row applied once; the
# same body again is all duplicates; a client that goes away half way and a
# server killed half way leave nothing behind (held chunks removed, the
# batch failed with the reason) and the rows count as new when sent again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

export FLUXO_AUTH_DEV=true
start_server serve fluxo serve
TOKEN=$(fluxo token tester --scopes "ingest:write read" 2>/dev/null)
auth_args "$TOKEN"
RECORDS=/api/v1/pipelines/vendas/records

# big.ndjson: N sales with distinct times, every 50th line the line before
# it again, every 97th a broken line
python3 - "$T/big.ndjson" 5000 <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
with open(out, 'w') as f:
    prev = None
    for i in range(n):
        if i % 97 == 96:
            f.write('{"nome": "broken\n')
            continue
        if i % 50 == 49 and prev:
            f.write(prev)
            continue
        prev = json.dumps({
            "nome": f"Cliente {i}", "email": f"cliente{i}@example.com",
            "produto": f"Produto {i % 40}", "quantidade": 1 + i % 5,
            "valor_unitario": f"{1 + i % 90},{i % 100:02d}", "forma_pagamento": "Pix",
            "data_hora": f"2025-0{1 + i // 1440 % 9}-{1 + i // 60 % 24:02d} {i // 60 % 24:02d}:{i % 60:02d}",
        }, ensure_ascii=False) + "\n"
        f.write(prev)
PY
# the same shape, other customers (the two aborted bodies)
sed 's/Cliente /Outro /; s/cliente\([0-9]*\)@/outro\1@/' "$T/big.ndjson" >"$T/other.ndjson"

req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: application/json" \
  --data-binary '{"nome":"Pequeno","email":"p@example.com","produto":"Lápis","quantidade":1,"valor_unitario":"1,00","forma_pagamento":"Pix"}'
expect_status "a one-record POST" 202
small_batch=$(body_get 'd["batch_id"]')

req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$T/big.ndjson"
expect_status "a 5000-record NDJSON POST" 202
broken=$(python3 -c 'print(sum(1 for i in range(5000) if i % 97 == 96))')
repeats=$(python3 -c 'print(sum(1 for i in range(5000) if i % 50 == 49 and i % 97 != 96 and i > 0))')
check "counts: broken lines rejected, repeats duplicates" \
  "(d['received'], d['rejected'], d['accepted'], d['duplicates']) == (5000, $broken, 5000 - $broken - $repeats, $repeats)"
big_batch=$(body_get 'd["batch_id"]')
big_accepted=$(body_get 'd["accepted"]')
[ "$big_batch" != "$small_batch" ] || soft_fail "the big body joined the shared API batch"
soft_eq "no chunk is held any more" 0 "$(sql ingest "SELECT count(*) FROM staging_held")"
soft_eq "the big body's chunks hold its accepted rows" "$big_accepted" \
  "$(sql ingest "SELECT sum(nrows) FROM staging WHERE batch_id = '$big_batch'")"
soft_eq "its batch is closed with its counts" "queued|$big_accepted|$repeats" \
  "$(sql ingest "SELECT state, accepted, duplicate FROM batches WHERE id = '$big_batch'")"

applied() { [ "$(sql distribution "SELECT count(*) FROM compras WHERE lote_id = '$big_batch'")" = "$big_accepted" ]; }
wait_for 120 "the big body's rows to be applied" applied
echo "ok - all $big_accepted rows of the big body are purchases of its batch"
req GET "/api/v1/batches/$big_batch" "${AUTH[@]}"
expect_status "GET the big body's batch" 200
check "batch: counts and every row applied" \
  "d['counts']['accepted'] == $big_accepted and d['rows']['applied'] == $big_accepted and d['progress'] == 1"

req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$T/big.ndjson"
expect_status "the same body again" 202
check "all duplicates" "d['accepted'] == 0 and d['duplicates'] == $big_accepted + $repeats"
again_batch=$(body_get 'd["batch_id"]')
soft_eq "its held chunks (all duplicates) were removed" 0 \
  "$(sql ingest "SELECT count(*) FROM staging WHERE batch_id = '$again_batch'")"

# half_body FILE: send the headers and part of FILE's bytes, wait until the
# server holds chunks of it, then print "held" and keep the socket open until
# stdin closes
cat >"$T/half.py" <<'PY'
import socket, sqlite3, sys, time
path, port, token, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = open(path, 'rb').read()
s = socket.create_connection(('127.0.0.1', port))
s.sendall((f"POST /api/v1/pipelines/vendas/records HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode())
# three quarters of it, as a network delivers it: the server hands chunks
# to its writer between pieces of a body
for at in range(0, len(body) * 3 // 4, 32768):
    s.sendall(body[at:min(at + 32768, len(body) * 3 // 4)])
    time.sleep(0.005)
deadline = time.time() + 30
while time.time() < deadline:
    c = sqlite3.connect(db, timeout=10)
    n = c.execute("SELECT count(*) FROM staging_held").fetchone()[0]
    c.close()
    if n:
        break
    time.sleep(0.05)
print("held" if n else "nothing held", flush=True)
sys.stdin.read()
s.close()
PY
half_body() { python3 "$T/half.py" "$1" "$PORT" "$TOKEN" "$FLUXO_DATA_DIR/ingest.db"; }

# ---- a client that goes away half way ---------------------------------------
coproc HALF { half_body "$T/other.ndjson"; }
read -r said <&"${HALF[0]}"
expect_eq "chunks held while the body arrives" held "$said"
soft_eq "held chunks are not queued for publishing" 0 \
  "$(sql ingest "SELECT count(*) FROM outbox o JOIN staging_held h ON h.id = o.staging_id")"
exec {HALF[1]}>&-
wait "$HALF_PID" 2>/dev/null || true
gone() { [ "$(sql ingest "SELECT count(*) FROM staging_held")" = 0 ]; }
wait_for 30 "the abandoned body's held chunks to be removed" gone
soft_eq "its batch failed, saying why, with no chunk left" "1|0" \
  "$(sql ingest "SELECT count(*), coalesce(sum((SELECT count(*) FROM staging s WHERE s.batch_id = b.id)), 0) FROM batches b WHERE state = 'failed' AND error LIKE '%before its body was complete%'")"

# ---- a server killed half way ---------------------------------------------------
coproc HALF { half_body "$T/other.ndjson"; }
read -r said <&"${HALF[0]}"
expect_eq "chunks held again" held "$said"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
exec {HALF[1]}>&-
wait "$HALF_PID" 2>/dev/null || true
held_before=$(sql ingest "SELECT count(*) FROM staging_held")
[ "$held_before" -gt 0 ] || soft_fail "the killed server left no held chunk to clean up"
start_server serve2 fluxo serve
soft_eq "the next start removed the held chunks" 0 "$(sql ingest "SELECT count(*) FROM staging_held")"
soft_eq "and failed their batch, saying why" 1 \
  "$(sql ingest "SELECT count(*) FROM batches WHERE state = 'failed' AND error LIKE '%server stopped%'")"
soft_eq "no chunk of a failed batch is left" 0 \
  "$(sql ingest "SELECT count(*) FROM staging s JOIN batches b ON b.id = s.batch_id WHERE b.state = 'failed'")"

# the abandoned rows were never taken: the whole body is new now
req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$T/other.ndjson"
expect_status "the abandoned body, sent in full" 202
check "taken as new" "d['accepted'] == $big_accepted and d['duplicates'] == $repeats"
stop_server "$SERVER_PID"
expect_eq "serve exits 0 on SIGTERM" 0 "$STOP_RC"
finish_checks "big bodies: held while arriving, queued at commit, removed when abandoned"
