/* Shared by the libFuzzer targets: one APR pool per input, so LeakSanitizer
 * sees any allocation that escapes a request's pool. */
#ifndef HELLO_FUZZ_COMMON_H
#define HELLO_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

static apr_pool_t *fuzz_root;

static apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *p = NULL;

    if (fuzz_root == NULL) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&fuzz_root, NULL) != APR_SUCCESS) {
            abort();
        }
    }
    if (apr_pool_create(&p, fuzz_root) != APR_SUCCESS) {
        abort();
    }
    return p;
}

#define FUZZ_ASSERT(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
