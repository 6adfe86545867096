/* mod_hello: the "hello birthday" JSON API, served from Apache httpd 2.4
 * with dates of birth kept in MySQL/MariaDB through mod_dbd.
 *
 * This file is the Apache glue: the module record, the hooks, and the
 * conversion between request_rec and the core (src/), which decides every
 * answer. The directives and their merges are in mod_hello_config.c. */
#include <string.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "mod_status.h"
#include "mod_watchdog.h"

#include "hello/core.h"
#include "hello/json.h"
#include "hello/metrics.h"
#include "hello/store_dbd.h"
#include "hello/validate.h"
#include "hello/watchdog.h"
#include "mod_hello.h"

#define HELLO_HANDLER      "hello"
#define HELLO_HEALTH       "hello-health"
#define HELLO_METRICS      "hello-metrics"
#define HELLO_ERROR_FILTER "HELLO_JSON_ERROR"
#define HELLO_NOTE_ERROR   "hello-error"

/* ---- hooks run at startup ---------------------------------------------- */

static int hello_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    hello_retrieve_dbd();
    if (hello_dbd_acquire == NULL || hello_dbd_open == NULL || hello_dbd_close == NULL) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "%s", hello_no_dbd);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Remembers the server's <Location> sections that set a handler. Only
 * directives of a module create its per-directory config, so a section that
 * holds nothing but SetHandler never reaches our config: the base path of
 * the API is found from the core's sections instead (hello_base). */
static void collect_locations(server_rec *s)
{
    core_server_config *core = ap_get_core_module_config(s->module_config);
    hello_srv_conf *conf = ap_get_module_config(s->module_config, &hello_module);
    ap_conf_vector_t **sections = (ap_conf_vector_t **)core->sec_url->elts;

    conf->locations->nelts = 0;
    for (int i = 0; i < core->sec_url->nelts; i++) {
        core_dir_config *d = ap_get_core_module_config(sections[i]);
        if (d->expr_handler != NULL && d->r == NULL && d->d != NULL) {
            hello_location *loc = apr_array_push(conf->locations);
            loc->path = d->d;
            loc->len = hello_path_trim(d->d, strlen(d->d));
            loc->handler = d->expr_handler;
        }
    }
}

/* ---- metrics in shared memory ------------------------------------------ */

/* What survives a graceful restart in the parent. Its shape never changes;
 * the segment carries its own layout header. */
#define HELLO_RETAINED_KEY "mod_hello/metrics-segment"
typedef struct hello_retained {
    apr_shm_t *shm;
} hello_retained;

/* Set in the parent before the children fork: server_rec * -> its
 * counters (virtual hosts without a directive of ours share the main
 * server's config record, so the map is by server_rec), and the sets in
 * config order for the metrics page. NULL: serving without metrics. */
static apr_hash_t *hello_counters;
static hello_metrics_set *hello_sets;
static int hello_nsets;

static hello_metrics *counters_of(const server_rec *s)
{
    const void *key = s;

    return hello_counters ? apr_hash_get(hello_counters, &key, sizeof(key)) : NULL;
}

/* The segment for these labels: the retained one if it still has room for
 * all of them (a graceful restart keeps counting where it was), else a new
 * one into which the counters of the labels it had are copied. */
static hello_metrics_segment *metrics_segment(server_rec *s, apr_pool_t *life,
                                              const char *const *labels, int n,
                                              hello_metrics_segment **from)
{
    hello_retained *ret = ap_retained_data_get(HELLO_RETAINED_KEY);
    hello_metrics_segment *seg;
    apr_size_t capacity = (apr_size_t)n + (apr_size_t)n / 4 + 8;
    apr_shm_t *shm;
    apr_status_t rv;

    *from = NULL;
    if (ret == NULL) {
        ret = ap_retained_data_create(HELLO_RETAINED_KEY, sizeof(*ret));
        ret->shm = NULL;
    }
    if (ret->shm != NULL) {
        seg = apr_shm_baseaddr_get(ret->shm);
        if (!hello_metrics_segment_ok(seg, apr_shm_size_get(ret->shm))) {
            /* Older children may still write to it: leave it to the process pool. */
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "mod_hello: this build counts with another metrics layout; "
                         "starting new counters");
            ret->shm = NULL;
        }
        else if (hello_metrics_segment_fits(seg, labels, n)) {
            return seg;
        }
        else {
            *from = seg;
        }
    }
    rv = apr_shm_create(&shm, hello_metrics_segment_size(capacity), NULL, life);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "mod_hello: cannot create the shared memory for metrics; "
                     "serving without them");
        return NULL;
    }
    seg = apr_shm_baseaddr_get(shm);
    hello_metrics_segment_init(seg, capacity);
    /* The old segment stays mapped (in this process until it exits, and in
     * older children that still count into it). */
    ret->shm = shm;
    return seg;
}

/* One set of counters per configured server_rec, labelled by its name. */
static void setup_metrics(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    hello_metrics_segment *seg, *from;
    const char **hosts, **labels;
    apr_uint64_t now = (apr_uint64_t)apr_time_sec(apr_time_now());
    apr_pool_t *life = s->process->pool; /* the segment outlives pconf */
    int *ports;
    int n = 0;

    hello_counters = NULL;
    for (server_rec *sp = s; sp; sp = sp->next) {
        n++;
    }
    hosts = apr_palloc(ptemp, sizeof(*hosts) * (apr_size_t)n);
    ports = apr_palloc(ptemp, sizeof(*ports) * (apr_size_t)n);
    n = 0;
    for (server_rec *sp = s; sp; sp = sp->next, n++) {
        hosts[n] = sp->server_hostname;
        ports[n] = sp->port ? sp->port : sp->addrs ? sp->addrs->host_port : 0;
    }
    labels = hello_metrics_labels(ptemp, hosts, ports, n);
    seg = metrics_segment(s, life, labels, n, &from);
    if (seg == NULL) {
        return;
    }
    hello_sets = apr_palloc(pconf, sizeof(*hello_sets) * (apr_size_t)n);
    hello_counters = apr_hash_make(pconf);
    hello_nsets = 0;
    n = 0;
    for (server_rec *sp = s; sp; sp = sp->next, n++) {
        hello_metrics *m = hello_metrics_claim(seg, labels[n], now, from);
        const void **key;
        if (m == NULL) { /* cannot happen: the segment fits every label */
            continue;
        }
        key = apr_palloc(pconf, sizeof(*key));
        *key = sp;
        hello_sets[hello_nsets].vhost = apr_pstrdup(pconf, labels[n]);
        hello_sets[hello_nsets++].m = m;
        apr_hash_set(hello_counters, key, sizeof(*key), m);
    }
    hello_metrics_segment_release(seg, labels, n);
}

/* ---- the watchdog for database calls, on mod_watchdog ------------------- */

/* This process's watchdog (include/hello/watchdog.h); NULL with
 * HelloDBDTimeout 0 or without mod_watchdog. */
static hello_watchdog *hello_wd;

static apr_status_t watchdog_tick(int state, void *data, apr_pool_t *pool)
{
    apr_interval_time_t overdue = 0;
    int shut;

    (void)pool;
    if (state != AP_WATCHDOG_STATE_RUNNING || hello_wd == NULL) {
        return APR_SUCCESS;
    }
    shut = hello_watchdog_check(hello_wd, apr_time_now(), &overdue);
    if (shut >= 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, (server_rec *)data,
                     "mod_hello: a database call ran %" APR_TIME_T_FMT " ms past HelloDBDTimeout; "
                     "shut down this process's %d database connection(s) so that blocked "
                     "requests answer 503 and fresh connections are opened",
                     apr_time_as_msec(overdue), shut);
    }
    return APR_SUCCESS;
}

/* Made in the parent, so that each child has its copy before mod_watchdog
 * starts the child's thread that ticks it every 100 ms. */
static void setup_watchdog(apr_pool_t *pconf, server_rec *s)
{
    const hello_srv_conf *conf = ap_get_module_config(s->module_config, &hello_module);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * register_callback;
    ap_watchdog_t *wd = NULL;
    int threads = 0;
    apr_status_t rv;

    hello_wd = NULL;
    if (conf->dbd_timeout == 0) {
        return;
    }
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (get_instance == NULL || register_callback == NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_hello: HelloDBDTimeout needs mod_watchdog (LoadModule watchdog_module "
                     "modules/mod_watchdog.so); without it a database that stops answering holds "
                     "requests until it answers again");
        return;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) {
        threads = 1;
    }
    rv = hello_watchdog_create(&hello_wd, pconf, threads, conf->dbd_timeout);
    if (rv == APR_SUCCESS) {
        rv = get_instance(&wd, "mod_hello", 0, 0, pconf);
    }
    if (rv == APR_SUCCESS) {
        rv = register_callback(wd, AP_WD_TM_SLICE, s, watchdog_tick);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "mod_hello: cannot set up the database watchdog; a database that stops "
                     "answering will hold requests until it answers again");
        hello_wd = NULL;
    }
}

static int hello_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return hello_cache_pre_config(pconf);
}

/* Sets up the counters, the watchdog, the caches and each server's list of
 * locations. */
static int hello_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    setup_metrics(pconf, ptemp, s);
    setup_watchdog(pconf, s);
    for (server_rec *sp = s; sp; sp = sp->next) {
        collect_locations(sp);
    }
    return hello_cache_post_config(pconf, ptemp, s);
}

/* ---- per request ------------------------------------------------------ */

/* Whether SetHandler names this module for r's location. r->handler is set
 * only in the fixups phase; before that (map_to_storage, early errors) the
 * configured handler expression is what tells. The core resets the config
 * to the server's defaults before map_to_storage and fails bad %-escapes
 * before any walk, so the locations are walked here first (the walk cache
 * makes the core's own walk that follows free). A request that is not ours
 * gets its config back untouched, so that the core's directory walk and its
 * precedence of <Location> over <Directory> stay exactly as without us. */
static int hello_is_ours(request_rec *r)
{
    ap_conf_vector_t *before = r->per_dir_config;
    core_dir_config *d;
    const char *handler = NULL;
    const char *err = NULL;

    if (r->handler) {
        return strcmp(r->handler, HELLO_HANDLER) == 0;
    }
    if (before == r->server->lookup_defaults && r->uri && r->uri[0] == '/' &&
        ap_location_walk(r) != OK) {
        r->per_dir_config = before;
        return 0;
    }
    d = ap_get_core_module_config(r->per_dir_config);
    if (d != NULL && d->expr_handler != NULL) {
        handler = ap_expr_str_exec(r, d->expr_handler, &err);
    }
    if (err == NULL && handler != NULL && strcmp(handler, HELLO_HANDLER) == 0) {
        return 1;
    }
    r->per_dir_config = before;
    return 0;
}

/* Our locations are not files. Claiming the translation keeps the core
 * from joining the DocumentRoot and the URI into a file name: a path too
 * long for the file system (a username of some thousands of letters)
 * would otherwise be a 403 before the handler could answer its 400. It
 * runs after every other translator (mod_rewrite, mod_alias...), which may
 * still take the request elsewhere. The file name marks the request as
 * ours, as mod_proxy's "proxy:" does. */
static int hello_translate_name(request_rec *r)
{
    if (!hello_is_ours(r)) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, "hello:", r->uri, NULL);
    return OK;
}

/* Our locations are not files: skip the directory walk and stat, and keep
 * TRACE from being answered by the core instead of the contract's 405. */
static int hello_map_to_storage(request_rec *r)
{
    return hello_is_ours(r) ? OK : DECLINED;
}

typedef struct body_reader {
    request_rec *r;
    int complete;     /* the body was read to its end */
    int already_sent; /* an input filter answered the error itself */
} body_reader;

/* Set while the handler reads a body, so that an error an input filter
 * answers on its own (a malformed chunk, a timeout) gets the reason the
 * core would have given. */
#define HELLO_NOTE_READING "hello-reading-body"

static hello_read_result read_body(void *ctx, apr_pool_t *pool, size_t max, const char **body,
                                   size_t *len, int *status)
{
    body_reader *reader = ctx;
    request_rec *r = reader->r;
    const char *header = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t capacity = max;
    apr_size_t used = 0;
    apr_bucket_brigade *bb;
    char *buf;
    int seen_eos = 0;

    if (header != NULL) {
        apr_off_t declared;
        char *end;
        /* The core has already refused a malformed Content-Length. */
        if (apr_strtoff(&declared, header, &end, 10) == APR_SUCCESS && declared >= 0) {
            if ((apr_uint64_t)declared > max) {
                /* Refused before a byte is read; closing the connection
                 * keeps the core from reading the rest to discard it. */
                r->connection->keepalive = AP_CONN_CLOSE;
                return HELLO_READ_TOO_LARGE;
            }
            capacity = (apr_size_t)declared;
        }
    }
    buf = apr_palloc(pool, capacity + 1);
    bb = apr_brigade_create(pool, r->connection->bucket_alloc);
    apr_table_setn(r->notes, HELLO_NOTE_READING, "1");

    while (!seen_eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                                         HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            *status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            /* AP_FILTER_ERROR: the filter has answered already. */
            reader->already_sent = *status == AP_FILTER_ERROR;
            r->connection->keepalive = AP_CONN_CLOSE;
            apr_brigade_destroy(bb);
            return *status == HTTP_REQUEST_ENTITY_TOO_LARGE ? HELLO_READ_TOO_LARGE
                                                            : HELLO_READ_FAILED;
        }
        for (apr_bucket *b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                *status = HTTP_BAD_REQUEST;
                r->connection->keepalive = AP_CONN_CLOSE;
                apr_brigade_destroy(bb);
                return HELLO_READ_FAILED;
            }
            if (n > capacity - used) {
                r->connection->keepalive = AP_CONN_CLOSE;
                apr_brigade_destroy(bb);
                return used + n > max ? HELLO_READ_TOO_LARGE : HELLO_READ_FAILED;
            }
            memcpy(buf + used, data, n);
            used += n;
        }
        apr_brigade_cleanup(bb);
    }
    apr_brigade_destroy(bb);
    reader->complete = 1;
    buf[used] = '\0';
    *body = buf;
    *len = used;
    return HELLO_READ_OK;
}

/* The path of the longest <Location> enclosing r->uri whose SetHandler is
 * ours. Without one (a <LocationMatch>, say) the username is the last
 * segment of the path. */
static const char *hello_base(request_rec *r)
{
    hello_srv_conf *conf = ap_get_module_config(r->server->module_config, &hello_module);
    const hello_location *locs = (const hello_location *)conf->locations->elts;
    const hello_location *best = NULL;
    const char *slash;

    for (int i = 0; i < conf->locations->nelts; i++) {
        const hello_location *loc = &locs[i];
        const char *handler;
        const char *err = NULL;

        if ((best && loc->len <= best->len) || strncmp(r->uri, loc->path, loc->len) != 0 ||
            (r->uri[loc->len] != '/' && r->uri[loc->len] != '\0')) {
            continue;
        }
        handler = ap_expr_str_exec(r, loc->handler, &err);
        if (err == NULL && handler != NULL && strcmp(handler, HELLO_HANDLER) == 0) {
            best = loc;
        }
    }
    if (best) {
        return apr_pstrmemdup(r->pool, best->path, best->len);
    }
    slash = strrchr(r->uri, '/');
    return slash ? apr_pstrmemdup(r->pool, r->uri, (apr_size_t)(slash - r->uri)) : "";
}

static void send_response(request_rec *r, const hello_response *resp)
{
    r->status = resp->status;
    if (resp->allow) {
        apr_table_setn(r->headers_out, "Allow", resp->allow);
    }
    if (resp->retry_after > 0) {
        apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, resp->retry_after));
    }
    if (resp->reason) {
        apr_table_setn(r->notes, HELLO_NOTE_ERROR, resp->reason);
    }
    if (resp->body == NULL) {
        return;
    }
    ap_set_content_type(r, HELLO_CONTENT_TYPE);
    ap_set_content_length(r, (apr_off_t)resp->body_len);
    if (!r->header_only) {
        ap_rwrite(resp->body, (int)resp->body_len, r);
    }
}

static hello_method method_of(const request_rec *r)
{
    switch (r->method_number) {
    case M_GET:
        return r->header_only ? HELLO_METHOD_HEAD : HELLO_METHOD_GET;
    case M_PUT:
        return HELLO_METHOD_PUT;
    case M_DELETE:
        return HELLO_METHOD_DELETE;
    default:
        return HELLO_METHOD_OTHER;
    }
}

static void count_request(request_rec *r, int status, apr_time_t start)
{
    hello_metrics *m = counters_of(r->server);

    if (m) {
        apr_time_t now = apr_time_now();
        hello_metrics_request(m, method_of(r), status,
                              now > start ? (apr_uint64_t)(now - start) : 0);
    }
}

/* A second connection of a request goes back to mod_dbd with the request. */
typedef struct second_loan {
    server_rec *s;
    ap_dbd_t *dbd;
} second_loan;

static apr_status_t give_back(void *data)
{
    second_loan *loan = data;

    hello_dbd_close(loan->s, loan->dbd);
    return APR_SUCCESS;
}

static ap_dbd_t *take_connection(void *arg, int again)
{
    request_rec *r = arg;
    second_loan *loan;

    if (!again) {
        return hello_dbd_acquire(r);
    }
    loan = apr_palloc(r->pool, sizeof(*loan));
    loan->s = r->server;
    loan->dbd = hello_dbd_open(r->pool, r->server);
    if (loan->dbd != NULL) {
        apr_pool_cleanup_register(r->pool, loan, give_back, apr_pool_cleanup_null);
    }
    return loan->dbd;
}

static void trace_store(void *arg, const char *line)
{
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, (request_rec *)arg, "%s", line);
}

/* The request's store, on mod_dbd's connections of its server. */
static void request_store(request_rec *r, const hello_dir_conf *conf, hello_dbd_store *dbd,
                          hello_store *store)
{
    const hello_srv_conf *sconf = ap_get_module_config(r->server->module_config, &hello_module);

    dbd->take = take_connection;
    dbd->trace = APLOG_R_IS_LEVEL(r, APLOG_DEBUG) ? trace_store : NULL;
    dbd->arg = r;
    dbd->get = &conf->get;
    dbd->put = &conf->put;
    dbd->del = conf->allow_delete ? &conf->del : NULL;
    dbd->watchdog = hello_wd;
    dbd->metrics = counters_of(r->server);
    dbd->state = sconf->dbd_state;
    hello_dbd_store_init(store, dbd);
}

/* A database that cannot be reached is logged once per interval, with the
 * count of the requests left out, not once per request. */
#define HELLO_UNREACHABLE_LOG_INTERVAL apr_time_from_sec(10)
static volatile apr_uint64_t unreachable_logged;
static volatile apr_uint32_t unreachable_unlogged;

static void log_answer(request_rec *r, const hello_response *resp)
{
    const char *why = resp->log_detail ? resp->log_detail : resp->reason;

    if (resp->status >= 500 && resp->log_detail == hello_dbd_no_connection) {
        apr_uint64_t last = apr_atomic_read64(&unreachable_logged);
        apr_uint64_t now = (apr_uint64_t)apr_time_now();
        if ((last != 0 && now - last < (apr_uint64_t)HELLO_UNREACHABLE_LOG_INTERVAL) ||
            apr_atomic_cas64(&unreachable_logged, now, last) != last) {
            apr_atomic_inc32(&unreachable_unlogged);
            return;
        }
        apr_uint32_t unlogged = apr_atomic_xchg32(&unreachable_unlogged, 0);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_hello: %s %s answered %d: %s%s", r->method,
                      r->uri, resp->status, why,
                      unlogged ? apr_psprintf(r->pool,
                                              " (and %u more such answers, unlogged: at most "
                                              "one such line every %d s)",
                                              unlogged,
                                              (int)apr_time_sec(HELLO_UNREACHABLE_LOG_INTERVAL))
                               : "");
    }
    else if (resp->status >= 500) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_hello: %s %s answered %d: %s", r->method,
                      r->uri, resp->status, why);
    }
    else if (resp->reason) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_hello: %s %s answered %d: %s", r->method,
                      r->uri, resp->status, resp->reason);
    }
}

/* RFC 9211's Cache-Status on every GET through the cache, Age on hits. */
static void answer_cache_status(request_rec *r, const hello_cached_store *cached)
{
    const char *status = hello_cache_status(cached, r->pool);

    if (status != NULL) {
        apr_table_setn(r->headers_out, "Cache-Status", status);
    }
    if (cached->outcome == HELLO_CACHE_HIT || cached->outcome == HELLO_CACHE_STALE_HIT) {
        apr_table_setn(r->headers_out, "Age",
                       apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_sec(cached->age)));
    }
    if (cached->warning != NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_hello: %s %s: %s", r->method, r->uri,
                      cached->warning);
    }
    else if (cached->cache_error) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "mod_hello: %s %s: the cache failed; answered from the database", r->method,
                      r->uri);
    }
}

static int hello_handler(request_rec *r)
{
    hello_dir_conf *conf;
    hello_request req;
    hello_response resp;
    hello_dbd_store dbd;
    hello_store db;
    hello_cached_store cached;
    hello_cache_provider provider;
    hello_store through_cache;
    const hello_store *store = &db;
    int cache_on;
    body_reader reader = { r, 0, 0 };
    apr_time_t start;

    if (r->handler == NULL || strcmp(r->handler, HELLO_HANDLER) != 0) {
        return DECLINED;
    }
    start = apr_time_now();
    conf = ap_get_module_config(r->per_dir_config, &hello_module);

    req.method = method_of(r);
    req.path = r->uri;
    req.base = hello_base(r);
    req.content_type = apr_table_get(r->headers_in, "Content-Type");
    req.today = hello_date_from_unix(apr_time_sec(r->request_time));
    req.max_body = conf->max_body_bytes;
    req.retry_after = conf->retry_after;
    req.allow_delete = conf->allow_delete;
    req.read_body = read_body;
    req.read_ctx = &reader;
    request_store(r, conf, &dbd, &db);
    cache_on = hello_cache_store_init(r, &cached, &provider, &db, counters_of(r->server));
    if (cache_on) {
        hello_cached_store_init(&through_cache, &cached);
        store = &through_cache;
    }

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_hello: %s %s (location %s)", r->method,
                  r->uri, req.base ? req.base : "/");
    hello_handle(&req, store, r->pool, &resp);
    log_answer(r, &resp);
    if (cache_on) {
        answer_cache_status(r, &cached);
    }
    if (reader.already_sent) {
        /* Apache answered (its error body rewritten by our error filter). */
        return AP_FILTER_ERROR;
    }
    if (!reader.complete && ap_request_has_body(r)) {
        /* Answered without reading the body (a 404, 405, 415...): reading it
         * now to keep the connection could only delay the answer, or let a
         * malformed body replace it. Close instead; lingering close drains. */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    send_response(r, &resp);
    count_request(r, resp.status, start);
    return OK;
}

/* ---- health and metrics ------------------------------------------------ */

static int answer_json(request_rec *r, int status, const char *json)
{
    r->status = status;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, HELLO_CONTENT_TYPE);
    ap_set_content_length(r, (apr_off_t)strlen(json));
    if (!r->header_only) {
        ap_rputs(json, r);
    }
    return OK;
}

/* An error answer of the health or metrics handler, with its reason in the
 * request note like every other error the module answers. */
static int answer_error(request_rec *r, int status, const char *reason)
{
    apr_table_setn(r->notes, HELLO_NOTE_ERROR, reason);
    if (status == HTTP_METHOD_NOT_ALLOWED) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
    }
    return answer_json(r, status, hello_json_error(r->pool, reason));
}

/* GET answers whether a pooled connection runs the module's SELECT for real:
 * 200 {"status":"ok"} or 503 {"status":"unavailable","reason":"..."}. */
static int hello_health_handler(request_rec *r)
{
    hello_dir_conf *conf;
    hello_dbd_store dbd;
    hello_store store;
    hello_date dob;
    const char *err = NULL;
    hello_store_status st;
    hello_metrics *counters = counters_of(r->server);

    if (r->handler == NULL || strcmp(r->handler, HELLO_HEALTH) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD");
    }
    conf = ap_get_module_config(r->per_dir_config, &hello_module);
    request_store(r, conf, &dbd, &store);
    /* No username is empty, so this reads no row, but it runs the statement. */
    st = store.get(store.ctx, r->pool, "", &dob, &err);
    if (counters != NULL) {
        hello_metrics_health(counters, st != HELLO_STORE_UNAVAILABLE);
    }
    if (st == HELLO_STORE_UNAVAILABLE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_hello: health check failed: %s", err);
        apr_table_setn(r->notes, HELLO_NOTE_ERROR, err);
        apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, conf->retry_after));
        return answer_json(r, HTTP_SERVICE_UNAVAILABLE,
                           apr_pstrcat(r->pool, "{\"status\":\"unavailable\",\"reason\":",
                                       hello_json_quote(r->pool, err), "}", NULL));
    }
    return answer_json(r, HTTP_OK, "{\"status\":\"ok\"}");
}

/* GET answers the counters in Prometheus' text format. */
static int hello_metrics_handler(request_rec *r)
{
    const char *text;

    if (r->handler == NULL || strcmp(r->handler, HELLO_METRICS) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD");
    }
    if (hello_counters == NULL) {
        return answer_error(r, HTTP_SERVICE_UNAVAILABLE,
                            "metrics are not available: see the error log at startup");
    }
    text = hello_metrics_prometheus(r->pool, hello_sets, hello_nsets);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only) {
        ap_rputs(text, r);
    }
    return OK;
}

/* mod_status: "Key: value" lines for ?auto, a small table otherwise. */
static int hello_status_hook(request_rec *r, int flags)
{
    const char *kv;

    if (hello_counters == NULL) {
        return OK;
    }
    kv = hello_metrics_keyvalue(r->pool, hello_sets, hello_nsets);
    if (flags & AP_STATUS_SHORT) {
        ap_rputs(kv, r);
    }
    else {
        ap_rputs("<hr />\n<h2>mod_hello</h2>\n<pre>", r);
        ap_rputs(ap_escape_html(r->pool, kv), r);
        ap_rputs("</pre>\n", r);
    }
    return OK;
}

/* ---- errors the core answers before or instead of the handler ---------- */

static const char *core_error_reason(request_rec *r, const hello_dir_conf *conf, int status)
{
    hello_request req;
    const char *reason;
    const char *line;

    memset(&req, 0, sizeof(req));
    req.base = r->uri ? hello_base(r) : NULL;
    req.max_body = conf->max_body_bytes;
    req.allow_delete = conf->allow_delete;
    reason = hello_error_reason(r->pool, &req, status,
                                apr_table_get(r->notes, HELLO_NOTE_READING) != NULL);
    if (reason != NULL) {
        return reason;
    }
    line = ap_get_status_line(status);
    return line && strlen(line) > 4 ? line + 4 : "error";
}

/* Replaces the HTML body of an error the core generates for one of our
 * locations (a bad %-escape, an encoded slash, a timeout) with the
 * contract's JSON error. */
static apr_status_t hello_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    apr_bucket *b;
    int eos = 0;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            eos = 1;
            break;
        }
    }
    /* Everything before the EOS is the core's HTML: drop it. */
    apr_brigade_cleanup(bb);
    if (!eos) {
        return APR_SUCCESS;
    }
    {
        const hello_dir_conf *conf = ap_get_module_config(r->per_dir_config, &hello_module);
        const char *reason = core_error_reason(r, conf, r->status);
        const char *json = hello_json_error(r->pool, reason);
        apr_size_t len = strlen(json);

        ap_remove_output_filter(f);
        apr_table_setn(r->notes, HELLO_NOTE_ERROR, reason);
        ap_set_content_type(r, HELLO_CONTENT_TYPE);
        if (r->status == HTTP_METHOD_NOT_ALLOWED || r->status == HTTP_NOT_IMPLEMENTED) {
            apr_table_setn(r->headers_out, "Allow", hello_allow(conf->allow_delete));
        }
        ap_set_content_length(r, (apr_off_t)len);
        count_request(r, r->status, r->request_time);
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(json, len, f->c->bucket_alloc));
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(f->c->bucket_alloc));
        return ap_pass_brigade(f->next, bb);
    }
}

static void hello_insert_error_filter(request_rec *r)
{
    if (hello_is_ours(r)) {
        ap_add_output_filter(HELLO_ERROR_FILTER, NULL, r, r->connection);
    }
}

static void hello_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_optional_fn_retrieve(hello_retrieve_dbd, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(hello_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(hello_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hello_cache_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hello_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(hello_translate_name, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(hello_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(hello_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hello_health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hello_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, hello_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(hello_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(HELLO_ERROR_FILTER, hello_error_filter, NULL, AP_FTYPE_CONTENT_SET);
}

AP_DECLARE_MODULE(hello) = { STANDARD20_MODULE_STUFF, hello_create_dir_conf, hello_merge_dir_conf,
                             hello_create_srv_conf,   hello_merge_srv_conf,  hello_cmds,
                             hello_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                             AP_MODULE_FLAG_NONE
#endif
};
