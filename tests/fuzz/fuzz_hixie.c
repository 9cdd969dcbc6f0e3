/* libFuzzer target: the Hixie-76 decoder (any split, any limit) and key
 * parser. Build: tests/fuzz/fuzz.cmake. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netframe/ws_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t bytes;
    int closed;
} state_t;

static int on_text(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    state_t *s = d->data;
    if (s->closed || n > d->max || !nf_ws_utf8_valid(p, n) || memchr(p, 0xff, n))
        abort();
    s->bytes += n;
    return 0;
}

static int on_close(nf_ws_hixie_decoder_t *d)
{
    state_t *s = d->data;
    if (s->closed++)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const nf_ws_hixie_cbs_t cbs = {.on_text = on_text, .on_close = on_close};
    uint64_t max = 1 + data[0] * 16u;
    size_t step = 1 + data[1];
    uint32_t v;
    nf_ws_hixie76_key_value((const char *)data + 2, size - 2 < 64 ? size - 2 : 64, &v);
    state_t s = {0};
    nf_ws_hixie_decoder_t d = {.data = &s};
    nf_ws_hixie_decoder_init(&d, max, &cbs);
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    for (size_t off = 2; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (nf_ws_hixie_decoder_feed(&d, copy + off, n) != 0)
            break;
    }
    nf_ws_hixie_decoder_free(&d);
    free(copy);
    return 0;
}
