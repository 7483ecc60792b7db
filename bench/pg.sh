#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL figures (for bench/run.sh, or alone): on a private server
# (scripts/test-servers/pg.sh in PGDIR, stopped on exit even on failure),
# with the rows of `fluxo generate --rows ROWS --seed 1`:
#   1. ingest alone: `fluxo import --no-wait` (read, validate, dedupe, stage,
#      outbox; nothing applied), fresh schemas;
#   2. end to end: `fluxo import` with the embedded bus (ingest, relay and
#      distribution in one process), fresh schemas, then the same file again
#      (all duplicates);
#   3. the server's own ceilings for the same rows: `\copy` of the CSV into a
#      plain table of text columns, and the rows step 2 produced inserted
#      set-based into empty copies of the four normalized tables (same
#      indexes and foreign keys), 64k rows per transaction, like
#      bench/normalized_ceiling.sh does for SQLite;
#   4. the HTTP API on the same server (bench/http.sh: wrk, one sale per
#      POST; an NDJSON bulk POST), fresh schemas.
# Prints markdown (a paragraph and a table) on stdout; progress on stderr.
# usage: bench/pg.sh [ROWS [FLUXO_BIN [OUT_DIR]]]   (1000000, build/fluxo, bench/out)
# PGDIR (default /tmp/fluxo-bench-pg) names the server's directory; the
# server is stopped and its files removed at the end (PG_KEEP=1 keeps them for
# the next run).
set -euo pipefail
ROWS=${1:-1000000}
bin=${2:-build/fluxo}
out=${3:-bench/out}
src=$(cd "$(dirname "$0")/.." && pwd)
PGDIR=${PGDIR:-/tmp/fluxo-bench-pg}
case $ROWS in '' | *[!0-9]*) echo "usage: $0 [ROWS [FLUXO_BIN [OUT_DIR]]]" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "bench/pg.sh: no fluxo binary at $bin (make build)" >&2; exit 1; }
bin=$(realpath "$bin")
mkdir -p "$out"
out=$(realpath "$out")
export FLUXO_PIPELINES_DIR=${FLUXO_PIPELINES_DIR:-$src/pipelines}
export FLUXO_LOG_LEVEL=warn
log() { echo "bench/pg.sh: $*" >&2; }

url=""
psql_q() { psql "$url" -X -q -tA -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" "$@"; }
reset_schemas() {
  psql_q -c "DROP SCHEMA IF EXISTS ingest, distribution, auth, bench CASCADE" >/dev/null
}
# pg.sh keeps the cluster in DIR, or as root in /tmp/fluxo-pg-<hash of DIR> (see its
# header); after 1M rows its WAL alone is about 1 GB, so the cluster is removed
# unless PG_KEEP=1 (then the next run reuses it)
cluster_dirs() {
  echo "$PGDIR"
  [ "$(id -u)" != 0 ] || echo "/tmp/fluxo-pg-$(printf '%s' "$(realpath -m -- "$PGDIR")" | sha1sum | cut -c1-12)"
}
finish() {
  [ -z "$url" ] || reset_schemas 2>/dev/null || true
  bash "$src/scripts/test-servers/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  if [ "${PG_KEEP:-0}" != 1 ]; then
    local d
    for d in $(cluster_dirs); do
      # only what pg.sh made: a stopped cluster with its config file
      if [ -f "$d/data/fluxo_test.conf" ] && [ ! -f "$d/data/postmaster.pid" ]; then
        rm -rf "$d"
      fi
    done
    rmdir "$PGDIR" 2>/dev/null || true
  fi
}
trap finish EXIT
url=$(bash "$src/scripts/test-servers/pg.sh" start "$PGDIR")
reset_schemas
export FLUXO_DB=$url

csv=$out/pg_vendas_${ROWS}.csv
[ -f "$csv" ] || "$bin" generate --rows "$ROWS" --seed 1 --out "$csv" 2>/dev/null
size=$(du -m "$csv" | cut -f1)

measure() { # NAME COMMAND... -> sets SECS, RSS_MB
  local tf name=$1
  shift
  tf=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$tf" "$@" >"$out/$name.out" 2>"$out/$name.err" ||
    { cat "$out/$name.err" >&2; rm -f "$tf"; exit 1; }
  read -r SECS RSS_KB <"$tf"
  rm -f "$tf"
  RSS_MB=$((RSS_KB / 1024))
}
rate() { python3 -c "print(f'{$1/$2:,.0f}')"; }
# the ingest time `fluxo import` prints for the file ("...; 12.34s (...)")
ingest_secs() { sed -n 's/.*; \([0-9.]*\)s (.*/\1/p' "$out/$1.out" | head -1; }
fresh() { # fresh schemas and data dir (the embedded bus lives there)
  reset_schemas
  rm -rf "$out/pgdata"
  export FLUXO_DATA_DIR=$out/pgdata
  "$bin" migrate >/dev/null
}

# 1. ingest alone
log "ingest alone, $ROWS rows"
fresh
measure pg_ingest "$bin" import --no-wait --quiet "$csv"
ing_s=$(ingest_secs pg_ingest)
ing_rss=$RSS_MB
queued=$(psql_q -c "SELECT accepted FROM ingest.batches")
[ "$queued" = "$ROWS" ] || { log "expected $ROWS rows queued, found $queued"; exit 1; }

# 2. end to end, then the same file again
log "end to end, $ROWS rows"
fresh
measure pg_import "$bin" import --quiet "$csv"
e2e_s=$SECS
e2e_rss=$RSS_MB
e2e_ing_s=$(ingest_secs pg_import)
applied=$(psql_q -c "SELECT count(*) FROM distribution.compras")
[ "$applied" = "$ROWS" ] || { log "expected $ROWS purchases, found $applied"; exit 1; }
log "re-import"
measure pg_reimport "$bin" import --quiet "$csv"
re_s=$SECS

# 3a. COPY ceiling: the CSV as text into one table, plain (WAL-logged) and unlogged
log "COPY ceiling"
cols="nome text, email text, telefone text, endereco_completo text, cpf_cnpj text, produto text,
  quantidade text, valor_unitario text, forma_pagamento text, data_hora text"
psql_q -c "CREATE SCHEMA bench" -c "CREATE TABLE bench.raw ($cols)" \
  -c "CREATE UNLOGGED TABLE bench.raw_unlogged ($cols)"
copy_secs() { # TABLE -> seconds of one \copy of the CSV into it
  local t0 t1
  t0=$(date +%s.%N)
  psql_q -c "\\copy bench.$1 FROM '$csv' CSV HEADER" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
copy_s=$(copy_secs raw)
copyu_s=$(copy_secs raw_unlogged)
got=$(psql_q -c "SELECT count(*) FROM bench.raw")
[ "$got" = "$ROWS" ] || { log "COPY loaded $got rows, expected $ROWS"; exit 1; }

# 3b. normalized ceiling: the rows of step 2, already canonical, set-based
# into empty tables with the same schema, indexes and deferred foreign keys
log "normalized-model ceiling"
psql_q -f - <<'SQL'
ANALYZE distribution.clientes, distribution.enderecos, distribution.produtos, distribution.compras;
CREATE TABLE bench.src AS
  SELECT row_number() OVER (ORDER BY c.id) AS r, k.nome, k.email, k.telefone, k.cpf_cnpj,
    e.endereco, p.nome AS prod, p.preco_atual_centavos AS preco, c.quantidade,
    c.valor_unitario_centavos AS vu, c.forma_pagamento AS fp, c.forma_pagamento_original AS fpo,
    c.data_hora, c.dedupe_id, c.lote_id, c.linha_origem
  FROM distribution.compras c JOIN distribution.clientes k ON k.id = c.cliente_id
  JOIN distribution.produtos p ON p.id = c.produto_id
  LEFT JOIN (SELECT DISTINCT ON (cliente_id) cliente_id, endereco FROM distribution.enderecos
             ORDER BY cliente_id, id) e ON e.cliente_id = k.id;
CREATE INDEX ON bench.src (r);
CREATE TABLE bench.clientes (LIKE distribution.clientes INCLUDING ALL);
CREATE TABLE bench.produtos (LIKE distribution.produtos INCLUDING ALL);
CREATE TABLE bench.enderecos (LIKE distribution.enderecos INCLUDING ALL,
  FOREIGN KEY (cliente_id) REFERENCES bench.clientes(id) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE bench.compras (LIKE distribution.compras INCLUDING ALL,
  FOREIGN KEY (cliente_id) REFERENCES bench.clientes(id) DEFERRABLE INITIALLY DEFERRED,
  FOREIGN KEY (produto_id) REFERENCES bench.produtos(id) DEFERRABLE INITIALLY DEFERRED);
ANALYZE bench.src;
SQL
n=$(psql_q -c "SELECT count(*) FROM bench.src")
{
  echo "SET client_min_messages = warning; SET search_path = bench;"
  for ((a = 1; a <= n; a += 64000)); do
    b=$((a + 63999))
    cat <<SQL
BEGIN;
CREATE TEMP TABLE t ON COMMIT DROP AS SELECT * FROM src WHERE r BETWEEN $a AND $b;
ANALYZE t;
INSERT INTO clientes(nome,email,telefone,cpf_cnpj)
  SELECT nome,email,telefone,cpf_cnpj FROM t WHERE cpf_cnpj IS NOT NULL ORDER BY cpf_cnpj
  ON CONFLICT (cpf_cnpj) WHERE cpf_cnpj IS NOT NULL DO NOTHING;
INSERT INTO clientes(nome,email,telefone,cpf_cnpj)
  SELECT nome,email,telefone,NULL FROM t WHERE cpf_cnpj IS NULL ORDER BY nome,email
  ON CONFLICT (nome,email) WHERE nome IS NOT NULL AND email IS NOT NULL AND cpf_cnpj IS NULL
  DO NOTHING;
INSERT INTO produtos(nome,preco_atual_centavos,ativo)
  SELECT prod, max(preco), true FROM t GROUP BY prod
  ON CONFLICT (nome) WHERE nome IS NOT NULL DO NOTHING;
CREATE TEMP TABLE tk ON COMMIT DROP AS
  SELECT t.r, k.id AS cid FROM t JOIN clientes k ON k.cpf_cnpj = t.cpf_cnpj
  UNION ALL SELECT t.r, k.id FROM t JOIN clientes k ON t.cpf_cnpj IS NULL AND k.cpf_cnpj IS NULL
    AND k.nome = t.nome AND k.email = t.email;
ANALYZE tk;
INSERT INTO enderecos(cliente_id,endereco)
  SELECT tk.cid, t.endereco FROM t JOIN tk ON tk.r = t.r WHERE t.endereco IS NOT NULL
  ORDER BY tk.cid
  ON CONFLICT (cliente_id,endereco) WHERE cliente_id IS NOT NULL AND endereco IS NOT NULL
  DO NOTHING;
INSERT INTO compras(cliente_id,produto_id,quantidade,valor_unitario_centavos,
  valor_total_centavos,forma_pagamento,forma_pagamento_original,data_hora,dedupe_id,lote_id,
  linha_origem)
  SELECT tk.cid, p.id, t.quantidade, t.vu, t.quantidade * t.vu, t.fp, t.fpo, t.data_hora,
    t.dedupe_id, t.lote_id, t.linha_origem
  FROM t JOIN tk ON tk.r = t.r JOIN produtos p ON p.nome = t.prod ORDER BY t.r
  ON CONFLICT (dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING;
COMMIT;
SQL
  done
} >"$out/pg_ceil.sql"
t0=$(date +%s.%N)
psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$out/pg_ceil.sql" >/dev/null
t1=$(date +%s.%N)
norm_s=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
got=$(psql_q -c "SELECT count(*) FROM bench.compras")
[ "$got" = "$n" ] || { log "normalized ceiling: expected $n purchases, got $got"; exit 1; }

# 4. the HTTP API on this server (bench/http.sh with FLUXO_DB set), fresh schemas
log "HTTP API"
reset_schemas
eval "$(cd "$src" && bash bench/http.sh "$bin" "$out" | tail -2)"

ver=$(psql_q -c "SHOW server_version" | cut -d' ' -f1)
echo "PostgreSQL (\`bench/pg.sh $ROWS\`): PostgreSQL $ver on this machine, a private server from"
echo "scripts/test-servers/pg.sh (fsync, synchronous_commit and full_page_writes off; default"
echo "shared_buffers); input \`fluxo generate --rows $ROWS --seed 1\` ($size MB CSV). Client and"
echo "server share the 2 vCPUs; peak RSS is Fluxo's process alone."
echo
echo "| measurement | command | time | rows/s | peak RSS |"
echo "|---|---|---|---|---|"
echo "| ingest alone → PostgreSQL (read, validate, dedupe, stage, outbox; nothing applied) | \`fluxo import --no-wait FILE\` (fresh schemas) | ${ing_s} s | $(rate "$ROWS" "$ing_s") | ${ing_rss} MB |"
echo "| end to end: CSV → normalized PostgreSQL (ingest, embedded bus, distribution in one process) | \`fluxo import FILE\` (fresh schemas) | ${e2e_s} s | $(rate "$ROWS" "$e2e_s") | ${e2e_rss} MB |"
echo "| of which ingest (distribution running at the same time) | same | ${e2e_ing_s} s | $(rate "$ROWS" "$e2e_ing_s") | |"
echo "| re-import of the same file (all duplicates) | \`fluxo import FILE\` again | ${re_s} s | $(rate "$ROWS" "$re_s") | |"
echo "| PostgreSQL COPY ceiling: the CSV into one table of text columns, no indexes | \`psql -c \"\\copy raw FROM FILE CSV HEADER\"\` | ${copy_s} s | $(rate "$ROWS" "$copy_s") | |"
echo "| same, unlogged table | same | ${copyu_s} s | $(rate "$ROWS" "$copyu_s") | |"
echo "| PostgreSQL ceiling of the normalized model: the same rows set-based into the same 4 tables, indexes and foreign keys, 64k rows per transaction | SQL in \`bench/pg.sh\` | ${norm_s} s | $(rate "$n" "$norm_s") | |"
echo "| HTTP API on PostgreSQL: one JSON sale per POST, bearer token, validated and durably queued before the 202 | \`wrk -t2 -c64 -d15s -s bench/http_post.lua\` (\`fluxo run ingest\`) | ${http_rps} requests/s (${http_total} requests, ${http_bad} not 2xx or failed; ${http_stored} rows stored); p50 ${http_p50}, p99 ${http_p99} | | ${http_rss_load} MB |"
echo "| HTTP API on PostgreSQL: NDJSON bulk POST, the median of ${nd_runs} (different files, each after the relay drained the outbox) | \`curl --data-binary @${nd_rows}.ndjson\` | ${nd_s} s (the ${nd_runs}: ${nd_all//,/, } s) | $(rate "$nd_acc" "$nd_s") | ${http_rss} MB |"
echo
echo "Ratio end-to-end / normalized-model ceiling on PostgreSQL: $(python3 -c "print(f'{$norm_s/$e2e_s:.2f}')");"
echo "ingest alone / COPY into a plain table: $(python3 -c "print(f'{$copy_s/$ing_s:.2f}')")."
