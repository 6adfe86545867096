/* The store interface on mod_dbd (see include/hello/store_dbd.h): the one
 * file of the core that knows about apr_dbd. Connections are lent by mod_dbd
 * through the glue's take function. Statements are prepared once
 * per pooled connection: by mod_dbd when it opens the connection for those
 * of the Hello*Query directives, and here, the first time a request on that
 * connection needs it, for the module's defaults. So a server or virtual
 * host that never serves mod_hello never prepares them, and a driver whose
 * SQL differs (sqlite3) only needs the statements it uses overridden. */
#include <dlfcn.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_time.h>
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

const char hello_dbd_no_connection[] = "no database connection could be taken from mod_dbd "
                                       "(see the DBD error logged before this line)";

/* What a statement run gets and gives: the username, the date to write,
 * the date read. */
typedef struct call_args {
    const char *username;
    const char *date;
    hello_date *dob;
} call_args;

/* Runs one prepared statement: a hello_store_status, or -1 when the
 * database failed (the connection may have died). */
typedef int (*run_fn)(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool,
                      const call_args *args, const char **err);

/* The statement on the connection, prepared there first for a default;
 * NULL with *err set when that fails or a directive's one is missing. */
static apr_dbd_prepared_t *statement(ap_dbd_t *dbd, apr_pool_t *pool,
                                     const hello_dbd_statement *which, const char **err)
{
    apr_dbd_prepared_t *stmt = apr_hash_get(dbd->prepared, which->label, APR_HASH_KEY_STRING);

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

/* A loan from mod_dbd, watched: its ping can hang on a database that stopped
 * answering. The socket is watched from now on, before any statement. */
static ap_dbd_t *take(hello_dbd_store *st)
{
    int slot = hello_watchdog_begin(st->watchdog, HELLO_WATCH_LOAN);
    ap_dbd_t *dbd = st->take(st->arg, st->loans > 0);

    hello_watchdog_end(st->watchdog, slot);
    st->loans++;
    if (dbd != NULL) {
        hello_watchdog_add_socket(st->watchdog, hello_dbd_socket(dbd), dbd->pool);
    }
    return dbd;
}

static const char *const status_names[] = { "ok", "not found", "unavailable" };

/* One store call on the request's connection, taken first if needed (see
 * include/hello/store_dbd.h for when a second loan is made). */
static hello_store_status run(hello_dbd_store *st, apr_pool_t *pool, const char *op,
                              const hello_dbd_statement *which, run_fn fn, const call_args *args,
                              const char **err)
{
    apr_time_t start = apr_time_now();
    int result = -1;

    *err = NULL;
    while (st->dbd == NULL && (st->dbd = take(st)) == NULL) {
        *err = hello_dbd_no_connection;
        if (st->loans >= 2 || !apr_atomic_read32(&st->state->answered)) {
            apr_atomic_set32(&st->state->answered, 0);
            break;
        }
    }
    if (st->dbd != NULL) {
        int slot = hello_watchdog_begin(st->watchdog, HELLO_WATCH_CALL);
        apr_dbd_prepared_t *stmt;
        apr_status_t rv;

        *err = NULL;
        stmt = statement(st->dbd, pool, which, err);
        result = stmt ? fn(st->dbd, stmt, pool, args, err) : -1;
        hello_watchdog_end(st->watchdog, slot);
        /* A failure on a live connection is the statement's own (a denied
         * grant, a missing table). On a dead one (the watchdog cut it, the
         * server went away since mod_dbd's check) the database may be down:
         * the request answers 503 and mod_dbd drops the connection when it
         * next checks it. */
        rv = result < 0 ? apr_dbd_check_conn(st->dbd->driver, pool, st->dbd->handle) : 0;
        apr_atomic_set32(&st->state->answered, rv == APR_SUCCESS || rv == APR_ENOTIMPL);
    }
    if (result < 0) {
        result = HELLO_STORE_UNAVAILABLE;
    }
    if (result == HELLO_STORE_UNAVAILABLE && st->metrics) {
        hello_metrics_db_error(st->metrics);
    }
    if (st->trace) {
        st->trace(st->arg, apr_psprintf(pool,
                                        "mod_hello: store %s %s: %s%s%s (%" APR_TIME_T_FMT
                                        " us, %d connection%s)",
                                        op, args->username, status_names[result], *err ? ": " : "",
                                        *err ? *err : "", apr_time_now() - start, st->loans,
                                        st->loans == 1 ? "" : "s"));
    }
    return (hello_store_status)result;
}

/* One SELECT: HELLO_STORE_OK / NOT_FOUND, or -1 when the database failed. */
static int select_date(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool,
                       const call_args *args, const char **err)
{
    hello_date *dob = args->dob;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    int valid = 0;
    int rv = apr_dbd_pvselect(dbd->driver, pool, dbd->handle, &res, stmt, 0, args->username, NULL);

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
    call_args args = { username, NULL, dob };

    return run(st, pool, "get", st->get, select_date, &args, err);
}

/* One upsert, run again while it loses a conflict. */
static int upsert(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool, const call_args *args,
                  const char **err)
{
    int nrows = 0;

    /* With autocommit (the driver's default) the row is committed, and with
     * innodb_flush_log_at_trx_commit=1 on disk, when this returns 0. The
     * upsert is idempotent, so a write that lost a conflict is simply run
     * again: on Galera two nodes writing one user at once make one of them
     * fail certification with a deadlock error. */
    for (int attempt = 1;; attempt++) {
        int rv = apr_dbd_pvquery(dbd->driver, pool, dbd->handle, &nrows, stmt, args->username,
                                 args->date, NULL);
        if (rv == 0) {
            return HELLO_STORE_OK;
        }
        if (attempt == HELLO_DBD_WRITE_ATTEMPTS || !conflict(dbd, rv)) {
            *err = driver_error(dbd, pool, rv, "upsert");
            return -1;
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
    call_args args = { username, date, NULL };

    hello_date_format(dob, date);
    return run(st, pool, "put", st->put, upsert, &args, err);
}

static int erase(ap_dbd_t *dbd, apr_dbd_prepared_t *stmt, apr_pool_t *pool, const call_args *args,
                 const char **err)
{
    int nrows = 0;
    int rv = apr_dbd_pvquery(dbd->driver, pool, dbd->handle, &nrows, stmt, args->username, NULL);

    if (rv != 0) {
        *err = driver_error(dbd, pool, rv, "DELETE");
        return -1;
    }
    return nrows > 0 ? HELLO_STORE_OK : HELLO_STORE_NOT_FOUND;
}

static hello_store_status dbd_del(void *ctx, apr_pool_t *pool, const char *username,
                                  const char **err)
{
    hello_dbd_store *st = ctx;
    call_args args = { username, NULL, NULL };

    return run(st, pool, "delete", st->del, erase, &args, err);
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
    ctx->loans = 0;
    store->ctx = ctx;
    store->get = dbd_get;
    store->put = dbd_put;
    store->del = ctx->del ? dbd_del : NULL;
}
