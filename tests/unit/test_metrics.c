/* Unit tests for src/metrics.c: the segment's header, counting by method and
 * status class, the latency histogram and both text formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fake_store.h"
#include "hello/metrics.h"

static void test_layout(void **state)
{
    hello_metrics m;

    (void)state;
    hello_metrics_init(&m, 1700000000);
    assert_true(hello_metrics_layout_ok(&m));
    assert_int_equal(m.created, 1700000000);
    m.layout++;
    assert_false(hello_metrics_layout_ok(&m));
    hello_metrics_init(&m, 1);
    m.magic = 0;
    assert_false(hello_metrics_layout_ok(&m));
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
    hello_metrics m;
    const char *text;

    hello_metrics_init(&m, 1234);
    hello_metrics_request(&m, HELLO_METHOD_GET, 200, 400);
    hello_metrics_request(&m, HELLO_METHOD_GET, 200, 3000000);
    hello_metrics_request(&m, HELLO_METHOD_DELETE, 503, 2000);
    text = hello_metrics_prometheus(pool, &m);
    assert_non_null(strstr(text, "hello_requests_total{method=\"GET\",code=\"2xx\"} 2\n"));
    assert_non_null(strstr(text, "hello_requests_total{method=\"DELETE\",code=\"5xx\"} 1\n"));
    assert_non_null(strstr(text, "hello_unavailable_total 1\n"));
    /* Cumulative buckets; +Inf counts the request past the last bound. */
    assert_non_null(strstr(text, "hello_request_duration_seconds_bucket{le=\"0.000500\"} 1\n"));
    assert_non_null(strstr(text, "hello_request_duration_seconds_bucket{le=\"0.002500\"} 2\n"));
    assert_non_null(strstr(text, "hello_request_duration_seconds_bucket{le=\"2.500000\"} 2\n"));
    assert_non_null(strstr(text, "hello_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "hello_request_duration_seconds_sum 3.002400\n"));
    assert_non_null(strstr(text, "hello_metrics_created_seconds 1234\n"));

    text = hello_metrics_keyvalue(pool, &m);
    assert_non_null(strstr(text, "HelloRequestsGET2xx: 2\n"));
    assert_non_null(strstr(text, "HelloRequests: 3\n"));
    assert_non_null(strstr(text, "HelloUnavailable: 1\n"));
    assert_non_null(strstr(text, "HelloLatencySumMicroseconds: 3002400\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_counting),
        cmocka_unit_test_setup_teardown(test_prometheus_and_keyvalue, unit_pool_setup,
                                        unit_pool_teardown),
    };

    return cmocka_run_group_tests_name("metrics", tests, unit_group_setup, unit_group_teardown);
}
