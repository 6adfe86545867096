/* Unit tests for src/cache.c: the read cache in front of a fake store, on a
 * fake key-value cache with expiry and failure switches. The write race is
 * played step by step: a PUT runs while a GET is inside the database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fake_store.h"
#include "hello/cache.h"

/* ---- a fake cache: a few keys with expiry ---------------------------------- */

#define FAKE_KEYS 16

typedef struct fake_cache {
    struct {
        char key[128];
        unsigned char data[128];
        unsigned int len;
        apr_time_t expiry;
    } slot[FAKE_KEYS];
    int n;
    apr_time_t now; /* what expiry is compared with */
    int fail_get, fail_set, fail_remove;
    int gets, sets, removes;
    int holding, holds, calls_held; /* hold(): how often, and calls made in one */
    void (*during_set)(void);       /* run once at the start of the next set */
} fake_cache;

static int fc_find(fake_cache *fc, const char *key)
{
    for (int i = 0; i < fc->n; i++) {
        if (strcmp(fc->slot[i].key, key) == 0) {
            return i;
        }
    }
    return -1;
}

static apr_status_t fc_get(void *ctx, apr_pool_t *pool, const char *key, unsigned char *buf,
                           unsigned int *len)
{
    fake_cache *fc = ctx;
    int i = fc_find(fc, key);

    (void)pool;
    fc->gets++;
    fc->calls_held += fc->holding;
    if (fc->fail_get) {
        return APR_EGENERAL;
    }
    if (i < 0 || fc->slot[i].expiry <= fc->now) {
        return APR_NOTFOUND;
    }
    if (fc->slot[i].len > *len) {
        return APR_ENOSPC;
    }
    memcpy(buf, fc->slot[i].data, fc->slot[i].len);
    *len = fc->slot[i].len;
    return APR_SUCCESS;
}

static apr_status_t fc_set(void *ctx, apr_pool_t *pool, const char *key, apr_time_t expiry,
                           const unsigned char *data, unsigned int len)
{
    fake_cache *fc = ctx;
    int i = fc_find(fc, key);

    (void)pool;
    fc->sets++;
    fc->calls_held += fc->holding;
    if (fc->during_set) {
        void (*hook)(void) = fc->during_set;
        fc->during_set = NULL;
        hook();
    }
    if (fc->fail_set) {
        return APR_EGENERAL;
    }
    if (i < 0) {
        assert_true(fc->n < FAKE_KEYS);
        i = fc->n++;
        assert_true(strlen(key) < sizeof(fc->slot[i].key));
        strcpy(fc->slot[i].key, key);
    }
    assert_true(len <= sizeof(fc->slot[i].data));
    memcpy(fc->slot[i].data, data, len);
    fc->slot[i].len = len;
    fc->slot[i].expiry = expiry;
    return APR_SUCCESS;
}

static apr_status_t fc_remove(void *ctx, apr_pool_t *pool, const char *key)
{
    fake_cache *fc = ctx;
    int i = fc_find(fc, key);

    (void)pool;
    fc->removes++;
    fc->calls_held += fc->holding;
    if (fc->fail_remove) {
        return APR_EGENERAL;
    }
    if (i < 0) {
        return APR_NOTFOUND;
    }
    fc->slot[i] = fc->slot[--fc->n];
    return APR_SUCCESS;
}

/* Overwrites the stored bytes of the key that ends with suffix (to plant
 * a damaged entry). */
static void fc_poke(fake_cache *fc, const char *suffix, const char *data)
{
    int i = -1;

    for (int k = 0; k < fc->n; k++) {
        size_t n = strlen(fc->slot[k].key);
        if (n > strlen(suffix) && strcmp(fc->slot[k].key + n - strlen(suffix), suffix) == 0) {
            i = k;
        }
    }

    assert_true(i >= 0);
    fc->slot[i].len = (unsigned int)strlen(data);
    memcpy(fc->slot[i].data, data, fc->slot[i].len);
}

/* ---- the fixture: a fake store behind the cache ----------------------------- */

typedef struct fixture {
    apr_pool_t *pool;
    fake_store fs;
    fake_cache fc;
    hello_cache_provider provider;
    hello_metrics metrics;
    hello_store inner;            /* fs, through the hook below */
    hello_cache_pending *pending; /* of the process the next request runs in */
    /* Run once inside the next inner get, after the cache was read. */
    void (*during_get)(struct fixture *f);
} fixture;

static fixture *current;

static hello_store_status hooked_get(void *ctx, apr_pool_t *pool, const char *username,
                                     hello_date *dob, const char **err)
{
    hello_store_status st = fake_store_get(ctx, pool, username, dob, err);

    if (current->during_get) {
        void (*hook)(fixture *) = current->during_get;
        current->during_get = NULL;
        hook(current);
    }
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || apr_pool_create(&f->pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    fake_store_init(&f->fs);
    f->inner = f->fs.iface;
    f->inner.get = hooked_get;
    f->provider =
        (hello_cache_provider){ &f->fc, fc_get, fc_set, fc_remove, NULL, NULL, NULL, NULL };
    f->fc.now = apr_time_from_sec(1000000);
    hello_metrics_init(&f->metrics, 1);
    current = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

/* One request's cached store, at the fake cache's time. */
static void request(fixture *f, hello_cached_store *cs, hello_store *store, const char *ns)
{
    memset(cs, 0, sizeof(*cs));
    cs->inner = &f->inner;
    cs->cache = &f->provider;
    cs->ns = ns;
    cs->max_age = apr_time_from_sec(60);
    cs->stale_if_error = apr_time_from_sec(300);
    cs->now = f->fc.now;
    cs->metrics = &f->metrics;
    cs->pending = f->pending;
    hello_cached_store_init(store, cs);
}

static hello_store_status get(fixture *f, const char *user, hello_date *dob, hello_cached_store *cs)
{
    hello_store store;
    const char *err = NULL;

    request(f, cs, &store, "db1");
    return store.get(store.ctx, f->pool, user, dob, &err);
}

static hello_store_status put(fixture *f, const char *user, hello_date dob)
{
    hello_cached_store cs;
    hello_store store;
    const char *err = NULL;

    request(f, &cs, &store, "db1");
    return store.put(store.ctx, f->pool, user, dob, &err);
}

static void assert_date(hello_date d, int y, int m, int day)
{
    assert_int_equal(d.year, y);
    assert_int_equal(d.month, m);
    assert_int_equal(d.day, day);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_miss_then_hit(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_string_equal(hello_cache_status(&cs, f->pool), "mod_hello; fwd=miss; stored");
    assert_int_equal(f->fs.get_calls, 1);

    f->fc.now += apr_time_from_sec(7);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_string_equal(hello_cache_status(&cs, f->pool), "mod_hello; hit");
    assert_int_equal(apr_time_sec(cs.age), 7);
    assert_date(dob, 1990, 6, 20);
    assert_int_equal(f->fs.get_calls, 1); /* the database was not asked */
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_HIT], 1);
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_MISS], 1);
}

static void test_not_found_is_not_cached(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(f, "nobody", &dob, &cs), HELLO_STORE_NOT_FOUND);
        assert_string_equal(hello_cache_status(&cs, f->pool), "mod_hello; fwd=miss");
    }
    assert_int_equal(f->fs.get_calls, 2);
    assert_int_equal(f->fc.n, 0);
}

static void test_put_invalidates(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    get(f, "alice", &dob, &cs);
    assert_int_equal(put(f, "alice", (hello_date){ 2001, 2, 3 }), HELLO_STORE_OK);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_date(dob, 2001, 2, 3);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_date(dob, 2001, 2, 3);
}

/* The classic race: a GET misses and reads the old row; a PUT commits and
 * invalidates; the GET then stores the old row. The entry it stores must
 * never be answered. */
static void put_during_get(fixture *f)
{
    assert_int_equal(put(f, "alice", (hello_date){ 1999, 9, 9 }), HELLO_STORE_OK);
}

static void test_fill_racing_a_write_never_stands(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    f->during_get = put_during_get;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_date(dob, 1990, 6, 20); /* read before the write committed */
    assert_true(cs.stored);        /* ...and stored after it */
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_OUTDATED);
    assert_string_equal(hello_cache_status(&cs, f->pool), "mod_hello; fwd=stale; stored");
    assert_date(dob, 1999, 9, 9);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_date(dob, 1999, 9, 9);
}

/* The same race on an entry that was a hit when the GET began. */
static void test_write_between_hit_check_and_fill(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    get(f, "alice", &dob, &cs);
    f->fc.now += apr_time_from_sec(61); /* past max-age: the next GET refills */
    f->during_get = put_during_get;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_OUTDATED);
    assert_date(dob, 1990, 6, 20);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_date(dob, 1999, 9, 9);
}

static void test_stale_if_error(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    get(f, "alice", &dob, &cs);
    fake_store_fail_get(&f->fs, "down");
    /* Fresh: a plain hit, the database is not asked. */
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    /* Older than max-age, younger than stale-if-error: served, marked. */
    f->fc.now += apr_time_from_sec(120);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_STALE_HIT);
    assert_string_equal(hello_cache_status(&cs, f->pool), "mod_hello; hit; detail=stale");
    assert_int_equal(apr_time_sec(cs.age), 120);
    assert_date(dob, 1990, 6, 20);
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_STALE], 1);
    /* Unknown users are not invented. */
    assert_int_equal(get(f, "nobody", &dob, &cs), HELLO_STORE_UNAVAILABLE);
    /* Past stale-if-error: unavailable. */
    f->fc.now += apr_time_from_sec(181);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_UNAVAILABLE);
}

static void test_stale_if_error_off(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_store store;
    hello_date dob;
    const char *err;

    get(f, "alice", &dob, &cs);
    fake_store_fail_get(&f->fs, "down");
    f->fc.now += apr_time_from_sec(61);
    request(f, &cs, &store, "db1");
    cs.stale_if_error = 0;
    assert_int_equal(store.get(store.ctx, f->pool, "alice", &dob, &err), HELLO_STORE_UNAVAILABLE);
}

/* An entry of an older write is never served, not even through an outage. */
static void test_outdated_entry_not_served_stale(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    f->during_get = put_during_get; /* leaves an entry under the old token */
    get(f, "alice", &dob, &cs);
    fake_store_fail_get(&f->fs, "down");
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_UNAVAILABLE);
}

static void test_cache_errors_degrade_to_the_database(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    f->fc.fail_get = 1;
    f->fc.fail_set = 1;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_date(dob, 1990, 6, 20);
    assert_true(cs.cache_error);
    assert_false(cs.stored);
    assert_string_equal(hello_cache_status(&cs, f->pool),
                        "mod_hello; fwd=miss; detail=cache-error");
    assert_true(f->metrics.cache[HELLO_CACHE_EVENT_ERROR] >= 1);

    /* A write whose token the cache refuses is acknowledged all the same,
     * with a warning for the log. */
    {
        hello_store store;
        const char *err = NULL;
        request(f, &cs, &store, "db1");
        assert_int_equal(store.put(store.ctx, f->pool, "alice", (hello_date){ 2002, 2, 2 }, &err),
                         HELLO_STORE_OK);
        assert_non_null(cs.warning);
    }
}

static void test_namespaces_are_apart(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_store store;
    hello_date dob;
    const char *err;

    get(f, "alice", &dob, &cs); /* db1's alice is cached */
    request(f, &cs, &store, "db2");
    assert_int_equal(store.get(store.ctx, f->pool, "alice", &dob, &err), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_int_equal(f->fs.get_calls, 2);
}

static void test_damaged_entry_is_a_miss(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    get(f, "alice", &dob, &cs);
    fc_poke(&f->fc, "hello:d:db1:alice", "1 zz garbage");
    assert_int_equal(f->fc.slot[0].key[0] != '-', 1); /* the spreading byte */
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_date(dob, 1990, 6, 20);
}

static void test_delete_invalidates(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_store store;
    hello_date dob;
    const char *err = NULL;

    get(f, "alice", &dob, &cs);
    request(f, &cs, &store, "db1");
    assert_int_equal(store.del(store.ctx, f->pool, "alice", &err), HELLO_STORE_OK);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_NOT_FOUND);
}

static int no_place(void *ctx, int wait)
{
    (void)ctx;
    (void)wait;
    return 0;
}

/* A cache with no place for a write's invalidation: the write is not made
 * (503), the entry stays true to the row. */
static void test_write_refused_without_a_place(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    f->provider.reserve = no_place;
    assert_int_equal(put(f, "alice", (hello_date){ 1970, 1, 2 }), HELLO_STORE_UNAVAILABLE);
    assert_int_equal(f->fs.put_calls, 0);
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_ERROR], 1);
    f->provider.reserve = NULL;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_date(dob, 1990, 6, 20); /* the row was not changed either */
    assert_int_equal(f->fs.get_calls, 1);
}

/* A shared cache out of reach for one process only: its write commits, the
 * cache refuses the token and the removal, and the entry another process
 * filled before stays. Without the list that entry is answered until
 * HelloCacheMaxAge; with it, the writer's next request through the cache
 * makes the invalidation again. */
static void stale_after_a_refused_write(fixture *f, hello_cache_pending *writer)
{
    hello_cached_store cs;
    hello_date dob;

    f->pending = NULL; /* another process fills */
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_true(cs.stored);
    f->pending = writer;
    f->fc.fail_set = f->fc.fail_remove = 1;
    assert_int_equal(put(f, "alice", (hello_date){ 2002, 2, 2 }), HELLO_STORE_OK);
    f->fc.fail_set = f->fc.fail_remove = 0;
    f->pending = NULL;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT); /* the hole: the old date */
    assert_date(dob, 1990, 6, 20);
}

static void test_refused_invalidation_is_made_again(void **state)
{
    fixture *f = *state;
    hello_cache_pending *writer;
    hello_cached_store cs;
    hello_date dob;

    /* Without the list: stale until HelloCacheMaxAge. */
    stale_after_a_refused_write(f, NULL);
    f->fc.now += apr_time_from_sec(30);
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_date(dob, 1990, 6, 20);

    /* With it. */
    f->fc.n = 0;
    fake_store_init(&f->fs);
    f->inner = f->fs.iface;
    f->inner.get = hooked_get;
    assert_int_equal(hello_cache_pending_create(&writer, f->pool), APR_SUCCESS);
    stale_after_a_refused_write(f, writer);
    assert_int_equal(writer->count, 1);
    /* The writer's next request, while the cache still refuses: kept. */
    f->pending = writer;
    f->fc.fail_set = 1;
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 1);
    f->fc.fail_set = 0;
    /* ...and once the cache answers: made again, whoever reads next. */
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 0);
    f->pending = NULL;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_date(dob, 2002, 2, 2);
}

static void test_pending_list_is_bounded(void **state)
{
    fixture *f = *state;
    hello_cache_pending *writer;
    hello_cached_store cs;
    hello_store store;
    const char *err;
    const char *ns[HELLO_CACHE_PENDING_MAX + 3];

    assert_int_equal(hello_cache_pending_create(&writer, f->pool), APR_SUCCESS);
    f->pending = writer;
    f->fc.fail_set = f->fc.fail_remove = 1;
    /* alice of as many databases (namespaces). */
    for (int i = 0; i < HELLO_CACHE_PENDING_MAX + 3; i++) {
        ns[i] = apr_psprintf(f->pool, "db%d", i);
        request(f, &cs, &store, ns[i]);
        assert_int_equal(store.put(store.ctx, f->pool, "alice", (hello_date){ 2000, 1, 1 }, &err),
                         HELLO_STORE_OK);
        assert_non_null(cs.warning);
        /* Past the bound, the log says the old date may last HelloCacheMaxAge. */
        assert_int_equal(strstr(cs.warning, "HelloCacheMaxAge") != NULL,
                         i >= HELLO_CACHE_PENDING_MAX);
    }
    assert_int_equal(writer->count, HELLO_CACHE_PENDING_MAX);
    f->fc.fail_set = f->fc.fail_remove = 0;
    /* Four per request, the oldest first. */
    request(f, &cs, &store, "db1");
    assert_int_equal(store.get(store.ctx, f->pool, "nobody", &(hello_date){ 0, 0, 0 }, &err),
                     HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, HELLO_CACHE_PENDING_MAX - 4);
    assert_ptr_equal(writer->item[0].ns, ns[4]);
    assert_string_equal(writer->item[0].user, "alice");
}

/* A write of a user whose replay is under way is refused again: the
 * replay, which began before, must leave the user on the list. */
static void refused_write_of_alice(void)
{
    current->fc.fail_set = current->fc.fail_remove = 1;
    assert_int_equal(put(current, "alice", (hello_date){ 2003, 3, 3 }), HELLO_STORE_OK);
    current->fc.fail_set = current->fc.fail_remove = 0;
}

static void test_a_write_during_its_replay_stays_listed(void **state)
{
    fixture *f = *state;
    hello_cache_pending *writer;
    hello_cached_store cs;
    hello_date dob;

    assert_int_equal(hello_cache_pending_create(&writer, f->pool), APR_SUCCESS);
    f->pending = writer;
    refused_write_of_alice();
    assert_int_equal(writer->count, 1);
    f->fc.during_set = refused_write_of_alice; /* inside the replay's set */
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 1);
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 0);
}

/* A replay takes a place only if one is free at once, and a refused
 * replay is neither counted nor removes the entry. */
static int places_left;
static int places_taken;

static int counted_place(void *ctx, int wait)
{
    (void)ctx;
    (void)wait;
    if (places_left == 0) {
        return 0;
    }
    places_left--;
    places_taken++;
    return 1;
}

static void give_place_back(void *ctx)
{
    (void)ctx;
    places_left++;
}

static void test_replay_needs_a_free_place(void **state)
{
    fixture *f = *state;
    hello_cache_pending *writer;
    hello_cached_store cs;
    hello_date dob;
    int errors, removes;

    assert_int_equal(hello_cache_pending_create(&writer, f->pool), APR_SUCCESS);
    f->pending = writer;
    refused_write_of_alice();
    f->provider.reserve = counted_place;
    f->provider.release = give_place_back;
    places_left = 0;
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 1); /* no place: not tried */
    places_left = 1;
    f->fc.fail_set = 1;
    errors = (int)f->metrics.cache[HELLO_CACHE_EVENT_ERROR];
    removes = f->fc.removes;
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(places_left, 1); /* given back */
    assert_int_equal(writer->count, 1);
    assert_int_equal(f->fc.removes, removes);
    /* Only the GET's own failed fill... none here: bob is not found. */
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_ERROR], errors);
    f->fc.fail_set = 0;
    assert_int_equal(get(f, "bob", &dob, &cs), HELLO_STORE_NOT_FOUND);
    assert_int_equal(writer->count, 0);
}

/* A GET's fill never waits for a place: it asks for one without waiting,
 * gives it back, and without one answers from the database, storing
 * nothing and counting no error. */
static int waits_asked;

static int place_without_waiting(void *ctx, int wait)
{
    waits_asked += wait;
    return counted_place(ctx, wait);
}

static void test_fill_never_waits_for_a_place(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;
    int sets;

    f->provider.reserve = place_without_waiting;
    f->provider.release = give_place_back;
    waits_asked = 0;
    places_left = 0;
    sets = f->fc.sets;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_date(dob, 1990, 6, 20);
    assert_false(cs.stored);
    assert_int_equal(f->fc.sets, sets);
    assert_int_equal(f->metrics.cache[HELLO_CACHE_EVENT_ERROR], 0);
    places_left = 1;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_true(cs.stored);
    assert_int_equal(places_left, 1); /* given back */
    assert_int_equal(waits_asked, 0);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
}

/* A GET's two reads go in one hold of the cache (shmcb's mutex taken once),
 * given back before the database is asked; a write's new token and the
 * entry's removal go in one hold too. */
static int fc_hold(void *ctx)
{
    fake_cache *fc = ctx;

    assert_false(fc->holding);
    fc->holding = 1;
    fc->holds++;
    return 1;
}

static void fc_unhold(void *ctx)
{
    fake_cache *fc = ctx;

    assert_true(fc->holding);
    fc->holding = 0;
}

static int held_during_database;

static void note_hold(fixture *f)
{
    held_during_database = f->fc.holding;
}

static void test_reads_and_invalidation_in_one_hold(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_date dob;

    f->provider.hold = fc_hold;
    f->provider.unhold = fc_unhold;
    held_during_database = -1;
    f->during_get = note_hold;
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_MISS);
    assert_true(cs.stored);
    assert_int_equal(held_during_database, 0);
    assert_int_equal(f->fc.holds, 1);
    assert_int_equal(f->fc.calls_held, 2); /* entry and token; the fill alone */
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_int_equal(cs.outcome, HELLO_CACHE_HIT);
    assert_int_equal(f->fc.holds, 2);
    assert_int_equal(f->fc.calls_held, 4);
    assert_int_equal(put(f, "alice", (hello_date){ 1970, 1, 2 }), HELLO_STORE_OK);
    assert_int_equal(f->fc.holds, 3);
    assert_int_equal(f->fc.calls_held, 6); /* token and removal */
    assert_false(f->fc.holding);
    assert_int_equal(get(f, "alice", &dob, &cs), HELLO_STORE_OK);
    assert_date(dob, 1970, 1, 2);
}

static void test_no_fill(void **state)
{
    fixture *f = *state;
    hello_cached_store cs;
    hello_store store;
    hello_date dob;
    const char *err;

    request(f, &cs, &store, "db1");
    cs.no_fill = 1;
    assert_int_equal(store.get(store.ctx, f->pool, "alice", &dob, &err), HELLO_STORE_OK);
    assert_false(cs.stored);
    assert_int_equal(f->fc.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fill_never_waits_for_a_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_and_invalidation_in_one_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_is_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_invalidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fill_racing_a_write_never_stands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_between_hit_check_and_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_if_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_if_error_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outdated_entry_not_served_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_errors_degrade_to_the_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_are_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_entry_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_invalidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_refused_without_a_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_invalidation_is_made_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_list_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_during_its_replay_stays_listed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_needs_a_free_place, setup, teardown),
    };
    return cmocka_run_group_tests(tests, unit_group_setup, unit_group_teardown);
}
