/* A per-process watchdog for database calls that never return.
 *
 * apr-util 1.6's mysql driver sets no read or write timeout, and the client
 * library then waits forever on a server that accepts but does not answer
 * (stopped, swapping, a network black hole). The watchdog bounds that wait:
 * every database call marks its start in a slot, and hello_watchdog_check,
 * run every 100 ms by httpd's mod_watchdog in each child, shuts down the
 * sockets of every connection of the process once a call has run past the
 * timeout. The blocked calls then fail at once ("Lost connection"), their
 * requests answer 503, and mod_dbd drops the dead connections when it next
 * checks them. A database that does not answer one call in time is taken as
 * not answering at all: the timeout should be far above the slowest query.
 *
 * Two kinds of watched time:
 *   - a call (HELLO_WATCH_CALL): a statement on a connection the request
 *     holds, whose socket is registered before the call starts. It is
 *     overdue once it has run longer than the timeout.
 *   - a loan (HELLO_WATCH_LOAN): taking a connection from mod_dbd, which
 *     pings it first but may also wait for a free one while every connection
 *     of the pool is out. Waiting in that queue is not a database call, so a
 *     loan is overdue only when no call or loan of the process has finished
 *     for the whole timeout either: a queue that moves is never cut.
 * Each overdue call or loan cuts the sockets once; a later check shuts
 * nothing again unless another call becomes overdue.
 *
 * The request path takes no lock: a slot is claimed with one compare-and-
 * swap and freed with one store. Sockets are registered under a mutex, once
 * per connection, and leave the list before their connection closes them.
 * No httpd header: the glue drives the checks and does the logging. */
#ifndef HELLO_WATCHDOG_H
#define HELLO_WATCHDOG_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct hello_watchdog hello_watchdog;

typedef enum hello_watch_kind { HELLO_WATCH_CALL = 0, HELLO_WATCH_LOAN = 1 } hello_watch_kind;

/* Creates the watchdog in pool; it lives as long as the pool. slots: how
 * many calls can be watched at once (the process's threads). Made in the
 * parent before the children fork, each child then has its own copy. */
apr_status_t hello_watchdog_create(hello_watchdog **out, apr_pool_t *pool, int slots,
                                   apr_interval_time_t timeout);

/* Marks the start of a call or loan; returns the slot to give to
 * hello_watchdog_end, or -1 when every slot is taken or wd is NULL (the
 * call is then not watched). */
int hello_watchdog_begin(hello_watchdog *wd, hello_watch_kind kind);
void hello_watchdog_end(hello_watchdog *wd, int slot);

/* Watches a connection's socket until conn_pool (the connection's own pool)
 * is cleaned up, which happens before the connection closes the socket.
 * Registers once per pool; wd NULL or fd < 0 does nothing. */
void hello_watchdog_add_socket(hello_watchdog *wd, int fd, apr_pool_t *conn_pool);

/* Looks at every slot as of now. When a call or loan is overdue, shuts down
 * every watched socket and returns how many (0 if there were none), with
 * *overdue set to how far past the timeout the latest one was; returns -1
 * when nothing newly became overdue. */
int hello_watchdog_check(hello_watchdog *wd, apr_time_t now, apr_interval_time_t *overdue);

#endif
