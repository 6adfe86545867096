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

/* {"dateOfBirth":" before the date of the canonical body. */
#define HELLO_CANONICAL_HEAD "{\"dateOfBirth\":\""

hello_body_result hello_body_parse(apr_pool_t *pool, const char *body, size_t len, hello_date *dob)
{
    json_error_t error;
    json_t *root;
    json_t *value;

    if (body == NULL || len == 0) {
        return HELLO_BODY_NOT_JSON;
    }
    /* The body every client sends, byte for byte: no parser needed. Only
     * a valid date takes this path, and with ten digits and dashes between
     * the quotes the body is exactly the one-member object jansson would
     * accept; anything else (spacing, other members, a bad date) goes to
     * jansson, so every answer stays the same. */
    if (len == sizeof(HELLO_CANONICAL_HEAD) - 1 + HELLO_DATE_LEN + 2 &&
        memcmp(body, HELLO_CANONICAL_HEAD, sizeof(HELLO_CANONICAL_HEAD) - 1) == 0 &&
        memcmp(body + len - 2, "\"}", 2) == 0 &&
        hello_date_parse(body + sizeof(HELLO_CANONICAL_HEAD) - 1, HELLO_DATE_LEN, dob)) {
        return HELLO_BODY_OK;
    }
    /* jansson checks UTF-8, refuses "\u0000" in strings (no JSON_ALLOW_NUL)
     * and trailing garbage (no JSON_DISABLE_EOF_CHECK); JSON_DECODE_ANY
     * lets a scalar parse, so that it is told apart as "not an object". */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
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

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *p)
{
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        unsigned char hi = p[0] == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80;
        unsigned char hi = p[0] == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

char *hello_json_quote(apr_pool_t *pool, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    /* Worst case: every byte becomes a 6-byte escape. */
    char *out = apr_palloc(pool, n * 6 + 3);
    char *o = out;
    const unsigned char *p = (const unsigned char *)s;

    *o++ = '"';
    while (*p) {
        size_t len;

        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p++;
        }
        else if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            p++;
        }
        else if (*p == '\t') {
            *o++ = '\\';
            *o++ = 't';
            p++;
        }
        else if (*p < 0x20 || *p == 0x7f) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xf];
            p++;
        }
        else if (*p < 0x80) {
            *o++ = (char)*p++;
        }
        else if ((len = utf8_sequence(p)) > 0) {
            /* Well-formed UTF-8 is valid JSON as it stands. */
            memcpy(o, p, len);
            o += len;
            p += len;
        }
        else {
            /* A byte that is not UTF-8 becomes U+FFFD, the replacement
             * character, so the output is always valid JSON. */
            memcpy(o, "\\ufffd", 6);
            o += 6;
            p++;
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
     * escaping and a template is exact JSON. Written piece by piece: the
     * answer every GET sends, without a format string to interpret. */
    static const char head[] = "{\"message\":\"Hello, ";
    static const char today[] = "! Happy birthday!\"}";
    static const char until[] = "! Your birthday is in ";
    static const char tail[] = " day(s)\"}";
    size_t name = strlen(username);
    char digits[12];
    size_t ndigits = 0;
    unsigned int n = days < 0 ? 0U : (unsigned int)days;
    char *out;
    char *o;

    if (days == 0) {
        out = apr_palloc(pool, sizeof(head) - 1 + name + sizeof(today));
        o = out;
        memcpy(o, head, sizeof(head) - 1);
        o += sizeof(head) - 1;
        memcpy(o, username, name);
        o += name;
        memcpy(o, today, sizeof(today)); /* with its NUL */
        return out;
    }
    do {
        digits[ndigits++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    out = apr_palloc(pool, sizeof(head) - 1 + name + sizeof(until) - 1 + ndigits + sizeof(tail));
    o = out;
    memcpy(o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    memcpy(o, username, name);
    o += name;
    memcpy(o, until, sizeof(until) - 1);
    o += sizeof(until) - 1;
    while (ndigits > 0) {
        *o++ = digits[--ndigits];
    }
    memcpy(o, tail, sizeof(tail)); /* with its NUL */
    return out;
}
