/* libFuzzer target: WebSocket decoder (both roles, streaming and whole
 * message, with and without permessage-deflate, any split), UTF-8 validator
 * and an encoder -> decoder round trip. Build: tests/fuzz/fuzz.cmake. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netframe/ws_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t bytes;
    int in_msg;
    int stop_after; /* reject the n-th message */
    int msgs;
} state_t;

static int on_begin(nf_ws_decoder_t *d, unsigned op, int z)
{
    state_t *s = d->data;
    (void)z;
    if (s->in_msg || (op != 1 && op != 2))
        abort();
    s->in_msg = 1;
    s->bytes = 0;
    return 0;
}

static int on_data(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    state_t *s = d->data;
    if (!s->in_msg)
        abort();
    for (size_t i = 0; i < n; i += 4096)
        (void)*(volatile const uint8_t *)(p + i);
    s->bytes += n;
    return 0;
}

static int on_end(nf_ws_decoder_t *d)
{
    state_t *s = d->data;
    if (!s->in_msg)
        abort();
    s->in_msg = 0;
    return ++s->msgs == s->stop_after ? NF_EWS_POLICY : 0;
}

static int on_message(nf_ws_decoder_t *d, unsigned op, const uint8_t *p, size_t n)
{
    state_t *s = d->data;
    if (op != 1 && op != 2)
        abort();
    if (op == 1 && !nf_ws_utf8_valid(p, n))
        abort(); /* text is validated before delivery */
    return ++s->msgs == s->stop_after ? NF_EWS_POLICY : 0;
}

static int on_ctl(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    (void)d;
    (void)p;
    if (n > 125)
        abort();
    return 0;
}

static int on_close(nf_ws_decoder_t *d, unsigned code, const char *r, size_t n)
{
    (void)d;
    if (code != 1005 && !nf_ws_close_code_valid(code))
        abort();
    if (!nf_ws_utf8_valid((const uint8_t *)r, n))
        abort();
    return 0;
}

static void round_trip(const uint8_t *data, size_t size, unsigned sel)
{
    /* Encode the input as one message and decode it again. */
    nf_ws_pmd_params_t pa = {sel & 1, (sel >> 1) & 1, 9 + (int)((sel >> 2) & 7) % 7, 15};
    nf_ws_pmd_t *tx = nf_ws_pmd_new(NF_WS_SERVER, &pa, &(nf_ws_pmd_config_t){.threshold = 1});
    nf_ws_pmd_t *rx = nf_ws_pmd_new(NF_WS_CLIENT, &pa, NULL);
    int use = (sel >> 5) & 1;
    nf_ws_encoder_t e;
    nf_ws_encoder_config_t ec = {.role = NF_WS_SERVER, .fragment_size = (sel >> 6) * 7, .pmd = use ? tx : NULL};
    nf_ws_encoder_init(&e, &ec);
    size_t need, wrote;
    unsigned op = nf_ws_utf8_valid(data, size) ? NF_WS_OP_TEXT : NF_WS_OP_BINARY;
    if (nf_ws_encode_prepare(&e, op, data, size, &need) != 0)
        abort();
    uint8_t *out = malloc(need ? need : 1);
    if (nf_ws_encode_write(&e, out, need, &wrote) != 0 || wrote != need)
        abort();
    nf_ws_decoder_t d;
    state_t st = {0};
    d.data = &st;
    nf_ws_decoder_config_t dc = {.role = NF_WS_CLIENT, .pmd = use ? rx : NULL, .reject_nonminimal = 1};
    nf_ws_decoder_cbs_t cbs = {.on_message_begin = on_begin, .on_data = on_data, .on_message_end = on_end};
    nf_ws_decoder_init(&d, &dc, &cbs);
    if (nf_ws_decoder_feed(&d, out, wrote) != 0 || st.msgs != 1 || st.bytes != size)
        abort();
    nf_ws_decoder_free(&d);
    free(out);
    nf_ws_pmd_free(tx);
    nf_ws_pmd_free(rx);
}

typedef struct {
    int rc;
    unsigned code;
    int msgs;
    uint64_t bytes;
} summary_t;

/* Decodes data in pieces of `chunk` bytes (0: one piece) with the decoder
 * chosen by sel/sel2; every piece is an exact-size heap copy. */
static summary_t decode(const uint8_t *data, size_t size, size_t chunk, unsigned sel, unsigned sel2)
{
    nf_ws_pmd_t *pmd = NULL;
    if (sel & 4) {
        nf_ws_pmd_params_t pa = {sel & 8, sel & 16, 8 + (int)(sel2 & 7), 8 + (int)((sel2 >> 3) & 7)};
        pmd = nf_ws_pmd_new((sel & 1) ? NF_WS_CLIENT : NF_WS_SERVER, &pa, NULL);
    }
    nf_ws_decoder_t d;
    state_t st = {0};
    st.stop_after = (sel2 >> 6) & 3;
    d.data = &st;
    nf_ws_decoder_config_t cfg = {
        .role = (sel & 1) ? NF_WS_CLIENT : NF_WS_SERVER,
        .max_frame = (sel & 32) ? 1000 : 0,
        .max_message = (sel & 64) ? 5000 : 0,
        .pmd = pmd,
        .reject_nonminimal = (sel >> 7) & 1,
    };
    nf_ws_decoder_cbs_t cbs = {on_begin, on_data, on_end, NULL, on_ctl, on_ctl, on_close};
    if (sel & 2) {
        cbs.on_message_begin = NULL;
        cbs.on_data = NULL;
        cbs.on_message_end = NULL;
        cbs.on_message = on_message;
    }
    if (nf_ws_decoder_init(&d, &cfg, &cbs) != 0)
        abort();
    summary_t sum = {0, 0, 0, 0};
    size_t pos = 0;
    if (!chunk)
        chunk = size;
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + pos, n);
        int rc = nf_ws_decoder_feed(&d, piece, n);
        free(piece);
        if (rc) {
            unsigned code = nf_ws_decoder_close_code(&d);
            if (code != 1002 && code != 1007 && code != 1008 && code != 1009)
                abort();
            if (nf_ws_decoder_feed(&d, (uint8_t *)"x", 1) != NF_EWS_CLOSED)
                abort();
            sum.rc = rc;
            sum.code = code;
            break;
        }
        pos += n;
    }
    sum.msgs = st.msgs;
    sum.bytes = st.bytes;
    nf_ws_decoder_free(&d);
    nf_ws_pmd_free(pmd);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned sel = data[0], sel2 = data[1], step = data[2];
    data += 3;
    size -= 3;

    if (sel2 & 0x80) {
        round_trip(data, size, sel);
        return 0;
    }

    /* The answer must not depend on how the bytes were cut. (Text is
     * rejected at the first bad byte, so a failing message may have handed
     * out a different number of bytes before the error, and a compressed
     * message can show bad UTF-8 before its deflate stream turns out corrupt
     * or the other way round, both 1007: compare failing or not, the close
     * code and the messages completed.) */
    summary_t a = decode(data, size, 0, sel, sel2);
    summary_t b = decode(data, size, step, sel, sel2);
    if (!a.rc != !b.rc || a.code != b.code || a.msgs != b.msgs)
        abort();
    if (!a.rc && a.bytes != b.bytes)
        abort();

    /* UTF-8: any split agrees with the one-shot answer. */
    nf_ws_utf8_t u;
    nf_ws_utf8_init(&u);
    size_t cut = step < size ? step : size;
    int bad = nf_ws_utf8_feed(&u, data, cut) != 0;
    bad |= nf_ws_utf8_feed(&u, data + cut, size - cut) != 0;
    bad |= nf_ws_utf8_finish(&u) != 0;
    if (bad == nf_ws_utf8_valid(data, size))
        abort();
    return 0;
}
