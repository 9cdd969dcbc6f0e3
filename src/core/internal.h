/* netframe — internal structures shared by core, backends and net.
 * Nothing here is public API. */
#ifndef NF_CORE_INTERNAL_H
#define NF_CORE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "netframe/netframe.h"
#include "netframe/filter.h"
#include "base/export.h"
#include "base/list.h"

/* ---- the backend contract ------------------------------------------------
 *
 * A backend turns kernel events into completions for the net layer. It is an
 * ops table; the core calls it through the loop, the backend calls back into
 * the net layer through the nf__conn_* / nf__listener_* functions below.
 *
 *   start_listener  arm accepting; each accepted fd goes to nf__listener_accepted
 *   pause_listener  stop/restart accepting (connection limit)
 *   stop_listener   disarm; when nothing is in flight call nf__listener_released
 *   start_conn      arm reading; data goes to nf__conn_read, EOF/errors to
 *                   nf__conn_read_end
 *   connect         start an outbound connect; result to nf__conn_connected
 *   send            hand the head of c's write queue to the kernel; a result
 *                   known at once is returned (>= 0 bytes, or -errno), else
 *                   NF__PENDING and nf__conn_sent is called later
 *   stop_conn       cancel everything in flight for c; when nothing is left,
 *                   call nf__conn_released (possibly from inside this call)
 *   wait            submit, wait up to timeout_ms (-1 forever), dispatch
 *   connect_reset   (may be NULL) a connect failed and the net layer will
 *                   close c->fd and try another address with a new socket:
 *                   forget the old one (nothing is in flight for it)
 *   watch_set       arm w for w->events (POLLIN | POLLOUT; 0 disarms, the
 *                   watch stays); readiness goes to w->on_ready, level-
 *                   triggered, at most once per step. 0 or -errno
 *   watch_stop      before the owner closes w->fd: disarm for good; once the
 *                   backend holds no reference to w any more it calls
 *                   w->on_released (possibly from inside this call; at once
 *                   while the loop is being freed)
 */
#define NF__PENDING (-1000000) /* distinct from any byte count or errno */

/* A file descriptor watched for readiness (the resolver's DNS sockets,
 * src/net/resolve.c): the owner allocates it (16-byte aligned: malloc) and
 * fills loop, fd, events and the callbacks; the be_ fields are the
 * backend's. */
typedef struct nf__watch {
    nf_loop_t *loop;
    int fd;
    uint32_t events;                                         /* POLLIN | POLLOUT wanted */
    void (*on_ready)(struct nf__watch *w, uint32_t revents); /* POLLIN/OUT/ERR/HUP */
    void (*on_released)(struct nf__watch *w);                /* after watch_stop: free it */
    uint32_t be_armed;                                       /* backend: events armed now */
    uint16_t be_flags;
    uint16_t be_inflight;
    struct nf__watch *be_next;
} nf__watch_t;

typedef struct nf__backend_ops {
    size_t size; /* sizeof(nf__backend_ops_t), for versioning */
    const char *name;
    int (*init)(nf_loop_t *loop);
    void (*destroy)(nf_loop_t *loop);
    int (*wait)(nf_loop_t *loop, int timeout_ms);
    int (*start_listener)(nf_listener_t *l);
    void (*pause_listener)(nf_listener_t *l, bool paused);
    void (*stop_listener)(nf_listener_t *l);
    int (*start_conn)(nf_conn_t *c);
    int (*connect)(nf_conn_t *c);
    int (*send)(nf_conn_t *c);
    void (*stop_conn)(nf_conn_t *c);
    /* reading control: stop delivering / start again (see NF__C_RPAUSED) */
    void (*read_stop)(nf_conn_t *c);
    void (*read_start)(nf_conn_t *c);
    /* completion modes (issue 4); each may be NULL:
     *   submit      hand prepared requests to the kernel now, without waiting
     *               (the end of a NOWAIT step)
     *   pending     non-zero if work is left that only a step will do
     *               (completions beyond the per-step bound, re-reads)
     *   event_fd    NF_MODE_EVENT: the fd readable when a step is due */
    void (*submit)(nf_loop_t *loop);
    bool (*pending)(nf_loop_t *loop);
    int (*event_fd)(const nf_loop_t *loop);
    /* UDP (issue 8, src/net/udp.c); backends in src/backend/{uring,epoll}_udp.c:
     *   udp_start   arm receiving on u->fd; datagrams go to nf__udp_recv
     *   udp_flush   hand u's waiting datagrams to the kernel
     *               (nf__udp_tx_pop / nf__udp_tx_done)
     *   udp_stop    cancel everything in flight; when nothing is left call
     *               nf__udp_released (possibly from inside this call) */
    int (*udp_start)(struct nf_udp *u);
    void (*udp_flush)(struct nf_udp *u);
    void (*udp_stop)(struct nf_udp *u);
    /* name resolution on the loop (issue 13): see the contract above */
    void (*connect_reset)(nf_conn_t *c);
    int (*watch_set)(nf__watch_t *w);
    void (*watch_stop)(nf__watch_t *w);
} nf__backend_ops_t;

extern const nf__backend_ops_t nf__uring_ops;
extern const nf__backend_ops_t nf__epoll_ops;

/* ---- posts --------------------------------------------------------------- */

typedef struct nf__post {
    struct nf__post *next;
    nf_post_fn fn;
    void *arg;
} nf__post_t;

/* ---- the loop ------------------------------------------------------------ */

struct nf_loop {
    const nf__backend_ops_t *ops;
    void *be; /* backend state */
    void *data;
    nf_loop_config_t cfg;
    uint64_t now;
    bool stop;
    bool freeing;
    bool running;     /* inside nf_loop_run: `now` is fresh */
    unsigned handles; /* open listeners + connections, pending closes */

    /* timers: binary min-heap of pointers */
    nf_timer_t **heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* cross-thread posts */
    pthread_mutex_t post_mu;
    nf__post_t *post_head, *post_tail;
    atomic_uint posts_pending;
    int wake_fd; /* eventfd, watched by the backend */

    /* connections */
    nf__list_t conns;              /* every open connection */
    nf__list_t flush;              /* connections with writes to hand to the kernel */
    nf__list_t closing;            /* connections released by the backend, to finish */
    nf__list_t lclosing;           /* listeners released, to finish */
    nf__list_t listeners;          /* every open listener */
    struct nf__shutdown *shutdown; /* nf_loop_shutdown in progress */

    /* the read currently delivered to on_read (for nf_conn_keep_read) */
    nf_buf_t *cur_read;

    /* pool of 16 KiB chunks for copied writes, and of queue segments */
    nf_buf_t *chunk_pool[64];
    unsigned chunk_pool_len;
    struct nf__wseg *seg_pool;
    unsigned seg_pool_len;

    nf_loop_stats_t stats;
    char features[320];

    /* completion modes (issue 4) */
    atomic_int stop_async; /* nf_loop_stop_async: any thread, signal-safe */
    int timer_fd;          /* NF_MODE_EVENT: timerfd at the next deadline, else -1 */
    uint64_t timer_fd_due; /* what timer_fd is armed for (0: disarmed) */
    bool kicked;           /* NF_MODE_EVENT: the wake fd was written by nf__kick */
    int kick_fd;           /* NF_MODE_EVENT: eventfd that makes nf_loop_fd readable */

    /* UDP sockets (src/net/udp.c) */
    nf__list_t udp_flush;   /* sockets with datagrams to hand to the kernel */
    nf__list_t udp_closing; /* sockets released by the backend, to finish */

    /* name resolution (src/net/resolve.c): made at the first connect by
     * name; resolver_free is called by nf_loop_free, before the backend goes */
    struct nf__resolver *resolver;
    void (*resolver_free)(nf_loop_t *loop);
};

/* UDP (src/net/udp.c), called by the loop. */
void nf__udp_flush_run(nf_loop_t *loop);
void nf__udp_closing_run(nf_loop_t *loop);

/* NF_MODE_EVENT: a call made outside nf_loop_run left work for the next step
 * (a timer armed, a request prepared, a close to finish): make the loop's fd
 * readable, once per step. Cheap and silent in the other modes. */
void nf__event_kick(nf_loop_t *loop);
static inline void nf__kick(nf_loop_t *loop)
{
    if (NF__UNLIKELY(!loop->running) && loop->cfg.mode == NF_MODE_EVENT)
        nf__event_kick(loop);
}

/* Runs expired timers; returns ms until the next deadline, or -1 for none. */
int nf__timers_run(nf_loop_t *loop);
int nf__timers_next(nf_loop_t *loop);

/* Drains the post queue (after a wake-up). */
void nf__posts_run(nf_loop_t *loop);
/* Reads the wake eventfd counter (for backends that see it readable). */
void nf__wake_drain(nf_loop_t *loop);
/* NF_MODE_EVENT: consumes the timerfd's expiry (backends that see it readable). */
void nf__timer_fd_drain(nf_loop_t *loop);

/* Read buffers: nf_buf_t allocated with the loop's accounting. */
nf_buf_t *nf__rbuf_new(nf_loop_t *loop, size_t cap);
void nf__rbuf_mark_kept(nf_loop_t *loop, nf_buf_t *b);

/* Copy-write chunks. */
#define NF__CHUNK_SIZE 16384
nf_buf_t *nf__chunk_get(nf_loop_t *loop, size_t need);
void nf__chunk_put(nf_loop_t *loop, nf_buf_t *b);

/* ---- listeners and connections (src/net/tcp.c) ---------------------------- */

enum {
    NF__C_OPEN = 1u << 0,         /* on_open delivered */
    NF__C_CLOSING = 1u << 1,      /* close asked or failure: no new work */
    NF__C_END = 1u << 2,          /* close once the queue is empty */
    NF__C_SHUT_WR = 1u << 3,      /* shutdown(SHUT_WR) once the queue is empty */
    NF__C_SHUT_DONE = 1u << 4,    /* shutdown(SHUT_WR) done */
    NF__C_EOF = 1u << 5,          /* the peer's FIN was read */
    NF__C_IN_FLUSH = 1u << 6,     /* on loop->flush */
    NF__C_SENDING = 1u << 7,      /* a send is in flight (async) */
    NF__C_CONNECTING = 1u << 8,   /* outbound, not yet connected */
    NF__C_ABORT = 1u << 9,        /* reset on close */
    NF__C_READING = 1u << 10,     /* reading armed */
    NF__C_RELEASED = 1u << 11,    /* backend done; on loop->closing */
    NF__C_WANT_WRITE = 1u << 12,  /* (epoll) waiting for writability */
    NF__C_RPAUSED = 1u << 13,     /* nf_conn_read_stop: no on_read */
    NF__C_RONCE = 1u << 14,       /* nf_conn_read_once: pause after one read */
    NF__C_EOF_PENDING = 1u << 15, /* EOF seen while paused / stash not empty */
    NF__C_OOBINLINE = 1u << 16,   /* SO_OOBINLINE set */
    NF__C_PEER_END = 1u << 17,    /* closing because the peer ended (no on_eof) */
    /* read holds (nf__conn_read_hold): NF__RHOLD_* << NF__C_RHOLD_SHIFT;
     * NF__C_RPAUSED is set exactly while at least one of them is */
    NF__C_RHOLD_APP = 1u << 18,    /* the program: nf_conn_read_stop / read_once */
    NF__C_RHOLD_WQ = 1u << 19,     /* the write queue is over its high-water mark */
    NF__C_RHOLD_FILTER = 1u << 20, /* a filter (flow control) */
};
#define NF__C_RHOLD_SHIFT 18
#define NF__C_RHOLDS      (NF__C_RHOLD_APP | NF__C_RHOLD_WQ | NF__C_RHOLD_FILTER)

/* Read holds: reading runs only while no hold is set. */
#define NF__RHOLD_APP    1u /* nf_conn_read_stop / read_once */
#define NF__RHOLD_WQ     2u /* transport write queue over its high-water mark */
#define NF__RHOLD_FILTER 4u /* a filter (flow control: held output over its high-water mark) */
/* Sets (on) or clears (!on) the holds in `who` (NF__RHOLD_* bits). The first
 * hold set stops reading (reads already on their way are kept, in order, and
 * an EOF waits behind them); clearing the last one starts reading again and
 * delivers what was kept from the loop, never from inside this call. Holds
 * change on a closing connection too, without touching the backend. */
void nf__conn_read_hold(nf_conn_t *c, unsigned who, bool on);

typedef struct nf__wseg {
    struct nf__wseg *next;
    nf_buf_t *buf;
    size_t off; /* bytes of buf already sent */
} nf__wseg_t;

struct nf__connect_state; /* tcp.c */

/* Write-queue limits as a connection keeps them (see tcp.h): the queue over
 * `high` holds reading until it is back at or below `low`; a write that
 * would take it over `max` fails with NF_EWQFULL. SIZE_MAX: off. */
typedef struct nf__wlimits {
    size_t high, low, max;
} nf__wlimits_t;
/* From a config's fields (0: default, NF_WRITE_LIMIT_OFF: off); 0 or -EINVAL. */
int nf__wlimits_from_cfg(nf__wlimits_t *out, size_t high, size_t low, size_t max);
/* Sets c's write-queue limits and applies them at once (reading held or
 * released as the queue now stands). */
void nf__conn_set_wlimits(nf_conn_t *c, const nf__wlimits_t *wl);

struct nf_conn {
    nf_loop_t *loop;
    const nf_conn_handler_t *h;
    void *data;
    nf_listener_t *listener;
    int fd;
    uint32_t flags;
    uint16_t be_flags;    /* backend-private bits */
    uint16_t be_inflight; /* backend: operations in flight */
    int reason;           /* close reason, set once */
    nf__list_t node;      /* loop->conns, until on_close */
    nf__list_t fnode;     /* loop->flush; once released, loop->closing */
    nf__wseg_t *wq_head, *wq_tail;
    size_t queued;
    uint32_t wq_count; /* buffers in the write queue ("writes in flight") */
    uint32_t be_slot;  /* backend: registered file slot + 1 (0: none) */
    void *send_state;  /* backend: storage for an in-flight send */
    struct nf__connect_state *cs;
    nf_filter_t *fbottom, *ftop;    /* filter stack, NULL without filters */
    nf__wseg_t *stash;              /* reads that arrived while paused, in order */
    const nf_addr_t *peer_override; /* nf_conn_peer_addr's answer (PROXY filter), or NULL */
    void (*released)(void *arg);    /* nf_conn_adopt_ex's on_released, after on_close */
    void *released_arg;
    nf__wlimits_t wl;               /* write-queue limits */
};

struct nf_listener {
    nf_loop_t *loop;
    void *data;
    const nf_conn_handler_t *h;
    int fd;
    uint16_t be_flags;
    uint16_t be_inflight;
    bool closing;
    bool paused;  /* by the connection limit */
    bool backoff; /* accept failed for lack of fds or memory: paused for a while */
    nf_timer_t backoff_timer;
    unsigned conns;
    unsigned max_conns;
    nf_limit_policy_t on_limit;
    int nodelay;
    int keepalive_s;
    void (*close_cb)(nf_listener_t *l);
    nf__list_t node;  /* loop->lclosing */
    nf__list_t lnode; /* loop->listeners */
    nf_addr_t addr;
    const nf_filter_spec_t *filters;
    unsigned nfilters;
    bool oob_inline;
    nf__wlimits_t wl; /* write-queue limits of its connections */
};

/* Called by backends. */
void nf__listener_accepted(nf_listener_t *l, int fd);
void nf__listener_released(nf_listener_t *l);
/* Delivers b->base[0..len) to on_read. The backend owns one reference to b;
 * if b->refs > 1 afterwards the program kept it: drop the backend's reference
 * and use a fresh buffer. */
void nf__conn_read(nf_conn_t *c, nf_buf_t *b, size_t len);
void nf__conn_read_end(nf_conn_t *c, int err); /* 0 = EOF, else -errno */
void nf__conn_connected(nf_conn_t *c, int res);
void nf__conn_sent(nf_conn_t *c, ssize_t res);
void nf__conn_released(nf_conn_t *c);
/* Fills iov with the head of the write queue; returns the count (<= max). */
int nf__conn_iov(const nf_conn_t *c, struct iovec *iov, int max);
/* Puts c on the loop's flush list (epoll: the socket became writable). */
void nf__conn_schedule_flush(nf_conn_t *c);

/* Urgent data (backends): the socket signalled POLLPRI. */
void nf__conn_urgent(nf_conn_t *c);
bool nf__conn_wants_urgent(const nf_conn_t *c);

/* The transport end of requests (tcp.c), reached after the filters. */
int nf__transport_write(nf_conn_t *c, nf_buf_t *b);
int nf__transport_shutdown(nf_conn_t *c);
void nf__transport_close(nf_conn_t *c, nf_close_how_t how);
void nf__shutdown_check(nf_loop_t *loop);
/* Closes c now with `reason` (filters: timeouts, slow consumers). */
void nf__conn_fail(nf_conn_t *c, int reason);
/* Puts bytes a bottom filter consumed from a read back in front of the
 * reads kept while paused (takes a reference to b): delivered first when
 * reading resumes (the PROXY filter, when on_open paused reading). */
void nf__conn_unread(nf_conn_t *c, nf_buf_t *b);

/* The filter stack (src/filter/filter.c). */
int nf__filters_new(nf_conn_t *c, const nf_filter_spec_t *specs, unsigned n);
int nf__filters_init(nf_conn_t *c);
void nf__filters_close(nf_conn_t *c, int reason);
void nf__filter_open(nf_filter_t *f);
void nf__filter_read(nf_filter_t *f, const char *data, size_t len);
void nf__filter_eof(nf_filter_t *f);
void nf__filter_drain(nf_filter_t *f);
int nf__filter_write(nf_filter_t *f, nf_buf_t *b);
int nf__filter_shutdown(nf_filter_t *f);
void nf__filter_close(nf_filter_t *f, nf_close_how_t how);

/* Called by the loop. */
void nf__flush_run(nf_loop_t *loop);
void nf__closing_run(nf_loop_t *loop);

/* Socket helpers (src/net/addr.c). */
int nf__set_nonblock(int fd, bool on);
/* The connect target of c (valid while NF__C_CONNECTING). */
const nf_addr_t *nf__conn_target(const nf_conn_t *c);

#endif
