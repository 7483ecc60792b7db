#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every endpoint of the HTTP API over real HTTP against `fluxo serve`: health,
# readiness, ids and traceparent, routing errors, the original POST /compras,
# records as JSON and NDJSON with their rejections, idempotency keys, file
# uploads, batch and request status, error reports in JSON and CSV, the
# paginated listings and their filters, metrics, and the values that land in
# the normalized tables (money in cents, payment enum and original label).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

export FLUXO_AUTH_DEV=true
start_server serve fluxo serve
serve_pid=$SERVER_PID
TOKEN=$(fluxo token tester --scopes "ingest:write read admin" 2>/dev/null)
auth_args "$TOKEN"
JSON=(-H "Content-Type: application/json")
NDJSON=(-H "Content-Type: application/x-ndjson")
RECORDS=/api/v1/pipelines/vendas/records
UUID='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
accepted_total=0 # rows the 202 answers said were accepted

# ---- health, ids, trace context --------------------------------------------
req GET /healthz
expect_status "GET /healthz" 200
check "healthz body" "d == {'status': 'ok'}"
check "X-Correlation-Id is a UUID" "re.fullmatch('$UUID', h['x-correlation-id'])"
check "traceparent is W3C version 00" "re.fullmatch(r'00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}', h['traceparent'])"
first_corr=$(hdr X-Correlation-Id)
req GET /healthz
[ "$(hdr X-Correlation-Id)" != "$first_corr" ] || soft_fail "two requests got the same correlation id"
tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
req GET /healthz -H "traceparent: $tp"
check "a valid traceparent keeps its trace id, with a new span" \
  "h['traceparent'].split('-')[1] == '4bf92f3577b34da6a3ce929d0e0e4736' and h['traceparent'].split('-')[2] != '00f067aa0ba902b7' and re.fullmatch(r'00-[0-9a-f]{32}-[0-9a-f]{16}-01', h['traceparent'])"
for bad in garbage "00-00000000000000000000000000000000-00f067aa0ba902b7-01" \
  "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"; do
  req GET /healthz -H "traceparent: $bad"
  check "an invalid traceparent ($bad) is replaced by a new trace" \
    "re.fullmatch(r'00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}', h['traceparent']) and h['traceparent'].split('-')[1] not in ('00000000000000000000000000000000', '4bf92f3577b34da6a3ce929d0e0e4736')"
done
req HEAD /healthz -I
expect_status "HEAD /healthz" 200

req GET /readyz
expect_status "GET /readyz" 200
check "readyz says ready, store and bus ok" "d['status'] == 'ready' and d['checks'] == {'store': 'ok', 'bus': 'ok'} and isinstance(d['backlog_rows'], int)"

# ---- routing errors ----------------------------------------------------------
req GET /nope
expect_problem "unknown path" 404 "/nope"
req DELETE /compras "${AUTH[@]}"
expect_problem "DELETE /compras" 405 DELETE
check "405 names the allowed methods" "set(h['allow'].replace(' ', '').split(',')) == {'GET', 'POST'}"
req PUT /healthz
expect_problem "PUT /healthz" 405
check "Allow: GET on /healthz" "h['allow'] == 'GET'"
req POST /api/v1/pipelines/nope/records "${AUTH[@]}" "${JSON[@]}" --data-binary '{"nome":"x"}'
expect_problem "records for an unknown pipeline" 404 "'nope'" vendas

# ---- POST /compras: the original body -----------------------------------------
compra='{"cliente":{"nome":"Maria  da Silva","email":"maria.silva@example.com","telefone":"(11) 98765-4321","cpf_cnpj":"529.982.247-25","endereco_completo":"Rua das Acácias, 100 - Centro, São Paulo - SP"},"produto":{"nome_produto":"Caneta Azul Fluxo"},"quantidade":3,"valor_unitario":"12,50","forma_pagamento":"Cartão de Crédito"}'
req POST /compras "${AUTH[@]}" "${JSON[@]}" --data-binary "$compra"
expect_status "POST /compras" 202
check "202 is JSON" "h['content-type'].startswith('application/json')"
check "202 members" "all(k in d for k in ('batch_id','correlation_id','pipeline','received','accepted','rejected','duplicates','warnings','possible_duplicates','status_url','batch_url','errors','warning_details'))"
check "202 counts" "(d['pipeline'], d['received'], d['accepted'], d['rejected'], d['duplicates']) == ('vendas', 1, 1, 0, 0) and d['errors'] == []"
check "202 ids and links" "re.fullmatch('$UUID', d['batch_id']) and d['correlation_id'] == h['x-correlation-id'] and d['status_url'] == '/api/v1/status/' + d['correlation_id'] and d['batch_url'] == '/api/v1/batches/' + d['batch_id'] and h['location'] == d['status_url']"
compra_corr=$(body_get 'd["correlation_id"]')
accepted_total=$((accepted_total + 1))

req POST /compras "${AUTH[@]}" "${JSON[@]}" --data-binary '{"cliente":{"nome":"Zé","email":"ze@example.com"},"produto":{"nome_produto":"Lápis"},"quantidade":0,"valor_unitario":"1,00","forma_pagamento":"Pix"}'
expect_problem "POST /compras with a rejected record" 422 rejected
check "422 lists the error: record, field, value, rule, reason" \
  "any(e['record'] == 1 and e['field'] == 'quantidade' and e['value'] == '0' and e['rule'] == 'min' and 'at least 1' in e['reason'] for e in d['errors'])"
check "422 counts" "(d['received'], d['accepted'], d['rejected']) == (1, 0, 1)"
req POST /compras "${AUTH[@]}" "${JSON[@]}" --data-binary "[$compra,$compra]"
expect_problem "POST /compras with two purchases" 400 "one purchase"
req POST /compras "${AUTH[@]}" "${NDJSON[@]}" --data-binary "$compra"
expect_problem "POST /compras as NDJSON" 415 "application/json"
req POST /compras "${AUTH[@]}" -H "Content-Type: text/plain" --data-binary "$compra"
expect_problem "POST /compras as text/plain" 415 "text/plain"

# ---- records: JSON array, NDJSON, rejections, malformed bodies ----------------
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '[
 {"nome":"Ana Pereira","email":"ana.pereira@example.com","cpf_cnpj":"111.444.777-35","produto":"Caderno Universitário Fluxo","quantidade":2,"valor_unitario":"1.234,56","forma_pagamento":"Pix","data_hora":"2024-03-10T14:30:00"},
 {"nome":"Bruno Lima","email":"bruno.lima@example.com","produto":"Mochila Fluxo","quantidade":1,"valor_unitario":199.9,"forma_pagamento":"Boleto Bancário","data_hora":"2024-03-11T09:15:00"},
 {"nome":"Carla Souza","email":"carla.souza@example.com","produto":"Estojo Fluxo","quantidade":4,"valor_unitario":"7.5","forma_pagamento":"TED","data_hora":"2024-03-12T16:45:00"}]'
expect_status "POST records, a JSON array of 3" 202
check "3 accepted" "(d['received'], d['accepted'], d['rejected'], d['duplicates']) == (3, 3, 0, 0)"
accepted_total=$((accepted_total + 3))

req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary $'{"nome":"Diego Alves","email":"diego.alves@example.com","produto":"Régua Fluxo","quantidade":1,"valor_unitario":"3,00","forma_pagamento":"Dinheiro"}\n{"nome": \n{"nome":"Elisa","email":"elisa@example.com","produto":"Cola Fluxo","quantidade":0,"valor_unitario":"2,00","forma_pagamento":"Pix"}\n\n{"nome":"Fábio Rocha","email":"fabio.rocha@example.com","produto":"Tesoura Fluxo","quantidade":5,"valor_unitario":"4,20","forma_pagamento":"Débito"}\n'
expect_status "POST NDJSON with a broken line and an invalid record" 202
check "NDJSON counts: 2 accepted, 2 rejected" "(d['received'], d['accepted'], d['rejected']) == (4, 2, 2)"
check "the broken line is named (record 2, line 2, rule json)" \
  "any(e['record'] == 2 and e.get('line') == 2 and e['rule'] == 'json' and 'line 2' in e['reason'] for e in d['errors'])"
check "the invalid record is named (record 3, line 3, quantidade)" \
  "any(e['record'] == 3 and e.get('line') == 3 and e['field'] == 'quantidade' and e['rule'] == 'min' for e in d['errors'])"
ndjson_corr=$(body_get 'd["correlation_id"]')
ndjson_batch=$(body_get 'd["batch_id"]')
accepted_total=$((accepted_total + 2))

tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" -H "traceparent: $tp" --data-binary '{"nome":"Gustavo Reis","email":"gustavo.reis@example.com","produto":"Marca-texto Fluxo","quantidade":1,"valor_unitario":"6,90","forma_pagamento":"Pix"}'
expect_status "POST a record with a traceparent" 202
check "the record's trace goes on in the reply" "h['traceparent'].split('-')[1] == '0af7651916cd43dd8448eb211c80319c'"
traced_corr=$(body_get 'd["correlation_id"]')
accepted_total=$((accepted_total + 1))
soft_eq "the request is stored under the client's trace" 0af7651916cd43dd8448eb211c80319c \
  "$(sql ingest "SELECT substr(traceparent, 4, 32) FROM api_requests WHERE correlation_id = '$traced_corr'")"

req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary $'{"nome":"","produto":"X","quantidade":1,"valor_unitario":"1","forma_pagamento":"Pix"}\n[1,2]\n'
expect_problem "NDJSON where every record is rejected" 422 "every record"
check "both rejections listed" "sorted({e['record'] for e in d['errors']}) == [1, 2] and d['accepted'] == 0 and d['rejected'] == 2"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '[{"nome":"Gil","email":"gil@example.com","produto":"P","quantidade":1,"valor_unitario":1,"forma_pagamento":"Pix"},'
expect_problem "unterminated JSON array" 400 "malformed body" "closing ']'"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '42'
expect_problem "a JSON number as the body" 400 "malformed body"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '{"nome":"x"} trailing'
expect_problem "garbage after the JSON object" 400 "malformed body"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '   '
expect_problem "a blank body" 400 "empty body"
req POST "$RECORDS" "${AUTH[@]}" "${NDJSON[@]}" --data-binary $'\n\n'
expect_problem "NDJSON of blank lines" 400 "empty body"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" --data-binary '[]'
expect_problem "an empty array" 400 "no record"
req POST "$RECORDS" "${AUTH[@]}" -H "Content-Type: text/csv" --data-binary 'a,b'
expect_problem "records as text/csv" 415 "text/csv" "application/x-ndjson"
req POST "$RECORDS" "${AUTH[@]}" --data-binary '{"nome":"x"}' -H "Content-Type:"
expect_problem "records without a Content-Type" 415 "(none)"

# ---- idempotency ----------------------------------------------------------------
idem_body='[{"nome":"Helena Dias","email":"helena.dias@example.com","produto":"Agenda Fluxo","quantidade":1,"valor_unitario":"25,00","forma_pagamento":"Pix"},{"nome":"","produto":"X","quantidade":1,"valor_unitario":1,"forma_pagamento":"Pix"}]'
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" -H "Idempotency-Key: order-42" --data-binary "$idem_body"
expect_status "first request with an Idempotency-Key" 202
check "no replay header on the first request" "'idempotent-replayed' not in h"
cp "$T/body" "$T/idem1.json"
accepted_total=$((accepted_total + 1))
requests_before=$(sql ingest "SELECT count(*) FROM api_requests")
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" -H "Idempotency-Key: order-42" --data-binary "$idem_body"
expect_status "same key, same body" 202
check "replayed: Idempotent-Replayed: true" "h.get('idempotent-replayed') == 'true'"
cp "$T/body" "$T/idem2.json"
if python3 - "$T/idem1.json" "$T/idem2.json" <<'PY'; then
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
key = lambda e: json.dumps(e, sort_keys=True)
for d in (a, b):
    d["errors"] = sorted(d["errors"], key=key)
    d["warning_details"] = sorted(d["warning_details"], key=key)
diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
for k in diff:
    print(f"replay differs in {k}:\n  first:    {json.dumps(a.get(k))}\n  replayed: {json.dumps(b.get(k))}",
          file=sys.stderr)
sys.exit(1 if diff else 0)
PY
  echo "ok - the replayed response is the first one"
else
  soft_fail "the replayed response differs from the first one"
fi
soft_eq "no new api_requests row on replay" "$requests_before" "$(sql ingest "SELECT count(*) FROM api_requests")"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" -H "Idempotency-Key: order-42" --data-binary '[{"nome":"Outro"}]'
expect_problem "same key, another body" 422 "Idempotency-Key" "different body"
req POST "$RECORDS" "${AUTH[@]}" "${JSON[@]}" -H "Idempotency-Key: $(printf 'k%.0s' $(seq 256))" --data-binary "$idem_body"
expect_problem "a 256-character Idempotency-Key" 400 "Idempotency-Key"
soft_eq "one request stored for key order-42" 1 "$(sql ingest "SELECT count(*) FROM api_requests WHERE idem_key = 'order-42'")"

# ---- file uploads -----------------------------------------------------------------
FILES=/api/v1/pipelines/vendas/files
fluxo generate --rows 50 --seed 7 --bad-ratio 0 --dup-ratio 0 --out "$T/vendas.csv" 2>/dev/null
req POST "$FILES" "${AUTH[@]}" -F "file=@$T/vendas.csv" -F "comment=ignored field"
expect_status "multipart upload of 50 rows" 202
check "upload counts and file name" "(d['received'], d['accepted'], d['rejected'], d['file']) == (50, 50, 0, 'vendas.csv') and re.fullmatch('$UUID', d['batch_id'])"
file_batch=$(body_get 'd["batch_id"]')
file_status_url=$(body_get 'd["status_url"]')
accepted_total=$((accepted_total + 50))
req POST "$FILES?filename=again.csv" "${AUTH[@]}" -H "Content-Type: text/csv" --data-binary "@$T/vendas.csv"
expect_status "the same rows as a raw body" 202
check "raw upload: every row a duplicate, named by ?filename" "(d['received'], d['accepted'], d['duplicates'], d['file']) == (50, 0, 50, 'again.csv')"
printf 'foo,bar\n1,2\n' >"$T/colunas.csv"
req POST "$FILES" "${AUTH[@]}" -F "file=@$T/colunas.csv"
expect_problem "a file without the pipeline's columns" 422 colunas.csv "missing columns"
check "File refused, with its batch id" "d['title'] == 'File refused' and re.fullmatch('$UUID', d['batch_id'])"
head -c 3000 /dev/urandom >"$T/junk.bin"
req POST "$FILES" "${AUTH[@]}" -F "file=@$T/junk.bin;filename=planilha.xlsx"
expect_problem "random bytes named .xlsx" 422 planilha.xlsx "not a spreadsheet"
req POST "$FILES?filename=vazio.csv" "${AUTH[@]}" -H "Content-Type: text/csv" --data-binary ''
expect_problem "an empty file" 400 "empty"
req POST "$FILES" "${AUTH[@]}" -F "other=abc"
expect_problem "a form without the file field" 400 "'file'"
req POST "$FILES" "${AUTH[@]}" -F "file=@$T/vendas.csv" -F "file=@$T/colunas.csv"
expect_problem "a form with two files" 400 "one file"
req POST /api/v1/pipelines/nope/files "${AUTH[@]}" -F "file=@$T/vendas.csv"
expect_problem "upload to an unknown pipeline" 404 "'nope'"

# ---- batches, request status, error reports ------------------------------------------
applied() {
  req GET "/api/v1/batches/$file_batch" "${AUTH[@]}"
  [ "$STATUS" = 200 ] && [ "$(body_get 'd["phase"]')" = applied ]
}
wait_for 60 "the uploaded batch to be applied" applied
req GET "/api/v1/batches/$file_batch" "${AUTH[@]}"
expect_status "GET batch" 200
check "batch: id, state, counts, rows, progress" \
  "d['id'] == '$file_batch' and d['pipeline'] == 'vendas' and d['state'] in ('queued', 'applied') and d['counts']['accepted'] == 50 and d['counts']['received'] == 50 and d['rows'] == {'queued': 0, 'published': 0, 'applied': 50} and d['progress'] == 1 and d['errors_url'] == '/api/v1/batches/$file_batch/errors'"
req GET /api/v1/batches/not-a-uuid! "${AUTH[@]}"
expect_problem "GET batch with a malformed id" 400 "not a valid id"
req GET /api/v1/batches/00000000-0000-7000-8000-000000000000 "${AUTH[@]}"
expect_problem "GET an unknown batch" 404 "00000000-0000-7000-8000-000000000000"

req GET "/api/v1/batches/$ndjson_batch/errors" "${AUTH[@]}"
expect_status "GET batch errors (JSON)" 200
check "the errors list the NDJSON request's rejections" \
  "d['batch_id'] == '$ndjson_batch' and d['count'] == len(d['issues']) and any(i['field'] == 'quantidade' and i['rule'] == 'min' and i['severity'] == 'error' for i in d['issues'])"
req GET "/api/v1/batches/$ndjson_batch/errors?format=csv" "${AUTH[@]}"
expect_status "GET batch errors ?format=csv" 200
check "CSV: text/csv, BOM, ';' header, attachment" \
  "h['content-type'].startswith('text/csv') and b.startswith('\ufefflinha;coluna;campo;valor;regra;motivo;severidade\r\n') and 'attachment' in h['content-disposition'] and ';\"quantidade\";\"0\";\"min\";' in b"
cp "$T/body" "$T/errors_q.csv"
req GET "/api/v1/batches/$ndjson_batch/errors" "${AUTH[@]}" -H "Accept: text/csv"
expect_status "GET batch errors with Accept: text/csv" 200
if cmp -s "$T/body" "$T/errors_q.csv"; then
  echo "ok - Accept: text/csv gives the same CSV"
else
  soft_fail "Accept: text/csv and ?format=csv give different reports"
fi
req GET "/api/v1/batches/$ndjson_batch/errors?format=xml" "${AUTH[@]}"
expect_problem "errors in an unknown format" 400 "xml"

req GET "/api/v1/status/$ndjson_corr" "${AUTH[@]}"
expect_status "GET request status" 200
check "request status: ids and counts" \
  "d['correlation_id'] == '$ndjson_corr' and d['batch_id'] == '$ndjson_batch' and d['counts']['accepted'] == 2 and d['counts']['rejected'] == 2 and len(d['issues']) >= 2"
req GET "/api/v1/status/$compra_corr" "${AUTH[@]}"
expect_status "GET status of the POST /compras request" 200
ndjson_applied() {
  req GET "/api/v1/status/$ndjson_corr" "${AUTH[@]}"
  [ "$STATUS" = 200 ] && [ "$(body_get 'd["state"]')" = applied ]
}
wait_for 60 "the NDJSON request's rows to be applied" ndjson_applied
check "request status once applied" "d['rows']['applied'] == 2 and d['rows']['queued'] == 0"
req GET "$file_status_url" "${AUTH[@]}"
expect_status "the upload's status_url" 200
check "the upload's status counts its rows" "d['batch_id'] == '$file_batch' and d['counts']['accepted'] == 50"
req GET /api/v1/status/00000000-0000-7000-8000-000000000000 "${AUTH[@]}"
expect_problem "GET status of an unknown request" 404 "00000000-0000-7000-8000-000000000000"

# ---- the normalized tables -------------------------------------------------------------
all_applied() { [ "$(sql distribution "SELECT count(*) FROM compras")" = "$accepted_total" ]; }
wait_for 60 "$accepted_total purchases in distribution.db" all_applied
soft_eq "POST /compras purchase: quantity, cents, payment enum and label" \
  "3|1250|3750|CREDITO|Cartão de Crédito" \
  "$(sql distribution "SELECT k.quantidade, k.valor_unitario_centavos, k.valor_total_centavos, k.forma_pagamento, k.forma_pagamento_original FROM compras k JOIN produtos p ON p.id = k.produto_id WHERE p.nome = 'Caneta Azul Fluxo'")"
soft_eq "its customer, document as digits" "Maria da Silva|maria.silva@example.com|52998224725" \
  "$(sql distribution "SELECT nome, email, cpf_cnpj FROM clientes WHERE cpf_cnpj = '52998224725'")"
soft_eq "its address" "Rua das Acácias, 100 - Centro, São Paulo - SP" \
  "$(sql distribution "SELECT e.endereco FROM enderecos e JOIN clientes c ON c.id = e.cliente_id WHERE c.cpf_cnpj = '52998224725'")"
soft_eq "'1.234,56' x 2 paid by Pix" "2|123456|246912|PIX|Pix" \
  "$(sql distribution "SELECT k.quantidade, k.valor_unitario_centavos, k.valor_total_centavos, k.forma_pagamento, k.forma_pagamento_original FROM compras k JOIN produtos p ON p.id = k.produto_id WHERE p.nome = 'Caderno Universitário Fluxo'")"
soft_eq "a JSON number 199.9 by Boleto Bancário" "19990|BOLETO|Boleto Bancário" \
  "$(sql distribution "SELECT k.valor_unitario_centavos, k.forma_pagamento, k.forma_pagamento_original FROM compras k JOIN produtos p ON p.id = k.produto_id WHERE p.nome = 'Mochila Fluxo'")"
soft_eq "'7.5' x 4 by TED (OUTROS)" "750|3000|OUTROS|TED" \
  "$(sql distribution "SELECT k.valor_unitario_centavos, k.valor_total_centavos, k.forma_pagamento, k.forma_pagamento_original FROM compras k JOIN produtos p ON p.id = k.produto_id WHERE p.nome = 'Estojo Fluxo'")"
soft_eq "the product's current price" "123456" \
  "$(sql distribution "SELECT preco_atual_centavos FROM produtos WHERE nome = 'Caderno Universitário Fluxo'")"
soft_eq "rejected records never reach the tables" 0 \
  "$(sql distribution "SELECT count(*) FROM produtos WHERE nome IN ('Cola Fluxo', 'Lápis', 'X')")"
soft_eq "every uploaded row is a purchase of the file's batch" 50 \
  "$(sql distribution "SELECT count(*) FROM compras WHERE lote_id = '$file_batch'")"

# ---- listings ------------------------------------------------------------------------------
req GET "/compras?per_page=5&page=2" "${AUTH[@]}"
expect_status "GET /compras page 2 of 5" 200
check "paging members" "len(d['items']) == 5 and (d['page'], d['per_page'], d['total'], d['pages']) == (2, 5, $accepted_total, ($accepted_total + 4) // 5)"
req GET "/compras?q=Caneta%20Azul%20Fluxo" "${AUTH[@]}"
expect_status "GET /compras?q=" 200
check "the purchase as the API shows it" \
  "d['total'] == 1 and (lambda i: i['quantidade'] == 3 and i['valor_unitario_centavos'] == 1250 and i['valor_unitario'] == '12.50' and i['valor_total_centavos'] == 3750 and i['valor_total'] == '37.50' and i['forma_pagamento'] == 'CREDITO' and i['forma_pagamento_original'] == 'Cartão de Crédito' and i['cliente']['nome'] == 'Maria da Silva' and i['produto']['nome'] == 'Caneta Azul Fluxo')(d['items'][0])"
pix=$(sql distribution "SELECT count(*) FROM compras WHERE forma_pagamento = 'PIX'")
req GET "/compras?forma_pagamento=pix&per_page=500" "${AUTH[@]}"
expect_status "GET /compras?forma_pagamento=pix" 200
check "only PIX purchases, all of them" "d['total'] == $pix and len(d['items']) == $pix and all(i['forma_pagamento'] == 'PIX' for i in d['items'])"
req GET "/compras?de=2024-03-11&ate=2024-03-12&q=Fluxo" "${AUTH[@]}"
expect_status "GET /compras?de&ate" 200
check "the date range is inclusive" "sorted(i['produto']['nome'] for i in d['items']) == ['Estojo Fluxo', 'Mochila Fluxo']"
req GET "/compras?q=%25" "${AUTH[@]}"
expect_status "GET /compras?q=%" 200
check "a % in q is a literal, not a wildcard" "d['total'] == 0"
req GET "/clientes?q=52998224725" "${AUTH[@]}"
expect_status "GET /clientes?q= (document)" 200
check "the customer with purchases and totals" \
  "d['total'] == 1 and (lambda c: c['nome'] == 'Maria da Silva' and c['cpf_cnpj'] == '52998224725' and c['compras'] == 1 and c['total_centavos'] == 3750 and c['total'] == '37.50')(d['items'][0])"
req GET "/clientes?per_page=500" "${AUTH[@]}"
expect_status "GET /clientes" 200
check "clientes total" "d['total'] == len(d['items']) and d['total'] == $(sql distribution "SELECT count(*) FROM clientes")"
req GET "/produtos?q=Caderno" "${AUTH[@]}"
expect_status "GET /produtos?q=" 200
check "the product with its price and sales" \
  "d['total'] == 1 and (lambda p: p['nome'] == 'Caderno Universitário Fluxo' and p['preco_atual_centavos'] == 123456 and p['preco_atual'] == '1234.56' and p['quantidade_vendida'] == 2 and p['ativo'] is True)(d['items'][0])"
for bad in "per_page=0" "per_page=501" "page=0" "page=abc" "per_page=5x"; do
  req GET "/produtos?$bad" "${AUTH[@]}"
  expect_problem "GET /produtos?$bad" 400 "${bad%%=*}"
done
req GET "/compras?de=10/03/2024" "${AUTH[@]}"
expect_problem "GET /compras with a non-ISO date" 400 "YYYY-MM-DD"
req GET "/clientes?q=$(printf 'a%.0s' $(seq 101))" "${AUTH[@]}"
expect_problem "GET /clientes with a 101-character q" 400 "100"

req GET /status "${AUTH[@]}"
expect_status "GET /status" 200
check "status lists recent batches" "d['status'] == 'ok' and isinstance(d['backlog_rows'], int) and isinstance(d['outbox_rows'], int) and '$file_batch' in [b['id'] for b in d['recent_batches']]"
req GET /api/v1/pipelines "${AUTH[@]}"
expect_status "GET /api/v1/pipelines" 200
check "pipeline vendas with its fields" \
  "[p['name'] for p in d['pipelines']] == ['vendas'] and {'name': 'valor_unitario', 'type': 'money'} in d['pipelines'][0]['fields']"

# ---- metrics -------------------------------------------------------------------------------
req GET /metrics
expect_status "GET /metrics" 200
check "Prometheus text format" "h['content-type'].startswith('text/plain')"
if python3 - "$T/body" "$accepted_total" <<'PY'; then
import re, sys
text = open(sys.argv[1]).read()
accepted = int(sys.argv[2])
samples = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
def need(cond, what):
    if not cond:
        print("metrics:", what, file=sys.stderr)
        sys.exit(1)
for fam, typ in [("fluxo_http_requests_total", "counter"),
                 ("fluxo_http_request_duration_seconds", "histogram"),
                 ("fluxo_api_rows_total", "counter"),
                 ("fluxo_queue_backlog_rows", "gauge"), ("fluxo_outbox_rows", "gauge")]:
    need(f"# TYPE {fam} {typ}" in text, f"no '# TYPE {fam} {typ}'")
    need(f"# HELP {fam} " in text, f"no HELP for {fam}")
need(samples.get('fluxo_http_requests_total{route="/compras",method="POST",status="202"}') == 1,
     "POST /compras 202 should count 1")
need(samples.get('fluxo_http_requests_total{route="/compras",method="POST",status="422"}') == 1,
     "POST /compras 422 should count 1")
need(samples.get('fluxo_http_requests_total{route="/api/v1/batches/{id}",method="GET",status="404"}') == 1,
     "GET unknown batch 404 should count 1 under the route pattern")
need(samples.get('fluxo_api_rows_total{pipeline="vendas",outcome="accepted"}') == accepted,
     f"fluxo_api_rows_total accepted should be {accepted}")
need(samples.get('fluxo_api_rows_total{pipeline="vendas",outcome="rejected"}', 0) >= 5,
     "rejected rows should be counted")
cnt = samples.get('fluxo_http_request_duration_seconds_count{route="/healthz"}')
inf = samples.get('fluxo_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}')
need(cnt is not None and cnt >= 7 and inf == cnt, "healthz histogram: +Inf bucket must equal count")
need('fluxo_http_request_duration_seconds_sum{route="/healthz"}' in samples, "healthz histogram sum")
need(samples.get("fluxo_queue_backlog_rows") is not None and samples.get("fluxo_outbox_rows") is not None,
     "backlog and outbox gauges")
PY
  echo "ok - metrics count the requests and rows"
else
  soft_fail "metrics do not match the requests made"
fi

stop_server "$serve_pid"
soft_eq "serve exits 0 on SIGTERM" 0 "$STOP_RC"
finish_checks "all HTTP API checks passed"
