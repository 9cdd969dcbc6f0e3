/* netframe — reference-counted buffers (public nf_buf_*): no loop, no pool. */
#include <stdlib.h>

#include "base/export.h"
#include "netframe/buf.h"

NF__EXPORT nf_buf_t *nf_buf_new(size_t cap)
{
    nf_buf_t *b = malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    b->base = (char *)(b + 1);
    b->len = 0;
    b->cap = cap;
    b->refs = 1;
    b->flags = 0;
    b->free_cb = NULL;
    b->free_arg = NULL;
    return b;
}

NF__EXPORT nf_buf_t *nf_buf_wrap(void *base, size_t len, nf_buf_free_cb free_cb, void *arg)
{
    nf_buf_t *b = malloc(sizeof(*b));
    if (!b)
        return NULL;
    b->base = base;
    b->len = b->cap = len;
    b->refs = 1;
    b->flags = 0;
    b->free_cb = free_cb;
    b->free_arg = arg;
    return b;
}

NF__EXPORT nf_buf_t *nf_buf_ref(nf_buf_t *b)
{
    b->refs++;
    return b;
}

NF__EXPORT void nf_buf_unref(nf_buf_t *b)
{
    if (!b || --b->refs > 0)
        return;
    if (b->free_cb)
        b->free_cb(b->base, b->free_arg);
    free(b);
}
