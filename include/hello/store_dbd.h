/* The store interface implemented on mod_dbd's pooled connections.
 *
 * mod_dbd is the only pool. A request's store takes the request's connection
 * from it (ap_dbd_acquire: mod_dbd checks it with a ping before lending it
 * and takes it back when the request ends), or a second one when mod_dbd
 * lends nothing the first time (see hello_dbd_store_init). Every loan and every statement runs
 * under the process's watchdog, failures are counted in the metrics, and
 * each store call can be traced at debug level. */
#ifndef HELLO_STORE_DBD_H
#define HELLO_STORE_DBD_H

#include <apr_dbd.h>
#include <mod_dbd.h>

#include "hello/metrics.h"
#include "hello/store.h"
#include "hello/watchdog.h"

/* Lends a connection for the current request: again 0 the request's own
 * (ap_dbd_acquire), again 1 after that gave nothing (ap_dbd_open, given
 * back when the request ends). NULL
 * when mod_dbd has none to lend: the database cannot be reached, or the
 * pooled connection it picked failed its check (mod_dbd has dropped it and
 * logged why). */
typedef ap_dbd_t *(*hello_dbd_take_fn)(void *arg, int again);

/* Receives one line of debug trace per store call. */
typedef void (*hello_dbd_trace_fn)(void *arg, const char *line);

/* One statement: its label on a connection and, for the module's defaults,
 * the SQL to prepare there the first time a request needs it. Statements of
 * the Hello*Query directives have no sql: mod_dbd prepared them
 * (ap_dbd_prepare) when it opened the connection. */
typedef struct hello_dbd_statement {
    const char *label;
    const char *sql;
} hello_dbd_statement;

/* Shared by the requests of one process and one server: whether the last
 * statement they sent got an answer from the database. Starts at 0. */
typedef struct hello_dbd_state {
    volatile apr_uint32_t answered;
} hello_dbd_state;

typedef struct hello_dbd_store {
    hello_dbd_take_fn take;
    hello_dbd_trace_fn trace;       /* NULL: no trace */
    void *arg;                      /* for take and trace */
    const hello_dbd_statement *get; /* SELECT date_of_birth ... WHERE username = %s */
    const hello_dbd_statement *put; /* the upsert: username, date */
    const hello_dbd_statement *del; /* DELETE ... WHERE username = %s; NULL: no DELETE */
    hello_watchdog *watchdog;       /* NULL: unwatched */
    hello_metrics *metrics;         /* NULL: uncounted */
    hello_dbd_state *state;
    ap_dbd_t *dbd; /* the connection in use; set by the store */
    int loans;     /* connections taken so far; set by the store */
} hello_dbd_store;

/* The error of a store call that got no connection at all. */
extern const char hello_dbd_no_connection[];

/* Fills *store to use ctx, which lives as long as the request. The
 * connection is taken when first needed, so a request refused before it
 * touches the store takes none, and kept for the rest of the request.
 *
 * When mod_dbd lends nothing, the pooled connection it picked may have died
 * there (the database was restarted, the connection killed) and failed its
 * check: mod_dbd has dropped it. The store then asks once more, and only if
 * the last statement of this process to this server was answered (state):
 * while the database stays unreachable every request makes one loan, so one
 * connect attempt at most. A request never holds two connections at once,
 * so it cannot wait on a pool it has itself exhausted. */
void hello_dbd_store_init(hello_store *store, hello_dbd_store *ctx);

/* The socket of a MySQL connection, or -1 (another driver, or the client
 * library does not tell). */
int hello_dbd_socket(ap_dbd_t *dbd);

#endif
