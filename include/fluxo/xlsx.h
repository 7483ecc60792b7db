/* SPDX-License-Identifier: MIT */
/*
 * Spreadsheet readers behind the record-reader interface (fluxo/reader.h):
 * a streaming XLSX (Office Open XML) reader built on libzip and expat, and a
 * legacy XLS (BIFF, OLE container) reader built on libfreexl. fx_reader_open
 * picks them by content; these openers are for callers that already know the
 * format.
 *
 * Both yield one record per non-empty sheet row: rec->row is the sheet row
 * number (missing rows are skipped, so numbers can jump), cells are typed
 * (string, number as exact plain decimal text, bool, ISO date, error) and
 * missing cells inside a row are FX_CELL_EMPTY; trailing empty cells are not
 * reported. The sheet is opts->sheet (by name), else opts->sheet_index
 * (1-based), else the first one.
 */
#ifndef FLUXO_XLSX_H
#define FLUXO_XLSX_H

#include "fluxo/reader.h"

/*
 * Open an XLSX workbook and position on the chosen sheet. Reads the
 * workbook, relationships, styles and shared strings up front (shared
 * strings are the only part kept in memory), then streams the sheet.
 * Returns 0 with *out set, or a negative FX_E* with err naming the file and
 * the reason (not a ZIP, encrypted, no xl/workbook.xml, no such sheet, a
 * limit, malformed XML with the part and line). Blocks on file I/O.
 */
int fx_xlsx_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                        struct fx_err *err);

/*
 * Open a legacy XLS workbook (BIFF5/BIFF8 in an OLE container) with freexl,
 * which loads the workbook into memory. Encrypted workbooks (including
 * encrypted OOXML, which is an OLE container with an EncryptionInfo stream)
 * and corrupt files are refused with a reason.
 */
int fx_xls_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                       struct fx_err *err);

#endif
