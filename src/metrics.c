/* Counters in shared memory (see include/hello/metrics.h). */
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "hello/metrics.h"

const apr_uint64_t hello_latency_bounds_us[HELLO_LATENCY_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000
};

static const char *const method_names[HELLO_METHOD_COUNT] = { "GET", "HEAD", "PUT", "DELETE",
                                                              "OTHER" };

void hello_metrics_init(hello_metrics *m, apr_uint64_t created)
{
    memset((void *)m, 0, sizeof(*m));
    m->magic = HELLO_METRICS_MAGIC;
    m->layout = HELLO_METRICS_LAYOUT;
    m->size = sizeof(*m);
    m->created = created;
}

int hello_metrics_layout_ok(const hello_metrics *m)
{
    return m->magic == HELLO_METRICS_MAGIC && m->layout == HELLO_METRICS_LAYOUT &&
           m->size == sizeof(*m);
}

void hello_metrics_request(hello_metrics *m, hello_method method, int status, apr_uint64_t micros)
{
    int cls = status / 100 - 1;
    int b = 0;

    if (method < 0 || method >= HELLO_METHOD_COUNT) {
        method = HELLO_METHOD_OTHER;
    }
    if (cls < 0 || cls >= HELLO_STATUS_CLASSES) {
        cls = HELLO_STATUS_CLASSES - 1;
    }
    apr_atomic_inc64(&m->requests[method][cls]);
    if (status == 503) {
        apr_atomic_inc64(&m->unavailable);
    }
    while (b < HELLO_LATENCY_BUCKETS && micros > hello_latency_bounds_us[b]) {
        b++;
    }
    if (b < HELLO_LATENCY_BUCKETS) {
        apr_atomic_inc64(&m->latency_bucket[b]);
    }
    apr_atomic_add64(&m->latency_sum_us, micros);
    apr_atomic_inc64(&m->latency_count);
}

void hello_metrics_db_error(hello_metrics *m)
{
    apr_atomic_inc64(&m->db_errors);
}

void hello_metrics_health(hello_metrics *m, int ok)
{
    apr_atomic_inc64(ok ? &m->health_ok : &m->health_failed);
}

void hello_metrics_cache(hello_metrics *m, hello_cache_event event)
{
    apr_atomic_inc64(&m->cache[event]);
}

static apr_uint64_t rd(const volatile apr_uint64_t *v)
{
    return apr_atomic_read64((volatile apr_uint64_t *)v);
}

/* Seconds as Prometheus likes them: "0.0005", "2.5". */
static const char *seconds(apr_pool_t *pool, apr_uint64_t us)
{
    return apr_psprintf(pool, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT, us / 1000000,
                        us % 1000000);
}

char *hello_metrics_prometheus(apr_pool_t *pool, const hello_metrics *m)
{
    apr_array_header_t *out = apr_array_make(pool, 64, sizeof(const char *));
    apr_uint64_t cumulative = 0;
    apr_uint64_t count = rd(&m->latency_count);

#define LINE(...) (*(const char **)apr_array_push(out) = apr_psprintf(pool, __VA_ARGS__))
    LINE("# HELP hello_requests_total Requests answered under mod_hello's locations, by "
         "method and status class.\n# TYPE hello_requests_total counter\n");
    for (int i = 0; i < HELLO_METHOD_COUNT; i++) {
        for (int c = 0; c < HELLO_STATUS_CLASSES; c++) {
            LINE("hello_requests_total{method=\"%s\",code=\"%dxx\"} %" APR_UINT64_T_FMT "\n",
                 method_names[i], c + 1, rd(&m->requests[i][c]));
        }
    }
    LINE("# HELP hello_db_errors_total Database calls that failed (the error log has each "
         "cause).\n# TYPE hello_db_errors_total counter\nhello_db_errors_total %" APR_UINT64_T_FMT
         "\n",
         rd(&m->db_errors));
    LINE("# HELP hello_unavailable_total Requests answered 503 because the database was "
         "unavailable.\n# TYPE hello_unavailable_total counter\nhello_unavailable_total "
         "%" APR_UINT64_T_FMT "\n",
         rd(&m->unavailable));
    LINE("# HELP hello_health_checks_total Health checks, by result.\n"
         "# TYPE hello_health_checks_total counter\n"
         "hello_health_checks_total{result=\"ok\"} %" APR_UINT64_T_FMT "\n"
         "hello_health_checks_total{result=\"failed\"} %" APR_UINT64_T_FMT "\n",
         rd(&m->health_ok), rd(&m->health_failed));
    LINE("# HELP hello_cache_hits_total GETs answered from the read cache (HelloCache).\n"
         "# TYPE hello_cache_hits_total counter\nhello_cache_hits_total %" APR_UINT64_T_FMT "\n"
         "# HELP hello_cache_misses_total GETs through the read cache that asked the database.\n"
         "# TYPE hello_cache_misses_total counter\nhello_cache_misses_total %" APR_UINT64_T_FMT
         "\n# HELP hello_cache_stale_served_total GETs answered from an old cache entry "
         "because the database failed (HelloCacheStaleIfError).\n"
         "# TYPE hello_cache_stale_served_total counter\nhello_cache_stale_served_total "
         "%" APR_UINT64_T_FMT "\n"
         "# HELP hello_cache_store_errors_total Cache operations that failed (the request "
         "went on without the cache).\n# TYPE hello_cache_store_errors_total counter\n"
         "hello_cache_store_errors_total %" APR_UINT64_T_FMT "\n",
         rd(&m->cache[HELLO_CACHE_EVENT_HIT]), rd(&m->cache[HELLO_CACHE_EVENT_MISS]),
         rd(&m->cache[HELLO_CACHE_EVENT_STALE]), rd(&m->cache[HELLO_CACHE_EVENT_ERROR]));
    LINE("# HELP hello_request_duration_seconds Time mod_hello spent answering a request.\n"
         "# TYPE hello_request_duration_seconds histogram\n");
    for (int b = 0; b < HELLO_LATENCY_BUCKETS; b++) {
        cumulative += rd(&m->latency_bucket[b]);
        LINE("hello_request_duration_seconds_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n",
             seconds(pool, hello_latency_bounds_us[b]), cumulative);
    }
    /* Counters are read one by one while others write: keep +Inf >= every bucket. */
    if (count < cumulative) {
        count = cumulative;
    }
    LINE("hello_request_duration_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n", count);
    LINE("hello_request_duration_seconds_sum %s\n", seconds(pool, rd(&m->latency_sum_us)));
    LINE("hello_request_duration_seconds_count %" APR_UINT64_T_FMT "\n", count);
    LINE("# HELP hello_metrics_created_seconds When these counters started (Unix time).\n"
         "# TYPE hello_metrics_created_seconds gauge\nhello_metrics_created_seconds "
         "%" APR_UINT64_T_FMT "\n",
         m->created);
#undef LINE
    return apr_array_pstrcat(pool, out, 0);
}

char *hello_metrics_keyvalue(apr_pool_t *pool, const hello_metrics *m)
{
    apr_array_header_t *out = apr_array_make(pool, 40, sizeof(const char *));
    apr_uint64_t total = 0;

#define LINE(...) (*(const char **)apr_array_push(out) = apr_psprintf(pool, __VA_ARGS__))
    for (int i = 0; i < HELLO_METHOD_COUNT; i++) {
        for (int c = 0; c < HELLO_STATUS_CLASSES; c++) {
            apr_uint64_t n = rd(&m->requests[i][c]);
            total += n;
            LINE("HelloRequests%s%dxx: %" APR_UINT64_T_FMT "\n", method_names[i], c + 1, n);
        }
    }
    LINE("HelloRequests: %" APR_UINT64_T_FMT "\n", total);
    LINE("HelloDbErrors: %" APR_UINT64_T_FMT "\n", rd(&m->db_errors));
    LINE("HelloUnavailable: %" APR_UINT64_T_FMT "\n", rd(&m->unavailable));
    LINE("HelloHealthOk: %" APR_UINT64_T_FMT "\n", rd(&m->health_ok));
    LINE("HelloHealthFailed: %" APR_UINT64_T_FMT "\n", rd(&m->health_failed));
    LINE("HelloLatencyCount: %" APR_UINT64_T_FMT "\n", rd(&m->latency_count));
    LINE("HelloLatencySumMicroseconds: %" APR_UINT64_T_FMT "\n", rd(&m->latency_sum_us));
    {
        apr_uint64_t hits = rd(&m->cache[HELLO_CACHE_EVENT_HIT]);
        apr_uint64_t misses = rd(&m->cache[HELLO_CACHE_EVENT_MISS]);
        apr_uint64_t all = hits + misses;
        LINE("HelloCacheHits: %" APR_UINT64_T_FMT "\n", hits);
        LINE("HelloCacheMisses: %" APR_UINT64_T_FMT "\n", misses);
        LINE("HelloCacheStaleServed: %" APR_UINT64_T_FMT "\n",
             rd(&m->cache[HELLO_CACHE_EVENT_STALE]));
        LINE("HelloCacheStoreErrors: %" APR_UINT64_T_FMT "\n",
             rd(&m->cache[HELLO_CACHE_EVENT_ERROR]));
        LINE("HelloCacheHitRatio: %s\n",
             all ? apr_psprintf(pool, "%.4f", (double)hits / (double)all) : "0");
    }
    LINE("HelloMetricsCreated: %" APR_UINT64_T_FMT "\n", m->created);
#undef LINE
    return apr_array_pstrcat(pool, out, 0);
}
