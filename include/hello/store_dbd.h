/* The store interface implemented on mod_dbd's pooled connections. */
#ifndef HELLO_STORE_DBD_H
#define HELLO_STORE_DBD_H

#include <apr_dbd.h>
#include <mod_dbd.h>

#include "hello/store.h"

/* Returns a pooled connection for the current request, or NULL when the
 * database cannot be reached (mod_dbd has logged why). */
typedef ap_dbd_t *(*hello_dbd_acquire_fn)(void *arg);

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
    void *acquire_arg;
    hello_dbd_statement get; /* SELECT date_of_birth ... WHERE username = %s */
    hello_dbd_statement put; /* the upsert: username, date */
    hello_dbd_statement del; /* DELETE ... WHERE username = %s; label NULL: no DELETE */
    ap_dbd_t *dbd;           /* set on first use; NULL before */
} hello_dbd_store;

/* Fills *store to use ctx, which lives as long as the request (its dbd
 * starts NULL). The connection is acquired lazily on first use, so a
 * request rejected before touching the store never takes one. */
void hello_dbd_store_init(hello_store *store, hello_dbd_store *ctx);

/* The socket of a MySQL connection, or -1 (another driver, or the client
 * library does not tell). */
int hello_dbd_socket(ap_dbd_t *dbd);

#endif
