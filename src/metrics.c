/* Counters in shared memory, one set per vhost (see include/hello/metrics.h). */
#include <stddef.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_hash.h>
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
    m->created = created;
}

/* ---- the segment ---- */

apr_size_t hello_metrics_segment_size(apr_size_t capacity)
{
    return sizeof(hello_metrics_segment) + capacity * sizeof(hello_metrics_slot);
}

void hello_metrics_segment_init(hello_metrics_segment *seg, apr_size_t capacity)
{
    memset((void *)seg, 0, hello_metrics_segment_size(capacity));
    seg->magic = HELLO_METRICS_MAGIC;
    seg->layout = HELLO_METRICS_LAYOUT;
    seg->slot_size = sizeof(hello_metrics_slot);
    seg->capacity = capacity;
}

int hello_metrics_segment_ok(const hello_metrics_segment *seg, apr_size_t bytes)
{
    return bytes >= sizeof(*seg) && seg->magic == HELLO_METRICS_MAGIC &&
           seg->layout == HELLO_METRICS_LAYOUT && seg->slot_size == sizeof(hello_metrics_slot) &&
           seg->capacity <= (bytes - sizeof(*seg)) / sizeof(hello_metrics_slot);
}

static hello_metrics_slot *find(const hello_metrics_segment *seg, const char *label)
{
    for (apr_uint64_t i = 0; i < seg->capacity; i++) {
        if (strcmp(seg->slot[i].vhost, label) == 0) {
            return (hello_metrics_slot *)&seg->slot[i];
        }
    }
    return NULL;
}

int hello_metrics_segment_fits(const hello_metrics_segment *seg, const char *const *labels, int n)
{
    apr_uint64_t missing = 0;

    for (int i = 0; i < n; i++) {
        missing += find(seg, labels[i]) == NULL;
    }
    /* find(seg, "") is a free slot; count them all. */
    for (apr_uint64_t i = 0; i < seg->capacity && missing > 0; i++) {
        missing -= seg->slot[i].vhost[0] == '\0';
    }
    return missing == 0;
}

static apr_uint64_t rd(const volatile apr_uint64_t *v)
{
    return apr_atomic_read64((volatile apr_uint64_t *)v);
}

/* Counters of old children may still move while they are read. */
static void copy_counters(hello_metrics *to, const hello_metrics *from)
{
    const volatile apr_uint64_t *src = from->requests[0];
    volatile apr_uint64_t *dst = to->requests[0];
    apr_size_t n = (sizeof(*from) - offsetof(hello_metrics, requests)) / sizeof(apr_uint64_t);

    to->created = from->created;
    for (apr_size_t i = 0; i < n; i++) {
        dst[i] = rd(&src[i]);
    }
}

hello_metrics *hello_metrics_claim(hello_metrics_segment *seg, const char *label, apr_uint64_t now,
                                   const hello_metrics_segment *from)
{
    hello_metrics_slot *slot = find(seg, label);
    const hello_metrics_slot *old;

    if (slot != NULL) {
        return &slot->m;
    }
    slot = find(seg, "");
    if (slot == NULL || *label == '\0' || strlen(label) >= sizeof(slot->vhost)) {
        return NULL;
    }
    hello_metrics_init(&slot->m, now);
    old = from ? find(from, label) : NULL;
    if (old != NULL) {
        copy_counters(&slot->m, &old->m);
    }
    memcpy(slot->vhost, label, strlen(label) + 1);
    return &slot->m;
}

void hello_metrics_segment_release(hello_metrics_segment *seg, const char *const *labels, int n)
{
    for (apr_uint64_t i = 0; i < seg->capacity; i++) {
        int used = seg->slot[i].vhost[0] == '\0';
        for (int k = 0; k < n && !used; k++) {
            used = strcmp(seg->slot[i].vhost, labels[k]) == 0;
        }
        if (!used) {
            seg->slot[i].vhost[0] = '\0';
        }
    }
}

/* Room for ":65535#<int>" after a host cut to fit. */
#define HOST_MAX (HELLO_VHOST_LABEL_MAX - 20)

const char **hello_metrics_labels(apr_pool_t *pool, const char *const *hosts, const int *ports,
                                  int n)
{
    const char **out = apr_pcalloc(pool, sizeof(*out) * (apr_size_t)(n > 0 ? n : 1));
    const char **host = apr_pcalloc(pool, sizeof(*host) * (apr_size_t)(n > 0 ? n : 1));
    apr_hash_t *count = apr_hash_make(pool);
    apr_hash_t *seen = apr_hash_make(pool);

    for (int i = 0; i < n; i++) {
        int *c;
        /* "" would read as a free slot. */
        host[i] = apr_pstrndup(pool, hosts[i] && *hosts[i] ? hosts[i] : "_default_", HOST_MAX);
        c = apr_hash_get(count, host[i], APR_HASH_KEY_STRING);
        if (c == NULL) {
            c = apr_pcalloc(pool, sizeof(*c));
            apr_hash_set(count, host[i], APR_HASH_KEY_STRING, c);
        }
        (*c)++;
    }
    for (int i = 0; i < n; i++) {
        const int *c = apr_hash_get(count, host[i], APR_HASH_KEY_STRING);
        const char *base = *c > 1 ? apr_psprintf(pool, "%s:%d", host[i], ports[i]) : host[i];
        const char *label = base;
        for (int k = 2; apr_hash_get(seen, label, APR_HASH_KEY_STRING) != NULL; k++) {
            label = apr_psprintf(pool, "%s#%d", base, k);
        }
        apr_hash_set(seen, label, APR_HASH_KEY_STRING, label);
        out[i] = label;
    }
    return out;
}

/* ---- counting ---- */

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

/* ---- reading ---- */

/* Seconds as Prometheus likes them: "0.0005", "2.5". */
static const char *seconds(apr_pool_t *pool, apr_uint64_t us)
{
    return apr_psprintf(pool, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT, us / 1000000,
                        us % 1000000);
}

/* A label value, escaped as the exposition format wants. */
static const char *label_value(apr_pool_t *pool, const char *v)
{
    char *out = apr_palloc(pool, 2 * strlen(v) + 1);
    char *o = out;

    for (; *v; v++) {
        if (*v == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            continue;
        }
        if (*v == '\\' || *v == '"') {
            *o++ = '\\';
        }
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

/* Families with one sample per vhost: name, type, help, and the counter. */
static const struct family {
    const char *name;
    const char *type;
    const char *help;
    apr_size_t offset;
} families[] = {
    { "hello_db_errors_total", "counter",
      "Database calls that failed (the error log has each cause).",
      offsetof(hello_metrics, db_errors) },
    { "hello_unavailable_total", "counter",
      "Requests answered 503 because the database was unavailable.",
      offsetof(hello_metrics, unavailable) },
    { "hello_cache_hits_total", "counter", "GETs answered from the read cache (HelloCache).",
      offsetof(hello_metrics, cache[HELLO_CACHE_EVENT_HIT]) },
    { "hello_cache_misses_total", "counter", "GETs through the read cache that asked the database.",
      offsetof(hello_metrics, cache[HELLO_CACHE_EVENT_MISS]) },
    { "hello_cache_stale_served_total", "counter",
      "GETs answered from an old cache entry because the database failed "
      "(HelloCacheStaleIfError).",
      offsetof(hello_metrics, cache[HELLO_CACHE_EVENT_STALE]) },
    { "hello_cache_store_errors_total", "counter",
      "Cache operations that failed (the request went on without the cache).",
      offsetof(hello_metrics, cache[HELLO_CACHE_EVENT_ERROR]) },
};

static apr_uint64_t at(const hello_metrics *m, apr_size_t offset)
{
    return rd((const volatile apr_uint64_t *)((const char *)m + offset));
}

char *hello_metrics_prometheus(apr_pool_t *pool, const hello_metrics_set *sets, int n)
{
    apr_array_header_t *out = apr_array_make(pool, 64 + 48 * n, sizeof(const char *));
    const char **vhost = apr_palloc(pool, sizeof(*vhost) * (apr_size_t)(n > 0 ? n : 1));

#define LINE(...)              (*(const char **)apr_array_push(out) = apr_psprintf(pool, __VA_ARGS__))
#define HEAD(name, type, help) LINE("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)
    for (int v = 0; v < n; v++) {
        vhost[v] = label_value(pool, sets[v].vhost);
    }
    HEAD("hello_requests_total", "counter",
         "Requests answered under mod_hello's locations, by method and status class.");
    for (int v = 0; v < n; v++) {
        for (int i = 0; i < HELLO_METHOD_COUNT; i++) {
            for (int c = 0; c < HELLO_STATUS_CLASSES; c++) {
                LINE("hello_requests_total{vhost=\"%s\",method=\"%s\",code=\"%dxx\"} "
                     "%" APR_UINT64_T_FMT "\n",
                     vhost[v], method_names[i], c + 1, rd(&sets[v].m->requests[i][c]));
            }
        }
    }
    for (apr_size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        HEAD(families[f].name, families[f].type, families[f].help);
        for (int v = 0; v < n; v++) {
            LINE("%s{vhost=\"%s\"} %" APR_UINT64_T_FMT "\n", families[f].name, vhost[v],
                 at(sets[v].m, families[f].offset));
        }
    }
    HEAD("hello_health_checks_total", "counter", "Health checks, by result.");
    for (int v = 0; v < n; v++) {
        LINE("hello_health_checks_total{vhost=\"%s\",result=\"ok\"} %" APR_UINT64_T_FMT "\n"
             "hello_health_checks_total{vhost=\"%s\",result=\"failed\"} %" APR_UINT64_T_FMT "\n",
             vhost[v], rd(&sets[v].m->health_ok), vhost[v], rd(&sets[v].m->health_failed));
    }
    HEAD("hello_request_duration_seconds", "histogram",
         "Time mod_hello spent answering a request.");
    for (int v = 0; v < n; v++) {
        const hello_metrics *m = sets[v].m;
        apr_uint64_t cumulative = 0;
        apr_uint64_t count = rd(&m->latency_count);
        for (int b = 0; b < HELLO_LATENCY_BUCKETS; b++) {
            cumulative += rd(&m->latency_bucket[b]);
            LINE("hello_request_duration_seconds_bucket{vhost=\"%s\",le=\"%s\"} %" APR_UINT64_T_FMT
                 "\n",
                 vhost[v], seconds(pool, hello_latency_bounds_us[b]), cumulative);
        }
        /* Counters are read one by one while others write: keep +Inf >= every bucket. */
        if (count < cumulative) {
            count = cumulative;
        }
        LINE("hello_request_duration_seconds_bucket{vhost=\"%s\",le=\"+Inf\"} %" APR_UINT64_T_FMT
             "\nhello_request_duration_seconds_sum{vhost=\"%s\"} %s\n"
             "hello_request_duration_seconds_count{vhost=\"%s\"} %" APR_UINT64_T_FMT "\n",
             vhost[v], count, vhost[v], seconds(pool, rd(&m->latency_sum_us)), vhost[v], count);
    }
    HEAD("hello_metrics_created_seconds", "gauge", "When these counters started (Unix time).");
    for (int v = 0; v < n; v++) {
        LINE("hello_metrics_created_seconds{vhost=\"%s\"} %" APR_UINT64_T_FMT "\n", vhost[v],
             sets[v].m->created);
    }
#undef HEAD
#undef LINE
    return apr_array_pstrcat(pool, out, 0);
}

static const char *ratio(apr_pool_t *pool, apr_uint64_t part, apr_uint64_t all)
{
    return all ? apr_psprintf(pool, "%.4f", (double)part / (double)all) : "0";
}

char *hello_metrics_keyvalue(apr_pool_t *pool, const hello_metrics_set *sets, int n)
{
    apr_array_header_t *out = apr_array_make(pool, 40 + n, sizeof(const char *));
    hello_metrics sum;
    apr_uint64_t total = 0;
    apr_uint64_t created = 0;

    memset(&sum, 0, sizeof(sum));
    for (int v = 0; v < n; v++) {
        const volatile apr_uint64_t *src = sets[v].m->requests[0];
        volatile apr_uint64_t *dst = sum.requests[0];
        apr_size_t words = (sizeof(sum) - offsetof(hello_metrics, requests)) / sizeof(*dst);
        for (apr_size_t i = 0; i < words; i++) {
            dst[i] += rd(&src[i]);
        }
        if (created == 0 || sets[v].m->created < created) {
            created = sets[v].m->created;
        }
    }
#define LINE(...) (*(const char **)apr_array_push(out) = apr_psprintf(pool, __VA_ARGS__))
    for (int i = 0; i < HELLO_METHOD_COUNT; i++) {
        for (int c = 0; c < HELLO_STATUS_CLASSES; c++) {
            total += sum.requests[i][c];
            LINE("HelloRequests%s%dxx: %" APR_UINT64_T_FMT "\n", method_names[i], c + 1,
                 sum.requests[i][c]);
        }
    }
    LINE("HelloRequests: %" APR_UINT64_T_FMT "\n", total);
    LINE("HelloDbErrors: %" APR_UINT64_T_FMT "\n", sum.db_errors);
    LINE("HelloUnavailable: %" APR_UINT64_T_FMT "\n", sum.unavailable);
    LINE("HelloHealthOk: %" APR_UINT64_T_FMT "\n", sum.health_ok);
    LINE("HelloHealthFailed: %" APR_UINT64_T_FMT "\n", sum.health_failed);
    LINE("HelloLatencyCount: %" APR_UINT64_T_FMT "\n", sum.latency_count);
    LINE("HelloLatencySumMicroseconds: %" APR_UINT64_T_FMT "\n", sum.latency_sum_us);
    LINE("HelloCacheHits: %" APR_UINT64_T_FMT "\n", sum.cache[HELLO_CACHE_EVENT_HIT]);
    LINE("HelloCacheMisses: %" APR_UINT64_T_FMT "\n", sum.cache[HELLO_CACHE_EVENT_MISS]);
    LINE("HelloCacheStaleServed: %" APR_UINT64_T_FMT "\n", sum.cache[HELLO_CACHE_EVENT_STALE]);
    LINE("HelloCacheStoreErrors: %" APR_UINT64_T_FMT "\n", sum.cache[HELLO_CACHE_EVENT_ERROR]);
    LINE("HelloCacheHitRatio: %s\n",
         ratio(pool, sum.cache[HELLO_CACHE_EVENT_HIT],
               sum.cache[HELLO_CACHE_EVENT_HIT] + sum.cache[HELLO_CACHE_EVENT_MISS]));
    LINE("HelloMetricsCreated: %" APR_UINT64_T_FMT "\n", created);
    for (int v = 0; v < n; v++) {
        const hello_metrics *m = sets[v].m;
        apr_uint64_t requests = 0;
        apr_uint64_t server_errors = 0;
        apr_uint64_t hits = rd(&m->cache[HELLO_CACHE_EVENT_HIT]);
        apr_uint64_t misses = rd(&m->cache[HELLO_CACHE_EVENT_MISS]);
        for (int i = 0; i < HELLO_METHOD_COUNT; i++) {
            for (int c = 0; c < HELLO_STATUS_CLASSES; c++) {
                requests += rd(&m->requests[i][c]);
            }
            server_errors += rd(&m->requests[i][4]);
        }
        LINE("HelloVhost%d: vhost=%s requests=%" APR_UINT64_T_FMT " 5xx=%" APR_UINT64_T_FMT
             " unavailable=%" APR_UINT64_T_FMT " db_errors=%" APR_UINT64_T_FMT
             " cache_hit_ratio=%s\n",
             v + 1, sets[v].vhost, requests, server_errors, rd(&m->unavailable), rd(&m->db_errors),
             ratio(pool, hits, hits + misses));
    }
#undef LINE
    return apr_array_pstrcat(pool, out, 0);
}
