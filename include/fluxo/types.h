/* SPDX-License-Identifier: MIT */
/*
 * Field value parsers: the Brazilian and international formats real business
 * files carry, turned into exact canonical values. Pure functions, no
 * allocation, thread-safe (after fx_tz_set at start-up), fast: they run for
 * every cell of every row.
 *
 * Every parser takes (s, n) — not necessarily NUL-terminated, surrounding
 * whitespace already trimmed or tolerated — and returns 0 or FX_EPARSE with
 * *why set to a static, user-facing English reason ("more than 2 decimal
 * places", "day 31 does not exist in April", ...). why may be NULL.
 */
#ifndef FLUXO_TYPES_H
#define FLUXO_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Integer: "12", "+12", "-3", "1.234" / "1,234"? no: digits with optional sign;
 * "12.0" / "12,00" (spreadsheet numbers) accepted when the fraction is zero. */
int fx_parse_int(const char *s, size_t n, int64_t *out, const char **why);

/* Money in integer cents: "1234.56", "1234,56", "1.234,56", "1,234.56",
 * "R$ 1.234,56", "R$1234", "-12,5", "3500.00", "3500.5" (numeric cells).
 * More than 2 decimal places, several decimal separators, letters: error. */
int fx_parse_money(const char *s, size_t n, int64_t *cents, const char **why);

/* Decimal scaled by 10^scale (0..9): same separators as money. */
int fx_parse_decimal(const char *s, size_t n, int scale, int64_t *scaled, const char **why);

/* Date as days since 1970-01-01: "dd/mm/yyyy", "d/m/yyyy", "dd-mm-yyyy",
 * "dd.mm.yyyy", "yyyy-mm-dd", and ISO date-times (time ignored). Calendar-checked. */
int fx_parse_date(const char *s, size_t n, int32_t *days, const char **why);

/* Date-time as Unix seconds (UTC): ISO 8601 "YYYY-MM-DD[T ]HH:MM[:SS[.fff]]"
 * with optional "Z" or "±HH[:MM]", "dd/mm/yyyy HH:MM[:SS]", or a date alone
 * (midnight). Without a zone the value is local time in the zone set by
 * fx_tz_set (default America/Sao_Paulo), DST included. */
int fx_parse_datetime(const char *s, size_t n, int64_t *epoch_s, const char **why);

/* Set the zone for naive date-times (IANA name). Call once at start-up,
 * before threads. Returns 0 or FX_EINVAL for an unknown zone. */
int fx_tz_set(const char *iana_name);

/* Bool: true/false, sim/não (nao), yes/no, s/n, y/n, 1/0, x/"" ... (case- and accent-insensitive).
 */
int fx_parse_bool(const char *s, size_t n, int *out, const char **why);

/* Email: checks shape (local@domain.tld, no spaces, one @), writes it
 * lowercased to out (cap bytes incl. NUL). */
int fx_parse_email(const char *s, size_t n, char *out, size_t cap, size_t *outlen,
                   const char **why);

/* Keep the digits of a document or phone: separators . - / ( ) + and spaces
 * are dropped, any other character is an error. */
int fx_parse_digits(const char *s, size_t n, char *out, size_t cap, size_t *outlen,
                    const char **why);

/* CPF (11 digits) / CNPJ (14 digits) check digits: 1 valid, 0 invalid.
 * Input: exactly that many ASCII digits. Repeated-digit numbers are invalid. */
int fx_cpf_valid(const char *d11);
int fx_cnpj_valid(const char *d14);

/* Canonical text forms. */
void fx_format_date(int32_t days, char out[11]);        /* "YYYY-MM-DD" */
void fx_format_datetime(int64_t epoch_s, char out[21]); /* "YYYY-MM-DDTHH:MM:SSZ" (UTC) */
void fx_format_money(int64_t cents, char out[32]);      /* "1234.56", "-0.05" */

/* Days since epoch for a civil date, and back (proleptic Gregorian). */
int32_t fx_days_from_civil(int y, int m, int d);
void fx_civil_from_days(int32_t days, int *y, int *m, int *d);

/*
 * Matching key for header names and labels: lowercase, accents removed
 * (Latin-1 supplement and Latin Extended-A letters folded to ASCII),
 * spaces and punctuation dropped. "Valor Unitário" -> "valorunitario",
 * "valor_unitario" -> "valorunitario", "Cartão de Crédito" -> "cartaodecredito".
 * Writes at most cap-1 bytes + NUL; returns the length written.
 */
size_t fx_name_key(const char *s, size_t n, char *out, size_t cap);

/* Validate UTF-8: returns the byte offset of the first invalid sequence, or n if valid. */
size_t fx_utf8_check(const char *s, size_t n);

#endif
