#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Generate the XLSX/XLS golden files for tests/unit/test_xlsx.c.

Run once with Debian's python3 (python3-openpyxl), from anywhere:
    /usr/bin/python3 tests/data/xlsx/make_golden.py
The outputs are committed; the test asserts exact cell text and types.
openpyxl writes the ordinary workbooks (shared strings, dates, several
sheets); files openpyxl cannot make (inline strings, rich text with phonetic
runs, formulas with cached values, cells without r attributes, serials
around the 1900 leap bug) are hand-written XML zipped with zipfile, as are
the malformed inputs and two minimal OLE (CFB) containers.
"""
import datetime
import io
import os
import random
import struct
import zipfile

import openpyxl
from openpyxl.utils.datetime import CALENDAR_MAC_1904

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def fixed_zip_times(path):
    """Rewrite a zip with a fixed timestamp so regenerating is byte-stable."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    write_zip(path, items)


def write_zip(path, items, compress=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = compress
            z.writestr(info, data)


def basic():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Vendas"
    ws.append(["nome", "cpf", "preco_txt", "valor", "ativo", "erro", "data", "data_hora",
               "data_br", "nota"])
    ws.append(["Ana", 12345678900, "3500.00", 3500.5, True, "#N/A", datetime.date(2024, 1, 15),
               datetime.datetime(2024, 1, 15, 13, 45, 30), datetime.date(2024, 2, 29), 19.99])
    ws["I2"].number_format = "dd/mm/yyyy"
    ws.append(["Bruno", 1e15, "19.99", 0.1 + 0.2, False, "#DIV/0!"])
    # row 4 missing; sparse row 5 (B, C missing) and row 6 (only B)
    ws["A5"] = "x"
    ws["D5"] = 7
    ws["B6"] = "só B"
    s2 = wb.create_sheet("Segunda")
    s2.append(["segunda", 2])
    wb.create_sheet("Vazia")
    big = wb.create_sheet("Grande")
    big["A1"] = "ok"
    big["A2"] = "x" * 30000  # Excel caps cells at 32767 chars; the test lowers max_field_bytes
    big["B2"] = "after"
    big["A3"] = "fim"
    wb.save(out("basic.xlsx"))
    fixed_zip_times(out("basic.xlsx"))


def date1904():
    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.title = "Mac"
    ws.append(["data", "data_hora"])
    ws.append([datetime.date(2024, 1, 15), datetime.datetime(2000, 1, 1, 12, 0, 0)])
    wb.save(out("date1904.xlsx"))
    fixed_zip_times(out("date1904.xlsx"))


CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
      '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
      '<Default Extension="xml" ContentType="application/xml"/>'
      '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
      '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
      '</Types>')
ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
             '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
             '</Relationships>')
WB = ('<?xml version="1.0" encoding="UTF-8"?>\n'
      '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
      '<workbookPr date1904="0"/><sheets><sheet name="Hand" sheetId="1" r:id="rId1"/></sheets>'
      '</workbook>')
WB_RELS = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
           '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
           '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
           '</Relationships>')
STYLES = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<numFmts count="5">'
          '<numFmt numFmtId="164" formatCode="dd/mm/yyyy"/>'
          '<numFmt numFmtId="165" formatCode="[h]:mm:ss"/>'
          '<numFmt numFmtId="166" formatCode="&quot;day&quot; 0.00"/>'
          '<numFmt numFmtId="167" formatCode="[Red]#,##0.00;\\-#,##0.00"/>'
          '<numFmt numFmtId="168" formatCode="yyyy\\-mm\\-dd hh:mm"/>'
          '</numFmts>'
          '<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>'
          '<cellXfs count="8"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/>'
          '<xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="167"/><xf numFmtId="168"/>'
          '<xf numFmtId="22"/></cellXfs>'
          '</styleSheet>')
SST = ('<?xml version="1.0" encoding="UTF-8"?>\n'
       '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3">'
       '<si><t>plain</t></si>'
       '<si><r><t>Ric</t></r><r><rPr><b/></rPr><t xml:space="preserve">h text</t></r>'
       '<rPh sb="0" eb="1"><t>フリ</t></rPh></si>'
       '<si><t>tab_x0009_x</t></si>'
       '</sst>')
SHEET = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
         # row 1: shared, inline, rich, formula string / number / bool / error
         '<row r="1"><c r="A1" t="s"><v>0</v></c>'
         '<c r="B1" t="inlineStr"><is><t>inline</t></is></c>'
         '<c r="C1" t="s"><v>1</v></c>'
         '<c r="D1" t="str"><f>A1&amp;"!"</f><v>plain!</v></c>'
         '<c r="E1"><f>1+1</f><v>2</v></c>'
         '<c r="F1" t="b"><f>TRUE()</f><v>1</v></c>'
         '<c r="G1" t="e"><f>NA()</f><v>#N/A</v></c></row>'
         # row 2: dates by style
         '<row r="2"><c r="A2" s="1"><v>59</v></c><c r="B2" s="1"><v>61</v></c>'
         '<c r="C2" s="1"><v>1</v></c><c r="D2" s="2"><v>45306</v></c>'
         '<c r="E2" s="3"><v>1.5</v></c><c r="F2" s="4"><v>42</v></c>'
         '<c r="G2" s="5"><v>1.5</v></c><c r="H2" s="6"><v>45306.5</v></c>'
         '<c r="I2" s="7"><v>45306</v></c><c r="J2" s="1"><v>45306.99999999</v></c>'
         '<c r="K2" s="1"><v>45306.25</v></c></row>'
         # row 3: cells without r, an exponent number
         '<row r="3"><c><v>1</v></c><c t="inlineStr"><is><t>b</t></is></c>'
         '<c><v>1.2345678900000001E+10</v></c><c><v>1E-7</v></c><c><v>3500.50</v></c>'
         '<c><v>0.30000000000000004</v></c><c><v>1E+15</v></c></row>'
         # row 4: serial 60 (1900-02-29 does not exist)
         '<row r="4"><c r="A4"><v>5</v></c><c r="B4" s="1"><v>60</v></c></row>'
         # rows 5, 6 missing; row 7 sparse; row 8 only a styled empty cell
         '<row r="7"><c r="C7"><v>3</v></c></row>'
         '<row r="8"><c r="A8" s="1"/></row>'
         # row 9: escaped tab in a shared string, inline string with a phonetic run
         '<row r="9"><c r="A9" t="s"><v>2</v></c>'
         '<c r="B9" t="inlineStr"><is><r><t>ab</t></r><r><t>cd</t></r><rPh sb="0" eb="1"><t>x</t></rPh></is></c>'
         '</row>'
         '</sheetData></worksheet>')


def hand_parts(sheet=SHEET, wb=WB):
    return [("[Content_Types].xml", CT), ("_rels/.rels", ROOT_RELS), ("xl/workbook.xml", wb),
            ("xl/_rels/workbook.xml.rels", WB_RELS), ("xl/styles.xml", STYLES),
            ("xl/sharedStrings.xml", SST), ("xl/worksheets/sheet1.xml", sheet)]


def handmade():
    write_zip(out("handmade.xlsx"), hand_parts())
    huge = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            '<row r="1"><c r="A1" t="inlineStr"><is><t>ok</t></is></c></row>'
            '<row r="2"><c r="A2" t="inlineStr"><is><t>' + "x" * 70000 + '</t></is></c>'
            '<c r="B2" t="inlineStr"><is><t>after</t></is></c></row>'
            '<row r="3"><c r="A3" t="inlineStr"><is><t>fim</t></is></c></row>'
            '</sheetData></worksheet>')
    write_zip(out("huge.xlsx"), hand_parts(huge))


def malformed():
    data = open(out("basic.xlsx"), "rb").read()
    open(out("truncated.xlsx"), "wb").write(data[: len(data) // 2])
    bad = SHEET.replace('<c r="A4"><v>5</v></c>', '<c r="A4"><v>5</x></c>')
    write_zip(out("badxml.xlsx"), hand_parts(bad))
    bomb = SHEET.replace("<sheetData>", "<sheetData>" + " " * (4 << 20))
    write_zip(out("bomb.xlsx"), hand_parts(bomb))
    write_zip(out("noworkbook.xlsx"), [("hello.txt", "not a workbook\n")])
    rnd = random.Random(42)
    open(out("random.xlsx"), "wb").write(bytes(rnd.randrange(256) for _ in range(1000)))
    # an entry flagged as encrypted (ZipCrypto bit in the local and central headers)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in hand_parts():
            z.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), content)
    raw = bytearray(buf.getvalue())
    i = 0
    while True:
        i = raw.find(b"PK\x03\x04", i)
        if i < 0:
            break
        raw[i + 6] |= 1
        i += 4
    i = 0
    while True:
        i = raw.find(b"PK\x01\x02", i)
        if i < 0:
            break
        raw[i + 8] |= 1
        i += 4
    open(out("zipcrypto.xlsx"), "wb").write(bytes(raw))


def cfb(streams):
    """Minimal OLE/CFB v3 file: one FAT sector, one directory sector, empty streams."""
    free, end, fat_sect, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    hdr = bytearray(512)
    hdr[0:8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"
    struct.pack_into("<HHHHH", hdr, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", hdr, 40, 0, 1, 1, 0, 4096, end, 0, end, 0)
    struct.pack_into("<I", hdr, 76, 0)
    for k in range(1, 109):
        struct.pack_into("<I", hdr, 76 + 4 * k, free)
    fat = bytearray(b"\xff" * 512)
    struct.pack_into("<II", fat, 0, fat_sect, end)

    def entry(name, typ, left, right, child):
        e = bytearray(128)
        u = name.encode("utf-16-le") + b"\0\0"
        e[0:len(u)] = u
        struct.pack_into("<HBBIII", e, 64, len(u), typ, 1, left, right, child)
        struct.pack_into("<IQ", e, 116, end, 0)
        return e

    names = list(streams)
    d = entry("Root Entry", 5, nostream, nostream, 1 if names else nostream)
    for k, n in enumerate(names):
        d += entry(n, 2, nostream, k + 2 if k + 1 < len(names) else nostream, nostream)
    d += bytes(512 - len(d))
    return bytes(hdr + fat + d)


def ole():
    open(out("notxls.xls"), "wb").write(cfb(["Contents"]))
    open(out("encrypted.xlsx"), "wb").write(cfb(["EncryptionInfo", "EncryptedPackage"]))


if __name__ == "__main__":
    basic()
    date1904()
    handmade()
    malformed()
    ole()
    print("expected C3 text of handmade.xlsx:", repr(float("1.2345678900000001E+10")))
