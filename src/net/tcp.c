/* netframe — TCP listeners, connections and connectors.
 *
 * This layer owns the write queue and the life cycle of every connection;
 * the backend only moves bytes. A connection's life:
 *
 *   accepted / connected ──> open ──(close asked, EOF, error)──> closing
 *   closing: the backend cancels what it has in flight and calls
 *   nf__conn_released(); the loop then closes the fd, frees the queue and
 *   delivers on_close exactly once, at a safe point of its iteration (never
 *   from inside a call the program made). */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/transport.h"
#include "net/resolve.h"

/* ---- socket options --------------------------------------------------------- */

static int set_nodelay(int fd, int on)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ? -errno : 0;
}

static int set_keepalive(int fd, int on, int idle_s)
{
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
        return -errno;
    if (on && idle_s > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) < 0)
        return -errno;
    return 0;
}

/* The one place a connection's socket gets its configured options: every
 * accepted socket, and every socket a connect creates (numeric host or
 * resolved name, first address or a later one). nodelay: 0 on, -1 off;
 * keepalive_s > 0: SO_KEEPALIVE with that idle time. The connection is
 * flagged inline only if SO_OOBINLINE was really set. */
static void sock_opts(nf_conn_t *c, int nodelay, int keepalive_s, bool oob_inline)
{
    if (oob_inline) {
        int one = 1;
        if (setsockopt(c->fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)) == 0)
            c->flags |= NF__C_OOBINLINE;
    }
    if (nodelay >= 0)
        set_nodelay(c->fd, 1);
    if (keepalive_s > 0)
        set_keepalive(c->fd, 1, keepalive_s);
}

/* ---- write queue -------------------------------------------------------- */

static nf__wseg_t *seg_get(nf_loop_t *loop)
{
    nf__freeblk_t *f = loop->seg_pool;
    if (f) {
        loop->seg_pool = f->next;
        loop->seg_pool_len--;
        return (nf__wseg_t *)(void *)f;
    }
    return malloc(sizeof(nf__wseg_t));
}

static void seg_put(nf_loop_t *loop, nf__wseg_t *s)
{
    if (loop->seg_pool_len < 1024) {
        nf__freeblk_t *f = (nf__freeblk_t *)(void *)s;
        f->next = loop->seg_pool;
        loop->seg_pool = f;
        loop->seg_pool_len++;
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
static void seg_release(nf_loop_t *loop, nf__wseg_t *s)
{
    if (s->buf->free_arg == (void *)loop && !s->buf->free_cb) {
        s->buf->free_arg = NULL;
        nf__chunk_put(loop, s->buf);
    } else {
        nf_buf_unref(s->buf);
    }
    seg_put(loop, s);
}

static void queue_free(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    nf__wseg_t *s = c->wq_head;
    while (s) {
        nf__wseg_t *n = s->next;
        seg_release(loop, s);
        s = n;
    }
    c->wq_head = c->wq_tail = NULL;
    c->wq_count = 0;
    c->queued = 0;
}

int nf__conn_iov(const nf_conn_t *c, struct iovec *iov, int max)
{
    int n = 0;
    for (const nf__wseg_t *s = c->wq_head; s && n < max; s = s->next, n++) {
        iov[n].iov_base = s->buf->base + s->off;
        iov[n].iov_len = s->buf->len - s->off;
    }
    return n;
}

static void schedule_flush(nf_conn_t *c)
{
    if (c->flags & (NF__C_IN_FLUSH | NF__C_CLOSING))
        return;
    if ((c->flags & (NF__C_SENDING | NF__C_CONNECTING)) && !c->stash)
        return;
    c->flags |= NF__C_IN_FLUSH;
    nf__handle_flush_later(c->loop, &c->hd);
    nf__kick(c->loop); /* event mode: a write from outside a step needs one */
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

static void close_start(nf_conn_t *c, int reason);

/* len more bytes would take the queue past its ceiling: refuse the write and
 * close now (a peer that never reads would never let a graceful end finish). */
static inline bool wq_over_max(const nf_conn_t *c, size_t len)
{
    return NF__UNLIKELY(len > c->wl.max || c->queued > c->wl.max - len);
}

static int wq_full(nf_conn_t *c)
{
    close_start(c, NF_EWQFULL);
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
        nf__wseg_t *s = seg_get(loop);
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
    nf__wseg_t *s = seg_get(c->loop);
    if (!s) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    s->buf = b;
    s->off = 0;
    s->next = NULL;
    if (c->wq_tail)
        c->wq_tail->next = s;
    else
        c->wq_head = s;
    c->wq_tail = s;
    c->wq_count++;
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

/* ---- events up: through the filters, or straight to the handler ---------- */

static inline void up_open(nf_conn_t *c)
{
    if (c->fbottom)
        nf__filter_open(c->fbottom);
    else if (c->h->on_open)
        c->h->on_open(c);
}

static inline void up_read(nf_conn_t *c, const char *data, size_t len)
{
    if (c->fbottom)
        nf__filter_read(c->fbottom, data, len);
    else
        c->h->on_read(c, data, len);
}

static inline void up_eof(nf_conn_t *c)
{
    if (c->fbottom)
        nf__filter_eof(c->fbottom);
    else if (c->h->on_eof)
        c->h->on_eof(c);
    else {
        c->flags |= NF__C_PEER_END;
        nf__transport_close(c, NF_HOW_END);
    }
}

static inline void up_drain(nf_conn_t *c)
{
    if (c->fbottom)
        nf__filter_drain(c->fbottom);
    else if (c->h->on_drain)
        c->h->on_drain(c);
}

/* ---- closing -------------------------------------------------------------- */

static void close_start(nf_conn_t *c, int reason)
{
    if (c->flags & NF__C_CLOSING)
        return;
    c->flags |= NF__C_CLOSING;
    c->reason = reason;
    if (c->flags & NF__C_IN_FLUSH) {
        nf__list_remove(&c->hd.qnode);
        c->flags &= ~NF__C_IN_FLUSH;
    }
    c->loop->ops->stop_conn(c);
}

/* Close once the queue is empty (graceful). */
static void end_start(nf_conn_t *c, int reason)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return;
    c->flags |= NF__C_END;
    c->reason = reason;
    if (c->queued == 0 && !(c->flags & NF__C_SENDING))
        close_start(c, reason);
}

void nf__conn_fail(nf_conn_t *c, int reason) { close_start(c, reason); }

static void stash_free(nf_conn_t *c);

void nf__conn_released(nf_conn_t *c)
{
    if (c->flags & NF__C_RELEASED)
        return;
    c->flags |= NF__C_RELEASED;
    nf__kick(c->loop);
    /* hd is free: a closing connection is never on the flush list */
    nf__handle_close_later(c->loop, &c->hd);
}

struct nf__connect_state {
    nf_timer_t timer; /* timeout_ms: resolution + every connect attempt */
    nf_addr_t addr;   /* the address being tried */
    struct nf__resolve *job;
    nf_addr_t *more; /* addresses to try after addr, in the resolver's order */
    unsigned nmore, next;
    int nodelay, keepalive_s; /* for every socket the connect creates */
    bool oob_inline;
};

static void connect_state_free(nf_conn_t *c)
{
    nf_timer_stop(&c->cs->timer);
    if (c->cs->job)
        nf__resolve_cancel(c->cs->job);
    free(c->cs->more);
    free(c->cs);
    c->cs = NULL;
}

static void finish_close(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    if (c->fd >= 0) {
        if (c->flags & NF__C_ABORT) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(c->fd);
        c->fd = -1;
    }
    queue_free(c);
    stash_free(c);
    if (c->cs)
        connect_state_free(c);
    if (c->flags & NF__C_OPEN)
        loop->stats.conns_open--;
    loop->stats.conns_closed++;
    nf_listener_t *l = c->listener;
    if (l) {
        l->conns--;
        if (l->paused && !l->closing && l->conns < l->max_conns) {
            l->paused = false;
            if (!l->backoff)
                loop->ops->pause_listener(l, false);
        }
    }
    nf__list_remove(&c->node); /* off loop->conns */
    loop->handles--;
    if (c->fbottom)
        nf__filters_close(c, c->reason);
    c->h->on_close(c, c->reason);
    if (c->released)
        c->released(c->released_arg);
    free(c->fbottom);
    free(c);
    if (loop->shutdown)
        nf__shutdown_check(loop);
}

static void conn_finish_close(nf__handle_t *h) { finish_close(nf__container_of(h, nf_conn_t, hd)); }

/* A listener released by the backend: close its socket, tell the program. */
static void listener_finish_close(nf__handle_t *h)
{
    nf_listener_t *l = nf__container_of(h, nf_listener_t, hd);
    nf_loop_t *loop = l->loop;
    if (l->fd >= 0)
        close(l->fd);
    loop->handles--;
    if (l->close_cb)
        l->close_cb(l);
    free(l);
}

/* The transport's end of a close request (after the filters). The reason is
 * NF_CLOSE_LOCAL unless an event already set one (EOF). */
void nf__transport_close(nf_conn_t *c, nf_close_how_t how)
{
    if (c->flags & NF__C_CLOSING)
        return;
    /* NF_EOF when the close follows the peer's FIN with no on_eof handler;
     * a reason a filter set before asking to end (TLS: NF_ETLS) is kept */
    int reason = (c->flags & NF__C_PEER_END) ? NF_EOF : (c->flags & NF__C_END) ? NF_CLOSE_LOCAL : c->reason;
    switch (how) {
    case NF_HOW_END: end_start(c, reason); break;
    case NF_HOW_ABORT: c->flags |= NF__C_ABORT; /* fall through */
    case NF_HOW_CLOSE: close_start(c, reason); break;
    }
}

static void close_req(nf_conn_t *c, nf_close_how_t how)
{
    if (c->flags & NF__C_CLOSING)
        return;
    if (c->ftop)
        nf__filter_close(c->ftop, how);
    else
        nf__transport_close(c, how);
}

NF__EXPORT void nf_conn_close(nf_conn_t *c) { close_req(c, NF_HOW_CLOSE); }
NF__EXPORT void nf_conn_abort(nf_conn_t *c) { close_req(c, NF_HOW_ABORT); }
NF__EXPORT void nf_conn_end(nf_conn_t *c)
{
    if (!(c->flags & NF__C_END))
        close_req(c, NF_HOW_END);
}

NF__EXPORT int nf_conn_is_closing(const nf_conn_t *c) { return (c->flags & (NF__C_CLOSING | NF__C_END)) != 0; }

static void do_shutdown(nf_conn_t *c)
{
    c->flags |= NF__C_SHUT_DONE;
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        close_start(c, -errno);
    else if (c->flags & NF__C_EOF)
        close_start(c, NF_EOF); /* both directions are done */
}

NF__EXPORT int nf_conn_shutdown(nf_conn_t *c)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return NF_ECLOSED;
    if (c->ftop)
        return nf__filter_shutdown(c->ftop);
    return nf__transport_shutdown(c);
}

int nf__transport_shutdown(nf_conn_t *c)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return NF_ECLOSED;
    if (c->flags & NF__C_SHUT_WR)
        return 0;
    c->flags |= NF__C_SHUT_WR;
    if (c->queued == 0 && !(c->flags & (NF__C_SENDING | NF__C_CONNECTING)))
        do_shutdown(c);
    return 0;
}

/* ---- completions from the backend ------------------------------------------- */

static void stash_push(nf_conn_t *c, nf_buf_t *b, size_t len)
{
    nf_loop_t *loop = c->loop;
    nf__wseg_t *s = seg_get(loop);
    if (!s) {
        close_start(c, -ENOMEM);
        return;
    }
    b->len = len;
    nf__rbuf_mark_kept(loop, b);
    s->buf = nf_buf_ref(b);
    s->off = 0;
    s->next = NULL;
    nf__wseg_t **pp = &c->stash;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
}

void nf__conn_unread(nf_conn_t *c, nf_buf_t *b)
{
    nf__wseg_t *s = seg_get(c->loop);
    if (!s) {
        close_start(c, -ENOMEM);
        return;
    }
    s->buf = nf_buf_ref(b);
    s->off = 0;
    s->next = c->stash;
    c->stash = s;
}

static void deliver(nf_conn_t *c, nf_buf_t *b, size_t len)
{
    nf_loop_t *loop = c->loop;
    loop->stats.bytes_in += len;
    loop->stats.reads++;
    b->len = len;
    loop->cur_read = b;
    if (c->flags & NF__C_RONCE) { /* one read was asked for: this is it */
        c->flags &= ~NF__C_RONCE;
        nf__conn_read_hold(c, NF__RHOLD_APP, true);
    }
    up_read(c, b->base, len);
    loop->cur_read = NULL;
}

void nf__conn_read(nf_conn_t *c, nf_buf_t *b, size_t len)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return; /* closing: input is dropped */
    if (NF__UNLIKELY((c->flags & NF__C_RPAUSED) || c->stash)) {
        stash_push(c, b, len); /* arrived after read_stop: keep it, in order */
        return;
    }
    deliver(c, b, len);
}

/* Delivers stashed reads (and a deferred EOF) while reading is on. */
static void stash_run(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    while (c->stash && !(c->flags & (NF__C_RPAUSED | NF__C_CLOSING | NF__C_END))) {
        nf__wseg_t *s = c->stash;
        c->stash = s->next;
        deliver(c, s->buf, s->buf->len);
        nf_buf_unref(s->buf);
        seg_put(loop, s);
    }
    if (!c->stash && (c->flags & NF__C_EOF_PENDING) && !(c->flags & (NF__C_RPAUSED | NF__C_CLOSING))) {
        c->flags &= ~NF__C_EOF_PENDING;
        nf__conn_read_end(c, 0);
    }
    /* the stash is out: only now read from the socket again (see read_hold) */
    if (!c->stash && (c->flags & NF__C_READING) &&
        !(c->flags & (NF__C_RPAUSED | NF__C_CLOSING | NF__C_END | NF__C_EOF)))
        loop->ops->read_start(c);
}

static void stash_free(nf_conn_t *c)
{
    while (c->stash) {
        nf__wseg_t *s = c->stash;
        c->stash = s->next;
        nf_buf_unref(s->buf);
        seg_put(c->loop, s);
    }
}

void nf__conn_read_end(nf_conn_t *c, int err)
{
    if (c->flags & NF__C_CLOSING)
        return;
    if (err < 0) {
        close_start(c, err);
        return;
    }
    if (NF__UNLIKELY((c->flags & NF__C_RPAUSED) || c->stash)) {
        c->flags |= NF__C_EOF_PENDING; /* after the stashed bytes, once resumed */
        return;
    }
    c->flags |= NF__C_EOF;
    if (c->flags & NF__C_END)
        return;
    if (c->flags & NF__C_SHUT_DONE) {
        close_start(c, NF_EOF);
        return;
    }
    up_eof(c);
}

NF__EXPORT nf_buf_t *nf_conn_keep_read(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    nf_buf_t *b = loop->cur_read;
    if (!b)
        return NULL;
    nf__rbuf_mark_kept(loop, b);
    return nf_buf_ref(b);
}

static void sent(nf_conn_t *c, ssize_t res)
{
    nf_loop_t *loop = c->loop;
    if (res < 0) {
        close_start(c, (int)res);
        return;
    }
    size_t left = (size_t)res;
    loop->stats.bytes_out += left;
    loop->stats.writes++;
    c->queued -= left;
    while (left > 0) {
        nf__wseg_t *s = c->wq_head;
        size_t avail = s->buf->len - s->off;
        if (left < avail) {
            s->off += left;
            break;
        }
        left -= avail;
        c->wq_head = s->next;
        if (!c->wq_head)
            c->wq_tail = NULL;
        c->wq_count--;
        seg_release(loop, s);
    }
    if (NF__UNLIKELY(c->flags & NF__C_RHOLD_WQ) && c->queued <= c->wl.low)
        nf__conn_read_hold(c, NF__RHOLD_WQ, false); /* drained enough: read again */
    if (c->queued > 0)
        return;
    if (c->flags & NF__C_END) {
        close_start(c, c->reason);
        return;
    }
    if ((c->flags & NF__C_SHUT_WR) && !(c->flags & NF__C_SHUT_DONE)) {
        do_shutdown(c);
        if (c->flags & NF__C_CLOSING)
            return;
    }
    up_drain(c);
}

void nf__conn_sent(nf_conn_t *c, ssize_t res)
{
    c->flags &= ~NF__C_SENDING;
    if (c->flags & NF__C_CLOSING)
        return;
    if (res == -EAGAIN || res == -EINTR)
        res = 0;
    sent(c, res);
    if (!(c->flags & NF__C_CLOSING) && c->queued > 0)
        schedule_flush(c);
}

/* The loop's flush point reached c (queued by schedule_flush): deliver reads
 * kept while paused, then hand the write queue to the backend. */
static void conn_flush(nf__handle_t *h)
{
    nf_conn_t *c = nf__container_of(h, nf_conn_t, hd);
    c->flags &= ~NF__C_IN_FLUSH;
    if (NF__UNLIKELY(c->stash || (c->flags & NF__C_EOF_PENDING)))
        stash_run(c);
    if (c->flags & (NF__C_CLOSING | NF__C_SENDING | NF__C_CONNECTING) || c->queued == 0)
        return;
    int r = c->loop->ops->send(c);
    if (r == NF__PENDING) {
        c->flags |= NF__C_SENDING;
        return;
    }
    sent(c, r); /* known at once: bytes written (maybe 0), or -errno */
}

static const nf__handle_ops_t conn_handle_ops = {
    .size = sizeof(nf__handle_ops_t),
    .flush = conn_flush,
    .finish_close = conn_finish_close,
};

static void listener_flush(nf__handle_t *h) { (void)h; /* a listener queues no output */ }

static const nf__handle_ops_t listener_handle_ops = {
    .size = sizeof(nf__handle_ops_t),
    .flush = listener_flush,
    .finish_close = listener_finish_close,
};

/* ---- accepted connections ----------------------------------------------------- */

static nf_conn_t *conn_new(nf_loop_t *loop, const nf_conn_handler_t *h, const nf_filter_spec_t *filters,
                           unsigned nfilters)
{
    nf_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->hd.ops = &conn_handle_ops;
    c->h = h;
    c->fd = -1;
    c->wl = (nf__wlimits_t){NF_WRITE_HIGH_DEFAULT, NF_WRITE_LOW_DEFAULT, NF_WRITE_MAX_DEFAULT};
    if (nfilters && nf__filters_new(c, filters, nfilters) != 0) {
        free(c);
        return NULL;
    }
    loop->handles++;
    nf__list_push_back(&loop->conns, &c->node);
    return c;
}

static void conn_opened(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    c->flags |= NF__C_OPEN;
    loop->stats.conns_open++;
    int err = c->fbottom ? nf__filters_init(c) : 0;
    if (err) {
        close_start(c, err);
        return;
    }
    up_open(c);
    if (c->flags & NF__C_CLOSING)
        return;
    err = loop->ops->start_conn(c);
    if (err) {
        close_start(c, err);
        return;
    }
    c->flags |= NF__C_READING;
    if (c->flags & NF__C_RPAUSED) /* read_stop from on_open */
        loop->ops->read_stop(c);
    if (c->queued > 0)
        schedule_flush(c);
    if ((c->flags & NF__C_SHUT_WR) && c->queued == 0 && !(c->flags & NF__C_SHUT_DONE))
        do_shutdown(c);
}

/* Out of file descriptors or memory: accepting again at once would fail
 * again at once (a level-triggered listener or a re-armed accept spins the
 * loop), and the connection waits in the backlog anyway. Pause accepting for
 * a while; connections closing meanwhile free what the next accept needs. */
#define NF__ACCEPT_BACKOFF_MS 100

static void backoff_end(nf_timer_t *t)
{
    nf_listener_t *l = t->data;
    l->backoff = false;
    if (!l->paused && !l->closing)
        l->loop->ops->pause_listener(l, false);
}

void nf__listener_accepted(nf_listener_t *l, int fd)
{
    nf_loop_t *loop = l->loop;
    if (fd < 0) {
        if ((fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) && !l->closing) {
            loop->stats.accept_errors++;
            if (!l->backoff) {
                l->backoff = true;
                if (!l->paused)
                    loop->ops->pause_listener(l, true);
                nf_timer_start(&l->backoff_timer, backoff_end, NF__ACCEPT_BACKOFF_MS, 0);
            }
        }
        return; /* other accept errors (ECONNABORTED...) are transient: keep accepting */
    }
    if (l->closing) {
        close(fd);
        return;
    }
    if (l->max_conns && l->conns >= l->max_conns) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        loop->stats.conns_refused++;
        return;
    }
    nf_conn_t *c = conn_new(loop, l->h, l->filters, l->nfilters);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->listener = l;
    sock_opts(c, l->nodelay, l->keepalive_s, l->oob_inline);
    c->wl = l->wl;
    l->conns++;
    loop->stats.conns_accepted++;
    if (l->max_conns && l->conns >= l->max_conns && l->on_limit == NF_LIMIT_PAUSE && !l->paused) {
        l->paused = true;
        if (!l->backoff)
            loop->ops->pause_listener(l, true);
    }
    conn_opened(c);
}

NF__EXPORT int nf_conn_adopt_ex(nf_loop_t *loop, int fd, const nf_adopt_config_t *cfg, nf_conn_t **out)
{
    if (fd < 0 || !cfg || !cfg->handler || !cfg->handler->on_read || !cfg->handler->on_close)
        return -EINVAL;
    nf_conn_t *c = conn_new(loop, cfg->handler, cfg->filters, cfg->filters ? cfg->nfilters : 0);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->data = cfg->data;
    c->released = cfg->on_released;
    c->released_arg = cfg->released_arg;
    if (cfg->oob_inline) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
        c->flags |= NF__C_OOBINLINE;
    }
    if (out)
        *out = c;
    loop->stats.conns_accepted++;
    conn_opened(c);
    return 0;
}

NF__EXPORT int nf_conn_adopt(nf_loop_t *loop, int fd, const nf_conn_handler_t *h, void *data, nf_conn_t **out)
{
    nf_adopt_config_t cfg = {.handler = h, .data = data};
    return nf_conn_adopt_ex(loop, fd, &cfg, out);
}

void nf__listener_released(nf_listener_t *l) { nf__handle_close_later(l->loop, &l->hd); }

/* ---- listeners -------------------------------------------------------------- */

NF__EXPORT int nf_listen(nf_loop_t *loop, const nf_listen_config_t *cfg, nf_listener_t **out)
{
    if (!cfg || !cfg->handler || !cfg->handler->on_close || !cfg->handler->on_read)
        return -EINVAL;
    nf__wlimits_t wl;
    if (nf__wlimits_from_cfg(&wl, cfg->write_high_water, cfg->write_low_water, cfg->write_max) != 0)
        return -EINVAL;
    nf_listener_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->wl = wl;
    l->hd.ops = &listener_handle_ops;
    int err = nf_addr_parse(&l->addr, cfg->host, cfg->port);
    if (err) {
        free(l);
        return err;
    }
    int fd = socket(l->addr.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = -errno;
        free(l);
        return err;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (cfg->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (l->addr.u.sa.sa_family == AF_INET6) {
        int v6only = cfg->ipv6_only ? 1 : 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (bind(fd, &l->addr.u.sa, l->addr.len) < 0 || listen(fd, cfg->backlog > 0 ? cfg->backlog : 511) < 0)
        goto fail;
    socklen_t len = sizeof(l->addr.u);
    getsockname(fd, &l->addr.u.sa, &len);
    l->addr.len = len;
    l->loop = loop;
    l->fd = fd;
    l->h = cfg->handler;
    l->data = cfg->data;
    l->max_conns = cfg->max_conns;
    l->on_limit = cfg->on_limit;
    l->nodelay = cfg->nodelay;
    l->keepalive_s = cfg->keepalive_s;
    l->filters = cfg->filters;
    l->nfilters = cfg->filters ? cfg->nfilters : 0;
    l->oob_inline = cfg->oob_inline != 0;
    nf_timer_init(loop, &l->backoff_timer);
    l->backoff_timer.data = l;
    err = loop->ops->start_listener(l);
    if (err) {
        close(fd);
        free(l);
        return err;
    }
    loop->handles++;
    nf__list_push_back(&loop->listeners, &l->lnode);
    *out = l;
    return 0;
fail:
    err = -errno;
    close(fd);
    free(l);
    return err;
}

NF__EXPORT int nf_listener_addr(const nf_listener_t *l, nf_addr_t *out)
{
    *out = l->addr;
    return 0;
}

NF__EXPORT unsigned nf_listener_conns(const nf_listener_t *l) { return l->conns; }

NF__EXPORT void nf_listener_close(nf_listener_t *l, void (*cb)(nf_listener_t *l))
{
    if (l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    nf_timer_stop(&l->backoff_timer);
    nf_loop_t *loop = l->loop;
    nf__list_remove(&l->lnode);
    /* Connections outlive their listener: forget it in each of them. */
    for (nf__list_t *n = loop->conns.next; n != &loop->conns; n = n->next) {
        nf_conn_t *c = nf__container_of(n, nf_conn_t, node);
        if (c->listener == l)
            c->listener = NULL;
    }
    l->conns = 0;
    loop->ops->stop_listener(l);
}

NF__EXPORT void *nf_listener_get_data(const nf_listener_t *l) { return l->data; }
NF__EXPORT void nf_listener_set_data(nf_listener_t *l, void *data) { l->data = data; }

/* ---- outbound connections --------------------------------------------------- */

const nf_addr_t *nf__conn_target(const nf_conn_t *c) { return &c->cs->addr; }

static void connect_timeout(nf_timer_t *t)
{
    nf_conn_t *c = t->data;
    close_start(c, -ETIMEDOUT);
}

/* A new socket for cs->addr, with the options, and its connect started;
 * a failure at once goes on to the next address, like a refused connect. */
static void connect_start(nf_conn_t *c)
{
    struct nf__connect_state *cs = c->cs;
    int err;
    for (;;) {
        int fd = socket(cs->addr.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = -errno;
        } else {
            c->fd = fd;
            sock_opts(c, cs->nodelay, cs->keepalive_s, cs->oob_inline);
            err = c->loop->ops->connect(c);
            if (err == NF__PENDING || err == 0)
                return;
            if (c->loop->ops->connect_reset)
                c->loop->ops->connect_reset(c);
            close(c->fd);
            c->fd = -1;
            c->flags &= ~NF__C_OOBINLINE; /* set again only if the next socket takes it */
        }
        if (cs->next >= cs->nmore)
            break;
        cs->addr = cs->more[cs->next++];
    }
    close_start(c, err);
}

void nf__conn_connected(nf_conn_t *c, int res)
{
    if (c->flags & NF__C_CLOSING)
        return;
    if (res < 0 && c->cs->next < c->cs->nmore) {
        /* Refused, unreachable...: the name has more addresses; the last
         * attempt's error is the one reported if none connects. */
        if (c->loop->ops->connect_reset)
            c->loop->ops->connect_reset(c);
        close(c->fd);
        c->fd = -1;
        c->flags &= ~NF__C_OOBINLINE;
        c->cs->addr = c->cs->more[c->cs->next++];
        connect_start(c);
        return;
    }
    c->flags &= ~NF__C_CONNECTING;
    if (res < 0) {
        close_start(c, res);
        return;
    }
    connect_state_free(c);
    c->loop->stats.conns_connected++;
    conn_opened(c);
}

void nf__conn_resolved(nf_conn_t *c, int err, const nf_addr_t *addrs, unsigned n)
{
    struct nf__connect_state *cs = c->cs;
    cs->job = NULL;
    if (c->flags & NF__C_CLOSING)
        return; /* closed meanwhile (the query is cancelled at the close's end) */
    if (err) {
        close_start(c, err);
        return;
    }
    if (n > 1) {
        cs->more = malloc((n - 1) * sizeof(*cs->more));
        if (cs->more) {
            memcpy(cs->more, addrs + 1, (n - 1) * sizeof(*cs->more));
            cs->nmore = n - 1;
        }
    }
    cs->addr = addrs[0];
    connect_start(c);
}

NF__EXPORT int nf_connect(nf_loop_t *loop, const nf_connect_config_t *cfg, nf_conn_t **out)
{
    nf__wlimits_t wl;
    /* an outbound connection does not pause by default: see tcp.h */
    if (!cfg || !cfg->handler || !cfg->handler->on_close || !cfg->handler->on_read || !cfg->host ||
        nf__wlimits_from_cfg(&wl, cfg->write_high_water ? cfg->write_high_water : NF_WRITE_LIMIT_OFF,
                             cfg->write_low_water, cfg->write_max) != 0)
        return -EINVAL;
    nf_conn_t *c = conn_new(loop, cfg->handler, cfg->filters, cfg->filters ? cfg->nfilters : 0);
    if (!c)
        return -ENOMEM;
    c->wl = wl;
    c->cs = calloc(1, sizeof(*c->cs));
    if (!c->cs) {
        nf__list_remove(&c->node);
        loop->handles--;
        free(c->fbottom);
        free(c);
        return -ENOMEM;
    }
    c->cs->nodelay = cfg->nodelay;
    c->cs->keepalive_s = cfg->keepalive_s;
    c->cs->oob_inline = cfg->oob_inline != 0;
    c->data = cfg->data;
    c->flags |= NF__C_CONNECTING;
    nf_timer_init(loop, &c->cs->timer);
    c->cs->timer.data = c;
    if (cfg->timeout_ms)
        nf_timer_start(&c->cs->timer, connect_timeout, cfg->timeout_ms, 0);
    *out = c;

    if (nf_addr_parse(&c->cs->addr, cfg->host, cfg->port) == 0)
        connect_start(c);
    else /* on the loop's resolver; an answer known at once is acted on inside */
        c->cs->job = nf__resolve_start(c, cfg->host, cfg->port);
    return 0;
}

/* ---- accessors ----------------------------------------------------------------- */

NF__EXPORT int nf_conn_local_addr(const nf_conn_t *c, nf_addr_t *out)
{
    socklen_t len = sizeof(out->u);
    if (getsockname(c->fd, &out->u.sa, &len) < 0)
        return -errno;
    out->len = len;
    return 0;
}

NF__EXPORT int nf_conn_peer_addr(const nf_conn_t *c, nf_addr_t *out)
{
    if (c->peer_override) {
        *out = *c->peer_override;
        return 0;
    }
    return nf_conn_transport_peer_addr(c, out);
}

NF__EXPORT int nf_conn_transport_peer_addr(const nf_conn_t *c, nf_addr_t *out)
{
    socklen_t len = sizeof(out->u);
    if (getpeername(c->fd, &out->u.sa, &len) < 0)
        return -errno;
    out->len = len;
    return 0;
}

NF__EXPORT int nf_conn_set_nodelay(nf_conn_t *c, int on) { return set_nodelay(c->fd, on ? 1 : 0); }
NF__EXPORT int nf_conn_set_keepalive(nf_conn_t *c, int on, int idle_s)
{
    return set_keepalive(c->fd, on ? 1 : 0, idle_s);
}
NF__EXPORT nf_loop_t *nf_conn_loop(const nf_conn_t *c) { return c->loop; }
NF__EXPORT nf_listener_t *nf_conn_listener(const nf_conn_t *c) { return c->listener; }
NF__EXPORT int nf_conn_fd(const nf_conn_t *c) { return c->fd; }
NF__EXPORT void *nf_conn_get_data(const nf_conn_t *c) { return c->data; }
NF__EXPORT void nf_conn_set_data(nf_conn_t *c, void *data) { c->data = data; }
NF__EXPORT void nf_conn_set_handler(nf_conn_t *c, const nf_conn_handler_t *h) { c->h = h; }

NF__EXPORT void nf_conn_walk(nf_loop_t *loop, void (*fn)(nf_conn_t *c, void *arg), void *arg)
{
    nf__list_t *n = loop->conns.next;
    while (n != &loop->conns) {
        nf__list_t *next = n->next;
        nf_conn_t *c = nf__container_of(n, nf_conn_t, node);
        if (!(c->flags & NF__C_CLOSING))
            fn(c, arg);
        n = next;
    }
}

/* ---- reading control, urgent data ---------------------------------------------- */

void nf__conn_read_hold(nf_conn_t *c, unsigned who, bool on)
{
    uint32_t bits = (uint32_t)(who & (NF__RHOLD_APP | NF__RHOLD_WQ | NF__RHOLD_FILTER)) << NF__C_RHOLD_SHIFT;
    uint32_t before = c->flags & NF__C_RHOLDS;
    uint32_t after = on ? before | bits : before & ~bits;
    if (before == after)
        return;
    c->flags = (c->flags & ~NF__C_RHOLDS) | after;
    if (!before) { /* the first hold: stop reading */
        c->flags |= NF__C_RPAUSED;
        if ((c->flags & NF__C_READING) && !(c->flags & NF__C_CLOSING))
            c->loop->ops->read_stop(c);
    } else if (!after) { /* the last hold gone: read again */
        c->flags &= ~NF__C_RPAUSED;
        if (c->flags & (NF__C_CLOSING | NF__C_END))
            return;
        /* Kept reads go first, from the loop; the socket is read again only
         * once they are out (stash_run): re-arming now would let a receive
         * race ahead and stash more behind them, a little more on every
         * pause, while a peer keeps the connection going in and out of holds. */
        if (c->stash || (c->flags & NF__C_EOF_PENDING))
            schedule_flush(c); /* delivered from the loop, not from inside this call */
        else if (c->flags & NF__C_READING)
            c->loop->ops->read_start(c);
    }
}

NF__EXPORT int nf_conn_read_stop(nf_conn_t *c)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return NF_ECLOSED;
    c->flags &= ~NF__C_RONCE;
    nf__conn_read_hold(c, NF__RHOLD_APP, true);
    return 0;
}

static int read_resume(nf_conn_t *c, bool once)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return NF_ECLOSED;
    if (once)
        c->flags |= NF__C_RONCE;
    else
        c->flags &= ~NF__C_RONCE;
    nf__conn_read_hold(c, NF__RHOLD_APP, false);
    if (!(c->flags & NF__C_RPAUSED) && (c->stash || (c->flags & NF__C_EOF_PENDING)))
        schedule_flush(c); /* delivered from the loop, not from inside this call */
    return 0;
}

NF__EXPORT int nf_conn_read_start(nf_conn_t *c) { return read_resume(c, false); }
NF__EXPORT int nf_conn_read_once(nf_conn_t *c) { return read_resume(c, true); }

NF__EXPORT int nf_conn_send_urgent(nf_conn_t *c, unsigned char byte)
{
    if (c->flags & (NF__C_CLOSING | NF__C_END | NF__C_SHUT_WR | NF__C_CONNECTING))
        return NF_ECLOSED;
    ssize_t r;
    do
        r = send(c->fd, &byte, 1, MSG_OOB | MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    c->loop->stats.bytes_out += 1;
    return 0;
}

void nf__conn_urgent(nf_conn_t *c)
{
    if (c->flags & (NF__C_CLOSING | NF__C_OOBINLINE) || !c->h->on_urgent)
        return;
    unsigned char byte;
    ssize_t r = recv(c->fd, &byte, 1, MSG_OOB | MSG_DONTWAIT);
    if (r == 1)
        c->h->on_urgent(c, byte);
}

bool nf__conn_wants_urgent(const nf_conn_t *c) { return c->h->on_urgent && !(c->flags & NF__C_OOBINLINE); }

/* ---- graceful shutdown ----------------------------------------------------------- */

struct nf__shutdown {
    nf_timer_t timer;
    void (*done)(nf_loop_t *loop, unsigned forced, void *arg);
    void *arg;
    unsigned forced;
    bool finished;
};

static void shutdown_finish(nf_loop_t *loop)
{
    struct nf__shutdown *sd = loop->shutdown;
    if (sd->finished)
        return;
    sd->finished = true;
    nf_timer_stop(&sd->timer);
    loop->shutdown = NULL;
    if (sd->done)
        sd->done(loop, sd->forced, sd->arg);
    free(sd);
}

void nf__shutdown_check(nf_loop_t *loop)
{
    if (nf__list_empty(&loop->conns))
        shutdown_finish(loop);
}

static void close_forced(nf_conn_t *c, void *arg)
{
    unsigned *n = arg;
    (*n)++;
    nf_conn_close(c);
}

static void shutdown_deadline(nf_timer_t *t)
{
    nf_loop_t *loop = t->loop;
    struct nf__shutdown *sd = loop->shutdown;
    if (nf__list_empty(&loop->conns)) {
        shutdown_finish(loop);
        return;
    }
    /* the deadline passed: close what is left; done follows the last close */
    nf_conn_walk(loop, close_forced, &sd->forced);
}

NF__EXPORT int nf_loop_shutdown(nf_loop_t *loop, uint64_t deadline_ms,
                                void (*done)(nf_loop_t *loop, unsigned forced, void *arg), void *arg)
{
    if (loop->shutdown)
        return -EALREADY;
    struct nf__shutdown *sd = calloc(1, sizeof(*sd));
    if (!sd)
        return -ENOMEM;
    sd->done = done;
    sd->arg = arg;
    loop->shutdown = sd;
    nf__list_t *n;
    while ((n = loop->listeners.next) != &loop->listeners)
        nf_listener_close(nf__container_of(n, nf_listener_t, lnode), NULL);
    nf_timer_init(loop, &sd->timer);
    /* With no connection left, done runs at once from the loop (timer 0). */
    nf_timer_start(&sd->timer, shutdown_deadline, nf__list_empty(&loop->conns) ? 0 : deadline_ms, 0);
    return 0;
}
