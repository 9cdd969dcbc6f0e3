/* netframe — the net layer's per-loop record (transport.h): made with the
 * first connection, listener or shutdown of a loop, freed with the loop,
 * and its counters added to nf_loop_stats. */
#include <stdlib.h>

#include "net/transport.h"

static void net_stats(const nf__loop_ext_t *x, nf_loop_stats_t *out)
{
    const nf__net_stats_t *st = &((const nf__net_t *)(const void *)x)->st;
    out->conns_open += st->conns_open;
    out->conns_accepted += st->conns_accepted;
    out->conns_connected += st->conns_connected;
    out->conns_closed += st->conns_closed;
    out->conns_refused += st->conns_refused;
    out->bytes_in += st->bytes_in;
    out->bytes_out += st->bytes_out;
    out->reads += st->reads;
    out->writes += st->writes;
    out->accept_errors += st->accept_errors;
}

static void net_free(nf__loop_ext_t *x, nf_loop_t *loop)
{
    (void)loop;
    nf__net_t *n = (nf__net_t *)(void *)x;
    while (n->seg_pool) {
        nf__freeblk_t *s = n->seg_pool;
        n->seg_pool = s->next;
        free(s);
    }
}

const nf__loop_ext_ops_t nf__net_ext_ops = {.name = "net", .stats = net_stats, .free = net_free};

nf__net_t *nf__net_make(nf_loop_t *loop)
{
    nf__net_t *n = (nf__net_t *)(void *)nf__loop_ext(loop, &nf__net_ext_ops, sizeof(nf__net_t));
    if (n && !n->conns.next) { /* new: the lists start empty */
        nf__list_init(&n->conns);
        nf__list_init(&n->listeners);
    }
    return n;
}
