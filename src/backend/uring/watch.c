/* netframe — io_uring: fd watches (the resolver's DNS sockets), a one-shot
 * POLL_ADD armed again after each completion. */
#include <stdlib.h>

#include "backend/uring/uring.h"

enum { W_DEAD = 1u << 0, W_CANCEL = 1u << 1 /* a cancel of the armed poll is in flight */ };

static void watch_arm(nf__watch_t *w)
{
    struct io_uring_sqe *sqe = nf__uring_sqe(U(w->loop));
    io_uring_prep_poll_add(sqe, w->fd, w->events);
    io_uring_sqe_set_data64(sqe, nf__be_tag(w, OP_WATCH));
    w->be_armed = w->events;
    w->be_inflight++;
}

static void watch_cancel(nf__watch_t *w)
{
    if (w->be_flags & W_CANCEL)
        return;
    struct io_uring_sqe *sqe = nf__uring_sqe(U(w->loop));
    io_uring_prep_cancel64(sqe, nf__be_tag(w, OP_WATCH), 0);
    io_uring_sqe_set_data64(sqe, nf__be_tag(w, OP_WCANCEL));
    w->be_flags |= W_CANCEL;
    w->be_inflight++;
}

int nf__uring_watch_set(nf__watch_t *w)
{
    if (w->be_flags & W_DEAD)
        return -EINVAL;
    if (!w->be_armed) {
        if (w->events)
            watch_arm(w);
    } else if (w->be_armed != w->events) {
        watch_cancel(w); /* its completion arms the new set */
    }
    return 0;
}

void nf__uring_watch_stop(nf__watch_t *w)
{
    if (w->be_flags & W_DEAD)
        return;
    w->be_flags |= W_DEAD;
    /* While the loop is freed no completion is dispatched any more: the
     * ring goes with everything in it. */
    if (w->be_inflight == 0 || w->loop->freeing) {
        w->on_released(w);
        return;
    }
    nf__uring_t *u = U(w->loop);
    w->be_next = u->wdead;
    u->wdead = w;
    if (w->be_armed)
        watch_cancel(w);
}

/* The last completion of a stopped watch came: off the list, released. */
static void watch_release(nf__watch_t *w)
{
    nf__watch_t **pp = &U(w->loop)->wdead;
    while (*pp && *pp != w)
        pp = &(*pp)->be_next;
    if (*pp)
        *pp = w->be_next;
    w->on_released(w);
}

void nf__uring_watch_cqe(nf__watch_t *w, struct io_uring_cqe *cqe, bool cancel)
{
    if (cancel) {
        w->be_flags &= ~W_CANCEL;
    } else {
        w->be_armed = 0;
        if (cqe->res > 0 && !(w->be_flags & W_DEAD))
            w->on_ready(w, (uint32_t)cqe->res); /* may set or stop w: it still counts this poll */
    }
    w->be_inflight--;
    if (w->be_flags & W_DEAD) {
        if (w->be_inflight == 0)
            watch_release(w);
        return;
    }
    if (!w->be_armed && w->events && !(w->be_flags & W_CANCEL))
        watch_arm(w);
}
