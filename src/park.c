/* Parked database connections (see include/hello/park.h). */
#include <string.h>

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "hello/park.h"

/* open is tried again while it fails fast, for at most this long. */
#define HELLO_PARK_OPEN_BUDGET apr_time_from_sec(1)

/* How long a take that finds nothing parked, while connections are in use,
 * waits for one of them to come back before it asks mod_dbd for another. */
#define HELLO_PARK_WAIT apr_time_from_msec(1)

typedef struct parked {
    void *key;
    void *conn;
    apr_time_t since; /* when it was given back */
} parked;

struct hello_park {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *given; /* signalled when a connection is parked */
    parked *slots;            /* a stack: [0] waited longest, [count - 1] given back last */
    int count;
    int capacity;
    int waiting; /* threads inside open */
    int hoping;  /* threads waiting on `given` */
    int in_use;  /* taken and not given back yet */
    int shut;    /* the pool is going: park nothing more */
    apr_interval_time_t idle_limit;
    hello_park_open_fn open;
    hello_park_close_fn close;
    void *baton;
    hello_park_stats stats;
};

/* Removes slot i, keeping the order of the others. Lock held. */
static void remove_slot(hello_park *park, int i)
{
    park->count--;
    if (i < park->count) {
        memmove(&park->slots[i], &park->slots[i + 1], (size_t)(park->count - i) * sizeof(parked));
    }
}

/* Hands back every connection of key (other_than = 0) or of every other key
 * (other_than = 1). Lock held: close only releases into mod_dbd's pool,
 * which never calls back here. */
static int hand_back(hello_park *park, const void *key, int other_than)
{
    int kept = 0;
    int handed = 0;

    for (int i = 0; i < park->count; i++) {
        parked *p = &park->slots[i];
        if ((p->key == key) != (other_than != 0)) {
            park->close(park->baton, p->key, p->conn);
            handed++;
        }
        else {
            park->slots[kept++] = *p;
        }
    }
    park->count = kept;
    park->stats.returned += (apr_uint64_t)handed;
    return handed;
}

static apr_status_t park_cleanup(void *data)
{
    hello_park *park = data;

    apr_thread_mutex_lock(park->lock);
    park->shut = 1;
    for (int i = 0; i < park->count; i++) {
        park->close(park->baton, park->slots[i].key, park->slots[i].conn);
    }
    park->stats.returned += (apr_uint64_t)park->count;
    park->count = 0;
    apr_thread_mutex_unlock(park->lock);
    return APR_SUCCESS;
}

apr_status_t hello_park_create(hello_park **out, apr_pool_t *pool, int capacity,
                               apr_interval_time_t idle_limit, hello_park_open_fn open,
                               hello_park_close_fn close, void *baton)
{
    hello_park *park = apr_pcalloc(pool, sizeof(*park));
    apr_status_t rv = apr_thread_mutex_create(&park->lock, APR_THREAD_MUTEX_DEFAULT, pool);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_thread_cond_create(&park->given, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    park->capacity = capacity > 0 ? capacity : 1;
    park->slots = apr_pcalloc(pool, (apr_size_t)park->capacity * sizeof(parked));
    park->idle_limit = idle_limit;
    park->open = open;
    park->close = close;
    park->baton = baton;
    /* Before the pool's subpools go: mod_dbd's connection pools are
     * subpools of the same child pool, and must get every connection back
     * before they are destroyed. */
    apr_pool_pre_cleanup_register(pool, park, park_cleanup);
    *out = park;
    return APR_SUCCESS;
}

static void *open_some(hello_park_open_fn open, void *baton, void *key, apr_pool_t *pool, int tries)
{
    apr_time_t deadline = apr_time_now() + HELLO_PARK_OPEN_BUDGET;
    void *conn = NULL;

    for (int i = 0; i < (tries > 0 ? tries : 1) && conn == NULL; i++) {
        if (i > 0 && apr_time_now() > deadline) {
            break;
        }
        conn = open(baton, key, pool);
    }
    return conn;
}

/* The most recently parked connection of key, removed from the park; NULL
 * when none. Lock held. */
static void *pop(hello_park *park, const void *key)
{
    for (int i = park->count - 1; i >= 0; i--) {
        if (park->slots[i].key == key) {
            void *conn = park->slots[i].conn;
            remove_slot(park, i);
            return conn;
        }
    }
    return NULL;
}

void *hello_park_take(hello_park *park, void *key, apr_pool_t *pool, int tries, int *reused)
{
    void *conn;

    *reused = 0;
    apr_thread_mutex_lock(park->lock);
    conn = pop(park, key);
    if (conn == NULL && park->in_use > 0 && !park->shut) {
        /* Every parked one is in use: one will likely be back in a few
         * microseconds. Waiting for it, rather than asking mod_dbd at once,
         * keeps the park from growing with every burst, and mod_dbd from
         * checking (pinging) a connection for every request meanwhile. */
        park->hoping++;
        apr_thread_cond_timedwait(park->given, park->lock, HELLO_PARK_WAIT);
        park->hoping--;
        conn = pop(park, key);
        if (conn != NULL) {
            park->stats.waited++;
        }
    }
    if (conn != NULL) {
        park->stats.reused++;
        park->in_use++;
        apr_thread_mutex_unlock(park->lock);
        *reused = 1;
        return conn;
    }
    hand_back(park, key, 1);
    park->waiting++;
    apr_thread_mutex_unlock(park->lock);

    conn = open_some(park->open, park->baton, key, pool, tries);

    apr_thread_mutex_lock(park->lock);
    park->waiting--;
    if (conn != NULL) {
        park->stats.opened++;
        park->in_use++;
    }
    else {
        park->stats.failed++;
    }
    apr_thread_mutex_unlock(park->lock);
    return conn;
}

void hello_park_give(hello_park *park, void *key, void *conn, int keep)
{
    apr_time_t now;

    if (conn == NULL) {
        return;
    }
    apr_thread_mutex_lock(park->lock);
    park->in_use--;
    /* A thread inside open may be waiting in mod_dbd for this very
     * connection: it goes back there, unless a thread of ours is waiting
     * for it here (that one then does not ask mod_dbd at all). */
    if (!keep || park->shut || (park->waiting > 0 && park->hoping == 0) ||
        park->count == park->capacity) {
        park->stats.returned++;
        park->close(park->baton, key, conn);
        apr_thread_mutex_unlock(park->lock);
        return;
    }
    now = apr_time_now();
    park->slots[park->count].key = key;
    park->slots[park->count].conn = conn;
    park->slots[park->count].since = now;
    park->count++;
    if (park->hoping > 0) {
        apr_thread_cond_broadcast(park->given);
    }
    /* One look at the longest-parked per give trims the stack after a burst. */
    else if (park->count > 1 && now - park->slots[0].since > park->idle_limit) {
        park->stats.returned++;
        park->close(park->baton, park->slots[0].key, park->slots[0].conn);
        remove_slot(park, 0);
    }
    apr_thread_mutex_unlock(park->lock);
}

int hello_park_flush(hello_park *park, void *key)
{
    int handed;

    apr_thread_mutex_lock(park->lock);
    handed = hand_back(park, key, 0);
    apr_thread_mutex_unlock(park->lock);
    return handed;
}

void hello_park_stats_get(hello_park *park, hello_park_stats *stats)
{
    apr_thread_mutex_lock(park->lock);
    *stats = park->stats;
    stats->parked = park->count;
    stats->hoping = park->hoping;
    stats->in_use = park->in_use;
    apr_thread_mutex_unlock(park->lock);
}
