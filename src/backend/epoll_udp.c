/* netframe — UDP on the epoll backend.
 *
 * A UDP socket is registered level-triggered for input: each readiness gets
 * up to RX_BATCHES recvmmsg batches (recv_count datagrams each), and a socket
 * with more waiting is simply reported again by the next epoll_wait, after
 * the loop's other sockets had their turn. Sends queued during a step leave
 * at its end in sendmmsg batches of up to 64; when the socket buffer is full
 * (EAGAIN) the socket also waits for EPOLLOUT until it drains. */
#include <sys/epoll.h>
#include <stdio.h>

#include "backend/epoll_udp.h"

#define RX_BATCHES 4u

static int ctl(nf_udp_t *u, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(uintptr_t)u | NF__EP_T_UDP};
    return epoll_ctl(nf__epoll_fd(u->loop), op, u->fd, &ev) < 0 ? -errno : 0;
}

int nf__epoll_udp_start(nf_udp_t *u)
{
    int err = ctl(u, EPOLL_CTL_ADD, EPOLLIN);
    if (err)
        return err;
    unsigned n = u->recv_count ? (u->recv_count > 64 ? 64 : u->recv_count) : 32;
    snprintf(u->features, sizeof(u->features), "epoll recvmmsg=%ux%u send=sendmmsg", n, u->recv_size);
    return 0;
}

void nf__epoll_udp_flush(nf_udp_t *u)
{
    if (nf__udp_send_batches(u) == 1 && !nf__udp_closing(u)) {
        u->flags |= NF__U_BLOCKED;
        ctl(u, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
    }
}

void nf__epoll_udp_stop(nf_udp_t *u)
{
    epoll_ctl(nf__epoll_fd(u->loop), EPOLL_CTL_DEL, u->fd, NULL);
    nf__udp_released(u);
}

void nf__epoll_udp_event(nf_udp_t *u, uint32_t events)
{
    if (nf__udp_closing(u))
        return;
    if ((events & EPOLLOUT) && (u->flags & NF__U_BLOCKED)) {
        ctl(u, EPOLL_CTL_MOD, EPOLLIN);
        nf__udp_schedule_flush(u);
    }
    if (events & (EPOLLIN | EPOLLERR))
        nf__udp_recv_batches(u, RX_BATCHES);
}
