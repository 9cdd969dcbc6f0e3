/* netframe — the io_uring backend: ring setup, the wait, completion
 * dispatch, fd watches and the ops table. Listeners and connections are in
 * stream.c, datagram sockets in udp.c, the ring's plumbing in ring.c (see
 * uring.h for the order of the files).
 *
 * user_data: pointer to the object | an op tag in the low 4 bits (objects
 * are malloc'd, so 16-byte aligned). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/uring/uring.h"

/* Creates the ring with the best setup flags this kernel takes, in order:
 *  poll mode with sqpoll: SQPOLL (a kernel thread submits);
 *  SINGLE_ISSUER | DEFER_TASKRUN: completions are posted only when the loop
 *    asks for them (no task-work interruptions, no locking in the kernel);
 *  SINGLE_ISSUER | COOP_TASKRUN;  COOP_TASKRUN;  nothing.
 * TASKRUN_FLAG goes with the task-run flags: the kernel raises IORING_SQ_TASKRUN
 * when completions wait to be posted, so a non-blocking step enters the kernel
 * only then. SINGLE_ISSUER rings are created disabled (R_DISABLED) and enabled
 * by the first nf_loop_run: the thread that runs the loop becomes its issuer,
 * wherever the loop was created. */
static int ring_create(nf_loop_t *loop, nf__uring_t *u, struct io_uring_params *p)
{
    const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    const unsigned no = loop->cfg.uring_disable;
    unsigned ladder[6], n = 0;
    if (loop->cfg.mode == NF_MODE_POLL && loop->cfg.sqpoll)
        ladder[n++] = IORING_SETUP_SQPOLL;
    /* DEFER_TASKRUN posts completions only when the loop enters the kernel to
     * get them: right for a loop that sleeps there (block mode). Measured on
     * 6.18, the kernel then neither signals a registered eventfd nor raises
     * IORING_SQ_TASKRUN for the completions it holds back, so event mode
     * could not tell when to step, and poll mode would have to make a system
     * call per spin: those use COOP_TASKRUN + TASKRUN_FLAG instead. */
    if (loop->cfg.mode == NF_MODE_BLOCK && !(no & (NF_URING_NO_SINGLE_ISSUER | NF_URING_NO_DEFER_TASKRUN)))
        ladder[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                      IORING_SETUP_R_DISABLED;
    if (!(no & (NF_URING_NO_SINGLE_ISSUER | NF_URING_NO_COOP_TASKRUN)))
        ladder[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                      IORING_SETUP_R_DISABLED;
    if (!(no & NF_URING_NO_COOP_TASKRUN))
        ladder[n++] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    ladder[n++] = 0;
    int r = -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        for (int all = 1; all >= 0; all--) { /* SUBMIT_ALL came with 5.18 */
            memset(p, 0, sizeof(*p));
            p->flags = ladder[i] | (all ? base : IORING_SETUP_CQSIZE);
            p->cq_entries = loop->cfg.queue_entries * 4;
            if (ladder[i] & IORING_SETUP_SQPOLL)
                p->sq_thread_idle = loop->cfg.sqpoll_idle_ms;
            r = io_uring_queue_init_params(loop->cfg.queue_entries, &u->ring, p);
            if (r == 0) {
                u->setup = p->flags;
                return 0;
            }
            if (r != -EINVAL && !(r == -EPERM && (ladder[i] & IORING_SETUP_SQPOLL)))
                return r; /* -ENOMEM, -EMFILE, io_uring disabled: no flag helps */
        }
    }
    return r;
}

static int u_init(nf_loop_t *loop)
{
    const nf__probe_t *pr = nf__probe();
    nf__uring_t *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->event_fd = -1;
    u->loop = loop;
    struct io_uring_params p;
    int r = ring_create(loop, u, &p);
    if (r < 0) {
        free(u);
        return r;
    }
    loop->be = u;
    u->ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
    u->disabled = (u->setup & IORING_SETUP_R_DISABLED) != 0;
    u->taskrun_flag = (u->setup & IORING_SETUP_TASKRUN_FLAG) != 0;
    u->sqpoll = (u->setup & IORING_SETUP_SQPOLL) != 0;
    u->want_reg_fd = !(loop->cfg.uring_disable & NF_URING_NO_REG_RING_FD);

    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    bool have_poll = probe && io_uring_opcode_supported(probe, IORING_OP_POLL_ADD);
    bool have_send =
        probe && io_uring_opcode_supported(probe, IORING_OP_SEND) &&
        io_uring_opcode_supported(probe, IORING_OP_SENDMSG) && io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
        io_uring_opcode_supported(probe, IORING_OP_CONNECT) && io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    if (probe)
        io_uring_free_probe(probe);
    if (!have_poll || !have_send) { /* too old to be worth it: let epoll run */
        io_uring_queue_exit(&u->ring);
        free(u);
        loop->be = NULL;
        return NF_EBACKEND;
    }

    if (!loop->cfg.uring_no_bufring && pr->recv_multishot && nf__uring_bufring_setup(loop, u) == 0) {
        u->bufring = true;
    } else {
        nf__uring_bufring_teardown(u);
        u->scratch = nf__rbuf_new(loop, loop->cfg.buf_size);
        if (!u->scratch) {
            io_uring_queue_exit(&u->ring);
            free(u);
            loop->be = NULL;
            return -ENOMEM;
        }
    }
    /* Multishot accept came with 5.19, as did the buffer ring. */
    u->ms_accept = u->bufring;
    /* A refused table (an old kernel, RLIMIT_NOFILE below fixed_files) means
     * plain fds for every connection. */
    if (loop->cfg.fixed_files > 0)
        nf__uring_files_setup(loop, u);
    u->zc = pr->send_zc && loop->cfg.zc_send_min > 0;
    if (loop->cfg.mode == NF_MODE_EVENT) {
        /* The kernel signals this eventfd whenever it posts a completion (and,
         * with DEFER_TASKRUN, when completions wait to be posted). */
        u->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (u->event_fd < 0 || io_uring_register_eventfd(&u->ring, u->event_fd) < 0) {
            r = u->event_fd < 0 ? -errno : NF_EBACKEND;
            if (u->event_fd >= 0)
                close(u->event_fd);
            nf__uring_bufring_teardown(u);
            if (u->scratch)
                nf_buf_unref(u->scratch);
            io_uring_queue_exit(&u->ring);
            free(u->ffree);
            free(u);
            loop->be = NULL;
            return r;
        }
        loop->kick_fd = u->event_fd; /* what the program watches */
    }
    nf__uring_arm_wake(loop);
    if (loop->timer_fd >= 0)
        nf__uring_arm_timerfd(loop);
    const char *setup = u->sqpoll                                 ? "sqpoll"
                        : (u->setup & IORING_SETUP_DEFER_TASKRUN) ? "single_issuer,defer_taskrun"
                        : (u->setup & IORING_SETUP_SINGLE_ISSUER) ? "single_issuer,coop_taskrun"
                        : (u->setup & IORING_SETUP_COOP_TASKRUN)  ? "coop_taskrun"
                                                                  : "none";
    bool sqpoll_refused = loop->cfg.mode == NF_MODE_POLL && loop->cfg.sqpoll && !u->sqpoll;
    snprintf(loop->features, sizeof(loop->features),
             "io_uring: mode=%s%s sq=%u cq=%u setup=%s%s recv=%s bufring=%ux%u accept=%s wait=%s ring_fd=%s "
             "files=%s%.0u send_zc=%s%.0u",
             nf__be_modes[loop->cfg.mode], sqpoll_refused ? "(sqpoll refused)" : "", p.sq_entries, p.cq_entries, setup,
             u->taskrun_flag ? ",taskrun_flag" : "", u->bufring ? "multishot" : "poll+read", u->bufring ? u->nslots : 0,
             u->bufring ? loop->cfg.buf_size : 0, u->ms_accept ? "multishot" : "oneshot",
             u->ext_arg ? "ext_arg" : "timeout_sqe", u->want_reg_fd ? "registered" : "plain",
             u->files ? "fixed:" : "plain", u->files ? u->nfiles : 0,
             !pr->send_zc ? "no"
             : u->zc      ? "on>="
                          : "off",
             u->zc ? loop->cfg.zc_send_min : 0);
    return 0;
}

static void u_destroy(nf_loop_t *loop)
{
    nf__uring_t *u = U(loop);
    while (u->wdead) { /* their completions will never be dispatched */
        nf__watch_t *w = u->wdead;
        u->wdead = w->be_next;
        w->on_released(w);
    }
    nf__uring_bufring_teardown(u);
    if (u->scratch)
        nf_buf_unref(u->scratch);
    io_uring_queue_exit(&u->ring);
    if (u->event_fd >= 0)
        close(u->event_fd);
    free(u->starved);
    free(u->ffree);
    free(u);
}

/* A step that must not block: submit what is prepared, and enter the kernel
 * only when it has something for us. With TASKRUN_FLAG the kernel says so in
 * the SQ flags (IORING_SQ_TASKRUN: completions wait to be posted, which
 * DEFER_TASKRUN and COOP_TASKRUN rings do only when we enter); with SQPOLL the
 * kernel thread submits and posts, so a busy poll loop makes no system call. */
static int submit_nowait(nf__uring_t *u)
{
    unsigned kflags = IO_URING_READ_ONCE(*u->ring.sq.kflags);
    if (u->sqpoll) {
        int r = io_uring_submit(&u->ring);
        if (kflags & IORING_SQ_CQ_OVERFLOW)
            io_uring_get_events(&u->ring);
        return r;
    }
    if (u->setup & IORING_SETUP_DEFER_TASKRUN) /* completions are posted only when we ask */
        return io_uring_submit_and_get_events(&u->ring);
    if (u->taskrun_flag) {
        if (io_uring_sq_ready(&u->ring) == 0 && !(kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
            return 0; /* nothing to submit, nothing to collect: no system call */
        return io_uring_submit_and_get_events(&u->ring);
    }
    return io_uring_submit(&u->ring);
}

static int u_wait(nf_loop_t *loop, int timeout_ms)
{
    nf__uring_t *u = U(loop);
    struct io_uring_cqe *cqe = NULL;
    int r;
    if (NF__UNLIKELY(!u->started))
        nf__uring_start(u);
    else if ((u->setup & IORING_SETUP_SINGLE_ISSUER) && NF__UNLIKELY(u->issuer != nf__uring_thread_id()))
        return -EEXIST; /* the ring belongs to the thread that first ran the loop */
    if (timeout_ms == 0) {
        r = submit_nowait(u);
    } else if (timeout_ms < 0) {
        r = io_uring_submit_and_wait(&u->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L};
        r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
        return r;
    if (timeout_ms != 0)
        nf_loop_update_time(loop); /* callbacks arm timers from the time of the event */
    if (u->event_fd >= 0) {
        /* Consume the signal after the kernel posted, before we look: any
         * completion posted from here on signals the eventfd again. */
        uint64_t v;
        ssize_t n = read(u->event_fd, &v, sizeof(v));
        (void)n;
    }
    return nf__uring_reap(loop);
}

static void u_submit(nf_loop_t *loop)
{
    nf__uring_t *u = U(loop);
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
}

static bool u_pending(nf_loop_t *loop)
{
    nf__uring_t *u = U(loop);
    return io_uring_cq_ready(&u->ring) > 0 || u->nstarved > 0;
}

static int u_event_fd(const nf_loop_t *loop) { return ((const nf__uring_t *)loop->be)->event_fd; }

const nf__backend_ops_t nf__uring_ops = {
    .size = sizeof(nf__backend_ops_t),
    .name = "io_uring",
    .init = u_init,
    .destroy = u_destroy,
    .wait = u_wait,
    .start_listener = nf__uring_start_listener,
    .pause_listener = nf__uring_pause_listener,
    .stop_listener = nf__uring_stop_listener,
    .start_conn = nf__uring_start_conn,
    .connect = nf__uring_connect,
    .send = nf__uring_send,
    .stop_conn = nf__uring_stop_conn,
    .read_stop = nf__uring_read_stop,
    .read_start = nf__uring_read_start,
    .submit = u_submit,
    .pending = u_pending,
    .event_fd = u_event_fd,
    .udp_start = nf__uring_udp_start,
    .udp_flush = nf__uring_udp_flush,
    .udp_stop = nf__uring_udp_stop,
    .connect_reset = NULL, /* after a connect's completion nothing is in flight on its fd */
    .watch_set = nf__uring_watch_set,
    .watch_stop = nf__uring_watch_stop,
};
