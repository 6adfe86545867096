/* The watchdog for database calls (see include/hello/watchdog.h). */
#include <sys/socket.h>

#include <apr_atomic.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "hello/watchdog.h"

#define HELLO_WATCHDOG_TICK apr_time_from_msec(100)
#define HELLO_WATCHDOG_KEY  "mod_hello:watchdog-socket"

typedef struct watched_socket {
    hello_watchdog *wd;
    int fd; /* -1 once closed */
} watched_socket;

struct hello_watchdog {
    apr_interval_time_t timeout;
    int nslots;
    volatile apr_uint64_t *started; /* per slot: start time + 1, 0 when free */
    apr_thread_mutex_t *lock;       /* guards sockets */
    apr_array_header_t *sockets;    /* of watched_socket *; NULL entries free */
    volatile apr_uint32_t stop;
    apr_thread_t *thread;
    hello_watchdog_log_fn log;
    void *baton;
};

int hello_watchdog_begin(hello_watchdog *wd)
{
    apr_uint64_t now;

    if (wd == NULL) {
        return -1;
    }
    now = (apr_uint64_t)apr_time_now() + 1;
    for (int i = 0; i < wd->nslots; i++) {
        if (apr_atomic_read64(&wd->started[i]) == 0 &&
            apr_atomic_cas64(&wd->started[i], now, 0) == 0) {
            return i;
        }
    }
    return -1;
}

void hello_watchdog_end(hello_watchdog *wd, int slot)
{
    if (wd != NULL && slot >= 0 && slot < wd->nslots) {
        apr_atomic_set64(&wd->started[slot], 0);
    }
}

static apr_status_t unwatch(void *data)
{
    watched_socket *ws = data;
    hello_watchdog *wd = ws->wd;

    apr_thread_mutex_lock(wd->lock);
    for (int i = 0; i < wd->sockets->nelts; i++) {
        if (APR_ARRAY_IDX(wd->sockets, i, watched_socket *) == ws) {
            APR_ARRAY_IDX(wd->sockets, i, watched_socket *) = NULL;
        }
    }
    ws->fd = -1;
    apr_thread_mutex_unlock(wd->lock);
    return APR_SUCCESS;
}

void hello_watchdog_add_socket(hello_watchdog *wd, int fd, apr_pool_t *conn_pool)
{
    void *seen = NULL;
    watched_socket *ws;
    int placed = 0;

    if (wd == NULL || fd < 0) {
        return;
    }
    apr_pool_userdata_get(&seen, HELLO_WATCHDOG_KEY, conn_pool);
    if (seen != NULL) {
        return;
    }
    ws = apr_palloc(conn_pool, sizeof(*ws));
    ws->wd = wd;
    ws->fd = fd;
    apr_pool_userdata_setn(ws, HELLO_WATCHDOG_KEY, NULL, conn_pool);
    /* Registered after the driver's own cleanups, so it runs before them:
     * the socket leaves the list before it is closed and its number reused. */
    apr_pool_cleanup_register(conn_pool, ws, unwatch, apr_pool_cleanup_null);

    apr_thread_mutex_lock(wd->lock);
    for (int i = 0; i < wd->sockets->nelts && !placed; i++) {
        if (APR_ARRAY_IDX(wd->sockets, i, watched_socket *) == NULL) {
            APR_ARRAY_IDX(wd->sockets, i, watched_socket *) = ws;
            placed = 1;
        }
    }
    if (!placed) {
        APR_ARRAY_PUSH(wd->sockets, watched_socket *) = ws;
    }
    apr_thread_mutex_unlock(wd->lock);
}

static void *APR_THREAD_FUNC watch(apr_thread_t *thread, void *data)
{
    hello_watchdog *wd = data;

    while (!apr_atomic_read32(&wd->stop)) {
        apr_time_t now = apr_time_now();
        apr_interval_time_t overdue = 0;

        for (int i = 0; i < wd->nslots; i++) {
            apr_uint64_t started = apr_atomic_read64(&wd->started[i]);
            if (started != 0 && now - (apr_time_t)(started - 1) > wd->timeout) {
                apr_interval_time_t late = now - (apr_time_t)(started - 1) - wd->timeout;
                overdue = late > overdue ? late : overdue;
            }
        }
        if (overdue > 0) {
            int count = 0;
            apr_thread_mutex_lock(wd->lock);
            for (int i = 0; i < wd->sockets->nelts; i++) {
                watched_socket *ws = APR_ARRAY_IDX(wd->sockets, i, watched_socket *);
                if (ws != NULL && ws->fd >= 0 && shutdown(ws->fd, SHUT_RDWR) == 0) {
                    count++;
                }
            }
            apr_thread_mutex_unlock(wd->lock);
            if (count > 0 && wd->log) {
                wd->log(wd->baton, count, overdue);
            }
            /* The blocked calls now fail and free their slots; give them a
             * tick before looking again. */
        }
        apr_sleep(HELLO_WATCHDOG_TICK);
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static apr_status_t stop_watching(void *data)
{
    hello_watchdog *wd = data;
    apr_status_t rv;

    apr_atomic_set32(&wd->stop, 1);
    if (wd->thread) {
        apr_thread_join(&rv, wd->thread);
        wd->thread = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t hello_watchdog_create(hello_watchdog **out, apr_pool_t *pool, int slots,
                                   apr_interval_time_t timeout, hello_watchdog_log_fn log,
                                   void *baton)
{
    hello_watchdog *wd = apr_pcalloc(pool, sizeof(*wd));
    apr_status_t rv;

    *out = NULL;
    wd->timeout = timeout;
    wd->nslots = slots > 0 ? slots : 1;
    wd->started = apr_pcalloc(pool, sizeof(apr_uint64_t) * (apr_size_t)wd->nslots);
    wd->sockets = apr_array_make(pool, 8, sizeof(watched_socket *));
    wd->log = log;
    wd->baton = baton;
    rv = apr_thread_mutex_create(&wd->lock, APR_THREAD_MUTEX_DEFAULT, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_thread_create(&wd->thread, NULL, watch, wd, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Pre-cleanup: the thread stops before the pool's memory goes. */
    apr_pool_pre_cleanup_register(pool, wd, stop_watching);
    *out = wd;
    return APR_SUCCESS;
}
