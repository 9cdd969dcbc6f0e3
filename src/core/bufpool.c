/* netframe — the loop's buffer pools: read buffers counted in the loop's
 * stats, and the 16 KiB chunks copied writes go into. */
#include <stdlib.h>

#include "core/internal.h"

/* Read buffers count themselves in the loop's stats; a kept one is released
 * through the second callback. The loop must outlive buffers kept from it. */
static void rbuf_released(void *base, void *arg)
{
    (void)base;
    nf_loop_t *loop = arg;
    loop->stats.bufs_in_use--;
}

static void rbuf_kept_released(void *base, void *arg)
{
    (void)base;
    nf_loop_t *loop = arg;
    loop->stats.bufs_in_use--;
    loop->stats.bufs_kept--;
}

nf_buf_t *nf__rbuf_new(nf_loop_t *loop, size_t cap)
{
    nf_buf_t *b = nf_buf_new(cap);
    if (!b)
        return NULL;
    b->free_cb = rbuf_released;
    b->free_arg = loop;
    loop->stats.bufs_in_use++;
    return b;
}

/* Called by nf_conn_keep_read: the program now holds a reference. */
void nf__rbuf_mark_kept(nf_loop_t *loop, nf_buf_t *b)
{
    if (b->free_cb == rbuf_released) {
        b->free_cb = rbuf_kept_released;
        loop->stats.bufs_kept++;
    }
}

nf_buf_t *nf__chunk_get(nf_loop_t *loop, size_t need)
{
    if (need <= NF__CHUNK_SIZE && loop->chunk_pool_len > 0) {
        nf_buf_t *b = loop->chunk_pool[--loop->chunk_pool_len];
        b->len = 0;
        b->refs = 1;
        return b;
    }
    return nf_buf_new(need > NF__CHUNK_SIZE ? need : NF__CHUNK_SIZE);
}

void nf__chunk_put(nf_loop_t *loop, nf_buf_t *b)
{
    if (b->refs == 1 && b->cap == NF__CHUNK_SIZE && !b->free_cb && b->base == (char *)(b + 1) &&
        loop->chunk_pool_len < sizeof(loop->chunk_pool) / sizeof(loop->chunk_pool[0])) {
        loop->chunk_pool[loop->chunk_pool_len++] = b;
        return;
    }
    nf_buf_unref(b);
}
