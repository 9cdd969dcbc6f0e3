/* netframe — a TCP connection's write queue: segments, copied and handed-over
 * writes, and the two-level write-queue limits (tcp.h). */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tcp_private.h"

/* ---- write queue -------------------------------------------------------- */

nf__wseg_t *nf__seg_get(nf_conn_t *c)
{
    nf__net_t *n = c->net;
    nf__freeblk_t *f = n->seg_pool;
    if (f) {
        n->seg_pool = f->next;
        n->seg_pool_len--;
        return (nf__wseg_t *)(void *)f;
    }
    return malloc(sizeof(nf__wseg_t));
}

void nf__seg_put(nf_conn_t *c, nf__wseg_t *s)
{
    nf__net_t *n = c->net;
    if (n->seg_pool_len < 1024) {
        nf__freeblk_t *f = (nf__freeblk_t *)(void *)s;
        f->next = n->seg_pool;
        n->seg_pool = f;
        n->seg_pool_len++;
    } else {
        free(s);
    }
}

/* A segment whose buffer came from the chunk pool may take more bytes at its
 * end; those are marked by pointing free_arg at the loop (chunks have no
 * free_cb, so free_arg is otherwise unused). */
static bool seg_appendable(const nf_loop_t *loop, const nf__wseg_t *s)
{
    return s->buf->free_arg == (void *)loop && !s->buf->free_cb && s->buf->refs == 1;
}

/* Drops a segment and its buffer: copy chunks go back to the pool. */
void nf__seg_release(nf_conn_t *c, nf__wseg_t *s)
{
    nf_loop_t *loop = c->loop;
    if (s->buf->free_arg == (void *)loop && !s->buf->free_cb) {
        s->buf->free_arg = NULL;
        nf__chunk_put(loop, s->buf);
    } else {
        nf_buf_unref(s->buf);
    }
    nf__seg_put(c, s);
}

void nf__wq_free(nf_conn_t *c)
{
    nf__wseg_t *s = c->wq_head;
    while (s) {
        nf__wseg_t *n = s->next;
        nf__seg_release(c, s);
        s = n;
    }
    c->wq_head = c->wq_tail = NULL;
    c->wq_count = 0;
    c->queued = 0;
}

int nf__conn_iov(const nf__io_t *io, struct iovec *iov, int max, size_t *queued)
{
    const nf_conn_t *c = nf__conn_of(io);
    if (queued)
        *queued = c->queued;
    int n = 0;
    for (const nf__wseg_t *s = c->wq_head; s && n < max; s = s->next, n++) {
        iov[n].iov_base = s->buf->base + s->off;
        iov[n].iov_len = s->buf->len - s->off;
    }
    return n;
}

/* A send in flight (or a connect) flushes when it completes; kept reads
 * are delivered from the flush point at once. */
static void schedule_flush(nf_conn_t *c)
{
    if ((c->flags & (NF__C_SENDING | NF__C_CONNECTING)) && !c->stash)
        return;
    nf__io_flush_later(&c->io);
}

void nf__conn_schedule_flush(nf_conn_t *c) { schedule_flush(c); }

static int write_check(const nf_conn_t *c)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END | NF__C_SHUT_WR))
        return NF_ECLOSED;
    return 0;
}

/* ---- write-queue limits (tcp.h) ---------------------------------------------- */

int nf__wlimits_from_cfg(nf__wlimits_t *out, size_t high, size_t low, size_t max)
{
    nf__wlimits_t w;
    w.high = high ? high : NF_WRITE_HIGH_DEFAULT; /* NF_WRITE_LIMIT_OFF is SIZE_MAX: off */
    if (low == NF_WRITE_LIMIT_OFF)
        w.low = 0; /* resume once empty */
    else if (low)
        w.low = low;
    else if (high)
        w.low = w.high == SIZE_MAX ? 0 : w.high / 4;
    else
        w.low = NF_WRITE_LOW_DEFAULT;
    w.max = max ? max : NF_WRITE_MAX_DEFAULT;
    if (w.high != SIZE_MAX && w.low >= w.high)
        return -EINVAL;
    *out = w;
    return 0;
}

/* The queue grew: over the high-water mark, reading waits for it to drain. */
static inline void wq_grew(nf_conn_t *c)
{
    if (NF__UNLIKELY(c->queued > c->wl.high) && !(c->flags & NF__C_RHOLD_WQ))
        nf__conn_read_hold(c, NF__RHOLD_WQ, true);
}

/* Holds or releases reading as the queue stands now (limits changed). */
static void wq_recheck(nf_conn_t *c)
{
    if (c->queued > c->wl.high)
        nf__conn_read_hold(c, NF__RHOLD_WQ, true);
    else if (c->queued <= c->wl.low || c->wl.high == SIZE_MAX)
        nf__conn_read_hold(c, NF__RHOLD_WQ, false);
}

/* len more bytes would take the queue past its ceiling: refuse the write and
 * close now (a peer that never reads would never let a graceful end finish). */
static inline bool wq_over_max(const nf_conn_t *c, size_t len)
{
    return NF__UNLIKELY(len > c->wl.max || c->queued > c->wl.max - len);
}

static int wq_full(nf_conn_t *c)
{
    nf__conn_fail(c, NF_EWQFULL);
    return NF_EWQFULL;
}

void nf__conn_set_wlimits(nf_conn_t *c, const nf__wlimits_t *wl)
{
    c->wl = *wl;
    wq_recheck(c);
}

NF__EXPORT int nf_conn_set_write_limits(nf_conn_t *c, size_t high_water, size_t low_water, size_t ceiling)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return NF_ECLOSED;
    if (high_water && low_water >= high_water)
        return -EINVAL;
    nf__wlimits_t w = {high_water ? high_water : SIZE_MAX, low_water, ceiling ? ceiling : SIZE_MAX};
    nf__conn_set_wlimits(c, &w);
    return 0;
}

/* Links segment s, holding b from its start, at the tail of c's queue. */
static inline void wq_append(nf_conn_t *c, nf__wseg_t *s, nf_buf_t *b)
{
    s->buf = b;
    s->off = 0;
    s->next = NULL;
    if (c->wq_tail)
        c->wq_tail->next = s;
    else
        c->wq_head = s;
    c->wq_tail = s;
    c->wq_count++;
}

static int transport_write_copy(nf_conn_t *c, const void *data, size_t len)
{
    int err = write_check(c);
    if (err)
        return err;
    if (len == 0)
        return 0;
    if (wq_over_max(c, len))
        return wq_full(c);
    nf_loop_t *loop = c->loop;
    const char *p = data;
    size_t left = len;
    nf__wseg_t *t = c->wq_tail;
    if (t && seg_appendable(loop, t) && t->buf->cap > t->buf->len) {
        size_t room = t->buf->cap - t->buf->len;
        size_t n = left < room ? left : room;
        memcpy(t->buf->base + t->buf->len, p, n);
        t->buf->len += n;
        p += n;
        left -= n;
    }
    if (left > 0) {
        nf__wseg_t *s = nf__seg_get(c);
        nf_buf_t *b = s ? nf__chunk_get(loop, left) : NULL;
        if (!b) {
            free(s);
            /* bytes already appended stay queued: report the failure */
            c->queued += len - left;
            wq_grew(c);
            schedule_flush(c);
            return -ENOMEM;
        }
        memcpy(b->base, p, left);
        b->len = left;
        b->free_arg = loop;
        wq_append(c, s, b);
    }
    c->queued += len;
    wq_grew(c);
    schedule_flush(c);
    return 0;
}

int nf__transport_write(nf_conn_t *c, nf_buf_t *b)
{
    int err = write_check(c);
    if (err || b->len == 0) {
        nf_buf_unref(b);
        return err;
    }
    if (wq_over_max(c, b->len)) {
        nf_buf_unref(b);
        return wq_full(c);
    }
    nf__wseg_t *s = nf__seg_get(c);
    if (!s) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    wq_append(c, s, b);
    c->queued += b->len;
    wq_grew(c);
    schedule_flush(c);
    return 0;
}

NF__EXPORT int nf_conn_write(nf_conn_t *c, const void *data, size_t len)
{
    if (NF__LIKELY(!c->ftop))
        return transport_write_copy(c, data, len);
    int err = write_check(c);
    if (err)
        return err;
    nf_buf_t *b = nf_buf_new(len);
    if (!b)
        return -ENOMEM;
    memcpy(b->base, data, len);
    b->len = len;
    return nf__filter_write(c->ftop, b);
}

NF__EXPORT int nf_conn_write_buf(nf_conn_t *c, nf_buf_t *b)
{
    if (NF__LIKELY(!c->ftop))
        return nf__transport_write(c, b);
    int err = write_check(c);
    if (err) {
        nf_buf_unref(b);
        return err;
    }
    return nf__filter_write(c->ftop, b);
}

NF__EXPORT size_t nf_conn_queued(const nf_conn_t *c) { return c->queued; }

NF__EXPORT size_t nf_conn_queued_writes(const nf_conn_t *c) { return c->wq_count; }
