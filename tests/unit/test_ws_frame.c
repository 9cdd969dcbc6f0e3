/* Unit tests: WebSocket frame primitives (src/ws/frame.c). */
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

static void test_header_forms(void **state)
{
    (void)state;
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 65535, 65536, 70000, 0xffffffffull, 0x100000000ull, 0x7fffffffffffffffull};
    static const size_t sizes[] = {2, 2, 2, 4, 4, 4, 10, 10, 10, 10, 10};
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int m = 0; m < 2; m++) {
            uint8_t buf[14];
            size_t want = sizes[i] + (m ? 4 : 0);
            assert_int_equal(nf_ws_header_size(lens[i], m), want);
            int n =
                nf_ws_write_header(buf, sizeof buf, NF_WS_FIN | NF_WS_RSV1, NF_WS_OP_BINARY, lens[i], m ? key : NULL);
            assert_int_equal(n, (int)want);
            /* every prefix needs more */
            nf_ws_frame_header_t h;
            for (size_t k = 0; k < want; k++)
                assert_int_equal(nf_ws_parse_header(buf, k, &h), 0);
            assert_int_equal(nf_ws_parse_header(buf, want, &h), (int)want);
            assert_int_equal(h.fin, 1);
            assert_int_equal(h.rsv, NF_WS_RSV1);
            assert_int_equal(h.opcode, NF_WS_OP_BINARY);
            assert_int_equal(h.masked, m);
            assert_true(h.len == lens[i]);
            assert_int_equal(h.nonminimal, 0);
            if (m)
                assert_memory_equal(h.mask, key, 4);
            /* too small an output buffer */
            assert_int_equal(nf_ws_write_header(buf, want - 1, NF_WS_FIN, 1, lens[i], m ? key : NULL), -ENOBUFS);
        }
    }
    uint8_t buf[16];
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, 0, 16, 0, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, 0x01, 1, 0, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, 0, 1, 1ull << 63, NULL), -EINVAL);
    /* exact bytes of the three forms */
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, NF_WS_FIN, 1, 125, NULL), 2);
    assert_memory_equal(buf, "\x81\x7d", 2);
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, NF_WS_FIN, 2, 126, NULL), 4);
    assert_memory_equal(buf, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(nf_ws_write_header(buf, sizeof buf, 0, 0, 65536, NULL), 10);
    assert_memory_equal(buf, "\x00\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void test_header_nonminimal_and_msb(void **state)
{
    (void)state;
    nf_ws_frame_header_t h;
    /* 16-bit form for 5 bytes, 64-bit form for 200 and for 65535 */
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x81\x7e\x00\x05", 4, &h), 4);
    assert_int_equal(h.nonminimal, 1);
    assert_true(h.len == 5);
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x81\x7e\x00\x7e", 4, &h), 4);
    assert_int_equal(h.nonminimal, 0);
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x82\x7f\0\0\0\0\0\0\0\xc8", 10, &h), 10);
    assert_int_equal(h.nonminimal, 1);
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x82\x7f\0\0\0\0\0\0\xff\xff", 10, &h), 10);
    assert_int_equal(h.nonminimal, 1);
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x82\x7f\0\0\0\0\0\1\0\0", 10, &h), 10);
    assert_int_equal(h.nonminimal, 0);
    /* MSB of the 64-bit length set */
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x82\x7f\x80\0\0\0\0\0\0\0", 10, &h), NF_EWS_PROTOCOL);
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                                                         "abcd",
                                        14, &h),
                     NF_EWS_PROTOCOL);
    /* all RSV bits and opcodes are reported raw */
    assert_int_equal(nf_ws_parse_header((const uint8_t *)"\x7f\x00", 2, &h), 2);
    assert_int_equal(h.fin, 0);
    assert_int_equal(h.rsv, 0x70);
    assert_int_equal(h.opcode, 0xf);
}

static void naive_mask(uint8_t *p, size_t n, const uint8_t k[4], uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= k[(off + i) & 3];
}

static void test_mask(void **state)
{
    (void)state;
    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t *src = malloc(600), *a = malloc(600), *b = malloc(600);
    for (int i = 0; i < 600; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    /* every alignment, every key offset, many lengths */
    for (size_t align = 0; align < 16; align++)
        for (uint64_t off = 0; off < 8; off++)
            for (size_t len = 0; len < 300; len += (len < 80 ? 1 : 37)) {
                memcpy(a, src, 600);
                memcpy(b, src, 600);
                nf_ws_mask(a + align, len, key, off);
                naive_mask(b + align, len, key, off);
                assert_memory_equal(a, b, 600);
                /* copy variant, different src and dst alignments */
                memset(a, 0, 600);
                nf_ws_mask_copy(a + (align ^ 5), src + align, len, key, off);
                assert_memory_equal(a + (align ^ 5), b + align, len);
            }
    /* masking in pieces equals masking at once */
    memcpy(a, src, 600);
    memcpy(b, src, 600);
    nf_ws_mask(a, 600, key, 0);
    size_t pos = 0, step = 1;
    while (pos < 600) {
        size_t n = 600 - pos < step ? 600 - pos : step;
        nf_ws_mask(b + pos, n, key, pos);
        pos += n;
        step = step * 3 + 1;
    }
    assert_memory_equal(a, b, 600);
    /* masking twice restores */
    nf_ws_mask(a, 600, key, 0);
    assert_memory_equal(a, src, 600);
    free(src);
    free(a);
    free(b);
}

static void test_write_frame(void **state)
{
    (void)state;
    const uint8_t key[4] = {1, 2, 3, 4};
    size_t lens[] = {0, 5, 125, 126, 1000, 65535, 65536, 100000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        uint8_t *pl = malloc(len + 1), *out = malloc(len + 14);
        for (size_t k = 0; k < len; k++)
            pl[k] = (uint8_t)k;
        for (int m = 0; m < 2; m++) {
            int n = nf_ws_write_frame(out, len + 14, NF_WS_FIN, NF_WS_OP_BINARY, pl, len, m ? key : NULL);
            assert_int_equal(n, (int)(nf_ws_header_size(len, m) + len));
            nf_ws_frame_header_t h;
            int hl = nf_ws_parse_header(out, (size_t)n, &h);
            assert_true(hl > 0);
            assert_true(h.len == len);
            if (m)
                nf_ws_mask(out + hl, len, h.mask, 0);
            if (len)
                assert_memory_equal(out + hl, pl, len);
            assert_int_equal(nf_ws_write_frame(out, (size_t)n - 1, NF_WS_FIN, 2, pl, len, m ? key : NULL), -ENOBUFS);
        }
        free(pl);
        free(out);
    }
}

static int rfc_valid(unsigned c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 1012 && c <= 1014) || (c >= 3000 && c <= 4999);
}

static void test_close_codes(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 70000; c++)
        assert_int_equal(nf_ws_close_code_valid(c), rfc_valid(c));
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        unsigned code;
        const char *r;
        size_t rl;
        assert_int_equal(nf_ws_parse_close(p, 2, &code, &r, &rl), NF_EWS_PROTOCOL);
        uint8_t out[32];
        if (bad[i]) /* 0 is "no status" for the writer */
            assert_int_equal(nf_ws_write_close(out, sizeof out, bad[i], "", 0, NULL), -EINVAL);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t p[5] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i], 'b', 'y', 'e'};
        unsigned code;
        const char *r;
        size_t rl;
        assert_int_equal(nf_ws_parse_close(p, 5, &code, &r, &rl), 0);
        assert_int_equal(code, good[i]);
        assert_int_equal(rl, 3);
        assert_memory_equal(r, "bye", 3);
    }
    assert_int_equal(nf_ws_close_code_for(NF_EWS_PROTOCOL), 1002);
    assert_int_equal(nf_ws_close_code_for(NF_EWS_UTF8), 1007);
    assert_int_equal(nf_ws_close_code_for(NF_EWS_INFLATE), 1007);
    assert_int_equal(nf_ws_close_code_for(NF_EWS_POLICY), 1008);
    assert_int_equal(nf_ws_close_code_for(NF_EWS_TOOBIG), 1009);
    assert_int_equal(nf_ws_close_code_for(NF_EWS_EXTENSION), 1010);
    assert_int_equal(nf_ws_close_code_for(-ENOMEM), 1011);
    assert_int_equal(nf_ws_close_code_for(0), 0);
}

static void test_close_payload(void **state)
{
    (void)state;
    unsigned code;
    const char *r;
    size_t rl;
    assert_int_equal(nf_ws_parse_close(NULL, 0, &code, &r, &rl), 0);
    assert_int_equal(code, 1005);
    assert_int_equal(rl, 0);
    assert_int_equal(nf_ws_parse_close((const uint8_t *)"\x03", 1, &code, &r, &rl), NF_EWS_PROTOCOL);
    /* reason: valid multi-byte, invalid, truncated */
    assert_int_equal(nf_ws_parse_close((const uint8_t *)"\x03\xe8\xce\xba\xe1\xbd\xb9", 7, &code, &r, &rl), 0);
    assert_int_equal(nf_ws_parse_close((const uint8_t *)"\x03\xe8\xff", 3, &code, &r, &rl), NF_EWS_UTF8);
    assert_int_equal(nf_ws_parse_close((const uint8_t *)"\x03\xe8\xce", 3, &code, &r, &rl), NF_EWS_UTF8);
    assert_int_equal(nf_ws_parse_close((const uint8_t *)"\x03\xe8\xed\xa0\x80", 5, &code, &r, &rl), NF_EWS_UTF8);
    uint8_t big[126] = {0x03, 0xe8};
    memset(big + 2, 'a', 124);
    assert_int_equal(nf_ws_parse_close(big, 126, &code, &r, &rl), NF_EWS_PROTOCOL);
    assert_int_equal(nf_ws_parse_close(big, 125, &code, &r, &rl), 0);
    /* writer */
    uint8_t out[200];
    const uint8_t key[4] = {9, 8, 7, 6};
    int n = nf_ws_write_close(out, sizeof out, 1000, "ok", 2, NULL);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "\x88\x04\x03\xe8ok", 6);
    n = nf_ws_write_close(out, sizeof out, 0, NULL, 0, NULL);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x88\x00", 2);
    n = nf_ws_write_close(out, sizeof out, 4001, "masked", 6, key);
    assert_int_equal(n, 2 + 4 + 8);
    nf_ws_frame_header_t h;
    assert_int_equal(nf_ws_parse_header(out, (size_t)n, &h), 6);
    nf_ws_mask(out + 6, 8, h.mask, 0);
    assert_memory_equal(out + 6, "\x0f\xa1masked", 8);
    char reason[124];
    memset(reason, 'x', sizeof reason);
    assert_int_equal(nf_ws_write_close(out, sizeof out, 1000, reason, 123, NULL), 2 + 125);
    assert_int_equal(nf_ws_write_close(out, sizeof out, 1000, reason, 124, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_close(out, sizeof out, 1000, "\xc0\xaf", 2, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_close(out, sizeof out, 1005, "", 0, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_close(out, sizeof out, 0, "x", 1, NULL), -EINVAL);
    assert_int_equal(nf_ws_write_close(out, 5, 1000, "ok", 2, NULL), -ENOBUFS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_forms), cmocka_unit_test(test_header_nonminimal_and_msb),
        cmocka_unit_test(test_mask),         cmocka_unit_test(test_write_frame),
        cmocka_unit_test(test_close_codes),  cmocka_unit_test(test_close_payload),
    };
    return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
