/* Parked database connections (see include/hello/park.h). */
#include <string.h>

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "hello/park.h"

/* open is tried again while it fails fast, for at most this long. */
#define HELLO_PARK_OPEN_BUDGET apr_time_from_sec(1)

/* For a key whose pool size is not known: how long a take that finds
 * nothing parked, while connections are in use, waits for one of them to
 * come back before it calls open. */
#define HELLO_PARK_HOPE apr_time_from_msec(1)

/* How many connections a pool of unknown size is taken to hold. */
#define HELLO_PARK_UNKNOWN_POOL 64

/* For a key at its pool size: how long a take waits for a connection
 * before it looks again (a give or a close wakes it at once). */
#define HELLO_PARK_FULL_WAIT apr_time_from_sec(1)

struct hello_park_key {
    void *id;
    int max;     /* most connections its pool lends at once; 0: not known */
    int held;    /* from open and not yet closed: parked or in use */
    int opening; /* threads inside open */
    int queued;  /* waiters of this key in the queue */
    hello_park_key *next;
};

/* A take waiting, in arrival order, for a connection of its key (known
 * pool size only). A give hands its connection to the first waiter of the
 * key, so that a waiter is served before any later take: no waiter starves
 * while newer requests keep the connections busy. */
typedef struct waiter {
    hello_park_key *key;
    void *conn; /* set by the give that serves this waiter */
    struct waiter *next;
} waiter;

typedef struct parked {
    hello_park_key *key;
    void *conn;
    apr_time_t since; /* when it was given back */
} parked;

struct hello_park {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *given; /* broadcast when a connection is parked or closed */
    apr_pool_t *pool;
    parked *slots; /* a stack: [0] waited longest, [count - 1] given back last */
    int count;
    int capacity;
    int opening; /* threads inside open, all keys */
    int hoping;  /* threads waiting on `given` */
    int in_use;  /* taken and not given back yet */
    int shut;    /* the pool is going: park nothing more */
    int suspect; /* connections in the pool behind open that may be dead */
    apr_interval_time_t idle_limit;
    hello_park_open_fn open;
    hello_park_close_fn close;
    void *baton;
    hello_park_key *keys;
    waiter *queue; /* oldest first */
    hello_park_stats stats;
};

/* Hands conn back through close. Lock held: close only releases into
 * mod_dbd's pool, which never calls back here. */
static void close_conn(hello_park *park, hello_park_key *key, void *conn)
{
    park->close(park->baton, key->id, conn);
    key->held--;
    park->stats.returned++;
    if (park->hoping > 0) {
        apr_thread_cond_broadcast(park->given); /* room to open one */
    }
}

/* Removes slot i, keeping the order of the others. Lock held. */
static void remove_slot(hello_park *park, int i)
{
    park->count--;
    if (i < park->count) {
        memmove(&park->slots[i], &park->slots[i + 1], (size_t)(park->count - i) * sizeof(parked));
    }
}

/* Hands back every parked connection of key (other_than = 0) or of every
 * other key (other_than = 1). Lock held. */
static int hand_back(hello_park *park, const hello_park_key *key, int other_than)
{
    int kept = 0;
    int handed = 0;

    for (int i = 0; i < park->count; i++) {
        parked p = park->slots[i];
        if ((p.key == key) != (other_than != 0)) {
            close_conn(park, p.key, p.conn);
            handed++;
        }
        else {
            park->slots[kept++] = p;
        }
    }
    park->count = kept;
    return handed;
}

static apr_status_t park_cleanup(void *data)
{
    hello_park *park = data;

    apr_thread_mutex_lock(park->lock);
    park->shut = 1;
    while (park->count > 0) {
        parked *p = &park->slots[--park->count];
        close_conn(park, p->key, p->conn);
    }
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
    park->pool = pool;
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

hello_park_key *hello_park_key_add(hello_park *park, void *id, int max)
{
    hello_park_key *key = apr_pcalloc(park->pool, sizeof(*key));

    key->id = id;
    key->max = max > 0 ? max : 0;
    key->next = park->keys;
    park->keys = key;
    return key;
}

/* Calls open up to tries times while it answers NULL, within the budget;
 * *nulls: how many NULLs it answered. */
static void *open_some(hello_park_open_fn open, void *baton, void *id, apr_pool_t *pool, int tries,
                       int *nulls)
{
    apr_time_t deadline = apr_time_now() + HELLO_PARK_OPEN_BUDGET;
    void *conn = NULL;

    *nulls = 0;
    for (int i = 0; i < (tries > 0 ? tries : 1) && conn == NULL; i++) {
        if (i > 0 && apr_time_now() > deadline) {
            break;
        }
        conn = open(baton, id, pool);
        if (conn == NULL) {
            (*nulls)++;
        }
    }
    return conn;
}

/* The most recently parked connection of key, removed from the park; NULL
 * when none. Lock held. */
static void *pop(hello_park *park, const hello_park_key *key)
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

/* Waits on `given` for at most timeout. Lock held. */
static void hope(hello_park *park, apr_interval_time_t timeout)
{
    park->hoping++;
    apr_thread_cond_timedwait(park->given, park->lock, timeout);
    park->hoping--;
}

/* The first waiter of key in the queue, or NULL. Lock held. */
static waiter *first_waiter(const hello_park *park, const hello_park_key *key)
{
    for (waiter *w = park->queue; w != NULL; w = w->next) {
        if (w->key == key) {
            return w;
        }
    }
    return NULL;
}

static void dequeue(hello_park *park, const waiter *me)
{
    for (waiter **w = &park->queue; *w != NULL; w = &(*w)->next) {
        if (*w == me) {
            *w = me->next;
            me->key->queued--;
            return;
        }
    }
}

/* Queues behind earlier waiters of key until a give hands over a
 * connection, or the key may open one (a connection was closed) and this
 * is its first waiter. Returns the connection, or NULL to open. Lock held. */
static void *wait_in_line(hello_park *park, hello_park_key *key)
{
    waiter me = { key, NULL, NULL };
    waiter **tail = &park->queue;

    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = &me;
    key->queued++;
    /* Those inside open count: each will hold one. */
    while (me.conn == NULL && !park->shut &&
           (key->held + key->opening >= key->max || first_waiter(park, key) != &me)) {
        hope(park, HELLO_PARK_FULL_WAIT);
    }
    if (me.conn == NULL) {
        dequeue(park, &me);
        /* The next waiter may be free to open too. */
        if (key->queued > 0) {
            apr_thread_cond_broadcast(park->given);
        }
    }
    return me.conn;
}

void *hello_park_take(hello_park *park, hello_park_key *key, apr_pool_t *pool, int tries,
                      int *reused)
{
    void *conn = NULL;
    int hoped = 0;
    int nulls = 0;

    *reused = 0;
    apr_thread_mutex_lock(park->lock);
    if (key->queued == 0) {
        conn = pop(park, key);
    }
    if (conn == NULL && !park->shut && key->max > 0 &&
        (key->held + key->opening >= key->max || key->queued > 0)) {
        /* Every connection the pool may lend this key is in use here or
         * being opened (or others already wait for one): open would wait in
         * mod_dbd for a connection a give would then park. Wait here, in
         * line. */
        conn = wait_in_line(park, key);
        hoped = 1;
    }
    else if (conn == NULL && !park->shut && key->max == 0 && park->in_use > 0) {
        /* Without the pool's size, guess: one in use will likely be back
         * in a few microseconds. */
        hope(park, HELLO_PARK_HOPE);
        hoped = 1;
        conn = pop(park, key);
    }
    if (conn != NULL) {
        park->stats.reused++;
        if (hoped) {
            park->stats.waited++;
        }
        park->in_use++;
        apr_thread_mutex_unlock(park->lock);
        *reused = 1;
        return conn;
    }
    /* Other keys' parked connections may come from the same mod_dbd pool
     * and be the ones open would wait for. */
    hand_back(park, key, 1);
    key->opening++;
    park->opening++;
    /* Each dead connection in the pool costs one NULL before a live one. */
    tries = (tries > 0 ? tries : 1) + park->suspect;
    apr_thread_mutex_unlock(park->lock);

    conn = open_some(park->open, park->baton, key->id, pool, tries, &nulls);

    apr_thread_mutex_lock(park->lock);
    key->opening--;
    park->opening--;
    park->suspect = park->suspect > nulls ? park->suspect - nulls : 0;
    if (conn != NULL) {
        park->stats.opened++;
        park->in_use++;
        key->held++;
    }
    else {
        park->stats.failed++;
        if (key->queued > 0) {
            apr_thread_cond_broadcast(park->given); /* a waiter may open instead */
        }
    }
    apr_thread_mutex_unlock(park->lock);
    return conn;
}

/* Whether a thread inside open may be waiting in mod_dbd for the connection
 * key is giving back. Lock held. */
static int someone_may_wait_for(const hello_park *park, const hello_park_key *key)
{
    if (key->max > 0) {
        /* This key's own threads open only below the pool's size, so they
         * never wait for it; another key's may share the pool. */
        return park->opening > key->opening;
    }
    /* Unknown size: any thread inside open may, unless one waits here and
     * takes this connection instead. */
    return park->opening > 0 && park->hoping == 0;
}

void hello_park_give(hello_park *park, hello_park_key *key, void *conn, int keep)
{
    apr_time_t now;

    if (conn == NULL) {
        return;
    }
    apr_thread_mutex_lock(park->lock);
    park->in_use--;
    if (keep && !park->shut && key->queued > 0) {
        /* Straight to the longest waiter of this key. */
        waiter *w = first_waiter(park, key);
        dequeue(park, w);
        w->conn = conn;
        apr_thread_cond_broadcast(park->given);
        apr_thread_mutex_unlock(park->lock);
        return;
    }
    if (!keep || park->shut || someone_may_wait_for(park, key) || park->count == park->capacity) {
        close_conn(park, key, conn);
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
        parked oldest = park->slots[0];
        remove_slot(park, 0);
        close_conn(park, oldest.key, oldest.conn);
    }
    apr_thread_mutex_unlock(park->lock);
}

int hello_park_flush(hello_park *park, hello_park_key *key)
{
    int handed;
    int dead;

    apr_thread_mutex_lock(park->lock);
    handed = hand_back(park, key, 0);
    /* Every connection of the key's pool may be dead: those just handed
     * back, the one given back broken, those idle in the pool. */
    dead = key->max > 0 ? key->max : HELLO_PARK_UNKNOWN_POOL;
    if (handed + 1 > dead) {
        dead = handed + 1;
    }
    if (dead > park->suspect) {
        park->suspect = dead;
    }
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

int hello_park_key_held(hello_park *park, const hello_park_key *key)
{
    int held;

    apr_thread_mutex_lock(park->lock);
    held = key->held;
    apr_thread_mutex_unlock(park->lock);
    return held;
}

void hello_park_suspect(hello_park *park, int count)
{
    apr_thread_mutex_lock(park->lock);
    if (count > park->suspect) {
        park->suspect = count;
    }
    apr_thread_mutex_unlock(park->lock);
}
