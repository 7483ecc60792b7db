/* SPDX-License-Identifier: MIT */
/*
 * Sales data generator: deterministic, realistic Brazilian sales rows (names,
 * e-mails, phones, addresses, CPF/CNPJ with real check digits, a product
 * catalogue with fixed prices, payment labels as people type them) with an
 * exact number of bad rows, exact repeats and optional check-digit warnings,
 * written as CSV or handed row by row to another writer.
 *
 * Design notes
 *
 * Randomness. Everything comes from splitmix64 streams keyed by (seed,
 * purpose, index): the content of good row g is a pure function of
 * (seed, options, g) and the identity of customer c a pure function of
 * (seed, c). So a repeat of good row j is produced by generating row j again
 * (no history is kept: memory is constant whatever the row count) and a
 * customer who buys twice has the same name, e-mail, phone, address and
 * document both times. A separate sequential stream decides the kind of each
 * row (good, bad, repeat) by selection sampling: at row i, with R rows left of
 * which B must be bad and D repeats, the row is bad with probability B/R and a
 * repeat with probability D/R. The totals are therefore exact and the
 * positions spread over the file. Row 0 is forced good when repeats are asked
 * for, so that every repeat has an earlier good row to copy.
 *
 * Uniqueness of good rows, by construction. The pipeline's content key is
 * (document or e-mail, product, quantity, price, data_hora, payment), so two
 * good rows must never agree on all of it:
 *  - with data_hora, good row g of G gets time slot floor(g*S/G) + jitter
 *    with 0 <= jitter < floor(S/G), S the slots of 2024-2025: consecutive
 *    bases are at least floor(S/G) apart, so slots, hence timestamps, are
 *    strictly increasing, and they spread over the two years. A slot is one
 *    second of business hours (08:00:00-21:59:59) of a day from 2024-01-01.
 *    Past S = 36.8M good rows the slot is g (one second apart), and the
 *    dates run beyond 2025-12-31, still increasing.
 *    Customers then come from a pool of ~70% of the good row count, so most
 *    customers buy more than once.
 *  - without data_hora, good row g belongs to customer g mod P (P = good rows,
 *    at most 10^8) and every customer has a distinct key: CPFs and CNPJ roots
 *    carry an 8-digit number that is a bijection of the customer index
 *    (c * odd-non-multiple-of-5 + k mod 10^8), and customers without a
 *    document have the customer index as their e-mail's number. Past 10^8
 *    good rows, pass r = g / P shifts the (product, quantity) pair, one of
 *    400, by r: unique up to 4*10^10 good rows.
 *
 * Bad rows are a normal row with exactly one defect applied (their customer's
 * document is always valid so the defect is the only problem). Warn rows are
 * good rows of a customer whose document has the right length and wrong check
 * digits (warn_ratio of the customers).
 *
 * Speed: cells are formatted by hand into one fixed buffer, the CSV goes
 * through one 256 KiB buffer, Windows-1252 is transcoded with iconv per
 * buffer; nothing is allocated per row.
 */
#include "fluxo/generate.h"
#include "fluxo/mem.h"

#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ tables */

struct wstr {
    const char *s;
    unsigned w;
};

static const char *const first_names[] = {
    "João",     "José",          "Antônio",   "Francisco",  "Carlos",     "Paulo",
    "Pedro",    "Lucas",         "Luiz",      "Marcos",     "Luís",       "Gabriel",
    "Rafael",   "Daniel",        "Marcelo",   "Bruno",      "Eduardo",    "Felipe",
    "Raimundo", "Rodrigo",       "Sebastião", "André",      "Fernando",   "Fábio",
    "Márcio",   "Thiago",        "Vinícius",  "Mateus",     "Gustavo",    "Leonardo",
    "Otávio",   "Caio",          "Heitor",    "Davi",       "Arthur",     "Benedito",
    "Geraldo",  "Joaquim",       "Renato",    "Sérgio",     "João Pedro", "Luiz Carlos",
    "Maria",    "Ana",           "Francisca", "Antônia",    "Adriana",    "Juliana",
    "Márcia",   "Fernanda",      "Patrícia",  "Aline",      "Sandra",     "Camila",
    "Amanda",   "Bruna",         "Jéssica",   "Letícia",    "Júlia",      "Luciana",
    "Vanessa",  "Mariana",       "Gabriela",  "Conceição",  "Beatriz",    "Larissa",
    "Débora",   "Lúcia",         "Cláudia",   "Tânia",      "Vitória",    "Sônia",
    "Helena",   "Isabela",       "Lívia",     "Raquel",     "Rosângela",  "Simone",
    "Valéria",  "Maria Eduarda", "Ana Clara", "Maria José",
};
#define N_FIRST (sizeof(first_names) / sizeof(first_names[0]))

struct surname {
    const char *s;
    const char *conn; /* "da Silva", "dos Santos"... */
};
static const struct surname surnames[] = {
    {"Silva", "da"},     {"Santos", "dos"},   {"Oliveira", "de"},   {"Souza", "de"},
    {"Rodrigues", NULL}, {"Ferreira", NULL},  {"Alves", NULL},      {"Pereira", NULL},
    {"Lima", NULL},      {"Gomes", NULL},     {"Costa", "da"},      {"Ribeiro", NULL},
    {"Martins", NULL},   {"Carvalho", NULL},  {"Almeida", "de"},    {"Lopes", NULL},
    {"Soares", NULL},    {"Fernandes", NULL}, {"Vieira", NULL},     {"Barbosa", NULL},
    {"Rocha", "da"},     {"Dias", NULL},      {"Nascimento", "do"}, {"Andrade", NULL},
    {"Moreira", NULL},   {"Nunes", NULL},     {"Marques", NULL},    {"Machado", NULL},
    {"Mendes", NULL},    {"Freitas", "de"},   {"Cardoso", NULL},    {"Ramos", NULL},
    {"Gonçalves", NULL}, {"Santana", NULL},   {"Teixeira", NULL},   {"Araújo", NULL},
    {"Magalhães", NULL}, {"Mello", "de"},     {"Brandão", NULL},    {"Assunção", "da"},
    {"Conceição", "da"}, {"Galvão", NULL},    {"Simões", NULL},     {"Falcão", NULL},
    {"Guimarães", NULL}, {"Peixoto", NULL},   {"Câmara", NULL},     {"Sá", "de"},
    {"Antunes", NULL},   {"Calado", NULL},    {"Monteiro", NULL},   {"Cavalcanti", NULL},
    {"Nogueira", NULL},  {"Pinheiro", NULL},  {"Batista", NULL},    {"Medeiros", NULL},
};
#define N_SUR (sizeof(surnames) / sizeof(surnames[0]))

static const char *const company_fmt[][2] = {
    /* prefix, suffix around the surname */
    {"", " Comércio Ltda"},  {"Distribuidora ", " Ltda"}, {"", " Tecnologia ME"},
    {"Mercado ", " EIRELI"}, {"Construtora ", " S.A."},   {"", " Serviços Administrativos Ltda"},
    {"Papelaria ", " ME"},   {"Auto Peças ", " Ltda"},    {"Farmácia ", " Ltda"},
    {"", " & Filhos Ltda"},  {"Padaria ", " ME"},         {"", " Informática Ltda"},
};
#define N_COMPANY (sizeof(company_fmt) / sizeof(company_fmt[0]))

static const char *const company_dept[] = {"contato", "financeiro", "compras", "vendas", "adm"};

static const struct wstr email_domains[] = {
    {"gmail.com", 40},    {"hotmail.com", 20}, {"outlook.com", 12},
    {"yahoo.com.br", 10}, {"uol.com.br", 8},   {"empresa.com.br", 5},
};

struct city {
    const char *name;
    const char *uf;
    unsigned ddd;
    unsigned w;
};
#define N_CITY (sizeof(cities) / sizeof(cities[0]))
static const struct city cities[] = {
    {"São Paulo", "SP", 11, 40},
    {"Guarulhos", "SP", 11, 4},
    {"Campinas", "SP", 19, 6},
    {"Santos", "SP", 13, 3},
    {"Ribeirão Preto", "SP", 16, 3},
    {"Sorocaba", "SP", 15, 3},
    {"São José dos Campos", "SP", 12, 3},
    {"Rio de Janeiro", "RJ", 21, 20},
    {"Niterói", "RJ", 21, 3},
    {"Petrópolis", "RJ", 24, 2},
    {"Belo Horizonte", "MG", 31, 10},
    {"Uberlândia", "MG", 34, 3},
    {"Juiz de Fora", "MG", 32, 2},
    {"Vitória", "ES", 27, 3},
    {"Curitiba", "PR", 41, 8},
    {"Londrina", "PR", 43, 2},
    {"Maringá", "PR", 44, 2},
    {"Florianópolis", "SC", 48, 3},
    {"Joinville", "SC", 47, 3},
    {"Blumenau", "SC", 47, 2},
    {"Porto Alegre", "RS", 51, 7},
    {"Caxias do Sul", "RS", 54, 2},
    {"Pelotas", "RS", 53, 2},
    {"Salvador", "BA", 71, 9},
    {"Feira de Santana", "BA", 75, 2},
    {"Aracaju", "SE", 79, 2},
    {"Recife", "PE", 81, 6},
    {"Olinda", "PE", 81, 1},
    {"Caruaru", "PE", 81, 1},
    {"João Pessoa", "PB", 83, 3},
    {"Campina Grande", "PB", 83, 1},
    {"Natal", "RN", 84, 3},
    {"Maceió", "AL", 82, 3},
    {"Fortaleza", "CE", 85, 8},
    {"Juazeiro do Norte", "CE", 88, 1},
    {"Teresina", "PI", 86, 3},
    {"São Luís", "MA", 98, 3},
    {"Belém", "PA", 91, 5},
    {"Santarém", "PA", 93, 1},
    {"Manaus", "AM", 92, 6},
    {"Macapá", "AP", 96, 1},
    {"Boa Vista", "RR", 95, 1},
    {"Porto Velho", "RO", 69, 1},
    {"Rio Branco", "AC", 68, 1},
    {"Palmas", "TO", 63, 1},
    {"Goiânia", "GO", 62, 5},
    {"Anápolis", "GO", 62, 1},
    {"Brasília", "DF", 61, 9},
    {"Campo Grande", "MS", 67, 3},
    {"Cuiabá", "MT", 65, 2},
};

static const struct wstr street_types[] = {
    {"Rua", 60},    {"Avenida", 18}, {"Av.", 5},     {"Travessa", 5},
    {"Alameda", 5}, {"Praça", 2},    {"Estrada", 3}, {"R.", 2},
};

static const char *const street_names[] = {
    "das Flores",
    "Sete de Setembro",
    "XV de Novembro",
    "Tiradentes",
    "Dom Pedro II",
    "Santos Dumont",
    "Rui Barbosa",
    "Getúlio Vargas",
    "Marechal Deodoro",
    "Duque de Caxias",
    "Presidente Vargas",
    "São João",
    "das Acácias",
    "dos Andradas",
    "Barão do Rio Branco",
    "Floriano Peixoto",
    "Castro Alves",
    "José Bonifácio",
    "Machado de Assis",
    "Padre Anchieta",
    "da Independência",
    "Brasil",
    "Amazonas",
    "Bahia",
    "Goiás",
    "Minas Gerais",
    "Treze de Maio",
    "Primeiro de Maio",
    "Joaquim Nabuco",
    "Visconde de Mauá",
    "Princesa Isabel",
    "Anita Garibaldi",
    "Bento Gonçalves",
    "Cândido Portinari",
    "Oswaldo Cruz",
    "Carlos Gomes",
    "Monteiro Lobato",
    "Cecília Meireles",
    "dos Ipês",
    "das Palmeiras",
    "Santa Catarina",
    "Coronel Antônio Prado",
    "Vinte e Um de Abril",
    "Professor João Brasil",
};
#define N_STREET (sizeof(street_names) / sizeof(street_names[0]))

static const char *const neighborhoods[] = {
    "Centro",
    "Jardim América",
    "Vila Nova",
    "Boa Vista",
    "São José",
    "Santa Mônica",
    "Jardim Europa",
    "Parque São Jorge",
    "Vila Operária",
    "Cidade Nova",
    "Jardim Primavera",
    "Bela Vista",
    "Santo Antônio",
    "Planalto",
    "Industrial",
    "Alvorada",
    "Liberdade",
    "Santa Rita",
    "Nossa Senhora Aparecida",
    "Jardim Botânico",
    "Vila São Luís",
    "Conjunto Habitacional",
};
#define N_HOOD (sizeof(neighborhoods) / sizeof(neighborhoods[0]))

struct product {
    const char *name;
    uint32_t cents;
    unsigned w;
};
/* Two names carry a '"' and one a ',' on purpose: CSV quoting must cope. */
static const struct product products[] = {
    {"Notebook Dell Inspiron 15", 350000, 4},
    {"Notebook Lenovo IdeaPad 3", 289900, 4},
    {"MacBook Air M2", 899900, 1},
    {"Mouse Logitech M170", 7990, 10},
    {"Mouse Gamer Redragon Cobra", 11990, 6},
    {"Teclado Logitech K120", 8990, 8},
    {"Teclado Mecânico Redragon Kumara", 24990, 5},
    {"Monitor LG 24\" Full HD", 89900, 4},
    {"Monitor Samsung Odyssey 27\"", 149900, 2},
    {"Smartphone Samsung Galaxy A54", 189900, 5},
    {"iPhone 15 128GB", 599900, 2},
    {"Smartphone Motorola Moto G84", 149900, 5},
    {"Xiaomi Redmi Note 13", 139900, 4},
    {"Fone de Ouvido JBL Tune 520BT", 29990, 6},
    {"Fone Bluetooth QCY T13", 9990, 8},
    {"Caixa de Som JBL Go 3", 24900, 6},
    {"Smart TV Samsung 50 4K", 279900, 2},
    {"Smart TV LG 43 Full HD", 199900, 2},
    {"Tablet Samsung Galaxy Tab A9", 119900, 3},
    {"iPad 10ª Geração", 399900, 1},
    {"Impressora HP DeskJet 2774", 39900, 3},
    {"Impressora Epson EcoTank L3250", 119900, 2},
    {"Cartucho HP 664 Preto", 7990, 6},
    {"Pendrive SanDisk 64GB", 4990, 8},
    {"SSD Kingston A400 480GB", 25990, 5},
    {"HD Externo Seagate 1TB", 37900, 3},
    {"Cabo USB-C 2m", 2990, 10},
    {"Carregador Turbo 25W", 11900, 7},
    {"Webcam Logitech C920", 44990, 3},
    {"Headset HyperX Cloud Stinger", 29900, 3},
    {"Roteador TP-Link Archer C6", 27990, 3},
    {"Cadeira Gamer ThunderX3", 129900, 2},
    {"Mesa para Escritório 120cm", 59900, 2},
    {"Smartband Xiaomi Mi Band 8", 29900, 4},
    {"Apple Watch SE", 299900, 1},
    {"Kindle 11ª Geração", 59900, 3},
    {"Console PlayStation 5", 379900, 1},
    {"Controle Xbox Series", 44900, 3},
    {"Echo Dot 5ª Geração", 37900, 4},
    {"Air Fryer Mondial 4L", 39990, 4},
    {"Cafeteira Nespresso Essenza Mini", 54900, 2},
    {"Liquidificador Philips Walita", 22990, 3},
    {"Micro-ondas Electrolux 20L", 64900, 2},
    {"Mochila para Notebook 15,6\"", 15990, 4},
};
#define N_PROD (sizeof(products) / sizeof(products[0]))

static const struct wstr payments[] = {
    {"Pix", 20},     {"PIX", 10},    {"Cartão de Crédito", 25}, {"Cartão de Débito", 12},
    {"Dinheiro", 8}, {"Boleto", 8},  {"Boleto Bancário", 5},    {"Transferência Bancária", 5},
    {"Cartão", 4},   {"credito", 3},
};

/* Weights of quantidade 1..10: most sales are of one unit. */
static const unsigned qty_w[10] = {40, 20, 12, 8, 6, 4, 3, 3, 2, 2};

static const char *const header[FX_GEN_MAX_COLS] = {
    "nome",    "email",      "telefone",       "endereco_completo", "cpf_cnpj",
    "produto", "quantidade", "valor_unitario", "forma_pagamento",   "data_hora",
};

enum { C_NOME, C_EMAIL, C_TEL, C_END, C_DOC, C_PROD, C_QTD, C_VALOR, C_PAG, C_DATA };

/* ------------------------------------------------------------------- PRNG */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct rng {
    uint64_t s;
};

static inline uint64_t rnext(struct rng *r)
{
    return mix64(r->s += 0x9e3779b97f4a7c15ULL);
}

/* Uniform-enough integer in [0, n) (multiply-shift; n < 2^32). */
static inline uint32_t rbelow(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rnext(r) >> 32) * n) >> 32);
}

static inline uint64_t rbelow64(struct rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rnext(r) * n) >> 64);
}

static inline int rpct(struct rng *r, unsigned pct)
{
    return rbelow(r, 100) < pct;
}

enum { ST_GOOD = 1, ST_BAD, ST_CUST, ST_SCHED };

/* ------------------------------------------------------------------ state */

#define SLOTS_PER_DAY 50400ULL /* 08:00:00 .. 21:59:59 */
#define DAYS_2024_2025 731ULL
#define EPOCH_DAYS_2024 19723  /* 2024-01-01 in days since 1970-01-01 */
#ifndef DOC_SPACE              /* a test shrinks it to reach the passes of the design note */
#define DOC_SPACE 100000000ULL /* 8 distinct digits per customer */
#endif
#define ROW_BUF 1024
#define LUT_MAX 512

/* Weighted pick in O(1): x uniform in [0, sum) -> idx[x]. */
struct lut {
    unsigned sum;
    uint8_t idx[LUT_MAX];
};

struct fx_gen {
    struct fx_gen_opts o;
    uint64_t key; /* mixed seed */
    size_t ncols;

    /* plan */
    uint64_t n_bad, n_dup, n_good;
    uint64_t pool;       /* customers */
    uint64_t slots;      /* time slots good rows spread over */
    uint64_t step;       /* floor(slots / good rows), at least 1 */
    int rounds;          /* no data_hora and more good rows than DOC_SPACE */
    uint64_t warn_thr53; /* warn if 53 random bits < this */
    uint64_t doc_k1, doc_k2;

    /* progress */
    uint64_t i, bad_left, dup_left, good_left;
    uint64_t good_done;
    struct fx_gen_stats st;
    struct rng sched;
    enum fx_gen_defect last_defect;

    struct lut lut_email, lut_city, lut_street, lut_prod, lut_pay, lut_qty;
    uint8_t city_region[N_CITY];
    uint16_t prod_len[N_PROD], pay_len[sizeof(payments) / sizeof(payments[0])];

    /* e-mail parts: lowercase ASCII of each first name's first word and surname */
    char first_ascii[N_FIRST][24];
    char sur_ascii[N_SUR][24];

    const char *cells[FX_GEN_MAX_COLS];
    size_t lens[FX_GEN_MAX_COLS];
    char buf[ROW_BUF];
};

static inline struct rng stream(const struct fx_gen *g, uint64_t st, uint64_t idx)
{
    struct rng r = {mix64(g->key ^ mix64(idx ^ (st << 56)) ^ (st * 0xd1b54a32d192ed03ULL))};
    return r;
}

static void lut_build(struct lut *l, const unsigned *w, size_t n)
{
    l->sum = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < w[i]; k++) {
            if (l->sum >= LUT_MAX || i > UINT8_MAX)
                abort(); /* the tables above outgrew LUT_MAX */
            l->idx[l->sum++] = (uint8_t)i;
        }
}

static void lut_build_wstr(struct lut *l, const struct wstr *t, size_t n)
{
    unsigned w[UINT8_MAX + 1];
    for (size_t i = 0; i < n && i <= UINT8_MAX; i++)
        w[i] = t[i].w;
    lut_build(l, w, n);
}

static inline size_t lut_pick(struct rng *r, const struct lut *l)
{
    return l->idx[rbelow(r, l->sum)];
}

/* Latin-1 supplement (U+00C0..U+00FF) without accents, lowercase. */
static const char latin1_base[] =
    "aaaaaaaceeeeiiiidnooooo_ouuuuytsaaaaaaaceeeeiiiidnooooo_ouuuuyty";

static void ascii_lower(char *out, size_t cap, const char *s, int first_word)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && n + 1 < cap) {
        unsigned c = *p;
        if (c == ' ') {
            if (first_word)
                break;
            p++;
            continue;
        }
        if (c == 0xc3 && p[1] >= 0x80 && p[1] <= 0xbf) {
            out[n++] = latin1_base[p[1] - 0x80];
            p += 2;
            continue;
        }
        if (c >= 0x80) { /* other non-ASCII: skip */
            p++;
            continue;
        }
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        p++;
    }
    out[n] = 0;
}

/* ---------------------------------------------------------------- writing */

struct w {
    char *p;
    char *end;
};

static inline void put_mem(struct w *w, const char *s, size_t n)
{
    if (n > (size_t)(w->end - w->p))
        n = (size_t)(w->end - w->p); /* cannot happen with the tables above */
    memcpy(w->p, s, n);
    w->p += n;
}

static inline void put_s(struct w *w, const char *s)
{
    put_mem(w, s, strlen(s));
}

static inline void put_c(struct w *w, char c)
{
    if (w->p < w->end)
        *w->p++ = c;
}

static inline void put_u(struct w *w, uint64_t v)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put_c(w, t[--n]);
}

/* v zero-padded to width digits */
static inline void put_uz(struct w *w, uint64_t v, int width)
{
    char t[24];
    for (int i = width - 1; i >= 0; i--) {
        t[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put_mem(w, t, (size_t)width);
}

static inline void put_digits(struct w *w, const uint8_t *d, int n)
{
    for (int i = 0; i < n; i++)
        put_c(w, (char)('0' + d[i]));
}

/* Cell c is w's output since start: terminate it and record it. */
static inline void end_cell(struct fx_gen *g, int c, struct w *w, char *start)
{
    if (w->p >= w->end)
        w->p = w->end - 1;
    *w->p = 0;
    g->cells[c] = start;
    g->lens[c] = (size_t)(w->p - start);
    w->p++;
}

static inline void set_cell(struct fx_gen *g, int c, const char *s, size_t len)
{
    g->cells[c] = s;
    g->lens[c] = len;
}

#define SET_LIT(g, c, lit) set_cell(g, c, lit, sizeof(lit) - 1)

static void put_money(struct w *w, uint32_t cents, int brazilian)
{
    uint32_t reais = cents / 100;
    if (!brazilian) {
        put_u(w, reais);
        put_c(w, '.');
        put_uz(w, cents % 100, 2);
        return;
    }
    if (reais >= 1000000) {
        put_u(w, reais / 1000000);
        put_c(w, '.');
        put_uz(w, reais / 1000 % 1000, 3);
        put_c(w, '.');
        put_uz(w, reais % 1000, 3);
    } else if (reais >= 1000) {
        put_u(w, reais / 1000);
        put_c(w, '.');
        put_uz(w, reais % 1000, 3);
    } else {
        put_u(w, reais);
    }
    put_c(w, ',');
    put_uz(w, cents % 100, 2);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_datetime(struct w *w, uint64_t slot, int iso)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(EPOCH_DAYS_2024 + (int64_t)(slot / SLOTS_PER_DAY), &y, &m, &d);
    unsigned s = 8 * 3600 + (unsigned)(slot % SLOTS_PER_DAY);
    if (iso) {
        put_uz(w, (uint64_t)y, 4);
        put_c(w, '-');
        put_uz(w, m, 2);
        put_c(w, '-');
        put_uz(w, d, 2);
        put_c(w, 'T');
    } else {
        put_uz(w, d, 2);
        put_c(w, '/');
        put_uz(w, m, 2);
        put_c(w, '/');
        put_uz(w, (uint64_t)y, 4);
        put_c(w, ' ');
    }
    put_uz(w, s / 3600, 2);
    put_c(w, ':');
    put_uz(w, s / 60 % 60, 2);
    put_c(w, ':');
    put_uz(w, s % 60, 2);
}

/* --------------------------------------------------------------- documents */

/* Fiscal region of a CPF (its 9th digit) by state. */
static unsigned cpf_region(const char *uf)
{
    static const char *const regions[10] = {
        "RS",       "DF GO MS MT TO", "AC AM AP PA RO RR",
        "CE MA PI", "AL PB PE RN",    "BA SE",
        "MG",       "ES RJ",          "SP",
        "PR SC",
    };
    for (unsigned i = 0; i < 10; i++)
        if (strstr(regions[i], uf))
            return i;
    return 8;
}

/* Mod-11 check digit over d[0..n) with weights from w. */
static uint8_t mod11(const uint8_t *d, int n, const uint8_t *w)
{
    unsigned s = 0;
    for (int i = 0; i < n; i++)
        s += d[i] * w[i];
    unsigned r = s % 11;
    return (uint8_t)(r < 2 ? 0 : 11 - r);
}

static void cpf_check(uint8_t d[11])
{
    static const uint8_t w1[9] = {10, 9, 8, 7, 6, 5, 4, 3, 2};
    static const uint8_t w2[10] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2};
    d[9] = mod11(d, 9, w1);
    d[10] = mod11(d, 10, w2);
}

static void cnpj_check(uint8_t d[14])
{
    static const uint8_t w1[12] = {5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
    static const uint8_t w2[13] = {6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
    d[12] = mod11(d, 12, w1);
    d[13] = mod11(d, 13, w2);
}

static void split_digits(uint64_t v, uint8_t *d, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        d[i] = (uint8_t)(v % 10);
        v /= 10;
    }
}

/* ------------------------------------------------------------------- rows */

enum { DOC_CPF, DOC_CNPJ, DOC_NONE };

struct customer {
    int doctype;
    int warn;
    uint8_t doc[14];
    const struct city *city;
    uint32_t phone; /* 8 or 9 digits */
    int mobile;
};

/* First draws of a customer stream: document type, and whether it is a warn document. */
static int customer_kind(const struct fx_gen *g, struct rng *cr, int *doctype)
{
    unsigned t = rbelow(cr, 100);
    *doctype = t < 10 ? DOC_CNPJ : t < 13 ? DOC_NONE : DOC_CPF;
    /* drawn whatever the type: a customer must be the same person in every row */
    int warn = (rnext(cr) >> 11) < g->warn_thr53;
    return warn && *doctype != DOC_NONE;
}

static int customer_warns(const struct fx_gen *g, uint64_t cust)
{
    struct rng cr = stream(g, ST_CUST, cust);
    int doctype;
    return customer_kind(g, &cr, &doctype);
}

/*
 * Write the customer's identity cells (nome, email, telefone, endereco) and
 * fill c. Identity comes from the customer stream; r (the row stream) only
 * picks how the phone is written.
 */
static void customer_cells(struct fx_gen *g, uint64_t cust, int allow_warn, struct rng *r,
                           struct w *w, struct customer *c)
{
    struct rng cr = stream(g, ST_CUST, cust);
    c->warn = customer_kind(g, &cr, &c->doctype) && allow_warn;
    c->city = &cities[lut_pick(&cr, &g->lut_city)];

    /* nome */
    char *start = w->p;
    size_t fi = rbelow(&cr, N_FIRST), li = rbelow(&cr, N_SUR), mi = rbelow(&cr, N_SUR);
    int middle = rpct(&cr, 55) && mi != li;
    int conn = rpct(&cr, 30);
    size_t ci = rbelow(&cr, N_COMPANY);
    if (c->doctype == DOC_CNPJ) {
        put_s(w, company_fmt[ci][0]);
        put_s(w, surnames[li].s);
        put_s(w, company_fmt[ci][1]);
    } else {
        put_s(w, first_names[fi]);
        put_c(w, ' ');
        if (middle) {
            put_s(w, surnames[mi].s);
            put_c(w, ' ');
        }
        if (conn && surnames[li].conn) {
            put_s(w, surnames[li].conn);
            put_c(w, ' ');
        }
        put_s(w, surnames[li].s);
    }
    end_cell(g, C_NOME, w, start);

    /* email: a number always; customers without a document get their index,
     * which keeps their e-mail (their dedupe key) unique. */
    start = w->p;
    unsigned sep = rbelow(&cr, 3);
    unsigned numkind = rbelow(&cr, 10);
    uint32_t num = rbelow(&cr, 9999) + 1;
    uint32_t year = 1955 + rbelow(&cr, 52);
    size_t dom = lut_pick(&cr, &g->lut_email);
    if (c->doctype == DOC_CNPJ) {
        put_s(w, company_dept[num % 5]);
        put_c(w, '.');
        put_s(w, g->sur_ascii[li]);
        put_u(w, num % 100);
        put_s(w, numkind < 8 ? "@empresa.com.br" : "@gmail.com");
    } else {
        put_s(w, g->first_ascii[fi]);
        if (sep == 0)
            put_c(w, '.');
        else if (sep == 1)
            put_c(w, '_');
        put_s(w, g->sur_ascii[li]);
        if (c->doctype == DOC_NONE)
            put_u(w, cust);
        else if (numkind < 5)
            put_u(w, num);
        else if (numkind < 8)
            put_u(w, year);
        else
            put_u(w, num % 100);
        put_c(w, '@');
        put_s(w, email_domains[dom].s);
    }
    end_cell(g, C_EMAIL, w, start);

    /* telefone: mobile 9xxxx-xxxx or landline 2xxx-xxxx..5xxx-xxxx, with the city's DDD */
    c->mobile = rpct(&cr, 75);
    if (c->mobile)
        c->phone = 900000000u + (6 + rbelow(&cr, 4)) * 10000000u + rbelow(&cr, 10000000);
    else
        c->phone = (2 + rbelow(&cr, 4)) * 10000000u + rbelow(&cr, 10000000);
    start = w->p;
    unsigned pf = rbelow(r, 10);
    const unsigned split = 10000; /* last four digits after the dash */
    if (pf < 8) {
        put_c(w, '(');
        put_u(w, c->city->ddd);
        put_s(w, ") ");
        put_u(w, c->phone / split);
        put_c(w, '-');
        put_uz(w, c->phone % split, 4);
    } else if (pf < 9) {
        put_u(w, c->city->ddd);
        put_u(w, c->phone);
    } else {
        put_s(w, "+55 ");
        put_u(w, c->city->ddd);
        put_c(w, ' ');
        put_u(w, c->phone / split);
        put_c(w, '-');
        put_uz(w, c->phone % split, 4);
    }
    end_cell(g, C_TEL, w, start);

    /* endereco_completo: "Rua das Flores, 123 - Centro, São Paulo - SP" */
    start = w->p;
    put_s(w, street_types[lut_pick(&cr, &g->lut_street)].s);
    put_c(w, ' ');
    put_s(w, street_names[rbelow(&cr, N_STREET)]);
    put_s(w, ", ");
    put_u(w, rpct(&cr, 85) ? 1 + rbelow(&cr, 1999) : 2000 + rbelow(&cr, 8000));
    unsigned comp = rbelow(&cr, 100);
    unsigned cn = 1 + rbelow(&cr, 30), floor_ = 1 + rbelow(&cr, 20);
    if (comp < 22) {
        put_s(w, ", Apto ");
        put_u(w, floor_ * 10 + cn % 4 + 1);
    } else if (comp < 28) {
        put_s(w, ", Casa ");
        put_u(w, cn % 5 + 1);
    } else if (comp < 32) {
        put_s(w, ", Bloco ");
        put_c(w, (char)('A' + cn % 6));
        put_s(w, ", Apto ");
        put_u(w, floor_ * 100 + cn % 8 + 1);
    } else if (comp < 34) {
        put_s(w, ", Sala ");
        put_u(w, floor_ * 100 + cn);
    }
    put_s(w, " - ");
    put_s(w, neighborhoods[rbelow(&cr, N_HOOD)]);
    put_s(w, ", ");
    put_s(w, c->city->name);
    put_s(w, " - ");
    put_s(w, c->city->uf);
    end_cell(g, C_END, w, start);

    /* document: 8 digits that are a bijection of the customer index */
    if (c->doctype == DOC_CPF) {
        uint64_t u = (cust % DOC_SPACE * 73939133ULL + g->doc_k1) % DOC_SPACE;
        split_digits(u, c->doc, 8);
        unsigned reg = g->city_region[c->city - cities];
        int rep = 1;
        for (int i = 1; i < 8; i++)
            rep &= c->doc[i] == c->doc[0];
        if (rep && c->doc[0] == reg) /* 111.111.111-11 & co. are test numbers */
            reg = (reg + 1) % 10;
        c->doc[8] = (uint8_t)reg;
        cpf_check(c->doc);
    } else if (c->doctype == DOC_CNPJ) {
        uint64_t u = (cust % DOC_SPACE * 5882353ULL + g->doc_k2) % DOC_SPACE;
        split_digits(u, c->doc, 8);
        unsigned branch = rpct(&cr, 85) ? 1 : 2 + rbelow(&cr, 18);
        split_digits(branch, c->doc + 8, 4);
        cnpj_check(c->doc);
    }
    if (c->warn) {
        int last = c->doctype == DOC_CPF ? 10 : 13;
        c->doc[last] = (uint8_t)((c->doc[last] + 1 + rbelow(&cr, 9)) % 10);
    }
}

static void doc_cell(struct fx_gen *g, struct rng *r, struct w *w, const struct customer *c)
{
    char *start = w->p;
    int formatted = rpct(r, 65);
    const uint8_t *d = c->doc;
    if (c->doctype == DOC_CPF) {
        if (formatted) {
            put_digits(w, d, 3);
            put_c(w, '.');
            put_digits(w, d + 3, 3);
            put_c(w, '.');
            put_digits(w, d + 6, 3);
            put_c(w, '-');
            put_digits(w, d + 9, 2);
        } else {
            put_digits(w, d, 11);
        }
    } else if (c->doctype == DOC_CNPJ) {
        if (formatted) {
            put_digits(w, d, 2);
            put_c(w, '.');
            put_digits(w, d + 2, 3);
            put_c(w, '.');
            put_digits(w, d + 5, 3);
            put_c(w, '/');
            put_digits(w, d + 8, 4);
            put_c(w, '-');
            put_digits(w, d + 12, 2);
        } else {
            put_digits(w, d, 14);
        }
    }
    end_cell(g, C_DOC, w, start);
}

/*
 * Build one row in g->buf / g->cells. r is the row's stream; cust the
 * customer; slot the time slot; pass the no-data_hora uniqueness pass (0 when
 * unused). Returns 1 if the customer's document is a warn document.
 */
static int build_row(struct fx_gen *g, struct rng *r, uint64_t cust, uint64_t slot, uint64_t pass,
                     int allow_warn)
{
    struct w w = {g->buf, g->buf + sizeof(g->buf)};
    struct customer c;
    customer_cells(g, cust, allow_warn, r, &w, &c);
    doc_cell(g, r, &w, &c);

    size_t p;
    unsigned q;
    if (g->rounds) {
        /* a fixed (product, quantity) per customer, shifted by the pass */
        struct rng cr = stream(g, ST_CUST, cust ^ 0x8000000000000000ULL);
        uint64_t combo = (rbelow(&cr, (uint32_t)(N_PROD * 10)) + pass) % (N_PROD * 10);
        p = combo / 10;
        q = (unsigned)(combo % 10) + 1;
    } else {
        p = lut_pick(r, &g->lut_prod);
        q = (unsigned)lut_pick(r, &g->lut_qty) + 1;
    }
    set_cell(g, C_PROD, products[p].name, g->prod_len[p]);

    char *start = w.p;
    put_u(&w, q);
    end_cell(g, C_QTD, &w, start);

    start = w.p;
    put_money(&w, products[p].cents, rpct(r, 35));
    end_cell(g, C_VALOR, &w, start);

    size_t pay = lut_pick(r, &g->lut_pay);
    set_cell(g, C_PAG, payments[pay].s, g->pay_len[pay]);

    if (g->o.with_data_hora) {
        start = w.p;
        put_datetime(&w, slot, rpct(r, 30));
        end_cell(g, C_DATA, &w, start);
    }
    return c.warn;
}

/* First time slot of good row j (see the design note). */
static inline uint64_t slot_base(const struct fx_gen *g, uint64_t j)
{
    uint64_t good = g->n_good ? g->n_good : 1;
    return (uint64_t)((unsigned __int128)j * g->slots / good);
}

static void build_good(struct fx_gen *g, uint64_t j, int *warn)
{
    struct rng r = stream(g, ST_GOOD, j);
    uint64_t cust, slot = 0, pass = 0;
    if (g->o.with_data_hora) {
        cust = rbelow64(&r, g->pool);
        slot = slot_base(g, j) + rbelow64(&r, g->step);
    } else {
        cust = j % g->pool;
        pass = j / g->pool;
    }
    *warn = build_row(g, &r, cust, slot, pass, 1);
}

static enum fx_gen_defect build_bad(struct fx_gen *g, uint64_t b)
{
    struct rng r = stream(g, ST_BAD, b);
    /* a customer with a valid document, so that the defect is the row's only
     * problem and the customer keeps one document in all rows (after 16 warn
     * customers in a row, the document is written valid anyway) */
    uint64_t cust = rbelow64(&r, g->pool);
    for (int t = 0; t < 16 && customer_warns(g, cust); t++)
        cust = rbelow64(&r, g->pool);
    /* near the good rows around it, and never past the last good row's slot */
    uint64_t near = g->good_done < g->n_good ? g->good_done : g->n_good ? g->n_good - 1 : 0;
    uint64_t slot = slot_base(g, near) + rbelow64(&r, g->step);
    build_row(g, &r, cust, slot, 0, 0);

    unsigned nd = FX_GEN_DEFECT_COUNT - 1 - (g->o.with_data_hora ? 0 : 1);
    unsigned d = 1 + rbelow(&r, nd);
    if (!g->o.with_data_hora && d >= FX_GEN_DEFECT_DATA_HORA)
        d++;
    switch ((enum fx_gen_defect)d) {
    case FX_GEN_DEFECT_EMPTY_NOME:
        SET_LIT(g, C_NOME, "");
        break;
    case FX_GEN_DEFECT_NO_IDENTITY:
        SET_LIT(g, C_DOC, "");
        SET_LIT(g, C_EMAIL, "");
        break;
    case FX_GEN_DEFECT_DOC_LENGTH: {
        /* written after the row's cells, in the room left in buf */
        char *s = g->buf + sizeof(g->buf) - 16;
        uint64_t v = 1000000000ULL + rbelow64(&r, 9000000000ULL);
        for (int i = 9; i >= 0; i--) {
            s[i] = (char)('0' + v % 10);
            v /= 10;
        }
        s[10] = 0;
        set_cell(g, C_DOC, s, 10);
        break;
    }
    case FX_GEN_DEFECT_QUANTIDADE: {
        static const char *const v[] = {"0", "-2", "abc"};
        const char *q = v[rbelow(&r, 3)];
        set_cell(g, C_QTD, q, strlen(q));
        break;
    }
    case FX_GEN_DEFECT_VALOR:
        if (rpct(&r, 50))
            SET_LIT(g, C_VALOR, "12,34,56");
        else
            SET_LIT(g, C_VALOR, "abc");
        break;
    case FX_GEN_DEFECT_DATA_HORA:
        if (rpct(&r, 50))
            SET_LIT(g, C_DATA, "31/02/2024 10:00");
        else
            SET_LIT(g, C_DATA, "ontem");
        break;
    case FX_GEN_DEFECT_EMAIL:
        SET_LIT(g, C_EMAIL, "fulano@");
        SET_LIT(g, C_DOC, "");
        break;
    default:
        break;
    }
    return (enum fx_gen_defect)d;
}

/* ------------------------------------------------------------- public API */

void fx_gen_opts_init(struct fx_gen_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rows = 1000;
    o->seed = 1;
    o->with_data_hora = 1;
    o->delimiter = ',';
}

static int ratio_ok(double r)
{
    return isfinite(r) && r >= 0.0 && r <= 1.0;
}

int fx_gen_opts_check(const struct fx_gen_opts *o, struct fx_err *err)
{
    if (!o)
        return fx_err_set(err, FX_EINVAL, "no options");
    if (!ratio_ok(o->bad_ratio))
        return fx_err_set(err, FX_EINVAL, "bad ratio must be a number from 0 to 1");
    if (!ratio_ok(o->dup_ratio))
        return fx_err_set(err, FX_EINVAL, "duplicate ratio must be a number from 0 to 1");
    if (!ratio_ok(o->warn_ratio))
        return fx_err_set(err, FX_EINVAL, "warning ratio must be a number from 0 to 1");
    if (o->delimiter != ',' && o->delimiter != ';')
        return fx_err_set(err, FX_EINVAL, "delimiter must be ',' or ';'");
    return 0;
}

const char *const *fx_gen_header(const struct fx_gen_opts *o, size_t *n)
{
    if (n)
        *n = (o && !o->with_data_hora) ? FX_GEN_MAX_COLS - 1 : FX_GEN_MAX_COLS;
    return header;
}

static uint64_t count_of(uint64_t rows, double ratio)
{
    double v = floor((double)rows * ratio + 0.5);
    if (v <= 0)
        return 0;
    if (v >= (double)rows)
        return rows;
    return (uint64_t)v;
}

struct fx_gen *fx_gen_new(const struct fx_gen_opts *o)
{
    if (fx_gen_opts_check(o, NULL) != 0)
        return NULL;
    struct fx_gen *g = fx_calloc(1, sizeof(*g));
    g->o = *o;
    g->o.with_data_hora = o->with_data_hora != 0;
    g->ncols = g->o.with_data_hora ? FX_GEN_MAX_COLS : FX_GEN_MAX_COLS - 1;
    g->key = mix64(o->seed ^ 0x666c75786f67656eULL); /* "fluxogen" */

    uint64_t rows = o->rows;
    g->n_bad = count_of(rows, o->bad_ratio);
    g->n_dup = count_of(rows, o->dup_ratio);
    uint64_t avail = rows - g->n_bad;
    if (g->n_dup > 0 && g->n_dup >= avail)
        g->n_dup = avail > 0 ? avail - 1 : 0;
    g->n_good = rows - g->n_bad - g->n_dup;

    uint64_t good = g->n_good ? g->n_good : 1;
    if (g->o.with_data_hora) {
        uint64_t slots = SLOTS_PER_DAY * DAYS_2024_2025;
        g->slots = good < slots ? slots : good;
        g->step = g->slots / good;
        g->pool = good * 7 / 10;
    } else {
        g->slots = good;
        g->step = 1;
        g->pool = good;
    }
    if (g->pool < 1)
        g->pool = 1;
    if (g->pool > DOC_SPACE)
        g->pool = DOC_SPACE;
    g->rounds = !g->o.with_data_hora && good > DOC_SPACE;
    if (o->warn_ratio >= 1.0)
        g->warn_thr53 = 1ULL << 53;
    else
        g->warn_thr53 = (uint64_t)(o->warn_ratio * 9007199254740992.0);

    struct rng kr = stream(g, ST_CUST, UINT64_MAX);
    g->doc_k1 = rnext(&kr) % DOC_SPACE;
    g->doc_k2 = rnext(&kr) % DOC_SPACE;

    g->bad_left = g->n_bad;
    g->dup_left = g->n_dup;
    g->good_left = g->n_good;
    g->sched = stream(g, ST_SCHED, 0);

    unsigned w[UINT8_MAX + 1];
    lut_build_wstr(&g->lut_email, email_domains, sizeof(email_domains) / sizeof(email_domains[0]));
    lut_build_wstr(&g->lut_street, street_types, sizeof(street_types) / sizeof(street_types[0]));
    lut_build_wstr(&g->lut_pay, payments, sizeof(payments) / sizeof(payments[0]));
    lut_build(&g->lut_qty, qty_w, 10);
    for (size_t i = 0; i < N_CITY; i++) {
        w[i] = cities[i].w;
        g->city_region[i] = (uint8_t)cpf_region(cities[i].uf);
    }
    lut_build(&g->lut_city, w, N_CITY);
    for (size_t i = 0; i < N_PROD; i++) {
        w[i] = products[i].w;
        g->prod_len[i] = (uint16_t)strlen(products[i].name);
    }
    lut_build(&g->lut_prod, w, N_PROD);
    for (size_t i = 0; i < sizeof(payments) / sizeof(payments[0]); i++)
        g->pay_len[i] = (uint16_t)strlen(payments[i].s);
    for (size_t i = 0; i < N_FIRST; i++)
        ascii_lower(g->first_ascii[i], sizeof(g->first_ascii[i]), first_names[i], 1);
    for (size_t i = 0; i < N_SUR; i++)
        ascii_lower(g->sur_ascii[i], sizeof(g->sur_ascii[i]), surnames[i].s, 0);
    return g;
}

void fx_gen_free(struct fx_gen *g)
{
    free(g);
}

/* Build the next row in g->cells / g->lens; returns its kind, or -1 at the end. */
static int next_row(struct fx_gen *g)
{
    if (g->i >= g->o.rows)
        return -1;
    uint64_t left = g->o.rows - g->i;
    int k;
    if (g->i == 0 && g->n_dup > 0) {
        k = FX_GEN_GOOD; /* a repeat needs an earlier good row */
    } else {
        uint64_t x = rbelow64(&g->sched, left);
        k = x < g->bad_left ? FX_GEN_BAD : x < g->bad_left + g->dup_left ? FX_GEN_DUP : FX_GEN_GOOD;
    }

    g->last_defect = FX_GEN_DEFECT_NONE;
    int warn = 0;
    switch (k) {
    case FX_GEN_BAD:
        g->last_defect = build_bad(g, g->st.bad);
        g->st.defects[g->last_defect]++;
        g->st.bad++;
        g->bad_left--;
        break;
    case FX_GEN_DUP:
        build_good(g, rbelow64(&g->sched, g->good_done), &warn);
        g->st.dup++;
        g->dup_left--;
        break;
    default:
        build_good(g, g->good_done, &warn);
        if (warn) {
            k = FX_GEN_WARN;
            g->st.warn++;
        }
        g->good_done++;
        g->st.good_unique++;
        g->good_left--;
        break;
    }
    g->i++;
    g->st.rows++;
    return k;
}

int fx_gen_next(struct fx_gen *g, const char *cells[], size_t *n, int *kind)
{
    int k = next_row(g);
    if (k < 0)
        return 0;
    memcpy(cells, g->cells, g->ncols * sizeof(cells[0]));
    *n = g->ncols;
    if (kind)
        *kind = k;
    return 1;
}

enum fx_gen_defect fx_gen_last_defect(const struct fx_gen *g)
{
    return g->last_defect;
}

const char *fx_gen_defect_name(enum fx_gen_defect d)
{
    switch (d) {
    case FX_GEN_DEFECT_NONE:
        return "none";
    case FX_GEN_DEFECT_EMPTY_NOME:
        return "empty_nome";
    case FX_GEN_DEFECT_NO_IDENTITY:
        return "no_identity";
    case FX_GEN_DEFECT_DOC_LENGTH:
        return "doc_length";
    case FX_GEN_DEFECT_QUANTIDADE:
        return "bad_quantidade";
    case FX_GEN_DEFECT_VALOR:
        return "bad_valor_unitario";
    case FX_GEN_DEFECT_DATA_HORA:
        return "bad_data_hora";
    case FX_GEN_DEFECT_EMAIL:
        return "bad_email_no_doc";
    default:
        return "unknown";
    }
}

void fx_gen_counts(const struct fx_gen *g, struct fx_gen_stats *st)
{
    *st = g->st;
}

/* -------------------------------------------------------------------- CSV */

#define OUT_CAP (256 * 1024)
#define OUT_ROOM (4 * ROW_BUF + 64) /* worst row: every byte a doubled quote */

struct csv_out {
    FILE *f;
    char *buf;
    size_t len;
    iconv_t cd; /* (iconv_t)-1 for UTF-8 */
    char *conv;
};

static int out_flush(struct csv_out *o)
{
    if (o->len == 0)
        return 0;
    const char *data = o->buf;
    size_t n = o->len;
    if (o->cd != (iconv_t)-1) {
        char *in = o->buf, *outp = o->conv;
        size_t inleft = o->len, outleft = OUT_CAP;
        if (iconv(o->cd, &in, &inleft, &outp, &outleft) == (size_t)-1)
            return FX_EENCODING;
        data = o->conv;
        n = OUT_CAP - outleft;
    }
    o->len = 0;
    if (fwrite(data, 1, n, o->f) != n)
        return FX_EIO;
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_BYTE(v, m) ((((v) ^ (m)) - ONES) & ~((v) ^ (m)) & HIGHS)

/* Does s[0..n) hold the delimiter, '"', CR or LF? Eight bytes at a time. */
static inline int needs_quotes(const char *s, size_t n, char delim)
{
    const uint64_t d = ONES * (uint8_t)delim, q = ONES * '"', lf = ONES * '\n', cr = ONES * '\r';
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        if (HAS_BYTE(v, d) | HAS_BYTE(v, q) | HAS_BYTE(v, lf) | HAS_BYTE(v, cr))
            return 1;
    }
    for (; i < n; i++)
        if (s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

static inline void out_field(struct csv_out *o, const char *s, size_t n, char delim)
{
    char *p = o->buf + o->len;
    if (!needs_quotes(s, n, delim)) {
        memcpy(p, s, n);
        o->len += n;
        return;
    }
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    o->len = (size_t)(p - o->buf);
}

static inline void out_row(struct csv_out *o, const char *const *cells, const size_t *lens,
                           size_t n, char delim)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            o->buf[o->len++] = delim;
        out_field(o, cells[i], lens[i], delim);
    }
    o->buf[o->len++] = '\n';
}

int fx_generate_csv(const struct fx_gen_opts *opts, FILE *f, struct fx_gen_stats *stats)
{
    struct fx_gen *g = fx_gen_new(opts);
    if (!g)
        return FX_EINVAL;
    int rc = 0;
    struct csv_out o = {.f = f, .cd = (iconv_t)-1};
    o.buf = fx_malloc(OUT_CAP);
    if (opts->windows1252) {
        o.cd = iconv_open("WINDOWS-1252", "UTF-8");
        if (o.cd == (iconv_t)-1) {
            rc = FX_EENCODING;
            goto out;
        }
        o.conv = fx_malloc(OUT_CAP);
    }
    size_t n, hlens[FX_GEN_MAX_COLS];
    const char *const *h = fx_gen_header(opts, &n);
    for (size_t i = 0; i < n; i++)
        hlens[i] = strlen(h[i]);
    out_row(&o, h, hlens, n, opts->delimiter);

    while (next_row(g) >= 0) {
        out_row(&o, g->cells, g->lens, g->ncols, opts->delimiter);
        if (o.len > OUT_CAP - OUT_ROOM && (rc = out_flush(&o)) != 0)
            goto out;
    }
    if ((rc = out_flush(&o)) != 0)
        goto out;
    if (fflush(f) != 0 || ferror(f))
        rc = FX_EIO;
out:
    if (stats)
        fx_gen_counts(g, stats);
    if (o.cd != (iconv_t)-1)
        iconv_close(o.cd);
    free(o.conv);
    free(o.buf);
    fx_gen_free(g);
    return rc;
}
