/* Unit tests for src/core.c: hello_handle with the fake store and the fake
 * body reader (tests/unit/fake_store.h). Each test gets a fixture with a
 * fresh APR pool, a seeded store (alice 1990-06-20, Bob 2000-02-29,
 * carol 1985-12-31, dave 1970-01-01) and a GET /hello/alice request made on
 * 2024-06-15; tests change what they need.
 *
 * Expected bodies and reasons are written out as the API documents them
 * (docs/API.md), not built with the functions under test. */
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
#include "hello/core.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define D(y, m, d) ((hello_date){ (y), (m), (d) })

/* The reasons of docs/API.md, and their bodies. */
#define R_METHOD       "method not allowed: use GET, HEAD or PUT"
#define R_USERNAME     "username must be 1 to 64 ASCII letters (A-Z, a-z)"
#define R_MEDIA_TYPE   "Content-Type must be application/json"
#define R_READ         "request body could not be read"
#define R_READ_TIMEOUT "request body was not received in time"
#define R_NOT_OBJECT   "request body must be a JSON object such as {\"dateOfBirth\":\"2000-01-31\"}"
#define R_NO_DATE      "dateOfBirth is required, as a string YYYY-MM-DD"
#define R_BAD_DATE     "dateOfBirth must be a real date as YYYY-MM-DD, year 1000 or later"
#define R_FUTURE_DATE  "dateOfBirth must be a date before today, as YYYY-MM-DD"
#define R_UNKNOWN_USER "no date of birth is saved for this username"
#define R_UNAVAILABLE  "the database is unavailable; retry later"

/* {"error":"<reason>"} for a reason with nothing to escape. */
#define ERROR_BODY(reason) "{\"error\":\"" reason "\"}"
#define NOT_OBJECT_BODY                                        \
    "{\"error\":\"request body must be a JSON object such as " \
    "{\\\"dateOfBirth\\\":\\\"2000-01-31\\\"}\"}"

#define GOOD_BODY "{\"dateOfBirth\":\"2001-03-04\"}"
#define L65       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
#define L64       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"

/* ---- fixture ------------------------------------------------------------- */

typedef struct core_fx {
    apr_pool_t *pool;
    fake_store store;
    fake_reader reader;
    hello_request req;
    hello_response resp;
} core_fx;

static void fx_reset(core_fx *fx)
{
    fake_store_init(&fx->store);
    fake_reader_init(&fx->reader, NULL, 0);
    memset(&fx->req, 0, sizeof(fx->req));
    fx->req.method = HELLO_METHOD_GET;
    fx->req.path = "/hello/alice";
    fx->req.base = "/hello";
    fx->req.content_type = NULL;
    fx->req.today = D(2024, 6, 15);
    fx->req.max_body = 4096;
    fx->req.retry_after = 7;
    fx->req.read_body = fake_reader_read;
    fx->req.read_ctx = &fx->reader;
    memset(&fx->resp, 0xa5, sizeof(fx->resp)); /* hello_handle must set every field */
}

static int core_setup(void **state)
{
    core_fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || apr_pool_create(&fx->pool, NULL) != APR_SUCCESS) {
        free(fx);
        return -1;
    }
    fx_reset(fx);
    *state = fx;
    return 0;
}

static int core_teardown(void **state)
{
    core_fx *fx = *state;

    apr_pool_destroy(fx->pool);
    free(fx);
    return 0;
}

static void set_get(core_fx *fx, const char *path)
{
    fx->req.method = HELLO_METHOD_GET;
    fx->req.path = path;
}

static void set_put(core_fx *fx, const char *path, const char *body)
{
    fx->req.method = HELLO_METHOD_PUT;
    fx->req.path = path;
    fx->req.content_type = "application/json";
    fake_reader_set(&fx->reader, body);
}

/* Runs hello_handle with fresh counters and a poisoned response. */
static void handle(core_fx *fx)
{
    fake_store_reset_counters(&fx->store);
    fx->reader.calls = 0;
    memset(&fx->resp, 0xa5, sizeof(fx->resp));
    hello_handle(&fx->req, &fx->store.iface, fx->pool, &fx->resp);
}

/* ---- assertions ---------------------------------------------------------- */

static void assert_calls(const core_fx *fx, int gets, int puts, int reads)
{
    if (fx->store.get_calls != gets || fx->store.put_calls != puts || fx->reader.calls != reads) {
        fail_msg("calls: get %d put %d read %d, expected get %d put %d read %d",
                 fx->store.get_calls, fx->store.put_calls, fx->reader.calls, gets, puts, reads);
    }
}

/* A 200 with exactly this body. */
static void assert_greeting(const core_fx *fx, const char *body)
{
    const hello_response *r = &fx->resp;

    assert_int_equal(r->status, 200);
    assert_non_null(r->body);
    assert_string_equal(r->body, body);
    assert_int_equal(r->body_len, strlen(body));
    assert_null(r->allow);
    assert_int_equal(r->retry_after, 0);
    assert_null(r->reason);
    assert_null(r->log_detail);
}

static void assert_no_content(const core_fx *fx)
{
    const hello_response *r = &fx->resp;

    assert_int_equal(r->status, 204);
    assert_null(r->body);
    assert_int_equal(r->body_len, 0);
    assert_null(r->allow);
    assert_int_equal(r->retry_after, 0);
    assert_null(r->reason);
    assert_null(r->log_detail);
}

/* An error answer: status, exact body and reason, Allow only on 405,
 * Retry-After and the log detail only on 503. */
static void assert_error(const core_fx *fx, int status, const char *reason, const char *body)
{
    const hello_response *r = &fx->resp;

    if (r->status != status) {
        fail_msg("status %d, expected %d (reason: %s)", r->status, status,
                 r->reason ? r->reason : "(none)");
    }
    assert_non_null(r->reason);
    assert_string_equal(r->reason, reason);
    assert_non_null(r->body);
    assert_string_equal(r->body, body);
    assert_int_equal(r->body_len, strlen(body));
    if (status == 405) {
        assert_non_null(r->allow);
        assert_string_equal(r->allow, "GET, HEAD, PUT");
    }
    else {
        assert_null(r->allow);
    }
    if (status == 503) {
        assert_true(r->retry_after > 0);
        assert_non_null(r->log_detail);
    }
    else {
        assert_int_equal(r->retry_after, 0);
        assert_null(r->log_detail);
    }
}

/* ---- GET and HEAD -------------------------------------------------------- */

static void test_get_greetings(void **state)
{
    static const struct {
        const char *path;
        hello_date today;
        const char *body;
    } cases[] = {
        { "/hello/alice",
          { 2024, 6, 15 },
          "{\"message\":\"Hello, alice! Your birthday is in 5 day(s)\"}" },
        { "/hello/alice",
          { 2024, 6, 19 },
          "{\"message\":\"Hello, alice! Your birthday is in 1 day(s)\"}" },
        { "/hello/alice", { 2024, 6, 20 }, "{\"message\":\"Hello, alice! Happy birthday!\"}" },
        { "/hello/alice",
          { 2024, 6, 21 },
          "{\"message\":\"Hello, alice! Your birthday is in 364 day(s)\"}" },
        { "/hello/alice",
          { 2023, 6, 21 },
          "{\"message\":\"Hello, alice! Your birthday is in 365 day(s)\"}" },
        { "/hello/Bob", { 2023, 2, 28 }, "{\"message\":\"Hello, Bob! Happy birthday!\"}" },
        { "/hello/Bob", { 2024, 2, 29 }, "{\"message\":\"Hello, Bob! Happy birthday!\"}" },
        { "/hello/Bob",
          { 2024, 2, 28 },
          "{\"message\":\"Hello, Bob! Your birthday is in 1 day(s)\"}" },
        { "/hello/Bob",
          { 2023, 3, 1 },
          "{\"message\":\"Hello, Bob! Your birthday is in 365 day(s)\"}" },
        { "/hello/carol", { 2023, 12, 31 }, "{\"message\":\"Hello, carol! Happy birthday!\"}" },
        { "/hello/carol",
          { 2024, 1, 1 },
          "{\"message\":\"Hello, carol! Your birthday is in 365 day(s)\"}" },
        { "/hello/dave",
          { 2023, 12, 31 },
          "{\"message\":\"Hello, dave! Your birthday is in 1 day(s)\"}" },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        set_get(fx, cases[i].path);
        fx->req.today = cases[i].today;
        handle(fx);
        assert_greeting(fx, cases[i].body);
        assert_calls(fx, 1, 0, 0);
        assert_string_equal(fx->store.last_get_username, cases[i].path + strlen("/hello/"));
        assert_string_equal(fx->resp.username, cases[i].path + strlen("/hello/"));
    }
}

static void test_get_unknown_user(void **state)
{
    static const char *const paths[] = { "/hello/zed", "/hello/Alice", "/hello/ALICE", "/hello/bob",
                                         "/hello/" L64 };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(paths); i++) {
        set_get(fx, paths[i]);
        handle(fx);
        assert_error(fx, 404, R_UNKNOWN_USER, ERROR_BODY(R_UNKNOWN_USER));
        assert_calls(fx, 1, 0, 0);
        assert_string_equal(fx->resp.username, paths[i] + strlen("/hello/"));
    }
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* HEAD answers exactly as GET (mod_hello.c drops the body). */
static void test_head_same_as_get(void **state)
{
    static const char *const paths[] = { "/hello/alice", "/hello/Bob", "/hello/zed",
                                         "/hello/bob1",  "/hello/",    "/hello/a/b" };
    core_fx *fx = *state;

    for (int store_state = 0; store_state < 3; store_state++) {
        for (size_t i = 0; i < N_ELEMS(paths); i++) {
            hello_response get;

            fx_reset(fx);
            if (store_state == 1) {
                fake_store_fail_get(&fx->store, "connection refused");
            }
            else if (store_state == 2) {
                fake_store_set(&fx->store, "alice", D(2001, 2, 29));
            }
            set_get(fx, paths[i]);
            handle(fx);
            get = fx->resp;
            int get_calls = fx->store.get_calls;

            fx->req.method = HELLO_METHOD_HEAD;
            handle(fx);
            if (fx->resp.status != get.status || !same_str(fx->resp.body, get.body) ||
                fx->resp.body_len != get.body_len || !same_str(fx->resp.allow, get.allow) ||
                fx->resp.retry_after != get.retry_after || !same_str(fx->resp.reason, get.reason) ||
                !same_str(fx->resp.log_detail, get.log_detail) ||
                !same_str(fx->resp.username, get.username)) {
                fail_msg("HEAD %s differs from GET (store state %d): %d vs %d", paths[i],
                         store_state, fx->resp.status, get.status);
            }
            assert_int_equal(fx->store.get_calls, get_calls);
            assert_int_equal(fx->store.put_calls, 0);
            assert_int_equal(fx->reader.calls, 0);
        }
    }
}

/* ---- 404 for the path shape ---------------------------------------------- */

static void test_path_shapes_404(void **state)
{
    static const struct {
        const char *base;
        const char *path;
        const char *body;
    } cases[] = {
        { "/hello", "/hello", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/hello/", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/hello/alice/", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/hello/a/b", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/hello//alice", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/helloworld/x", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "/other/x", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "//x", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", "", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello", NULL, ERROR_BODY("not found: use /hello/<username>") },
        { "/hello/", "/hello/", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello/", "/hello/a/b", ERROR_BODY("not found: use /hello/<username>") },
        { "/hello//", "/hello", ERROR_BODY("not found: use /hello/<username>") },
        { "/api/v1/hello", "/api/v1/hello/",
          ERROR_BODY("not found: use /api/v1/hello/<username>") },
        { "/api/v1/hello", "/api/v1/hello/a/b",
          ERROR_BODY("not found: use /api/v1/hello/<username>") },
        { "/api/v1/hello/", "/api/v1/hello",
          ERROR_BODY("not found: use /api/v1/hello/<username>") },
        { NULL, "/", ERROR_BODY("not found: use /<username>") },
        { NULL, NULL, ERROR_BODY("not found: use /<username>") },
        { "", "/a/b", ERROR_BODY("not found: use /<username>") },
        { "/", "/a/", ERROR_BODY("not found: use /<username>") },
        { "/he\"llo", "/he\"llo/", "{\"error\":\"not found: use /he\\\"llo/<username>\"}" },
    };
    static const hello_method methods[] = { HELLO_METHOD_GET, HELLO_METHOD_HEAD, HELLO_METHOD_PUT,
                                            HELLO_METHOD_OTHER };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        for (size_t m = 0; m < N_ELEMS(methods); m++) {
            /* The path beats everything else that is wrong with the request. */
            fx_reset(fx);
            fx->req.method = methods[m];
            fx->req.base = cases[i].base;
            fx->req.path = cases[i].path;
            fx->req.content_type = "text/plain";
            fake_reader_set(&fx->reader, "not json");
            fake_store_fail_get(&fx->store, "down");
            fake_store_fail_put(&fx->store, "down");
            handle(fx);
            if (fx->resp.status != 404) {
                fail_msg("base %s path %s method %d: status %d, expected 404",
                         cases[i].base ? cases[i].base : "(null)",
                         cases[i].path ? cases[i].path : "(null)", (int)methods[m],
                         fx->resp.status);
            }
            /* the reason is the body's error string */
            {
                json_t *root = json_loads(cases[i].body, 0, NULL);
                const char *reason = json_string_value(json_object_get(root, "error"));
                char expected[128];

                snprintf(expected, sizeof(expected), "%s", reason ? reason : "");
                json_decref(root);
                assert_error(fx, 404, expected, cases[i].body);
            }
            assert_null(fx->resp.username);
            assert_calls(fx, 0, 0, 0);
        }
    }
}

/* The 404 reason names the location's path, which may hold UTF-8 (a
 * <Location "/café">, or in mod_hello.c's <LocationMatch> fallback the
 * decoded request path up to its last '/'). The body must say the same as
 * the reason: its "error" string decodes to the reason's bytes. */
static void test_404_body_names_a_utf8_base(void **state)
{
    static const char reason[] = "not found: use /caf\xc3\xa9/<username>";
    core_fx *fx = *state;
    json_t *root;
    const char *error;
    int same;
    char decoded[128] = "";

    fx->req.base = "/caf\xc3\xa9";
    fx->req.path = "/caf\xc3\xa9/";
    handle(fx);
    assert_int_equal(fx->resp.status, 404);
    assert_string_equal(fx->resp.reason, reason);
    assert_calls(fx, 0, 0, 0);

    root = json_loadb(fx->resp.body, fx->resp.body_len, 0, NULL);
    error = json_string_value(json_object_get(root, "error"));
    same = error != NULL && strcmp(error, reason) == 0;
    snprintf(decoded, sizeof(decoded), "%s", error ? error : "(not a JSON error body)");
    json_decref(root);
    if (!same) {
        fail_msg("body %s decodes to \"%s\", expected \"%s\"", fx->resp.body, decoded, reason);
    }
}

/* ---- 405 ----------------------------------------------------------------- */

static void test_other_method_405(void **state)
{
    static const char *const paths[] = { "/hello/alice", "/hello/zed", "/hello/bob1", "/hello/" L65,
                                         "/hello/a%20b" };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(paths); i++) {
        fx_reset(fx);
        fx->req.method = HELLO_METHOD_OTHER;
        fx->req.path = paths[i];
        fx->req.content_type = "text/plain";
        fake_reader_set(&fx->reader, GOOD_BODY);
        handle(fx);
        assert_error(fx, 405, R_METHOD, ERROR_BODY(R_METHOD));
        assert_string_equal(fx->resp.allow, "GET, HEAD, PUT");
        assert_null(fx->resp.username);
        assert_calls(fx, 0, 0, 0);
    }
}

/* ---- 400 for the username ------------------------------------------------ */

static void test_invalid_username_400(void **state)
{
    static const char *const paths[] = {
        "/hello/bob1", "/hello/a-b",     "/hello/a_b",         "/hello/a.b",
        "/hello/a b",  "/hello/%41",     "/hello/caf\xc3\xa9", "/hello/" L65,
        "/hello/..",   "/hello/alice\n", "/hello/1",           "/hello/%",
    };
    static const hello_method methods[] = { HELLO_METHOD_GET, HELLO_METHOD_HEAD, HELLO_METHOD_PUT };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(paths); i++) {
        for (size_t m = 0; m < N_ELEMS(methods); m++) {
            fx_reset(fx);
            fx->req.method = methods[m];
            fx->req.path = paths[i];
            fx->req.content_type = "text/plain"; /* would be 415: the username comes first */
            fake_reader_set(&fx->reader, GOOD_BODY);
            handle(fx);
            assert_error(fx, 400, R_USERNAME, ERROR_BODY(R_USERNAME));
            assert_null(fx->resp.username);
            assert_calls(fx, 0, 0, 0);
        }
    }
}

/* ---- PUT ----------------------------------------------------------------- */

static void test_put_new_user(void **state)
{
    core_fx *fx = *state;
    hello_date saved;

    set_put(fx, "/hello/erin", "{\"dateOfBirth\":\"2001-03-04\"}");
    assert_false(fake_store_lookup(&fx->store, "erin", &saved));
    handle(fx);
    assert_no_content(fx);
    assert_calls(fx, 0, 1, 1);
    assert_int_equal(fx->reader.last_max, 4096);
    assert_string_equal(fx->store.last_put_username, "erin");
    assert_string_equal(fx->resp.username, "erin");
    assert_true(fake_store_lookup(&fx->store, "erin", &saved));
    assert_int_equal(saved.year, 2001);
    assert_int_equal(saved.month, 3);
    assert_int_equal(saved.day, 4);

    /* and GET sees it: 2024-06-15 -> 2025-03-04 */
    set_get(fx, "/hello/erin");
    handle(fx);
    assert_greeting(fx, "{\"message\":\"Hello, erin! Your birthday is in 262 day(s)\"}");
}

static void test_put_update(void **state)
{
    core_fx *fx = *state;
    hello_date saved;

    set_put(fx, "/hello/alice", "{\"dateOfBirth\":\"1991-06-16\"}");
    handle(fx);
    assert_no_content(fx);
    assert_calls(fx, 0, 1, 1);
    assert_true(fake_store_lookup(&fx->store, "alice", &saved));
    assert_int_equal(saved.year, 1991);
    assert_int_equal(saved.month, 6);
    assert_int_equal(saved.day, 16);
    assert_int_equal(fx->store.nrows, 4); /* replaced, not added */

    set_get(fx, "/hello/alice");
    handle(fx);
    assert_greeting(fx, "{\"message\":\"Hello, alice! Your birthday is in 1 day(s)\"}");

    /* "Alice" is another user */
    set_put(fx, "/hello/Alice", "{\"dateOfBirth\":\"1980-01-01\"}");
    handle(fx);
    assert_no_content(fx);
    assert_true(fake_store_lookup(&fx->store, "alice", &saved));
    assert_int_equal(saved.year, 1991);
    assert_int_equal(fx->store.nrows, 5);
}

/* Content-Type absent or application/json with parameters, any case. */
static void test_put_accepted_content_types(void **state)
{
    static const char *const types[] = { NULL,
                                         "application/json",
                                         "Application/JSON",
                                         "application/json; charset=utf-8",
                                         "application/json;charset=UTF-8",
                                         " application/json " };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(types); i++) {
        fx_reset(fx);
        set_put(fx, "/hello/erin", GOOD_BODY);
        fx->req.content_type = types[i];
        handle(fx);
        assert_no_content(fx);
        assert_calls(fx, 0, 1, 1);
    }
}

static void test_put_415_without_reading(void **state)
{
    static const char *const types[] = {
        "",
        "text/plain",
        "application/jsonp",
        "application/json-patch+json",
        "application/x-json",
        "multipart/form-data",
        "application/json, text/plain",
        "application/x-www-form-urlencoded",
        "text/json",
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(types); i++) {
        fx_reset(fx);
        set_put(fx, "/hello/alice", GOOD_BODY);
        fx->req.content_type = types[i];
        fake_store_fail_put(&fx->store, "down"); /* 415 comes before the store */
        handle(fx);
        assert_error(fx, 415, R_MEDIA_TYPE, ERROR_BODY(R_MEDIA_TYPE));
        assert_calls(fx, 0, 0, 0);
    }
}

static void test_put_413(void **state)
{
    core_fx *fx = *state;
    char *big;

    /* 28 bytes over a limit of 16 */
    set_put(fx, "/hello/alice", GOOD_BODY);
    fx->req.max_body = 16;
    handle(fx);
    assert_error(fx, 413, "request body too large: the limit is 16 bytes",
                 ERROR_BODY("request body too large: the limit is 16 bytes"));
    assert_calls(fx, 0, 0, 1);
    assert_int_equal(fx->reader.last_max, 16);

    /* 4097 bytes of a valid body (padded with spaces) over the default 4096 */
    big = apr_palloc(fx->pool, 4097);
    memset(big, ' ', 4097);
    memcpy(big, GOOD_BODY, strlen(GOOD_BODY));
    fx_reset(fx);
    set_put(fx, "/hello/alice", NULL);
    fake_reader_set_mem(&fx->reader, big, 4097);
    handle(fx);
    assert_error(fx, 413, "request body too large: the limit is 4096 bytes",
                 ERROR_BODY("request body too large: the limit is 4096 bytes"));
    assert_calls(fx, 0, 0, 1);

    /* exactly at the limit is fine */
    fake_reader_set_mem(&fx->reader, big, 4096);
    handle(fx);
    assert_no_content(fx);
    assert_calls(fx, 0, 1, 1);

    fx_reset(fx);
    set_put(fx, "/hello/alice", GOOD_BODY);
    fx->req.max_body = strlen(GOOD_BODY);
    handle(fx);
    assert_no_content(fx);
    fx->req.max_body = strlen(GOOD_BODY) - 1;
    handle(fx);
    assert_int_equal(fx->resp.status, 413);
}

static void test_put_read_failed(void **state)
{
    static const struct {
        int reader_status; /* 0: the reader leaves *status alone */
        int status;
        const char *reason;
    } cases[] = {
        { 400, 400, R_READ }, { 408, 408, R_READ_TIMEOUT },
        { 0, 400, R_READ },   { 500, 400, R_READ }, /* never a 500 */
        { 413, 400, R_READ },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        fx_reset(fx);
        set_put(fx, "/hello/alice", GOOD_BODY);
        fake_reader_fail(&fx->reader, cases[i].reader_status);
        handle(fx);
        if (fx->resp.status != cases[i].status) {
            fail_msg("reader FAILED with %d: status %d, expected %d", cases[i].reader_status,
                     fx->resp.status, cases[i].status);
        }
        assert_error(fx, cases[i].status, cases[i].reason,
                     cases[i].status == 408 ? ERROR_BODY(R_READ_TIMEOUT) : ERROR_BODY(R_READ));
        assert_calls(fx, 0, 0, 1);
    }
}

static void test_put_body_errors(void **state)
{
    static const struct {
        const char *body; /* NULL: the reader answers OK with no body at all */
        const char *reason;
        const char *error_body;
    } cases[] = {
        { "", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { NULL, R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "{", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "{}x", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "[]", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "[{\"dateOfBirth\":\"2000-01-01\"}]", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "null", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "1", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "\"2000-01-01\"", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "{\"dateOfBirth\":\"2000-01-01\",\"dateOfBirth\":\"2000-01-02\"}", R_NOT_OBJECT,
          NOT_OBJECT_BODY },
        { "{\"x\":\"\xff\",\"dateOfBirth\":\"2000-01-01\"}", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "{\"dateOfBirth\":\"2000-01-01\\u0000\"}", R_NOT_OBJECT, NOT_OBJECT_BODY },
        { "{}", R_NO_DATE, ERROR_BODY(R_NO_DATE) },
        { "{\"dateOfBirth\":null}", R_NO_DATE, ERROR_BODY(R_NO_DATE) },
        { "{\"dateOfBirth\":20000101}", R_NO_DATE, ERROR_BODY(R_NO_DATE) },
        { "{\"dateofbirth\":\"2000-01-01\"}", R_NO_DATE, ERROR_BODY(R_NO_DATE) },
        { "{\"dateOfBirth\":\"2000-02-30\"}", R_BAD_DATE, ERROR_BODY(R_BAD_DATE) },
        { "{\"dateOfBirth\":\"2001-02-29\"}", R_BAD_DATE, ERROR_BODY(R_BAD_DATE) },
        { "{\"dateOfBirth\":\"0999-12-31\"}", R_BAD_DATE, ERROR_BODY(R_BAD_DATE) },
        { "{\"dateOfBirth\":\"2000-1-1\"}", R_BAD_DATE, ERROR_BODY(R_BAD_DATE) },
        { "{\"dateOfBirth\":\"\"}", R_BAD_DATE, ERROR_BODY(R_BAD_DATE) },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *reason = cases[i].reason;

        fx_reset(fx);
        set_put(fx, "/hello/alice", cases[i].body);
        fx->reader.null_body = cases[i].body == NULL;
        fake_store_fail_put(&fx->store, "down"); /* 400 comes before the store */
        handle(fx);
        if (fx->resp.status != 400) {
            fail_msg("body %s: status %d, expected 400", cases[i].body ? cases[i].body : "NULL",
                     fx->resp.status);
        }
        assert_error(fx, 400, reason, cases[i].error_body);
        assert_calls(fx, 0, 0, 1);
    }
}

static void test_put_date_against_today(void **state)
{
    static const struct {
        hello_date today;
        const char *dob;
        int status;
    } cases[] = {
        { { 2024, 6, 15 }, "2024-06-15", 400 }, /* today */
        { { 2024, 6, 15 }, "2024-06-16", 400 }, /* tomorrow */
        { { 2024, 6, 15 }, "2025-01-01", 400 }, { { 2024, 6, 15 }, "9999-12-31", 400 },
        { { 2024, 6, 15 }, "2024-06-14", 204 }, /* yesterday */
        { { 2024, 6, 15 }, "1000-01-01", 204 }, { { 2024, 1, 1 }, "2023-12-31", 204 },
        { { 2024, 1, 1 }, "2024-01-01", 400 },  { { 2023, 12, 31 }, "2024-01-01", 400 },
        { { 2024, 2, 29 }, "2024-02-28", 204 }, { { 2024, 2, 29 }, "2024-02-29", 400 },
        { { 2024, 3, 1 }, "2024-02-29", 204 },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *body = apr_psprintf(fx->pool, "{\"dateOfBirth\":\"%s\"}", cases[i].dob);

        fx_reset(fx);
        set_put(fx, "/hello/erin", body);
        fx->req.today = cases[i].today;
        handle(fx);
        if (fx->resp.status != cases[i].status) {
            fail_msg("dob %s on %04d-%02d-%02d: status %d, expected %d", cases[i].dob,
                     cases[i].today.year, cases[i].today.month, cases[i].today.day, fx->resp.status,
                     cases[i].status);
        }
        if (cases[i].status == 204) {
            assert_no_content(fx);
            assert_calls(fx, 0, 1, 1);
        }
        else {
            assert_error(fx, 400, R_FUTURE_DATE, ERROR_BODY(R_FUTURE_DATE));
            assert_calls(fx, 0, 0, 1);
        }
    }
}

/* ---- 503 ----------------------------------------------------------------- */

static void test_get_store_unavailable(void **state)
{
    static const int retry[] = { 7, 1, 120 };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(retry); i++) {
        fx_reset(fx);
        fx->req.retry_after = retry[i];
        fake_store_fail_get(&fx->store, "Can't connect to MySQL server on 'db' (111)");
        handle(fx);
        assert_error(fx, 503, R_UNAVAILABLE, ERROR_BODY(R_UNAVAILABLE));
        assert_int_equal(fx->resp.retry_after, retry[i]);
        assert_string_equal(fx->resp.log_detail, "Can't connect to MySQL server on 'db' (111)");
        assert_calls(fx, 1, 0, 0);
    }
    /* a broken put does not matter to GET */
    fx_reset(fx);
    fake_store_fail_put(&fx->store, "down");
    handle(fx);
    assert_int_equal(fx->resp.status, 200);
}

static void test_put_store_unavailable(void **state)
{
    core_fx *fx = *state;
    hello_date saved;

    set_put(fx, "/hello/alice", GOOD_BODY);
    fx->req.retry_after = 30;
    fake_store_fail_put(&fx->store, "Lost connection to MySQL server during query");
    handle(fx);
    assert_error(fx, 503, R_UNAVAILABLE, ERROR_BODY(R_UNAVAILABLE));
    assert_int_equal(fx->resp.retry_after, 30);
    assert_string_equal(fx->resp.log_detail, "Lost connection to MySQL server during query");
    assert_calls(fx, 0, 1, 1);
    assert_true(fake_store_lookup(&fx->store, "alice", &saved));
    assert_int_equal(saved.year, FAKE_ALICE_DOB.year); /* unchanged */

    /* a broken get does not matter to PUT (it never reads) */
    fx_reset(fx);
    set_put(fx, "/hello/alice", GOOD_BODY);
    fake_store_fail_get(&fx->store, "down");
    handle(fx);
    assert_no_content(fx);
    assert_calls(fx, 0, 1, 1);
}

/* A 503 always carries a Retry-After, even when the request has none set. */
static void test_retry_after_always_positive(void **state)
{
    core_fx *fx = *state;

    fake_store_fail_get(&fx->store, "down");
    fx->req.retry_after = 0;
    handle(fx);
    assert_int_equal(fx->resp.status, 503);
    assert_true(fx->resp.retry_after > 0);
}

/* A row the module never writes is the store's fault: 503, not 500. */
static void test_store_returns_invalid_date(void **state)
{
    static const hello_date bad[] = {
        { 2001, 2, 29 }, { 2023, 2, 30 }, { 2023, 4, 31 }, { 2023, 13, 1 }, { 2023, 0, 0 },
        { 999, 12, 31 }, { 0, 0, 0 },     { 10000, 1, 1 }, { -1, 6, 15 },   { 2023, 6, 32 },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        fx_reset(fx);
        fake_store_set(&fx->store, "alice", bad[i]);
        handle(fx);
        if (fx->resp.status != 503) {
            fail_msg("stored %d-%d-%d: status %d, expected 503", bad[i].year, bad[i].month,
                     bad[i].day, fx->resp.status);
        }
        assert_error(fx, 503, R_UNAVAILABLE, ERROR_BODY(R_UNAVAILABLE));
        assert_int_equal(fx->resp.retry_after, 7);
        assert_true(strlen(fx->resp.log_detail) > 0);
        assert_calls(fx, 1, 0, 0);
    }
}

/* ---- order of checks (docs/API.md, "Order of checks") -------------------- */

static void test_order_of_checks(void **state)
{
    enum { STORE_UP, STORE_DOWN };
    static const struct {
        const char *what;
        hello_method method;
        const char *path;
        const char *content_type;
        const char *body;
        size_t max_body;
        int read_fail; /* reader FAILED with this status; 0: no */
        int store;
        int status;
        const char *reason;
        int gets, puts, reads;
    } cases[] = {
        { "404 path beats 405 method", HELLO_METHOD_OTHER, "/hello/a/b", NULL, NULL, 4096, 0,
          STORE_DOWN, 404, "not found: use /hello/<username>", 0, 0, 0 },
        { "404 path beats 400 username", HELLO_METHOD_GET, "/hello/bob1/", NULL, NULL, 4096, 0,
          STORE_DOWN, 404, "not found: use /hello/<username>", 0, 0, 0 },
        { "405 method beats 400 username", HELLO_METHOD_OTHER, "/hello/bob1", NULL, NULL, 4096, 0,
          STORE_DOWN, 405, R_METHOD, 0, 0, 0 },
        { "405 method beats 503", HELLO_METHOD_OTHER, "/hello/alice", NULL, NULL, 4096, 0,
          STORE_DOWN, 405, R_METHOD, 0, 0, 0 },
        { "400 username beats 415", HELLO_METHOD_PUT, "/hello/bob1", "text/plain", "{", 4, 400,
          STORE_DOWN, 400, R_USERNAME, 0, 0, 0 },
        { "400 username beats 503 (GET)", HELLO_METHOD_GET, "/hello/bob1", NULL, NULL, 4096, 0,
          STORE_DOWN, 400, R_USERNAME, 0, 0, 0 },
        { "415 beats 413", HELLO_METHOD_PUT, "/hello/alice", "text/plain", GOOD_BODY, 4, 0,
          STORE_DOWN, 415, R_MEDIA_TYPE, 0, 0, 0 },
        { "415 beats a failing read", HELLO_METHOD_PUT, "/hello/alice", "text/plain", GOOD_BODY,
          4096, 408, STORE_DOWN, 415, R_MEDIA_TYPE, 0, 0, 0 },
        { "413 beats 400 body", HELLO_METHOD_PUT, "/hello/alice", NULL, "{not json at all", 4, 0,
          STORE_DOWN, 413, "request body too large: the limit is 4 bytes", 0, 0, 1 },
        { "408 read beats 400 body", HELLO_METHOD_PUT, "/hello/alice", NULL, "{", 4096, 408,
          STORE_DOWN, 408, R_READ_TIMEOUT, 0, 0, 1 },
        { "400 body beats 503", HELLO_METHOD_PUT, "/hello/alice", NULL, "{", 4096, 0, STORE_DOWN,
          400, R_NOT_OBJECT, 0, 0, 1 },
        { "400 date in the future beats 503", HELLO_METHOD_PUT, "/hello/alice", NULL,
          "{\"dateOfBirth\":\"2030-01-01\"}", 4096, 0, STORE_DOWN, 400, R_FUTURE_DATE, 0, 0, 1 },
        { "503 beats 404 unknown user", HELLO_METHOD_GET, "/hello/zed", NULL, NULL, 4096, 0,
          STORE_DOWN, 503, R_UNAVAILABLE, 1, 0, 0 },
        { "GET ignores Content-Type and body", HELLO_METHOD_GET, "/hello/zed", "text/plain", "{", 4,
          400, STORE_UP, 404, R_UNKNOWN_USER, 1, 0, 0 },
    };
    core_fx *fx = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        fx_reset(fx);
        fx->req.method = cases[i].method;
        fx->req.path = cases[i].path;
        fx->req.content_type = cases[i].content_type;
        fx->req.max_body = cases[i].max_body;
        fake_reader_set(&fx->reader, cases[i].body);
        if (cases[i].read_fail) {
            fake_reader_fail(&fx->reader, cases[i].read_fail);
        }
        if (cases[i].store == STORE_DOWN) {
            fake_store_fail_get(&fx->store, "down");
            fake_store_fail_put(&fx->store, "down");
        }
        handle(fx);
        if (fx->resp.status != cases[i].status || fx->resp.reason == NULL ||
            strcmp(fx->resp.reason, cases[i].reason) != 0) {
            fail_msg("%s: %d \"%s\", expected %d \"%s\"", cases[i].what, fx->resp.status,
                     fx->resp.reason ? fx->resp.reason : "(null)", cases[i].status,
                     cases[i].reason);
        }
        if (fx->store.get_calls != cases[i].gets || fx->store.put_calls != cases[i].puts ||
            fx->reader.calls != cases[i].reads) {
            fail_msg("%s: calls get %d put %d read %d, expected %d %d %d", cases[i].what,
                     fx->store.get_calls, fx->store.put_calls, fx->reader.calls, cases[i].gets,
                     cases[i].puts, cases[i].reads);
        }
    }
}

/* ---- never a 500 --------------------------------------------------------- */

/* The invariants every answer keeps, whatever the request and the store. */
static void check_invariants(const core_fx *fx, const char *what)
{
    const hello_response *r = &fx->resp;
    const hello_method method = fx->req.method;
    json_error_t error;
    json_t *root;
    const char *key;
    int ok_json = 1;

    switch (r->status) {
    case 200:
    case 204:
    case 400:
    case 404:
    case 405:
    case 408:
    case 413:
    case 415:
    case 503:
        break;
    default:
        fail_msg("%s: status %d", what, r->status);
    }
    if ((r->body == NULL) != (r->status == 204)) {
        fail_msg("%s: status %d with body %s", what, r->status, r->body ? r->body : "NULL");
    }
    if (r->body != NULL && r->body_len != strlen(r->body)) {
        fail_msg("%s: body_len %zu for a body of %zu bytes", what, r->body_len, strlen(r->body));
    }
    if (r->body == NULL && r->body_len != 0) {
        fail_msg("%s: body_len %zu without a body", what, r->body_len);
    }
    if ((r->reason != NULL) != (r->status >= 400)) {
        fail_msg("%s: status %d, reason %s", what, r->status, r->reason ? r->reason : "NULL");
    }
    if ((r->allow != NULL) != (r->status == 405) ||
        (r->allow != NULL && strcmp(r->allow, "GET, HEAD, PUT") != 0)) {
        fail_msg("%s: status %d, allow %s", what, r->status, r->allow ? r->allow : "NULL");
    }
    if ((r->retry_after > 0) != (r->status == 503) || r->retry_after < 0) {
        fail_msg("%s: status %d, retry_after %d", what, r->status, r->retry_after);
    }
    if ((r->log_detail != NULL) != (r->status == 503)) {
        fail_msg("%s: status %d, log_detail %s", what, r->status,
                 r->log_detail ? r->log_detail : "NULL");
    }
    /* The body is one JSON object: {"message":...} on 200, else {"error":reason}. */
    if (r->body != NULL) {
        root = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &error);
        key = r->status == 200 ? "message" : "error";
        if (!json_is_object(root) || json_object_size(root) != 1 ||
            !json_is_string(json_object_get(root, key))) {
            ok_json = 0;
        }
        else if (r->status != 200 &&
                 strcmp(json_string_value(json_object_get(root, key)), r->reason) != 0) {
            ok_json = 0;
        }
        json_decref(root);
        if (!ok_json) {
            fail_msg("%s: body %s is not the expected JSON object", what, r->body);
        }
    }
    /* Who was called. */
    if (fx->store.get_calls > 1 || fx->store.put_calls > 1 || fx->reader.calls > 1) {
        fail_msg("%s: called more than once", what);
    }
    if (method != HELLO_METHOD_PUT && (fx->reader.calls != 0 || fx->store.put_calls != 0)) {
        fail_msg("%s: a %d read the body or wrote", what, (int)method);
    }
    if (method != HELLO_METHOD_GET && method != HELLO_METHOD_HEAD && fx->store.get_calls != 0) {
        fail_msg("%s: a %d read the store", what, (int)method);
    }
    if (fx->store.put_calls == 1 && r->status != 204 && r->status != 503) {
        fail_msg("%s: the store was written but the answer is %d", what, r->status);
    }
    if (r->status == 204 && fx->store.put_calls != 1) {
        fail_msg("%s: 204 without a write", what);
    }
    if (r->status == 200 && fx->store.get_calls != 1) {
        fail_msg("%s: 200 without a read", what);
    }
    if ((r->status == 415 || r->status == 405) &&
        (fx->reader.calls | fx->store.get_calls | fx->store.put_calls) != 0) {
        fail_msg("%s: %d after touching the body or the store", what, r->status);
    }
}

static void test_never_500(void **state)
{
    static const hello_method methods[] = { HELLO_METHOD_GET, HELLO_METHOD_HEAD, HELLO_METHOD_PUT,
                                            HELLO_METHOD_OTHER };
    static const char *const bases[] = { "/hello", NULL, "/api/v1/hello/" };
    static const char *const paths[] = {
        "/hello/alice", "/hello/Bob",     "/hello/zed",          "/hello/bob1", "/hello/", "/hello",
        "/hello/a/b",   "/other/x",       "/hello/caf\xc3\xa9",  "/hello/" L65, "",        "/",
        "/hello/a b",   "/h\xc3\xa9llo/", "/h\xc3\xa9llo/alice", "/alice",
    };
    static const char *const types[] = { NULL, "application/json", "text/plain",
                                         "application/json; charset=utf-8", "" };
    static const char *const bodies[] = {
        GOOD_BODY,
        "{\"dateOfBirth\":\"2024-06-15\"}",
        "{\"dateOfBirth\":\"2999-01-01\"}",
        "",
        "{",
        "[]",
        "null",
        "{}",
        "{\"dateOfBirth\":1}",
        "{\"dateOfBirth\":\"2001-02-29\"}",
        "{\"dateOfBirth\":\"2000-01-01\",\"dateOfBirth\":\"2000-01-01\"}",
        "{\"dateOfBirth\":\"\xff\"}",
        NULL, /* filled below: larger than max_body */
        NULL, /* filled below: 3000 levels of '[' */
    };
    const char *body_list[N_ELEMS(bodies)];
    enum { STORE_OK, GET_DOWN, PUT_DOWN, BOTH_DOWN, BAD_ROWS, STORE_STATES };
    enum { READ_OK, READ_400, READ_408, READ_UNSET, READ_500, READ_MODES };
    core_fx *fx = *state;
    apr_pool_t *scratch = NULL;
    char *big = apr_palloc(fx->pool, 5000);
    char *deep = apr_palloc(fx->pool, 3001);
    long runs = 0;
    long by_status[600] = { 0 };

    memset(big, ' ', 5000);
    memcpy(big, GOOD_BODY, strlen(GOOD_BODY));
    big[4999] = '\0';
    memset(deep, '[', 3000);
    deep[3000] = '\0';
    memcpy(body_list, bodies, sizeof(bodies));
    body_list[N_ELEMS(bodies) - 2] = big;
    body_list[N_ELEMS(bodies) - 1] = deep;
    assert_int_equal(apr_pool_create(&scratch, fx->pool), APR_SUCCESS);

    for (size_t m = 0; m < N_ELEMS(methods); m++)
        for (size_t b = 0; b < N_ELEMS(bases); b++)
            for (size_t p = 0; p < N_ELEMS(paths); p++)
                for (size_t t = 0; t < N_ELEMS(types); t++)
                    for (size_t k = 0; k < N_ELEMS(body_list); k++)
                        for (int s = 0; s < STORE_STATES; s++)
                            for (int rd = 0; rd < READ_MODES; rd++) {
                                char what[160];

                                /* The read mode only matters to PUT. */
                                if (methods[m] != HELLO_METHOD_PUT && rd != READ_OK) {
                                    continue;
                                }
                                fake_store_init(&fx->store);
                                fake_reader_init(&fx->reader, body_list[k], strlen(body_list[k]));
                                fx->req.method = methods[m];
                                fx->req.base = bases[b];
                                fx->req.path = paths[p];
                                fx->req.content_type = types[t];
                                fx->req.today = D(2024, 6, 15);
                                fx->req.max_body = 4096;
                                fx->req.retry_after = 5;
                                switch (s) {
                                case GET_DOWN:
                                    fake_store_fail_get(&fx->store, "get down");
                                    break;
                                case PUT_DOWN:
                                    fake_store_fail_put(&fx->store, "put down");
                                    break;
                                case BOTH_DOWN:
                                    fake_store_fail_get(&fx->store, "get down");
                                    fake_store_fail_put(&fx->store, "put down");
                                    break;
                                case BAD_ROWS:
                                    fake_store_set(&fx->store, "alice", D(2001, 2, 29));
                                    fake_store_set(&fx->store, "Bob", D(999, 1, 1));
                                    break;
                                default:
                                    break;
                                }
                                switch (rd) {
                                case READ_400:
                                    fake_reader_fail(&fx->reader, 400);
                                    break;
                                case READ_408:
                                    fake_reader_fail(&fx->reader, 408);
                                    break;
                                case READ_UNSET:
                                    fake_reader_fail(&fx->reader, 0);
                                    break;
                                case READ_500:
                                    fake_reader_fail(&fx->reader, 500);
                                    break;
                                default:
                                    break;
                                }
                                memset(&fx->resp, 0xa5, sizeof(fx->resp));
                                hello_handle(&fx->req, &fx->store.iface, scratch, &fx->resp);
                                snprintf(what, sizeof(what),
                                         "method %zu base %zu path %zu type %zu body %zu store %d "
                                         "read %d",
                                         m, b, p, t, k, s, rd);
                                check_invariants(fx, what);
                                by_status[fx->resp.status]++;
                                runs++;
                                apr_pool_clear(scratch);
                            }
    apr_pool_destroy(scratch);
    /* Every answer the core can give came up at least once. */
    {
        static const int statuses[] = { 200, 204, 400, 404, 405, 408, 413, 415, 503 };
        for (size_t i = 0; i < N_ELEMS(statuses); i++) {
            if (by_status[statuses[i]] == 0) {
                fail_msg("no combination answered %d", statuses[i]);
            }
        }
    }
    assert_int_equal(by_status[500], 0);
    print_message("      %ld combinations, none answered 500\n", runs);
}

/* ---- DELETE (HelloAllowDelete) ------------------------------------------- */

#define R_METHOD_DELETE "method not allowed: use GET, HEAD, PUT or DELETE"

static void test_delete_disabled_405(void **state)
{
    core_fx *fx = *state;

    fx_reset(fx);
    fx->req.method = HELLO_METHOD_DELETE;
    handle(fx);
    assert_error(fx, 405, R_METHOD, ERROR_BODY(R_METHOD));
    assert_int_equal(fx->store.del_calls, 0);
    assert_true(fake_store_lookup(&fx->store, "alice", &(hello_date){ 0, 0, 0 }));

    /* Enabled, but a store that cannot erase: still 405, never a crash. */
    fx_reset(fx);
    fx->req.method = HELLO_METHOD_DELETE;
    fx->req.allow_delete = 1;
    fx->store.iface.del = NULL;
    handle(fx);
    assert_error(fx, 405, R_METHOD, ERROR_BODY(R_METHOD));
}

static void test_delete_enabled(void **state)
{
    core_fx *fx = *state;
    hello_date dob;

    fx_reset(fx);
    fx->req.method = HELLO_METHOD_DELETE;
    fx->req.allow_delete = 1;
    handle(fx);
    assert_no_content(fx);
    assert_int_equal(fx->store.del_calls, 1);
    assert_false(fake_store_lookup(&fx->store, "alice", &dob));
    assert_true(fake_store_lookup(&fx->store, "Bob", &dob));

    /* Nothing left to erase. */
    handle(fx);
    assert_error(fx, 404, R_UNKNOWN_USER, ERROR_BODY(R_UNKNOWN_USER));

    /* Case matters: "bob" is not "Bob". */
    fx->req.path = "/hello/bob";
    handle(fx);
    assert_error(fx, 404, R_UNKNOWN_USER, ERROR_BODY(R_UNKNOWN_USER));
    assert_true(fake_store_lookup(&fx->store, "Bob", &dob));

    fx->req.path = "/hello/bob1";
    handle(fx);
    assert_error(fx, 400, R_USERNAME, ERROR_BODY(R_USERNAME));
    assert_int_equal(fx->store.del_calls, 0);

    fx->req.path = "/hello/Bob";
    fx->store.del_unavailable = 1;
    fx->store.del_error = "Lost connection to server during query";
    handle(fx);
    assert_error(fx, 503, R_UNAVAILABLE, ERROR_BODY(R_UNAVAILABLE));
    assert_string_equal(fx->resp.log_detail, "Lost connection to server during query");
    assert_true(fake_store_lookup(&fx->store, "Bob", &dob));

    /* Other methods now name DELETE in Allow. */
    fx_reset(fx);
    fx->req.method = HELLO_METHOD_OTHER;
    fx->req.allow_delete = 1;
    handle(fx);
    assert_int_equal(fx->resp.status, 405);
    assert_string_equal(fx->resp.allow, "GET, HEAD, PUT, DELETE");
    assert_string_equal(fx->resp.reason, R_METHOD_DELETE);
}

#define CORE_TEST(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CORE_TEST(test_get_greetings),
        CORE_TEST(test_get_unknown_user),
        CORE_TEST(test_head_same_as_get),
        CORE_TEST(test_path_shapes_404),
        CORE_TEST(test_404_body_names_a_utf8_base),
        CORE_TEST(test_other_method_405),
        CORE_TEST(test_invalid_username_400),
        CORE_TEST(test_put_new_user),
        CORE_TEST(test_put_update),
        CORE_TEST(test_put_accepted_content_types),
        CORE_TEST(test_put_415_without_reading),
        CORE_TEST(test_put_413),
        CORE_TEST(test_put_read_failed),
        CORE_TEST(test_put_body_errors),
        CORE_TEST(test_put_date_against_today),
        CORE_TEST(test_get_store_unavailable),
        CORE_TEST(test_put_store_unavailable),
        CORE_TEST(test_retry_after_always_positive),
        CORE_TEST(test_store_returns_invalid_date),
        CORE_TEST(test_order_of_checks),
        CORE_TEST(test_never_500),
        CORE_TEST(test_delete_disabled_405),
        CORE_TEST(test_delete_enabled),
    };

    return cmocka_run_group_tests_name("core", tests, unit_group_setup, unit_group_teardown);
}
