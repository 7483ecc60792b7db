#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Import generated files end to end on embedded defaults and check exact
# table counts; re-importing changes nothing; bad and duplicate rows are
# counted exactly as the generator planted them.
source "$(dirname "$0")/lib.sh"

# 1. a clean file: every table count matches an independent computation
fluxo generate --rows 3000 --seed 11 --out "$T/clean.csv" 2>/dev/null
read -r n_compras n_clientes n_produtos n_enderecos < <(expected_counts "$T/clean.csv")
b1=$(import_batch "$T/clean.csv")
batch_status "$b1"
expect_eq "state" applied "$(json_get "$T/status.json" 'd["state"]')"
expect_eq "accepted" 3000 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "applied" 3000 "$(json_get "$T/status.json" 'd["counts"]["applied"]')"
expect_eq "compras" "$n_compras" "$(sql distribution 'SELECT count(*) FROM compras')"
expect_eq "clientes" "$n_clientes" "$(sql distribution 'SELECT count(*) FROM clientes')"
expect_eq "produtos" "$n_produtos" "$(sql distribution 'SELECT count(*) FROM produtos')"
expect_eq "enderecos" "$n_enderecos" "$(sql distribution 'SELECT count(*) FROM enderecos')"
expect_eq "totals are quantity x unit price" 0 \
  "$(sql distribution 'SELECT count(*) FROM compras WHERE valor_total_centavos <> quantidade * valor_unitario_centavos')"
expect_eq "payment codes are canonical" 0 \
  "$(sql distribution "SELECT count(*) FROM compras WHERE forma_pagamento NOT IN ('PIX','CREDITO','DEBITO','DINHEIRO','BOLETO','OUTROS')")"
expect_eq "original payment label kept" 0 \
  "$(sql distribution "SELECT count(*) FROM compras WHERE forma_pagamento_original IS NULL OR forma_pagamento_original = ''")"

# 2. re-import: all duplicates, nothing changes
before=$(sql distribution 'SELECT (SELECT count(*) FROM compras)||","||(SELECT count(*) FROM clientes)||","||(SELECT count(*) FROM produtos)||","||(SELECT count(*) FROM enderecos)')
b2=$(import_batch "$T/clean.csv")
batch_status "$b2"
expect_eq "re-import accepted" 0 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "re-import duplicates" 3000 "$(json_get "$T/status.json" 'd["counts"]["duplicate"]')"
after=$(sql distribution 'SELECT (SELECT count(*) FROM compras)||","||(SELECT count(*) FROM clientes)||","||(SELECT count(*) FROM produtos)||","||(SELECT count(*) FROM enderecos)')
expect_eq "tables unchanged after re-import" "$before" "$after"

# 3. bad and duplicate rows: exact counts from the generator's plan
fluxo generate --rows 5000 --seed 12 --bad-ratio 0.04 --dup-ratio 0.03 --warn-ratio 0.02 \
  --delimiter ';' --out "$T/mixed.csv" 2>"$T/gen.txt"
cat "$T/gen.txt"
good=$(sed -n 's/.* \([0-9]*\) good .*/\1/p' "$T/gen.txt")
bad=$(sed -n 's/.*), \([0-9]*\) bad.*/\1/p' "$T/gen.txt")
dup=$(sed -n 's/.* \([0-9]*\) duplicates.*/\1/p' "$T/gen.txt")
expect_eq "planned bad rows" 200 "$bad"
expect_eq "planned duplicates" 150 "$dup"
b3=$(import_batch "$T/mixed.csv")
batch_status "$b3"
expect_eq "mixed accepted" "$good" "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "mixed rejected" "$bad" "$(json_get "$T/status.json" 'd["counts"]["rejected"]')"
expect_eq "mixed duplicate" "$dup" "$(json_get "$T/status.json" 'd["counts"]["duplicate"]')"
expect_eq "every rejected row has a reason" "$bad" \
  "$(json_get "$T/status.json" 'len({i["row"] for i in d["issues"] if i["severity"]=="error" and i["reason"]})')"
expect_eq "compras after mixed" "$((n_compras + good))" "$(sql distribution 'SELECT count(*) FROM compras')"
expect_eq "no duplicated purchase" 0 \
  "$(sql distribution 'SELECT count(*) FROM (SELECT dedupe_id FROM compras GROUP BY dedupe_id HAVING count(*) > 1)')"
expect_eq "no duplicated document" 0 \
  "$(sql distribution 'SELECT count(*) FROM (SELECT cpf_cnpj FROM clientes WHERE cpf_cnpj IS NOT NULL GROUP BY cpf_cnpj HAVING count(*) > 1)')"
# the batch list: newest first, one line each
fluxo status >"$T/list.txt"
expect_eq "batches listed" 3 "$(($(wc -l <"$T/list.txt") - 1))"
expect_eq "newest first" "$b3" "$(sed -n 2p "$T/list.txt" | cut -d' ' -f1)"
echo "all import checks passed"
