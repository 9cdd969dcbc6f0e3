/* netframe — the io_uring backend.
 *
 * Reads: one multishot receive per connection, selecting buffers from a ring
 * of provided buffers that the loop registers with the kernel (group 0). The
 * kernel takes a buffer only when bytes arrive, so an idle connection holds
 * none. After the read callback the buffer goes straight back to the ring
 * (or, if the program kept it, a fresh one takes its slot). When the ring
 * runs dry the kernel ends the multishot receive with -ENOBUFS; the
 * connection is then re-armed at the end of the batch, after buffers were
 * returned, so no byte is lost (they wait in the socket).
 *
 * Kernels without a buffer ring or multishot receive (or uring_no_bufring)
 * use the fallback: a one-shot poll for readability, then read(2) into the
 * loop's scratch buffer, as the epoll backend does.
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
 * Registered files (when fixed_files > 0): a sparse table of that many slots. Each
 * connection's socket is installed in a free slot at its first request
 * (io_uring_register_files_update), its receives and sends then name the slot
 * (IOSQE_FIXED_FILE: no fget/fput per request), and the slot is emptied when
 * the connection is released, before the net layer close()s the fd. The plain
 * fd stays open: socket options, getpeername, urgent data and shutdown use it.
 * A full table (or a refused update) leaves that connection on its plain fd.
 *
 * user_data: pointer to the connection or listener | an op tag in the low
 * 3 bits (both are malloc'd, so 16-byte aligned). Every operation in flight
 * is counted on its object; a closing object is released only when its
 * count is zero, so no completion ever touches freed memory. */
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net/transport.h"
#include "backend/uring_udp.h"

enum op {
    OP_WAKE = 0,
    OP_ACCEPT = 1,
    OP_RECV = 2,
    OP_SEND = 3,
    OP_CONNECT = 4,
    OP_POLL = 5,
    OP_CANCEL = 6,   /* counted on the object it cancels */
    OP_LCANCEL = 7,  /* same, on a listener */
    OP_TIMERFD = 8,  /* NF_MODE_EVENT: the loop's timerfd expired */
    OP_SENDZC = 9,   /* a zero-copy send; the pointer is its struct zc_req */
    OP_WATCH = 10,   /* a one-shot poll of an nf__watch_t (the resolver's sockets) */
    OP_WCANCEL = 11, /* a cancel of it, counted on the watch */
    /* UDP (uring_udp.c): 12..15 */
    OP_UDP_RECV = NF__UOP_UDP_RECV,
    OP_UDP_SEND = NF__UOP_UDP_SEND,
    OP_UDP_POLL = NF__UOP_UDP_POLL,
    OP_UDP_CANCEL = NF__UOP_UDP_CANCEL,
};
#define OP_MASK 15u /* malloc'd objects are 16-byte aligned */

/* be_flags bits */
enum {
    B_RECV = 1u << 0,
    B_SEND = 1u << 1,
    B_CONNECT = 1u << 2,
    B_POLL = 1u << 3,
    B_ACCEPT = 1u << 4,
    B_STARVED = 1u << 5,
    B_NOFIX = 1u << 6, /* no fixed file slot for this connection: plain fd */
};

/* Defined by kernels since 6.2; liburing 2.3's header predates them. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define BGID 0

typedef struct uring {
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
    uint64_t issuer;  /* SINGLE_ISSUER: the thread that started the ring (thread_id()) */
    nf_loop_t *loop;
    nf_buf_t *scratch; /* fallback reads */
    nf_conn_t **starved;
    unsigned nstarved, starved_cap;
    /* registered (fixed) file table */
    bool files;      /* a sparse table of nfiles slots is registered */
    unsigned *ffree; /* free slots, a stack */
    unsigned nffree, nfiles;
    bool zc; /* zero-copy sends of zc_send_min bytes and more */
    /* stopped watches whose poll or cancel is still in flight: released by
     * their last completion, or by u_destroy (the ring goes with them) */
    nf__watch_t *wdead;
} uring_t;

/* A zero-copy send in flight: lives until its notification. */
struct zc_req {
    nf_conn_t *c;
    nf_buf_t *b; /* a reference, dropped at the notification */
};

struct send_state {
    struct msghdr mh;
    struct iovec iov[16];
    struct zc_req *zc; /* the zero-copy send in flight (to cancel it) */
};

static inline uring_t *U(nf_loop_t *loop) { return loop->be; }

static inline uint64_t tag(void *p, enum op op) { return (uint64_t)(uintptr_t)p | op; }

static void ring_start(uring_t *u);

/* A process-unique id for the calling thread (pthread_t values are reused by
 * new threads, and a ring's issuer must not be mistaken for its successor). */
static uint64_t thread_id(void)
{
    static atomic_uint_fast64_t next = 1;
    static _Thread_local uint64_t id;
    if (NF__UNLIKELY(!id))
        id = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    return id;
}

static struct io_uring_sqe *sqe_get(uring_t *u)
{
    nf__kick(u->loop); /* event mode, from outside a step: submit at the next one */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (NF__UNLIKELY(!sqe)) {
        /* The queue is full: make room. A ring still disabled (nothing ran
         * yet) is enabled here, by the thread that filled it. */
        if (!u->started)
            ring_start(u);
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* ---- registered files ----------------------------------------------------------- */

/* Installs c's socket in a free slot of the fixed file table; with none free
 * (or the kernel refusing), c keeps its plain fd for life. */
static void file_install(uring_t *u, nf_conn_t *c)
{
    if (u->nffree == 0 || c->fd < 0) {
        c->be_flags |= B_NOFIX;
        return;
    }
    unsigned slot = u->ffree[--u->nffree];
    if (io_uring_register_files_update(&u->ring, slot, &c->fd, 1) != 1) {
        u->ffree[u->nffree++] = slot;
        c->be_flags |= B_NOFIX;
        return;
    }
    c->be_slot = slot + 1;
    u->loop->stats.conns_fixed_file++;
}

/* Empties c's slot (nothing is in flight on it any more); the net layer then
 * close()s the plain fd, and the socket goes with its last reference. */
static void file_release(uring_t *u, nf_conn_t *c)
{
    int none = -1;
    unsigned slot = c->be_slot - 1;
    io_uring_register_files_update(&u->ring, slot, &none, 1);
    u->ffree[u->nffree++] = slot;
    c->be_slot = 0;
    u->loop->stats.conns_fixed_file--;
}

/* Points a prepared request at c's socket: its fixed slot if it has one
 * (installed at the first request), else the plain fd the prep put there. */
static inline void sqe_file(uring_t *u, nf_conn_t *c, struct io_uring_sqe *sqe)
{
    if (NF__UNLIKELY(!c->be_slot) && u->files && !(c->be_flags & B_NOFIX))
        file_install(u, c);
    if (c->be_slot) {
        sqe->fd = (int)(c->be_slot - 1);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

static int files_setup(nf_loop_t *loop, uring_t *u)
{
    unsigned n = loop->cfg.fixed_files;
    u->ffree = malloc(n * sizeof(*u->ffree));
    if (!u->ffree)
        return -ENOMEM;
    int r = io_uring_register_files_sparse(&u->ring, n);
    if (r < 0) {
        free(u->ffree);
        u->ffree = NULL;
        return r;
    }
    for (unsigned i = 0; i < n; i++)
        u->ffree[i] = n - 1 - i; /* slot 0 first */
    u->nffree = u->nfiles = n;
    u->files = true;
    return 0;
}
/* For uring_udp.c */
struct io_uring *nf__uring_ring(nf_loop_t *loop) { return &U(loop)->ring; }
struct io_uring_sqe *nf__uring_sqe(nf_loop_t *loop) { return sqe_get(U(loop)); }

/* ---- buffer ring ------------------------------------------------------------ */

static void slot_add(uring_t *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->slots[bid]->base, (unsigned)u->slots[bid]->cap, (unsigned short)bid, u->mask, 0);
    io_uring_buf_ring_advance(u->br, 1);
}

static int bufring_setup(nf_loop_t *loop, uring_t *u)
{
    unsigned n = loop->cfg.buf_count;
    u->br_bytes = n * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = n, .bgid = BGID};
    int r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        munmap(mem, u->br_bytes);
        return r;
    }
    u->br = mem;
    io_uring_buf_ring_init(u->br);
    u->slots = calloc(n, sizeof(*u->slots));
    if (!u->slots)
        return -ENOMEM;
    u->nslots = n;
    u->mask = io_uring_buf_ring_mask(n);
    for (unsigned i = 0; i < n; i++) {
        u->slots[i] = nf__rbuf_new(loop, loop->cfg.buf_size);
        if (!u->slots[i])
            return -ENOMEM;
        slot_add(u, i);
    }
    return 0;
}

static void bufring_teardown(uring_t *u)
{
    if (u->br) {
        io_uring_unregister_buf_ring(&u->ring, BGID);
        munmap(u->br, u->br_bytes);
        u->br = NULL;
    }
    if (u->slots) {
        for (unsigned i = 0; i < u->nslots; i++)
            nf_buf_unref(u->slots[i]);
        free(u->slots);
        u->slots = NULL;
    }
}

/* ---- what the kernel offers: asked once per process ------------------------
 *
 * Kernel features do not change while a process runs, so they are probed once
 * (the first loop pays ~100 us), on a throw-away ring, and every loop of a
 * thread pool reuses the answer. Setup flags are tried per loop (a refused
 * flag costs one failed io_uring_setup). */

static struct {
    bool recv_multishot; /* multishot receive with a provided buffer ring */
    bool send_zc;        /* IORING_OP_SEND_ZC */
} g_probe;
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;

/* Does this kernel do multishot receive with buffer selection? Ask it: arm
 * one on a socketpair, send a byte, see what completes. */
static bool probe_recv_multishot(struct io_uring *ring)
{
    bool ok = false;
    enum { N = 2, SZ = 64 };
    static char bufs[N][SZ];
    size_t bytes = N * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = N, .bgid = BGID};
    if (io_uring_register_buf_ring(ring, &reg, 0) < 0) {
        munmap(mem, bytes);
        return false;
    }
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    for (unsigned i = 0; i < N; i++)
        io_uring_buf_ring_add(br, bufs[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), (int)i);
    io_uring_buf_ring_advance(br, N);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        io_uring_sqe_set_data64(sqe, 1);
        io_uring_submit(ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 1};
        if (write(sv[1], "x", 1) == 1 && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE);
            bool more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(ring, cqe);
            close(sv[1]);
            sv[1] = -1;
            /* the peer's close ends the receive; collect its last completion */
            while (more && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
                more = cqe->flags & IORING_CQE_F_MORE;
                io_uring_cqe_seen(ring, cqe);
            }
        }
        if (sv[1] >= 0)
            close(sv[1]);
        close(sv[0]);
    }
    io_uring_unregister_buf_ring(ring, BGID);
    munmap(mem, bytes);
    return ok;
}

static void probe_once(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0)
        return;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (probe) {
        g_probe.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        io_uring_free_probe(probe);
    }
    g_probe.recv_multishot = probe_recv_multishot(&ring);
    io_uring_queue_exit(&ring);
}

/* ---- init / destroy ----------------------------------------------------------- */

static void arm_wake(nf_loop_t *loop)
{
    uring_t *u = U(loop);
    struct io_uring_sqe *sqe = sqe_get(u);
    io_uring_prep_poll_add(sqe, loop->wake_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, tag(NULL, OP_WAKE));
    u->wake_armed = true;
}

static void arm_timerfd(nf_loop_t *loop)
{
    struct io_uring_sqe *sqe = sqe_get(U(loop));
    io_uring_prep_poll_add(sqe, loop->timer_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, tag(NULL, OP_TIMERFD));
}

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
static int ring_create(nf_loop_t *loop, uring_t *u, struct io_uring_params *p)
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

/* On the running thread, before its first wait: enable a ring created
 * disabled (this thread becomes its single issuer) and register the ring fd
 * with this thread (io_uring_enter then skips the fd lookup). */
static void ring_start(uring_t *u)
{
    u->started = true;
    u->issuer = thread_id();
    if (u->disabled) {
        /* io_uring_enable_rings() is declared but not exported by liburing 2.3 */
        syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        u->disabled = false;
    }
    if (u->want_reg_fd && !u->reg_fd)
        u->reg_fd = io_uring_register_ring_fd(&u->ring) == 1;
}

static int u_init(nf_loop_t *loop)
{
    pthread_once(&g_probe_once, probe_once);
    uring_t *u = calloc(1, sizeof(*u));
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

    if (!loop->cfg.uring_no_bufring && g_probe.recv_multishot && bufring_setup(loop, u) == 0) {
        u->bufring = true;
    } else {
        bufring_teardown(u);
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
        files_setup(loop, u);
    u->zc = g_probe.send_zc && loop->cfg.zc_send_min > 0;
    if (loop->cfg.mode == NF_MODE_EVENT) {
        /* The kernel signals this eventfd whenever it posts a completion (and,
         * with DEFER_TASKRUN, when completions wait to be posted). */
        u->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (u->event_fd < 0 || io_uring_register_eventfd(&u->ring, u->event_fd) < 0) {
            r = u->event_fd < 0 ? -errno : NF_EBACKEND;
            if (u->event_fd >= 0)
                close(u->event_fd);
            bufring_teardown(u);
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
    arm_wake(loop);
    if (loop->timer_fd >= 0)
        arm_timerfd(loop);
    static const char *const modes[] = {"block", "poll", "event"};
    const char *setup = u->sqpoll                                 ? "sqpoll"
                        : (u->setup & IORING_SETUP_DEFER_TASKRUN) ? "single_issuer,defer_taskrun"
                        : (u->setup & IORING_SETUP_SINGLE_ISSUER) ? "single_issuer,coop_taskrun"
                        : (u->setup & IORING_SETUP_COOP_TASKRUN)  ? "coop_taskrun"
                                                                  : "none";
    bool sqpoll_refused = loop->cfg.mode == NF_MODE_POLL && loop->cfg.sqpoll && !u->sqpoll;
    snprintf(loop->features, sizeof(loop->features),
             "io_uring: mode=%s%s sq=%u cq=%u setup=%s%s recv=%s bufring=%ux%u accept=%s wait=%s ring_fd=%s "
             "files=%s%.0u send_zc=%s%.0u",
             modes[loop->cfg.mode], sqpoll_refused ? "(sqpoll refused)" : "", p.sq_entries, p.cq_entries, setup,
             u->taskrun_flag ? ",taskrun_flag" : "", u->bufring ? "multishot" : "poll+read", u->bufring ? u->nslots : 0,
             u->bufring ? loop->cfg.buf_size : 0, u->ms_accept ? "multishot" : "oneshot",
             u->ext_arg ? "ext_arg" : "timeout_sqe", u->want_reg_fd ? "registered" : "plain",
             u->files ? "fixed:" : "plain", u->files ? u->nfiles : 0,
             !g_probe.send_zc ? "no"
             : u->zc          ? "on>="
                              : "off",
             u->zc ? loop->cfg.zc_send_min : 0);
    return 0;
}

static void u_destroy(nf_loop_t *loop)
{
    uring_t *u = U(loop);
    while (u->wdead) { /* their completions will never be dispatched */
        nf__watch_t *w = u->wdead;
        u->wdead = w->be_next;
        w->on_released(w);
    }
    bufring_teardown(u);
    if (u->scratch)
        nf_buf_unref(u->scratch);
    io_uring_queue_exit(&u->ring);
    if (u->event_fd >= 0)
        close(u->event_fd);
    free(u->starved);
    free(u->ffree);
    free(u);
}

/* ---- listeners ------------------------------------------------------------------ */

static void arm_accept(nf_listener_t *l)
{
    uring_t *u = U(l->loop);
    struct io_uring_sqe *sqe = sqe_get(u);
    if (u->ms_accept && !l->max_conns)
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(l, OP_ACCEPT));
    l->be_flags |= B_ACCEPT;
    l->be_inflight++;
}

static int u_start_listener(nf_listener_t *l)
{
    arm_accept(l);
    return 0;
}

static void u_pause_listener(nf_listener_t *l, bool paused)
{
    /* A limited listener uses one-shot accepts: pausing is not re-arming. */
    if (!paused && !(l->be_flags & B_ACCEPT) && !l->closing)
        arm_accept(l);
}

static void u_stop_listener(nf_listener_t *l)
{
    uring_t *u = U(l->loop);
    if (l->be_flags & B_ACCEPT) {
        struct io_uring_sqe *sqe = sqe_get(u);
        io_uring_prep_cancel64(sqe, tag(l, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, tag(l, OP_LCANCEL));
        l->be_inflight++;
    }
    if (l->be_inflight == 0)
        nf__listener_released(l);
    nf__kick(l->loop);
}

static void on_accept(nf_listener_t *l, struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
        l->be_flags &= ~B_ACCEPT;
        l->be_inflight--;
    }
    if (l->closing) {
        if (cqe->res >= 0)
            close(cqe->res);
        if (l->be_inflight == 0)
            nf__listener_released(l);
        return;
    }
    nf__listener_accepted(l, cqe->res);
    if (!(l->be_flags & B_ACCEPT) && !l->paused && !l->backoff && !l->closing)
        arm_accept(l);
}

/* ---- connections ------------------------------------------------------------------- */

static void arm_recv(nf_conn_t *c)
{
    uring_t *u = U(c->loop);
    struct io_uring_sqe *sqe = sqe_get(u);
    /* A connection that takes urgent bytes apart reads through poll + read:
     * a pending receive would consume the urgent byte's place in the stream
     * before POLLPRI is seen (and POLLPRI alone is not woken on 6.x). */
    bool urgent = nf__conn_wants_urgent(c);
    if (u->bufring && !urgent) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
        c->be_flags |= B_RECV;
    } else {
        io_uring_prep_poll_add(sqe, c->fd, POLLIN | POLLRDHUP | (urgent ? POLLPRI : 0));
        io_uring_sqe_set_data64(sqe, tag(c, OP_POLL));
        c->be_flags |= B_POLL;
    }
    sqe_file(u, c, sqe);
    c->be_inflight++;
}

static int u_start_conn(nf_conn_t *c)
{
    if (!U(c->loop)->bufring || nf__conn_wants_urgent(c)) {
        int err = nf__set_nonblock(c->fd, true);
        if (err)
            return err;
    }
    arm_recv(c);
    return 0;
}

static int u_connect(nf_conn_t *c)
{
    uring_t *u = U(c->loop);
    const nf_addr_t *a = nf__conn_target(c);
    struct io_uring_sqe *sqe = sqe_get(u);
    io_uring_prep_connect(sqe, c->fd, &a->u.sa, a->len);
    io_uring_sqe_set_data64(sqe, tag(c, OP_CONNECT));
    c->be_flags |= B_CONNECT;
    c->be_inflight++;
    return NF__PENDING;
}

/* A zero-copy send of the head buffer; 0, or -ENOMEM (send it plainly). */
static int send_zc(uring_t *u, nf_conn_t *c, struct io_uring_sqe *sqe, const struct iovec *one)
{
    struct send_state *st = c->send_state;
    if (!st && !(st = c->send_state = calloc(1, sizeof(*st))))
        return -ENOMEM;
    struct zc_req *z = malloc(sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->c = c;
    z->b = nf_buf_ref(c->wq_head->buf); /* until the notification */
    st->zc = z;
    io_uring_prep_send_zc(sqe, c->fd, one->iov_base, one->iov_len, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE);
    io_uring_sqe_set_data64(sqe, tag(z, OP_SENDZC));
    return 0;
}

static int u_send(nf_conn_t *c)
{
    uring_t *u = U(c->loop);
    struct io_uring_sqe *sqe = sqe_get(u);
    struct iovec one;
    nf__conn_iov(c, &one, 1);
    if (u->zc && one.iov_len >= c->loop->cfg.zc_send_min && send_zc(u, c, sqe, &one) == 0) {
        sqe_file(u, c, sqe);
        c->be_flags |= B_SEND;
        c->be_inflight++; /* until the notification (or a result without one) */
        return NF__PENDING;
    }
    if (!c->wq_head->next) {
        io_uring_prep_send(sqe, c->fd, one.iov_base, one.iov_len, MSG_NOSIGNAL);
    } else {
        struct send_state *st = c->send_state;
        if (!st) {
            st = calloc(1, sizeof(*st));
            if (!st) { /* send one buffer instead */
                io_uring_prep_send(sqe, c->fd, one.iov_base, one.iov_len, MSG_NOSIGNAL);
                goto out;
            }
            c->send_state = st;
        }
        memset(&st->mh, 0, sizeof(st->mh));
        st->mh.msg_iov = st->iov;
        st->mh.msg_iovlen = (size_t)nf__conn_iov(c, st->iov, 16);
        io_uring_prep_sendmsg(sqe, c->fd, &st->mh, MSG_NOSIGNAL);
    }
out:
    sqe_file(u, c, sqe);
    io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
    c->be_flags |= B_SEND;
    c->be_inflight++;
    return NF__PENDING;
}

static void release_if_done(nf_conn_t *c)
{
    if ((c->flags & NF__C_CLOSING) && c->be_inflight == 0) {
        free(c->send_state);
        c->send_state = NULL;
        if (c->be_slot) /* nothing in flight names the slot any more */
            file_release(U(c->loop), c);
        nf__conn_released(c);
    }
}

static void cancel_op(uring_t *u, nf_conn_t *c, enum op op)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    io_uring_prep_cancel64(sqe, tag(c, op), 0);
    io_uring_sqe_set_data64(sqe, tag(c, OP_CANCEL));
    c->be_inflight++;
}

static void u_stop_conn(nf_conn_t *c)
{
    uring_t *u = U(c->loop);
    if (c->be_flags & B_RECV)
        cancel_op(u, c, OP_RECV);
    if (c->be_flags & B_POLL)
        cancel_op(u, c, OP_POLL);
    if (c->be_flags & B_SEND) {
        struct send_state *st = c->send_state;
        if (st && st->zc) { /* a zero-copy send is known by its request */
            struct io_uring_sqe *sqe = sqe_get(u);
            io_uring_prep_cancel64(sqe, tag(st->zc, OP_SENDZC), 0);
            io_uring_sqe_set_data64(sqe, tag(c, OP_CANCEL));
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

static void u_read_stop(nf_conn_t *c)
{
    uring_t *u = U(c->loop);
    /* Completions already on their way are stashed by the net layer. */
    if (c->be_flags & B_RECV)
        cancel_op(u, c, OP_RECV);
    if (c->be_flags & B_POLL)
        cancel_op(u, c, OP_POLL);
}

static void u_read_start(nf_conn_t *c)
{
    /* If a cancelled receive is still on its way, its last completion re-arms. */
    if (!(c->be_flags & (B_RECV | B_POLL | B_STARVED)) && !(c->flags & NF__C_EOF))
        arm_recv(c);
}

static void starve(uring_t *u, nf_conn_t *c)
{
    if (c->be_flags & B_STARVED)
        return;
    if (u->nstarved == u->starved_cap) {
        unsigned cap = u->starved_cap ? u->starved_cap * 2 : 64;
        nf_conn_t **s = realloc(u->starved, cap * sizeof(*s));
        if (!s) { /* cannot remember it: fail the connection rather than stall it */
            nf__conn_read_end(c, -ENOMEM);
            return;
        }
        u->starved = s;
        u->starved_cap = cap;
    }
    c->be_flags |= B_STARVED;
    c->be_inflight++; /* keeps c alive until re-armed */
    u->starved[u->nstarved++] = c;
}

static void on_recv(nf_loop_t *loop, nf_conn_t *c, struct io_uring_cqe *cqe)
{
    uring_t *u = U(loop);
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
            nf__conn_read(c, b, (size_t)res);
        if (b->refs > 1) { /* kept by the program: a new buffer takes the slot */
            nf_buf_unref(b);
            b = u->slots[bid] = nf__rbuf_new(loop, loop->cfg.buf_size);
        }
        if (b)
            slot_add(u, bid); /* else: out of memory, the ring works one short */
    }
    if (c->flags & NF__C_CLOSING) {
        release_if_done(c);
        return;
    }
    if (res == 0) {
        nf__conn_read_end(c, 0);
    } else if (res == -ENOBUFS) {
        loop->stats.bufs_starved++;
        starve(u, c);
    } else if (res < 0 && res != -ECANCELED) {
        nf__conn_read_end(c, res);
    } else if (!more && !(c->flags & (NF__C_CLOSING | NF__C_RPAUSED)) && !c->stash) {
        /* the kernel ended the multishot (or a cancel raced a restart): carry
         * on, unless kept reads wait: the net layer re-arms once they are out */
        arm_recv(c);
    }
    release_if_done(c);
}

/* Fallback read path: readable (or hung up); read until drained or a bound. */
static void on_poll(nf_loop_t *loop, nf_conn_t *c, struct io_uring_cqe *cqe)
{
    uring_t *u = U(loop);
    c->be_flags &= ~B_POLL;
    c->be_inflight--;
    if (c->flags & NF__C_CLOSING) {
        release_if_done(c);
        return;
    }
    if (cqe->res < 0 && cqe->res != -ECANCELED) {
        nf__conn_read_end(c, cqe->res);
        release_if_done(c);
        return;
    }
    if (cqe->res > 0 && (cqe->res & POLLPRI)) {
        nf__conn_urgent(c); /* before any read passes the urgent mark */
        if (c->flags & NF__C_CLOSING) {
            release_if_done(c);
            return;
        }
    }
    if (!u->scratch && !(u->scratch = nf__rbuf_new(loop, loop->cfg.buf_size))) {
        nf__conn_read_end(c, -ENOMEM);
        release_if_done(c);
        return;
    }
    for (int i = 0; i < 4 && !(c->flags & (NF__C_CLOSING | NF__C_RPAUSED)); i++) {
        ssize_t n = read(c->fd, u->scratch->base, u->scratch->cap);
        if (n > 0) {
            nf__conn_read(c, u->scratch, (size_t)n);
            if (u->scratch->refs > 1) {
                nf_buf_unref(u->scratch);
                u->scratch = nf__rbuf_new(loop, loop->cfg.buf_size);
                if (!u->scratch) {
                    nf__conn_read_end(c, -ENOMEM);
                    break;
                }
            }
            if ((size_t)n < u->scratch->cap)
                break; /* drained */
            continue;
        }
        if (n == 0) {
            nf__conn_read_end(c, 0);
            release_if_done(c);
            return;
        }
        if (errno == EAGAIN || errno == EINTR)
            break;
        nf__conn_read_end(c, -errno);
        break;
    }
    if (!(c->flags & (NF__C_CLOSING | NF__C_EOF | NF__C_RPAUSED)))
        arm_recv(c);
    release_if_done(c);
}

static void on_send(nf_conn_t *c, struct io_uring_cqe *cqe)
{
    c->be_flags &= ~B_SEND;
    c->be_inflight--;
    nf__conn_sent(c, cqe->res == -ECANCELED ? 0 : cqe->res);
    release_if_done(c);
}

/* Both completions of a zero-copy send: the result (with IORING_CQE_F_MORE
 * when a notification follows), then the notification, after which the
 * kernel no longer reads the buffer and its reference is dropped. */
static void on_sendzc(nf_loop_t *loop, struct zc_req *z, struct io_uring_cqe *cqe)
{
    nf_conn_t *c = z->c;
    bool done = true;
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        loop->stats.zc_sends++;
        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
            loop->stats.zc_copied++;
    } else {
        int res = cqe->res;
        done = !(cqe->flags & IORING_CQE_F_MORE);
        struct send_state *st = c->send_state;
        if (st && st->zc == z)
            st->zc = NULL;
        c->be_flags &= ~B_SEND;
        if (res == -EINVAL || res == -EOPNOTSUPP) {
            /* The kernel or this socket refuses zero-copy (or the usage
             * report): nothing was sent; plain sends from now on. */
            U(loop)->zc = false;
            res = 0;
        }
        nf__conn_sent(c, res == -ECANCELED ? 0 : res);
    }
    if (done) {
        nf_buf_unref(z->b);
        free(z);
        c->be_inflight--;
    }
    release_if_done(c);
}

static void on_connect(nf_conn_t *c, struct io_uring_cqe *cqe)
{
    c->be_flags &= ~B_CONNECT;
    c->be_inflight--;
    nf__conn_connected(c, cqe->res);
    release_if_done(c);
}

static void on_cancel(nf_conn_t *c, struct io_uring_cqe *cqe)
{
    c->be_inflight--;
    /* -EALREADY: the operation is running and cannot be cancelled; a
     * shutdown makes any socket operation complete at once. */
    if (cqe->res == -EALREADY && c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    release_if_done(c);
}

/* ---- fd watches: a one-shot POLL_ADD, armed again after each completion ---------- */

enum { W_DEAD = 1u << 0, W_CANCEL = 1u << 1 /* a cancel of the armed poll is in flight */ };

static void watch_arm(nf__watch_t *w)
{
    struct io_uring_sqe *sqe = sqe_get(U(w->loop));
    io_uring_prep_poll_add(sqe, w->fd, w->events);
    io_uring_sqe_set_data64(sqe, tag(w, OP_WATCH));
    w->be_armed = w->events;
    w->be_inflight++;
}

static void watch_cancel(nf__watch_t *w)
{
    if (w->be_flags & W_CANCEL)
        return;
    struct io_uring_sqe *sqe = sqe_get(U(w->loop));
    io_uring_prep_cancel64(sqe, tag(w, OP_WATCH), 0);
    io_uring_sqe_set_data64(sqe, tag(w, OP_WCANCEL));
    w->be_flags |= W_CANCEL;
    w->be_inflight++;
}

static int u_watch_set(nf__watch_t *w)
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

static void u_watch_stop(nf__watch_t *w)
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
    uring_t *u = U(w->loop);
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

static void on_watch(nf__watch_t *w, struct io_uring_cqe *cqe, bool cancel)
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

static void dispatch(nf_loop_t *loop, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (ud == LIBURING_UDATA_TIMEOUT)
        return;
    void *p = (void *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
    switch ((enum op)(ud & OP_MASK)) {
    case OP_WAKE:
        U(loop)->wake_armed = false;
        nf__wake_drain(loop);
        arm_wake(loop);
        break;
    case OP_ACCEPT: on_accept(p, cqe); break;
    case OP_RECV: on_recv(loop, p, cqe); break;
    case OP_POLL: on_poll(loop, p, cqe); break;
    case OP_SEND: on_send(p, cqe); break;
    case OP_SENDZC: on_sendzc(loop, p, cqe); break;
    case OP_CONNECT: on_connect(p, cqe); break;
    case OP_CANCEL: on_cancel(p, cqe); break;
    case OP_WATCH: on_watch(p, cqe, false); break;
    case OP_WCANCEL: on_watch(p, cqe, true); break;
    case OP_UDP_RECV:
    case OP_UDP_SEND:
    case OP_UDP_POLL:
    case OP_UDP_CANCEL: nf__uring_udp_cqe(loop, p, (unsigned)(ud & OP_MASK), cqe); break;
    case OP_TIMERFD:
        nf__timer_fd_drain(loop);
        arm_timerfd(loop);
        break;
    case OP_LCANCEL: {
        nf_listener_t *l = p;
        if (--l->be_inflight == 0)
            nf__listener_released(l);
        break;
    }
    }
}

static void rearm_starved(uring_t *u)
{
    for (unsigned i = 0; i < u->nstarved; i++) {
        nf_conn_t *c = u->starved[i];
        c->be_flags &= ~B_STARVED;
        c->be_inflight--;
        if (!(c->flags & (NF__C_CLOSING | NF__C_RPAUSED)) && !c->stash)
            arm_recv(c);
        else
            release_if_done(c);
    }
    u->nstarved = 0;
}

/* A step that must not block: submit what is prepared, and enter the kernel
 * only when it has something for us. With TASKRUN_FLAG the kernel says so in
 * the SQ flags (IORING_SQ_TASKRUN: completions wait to be posted, which
 * DEFER_TASKRUN and COOP_TASKRUN rings do only when we enter); with SQPOLL the
 * kernel thread submits and posts, so a busy poll loop makes no system call. */
static int submit_nowait(uring_t *u)
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
    uring_t *u = U(loop);
    struct io_uring_cqe *cqe = NULL;
    int r;
    if (NF__UNLIKELY(!u->started))
        ring_start(u);
    else if ((u->setup & IORING_SETUP_SINGLE_ISSUER) && NF__UNLIKELY(u->issuer != thread_id()))
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

static void u_submit(nf_loop_t *loop)
{
    uring_t *u = U(loop);
    if (io_uring_sq_ready(&u->ring) > 0)
        io_uring_submit(&u->ring);
}

static bool u_pending(nf_loop_t *loop)
{
    uring_t *u = U(loop);
    return io_uring_cq_ready(&u->ring) > 0 || u->nstarved > 0;
}

static int u_event_fd(const nf_loop_t *loop) { return ((const uring_t *)loop->be)->event_fd; }

const nf__backend_ops_t nf__uring_ops = {
    .size = sizeof(nf__backend_ops_t),
    .name = "io_uring",
    .init = u_init,
    .destroy = u_destroy,
    .wait = u_wait,
    .start_listener = u_start_listener,
    .pause_listener = u_pause_listener,
    .stop_listener = u_stop_listener,
    .start_conn = u_start_conn,
    .connect = u_connect,
    .send = u_send,
    .stop_conn = u_stop_conn,
    .read_stop = u_read_stop,
    .read_start = u_read_start,
    .submit = u_submit,
    .pending = u_pending,
    .event_fd = u_event_fd,
    .udp_start = nf__uring_udp_start,
    .udp_flush = nf__uring_udp_flush,
    .udp_stop = nf__uring_udp_stop,
    .connect_reset = NULL, /* after a connect's completion nothing is in flight on its fd */
    .watch_set = u_watch_set,
    .watch_stop = u_watch_stop,
};
