/* netframe — UDP internals shared by src/net/udp.c and the backends'
 * *_udp.c files. Nothing here is public API. */
#ifndef NF_NET_UDP_INTERNAL_H
#define NF_NET_UDP_INTERNAL_H

#include <sys/socket.h>

#include "net/transport.h"
#include "netframe/udp.h"

/* One datagram to send. Small copies live in pooled entries with room for
 * NF__UDP_TX_INLINE bytes; bigger copies get an entry of their size;
 * nf_udp_send_buf entries point into the caller's buffer. The msghdr and
 * iovec stay valid while the kernel has the datagram (io_uring). Entries are
 * malloc'd (16-byte aligned): io_uring's user_data is the entry | op tag. */
#define NF__UDP_TX_INLINE 512

typedef struct nf__udp_tx {
    struct nf__udp_tx *next;
    struct nf_udp *u;
    nf_buf_t *buf; /* owned reference (nf_udp_send_buf), else NULL */
    char *data;
    size_t len;
    size_t cap; /* inline capacity (0: none) */
    bool has_to;
    nf_addr_t to;
    struct msghdr mh;
    struct iovec iov;
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

enum {
    NF__U_CLOSING = 1u << 0,  /* nf_udp_close: no new work */
    NF__U_RELEASED = 1u << 1, /* backend done; on loop->closing */
    NF__U_IN_FLUSH = 1u << 2, /* on loop->flush */
    NF__U_BLOCKED = 1u << 3,  /* epoll: the socket buffer is full, wait for EPOLLOUT */
    NF__U_CONNECTED = 1u << 4,
};

/* recvmmsg batch storage (epoll; io_uring's fallback), allocated on first use */
typedef struct nf__udp_rx {
    struct mmsghdr *msgs;
    struct iovec *iov;
    struct sockaddr_storage *names;
    char *mem;
    unsigned n;
} nf__udp_rx_t;

struct nf_udp {
    nf_loop_t *loop;
    const nf_udp_handler_t *h;
    void *data;
    int fd;
    int family;
    uint32_t flags;
    uint16_t be_flags;    /* backend-private bits */
    uint32_t be_inflight; /* backend: operations in flight (sends included) */
    void *be;             /* backend-private state (io_uring: the buffer ring) */
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

    nf__handle_t hd; /* loop->flush; once released, loop->closing */
    nf__udp_rx_t rx;

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

/* Called by backends. */
/* A datagram for the program: `data[0..len)`, from `from` (may be NULL on a
 * connected socket: the peer is used), flags NF_UDP_TRUNC. */
void nf__udp_recv(nf_udp_t *u, const char *data, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  unsigned flags);
/* A receive error: counted, reported to on_error. */
void nf__udp_recv_error(nf_udp_t *u, int err);
/* Takes the oldest waiting datagram to hand to the kernel (NULL: none);
 * it counts as in flight until nf__udp_tx_done. */
nf__udp_tx_t *nf__udp_tx_pop(nf_udp_t *u);
/* The kernel finished with tx: res = bytes sent or -errno. Frees tx. */
void nf__udp_tx_done(nf_udp_t *u, nf__udp_tx_t *tx, int res);
/* The backend is done with u (nothing in flight): finish the close. */
void nf__udp_released(nf_udp_t *u);
/* Puts u back on the loop's flush list (epoll: the socket became writable). */
void nf__udp_schedule_flush(nf_udp_t *u);
/* Receives up to `batches` recvmmsg batches into u->rx and delivers them.
 * Returns 0 when the socket was drained (EAGAIN), 1 when the bound was
 * reached with more maybe waiting, or -ENOMEM. */
int nf__udp_recv_batches(nf_udp_t *u, unsigned batches);
/* sendmmsg of the waiting datagrams until the queue is empty (0) or the
 * socket buffer is full (1: wait for writability). */
int nf__udp_send_batches(nf_udp_t *u);

static inline bool nf__udp_closing(const nf_udp_t *u) { return (u->flags & NF__U_CLOSING) != 0; }

/* udp_rx.c: frees a peer (its socket's table and LRU). */
void nf__udp_peer_free(nf_udp_t *u, nf_udp_peer_t *p);

#endif
