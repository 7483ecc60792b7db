#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The SQLite ceiling for the normalized model itself: the rows an end-to-end
# run produced, re-inserted set-based (INSERT ... SELECT per table, 64k rows
# per transaction, sorted by key) into empty tables with the same schema and
# indexes, with none of Fluxo's reading, validation, staging, queue or
# per-row statements. Prints seconds.  usage: normalized_ceiling.sh DIST_DB WORKDIR
set -euo pipefail
dist=$1; work=$2
rm -f "$work"/src.db* "$work"/ceil.db* "$work"/d.db*
cp "$dist" "$work/d.db"
sqlite3 "$work/d.db" "CREATE INDEX IF NOT EXISTS tmp_e ON enderecos(cliente_id);
  ATTACH '$work/src.db' AS s;
  CREATE TABLE s.src AS SELECT k.nome, k.email, k.telefone, k.cpf_cnpj,
    (SELECT e.endereco FROM enderecos e WHERE e.cliente_id = k.id LIMIT 1) AS endereco,
    p.nome AS prod, p.preco_atual_centavos AS preco, c.quantidade, c.valor_unitario_centavos AS vu,
    c.forma_pagamento AS fp, c.forma_pagamento_original AS fpo, c.data_hora, c.dedupe_id,
    c.lote_id, c.linha_origem
  FROM compras c JOIN clientes k ON k.id = c.cliente_id JOIN produtos p ON p.id = c.produto_id
  ORDER BY c.id;"
n=$(sqlite3 "$work/src.db" "SELECT count(*) FROM src")
sqlite3 "$work/ceil.db" "PRAGMA journal_mode=WAL" >/dev/null
{
  echo "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;"
  echo "PRAGMA wal_autocheckpoint=16384; PRAGMA foreign_keys=ON;"
  sqlite3 "$work/d.db" .schema | grep -v "fx_migrations\|inbox\|tmp_e"
  echo "ATTACH '$work/src.db' AS s;"
  for ((a = 1; a <= n; a += 64000)); do
    b=$((a + 63999))
    cat <<SQL
BEGIN IMMEDIATE;
CREATE TEMP TABLE t AS SELECT rowid AS r, * FROM s.src WHERE rowid BETWEEN $a AND $b;
INSERT OR IGNORE INTO clientes(nome,email,telefone,cpf_cnpj,criado_em)
  SELECT nome,email,telefone,cpf_cnpj,'now' FROM t WHERE cpf_cnpj IS NOT NULL ORDER BY cpf_cnpj;
INSERT OR IGNORE INTO clientes(nome,email,telefone,cpf_cnpj,criado_em)
  SELECT nome,email,telefone,NULL,'now' FROM t WHERE cpf_cnpj IS NULL ORDER BY nome,email;
INSERT OR IGNORE INTO produtos(nome,preco_atual_centavos,ativo,criado_em)
  SELECT prod, max(preco), 1, 'now' FROM t GROUP BY prod;
CREATE TEMP TABLE tk AS
  SELECT t.r, k.id AS cid FROM t JOIN clientes k ON k.cpf_cnpj = t.cpf_cnpj AND k.cpf_cnpj IS NOT NULL
  UNION ALL SELECT t.r, k.id FROM t JOIN clientes k ON t.cpf_cnpj IS NULL AND k.cpf_cnpj IS NULL
    AND k.nome = t.nome AND k.email = t.email AND k.nome IS NOT NULL AND k.email IS NOT NULL;
INSERT OR IGNORE INTO enderecos(cliente_id,endereco,criado_em)
  SELECT tk.cid, t.endereco, 'now' FROM t JOIN tk ON tk.r = t.r WHERE t.endereco IS NOT NULL ORDER BY tk.cid;
INSERT OR IGNORE INTO compras(cliente_id,produto_id,quantidade,valor_unitario_centavos,
  valor_total_centavos,forma_pagamento,forma_pagamento_original,data_hora,dedupe_id,lote_id,linha_origem,criado_em)
  SELECT tk.cid, p.id, t.quantidade, t.vu, t.quantidade * t.vu, t.fp, t.fpo, t.data_hora, t.dedupe_id,
    t.lote_id, t.linha_origem, 'now' FROM t JOIN tk ON tk.r = t.r JOIN produtos p ON p.nome = t.prod ORDER BY t.r;
DROP TABLE t; DROP TABLE tk;
COMMIT;
SQL
  done
} >"$work/ceil.sql"
start=$(date +%s.%N)
sqlite3 "$work/ceil.db" <"$work/ceil.sql" >/dev/null
end=$(date +%s.%N)
got=$(sqlite3 "$work/ceil.db" "SELECT count(*) FROM compras")
[ "$got" = "$n" ] || { echo "normalized ceiling: expected $n purchases, got $got" >&2; exit 1; }
python3 -c "print(f'{$end - $start:.2f}')"
