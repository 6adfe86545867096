/* Unit tests for src/park.c: the parked connections in front of mod_dbd.
 *
 * A fake pool plays mod_dbd: open hands out numbered connections (or NULL
 * as told), close records what came back. The last test runs threads
 * against a fake pool that, like mod_dbd's reslist, makes open wait while
 * its maximum is out, to show that parking never starves a waiting thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "fake_store.h"
#include "hello/park.h"

#define LONG_IDLE apr_time_from_sec(3600)

/* ---- a fake mod_dbd --------------------------------------------------------- */

static int KEY1, KEY2; /* their addresses are the keys' ids */

typedef struct fake_conn {
    int id;
    void *key; /* the key it was opened for */
} fake_conn;

typedef struct fake_dbd {
    fake_conn conns[64];
    int opened;
    int fail_next; /* open answers NULL this many times first */
    int open_calls;
    fake_conn *closed[64];
    void *closed_keys[64];
    int nclosed;
    hello_park *park;   /* for the open that gives back while it runs */
    hello_park_key *k1; /* for &KEY1 and &KEY2 */
    hello_park_key *k2;
    fake_conn *give_during_open;
    apr_interval_time_t open_sleep;
} fake_dbd;

static void *fake_open(void *baton, void *key, apr_pool_t *pool)
{
    fake_dbd *f = baton;
    fake_conn *c;

    (void)pool;
    f->open_calls++;
    if (f->give_during_open) {
        /* Another request finishes while this one waits in mod_dbd. */
        fake_conn *g = f->give_during_open;
        f->give_during_open = NULL;
        hello_park_give(f->park, g->key == (void *)&KEY1 ? f->k1 : f->k2, g, 1);
    }
    if (f->open_sleep) {
        apr_sleep(f->open_sleep);
    }
    if (f->fail_next > 0) {
        f->fail_next--;
        return NULL;
    }
    c = &f->conns[f->opened];
    c->id = ++f->opened;
    c->key = key;
    return c;
}

static void fake_close(void *baton, void *key, void *conn)
{
    fake_dbd *f = baton;

    assert_true(f->nclosed < 64);
    f->closed[f->nclosed] = conn;
    f->closed_keys[f->nclosed] = key;
    f->nclosed++;
}

/* A park whose keys f->k1 and f->k2 (ids &KEY1, &KEY2) have pools of max
 * connections (0: not known). */
static hello_park *new_park_max(apr_pool_t *pool, fake_dbd *f, int capacity,
                                apr_interval_time_t idle, int max)
{
    hello_park *park = NULL;

    memset(f, 0, sizeof(*f));
    assert_int_equal(hello_park_create(&park, pool, capacity, idle, fake_open, fake_close, f),
                     APR_SUCCESS);
    f->park = park;
    f->k1 = hello_park_key_add(park, &KEY1, max);
    f->k2 = hello_park_key_add(park, &KEY2, max);
    return park;
}

static hello_park *new_park(apr_pool_t *pool, fake_dbd *f, int capacity, apr_interval_time_t idle)
{
    return new_park_max(pool, f, capacity, idle, 0);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_reuse_without_open(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    hello_park_stats st;
    int reused = -1;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);

    assert_non_null(a);
    assert_int_equal(reused, 0);
    assert_int_equal(f.open_calls, 1);
    hello_park_give(park, f.k1, a, 1);
    for (int i = 0; i < 5; i++) {
        fake_conn *again = hello_park_take(park, f.k1, *state, 1, &reused);
        assert_ptr_equal(again, a);
        assert_int_equal(reused, 1);
        hello_park_give(park, f.k1, again, 1);
    }
    assert_int_equal(f.open_calls, 1);
    assert_int_equal(f.nclosed, 0);
    hello_park_stats_get(park, &st);
    assert_int_equal(st.reused, 5);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.returned, 0);
    assert_int_equal(st.parked, 1);
}

static void test_last_in_first_out(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b = hello_park_take(park, f.k1, *state, 1, &reused);

    assert_ptr_not_equal(a, b);
    hello_park_give(park, f.k1, a, 1);
    hello_park_give(park, f.k1, b, 1);
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), b);
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), a);
    assert_int_equal(reused, 1);
    assert_int_equal(f.open_calls, 2);
}

static void test_not_kept_goes_back(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    hello_park_stats st;
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);

    hello_park_give(park, f.k1, a, 0);
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], a);
    assert_ptr_equal(f.closed_keys[0], &KEY1);
    assert_ptr_not_equal(hello_park_take(park, f.k1, *state, 1, &reused), a);
    assert_int_equal(reused, 0);
    hello_park_stats_get(park, &st);
    assert_int_equal(st.returned, 1);
    assert_int_equal(st.parked, 0);
}

static void test_full_park_hands_back(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 2, LONG_IDLE);
    int reused;
    fake_conn *c[3];

    for (int i = 0; i < 3; i++) {
        c[i] = hello_park_take(park, f.k1, *state, 1, &reused);
    }
    for (int i = 0; i < 3; i++) {
        hello_park_give(park, f.k1, c[i], 1);
    }
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], c[2]);
}

static void test_keys_apart_and_others_handed_back(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b;

    hello_park_give(park, f.k1, a, 1);
    /* KEY2 has none parked: it must not get KEY1's, and KEY1's goes back
     * (it may be the one KEY2's open would wait for). */
    b = hello_park_take(park, f.k2, *state, 1, &reused);
    assert_ptr_not_equal(b, a);
    assert_int_equal(reused, 0);
    assert_ptr_equal(b->key, &KEY2);
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], a);
    assert_ptr_equal(f.closed_keys[0], &KEY1);
    /* While KEY2's connection is parked, KEY2 gets it back. */
    hello_park_give(park, f.k2, b, 1);
    assert_ptr_equal(hello_park_take(park, f.k2, *state, 1, &reused), b);
    assert_int_equal(reused, 1);
}

static void test_nothing_parked_while_a_thread_waits(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b;

    /* a is given back while the next take is inside open: it must go back
     * to the pool the waiting open draws from, not into the park. */
    f.give_during_open = a;
    b = hello_park_take(park, f.k1, *state, 1, &reused);
    assert_non_null(b);
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], a);
    /* Once nobody waits, connections are parked again. */
    hello_park_give(park, f.k1, b, 1);
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), b);
}

typedef struct late_give {
    hello_park *park;
    hello_park_key *key;
    void *conn;
} late_give;

/* Gives conn back once the main thread is waiting in take. */
static void *APR_THREAD_FUNC give_when_hoping(apr_thread_t *thread, void *data)
{
    late_give *g = data;
    hello_park_stats st;

    do {
        apr_thread_yield();
        hello_park_stats_get(g->park, &st);
    } while (st.hoping == 0);
    hello_park_give(g->park, g->key, g->conn, 1);
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static void test_take_waits_for_a_connection_in_use(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    hello_park_stats st;
    apr_thread_t *thread;
    apr_status_t rv;
    late_give g;
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b;

    /* a is in use and comes back while the next take waits: that take gets
     * it without asking the pool. */
    g.park = park;
    g.key = f.k1;
    g.conn = a;
    assert_int_equal(apr_thread_create(&thread, NULL, give_when_hoping, &g, *state), APR_SUCCESS);
    alarm(30); /* a hang fails instead */
    b = hello_park_take(park, f.k1, *state, 1, &reused);
    apr_thread_join(&rv, thread);
    alarm(0);
    /* The take waits at most a millisecond: on a slow machine the give may
     * come later, and the take then opens a second connection. */
    hello_park_stats_get(park, &st);
    if (b == a) {
        assert_int_equal(reused, 1);
        assert_int_equal(f.open_calls, 1);
        assert_int_equal(st.waited, 1);
    }
    else {
        assert_int_equal(reused, 0);
        assert_int_equal(f.open_calls, 2);
        assert_int_equal(st.parked, 1);
    }
    assert_int_equal(st.in_use, 1);
    assert_int_equal(st.hoping, 0);
    assert_int_equal(f.nclosed, 0);
}

static void test_take_with_nothing_in_use_opens_at_once(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    hello_park_stats st;
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    apr_time_t start;

    hello_park_give(park, f.k1, a, 0);
    start = apr_time_now();
    assert_non_null(hello_park_take(park, f.k1, *state, 1, &reused));
    hello_park_stats_get(park, &st);
    assert_int_equal(st.waited, 0);
    assert_int_equal(st.in_use, 1);
    assert_int_equal(f.open_calls, 2);
    /* Nothing to wait for: no millisecond spent hoping. */
    assert_true(apr_time_now() - start < apr_time_from_msec(50));
}

static void test_idle_connection_trimmed(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, apr_time_from_msec(20));
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b = hello_park_take(park, f.k1, *state, 1, &reused);

    hello_park_give(park, f.k1, a, 1);
    apr_sleep(apr_time_from_msec(40));
    hello_park_give(park, f.k1, b, 1);
    /* a waited longer than the limit: handed back at b's give. */
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], a);
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), b);
    /* A lone connection is kept however long it waits. */
    hello_park_give(park, f.k1, b, 1);
    apr_sleep(apr_time_from_msec(40));
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), b);
    assert_int_equal(f.nclosed, 1);
}

static void test_flush_one_key(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 8, LONG_IDLE);
    int reused;
    fake_conn *k1[3];
    fake_conn *k2;

    for (int i = 0; i < 3; i++) {
        k1[i] = hello_park_take(park, f.k1, *state, 1, &reused);
    }
    for (int i = 0; i < 3; i++) {
        hello_park_give(park, f.k1, k1[i], 1);
    }
    k2 = hello_park_take(park, f.k2, *state, 1, &reused); /* hands KEY1's back */
    assert_int_equal(f.nclosed, 3);
    k1[0] = hello_park_take(park, f.k1, *state, 1, &reused); /* hands KEY2's back: none */
    hello_park_give(park, f.k2, k2, 1);
    hello_park_give(park, f.k1, k1[0], 1);
    assert_int_equal(hello_park_flush(park, f.k1), 1);
    assert_int_equal(f.nclosed, 4);
    assert_ptr_equal(f.closed[3], k1[0]);
    assert_int_equal(hello_park_flush(park, f.k1), 0);
    /* KEY2's is still there. */
    assert_ptr_equal(hello_park_take(park, f.k2, *state, 1, &reused), k2);
    assert_int_equal(reused, 1);
}

static void test_open_tried_again(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    hello_park_stats st;
    int reused;

    f.fail_next = 2;
    assert_null(hello_park_take(park, f.k1, *state, 2, &reused));
    assert_int_equal(f.open_calls, 2);
    f.fail_next = 2;
    assert_non_null(hello_park_take(park, f.k1, *state, 3, &reused));
    assert_int_equal(f.open_calls, 5);
    f.fail_next = 5;
    assert_null(hello_park_take(park, f.k1, *state, 0, &reused)); /* 0: once */
    assert_int_equal(f.open_calls, 6);
    hello_park_stats_get(park, &st);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.failed, 2);
}

static void test_suspect_connections_tried_past(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    int reused;

    /* Three dead connections in the pool (say the watchdog shut them): a
     * take gets past them although it asked for one try. */
    hello_park_suspect(park, 3);
    f.fail_next = 3;
    assert_non_null(hello_park_take(park, f.k1, *state, 1, &reused));
    assert_int_equal(f.open_calls, 4);
    /* Used up: a failing open is tried once again. */
    f.fail_next = 5;
    assert_null(hello_park_take(park, f.k2, *state, 1, &reused));
    assert_int_equal(f.open_calls, 5);
    /* Partly used: what is left carries over. */
    hello_park_suspect(park, 4);
    f.fail_next = 1;
    assert_non_null(hello_park_take(park, f.k2, *state, 1, &reused));
    assert_int_equal(f.open_calls, 7);
    f.fail_next = 10;
    assert_null(hello_park_take(park, f.k2, *state, 1, &reused));
    assert_int_equal(f.open_calls, 7 + 1 + 3);
    /* A flush (a parked connection was dead) suspects the key's whole pool:
     * of unknown size here, taken as 64. */
    assert_int_equal(hello_park_flush(park, f.k1), 0);
    f.fail_next = 100;
    assert_null(hello_park_take(park, f.k1, *state, 1, &reused));
    assert_int_equal(f.open_calls, 11 + 1 + 64);
}

static void test_flush_suspects_the_pool_size(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park_max(*state, &f, 8, LONG_IDLE, 3);
    int reused;

    /* DBDMax 3: at most 3 connections of the pool can be dead. */
    assert_int_equal(hello_park_flush(park, f.k1), 0);
    f.fail_next = 100;
    assert_null(hello_park_take(park, f.k1, *state, 1, &reused));
    assert_int_equal(f.open_calls, 1 + 3);
    /* Used up. */
    assert_null(hello_park_take(park, f.k1, *state, 1, &reused));
    assert_int_equal(f.open_calls, 5);
}

static void test_open_retries_bounded_in_time(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park(*state, &f, 4, LONG_IDLE);
    int reused;

    /* Each open takes 0.6 s and fails: within the one-second budget there
     * is room for a second try, not a third. */
    f.fail_next = 100;
    f.open_sleep = apr_time_from_msec(600);
    assert_null(hello_park_take(park, f.k1, *state, 50, &reused));
    assert_int_equal(f.open_calls, 2);
}

static void test_pool_cleanup_hands_all_back(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    apr_pool_t *child = NULL;
    hello_park *park;
    int reused;
    fake_conn *c[3];

    assert_int_equal(apr_pool_create(&child, *state), APR_SUCCESS);
    park = new_park(child, &f, 4, LONG_IDLE);
    for (int i = 0; i < 3; i++) {
        c[i] = hello_park_take(park, f.k1, *state, 1, &reused);
    }
    for (int i = 0; i < 3; i++) {
        hello_park_give(park, f.k1, c[i], 1);
    }
    assert_int_equal(f.nclosed, 0);
    apr_pool_destroy(child);
    assert_int_equal(f.nclosed, 3);
}

/* ---- threads against a pool with a maximum ------------------------------- */

/* Like mod_dbd's reslist: at most max connections exist; open waits while
 * all are out, close puts one back and wakes a waiter. */
typedef struct bounded_dbd {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;
    fake_conn conns[8];
    fake_conn *idle[8];
    int nidle;
    int total;
    int max;
    int out; /* taken from this pool and not back (parked ones included) */
    int max_out;
} bounded_dbd;

static void *bounded_open(void *baton, void *key, apr_pool_t *pool)
{
    bounded_dbd *b = baton;
    fake_conn *c;

    (void)key;
    (void)pool;
    /* Opening takes time (a TCP connect, a ping): long enough for other
     * threads to decide to open too. */
    apr_sleep(200);
    apr_thread_mutex_lock(b->lock);
    while (b->nidle == 0 && b->total == b->max) {
        apr_thread_cond_wait(b->cond, b->lock);
    }
    if (b->nidle > 0) {
        c = b->idle[--b->nidle];
    }
    else {
        c = &b->conns[b->total];
        c->id = ++b->total;
    }
    b->out++;
    b->max_out = b->out > b->max_out ? b->out : b->max_out;
    apr_thread_mutex_unlock(b->lock);
    return c;
}

static void bounded_close(void *baton, void *key, void *conn)
{
    bounded_dbd *b = baton;

    (void)key;
    apr_thread_mutex_lock(b->lock);
    b->idle[b->nidle++] = conn;
    b->out--;
    apr_thread_cond_signal(b->cond);
    apr_thread_mutex_unlock(b->lock);
}

typedef struct worker_arg {
    hello_park *park;
    hello_park_key *key;
    apr_pool_t *pool;
    int rounds;
    volatile int *in_use; /* per connection id: nonzero while a worker holds it */
    int conflicts;
    int drop_every; /* one give in this many is not kept; 0: all kept */
} worker_arg;

static void *APR_THREAD_FUNC worker(apr_thread_t *thread, void *data)
{
    worker_arg *w = data;

    for (int i = 0; i < w->rounds; i++) {
        int reused;
        fake_conn *c = hello_park_take(w->park, w->key, w->pool, 1, &reused);
        if (c == NULL || __sync_fetch_and_add(&w->in_use[c->id], 1) != 0) {
            w->conflicts++;
        }
        if ((i & 7) == 0) {
            apr_thread_yield();
        }
        if (c != NULL) {
            __sync_fetch_and_sub(&w->in_use[c->id], 1);
            hello_park_give(w->park, w->key, c, w->drop_every == 0 || (i % w->drop_every) != 0);
        }
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* THREADS threads take and give (one give in 97 not kept) against a pool
 * of 2 connections, on two keys (max: the keys' pool size as the park is
 * told, 0: not told); returns the park's statistics. */
static void run_threads(apr_pool_t *pool, int two_keys, int max, int drop_every,
                        hello_park_stats *st)
{
    enum { THREADS = 8, ROUNDS = 20000 };
    bounded_dbd b;
    hello_park *park = NULL;
    hello_park_key *keys[2];
    apr_thread_t *threads[THREADS];
    worker_arg args[THREADS];
    volatile int in_use[16] = { 0 };
    apr_pool_t *child = NULL;

    memset(&b, 0, sizeof(b));
    b.max = 2; /* far fewer connections than threads, as with a small DBDMax */
    assert_int_equal(apr_thread_mutex_create(&b.lock, APR_THREAD_MUTEX_DEFAULT, pool), APR_SUCCESS);
    assert_int_equal(apr_thread_cond_create(&b.cond, pool), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&child, pool), APR_SUCCESS);
    assert_int_equal(
        hello_park_create(&park, child, THREADS, LONG_IDLE, bounded_open, bounded_close, &b),
        APR_SUCCESS);
    keys[0] = hello_park_key_add(park, &KEY1, max);
    keys[1] = two_keys ? hello_park_key_add(park, &KEY2, max) : keys[0];
    /* A deadlock hangs here: fail instead. */
    alarm(60);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){ park, keys[i % 2], pool, ROUNDS, in_use, 0, drop_every };
        assert_int_equal(apr_thread_create(&threads[i], NULL, worker, &args[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < THREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, threads[i]);
        assert_int_equal(args[i].conflicts, 0);
    }
    alarm(0);
    hello_park_stats_get(park, st);
    assert_int_equal(st->reused + st->opened, THREADS * ROUNDS);
    assert_int_equal(st->failed, 0);
    assert_int_equal(st->in_use, 0);
    assert_true(b.max_out <= b.max);
    assert_true(b.total <= b.max);
    apr_pool_destroy(child);
    /* Every connection is back in the pool once the park is gone. */
    assert_int_equal(b.out, 0);
    assert_int_equal(b.nidle, b.total);
}

static void test_threads_never_starve(void **state)
{
    hello_park_stats st;

    run_threads(*state, 0, 0, 97, &st); /* one key, pool size not known */
    run_threads(*state, 0, 2, 97, &st); /* one key, pool size known */
    /* Known size: the park opens only to replace what it handed back (the
     * gives not kept), never for want of a connection in use. */
    assert_true(st.opened <= 2 + st.returned);
    assert_true(st.returned <= 8 * 20000 / 97 + 8);
    /* Every give kept: nothing ever goes back to the pool, so a thread that
     * opened beyond the pool's size (counting those still opening) would
     * wait in it for good. */
    run_threads(*state, 0, 2, 0, &st);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.returned, 0);
}

static void test_threads_two_keys_one_pool(void **state)
{
    hello_park_stats st;

    /* Two keys, one pool of 2 (two virtual hosts on one mod_dbd pool): each
     * key believes it may have 2, so a key's thread can wait inside open for
     * a connection the other key holds; handing back across keys keeps it
     * moving. */
    run_threads(*state, 2, 2, 97, &st);
    run_threads(*state, 2, 0, 97, &st);
    run_threads(*state, 2, 2, 0, &st);
}

static void test_known_size_waits_instead_of_opening(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park_max(*state, &f, 8, LONG_IDLE, 2);
    hello_park_stats st;
    apr_thread_t *thread;
    apr_status_t rv;
    late_give g;
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *c;

    assert_int_equal(f.open_calls, 2);
    assert_int_equal(hello_park_key_held(park, f.k1), 2);
    /* Both are in use and the pool lends 2: the third take must wait for
     * one, however long, and never call open (which would block in
     * mod_dbd). */
    g.park = park;
    g.key = f.k1;
    g.conn = b;
    assert_int_equal(apr_thread_create(&thread, NULL, give_when_hoping, &g, *state), APR_SUCCESS);
    alarm(30);
    c = hello_park_take(park, f.k1, *state, 1, &reused);
    apr_thread_join(&rv, thread);
    alarm(0);
    assert_ptr_equal(c, b);
    assert_int_equal(reused, 1);
    assert_int_equal(f.open_calls, 2);
    hello_park_stats_get(park, &st);
    assert_int_equal(st.waited, 1);
    /* A connection given back broken makes room: the next take opens. */
    hello_park_give(park, f.k1, a, 0);
    assert_int_equal(hello_park_key_held(park, f.k1), 1);
    assert_non_null(hello_park_take(park, f.k1, *state, 1, &reused));
    assert_int_equal(reused, 0);
    assert_int_equal(f.open_calls, 3);
}

typedef struct in_line {
    hello_park *park;
    hello_park_key *key;
    apr_pool_t *pool;
    void *volatile got;
} in_line;

/* Takes (waiting in line), keeps the connection 20 ms, gives it back. */
static void *APR_THREAD_FUNC take_hold_give(apr_thread_t *thread, void *data)
{
    in_line *l = data;
    int reused;
    void *conn = hello_park_take(l->park, l->key, l->pool, 1, &reused);

    l->got = conn;
    apr_sleep(apr_time_from_msec(20));
    hello_park_give(l->park, l->key, conn, 1);
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static void test_known_size_waiters_served_in_order(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park_max(*state, &f, 8, LONG_IDLE, 1);
    hello_park_stats st;
    apr_thread_t *thread;
    apr_status_t rv;
    in_line l = { park, NULL, *state, NULL };
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);

    l.key = f.k1;
    assert_int_equal(apr_thread_create(&thread, NULL, take_hold_give, &l, *state), APR_SUCCESS);
    alarm(30);
    do {
        apr_thread_yield();
        hello_park_stats_get(park, &st);
    } while (st.hoping == 0);
    /* The waiter is in line: the give goes to it, not to the park, and a
     * take that comes after it waits its turn instead of taking it. */
    hello_park_give(park, f.k1, a, 1);
    hello_park_stats_get(park, &st);
    assert_int_equal(st.parked, 0);
    assert_ptr_equal(hello_park_take(park, f.k1, *state, 1, &reused), a);
    assert_ptr_equal(l.got, a); /* the waiter had it first */
    apr_thread_join(&rv, thread);
    alarm(0);
    assert_int_equal(f.open_calls, 1);
}

static void test_known_size_other_key_opening_gets_gives(void **state)
{
    static fake_dbd f; /* outlives the test: the pool cleanup hands back to it */
    hello_park *park = new_park_max(*state, &f, 8, LONG_IDLE, 2);
    int reused;
    fake_conn *a = hello_park_take(park, f.k1, *state, 1, &reused);
    fake_conn *b;

    /* KEY2 opens while KEY1's connection comes back: KEY2's thread may be
     * waiting in mod_dbd for it (one pool for both), so it goes back there. */
    f.give_during_open = a;
    b = hello_park_take(park, f.k2, *state, 1, &reused);
    assert_non_null(b);
    assert_int_equal(f.nclosed, 1);
    assert_ptr_equal(f.closed[0], a);
    assert_int_equal(hello_park_key_held(park, f.k1), 0);
    /* A key's own gives during its own open are kept: its threads open only
     * below its pool's size, so none waits for them. */
    a = hello_park_take(park, f.k2, *state, 1, &reused); /* opens: b is in use */
    assert_int_equal(reused, 0);
    f.give_during_open = a;
    hello_park_give(park, f.k2, b, 1);
    assert_int_equal(f.nclosed, 1);
}

#define POOL_TEST(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        POOL_TEST(test_reuse_without_open),
        POOL_TEST(test_last_in_first_out),
        POOL_TEST(test_not_kept_goes_back),
        POOL_TEST(test_full_park_hands_back),
        POOL_TEST(test_keys_apart_and_others_handed_back),
        POOL_TEST(test_nothing_parked_while_a_thread_waits),
        POOL_TEST(test_take_waits_for_a_connection_in_use),
        POOL_TEST(test_take_with_nothing_in_use_opens_at_once),
        POOL_TEST(test_idle_connection_trimmed),
        POOL_TEST(test_flush_one_key),
        POOL_TEST(test_open_tried_again),
        POOL_TEST(test_suspect_connections_tried_past),
        POOL_TEST(test_flush_suspects_the_pool_size),
        POOL_TEST(test_open_retries_bounded_in_time),
        POOL_TEST(test_pool_cleanup_hands_all_back),
        POOL_TEST(test_known_size_waits_instead_of_opening),
        POOL_TEST(test_known_size_waiters_served_in_order),
        POOL_TEST(test_known_size_other_key_opening_gets_gives),
        POOL_TEST(test_threads_never_starve),
        POOL_TEST(test_threads_two_keys_one_pool),
    };

    return cmocka_run_group_tests_name("park", tests, unit_group_setup, unit_group_teardown);
}
