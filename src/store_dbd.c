/* The store interface on mod_dbd (see include/hello/store_dbd.h): the one
 * file of the core that knows about apr_dbd. Connections come from mod_dbd
 * through the glue's park (include/hello/park.h). Statements are prepared once
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

/* How many times one store call runs its statement: once, and again after
 * each dead parked connection it replaced (another thread may park a dead
 * one between the flush and the next take). */
#define HELLO_DBD_RUNS 3

/* The statement `which` on the request's connection, taking one first if
 * needed; NULL with *err set when there is no connection or no statement. */
static apr_dbd_prepared_t *statement(hello_dbd_store *st, apr_pool_t *pool,
                                     const hello_dbd_statement *which, const char **err)
{
    apr_dbd_prepared_t *stmt;
    ap_dbd_t *dbd;

    if (st->dbd == NULL) {
        st->dbd = st->acquire(st->arg, &st->reused);
        if (st->dbd == NULL) {
            *err = "no database connection could be acquired from mod_dbd "
                   "(see the DBD error logged before this line)";
            return NULL;
        }
    }
    dbd = st->dbd;
    stmt = apr_hash_get(dbd->prepared, which->label, APR_HASH_KEY_STRING);
    if (stmt == NULL && which->sql != NULL) {
        /* Lives as long as the connection: its pool, its hash. The request
         * holds the connection alone, so no other thread sees the hash. */
        const char *label = apr_pstrdup(dbd->pool, which->label);
        int rv = apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle, which->sql, label, &stmt);
        if (rv != 0) {
            *err = driver_error(dbd, pool, rv, apr_pstrcat(pool, "preparing ", label, NULL));
            return NULL;
        }
        apr_hash_set(dbd->prepared, label, APR_HASH_KEY_STRING, stmt);
    }
    if (stmt == NULL) {
        *err = apr_psprintf(pool, "the prepared statement %s is missing from the connection",
                            which->label);
    }
    return stmt;
}

/* Called when a statement (or preparing it) failed on the request's
 * connection: 1 if it should run again on another connection. Checks the
 * connection now, which is the check mod_dbd would have made before lending
 * it: alive, the failure was the statement's own and stands. Dead, it goes
 * back to mod_dbd (which drops it at its next check) and so do the other
 * parked ones; only a statement that failed on a parked connection runs
 * again, one mod_dbd had just checked failing means the database is down. */
static int replace_dead(hello_dbd_store *st, apr_pool_t *pool, int run)
{
    ap_dbd_t *dbd = st->dbd;
    apr_status_t rv;

    if (dbd == NULL) {
        return 0; /* none could be acquired */
    }
    rv = apr_dbd_check_conn(dbd->driver, pool, dbd->handle);
    if (rv == APR_SUCCESS || rv == APR_ENOTIMPL) {
        return 0;
    }
    st->release(st->arg, dbd, 0);
    st->dbd = NULL;
    if (!st->reused || run >= HELLO_DBD_RUNS) {
        return 0;
    }
    /* The next acquire gets past the dead ones mod_dbd drops. */
    st->flush(st->arg);
    st->replaced++;
    return 1;
}

/* One SELECT: HELLO_STORE_OK / NOT_FOUND, or -1 when the database failed. */
static int select_date(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool,
                       const char *username, hello_date *dob, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    int valid = 0;
    int rv = apr_dbd_pvselect(dbd->driver, pool, dbd->handle, &res, stmt, 0, username, NULL);

    if (rv != 0) {
        *err = driver_error(dbd, pool, rv, "SELECT");
        return -1;
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
        return -1;
    }
    if (found && !valid) {
        /* Not the connection's fault: no other run would do better. */
        *err = "the stored date of birth is not a valid YYYY-MM-DD date";
        return HELLO_STORE_UNAVAILABLE;
    }
    return found ? HELLO_STORE_OK : HELLO_STORE_NOT_FOUND;
}

static hello_store_status dbd_get(void *ctx, apr_pool_t *pool, const char *username,
                                  hello_date *dob, const char **err)
{
    hello_dbd_store *st = ctx;

    for (int run = 1;; run++) {
        apr_dbd_prepared_t *stmt = statement(st, pool, &st->get, err);
        int result = stmt ? select_date(st->dbd, stmt, pool, username, dob, err) : -1;
        if (result >= 0) {
            return (hello_store_status)result;
        }
        if (!replace_dead(st, pool, run)) {
            return HELLO_STORE_UNAVAILABLE;
        }
    }
}

/* One upsert, run again while it loses a conflict: 0 or the driver's error. */
static int upsert(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool, const char *username,
                  const char *date)
{
    int nrows = 0;

    /* With autocommit (the driver's default) the row is committed, and with
     * innodb_flush_log_at_trx_commit=1 on disk, when this returns 0. The
     * upsert is idempotent, so a write that lost a conflict is simply run
     * again: on Galera two nodes writing one user at once make one of them
     * fail certification with a deadlock error. */
    for (int attempt = 1;; attempt++) {
        int rv =
            apr_dbd_pvquery(dbd->driver, pool, dbd->handle, &nrows, stmt, username, date, NULL);
        if (rv == 0 || attempt == HELLO_DBD_WRITE_ATTEMPTS || !conflict(dbd, rv)) {
            return rv;
        }
        /* The write that won may not be applied on this node yet: run again
         * at once and this one can lose to it a second time. */
        apr_sleep(apr_time_from_msec(attempt));
    }
}

static hello_store_status dbd_put(void *ctx, apr_pool_t *pool, const char *username, hello_date dob,
                                  const char **err)
{
    hello_dbd_store *st = ctx;
    char date[HELLO_DATE_LEN + 1];

    hello_date_format(dob, date);
    for (int run = 1;; run++) {
        apr_dbd_prepared_t *stmt = statement(st, pool, &st->put, err);
        if (stmt != NULL) {
            int rv = upsert(st->dbd, stmt, pool, username, date);
            if (rv == 0) {
                return HELLO_STORE_OK;
            }
            *err = driver_error(st->dbd, pool, rv, "upsert");
        }
        if (!replace_dead(st, pool, run)) {
            return HELLO_STORE_UNAVAILABLE;
        }
    }
}

static hello_store_status dbd_del(void *ctx, apr_pool_t *pool, const char *username,
                                  const char **err)
{
    hello_dbd_store *st = ctx;

    for (int run = 1;; run++) {
        apr_dbd_prepared_t *stmt = statement(st, pool, &st->del, err);
        if (stmt != NULL) {
            int nrows = 0;
            int rv = apr_dbd_pvquery(st->dbd->driver, pool, st->dbd->handle, &nrows, stmt, username,
                                     NULL);
            if (rv == 0) {
                return nrows > 0 ? HELLO_STORE_OK : HELLO_STORE_NOT_FOUND;
            }
            *err = driver_error(st->dbd, pool, rv, "DELETE");
        }
        if (!replace_dead(st, pool, run)) {
            return HELLO_STORE_UNAVAILABLE;
        }
    }
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
    ctx->dbd = NULL;
    ctx->reused = 0;
    ctx->replaced = 0;
    store->ctx = ctx;
    store->get = dbd_get;
    store->put = dbd_put;
    store->del = ctx->del.label ? dbd_del : NULL;
}

void hello_dbd_store_done(hello_dbd_store *ctx)
{
    if (ctx->dbd != NULL) {
        ctx->release(ctx->arg, ctx->dbd, 1);
        ctx->dbd = NULL;
    }
}
