/* netframe — Hixie-76 (draft-hixie-thewebsocketprotocol-76), sans-I/O: the
 * key challenge of the opening handshake and the 0x00 ... 0xFF framing.
 * Off by default on the server (nf_ws_server_config_t.legacy_hixie76); the
 * client speaks it with version 76. See docs/websocket.md. */
#include <errno.h>
#include "base/export.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "netframe/ws_codec.h"

NF__EXPORT int nf_ws_hixie76_key_value(const char *key, size_t len, uint32_t *out)
{
    uint64_t n = 0;
    unsigned digits = 0, spaces = 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c >= '0' && c <= '9') {
            n = n * 10 + (uint64_t)(c - '0');
            if (n > 0xffffffffull || ++digits > 10)
                return -EINVAL;
        } else if (c == ' ') {
            spaces++;
        }
    }
    if (!digits || spaces == 0 || n % spaces != 0)
        return -EINVAL;
    *out = (uint32_t)(n / spaces);
    return 0;
}

NF__EXPORT int nf_ws_hixie76_answer(const char *key1, size_t len1, const char *key2, size_t len2, const uint8_t key3[8],
                                    uint8_t out[16])
{
    uint32_t v1, v2;
    if (nf_ws_hixie76_key_value(key1, len1, &v1) || nf_ws_hixie76_key_value(key2, len2, &v2))
        return -EINVAL;
    return nf_ws_hixie76_answer_values(v1, v2, key3, out);
}

NF__EXPORT int nf_ws_hixie76_answer_values(uint32_t v1, uint32_t v2, const uint8_t key3[8], uint8_t out[16])
{
    uint8_t ch[16] = {(uint8_t)(v1 >> 24), (uint8_t)(v1 >> 16), (uint8_t)(v1 >> 8), (uint8_t)v1,
                      (uint8_t)(v2 >> 24), (uint8_t)(v2 >> 16), (uint8_t)(v2 >> 8), (uint8_t)v2};
    memcpy(ch + 8, key3, 8);
    unsigned mdlen = 0;
    if (!EVP_Digest(ch, sizeof ch, out, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return -ENOMEM;
    return 0;
}

/* ---- framing ---------------------------------------------------------------- */

enum { HX_TYPE = 0, HX_LEN, HX_SKIP, HX_TEXT, HX_CLOSED, HX_FAILED };

NF__EXPORT void nf_ws_hixie_decoder_init(nf_ws_hixie_decoder_t *d, uint64_t max_frame, const nf_ws_hixie_cbs_t *cbs)
{
    void *data = d->data;
    memset(d, 0, sizeof *d);
    d->data = data;
    d->max = max_frame ? max_frame : 16u << 20;
    d->cb = *cbs;
}

NF__EXPORT void nf_ws_hixie_decoder_free(nf_ws_hixie_decoder_t *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

static int fail(nf_ws_hixie_decoder_t *d, int err)
{
    d->state = HX_FAILED;
    d->error = err;
    return err;
}

/* The end of a sentinel frame: its bytes are p[0..n). */
static int text_done(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    d->state = HX_TYPE;
    if (d->type != 0x00) /* undefined sentinel frame types are discarded */
        return 0;
    if (!nf_ws_utf8_valid(p, n))
        return fail(d, NF_EWS_UTF8);
    int rc = d->cb.on_text ? d->cb.on_text(d, p, n) : 0;
    return rc < 0 ? fail(d, rc) : 0;
}

static int append(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    if (d->type != 0x00) /* discarded: count only */
        return 0;
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 256;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *nb = realloc(d->buf, cap);
        if (!nb)
            return fail(d, -ENOMEM);
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

NF__EXPORT int nf_ws_hixie_decoder_feed(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (d->state) {
        case HX_TYPE:
            d->type = p[i++];
            d->frame = 0;
            d->len = 0;
            d->state = d->type & 0x80 ? HX_LEN : HX_TEXT;
            break;
        case HX_LEN: {
            uint8_t b = p[i++];
            if (d->frame > (UINT64_MAX >> 7))
                return fail(d, NF_EWS_TOOBIG);
            d->frame = d->frame * 128 + (b & 0x7f);
            if (d->frame > d->max)
                return fail(d, NF_EWS_TOOBIG);
            if (b & 0x80)
                break;
            if (d->type == 0xff && d->frame == 0) { /* the closing handshake */
                d->state = HX_CLOSED;
                int rc = d->cb.on_close ? d->cb.on_close(d) : 0;
                return rc < 0 ? fail(d, rc) : 0;
            }
            d->state = d->frame ? HX_SKIP : HX_TYPE; /* length-prefixed: discarded */
            break;
        }
        case HX_SKIP: {
            uint64_t k = n - i < d->frame ? n - i : d->frame;
            i += (size_t)k;
            d->frame -= k;
            if (!d->frame)
                d->state = HX_TYPE;
            break;
        }
        case HX_TEXT: {
            const uint8_t *e = memchr(p + i, 0xff, n - i);
            size_t k = e ? (size_t)(e - (p + i)) : n - i;
            if (d->frame + k > d->max)
                return fail(d, NF_EWS_TOOBIG);
            d->frame += k;
            if (e && d->len == 0 && d->frame == k) { /* whole frame in this buffer: no copy */
                int rc = text_done(d, p + i, k);
                if (rc)
                    return rc;
            } else {
                if (append(d, p + i, k))
                    return d->error;
                if (e) {
                    int rc = text_done(d, d->buf, d->len);
                    if (rc)
                        return rc;
                    d->len = 0;
                }
            }
            i += k + (e ? 1 : 0);
            break;
        }
        case HX_CLOSED: return 0; /* everything after the closing frame is ignored */
        default: return NF_EWS_CLOSED;
        }
        if (d->state == HX_CLOSED)
            return 0;
    }
    return 0;
}

NF__EXPORT size_t nf_ws_hixie_frame_size(size_t len) { return len + 2; }

NF__EXPORT size_t nf_ws_hixie_write_text(uint8_t *out, const void *data, size_t len)
{
    out[0] = 0x00;
    if (len)
        memcpy(out + 1, data, len);
    out[len + 1] = 0xff;
    return len + 2;
}
