/* netframe — the event loop.
 *
 * One loop per thread. The loop owns a backend (io_uring or epoll), a timer
 * heap, a cross-thread post queue and the buffers that reads land in. Every
 * object created on a loop (listener, connection, timer) belongs to it for
 * life and is used only from the loop's thread; other threads reach the loop
 * through nf_loop_post() alone. */
#ifndef NETFRAME_LOOP_H
#define NETFRAME_LOOP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_loop nf_loop_t;

typedef enum nf_backend_kind {
    NF_BACKEND_AUTO = 0, /* NF_BACKEND env var if set, else io_uring, else epoll */
    NF_BACKEND_URING,
    NF_BACKEND_EPOLL,
} nf_backend_kind_t;

typedef struct nf_loop_config {
    nf_backend_kind_t backend;
    unsigned queue_entries; /* io_uring submission queue size (0: 1024) */
    unsigned buf_count;     /* provided read buffers, a power of two (0: 256) */
    unsigned buf_size;      /* bytes per read buffer (0: 16384) */
    unsigned max_events;    /* completions handled per wait (0: 256) */
    /* Debug/test knob: with io_uring, do not use the provided buffer ring and
     * multishot receive; read through poll + read like the fallback path of a
     * kernel without them. */
    int uring_no_bufring;

    /* How the loop collects completions (see docs/modes.md):
     *  NF_MODE_BLOCK  (default) sleep in the kernel until something completes;
     *  NF_MODE_POLL   never sleep: spin on the completion queue (epoll: wait
     *                 with timeout 0), for the lowest latency at the price of
     *                 a busy core;
     *  NF_MODE_EVENT  expose one fd (nf_loop_fd) that is readable whenever a
     *                 step is due, to embed the loop in another event loop.
     * Left at NF_MODE_BLOCK, NF_MODE=block|poll|event in the environment
     * chooses (the test suite runs that way in every mode). */
    int mode;
    /* NF_MODE_POLL on io_uring: let a kernel thread submit (IORING_SETUP_SQPOLL),
     * so a loop that is busy never enters the kernel at all. It idles after
     * sqpoll_idle_ms without submissions (0: 1000). Falls back to a plain
     * polled ring when the kernel refuses it (reported by nf_loop_features). */
    int sqpoll;
    unsigned sqpoll_idle_ms;
    /* io_uring zero-copy sends (IORING_OP_SEND_ZC): a queued buffer of at
     * least this many bytes is sent without a copy into the kernel; its
     * memory is released only after the kernel's notification that it is no
     * longer used. 0 (default): never. Probed; without kernel support (or if
     * the kernel refuses it for a socket) plain sends are used. On loopback
     * the kernel copies such sends anyway and they cost more than a plain
     * send (measured in docs/modes.md): worth it only towards a real NIC,
     * from about 16 KiB. NF_ZC_SEND_MIN=<bytes> in the environment sets it
     * when this is 0. */
    unsigned zc_send_min;
    /* io_uring setup flags to leave out: NF_URING_NO_SINGLE_ISSUER (neither
     * SINGLE_ISSUER nor DEFER_TASKRUN), NF_URING_NO_DEFER_TASKRUN,
     * NF_URING_NO_COOP_TASKRUN, NF_URING_NO_REG_RING_FD. For measurements and
     * tests; the defaults are what docs/modes.md found to pay. */
    unsigned uring_disable;
    /* io_uring: slots in the ring's registered (fixed) file table; 0 (the
     * default): no table. Each connection's socket is installed in a slot
     * and its receives and sends name the slot (IOSQE_FIXED_FILE), which
     * saves the kernel a file reference per send (measured: 1-3 % of a
     * send's cost), at two io_uring_register calls per connection (~2.6 us):
     * worth it for long-lived connections only, hence off by default
     * (docs/modes.md). The plain fd stays open for socket options and the
     * like; when the table is full a connection uses its plain fd.
     * NF_FIXED_FILES=<slots> in the environment sets it when this is 0. */
    unsigned fixed_files;
    /* Name resolution for nf_connect to a host name (c-ares on this loop,
     * see nf_connect): the DNS servers to ask instead of /etc/resolv.conf's,
     * as c-ares's comma-separated list ("192.0.2.53,[2001:db8::53]:5353");
     * NULL: /etc/resolv.conf. Read at the first connect by name, so it must
     * stay valid until then; a list c-ares cannot parse makes that connect
     * fail with -EINVAL. */
    const char *dns_servers;
} nf_loop_config_t;

enum {
    NF_MODE_BLOCK = 0,
    NF_MODE_POLL = 1,
    NF_MODE_EVENT = 2,
};

enum {
    NF_URING_NO_SINGLE_ISSUER = 1u << 0,
    NF_URING_NO_DEFER_TASKRUN = 1u << 1,
    NF_URING_NO_COOP_TASKRUN = 1u << 2,
    NF_URING_NO_REG_RING_FD = 1u << 3,
};

/* Fills *cfg with the defaults (all zero = defaults). */
void nf_loop_config_init(nf_loop_config_t *cfg);

/* Creates a loop. cfg may be NULL for defaults. Returns 0 and sets *out, or a
 * negative error: NF_EBACKEND when the backend that was asked for (by config
 * or by NF_BACKEND=uring|epoll) cannot start, -ENOMEM, or a setup errno. */
int nf_loop_new(nf_loop_t **out, const nf_loop_config_t *cfg);

/* Frees a loop. Every listener and connection must have been closed and their
 * close callbacks run, every timer stopped and every post run (run the loop
 * until nf_loop_alive() is 0), and every read buffer kept with
 * nf_conn_keep_read() released; returns -EBUSY otherwise and frees nothing. */
int nf_loop_free(nf_loop_t *loop);

typedef enum nf_run_mode {
    NF_RUN_DEFAULT = 0, /* until nf_loop_stop() or nothing is left to do */
    NF_RUN_ONCE,        /* wait for at least one completion, handle it, return */
    NF_RUN_NOWAIT,      /* handle what is ready now, never block */
} nf_run_mode_t;

/* Runs the loop. Returns the number of live handles left (0: out of work), or
 * a negative error from the backend. Must be called on the loop's thread only,
 * and not from inside a callback. */
int nf_loop_run(nf_loop_t *loop, nf_run_mode_t mode);

/* Makes nf_loop_run(NF_RUN_DEFAULT) return after the current iteration. Loop
 * thread only; from another thread post a function that calls it. */
void nf_loop_stop(nf_loop_t *loop);

/* Like nf_loop_stop, from any thread and from a signal handler (an atomic
 * store and an eventfd write): nf_loop_run returns after the iteration that
 * sees it. A stop asked while the loop is not running makes the next
 * nf_loop_run(NF_RUN_DEFAULT) return at once (after one non-blocking
 * iteration). */
void nf_loop_stop_async(nf_loop_t *loop);

/* NF_MODE_EVENT: one file descriptor that is readable (POLLIN) whenever the
 * loop has something to do: completions, due timers, posts, writes to hand
 * to the kernel. Watch it level-triggered in your own poll/epoll loop and
 * call nf_loop_run(loop, NF_RUN_NOWAIT) when it is readable; after a step,
 * the fd is readable again at once if the step left work behind (a bound on
 * completions per step was reached), so nothing waits past one wake-up.
 * io_uring: an eventfd registered with the ring; epoll: the epoll fd itself.
 * Timers are covered by a timerfd the loop watches. Calls made outside
 * netframe's callbacks (nf_listen, nf_connect, nf_conn_write from your own
 * handlers) take effect at the next step: run one NOWAIT step after them.
 * Returns the fd (owned by the loop), or -EINVAL in the other modes. */
int nf_loop_fd(const nf_loop_t *loop);

/* Milliseconds until the next timer is due (0: due now), or -1 when no timer
 * is armed. For programs that drive the loop by hand. */
int nf_loop_next_timeout(const nf_loop_t *loop);

/* NF_MODE_BLOCK, NF_MODE_POLL or NF_MODE_EVENT: the mode the loop runs in. */
int nf_loop_mode(const nf_loop_t *loop);

/* Number of live handles keeping the loop alive: open listeners and
 * connections, active timers, pending posts and pending closes. */
unsigned nf_loop_alive(const nf_loop_t *loop);

typedef void (*nf_post_fn)(nf_loop_t *loop, void *arg);

/* Runs fn(loop, arg) on the loop's thread, soon. Safe from any thread; posts
 * from one thread run in the order posted. Returns 0, -ENOMEM, or NF_ECLOSED
 * when the loop is being freed. A post keeps the loop alive until it ran. */
int nf_loop_post(nf_loop_t *loop, nf_post_fn fn, void *arg);

/* Milliseconds on a monotonic clock, cached once per loop iteration. */
uint64_t nf_loop_now(const nf_loop_t *loop);

/* Refreshes the cached time from the clock. */
void nf_loop_update_time(nf_loop_t *loop);

/* "io_uring" or "epoll". */
const char *nf_loop_backend_name(const nf_loop_t *loop);

/* A one-line description of the features found and chosen at creation, e.g.
 * "io_uring: mode=block sq=1024 cq=4096 setup=single_issuer,defer_taskrun
 * recv=multishot bufring=256x16384 accept=multishot ...". */
const char *nf_loop_features(const nf_loop_t *loop);

/* The program's pointer. */
void *nf_loop_get_data(const nf_loop_t *loop);
void nf_loop_set_data(nf_loop_t *loop, void *data);

typedef struct nf_loop_stats {
    uint64_t conns_open;      /* connections alive now */
    uint64_t conns_accepted;  /* accepted by listeners, since creation */
    uint64_t conns_connected; /* outbound connections that completed */
    uint64_t conns_closed;    /* close callbacks delivered */
    uint64_t conns_refused;   /* turned away by a listener's connection limit */
    uint64_t bytes_in;        /* bytes delivered to read callbacks */
    uint64_t bytes_out;       /* bytes the kernel accepted for sending */
    uint64_t reads;           /* read completions delivered */
    uint64_t writes;          /* send operations completed */
    uint64_t bufs_in_use;     /* read buffers held now (by the kernel or kept) */
    uint64_t bufs_kept;       /* read buffers kept by the program now */
    uint64_t bufs_starved;    /* times the read buffer ring ran dry */
    uint64_t timers_active;   /* timers armed now */
    uint64_t iterations;      /* loop iterations */
    uint64_t accept_errors;   /* accepts that failed for lack of file
                                 descriptors or memory (EMFILE, ENFILE,
                                 ENOBUFS, ENOMEM): the listener paused 100 ms */
    /* flow control (flow.h), over this loop's connections */
    uint64_t flow_bytes_held;     /* held in flow-control queues now */
    uint64_t flow_held_hwm;       /* the most one connection ever held */
    uint64_t flow_writes_dropped; /* writes discarded by policy */
    uint64_t conns_closed_slow;   /* closed as slow consumers (NF_ESLOW) */
    uint64_t conns_closed_proxy;  /* closed by the PROXY filter: bad, missing, late header */
    /* io_uring registered I/O (docs/modes.md) */
    uint64_t conns_fixed_file; /* connections whose socket is in the fixed file table now */
    uint64_t zc_sends;         /* zero-copy sends completed (notification received) */
    uint64_t zc_copied;        /* ... of which the kernel reported it copied the bytes */
} nf_loop_stats_t;

/* Copies the loop's counters into *out. Loop thread (or a stopped loop). */
void nf_loop_stats(const nf_loop_t *loop, nf_loop_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
