/* SPDX-License-Identifier: MIT */
/*
 * Tests for the embedded /docs assets: every file the page needs is in the
 * binary, non-empty, with its content type and an ETag that matches its bytes,
 * and the page only references files that are embedded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/assets.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *path;
    const char *type;
} expected[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"init.js", "application/javascript"},
    {"swagger-ui.css", "text/css"},
    {"swagger-ui-bundle.js", "application/javascript"},
    {"favicon-32x32.png", "image/png"},
    {"LICENSE.swagger-ui", "text/plain; charset=utf-8"},
    {"NOTICE.swagger-ui", "text/plain; charset=utf-8"},
    {"swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8"},
};

/* The ETag is FNV-1a 64 of the bytes, computed by tools/embed.c; recomputing it
 * here proves the table and the data it describes came from the same build. */
static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static const char *text(const struct fx_asset *a)
{
    /* every asset is followed by a NUL, so text assets are C strings */
    return (const char *)a->data;
}

static void test_expected_assets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct fx_asset *a = fx_asset_find(expected[i].path);
        if (!a)
            fail_msg("asset %s is not embedded", expected[i].path);
        assert_string_equal(a->path, expected[i].path);
        assert_non_null(a->data);
        assert_true(a->len > 0);
        assert_int_equal(a->data[a->len], 0);
        assert_string_equal(a->content_type, expected[i].type);

        char etag[32];
        snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", fnv1a64(a->data, a->len));
        assert_string_equal(a->etag, etag);
    }
    assert_int_equal(fx_asset_count(), sizeof(expected) / sizeof(expected[0]));
}

static void test_iteration_and_misses(void **state)
{
    (void)state;
    size_t n = fx_asset_count();
    for (size_t i = 0; i < n; i++) {
        const struct fx_asset *a = fx_asset_at(i);
        assert_non_null(a);
        assert_ptr_equal(fx_asset_find(a->path), a);
        /* ETags are distinct: a browser must never reuse one file's cache for another */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(fx_asset_at(j)->etag, a->etag);
    }
    assert_null(fx_asset_at(n));
    assert_null(fx_asset_at((size_t)-1));

    assert_ptr_equal(fx_asset_find(""), fx_asset_find("index.html"));
    assert_null(fx_asset_find(NULL));
    assert_null(fx_asset_find("missing.js"));
    assert_null(fx_asset_find("/index.html"));
    assert_null(fx_asset_find("../index.html"));
    assert_null(fx_asset_find("swagger-ui.css.map"));
    assert_null(fx_asset_find("INDEX.HTML"));
}

static void test_bundle_and_css(void **state)
{
    (void)state;
    const struct fx_asset *js = fx_asset_find("swagger-ui-bundle.js");
    assert_non_null(js);
    assert_true(js->len > 100000);
    assert_non_null(strstr(text(js), "SwaggerUIBundle"));

    const struct fx_asset *css = fx_asset_find("swagger-ui.css");
    assert_non_null(css);
    assert_non_null(strstr(text(css), ".swagger-ui"));

    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const struct fx_asset *png = fx_asset_find("favicon-32x32.png");
    assert_non_null(png);
    assert_true(png->len > sizeof(png_magic));
    assert_memory_equal(png->data, png_magic, sizeof(png_magic));

    const struct fx_asset *lic = fx_asset_find("LICENSE.swagger-ui");
    assert_non_null(strstr(text(lic), "Apache License"));
}

/* Every href="./X" and src="./X" in the page must name an embedded asset, and the
 * page must load the style sheet, the bundle and our init script. */
static void test_index_references(void **state)
{
    (void)state;
    const struct fx_asset *page = fx_asset_find("index.html");
    assert_non_null(page);
    const char *html = text(page);
    assert_non_null(strstr(html, "<html lang=\"en\">"));
    assert_non_null(strstr(html, "<title>Fluxo API</title>"));
    /* no inline script: a CSP of script-src 'self' must allow the page */
    assert_null(strstr(html, "<script>"));

    int refs = 0, css = 0, bundle = 0, init = 0;
    static const char *const attrs[] = {"href=\"./", "src=\"./"};
    for (size_t k = 0; k < 2; k++) {
        for (const char *p = strstr(html, attrs[k]); p; p = strstr(p, attrs[k])) {
            p += strlen(attrs[k]);
            const char *end = strchr(p, '"');
            assert_non_null(end);
            char name[128];
            assert_true((size_t)(end - p) < sizeof(name));
            memcpy(name, p, (size_t)(end - p));
            name[end - p] = '\0';
            if (!fx_asset_find(name))
                fail_msg("index.html references ./%s, which is not embedded", name);
            refs++;
            css += strcmp(name, "swagger-ui.css") == 0;
            bundle += strcmp(name, "swagger-ui-bundle.js") == 0;
            init += strcmp(name, "init.js") == 0;
        }
    }
    assert_true(refs >= 3);
    assert_int_equal(css, 1);
    assert_int_equal(bundle, 1);
    assert_int_equal(init, 1);
    /* the bundle must be loaded before the script that calls it */
    assert_true(strstr(html, "./swagger-ui-bundle.js") < strstr(html, "./init.js"));

    const char *js = text(fx_asset_find("init.js"));
    assert_non_null(strstr(js, "SwaggerUIBundle("));
    assert_non_null(strstr(js, "'/openapi.json'"));
    assert_non_null(strstr(js, "'#swagger-ui'"));
    assert_non_null(strstr(html, "id=\"swagger-ui\""));
    assert_non_null(strstr(js, "persistAuthorization: true"));
    assert_non_null(strstr(js, "deepLinking: true"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_assets),
        cmocka_unit_test(test_iteration_and_misses),
        cmocka_unit_test(test_bundle_and_css),
        cmocka_unit_test(test_index_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
