/* SPDX-License-Identifier: MIT */
/*
 * The raw SQLite ceiling for the end-to-end figure: the same CSV rows read
 * with Fluxo's CSV reader and inserted as text into one 10-column table in
 * one transaction through one prepared statement (WAL, synchronous=NORMAL),
 * with no validation, no staging, no queue and no normalization. Prints
 * rows/s for reading alone and for reading + inserting.
 *
 * usage: bench_sqlite_ceiling FILE.csv DB_PATH
 */
#include "fluxo/reader.h"
#include "fluxo/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static double run(const char *csv, sqlite3_stmt *ins, long *rows)
{
    struct fx_reader *r = NULL;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_reader_open(csv, NULL, &r, &err) != 0) {
        fprintf(stderr, "cannot open %s: %s\n", csv, err.reason);
        exit(1);
    }
    struct fx_record rec;
    int64_t t0 = fx_mono_ms();
    long n = -1;
    while (fx_reader_next(r, &rec, &err) == 1) {
        if (++n == 0)
            continue; /* header */
        if (!ins)
            continue;
        for (int c = 0; c < 10; c++) {
            if ((size_t)c < rec.ncells)
                sqlite3_bind_text(ins, c + 1, rec.cells[c].s, (int)rec.cells[c].len, SQLITE_STATIC);
            else
                sqlite3_bind_null(ins, c + 1);
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "insert failed\n");
            exit(1);
        }
        sqlite3_reset(ins);
    }
    fx_reader_free(r);
    *rows = n;
    return (double)(fx_mono_ms() - t0) / 1000.0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE.csv DB_PATH\n", argv[0]);
        return 2;
    }
    long rows;
    double read_s = run(argv[1], NULL, &rows);
    printf("read only: %ld rows in %.3f s = %.0f rows/s\n", rows, read_s, rows / read_s);
    unlink(argv[2]);
    sqlite3 *db;
    if (sqlite3_open(argv[2], &db) != SQLITE_OK)
        return 1;
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE t(nome TEXT, email TEXT, telefone TEXT, endereco TEXT,"
                 " cpf_cnpj TEXT, produto TEXT, quantidade TEXT, valor TEXT, pagamento TEXT,"
                 " data_hora TEXT);",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    double ins_s = run(argv[1], ins, &rows);
    int64_t t0 = fx_mono_ms();
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    ins_s += (double)(fx_mono_ms() - t0) / 1000.0;
    printf("read + insert (one transaction): %ld rows in %.3f s = %.0f rows/s\n", rows, ins_s,
           rows / ins_s);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return 0;
}
