/* netframe — UDP on the io_uring backend.
 *
 * Receiving: one multishot IORING_OP_RECVMSG per socket, selecting buffers
 * from the socket's own provided-buffer ring (its own group id), each buffer
 * holding an io_uring_recvmsg_out header, the sender's address and the
 * payload. After on_recv the buffer goes straight back to the ring. When the
 * ring runs dry the kernel ends the multishot with -ENOBUFS (datagrams wait
 * in the socket buffer meanwhile) and it is re-armed at once: every buffer
 * was returned by the time that completion is seen. A multishot that ends
 * for any other reason is re-armed too. Kernels without multishot recvmsg
 * (probed once per process) use poll + recvmmsg batches instead.
 *
 * Sending: one IORING_OP_SENDMSG per datagram, all prepared at the end of
 * the loop step and submitted with the wait in one io_uring_enter; the
 * datagram's queue entry (msghdr, iovec, address) is the user_data.
 *
 * Every operation in flight is counted in u->be_inflight; a closing socket
 * is released only when that count is zero. */
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/uring/uring.h"

enum {
    U_RECV = 1u << 0, /* multishot recvmsg armed */
    U_POLL = 1u << 1, /* fallback poll armed */
};

typedef struct uudp {
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *mem; /* nbufs * bsize */
    unsigned nbufs, bsize, mask;
    unsigned short bgid;
    bool multishot;
    unsigned errors;  /* receive errors in a row */
    struct msghdr mh; /* the multishot template: name length, no control */
    unsigned recv_size;
    nf__dgram_rx_t rx; /* the fallback's recvmmsg batches */
} uudp_t;

/* ---- the socket's buffer ring ------------------------------------------------------ */

static atomic_uint g_bgid = 0;

static void ring_teardown(nf__io_t *u, uudp_t *s)
{
    if (s->br) {
        io_uring_unregister_buf_ring(&U(u->loop)->ring, s->bgid);
        munmap(s->br, s->br_bytes);
        s->br = NULL;
    }
    free(s->mem);
    s->mem = NULL;
}

static int ring_setup(nf__io_t *u, uudp_t *s, unsigned recv_count)
{
    unsigned n = recv_count ? recv_count : 256;
    unsigned p = 1;
    while (p < n && p < 32768)
        p <<= 1;
    s->nbufs = p;
    s->mask = io_uring_buf_ring_mask(p);
    /* header + the largest address + recv_size bytes of payload, 64-byte aligned */
    s->bsize = (unsigned)(sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in6) + s->recv_size + 63) & ~63u;
    s->br_bytes = p * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, s->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    s->mem = malloc((size_t)p * s->bsize);
    if (!s->mem) {
        munmap(mem, s->br_bytes);
        return -ENOMEM;
    }
    int r = -EEXIST;
    /* group ids are per ring; 0 is the loop's own ring of read buffers */
    for (int tries = 0; tries < 64 && r == -EEXIST; tries++) {
        unsigned id = atomic_fetch_add(&g_bgid, 1) % 65535u + 1u;
        struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = p, .bgid = (unsigned short)id};
        r = io_uring_register_buf_ring(&U(u->loop)->ring, &reg, 0);
        if (r == 0)
            s->bgid = (unsigned short)id;
    }
    if (r < 0) {
        munmap(mem, s->br_bytes);
        free(s->mem);
        s->mem = NULL;
        return r;
    }
    s->br = mem;
    io_uring_buf_ring_init(s->br);
    for (unsigned i = 0; i < p; i++)
        io_uring_buf_ring_add(s->br, s->mem + (size_t)i * s->bsize, s->bsize, (unsigned short)i, s->mask, (int)i);
    io_uring_buf_ring_advance(s->br, (int)p);
    return 0;
}

static void buf_return(uudp_t *s, unsigned bid)
{
    io_uring_buf_ring_add(s->br, s->mem + (size_t)bid * s->bsize, s->bsize, (unsigned short)bid, s->mask, 0);
    io_uring_buf_ring_advance(s->br, 1);
}

/* ---- arming ---------------------------------------------------------------------- */

static void arm_recv(nf__io_t *u)
{
    uudp_t *s = u->be;
    struct io_uring_sqe *sqe = nf__uring_sqe(U(u->loop));
    if (s->multishot) {
        memset(&s->mh, 0, sizeof(s->mh));
        s->mh.msg_namelen = sizeof(struct sockaddr_in6);
        io_uring_prep_recvmsg_multishot(sqe, u->fd, &s->mh, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = s->bgid;
        io_uring_sqe_set_data64(sqe, nf__be_tag(u, OP_UDP_RECV));
        u->be_flags |= U_RECV;
    } else {
        io_uring_prep_poll_add(sqe, u->fd, POLLIN);
        io_uring_sqe_set_data64(sqe, nf__be_tag(u, OP_UDP_POLL));
        u->be_flags |= U_POLL;
    }
    u->be_inflight++;
}

int nf__uring_udp_start(nf__io_t *u, unsigned recv_size, unsigned recv_count, char *features, size_t features_len)
{
    const nf__probe_t *pr = nf__probe();
    uudp_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    u->be = s;
    s->recv_size = recv_size;
    s->rx.recv_size = recv_size;
    s->rx.recv_count = recv_count;
    if (pr->recvmsg_multishot && !u->loop->cfg.uring_no_bufring && ring_setup(u, s, recv_count) == 0)
        s->multishot = true;
    /* io_uring waits for readiness itself; the fallback reads with MSG_DONTWAIT */
    nf__set_nonblock(u->fd, false);
    if (s->multishot)
        snprintf(features, features_len, "io_uring recvmsg=multishot bufring=%ux%u send=%s", s->nbufs, s->bsize,
                 pr->send_addr ? "send+addr" : "sendmsg");
    else
        snprintf(features, features_len, "io_uring recv=poll+recvmmsg send=%s",
                 pr->send_addr ? "send+addr" : "sendmsg");
    arm_recv(u);
    return 0;
}

static void release_if_done(nf__io_t *u)
{
    if ((u->flags & NF__IO_CLOSING) && u->be_inflight == 0) {
        uudp_t *s = u->be;
        if (s) {
            ring_teardown(u, s);
            nf__dgram_rx_free(&s->rx);
            free(s);
            u->be = NULL;
        }
        nf__io_up(u)->released(u);
    }
}

void nf__uring_udp_flush(nf__io_t *u)
{
    const nf__io_ops_t *up = nf__io_up(u);
    bool send_addr = nf__probe()->send_addr;
    nf__dgram_t *tx;
    while ((tx = up->tx_pop(u)) != NULL) {
        struct io_uring_sqe *sqe = nf__uring_sqe(U(u->loop));
        if (send_addr) {
            io_uring_prep_send(sqe, u->fd, tx->data, tx->len, MSG_NOSIGNAL);
            if (tx->to)
                io_uring_prep_send_set_addr(sqe, tx->to, (uint16_t)tx->tolen);
            io_uring_sqe_set_data64(sqe, nf__be_tag(tx, OP_UDP_SEND));
            u->be_inflight++;
            continue;
        }
        tx->iov.iov_base = tx->data;
        tx->iov.iov_len = tx->len;
        memset(&tx->mh, 0, sizeof(tx->mh));
        tx->mh.msg_iov = &tx->iov;
        tx->mh.msg_iovlen = 1;
        if (tx->to) {
            tx->mh.msg_name = (void *)(uintptr_t)tx->to;
            tx->mh.msg_namelen = tx->tolen;
        }
        io_uring_prep_sendmsg(sqe, u->fd, &tx->mh, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, nf__be_tag(tx, OP_UDP_SEND));
        u->be_inflight++;
    }
}

static void cancel(nf__io_t *u, unsigned op)
{
    struct io_uring_sqe *sqe = nf__uring_sqe(U(u->loop));
    io_uring_prep_cancel64(sqe, nf__be_tag(u, op), 0);
    io_uring_sqe_set_data64(sqe, nf__be_tag(u, OP_UDP_CANCEL));
    u->be_inflight++;
}

void nf__uring_udp_stop(nf__io_t *u)
{
    /* sends in flight complete by themselves (a datagram never waits long) */
    if (u->be_flags & U_RECV)
        cancel(u, OP_UDP_RECV);
    if (u->be_flags & U_POLL)
        cancel(u, OP_UDP_POLL);
    release_if_done(u);
}

/* ---- completions ------------------------------------------------------------------- */

static void on_recv(nf_loop_t *loop, nf__io_t *u, struct io_uring_cqe *cqe)
{
    uudp_t *s = u->be;
    int res = cqe->res;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        u->be_flags &= ~U_RECV;
        u->be_inflight--;
    }
    u->be_inflight++; /* a close from on_recv must not free the ring under us */
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        char *buf = s->mem + (size_t)bid * s->bsize;
        struct io_uring_recvmsg_out *o = res > 0 ? io_uring_recvmsg_validate(buf, res, &s->mh) : NULL;
        if (o && !(u->flags & NF__IO_CLOSING)) {
            socklen_t nl = o->namelen < s->mh.msg_namelen ? o->namelen : s->mh.msg_namelen;
            /* the buffer is rounded up: deliver recv_size bytes at most, as epoll does */
            unsigned plen = io_uring_recvmsg_payload_length(o, res, &s->mh);
            unsigned flags = (o->flags & MSG_TRUNC) || plen > s->recv_size ? NF__DGRAM_TRUNC : 0;
            nf__io_up(u)->dgram(u, io_uring_recvmsg_payload(o, &s->mh), plen > s->recv_size ? s->recv_size : plen,
                                io_uring_recvmsg_name(o), nl, flags);
            s->errors = 0;
        }
        buf_return(s, bid);
    }
    if (!(u->flags & NF__IO_CLOSING)) {
        if (res == -ENOBUFS) {
            loop->stats.bufs_starved++; /* every buffer is back: carry on */
        } else if (res < 0 && res != -ECANCELED) {
            nf__io_up(u)->dgram_error(u, res); /* e.g. ICMP port unreachable on a connected socket */
            if (++s->errors > 64 && !more && !(u->flags & NF__IO_CLOSING)) {
                s->multishot = false; /* something is wrong with multishot here: read by poll */
                nf__set_nonblock(u->fd, true);
            }
        }
    }
    u->be_inflight--;
    if (!more && !(u->be_flags & (U_RECV | U_POLL)) && !(u->flags & NF__IO_CLOSING))
        arm_recv(u);
    release_if_done(u);
}

static void on_poll(nf__io_t *u, struct io_uring_cqe *cqe)
{
    u->be_flags &= ~U_POLL;
    if (!(u->flags & NF__IO_CLOSING) && cqe->res != -ECANCELED)
        nf__dgram_recv_batches(u, &((uudp_t *)u->be)->rx, 4); /* the poll still counts: a close here cannot release u */
    u->be_inflight--;
    if (!(u->flags & NF__IO_CLOSING) && !(u->be_flags & (U_RECV | U_POLL)))
        arm_recv(u);
    release_if_done(u);
}

void nf__uring_udp_cqe(nf_loop_t *loop, void *p, unsigned op, struct io_uring_cqe *cqe)
{
    switch (op) {
    case OP_UDP_RECV: on_recv(loop, p, cqe); break;
    case OP_UDP_POLL: on_poll(p, cqe); break;
    case OP_UDP_SEND: {
        nf__dgram_t *tx = p;
        nf__io_t *u = tx->io;
        u->be_inflight--;
        nf__io_up(u)->tx_done(u, tx, cqe->res);
        release_if_done(u);
        break;
    }
    case OP_UDP_CANCEL: {
        nf__io_t *u = p;
        u->be_inflight--;
        release_if_done(u);
        break;
    }
    }
}
