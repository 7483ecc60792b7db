#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real sales spreadsheets import exactly: data_hora used where present,
# prices stored as text and CPFs stored as numbers come out right, invalid CPF
# check digits are warnings, and the second file's two repeated purchases
# (without data_hora) are kept and flagged — or skipped with content dedupe.
source "$(dirname "$0")/lib.sh"
A="$FLUXO_TEST_DATA/vendas_20250727_185237.xlsx"
B="$FLUXO_TEST_DATA/vendas_20250727_200024.xlsx"

ba=$(import_batch "$A")
batch_status "$ba"
expect_eq "file 1 accepted" 3 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "file 1 rejected" 0 "$(json_get "$T/status.json" 'd["counts"]["rejected"]')"
json_get "$T/status.json" "any(i['rule']=='check_digits' and i['severity']=='warning' for i in d['issues'])" | grep -q True \
  || fail "invalid CPF check digits should be warnings"
echo "ok - invalid CPF check digits are warnings"
bb=$(import_batch "$B")
batch_status "$bb"
expect_eq "file 2 accepted" 4 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "file 2 possible duplicates" 2 "$(json_get "$T/status.json" 'd["counts"]["possible_duplicates"]')"
expect_eq "compras" 7 "$(sql distribution 'SELECT count(*) FROM compras')"
expect_eq "João's first purchase" "12345678900|350000|2025-07-27T17:00:00Z|OUTROS|Cartão" \
  "$(sql distribution "SELECT k.cpf_cnpj||'|'||c.valor_unitario_centavos||'|'||c.data_hora||'|'||c.forma_pagamento||'|'||c.forma_pagamento_original FROM compras c JOIN clientes k ON k.id=c.cliente_id WHERE k.nome='João Silva' ORDER BY c.id LIMIT 1")"
expect_eq "customers by document" 4 "$(sql distribution 'SELECT count(*) FROM clientes')"
expect_eq "no purchase time for file 2" 4 "$(sql distribution "SELECT count(*) FROM compras WHERE data_hora IS NULL")"

# content dedupe: the repeats of file 2 are skipped
mkdir -p "$T/pipelines"
sed 's/^\(\s*\)dedupe_by_content: false/\1dedupe_by_content: true/' \
  "$FLUXO_SOURCE_DIR/pipelines/vendas.yaml" >"$T/pipelines/vendas.yaml"
export FLUXO_PIPELINES_DIR="$T/pipelines" FLUXO_DATA_DIR="$T/data2"
import_batch "$A" >/dev/null
bb=$(import_batch "$B")
batch_status "$bb"
expect_eq "content dedupe: repeats skipped" 2 "$(json_get "$T/status.json" 'd["counts"]["duplicate"]')"
expect_eq "content dedupe: new purchases" 2 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "compras with content dedupe" 5 "$(sql distribution 'SELECT count(*) FROM compras')"
echo "all sample checks passed"
