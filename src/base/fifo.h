/* netframe — a FIFO of held buffers, the one copy: writes a layer keeps back
 * (flow control, TLS before its handshake, a reconnecting connector while
 * down) and the records it sent down and watches. Each entry holds one
 * reference to its nf_buf_t; the FIFO counts its entries and their bytes
 * (the buffers' len when pushed: a buffer must not change length while it
 * is held). Header-only: the calls are a few loads and stores on hot write
 * paths. Knows no loop. */
#ifndef NF_BASE_FIFO_H
#define NF_BASE_FIFO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "netframe/buf.h"

typedef struct nf__fifo_node {
    struct nf__fifo_node *next; /* first: a link pointer is also its node */
    nf_buf_t *buf;
} nf__fifo_node_t;

typedef struct nf__fifo {
    nf__fifo_node_t *head, *tail;
    size_t bytes; /* sum of the entries' len */
    size_t count; /* entries */
} nf__fifo_t;

static inline bool nf__fifo_empty(const nf__fifo_t *q) { return q->head == NULL; }

/* Appends b, taking the caller's reference. 0, or -ENOMEM (b untouched:
 * the caller still owns its reference). */
static inline int nf__fifo_push(nf__fifo_t *q, nf_buf_t *b)
{
    nf__fifo_node_t *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->next = NULL;
    n->buf = b;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->bytes += b->len;
    q->count++;
    return 0;
}

/* Unlinks the entry *pp points to (&q->head, or the next field of the entry
 * before it) and returns its buffer with the FIFO's reference: for walks
 * that take entries out of the middle (`for (pp = &q->head; *pp;)`, step
 * with pp = &(*pp)->next past an entry that stays). */
static inline nf_buf_t *nf__fifo_unlink(nf__fifo_t *q, nf__fifo_node_t **pp)
{
    nf__fifo_node_t *n = *pp;
    nf_buf_t *b = n->buf;
    *pp = n->next;
    if (q->tail == n) /* the link was the one of the entry before, or the head */
        q->tail = pp == &q->head ? NULL : (nf__fifo_node_t *)(void *)pp;
    q->bytes -= b->len;
    q->count--;
    free(n);
    return b;
}

/* Takes the oldest buffer out, with the FIFO's reference; NULL when empty. */
static inline nf_buf_t *nf__fifo_pop(nf__fifo_t *q) { return q->head ? nf__fifo_unlink(q, &q->head) : NULL; }

/* Drops every entry (and its reference). */
static inline void nf__fifo_clear(nf__fifo_t *q)
{
    while (q->head)
        nf_buf_unref(nf__fifo_unlink(q, &q->head));
}

#endif
