/* Unit tests: incremental UTF-8 validator (src/ws/utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netframe/ws_codec.h"

/* Reference check written from RFC 3629's definition, decoding code points
 * (deliberately unlike the automaton under test). */
static int ref_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp, min;
        size_t need;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Validity through every split into two feeds and byte-at-a-time. */
static int split_valid(const uint8_t *p, size_t n)
{
    int whole = nf_ws_utf8_valid(p, n);
    for (size_t cut = 0; cut <= n; cut++) {
        nf_ws_utf8_t u;
        nf_ws_utf8_init(&u);
        int bad = nf_ws_utf8_feed(&u, p, cut) != 0;
        bad |= nf_ws_utf8_feed(&u, p + cut, n - cut) != 0;
        bad |= nf_ws_utf8_finish(&u) != 0;
        if (bad == whole)
            fail_msg("split at %zu disagrees", cut);
    }
    nf_ws_utf8_t u = {0};
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= nf_ws_utf8_feed(&u, p + i, 1) != 0;
    bad |= nf_ws_utf8_finish(&u) != 0;
    if (bad == whole)
        fail_msg("byte-at-a-time disagrees");
    return whole;
}

#define V(s) split_valid((const uint8_t *)(s), sizeof(s) - 1)

static void test_valid(void **state)
{
    (void)state;
    assert_true(V(""));
    assert_true(V("hello"));
    assert_true(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); /* kosme */
    /* first and last code point of every length */
    assert_true(V("\x00"));
    assert_true(V("\x7f"));
    assert_true(V("\xc2\x80"));
    assert_true(V("\xdf\xbf"));
    assert_true(V("\xe0\xa0\x80"));
    assert_true(V("\xef\xbf\xbf"));
    assert_true(V("\xf0\x90\x80\x80"));
    assert_true(V("\xf4\x8f\xbf\xbf"));
    /* around the surrogates, noncharacters, replacement char */
    assert_true(V("\xed\x9f\xbf"));
    assert_true(V("\xee\x80\x80"));
    assert_true(V("\xef\xbf\xbd"));
    assert_true(V("\xef\xbf\xbe"));
    assert_true(V("\xf0\x9f\x98\x80 smile"));
}

static void test_invalid(void **state)
{
    (void)state;
    /* lone continuation bytes */
    assert_false(V("\x80"));
    assert_false(V("\xbf"));
    assert_false(V("a\x80\xbf"));
    /* lead bytes followed by ASCII, truncated sequences */
    assert_false(V("\xc2\x41"));
    assert_false(V("\xc2"));
    assert_false(V("\xe0\xa0"));
    assert_false(V("\xf0\x90\x80"));
    assert_false(V("\xdf"));
    assert_false(V("\xef\xbf"));
    assert_false(V("\xf4\x8f\xbf"));
    /* overlong forms of '/' and of the largest overlong values */
    assert_false(V("\xc0\xaf"));
    assert_false(V("\xe0\x80\xaf"));
    assert_false(V("\xf0\x80\x80\xaf"));
    assert_false(V("\xf8\x80\x80\x80\xaf"));
    assert_false(V("\xfc\x80\x80\x80\x80\xaf"));
    assert_false(V("\xc1\xbf"));
    assert_false(V("\xe0\x9f\xbf"));
    assert_false(V("\xf0\x8f\xbf\xbf"));
    assert_false(V("\xc0\x80")); /* overlong NUL */
    assert_false(V("\xe0\x80\x80"));
    /* surrogates, single and paired */
    assert_false(V("\xed\xa0\x80"));
    assert_false(V("\xed\xad\xbf"));
    assert_false(V("\xed\xae\x80"));
    assert_false(V("\xed\xaf\xbf"));
    assert_false(V("\xed\xb0\x80"));
    assert_false(V("\xed\xbe\x80"));
    assert_false(V("\xed\xbf\xbf"));
    assert_false(V("\xed\xa0\x80\xed\xb0\x80"));
    assert_false(V("\xed\xaf\xbf\xed\xbf\xbf"));
    /* above U+10FFFF, 5- and 6-byte forms, FE FF */
    assert_false(V("\xf4\x90\x80\x80"));
    assert_false(V("\xf5\x80\x80\x80"));
    assert_false(V("\xf7\xbf\xbf\xbf"));
    assert_false(V("\xf8\x88\x80\x80\x80"));
    assert_false(V("\xfc\x84\x80\x80\x80\x80"));
    assert_false(V("\xfe"));
    assert_false(V("\xff"));
    assert_false(V("\xfe\xfe\xff\xff"));
    /* a valid sequence followed by garbage */
    assert_false(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                   "edited"));
}

/* The failure is reported at the first byte that cannot be valid. */
static void test_fail_fast(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t bad_at;
    } cases[] = {
        {"ab\x80", 2}, {"\xc2\x41", 1}, {"\xe0\x80", 1},     {"\xed\xa0", 1},         {"\xf4\x90", 1},
        {"\xf5", 0},   {"\xc0", 0},     {"\xce\xba\xff", 2}, {"\xf0\x90\x80\x41", 3}, {"\xf0\x8f", 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const uint8_t *p = (const uint8_t *)cases[c].s;
        size_t n = strlen(cases[c].s);
        nf_ws_utf8_t u;
        nf_ws_utf8_init(&u);
        for (size_t i = 0; i < n; i++) {
            int rc = nf_ws_utf8_feed(&u, p + i, 1);
            if (i < cases[c].bad_at)
                assert_int_equal(rc, 0);
            else
                assert_int_equal(rc, NF_EWS_UTF8);
        }
        /* sticky */
        assert_int_equal(nf_ws_utf8_feed(&u, (const uint8_t *)"a", 1), NF_EWS_UTF8);
        assert_int_equal(nf_ws_utf8_finish(&u), NF_EWS_UTF8);
        /* finish resets */
        assert_int_equal(nf_ws_utf8_feed(&u, (const uint8_t *)"a", 1), 0);
    }
}

/* Every 1- and 2-byte string, every 3-byte string with a non-ASCII lead,
 * and many 4-byte strings against the reference. */
static void test_exhaustive(void **state)
{
    (void)state;
    uint8_t b[4];
    for (unsigned x = 0; x < 0x10000; x++) {
        b[0] = (uint8_t)(x >> 8);
        b[1] = (uint8_t)x;
        assert_int_equal(nf_ws_utf8_valid(b, 1), ref_valid(b, 1));
        assert_int_equal(nf_ws_utf8_valid(b, 2), ref_valid(b, 2));
    }
    for (unsigned x = 0x800000; x < 0x1000000; x++) {
        b[0] = (uint8_t)(x >> 16);
        b[1] = (uint8_t)(x >> 8);
        b[2] = (uint8_t)x;
        if (nf_ws_utf8_valid(b, 3) != ref_valid(b, 3))
            fail_msg("3-byte %06x", x);
    }
    uint32_t r = 12345;
    for (unsigned lead = 0xe0; lead <= 0xff; lead++)
        for (int k = 0; k < 20000; k++) {
            r = r * 1103515245u + 12345u;
            b[0] = (uint8_t)lead;
            b[1] = (uint8_t)(0x80 | ((r >> 8) & 0x3f)) ^ (uint8_t)(((r >> 30) & 1) << 6);
            b[2] = (uint8_t)(0x80 | ((r >> 16) & 0x3f));
            b[3] = (uint8_t)(0x80 | ((r >> 22) & 0x3f));
            if (nf_ws_utf8_valid(b, 4) != ref_valid(b, 4))
                fail_msg("4-byte %02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
        }
}

/* Long ASCII runs with one bad or multi-byte char at every position, so the
 * word-at-a-time path meets it at every offset. */
static void test_ascii_fast_path(void **state)
{
    (void)state;
    /* 300 bytes: several 64-byte SIMD blocks, then 16- and 8-byte steps
     * and the byte loop at the tail */
    uint8_t buf[320];
    for (size_t pos = 0; pos < 297; pos++) {
        for (size_t off = 0; off < 8; off++) {
            memset(buf, 'a', sizeof buf);
            buf[off + pos] = 0x80;
            assert_false(nf_ws_utf8_valid(buf + off, 300));
            assert_int_equal(nf_ws_utf8_valid(buf + off, 300), ref_valid(buf + off, 300));
            memset(buf, 'a', sizeof buf);
            memcpy(buf + off + pos, "\xe2\x82\xac", 3);
            assert_true(nf_ws_utf8_valid(buf + off, 300));
            buf[off + pos + 2] = 'a';
            assert_false(nf_ws_utf8_valid(buf + off, 300));
        }
    }
    /* random mixed text against the reference, split randomly */
    uint32_t r = 99;
    uint8_t t[512];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        while (n < sizeof t - 4) {
            r = r * 1664525u + 1013904223u;
            unsigned kind = r >> 29;
            if (kind < 5)
                t[n++] = (uint8_t)('a' + (r & 15));
            else if (kind == 5)
                t[n++] = 0xce, t[n++] = 0xbb;
            else if (kind == 6)
                t[n++] = 0xe2, t[n++] = 0x82, t[n++] = 0xac;
            else
                t[n++] = 0xf0, t[n++] = 0x9f, t[n++] = 0x98, t[n++] = 0x80;
        }
        if (iter & 1) {
            r = r * 1664525u + 1013904223u;
            t[(r >> 8) % n] = (uint8_t)(r >> 24);
        }
        nf_ws_utf8_t u = {0};
        size_t pos = 0;
        int bad = 0;
        while (pos < n) {
            r = r * 1664525u + 1013904223u;
            size_t k = (r >> 20) % 40;
            if (k > n - pos)
                k = n - pos;
            bad |= nf_ws_utf8_feed(&u, t + pos, k) != 0;
            pos += k;
        }
        bad |= nf_ws_utf8_finish(&u) != 0;
        assert_int_equal(!bad, ref_valid(t, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),      cmocka_unit_test(test_invalid),         cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_exhaustive), cmocka_unit_test(test_ascii_fast_path),
    };
    return cmocka_run_group_tests_name("ws_utf8", tests, NULL, NULL);
}
