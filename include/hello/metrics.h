/* Counters of mod_hello, one set per virtual host, kept in one
 * shared-memory segment that the parent creates and every child of every
 * generation updates with atomic increments: no locks on the request path.
 * The segment outlives graceful restarts; each set is found again by its
 * vhost label. */
#ifndef HELLO_METRICS_H
#define HELLO_METRICS_H

#include <apr_pools.h>

#include "hello/core.h"

/* "HELO": marks a segment as ours. */
#define HELLO_METRICS_MAGIC 0x48454c4fu
/* Bump whenever the segment or struct hello_metrics changes shape: a
 * graceful restart into a build with another layout then starts a new
 * segment instead of misreading the old one. (Overridable only so that a
 * test can build a module "from the future".) */
#ifndef HELLO_METRICS_LAYOUT
#define HELLO_METRICS_LAYOUT 3u
#endif

#define HELLO_STATUS_CLASSES  5   /* 1xx .. 5xx */
#define HELLO_LATENCY_BUCKETS 12  /* finite upper bounds; +Inf is the count */
#define HELLO_VHOST_LABEL_MAX 272 /* bytes of a vhost label, with its NUL */

/* The counters of one virtual host. */
typedef struct hello_metrics {
    apr_uint64_t created; /* Unix time the counters started */
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

typedef struct hello_metrics_slot {
    char vhost[HELLO_VHOST_LABEL_MAX]; /* "": free */
    hello_metrics m;
} hello_metrics_slot;

/* The shared segment: a header and `capacity` slots. */
typedef struct hello_metrics_segment {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint64_t slot_size; /* sizeof(hello_metrics_slot) of the build that made it */
    apr_uint64_t capacity;
    hello_metrics_slot slot[];
} hello_metrics_segment;

/* What the read cache (cache.h) counts. */
typedef enum hello_cache_event {
    HELLO_CACHE_EVENT_HIT = 0, /* a GET answered from the cache */
    HELLO_CACHE_EVENT_MISS,    /* a GET that asked the database */
    HELLO_CACHE_EVENT_STALE,   /* a GET answered from an old entry: the database failed */
    HELLO_CACHE_EVENT_ERROR    /* a cache operation that failed */
} hello_cache_event;

/* Upper bounds of the latency buckets, in microseconds. */
extern const apr_uint64_t hello_latency_bounds_us[HELLO_LATENCY_BUCKETS];

/* Zeroes *m and stamps its creation time. */
void hello_metrics_init(hello_metrics *m, apr_uint64_t created);

/* ---- the segment (parent only, before the children fork) ---- */

/* Bytes of a segment of `capacity` slots. */
apr_size_t hello_metrics_segment_size(apr_size_t capacity);

/* Writes the header of a segment of `capacity` free slots. */
void hello_metrics_segment_init(hello_metrics_segment *seg, apr_size_t capacity);

/* 1 when the `bytes` at seg are a segment made by a build with this layout. */
int hello_metrics_segment_ok(const hello_metrics_segment *seg, apr_size_t bytes);

/* 1 when every one of the n labels has its slot in seg or a free one. */
int hello_metrics_segment_fits(const hello_metrics_segment *seg, const char *const *labels, int n);

/* The counters labelled `label` (at most HELLO_VHOST_LABEL_MAX - 1 bytes):
 * its slot, else a free slot claimed for it, zeroed and created now, with
 * the counters of `from` copied in when from is not NULL. NULL when full. */
hello_metrics *hello_metrics_claim(hello_metrics_segment *seg, const char *label, apr_uint64_t now,
                                   const hello_metrics_segment *from);

/* Frees every slot whose label is not one of the n: a vhost removed from
 * the configuration, or renamed. Called once the n are claimed, so that a
 * slot freed now is taken, zeroed, only by a later configuration (the
 * children of this one's predecessor may still count into it meanwhile). */
void hello_metrics_segment_release(hello_metrics_segment *seg, const char *const *labels, int n);

/* One label per server: its host name ("_default_" if none), with ":port"
 * where hosts repeat, and "#k" where host and port repeat too (the k-th of
 * them, from 2, in configuration order: such labels move when the order
 * changes).
 * Labels are cut to fit a slot; they are unique. Allocated in pool. */
const char **hello_metrics_labels(apr_pool_t *pool, const char *const *hosts, const int *ports,
                                  int n);

/* ---- counting (any thread, any process) ---- */

/* Counts one answered request: its method, status and handler time. */
void hello_metrics_request(hello_metrics *m, hello_method method, int status, apr_uint64_t micros);

void hello_metrics_db_error(hello_metrics *m);
void hello_metrics_health(hello_metrics *m, int ok);
void hello_metrics_cache(hello_metrics *m, hello_cache_event event);

/* ---- reading ---- */

/* One vhost's counters, with its label. */
typedef struct hello_metrics_set {
    const char *vhost;
    const hello_metrics *m;
} hello_metrics_set;

/* Prometheus text exposition format 0.0.4: every sample with a vhost label. */
char *hello_metrics_prometheus(apr_pool_t *pool, const hello_metrics_set *sets, int n);

/* "Key: value" lines for mod_status's ?auto page: the sums over the sets,
 * then one HelloVhostN line per set. */
char *hello_metrics_keyvalue(apr_pool_t *pool, const hello_metrics_set *sets, int n);

#endif
