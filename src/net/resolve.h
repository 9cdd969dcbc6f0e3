/* netframe — name resolution on the loop (c-ares), for nf_connect.
 * Internal to the net layer: tcp.c starts and cancels, resolve.c answers. */
#ifndef NF_NET_RESOLVE_H
#define NF_NET_RESOLVE_H

#include "net/transport.h"

/* Addresses kept from one answer: the first NF__RESOLVE_MAX, in the
 * resolver's order (RFC 6724: IPv6 first where it is usable). */
#define NF__RESOLVE_MAX 16

struct nf__resolve; /* one name being resolved for one connection */

/* Starts resolving host for c (port goes into every address). Returns the
 * query, to pass to nf__resolve_cancel if c closes first; or NULL when the
 * answer is already known (an /etc/hosts hit, a failure to start), in which
 * case nf__conn_resolved(c, ...) has run inside this call. */
struct nf__resolve *nf__resolve_start(nf_conn_t *c, const char *host, uint16_t port);

/* c closes before its answer: nf__conn_resolved will not be called. */
void nf__resolve_cancel(struct nf__resolve *q);

/* tcp.c: the answer. err is 0 with n >= 1 addresses, or NF_EADDR (no such
 * name, no address), -ETIMEDOUT (no server answered), -ECONNREFUSED (the
 * servers refused or failed), -ENOMEM. addrs is valid during the call. */
void nf__conn_resolved(nf_conn_t *c, int err, const nf_addr_t *addrs, unsigned n);

#endif
