/* netframe — the io_uring backend's UDP part (uring_udp.c), hooked into
 * uring.c through four op tags and the functions below. */
#ifndef NF_BACKEND_URING_UDP_H
#define NF_BACKEND_URING_UDP_H

#include <liburing.h>

#include "net/udp_internal.h"

/* user_data op tags (uring.c's OP_MASK is 15): kept at the top of the range */
enum {
    NF__UOP_UDP_RECV = 12,   /* multishot recvmsg, on the nf_udp_t */
    NF__UOP_UDP_SEND = 13,   /* sendmsg, on the nf__udp_tx_t */
    NF__UOP_UDP_POLL = 14,   /* fallback poll for readability, on the nf_udp_t */
    NF__UOP_UDP_CANCEL = 15, /* a cancel, counted on the nf_udp_t */
};

/* uring.c */
struct io_uring *nf__uring_ring(nf_loop_t *loop);
struct io_uring_sqe *nf__uring_sqe(nf_loop_t *loop);

int nf__uring_udp_start(nf_udp_t *u);
void nf__uring_udp_flush(nf_udp_t *u);
void nf__uring_udp_stop(nf_udp_t *u);
void nf__uring_udp_cqe(nf_loop_t *loop, void *p, unsigned op, struct io_uring_cqe *cqe);

#endif
