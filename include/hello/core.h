/* The handler core: a parsed request in, a status and a body out.
 * It knows nothing of request_rec; mod_hello.c converts both ways. */
#ifndef HELLO_CORE_H
#define HELLO_CORE_H

#include <stddef.h>
#include <apr_pools.h>
#include "hello/date.h"
#include "hello/store.h"

typedef enum hello_method {
    HELLO_METHOD_GET = 0,
    HELLO_METHOD_HEAD,
    HELLO_METHOD_PUT,
    HELLO_METHOD_DELETE,
    HELLO_METHOD_OTHER,
    HELLO_METHOD_COUNT
} hello_method;

typedef enum hello_read_result {
    HELLO_READ_OK = 0,
    HELLO_READ_TOO_LARGE, /* more than max bytes: nothing more was read */
    HELLO_READ_FAILED     /* the client's body was malformed, slow or cut */
} hello_read_result;

/* Reads the whole request body, at most max bytes, into pool memory.
 * On HELLO_READ_FAILED, *status is the HTTP status to answer (400, 408...). */
typedef hello_read_result (*hello_body_reader)(void *ctx, apr_pool_t *pool, size_t max,
                                               const char **body, size_t *len, int *status);

typedef struct hello_request {
    hello_method method;
    const char *path;         /* URL-decoded path, e.g. "/hello/alice" */
    const char *base;         /* the location's path, e.g. "/hello" */
    const char *content_type; /* Content-Type header, NULL when absent */
    hello_date today;         /* the current UTC date */
    size_t max_body;          /* HelloMaxBodySize */
    int retry_after;          /* seconds, for 503 answers */
    int allow_delete;         /* HelloAllowDelete: DELETE erases, else 405 */
    hello_body_reader read_body;
    void *read_ctx;
} hello_request;

typedef struct hello_response {
    int status;
    const char *body; /* NULL for 204; JSON otherwise */
    size_t body_len;
    const char *allow;      /* Allow header for 405, else NULL */
    int retry_after;        /* Retry-After seconds for 503, else 0 */
    const char *reason;     /* why an error was answered (for logs and notes) */
    const char *log_detail; /* the store's own error message, for the error log */
    const char *username;   /* the validated username, when one was parsed */
} hello_response;

#define HELLO_CONTENT_TYPE "application/json"

/* The Allow header of a location: GET, HEAD, PUT, and DELETE with
 * HelloAllowDelete On. */
const char *hello_allow(int allow_delete);

/* The reason of an error answered for req with status, whoever answers it:
 * the core, or Apache itself before or around the handler (a bad %-escape,
 * an unknown method, a body its filters refuse). body: the error came while
 * reading the PUT body (413: too large, 408: too slow, else unreadable). */
const char *hello_error_reason(apr_pool_t *pool, const hello_request *req, int status, int body);

/* Answers one request. Every field of *resp is set; strings live in pool.
 * Never answers 500: every failure of the client is a 4xx, every failure
 * of the store a 503. */
void hello_handle(const hello_request *req, const hello_store *store, apr_pool_t *pool,
                  hello_response *resp);

#endif
