/* netframe — the backend contract: what the loop and the net layer ask of an
 * engine (nf__backend_ops_t), the I/O base in which a backend keeps its
 * per-socket state (nf__io_t), and the up-calls through which it reports
 * (nf__io_ops_t). Backends (src/backend/) include this header and nothing of
 * the layers above; the net layer embeds an nf__io_t in each connection,
 * listener and UDP socket and gives it an up-call table. Nothing here is
 * public API.
 *
 * Requests (down, nf__backend_ops_t; `io` is the object's I/O base):
 *
 *   init / destroy  the engine of one loop
 *   wait            submit, wait up to timeout_ms (-1 forever), dispatch
 *   start_listener  arm accepting; each accepted fd goes to up->accepted
 *   pause_listener  stop/restart accepting (connection limit, back-off)
 *   stop_listener   disarm; when nothing is in flight call up->released
 *   start_conn      arm reading; data goes to up->read, EOF/errors to
 *                   up->read_end
 *   connect         start an outbound connect to up->target; the result goes
 *                   to up->connected
 *   send            hand the head of the write queue (up->iov) to the kernel;
 *                   a result known at once is returned (>= 0 bytes, or
 *                   -errno), else NF__PENDING and up->sent is called later
 *   stop_conn       cancel everything in flight; when nothing is left, call
 *                   up->released (possibly from inside this call)
 *   read_stop / read_start  reading control: stop delivering / start again
 *                   (the owner sets NF__IO_HOLDS bits first)
 *   submit, pending, event_fd  completion modes (may be NULL):
 *       submit      hand prepared requests to the kernel now, without waiting
 *       pending     non-zero if work is left that only a step will do
 *       event_fd    NF_MODE_EVENT: the fd readable when a step is due
 *   udp_start       arm receiving on a datagram socket; datagrams go to
 *                   up->dgram, receive errors to up->dgram_error
 *   udp_flush       hand the waiting datagrams to the kernel (up->tx_head /
 *                   up->tx_pop, results to up->tx_done)
 *   udp_stop        cancel everything in flight; when nothing is left call
 *                   up->released (possibly from inside this call)
 *   connect_reset   (may be NULL) a connect failed and the owner will close
 *                   io->fd and try another address with a new socket: forget
 *                   the old one (nothing is in flight for it)
 *   watch_set       arm w for w->events (POLLIN | POLLOUT; 0 disarms, the
 *                   watch stays); readiness goes to w->on_ready, level-
 *                   triggered, at most once per step. 0 or -errno
 *   watch_stop      before the owner closes w->fd: disarm for good; once the
 *                   backend holds no reference to w any more it calls
 *                   w->on_released (possibly from inside this call; at once
 *                   while the loop is being freed)
 *
 * Reports (up, nf__io_ops_t): one indirect call per completion, through the
 * table the object's owner put in io->hd.ops (its handle ops come first, so
 * the loop's flush / finish_close and the backend's up-calls are one table).
 * The backend reads the owner's state only through the NF__IO_* bits of
 * io->flags; everything else it asks through an up-call. */
#ifndef NF_CORE_BACKEND_H
#define NF_CORE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/internal.h"

#define NF__PENDING (-1000000) /* distinct from any byte count or errno */

/* ---- the I/O base ----------------------------------------------------------
 *
 * The owner (src/net/) embeds it at the start of its object with NF__IO_BASE:
 * an anonymous union of the named base (`io`, what the backend is handed)
 * and the same fields unnamed, so the owner's code keeps writing c->fd and
 * c->flags. Both views are one storage; the union makes the aliasing
 * explicit. */
#define NF__IO_FIELDS                                                                                                  \
    nf__handle_t hd; /* the loop's queues; hd.ops is the nf__io_ops_t */                                               \
    nf_loop_t *loop;                                                                                                   \
    void *be; /* backend: per-object state (send storage, a datagram socket's rings) */                                \
    int fd;                                                                                                            \
    uint32_t flags;        /* the owner's state: the backend reads the NF__IO_* bits */                                \
    uint32_t be_inflight;  /* backend: operations in flight */                                                         \
    uint32_t be_slot : 24; /* backend: registered file slot + 1 (0: none) */                                           \
    uint32_t be_flags : 8; /* backend-private bits (8 are enough: the base stays 56 bytes) */

typedef struct nf__io {
    NF__IO_FIELDS
} nf__io_t;

#define NF__IO_BASE                                                                                                    \
    union {                                                                                                            \
        nf__io_t io;                                                                                                   \
        struct {                                                                                                       \
            NF__IO_FIELDS                                                                                              \
        };                                                                                                             \
    }

/* Bits of io->flags the backend reads (the owner keeps its other bits in the
 * same word). The life-cycle bits have one value for every kind of owner. */
enum {
    NF__IO_CLOSING = 1u << 1,     /* close asked: no new work; cancel, then released */
    NF__IO_EOF = 1u << 5,         /* stream: the peer's FIN was read */
    NF__IO_IN_FLUSH = 1u << 6,    /* owner: on loop->flush */
    NF__IO_CONNECTING = 1u << 8,  /* stream: outbound, not yet connected */
    NF__IO_READING = 1u << 10,    /* stream: reading armed (start_conn done) */
    NF__IO_RELEASED = 1u << 11,   /* owner: the backend is done; on loop->closing */
    NF__IO_WANT_WRITE = 1u << 12, /* backend (epoll): the socket is full, waiting for writability;
                                   * the owner does not flush a datagram socket meanwhile */
    NF__IO_ACCEPT_ONE = 1u << 13, /* listener: one accept at a time (a connection limit) */
};
/* Holds: reading (accepting, for a listener) is off while any is set. */
#define NF__IO_HOLDS_SHIFT 18
#define NF__IO_HOLDS       (7u << NF__IO_HOLDS_SHIFT)

/* A datagram to send, as the backend sees it: the owner's queue entry
 * begins with it. msghdr and iovec are the backend's storage, valid while
 * the kernel has the datagram (io_uring). Entries are malloc'd (16-byte
 * aligned): io_uring's user_data is the entry | an op tag. */
typedef struct nf__dgram {
    struct nf__dgram *next; /* the owner's queue */
    nf__io_t *io;
    char *data;
    size_t len;
    const struct sockaddr *to; /* NULL: the connected peer */
    socklen_t tolen;
    struct msghdr mh;
    struct iovec iov;
} nf__dgram_t;

#define NF__DGRAM_TRUNC 1u /* up->dgram flags: cut to the receive size (NF_UDP_TRUNC) */

typedef struct nf__io_ops {
    nf__handle_ops_t hd; /* first: the loop's flush and finish_close */
    /* every owner */
    void (*released)(nf__io_t *io);       /* nothing in flight any more: finish the close */
    void (*schedule_flush)(nf__io_t *io); /* (epoll) writable again: flush at the next point */
    /* stream sockets */
    void (*read)(nf__io_t *io, nf_buf_t *b, size_t len); /* the backend owns one reference to b;
                                                          * b->refs > 1 afterwards: it was kept */
    void (*read_end)(nf__io_t *io, int err);             /* 0: EOF, else -errno */
    bool (*read_wanted)(const nf__io_t *io);             /* re-arm a receive now? (no hold, no kept reads) */
    void (*connected)(nf__io_t *io, int res);
    void (*sent)(nf__io_t *io, ssize_t res);
    /* the head of the write queue into iov (at most max; returns the count);
     * *queued (may be NULL) gets every byte queued, those beyond iov too */
    int (*iov)(const nf__io_t *io, struct iovec *iov, int max, size_t *queued);
    nf_buf_t *(*head_ref)(const nf__io_t *io); /* a reference to the head buffer (zero-copy sends) */
    const struct sockaddr *(*target)(const nf__io_t *io, socklen_t *len); /* while NF__IO_CONNECTING */
    void (*urgent)(nf__io_t *io);                                         /* POLLPRI seen */
    bool (*wants_urgent)(const nf__io_t *io);                             /* read urgent bytes apart? */
    /* listeners */
    void (*accepted)(nf__io_t *io, int fd); /* fd, or -errno (EMFILE...: back off) */
    /* datagram sockets */
    void (*dgram)(nf__io_t *io, const char *data, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  unsigned flags); /* from may be NULL (connected); NF__DGRAM_TRUNC */
    void (*dgram_error)(nf__io_t *io, int err);
    nf__dgram_t *(*tx_head)(nf__io_t *io);                  /* the oldest waiting, still queued (NULL: none) */
    nf__dgram_t *(*tx_pop)(nf__io_t *io);                   /* takes it: in flight until tx_done */
    void (*tx_done)(nf__io_t *io, nf__dgram_t *d, int res); /* bytes sent or -errno; frees d */
} nf__io_ops_t;

static inline const nf__io_ops_t *nf__io_up(const nf__io_t *io)
{
    return (const nf__io_ops_t *)(const void *)io->hd.ops;
}

/* ---- fd watches ----------------------------------------------------------
 *
 * A file descriptor watched for readiness (the resolver's DNS sockets,
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

/* ---- the engine ------------------------------------------------------------ */

typedef struct nf__backend_ops {
    size_t size; /* sizeof(nf__backend_ops_t), for versioning */
    const char *name;
    int (*init)(nf_loop_t *loop);
    void (*destroy)(nf_loop_t *loop);
    int (*wait)(nf_loop_t *loop, int timeout_ms);
    int (*start_listener)(nf__io_t *l);
    void (*pause_listener)(nf__io_t *l, bool paused);
    void (*stop_listener)(nf__io_t *l);
    int (*start_conn)(nf__io_t *c);
    int (*connect)(nf__io_t *c);
    int (*send)(nf__io_t *c);
    void (*stop_conn)(nf__io_t *c);
    void (*read_stop)(nf__io_t *c);
    void (*read_start)(nf__io_t *c);
    void (*submit)(nf_loop_t *loop);
    bool (*pending)(nf_loop_t *loop);
    int (*event_fd)(const nf_loop_t *loop);
    /* features: the backend writes a short description of its datagram path */
    int (*udp_start)(nf__io_t *u, unsigned recv_size, unsigned recv_count, char *features, size_t features_len);
    void (*udp_flush)(nf__io_t *u);
    void (*udp_stop)(nf__io_t *u);
    void (*connect_reset)(nf__io_t *c);
    int (*watch_set)(nf__watch_t *w);
    void (*watch_stop)(nf__watch_t *w);
} nf__backend_ops_t;

/* The loop without its engine, for nf_loop_new (src/backend/select.c, the
 * one place that names the engines): nf__loop_alloc makes a loop with its
 * configuration, clock and fds; the caller sets loop->ops and runs its
 * init; nf__loop_discard frees a loop whose engine failed. */
int nf__loop_alloc(nf_loop_t **out, const nf_loop_config_t *cfg);
void nf__loop_discard(nf_loop_t *loop);

#endif
