/* netframe — WebSocket frame primitives: header parse / write, masking,
 * close payloads (RFC 6455 5.2, 5.3, 5.5.1, 7.4). */
#include "netframe/ws_codec.h"
#include "base/export.h"

#include <errno.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

NF__EXPORT unsigned nf_ws_close_code_for(int err)
{
    switch (err) {
    case NF_EWS_PROTOCOL: return NF_WS_CLOSE_PROTOCOL;
    case NF_EWS_UTF8:
    case NF_EWS_INFLATE: return NF_WS_CLOSE_INVALID_DATA;
    case NF_EWS_POLICY: return NF_WS_CLOSE_POLICY;
    case NF_EWS_TOOBIG: return NF_WS_CLOSE_TOO_BIG;
    case NF_EWS_EXTENSION: return NF_WS_CLOSE_EXTENSION;
    default: return err < 0 ? NF_WS_CLOSE_INTERNAL : 0;
    }
}

NF__EXPORT int nf_ws_parse_header(const uint8_t *buf, size_t len, nf_ws_frame_header_t *h)
{
    if (len < 2)
        return 0;
    unsigned b0 = buf[0], b1 = buf[1];
    unsigned l7 = b1 & 0x7f;
    size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
    if (len < need)
        return 0;
    h->fin = (uint8_t)(b0 >> 7);
    h->rsv = (uint8_t)(b0 & 0x70);
    h->opcode = (uint8_t)(b0 & 0x0f);
    h->masked = (uint8_t)(b1 >> 7);
    const uint8_t *p = buf + 2;
    if (l7 < 126) {
        h->len = l7;
        h->nonminimal = 0;
    } else if (l7 == 126) {
        h->len = ((uint64_t)p[0] << 8) | p[1];
        h->nonminimal = h->len < 126;
        p += 2;
    } else {
        if (p[0] & 0x80)
            return NF_EWS_PROTOCOL;
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | p[i];
        h->len = v;
        h->nonminimal = v <= 0xffff;
        p += 8;
    }
    if (h->masked)
        memcpy(h->mask, p, 4);
    else
        memset(h->mask, 0, 4);
    return (int)need;
}

NF__EXPORT size_t nf_ws_header_size(uint64_t len, int masked)
{
    size_t n = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    return masked ? n + 4 : n;
}

NF__EXPORT int nf_ws_write_header(uint8_t *out, size_t cap, unsigned flags, unsigned opcode, uint64_t len,
                                  const uint8_t *mask_key)
{
    if (opcode > 15 || (flags & ~0xf0u) || (len >> 63))
        return -EINVAL;
    size_t n = nf_ws_header_size(len, mask_key != NULL);
    if (cap < n)
        return -ENOBUFS;
    uint8_t m = mask_key ? 0x80 : 0;
    out[0] = (uint8_t)(flags | opcode);
    if (len < 126) {
        out[1] = (uint8_t)(m | len);
        out += 2;
    } else if (len <= 0xffff) {
        out[1] = (uint8_t)(m | 126);
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        out += 4;
    } else {
        out[1] = (uint8_t)(m | 127);
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        out += 10;
    }
    if (mask_key)
        memcpy(out, mask_key, 4);
    return (int)n;
}

NF__EXPORT int nf_ws_write_frame(uint8_t *out, size_t cap, unsigned flags, unsigned opcode, const void *payload,
                                 size_t len, const uint8_t *mask_key)
{
    if (len > (size_t)INT32_MAX - 14)
        return -EINVAL;
    int hl = nf_ws_write_header(out, cap, flags, opcode, len, mask_key);
    if (hl < 0)
        return hl;
    if (cap - (size_t)hl < len)
        return -ENOBUFS;
    if (len) {
        if (mask_key)
            nf_ws_mask_copy(out + hl, payload, len, mask_key, 0);
        else
            memmove(out + hl, payload, len);
    }
    return hl + (int)len;
}

/* The key repeated over 8 bytes, starting at key byte `o`. */
static uint64_t key_word(const uint8_t key[4], unsigned o)
{
    uint8_t k[8];
    uint64_t w;
    for (unsigned i = 0; i < 8; i++)
        k[i] = key[(o + i) & 3];
    memcpy(&w, k, 8);
    return w;
}

NF__EXPORT void nf_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4], uint64_t offset)
{
    unsigned o = (unsigned)(offset & 3);
    size_t i = 0;
    if (len >= 16) {
        /* Head: byte by byte until dst is 8-byte aligned. */
        while (((uintptr_t)(dst + i) & 7) != 0) {
            dst[i] = src[i] ^ key[(o + i) & 3];
            i++;
        }
        uint64_t k = key_word(key, (unsigned)((o + i) & 3));
#if defined(__SSE2__)
        __m128i k128 = _mm_set1_epi64x((long long)k);
        for (; len - i >= 64; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_xor_si128(a, k128));
            _mm_storeu_si128((__m128i *)(void *)(dst + i + 16), _mm_xor_si128(b, k128));
            _mm_storeu_si128((__m128i *)(void *)(dst + i + 32), _mm_xor_si128(c, k128));
            _mm_storeu_si128((__m128i *)(void *)(dst + i + 48), _mm_xor_si128(d, k128));
        }
#endif
        for (; len - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            w ^= k;
            memcpy(dst + i, &w, 8);
        }
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ key[(o + i) & 3];
}

NF__EXPORT void nf_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset)
{
    nf_ws_mask_copy(data, data, len, key, offset);
}

NF__EXPORT int nf_ws_close_code_valid(unsigned code)
{
    /* RFC 6455 7.4.1 defines 1000-1003 and 1007-1011; 1012-1014 were
     * registered with IANA since (restart, try again later, bad gateway).
     * 1004 is reserved, 1005, 1006 and 1015 must never be sent. 3000-3999 are
     * IANA-registered, 4000-4999 private. */
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

NF__EXPORT int nf_ws_parse_close(const uint8_t *payload, size_t len, unsigned *code, const char **reason,
                                 size_t *reason_len)
{
    if (len == 0) {
        *code = NF_WS_CLOSE_NO_STATUS;
        *reason = "";
        *reason_len = 0;
        return 0;
    }
    if (len == 1 || len > 125)
        return NF_EWS_PROTOCOL;
    unsigned c = ((unsigned)payload[0] << 8) | payload[1];
    if (!nf_ws_close_code_valid(c))
        return NF_EWS_PROTOCOL;
    if (!nf_ws_utf8_valid(payload + 2, len - 2))
        return NF_EWS_UTF8;
    *code = c;
    *reason = (const char *)payload + 2;
    *reason_len = len - 2;
    return 0;
}

NF__EXPORT int nf_ws_write_close(uint8_t *out, size_t cap, unsigned code, const char *reason, size_t reason_len,
                                 const uint8_t *mask_key)
{
    uint8_t p[125];
    size_t n = 0;
    if (code == 0) {
        if (reason_len)
            return -EINVAL;
    } else {
        if (!nf_ws_close_code_valid(code) || reason_len > 123 || !nf_ws_utf8_valid((const uint8_t *)reason, reason_len))
            return -EINVAL;
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        if (reason_len)
            memcpy(p + 2, reason, reason_len);
        n = 2 + reason_len;
    }
    return nf_ws_write_frame(out, cap, NF_WS_FIN, NF_WS_OP_CLOSE, p, n, mask_key);
}
