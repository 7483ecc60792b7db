/* SPDX-License-Identifier: MIT */
/*
 * Build-time tool: turns the front-end files the HTTP server serves (Swagger UI
 * from npm, our /docs page) into a C source holding their bytes, a content type
 * and a strong ETag each, so the running server needs no network and no files.
 *
 * Usage: fx_embed OUT.c SERVED_NAME=SOURCE_FILE...
 * Writes OUT.c (through OUT.c.tmp and a rename, so an interrupted build never
 * leaves half a file) defining fx__assets[] and fx__assets_count, read by
 * src/assets/assets.c.
 *
 * Why hand-rolled: C23 #embed is not in gcc 12 (Debian 12's compiler), xxd -i
 * comes with the vim package and is slow, and CMake's file(READ ... HEX) plus a
 * regex takes many seconds on the 1.7 MB bundle. The bytes are written as string
 * literals rather than `0x12,` lists because compilers parse a long literal an
 * order of magnitude faster than an initializer of a million integers; every
 * literal keeps its terminating NUL (len excludes it), so text assets can also
 * be searched as C strings.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    const char *name; /* served name, relative to the docs root */
    const char *src;  /* file to read */
    unsigned char *data;
    size_t len;
    const char *type;
    uint64_t hash;
};

/* FNV-1a 64: tiny, no dependency, and good enough to tell two versions of a file
 * apart; the ETag only has to change when the content does. */
static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Content type from the served name. An unknown extension is an error rather than
 * application/octet-stream, so whoever adds an asset decides its type here. */
static const char *content_type(const char *name)
{
    if (ends_with(name, ".html"))
        return "text/html; charset=utf-8";
    if (ends_with(name, ".css"))
        return "text/css";
    if (ends_with(name, ".js"))
        return "application/javascript";
    if (ends_with(name, ".png"))
        return "image/png";
    if (ends_with(name, ".txt") || strncmp(name, "LICENSE", 7) == 0 ||
        strncmp(name, "NOTICE", 6) == 0)
        return "text/plain; charset=utf-8";
    return NULL;
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fx_embed: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    int rc = -1;
    if (!buf)
        goto oom;
    for (;;) {
        if (n == cap) {
            unsigned char *p = realloc(buf, cap * 2);
            if (!p)
                goto oom;
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "fx_embed: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "fx_embed: out of memory reading %s\n", path);
out:
    free(buf);
    fclose(f);
    return rc;
}

/* One string literal per 76 input bytes (or per source line). Printable ASCII
 * stays readable; everything else, and '?' (trigraphs under -std=c11), is a
 * three-digit octal escape, which cannot swallow a following digit. */
static void write_literal(FILE *out, const unsigned char *p, size_t n)
{
    size_t col = 0;
    fputs("    \"", out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\' || c == '"')
            fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f && c != '?')
            fputc(c, out);
        else
            fprintf(out, "\\%03o", c);
        col++;
        if ((c == '\n' || col >= 76) && i + 1 < n) {
            fputs("\"\n    \"", out);
            col = 0;
        }
    }
    fputs("\"", out);
}

static void write_c_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fx_embed OUT.c SERVED_NAME=SOURCE_FILE...\n");
        return 2;
    }
    const char *out_path = argv[1];
    size_t n = (size_t)argc - 2;
    struct entry *e = calloc(n, sizeof(*e));
    char *tmp = malloc(strlen(out_path) + 5);
    FILE *out = NULL;
    int rc = 1;
    if (!e || !tmp) {
        fprintf(stderr, "fx_embed: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *arg = argv[i + 2];
        char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1]) {
            fprintf(stderr, "fx_embed: argument '%s' is not SERVED_NAME=SOURCE_FILE\n", arg);
            goto out;
        }
        *eq = '\0';
        e[i].name = arg;
        e[i].src = eq + 1;
        e[i].type = content_type(e[i].name);
        if (!e[i].type) {
            fprintf(stderr,
                    "fx_embed: no content type for '%s': add its extension to content_type() "
                    "in tools/embed.c\n",
                    e[i].name);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(e[j].name, e[i].name) == 0) {
                fprintf(stderr, "fx_embed: '%s' is listed twice\n", e[i].name);
                goto out;
            }
        }
        if (read_file(e[i].src, &e[i].data, &e[i].len))
            goto out;
        if (e[i].len == 0) {
            fprintf(stderr, "fx_embed: %s is empty: refusing to embed an empty '%s'\n", e[i].src,
                    e[i].name);
            goto out;
        }
        e[i].hash = fnv1a64(e[i].data, e[i].len);
    }

    sprintf(tmp, "%s.tmp", out_path);
    out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "fx_embed: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    fputs("/* Generated by tools/embed.c at build time: do not edit. */\n"
          "#include \"fluxo/assets.h\"\n\n"
          "extern const struct fx_asset fx__assets[];\n"
          "extern const size_t fx__assets_count;\n\n",
          out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "/* %s (%zu bytes) from %s */\n", e[i].name, e[i].len, e[i].src);
        fprintf(out, "static const unsigned char asset%zu[%zu] =\n", i, e[i].len + 1);
        write_literal(out, e[i].data, e[i].len);
        fputs(";\n\n", out);
    }
    fputs("const struct fx_asset fx__assets[] = {\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("    {", out);
        write_c_string(out, e[i].name);
        fprintf(out, ", asset%zu, %zu, ", i, e[i].len);
        write_c_string(out, e[i].type);
        fprintf(out, ", \"\\\"%016" PRIx64 "\\\"\"},\n", e[i].hash);
    }
    fprintf(out, "};\n\nconst size_t fx__assets_count = %zu;\n", n);
    if (fclose(out) != 0) {
        out = NULL;
        fprintf(stderr, "fx_embed: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    out = NULL;
    if (rename(tmp, out_path) != 0) {
        fprintf(stderr, "fx_embed: cannot rename %s to %s: %s\n", tmp, out_path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (out)
        fclose(out);
    if (rc && tmp)
        remove(tmp);
    if (e) {
        for (size_t i = 0; i < n; i++)
            free(e[i].data);
    }
    free(e);
    free(tmp);
    return rc;
}
