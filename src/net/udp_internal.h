/* netframe — UDP internals shared by src/net/udp.c and udp_rx.c. The
 * backends see a socket through its I/O base and up-calls only
 * (core/backend.h). Nothing here is public API. */
#ifndef NF_NET_UDP_INTERNAL_H
#define NF_NET_UDP_INTERNAL_H

#include <sys/socket.h>

#include "net/transport.h"
#include "netframe/udp.h"

/* One datagram to send. Small copies live in pooled entries with room for
 * NF__UDP_TX_INLINE bytes; bigger copies get an entry of their size;
 * nf_udp_send_buf entries point into the caller's buffer. An entry begins
 * with what the backend sees (nf__dgram_t: data, length, destination, its
 * msghdr storage); entries are malloc'd (16-byte aligned). */
#define NF__UDP_TX_INLINE 512

typedef struct nf__udp_tx {
    nf__dgram_t dg; /* first: dg.next links the queue, dg.to points at `to` */
    nf_buf_t *buf;  /* owned reference (nf_udp_send_buf), else NULL */
    size_t cap;     /* inline capacity (0: none) */
    nf_addr_t to;
    /* inline bytes follow */
} nf__udp_tx_t;

struct nf_udp_peer {
    struct nf_udp_peer *hnext; /* hash chain */
    struct nf_udp *u;
    nf_addr_t addr;
    void *data;
    uint64_t last_seen; /* loop ms */
    uint64_t tok_ts;    /* token bucket: last refill (loop ms) */
    double tokens;
    uint32_t hash;
    nf__list_t lru; /* u->peer_lru, least recently seen first */
};

/* UDP socket flags (u->flags): the life-cycle bits are the I/O base's, as
 * a connection's. */
enum {
    NF__U_CLOSING = NF__IO_CLOSING,    /* nf_udp_close: no new work */
    NF__U_RELEASED = NF__IO_RELEASED,  /* backend done; on loop->closing */
    NF__U_IN_FLUSH = NF__IO_IN_FLUSH,  /* on loop->flush */
    NF__U_BLOCKED = NF__IO_WANT_WRITE, /* epoll: the socket buffer is full, wait for EPOLLOUT */
    NF__U_CONNECTED = 1u << 16,
};

struct nf_udp {
    /* the I/O base: loop, fd, flags (NF__U_*), the handle hd (loop->flush;
     * once released, loop->closing) and the backend's fields (be: its
     * rings and batch storage) */
    NF__IO_BASE;
    const nf_udp_handler_t *h;
    void *data;
    int family;
    nf_addr_t local;
    nf_addr_t peer; /* connected mode */

    unsigned recv_size, recv_count;
    unsigned max_dgrams;
    size_t max_bytes;
    nf_udp_drop_t drop;

    /* datagrams waiting to be handed to the kernel, oldest first */
    nf__udp_tx_t *wq_head, *wq_tail;
    unsigned nwait;     /* in the wait queue */
    unsigned ninflight; /* handed to the kernel, not completed (io_uring) */
    size_t qbytes;      /* bytes waiting + in flight */
    nf__udp_tx_t *pool; /* free inline entries */
    unsigned npool;

    /* peers */
    nf_udp_peer_t **ptab;
    unsigned pmask; /* buckets - 1 (0: no table) */
    nf__list_t peer_lru;
    uint64_t peer_idle_ms;
    unsigned max_peers;
    double peer_rate, peer_burst;
    nf_timer_t sweep;

    nf_udp_stats_t st;
    char features[96]; /* set by the backend's udp_start */
};

/* What the backends report (through udp.c's up-call table). */
/* A datagram for the program: `data[0..len)`, from `from` (may be NULL on a
 * connected socket: the peer is used), flags NF_UDP_TRUNC. */
void nf__udp_recv(nf_udp_t *u, const char *data, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  unsigned flags);
/* A receive error: counted, reported to on_error. */
void nf__udp_recv_error(nf_udp_t *u, int err);

static inline bool nf__udp_closing(const nf_udp_t *u) { return (u->flags & NF__U_CLOSING) != 0; }

/* udp_rx.c: frees a peer (its socket's table and LRU). */
void nf__udp_peer_free(nf_udp_t *u, nf_udp_peer_t *p);

#endif
