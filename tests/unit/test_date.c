/* Unit tests for src/date.c: leap years, month lengths, YYYY-MM-DD parsing,
 * day numbers, Unix times, formatting and days until the next birthday.
 *
 * Expectations never come from the function under test: tables are written
 * out by hand (anchors checked against Python's datetime), and the loops use
 * the small reference calendar below, which only knows the Gregorian leap
 * rule, the month lengths and how to step to the next day. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_store.h"
#include "hello/date.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- reference calendar (independent of src/date.c) ---------------------- */

static int ref_leap(int y)
{
    if (y % 400 == 0) {
        return 1;
    }
    if (y % 100 == 0) {
        return 0;
    }
    return y % 4 == 0;
}

static int ref_dim(int y, int m)
{
    switch (m) {
    case 2:
        return ref_leap(y) ? 29 : 28;
    case 4:
    case 6:
    case 9:
    case 11:
        return 30;
    default:
        return 31;
    }
}

static hello_date ref_next(hello_date d)
{
    if (d.day < ref_dim(d.year, d.month)) {
        d.day++;
    }
    else if (d.month < 12) {
        d.month++;
        d.day = 1;
    }
    else {
        d.year++;
        d.month = 1;
        d.day = 1;
    }
    return d;
}

static hello_date ref_add(hello_date d, int days)
{
    while (days-- > 0) {
        d = ref_next(d);
    }
    return d;
}

static int same_date(hello_date a, hello_date b)
{
    return a.year == b.year && a.month == b.month && a.day == b.day;
}

#define D(y, m, d) ((hello_date){ (y), (m), (d) })

#define assert_date_equal(actual, expected, what)                                                  \
    do {                                                                                           \
        hello_date a_ = (actual);                                                                  \
        hello_date e_ = (expected);                                                                \
        if (!same_date(a_, e_)) {                                                                  \
            fail_msg("%s: got %04d-%02d-%02d, expected %04d-%02d-%02d", (what), a_.year, a_.month, \
                     a_.day, e_.year, e_.month, e_.day);                                           \
        }                                                                                          \
    } while (0)

/* ---- hello_date_is_leap -------------------------------------------------- */

static void test_is_leap_table(void **state)
{
    static const struct {
        int year;
        int leap;
    } cases[] = {
        { 1900, 0 }, { 2000, 1 }, { 2024, 1 }, { 2023, 0 }, { 2100, 0 }, { 2400, 1 }, { 1600, 1 },
        { 1700, 0 }, { 1800, 0 }, { 2200, 0 }, { 2300, 0 }, { 2800, 1 }, { 1996, 1 }, { 2004, 1 },
        { 2001, 0 }, { 2002, 0 }, { 2003, 0 }, { 2020, 1 }, { 1000, 0 }, { 1004, 1 }, { 1200, 1 },
        { 9996, 1 }, { 9999, 0 }, { 9600, 1 }, { 9700, 0 }, { 4, 1 },    { 1, 0 },    { 0, 1 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        if (hello_date_is_leap(cases[i].year) != cases[i].leap) {
            fail_msg("hello_date_is_leap(%d) should be %d", cases[i].year, cases[i].leap);
        }
    }
}

static void test_is_leap_every_year(void **state)
{
    (void)state;
    for (int y = 1; y <= 10000; y++) {
        if (!hello_date_is_leap(y) != !ref_leap(y)) {
            fail_msg("hello_date_is_leap(%d) should be %d", y, ref_leap(y));
        }
    }
}

/* ---- hello_date_days_in_month -------------------------------------------- */

static void test_days_in_month_table(void **state)
{
    static const struct {
        int year, month, days;
    } cases[] = {
        { 2023, 1, 31 },  { 2023, 2, 28 },  { 2024, 2, 29 },  { 1900, 2, 28 }, { 2000, 2, 29 },
        { 2100, 2, 28 },  { 2400, 2, 29 },  { 2023, 3, 31 },  { 2023, 4, 30 }, { 2023, 5, 31 },
        { 2023, 6, 30 },  { 2023, 7, 31 },  { 2023, 8, 31 },  { 2023, 9, 30 }, { 2023, 10, 31 },
        { 2023, 11, 30 }, { 2023, 12, 31 }, { 2024, 12, 31 }, { 1000, 2, 28 }, { 9999, 12, 31 },
        { 2023, 0, 0 },   { 2023, 13, 0 },  { 2023, -1, 0 },  { 2024, 14, 0 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int got = hello_date_days_in_month(cases[i].year, cases[i].month);
        if (got != cases[i].days) {
            fail_msg("days_in_month(%d, %d) = %d, expected %d", cases[i].year, cases[i].month, got,
                     cases[i].days);
        }
    }
}

static void test_days_in_month_year_lengths(void **state)
{
    (void)state;
    for (int y = 1000; y <= 9999; y++) {
        int total = 0;
        for (int m = 1; m <= 12; m++) {
            total += hello_date_days_in_month(y, m);
        }
        if (total != (ref_leap(y) ? 366 : 365)) {
            fail_msg("the months of %d add up to %d days", y, total);
        }
    }
}

/* ---- hello_date_is_valid ------------------------------------------------- */

static void test_is_valid_table(void **state)
{
    static const struct {
        hello_date d;
        int valid;
    } cases[] = {
        { D(2000, 2, 29), 1 },  { D(1000, 1, 1), 1 },  { D(9999, 12, 31), 1 },
        { D(2024, 2, 29), 1 },  { D(2023, 2, 29), 0 }, { D(1900, 2, 29), 0 },
        { D(999, 12, 31), 0 },  { D(10000, 1, 1), 0 }, { D(2023, 0, 1), 0 },
        { D(2023, 13, 1), 0 },  { D(2023, 1, 0), 0 },  { D(2023, 1, 32), 0 },
        { D(2023, 4, 31), 0 },  { D(0, 1, 1), 0 },     { D(-1, 1, 1), 0 },
        { D(2023, -1, -1), 0 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        hello_date d = cases[i].d;
        if (!hello_date_is_valid(d) != !cases[i].valid) {
            fail_msg("is_valid(%d-%d-%d) should be %d", d.year, d.month, d.day, cases[i].valid);
        }
    }
}

/* ---- hello_date_parse ---------------------------------------------------- */

typedef struct parse_case {
    const char *s;
    size_t len;
    hello_date expected; /* valid cases only */
} parse_case;

/* A string literal with its length, embedded NULs included. */
#define P(lit)                  \
    {                           \
        (lit), sizeof(lit) - 1, \
        {                       \
            0, 0, 0             \
        }                       \
    }
#define PV(lit, y, m, d)        \
    {                           \
        (lit), sizeof(lit) - 1, \
        {                       \
            (y), (m), (d)       \
        }                       \
    }

static const parse_case valid_dates[] = {
    PV("2000-02-29", 2000, 2, 29),  PV("1000-01-01", 1000, 1, 1),   PV("9999-12-31", 9999, 12, 31),
    PV("2024-12-31", 2024, 12, 31), PV("2024-02-29", 2024, 2, 29),  PV("1600-02-29", 1600, 2, 29),
    PV("2400-02-29", 2400, 2, 29),  PV("1004-02-29", 1004, 2, 29),  PV("9996-02-29", 9996, 2, 29),
    PV("2023-02-28", 2023, 2, 28),  PV("1900-02-28", 1900, 2, 28),  PV("2100-02-28", 2100, 2, 28),
    PV("2023-01-31", 2023, 1, 31),  PV("2023-03-31", 2023, 3, 31),  PV("2023-04-30", 2023, 4, 30),
    PV("2023-05-31", 2023, 5, 31),  PV("2023-06-30", 2023, 6, 30),  PV("2023-07-31", 2023, 7, 31),
    PV("2023-08-31", 2023, 8, 31),  PV("2023-09-30", 2023, 9, 30),  PV("2023-10-31", 2023, 10, 31),
    PV("2023-11-30", 2023, 11, 30), PV("2023-12-31", 2023, 12, 31), PV("2023-01-01", 2023, 1, 1),
    PV("1970-01-01", 1970, 1, 1),   PV("1969-12-31", 1969, 12, 31), PV("1999-12-31", 1999, 12, 31),
    PV("2000-01-01", 2000, 1, 1),   PV("2001-09-11", 2001, 9, 11),  PV("1985-07-04", 1985, 7, 4),
    PV("1234-05-06", 1234, 5, 6),   PV("5678-09-10", 5678, 9, 10),  PV("1000-12-31", 1000, 12, 31),
    PV("9999-01-01", 9999, 1, 1),   PV("2038-01-19", 2038, 1, 19),  PV("1066-10-14", 1066, 10, 14),
    PV("1492-10-12", 1492, 10, 12), PV("1776-07-04", 1776, 7, 4),   PV("1815-06-18", 1815, 6, 18),
    PV("1903-12-17", 1903, 12, 17), PV("2012-12-21", 2012, 12, 21), PV("2020-02-29", 2020, 2, 29),
    PV("1996-02-29", 1996, 2, 29),  PV("2004-02-29", 2004, 2, 29),  PV("2008-08-08", 2008, 8, 8),
    PV("3000-03-03", 3000, 3, 3),
};

static const parse_case invalid_dates[] = {
    /* not a real date */
    P("1999-02-29"),
    P("1900-02-29"),
    P("2100-02-29"),
    P("2023-02-29"),
    P("2023-02-30"),
    P("2024-02-30"),
    P("2023-13-01"),
    P("2023-00-10"),
    P("2023-04-31"),
    P("2023-06-31"),
    P("2023-09-31"),
    P("2023-11-31"),
    P("2023-01-32"),
    P("2023-01-00"),
    P("2000-99-99"),
    P("9999-99-99"),
    /* before year 1000 */
    P("0999-12-31"),
    P("0000-01-01"),
    P("0001-01-01"),
    /* wrong shape or length */
    P("2000-1-01"),
    P("2000-01-1"),
    P("2000-1-1"),
    P("20000-01-01"),
    P(" 2000-01-01"),
    P("2000-01-01 "),
    P("2000/01/01"),
    P("2000.01.01"),
    P("2000_01_01"),
    P("20000101"),
    P("2000-0101"),
    P("2000-01-01T00:00:00"),
    P("2000-01-01Z"),
    P("2000-01/01"),
    P("2000/01-01"),
    P("2000-01001"),
    P("2000001-01"),
    P("\n2000-01-01"),
    P("2000-01-01\n"),
    P("2000-01-01\r\n"),
    P(""),
    P("-"),
    P("----------"),
    P("abcdefghij"),
    /* non-digits where digits belong */
    P("2000-01-0a"),
    P("2000-0a-01"),
    P("200a-01-01"),
    P("+200-01-01"),
    P("-200-01-01"),
    P("2000-+1-01"),
    P("2000--1-01"),
    P("2000-01--1"),
    P("2000- 1-01"),
    P("2000-01- 1"),
    P(" 000-01-01"),
    P("1e03-01-01"),
    P("0x10-01-01"),
    /* non-ASCII digits: FULLWIDTH DIGIT ZERO..TWO (U+FF10..) */
    P("\xef\xbc\x92\xef\xbc\x90\xef\xbc\x90\xef\xbc\x90-01-01"), /* "２０００-01-01" */
    P("\xef\xbc\x92"
      "000-01-01"),
    P("2000-01-\xd9\xa1"), /* ARABIC-INDIC DIGIT ONE */
    /* embedded NUL, the length covering it */
    P("2000-01-01\0"),
    P("2000\0-01-01"),
    P("2000-01-0\0"),
    P("\0"
      "000-01-01"),
    P("2000-01-\0"
      "1"),
    P("2000\0"
      "01-01"),
    P("\0\0\0\0\0\0\0\0\0\0"),
};

/* Parses s[0..len) from an exact-size heap copy, so a read past len is an
 * AddressSanitizer error. */
static int parse_exact(const char *s, size_t len, hello_date *out)
{
    char *copy = exact_copy(s, len);
    int ok;

    assert_non_null(copy);
    ok = hello_date_parse(copy, len, out);
    free(copy);
    return ok;
}

static void test_parse_valid(void **state)
{
    (void)state;
    assert_true(N_ELEMS(valid_dates) >= 40);
    for (size_t i = 0; i < N_ELEMS(valid_dates); i++) {
        const parse_case *c = &valid_dates[i];
        hello_date d = { 0, 0, 0 };
        char buf[HELLO_DATE_LEN + 1];

        if (!parse_exact(c->s, c->len, &d)) {
            fail_msg("\"%s\" should parse", c->s);
        }
        assert_date_equal(d, c->expected, c->s);
        assert_true(hello_date_is_valid(d));
        hello_date_format(d, buf);
        assert_string_equal(buf, c->s);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    assert_true(N_ELEMS(invalid_dates) >= 40);
    for (size_t i = 0; i < N_ELEMS(invalid_dates); i++) {
        const parse_case *c = &invalid_dates[i];
        hello_date d;

        if (parse_exact(c->s, c->len, &d)) {
            fail_msg("invalid_dates[%zu] (\"%s\", length %zu) should not parse", i, c->s, c->len);
        }
    }
}

static void test_parse_length_must_be_exact(void **state)
{
    static const char s[] = "2000-01-01";
    hello_date d;

    (void)state;
    /* A valid date followed by more bytes, or cut short, is refused. */
    for (size_t len = 0; len <= sizeof(s); len++) {
        int expected = len == HELLO_DATE_LEN;
        if (!parse_exact(s, len, &d) != !expected) {
            fail_msg("\"2000-01-01\" with length %zu: expected %d", len, expected);
        }
    }
    /* Not NUL-terminated: only the first 10 bytes are looked at. */
    assert_true(parse_exact("2000-01-01XYZ", HELLO_DATE_LEN, &d));
    assert_date_equal(d, D(2000, 1, 1), "prefix of 2000-01-01XYZ");
    /* NULL is refused, whatever the length. */
    assert_false(hello_date_parse(NULL, HELLO_DATE_LEN, &d));
    assert_false(hello_date_parse(NULL, 0, &d));
}

/* Every one-character change of a valid date to a non-digit (or of a '-' to
 * anything else) is refused. */
static void test_parse_every_bad_character(void **state)
{
    hello_date d;

    (void)state;
    for (size_t pos = 0; pos < HELLO_DATE_LEN; pos++) {
        for (int c = 0; c < 256; c++) {
            char s[HELLO_DATE_LEN + 1] = "2000-02-29";
            int is_dash_pos = pos == 4 || pos == 7;
            if (is_dash_pos ? c == '-' : (c >= '0' && c <= '9')) {
                continue;
            }
            s[pos] = (char)c;
            if (parse_exact(s, HELLO_DATE_LEN, &d)) {
                fail_msg("2000-02-29 with byte 0x%02x at %zu should not parse", c, pos);
            }
        }
    }
}

/* ---- day numbers --------------------------------------------------------- */

static void test_to_days_anchors(void **state)
{
    static const struct {
        hello_date d;
        int64_t days;
    } cases[] = {
        { D(1970, 1, 1), 0 },         { D(2000, 3, 1), 11017 },   { D(1969, 12, 31), -1 },
        { D(1970, 1, 2), 1 },         { D(2000, 1, 1), 10957 },   { D(1900, 1, 1), -25567 },
        { D(9999, 12, 31), 2932896 }, { D(1000, 1, 1), -354285 }, { D(1600, 3, 1), -135080 },
        { D(2024, 2, 29), 19782 },    { D(1, 1, 1), -719162 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        hello_date d = cases[i].d;
        int64_t got = hello_date_to_days(d);
        if (got != cases[i].days) {
            fail_msg("to_days(%04d-%02d-%02d) = %lld, expected %lld", d.year, d.month, d.day,
                     (long long)got, (long long)cases[i].days);
        }
        assert_date_equal(hello_date_from_days(cases[i].days), d, "from_days(anchor)");
    }
}

/* Days from 1000-01-01 to 1970-01-01, counted year by year. */
static int64_t ref_days_1000_to_1970(void)
{
    int64_t n = 0;

    for (int y = 1000; y < 1970; y++) {
        n += ref_leap(y) ? 366 : 365;
    }
    return n;
}

/* Every day from 1000-01-01 to 9999-12-31: to_days counts up by one from the
 * independently counted start, from_days inverts it, and format/parse
 * round-trip. */
static void test_every_day_round_trip(void **state)
{
    hello_date d = D(1000, 1, 1);
    int64_t n = -ref_days_1000_to_1970();
    const hello_date last = D(9999, 12, 31);
    long count = 0;

    (void)state;
    assert_int_equal(n, -354285);
    for (;;) {
        int64_t got = hello_date_to_days(d);
        char buf[HELLO_DATE_LEN + 1];
        hello_date back;

        if (got != n) {
            fail_msg("to_days(%04d-%02d-%02d) = %lld, expected %lld", d.year, d.month, d.day,
                     (long long)got, (long long)n);
        }
        assert_date_equal(hello_date_from_days(n), d, "from_days(to_days(d))");
        if (!hello_date_is_valid(d)) {
            fail_msg("%04d-%02d-%02d should be valid", d.year, d.month, d.day);
        }
        hello_date_format(d, buf);
        if (!hello_date_parse(buf, HELLO_DATE_LEN, &back) || !same_date(back, d)) {
            fail_msg("format/parse round trip failed for %s", buf);
        }
        count++;
        if (same_date(d, last)) {
            break;
        }
        d = ref_next(d);
        n++;
    }
    assert_int_equal(n, 2932896);
    assert_int_equal(count, 2932896 + 354285 + 1);
    /* One past either end is not valid. */
    assert_false(hello_date_is_valid(ref_next(last)));
    assert_false(hello_date_is_valid(hello_date_from_days(-354285 - 1)));
}

/* ---- hello_date_from_unix ------------------------------------------------ */

static void test_from_unix_table(void **state)
{
    static const struct {
        int64_t seconds;
        hello_date d;
    } cases[] = {
        { 0, D(1970, 1, 1) },
        { 1, D(1970, 1, 1) },
        { 86399, D(1970, 1, 1) },
        { 86400, D(1970, 1, 2) },
        { -1, D(1969, 12, 31) },
        { -86399, D(1969, 12, 31) },
        { -86400, D(1969, 12, 31) },
        { -86401, D(1969, 12, 30) },
        { 1709164800, D(2024, 2, 29) }, /* 2024-02-29T00:00:00Z */
        { 1709251199, D(2024, 2, 29) }, /* 2024-02-29T23:59:59Z */
        { 1709251200, D(2024, 3, 1) },
        { 1709164799, D(2024, 2, 28) },
        { 951782400, D(2000, 2, 29) },
        { 946684799, D(1999, 12, 31) },
        { 946684800, D(2000, 1, 1) },
        { 1700000000, D(2023, 11, 14) },
        { 2147483647, D(2038, 1, 19) },
        { 2147483648LL, D(2038, 1, 19) },
        { 4102444800LL, D(2100, 1, 1) },
        { 253402300799LL, D(9999, 12, 31) },
        { -2208988800LL, D(1900, 1, 1) },
        { -30610224000LL, D(1000, 1, 1) },
        { -30610224001LL, D(999, 12, 31) },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char what[64];
        snprintf(what, sizeof(what), "from_unix(%lld)", (long long)cases[i].seconds);
        assert_date_equal(hello_date_from_unix(cases[i].seconds), cases[i].d, what);
    }
}

/* Every second boundary of ten days around 1970, 2000-02-29 and 2024-01-01;
 * midnight is counted from a known day number, not from hello_date_to_days. */
static void test_from_unix_day_boundaries(void **state)
{
    static const struct {
        hello_date d;
        int64_t days;
    } starts[] = { { D(1969, 12, 25), -7 }, { D(2000, 2, 27), 11014 }, { D(2023, 12, 30), 19721 } };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(starts); i++) {
        hello_date prev = hello_date_from_unix((starts[i].days - 1) * 86400);
        hello_date d = starts[i].d;
        int64_t midnight = starts[i].days * 86400;

        for (int k = 0; k < 10; k++) {
            assert_date_equal(hello_date_from_unix(midnight), d, "midnight");
            assert_date_equal(hello_date_from_unix(midnight + 43200), d, "noon");
            assert_date_equal(hello_date_from_unix(midnight + 86399), d, "23:59:59");
            assert_date_equal(hello_date_from_unix(midnight - 1), prev, "one second before");
            assert_true(same_date(ref_next(prev), d));
            prev = d;
            d = ref_next(d);
            midnight += 86400;
        }
    }
}

/* ---- hello_date_format and hello_date_cmp -------------------------------- */

static void test_format_table(void **state)
{
    static const struct {
        hello_date d;
        const char *s;
    } cases[] = {
        { D(2000, 2, 29), "2000-02-29" },  { D(1000, 1, 1), "1000-01-01" },
        { D(9999, 12, 31), "9999-12-31" }, { D(2024, 10, 5), "2024-10-05" },
        { D(1970, 1, 1), "1970-01-01" },   { D(1999, 9, 9), "1999-09-09" },
        { D(2010, 11, 30), "2010-11-30" },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char buf[HELLO_DATE_LEN + 2];
        memset(buf, 'x', sizeof(buf));
        hello_date_format(cases[i].d, buf);
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(buf[HELLO_DATE_LEN], '\0');
        assert_int_equal(buf[HELLO_DATE_LEN + 1], 'x'); /* nothing written past the NUL */
    }
}

static void test_cmp_table(void **state)
{
    static const struct {
        hello_date a, b;
        int sign;
    } cases[] = {
        { D(2000, 1, 1), D(2000, 1, 1), 0 },    { D(2000, 1, 1), D(2000, 1, 2), -1 },
        { D(2000, 1, 2), D(2000, 1, 1), 1 },    { D(2000, 1, 31), D(2000, 2, 1), -1 },
        { D(2000, 12, 31), D(2001, 1, 1), -1 }, { D(2001, 1, 1), D(2000, 12, 31), 1 },
        { D(1999, 12, 31), D(2000, 1, 1), -1 }, { D(9999, 12, 31), D(1000, 1, 1), 1 },
        { D(2024, 2, 29), D(2024, 3, 1), -1 },  { D(2024, 3, 1), D(2024, 2, 29), 1 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int got = hello_date_cmp(cases[i].a, cases[i].b);
        int sign = (got > 0) - (got < 0);
        if (sign != cases[i].sign) {
            fail_msg("cmp case %zu: sign %d, expected %d", i, sign, cases[i].sign);
        }
    }
}

/* ---- hello_days_until_birthday ------------------------------------------- */

static void test_birthday_table(void **state)
{
    static const struct {
        const char *what;
        hello_date dob;
        hello_date today;
        int days;
    } cases[] = {
        { "birthday today", D(1990, 6, 15), D(2024, 6, 15), 0 },
        { "birthday today, born this day", D(2000, 3, 1), D(2000, 3, 1), 0 },
        { "birthday tomorrow", D(1990, 6, 16), D(2024, 6, 15), 1 },
        { "birthday yesterday, leap day ahead", D(1990, 6, 14), D(2023, 6, 15), 365 },
        { "birthday yesterday, no leap day ahead", D(1990, 6, 14), D(2022, 6, 15), 364 },
        { "birthday yesterday, leap day passed", D(1990, 6, 14), D(2024, 6, 15), 364 },
        { "Feb 28 birthday, Mar 1 before a leap year", D(1990, 2, 28), D(2023, 3, 1), 364 },
        { "Dec 31 today, Jan 1 birthday", D(1990, 1, 1), D(2023, 12, 31), 1 },
        { "Dec 31 today (leap year), Jan 1 birthday", D(1990, 1, 1), D(2024, 12, 31), 1 },
        { "Jan 1 today, Dec 31 birthday", D(1990, 12, 31), D(2023, 1, 1), 364 },
        { "Jan 1 today (leap year), Dec 31 birthday", D(1990, 12, 31), D(2024, 1, 1), 365 },
        { "Dec 31 today, Dec 31 birthday", D(1990, 12, 31), D(2023, 12, 31), 0 },
        { "Jan 1 today, Jan 1 birthday", D(1990, 1, 1), D(2024, 1, 1), 0 },
        { "Jan 2 today, Jan 1 birthday", D(1990, 1, 1), D(2023, 1, 2), 364 },
        { "Jan 2 today (leap), Jan 1 birthday", D(1990, 1, 1), D(2024, 1, 2), 365 },
        { "Feb 29 birthday, Feb 28 in a non-leap year", D(2000, 2, 29), D(2023, 2, 28), 0 },
        { "Feb 29 birthday, Feb 27 in a non-leap year", D(2000, 2, 29), D(2023, 2, 27), 1 },
        { "Feb 29 birthday, Mar 1 before a leap year", D(2000, 2, 29), D(2023, 3, 1), 365 },
        { "Feb 29 birthday, Mar 1 before a common year", D(2000, 2, 29), D(2021, 3, 1), 364 },
        { "Feb 29 birthday, Mar 1 of a leap year", D(2000, 2, 29), D(2024, 3, 1), 364 },
        { "Feb 29 birthday, Feb 28 of a leap year", D(2000, 2, 29), D(2024, 2, 28), 1 },
        { "Feb 29 birthday, Feb 29", D(2000, 2, 29), D(2024, 2, 29), 0 },
        { "Feb 29 birthday, Feb 28 of 2100", D(2000, 2, 29), D(2100, 2, 28), 0 },
        { "Feb 29 birthday, Mar 1 2099", D(2000, 2, 29), D(2099, 3, 1), 364 },
        { "Feb 29 birthday, Jan 1 2024", D(2000, 2, 29), D(2024, 1, 1), 59 },
        { "Feb 29 birthday, Jan 1 2023", D(2000, 2, 29), D(2023, 1, 1), 58 },
        { "Feb 28 birthday, Feb 29 today", D(1999, 2, 28), D(2024, 2, 29), 365 },
        { "Mar 1 birthday, Feb 29 today", D(1999, 3, 1), D(2024, 2, 29), 1 },
        { "Mar 1 birthday, Feb 28 (common year)", D(1999, 3, 1), D(2023, 2, 28), 1 },
        { "Mar 1 birthday, Feb 28 (leap year)", D(1999, 3, 1), D(2024, 2, 28), 2 },
        { "born in the future (dob after today)", D(2030, 7, 1), D(2024, 6, 30), 1 },
        { "oldest year", D(1000, 1, 1), D(1000, 1, 1), 0 },
        { "last day of the range, Jan 1 birthday", D(1000, 1, 1), D(9999, 12, 31), 1 },
        { "last day of the range, Dec 30 birthday", D(1000, 12, 30), D(9999, 12, 31), 365 },
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        int got = hello_days_until_birthday(cases[i].dob, cases[i].today);
        if (got != cases[i].days) {
            fail_msg("%s: %d days, expected %d", cases[i].what, got, cases[i].days);
        }
    }
}

/* dob's birthday falls on d: the same month and day, or 28 February for a
 * 29 February birthday in a year without one. */
static int is_birthday_on(hello_date dob, hello_date d)
{
    if (d.month == dob.month && d.day == dob.day) {
        return 1;
    }
    return dob.month == 2 && dob.day == 29 && !ref_leap(d.year) && d.month == 2 && d.day == 28;
}

/* For every today in 2023-01-01..2025-12-31 and every month/day of birth:
 * the answer is the number of steps from today to the first day that is the
 * birthday (0..365), found by walking the reference calendar. */
static void test_birthday_property(void **state)
{
    const hello_date first = D(2023, 1, 1);
    const hello_date last = D(2025, 12, 31);
    long checked = 0;

    (void)state;
    for (int m = 1; m <= 12; m++) {
        for (int day = 1; day <= ref_dim(2000, m); day++) {
            /* The year of birth must not matter; vary it (2000 for Feb 29). */
            hello_date dob =
                D((m == 2 && day == 29) ? 2000 : 1000 + (37 * (m * 31 + day)) % 9000, m, day);
            hello_date today = first;
            int expected = 0;
            hello_date walk = today;

            assert_true(hello_date_is_valid(dob));
            /* expected for the first today; then advance incrementally. */
            while (!is_birthday_on(dob, walk)) {
                walk = ref_next(walk);
                expected++;
            }
            for (;;) {
                int got = hello_days_until_birthday(dob, today);
                if (got != expected) {
                    fail_msg("dob %04d-%02d-%02d, today %04d-%02d-%02d: %d, expected %d", dob.year,
                             dob.month, dob.day, today.year, today.month, today.day, got, expected);
                }
                if (got < 0 || got > 365) {
                    fail_msg("%d is outside 0..365", got);
                }
                if (!is_birthday_on(dob, ref_add(today, got))) {
                    fail_msg("today + %d is not the birthday", got);
                }
                checked++;
                if (same_date(today, last)) {
                    break;
                }
                /* Next today: one day closer to the same birthday, or, on the
                 * birthday itself, walk again to the following one. */
                today = ref_next(today);
                if (expected > 0) {
                    expected--;
                }
                else {
                    walk = today;
                    expected = 0;
                    while (!is_birthday_on(dob, walk)) {
                        walk = ref_next(walk);
                        expected++;
                    }
                }
            }
        }
    }
    assert_int_equal(checked, 366L * (365 + 366 + 365));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_leap_table),
        cmocka_unit_test(test_is_leap_every_year),
        cmocka_unit_test(test_days_in_month_table),
        cmocka_unit_test(test_days_in_month_year_lengths),
        cmocka_unit_test(test_is_valid_table),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_length_must_be_exact),
        cmocka_unit_test(test_parse_every_bad_character),
        cmocka_unit_test(test_to_days_anchors),
        cmocka_unit_test(test_every_day_round_trip),
        cmocka_unit_test(test_from_unix_table),
        cmocka_unit_test(test_from_unix_day_boundaries),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_cmp_table),
        cmocka_unit_test(test_birthday_table),
        cmocka_unit_test(test_birthday_property),
    };

    return cmocka_run_group_tests_name("date", tests, unit_group_setup, unit_group_teardown);
}
