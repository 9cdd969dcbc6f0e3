/* Unit tests: permessage-deflate negotiation and compression
 * (src/ws/pmd.c), through the decoder and encoder too. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "netframe/ws_codec.h"

static int negotiate(const nf_ws_pmd_config_t *cfg, const char *offer, nf_ws_pmd_params_t *a, char *resp)
{
    int n = nf_ws_pmd_negotiate(cfg, offer, strlen(offer), a, resp, 256);
    if (n >= 0)
        resp[n] = 0;
    return n;
}

#define EXPECT_RESP(cfg, offer, want)                                                                                  \
    do {                                                                                                               \
        char resp_[257];                                                                                               \
        nf_ws_pmd_params_t a_;                                                                                         \
        int n_ = negotiate(cfg, offer, &a_, resp_);                                                                    \
        if (n_ <= 0)                                                                                                   \
            fail_msg("offer '%s' declined (%d)", offer, n_);                                                           \
        if (strcmp(resp_, want) != 0)                                                                                  \
            fail_msg("offer '%s': '%s' != '%s'", offer, resp_, want);                                                  \
    } while (0)

#define EXPECT_DECLINED(cfg, offer)                                                                                    \
    do {                                                                                                               \
        char resp_[257];                                                                                               \
        nf_ws_pmd_params_t a_;                                                                                         \
        if (negotiate(cfg, offer, &a_, resp_) != 0)                                                                    \
            fail_msg("offer '%s' accepted: '%s'", offer, resp_);                                                       \
    } while (0)

static void test_server_negotiation(void **state)
{
    (void)state;
    nf_ws_pmd_params_t a;
    char resp[257];
    assert_int_equal(negotiate(NULL, "permessage-deflate", &a, resp), 18);
    assert_string_equal(resp, "permessage-deflate");
    assert_int_equal(a.server_max_window_bits, 15);
    assert_int_equal(a.client_max_window_bits, 15);
    assert_int_equal(a.server_no_context_takeover, 0);
    assert_int_equal(a.client_no_context_takeover, 0);

    EXPECT_RESP(NULL, "permessage-deflate; client_max_window_bits", "permessage-deflate");
    EXPECT_RESP(NULL, "permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=12");
    EXPECT_RESP(NULL, "permessage-deflate; client_max_window_bits=8", "permessage-deflate; client_max_window_bits=8");
    EXPECT_RESP(NULL, "permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10");
    EXPECT_RESP(NULL, "permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15");
    EXPECT_RESP(NULL, "permessage-deflate;server_no_context_takeover;client_no_context_takeover",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    EXPECT_RESP(NULL, "  permessage-deflate ;  server_max_window_bits = \"11\" ",
                "permessage-deflate; server_max_window_bits=11");
    EXPECT_RESP(NULL, "Permessage-Deflate; SERVER_NO_CONTEXT_TAKEOVER",
                "permessage-deflate; server_no_context_takeover");
    /* other extensions are skipped, the first valid offer wins */
    EXPECT_RESP(NULL, "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9",
                "permessage-deflate; client_max_window_bits=9");
    EXPECT_RESP(NULL, "permessage-deflate; foo, permessage-deflate; server_max_window_bits=9",
                "permessage-deflate; server_max_window_bits=9");
    EXPECT_RESP(NULL, "permessage-deflate; server_max_window_bits=7, permessage-deflate", "permessage-deflate");

    /* server configuration */
    nf_ws_pmd_config_t c = {.server_no_context_takeover = 1,
                            .client_no_context_takeover = 1,
                            .server_max_window_bits = 12,
                            .client_max_window_bits = 10};
    EXPECT_RESP(&c, "permessage-deflate",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=12");
    EXPECT_RESP(&c, "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=12; client_max_window_bits=10");
    EXPECT_RESP(&c, "permessage-deflate; client_max_window_bits=9; server_max_window_bits=14",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=12; client_max_window_bits=9");
    EXPECT_RESP(&c, "permessage-deflate; server_max_window_bits=10",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=10");
    /* window bits 8 in the configuration become 9 (zlib cannot do 8) */
    nf_ws_pmd_config_t c8 = {.server_max_window_bits = 8, .client_max_window_bits = 8};
    EXPECT_RESP(&c8, "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9");
    EXPECT_RESP(&c8, "permessage-deflate; client_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=8");
    /* an offer limiting the server to 8 is answered with 8 ... */
    assert_true(negotiate(NULL, "permessage-deflate; server_max_window_bits=8", &a, resp) > 0);
    assert_string_equal(resp, "permessage-deflate; server_max_window_bits=8");
    assert_int_equal(a.server_max_window_bits, 8);
    /* ... and the server then never compresses (RSV1 stays clear) */
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
    assert_non_null(p);
    assert_false(nf_ws_pmd_should_compress(p, 100000));
    nf_ws_pmd_free(p);

    /* invalid offers are declined */
    EXPECT_DECLINED(NULL, "");
    EXPECT_DECLINED(NULL, "x-webkit-deflate-frame");
    EXPECT_DECLINED(NULL, "permessage-deflate; foo");
    EXPECT_DECLINED(NULL, "permessage-deflate; foo=1");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_no_context_takeover; server_no_context_takeover");
    EXPECT_DECLINED(NULL, "permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10");
    EXPECT_DECLINED(NULL, "permessage-deflate; client_max_window_bits; client_max_window_bits=10");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=7");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=16");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=08");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=1a");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=100");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=\"\"");
    EXPECT_DECLINED(NULL, "permessage-deflate; client_max_window_bits=7");
    EXPECT_DECLINED(NULL, "permessage-deflate; client_max_window_bits=0");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_no_context_takeover=1");
    EXPECT_DECLINED(NULL, "permessage-deflate; client_no_context_takeover=\"\"");
    EXPECT_DECLINED(NULL, "permessage-deflate; a; b; c; d; e; f; g; h; i");
    /* broken syntax: nothing accepted */
    EXPECT_DECLINED(NULL, "permessage-deflate;");
    EXPECT_DECLINED(NULL, "permessage-deflate; =1");
    EXPECT_DECLINED(NULL, "permessage-deflate; server_max_window_bits=\"10");
    EXPECT_DECLINED(NULL, "permessage-deflate server_no_context_takeover");
    EXPECT_DECLINED(NULL, "; permessage-deflate");
    /* response buffer too small */
    assert_int_equal(nf_ws_pmd_negotiate(NULL, "permessage-deflate", 18, &a, resp, 17), -ENOBUFS);
}

static int accept_resp(const nf_ws_pmd_config_t *cfg, const char *r, nf_ws_pmd_params_t *a)
{
    return nf_ws_pmd_accept(cfg, r, strlen(r), a);
}

static void test_client_negotiation(void **state)
{
    (void)state;
    char out[256];
    int n = nf_ws_pmd_offer(NULL, out, sizeof out);
    assert_int_equal(n, (int)strlen("permessage-deflate; client_max_window_bits"));
    assert_memory_equal(out, "permessage-deflate; client_max_window_bits", (size_t)n);
    nf_ws_pmd_config_t c = {.server_no_context_takeover = 1,
                            .client_no_context_takeover = 1,
                            .server_max_window_bits = 8,
                            .client_max_window_bits = 11};
    n = nf_ws_pmd_offer(&c, out, sizeof out);
    out[n] = 0;
    assert_string_equal(out, "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=9; "
                             "client_max_window_bits=11");
    assert_int_equal(nf_ws_pmd_offer(&c, out, 10), -ENOBUFS);
    /* our offer, read by our server */
    nf_ws_pmd_params_t a;
    char resp[257];
    assert_true(negotiate(NULL, out, &a, resp) > 0);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover; "
                              "client_no_context_takeover; server_max_window_bits=9; "
                              "client_max_window_bits=11");
    nf_ws_pmd_params_t b;
    assert_int_equal(accept_resp(&c, resp, &b), 1);
    assert_memory_equal(&a, &b, sizeof a);

    /* default offer */
    assert_int_equal(accept_resp(NULL, "", &a), 0);
    assert_int_equal(accept_resp(NULL, "  ", &a), 0);
    assert_int_equal(accept_resp(NULL, "permessage-deflate", &a), 1);
    assert_int_equal(a.server_max_window_bits, 15);
    assert_int_equal(a.client_max_window_bits, 15);
    assert_int_equal(accept_resp(NULL, "permessage-deflate; server_no_context_takeover", &a), 1);
    assert_int_equal(a.server_no_context_takeover, 1);
    assert_int_equal(accept_resp(NULL, "permessage-deflate; client_no_context_takeover", &a), 1);
    assert_int_equal(a.client_no_context_takeover, 1);
    assert_int_equal(accept_resp(NULL, "permessage-deflate; client_max_window_bits=10", &a), 1);
    assert_int_equal(a.client_max_window_bits, 10);
    assert_int_equal(accept_resp(NULL, "permessage-deflate; server_max_window_bits=12", &a), 1);
    assert_int_equal(a.server_max_window_bits, 12);
    /* the server imposes 8 on our compressor: accepted, we send uncompressed */
    assert_int_equal(accept_resp(NULL, "permessage-deflate; client_max_window_bits=8", &a), 1);
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
    assert_false(nf_ws_pmd_should_compress(p, 1000));
    nf_ws_pmd_free(p);
    /* invalid responses fail the connection */
    static const char *bad[] = {
        "x-foo",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate, x-foo",
        "permessage-deflate; foo",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover=x",
        "permessage-deflate;",
        "permessage-deflate; client_max_window_bits=7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (accept_resp(NULL, bad[i], &a) != NF_EWS_EXTENSION)
            fail_msg("response '%s' accepted", bad[i]);
    /* what we asked for must be granted */
    nf_ws_pmd_config_t want = {.server_no_context_takeover = 1};
    assert_int_equal(accept_resp(&want, "permessage-deflate", &a), NF_EWS_EXTENSION);
    assert_int_equal(accept_resp(&want, "permessage-deflate; server_no_context_takeover", &a), 1);
    nf_ws_pmd_config_t sw = {.server_max_window_bits = 10};
    assert_int_equal(accept_resp(&sw, "permessage-deflate", &a), NF_EWS_EXTENSION);
    assert_int_equal(accept_resp(&sw, "permessage-deflate; server_max_window_bits=11", &a), NF_EWS_EXTENSION);
    assert_int_equal(accept_resp(&sw, "permessage-deflate; server_max_window_bits=10", &a), 1);
    assert_int_equal(accept_resp(&sw, "permessage-deflate; server_max_window_bits=9", &a), 1);
    assert_int_equal(a.server_max_window_bits, 9);
    nf_ws_pmd_config_t cw = {.client_max_window_bits = 10};
    assert_int_equal(accept_resp(&cw, "permessage-deflate; client_max_window_bits=11", &a), NF_EWS_EXTENSION);
    assert_int_equal(accept_resp(&cw, "permessage-deflate", &a), 1);
    assert_int_equal(a.client_max_window_bits, 10);
}

/* ---- round trips through encoder and decoder --------------------------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    unsigned op;
    int msgs;
} sink_t;

static int on_msg(nf_ws_decoder_t *d, unsigned op, const uint8_t *p, size_t n)
{
    sink_t *s = d->data;
    if (n > s->cap) {
        s->cap = n;
        s->data = realloc(s->data, n);
    }
    if (n)
        memcpy(s->data, p, n);
    s->len = n;
    s->op = op;
    s->msgs++;
    return 0;
}

static int on_begin(nf_ws_decoder_t *d, unsigned op, int compressed)
{
    sink_t *s = d->data;
    s->len = 0;
    s->op = op | (compressed ? 0x100 : 0);
    return 0;
}

static int on_data(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    sink_t *s = d->data;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->data = realloc(s->data, s->cap);
    }
    if (n)
        memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

static int on_end(nf_ws_decoder_t *d)
{
    ((sink_t *)d->data)->msgs++;
    return 0;
}

static const nf_ws_decoder_cbs_t whole_cbs = {.on_message = on_msg};
static const nf_ws_decoder_cbs_t stream_cbs = {
    .on_message_begin = on_begin, .on_data = on_data, .on_message_end = on_end};

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    /* compressible but not trivial: words from a small vocabulary */
    static const char *words[] = {"alpha ",
                                  "beta ",
                                  "gamma ",
                                  "delta ",
                                  "netframe ",
                                  "websocket ",
                                  "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 "};
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 7];
        size_t wl = strlen(w);
        if (wl > n - i) {
            memset(p + i, 'z', n - i);
            break;
        }
        memcpy(p + i, w, wl);
        i += wl;
    }
}

/* Sends `count` messages from one side to the other and checks them. */
static void transfer(nf_ws_pmd_t *tx, int tx_role, nf_ws_pmd_t *rx, size_t frag, const size_t *lens, size_t count,
                     int whole, size_t step)
{
    nf_ws_encoder_t e;
    nf_ws_encoder_config_t ec = {.role = tx_role, .fragment_size = frag, .pmd = tx};
    assert_int_equal(nf_ws_encoder_init(&e, &ec), 0);
    nf_ws_decoder_t d;
    sink_t s = {0};
    nf_ws_decoder_config_t dc = {
        .role = tx_role == NF_WS_CLIENT ? NF_WS_SERVER : NF_WS_CLIENT, .pmd = rx, .reject_nonminimal = 1};
    d.data = &s;
    assert_int_equal(nf_ws_decoder_init(&d, &dc, whole ? &whole_cbs : &stream_cbs), 0);
    for (size_t m = 0; m < count; m++) {
        size_t len = lens[m];
        uint8_t *msg = malloc(len + 1);
        fill(msg, len, (uint32_t)(m * 31 + len));
        size_t need, wrote;
        assert_int_equal(nf_ws_encode_prepare(&e, NF_WS_OP_TEXT, msg, len, &need), 0);
        uint8_t *out = malloc(need + 1);
        assert_int_equal(nf_ws_encode_write(&e, out, need, &wrote), 0);
        /* RSV1 exactly on the first frame of compressed messages */
        int compressed = tx && nf_ws_pmd_should_compress(tx, len);
        assert_int_equal((out[0] & NF_WS_RSV1) != 0, compressed);
        size_t pos = 0;
        while (pos < wrote) {
            size_t n = step && step < wrote - pos ? step : wrote - pos;
            int rc = nf_ws_decoder_feed(&d, out + pos, n);
            if (rc)
                fail_msg("decode: %d (%s)", rc, nf_ws_decoder_reason(&d));
            pos += n;
        }
        assert_int_equal(s.msgs, (int)m + 1);
        assert_int_equal(s.len, len);
        if (len)
            assert_memory_equal(s.data, msg, len);
        free(out);
        free(msg);
    }
    nf_ws_decoder_free(&d);
    free(s.data);
}

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 10, 32, 100, 5000, 100, 70000, 100, 300000, 33};
    static const int bits[] = {8, 9, 12, 15};
    for (int snct = 0; snct < 2; snct++)
        for (int cnct = 0; cnct < 2; cnct++)
            for (size_t sb = 0; sb < 4; sb++)
                for (size_t cb = 0; cb < 4; cb++) {
                    nf_ws_pmd_params_t a = {snct, cnct, bits[sb], bits[cb]};
                    nf_ws_pmd_config_t lc = {.level = 1 + (int)((sb + cb) % 9),
                                             .mem_level = 1 + (int)((sb * 4 + cb) % 9)};
                    nf_ws_pmd_t *srv = nf_ws_pmd_new(NF_WS_SERVER, &a, &lc);
                    nf_ws_pmd_t *cli = nf_ws_pmd_new(NF_WS_CLIENT, &a, &lc);
                    assert_non_null(srv);
                    assert_non_null(cli);
                    int whole = (int)((sb + cb + (size_t)snct) & 1);
                    size_t frag = (cb & 1) ? 1000 : 0;
                    size_t step = (sb == 3 && cb == 3) ? 1 : 0;
                    size_t nmsg = step ? 6 : sizeof lens / sizeof lens[0];
                    transfer(srv, NF_WS_SERVER, cli, frag, lens, nmsg, whole, step);
                    transfer(cli, NF_WS_CLIENT, srv, frag, lens, nmsg, !whole, step);
                    nf_ws_pmd_free(srv);
                    nf_ws_pmd_free(cli);
                }
}

/* With context takeover a repeated message compresses to almost nothing;
 * without it, it compresses to the same size every time. */
static void test_context_takeover(void **state)
{
    (void)state;
    uint8_t msg[2000];
    uint32_t r = 1;
    for (size_t i = 0; i < sizeof msg; i++) {
        r = r * 1103515245u + 12345u;
        msg[i] = (uint8_t)('a' + (r >> 16) % 26);
    }
    for (int nct = 0; nct < 2; nct++) {
        nf_ws_pmd_params_t a = {nct, nct, 15, 15};
        nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
        const uint8_t *out;
        size_t n1, n2, n3;
        assert_int_equal(nf_ws_pmd_compress(p, msg, sizeof msg, &out, &n1), 0);
        assert_int_equal(nf_ws_pmd_compress(p, msg, sizeof msg, &out, &n2), 0);
        assert_int_equal(nf_ws_pmd_compress(p, msg, sizeof msg, &out, &n3), 0);
        if (nct) {
            assert_int_equal(n1, n2);
            assert_int_equal(n2, n3);
        } else {
            assert_true(n2 < n1 / 10);
            assert_true(n3 < n1 / 10);
        }
        nf_ws_pmd_free(p);
    }
    /* an empty message compresses to the single 0x00 byte (RFC 7692 7.2.3.6) */
    nf_ws_pmd_params_t a = {0, 0, 15, 15};
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
    const uint8_t *out;
    size_t n;
    assert_int_equal(nf_ws_pmd_compress(p, "", 0, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0);
    /* RFC 7692 7.2.3.1: "Hello" */
    nf_ws_pmd_free(p);
    a.client_no_context_takeover = 1;
    p = nf_ws_pmd_new(NF_WS_CLIENT, &a, &(nf_ws_pmd_config_t){.level = 6});
    assert_int_equal(nf_ws_pmd_compress(p, "Hello", 5, &out, &n), 0);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    nf_ws_pmd_free(p);
}

/* Raw deflate of `in` as a peer would send it (sync flush, tail removed);
 * final=1 ends the stream with a BFINAL block instead. */
static uint8_t *peer_deflate(const void *in, size_t len, int bits, int final, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -bits, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, final ? Z_FINISH : Z_SYNC_FLUSH);
    assert_true(rc == Z_OK || rc == Z_STREAM_END);
    size_t n = cap - z.avail_out;
    if (!final) {
        assert_memory_equal(out + n - 4, "\x00\x00\xff\xff", 4);
        n -= 4;
    }
    deflateEnd(&z);
    *out_len = n;
    return out;
}

typedef struct {
    uint64_t total;
    size_t max_chunk;
} count_t;

static int count_sink(void *arg, const uint8_t *p, size_t n)
{
    (void)p;
    count_t *c = arg;
    c->total += n;
    if (n > c->max_chunk)
        c->max_chunk = n;
    return 0;
}

static void test_bomb(void **state)
{
    (void)state;
    /* 50 MB of zeros deflate to ~50 KB */
    size_t big = 50u * 1024 * 1024;
    uint8_t *zeros = calloc(1, big);
    size_t clen;
    uint8_t *bomb = peer_deflate(zeros, big, 15, 0, &clen);
    free(zeros);
    assert_true(clen < 100000);
    nf_ws_pmd_params_t a = {0, 0, 15, 15};
    /* direct: stops at the limit, never hands out more, chunks bounded */
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
    count_t c = {0};
    assert_int_equal(nf_ws_pmd_inflate(p, bomb, clen, 1, 1u << 20, count_sink, &c), NF_EWS_TOOBIG);
    assert_true(c.total <= (1u << 20));
    assert_true(c.max_chunk <= 16384);
    nf_ws_pmd_free(p);
    /* through the decoder, one frame, whole and streaming: 1009 */
    for (int whole = 0; whole < 2; whole++) {
        p = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
        nf_ws_decoder_t d;
        sink_t s = {0};
        d.data = &s;
        nf_ws_decoder_config_t dc = {.role = NF_WS_CLIENT, .pmd = p, .max_message = 1u << 20};
        nf_ws_decoder_init(&d, &dc, whole ? &whole_cbs : &stream_cbs);
        uint8_t *fr = malloc(clen + 14);
        int n = nf_ws_write_frame(fr, clen + 14, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_BINARY, bomb, clen, NULL);
        assert_int_equal(nf_ws_decoder_feed(&d, fr, (size_t)n), NF_EWS_TOOBIG);
        assert_int_equal(nf_ws_decoder_close_code(&d), 1009);
        assert_true(s.len <= (1u << 20));
        assert_int_equal(s.msgs, 0);
        free(fr);
        free(s.data);
        nf_ws_decoder_free(&d);
        nf_ws_pmd_free(p);
    }
    free(bomb);
    /* a message exactly at the limit passes, one byte more does not */
    uint8_t *m = calloc(1, 4097);
    for (int over = 0; over < 2; over++) {
        uint8_t *cm = peer_deflate(m, 4096 + (size_t)over, 15, 0, &clen);
        p = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
        c = (count_t){0};
        assert_int_equal(nf_ws_pmd_inflate(p, cm, clen, 1, 4096, count_sink, &c), over ? NF_EWS_TOOBIG : 0);
        nf_ws_pmd_free(p);
        free(cm);
    }
    free(m);
}

static void test_peer_streams(void **state)
{
    (void)state;
    nf_ws_pmd_params_t a = {0, 0, 15, 8};
    const char *text = "Hello, Hello, Hello, Hello! permessage-deflate";
    size_t tl = strlen(text), clen;
    for (int final = 0; final < 2; final++) {
        /* a peer that ends its stream with BFINAL, or uses window 9 where 8
         * was agreed (what zlib peers do), is understood */
        nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
        for (int rep = 0; rep < 3; rep++) {
            uint8_t *cm = peer_deflate(text, tl, 9, final, &clen);
            nf_ws_decoder_t d;
            sink_t s = {0};
            d.data = &s;
            nf_ws_decoder_config_t dc = {.role = NF_WS_SERVER, .pmd = p};
            nf_ws_decoder_init(&d, &dc, &whole_cbs);
            uint8_t fr[256];
            const uint8_t key[4] = {1, 2, 3, 4};
            /* fragmented: RSV1 on the first frame only */
            size_t half = clen / 2;
            int n1 = nf_ws_write_frame(fr, sizeof fr, NF_WS_RSV1, NF_WS_OP_TEXT, cm, half, key);
            int n2 = nf_ws_write_frame(fr + n1, sizeof fr - (size_t)n1, NF_WS_FIN, NF_WS_OP_CONT, cm + half,
                                       clen - half, key);
            assert_int_equal(nf_ws_decoder_feed(&d, fr, (size_t)(n1 + n2)), 0);
            assert_int_equal(s.msgs, 1);
            assert_int_equal(s.len, tl);
            assert_memory_equal(s.data, text, tl);
            free(s.data);
            nf_ws_decoder_free(&d);
            free(cm);
            if (!final)
                break; /* a new peer stream per message only makes sense with BFINAL */
        }
        nf_ws_pmd_free(p);
    }
}

static void test_rsv1_errors(void **state)
{
    (void)state;
    nf_ws_pmd_params_t a = {0, 0, 15, 15};
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
    static const struct {
        const char *b;
        size_t n;
        int want;
    } cases[] = {
        {"\x41\x01\xf2\xc0\x01\x48", 6, NF_EWS_PROTOCOL}, /* RSV1 on continuation */
        {"\xc9\x00", 2, NF_EWS_PROTOCOL},                 /* RSV1 on ping */
        {"\xc8\x00", 2, NF_EWS_PROTOCOL},                 /* RSV1 on close */
        {"\xa2\x00", 2, NF_EWS_PROTOCOL},                 /* RSV2 */
        {"\xc2\x03\xff\xff\xff", 5, NF_EWS_INFLATE},      /* corrupt deflate data */
        {"\xc1\x02\xc0\xaf", 4, NF_EWS_INFLATE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nf_ws_pmd_t *q = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
        nf_ws_decoder_t d;
        sink_t s = {0};
        d.data = &s;
        nf_ws_decoder_config_t dc = {.role = NF_WS_CLIENT, .pmd = q};
        nf_ws_decoder_init(&d, &dc, &stream_cbs);
        uint8_t buf[16];
        memcpy(buf, cases[i].b, cases[i].n);
        int rc = nf_ws_decoder_feed(&d, buf, cases[i].n);
        if (rc != cases[i].want)
            fail_msg("case %zu: %d", i, rc);
        if (rc == NF_EWS_INFLATE)
            assert_int_equal(nf_ws_decoder_close_code(&d), 1007);
        free(s.data);
        nf_ws_decoder_free(&d);
        nf_ws_pmd_free(q);
    }
    /* compressed text that inflates to invalid UTF-8: 1007 */
    size_t clen;
    uint8_t *cm = peer_deflate("ok\xc0\xaf", 4, 15, 0, &clen);
    nf_ws_decoder_t d;
    sink_t s = {0};
    d.data = &s;
    nf_ws_decoder_config_t dc = {.role = NF_WS_CLIENT, .pmd = p};
    nf_ws_decoder_init(&d, &dc, &whole_cbs);
    uint8_t fr[64];
    int n = nf_ws_write_frame(fr, sizeof fr, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_TEXT, cm, clen, NULL);
    assert_int_equal(nf_ws_decoder_feed(&d, fr, (size_t)n), NF_EWS_UTF8);
    free(cm);
    nf_ws_decoder_free(&d);
    nf_ws_pmd_free(p);
    /* nf_ws_pmd_new argument checks */
    nf_ws_pmd_params_t bad = {0, 0, 7, 15};
    assert_null(nf_ws_pmd_new(NF_WS_SERVER, &bad, NULL));
    assert_null(nf_ws_pmd_new(5, &a, NULL));
    nf_ws_pmd_free(NULL);
}

/* Empty compressed messages: an empty payload with RSV1, and the single 0x00
 * byte our compressor makes of an empty message; the stream goes on. */
static void test_empty_compressed(void **state)
{
    (void)state;
    nf_ws_pmd_params_t a = {0, 0, 15, 15};
    nf_ws_pmd_t *tx = nf_ws_pmd_new(NF_WS_CLIENT, &a, NULL);
    nf_ws_pmd_t *rx = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
    const uint8_t key[4] = {5, 6, 7, 8};
    uint8_t buf[512];
    size_t pos = 0;
    const uint8_t *c;
    size_t cl;
    for (int i = 0; i < 3; i++) {
        /* "Hello", then an empty payload, then compress("") = 00 */
        assert_int_equal(nf_ws_pmd_compress(tx, "Hello", 5, &c, &cl), 0);
        pos +=
            (size_t)nf_ws_write_frame(buf + pos, sizeof buf - pos, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_TEXT, c, cl, key);
        pos +=
            (size_t)nf_ws_write_frame(buf + pos, sizeof buf - pos, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_TEXT, "", 0, key);
        assert_int_equal(nf_ws_pmd_compress(tx, "", 0, &c, &cl), 0);
        pos +=
            (size_t)nf_ws_write_frame(buf + pos, sizeof buf - pos, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_BINARY, c, cl, key);
    }
    for (int whole = 0; whole < 2; whole++) {
        nf_ws_decoder_t d;
        sink_t s = {0};
        d.data = &s;
        nf_ws_decoder_config_t dc = {.role = NF_WS_SERVER, .pmd = rx};
        nf_ws_decoder_init(&d, &dc, whole ? &whole_cbs : &stream_cbs);
        uint8_t copy[512];
        memcpy(copy, buf, pos);
        /* message by message, checking each */
        size_t off = 0;
        for (int m = 0; m < 9; m++) {
            nf_ws_frame_header_t h;
            int hl = nf_ws_parse_header(copy + off, pos - off, &h);
            assert_true(hl > 0);
            size_t fl = (size_t)hl + (size_t)h.len;
            assert_int_equal(nf_ws_decoder_feed(&d, copy + off, fl), 0);
            off += fl;
            assert_int_equal(s.msgs, m + 1);
            assert_int_equal(s.len, m % 3 == 0 ? 5 : 0);
        }
        free(s.data);
        nf_ws_decoder_free(&d);
        if (!whole) {
            /* the inflater context carries over: a fresh one for round 2 */
            nf_ws_pmd_free(rx);
            rx = nf_ws_pmd_new(NF_WS_SERVER, &a, NULL);
        }
    }
    nf_ws_pmd_free(tx);
    nf_ws_pmd_free(rx);
}

static void test_threshold(void **state)
{
    (void)state;
    nf_ws_pmd_params_t a = {0, 0, 15, 15};
    nf_ws_pmd_config_t c = {.threshold = 100};
    nf_ws_pmd_t *p = nf_ws_pmd_new(NF_WS_SERVER, &a, &c);
    assert_false(nf_ws_pmd_should_compress(p, 99));
    assert_true(nf_ws_pmd_should_compress(p, 100));
    nf_ws_encoder_t e;
    nf_ws_encoder_config_t ec = {.role = NF_WS_SERVER, .pmd = p};
    nf_ws_encoder_init(&e, &ec);
    uint8_t msg[200], out[300];
    memset(msg, 'q', sizeof msg);
    size_t n;
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_BINARY, msg, 99, out, sizeof out, &n), 0);
    assert_int_equal(out[0], 0x82); /* no RSV1 */
    assert_int_equal(n, 2 + 99);
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_BINARY, msg, 200, out, sizeof out, &n), 0);
    assert_int_equal(out[0], 0xc2);
    assert_true(n < 20);
    /* control frames are never compressed */
    assert_int_equal(nf_ws_encode(&e, NF_WS_OP_PING, msg, 120, out, sizeof out, &n), 0);
    assert_int_equal(out[0], 0x89);
    nf_ws_pmd_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_negotiation),
        cmocka_unit_test(test_client_negotiation),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_context_takeover),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_peer_streams),
        cmocka_unit_test(test_rsv1_errors),
        cmocka_unit_test(test_empty_compressed),
        cmocka_unit_test(test_threshold),
    };
    return cmocka_run_group_tests_name("ws_pmd", tests, NULL, NULL);
}
