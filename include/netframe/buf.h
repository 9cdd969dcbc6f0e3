/* netframe — reference-counted byte buffers.
 *
 * A buffer is a block of bytes with a length, a capacity and a reference
 * count. Buffers carry received data past a read callback (nf_conn_keep_read)
 * and hand data to a write without a copy (nf_conn_write_buf). */
#ifndef NETFRAME_BUF_H
#define NETFRAME_BUF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_buf nf_buf_t;

/* Frees the memory wrapped by nf_buf_wrap when the last reference goes. */
typedef void (*nf_buf_free_cb)(void *base, void *arg);

struct nf_buf {
    char *base;     /* first byte */
    size_t len;     /* bytes used */
    size_t cap;     /* bytes available at base */
    unsigned refs;  /* reference count; not atomic: one loop at a time */
    unsigned flags; /* NF_BUF_* hints to the filters below; 0 by default */
    nf_buf_free_cb free_cb;
    void *free_arg;
};

/* Flags of a write buffer. NF_BUF_PRIORITY: a control message (a WebSocket
 * pong or close frame) that a flow-control policy must not drop: the flow
 * filter holds it (counted like any held write) even past its limits. */
#define NF_BUF_PRIORITY 1u

/* Allocates a buffer of `cap` bytes (len 0, one reference). Returns NULL when
 * memory is exhausted. */
nf_buf_t *nf_buf_new(size_t cap);

/* Wraps memory the caller owns: len = cap = `len`, one reference. When the
 * last reference is dropped, free_cb(base, arg) is called (if not NULL).
 * Returns NULL when memory is exhausted (free_cb is then not called). */
nf_buf_t *nf_buf_wrap(void *base, size_t len, nf_buf_free_cb free_cb, void *arg);

/* Adds a reference; returns b. */
nf_buf_t *nf_buf_ref(nf_buf_t *b);

/* Drops a reference; frees the buffer when it was the last. NULL is ignored. */
void nf_buf_unref(nf_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif
