/* mod_hello: the "hello birthday" JSON API, served from Apache httpd 2.4
 * with dates of birth kept in MySQL/MariaDB through mod_dbd.
 *
 * This file is the Apache glue only: the module record, directives, config
 * create/merge, hooks, and the conversion between request_rec and the core
 * (src/), which decides every answer. */
#include <string.h>

#include <apr_dbd.h>
#include <apr_lib.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_expr.h"
#include "mod_dbd.h"
#include "mod_status.h"

#include "hello/core.h"
#include "hello/json.h"
#include "hello/metrics.h"
#include "hello/park.h"
#include "hello/store_dbd.h"
#include "hello/watchdog.h"
#include "ap_mpm.h"

#define HELLO_HANDLER      "hello"
#define HELLO_HEALTH       "hello-health"
#define HELLO_METRICS      "hello-metrics"
#define HELLO_ERROR_FILTER "HELLO_JSON_ERROR"
#define HELLO_NOTE_ERROR   "hello-error"

#define HELLO_DEFAULT_MAX_BODY    4096
#define HELLO_LIMIT_MAX_BODY      1048576
#define HELLO_DEFAULT_RETRY_AFTER 5
#define HELLO_DEFAULT_DBD_TIMEOUT 10

#define HELLO_DEFAULT_GET_QUERY \
    "SELECT CAST(date_of_birth AS CHAR) FROM hello_users WHERE username = %s"
#define HELLO_DEFAULT_PUT_QUERY                                          \
    "INSERT INTO hello_users (username, date_of_birth) VALUES (%s, %s) " \
    "ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)"
#define HELLO_DEFAULT_DEL_QUERY "DELETE FROM hello_users WHERE username = %s"
#define HELLO_DEFAULT_DEL_LABEL "hello_delete"
#define HELLO_DEFAULT_GET_LABEL "hello_get"
#define HELLO_DEFAULT_PUT_LABEL "hello_put"

module AP_MODULE_DECLARE_DATA hello_module;

typedef struct hello_dir_conf {
    apr_size_t max_body;   /* HelloMaxBodySize; 0 = unset */
    int retry_after;       /* HelloRetryAfter; 0 = unset */
    const char *get_label; /* HelloGetQuery's mod_dbd label; NULL = default */
    const char *put_label; /* HelloPutQuery's mod_dbd label; NULL = default */
    const char *del_label; /* HelloDeleteQuery's mod_dbd label; NULL = default */
    int allow_delete;      /* HelloAllowDelete: 1 on, 0 off, -1 unset (off) */
} hello_dir_conf;

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) * hello_dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) * hello_dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) * hello_dbd_close;

static const char *const hello_no_dbd =
    "mod_hello needs mod_dbd: load it before mod_hello "
    "(LoadModule dbd_module modules/mod_dbd.so; on Debian: a2enmod dbd)";

static void hello_retrieve_dbd(void)
{
    if (hello_dbd_prepare == NULL || hello_dbd_open == NULL || hello_dbd_close == NULL) {
        hello_dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
        hello_dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
        hello_dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    }
}

/* ---- configuration ---------------------------------------------------- */

/* A <Location> (not a regex) that sets a handler: a candidate base path. */
typedef struct hello_location {
    const char *path;
    apr_size_t len;
    ap_expr_info_t *handler;
} hello_location;

typedef struct hello_srv_conf {
    apr_array_header_t *locations; /* of hello_location, filled in post_config */
    int dbd_timeout;               /* HelloDBDTimeout, seconds; -1 = unset */
    int dbd_max;                   /* mod_dbd's DBDMax here, as read; -1 = unset */
    hello_park_key *park_key;      /* this child's key for this server's pool */
} hello_srv_conf;

static void *hello_create_dir_conf(apr_pool_t *p, char *dir) /* NOLINT: httpd's signature */
{
    hello_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)dir;
    conf->allow_delete = -1;
    return conf;
}

static void *hello_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    hello_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->locations = apr_array_make(p, 2, sizeof(hello_location));
    conf->dbd_timeout = -1;
    conf->dbd_max = -1;
    return conf;
}

static void *hello_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    hello_dir_conf *base = basev;
    hello_dir_conf *add = addv;
    hello_dir_conf *conf = apr_palloc(p, sizeof(*conf));

    conf->max_body = add->max_body ? add->max_body : base->max_body;
    conf->retry_after = add->retry_after ? add->retry_after : base->retry_after;
    conf->get_label = add->get_label ? add->get_label : base->get_label;
    conf->put_label = add->put_label ? add->put_label : base->put_label;
    conf->del_label = add->del_label ? add->del_label : base->del_label;
    conf->allow_delete = add->allow_delete != -1 ? add->allow_delete : base->allow_delete;
    return conf;
}

static const char *parse_number(cmd_parms *cmd, const char *arg, apr_int64_t min, apr_int64_t max,
                                apr_int64_t *out)
{
    char *end = NULL;
    apr_int64_t value;

    errno = 0;
    value = apr_strtoi64(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || value < min || value > max) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a whole number from %" APR_INT64_T_FMT
                            " to %" APR_INT64_T_FMT,
                            cmd->directive->directive, arg, min, max);
    }
    *out = value;
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_dir_conf *conf = dconf;
    apr_int64_t value = 0;
    const char *err = parse_number(cmd, arg, 16, HELLO_LIMIT_MAX_BODY, &value);

    if (err == NULL) {
        conf->max_body = (apr_size_t)value;
    }
    return err;
}

static const char *set_retry_after(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_dir_conf *conf = dconf;
    apr_int64_t value = 0;
    const char *err = parse_number(cmd, arg, 1, 86400, &value);

    if (err == NULL) {
        conf->retry_after = (int)value;
    }
    return err;
}

/* HelloGetQuery / HelloPutQuery: prepared now, under a label of our own,
 * as mod_authn_dbd does; the config keeps the label, not the SQL. */
static const char *set_query(cmd_parms *cmd, void *dconf, const char *query)
{
    static unsigned int label_num = 0;
    hello_dir_conf *conf = dconf;
    const char *kind = cmd->info;
    const char *label;

    hello_retrieve_dbd();
    if (hello_dbd_prepare == NULL) {
        return hello_no_dbd;
    }
    if (*query == '\0') {
        return apr_pstrcat(cmd->pool, cmd->directive->directive, ": the SQL statement is empty",
                           NULL);
    }
    label = apr_psprintf(cmd->pool, "hello_%s_%u", kind, label_num++);
    hello_dbd_prepare(cmd->server, query, label);
    if (strcmp(kind, "get") == 0) {
        conf->get_label = label;
    }
    else if (strcmp(kind, "put") == 0) {
        conf->put_label = label;
    }
    else {
        conf->del_label = label;
    }
    return NULL;
}

static const char *set_dbd_timeout(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_srv_conf *conf = ap_get_module_config(cmd->server->module_config, &hello_module);
    apr_int64_t value = 0;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dconf;
    if (err == NULL) {
        err = parse_number(cmd, arg, 0, 3600, &value);
    }
    if (err == NULL) {
        conf->dbd_timeout = (int)value;
    }
    return err;
}

/* DBDMax directives this module has read in the current configuration. */
static int hello_dbd_max_read;

/* mod_dbd's DBDMax, read on its way to mod_dbd: the park (src/park.c) opens
 * connections for a server only up to it, and then waits for one to come
 * back rather than let a thread wait inside mod_dbd. DECLINE_CMD passes the
 * directive on to mod_dbd, which checks and applies it. */
static const char *note_dbd_max(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_srv_conf *conf = ap_get_module_config(cmd->server->module_config, &hello_module);
    const char *p = arg;

    (void)dconf;
    while (apr_isdigit(*p)) {
        p++;
    }
    if (*arg != '\0' && *p == '\0' && p - arg < 9) {
        conf->dbd_max = (int)apr_atoi64(arg);
    }
    hello_dbd_max_read++;
    return DECLINE_CMD;
}

static const char *set_allow_delete(cmd_parms *cmd, void *dconf, int on)
{
    hello_dir_conf *conf = dconf;

    (void)cmd;
    conf->allow_delete = on ? 1 : 0;
    return NULL;
}

static const command_rec hello_cmds[] = {
    AP_INIT_TAKE1("HelloMaxBodySize", set_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "Largest PUT body accepted, in bytes (16 to 1048576; default 4096)"),
    AP_INIT_TAKE1("HelloRetryAfter", set_retry_after, NULL, RSRC_CONF | ACCESS_CONF,
                  "Seconds sent in Retry-After when the database is unavailable "
                  "(1 to 86400; default 5)"),
    AP_INIT_TAKE1("HelloDBDTimeout", set_dbd_timeout, NULL, RSRC_CONF,
                  "Seconds a database call may run before the process gives up on every "
                  "connection of its pool and the request answers 503 (main server only; "
                  "0 to 3600, 0: no watchdog; default 10)"),
    AP_INIT_TAKE1("DBDMax", note_dbd_max, NULL, RSRC_CONF,
                  "mod_dbd's directive, read by mod_hello too (see mod_dbd)"),
    AP_INIT_FLAG("HelloAllowDelete", set_allow_delete, NULL, RSRC_CONF | ACCESS_CONF,
                 "On: DELETE /<location>/<username> erases that user's row (GDPR "
                 "erasure); Off (default): DELETE answers 405"),
    AP_INIT_TAKE1("HelloDeleteQuery", set_query, "delete", RSRC_CONF | ACCESS_CONF,
                  "SQL that deletes one username's row (%s), used when HelloAllowDelete is On; "
                  "default: " HELLO_DEFAULT_DEL_QUERY),
    AP_INIT_TAKE1("HelloGetQuery", set_query, "get", RSRC_CONF | ACCESS_CONF,
                  "SQL that selects the date of birth for one username (%s); "
                  "default: " HELLO_DEFAULT_GET_QUERY),
    AP_INIT_TAKE1("HelloPutQuery", set_query, "put", RSRC_CONF | ACCESS_CONF,
                  "SQL that inserts or replaces the date of birth (%s username, %s date); "
                  "default: " HELLO_DEFAULT_PUT_QUERY),
    { NULL }
};

/* ---- hooks run at startup ---------------------------------------------- */

static int hello_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    hello_retrieve_dbd();
    if (hello_dbd_prepare == NULL || hello_dbd_open == NULL || hello_dbd_close == NULL) {
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
            loc->len = strlen(d->d);
            while (loc->len > 0 && loc->path[loc->len - 1] == '/') {
                loc->len--;
            }
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

/* Set in the parent before the children fork; NULL if it could not be made. */
static hello_metrics *hello_counters;

static void setup_metrics(server_rec *s)
{
    hello_retained *ret = ap_retained_data_get(HELLO_RETAINED_KEY);
    apr_status_t rv;

    if (ret == NULL) {
        ret = ap_retained_data_create(HELLO_RETAINED_KEY, sizeof(*ret));
        ret->shm = NULL;
    }
    if (ret->shm != NULL) {
        hello_metrics *m = apr_shm_baseaddr_get(ret->shm);
        if (apr_shm_size_get(ret->shm) >= sizeof(*m) && hello_metrics_layout_ok(m)) {
            hello_counters = m;
            return;
        }
        /* Older children may still write to it: leave it to the process pool. */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "mod_hello: this build counts with another metrics layout; "
                     "starting new counters");
        ret->shm = NULL;
    }
    rv = apr_shm_create(&ret->shm, sizeof(hello_metrics), NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "mod_hello: cannot create the shared memory for metrics; "
                     "serving without them");
        ret->shm = NULL;
        hello_counters = NULL;
        return;
    }
    hello_counters = apr_shm_baseaddr_get(ret->shm);
    hello_metrics_init(hello_counters, (apr_uint64_t)apr_time_sec(apr_time_now()));
}

/* mod_dbd's default DBDMax (modules/database/mod_dbd.c, DEFAULT_NMAX). */
#define HELLO_MOD_DBD_DEFAULT_MAX 10

/* Whether every DBDMax of the configuration passed through note_dbd_max,
 * so that each server's pool size is known. */
static int hello_knows_dbd_max;

static int hello_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    hello_dbd_max_read = 0;
    return OK;
}

/* Occurrences of a directive in the configuration tree, in every section
 * (walked without recursion: next at each level, up to the parent when a
 * level ends). */
static int count_directives(const ap_directive_t *d, const char *name)
{
    int n = 0;

    while (d != NULL) {
        if (strcasecmp(d->directive, name) == 0) {
            n++;
        }
        if (d->first_child != NULL) {
            d = d->first_child;
            continue;
        }
        while (d != NULL && d->next == NULL) {
            d = d->parent;
        }
        if (d != NULL) {
            d = d->next;
        }
    }
    return n;
}

/* A directive goes to the first loaded module that declares it, and reaches
 * a module only once it is loaded: mod_hello reads every DBDMax if it was
 * loaded after mod_dbd and before the first of them. Counted, not assumed. */
static void check_dbd_max(server_rec *s)
{
    int first = 0;

    for (module *m = ap_top_module; m != NULL && first == 0; m = m->next) {
        if (m == &hello_module) {
            first = 1;
        }
        else if (strcmp(m->name, "mod_dbd.c") == 0) {
            first = -1;
        }
    }
    hello_knows_dbd_max =
        first == 1 && count_directives(ap_conftree, "DBDMax") == hello_dbd_max_read;
    if (!hello_knows_dbd_max) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "mod_hello: cannot read DBDMax (load mod_hello after mod_dbd and before "
                     "any DBDMax line); database connections are still reused, but a request "
                     "that finds none free has mod_dbd check the one it gets (a ping)");
    }
}

/* Sets up the counters and each server's list of locations. The default
 * statements are not registered with mod_dbd: it would prepare them on
 * every connection of every server, including virtual hosts whose pool
 * points at another database (whose connections would then fail). The
 * store prepares them on a connection when a request first needs them. */
static int hello_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    setup_metrics(s);
    check_dbd_max(s);
    for (server_rec *sp = s; sp; sp = sp->next) {
        collect_locations(sp);
    }
    return OK;
}

/* This child's parked database connections; NULL if it could not be made. */
static hello_park *hello_conn_park;

/* Seconds a connection may stay parked unused before it goes back to mod_dbd. */
#define HELLO_PARK_IDLE_LIMIT apr_time_from_sec(60)

/* This child's watchdog for database calls that never return; NULL with
 * HelloDBDTimeout 0 or when it could not start. */
static hello_watchdog *hello_wd;

static void log_watchdog(void *baton, int sockets, apr_interval_time_t overdue)
{
    /* The shut connections include idle ones in mod_dbd's pool: the next
     * opens must get past them. */
    if (hello_conn_park != NULL) {
        hello_park_suspect(hello_conn_park, sockets);
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, (server_rec *)baton,
                 "mod_hello: a database call ran %" APR_TIME_T_FMT " ms past HelloDBDTimeout; "
                 "shut down this process's %d database connection(s) so that blocked "
                 "requests answer 503 and fresh connections are opened",
                 apr_time_as_msec(overdue), sockets);
}

static void *park_open(void *baton, void *id, apr_pool_t *pool)
{
    (void)baton;
    return hello_dbd_open(pool, (server_rec *)id);
}

static void park_close(void *baton, void *id, void *conn)
{
    (void)baton;
    hello_dbd_close((server_rec *)id, (ap_dbd_t *)conn);
}

static void hello_child_init(apr_pool_t *pchild, server_rec *s)
{
    hello_srv_conf *conf = ap_get_module_config(s->module_config, &hello_module);
    int timeout = conf->dbd_timeout >= 0 ? conf->dbd_timeout : HELLO_DEFAULT_DBD_TIMEOUT;
    int threads = 0;
    apr_status_t rv;

    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) {
        threads = 1;
    }
    /* At most one connection per thread is out at a time, so the park never
     * needs more room than that. */
    rv = hello_park_create(&hello_conn_park, pchild, threads, HELLO_PARK_IDLE_LIMIT, park_open,
                           park_close, NULL);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "mod_hello: cannot create the connection park; every request will "
                     "take its connection from mod_dbd, which checks it first");
        hello_conn_park = NULL;
    }
    else {
        int main_max = conf->dbd_max >= 0 ? conf->dbd_max : HELLO_MOD_DBD_DEFAULT_MAX;
        for (server_rec *sp = s; sp; sp = sp->next) {
            hello_srv_conf *sc = ap_get_module_config(sp->module_config, &hello_module);
            int max = sc->dbd_max >= 0 ? sc->dbd_max : main_max; /* mod_dbd's merge */
            sc->park_key = hello_park_key_add(hello_conn_park, sp, hello_knows_dbd_max ? max : 0);
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, sp,
                         "mod_hello: connection park for %s:%u: DBDMax %s", sp->server_hostname,
                         (unsigned)sp->port,
                         hello_knows_dbd_max ? apr_itoa(pchild, max) : "not known");
        }
    }
    if (timeout == 0) {
        return;
    }
    rv = hello_watchdog_create(&hello_wd, pchild, threads, apr_time_from_sec(timeout), log_watchdog,
                               s);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "mod_hello: cannot start the database watchdog; a database that stops "
                     "answering will hold requests until it answers again");
        hello_wd = NULL;
    }
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

/* The store's connections: from this child's park (include/hello/park.h),
 * keyed by the request's server, whose mod_dbd pool they come from. */
static hello_park_key *park_key_of(const request_rec *r)
{
    const hello_srv_conf *conf = ap_get_module_config(r->server->module_config, &hello_module);

    return hello_conn_park ? conf->park_key : NULL;
}

/* How many times a request asks mod_dbd for a connection: a NULL may be a
 * dead pooled connection mod_dbd has just dropped, not a database that is
 * down (the park adds tries after it learns of dead connections). */
#define HELLO_OPEN_TRIES 2

static ap_dbd_t *acquire_for_request(void *arg, int *reused)
{
    request_rec *r = arg;
    hello_park_key *key = park_key_of(r);

    if (key == NULL) {
        *reused = 0;
        return hello_dbd_open(r->pool, r->server);
    }
    return hello_park_take(hello_conn_park, key, r->pool, HELLO_OPEN_TRIES, reused);
}

static void release_for_request(void *arg, ap_dbd_t *dbd, int keep)
{
    request_rec *r = arg;
    hello_park_key *key = park_key_of(r);

    if (key == NULL) {
        hello_dbd_close(r->server, dbd);
        return;
    }
    /* With DBDPersist Off mod_dbd opens a once-only connection in a subpool
     * of the pool it was given (the request's): never park one of those. */
    hello_park_give(hello_conn_park, key, dbd, keep && apr_pool_parent_get(dbd->pool) != r->pool);
}

static int flush_for_request(void *arg)
{
    hello_park_key *key = park_key_of(arg);

    return key ? hello_park_flush(hello_conn_park, key) : 0;
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

/* Wraps the store to trace each call at debug level, count failures, and
 * put each call under the watchdog. */
typedef struct traced_store {
    const hello_store *inner;
    hello_dbd_store *dbd;
    request_rec *r;
    int slot; /* the watchdog's slot while a call runs */
} traced_store;

static void watch_begin(traced_store *t)
{
    t->slot = hello_watchdog_begin(hello_wd);
}

/* Ends the watch, and lets the watchdog know the connection's socket. */
static void watch_end(traced_store *t)
{
    hello_watchdog_end(hello_wd, t->slot);
    if (hello_wd != NULL && t->dbd->dbd != NULL) {
        hello_watchdog_add_socket(hello_wd, hello_dbd_socket(t->dbd->dbd), t->dbd->dbd->pool);
    }
}

static const char *const store_status_names[] = { "ok", "not found", "unavailable" };

static hello_store_status traced(traced_store *t, const char *op, const char *username,
                                 apr_time_t start, hello_store_status st, const char *err)
{
    if (st == HELLO_STORE_UNAVAILABLE && hello_counters) {
        hello_metrics_db_error(hello_counters);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, t->r,
                  "mod_hello: store %s %s: %s%s%s (%" APR_TIME_T_FMT " us, %s connection%s)", op,
                  username, store_status_names[st], err ? ": " : "", err ? err : "",
                  apr_time_now() - start, t->dbd->reused ? "parked" : "checked",
                  t->dbd->replaced ? ", after replacing a dead parked one" : "");
    return st;
}

static hello_store_status traced_get(void *ctx, apr_pool_t *pool, const char *username,
                                     hello_date *dob, const char **err)
{
    traced_store *t = ctx;
    apr_time_t start = apr_time_now();
    hello_store_status st;

    *err = NULL;
    watch_begin(t);
    st = t->inner->get(t->inner->ctx, pool, username, dob, err);
    watch_end(t);
    return traced(t, "get", username, start, st, *err);
}

static hello_store_status traced_put(void *ctx, apr_pool_t *pool, const char *username,
                                     hello_date dob, const char **err)
{
    traced_store *t = ctx;
    apr_time_t start = apr_time_now();
    hello_store_status st;

    *err = NULL;
    watch_begin(t);
    st = t->inner->put(t->inner->ctx, pool, username, dob, err);
    watch_end(t);
    return traced(t, "put", username, start, st, *err);
}

static hello_store_status traced_del(void *ctx, apr_pool_t *pool, const char *username,
                                     const char **err)
{
    traced_store *t = ctx;
    apr_time_t start = apr_time_now();
    hello_store_status st;

    *err = NULL;
    watch_begin(t);
    st = t->inner->del(t->inner->ctx, pool, username, err);
    watch_end(t);
    return traced(t, "delete", username, start, st, *err);
}

static hello_metric_method metric_method(const request_rec *r)
{
    switch (r->method_number) {
    case M_GET:
        return r->header_only ? HELLO_MM_HEAD : HELLO_MM_GET;
    case M_PUT:
        return HELLO_MM_PUT;
    case M_DELETE:
        return HELLO_MM_DELETE;
    default:
        return HELLO_MM_OTHER;
    }
}

static void count_request(request_rec *r, int status, apr_time_t start)
{
    if (hello_counters) {
        apr_time_t now = apr_time_now();
        hello_metrics_request(hello_counters, metric_method(r), status,
                              now > start ? (apr_uint64_t)(now - start) : 0);
    }
}

/* The dbd store of this request, behind the tracing wrapper. */
static void request_store(request_rec *r, const hello_dir_conf *conf, hello_dbd_store *dbd,
                          hello_store *inner, traced_store *trace, hello_store *store)
{
    dbd->acquire = acquire_for_request;
    dbd->release = release_for_request;
    dbd->flush = flush_for_request;
    dbd->arg = r;
    /* A directive's statement was prepared by mod_dbd under its label; a
     * default is prepared on the connection when first needed. */
    dbd->get.label = conf->get_label ? conf->get_label : HELLO_DEFAULT_GET_LABEL;
    dbd->get.sql = conf->get_label ? NULL : HELLO_DEFAULT_GET_QUERY;
    dbd->put.label = conf->put_label ? conf->put_label : HELLO_DEFAULT_PUT_LABEL;
    dbd->put.sql = conf->put_label ? NULL : HELLO_DEFAULT_PUT_QUERY;
    dbd->del.label = NULL;
    dbd->del.sql = NULL;
    if (conf->allow_delete == 1) {
        dbd->del.label = conf->del_label ? conf->del_label : HELLO_DEFAULT_DEL_LABEL;
        dbd->del.sql = conf->del_label ? NULL : HELLO_DEFAULT_DEL_QUERY;
    }
    hello_dbd_store_init(inner, dbd);
    trace->inner = inner;
    trace->dbd = dbd;
    trace->r = r;
    trace->slot = -1;
    store->ctx = trace;
    store->get = traced_get;
    store->put = traced_put;
    store->del = inner->del ? traced_del : NULL;
}

static int hello_handler(request_rec *r)
{
    hello_dir_conf *conf;
    hello_request req;
    hello_response resp;
    hello_dbd_store dbd;
    hello_store inner;
    traced_store trace;
    hello_store store;
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
    req.max_body = conf->max_body ? conf->max_body : HELLO_DEFAULT_MAX_BODY;
    req.retry_after = conf->retry_after ? conf->retry_after : HELLO_DEFAULT_RETRY_AFTER;
    req.allow_delete = conf->allow_delete == 1;
    req.read_body = read_body;
    req.read_ctx = &reader;

    request_store(r, conf, &dbd, &inner, &trace, &store);

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_hello: %s %s (location %s)", r->method,
                  r->uri, req.base ? req.base : "/");
    hello_handle(&req, &store, r->pool, &resp);
    hello_dbd_store_done(&dbd);

    if (resp.status >= 500) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_hello: %s %s answered %d: %s", r->method,
                      r->uri, resp.status, resp.log_detail ? resp.log_detail : resp.reason);
    }
    else if (resp.reason) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_hello: %s %s answered %d: %s", r->method,
                      r->uri, resp.status, resp.reason);
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
    hello_store inner;
    traced_store trace;
    hello_store store;
    hello_date dob;
    const char *err = NULL;
    hello_store_status st;

    if (r->handler == NULL || strcmp(r->handler, HELLO_HEALTH) != 0) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return answer_error(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD");
    }
    conf = ap_get_module_config(r->per_dir_config, &hello_module);
    request_store(r, conf, &dbd, &inner, &trace, &store);
    /* No username is empty, so this reads no row, but it runs the statement. */
    st = store.get(store.ctx, r->pool, "", &dob, &err);
    hello_dbd_store_done(&dbd);
    if (hello_counters) {
        hello_metrics_health(hello_counters, st != HELLO_STORE_UNAVAILABLE);
    }
    if (st == HELLO_STORE_UNAVAILABLE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_hello: health check failed: %s",
                      err ? err : "unknown");
        apr_table_setn(r->notes, HELLO_NOTE_ERROR, err ? err : "unknown");
        apr_table_setn(
            r->headers_out, "Retry-After",
            apr_itoa(r->pool, conf->retry_after ? conf->retry_after : HELLO_DEFAULT_RETRY_AFTER));
        return answer_json(r, HTTP_SERVICE_UNAVAILABLE,
                           apr_pstrcat(r->pool, "{\"status\":\"unavailable\",\"reason\":",
                                       hello_json_quote(r->pool, err ? err : "unknown"), "}",
                                       NULL));
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
    text = hello_metrics_prometheus(r->pool, hello_counters);
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
    kv = hello_metrics_keyvalue(r->pool, hello_counters);
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

static const char *core_error_reason(request_rec *r, int status)
{
    if (apr_table_get(r->notes, HELLO_NOTE_READING) &&
        (status == HTTP_BAD_REQUEST || status == HTTP_REQUEST_TIME_OUT ||
         status == HTTP_REQUEST_ENTITY_TOO_LARGE)) {
        hello_dir_conf *conf = ap_get_module_config(r->per_dir_config, &hello_module);
        return hello_body_error_reason(r->pool, status,
                                       conf->max_body ? conf->max_body : HELLO_DEFAULT_MAX_BODY);
    }
    switch (status) {
    case HTTP_BAD_REQUEST:
        return "the request is malformed: check the URL encoding and the headers";
    case HTTP_NOT_FOUND:
        return r->uri ? apr_pstrcat(r->pool, "not found: use ", hello_base(r), "/<username>", NULL)
                      : "not found: use the location followed by one username";
    case HTTP_METHOD_NOT_ALLOWED:
        return "method not allowed: use GET, HEAD or PUT";
    case HTTP_REQUEST_TIME_OUT:
        return "the request was not received in time";
    case HTTP_LENGTH_REQUIRED:
        return "a Content-Length or chunked body is required";
    case HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "request body too large";
    case HTTP_REQUEST_URI_TOO_LARGE:
        return "the URL is too long";
    case HTTP_NOT_IMPLEMENTED:
        return "method unknown to the server: use GET, HEAD or PUT";
    default: {
        const char *line = ap_get_status_line(status);
        return line && strlen(line) > 4 ? line + 4 : "error";
    }
    }
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
        const char *reason = core_error_reason(r, r->status);
        const char *json = hello_json_error(r->pool, reason);
        apr_size_t len = strlen(json);

        ap_remove_output_filter(f);
        apr_table_setn(r->notes, HELLO_NOTE_ERROR, reason);
        ap_set_content_type(r, HELLO_CONTENT_TYPE);
        if (r->status == HTTP_METHOD_NOT_ALLOWED || r->status == HTTP_NOT_IMPLEMENTED) {
            apr_table_setn(r->headers_out, "Allow", HELLO_ALLOW);
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
    ap_hook_post_config(hello_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hello_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(hello_translate_name, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(hello_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(hello_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hello_health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hello_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, hello_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(hello_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(HELLO_ERROR_FILTER, hello_error_filter, NULL, AP_FTYPE_CONTENT_SET);
}

AP_DECLARE_MODULE(hello) = { STANDARD20_MODULE_STUFF,
                             hello_create_dir_conf,
                             hello_merge_dir_conf,
                             hello_create_srv_conf,
                             NULL,
                             hello_cmds,
                             hello_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                             AP_MODULE_FLAG_NONE
#endif
};
