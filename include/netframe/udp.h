/* netframe — UDP sockets.
 *
 * A UDP socket is bound to an IPv4 or IPv6 address on one loop and lives
 * there for life, like a connection. Datagrams arrive through on_recv with
 * the sender's address; datagrams leave through nf_udp_send (a copy) or
 * nf_udp_send_buf (the caller's buffer, ownership handed over), queued and
 * handed to the kernel in batches at the end of the loop step (io_uring: one
 * sendmsg per datagram, submitted together; epoll: sendmmsg).
 *
 * UDP never blocks and never pushes back: when the send queue is at its
 * bound (max_queued_dgrams datagrams or max_queued_bytes bytes, in the queue
 * or in flight), the drop policy discards a datagram (the new one or the
 * oldest not yet handed to the kernel), counts it in nf_udp_stats.dropped
 * and returns NF_WRITE_DROPPED (drop newest) or 0 (drop oldest). A datagram
 * the kernel refuses (ENOBUFS, ECONNREFUSED on a connected socket...) is
 * counted in send_errors and reported to on_error; the socket stays open.
 * Received datagrams the kernel could not queue (receive buffer full) are
 * lost in the kernel: size rcvbuf for the expected bursts.
 *
 * Optional pseudo-connections ("peers"): with peer_idle_ms > 0 the socket
 * keeps a hash table from peer address to a peer object with user state;
 * on_peer_open runs on a peer's first datagram, on_peer_close after it sent
 * nothing for peer_idle_ms (one sweeping timer per socket), and a per-peer
 * token bucket (peer_rate / peer_burst) bounds what one peer may make the
 * program do: datagrams over it are dropped before on_recv and counted. */
#ifndef NETFRAME_UDP_H
#define NETFRAME_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"
#include "tcp.h" /* nf_addr_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_udp nf_udp_t;
typedef struct nf_udp_peer nf_udp_peer_t;

/* The largest payload of one datagram: 65,507 bytes over IPv4 (65,535 minus
 * the IP and UDP headers), 65,527 over IPv6. */
#define NF_UDP_MAX_DGRAM4 65507u
#define NF_UDP_MAX_DGRAM6 65527u

/* on_recv flags */
/* TRUNCATED: the datagram was longer than recv_size and data holds only its
 * first len bytes; the rest is gone (the kernel discards it). A handler that
 * ignores `flags` treats a part as the whole: check it (drop, count, log, or
 * raise recv_size; examples/udp_echo_server refuses to echo it). Counted in
 * nf_udp_stats.truncated. */
#define NF_UDP_TRUNC 1u

typedef enum nf_udp_drop {
    NF_UDP_DROP_NEWEST = 0, /* at the bound, discard the datagram being sent */
    NF_UDP_DROP_OLDEST,     /* discard the oldest one not yet handed to the kernel */
} nf_udp_drop_t;

typedef struct nf_udp_handler {
    /* A datagram arrived from `from`. data is valid during the call only.
     * `len` is the number of bytes delivered. CHECK `flags`: with
     * NF_UDP_TRUNC the datagram was longer than recv_size and data is only
     * its beginning (the rest is lost), so it must not be used as the whole
     * datagram. `peer` is the sender's peer object when the peer table is
     * on, else NULL. */
    void (*on_recv)(nf_udp_t *u, const char *data, size_t len, const nf_addr_t *from, unsigned flags,
                    nf_udp_peer_t *peer);
    /* Optional. An error the kernel reported for this socket: a send refused
     * (-ENOBUFS, -EMSGSIZE, -ENETUNREACH...) or, on a connected socket, an
     * ICMP error (-ECONNREFUSED). The socket stays open. */
    void (*on_error)(nf_udp_t *u, int err);
    /* Optional. Exactly once after nf_udp_close, from a later loop step;
     * after it returns the socket's memory is gone. */
    void (*on_close)(nf_udp_t *u);
    /* Optional, with the peer table: a new peer sent its first datagram
     * (runs before that datagram's on_recv). */
    void (*on_peer_open)(nf_udp_t *u, nf_udp_peer_t *p);
    /* Optional, with the peer table: the peer was idle for peer_idle_ms (or
     * the socket closes, or nf_udp_peer_close). The peer is freed after. */
    void (*on_peer_close)(nf_udp_t *u, nf_udp_peer_t *p);
} nf_udp_handler_t;

typedef struct nf_udp_config {
    const char *host; /* local address, numeric; NULL: 127.0.0.1 ("0.0.0.0" / "::" for any) */
    uint16_t port;    /* 0: the kernel picks (see nf_udp_local_addr) */
    int reuseport;    /* SO_REUSEPORT: one socket per loop of a thread pool */
    int reuseaddr;    /* SO_REUSEADDR (several multicast receivers on one port) */
    int ipv6_only;    /* IPV6_V6ONLY on an IPv6 address */
    int rcvbuf;       /* SO_RCVBUF in bytes (0: the kernel's default) */
    int sndbuf;       /* SO_SNDBUF in bytes (0: the kernel's default) */
    /* Connected mode: the only peer. Datagrams from others are not received
     * (the kernel filters them), nf_udp_send takes to = NULL, and ICMP errors
     * reach on_error. NULL: unconnected. */
    const nf_addr_t *connect_to;

    /* Receiving. recv_size: the largest datagram delivered whole; 0: 2048.
     * LONGER DATAGRAMS ARE TRUNCATED: on_recv gets their first recv_size
     * bytes with NF_UDP_TRUNC set (see above). To receive any datagram
     * whole set recv_size = NF_UDP_MAX_DGRAM4 (IPv4) or NF_UDP_MAX_DGRAM6.
     * recv_count: how many datagrams may wait in user space per socket
     * (io_uring: the socket's provided buffer ring, a power of two; epoll:
     * the recvmmsg batch, at most 64); 0: 256 (epoll 32).
     *
     * Why the default is small: every one of the recv_count buffers is
     * recv_size bytes (io_uring: + header and address, to 64 bytes), held
     * for the socket's life, and the ring hands them out in turn, so all of
     * them end up resident. Measured on kernel 6.18 (RSS of a process with
     * one socket; "used": after 1024 datagrams went through the ring):
     *   io_uring default 256 x 2112 B:   idle +136 KiB, used +660 KiB
     *   io_uring 256 x 65600 B (64 KiB): idle +136 KiB, used +16.1 MiB
     *   io_uring  64 x 65600 B:          idle  +72 KiB, used  +4.1 MiB
     *   epoll default 32 x 2048 B:       idle  +64 KiB, used +140 KiB
     *   epoll    32 x 65535 B:           idle  +64 KiB, used  +2.1 MiB
     * A server with one socket per loop on many cores, or many sockets,
     * would pay 16 MiB each for datagrams most protocols never send (DNS,
     * QUIC, games, RTP stay under 1,500 bytes); a program that expects big
     * ones raises recv_size and lowers recv_count, as udp_echo_server does
     * (65,527 x 64). */
    unsigned recv_size;
    unsigned recv_count;

    /* Sending: the bound on datagrams and bytes queued or in flight
     * (0: 1024 datagrams, 4 MiB), and what to drop at the bound. */
    unsigned max_queued_dgrams;
    size_t max_queued_bytes;
    nf_udp_drop_t drop;

    /* Pseudo-connections (see above). peer_idle_ms 0: no peer table.
     * max_peers: datagrams from new peers beyond it are dropped (counted in
     * peers_refused); 0: 65536. peer_rate (datagrams per second, 0: no
     * limit) and peer_burst (0: peer_rate) make each peer's token bucket. */
    uint64_t peer_idle_ms;
    unsigned max_peers;
    unsigned peer_rate;
    unsigned peer_burst;

    const nf_udp_handler_t *handler; /* required (on_recv); must outlive the socket */
    void *data;                      /* the socket's user pointer */
} nf_udp_config_t;

/* Fills *cfg with the defaults (all zero, host 127.0.0.1). */
void nf_udp_config_init(nf_udp_config_t *cfg);

/* Creates, binds (and connects) a socket and starts receiving. Returns 0 and
 * sets *out, or -EINVAL (no handler/on_recv), NF_EADDR, -EADDRINUSE, -ENOMEM
 * or another errno; nothing to close then. Loop thread only. */
int nf_udp_open(nf_loop_t *loop, const nf_udp_config_t *cfg, nf_udp_t **out);

/* Queues a copy of data[0..len) for `to` (NULL on a connected socket).
 * Returns 0 (queued; with NF_UDP_DROP_OLDEST an older datagram may have been
 * discarded to make room), NF_WRITE_DROPPED (discarded by NF_UDP_DROP_NEWEST:
 * nothing was queued), -EMSGSIZE (longer than a datagram can be),
 * -EDESTADDRREQ (no `to` on an unconnected socket), -EAFNOSUPPORT (address
 * family differs from the socket's), NF_ECLOSED or -ENOMEM. */
int nf_udp_send(nf_udp_t *u, const void *data, size_t len, const nf_addr_t *to);

/* Queues b->base[0..b->len) without copying. Takes over the caller's
 * reference to b in every case (also on failure, when b is released at
 * once). Same returns as nf_udp_send. */
int nf_udp_send_buf(nf_udp_t *u, nf_buf_t *b, const nf_addr_t *to);

/* Closes the socket: stops receiving, drops what is still queued (counted in
 * dropped), ends every peer (on_peer_close), and calls on_close from a later
 * loop step. Idempotent. */
void nf_udp_close(nf_udp_t *u);

/* The bound address (with the kernel's port when port 0 was asked). */
int nf_udp_local_addr(const nf_udp_t *u, nf_addr_t *out);

/* Multicast. group: a numeric IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group of
 * the socket's family. iface: an interface name ("lo", "eth0") or, for IPv4,
 * a local address ("127.0.0.1"); NULL: the kernel's choice. Return 0 or
 * -errno (NF_EADDR when group or iface cannot be parsed). */
int nf_udp_join(nf_udp_t *u, const char *group, const char *iface);
int nf_udp_leave(nf_udp_t *u, const char *group, const char *iface);
/* Outgoing multicast: the interface (as above), the TTL / hop limit (0-255,
 * default 1), and whether the host's own sockets receive what it sends
 * (default on). Return 0 or -errno. */
int nf_udp_set_multicast_if(nf_udp_t *u, const char *iface);
int nf_udp_set_multicast_ttl(nf_udp_t *u, int ttl);
int nf_udp_set_multicast_loop(nf_udp_t *u, int on);
/* The unicast TTL / hop limit. */
int nf_udp_set_ttl(nf_udp_t *u, int ttl);
/* SO_RCVBUF / SO_SNDBUF after creation (bytes asked; the kernel doubles
 * them and caps them at net.core.rmem_max / wmem_max unless root, where the
 * FORCE variants are used). Return 0 or -errno. */
int nf_udp_set_buffers(nf_udp_t *u, int rcvbuf, int sndbuf);

typedef struct nf_udp_stats {
    uint64_t dgrams_in;     /* delivered to on_recv */
    uint64_t bytes_in;      /* bytes delivered to on_recv */
    uint64_t truncated;     /* delivered with NF_UDP_TRUNC */
    uint64_t dgrams_out;    /* accepted by the kernel */
    uint64_t bytes_out;     /* bytes accepted by the kernel */
    uint64_t dropped;       /* discarded by the send queue's policy (or by close) */
    uint64_t send_errors;   /* refused by the kernel */
    uint64_t rate_dropped;  /* received, over their peer's token bucket */
    uint64_t peers_refused; /* received from a new peer beyond max_peers */
    uint64_t recv_errors;   /* receive errors (ICMP on connected sockets...) */
    uint64_t queued_dgrams; /* in the send queue or in flight now */
    uint64_t queued_bytes;
    uint64_t peers;        /* peers in the table now */
    uint64_t peers_opened; /* since creation */
    uint64_t peers_expired;
} nf_udp_stats_t;

void nf_udp_stats(const nf_udp_t *u, nf_udp_stats_t *out);

/* How this socket moves datagrams, e.g. "io_uring recvmsg=multishot
 * bufring=256x2112 send=sendmsg" or "epoll recvmmsg=32 send=sendmmsg". */
const char *nf_udp_features(const nf_udp_t *u);

nf_loop_t *nf_udp_loop(const nf_udp_t *u);
int nf_udp_fd(const nf_udp_t *u);
void *nf_udp_get_data(const nf_udp_t *u);
void nf_udp_set_data(nf_udp_t *u, void *data);

/* ---- peers (pseudo-connections) ---------------------------------------- */

/* The peer's address; its user pointer; when it last sent (loop ms). */
const nf_addr_t *nf_udp_peer_addr(const nf_udp_peer_t *p);
void *nf_udp_peer_get_data(const nf_udp_peer_t *p);
void nf_udp_peer_set_data(nf_udp_peer_t *p, void *data);
uint64_t nf_udp_peer_last_seen(const nf_udp_peer_t *p);
/* Sends to the peer (nf_udp_send to its address). */
int nf_udp_peer_send(nf_udp_peer_t *p, const void *data, size_t len);
/* Ends the peer now: on_peer_close runs inside this call. */
void nf_udp_peer_close(nf_udp_peer_t *p);
/* The peer for an address, or NULL. */
nf_udp_peer_t *nf_udp_peer_find(nf_udp_t *u, const nf_addr_t *a);

#ifdef __cplusplus
}
#endif
#endif
