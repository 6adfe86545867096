/* Unit tests for src/metrics.c: the segment and its labels, counting by method and
 * status class, the latency histogram and both text formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fake_store.h"
#include <apr_strings.h>
#include <string.h>

#include "hello/metrics.h"

static void test_segment(void **state)
{
    apr_pool_t *pool = *state;
    apr_size_t bytes = hello_metrics_segment_size(2);
    hello_metrics_segment *seg = apr_palloc(pool, bytes);
    hello_metrics_segment *grown = apr_palloc(pool, hello_metrics_segment_size(3));
    const char *two[] = { "a.example", "b.example" };
    const char *three[] = { "a.example", "b.example", "c.example" };
    hello_metrics *a, *b, *a0;

    hello_metrics_segment_init(seg, 2);
    assert_true(hello_metrics_segment_ok(seg, bytes));
    assert_false(hello_metrics_segment_ok(seg, bytes - 1)); /* capacity past its bytes */
    assert_true(hello_metrics_segment_fits(seg, two, 2));
    assert_false(hello_metrics_segment_fits(seg, three, 3));

    a = hello_metrics_claim(seg, "a.example", 100, NULL);
    a0 = a;
    b = hello_metrics_claim(seg, "b.example", 200, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(a->created, 100);
    hello_metrics_request(a, HELLO_METHOD_GET, 200, 1);
    /* A graceful restart finds the same counters by label, in any order. */
    assert_ptr_equal(hello_metrics_claim(seg, "b.example", 300, NULL), b);
    assert_ptr_equal(hello_metrics_claim(seg, "a.example", 300, NULL), a);
    assert_int_equal(a->created, 100);
    assert_int_equal(a->requests[HELLO_METHOD_GET][1], 1);
    /* Full: a third vhost needs a new segment, which takes the old counters. */
    assert_null(hello_metrics_claim(seg, "c.example", 300, NULL));
    hello_metrics_segment_init(grown, 3);
    assert_true(hello_metrics_segment_fits(grown, three, 3));
    a = hello_metrics_claim(grown, "a.example", 300, seg);
    assert_int_equal(a->created, 100);
    assert_int_equal(a->requests[HELLO_METHOD_GET][1], 1);
    assert_int_equal(hello_metrics_claim(grown, "c.example", 300, seg)->created, 300);

    /* b.example leaves the configuration: its slot is freed, and a later
     * vhost takes it zeroed, not with b's counters. */
    hello_metrics_request(b, HELLO_METHOD_PUT, 204, 1);
    hello_metrics_segment_release(seg, two, 1);
    assert_true(hello_metrics_segment_fits(seg, three + 1, 2) == 0); /* b and c: one free */
    b = hello_metrics_claim(seg, "c.example", 400, NULL);
    assert_non_null(b);
    assert_int_equal(b->created, 400);
    assert_int_equal(b->requests[HELLO_METHOD_PUT][1], 0);
    assert_ptr_equal(hello_metrics_claim(seg, "a.example", 500, NULL), a0);
    assert_null(hello_metrics_claim(seg, "", 500, NULL));

    seg->layout++;
    assert_false(hello_metrics_segment_ok(seg, bytes));
    seg->layout--;
    seg->magic = 0;
    assert_false(hello_metrics_segment_ok(seg, bytes));
}

static void test_labels(void **state)
{
    apr_pool_t *pool = *state;
    const char *hosts[] = { "main.example", "a.example", "b.example", "a.example", "a.example" };
    const int ports[] = { 80, 80, 80, 8080, 80 };
    const char **l = hello_metrics_labels(pool, hosts, ports, 5);
    char *longhost = apr_palloc(pool, 1000);
    const char *longs[2];
    const int lports[] = { 80, 80 };

    assert_string_equal(l[0], "main.example");
    assert_string_equal(l[1], "a.example:80");
    assert_string_equal(l[2], "b.example");
    assert_string_equal(l[3], "a.example:8080");
    assert_string_equal(l[4], "a.example:80#2");
    /* No host: a name of its own, never the empty label of a free slot. */
    hosts[0] = "";
    l = hello_metrics_labels(pool, hosts, ports, 1);
    assert_string_equal(l[0], "_default_");
    /* Cut to fit a slot, still unique. */
    memset(longhost, 'x', 999);
    longhost[999] = '\0';
    longs[0] = longhost;
    longs[1] = apr_pstrcat(pool, longhost, "y", NULL);
    l = hello_metrics_labels(pool, longs, lports, 2);
    assert_true(strlen(l[1]) < HELLO_VHOST_LABEL_MAX);
    assert_string_not_equal(l[0], l[1]);
}

static void test_counting(void **state)
{
    hello_metrics m;

    (void)state;
    hello_metrics_init(&m, 1);
    hello_metrics_request(&m, HELLO_METHOD_GET, 200, 400);
    hello_metrics_request(&m, HELLO_METHOD_GET, 404, 1000);
    hello_metrics_request(&m, HELLO_METHOD_PUT, 204, 3000000); /* past the last bound */
    hello_metrics_request(&m, HELLO_METHOD_PUT, 503, 700);
    hello_metrics_request(&m, (hello_method)42, 999, 1); /* out of range: OTHER, 5xx */
    hello_metrics_db_error(&m);
    hello_metrics_health(&m, 1);
    hello_metrics_health(&m, 0);
    hello_metrics_health(&m, 0);

    assert_int_equal(m.requests[HELLO_METHOD_GET][1], 1);
    assert_int_equal(m.requests[HELLO_METHOD_GET][3], 1);
    assert_int_equal(m.requests[HELLO_METHOD_PUT][1], 1);
    assert_int_equal(m.requests[HELLO_METHOD_PUT][4], 1);
    assert_int_equal(m.requests[HELLO_METHOD_OTHER][4], 1);
    assert_int_equal(m.unavailable, 1);
    assert_int_equal(m.db_errors, 1);
    assert_int_equal(m.health_ok, 1);
    assert_int_equal(m.health_failed, 2);
    assert_int_equal(m.latency_count, 5);
    assert_int_equal(m.latency_sum_us, 400 + 1000 + 3000000 + 700 + 1);
    assert_int_equal(m.latency_bucket[0], 2); /* <= 500 us: 400 and 1 */
    assert_int_equal(m.latency_bucket[1], 2); /* <= 1 ms: 1000 (on the bound) and 700 */
}

static void test_prometheus_and_keyvalue(void **state)
{
    apr_pool_t *pool = *state;
    hello_metrics m, other;
    hello_metrics_set sets[2] = { { "a.example", &m }, { "b\"x", &other } };
    const char *text;

    hello_metrics_init(&m, 1234);
    hello_metrics_init(&other, 1000);
    hello_metrics_request(&other, HELLO_METHOD_GET, 200, 1);
    hello_metrics_request(&m, HELLO_METHOD_GET, 200, 400);
    hello_metrics_request(&m, HELLO_METHOD_GET, 200, 3000000);
    hello_metrics_request(&m, HELLO_METHOD_DELETE, 503, 2000);
    text = hello_metrics_prometheus(pool, sets, 2);
#define HAS(line) assert_non_null(strstr(text, line "\n"))
    HAS("hello_requests_total{vhost=\"a.example\",method=\"GET\",code=\"2xx\"} 2");
    HAS("hello_requests_total{vhost=\"a.example\",method=\"DELETE\",code=\"5xx\"} 1");
    HAS("hello_requests_total{vhost=\"b\\\"x\",method=\"GET\",code=\"2xx\"} 1");
    HAS("hello_unavailable_total{vhost=\"a.example\"} 1");
    HAS("hello_unavailable_total{vhost=\"b\\\"x\"} 0");
    /* Cumulative buckets; +Inf counts the request past the last bound. */
    HAS("hello_request_duration_seconds_bucket{vhost=\"a.example\",le=\"0.000500\"} 1");
    HAS("hello_request_duration_seconds_bucket{vhost=\"a.example\",le=\"0.002500\"} 2");
    HAS("hello_request_duration_seconds_bucket{vhost=\"a.example\",le=\"2.500000\"} 2");
    HAS("hello_request_duration_seconds_bucket{vhost=\"a.example\",le=\"+Inf\"} 3");
    HAS("hello_request_duration_seconds_sum{vhost=\"a.example\"} 3.002400");
    HAS("hello_request_duration_seconds_count{vhost=\"b\\\"x\"} 1");
    HAS("hello_metrics_created_seconds{vhost=\"a.example\"} 1234");
    HAS("hello_metrics_created_seconds{vhost=\"b\\\"x\"} 1000");
    /* One HELP and TYPE per family, before all of its samples. */
    assert_null(strstr(strstr(text, "# TYPE hello_unavailable_total") + 1,
                       "# TYPE hello_unavailable_total"));
    assert_true(strstr(text, "# TYPE hello_db_errors_total") <
                strstr(text, "hello_db_errors_total{vhost=\"a.example\"}"));

    text = hello_metrics_keyvalue(pool, sets, 2);
    HAS("HelloRequestsGET2xx: 3"); /* sums over the vhosts */
    HAS("HelloRequests: 4");
    HAS("HelloUnavailable: 1");
    HAS("HelloLatencySumMicroseconds: 3002401");
    HAS("HelloMetricsCreated: 1000");
    HAS("HelloVhost1: vhost=a.example requests=3 5xx=1 unavailable=1 db_errors=0 "
        "cache_hit_ratio=0");
    HAS("HelloVhost2: vhost=b\"x requests=1 5xx=0 unavailable=0 db_errors=0 cache_hit_ratio=0");
#undef HAS
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_segment, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_labels, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test(test_counting),
        cmocka_unit_test_setup_teardown(test_prometheus_and_keyvalue, unit_pool_setup,
                                        unit_pool_teardown),
    };

    return cmocka_run_group_tests_name("metrics", tests, unit_group_setup, unit_group_teardown);
}
