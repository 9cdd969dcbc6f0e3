/* netframe — UDP on the epoll backend.
 *
 * A UDP socket is registered level-triggered for input: each readiness gets
 * up to RX_BATCHES recvmmsg batches (recv_count datagrams each), and a socket
 * with more waiting is simply reported again by the next epoll_wait, after
 * the loop's other sockets had their turn. Sends queued during a step leave
 * at its end in sendmmsg batches of up to 64; when the socket buffer is full
 * (EAGAIN) the socket also waits for EPOLLOUT until it drains. The batches
 * are the ones io_uring's fallback uses too (sockio.c). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "backend/epoll/epoll.h"

#define RX_BATCHES 4u

enum { U_BUSY = 1u << 0 /* inside its event: the batch storage is in use */ };

static int ctl(nf__io_t *u, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = nf__be_tag(u, T_UDP)};
    return epoll_ctl(E(u->loop)->epfd, op, u->fd, &ev) < 0 ? -errno : 0;
}

int nf__epoll_udp_start(nf__io_t *u, unsigned recv_size, unsigned recv_count, char *features, size_t features_len)
{
    nf__dgram_rx_t *rx = calloc(1, sizeof(*rx));
    if (!rx)
        return -ENOMEM;
    rx->recv_size = recv_size;
    rx->recv_count = recv_count;
    int err = ctl(u, EPOLL_CTL_ADD, EPOLLIN);
    if (err) {
        free(rx);
        return err;
    }
    u->be = rx;
    unsigned n = recv_count ? (recv_count > 64 ? 64 : recv_count) : 32;
    snprintf(features, features_len, "epoll recvmmsg=%ux%u send=sendmmsg", n, recv_size);
    return 0;
}

void nf__epoll_udp_flush(nf__io_t *u)
{
    if (nf__dgram_send_batches(u) == 1 && !(u->flags & NF__IO_CLOSING)) {
        u->flags |= NF__IO_WANT_WRITE;
        ctl(u, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
    }
}

static void rx_free(nf__io_t *u)
{
    nf__dgram_rx_t *rx = u->be;
    if (rx) {
        nf__dgram_rx_free(rx);
        free(rx);
        u->be = NULL;
    }
}

void nf__epoll_udp_stop(nf__io_t *u)
{
    epoll_ctl(E(u->loop)->epfd, EPOLL_CTL_DEL, u->fd, NULL);
    if (!(u->be_flags & U_BUSY)) /* else freed when its event is done */
        rx_free(u);
    nf__io_up(u)->released(u); /* the close finishes at the loop's next closing point */
}

void nf__epoll_udp_event(nf__io_t *u, uint32_t events)
{
    if (u->flags & NF__IO_CLOSING)
        return;
    if ((events & EPOLLOUT) && (u->flags & NF__IO_WANT_WRITE)) {
        ctl(u, EPOLL_CTL_MOD, EPOLLIN);
        nf__io_up(u)->schedule_flush(u);
    }
    if (events & (EPOLLIN | EPOLLERR)) {
        u->be_flags |= U_BUSY;
        nf__dgram_recv_batches(u, u->be, RX_BATCHES);
        u->be_flags &= ~U_BUSY;
        if (u->flags & NF__IO_CLOSING) /* closed by a callback */
            rx_free(u);
    }
}
