/* netframe — a TCP connection's life: events up through the filters, closing,
 * the backend's completions, reads kept while paused, read holds and urgent
 * data, accessors. A connection's life:
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

#include "net/tcp_private.h"
#include "net/resolve.h"

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
    if (!nf__io_close_begin(&c->io))
        return;
    c->reason = reason;
    c->loop->ops->stop_conn(&c->io);
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

void nf__conn_released(nf_conn_t *c) { nf__io_released(&c->io); }

static void finish_close(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    nf__net_t *n = c->net;
    if (c->fd >= 0) {
        if (c->flags & NF__C_ABORT) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(c->fd);
        c->fd = -1;
    }
    nf__wq_free(c);
    stash_free(c);
    if (c->cs)
        nf__connect_state_free(c);
    if (c->flags & NF__C_OPEN)
        n->st.conns_open--;
    n->st.conns_closed++;
    nf_listener_t *l = c->listener;
    if (l) {
        l->conns--;
        if ((l->flags & NF__L_PAUSED) && !(l->flags & NF__L_CLOSING) && l->conns < l->max_conns) {
            l->flags &= ~NF__L_PAUSED;
            if (!(l->flags & NF__L_BACKOFF))
                loop->ops->pause_listener(&l->io, false);
        }
    }
    nf__list_remove(&c->node); /* off the record's conns */
    loop->handles--;
    if (c->fbottom)
        nf__filters_close(c, c->reason);
    c->h->on_close(c, c->reason);
    if (c->released)
        c->released(c->released_arg);
    free(c->fbottom);
    free(c);
    if (n->shutdown)
        nf__shutdown_check(loop);
}

static void conn_finish_close(nf__handle_t *h) { finish_close(nf__container_of(h, nf_conn_t, hd)); }

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

void nf__conn_do_shutdown(nf_conn_t *c)
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
        nf__conn_do_shutdown(c);
    return 0;
}

/* ---- completions from the backend ------------------------------------------- */

static void stash_push(nf_conn_t *c, nf_buf_t *b, size_t len)
{
    nf_loop_t *loop = c->loop;
    nf__wseg_t *s = nf__seg_get(c);
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
    nf__wseg_t *s = nf__seg_get(c);
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
    nf__net_t *n = c->net;
    n->st.bytes_in += len;
    n->st.reads++;
    b->len = len;
    n->cur_read = b;
    if (c->flags & NF__C_RONCE) { /* one read was asked for: this is it */
        c->flags &= ~NF__C_RONCE;
        nf__conn_read_hold(c, NF__RHOLD_APP, true);
    }
    up_read(c, b->base, len);
    n->cur_read = NULL;
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
        nf__seg_put(c, s);
    }
    if (!c->stash && (c->flags & NF__C_EOF_PENDING) && !(c->flags & (NF__C_RPAUSED | NF__C_CLOSING))) {
        c->flags &= ~NF__C_EOF_PENDING;
        nf__conn_read_end(c, 0);
    }
    /* the stash is out: only now read from the socket again (see read_hold) */
    if (!c->stash && (c->flags & NF__C_READING) &&
        !(c->flags & (NF__C_RPAUSED | NF__C_CLOSING | NF__C_END | NF__C_EOF)))
        loop->ops->read_start(&c->io);
}

static void stash_free(nf_conn_t *c)
{
    while (c->stash) {
        nf__wseg_t *s = c->stash;
        c->stash = s->next;
        nf_buf_unref(s->buf);
        nf__seg_put(c, s);
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
    nf_buf_t *b = c->net->cur_read;
    if (!b)
        return NULL;
    nf__rbuf_mark_kept(loop, b);
    return nf_buf_ref(b);
}

static void sent(nf_conn_t *c, ssize_t res)
{
    if (res < 0) {
        close_start(c, (int)res);
        return;
    }
    size_t left = (size_t)res;
    nf__net_t *n = c->net;
    n->st.bytes_out += left;
    n->st.writes++;
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
        nf__seg_release(c, s);
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
        nf__conn_do_shutdown(c);
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
        nf__conn_schedule_flush(c);
}

/* The loop's flush point reached c (queued by schedule_flush): deliver reads
 * kept while paused, then hand the write queue to the backend. */
static void conn_flush(nf__handle_t *h)
{
    nf_conn_t *c = nf__container_of(h, nf_conn_t, hd);
    nf__io_flushing(&c->io);
    if (NF__UNLIKELY(c->stash || (c->flags & NF__C_EOF_PENDING)))
        stash_run(c);
    if (c->flags & (NF__C_CLOSING | NF__C_SENDING | NF__C_CONNECTING) || c->queued == 0)
        return;
    int r = c->loop->ops->send(&c->io);
    if (r == NF__PENDING) {
        c->flags |= NF__C_SENDING;
        return;
    }
    sent(c, r); /* known at once: bytes written (maybe 0), or -errno */
}

/* ---- the up-calls the backends make (core/backend.h) ------------------------------ */

static void io_read(nf__io_t *io, nf_buf_t *b, size_t len) { nf__conn_read(nf__conn_of(io), b, len); }
static void io_read_end(nf__io_t *io, int err) { nf__conn_read_end(nf__conn_of(io), err); }
/* A receive may be armed again: no close, no hold, no kept reads waiting
 * (stash_run re-arms once they are out). */
static bool io_read_wanted(const nf__io_t *io)
{
    const nf_conn_t *c = nf__conn_of(io);
    return !(c->flags & (NF__C_CLOSING | NF__C_RPAUSED)) && !c->stash;
}
static void io_connected(nf__io_t *io, int res) { nf__conn_connected(nf__conn_of(io), res); }
static void io_sent(nf__io_t *io, ssize_t res) { nf__conn_sent(nf__conn_of(io), res); }
static void io_released(nf__io_t *io) { nf__conn_released(nf__conn_of(io)); }
static void io_schedule_flush(nf__io_t *io) { nf__conn_schedule_flush(nf__conn_of(io)); }
static nf_buf_t *io_head_ref(const nf__io_t *io) { return nf_buf_ref(nf__conn_of(io)->wq_head->buf); }
static const struct sockaddr *io_target(const nf__io_t *io, socklen_t *len)
{
    const nf_addr_t *a = nf__conn_target(nf__conn_of(io));
    *len = a->len;
    return &a->u.sa;
}
static void io_urgent(nf__io_t *io) { nf__conn_urgent(nf__conn_of(io)); }
static bool io_wants_urgent(const nf__io_t *io) { return nf__conn_wants_urgent(nf__conn_of(io)); }

static const nf__io_ops_t conn_io_ops = {
    .hd = {.size = sizeof(nf__handle_ops_t), .flush = conn_flush, .finish_close = conn_finish_close},
    .released = io_released,
    .schedule_flush = io_schedule_flush,
    .read = io_read,
    .read_end = io_read_end,
    .read_wanted = io_read_wanted,
    .connected = io_connected,
    .sent = io_sent,
    .iov = nf__conn_iov,
    .head_ref = io_head_ref,
    .target = io_target,
    .urgent = io_urgent,
    .wants_urgent = io_wants_urgent,
};

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

NF__EXPORT int nf_conn_set_nodelay(nf_conn_t *c, int on) { return nf__sock_nodelay(c->fd, on ? 1 : 0); }
NF__EXPORT int nf_conn_set_keepalive(nf_conn_t *c, int on, int idle_s)
{
    return nf__sock_keepalive(c->fd, on ? 1 : 0, idle_s);
}
NF__EXPORT nf_loop_t *nf_conn_loop(const nf_conn_t *c) { return c->loop; }
NF__EXPORT nf_listener_t *nf_conn_listener(const nf_conn_t *c) { return c->listener; }
NF__EXPORT int nf_conn_fd(const nf_conn_t *c) { return c->fd; }
NF__EXPORT void *nf_conn_get_data(const nf_conn_t *c) { return c->data; }
NF__EXPORT void nf_conn_set_data(nf_conn_t *c, void *data) { c->data = data; }
NF__EXPORT void nf_conn_set_handler(nf_conn_t *c, const nf_conn_handler_t *h) { c->h = h; }

NF__EXPORT void nf_conn_walk(nf_loop_t *loop, void (*fn)(nf_conn_t *c, void *arg), void *arg)
{
    nf__net_t *net = nf__net_find(loop);
    if (!net)
        return; /* no connection ever */
    nf__list_t *n = net->conns.next;
    while (n != &net->conns) {
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
        if ((c->flags & NF__C_READING) && !(c->flags & NF__C_CLOSING))
            c->loop->ops->read_stop(&c->io);
    } else if (!after) { /* the last hold gone: read again */
        if (c->flags & (NF__C_CLOSING | NF__C_END))
            return;
        /* Kept reads go first, from the loop; the socket is read again only
         * once they are out (stash_run): re-arming now would let a receive
         * race ahead and stash more behind them, a little more on every
         * pause, while a peer keeps the connection going in and out of holds. */
        if (c->stash || (c->flags & NF__C_EOF_PENDING))
            nf__conn_schedule_flush(c); /* delivered from the loop, not from inside this call */
        else if (c->flags & NF__C_READING)
            c->loop->ops->read_start(&c->io);
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
        nf__conn_schedule_flush(c); /* delivered from the loop, not from inside this call */
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
    c->net->st.bytes_out += 1;
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

/* ---- construction (accepted, adopted and outbound connections) ---------------- */

nf_conn_t *nf__conn_new(nf_loop_t *loop, const nf_conn_handler_t *h, const nf_filter_spec_t *filters, unsigned nfilters)
{
    nf__net_t *n = nf__net_make(loop);
    nf_conn_t *c = n ? calloc(1, sizeof(*c)) : NULL;
    if (!c)
        return NULL;
    c->loop = loop;
    c->net = n;
    c->hd.ops = &conn_io_ops.hd;
    c->h = h;
    c->fd = -1;
    c->wl = (nf__wlimits_t){NF_WRITE_HIGH_DEFAULT, NF_WRITE_LOW_DEFAULT, NF_WRITE_MAX_DEFAULT};
    if (nfilters && nf__filters_new(c, filters, nfilters) != 0) {
        free(c);
        return NULL;
    }
    loop->handles++;
    nf__list_push_back(&n->conns, &c->node);
    return c;
}

void nf__conn_opened(nf_conn_t *c)
{
    nf_loop_t *loop = c->loop;
    c->flags |= NF__C_OPEN;
    c->net->st.conns_open++;
    int err = c->fbottom ? nf__filters_init(c) : 0;
    if (err) {
        close_start(c, err);
        return;
    }
    up_open(c);
    if (c->flags & NF__C_CLOSING)
        return;
    err = loop->ops->start_conn(&c->io);
    if (err) {
        close_start(c, err);
        return;
    }
    c->flags |= NF__C_READING;
    if (c->flags & NF__C_RPAUSED) /* read_stop from on_open */
        loop->ops->read_stop(&c->io);
    if (c->queued > 0)
        nf__conn_schedule_flush(c);
    if ((c->flags & NF__C_SHUT_WR) && c->queued == 0 && !(c->flags & NF__C_SHUT_DONE))
        nf__conn_do_shutdown(c);
}
