/* Input validation for mod_hello: usernames and request paths. Pure functions. */
#ifndef HELLO_VALIDATE_H
#define HELLO_VALIDATE_H

#include <stddef.h>

#define HELLO_USERNAME_MAX 64

/* 1 when s[0..len) is 1..HELLO_USERNAME_MAX ASCII letters A-Z a-z. */
int hello_username_is_valid(const char *s, size_t len);

/* The length of path[0..len) without its trailing slashes: "/hello/" and
 * "/hello" name the same location. */
size_t hello_path_trim(const char *path, size_t len);

typedef enum hello_path_result {
    HELLO_PATH_OK = 0,   /* exactly one non-empty segment after the base */
    HELLO_PATH_NOT_FOUND /* no segment, an empty one, or more than one */
} hello_path_result;

/* Splits an already URL-decoded request path into the single segment after
 * base (the location's path, with or without a trailing '/'). On
 * HELLO_PATH_OK, *segment points into path and *segment_len is its length;
 * the segment is not validated as a username. A path that does not start
 * with base at a segment boundary is HELLO_PATH_NOT_FOUND.
 * base may be NULL or "", meaning the root. */
hello_path_result hello_path_segment(const char *path, const char *base, const char **segment,
                                     size_t *segment_len);

/* 1 when the Content-Type header value is acceptable for a PUT body:
 * absent (NULL) or the media type application/json (case-insensitive),
 * optionally followed by parameters after ';'. */
int hello_content_type_is_json(const char *content_type);

#endif
