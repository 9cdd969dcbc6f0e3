/* netframe — WebSocket client: URL, opening handshake (RFC 6455 4.1), checks
 * of the server's answer. */
#include "ws/conn.h"
#include "netframe/tls.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static void client_open(nf_ws_conn_t *ws);
static void client_read(nf_ws_conn_t *ws, char *data, size_t len);
/* conn.c reaches the client's handshake through this (nf__ws_ctx_t.ops). */
static const nf__ws_role_t client_role = {.open = client_open, .read = client_read};

#define MAX_HEADERS 64

typedef struct url {
    char *host;    /* without brackets */
    char *hosthdr; /* authority as given: the Host header */
    char *target;  /* path?query, at least "/" */
    uint16_t port;
    bool tls; /* wss:// */
} url_t;

static void url_free(url_t *u)
{
    free(u->host);
    free(u->hosthdr);
    free(u->target);
}

static int parse_url(const char *s, url_t *u)
{
    memset(u, 0, sizeof *u);
    if (strncasecmp(s, "wss://", 6) == 0) {
        u->tls = true;
        s++; /* same shape as ws:// from here */
    } else if (strncasecmp(s, "ws://", 5) != 0)
        return -EINVAL;
    const char *a = s + 5, *e = a + strcspn(a, "/?#");
    if (e == a || memchr(a, '@', (size_t)(e - a)))
        return -EINVAL;
    const char *h = a, *he, *pp = NULL;
    if (*a == '[') {
        h = a + 1;
        he = memchr(h, ']', (size_t)(e - h));
        if (!he)
            return -EINVAL;
        if (he + 1 < e) {
            if (he[1] != ':')
                return -EINVAL;
            pp = he + 2;
        }
    } else {
        he = memchr(a, ':', (size_t)(e - a));
        if (he)
            pp = he + 1;
        else
            he = e;
    }
    if (he == h)
        return -EINVAL;
    unsigned long port = u->tls ? 443 : 80;
    if (pp) {
        if (pp == e || e - pp > 5)
            return -EINVAL;
        port = 0;
        for (const char *p = pp; p < e; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            port = port * 10 + (unsigned)(*p - '0');
        }
        if (port == 0 || port > 65535)
            return -EINVAL;
    }
    const char *t = e, *te = t + strcspn(t, "#");
    u->host = strndup(h, (size_t)(he - h));
    u->hosthdr = strndup(a, (size_t)(e - a));
    if (t == te)
        u->target = strdup("/");
    else if (*t == '?') {
        u->target = malloc((size_t)(te - t) + 2);
        if (u->target) {
            u->target[0] = '/';
            memcpy(u->target + 1, t, (size_t)(te - t));
            u->target[te - t + 1] = 0;
        }
    } else
        u->target = strndup(t, (size_t)(te - t));
    u->port = (uint16_t)port;
    if (!u->host || !u->hosthdr || !u->target) {
        url_free(u);
        return -ENOMEM;
    }
    for (const char *p = u->target; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) {
            url_free(u);
            return -EINVAL;
        }
    return 0;
}

static void client_free(nf__ws_ctx_t *ctx)
{
    nf__ws_client_t *c = (nf__ws_client_t *)(void *)ctx;
    free(ctx->specs);
    free(c->request);
    free(c->path);
    free(c);
}

/* A Hixie-76 key (draft 76, section 4.1, step 17-22): a random count of
 * spaces n (1..12) and a random number v up to 4294967295 / n; the key is
 * v * n in decimal with 1..12 random characters from 0x21-0x2F and 0x3A-0x7E
 * inserted at random positions, then the n spaces inserted at random
 * positions other than the first and last. Writes it NUL-terminated into
 * out (at least 64 bytes), sets *value to v. */
static int hixie76_key(char *out, uint32_t *value)
{
    uint8_t r[64];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -EIO;
    size_t ri = 0;
#define RND32() ((uint32_t)r[ri] << 24 | (uint32_t)r[ri + 1] << 16 | (uint32_t)r[ri + 2] << 8 | r[ri + 3])
    unsigned spaces = 1 + r[ri++] % 12;
    uint32_t max = 4294967295u / spaces;
    uint32_t v = RND32() % (max + 1u == 0 ? max : max + 1u);
    ri += 4;
    char key[64];
    int len = snprintf(key, sizeof key, "%llu", (unsigned long long)v * spaces);
    unsigned extra = 1 + r[ri++] % 12;
    for (unsigned k = 0; k < extra; k++) {
        uint8_t x = r[ri++] % 84; /* 15 of 0x21-0x2F, 69 of 0x3A-0x7E */
        char ch = (char)(x < 15 ? 0x21 + x : 0x3a + (x - 15));
        size_t pos = r[ri++] % (size_t)(len + 1);
        memmove(key + pos + 1, key + pos, (size_t)len - pos + 1);
        key[pos] = ch;
        len++;
    }
    for (unsigned k = 0; k < spaces; k++) {
        size_t pos = 1 + r[ri++] % (size_t)(len - 1); /* never first nor last */
        memmove(key + pos + 1, key + pos, (size_t)len - pos + 1);
        key[pos] = ' ';
        len++;
    }
#undef RND32
    memcpy(out, key, (size_t)len + 1);
    *value = v;
    return 0;
}

/* Writes the request head (GET target, headers h[0..n)) into c->request,
 * followed by `tail` (Hixie-76's key3). 0, -ENOMEM or -EINVAL (a bad
 * header). */
static int write_request(nf__ws_client_t *c, const char *target, const nf_http_header_t *h, size_t n, const void *tail,
                         size_t tail_len)
{
    size_t cap = 64 + tail_len + strlen(target);
    for (size_t k = 0; k < n; k++)
        cap += h[k].name_len + h[k].value_len + 4;
    c->request = malloc(cap);
    int rl = c->request ? nf_http_write_request(c->request, cap, "GET", target, h, n) : -ENOMEM;
    if (rl < 0)
        return rl == -ENOMEM ? -ENOMEM : -EINVAL;
    if (tail_len)
        memcpy(c->request + rl, tail, tail_len);
    c->request_len = (size_t)rl + tail_len;
    return 0;
}

/* Builds a Hixie-76 request: the head, then the 8 bytes of key3; the 16
 * bytes expected back go to c->accept. */
static int build_request_hixie76(nf__ws_client_t *c, const url_t *u)
{
    const nf_ws_client_config_t *cfg = &c->cfg;
    char k1[64], k2[64], origin[300];
    uint32_t v1, v2;
    uint8_t key3[8];
    int err;
    if ((err = hixie76_key(k1, &v1)) || (err = hixie76_key(k2, &v2)))
        return err;
    if (getrandom(key3, sizeof key3, 0) != (ssize_t)sizeof key3)
        return -EIO;
    if ((err = nf_ws_hixie76_answer_values(v1, v2, key3, (uint8_t *)c->accept)) != 0)
        return err;
    if (!cfg->origin)
        snprintf(origin, sizeof origin, "http://%s", u->hosthdr);
    size_t nh = 7 + cfg->nheaders, i = 0;
    nf_http_header_t *h = malloc(nh * sizeof *h);
    if (!h)
        return -ENOMEM;
    const char *o = cfg->origin ? cfg->origin : origin;
    h[i++] = (nf_http_header_t){"Host", 4, u->hosthdr, strlen(u->hosthdr)};
    h[i++] = (nf_http_header_t){"Connection", 10, "Upgrade", 7};
    h[i++] = (nf_http_header_t){"Upgrade", 7, "WebSocket", 9};
    h[i++] = (nf_http_header_t){"Origin", 6, o, strlen(o)};
    h[i++] = (nf_http_header_t){"Sec-WebSocket-Key1", 18, k1, strlen(k1)};
    h[i++] = (nf_http_header_t){"Sec-WebSocket-Key2", 18, k2, strlen(k2)};
    if (cfg->subprotocols && cfg->subprotocols[0]) /* one value in draft 76 */
        h[i++] = (nf_http_header_t){"Sec-WebSocket-Protocol", 22, cfg->subprotocols[0], strlen(cfg->subprotocols[0])};
    for (size_t k = 0; k < cfg->nheaders; k++)
        h[i++] = cfg->headers[k];
    int rc = write_request(c, u->target, h, i, key3, sizeof key3);
    free(h);
    return rc;
}

/* Builds the request head into c->request. */
static int build_request(nf__ws_client_t *c, const url_t *u, const char *key)
{
    const nf_ws_client_config_t *cfg = &c->cfg;
    int v = cfg->version ? cfg->version : 13;
    char ver[4], protos[512], offer[256];
    snprintf(ver, sizeof ver, "%d", v);
    size_t nh = 8 + cfg->nheaders, i = 0;
    nf_http_header_t *h = malloc(nh * sizeof *h);
    if (!h)
        return -ENOMEM;
    h[i++] = (nf_http_header_t){"Host", 4, u->hosthdr, strlen(u->hosthdr)};
    h[i++] = (nf_http_header_t){"Upgrade", 7, "websocket", 9};
    h[i++] = (nf_http_header_t){"Connection", 10, "Upgrade", 7};
    h[i++] = (nf_http_header_t){"Sec-WebSocket-Key", 17, key, 24};
    h[i++] = (nf_http_header_t){"Sec-WebSocket-Version", 21, ver, strlen(ver)};
    if (cfg->origin) {
        const char *name = v == 13 ? "Origin" : "Sec-WebSocket-Origin";
        h[i++] = (nf_http_header_t){name, strlen(name), cfg->origin, strlen(cfg->origin)};
    }
    if (cfg->subprotocols && cfg->subprotocols[0]) {
        size_t off = 0;
        for (const char *const *sp = cfg->subprotocols; *sp; sp++) {
            size_t l = strlen(*sp);
            if (off + l + 2 >= sizeof protos) {
                free(h);
                return -EINVAL;
            }
            if (off) {
                memcpy(protos + off, ", ", 2);
                off += 2;
            }
            memcpy(protos + off, *sp, l);
            off += l;
        }
        h[i++] = (nf_http_header_t){"Sec-WebSocket-Protocol", 22, protos, off};
    }
    if (c->ctx.opts.deflate) {
        int ol = nf_ws_pmd_offer(&c->ctx.opts.pmd, offer, sizeof offer);
        if (ol < 0) {
            free(h);
            return -EINVAL;
        }
        h[i++] = (nf_http_header_t){"Sec-WebSocket-Extensions", 24, offer, (size_t)ol};
    }
    for (size_t k = 0; k < cfg->nheaders; k++)
        h[i++] = cfg->headers[k];
    int rc = write_request(c, u->target, h, i, NULL, 0);
    free(h);
    return rc;
}

NF__EXPORT int nf_ws_connect(nf_loop_t *loop, const char *url, const nf_ws_client_config_t *cfg, nf_ws_conn_t **out)
{
    if (!url || !cfg || !cfg->handler || !cfg->handler->on_close)
        return -EINVAL;
    if (cfg->version && cfg->version != 13 && cfg->version != 8 && cfg->version != 7 && cfg->version != 76)
        return -EINVAL;
    if (cfg->version == 76 && cfg->opts.deflate) /* no extensions in Hixie-76 */
        return -EINVAL;
    url_t u;
    int err = parse_url(url, &u);
    if (err)
        return err;
    if (u.tls && !cfg->tls) { /* wss:// needs a TLS client context */
        url_free(&u);
        return -EINVAL;
    }
    nf__ws_client_t *c = calloc(1, sizeof *c);
    unsigned nf = cfg->connect.filters ? cfg->connect.nfilters : 0;
    /* wss://: the TLS filter goes right under the WebSocket filter */
    nf_filter_spec_t *specs = calloc(nf + 2, sizeof *specs);
    if (!c || !specs) {
        err = -ENOMEM;
        goto fail;
    }
    c->cfg = *cfg;
    c->ctx.role = NF_WS_CLIENT;
    c->ctx.ops = &client_role;
    c->ctx.loop = loop;
    c->ctx.opts = cfg->opts;
    nf__ws_opts_normalize(&c->ctx.opts);
    nf__list_init(&c->ctx.conns);
    c->ctx.free_fn = client_free;
    for (unsigned i = 0; i < nf; i++)
        specs[i] = cfg->connect.filters[i];
    if (u.tls) {
        specs[nf].ops = &nf_tls_filter;
        specs[nf++].config = cfg->tls;
    }
    specs[nf].ops = &nf_ws_filter;
    specs[nf].config = &c->ctx;
    c->ctx.specs = specs;
    c->ctx.nspecs = nf + 1;
    /* the key: 16 random bytes, base64 */
    unsigned char raw[16];
    char key[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        err = -EIO;
        goto fail;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    if (cfg->version == 76)
        err = build_request_hixie76(c, &u);
    else if ((err = nf__ws_accept_key(key, 24, c->accept)) == 0)
        err = build_request(c, &u, key);
    if (err)
        goto fail;
    c->path = u.target;
    u.target = NULL;
    nf_connect_config_t cc = cfg->connect;
    cc.host = u.host;
    cc.port = u.port;
    cc.handler = &nf__ws_tcp_handler;
    cc.data = NULL;
    cc.filters = specs;
    cc.nfilters = nf + 1;
    nf_conn_t *tcp;
    err = nf_connect(loop, &cc, &tcp);
    if (err)
        goto fail;
    /* (only -ENOMEM can fail it: the handshake then fails, through on_close) */
    if (u.tls)
        (void)nf_tls_set_server_name(tcp, u.host);
    url_free(&u);
    nf_filter_t *f = nf_conn_filter(tcp, &nf_ws_filter);
    nf__ws_client_setup(f, cfg->handler, cfg->data); /* takes the context's reference */
    nf_ws_conn_t *ws = f->state;
    ws->version = (uint8_t)(cfg->version ? cfg->version : 13);
    if (out)
        *out = ws;
    return 0;
fail:
    url_free(&u);
    if (c) {
        free(c->request);
        free(c->path);
    }
    free(c);
    free(specs);
    return err;
}

static void client_open(nf_ws_conn_t *ws)
{
    nf__ws_client_t *c = (nf__ws_client_t *)(void *)ws->ctx;
    int rc = nf__ws_write_raw(ws, c->request, c->request_len);
    free(c->request);
    c->request = NULL;
    if (rc < 0)
        nf__ws_drop(ws, rc);
}

static void hs_fail(nf_ws_conn_t *ws) { nf__ws_drop(ws, NF_EWS_HANDSHAKE); }

/* One read during the handshake (conn.h). */
typedef nf__ws_hs_read_t hs_read_t;

/* Hixie-76: 101, Upgrade: WebSocket, Connection: Upgrade, at most the one
 * subprotocol offered, then the 16 challenge bytes after the head. */
static void client_read_hixie76(nf_ws_conn_t *ws, nf__ws_client_t *c, const nf_http_response_t *res,
                                const hs_read_t *rd)
{
    const nf_http_header_t *h = res->headers;
    size_t n = res->num_headers;
    if (res->status != 101 || !nf_http_headers_have_token(h, n, "Upgrade", "websocket") ||
        !nf_http_headers_have_token(h, n, "Connection", "upgrade")) {
        hs_fail(ws);
        return;
    }
    if (rd->have + rd->len - rd->head < 16) {
        /* wait for the rest (the copy has room for them after any head) */
        if (!rd->have && nf__ws_hs_append(ws, rd->data, rd->len) != 0)
            nf__ws_drop(ws, -ENOMEM);
        else
            ws->hs->last = 0; /* the head is complete: parse it again, whole */
        return;
    }
    if (memcmp(rd->buf + rd->head, c->accept, 16) != 0) {
        hs_fail(ws);
        return;
    }
    size_t np = nf_http_count_headers(h, n, "Sec-WebSocket-Protocol");
    ws->subprotocol = NULL;
    if (np == 1) {
        const nf_http_header_t *ph = nf_http_find_header(h, n, "Sec-WebSocket-Protocol");
        const char *want = c->cfg.subprotocols ? c->cfg.subprotocols[0] : NULL;
        if (!want || strlen(want) != ph->value_len || memcmp(want, ph->value, ph->value_len) != 0) {
            hs_fail(ws);
            return;
        }
        ws->subprotocol = want;
    } else if (np > 1) {
        hs_fail(ws);
        return;
    }
    if (!ws->path)
        ws->path = strdup(c->path);
    size_t rest_len;
    uint8_t *rest = nf__ws_hs_after(rd->data, rd->len, rd->have, rd->head + 16, &rest_len);
    nf__ws_opened(ws, NULL, rest, rest_len);
    nf__ws_hs_free(ws);
}

static void client_read(nf_ws_conn_t *ws, char *data, size_t len)
{
    nf__ws_client_t *c = (nf__ws_client_t *)(void *)ws->ctx;
    const nf_ws_options_t *o = &ws->ctx->opts;
    hs_read_t rd;
    nf_http_limits_t lim;
    if (nf__ws_hs_read_begin(ws, data, len, &rd, &lim) != 0)
        return;
    nf_http_header_t h[MAX_HEADERS];
    nf_http_response_t res;
    int rc = nf_http_parse_response(rd.buf, rd.blen, rd.last, &res, h, MAX_HEADERS, &lim);
    if (rc == NF_EHTTP_INCOMPLETE) {
        if (!rd.have && nf__ws_hs_append(ws, data, len) != 0)
            nf__ws_drop(ws, -ENOMEM);
        else if (ws->hs->len > o->max_header)
            hs_fail(ws);
        else
            ws->hs->last = ws->hs->len;
        return;
    }
    if (rc < 0) {
        hs_fail(ws);
        return;
    }
    rd.head = (size_t)rc;
    size_t n = res.num_headers;
    ws->http_status = res.status;
    if (ws->version == 76) {
        client_read_hixie76(ws, c, &res, &rd);
        return;
    }
    const nf_http_header_t *ah = nf_http_count_headers(h, n, "Sec-WebSocket-Accept") == 1
                                     ? nf_http_find_header(h, n, "Sec-WebSocket-Accept")
                                     : NULL;
    if (res.status != 101 || !nf_http_headers_have_token(h, n, "Upgrade", "websocket") ||
        !nf_http_headers_have_token(h, n, "Connection", "upgrade") || !ah || ah->value_len != 28 ||
        memcmp(ah->value, c->accept, 28) != 0) {
        hs_fail(ws);
        return;
    }
    /* subprotocol: absent, or exactly one we offered */
    size_t np = nf_http_count_headers(h, n, "Sec-WebSocket-Protocol");
    ws->subprotocol = NULL;
    if (np > 1) {
        hs_fail(ws);
        return;
    }
    if (np == 1) {
        const nf_http_header_t *ph = nf_http_find_header(h, n, "Sec-WebSocket-Protocol");
        for (const char *const *sp = c->cfg.subprotocols; sp && *sp && !ws->subprotocol; sp++)
            if (strlen(*sp) == ph->value_len && memcmp(*sp, ph->value, ph->value_len) == 0)
                ws->subprotocol = *sp;
        if (!ws->subprotocol) {
            hs_fail(ws);
            return;
        }
    }
    /* extensions: only permessage-deflate, only when offered */
    size_t ne = nf_http_count_headers(h, n, "Sec-WebSocket-Extensions");
    const nf_http_header_t *eh = ne ? nf_http_find_header(h, n, "Sec-WebSocket-Extensions") : NULL;
    nf_ws_pmd_params_t agreed;
    int pmd = 0;
    if (ne > 1 || (eh && !o->deflate)) {
        hs_fail(ws);
        return;
    }
    if (o->deflate) {
        pmd = nf_ws_pmd_accept(&o->pmd, eh ? eh->value : "", eh ? eh->value_len : 0, &agreed);
        if (pmd < 0) {
            hs_fail(ws);
            return;
        }
    }
    if (!ws->path)
        ws->path = strdup(c->path);
    size_t rest_len;
    uint8_t *rest = nf__ws_hs_after(data, len, rd.have, rd.head, &rest_len);
    nf__ws_opened(ws, pmd == 1 ? &agreed : NULL, rest, rest_len);
    nf__ws_hs_free(ws);
}
