/* A child's parked database connections: the reason a request makes one
 * database round trip and not two.
 *
 * mod_dbd checks every connection it lends (ap_dbd_acquire, ap_dbd_open)
 * with the driver's check, a COM_PING round trip for MySQL, before the
 * request's own statement. The park sits in front of mod_dbd: a request
 * gives its connection back here instead of to mod_dbd, and the next request
 * takes the most recently parked one without a check. Connections are still
 * mod_dbd's (opened, prepared, counted against DBDMax and closed by it); the
 * park only holds some between requests, in a last-in first-out stack so that
 * the fewest stay warm.
 *
 * A parked connection is not checked, so it may have died meanwhile (the
 * server restarted, wait_timeout, the watchdog shut it down). The store finds
 * out from its statement's failure, checks the connection then, and runs the
 * statement again on a connection mod_dbd has just checked
 * (src/store_dbd.c): the check moves from every request to the failures.
 *
 * Connections go back to mod_dbd (the close callback, ap_dbd_close) rather
 * than to the park:
 *   - when a thread is inside open, maybe waiting for mod_dbd (with
 *     DBDMax connections out, a connection parked here could be the one it
 *     waits for), unless a thread is waiting here for a connection to come
 *     back: that one takes it. A take that finds nothing parked while
 *     connections are in use waits up to a millisecond for one before it
 *     calls open, so that a burst does not send every request to mod_dbd
 *     (and its check) while one thread opens;
 *   - the connections parked for other keys (virtual hosts) when a key has
 *     none left, before its open: they may belong to the same mod_dbd pool;
 *   - when given back as not worth keeping (broken, once-only);
 *   - when the park is full, or the oldest has waited longer than idle_limit
 *     (mod_dbd's DBDKeep and DBDExptime then apply to it again);
 *   - all of them when the pool the park lives in is cleaned up (a pre-
 *     cleanup, so before mod_dbd's pools in the same child go).
 *
 * Thread-safe: one mutex, held for a few instructions per take and give.
 * Free of httpd: open and close are callbacks, keys and connections are
 * opaque pointers. */
#ifndef HELLO_PARK_H
#define HELLO_PARK_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hello_park hello_park;

/* Opens (acquires) a connection for key, pool being the caller's (a
 * request's) pool; NULL when none can be had. */
typedef void *(*hello_park_open_fn)(void *baton, void *key, apr_pool_t *pool);
/* Hands conn back to its owner. */
typedef void (*hello_park_close_fn)(void *baton, void *key, void *conn);

typedef struct hello_park_stats {
    apr_uint64_t reused;   /* takes answered from the park */
    apr_uint64_t waited;   /* of those, answered after waiting for a give */
    apr_uint64_t opened;   /* takes that called open and got a connection */
    apr_uint64_t failed;   /* takes that got none */
    apr_uint64_t returned; /* connections handed back through close */
    int parked;            /* parked now */
    int in_use;            /* taken and not given back now */
    int hoping;            /* takes waiting for a give now */
} hello_park_stats;

/* Creates an empty park in pool, holding at most capacity connections. */
apr_status_t hello_park_create(hello_park **out, apr_pool_t *pool, int capacity,
                               apr_interval_time_t idle_limit, hello_park_open_fn open,
                               hello_park_close_fn close, void *baton);

/* A connection for key: the most recently parked one (*reused = 1); when
 * none is parked but some are in use, the first of them given back within
 * a millisecond (*reused = 1); or else one from open (*reused = 0), which is
 * called up to tries times while it answers NULL, for at most a second in
 * all (a pool that still holds dead connections answers NULL once for each
 * as it drops them). NULL when open never answered. */
void *hello_park_take(hello_park *park, void *key, apr_pool_t *pool, int tries, int *reused);

/* Gives back a connection taken for key. keep = 0 hands it to close at once
 * (a broken connection, one that cannot outlive its request). */
void hello_park_give(hello_park *park, void *key, void *conn, int keep);

/* Hands every connection parked for key to close; returns how many. For
 * when one of them turned out dead: the others are likely dead too. */
int hello_park_flush(hello_park *park, void *key);

void hello_park_stats_get(hello_park *park, hello_park_stats *stats);

#endif
