/* netframe — pub/sub across the loops of one process: a group of hubs, one
 * per loop. A message is copied and framed once, then posted to every other
 * member's loop (nf_loop_post keeps one thread's posts in order), where it
 * is wrapped in a buffer of that loop and fanned out: the payload crosses
 * threads once, shared by an atomic count. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/export.h"
#include "netframe/ws_codec.h"
#include "pubsub/pubsub_internal.h"

nf__ps_msg_t *nf__ps_msg_new(const char *topic, size_t tlen, uint64_t hash, unsigned opcode, const void *data,
                             size_t len)
{
    size_t hl = nf_ws_header_size(len, 0);
    nf__ps_msg_t *m = malloc(sizeof *m + tlen + hl + len);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->opcode = opcode;
    m->group = NULL;
    m->origin = NULL;
    m->tlen = tlen;
    m->hlen = hl;
    m->len = len;
    m->hash = hash;
    m->topic = (char *)m->data;
    memcpy(m->topic, topic, tlen);
    m->frame = m->data + tlen;
    nf_ws_write_header(m->frame, hl, NF_WS_FIN, opcode, len, NULL);
    if (len)
        memcpy(m->frame + hl, data, len);
    return m;
}

void nf__ps_msg_unref(nf__ps_msg_t *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* On a member's loop: its hubs (usually one; they may have left meanwhile). */
static void on_post(nf_loop_t *loop, void *arg)
{
    nf__ps_msg_t *m = arg;
    nf_pubsub_group_t *g = m->group;
    for (unsigned i = 0; i < g->n; i++) {
        if (atomic_load_explicit(&g->slots[i].loop, memory_order_acquire) != loop)
            continue;
        nf_pubsub_t *ps = atomic_load_explicit(&g->slots[i].hub, memory_order_acquire);
        if (ps && ps != m->origin)
            nf__ps_deliver_msg(ps, m, NULL);
    }
    nf__ps_msg_unref(m);
}

/* One post per loop that has a member other than the origin. */
int nf__ps_group_post(nf_pubsub_group_t *g, nf__ps_msg_t *m, const nf_pubsub_t *skip)
{
    int n = 0;
    m->group = g;
    for (unsigned i = 0; i < g->n; i++) {
        nf_loop_t *loop = atomic_load_explicit(&g->slots[i].loop, memory_order_acquire);
        if (!loop || atomic_load_explicit(&g->slots[i].hub, memory_order_acquire) == skip)
            continue;
        unsigned j = 0; /* posted to this loop already? */
        while (j < i && !(atomic_load_explicit(&g->slots[j].loop, memory_order_acquire) == loop &&
                          atomic_load_explicit(&g->slots[j].hub, memory_order_acquire) != skip))
            j++;
        if (j < i)
            continue;
        pthread_mutex_lock(&g->slots[i].lock);
        int rc = -1;
        if (atomic_load_explicit(&g->slots[i].loop, memory_order_acquire) == loop) { /* still a member */
            atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
            rc = nf_loop_post(loop, on_post, m);
            if (rc != 0)
                nf__ps_msg_unref(m);
        }
        pthread_mutex_unlock(&g->slots[i].lock);
        n += rc == 0;
    }
    return n;
}

int nf__ps_group_join(nf_pubsub_group_t *g, unsigned index, nf_pubsub_t *ps, nf_loop_t *loop)
{
    if (index >= g->n)
        return -EINVAL;
    nf_pubsub_t *none = NULL;
    if (!atomic_compare_exchange_strong(&g->slots[index].hub, &none, ps))
        return -EBUSY;
    atomic_store_explicit(&g->slots[index].loop, loop, memory_order_release);
    return 0;
}

void nf__ps_group_leave(nf_pubsub_group_t *g, unsigned index)
{
    pthread_mutex_lock(&g->slots[index].lock);
    atomic_store_explicit(&g->slots[index].loop, NULL, memory_order_release);
    atomic_store_explicit(&g->slots[index].hub, NULL, memory_order_release);
    pthread_mutex_unlock(&g->slots[index].lock);
}

NF__EXPORT int nf_pubsub_group_new(unsigned n, nf_pubsub_group_t **out)
{
    if (!n)
        return -EINVAL;
    nf_pubsub_group_t *g = calloc(1, sizeof *g + n * sizeof g->slots[0]);
    if (!g)
        return -ENOMEM;
    g->n = n;
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_init(&g->slots[i].lock, NULL);
        atomic_init(&g->slots[i].loop, NULL);
        atomic_init(&g->slots[i].hub, NULL);
    }
    *out = g;
    return 0;
}

NF__EXPORT void nf_pubsub_group_free(nf_pubsub_group_t *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->n; i++)
        pthread_mutex_destroy(&g->slots[i].lock);
    free(g);
}

NF__EXPORT int nf_pubsub_group_publish(nf_pubsub_group_t *g, const char *topic, size_t tlen, unsigned opcode,
                                       const void *data, size_t len)
{
    if (!topic || !tlen || tlen > NF_PUBSUB_TOPIC_MAX || (opcode != NF_WS_OP_TEXT && opcode != NF_WS_OP_BINARY) ||
        (len && !data))
        return -EINVAL;
    nf__ps_msg_t *m = nf__ps_msg_new(topic, tlen, nf__ps_hash(topic, tlen), opcode, data, len);
    if (!m)
        return -ENOMEM;
    int n = nf__ps_group_post(g, m, NULL);
    nf__ps_msg_unref(m);
    return n;
}
