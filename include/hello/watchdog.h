/* A per-process watchdog for database calls that never return.
 *
 * apr-util 1.6's mysql driver sets no read or write timeout, and the client
 * library then waits forever on a server that accepts but does not answer
 * (stopped, swapping, a network black hole): first the request's query,
 * then mod_dbd's check of every pooled connection it lends. The watchdog
 * bounds that wait: each request marks the time it starts a database call,
 * a thread looks every 100 ms, and when a call has run longer than the
 * timeout it shuts down the sockets of every database connection of the
 * process. Every blocked call then fails at once ("Lost connection"), its
 * request answers 503, and mod_dbd drops the dead connections when it
 * checks them next; new ones are bounded by the client's connect-timeout.
 * A database that does not answer one call in time is taken as not
 * answering at all: the timeout should be far above the slowest query.
 *
 * The request path takes no lock: a call claims a slot with one atomic
 * compare-and-swap and releases it with one store. Sockets are registered
 * once per connection, under a mutex, and unregistered before they close.
 * Logging goes through a callback, so the core stays free of httpd. */
#ifndef HELLO_WATCHDOG_H
#define HELLO_WATCHDOG_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hello_watchdog hello_watchdog;

/* Called from the watchdog's thread when it shuts sockets down. */
typedef void (*hello_watchdog_log_fn)(void *baton, int sockets, apr_interval_time_t overdue);

/* Creates the watchdog and its thread in pool (a child's pool: the thread
 * stops and is joined when the pool is cleared). slots: how many calls can
 * be watched at once (the process's threads). */
apr_status_t hello_watchdog_create(hello_watchdog **out, apr_pool_t *pool, int slots,
                                   apr_interval_time_t timeout, hello_watchdog_log_fn log,
                                   void *baton);

/* Marks the start of a database call; returns the slot to give to
 * hello_watchdog_end, or -1 when every slot is taken (the call is then not
 * watched). wd may be NULL (no watchdog): returns -1. */
int hello_watchdog_begin(hello_watchdog *wd);
void hello_watchdog_end(hello_watchdog *wd, int slot);

/* Watches a connection's socket until conn_pool (the connection's own pool)
 * is cleaned up, which happens before the connection closes the socket.
 * Safe to call again for the same pool: registers once. */
void hello_watchdog_add_socket(hello_watchdog *wd, int fd, apr_pool_t *conn_pool);

#endif
