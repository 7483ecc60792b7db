#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Export normalized tables end to end: import a generated file, export
# compras and clientes to CSV and XLSX, and read the files back with Python
# (csv module, openpyxl from Debian's /usr/bin/python3) to check row counts
# and values against the database; an unknown table fails and lists the
# valid ones; generate --format xlsx writes the same rows as the CSV.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
cd "$T"

fluxo generate --rows 500 --seed 21 --out "$T/in.csv" 2>/dev/null
b=$(import_batch "$T/in.csv")
batch_status "$b"
expect_eq "state" applied "$(json_get "$T/status.json" 'd["state"]')"
n_compras=$(sql distribution 'SELECT count(*) FROM compras')
n_clientes=$(sql distribution 'SELECT count(*) FROM clientes')

# 1. CSV with the defaults: BOM, ';', money with a decimal point, default file name
out=$(fluxo export compras)
expect_eq "export message" "exported $n_compras rows of compras to compras.csv" "$out"
expect_eq "BOM" "efbbbf" "$(head -c 3 compras.csv | od -An -tx1 | tr -d ' \n')"
read -r rows total first_total first_when < <($PY - compras.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8-sig", newline=""), delimiter=";"))
total = sum(round(float(r["Valor total (R$)"]) * 100) for r in rows)
print(len(rows), total, rows[0]["Valor total (R$)"], rows[0]["Data e hora"])
PY
)
expect_eq "csv compras rows" "$n_compras" "$rows"
expect_eq "csv compras total cents" "$(sql distribution 'SELECT sum(valor_total_centavos) FROM compras')" "$total"
expect_eq "csv first total" \
  "$(sql distribution "SELECT printf('%d.%02d', valor_total_centavos / 100, valor_total_centavos % 100) FROM compras ORDER BY id LIMIT 1")" \
  "$first_total"
expect_eq "csv first data_hora" "$(sql distribution 'SELECT data_hora FROM compras ORDER BY id LIMIT 1')" "$first_when"

# 2. CSV to stdout with a decimal comma and CRLF
fluxo export clientes --out - --decimal-comma --crlf --no-bom >"$T/cli.csv" 2>"$T/cli.err"
grep -q "exported $n_clientes rows of clientes to standard output" "$T/cli.err" || fail "stdout export message"
read -r rows crlf docs_ok < <($PY - "$T/cli.csv" "$FLUXO_DATA_DIR/distribution.db" <<'PY'
import csv, sys, sqlite3
raw = open(sys.argv[1], "rb").read()
lines = raw.split(b"\n")
crlf = all(l.endswith(b"\r") for l in lines[:-1]) and lines[-1] == b""
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8", newline=""), delimiter=";"))
db = {r[0]: r[1] for r in sqlite3.connect(sys.argv[2]).execute("SELECT id, cpf_cnpj FROM clientes")}
ok = all((r["CPF/CNPJ"] or None) == db[int(r["ID"])] for r in rows)
print(len(rows), int(crlf), int(ok))
PY
)
expect_eq "csv clientes rows" "$n_clientes" "$rows"
expect_eq "csv clientes CRLF" 1 "$crlf"
expect_eq "csv clientes documents (leading zeros kept)" 1 "$docs_ok"
fluxo export produtos --decimal-comma --out "$T/p.csv" >/dev/null
expect_eq "decimal comma in money" 1 "$(grep -c '^1;' "$T/p.csv")"
grep -q '^1;[^;]*;[0-9]*,[0-9][0-9];' "$T/p.csv" || fail "produtos price with a decimal comma: $(sed -n 2p "$T/p.csv")"
echo "ok - decimal comma"

# 3. XLSX: typed cells, counts and values
fluxo export compras --format xlsx >/dev/null
fluxo export clientes --format xlsx --out "$T/clientes.xlsx" >/dev/null
read -r rows freeze money_fmt total < <($PY - compras.xlsx <<'PY'
import sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1], read_only=False).active
hdr = [c.value for c in ws[1]]
col = hdr.index("Valor total (R$)") + 1
when = hdr.index("Data e hora") + 1
cells = [ws.cell(row=r, column=col) for r in range(2, ws.max_row + 1)]
assert all(isinstance(c.value, (int, float)) for c in cells), "money cells are numbers"
assert ws.cell(row=2, column=when).is_date, "data_hora is a date"
print(ws.max_row - 1, ws.freeze_panes, int("R$" in cells[0].number_format),
      sum(round(c.value * 100) for c in cells))
PY
)
expect_eq "xlsx compras rows" "$n_compras" "$rows"
expect_eq "xlsx header frozen" A2 "$freeze"
expect_eq "xlsx money format" 1 "$money_fmt"
expect_eq "xlsx compras total cents" "$(sql distribution 'SELECT sum(valor_total_centavos) FROM compras')" "$total"
read -r rows first_name < <($PY - "$T/clientes.xlsx" <<'PY'
import sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
print(ws.max_row - 1, ws.cell(row=2, column=2).value.replace(" ", "_"))
PY
)
expect_eq "xlsx clientes rows" "$n_clientes" "$rows"
expect_eq "xlsx first client" "$(sql distribution 'SELECT replace(nome, " ", "_") FROM clientes ORDER BY id LIMIT 1')" "$first_name"

# 4. errors: unknown table (exit 1, valid names listed, no file), xlsx to stdout
set +e
fluxo export "compras; DROP TABLE clientes" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
set -e
expect_eq "unknown table exit" 1 "$rc"
grep -q "clientes, enderecos, produtos, compras" "$T/bad.err" || fail "valid tables not listed: $(cat "$T/bad.err")"
echo "ok - valid tables listed"
expect_eq "clientes still there" "$n_clientes" "$(sql distribution 'SELECT count(*) FROM clientes')"
set +e
fluxo export compras --format xlsx --out - >/dev/null 2>&1
rc=$?
set -e
expect_eq "xlsx to stdout refused" 2 "$rc"
set +e
fluxo export compras --out "$T/no/such/dir/x.csv" >/dev/null 2>"$T/bad.err"
rc=$?
set -e
expect_eq "unwritable path exit" 1 "$rc"

# 5. generate --format xlsx: the same cells as the CSV generator
fluxo generate --rows 200 --seed 5 --out "$T/g.csv" 2>/dev/null
fluxo generate --rows 200 --seed 5 --format xlsx --out "$T/g.xlsx" 2>/dev/null
set +e
fluxo generate --rows 2 --format xlsx >/dev/null 2>&1
rc=$?
set -e
expect_eq "generate xlsx needs --out" 2 "$rc"
same=$($PY - "$T/g.csv" "$T/g.xlsx" <<'PY'
import csv, sys, openpyxl
want = list(csv.reader(open(sys.argv[1], encoding="utf-8", newline="")))
ws = openpyxl.load_workbook(sys.argv[2]).active
got = [[("" if c is None else c) for c in r] for r in ws.iter_rows(values_only=True)]
print(int(want == got), len(got))
PY
)
expect_eq "generate xlsx = csv" "1 201" "$same"
echo "all export checks passed"
