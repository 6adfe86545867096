/* The PUT body parser (jansson) and the JSON response writers. */
#include <string.h>

#include <apr_strings.h>
#include <jansson.h>

#include "hello/json.h"

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

hello_body_result hello_body_parse(apr_pool_t *pool, const char *body, size_t len, hello_date *dob)
{
    json_error_t error;
    json_t *root;
    json_t *value;

    if (body == NULL || len == 0) {
        return HELLO_BODY_NOT_JSON;
    }
    /* jansson checks UTF-8, refuses "\u0000" in strings (no JSON_ALLOW_NUL)
     * and trailing garbage (no JSON_DISABLE_EOF_CHECK). */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL) {
        return HELLO_BODY_NOT_JSON;
    }
    apr_pool_cleanup_register(pool, root, json_release, apr_pool_cleanup_null);

    if (!json_is_object(root)) {
        return HELLO_BODY_NOT_OBJECT;
    }
    value = json_object_get(root, "dateOfBirth");
    if (!json_is_string(value)) {
        return HELLO_BODY_NO_DATE;
    }
    if (!hello_date_parse(json_string_value(value), json_string_length(value), dob)) {
        return HELLO_BODY_BAD_DATE;
    }
    return HELLO_BODY_OK;
}

char *hello_json_quote(apr_pool_t *pool, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    /* Worst case: every byte becomes \u00XX. */
    char *out = apr_palloc(pool, n * 6 + 3);
    char *o = out;

    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            if (*p < 0x20 || *p >= 0x7f) {
                /* Control bytes and anything outside ASCII: the reasons are
                 * ours and ASCII, so this only guards against surprises. */
                *o++ = '\\';
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[*p >> 4];
                *o++ = hex[*p & 0xf];
            }
            else {
                *o++ = (char)*p;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

char *hello_json_error(apr_pool_t *pool, const char *reason)
{
    return apr_pstrcat(pool, "{\"error\":", hello_json_quote(pool, reason), "}", NULL);
}

char *hello_json_greeting(apr_pool_t *pool, const char *username, int days)
{
    /* username is letters only (hello_username_is_valid), so it needs no
     * escaping and a template is exact JSON. */
    if (days == 0) {
        return apr_pstrcat(pool, "{\"message\":\"Hello, ", username, "! Happy birthday!\"}", NULL);
    }
    return apr_psprintf(pool, "{\"message\":\"Hello, %s! Your birthday is in %d day(s)\"}",
                        username, days);
}
