/* The store interface implemented on mod_dbd's pooled connections. */
#ifndef HELLO_STORE_DBD_H
#define HELLO_STORE_DBD_H

#include <apr_dbd.h>
#include <mod_dbd.h>

#include "hello/store.h"

/* Takes a connection for the current request: a parked one that nothing
 * has checked since its last use (*reused = 1), or one mod_dbd has just
 * checked. NULL when the database cannot be reached (mod_dbd has logged
 * why). */
typedef ap_dbd_t *(*hello_dbd_acquire_fn)(void *arg, int *reused);
/* Gives it back: to be parked for the next request, or with keep = 0 (it
 * is broken) straight back to mod_dbd. */
typedef void (*hello_dbd_release_fn)(void *arg, ap_dbd_t *dbd, int keep);
/* Hands every parked connection back to mod_dbd, which checks each before
 * lending it again, and makes the next acquires get past the dead ones
 * mod_dbd drops (hello_park_flush); returns how many. */
typedef int (*hello_dbd_flush_fn)(void *arg);

/* One statement: the label it has on a connection, and, for the module's
 * defaults, the SQL to prepare there the first time a request needs it.
 * Statements from the Hello*Query directives have no sql: mod_dbd prepared
 * them (ap_dbd_prepare) when it opened the connection. */
typedef struct hello_dbd_statement {
    const char *label;
    const char *sql;
} hello_dbd_statement;

typedef struct hello_dbd_store {
    hello_dbd_acquire_fn acquire;
    hello_dbd_release_fn release;
    hello_dbd_flush_fn flush;
    void *arg;
    hello_dbd_statement get; /* SELECT date_of_birth ... WHERE username = %s */
    hello_dbd_statement put; /* the upsert: username, date */
    hello_dbd_statement del; /* DELETE ... WHERE username = %s; label NULL: no DELETE */
    ap_dbd_t *dbd;           /* set on first use; NULL before and after */
    int reused;              /* dbd came from the park: unchecked */
    int replaced;            /* dead parked connections replaced in this request */
} hello_dbd_store;

/* Fills *store to use ctx, which lives as long as the request (its dbd
 * starts NULL, the counters 0). The connection is taken lazily on first use,
 * so a request rejected before touching the store never takes one.
 *
 * A statement that fails on a parked (unchecked) connection whose check then
 * fails too ran on a dead connection: the store hands that connection and
 * every other parked one back to mod_dbd and runs the statement once more
 * on a connection mod_dbd has checked. The statements are safe to run
 * twice: a SELECT, an upsert of one value, a DELETE (which then answers
 * "not found" if its first run had removed the row). */
void hello_dbd_store_init(hello_store *store, hello_dbd_store *ctx);

/* Gives the request's connection back (see hello_dbd_release_fn), if it
 * took one. Call once the store is no longer needed. */
void hello_dbd_store_done(hello_dbd_store *ctx);

/* The socket of a MySQL connection, or -1 (another driver, or the client
 * library does not tell). */
int hello_dbd_socket(ap_dbd_t *dbd);

#endif
