/* Unit tests for src/validate.c: usernames, request paths and Content-Type.
 * Every input is handed over as an exact-size heap copy, so a read past its
 * end (past len, or past the NUL of a C string) is an AddressSanitizer error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_store.h"
#include "hello/validate.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- hello_username_is_valid --------------------------------------------- */

typedef struct name_case {
    const char *s;
    size_t len;
} name_case;

/* A string literal with its length, embedded NULs included. */
#define N(lit)                 \
    {                          \
        (lit), sizeof(lit) - 1 \
    }

static const name_case valid_names[] = {
    N("a"),
    N("Z"),
    N("aZ"),
    N("Za"),
    N("A"),
    N("z"),
    N("x"),
    N("q"),
    N("O"),
    N("alice"),
    N("Alice"),
    N("ALICE"),
    N("Bob"),
    N("bOb"),
    N("QQ"),
    N("Zz"),
    N("zZ"),
    N("oO"),
    N("abc"),
    N("ABC"),
    N("tEsT"),
    N("Mary"),
    N("JeanLuc"),
    N("van"),
    N("HTTP"),
    N("json"),
    N("null"),
    N("true"),
    N("NaN"),
    N("admin"),
    N("root"),
    N("select"),
    N("Drop"),
    N("userName"),
    N("helloWorld"),
    N("JohnDoe"),
    N("mixedCaseName"),
    N("aaaaaaaaaa"),
    N("LLLLLLL"),
    N("abcdefghijklmnopqrstuvwxyz"),
    N("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    N("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    /* 63 and 64 letters */
    N("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"),
    N("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"),
};

static const name_case invalid_names[] = {
    N(""),
    /* 65 letters */
    N("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"),
    /* digits */
    N("a1"),
    N("1a"),
    N("0"),
    N("alice1"),
    N("007"),
    /* punctuation and separators */
    N("al-ice"),
    N("al_ice"),
    N("al.ice"),
    N("a b"),
    N(" alice"),
    N("alice "),
    N("alice\n"),
    N("alice\t"),
    N("alice\r"),
    N("%61lice"),
    N("a%20b"),
    N("a/b"),
    N("/a"),
    N("a+b"),
    N("a@b"),
    N("alice!"),
    N("al'ice"),
    N("al\"ice"),
    N("a;b"),
    N("a:b"),
    N("a?b"),
    N("a#b"),
    N("a&b"),
    N("a=b"),
    N("a~b"),
    N("a*b"),
    N("a\\b"),
    N("a,b"),
    N("<a>"),
    N("a|b"),
    /* the neighbours of the letter ranges: '@' '[' '`' '{' */
    N("@"),
    N("["),
    N("`"),
    N("{"),
    N("a@"),
    N("Z["),
    N("`a"),
    N("z{"),
    /* non-ASCII: "é", "café", "Émile", "ß", FULLWIDTH "ａ", raw bytes */
    N("\xc3\xa9"),
    N("caf\xc3\xa9"),
    N("\xc3\x89mile"),
    N("\xc3\x9f"),
    N("\xef\xbd\x81"),
    N("\x7f"),
    N("\x80"),
    N("\xff"),
    N("alice\xff"),
    /* embedded NUL, the length covering it */
    N("al\0ice"),
    N("alice\0"),
    N("\0alice"),
    N("\0"),
    N("a\0b"),
};

static int username_exact(const char *s, size_t len)
{
    char *copy = exact_copy(s, len);
    int ok;

    assert_non_null(copy);
    ok = hello_username_is_valid(copy, len);
    free(copy);
    return ok;
}

static void test_username_valid(void **state)
{
    (void)state;
    assert_true(N_ELEMS(valid_names) >= 40);
    for (size_t i = 0; i < N_ELEMS(valid_names); i++) {
        if (!username_exact(valid_names[i].s, valid_names[i].len)) {
            fail_msg("\"%s\" (length %zu) should be a valid username", valid_names[i].s,
                     valid_names[i].len);
        }
    }
}

static void test_username_invalid(void **state)
{
    (void)state;
    assert_true(N_ELEMS(invalid_names) >= 40);
    for (size_t i = 0; i < N_ELEMS(invalid_names); i++) {
        if (username_exact(invalid_names[i].s, invalid_names[i].len)) {
            fail_msg("invalid_names[%zu] (\"%s\", length %zu) should be refused", i,
                     invalid_names[i].s, invalid_names[i].len);
        }
    }
}

/* 1..64 letters are valid, 0 and 65..100 are not. */
static void test_username_lengths(void **state)
{
    char buf[101];

    (void)state;
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (char)((i % 2) ? 'a' + (int)(i % 26) : 'A' + (int)(i % 26));
    }
    for (size_t len = 0; len <= 100; len++) {
        int expected = len >= 1 && len <= HELLO_USERNAME_MAX;
        if (!username_exact(buf, len) != !expected) {
            fail_msg("a username of %zu letters: expected %d", len, expected);
        }
    }
    assert_int_equal(HELLO_USERNAME_MAX, 64);
}

/* Each single byte, alone and in the middle of a valid name. */
static void test_username_every_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        char one[1] = { (char)c };
        char three[3] = { 'a', (char)c, 'Z' };

        if (!username_exact(one, 1) != !letter) {
            fail_msg("byte 0x%02x alone: expected %d", c, letter);
        }
        if (!username_exact(three, 3) != !letter) {
            fail_msg("byte 0x%02x inside \"a?Z\": expected %d", c, letter);
        }
    }
}

/* Only the first len bytes count; NULL is refused. */
static void test_username_len_bounds(void **state)
{
    (void)state;
    assert_true(username_exact("alice123", 5));
    assert_false(username_exact("alice123", 6));
    assert_false(hello_username_is_valid(NULL, 0));
    assert_false(hello_username_is_valid(NULL, 5));
    assert_false(username_exact("alice", 0));
}

/* ---- hello_path_segment -------------------------------------------------- */

typedef struct path_case {
    const char *path;
    const char *base;
    const char *segment; /* NULL: HELLO_PATH_NOT_FOUND expected */
} path_case;

#define L65 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"

static const path_case path_cases[] = {
    /* base "/hello" */
    { "/hello/alice", "/hello", "alice" },
    { "/hello/a", "/hello", "a" },
    { "/hello/Bob", "/hello", "Bob" },
    { "/hello/hello", "/hello", "hello" },
    { "/hello/bob1", "/hello", "bob1" }, /* not validated here */
    { "/hello/a b", "/hello", "a b" },
    { "/hello/%", "/hello", "%" },
    { "/hello/..", "/hello", ".." },
    { "/hello/" L65, "/hello", L65 },
    { "/hello", "/hello", NULL },
    { "/hello/", "/hello", NULL },
    { "/hello//", "/hello", NULL },
    { "/hello//x", "/hello", NULL },
    { "/hello/a/b", "/hello", NULL },
    { "/hello/a/", "/hello", NULL },
    { "/hello/a/b/c", "/hello", NULL },
    { "/helloworld/x", "/hello", NULL },
    { "/helloworld", "/hello", NULL },
    { "/hell", "/hello", NULL },
    { "/hell/x", "/hello", NULL },
    { "/Hello/x", "/hello", NULL }, /* case matters */
    { "/other/x", "/hello", NULL },
    { "//x", "/hello", NULL },
    { "/x", "/hello", NULL },
    { "hello/x", "/hello", NULL },
    { "/api/v1/hello/x", "/hello", NULL },
    { "", "/hello", NULL },
    { "/", "/hello", NULL },
    /* base "/hello/" and "/hello//": the same location */
    { "/hello/alice", "/hello/", "alice" },
    { "/hello/alice", "/hello//", "alice" },
    { "/hello", "/hello/", NULL },
    { "/hello/", "/hello/", NULL },
    { "/hello/a/b", "/hello/", NULL },
    { "/hello/a/", "/hello/", NULL },
    { "/helloworld/x", "/hello/", NULL },
    { "//x", "/hello/", NULL },
    /* base "", NULL and "/": the root */
    { "/alice", "", "alice" },
    { "/x", "", "x" },
    { "/alice", "/", "alice" },
    { "/", "", NULL },
    { "", "", NULL },
    { "x", "", NULL },
    { "//x", "", NULL },
    { "/a/b", "", NULL },
    { "/a/", "", NULL },
    { "/", "/", NULL },
    { "//x", "/", NULL },
    /* base "/api/v1/hello" */
    { "/api/v1/hello/Bob", "/api/v1/hello", "Bob" },
    { "/api/v1/hello/Bob", "/api/v1/hello/", "Bob" },
    { "/api/v1/hello", "/api/v1/hello", NULL },
    { "/api/v1/hello/", "/api/v1/hello", NULL },
    { "/api/v1/hello/a/b", "/api/v1/hello", NULL },
    { "/api/v1/hellox/y", "/api/v1/hello", NULL },
    { "/api/v1/x", "/api/v1/hello", NULL },
    { "/api/v1", "/api/v1/hello", NULL },
    { "/hello/x", "/api/v1/hello", NULL },
};

/* The path as an exact-size heap copy of its bytes and NUL. */
static hello_path_result segment_exact(const char *path, const char *base, size_t *offset,
                                       size_t *len)
{
    size_t plen = strlen(path) + 1;
    size_t blen = base ? strlen(base) + 1 : 0;
    char *p = exact_copy(path, plen);
    char *b = base ? exact_copy(base, blen) : NULL;
    const char *segment = NULL;
    hello_path_result r;

    assert_non_null(p);
    r = hello_path_segment(p, b, &segment, len);
    if (r == HELLO_PATH_OK) {
        *offset = (size_t)(segment - p);
    }
    free(p);
    free(b);
    return r;
}

static void test_path_segment_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(path_cases); i++) {
        const path_case *c = &path_cases[i];
        size_t offset = 0;
        size_t len = 0;
        hello_path_result r = segment_exact(c->path, c->base, &offset, &len);

        if (c->segment == NULL) {
            if (r != HELLO_PATH_NOT_FOUND) {
                fail_msg("path \"%s\" base \"%s\": expected NOT_FOUND", c->path,
                         c->base ? c->base : "(null)");
            }
            continue;
        }
        if (r != HELLO_PATH_OK) {
            fail_msg("path \"%s\" base \"%s\": expected segment \"%s\"", c->path,
                     c->base ? c->base : "(null)", c->segment);
        }
        /* The segment is the tail of the path. */
        assert_int_equal(len, strlen(c->segment));
        assert_int_equal(offset + len, strlen(c->path));
        assert_memory_equal(c->path + offset, c->segment, len);
    }
}

/* base NULL behaves as "" (the root). */
static void test_path_segment_null_base(void **state)
{
    static const struct {
        const char *path;
        const char *segment;
    } cases[] = {
        { "/alice", "alice" }, { "/x", "x" },    { "/", NULL },   { "", NULL },
        { "//x", NULL },       { "/a/b", NULL }, { "/a/", NULL }, { "x", NULL },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t offset = 0;
        size_t len = 0;
        hello_path_result r = segment_exact(cases[i].path, NULL, &offset, &len);

        if (cases[i].segment == NULL) {
            if (r != HELLO_PATH_NOT_FOUND) {
                fail_msg("path \"%s\" base NULL: expected NOT_FOUND", cases[i].path);
            }
            continue;
        }
        if (r != HELLO_PATH_OK) {
            fail_msg("path \"%s\" base NULL: expected \"%s\"", cases[i].path, cases[i].segment);
        }
        assert_int_equal(len, strlen(cases[i].segment));
        assert_memory_equal(cases[i].path + offset, cases[i].segment, len);
    }
}

static void test_path_segment_null_path(void **state)
{
    const char *segment = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(hello_path_segment(NULL, "/hello", &segment, &len), HELLO_PATH_NOT_FOUND);
    assert_int_equal(hello_path_segment(NULL, NULL, &segment, &len), HELLO_PATH_NOT_FOUND);
}

/* ---- hello_content_type_is_json ------------------------------------------ */

static void test_content_type(void **state)
{
    static const struct {
        const char *value;
        int json;
    } cases[] = {
        { NULL, 1 },
        { "application/json", 1 },
        { "Application/JSON", 1 },
        { "APPLICATION/JSON", 1 },
        { "aPpLiCaTiOn/JsOn", 1 },
        { "application/json; charset=utf-8", 1 },
        { "application/json;charset=UTF-8", 1 },
        { "application/json ; charset=utf-8", 1 },
        { "application/json;", 1 },
        { " application/json ", 1 },
        { "\tapplication/json", 1 },
        { "application/json\t", 1 },
        { "", 0 },
        { " ", 0 },
        { ";", 0 },
        { "text/plain", 0 },
        { "text/json", 0 },
        { "application/jsonp", 0 },
        { "application/jsonx", 0 },
        { "application/json-patch+json", 0 },
        { "application/ld+json", 0 },
        { "application/problem+json", 0 },
        { "application/x-json", 0 },
        { "application/xml", 0 },
        { "application/x-www-form-urlencoded", 0 },
        { "multipart/form-data", 0 },
        { "application/json, text/plain", 0 },
        { "application/json charset=utf-8", 0 },
        { "application /json", 0 },
        { "application/ json", 0 },
        { "applicationjson", 0 },
        { "xapplication/json", 0 },
        { "application/", 0 },
        { "application", 0 },
        { "json", 0 },
        { "application/jso", 0 },
        { "application/json\n", 0 },
        { "application/json\r", 0 },
        { "*/*", 0 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *v = cases[i].value;
        char *copy = v ? exact_copy(v, strlen(v) + 1) : NULL;
        int got = hello_content_type_is_json(copy);

        free(copy);
        if (!got != !cases[i].json) {
            fail_msg("Content-Type \"%s\": expected %d", v ? v : "(absent)", cases[i].json);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_valid),
        cmocka_unit_test(test_username_invalid),
        cmocka_unit_test(test_username_lengths),
        cmocka_unit_test(test_username_every_byte),
        cmocka_unit_test(test_username_len_bounds),
        cmocka_unit_test(test_path_segment_table),
        cmocka_unit_test(test_path_segment_null_base),
        cmocka_unit_test(test_path_segment_null_path),
        cmocka_unit_test(test_content_type),
    };

    return cmocka_run_group_tests_name("validate", tests, unit_group_setup, unit_group_teardown);
}
