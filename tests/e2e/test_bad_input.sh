#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad input: files refused as a whole exit non-zero with a precise reason and
# leave a failed batch; bad rows are rejected one by one with row, column and
# reason while the good rows of the same file are applied.
source "$(dirname "$0")/lib.sh"

H='nome,email,telefone,endereco_completo,cpf_cnpj,produto,quantidade,valor_unitario,forma_pagamento,data_hora'

refused() { # FILE EXPECTED_TEXT
  local out rc=0
  out=$(fluxo import --quiet "$1" 2>&1) || rc=$?
  [ $rc -eq 1 ] || fail "$(basename "$1"): expected exit 1, got $rc: $out"
  grep -qF -- "$2" <<<"$out" || fail "$(basename "$1"): expected '$2' in: $out"
  grep -qF -- "$(basename "$1")" <<<"$out" || fail "$(basename "$1"): error does not name the file: $out"
  LAST_OUT=$out
  echo "ok - $(basename "$1") refused: $(grep -v '^{' <<<"$out" | tr '\n' ' ' | cut -c1-200)"
}

: >"$T/empty.csv"
refused "$T/empty.csv" "empty file"
echo "$H" >"$T/header_only.csv"
refused "$T/header_only.csv" "header only"
printf 'nome,email,produto\nAna,ana@x.com,Caneta\n' >"$T/missing_cols.csv"
refused "$T/missing_cols.csv" "missing columns"
grep -q "found" <<<"$LAST_OUT" || fail "missing columns error does not list found headers"
expect_eq "failed batches recorded" 3 "$(sql ingest "SELECT count(*) FROM batches WHERE state='failed'")"

# one file, one defect per row, plus good rows (the damaged UTF-8 row comes
# after accented rows, as in a real UTF-8 file with one corrupt line)
{
  echo "$H,coluna_extra"
  echo 'Ana Souza,ana@example.com,(11) 91234-5678,"Rua A, 1",529.982.247-25,Caneta Azul,2,"3,50",Pix,01/02/2024 10:00,x'
  echo ',semnome@example.com,,,,Caneta Azul,1,3.50,Pix,01/02/2024 10:01,x'
  echo 'Sem Doc,,,,,Caneta Azul,1,3.50,Pix,01/02/2024 10:02,x'
  echo 'Doc Curto,curto@example.com,,,1234567890,Caneta Azul,1,3.50,Pix,01/02/2024 10:03,x'
  echo 'Qtd Zero,zero@example.com,,,,Caneta Azul,0,3.50,Pix,01/02/2024 10:04,x'
  echo 'Qtd Neg,neg@example.com,,,,Caneta Azul,-1,3.50,Pix,01/02/2024 10:05,x'
  echo 'Preco Ruim,preco@example.com,,,,Caneta Azul,1,abc,Pix,01/02/2024 10:06,x'
  echo 'Data Ruim,data@example.com,,,,Caneta Azul,1,3.50,Pix,31/02/2024 10:07,x'
  echo 'Data Vazia,vazia@example.com,,,,Caneta Azul,1,3.50,Pix,,x'
  echo 'Bia Lima,bia@example.com,,,,Lápis,3,"R$ 1.234,56",Cartão de Crédito,2024-02-01T10:10:00-03:00,x'
  echo 'Caio Dias,caio@example.com,,,111.444.777-36,Lápis,1,2.00,Cartão,01/02/2024 10:11,x'
  printf 'Utf \xff\xfe Ruim,utf@example.com,,,,Caneta Azul,1,3.50,Pix,01/02/2024 10:08,x\n'
  echo "Campo Longo,longo@example.com,,,,$(head -c 70000 /dev/zero | tr '\0' 'a'),1,3.50,Pix,01/02/2024 10:09,x"
} >"$T/rows.csv"
b=$(import_batch "$T/rows.csv")
batch_status "$b"
expect_eq "received" 13 "$(json_get "$T/status.json" 'd["counts"]["received"]')"
expect_eq "accepted" 3 "$(json_get "$T/status.json" 'd["counts"]["accepted"]')"
expect_eq "rejected" 10 "$(json_get "$T/status.json" 'd["counts"]["rejected"]')"
expect_eq "applied" 3 "$(json_get "$T/status.json" 'd["counts"]["applied"]')"
rules() { json_get "$T/status.json" "sorted({(i['row'], i['field'], i['rule']) for i in d['issues'] if i['severity']=='error' and i['row']==$1})"; }
has_issue() { # ROW TEXT
  json_get "$T/status.json" "any('$2' in (i['field']+' '+i['rule']+' '+i['reason']).lower() for i in d['issues'] if i['row']==$1 and i['severity']=='error')" | grep -q True \
    || fail "row $1: no error mentioning '$2': $(rules "$1")"
  echo "ok - row $1 rejected: $2"
}
has_issue 3 nome
has_issue 4 "cpf_cnpj"
has_issue 5 "11 or 14"
has_issue 6 quantidade
has_issue 7 quantidade
has_issue 8 valor_unitario
has_issue 9 data_hora
has_issue 10 data_hora
has_issue 13 utf-8
has_issue 14 "bytes"
has_issue 14 "produto"   # the over-long cell is named by its field
# good rows landed with exact values
expect_eq "Ana's purchase" "2|350|700|PIX|Pix" \
  "$(sql distribution "SELECT quantidade||'|'||valor_unitario_centavos||'|'||valor_total_centavos||'|'||forma_pagamento||'|'||forma_pagamento_original FROM compras c JOIN clientes k ON k.id=c.cliente_id WHERE k.nome='Ana Souza'")"
expect_eq "Bia's purchase" "123456|CREDITO|2024-02-01T13:10:00Z" \
  "$(sql distribution "SELECT valor_unitario_centavos||'|'||forma_pagamento||'|'||data_hora FROM compras c JOIN clientes k ON k.id=c.cliente_id WHERE k.nome='Bia Lima'")"
expect_eq "ambiguous label goes to OUTROS, label kept" "OUTROS|Cartão" \
  "$(sql distribution "SELECT forma_pagamento||'|'||forma_pagamento_original FROM compras c JOIN clientes k ON k.id=c.cliente_id WHERE k.nome='Caio Dias'")"
expect_eq "CPF stored as digits" "52998224725" "$(sql distribution "SELECT cpf_cnpj FROM clientes WHERE nome='Ana Souza'")"
json_get "$T/status.json" "any(i['severity']=='warning' and i['row']==12 for i in d['issues'])" | grep -q True \
  || fail "row 12 (bad CPF check digits, ambiguous label) should carry warnings"
echo "ok - warnings for row 12"

# later file: the product's current price and the customer's phone follow the
# newest data; earlier purchases keep the price they were sold at
{
  echo "$H"
  echo 'Ana Souza,ana@example.com,(21) 99999-0000,"Rua A, 1",529.982.247-25,Caneta Azul,1,"4,00",Pix,05/02/2024 09:00'
} >"$T/later.csv"
import_batch "$T/later.csv" >/dev/null
expect_eq "current price updated" 400 "$(sql distribution "SELECT preco_atual_centavos FROM produtos WHERE nome='Caneta Azul'")"
expect_eq "old purchase keeps its price" 350 \
  "$(sql distribution "SELECT c.valor_unitario_centavos FROM compras c JOIN clientes k ON k.id=c.cliente_id WHERE k.nome='Ana Souza' AND c.quantidade=2")"
expect_eq "one customer, phone updated" "1|21999990000" \
  "$(sql distribution "SELECT count(*)||'|'||max(telefone) FROM clientes WHERE cpf_cnpj='52998224725'")"
echo "all bad-input checks passed"
