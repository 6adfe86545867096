/* The store interface on mod_dbd (see include/hello/store_dbd.h): the one
 * file of the core that knows about apr_dbd. Statements are prepared once
 * per pooled connection: by mod_dbd when it opens the connection for those
 * of the Hello*Query directives, and here, the first time a request on that
 * connection needs it, for the module's defaults. So a server or virtual
 * host that never serves mod_hello never prepares them, and a driver whose
 * SQL differs (sqlite3) only needs the statements it uses overridden. */
#include <dlfcn.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_time.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <mod_dbd.h>

#include "hello/store_dbd.h"

static const char *driver_error(ap_dbd_t *dbd, apr_pool_t *pool, int rv, const char *what)
{
    const char *msg = apr_dbd_error(dbd->driver, dbd->handle, rv);

    return apr_psprintf(pool, "%s failed (%s driver, error %d): %s", what,
                        apr_dbd_name(dbd->driver), rv, msg ? msg : "(no message)");
}

/* Up to this many runs of a write that lost a conflict. */
#define HELLO_DBD_WRITE_ATTEMPTS 4

/* A write that lost to another and may simply run again: MySQL/MariaDB's
 * ER_LOCK_DEADLOCK (1213), which is also Galera's certification failure.
 * The mysql driver returns the server's error number as the status. A lock
 * wait timeout (1205) is not retried: it has already waited its fill. */
static int conflict(ap_dbd_t *dbd, int rv)
{
    return rv == 1213 && strcmp(apr_dbd_name(dbd->driver), "mysql") == 0;
}

static ap_dbd_t *connection(hello_dbd_store *st, apr_pool_t *pool, const hello_dbd_statement *which,
                            apr_dbd_prepared_t **stmt, const char **err)
{
    if (st->dbd == NULL) {
        st->dbd = st->acquire(st->acquire_arg);
        if (st->dbd == NULL) {
            *err = "no database connection could be acquired from mod_dbd "
                   "(see the DBD error logged before this line)";
            return NULL;
        }
    }
    *stmt = apr_hash_get(st->dbd->prepared, which->label, APR_HASH_KEY_STRING);
    if (*stmt == NULL && which->sql != NULL) {
        /* Lives as long as the connection: its pool, its hash. The request
         * holds the connection alone, so no other thread sees the hash. */
        ap_dbd_t *dbd = st->dbd;
        const char *label = apr_pstrdup(dbd->pool, which->label);
        int rv = apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle, which->sql, label, stmt);
        if (rv != 0) {
            *stmt = NULL;
            *err = driver_error(dbd, pool, rv, apr_pstrcat(pool, "preparing ", label, NULL));
            return NULL;
        }
        apr_hash_set(dbd->prepared, label, APR_HASH_KEY_STRING, *stmt);
    }
    if (*stmt == NULL) {
        *err = apr_psprintf(pool, "the prepared statement %s is missing from the connection",
                            which->label);
        return NULL;
    }
    return st->dbd;
}

static hello_store_status dbd_get(void *ctx, apr_pool_t *pool, const char *username,
                                  hello_date *dob, const char **err)
{
    hello_dbd_store *st = ctx;
    apr_dbd_prepared_t *stmt;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    ap_dbd_t *dbd = connection(st, pool, &st->get, &stmt, err);
    int found = 0;
    int valid = 0;
    int rv;

    if (dbd == NULL) {
        return HELLO_STORE_UNAVAILABLE;
    }
    rv = apr_dbd_pvselect(dbd->driver, pool, dbd->handle, &res, stmt, 0, username, NULL);
    if (rv != 0) {
        *err = driver_error(dbd, pool, rv, "SELECT");
        return HELLO_STORE_UNAVAILABLE;
    }
    /* A sequential result set must be read to its end before the connection
     * can run another statement. */
    while ((rv = apr_dbd_get_row(dbd->driver, pool, res, &row, -1)) == 0) {
        if (!found) {
            const char *value = apr_dbd_get_entry(dbd->driver, row, 0);
            found = 1;
            valid = value != NULL && hello_date_parse(value, strlen(value), dob);
        }
    }
    if (rv != -1) {
        *err = driver_error(dbd, pool, rv, "reading the SELECT result");
        return HELLO_STORE_UNAVAILABLE;
    }
    if (!found) {
        return HELLO_STORE_NOT_FOUND;
    }
    if (!valid) {
        *err = "the stored date of birth is not a valid YYYY-MM-DD date";
        return HELLO_STORE_UNAVAILABLE;
    }
    return HELLO_STORE_OK;
}

static hello_store_status dbd_put(void *ctx, apr_pool_t *pool, const char *username, hello_date dob,
                                  const char **err)
{
    hello_dbd_store *st = ctx;
    apr_dbd_prepared_t *stmt;
    ap_dbd_t *dbd = connection(st, pool, &st->put, &stmt, err);
    char date[HELLO_DATE_LEN + 1];
    int nrows = 0;
    int rv;

    if (dbd == NULL) {
        return HELLO_STORE_UNAVAILABLE;
    }
    hello_date_format(dob, date);
    /* With autocommit (the driver's default) the row is committed, and with
     * innodb_flush_log_at_trx_commit=1 on disk, when this returns 0. The
     * upsert is idempotent, so a write that lost a conflict is simply run
     * again: on Galera two nodes writing one user at once make one of them
     * fail certification with a deadlock error. */
    for (int attempt = 1;; attempt++) {
        rv = apr_dbd_pvquery(dbd->driver, pool, dbd->handle, &nrows, stmt, username, date, NULL);
        if (rv == 0 || attempt == HELLO_DBD_WRITE_ATTEMPTS || !conflict(dbd, rv)) {
            break;
        }
        /* The write that won may not be applied on this node yet: run again
         * at once and this one can lose to it a second time. */
        apr_sleep(apr_time_from_msec(attempt));
    }
    if (rv != 0) {
        *err = driver_error(dbd, pool, rv, "upsert");
        return HELLO_STORE_UNAVAILABLE;
    }
    return HELLO_STORE_OK;
}

static hello_store_status dbd_del(void *ctx, apr_pool_t *pool, const char *username,
                                  const char **err)
{
    hello_dbd_store *st = ctx;
    apr_dbd_prepared_t *stmt;
    ap_dbd_t *dbd = connection(st, pool, &st->del, &stmt, err);
    int nrows = 0;
    int rv;

    if (dbd == NULL) {
        return HELLO_STORE_UNAVAILABLE;
    }
    rv = apr_dbd_pvquery(dbd->driver, pool, dbd->handle, &nrows, stmt, username, NULL);
    if (rv != 0) {
        *err = driver_error(dbd, pool, rv, "DELETE");
        return HELLO_STORE_UNAVAILABLE;
    }
    return nrows > 0 ? HELLO_STORE_OK : HELLO_STORE_NOT_FOUND;
}

typedef int (*mysql_get_socket_fn)(const void *mysql);

int hello_dbd_socket(ap_dbd_t *dbd)
{
    /* Only the mysql driver loads the client library, so it is looked up
     * at run time rather than linked. Threads racing here store the same
     * address. */
    static mysql_get_socket_fn get_socket;

    if (dbd == NULL || strcmp(apr_dbd_name(dbd->driver), "mysql") != 0) {
        return -1;
    }
    if (get_socket == NULL) {
        get_socket = (mysql_get_socket_fn)dlsym(RTLD_DEFAULT, "mysql_get_socket");
        if (get_socket == NULL) {
            return -1;
        }
    }
    return get_socket(apr_dbd_native_handle(dbd->driver, dbd->handle));
}

void hello_dbd_store_init(hello_store *store, hello_dbd_store *ctx)
{
    store->ctx = ctx;
    store->get = dbd_get;
    store->put = dbd_put;
    store->del = ctx->del.label ? dbd_del : NULL;
}
