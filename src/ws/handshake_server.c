/* netframe — WebSocket server: the listener, the opening handshake (RFC 6455
 * 4.2; HyBi-07/08 behind an option), small HTTP answers. */
#include "ws/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 64

/* ---- answers ------------------------------------------------------------- */

/* Writes an HTTP answer that ends the connection (Content-Length and
 * Connection: close added), then closes lingering. */
static int respond(nf_ws_conn_t *ws, int status, const nf_http_header_t *uh, size_t un, const nf_http_header_t *xh,
                   size_t xn, const void *body, size_t blen, int send_body)
{
    size_t n = un + xn + 2;
    nf_http_header_t *hs = malloc(n * sizeof *hs);
    if (!hs)
        return -ENOMEM;
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", blen);
    size_t i = 0, cap = 128 + blen;
    for (size_t k = 0; k < un; k++)
        hs[i++] = uh[k];
    for (size_t k = 0; k < xn; k++)
        hs[i++] = xh[k];
    hs[i++] = (nf_http_header_t){"Content-Length", 14, clen, strlen(clen)};
    hs[i++] = (nf_http_header_t){"Connection", 10, "close", 5};
    for (size_t k = 0; k < n; k++)
        cap += hs[k].name_len + hs[k].value_len + 4;
    nf_buf_t *b = nf_buf_new(cap);
    if (!b) {
        free(hs);
        return -ENOMEM;
    }
    int hl = nf_http_write_response(b->base, cap, status, NULL, hs, n);
    free(hs);
    if (hl < 0) {
        nf_buf_unref(b);
        return hl;
    }
    if (send_body && blen)
        memcpy(b->base + hl, body, blen);
    b->len = (size_t)hl + (send_body ? blen : 0);
    ws->http_status = status;
    int rc = nf_filter_write_down(ws->f, b);
    nf__ws_linger(ws);
    return rc;
}

static void http_error(nf_ws_conn_t *ws, int status, const nf_http_header_t *xh, size_t xn)
{
    char body[96];
    int blen = snprintf(body, sizeof body, "%d %s\n", status, nf_http_reason(status));
    static const nf_http_header_t ct = {"Content-Type", 12, "text/plain; charset=utf-8", 25};
    nf_http_header_t all[3];
    size_t n = 0;
    all[n++] = ct;
    for (size_t k = 0; k < xn && n < 3; k++)
        all[n++] = xh[k];
    if (respond(ws, status, all, n, NULL, 0, body, (size_t)blen, 1) < 0)
        nf__ws_drop(ws, -ENOMEM);
}

/* Writes a 101 answer (reason NULL: the standard one) with headers rh[0..n)
 * into a new buffer with `extra` bytes of room after the head, and sets
 * *head_len. On failure it answers 500 (a bad extra header) or drops the
 * connection (no memory), and returns NULL. */
static nf_buf_t *answer_101(nf_ws_conn_t *ws, const char *reason, const nf_http_header_t *rh, size_t n, size_t extra,
                            size_t *head_len)
{
    size_t cap = 64 + extra + (reason ? strlen(reason) : 0);
    for (size_t k = 0; k < n; k++)
        cap += rh[k].name_len + rh[k].value_len + 4;
    nf_buf_t *b = nf_buf_new(cap);
    int hl = b ? nf_http_write_response(b->base, cap, 101, reason, rh, n) : -ENOMEM;
    if (hl < 0) {
        nf_buf_unref(b);
        if (hl == -ENOMEM)
            nf__ws_drop(ws, -ENOMEM);
        else
            http_error(ws, 500, NULL, 0);
        return NULL;
    }
    *head_len = (size_t)hl;
    return b;
}

/* Records the Origin header (oh, may be NULL) in the request and asks the
 * program's check_origin. Returns 0 to go on, -1 when refused (answered). */
static int check_origin(nf_ws_server_t *s, nf_ws_conn_t *ws, nf_ws_request_t *r, const nf_http_header_t *oh)
{
    if (oh) {
        r->origin = oh->value;
        r->origin_len = oh->value_len;
    }
    if (s->cfg.check_origin) {
        int st = s->cfg.check_origin(s, r);
        if (st) {
            http_error(ws, st >= 400 && st <= 599 ? st : 403, NULL, 0);
            return -1;
        }
    }
    return 0;
}

NF__EXPORT int nf_ws_http_respond(nf_ws_request_t *req, int status, const nf_http_header_t *headers, size_t n,
                                  const void *body, size_t len)
{
    nf_ws_conn_t *ws = req->ws_;
    if (req->responded_)
        return -EALREADY;
    if (ws->state != NF__WS_HANDSHAKE || nf_conn_is_closing(ws->f->conn))
        return NF_ECLOSED;
    if (status < 100 || status > 999 || status == 101)
        return NF_EHTTP_INVALID;
    int head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    int rc = respond(ws, status, headers, n, NULL, 0, body, len, !head);
    if (rc != NF_EHTTP_INVALID && rc != NF_EHTTP_NOSPACE && rc != -ENOMEM)
        req->responded_ = 1;
    return rc;
}

/* ---- the handshake -------------------------------------------------------------- */

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* A base64 encoding of 16 bytes: 22 characters, the last with its low 4
 * bits zero, then "==". */
static int key_ok(const char *k, size_t n)
{
    if (n != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (b64val(k[i]) < 0)
            return 0;
    return (b64val(k[21]) & 0xF) == 0;
}

static int route_matches(const nf_ws_route_t *r, const char *path, size_t len)
{
    if (!r->path || (r->path[0] == '*' && r->path[1] == 0))
        return 1;
    return strlen(r->path) == len && memcmp(r->path, path, len) == 0;
}

static int eq(const char *a, size_t alen, const char *lit) { return strlen(lit) == alen && memcmp(a, lit, alen) == 0; }

/* The value of the only header `name`, or NULL when absent or repeated. */
static const nf_http_header_t *only(const nf_http_header_t *h, size_t n, const char *name)
{
    return nf_http_count_headers(h, n, name) == 1 ? nf_http_find_header(h, n, name) : NULL;
}

/* A Hixie-76 request: Sec-WebSocket-Key1 and Key2, no Sec-WebSocket-Version. */
static int is_hixie76(const nf_http_header_t *h, size_t n)
{
    return !nf_http_find_header(h, n, "Sec-WebSocket-Version") && nf_http_find_header(h, n, "Sec-WebSocket-Key1") &&
           nf_http_find_header(h, n, "Sec-WebSocket-Key2");
}

/* The connection's path: the route's own string when the target is exactly
 * it (no query), else a copy. */
static void set_path(nf_ws_conn_t *ws, const nf_ws_request_t *r, const nf_ws_route_t *route)
{
    if (route->path && !(route->path[0] == '*' && route->path[1] == 0) && r->target_len == r->path_len) {
        ws->path = (char *)(uintptr_t)route->path;
        ws->path_borrowed = 1;
    } else {
        ws->path = strndup(r->target, r->target_len);
    }
}

static const nf_ws_route_t *find_route(nf_ws_server_t *s, const nf_ws_request_t *r)
{
    for (unsigned i = 0; i < s->cfg.nroutes; i++)
        if (route_matches(&s->cfg.routes[i], r->target, r->path_len))
            return &s->cfg.routes[i];
    return NULL;
}

/* One read during the handshake (conn.h). */
typedef nf__ws_hs_read_t hs_read_t;

static uint8_t *hs_after(const hs_read_t *rd, size_t off, size_t *n)
{
    return nf__ws_hs_after(rd->data, rd->len, rd->have, off, n);
}

/* The Hixie-76 handshake (draft 76, section 5.2): the answer is the MD5 of
 * the two key values and the 8 bytes that follow the head (there:
 * rd->buf[head .. head + 8), waited for by server_read). */
static void upgrade_hixie76(nf_ws_conn_t *ws, nf_ws_request_t *r, const nf_http_request_t *req, const hs_read_t *rd)
{
    const char *buf = rd->buf;
    size_t head = rd->head;
    nf_ws_server_t *s = (nf_ws_server_t *)(void *)ws->ctx;
    const nf_http_header_t *h = req->headers;
    size_t n = req->num_headers;
    const nf_http_header_t *k1 = only(h, n, "Sec-WebSocket-Key1"), *k2 = only(h, n, "Sec-WebSocket-Key2");
    const nf_http_header_t *host = only(h, n, "Host");
    uint8_t answer[16];
    if (!k1 || !k2 || !host || rd->have + rd->len - head < 8 ||
        nf_ws_hixie76_answer(k1->value, k1->value_len, k2->value, k2->value_len, (const uint8_t *)buf + head, answer) !=
            0) {
        http_error(ws, 400, NULL, 0);
        return;
    }
    r->version = 76;
    const nf_ws_route_t *route = find_route(s, r);
    if (!route) {
        http_error(ws, 404, NULL, 0);
        return;
    }
    r->route = route;
    const nf_http_header_t *oh = nf_http_find_header(h, n, "Origin");
    if (check_origin(s, ws, r, oh) != 0)
        return;
    /* one subprotocol was asked (a single value in draft 76) */
    const nf_http_header_t *ph = only(h, n, "Sec-WebSocket-Protocol");
    for (const char *const *sp = route->subprotocols; ph && sp && *sp && !r->subprotocol; sp++)
        if (eq(ph->value, ph->value_len, *sp))
            r->subprotocol = *sp;
    if (s->cfg.on_upgrade) {
        int st = s->cfg.on_upgrade(s, r);
        if (st) {
            http_error(ws, st >= 400 && st <= 599 ? st : 403, NULL, 0);
            return;
        }
    }
    size_t loclen = 5 + host->value_len + r->target_len;
    char *loc = malloc(loclen + 1);
    size_t nh = 5 + s->cfg.nheaders + r->num_extra, i = 0;
    nf_http_header_t *rh = malloc(nh * sizeof *rh);
    if (!loc || !rh) {
        free(loc);
        free(rh);
        nf__ws_drop(ws, -ENOMEM);
        return;
    }
    memcpy(loc, "ws://", 5);
    memcpy(loc + 5, host->value, host->value_len);
    memcpy(loc + 5 + host->value_len, r->target, r->target_len);
    rh[i++] = (nf_http_header_t){"Upgrade", 7, "WebSocket", 9};
    rh[i++] = (nf_http_header_t){"Connection", 10, "Upgrade", 7};
    if (oh)
        rh[i++] = (nf_http_header_t){"Sec-WebSocket-Origin", 20, oh->value, oh->value_len};
    rh[i++] = (nf_http_header_t){"Sec-WebSocket-Location", 22, loc, loclen};
    if (r->subprotocol)
        rh[i++] = (nf_http_header_t){"Sec-WebSocket-Protocol", 22, r->subprotocol, strlen(r->subprotocol)};
    for (size_t k = 0; k < s->cfg.nheaders; k++)
        rh[i++] = s->cfg.headers[k];
    for (size_t k = 0; k < r->num_extra; k++)
        rh[i++] = r->extra_headers[k];
    size_t hl;
    nf_buf_t *b = answer_101(ws, "WebSocket Protocol Handshake", rh, i, 16, &hl);
    free(rh);
    free(loc);
    if (!b)
        return;
    memcpy(b->base + hl, answer, 16);
    b->len = (size_t)hl + 16;
    ws->route = route;
    ws->h = route->handler;
    ws->data = r->conn_data;
    ws->version = 76;
    ws->subprotocol = r->subprotocol;
    set_path(ws, r, route);
    nf_filter_write_down(ws->f, b);
    size_t rest_len;
    uint8_t *rest = hs_after(rd, head + 8, &rest_len);
    nf__ws_opened(ws, NULL, rest, rest_len);
}

/* The RFC 6455 opening handshake (section 4.2.1-4.2.2): over 100 lines on
 * purpose, because the checks run in the RFC's order, each answering with
 * its own status, and the answer is built from what they found; read top to
 * bottom it is the RFC's list. */
static void upgrade(nf_ws_conn_t *ws, nf_ws_request_t *r, const nf_http_request_t *req, const hs_read_t *rd)
{
    nf_ws_server_t *s = (nf_ws_server_t *)(void *)ws->ctx;
    const nf_http_header_t *h = req->headers;
    size_t n = req->num_headers;
    if (!eq(req->method, req->method_len, "GET") || req->minor_version < 1 ||
        !nf_http_headers_have_token(h, n, "Connection", "upgrade")) {
        http_error(ws, 400, NULL, 0);
        return;
    }
    if (s->cfg.legacy_hixie76 && is_hixie76(h, n)) {
        upgrade_hixie76(ws, r, req, rd);
        return;
    }
    /* version */
    const nf_http_header_t *vh = only(h, n, "Sec-WebSocket-Version");
    int v = 0;
    if (vh && eq(vh->value, vh->value_len, "13"))
        v = 13;
    else if (vh && s->cfg.legacy_hybi && eq(vh->value, vh->value_len, "8"))
        v = 8;
    else if (vh && s->cfg.legacy_hybi && eq(vh->value, vh->value_len, "7"))
        v = 7;
    if (!v) {
        nf_http_header_t x = {"Sec-WebSocket-Version", 21, s->cfg.legacy_hybi ? "13, 8, 7" : "13",
                              s->cfg.legacy_hybi ? 8u : 2u};
        http_error(ws, 426, &x, 1);
        return;
    }
    r->version = v;
    /* key */
    const nf_http_header_t *kh = only(h, n, "Sec-WebSocket-Key");
    if (!kh || !key_ok(kh->value, kh->value_len)) {
        http_error(ws, 400, NULL, 0);
        return;
    }
    /* route */
    const nf_ws_route_t *route = find_route(s, r);
    if (!route) {
        http_error(ws, 404, NULL, 0);
        return;
    }
    r->route = route;
    if (check_origin(s, ws, r, nf_http_find_header(h, n, v == 13 ? "Origin" : "Sec-WebSocket-Origin")) != 0)
        return;
    /* subprotocol: ours in our order, the first the client offered */
    for (const char *const *sp = route->subprotocols; sp && *sp && !r->subprotocol; sp++)
        if (nf_http_headers_have_token(h, n, "Sec-WebSocket-Protocol", *sp))
            r->subprotocol = *sp;
    /* permessage-deflate */
    nf_ws_pmd_params_t agreed;
    char ext[256];
    int extlen = 0;
    if (s->ctx.opts.deflate) {
        size_t ne = nf_http_count_headers(h, n, "Sec-WebSocket-Extensions");
        if (ne == 1) {
            const nf_http_header_t *eh = nf_http_find_header(h, n, "Sec-WebSocket-Extensions");
            extlen = nf_ws_pmd_negotiate(&s->ctx.opts.pmd, eh->value, eh->value_len, &agreed, ext, sizeof ext);
        } else if (ne > 1) { /* several fields: one list (RFC 9110 5.3) */
            size_t total = 0;
            for (size_t i = 0; i < n; i++)
                if (nf_http_find_header(&h[i], 1, "Sec-WebSocket-Extensions"))
                    total += h[i].value_len + 2;
            char *joined = malloc(total + 1);
            size_t off = 0;
            if (joined) {
                for (size_t i = 0; i < n; i++) {
                    if (!nf_http_find_header(&h[i], 1, "Sec-WebSocket-Extensions"))
                        continue;
                    if (off) {
                        memcpy(joined + off, ", ", 2);
                        off += 2;
                    }
                    memcpy(joined + off, h[i].value, h[i].value_len);
                    off += h[i].value_len;
                }
                extlen = nf_ws_pmd_negotiate(&s->ctx.opts.pmd, joined, off, &agreed, ext, sizeof ext);
                free(joined);
            }
        }
        if (extlen < 0)
            extlen = 0;
    }
    if (s->cfg.on_upgrade) {
        int st = s->cfg.on_upgrade(s, r);
        if (st) {
            http_error(ws, st >= 400 && st <= 599 ? st : 403, NULL, 0);
            return;
        }
    }
    /* 101 */
    char accept[29];
    if (nf__ws_accept_key(kh->value, kh->value_len, accept) != 0) {
        http_error(ws, 500, NULL, 0);
        return;
    }
    size_t nh = 5 + s->cfg.nheaders + r->num_extra, i = 0;
    nf_http_header_t *rh = malloc(nh * sizeof *rh);
    if (!rh) {
        nf__ws_drop(ws, -ENOMEM);
        return;
    }
    rh[i++] = (nf_http_header_t){"Upgrade", 7, "websocket", 9};
    rh[i++] = (nf_http_header_t){"Connection", 10, "Upgrade", 7};
    rh[i++] = (nf_http_header_t){"Sec-WebSocket-Accept", 20, accept, 28};
    if (r->subprotocol)
        rh[i++] = (nf_http_header_t){"Sec-WebSocket-Protocol", 22, r->subprotocol, strlen(r->subprotocol)};
    if (extlen > 0)
        rh[i++] = (nf_http_header_t){"Sec-WebSocket-Extensions", 24, ext, (size_t)extlen};
    for (size_t k = 0; k < s->cfg.nheaders; k++)
        rh[i++] = s->cfg.headers[k];
    for (size_t k = 0; k < r->num_extra; k++)
        rh[i++] = r->extra_headers[k];
    size_t hl;
    nf_buf_t *b = answer_101(ws, NULL, rh, i, 0, &hl);
    free(rh);
    if (!b)
        return;
    b->len = (size_t)hl;
    ws->route = route;
    ws->h = route->handler;
    ws->data = r->conn_data;
    ws->version = (uint8_t)v;
    ws->subprotocol = r->subprotocol;
    set_path(ws, r, route);
    nf_filter_write_down(ws->f, b); /* a failure shows up as the connection closing */
    size_t rest_len;
    uint8_t *rest = hs_after(rd, rd->head, &rest_len);
    nf__ws_opened(ws, extlen > 0 ? &agreed : NULL, rest, rest_len);
}

static void handle(nf_ws_conn_t *ws, const nf_http_request_t *req, const hs_read_t *rd)
{
    nf_ws_server_t *s = (nf_ws_server_t *)(void *)ws->ctx;
    nf_ws_request_t r;
    memset(&r, 0, sizeof r);
    r.server = s;
    r.tcp = ws->f->conn;
    r.method = req->method;
    r.method_len = req->method_len;
    r.target = req->target;
    r.target_len = req->target_len;
    const char *q = memchr(req->target, '?', req->target_len);
    r.path_len = q ? (size_t)(q - req->target) : req->target_len;
    r.headers = req->headers;
    r.num_headers = req->num_headers;
    r.ws_ = ws;
    if (nf_http_headers_have_token(req->headers, req->num_headers, "Upgrade", "websocket")) {
        upgrade(ws, &r, req, rd);
        return;
    }
    if (s->cfg.on_http)
        s->cfg.on_http(s, &r);
    if (!r.responded_ && ws->state == NF__WS_HANDSHAKE && !nf_conn_is_closing(ws->f->conn))
        http_error(ws, 404, NULL, 0);
}

static void server_open(nf_ws_conn_t *ws) { (void)ws; }

static void server_read(nf_ws_conn_t *ws, char *data, size_t len)
{
    const nf_ws_options_t *o = &ws->ctx->opts;
    hs_read_t rd;
    nf_http_limits_t lim;
    if (nf__ws_hs_read_begin(ws, data, len, &rd, &lim) != 0)
        return;
    nf_http_header_t hdrs[MAX_HEADERS];
    nf_http_request_t req;
    int rc = nf_http_parse_request(rd.buf, rd.blen, rd.last, &req, hdrs, MAX_HEADERS, &lim);
    if (rc == NF_EHTTP_INCOMPLETE) {
        if (!rd.have && nf__ws_hs_append(ws, data, len) != 0) {
            nf__ws_drop(ws, -ENOMEM);
            return;
        }
        if (ws->hs->len > o->max_header)
            http_error(ws, 431, NULL, 0);
        else
            ws->hs->last = ws->hs->len;
        return;
    }
    if (rc >= 0 && rd.have + len - (size_t)rc < 8 && ((nf_ws_server_t *)(void *)ws->ctx)->cfg.legacy_hixie76 &&
        is_hixie76(req.headers, req.num_headers) &&
        nf_http_headers_have_token(req.headers, req.num_headers, "Upgrade", "websocket")) {
        /* Hixie-76: the 8 bytes of key3 follow the head; wait for them (the
         * handshake timeout bounds the wait) */
        if (!rd.have && nf__ws_hs_append(ws, data, len) != 0) {
            nf__ws_drop(ws, -ENOMEM);
            return;
        }
        ws->hs->last = 0; /* the head is complete: parse it again, whole */
        return;
    }
    if (rc < 0) {
        http_error(ws, nf_http_error_status(rc), NULL, 0);
    } else {
        rd.head = (size_t)rc;
        handle(ws, &req, &rd);
    }
    nf__ws_hs_free(ws);
}

/* conn.c reaches the server's handshake through this (nf__ws_ctx_t.ops). */
static const nf__ws_role_t server_role = {.open = server_open, .read = server_read};

/* ---- the listener -------------------------------------------------------------- */

static void server_free(nf__ws_ctx_t *ctx)
{
    nf_ws_server_t *s = (nf_ws_server_t *)(void *)ctx;
    free(ctx->specs);
    if (s->close_cb)
        s->close_cb(s);
    free(s);
}

static void listener_closed(nf_listener_t *l)
{
    nf_ws_server_t *s = nf_listener_get_data(l);
    s->l = NULL;
    nf__ws_ctx_unref(&s->ctx);
}

NF__EXPORT int nf_ws_listen(nf_loop_t *loop, const nf_ws_server_config_t *cfg, nf_ws_server_t **out)
{
    if (!cfg || !cfg->routes || !cfg->nroutes)
        return -EINVAL;
    for (unsigned i = 0; i < cfg->nroutes; i++)
        if (!cfg->routes[i].handler || !cfg->routes[i].handler->on_close)
            return -EINVAL;
    nf_ws_server_t *s = calloc(1, sizeof *s);
    unsigned nf = cfg->listen.filters ? cfg->listen.nfilters : 0;
    nf_filter_spec_t *specs = calloc(nf + 1, sizeof *specs);
    if (!s || !specs) {
        free(s);
        free(specs);
        return -ENOMEM;
    }
    s->cfg = *cfg;
    s->data = cfg->data;
    s->ctx.role = NF_WS_SERVER;
    s->ctx.ops = &server_role;
    s->ctx.refs = 1; /* the listener's */
    s->ctx.loop = loop;
    s->ctx.opts = cfg->opts;
    nf__ws_opts_normalize(&s->ctx.opts);
    nf__list_init(&s->ctx.conns);
    s->ctx.free_fn = server_free;
    for (unsigned i = 0; i < nf; i++)
        specs[i] = cfg->listen.filters[i];
    specs[nf].ops = &nf_ws_filter;
    specs[nf].config = &s->ctx;
    s->ctx.specs = specs;
    s->ctx.nspecs = nf + 1;
    nf_listen_config_t lc = cfg->listen;
    lc.handler = &nf__ws_tcp_handler;
    lc.data = s;
    lc.filters = specs;
    lc.nfilters = nf + 1;
    int err = nf_listen(loop, &lc, &s->l);
    if (err) {
        free(specs);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

NF__EXPORT void nf_ws_server_close(nf_ws_server_t *s, unsigned code, void (*cb)(nf_ws_server_t *s))
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    nf_listener_close(s->l, listener_closed);
    if (!code)
        return;
    for (nf__list_t *n = s->ctx.conns.next; n != &s->ctx.conns; n = n->next) {
        nf_ws_conn_t *ws = nf__container_of(n, nf_ws_conn_t, node);
        if (ws->state == NF__WS_OPEN)
            nf_ws_close(ws, code, NULL, 0);
        else if (ws->state == NF__WS_HANDSHAKE)
            nf__ws_drop(ws, NF_CLOSE_LOCAL);
    }
}

NF__EXPORT int nf_ws_server_addr(const nf_ws_server_t *s, nf_addr_t *out)
{
    if (!s->l)
        return NF_ECLOSED;
    return nf_listener_addr(s->l, out);
}

NF__EXPORT unsigned nf_ws_server_conns(const nf_ws_server_t *s) { return s->ctx.nconns; }
NF__EXPORT nf_loop_t *nf_ws_server_loop(const nf_ws_server_t *s) { return s->ctx.loop; }
NF__EXPORT void *nf_ws_server_get_data(const nf_ws_server_t *s) { return s->data; }
NF__EXPORT void nf_ws_server_set_data(nf_ws_server_t *s, void *data) { s->data = data; }
