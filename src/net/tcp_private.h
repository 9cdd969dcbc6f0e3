/* netframe — what the files of the TCP transport share (conn.c, wq.c,
 * listen.c, connect.c, sockopt.c): private to src/net/. */
#ifndef NF_NET_TCP_PRIVATE_H
#define NF_NET_TCP_PRIVATE_H

#include "net/transport.h"

/* conn.c: construction, for accepted, adopted and outbound connections. */
nf_conn_t *nf__conn_new(nf_loop_t *loop, const nf_conn_handler_t *h, const nf_filter_spec_t *filters,
                        unsigned nfilters);
/* The connection is established: on_open (through the filters). */
void nf__conn_opened(nf_conn_t *c);
/* shutdown(SHUT_WR) now (the queue is empty). */
void nf__conn_do_shutdown(nf_conn_t *c);

/* wq.c: the write queue. */
void nf__wq_free(nf_conn_t *c);
nf__wseg_t *nf__seg_get(nf_conn_t *c);
void nf__seg_put(nf_conn_t *c, nf__wseg_t *s);
void nf__seg_release(nf_conn_t *c, nf__wseg_t *s);

/* connect.c: the outbound state, freed with the connection. */
void nf__connect_state_free(nf_conn_t *c);

/* sockopt.c: socket options; 0 or -errno. */
int nf__sock_nodelay(int fd, int on);
int nf__sock_keepalive(int fd, int on, int idle_s);
/* nodelay: 0 on, -1 off; keepalive_s > 0: SO_KEEPALIVE with that idle time;
 * the connection is flagged inline only if SO_OOBINLINE was really set. */
void nf__conn_sock_opts(nf_conn_t *c, int nodelay, int keepalive_s, bool oob_inline);

#endif
