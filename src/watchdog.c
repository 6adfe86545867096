/* The watchdog for database calls (see include/hello/watchdog.h). */
#include <sys/socket.h>

#include <apr_atomic.h>
#include <apr_ring.h>
#include <apr_thread_mutex.h>

#include "hello/watchdog.h"

#define HELLO_WATCHDOG_KEY "mod_hello:watchdog-socket"

/* A slot holds 0 when free, else (start time << 2) | kind << 1 | cut. */
#define SLOT_LOAN 2u
#define SLOT_CUT  1u

typedef struct watched_socket {
    APR_RING_ENTRY(watched_socket) link;
    hello_watchdog *wd;
    int fd;
} watched_socket;

struct hello_watchdog {
    apr_interval_time_t timeout;
    int nslots;
    volatile apr_uint64_t *slots;
    volatile apr_uint64_t progress; /* when a call or loan last finished */
    apr_thread_mutex_t *lock;       /* guards sockets */
    APR_RING_HEAD(watched_ring, watched_socket) sockets;
};

int hello_watchdog_begin(hello_watchdog *wd, hello_watch_kind kind)
{
    apr_uint64_t value;

    if (wd == NULL) {
        return -1;
    }
    value = ((apr_uint64_t)apr_time_now() << 2) | (kind == HELLO_WATCH_LOAN ? SLOT_LOAN : 0);
    for (int i = 0; i < wd->nslots; i++) {
        if (apr_atomic_read64(&wd->slots[i]) == 0 &&
            apr_atomic_cas64(&wd->slots[i], value, 0) == 0) {
            return i;
        }
    }
    return -1;
}

void hello_watchdog_end(hello_watchdog *wd, int slot)
{
    if (wd != NULL && slot >= 0 && slot < wd->nslots) {
        apr_atomic_set64(&wd->slots[slot], 0);
        apr_atomic_set64(&wd->progress, (apr_uint64_t)apr_time_now());
    }
}

static apr_status_t unwatch(void *data)
{
    watched_socket *ws = data;
    hello_watchdog *wd = ws->wd;

    apr_thread_mutex_lock(wd->lock);
    APR_RING_REMOVE(ws, link);
    apr_thread_mutex_unlock(wd->lock);
    return APR_SUCCESS;
}

void hello_watchdog_add_socket(hello_watchdog *wd, int fd, apr_pool_t *conn_pool)
{
    void *seen = NULL;
    watched_socket *ws;

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
    APR_RING_ELEM_INIT(ws, link);
    apr_pool_userdata_setn(ws, HELLO_WATCHDOG_KEY, NULL, conn_pool);
    apr_thread_mutex_lock(wd->lock);
    APR_RING_INSERT_TAIL(&wd->sockets, ws, watched_socket, link);
    apr_thread_mutex_unlock(wd->lock);
    /* Registered after the driver's own cleanups, so it runs before them:
     * the socket leaves the list before it is closed and its number reused. */
    apr_pool_cleanup_register(conn_pool, ws, unwatch, apr_pool_cleanup_null);
}

int hello_watchdog_check(hello_watchdog *wd, apr_time_t now, apr_interval_time_t *overdue)
{
    apr_interval_time_t stalled = now - (apr_time_t)apr_atomic_read64(&wd->progress);
    apr_interval_time_t latest = -1;
    int count = 0;

    for (int i = 0; i < wd->nslots; i++) {
        apr_uint64_t value = apr_atomic_read64(&wd->slots[i]);
        apr_interval_time_t late = now - (apr_time_t)(value >> 2) - wd->timeout;

        if (value == 0 || (value & SLOT_CUT) || late <= 0 ||
            ((value & SLOT_LOAN) && stalled <= wd->timeout)) {
            continue;
        }
        /* Marked once: a call that goes on after the cut is not cut again.
         * A slot freed meanwhile keeps its new owner's value. */
        if (apr_atomic_cas64(&wd->slots[i], value | SLOT_CUT, value) == value && late > latest) {
            latest = late;
        }
    }
    if (latest < 0) {
        return -1;
    }
    apr_thread_mutex_lock(wd->lock);
    for (watched_socket *ws = APR_RING_FIRST(&wd->sockets);
         ws != APR_RING_SENTINEL(&wd->sockets, watched_socket, link);
         ws = APR_RING_NEXT(ws, link)) {
        if (shutdown(ws->fd, SHUT_RDWR) == 0) {
            count++;
        }
    }
    apr_thread_mutex_unlock(wd->lock);
    *overdue = latest;
    return count;
}

apr_status_t hello_watchdog_create(hello_watchdog **out, apr_pool_t *pool, int slots,
                                   apr_interval_time_t timeout)
{
    hello_watchdog *wd = apr_pcalloc(pool, sizeof(*wd));
    apr_status_t rv;

    *out = NULL;
    wd->timeout = timeout;
    wd->nslots = slots > 0 ? slots : 1;
    wd->slots = apr_pcalloc(pool, sizeof(apr_uint64_t) * (apr_size_t)wd->nslots);
    wd->progress = (apr_uint64_t)apr_time_now();
    APR_RING_INIT(&wd->sockets, watched_socket, link);
    rv = apr_thread_mutex_create(&wd->lock, APR_THREAD_MUTEX_DEFAULT, pool);
    if (rv == APR_SUCCESS) {
        *out = wd;
    }
    return rv;
}
