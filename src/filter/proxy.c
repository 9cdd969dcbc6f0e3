/* netframe — the PROXY protocol filter (see proxy.h).
 *
 * Until the header is complete the filter swallows the transport's on_open
 * and reads: nothing above it has seen the connection. Reads are parsed in
 * place when nothing is pending; otherwise (a header cut across reads) the
 * bytes gather in a buffer of at most max_header bytes (inline for v1 and
 * small v2 headers). Once the header is parsed: the peer address is set, the
 * timer stops, on_open goes up, then the bytes after the header in that same
 * read.
 *
 * Public filter API only; conns_closed_proxy is the filter's own per-loop
 * record (nf__loop_ext), added to nf_loop_stats. */
#include <stdlib.h>
#include <string.h>

#include "base/export.h"
#include "core/internal.h"
#include "netframe/filter.h"
#include "netframe/proxy.h"

#define INLINE_CAP 232 /* v1 (107) and v2 IPv6 with a few TLVs */

enum { P_WAIT = 0, P_DONE, P_NOHEADER };

/* The loop's PROXY counters. */
typedef struct proxy_loop {
    nf__loop_ext_t x;
    uint64_t closed; /* conns_closed_proxy */
} proxy_loop_t;

static void proxy_loop_stats(const nf__loop_ext_t *x, nf_loop_stats_t *out)
{
    out->conns_closed_proxy += ((const proxy_loop_t *)x)->closed;
}

static const nf__loop_ext_ops_t proxy_loop_ops = {.name = "proxy", .stats = proxy_loop_stats};

typedef struct pstate {
    nf_timer_t timer;
    proxy_loop_t *lx; /* the loop's counters */
    int phase;
    char *acc; /* gathered bytes of an incomplete header */
    size_t acc_len, acc_cap;
    nf_proxy_header_t hdr;
    char inl[INLINE_CAP];
} pstate_t;

static const nf_proxy_config_t k_defaults;

static const nf_proxy_config_t *cfg_of(const nf_filter_t *f) { return f->config ? f->config : &k_defaults; }

static size_t max_of(const nf_proxy_config_t *cfg)
{
    size_t m = cfg->max_header ? cfg->max_header : NF_PROXY_MAX_HEADER;
    if (m < NF_PROXY_V2_MIN)
        m = NF_PROXY_V2_MIN;
    if (m > NF_PROXY_V2_MIN + 65535)
        m = NF_PROXY_V2_MIN + 65535;
    return m;
}

/* The gathering buffer must hold every byte of any header we accept. */
static size_t need_cap(const nf_proxy_config_t *cfg)
{
    size_t m = max_of(cfg);
    return m > NF_PROXY_V1_MAX ? m : NF_PROXY_V1_MAX;
}

static void fail(nf_filter_t *f, int err);

static void timed_out(nf_timer_t *t) { fail(t->data, NF_EPROXY_TIMEOUT); }

static int p_init(nf_filter_t *f)
{
    pstate_t *st = f->state;
    nf_loop_t *loop = nf_conn_loop(f->conn);
    nf_timer_init(loop, &st->timer); /* on_close runs even when init fails */
    st->timer.data = f;
    st->acc = st->inl;
    st->acc_cap = sizeof(st->inl);
    if (f->down) /* the header is the first thing on the wire */
        return -EINVAL;
    st->lx = (proxy_loop_t *)nf__loop_ext(loop, &proxy_loop_ops, sizeof(proxy_loop_t));
    return st->lx ? 0 : -ENOMEM;
}

static void p_open(nf_filter_t *f)
{
    pstate_t *st = f->state;
    const nf_proxy_config_t *cfg = cfg_of(f);
    /* on_open is held until the header is complete */
    nf_timer_start(&st->timer, timed_out, cfg->timeout_ms ? cfg->timeout_ms : 5000, 0);
}

static void release(pstate_t *st)
{
    if (st->acc != st->inl)
        free(st->acc);
    st->acc = st->inl;
    st->acc_cap = sizeof(st->inl);
    st->acc_len = 0;
}

/* The program's view of the rest of the first read: bytes in a buffer of
 * their own, so nf_conn_keep_read() returns exactly them. When the program
 * paused reading in on_open, they go back to the transport, delivered first
 * on nf_conn_read_start. */
static void deliver_rest(nf_filter_t *f, const char *data, size_t len)
{
    nf_conn_t *c = f->conn;
    if (len == 0 || nf_conn_is_closing(c))
        return;
    nf_buf_t *b = nf_buf_new(len);
    if (!b) {
        nf_filter_fail(f, -ENOMEM);
        return;
    }
    memcpy(b->base, data, len);
    b->len = len;
    if (nf_filter_read_paused(f)) {
        nf_filter_unread(f, b);
        nf_buf_unref(b);
        return;
    }
    bool once = nf_filter_read_once(f) != 0;
    nf_buf_t *saved = nf_filter_set_read_buf(f, b);
    nf_filter_read_up(f, b->base, len);
    nf_filter_set_read_buf(f, saved);
    nf_buf_unref(b);
    if (once) /* nf_conn_read_once from on_open: this was the one read */
        nf_conn_read_stop(c);
}

/* The header is complete: open up, then the bytes after it. */
static void complete(nf_filter_t *f, const char *rest, size_t rest_len)
{
    pstate_t *st = f->state;
    nf_timer_stop(&st->timer);
    st->phase = P_DONE;
    if (st->hdr.command == NF_PROXY_CMD_PROXY && (st->hdr.family == AF_INET || st->hdr.family == AF_INET6))
        nf_filter_set_peer_addr(f, &st->hdr.src);
    nf_filter_open_up(f);
    deliver_rest(f, rest, rest_len);
}

static void fail(nf_filter_t *f, int err)
{
    pstate_t *st = f->state;
    nf_timer_stop(&st->timer);
    release(st);
    st->lx->closed++;
    nf_filter_fail(f, err);
}

/* Optional mode and no header: what was gathered, then this read, go up. */
static void pass_through(nf_filter_t *f, const char *data, size_t len)
{
    pstate_t *st = f->state;
    nf_timer_stop(&st->timer);
    st->phase = P_NOHEADER;
    nf_filter_open_up(f);
    if (st->acc_len) {
        /* the gathered prefix and this read, as one read */
        size_t n = st->acc_len + len;
        char *tmp = malloc(n);
        if (!tmp) {
            nf_filter_fail(f, -ENOMEM);
            return;
        }
        memcpy(tmp, st->acc, st->acc_len);
        memcpy(tmp + st->acc_len, data, len);
        release(st);
        deliver_rest(f, tmp, n);
        free(tmp);
        return;
    }
    deliver_rest(f, data, len);
}

static void p_read(nf_filter_t *f, const char *data, size_t len)
{
    pstate_t *st = f->state;
    if (st->phase != P_WAIT) {
        nf_filter_read_up(f, data, len);
        return;
    }
    const nf_proxy_config_t *cfg = cfg_of(f);
    size_t max = max_of(cfg);
    int r;
    if (st->acc_len == 0) { /* the common case: the whole header in one read */
        r = nf_proxy_parse(data, len, cfg->versions, max, &st->hdr);
        if (r > 0) {
            complete(f, data + r, len - (size_t)r);
            return;
        }
        if (r == NF_EPROXY_NOHEADER && cfg->optional) {
            pass_through(f, data, len);
            return;
        }
        if (r != NF_EPROXY_INCOMPLETE) {
            fail(f, r);
            return;
        }
        /* incomplete: every byte of this read belongs to the header */
        if (len > st->acc_cap) {
            size_t cap = need_cap(cfg);
            char *n = malloc(cap);
            if (!n) {
                fail(f, -ENOMEM);
                return;
            }
            st->acc = n;
            st->acc_cap = cap;
        }
        memcpy(st->acc, data, len);
        st->acc_len = len;
        return;
    }
    /* more of a header cut across reads: gather what can belong to it */
    size_t room = need_cap(cfg) - st->acc_len, take = len < room ? len : room;
    if (st->acc_len + take > st->acc_cap) {
        char *n = malloc(need_cap(cfg));
        if (!n) {
            fail(f, -ENOMEM);
            return;
        }
        memcpy(n, st->acc, st->acc_len);
        st->acc = n;
        st->acc_cap = need_cap(cfg);
    }
    size_t old = st->acc_len;
    memcpy(st->acc + old, data, take);
    st->acc_len += take;
    r = nf_proxy_parse(st->acc, st->acc_len, cfg->versions, max, &st->hdr);
    if (r > 0) {
        size_t used = (size_t)r - old; /* header bytes that came in this read */
        release(st);
        complete(f, data + used, len - used);
        return;
    }
    if (r == NF_EPROXY_NOHEADER && cfg->optional) {
        st->acc_len = old; /* pass_through joins the prefix with the whole read */
        pass_through(f, data, len);
        return;
    }
    if (r == NF_EPROXY_INCOMPLETE && take < len)
        r = NF_EPROXY_TOOLARGE; /* cannot happen: the parser decides within need_cap bytes */
    if (r != NF_EPROXY_INCOMPLETE)
        fail(f, r);
}

static void p_eof(nf_filter_t *f)
{
    pstate_t *st = f->state;
    if (st->phase == P_WAIT) {
        fail(f, NF_EPROXY_INCOMPLETE);
        return;
    }
    nf_filter_eof_up(f);
}

static void p_close(nf_filter_t *f, int reason)
{
    (void)reason;
    pstate_t *st = f->state;
    nf_timer_stop(&st->timer);
    release(st);
}

NF__EXPORT const nf_filter_ops_t nf_proxy_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "proxy",
    .state_size = sizeof(pstate_t),
    .init = p_init,
    .on_open = p_open,
    .on_read = p_read,
    .on_eof = p_eof,
    .on_close = p_close,
};

NF__EXPORT int nf_proxy_get(const nf_conn_t *c, const nf_proxy_header_t **out)
{
    nf_filter_t *f = nf_conn_filter(c, &nf_proxy_filter);
    if (!f)
        return -ENOENT;
    pstate_t *st = f->state;
    if (st->phase == P_WAIT)
        return NF_EPROXY_INCOMPLETE;
    if (st->phase == P_NOHEADER)
        return NF_EPROXY_NOHEADER;
    *out = &st->hdr;
    return 0;
}
