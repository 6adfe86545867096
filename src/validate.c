/* Usernames, request paths and media types (see include/hello/validate.h). */
#include <string.h>

#include "hello/validate.h"

int hello_username_is_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > HELLO_USERNAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
            return 0;
        }
    }
    return 1;
}

size_t hello_path_trim(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] == '/') {
        len--;
    }
    return len;
}

hello_path_result hello_path_segment(const char *path, const char *base, const char **segment,
                                     size_t *segment_len)
{
    size_t base_len = base ? hello_path_trim(base, strlen(base)) : 0;
    const char *rest;

    if (path == NULL || strncmp(path, base ? base : "", base_len) != 0) {
        return HELLO_PATH_NOT_FOUND;
    }
    rest = path + base_len;
    if (rest[0] != '/' || rest[1] == '\0') {
        return HELLO_PATH_NOT_FOUND;
    }
    rest++;
    if (strchr(rest, '/') != NULL) {
        return HELLO_PATH_NOT_FOUND;
    }
    *segment = rest;
    *segment_len = strlen(rest);
    return HELLO_PATH_OK;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int hello_content_type_is_json(const char *content_type)
{
    static const char json[] = "application/json";
    const size_t json_len = sizeof(json) - 1;
    const char *p = content_type;

    if (p == NULL) {
        return 1;
    }
    while (is_space(*p)) {
        p++;
    }
    for (size_t i = 0; i < json_len; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != json[i]) {
            return 0;
        }
    }
    p += json_len;
    while (is_space(*p)) {
        p++;
    }
    return *p == '\0' || *p == ';';
}
