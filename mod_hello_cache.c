/* mod_hello's read cache on Apache's socache providers: HelloCache names a
 * provider as SSLSessionCache does; each distinct one is created at
 * post_config, in the configuration pool like mod_ssl's, and a request
 * reaches it through the provider interface of the core (hello/cache.h). */
#include <string.h>

#include <apr_global_mutex.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "ap_provider.h"
#include "scoreboard.h"
#include "util_mutex.h"

#include "mod_hello.h"

APLOG_USE_MODULE(hello);

#define HELLO_CACHE_MUTEX "hello-cache"

/* Neither mod_socache_memcache nor mod_socache_redis (on apr-util 1.6)
 * bounds a read from a server that accepts connections and never answers
 * (a stopped memcached): such a call waits until the server answers. So for
 * a provider that is not node-local, at most a quarter of a child's threads
 * (at least 2) wait on the cache at once; a read finding them all taken
 * goes to the database without the cache, and a write's invalidation waits
 * for a place at most HELLO_CACHE_WRITE_WAIT, and not at all for a second
 * after such a wait was in vain. shmcb and dbm are memory and files of this
 * machine: their calls only queue for the provider's mutex, unlimited. */
#define HELLO_CACHE_WRITE_WAIT apr_time_from_msec(500)

struct hello_cache_instance {
    const hello_cache_spec *spec;
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex; /* for providers that are not multi-process safe */
    const char *mutex_file;
    int attached;  /* this child has attached the mutex */
    server_rec *s; /* for the provider's log lines */
    /* This child's calls in progress (made in child_init; NULL: no limit). */
    apr_thread_mutex_t *calls_lock;
    apr_thread_cond_t *call_done;
    int calls;
    int max_calls;
    apr_time_t waited_in_vain;    /* the last time a write found no place */
    hello_cache_pending *pending; /* this child's refused invalidations (shared caches) */
};

const char *hello_cache_parse(cmd_parms *cmd, const char *arg, hello_cache_spec **out)
{
    hello_cache_spec *spec;
    const char *colon = strchr(arg, ':');
    const char *err;
    ap_socache_instance_t *probe = NULL;

    *out = NULL;
    if (strcasecmp(arg, "none") == 0) {
        return NULL;
    }
    spec = apr_pcalloc(cmd->pool, sizeof(*spec));
    spec->text = apr_pstrdup(cmd->pool, arg);
    spec->name = colon ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(colon - arg)) : spec->text;
    spec->args = colon ? colon + 1 : NULL;
    spec->provider =
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, spec->name, AP_SOCACHE_PROVIDER_VERSION);
    if (spec->provider == NULL) {
        return apr_psprintf(cmd->pool,
                            "HelloCache: unknown cache provider '%s'; load its module before "
                            "this line (LoadModule socache_shmcb_module "
                            "modules/mod_socache_shmcb.so for shmcb, socache_memcache_module "
                            "for memcache; on Debian: a2enmod socache_shmcb), or use none",
                            spec->name);
    }
    /* The provider checks its arguments now, so that apachectl -t tells. */
    err = spec->provider->create(&probe, spec->args, cmd->temp_pool, cmd->temp_pool);
    if (err != NULL) {
        return apr_psprintf(cmd->pool, "HelloCache %s: %s", arg, err);
    }
    *out = spec;
    return NULL;
}

/* Whether the provider keeps its entries in this Apache alone (its children
 * share them, other servers cannot). */
static int node_local(const hello_cache_spec *spec)
{
    return strcasecmp(spec->name, "shmcb") == 0 || strcasecmp(spec->name, "dbm") == 0;
}

/* A namespace given by hand says that other servers write to the same
 * database; with a node-local cache their writes cannot invalidate this
 * server's entries. Said once per namespace. */
static void warn_if_node_local(apr_hash_t *warned, server_rec *s, const hello_srv_conf *conf)
{
    if (conf->cache_ns == NULL || !node_local(conf->cache_spec) ||
        apr_hash_get(warned, conf->cache_ns, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(warned, conf->cache_ns, APR_HASH_KEY_STRING, conf);
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "HelloCacheNamespace %s with HelloCache %s: %s keeps its entries in this "
                 "Apache only, so a write made through another Apache server to the same "
                 "database does not invalidate them and this server answers the old date for "
                 "up to HelloCacheMaxAge; servers that share a database need a cache they share "
                 "(HelloCache memcache:HOST:PORT, docs/architecture.md)",
                 conf->cache_ns, conf->cache_spec->text, conf->cache_spec->name);
}

int hello_cache_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, HELLO_CACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
               ? OK
               : 500;
}

/* The limit on waiting calls (at least 2) holds nobody back in a process of
 * one or two threads: prefork's children all wait on a cache that hangs. */
static void warn_if_unlimited(server_rec *s, const hello_cache_spec *spec)
{
    int threads = 1;

    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) == APR_SUCCESS && threads <= 2) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "HelloCache %s with %d thread(s) per process (the prefork MPM?): a cache "
                     "server that accepts connections but stops answering holds every process "
                     "that calls it, as apr_memcache has no read timeout; the limit on waiting "
                     "calls needs a threaded MPM (event or worker)",
                     spec->text, threads < 1 ? 1 : threads);
    }
}

/* Makes every server's cache, one per distinct HelloCache. */
int hello_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *main_server)
{
    apr_hash_t *made = apr_hash_make(ptemp);
    apr_hash_t *warned = apr_hash_make(ptemp);
    int n = 0;
    int local = 0;

    for (server_rec *s = main_server; s; s = s->next) {
        hello_srv_conf *conf = ap_get_module_config(s->module_config, &hello_module);
        hello_cache_instance *ci;
        struct ap_socache_hints hints = { 48, 48, apr_time_from_sec(60) };
        apr_status_t rv;

        conf->cache = NULL;
        if (conf->cache_spec == NULL) {
            continue;
        }
        warn_if_node_local(warned, s, conf);
        ci = apr_hash_get(made, conf->cache_spec->text, APR_HASH_KEY_STRING);
        if (ci == NULL) {
            /* The provider's namespace: part of every key in a shared cache,
             * so the same on every server whatever else it configures;
             * node-local ones name their default files after it, so each
             * further one gets its own. */
            const char *tag = node_local(conf->cache_spec) && local++ > 0
                                  ? apr_psprintf(ptemp, "mod_hello-%d", local)
                                  : "mod_hello";

            ci = apr_pcalloc(pconf, sizeof(*ci));
            ci->spec = conf->cache_spec;
            ci->s = main_server;
            const char *err = ci->spec->provider->create(&ci->inst, ci->spec->args, ptemp, pconf);
            if (err != NULL) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "HelloCache %s: %s", ci->spec->text,
                             err);
                return 500;
            }
            if (ci->spec->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
                rv = ap_global_mutex_create(&ci->mutex, &ci->mutex_file, HELLO_CACHE_MUTEX,
                                            apr_itoa(ptemp, n), main_server, pconf, 0);
                if (rv != APR_SUCCESS) {
                    ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                                 "HelloCache %s: cannot create its mutex", ci->spec->text);
                    return 500;
                }
            }
            rv = ci->spec->provider->init(ci->inst, tag, &hints, main_server, pconf);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "HelloCache %s: cannot initialise it",
                             ci->spec->text);
                return 500;
            }
            apr_pool_cleanup_register(pconf, ci, hello_cache_destroy, apr_pool_cleanup_null);
            if (!node_local(ci->spec)) {
                warn_if_unlimited(s, ci->spec);
            }
            apr_hash_set(made, ci->spec->text, APR_HASH_KEY_STRING, ci);
            n++;
        }
        conf->cache = ci;
    }
    return OK;
}

apr_status_t hello_cache_destroy(void *data)
{
    hello_cache_instance *ci = data;

    ci->spec->provider->destroy(ci->inst, ci->s);
    return APR_SUCCESS;
}

/* The list dies with the child: what is still on it is said. */
static apr_status_t pending_dropped(void *data)
{
    const hello_cache_instance *ci = data;
    apr_uint32_t n = ci->pending ? ci->pending->count : 0;

    if (n > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ci->s,
                     "HelloCache %s: this process ends with %u invalidation(s) the cache refused "
                     "not made again: GETs may answer those users' old dates for up to "
                     "HelloCacheMaxAge",
                     ci->spec->text, n);
    }
    return APR_SUCCESS;
}

/* This child's limit on calls waiting on ci at once (see above). */
static void limit_calls(hello_cache_instance *ci, apr_pool_t *pchild)
{
    int threads = 1;

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    ci->max_calls = threads / 4 > 2 ? threads / 4 : 2;
    if (apr_thread_mutex_create(&ci->calls_lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS ||
        apr_thread_cond_create(&ci->call_done, pchild) != APR_SUCCESS) {
        ci->calls_lock = NULL; /* no limit */
    }
    if (hello_cache_pending_create(&ci->pending, pchild) != APR_SUCCESS) {
        ci->pending = NULL;
    }
    apr_pool_cleanup_register(pchild, ci, pending_dropped, apr_pool_cleanup_null);
}

void hello_cache_child_init(apr_pool_t *pchild, server_rec *main_server)
{
    for (server_rec *s = main_server; s; s = s->next) {
        hello_srv_conf *conf = ap_get_module_config(s->module_config, &hello_module);
        hello_cache_instance *ci = conf->cache;

        if (ci != NULL && !node_local(ci->spec) && ci->calls_lock == NULL) {
            limit_calls(ci, pchild);
        }
        if (ci != NULL && ci->mutex != NULL && !ci->attached) {
            apr_status_t rv = apr_global_mutex_child_init(&ci->mutex, ci->mutex_file, pchild);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                             "HelloCache %s: cannot attach its mutex in this child; serving "
                             "without the cache",
                             ci->spec->text);
                conf->cache = NULL;
            }
            /* Servers sharing the cache share its mutex: attached once. */
            ci->attached = 1;
        }
    }
}

/* ---- a request's view of its server's cache ----------------------------- */

typedef struct call {
    hello_cache_instance *ci;
    server_rec *s;
    int held;   /* a write reserved a place: its calls use it */
    int locked; /* held for a few calls (cache_hold): they neither lock nor unlock */
} call;

/* Takes one of this child's places for cache calls, waiting up to `wait` for
 * one to come free. 0: none (the caller goes without the cache). */
static int enter(hello_cache_instance *ci, apr_interval_time_t wait)
{
    apr_time_t start = apr_time_now();
    apr_time_t deadline = start + wait;
    int got;

    if (ci->calls_lock == NULL) {
        return 1;
    }
    apr_thread_mutex_lock(ci->calls_lock);
    if (start - ci->waited_in_vain < apr_time_from_sec(1)) {
        deadline = start;
    }
    while (ci->calls >= ci->max_calls) {
        apr_time_t now = apr_time_now();
        if (now >= deadline) {
            break;
        }
        apr_thread_cond_timedwait(ci->call_done, ci->calls_lock, deadline - now);
    }
    got = ci->calls < ci->max_calls;
    ci->calls += got;
    if (!got && wait > 0) {
        ci->waited_in_vain = apr_time_now();
    }
    apr_thread_mutex_unlock(ci->calls_lock);
    return got;
}

static void leave(hello_cache_instance *ci)
{
    if (ci->calls_lock != NULL) {
        apr_thread_mutex_lock(ci->calls_lock);
        ci->calls--;
        apr_thread_cond_signal(ci->call_done);
        apr_thread_mutex_unlock(ci->calls_lock);
    }
}

/* A call begins: a place among this child's calls, then the provider's
 * mutex if it needs one. Reads do not wait for a place, writes a little. */
static int lock(const call *c, apr_interval_time_t wait)
{
    if (c->locked) {
        return 1;
    }
    if (!c->held && !enter(c->ci, wait)) {
        return 0;
    }
    if (c->ci->mutex != NULL && apr_global_mutex_lock(c->ci->mutex) != APR_SUCCESS) {
        if (!c->held) {
            leave(c->ci);
        }
        return 0;
    }
    return 1;
}

static void unlock(const call *c)
{
    if (c->locked) {
        return;
    }
    if (c->ci->mutex != NULL) {
        apr_global_mutex_unlock(c->ci->mutex);
    }
    if (!c->held) {
        leave(c->ci);
    }
}

static int cache_reserve(void *ctx, int wait)
{
    call *c = ctx;

    c->held = enter(c->ci, wait ? HELLO_CACHE_WRITE_WAIT : 0);
    return c->held;
}

static void cache_release(void *ctx)
{
    call *c = ctx;

    if (c->held) {
        c->held = 0;
        leave(c->ci);
    }
}

/* A few calls in one lock: a GET's two reads take shmcb's mutex once. */
static int cache_hold(void *ctx)
{
    call *c = ctx;

    if (c->locked || !lock(c, 0)) {
        return 0;
    }
    c->locked = 1;
    return 1;
}

static void cache_unhold(void *ctx)
{
    call *c = ctx;

    c->locked = 0;
    unlock(c);
}

static apr_status_t cache_get(void *ctx, apr_pool_t *pool, const char *key, unsigned char *buf,
                              unsigned int *len)
{
    const call *c = ctx;
    apr_status_t rv;

    if (!lock(c, 0)) {
        return APR_EBUSY;
    }
    rv = c->ci->spec->provider->retrieve(c->ci->inst, c->s, (const unsigned char *)key,
                                         (unsigned int)strlen(key), buf, len, pool);
    unlock(c);
    return rv;
}

static apr_status_t cache_set(void *ctx, apr_pool_t *pool, const char *key, apr_time_t expiry,
                              const unsigned char *data, unsigned int len)
{
    const call *c = ctx;
    apr_status_t rv;

    if (!lock(c, HELLO_CACHE_WRITE_WAIT)) {
        return APR_EBUSY;
    }
    rv = c->ci->spec->provider->store(c->ci->inst, c->s, (const unsigned char *)key,
                                      (unsigned int)strlen(key), expiry, (unsigned char *)data, len,
                                      pool);
    unlock(c);
    return rv;
}

static apr_status_t cache_remove(void *ctx, apr_pool_t *pool, const char *key)
{
    const call *c = ctx;
    apr_status_t rv;

    if (!lock(c, HELLO_CACHE_WRITE_WAIT)) {
        return APR_EBUSY;
    }
    rv = c->ci->spec->provider->remove(c->ci->inst, c->s, (const unsigned char *)key,
                                       (unsigned int)strlen(key), pool);
    unlock(c);
    return rv;
}

/* Whether a child of an older generation may still be serving. Such a child
 * writes through the cache of its own generation, so until it is gone this
 * generation's cache stores nothing: an entry filled here could miss that
 * child's invalidation. Checked at most every 250 ms per process. */
static int older_children_serve(void)
{
    static volatile apr_time_t checked;
    static volatile int older = 1;
    apr_time_t now = apr_time_now();
    int generation = 0;
    int limit = 0;

    if (!older || now - checked < apr_time_from_msec(250)) {
        return older;
    }
    checked = now;
    if (ap_scoreboard_image == NULL ||
        ap_mpm_query(AP_MPMQ_GENERATION, &generation) != APR_SUCCESS ||
        ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS) {
        older = 0;
        return 0;
    }
    for (int i = 0; i < limit; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        if (ps != NULL && ps->pid != 0 && ps->generation != generation) {
            return 1;
        }
    }
    older = 0;
    return 0;
}

int hello_cache_store_init(request_rec *r, hello_cached_store *cs, hello_cache_provider *provider,
                           const hello_store *inner, hello_metrics *metrics)
{
    const hello_srv_conf *conf = ap_get_module_config(r->server->module_config, &hello_module);
    call *c;

    if (conf->cache == NULL) {
        return 0;
    }
    c = apr_palloc(r->pool, sizeof(*c));
    c->ci = conf->cache;
    c->s = r->server;
    c->held = 0;
    c->locked = 0;
    provider->ctx = c;
    provider->get = cache_get;
    provider->set = cache_set;
    provider->remove = cache_remove;
    provider->reserve = cache_reserve;
    provider->release = cache_release;
    provider->hold = cache_hold;
    provider->unhold = cache_unhold;
    cs->inner = inner;
    cs->cache = provider;
    /* A virtual host without a directive of its own may share the main
     * server's configuration record: its name is taken from the request. */
    cs->ns = conf->cache_ns               ? conf->cache_ns
             : r->server->server_hostname ? r->server->server_hostname
                                          : "default";
    cs->max_age = conf->cache_max_age;
    cs->stale_if_error = conf->cache_stale_if_error;
    cs->now = r->request_time;
    cs->metrics = metrics;
    cs->no_fill = older_children_serve();
    cs->pending = c->ci->pending;
    return 1;
}
