/* Unit tests for src/watchdog.c: which calls and loans are overdue, that a
 * cut happens once per overdue call, that waiting in a moving queue is not
 * cut, and that sockets leave the watch with their connection's pool. The
 * sockets are socketpair() ends: a shut one reads end-of-file at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_store.h"
#include "hello/watchdog.h"

#define TIMEOUT apr_time_from_msec(200)

typedef struct fixture {
    apr_pool_t *pool;
    apr_pool_t *conn_pool; /* a connection's own pool */
    hello_watchdog *wd;
    int fds[2];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    apr_pool_create(&fx->pool, NULL);
    apr_pool_create(&fx->conn_pool, fx->pool);
    assert_int_equal(hello_watchdog_create(&fx->wd, fx->pool, 4, TIMEOUT), APR_SUCCESS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fx->fds), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    apr_pool_destroy(fx->pool);
    close(fx->fds[0]);
    close(fx->fds[1]);
    free(fx);
    return 0;
}

/* 1 when the socket has been shut down: a read returns end-of-file at once
 * (the peer has written nothing). */
static int is_shut(int fd)
{
    char c;

    return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static void test_call_within_timeout_is_left_alone(void **state)
{
    fixture *fx = *state;
    apr_interval_time_t overdue = 0;
    int slot;

    hello_watchdog_add_socket(fx->wd, fx->fds[0], fx->conn_pool);
    slot = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
    assert_true(slot >= 0);
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + TIMEOUT / 2, &overdue), -1);
    assert_false(is_shut(fx->fds[0]));
    hello_watchdog_end(fx->wd, slot);
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + 10 * TIMEOUT, &overdue), -1);
    assert_false(is_shut(fx->fds[0]));
}

/* The call's socket is watched before the call starts: an overdue call on a
 * connection that has never finished a call is cut. */
static void test_overdue_call_is_cut_once(void **state)
{
    fixture *fx = *state;
    apr_interval_time_t overdue = 0;
    int slot;

    hello_watchdog_add_socket(fx->wd, fx->fds[0], fx->conn_pool);
    hello_watchdog_add_socket(fx->wd, fx->fds[0], fx->conn_pool); /* once per pool */
    slot = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + 2 * TIMEOUT, &overdue), 1);
    assert_true(overdue > 0 && overdue <= TIMEOUT + apr_time_from_msec(50));
    assert_true(is_shut(fx->fds[0]));
    /* The call has not returned yet: the next checks shut nothing again. */
    for (int i = 3; i < 10; i++) {
        assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + i * TIMEOUT, &overdue), -1);
    }
    hello_watchdog_end(fx->wd, slot);
    /* A new overdue call cuts again. */
    slot = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + 2 * TIMEOUT, &overdue), 1);
    hello_watchdog_end(fx->wd, slot);
}

/* A loan waits for a free connection while the calls holding them keep
 * finishing: never cut, however long the wait. Once nothing finishes for the
 * timeout, it is a hung ping, and cut. */
static void test_loan_in_a_moving_queue_is_not_cut(void **state)
{
    fixture *fx = *state;
    apr_interval_time_t overdue = 0;
    int loan;

    hello_watchdog_add_socket(fx->wd, fx->fds[0], fx->conn_pool);
    loan = hello_watchdog_begin(fx->wd, HELLO_WATCH_LOAN);
    for (int i = 0; i < 12; i++) { /* 3 timeouts of calls that finish */
        int call = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
        apr_sleep(TIMEOUT / 4);
        hello_watchdog_end(fx->wd, call);
        assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now(), &overdue), -1);
    }
    assert_false(is_shut(fx->fds[0]));
    apr_sleep(TIMEOUT + TIMEOUT / 4);
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now(), &overdue), 1);
    assert_true(is_shut(fx->fds[0]));
    hello_watchdog_end(fx->wd, loan);
}

static void test_socket_leaves_with_its_pool(void **state)
{
    fixture *fx = *state;
    apr_interval_time_t overdue = 0;
    int slot;

    hello_watchdog_add_socket(fx->wd, fx->fds[0], fx->conn_pool);
    apr_pool_destroy(fx->conn_pool);
    fx->conn_pool = NULL;
    slot = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
    /* Overdue, but there is no socket left to shut. */
    assert_int_equal(hello_watchdog_check(fx->wd, apr_time_now() + 2 * TIMEOUT, &overdue), 0);
    assert_false(is_shut(fx->fds[0]));
    hello_watchdog_end(fx->wd, slot);
}

static void test_slots_run_out_and_no_watchdog(void **state)
{
    fixture *fx = *state;
    int slots[4];

    for (int i = 0; i < 4; i++) {
        slots[i] = hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL);
        assert_true(slots[i] >= 0);
    }
    assert_int_equal(hello_watchdog_begin(fx->wd, HELLO_WATCH_CALL), -1);
    hello_watchdog_end(fx->wd, -1); /* an unwatched call ends harmlessly */
    for (int i = 0; i < 4; i++) {
        hello_watchdog_end(fx->wd, slots[i]);
    }
    assert_true(hello_watchdog_begin(fx->wd, HELLO_WATCH_LOAN) >= 0);
    assert_int_equal(hello_watchdog_begin(NULL, HELLO_WATCH_CALL), -1);
    hello_watchdog_end(NULL, 0);
    hello_watchdog_add_socket(NULL, fx->fds[0], fx->pool);
    hello_watchdog_add_socket(fx->wd, -1, fx->pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_within_timeout_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overdue_call_is_cut_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loan_in_a_moving_queue_is_not_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_leaves_with_its_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_run_out_and_no_watchdog, setup, teardown),
    };

    return cmocka_run_group_tests_name("watchdog", tests, unit_group_setup, unit_group_teardown);
}
