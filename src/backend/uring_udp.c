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
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/uring_udp.h"

enum {
    B_RECV = 1u << 0, /* multishot recvmsg armed */
    B_POLL = 1u << 1, /* fallback poll armed */
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
} uudp_t;

static inline uint64_t tag(void *p, unsigned op) { return (uint64_t)(uintptr_t)p | op; }

/* ---- probe: multishot recvmsg with a buffer ring, once per process ------------- */

static bool g_ms_recvmsg;
static bool g_send_addr; /* IORING_OP_SEND takes a destination address */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0)
        return;
    enum { N = 2, SZ = 256 };
    static char bufs[N][SZ];
    size_t bytes = N * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    int a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = N, .bgid = 1};
    if (mem != MAP_FAILED && a >= 0 && b >= 0 && bind(a, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(a, (struct sockaddr *)&sa, &len) == 0 && io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
        struct io_uring_buf_ring *br = mem;
        io_uring_buf_ring_init(br);
        for (unsigned i = 0; i < N; i++)
            io_uring_buf_ring_add(br, bufs[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), (int)i);
        io_uring_buf_ring_advance(br, N);
        struct msghdr mh = {.msg_namelen = sizeof(struct sockaddr_in6)};
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_recvmsg_multishot(sqe, a, &mh, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 1;
        io_uring_sqe_set_data64(sqe, 1);
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 1};
        if (sendto(b, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) == 1 &&
            io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
            struct io_uring_recvmsg_out *o =
                cqe->res > 0 ? io_uring_recvmsg_validate(bufs[cqe->flags >> IORING_CQE_BUFFER_SHIFT], cqe->res, &mh)
                             : NULL;
            g_ms_recvmsg = o && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER) &&
                           io_uring_recvmsg_payload_length(o, cqe->res, &mh) == 1;
            bool more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(&ring, cqe);
            if (more) { /* cancel it and collect the end */
                sqe = io_uring_get_sqe(&ring);
                io_uring_prep_cancel64(sqe, 1, 0);
                io_uring_sqe_set_data64(sqe, 2);
                io_uring_submit(&ring);
                for (int i = 0; i < 2 && io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0; i++)
                    io_uring_cqe_seen(&ring, cqe);
            }
        }
        io_uring_unregister_buf_ring(&ring, 1);
        /* IORING_OP_SEND with a destination address (sqe->addr2, 6.0+): one
         * datagram without a msghdr for the kernel to copy in */
        struct io_uring_sqe *s2 = io_uring_get_sqe(&ring);
        io_uring_prep_send(s2, b, "y", 1, 0);
        io_uring_prep_send_set_addr(s2, (struct sockaddr *)&sa, sizeof(sa));
        io_uring_sqe_set_data64(s2, 3);
        io_uring_submit(&ring);
        if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
            char c = 0;
            g_send_addr = cqe->res == 1 && recv(a, &c, 1, MSG_DONTWAIT) == 1 && c == 'y' &&
                          !getenv("NF_URING_UDP_SENDMSG"); /* measurements: docs/udp.md */
            io_uring_cqe_seen(&ring, cqe);
        }
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    if (mem != MAP_FAILED)
        munmap(mem, bytes);
    io_uring_queue_exit(&ring);
}

/* ---- the socket's buffer ring ------------------------------------------------------ */

static atomic_uint g_bgid = 0;

static void ring_teardown(nf_udp_t *u, uudp_t *s)
{
    if (s->br) {
        io_uring_unregister_buf_ring(nf__uring_ring(u->loop), s->bgid);
        munmap(s->br, s->br_bytes);
        s->br = NULL;
    }
    free(s->mem);
    s->mem = NULL;
}

static int ring_setup(nf_udp_t *u, uudp_t *s)
{
    unsigned n = u->recv_count ? u->recv_count : 256;
    unsigned p = 1;
    while (p < n && p < 32768)
        p <<= 1;
    s->nbufs = p;
    s->mask = io_uring_buf_ring_mask(p);
    /* header + the largest address + recv_size bytes of payload, 64-byte aligned */
    s->bsize = (unsigned)(sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in6) + u->recv_size + 63) & ~63u;
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
        r = io_uring_register_buf_ring(nf__uring_ring(u->loop), &reg, 0);
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

static void arm_recv(nf_udp_t *u)
{
    uudp_t *s = u->be;
    struct io_uring_sqe *sqe = nf__uring_sqe(u->loop);
    if (s->multishot) {
        memset(&s->mh, 0, sizeof(s->mh));
        s->mh.msg_namelen = sizeof(struct sockaddr_in6);
        io_uring_prep_recvmsg_multishot(sqe, u->fd, &s->mh, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = s->bgid;
        io_uring_sqe_set_data64(sqe, tag(u, NF__UOP_UDP_RECV));
        u->be_flags |= B_RECV;
    } else {
        io_uring_prep_poll_add(sqe, u->fd, POLLIN);
        io_uring_sqe_set_data64(sqe, tag(u, NF__UOP_UDP_POLL));
        u->be_flags |= B_POLL;
    }
    u->be_inflight++;
}

int nf__uring_udp_start(nf_udp_t *u)
{
    pthread_once(&g_once, probe);
    uudp_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    u->be = s;
    if (g_ms_recvmsg && !u->loop->cfg.uring_no_bufring && ring_setup(u, s) == 0)
        s->multishot = true;
    /* io_uring waits for readiness itself; the fallback reads with MSG_DONTWAIT */
    nf__set_nonblock(u->fd, false);
    if (s->multishot)
        snprintf(u->features, sizeof(u->features), "io_uring recvmsg=multishot bufring=%ux%u send=%s", s->nbufs,
                 s->bsize, g_send_addr ? "send+addr" : "sendmsg");
    else
        snprintf(u->features, sizeof(u->features), "io_uring recv=poll+recvmmsg send=%s",
                 g_send_addr ? "send+addr" : "sendmsg");
    arm_recv(u);
    return 0;
}

static void release_if_done(nf_udp_t *u)
{
    if (nf__udp_closing(u) && u->be_inflight == 0) {
        uudp_t *s = u->be;
        if (s) {
            ring_teardown(u, s);
            free(s);
            u->be = NULL;
        }
        nf__udp_released(u);
    }
}

void nf__uring_udp_flush(nf_udp_t *u)
{
    nf__udp_tx_t *tx;
    while ((tx = nf__udp_tx_pop(u)) != NULL) {
        struct io_uring_sqe *sqe = nf__uring_sqe(u->loop);
        if (g_send_addr) {
            io_uring_prep_send(sqe, u->fd, tx->data, tx->len, MSG_NOSIGNAL);
            if (tx->has_to)
                io_uring_prep_send_set_addr(sqe, &tx->to.u.sa, (uint16_t)tx->to.len);
            io_uring_sqe_set_data64(sqe, tag(tx, NF__UOP_UDP_SEND));
            u->be_inflight++;
            continue;
        }
        tx->iov.iov_base = tx->data;
        tx->iov.iov_len = tx->len;
        memset(&tx->mh, 0, sizeof(tx->mh));
        tx->mh.msg_iov = &tx->iov;
        tx->mh.msg_iovlen = 1;
        if (tx->has_to) {
            tx->mh.msg_name = &tx->to.u;
            tx->mh.msg_namelen = tx->to.len;
        }
        io_uring_prep_sendmsg(sqe, u->fd, &tx->mh, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, tag(tx, NF__UOP_UDP_SEND));
        u->be_inflight++;
    }
}

static void cancel(nf_udp_t *u, unsigned op)
{
    struct io_uring_sqe *sqe = nf__uring_sqe(u->loop);
    io_uring_prep_cancel64(sqe, tag(u, op), 0);
    io_uring_sqe_set_data64(sqe, tag(u, NF__UOP_UDP_CANCEL));
    u->be_inflight++;
}

void nf__uring_udp_stop(nf_udp_t *u)
{
    /* sends in flight complete by themselves (a datagram never waits long) */
    if (u->be_flags & B_RECV)
        cancel(u, NF__UOP_UDP_RECV);
    if (u->be_flags & B_POLL)
        cancel(u, NF__UOP_UDP_POLL);
    release_if_done(u);
}

/* ---- completions ------------------------------------------------------------------- */

static void on_recv(nf_loop_t *loop, nf_udp_t *u, struct io_uring_cqe *cqe)
{
    uudp_t *s = u->be;
    int res = cqe->res;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        u->be_flags &= ~B_RECV;
        u->be_inflight--;
    }
    u->be_inflight++; /* a close from on_recv must not free the ring under us */
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        char *buf = s->mem + (size_t)bid * s->bsize;
        struct io_uring_recvmsg_out *o = res > 0 ? io_uring_recvmsg_validate(buf, res, &s->mh) : NULL;
        if (o && !nf__udp_closing(u)) {
            socklen_t nl = o->namelen < s->mh.msg_namelen ? o->namelen : s->mh.msg_namelen;
            /* the buffer is rounded up: deliver recv_size bytes at most, as epoll does */
            unsigned plen = io_uring_recvmsg_payload_length(o, res, &s->mh);
            unsigned flags = (o->flags & MSG_TRUNC) || plen > u->recv_size ? NF_UDP_TRUNC : 0;
            nf__udp_recv(u, io_uring_recvmsg_payload(o, &s->mh), plen > u->recv_size ? u->recv_size : plen,
                         io_uring_recvmsg_name(o), nl, flags);
            s->errors = 0;
        }
        buf_return(s, bid);
    }
    if (!nf__udp_closing(u)) {
        if (res == -ENOBUFS) {
            loop->stats.bufs_starved++; /* every buffer is back: carry on */
        } else if (res < 0 && res != -ECANCELED) {
            nf__udp_recv_error(u, res); /* e.g. ICMP port unreachable on a connected socket */
            if (++s->errors > 64 && !more && !nf__udp_closing(u)) {
                s->multishot = false; /* something is wrong with multishot here: read by poll */
                nf__set_nonblock(u->fd, true);
            }
        }
    }
    u->be_inflight--;
    if (!more && !(u->be_flags & (B_RECV | B_POLL)) && !nf__udp_closing(u))
        arm_recv(u);
    release_if_done(u);
}

static void on_poll(nf_udp_t *u, struct io_uring_cqe *cqe)
{
    u->be_flags &= ~B_POLL;
    if (!nf__udp_closing(u) && cqe->res != -ECANCELED)
        nf__udp_recv_batches(u, 4); /* the poll still counts: a close here cannot release u */
    u->be_inflight--;
    if (!nf__udp_closing(u) && !(u->be_flags & (B_RECV | B_POLL)))
        arm_recv(u);
    release_if_done(u);
}

void nf__uring_udp_cqe(nf_loop_t *loop, void *p, unsigned op, struct io_uring_cqe *cqe)
{
    switch (op) {
    case NF__UOP_UDP_RECV: on_recv(loop, p, cqe); break;
    case NF__UOP_UDP_POLL: on_poll(p, cqe); break;
    case NF__UOP_UDP_SEND: {
        nf__udp_tx_t *tx = p;
        nf_udp_t *u = tx->u;
        u->be_inflight--;
        nf__udp_tx_done(u, tx, cqe->res);
        release_if_done(u);
        break;
    }
    case NF__UOP_UDP_CANCEL: {
        nf_udp_t *u = p;
        u->be_inflight--;
        release_if_done(u);
        break;
    }
    }
}
