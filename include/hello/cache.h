/* The read cache: a store (store.h) in front of another, answering a known
 * user's date of birth from a key-value cache with expiry (Apache's socache
 * providers in production, a fake in the unit tests) instead of the
 * database.
 *
 * What is cached is username -> date of birth, never the message (it
 * depends on today) and never "not found". Each user has two keys in the
 * namespace: its entry (the date, the time it was stored, and the write
 * token it was filled under) and its write token, which every acknowledged
 * PUT or DELETE replaces with a new random one after the database
 * committed. An entry is a hit only while its token is the user's current
 * one, so a GET that read the row before a write committed and stores it
 * after the write can never be answered from again: read-your-writes holds
 * whatever ran concurrently, on one server (shmcb) and on servers sharing
 * one cache (memcache, tested by the fleet). */
#ifndef HELLO_CACHE_H
#define HELLO_CACHE_H

#include <apr_pools.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

#include "hello/metrics.h"
#include "hello/store.h"
#include "hello/validate.h"

/* A key-value cache. Keys are NUL-terminated byte strings (not text: the
 * first byte spreads them over shmcb's subcaches), at most 150 bytes. */
typedef struct hello_cache_provider {
    void *ctx;
    /* APR_SUCCESS with *len bytes in buf (*len holds its size on entry);
     * APR_NOTFOUND when there is no such key; anything else is an error. */
    apr_status_t (*get)(void *ctx, apr_pool_t *pool, const char *key, unsigned char *buf,
                        unsigned int *len);
    /* Stores data under key until expiry (absolute time). */
    apr_status_t (*set)(void *ctx, apr_pool_t *pool, const char *key, apr_time_t expiry,
                        const unsigned char *data, unsigned int len);
    apr_status_t (*remove)(void *ctx, apr_pool_t *pool, const char *key);
    /* Optional (NULL: always free). Holds a place for the cache calls of one
     * write before its database change, so that its invalidation cannot be
     * refused after the commit, waiting a little for one when `wait`; 0 when
     * the cache has none to give. */
    int (*reserve)(void *ctx, int wait);
    void (*release)(void *ctx);
    /* Optional (NULL: calls go one by one). Holds the cache for a few calls
     * made back to back, with no other work between them, so that a
     * provider that serialises its callers (shmcb's mutex) does it once for
     * them; 0 when it cannot at once, and then each call tries by itself. */
    int (*hold)(void *ctx);
    void (*unhold)(void *ctx);
} hello_cache_provider;

/* Invalidations a cache refused after their write committed, to be made
 * again: one list per process and cache, shared by its threads. A shared
 * cache can be out of reach for one process only (apr_memcache leaves a
 * server alone for 5 s in the process that found it dead, while the others
 * already use it again): a GET elsewhere may fill the old date in that
 * time, and making the refused invalidation again once this process
 * reaches the cache ends that entry instead of HelloCacheMaxAge. */
#define HELLO_CACHE_PENDING_MAX 64
typedef struct hello_cache_pending {
    apr_thread_mutex_t *lock;
    volatile apr_uint32_t count;
    apr_uint32_t next_seq;
    struct {
        const char *ns; /* lives as long as the configuration */
        char user[HELLO_USERNAME_MAX + 1];
        apr_interval_time_t life; /* of the entries of ns: the new token outlives them */
        apr_uint32_t seq;         /* the write that listed it last */
    } item[HELLO_CACHE_PENDING_MAX];
} hello_cache_pending;

/* An empty list in pool. */
apr_status_t hello_cache_pending_create(hello_cache_pending **out, apr_pool_t *pool);

/* What the last GET through the cache did, for the Cache-Status header. */
typedef enum hello_cache_outcome {
    HELLO_CACHE_NONE = 0,  /* no GET went through the cache */
    HELLO_CACHE_HIT,       /* answered from the entry */
    HELLO_CACHE_STALE_HIT, /* the database failed: answered from an old entry */
    HELLO_CACHE_MISS,      /* no usable entry: asked the database */
    HELLO_CACHE_OUTDATED   /* an entry older than max_age or than the last write */
} hello_cache_outcome;

typedef struct hello_cached_store {
    const hello_store *inner; /* the database */
    const hello_cache_provider *cache;
    const char *ns;                     /* namespace of the keys: one per database */
    apr_interval_time_t max_age;        /* HelloCacheMaxAge */
    apr_interval_time_t stale_if_error; /* HelloCacheStaleIfError; 0: never stale */
    apr_time_t now;                     /* the request's time */
    hello_metrics *metrics;             /* NULL: uncounted */
    int no_fill;                        /* read and invalidate, but store no entry */
    hello_cache_pending *pending;       /* NULL: a refused invalidation is not made again */
    /* Set by the store calls: */
    hello_cache_outcome outcome;
    int stored;          /* a miss stored its answer */
    int cache_error;     /* the cache failed at least once (counted) */
    apr_time_t age;      /* of the entry answered from, hits only */
    const char *warning; /* a write whose entry could not be invalidated, for the log */
} hello_cached_store;

/* Fills *store to read through ctx's cache and write through to its inner
 * store. ctx lives as long as the request. */
void hello_cached_store_init(hello_store *store, hello_cached_store *ctx);

/* The RFC 9211 Cache-Status value of the GET that went through ctx
 * ("mod_hello; hit", "mod_hello; fwd=miss; stored" ...), or NULL. */
const char *hello_cache_status(const hello_cached_store *ctx, apr_pool_t *pool);

#endif
