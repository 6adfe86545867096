/* Shared support for the cmocka unit tests (header only: every test program
 * includes it, and the Makefile rebuilds every test when it changes).
 *
 *   - fake_store:  an in-memory hello_store (include/hello/store.h) with a few
 *                  seeded rows, switches that make get/put answer
 *                  HELLO_STORE_UNAVAILABLE, and call counters.
 *   - fake_reader: a hello_body_reader (include/hello/core.h) that serves a
 *                  given buffer, answers TOO_LARGE over max, FAILED on demand,
 *                  and counts its calls.
 *   - exact_copy:  a heap copy of exactly len bytes (no NUL after it), so
 *                  AddressSanitizer catches any read past len.
 *   - unit_*:      cmocka group/test fixtures: apr_initialize once per group,
 *                  a fresh APR pool per test, destroyed in teardown.
 *
 * Everything is static inline so that a test program that uses only part of
 * it compiles cleanly under -Wall -Wextra -Werror. Nothing here includes
 * cmocka.h; the fixtures merely have cmocka's signature. */
#ifndef HELLO_TEST_FAKE_STORE_H
#define HELLO_TEST_FAKE_STORE_H

#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hello/core.h"
#include "hello/date.h"
#include "hello/store.h"

/* ---- exact-size heap copies ---------------------------------------------- */

/* A malloc'd copy of s[0..len) with nothing after it (free it). */
static inline char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);

    if (p != NULL && len > 0) {
        memcpy(p, s, len);
    }
    return p;
}

static inline apr_status_t exact_copy_release(void *data)
{
    free(data);
    return APR_SUCCESS;
}

/* Like exact_copy, but freed when pool is cleared or destroyed. */
static inline char *exact_copy_in(apr_pool_t *pool, const char *s, size_t len)
{
    char *p = exact_copy(s, len);

    if (p != NULL) {
        apr_pool_cleanup_register(pool, p, exact_copy_release, apr_pool_cleanup_null);
    }
    return p;
}

/* ---- the fake store ------------------------------------------------------ */

#define FAKE_STORE_MAX_ROWS 32
#define FAKE_STORE_NAME_MAX 128

typedef struct fake_row {
    char username[FAKE_STORE_NAME_MAX];
    hello_date dob;
} fake_row;

typedef struct fake_store {
    fake_row rows[FAKE_STORE_MAX_ROWS];
    size_t nrows;

    /* Switches: when set, get/put answer HELLO_STORE_UNAVAILABLE with *err
     * a pool copy of the message. */
    int get_unavailable;
    const char *get_error;
    int put_unavailable;
    const char *put_error;

    /* Counters and what the last call saw. */
    int get_calls;
    int put_calls;
    int del_calls;
    int del_unavailable;
    const char *del_error;
    char last_get_username[FAKE_STORE_NAME_MAX];
    char last_put_username[FAKE_STORE_NAME_MAX];
    hello_date last_put_dob;

    hello_store iface; /* what hello_handle is given */
} fake_store;

/* The seeded rows (see fake_store_init). */
#define FAKE_ALICE_DOB ((hello_date){1990, 6, 20})
#define FAKE_BOB_DOB ((hello_date){2000, 2, 29})
#define FAKE_CAROL_DOB ((hello_date){1985, 12, 31})
#define FAKE_DAVE_DOB ((hello_date){1970, 1, 1})

static inline fake_row *fake_store_find(fake_store *fs, const char *username)
{
    for (size_t i = 0; i < fs->nrows; i++) {
        if (strcmp(fs->rows[i].username, username) == 0) {
            return &fs->rows[i];
        }
    }
    return NULL;
}

/* Inserts or replaces a row without any validation, so a test can plant a
 * row the module would never write (2001-02-29, year 999...).
 * Returns 0 when the table is full or the name too long. */
static inline int fake_store_set(fake_store *fs, const char *username, hello_date dob)
{
    fake_row *row = fake_store_find(fs, username);

    if (row == NULL) {
        if (fs->nrows == FAKE_STORE_MAX_ROWS || strlen(username) >= FAKE_STORE_NAME_MAX) {
            return 0;
        }
        row = &fs->rows[fs->nrows++];
        strcpy(row->username, username);
    }
    row->dob = dob;
    return 1;
}

/* 1 and *dob when username has a row. */
static inline int fake_store_lookup(fake_store *fs, const char *username, hello_date *dob)
{
    fake_row *row = fake_store_find(fs, username);

    if (row == NULL) {
        return 0;
    }
    *dob = row->dob;
    return 1;
}

static inline void fake_copy_name(char dst[FAKE_STORE_NAME_MAX], const char *src)
{
    size_t n = src ? strlen(src) : 0;

    if (n >= FAKE_STORE_NAME_MAX) {
        n = FAKE_STORE_NAME_MAX - 1;
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static inline hello_store_status fake_store_get(void *ctx, apr_pool_t *pool,
                                                const char *username, hello_date *dob,
                                                const char **err)
{
    fake_store *fs = ctx;

    fs->get_calls++;
    fake_copy_name(fs->last_get_username, username);
    if (fs->get_unavailable) {
        *err = apr_pstrdup(pool, fs->get_error ? fs->get_error : "fake store: get failed");
        return HELLO_STORE_UNAVAILABLE;
    }
    if (username == NULL || !fake_store_lookup(fs, username, dob)) {
        return HELLO_STORE_NOT_FOUND;
    }
    return HELLO_STORE_OK;
}

static inline hello_store_status fake_store_put(void *ctx, apr_pool_t *pool,
                                                const char *username, hello_date dob,
                                                const char **err)
{
    fake_store *fs = ctx;

    fs->put_calls++;
    fake_copy_name(fs->last_put_username, username);
    fs->last_put_dob = dob;
    if (fs->put_unavailable) {
        *err = apr_pstrdup(pool, fs->put_error ? fs->put_error : "fake store: put failed");
        return HELLO_STORE_UNAVAILABLE;
    }
    if (username == NULL || !fake_store_set(fs, username, dob)) {
        *err = apr_pstrdup(pool, "fake store: table full or name too long");
        return HELLO_STORE_UNAVAILABLE;
    }
    return HELLO_STORE_OK;
}

static inline hello_store_status fake_store_del(void *ctx, apr_pool_t *pool,
                                                const char *username, const char **err)
{
    fake_store *fs = ctx;
    fake_row *row;

    (void)pool;
    fs->del_calls++;
    if (fs->del_unavailable) {
        *err = fs->del_error;
        return HELLO_STORE_UNAVAILABLE;
    }
    row = fake_store_find(fs, username);
    if (row == NULL) {
        return HELLO_STORE_NOT_FOUND;
    }
    *row = fs->rows[--fs->nrows];
    return HELLO_STORE_OK;
}

/* Empties *fs, seeds alice, Bob, carol and dave, and wires fs->iface. */
static inline void fake_store_init(fake_store *fs)
{
    memset(fs, 0, sizeof(*fs));
    fake_store_set(fs, "alice", FAKE_ALICE_DOB);
    fake_store_set(fs, "Bob", FAKE_BOB_DOB);
    fake_store_set(fs, "carol", FAKE_CAROL_DOB);
    fake_store_set(fs, "dave", FAKE_DAVE_DOB);
    fs->iface.ctx = fs;
    fs->iface.get = fake_store_get;
    fs->iface.put = fake_store_put;
    fs->iface.del = fake_store_del;
}

static inline void fake_store_fail_get(fake_store *fs, const char *message)
{
    fs->get_unavailable = 1;
    fs->get_error = message;
}

static inline void fake_store_fail_put(fake_store *fs, const char *message)
{
    fs->put_unavailable = 1;
    fs->put_error = message;
}

static inline void fake_store_reset_counters(fake_store *fs)
{
    fs->get_calls = 0;
    fs->put_calls = 0;
    fs->del_calls = 0;
    fs->last_get_username[0] = '\0';
    fs->last_put_username[0] = '\0';
}

/* ---- the fake body reader ------------------------------------------------ */

typedef struct fake_reader {
    const char *data;  /* the body to serve (need not be NUL-terminated) */
    size_t len;
    int fail;          /* answer HELLO_READ_FAILED */
    int fail_status;   /* ...setting *status to this, unless 0 (left untouched) */
    int null_body;     /* answer OK with *body NULL and *len 0 */
    int calls;
    size_t last_max;
} fake_reader;

static inline void fake_reader_init(fake_reader *fr, const char *data, size_t len)
{
    memset(fr, 0, sizeof(*fr));
    fr->data = data;
    fr->len = len;
}

static inline void fake_reader_set(fake_reader *fr, const char *s)
{
    fr->data = s;
    fr->len = s ? strlen(s) : 0;
}

static inline void fake_reader_set_mem(fake_reader *fr, const char *data, size_t len)
{
    fr->data = data;
    fr->len = len;
}

/* FAILED with *status = status (0: leave *status as the caller set it). */
static inline void fake_reader_fail(fake_reader *fr, int status)
{
    fr->fail = 1;
    fr->fail_status = status;
}

/* A hello_body_reader: ctx is a fake_reader. The body handed out is an
 * exact-size heap copy released with pool, so a read past len is caught. */
static inline hello_read_result fake_reader_read(void *ctx, apr_pool_t *pool, size_t max,
                                                 const char **body, size_t *len, int *status)
{
    fake_reader *fr = ctx;

    fr->calls++;
    fr->last_max = max;
    if (fr->fail) {
        if (fr->fail_status != 0) {
            *status = fr->fail_status;
        }
        return HELLO_READ_FAILED;
    }
    if (fr->len > max) {
        return HELLO_READ_TOO_LARGE;
    }
    if (fr->null_body) {
        *body = NULL;
        *len = 0;
        return HELLO_READ_OK;
    }
    *body = exact_copy_in(pool, fr->data ? fr->data : "", fr->len);
    *len = fr->len;
    return HELLO_READ_OK;
}

/* ---- cmocka fixtures ----------------------------------------------------- */

static inline int unit_group_setup(void **state)
{
    (void)state;
    return apr_initialize() == APR_SUCCESS ? 0 : -1;
}

static inline int unit_group_teardown(void **state)
{
    (void)state;
    apr_terminate();
    return 0;
}

/* *state becomes a fresh pool. */
static inline int unit_pool_setup(void **state)
{
    apr_pool_t *pool = NULL;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = pool;
    return 0;
}

static inline int unit_pool_teardown(void **state)
{
    if (*state != NULL) {
        apr_pool_destroy((apr_pool_t *)*state);
        *state = NULL;
    }
    return 0;
}

#endif
