/* The read cache in front of the database (see include/hello/cache.h). */
#include <string.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "hello/cache.h"

/* "1 <token: 16 hex digits> <stored: microseconds> YYYY-MM-DD" */
#define ENTRY_MAX 64
#define TOKEN_LEN 16

typedef struct entry {
    apr_uint64_t token;
    apr_time_t stored;
    hello_date dob;
} entry;

/* 32-bit FNV-1a. */
static apr_uint32_t fnv1a(const char *s, apr_uint32_t h)
{
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

/* "<spread>hello:<kind>:<namespace>:<user>". The first byte is a hash of the
 * rest, never 0: shmcb picks a key's subcache from its first byte alone, so
 * keys that all began alike would crowd into one. A namespace longer than 40
 * characters is replaced by its hash, so that memcache's hex-encoded key
 * stays under memcached's 250-byte limit. */
static const char *make_key(const char *name, apr_pool_t *pool, const char *kind, const char *user)
{
    const char *ns =
        strlen(name) <= 40 ? name : apr_psprintf(pool, "h%08x", fnv1a(name, 2166136261u));
    char *key = apr_pstrcat(pool, "-hello:", kind, ":", ns, ":", user, NULL);
    apr_uint32_t h = fnv1a(key + 1, 2166136261u);

    key[0] = (char)((h & 0xff) ? (h & 0xff) : 1);
    return key;
}

/* Keys of namespace ns: a user's entry and its write token. */
static const char *entry_key(const char *ns, apr_pool_t *pool, const char *user)
{
    return make_key(ns, pool, "d", user);
}

static const char *token_key(const char *ns, apr_pool_t *pool, const char *user)
{
    return make_key(ns, pool, "w", user);
}

static void cache_failed(hello_cached_store *c)
{
    c->cache_error = 1;
    if (c->metrics) {
        hello_metrics_cache(c->metrics, HELLO_CACHE_EVENT_ERROR);
    }
}

/* Gives back the place reserve() took (see include/hello/cache.h). */
static void release(hello_cached_store *c)
{
    if (c->cache->release != NULL) {
        c->cache->release(c->cache->ctx);
    }
}

/* Around a few back-to-back calls (see hold in include/hello/cache.h). */
static int hold(hello_cached_store *c)
{
    return c->cache->hold != NULL && c->cache->hold(c->cache->ctx);
}

static void unhold(hello_cached_store *c, int held)
{
    if (held) {
        c->cache->unhold(c->cache->ctx);
    }
}

/* The user's current write token: 0 when no write has set one. */
static int read_token(hello_cached_store *c, apr_pool_t *pool, const char *user,
                      apr_uint64_t *token)
{
    unsigned char buf[TOKEN_LEN + 1];
    unsigned int len = TOKEN_LEN;
    apr_status_t rv = c->cache->get(c->cache->ctx, pool, token_key(c->ns, pool, user), buf, &len);

    *token = 0;
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return 1;
    }
    if (rv != APR_SUCCESS) {
        cache_failed(c);
        return 0;
    }
    buf[len < TOKEN_LEN ? len : TOKEN_LEN] = '\0';
    *token = apr_strtoi64((const char *)buf, NULL, 16);
    return 1;
}

/* 1 when the user has an entry, read into *e. */
static int read_entry(hello_cached_store *c, apr_pool_t *pool, const char *user, entry *e)
{
    char buf[ENTRY_MAX + 1];
    unsigned int len = ENTRY_MAX;
    char *end = NULL;
    apr_status_t rv = c->cache->get(c->cache->ctx, pool, entry_key(c->ns, pool, user),
                                    (unsigned char *)buf, &len);

    if (rv != APR_SUCCESS) {
        if (!APR_STATUS_IS_NOTFOUND(rv)) {
            cache_failed(c);
        }
        return 0;
    }
    if (len > ENTRY_MAX) {
        return 0;
    }
    buf[len] = '\0';
    /* Anything else (another build's format, a damaged entry) is a miss. */
    if (len < 2 + TOKEN_LEN + 3 + HELLO_DATE_LEN || strncmp(buf, "1 ", 2) != 0) {
        return 0;
    }
    e->token = (apr_uint64_t)apr_strtoi64(buf + 2, &end, 16);
    if (end != buf + 2 + TOKEN_LEN || *end != ' ') {
        return 0;
    }
    e->stored = (apr_time_t)apr_strtoi64(end + 1, &end, 10);
    if (*end != ' ' || strlen(end + 1) != HELLO_DATE_LEN ||
        !hello_date_parse(end + 1, HELLO_DATE_LEN, &e->dob)) {
        return 0;
    }
    return 1;
}

/* Entries live as long as they may be answered from: fresh for max_age,
 * stale (through an outage) for stale_if_error. */
static apr_interval_time_t lifetime(const hello_cached_store *c)
{
    return c->stale_if_error > c->max_age ? c->stale_if_error : c->max_age;
}

/* A GET's fill: only with a place for the call at once, so that a read
 * never waits for the cache; without one the entry is simply not stored. */
static int store_entry(hello_cached_store *c, apr_pool_t *pool, const char *user,
                       apr_uint64_t token, hello_date dob)
{
    char date[HELLO_DATE_LEN + 1];
    const char *data;
    apr_status_t rv;

    if (c->cache->reserve != NULL && !c->cache->reserve(c->cache->ctx, 0)) {
        return 0;
    }
    hello_date_format(dob, date);
    data = apr_psprintf(pool, "1 %016" APR_UINT64_T_HEX_FMT " %" APR_TIME_T_FMT " %s", token,
                        c->now, date);
    rv = c->cache->set(c->cache->ctx, pool, entry_key(c->ns, pool, user), c->now + lifetime(c),
                       (const unsigned char *)data, (unsigned int)strlen(data));
    release(c);
    if (rv != APR_SUCCESS) {
        cache_failed(c);
        return 0;
    }
    return 1;
}

static void make_pending_again(hello_cached_store *c, apr_pool_t *pool, int held);

static hello_store_status cached_get(void *ctx, apr_pool_t *pool, const char *username,
                                     hello_date *dob, const char **err)
{
    hello_cached_store *c = ctx;
    entry e;
    apr_uint64_t token = 0;
    int have_token;
    int have_entry;
    int held;
    int may_serve_stale = 0;
    hello_store_status st;

    make_pending_again(c, pool, 0);
    /* The entry, then the token, in one hold of the cache. The token is read
     * before the database: a write that commits after this read replaces
     * it, so what is stored below cannot match. */
    held = hold(c);
    have_entry = read_entry(c, pool, username, &e);
    have_token = read_token(c, pool, username, &token);
    unhold(c, held);
    c->outcome = HELLO_CACHE_MISS;
    if (have_entry) {
        if (have_token && e.token == token) {
            apr_interval_time_t age = c->now > e.stored ? c->now - e.stored : 0;
            if (age < c->max_age) {
                c->outcome = HELLO_CACHE_HIT;
                c->age = age;
                *dob = e.dob;
                if (c->metrics) {
                    hello_metrics_cache(c->metrics, HELLO_CACHE_EVENT_HIT);
                }
                return HELLO_STORE_OK;
            }
            may_serve_stale = age < c->stale_if_error;
        }
        /* An entry of an older write is never answered, not even stale. */
        c->outcome = HELLO_CACHE_OUTDATED;
    }
    if (c->metrics) {
        hello_metrics_cache(c->metrics, HELLO_CACHE_EVENT_MISS);
    }
    st = c->inner->get(c->inner->ctx, pool, username, dob, err);
    if (st == HELLO_STORE_OK && have_token && !c->no_fill) {
        c->stored = store_entry(c, pool, username, token, *dob);
    }
    else if (st == HELLO_STORE_NOT_FOUND && have_entry) {
        /* The row went away without a write through the module. */
        c->cache->remove(c->cache->ctx, pool, entry_key(c->ns, pool, username));
    }
    else if (st == HELLO_STORE_UNAVAILABLE && may_serve_stale) {
        c->outcome = HELLO_CACHE_STALE_HIT;
        c->age = c->now > e.stored ? c->now - e.stored : 0;
        *dob = e.dob;
        if (c->metrics) {
            hello_metrics_cache(c->metrics, HELLO_CACHE_EVENT_STALE);
        }
        return HELLO_STORE_OK;
    }
    return st;
}

static apr_uint64_t new_token(apr_time_t now)
{
    apr_uint64_t token = 0;

    if (apr_generate_random_bytes((unsigned char *)&token, sizeof(token)) != APR_SUCCESS) {
        token = (apr_uint64_t)now * 2654435761u;
    }
    token &= APR_UINT64_C(0x7fffffffffffffff); /* read back with apr_strtoi64 */
    return token ? token : 1;                  /* 0 means "no write yet" */
}

apr_status_t hello_cache_pending_create(hello_cache_pending **out, apr_pool_t *pool)
{
    hello_cache_pending *p = apr_pcalloc(pool, sizeof(*p));

    *out = p;
    return apr_thread_mutex_create(&p->lock, APR_THREAD_MUTEX_DEFAULT, pool);
}

/* A new token, so that no entry filled before it matches, and the entry
 * goes (also when the token was refused, unless only_with_token). Tokens
 * outlive every entry they could be compared with: `life` is the lifetime
 * of the entries of ns. 0 when the cache did not take the token. */
static int replace_token(hello_cached_store *c, apr_pool_t *pool, const char *ns, const char *user,
                         apr_interval_time_t life, int only_with_token, apr_status_t *removed)
{
    const char *token = apr_psprintf(pool, "%016" APR_UINT64_T_HEX_FMT, new_token(c->now));
    int held = hold(c);
    apr_status_t rv;

    rv = c->cache->set(c->cache->ctx, pool, token_key(ns, pool, user),
                       c->now + 2 * life + apr_time_from_sec(60), (const unsigned char *)token,
                       TOKEN_LEN);
    *removed = APR_EGENERAL;
    if (rv == APR_SUCCESS || !only_with_token) {
        *removed = c->cache->remove(c->cache->ctx, pool, entry_key(ns, pool, user));
    }
    unhold(c, held);
    return rv == APR_SUCCESS;
}

/* The item for (ns, user), or -1. Under the lock. */
static int find_pending(const hello_cache_pending *p, const char *ns, const char *user)
{
    for (apr_uint32_t i = 0; i < p->count; i++) {
        if (p->item[i].ns == ns && strcmp(p->item[i].user, user) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Keeps a refused invalidation to be made again; 0 when the list is full.
 * A user already listed gets a new sequence number, so that a replay that
 * began before this write does not take it off the list. */
static int remember(hello_cache_pending *p, const char *ns, const char *user,
                    apr_interval_time_t life)
{
    apr_size_t len = strlen(user);
    int kept = 0;
    int i;

    if (apr_thread_mutex_lock(p->lock) != APR_SUCCESS) {
        return 0;
    }
    i = find_pending(p, ns, user);
    if (i < 0 && p->count < HELLO_CACHE_PENDING_MAX && len <= HELLO_USERNAME_MAX) {
        i = (int)p->count;
        p->item[i].ns = ns;
        memcpy(p->item[i].user, user, len + 1);
        p->item[i].life = 0;
        apr_atomic_set32(&p->count, p->count + 1);
    }
    if (i >= 0) {
        p->item[i].seq = ++p->next_seq;
        if (life > p->item[i].life) {
            p->item[i].life = life;
        }
        kept = 1;
    }
    apr_thread_mutex_unlock(p->lock);
    return kept;
}

/* Takes (ns, user) off the list if no write listed it again since seq. */
static void forget(hello_cache_pending *p, const char *ns, const char *user, apr_uint32_t seq)
{
    int i;

    if (apr_thread_mutex_lock(p->lock) != APR_SUCCESS) {
        return;
    }
    i = find_pending(p, ns, user);
    if (i >= 0 && p->item[i].seq == seq) {
        memmove(&p->item[i], &p->item[i + 1],
                (p->count - (apr_uint32_t)i - 1) * sizeof(p->item[0]));
        apr_atomic_set32(&p->count, p->count - 1);
    }
    apr_thread_mutex_unlock(p->lock);
}

/* Before a request's own calls: makes again the refused invalidations, up
 * to 4, the oldest first, until the cache refuses one again. Only with a
 * place for the calls at once (held: the write's own), so that no request
 * waits for them; a refusal is not counted again. */
static void make_pending_again(hello_cached_store *c, apr_pool_t *pool, int held)
{
    hello_cache_pending *p = c->pending;

    if (p == NULL || apr_atomic_read32(&p->count) == 0) {
        return;
    }
    if (!held && c->cache->reserve != NULL && !c->cache->reserve(c->cache->ctx, 0)) {
        return;
    }
    if (apr_thread_mutex_lock(p->lock) == APR_SUCCESS) {
        struct {
            const char *ns;
            const char *user;
            apr_interval_time_t life;
            apr_uint32_t seq;
        } take[4];
        apr_uint32_t n = p->count < 4 ? p->count : 4;
        apr_status_t removed;

        for (apr_uint32_t i = 0; i < n; i++) {
            take[i].ns = p->item[i].ns;
            take[i].user = apr_pstrdup(pool, p->item[i].user);
            take[i].life = p->item[i].life;
            take[i].seq = p->item[i].seq;
        }
        apr_thread_mutex_unlock(p->lock);
        for (apr_uint32_t i = 0; i < n; i++) {
            if (!replace_token(c, pool, take[i].ns, take[i].user, take[i].life, 1, &removed)) {
                break;
            }
            forget(p, take[i].ns, take[i].user, take[i].seq);
        }
    }
    if (!held) {
        release(c);
    }
}

/* After a write committed. */
static void invalidate(hello_cached_store *c, apr_pool_t *pool, const char *user)
{
    apr_status_t removed;

    if (replace_token(c, pool, c->ns, user, lifetime(c), 0, &removed)) {
        return;
    }
    cache_failed(c);
    if (c->pending != NULL && remember(c->pending, c->ns, user, lifetime(c))) {
        c->warning = "the cache did not take the write's token: a GET that ran during this "
                     "write may be answered from the old date until this process reaches "
                     "the cache again and makes the invalidation again";
    }
    else if (APR_STATUS_IS_NOTFOUND(removed) || removed == APR_SUCCESS) {
        c->warning = "the cache did not take the write's token: a GET that ran "
                     "during this write may be answered from the old date for up "
                     "to HelloCacheMaxAge";
    }
    else {
        c->warning = "the cache took neither the write's token nor the removal of the "
                     "entry: GETs may be answered from the old date for up to "
                     "HelloCacheMaxAge";
    }
}

/* A write goes to the database only once the cache has a place for its
 * invalidation: a write acknowledged without it could be read stale from the
 * cache later, on every server that shares it. */
static int reserve(hello_cached_store *c, const char **err)
{
    if (c->cache->reserve == NULL || c->cache->reserve(c->cache->ctx, 1)) {
        return 1;
    }
    cache_failed(c);
    *err = "the cache is not answering (every place for its calls is taken): the write was "
           "not made, so that it cannot be read stale once the cache answers again";
    return 0;
}

static hello_store_status cached_put(void *ctx, apr_pool_t *pool, const char *username,
                                     hello_date dob, const char **err)
{
    hello_cached_store *c = ctx;
    hello_store_status st;

    if (!reserve(c, err)) {
        return HELLO_STORE_UNAVAILABLE;
    }
    make_pending_again(c, pool, 1);
    st = c->inner->put(c->inner->ctx, pool, username, dob, err);
    if (st == HELLO_STORE_OK) {
        invalidate(c, pool, username);
    }
    release(c);
    return st;
}

static hello_store_status cached_del(void *ctx, apr_pool_t *pool, const char *username,
                                     const char **err)
{
    hello_cached_store *c = ctx;
    hello_store_status st;

    if (!reserve(c, err)) {
        return HELLO_STORE_UNAVAILABLE;
    }
    make_pending_again(c, pool, 1);
    st = c->inner->del(c->inner->ctx, pool, username, err);
    if (st != HELLO_STORE_UNAVAILABLE) {
        invalidate(c, pool, username);
    }
    release(c);
    return st;
}

void hello_cached_store_init(hello_store *store, hello_cached_store *ctx)
{
    ctx->outcome = HELLO_CACHE_NONE;
    ctx->stored = 0;
    ctx->cache_error = 0;
    ctx->age = 0;
    ctx->warning = NULL;
    store->ctx = ctx;
    store->get = cached_get;
    store->put = cached_put;
    store->del = ctx->inner->del ? cached_del : NULL;
}

const char *hello_cache_status(const hello_cached_store *ctx, apr_pool_t *pool)
{
    const char *error = ctx->cache_error ? "; detail=cache-error" : "";

    switch (ctx->outcome) {
    case HELLO_CACHE_HIT:
        return apr_pstrcat(pool, "mod_hello; hit", error, NULL);
    case HELLO_CACHE_STALE_HIT:
        return "mod_hello; hit; detail=stale";
    case HELLO_CACHE_MISS:
        return apr_pstrcat(pool, "mod_hello; fwd=miss", ctx->stored ? "; stored" : "", error, NULL);
    case HELLO_CACHE_OUTDATED:
        return apr_pstrcat(pool, "mod_hello; fwd=stale", ctx->stored ? "; stored" : "", error,
                           NULL);
    default:
        return NULL;
    }
}
