/* mod_hello's directives: their parsing, their defaults and the merges of
 * both scopes. Every default is set here, in the create functions, and
 * every use site reads the merged value. */
#include <errno.h>
#include <string.h>

#include <apr_strings.h>

#include "mod_hello.h"

#define HELLO_DEFAULT_MAX_BODY      4096
#define HELLO_LIMIT_MAX_BODY        1048576
#define HELLO_DEFAULT_RETRY_AFTER   5
#define HELLO_DEFAULT_DBD_TIMEOUT   10
#define HELLO_DEFAULT_CACHE_MAX_AGE 60
#define HELLO_DEFAULT_CACHE_STALE   300

#define HELLO_DEFAULT_GET_QUERY \
    "SELECT CAST(date_of_birth AS CHAR) FROM hello_users WHERE username = %s"
#define HELLO_DEFAULT_PUT_QUERY                                          \
    "INSERT INTO hello_users (username, date_of_birth) VALUES (%s, %s) " \
    "ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)"
#define HELLO_DEFAULT_DEL_QUERY "DELETE FROM hello_users WHERE username = %s"

/* The bits of hello_dir_conf.set. */
#define SET_MAX_BODY     0x01u
#define SET_RETRY_AFTER  0x02u
#define SET_ALLOW_DELETE 0x04u
#define SET_GET          0x08u
#define SET_PUT          0x10u
#define SET_DEL          0x20u

/* The bits of hello_srv_conf.set. */
#define SET_CACHE         0x01u
#define SET_CACHE_MAX_AGE 0x02u
#define SET_CACHE_STALE   0x04u
#define SET_CACHE_NS      0x08u

APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) * hello_dbd_prepare;
APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) * hello_dbd_acquire;
APR_OPTIONAL_FN_TYPE(ap_dbd_open) * hello_dbd_open;
APR_OPTIONAL_FN_TYPE(ap_dbd_close) * hello_dbd_close;

const char hello_no_dbd[] = "mod_hello needs mod_dbd: load it "
                            "(LoadModule dbd_module modules/mod_dbd.so; on Debian: a2enmod dbd)";

void hello_retrieve_dbd(void)
{
    hello_dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    hello_dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    hello_dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    hello_dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
}

void *hello_create_dir_conf(apr_pool_t *p, char *dir) /* NOLINT: httpd's signature */
{
    hello_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)dir;
    conf->max_body_bytes = HELLO_DEFAULT_MAX_BODY;
    conf->retry_after = HELLO_DEFAULT_RETRY_AFTER;
    /* The defaults are prepared on a connection when a request first needs
     * them, not registered with mod_dbd: it would prepare them on every
     * connection of every server, including virtual hosts whose pool points
     * at another database. */
    conf->get.label = "hello_get";
    conf->get.sql = HELLO_DEFAULT_GET_QUERY;
    conf->put.label = "hello_put";
    conf->put.sql = HELLO_DEFAULT_PUT_QUERY;
    conf->del.label = "hello_delete";
    conf->del.sql = HELLO_DEFAULT_DEL_QUERY;
    return conf;
}

void *hello_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const hello_dir_conf *base = basev;
    const hello_dir_conf *add = addv;
    hello_dir_conf *conf = apr_palloc(p, sizeof(*conf));

    conf->max_body_bytes = add->set & SET_MAX_BODY ? add->max_body_bytes : base->max_body_bytes;
    conf->retry_after = add->set & SET_RETRY_AFTER ? add->retry_after : base->retry_after;
    conf->allow_delete = add->set & SET_ALLOW_DELETE ? add->allow_delete : base->allow_delete;
    conf->get = add->set & SET_GET ? add->get : base->get;
    conf->put = add->set & SET_PUT ? add->put : base->put;
    conf->del = add->set & SET_DEL ? add->del : base->del;
    conf->set = base->set | add->set;
    return conf;
}

void *hello_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    hello_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->locations = apr_array_make(p, 2, sizeof(hello_location));
    conf->dbd_timeout = apr_time_from_sec(HELLO_DEFAULT_DBD_TIMEOUT);
    conf->dbd_state = apr_pcalloc(p, sizeof(*conf->dbd_state));
    conf->cache_max_age = apr_time_from_sec(HELLO_DEFAULT_CACHE_MAX_AGE);
    conf->cache_stale_if_error = apr_time_from_sec(HELLO_DEFAULT_CACHE_STALE);
    return conf;
}

/* A virtual host has its own locations and database state, the main
 * server's HelloDBDTimeout (the directive is main-server only), and the
 * main server's cache settings unless it sets its own. */
void *hello_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const hello_srv_conf *base = basev;
    const hello_srv_conf *add = addv;
    hello_srv_conf *conf = apr_palloc(p, sizeof(*conf));

    conf->locations = add->locations;
    conf->dbd_timeout = add->dbd_timeout_set ? add->dbd_timeout : base->dbd_timeout;
    conf->dbd_timeout_set = add->dbd_timeout_set || base->dbd_timeout_set;
    conf->dbd_state = add->dbd_state;
    conf->cache_spec = add->set & SET_CACHE ? add->cache_spec : base->cache_spec;
    conf->cache_max_age = add->set & SET_CACHE_MAX_AGE ? add->cache_max_age : base->cache_max_age;
    conf->cache_stale_if_error =
        add->set & SET_CACHE_STALE ? add->cache_stale_if_error : base->cache_stale_if_error;
    conf->cache_ns = add->set & SET_CACHE_NS ? add->cache_ns : base->cache_ns;
    conf->set = base->set | add->set;
    conf->cache = NULL;
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
        conf->max_body_bytes = (apr_size_t)value;
        conf->set |= SET_MAX_BODY;
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
        conf->set |= SET_RETRY_AFTER;
    }
    return err;
}

static const char *set_allow_delete(cmd_parms *cmd, void *dconf, int on)
{
    hello_dir_conf *conf = dconf;

    (void)cmd;
    conf->allow_delete = on;
    conf->set |= SET_ALLOW_DELETE;
    return NULL;
}

/* HelloGetQuery / HelloPutQuery / HelloDeleteQuery: prepared now, under a
 * label of our own, as mod_authn_dbd does; the config keeps the label, not
 * the SQL. */
static const char *set_query(cmd_parms *cmd, void *dconf, const char *query)
{
    static unsigned int label_num = 0;
    hello_dir_conf *conf = dconf;
    const char *kind = cmd->info;
    hello_dbd_statement *which;

    hello_retrieve_dbd();
    if (hello_dbd_prepare == NULL) {
        return hello_no_dbd;
    }
    if (*query == '\0') {
        return apr_pstrcat(cmd->pool, cmd->directive->directive, ": the SQL statement is empty",
                           NULL);
    }
    if (strcmp(kind, "get") == 0) {
        which = &conf->get;
        conf->set |= SET_GET;
    }
    else if (strcmp(kind, "put") == 0) {
        which = &conf->put;
        conf->set |= SET_PUT;
    }
    else {
        which = &conf->del;
        conf->set |= SET_DEL;
    }
    which->label = apr_psprintf(cmd->pool, "hello_%s_%u", kind, label_num++);
    which->sql = NULL;
    hello_dbd_prepare(cmd->server, query, which->label);
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
        conf->dbd_timeout = apr_time_from_sec(value);
        conf->dbd_timeout_set = 1;
    }
    return err;
}

static const char *set_cache(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_srv_conf *conf = ap_get_module_config(cmd->server->module_config, &hello_module);
    const char *err = hello_cache_parse(cmd, arg, &conf->cache_spec);

    (void)dconf;
    conf->set |= SET_CACHE;
    return err;
}

static const char *set_cache_seconds(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_srv_conf *conf = ap_get_module_config(cmd->server->module_config, &hello_module);
    int stale = strcmp(cmd->info, "stale") == 0;
    apr_int64_t value = 0;
    const char *err = parse_number(cmd, arg, stale ? 0 : 1, 86400, &value);

    (void)dconf;
    if (err == NULL && stale) {
        conf->cache_stale_if_error = apr_time_from_sec(value);
        conf->set |= SET_CACHE_STALE;
    }
    else if (err == NULL) {
        conf->cache_max_age = apr_time_from_sec(value);
        conf->set |= SET_CACHE_MAX_AGE;
    }
    return err;
}

static const char *set_cache_ns(cmd_parms *cmd, void *dconf, const char *arg)
{
    hello_srv_conf *conf = ap_get_module_config(cmd->server->module_config, &hello_module);
    apr_size_t len = strlen(arg);

    (void)dconf;
    if (len == 0 || len > 128 ||
        arg[strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                        "vwxyz0123456789.-_")] != '\0') {
        return "HelloCacheNamespace: 1 to 128 letters, digits, '.', '-' or '_'";
    }
    conf->cache_ns = arg;
    conf->set |= SET_CACHE_NS;
    return NULL;
}

const command_rec hello_cmds[] = {
    AP_INIT_TAKE1("HelloCache", set_cache, NULL, RSRC_CONF,
                  "The read cache: none (default), or a socache provider and its arguments, "
                  "e.g. shmcb:/run/apache2/hello_cache(1048576) or "
                  "memcache:cache1:11211,cache2:11211"),
    AP_INIT_TAKE1("HelloCacheMaxAge", set_cache_seconds, "max-age", RSRC_CONF,
                  "Seconds a cached date of birth is answered without asking the database "
                  "(1 to 86400; default 60)"),
    AP_INIT_TAKE1("HelloCacheStaleIfError", set_cache_seconds, "stale", RSRC_CONF,
                  "Seconds a cached date of birth may still be answered while the database "
                  "fails (0 to 86400, 0: never; default 300)"),
    AP_INIT_TAKE1("HelloCacheNamespace", set_cache_ns, NULL, RSRC_CONF,
                  "Names the database behind the cache: servers that share a database and a "
                  "cache give the same name (default: the ServerName)"),
    AP_INIT_TAKE1("HelloMaxBodySize", set_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "Largest PUT body accepted, in bytes (16 to 1048576; default 4096)"),
    AP_INIT_TAKE1("HelloRetryAfter", set_retry_after, NULL, RSRC_CONF | ACCESS_CONF,
                  "Seconds sent in Retry-After when the database is unavailable "
                  "(1 to 86400; default 5)"),
    AP_INIT_TAKE1("HelloDBDTimeout", set_dbd_timeout, NULL, RSRC_CONF,
                  "Seconds a database call may run before the process shuts down every "
                  "connection of its pool and the request answers 503 (main server only; "
                  "0 to 3600, 0: no watchdog; default 10)"),
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
