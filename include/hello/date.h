/* Pure calendar arithmetic for mod_hello: no I/O, no clock, no allocation.
 * "Today" is always an argument, so every function is a function of its inputs. */
#ifndef HELLO_DATE_H
#define HELLO_DATE_H

#include <stddef.h>
#include <stdint.h>

/* A proleptic Gregorian calendar date. */
typedef struct hello_date {
    int year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
} hello_date;

/* Length of "YYYY-MM-DD". */
#define HELLO_DATE_LEN 10

/* Oldest accepted year of birth. */
#define HELLO_DATE_MIN_YEAR 1000

int hello_date_is_leap(int year);

/* Days in the month, 0 for a month outside 1..12. */
int hello_date_days_in_month(int year, int month);

/* 1 when year/month/day is a real date with HELLO_DATE_MIN_YEAR <= year <= 9999. */
int hello_date_is_valid(hello_date d);

/* Parses exactly "YYYY-MM-DD" (ASCII digits, len == HELLO_DATE_LEN) into *out.
 * Returns 1 on a real date with year >= HELLO_DATE_MIN_YEAR, 0 otherwise
 * (*out is then unspecified). s need not be NUL-terminated. */
int hello_date_parse(const char *s, size_t len, hello_date *out);

/* Writes "YYYY-MM-DD" and a NUL into buf; d must be valid. */
void hello_date_format(hello_date d, char buf[HELLO_DATE_LEN + 1]);

/* Days since 1970-01-01 (negative before). */
int64_t hello_date_to_days(hello_date d);

/* The date of a day number counted as in hello_date_to_days. */
hello_date hello_date_from_days(int64_t days);

/* The UTC calendar date of a Unix time in seconds. */
hello_date hello_date_from_unix(int64_t seconds);

/* <0, 0, >0 as a is before, the same as, or after b. */
int hello_date_cmp(hello_date a, hello_date b);

/* Days from today to the next birthday of someone born on dob: 0 when the
 * birthday is today, else 1..365. A 29 February birthday falls on 28 February
 * in years without a 29 February. dob must be valid; today must be valid. */
int hello_days_until_birthday(hello_date dob, hello_date today);

#endif
