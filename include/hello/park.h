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
 * Each key (a server: mod_dbd keeps a pool per server) may say how many
 * connections its pool lends at once (DBDMax). Then a take that finds
 * nothing parked opens a connection only below that number (counting those
 * being opened), and otherwise waits in line for a give, which goes to the
 * first waiter of its key: a thread never waits inside mod_dbd for a
 * connection parked here, and waiters are served in arrival order (a take
 * that comes later waits behind them instead of taking a connection
 * first). Without the number, a take that finds nothing parked while
 * connections are in use waits up to a millisecond for one to come back
 * before it calls open, and a give goes back to mod_dbd while a thread is
 * inside open and none waits here (that thread may be waiting for it).
 *
 * Connections also go back to mod_dbd (the close callback, ap_dbd_close):
 *   - those parked for other keys when a key opens one: they may come from
 *     the same mod_dbd pool, and a give goes back while another key's thread
 *     is inside open;
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
typedef struct hello_park_key hello_park_key;

/* Opens (acquires) a connection for the key whose id is given, pool being
 * the caller's (a request's) pool; NULL when none can be had. */
typedef void *(*hello_park_open_fn)(void *baton, void *id, apr_pool_t *pool);
/* Hands conn back. */
typedef void (*hello_park_close_fn)(void *baton, void *id, void *conn);

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

/* Registers a key: id is what open and close are given, max the most
 * connections its pool lends at once (0: not known). Before any take; not
 * thread-safe (allocates from the park's pool). */
hello_park_key *hello_park_key_add(hello_park *park, void *id, int max);

/* A connection for key: the most recently parked one (*reused = 1), or one
 * given back while this waits (see above; *reused = 1), or else one from
 * open (*reused = 0), which is called up to tries times while it answers
 * NULL, for at most a second in all (a pool that still holds dead
 * connections answers NULL once for each as it drops them). NULL when open
 * never answered. */
void *hello_park_take(hello_park *park, hello_park_key *key, apr_pool_t *pool, int tries,
                      int *reused);

/* Gives back a connection taken for key. keep = 0 hands it to close at once
 * (a broken connection, one that cannot outlive its request). */
void hello_park_give(hello_park *park, hello_park_key *key, void *conn, int keep);

/* Hands every connection parked for key to close; returns how many. For
 * when a connection of key turned out dead: the others are likely dead
 * too, and so are those idle in the pool behind open, so the next opens
 * try past as many as the key's pool holds (see hello_park_suspect; 64 if
 * its size is not known). */
int hello_park_flush(hello_park *park, hello_park_key *key);

void hello_park_stats_get(hello_park *park, hello_park_stats *stats);

/* Says that up to count connections in the pool behind open may be dead
 * (their sockets were shut down): the next takes that call open try that
 * many more times, as each dead one answers NULL once (mod_dbd drops it
 * when its check fails). Thread-safe. */
void hello_park_suspect(hello_park *park, int count);

/* How many connections key holds (parked or in use). */
int hello_park_key_held(hello_park *park, const hello_park_key *key);

#endif
