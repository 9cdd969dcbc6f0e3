/* netframe — what the backends share (src/backend/): the engines' tables,
 * the kernel feature probe, the socket I/O both engines do with plain
 * system calls (the stream read loop, the datagram batches), and small
 * helpers. Private to src/backend/; each engine has its own header too
 * (uring/uring.h, epoll/epoll.h). */
#ifndef NF_BACKEND_PRIVATE_H
#define NF_BACKEND_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/backend.h"

extern const nf__backend_ops_t nf__uring_ops; /* uring/uring.c */
extern const nf__backend_ops_t nf__epoll_ops; /* epoll/epoll.c */

/* The completion modes by number, for the features line. */
extern const char *const nf__be_modes[3];

/* user_data / epoll data: an object (malloc'd, 16-byte aligned) | a tag in
 * its low bits. */
static inline uint64_t nf__be_tag(const void *p, unsigned tag) { return (uint64_t)(uintptr_t)p | tag; }

/* ---- what the kernel offers: asked once per process (probe.c) ------------- */

typedef struct nf__probe {
    bool recv_multishot;    /* io_uring: multishot receive with a provided buffer ring */
    bool send_zc;           /* io_uring: IORING_OP_SEND_ZC */
    bool recvmsg_multishot; /* io_uring: multishot recvmsg on a datagram socket */
    bool send_addr;         /* io_uring: IORING_OP_SEND takes a destination address */
} nf__probe_t;
const nf__probe_t *nf__probe(void);

/* ---- socket I/O with plain system calls (sockio.c) -------------------------- */

/* O_NONBLOCK on or off; 0 or -errno. */
int nf__set_nonblock(int fd, bool on);

enum {
    NF__READ_DRAINED = 0, /* drained (or the owner stopped reading / is closing) */
    NF__READ_MORE = 1,    /* `max` reads done: more may be waiting */
    NF__READ_ENDED = 2,   /* EOF or an error went up (ENOMEM included) */
};
/* The read loop of a stream socket (epoll, and io_uring's poll-and-read
 * fallback): reads io->fd into *scratch and hands each read up, at most
 * `max` times, while the owner reads (no NF__IO_CLOSING / EOF / holds). A
 * read shorter than the buffer means drained unless `hup` (the peer hung
 * up, or urgent data stops reads at its mark: read on to EAGAIN). A kept
 * scratch buffer is replaced; out of memory fails the connection with
 * -ENOMEM (read_end), never the process. */
int nf__sock_read(nf__io_t *io, nf_buf_t **scratch, int max, bool hup);

/* recvmmsg storage of one datagram socket, allocated on first use. */
typedef struct nf__dgram_rx {
    struct mmsghdr *msgs;
    struct iovec *iov;
    struct sockaddr_storage *names;
    char *mem;
    unsigned n;
    unsigned recv_size, recv_count; /* from udp_start */
} nf__dgram_rx_t;
/* Receives up to `batches` recvmmsg batches and hands them up. 0 when the
 * socket was drained (EAGAIN), 1 when the bound was reached with more maybe
 * waiting, or -ENOMEM. */
int nf__dgram_recv_batches(nf__io_t *io, nf__dgram_rx_t *rx, unsigned batches);
void nf__dgram_rx_free(nf__dgram_rx_t *rx);
/* sendmmsg of the waiting datagrams until the queue is empty (0) or the
 * socket buffer is full (1: wait for writability). */
int nf__dgram_send_batches(nf__io_t *io);

#endif
