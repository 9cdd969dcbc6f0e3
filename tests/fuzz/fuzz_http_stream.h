/* Shared by the HTTP stream fuzz targets (fuzz_http_stream, fuzz_http_chunked):
 * the reader is fed the input whole, then in pieces cut where the input's
 * selector says (and byte by byte for short inputs); the events, folded into
 * a transcript (heads, body bytes, trailers, ends, the error status), must
 * be the same every way, every body view must lie inside the piece it came
 * from, and every error must name a 4xx/5xx answer. */
#ifndef NF_FUZZ_HTTP_STREAM_H
#define NF_FUZZ_HTTP_STREAM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "netframe/http.h"

typedef struct {
    uint64_t hash; /* FNV-1a over the transcript */
    uint64_t events;
} fz_tr_t;

static void fz_mix(fz_tr_t *t, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        t->hash ^= b[i];
        t->hash *= 1099511628211ULL;
    }
}

static void fz_feed(const char *buf, size_t size, size_t step, size_t first, const nf_http_reader_config_t *cfg,
                    fz_tr_t *t)
{
    nf_http_reader_t r;
    t->hash = 1469598103934665603ULL;
    t->events = 0;
    if (nf_http_reader_init(&r, cfg) < 0)
        abort();
    size_t off = 0;
    int done = 0;
    while (!done) {
        size_t n = off == 0 ? first : step;
        if (n > size - off)
            n = size - off;
        /* an exact-size copy of the piece, so ASan sees reads past it */
        char *piece = malloc(n ? n : 1);
        memcpy(piece, buf + off, n);
        const char *p = piece;
        size_t left = n;
        for (;;) {
            nf_http_event_t ev;
            size_t used = nf_http_reader_next(&r, p, left, &ev);
            if (used > left)
                abort();
            if (ev.type == NF_HTTP_EV_HEAD) {
                char tag = 'H';
                fz_mix(t, &tag, 1);
                fz_mix(t, r.req.method, r.req.method_len);
                fz_mix(t, r.req.target, r.req.target_len);
                fz_mix(t, &r.chunked, sizeof r.chunked);
                fz_mix(t, &r.content_length, sizeof r.content_length);
                fz_mix(t, &r.keep_alive, sizeof r.keep_alive);
                for (size_t i = 0; i < r.req.num_headers; i++) {
                    fz_mix(t, r.req.headers[i].name, r.req.headers[i].name_len);
                    fz_mix(t, r.req.headers[i].value, r.req.headers[i].value_len);
                }
            } else if (ev.type == NF_HTTP_EV_BODY) {
                if (ev.len == 0 || ev.data < p || ev.data + ev.len > p + left)
                    abort();
                fz_mix(t, ev.data, ev.len); /* bytes only: pieces may split them */
            } else if (ev.type == NF_HTTP_EV_END) {
                char tag = 'E';
                fz_mix(t, &tag, 1);
                for (size_t i = 0; i < r.num_trailers; i++) {
                    fz_mix(t, r.trailers[i].name, r.trailers[i].name_len);
                    fz_mix(t, r.trailers[i].value, r.trailers[i].value_len);
                }
            } else if (ev.type == NF_HTTP_EV_ERROR) {
                if (ev.status < 400 || ev.status > 599)
                    abort();
                char tag = 'X';
                fz_mix(t, &tag, 1);
                fz_mix(t, &ev.status, sizeof ev.status);
                done = 1;
                break;
            }
            if (ev.type != NF_HTTP_EV_MORE)
                t->events++;
            p += used;
            left -= used;
            if (ev.type == NF_HTTP_EV_MORE) {
                if (left)
                    abort();
                break;
            }
        }
        free(piece);
        off += n;
        if (off >= size) {
            /* a message with no body ends without more input */
            nf_http_event_t ev;
            while (!done && nf_http_reader_next(&r, "", 0, &ev) == 0 && ev.type == NF_HTTP_EV_END) {
                char tag = 'E';
                fz_mix(t, &tag, 1);
                t->events++;
            }
            done = 1;
        }
    }
    nf_http_reader_free(&r);
}

/* Runs the checks over buf[0..size) (the selector picks limits and cuts). */
static void fz_stream(const char *buf, size_t size, unsigned sel)
{
    nf_http_reader_config_t cfg = {0};
    if (sel & 1)
        cfg.max_body = 64;
    if (sel & 2) {
        cfg.head.max_head = 128;
        cfg.head.max_field = 48;
        cfg.max_trailer = 40;
        cfg.max_headers = 4;
    }
    if (sel & 4)
        cfg.max_chunk_line = 8;
    fz_tr_t whole, cut;
    fz_feed(buf, size, size ? size : 1, size, &cfg, &whole);
    size_t step = 1 + (sel >> 3);
    fz_feed(buf, size, step, 1 + (sel >> 4), &cfg, &cut);
    if (cut.hash != whole.hash)
        abort();
    if (size <= 256) {
        fz_feed(buf, size, 1, 1, &cfg, &cut);
        if (cut.hash != whole.hash)
            abort();
    }
}

#endif
