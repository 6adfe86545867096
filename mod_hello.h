/* What the glue files of mod_hello share: the module record, the
 * configuration of each scope and mod_dbd's optional functions. Not a
 * header of the core (include/hello/): it includes httpd's headers. */
#ifndef MOD_HELLO_H
#define MOD_HELLO_H

#include <apr_dbd.h>

#include "httpd.h"
#include "http_config.h"
#include "ap_expr.h"
#include "ap_socache.h"
#include "mod_dbd.h"

#include "hello/cache.h"
#include "hello/store_dbd.h"

extern module AP_MODULE_DECLARE_DATA hello_module;

/* Per directory (<Location>): every field holds its value, the default
 * until a directive sets it; `set` records which ones a directive set in
 * this scope, so that a value equal to the default still overrides. */
typedef struct hello_dir_conf {
    apr_size_t max_body_bytes; /* HelloMaxBodySize */
    int retry_after;           /* HelloRetryAfter, seconds */
    int allow_delete;          /* HelloAllowDelete */
    hello_dbd_statement get;   /* HelloGetQuery: its mod_dbd label, or the default's SQL */
    hello_dbd_statement put;   /* HelloPutQuery */
    hello_dbd_statement del;   /* HelloDeleteQuery */
    unsigned int set;
} hello_dir_conf;

/* A <Location> (not a regex) that sets a handler: a candidate base path. */
typedef struct hello_location {
    const char *path;
    apr_size_t len; /* without trailing slashes */
    ap_expr_info_t *handler;
} hello_location;

/* HelloCache provider[:args], resolved when the directive is read. */
typedef struct hello_cache_spec {
    const char *text; /* as written: one cache per distinct text */
    const char *name;
    const char *args;
    const ap_socache_provider_t *provider;
} hello_cache_spec;

typedef struct hello_cache_instance hello_cache_instance;

/* Per server (virtual host). */
typedef struct hello_srv_conf {
    apr_array_header_t *locations;   /* of hello_location, filled in post_config */
    apr_interval_time_t dbd_timeout; /* HelloDBDTimeout (main server only); 0: no watchdog */
    int dbd_timeout_set;
    hello_dbd_state *dbd_state;        /* this server's database, as this process last saw it */
    hello_cache_spec *cache_spec;      /* HelloCache; NULL: none */
    apr_interval_time_t cache_max_age; /* HelloCacheMaxAge */
    apr_interval_time_t cache_stale_if_error; /* HelloCacheStaleIfError */
    const char *cache_ns;                     /* HelloCacheNamespace; else ServerName */
    unsigned int set;                         /* SET_CACHE* bits: set in this scope */
    hello_cache_instance *cache;              /* made at post_config; NULL: no cache */
} hello_srv_conf;

extern const command_rec hello_cmds[];
void *hello_create_dir_conf(apr_pool_t *p, char *dir);
void *hello_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *hello_create_srv_conf(apr_pool_t *p, server_rec *s);
void *hello_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

/* mod_dbd's optional functions, looked up when a directive first needs
 * them and again once every module is loaded. */
extern APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) * hello_dbd_prepare;
extern APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) * hello_dbd_acquire;
extern APR_OPTIONAL_FN_TYPE(ap_dbd_open) * hello_dbd_open;
extern APR_OPTIONAL_FN_TYPE(ap_dbd_close) * hello_dbd_close;
extern const char hello_no_dbd[];
void hello_retrieve_dbd(void);

/* The read cache (mod_hello_cache.c). */
const char *hello_cache_parse(cmd_parms *cmd, const char *arg, hello_cache_spec **out);
int hello_cache_pre_config(apr_pool_t *pconf);
int hello_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *main_server);
apr_status_t hello_cache_destroy(void *data);
void hello_cache_child_init(apr_pool_t *pchild, server_rec *main_server);
/* Wraps inner in r's server's cache: 1, or 0 when the server has none. */
int hello_cache_store_init(request_rec *r, hello_cached_store *cs, hello_cache_provider *provider,
                           const hello_store *inner, hello_metrics *metrics);

#endif
