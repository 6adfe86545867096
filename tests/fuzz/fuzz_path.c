/* libFuzzer target: splitting the request path and validating the username.
 * The first byte picks the location's path; the rest is the request path. */
#include <string.h>

#include <apr_strings.h>

#include "fuzz_common.h"
#include "hello/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const bases[] = { "/hello", "/hello/", "", "/api/v1/hello", NULL };
    apr_pool_t *pool;
    const char *base;
    const char *path;
    const char *segment = NULL;
    size_t len = 0;

    if (size == 0) {
        return 0;
    }
    pool = fuzz_pool();
    base = bases[data[0] % 5];
    path = apr_pstrndup(pool, (const char *)data + 1, size - 1);
    if (hello_path_segment(path, base, &segment, &len) == HELLO_PATH_OK) {
        FUZZ_ASSERT(len > 0 && segment >= path && segment + len == path + strlen(path));
        FUZZ_ASSERT(memchr(segment, '/', len) == NULL && segment[-1] == '/');
        if (hello_username_is_valid(segment, len)) {
            FUZZ_ASSERT(len <= HELLO_USERNAME_MAX);
        }
    }
    (void)hello_content_type_is_json(path);
    apr_pool_destroy(pool);
    return 0;
}
