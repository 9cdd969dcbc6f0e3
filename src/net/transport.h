/* netframe — the transport: the net layer's private header.
 *
 * What a connection and a listener are (struct nf_conn, struct nf_listener,
 * each beginning with the backend's I/O base, core/backend.h), the net
 * layer's per-loop record, the life cycle its objects share, what the
 * backends report (reached through the up-call tables of conn.c, listen.c
 * and udp.c, never by name from below), sockets, and the transport end of
 * the filter stack. Built-in filters and the WebSocket layer include it
 * for the calls below; nothing here is public API. */
#ifndef NF_NET_TRANSPORT_H
#define NF_NET_TRANSPORT_H

#include "core/backend.h"
#include "netframe/filter.h"
#include "netframe/tcp.h"

/* ---- the net layer's per-loop record (src/net/netloop.c) ------------------
 *
 * What the net layer keeps per loop, in the loop's record for it
 * (nf__loop_ext): its lists, a graceful shutdown in progress, the read being
 * delivered, the write-queue segment pool and its counters, which
 * nf_loop_stats adds to the loop's own (the record's stats op). */
typedef struct nf__freeblk {
    struct nf__freeblk *next;
} nf__freeblk_t;

typedef struct nf__net_stats {
    uint64_t conns_open, conns_accepted, conns_connected, conns_closed, conns_refused;
    uint64_t bytes_in, bytes_out, reads, writes, accept_errors;
} nf__net_stats_t;

typedef struct nf__net {
    nf__loop_ext_t ext;
    nf__list_t conns;              /* every open connection */
    nf__list_t listeners;          /* every open listener */
    struct nf__shutdown *shutdown; /* nf_loop_shutdown in progress */
    nf_buf_t *cur_read;            /* the read delivered to on_read now (nf_conn_keep_read) */
    nf__freeblk_t *seg_pool;       /* free write-queue segments */
    unsigned seg_pool_len;
    nf__net_stats_t st;
} nf__net_t;

extern const nf__loop_ext_ops_t nf__net_ext_ops;
/* The loop's net record, made on first use; NULL if memory ran out. */
nf__net_t *nf__net_make(nf_loop_t *loop);
/* The loop's net record, or NULL if the loop never had a connection,
 * listener or shutdown. */
static inline nf__net_t *nf__net_find(const nf_loop_t *loop)
{
    return (nf__net_t *)(void *)nf__loop_ext_find(loop, &nf__net_ext_ops);
}
/* The loop's net record where one exists for sure (a connection or a
 * listener of the loop is at hand): no call on the hot path. */
static inline nf__net_t *nf__net(const nf_loop_t *loop)
{
    return (nf__net_t *)(void *)nf__loop_ext_get(loop, &nf__net_ext_ops);
}

/* ---- the life cycle every net object shares --------------------------------
 *
 * Connections, listeners and UDP sockets embed the I/O base and live the
 * same way: output is handed down at the loop's flush point (NF__IO_IN_FLUSH
 * while queued), a close stops new work (NF__IO_CLOSING) and asks the
 * backend to cancel, and once the backend released the object
 * (NF__IO_RELEASED) its finish_close runs at the loop's closing point. */

/* Queues io for its flush op at the loop's next flush point, unless it is
 * queued already or closing. */
static inline void nf__io_flush_later(nf__io_t *io)
{
    if (io->flags & (NF__IO_IN_FLUSH | NF__IO_CLOSING))
        return;
    io->flags |= NF__IO_IN_FLUSH;
    nf__handle_flush_later(io->loop, &io->hd);
    nf__kick(io->loop); /* event mode: a write from outside a step needs one */
}
/* The flush op runs: io is off the queue. */
static inline void nf__io_flushing(nf__io_t *io) { io->flags &= ~NF__IO_IN_FLUSH; }
/* Starts closing io: false if it was closing already. Takes it off the
 * flush queue (a closing object is never on it); the caller then asks the
 * backend to stop. */
static inline bool nf__io_close_begin(nf__io_t *io)
{
    if (io->flags & NF__IO_CLOSING)
        return false;
    io->flags |= NF__IO_CLOSING;
    if (io->flags & NF__IO_IN_FLUSH) {
        nf__list_remove(&io->hd.qnode);
        io->flags &= ~NF__IO_IN_FLUSH;
    }
    return true;
}
/* The backend released io: its finish_close runs at the loop's next
 * closing point, once (the handle's node is free: closing, so not queued). */
static inline void nf__io_released(nf__io_t *io)
{
    if (io->flags & NF__IO_RELEASED)
        return;
    io->flags |= NF__IO_RELEASED;
    nf__kick(io->loop);
    nf__handle_close_later(io->loop, &io->hd);
}

/* ---- listeners and connections ---------------------------- */

/* Connection flags (c->flags). The bits the backend reads are the I/O
 * base's (core/backend.h), with the same meaning. */
enum {
    NF__C_OPEN = 1u << 0,                 /* on_open delivered */
    NF__C_CLOSING = NF__IO_CLOSING,       /* close asked or failure: no new work */
    NF__C_END = 1u << 2,                  /* close once the queue is empty */
    NF__C_SHUT_WR = 1u << 3,              /* shutdown(SHUT_WR) once the queue is empty */
    NF__C_SHUT_DONE = 1u << 4,            /* shutdown(SHUT_WR) done */
    NF__C_EOF = NF__IO_EOF,               /* the peer's FIN was read */
    NF__C_IN_FLUSH = NF__IO_IN_FLUSH,     /* on loop->flush */
    NF__C_SENDING = 1u << 7,              /* a send is in flight (async) */
    NF__C_CONNECTING = NF__IO_CONNECTING, /* outbound, not yet connected */
    NF__C_ABORT = 1u << 9,                /* reset on close */
    NF__C_READING = NF__IO_READING,       /* reading armed */
    NF__C_RELEASED = NF__IO_RELEASED,     /* backend done; on loop->closing */
    NF__C_WANT_WRITE = NF__IO_WANT_WRITE, /* (epoll) waiting for writability */
    NF__C_RONCE = 1u << 14,               /* nf_conn_read_once: pause after one read */
    NF__C_EOF_PENDING = 1u << 15,         /* EOF seen while paused / stash not empty */
    NF__C_OOBINLINE = 1u << 16,           /* SO_OOBINLINE set */
    NF__C_PEER_END = 1u << 17,            /* closing because the peer ended (no on_eof) */
    /* read holds (nf__conn_read_hold): NF__RHOLD_* << NF__C_RHOLD_SHIFT;
     * NF__C_RPAUSED tests whether any of them is set */
    NF__C_RHOLD_APP = 1u << 18,    /* the program: nf_conn_read_stop / read_once */
    NF__C_RHOLD_WQ = 1u << 19,     /* the write queue is over its high-water mark */
    NF__C_RHOLD_FILTER = 1u << 20, /* a filter (flow control) */
};
#define NF__C_RHOLD_SHIFT NF__IO_HOLDS_SHIFT
#define NF__C_RHOLDS      (NF__C_RHOLD_APP | NF__C_RHOLD_WQ | NF__C_RHOLD_FILTER)
/* Reading is paused (no on_read) while any hold is set: derived from the
 * holds, never set on its own. */
#define NF__C_RPAUSED NF__C_RHOLDS
_Static_assert(NF__C_RHOLDS == NF__IO_HOLDS, "the read holds are the I/O base's holds");

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
    /* the I/O base: loop, fd, flags (NF__C_*), the handle hd (loop->flush;
     * once released, loop->closing) and the backend's fields */
    NF__IO_BASE;
    const nf_conn_handler_t *h;
    void *data;
    nf_listener_t *listener;
    int reason;        /* close reason, set once */
    uint32_t wq_count; /* buffers in the write queue ("writes in flight") */
    nf__list_t node;   /* the net record's conns, until on_close */
    nf__net_t *net;    /* the loop's net record (its counters, for the hot path) */
    nf__wseg_t *wq_head, *wq_tail;
    size_t queued;
    struct nf__connect_state *cs;
    nf_filter_t *fbottom, *ftop;    /* filter stack, NULL without filters */
    nf__wseg_t *stash;              /* reads that arrived while paused, in order */
    const nf_addr_t *peer_override; /* nf_conn_peer_addr's answer (PROXY filter), or NULL */
    void (*released)(void *arg);    /* nf_conn_adopt_ex's on_released, after on_close */
    void *released_arg;
    nf__wlimits_t wl; /* write-queue limits */
};

/* Listener flags (l->flags): closing, and the two holds on accepting. */
enum {
    NF__L_CLOSING = NF__IO_CLOSING,
    NF__L_PAUSED = 1u << NF__IO_HOLDS_SHIFT,        /* by the connection limit */
    NF__L_BACKOFF = 1u << (NF__IO_HOLDS_SHIFT + 1), /* accept failed for lack of fds or memory: paused a while */
    NF__L_ACCEPT_ONE = NF__IO_ACCEPT_ONE,           /* a connection limit: one accept at a time */
};

struct nf_listener {
    /* the I/O base: loop, fd, flags (NF__L_*), the handle hd (loop->closing,
     * once released) and the backend's fields */
    NF__IO_BASE;
    void *data;
    const nf_conn_handler_t *h;
    nf_timer_t backoff_timer;
    unsigned conns;
    unsigned max_conns;
    nf_limit_policy_t on_limit;
    int nodelay;
    int keepalive_s;
    void (*close_cb)(nf_listener_t *l);
    nf__list_t lnode; /* the net record's listeners */
    nf_addr_t addr;
    const nf_filter_spec_t *filters;
    unsigned nfilters;
    bool oob_inline;
    nf__wlimits_t wl; /* write-queue limits of its connections */
};

/* What the backends report (through the up-call tables of conn.c and
 * listen.c, core/backend.h). */
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
/* Fills iov with the head of the write queue; returns the count (<= max);
 * *queued (may be NULL) gets every byte queued (the up-call itself). */
int nf__conn_iov(const nf__io_t *io, struct iovec *iov, int max, size_t *queued);
/* The I/O base's owner (the base is the object's first member). */
static inline nf_conn_t *nf__conn_of(const nf__io_t *io) { return (nf_conn_t *)(void *)(uintptr_t)io; }
static inline nf_listener_t *nf__listener_of(const nf__io_t *io) { return (nf_listener_t *)(void *)(uintptr_t)io; }
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

/* The filter stack (src/net/filter_stack.c). */
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

/* ---- sockets (src/net/listen.c, src/net/sockopt.c) ------------------------- */

/* How nf__sock_bind makes a socket. */
typedef struct nf__bind_cfg {
    int type;           /* SOCK_STREAM (then listened on) or SOCK_DGRAM */
    int flags;          /* socket() flags besides SOCK_CLOEXEC (SOCK_NONBLOCK) */
    bool reuseaddr;     /* SO_REUSEADDR */
    bool reuseport;     /* SO_REUSEPORT */
    bool ipv6_only;     /* IPV6_V6ONLY on an AF_INET6 socket (else it is cleared) */
    int backlog;        /* SOCK_STREAM: listen()'s backlog; <= 0: 511 */
    int rcvbuf, sndbuf; /* > 0: the socket's buffer sizes (nf__sock_buffers) */
} nf__bind_cfg_t;
/* The one place a listening or datagram socket is made: socket, options,
 * bind (and listen); *addr gets the address bound (port 0: the kernel's
 * choice). Returns the fd, or -errno with nothing left open. TCP listeners,
 * UDP sockets and the server's acceptor (src/app/server.c) use it. */
int nf__sock_bind(nf_addr_t *addr, const nf__bind_cfg_t *cfg);
/* setsockopt of an int; 0 or -errno. */
int nf__sock_set_int(int fd, int level, int opt, int v);
/* A TCP socket's configured options, as a listen or connect config gives
 * them: nodelay 0 on, -1 off; keepalive_s > 0: SO_KEEPALIVE with that idle
 * time. Every accepted and connected socket gets them (the server's
 * acceptor can too). */
void nf__sock_opts(int fd, int nodelay, int keepalive_s);
/* SO_RCVBUF / SO_SNDBUF when > 0 (as root the FORCE variants first, which
 * pass net.core.{r,w}mem_max); 0 or -errno. */
int nf__sock_buffers(int fd, int rcvbuf, int sndbuf);

/* The connect target of c (valid while NF__C_CONNECTING). */
const nf_addr_t *nf__conn_target(const nf_conn_t *c);

#endif
