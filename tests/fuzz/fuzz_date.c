/* libFuzzer target: the YYYY-MM-DD parser and the birthday arithmetic. */
#include <string.h>

#include "fuzz_common.h"
#include "hello/date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hello_date dob;
    hello_date today;
    char buf[HELLO_DATE_LEN + 1];
    int64_t day = 0;
    int n;

    if (!hello_date_parse((const char *)data, size, &dob)) {
        return 0;
    }
    FUZZ_ASSERT(size == HELLO_DATE_LEN && hello_date_is_valid(dob));
    hello_date_format(dob, buf);
    FUZZ_ASSERT(memcmp(buf, data, HELLO_DATE_LEN) == 0);
    FUZZ_ASSERT(hello_date_cmp(hello_date_from_days(hello_date_to_days(dob)), dob) == 0);

    /* Every "today" from the birth date on, in steps, keeps the answer in
     * 0..365 and lands on the birthday. */
    for (int step = 0; step < 40; step++) {
        day = hello_date_to_days(dob) + (int64_t)step * 97 + step * step;
        today = hello_date_from_days(day);
        if (today.year > 9998) {
            break;
        }
        n = hello_days_until_birthday(dob, today);
        FUZZ_ASSERT(n >= 0 && n <= 365);
        {
            hello_date next = hello_date_from_days(day + n);
            int feb29 = dob.month == 2 && dob.day == 29;
            FUZZ_ASSERT(next.month == dob.month || (feb29 && next.month == 2));
            FUZZ_ASSERT(next.day == dob.day ||
                        (feb29 && next.day == 28 && !hello_date_is_leap(next.year)));
        }
    }
    return 0;
}
