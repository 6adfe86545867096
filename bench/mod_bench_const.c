/* mod_bench_const: the constant-answer handler of `make bench`.
 *
 * Answers every request under `SetHandler bench-const` with the bytes of
 * the file named by `BenchConstFile`, read once when the configuration is
 * loaded, with mod_hello's content type. It does what any handler must do on
 * this Apache and nothing else: no path parsing, no cache or database call,
 * no date math, no JSON. The gap between it and mod_hello's cached GET is
 * what the module's own work costs; the gap between it and the static file
 * is what a handler costs against the core's file delivery
 * (docs/performance.md, "Where a cached GET's time goes").
 *
 * Not part of the module, not installed: bench/bench.py builds it with apxs.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_file_io.h"
#include "apr_strings.h"

module AP_MODULE_DECLARE_DATA bench_const_module;

typedef struct {
    const char *file;
    char *body;
    apr_size_t len;
} const_conf;

static void *create_conf(apr_pool_t *p, server_rec *s)
{
    (void)s;
    return apr_pcalloc(p, sizeof(const_conf));
}

static const char *set_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    const_conf *c = ap_get_module_config(cmd->server->module_config, &bench_const_module);

    (void)dummy;
    c->file = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

/* The body is read here, once per (re)start; a missing file leaves it
 * empty and the handler answers 503, so that a misconfigured run shows as
 * errors in the benchmark rather than as fast empty answers. */
static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    const_conf *c = ap_get_module_config(s->module_config, &bench_const_module);
    apr_finfo_t fi;
    apr_file_t *f;

    (void)plog;
    (void)ptemp;
    if (c->file == NULL || apr_stat(&fi, c->file, APR_FINFO_SIZE, pconf) != APR_SUCCESS ||
        apr_file_open(&f, c->file, APR_FOPEN_READ, APR_OS_DEFAULT, pconf) != APR_SUCCESS) {
        return OK;
    }
    c->len = (apr_size_t)fi.size;
    c->body = apr_palloc(pconf, c->len + 1);
    if (apr_file_read_full(f, c->body, c->len, NULL) != APR_SUCCESS) {
        c->len = 0;
    }
    apr_file_close(f);
    return OK;
}

static int handler(request_rec *r)
{
    const_conf *c;

    if (r->handler == NULL || strcmp(r->handler, "bench-const") != 0) {
        return DECLINED;
    }
    c = ap_get_module_config(r->server->module_config, &bench_const_module);
    if (c->len == 0) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)c->len);
    if (!r->header_only) {
        ap_rwrite(c->body, (int)c->len, r);
    }
    return OK;
}

static const command_rec cmds[] = { AP_INIT_TAKE1(
                                        "BenchConstFile", set_file, NULL, RSRC_CONF,
                                        "the file whose bytes every bench-const answer carries"),
                                    { NULL } };

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(bench_const) = { STANDARD20_MODULE_STUFF, NULL, NULL, create_conf, NULL, cmds,
                                   register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                                   AP_MODULE_FLAG_NONE
#endif
};
