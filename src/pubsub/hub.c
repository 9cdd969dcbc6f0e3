/* netframe — the pub/sub hub of one loop: topics in a hash table, one small
 * node per subscription (on its topic's list, its connection's list and a
 * hash of (topic, connection) for O(1) unsubscribe), and the fan-out of one
 * shared, framed buffer (docs/pubsub.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/export.h"
#include "base/list.h"
#include "netframe/flow.h" /* NF_ESLOW */
#include "netframe/ws_codec.h"
#include "pubsub/pubsub_internal.h"

/* Kinds of subscribers: the shared frame; the shared frame, compressed once
 * (permessage-deflate with no context takeover on our side); a copy framed
 * for it (client, Hixie-76); TCP. */
enum { K_WS_SHARED = 0, K_WS_DEFLATE, K_WS_COPY, K_TCP };

/* A connection that subscribed: WebSocket ones allocate it at their first
 * subscription (attached to the connection); TCP ones have it in
 * nf_pubsub_filter's state. */
typedef struct nf__ps_conn {
    nf_ws_attach_t att; /* WebSocket: the close hook */
    nf_pubsub_t *hub;   /* NULL: not (or no longer) in a hub */
    void *handle;       /* nf_ws_conn_t *, or nf_filter_t * (TCP) */
    const void *key;    /* what `except` names: the nf_ws_conn_t * or nf_conn_t * */
    nf__list_t subs;    /* nf__ps_sub_t.cnode */
    nf__list_t hnode;   /* in the hub's conns */
    uint8_t kind;
} nf__ps_conn_t;

typedef struct nf__ps_iter {
    nf__list_t *next;
    struct nf__ps_iter *up;
} nf__ps_iter_t;

typedef struct nf__ps_topic {
    struct nf__ps_topic *hnext;
    uint64_t hash;
    nf__list_t subs; /* nf__ps_sub_t.tnode, in subscription order */
    unsigned nsubs;
    nf__ps_iter_t *iters; /* deliveries walking subs now (innermost first) */
    uint64_t published, delivered, dropped;
    size_t len;
    char name[];
} nf__ps_topic_t;

typedef struct nf__ps_sub {
    nf__list_t tnode;
    nf__list_t cnode;
    struct nf__ps_sub *hnext;
    nf__ps_topic_t *topic;
    nf__ps_conn_t *conn;
    uint32_t seq; /* the hub's publish count when it subscribed */
} nf__ps_sub_t;

struct nf_pubsub {
    nf_loop_t *loop;
    nf_pubsub_config_t cfg;
    nf__ps_topic_t **tb; /* topics, chained; size tmask + 1 (a power of 2) */
    size_t tmask, ntopics;
    nf__ps_sub_t **sb; /* subscriptions by (topic, conn) */
    size_t smask, nsubs;
    nf__list_t conns; /* nf__ps_conn_t.hnode */
    uint32_t seq;
    nf_ws_pmd_t *z; /* compresses each message once (made when first needed) */
};

/* ---- hashing ------------------------------------------------------------ */

uint64_t nf__ps_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static size_t sub_slot(const nf__ps_topic_t *t, const nf__ps_conn_t *c, size_t mask)
{
    uint64_t x = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)c * 0xc2b2ae3d27d4eb4full;
    return (size_t)(x ^ (x >> 29)) & mask;
}

/* Doubles a chained table when it holds more entries than slots. */
static int grow_topics(nf_pubsub_t *ps)
{
    size_t n = (ps->tmask + 1) * 2;
    nf__ps_topic_t **nt = calloc(n, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i <= ps->tmask; i++) {
        for (nf__ps_topic_t *t = ps->tb[i], *next; t; t = next) {
            next = t->hnext;
            t->hnext = nt[t->hash & (n - 1)];
            nt[t->hash & (n - 1)] = t;
        }
    }
    free(ps->tb);
    ps->tb = nt;
    ps->tmask = n - 1;
    return 0;
}

static int grow_subs(nf_pubsub_t *ps)
{
    size_t n = (ps->smask + 1) * 2;
    nf__ps_sub_t **nt = calloc(n, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i <= ps->smask; i++) {
        for (nf__ps_sub_t *s = ps->sb[i], *next; s; s = next) {
            next = s->hnext;
            size_t k = sub_slot(s->topic, s->conn, n - 1);
            s->hnext = nt[k];
            nt[k] = s;
        }
    }
    free(ps->sb);
    ps->sb = nt;
    ps->smask = n - 1;
    return 0;
}

static nf__ps_topic_t *topic_find(const nf_pubsub_t *ps, const char *name, size_t len, uint64_t h)
{
    for (nf__ps_topic_t *t = ps->tb[h & ps->tmask]; t; t = t->hnext)
        if (t->hash == h && t->len == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

static nf__ps_sub_t **sub_ref(nf_pubsub_t *ps, const nf__ps_topic_t *t, const nf__ps_conn_t *c)
{
    nf__ps_sub_t **pp = &ps->sb[sub_slot(t, c, ps->smask)];
    while (*pp && ((*pp)->topic != t || (*pp)->conn != c))
        pp = &(*pp)->hnext;
    return pp;
}

/* A topic is freed once it has no subscriber and no delivery walks it. */
static void topic_maybe_free(nf_pubsub_t *ps, nf__ps_topic_t *t)
{
    if (t->nsubs || t->iters)
        return;
    nf__ps_topic_t **pp = &ps->tb[t->hash & ps->tmask];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    ps->ntopics--;
    free(t);
}

static void sub_remove(nf_pubsub_t *ps, nf__ps_sub_t *s)
{
    nf__ps_topic_t *t = s->topic;
    /* deliveries walking this topic step over the node */
    for (nf__ps_iter_t *it = t->iters; it; it = it->up)
        if (it->next == &s->tnode)
            it->next = s->tnode.next;
    nf__list_remove(&s->tnode);
    nf__list_remove(&s->cnode);
    nf__ps_sub_t **pp = sub_ref(ps, t, s->conn);
    *pp = s->hnext;
    ps->nsubs--;
    t->nsubs--;
    free(s);
    topic_maybe_free(ps, t);
}

/* Releases every subscription of c and takes it out of the hub. */
static void conn_release(nf__ps_conn_t *c)
{
    nf_pubsub_t *ps = c->hub;
    if (!ps)
        return;
    nf__list_t *n;
    while ((n = c->subs.next) != &c->subs)
        sub_remove(ps, nf__container_of(n, nf__ps_sub_t, cnode));
    nf__list_remove(&c->hnode);
    c->hub = NULL;
}

static void ws_att_close(nf_ws_conn_t *ws, nf_ws_attach_t *a)
{
    (void)ws;
    nf__ps_conn_t *c = (nf__ps_conn_t *)a;
    conn_release(c);
    free(c);
}

static const nf_ws_attach_ops_t ws_att_ops = {.size = sizeof(nf_ws_attach_ops_t), .on_close = ws_att_close};

/* ---- the hub ------------------------------------------------------------ */

NF__EXPORT int nf_pubsub_new(nf_loop_t *loop, const nf_pubsub_config_t *cfg, nf_pubsub_t **out)
{
    nf_pubsub_t *ps = calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    if (cfg)
        ps->cfg = *cfg;
    if (!ps->cfg.max_queued)
        ps->cfg.max_queued = NF_WRITE_HIGH_DEFAULT;
    ps->loop = loop;
    ps->tmask = 15;
    ps->smask = 15;
    ps->tb = calloc(ps->tmask + 1, sizeof *ps->tb);
    ps->sb = calloc(ps->smask + 1, sizeof *ps->sb);
    nf__list_init(&ps->conns);
    if (!ps->tb || !ps->sb) {
        free(ps->tb);
        free(ps->sb);
        free(ps);
        return -ENOMEM;
    }
    if (ps->cfg.group) {
        int rc = nf__ps_group_join(ps->cfg.group, ps->cfg.index, ps, loop);
        if (rc) {
            free(ps->tb);
            free(ps->sb);
            free(ps);
            return rc;
        }
    }
    *out = ps;
    return 0;
}

NF__EXPORT void nf_pubsub_free(nf_pubsub_t *ps)
{
    if (!ps)
        return;
    if (ps->cfg.group)
        nf__ps_group_leave(ps->cfg.group, ps->cfg.index);
    nf__list_t *n;
    while ((n = ps->conns.next) != &ps->conns) {
        nf__ps_conn_t *c = nf__container_of(n, nf__ps_conn_t, hnode);
        conn_release(c);
        if (c->kind != K_TCP) { /* ours: detach and free */
            nf_ws_conn_attach(c->handle, NULL);
            free(c);
        }
    }
    nf_ws_pmd_free(ps->z);
    free(ps->tb);
    free(ps->sb);
    free(ps);
}

static int topic_check(const char *topic, size_t len)
{
    return len == 0 || len > NF_PUBSUB_TOPIC_MAX || !topic ? -EINVAL : 0;
}

static int subscribe(nf_pubsub_t *ps, nf__ps_conn_t *c, const char *name, size_t len)
{
    uint64_t h = nf__ps_hash(name, len);
    nf__ps_topic_t *t = topic_find(ps, name, len, h);
    if (t && *sub_ref(ps, t, c))
        return -EALREADY;
    if (!t) {
        if (ps->ntopics + 1 > ps->tmask + 1 && grow_topics(ps) != 0)
            return -ENOMEM;
        t = calloc(1, sizeof *t + len);
        if (!t)
            return -ENOMEM;
        t->hash = h;
        t->len = len;
        memcpy(t->name, name, len);
        nf__list_init(&t->subs);
        t->hnext = ps->tb[h & ps->tmask];
        ps->tb[h & ps->tmask] = t;
        ps->ntopics++;
    }
    if (ps->nsubs + 1 > ps->smask + 1 && grow_subs(ps) != 0) {
        topic_maybe_free(ps, t);
        return -ENOMEM;
    }
    nf__ps_sub_t *s = malloc(sizeof *s);
    if (!s) {
        topic_maybe_free(ps, t);
        return -ENOMEM;
    }
    s->topic = t;
    s->conn = c;
    s->seq = ps->seq;
    nf__list_push_back(&t->subs, &s->tnode);
    nf__list_push_back(&c->subs, &s->cnode);
    nf__ps_sub_t **pp = &ps->sb[sub_slot(t, c, ps->smask)];
    s->hnext = *pp;
    *pp = s;
    t->nsubs++;
    ps->nsubs++;
    if (!c->hub) {
        c->hub = ps;
        nf__list_push_back(&ps->conns, &c->hnode);
    }
    return 0;
}

static int unsubscribe(nf_pubsub_t *ps, nf__ps_conn_t *c, const char *name, size_t len)
{
    if (!c || c->hub != ps)
        return -ENOENT;
    nf__ps_topic_t *t = topic_find(ps, name, len, nf__ps_hash(name, len));
    nf__ps_sub_t *s = t ? *sub_ref(ps, t, c) : NULL;
    if (!s)
        return -ENOENT;
    sub_remove(ps, s);
    return 0;
}

static nf__ps_conn_t *ws_conn(const nf_ws_conn_t *ws)
{
    nf_ws_attach_t *a = nf_ws_conn_attached(ws);
    return a && a->ops == &ws_att_ops ? (nf__ps_conn_t *)a : NULL;
}

NF__EXPORT int nf_pubsub_subscribe(nf_pubsub_t *ps, nf_ws_conn_t *ws, const char *topic, size_t len)
{
    int rc = topic_check(topic, len);
    if (rc)
        return rc;
    if (!nf_ws_conn_is_open(ws))
        return -ENOTCONN;
    if (nf_ws_conn_loop(ws) != ps->loop)
        return -EXDEV;
    nf__ps_conn_t *c = ws_conn(ws);
    if (nf_ws_conn_attached(ws) && !c)
        return -EBUSY; /* another layer */
    if (c && c->hub && c->hub != ps)
        return -EBUSY;
    int fresh = !c;
    if (fresh) {
        c = calloc(1, sizeof *c);
        if (!c)
            return -ENOMEM;
        c->att.ops = &ws_att_ops;
        c->handle = ws;
        c->key = ws;
        nf__list_init(&c->subs);
        /* one frame for all: unmasked RFC 6455 / HyBi server frames */
        c->kind = nf_ws_conn_server(ws) && nf_ws_conn_version(ws) != 76 ? K_WS_SHARED : K_WS_COPY;
        if (c->kind == K_WS_SHARED && nf_ws_conn_deflate_shareable(ws))
            c->kind = K_WS_DEFLATE;
        rc = nf_ws_conn_attach(ws, &c->att);
        if (rc) {
            free(c);
            return rc;
        }
    }
    rc = subscribe(ps, c, topic, len);
    if (rc && fresh) {
        nf_ws_conn_attach(ws, NULL);
        free(c);
    }
    return rc;
}

NF__EXPORT int nf_pubsub_unsubscribe(nf_pubsub_t *ps, nf_ws_conn_t *ws, const char *topic, size_t len)
{
    int rc = topic_check(topic, len);
    return rc ? rc : unsubscribe(ps, ws_conn(ws), topic, len);
}

/* ---- TCP subscribers: the filter ------------------------------------------ */

static int tf_init(nf_filter_t *f)
{
    nf__ps_conn_t *c = f->state;
    c->handle = f;
    c->key = f->conn;
    c->kind = K_TCP;
    nf__list_init(&c->subs);
    return 0;
}

static void tf_close(nf_filter_t *f, int reason)
{
    (void)reason;
    conn_release(f->state);
}

NF__EXPORT const nf_filter_ops_t nf_pubsub_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "pubsub",
    .state_size = sizeof(nf__ps_conn_t),
    .init = tf_init,
    .on_close = tf_close,
};

static nf__ps_conn_t *tcp_conn(const nf_conn_t *c)
{
    nf_filter_t *f = nf_conn_filter(c, &nf_pubsub_filter);
    return f ? f->state : NULL;
}

NF__EXPORT int nf_pubsub_subscribe_tcp(nf_pubsub_t *ps, nf_conn_t *tc, const char *topic, size_t len)
{
    int rc = topic_check(topic, len);
    if (rc)
        return rc;
    nf__ps_conn_t *c = tcp_conn(tc);
    if (!c)
        return -ENOENT;
    if (nf_conn_is_closing(tc))
        return -ENOTCONN;
    if (nf_conn_loop(tc) != ps->loop)
        return -EXDEV;
    if (c->hub && c->hub != ps)
        return -EBUSY;
    return subscribe(ps, c, topic, len);
}

NF__EXPORT int nf_pubsub_unsubscribe_tcp(nf_pubsub_t *ps, nf_conn_t *tc, const char *topic, size_t len)
{
    int rc = topic_check(topic, len);
    return rc ? rc : unsubscribe(ps, tcp_conn(tc), topic, len);
}

/* ---- delivery ----------------------------------------------------------- */

/* What one publish hands to the subscribers of one loop. */
typedef struct delivery {
    nf_pubsub_t *ps;
    nf__ps_topic_t *t;
    unsigned opcode;
    nf_buf_t *frame;        /* the shared WebSocket frame */
    const uint8_t *payload; /* inside frame */
    size_t len;
    nf_buf_t *tcp; /* what TCP subscribers get; made at the first one */
    int tcp_failed;
    nf_buf_t *zframe; /* the compressed frame; made at the first K_WS_DEFLATE */
    int z_done;
} delivery_t;

/* The message compressed once (RSV1 frame), or the plain frame when it is
 * too short to be worth it or compression failed. */
static nf_buf_t *deflate_buf(delivery_t *d)
{
    if (!d->z_done) {
        d->z_done = 1;
        nf_pubsub_t *ps = d->ps;
        if (!ps->z) {
            nf_ws_pmd_params_t prm = {1, 1, 15, 15};
            nf_ws_pmd_config_t zc = {.server_no_context_takeover = 1};
            ps->z = nf_ws_pmd_new(NF_WS_SERVER, &prm, &zc);
        }
        const uint8_t *out;
        size_t olen;
        if (ps->z && nf_ws_pmd_should_compress(ps->z, d->len) &&
            nf_ws_pmd_compress(ps->z, d->payload, d->len, &out, &olen) == 0) {
            size_t hl = nf_ws_header_size(olen, 0);
            nf_buf_t *b = nf_buf_new(hl + olen);
            if (b) {
                nf_ws_write_header((uint8_t *)b->base, hl, NF_WS_FIN | NF_WS_RSV1, d->opcode, olen, NULL);
                memcpy(b->base + hl, out, olen);
                b->len = hl + olen;
                d->zframe = b;
            }
        }
    }
    return d->zframe ? d->zframe : d->frame;
}

static void unref_parent(void *base, void *arg)
{
    (void)base;
    nf_buf_unref(arg);
}

static nf_buf_t *tcp_buf(delivery_t *d)
{
    if (!d->tcp && !d->tcp_failed) {
        if (d->ps->cfg.framer)
            d->tcp = d->ps->cfg.framer(d->ps->cfg.framer_arg, d->opcode, d->payload, d->len);
        else
            d->tcp = nf_buf_wrap((void *)(uintptr_t)d->payload, d->len, unref_parent, nf_buf_ref(d->frame));
        if (!d->tcp) {
            if (!d->ps->cfg.framer)
                nf_buf_unref(d->frame);
            d->tcp_failed = 1;
        }
    }
    return d->tcp;
}

static nf_conn_t *conn_tcp(const nf__ps_conn_t *c)
{
    return c->kind == K_TCP ? ((nf_filter_t *)c->handle)->conn : nf_ws_conn_tcp(c->handle);
}

/* 1: queued for c; 0: dropped (slow, a filter's policy, an error). */
static int deliver_one(delivery_t *d, nf__ps_conn_t *c)
{
    nf_pubsub_t *ps = d->ps;
    nf_conn_t *tc = conn_tcp(c);
    nf_buf_t *b = NULL;
    size_t len;
    switch (c->kind) {
    case K_TCP:
        if (!(b = tcp_buf(d)))
            return 0;
        len = b->len;
        break;
    case K_WS_DEFLATE:
        b = deflate_buf(d);
        len = b->len;
        break;
    case K_WS_SHARED:
        b = d->frame;
        len = b->len;
        break;
    default: len = d->len; break;
    }
    if (ps->cfg.max_queued != NF_WRITE_LIMIT_OFF) {
        size_t q = nf_conn_queued(tc);
        if (q && q + len > ps->cfg.max_queued) {
            if (ps->cfg.slow == NF_PUBSUB_SLOW_CLOSE) {
                nf_filter_t *f = c->kind == K_TCP ? c->handle : nf_conn_filter(tc, &nf_ws_filter);
                if (f)
                    nf_filter_fail(f, NF_ESLOW);
            }
            return 0;
        }
    }
    int rc;
    switch (c->kind) {
    case K_WS_SHARED:
    case K_WS_DEFLATE: rc = nf_ws_send_buf(c->handle, nf_buf_ref(b)); break;
    case K_WS_COPY: rc = nf_ws_send(c->handle, d->opcode, d->payload, d->len); break;
    default: rc = nf_filter_write_down(c->handle, nf_buf_ref(b)); break;
    }
    return rc == NF_WRITE_OK || rc == NF_WRITE_HELD;
}

/* Walks t's subscribers; safe against (un)subscribes, closes and nested
 * publishes from inside (the framer, a buffer's free callback). */
static int deliver(delivery_t *d, const void *except)
{
    nf_pubsub_t *ps = d->ps;
    nf__ps_topic_t *t = d->t;
    uint32_t seq = ++ps->seq;
    nf__ps_iter_t it = {.next = t->subs.next, .up = t->iters};
    int n = 0;
    t->iters = &it;
    t->published++;
    while (it.next != &t->subs) {
        nf__ps_sub_t *s = nf__container_of(it.next, nf__ps_sub_t, tnode);
        it.next = s->tnode.next;
        /* subscribed during this walk: not for this message */
        if ((int32_t)(s->seq - seq) >= 0 || s->conn->key == except)
            continue;
        if (deliver_one(d, s->conn)) {
            t->delivered++;
            n++;
        } else {
            t->dropped++;
        }
    }
    t->iters = it.up;
    if (d->tcp)
        nf_buf_unref(d->tcp);
    if (d->zframe)
        nf_buf_unref(d->zframe);
    topic_maybe_free(ps, t);
    return n;
}

static int opcode_check(unsigned opcode) { return opcode == NF_WS_OP_TEXT || opcode == NF_WS_OP_BINARY ? 0 : -EINVAL; }

/* Frames data once into a buffer of its own (one hub, no group). */
static nf_buf_t *frame_local(unsigned opcode, const void *data, size_t len, size_t *hlen)
{
    size_t hl = nf_ws_header_size(len, 0);
    nf_buf_t *b = nf_buf_new(hl + len);
    if (!b)
        return NULL;
    nf_ws_write_header((uint8_t *)b->base, hl, NF_WS_FIN, opcode, len, NULL);
    if (len)
        memcpy(b->base + hl, data, len);
    b->len = hl + len;
    *hlen = hl;
    return b;
}

static void msg_buf_gone(void *base, void *arg)
{
    (void)base;
    nf__ps_msg_unref(arg);
}

int nf__ps_deliver_msg(nf_pubsub_t *ps, nf__ps_msg_t *m, const void *except)
{
    nf__ps_topic_t *t = topic_find(ps, m->topic, m->tlen, m->hash);
    if (!t)
        return 0;
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    nf_buf_t *b = nf_buf_wrap(m->frame, m->hlen + m->len, msg_buf_gone, m);
    if (!b) {
        nf__ps_msg_unref(m);
        t->dropped += t->nsubs;
        return -ENOMEM;
    }
    delivery_t d = {.ps = ps, .t = t, .opcode = m->opcode, .frame = b, .payload = m->frame + m->hlen, .len = m->len};
    int n = deliver(&d, except);
    nf_buf_unref(b);
    return n;
}

NF__EXPORT int nf_pubsub_publish_except(nf_pubsub_t *ps, const char *topic, size_t tlen, unsigned opcode,
                                        const void *data, size_t len, const void *except)
{
    int rc = topic_check(topic, tlen);
    if (rc || (rc = opcode_check(opcode)) != 0 || (len && !data))
        return rc ? rc : -EINVAL;
    uint64_t h = nf__ps_hash(topic, tlen);
    if (ps->cfg.group) {
        nf__ps_msg_t *m = nf__ps_msg_new(topic, tlen, h, opcode, data, len);
        if (!m)
            return -ENOMEM;
        m->origin = ps;
        int n = nf__ps_deliver_msg(ps, m, except);
        nf__ps_group_post(ps->cfg.group, m, ps);
        nf__ps_msg_unref(m);
        return n;
    }
    nf__ps_topic_t *t = topic_find(ps, topic, tlen, h);
    if (!t)
        return 0;
    size_t hl;
    nf_buf_t *b = frame_local(opcode, data, len, &hl);
    if (!b) {
        t->dropped += t->nsubs;
        return -ENOMEM;
    }
    delivery_t d = {.ps = ps, .t = t, .opcode = opcode, .frame = b, .payload = (uint8_t *)b->base + hl, .len = len};
    int n = deliver(&d, except);
    nf_buf_unref(b);
    return n;
}

NF__EXPORT int nf_pubsub_publish(nf_pubsub_t *ps, const char *topic, size_t tlen, unsigned opcode, const void *data,
                                 size_t len)
{
    return nf_pubsub_publish_except(ps, topic, tlen, opcode, data, len, NULL);
}

/* ---- counts --------------------------------------------------------------- */

NF__EXPORT unsigned nf_pubsub_count(const nf_pubsub_t *ps, const char *topic, size_t len)
{
    if (topic_check(topic, len))
        return 0;
    const nf__ps_topic_t *t = topic_find(ps, topic, len, nf__ps_hash(topic, len));
    return t ? t->nsubs : 0;
}

NF__EXPORT size_t nf_pubsub_topics(const nf_pubsub_t *ps)
{
    size_t n = 0; /* a topic kept only while a delivery walks it is not counted */
    for (size_t i = 0; i <= ps->tmask; i++)
        for (const nf__ps_topic_t *t = ps->tb[i]; t; t = t->hnext)
            n += t->nsubs > 0;
    return n;
}

NF__EXPORT int nf_pubsub_topic_stats(const nf_pubsub_t *ps, const char *topic, size_t len, nf_pubsub_topic_stats_t *out)
{
    if (topic_check(topic, len))
        return -ENOENT;
    const nf__ps_topic_t *t = topic_find(ps, topic, len, nf__ps_hash(topic, len));
    if (!t)
        return -ENOENT;
    out->subscribers = t->nsubs;
    out->published = t->published;
    out->delivered = t->delivered;
    out->dropped = t->dropped;
    return 0;
}
