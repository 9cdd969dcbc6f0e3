/* netframe — TCP listeners, connections and connectors.
 *
 * A connection is driven by a handler: a table of callbacks shared by every
 * connection of a listener or connector. Callbacks get the connection first.
 * Every connection ends with exactly one on_close(c, reason) call; after it
 * returns, the connection's memory is gone. */
#ifndef NETFRAME_TCP_H
#define NETFRAME_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "buf.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_conn nf_conn_t;
typedef struct nf_listener nf_listener_t;

/* ---- addresses -------------------------------------------------------- */

typedef struct nf_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
} nf_addr_t;

/* Parses a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]") or
 * "localhost" (127.0.0.1) with a port. Never blocks, never uses DNS.
 * Returns 0 or NF_EADDR. */
int nf_addr_parse(nf_addr_t *out, const char *host, uint16_t port);

/* Writes "HOST:PORT" ("[HOST]:PORT" for IPv6) into buf; returns buf. */
char *nf_addr_format(const nf_addr_t *a, char *buf, size_t size);

/* The port of an address, in host order. */
uint16_t nf_addr_port(const nf_addr_t *a);

/* ---- the handler ------------------------------------------------------ */

/* Close reasons passed to on_close: */
#define NF_CLOSE_LOCAL 0 /* nf_conn_close / nf_conn_end / nf_conn_abort */
/* NF_EOF: the peer closed (and on_eof was NULL or the write side is done);
 * -ECONNRESET: the peer reset; -ETIMEDOUT: a timeout (connect or filter);
 * -ECONNREFUSED, -EPIPE, ...: the error that ended the connection.
 * (A connection turned away by a listener's limit never becomes an
 * nf_conn_t: it is only counted in conns_refused.) */

typedef struct nf_conn_handler {
    /* The connection is established (accepted, or the connect completed). */
    void (*on_open)(nf_conn_t *c);
    /* Bytes arrived. `data` is valid during the call only; to keep the bytes,
     * call nf_conn_keep_read() from inside this callback. */
    void (*on_read)(nf_conn_t *c, const char *data, size_t len);
    /* Optional. The peer shut down its write side. If set, the connection
     * stays open for writing (half-close) until the program closes it; if
     * NULL, the connection closes with NF_EOF once queued writes are sent. */
    void (*on_eof)(nf_conn_t *c);
    /* Optional. Every queued byte has been handed to the kernel. */
    void (*on_drain)(nf_conn_t *c);
    /* Required. Exactly once per connection, with the reason. */
    void (*on_close)(nf_conn_t *c, int reason);
    /* Optional. An urgent (out-of-band) byte arrived. Set it to receive
     * urgent data apart from the stream (see nf_conn_send_urgent). */
    void (*on_urgent)(nf_conn_t *c, unsigned char byte);
} nf_conn_handler_t;

struct nf_filter_spec; /* filter.h */

/* ---- write-queue limits ----------------------------------------------- */

/* Every connection bounds its transport write queue (the bytes handed to
 * nf_conn_write / nf_conn_write_buf, or by the filters, that the kernel has
 * not taken yet: nf_conn_queued) at two levels, so that a peer that never
 * reads cannot make the program grow:
 *
 *   high water / low water (backpressure): once the queue holds more than
 *     the high-water mark, the connection stops reading (no on_read; the
 *     socket's receive buffer fills and TCP's window closes on the peer);
 *     once the kernel has taken enough that the queue holds no more than
 *     the low-water mark, reading starts again by itself. No byte is lost
 *     or reordered. A request/response program (echo, HTTP, RPC), whose
 *     writes are caused by its reads, is bounded at about the high-water
 *     mark plus one read's worth of output with no code at all. This pause
 *     and nf_conn_read_stop / nf_conn_read_once do not fight: reading runs
 *     only when neither holds it.
 *   ceiling (hard limit): a write that would take the queue past it is
 *     refused with NF_EWQFULL (nothing of it is queued) and the connection
 *     closes at once (queued bytes are dropped) with on_close(c,
 *     NF_EWQFULL). This bounds a program whose writes are not caused by the
 *     peer's reads (a broadcaster) too.
 *
 * The defaults below apply to every accepted or adopted connection (why
 * these values: docs/security.md). An outbound connection (nf_connect)
 * has the ceiling but no pause unless its config asks for one: a client
 * that writes a large request while it reads the answer would otherwise
 * stop reading while the server, pausing too, stopped reading its request,
 * and neither would move again. A flow-control filter (flow.h) keeps the transport's
 * queue under its own max_inflight_bytes plus one write (256 KiB by
 * default, so the high-water mark here is reached under it only by a single
 * write of more than 768 KiB) and decides by its own policy what happens to
 * the writes it holds. */
#define NF_WRITE_HIGH_DEFAULT ((size_t)1024 * 1024)      /* 1 MiB */
#define NF_WRITE_LOW_DEFAULT  ((size_t)256 * 1024)       /* 256 KiB */
#define NF_WRITE_MAX_DEFAULT  ((size_t)64 * 1024 * 1024) /* 64 MiB */
/* In nf_listen_config_t / nf_connect_config_t: this limit is off. */
#define NF_WRITE_LIMIT_OFF ((size_t)-1)

/* ---- listeners -------------------------------------------------------- */

typedef enum nf_limit_policy {
    /* At max_conns, stop accepting: new connections wait in the kernel's
     * backlog (and are refused by the kernel once it is full) until a
     * connection closes. Nothing is counted in conns_refused. */
    NF_LIMIT_PAUSE = 0,
    /* At max_conns, accept and immediately close new connections (the peer
     * sees a reset), counted in conns_refused. */
    NF_LIMIT_CLOSE,
} nf_limit_policy_t;

typedef struct nf_listen_config {
    const char *host;   /* numeric address or "localhost"; NULL: 127.0.0.1 */
    uint16_t port;      /* 0: the kernel picks (see nf_listener_addr) */
    int backlog;        /* 0: 511 */
    int reuseport;      /* SO_REUSEPORT, for one listener per loop */
    int ipv6_only;      /* IPV6_V6ONLY on an IPv6 address */
    unsigned max_conns; /* 0: no limit */
    nf_limit_policy_t on_limit;
    int nodelay;                      /* TCP_NODELAY on accepted connections: 0 on, -1 off */
    int keepalive_s;                  /* > 0: SO_KEEPALIVE with this idle time */
    const nf_conn_handler_t *handler; /* required; must outlive the listener */
    void *data;                       /* the listener's user pointer */
    /* Filters between the transport and handler, filters[0] lowest (see
     * filter.h). The array must outlive the listener. */
    const struct nf_filter_spec *filters;
    unsigned nfilters;
    int oob_inline; /* SO_OOBINLINE: urgent bytes stay in the stream */
    /* Write-queue limits of each connection (see "write-queue limits"
     * above). 0: the default (NF_WRITE_HIGH_DEFAULT, NF_WRITE_LOW_DEFAULT,
     * NF_WRITE_MAX_DEFAULT; with only write_high_water set, the low-water
     * mark is a quarter of it); NF_WRITE_LIMIT_OFF: that level is off (no
     * pause / no ceiling). write_low_water must be below write_high_water
     * (else -EINVAL). Change one connection with nf_conn_set_write_limits. */
    size_t write_high_water;
    size_t write_low_water;
    size_t write_max;
} nf_listen_config_t;

/* Binds and listens (SO_REUSEADDR always). Returns 0 and sets *out, or a
 * negative errno (-EADDRINUSE, ...) / NF_EADDR; nothing to close then. */
int nf_listen(nf_loop_t *loop, const nf_listen_config_t *cfg, nf_listener_t **out);

/* A listening socket made as nf_listen makes it (cfg's host, port, backlog,
 * reuseport and ipv6_only; non-blocking, close-on-exec, SO_REUSEADDR), for a
 * program that accepts on it by itself and hands the connections to loops
 * with nf_conn_adopt (nf_server's acceptor does). *bound, if not NULL, gets
 * the address bound. Returns the fd (the caller closes it) or an error
 * (-errno, NF_EADDR for a host that does not parse). */
int nf_listen_socket(const nf_listen_config_t *cfg, nf_addr_t *bound);

/* The bound address (with the kernel's port when port 0 was asked). */
int nf_listener_addr(const nf_listener_t *l, nf_addr_t *out);

/* Number of connections of this listener open now. */
unsigned nf_listener_conns(const nf_listener_t *l);

/* Stops accepting and frees the listener; cb (may be NULL) runs on a later
 * loop iteration. Open connections are not touched. */
void nf_listener_close(nf_listener_t *l, void (*cb)(nf_listener_t *l));

void *nf_listener_get_data(const nf_listener_t *l);
void nf_listener_set_data(nf_listener_t *l, void *data);

/* ---- outbound connections --------------------------------------------- */

typedef struct nf_connect_config {
    const char *host; /* numeric, "localhost", or a name (see below) */
    uint16_t port;
    uint64_t timeout_ms; /* 0: no timeout; covers name resolution + connect */
    int nodelay;         /* 0 on, -1 off */
    int keepalive_s;
    const nf_conn_handler_t *handler;     /* required; must outlive the connection */
    void *data;                           /* the connection's user pointer */
    const struct nf_filter_spec *filters; /* as for listeners */
    unsigned nfilters;
    int oob_inline;
    /* Write-queue limits of the connection, as for listeners, except that
     * write_high_water 0 means off here: an outbound connection does not
     * pause reading by default (see "write-queue limits"); the ceiling is
     * on (NF_WRITE_MAX_DEFAULT). Set write_high_water to have the pause
     * (write_low_water 0: a quarter of it). -EINVAL as for listeners. */
    size_t write_high_water;
    size_t write_low_water;
    size_t write_max;
} nf_connect_config_t;

/* Starts an asynchronous connect and returns the connection at once. On
 * success on_open runs; on failure on_close(c, reason) runs, from a later
 * loop iteration, never from inside this call. Numeric hosts and
 * "localhost" are parsed in place. Other names are resolved on the loop by
 * its c-ares channel (made at the first connect by name, freed with the
 * loop; no thread is started): the hosts file (/etc/hosts, or CARES_HOSTS
 * in the environment) then DNS (/etc/resolv.conf's servers, or the loop
 * config's dns_servers). The addresses are tried in the resolver's order
 * (IPv6 first where usable), each on a new socket, until one connects; the
 * options above are set on every socket. timeout_ms covers resolution and
 * every attempt. nf_conn_close while the name resolves drops the query's
 * answer; on_close follows as for any close. Reasons: -ECONNREFUSED and
 * the like (the last address's error), -ETIMEDOUT (timeout_ms, or no DNS
 * server answered), NF_EADDR (no such name, or no address), -ECONNREFUSED
 * also when the DNS servers refused or failed, -EINVAL (dns_servers could
 * not be parsed), -ENOMEM. Returns 0, or -ENOMEM / -EINVAL (no callback
 * then). */
int nf_connect(nf_loop_t *loop, const nf_connect_config_t *cfg, nf_conn_t **out);

/* Makes a connected TCP socket a connection of this loop (an acceptor thread
 * handing sockets to loops, or a socket from elsewhere). Loop thread only.
 * On success the loop owns fd, on_open runs at once, and *out (may be NULL)
 * is set; counted in conns_accepted. On failure (-EINVAL, -ENOMEM) the
 * caller still owns fd. */
int nf_conn_adopt(nf_loop_t *loop, int fd, const nf_conn_handler_t *h, void *data, nf_conn_t **out);

/* What nf_conn_adopt_ex makes of an adopted socket. */
typedef struct nf_adopt_config {
    const nf_conn_handler_t *handler;     /* required (on_read, on_close); must outlive the connection */
    void *data;                           /* the connection's user pointer */
    const struct nf_filter_spec *filters; /* as for listeners (filters[0] lowest); must outlive it */
    unsigned nfilters;
    int oob_inline; /* SO_OOBINLINE: urgent bytes stay in the stream */
    /* Optional: runs once on the loop thread when the connection is freed,
     * right after its on_close (e.g. to give back a slot of a connection
     * limit counted across loops: nf_server's acceptor). Not called when
     * nf_conn_adopt_ex fails. */
    void (*on_released)(void *arg);
    void *released_arg;
} nf_adopt_config_t;

/* nf_conn_adopt with a filter stack and options: the filters are set up as
 * for an accepted connection (a filter that fails to start closes the
 * connection with its error: on_close and on_released run). Same returns
 * and fd ownership as nf_conn_adopt. */
int nf_conn_adopt_ex(nf_loop_t *loop, int fd, const nf_adopt_config_t *cfg, nf_conn_t **out);

/* ---- connections ------------------------------------------------------ */

/* Queues a copy of data for sending. Bytes leave in the order written.
 * Returns NF_WRITE_OK (0); with a flow-control filter also NF_WRITE_HELD (1,
 * held back, sent later) or NF_WRITE_DROPPED (2, discarded by policy); or
 * NF_ECLOSED (closing, or the write side was shut down), NF_ESLOW (the
 * flow filter is closing the connection as a slow consumer), NF_EWQFULL
 * (the write queue's ceiling: the connection is closing with that reason,
 * see "write-queue limits") or -ENOMEM. */
int nf_conn_write(nf_conn_t *c, const void *data, size_t len);

/* Queues b->base[0 .. b->len) without copying. Takes over the caller's
 * reference to b in every case (also on failure). Same returns. */
int nf_conn_write_buf(nf_conn_t *c, nf_buf_t *b);

/* Bytes in the transport's queue: handed down, not yet accepted by the
 * kernel (bytes held by a flow-control filter above are not counted: see
 * nf_flow_stats). */
size_t nf_conn_queued(const nf_conn_t *c);
/* Buffers in the same queue (each write is one, or more for a copied write
 * longer than a chunk): what a filter bounds by count, as nf_conn_queued
 * bounds by bytes (the flow filter's max_inflight_writes). */
size_t nf_conn_queued_writes(const nf_conn_t *c);

/* Reading control. nf_conn_read_stop: no more on_read until restarted; the
 * socket's receive buffer fills and TCP's window closes on the peer. Bytes
 * the kernel had already handed over are kept and delivered first on
 * restart. nf_conn_read_start: read continuously again (the default).
 * nf_conn_read_once: deliver at most one more read, then stop again ("read
 * on demand"). Return 0 or NF_ECLOSED. */
int nf_conn_read_stop(nf_conn_t *c);
int nf_conn_read_start(nf_conn_t *c);
int nf_conn_read_once(nf_conn_t *c);

/* Sets this connection's write-queue limits, in bytes (see "write-queue
 * limits" above); 0 turns that level off: high_water 0, no pause; low_water
 * 0, reading resumes only once the queue is empty; ceiling 0, no ceiling.
 * Takes effect at once: a queue already over the new high-water mark stops
 * reading, one already at or below the new low-water mark resumes it. A
 * queue already over a new ceiling is not cut: the next write fails.
 * Returns 0, -EINVAL (high_water set and low_water >= high_water) or
 * NF_ECLOSED. */
int nf_conn_set_write_limits(nf_conn_t *c, size_t high_water, size_t low_water, size_t ceiling);

/* Sends one urgent byte (MSG_OOB) at once. TCP has one urgent pointer: the
 * peer sees only the latest urgent byte if several arrive before it reads,
 * and the byte goes out ahead of bytes still waiting in this connection's
 * user-space queue (it follows what the kernel already has). Without
 * SO_OOBINLINE the peer receives it apart from the stream (on_urgent);
 * with it, in the stream. Returns 0, NF_ECLOSED or -errno (-EAGAIN when the
 * socket buffer is full). */
int nf_conn_send_urgent(nf_conn_t *c, unsigned char byte);

/* Inside on_read only: returns a new reference to a buffer whose base/len are
 * exactly the bytes of this read, valid until nf_buf_unref. No copy is made:
 * the loop replaces the read buffer it hands out. NULL outside on_read or on
 * -ENOMEM. Release it on the loop's thread, before nf_loop_free (which
 * returns -EBUSY while buffers are kept). */
nf_buf_t *nf_conn_keep_read(nf_conn_t *c);

/* Half-close: once queued bytes are sent, shut down the write side (the peer
 * reads EOF); reading goes on. Returns 0 or NF_ECLOSED. */
int nf_conn_shutdown(nf_conn_t *c);

/* Graceful close: stop reading, send what is queued, then close. on_close
 * gets NF_CLOSE_LOCAL (or the error that cut the flush short). */
void nf_conn_end(nf_conn_t *c);

/* Immediate close: stop reading, drop what is still queued, close. */
void nf_conn_close(nf_conn_t *c);

/* Abortive close: like nf_conn_close but the peer gets a reset (SO_LINGER 0). */
void nf_conn_abort(nf_conn_t *c);

/* Non-zero once a close was asked for or the connection failed. */
int nf_conn_is_closing(const nf_conn_t *c);

int nf_conn_local_addr(const nf_conn_t *c, nf_addr_t *out);
/* The peer: the client named by a PROXY protocol header when the connection
 * has the PROXY filter (proxy.h), else the socket's peer. 0 or -errno. */
int nf_conn_peer_addr(const nf_conn_t *c, nf_addr_t *out);
/* The socket's peer (getpeername), whatever a PROXY header said. */
int nf_conn_transport_peer_addr(const nf_conn_t *c, nf_addr_t *out);
int nf_conn_set_nodelay(nf_conn_t *c, int on);
int nf_conn_set_keepalive(nf_conn_t *c, int on, int idle_s);

nf_loop_t *nf_conn_loop(const nf_conn_t *c);
/* The listener that accepted c, or NULL (outbound, or the listener closed). */
nf_listener_t *nf_conn_listener(const nf_conn_t *c);
int nf_conn_fd(const nf_conn_t *c);
void *nf_conn_get_data(const nf_conn_t *c);
void nf_conn_set_data(nf_conn_t *c, void *data);
void nf_conn_set_handler(nf_conn_t *c, const nf_conn_handler_t *h);

/* Graceful shutdown of everything on the loop: closes every listener (no
 * new connections), leaves open connections to finish by themselves for up
 * to deadline_ms, then closes (nf_conn_close) those still open. done(loop,
 * forced, arg) runs once no connection is left, from the loop; `forced` is
 * how many had to be closed at the deadline. Returns 0 or -EALREADY. */
int nf_loop_shutdown(nf_loop_t *loop, uint64_t deadline_ms, void (*done)(nf_loop_t *loop, unsigned forced, void *arg),
                     void *arg);

/* Calls fn(c, arg) for every open connection of the loop (accepted or
 * outbound, not yet closing). fn may close c. Used for shutdown. */
void nf_conn_walk(nf_loop_t *loop, void (*fn)(nf_conn_t *c, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
