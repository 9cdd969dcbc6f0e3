/* netframe — WebSocket message encoder: compression, fragmentation, masking
 * into a caller buffer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getrandom, clock_gettime */
#endif
#include "netframe/ws_codec.h"
#include "base/export.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

NF__EXPORT int nf_ws_encoder_init(nf_ws_encoder_t *e, const nf_ws_encoder_config_t *cfg)
{
    void *data = e->data;
    if (!cfg || (cfg->role != NF_WS_SERVER && cfg->role != NF_WS_CLIENT))
        return -EINVAL;
    memset(e, 0, sizeof *e);
    e->data = data;
    e->cfg = *cfg;
    e->rnd_pos = sizeof e->rnd;
    return 0;
}

NF__EXPORT void nf_ws_encoder_free(nf_ws_encoder_t *e)
{
    e->pending = 0;
    e->payload = NULL;
}

static void fresh_key(nf_ws_encoder_t *e, uint8_t key[4])
{
    if (e->cfg.mask_key) {
        e->cfg.mask_key(e->cfg.mask_arg, key);
        return;
    }
    if (e->rnd_pos > sizeof e->rnd - 4) {
        ssize_t got = getrandom(e->rnd, sizeof e->rnd, 0);
        if (got != (ssize_t)sizeof e->rnd) {
            /* No getrandom (very old kernel): a weak fallback, still varying
             * per frame. Masking only defends proxies against cache
             * poisoning; it is not confidentiality. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)e;
            for (size_t i = 0; i < sizeof e->rnd; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                e->rnd[i] = (uint8_t)x;
            }
        }
        e->rnd_pos = 0;
    }
    memcpy(key, e->rnd + e->rnd_pos, 4);
    e->rnd_pos = (uint8_t)(e->rnd_pos + 4);
}

static size_t frag_size(const nf_ws_encoder_t *e)
{
    if (e->opcode >= 8 || e->cfg.fragment_size == 0)
        return SIZE_MAX;
    return e->cfg.fragment_size;
}

NF__EXPORT int nf_ws_encode_prepare(nf_ws_encoder_t *e, unsigned opcode, const void *data, size_t len, size_t *out_size)
{
    int masked = e->cfg.role == NF_WS_CLIENT;
    e->pending = 0;
    switch (opcode) {
    case NF_WS_OP_TEXT:
    case NF_WS_OP_BINARY: break;
    case NF_WS_OP_CLOSE:
    case NF_WS_OP_PING:
    case NF_WS_OP_PONG:
        if (len > 125)
            return -EINVAL;
        break;
    default: return -EINVAL;
    }
    if (len && !data)
        return -EINVAL;
    e->opcode = (uint8_t)opcode;
    e->compressed = 0;
    e->payload = data;
    e->plen = len;
    if (opcode < 8 && e->cfg.pmd && nf_ws_pmd_should_compress(e->cfg.pmd, len)) {
        int rc = nf_ws_pmd_compress(e->cfg.pmd, data, len, &e->payload, &e->plen);
        if (rc)
            return rc;
        e->compressed = 1;
    }
    size_t f = frag_size(e);
    size_t full = e->plen / f, rest = e->plen % f;
    size_t size = e->plen;
    if (full)
        size += full * nf_ws_header_size(f, masked);
    if (rest || e->plen == 0)
        size += nf_ws_header_size(rest, masked);
    e->out_size = size;
    e->pending = 1;
    *out_size = size;
    return 0;
}

NF__EXPORT int nf_ws_encode_write(nf_ws_encoder_t *e, uint8_t *out, size_t cap, size_t *written)
{
    if (!e->pending)
        return -EINVAL;
    if (cap < e->out_size) {
        *written = e->out_size;
        return -ENOBUFS;
    }
    int masked = e->cfg.role == NF_WS_CLIENT;
    size_t f = frag_size(e);
    size_t off = 0, pos = 0;
    int first = 1;
    do {
        size_t n = e->plen - off < f ? e->plen - off : f;
        int last = off + n == e->plen;
        unsigned flags = (last ? NF_WS_FIN : 0) | (first && e->compressed ? NF_WS_RSV1 : 0);
        unsigned op = first ? e->opcode : NF_WS_OP_CONT;
        uint8_t key[4];
        if (masked)
            fresh_key(e, key);
        int hl = nf_ws_write_header(out + pos, cap - pos, flags, op, n, masked ? key : NULL);
        if (hl < 0)
            return hl; /* cannot happen: the size was computed */
        pos += (size_t)hl;
        if (n) {
            if (masked)
                nf_ws_mask_copy(out + pos, e->payload + off, n, key, 0);
            else
                memcpy(out + pos, e->payload + off, n);
        }
        pos += n;
        off += n;
        first = 0;
    } while (off < e->plen);
    e->pending = 0;
    *written = pos;
    return 0;
}

NF__EXPORT int nf_ws_encode(nf_ws_encoder_t *e, unsigned opcode, const void *data, size_t len, uint8_t *out, size_t cap,
                            size_t *written)
{
    size_t need;
    int rc = nf_ws_encode_prepare(e, opcode, data, len, &need);
    if (rc)
        return rc;
    return nf_ws_encode_write(e, out, cap, written);
}
