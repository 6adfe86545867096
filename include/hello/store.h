/* The store interface: how the handler core reads and writes dates of birth.
 * Production plugs in mod_dbd (store_dbd.h); unit tests plug in a fake. */
#ifndef HELLO_STORE_H
#define HELLO_STORE_H

#include <apr_pools.h>
#include "hello/date.h"

typedef enum hello_store_status {
    HELLO_STORE_OK = 0,
    HELLO_STORE_NOT_FOUND,  /* get only: no row for this username */
    HELLO_STORE_UNAVAILABLE /* the database could not answer; *err says why */
} hello_store_status;

typedef struct hello_store {
    void *ctx;
    /* Reads the date of birth saved for username into *dob.
     * On HELLO_STORE_UNAVAILABLE, *err is a message for the error log,
     * allocated from pool (never NULL). */
    hello_store_status (*get)(void *ctx, apr_pool_t *pool, const char *username, hello_date *dob,
                              const char **err);
    /* Saves or replaces username's date of birth, durably, before returning
     * HELLO_STORE_OK. Never answers HELLO_STORE_NOT_FOUND. */
    hello_store_status (*put)(void *ctx, apr_pool_t *pool, const char *username, hello_date dob,
                              const char **err);
    /* Erases username's row: HELLO_STORE_OK when one was removed,
     * HELLO_STORE_NOT_FOUND when there was none. NULL when the store
     * cannot erase; the core then refuses DELETE. */
    hello_store_status (*del)(void *ctx, apr_pool_t *pool, const char *username, const char **err);
} hello_store;

#endif
