/* Counters of mod_hello, kept in one shared-memory segment that the parent
 * creates once and every child of every generation updates with atomic
 * increments: no locks on the request path. */
#ifndef HELLO_METRICS_H
#define HELLO_METRICS_H

#include <apr_pools.h>

#include "hello/core.h"

/* "HELO": marks a segment as ours. */
#define HELLO_METRICS_MAGIC 0x48454c4fu
/* Bump whenever struct hello_metrics changes shape: a graceful restart
 * into a build with another layout then starts a new segment instead of
 * misreading the old one. (Overridable only so that a test can build a
 * module "from the future".) */
#ifndef HELLO_METRICS_LAYOUT
#define HELLO_METRICS_LAYOUT 2u
#endif

#define HELLO_STATUS_CLASSES  5  /* 1xx .. 5xx */
#define HELLO_LATENCY_BUCKETS 12 /* finite upper bounds; +Inf is the count */

typedef struct hello_metrics {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint64_t size;    /* sizeof(hello_metrics) of the build that made it */
    apr_uint64_t created; /* Unix time the segment was created */
    volatile apr_uint64_t requests[HELLO_METHOD_COUNT][HELLO_STATUS_CLASSES];
    volatile apr_uint64_t db_errors;   /* store calls that failed */
    volatile apr_uint64_t unavailable; /* 503 answers */
    volatile apr_uint64_t health_ok;
    volatile apr_uint64_t health_failed;
    volatile apr_uint64_t latency_bucket[HELLO_LATENCY_BUCKETS]; /* not cumulative */
    volatile apr_uint64_t latency_count;
    volatile apr_uint64_t latency_sum_us;
    volatile apr_uint64_t cache[4]; /* by hello_cache_event */
} hello_metrics;

/* What the read cache (cache.h) counts. */
typedef enum hello_cache_event {
    HELLO_CACHE_EVENT_HIT = 0, /* a GET answered from the cache */
    HELLO_CACHE_EVENT_MISS,    /* a GET that asked the database */
    HELLO_CACHE_EVENT_STALE,   /* a GET answered from an old entry: the database failed */
    HELLO_CACHE_EVENT_ERROR    /* a cache operation that failed */
} hello_cache_event;

/* Upper bounds of the latency buckets, in microseconds. */
extern const apr_uint64_t hello_latency_bounds_us[HELLO_LATENCY_BUCKETS];

/* Zeroes *m and writes its header. */
void hello_metrics_init(hello_metrics *m, apr_uint64_t created);

/* 1 when m was made by a build with this layout. */
int hello_metrics_layout_ok(const hello_metrics *m);

/* Counts one answered request: its method, status and handler time. */
void hello_metrics_request(hello_metrics *m, hello_method method, int status, apr_uint64_t micros);

void hello_metrics_db_error(hello_metrics *m);
void hello_metrics_health(hello_metrics *m, int ok);
void hello_metrics_cache(hello_metrics *m, hello_cache_event event);

/* Prometheus text exposition format 0.0.4. */
char *hello_metrics_prometheus(apr_pool_t *pool, const hello_metrics *m);

/* "Key: value" lines, for mod_status's ?auto page. */
char *hello_metrics_keyvalue(apr_pool_t *pool, const hello_metrics *m);

#endif
