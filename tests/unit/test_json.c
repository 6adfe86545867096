/* Unit tests for src/json.c: the PUT body parser and the JSON writers.
 * Each test gets a fresh APR pool (*state), destroyed in teardown, so the
 * documents the parser registers on it are released and LeakSanitizer can
 * tell a leak. Bodies are exact-size heap copies without a NUL after them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fake_store.h"
#include "hello/json.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *result_name(hello_body_result r)
{
    switch (r) {
    case HELLO_BODY_OK:
        return "OK";
    case HELLO_BODY_NOT_JSON:
        return "NOT_JSON";
    case HELLO_BODY_NOT_OBJECT:
        return "NOT_OBJECT";
    case HELLO_BODY_NO_DATE:
        return "NO_DATE";
    case HELLO_BODY_BAD_DATE:
        return "BAD_DATE";
    }
    return "(not a hello_body_result)";
}

/* Parses body[0..len) from an exact-size heap copy released with pool. */
static hello_body_result parse_exact(apr_pool_t *pool, const char *body, size_t len,
                                     hello_date *dob)
{
    return hello_body_parse(pool, exact_copy_in(pool, body, len), len, dob);
}

/* ---- hello_body_parse ---------------------------------------------------- */

typedef struct body_case {
    const char *body;
    size_t len;
    hello_body_result expected;
    hello_date dob; /* for HELLO_BODY_OK */
} body_case;

#define B(lit, result)                    \
    {                                     \
        (lit), sizeof(lit) - 1, (result), \
        {                                 \
            0, 0, 0                       \
        }                                 \
    }
#define BOK(lit, y, m, d)                      \
    {                                          \
        (lit), sizeof(lit) - 1, HELLO_BODY_OK, \
        {                                      \
            (y), (m), (d)                      \
        }                                      \
    }

static const body_case body_cases[] = {
    /* OK */
    BOK("{\"dateOfBirth\":\"2000-01-31\"}", 2000, 1, 31),
    BOK("{\"dateOfBirth\":\"2000-02-29\"}", 2000, 2, 29),
    BOK("{\"dateOfBirth\":\"1000-01-01\"}", 1000, 1, 1),
    BOK("{\"dateOfBirth\":\"9999-12-31\"}", 9999, 12, 31), /* the future is core's business */
    BOK("{\"name\":\"x\",\"dateOfBirth\":\"1999-12-31\",\"n\":1,\"a\":[1,2,{}],"
        "\"o\":{\"dateOfBirth\":\"bad\"},\"t\":true,\"z\":null}",
        1999, 12, 31),
    BOK("{\"dateOfBirth\":\"1985-07-04\",\"extra\":\"after\"}", 1985, 7, 4),
    BOK("  \n\t{ \"dateOfBirth\" : \"2000-02-29\" }\r\n ", 2000, 2, 29),
    BOK("{\n  \"dateOfBirth\": \"1970-01-01\"\n}\n", 1970, 1, 1),
    BOK("{\"nom\":\"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80\",\"\\u00e9\":\"\\ud83d\\ude00\","
        "\"\xe6\x97\xa5\xe6\x9c\xac\":\"\xe8\xaa\x9e\",\"dateOfBirth\":\"1985-07-04\"}",
        1985, 7, 4),
    BOK("{\"dateOfBirth\":\"\\u0032000-01-01\"}", 2000, 1, 1), /* escapes are decoded */
    BOK("{\"date\\u004ffBirth\":\"2001-03-04\"}", 2001, 3, 4),
    /* not one well-formed UTF-8 JSON value */
    B("", HELLO_BODY_NOT_JSON),
    B(" ", HELLO_BODY_NOT_JSON),
    B("{", HELLO_BODY_NOT_JSON),
    B("}", HELLO_BODY_NOT_JSON),
    B("{}x", HELLO_BODY_NOT_JSON),
    B("{} {}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\"}}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\"", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01}", HELLO_BODY_NOT_JSON),
    B("{'dateOfBirth':'2000-01-01'}", HELLO_BODY_NOT_JSON),
    B("{dateOfBirth:\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\",}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\" \"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("/* c */{\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"n\":NaN,\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("\xef\xbb\xbf{\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON), /* BOM */
    /* invalid UTF-8 */
    B("{\"x\":\"\xff\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"x\":\"\xc0\xaf\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"x\":\"\xc3\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"x\":\"\xed\xa0\x80\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"\xfe\":1,\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"x\":\"\\ud800\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    /* duplicate member names */
    B("{\"dateOfBirth\":\"2000-01-01\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\",\"dateOfBirth\":\"2001-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"bad\",\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\",\"date\\u004ffBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"a\":1,\"a\":2,\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    /* NUL: escaped in the value or a key, raw inside or after */
    B("{\"dateOfBirth\":\"\\u0000\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\\u0000\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01\\u00000\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\\u0000\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-0\0\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-01-01\"}\0", HELLO_BODY_NOT_JSON),
    B("\0{\"dateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NOT_JSON),
    /* valid JSON, not an object */
    B("[]", HELLO_BODY_NOT_OBJECT),
    B(" [ ] ", HELLO_BODY_NOT_OBJECT),
    B("[1,2]", HELLO_BODY_NOT_OBJECT),
    B("[{\"dateOfBirth\":\"2000-01-01\"}]", HELLO_BODY_NOT_OBJECT),
    /* no "dateOfBirth" string member */
    B("{}", HELLO_BODY_NO_DATE),
    B(" { } ", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":20000101}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":2000.0}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":null}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":true}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":[\"2000-01-01\"]}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth\":{\"v\":\"2000-01-01\"}}", HELLO_BODY_NO_DATE),
    B("{\"dateofbirth\":\"2000-01-01\"}", HELLO_BODY_NO_DATE), /* case matters */
    B("{\"DateOfBirth\":\"2000-01-01\"}", HELLO_BODY_NO_DATE),
    B("{\"dateOfBirth \":\"2000-01-01\"}", HELLO_BODY_NO_DATE),
    B("{\"date_of_birth\":\"2000-01-01\"}", HELLO_BODY_NO_DATE),
    B("{\"o\":{\"dateOfBirth\":\"2000-01-01\"}}", HELLO_BODY_NO_DATE),
    /* "dateOfBirth" is a string but not a real YYYY-MM-DD date */
    B("{\"dateOfBirth\":\"2000-02-30\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2001-02-29\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-13-01\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-00-00\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"0999-12-31\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-1-1\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"abcdefghij\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000x01x01\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"0000000000\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"----------\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000/01/01\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\" 2000-01-01\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-01-01 \"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-01-01\\n\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-01-01T00:00:00Z\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"\xef\xbc\x92\xef\xbc\x90\xef\xbc\x90\xef\xbc\x90-01-01\"}",
      HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"\\uff12000-01-01\"}", HELLO_BODY_BAD_DATE),
    /* the canonical 28-byte shape around something that is not a date */
    B("{\"dateOfBirth\":\"2000-0\"-01\"}", HELLO_BODY_NOT_JSON),
    B("{\"dateOfBirth\":\"2000-0\\\\-01\"}", HELLO_BODY_BAD_DATE),
    B("{\"dateOfBirth\":\"2000-01-0\x01\"}", HELLO_BODY_NOT_JSON),
};

static void test_body_parse_table(void **state)
{
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(body_cases); i++) {
        const body_case *c = &body_cases[i];
        hello_date dob = { 0, 0, 0 };
        hello_body_result got = parse_exact(pool, c->body, c->len, &dob);

        if (got != c->expected) {
            fail_msg("body_cases[%zu] %.*s: %s, expected %s", i, (int)c->len, c->body,
                     result_name(got), result_name(c->expected));
        }
        if (got == HELLO_BODY_OK &&
            (dob.year != c->dob.year || dob.month != c->dob.month || dob.day != c->dob.day)) {
            fail_msg("body_cases[%zu]: dob %04d-%02d-%02d, expected %04d-%02d-%02d", i, dob.year,
                     dob.month, dob.day, c->dob.year, c->dob.month, c->dob.day);
        }
    }
}

/* Valid JSON values that are not objects. json.h calls them NOT_OBJECT, but
 * jansson (without JSON_DECODE_ANY) refuses a scalar at the top level, so
 * src/json.c answers NOT_JSON for them; both are the same 400 for the
 * client (core.c maps both to one reason). The contract checked here is
 * that they are refused, as a "not an object" class, never OK, NO_DATE or
 * BAD_DATE. */
static void test_body_parse_scalars(void **state)
{
    static const char *const scalars[] = {
        "null",
        "true",
        "false",
        "1",
        "0",
        "-1.5e3",
        "\"str\"",
        "\"2000-01-01\"",
        "\"{\\\"dateOfBirth\\\":\\\"2000-01-01\\\"}\"",
        " null ",
    };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(scalars); i++) {
        hello_date dob;
        hello_body_result got = parse_exact(pool, scalars[i], strlen(scalars[i]), &dob);

        if (got != HELLO_BODY_NOT_OBJECT && got != HELLO_BODY_NOT_JSON) {
            fail_msg("%s: %s, expected NOT_OBJECT or NOT_JSON", scalars[i], result_name(got));
        }
    }
}

/* The parser's shortcut for the exact body {"dateOfBirth":"YYYY-MM-DD"}
 * must answer what jansson would: 28-byte bodies of that shape with random
 * middles (digits, dashes, quotes, backslashes, spaces, a control byte,
 * a non-ASCII byte) checked against a direct jansson classification. */
static hello_body_result reference_parse(const char *body, size_t len, hello_date *dob)
{
    json_error_t error;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    hello_body_result r;
    json_t *v;

    if (root == NULL) {
        return HELLO_BODY_NOT_JSON;
    }
    v = json_object_get(root, "dateOfBirth");
    if (!json_is_object(root)) {
        r = HELLO_BODY_NOT_OBJECT;
    }
    else if (!json_is_string(v)) {
        r = HELLO_BODY_NO_DATE;
    }
    else {
        r = hello_date_parse(json_string_value(v), json_string_length(v), dob)
                ? HELLO_BODY_OK
                : HELLO_BODY_BAD_DATE;
    }
    json_decref(root);
    return r;
}

static void test_body_parse_canonical_shape(void **state)
{
    static const char alphabet[] = "0123456789----\"\\ \x01\xe9";
    apr_pool_t *pool = *state;
    unsigned int seed = 12345;
    int ok = 0;

    for (int i = 0; i < 200000; i++) {
        char body[29] = "{\"dateOfBirth\":\"YYYY-MM-DD\"}";
        hello_date got_dob = { 0, 0, 0 };
        hello_date ref_dob = { 0, 0, 0 };
        hello_body_result got;
        hello_body_result ref;

        for (int j = 0; j < 10; j++) {
            seed = seed * 1103515245U + 12345U;
            /* Mostly a real date's characters in place, so that many are OK. */
            if ((seed >> 16) % 4 != 0) {
                seed = seed * 1103515245U + 12345U;
                body[16 + j] = (j == 4 || j == 7) ? '-' : (char)('0' + (seed >> 16) % 10);
            }
            else {
                seed = seed * 1103515245U + 12345U;
                body[16 + j] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
            }
        }
        got = parse_exact(pool, body, 28, &got_dob);
        ref = reference_parse(body, 28, &ref_dob);
        if (got != ref) {
            fail_msg("%.28s: %s, jansson says %s", body, result_name(got), result_name(ref));
        }
        if (got == HELLO_BODY_OK) {
            ok++;
            assert_memory_equal(&got_dob, &ref_dob, sizeof(got_dob));
        }
    }
    /* Both paths were exercised. */
    assert_true(ok > 1000);
    assert_true(ok < 200000);
}

static void test_body_parse_null_body(void **state)
{
    apr_pool_t *pool = *state;
    hello_date dob;

    assert_int_equal(hello_body_parse(pool, NULL, 0, &dob), HELLO_BODY_NOT_JSON);
    assert_int_equal(hello_body_parse(pool, NULL, 10, &dob), HELLO_BODY_NOT_JSON);
    assert_int_equal(hello_body_parse(pool, "{}", 0, &dob), HELLO_BODY_NOT_JSON);
}

/* Only len bytes are read: a valid body followed by garbage that is not part
 * of len parses, and a cut one does not. */
static void test_body_parse_uses_len(void **state)
{
    static const char body[] = "{\"dateOfBirth\":\"2000-01-31\"}garbage";
    const size_t json_len = sizeof("{\"dateOfBirth\":\"2000-01-31\"}") - 1;
    apr_pool_t *pool = *state;
    hello_date dob = { 0, 0, 0 };

    assert_int_equal(parse_exact(pool, body, json_len, &dob), HELLO_BODY_OK);
    assert_int_equal(dob.year, 2000);
    assert_int_equal(dob.month, 1);
    assert_int_equal(dob.day, 31);
    assert_int_equal(parse_exact(pool, body, sizeof(body) - 1, &dob), HELLO_BODY_NOT_JSON);
    for (size_t len = 1; len < json_len; len++) {
        if (parse_exact(pool, body, len, &dob) != HELLO_BODY_NOT_JSON) {
            fail_msg("the first %zu bytes should be NOT_JSON", len);
        }
    }
}

/* 10,000 levels of nesting are refused without exhausting the stack. */
static void test_body_parse_deep_nesting(void **state)
{
    enum { DEPTH = 10000 };
    apr_pool_t *pool = *state;
    char *open = apr_palloc(pool, DEPTH);
    char *closed = apr_palloc(pool, 2 * DEPTH);
    char *objects = apr_palloc(pool, DEPTH * 5 + 2 + DEPTH);
    size_t n = 0;
    hello_date dob;
    hello_body_result r;

    memset(open, '[', DEPTH);
    memset(closed, '[', DEPTH);
    memset(closed + DEPTH, ']', DEPTH);
    for (int i = 0; i < DEPTH; i++) {
        memcpy(objects + n, "{\"a\":", 5);
        n += 5;
    }
    objects[n++] = '1';
    objects[n++] = ' ';
    memset(objects + n, '}', DEPTH);
    n += DEPTH;

    r = parse_exact(pool, open, DEPTH, &dob);
    assert_int_not_equal(r, HELLO_BODY_OK);
    assert_int_equal(r, HELLO_BODY_NOT_JSON);
    r = parse_exact(pool, closed, 2 * DEPTH, &dob);
    assert_int_not_equal(r, HELLO_BODY_OK);
    r = parse_exact(pool, objects, n, &dob);
    assert_int_not_equal(r, HELLO_BODY_OK);
}

/* Many parses on one pool, and on short-lived subpools: every document is
 * released by the pool (LeakSanitizer checks at exit). */
static void test_body_parse_releases_documents(void **state)
{
    apr_pool_t *pool = *state;

    for (int i = 0; i < 200; i++) {
        apr_pool_t *sub = NULL;
        hello_date dob;

        assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
        for (size_t k = 0; k < N_ELEMS(body_cases); k++) {
            (void)parse_exact(sub, body_cases[k].body, body_cases[k].len, &dob);
        }
        if (i % 2) {
            apr_pool_destroy(sub);
        }
        else {
            apr_pool_clear(sub); /* cleared, then destroyed with pool */
        }
    }
}

/* ---- hello_json_quote ---------------------------------------------------- */

/* json_loads(text) is a JSON string whose bytes are expected[0..expected_len). */
static void assert_decodes_to(const char *text, const char *expected, size_t expected_len)
{
    json_error_t error;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    int is_string = json_is_string(v);
    size_t len = is_string ? json_string_length(v) : 0;
    int same = is_string && len == expected_len &&
               memcmp(json_string_value(v), expected, expected_len) == 0;
    char got[256] = "";

    if (is_string && !same) {
        snprintf(got, sizeof(got), "%s", json_string_value(v));
    }
    json_decref(v);
    if (!is_string) {
        fail_msg("%s is not a JSON string: %s", text, error.text);
    }
    if (!same) {
        fail_msg("%s decodes to \"%s\" (%zu bytes), expected \"%s\" (%zu bytes)", text, got, len,
                 expected, expected_len);
    }
}

static void test_quote_table(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "", "\"\"" },
        { "abc", "\"abc\"" },
        { "a\"b", "\"a\\\"b\"" },
        { "\"", "\"\\\"\"" },
        { "a\\b", "\"a\\\\b\"" },
        { "\\\"", "\"\\\\\\\"\"" },
        { "line\nnext", "\"line\\nnext\"" },
        { "\n\n", "\"\\n\\n\"" },
        { "tab\there", "\"tab\\there\"" },
        { "\r", "\"\\u000d\"" },
        { "\x01", "\"\\u0001\"" },
        { "\x1f", "\"\\u001f\"" },
        { "\b\f", "\"\\u0008\\u000c\"" },
        { "\x7f", "\"\\u007f\"" },
        { "/", "\"/\"" },
        { "</script>", "\"</script>\"" },
        { "{\"dateOfBirth\":\"2000-01-31\"}", "\"{\\\"dateOfBirth\\\":\\\"2000-01-31\\\"}\"" },
        { "not found: use /hello/<username>", "\"not found: use /hello/<username>\"" },
    };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *in = exact_copy_in(pool, cases[i].in, strlen(cases[i].in) + 1);
        char *out = hello_json_quote(pool, in);

        assert_string_equal(out, cases[i].out);
        assert_decodes_to(out, cases[i].in, strlen(cases[i].in));
    }
}

/* Every ASCII byte alone, and all of them at once, round-trip. */
static void test_quote_every_ascii_byte(void **state)
{
    apr_pool_t *pool = *state;
    char all[128];

    for (int c = 1; c < 128; c++) {
        char in[2] = { (char)c, '\0' };
        char *out = hello_json_quote(pool, in);

        assert_decodes_to(out, in, 1);
        /* Control characters never appear raw in the output. */
        for (const char *p = out; *p; p++) {
            if ((unsigned char)*p < 0x20) {
                fail_msg("byte 0x%02x is raw in the quoted form of 0x%02x", *p, c);
            }
        }
        all[c - 1] = (char)c;
    }
    all[127] = '\0';
    assert_decodes_to(hello_json_quote(pool, all), all, 127);
}

/* Bytes that are not valid UTF-8 must still give valid JSON (a client must
 * be able to parse every body). */
static void test_quote_invalid_utf8_is_valid_json(void **state)
{
    static const char *const inputs[] = { "\xff",     "\xc3",         "a\x80z",
                                          "\xc0\xaf", "\xed\xa0\x80", "/h\xe9llo" };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        char *out = hello_json_quote(pool, inputs[i]);
        json_error_t error;
        json_t *v = json_loads(out, JSON_DECODE_ANY, &error);
        int ok = json_is_string(v);

        json_decref(v);
        if (!ok) {
            fail_msg("quote of invalid UTF-8 input %zu is not a JSON string: %s", i, out);
        }
    }
}

/* A UTF-8 string must decode back to itself: json.h promises "a JSON string
 * literal" of s. (The 404 reason embeds the location's path, which can hold
 * UTF-8: "/café", or in the <LocationMatch> fallback the decoded request
 * path itself.) */
static void test_quote_utf8_round_trip(void **state)
{
    static const char *const inputs[] = {
        "\xc3\xa9",    /* é */
        "caf\xc3\xa9", /* café */
        "not found: use /caf\xc3\xa9/<username>",
        "\xe6\x97\xa5\xe6\x9c\xac", /* 日本 */
        "\xf0\x9f\x98\x80",         /* U+1F600 */
    };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        assert_decodes_to(hello_json_quote(pool, inputs[i]), inputs[i], strlen(inputs[i]));
    }
}

/* ---- hello_json_error and hello_json_greeting ---------------------------- */

/* text parses as an object with exactly one member key, a string equal to
 * value. */
static void assert_object_with(const char *text, const char *key, const char *value)
{
    json_error_t error;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    int ok_object = json_is_object(root) && json_object_size(root) == 1;
    json_t *member = ok_object ? json_object_get(root, key) : NULL;
    int ok_value = json_is_string(member) && strcmp(json_string_value(member), value) == 0;

    json_decref(root);
    if (!ok_object) {
        fail_msg("%s is not an object with one member", text);
    }
    if (!ok_value) {
        fail_msg("%s: member \"%s\" is not \"%s\"", text, key, value);
    }
}

static void test_json_error(void **state)
{
    static const struct {
        const char *reason;
        const char *body;
    } cases[] = {
        { "username must be 1 to 64 ASCII letters (A-Z, a-z)",
          "{\"error\":\"username must be 1 to 64 ASCII letters (A-Z, a-z)\"}" },
        { "request body must be a JSON object such as {\"dateOfBirth\":\"2000-01-31\"}",
          "{\"error\":\"request body must be a JSON object such as "
          "{\\\"dateOfBirth\\\":\\\"2000-01-31\\\"}\"}" },
        { "not found: use /hello/<username>", "{\"error\":\"not found: use /hello/<username>\"}" },
        { "request body too large: the limit is 4096 bytes",
          "{\"error\":\"request body too large: the limit is 4096 bytes\"}" },
        { "", "{\"error\":\"\"}" },
        { "a\nb\\c\"d\te\x01", "{\"error\":\"a\\nb\\\\c\\\"d\\te\\u0001\"}" },
    };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *body = hello_json_error(pool, cases[i].reason);

        assert_string_equal(body, cases[i].body);
        assert_object_with(body, "error", cases[i].reason);
    }
}

static void test_json_greeting(void **state)
{
    static const struct {
        const char *username;
        int days;
        const char *body;
        const char *message;
    } cases[] = {
        { "alice", 0, "{\"message\":\"Hello, alice! Happy birthday!\"}",
          "Hello, alice! Happy birthday!" },
        { "alice", 1, "{\"message\":\"Hello, alice! Your birthday is in 1 day(s)\"}",
          "Hello, alice! Your birthday is in 1 day(s)" },
        { "Bob", 5, "{\"message\":\"Hello, Bob! Your birthday is in 5 day(s)\"}",
          "Hello, Bob! Your birthday is in 5 day(s)" },
        { "Z", 365, "{\"message\":\"Hello, Z! Your birthday is in 365 day(s)\"}",
          "Hello, Z! Your birthday is in 365 day(s)" },
        { "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl", 364,
          "{\"message\":\"Hello, abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl!"
          " Your birthday is in 364 day(s)\"}",
          "Hello, abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl!"
          " Your birthday is in 364 day(s)" },
    };
    apr_pool_t *pool = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *body = hello_json_greeting(pool, cases[i].username, cases[i].days);

        assert_string_equal(body, cases[i].body);
        assert_object_with(body, "message", cases[i].message);
    }
}

#define POOL_TEST(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        POOL_TEST(test_body_parse_table),
        POOL_TEST(test_body_parse_scalars),
        POOL_TEST(test_body_parse_canonical_shape),
        POOL_TEST(test_body_parse_null_body),
        POOL_TEST(test_body_parse_uses_len),
        POOL_TEST(test_body_parse_deep_nesting),
        POOL_TEST(test_body_parse_releases_documents),
        POOL_TEST(test_quote_table),
        POOL_TEST(test_quote_every_ascii_byte),
        POOL_TEST(test_quote_invalid_utf8_is_valid_json),
        POOL_TEST(test_quote_utf8_round_trip),
        POOL_TEST(test_json_error),
        POOL_TEST(test_json_greeting),
    };

    return cmocka_run_group_tests_name("json", tests, unit_group_setup, unit_group_teardown);
}
