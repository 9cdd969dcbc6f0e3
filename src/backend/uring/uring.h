/* netframe — the io_uring backend's private header: its per-loop state, the
 * op tags of user_data, and what its files share. The files, lowest first:
 *   ring.c    submission entries, ring start, registered files, the buffer
 *             ring, the loop's own polls (wake eventfd, timerfd)
 *   watch.c   fd watches
 *   udp.c     datagram sockets
 *   stream.c  listeners and connections (accept, recv, poll+read, send/zc,
 *             connect, cancels, starved receives) and the completion
 *             dispatch, in one unit so the handlers inline into it
 *   uring.c   setup, the wait, the ops table
 * Each file uses only the ones above it in this list (no circles). */
#ifndef NF_BACKEND_URING_H
#define NF_BACKEND_URING_H

#include <liburing.h>

#include "backend/backend_private.h"

/* user_data: pointer to the object | an op tag (malloc'd: 16-byte aligned) */
enum nf__uop {
    OP_WAKE = 0,
    OP_ACCEPT = 1,
    OP_RECV = 2,
    OP_SEND = 3,
    OP_CONNECT = 4,
    OP_POLL = 5,
    OP_CANCEL = 6,      /* counted on the object it cancels */
    OP_LCANCEL = 7,     /* same, on a listener */
    OP_TIMERFD = 8,     /* NF_MODE_EVENT: the loop's timerfd expired */
    OP_SENDZC = 9,      /* a zero-copy send; the pointer is its struct nf__zc_req */
    OP_WATCH = 10,      /* a one-shot poll of an nf__watch_t (the resolver's sockets) */
    OP_WCANCEL = 11,    /* a cancel of it, counted on the watch */
    OP_UDP_RECV = 12,   /* multishot recvmsg, on the datagram socket */
    OP_UDP_SEND = 13,   /* send(msg), on the nf__dgram_t */
    OP_UDP_POLL = 14,   /* fallback poll for readability, on the socket */
    OP_UDP_CANCEL = 15, /* a cancel, counted on the socket */
};
#define OP_MASK 15u

/* be_flags bits of connections and listeners (the field has 8) */
enum {
    B_RECV = 1u << 0,
    B_SEND = 1u << 1,
    B_CONNECT = 1u << 2,
    B_POLL = 1u << 3,
    B_ACCEPT = 1u << 4,
    B_STARVED = 1u << 5,
    B_NOFIX = 1u << 6, /* no fixed file slot for this connection: plain fd */
};

#define BGID 0 /* the loop's ring of read buffers; datagram sockets use 1.. */

typedef struct nf__uring {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    nf_buf_t **slots;
    unsigned nslots, mask;
    bool bufring;   /* provided buffer ring + multishot receive */
    bool ms_accept; /* multishot accept */
    bool ext_arg;   /* wait with timeout without a timeout SQE */
    bool wake_armed;
    bool started;      /* the first wait ran: rings enabled, ring fd registered */
    bool disabled;     /* created with IORING_SETUP_R_DISABLED, not yet enabled */
    bool taskrun_flag; /* the kernel tells us (IORING_SQ_TASKRUN) when to enter */
    bool sqpoll;
    bool want_reg_fd; /* register the ring fd on the running thread */
    bool reg_fd;      /* ... done */
    int event_fd;     /* NF_MODE_EVENT: eventfd registered with the ring, else -1 */
    unsigned setup;   /* the IORING_SETUP_* flags the ring was created with */
    uint64_t issuer;  /* SINGLE_ISSUER: the thread that started the ring (nf__uring_thread_id()) */
    nf_loop_t *loop;
    nf_buf_t *scratch; /* fallback reads */
    nf__io_t **starved;
    unsigned nstarved, starved_cap;
    /* registered (fixed) file table */
    bool files;      /* a sparse table of nfiles slots is registered */
    unsigned *ffree; /* free slots, a stack */
    unsigned nffree, nfiles;
    bool zc; /* zero-copy sends of zc_send_min bytes and more */
    /* stopped watches whose poll or cancel is still in flight: released by
     * their last completion, or by u_destroy (the ring goes with them) */
    nf__watch_t *wdead;
} nf__uring_t;

static inline nf__uring_t *U(const nf_loop_t *loop) { return loop->be; }

/* ring.c */
uint64_t nf__uring_thread_id(void);
void nf__uring_start(nf__uring_t *u);
struct io_uring_sqe *nf__uring_sqe_full(nf__uring_t *u);
void nf__uring_file_install(nf__uring_t *u, nf__io_t *c);
void nf__uring_file_release(nf__uring_t *u, nf__io_t *c);
void nf__uring_arm_wake(nf_loop_t *loop);
void nf__uring_arm_timerfd(nf_loop_t *loop);

/* A submission entry (on every request: inline, the full queue aside). */
static inline struct io_uring_sqe *nf__uring_sqe(nf__uring_t *u)
{
    nf__kick(u->loop); /* event mode, from outside a step: submit at the next one */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    return NF__LIKELY(sqe != NULL) ? sqe : nf__uring_sqe_full(u);
}

/* Points a prepared request at c's socket: its fixed slot if it has one
 * (installed at the first request), else the plain fd the prep put there. */
static inline void nf__uring_sqe_file(nf__uring_t *u, nf__io_t *c, struct io_uring_sqe *sqe)
{
    if (NF__UNLIKELY(!c->be_slot) && u->files && !(c->be_flags & B_NOFIX))
        nf__uring_file_install(u, c);
    if (c->be_slot) {
        sqe->fd = (int)(c->be_slot - 1);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}
int nf__uring_files_setup(nf_loop_t *loop, nf__uring_t *u);
int nf__uring_bufring_setup(nf_loop_t *loop, nf__uring_t *u);
void nf__uring_bufring_teardown(nf__uring_t *u);
void nf__uring_slot_add(nf__uring_t *u, unsigned bid);

/* stream.c */
int nf__uring_start_listener(nf__io_t *l);
void nf__uring_pause_listener(nf__io_t *l, bool paused);
void nf__uring_stop_listener(nf__io_t *l);
int nf__uring_start_conn(nf__io_t *c);
int nf__uring_connect(nf__io_t *c);
int nf__uring_send(nf__io_t *c);
void nf__uring_stop_conn(nf__io_t *c);
void nf__uring_read_stop(nf__io_t *c);
void nf__uring_read_start(nf__io_t *c);
/* dispatches the completions waiting (and re-arms starved receives) */
int nf__uring_reap(nf_loop_t *loop);

/* watch.c */
int nf__uring_watch_set(nf__watch_t *w);
void nf__uring_watch_stop(nf__watch_t *w);
void nf__uring_watch_cqe(nf__watch_t *w, struct io_uring_cqe *cqe, bool cancel);

/* udp.c */
int nf__uring_udp_start(nf__io_t *u, unsigned recv_size, unsigned recv_count, char *features, size_t features_len);
void nf__uring_udp_flush(nf__io_t *u);
void nf__uring_udp_stop(nf__io_t *u);
void nf__uring_udp_cqe(nf_loop_t *loop, void *p, unsigned op, struct io_uring_cqe *cqe);

#endif
