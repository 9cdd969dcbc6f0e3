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

/* ---- BFINAL: messages that end their deflate stream (RFC 7692 7.2.3.4) -- */

/* All messages decoded, one after the other, and where each ended. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    size_t ends[16];
    int msgs;
} log_t;

static void log_add(log_t *l, const uint8_t *p, size_t n)
{
    if (l->len + n > l->cap) {
        l->cap = (l->len + n) * 2 + 64;
        l->data = realloc(l->data, l->cap);
    }
    if (n)
        memcpy(l->data + l->len, p, n);
    l->len += n;
}

static int log_msg(nf_ws_decoder_t *d, unsigned op, const uint8_t *p, size_t n)
{
    (void)op;
    log_t *l = d->data;
    log_add(l, p, n);
    l->ends[l->msgs++ & 15] = l->len;
    return 0;
}

static int log_begin(nf_ws_decoder_t *d, unsigned op, int compressed)
{
    (void)d;
    (void)op;
    (void)compressed;
    return 0;
}

static int log_data(nf_ws_decoder_t *d, const uint8_t *p, size_t n)
{
    log_add(d->data, p, n);
    return 0;
}

static int log_end(nf_ws_decoder_t *d)
{
    log_t *l = d->data;
    l->ends[l->msgs++ & 15] = l->len;
    return 0;
}

static const nf_ws_decoder_cbs_t log_whole_cbs = {.on_message = log_msg};
static const nf_ws_decoder_cbs_t log_stream_cbs = {
    .on_message_begin = log_begin, .on_data = log_data, .on_message_end = log_end};

/* What a peer's deflate(Z_FINISH) makes of `in` (raw deflate, windowBits
 * -15): a stream ending with a BFINAL block, padded to a whole byte. With
 * dict, the compressor starts from the last 32 KiB of dict[0..dlen) (a peer
 * that keeps its window across messages). Room for one more byte. */
static uint8_t *peer_final(const void *in, size_t len, const uint8_t *dict, size_t dlen, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    if (dlen > 32768) {
        dict += dlen - 32768;
        dlen = 32768;
    }
    if (dlen)
        assert_int_equal(deflateSetDictionary(&z, dict, (uInt)dlen), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap + 1);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* Appends one message to wire[]: payload c[0..clen) in one frame, or two
 * cut at `split` (RSV1 on the first), masked when the receiver is a server. */
static size_t put_message(uint8_t *wire, size_t cap, int rx_role, unsigned op, const uint8_t *c, size_t clen,
                          size_t split)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t *mk = rx_role == NF_WS_SERVER ? key : NULL;
    int w;
    if (!split) {
        w = nf_ws_write_frame(wire, cap, NF_WS_FIN | NF_WS_RSV1, op, c, clen, mk);
        assert_true(w > 0);
        return (size_t)w;
    }
    w = nf_ws_write_frame(wire, cap, NF_WS_RSV1, op, c, split, mk);
    assert_true(w > 0);
    int w2 = nf_ws_write_frame(wire + w, cap - (size_t)w, NF_WS_FIN, NF_WS_OP_CONT, c + split, clen - split, mk);
    assert_true(w2 > 0);
    return (size_t)w + (size_t)w2;
}

/* Feeds wire[0..n) to a fresh decoder in two pieces cut at `cut`, or in
 * `step`-byte pieces when step is not 0. Returns the first error. */
static int feed_cut(nf_ws_pmd_t *p, int rx_role, int whole, const uint8_t *wire, size_t n, size_t cut, size_t step,
                    log_t *l, unsigned *close)
{
    uint8_t *copy = malloc(n ? n : 1); /* the decoder unmasks in place */
    memcpy(copy, wire, n);
    nf_ws_decoder_t d;
    d.data = l;
    nf_ws_decoder_config_t dc = {.role = rx_role, .pmd = p};
    assert_int_equal(nf_ws_decoder_init(&d, &dc, whole ? &log_whole_cbs : &log_stream_cbs), 0);
    int rc = 0;
    if (step) {
        for (size_t pos = 0; pos < n && !rc; pos += step)
            rc = nf_ws_decoder_feed(&d, copy + pos, step < n - pos ? step : n - pos);
    } else {
        rc = nf_ws_decoder_feed(&d, copy, cut);
        if (!rc)
            rc = nf_ws_decoder_feed(&d, copy + cut, n - cut);
    }
    *close = rc ? nf_ws_decoder_close_code(&d) : 0;
    nf_ws_decoder_free(&d);
    free(copy);
    return rc;
}

static nf_ws_pmd_t *bfinal_receiver(int rx_role, int takeover)
{
    /* the peer's no_context_takeover resets our inflater */
    nf_ws_pmd_params_t a = {.server_no_context_takeover = rx_role == NF_WS_CLIENT && !takeover,
                            .client_no_context_takeover = rx_role == NF_WS_SERVER && !takeover,
                            .server_max_window_bits = 15,
                            .client_max_window_bits = 15};
    nf_ws_pmd_t *p = nf_ws_pmd_new(rx_role, &a, NULL);
    assert_non_null(p);
    return p;
}

/* RFC 7692 7.2.3.4's example: "Hello" in a BFINAL block and a 0x00. */
static void test_bfinal_rfc_example(void **state)
{
    (void)state;
    static const uint8_t ex[] = {0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    for (int takeover = 0; takeover < 2; takeover++) {
        nf_ws_pmd_t *p = bfinal_receiver(NF_WS_CLIENT, takeover);
        uint8_t wire[64];
        /* three times: the next messages inflate too */
        for (int i = 0; i < 3; i++)
            memcpy(wire + i * sizeof ex, ex, sizeof ex);
        for (size_t cut = 0; cut <= 3 * sizeof ex; cut++) {
            log_t l = {0};
            unsigned close;
            assert_int_equal(feed_cut(p, NF_WS_CLIENT, 1, wire, 3 * sizeof ex, cut, 0, &l, &close), 0);
            assert_int_equal(l.msgs, 3);
            assert_int_equal(l.len, 15);
            assert_memory_equal(l.data, "HelloHelloHello", 15);
            free(l.data);
        }
        nf_ws_pmd_free(p);
    }
    /* zlib's Z_FINISH makes the same bytes */
    size_t n;
    uint8_t *c = peer_final("Hello", 5, NULL, 0, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(c, ex + 2, 7);
    free(c);
}

/* A peer that ends messages with a BFINAL block, with and without the
 * trailing 0x00, in both roles, with and without context takeover; among
 * them an ordinary sync-flushed message (a new peer stream), a fragmented
 * one, one whose 0x00 comes in a frame of its own and, with context
 * takeover, a BFINAL message whose stream refers back into the previous
 * BFINAL message (a peer that kept its window: the receiver must keep it
 * across the reset too). Whole and streaming, the wire cut
 * at every byte, and fed 1, 3 and 64 bytes at a time. */
static void test_bfinal(void **state)
{
    (void)state;
    enum { NMSG = 7 };
    const size_t lens[NMSG] = {5, 700, 3000, 300, 300, 300, 1};
    uint8_t *plain[NMSG];
    size_t total = 0;
    for (int m = 0; m < NMSG; m++) {
        plain[m] = malloc(lens[m]);
        fill(plain[m], lens[m], (uint32_t)m * 7u + 1u);
        total += lens[m];
    }
    memcpy(plain[0], "Hello", 5);
    memcpy(plain[5], plain[4], 300); /* the previous message again: refers back */
    uint8_t *all = malloc(total);
    for (size_t m = 0, pos = 0; m < NMSG; pos += lens[m], m++)
        memcpy(all + pos, plain[m], lens[m]);
    size_t wcap = total * 2 + 1024;
    uint8_t *wire = malloc(wcap);
    for (int rx_role = NF_WS_SERVER; rx_role <= NF_WS_CLIENT; rx_role++) {
        for (int takeover = 0; takeover < 2; takeover++) {
            for (int zero = 0; zero < 2; zero++) {
                size_t wlen = 0, before = 0;
                for (int m = 0; m < NMSG; before += lens[m], m++) {
                    size_t clen, split = 0;
                    uint8_t *c;
                    if (m == 3) {
                        c = peer_deflate(plain[m], lens[m], 15, 0, &clen); /* sync flush, a new stream */
                    } else {
                        int back = m == 5 && takeover;
                        c = peer_final(plain[m], lens[m], back ? all : NULL, back ? before : 0, &clen);
                        if (back)
                            assert_true(clen < 40); /* it did refer back */
                        if (zero)
                            c[clen++] = 0x00;
                        if (m == 2 && zero)
                            split = clen - 1; /* the 0x00 alone in the last frame */
                    }
                    if (m == 1)
                        split = clen / 2;
                    wlen += put_message(wire + wlen, wcap - wlen, rx_role, m == 0 ? NF_WS_OP_TEXT : NF_WS_OP_BINARY, c,
                                        clen, split);
                    free(c);
                }
                nf_ws_pmd_t *p = bfinal_receiver(rx_role, takeover);
                static const size_t steps[] = {1, 3, 64};
                for (int whole = 0; whole < 2; whole++) {
                    for (size_t cut = 0; cut <= wlen + 3; cut++) {
                        log_t l = {0};
                        unsigned close;
                        size_t step = cut > wlen ? steps[cut - wlen - 1] : 0;
                        int rc = feed_cut(p, rx_role, whole, wire, wlen, cut, step, &l, &close);
                        if (rc)
                            fail_msg("role %d takeover %d zero %d whole %d cut %zu step %zu: %d", rx_role, takeover,
                                     zero, whole, cut, step, rc);
                        assert_int_equal(l.msgs, NMSG);
                        assert_int_equal(l.len, total);
                        assert_memory_equal(l.data, all, total);
                        for (size_t m = 0, end = 0; m < NMSG; m++) {
                            end += lens[m];
                            assert_int_equal(l.ends[m], end);
                        }
                        free(l.data);
                    }
                }
                nf_ws_pmd_free(p);
            }
        }
    }
    free(wire);
    free(all);
    for (int m = 0; m < NMSG; m++)
        free(plain[m]);
}

/* A BFINAL message whose output is larger than the 16 KiB inflate chunk,
 * with its 0x00, then a normal message: whole, and cut every 97 bytes. */
static void test_bfinal_large(void **state)
{
    (void)state;
    size_t len = 100000, clen, c2len;
    uint8_t *msg = malloc(len);
    fill(msg, len, 99);
    uint8_t *c = peer_final(msg, len, NULL, 0, &clen);
    c[clen++] = 0x00;
    uint8_t *c2 = peer_deflate(msg, 1000, 15, 0, &c2len);
    size_t wcap = clen + c2len + 64;
    uint8_t *wire = malloc(wcap);
    for (int rx_role = NF_WS_SERVER; rx_role <= NF_WS_CLIENT; rx_role++) {
        size_t wlen = put_message(wire, wcap, rx_role, NF_WS_OP_BINARY, c, clen, 0);
        wlen += put_message(wire + wlen, wcap - wlen, rx_role, NF_WS_OP_BINARY, c2, c2len, 0);
        for (int takeover = 0; takeover < 2; takeover++) {
            nf_ws_pmd_t *p = bfinal_receiver(rx_role, takeover);
            for (size_t cut = 0; cut <= wlen; cut += 97) {
                log_t l = {0};
                unsigned close;
                assert_int_equal(feed_cut(p, rx_role, cut & 1, wire, wlen, cut, 0, &l, &close), 0);
                assert_int_equal(l.msgs, 2);
                assert_int_equal(l.len, len + 1000);
                assert_memory_equal(l.data, msg, len);
                assert_memory_equal(l.data + len, msg, 1000);
                free(l.data);
            }
            nf_ws_pmd_free(p);
        }
    }
    free(wire);
    free(c2);
    free(c);
    free(msg);
}

/* After the final block: anything but one 0x00 fails the connection with
 * 1007, wherever the bytes are cut and in whichever frame they come. */
static void test_bfinal_garbage(void **state)
{
    (void)state;
    size_t clen;
    uint8_t *hello = peer_final("Hello, Hello, Hello", 19, NULL, 0, &clen);
    static const struct {
        const char *after;
        size_t n;
        int own_frame; /* in a continuation frame of their own */
    } cases[] = {
        {"\x01", 1, 0},     {"\x00\x00", 2, 0}, {"\x00\x00\xff\xff", 4, 0},
        {"\x03\x00", 2, 0}, /* even a valid empty final block */
        {"xyz", 3, 0},      {"\x00\x01", 2, 1}, {"\x00\x00", 2, 1},
        {"\x80", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t c[64];
        memcpy(c, hello, clen);
        memcpy(c + clen, cases[i].after, cases[i].n);
        size_t n = clen + cases[i].n;
        for (int rx_role = NF_WS_SERVER; rx_role <= NF_WS_CLIENT; rx_role++) {
            uint8_t wire[128];
            size_t wlen = put_message(wire, sizeof wire, rx_role, NF_WS_OP_TEXT, c, n, cases[i].own_frame ? clen : 0);
            for (int takeover = 0; takeover < 2; takeover++) {
                nf_ws_pmd_t *p = bfinal_receiver(rx_role, takeover);
                for (size_t cut = 0; cut <= wlen; cut++) {
                    log_t l = {0};
                    unsigned close = 0;
                    int rc = feed_cut(p, rx_role, cut & 1, wire, wlen, cut, 0, &l, &close);
                    if (rc != NF_EWS_INFLATE || close != 1007)
                        fail_msg("case %zu role %d cut %zu: %d, close %u", i, rx_role, cut, rc, close);
                    assert_int_equal(l.msgs, 0);
                    free(l.data);
                }
                nf_ws_pmd_free(p);
            }
        }
    }
    free(hello);
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
        cmocka_unit_test(test_bfinal_rfc_example),
        cmocka_unit_test(test_bfinal),
        cmocka_unit_test(test_bfinal_large),
        cmocka_unit_test(test_bfinal_garbage),
    };
    return cmocka_run_group_tests_name("ws_pmd", tests, NULL, NULL);
}
