#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: start `fluxo serve` on ./data (SQLite + embedded bus), load
# generated sample sales through both doors (the watched folder and
# `fluxo import`), print what happened and where the data is, then keep
# serving until Ctrl-C. FLUXO_RUN_EXIT=1 stops after the summary.
set -euo pipefail
bin=${1:-build/fluxo}
export FLUXO_DATA_DIR=${FLUXO_DATA_DIR:-./data}
data=$FLUXO_DATA_DIR
inbox=$data/inbox
mkdir -p "$data/samples" "$inbox"

echo "== generating sample sales (deterministic, seed 2025)"
"$bin" generate --rows 20000 --seed 2025 --bad-ratio 0.01 --dup-ratio 0.01 --warn-ratio 0.01 \
  --out "$data/samples/vendas_2025.csv"
"$bin" generate --rows 2000 --seed 2026 --no-data-hora --delimiter ';' \
  --out "$data/samples/vendas_sem_data.csv"

# The API needs a token-signing secret. Without FLUXO_SECRET, development
# mode generates one into the data dir (and the log says so).
if [ -z "${FLUXO_SECRET:-}" ]; then
  export FLUXO_AUTH_DEV=true
  echo "== no FLUXO_SECRET: development mode, the API's signing secret is generated into $data/jwt.secret"
fi
export FLUXO_HTTP_ADDR=${FLUXO_HTTP_ADDR:-127.0.0.1:8001}
echo "== starting fluxo serve on http://$FLUXO_HTTP_ADDR (logs: $data/serve.log)"
"$bin" serve >>"$data/serve.log" 2>&1 &
serve=$!
trap 'kill -TERM $serve 2>/dev/null; wait $serve 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -sf "http://$FLUXO_HTTP_ADDR/healthz" >/dev/null 2>&1 && break
  kill -0 $serve 2>/dev/null || { echo "fluxo serve exited: see $data/serve.log" >&2; tail -5 "$data/serve.log" >&2; exit 1; }
  sleep 0.1
done

echo "== importing $data/samples/vendas_2025.csv with 'fluxo import'"
"$bin" import --log-level warn "$data/samples/vendas_2025.csv" || true

echo "== dropping vendas_sem_data.csv into the watched folder $inbox"
cp "$data/samples/vendas_sem_data.csv" "$inbox/.vendas_sem_data.csv.tmp"
mv "$inbox/.vendas_sem_data.csv.tmp" "$inbox/vendas_sem_data.csv"
for _ in $(seq 1 300); do
  ls "$inbox"/processed/*vendas_sem_data.csv.report.json >/dev/null 2>&1 && break
  sleep 0.1
done
report=$(ls "$inbox"/processed/*vendas_sem_data.csv.report.json 2>/dev/null | tail -1 || true)
[ -n "$report" ] && echo "   report: $report" && grep -E '"(rows|batch_id)"' "$report" | sed 's/^/   /'

echo "== dropping the real sales spreadsheets (tests/data/vendas_*.xlsx) into $inbox"
for f in tests/data/vendas_20250727_185237.xlsx tests/data/vendas_20250727_200024.xlsx; do
  [ -f "$f" ] || continue
  cp "$f" "$inbox/.$(basename "$f").tmp" && mv "$inbox/.$(basename "$f").tmp" "$inbox/$(basename "$f")"
  for _ in $(seq 1 100); do
    ls "$inbox"/processed/*"$(basename "$f")".report.json >/dev/null 2>&1 && break
    sleep 0.1
  done
done
for r in "$inbox"/processed/*.xlsx.report.json; do
  [ -f "$r" ] && echo "   $(basename "$r"): $(grep -o '"accepted": [0-9]*, "rejected": [0-9]*, "duplicate": [0-9]*, "warnings": [0-9]*, "possible_duplicates": [0-9]*' "$r")"
done
sleep 1

echo "== posting one sale to the API (POST /compras with a bearer token)"
token=$("$bin" token demo --scopes "ingest:write read" --ttl 12h 2>/dev/null)
curl -s -X POST "http://$FLUXO_HTTP_ADDR/compras" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d '{"cliente":{"nome":"Maria Oliveira","email":"maria@example.com","telefone":"(11) 98765-4321","cpf_cnpj":"529.982.247-25","endereco_completo":"Rua das Flores, 10 - São Paulo/SP"},"produto":{"nome_produto":"Cadeira Gamer"},"quantidade":1,"valor_unitario":"1.299,90","forma_pagamento":"Pix"}' \
  | sed 's/^/   /'
echo
sleep 1

count() { "$bin" status --json "$1" 2>/dev/null; }
echo
echo "== what is in the normalized tables ($data/distribution.db)"
if command -v sqlite3 >/dev/null; then
  sqlite3 -cmd ".timeout 5000" "$data/distribution.db" \
    "SELECT 'clientes  ', count(*) FROM clientes UNION ALL SELECT 'enderecos ', count(*) FROM enderecos
     UNION ALL SELECT 'produtos  ', count(*) FROM produtos UNION ALL SELECT 'compras   ', count(*) FROM compras;" \
    | sed 's/|/ /; s/^/   /'
fi
cat <<MSG

Fluxo is running (pid $serve) on $data:
   $data/ingest.db        batches, staged chunks, outbox, rejected rows and warnings
   $data/distribution.db  normalized tables: clientes, enderecos, produtos, compras
   $data/bus.db           embedded durable queue (processed_data, distribution.applied)
   $inbox           drop CSV, XLSX or XLS files here; see processed/ and failed/ for reports
   http://$FLUXO_HTTP_ADDR/docs     the API (Swagger UI); a 12-hour token for it:
   $token
Try:  curl -H "Authorization: Bearer \$TOKEN" http://$FLUXO_HTTP_ADDR/compras
      build/fluxo status <batch id>    build/fluxo import FILE    build/fluxo --help
MSG
if [ "${FLUXO_RUN_EXIT:-0}" = 1 ]; then exit 0; fi
echo "Press Ctrl-C to stop."
wait $serve
