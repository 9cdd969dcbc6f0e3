/* netframe — pub/sub: what hub.c and group.c share. Nothing here is public. */
#ifndef NF_PUBSUB_INTERNAL_H
#define NF_PUBSUB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "netframe/pubsub.h"

/* One message on its way to other loops: copied once, framed once (the
 * WebSocket frame header right before the payload), shared by every loop
 * through an atomic count. Each loop wraps frame[] in an nf_buf_t of its own
 * (the buffers' counts are not atomic) whose last reference drops one of
 * the message's. */
typedef struct nf__ps_msg {
    atomic_uint refs;
    unsigned opcode;
    nf_pubsub_group_t *group;
    nf_pubsub_t *origin; /* skipped: it delivered the message already */
    size_t tlen, hlen, len;
    uint64_t hash;
    char *topic;    /* in data */
    uint8_t *frame; /* in data: hlen header bytes, then len payload bytes */
    uint8_t data[];
} nf__ps_msg_t;

/* A member. `lock` is held while a post to its loop is made and while the
 * hub leaves, so that once nf_pubsub_free has left the group no thread
 * posts to its loop any more (the loop may be freed after it). */
typedef struct nf__ps_slot {
    pthread_mutex_t lock;
    _Atomic(nf_loop_t *) loop; /* set while a hub is a member */
    _Atomic(nf_pubsub_t *) hub;
} nf__ps_slot_t;

struct nf_pubsub_group {
    unsigned n;
    nf__ps_slot_t slots[];
};

uint64_t nf__ps_hash(const char *s, size_t len);
/* The message's frame and payload for the hub's loop: delivers it to the
 * local subscribers of its topic except `except`; counts as publish. */
int nf__ps_deliver_msg(nf_pubsub_t *ps, nf__ps_msg_t *m, const void *except);
void nf__ps_msg_unref(nf__ps_msg_t *m);
/* Copies and frames a message (one reference). NULL: no memory. */
nf__ps_msg_t *nf__ps_msg_new(const char *topic, size_t tlen, uint64_t hash, unsigned opcode, const void *data,
                             size_t len);
/* Posts m to every member of g but `skip` (a hub, or NULL); returns how
 * many posts were made. */
int nf__ps_group_post(nf_pubsub_group_t *g, nf__ps_msg_t *m, const nf_pubsub_t *skip);
int nf__ps_group_join(nf_pubsub_group_t *g, unsigned index, nf_pubsub_t *ps, nf_loop_t *loop);
void nf__ps_group_leave(nf_pubsub_group_t *g, unsigned index);

#endif
