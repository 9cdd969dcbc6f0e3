/* netframe — socket I/O with plain system calls, written once for both
 * engines: the stream read loop (epoll's reads, io_uring's poll-and-read
 * fallback) and the datagram batches (recvmmsg / sendmmsg: epoll, and
 * io_uring without multishot recvmsg). Results go up through the owner's
 * up-call table (core/backend.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_private.h"

const char *const nf__be_modes[3] = {"block", "poll", "event"};

int nf__set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    int nfl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
        return -errno;
    return 0;
}

/* ---- the stream read loop ----------------------------------------------------- */

int nf__sock_read(nf__io_t *io, nf_buf_t **scratch, int max, bool hup)
{
    const nf__io_ops_t *up = nf__io_up(io);
    nf_loop_t *loop = io->loop;
    for (int i = 0;; i++) {
        if (io->flags & (NF__IO_CLOSING | NF__IO_EOF | NF__IO_HOLDS))
            return NF__READ_DRAINED;
        if (i == max)
            return NF__READ_MORE;
        nf_buf_t *b = *scratch;
        if (!b && !(b = *scratch = nf__rbuf_new(loop, loop->cfg.buf_size))) {
            up->read_end(io, -ENOMEM);
            return NF__READ_ENDED;
        }
        ssize_t n = read(io->fd, b->base, b->cap);
        if (n > 0) {
            size_t cap = b->cap;
            up->read(io, b, (size_t)n);
            if (b->refs > 1) { /* kept by the program: a fresh one takes its place */
                nf_buf_unref(b);
                if (!(*scratch = nf__rbuf_new(loop, loop->cfg.buf_size))) {
                    up->read_end(io, -ENOMEM);
                    return NF__READ_ENDED;
                }
            }
            if ((size_t)n < cap && !hup)
                return NF__READ_DRAINED;
            continue;
        }
        if (n == 0) {
            up->read_end(io, 0);
            return NF__READ_ENDED;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return NF__READ_DRAINED;
        up->read_end(io, -errno);
        return NF__READ_ENDED;
    }
}

/* ---- datagram batches -------------------------------------------------------------- */

#define RX_BATCH_MAX     64u
#define RX_BATCH_DEFAULT 32u

static int rx_setup(nf__dgram_rx_t *rx)
{
    unsigned n = rx->recv_count ? rx->recv_count : RX_BATCH_DEFAULT;
    if (n > RX_BATCH_MAX)
        n = RX_BATCH_MAX;
    rx->msgs = calloc(n, sizeof(*rx->msgs));
    rx->iov = calloc(n, sizeof(*rx->iov));
    rx->names = calloc(n, sizeof(*rx->names));
    rx->mem = malloc((size_t)n * rx->recv_size);
    if (!rx->msgs || !rx->iov || !rx->names || !rx->mem) {
        nf__dgram_rx_free(rx);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        rx->iov[i].iov_base = rx->mem + (size_t)i * rx->recv_size;
        rx->iov[i].iov_len = rx->recv_size;
    }
    rx->n = n;
    return 0;
}

void nf__dgram_rx_free(nf__dgram_rx_t *rx)
{
    free(rx->msgs);
    free(rx->iov);
    free(rx->names);
    free(rx->mem);
    rx->msgs = NULL;
    rx->iov = NULL;
    rx->names = NULL;
    rx->mem = NULL;
    rx->n = 0;
}

int nf__dgram_recv_batches(nf__io_t *io, nf__dgram_rx_t *rx, unsigned batches)
{
    const nf__io_ops_t *up = nf__io_up(io);
    if (!rx->n && rx_setup(rx) != 0)
        return -ENOMEM;
    for (unsigned b = 0; b < batches; b++) {
        for (unsigned i = 0; i < rx->n; i++) {
            struct msghdr *mh = &rx->msgs[i].msg_hdr;
            memset(mh, 0, sizeof(*mh));
            mh->msg_iov = &rx->iov[i];
            mh->msg_iovlen = 1;
            mh->msg_name = &rx->names[i];
            mh->msg_namelen = sizeof(rx->names[i]);
        }
        int r = recvmmsg(io->fd, rx->msgs, rx->n, MSG_DONTWAIT, NULL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            up->dgram_error(io, -errno); /* ICMP error on a connected socket: go on */
            if (io->flags & NF__IO_CLOSING)
                return 0;
            continue;
        }
        for (int i = 0; i < r && !(io->flags & NF__IO_CLOSING); i++) {
            struct msghdr *mh = &rx->msgs[i].msg_hdr;
            up->dgram(io, rx->iov[i].iov_base, rx->msgs[i].msg_len, mh->msg_name, mh->msg_namelen,
                      (mh->msg_flags & MSG_TRUNC) ? NF__DGRAM_TRUNC : 0);
        }
        if ((io->flags & NF__IO_CLOSING) || (unsigned)r < rx->n)
            return 0;
    }
    return 1;
}

int nf__dgram_send_batches(nf__io_t *io)
{
    const nf__io_ops_t *up = nf__io_up(io);
    enum { N = 64 };
    struct mmsghdr m[N];
    struct iovec iov[N];
    nf__dgram_t *d;
    while ((d = up->tx_head(io)) != NULL) {
        unsigned n = 0;
        for (; d && n < N; d = d->next, n++) {
            iov[n].iov_base = d->data;
            iov[n].iov_len = d->len;
            memset(&m[n].msg_hdr, 0, sizeof(m[n].msg_hdr));
            m[n].msg_hdr.msg_iov = &iov[n];
            m[n].msg_hdr.msg_iovlen = 1;
            if (d->to) {
                m[n].msg_hdr.msg_name = (void *)(uintptr_t)d->to;
                m[n].msg_hdr.msg_namelen = d->tolen;
            }
        }
        int r = sendmmsg(io->fd, m, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 1;
            /* the head datagram was refused: count it and go on */
            int err = -errno;
            up->tx_done(io, up->tx_pop(io), err);
            if (io->flags & NF__IO_CLOSING)
                return 0;
            continue;
        }
        for (int i = 0; i < r; i++)
            up->tx_done(io, up->tx_pop(io), (int)m[i].msg_len);
    }
    return 0;
}
