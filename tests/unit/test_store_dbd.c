/* Unit tests for src/store_dbd.c, driven through apr-util's real sqlite3
 * driver on a database file of the test's own: what each store call answers,
 * statements prepared once per connection, how many connections a call takes
 * (the second only after a failed one, and only while the database was last
 * seen answering), statement errors, the metrics and the trace. The take
 * function stands in for mod_dbd: it lends scripted connections or NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include <apr_dbd.h>
#include <apr_file_io.h>
#include <apr_hash.h>

#include "fake_store.h"
#include "hello/store_dbd.h"

static const hello_dbd_statement get_stmt = {
    "hello_get", "SELECT date_of_birth FROM hello_users WHERE username = %s"
};
static const hello_dbd_statement put_stmt = {
    "hello_put", "INSERT OR REPLACE INTO hello_users (username, date_of_birth) VALUES (%s, %s)"
};
static const hello_dbd_statement del_stmt = { "hello_delete",
                                              "DELETE FROM hello_users WHERE username = %s" };

#define MAX_LOANS 4

typedef struct fixture {
    apr_pool_t *pool;
    const apr_dbd_driver_t *driver;
    char path[64];
    ap_dbd_t conns[2];
    /* What the fake mod_dbd lends, loan by loan: an index into conns, or -1
     * for NULL. */
    int script[MAX_LOANS];
    int loans;
    int again[MAX_LOANS];
    int traces;
    const char *last_trace;
    hello_dbd_state state;
    hello_metrics metrics;
    hello_dbd_store ctx;
    hello_store store;
} fixture;

static ap_dbd_t *fake_take(void *arg, int again)
{
    fixture *fx = arg;
    int which = fx->loans < MAX_LOANS ? fx->script[fx->loans] : -1;

    if (fx->loans < MAX_LOANS) {
        fx->again[fx->loans] = again;
    }
    fx->loans++;
    return which >= 0 ? &fx->conns[which] : NULL;
}

static void fake_trace(void *arg, const char *line)
{
    fixture *fx = arg;

    fx->traces++;
    fx->last_trace = apr_pstrdup(fx->pool, line);
}

static void open_conn(fixture *fx, ap_dbd_t *conn)
{
    const char *err = NULL;
    int nrows = 0;

    apr_pool_create(&conn->pool, fx->pool);
    conn->driver = fx->driver;
    conn->prepared = apr_hash_make(conn->pool);
    assert_int_equal(apr_dbd_open_ex(fx->driver, conn->pool, fx->path, &conn->handle, &err),
                     APR_SUCCESS);
    assert_int_equal(apr_dbd_query(fx->driver, conn->handle, &nrows,
                                   "CREATE TABLE IF NOT EXISTS hello_users (username TEXT "
                                   "PRIMARY KEY, date_of_birth TEXT NOT NULL)"),
                     0);
}

/* A new request on the same process: fresh store context, same state. */
static void new_request(fixture *fx)
{
    memset(&fx->ctx, 0, sizeof(fx->ctx));
    fx->ctx.take = fake_take;
    fx->ctx.trace = fake_trace;
    fx->ctx.arg = fx;
    fx->ctx.get = &get_stmt;
    fx->ctx.put = &put_stmt;
    fx->ctx.del = &del_stmt;
    fx->ctx.metrics = &fx->metrics;
    fx->ctx.state = &fx->state;
    hello_dbd_store_init(&fx->store, &fx->ctx);
    fx->loans = 0;
    for (int i = 0; i < MAX_LOANS; i++) {
        fx->script[i] = 0;
        fx->again[i] = -1;
    }
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    apr_pool_create(&fx->pool, NULL);
    apr_dbd_init(fx->pool);
    assert_int_equal(apr_dbd_get_driver(fx->pool, "sqlite3", &fx->driver), APR_SUCCESS);
    snprintf(fx->path, sizeof(fx->path), "/tmp/hello-store-test-%ld.db", (long)getpid());
    unlink(fx->path);
    open_conn(fx, &fx->conns[0]);
    open_conn(fx, &fx->conns[1]);
    hello_metrics_init(&fx->metrics, 1);
    new_request(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    apr_dbd_close(fx->driver, fx->conns[0].handle);
    apr_dbd_close(fx->driver, fx->conns[1].handle);
    apr_pool_destroy(fx->pool);
    unlink(fx->path);
    free(fx);
    return 0;
}

static hello_store_status get(fixture *fx, const char *user, hello_date *dob, const char **err)
{
    return fx->store.get(fx->store.ctx, fx->pool, user, dob, err);
}

static void test_put_get_delete(void **state)
{
    fixture *fx = *state;
    hello_date dob = { 1990, 7, 4 };
    hello_date got = { 0, 0, 0 };
    const char *err = "unset";

    assert_int_equal(fx->store.put(fx->store.ctx, fx->pool, "alice", dob, &err), HELLO_STORE_OK);
    assert_null(err);
    assert_int_equal(get(fx, "alice", &got, &err), HELLO_STORE_OK);
    assert_int_equal(got.year, 1990);
    assert_int_equal(got.month, 7);
    assert_int_equal(got.day, 4);
    assert_int_equal(get(fx, "bob", &got, &err), HELLO_STORE_NOT_FOUND);
    dob.year = 1991;
    assert_int_equal(fx->store.put(fx->store.ctx, fx->pool, "alice", dob, &err), HELLO_STORE_OK);
    assert_int_equal(get(fx, "alice", &got, &err), HELLO_STORE_OK);
    assert_int_equal(got.year, 1991);
    assert_int_equal(fx->store.del(fx->store.ctx, fx->pool, "alice", &err), HELLO_STORE_OK);
    assert_int_equal(fx->store.del(fx->store.ctx, fx->pool, "alice", &err), HELLO_STORE_NOT_FOUND);
    assert_int_equal(get(fx, "alice", &got, &err), HELLO_STORE_NOT_FOUND);

    /* One connection for the whole request, each statement prepared on it
     * once; the database answered. */
    assert_int_equal(fx->loans, 1);
    assert_int_equal(fx->again[0], 0);
    assert_int_equal(apr_hash_count(fx->conns[0].prepared), 3);
    assert_int_equal(fx->state.answered, 1);
    assert_int_equal(fx->metrics.db_errors, 0);
    assert_int_equal(fx->traces, 8);
    assert_non_null(strstr(fx->last_trace, "mod_hello: store get alice: not found ("));
    assert_non_null(strstr(fx->last_trace, " us, 1 connection)"));
}

static void test_no_delete_statement(void **state)
{
    fixture *fx = *state;

    fx->ctx.del = NULL;
    hello_dbd_store_init(&fx->store, &fx->ctx);
    assert_null(fx->store.del);
}

/* The pooled connection mod_dbd picked failed its check (it returns NULL and
 * drops it): a database that was answering is asked once more. */
static void test_failed_loan_is_retried_once_while_answering(void **state)
{
    fixture *fx = *state;
    hello_date got;
    const char *err = NULL;

    fx->state.answered = 1;
    fx->script[0] = -1;
    fx->script[1] = 1;
    assert_int_equal(get(fx, "nobody", &got, &err), HELLO_STORE_NOT_FOUND);
    assert_int_equal(fx->loans, 2);
    assert_int_equal(fx->again[0], 0);
    assert_int_equal(fx->again[1], 1);
    assert_int_equal(fx->state.answered, 1);
    assert_non_null(strstr(fx->last_trace, "2 connections)"));
    assert_null(strstr(fx->last_trace, hello_dbd_no_connection));

    /* Both fail: one retry only, and the database is now taken as down. */
    new_request(fx);
    fx->script[0] = -1;
    fx->script[1] = -1;
    fx->script[2] = 0;
    assert_int_equal(get(fx, "nobody", &got, &err), HELLO_STORE_UNAVAILABLE);
    assert_ptr_equal(err, hello_dbd_no_connection);
    assert_int_equal(fx->loans, 2);
    assert_int_equal(fx->state.answered, 0);
    assert_int_equal(fx->metrics.db_errors, 1);
}

/* While the database is down, every request makes one loan, not two. */
static void test_one_loan_per_request_while_down(void **state)
{
    fixture *fx = *state;
    hello_date dob = { 1980, 1, 1 };
    const char *err = NULL;

    fx->state.answered = 0;
    for (int i = 0; i < 5; i++) {
        new_request(fx);
        fx->script[0] = -1;
        assert_int_equal(fx->store.put(fx->store.ctx, fx->pool, "carol", dob, &err),
                         HELLO_STORE_UNAVAILABLE);
        assert_int_equal(fx->loans, 1);
    }
    assert_int_equal(fx->metrics.db_errors, 5);
    /* It answers again: the next request succeeds and the state says so. */
    new_request(fx);
    assert_int_equal(fx->store.put(fx->store.ctx, fx->pool, "carol", dob, &err), HELLO_STORE_OK);
    assert_int_equal(fx->state.answered, 1);
}

/* A statement that fails on a live connection failed for its own reason
 * (missing table, denied grant): no second connection would do better. */
static void test_statement_error_on_a_live_connection(void **state)
{
    fixture *fx = *state;
    static const hello_dbd_statement bad = { "hello_bad",
                                             "SELECT x FROM no_such_table WHERE username = %s" };
    hello_date got;
    const char *err = NULL;

    fx->state.answered = 1;
    fx->ctx.get = &bad;
    assert_int_equal(get(fx, "dave", &got, &err), HELLO_STORE_UNAVAILABLE);
    assert_non_null(strstr(err, "preparing hello_bad failed (sqlite3 driver"));
    assert_int_equal(fx->loans, 1);
    assert_int_equal(fx->state.answered, 1);
    assert_int_equal(fx->metrics.db_errors, 1);
}

/* A directive's statement is prepared by mod_dbd; missing from the
 * connection, the call fails with the label in the message. */
static void test_directive_statement_missing(void **state)
{
    fixture *fx = *state;
    static const hello_dbd_statement directive = { "hello_get_7", NULL };
    hello_date got;
    const char *err = NULL;

    fx->ctx.get = &directive;
    assert_int_equal(get(fx, "erin", &got, &err), HELLO_STORE_UNAVAILABLE);
    assert_string_equal(err, "the prepared statement hello_get_7 is missing from the connection");
}

static void test_invalid_stored_date(void **state)
{
    fixture *fx = *state;
    hello_date got;
    const char *err = NULL;
    int nrows = 0;

    assert_int_equal(apr_dbd_query(fx->driver, fx->conns[0].handle, &nrows,
                                   "INSERT INTO hello_users VALUES ('frank', '2001-02-30')"),
                     0);
    fx->state.answered = 1;
    assert_int_equal(get(fx, "frank", &got, &err), HELLO_STORE_UNAVAILABLE);
    assert_string_equal(err, "the stored date of birth is not a valid YYYY-MM-DD date");
    assert_int_equal(fx->loans, 1);
}

/* Every loan and call is watched and ends: afterwards no slot is overdue. */
static void test_loans_and_calls_end_their_watch(void **state)
{
    fixture *fx = *state;
    hello_watchdog *wd = NULL;
    apr_interval_time_t overdue = 0;
    hello_date got;
    const char *err = NULL;

    assert_int_equal(hello_watchdog_create(&wd, fx->pool, 1, apr_time_from_msec(1)), APR_SUCCESS);
    fx->ctx.watchdog = wd;
    fx->state.answered = 1;
    fx->script[0] = -1;
    fx->script[1] = 0;
    assert_int_equal(get(fx, "gina", &got, &err), HELLO_STORE_NOT_FOUND);
    assert_int_equal(hello_watchdog_check(wd, apr_time_now() + apr_time_from_sec(60), &overdue),
                     -1);
    /* The one slot is free again. */
    assert_int_equal(hello_watchdog_begin(wd, HELLO_WATCH_CALL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_delete_statement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_loan_is_retried_once_while_answering, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_loan_per_request_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_error_on_a_live_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directive_statement_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_stored_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loans_and_calls_end_their_watch, setup, teardown),
    };

    return cmocka_run_group_tests_name("store_dbd", tests, unit_group_setup, unit_group_teardown);
}
