/* Unit: the sans-I/O PROXY protocol parser (proxy.h).
 *
 *  - v1 TCP4 / TCP6 / UNKNOWN, v2 IPv4 / IPv6 / UNIX / UNSPEC / LOCAL / TLVs:
 *    the addresses, ports, lengths parsed;
 *  - strictness: bad signatures, double spaces, leading zeros, ports over
 *    65535, LF without CR, bad v2 version / command / family, blocks too
 *    short for their family, broken TLVs, lengths over the limit, versions
 *    not accepted — each with its code;
 *  - property: for every input (valid, invalid, truncated, with payload
 *    after it) and every cut, the answer on the prefix is either
 *    NF_EPROXY_INCOMPLETE or exactly the answer on the whole input, and
 *    feeding the input byte by byte (as the filter gathers it) ends with the
 *    same answer and the same header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <netframe/netframe.h>

#include "../proxy_vectors.h"

#define ASSERT_CODE(actual, expected)                                                                                  \
    do {                                                                                                               \
        int a_ = (actual), e_ = (expected);                                                                            \
        if (a_ != e_)                                                                                                  \
            fail_msg("%s = %d (%s), expected %d (%s)", #actual, a_, nf_err_name(a_), e_, nf_err_name(e_));             \
    } while (0)

static int parse(const void *b, size_t n, nf_proxy_header_t *h) { return nf_proxy_parse(b, n, 0, 0, h); }

static void assert_addr(const nf_addr_t *a, const char *want)
{
    char buf[80];
    nf_addr_format(a, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("address %s, expected %s", buf, want);
}

static void test_v1_valid(void **state)
{
    (void)state;
    nf_proxy_header_t h;
    const char *l4 = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    ASSERT_CODE(parse(l4, strlen(l4), &h), (int)strlen(l4) - 5);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.command, NF_PROXY_CMD_PROXY);
    assert_int_equal(h.family, AF_INET);
    assert_addr(&h.src, "192.0.2.1:56324");
    assert_addr(&h.dst, "198.51.100.2:443");

    const char *l6 = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n";
    ASSERT_CODE(parse(l6, strlen(l6), &h), (int)strlen(l6));
    assert_int_equal(h.family, AF_INET6);
    assert_addr(&h.src, "[2001:db8::1]:0");
    assert_addr(&h.dst, "[::ffff:10.0.0.1]:65535");

    const char *u = "PROXY UNKNOWN\r\n";
    ASSERT_CODE(parse(u, strlen(u), &h), (int)strlen(u));
    assert_int_equal(h.family, AF_UNSPEC);
    const char *u2 = "PROXY UNKNOWN ffff::1 whatever the proxy put here\r\nX";
    ASSERT_CODE(parse(u2, strlen(u2), &h), (int)strlen(u2) - 1);
    assert_int_equal(h.family, AF_UNSPEC);

    /* the longest line: 107 bytes with the CRLF */
    char longest[128];
    int n = snprintf(longest, sizeof longest, "PROXY TCP6 %s %s 65535 65535\r\n",
                     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_int_equal(n, 104);
    ASSERT_CODE(parse(longest, (size_t)n, &h), n);
    char unk[128];
    memset(unk, 'x', sizeof unk);
    memcpy(unk, "PROXY UNKNOWN ", 14);
    memcpy(unk + 105, "\r\n", 2); /* 107 bytes */
    ASSERT_CODE(parse(unk, 107, &h), 107);
    memcpy(unk + 105, "xx", 2);
    memcpy(unk + 106, "\r\n", 2); /* 108 bytes: over the limit */
    ASSERT_CODE(parse(unk, 108, &h), NF_EPROXY_TOOLARGE);
}

static void test_v1_invalid(void **state)
{
    (void)state;
    nf_proxy_header_t h;
    static const struct {
        const char *in;
        int code;
    } cases[] = {
        {"GET / HTTP/1.1\r\n", NF_EPROXY_NOHEADER},
        {"PROXX TCP4", NF_EPROXY_NOHEADER},
        {"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", NF_EPROXY_NOHEADER},
        {"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", NF_EPROXY},
        {"PROXY TCP4 ::1 ::1 1 2\r\n", NF_EPROXY},
        {"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", NF_EPROXY},
        {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", NF_EPROXY},
        {"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", NF_EPROXY},
        {"PROXY UNKNOWNX\r\n", NF_EPROXY},
        {"PROXY \r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\x01\r\n", NF_EPROXY},
        {"PROXY TCP4 1.2.3.4\x80", NF_EPROXY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = parse(cases[i].in, strlen(cases[i].in), &h);
        if (r != cases[i].code)
            fail_msg("case %zu \"%s\": %s, expected %s", i, cases[i].in, nf_err_name(r), nf_err_name(cases[i].code));
    }
    char big[200];
    memset(big, 'A', sizeof big);
    memcpy(big, "PROXY ", 6);
    ASSERT_CODE(parse(big, 106, &h), NF_EPROXY_INCOMPLETE);
    ASSERT_CODE(parse(big, 107, &h), NF_EPROXY_TOOLARGE);
    ASSERT_CODE(parse(big, sizeof big, &h), NF_EPROXY_TOOLARGE);
    const char *v1 = "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n";
    ASSERT_CODE(nf_proxy_parse(v1, strlen(v1), NF_PROXY_V2, 0, &h), NF_EPROXY_VERSION);
    ASSERT_CODE(nf_proxy_parse(v1, 6, NF_PROXY_V2, 0, &h), NF_EPROXY_VERSION);
    ASSERT_CODE(nf_proxy_parse(v1, 5, NF_PROXY_V2, 0, &h), NF_EPROXY_INCOMPLETE);
    ASSERT_CODE(parse("", 0, &h), NF_EPROXY_INCOMPLETE);
}

static void test_v2_valid(void **state)
{
    (void)state;
    nf_proxy_header_t h;
    unsigned char b[600];
    size_t n = pv_v2_ipv4(b, "192.0.2.7", 40000, "10.1.2.3", 8443, NULL, 0);
    ASSERT_CODE(parse(b, n, &h), 28);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.command, NF_PROXY_CMD_PROXY);
    assert_int_equal(h.family, AF_INET);
    assert_int_equal(h.transport, NF_PROXY_TRANSPORT_STREAM);
    assert_addr(&h.src, "192.0.2.7:40000");
    assert_addr(&h.dst, "10.1.2.3:8443");
    assert_int_equal(h.tlv_len, 0);

    n = pv_v2_ipv4(b, "192.0.2.7", 1, "10.1.2.3", 2, pv_tlvs, sizeof pv_tlvs);
    memcpy(b + n, "payload", 7);
    ASSERT_CODE(parse(b, n + 7, &h), (int)n);
    assert_int_equal(h.tlv_off, 28);
    assert_int_equal(h.tlv_len, sizeof pv_tlvs);
    assert_memory_equal(b + h.tlv_off, pv_tlvs, sizeof pv_tlvs);

    n = pv_v2_ipv6(b, "2001:db8::7", 443, "2001:db8::8", 80);
    ASSERT_CODE(parse(b, n, &h), 52);
    assert_int_equal(h.family, AF_INET6);
    assert_addr(&h.src, "[2001:db8::7]:443");
    assert_addr(&h.dst, "[2001:db8::8]:80");

    /* LOCAL: addresses (if any) ignored, family ignored, even a bad one */
    n = pv_v2_ipv4(b, "1.1.1.1", 1, "2.2.2.2", 2, NULL, 0);
    b[12] = 0x20;
    ASSERT_CODE(parse(b, n, &h), 28);
    assert_int_equal(h.command, NF_PROXY_CMD_LOCAL);
    assert_int_equal(h.family, AF_UNSPEC);
    n = pv_v2_prefix(b, 0x20, 0x00, 0);
    ASSERT_CODE(parse(b, n, &h), 16);
    n = pv_v2_prefix(b, 0x20, 0xff, 3); /* LOCAL: the block is not looked at */
    ASSERT_CODE(parse(b, n + 3, &h), 19);

    /* UNSPEC with PROXY: no addresses, TLVs allowed */
    n = pv_v2_prefix(b, 0x21, 0x00, sizeof pv_tlvs);
    memcpy(b + n, pv_tlvs, sizeof pv_tlvs);
    ASSERT_CODE(parse(b, n + sizeof pv_tlvs, &h), (int)(n + sizeof pv_tlvs));
    assert_int_equal(h.family, AF_UNSPEC);

    /* UNIX: two 108-byte paths */
    n = pv_v2_prefix(b, 0x21, 0x31, 216);
    memset(b + n, 0, 216);
    memcpy(b + n, "/run/client.sock", 16);
    memcpy(b + n + 108, "/run/server.sock", 16);
    ASSERT_CODE(parse(b, n + 216, &h), 232);
    assert_int_equal(h.family, AF_UNIX);
    assert_string_equal((const char *)h.src_path, "/run/client.sock");
    assert_string_equal((const char *)h.dst_path, "/run/server.sock");
}

static void test_v2_invalid(void **state)
{
    (void)state;
    nf_proxy_header_t h;
    unsigned char b[70000];
    size_t n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, NULL, 0);
    for (int i = 0; i < 12; i++) { /* every byte of the signature matters */
        unsigned char keep = b[i];
        b[i] ^= 0x40;
        ASSERT_CODE(parse(b, n, &h), NF_EPROXY_NOHEADER);
        b[i] = keep;
    }
    b[12] = 0x11; /* version 1 in the binary format */
    ASSERT_CODE(parse(b, n, &h), NF_EPROXY);
    b[12] = 0x22; /* command 2 */
    ASSERT_CODE(parse(b, 13, &h), NF_EPROXY);
    b[12] = 0x21;
    b[13] = 0x41; /* family 4 */
    ASSERT_CODE(parse(b, 14, &h), NF_EPROXY);
    b[13] = 0x13; /* transport 3 */
    ASSERT_CODE(parse(b, n, &h), NF_EPROXY);
    b[13] = 0x11;
    b[15] = 8; /* IPv4 needs 12 bytes */
    ASSERT_CODE(parse(b, 16, &h), NF_EPROXY);
    b[15] = 12;
    ASSERT_CODE(nf_proxy_parse(b, n, NF_PROXY_V1, 0, &h), NF_EPROXY_VERSION);
    ASSERT_CODE(nf_proxy_parse(b, 12, NF_PROXY_V1, 0, &h), NF_EPROXY_VERSION);
    ASSERT_CODE(nf_proxy_parse(b, 11, NF_PROXY_V1, 0, &h), NF_EPROXY_INCOMPLETE);

    /* lengths: over the default limit, over a configured one, the largest */
    pv_v2_prefix(b, 0x21, 0x11, 65535);
    ASSERT_CODE(parse(b, 16, &h), NF_EPROXY_TOOLARGE);
    ASSERT_CODE(nf_proxy_parse(b, 16, 0, 16 + 65535, &h), NF_EPROXY_INCOMPLETE);
    memset(b + 16, 0, 65535);
    b[16 + 12] = 0x04; /* NOOP TLV covering the rest */
    b[16 + 13] = (unsigned char)((65535 - 15) >> 8);
    b[16 + 14] = (unsigned char)(65535 - 15);
    ASSERT_CODE(nf_proxy_parse(b, 16 + 65535, 0, 16 + 65535, &h), 16 + 65535);
    ASSERT_CODE(nf_proxy_parse(b, 16 + 65535, 0, 1u << 20, &h), 16 + 65535); /* clamped */
    n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, pv_tlvs, sizeof pv_tlvs);
    ASSERT_CODE(nf_proxy_parse(b, n, 0, n - 1, &h), NF_EPROXY_TOOLARGE);
    ASSERT_CODE(nf_proxy_parse(b, n, 0, n, &h), (int)n);

    /* TLVs: truncated header, value past the end */
    unsigned char tl[8] = {0x01, 0x00, 0x02, 'h', '2', 0x02, 0x00, 0x00};
    n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, tl, 7); /* a 2-byte TLV header */
    ASSERT_CODE(parse(b, n, &h), NF_EPROXY);
    tl[2] = 0x09; /* ALPN value longer than the block */
    n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, tl, 8);
    ASSERT_CODE(parse(b, n, &h), NF_EPROXY);
}

/* ---- property: the cut never matters ------------------------------------------ */

static void same_header(const nf_proxy_header_t *a, const nf_proxy_header_t *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->command, b->command);
    assert_int_equal(a->family, b->family);
    assert_int_equal(a->header_len, b->header_len);
    assert_memory_equal(&a->src, &b->src, sizeof a->src);
    assert_memory_equal(&a->dst, &b->dst, sizeof a->dst);
}

static unsigned check_all_cuts(const unsigned char *in, size_t len, unsigned versions, size_t max)
{
    nf_proxy_header_t whole, part;
    memset(&whole, 0, sizeof whole);
    int want = nf_proxy_parse(in, len, versions, max, &whole);
    unsigned checked = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        memset(&part, 0, sizeof part);
        int r = nf_proxy_parse(in, cut, versions, max, &part);
        if (r != NF_EPROXY_INCOMPLETE && r != want)
            fail_msg("cut %zu of %zu: %s (%d), whole input: %s (%d)", cut, len, nf_err_name(r), r, nf_err_name(want),
                     want);
        if (r > 0)
            same_header(&part, &whole);
        checked++;
    }
    /* byte by byte, stopping at the first decision, as the filter does */
    int r = NF_EPROXY_INCOMPLETE;
    for (size_t have = 1; have <= len && r == NF_EPROXY_INCOMPLETE; have++)
        r = nf_proxy_parse(in, have, versions, max, &part);
    if (len && r != want)
        fail_msg("byte by byte: %s, whole: %s", nf_err_name(r), nf_err_name(want));
    return checked;
}

static void test_every_cut(void **state)
{
    (void)state;
    unsigned char b[1024];
    unsigned total = 0, inputs = 0;
    const char *texts[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n\r\n",
        "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN a b c\r\nrest",
        "PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n",
        "PROXY TCP4 1.2.3.4",
        "GET / HTTP/1.1\r\n\r\n",
        "PROXY XYZ 1 2 3 4\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\x7f\r\n",
        "PROXY "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAA\r\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (unsigned v = 0; v <= 3; v++)
            total += check_all_cuts((const unsigned char *)texts[i], strlen(texts[i]), v, 0);
        inputs++;
    }
    size_t n;
    /* v2: valid with and without TLVs and payload, LOCAL, IPv6, invalid ones */
    n = pv_v2_ipv4(b, "192.0.2.7", 40000, "10.1.2.3", 8443, pv_tlvs, sizeof pv_tlvs);
    memcpy(b + n, "hello", 5);
    for (unsigned v = 0; v <= 3; v++)
        total += check_all_cuts(b, n + 5, v, 0);
    total += check_all_cuts(b, n + 5, 0, n - 1); /* over a small limit */
    n = pv_v2_ipv6(b, "2001:db8::7", 443, "2001:db8::8", 80);
    total += check_all_cuts(b, n, 0, 0);
    n = pv_v2_prefix(b, 0x20, 0x00, 0);
    total += check_all_cuts(b, n, 0, 0);
    n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, NULL, 0);
    b[12] = 0x11;
    total += check_all_cuts(b, n, 0, 0);
    b[12] = 0x21;
    b[15] = 4;
    total += check_all_cuts(b, n, 0, 0);
    b[15] = 12;
    b[5] = 0;
    total += check_all_cuts(b, n, 0, 0);
    b[5] = 0x0D;
    pv_v2_prefix(b, 0x21, 0x11, 5000);
    total += check_all_cuts(b, 40, 0, 0);
    unsigned char tl[7] = {0x01, 0x00, 0x02, 'h', '2', 0x02, 0x00};
    n = pv_v2_ipv4(b, "1.2.3.4", 1, "5.6.7.8", 2, tl, sizeof tl);
    total += check_all_cuts(b, n, 0, 0);
    inputs += 9;
    print_message("[ info     ] %u inputs, %u prefixes checked\n", inputs, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),   cmocka_unit_test(test_v1_invalid), cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v2_invalid), cmocka_unit_test(test_every_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
