/* The handler core (see include/hello/core.h): every decision about a
 * request is made here, in a fixed order, from a parsed request and a store. */
#include <string.h>

#include <apr_strings.h>

#include "hello/core.h"
#include "hello/json.h"
#include "hello/validate.h"

#define ALLOW               "GET, HEAD, PUT"
#define ALLOW_DELETE        "GET, HEAD, PUT, DELETE"
#define METHODS             "GET, HEAD or PUT"
#define METHODS_DELETE      "GET, HEAD, PUT or DELETE"
#define REASON_USERNAME     "username must be 1 to 64 ASCII letters (A-Z, a-z)"
#define REASON_MEDIA_TYPE   "Content-Type must be application/json"
#define REASON_READ         "request body could not be read"
#define REASON_READ_TIMEOUT "request body was not received in time"
#define REASON_NOT_OBJECT \
    "request body must be a JSON object such as {\"dateOfBirth\":\"2000-01-31\"}"
#define REASON_NO_DATE      "dateOfBirth is required, as a string YYYY-MM-DD"
#define REASON_BAD_DATE     "dateOfBirth must be a real date as YYYY-MM-DD, year 1000 or later"
#define REASON_FUTURE_DATE  "dateOfBirth must be a date before today, as YYYY-MM-DD"
#define REASON_UNKNOWN_USER "no date of birth is saved for this username"
#define REASON_UNAVAILABLE  "the database is unavailable; retry later"

static void answer(hello_response *resp, int status, const char *body)
{
    resp->status = status;
    resp->body = body;
    resp->body_len = body ? strlen(body) : 0;
}

static void fail(hello_response *resp, apr_pool_t *pool, int status, const char *reason)
{
    resp->reason = reason;
    answer(resp, status, hello_json_error(pool, reason));
}

static void unavailable(hello_response *resp, apr_pool_t *pool, const hello_request *req,
                        const char *detail)
{
    fail(resp, pool, 503, REASON_UNAVAILABLE);
    resp->retry_after = req->retry_after > 0 ? req->retry_after : 1;
    resp->log_detail = detail;
}

static void handle_get(const hello_request *req, const hello_store *store, apr_pool_t *pool,
                       hello_response *resp)
{
    hello_date dob;
    const char *err = NULL;

    switch (store->get(store->ctx, pool, resp->username, &dob, &err)) {
    case HELLO_STORE_OK:
        break;
    case HELLO_STORE_NOT_FOUND:
        fail(resp, pool, 404, REASON_UNKNOWN_USER);
        return;
    default:
        unavailable(resp, pool, req, err);
        return;
    }
    if (!hello_date_is_valid(dob)) {
        /* Not the client's fault: a row the module would never have written. */
        unavailable(resp, pool, req, "the stored date of birth is not a valid date");
        return;
    }
    answer(resp, 200,
           hello_json_greeting(pool, resp->username, hello_days_until_birthday(dob, req->today)));
}

static void handle_put(const hello_request *req, const hello_store *store, apr_pool_t *pool,
                       hello_response *resp)
{
    const char *body = NULL;
    size_t len = 0;
    int read_status = 400;
    hello_date dob;
    const char *err = NULL;

    if (!hello_content_type_is_json(req->content_type)) {
        fail(resp, pool, 415, REASON_MEDIA_TYPE);
        return;
    }
    switch (req->read_body(req->read_ctx, pool, req->max_body, &body, &len, &read_status)) {
    case HELLO_READ_OK:
        break;
    case HELLO_READ_TOO_LARGE:
        fail(resp, pool, 413, hello_error_reason(pool, req, 413, 1));
        return;
    default:
        read_status = read_status == 408 ? 408 : 400;
        fail(resp, pool, read_status, hello_error_reason(pool, req, read_status, 1));
        return;
    }
    switch (hello_body_parse(pool, body, len, &dob)) {
    case HELLO_BODY_OK:
        break;
    case HELLO_BODY_NO_DATE:
        fail(resp, pool, 400, REASON_NO_DATE);
        return;
    case HELLO_BODY_BAD_DATE:
        fail(resp, pool, 400, REASON_BAD_DATE);
        return;
    default:
        fail(resp, pool, 400, REASON_NOT_OBJECT);
        return;
    }
    if (hello_date_cmp(dob, req->today) >= 0) {
        fail(resp, pool, 400, REASON_FUTURE_DATE);
        return;
    }
    if (store->put(store->ctx, pool, resp->username, dob, &err) != HELLO_STORE_OK) {
        unavailable(resp, pool, req, err);
        return;
    }
    answer(resp, 204, NULL);
}

static void handle_delete(const hello_request *req, const hello_store *store, apr_pool_t *pool,
                          hello_response *resp)
{
    const char *err = NULL;

    switch (store->del(store->ctx, pool, resp->username, &err)) {
    case HELLO_STORE_OK:
        answer(resp, 204, NULL);
        return;
    case HELLO_STORE_NOT_FOUND:
        fail(resp, pool, 404, REASON_UNKNOWN_USER);
        return;
    default:
        unavailable(resp, pool, req, err);
        return;
    }
}

const char *hello_allow(int allow_delete)
{
    return allow_delete ? ALLOW_DELETE : ALLOW;
}

const char *hello_error_reason(apr_pool_t *pool, const hello_request *req, int status, int body)
{
    const char *methods = req->allow_delete ? METHODS_DELETE : METHODS;
    const char *base = req->base ? req->base : "";

    switch (status) {
    case 400:
        return body ? REASON_READ
                    : "the request is malformed: check the URL encoding and the headers";
    case 404:
        return apr_pstrcat(pool, "not found: use ",
                           apr_pstrmemdup(pool, base, hello_path_trim(base, strlen(base))),
                           "/<username>", NULL);
    case 405:
        return apr_pstrcat(pool, "method not allowed: use ", methods, NULL);
    case 408:
        return body ? REASON_READ_TIMEOUT : "the request was not received in time";
    case 411:
        return "a Content-Length or chunked body is required";
    case 413:
        return apr_psprintf(pool, "request body too large: the limit is %" APR_SIZE_T_FMT " bytes",
                            req->max_body);
    case 414:
        return "the URL is too long";
    case 501:
        return apr_pstrcat(pool, "method unknown to the server: use ", methods, NULL);
    default:
        return NULL;
    }
}

void hello_handle(const hello_request *req, const hello_store *store, apr_pool_t *pool,
                  hello_response *resp)
{
    const char *segment;
    size_t segment_len;

    memset(resp, 0, sizeof(*resp));

    if (hello_path_segment(req->path, req->base, &segment, &segment_len) != HELLO_PATH_OK) {
        fail(resp, pool, 404, hello_error_reason(pool, req, 404, 0));
        return;
    }
    if (req->method == HELLO_METHOD_OTHER ||
        (req->method == HELLO_METHOD_DELETE && (!req->allow_delete || store->del == NULL))) {
        hello_request allowed = *req;
        allowed.allow_delete = req->allow_delete && store->del != NULL;
        resp->allow = hello_allow(allowed.allow_delete);
        fail(resp, pool, 405, hello_error_reason(pool, &allowed, 405, 0));
        return;
    }
    if (!hello_username_is_valid(segment, segment_len)) {
        fail(resp, pool, 400, REASON_USERNAME);
        return;
    }
    resp->username = apr_pstrmemdup(pool, segment, segment_len);

    if (req->method == HELLO_METHOD_PUT) {
        handle_put(req, store, pool, resp);
    }
    else if (req->method == HELLO_METHOD_DELETE) {
        handle_delete(req, store, pool, resp);
    }
    else {
        handle_get(req, store, pool, resp);
    }
}
