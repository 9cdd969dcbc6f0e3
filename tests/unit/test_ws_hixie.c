/* Unit tests: Hixie-76 (draft-hixie-thewebsocketprotocol-76), src/ws/hixie.c:
 * the key challenge with the draft's own worked example, and the framing
 * decoder (text frames split anywhere, discarded frame types, the closing
 * frame, limits, invalid UTF-8). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netframe/ws_codec.h"

static void test_draft_example(void **state)
{
    (void)state;
    /* draft-hixie-thewebsocketprotocol-76, section 1.3 / 5.2 */
    static const char k1[] = "18x 6]8vM;54 *(5:  {   U1]8  z [  8";
    static const char k2[] = "1_ tx7X d  <  nw  334J702) 7]o}` 0";
    uint32_t v;
    assert_int_equal(nf_ws_hixie76_key_value(k1, strlen(k1), &v), 0);
    assert_int_equal(v, 155712099u); /* 1868545188 / 12 */
    assert_int_equal(nf_ws_hixie76_key_value(k2, strlen(k2), &v), 0);
    assert_int_equal(v, 173347027u); /* 1733470270 / 10 */
    uint8_t out[16];
    assert_int_equal(nf_ws_hixie76_answer(k1, strlen(k1), k2, strlen(k2), (const uint8_t *)"Tm[K T2u", out), 0);
    assert_memory_equal(out, "fQJ,fN/4F4!~K~MH", 16);
}

static void test_bad_keys(void **state)
{
    (void)state;
    uint32_t v;
    assert_int_equal(nf_ws_hixie76_key_value("12345", 5, &v), -EINVAL);        /* no space */
    assert_int_equal(nf_ws_hixie76_key_value("1 2 3", 5, &v), -EINVAL);        /* 123 % 2 */
    assert_int_equal(nf_ws_hixie76_key_value("   ", 3, &v), -EINVAL);          /* no digit */
    assert_int_equal(nf_ws_hixie76_key_value("4294967296 ", 11, &v), -EINVAL); /* over 32 bits */
    assert_int_equal(nf_ws_hixie76_key_value("99999999999999999999 ", 21, &v), -EINVAL);
    assert_int_equal(nf_ws_hixie76_key_value("4294967295 ", 11, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(nf_ws_hixie76_key_value("1 2 ", 4, &v), 0);
    assert_int_equal(v, 6u);
    uint8_t out[16];
    assert_int_equal(nf_ws_hixie76_answer("1 2 ", 4, "12345", 5, (const uint8_t *)"12345678", out), -EINVAL);
}

/* ---- decoder ---------------------------------------------------------------- */

typedef struct got {
    char text[4][256];
    size_t len[4];
    int n, closed;
} got_t;

static int on_text(nf_ws_hixie_decoder_t *d, const uint8_t *p, size_t n)
{
    got_t *g = d->data;
    if (g->n < 4 && n < 256) {
        memcpy(g->text[g->n], p, n);
        g->len[g->n] = n;
    }
    g->n++;
    return 0;
}

static int on_close(nf_ws_hixie_decoder_t *d)
{
    got_t *g = d->data;
    g->closed++;
    return 0;
}

static const nf_ws_hixie_cbs_t cbs = {.on_text = on_text, .on_close = on_close};

/* Feeds stream[0..len) cut in pieces of `step` bytes. */
static int feed_steps(nf_ws_hixie_decoder_t *d, const uint8_t *stream, size_t len, size_t step)
{
    for (size_t off = 0; off < len; off += step) {
        size_t k = len - off < step ? len - off : step;
        uint8_t piece[256];
        memcpy(piece, stream + off, k);
        int rc = nf_ws_hixie_decoder_feed(d, piece, k);
        if (rc)
            return rc;
    }
    return 0;
}

static void test_frames_any_split(void **state)
{
    (void)state;
    /* "hello", an empty text frame, a length-prefixed frame (discarded: type
     * 0x80, length 130 = 0x81 0x02), a sentinel frame of type 0x05
     * (discarded), "é!", then the closing frame and trailing garbage */
    uint8_t s[512];
    size_t n = 0;
    memcpy(s + n, "\x00hello\xff\x00\xff", 9);
    n += 9;
    s[n++] = 0x80;
    s[n++] = 0x81;
    s[n++] = 0x02;
    memset(s + n, 0xff, 130);
    n += 130;
    memcpy(s + n, "\x05junk\xff", 6);
    n += 6;
    memcpy(s + n, "\x00\xc3\xa9!\xff", 5);
    n += 5;
    memcpy(s + n, "\xff\x00garbage", 9);
    n += 9;
    for (size_t step = 1; step <= n; step++) {
        got_t g;
        memset(&g, 0, sizeof g);
        nf_ws_hixie_decoder_t d = {.data = &g};
        nf_ws_hixie_decoder_init(&d, 1000, &cbs);
        assert_int_equal(feed_steps(&d, s, n, step), 0);
        assert_int_equal(g.n, 3);
        assert_int_equal(g.len[0], 5);
        assert_memory_equal(g.text[0], "hello", 5);
        assert_int_equal(g.len[1], 0);
        assert_int_equal(g.len[2], 3);
        assert_memory_equal(g.text[2], "\xc3\xa9!", 3);
        assert_int_equal(g.closed, 1);
        nf_ws_hixie_decoder_free(&d);
    }
}

static void test_limits_and_utf8(void **state)
{
    (void)state;
    got_t g;
    nf_ws_hixie_decoder_t d = {.data = &g};
    /* no 0xFF within the limit: fails at the limit, before buffering more */
    memset(&g, 0, sizeof g);
    nf_ws_hixie_decoder_init(&d, 10, &cbs);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d,
                                              (const uint8_t *)"\x00"
                                                               "0123456789",
                                              11),
                     0);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, (const uint8_t *)"a", 1), NF_EWS_TOOBIG);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, (const uint8_t *)"\xff", 1), NF_EWS_CLOSED);
    assert_int_equal(g.n, 0);
    nf_ws_hixie_decoder_free(&d);
    /* exactly the limit is fine */
    nf_ws_hixie_decoder_init(&d, 10, &cbs);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d,
                                              (const uint8_t *)"\x00"
                                                               "0123456789\xff",
                                              12),
                     0);
    assert_int_equal(g.n, 1);
    nf_ws_hixie_decoder_free(&d);
    /* a length prefix over the limit, and one that would overflow 64 bits */
    nf_ws_hixie_decoder_init(&d, 1000, &cbs);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, (const uint8_t *)"\x80\x88\x00", 3), NF_EWS_TOOBIG);
    nf_ws_hixie_decoder_free(&d);
    nf_ws_hixie_decoder_init(&d, UINT64_MAX, &cbs);
    uint8_t big[12] = {0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, big, sizeof big), NF_EWS_TOOBIG);
    nf_ws_hixie_decoder_free(&d);
    /* invalid UTF-8, split and whole */
    memset(&g, 0, sizeof g);
    nf_ws_hixie_decoder_init(&d, 1000, &cbs);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d,
                                              (const uint8_t *)"\x00"
                                                               "a\xc3",
                                              3),
                     0);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, (const uint8_t *)"(\xff", 2), NF_EWS_UTF8);
    nf_ws_hixie_decoder_free(&d);
    nf_ws_hixie_decoder_init(&d, 1000, &cbs);
    assert_int_equal(nf_ws_hixie_decoder_feed(&d, (const uint8_t *)"\x00\xed\xa0\x80\xff", 5), NF_EWS_UTF8);
    assert_int_equal(g.n, 0);
    nf_ws_hixie_decoder_free(&d);
}

static void test_write_text(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(nf_ws_hixie_frame_size(3), 5);
    assert_int_equal(nf_ws_hixie_write_text(out, "abc", 3), 5);
    assert_memory_equal(out,
                        "\x00"
                        "abc\xff",
                        5);
    assert_int_equal(nf_ws_hixie_write_text(out, NULL, 0), 2);
    assert_memory_equal(out, "\x00\xff", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft_example),    cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_frames_any_split), cmocka_unit_test(test_limits_and_utf8),
        cmocka_unit_test(test_write_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
