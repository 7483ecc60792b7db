#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CSV -> normalized PostgreSQL with the embedded bus: the same files imported
# into PostgreSQL (FLUXO_DB=$FLUXO_TEST_PG_URL, where distribution applies
# chunks set-based: COPY into staging, then upserts) and into SQLite (row by
# row) land the same rows, compared row by row through natural keys (ids
# differ; read back with psql and sqlite3):
#  1. a generated file with bad rows and repeats: every row of the four
#     tables, money total and payment mix; importing it again changes
#     nothing; `fluxo status` reads the batch from PostgreSQL;
#  2. update semantics over two batches: a telefone changing in a later row
#     of the same batch or of a later batch, a NULL that must not overwrite,
#     a value that changes and changes back, a first value arriving by an
#     update, a changed e-mail (not an updated column), product prices; the
#     values and which rows have atualizado_em set are also checked against
#     the expected ones;
#  3. a chunk the distribution must refuse (a total that overflows) among
#     good ones: the batch is rolled back, its chunks retried one by one, and
#     only the bad chunk is left out, as on SQLite.
. "$(dirname "$0")/../e2e/lib.sh"
: "${FLUXO_TEST_PG_URL:?FLUXO_TEST_PG_URL must name the test server}"
pg=$FLUXO_TEST_PG_URL
psql_q() { psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
# a previous run on the same server may have left its schemas
reset_pg() {
  psql_q "SET client_min_messages = warning; DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE" \
    >/dev/null
}
reset_pg

# Every row of the four tables, one line each, references by natural key,
# sorted bytewise. The SQL is the same on both engines except data_hora
# (text in SQLite, timestamptz in PostgreSQL).
dump_sql() { # DATA_HORA_EXPR
  cat <<EOF
SELECT 'cliente|' || coalesce(cpf_cnpj, '-') || '|' || nome || '|' || coalesce(email, '-') || '|'
  || coalesce(telefone, '-') || '|' || CASE WHEN atualizado_em IS NULL THEN 0 ELSE 1 END
  FROM clientes;
SELECT 'produto|' || nome || '|' || preco_atual_centavos || '|' || CASE WHEN ativo THEN 1 ELSE 0 END
  || '|' || CASE WHEN atualizado_em IS NULL THEN 0 ELSE 1 END FROM produtos;
SELECT 'endereco|' || coalesce(c.cpf_cnpj, c.email) || '|' || e.endereco
  FROM enderecos e JOIN clientes c ON c.id = e.cliente_id;
SELECT 'compra|' || k.dedupe_id || '|' || coalesce(c.cpf_cnpj, c.email) || '|' || p.nome || '|'
  || k.quantidade || '|' || k.valor_unitario_centavos || '|' || k.valor_total_centavos || '|'
  || k.forma_pagamento || '|' || k.forma_pagamento_original || '|' || coalesce($1, '-') || '|'
  || k.linha_origem
  FROM compras k JOIN clientes c ON c.id = k.cliente_id JOIN produtos p ON p.id = k.produto_id;
EOF
}
lite_dump() { # DATA_DIR
  sqlite3 -batch -noheader "$1/distribution.db" "$(dump_sql k.data_hora)" | LC_ALL=C sort
}
pg_dump_rows() {
  psql "$pg" -X -q -tA -v ON_ERROR_STOP=1 -c "SET search_path TO distribution" \
    -c "$(dump_sql "to_char(k.data_hora AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")" |
    grep -v '^SET$' | LC_ALL=C sort
}
# same_rows WHAT LITE_DIR: every row equal, else the first differences
same_rows() {
  lite_dump "$2" >"$T/lite.rows"
  pg_dump_rows >"$T/pg.rows"
  [ -s "$T/pg.rows" ] || fail "$1: no rows read from PostgreSQL"
  if ! cmp -s "$T/lite.rows" "$T/pg.rows"; then
    diff "$T/lite.rows" "$T/pg.rows" | head -20 >&2
    fail "$1: tables differ (< SQLite, > PostgreSQL)"
  fi
  echo "ok - $1: all $(wc -l <"$T/pg.rows") rows equal (PostgreSQL = SQLite)"
}

# ---- 1. a generated file ----
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
same_rows "generated file" "$T/lite"

FLUXO_DATA_DIR=$T/pgdata fluxo status --json --errors 0 "$batch" >"$T/status.json"
expect_eq "batch state read from PostgreSQL" applied "$(json_get "$T/status.json" 'd["state"]')"
expect_eq "rejected rows recorded" "$(json_get "$T/status.json" 'd["counts"]["rejected"]' 2>/dev/null || json_get "$T/status.json" 'd["rejected"]')" \
  "$(psql_q "SELECT rejected FROM ingest.batches WHERE id = '$batch'")"

before=$(psql_q "SELECT count(*) FROM distribution.compras")
FLUXO_DATA_DIR=$T/pgdata fluxo import --quiet "$T/v.csv" >/dev/null 2>>"$T/pg.log" || true
expect_eq "re-import adds nothing" "$before" "$(psql_q "SELECT count(*) FROM distribution.compras")"
same_rows "after the re-import" "$T/lite"

# ---- 2. update semantics over two batches ----
reset_pg
cat >"$T/u1.csv" <<'EOF'
nome,email,telefone,endereco_completo,cpf_cnpj,produto,quantidade,valor_unitario,forma_pagamento,data_hora
Ana Lima,ana@a.com,(91) 99000-4947,"Rua A, 1",027.166.904-72,Mouse,1,10.00,PIX,2024-01-01T10:00:00
Caio Melo,caio@c.com,(11) 91111-1111,"Rua C, 3",160.471.532-40,Teclado,1,50.00,PIX,2024-01-01T10:00:01
Ana Lima,ana.nova@a.com,,"Rua A, 2",027.166.904-72,Mouse,2,10.00,PIX,2024-01-01T10:00:02
Dani Rosa,dani@d.com,,,245.340.890-90,Cabo,1,5.00,Dinheiro,2024-01-01T10:00:03
Caio Melo,caio@c.com,(11) 92222-2222,"Rua C, 3",160.471.532-40,Mouse,1,12.00,PIX,2024-01-01T10:00:04
Dani Rosa,dani@d.com,(21) 93333-3333,,245.340.890-90,Cabo,2,5.00,Boleto,2024-01-01T10:00:05
Edu Paz,edu@e.com,(31) 94444-4444,,421.080.202-68,Teclado,3,50.00,PIX,2024-01-01T10:00:06
Edu Paz,edu@e.com,(31) 95555-5555,,421.080.202-68,Teclado,4,50.00,PIX,2024-01-01T10:00:07
Edu Paz,edu@e.com,(31) 94444-4444,,421.080.202-68,Teclado,5,50.00,PIX,2024-01-01T10:00:08
Bia Reis,bia@b.com,(11) 98442-1755,"Rua B, 9",,Teclado,1,50.00,PIX,2024-01-01T10:00:09
Bia Reis,bia@b.com,(11) 98442-1755,"Rua B, 9",,Teclado,2,50.00,PIX,2024-01-01T10:00:10
Bia Reis,bia.outra@b.com,(11) 97777-1755,,,Cabo,1,5.00,PIX,2024-01-01T10:00:11
Fabi Luz,fabi@f.com,(41) 96666-6666,,463.514.884-00,Fone,1,80.00,Débito,2024-01-01T10:00:12
Gil Sol,gil@g.com,(51) 97777-7777,,505.949.567-14,Fone,1,80.00,Crédito,2024-01-01T10:00:13
Hugo Mar,,(61) 98888-8888,,548.384.247-28,Cabo,1,5.00,PIX,2024-01-01T10:00:14
EOF
cat >"$T/u2.csv" <<'EOF'
nome,email,telefone,endereco_completo,cpf_cnpj,produto,quantidade,valor_unitario,forma_pagamento,data_hora
Ana Lima,ana@a.com,,"Rua A, 1",027.166.904-72,Mouse,7,12.00,PIX,2024-02-01T10:00:00
Fabi Luz,fabi@f.com,(41) 91234-5678,,463.514.884-00,Fone,1,80.00,Débito,2024-02-01T10:00:01
Gil Sol,gil@g.com,,,505.949.567-14,Fone,1,80.00,Crédito,2024-02-01T10:00:02
Gil Sol,gil@g.com,(51) 97777-7777,,505.949.567-14,Fone,2,80.00,Crédito,2024-02-01T10:00:03
Hugo Mar,,(61) 90000-0000,,548.384.247-28,Cabo,1,5.00,PIX,2024-02-01T10:00:04
Hugo Mar,,(61) 98888-8888,,548.384.247-28,Cabo,2,5.00,PIX,2024-02-01T10:00:05
Cris Noel,cris@n.com,(71) 91111-0000,"Rua N, 5",681.688.871-58,Fone,1,85.00,PIX,2024-02-01T10:00:06
EOF
for f in u1 u2; do
  env -u FLUXO_DB FLUXO_DATA_DIR="$T/lite2" "$FLUXO_BIN" import --quiet "$T/$f.csv" >/dev/null \
    2>>"$T/lite.log"
  FLUXO_DATA_DIR=$T/pgdata2 fluxo import --quiet "$T/$f.csv" >/dev/null 2>>"$T/pg.log"
done
same_rows "updates" "$T/lite2"
# cpf | nome | e-mail (the first one: not an updated column) | telefone | atualizado_em set
expect_eq "customers after the updates" "$(
  cat <<'EOF'
cliente|-|Bia Reis|bia.outra@b.com|11977771755|0
cliente|-|Bia Reis|bia@b.com|11984421755|0
cliente|02716690472|Ana Lima|ana@a.com|91990004947|0
cliente|16047153240|Caio Melo|caio@c.com|11922222222|1
cliente|24534089090|Dani Rosa|dani@d.com|21933333333|1
cliente|42108020268|Edu Paz|edu@e.com|31944444444|1
cliente|46351488400|Fabi Luz|fabi@f.com|41912345678|1
cliente|50594956714|Gil Sol|gil@g.com|51977777777|0
cliente|54838424728|Hugo Mar|-|61988888888|1
cliente|68168887158|Cris Noel|cris@n.com|71911110000|0
EOF
)" "$(grep '^cliente|' "$T/pg.rows")"
expect_eq "products after the updates" "$(
  printf '%s\n' 'produto|Cabo|500|1|0' 'produto|Fone|8500|1|1' 'produto|Mouse|1200|1|1' \
    'produto|Teclado|5000|1|0'
)" "$(grep '^produto|' "$T/pg.rows")"

# ---- 3. one chunk the distribution refuses ----
reset_pg
fluxo generate --rows 2500 --seed 5 --out "$T/p.csv" 2>/dev/null
# row 1500 (second chunk of 1000): 1 000 000 x 10^14 BRL overflows valor_total_centavos
python3 - "$T/p.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
h, r = rows[0], rows[1500]
r[h.index("quantidade")] = "1000000"
r[h.index("valor_unitario")] = "100000000000000.00"
csv.writer(open(sys.argv[1], "w", encoding="utf-8", newline="")).writerows(rows)
EOF
# the refused chunk is never applied, so `import` would wait for it: run it
# in the background until the refusal is logged and the other chunks are in
export FLUXO_DELIVERY_MAX_ATTEMPTS=1
refused() { grep -q 'not applied: column valor_total_centavos: product overflows' "$T/$1.log"; }
lite3_done() {
  refused lite3 && [ "$(sqlite3 "$T/lite3/distribution.db" "SELECT count(*) FROM compras")" = 1500 ]
}
pg3_done() { refused pg3 && [ "$(psql_q "SELECT count(*) FROM distribution.compras")" = 1500 ]; }
start_bg lite3 env -u FLUXO_DB FLUXO_DATA_DIR="$T/lite3" "$FLUXO_BIN" import --quiet "$T/p.csv"
wait_for 60 "SQLite: the bad chunk refused, the others applied" lite3_done
kill "$LAST_PID" && wait "$LAST_PID" 2>/dev/null || true
FLUXO_DATA_DIR=$T/pgdata3 start_bg pg3 fluxo import --quiet "$T/p.csv"
wait_for 60 "PostgreSQL: the bad chunk refused (the others applied)" pg3_done
kill "$LAST_PID" && wait "$LAST_PID" 2>/dev/null || true
echo "ok - the chunk with the overflowing total refused on both, the other two applied"
same_rows "with a refused chunk" "$T/lite3"
reset_pg
