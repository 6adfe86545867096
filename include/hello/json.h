/* JSON for mod_hello: the PUT body parser (jansson) and the response writers. */
#ifndef HELLO_JSON_H
#define HELLO_JSON_H

#include <stddef.h>
#include <apr_pools.h>
#include "hello/date.h"

typedef enum hello_body_result {
    HELLO_BODY_OK = 0,
    HELLO_BODY_NOT_JSON,   /* not one well-formed UTF-8 JSON value */
    HELLO_BODY_NOT_OBJECT, /* valid JSON, but not an object */
    HELLO_BODY_NO_DATE,    /* no "dateOfBirth" member, or not a string */
    HELLO_BODY_BAD_DATE    /* "dateOfBirth" is not a real YYYY-MM-DD date */
} hello_body_result;

/* Parses a PUT body (len bytes, not NUL-terminated) and reads its
 * dateOfBirth into *dob. Duplicate member names are refused as NOT_JSON.
 * The parsed document is released by a cleanup on pool, so no return path
 * can leak it; nothing of it is referenced after the call. */
hello_body_result hello_body_parse(apr_pool_t *pool, const char *body, size_t len, hello_date *dob);

/* s as a JSON string literal (with quotes), in pool. Well-formed UTF-8 is
 * kept; a byte that is not UTF-8 becomes \ufffd, so the result is always
 * valid JSON. */
char *hello_json_quote(apr_pool_t *pool, const char *s);

/* {"error":"<reason>"} */
char *hello_json_error(apr_pool_t *pool, const char *reason);

/* {"message":"Hello, <username>! ..."}; username must be valid (letters only). */
char *hello_json_greeting(apr_pool_t *pool, const char *username, int days);

#endif
