/* netframe — io_uring: listeners and connections.
 *
 * Reads: one multishot receive per connection, selecting buffers from the
 * loop's ring of provided buffers (group 0). The kernel takes a buffer only
 * when bytes arrive, so an idle connection holds none. After the read
 * callback the buffer goes straight back to the ring (or, if the program
 * kept it, a fresh one takes its slot). When the ring runs dry the kernel
 * ends the multishot receive with -ENOBUFS; the connection is then re-armed
 * at the end of the batch, after buffers were returned, so no byte is lost
 * (they wait in the socket).
 *
 * Kernels without a buffer ring or multishot receive (or uring_no_bufring)
 * use the fallback: a one-shot poll for readability, then the read loop both
 * engines share (sockio.c) into the loop's scratch buffer.
 *
 * Accepts: multishot accept, or one-shot accepts re-armed one at a time when
 * the listener has a connection limit (so a paused listener has nothing in
 * flight and the kernel's backlog holds the waiting connections).
 *
 * Sends: one send (or sendmsg for several queued buffers) in flight per
 * connection; prepared when the loop flushes, submitted with the wait in one
 * io_uring_enter per iteration. A queued buffer of at least zc_send_min bytes
 * goes out as a zero-copy send (SEND_ZC): the kernel then posts two
 * completions, the result and, once it no longer reads the memory, a
 * notification (IORING_CQE_F_NOTIF); the request holds a reference on the
 * buffer until that notification, so the write's memory outlives the send.
 *
 * Every operation in flight is counted on its object; a closing object is
 * released only when its count is zero, so no completion ever touches freed
 * memory. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/uring/uring.h"

/* Defined by kernels since 6.2; liburing 2.3's header predates them. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* A zero-copy send in flight: lives until its notification. */
struct zc_req {
    nf__io_t *c;
    nf_buf_t *b; /* a reference, dropped at the notification */
};

/* A connection's storage for an in-flight send (c->be), made at its first
 * sendmsg or zero-copy send. */
struct send_state {
    struct msghdr mh;
    struct iovec iov[16];
    struct zc_req *zc; /* the zero-copy send in flight (to cancel it) */
};

/* ---- listeners ------------------------------------------------------------------ */

static void arm_accept(nf__io_t *l)
{
    nf__uring_t *u = U(l->loop);
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    if (u->ms_accept && !(l->flags & NF__IO_ACCEPT_ONE))
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, nf__be_tag(l, OP_ACCEPT));
    l->be_flags |= B_ACCEPT;
    l->be_inflight++;
}

int nf__uring_start_listener(nf__io_t *l)
{
    arm_accept(l);
    return 0;
}

void nf__uring_pause_listener(nf__io_t *l, bool paused)
{
    /* A limited listener uses one-shot accepts: pausing is not re-arming. */
    if (!paused && !(l->be_flags & B_ACCEPT) && !(l->flags & NF__IO_CLOSING))
        arm_accept(l);
}

void nf__uring_stop_listener(nf__io_t *l)
{
    nf__uring_t *u = U(l->loop);
    if (l->be_flags & B_ACCEPT) {
        struct io_uring_sqe *sqe = nf__uring_sqe(u);
        io_uring_prep_cancel64(sqe, nf__be_tag(l, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, nf__be_tag(l, OP_LCANCEL));
        l->be_inflight++;
    }
    if (l->be_inflight == 0)
        nf__io_up(l)->released(l);
    nf__kick(l->loop);
}

static void on_accept(nf__io_t *l, struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        l->be_flags &= ~B_ACCEPT;
        l->be_inflight--;
    }
    if (l->flags & NF__IO_CLOSING) {
        if (cqe->res >= 0)
            close(cqe->res);
        if (l->be_inflight == 0)
            nf__io_up(l)->released(l);
        return;
    }
    nf__io_up(l)->accepted(l, cqe->res);
    if (!(l->be_flags & B_ACCEPT) && !(l->flags & (NF__IO_CLOSING | NF__IO_HOLDS)))
        arm_accept(l);
}

/* ---- connections ------------------------------------------------------------------- */

static void arm_recv(nf__io_t *c)
{
    nf__uring_t *u = U(c->loop);
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    /* A connection that takes urgent bytes apart reads through poll + read:
     * a pending receive would consume the urgent byte's place in the stream
     * before POLLPRI is seen (and POLLPRI alone is not woken on 6.x). */
    bool urgent = nf__io_up(c)->wants_urgent(c);
    if (u->bufring && !urgent) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_RECV));
        c->be_flags |= B_RECV;
    } else {
        io_uring_prep_poll_add(sqe, c->fd, POLLIN | POLLRDHUP | (urgent ? POLLPRI : 0));
        io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_POLL));
        c->be_flags |= B_POLL;
    }
    nf__uring_sqe_file(u, c, sqe);
    c->be_inflight++;
}

int nf__uring_start_conn(nf__io_t *c)
{
    if (!U(c->loop)->bufring || nf__io_up(c)->wants_urgent(c)) {
        int err = nf__set_nonblock(c->fd, true);
        if (err)
            return err;
    }
    arm_recv(c);
    return 0;
}

int nf__uring_connect(nf__io_t *c)
{
    nf__uring_t *u = U(c->loop);
    socklen_t len;
    const struct sockaddr *a = nf__io_up(c)->target(c, &len);
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    io_uring_prep_connect(sqe, c->fd, a, len);
    io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_CONNECT));
    c->be_flags |= B_CONNECT;
    c->be_inflight++;
    return NF__PENDING;
}

/* A zero-copy send of the head buffer; 0, or -ENOMEM (send it plainly). */
static int send_zc(nf__io_t *c, struct io_uring_sqe *sqe, const struct iovec *one)
{
    struct send_state *st = c->be;
    if (!st && !(st = c->be = calloc(1, sizeof(*st))))
        return -ENOMEM;
    struct zc_req *z = malloc(sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->c = c;
    z->b = nf__io_up(c)->head_ref(c); /* until the notification */
    st->zc = z;
    io_uring_prep_send_zc(sqe, c->fd, one->iov_base, one->iov_len, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE);
    io_uring_sqe_set_data64(sqe, nf__be_tag(z, OP_SENDZC));
    return 0;
}

int nf__uring_send(nf__io_t *c)
{
    nf__uring_t *u = U(c->loop);
    const nf__io_ops_t *up = nf__io_up(c);
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    struct iovec one;
    size_t queued;
    up->iov(c, &one, 1, &queued);
    if (u->zc && one.iov_len >= c->loop->cfg.zc_send_min && send_zc(c, sqe, &one) == 0) {
        nf__uring_sqe_file(u, c, sqe);
        c->be_flags |= B_SEND;
        c->be_inflight++; /* until the notification (or a result without one) */
        return NF__PENDING;
    }
    struct send_state *st = c->be;
    if (queued == one.iov_len) { /* one buffer */
        io_uring_prep_send(sqe, c->fd, one.iov_base, one.iov_len, MSG_NOSIGNAL);
    } else if (!st && !(st = c->be = calloc(1, sizeof(*st)))) {
        io_uring_prep_send(sqe, c->fd, one.iov_base, one.iov_len, MSG_NOSIGNAL); /* send one buffer instead */
    } else {
        memset(&st->mh, 0, sizeof(st->mh));
        st->mh.msg_iov = st->iov;
        st->mh.msg_iovlen = (size_t)up->iov(c, st->iov, 16, NULL);
        io_uring_prep_sendmsg(sqe, c->fd, &st->mh, MSG_NOSIGNAL);
    }
    nf__uring_sqe_file(u, c, sqe);
    io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_SEND));
    c->be_flags |= B_SEND;
    c->be_inflight++;
    return NF__PENDING;
}

static inline void release_if_done(nf__io_t *c)
{
    if ((c->flags & NF__IO_CLOSING) && c->be_inflight == 0) {
        free(c->be);
        c->be = NULL;
        if (c->be_slot) /* nothing in flight names the slot any more */
            nf__uring_file_release(U(c->loop), c);
        nf__io_up(c)->released(c);
    }
}

static void cancel_op(nf__uring_t *u, nf__io_t *c, enum nf__uop op)
{
    struct io_uring_sqe *sqe = nf__uring_sqe(u);
    io_uring_prep_cancel64(sqe, nf__be_tag(c, op), 0);
    io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_CANCEL));
    c->be_inflight++;
}

void nf__uring_stop_conn(nf__io_t *c)
{
    nf__uring_t *u = U(c->loop);
    if (c->be_flags & B_RECV)
        cancel_op(u, c, OP_RECV);
    if (c->be_flags & B_POLL)
        cancel_op(u, c, OP_POLL);
    if (c->be_flags & B_SEND) {
        struct send_state *st = c->be;
        if (st && st->zc) { /* a zero-copy send is known by its request */
            struct io_uring_sqe *sqe = nf__uring_sqe(u);
            io_uring_prep_cancel64(sqe, nf__be_tag(st->zc, OP_SENDZC), 0);
            io_uring_sqe_set_data64(sqe, nf__be_tag(c, OP_CANCEL));
            c->be_inflight++;
        } else {
            cancel_op(u, c, OP_SEND);
        }
    }
    if (c->be_flags & B_CONNECT)
        cancel_op(u, c, OP_CONNECT);
    release_if_done(c);
    nf__kick(c->loop);
}

void nf__uring_read_stop(nf__io_t *c)
{
    nf__uring_t *u = U(c->loop);
    /* Completions already on their way are stashed by the net layer. */
    if (c->be_flags & B_RECV)
        cancel_op(u, c, OP_RECV);
    if (c->be_flags & B_POLL)
        cancel_op(u, c, OP_POLL);
}

void nf__uring_read_start(nf__io_t *c)
{
    /* If a cancelled receive is still on its way, its last completion re-arms. */
    if (!(c->be_flags & (B_RECV | B_POLL | B_STARVED)) && !(c->flags & NF__IO_EOF))
        arm_recv(c);
}

static void starve(nf__uring_t *u, nf__io_t *c)
{
    if (c->be_flags & B_STARVED)
        return;
    if (u->nstarved == u->starved_cap) {
        unsigned cap = u->starved_cap ? u->starved_cap * 2 : 64;
        nf__io_t **s = realloc(u->starved, cap * sizeof(*s));
        if (!s) { /* cannot remember it: fail the connection rather than stall it */
            nf__io_up(c)->read_end(c, -ENOMEM);
            return;
        }
        u->starved = s;
        u->starved_cap = cap;
    }
    c->be_flags |= B_STARVED;
    c->be_inflight++; /* keeps c alive until re-armed */
    u->starved[u->nstarved++] = c;
}

static void rearm_starved(nf__uring_t *u)
{
    for (unsigned i = 0; i < u->nstarved; i++) {
        nf__io_t *c = u->starved[i];
        c->be_flags &= ~B_STARVED;
        c->be_inflight--;
        if (nf__io_up(c)->read_wanted(c))
            arm_recv(c);
        else
            release_if_done(c);
    }
    u->nstarved = 0;
}

static void on_recv(nf_loop_t *loop, nf__io_t *c, struct io_uring_cqe *cqe)
{
    nf__uring_t *u = U(loop);
    const nf__io_ops_t *up = nf__io_up(c);
    int res = cqe->res;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        c->be_flags &= ~B_RECV;
        c->be_inflight--;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        nf_buf_t *b = u->slots[bid];
        if (res > 0)
            up->read(c, b, (size_t)res);
        if (b->refs > 1) { /* kept by the program: a new buffer takes the slot */
            nf_buf_unref(b);
            b = u->slots[bid] = nf__rbuf_new(loop, loop->cfg.buf_size);
        }
        if (b)
            nf__uring_slot_add(u, bid); /* else: out of memory, the ring works one short */
    }
    if (c->flags & NF__IO_CLOSING) {
        release_if_done(c);
        return;
    }
    if (res == 0) {
        up->read_end(c, 0);
    } else if (res == -ENOBUFS) {
        loop->stats.bufs_starved++;
        starve(u, c);
    } else if (res < 0 && res != -ECANCELED) {
        up->read_end(c, res);
    } else if (!more && up->read_wanted(c)) {
        /* the kernel ended the multishot (or a cancel raced a restart): carry
         * on, unless kept reads wait: the net layer re-arms once they are out */
        arm_recv(c);
    }
    release_if_done(c);
}

/* Fallback read path: readable (or hung up); read until drained or a bound. */
static void on_poll(nf_loop_t *loop, nf__io_t *c, struct io_uring_cqe *cqe)
{
    const nf__io_ops_t *up = nf__io_up(c);
    c->be_flags &= ~B_POLL;
    c->be_inflight--;
    if (c->flags & NF__IO_CLOSING) {
        release_if_done(c);
        return;
    }
    if (cqe->res < 0 && cqe->res != -ECANCELED) {
        up->read_end(c, cqe->res);
        release_if_done(c);
        return;
    }
    if (cqe->res > 0 && (cqe->res & POLLPRI)) {
        up->urgent(c); /* before any read passes the urgent mark */
        if (c->flags & NF__IO_CLOSING) {
            release_if_done(c);
            return;
        }
    }
    if (nf__sock_read(c, &U(loop)->scratch, 4, false) != NF__READ_ENDED &&
        !(c->flags & (NF__IO_CLOSING | NF__IO_EOF | NF__IO_HOLDS)))
        arm_recv(c);
    release_if_done(c);
}

static void on_send(nf__io_t *c, struct io_uring_cqe *cqe)
{
    c->be_flags &= ~B_SEND;
    c->be_inflight--;
    nf__io_up(c)->sent(c, cqe->res == -ECANCELED ? 0 : cqe->res);
    release_if_done(c);
}

/* Both completions of a zero-copy send: the result (with IORING_CQE_F_MORE
 * when a notification follows), then the notification, after which the
 * kernel no longer reads the buffer and its reference is dropped. */
static void on_sendzc(nf_loop_t *loop, struct zc_req *z, struct io_uring_cqe *cqe)
{
    nf__io_t *c = z->c;
    bool done = true;
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        loop->stats.zc_sends++;
        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
            loop->stats.zc_copied++;
    } else {
        int res = cqe->res;
        done = !(cqe->flags & IORING_CQE_F_MORE);
        struct send_state *st = c->be;
        if (st && st->zc == z)
            st->zc = NULL;
        c->be_flags &= ~B_SEND;
        if (res == -EINVAL || res == -EOPNOTSUPP) {
            /* The kernel or this socket refuses zero-copy (or the usage
             * report): nothing was sent; plain sends from now on. */
            U(loop)->zc = false;
            res = 0;
        }
        nf__io_up(c)->sent(c, res == -ECANCELED ? 0 : res);
    }
    if (done) {
        nf_buf_unref(z->b);
        free(z);
        c->be_inflight--;
    }
    release_if_done(c);
}

static void on_connect(nf__io_t *c, struct io_uring_cqe *cqe)
{
    c->be_flags &= ~B_CONNECT;
    c->be_inflight--;
    nf__io_up(c)->connected(c, cqe->res);
    release_if_done(c);
}

static void on_cancel(nf__io_t *c, struct io_uring_cqe *cqe)
{
    c->be_inflight--;
    /* -EALREADY: the operation is running and cannot be cancelled; a
     * shutdown makes any socket operation complete at once. */
    if (cqe->res == -EALREADY && c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    release_if_done(c);
}

/* ---- completions ------------------------------------------------------------------ */

/* One completion to its handler: the handlers above are inlined here, so a
 * completion costs one switch and the up-call it makes. */
static void dispatch(nf_loop_t *loop, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (ud == LIBURING_UDATA_TIMEOUT)
        return;
    void *p = (void *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
    switch ((enum nf__uop)(ud & OP_MASK)) {
    case OP_WAKE:
        U(loop)->wake_armed = false;
        nf__wake_drain(loop);
        nf__uring_arm_wake(loop);
        break;
    case OP_ACCEPT: on_accept(p, cqe); break;
    case OP_RECV: on_recv(loop, p, cqe); break;
    case OP_POLL: on_poll(loop, p, cqe); break;
    case OP_SEND: on_send(p, cqe); break;
    case OP_SENDZC: on_sendzc(loop, p, cqe); break;
    case OP_CONNECT: on_connect(p, cqe); break;
    case OP_CANCEL: on_cancel(p, cqe); break;
    case OP_LCANCEL: {
        nf__io_t *l = p;
        if (--l->be_inflight == 0)
            nf__io_up(l)->released(l);
        break;
    }
    case OP_WATCH: nf__uring_watch_cqe(p, cqe, false); break;
    case OP_WCANCEL: nf__uring_watch_cqe(p, cqe, true); break;
    case OP_UDP_RECV:
    case OP_UDP_SEND:
    case OP_UDP_POLL:
    case OP_UDP_CANCEL: nf__uring_udp_cqe(loop, p, (unsigned)(ud & OP_MASK), cqe); break;
    case OP_TIMERFD:
        nf__timer_fd_drain(loop);
        nf__uring_arm_timerfd(loop);
        break;
    }
}

/* Dispatches the completions waiting, in up to 4 rounds (completions that
 * callbacks caused come in the next), at most 4 x max_events; starved
 * receives are re-armed after each round, once buffers came back. Returns
 * the count. */
int nf__uring_reap(nf_loop_t *loop)
{
    nf__uring_t *u = U(loop);
    struct io_uring_cqe *cqe;
    int total = 0;
    for (int round = 0; round < 4; round++) {
        unsigned head, n = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            dispatch(loop, cqe);
            n++;
        }
        io_uring_cq_advance(&u->ring, n);
        total += (int)n;
        if (u->nstarved)
            rearm_starved(u);
        if (n == 0 || (unsigned)total >= loop->cfg.max_events * 4)
            break;
    }
    return total;
}
