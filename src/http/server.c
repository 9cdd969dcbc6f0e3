/* netframe — the HTTP/1.1 server: the server object, timers, routing, reading
 * requests and the connection handler (src/http/server_private.h says how
 * the pieces fit; the responses are in response.c). */
#include "http/server_private.h"

/* ---- Date: formatted at most once per second per thread ---------------- */

static _Thread_local time_t date_sec;
static _Thread_local char date_buf[40];

const char *nf__http_date(void)
{
    time_t now = time(NULL);
    if (now != date_sec || !date_buf[0]) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date_buf, sizeof date_buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_sec = now;
    }
    return date_buf;
}

/* ---- config, server ----------------------------------------------------- */

NF__EXPORT void nf_http_server_config_init(nf_http_server_config_t *cfg) { memset(cfg, 0, sizeof(*cfg)); }

static int pattern_ok(const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    const char *star = strchr(p, '*');
    if (star && (star[1] != 0 || star[-1] != '/'))
        return 0;
    return 1;
}

NF__EXPORT int nf_http_server_new(nf_http_server_t **out, const nf_http_server_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const nf_http_route_t *rt = &cfg->routes[i];
        if (!pattern_ok(rt->pattern) || (!rt->handler && !rt->upgrade))
            return -EINVAL;
    }
    nf_http_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    nf_http_server_config_t *c = &s->cfg;
    if (!c->max_stream_body)
        c->max_stream_body = DEF_STREAM_BODY;
    if (!c->max_pipeline)
        c->max_pipeline = DEF_PIPELINE;
    if (!c->head_timeout_ms)
        c->head_timeout_ms = DEF_HEAD_TIMEOUT;
    if (!c->body_timeout_ms)
        c->body_timeout_ms = DEF_BODY_TIMEOUT;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = DEF_IDLE_TIMEOUT;
    if (!c->write_timeout_ms)
        c->write_timeout_ms = DEF_WRITE_TIMEOUT;
    if (!c->stream_high_water)
        c->stream_high_water = DEF_STREAM_HWM;
    if (!c->limits.max_body)
        c->limits.max_body = (uint64_t)1024 * 1024;
    *out = s;
    return 0;
}

NF__EXPORT void nf_http_server_free(nf_http_server_t *s) { free(s); }

NF__EXPORT void *nf_http_server_get_data(const nf_http_server_t *s) { return s->cfg.data; }

NF__EXPORT void nf_http_server_stats(const nf_http_server_t *s, nf_http_server_stats_t *o)
{
    nf_http_server_t *m = (nf_http_server_t *)s;
    o->conns_open = atomic_load(&m->conns_open);
    o->requests = atomic_load(&m->requests);
    o->responses = atomic_load(&m->responses);
    o->errors_4xx_5xx = atomic_load(&m->errors);
    o->timeouts_head = atomic_load(&m->t_head);
    o->timeouts_body = atomic_load(&m->t_body);
    o->timeouts_idle = atomic_load(&m->t_idle);
    o->timeouts_write = atomic_load(&m->t_write);
    o->upgrades = atomic_load(&m->upgrades);
}

/* ---- buffers ------------------------------------------------------------ */

int nf__http_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*cap - *len < n) {
        size_t nc = *cap ? *cap : 256;
        while (nc - *len < n)
            nc *= 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -ENOMEM;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

/* ---- timers ------------------------------------------------------------- */

static void on_deadline(nf_timer_t *t);

void nf__http_arm(hconn_t *hc, int st)
{
    const nf_http_server_config_t *c = &hc->srv->cfg;
    if (st == hc->tstate && st != T_NONE && nf_timer_active(&hc->timer))
        return;
    hc->tstate = st;
    uint64_t ms = 0;
    switch (st) {
    case T_IDLE: ms = c->idle_timeout_ms; break;
    case T_HEAD: ms = c->head_timeout_ms; break;
    case T_BODY: ms = c->body_timeout_ms; break;
    case T_WRITE:
    case T_LINGER: ms = c->write_timeout_ms; break;
    default: nf_timer_stop(&hc->timer); return;
    }
    nf_timer_start(&hc->timer, on_deadline, ms, 0);
}

/* What to wait for now: a request body, a head, responses, or nothing. */
void nf__http_rearm(hconn_t *hc)
{
    if (hc->lingering)
        return;
    if (hc->cur && !hc->cur->req_done && !hc->paused_body)
        nf__http_arm(hc, T_BODY);
    else if (hc->qhead)
        nf__http_arm(hc, nf_conn_queued(hc->c) ? T_WRITE : T_NONE);
    else if (nf_conn_queued(hc->c))
        nf__http_arm(hc, T_WRITE);
    else if (hc->stopped)
        nf__http_arm(hc, T_NONE);
    else
        nf__http_arm(hc, hc->head_started ? T_HEAD : T_IDLE);
}

static void kick_cb(nf_timer_t *t);

void nf__http_kick(hconn_t *hc)
{
    if (!nf_timer_active(&hc->kick))
        nf_timer_start(&hc->kick, kick_cb, 0, 0);
}

/* ---- routing ------------------------------------------------------------ */

static int seg_match(const nf_http_route_t *rt, const char *path, size_t plen, nf_http_param_t *params, unsigned *np)
{
    const char *p = rt->pattern;
    size_t i = 0;
    unsigned n = 0;
    while (*p) {
        if (*p == '*') {
            if (n < NF_HTTP_MAX_PARAMS)
                params[n++] = (nf_http_param_t){"*", 1, path + i, plen - i};
            *np = n;
            return 1;
        }
        if (*p == ':') {
            const char *name = ++p;
            while (*p && *p != '/')
                p++;
            size_t s = i;
            while (i < plen && path[i] != '/')
                i++;
            if (i == s)
                return 0;
            if (n < NF_HTTP_MAX_PARAMS)
                params[n++] = (nf_http_param_t){name, (size_t)(p - name), path + s, i - s};
            continue;
        }
        if (i >= plen || path[i] != *p)
            return 0;
        i++;
        p++;
    }
    if (i != plen)
        return 0;
    *np = n;
    return 1;
}

static int method_is(const nf_http_req_t *q, const char *m)
{
    size_t l = strlen(m);
    return q->method_len == l && memcmp(q->method, m, l) == 0;
}

/* Picks the route of r; 0 found (or default), else 404 / 405 (allow set). */
static int route(hconn_t *hc, hreq_t *r, char *allow, size_t allow_cap)
{
    const nf_http_server_config_t *c = &hc->srv->cfg;
    size_t al = 0;
    allow[0] = 0;
    for (size_t i = 0; i < c->nroutes; i++) {
        const nf_http_route_t *rt = &c->routes[i];
        nf_http_param_t params[NF_HTTP_MAX_PARAMS];
        unsigned np = 0;
        if (!seg_match(rt, r->pub.path, r->pub.path_len, params, &np))
            continue;
        if (rt->method && !method_is(&r->pub, rt->method) && !(r->is_head && strcmp(rt->method, "GET") == 0)) {
            size_t ml = strlen(rt->method);
            if (al + ml + 3 < allow_cap && !strstr(allow, rt->method)) {
                if (al) {
                    memcpy(allow + al, ", ", 2);
                    al += 2;
                }
                memcpy(allow + al, rt->method, ml);
                al += ml;
                allow[al] = 0;
            }
            continue;
        }
        r->pub.route = rt;
        memcpy(r->pub.params, params, sizeof params);
        r->pub.num_params = np;
        return 0;
    }
    if (al)
        return 405;
    return c->default_handler ? 0 : 404;
}

/* ---- reading ------------------------------------------------------------ */

/* Copies the head out of the reader (its views die at the next call). */
static int keep_head(hreq_t *r, const nf_http_reader_t *rd)
{
    const nf_http_request_t *q = &rd->req;
    const char *lo = q->method, *hi = q->target + q->target_len;
    for (size_t i = 0; i < q->num_headers; i++) {
        const char *e = q->headers[i].value + q->headers[i].value_len;
        if (e > hi)
            hi = e;
    }
    size_t span = (size_t)(hi - lo);
    size_t hoff = (span + 1 + 15) & ~(size_t)15;
    r->head = malloc(hoff + q->num_headers * sizeof(nf_http_header_t) + 1);
    if (!r->head)
        return -ENOMEM;
    memcpy(r->head, lo, span);
    r->head[span] = 0;
    r->hdrs = (nf_http_header_t *)(void *)(r->head + hoff);
#define REBASE(p) (r->head + ((p)-lo))
    for (size_t i = 0; i < q->num_headers; i++) {
        r->hdrs[i].name = REBASE(q->headers[i].name);
        r->hdrs[i].name_len = q->headers[i].name_len;
        r->hdrs[i].value = REBASE(q->headers[i].value);
        r->hdrs[i].value_len = q->headers[i].value_len;
    }
    r->pub.method = REBASE(q->method);
    r->pub.method_len = q->method_len;
    const char *t = REBASE(q->target);
    size_t tl = q->target_len;
#undef REBASE
    const char *qm = memchr(t, '?', tl);
    r->pub.path = t;
    r->pub.path_len = qm ? (size_t)(qm - t) : tl;
    r->pub.query = qm ? qm + 1 : NULL;
    r->pub.query_len = qm ? tl - (size_t)(qm + 1 - t) : 0;
    r->pub.minor_version = q->minor_version;
    r->pub.headers = r->hdrs;
    r->pub.num_headers = q->num_headers;
    return 0;
}

static void call_handler(hconn_t *hc, hreq_t *r)
{
    r->called = 1;
    nf_http_handler_fn fn = r->pub.route ? r->pub.route->handler : hc->srv->cfg.default_handler;
    if (!fn) {
        nf_http_header_t ct = {"Content-Type", 12, "text/plain", 10};
        nf_http_respond(&r->pub, 426, &ct, 1, "426 Upgrade Required\n", 21);
        return;
    }
    fn(&r->pub);
}

/* Returns 1 when the connection was handed over (stop touching hc). */
static int on_head(hconn_t *hc, const char *rest, size_t rest_len)
{
    nf_http_reader_t *rd = &hc->rd;
    s_add(&hc->srv->requests, 1);
    hc->head_started = 0;
    hreq_t *r = nf__http_new_req(hc);
    if (!r || keep_head(r, rd) < 0) {
        nf_conn_close(hc->c);
        return 1;
    }
    hc->cur = r;
    r->keep_alive = rd->keep_alive;
    r->is_head = method_is(&r->pub, "HEAD");
    if (!r->keep_alive)
        hc->stopped = 1; /* read nothing after this request */
    char allow[128];
    int st = route(hc, r, allow, sizeof allow);
    const nf_http_route_t *rt = r->pub.route;
    if (rt && rt->upgrade && rd->upgrade) {
        if (hc->nq > 1 || rd->chunked || rd->content_length) {
            nf__http_answer(hc, 400, NF_EHTTP_BAD);
            return 0;
        }
        nf__http_unlink_req(hc, r);
        r->hc = NULL;
        nf_conn_t *c = hc->c;
        nf_timer_stop(&hc->timer);
        nf_timer_stop(&hc->kick);
        s_add(&hc->srv->upgrades, 1);
        int rc = rt->upgrade->take(rt->upgrade_arg, &r->pub, c, rest, rest_len);
        nf__http_req_free(r);
        if (rc < 0) {
            nf__http_answer(hc, 400, NF_EHTTP_BAD);
            return 0;
        }
        /* the taker owns c now (its handler and data): forget it */
        s_add(&hc->srv->conns_open, -1);
        nf_http_reader_free(&hc->rd);
        free(hc->stash);
        free(hc);
        return 1;
    }
    r->streamed = rt && (rt->flags & NF_HTTP_ROUTE_STREAM_BODY);
    const nf_http_server_config_t *c = &hc->srv->cfg;
    if (r->streamed)
        rd->max_body = rt->max_body ? rt->max_body : c->max_stream_body;
    else
        rd->max_body = (rt && rt->max_body) ? rt->max_body : c->limits.max_body;
    int has_body = rd->chunked || rd->content_length;
    if (!has_body)
        r->req_done = 1; /* END follows at once */
    if (st) {
        /* 404 / 405: answered by the server; the body is read and dropped */
        r->called = 1;
        nf_http_header_t h[2] = {{"Content-Type", 12, "text/plain", 10}, {"Allow", 5, allow, strlen(allow)}};
        const char *b = st == 404 ? "404 Not Found\n" : "405 Method Not Allowed\n";
        nf_http_respond(&r->pub, st, h, st == 405 ? 2 : 1, b, strlen(b));
        return 0;
    }
    if (has_body && rd->expect_continue && hc->qhead == r &&
        (rd->chunked || rd->max_body == NF_HTTP_UNLIMITED || rd->content_length <= rd->max_body))
        nf_conn_write(hc->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (r->streamed)
        call_handler(hc, r);
    return 0;
}

static void on_body(hconn_t *hc, const char *p, size_t n)
{
    hreq_t *r = hc->cur;
    if (!r)
        return;
    if (r->streamed) {
        if (r->ops && r->ops->on_body && r->resp != R_DONE)
            r->ops->on_body(&r->pub, p, n);
        return;
    }
    if (r->resp == R_DONE)
        return; /* answered already (404...): drop */
    if (nf__http_append(&r->body, &r->body_len, &r->body_cap, p, n) < 0)
        nf_conn_close(hc->c);
}

static void on_end(hconn_t *hc)
{
    hreq_t *r = hc->cur;
    hc->cur = NULL;
    if (!r)
        return;
    r->req_done = 1;
    r->pub.trailers = hc->rd.trailers;
    r->pub.num_trailers = hc->rd.num_trailers;
    if (r->streamed) {
        if (r->resp != R_DONE && r->ops && r->ops->on_body_end)
            r->ops->on_body_end(&r->pub); /* r may be gone after this */
        return;
    } else if (!r->called) {
        r->pub.body = r->body;
        r->pub.body_len = r->body_len;
        call_handler(hc, r); /* r may be gone after this */
        return;
    } else if (r->resp == R_DONE) {
        nf__http_advance(hc); /* answered by the server (404...) before the body ended */
        return;
    }
    r->pub.trailers = NULL;
    r->pub.num_trailers = 0;
}

static void pause_reading(hconn_t *hc, const char *p, size_t n)
{
    if (n) {
        char *s = malloc(hc->stash_len + n);
        if (!s) {
            nf_conn_close(hc->c);
            return;
        }
        if (hc->stash_len)
            memcpy(s, hc->stash, hc->stash_len);
        memcpy(s + hc->stash_len, p, n);
        free(hc->stash);
        hc->stash = s;
        hc->stash_len += n;
    }
    if (!hc->reading_stopped) {
        hc->reading_stopped = 1;
        nf_conn_read_stop(hc->c);
    }
}

/* Feeds bytes to the reader; returns 1 when hc is gone (handed over). */
static int feed(hconn_t *hc, const char *p, size_t n)
{
    for (;;) {
        if (nf_conn_is_closing(hc->c))
            return 0;
        if (hc->stopped && !hc->cur)
            return 0; /* after a request that ends the connection: ignore the rest */
        if (!hc->cur && hc->nq >= hc->srv->cfg.max_pipeline)
            hc->paused_pipe = 1;
        if (hc->paused_pipe || hc->paused_body) {
            pause_reading(hc, p, n);
            return 0;
        }
        nf_http_event_t ev;
        size_t used = nf_http_reader_next(&hc->rd, p, n, &ev);
        p += used;
        n -= used;
        switch (ev.type) {
        case NF_HTTP_EV_MORE:
            if (!hc->cur && used)
                hc->head_started = 1;
            return 0;
        case NF_HTTP_EV_HEAD:
            if (on_head(hc, p, n))
                return 1;
            break;
        case NF_HTTP_EV_BODY: on_body(hc, ev.data, ev.len); break;
        case NF_HTTP_EV_END: on_end(hc); break;
        case NF_HTTP_EV_ERROR: nf__http_answer(hc, ev.status, ev.error); return 0;
        }
    }
}

static void kick_cb(nf_timer_t *t)
{
    hconn_t *hc = t->data;
    if (nf_conn_is_closing(hc->c) || hc->lingering)
        return;
    if (hc->paused_pipe && hc->nq < hc->srv->cfg.max_pipeline)
        hc->paused_pipe = 0;
    if (hc->paused_pipe || hc->paused_body)
        return;
    char *s = hc->stash;
    size_t n = hc->stash_len;
    hc->stash = NULL;
    hc->stash_len = 0;
    int gone = feed(hc, s ? s : "", n); /* also with no bytes: an END may be due */
    free(s);
    if (gone)
        return;
    if (!hc->paused_pipe && !hc->paused_body && !hc->stopped && hc->reading_stopped) {
        hc->reading_stopped = 0;
        nf_conn_read_start(hc->c);
    }
    nf__http_rearm(hc);
}

static void on_deadline(nf_timer_t *t)
{
    hconn_t *hc = t->data;
    nf_http_server_t *s = hc->srv;
    switch (hc->tstate) {
    case T_IDLE:
        s_add(&s->t_idle, 1);
        nf_conn_close(hc->c);
        break;
    case T_HEAD:
        s_add(&s->t_head, 1);
        nf__http_answer(hc, 408, -ETIMEDOUT);
        break;
    case T_BODY:
        s_add(&s->t_body, 1);
        nf__http_answer(hc, 408, -ETIMEDOUT);
        break;
    case T_LINGER:
        if (nf_conn_queued(hc->c))
            s_add(&s->t_write, 1);
        nf_conn_close(hc->c);
        break;
    case T_WRITE:
        if (nf_conn_queued(hc->c)) {
            s_add(&s->t_write, 1);
            nf_conn_close(hc->c);
        } else {
            nf__http_rearm(hc);
        }
        break;
    default: break;
    }
    if (!nf_conn_is_closing(hc->c) && !nf_timer_active(&hc->timer) && hc->tstate != T_NONE)
        nf__http_rearm(hc);
}

/* ---- the connection handler -------------------------------------------- */

static void c_open(nf_conn_t *c)
{
    void *d = nf_conn_get_data(c);
    nf_http_server_t *s = d ? d : nf_listener_get_data(nf_conn_listener(c));
    hconn_t *hc = calloc(1, sizeof(*hc));
    if (!hc || nf_http_reader_init(&hc->rd, &s->cfg.limits) < 0) {
        free(hc);
        nf_conn_set_data(c, NULL);
        nf_conn_close(c);
        return;
    }
    hc->srv = s;
    hc->c = c;
    nf_timer_init(nf_conn_loop(c), &hc->timer);
    nf_timer_init(nf_conn_loop(c), &hc->kick);
    hc->timer.data = hc;
    hc->kick.data = hc;
    nf_conn_set_data(c, hc);
    s_add(&s->conns_open, 1);
    nf__http_arm(hc, T_IDLE);
}

static void c_read(nf_conn_t *c, const char *data, size_t len)
{
    hconn_t *hc = nf_conn_get_data(c);
    if (!hc)
        return;
    if (hc->lingering) {
        hc->linger_bytes += len;
        if (hc->linger_bytes > ((size_t)1 << 20))
            nf_conn_close(c);
        return;
    }
    if (hc->stash_len || hc->paused_pipe || hc->paused_body) {
        pause_reading(hc, data, len); /* keep the order behind what is stashed */
        return;
    }
    if (feed(hc, data, len))
        return;
    if (!nf_conn_is_closing(c))
        nf__http_rearm(hc);
}

static void c_drain(nf_conn_t *c)
{
    hconn_t *hc = nf_conn_get_data(c);
    if (!hc)
        return;
    nf__http_advance(hc);
}

static void c_close(nf_conn_t *c, int reason)
{
    hconn_t *hc = nf_conn_get_data(c);
    if (!hc)
        return;
    nf_timer_stop(&hc->timer);
    nf_timer_stop(&hc->kick);
    hreq_t *r = hc->qhead;
    while (r) {
        hreq_t *next = r->next;
        if (r->called && r->resp != R_DONE) {
            r->hc = NULL;
            r->pub.conn = NULL;
            if (r->ops && r->ops->on_abort)
                r->ops->on_abort(&r->pub, reason);
        } else {
            nf__http_req_free(r);
        }
        r = next;
    }
    s_add(&hc->srv->conns_open, -1);
    nf_http_reader_free(&hc->rd);
    free(hc->stash);
    free(hc);
    nf_conn_set_data(c, NULL);
}

static const nf_conn_handler_t http_handler = {
    .on_open = c_open,
    .on_read = c_read,
    .on_drain = c_drain,
    .on_close = c_close,
};

NF__EXPORT void nf_http_server_listen_config(nf_http_server_t *s, nf_listen_config_t *lcfg)
{
    lcfg->handler = &http_handler;
    lcfg->data = s;
}

NF__EXPORT int nf_http_listen(nf_loop_t *loop, nf_http_server_t *s, const nf_listen_config_t *lcfg, nf_listener_t **out)
{
    nf_listen_config_t lc = *lcfg;
    nf_http_server_listen_config(s, &lc);
    return nf_listen(loop, &lc, out);
}
