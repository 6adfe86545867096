/* libFuzzer target: the whole handler core over a fake store. The input is
 * split on 0xff bytes into: method byte, path, content type, body, and
 * flags (store up or down, body reader outcome). */
#include <string.h>

#include <apr_strings.h>
#include <jansson.h>

#include "fuzz_common.h"
#include "hello/core.h"

typedef struct fake {
    int down;
    int has_row;
    hello_date row;
} fake;

static hello_store_status fake_get(void *ctx, apr_pool_t *pool, const char *username,
                                   hello_date *dob, const char **err)
{
    fake *f = ctx;
    (void)pool;
    FUZZ_ASSERT(username != NULL && *username != '\0');
    if (f->down) {
        *err = "fake store is down";
        return HELLO_STORE_UNAVAILABLE;
    }
    if (!f->has_row) {
        return HELLO_STORE_NOT_FOUND;
    }
    *dob = f->row;
    return HELLO_STORE_OK;
}

static hello_store_status fake_put(void *ctx, apr_pool_t *pool, const char *username,
                                   hello_date dob, const char **err)
{
    fake *f = ctx;
    (void)pool;
    FUZZ_ASSERT(username != NULL && hello_date_is_valid(dob));
    if (f->down) {
        *err = "fake store is down";
        return HELLO_STORE_UNAVAILABLE;
    }
    f->has_row = 1;
    f->row = dob;
    return HELLO_STORE_OK;
}

static hello_store_status fake_del(void *ctx, apr_pool_t *pool, const char *username,
                                   const char **err)
{
    fake *f = ctx;
    (void)pool;
    FUZZ_ASSERT(username != NULL && *username != '\0');
    if (f->down) {
        *err = "fake store is down";
        return HELLO_STORE_UNAVAILABLE;
    }
    if (!f->has_row) {
        return HELLO_STORE_NOT_FOUND;
    }
    f->has_row = 0;
    return HELLO_STORE_OK;
}

typedef struct reader {
    const char *body;
    size_t len;
    int outcome;
} reader;

static hello_read_result fake_read(void *ctx, apr_pool_t *pool, size_t max, const char **body,
                                   size_t *len, int *status)
{
    reader *rd = ctx;
    (void)pool;
    if (rd->outcome == 1) {
        *status = 408;
        return HELLO_READ_FAILED;
    }
    if (rd->outcome == 2) {
        *status = 400;
        return HELLO_READ_FAILED;
    }
    if (rd->len > max) {
        return HELLO_READ_TOO_LARGE;
    }
    *body = rd->body;
    *len = rd->len;
    return HELLO_READ_OK;
}

/* The next 0xff-separated field of the input, copied into the pool. */
static const char *field(apr_pool_t *pool, const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *start = *p;
    const uint8_t *stop = memchr(start, 0xff, (size_t)(end - start));

    if (stop == NULL) {
        stop = end;
    }
    *len = (size_t)(stop - start);
    *p = stop < end ? stop + 1 : end;
    return apr_pstrmemdup(pool, (const char *)start, *len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    const uint8_t *p = data;
    const uint8_t *end = data + size;
    size_t n;
    const char *method = field(pool, &p, end, &n);
    const char *path = field(pool, &p, end, &n);
    const char *ctype = field(pool, &p, end, &n);
    const char *body = field(pool, &p, end, &n);
    size_t body_len = n;
    const char *flags = field(pool, &p, end, &n);
    fake f = { 0, 0, { 2000, 2, 29 } };
    reader rd = { body, body_len, 0 };
    hello_store store = { &f, fake_get, fake_put, fake_del };
    hello_request req;
    hello_response resp;

    f.down = n > 0 && (flags[0] & 1);
    f.has_row = n > 0 && (flags[0] & 2);
    rd.outcome = n > 0 ? (flags[0] >> 2) % 4 : 0;

    req.method = (hello_method)((method[0] & 0xff) % 5);
    req.path = path;
    req.base = "/hello";
    req.content_type = ctype[0] == '\0' ? NULL : ctype;
    req.today = (hello_date){ 2024, 2, 29 };
    req.max_body = 256;
    req.retry_after = 5;
    req.allow_delete = n > 0 && (flags[0] & 16);
    req.read_body = fake_read;
    req.read_ctx = &rd;

    hello_handle(&req, &store, pool, &resp);

    switch (resp.status) {
    case 200:
    case 204:
    case 400:
    case 404:
    case 405:
    case 408:
    case 413:
    case 415:
    case 503:
        break;
    default:
        FUZZ_ASSERT(!"unexpected status");
    }
    FUZZ_ASSERT((resp.status == 204) == (resp.body == NULL));
    if (resp.body) {
        json_error_t err;
        json_t *doc = json_loadb(resp.body, resp.body_len, 0, &err);
        FUZZ_ASSERT(doc != NULL && json_is_object(doc) && json_object_size(doc) == 1);
        FUZZ_ASSERT(json_is_string(json_object_get(doc, resp.status == 200 ? "message" : "error")));
        json_decref(doc);
    }
    FUZZ_ASSERT((resp.status == 405) == (resp.allow != NULL));
    FUZZ_ASSERT((resp.status == 503) == (resp.retry_after > 0));
    FUZZ_ASSERT(resp.status < 400 || resp.reason != NULL);
    apr_pool_destroy(pool);
    return 0;
}
