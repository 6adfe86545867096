/* libFuzzer target: the PUT body parser (JSON through jansson). */
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "hello/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    hello_date dob;
    hello_body_result rv = hello_body_parse(pool, (const char *)data, size, &dob);

    FUZZ_ASSERT(rv >= HELLO_BODY_OK && rv <= HELLO_BODY_BAD_DATE);
    if (rv == HELLO_BODY_OK) {
        char buf[HELLO_DATE_LEN + 1];
        FUZZ_ASSERT(hello_date_is_valid(dob));
        hello_date_format(dob, buf);
        /* The parsed date is one the body really contains. */
        FUZZ_ASSERT(memmem(data, size, buf, HELLO_DATE_LEN) != NULL);
    }
    apr_pool_destroy(pool);
    return 0;
}
