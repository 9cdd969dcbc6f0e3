/* netframe — the epoll backend: readiness turned into completions.
 *
 * Each connection is registered once, edge-triggered, for input, output and
 * peer hang-up; no epoll_ctl call is made per read or write. Reads go into
 * the loop's one scratch buffer (so an idle connection holds no buffer); a
 * read shorter than the buffer means the socket was drained (any later
 * arrival raises a new edge), unless the peer hung up, in which case we read
 * on to the end of stream. At most 4 buffers are read per connection per
 * event; a connection with more waiting goes on the `again` list and is
 * served next iteration, so a fast peer cannot starve the others.
 *
 * Writes complete inline: the flush calls sendmsg() at once and reports the
 * bytes written; what the socket did not take waits for the next EPOLLOUT
 * edge. Listeners are level-triggered, accept4() up to 64 per wake-up. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/epoll/epoll.h"

enum {
    B_REG = 1u << 0,   /* registered with epoll */
    B_AGAIN = 1u << 1, /* on the again list */
};

static int e_init(nf_loop_t *loop)
{
    nf__ep_t *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->nevents = loop->cfg.max_events;
    e->events = calloc(e->nevents, sizeof(*e->events));
    e->scratch = nf__rbuf_new(loop, loop->cfg.buf_size);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = T_WAKE};
    if (e->epfd < 0 || !e->events || !e->scratch || epoll_ctl(e->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0) {
        int err = e->epfd < 0 ? -errno : -ENOMEM;
        if (e->epfd >= 0)
            close(e->epfd);
        free(e->events);
        nf_buf_unref(e->scratch);
        free(e);
        return err;
    }
    if (loop->timer_fd >= 0) { /* NF_MODE_EVENT: due timers make the epoll fd readable */
        struct epoll_event tev = {.events = EPOLLIN, .data.u64 = T_TIMER};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, loop->timer_fd, &tev) < 0) {
            int err = -errno;
            close(e->epfd);
            free(e->events);
            nf_buf_unref(e->scratch);
            free(e);
            return err;
        }
    }
    loop->be = e;
    snprintf(loop->features, sizeof(loop->features),
             "epoll: mode=%s edge-triggered, scratch=%u, sends inline, events=%u", nf__be_modes[loop->cfg.mode],
             loop->cfg.buf_size, e->nevents);
    return 0;
}

static void watches_release(nf__ep_t *e);

static void e_destroy(nf_loop_t *loop)
{
    nf__ep_t *e = E(loop);
    watches_release(e);
    close(e->epfd);
    free(e->events);
    nf_buf_unref(e->scratch);
    free(e->again);
    free(e->again2);
    free(e);
}

/* ---- listeners ------------------------------------------------------------------ */

static int e_start_listener(nf__io_t *l)
{
    int err = nf__set_nonblock(l->fd, true);
    if (err)
        return err;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = nf__be_tag(l, T_LISTENER)};
    if (epoll_ctl(E(l->loop)->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
        return -errno;
    l->be_flags |= B_REG;
    return 0;
}

static void e_pause_listener(nf__io_t *l, bool paused)
{
    struct epoll_event ev = {.events = paused ? 0 : EPOLLIN, .data.u64 = nf__be_tag(l, T_LISTENER)};
    epoll_ctl(E(l->loop)->epfd, EPOLL_CTL_MOD, l->fd, &ev);
}

static void e_stop_listener(nf__io_t *l)
{
    if (l->be_flags & B_REG)
        epoll_ctl(E(l->loop)->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    l->be_flags &= ~B_REG;
    nf__io_up(l)->released(l);
    nf__kick(l->loop); /* event mode, from outside a step: finish it at the next */
}

static void on_listener(nf__io_t *l)
{
    const nf__io_ops_t *up = nf__io_up(l);
    for (int i = 0; i < 64 && !(l->flags & (NF__IO_CLOSING | NF__IO_HOLDS)); i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                up->accepted(l, -errno); /* EMFILE...: the listener backs off */
            break;
        }
        up->accepted(l, fd);
    }
}

/* ---- connections ---------------------------------------------------------------- */

static int reg(nf__io_t *c)
{
    if (c->be_flags & B_REG)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
                             .data.u64 = nf__be_tag(c, T_CONN)};
    if (epoll_ctl(E(c->loop)->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        return -errno;
    c->be_flags |= B_REG;
    return 0;
}

static int e_start_conn(nf__io_t *c)
{
    int err = nf__set_nonblock(c->fd, true);
    return err ? err : reg(c);
}

static int e_connect(nf__io_t *c)
{
    int err = nf__set_nonblock(c->fd, true);
    if (!err)
        err = reg(c);
    if (err)
        return err;
    socklen_t len;
    const struct sockaddr *a = nf__io_up(c)->target(c, &len);
    if (connect(c->fd, a, len) < 0 && errno != EINPROGRESS)
        return -errno;
    return NF__PENDING; /* the EPOLLOUT edge reports the result */
}

static int e_send(nf__io_t *c)
{
    struct iovec iov[64];
    size_t queued;
    int n = nf__io_up(c)->iov(c, iov, 64, &queued);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t r;
    do
        r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != EAGAIN)
            return -errno;
        c->flags |= NF__IO_WANT_WRITE;
        return 0;
    }
    if ((size_t)r < total)
        c->flags |= NF__IO_WANT_WRITE; /* the socket is full: wait for the edge */
    else if (total < queued)
        nf__io_up(c)->schedule_flush(c); /* more than 64 buffers queued: go on */
    return (int)r;
}

/* A failed connect's socket is about to be closed for a new one. */
static void e_connect_reset(nf__io_t *c)
{
    if (c->be_flags & B_REG)
        epoll_ctl(E(c->loop)->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->be_flags &= ~B_REG;
    c->flags &= ~NF__IO_WANT_WRITE;
}

/* ---- fd watches (level-triggered) ------------------------------------------------ */

enum { W_REG = 1u << 0, W_DEAD = 1u << 1 };

static uint32_t watch_epoll_events(uint32_t ev)
{
    return ((ev & POLLIN) ? EPOLLIN : 0u) | ((ev & POLLOUT) ? EPOLLOUT : 0u);
}

static int e_watch_set(nf__watch_t *w)
{
    if (w->be_flags & W_DEAD)
        return -EINVAL;
    struct epoll_event ev = {.events = watch_epoll_events(w->events), .data.u64 = nf__be_tag(w, T_WATCH)};
    int op = (w->be_flags & W_REG) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(E(w->loop)->epfd, op, w->fd, &ev) < 0)
        return -errno;
    w->be_flags |= W_REG;
    w->be_armed = w->events;
    return 0;
}

static void e_watch_stop(nf__watch_t *w)
{
    nf__ep_t *e = E(w->loop);
    if (w->be_flags & W_DEAD)
        return;
    if (w->be_flags & W_REG)
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->be_flags = (uint16_t)((w->be_flags & ~W_REG) | W_DEAD);
    w->be_armed = 0;
    if (w->loop->freeing) { /* no more events: release now */
        w->on_released(w);
        return;
    }
    /* An event for w may still be in the array e_wait is dispatching. */
    w->be_next = e->wdead;
    e->wdead = w;
}

static void watches_release(nf__ep_t *e)
{
    while (e->wdead) {
        nf__watch_t *w = e->wdead;
        e->wdead = w->be_next;
        w->on_released(w);
    }
}

static void on_watch(nf__watch_t *w, uint32_t ev)
{
    if (w->be_flags & W_DEAD)
        return;
    uint32_t rev = ((ev & EPOLLIN) ? POLLIN : 0u) | ((ev & EPOLLOUT) ? POLLOUT : 0u) |
                   ((ev & EPOLLERR) ? POLLERR : 0u) | ((ev & EPOLLHUP) ? POLLHUP : 0u);
    w->on_ready(w, rev);
}

static void e_stop_conn(nf__io_t *c)
{
    if (c->be_flags & B_REG)
        epoll_ctl(E(c->loop)->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->be_flags &= ~B_REG;
    if (!(c->be_flags & B_AGAIN)) /* else released when the again list is served */
        nf__io_up(c)->released(c);
    nf__kick(c->loop);
}

static void push_again(nf__ep_t *e, nf__io_t *c)
{
    if (c->be_flags & B_AGAIN)
        return;
    if (e->nagain == e->again_cap) {
        unsigned cap = e->again_cap ? e->again_cap * 2 : 64;
        nf__io_t **a = realloc(e->again, cap * sizeof(*a));
        nf__io_t **b = realloc(e->again2, cap * sizeof(*b));
        if (a)
            e->again = a;
        if (b)
            e->again2 = b;
        if (!a || !b) {
            nf__io_up(c)->read_end(c, -ENOMEM);
            return;
        }
        e->again_cap = cap;
    }
    c->be_flags |= B_AGAIN;
    e->again[e->nagain++] = c;
}

/* Reads c (sockio.c's loop, at most 4 buffers); a connection with more
 * waiting goes on the again list, served next iteration. */
static void do_read(nf_loop_t *loop, nf__io_t *c, bool hup)
{
    nf__ep_t *e = E(loop);
    if (nf__sock_read(c, &e->scratch, 4, hup) == NF__READ_MORE)
        push_again(e, c);
}

static void on_conn(nf_loop_t *loop, nf__io_t *c, uint32_t ev)
{
    const nf__io_ops_t *up = nf__io_up(c);
    if (c->flags & NF__IO_CLOSING)
        return;
    if (c->flags & NF__IO_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        up->connected(c, -err);
        if (err || (c->flags & NF__IO_CLOSING))
            return;
    }
    if ((ev & EPOLLOUT) && (c->flags & NF__IO_WANT_WRITE)) {
        c->flags &= ~NF__IO_WANT_WRITE;
        up->schedule_flush(c);
    }
    if ((ev & EPOLLPRI) && up->wants_urgent(c)) {
        up->urgent(c);
        if (c->flags & NF__IO_CLOSING)
            return;
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) && (c->flags & NF__IO_READING))
        /* EPOLLPRI: a read stops at the urgent mark, so a short read does
         * not mean drained: read on to EAGAIN. */
        do_read(loop, c, (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0);
}

static void serve_again(nf_loop_t *loop)
{
    nf__ep_t *e = E(loop);
    unsigned n = e->nagain;
    nf__io_t **list = e->again;
    e->again = e->again2; /* new pushes go to the other array */
    e->again2 = list;
    e->nagain = 0;
    for (unsigned i = 0; i < n; i++) {
        nf__io_t *c = list[i];
        c->be_flags &= ~B_AGAIN;
        if (c->flags & NF__IO_CLOSING)
            nf__io_up(c)->released(c);
        else
            do_read(loop, c, true); /* read on until EAGAIN */
    }
}

static int e_wait(nf_loop_t *loop, int timeout_ms)
{
    nf__ep_t *e = E(loop);
    if (e->nagain)
        timeout_ms = 0;
    int n = epoll_wait(e->epfd, e->events, (int)e->nevents, timeout_ms);
    if (n < 0)
        return -errno;
    if (timeout_ms != 0)
        nf_loop_update_time(loop); /* callbacks arm timers from the time of the event */
    for (int i = 0; i < n; i++) {
        uint64_t d = e->events[i].data.u64;
        void *p = (void *)(uintptr_t)(d & ~(uint64_t)T_MASK);
        switch (d & T_MASK) {
        case T_CONN: on_conn(loop, p, e->events[i].events); break;
        case T_LISTENER: on_listener(p); break;
        case T_WAKE: nf__wake_drain(loop); break;
        case T_TIMER: nf__timer_fd_drain(loop); break;
        case T_UDP: nf__epoll_udp_event(p, e->events[i].events); break;
        case T_WATCH: on_watch(p, e->events[i].events); break;
        }
    }
    if (e->wdead)
        watches_release(e);
    if (e->nagain)
        serve_again(loop);
    return n;
}

static void e_read_stop(nf__io_t *c) { (void)c; /* on_conn and do_read check the flag */ }

static void e_read_start(nf__io_t *c)
{
    /* The edge may have come while paused: read on from the again list. */
    if (c->be_flags & B_REG)
        push_again(E(c->loop), c);
    nf__kick(c->loop);
}

static bool e_pending(nf_loop_t *loop) { return E(loop)->nagain > 0; }

static int e_event_fd(const nf_loop_t *loop) { return ((const nf__ep_t *)loop->be)->epfd; }

const nf__backend_ops_t nf__epoll_ops = {
    .size = sizeof(nf__backend_ops_t),
    .name = "epoll",
    .init = e_init,
    .destroy = e_destroy,
    .wait = e_wait,
    .start_listener = e_start_listener,
    .pause_listener = e_pause_listener,
    .stop_listener = e_stop_listener,
    .start_conn = e_start_conn,
    .connect = e_connect,
    .send = e_send,
    .stop_conn = e_stop_conn,
    .read_stop = e_read_stop,
    .read_start = e_read_start,
    .submit = NULL, /* sends are made inline */
    .pending = e_pending,
    .event_fd = e_event_fd,
    .udp_start = nf__epoll_udp_start,
    .udp_flush = nf__epoll_udp_flush,
    .udp_stop = nf__epoll_udp_stop,
    .connect_reset = e_connect_reset,
    .watch_set = e_watch_set,
    .watch_stop = e_watch_stop,
};
