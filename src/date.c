/* Calendar arithmetic (see include/hello/date.h). Pure: no clock, no I/O. */
#include "hello/date.h"

int hello_date_is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int hello_date_days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (month < 1 || month > 12) {
        return 0;
    }
    if (month == 2 && hello_date_is_leap(year)) {
        return 29;
    }
    return days[month - 1];
}

int hello_date_is_valid(hello_date d)
{
    return d.year >= HELLO_DATE_MIN_YEAR && d.year <= 9999 && d.month >= 1 && d.month <= 12 &&
           d.day >= 1 && d.day <= hello_date_days_in_month(d.year, d.month);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int hello_date_parse(const char *s, size_t len, hello_date *out)
{
    if (s == NULL || len != HELLO_DATE_LEN || s[4] != '-' || s[7] != '-') {
        return 0;
    }
    if (!digits(s, 4, &out->year) || !digits(s + 5, 2, &out->month) ||
        !digits(s + 8, 2, &out->day)) {
        return 0;
    }
    return hello_date_is_valid(*out);
}

void hello_date_format(hello_date d, char buf[HELLO_DATE_LEN + 1])
{
    int y = d.year;

    buf[0] = (char)('0' + y / 1000 % 10);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + d.month / 10 % 10);
    buf[6] = (char)('0' + d.month % 10);
    buf[7] = '-';
    buf[8] = (char)('0' + d.day / 10 % 10);
    buf[9] = (char)('0' + d.day % 10);
    buf[10] = '\0';
}

/* Days from civil and back: Howard Hinnant's algorithms, on the proleptic
 * Gregorian calendar, valid far beyond years 1000..9999. */
int64_t hello_date_to_days(hello_date d)
{
    int64_t y = d.year - (d.month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (d.month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d.day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

hello_date hello_date_from_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    hello_date d;

    d.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    d.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    d.year = (int)(yoe + era * 400 + (d.month <= 2));
    return d;
}

hello_date hello_date_from_unix(int64_t seconds)
{
    int64_t days = seconds / 86400;

    if (seconds % 86400 < 0) {
        days--;
    }
    return hello_date_from_days(days);
}

int hello_date_cmp(hello_date a, hello_date b)
{
    if (a.year != b.year) {
        return a.year < b.year ? -1 : 1;
    }
    if (a.month != b.month) {
        return a.month < b.month ? -1 : 1;
    }
    if (a.day != b.day) {
        return a.day < b.day ? -1 : 1;
    }
    return 0;
}

/* The birthday of dob in a given year: 29 February moves to 28 February in
 * years without it. */
static hello_date birthday_in(hello_date dob, int year)
{
    hello_date b = { year, dob.month, dob.day };

    if (b.month == 2 && b.day == 29 && !hello_date_is_leap(year)) {
        b.day = 28;
    }
    return b;
}

int hello_days_until_birthday(hello_date dob, hello_date today)
{
    hello_date next = birthday_in(dob, today.year);

    if (hello_date_cmp(next, today) < 0) {
        next = birthday_in(dob, today.year + 1);
    }
    return (int)(hello_date_to_days(next) - hello_date_to_days(today));
}
